/* gateway.c - the WebSocket gateway: connection life cycle, envelope dispatch, replies, pushes
 * and kicks (openim-protocol.md §4).
 *
 * Invariants:
 * 1. A gw_conn is registered (c->user set, in its user's list, counted in
 *    per_platform and conns_open) iff its handshake succeeded and neither
 *    its WebSocket left OPEN nor the gateway started closing it.
 * 2. A gw_conn is held by its WebSocket (one reference) and by each gw_req
 *    not yet answered (one each); it is freed when the last goes, from a
 *    libuv callback or gw_reply(), never inside a gateway operation's loop.
 * 3. Online state, users and subscriptions live in gw_online.c (its own
 *    invariants); this file only walks a user's conns with the next element
 *    kept beforehand, since a send may close (unregister) the conn served.
 * 4. g is freed only at depth 0, after gw_close(), once the listener and
 *    every gw_conn are gone.
 *
 * Connection life cycle:
 *
 *   upgrade --verified--> REGISTERED --kick, 2003, bad frame, ws closing--> UNREGISTERED
 *   upgrade --error (isMsgResp)--> UNREGISTERED (error text frame, close)
 *   UNREGISTERED --ws freed, every gw_req answered--> freed
 */
#include "gateway_int.h"

#include <errno.h>
#include <stdio.h>

#include "api.h"
#include "envelope.h"
#include "gob.h"
#include "pb.h"

static void maybe_done(struct gw *g);

/* ---- frames: one encoding per wire format, shared by the recipients ---- */

static struct ws_buf *encode(unsigned fmt, const struct env_resp *r)
{
	struct im_buf b = {0}, z = {0};
	struct ws_buf *out = NULL;
	int rc = (fmt & GW_FMT_GOB) ? gob_encode_resp(r, &b) : env_json_encode(r, &b);
	if (rc == 0 && (fmt & GW_FMT_GZIP))
		rc = env_gzip(b.p, b.len, &z);
	if (rc == 0)
		out = (fmt & GW_FMT_GZIP) ? ws_buf_frame(WS_OP_BINARY, z.p, z.len)
					  : ws_buf_frame(WS_OP_BINARY, b.p, b.len);
	im_buf_free(&b);
	im_buf_free(&z);
	return out;
}

struct ws_buf *gw__frames_get(struct gw_frames *f, unsigned fmt)
{
	if (f->b[fmt] == NULL)
		f->b[fmt] = encode(fmt, &f->r);
	return f->b[fmt];
}

void gw__frames_free(struct gw_frames *f)
{
	for (unsigned i = 0; i < GW_FMT_N; i++)
		ws_buf_unref(f->b[i]);
}

/* A server-initiated frame: msgIncr "", errCode 0 (§4.5). */
void gw__frames_init(struct gw_frames *f, int32_t req_id, const char *op_id, const void *data,
		     size_t len, bool has_data)
{
	memset(f, 0, sizeof(*f));
	f->r = (struct env_resp){.req_id = req_id,
				 .msg_incr = IM_STR_LIT(""),
				 .op_id = im_str_c(op_id ? op_id : ""),
				 .err_msg = IM_STR_LIT(""),
				 .data = data,
				 .len = len,
				 .has_data = has_data};
}

bool gw__conn_send(struct gw_conn *c, struct ws_buf *b)
{
	if (c->ws == NULL || !ws_conn_is_open(c->ws))
		return false;
	if (b == NULL) {
		ws_conn_abort(c->ws, WS_CLOSE_ERROR);
		return false;
	}
	if (ws_conn_send(c->ws, b) != 0)
		return false;
	c->g->stats.frames_out++;
	return true;
}

/* One frame to one connection, in its format. */
static void reply_one(struct gw_conn *c, const struct env_resp *r)
{
	struct ws_buf *b = encode(c->fmt, r);
	gw__conn_send(c, b);
	ws_buf_unref(b);
}

