/* test_http.c - the HTTP server over real loopback sockets, and its socket-free test seam. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#include "http_int.h"

/* ---- the fixture: a server in this thread's loop, a blocking client thread ---- */

#define MAX_RECS 32

/* What the handler saw, copied out of the request. */
struct rec {
	int error;
	char method[16];
	char path[128];
	char query[128];
	char body[256];
	size_t body_len;
	char host[64];
	bool keep_alive;
	bool upgrade;
};

struct fx {
	uv_loop_t loop;
	struct http_server *srv;
	struct http_opts opts;
	int port;
	uv_async_t done;
	uv_timer_t defer_timer;
	pthread_t thr;
	void (*client)(struct fx *f);
	sem_t seen; /* posted by the handler for /never */
	struct rec recs[MAX_RECS];
	int n_recs;
	struct http_req *deferred[MAX_RECS];
	int n_deferred;
	char answered[256]; /* paths in the order the handler answered them */
	int aborts;
	int aborts_before_close;
	bool wait_abort;
	bool close_pending;
	bool closing;
	bool closed;
	struct http_stats stats;     /* when the client finished */
	struct http_stats end_stats; /* in the close callback */
	char det_rest[64];
	size_t det_rest_len;
	bool det_closed;
	bool signalled; /* the client script sent `done` itself */
	char client_err[512];
};

static void fail_client(struct fx *f, int line, const char *what)
{
	if (f->client_err[0] == '\0')
		snprintf(f->client_err, sizeof(f->client_err), "client line %d: %s (errno %d)",
			 line, what, errno);
}

#define CHECK(f, cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fail_client((f), __LINE__, #cond);                                         \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static void copy_str(char *dst, size_t cap, struct im_str s)
{
	snprintf(dst, cap, "%.*s", (int)s.n, s.p ? s.p : "");
}

/* Copies what the handler saw, for assertions after the loop has ended. */
static void record(struct fx *f, const struct http_req *req)
{
	if (f->n_recs == MAX_RECS)
		return;
	struct rec *r = &f->recs[f->n_recs++];
	r->error = req->error;
	copy_str(r->method, sizeof(r->method), req->method);
	copy_str(r->path, sizeof(r->path), req->path);
	copy_str(r->query, sizeof(r->query), req->query);
	snprintf(r->body, sizeof(r->body), "%.*s", (int)IM_MIN(req->body_len, 255u), req->body);
	r->body_len = req->body_len;
	copy_str(r->host, sizeof(r->host), http_req_header(req, "HOST"));
	r->keep_alive = req->keep_alive;
	r->upgrade = req->upgrade;
}

/* The answer every test expects: what the server understood. */
static void answer(struct fx *f, struct http_req *req)
{
	char body[512];
	int n;
	if (req->error) {
		static const int status[] = {200, 400, 431, 413};
		n = snprintf(body, sizeof(body), "error %d", req->error);
		http_respond(req, status[req->error], "text/plain", NULL, body, (size_t)n);
		return;
	}
	if (f) {
		size_t al = strlen(f->answered);
		snprintf(f->answered + al, sizeof(f->answered) - al, "%.*s ", (int)req->path.n,
			 req->path.p);
	}
	n = snprintf(body, sizeof(body), "%.*s %.*s q=%.*s b=%.*s", (int)req->method.n,
		     req->method.p, (int)req->path.n, req->path.p, (int)req->query.n, req->query.p,
		     (int)IM_MIN(req->body_len, 200u), req->body);
	http_respond(req, 200, "text/plain", "X-Test: 1\r\n", body, (size_t)n);
}

static void on_defer_timer(uv_timer_t *t)
{
	struct fx *f = t->data;
	/* Newest first: the server must put them back in request order. */
	while (f->n_deferred > 0)
		answer(f, f->deferred[--f->n_deferred]);
}

static void start_close(struct fx *f);

/* Counts aborts, and whether they came before the server started closing. */
static void on_abort(struct http_req *req)
{
	struct fx *f = req->data;
	f->aborts++;
	if (!f->closing)
		f->aborts_before_close++;
	if (f->close_pending)
		start_close(f);
}

/* ---- the detached (upgraded) side: echoes with a prefix ---- */

static void det_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char buf[4096];
	b->base = buf;
	b->len = sizeof(buf);
}

struct det_write {
	uv_write_t w;
	char data[128];
};

static void det_written(uv_write_t *w, int status)
{
	free(w);
}

