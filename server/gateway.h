/* gateway.h - the WebSocket gateway (openim-protocol.md §4): connections, envelopes, online state,
 * pushes. */
#ifndef IM_GATEWAY_H
#define IM_GATEWAY_H

#include <stddef.h>
#include <uv.h>

#include "common.h"

struct srv;
struct gw;
struct gw_conn;

/*
 * The gateway listens on the WS address (default port 10001).  Any path
 * upgrades.  The handshake checks of §4.2 run in order (1601, 1602, the
 * token checks of auth_verify, 1502) and errors are delivered as §4.2 says
 * (isMsgResp=true: upgrade, one text frame, close; otherwise an HTTP 200 JSON
 * body).  On success a JS client (sdkType=js) gets the text frame
 * {"errCode":0,"errMsg":"","errDlt":""}.
 *
 * Frames: JSON envelopes in binary frames (sdkType=js) or gob envelopes (Go
 * core, §4.9), optionally gzip (compression=gzip); text frames carry only
 * {"type":"ping"} / {"type":"pong"}; control pings are answered; the read
 * deadline is 30 s; inbound frames over 51,200 bytes close the connection; a
 * connection whose bounded send queue overflows is closed.  The gateway
 * itself handles 2003 (logout), 2004 (background) and 2005 (online-status
 * subscriptions); every other reqIdentifier goes to the request handler,
 * unknown ones close the connection, as does an envelope whose sendID is not
 * the connection's user.
 *
 * Multi-login (policy 1): a new connection for (user, platform) with a
 * different token kicks the older ones (2002 frame, close) and proposes that
 * their tokens be marked kicked.  gw_kick() does the same for force_logout.
 *
 * Loop thread only.
 */

/* A request from a client, owned by the gateway until gw_reply(). */
struct gw_req {
	struct gw_conn *conn;
	int32_t req_id;	     /* reqIdentifier */
	char msg_incr[129];  /* echoed */
	char op_id[129];     /* echoed; also the trace id of what the request causes */
	const uint8_t *data; /* the protobuf request bytes (decoded from base64/gob) */
	size_t len;
	char user_id[129]; /* the connection's user */
	int32_t platform_id;
};

/*
 * Handler for 1001, 1002, 1003, 1005, 1006, 1007 (and any other id the
 * handler accepts): returns 0 if it took the request (it then calls
 * gw_reply() exactly once, now or later), or -1 for an unknown id (the
 * gateway closes the connection).
 */
typedef int (*gw_handler)(struct srv *s, struct gw_req *req);

struct gw_opts {
	const char *addr; /* "HOST:PORT" */
	gw_handler handler;
	unsigned max_conns;  /* websocketMaxConnNum: 1601 beyond (default 100000) */
	unsigned send_queue; /* frames queued per connection before it is closed (default 256) */
	unsigned read_timeout_ms;  /* default 30000 */
	unsigned ping_interval_ms; /* server Ping control frames to platform 5 (default 27000) */
};

/*
 * Listens on o->addr with s->loop and s->eng for token checks.  Returns 0 or
 * a negative libuv code (e.g. UV_EADDRINUSE) with *out NULL.
 */
int gw_start(struct srv *s, const struct gw_opts *o, struct gw **out);

/* The bound port (useful with port 0). */
int gw_port(const struct gw *g);

/*
 * Stops listening and closes every connection (close frame 1001, then at
 * most 2 s for the peer).  cb runs once every connection is freed, which
 * includes every outstanding gw_req being answered; then g is freed.
 */
void gw_close(struct gw *g, void (*cb)(void *arg), void *arg);

/*
 * Answers req with (err_code, err_msg) and the protobuf bytes data (NULL:
 * JSON null / no gob Data) and frees req.  If the connection went away the
 * answer is dropped (req is still freed).  err_msg NULL: the code's OpenIM
 * name (api_code_name()).  Success answers of 1001..1006 and 2005 must carry
 * data (possibly empty, non-NULL): the JS SDK reads it (§4.3).
 */
void gw_reply(struct gw_req *req, int err_code, const char *err_msg, const void *data, size_t len);

/*
 * Sends a server-initiated frame (reqIdentifier req_id, msgIncr "", the given
 * operationID, errCode 0, data) to every connection of user_id.  The envelope
 * is encoded once per wire format and shared by the recipients' queues.
 * Returns the number of connections it was queued on.
 */
int gw_push(struct gw *g, struct im_str user_id, int32_t req_id, const char *op_id,
	    const void *data, size_t len);

/*
 * One frame for many users (a group message): gw_batch_begin() prepares it,
 * each gw_batch_add() queues it on every connection of one user (encoded once
 * per wire format for the whole batch), gw_batch_end() releases it.  The
 * batch lives on the caller's stack; nothing else may run in between.
 */
struct gw_batch {
	struct gw *g;
	int32_t req_id;
	_Alignas(max_align_t) unsigned char frames[256]; /* opaque: the shared encodings */
	int sent;
};
void gw_batch_begin(struct gw_batch *b, struct gw *g, int32_t req_id, const char *op_id,
		    const void *data, size_t len);
void gw_batch_add(struct gw_batch *b, struct im_str user_id);
void gw_batch_end(struct gw_batch *b);

/* Whether user_id has a live connection here. */
bool gw_online(struct gw *g, struct im_str user_id);

/*
 * The ids of the users with a live connection here, appended to out as
 * (u32 length, bytes) records; returns their number (0 on out of memory,
 * with out left as it was).
 */
size_t gw_online_ids(struct gw *g, struct im_buf *out);

/* An upper bound of the users with a live connection here (O(1)). */
size_t gw_online_bound(const struct gw *g);

/*
 * Sends the 2002 kick to every connection of (user, platform) and closes them
 * (platform_id 0: every platform).  Token states are the caller's business.
 */
void gw_kick(struct gw *g, struct im_str user_id, int32_t platform_id);
/* As gw_kick, but connections holding keep_token stay (a multi-login kick from another node). */
void gw_kick_except(struct gw *g, struct im_str user_id, int32_t platform_id,
		    struct im_str keep_token);

/* Online state of a user: one callback per live connection. */
struct gw_conn_info {
	int32_t platform_id;
	uint64_t conn_id;
	bool is_background;
	const char *token;
};
typedef void (*gw_conn_cb)(const struct gw_conn_info *ci, void *arg);
/* Returns the number of live connections of user_id. */
int gw_user_conns(struct gw *g, struct im_str user_id, gw_conn_cb cb, void *arg);

struct gw_stats {
	uint64_t conns_open;
	uint64_t conns_total;
	uint64_t frames_in;
	uint64_t frames_out;
	uint64_t closed_slow; /* closed because the send queue overflowed */
	uint64_t closed_bad;  /* closed because of bad input */
};
void gw_get_stats(const struct gw *g, struct gw_stats *out);

#endif
