/* echo.c - the transport ceiling: a bare libuv + wslay WebSocket server that accepts the
 * generator's JS-SDK-style connections and answers every 1003 with a canned reply. */

/*
 * Nothing here is imlog: no REST, no JWT check, no storage, no JSON parser.  It does what any
 * OpenIM-compatible gateway must at least do per message on this machine: the upgrade
 * (RFC 6455 §4.2.2), the connect result text frame (openim-protocol.md §4.2), then for each
 * binary frame a scan for "msgIncr" and one binary reply carrying it with a fixed SendMsgResp
 * (serverMsgID "echo"), and text ping -> pong.  bench/loadgen --no-setup drives it with the
 * same send-ack scenario as the real server, so the ratio of the two is what imlog costs above
 * the transport.
 * Usage: echo HOST:PORT
 * One connection's life: HTTP (reading the upgrade) -> OPEN (wslay server) -> freed on close.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <uv.h>
#include <wslay/wslay.h>

#define HEAD_MAX 8192

struct econn {
	uv_tcp_t tcp;
	wslay_event_context_ptr ws;
	char head[HEAD_MAX];
	size_t head_n;
	bool open, closing;
	const uint8_t *rp;
	size_t rn;
	char *out; /* bytes gathered for the next write */
	size_t out_n, out_cap;
};

struct ewrite {
	uv_write_t req;
	char *p;
};

static uv_loop_t *loop;
/* SendMsgResp{serverMsgID: "echo"} (0a 04 'e' 'c' 'h' 'o'), base64. */
static const char canned[] = "CgRlY2hv";

static void add_out(struct econn *c, const void *p, size_t n)
{
	if (c->out_n + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_n + n)
			cap *= 2;
		if ((c->out = realloc(c->out, cap)) == NULL)
			abort();
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_n, p, n);
	c->out_n += n;
}

static void on_written(uv_write_t *req, int status)
{
	struct ewrite *w = (struct ewrite *)req;
	(void)status;
	free(w->p);
	free(w);
}

/* Writes what was gathered in one uv_write (the buffer moves to the request). */
static void flush(struct econn *c)
{
	if (c->out_n == 0 || c->closing)
		return;
	struct ewrite *w = malloc(sizeof(*w));
	if (w == NULL)
		abort();
	w->p = c->out;
	uv_buf_t b = uv_buf_init(c->out, (unsigned)c->out_n);
	c->out = NULL;
	c->out_n = c->out_cap = 0;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
		free(w->p);
		free(w);
	}
}

static void on_closed(uv_handle_t *h)
{
	struct econn *c = h->data;
	if (c->ws)
		wslay_event_context_free(c->ws);
	free(c->out);
	free(c);
}

static void close_conn(struct econn *c)
{
	if (!c->closing) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	}
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	(void)ctx, (void)flags;
	add_out(user, data, len);
	return (ssize_t)len;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct econn *c = user;
	(void)flags;
	if (c->rn == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	size_t n = len < c->rn ? len : c->rn;
	memcpy(buf, c->rp, n);
	c->rp += n;
	c->rn -= n;
	return (ssize_t)n;
}

/* The value of "msgIncr" in a JSON envelope, found by a scan (no escapes in the generator's). */
static bool find_incr(const uint8_t *p, size_t n, const char **v, size_t *vn)
{
	static const char key[] = "\"msgIncr\":\"";
	const char *s = memmem(p, n, key, sizeof(key) - 1);
	if (s == NULL)
		return false;
	s += sizeof(key) - 1;
	const char *e = memchr(s, '"', (size_t)((const char *)p + n - s));
	if (e == NULL)
		return false;
	*v = s;
	*vn = (size_t)(e - s);
	return true;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		   void *user)
{
	char reply[512];
	const char *incr;
	size_t incr_n;
	(void)user;
	if (arg->opcode == WSLAY_TEXT_FRAME) {
		static const char pong[] = "{\"type\":\"pong\",\"body\":null}";
		struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)pong,
					    sizeof(pong) - 1};
		wslay_event_queue_msg(ctx, &m);
		return;
	}
	if (arg->opcode != WSLAY_BINARY_FRAME ||
	    !find_incr(arg->msg, arg->msg_length, &incr, &incr_n) || incr_n > 200)
		return;
	int n = snprintf(reply, sizeof(reply),
			 "{\"reqIdentifier\":1003,\"msgIncr\":\"%.*s\",\"operationID\":\"op%.*s\","
			 "\"errCode\":0,\"errMsg\":\"\",\"data\":\"%s\"}",
			 (int)incr_n, incr, (int)incr_n, incr, canned);
	struct wslay_event_msg m = {WSLAY_BINARY_FRAME, (const uint8_t *)reply, (size_t)n};
	wslay_event_queue_msg(ctx, &m);
}

