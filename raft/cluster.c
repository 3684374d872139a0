/* cluster.c - canonical/raft 0.15 over raft_uv, with the engine as the FSM.
 *
 * Invariants:
 *  1. An entry's proposer hears back only after the entry is applied and the
 *     engine batch holding it is committed (eng_flush in the check handle).
 *  2. The engine's applied index equals raft_last_applied() after every apply
 *     that returned 0; entries at or below the engine's applied index are
 *     skipped by the engine itself (replay after restart).
 *  3. The FSM apply callback never returns non-zero for a command's own
 *     failure (raft would retry it forever): only for storage failures, which
 *     stall this node's apply until storage recovers (toolchain.md).
 *  4. A snapshot marker names index I only after eng_sync() made the engine
 *     durable up to I, so dropping log entries up to I loses nothing.
 *  5. Restoring a marker at I ahead of the engine succeeds only once the
 *     install hook has put in place an engine whose applied index is >= I
 *     (a copy of a peer's committed state, whose entries are committed and
 *     so identical here); the engine then skips the entries up to its own
 *     index when raft applies them (invariant 2).
 *  6. A wait (clu_wait_applied) fires only after an engine commit covering
 *     its index, so whoever it answers reads the write on this node.
 *
 * States of this glue:
 *   STARTING --(leader and barrier applied)--> READY --(clu_close)--> CLOSING
 */
#include "cluster.h"

#include "cluster_fsm.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <raft/uv.h>

/* The one membership change in progress (clu_change). */
struct clu_chg {
	bool active;
	bool waiting; /* CLU_ADD: the timer polls the new server's match index */
	struct clu_change_args a;
	char addr[CLU_ADDR_MAX]; /* the configuration address "RAFT;API" */
	uint64_t target;	 /* the match index a standby must reach to be promoted */
	uint64_t deadline;	 /* uv_now() ms when the catch-up wait gives up */
	struct raft_change rc;
	struct raft_transfer tr;
	clu_change_cb cb;
	void *data;
};

struct clu {
	uv_loop_t *loop;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport; /* the wrapper raft_uv uses */
	struct raft_uv_transport tcp;	    /* raft_uv's TCP transport behind it */
	raft_uv_accept_cb accept_cb;
	raft_uv_transport_close_cb transport_close_cb;
	char raft_addr[CLU_ADDR_MAX]; /* this node's Raft part of addr (tcp keeps a pointer) */
	uv_timer_t change_timer;
	struct clu_chg chg;
	/* clu_read_index: the last applied engine entry but nudges, and when; this term's start */
	uint64_t write_index, write_ms, read_term, term_start;
	uint64_t lease_until, lease_term; /* the leader lease (clu_lease_valid) */
	struct clu_wait *confirms;	  /* waiting for a valid lease (clu_confirm) */
	struct raft_fsm fsm;
	struct clu_fsm fs;	/* the FSM's state: fs.eng is the engine (replaced by installs) */
	uv_check_t check;	/* commits the engine batch, then answers */
	uv_timer_t start_timer; /* polls for leadership until ready */
	struct raft_barrier barrier;
	struct clu_req *done_head, *done_tail;	       /* applied, waiting for the flush */
	struct clu_wait *waits;			       /* waiting for an engine index */
	struct clu_watch *watches;		       /* waiting for a command's bytes */
	struct clu_watch *matched_head, *matched_tail; /* applied, waiting for the flush */
	int (*install)(struct clu *c, uint64_t index, struct eng **eng, void *arg);
	uint64_t id;
	bool ready;
	bool barrier_pending;
	bool nudging, nudge_again; /* a NOOP proposed by clu_nudge() is in flight / wanted again */
	struct clu_req nudge_req;
	unsigned char nudge_cmd[64];
	size_t nudge_len;
	bool closing;
	int handles_open;
	void (*on_ready)(struct clu *c, void *arg);
	eng_event_cb on_event;
	void (*on_answered)(void *arg);
	void *arg;
	void (*close_cb)(void *arg);
	void *close_arg;
	char addr[128];
};

/* Translates a raft error code; the one place that does (style.md). */
static int clu__from_raft(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case RAFT_NOMEM:
		return -ENOMEM;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		return IM_ENOTLEADER;
	case RAFT_SHUTDOWN:
		return IM_ESHUTDOWN;
	default:
		return IM_ERAFT;
	}
}

/* ---------------------------------------------------------------- addresses */

static bool ipv4_hostport(const char *p, size_t len)
{
	struct sockaddr_in sa;
	return len < CLU_ADDR_MAX && im_ipv4_parse(p, len, &sa) == 0;
}

