/* http.c - the HTTP/1.1 server: accept, llhttp parsing, the pipeline FIFO, answers, timeouts. */

/*
 * Invariants
 *  1. Every request handed to the handler sits in its connection's FIFO
 *     (c->head .. c->tail) until its answer is written or the connection aborts
 *     it.  Answers leave the FIFO only from its head, so bytes go out in
 *     request order whatever order the application answers in.
 *  2. While a connection reads, outstanding(c) (requests in the FIFO plus
 *     responses being written) reaches max_pipeline at most: at the limit it
 *     stops reading and keeps at most one read's worth of unparsed bytes
 *     (c->held).  Nothing else is buffered beyond the configured limits.
 *  3. A request owns copies of everything it shows: method, URL and headers
 *     in s->raw (each NUL-terminated), the body in s->body.  Nothing points
 *     into a read buffer, so later bytes never disturb an earlier request.
 *  4. The handler is never called from inside llhttp_execute():
 *     on_message_complete pauses the parser and the request is dispatched
 *     once llhttp_execute() has returned (parse_input).
 *  5. After a request that ends the connection (an error, no keep-alive, an
 *     upgrade) the parser never runs again; the next bytes are not HTTP.
 *  6. A connection is freed only by maybe_free(), once its handles are closed
 *     and no write is in flight; nothing frees it inside its own callbacks.
 *  7. When a connection goes away, each request still waiting for an answer
 *     gets on_abort and is freed; a request without on_abort becomes a
 *     zombie (state SL_ZOMBIE, req->conn NULL) that a later http_respond()
 *     frees without writing anything.
 *
 * Connection states (set_state() asserts these transitions):
 *
 *      accept / http_test_conn_new
 *            |
 *            v          request that ends the connection
 *        READING ------------------------------------> DRAINING
 *         |   ^  pipeline full: stop reading              |   \  http_detach()
 *         |   |  answers drained: read again              |    '-----------> DETACHED -> freed
 *         |   '-------------                              | its answer queued
 *         |     answer with keep_alive cleared            v
 *         +------------------------------------------> FINISHING --shutdown--> LINGER
 *         |                                               |                      |
 *         +-- EOF, error, timeout, server close --------> CLOSING <--EOF, timer--'
 *                                                         |
 *                                              close callbacks -> freed
 *
 * Test connections have no socket: FINISHING and CLOSING end in CLOSED at once.
 */
#include "http_int.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <arpa/inet.h>

#include "llhttp.h"

enum conn_state {
	ST_READING,
	ST_DRAINING,
	ST_FINISHING,
	ST_LINGER,
	ST_DETACHED,
	ST_CLOSING,
	ST_CLOSED,
};

enum slot_state {
	SL_PARSING,	  /* c->cur: llhttp is filling it in */
	SL_WAITING,	  /* in the FIFO, the application owes an answer */
	SL_ANSWERED,	  /* in the FIFO with s->out, waiting for its turn */
	SL_ABORTING,	  /* being aborted; an answer now only marks it */
	SL_ANSWERED_LATE, /* answered while being aborted */
	SL_ZOMBIE,	  /* its connection is gone; http_respond() frees it */
};

/* Which element of the request head the span callbacks are filling. */
enum piece { PC_NONE, PC_METHOD, PC_URL, PC_FIELD, PC_VALUE, PC_DONE };

enum timer_mode { TM_NONE, TM_IDLE, TM_REQUEST, TM_LINGER };

/* Offsets into s->raw while the head is parsed (raw may move as it grows). */
struct hdr_off {
	size_t name, name_len;
	size_t value, value_len;
	bool has_value;
};

/* One response: its write request and its bytes in a single allocation. */
struct http__out {
	uv_write_t w;
	struct http_conn *conn;
	size_t len;
	char data[];
};

struct http__slot {
	struct http_req req; /* first: http_respond() gets back here */
	struct http__slot *next;
	enum slot_state state;
	struct http__out *out;
	bool must_close; /* the parser stopped after this request */
	bool closes;	 /* the connection ends after this answer */
	bool upgrade;	 /* llhttp saw an upgrade or CONNECT: the rest is not HTTP */
	bool is_head;
	bool finalized;
	uint8_t major, minor;
	enum piece piece;
	size_t hdr_bytes; /* method, URL, names and values so far, for max_header_bytes */
	struct im_buf raw;
	size_t method_off, method_len, url_off, url_len;
	struct hdr_off *hoff;
	unsigned n_hoff, cap_hoff;
	struct im_buf body;
};

struct http_conn {
	struct http_server *srv; /* NULL for test connections and once detached */
	const struct http_opts *o;
	uv_tcp_t *tcp; /* allocated on its own so that http_detach() can hand it over */
	uv_timer_t timer;
	uv_shutdown_t shut;
	llhttp_t parser;
	enum conn_state state;
	enum timer_mode tmode;
	struct http__slot *timed; /* the request the TM_REQUEST timer runs for */
	int handles;		  /* libuv handles not yet closed */
	unsigned writes;	  /* uv_write requests in flight */
	unsigned n_slots;
	struct http__slot *head, *tail; /* the FIFO of invariant 1 */
	struct http__slot *cur;		/* the request being parsed */
	char *held;			/* unparsed input while paused (invariant 2) */
	size_t held_len;
	int err; /* HTTP_REQ_* found by a parser callback */
	bool oom;
	bool reading;
	bool paused;
	int in_parse;
	struct http_conn *prev, *next; /* in srv->conns */
	char peer[64];
	http_test_write_fn twrite;
	void *targ;
	struct http_opts topts; /* the options of a test connection */
};

struct http_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_tcp_t spare; /* accepts and drops a connection when memory is short */
	bool spare_busy;
	struct http_opts o;
	int port;
	struct http_conn *conns;
	unsigned aux; /* handles other than conns still closing, listener included */
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
	struct http_stats stats;
	char rbuf[HTTP__READ_BUF]; /* the read buffer, consumed before each read callback returns */
};

