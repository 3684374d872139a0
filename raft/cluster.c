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
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <raft/uv.h>

struct clu {
	uv_loop_t *loop;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
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

/* ---------------------------------------------------------------- FSM (fsm.c) */

/* Every applied entry: a watched command's bytes are matched here (in the batch, not committed). */
static void fsm_applied(void *arg, uint64_t index, const void *cmd, size_t len,
			const struct eng_result *res)
{
	struct clu *c = arg;
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
	req->index = ar->index;
	if (status == 0 && result != NULL)
		req->res = *(struct eng_result *)result;
	finish(req, clu__from_raft(status));
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
	/* Forwarded writes applied on the leader, now committed here (invariant 6). */
	uint64_t applied = eng_dirty(c->fs.eng) ? 0 : eng_applied_index(c->fs.eng);
	for (struct clu_wait **pw = &c->waits; *pw;) {
		struct clu_wait *w = *pw;
		if (w->index > applied && !c->closing) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		w->cb(w, w->index > applied ? IM_ESHUTDOWN : 0);
	}
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
	snprintf(c->addr, sizeof(c->addr), "%s", o->addr);

	rv = raft_uv_tcp_init(&c->transport, c->loop);
	if (rv != 0) {
		snprintf(err, errlen, "raft_uv_tcp_init: %s", raft_strerror(rv));
		goto err_after_alloc;
	}
	const char *bind = o->bind_addr ? o->bind_addr : c->addr;
	rv = raft_uv_tcp_set_bind_address(&c->transport, bind);
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
	 * Pre-vote (Raft thesis §9.6): a node that was cut off or blocked (for
	 * instance while installing an engine copy) does not raise the term and
	 * depose a healthy leader when it comes back.
	 */
	raft_set_pre_vote(&c->raft, true);

	/* The same member list on every node gives the same bootstrap configuration. */
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	if (o->n_members == 0)
		rv = raft_configuration_add(&conf, c->id, c->addr, RAFT_VOTER);
	else
		for (unsigned i = 0; i < o->n_members && rv == 0; i++)
			rv = raft_configuration_add(&conf, o->members[i].id, o->members[i].addr,
						    RAFT_VOTER);
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
	c->handles_open = 2;
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
	raft_uv_tcp_close(&c->transport);
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
	raft_uv_tcp_close(&c->transport);
	uv_close((uv_handle_t *)&c->check, handle_closed);
	uv_close((uv_handle_t *)&c->start_timer, handle_closed);
}

void clu_close(struct clu *c, void (*cb)(void *arg), void *arg)
{
	c->closing = true;
	c->close_cb = cb;
	c->close_arg = arg;
	c->raft.data = c;
	raft_close(&c->raft, raft_closed);
}