bool clu_addr_split(const char *addr, char raft[CLU_ADDR_MAX], char api[CLU_ADDR_MAX])
{
	const char *semi = strchr(addr, ';');
	size_t rlen = semi ? (size_t)(semi - addr) : strlen(addr);
	if (!ipv4_hostport(addr, rlen) || (semi && !ipv4_hostport(semi + 1, strlen(semi + 1))))
		return false;
	memcpy(raft, addr, rlen);
	raft[rlen] = '\0';
	snprintf(api, CLU_ADDR_MAX, "%s", semi ? semi + 1 : "");
	return true;
}

/* The Raft part of a configuration address into out (the whole string if it does not parse). */
static void raft_part(const char *addr, char out[CLU_ADDR_MAX])
{
	char api[CLU_ADDR_MAX];
	if (!clu_addr_split(addr, out, api))
		snprintf(out, CLU_ADDR_MAX, "%s", addr);
}

/* ---------------------------------------------------------------- transport */

/*
 * raft_uv calls these with configuration addresses ("RAFT;API"); raft_uv's
 * TCP transport gets the Raft part.  Its callbacks get the wrapper back
 * (raft_uv keeps its state in the wrapper's data).
 */
static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct clu *c = t->impl;
	raft_part(address, c->raft_addr);
	int rv = c->tcp.init(&c->tcp, id, c->raft_addr);
	if (rv != 0)
		snprintf(t->errmsg, sizeof(t->errmsg), "%s", c->tcp.errmsg);
	return rv;
}

static void tr_accepted(struct raft_uv_transport *tcp, raft_id id, const char *address,
			struct uv_stream_s *stream)
{
	struct clu *c = tcp->data;
	c->accept_cb(&c->transport, id, address, stream);
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct clu *c = t->impl;
	c->accept_cb = cb;
	int rv = c->tcp.listen(&c->tcp, tr_accepted);
	if (rv != 0)
		snprintf(t->errmsg, sizeof(t->errmsg), "%s", c->tcp.errmsg);
	return rv;
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
		      const char *address, raft_uv_connect_cb cb)
{
	struct clu *c = t->impl;
	char raft[CLU_ADDR_MAX];
	raft_part(address, raft);
	int rv = c->tcp.connect(&c->tcp, req, id, raft, cb);
	if (rv != 0)
		snprintf(t->errmsg, sizeof(t->errmsg), "%s", c->tcp.errmsg);
	return rv;
}

static void tr_closed(struct raft_uv_transport *tcp)
{
	struct clu *c = tcp->data;
	c->transport_close_cb(&c->transport);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct clu *c = t->impl;
	c->transport_close_cb = cb;
	c->tcp.close(&c->tcp, tr_closed);
}

/* ---------------------------------------------------------------- FSM (fsm.c) */

/* Every applied entry: a watched command's bytes are matched here (in the batch, not committed). */
static void fsm_applied(void *arg, uint64_t index, const void *cmd, size_t len,
			const struct eng_result *res)
{
	struct clu *c = arg;
	if (c->nudge_len == 0 || len != c->nudge_len || memcmp(cmd, c->nudge_cmd, len) != 0) {
		c->write_index = index;
		c->write_ms = uv_now(c->loop);
	}
	for (struct clu_watch **pw = &c->watches; *pw; pw = &(*pw)->next) {
		struct clu_watch *w = *pw;
		if (w->len != len || memcmp(w->cmd, cmd, len) != 0)
			continue;
		*pw = w->next;
		*w->res = *res;
		w->index = index;
		w->next = NULL;
		if (c->matched_tail)
			c->matched_tail->next = w;
		else
			c->matched_head = w;
		c->matched_tail = w;
		return;
	}
}

/* The install hook of fsm.c, handed on to the server's. */
static int fsm_install(void *arg, uint64_t index, struct eng **eng)
{
	struct clu *c = arg;
	return c->install ? c->install(c, index, eng, c->arg) : IM_EINVAL;
}

/* ---------------------------------------------------------------- requests */

static void finish(struct clu_req *req, int status)
{
	req->status = status;
	req->next = NULL;
	struct clu *c = req->clu;
	if (c->done_tail)
		c->done_tail->next = req;
	else
		c->done_head = req;
	c->done_tail = req;
}

static void apply_cb(struct raft_apply *ar, int status, void *result)
{
	struct clu_req *req = ar->data;
	struct clu *c = req->clu;
	req->index = ar->index;
	if (status == 0 && result != NULL)
		req->res = *(struct eng_result *)result;
	if (status == 0 && raft_state(&c->raft) == RAFT_LEADER) {
		/* Committed in this term: a majority heard from this leader after t0. */
		uint64_t until = req->t0 + c->raft.election_timeout / 2;
		if (c->lease_term != c->raft.current_term || until > c->lease_until) {
			c->lease_term = c->raft.current_term;
			c->lease_until = until;
		}
	}
	finish(req, clu__from_raft(status));
}

