/* loadgen.c - an OpenIM WebSocket load generator: N JS-SDK-style connections sending 1:1 text
 * messages (1003) and measuring send -> reply or send -> the receiver's 2001 push. */

/*
 * One process, one libuv loop, one thread.  It runs in three phases:
 *
 *   1. setup over REST with a small blocking HTTP/1.1 client: get_admin_token with the secret,
 *      user_register in batches of 1,000, get_user_token for every user (openim-protocol.md §2.3);
 *   2. N WebSocket connections (openim-protocol.md §4.1-4.2): TCP connect (bound to 127.0.0.x
 *      source addresses when N is large), the HTTP upgrade written by hand, "HTTP/1.1 101", then
 *      the first text frame {"errCode":0,...}; wslay runs in client mode from the 101 on;
 *   3. the measurement: a warm-up, then `seconds` of load, then a drain of at most DRAIN_S for
 *      the answers still under way.
 *
 * Connection states (each moves forward only):
 *   NEW -> CONNECTING -> HTTP (GET sent, reading the 101) -> RESULT (waiting for the connect
 *   result frame) -> OPEN -> CLOSED
 *
 * Invariants:
 *   1. Every 1003 request carries its start time in its msgIncr and clientMsgID
 *      ("<sender>.<seq>.<ns>"), so replies and pushes are matched without a table, and a
 *      push at the receiver yields the end-to-end latency of that very message.
 *   2. Open loop (--rate R > 0): message k is due at t0 + k/R and its latency counts from that
 *      due time, not from when it was written, so a stalled server or generator cannot hide its
 *      stall (no "coordinated omission").  Closed loop (--rate 0): each connection keeps
 *      --window requests outstanding and latency counts from the write.
 *   3. A latency enters the histogram when its message was due inside the measured window;
 *      throughput counts the answers that arrived inside it.
 *   4. Nothing is freed inside a callback of its own handle: connections are freed after the
 *      loop has closed every handle, and the loop must close with uv_loop_close() == 0.
 *
 * Histogram: log-linear like HdrHistogram, values in nanoseconds, exact below 256 ns, above that
 * 128 sub-buckets per power of two (7,424 counters): a reported percentile is the upper edge of
 * its bucket, at most 1/128 (0.78%) above the true value; the maximum is exact.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <mbedtls/base64.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "msg.pb-c.h"
#include "sdkws.pb-c.h"

#define DRAIN_S	       3.0
#define PER_SOURCE     20000 /* connections per 127.0.0.x source address */
#define MAX_HANDSHAKES 256   /* connections being set up at once */
#define REG_BATCH      1000
#define TEXT_POOL      4096
#define MAX_MSG	       (1u << 20)
#define ID_MAX	       64
#define OP_PLATFORM    5 /* Web, like the JS SDK */
#define OI_USER_EXISTS 1102

#define LG_MIN(a, b) ((a) < (b) ? (a) : (b))

