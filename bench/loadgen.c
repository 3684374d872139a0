/* loadgen.c - an OpenIM WebSocket load generator: JS-SDK-style connections sending text
 * messages (1003), 1:1 or to groups, idling with heartbeats, or reconnecting to catch up. */

/*
 * One process, one libuv loop, one thread.  It runs in three phases:
 *
 *   1. setup over REST (lg_cli.c, on lg_rest.c's blocking client): get_admin_token with the
 *      secret, user_register in batches of 1,000, groups (create_group, then
 *      invite_user_to_group in batches), and get_user_token for every connection, pipelined
 *      (openim-protocol.md §2.3, §3.4);
 *   2. the WebSocket connections (openim-protocol.md §4.1-4.2): TCP connect (bound to 127.0.0.x
 *      source addresses when N is large), the HTTP upgrade written by hand, "HTTP/1.1 101", then
 *      the first text frame {"errCode":0,...}; wslay runs in client mode from the 101 on;
 *   3. the scenario:
 *      send-ack, send-push  a warm-up, `seconds` of 1:1 load in pairs, a drain of DRAIN_S at most;
 *      group      the same with every connection sending to its group; a message is complete
 *                 when every other online member has its 2001 (send -> last delivery);
 *      idle       `seconds` of text pings (§4.6) every --ping s from each connection;
 *      reconnect  the receivers drop off, the senders store --per-client messages for each, the
 *                 receivers reconnect at once and pull (1001 newest seqs, then 1002 by ranges of
 *                 100 seqs, as the JS SDK does after a reconnect, §9 step 4).
 *
 * Connection states (each moves forward only, except that reconnect returns CLOSED to NEW):
 *   NEW -> CONNECTING -> HTTP (GET sent, reading the 101) -> RESULT (waiting for the connect
 *   result frame) -> OPEN -> CLOSED
 *
 * Invariants:
 *   1. Every 1003 request carries its start time in its msgIncr and clientMsgID
 *      ("<sender>.<k>.<ns>", k counting every message sent), so replies and pushes are matched
 *      without a table, and a push at the receiver yields the end-to-end latency of that very
 *      message; group messages count their deliveries in got[k].
 *   2. Open loop (--rate R > 0): message k is due at t0 + k/R and its latency counts from that
 *      due time, not from when it was written, so a stalled server or generator cannot hide its
 *      stall (no "coordinated omission").  Closed loop (--rate 0): each connection keeps
 *      --window requests outstanding and latency counts from the write.
 *   3. A latency enters the histogram when its message was due inside the measured window;
 *      throughput counts the answers that arrived inside it.
 *   4. Nothing is freed inside a callback of its own handle: connections are freed after the
 *      loop has closed every handle (a reconnecting client's wslay context is freed in its
 *      close callback, after which it starts again from NEW), and the loop must close with
 *      uv_loop_close() == 0.
 *
 * Histogram: log-linear like HdrHistogram, values in nanoseconds, exact below 256 ns, above that
 * 128 sub-buckets per power of two (7,424 counters): a reported percentile is the upper edge of
 * its bucket, at most 1/128 (0.78%) above the true value; the maximum is exact.
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>
#include <mbedtls/base64.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "loadgen.h"
#include "msg.pb-c.h"
#include "sdkws.pb-c.h"

#define DRAIN_S 3.0	   /* seconds at most to wait for answers after the load */
#define MAX_MSG (1u << 20) /* largest frame accepted from the server */

/* ------------------------------------------------------------------ helpers */

/* splitmix64: the one random source, seeded by --seed, so runs repeat. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* This process's CPU time (user + system), seconds. */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

struct lg G;

static void srv_sample(struct srvstat *st)
{
	char path[64], line[256];
	*st = (struct srvstat){0};
	if (G.o.pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/status", G.o.pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %ld", &st->rss_kib);
		sscanf(line, "VmHWM: %ld", &st->hwm_kib);
		sscanf(line, "RssAnon: %ld", &st->anon_kib);
	}
	fclose(f);
	if ((f = fopen("/proc/net/sockstat", "r")) != NULL) {
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "TCP:", 4) == 0 && strstr(line, " mem "))
				st->tcp_mem_pages = atol(strstr(line, " mem ") + 5);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", G.o.pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut, stime;
	/* After the command: state and 10 fields, then utime and stime (proc(5) fields 14, 15). */
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			&stime) == 2) {
		st->cpu_s = (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
		st->ok = true;
	}
}

