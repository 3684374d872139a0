/* http.h - an HTTP/1.1 server on libuv and llhttp: keep-alive, pipelining, limits, timeouts. */
#ifndef IM_HTTP_H
#define IM_HTTP_H

#include <uv.h>

#include "common.h"

/*
 * The server accepts TCP connections on one address and parses requests with
 * llhttp.  Each complete request is handed to the handler; the handler (or
 * something it started) answers it exactly once with http_respond(), at once
 * or later from the loop.  Responses on a connection are written in request
 * order whatever order they are produced in (pipelining, RFC 9112 §9.3.2).
 *
 * Limits: a request whose header block passes `max_header_bytes`, whose body
 * passes `max_body_bytes`, or that does not parse, still reaches the handler
 * once, with req->error set (HTTP_REQ_*), so the application answers it in its
 * own format; the connection is closed after that answer is written.  A
 * connection with no request in progress is closed after `idle_timeout_ms`; a
 * request must arrive completely within `request_timeout_ms`.  At most
 * `max_pipeline` requests wait for answers per connection; beyond that the
 * server stops reading from the connection until answers are written.
 *
 * Loop thread only.  Connection life cycle:
 *   NEW -> READING <-> (answers pending) -> CLOSING -> CLOSED
 */

struct http_server;
struct http_conn;

enum http_req_error {
	HTTP_REQ_OK = 0,
	HTTP_REQ_BAD = 1, /* llhttp rejected the bytes */
	HTTP_REQ_HEADER_TOO_LARGE = 2,
	HTTP_REQ_BODY_TOO_LARGE = 3,
};

struct http_header {
	struct im_str name;
	struct im_str value;
};

/*
 * A request.  Owned by the server; valid from the handler call until
 * http_respond() returns for it, or until the connection closes (then
 * `on_abort` is called, if set, and the request must not be answered).
 */
struct http_req {
	struct http_conn *conn;
	int error;	      /* enum http_req_error */
	struct im_str method; /* "GET", "POST", ... */
	struct im_str path;   /* the path without the query string */
	struct im_str query;  /* after '?', without it; empty if none */
	struct http_header *headers;
	unsigned n_headers;
	const char *body; /* NUL-terminated for convenience; body_len bytes */
	size_t body_len;
	bool keep_alive; /* as negotiated; false forces close after the answer */
	bool upgrade;	 /* Connection: upgrade + Upgrade header present */
	char peer[64];	 /* "ip:port" of the client */
	void *data;	 /* for the application */
	/*
	 * Called instead of answering when the connection goes away first;
	 * req is freed when it returns.  Left NULL, req stays valid instead
	 * and a later http_respond() only frees it.
	 */
	void (*on_abort)(struct http_req *req);
};

/* Finds a header by case-insensitive name; returns a view or {NULL, 0}. */
struct im_str http_req_header(const struct http_req *req, const char *name);

/* Handler: called once per request on the loop thread. */
typedef void (*http_handler)(struct http_req *req, void *arg);

struct http_opts {
	const char *addr; /* "HOST:PORT" */
	http_handler handler;
	void *arg;
	size_t max_header_bytes;     /* default 16 KiB */
	size_t max_body_bytes;	     /* default 4 MiB */
	unsigned idle_timeout_ms;    /* default 60 s */
	unsigned request_timeout_ms; /* default 30 s */
	unsigned max_pipeline;	     /* default 32 */
	unsigned max_conns;	     /* default 100000 */
};

/*
 * Binds and listens.  Returns 0 or a negative libuv/errno code (e.g.
 * UV_EADDRINUSE) with *out NULL.
 */
int http_server_start(uv_loop_t *loop, const struct http_opts *o, struct http_server **out);

/* The bound port (useful with port 0). */
int http_server_port(const struct http_server *s);

/*
 * Stops listening and closes every connection; pending requests get
 * on_abort.  cb runs once everything is closed; then the server is freed.
 */
void http_server_close(struct http_server *s, void (*cb)(void *arg), void *arg);

/*
 * Answers req.  `extra_headers` is zero or more complete header lines, each
 * ending in "\r\n" (may be NULL).  Content-Length, Date-free framing and
 * Connection are added by the server.  The body is copied.  After this call
 * req is invalid.  If req->error != 0 or req->keep_alive is false the
 * connection closes once the answer is written.
 */
void http_respond(struct http_req *req, int status, const char *content_type,
		  const char *extra_headers, const void *body, size_t body_len);

/*
 * Takes the connection of req away from the HTTP server (for a WebSocket
 * upgrade): writes `response` (the 101 answer) and returns the libuv TCP
 * handle, which the caller then owns, with any bytes already read past the
 * request in *rest (caller frees with im_free).  NULL if not possible.
 *
 * Possible only for an upgrade request (req->upgrade, or CONNECT) once every
 * earlier request on the connection is answered.  On success req is freed (it
 * counts as answered), *rest is NULL if nothing followed the request, and the
 * handle was allocated with im_malloc, has data == NULL and is not reading:
 * start reading with your own callbacks, and free it with uv_close(h, cb)
 * where cb calls im_free(h).  On NULL nothing changed: answer req with
 * http_respond() (the connection closes after that answer).
 */
uv_tcp_t *http_detach(struct http_req *req, const void *response, size_t len, char **rest,
		      size_t *rest_len);

/* Counters for /metrics. */
struct http_stats {
	uint64_t conns_open;
	uint64_t conns_total;
	uint64_t requests;
	uint64_t bad_requests;
};
void http_server_stats(const struct http_server *s, struct http_stats *out);

#endif