/* ------------------------------------------------------------------ helpers */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A growable byte buffer (the generator's own: it does not use the server's allocator). */
struct buf {
	char *p;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (b->p == NULL)
		die("out of memory");
	b->cap = cap;
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* splitmix64: the one random source, seeded by --seed, so runs repeat. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Splits "HOST:PORT". */
/* This process's CPU time (user + system), seconds. */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void parse_addr(const char *s, char *host, size_t hn, int *port)
{
	const char *c = strrchr(s, ':');
	if (c == NULL || (size_t)(c - s) >= hn || (*port = atoi(c + 1)) <= 0)
		die("bad address %s (want HOST:PORT)", s);
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
}

/* ---------------------------------------------------------------- histogram */

#define H_SUB_BITS 7
#define H_SUB	   (1u << H_SUB_BITS)
#define H_BUCKETS  (2 * H_SUB + (64 - H_SUB_BITS - 1) * H_SUB)

struct hist {
	uint64_t n, max;
	uint64_t c[H_BUCKETS];
};

static unsigned h_index(uint64_t v)
{
	if (v < 2 * H_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - H_SUB_BITS; /* v >> shift is in [H_SUB, 2 H_SUB) */
	return 2 * H_SUB + (shift - 1) * H_SUB + (unsigned)((v >> shift) - H_SUB);
}

/* The largest value that lands in bucket i. */
static uint64_t h_upper(unsigned i)
{
	if (i < 2 * H_SUB)
		return i;
	unsigned shift = (i - 2 * H_SUB) / H_SUB + 1;
	uint64_t sub = (i - 2 * H_SUB) % H_SUB + H_SUB;
	return ((sub + 1) << shift) - 1;
}

static void h_record(struct hist *h, uint64_t v)
{
	h->c[h_index(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static uint64_t h_quantile(const struct hist *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->c[i];
		if (seen >= want)
			return LG_MIN(h_upper(i), h->max);
	}
	return h->max;
}

/* -------------------------------------------------------------- REST setup */

/* A blocking HTTP/1.1 keep-alive client for the setup calls (loopback, small bodies). */
struct rest {
	int fd;
	char host[256];
	int port;
	struct buf in;
	unsigned op;
};

static void rest_connect(struct rest *r)
{
	char port[16];
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	snprintf(port, sizeof(port), "%d", r->port);
	int rc = getaddrinfo(r->host, port, &hints, &ai);
	if (rc != 0)
		die("api %s: %s", r->host, gai_strerror(rc));
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->fd < 0 || connect(r->fd, ai->ai_addr, ai->ai_addrlen) != 0)
		die("api %s:%d: connect: %s", r->host, r->port, strerror(errno));
	freeaddrinfo(ai);
	int one = 1;
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r->in.len = 0;
}

/* Reads one response into r->in; returns the body's offset and sets *blen, or -1 on EOF. */
static long rest_read(struct rest *r, size_t *blen)
{
	r->in.len = 0;
	for (;;) {
		buf_reserve(&r->in, 65536);
		ssize_t n = read(r->fd, r->in.p + r->in.len, r->in.cap - r->in.len - 1);
		if (n <= 0)
			return -1;
		r->in.len += (size_t)n;
		r->in.p[r->in.len] = '\0';
		char *end = strstr(r->in.p, "\r\n\r\n");
		if (end == NULL)
			continue;
		size_t head = (size_t)(end - r->in.p) + 4, clen = 0;
		for (char *l = strstr(r->in.p, "\r\n"); l != NULL && l < end;
		     l = strstr(l + 2, "\r\n"))
			if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
				clen = strtoul(l + 17, NULL, 10);
		if (r->in.len >= head + clen) {
			*blen = clen;
			return (long)head;
		}
	}
}

/*
 * POSTs body to path and returns the response's "data" (a new reference, JSON null when absent)
 * when errCode is 0; otherwise returns NULL with the errCode in *code and errMsg in err.
 */
static json_t *rest_post(struct rest *r, const char *path, const char *token, const char *body,
			 int *code, char *err, size_t errlen)
{
	struct buf req = {0};
	buf_printf(&req,
		   "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
		   "operationID: loadgen-%u\r\ntoken: %s\r\nContent-Length: %zu\r\n\r\n%s",
		   path, r->host, r->port, r->op++, token ? token : "", strlen(body), body);
	long off = -1;
	size_t blen = 0;
	for (int attempt = 0; attempt < 2 && off < 0; attempt++) {
		if (attempt > 0) { /* the server closed a kept-alive connection: once more */
			close(r->fd);
			rest_connect(r);
		}
		size_t done = 0;
		while (done < req.len) {
			ssize_t n = send(r->fd, req.p + done, req.len - done, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			done += (size_t)n;
		}
		if (done == req.len)
			off = rest_read(r, &blen);
	}
	free(req.p);
	if (off < 0)
		die("api %s: no answer", path);
	json_error_t je;
	json_t *root = json_loadb(r->in.p + off, blen, 0, &je);
	json_t *ec = json_object_get(root, "errCode");
	if (root == NULL || !json_is_integer(ec))
		die("api %s: bad answer: %.200s", path, r->in.p);
	*code = (int)json_integer_value(ec);
	if (*code != 0) {
		snprintf(err, errlen, "%s %s", json_string_value(json_object_get(root, "errMsg")),
			 json_string_value(json_object_get(root, "errDlt")));
		json_decref(root);
		return NULL;
	}
	json_t *data = json_object_get(root, "data");
	data = data ? json_incref(data) : json_null();
	json_decref(root);
	return data;
}

/* ------------------------------------------------------------------ state */

enum scenario { SC_SEND_ACK, SC_SEND_PUSH };

struct opts {
	enum scenario sc;
	char api_host[256], ws_host[256];
	int api_port, ws_port;
	const char *secret, *prefix;
	int conns, window, size, sources;
	double seconds, warmup, rate;
	uint64_t seed;
};

enum cstate { C_NEW, C_CONNECTING, C_HTTP, C_RESULT, C_OPEN, C_CLOSED };

struct conn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	struct lg *lg;
	int idx;
	enum cstate st;
	char user[ID_MAX];
	char *token;
	wslay_event_context_ptr ws;
	struct buf head;   /* the HTTP answer until "\r\n\r\n" */
	const uint8_t *rp; /* bytes read, not yet handed to wslay */
	size_t rn;
	struct buf out, wbuf; /* bytes to write; bytes in the write under way */
	bool writing;
	uint64_t seq;	 /* messages sent */
	int outstanding; /* requests without a reply */
};

struct stats {
	uint64_t sent, replies, acked, errors, pushes, self_pushes, foreign, bad;
	uint64_t acked_in_window, pushes_in_window;
	struct hist ack, push;
	char first_error[200];
};

struct lg {
	uv_loop_t *loop;
	struct opts o;
	struct conn *c;
	int next_connect, connecting, ready;
	uv_timer_t tick, stop;
	uint64_t t0, m_start, m_end, k; /* k: messages scheduled (open loop) */
	uint64_t t_end;
	double cpu0, cpu1; /* the generator's own CPU seconds at t0 and at the end */
	bool sending, done;
	struct stats s;
	char text[TEXT_POOL + 1];
	struct buf pb, b64, env; /* scratch for one message */
};

static struct lg G;

/* ------------------------------------------------------------- wire output */

static void on_write(uv_write_t *req, int status);

/* Writes c->out if no write is under way; bytes gathered meanwhile go in the next write. */
static void flush(struct conn *c)
{
	if (c->writing || c->out.len == 0 || c->st == C_CLOSED)
		return;
	struct buf t = c->wbuf;
	c->wbuf = c->out;
	c->out = t;
	c->out.len = 0;
	uv_buf_t b = uv_buf_init(c->wbuf.p, (unsigned)c->wbuf.len);
	int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (rc != 0)
		die("%s: write: %s", c->user, uv_strerror(rc));
	c->writing = true;
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	c->writing = false;
	if (status != 0 && !c->lg->done)
		die("%s: write: %s", c->user, uv_strerror(status));
	flush(c);
}

/* wslay callbacks (client mode: it masks what it sends). */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
			  void *user)
{
	buf_add(&((struct conn *)user)->out, data, len);
	return (ssize_t)len;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
			  void *user)
{
	struct conn *c = user;
	if (c->rn == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	size_t n = LG_MIN(len, c->rn);
	memcpy(buf, c->rp, n);
	c->rp += n;
	c->rn -= n;
	return (ssize_t)n;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = rng_next();
		memcpy(buf + i, &r, LG_MIN(8, len - i));
	}
	return 0;
}

/* -------------------------------------------------------------- messages */

static void send_msg(struct conn *c, uint64_t due);

static bool in_window(uint64_t t)
{
	return t >= G.m_start && t < G.m_end;
}

/* "<sender>.<seq>.<ns>": returns the ns and the sender index, or false. */
static bool parse_stamp(const char *p, size_t n, uint64_t *ns, long *sender)
{
	char tmp[96];
	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	char *e;
	*sender = strtol(tmp, &e, 10);
	if (*e != '.')
		return false;
	strtoull(e + 1, &e, 10);
	if (*e != '.')
		return false;
	*ns = strtoull(e + 1, &e, 10);
	return *e == '\0';
}

/*
 * The server's envelope (openim-protocol.md §4.3) scanned in place: a flat JSON object whose
 * values are strings, integers or null.  Strings are kept raw (escapes are not undone: the
 * fields read here - msgIncr and base64 data - never contain any).
 */
struct env {
	long req_id, err_code;
	const char *incr, *data, *err_msg;
	size_t incr_n, data_n, err_msg_n;
};

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* Scans a string starting at its opening quote; returns the character after the closing one. */
static const char *scan_str(const char *p, const char *end, const char **s, size_t *n)
{
	if (p >= end || *p != '"')
		return NULL;
	const char *q = ++p;
	while (q < end && *q != '"')
		q += *q == '\\' ? 2 : 1;
	if (q >= end)
		return NULL;
	*s = p;
	*n = (size_t)(q - p);
	return q + 1;
}

static bool env_scan(const char *p, size_t len, struct env *e)
{
	const char *end = p + len;
	memset(e, 0, sizeof(*e));
	p = skip_ws(p, end);
	if (p >= end || *p++ != '{')
		return false;
	for (;;) {
		const char *k, *v = NULL;
		size_t kn, vn = 0;
		long num = 0;
		p = scan_str(skip_ws(p, end), end, &k, &kn);
		if (p == NULL || (p = skip_ws(p, end)) >= end || *p++ != ':')
			return false;
		p = skip_ws(p, end);
		if (p < end && *p == '"') {
			if ((p = scan_str(p, end, &v, &vn)) == NULL)
				return false;
		} else if (p < end && (*p == '-' || (*p >= '0' && *p <= '9'))) {
			char *q;
			num = strtol(p, &q, 10);
			p = q;
		} else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
			p += 4;
		} else {
			return false;
		}
#define KEY(s) (kn == sizeof(s) - 1 && memcmp(k, s, kn) == 0)
		if (KEY("reqIdentifier"))
			e->req_id = num;
		else if (KEY("errCode"))
			e->err_code = num;
		else if (KEY("msgIncr"))
			e->incr = v, e->incr_n = vn;
		else if (KEY("data"))
			e->data = v, e->data_n = vn;
		else if (KEY("errMsg"))
			e->err_msg = v, e->err_msg_n = vn;
#undef KEY
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		return p < end && *p == '}';
	}
}

/* Decodes the envelope's base64 data into G.pb; false when it is not base64. */
static bool env_data(const struct env *e)
{
	size_t need = e->data_n / 4 * 3 + 3, olen;
	G.pb.len = 0;
	buf_reserve(&G.pb, need);
	if (mbedtls_base64_decode((unsigned char *)G.pb.p, G.pb.cap, &olen,
				  (const unsigned char *)e->data, e->data_n) != 0)
		return false;
	G.pb.len = olen;
	return true;
}

static void note_error(const char *what, const char *p, size_t n)
{
	G.s.errors++;
	if (G.s.first_error[0] == '\0')
		snprintf(G.s.first_error, sizeof(G.s.first_error), "%s: %.*s", what, (int)n, p);
}

/* A 1003 reply: latency from the stamp in msgIncr (invariant 1). */
static void on_reply(struct conn *c, const struct env *e, uint64_t now)
{
	uint64_t t;
	long sender;
	c->outstanding--;
	G.s.replies++;
	if (!parse_stamp(e->incr, e->incr_n, &t, &sender) || sender != c->idx) {
		G.s.bad++;
		return;
	}
	if (e->err_code != 0) {
		note_error("1003", e->err_msg, e->err_msg_n);
	} else {
		Openim__Msg__SendMsgResp *r = NULL;
		if (env_data(e))
			r = openim__msg__send_msg_resp__unpack(NULL, G.pb.len, (uint8_t *)G.pb.p);
		if (r == NULL || r->servermsgid[0] == '\0') {
			G.s.bad++;
		} else {
			G.s.acked++;
			if (in_window(now))
				G.s.acked_in_window++;
			if (in_window(t))
				h_record(&G.s.ack, now - t);
		}
		openim__msg__send_msg_resp__free_unpacked(r, NULL);
	}
	/* Closed loop: the answer frees a slot of the window. */
	if (G.o.rate == 0 && now < G.m_end)
		send_msg(c, now);
}

/* A 2001 push: at the receiver, latency from the stamp in clientMsgID (invariant 1). */
static void on_push(struct conn *c, const struct env *e, uint64_t now)
{
	if (G.o.sc != SC_SEND_PUSH) {
		G.s.pushes++; /* counted, not decoded: the generator's CPU is the server's too */
		return;
	}
	Openim__Sdkws__PushMessages *pm = NULL;
	if (env_data(e))
		pm = openim__sdkws__push_messages__unpack(NULL, G.pb.len, (uint8_t *)G.pb.p);
	if (pm == NULL) {
		G.s.bad++;
		return;
	}
	for (size_t i = 0; i < pm->n_msgs; i++) {
		Openim__Sdkws__PullMsgs *v = pm->msgs[i]->value;
		for (size_t j = 0; v != NULL && j < v->n_msgs; j++) {
			Openim__Sdkws__MsgData *m = v->msgs[j];
			uint64_t t;
			long sender;
			if (strcmp(m->sendid, c->user) == 0) {
				G.s.self_pushes++;
			} else if (!parse_stamp(m->clientmsgid, strlen(m->clientmsgid), &t,
						&sender) ||
				   sender != (c->idx ^ 1) || strcmp(m->recvid, c->user) != 0) {
				G.s.foreign++;
			} else {
				G.s.pushes++;
				if (in_window(now))
					G.s.pushes_in_window++;
				if (in_window(t))
					h_record(&G.s.push, now - t);
			}
		}
	}
	openim__sdkws__push_messages__free_unpacked(pm, NULL);
}

static void start_load(void);

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		      void *user)
{
	struct conn *c = user;
	uint64_t now = uv_hrtime();
	if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		if (!G.done)
			die("%s: server closed the WebSocket (code %u)", c->user, arg->status_code);
		return;
	}
	if (c->st == C_RESULT) {
		/* The connect result (§4.2): one text frame, errCode 0 on success. */
		if (arg->opcode != WSLAY_TEXT_FRAME ||
		    memmem(arg->msg, arg->msg_length, "\"errCode\":0,", 12) == NULL)
			die("%s: connect refused: %.*s", c->user, (int)arg->msg_length,
			    (const char *)arg->msg);
		c->st = C_OPEN;
		G.connecting--;
		G.ready++;
		start_load();
		return;
	}
	if (arg->opcode != WSLAY_BINARY_FRAME)
		return; /* text pongs */
	struct env e;
	if (!env_scan((const char *)arg->msg, arg->msg_length, &e)) {
		G.s.bad++;
		return;
	}
	if (e.req_id == 1003)
		on_reply(c, &e, now);
	else if (e.req_id == 2001)
		on_push(c, &e, now);
	else
		G.s.bad++;
}