static void det_send(uv_tcp_t *t, const char *s, size_t n)
{
	struct det_write *d = malloc(sizeof(*d));
	n = IM_MIN(n, sizeof(d->data));
	memcpy(d->data, s, n);
	uv_buf_t b = uv_buf_init(d->data, (unsigned)n);
	if (uv_write(&d->w, (uv_stream_t *)t, &b, 1, det_written) != 0)
		free(d);
}

static void det_closed(uv_handle_t *h)
{
	struct fx *f = h->data;
	f->det_closed = true;
	im_free(h); /* the documented way to free a detached handle */
}

static void det_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	if (n < 0) {
		uv_close((uv_handle_t *)st, det_closed);
		return;
	}
	char out[128];
	int m = snprintf(out, sizeof(out), "echo:%.*s", (int)n, b->base);
	det_send((uv_tcp_t *)st, out, (size_t)m);
}

static void do_detach(struct fx *f, struct http_req *req)
{
	static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\n"
				   "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
	char *rest = NULL;
	size_t rest_len = 0;
	uv_tcp_t *t = http_detach(req, resp, sizeof(resp) - 1, &rest, &rest_len);
	if (t == NULL) {
		http_respond(req, 500, NULL, NULL, "no detach", 9);
		return;
	}
	f->det_rest_len = rest_len;
	memcpy(f->det_rest, rest, IM_MIN(rest_len, sizeof(f->det_rest) - 1));
	im_free(rest);
	t->data = f;
	uv_read_start((uv_stream_t *)t, det_alloc, det_read);
	det_send(t, "hello", 5);
}

/*
 * The application under test: /slow is deferred, /never kept unanswered
 * (with on_abort), /ws detached; anything else answered at once.
 */
static void handler(struct http_req *req, void *arg)
{
	struct fx *f = arg;
	record(f, req);
	req->data = f;
	if (req->error) {
		answer(f, req);
	} else if (im_str_eq(req->path, IM_STR_LIT("/slow"))) {
		f->deferred[f->n_deferred++] = req;
		if (!uv_is_active((uv_handle_t *)&f->defer_timer))
			uv_timer_start(&f->defer_timer, on_defer_timer, 10, 0);
	} else if (im_str_eq(req->path, IM_STR_LIT("/never"))) {
		req->on_abort = on_abort;
		sem_post(&f->seen);
	} else if (im_str_eq(req->path, IM_STR_LIT("/ws")) && req->upgrade) {
		do_detach(f, req);
	} else {
		answer(f, req);
	}
}

static void on_server_closed(void *arg)
{
	struct fx *f = arg;
	f->closed = true;
	/* The server is still valid inside its close callback. */
	http_server_stats(f->srv, &f->end_stats);
}

/* Closes the server and the fixture handles; uv_run() then returns. */
static void start_close(struct fx *f)
{
	if (f->closing)
		return;
	f->closing = true;
	http_server_stats(f->srv, &f->stats);
	http_server_close(f->srv, on_server_closed, f);
	uv_close((uv_handle_t *)&f->defer_timer, NULL);
	uv_close((uv_handle_t *)&f->done, NULL);
}

/* The client thread finished its script. */
static void on_done(uv_async_t *a)
{
	struct fx *f = a->data;
	if (f->wait_abort && f->aborts == 0 && f->client_err[0] == '\0') {
		f->close_pending = true; /* on_abort closes */
		return;
	}
	start_close(f);
}

/* The client thread: runs the script, then tells the loop it is done. */
static void *client_main(void *arg)
{
	struct fx *f = arg;
	f->client(f);
	if (!f->signalled)
		uv_async_send(&f->done);
	return NULL;
}

/* Small limits so that tests can pass them with little data. */
static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->opts.addr = "127.0.0.1:0";
	f->opts.handler = handler;
	f->opts.arg = f;
	f->opts.max_header_bytes = 1024;
	f->opts.max_body_bytes = 1000;
	f->opts.idle_timeout_ms = 5000;
	f->opts.request_timeout_ms = 5000;
	sem_init(&f->seen, 0, 0);
}