static void close_conn(struct http_conn *c);
static void flush(struct http_conn *c);
static void parse_input(struct http_conn *c, const char *p, size_t n);

/* ---- small helpers ---- */

static bool add_ok(size_t *sum, size_t n)
{
	if (n > SIZE_MAX - *sum)
		return false;
	*sum += n;
	return true;
}

/*
 * What counts against max_pipeline: requests the application still holds or
 * whose answers wait for their turn, plus answers handed to uv_write() and not
 * yet flushed to the kernel.  Counting the writes keeps a client that never
 * reads from making us queue answers without end.
 */
static unsigned outstanding(const struct http_conn *c)
{
	return c->n_slots + c->writes;
}

/*
 * The only place a connection changes state; the table is the diagram at the
 * top of the file, checked in debug builds.  DETACHED, CLOSING and CLOSED
 * are final.
 */
static void set_state(struct http_conn *c, enum conn_state to)
{
	static const unsigned legal[] = {
	    [ST_READING] =
		1u << ST_DRAINING | 1u << ST_FINISHING | 1u << ST_CLOSING | 1u << ST_CLOSED,
	    [ST_DRAINING] =
		1u << ST_FINISHING | 1u << ST_DETACHED | 1u << ST_CLOSING | 1u << ST_CLOSED,
	    [ST_FINISHING] = 1u << ST_LINGER | 1u << ST_CLOSING | 1u << ST_CLOSED,
	    [ST_LINGER] = 1u << ST_CLOSING,
	};
	assert(legal[c->state] & (1u << to));
	IM_UNUSED(legal);
	c->state = to;
}

/* Fills zero options with the defaults documented in http.h. */
static void apply_defaults(struct http_opts *o)
{
	if (o->max_header_bytes == 0)
		o->max_header_bytes = 16 * 1024;
	if (o->max_body_bytes == 0)
		o->max_body_bytes = 4 * 1024 * 1024;
	if (o->idle_timeout_ms == 0)
		o->idle_timeout_ms = 60 * 1000;
	if (o->request_timeout_ms == 0)
		o->request_timeout_ms = 30 * 1000;
	if (o->max_pipeline == 0)
		o->max_pipeline = 32;
	if (o->max_conns == 0)
		o->max_conns = 100000;
	/* Views are im_str (32-bit lengths); sizes stay far from overflow. */
	o->max_header_bytes = IM_MIN(o->max_header_bytes, (size_t)1 << 30);
	o->max_body_bytes = IM_MIN(o->max_body_bytes, SIZE_MAX / 4);
}

/* ---- requests ---- */

static struct http__slot *slot_new(struct http_conn *c)
{
	struct http__slot *s = im_calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->req.conn = c;
	memcpy(s->req.peer, c->peer, sizeof(s->req.peer));
	s->state = SL_PARSING;
	return s;
}

/* Frees a request and everything it owns, its answer included if unsent. */
static void slot_free(struct http__slot *s)
{
	im_buf_free(&s->raw);
	im_buf_free(&s->body);
	im_free(s->hoff);
	im_free(s->req.headers);
	im_free(s->out);
	im_free(s);
}

/* The request is the first member, so the application's pointer leads back. */
static struct http__slot *slot_of(struct http_req *req)
{
	return (struct http__slot *)((char *)req - offsetof(struct http__slot, req));
}

/* Appends a dispatched request; the FIFO is the order answers must go out in. */
static void fifo_push(struct http_conn *c, struct http__slot *s)
{
	s->next = NULL;
	if (c->tail)
		c->tail->next = s;
	else
		c->head = s;
	c->tail = s;
	c->n_slots++;
}

/* Removes the head; only flush(), http_detach() and abort_slots() take requests out. */
static struct http__slot *fifo_pop(struct http_conn *c)
{
	struct http__slot *s = c->head;
	c->head = s->next;
	if (c->head == NULL)
		c->tail = NULL;
	c->n_slots--;
	s->next = NULL;
	return s;
}

/*
 * Takes every request out of the FIFO: answered ones are dropped, waiting ones
 * get on_abort (invariant 7).  on_abort may answer any of them, itself
 * included: SL_ABORTING turns such an answer into a mark.
 */
static void abort_slots(struct http_conn *c)
{
	struct http__slot *list = c->head;
	c->head = c->tail = NULL;
	c->n_slots = 0;
	for (struct http__slot *s = list; s; s = s->next)
		if (s->state == SL_WAITING)
			s->state = SL_ABORTING;
	while (list) {
		struct http__slot *s = list;
		list = s->next;
		if (s->state == SL_ABORTING && s->req.on_abort) {
			/* The application lets go of req here; it is freed below. */
			s->req.on_abort(&s->req);
		} else if (s->state == SL_ABORTING) {
			/* Nobody to tell: keep req until its answer comes. */
			s->state = SL_ZOMBIE;
			s->req.conn = NULL;
			s->next = NULL;
			continue;
		}
		slot_free(s);
	}
}

/* Ends the element being filled: each is NUL-terminated in raw. */
static int piece_end(struct http__slot *s)
{
	if (s->piece == PC_NONE || s->piece == PC_DONE)
		return 0;
	s->piece = PC_NONE;
	return im_buf_add(&s->raw, "", 1);
}

/*
 * Starts a new element in raw: llhttp may deliver one element in several
 * spans (one per read), so an element begins when the kind of span changes.
 * A new header name is where the header count limit applies.
 */