void lg_group_id(int g, char *out, size_t n)
{
	snprintf(out, n, "%s-g%d", G.o.prefix, g);
}

void lg_member_name(int i, char *out, size_t n, void *arg)
{
	(void)arg;
	snprintf(out, n, "%s-%d-%d", G.o.prefix, i / G.o.members, i % G.o.members);
}

void lg_conn_name(int i, char *out, size_t n, void *arg)
{
	(void)arg;
	snprintf(out, n, "%s", G.c[i].user);
}

double lg_secs(uint64_t a, uint64_t b)
{
	return (double)(b - a) / 1e9;
}

/* ------------------------------------------------------------- wire output */

static void on_write(uv_write_t *req, int status);

/* Writes c->out if no write is under way; bytes gathered meanwhile go in the next write. */
static void flush(struct conn *c)
{
	if (c->writing || c->out.len == 0 || c->st == C_CLOSED)
		return;
	struct lg_buf t = c->wbuf;
	c->wbuf = c->out;
	c->out = t;
	c->out.len = 0;
	uv_buf_t b = uv_buf_init(c->wbuf.p, (unsigned)c->wbuf.len);
	int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (rc != 0)
		lg_die("%s: write: %s", c->user, uv_strerror(rc));
	c->writing = true;
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	c->writing = false;
	if (status != 0 && !c->lg->done && c->st != C_CLOSED)
		lg_die("%s: write: %s", c->user, uv_strerror(status));
	flush(c);
}