/*
 * Queues one 1003 SendMsg from c to its partner (idx ^ 1), stamped with `due` (invariant 1):
 * MsgData packed with protobuf-c, base64, the JS envelope, one masked binary frame.
 */
static void send_msg(struct conn *c, uint64_t due)
{
	char cmid[96], peer[ID_MAX], content[64 + TEXT_POOL];
	struct conn *p = &G.c[c->idx ^ 1];
	snprintf(peer, sizeof(peer), "%s", p->user);
	snprintf(cmid, sizeof(cmid), "%d.%" PRIu64 ".%" PRIu64, c->idx, c->seq++, due);
	size_t off = rng_next() % (TEXT_POOL - (size_t)G.o.size + 1);
	int cn =
	    snprintf(content, sizeof(content), "{\"content\":\"%.*s\"}", G.o.size, G.text + off);

	Openim__Sdkws__MsgData m = OPENIM__SDKWS__MSG_DATA__INIT;
	m.sendid = c->user;
	m.recvid = peer;
	m.clientmsgid = cmid;
	m.senderplatformid = OP_PLATFORM;
	m.sessiontype = 1;
	m.msgfrom = 100;
	m.contenttype = 101;
	m.content.data = (uint8_t *)content;
	m.content.len = (size_t)cn;
	m.createtime = (int64_t)(uv_now(G.loop)); /* any ms clock: the server does not check it */
	m.status = 1;
	size_t n = openim__sdkws__msg_data__get_packed_size(&m);
	G.pb.len = 0;
	buf_reserve(&G.pb, n);
	G.pb.len = openim__sdkws__msg_data__pack(&m, (uint8_t *)G.pb.p);

	size_t b64n;
	G.b64.len = 0;
	buf_reserve(&G.b64, 4 * (n / 3 + 1) + 1);
	if (mbedtls_base64_encode((unsigned char *)G.b64.p, G.b64.cap, &b64n,
				  (const unsigned char *)G.pb.p, G.pb.len) != 0)
		die("base64");
	G.env.len = 0;
	buf_printf(&G.env,
		   "{\"reqIdentifier\":1003,\"msgIncr\":\"%s\",\"sendID\":\"%s\","
		   "\"operationID\":\"op%s\",\"data\":\"%.*s\"}",
		   cmid, c->user, cmid, (int)b64n, G.b64.p);
	struct wslay_event_msg wm = {WSLAY_BINARY_FRAME, (const uint8_t *)G.env.p, G.env.len};
	if (wslay_event_queue_msg(c->ws, &wm) != 0 || wslay_event_send(c->ws) != 0)
		die("%s: wslay send failed", c->user);
	c->outstanding++;
	G.s.sent++;
	flush(c);
}