/* Unregisters c and starts the close handshake; bad input counts in closed_bad. */
static void conn_close(struct gw_conn *c, uint16_t code, bool bad)
{
	if (bad && c->ws && ws_conn_is_open(c->ws))
		c->g->stats.closed_bad++;
	gw__unregister(c);
	if (c->ws)
		ws_conn_close(c->ws, code);
}

void gw__enter(struct gw *g)
{
	g->depth++;
}

void gw__leave(struct gw *g)
{
	if (g->depth == 1)
		gw__flush_dirty(g);
	if (--g->depth == 0)
		maybe_done(g);
}

/* ---- life cycle ---- */

static void conn_unref(struct gw_conn *c)
{
	if (--c->refs > 0)
		return;
	struct gw *g = c->g;
	if (c->aprev)
		c->aprev->anext = c->anext;
	else
		g->all = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	g->n_all--;
	im_free(c->token);
	im_free(c);
	maybe_done(g);
}

/* ---- requests: 2003 and 2004 here, 2005 in gw_online.c, the rest to the handler ---- */

void gw__reply_req(struct gw_conn *c, const struct env_req *er, int code, const void *data,
		   size_t len, bool has_data)
{
	struct env_resp r = {.req_id = er->req_id,
			     .msg_incr = er->msg_incr,
			     .op_id = er->op_id,
			     .err_code = code,
			     .err_msg = im_str_c(code ? gw__code_name(code) : ""),
			     .data = data,
			     .len = len,
			     .has_data = has_data};
	reply_one(c, &r);
}

/* 2004: SetAppBackgroundStatusReq{userID, isBackground}; the answer has no data (§4.4). */
static void set_background(struct gw_conn *c, const struct env_req *er)
{
	ProtobufCMessage *m;
	int rc = pb_unpack(&openim__sdkws__set_app_background_status_req__descriptor,
			   (const uint8_t *)er->data.p, er->data.n, &m);
	if (rc != 0) {
		gw__reply_req(c, er, rc == -ENOMEM ? OI_SERVER_INTERNAL : OI_ARGS, NULL, 0, false);
		return;
	}
	c->background = ((Openim__Sdkws__SetAppBackgroundStatusReq *)m)->isbackground;
	pb_free(m);
	gw__reply_req(c, er, 0, NULL, 0, false);
}

/* Everything else goes to the handler; an id it does not take closes the connection. */
static void to_handler(struct gw_conn *c, const struct env_req *er)
{
	struct gw *g = c->g;
	if (g->o.handler == NULL) {
		conn_close(c, 1008, true);
		return;
	}
	struct gw_req *req = im_calloc(1, sizeof(*req) + er->data.n + 1);
	if (req == NULL) {
		ws_conn_abort(c->ws, WS_CLOSE_ERROR);
		return;
	}
	uint8_t *data = (uint8_t *)(req + 1);
	memcpy(data, er->data.p, er->data.n);
	req->conn = c;
	req->req_id = er->req_id;
	memcpy(req->msg_incr, er->msg_incr.p, er->msg_incr.n);
	memcpy(req->op_id, er->op_id.p, er->op_id.n);
	req->data = data;
	req->len = er->data.n;
	snprintf(req->user_id, sizeof(req->user_id), "%s", c->user_id);
	req->platform_id = c->platform_id;
	c->refs++;
	if (g->o.handler(g->s, req) != 0) {
		conn_close(c, 1008, true);
		im_free(req);
		conn_unref(c);
	}
}