/* wslay callbacks (client mode: it masks what it sends). */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
			  void *user)
{
	lg_buf_add(&((struct conn *)user)->out, data, len);
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

/* Queues one masked frame and hands it to the socket. */
static void ws_queue(struct conn *c, uint8_t opcode, const void *p, size_t n)
{
	struct wslay_event_msg wm = {opcode, p, n};
	if (wslay_event_queue_msg(c->ws, &wm) != 0 || wslay_event_send(c->ws) != 0)
		lg_die("%s: wslay send failed", c->user);
	flush(c);
}

/* Sends a request envelope (openim-protocol.md §4.3): protobuf pb, base64, JSON, binary frame. */
static void send_env(struct conn *c, int req_id, const char *incr, const uint8_t *pb, size_t n)
{
	size_t b64n;
	G.b64.len = 0;
	lg_buf_reserve(&G.b64, 4 * (n / 3 + 1) + 1);
	if (mbedtls_base64_encode((unsigned char *)G.b64.p, G.b64.cap, &b64n, pb, n) != 0)
		lg_die("base64");
	G.env.len = 0;
	lg_buf_printf(&G.env,
		      "{\"reqIdentifier\":%d,\"msgIncr\":\"%s\",\"sendID\":\"%s\","
		      "\"operationID\":\"op%s\",\"data\":\"%.*s\"}",
		      req_id, incr, c->user, incr, (int)b64n, G.b64.p);
	ws_queue(c, WSLAY_BINARY_FRAME, G.env.p, G.env.len);
	c->outstanding++;
}
/* -------------------------------------------------------------- messages */

static void send_msg(struct conn *c, uint64_t due);
static void finish(void);

static bool in_window(uint64_t t)
{
	return t >= G.m_start && t < G.m_end;
}

/* "<sender>.<k>.<ns>": returns the sender index, the message number and the ns, or false. */
static bool parse_stamp(const char *p, size_t n, long *sender, uint64_t *k, uint64_t *ns)
{
	char tmp[96];
	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	char *e;
	*sender = strtol(tmp, &e, 10);
	if (*e != '.' || *sender < 0 || *sender >= G.n)
		return false;
	*k = strtoull(e + 1, &e, 10);
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
	lg_buf_reserve(&G.pb, need);
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

/* Group with --rate 0: the next message once the previous one is acknowledged and delivered. */
static void serial_next(void)
{
	if (!G.serial || !G.sending || G.s.replies < G.s.sent || G.s.complete < G.nmsg)
		return;
	if (G.nmsg >= (uint64_t)G.o.count) {
		G.sending = false;
		G.m_end = uv_hrtime();
		finish();
		return;
	}
	send_msg(&G.c[G.nmsg % (uint64_t)G.n], uv_hrtime());
}

/* Reconnect senders: the next message to the next receiver this sender serves. */
static void sender_next(struct conn *c)
{
	if (c->to_send == 0)
		return;
	c->to_send--;
	int s = c->idx - G.o.conns;
	c->next_target += G.o.senders;
	if (c->next_target >= G.o.conns)
		c->next_target = s;
	send_msg(c, uv_hrtime());
}

/* A 1003 reply: latency from the stamp in msgIncr (invariant 1). */
static void on_reply(struct conn *c, const struct env *e, uint64_t now)
{
	uint64_t t, k;
	long sender;
	c->outstanding--;
	G.s.replies++;
	if (!parse_stamp(e->incr, e->incr_n, &sender, &k, &t) || sender != c->idx) {
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
	if (G.o.sc == SC_RECONNECT) {
		sender_next(c);
		if (G.s.replies == G.s.sent && G.t_send1 == 0 && G.s.sent == G.nmsg) {
			bool left = false;
			for (int i = G.o.conns; i < G.n && !left; i++)
				left = G.c[i].to_send > 0;
			if (!left)
				G.t_send1 = now;
		}
		return;
	}
	if (G.serial) {
		serial_next();
		return;
	}
	/* Closed loop: the answer frees a slot of the window. */
	if (G.o.rate == 0 && now < G.m_end)
		send_msg(c, now);
}

/* One pushed message at connection c (invariant 1). */
static void on_pushed_msg(struct conn *c, const Openim__Sdkws__MsgData *m, uint64_t now)
{
	uint64_t t, k;
	long sender;
	if (!parse_stamp(m->clientmsgid, strlen(m->clientmsgid), &sender, &k, &t)) {
		G.s.foreign++;
		return;
	}
	if (sender == c->idx) {
		G.s.self_pushes++;
		return;
	}
	bool ok = G.o.sc == SC_GROUP ? G.c[sender].group == c->group
				     : sender == (c->idx ^ 1) && strcmp(m->recvid, c->user) == 0;
	if (!ok) {
		G.s.foreign++;
		return;
	}
	G.s.pushes++;
	if (in_window(now))
		G.s.pushes_in_window++;
	if (in_window(t))
		h_record(&G.s.push, now - t);
	if (G.o.sc == SC_GROUP && k < G.got_cap && ++G.got[k] == (uint32_t)G.expect) {
		/* The last online member has it: send -> last delivery. */
		G.s.complete++;
		if (in_window(now))
			G.s.complete_in_window++;
		if (in_window(t))
			h_record(&G.s.last, now - t);
		serial_next();
	}
}

/* A 2001 push: decoded for send-push and group, counted otherwise. */
static void on_push(struct conn *c, const struct env *e, uint64_t now)
{
	if (G.o.sc != SC_SEND_PUSH && G.o.sc != SC_GROUP) {
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
		for (size_t j = 0; v != NULL && j < v->n_msgs; j++)
			on_pushed_msg(c, v->msgs[j], now);
	}
	G.s.foreign += pm->n_notificationmsgs;
	openim__sdkws__push_messages__free_unpacked(pm, NULL);
}

/* Reconnect: a client has everything it was sent while offline. */
static void caught_up(struct conn *c, uint64_t now)
{
	G.s.caught++;
	if (c->pulled < G.o.per_client)
		G.s.short_clients++;
	h_record(&G.s.catchup, now - c->t_connect);
	h_record(&G.s.storm, now - G.t_storm);
	if (G.s.caught == (uint64_t)G.o.conns) {
		G.t_caught = now;
		finish();
	}
}

/* Pulls seqs [lo, hi] of conv with 1002, 100 per request like the JS SDK (§9 step 4). */
static void pull_range(struct conn *c, const char *conv, int64_t lo, int64_t hi)
{
	for (int64_t b = lo; b <= hi; b += 100) {
		Openim__Sdkws__SeqRange r = OPENIM__SDKWS__SEQ_RANGE__INIT, *rp = &r;
		r.conversationid = (char *)conv;
		r.begin = b;
		r.end = b + 99 < hi ? b + 99 : hi;
		r.num = 100;
		Openim__Sdkws__PullMessageBySeqsReq q =
		    OPENIM__SDKWS__PULL_MESSAGE_BY_SEQS_REQ__INIT;
		q.userid = c->user;
		q.n_seqranges = 1;
		q.seqranges = &rp;
		uint8_t buf[512];
		size_t n = openim__sdkws__pull_message_by_seqs_req__get_packed_size(&q);
		if (n > sizeof(buf))
			lg_die("1002 request too large");
		openim__sdkws__pull_message_by_seqs_req__pack(&q, buf);
		char incr[64];
		snprintf(incr, sizeof(incr), "p%d.%" PRIu64, c->idx, G.s.pull_reqs++);
		send_env(c, 1002, incr, buf, n);
		c->pulls++;
	}
}

/* The 1001 answer: pull every conversation whose max seq is above zero. */
static void on_newest(struct conn *c, const struct env *e, uint64_t now)
{
	c->outstanding--;
	c->pulls--;
	Openim__Sdkws__GetMaxSeqResp *r = NULL;
	if (e->err_code == 0 && env_data(e))
		r = openim__sdkws__get_max_seq_resp__unpack(NULL, G.pb.len, (uint8_t *)G.pb.p);
	if (r == NULL) {
		note_error("1001", e->err_msg, e->err_msg_n);
		caught_up(c, now);
		return;
	}
	for (size_t i = 0; i < r->n_maxseqs; i++) {
		int64_t lo = 1;
		for (size_t j = 0; j < r->n_minseqs; j++)
			if (strcmp(r->minseqs[j]->key, r->maxseqs[i]->key) == 0 &&
			    r->minseqs[j]->value > lo)
				lo = r->minseqs[j]->value;
		if (r->maxseqs[i]->value >= lo && r->maxseqs[i]->value > 0)
			pull_range(c, r->maxseqs[i]->key, lo, r->maxseqs[i]->value);
	}
	openim__sdkws__get_max_seq_resp__free_unpacked(r, NULL);
	if (c->pulls == 0)
		caught_up(c, now);
}

/* A 1002 answer: count the messages; the client is caught up when its last pull is answered. */
static void on_pulled(struct conn *c, const struct env *e, uint64_t now)
{
	c->outstanding--;
	c->pulls--;
	Openim__Sdkws__PullMessageBySeqsResp *r = NULL;
	if (e->err_code == 0 && env_data(e))
		r = openim__sdkws__pull_message_by_seqs_resp__unpack(NULL, G.pb.len,
								     (uint8_t *)G.pb.p);
	if (r == NULL) {
		note_error("1002", e->err_msg, e->err_msg_n);
	} else {
		for (size_t i = 0; i < r->n_msgs; i++)
			if (r->msgs[i]->value)
				c->pulled += (int64_t)r->msgs[i]->value->n_msgs;
		for (size_t i = 0; i < r->n_notificationmsgs; i++)
			if (r->notificationmsgs[i]->value)
				c->pulled += (int64_t)r->notificationmsgs[i]->value->n_msgs;
		openim__sdkws__pull_message_by_seqs_resp__free_unpacked(r, NULL);
	}
	if (c->pulls == 0) {
		G.s.pulled += (uint64_t)c->pulled;
		caught_up(c, now);
	}
}

static void start_load(void);
static void connect_next(void);

/* The connect result arrived (§4.2): the connection is open. */
static void on_open(struct conn *c, uint64_t now)
{
	c->st = C_OPEN;
	G.connecting--;
	G.ready++;
	if (G.phase == P_STORM) {
		/* Like the SDK after a reconnect: newest seqs first, then 1002 per gap. */
		Openim__Sdkws__GetMaxSeqReq q = OPENIM__SDKWS__GET_MAX_SEQ_REQ__INIT;
		q.userid = c->user;
		uint8_t buf[256];
		size_t n = openim__sdkws__get_max_seq_req__get_packed_size(&q);
		openim__sdkws__get_max_seq_req__pack(&q, buf);
		char incr[64];
		snprintf(incr, sizeof(incr), "n%d", c->idx);
		c->pulls = 1;
		send_env(c, 1001, incr, buf, n);
		connect_next();
		return;
	}
	(void)now;
	start_load();
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		      void *user)
{
	struct conn *c = user;
	uint64_t now = uv_hrtime();
	if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		if (!G.done)
			lg_die("%s: server closed the WebSocket (code %u)", c->user,
			       arg->status_code);
		return;
	}
	if (c->st == C_RESULT) {
		/* The connect result (§4.2): one text frame, errCode 0 on success. */
		if (arg->opcode != WSLAY_TEXT_FRAME ||
		    memmem(arg->msg, arg->msg_length, "\"errCode\":0,", 12) == NULL)
			lg_die("%s: connect refused: %.*s", c->user, (int)arg->msg_length,
			       (const char *)arg->msg);
		on_open(c, now);
		return;
	}
	if (arg->opcode == WSLAY_TEXT_FRAME) {
		if (memmem(arg->msg, arg->msg_length, "\"pong\"", 6) != NULL)
			G.s.pongs++;
		return;
	}
	if (arg->opcode != WSLAY_BINARY_FRAME)
		return;
	struct env e;
	if (!env_scan((const char *)arg->msg, arg->msg_length, &e)) {
		G.s.bad++;
		return;
	}
	switch (e.req_id) {
	case 1003:
		on_reply(c, &e, now);
		break;
	case 2001:
		on_push(c, &e, now);
		break;
	case 1001:
		on_newest(c, &e, now);
		break;
	case 1002:
		on_pulled(c, &e, now);
		break;
	default:
		G.s.bad++;
	}
}

/*
 * Queues one 1003 SendMsg from c, stamped with `due` (invariant 1): to its partner (idx ^ 1),
 * to its group (group), or to c->next_target (reconnect).  MsgData packed with protobuf-c,
 * base64, the JS envelope, one masked binary frame.
 */
static void send_msg(struct conn *c, uint64_t due)
{
	char cmid[96], peer[ID_MAX] = "", gid[ID_MAX] = "", content[64 + TEXT_POOL];
	uint64_t k = G.nmsg++;
	int stype = 1;
	if (G.o.sc == SC_GROUP) {
		lg_group_id(c->group, gid, sizeof(gid));
		stype = 3;
		if (k >= G.got_cap) {
			size_t cap = G.got_cap ? 2 * G.got_cap : 65536;
			G.got = realloc(G.got, cap * sizeof(*G.got));
			if (G.got == NULL)
				lg_die("out of memory");
			memset(G.got + G.got_cap, 0, (cap - G.got_cap) * sizeof(*G.got));
			G.got_cap = cap;
		}
	} else if (G.o.sc == SC_RECONNECT) {
		snprintf(peer, sizeof(peer), "%s", G.c[c->next_target].user);
	} else {
		snprintf(peer, sizeof(peer), "%s", G.c[c->idx ^ 1].user);
	}
	snprintf(cmid, sizeof(cmid), "%d.%" PRIu64 ".%" PRIu64, c->idx, k, due);
	size_t off = rng_next() % (TEXT_POOL - (size_t)G.o.size + 1);
	int cn =
	    snprintf(content, sizeof(content), "{\"content\":\"%.*s\"}", G.o.size, G.text + off);

	Openim__Sdkws__MsgData m = OPENIM__SDKWS__MSG_DATA__INIT;
	m.sendid = c->user;
	m.recvid = peer;
	m.groupid = gid;
	m.clientmsgid = cmid;
	m.senderplatformid = OP_PLATFORM;
	m.sessiontype = stype;
	m.msgfrom = 100;
	m.contenttype = 101;
	m.content.data = (uint8_t *)content;
	m.content.len = (size_t)cn;
	m.createtime = (int64_t)(uv_now(G.loop)); /* any ms clock: the server does not check it */
	m.status = 1;
	size_t n = openim__sdkws__msg_data__get_packed_size(&m);
	G.pb.len = 0;
	lg_buf_reserve(&G.pb, n);
	G.pb.len = openim__sdkws__msg_data__pack(&m, (uint8_t *)G.pb.p);
	send_env(c, 1003, cmid, (const uint8_t *)G.pb.p, G.pb.len);
	G.s.sent++;
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
		lg_die("%s: bad WebSocket data from the server", c->user);
	c->rn = 0;
	if (c->st == C_CLOSED)
		return;
	if (wslay_event_send(c->ws) != 0 && !G.done)
		lg_die("%s: wslay send failed", c->user);
	flush(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (nread == 0 || c->st == C_CLOSED)
		return;
	if (nread < 0) {
		if (!G.done)
			lg_die("%s: read: %s", c->user, uv_strerror((int)nread));
		return;
	}
	if (c->st != C_HTTP) {
		feed(c, b->base, (size_t)nread);
		return;
	}
	/* The upgrade answer (RFC 6455 §4.2.2): 101, then the frames may follow at once. */
	lg_buf_add(&c->head, b->base, (size_t)nread);
	lg_buf_add(&c->head, "", 1);
	c->head.len--;
	char *end = strstr(c->head.p, "\r\n\r\n");
	if (end == NULL)
		return;
	if (strncmp(c->head.p, "HTTP/1.1 101 ", 13) != 0)
		lg_die("%s: upgrade refused: %.200s", c->user, c->head.p);
	c->st = C_RESULT;
	size_t used = (size_t)(end - c->head.p) + 4;
	feed(c, c->head.p + used, c->head.len - used);
	free(c->head.p);
	c->head = (struct lg_buf){0};
}

static void connect_next(void);

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	if (status != 0)
		lg_die("%s: connect: %s", c->user, uv_strerror(status));
	uv_tcp_nodelay(&c->tcp, 1);
	/* The upgrade request the JS SDK sends (openim-protocol.md §4.1). */
	char key[25];
	unsigned char raw[16];
	size_t kn;
	ws_genmask_cb(NULL, raw, sizeof(raw), NULL);
	mbedtls_base64_encode((unsigned char *)key, sizeof(key), &kn, raw, sizeof(raw));
	lg_buf_printf(&c->out,
		      "GET /?sendID=%s&token=%s&platformID=%d&operationID=lg-%d&isBackground=false"
		      "&isMsgResp=true&sdkType=js HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		      "Sec-WebSocket-Version: 13\r\n\r\n",
		      c->user, c->token, OP_PLATFORM, c->idx, G.o.ws_host, G.o.ws_port, key);
	c->st = C_HTTP;
	int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (rc != 0)
		lg_die("%s: read: %s", c->user, uv_strerror(rc));
	flush(c);
	connect_next();
}

/* Starts connections below G.limit until --handshakes are being set up. */
static void connect_next(void)
{
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = ws_recv_cb,
	    .send_callback = ws_send_cb,
	    .genmask_callback = ws_genmask_cb,
	    .on_msg_recv_callback = ws_msg_cb,
	};
	while (G.connecting < G.o.handshakes && G.next_connect < G.limit) {
		struct conn *c = &G.c[G.next_connect++];
		struct sockaddr_in dst, src;
		int rc = uv_ip4_addr(G.o.ws_host, G.o.ws_port, &dst);
		if (rc != 0)
			lg_die("--ws %s: %s", G.o.ws_host, uv_strerror(rc));
		if (uv_tcp_init(G.loop, &c->tcp) != 0 ||
		    wslay_event_context_client_init(&c->ws, &cbs, c) != 0)
			lg_die("out of memory");
		c->handle = true;
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
				lg_die("bind %s: %s", ip, uv_strerror(rc));
		}
		c->t_connect = uv_hrtime();
		rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&dst, on_connect);
		if (rc != 0)
			lg_die("%s: connect: %s", c->user, uv_strerror(rc));
		c->st = C_CONNECTING;
		G.connecting++;
	}
}

