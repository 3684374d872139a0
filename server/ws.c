/* ws.c - the per-connection WebSocket machinery: wslay for frames, libuv for the socket, the
 * text heartbeat, deadlines, the bounded send queue and the close handshake.
 *
 * Invariants:
 * 1. Inbound bytes reach wslay only through recv_cb, from the buffer that
 *    process_input() is working on; wslay never blocks and keeps partial
 *    frames itself.
 * 2. Outbound frames never interleave: data frames are complete ws_bufs handed
 *    to one uv_write() each, and wslay's own frames (pongs, pings, close) are
 *    collected whole by send_cb during flush() and written as one ws_buf.
 *    libuv writes requests in order.
 * 3. No data frame is written after the close frame: ws_conn_send() requires
 *    OPEN, and the state leaves OPEN before a close frame is queued.
 * 4. A connection is freed only from the libuv close callback of its last
 *    handle (or ws_test_conn_free()), never inside one of its callbacks;
 *    write callbacks of cancelled writes run before it.
 * 5. ops.on_closing runs exactly once, when the state leaves OPEN; ops.on_free
 *    exactly once, last.
 * 6. Queue accounting: `pending` counts the frames libuv could not hand to
 *    the kernel at once (uv_write() left bytes in the stream's write queue)
 *    and has not completed yet; frames the kernel took immediately never
 *    count.  A data frame sent while `pending` is at the limit closes the
 *    connection (WS_CLOSE_SLOW).
 * 7. Write coalescing: data frames wait in `outq` until the connection's
 *    prepare handle runs (once per loop iteration, just before libuv polls),
 *    which hands all of them to one uv_write() (one writev): the 1003 reply
 *    and the pushes made in the same iteration leave in one system call.
 *    At most WS_OUTQ_MAX frames wait (a burst is written at once).  Frames in
 *    `outq` are written before the close frame (close_with), and dropped
 *    when the connection is aborted.
 *
 * State diagram:
 *
 *     OPEN --ws_conn_close / peer close / bad input--> CLOSING
 *       |       (close frame queued; data frames refused)  |
 *       |                                                  | close frame written (shutdown done)
 *       |                                                  | and the peer's close, EOF or
 *       |                                                  | close_timeout_ms
 *       |                                                  v
 *       +--EOF, socket error, deadline, slow, abort-----> CLOSED --handles closed--> freed
 */
#include "ws_int.h"

#include <errno.h>
#include <stdio.h>

#include <wslay/wslay.h>

#include "json.h"

enum ws_state { ST_OPEN, ST_CLOSING, ST_CLOSED };

#define WS_OUTQ_MAX 64 /* data frames coalesced into one write at most */

struct ws_wreq {
	uv_write_t w;
	struct ws_conn *c;
	unsigned pending; /* frames of this request counted in c->pending */
	unsigned n;
	struct ws_buf *b[]; /* n frames */
};

struct ws_conn {
	uv_tcp_t *tcp; /* NULL for a test connection */
	uv_timer_t timer;
	uv_prepare_t prep; /* writes outq (invariant 7) */
	uv_shutdown_t shut;
	int handles; /* libuv handles not yet closed */
	wslay_event_context_ptr ctx;
	struct ws_opts o;
	struct ws_ops ops;
	void *arg;
	enum ws_state state;
	bool notified;	      /* on_closing ran */
	bool shutting;	      /* uv_shutdown requested (our close frame is queued) */
	bool shut_done;	      /* ... and completed: every frame was written */
	bool peer_done;	      /* the peer's close frame or EOF arrived, or reading stopped */
	int depth;	      /* inside process_input() */
	unsigned pending;     /* frames libuv holds unwritten (invariant 6) */
	struct ws_buf **outq; /* data frames waiting for the prepare handle (invariant 7) */
	unsigned outq_n, outq_cap;
	struct ws_conn *qnext, *qprev; /* in `queued` while outq_n > 0 */
	uint64_t deadline, next_ping, close_deadline;
	const uint8_t *in;
	size_t in_len;
	struct im_buf ctl;
	char *rest;
	size_t rest_len;
	ws_test_write_fn twrite;
	void *twarg;
};

