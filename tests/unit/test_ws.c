/* test_ws.c - the WebSocket gateway on real loopback sockets (a libuv loop in this thread, a
 * blocking hand-made client in another), plus its parameter parser and socket-free seam. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#include "api.h"
#include "envelope.h"
#include "gateway_int.h"
#include "gob.h"
#include "jwt.h"

/* ---- the fixture: an engine with users and tokens, a gateway, a client thread ---- */

enum { TK_U1, TK_U1B, TK_U1_GOB, TK_U2, TK_U3_KICKED, TK_EXPIRED, TK_NOT_STORED, TK_N };

struct fx {
	struct srv srv; /* first: handlers get back here */
	uv_loop_t loop;
	char dir[64];
	struct cfg cfg;
	struct eng *eng;
	uint64_t next_index;
	struct gw *gw;
	struct gw_opts opts;
	int port;
	uv_async_t done;
	pthread_t thr;
	void (*client)(struct fx *f);
	char tok[TK_N][512];
	struct gw_req *held[16];
	int n_held;
	int kicks;
	char kick_user[64], kick_keep[512];
	int kick_platform;
	struct gw_stats stats; /* when the client finished */
	bool gw_closed;
	char client_err[512];
};

static struct fx *fx_of(struct srv *s)
{
	return (struct fx *)s;
}

static void apply_cmd(struct fx *f, const struct eng_cmd *cmd)
{
	struct im_buf b = {0};
	struct eng_result res;
	memset(&res, 0, sizeof(res));
	assert_int_equal(eng_cmd_encode(cmd, &b), 0);
	assert_int_equal(eng_apply(f->eng, f->next_index++, b.p, b.len, &res), 0);
	assert_int_equal(eng_flush(f->eng), 0);
	assert_int_equal(res.code, 0);
	im_buf_free(&b);
}

/* A token for (user, platform) issued at now_s; stored unless store is false. */
static void issue(struct fx *f, char *out, const char *user, int32_t platform, int64_t now_s,
		  int64_t expire_s, bool store)
{
	char *tok = NULL;
	int64_t exp = 0;
	assert_int_equal(
	    jwt_issue(im_str_c(user), platform, f->srv.secret, now_s, expire_s, &tok, &exp), 0);
	snprintf(out, 512, "%s", tok);
	im_free(tok);
	if (!store)
		return;
	struct eng_cmd cmd = {.type = ENG_CMD_TOKEN_ISSUE, .now_ms = now_s * 1000};
	cmd.u.token_issue.user_id = im_str_c(user);
	cmd.u.token_issue.platform_id = platform;
	cmd.u.token_issue.token = im_str_c(out);
	cmd.u.token_issue.expire_at = exp;
	cmd.u.token_issue.policy = 0; /* keep both u1 tokens of platform 5 valid */
	cmd.u.token_issue.max_per_platform = 30;
	apply_cmd(f, &cmd);
}

/*
 * The application: 1001 is held, 1002 answers "second" then every held request
 * with "first", 1003 echoes, 1004 fails with 1302, 1005 "N SIZE USER" pushes until
 * refused, 1006 "USER PLATFORM" kicks, 1007 "USER" counts connections; any other
 * id is unknown.
 */
struct count {
	int n, bg;
};

static void count_conn(const struct gw_conn_info *ci, void *arg)
{
	struct count *c = arg;
	c->n++;
	c->bg += ci->is_background;
}

static int handler(struct srv *s, struct gw_req *req)
{
	struct fx *f = fx_of(s);
	char arg[128] = "", out[64];
	snprintf(arg, sizeof(arg), "%.*s", (int)IM_MIN(req->len, 127u), (const char *)req->data);
	switch (req->req_id) {
	case 1001:
		f->held[f->n_held++] = req;
		return 0;
	case 1002:
		gw_reply(req, 0, NULL, "second", 6);
		for (int i = 0; i < f->n_held; i++)
			gw_reply(f->held[i], 0, NULL, "first", 5);
		f->n_held = 0;
		return 0;
	case 1003:
		gw_reply(req, 0, NULL, req->data, req->len);
		return 0;
	case 1004:
		gw_reply(req, 1302, NULL, NULL, 0);
		return 0;
	case 1005: {
		int n = 0, size = 0, sent = 0;
		char user[64] = "";
		sscanf(arg, "%d %d %63s", &n, &size, user);
		char *blob = calloc(1, (size_t)size + 1);
		while (sent < n &&
		       gw_push(f->gw, im_str_c(user), 2001, "op-push", blob, (size_t)size))
			sent++;
		free(blob);
		snprintf(out, sizeof(out), "%d", sent);
		gw_reply(req, 0, NULL, out, strlen(out));
		return 0;
	}
	case 1006: {
		char user[64] = "";
		int platform = 0;
		sscanf(arg, "%63s %d", user, &platform);
		gw_kick(f->gw, im_str_c(user), platform);
		gw_reply(req, 0, NULL, "", 0);
		return 0;
	}
	case 1007: {
		struct count c = {0, 0};
		int n = gw_user_conns(f->gw, im_str_c(arg), count_conn, &c);
		snprintf(out, sizeof(out), "n=%d/%d bg=%d", n, c.n, c.bg);
		gw_reply(req, 0, NULL, out, strlen(out));
		return 0;
	}
	default:
		return -1;
	}
}

static void on_kick(struct srv *s, struct im_str user, int32_t platform, struct im_str keep)
{
	struct fx *f = fx_of(s);
	f->kicks++;
	snprintf(f->kick_user, sizeof(f->kick_user), "%.*s", (int)user.n, user.p);
	snprintf(f->kick_keep, sizeof(f->kick_keep), "%.*s", (int)keep.n, keep.p);
	f->kick_platform = platform;
}

static void on_gw_closed(void *arg)
{
	struct fx *f = arg;
	f->gw_closed = true;
}

/* The client finished: answer what is held (it is dropped), then close everything. */
static void on_done(uv_async_t *a)
{
	struct fx *f = a->data;
	for (int i = 0; i < f->n_held; i++)
		gw_reply(f->held[i], 0, NULL, "late", 4);
	f->n_held = 0;
	gw_get_stats(f->gw, &f->stats);
	gw_close(f->gw, on_gw_closed, f);
	uv_close((uv_handle_t *)&f->done, NULL);
}

static void *client_main(void *arg)
{
	struct fx *f = arg;
	f->client(f);
	uv_async_send(&f->done);
	return NULL;
}