bool clu_lease_valid(struct clu *c)
{
	/* The precise clock: the loop's cached one may lag behind after a long iteration. */
	return !c->closing && raft_state(&c->raft) == RAFT_LEADER && c->raft.transfer == NULL &&
	       c->lease_term == c->raft.current_term && uv_hrtime() / 1000000 < c->lease_until;
}

void clu_confirm(struct clu *c, struct clu_wait *w, void (*cb)(struct clu_wait *w, int status))
{
	w->index = 0;
	w->cb = cb;
	w->next = c->confirms;
	c->confirms = w;
	clu_nudge(c);
}

void clu_confirm_cancel(struct clu *c, struct clu_wait *w)
{
	for (struct clu_wait **pw = &c->confirms; *pw; pw = &(*pw)->next)
		if (*pw == w) {
			*pw = w->next;
			return;
		}
}

/* After a commit: confirmations are answered once the lease is valid or leadership is gone. */
static void confirms_check(struct clu *c)
{
	if (c->confirms == NULL)
		return;
	int status = c->closing				   ? IM_ESHUTDOWN
		     : clu_lease_valid(c)		   ? 0
		     : raft_state(&c->raft) != RAFT_LEADER ? IM_ENOTLEADER
							   : 1;
	if (status == 1) {
		clu_nudge(c); /* keep one in flight until the lease is back */
		return;
	}
	while (c->confirms) {
		struct clu_wait *w = c->confirms;
		c->confirms = w->next;
		w->cb(w, status);
	}
}

static void ignore_event(const struct eng_event *ev, void *arg)
{
	IM_UNUSED(ev);
	IM_UNUSED(arg);
}

/* Runs after each poll: one engine commit for everything applied, then the answers. */
static void check_cb(uv_check_t *h)
{
	struct clu *c = h->data;
	if (eng_dirty(c->fs.eng)) {
		int rv = eng_flush(c->fs.eng);
		if (rv != 0) {
			/* The batch is gone from memory; only a restart replays it. */
			IM_ERROR("engine commit failed: %s (%s); exiting to replay from the log",
				 im_strerror(rv), eng_errmsg(c->fs.eng));
			exit(70);
		}
	}
	while (c->done_head) {
		struct clu_req *req = c->done_head;
		c->done_head = req->next;
		if (c->done_head == NULL)
			c->done_tail = NULL;
		req->cb(req, req->status, req->status == 0 ? &req->res : NULL);
	}
	/* Forwarded writes whose bytes this node applied, now committed (before the pushes). */
	while (c->matched_head) {
		struct clu_watch *w = c->matched_head;
		c->matched_head = w->next;
		if (c->matched_head == NULL)
			c->matched_tail = NULL;
		w->cb(w, w->index);
	}
	/*
	 * Forwarded writes applied on the leader, now committed here (invariant
	 * 6).  Raft's applied index counts too: barrier and configuration
	 * entries never reach the engine, and everything up to it that did is
	 * in the commit above.
	 */
	uint64_t applied = clu_applied(c);
	for (struct clu_wait **pw = &c->waits; *pw;) {
		struct clu_wait *w = *pw;
		if (w->index > applied && !c->closing) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		w->cb(w, w->index > applied ? IM_ESHUTDOWN : 0);
	}
	confirms_check(c);
	/* Pushes after answers: the ack of a send precedes its push (§4.5). */
	if (c->on_answered)
		c->on_answered(c->arg);
	eng_events_drain(c->fs.eng, c->on_event ? c->on_event : ignore_event, c->arg);
}

int clu_propose(struct clu *c, struct clu_req *req, const void *cmd, size_t len, clu_done_cb cb)
{
	if (c->closing)
		return IM_ESHUTDOWN;
	if (raft_state(&c->raft) != RAFT_LEADER)
		return IM_ENOTLEADER;
	if (eng_full(c->fs.eng))
		return IM_EREADONLY;
	/*
	 * raft_uv's segment loader assumes every entry is padded to a multiple of
	 * 8 bytes (its data checksum covers the padded bytes): pad with zeros.
	 */
	size_t padded = (len + 7) & ~(size_t)7;
	struct raft_buffer buf = {.base = raft_malloc(padded), .len = padded};
	if (buf.base == NULL)
		return -ENOMEM;
	memcpy(buf.base, cmd, len);
	memset((char *)buf.base + len, 0, padded - len);
	memset(&req->res, 0, sizeof(req->res));
	req->t0 = uv_now(c->loop);
	req->cb = cb;
	req->clu = c;
	req->apply.data = req;
	int rv = raft_apply(&c->raft, &req->apply, &buf, 1, apply_cb);
	if (rv != 0) {
		raft_free(buf.base);
		return clu__from_raft(rv);
	}
	return 0;
}