static int piece_begin(struct http_conn *c, struct http__slot *s, enum piece kind)
{
	if (piece_end(s) != 0)
		return -1;
	size_t at = s->raw.len;
	switch (kind) {
	case PC_METHOD:
		s->method_off = at;
		s->method_len = 0;
		break;
	case PC_URL:
		s->url_off = at;
		s->url_len = 0;
		break;
	case PC_FIELD:
		if (s->n_hoff == HTTP__MAX_HEADERS) {
			c->err = HTTP_REQ_HEADER_TOO_LARGE;
			return -1;
		}
		if (s->n_hoff == s->cap_hoff) {
			unsigned cap = s->cap_hoff ? IM_MIN(s->cap_hoff * 2, HTTP__MAX_HEADERS) : 8;
			struct hdr_off *h = im_realloc(s->hoff, cap * sizeof(*h));
			if (h == NULL)
				return -1;
			s->hoff = h;
			s->cap_hoff = cap;
		}
		s->hoff[s->n_hoff++] = (struct hdr_off){.name = at};
		break;
	case PC_VALUE:
		if (s->n_hoff == 0)
			return -1;
		s->hoff[s->n_hoff - 1].value = at;
		s->hoff[s->n_hoff - 1].has_value = true;
		break;
	default:
		return -1;
	}
	s->piece = kind;
	return 0;
}

/* A view into raw; empty elements point at a static "" so p is never NULL. */
static struct im_str raw_str(const struct http__slot *s, size_t off, size_t len)
{
	if (len == 0 || s->raw.p == NULL)
		return (struct im_str){"", 0};
	return (struct im_str){s->raw.p + off, (uint32_t)len};
}

/*
 * Points the request at its copies once the head is complete (or cut short
 * by an error); raw does not move afterwards.  The '?' of the URL becomes a
 * NUL, so path and query are NUL-terminated as well.
 */
static int finalize_head(struct http__slot *s)
{
	if (s->finalized)
		return 0;
	if (piece_end(s) != 0)
		return -1;
	s->piece = PC_DONE;
	s->finalized = true;
	s->req.method = raw_str(s, s->method_off, s->method_len);
	struct im_str url = raw_str(s, s->url_off, s->url_len);
	char *q = url.n ? memchr(url.p, '?', url.n) : NULL;
	if (q) {
		*q = '\0';
		s->req.path = (struct im_str){url.p, (uint32_t)(q - url.p)};
		s->req.query = (struct im_str){q + 1, (uint32_t)(url.n - s->req.path.n - 1)};
	} else {
		s->req.path = url;
		s->req.query = (struct im_str){url.p + url.n, 0};
	}
	if (s->n_hoff == 0)
		return 0;
	s->req.headers = im_calloc(s->n_hoff, sizeof(*s->req.headers));
	if (s->req.headers == NULL)
		return -1;
	for (unsigned i = 0; i < s->n_hoff; i++) {
		const struct hdr_off *h = &s->hoff[i];
		s->req.headers[i].name = raw_str(s, h->name, h->name_len);
		s->req.headers[i].value =
		    h->has_value ? raw_str(s, h->value, h->value_len) : (struct im_str){"", 0};
	}
	s->req.n_headers = s->n_hoff;
	return 0;
}

/* Linear search: at most HTTP__MAX_HEADERS names, usually a dozen. */
struct im_str http_req_header(const struct http_req *req, const char *name)
{
	size_t n = strlen(name);
	for (unsigned i = 0; i < req->n_headers; i++) {
		const struct http_header *h = &req->headers[i];
		/* Field names are case-insensitive (RFC 9110 §5.1). */
		if (h->name.n == n && strncasecmp(h->name.p, name, n) == 0)
			return h->value;
	}
	return (struct im_str){NULL, 0};
}

/* ---- llhttp callbacks: they only fill c->cur (invariant 4) ---- */

static int on_message_begin(llhttp_t *p)
{
	struct http_conn *c = p->data;
	assert(c->cur == NULL);
	c->cur = slot_new(c);
	if (c->cur == NULL) {
		c->oom = true;
		return -1;
	}
	return 0;
}

/* Every part of the head passes here: count it, copy it, track its length. */
static int on_span(llhttp_t *p, enum piece kind, const char *at, size_t n)
{
	struct http_conn *c = p->data;
	struct http__slot *s = c->cur;
	if (s == NULL)
		return -1;
	if (n > c->o->max_header_bytes - s->hdr_bytes) {
		c->err = HTTP_REQ_HEADER_TOO_LARGE;
		return -1;
	}
	s->hdr_bytes += n;
	if (s->piece == PC_DONE)
		return 0; /* chunked trailers: counted, not kept */
	if (s->piece != kind && piece_begin(c, s, kind) != 0)
		goto err;
	if (im_buf_add(&s->raw, at, n) != 0)
		goto err;
	switch (kind) {
	case PC_METHOD:
		s->method_len += n;
		break;
	case PC_URL:
		s->url_len += n;
		break;
	case PC_FIELD:
		s->hoff[s->n_hoff - 1].name_len += n;
		break;
	default:
		s->hoff[s->n_hoff - 1].value_len += n;
		break;
	}
	return 0;
err:
	if (c->err == 0)
		c->oom = true;
	return -1;
}