/* ------------------------------------------------------------ connections */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char rbuf[1 << 16];
	*b = uv_buf_init(rbuf, sizeof(rbuf));
}

/* Hands bytes to wslay (recv callbacks run, messages are dispatched), then writes its answers. */
static void feed(struct conn *c, const char *p, size_t n)
{
	c->rp = (const uint8_t *)p;
	c->rn = n;
	if (wslay_event_recv(c->ws) != 0 && !G.done)
		die("%s: bad WebSocket data from the server", c->user);
	c->rn = 0;
	if (wslay_event_send(c->ws) != 0 && !G.done)
		die("%s: wslay send failed", c->user);
	flush(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (nread == 0 || c->st == C_CLOSED)
		return;
	if (nread < 0) {
		if (!G.done)
			die("%s: read: %s", c->user, uv_strerror((int)nread));
		return;
	}
	if (c->st != C_HTTP) {
		feed(c, b->base, (size_t)nread);
		return;
	}
	/* The upgrade answer (RFC 6455 §4.2.2): 101, then the frames may follow at once. */
	buf_add(&c->head, b->base, (size_t)nread);
	buf_add(&c->head, "", 1);
	c->head.len--;
	char *end = strstr(c->head.p, "\r\n\r\n");
	if (end == NULL)
		return;
	if (strncmp(c->head.p, "HTTP/1.1 101 ", 13) != 0)
		die("%s: upgrade refused: %.200s", c->user, c->head.p);
	c->st = C_RESULT;
	size_t used = (size_t)(end - c->head.p) + 4;
	feed(c, c->head.p + used, c->head.len - used);
	free(c->head.p);
	c->head = (struct buf){0};
}

static void connect_next(void);

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	if (status != 0)
		die("%s: connect: %s", c->user, uv_strerror(status));
	uv_tcp_nodelay(&c->tcp, 1);
	/* The upgrade request the JS SDK sends (openim-protocol.md §4.1). */
	char key[25];
	unsigned char raw[16];
	size_t kn;
	ws_genmask_cb(NULL, raw, sizeof(raw), NULL);
	mbedtls_base64_encode((unsigned char *)key, sizeof(key), &kn, raw, sizeof(raw));
	buf_printf(&c->out,
		   "GET /?sendID=%s&token=%s&platformID=%d&operationID=lg-%d&isBackground=false"
		   "&isMsgResp=true&sdkType=js HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		   "Sec-WebSocket-Version: 13\r\n\r\n",
		   c->user, c->token, OP_PLATFORM, c->idx, G.o.ws_host, G.o.ws_port, key);
	c->st = C_HTTP;
	int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (rc != 0)
		die("%s: read: %s", c->user, uv_strerror(rc));
	flush(c);
	connect_next();
}