/* ------------------------------------------------------------------- load */

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
		send_msg(&G.c[G.k % (uint64_t)G.n], due);
	}
	if (now >= G.m_end) {
		G.sending = false;
		uv_timer_stop(t);
	}
}

/* Idle: a text ping (the JS SDK's heartbeat, §4.6) from each connection every --ping s. */
static void on_ping_tick(uv_timer_t *t)
{
	static const char ping[] = "{\"type\":\"ping\"}";
	uint64_t now = uv_hrtime();
	for (int sent = 0; sent < G.n; sent++) {
		struct conn *c = &G.c[G.ping_next];
		if (c->next_ping > now)
			break;
		ws_queue(c, WSLAY_TEXT_FRAME, ping, sizeof(ping) - 1);
		G.s.pings++;
		c->next_ping += (uint64_t)(G.o.ping * 1e9);
		G.ping_next = (G.ping_next + 1) % G.n;
	}
	(void)t;
}

static bool drained(void)
{
	if (G.o.sc == SC_GROUP)
		return G.s.replies >= G.s.sent && G.s.complete >= G.nmsg;
	if (G.o.sc == SC_SEND_PUSH)
		return G.s.replies >= G.s.sent && G.s.pushes + G.s.foreign >= G.s.sent;
	return G.s.replies >= G.s.sent;
}

