/* loadgen.h - the load generator's shared state: options, connections, counters (loadgen.c runs
 * the connections and scenarios, lg_cli.c parses the options, sets up over REST and reports). */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <wslay/wslay.h>

#include "lg_hist.h"
#include "lg_rest.h"

#define PER_SOURCE  20000 /* connections per 127.0.0.x source address */
#define REG_BATCH   1000
#define TEXT_POOL   4096
#define ID_MAX	    64
#define OP_PLATFORM 5 /* Web, like the JS SDK */

#define LG_MIN(a, b) ((a) < (b) ? (a) : (b))

enum scenario { SC_SEND_ACK, SC_SEND_PUSH, SC_GROUP, SC_IDLE, SC_RECONNECT };

struct opts {
	enum scenario sc;
	char api_host[256], ws_host[256];
	int api_port, ws_port;
	const char *secret, *prefix;
	int conns, window, size, sources, handshakes;
	double seconds, warmup, rate;
	uint64_t seed;
	int groups, members, online, batch, count; /* group */
	double ping;				   /* idle: seconds between text pings */
	int per_client, senders;		   /* reconnect */
	int pid;				   /* the server's: RSS and CPU from /proc */
	bool no_setup;				   /* no REST calls (bench/echo) */
};

enum cstate { C_NEW, C_CONNECTING, C_HTTP, C_RESULT, C_OPEN, C_CLOSED };

struct conn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	struct lg *lg;
	int idx, group;
	enum cstate st;
	bool handle; /* tcp initialised, not closed yet */
	char user[ID_MAX];
	char *token;
	wslay_event_context_ptr ws;
	struct lg_buf head; /* the HTTP answer until "\r\n\r\n" */
	const uint8_t *rp;  /* bytes read, not yet handed to wslay */
	size_t rn;
	struct lg_buf out, wbuf; /* bytes to write; bytes in the write under way */
	bool writing;
	int outstanding;    /* requests without a reply */
	uint64_t next_ping; /* idle */
	uint64_t t_connect; /* reconnect: when this client's TCP connect started */
	int pulls;	    /* reconnect: 1001/1002 requests under way */
	int64_t pulled;	    /* reconnect: messages received by 1002 */
	int next_target;    /* reconnect senders: the receiver of the next message */
	uint64_t to_send;   /* reconnect senders: messages left */
};

struct stats {
	uint64_t sent, replies, acked, errors, pushes, self_pushes, foreign, bad;
	uint64_t acked_in_window, pushes_in_window;
	uint64_t complete, complete_in_window; /* group: messages every online member received */
	uint64_t pings, pongs;		       /* idle */
	uint64_t pulled, pull_reqs, caught, short_clients; /* reconnect */
	struct hist ack, push, last, catchup, storm;
	char first_error[200];
};

/* A sample of the server's /proc (with --pid). */
struct srvstat {
	bool ok;
	long rss_kib, hwm_kib, anon_kib;
	long tcp_mem_pages; /* the kernel's TCP buffers, all sockets (/proc/net/sockstat) */
	double cpu_s;
};

enum phase { P_CONNECT, P_LOAD, P_OFFLINE, P_SEND, P_STORM };

struct lg {
	uv_loop_t *loop;
	struct opts o;
	struct conn *c;
	int n;	   /* connections */
	int limit; /* connect_next opens connections below this index */
	int next_connect, connecting, ready, closed;
	enum phase phase;
	uv_timer_t tick, stop;
	uint64_t t0, m_start, m_end, k; /* k: messages scheduled (open loop) */
	uint64_t t_end, t_conn0, t_conn1, t_send0, t_send1, t_storm, t_caught;
	uint64_t nmsg; /* messages stamped (the middle field of the stamp) */
	uint32_t *got; /* group: deliveries per stamped message */
	size_t got_cap;
	int expect;	   /* group: deliveries that complete a message (online - 1) */
	bool serial;	   /* group with --rate 0: one message at a time, --count of them */
	int ping_next;	   /* idle: the next connection to ping (round robin) */
	double cpu0, cpu1; /* the generator's own CPU seconds at t0 and at the end */
	double build_s, token_s;
	struct srvstat s_setup, s_open, s_storm, s_end;
	bool sending, done;
	struct stats s;
	char text[TEXT_POOL + 1];
	struct lg_buf pb, b64, env; /* scratch for one message */
};

/* The one generator of the process (loadgen.c). */
extern struct lg G;

/* Scenario names, indexed by enum scenario. */
extern const char *const lg_sc_names[];

/* Ids: "<prefix>-<i>"; group members "<prefix>-<g>-<j>", groups "<prefix>-g<g>"; reconnect
 * senders "<prefix>-s<k>".  lg_member_name and lg_conn_name are lg_name_fn callbacks. */
void lg_group_id(int g, char *out, size_t n);
void lg_member_name(int i, char *out, size_t n, void *arg);
void lg_conn_name(int i, char *out, size_t n, void *arg);

/* Seconds from a to b (uv_hrtime values). */
double lg_secs(uint64_t a, uint64_t b);

/* lg_cli.c: the options into G.o (exits with usage on error); the REST setup of users, groups
 * and tokens (blocking, before the loop runs); the report on stdout after the loop. */
void lg_parse_opts(int argc, char **argv, struct opts *o);
void lg_setup(void);
void lg_report(void);

#endif
