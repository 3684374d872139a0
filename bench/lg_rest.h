/* lg_rest.h - the load generator's blocking HTTP/1.1 client for the REST setup calls: a byte
 * buffer, keep-alive POSTs with OpenIM's JSON answers, pipelined batches over several sockets. */
#ifndef LG_REST_H
#define LG_REST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Prints "loadgen: <message>" on stderr and exits with status 1 (setup errors are fatal). */
void lg_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A growable byte buffer; the zeroed struct is empty; free p when done. */
struct lg_buf {
	char *p;
	size_t len, cap;
};

void lg_buf_reserve(struct lg_buf *b, size_t extra);
void lg_buf_add(struct lg_buf *b, const void *p, size_t n);
void lg_buf_printf(struct lg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * One keep-alive connection to the REST port (loopback, small bodies).  `in` holds bytes read
 * and not yet consumed (pipelined answers may arrive together), `out` requests not yet written.
 */
struct lg_rest {
	int fd;
	char host[256];
	int port;
	struct lg_buf in, out;
	size_t used; /* bytes of `in` that belong to the answer last returned */
	unsigned op;
};

/* Connects r to host:port (dies on failure). */
void lg_rest_open(struct lg_rest *r, const char *host, int port);
void lg_rest_close(struct lg_rest *r);

/*
 * POSTs body to path and returns the answer's "data" (a new reference, JSON null when absent)
 * when errCode is 0; otherwise NULL with the errCode in *code and errMsg/errDlt in err.
 */
json_t *lg_rest_post(struct lg_rest *r, const char *path, const char *token, const char *body,
		     int *code, char *err, size_t errlen);

/* Pipelining: lg_rest_queue appends a request to r->out; lg_rest_answer writes what is queued
 * and reads the next answer in order (same return convention as lg_rest_post). */
void lg_rest_queue(struct lg_rest *r, const char *path, const char *token, const char *body);
json_t *lg_rest_answer(struct lg_rest *r, const char *path, int *code, char *err, size_t errlen);

/* The admin token for userID imAdmin (openim-protocol.md §2.3); the caller frees it. */
char *lg_admin_token(struct lg_rest *r, const char *secret);

/* Writes user i's id into out (n bytes). */
typedef void (*lg_name_fn)(int i, char *out, size_t n, void *arg);

/* Registers users 0..n-1 with user_register, `batch` per call (1102 "exists" is accepted). */
void lg_register(struct lg_rest *r, const char *admin, int n, int batch, lg_name_fn name,
		 void *arg);

/*
 * Fetches get_user_token (platform 5) for users 0..n-1 into tokens[i] (strdup'd) over `socks`
 * connections with `depth` requests pipelined on each: a token is a durable write, so
 * concurrent requests share the server's group commit.
 */
void lg_tokens(const char *host, int port, const char *admin, int n, lg_name_fn name, void *arg,
	       char **tokens, int socks, int depth);

#endif