/* One binary message: gunzip, decode, sendID check, dispatch (§4.3). */
static void on_ws_binary(struct ws_conn *ws, const uint8_t *msg, size_t len, void *arg)
{
	struct gw_conn *c = arg;
	struct gw *g = c->g;
	IM_UNUSED(ws);
	if (c->user == NULL)
		return; /* an error connection or one being closed: requests are ignored */
	gw__enter(g);
	struct im_buf plain = {0};
	struct env_req er = {0};
	char err[128] = "";
	int rc = 0;
	if (msg == NULL)
		msg = (const uint8_t *)""; /* wslay's empty message */
	if (c->fmt & GW_FMT_GZIP) {
		rc = env_gunzip(msg, len, ENV_GUNZIP_MAX, &plain);
		msg = (const uint8_t *)plain.p;
		len = plain.len;
	}
	if (rc == 0)
		rc = (c->fmt & GW_FMT_GOB) ? gob_decode_req(msg, len, &er, err, sizeof(err))
					   : env_json_decode(msg, len, &er, err, sizeof(err));
	if (rc == 0 && !im_str_eq(er.send_id, im_str_c(c->user_id))) {
		snprintf(err, sizeof(err), "sendID is not the connection's user");
		rc = IM_EINVAL;
	}
	if (rc == 0 && (er.msg_incr.n >= sizeof(((struct gw_req *)0)->msg_incr) ||
			er.op_id.n >= sizeof(((struct gw_req *)0)->op_id))) {
		snprintf(err, sizeof(err), "msgIncr or operationID too long");
		rc = IM_EINVAL;
	}
	if (rc == -ENOMEM) {
		ws_conn_abort(c->ws, WS_CLOSE_ERROR);
	} else if (rc != 0) {
		IM_DEBUG("gw conn %llu (%s): closing: %s", (unsigned long long)c->id, c->user_id,
			 err[0] ? err : im_strerror(rc));
		conn_close(c, 1008, true);
	} else if (er.req_id == GW_REQ_LOGOUT) {
		gw__reply_req(c, &er, 0, "", 0, true); /* DelUserPushTokenResp{} */
		conn_close(c, 1000, false);
	} else if (er.req_id == GW_REQ_BACKGROUND) {
		set_background(c, &er);
	} else if (er.req_id == GW_REQ_SUB) {
		gw__subscribe(c, &er);
	} else {
		to_handler(c, &er);
	}
	env_req_free(&er);
	im_buf_free(&plain);
	gw__leave(g);
}

static void on_ws_closing(struct ws_conn *ws, enum ws_close_reason why, void *arg)
{
	struct gw_conn *c = arg;
	struct gw *g = c->g;
	IM_UNUSED(ws);
	gw__enter(g);
	if (why == WS_CLOSE_SLOW)
		g->stats.closed_slow++;
	else if (why == WS_CLOSE_BAD)
		g->stats.closed_bad++;
	gw__unregister(c);
	gw__leave(g);
}

static void on_ws_free(struct ws_conn *ws, void *arg)
{
	struct gw_conn *c = arg;
	IM_UNUSED(ws);
	c->ws = NULL;
	conn_unref(c);
}

static void on_ws_frame(struct ws_conn *ws, void *arg)
{
	struct gw_conn *c = arg;
	IM_UNUSED(ws);
	c->g->stats.frames_in++;
}

static const struct ws_ops gw_ws_ops = {
    .on_binary = on_ws_binary,
    .on_closing = on_ws_closing,
    .on_free = on_ws_free,
    .on_frame = on_ws_frame,
};

/* ---- new connections ---- */

static void kick_one(struct gw_conn *c, struct gw_frames *f)
{
	gw__conn_send(c, gw__frames_get(f, c->fmt));
	conn_close(c, 1000, false);
}

