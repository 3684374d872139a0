/* cluster_fsm.h - the engine as a raft_fsm; private to raft/ and its tests (raft_fixture). */
#ifndef IM_CLUSTER_FSM_H
#define IM_CLUSTER_FSM_H

#include <raft.h>

#include "common.h"
#include "engine.h"

/*
 * The state behind the FSM callbacks.  The caller fills raft (before raft
 * applies anything), eng, and optionally install; the FSM updates eng when an
 * install replaces the engine, and snapshot_index.  Apply leaves the engine's
 * batch open: whoever drives raft commits it (eng_flush) before answering.
 */
struct clu_fsm {
	struct raft *raft;
	struct eng *eng;
	/*
	 * A snapshot marker at index is ahead of eng: replace *eng by an engine
	 * at index or later (closing the old one) and return 0, or return
	 * non-zero and leave *eng (the snapshot is refused).  NULL: refused.
	 */
	int (*install)(void *arg, uint64_t index, struct eng **eng);
	void *install_arg;
	/* Called after each entry eng_apply() applied (not skipped), with its bytes and result. */
	void (*applied)(void *arg, uint64_t index, const void *cmd, size_t len,
			const struct eng_result *res);
	uint64_t snapshot_index; /* last marker taken or restored */
	/*
	 * Raft keeps the entries since the last snapshot in memory, and 0.15
	 * counts them, not their bytes: the thresholds are scaled down from
	 * these maxima so that (threshold + trailing) x the mean entry size
	 * stays near log_budget bytes (0: no scaling).  promise 7.
	 */
	uint64_t log_budget;
	unsigned threshold_max, trailing_max;
	uint64_t mean_len; /* running mean of the entry sizes (bytes x 16) */
	unsigned since_tune;
	struct eng_result last_res; /* result of the entry being applied */
};

/* Points fsm's callbacks at st (fsm->data = st). */
void clu_fsm_init(struct raft_fsm *fsm, struct clu_fsm *st);

#endif