/* Starts connections until MAX_HANDSHAKES are being set up. */
static void connect_next(void)
{
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = ws_recv_cb,
	    .send_callback = ws_send_cb,
	    .genmask_callback = ws_genmask_cb,
	    .on_msg_recv_callback = ws_msg_cb,
	};
	while (G.connecting < MAX_HANDSHAKES && G.next_connect < G.o.conns) {
		struct conn *c = &G.c[G.next_connect++];
		struct sockaddr_in dst, src;
		int rc = uv_ip4_addr(G.o.ws_host, G.o.ws_port, &dst);
		if (rc != 0)
			die("--ws %s: %s", G.o.ws_host, uv_strerror(rc));
		if (uv_tcp_init(G.loop, &c->tcp) != 0 ||
		    wslay_event_context_client_init(&c->ws, &cbs, c) != 0)
			die("out of memory");
		wslay_event_config_set_max_recv_msg_length(c->ws, MAX_MSG);
		c->tcp.data = c;
		c->creq.data = c;
		c->wreq.data = c;
		if (G.o.sources > 1) {
			/* Loopback has ~28k ephemeral ports per (source, destination) pair. */
			char ip[32];
			snprintf(ip, sizeof(ip), "127.0.0.%d", 1 + c->idx % G.o.sources);
			uv_ip4_addr(ip, 0, &src);
			if ((rc = uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0)) != 0)
				die("bind %s: %s", ip, uv_strerror(rc));
		}
		rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&dst, on_connect);
		if (rc != 0)
			die("%s: connect: %s", c->user, uv_strerror(rc));
		c->st = C_CONNECTING;
		G.connecting++;
	}
}