/* Multi-login policy 1 (§2.3, §4.7): older connections of the platform with another token go. */
static void kick_older(struct gw_conn *c)
{
	struct gw *g = c->g;
	struct srv *s = g->s;
	if (s->cfg != NULL && s->cfg->multi_login_policy != 1)
		return;
	/* In a cluster the older connections may be on other nodes. */
	if (s->kick_remote)
		s->kick_remote(s, im_str_c(c->user_id), c->platform_id, im_str_c(c->token));
	struct gw_user *u = gw__user_find(g, im_str_c(c->user_id));
	if (u == NULL)
		return;
	struct gw_frames f;
	gw__frames_init(&f, GW_REQ_KICK, "", NULL, 0, false);
	bool kicked = false;
	for (struct gw_conn *o = u->conns, *next; o; o = next) {
		next = o->unext;
		if (o->platform_id == c->platform_id && strcmp(o->token, c->token) != 0) {
			kick_one(o, &f);
			kicked = true;
		}
	}
	gw__frames_free(&f);
	if (kicked && s->on_kick)
		s->on_kick(s, im_str_c(c->user_id), c->platform_id, im_str_c(c->token));
}

/* code != 0: a connection that only carries the error frame; its parameters are not used. */
static struct gw_conn *conn_new(struct gw *g, const struct gw_params *p, int code)
{
	bool usable =
	    p->user_id.n <= ENG_ID_MAX && p->platform_id >= 0 && p->platform_id < GW_PLATFORMS;
	if (code == 0 && !usable)
		return NULL;
	struct gw_conn *c = im_calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->token = im_strndup(p->token.p && code == 0 ? p->token.p : "", code ? 0 : p->token.n);
	if (c->token == NULL) {
		im_free(c);
		return NULL;
	}
	c->g = g;
	c->id = ++g->next_id;
	if (code == 0) {
		c->platform_id = (int32_t)p->platform_id;
		c->fmt = (p->gob ? GW_FMT_GOB : 0) | (p->gzip ? GW_FMT_GZIP : 0);
		if (p->user_id.n)
			memcpy(c->user_id, p->user_id.p, p->user_id.n);
	}
	c->refs = 1; /* the WebSocket's */
	c->anext = g->all;
	if (g->all)
		g->all->aprev = c;
	g->all = c;
	g->n_all++;
	return c;
}

static struct ws_opts conn_ws_opts(const struct gw *g, const struct gw_params *p, int code)
{
	struct ws_opts wo = {.read_timeout_ms = g->o.read_timeout_ms,
			     .send_queue = g->o.send_queue};
	if (code == 0 && p->platform_id == GW_PLATFORM_WEB)
		wo.ping_interval_ms = g->o.ping_interval_ms;
	return wo;
}

/* After the upgrade: the error frame and close, or the connect result, kick, registration. */
static void conn_begin(struct gw_conn *c, const struct gw_params *p, int code, const char *dlt)
{
	struct im_buf j = {0};
	if (code != 0 || p->msg_resp) {
		if (gw__result_json(code, code ? dlt : "", &j) != 0) {
			ws_conn_abort(c->ws, WS_CLOSE_ERROR);
			return;
		}
		ws_conn_send_text(c->ws, j.p, j.len);
		im_buf_free(&j);
		c->g->stats.frames_out++;
	}
	if (code != 0) {
		ws_conn_close(c->ws, 1000);
		return;
	}
	/* isBackground is parsed, but as in 3.8.3 a connection starts in the foreground (§4.4). */
	kick_older(c);
	if (gw__register(c) != 0)
		ws_conn_abort(c->ws, WS_CLOSE_ERROR);
}

static void free_tcp(uv_handle_t *h)
{
	im_free(h);
}

int gw__accept(struct gw *g, uv_tcp_t *tcp, const char *rest, size_t rest_len,
	       const struct gw_params *p, int code, const char *dlt)
{
	struct gw_conn *c = conn_new(g, p, code);
	struct ws_opts wo = conn_ws_opts(g, p, code);
	int rc = c ? ws_conn_new(tcp, rest, rest_len, &wo, &gw_ws_ops, c, &c->ws) : -ENOMEM;
	if (rc != 0) {
		if (c != NULL)
			conn_unref(c);
		uv_close((uv_handle_t *)tcp, free_tcp);
		return rc;
	}
	conn_begin(c, p, code, dlt);
	ws_conn_start(c->ws);
	return 0;
}

/* ---- the public API ---- */

