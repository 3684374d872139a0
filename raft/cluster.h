/* cluster.h - the Raft glue: canonical/raft over raft_uv, with the engine as its state machine. */
#ifndef IM_CLUSTER_H
#define IM_CLUSTER_H

#include <raft.h>
#include <uv.h>

#include "common.h"
#include "engine.h"

/*
 * Every write of the server is a command (engine.h) proposed here.  The
 * command is appended to the Raft log (fsync'd by raft_uv on a quorum), then
 * applied to the engine on every node as the FSM.  The proposer's callback
 * runs after the entry is applied AND the engine batch holding it is
 * committed, so an answer given from the callback is durable (the log) and
 * visible to readers on this node (the engine): design.md promises 1 and 6.
 *
 * Group commit: callbacks of entries applied in one loop iteration are held
 * until a uv_check handle commits the engine batch once (eng_flush), then run.
 *
 * Snapshots (docs/cluster.md): the FSM snapshot is a 16-byte marker holding
 * the applied index, taken after eng_sync() has made the engine durable up to
 * that index, so the log before it can be dropped without copying any data
 * into memory.  Restoring a marker that is not ahead of the engine is a
 * no-op; a marker ahead of the engine (a follower installing a snapshot)
 * calls the `install` hook, which replaces the engine with a streamed copy of
 * a peer's LMDB environment at or past the marker.
 *
 * One code path: a single node is a one-voter cluster; a cluster is 2 to
 * CLU_MAX_MEMBERS voters bootstrapped from the same member list on every
 * node, or grown and shrunk at runtime (clu_change).  Loop thread only.
 *
 * Member addresses: each server of the Raft configuration carries
 * "RAFT_HOST:PORT;API_HOST:PORT", the address of its Raft transport and of
 * its REST API (which the node channel uses), so the API addresses are
 * replicated and changed together with the membership itself.  The Raft
 * transport here is raft_uv's TCP transport behind a thin wrapper that
 * hands it the part before ';'.  A configuration written by an older
 * version holds "RAFT_HOST:PORT" alone (no API address known from Raft).
 */

struct clu;

#define CLU_MAX_MEMBERS 7

/* Longest "RAFT_HOST:PORT;API_HOST:PORT" of a member. */
#define CLU_ADDR_MAX 128

/* A voter of the initial configuration. */
struct clu_member {
	uint64_t id;
	const char *addr;     /* "HOST:PORT" of its Raft transport */
	const char *api_addr; /* "HOST:PORT" of its REST API, or NULL */
};

struct clu_opts {
	uv_loop_t *loop;
	const char *dir;       /* Raft log directory (created if missing) */
	uint64_t id;	       /* this node's id (1 for a single node) */
	const char *addr;      /* "HOST:PORT" peers reach this node's Raft transport at */
	const char *bind_addr; /* "HOST:PORT" it binds to (NULL: addr) */
	const char *api_addr;  /* "HOST:PORT" peers reach this node's REST API at, or NULL */
	unsigned n_members;    /* voters bootstrapped on first start (0: just this node) */
	const struct clu_member *members;
	/*
	 * Never bootstrap: the node starts with whatever Raft log it has (none
	 * on a first start) and waits for a member's leader to add it
	 * (clu_change on the leader).
	 */
	bool join;
	unsigned election_timeout_ms; /* default 1000; heartbeats every tenth of it */
	struct eng *eng;	      /* the state machine; not owned */
	unsigned snapshot_threshold;  /* entries between snapshots (default 8192) */
	unsigned snapshot_trailing;   /* entries kept after a snapshot (default 2048) */
	uint64_t log_mem_budget;      /* bytes of log raft may hold in memory (0: unbounded) */
	size_t segment_size;	      /* raft_uv open segment size (default: library's) */
	/*
	 * Called after each engine commit for every event of the entries applied
	 * (messages to push), in log order, after the proposers' callbacks, so an
	 * answer always leaves before the push of the same message (§4.5).
	 */
	eng_event_cb on_event;
	/* Called after the answers of a commit and before its events (may be NULL). */
	void (*on_answered)(void *arg);
	/*
	 * Called once when this node can serve: it leads and has applied its
	 * whole log, or it follows a known leader and has applied everything it
	 * knows to be committed.
	 */
	void (*on_ready)(struct clu *c, void *arg);
	/*
	 * Restoring a snapshot at `index` ahead of the engine: replace *eng by an
	 * engine whose applied index is at least `index` (the old one is the
	 * hook's to close) and return 0, or return non-zero and leave *eng as it
	 * is (the snapshot is refused; the leader sends it again later).  Runs on
	 * the loop thread and may block it.  NULL: such snapshots are refused.
	 */
	int (*install)(struct clu *c, uint64_t index, struct eng **eng, void *arg);
	void *arg;
};