void clu_wait_applied(struct clu *c, struct clu_wait *w, uint64_t index,
		      void (*cb)(struct clu_wait *w, int status))
{
	w->index = index;
	w->cb = cb;
	w->next = c->waits;
	c->waits = w;
}

void clu_watch_cmd(struct clu *c, struct clu_watch *w, const void *cmd, size_t len,
		   struct eng_result *res, void (*cb)(struct clu_watch *w, uint64_t index))
{
	w->cmd = cmd;
	w->len = len;
	w->res = res;
	w->cb = cb;
	w->next = c->watches;
	c->watches = w;
}

void clu_watch_cancel(struct clu *c, struct clu_watch *w)
{
	struct clu_watch **lists[] = {&c->watches, &c->matched_head};
	for (size_t i = 0; i < IM_ARRAY_LEN(lists); i++)
		for (struct clu_watch **pw = lists[i], *prev = NULL; *pw;
		     prev = *pw, pw = &(*pw)->next)
			if (*pw == w) {
				*pw = w->next;
				if (i == 1 && c->matched_tail == w)
					c->matched_tail = prev;
				return;
			}
}

void clu_wait_cancel(struct clu *c, struct clu_wait *w)
{
	for (struct clu_wait **pw = &c->waits; *pw; pw = &(*pw)->next)
		if (*pw == w) {
			*pw = w->next;
			return;
		}
}

static void nudge_done(struct clu_req *req, int status, const struct eng_result *res)
{
	IM_UNUSED(status);
	IM_UNUSED(res);
	struct clu *c = req->data;
	c->nudging = false;
	if (c->nudge_again && !c->closing) {
		c->nudge_again = false;
		clu_nudge(c);
	}
}

void clu_nudge(struct clu *c)
{
	if (c->closing || raft_state(&c->raft) != RAFT_LEADER)
		return;
	if (c->nudging) {
		c->nudge_again = true;
		return;
	}
	if (c->nudge_len == 0) {
		struct eng_cmd cmd = {.type = ENG_CMD_NOOP};
		struct im_buf b = {0};
		if (eng_cmd_encode(&cmd, &b) != 0 || b.len > sizeof(c->nudge_cmd)) {
			im_buf_free(&b);
			return;
		}
		memcpy(c->nudge_cmd, b.p, b.len);
		c->nudge_len = b.len;
		im_buf_free(&b);
	}
	c->nudge_req.data = c;
	if (clu_propose(c, &c->nudge_req, c->nudge_cmd, c->nudge_len, nudge_done) == 0)
		c->nudging = true;
}

unsigned clu_member_count(struct clu *c)
{
	return c->raft.configuration.n;
}

uint64_t clu_commit_index(struct clu *c)
{
	return c->raft.commit_index;
}

uint64_t clu_read_index(struct clu *c)
{
	if (!clu_is_leader(c))
		return 0;
	if (c->read_term != c->raft.current_term) {
		c->read_term = c->raft.current_term;
		c->term_start = raft_last_index(&c->raft);
	}
	return IM_MAX(c->write_index, c->term_start);
}

uint64_t clu_read_index_remote(struct clu *c)
{
	uint64_t idx = clu_read_index(c);
	if (idx != 0 && (c->raft.commit_index < idx ||
			 uv_now(c->loop) - c->write_ms <= c->raft.heartbeat_timeout))
		clu_nudge(c);
	return idx;
}

uint64_t clu_applied(struct clu *c)
{
	if (eng_dirty(c->fs.eng))
		return 0;
	return IM_MAX(eng_applied_index(c->fs.eng), raft_last_applied(&c->raft));
}

bool clu_is_leader(struct clu *c)
{
	return !c->closing && raft_state(&c->raft) == RAFT_LEADER;
}

uint64_t clu_leader_id(struct clu *c)
{
	raft_id id = 0;
	const char *addr;
	if (c->closing)
		return 0;
	raft_leader(&c->raft, &id, &addr);
	return id;
}

struct eng *clu_engine(struct clu *c)
{
	return c->fs.eng;
}

/* ---------------------------------------------------------------- start */

static void barrier_cb(struct raft_barrier *b, int status)
{
	struct clu *c = b->data;
	c->barrier_pending = false;
	if (status != 0) {
		IM_WARN("start barrier failed: %s; retrying", raft_strerror(status));
		return; /* the start timer tries again */
	}
	if (!c->ready) {
		c->ready = true;
		uv_timer_stop(&c->start_timer);
		IM_INFO("raft node %llu ready at index %llu", (unsigned long long)c->id,
			(unsigned long long)b->index);
		if (c->on_ready)
			c->on_ready(c, c->arg);
	}
}