void gw_reply(struct gw_req *req, int err_code, const char *err_msg, const void *data, size_t len)
{
	struct gw_conn *c = req->conn;
	struct gw *g = c->g;
	gw__enter(g);
	if (c->user != NULL) {
		struct env_resp r = {.req_id = req->req_id,
				     .msg_incr = im_str_c(req->msg_incr),
				     .op_id = im_str_c(req->op_id),
				     .err_code = err_code,
				     .err_msg = im_str_c(err_msg    ? err_msg
							 : err_code ? gw__code_name(err_code)
								    : ""),
				     .data = data,
				     .len = len,
				     .has_data = data != NULL};
		reply_one(c, &r);
	}
	gw__leave(g);
	im_free(req);
	conn_unref(c);
}

_Static_assert(sizeof(((struct gw_batch *)0)->frames) >= sizeof(struct gw_frames),
	       "gw_batch.frames is too small for struct gw_frames");

void gw_batch_begin(struct gw_batch *b, struct gw *g, int32_t req_id, const char *op_id,
		    const void *data, size_t len)
{
	b->g = g;
	b->req_id = req_id;
	b->sent = 0;
	gw__enter(g);
	gw__frames_init((struct gw_frames *)(void *)b->frames, req_id, op_id, data, len,
			data != NULL);
}

void gw_batch_add(struct gw_batch *b, struct im_str user_id)
{
	struct gw_user *u = gw__user_find(b->g, user_id);
	if (u == NULL)
		return;
	struct gw_frames *f = (struct gw_frames *)(void *)b->frames;
	for (struct gw_conn *c = u->conns, *next; c; c = next) {
		next = c->unext;
		/* A background iOS connection gets offline pushes instead (§4.4). */
		if (b->req_id == GW_REQ_PUSH && c->background && c->platform_id == GW_PLATFORM_IOS)
			continue;
		b->sent += gw__conn_send(c, gw__frames_get(f, c->fmt));
	}
}

void gw_batch_end(struct gw_batch *b)
{
	gw__frames_free((struct gw_frames *)(void *)b->frames);
	gw__leave(b->g);
}

int gw_push(struct gw *g, struct im_str user_id, int32_t req_id, const char *op_id,
	    const void *data, size_t len)
{
	struct gw_batch b;
	gw_batch_begin(&b, g, req_id, op_id, data, len);
	gw_batch_add(&b, user_id);
	gw_batch_end(&b);
	return b.sent;
}

void gw_kick(struct gw *g, struct im_str user_id, int32_t platform_id)
{
	gw_kick_except(g, user_id, platform_id, (struct im_str){NULL, 0});
}

void gw_kick_except(struct gw *g, struct im_str user_id, int32_t platform_id,
		    struct im_str keep_token)
{
	gw__enter(g);
	struct gw_user *u = gw__user_find(g, user_id);
	if (u != NULL) {
		struct gw_frames f;
		gw__frames_init(&f, GW_REQ_KICK, "", NULL, 0, false);
		for (struct gw_conn *c = u->conns, *next; c; c = next) {
			next = c->unext;
			if ((platform_id == 0 || c->platform_id == platform_id) &&
			    !(keep_token.n && im_str_eq(im_str_c(c->token), keep_token)))
				kick_one(c, &f);
		}
		gw__frames_free(&f);
	}
	gw__leave(g);
}

int gw_user_conns(struct gw *g, struct im_str user_id, gw_conn_cb cb, void *arg)
{
	struct gw_user *u = gw__user_find(g, user_id);
	int n = 0;
	for (struct gw_conn *c = u ? u->conns : NULL; c; c = c->unext, n++) {
		struct gw_conn_info ci = {.platform_id = c->platform_id,
					  .conn_id = c->id,
					  .is_background = c->background,
					  .token = c->token};
		if (cb)
			cb(&ci, arg);
	}
	return n;
}

void gw_get_stats(const struct gw *g, struct gw_stats *out)
{
	*out = g->stats;
}