/*
 * Opens the log, bootstraps a one-voter configuration on first start, and
 * starts Raft.  Returns 0 or a project code with a message in err.
 */
int clu_start(const struct clu_opts *o, struct clu **out, char *err, size_t errlen);

/*
 * The index of the newest snapshot raft_uv keeps in the Raft directory dir
 * (from its snapshot-TERM-INDEX-TIME.meta file names), 0 when none.  Before
 * clu_start(), an engine behind it cannot start: raft restores that snapshot
 * first (see `install`).
 */
uint64_t clu_snapshot_on_disk(const char *dir);

struct clu_req;
/*
 * status: 0 when applied (the command's own outcome is in *res, whose code
 * may still be an error such as IM_EEXIST), or IM_ENOTLEADER / IM_ESHUTDOWN /
 * IM_ERAFT / IM_EFULL when the entry was not applied.
 */
typedef void (*clu_done_cb)(struct clu_req *req, int status, const struct eng_result *res);

/* A proposal.  Allocated by the caller; must stay alive until cb runs. */
struct clu_req {
	void *data;	/* for the caller */
	uint64_t index; /* the entry's log index, set before cb runs with status 0 */
	/* private */
	clu_done_cb cb;
	struct clu *clu;
	uint64_t t0; /* uv_now() when proposed: the lease a commit gives starts there */
	int status;
	struct eng_result res;
	struct clu_req *next;
	struct raft_apply apply;
};

/*
 * Proposes the encoded command in cmd (its bytes are copied into a raft
 * buffer; cmd is left to the caller).  If this returns 0 cb runs exactly once
 * later; otherwise it never runs.  Errors: IM_ENOTLEADER, IM_EREADONLY (the
 * engine refuses writes: storage full), IM_ESHUTDOWN, -ENOMEM, IM_ERAFT.
 */
int clu_propose(struct clu *c, struct clu_req *req, const void *cmd, size_t len, clu_done_cb cb);

/*
 * A wait for the engine to commit an index (a forwarded write applied on the
 * leader becomes visible here).  Allocated by the caller; must stay alive
 * until cb runs or clu_wait_cancel() returns.
 */
struct clu_wait {
	void *data; /* for the caller */
	/* private */
	uint64_t index;
	void (*cb)(struct clu_wait *w, int status);
	struct clu_wait *next;
};

/*
 * cb runs once, after an engine commit that covers index (status 0), or with
 * IM_ESHUTDOWN when the cluster closes.  It never runs from inside this call.
 * clu_applied() >= index means it would run at the next check.
 */
void clu_wait_applied(struct clu *c, struct clu_wait *w, uint64_t index,
		      void (*cb)(struct clu_wait *w, int status));
/*
 * Leader lease (reads on the leader without a round trip, Raft thesis §6.4.1):
 * followers refuse votes while they hear from a leader, and a voter only
 * starts an election an election timeout after the last message from it.
 * So once an entry this leader proposed at time t0 is committed, a majority
 * heard from it after t0, and no other leader can exist before t0 plus an
 * election timeout.  The lease runs until t0 + election timeout / 2 (the
 * margin covers clock rate differences), never across a term change or
 * during a leadership transfer.  Under a write load the writes keep it
 * fresh; otherwise clu_confirm() renews it with a nudge.
 */
