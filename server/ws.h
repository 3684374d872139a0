/* ws.h - one server-side WebSocket connection (RFC 6455) on wslay over a libuv TCP handle. */
#ifndef IM_WS_H
#define IM_WS_H

#include <uv.h>

#include "common.h"

/*
 * A connection starts after the HTTP upgrade (the 101 answer is already
 * written) and owns the TCP handle from then on.  It reads frames through
 * wslay (server mode: client frames must be masked), hands each complete
 * binary message to ops->on_binary, answers the OpenIM text heartbeat itself
 * (openim-protocol.md §4.6: {"type":"ping"} -> {"type":"pong","body":..},
 * {"type":"pong"} accepted, any other text closes), lets wslay answer control
 * pings, and enforces the inbound message limit (close 1009), the read
 * deadline (re-armed by every data frame and every Ping control frame, not by
 * Pong) and, if configured, server Ping control frames.
 *
 * Outbound frames are complete, pre-encoded frames in reference-counted
 * buffers (struct ws_buf), so one push is encoded once and shared by every
 * recipient.  Each frame is handed to uv_write() at once; the frames the
 * kernel could not take yet form the send queue.  When it holds `send_queue`
 * frames, the next send closes the connection (WS_CLOSE_SLOW): a slow client
 * is closed, not buffered.  libuv writes with write(2); the process ignores
 * SIGPIPE (main.c), so a dead peer is an EPIPE error, not a signal.
 *
 * Life cycle (see ws.c for the invariants):
 *   OPEN --close frame sent or received--> CLOSING --handshake done, EOF,
 *   timeout--> CLOSED --handles closed--> freed (ops->on_free)
 *   and OPEN/CLOSING --error, slow, abort--> CLOSED directly.
 * ops->on_closing runs once, when the connection leaves OPEN; after that
 * ws_conn_send() refuses frames.  Nothing is ever freed inside a callback of
 * the connection: the memory goes in the libuv close callback.
 *
 * Loop thread only.
 */

struct ws_conn;

/* Why a connection left OPEN (ops->on_closing). */
enum ws_close_reason {
	WS_CLOSE_LOCAL = 1, /* ws_conn_close() */
	WS_CLOSE_PEER,	    /* the client sent a close frame, or EOF */
	WS_CLOSE_BAD,	    /* protocol error, oversized message, bad text frame */
	WS_CLOSE_TIMEOUT,   /* read deadline passed */
	WS_CLOSE_SLOW,	    /* send queue overflow */
	WS_CLOSE_ERROR,	    /* socket error or out of memory */
};

/* A reference-counted, complete frame (header and payload). */
struct ws_buf {
	uint32_t refs;
	size_t len;
	uint8_t data[];
};

/* WebSocket opcodes used by the API. */
enum { WS_OP_TEXT = 1, WS_OP_BINARY = 2, WS_OP_CLOSE = 8, WS_OP_PING = 9, WS_OP_PONG = 10 };

/*
 * Builds an unmasked server frame (FIN set) around payload[0..len), with one
 * reference owned by the caller.  NULL on OOM.
 */
struct ws_buf *ws_buf_frame(int opcode, const void *payload, size_t len);
void ws_buf_ref(struct ws_buf *b);
void ws_buf_unref(struct ws_buf *b); /* NULL is a no-op */

struct ws_ops {
	/* A complete binary message (valid during the call).  May call ws_conn_send/close. */
	void (*on_binary)(struct ws_conn *c, const uint8_t *msg, size_t len, void *arg);
	/* The connection left OPEN (see the life cycle).  Called once. */
	void (*on_closing)(struct ws_conn *c, enum ws_close_reason why, void *arg);
	/* Last call: c is freed right after it returns. */
	void (*on_free)(struct ws_conn *c, void *arg);
	/* Optional: every complete data message received, text or binary (for statistics). */
	void (*on_frame)(struct ws_conn *c, void *arg);
};

struct ws_opts {
	size_t max_msg;		   /* inbound message limit (default 51,200) */
	unsigned read_timeout_ms;  /* default 30,000 */
	unsigned ping_interval_ms; /* server Ping control frames; 0 = none */
	unsigned send_queue;	   /* frames (default 256) */
	unsigned close_timeout_ms; /* wait for the peer's close frame (default 2,000) */
};

/*
 * Takes over tcp (allocated with im_malloc, not reading; it is freed with
 * im_free when the connection is freed) and the bytes already read after the
 * HTTP request (rest[0..rest_len), copied).  Sends nothing and reads nothing
 * until ws_conn_start().  On error (-ENOMEM) *out is NULL and the caller
 * still owns tcp.
 */
int ws_conn_new(uv_tcp_t *tcp, const char *rest, size_t rest_len, const struct ws_opts *o,
		const struct ws_ops *ops, void *arg, struct ws_conn **out);

/*
 * Starts the timers, processes the leftover bytes (callbacks may run before
 * it returns) and starts reading.  Frames sent before this go out first.
 */
void ws_conn_start(struct ws_conn *c);

/*
 * Queues a frame; takes its own reference on b.  Returns 0, IM_ESHUTDOWN if
 * the connection is not OPEN, or IM_EFULL when the send queue overflowed: the
 * connection was closed (on_closing ran with WS_CLOSE_SLOW).
 */
int ws_conn_send(struct ws_conn *c, struct ws_buf *b);

/*
 * Writes now the data frames every connection holds for coalescing (they
 * would leave at the next loop iteration's prepare phase).  The server calls
 * it between the answers and the pushes of a commit, so an answer is not held
 * back behind a large fan-out.  Loop thread only.
 */
void ws_flush_queued(void);

/* Builds a text frame and sends it (same returns, or -ENOMEM). */
int ws_conn_send_text(struct ws_conn *c, const char *text, size_t len);

/*
 * Starts the close handshake (RFC 6455 §7.1.2): a close frame with `code`
 * after the frames already queued, then waits close_timeout_ms at most for
 * the peer's close frame or EOF.  No-op unless OPEN.
 */
void ws_conn_close(struct ws_conn *c, uint16_t code);

/* Closes the socket at once (pending frames are dropped).  No-op once CLOSED. */
void ws_conn_abort(struct ws_conn *c, enum ws_close_reason why);

/* True while OPEN. */
bool ws_conn_is_open(const struct ws_conn *c);

#endif