static void close_handles(struct ws_conn *c);
static void flush(struct ws_conn *c);
static void on_timer(uv_timer_t *t);

/* ---- shared frames ---- */

struct ws_buf *ws_buf_frame(int opcode, const void *payload, size_t len)
{
	size_t hdr = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
	if (len > SIZE_MAX - sizeof(struct ws_buf) - hdr)
		return NULL;
	struct ws_buf *b = im_malloc(sizeof(*b) + hdr + len);
	if (b == NULL)
		return NULL;
	b->refs = 1;
	b->len = hdr + len;
	b->data[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (hdr == 2) {
		b->data[1] = (uint8_t)len;
	} else if (hdr == 4) {
		b->data[1] = 126;
		b->data[2] = (uint8_t)(len >> 8);
		b->data[3] = (uint8_t)len;
	} else {
		b->data[1] = 127;
		im_put_be64(b->data + 2, (uint64_t)len);
	}
	if (len)
		memcpy(b->data + hdr, payload, len);
	return b;
}

void ws_buf_ref(struct ws_buf *b)
{
	b->refs++;
}

void ws_buf_unref(struct ws_buf *b)
{
	if (b != NULL && --b->refs == 0)
		im_free(b);
}

/* ---- state changes ---- */

static uint64_t now_ms(struct ws_conn *c)
{
	return c->tcp ? uv_now(c->tcp->loop) : 0;
}

static void notify(struct ws_conn *c, enum ws_close_reason why)
{
	if (c->notified)
		return;
	c->notified = true;
	if (c->ops.on_closing)
		c->ops.on_closing(c, why, c->arg);
}

static void arm_timer(struct ws_conn *c)
{
	if (c->tcp == NULL || c->state == ST_CLOSED)
		return;
	uint64_t due = c->state == ST_CLOSING ? c->close_deadline : c->deadline;
	if (c->state == ST_OPEN && c->o.ping_interval_ms && c->next_ping < due)
		due = c->next_ping;
	uint64_t now = now_ms(c);
	uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

/* OPEN -> CLOSING. */
static void set_closing(struct ws_conn *c, enum ws_close_reason why)
{
	if (c->state != ST_OPEN)
		return;
	c->state = ST_CLOSING;
	c->close_deadline = now_ms(c) + c->o.close_timeout_ms;
	arm_timer(c);
	notify(c, why);
}

/* CLOSING -> CLOSED once the handshake is over on both sides. */
static void maybe_finish(struct ws_conn *c)
{
	if (c->state == ST_CLOSING && c->peer_done && c->shut_done)
		close_handles(c);
}

void ws_conn_abort(struct ws_conn *c, enum ws_close_reason why)
{
	if (c->state == ST_CLOSED)
		return;
	notify(c, why);
	close_handles(c);
}

bool ws_conn_is_open(const struct ws_conn *c)
{
	return c->state == ST_OPEN;
}

/* ---- writing ---- */

static void on_write(uv_write_t *w, int status)
{
	struct ws_wreq *r = (struct ws_wreq *)w;
	struct ws_conn *c = r->c;
	c->pending -= r->pending;
	for (unsigned i = 0; i < r->n; i++)
		ws_buf_unref(r->b[i]);
	im_free(r);
	if (status < 0 && status != UV_ECANCELED && c->state != ST_CLOSED)
		ws_conn_abort(c, WS_CLOSE_ERROR);
}

/* Hands frames b[0..n) to one uv_write() (taking a reference each); 0 or an error (aborted). */
static int write_bufs(struct ws_conn *c, struct ws_buf *const *b, unsigned n)
{
	if (c->tcp == NULL) {
		for (unsigned i = 0; i < n; i++)
			c->twrite(c->twarg, b[i]->data, b[i]->len);
		return 0;
	}
	uv_buf_t small[16], *ub = n <= 16 ? small : im_malloc(n * sizeof(*ub));
	struct ws_wreq *r = im_malloc(sizeof(*r) + n * sizeof(r->b[0]));
	if (r == NULL || ub == NULL) {
		im_free(r);
		if (ub != small)
			im_free(ub);
		ws_conn_abort(c, WS_CLOSE_ERROR);
		return -ENOMEM;
	}
	r->c = c;
	r->n = n;
	r->pending = 0;
	for (unsigned i = 0; i < n; i++) {
		r->b[i] = b[i];
		ws_buf_ref(b[i]);
		ub[i] = uv_buf_init((char *)b[i]->data, (unsigned)b[i]->len);
	}
	int rv = uv_write(&r->w, (uv_stream_t *)c->tcp, ub, n, on_write);
	if (ub != small)
		im_free(ub);
	if (rv != 0) {
		for (unsigned i = 0; i < n; i++)
			ws_buf_unref(b[i]);
		im_free(r);
		ws_conn_abort(c, WS_CLOSE_ERROR);
		return rv;
	}
	/* libuv writes at once when it can; what is left waits for the socket. */
	if (uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) > 0) {
		r->pending = n;
		c->pending += n;
	}
	return 0;
}

static int write_buf(struct ws_conn *c, struct ws_buf *b)
{
	return write_bufs(c, &b, 1);
}

/* The connections with frames in outq (loop thread only, like everything here). */
static struct ws_conn *queued;

static void queued_add(struct ws_conn *c)
{
	c->qprev = NULL;
	c->qnext = queued;
	if (queued)
		queued->qprev = c;
	queued = c;
}

static void queued_del(struct ws_conn *c)
{
	if (c->qprev)
		c->qprev->qnext = c->qnext;
	else if (queued == c)
		queued = c->qnext;
	if (c->qnext)
		c->qnext->qprev = c->qprev;
	c->qnext = c->qprev = NULL;
}

/* Drops the frames waiting in outq (their references). */
static void outq_drop(struct ws_conn *c)
{
	if (c->outq_n)
		queued_del(c);
	for (unsigned i = 0; i < c->outq_n; i++)
		ws_buf_unref(c->outq[i]);
	c->outq_n = 0;
}

/* Writes the frames waiting in outq, in order, with one uv_write(). */
static void outq_write(struct ws_conn *c)
{
	if (c->outq_n == 0)
		return;
	if (c->tcp)
		uv_prepare_stop(&c->prep);
	queued_del(c);
	unsigned n = c->outq_n;
	c->outq_n = 0;
	(void)write_bufs(c, c->outq, n); /* aborts the connection on failure */
	for (unsigned i = 0; i < n; i++)
		ws_buf_unref(c->outq[i]);
}

static void on_prepare(uv_prepare_t *p)
{
	outq_write(p->data);
}

void ws_flush_queued(void)
{
	while (queued)
		outq_write(queued); /* takes it off the list first */
}

int ws_conn_send(struct ws_conn *c, struct ws_buf *b)
{
	if (c->state != ST_OPEN)
		return IM_ESHUTDOWN;
	if (c->tcp == NULL)
		return write_buf(c, b) == 0 ? 0 : IM_ESHUTDOWN;
	if (c->pending >= c->o.send_queue) {
		ws_conn_abort(c, WS_CLOSE_SLOW);
		return IM_EFULL;
	}
	if (c->outq_n == c->outq_cap) {
		unsigned cap = c->outq_cap ? c->outq_cap * 2 : 8;
		struct ws_buf **q = im_realloc(c->outq, cap * sizeof(*q));
		if (q == NULL) {
			ws_conn_abort(c, WS_CLOSE_ERROR);
			return IM_ESHUTDOWN;
		}
		c->outq = q;
		c->outq_cap = cap;
	}
	ws_buf_ref(b);
	c->outq[c->outq_n++] = b;
	if (c->outq_n == 1) {
		uv_prepare_start(&c->prep, on_prepare);
		queued_add(c);
	} else if (c->outq_n == WS_OUTQ_MAX)
		outq_write(c); /* a burst: write now, keep coalescing after it */
	return c->state == ST_OPEN ? 0 : IM_ESHUTDOWN;
}

int ws_conn_send_text(struct ws_conn *c, const char *text, size_t len)
{
	if (c->state != ST_OPEN)
		return IM_ESHUTDOWN;
	struct ws_buf *b = ws_buf_frame(WS_OP_TEXT, text, len);
	if (b == NULL) {
		ws_conn_abort(c, WS_CLOSE_ERROR);
		return -ENOMEM;
	}
	int rv = ws_conn_send(c, b);
	ws_buf_unref(b);
	return rv;
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
	struct ws_conn *c = s->data;
	IM_UNUSED(status);
	c->shut_done = true;
	maybe_finish(c);
}

/* Writes what wslay queued (pongs, pings, the close frame); starts the shutdown after close. */
static void flush(struct ws_conn *c)
{
	if (c->state == ST_CLOSED || c->depth > 0)
		return;
	int rv = 0;
	if (wslay_event_want_write(c->ctx))
		rv = wslay_event_send(c->ctx);
	if (c->ctl.len) {
		struct ws_buf *b = im_malloc(sizeof(*b) + c->ctl.len);
		if (b == NULL) {
			ws_conn_abort(c, WS_CLOSE_ERROR);
			return;
		}
		b->refs = 1;
		b->len = c->ctl.len;
		memcpy(b->data, c->ctl.p, c->ctl.len);
		c->ctl.len = 0;
		int wr = write_buf(c, b);
		ws_buf_unref(b);
		if (wr != 0)
			return;
	}
	if (rv != 0) {
		ws_conn_abort(c, WS_CLOSE_ERROR);
		return;
	}
	if (wslay_event_get_close_sent(c->ctx) && !c->shutting) {
		c->shutting = true;
		if (c->tcp == NULL) {
			c->shut_done = true;
		} else {
			c->shut.data = c;
			if (uv_shutdown(&c->shut, (uv_stream_t *)c->tcp, on_shutdown) != 0) {
				close_handles(c);
				return;
			}
		}
	}
	maybe_finish(c);
}

/* Starts the close handshake with a reason for on_closing. */
static void close_with(struct ws_conn *c, uint16_t code, enum ws_close_reason why)
{
	if (c->state != ST_OPEN)
		return;
	outq_write(c); /* the data frames go before the close frame (invariant 7) */
	if (c->state != ST_OPEN)
		return; /* the write failed: aborted */
	set_closing(c, why);
	if (c->state == ST_CLOSED)
		return; /* on_closing aborted it */
	/* Fails only when wslay queued a close frame itself; either goes out with flush. */
	(void)wslay_event_queue_close(c->ctx, code, NULL, 0);
	flush(c);
}

void ws_conn_close(struct ws_conn *c, uint16_t code)
{
	close_with(c, code, WS_CLOSE_LOCAL);
}

/* ---- wslay callbacks ---- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct ws_conn *c = user;
	IM_UNUSED(flags);
	if (c->in_len == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	size_t n = IM_MIN(len, c->in_len);
	memcpy(buf, c->in, n);
	c->in += n;
	c->in_len -= n;
	return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	struct ws_conn *c = user;
	IM_UNUSED(flags);
	if (im_buf_add(&c->ctl, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/* The read deadline is re-armed by data frames and Ping control frames (§4.6), not Pong. */
static void on_frame_start(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	struct ws_conn *c = user;
	IM_UNUSED(ctx);
	if (arg->opcode != WSLAY_PONG && arg->opcode != WSLAY_CONNECTION_CLOSE)
		c->deadline = now_ms(c) + c->o.read_timeout_ms;
}

/* {"type":"ping","body":X} -> {"type":"pong","body":X|null}; "pong" accepted; else close. */
static void on_text(struct ws_conn *c, const uint8_t *msg, size_t len)
{
	struct json_err je;
	json_t *o = json_parse_body((const char *)msg, len, &je);
	struct im_str type = {"", 0};
	if (o == NULL || json_get_str(o, "type", &type, NULL, &je) != 0) {
		json_decref(o);
		close_with(c, 1003, WS_CLOSE_BAD);
		return;
	}
	if (im_str_eq(type, IM_STR_LIT("pong"))) {
		json_decref(o);
		return;
	}
	if (!im_str_eq(type, IM_STR_LIT("ping"))) {
		json_decref(o);
		close_with(c, 1003, WS_CLOSE_BAD);
		return;
	}
	json_t *body = json_field(o, "body");
	json_t *r = json_object();
	struct im_buf out = {0};
	int rv = -ENOMEM;
	if (r && json_object_set_new(r, "type", json_string("pong")) == 0 &&
	    json_object_set_new(r, "body", body ? json_incref(body) : json_null()) == 0)
		rv = json_go_dump(r, &out);
	if (rv == 0)
		ws_conn_send_text(c, out.p, out.len);
	else
		ws_conn_abort(c, WS_CLOSE_ERROR);
	im_buf_free(&out);
	json_decref(r);
	json_decref(o);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		   void *user)
{
	struct ws_conn *c = user;
	IM_UNUSED(ctx);
	if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		c->peer_done = true;
		set_closing(c, WS_CLOSE_PEER);
		return;
	}
	if (c->state != ST_OPEN)
		return; /* data after our close frame is dropped (RFC 6455 §1.4) */
	if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) &&
	    c->ops.on_frame)
		c->ops.on_frame(c, c->arg);
	if (c->state != ST_OPEN)
		return;
	if (arg->opcode == WSLAY_TEXT_FRAME)
		on_text(c, arg->msg, arg->msg_length);
	else if (arg->opcode == WSLAY_BINARY_FRAME)
		c->ops.on_binary(c, arg->msg, arg->msg_length, c->arg);
}