bool clu_lease_valid(struct clu *c);

/*
 * cb runs once, later: status 0 when this node leads with a valid lease
 * (renewed by a nudge if needed), IM_ENOTLEADER when it does not lead (or
 * lost leadership meanwhile), IM_ESHUTDOWN when the cluster closes.  w as in
 * clu_wait_applied (its index is unused).
 */
void clu_confirm(struct clu *c, struct clu_wait *w, void (*cb)(struct clu_wait *w, int status));

/* The index this node's engine has committed everything up to (see clu_wait_applied). */
uint64_t clu_applied(struct clu *c);
/* Forgets a wait whose cb has not run (cb never runs then). */
void clu_wait_cancel(struct clu *c, struct clu_wait *w);

/*
 * A watch for a command's bytes.  A follower that forwarded a command learns
 * the outcome from its own apply of the same bytes (apply is deterministic),
 * so it can answer right after the engine commit that holds the entry and
 * before that commit's events are pushed: the ack of a send precedes its push
 * on this node too (§4.5), however the leader's answer and the local apply
 * interleave.  Allocated by the caller; cmd and res must stay valid until cb
 * runs or clu_watch_cancel() returns.
 */
struct clu_watch {
	void *data; /* for the caller */
	/* private */
	const void *cmd;
	size_t len;
	struct eng_result *res;
	uint64_t index;
	void (*cb)(struct clu_watch *w, uint64_t index);
	struct clu_watch *next;
};

/*
 * cb runs once, after the engine commit of the first entry applied from now
 * on whose bytes equal cmd, with its index (the result is in *res).  It never
 * runs if no such entry is applied here (an engine copy installed over it:
 * use clu_wait_applied), nor after clu_close() began.
 */
void clu_watch_cmd(struct clu *c, struct clu_watch *w, const void *cmd, size_t len,
		   struct eng_result *res, void (*cb)(struct clu_watch *w, uint64_t index));
/* Forgets a watch whose cb has not run. */
void clu_watch_cancel(struct clu *c, struct clu_watch *w);

/*
 * On the leader: makes the followers learn the current commit index now
 * rather than at the next heartbeat, by proposing an engine NOOP (one at a
 * time; a call while one is in flight proposes another when it is done).  A
 * follower answers a forwarded write only once it has applied it, and Raft
 * tells followers about commits in the next AppendEntries, so the leader
 * calls this after answering a forwarded write.  Does nothing elsewhere.
 */
void clu_nudge(struct clu *c);

/* Status for /cluster/status and logs. */
struct clu_member_status {
	uint64_t id;
	char addr[CLU_ADDR_MAX];     /* its Raft transport address */
	char api_addr[CLU_ADDR_MAX]; /* its REST API address ("" when the configuration has none) */
	int role;		     /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE */
	bool match_known;	     /* on the leader: match_index is the follower's progress */
	uint64_t match_index;	     /* highest entry known replicated on it */
};
struct clu_status {
	uint64_t id;
	uint64_t leader_id;
	uint64_t term;
	uint64_t last_index;
	uint64_t commit_index;
	uint64_t applied_index;	 /* raft's last applied */
	uint64_t engine_index;	 /* the engine's applied index (may pass raft's after an install) */
	uint64_t snapshot_index; /* the last snapshot (marker) taken or installed */
	int state;		 /* RAFT_FOLLOWER, RAFT_CANDIDATE, RAFT_LEADER, ... */
	bool ready;
	unsigned n_members;
	struct clu_member_status members[CLU_MAX_MEMBERS];
};
void clu_get_status(struct clu *c, struct clu_status *out);

/*
 * The REST API address of member id from the Raft configuration into out
 * (CLU_ADDR_MAX bytes): true, or false when id is not a member or its entry
 * has no API address.
 */
bool clu_member_api(struct clu *c, uint64_t id, char *out);

/*
 * Splits a configuration address "RAFT[;API]" into its parts (API "" when
 * absent).  Returns false if a part is not an IPv4 "HOST:PORT" or too long.
 */
