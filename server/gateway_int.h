/* gateway_int.h - private to the gateway: its structures, what its three files share, handshake
 * parameters and a socket-free test seam. */
#ifndef IM_GATEWAY_INT_H
#define IM_GATEWAY_INT_H

#include "engine.h"
#include "envelope.h"
#include "gateway.h"
#include "ws_int.h"

#define GW_PLATFORMS 32 /* platform ids (1..11) index a 32-bit mask */

/* OpenIM codes of the handshake (openim-protocol.md §2.4). */
enum { GW_CONN_OVER_MAX = 1601, GW_CONN_ARGS = 1602 };

/* Subscriptions (2005) one connection may hold (more are ignored) and ids one request may list. */
#define GW_MAX_SUBS 1000

/*
 * The connection parameters of §4.1, from the query string (first value of
 * each key, URL-decoded as Go's url.ParseQuery does) or from `v` (base64url
 * JSON).  The views point into `store`, owned by the struct.
 */
struct gw_params {
	struct im_str token, user_id, op_id, compression, sdk_type;
	int64_t platform_id;
	bool msg_resp;	 /* isMsgResp / sendResponse */
	bool background; /* isBackground / background */
	bool gob;	 /* sdkType go or absent */
	bool gzip;	 /* compression=gzip (query, else the header) */
	char *store;
};

/*
 * Parses query (the part after '?') with the `compression` header as the
 * fallback.  Returns 0, or GW_CONN_ARGS with Go's detail text in dlt (e.g.
 * "token is empty"), or -ENOMEM.  msg_resp is set as soon as it is known, so
 * errors can be delivered as isMsgResp asks.  Free with gw__params_free().
 */
int gw__parse_params(struct im_str query, struct im_str hdr_compression, struct gw_params *p,
		     char *dlt, size_t dltlen);
void gw__params_free(struct gw_params *p);

/* ---- shared between gateway.c, gw_online.c and gw_handshake.c ---- */

/* Wire formats: a bit for gob (else JSON), a bit for gzip. */
enum { GW_FMT_GOB = 1, GW_FMT_GZIP = 2, GW_FMT_N = 4 };
enum {
	GW_REQ_PUSH = 2001,
	GW_REQ_KICK = 2002,
	GW_REQ_LOGOUT = 2003,
	GW_REQ_BACKGROUND = 2004,
	GW_REQ_SUB = 2005
};
enum { GW_PLATFORM_IOS = 1, GW_PLATFORM_WEB = 5 };

struct gw_sub {
	struct gw_conn *conn;
	struct gw_user *target;
	struct gw_sub *cnext, *cprev; /* the conn's subscriptions */
	struct gw_sub *tnext, *tprev; /* the target's subscribers */
};

/* A user with connections, subscribers or a pending publication (gw_online.c). */
struct gw_user {
	struct gw_user *hnext; /* hash chain */
	uint64_t hash;
	struct gw_conn *conns; /* registered conns */
	unsigned n_conns;
	uint16_t per_platform[GW_PLATFORMS];
	uint32_t published; /* the platform mask subscribers last heard of */
	struct gw_sub *subs;
	struct gw_user *dnext;
	bool dirty;
	uint32_t id_len;
	char id[];
};

/* One WebSocket of the gateway; see the life cycle in gateway.c. */
struct gw_conn {
	struct gw *g;
	struct ws_conn *ws; /* NULL once freed */
	struct gw_user *user;
	struct gw_conn *unext, *uprev; /* in user->conns */
	struct gw_conn *anext, *aprev; /* in g->all */
	struct gw_sub *subs;
	unsigned n_subs;
	unsigned refs; /* the WebSocket's + one per unanswered gw_req */
	uint64_t id;
	int32_t platform_id;
	unsigned fmt; /* GW_FMT_* */
	bool background;
	char *token; /* owned */
	char user_id[ENG_ID_MAX + 1];
};