static void fx_setup(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/imlog-test-ws-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char err[256];
	assert_int_equal(cfg_load(&f->cfg, 0, NULL, err, sizeof(err)), 0);
	snprintf(f->cfg.secret, sizeof(f->cfg.secret), "test-secret");
	struct eng_opts eo = {.dir = f->dir, .map_size = 16u << 20, .map_max = 64u << 20};
	assert_int_equal(eng_open(&f->eng, &eo, err, sizeof(err)), 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->next_index = 1;
	f->srv.loop = &f->loop;
	f->srv.cfg = &f->cfg;
	f->srv.eng = f->eng;
	f->srv.secret = im_str_c(f->cfg.secret);
	f->srv.token_expire_s = 90 * 86400;
	f->srv.now_ms = im_now_ms;
	f->srv.on_kick = on_kick;
	struct eng_user users[] = {{.user_id = IM_STR_LIT("u1"), .nickname = IM_STR_LIT("one")},
				   {.user_id = IM_STR_LIT("u2"), .nickname = IM_STR_LIT("two")},
				   {.user_id = IM_STR_LIT("u3"), .nickname = IM_STR_LIT("three")}};
	struct eng_cmd reg = {.type = ENG_CMD_USER_REGISTER, .now_ms = im_now_ms()};
	reg.u.user_register.n = IM_ARRAY_LEN(users);
	reg.u.user_register.users = users;
	apply_cmd(f, &reg);
	int64_t now = im_now_ms() / 1000, day = 86400;
	issue(f, f->tok[TK_U1], "u1", 5, now - 10, 90 * day, true);
	issue(f, f->tok[TK_U1B], "u1", 5, now - 20, 90 * day, true);
	issue(f, f->tok[TK_U1_GOB], "u1", 2, now - 10, 90 * day, true);
	issue(f, f->tok[TK_U2], "u2", 5, now - 10, 90 * day, true);
	issue(f, f->tok[TK_U3_KICKED], "u3", 5, now - 10, 90 * day, true);
	struct eng_cmd kick = {.type = ENG_CMD_TOKEN_KICK, .now_ms = now * 1000};
	kick.u.token_kick.user_id = IM_STR_LIT("u3");
	kick.u.token_kick.platform_id = 5;
	apply_cmd(f, &kick);
	issue(f, f->tok[TK_EXPIRED], "u1", 5, now - 10 * day, day, false);
	issue(f, f->tok[TK_NOT_STORED], "u2", 3, now - 10, 90 * day, false);
	f->opts = (struct gw_opts){.addr = "127.0.0.1:0", .handler = handler};
}

/* Starts the gateway, runs client in a thread until it is done, closes everything. */
static void fx_run(struct fx *f, void (*client)(struct fx *f))
{
	assert_int_equal(gw_start(&f->srv, &f->opts, &f->gw), 0);
	f->port = gw_port(f->gw);
	assert_true(f->port > 0);
	f->client = client;
	uv_async_init(&f->loop, &f->done, on_done);
	f->done.data = f;
	assert_int_equal(pthread_create(&f->thr, NULL, client_main, f), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	pthread_join(f->thr, NULL);
	assert_true(f->gw_closed);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	eng_close(f->eng);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		print_error("could not remove %s\n", f->dir);
	if (f->client_err[0])
		fail_msg("%s", f->client_err);
}

/* ---- the client: blocking sockets, hand-made frames ---- */

struct cl {
	int fd;
	uint8_t *buf; /* unread input */
	size_t len, cap;
	uint8_t *msg; /* payload of the last frame, NUL-terminated */
	size_t msg_len;
	int op;
	int status;
	char body[1024];
};

#define CHECK(f, cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			if ((f)->client_err[0] == '\0')                                            \
				snprintf((f)->client_err, sizeof((f)->client_err),                 \
					 "client line %d: %s (errno %d)", __LINE__, #cond, errno); \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static bool cl_fill(struct cl *c)
{
	if (c->cap - c->len < 65536) {
		c->cap = c->cap * 2 + 131072;
		c->buf = realloc(c->buf, c->cap);
	}
	ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n <= 0)
		return false;
	c->len += (size_t)n;
	return true;
}

static void cl_consume(struct cl *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static bool cl_send_raw(struct cl *c, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
		if (k <= 0)
			return false;
		s += k;
		n -= (size_t)k;
	}
	return true;
}

static int cl_socket(struct fx *f, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = {.tv_sec = 20};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
	a.sin_addr.s_addr = htonl(0x7f000001);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Sends a WebSocket handshake (RFC 6455's sample key) for query and reads the
 * answer head; a 101 must carry the sample accept value, other answers'
 * bodies land in c->body.  Returns the status, or -1.
 */
static int cl_open_ex(struct fx *f, struct cl *c, const char *query, const char *extra, int rcvbuf,
		      const void *early, size_t early_len)
{
	memset(c, 0, sizeof(*c));
	c->fd = cl_socket(f, rcvbuf);
	if (c->fd < 0)
		return -1;
	char req[4096];
	int n = snprintf(req, sizeof(req), "GET /?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s\r\n",
			 query, extra ? extra : "Upgrade: websocket\r\nConnection: Upgrade\r\n",
			 extra ? ""
			       : "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				 "Sec-WebSocket-Version: 13\r\n");
	/* Bytes right behind the request (a client that does not wait for the 101). */
	if ((size_t)n + early_len > sizeof(req))
		return -1;
	if (early_len)
		memcpy(req + n, early, early_len);
	if (!cl_send_raw(c, req, (size_t)n + early_len))
		return -1;
	char *end;
	for (;;) {
		if (c->len && (end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL)
			break;
		if (!cl_fill(c))
			return -1;
	}
	size_t head = (size_t)(end - (char *)c->buf) + 4;
	char h[4096];
	snprintf(h, sizeof(h), "%.*s", (int)head, (char *)c->buf);
	cl_consume(c, head);
	if (sscanf(h, "HTTP/1.1 %d", &c->status) != 1)
		return -1;
	if (c->status == 101) {
		if (strstr(h, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") == NULL ||
		    strstr(h, "Extensions") != NULL)
			return -1;
		return 101;
	}
	const char *cl = strcasestr(h, "Content-Length:");
	size_t blen = cl ? strtoul(cl + 15, NULL, 10) : 0;
	while (c->len < blen)
		if (!cl_fill(c))
			return -1;
	snprintf(c->body, sizeof(c->body), "%.*s", (int)IM_MIN(blen, sizeof(c->body) - 1),
		 (char *)c->buf);
	cl_consume(c, blen);
	return c->status;
}

static int cl_open(struct fx *f, struct cl *c, const char *query)
{
	return cl_open_ex(f, c, query, NULL, 0, NULL, 0);
}

static void cl_close(struct cl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	free(c->msg);
	c->buf = c->msg = NULL;
}

/* Reads one frame (unmasked, as a server must send them); false on EOF or error. */
static bool cl_frame(struct cl *c)
{
	for (;;) {
		if (c->len >= 2) {
			size_t hl = 2, n = c->buf[1] & 0x7f;
			if (c->buf[1] & 0x80)
				return false; /* masked server frame */
			if (n == 126)
				hl = 4;
			else if (n == 127)
				hl = 10;
			if (c->len >= hl) {
				if (n == 126)
					n = (size_t)c->buf[2] << 8 | c->buf[3];
				else if (n == 127)
					n = (size_t)im_get_be64(c->buf + 2);
				if (c->len >= hl + n) {
					c->op = c->buf[0] & 0x0f;
					free(c->msg);
					c->msg = malloc(n + 1);
					memcpy(c->msg, c->buf + hl, n);
					c->msg[n] = '\0';
					c->msg_len = n;
					cl_consume(c, hl + n);
					return true;
				}
			}
		}
		if (!cl_fill(c))
			return false;
	}
}

/* Sends one masked frame; fin=false leaves the message open. */
static bool cl_send_frame(struct cl *c, int op, bool fin, const void *p, size_t n)
{
	static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
	uint8_t *fr = malloc(n + 14);
	size_t hl = 2;
	fr[0] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (n < 126) {
		fr[1] = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		fr[1] = 0x80 | 126;
		fr[2] = (uint8_t)(n >> 8);
		fr[3] = (uint8_t)n;
		hl = 4;
	} else {
		fr[1] = 0x80 | 127;
		im_put_be64(fr + 2, n);
		hl = 10;
	}
	memcpy(fr + hl, key, 4);
	for (size_t i = 0; i < n; i++)
		fr[hl + 4 + i] = ((const uint8_t *)p)[i] ^ key[i % 4];
	bool ok = cl_send_raw(c, fr, hl + 4 + n);
	free(fr);
	return ok;
}

static bool cl_send(struct cl *c, int op, const void *p, size_t n)
{
	return cl_send_frame(c, op, true, p, n);
}

static bool cl_text(struct cl *c, const char *s)
{
	return cl_send(c, WS_OP_TEXT, s, strlen(s));
}

/* The next frame is text (or binary) equal to want. */
static bool cl_expect(struct cl *c, int op, const char *want)
{
	if (!cl_frame(c) || c->op != op || strcmp((char *)c->msg, want) != 0) {
		fprintf(stderr, "got op %d \"%s\", want op %d \"%s\"\n", c->op,
			c->msg ? (char *)c->msg : "(none)", op, want);
		return false;
	}
	return true;
}

/*
 * The server closes: a close frame (whose code is returned; 0 without one)
 * answered by ours, then EOF.  -1 if data frames or nothing came instead.
 */
static int cl_expect_close(struct cl *c)
{
	int code = -1;
	if (!cl_frame(c))
		return 0; /* EOF without a close frame */
	if (c->op != WS_OP_CLOSE)
		return -1;
	code = c->msg_len >= 2 ? (c->msg[0] << 8 | c->msg[1]) : 1005;
	uint8_t back[2] = {(uint8_t)(code >> 8), (uint8_t)code};
	cl_send(c, WS_OP_CLOSE, back, 2);
	shutdown(c->fd, SHUT_WR); /* a server that stopped parsing frames still sees EOF */
	while (cl_fill(c))
		c->len = 0;
	return code;
}

/* A JSON request in a binary frame; data is raw bytes, base64-encoded here. */
static bool cl_req(struct cl *c, int req_id, const char *send_id, const char *incr,
		   const void *data, size_t n)
{
	struct im_buf b64 = {0};
	env_b64_encode(data, n, &b64);
	char js[8192];
	int k = snprintf(js, sizeof(js),
			 "{\"reqIdentifier\":%d,\"msgIncr\":\"%s\",\"sendID\":\"%s\","
			 "\"operationID\":\"op-%s\",\"data\":\"%s\"}",
			 req_id, incr, send_id, incr, b64.p ? b64.p : "");
	im_buf_free(&b64);
	return cl_send(c, WS_OP_BINARY, js, (size_t)k);
}

/* The JSON reply the gateway writes for (req_id, incr) with raw data. */
static void reply_json(char *out, size_t cap, int req_id, const char *incr, int code,
		       const char *msg, const void *data, size_t n, bool has_data)
{
	struct env_resp r = {.req_id = req_id,
			     .msg_incr = im_str_c(incr),
			     .err_code = code,
			     .err_msg = im_str_c(msg),
			     .data = data,
			     .len = n,
			     .has_data = has_data};
	char op[80];
	snprintf(op, sizeof(op), "op-%s", incr);
	r.op_id = im_str_c(op);
	if (incr[0] == '\0')
		r.op_id = im_str_c("");
	struct im_buf b = {0};
	env_json_encode(&r, &b);
	snprintf(out, cap, "%s", b.p);
	im_buf_free(&b);
}

static bool cl_expect_reply(struct cl *c, int req_id, const char *incr, const char *data)
{
	char want[4096];
	reply_json(want, sizeof(want), req_id, incr, 0, "", data, data ? strlen(data) : 0,
		   data != NULL);
	return cl_expect(c, WS_OP_BINARY, want);
}

static const char ok_frame[] = "{\"errCode\":0,\"errMsg\":\"\",\"errDlt\":\"\"}";

/* Opens a JS-style connection (JSON, isMsgResp) and reads the connect result. */
static bool cl_login(struct fx *f, struct cl *c, const char *user, int tk, int platform)
{
	char q[1024];
	snprintf(q, sizeof(q),
		 "sendID=%s&token=%s&platformID=%d&operationID=op&isBackground=false&"
		 "isMsgResp=true&sdkType=js",
		 user, f->tok[tk], platform);
	return cl_open(f, c, q) == 101 && cl_expect(c, WS_OP_TEXT, ok_frame);
}

/* ---- scripts and tests ---- */

static struct fx F; /* large; one test at a time */

static void c_handshake_ok(struct fx *f)
{
	struct cl c;
	CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
	CHECK(f, cl_req(&c, 1003, "u1", "a1", "\x0a\x01", 2));
	CHECK(f, cl_expect_reply(&c, 1003, "a1", "\x0a\x01"));
	cl_close(&c);
	/* The `v` form: base64url JSON, every other parameter ignored. */
	char js[1024], q[2048];
	snprintf(js, sizeof(js),
		 "{\"token\":\"%s\",\"userID\":\"u1\",\"platformID\":5,\"operationID\":\"o\","
		 "\"sdkType\":\"js\",\"sendResponse\":true}",
		 f->tok[TK_U1]);
	struct im_buf b64 = {0};
	env_b64_encode(js, strlen(js), &b64);
	for (size_t i = 0; i < b64.len; i++)
		b64.p[i] = b64.p[i] == '+' ? '-' : b64.p[i] == '/' ? '_' : b64.p[i];
	while (b64.len && b64.p[b64.len - 1] == '=')
		b64.p[--b64.len] = '\0';
	snprintf(q, sizeof(q), "sendID=nobody&v=%s", b64.p);
	im_buf_free(&b64);
	CHECK(f, cl_open(f, &c, q) == 101);
	CHECK(f, cl_expect(&c, WS_OP_TEXT, ok_frame));
	cl_close(&c);
	/* Frames sent right behind the request are read after the connect result. */
	static const uint8_t ping[] = {0x81, 0x8f, 0,	0,   0,	  0,   '{', '"', 't', 'y', 'p',
				       'e',  '"',  ':', '"', 'p', 'i', 'n', 'g', '"', '}'};
	snprintf(q, sizeof(q), "sendID=u1&token=%s&platformID=5&operationID=o&isMsgResp=true",
		 f->tok[TK_U1]);
	CHECK(f, cl_open_ex(f, &c, q, NULL, 0, ping, sizeof(ping)) == 101);
	CHECK(f, cl_expect(&c, WS_OP_TEXT, ok_frame));
	CHECK(f, cl_expect(&c, WS_OP_TEXT, "{\"type\":\"pong\",\"body\":null}"));
	cl_close(&c);
}

static void handshake_success_sends_the_text_frame_first(void **state)
{
	fx_setup(&F);
	fx_run(&F, c_handshake_ok);
	assert_int_equal(F.stats.conns_total, 3);
}

/* Each handshake error, with isMsgResp (text frame, close) and without (HTTP 200 JSON). */
static void c_handshake_errors(struct fx *f)
{
	char bad_sig[512];
	snprintf(bad_sig, sizeof(bad_sig), "%s", f->tok[TK_U1]);
	char *sig = &bad_sig[strlen(bad_sig) - 2];
	*sig = *sig == 'A' ? 'B' : 'A';
	/* tok: an index into f->tok, -1 for none, -2 for the token with a bad signature. */
	struct {
		const char *query;
		int tok;
		int code;
	} cases[] = {
	    {"sendID=u1&platformID=5&operationID=o", -1, 1602},		   /* no token */
	    {"sendID=u1&token=x&platformID=five&operationID=o", -1, 1602}, /* not int */
	    {"sendID=u1&token=x&platformID=12&operationID=o", -1, 1602},   /* no such platform */
	    {"sendID=u1&token=x&platformID=-99&operationID=o", -1, 1602},
	    {"sendID=u1&token=x&platformID=99999&operationID=o", -1, 1602},
	    {"sendID=u1&token=x&platformID=5&operationID=o&sdkType=py", -1, 1602},
	    {"sendID=u1&token=x&platformID=5", -1, 1602}, /* no operationID */
	    {"sendID=u1&token=abc&platformID=5&operationID=o", -1, 1503},
	    {"sendID=u1&token=%s&platformID=5&operationID=o", TK_EXPIRED, 1501},
	    {"sendID=u1&token=%s&platformID=5&operationID=o", -2, 1505},
	    {"sendID=u2&token=%s&platformID=3&operationID=o", TK_NOT_STORED, 1507},
	    {"sendID=u3&token=%s&platformID=5&operationID=o", TK_U3_KICKED, 1506},
	    {"sendID=u2&token=%s&platformID=5&operationID=o", TK_U1, 1502}, /* other user */
	    {"sendID=u1&token=%s&platformID=2&operationID=o", TK_U1, 1502}, /* other platform */
	};
	for (size_t i = 0; i < IM_ARRAY_LEN(cases); i++) {
		for (int resp = 0; resp < 2; resp++) {
			char q[1024], want[64];
			struct cl c;
			int tk = cases[i].tok;
			snprintf(q, sizeof(q), cases[i].query,
				 tk == -2  ? bad_sig
				 : tk >= 0 ? f->tok[tk]
					   : "");
			if (resp)
				strcat(q, "&isMsgResp=true");
			snprintf(want, sizeof(want), "{\"errCode\":%d,", cases[i].code);
			int st = cl_open(f, &c, q);
			if (resp) {
				CHECK(f, st == 101);
				CHECK(f, cl_frame(&c) && c.op == WS_OP_TEXT);
				CHECK(f, strncmp((char *)c.msg, want, strlen(want)) == 0);
				CHECK(f, strstr((char *)c.msg, "\"errDlt\":") != NULL);
				CHECK(f, cl_expect_close(&c) == 1000);
			} else {
				CHECK(f, st == 200);
				CHECK(f, strncmp(c.body, want, strlen(want)) == 0);
			}
			cl_close(&c);
		}
	}
	/* A valid request that is not a WebSocket upgrade: 400. */
	char q[1024];
	struct cl c;
	snprintf(q, sizeof(q), "sendID=u1&token=%s&platformID=5&operationID=o", f->tok[TK_U1]);
	CHECK(f, cl_open_ex(f, &c, q, "Connection: keep-alive\r\n", 0, NULL, 0) == 400);
	cl_close(&c);
}

static void handshake_errors_follow_is_msg_resp(void **state)
{
	fx_setup(&F);
	fx_run(&F, c_handshake_errors);
	assert_int_equal(F.stats.conns_total, 0);
	assert_int_equal(F.stats.conns_open, 0);
}

static void c_over_max(struct fx *f)
{
	struct cl a, b;
	CHECK(f, cl_login(f, &a, "u1", TK_U1, 5));
	char q[1024];
	snprintf(q, sizeof(q), "sendID=u2&token=%s&platformID=5&operationID=o&isMsgResp=true",
		 f->tok[TK_U2]);
	CHECK(f, cl_open(f, &b, q) == 101);
	CHECK(f, cl_frame(&b) && strncmp((char *)b.msg, "{\"errCode\":1601,", 16) == 0);
	cl_close(&b);
	cl_close(&a);
}

static void connections_beyond_the_maximum_get_1601(void **state)
{
	fx_setup(&F);
	F.opts.max_conns = 1;
	fx_run(&F, c_over_max);
}

static void c_ping_pong(struct fx *f)
{
	struct cl c;
	CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
	CHECK(f, cl_text(&c, "{\"type\":\"ping\"}"));
	CHECK(f, cl_expect(&c, WS_OP_TEXT, "{\"type\":\"pong\",\"body\":null}"));
	CHECK(f, cl_text(&c, "{\"type\":\"ping\",\"body\":\"op1\"}"));
	CHECK(f, cl_expect(&c, WS_OP_TEXT, "{\"type\":\"pong\",\"body\":\"op1\"}"));
	CHECK(f, cl_text(&c, "{\"Type\":\"ping\",\"body\": { \"a\" : [1, 2] }}"));
	CHECK(f, cl_expect(&c, WS_OP_TEXT, "{\"type\":\"pong\",\"body\":{\"a\":[1,2]}}"));
	/* A pong is accepted silently: the next answer is to the next ping. */
	CHECK(f, cl_text(&c, "{\"type\":\"pong\"}"));
	CHECK(f, cl_send(&c, WS_OP_PING, "x", 1));
	CHECK(f, cl_expect(&c, WS_OP_PONG, "x"));
	/* A fragmented text ping is one message. */
	CHECK(f, cl_send_frame(&c, WS_OP_TEXT, false, "{\"type\":", 8));
	CHECK(f, cl_send_frame(&c, 0, true, "\"ping\"}", 7));
	CHECK(f, cl_expect(&c, WS_OP_TEXT, "{\"type\":\"pong\",\"body\":null}"));
	/* Any other text frame closes. */
	CHECK(f, cl_text(&c, "{\"type\":\"hello\"}"));
	CHECK(f, cl_expect_close(&c) > 0);
	cl_close(&c);
}

static void text_heartbeat_and_control_pings(void **state)
{
	fx_setup(&F);
	fx_run(&F, c_ping_pong);
	assert_int_equal(F.stats.closed_bad, 1);
}

static void c_reply_order(struct fx *f)
{
	struct cl c;
	CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
	CHECK(f, cl_req(&c, 1001, "u1", "a", "", 0)); /* held */
	CHECK(f, cl_req(&c, 1001, "u1", "b", "", 0)); /* held */
	CHECK(f, cl_req(&c, 1002, "u1", "c", "", 0)); /* answers c, then a and b */
	CHECK(f, cl_expect_reply(&c, 1002, "c", "second"));
	CHECK(f, cl_expect_reply(&c, 1001, "a", "first"));
	CHECK(f, cl_expect_reply(&c, 1001, "b", "first"));
	CHECK(f, cl_req(&c, 1004, "u1", "d", "x", 1));
	char want[512];
	reply_json(want, sizeof(want), 1004, "d", 1302, "BlockedByPeer", NULL, 0, false);
	CHECK(f, cl_expect(&c, WS_OP_BINARY, want));
	/* 2004 flags the connection; 1007 reports it. */
	CHECK(f, cl_req(&c, 2004, "u1", "e", "\x0a\x02u1\x10\x01", 6));
	CHECK(f, cl_expect_reply(&c, 2004, "e", NULL));
	CHECK(f, cl_req(&c, 1007, "u1", "f", "u1", 2));
	CHECK(f, cl_expect_reply(&c, 1007, "f", "n=1/1 bg=1"));
	/* A request still held when the connection goes is dropped (on_done answers it). */
	CHECK(f, cl_req(&c, 1001, "u1", "g", "", 0));
	/* 2003: answered with empty data, then closed. */
	CHECK(f, cl_req(&c, 2003, "u1", "h", "", 0));
	CHECK(f, cl_expect_reply(&c, 2003, "h", ""));
	CHECK(f, cl_expect_close(&c) == 1000);
	cl_close(&c);
}

static void json_requests_reach_the_handler_and_replies_keep_their_order(void **state)
{
	fx_setup(&F);
	fx_run(&F, c_reply_order);
	assert_int_equal(F.stats.closed_bad, 0);
}

/* Each kind of bad input closes the connection. */
static void c_bad_input(struct fx *f)
{
	struct cl c;
	/* An unknown reqIdentifier. */
	CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
	CHECK(f, cl_req(&c, 3001, "u1", "a", "", 0));
	CHECK(f, cl_expect_close(&c) == 1008);
	cl_close(&c);
	/* Another user's sendID. */
	CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
	CHECK(f, cl_req(&c, 1003, "u2", "a", "", 0));
	CHECK(f, cl_expect_close(&c) == 1008);
	cl_close(&c);
	/* A frame over 51,200 bytes. */
	CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
	char *big = calloc(1, 51201);
	CHECK(f, cl_send(&c, WS_OP_BINARY, big, 51201));
	free(big);
	CHECK(f, cl_expect_close(&c) == 1009);
	cl_close(&c);
	/* Not JSON, bad base64, an unmasked frame, a reserved opcode, a bare continuation. */
	static const char *const bodies[] = {
	    "{\"reqIdentifier\":", "garbage",
	    "{\"reqIdentifier\":1003,\"sendID\":\"u1\",\"data\":\"@\"}"};
	for (size_t i = 0; i < IM_ARRAY_LEN(bodies); i++) {
		CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
		CHECK(f, cl_send(&c, WS_OP_BINARY, bodies[i], strlen(bodies[i])));
		CHECK(f, cl_expect_close(&c) == 1008);
		cl_close(&c);
	}
	static const uint8_t raw[][6] = {
	    {0x82, 0x01, 'x'}, {0x83, 0x80, 1, 2, 3, 4}, {0x80, 0x80, 1, 2, 3, 4}};
	static const size_t raw_len[] = {3, 6, 6};
	for (size_t i = 0; i < IM_ARRAY_LEN(raw); i++) {
		CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
		CHECK(f, cl_send_raw(&c, raw[i], raw_len[i]));
		CHECK(f, cl_expect_close(&c) == 1002);
		cl_close(&c);
	}
}

static void bad_input_closes_the_connection(void **state)
{
	fx_setup(&F);
	fx_run(&F, c_bad_input);
	assert_int_equal(F.stats.closed_bad, 9);
	assert_int_equal(F.stats.conns_open, 0);
}

static void c_gob_and_gzip(struct fx *f)
{
	/* Gob, no isMsgResp: no text frame; the §4.9 request; an exact reply. */
	static const uint8_t req[] = {
	    0x66, 0xff, 0x83, 0x03, 0x01, 0x01, 0x0c, 0x47, 0x65, 0x6e, 0x65, 0x72, 0x61,
	    0x6c, 0x57, 0x73, 0x52, 0x65, 0x71, 0x01, 0xff, 0x84, 0x00, 0x01, 0x06, 0x01,
	    0x0d, 0x52, 0x65, 0x71, 0x49, 0x64, 0x65, 0x6e, 0x74, 0x69, 0x66, 0x69, 0x65,
	    0x72, 0x01, 0x04, 0x00, 0x01, 0x05, 0x54, 0x6f, 0x6b, 0x65, 0x6e, 0x01, 0x0c,
	    0x00, 0x01, 0x06, 0x53, 0x65, 0x6e, 0x64, 0x49, 0x44, 0x01, 0x0c, 0x00, 0x01,
	    0x0b, 0x4f, 0x70, 0x65, 0x72, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x49, 0x44, 0x01,
	    0x0c, 0x00, 0x01, 0x07, 0x4d, 0x73, 0x67, 0x49, 0x6e, 0x63, 0x72, 0x01, 0x0c,
	    0x00, 0x01, 0x04, 0x44, 0x61, 0x74, 0x61, 0x01, 0x0a, 0x00, 0x00, 0x00, 0x18,
	    0xff, 0x84, 0x01, 0xfe, 0x07, 0xd6, 0x02, 0x02, 0x75, 0x31, 0x01, 0x02, 0x6f,
	    0x70, 0x01, 0x02, 0x6d, 0x31, 0x01, 0x03, 0x01, 0x02, 0x03, 0x00};
	struct env_resp want = {.req_id = 1003,
				.msg_incr = IM_STR_LIT("m1"),
				.op_id = IM_STR_LIT("op"),
				.data = "\x01\x02\x03",
				.len = 3,
				.has_data = true};
	struct im_buf w = {0}, z = {0}, plain = {0};
	gob_encode_resp(&want, &w);
	struct cl c;
	char q[1024];
	for (int gz = 0; gz < 2; gz++) {
		snprintf(q, sizeof(q), "sendID=u1&token=%s&platformID=2&operationID=o%s",
			 f->tok[TK_U1_GOB], gz ? "&compression=gzip" : "");
		CHECK(f, cl_open(f, &c, q) == 101);
		z.len = 0;
		if (gz)
			env_gzip(req, sizeof(req), &z);
		CHECK(f, gz ? cl_send(&c, WS_OP_BINARY, z.p, z.len)
			    : cl_send(&c, WS_OP_BINARY, req, sizeof(req)));
		CHECK(f, cl_frame(&c) && c.op == WS_OP_BINARY); /* the first frame is the reply */
		plain.len = 0;
		if (gz)
			CHECK(f, env_gunzip(c.msg, c.msg_len, 1u << 20, &plain) == 0);
		else
			im_buf_add(&plain, c.msg, c.msg_len);
		CHECK(f, plain.len == w.len && memcmp(plain.p, w.p, w.len) == 0);
		cl_close(&c);
	}
	/* JSON with gzip both ways, compression from the header. */
	CHECK(f, cl_open(f, &c, "sendID=u1&token=TOKEN&platformID=5&operationID=o&sdkType=js") ==
		     200); /* a malformed token, no isMsgResp: an HTTP answer */
	cl_close(&c);
	snprintf(q, sizeof(q), "sendID=u1&token=%s&platformID=5&operationID=o&sdkType=js",
		 f->tok[TK_U1]);
	CHECK(f, cl_open_ex(f, &c, q,
			    "Upgrade: websocket\r\nConnection: Upgrade\r\ncompression: gzip\r\n"
			    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			    "Sec-WebSocket-Version: 13\r\n",
			    0, NULL, 0) == 101);
	const char *js = "{\"reqIdentifier\":1003,\"msgIncr\":\"z\",\"sendID\":\"u1\","
			 "\"operationID\":\"op-z\",\"data\":\"aGk=\"}";
	z.len = 0;
	env_gzip(js, strlen(js), &z);
	CHECK(f, cl_send(&c, WS_OP_BINARY, z.p, z.len));
	CHECK(f, cl_frame(&c) && c.op == WS_OP_BINARY);
	plain.len = 0;
	CHECK(f, env_gunzip(c.msg, c.msg_len, 1u << 20, &plain) == 0);
	char wj[512];
	reply_json(wj, sizeof(wj), 1003, "z", 0, "", "hi", 2, true);
	CHECK(f, plain.len == strlen(wj) && memcmp(plain.p, wj, plain.len) == 0);
	/* A frame that is not gzip closes. */
	CHECK(f, cl_send(&c, WS_OP_BINARY, js, strlen(js)));
	CHECK(f, cl_expect_close(&c) == 1008);
	cl_close(&c);
	im_buf_free(&w);
	im_buf_free(&z);
	im_buf_free(&plain);
}

static void gob_and_gzip_requests_get_exact_replies(void **state)
{
	fx_setup(&F);
	fx_run(&F, c_gob_and_gzip);
}

static void c_slow_client(struct fx *f)
{
	struct cl slow, c;
	char q[1024];
	snprintf(q, sizeof(q),
		 "sendID=u2&token=%s&platformID=5&operationID=o&isMsgResp=true&sdkType=js",
		 f->tok[TK_U2]);
	CHECK(f, cl_open_ex(f, &slow, q, NULL, 4096, NULL, 0) == 101);
	CHECK(f, cl_expect(&slow, WS_OP_TEXT, ok_frame));
	CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
	/* u2 never reads: pushes of 64 KiB until the gateway refuses (it closed u2). */
	const char *cmd = "100000 65536 u2";
	CHECK(f, cl_req(&c, 1005, "u1", "p", cmd, strlen(cmd)));
	CHECK(f, cl_frame(&c) && c.op == WS_OP_BINARY);
	CHECK(f, strstr((char *)c.msg, "\"reqIdentifier\":1005") != NULL);
	/* The slow side: whatever was buffered, then the end of the stream. */
	while (cl_frame(&slow))
		CHECK(f, slow.op == WS_OP_BINARY);
	cl_close(&slow);
	/* The fast side is unaffected. */
	CHECK(f, cl_text(&c, "{\"type\":\"ping\"}"));
	CHECK(f, cl_expect(&c, WS_OP_TEXT, "{\"type\":\"pong\",\"body\":null}"));
	cl_close(&c);
}

static void send_queue_overflow_closes_a_client_that_does_not_read(void **state)
{
	fx_setup(&F);
	F.opts.send_queue = 4;
	fx_run(&F, c_slow_client);
	assert_int_equal(F.stats.closed_slow, 1);
}

static void c_kick(struct fx *f)
{
	struct cl a, b, c, d;
	CHECK(f, cl_login(f, &a, "u1", TK_U1, 5));
	CHECK(f, cl_login(f, &d, "u1", TK_U1_GOB, 2)); /* another platform stays */
	CHECK(f, cl_login(f, &b, "u1", TK_U1B, 5));    /* same platform, other token */
	CHECK(f, cl_expect(&a, WS_OP_BINARY,
			   "{\"reqIdentifier\":2002,\"msgIncr\":\"\",\"operationID\":\"\","
			   "\"errCode\":0,\"errMsg\":\"\",\"data\":null}"));
	CHECK(f, cl_expect_close(&a) == 1000);
	cl_close(&a);
	/* The same token again is not kicked. */
	CHECK(f, cl_login(f, &c, "u1", TK_U1B, 5));
	CHECK(f, cl_req(&b, 1007, "u1", "n", "u1", 2));
	CHECK(f, cl_expect_reply(&b, 1007, "n", "n=3/3 bg=0"));
	/* gw_kick (force_logout) of platform 5: both get 2002; platform 2 stays. */
	CHECK(f, cl_req(&d, 1006, "u1", "k", "u1 5", 4));
	CHECK(f, cl_expect_reply(&d, 1006, "k", ""));
	CHECK(f, cl_frame(&b) && strstr((char *)b.msg, "\"reqIdentifier\":2002") != NULL);
	CHECK(f, cl_frame(&c) && strstr((char *)c.msg, "\"reqIdentifier\":2002") != NULL);
	CHECK(f, cl_expect_close(&b) == 1000);
	CHECK(f, cl_expect_close(&c) == 1000);
	CHECK(f, cl_req(&d, 1007, "u1", "m", "u1", 2));
	CHECK(f, cl_expect_reply(&d, 1007, "m", "n=1/1 bg=0"));
	cl_close(&b);
	cl_close(&c);
	cl_close(&d);
}

static void multi_login_kicks_older_connections_of_the_platform(void **state)
{
	fx_setup(&F);
	fx_run(&F, c_kick);
	assert_int_equal(F.kicks, 1);
	assert_string_equal(F.kick_user, "u1");
	assert_int_equal(F.kick_platform, 5);
	assert_string_equal(F.kick_keep, F.tok[TK_U1B]);
}

static void c_subscribe(struct fx *f)
{
	struct cl a, b, b2;
	CHECK(f, cl_login(f, &a, "u1", TK_U1, 5));
	/* SubUserOnlineStatus{subscribeUserID: ["u2"]}: u2 is offline. */
	CHECK(f, cl_req(&a, 2005, "u1", "s", "\x0a\x02u2", 4));
	CHECK(f, cl_expect_reply(&a, 2005, "s", "\x0a\x04\x0a\x02u2"));
	/* u2 comes online on platform 5: a push with msgIncr "". */
	CHECK(f, cl_login(f, &b, "u2", TK_U2, 5));
	CHECK(f, cl_expect_reply(&a, 2005, "", "\x0a\x07\x0a\x02u2\x12\x01\x05"));
	/* A second connection on the same platform changes nothing; a reply follows directly. */
	CHECK(f, cl_login(f, &b2, "u2", TK_U2, 5));
	CHECK(f, cl_req(&a, 2005, "u1", "t", "\x0a\x02u2\x0a\x02u3", 8));
	CHECK(f,
	      cl_expect_reply(&a, 2005, "t", "\x0a\x07\x0a\x02u2\x12\x01\x05\x0a\x04\x0a\x02u3"));
	cl_close(&b2);
	cl_close(&b);
	/* Both gone: offline. */
	CHECK(f, cl_expect_reply(&a, 2005, "", "\x0a\x04\x0a\x02u2"));
	/* Unsubscribed: no more pushes (the next frame is the pong). */
	CHECK(f, cl_req(&a, 2005, "u1", "u", "\x12\x02u2\x12\x02u3", 8));
	CHECK(f, cl_expect_reply(&a, 2005, "u", ""));
	CHECK(f, cl_login(f, &b, "u2", TK_U2, 5));
	CHECK(f, cl_text(&a, "{\"type\":\"ping\"}"));
	CHECK(f, cl_expect(&a, WS_OP_TEXT, "{\"type\":\"pong\",\"body\":null}"));
	cl_close(&b);
	cl_close(&a);
}

static void subscriptions_push_online_changes(void **state)
{
	fx_setup(&F);
	fx_run(&F, c_subscribe);
}

static void c_deadline(struct fx *f)
{
	struct cl c;
	CHECK(f, cl_login(f, &c, "u1", TK_U1, 5));
	/* Platform 5 gets server pings; nothing we send re-arms the deadline: closed. */
	CHECK(f, cl_frame(&c) && c.op == WS_OP_PING);
	while (cl_frame(&c))
		CHECK(f, c.op == WS_OP_PING);
	cl_close(&c);
}

static void read_deadline_closes_and_web_clients_get_pings(void **state)
{
	fx_setup(&F);
	F.opts.read_timeout_ms = 300;
	F.opts.ping_interval_ms = 50;
	fx_run(&F, c_deadline);
	assert_int_equal(F.stats.conns_open, 0);
}

/* ---- without sockets ---- */

static void expect_params(const char *query, const char *hdr, int want_rc, const char *want_dlt)
{
	struct gw_params p;
	char dlt[160];
	int rc = gw__parse_params(im_str_c(query), im_str_c(hdr), &p, dlt, sizeof(dlt));
	if (rc != want_rc || (want_dlt && strcmp(dlt, want_dlt) != 0))
		fail_msg("%s: rc %d \"%s\", want %d \"%s\"", query, rc, dlt, want_rc,
			 want_dlt ? want_dlt : "");
	gw__params_free(&p);
}

static void parses_parameters_like_go(void **state)
{
	struct gw_params p;
	char dlt[160];
	const char *q = "sendID=a%2Bb+c&token=t%3d&platformID=%2B5&operationID=o&sendID=x&"
			"bad;pair=1&isBackground=T&isMsgResp=1&sdkType=go&compression=gzip&x=%zz";
	assert_int_equal(gw__parse_params(im_str_c(q), IM_STR_LIT(""), &p, dlt, sizeof(dlt)), 0);
	assert_int_equal(p.user_id.n, 5);
	assert_memory_equal(p.user_id.p, "a+b c", 5);
	assert_memory_equal(p.token.p, "t=", 2);
	assert_int_equal(p.platform_id, 5);
	assert_true(p.background && p.msg_resp && p.gob && p.gzip);
	gw__params_free(&p);
	/* The header gives compression only when the query has none. */
	assert_int_equal(gw__parse_params(IM_STR_LIT("sendID=u&token=t&platformID=1&operationID=o"),
					  IM_STR_LIT("gzip"), &p, dlt, sizeof(dlt)),
			 0);
	assert_true(p.gzip && p.gob && !p.msg_resp && !p.background);
	gw__params_free(&p);
	expect_params("token=t&platformID=1&operationID=o", "", GW_CONN_ARGS, "sendID is empty");
	expect_params("sendID=u&platformID=1&operationID=o", "", GW_CONN_ARGS, "token is empty");
	expect_params("sendID=u&token=t&platformID=1", "", GW_CONN_ARGS, "operationID is empty");
	expect_params("sendID=u&token=t&operationID=o", "", GW_CONN_ARGS, "platformID is not int");
	expect_params("sendID=u&token=t&platformID=0&operationID=o", "", GW_CONN_ARGS,
		      "platformID is invalid");
	expect_params("sendID=u&token=t&platformID=99999999999999999999&operationID=o", "",
		      GW_CONN_ARGS, "platformID is not int");
	expect_params("sendID=u&token=t&platformID=1&operationID=o&isMsgResp=yes", "", GW_CONN_ARGS,
		      "isMsgResp is not bool");
	expect_params("sendID=u&token=t&platformID=1&operationID=o&isBackground=no", "",
		      GW_CONN_ARGS, "isBackground is not bool");
	expect_params("sendID=u&token=t&platformID=1&operationID=o&sdkType=JS", "", GW_CONN_ARGS,
		      "sdkType is invalid");
	expect_params("v=%%%", "", GW_CONN_ARGS, "platformID is not int"); /* bad escape: no v */
	expect_params("v=e30", "", GW_CONN_ARGS, "operationID is empty");  /* {} */
	expect_params("v=e30=", "", GW_CONN_ARGS, "data is not base64");
	expect_params("v=W10", "", GW_CONN_ARGS, "data is not json"); /* [] */
	/* isMsgResp is known even when another parameter fails. */
	assert_int_equal(
	    gw__parse_params(IM_STR_LIT("isMsgResp=true"), IM_STR_LIT(""), &p, dlt, sizeof(dlt)),
	    GW_CONN_ARGS);
	assert_true(p.msg_resp);
	gw__params_free(&p);
}

static void collect(void *arg, const uint8_t *d, size_t n)
{
	im_buf_add(arg, d, n);
}

static struct gw_req *seam_held;

static int seam_handler(struct srv *s, struct gw_req *req)
{
	IM_UNUSED(s);
	seam_held = req;
	return 0;
}

/* The socket-free seam: a reply after the connection went away is dropped and freed. */
static void late_replies_are_dropped_and_freed(void **state)
{
	struct srv s = {0};
	struct gw_opts o = {.handler = seam_handler};
	struct gw *g = gw_test_new(&s, &o);
	assert_non_null(g);
	struct gw_params p = {.token = IM_STR_LIT("t"),
			      .user_id = IM_STR_LIT("u1"),
			      .platform_id = 5,
			      .msg_resp = true};
	struct im_buf out = {0};
	struct gw_conn *c = gw_test_conn(g, &p, collect, &out);
	assert_non_null(c);
	assert_int_equal(out.len, 2 + 37);
	assert_memory_equal(out.p, "\x81\x25{\"errCode\":0,\"errMsg\":\"\",\"errDlt\":\"\"}", 39);
	static const char js[] = "{\"reqIdentifier\":1001,\"sendID\":\"u1\",\"msgIncr\":\"1\"}";
	uint8_t fr[128] = {0x82, 0x80 | (sizeof(js) - 1), 0, 0, 0, 0};
	memcpy(fr + 6, js, sizeof(js) - 1);
	assert_int_equal(gw_test_feed(c, fr, 6 + sizeof(js) - 1), 0);
	assert_non_null(seam_held);
	assert_int_equal(gw_user_conns(g, IM_STR_LIT("u1"), NULL, NULL), 1);
	gw_test_conn_free(c);
	assert_int_equal(gw_user_conns(g, IM_STR_LIT("u1"), NULL, NULL), 0);
	size_t before = out.len;
	gw_reply(seam_held, 0, NULL, "x", 1);
	assert_int_equal(out.len, before);
	gw_test_free(g);
	im_buf_free(&out);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_parameters_like_go),
	    cmocka_unit_test(late_replies_are_dropped_and_freed),
	    cmocka_unit_test(handshake_success_sends_the_text_frame_first),
	    cmocka_unit_test(handshake_errors_follow_is_msg_resp),
	    cmocka_unit_test(connections_beyond_the_maximum_get_1601),
	    cmocka_unit_test(text_heartbeat_and_control_pings),
	    cmocka_unit_test(json_requests_reach_the_handler_and_replies_keep_their_order),
	    cmocka_unit_test(bad_input_closes_the_connection),
	    cmocka_unit_test(gob_and_gzip_requests_get_exact_replies),
	    cmocka_unit_test(send_queue_overflow_closes_a_client_that_does_not_read),
	    cmocka_unit_test(multi_login_kicks_older_connections_of_the_platform),
	    cmocka_unit_test(subscriptions_push_online_changes),
	    cmocka_unit_test(read_deadline_closes_and_web_clients_get_pings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