/* The four span callbacks differ only in the element they fill. */
static int on_method(llhttp_t *p, const char *at, size_t n)
{
	return on_span(p, PC_METHOD, at, n);
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	return on_span(p, PC_URL, at, n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	return on_span(p, PC_FIELD, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	return on_span(p, PC_VALUE, at, n);
}

/* Allocates an answer of `len` bytes with its write request in front. */
static struct http__out *out_new(size_t len)
{
	if (len > SIZE_MAX - sizeof(struct http__out))
		return NULL;
	struct http__out *o = im_malloc(sizeof(*o) + len);
	if (o)
		o->len = len;
	return o;
}

static void on_write(uv_write_t *w, int status);

/* Queues one response on the socket, or hands it to the test writer.  Takes o. */
static int send_out(struct http_conn *c, struct http__out *o)
{
	if (c->tcp == NULL) {
		if (c->twrite)
			c->twrite(c->targ, o->data, o->len);
		im_free(o);
		return 0;
	}
	o->conn = c;
	uv_buf_t b;
	b.base = o->data;
	b.len = o->len;
	int rv = uv_write(&o->w, (uv_stream_t *)c->tcp, &b, 1, on_write);
	if (rv != 0) {
		im_free(o);
		return rv;
	}
	c->writes++;
	return 0;
}

/*
 * "Expect: 100-continue" (RFC 9110 §10.1.1): the interim answer goes out
 * only when no earlier answer is owed, so it cannot overtake one.
 */
static int maybe_continue(struct http_conn *c, struct http__slot *s)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct im_str e = http_req_header(&s->req, "Expect");
	if (c->head != NULL || s->minor == 0 || e.n != 12 || strncasecmp(e.p, "100-continue", 12))
		return 0;
	struct http__out *o = out_new(sizeof(cont) - 1);
	if (o == NULL)
		return -1;
	memcpy(o->data, cont, sizeof(cont) - 1);
	return send_out(c, o);
}

/*
 * Makes room for `n` more body bytes and the NUL.  Unlike im_buf it grows to
 * the exact size announced by Content-Length, and never past max + 1 for a
 * chunked body.  The caller has checked len + n <= max.
 */
static int body_grow(struct im_buf *b, size_t n, size_t max)
{
	if (n >= SIZE_MAX - b->len)
		return -1;
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = need;
	if (max != SIZE_MAX) {
		cap = b->cap > SIZE_MAX / 2 ? SIZE_MAX : IM_MAX(b->cap * 2, (size_t)256);
		cap = IM_MAX(need, IM_MIN(cap, max + 1));
	}
	char *p = im_realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	b->p[b->len] = '\0';
	return 0;
}

/*
 * The head is complete: fix the request's views, note what llhttp decided
 * about keep-alive and upgrades (its flags are reset after the message), and
 * refuse an announced body over the limit before any of it is read.
 */
static int on_headers_complete(llhttp_t *p)
{
	struct http_conn *c = p->data;
	struct http__slot *s = c->cur;
	if (s == NULL)
		return -1;
	if (finalize_head(s) != 0) {
		c->oom = true;
		return -1;
	}
	s->major = p->http_major;
	s->minor = p->http_minor;
	s->is_head = p->method == HTTP_HEAD;
	/* llhttp's upgrade also covers CONNECT: either way the rest is not HTTP. */
	s->upgrade = p->upgrade;
	/* HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive" (RFC 9112 §9.3). */
	s->req.keep_alive = llhttp_should_keep_alive(p);
	s->req.upgrade = (p->flags & F_UPGRADE) && (p->flags & F_CONNECTION_UPGRADE);
	bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
	if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED)) {
		/* Refuse early: an oversize body is never read into memory. */
		if (p->content_length > c->o->max_body_bytes) {
			c->err = HTTP_REQ_BODY_TOO_LARGE;
			return -1;
		}
		if (body_grow(&s->body, (size_t)p->content_length, SIZE_MAX) != 0) {
			c->oom = true;
			return -1;
		}
	}
	if (has_body && maybe_continue(c, s) != 0) {
		c->oom = true;
		return -1;
	}
	return 0;
}

/*
 * Body bytes, identity or de-chunked.  The size check comes first, so a
 * chunked body stops at max_body_bytes however it is split.
 */
static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct http_conn *c = p->data;
	struct http__slot *s = c->cur;
	if (s == NULL)
		return -1;
	if (n > c->o->max_body_bytes - s->body.len) {
		c->err = HTTP_REQ_BODY_TOO_LARGE;
		return -1;
	}
	if (body_grow(&s->body, n, c->o->max_body_bytes) != 0) {
		c->oom = true;
		return -1;
	}
	memcpy(s->body.p + s->body.len, at, n);
	s->body.len += n;
	s->body.p[s->body.len] = '\0';
	return 0;
}