struct srv *gw__srv(const struct gw *g)
{
	return g->s;
}

bool gw__at_capacity(const struct gw *g)
{
	return g->stats.conns_open >= g->o.max_conns;
}

static struct gw *gw_alloc(struct srv *s, const struct gw_opts *o)
{
	struct gw *g = im_calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->s = s;
	g->o = *o;
	g->o.addr = NULL;
	if (g->o.max_conns == 0)
		g->o.max_conns = 100000;
	if (g->o.send_queue == 0)
		g->o.send_queue = 256;
	if (g->o.read_timeout_ms == 0)
		g->o.read_timeout_ms = 30000;
	if (g->o.ping_interval_ms == 0)
		g->o.ping_interval_ms = 27000;
	if (gw__users_init(g) != 0) {
		im_free(g);
		return NULL;
	}
	return g;
}

static void gw_free(struct gw *g)
{
	gw__users_free(g);
	im_free(g);
}

int gw_start(struct srv *s, const struct gw_opts *o, struct gw **out)
{
	*out = NULL;
	struct gw *g = gw_alloc(s, o);
	if (g == NULL)
		return UV_ENOMEM;
	struct http_opts ho = {.addr = o->addr,
			       .handler = gw__http_handler,
			       .arg = g,
			       .max_header_bytes = 16384,
			       .max_body_bytes = 4096,
			       .request_timeout_ms = 10000,
			       .max_pipeline = 1};
	int rv = http_server_start(s->loop, &ho, &g->http);
	if (rv != 0) {
		gw_free(g);
		return rv;
	}
	*out = g;
	return 0;
}

int gw_port(const struct gw *g)
{
	return g->http ? http_server_port(g->http) : 0;
}

static void maybe_done(struct gw *g)
{
	if (!g->closing || !g->http_closed || g->n_all > 0 || g->depth > 0 || g->done)
		return;
	g->done = true;
	void (*cb)(void *) = g->close_cb;
	void *arg = g->close_arg;
	gw_free(g);
	if (cb)
		cb(arg);
}

static void on_http_closed(void *arg)
{
	struct gw *g = arg;
	g->http = NULL;
	g->http_closed = true;
	maybe_done(g);
}

void gw_close(struct gw *g, void (*cb)(void *arg), void *arg)
{
	g->closing = true;
	g->close_cb = cb;
	g->close_arg = arg;
	gw__enter(g);
	for (struct gw_conn *c = g->all; c; c = c->anext)
		if (c->ws)
			conn_close(c, 1001, false);
	if (g->http)
		http_server_close(g->http, on_http_closed, g);
	else
		g->http_closed = true;
	gw__leave(g);
}

/* ---- the test seam ---- */

struct gw *gw_test_new(struct srv *s, const struct gw_opts *o)
{
	return gw_alloc(s, o);
}

struct gw_conn *gw_test_conn(struct gw *g, const struct gw_params *p, ws_test_write_fn write_cb,
			     void *warg)
{
	struct gw_conn *c = conn_new(g, p, 0);
	if (c == NULL)
		return NULL;
	struct ws_opts wo = conn_ws_opts(g, p, 0);
	c->ws = ws_test_conn_new(&wo, &gw_ws_ops, c, write_cb, warg);
	if (c->ws == NULL) {
		conn_unref(c);
		return NULL;
	}
	gw__enter(g);
	conn_begin(c, p, 0, NULL);
	gw__leave(g);
	return c;
}

int gw_test_feed(struct gw_conn *c, const uint8_t *data, size_t len)
{
	return c->ws ? ws_test_feed(c->ws, data, len) : UV_EOF;
}

void gw_test_conn_free(struct gw_conn *c)
{
	if (c->ws)
		ws_test_conn_free(c->ws); /* on_closing, on_free: drops the WebSocket's reference */
}

void gw_test_free(struct gw *g)
{
	gw_free(g);
}