/* Runs one scenario: the client script in a thread against the server in this loop. */
static void fx_run(struct fx *f, void (*client)(struct fx *f))
{
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(http_server_start(&f->loop, &f->opts, &f->srv), 0);
	f->port = http_server_port(f->srv);
	assert_true(f->port > 0);
	uv_async_init(&f->loop, &f->done, on_done);
	f->done.data = f;
	uv_timer_init(&f->loop, &f->defer_timer);
	f->defer_timer.data = f;
	f->client = client;
	assert_int_equal(pthread_create(&f->thr, NULL, client_main, f), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	pthread_join(f->thr, NULL);
	assert_true(f->closed);
	assert_int_equal(f->end_stats.conns_open, 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	sem_destroy(&f->seen);
	if (f->client_err[0])
		fail_msg("%s", f->client_err);
}

/* ---- the blocking client ---- */

struct cl {
	int fd;
	size_t len;
	char buf[16384];
};

struct resp {
	int status;
	char head[2048];
	char body[2048];
	size_t body_len;
};

/* Connects to the server under test on 127.0.0.1. */
static int cl_open(struct cl *c, int port)
{
	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	/* A safety net against a hung test, not synchronisation. */
	struct timeval tv = {10, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return connect(c->fd, (struct sockaddr *)&a, sizeof(a));
}

/* Sends everything; MSG_NOSIGNAL because the server may have closed. */
static int cl_send(struct cl *c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int cl_sends(struct cl *c, const char *s)
{
	return cl_send(c, s, strlen(s));
}

/* One recv() into the client buffer: >0 bytes, 0 EOF, <0 error or timeout. */
static ssize_t cl_fill(struct cl *c)
{
	if (c->len == sizeof(c->buf))
		return -1;
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

static void cl_consume(struct cl *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Reads one response framed by Content-Length (none: no body). */
static int cl_response(struct cl *c, struct resp *r)
{
	char *end;
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		if (cl_fill(c) <= 0)
			return -1;
	size_t hl = (size_t)(end - c->buf) + 4;
	if (hl >= sizeof(r->head))
		return -1;
	memcpy(r->head, c->buf, hl);
	r->head[hl] = '\0';
	if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
		return -1;
	size_t bl = 0;
	const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
	if (cl)
		bl = strtoul(cl + 18, NULL, 10);
	if (bl >= sizeof(r->body))
		return -1;
	while (c->len < hl + bl)
		if (cl_fill(c) <= 0)
			return -1;
	memcpy(r->body, c->buf + hl, bl);
	r->body[bl] = '\0';
	r->body_len = bl;
	cl_consume(c, hl + bl);
	return 0;
}

static int cl_exact(struct cl *c, char *out, size_t n)
{
	while (c->len < n)
		if (cl_fill(c) <= 0)
			return -1;
	memcpy(out, c->buf, n);
	out[n] = '\0';
	cl_consume(c, n);
	return 0;
}

/* True once the server has closed: EOF (or a reset), not a timeout. */
static bool cl_closed(struct cl *c)
{
	if (c->len > 0)
		return false;
	ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void cl_close(struct cl *c)
{
	close(c->fd);
}

static bool has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* ---- socket tests ---- */

/* A GET with a query string, then a POST with a body on the same connection. */
static void c_get_and_post(struct fx *f)
{
	struct cl c;
	struct resp r;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h1\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, r.status == 200);
	CHECK(f, strcmp(r.body, "GET /a/b q=x=1&y=2 b=") == 0);
	CHECK(f, has(r.head, "\r\nX-Test: 1\r\n"));
	CHECK(f, has(r.head, "\r\nContent-Type: text/plain\r\n"));
	CHECK(f, !has(r.head, "Connection:"));
	CHECK(f,
	      cl_sends(&c, "POST /p HTTP/1.1\r\nHost: h2\r\nContent-Length: 5\r\n\r\nhello") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, strcmp(r.body, "POST /p q= b=hello") == 0);
	cl_close(&c);
}

static void serves_get_and_post_with_body(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_get_and_post);
	assert_int_equal(f.n_recs, 2);
	assert_string_equal(f.recs[0].method, "GET");
	assert_string_equal(f.recs[0].path, "/a/b");
	assert_string_equal(f.recs[0].query, "x=1&y=2");
	assert_string_equal(f.recs[0].host, "h1");
	assert_true(f.recs[0].keep_alive);
	assert_string_equal(f.recs[1].body, "hello");
	assert_int_equal(f.recs[1].body_len, 5);
	assert_int_equal(f.stats.requests, 2);
	assert_int_equal(f.stats.conns_total, 1);
	assert_int_equal(f.stats.bad_requests, 0);
}

/* Five HTTP/1.1 requests in turn on one connection, then the HTTP/1.0 rules. */
static void c_keep_alive(struct fx *f)
{
	struct cl c;
	struct resp r;
	CHECK(f, cl_open(&c, f->port) == 0);
	for (int i = 0; i < 5; i++) {
		char req[64], want[64];
		snprintf(req, sizeof(req), "GET /k%d HTTP/1.1\r\n\r\n", i);
		snprintf(want, sizeof(want), "GET /k%d q= b=", i);
		CHECK(f, cl_sends(&c, req) == 0);
		CHECK(f, cl_response(&c, &r) == 0);
		CHECK(f, strcmp(r.body, want) == 0);
	}
	/* HTTP/1.0 asking for keep-alive gets it, and says so. */
	CHECK(f, cl_sends(&c, "GET /k10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, has(r.head, "\r\nConnection: keep-alive\r\n"));
	/* Plain HTTP/1.0 closes after its answer. */
	CHECK(f, cl_sends(&c, "GET /k11 HTTP/1.0\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, has(r.head, "\r\nConnection: close\r\n"));
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void keeps_connection_alive_across_requests(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_keep_alive);
	assert_int_equal(f.n_recs, 7);
	assert_int_equal(f.stats.conns_total, 1);
}

/*
 * Four requests in one write; the handler defers the /slow ones with a timer
 * and answers them newest first, after the fast ones.
 */
static void c_pipelined(struct fx *f)
{
	struct cl c;
	struct resp r;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /slow HTTP/1.1\r\n\r\n"
			      "GET /fast HTTP/1.1\r\n\r\n"
			      "POST /fast2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
			      "GET /slow?2 HTTP/1.1\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, strcmp(r.body, "GET /slow q= b=") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, strcmp(r.body, "GET /fast q= b=") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, strcmp(r.body, "POST /fast2 q= b=abc") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, strcmp(r.body, "GET /slow q=2 b=") == 0);
	cl_close(&c);
}

static void pipelined_answers_leave_in_request_order(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_pipelined);
	assert_int_equal(f.n_recs, 4);
	/* The handler answered out of order; the wire order was checked by the client. */
	assert_string_equal(f.answered, "/fast /fast2 /slow /slow ");
}

/* Seven deferred requests in one write against max_pipeline = 2. */
static void c_pipeline_limit(struct fx *f)
{
	struct cl c;
	struct resp r;
	char all[1024] = "";
	CHECK(f, cl_open(&c, f->port) == 0);
	for (int i = 0; i < 7; i++) {
		size_t l = strlen(all);
		snprintf(all + l, sizeof(all) - l, "GET /slow?%d HTTP/1.1\r\n\r\n", i);
	}
	CHECK(f, cl_sends(&c, all) == 0);
	for (int i = 0; i < 7; i++) {
		char want[64];
		snprintf(want, sizeof(want), "GET /slow q=%d b=", i);
		CHECK(f, cl_response(&c, &r) == 0);
		CHECK(f, strcmp(r.body, want) == 0);
	}
	cl_close(&c);
}

static void pipeline_limit_pauses_and_resumes(void **state)
{
	struct fx f;
	fx_init(&f);
	f.opts.max_pipeline = 2;
	fx_run(&f, c_pipeline_limit);
	assert_int_equal(f.n_recs, 7);
}

/* "Connection: close": one answer, then EOF; the request after it is ignored. */
static void c_conn_close(struct fx *f)
{
	struct cl c;
	struct resp r;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n"
			      "GET /ignored HTTP/1.1\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, strcmp(r.body, "GET /bye q= b=") == 0);
	CHECK(f, has(r.head, "\r\nConnection: close\r\n"));
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void connection_close_closes_after_answer(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_conn_close);
	assert_int_equal(f.n_recs, 1);
	assert_false(f.recs[0].keep_alive);
}

/* A 2 KiB header value against max_header_bytes = 1 KiB. */
static void c_header_too_large(struct fx *f)
{
	struct cl c;
	struct resp r;
	char big[2100];
	memset(big, 'x', sizeof(big));
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /h HTTP/1.1\r\nX-Big: ") == 0);
	CHECK(f, cl_send(&c, big, sizeof(big)) == 0);
	CHECK(f, cl_sends(&c, "\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, r.status == 431);
	CHECK(f, strcmp(r.body, "error 2") == 0);
	CHECK(f, has(r.head, "\r\nConnection: close\r\n"));
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void header_too_large_is_reported_then_closed(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_header_too_large);
	assert_int_equal(f.n_recs, 1);
	assert_int_equal(f.recs[0].error, HTTP_REQ_HEADER_TOO_LARGE);
	assert_string_equal(f.recs[0].method, "GET");
	assert_string_equal(f.recs[0].path, "/h");
	assert_int_equal(f.stats.bad_requests, 1);
}

/* Content-Length: 100000 against max_body_bytes = 1000; only 10 bytes follow. */
static void c_body_too_large(struct fx *f)
{
	struct cl c;
	struct resp r;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "POST /b HTTP/1.1\r\nContent-Length: 100000\r\n\r\n0123456789") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, r.status == 413);
	CHECK(f, strcmp(r.body, "error 3") == 0);
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void body_too_large_is_refused_from_content_length(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_body_too_large);
	assert_int_equal(f.n_recs, 1);
	assert_int_equal(f.recs[0].error, HTTP_REQ_BODY_TOO_LARGE);
	assert_string_equal(f.recs[0].path, "/b");
	assert_int_equal(f.recs[0].body_len, 0);
}

/* Junk after the HTTP version. */
static void c_malformed(struct fx *f)
{
	struct cl c;
	struct resp r;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /x HTTP/1.1 junk\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, r.status == 400);
	CHECK(f, strcmp(r.body, "error 1") == 0);
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void malformed_request_line_is_bad_request(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_malformed);
	assert_int_equal(f.n_recs, 1);
	assert_int_equal(f.recs[0].error, HTTP_REQ_BAD);
	assert_string_equal(f.recs[0].method, "GET");
}

/* With idle_timeout_ms = 50 the client waits for EOF, never for a clock. */
static void c_idle(struct fx *f)
{
	struct cl c;
	struct resp r;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_closed(&c)); /* nothing sent: the idle timer closes it */
	cl_close(&c);
	/* Idle again after an answer. */
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /i HTTP/1.1\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void idle_connection_times_out(void **state)
{
	struct fx f;
	fx_init(&f);
	f.opts.idle_timeout_ms = 50;
	fx_run(&f, c_idle);
	assert_int_equal(f.n_recs, 1);
	assert_int_equal(f.stats.conns_total, 2);
}

/* Half a head, then nothing: request_timeout_ms = 50 ends it. */
static void c_slow_request(struct fx *f)
{
	struct cl c;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /slowloris HTTP/1.1\r\nHost: x\r\n") == 0);
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void incomplete_request_times_out(void **state)
{
	struct fx f;
	fx_init(&f);
	f.opts.request_timeout_ms = 50;
	fx_run(&f, c_slow_request);
	assert_int_equal(f.n_recs, 0);
}

/* A chunked body with an extension and a trailer, then one over the limit. */
static void c_chunked(struct fx *f)
{
	struct cl c;
	struct resp r;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, strcmp(r.body, "POST /c q= b=hello world") == 0);
	/* A chunked body growing past the limit. */
	CHECK(f, cl_sends(&c, "POST /c2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == 0);
	char chunk[600];
	memset(chunk, 'z', sizeof(chunk));
	for (int i = 0; i < 2; i++) {
		CHECK(f, cl_sends(&c, "258\r\n") == 0);
		CHECK(f, cl_send(&c, chunk, sizeof(chunk)) == 0);
		CHECK(f, cl_sends(&c, "\r\n") == 0);
	}
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, r.status == 413);
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void chunked_body_is_assembled_and_limited(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_chunked);
	assert_int_equal(f.n_recs, 2);
	assert_string_equal(f.recs[0].body, "hello world");
	assert_int_equal(f.recs[1].error, HTTP_REQ_BODY_TOO_LARGE);
}

/*
 * An upgrade with bytes right behind it: the server side detaches, gets
 * "EXTRA" back as leftover, then greets and echoes on the raw socket.
 */
static void c_detach(struct fx *f)
{
	struct cl c;
	struct resp r;
	char got[64];
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /ws?token=t HTTP/1.1\r\nUpgrade: websocket\r\n"
			      "Connection: Upgrade\r\n\r\nEXTRA") == 0);
	CHECK(f, cl_response(&c, &r) == 0);
	CHECK(f, r.status == 101);
	CHECK(f, cl_exact(&c, got, 5) == 0);
	CHECK(f, strcmp(got, "hello") == 0);
	CHECK(f, cl_sends(&c, "ping") == 0);
	CHECK(f, cl_exact(&c, got, 9) == 0);
	CHECK(f, strcmp(got, "echo:ping") == 0);
	cl_close(&c);
}

static void detach_hands_over_socket_and_leftover(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_detach);
	assert_int_equal(f.n_recs, 1);
	assert_true(f.recs[0].upgrade);
	assert_string_equal(f.recs[0].query, "token=t");
	assert_int_equal(f.det_rest_len, 5);
	assert_string_equal(f.det_rest, "EXTRA");
	assert_true(f.det_closed);
	assert_int_equal(f.stats.conns_open, 0);
}

/* The handler keeps /never; the client closes once the handler has seen it. */
static void c_peer_closes(struct fx *f)
{
	struct cl c;
	struct timespec ts;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /never HTTP/1.1\r\n\r\n") == 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	CHECK(f, sem_timedwait(&f->seen, &ts) == 0);
	cl_close(&c);
}

static void peer_close_aborts_pending_request(void **state)
{
	struct fx f;
	fx_init(&f);
	f.wait_abort = true;
	fx_run(&f, c_peer_closes);
	assert_int_equal(f.aborts, 1);
	assert_int_equal(f.aborts_before_close, 1);
}

/* /never is pending (and /x answered behind it) when the server closes. */
static void c_server_closes(struct fx *f)
{
	struct cl c;
	struct timespec ts;
	CHECK(f, cl_open(&c, f->port) == 0);
	CHECK(f, cl_sends(&c, "GET /never HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n") == 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	CHECK(f, sem_timedwait(&f->seen, &ts) == 0);
	/* The done signal makes the server close with the request pending. */
	f->signalled = true;
	uv_async_send(&f->done);
	CHECK(f, cl_closed(&c));
	cl_close(&c);
}

static void server_close_aborts_pending_request(void **state)
{
	struct fx f;
	fx_init(&f);
	fx_run(&f, c_server_closes);
	assert_int_equal(f.n_recs, 2);
	assert_int_equal(f.aborts, 1);
	assert_int_equal(f.aborts_before_close, 0);
}

/* max_conns = 1: a second connection is accepted and closed at once. */
static void c_max_conns(struct fx *f)
{
	struct cl a, b;
	struct resp r;
	CHECK(f, cl_open(&a, f->port) == 0);
	CHECK(f, cl_sends(&a, "GET /one HTTP/1.1\r\n\r\n") == 0);
	CHECK(f, cl_response(&a, &r) == 0);
	CHECK(f, cl_open(&b, f->port) == 0);
	CHECK(f, cl_closed(&b));
	cl_close(&b);
	cl_close(&a);
}

static void connections_beyond_max_conns_are_dropped(void **state)
{
	struct fx f;
	fx_init(&f);
	f.opts.max_conns = 1;
	fx_run(&f, c_max_conns);
	assert_int_equal(f.stats.conns_total, 1);
}

/* Address syntax errors fail before any handle exists. */
static void start_rejects_bad_address(void **state)
{
	uv_loop_t loop;
	struct http_server *s = (void *)1;
	struct http_opts o = {.addr = "nonsense", .handler = handler};
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(http_server_start(&loop, &o, &s), UV_EINVAL);
	assert_null(s);
	o.addr = "127.0.0.1:99999";
	assert_int_equal(http_server_start(&loop, &o, &s), UV_EINVAL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the test seam ---- */

struct seam {
	struct im_buf out;
	struct http_req *held[16];
	int n_held;
	int calls;
	int aborts;
	bool hold;	  /* keep requests unanswered */
	bool close_first; /* answer the first request with keep_alive cleared */
	int last_error;
	struct rec recs[16];
};

static void seam_write(void *arg, const char *data, size_t len)
{
	struct seam *s = arg;
	(void)im_buf_add(&s->out, data, len); /* may meet an injected OOM */
}

static void seam_abort(struct http_req *req)
{
	struct seam *s = req->data;
	s->aborts++;
}

/* The seam application: records, optionally holds, otherwise answers at once. */
static void seam_handler(struct http_req *req, void *arg)
{
	struct seam *s = arg;
	if (s->calls < 16) {
		struct rec *r = &s->recs[s->calls];
		r->error = req->error;
		copy_str(r->method, sizeof(r->method), req->method);
		copy_str(r->path, sizeof(r->path), req->path);
		copy_str(r->host, sizeof(r->host), http_req_header(req, "host"));
	}
	s->calls++;
	s->last_error = req->error;
	req->data = s;
	if (s->hold && s->n_held < 16) {
		req->on_abort = seam_abort;
		s->held[s->n_held++] = req;
		return;
	}
	if (s->close_first && s->calls == 1)
		req->keep_alive = false;
	if (im_str_eq(req->path, IM_STR_LIT("/ws")) && http_detach(req, "x", 1, NULL, NULL) != NULL)
		fail_msg("detach on a test connection");
	answer(NULL, req);
}

static struct http_opts seam_opts(struct seam *s)
{
	memset(s, 0, sizeof(*s));
	return (struct http_opts){
	    .handler = seam_handler, .arg = s, .max_header_bytes = 1024, .max_body_bytes = 1000};
}

static const char seam_input[] =
    "GET /one?a=b HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\n"
    "\r\n" /* stray CRLF between requests is allowed */
    "POST /two HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody"
    "POST /three HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    "HEAD /four HTTP/1.1\r\n\r\n"
    "GET /five HTTP/1.1\r\nConnection: close\r\n\r\n"
    "GET /never-parsed HTTP/1.1\r\n\r\n";

/* Feeds seam_input in `step`-byte pieces and returns everything written. */
static void seam_run(struct seam *s, size_t step, char **out)
{
	struct http_opts o = seam_opts(s);
	struct http_conn *c = http_test_conn_new(&o, seam_write, s);
	assert_non_null(c);
	size_t n = sizeof(seam_input) - 1;
	int rv = 0;
	for (size_t i = 0; i < n && rv == 0; i += step)
		rv = http_test_feed(c, seam_input + i, IM_MIN(step, n - i));
	assert_int_equal(rv, UV_EOF);
	http_test_conn_free(c);
	*out = s->out.p;
}

/* Splitting the input anywhere changes nothing: parser state survives reads. */
static void seam_bytewise_equals_whole(void **state)
{
	struct seam a, b;
	char *whole, *bytes;
	seam_run(&a, sizeof(seam_input), &whole);
	seam_run(&b, 1, &bytes);
	assert_int_equal(a.calls, 5);
	assert_int_equal(b.calls, 5);
	assert_string_equal(whole, bytes);
	assert_non_null(strstr(whole, "GET /one q=a=b b="));
	assert_non_null(strstr(whole, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"));
	assert_non_null(strstr(whole, "POST /two q= b=body"));
	assert_non_null(strstr(whole, "POST /three q= b=abc"));
	assert_null(strstr(whole, "HEAD /four")); /* no body for HEAD */
	assert_non_null(strstr(whole, "GET /five q= b="));
	assert_null(strstr(whole, "never-parsed"));
	assert_string_equal(a.recs[0].host, "h");
	im_buf_free(&a.out);
	im_buf_free(&b.out);
}

/*
 * max_pipeline = 2 with answers held: parsing stops after two requests and
 * resumes from the held bytes once both answers are out.
 */
static void seam_pipeline_limit_holds_bytes(void **state)
{
	struct seam s;
	struct http_opts o = seam_opts(&s);
	o.max_pipeline = 2;
	s.hold = true;
	struct http_conn *c = http_test_conn_new(&o, seam_write, &s);
	const char *in = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"
			 "GET /3 HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\n\r\n";
	assert_int_equal(http_test_feed(c, in, strlen(in)), 0);
	assert_int_equal(s.calls, 2);
	assert_int_equal(http_test_feed(c, "GET /5 HTTP/1.1\r\n\r\n", 19), 0);
	assert_int_equal(s.calls, 2);
	/* The second answer waits for the first. */
	s.hold = false;
	answer(NULL, s.held[1]);
	assert_int_equal(s.out.len, 0);
	s.hold = true;
	answer(NULL, s.held[0]);
	assert_int_equal(s.calls, 4); /* drained: /3 and /4 parsed from the held bytes */
	assert_non_null(strstr(s.out.p, "GET /1 q="));
	assert_true(strstr(s.out.p, "GET /1 q=") < strstr(s.out.p, "GET /2 q="));
	answer(NULL, s.held[2]);
	answer(NULL, s.held[3]);
	assert_int_equal(s.calls, 5);
	http_test_conn_free(c); /* /5 is aborted */
	assert_int_equal(s.aborts, 1);
	im_buf_free(&s.out);
}

/* Header count, bad header, garbage, and an upgrade without a socket. */
static void seam_limits(void **state)
{
	struct seam s;
	struct http_opts o = seam_opts(&s);
	struct im_buf in = {0};
	/* 101 headers */
	im_buf_addstr(&in, "GET /h HTTP/1.1\r\n");
	for (int i = 0; i <= HTTP__MAX_HEADERS; i++)
		im_buf_printf(&in, "H%d: v\r\n", i);
	im_buf_addstr(&in, "\r\n");
	struct http_conn *c = http_test_conn_new(&o, seam_write, &s);
	assert_int_equal(http_test_feed(c, in.p, in.len), UV_EOF);
	assert_int_equal(s.last_error, HTTP_REQ_HEADER_TOO_LARGE);
	assert_string_equal(s.recs[0].path, "/h");
	assert_non_null(strstr(s.out.p, "HTTP/1.1 431 "));
	assert_non_null(strstr(s.out.p, "\r\nConnection: close\r\n"));
	http_test_conn_free(c);
	im_buf_free(&s.out);
	im_buf_free(&in);

	/* A bad header line keeps what came before it. */
	o = seam_opts(&s);
	c = http_test_conn_new(&o, seam_write, &s);
	const char *bad = "GET /p HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n";
	assert_int_equal(http_test_feed(c, bad, strlen(bad)), UV_EOF);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.recs[0].error, HTTP_REQ_BAD);
	assert_string_equal(s.recs[0].path, "/p");
	assert_string_equal(s.recs[0].host, "x");
	http_test_conn_free(c);
	im_buf_free(&s.out);

	/* Garbage from the first byte: empty fields. */
	o = seam_opts(&s);
	c = http_test_conn_new(&o, seam_write, &s);
	assert_int_equal(http_test_feed(c, "\x01\x02", 2), UV_EOF);
	assert_int_equal(s.recs[0].error, HTTP_REQ_BAD);
	assert_string_equal(s.recs[0].method, "");
	assert_int_equal(http_test_feed(c, "GET / HTTP/1.1\r\n\r\n", 18), UV_EOF);
	assert_int_equal(s.calls, 1);
	http_test_conn_free(c);
	im_buf_free(&s.out);

	/* An upgrade on a test connection cannot detach; it closes after the answer. */
	o = seam_opts(&s);
	c = http_test_conn_new(&o, seam_write, &s);
	const char *up = "GET /ws HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nrest";
	assert_int_equal(http_test_feed(c, up, strlen(up)), UV_EOF);
	assert_non_null(strstr(s.out.p, "\r\nConnection: close\r\n"));
	http_test_conn_free(c);
	im_buf_free(&s.out);
}

/*
 * The application clears keep_alive on the first of three pipelined requests:
 * the second is aborted, the third (no on_abort) becomes a zombie.
 */
static void seam_cleared_keep_alive_aborts_later_requests(void **state)
{
	struct seam s;
	struct http_opts o = seam_opts(&s);
	s.hold = true;
	struct http_conn *c = http_test_conn_new(&o, seam_write, &s);
	const char *in = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n";
	assert_int_equal(http_test_feed(c, in, strlen(in)), 0);
	assert_int_equal(s.calls, 3);
	s.held[0]->keep_alive = false;
	struct http_req *third = s.held[2];
	third->on_abort = NULL; /* becomes a zombie, answered later */
	answer(NULL, s.held[0]);
	assert_int_equal(s.aborts, 1); /* /2 */
	assert_non_null(strstr(s.out.p, "\r\nConnection: close\r\n"));
	assert_int_equal(http_test_feed(c, "x", 1), UV_EOF);
	size_t len = s.out.len;
	answer(NULL, third); /* harmless: freed, nothing written */
	assert_int_equal(s.out.len, len);
	http_test_conn_free(c);
	im_buf_free(&s.out);
}

/* Out of memory at every allocation in turn: no crash, no leak (ASan). */
static void seam_survives_oom_at_each_allocation(void **state)
{
	for (long n = 1; n < 200; n++) {
		struct seam s;
		struct http_opts o = seam_opts(&s);
		im_alloc_fail_after(n);
		struct http_conn *c = http_test_conn_new(&o, seam_write, &s);
		if (c) {
			http_test_feed(c, seam_input, sizeof(seam_input) - 1);
			http_test_conn_free(c);
		}
		im_alloc_fail_after(0);
		im_buf_free(&s.out);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	im_log_level = IM_LOG_ERROR;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(serves_get_and_post_with_body),
	    cmocka_unit_test(keeps_connection_alive_across_requests),
	    cmocka_unit_test(pipelined_answers_leave_in_request_order),
	    cmocka_unit_test(pipeline_limit_pauses_and_resumes),
	    cmocka_unit_test(connection_close_closes_after_answer),
	    cmocka_unit_test(header_too_large_is_reported_then_closed),
	    cmocka_unit_test(body_too_large_is_refused_from_content_length),
	    cmocka_unit_test(malformed_request_line_is_bad_request),
	    cmocka_unit_test(idle_connection_times_out),
	    cmocka_unit_test(incomplete_request_times_out),
	    cmocka_unit_test(chunked_body_is_assembled_and_limited),
	    cmocka_unit_test(detach_hands_over_socket_and_leftover),
	    cmocka_unit_test(peer_close_aborts_pending_request),
	    cmocka_unit_test(server_close_aborts_pending_request),
	    cmocka_unit_test(connections_beyond_max_conns_are_dropped),
	    cmocka_unit_test(start_rejects_bad_address),
	    cmocka_unit_test(seam_bytewise_equals_whole),
	    cmocka_unit_test(seam_pipeline_limit_holds_bytes),
	    cmocka_unit_test(seam_limits),
	    cmocka_unit_test(seam_cleared_keep_alive_aborts_later_requests),
	    cmocka_unit_test(seam_survives_oom_at_each_allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
