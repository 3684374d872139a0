/* ws_int.h - private to the WebSocket module: a socket-free test seam for unit tests and fuzzing.
 */
#ifndef IM_WS_INT_H
#define IM_WS_INT_H

#include "ws.h"

/*
 * A connection without a socket, loop or timers.  Bytes go in with
 * ws_test_feed() (as if read after the handshake); every byte the connection
 * writes comes out through write_cb, synchronously, in order.  Callbacks of
 * `ops` run exactly as for a socket connection, except that on_free runs only
 * from ws_test_conn_free(), and timers (deadline, pings) never fire.
 */
typedef void (*ws_test_write_fn)(void *warg, const uint8_t *data, size_t len);

/* NULL on OOM. */
struct ws_conn *ws_test_conn_new(const struct ws_opts *o, const struct ws_ops *ops, void *arg,
				 ws_test_write_fn write_cb, void *warg);

/*
 * Feeds bytes.  Returns 0 while the connection reads, UV_EOF once it has
 * closed or stopped reading (further bytes are ignored), UV_EBUSY from inside
 * one of its own callbacks.
 */
int ws_test_feed(struct ws_conn *c, const uint8_t *data, size_t len);

/* Closes (if needed) and frees: on_closing (if still OPEN), then on_free.  Not from a callback. */
void ws_test_conn_free(struct ws_conn *c);

#endif
