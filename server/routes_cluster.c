/* routes_cluster.c - POST /cluster/status: this node's view of the Raft cluster (admin only). */
#include <raft.h>
#include <stdio.h>

#include "api.h"

static const char *state_name(int state)
{
	switch (state) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	default:
		return "unavailable";
	}
}

static const char *role_name(int role)
{
	switch (role) {
	case RAFT_VOTER:
		return "voter";
	case RAFT_STANDBY:
		return "standby";
	default:
		return "spare";
	}
}

/*
 * data: nodeID, leaderID, state, term, lastIndex, commitIndex, appliedIndex
 * (raft's), engineIndex (the engine's; ahead of raft's after an install),
 * snapshotIndex, ready, members[{id, address, apiAddress, role, matchIndex,
 * lag}].  matchIndex and lag are known on the leader only (raft 0.15 keeps
 * a follower's progress there); elsewhere they are -1.  With {"stateHash":
 * true} also stateHash (hex digest of the committed engine state, see
 * eng_state_hash) and stateIndex (the index it covers): equal indexes on two
 * nodes must give equal digests.
 */
static void cluster_status(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct srv *s = r->s;
	if (s->clu == NULL) {
		api_fail(r, OI_SERVER_INTERNAL, "no cluster");
		return;
	}
	bool want_hash = false;
	if (!api_bool(r, r->body, "stateHash", &want_hash, NULL))
		return;
	struct clu_status st;
	clu_get_status(s->clu, &st);
	json_t *d = json_object();
	if (want_hash) {
		if (r->rt) {
			eng_read_end(
			    r->rt); /* the token check's snapshot: the hash takes its own */
			r->rt = NULL;
		}
		uint64_t h = 0, at = 0;
		int rv = eng_state_hash(s->eng, &h, &at);
		if (rv != 0) {
			json_decref(d);
			api_fail_im(r, rv, "state hash");
			return;
		}
		char hex[17];
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)h);
		json_object_set_new(d, "stateHash", json_string(hex));
		json_object_set_new(d, "stateIndex", json_integer((json_int_t)at));
	}
	json_object_set_new(d, "nodeID", json_integer((json_int_t)st.id));
	json_object_set_new(d, "leaderID", json_integer((json_int_t)st.leader_id));
	json_object_set_new(d, "state", json_string(state_name(st.state)));
	json_object_set_new(d, "term", json_integer((json_int_t)st.term));
	json_object_set_new(d, "lastIndex", json_integer((json_int_t)st.last_index));
	json_object_set_new(d, "commitIndex", json_integer((json_int_t)st.commit_index));
	json_object_set_new(d, "appliedIndex", json_integer((json_int_t)st.applied_index));
	json_object_set_new(d, "engineIndex", json_integer((json_int_t)st.engine_index));
	json_object_set_new(d, "snapshotIndex", json_integer((json_int_t)st.snapshot_index));
	json_object_set_new(d, "ready", json_boolean(st.ready));
	json_t *ms = json_array();
	for (unsigned i = 0; i < st.n_members; i++) {
		const struct clu_member_status *m = &st.members[i];
		json_t *o = json_object();
		const char *api = cfg_member_api(s->cfg, (int64_t)m->id);
		json_object_set_new(o, "id", json_integer((json_int_t)m->id));
		json_object_set_new(o, "address", json_string(m->addr));
		json_object_set_new(o, "apiAddress", json_string(api ? api : s->cfg->api_addr));
		json_object_set_new(o, "role", json_string(role_name(m->role)));
		json_int_t match = m->match_known ? (json_int_t)m->match_index : -1;
		json_int_t lag = m->match_known && st.last_index >= m->match_index
				     ? (json_int_t)(st.last_index - m->match_index)
				     : -1;
		json_object_set_new(o, "matchIndex", json_integer(match));
		json_object_set_new(o, "lag", json_integer(lag));
		json_array_append_new(ms, o);
	}
	json_object_set_new(d, "members", ms);
	api_reply(r, d);
}

const struct api_route api_routes_cluster[] = {
    {"/cluster/status", cluster_status, 0},
    {NULL, NULL, 0},
};