static void storm_start(void);

static void on_receiver_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	wslay_event_context_free(c->ws);
	c->ws = NULL;
	c->handle = false;
	c->out.len = c->wbuf.len = 0;
	c->writing = false;
	c->outstanding = 0;
	c->st = C_NEW;
	if (++G.closed == G.o.conns) {
		/* Senders: receiver r is served by sender r % S (invariant: all offline now). */
		G.phase = P_SEND;
		G.t_send0 = uv_hrtime();
		G.ready -= G.o.conns;
		for (int s = 0; s < G.o.senders; s++) {
			struct conn *sc = &G.c[G.o.conns + s];
			uint64_t targets =
			    (uint64_t)((G.o.conns - s + G.o.senders - 1) / G.o.senders);
			sc->to_send = targets * (uint64_t)G.o.per_client;
			sc->next_target = s - G.o.senders; /* sender_next advances first */
			for (int w = 0; w < G.o.window; w++)
				sender_next(sc);
		}
	}
}

/* Every 10 ms: phase changes and the end of the run. */
static void on_stop(uv_timer_t *t)
{
	uint64_t now = uv_hrtime();
	switch (G.o.sc) {
	case SC_IDLE:
		if (now >= G.m_end)
			finish();
		return;
	case SC_RECONNECT:
		if (G.phase == P_SEND && G.t_send1 && now >= G.t_send1 + 500000000ull)
			storm_start();
		else if (G.phase == P_STORM && now >= G.t_storm + (uint64_t)(G.o.seconds * 1e9))
			finish(); /* timed out: the report says how many caught up */
		return;
	default:
		break;
	}
	if (G.serial) {
		if (now >= G.m_start + (uint64_t)(G.o.seconds * 1e9))
			finish(); /* timed out */
		return;
	}
	if (now >= G.m_end)
		G.sending = false;
	if (now >= G.m_end && (drained() || now >= G.m_end + (uint64_t)(DRAIN_S * 1e9)))
		finish();
}