/* ---- reading ---- */

static void process_input(struct ws_conn *c, const uint8_t *data, size_t n)
{
	if (c->state == ST_CLOSED || !wslay_event_get_read_enabled(c->ctx))
		return;
	c->depth++;
	c->in = data;
	c->in_len = n;
	int rv = wslay_event_recv(c->ctx);
	c->in = NULL;
	c->in_len = 0;
	c->depth--;
	if (c->state == ST_CLOSED)
		return;
	if (rv == WSLAY_ERR_NOMEM) {
		ws_conn_abort(c, WS_CLOSE_ERROR);
		return;
	}
	if (!wslay_event_get_read_enabled(c->ctx)) {
		/*
		 * wslay queued a close: the answer to the peer's, or a protocol
		 * error, 1009 or 1007.  In the latter cases the socket is still
		 * read (and discarded) until the peer's EOF or the close timeout,
		 * so that closing it with unread bytes does not reset the close
		 * frame away.
		 */
		set_closing(c,
			    wslay_event_get_close_received(c->ctx) ? WS_CLOSE_PEER : WS_CLOSE_BAD);
	}
	flush(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char buf[64 * 1024]; /* consumed before on_read returns; loop thread only */
	IM_UNUSED(h);
	IM_UNUSED(hint);
	*b = uv_buf_init(buf, sizeof(buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct ws_conn *c = s->data;
	if (n > 0) {
		process_input(c, (const uint8_t *)b->base, (size_t)n);
		return;
	}
	if (n == 0 || c->state == ST_CLOSED)
		return;
	uv_read_stop(s);
	if (c->state == ST_OPEN) {
		ws_conn_abort(c, n == UV_EOF ? WS_CLOSE_PEER : WS_CLOSE_ERROR);
		return;
	}
	c->peer_done = true;
	if (n != UV_EOF)
		close_handles(c);
	else
		maybe_finish(c);
}

/* The one timer: read deadline and server pings while OPEN, the close timeout while CLOSING. */
static void on_timer(uv_timer_t *t)
{
	struct ws_conn *c = t->data;
	uint64_t now = now_ms(c);
	if (c->state == ST_CLOSING) {
		if (now >= c->close_deadline)
			close_handles(c);
		else
			arm_timer(c);
		return;
	}
	if (c->state != ST_OPEN)
		return;
	if (now >= c->deadline) {
		ws_conn_abort(c, WS_CLOSE_TIMEOUT);
		return;
	}
	if (c->o.ping_interval_ms && now >= c->next_ping) {
		struct wslay_event_msg m = {WSLAY_PING, NULL, 0};
		c->next_ping = now + c->o.ping_interval_ms;
		if (wslay_event_queue_msg(c->ctx, &m) == 0)
			flush(c);
	}
	arm_timer(c);
}

/* ---- life cycle ---- */

static void destroy(struct ws_conn *c)
{
	if (c->ops.on_free)
		c->ops.on_free(c, c->arg);
	wslay_event_context_free(c->ctx);
	im_buf_free(&c->ctl);
	outq_drop(c);
	im_free(c->outq);
	im_free(c->rest);
	im_free(c->tcp);
	im_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct ws_conn *c = h->data;
	if (--c->handles == 0)
		destroy(c);
}

static void close_handles(struct ws_conn *c)
{
	if (c->state == ST_CLOSED)
		return;
	c->state = ST_CLOSED;
	outq_drop(c);
	if (c->tcp == NULL)
		return;
	uv_read_stop((uv_stream_t *)c->tcp);
	uv_close((uv_handle_t *)c->tcp, on_handle_closed);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_prepare_stop(&c->prep);
	uv_close((uv_handle_t *)&c->prep, on_handle_closed);
}

static void apply_defaults(struct ws_opts *o)
{
	if (o->max_msg == 0)
		o->max_msg = 51200;
	if (o->read_timeout_ms == 0)
		o->read_timeout_ms = 30000;
	if (o->send_queue == 0)
		o->send_queue = 256;
	if (o->close_timeout_ms == 0)
		o->close_timeout_ms = 2000;
}

static struct ws_conn *conn_alloc(const struct ws_opts *o, const struct ws_ops *ops, void *arg)
{
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = recv_cb,
	    .send_callback = send_cb,
	    .on_frame_recv_start_callback = on_frame_start,
	    .on_msg_recv_callback = on_msg,
	};
	struct ws_conn *c = im_calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->o = *o;
	apply_defaults(&c->o);
	c->ops = *ops;
	c->arg = arg;
	if (wslay_event_context_server_init(&c->ctx, &cbs, c) != 0) {
		im_free(c);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(c->ctx, c->o.max_msg);
	return c;
}

int ws_conn_new(uv_tcp_t *tcp, const char *rest, size_t rest_len, const struct ws_opts *o,
		const struct ws_ops *ops, void *arg, struct ws_conn **out)
{
	*out = NULL;
	struct ws_conn *c = conn_alloc(o, ops, arg);
	if (c == NULL)
		return -ENOMEM;
	if (rest_len) {
		c->rest = im_malloc(rest_len);
		if (c->rest == NULL) {
			wslay_event_context_free(c->ctx);
			im_free(c);
			return -ENOMEM;
		}
		memcpy(c->rest, rest, rest_len);
		c->rest_len = rest_len;
	}
	uv_timer_init(tcp->loop, &c->timer);
	c->timer.data = c;
	uv_prepare_init(tcp->loop, &c->prep);
	c->prep.data = c;
	c->tcp = tcp;
	tcp->data = c;
	c->handles = 3;
	*out = c;
	return 0;
}

void ws_conn_start(struct ws_conn *c)
{
	if (c->state == ST_CLOSED)
		return;
	uint64_t now = now_ms(c);
	c->deadline = now + c->o.read_timeout_ms;
	c->next_ping = now + c->o.ping_interval_ms;
	if (c->state == ST_OPEN)
		arm_timer(c);
	if (c->rest_len) {
		process_input(c, (const uint8_t *)c->rest, c->rest_len);
		im_free(c->rest);
		c->rest = NULL;
		c->rest_len = 0;
	}
	if (c->state != ST_CLOSED && uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read) != 0)
		ws_conn_abort(c, WS_CLOSE_ERROR);
}

/* ---- the test seam ---- */

struct ws_conn *ws_test_conn_new(const struct ws_opts *o, const struct ws_ops *ops, void *arg,
				 ws_test_write_fn write_cb, void *warg)
{
	struct ws_conn *c = conn_alloc(o, ops, arg);
	if (c == NULL)
		return NULL;
	c->twrite = write_cb;
	c->twarg = warg;
	return c;
}

int ws_test_feed(struct ws_conn *c, const uint8_t *data, size_t len)
{
	if (c->depth > 0)
		return UV_EBUSY;
	process_input(c, data, len);
	return c->state == ST_CLOSED || !wslay_event_get_read_enabled(c->ctx) ? UV_EOF : 0;
}

void ws_test_conn_free(struct ws_conn *c)
{
	if (c->state == ST_OPEN)
		notify(c, WS_CLOSE_LOCAL);
	c->state = ST_CLOSED;
	destroy(c);
}