/* Pauses so that the request is dispatched outside llhttp (invariant 4). */
static int on_message_complete(llhttp_t *p)
{
	IM_UNUSED(p);
	return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- timers, reading ---- */

static void on_timer(uv_timer_t *t)
{
	struct http_conn *c = t->data;
	IM_DEBUG("http %s: %s timeout", c->peer, c->tmode == TM_LINGER ? "linger" : "request/idle");
	close_conn(c);
}

/* One timer per connection serves every mode; test connections have none. */
static void set_timer(struct http_conn *c, enum timer_mode m, unsigned ms)
{
	if (c->tcp == NULL)
		return;
	uv_timer_stop(&c->timer);
	c->tmode = m;
	if (m != TM_NONE)
		uv_timer_start(&c->timer, on_timer, ms, 0);
}

/*
 * READING connections time out when idle (nothing parsed, nothing owed) or
 * when a request started but has not arrived completely.  While answers
 * are owed and no new request is under way, no timer runs.
 */
static void update_timer(struct http_conn *c)
{
	if (c->tcp == NULL || c->state != ST_READING)
		return;
	if (c->cur) {
		if (c->tmode != TM_REQUEST || c->timed != c->cur) {
			c->timed = c->cur;
			set_timer(c, TM_REQUEST, c->o->request_timeout_ms);
		}
		return;
	}
	c->timed = NULL;
	enum timer_mode m = outstanding(c) == 0 && !c->paused ? TM_IDLE : TM_NONE;
	if (m != c->tmode)
		set_timer(c, m, c->o->idle_timeout_ms);
}

/*
 * All connections read into the server's one buffer: parse_input() copies
 * whatever it keeps (invariant 3) before the read callback returns, and
 * libuv calls the read callback right after the allocation.
 */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct http_conn *c = h->data;
	IM_UNUSED(hint);
	buf->base = c->srv->rbuf;
	buf->len = sizeof(c->srv->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Reading is tracked here so that starting or stopping twice is harmless. */
static void read_start(struct http_conn *c)
{
	if (c->tcp == NULL || c->reading)
		return;
	if (uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read) != 0) {
		close_conn(c);
		return;
	}
	c->reading = true;
}

static void read_stop(struct http_conn *c)
{
	if (c->tcp == NULL || !c->reading)
		return;
	uv_read_stop((uv_stream_t *)c->tcp);
	c->reading = false;
}

/* Forgets unparsed bytes and the request under way: the application never saw it. */
static void drop_input(struct http_conn *c)
{
	im_free(c->held);
	c->held = NULL;
	c->held_len = 0;
	if (c->cur) {
		slot_free(c->cur);
		c->cur = NULL;
	}
}

/* ---- dispatch ---- */

/* Hands a complete (or failed) request to the application. */
static void dispatch(struct http_conn *c, struct http__slot *s, const char *rest, size_t rest_n)
{
	s->req.body = s->body.len ? s->body.p : "";
	s->req.body_len = s->body.len;
	s->state = SL_WAITING;
	if (s->req.error != HTTP_REQ_OK || !s->req.keep_alive || s->upgrade)
		s->must_close = true;
	if (s->upgrade && rest_n > 0) {
		/* What follows an upgrade is kept for http_detach(). */
		c->held = im_malloc(rest_n);
		if (c->held == NULL) {
			slot_free(s);
			close_conn(c);
			return;
		}
		memcpy(c->held, rest, rest_n);
		c->held_len = rest_n;
	}
	fifo_push(c, s);
	if (c->srv) {
		if (s->req.error)
			c->srv->stats.bad_requests++;
		else
			c->srv->stats.requests++;
	}
	if (s->must_close) {
		/* Invariant 5: the parser stops here. */
		set_state(c, ST_DRAINING);
		read_stop(c);
		set_timer(c, TM_NONE, 0);
	} else {
		update_timer(c);
	}
	c->o->handler(&s->req, c->o->arg);
}

/* The parser failed: the partial request still reaches the handler, once. */
static void fail_input(struct http_conn *c, enum llhttp_errno e)
{
	if (c->oom) {
		IM_WARN("http %s: out of memory, closing", c->peer);
		close_conn(c);
		return;
	}
	struct http__slot *s = c->cur ? c->cur : slot_new(c);
	c->cur = NULL;
	if (s == NULL || finalize_head(s) != 0) {
		if (s)
			slot_free(s);
		close_conn(c);
		return;
	}
	s->req.error = c->err ? c->err : HTTP_REQ_BAD;
	s->req.keep_alive = false;
	IM_DEBUG("http %s: request error %d (%s)", c->peer, s->req.error, llhttp_errno_name(e));
	IM_UNUSED(e);
	dispatch(c, s, NULL, 0);
}

/* Stops parsing at the pipeline limit, keeping the unparsed rest (invariant 2). */
static void pause_input(struct http_conn *c, const char *p, size_t n)
{
	assert(c->held == NULL);
	c->paused = true;
	read_stop(c);
	if (n == 0)
		return;
	c->held = im_malloc(n);
	if (c->held == NULL) {
		close_conn(c);
		return;
	}
	memcpy(c->held, p, n);
	c->held_len = n;
}

/*
 * Runs llhttp over new bytes until they are used up, the pipeline is full
 * (the rest is held), or the connection stops reading.  Each completed
 * request pauses llhttp; it is dispatched here, between two calls of
 * llhttp_execute(), and parsing resumes where it stopped.  The handler may
 * answer, detach or close inside dispatch(), so the state is checked anew on
 * each turn.  in_parse keeps flush() from starting a nested parse.
 */
static void parse_input(struct http_conn *c, const char *p, size_t n)
{
	c->in_parse++;
	while (c->state == ST_READING) {
		if (outstanding(c) >= c->o->max_pipeline) {
			pause_input(c, p, n);
			break;
		}
		if (n == 0)
			break;
		enum llhttp_errno e = llhttp_execute(&c->parser, p, n);
		if (e == HPE_OK) {
			n = 0;
			continue;
		}
		if (e == HPE_PAUSED) {
			/* A request is complete; `at` is just past its last byte. */
			const char *at = llhttp_get_error_pos(&c->parser);
			assert(at >= p && at <= p + n);
			n -= (size_t)(at - p);
			p = at;
			llhttp_resume(&c->parser);
			struct http__slot *s = c->cur;
			c->cur = NULL;
			dispatch(c, s, p, n);
			continue;
		}
		/* Any other code is an error (ours or llhttp's); llhttp stays failed. */
		fail_input(c, e);
		break;
	}
	c->in_parse--;
	update_timer(c);
}

/* Reads again once the pipeline has room: first what was held back. */
static void maybe_resume(struct http_conn *c)
{
	if (c->state != ST_READING || !c->paused || c->in_parse ||
	    outstanding(c) >= c->o->max_pipeline)
		return;
	c->paused = false;
	/* Take the held bytes first: parsing them may hold a new rest. */
	if (c->held) {
		char *h = c->held;
		size_t n = c->held_len;
		c->held = NULL;
		c->held_len = 0;
		parse_input(c, h, n);
		im_free(h);
	}
	if (c->state == ST_READING && !c->paused)
		read_start(c);
	update_timer(c);
}

/*
 * EOF or a read error closes at once: a keep-alive client that goes away
 * with requests pending abandons them (on_abort).  A client that wants its
 * answer after half-closing must not ask for keep-alive: a closing request
 * stops reading, so its EOF is only seen after the answer.
 */
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct http_conn *c = st->data;
	if (nread < 0) {
		IM_DEBUG("http %s: read: %s", c->peer, uv_strerror((int)nread));
		close_conn(c);
		return;
	}
	if (nread == 0 || c->state != ST_READING)
		return; /* LINGER discards; other states do not read */
	if (c->paused) {
		/* Not expected (reading stops at once), but keep it bounded. */
		close_conn(c);
		return;
	}
	parse_input(c, buf->base, (size_t)nread);
}