/* ------------------------------------------------------------------- load */

static void finish(void);

/* Open loop: sends every message due by now, round-robin over the connections (invariant 2). */
static void on_tick(uv_timer_t *t)
{
	uint64_t now = uv_hrtime();
	double per = 1e9 / G.o.rate;
	/* Message k is due at t0 + k per; due times end with the measured window. */
	for (;; G.k++) {
		uint64_t due = G.t0 + (uint64_t)((double)G.k * per);
		if (due > now || due >= G.m_end)
			break;
		send_msg(&G.c[G.k % (uint64_t)G.o.conns], due);
	}
	if (now >= G.m_end) {
		G.sending = false;
		uv_timer_stop(t);
	}
}

static bool drained(void)
{
	if (G.o.sc == SC_SEND_PUSH)
		return G.s.replies >= G.s.sent && G.s.pushes + G.s.foreign >= G.s.sent;
	return G.s.replies >= G.s.sent;
}

/* Every 10 ms: the end of sending, then the end of the drain. */
static void on_stop(uv_timer_t *t)
{
	uint64_t now = uv_hrtime();
	if (now >= G.m_end)
		G.sending = false;
	if (now >= G.m_end && (drained() || now >= G.m_end + (uint64_t)(DRAIN_S * 1e9)))
		finish();
}

static void start_load(void)
{
	if (G.ready < G.o.conns) {
		connect_next();
		return;
	}
	fprintf(stderr, "loadgen: %d connections open, load for %.1f s + %.1f s warm-up\n",
		G.o.conns, G.o.seconds, G.o.warmup);
	G.t0 = uv_hrtime();
	G.cpu0 = cpu_s();
	G.m_start = G.t0 + (uint64_t)(G.o.warmup * 1e9);
	G.m_end = G.m_start + (uint64_t)(G.o.seconds * 1e9);
	G.sending = true;
	if (G.o.rate > 0) {
		uv_timer_start(&G.tick, on_tick, 1, 1);
	} else {
		for (int i = 0; i < G.o.conns; i++)
			for (int w = 0; w < G.o.window; w++)
				send_msg(&G.c[i], uv_hrtime());
	}
	uv_timer_start(&G.stop, on_stop, 10, 10);
}

static void on_closed(uv_handle_t *h)
{
	(void)h; /* the memory is freed after the loop (invariant 4) */
}