struct gw {
	struct srv *s;
	struct gw_opts o;
	struct http_server *http;
	struct gw_user **buckets;
	size_t n_buckets, n_users;
	struct gw_conn *all;
	unsigned n_all;
	struct gw_user *dirty;
	int depth;
	uint64_t next_id;
	struct gw_stats stats;
	bool closing, http_closed, done;
	void (*close_cb)(void *arg);
	void *close_arg;
};

struct gw_frames {
	struct env_resp r;
	struct ws_buf *b[GW_FMT_N];
};

/* One server frame encoded at most once per wire format, shared by recipients. */
void gw__frames_init(struct gw_frames *f, int32_t req_id, const char *op_id, const void *data,
		     size_t len, bool has_data);
struct ws_buf *gw__frames_get(struct gw_frames *f, unsigned fmt); /* NULL on OOM */
void gw__frames_free(struct gw_frames *f);
/* Sends b (NULL: out of memory, the connection is closed); false if not sent. */
bool gw__conn_send(struct gw_conn *c, struct ws_buf *b);
/* Answers the client request er on c (its msgIncr and operationID). */
void gw__reply_req(struct gw_conn *c, const struct env_req *er, int code, const void *data,
		   size_t len, bool has_data);

/* gw_online.c: users, registration, subscriptions, publication of online state. */
int gw__users_init(struct gw *g); /* 0 or -ENOMEM */
void gw__users_free(struct gw *g);
struct gw_user *gw__user_find(struct gw *g, struct im_str id);
int gw__register(struct gw_conn *c); /* 0 or -ENOMEM */
void gw__unregister(struct gw_conn *c);
void gw__subscribe(struct gw_conn *c, const struct env_req *er); /* 2005 */
void gw__flush_dirty(struct gw *g);

struct http_req;
struct srv *gw__srv(const struct gw *g);
bool gw__at_capacity(const struct gw *g);
/* Operations nest; online-status changes are published when the outermost one ends. */
void gw__enter(struct gw *g);
void gw__leave(struct gw *g);

/*
 * Takes over an upgraded socket (see http_detach()).  code 0: a connection
 * for the verified parameters p (connect-result frame, multi-login kick,
 * registration, reading).  Otherwise the error text frame of §4.2
 * ({"errCode":code,"errMsg":..,"errDlt":dlt}) and a close.  On -ENOMEM the
 * socket was closed.
 */
int gw__accept(struct gw *g, uv_tcp_t *tcp, const char *rest, size_t rest_len,
	       const struct gw_params *p, int code, const char *dlt);

/* The HTTP handler of the WebSocket port (gw_handshake.c). */
void gw__http_handler(struct http_req *req, void *arg);

/* {"errCode":N,"errMsg":"<name>","errDlt":"<dlt>"} appended to out.  0 or -ENOMEM. */
int gw__result_json(int code, const char *dlt, struct im_buf *out);

/* errMsg of a code: the handshake codes, else api_code_name(). */
const char *gw__code_name(int code);

/*
 * The test seam.  gw_test_new() makes a gateway without a listener.
 * gw_test_conn() adds a connection as a successful handshake would (the
 * connect-result text frame when msg_resp, the multi-login kick, online
 * state), with a socket-free WebSocket whose output goes to write_cb.
 * gw_test_feed() feeds it raw WebSocket bytes (see ws_test_feed()).
 * gw_test_conn_free() closes and frees it (outstanding gw_reqs stay valid and
 * are dropped when answered).  gw_test_free() frees the gateway once every
 * request is answered.  Not from inside callbacks.
 */
struct gw *gw_test_new(struct srv *s, const struct gw_opts *o);
struct gw_conn *gw_test_conn(struct gw *g, const struct gw_params *p, ws_test_write_fn write_cb,
			     void *warg);
int gw_test_feed(struct gw_conn *c, const uint8_t *data, size_t len);
void gw_test_conn_free(struct gw_conn *c);
void gw_test_free(struct gw *g);

#endif