static void storm_start(void)
{
	fprintf(stderr,
		"loadgen: %" PRIu64 " messages stored for %d offline clients; reconnecting\n",
		G.s.acked, G.o.conns);
	G.phase = P_STORM;
	G.t_storm = uv_hrtime();
	G.next_connect = 0;
	G.limit = G.o.conns;
	srv_sample(&G.s_storm);
	connect_next();
}

static void start_load(void)
{
	if (G.ready < G.limit) {
		connect_next();
		return;
	}
	G.t_conn1 = uv_hrtime();
	fprintf(stderr,
		"loadgen: %d connections open in %.2f s, load for %.1f s + %.1f s warm-up\n", G.n,
		(double)(G.t_conn1 - G.t_conn0) / 1e9, G.o.seconds, G.o.warmup);
	srv_sample(&G.s_open);
	G.phase = P_LOAD;
	G.t0 = uv_hrtime();
	G.cpu0 = cpu_s();
	G.m_start = G.t0 + (uint64_t)(G.o.warmup * 1e9);
	G.m_end = G.m_start + (uint64_t)(G.o.seconds * 1e9);
	G.sending = true;
	uv_timer_start(&G.stop, on_stop, 10, 10);
	switch (G.o.sc) {
	case SC_IDLE:
		G.m_start = G.t0;
		G.m_end = G.t0 + (uint64_t)(G.o.seconds * 1e9);
		for (int i = 0; i < G.n; i++)
			G.c[i].next_ping = G.t0 + (uint64_t)(G.o.ping * 1e9 * i / G.n);
		uv_timer_start(&G.tick, on_ping_tick, 10, 10);
		return;
	case SC_RECONNECT:
		/* Everyone was online; the receivers drop off (no close handshake). */
		G.phase = P_OFFLINE;
		G.m_start = G.t0;
		G.m_end = UINT64_MAX;
		for (int i = 0; i < G.o.conns; i++) {
			G.c[i].st = C_CLOSED;
			uv_close((uv_handle_t *)&G.c[i].tcp, on_receiver_closed);
		}
		return;
	case SC_GROUP:
		if (G.serial) {
			G.m_start = G.t0;
			G.m_end = UINT64_MAX;
			send_msg(&G.c[0], uv_hrtime());
			return;
		}
		break;
	default:
		break;
	}
	if (G.o.rate > 0) {
		uv_timer_start(&G.tick, on_tick, 1, 1);
	} else {
		for (int i = 0; i < G.n; i++)
			for (int w = 0; w < G.o.window; w++)
				send_msg(&G.c[i], uv_hrtime());
	}
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
	srv_sample(&G.s_end);
	uv_timer_stop(&G.tick);
	uv_timer_stop(&G.stop);
	uv_close((uv_handle_t *)&G.tick, on_closed);
	uv_close((uv_handle_t *)&G.stop, on_closed);
	for (int i = 0; i < G.n; i++) {
		struct conn *c = &G.c[i];
		c->st = C_CLOSED;
		if (c->handle && !uv_is_closing((uv_handle_t *)&c->tcp))
			uv_close((uv_handle_t *)&c->tcp, on_closed);
	}
}

