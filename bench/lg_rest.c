/* lg_rest.c - the load generator's REST client (see lg_rest.h): blocking sockets, keep-alive,
 * pipelined token fetches. */
#include "lg_rest.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define OP_PLATFORM    5 /* Web, like the JS SDK */
#define OI_USER_EXISTS 1102

void lg_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void lg_buf_reserve(struct lg_buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (b->p == NULL)
		lg_die("out of memory");
	b->cap = cap;
}

void lg_buf_add(struct lg_buf *b, const void *p, size_t n)
{
	lg_buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void lg_buf_printf(struct lg_buf *b, const char *fmt, ...)
{
	/* Try in the free space; if it did not fit, grow to the length it asked for and redo. */
	for (;;) {
		lg_buf_reserve(b, 256);
		size_t room = b->cap - b->len;
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			lg_die("vsnprintf failed");
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		lg_buf_reserve(b, (size_t)n + 1);
	}
}

void lg_rest_open(struct lg_rest *r, const char *host, int port)
{
	char ports[16];
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	if (host != r->host)
		snprintf(r->host, sizeof(r->host), "%s", host);
	r->port = port;
	snprintf(ports, sizeof(ports), "%d", port);
	int rc = getaddrinfo(r->host, ports, &hints, &ai);
	if (rc != 0)
		lg_die("api %s: %s", r->host, gai_strerror(rc));
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->fd < 0 || connect(r->fd, ai->ai_addr, ai->ai_addrlen) != 0)
		lg_die("api %s:%d: connect: %s", r->host, port, strerror(errno));
	freeaddrinfo(ai);
	int one = 1;
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r->in.len = r->out.len = r->used = 0;
}

void lg_rest_close(struct lg_rest *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->in.p);
	free(r->out.p);
	r->in = r->out = (struct lg_buf){0};
}

void lg_rest_queue(struct lg_rest *r, const char *path, const char *token, const char *body)
{
	lg_buf_printf(&r->out,
		      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
		      "operationID: loadgen-%u\r\ntoken: %s\r\nContent-Length: %zu\r\n\r\n%s",
		      path, r->host, r->port, r->op++, token ? token : "", strlen(body), body);
}