/* The upgrade (RFC 6455 §4.2.2): 101 with the accept key, then the connect result frame. */
static bool upgrade(struct econn *c)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	static const char result[] = "{\"errCode\":0,\"errMsg\":\"\",\"errDlt\":\"\"}";
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = recv_cb, .send_callback = send_cb, .on_msg_recv_callback = on_msg};
	char *k = strcasestr(c->head, "\r\nSec-WebSocket-Key:");
	if (k == NULL)
		return false;
	k += 20;
	while (*k == ' ')
		k++;
	char *e = strstr(k, "\r\n"), cat[128], accept[64], ans[256];
	unsigned char sha[20];
	size_t an;
	if (e == NULL || (size_t)(e - k) + sizeof(guid) > sizeof(cat))
		return false;
	int cn = snprintf(cat, sizeof(cat), "%.*s%s", (int)(e - k), k, guid);
	if (mbedtls_sha1_ret((const unsigned char *)cat, (size_t)cn, sha) != 0 ||
	    mbedtls_base64_encode((unsigned char *)accept, sizeof(accept), &an, sha, 20) != 0)
		return false;
	int n = snprintf(ans, sizeof(ans),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Accept: %.*s\r\n\r\n",
			 (int)an, accept);
	add_out(c, ans, (size_t)n);
	if (wslay_event_context_server_init(&c->ws, &cbs, c) != 0)
		return false;
	wslay_event_config_set_max_recv_msg_length(c->ws, 51200);
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)result, sizeof(result) - 1};
	wslay_event_queue_msg(c->ws, &m);
	c->open = true;
	return true;
}

static void feed(struct econn *c, const char *p, size_t n)
{
	c->rp = (const uint8_t *)p;
	c->rn = n;
	if (wslay_event_recv(c->ws) != 0 || wslay_event_send(c->ws) != 0) {
		close_conn(c);
		return;
	}
	flush(c);
	if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws))
		close_conn(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char rbuf[1 << 16];
	(void)h, (void)hint;
	*b = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct econn *c = s->data;
	if (nread < 0) {
		close_conn(c);
		return;
	}
	if (nread == 0 || c->closing)
		return;
	if (c->open) {
		feed(c, b->base, (size_t)nread);
		return;
	}
	if (c->head_n + (size_t)nread >= HEAD_MAX) {
		close_conn(c);
		return;
	}
	memcpy(c->head + c->head_n, b->base, (size_t)nread);
	c->head_n += (size_t)nread;
	c->head[c->head_n] = '\0';
	char *end = strstr(c->head, "\r\n\r\n");
	if (end == NULL)
		return;
	if (!upgrade(c)) {
		close_conn(c);
		return;
	}
	size_t used = (size_t)(end - c->head) + 4;
	feed(c, c->head + used, c->head_n - used);
}

static void on_conn(uv_stream_t *srv, int status)
{
	if (status != 0)
		return;
	struct econn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		abort();
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
		close_conn(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
	char host[256];
	struct sockaddr_in a;
	const char *colon = argc == 2 ? strrchr(argv[1], ':') : NULL;
	if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof(host)) {
		fputs("usage: echo HOST:PORT\n", stderr);
		return 2;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - argv[1]), argv[1]);
	signal(SIGPIPE, SIG_IGN);
	loop = uv_default_loop();
	uv_tcp_t srv;
	uv_tcp_init(loop, &srv);
	int rc = uv_ip4_addr(host, atoi(colon + 1), &a);
	if (rc == 0)
		rc = uv_tcp_bind(&srv, (struct sockaddr *)&a, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv, 4096, on_conn);
	if (rc != 0) {
		fprintf(stderr, "echo: %s: %s\n", argv[1], uv_strerror(rc));
		return 1;
	}
	printf("echo: ready on %s\n", argv[1]);
	fflush(stdout);
	return uv_run(loop, UV_RUN_DEFAULT);
}