static void finish(void)
{
	if (G.done)
		return;
	G.done = true;
	G.t_end = uv_hrtime();
	G.cpu1 = cpu_s();
	uv_timer_stop(&G.tick);
	uv_timer_stop(&G.stop);
	uv_close((uv_handle_t *)&G.tick, on_closed);
	uv_close((uv_handle_t *)&G.stop, on_closed);
	for (int i = 0; i < G.o.conns; i++) {
		struct conn *c = &G.c[i];
		c->st = C_CLOSED;
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	}
}

/* ------------------------------------------------------------------ output */

static void print_latency(const char *name, const struct hist *h)
{
	static const struct {
		const char *n;
		double q;
	} qs[] = {{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}};
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		printf("%s_latency_%s_ms %.3f\n", name, qs[i].n,
		       (double)h_quantile(h, qs[i].q) / 1e6);
	printf("%s_latency_max_ms %.3f\n", name, (double)h->max / 1e6);
	printf("%s_latency_samples %" PRIu64 "\n", name, h->n);
}

static void report(void)
{
	const struct opts *o = &G.o;
	printf("loadgen scenario=%s conns=%d rate=%.0f window=%d size=%d seconds=%.1f warmup=%.1f "
	       "seed=%" PRIu64 " sources=%d histogram=log-linear(<=0.79%%)\n",
	       o->sc == SC_SEND_ACK ? "send-ack" : "send-push", o->conns, o->rate, o->window,
	       o->size, o->seconds, o->warmup, o->seed, o->sources);
	printf("sent %" PRIu64 "\n", G.s.sent);
	printf("acked %" PRIu64 "\n", G.s.acked);
	printf("errors %" PRIu64 "\n", G.s.errors);
	printf("unanswered %" PRIu64 "\n", G.s.sent - G.s.replies);
	printf("ack_throughput_per_s %.0f\n", (double)G.s.acked_in_window / o->seconds);
	print_latency("ack", &G.s.ack);
	if (o->sc == SC_SEND_PUSH) {
		printf("pushes %" PRIu64 "\n", G.s.pushes);
		printf("sender_copies %" PRIu64 "\n", G.s.self_pushes);
		printf("push_throughput_per_s %.0f\n", (double)G.s.pushes_in_window / o->seconds);
		print_latency("push", &G.s.push);
	} else {
		printf("push_frames %" PRIu64 "\n", G.s.pushes);
	}
	printf("generator_cpu_percent %.0f (of one core, warm-up to drain)\n",
	       100.0 * (G.cpu1 - G.cpu0) / ((double)(G.t_end - G.t0) / 1e9));
	if (G.s.bad || G.s.foreign)
		printf("unexpected_frames %" PRIu64 "\n", G.s.bad + G.s.foreign);
	if (G.s.first_error[0])
		printf("first_error %s\n", G.s.first_error);
}

/* ------------------------------------------------------------------- setup */

static void setup_users(void)
{
	struct rest r = {.port = G.o.api_port};
	snprintf(r.host, sizeof(r.host), "%s", G.o.api_host);
	rest_connect(&r);
	char body[512], err[256];
	int code;
	snprintf(body, sizeof(body), "{\"secret\":\"%s\",\"userID\":\"imAdmin\"}", G.o.secret);
	json_t *d = rest_post(&r, "/auth/get_admin_token", NULL, body, &code, err, sizeof(err));
	if (d == NULL)
		die("get_admin_token: %d %s", code, err);
	char *admin = strdup(json_string_value(json_object_get(d, "token")));
	json_decref(d);

	for (int i = 0; i < G.o.conns; i += REG_BATCH) {
		struct buf b = {0};
		buf_printf(&b, "{\"users\":[");
		for (int j = i; j < G.o.conns && j < i + REG_BATCH; j++)
			buf_printf(&b, "%s{\"userID\":\"%s\",\"nickname\":\"%s\"}",
				   j > i ? "," : "", G.c[j].user, G.c[j].user);
		buf_printf(&b, "]}");
		d = rest_post(&r, "/user/user_register", admin, b.p, &code, err, sizeof(err));
		free(b.p);
		if (d == NULL && code != OI_USER_EXISTS)
			die("user_register: %d %s", code, err);
		json_decref(d);
	}
	for (int i = 0; i < G.o.conns; i++) {
		snprintf(body, sizeof(body), "{\"platformID\":%d,\"userID\":\"%s\"}", OP_PLATFORM,
			 G.c[i].user);
		d = rest_post(&r, "/auth/get_user_token", admin, body, &code, err, sizeof(err));
		if (d == NULL)
			die("get_user_token %s: %d %s (a fresh server, or another --prefix?)",
			    G.c[i].user, code, err);
		G.c[i].token = strdup(json_string_value(json_object_get(d, "token")));
		json_decref(d);
	}
	free(admin);
	close(r.fd);
	free(r.in.p);
}

