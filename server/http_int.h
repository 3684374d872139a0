/* http_int.h - private to the HTTP module: its limits and a socket-free test seam. */
#ifndef IM_HTTP_INT_H
#define IM_HTTP_INT_H

#include "http.h"

/* Header lines one request may carry; one more is HTTP_REQ_HEADER_TOO_LARGE. */
#define HTTP__MAX_HEADERS 100

/* Bytes taken from a socket per read (one buffer shared by the server). */
#define HTTP__READ_BUF (64 * 1024)

/*
 * After its last answer a closing connection shuts down its write side and
 * keeps reading (and discarding) until EOF for at most this long, so that the
 * kernel does not reset the answer away (RFC 9112 §9.6).
 */
#define HTTP__LINGER_MS 2000

/*
 * The test seam: a connection without a socket, loop or timers, for unit tests
 * and the fuzz target.  Bytes go in with http_test_feed(); every response byte
 * comes out through write_cb, synchronously, in request order.  The handler of
 * `o` is called exactly as for a socket connection (req->peer is "test");
 * http_detach() always returns NULL on such a connection.
 */
typedef void (*http_test_write_fn)(void *arg, const char *data, size_t len);

/* Makes a test connection; `o->addr` is ignored, zero limits get defaults.  NULL on OOM. */
struct http_conn *http_test_conn_new(const struct http_opts *o, http_test_write_fn write_cb,
				     void *arg);

/*
 * Parses `len` bytes as if read from the socket; requests reach the handler
 * before it returns.  While max_pipeline answers are outstanding the bytes
 * are kept unparsed (the socket version stops reading instead) and parsed
 * once answers are given.  Returns 0 while the connection reads, UV_EOF once
 * it has decided to close (further bytes are ignored), UV_EBUSY if called
 * from inside one of its own callbacks.
 */
int http_test_feed(struct http_conn *c, const char *data, size_t len);

/*
 * Frees a test connection: unanswered requests get on_abort (or, without
 * it, stay valid until answered, see http_respond()).  Not from a callback.
 */
void http_test_conn_free(struct http_conn *c);

#endif