/* Until ready: once this node leads, a barrier tells when its whole log is applied. */
static void start_timer_cb(uv_timer_t *t)
{
	struct clu *c = t->data;
	if (c->ready || c->barrier_pending || c->closing)
		return;
	if (raft_state(&c->raft) == RAFT_FOLLOWER) {
		/* A follower serves once it knows a leader and has applied what it knows committed.
		 */
		if (clu_leader_id(c) == 0 || c->raft.last_applied < c->raft.commit_index ||
		    eng_dirty(c->fs.eng))
			return;
		c->ready = true;
		uv_timer_stop(&c->start_timer);
		IM_INFO("raft node %llu ready as a follower of %llu at index %llu",
			(unsigned long long)c->id, (unsigned long long)clu_leader_id(c),
			(unsigned long long)c->raft.last_applied);
		if (c->on_ready)
			c->on_ready(c, c->arg);
		return;
	}
	if (raft_state(&c->raft) != RAFT_LEADER)
		return;
	c->barrier.data = c;
	if (raft_barrier(&c->raft, &c->barrier, barrier_cb) == 0)
		c->barrier_pending = true;
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int clu_start(const struct clu_opts *o, struct clu **out, char *err, size_t errlen)
{
	*out = NULL;
	int rv = mkdir_p(o->dir);
	if (rv != 0) {
		snprintf(err, errlen, "mkdir %s: %s", o->dir, im_strerror(rv));
		return rv;
	}
	struct clu *c = im_calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->loop = o->loop;
	c->fs.eng = o->eng;
	c->fs.raft = &c->raft;
	c->fs.install = fsm_install;
	c->fs.install_arg = c;
	c->fs.applied = fsm_applied;
	c->id = o->id ? o->id : 1;
	c->on_ready = o->on_ready;
	c->on_event = o->on_event;
	c->on_answered = o->on_answered;
	c->install = o->install;
	c->arg = o->arg;
	if (o->api_addr && o->api_addr[0])
		snprintf(c->addr, sizeof(c->addr), "%s;%s", o->addr, o->api_addr);
	else
		snprintf(c->addr, sizeof(c->addr), "%s", o->addr);

	rv = raft_uv_tcp_init(&c->tcp, c->loop);
	if (rv != 0) {
		snprintf(err, errlen, "raft_uv_tcp_init: %s", raft_strerror(rv));
		goto err_after_alloc;
	}
	c->tcp.data = c;
	c->transport = (struct raft_uv_transport){.impl = c,
						  .init = tr_init,
						  .listen = tr_listen,
						  .connect = tr_connect,
						  .close = tr_close};
	const char *bind = o->bind_addr ? o->bind_addr : o->addr;
	rv = raft_uv_tcp_set_bind_address(&c->tcp, bind);
	if (rv != 0) {
		snprintf(err, errlen, "raft bind address %s: %s", bind, raft_strerror(rv));
		goto err_after_transport;
	}
	rv = raft_uv_init(&c->io, c->loop, o->dir, &c->transport);
	if (rv != 0) {
		snprintf(err, errlen, "raft_uv_init %s: %s", o->dir, c->io.errmsg);
		goto err_after_transport;
	}
	if (o->segment_size)
		raft_uv_set_segment_size(&c->io, o->segment_size);

	clu_fsm_init(&c->fsm, &c->fs);
	rv = raft_init(&c->raft, &c->io, &c->fsm, c->id, c->addr);
	if (rv != 0) {
		snprintf(err, errlen, "raft_init: %s", raft_errmsg(&c->raft));
		goto err_after_io;
	}
	c->fs.threshold_max = o->snapshot_threshold ? o->snapshot_threshold : 8192;
	c->fs.trailing_max = o->snapshot_trailing ? o->snapshot_trailing : 2048;
	c->fs.log_budget = o->log_mem_budget;
	raft_set_snapshot_threshold(&c->raft, c->fs.threshold_max);
	raft_set_snapshot_trailing(&c->raft, c->fs.trailing_max);
	unsigned et = o->election_timeout_ms ? o->election_timeout_ms : 1000;
	raft_set_election_timeout(&c->raft, et);
	raft_set_heartbeat_timeout(&c->raft, et / 10 ? et / 10 : 1);
	/*
	 * A snapshot marker sent to a node that was down is lost, and raft 0.15
	 * waits install_snapshot_timeout (30 s by default) before it sends
	 * another: a restarted follower would wait that long.  The marker is 16
	 * bytes (the data streams separately), so resending it soon is cheap; a
	 * second marker reaching a follower that has installed is a no-op.
	 */
	raft_set_install_snapshot_timeout(&c->raft, IM_MAX(3 * et, 1000u));
	/*
	 * Pre-vote (Raft thesis §9.6): a node that was cut off or blocked (for
	 * instance while installing an engine copy) does not raise the term and
	 * depose a healthy leader when it comes back.
	 */
	raft_set_pre_vote(&c->raft, true);

	/* The same member list on every node gives the same bootstrap configuration. */
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	if (o->join)
		rv = RAFT_CANTBOOTSTRAP; /* a member's leader adds this node */
	else if (o->n_members == 0)
		rv = raft_configuration_add(&conf, c->id, c->addr, RAFT_VOTER);
	else
		for (unsigned i = 0; i < o->n_members && rv == 0; i++) {
			char a[CLU_ADDR_MAX];
			const char *api = o->members[i].api_addr;
			snprintf(a, sizeof(a), "%s%s%s", o->members[i].addr, api ? ";" : "",
				 api ? api : "");
			rv = raft_configuration_add(&conf, o->members[i].id, a, RAFT_VOTER);
		}
	if (rv == 0)
		rv = raft_bootstrap(&c->raft, &conf);
	raft_configuration_close(&conf);
	IM_DEBUG("raft_bootstrap: %s", rv ? raft_strerror(rv) : "new cluster");
	if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
		snprintf(err, errlen, "raft_bootstrap: %s", raft_strerror(rv));
		goto err_after_raft;
	}
	rv = raft_start(&c->raft);
	if (rv != 0) {
		snprintf(err, errlen, "raft_start: %s", raft_errmsg(&c->raft));
		goto err_after_raft;
	}

	uv_check_init(c->loop, &c->check);
	c->check.data = c;
	uv_check_start(&c->check, check_cb);
	uv_timer_init(c->loop, &c->start_timer);
	c->start_timer.data = c;
	uv_timer_start(&c->start_timer, start_timer_cb, 0, 10);
	uv_timer_init(c->loop, &c->change_timer);
	c->change_timer.data = c;
	c->handles_open = 3;
	*out = c;
	return 0;

err_after_raft:
	/* raft_init succeeded: the instance must be closed asynchronously. */
	c->closing = true;
	raft_close(&c->raft, NULL);
	return IM_ERAFT; /* c and io are released by the loop; leaked on purpose at exit */
err_after_io:
	raft_uv_close(&c->io);
err_after_transport:
	raft_uv_tcp_close(&c->tcp);
err_after_alloc:
	im_free(c);
	return IM_ERAFT;
}

