/* routes_cluster.c - the cluster's admin calls: status, add and remove a node (admin only). */
#include <raft.h>
#include <stdio.h>

#include "api.h"
#include "cluster_node.h"

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
		char api[CLU_ADDR_MAX];
		if (!node_member_api(s, m->id, api))
			snprintf(api, sizeof(api), "%s", s->cfg->api_addr);
		json_object_set_new(o, "id", json_integer((json_int_t)m->id));
		json_object_set_new(o, "address", json_string(m->addr));
		json_object_set_new(o, "apiAddress", json_string(api));
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

/* A removal's target, told once the change is committed. */
struct removal {
	uint64_t id;
	char api[CLU_ADDR_MAX];
};

/* The cluster call's outcome: 0, or 1001 for a bad request, else 500 with the reason. */
static void change_done(void *data, int status, const char *msg)
{
	struct api_req *r = data;
	struct removal *rm = r->state;
	if (status == 0 && rm && rm->api[0])
		node_tell_removed(r->s, rm->id, rm->api);
	if (status == 0) {
		api_reply(r, json_pack("{s:s}", "result", msg));
		return;
	}
	bool args = status == IM_EINVAL || status == IM_EEXIST || status == IM_ENOTFOUND;
	api_fail(r, args ? OI_ARGS : OI_SERVER_INTERNAL, "%s", msg);
}

/* The common part of add and remove: checks, then clu_change on this node (the leader). */
static void cluster_change(struct api_req *r, struct clu_change_args *a)
{
	if (r->rt) {
		eng_read_end(
		    r->rt); /* the token check's snapshot: not held while the change runs */
		r->rt = NULL;
	}
	char err[256];
	int rv = clu_change(r->s->clu, a, change_done, r, err, sizeof(err));
	if (rv == IM_ENOTLEADER) {
		char api[CLU_ADDR_MAX];
		uint64_t lead = clu_leader_id(r->s->clu);
		if (lead == 0 || !node_member_api(r->s, lead, api))
			snprintf(api, sizeof(api), "unknown");
		api_fail(r, OI_SERVER_INTERNAL, "not the leader: node %llu leads at %s",
			 (unsigned long long)lead, api);
	} else if (rv != 0) {
		change_done(r, rv, err);
	}
}

/* Reads nodeID (required, > 0) into *id, or answers 1001. */
static bool node_id_arg(struct api_req *r, uint64_t *id)
{
	int64_t v = 0;
	bool present = false;
	if (!api_i64(r, r->body, "nodeID", &v, &present))
		return false;
	if (!present || v <= 0) {
		api_fail(r, OI_ARGS, "nodeID must be a positive integer");
		return false;
	}
	*id = (uint64_t)v;
	return true;
}

/* The cluster machinery runs here (a node started with cluster or join), or 500. */
static bool clustered(struct api_req *r)
{
	if (!api_require_admin(r))
		return false;
	if (r->s->node == NULL) {
		api_fail(r, OI_SERVER_INTERNAL,
			 "not a cluster node: start it with --cluster and --cluster-api");
		return false;
	}
	return true;
}

/*
 * {nodeID, address (Raft HOST:PORT), apiAddress (REST HOST:PORT), role
 * ("voter" default, "standby", "spare"), timeoutMs (the catch-up wait,
 * default 60000)}: makes the node a member with that role (raft/cluster.h
 * clu_change).  The node is started with --join first.  Answered when the
 * configuration holding it is committed.  On a node that does not lead:
 * 500 "not the leader: node N leads at HOST:PORT".
 */
static void cluster_add(struct api_req *r)
{
	if (!clustered(r))
		return;
	struct clu_change_args a = {.op = CLU_ADD, .role = RAFT_VOTER};
	struct im_str raft = {0}, api = {0}, role = {0};
	int64_t timeout = 0;
	bool has_timeout = false;
	if (!node_id_arg(r, &a.id) || !api_str(r, r->body, "address", &raft) ||
	    !api_str(r, r->body, "apiAddress", &api) || !api_str(r, r->body, "role", &role) ||
	    !api_i64(r, r->body, "timeoutMs", &timeout, &has_timeout))
		return;
	if (role.n == 0 || im_str_eq(role, im_str_c("voter")))
		a.role = RAFT_VOTER;
	else if (im_str_eq(role, im_str_c("standby")))
		a.role = RAFT_STANDBY;
	else if (im_str_eq(role, im_str_c("spare")))
		a.role = RAFT_SPARE;
	else {
		api_fail(r, OI_ARGS, "role must be voter, standby or spare");
		return;
	}
	if (has_timeout && (timeout < 1 || timeout > 3600000)) {
		api_fail(r, OI_ARGS, "timeoutMs must be in [1, 3600000]");
		return;
	}
	a.timeout_ms = (unsigned)timeout;
	/* The strings must be NUL-terminated for clu_change (the JSON's are). */
	char rbuf[CLU_ADDR_MAX], abuf[CLU_ADDR_MAX];
	if (raft.n == 0 || api.n == 0 || raft.n >= sizeof(rbuf) || api.n >= sizeof(abuf)) {
		api_fail(r, OI_ARGS, "address and apiAddress are required (HOST:PORT)");
		return;
	}
	snprintf(rbuf, sizeof(rbuf), "%.*s", (int)raft.n, raft.p);
	snprintf(abuf, sizeof(abuf), "%.*s", (int)api.n, api.p);
	a.raft_addr = rbuf;
	a.api_addr = abuf;
	cluster_change(r, &a);
}

/*
 * {nodeID}: takes the node out of the configuration; stop it afterwards.
 * Removing the leader hands leadership over first and answers 500 "not the
 * leader": send it again to the new leader (imlog cluster remove does).
 */
static void cluster_remove(struct api_req *r)
{
	if (!clustered(r))
		return;
	struct clu_change_args a = {.op = CLU_REMOVE};
	if (!node_id_arg(r, &a.id))
		return;
	struct removal *rm = im_calloc(1, sizeof(*rm));
	if (rm == NULL) {
		api_fail(r, OI_SERVER_INTERNAL, "out of memory");
		return;
	}
	rm->id = a.id;
	if (a.id != (uint64_t)r->s->cfg->node_id && !node_member_api(r->s, a.id, rm->api))
		rm->api[0] = '\0';
	r->state = rm;
	cluster_change(r, &a);
}

const struct api_route api_routes_cluster[] = {
    /* This node's own view, also without a leader (a partition is when it matters). */
    {"/cluster/status", cluster_status, API_NO_BARRIER | API_NODE_AUTH},
    /* Done by the leader, whose state is current. */
    {"/cluster/add", cluster_add, API_NO_BARRIER},
    {"/cluster/remove", cluster_remove, API_NO_BARRIER},
    {NULL, NULL, 0},
};