static void usage(void)
{
	fputs("usage: loadgen --scenario send-ack|send-push --api HOST:PORT --ws HOST:PORT "
	      "--secret S\n"
	      "               [--conns N] [--seconds T] [--warmup W] [--rate R] [--window W]\n"
	      "               [--size BYTES] [--seed N] [--sources K] [--prefix P]\n"
	      "  --rate R    messages/s offered in total (open loop); 0 = as fast as the window "
	      "allows\n"
	      "  --window W  outstanding requests per connection with --rate 0 (default 4)\n"
	      "  --sources K bind connections to 127.0.0.1..K (default: one per 20,000 "
	      "connections)\n",
	      stderr);
	exit(2);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"scenario", 1, 0, 'S'}, {"api", 1, 0, 'a'},   {"ws", 1, 0, 'w'},
	    {"secret", 1, 0, 's'},   {"conns", 1, 0, 'c'}, {"seconds", 1, 0, 't'},
	    {"warmup", 1, 0, 'W'},   {"rate", 1, 0, 'r'},  {"window", 1, 0, 'n'},
	    {"size", 1, 0, 'z'},     {"seed", 1, 0, 'e'},  {"sources", 1, 0, 'x'},
	    {"prefix", 1, 0, 'p'},   {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
	const char *api = NULL, *ws = NULL, *sc = "send-ack";
	*o = (struct opts){.conns = 100,
			   .window = 4,
			   .size = 64,
			   .seconds = 10,
			   .warmup = 1,
			   .seed = 1,
			   .prefix = "lg"};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'S':
			sc = optarg;
			break;
		case 'a':
			api = optarg;
			break;
		case 'w':
			ws = optarg;
			break;
		case 's':
			o->secret = optarg;
			break;
		case 'c':
			o->conns = atoi(optarg);
			break;
		case 't':
			o->seconds = atof(optarg);
			break;
		case 'W':
			o->warmup = atof(optarg);
			break;
		case 'r':
			o->rate = atof(optarg);
			break;
		case 'n':
			o->window = atoi(optarg);
			break;
		case 'z':
			o->size = atoi(optarg);
			break;
		case 'e':
			o->seed = strtoull(optarg, NULL, 10);
			break;
		case 'x':
			o->sources = atoi(optarg);
			break;
		case 'p':
			o->prefix = optarg;
			break;
		default:
			usage();
		}
	}
	if (api == NULL || ws == NULL || o->secret == NULL || optind != argc)
		usage();
	if (strcmp(sc, "send-ack") == 0)
		o->sc = SC_SEND_ACK;
	else if (strcmp(sc, "send-push") == 0)
		o->sc = SC_SEND_PUSH;
	else
		die("unknown --scenario %s", sc);
	parse_addr(api, o->api_host, sizeof(o->api_host), &o->api_port);
	parse_addr(ws, o->ws_host, sizeof(o->ws_host), &o->ws_port);
	if (o->conns < 2 || o->conns % 2 != 0)
		die("--conns must be even and >= 2 (connections send to each other in pairs)");
	if (o->size < 0 || o->size > TEXT_POOL)
		die("--size must be 0..%d", TEXT_POOL);
	if (o->seconds <= 0 || o->warmup < 0 || o->rate < 0 || o->window < 1)
		die("bad --seconds, --warmup, --rate or --window");
	if (o->sources <= 0)
		o->sources = (o->conns + PER_SOURCE - 1) / PER_SOURCE;
	if (o->sources > 254)
		die("--sources must be <= 254");
}

int main(int argc, char **argv)
{
	parse_opts(argc, argv, &G.o);
	rng_state = G.o.seed;
	signal(SIGPIPE, SIG_IGN);
	/* A descriptor per connection. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789 ";
	for (int i = 0; i < TEXT_POOL; i++)
		G.text[i] = alpha[rng_next() % (sizeof(alpha) - 1)];

	G.c = calloc((size_t)G.o.conns, sizeof(*G.c));
	if (G.c == NULL)
		die("out of memory");
	for (int i = 0; i < G.o.conns; i++) {
		G.c[i].lg = &G;
		G.c[i].idx = i;
		snprintf(G.c[i].user, sizeof(G.c[i].user), "%s-%d", G.o.prefix, i);
	}
	setup_users();

	G.loop = uv_default_loop();
	uv_timer_init(G.loop, &G.tick);
	uv_timer_init(G.loop, &G.stop);
	connect_next();
	uv_run(G.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(G.loop) != 0)
		die("handles left open");
	report();
	for (int i = 0; i < G.o.conns; i++) {
		wslay_event_context_free(G.c[i].ws);
		free(G.c[i].token);
		free(G.c[i].out.p);
		free(G.c[i].wbuf.p);
		free(G.c[i].head.p);
	}
	free(G.c);
	free(G.pb.p);
	free(G.b64.p);
	free(G.env.p);
	return 0;
}
