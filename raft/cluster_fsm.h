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
	uint64_t snapshot_index;    /* last marker taken or restored */
	struct eng_result last_res; /* result of the entry being applied */
};

/* Points fsm's callbacks at st (fsm->data = st). */
void clu_fsm_init(struct raft_fsm *fsm, struct clu_fsm *st);

#endif