/* ---- answers ---- */

static const struct {
	int code;
	const char *text;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

/* The reason phrase of RFC 9110 §15; clients ignore it, so unknown codes get "Unknown". */
static const char *reason(int status)
{
	for (size_t i = 0; i < IM_ARRAY_LEN(reasons); i++)
		if (reasons[i].code == status)
			return reasons[i].text;
	return "Unknown";
}

/* Appends to an answer whose size was computed beforehand. */
static void put(char **w, const void *p, size_t n)
{
	if (n) {
		memcpy(*w, p, n);
		*w += n;
	}
}

/* Builds the whole answer in one allocation (RFC 9112 §4, §6.3). */
static struct http__out *build(const struct http__slot *s, int status, const char *ctype,
			       const char *extra, const void *body, size_t body_len)
{
	if (status < 100 || status > 999)
		status = 500;
	char line[64], clen[48];
	int ln = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason(status));
	/* These never carry content, nor a length (RFC 9110 §8.6). */
	bool bodiless = status < 200 || status == 204 || status == 304;
	int cl = bodiless ? 0 : snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", body_len);
	size_t xl = extra ? strlen(extra) : 0;
	/* A caller's missing final CRLF would glue the next header onto it. */
	bool xcrlf = xl > 0 && (xl < 2 || memcmp(extra + xl - 2, "\r\n", 2) != 0);
	size_t tl = ctype ? strlen(ctype) : 0;
	const char *conn = s->closes			    ? "Connection: close\r\n"
			   : s->minor == 0 && s->major == 1 ? "Connection: keep-alive\r\n"
							    : "";
	/* HEAD gets the length of the body it would have had, not the body. */
	size_t send = bodiless || s->is_head ? 0 : body_len;

	size_t total = (size_t)ln + (size_t)cl + strlen(conn) + 2 + (xcrlf ? 2 : 0);
	if (!add_ok(&total, xl) || (ctype && !add_ok(&total, tl + 16)) || !add_ok(&total, send))
		return NULL;
	struct http__out *o = out_new(total);
	if (o == NULL)
		return NULL;
	char *w = o->data;
	put(&w, line, (size_t)ln);
	put(&w, extra, xl);
	if (xcrlf)
		put(&w, "\r\n", 2);
	if (ctype) {
		put(&w, "Content-Type: ", 14);
		put(&w, ctype, tl);
		put(&w, "\r\n", 2);
	}
	put(&w, clen, (size_t)cl);
	put(&w, conn, strlen(conn));
	put(&w, "\r\n", 2);
	put(&w, body, send);
	o->len = (size_t)(w - o->data);
	assert(o->len == total);
	return o;
}

/*
 * Stores the answer in its request and writes every answer that is now at
 * the head of the FIFO.  Answers to aborted requests are dropped (invariant
 * 7).  If the answer cannot be built the connection closes: the client would
 * otherwise wait forever for it.
 */
void http_respond(struct http_req *req, int status, const char *content_type,
		  const char *extra_headers, const void *body, size_t body_len)
{
	struct http__slot *s = slot_of(req);
	switch (s->state) {
	case SL_ZOMBIE:
		slot_free(s);
		return;
	case SL_ABORTING:
		/* From inside an on_abort: abort_slots() frees it. */
		s->state = SL_ANSWERED_LATE;
		return;
	case SL_WAITING:
		break;
	default:
		IM_ERROR("http_respond: request answered twice");
		assert(0);
		return;
	}
	struct http_conn *c = req->conn;
	/* The application may clear keep_alive to close after this answer. */
	s->closes = s->must_close || req->error != HTTP_REQ_OK || !req->keep_alive;
	s->out = build(s, status, content_type, extra_headers, body, body_len);
	s->state = SL_ANSWERED;
	if (s->out == NULL) {
		IM_WARN("http %s: cannot build the answer, closing", c->peer);
		close_conn(c);
		return;
	}
	flush(c);
}

/*
 * Every answer reached the kernel and our FIN follows it.  Read and discard
 * until the client closes too, so that its unread bytes (say, the rest of
 * an oversize body) do not make the kernel reset the answer away.
 */
static void on_shutdown(uv_shutdown_t *r, int status)
{
	struct http_conn *c = r->data;
	if (c->state != ST_FINISHING)
		return;
	if (status < 0) {
		close_conn(c);
		return;
	}
	set_state(c, ST_LINGER);
	read_start(c);
	if (c->state == ST_LINGER)
		set_timer(c, TM_LINGER, IM_MIN(HTTP__LINGER_MS, c->o->idle_timeout_ms));
}

/* The last answer is queued: half-close, then linger until EOF. */
static void finish(struct http_conn *c)
{
	set_state(c, ST_FINISHING);
	read_stop(c);
	set_timer(c, TM_NONE, 0);
	drop_input(c);
	abort_slots(c); /* requests after the last one (keep_alive cleared) */
	if (c->state != ST_FINISHING)
		return;
	if (c->tcp == NULL) {
		set_state(c, ST_CLOSED);
		return;
	}
	c->shut.data = c;
	if (uv_shutdown(&c->shut, (uv_stream_t *)c->tcp, on_shutdown) != 0)
		close_conn(c);
}

/* Writes answers from the head of the FIFO while they are ready (invariant 1). */
static void flush(struct http_conn *c)
{
	while (c->head && c->head->state == SL_ANSWERED) {
		struct http__slot *s = fifo_pop(c);
		struct http__out *o = s->out;
		bool last = s->closes;
		s->out = NULL;
		slot_free(s);
		if (send_out(c, o) != 0) {
			close_conn(c);
			return;
		}
		if (last) {
			finish(c);
			return;
		}
	}
	maybe_resume(c);
	update_timer(c);
}