uint64_t clu_snapshot_on_disk(const char *dir)
{
	DIR *d = opendir(dir);
	uint64_t best = 0;
	if (d == NULL)
		return 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		unsigned long long term, index, ts;
		int used = 0;
		if (sscanf(de->d_name, "snapshot-%llu-%llu-%llu.meta%n", &term, &index, &ts,
			   &used) == 3 &&
		    de->d_name[used] == '\0' && index > best)
			best = index;
	}
	closedir(d);
	return best;
}

void clu_get_status(struct clu *c, struct clu_status *out)
{
	memset(out, 0, sizeof(*out));
	out->id = c->id;
	const char *addr;
	raft_id leader = 0;
	raft_leader(&c->raft, &leader, &addr);
	out->leader_id = leader;
	out->term = c->raft.current_term;
	out->last_index = raft_last_index(&c->raft);
	out->commit_index = c->raft.commit_index;
	out->applied_index = raft_last_applied(&c->raft);
	out->engine_index = eng_applied_index(c->fs.eng);
	out->snapshot_index = c->fs.snapshot_index;
	out->state = raft_state(&c->raft);
	out->ready = c->ready;
	/*
	 * The configuration and, on the leader, each follower's match index come
	 * from struct raft's fields (raft.h declares them; 0.15 has no accessor).
	 */
	const struct raft_configuration *conf = &c->raft.configuration;
	for (unsigned i = 0; i < conf->n && i < CLU_MAX_MEMBERS; i++) {
		struct clu_member_status *m = &out->members[out->n_members++];
		m->id = conf->servers[i].id;
		if (!clu_addr_split(conf->servers[i].address, m->addr, m->api_addr))
			snprintf(m->addr, sizeof(m->addr), "%s", conf->servers[i].address);
		m->role = conf->servers[i].role;
		if (out->state == RAFT_LEADER && c->raft.leader_state.progress != NULL) {
			m->match_known = true;
			m->match_index = m->id == c->id
					     ? out->last_index
					     : c->raft.leader_state.progress[i].match_index;
		}
	}
}

bool clu_member_api(struct clu *c, uint64_t id, char *out)
{
	const struct raft_configuration *conf = &c->raft.configuration;
	char raft[CLU_ADDR_MAX];
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id)
			return clu_addr_split(conf->servers[i].address, raft, out) &&
			       out[0] != '\0';
	return false;
}

/* ---------------------------------------------------------------- membership */

static const struct raft_server *conf_server(struct clu *c, uint64_t id, unsigned *index)
{
	const struct raft_configuration *conf = &c->raft.configuration;
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id) {
			if (index)
				*index = i;
			return &conf->servers[i];
		}
	return NULL;
}