int main(int argc, char **argv)
{
	lg_parse_opts(argc, argv, &G.o);
	rng_state = G.o.seed;
	signal(SIGPIPE, SIG_IGN);
	switch (G.o.sc) {
	case SC_GROUP:
		G.n = G.o.groups * G.o.online;
		G.expect = G.o.online - 1;
		G.serial = G.o.rate == 0;
		break;
	case SC_RECONNECT:
		G.n = G.o.conns + G.o.senders;
		break;
	default:
		G.n = G.o.conns;
	}
	G.limit = G.n;
	/* A descriptor per connection. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)G.n + 64 > rl.rlim_cur)
		lg_die("%d connections need more descriptors than RLIMIT_NOFILE (%llu) allows", G.n,
		       (unsigned long long)rl.rlim_cur);
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789 ";
	for (int i = 0; i < TEXT_POOL; i++)
		G.text[i] = alpha[rng_next() % (sizeof(alpha) - 1)];

	G.c = calloc((size_t)G.n, sizeof(*G.c));
	if (G.c == NULL)
		lg_die("out of memory");
	for (int i = 0; i < G.n; i++) {
		struct conn *c = &G.c[i];
		c->lg = &G;
		c->idx = i;
		if (G.o.sc == SC_GROUP) {
			c->group = i / G.o.online;
			lg_member_name(c->group * G.o.members + i % G.o.online, c->user,
				       sizeof(c->user), NULL);
		} else if (G.o.sc == SC_RECONNECT && i >= G.o.conns) {
			snprintf(c->user, sizeof(c->user), "%s-s%d", G.o.prefix, i - G.o.conns);
		} else {
			snprintf(c->user, sizeof(c->user), "%s-%d", G.o.prefix, i);
		}
	}
	lg_setup();

	G.loop = uv_default_loop();
	uv_timer_init(G.loop, &G.tick);
	uv_timer_init(G.loop, &G.stop);
	srv_sample(&G.s_setup);
	G.t_conn0 = uv_hrtime();
	connect_next();
	uv_run(G.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(G.loop) != 0)
		lg_die("handles left open");
	lg_report();
	for (int i = 0; i < G.n; i++) {
		wslay_event_context_free(G.c[i].ws);
		free(G.c[i].token);
		free(G.c[i].out.p);
		free(G.c[i].wbuf.p);
		free(G.c[i].head.p);
	}
	free(G.c);
	free(G.got);
	free(G.pb.p);
	free(G.b64.p);
	free(G.env.p);
	return 0;
}