/* ---- closing and freeing ---- */

static void unlink_conn(struct http_conn *c)
{
	struct http_server *s = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->stats.conns_open--;
	c->srv = NULL;
}

/* The server goes once closing and every connection and handle is gone. */
static void server_maybe_done(struct http_server *s)
{
	if (!s->closing || s->conns || s->aux)
		return;
	if (s->close_cb)
		s->close_cb(s->close_arg);
	im_free(s);
}

/* Invariant 6: the only place a socket connection is freed. */
static void maybe_free(struct http_conn *c)
{
	if (c->handles > 0 || c->writes > 0)
		return;
	struct http_server *s = c->srv;
	if (s)
		unlink_conn(c);
	im_free(c->tcp);
	im_free(c);
	if (s)
		server_maybe_done(s);
}

/* The tcp handle and the timer both end here; the second one frees. */
static void on_conn_handle_close(uv_handle_t *h)
{
	struct http_conn *c = h->data;
	c->handles--;
	maybe_free(c);
}

/*
 * An answer reached the kernel (or was cancelled by a close).  Its memory
 * goes at once; the connection may now read again or go idle.  A closing or
 * detached connection only waits here for its last write before maybe_free().
 */
static void on_write(uv_write_t *w, int status)
{
	struct http__out *o = (struct http__out *)((char *)w - offsetof(struct http__out, w));
	struct http_conn *c = o->conn;
	im_free(o);
	c->writes--;
	if (c->state == ST_CLOSING || c->state == ST_DETACHED) {
		/* ECANCELED after uv_close(), or the caller's close after a detach. */
		maybe_free(c);
		return;
	}
	if (status < 0) {
		IM_DEBUG("http %s: write: %s", c->peer, uv_strerror(status));
		close_conn(c);
		return;
	}
	maybe_resume(c);
	update_timer(c);
}

/* Closes at once: EOF, errors, timeouts, server close (invariant 7). */
static void close_conn(struct http_conn *c)
{
	if (c->state == ST_CLOSING || c->state == ST_CLOSED || c->state == ST_DETACHED)
		return;
	set_state(c, c->tcp ? ST_CLOSING : ST_CLOSED);
	drop_input(c);
	if (c->tcp) {
		c->reading = false;
		uv_close((uv_handle_t *)c->tcp, on_conn_handle_close);
		uv_close((uv_handle_t *)&c->timer, on_conn_handle_close);
	}
	abort_slots(c);
}

/* ---- the server ---- */

static void format_peer(uv_tcp_t *t, char *out, size_t n)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	snprintf(out, n, "?");
	if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		uv_ip4_name(a, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		uv_ip6_name(a, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
	}
}

/* The listener, the spare and rejected connections end here. */
static void on_aux_close(uv_handle_t *h)
{
	struct http_server *s = h->data;
	if (h == (uv_handle_t *)&s->spare)
		s->spare_busy = false;
	else if (h != (uv_handle_t *)&s->listener)
		im_free(h);
	s->aux--;
	server_maybe_done(s);
}

/* Accepts a connection only to close it (limit reached, or no memory). */
static void reject(struct http_server *s, uv_tcp_t *t)
{
	if (t == NULL) {
		if (s->spare_busy) {
			IM_ERROR("http: out of memory, cannot accept");
			return;
		}
		t = &s->spare;
		s->spare_busy = true;
	}
	uv_tcp_init(s->loop, t);
	t->data = s;
	s->aux++;
	uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t);
	uv_close((uv_handle_t *)t, on_aux_close);
}

/*
 * A new connection: accept it (or accept and close it past max_conns or when
 * memory is short; not accepting would stall the listener), set up its
 * parser and timer, and start reading with the idle timer running.
 */
static void on_connection(uv_stream_t *ls, int status)
{
	struct http_server *s = ls->data;
	if (status < 0) {
		IM_WARN("http: accept: %s", uv_strerror(status));
		return;
	}
	uv_tcp_t *t = im_malloc(sizeof(*t));
	struct http_conn *c = t ? im_calloc(1, sizeof(*c)) : NULL;
	if (c == NULL || s->stats.conns_open >= s->o.max_conns) {
		if (c == NULL)
			IM_WARN("http: out of memory, dropping a connection");
		im_free(c);
		reject(s, t);
		return;
	}
	uv_tcp_init(s->loop, t);
	if (uv_accept(ls, (uv_stream_t *)t) != 0) {
		im_free(c);
		t->data = s;
		s->aux++;
		uv_close((uv_handle_t *)t, on_aux_close);
		return;
	}
	c->srv = s;
	c->o = &s->o;
	c->tcp = t;
	t->data = c;
	uv_timer_init(s->loop, &c->timer);
	c->timer.data = c;
	c->handles = 2; /* the tcp handle and the timer */
	llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
	c->parser.data = c;
	uv_tcp_nodelay(t, 1);
	format_peer(t, c->peer, sizeof(c->peer));
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->stats.conns_open++;
	s->stats.conns_total++;
	read_start(c);
	update_timer(c);
}

/* "HOST:PORT", "[V6]:PORT", ":PORT" or "*:PORT". */
static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	if (colon == NULL)
		return UV_EINVAL;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
		return UV_EINVAL;
	char host[INET6_ADDRSTRLEN + 2];
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof(host))
		return UV_EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (hl == 0 || strcmp(host, "*") == 0)
		snprintf(host, sizeof(host), "0.0.0.0");
	if (host[0] == '[') {
		if (hl < 2 || host[hl - 1] != ']')
			return UV_EINVAL;
		host[hl - 1] = '\0';
		return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss);
	}
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
		return 0;
	return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
}

