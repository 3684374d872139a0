/* api.h - the REST API: router, OpenIM envelope, header and token checks, proposals. */
#ifndef IM_API_H
#define IM_API_H

#include <jansson.h>

#include "cluster.h"
#include "config.h"
#include "engine.h"
#include "http.h"
#include "json.h"

struct gw;
struct node;

/* OpenIM error codes used at the API edge (openim-protocol.md §2.4). */
enum {
	OI_OK = 0,
	OI_SERVER_INTERNAL = 500,
	OI_ARGS = 1001,
	OI_NO_PERMISSION = 1002,
	OI_DUPLICATE_KEY = 1003,
	OI_RECORD_NOT_FOUND = 1004,
	OI_USER_NOT_FOUND = 1101,
	OI_REGISTERED_ALREADY = 1102,
	OI_GROUP_NOT_FOUND = 1201,
	OI_GROUP_EXISTED = 1202,
	OI_NOT_IN_GROUP = 1203,
	OI_DISMISSED = 1204,
	OI_GROUP_REQUEST_HANDLED = 1206,
	OI_CANNOT_ADD_YOURSELF = 1301,
	OI_BLOCKED_BY_PEER = 1302,
	OI_NOT_PEERS_FRIEND = 1303,
	OI_RELATIONSHIP_ALREADY = 1304,
	OI_FRIEND_REQUEST_HANDLED = 1305,
	OI_MUTED_IN_GROUP = 1402,
	OI_MUTED_GROUP = 1403,
	OI_MSG_ALREADY_REVOKE = 1404,
	OI_TOKEN_EXPIRED = 1501,
	OI_TOKEN_INVALID = 1502,
	OI_TOKEN_MALFORMED = 1503,
	OI_TOKEN_NOT_VALID_YET = 1504,
	OI_TOKEN_UNKNOWN = 1505,
	OI_TOKEN_KICKED = 1506,
	OI_TOKEN_NOT_EXIST = 1507,
	OI_DATABASE = 90002,
};

/* The short name OpenIM puts in errMsg for a code. */
const char *api_code_name(int code);

/* The server: everything a handler may reach.  One per process, loop thread only. */
struct srv {
	uv_loop_t *loop;
	const struct cfg *cfg;
	struct eng *eng;
	struct clu *clu;
	struct http_server *api;
	struct gw *gw;	   /* the WebSocket gateway, NULL until it listens */
	struct node *node; /* the node-to-node channel of a cluster (cluster_node.h), or NULL */
	struct im_str secret;
	int64_t token_expire_s;
	/* Overridable for tests and fuzzing: propose a command (default: clu_propose). */
	int (*propose)(struct srv *s, struct clu_req *req, const void *cmd, size_t len,
		       clu_done_cb cb);
	int64_t (*now_ms)(void);
	/*
	 * Called by the gateway after a multi-login kick on connect (§2.3):
	 * every token of (user_id, platform_id) but keep_token is to be marked
	 * kicked.  Views valid during the call.  NULL: nothing is done.
	 */
	void (*on_kick)(struct srv *s, struct im_str user_id, int32_t platform_id,
			struct im_str keep_token);
	/*
	 * Called after this node closed its connections of (user_id,
	 * platform_id; 0 = every platform) but those holding keep_token (empty:
	 * none), on /auth/force_logout and on a multi-login kick: a cluster
	 * closes the other nodes' connections too.  NULL: nothing.
	 */
	void (*kick_remote)(struct srv *s, struct im_str user_id, int32_t platform_id,
			    struct im_str keep_token);
	/*
	 * Before a REST request or a WebSocket login is handled: waits until
	 * this node has applied every write acknowledged anywhere in the
	 * cluster (node_read_barrier).  Returns 0 (cb runs later), 1 (nothing
	 * to wait for), or an error.  NULL: nothing to wait for (one node).
	 */
	int (*read_barrier)(struct srv *s, struct clu_req *req, clu_done_cb cb);
	/* Called when the leader says this node was removed from the cluster. NULL: nothing. */
	void (*on_removed)(struct srv *s);
};

/* The authenticated caller of a request. */
struct api_who {
	char user_id[129];
	int32_t platform_id;
	bool admin;
};

struct api_req;
typedef void (*api_handler)(struct api_req *r);
typedef void (*api_done)(struct api_req *r, int status, const struct eng_result *res);

