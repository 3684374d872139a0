/* fsm.c - the engine as canonical/raft's state machine: apply, snapshot markers, restore.
 *
 * Invariants (numbers as in cluster.c):
 *  2. The engine's applied index equals raft_last_applied() after every apply
 *     that returned 0; entries at or below it are skipped by the engine.
 *  3. apply never returns non-zero for a command's own failure, only for
 *     storage failures (raft retries those).
 *  4. A snapshot marker names index I only after eng_sync() made the engine
 *     durable up to I.
 *  5. Restoring a marker at I ahead of the engine succeeds only once the
 *     install hook has put in place an engine whose applied index is >= I.
 */
#include "cluster_fsm.h"

#include <stdio.h>

#define SNAP_MAGIC 0x494d534e41503031ull /* "IMSNAP01" */

/* Scales the snapshot thresholds to the entries' sizes (struct clu_fsm.log_budget). */
static void tune_thresholds(struct clu_fsm *c, size_t len)
{
	if (c->log_budget == 0 || c->raft == NULL)
		return;
	/* mean_len is 16 x an exponential mean over about 64 entries. */
	c->mean_len = c->mean_len ? c->mean_len - c->mean_len / 64 + (uint64_t)len * 16 / 64
				  : (uint64_t)len * 16;
	if (++c->since_tune < 64)
		return;
	c->since_tune = 0;
	uint64_t mean = c->mean_len / 16 + 1;
	uint64_t total = c->log_budget / mean; /* entries the budget holds */
	uint64_t maxsum = (uint64_t)c->threshold_max + c->trailing_max;
	uint64_t thr = c->threshold_max, tr = c->trailing_max;
	if (total < maxsum) {
		thr = total * c->threshold_max / maxsum;
		tr = total * c->trailing_max / maxsum;
	}
	if (thr < 16)
		thr = 16;
	if (tr < 4)
		tr = 4;
	raft_set_snapshot_threshold(c->raft, (unsigned)thr);
	raft_set_snapshot_trailing(c->raft, (unsigned)tr);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct clu_fsm *c = fsm->data;
	/* While apply runs, raft_last_applied() is the previous index (toolchain.md). */
	uint64_t index = raft_last_applied(c->raft) + 1;
	memset(&c->last_res, 0, sizeof(c->last_res));
	/* Entries are zero-padded to 8 bytes (clu_propose); apply the command itself. */
	size_t len = eng_cmd_framed_len(buf->base, buf->len);
	int rv = eng_apply(c->eng, index, buf->base, len, &c->last_res);
	if (rv != 0) {
		IM_ERROR("apply index=%llu: %s (%s); apply stalls until storage recovers",
			 (unsigned long long)index, im_strerror(rv), eng_errmsg(c->eng));
		return RAFT_IOERR;
	}
	if (c->applied && !c->last_res.skipped)
		c->applied(c->install_arg, index, buf->base, len, &c->last_res);
	tune_thresholds(c, buf->len);
	*result = &c->last_res;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct clu_fsm *c = fsm->data;
	int rv = eng_sync(c->eng);
	if (rv != 0) {
		IM_ERROR("snapshot: eng_sync: %s (%s)", im_strerror(rv), eng_errmsg(c->eng));
		return RAFT_IOERR;
	}
	struct raft_buffer *b = raft_malloc(sizeof(*b));
	if (b == NULL)
		return RAFT_NOMEM;
	b->len = 16;
	b->base = raft_malloc(b->len);
	if (b->base == NULL) {
		raft_free(b);
		return RAFT_NOMEM;
	}
	im_put_be64(b->base, SNAP_MAGIC);
	im_put_be64((unsigned char *)b->base + 8, eng_applied_index(c->eng));
	c->snapshot_index = eng_applied_index(c->eng);
	*bufs = b;
	*n_bufs = 1;
	IM_DEBUG("snapshot marker at index %llu", (unsigned long long)eng_applied_index(c->eng));
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct clu_fsm *c = fsm->data;
	if (buf->len != 16 || im_get_be64(buf->base) != SNAP_MAGIC) {
		IM_ERROR("restore: not an imlog snapshot marker (%zu bytes)", buf->len);
		return RAFT_CORRUPT;
	}
	uint64_t index = im_get_be64((unsigned char *)buf->base + 8);
	uint64_t applied = eng_applied_index(c->eng);
	if (index > applied) {
		/* The data behind the marker is not here: a follower install (invariant 5). */
		IM_INFO("restore: snapshot at %llu is ahead of the engine at %llu: installing",
			(unsigned long long)index, (unsigned long long)applied);
		if (c->install == NULL || c->install(c->install_arg, index, &c->eng) != 0)
			return RAFT_IOERR;
		if (eng_applied_index(c->eng) < index) {
			IM_ERROR("restore: the installed engine is at %llu, behind %llu",
				 (unsigned long long)eng_applied_index(c->eng),
				 (unsigned long long)index);
			return RAFT_IOERR;
		}
		IM_INFO("restore: engine installed at index %llu",
			(unsigned long long)eng_applied_index(c->eng));
	}
	c->snapshot_index = index;
	raft_free(buf->base);
	return 0;
}

void clu_fsm_init(struct raft_fsm *fsm, struct clu_fsm *st)
{
	memset(fsm, 0, sizeof(*fsm));
	fsm->version = 1;
	fsm->data = st;
	fsm->apply = fsm_apply;
	fsm->snapshot = fsm_snapshot;
	fsm->restore = fsm_restore;
}