static bool write_out(struct lg_rest *r)
{
	size_t done = 0;
	while (done < r->out.len) {
		ssize_t n = send(r->fd, r->out.p + done, r->out.len - done, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	r->out.len = 0;
	return true;
}

/* Reads the next answer; returns the body's offset in r->in and sets *blen, or -1 on EOF. */
static long read_answer(struct lg_rest *r, size_t *blen)
{
	/* Drop the previous answer, keep what followed it. */
	memmove(r->in.p, r->in.p + r->used, r->in.len - r->used);
	r->in.len -= r->used;
	r->used = 0;
	for (;;) {
		lg_buf_reserve(&r->in, 65536);
		r->in.p[r->in.len] = '\0';
		char *end = strstr(r->in.p, "\r\n\r\n");
		if (end != NULL) {
			size_t head = (size_t)(end - r->in.p) + 4, clen = 0;
			for (char *l = strstr(r->in.p, "\r\n"); l != NULL && l < end;
			     l = strstr(l + 2, "\r\n"))
				if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
					clen = strtoul(l + 17, NULL, 10);
			if (r->in.len >= head + clen) {
				*blen = clen;
				r->used = head + clen;
				return (long)head;
			}
		}
		ssize_t n = read(r->fd, r->in.p + r->in.len, r->in.cap - r->in.len - 1);
		if (n <= 0)
			return -1;
		r->in.len += (size_t)n;
	}
}

static json_t *decode(struct lg_rest *r, const char *path, long off, size_t blen, int *code,
		      char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(r->in.p + off, blen, 0, &je);
	json_t *ec = json_object_get(root, "errCode");
	if (root == NULL || !json_is_integer(ec))
		lg_die("api %s: bad answer: %.200s", path, r->in.p);
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

json_t *lg_rest_answer(struct lg_rest *r, const char *path, int *code, char *err, size_t errlen)
{
	size_t blen = 0;
	if (r->out.len && !write_out(r))
		lg_die("api %s: write: %s", path, strerror(errno));
	long off = read_answer(r, &blen);
	if (off < 0)
		lg_die("api %s: no answer", path);
	return decode(r, path, off, blen, code, err, errlen);
}

json_t *lg_rest_post(struct lg_rest *r, const char *path, const char *token, const char *body,
		     int *code, char *err, size_t errlen)
{
	lg_rest_queue(r, path, token, body);
	long off = -1;
	size_t blen = 0;
	for (int attempt = 0; attempt < 2 && off < 0; attempt++) {
		if (attempt > 0) { /* the server closed a kept-alive connection: once more */
			struct lg_buf keep = r->out;
			r->out = (struct lg_buf){0};
			close(r->fd);
			lg_rest_open(r, r->host, r->port);
			free(r->out.p);
			r->out = keep;
		}
		if (write_out(r))
			off = read_answer(r, &blen);
	}
	r->out.len = 0;
	if (off < 0)
		lg_die("api %s: no answer", path);
	return decode(r, path, off, blen, code, err, errlen);
}

char *lg_admin_token(struct lg_rest *r, const char *secret)
{
	char body[512], err[256];
	int code;
	snprintf(body, sizeof(body), "{\"secret\":\"%s\",\"userID\":\"imAdmin\"}", secret);
	json_t *d = lg_rest_post(r, "/auth/get_admin_token", NULL, body, &code, err, sizeof(err));
	if (d == NULL)
		lg_die("get_admin_token: %d %s", code, err);
	char *t = strdup(json_string_value(json_object_get(d, "token")));
	json_decref(d);
	return t;
}

void lg_register(struct lg_rest *r, const char *admin, int n, int batch, lg_name_fn name, void *arg)
{
	char id[256], err[256];
	int code;
	for (int i = 0; i < n; i += batch) {
		struct lg_buf b = {0};
		lg_buf_printf(&b, "{\"users\":[");
		for (int j = i; j < n && j < i + batch; j++) {
			name(j, id, sizeof(id), arg);
			lg_buf_printf(&b, "%s{\"userID\":\"%s\",\"nickname\":\"%s\"}",
				      j > i ? "," : "", id, id);
		}
		lg_buf_printf(&b, "]}");
		json_t *d =
		    lg_rest_post(r, "/user/user_register", admin, b.p, &code, err, sizeof(err));
		free(b.p);
		if (d == NULL && code != OI_USER_EXISTS)
			lg_die("user_register: %d %s", code, err);
		json_decref(d);
	}
}

void lg_tokens(const char *host, int port, const char *admin, int n, lg_name_fn name, void *arg,
	       char **tokens, int socks, int depth)
{
	struct lg_rest *rs = calloc((size_t)socks, sizeof(*rs));
	if (rs == NULL)
		lg_die("out of memory");
	for (int s = 0; s < socks; s++)
		lg_rest_open(&rs[s], host, port);
	char id[256], body[512], err[256];
	int code;
	/* Rounds: every socket gets `depth` requests, then every answer is read in order. */
	for (int i = 0; i < n;) {
		int first = i;
		for (int s = 0; s < socks; s++)
			for (int k = 0; k < depth && i < n; k++, i++) {
				name(i, id, sizeof(id), arg);
				snprintf(body, sizeof(body),
					 "{\"platformID\":%d,\"userID\":\"%s\"}", OP_PLATFORM, id);
				lg_rest_queue(&rs[s], "/auth/get_user_token", admin, body);
			}
		for (int s = 0, j = first; s < socks; s++)
			for (int k = 0; k < depth && j < i; k++, j++) {
				json_t *d = lg_rest_answer(&rs[s], "/auth/get_user_token", &code,
							   err, sizeof(err));
				if (d == NULL) {
					name(j, id, sizeof(id), arg);
					lg_die(
					    "get_user_token %s: %d %s (a fresh server, or another "
					    "--prefix?)",
					    id, code, err);
				}
				tokens[j] = strdup(json_string_value(json_object_get(d, "token")));
				json_decref(d);
			}
	}
	for (int s = 0; s < socks; s++)
		lg_rest_close(&rs[s]);
	free(rs);
}