/* One REST request in flight.  Freed by api_reply()/api_fail(). */
struct api_req {
	struct srv *s;
	struct http_req *http; /* NULL once the client went away */
	json_t *body;	       /* the parsed JSON body (an object) */
	struct api_who who;
	char op_id[129];
	struct clu_req creq;
	api_done done;
	struct im_buf cmd;   /* the encoded command being proposed */
	void *state;	     /* per-route state, freed with im_free */
	struct eng_rtxn *rt; /* open read snapshot (api_read), ended by reply/fail/propose */
	const struct api_route *route;
};

/* Entry point for the HTTP server. */
void api_handle(struct http_req *req, void *arg);

/* Answers {errCode:0,...,data} (data NULL: no data key) and frees r.  Steals data. */
void api_reply(struct api_req *r, json_t *data);
/* Answers an error envelope with errDlt = dlt (printf-style) and frees r. */
void api_fail(struct api_req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a project code (IM_EEXIST, ...) to an OpenIM code for the current route. */
void api_fail_im(struct api_req *r, int im_code, const char *detail);

/*
 * Encodes cmd (time stamped by the caller) and proposes it; done runs once
 * with the outcome (then the handler answers).  On a failure to propose the
 * request is answered with an error here and done never runs.
 */
void api_propose(struct api_req *r, const struct eng_cmd *cmd, api_done done);

/* Permission helpers: return true, or answer 1002 and return false. */
bool api_require_admin(struct api_req *r);
bool api_require_self_or_admin(struct api_req *r, struct im_str user_id);

/*
 * Returns the request's read snapshot, opening it on first use, or answers
 * 500 and returns NULL.  It ends when the request is answered or proposes.
 */
struct eng_rtxn *api_read(struct api_req *r);

/* Field getters that answer 1001 on a type error and return false. */
bool api_str(struct api_req *r, const json_t *obj, const char *key, struct im_str *out);
bool api_i32(struct api_req *r, const json_t *obj, const char *key, int32_t *out, bool *present);
bool api_i64(struct api_req *r, const json_t *obj, const char *key, int64_t *out, bool *present);
bool api_bool(struct api_req *r, const json_t *obj, const char *key, bool *out, bool *present);
/* String array; *out freed by the caller with im_free. */
bool api_strs(struct api_req *r, const json_t *obj, const char *key, struct im_str **out,
	      size_t *n);
/* Pagination {pageNumber, showNumber}: offset and limit (0 = all). */
bool api_pagination(struct api_req *r, const json_t *obj, uint64_t *offset, uint64_t *limit);

/* JSON builders for records (key order = proto field order). */
json_t *api_user_json(const struct eng_user *u);
json_t *api_group_json(const struct eng_group *g);
json_t *api_member_json(const struct eng_member *m);
json_t *api_conv_json(const struct eng_conv *c);
/* A JSON array, or null when it is empty (Go's nil slice).  Steals arr. */
json_t *api_null_if_empty(json_t *arr);

/* The route tables of each routes_*.c. */
struct api_route {
	const char *path;
	api_handler fn;
	unsigned flags;
};
enum {
	API_NO_TOKEN = 1u << 0,
	API_RAW_BODY = 1u << 1,	  /* not JSON: the handler reads it */
	API_NO_BARRIER = 1u << 2, /* served from this node's state as it is (cluster admin calls) */
	API_NODE_AUTH = 1u << 3,  /* or signed with the cluster's secret (node_timed_auth_ok) */
};
extern const struct api_route api_routes_auth[];
extern const struct api_route api_routes_user[];
extern const struct api_route api_routes_group[];
extern const struct api_route api_routes_group_set[]; /* routes_group_set.c */
extern const struct api_route api_routes_group_req[]; /* routes_group_req.c */
extern const struct api_route api_routes_friend[];
extern const struct api_route api_routes_conv[];
extern const struct api_route api_routes_msg[];
extern const struct api_route api_routes_cluster[];

/* auth.c: marks every token of (user, platform) but keep_token kicked (multi-login). */
void auth_kick_tokens(struct srv *s, struct im_str user_id, int32_t platform_id,
		      struct im_str keep_token);

/* auth.c: verifies a token as parseToken does (§2.3); returns an OpenIM code. */
int auth_verify(struct srv *s, struct eng_rtxn *rt, const char *tok, size_t len,
		struct api_who *out, int64_t *exp_out);

#endif