static void chg_finish(struct clu *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void chg_finish(struct clu *c, int status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	uv_timer_stop(&c->change_timer);
	struct clu_chg *g = &c->chg;
	g->active = g->waiting = false;
	if (status == 0)
		IM_INFO("membership: %s", msg);
	else
		IM_WARN("membership change failed: %s", msg);
	g->cb(g->data, status, msg);
}

static void chg_step(struct clu *c);

static void chg_raft_cb(struct raft_change *rc, int status)
{
	struct clu *c = rc->data;
	if (status != 0) {
		chg_finish(c, clu__from_raft(status), "node %llu: %s",
			   (unsigned long long)c->chg.a.id, raft_strerror(status));
		return;
	}
	if (c->chg.a.op == CLU_REMOVE) {
		chg_finish(c, 0, "node %llu removed", (unsigned long long)c->chg.a.id);
		return;
	}
	chg_step(c);
}

static void chg_timer_cb(uv_timer_t *t)
{
	chg_step(t->data);
}

static void chg_transfer_cb(struct raft_transfer *tr)
{
	struct clu *c = tr->data;
	uint64_t lead = clu_leader_id(c);
	if (raft_state(&c->raft) != RAFT_LEADER)
		chg_finish(c, IM_ENOTLEADER,
			   "not the leader: leadership handed to node %llu, send the removal of "
			   "node %llu there",
			   (unsigned long long)lead, (unsigned long long)c->chg.a.id);
	else
		chg_finish(c, IM_ERAFT, "handing leadership over failed: try again");
}

/*
 * One step of an add: from the server's role in the current configuration
 * to the next (absent -> spare -> standby -> caught up -> voter), or done.
 */
static void chg_step(struct clu *c)
{
	struct clu_chg *g = &c->chg;
	unsigned long long id = g->a.id;
	if (c->closing) {
		chg_finish(c, IM_ESHUTDOWN, "node %llu: shutting down", id);
		return;
	}
	if (raft_state(&c->raft) != RAFT_LEADER) {
		chg_finish(c, IM_ENOTLEADER,
			   "not the leader: this node lost leadership while adding node %llu", id);
		return;
	}
	g->rc.data = c;
	unsigned i;
	const struct raft_server *srv = conf_server(c, g->a.id, &i);
	int rv;
	if (srv == NULL) {
		rv = raft_add(&c->raft, &g->rc, g->a.id, g->addr, chg_raft_cb);
	} else if (strcmp(srv->address, g->addr) != 0) {
		chg_finish(c, IM_EEXIST, "node %llu is a member at %s: remove it first", id,
			   srv->address);
		return;
	} else if (srv->role == g->a.role) {
		chg_finish(c, 0, "node %llu is a %s at %s", id,
			   g->a.role == RAFT_VOTER     ? "voter"
			   : g->a.role == RAFT_STANDBY ? "standby"
						       : "spare",
			   g->addr);
		return;
	} else if (g->a.role != RAFT_VOTER || srv->role == RAFT_SPARE) {
		rv = raft_assign(&c->raft, &g->rc, g->a.id,
				 g->a.role == RAFT_SPARE ? RAFT_SPARE : RAFT_STANDBY, chg_raft_cb);
	} else {
		/* A standby on its way to voter: wait until it has caught up. */
		uint64_t match = c->raft.leader_state.progress[i].match_index;
		if (!g->waiting) {
			g->waiting = true;
			g->target = raft_last_index(&c->raft);
			g->deadline = uv_now(c->loop) + g->a.timeout_ms;
			IM_INFO(
			    "membership: node %llu is a standby; promoting once it has index %llu",
			    id, (unsigned long long)g->target);
		}
		if (match < g->target) {
			if (uv_now(c->loop) >= g->deadline) {
				chg_finish(c, -ETIMEDOUT,
					   "node %llu did not catch up within %u ms (at %llu of "
					   "%llu): left a standby",
					   id, g->a.timeout_ms, (unsigned long long)match,
					   (unsigned long long)g->target);
				return;
			}
			uv_timer_start(&c->change_timer, chg_timer_cb, 50, 0);
			return;
		}
		rv = raft_assign(&c->raft, &g->rc, g->a.id, RAFT_VOTER, chg_raft_cb);
	}
	if (rv != 0)
		chg_finish(c, clu__from_raft(rv), "node %llu: %s", id, raft_errmsg(&c->raft));
}

int clu_change(struct clu *c, const struct clu_change_args *a, clu_change_cb cb, void *data,
	       char *err, size_t errlen)
{
	if (c->closing) {
		snprintf(err, errlen, "shutting down");
		return IM_ESHUTDOWN;
	}
	if (raft_state(&c->raft) != RAFT_LEADER) {
		snprintf(err, errlen, "not the leader (node %llu leads)",
			 (unsigned long long)clu_leader_id(c));
		return IM_ENOTLEADER;
	}
	if (c->chg.active || c->raft.leader_state.change != NULL) {
		snprintf(err, errlen, "another membership change is in progress");
		return IM_EPERM;
	}
	if (a->id == 0) {
		snprintf(err, errlen, "node id 0");
		return IM_EINVAL;
	}
	struct clu_chg *g = &c->chg;
	memset(g, 0, sizeof(*g));
	g->a = *a;
	g->cb = cb;
	g->data = data;
	g->rc.data = c;
	if (a->op == CLU_ADD) {
		char r[CLU_ADDR_MAX], api[CLU_ADDR_MAX];
		int n = snprintf(g->addr, sizeof(g->addr), "%s;%s",
				 a->raft_addr ? a->raft_addr : "", a->api_addr ? a->api_addr : "");
		if (n >= (int)sizeof(g->addr) || !clu_addr_split(g->addr, r, api) || !api[0]) {
			snprintf(err, errlen, "addresses must be IPv4 HOST:PORT");
			return IM_EINVAL;
		}
		if (a->role != RAFT_VOTER && a->role != RAFT_STANDBY && a->role != RAFT_SPARE) {
			snprintf(err, errlen, "bad role %d", a->role);
			return IM_EINVAL;
		}
		const struct raft_server *srv = conf_server(c, a->id, NULL);
		if (srv == NULL && c->raft.configuration.n >= CLU_MAX_MEMBERS) {
			snprintf(err, errlen, "a cluster has at most %d members", CLU_MAX_MEMBERS);
			return IM_EINVAL;
		}
		if (srv && strcmp(srv->address, g->addr) != 0) {
			snprintf(err, errlen, "node %llu is a member at %s: remove it first",
				 (unsigned long long)a->id, srv->address);
			return IM_EEXIST;
		}
		if (g->a.timeout_ms == 0)
			g->a.timeout_ms = 60000;
		g->active = true;
		chg_step(c);
		return 0;
	}
	if (a->op != CLU_REMOVE) {
		snprintf(err, errlen, "bad operation");
		return IM_EINVAL;
	}
	const struct raft_server *srv = conf_server(c, a->id, NULL);
	if (srv == NULL) {
		snprintf(err, errlen, "node %llu is not a member", (unsigned long long)a->id);
		return IM_ENOTFOUND;
	}
	unsigned voters = 0;
	for (unsigned i = 0; i < c->raft.configuration.n; i++)
		voters += c->raft.configuration.servers[i].role == RAFT_VOTER;
	if (srv->role == RAFT_VOTER && voters == 1) {
		snprintf(err, errlen, "node %llu is the last voter", (unsigned long long)a->id);
		return IM_EINVAL;
	}
	int rv;
	g->active = true;
	if (a->id == c->id) {
		/* Hand leadership to the most up-to-date voter; the removal is its to do. */
		g->tr.data = c;
		rv = raft_transfer(&c->raft, &g->tr, 0, chg_transfer_cb);
	} else {
		rv = raft_remove(&c->raft, &g->rc, a->id, chg_raft_cb);
	}
	if (rv != 0) {
		g->active = false;
		snprintf(err, errlen, "%s", raft_errmsg(&c->raft));
		return clu__from_raft(rv);
	}
	return 0;
}

/* ---------------------------------------------------------------- close */

static void maybe_done(struct clu *c)
{
	if (c->handles_open > 0)
		return;
	void (*cb)(void *) = c->close_cb;
	void *arg = c->close_arg;
	im_free(c);
	if (cb)
		cb(arg);
}

static void handle_closed(uv_handle_t *h)
{
	struct clu *c = h->data;
	c->handles_open--;
	maybe_done(c);
}

static void raft_closed(struct raft *r)
{
	struct clu *c = r->data;
	/* Answers for entries applied during shutdown, then the failures. */
	check_cb(&c->check);
	raft_uv_close(&c->io);
	raft_uv_tcp_close(&c->tcp);
	uv_close((uv_handle_t *)&c->check, handle_closed);
	uv_close((uv_handle_t *)&c->change_timer, handle_closed);
	uv_close((uv_handle_t *)&c->start_timer, handle_closed);
}

void clu_close(struct clu *c, void (*cb)(void *arg), void *arg)
{
	c->closing = true;
	/* A change waiting on the timer fails now; one inside raft fails when raft closes it. */
	if (c->chg.active && c->chg.waiting && uv_is_active((uv_handle_t *)&c->change_timer))
		chg_finish(c, IM_ESHUTDOWN, "node %llu: shutting down",
			   (unsigned long long)c->chg.a.id);
	c->close_cb = cb;
	c->close_arg = arg;
	c->raft.data = c;
	raft_close(&c->raft, raft_closed);
}