/*
 * Binds and listens.  Bind errors such as UV_EADDRINUSE show up at uv_listen()
 * on Linux.  After a failure past uv_tcp_init() the listener is closed and the
 * server freed by its close callback, so the loop must still run once.
 */
int http_server_start(uv_loop_t *loop, const struct http_opts *o, struct http_server **out)
{
	*out = NULL;
	if (o == NULL || o->handler == NULL)
		return UV_EINVAL;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	int rv = parse_addr(o->addr, &ss);
	if (rv != 0)
		return rv;
	struct http_server *s = im_calloc(1, sizeof(*s));
	if (s == NULL)
		return UV_ENOMEM;
	s->loop = loop;
	s->o = *o;
	s->o.addr = NULL; /* not needed after bind; the caller's string may go */
	apply_defaults(&s->o);
	rv = uv_tcp_init(loop, &s->listener);
	if (rv != 0) {
		im_free(s);
		return rv;
	}
	s->listener.data = s;
	s->aux = 1;
	rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
	struct sockaddr_storage bound;
	int len = sizeof(bound);
	if (rv == 0)
		rv = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
	if (rv != 0) {
		/* Freed by the close callback on the next loop run. */
		s->closing = true;
		uv_close((uv_handle_t *)&s->listener, on_aux_close);
		return rv;
	}
	s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						    : ((struct sockaddr_in *)&bound)->sin_port);
	*out = s;
	return 0;
}

/* The port as bound, cached by http_server_start(). */
int http_server_port(const struct http_server *s)
{
	return s->port;
}

/*
 * Closes the listener and every connection; on_abort runs for pending
 * requests before this returns, cb once the last handle has closed.  Detached
 * handles are not the server's any more and stay open.
 */
void http_server_close(struct http_server *s, void (*cb)(void *arg), void *arg)
{
	assert(!s->closing);
	s->closing = true;
	s->close_cb = cb;
	s->close_arg = arg;
	uv_close((uv_handle_t *)&s->listener, on_aux_close);
	/* Nothing unlinks synchronously: frees wait for close callbacks. */
	for (struct http_conn *c = s->conns; c; c = c->next)
		close_conn(c);
}

/*
 * `requests` counts requests that parsed; `bad_requests` those handed over
 * with req->error set.  Rejected connections are in neither conns counter.
 */
void http_server_stats(const struct http_server *s, struct http_stats *out)
{
	*out = s->stats;
}

/*
 * Possible only for the one request the connection stopped at because of an
 * upgrade, once every earlier request is answered: the FIFO holds just it.
 * On success the request is freed (it counts as answered) and the handle is
 * the caller's: it was allocated with im_malloc, its data is NULL, reading is
 * stopped; the caller starts reading with its own callbacks and ends with
 * uv_close(h, cb) where cb calls im_free(h).  Writes queued here complete (or
 * are cancelled by that close) on their own.  On failure nothing changed and
 * the request still needs an answer.
 */
uv_tcp_t *http_detach(struct http_req *req, const void *response, size_t len, char **rest,
		      size_t *rest_len)
{
	struct http__slot *s = slot_of(req);
	struct http_conn *c = req->conn;
	if (rest)
		*rest = NULL;
	if (rest_len)
		*rest_len = 0;
	if (s->state != SL_WAITING || c == NULL || c->tcp == NULL || c->srv == NULL ||
	    c->srv->closing || c->state != ST_DRAINING || !s->upgrade || c->head != s ||
	    s->next != NULL)
		return NULL;
	struct http__out *o = out_new(len);
	if (o == NULL)
		return NULL;
	if (len)
		memcpy(o->data, response, len);
	if (send_out(c, o) != 0)
		return NULL;
	/* From here on the detach succeeds: the request counts as answered. */
	slot_free(fifo_pop(c));
	if (rest && rest_len) {
		*rest = c->held;
		*rest_len = c->held_len;
		c->held = NULL;
		c->held_len = 0;
	}
	drop_input(c);
	uv_tcp_t *t = c->tcp;
	read_stop(c);
	t->data = NULL;
	c->tcp = NULL;
	set_state(c, ST_DETACHED);
	unlink_conn(c);
	/* Only the timer is left to close; in-flight writes still hold c. */
	c->handles = 1;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_close);
	return t;
}

/* ---- the test seam ---- */

struct http_conn *http_test_conn_new(const struct http_opts *o, http_test_write_fn write_cb,
				     void *arg)
{
	struct http_conn *c = im_calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->topts = *o;
	c->topts.addr = NULL;
	apply_defaults(&c->topts);
	c->o = &c->topts;
	c->twrite = write_cb;
	c->targ = arg;
	snprintf(c->peer, sizeof(c->peer), "test");
	llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
	c->parser.data = c;
	return c;
}

/* The socket-free twin of on_read() (see http_int.h). */
int http_test_feed(struct http_conn *c, const char *data, size_t len)
{
	if (c->in_parse)
		return UV_EBUSY;
	if (c->state != ST_READING)
		return UV_EOF;
	if (c->paused) {
		/* The caller, not a socket, decides how much it feeds. */
		if (len > SIZE_MAX - c->held_len)
			return UV_ENOMEM;
		char *h = im_realloc(c->held, c->held_len + len);
		if (h == NULL) {
			close_conn(c);
			return UV_EOF;
		}
		if (len)
			memcpy(h + c->held_len, data, len);
		c->held = h;
		c->held_len += len;
		return 0;
	}
	parse_input(c, data, len);
	return c->state == ST_READING ? 0 : UV_EOF;
}

/* close_conn() aborts and drops everything; zombies stay the application's. */
void http_test_conn_free(struct http_conn *c)
{
	if (c == NULL)
		return;
	close_conn(c);
	im_free(c);
}
