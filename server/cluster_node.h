/* cluster_node.h - the node-to-node channel: writes forwarded to the leader, engine copies
 * streamed. */
#ifndef IM_CLUSTER_NODE_H
#define IM_CLUSTER_NODE_H

#include "api.h"

/*
 * Nodes reach each other on their REST API ports (cfg cluster_api), under
 * /cluster/node/, with requests authenticated by an HMAC-SHA256 keyed on the
 * shared admin secret (docs/cluster.md).  Two requests exist:
 *
 *   POST /cluster/node/forward   body: an encoded engine command.  The
 *     leader proposes it and answers, once applied, with the log index and
 *     the eng_result (node_result_encode).  A follower then waits until its
 *     own engine has committed that index before answering its client, so
 *     clients read their writes on the node they talk to (design.md 6).
 *
 *   POST /cluster/node/readindex  (empty body) the leader answers with its
 *     commit index (node_result_encode); see node_read_barrier.
 *
 *   POST /cluster/node/snapshot  (Connection: upgrade) the node answers with
 *     a stream: "IMCOPY01", u64 size, the bytes of an mdb_env_copy2() of its
 *     engine, then u32 CRC-32 of those bytes.  A follower installing a
 *     snapshot ahead of its engine fetches this from the leader.
 *
 * Loop thread only, except where said.
 */

struct node;

/* Starts the forwarding client (a timer); the node serves /cluster/node/ once s->node is set. */
int node_start(struct srv *s, struct node **out);

/* Fails what is pending with IM_ESHUTDOWN and frees n once its handles are closed. */
void node_close(struct node *n);

/*
 * The srv->propose hook of a cluster: clu_propose() on the leader; on a
 * follower the command is forwarded to the leader (queued while no leader is
 * known, for at most forward_timeout_ms) and cb runs once this node's engine
 * has committed the entry.  Statuses as clu_propose's, plus IM_ENOTLEADER on
 * a timeout or a lost connection (the write may or may not have been applied:
 * clients retry, and sends are idempotent).
 */
int node_propose(struct srv *s, struct clu_req *req, const void *cmd, size_t len, clu_done_cb cb);

/*
 * The srv->read_barrier hook of a cluster (a read index, Raft thesis §6.4,
 * served by the leader this node follows): on a follower, asks the leader
 * for its commit index and runs cb (status 0) once this node's engine has
 * applied and committed up to it, so that whatever any node acknowledged
 * before the call is visible here: a client reads its writes on any node,
 * also right after moving to another.  Errors as node_propose's (no leader
 * within forward_timeout_ms: IM_ENOTLEADER).  Returns 0 (cb runs later),
 * 1 when there is nothing to wait for (this node leads: its engine holds
 * every acknowledged write), or an error (cb never runs).
 */
int node_read_barrier(struct srv *s, struct clu_req *req, clu_done_cb cb);

/*
 * The srv->kick_remote hook of a cluster: tells every other node to close its
 * connections of (user, platform; 0 = all) but those holding keep_token, with
 * POST /cluster/node/kick (fire and forget: a node that is down has no
 * connections, and the token is kicked in the replicated engine anyway).
 */
void node_kick_remote(struct srv *s, struct im_str user_id, int32_t platform_id,
		      struct im_str keep_token);

/*
 * The REST API address of member id into out: from the Raft configuration
 * (clu_member_api), else from the static cluster_api list.  False when
 * neither knows it.
 */
bool node_member_api(struct srv *s, uint64_t id, char out[CLU_ADDR_MAX]);

/*
 * Tells the node at addr that it is no longer member id (POST
 * /cluster/node/removed, fire and forget), after the configuration that
 * removed it was committed: it stops (srv->on_removed).
 */
void node_tell_removed(struct srv *s, uint64_t id, const char *addr);

/* Seconds a timestamped node request (snapshot, removed) may be off the receiver's clock. */
#define NODE_AUTH_SKEW_S 300

/*
 * A request signed with the cluster's secret for label: X-Imlog-Time (unix
 * seconds, within NODE_AUTH_SKEW_S of this node's clock) and X-Imlog-Auth =
 * node_auth(label, that time).  True when both hold; answers nothing.
 */
bool node_timed_auth_ok(struct srv *s, struct http_req *h, const char *label);

/* Fills the two headers of node_timed_auth_ok (each line ending in CRLF) into out. */
void node_timed_auth_headers(struct im_str secret, const char *label, char *out, size_t outlen);

/* Answers a request under /cluster/node/ (called by api_handle). */
void node_handle(struct srv *s, struct http_req *h);

/*
 * Fetches the engine copy of the node whose REST API is at addr into
 * dir/data.mdb (dir must exist and be empty), blocking: sockets with
 * timeouts, data written in 64 KiB pieces and fsync'd.  Only a leader
 * serves copies (others answer 503).  Returns 0 or a negative code with a
 * message in err.
 */
int node_fetch_copy(struct srv *s, const char *addr, const char *dir, char *err, size_t errlen);

/*
 * A blocking POST of body to http://addr/path with extra header lines
 * (each ending in CRLF, may be NULL) and Connection: close, for the command
 * line, with timeout_s on each socket operation.  Fills *status and the
 * answer's body.  0 or a negative code.
 */
int node_http_post(const char *addr, const char *path, const char *headers, const char *body,
		   int timeout_s, int *status, struct im_buf *out, char *err, size_t errlen);

/* The wire form of a forward answer: status, index and the eng_result. */
int node_result_encode(struct im_buf *out, int status, uint64_t index,
		       const struct eng_result *res);
int node_result_decode(const void *p, size_t len, int *status, uint64_t *index,
		       struct eng_result *res);

/* hex(HMAC-SHA256(secret, label "\n" data)) into out (65 bytes). */
void node_auth(struct im_str secret, const char *label, const void *data, size_t len, char out[65]);

/* Private, shared by cluster_fwd.c and cluster_snap.c. */
/* Checks X-Imlog-Auth against node_auth(label, data); answers 401 and returns false if wrong. */
bool node__auth_ok(struct srv *s, struct http_req *h, const char *label, const void *data,
		   size_t len);
/* Answers POST /cluster/node/snapshot: detaches the connection and streams an engine copy. */
void node__snapshot_serve(struct srv *s, struct http_req *h);

#endif