bool clu_addr_split(const char *addr, char raft[CLU_ADDR_MAX], char api[CLU_ADDR_MAX]);

/*
 * Membership changes, on the leader, one at a time (Raft changes one server
 * per configuration entry).
 *
 * CLU_ADD makes server id a member with the given role at raft_addr and
 * api_addr: raft_add (as a spare), then raft_assign(standby), which starts
 * replicating to it (by log entries, or an engine copy if the log was
 * compacted past what it has), then, for a voter, waits until its match
 * index reaches the leader's last index of when it became a standby and
 * raft_assign(voter), whose catch-up rounds are then short.  Re-running an
 * add that stopped half way continues from the server's current role; an
 * id that is a member at another address is refused (IM_EEXIST: remove it
 * first).  The wait gives up after timeout_ms (the server stays a standby)
 * with -ETIMEDOUT.
 *
 * CLU_REMOVE takes server id out of the configuration (raft_remove); the
 * node itself should then be stopped.  Removing the leader itself first
 * hands leadership to the most up-to-date voter (raft_transfer) and fails
 * with IM_ENOTLEADER: send the removal to the new leader.  The last voter
 * cannot be removed (IM_EINVAL).
 *
 * On success cb runs once, later, with 0 when the configuration holding the
 * change is committed, or with an error and a message.  Returns 0, or an
 * error with a message in err (cb never runs then): IM_ENOTLEADER, IM_EPERM
 * (another change is in progress), IM_EINVAL, IM_ENOTFOUND (removing a
 * non-member), IM_EEXIST.
 */
enum clu_change_op { CLU_ADD = 1, CLU_REMOVE = 2 };
struct clu_change_args {
	enum clu_change_op op;
	uint64_t id;
	const char *raft_addr; /* CLU_ADD: "HOST:PORT" */
	const char *api_addr;  /* CLU_ADD: "HOST:PORT" */
	int role;	       /* CLU_ADD: RAFT_VOTER (the usual), RAFT_STANDBY or RAFT_SPARE */
	unsigned timeout_ms;   /* CLU_ADD: the catch-up wait (0: 60000) */
};
typedef void (*clu_change_cb)(void *data, int status, const char *msg);
int clu_change(struct clu *c, const struct clu_change_args *a, clu_change_cb cb, void *data,
	       char *err, size_t errlen);

/* The number of servers in the current Raft configuration (any role). */
unsigned clu_member_count(struct clu *c);

/* Raft's commit index on this node (a leader's covers every acknowledged write). */
uint64_t clu_commit_index(struct clu *c);

/*
 * On the leader, for a read barrier: an index such that every write
 * acknowledged anywhere so far is at or below it: the last engine entry
 * applied here that is not a nudge NOOP, and at least the last index of
 * the log when this term's leadership began (entries an earlier leader may
 * have acknowledged, which this leader may not know committed yet).  A
 * reader waits until its engine has it (clu_wait_applied).  0 when this node
 * does not lead.
 */
uint64_t clu_read_index(struct clu *c);
/*
 * clu_read_index() for a follower's read barrier: if that entry was applied
 * within the last heartbeat interval the follower may not know it is
 * committed yet, so this also nudges (clu_nudge) rather than leave it
 * waiting for the next heartbeat.  An idle cluster appends nothing; reads on
 * the leader itself use clu_read_index() and never append.
 */
uint64_t clu_read_index_remote(struct clu *c);
/* Forgets a clu_confirm() whose cb has not run. */
void clu_confirm_cancel(struct clu *c, struct clu_wait *w);

/* This node leads (proposals may succeed here). */
bool clu_is_leader(struct clu *c);
/* The leader's id as this node knows it, 0 when none is known. */
uint64_t clu_leader_id(struct clu *c);
/* The engine the cluster applies to now (it changes when a snapshot is installed). */
struct eng *clu_engine(struct clu *c);

/* Closes Raft; pending proposals fail with IM_ESHUTDOWN; cb runs when done and c is freed. */
void clu_close(struct clu *c, void (*cb)(void *arg), void *arg);

#endif
