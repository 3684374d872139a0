/* config.h - the one configuration table: defaults, file, environment, flags. */
#ifndef IM_CONFIG_H
#define IM_CONFIG_H

#include "common.h"

#define CFG_MAX_ADMINS	16
#define CFG_MAX_MEMBERS 7

/* A cluster member: its Raft id and an address (Raft transport or REST API). */
struct cfg_member {
	int64_t id;
	char addr[128];
};

struct cfg {
	char data_dir[1024];
	char api_addr[128];
	char ws_addr[128];
	char raft_addr[128];
	int64_t node_id;
	char secret[256];
	char admin_user_ids[CFG_MAX_ADMINS][129];
	int n_admins;
	char log_level[16];
	int64_t token_expire_days;
	int64_t multi_login_policy;
	int64_t max_num_one_end;
	int64_t max_body_bytes;
	int64_t max_header_bytes;
	int64_t idle_timeout_ms;
	int64_t map_size_mb;
	int64_t map_max_mb;
	int64_t snapshot_threshold;
	int64_t raft_segment_kb;
	int64_t raft_log_mem_mb; /* Raft's in-memory log budget; scales the snapshot thresholds */
	int64_t snapshot_trailing;
	int64_t election_timeout_ms;
	int64_t forward_timeout_ms;
	/*
	 * The cluster (docs/cluster.md): `cluster` lists every voter as
	 * ID@HOST:PORT (Raft addresses), `cluster_api` the REST API address of
	 * each, which the nodes use to reach each other (forwarding, engine
	 * copies).  Both empty: a one-voter cluster of (node_id, raft_addr).
	 */
	char cluster[1024];
	char cluster_api[1024];
	struct cfg_member members[CFG_MAX_MEMBERS]; /* parsed from cluster */
	int n_members;
	struct cfg_member api_members[CFG_MAX_MEMBERS]; /* parsed from cluster_api */
	int n_api_members;
	/*
	 * join: REST API addresses HOST:PORT,... of members of a running
	 * cluster.  The node does not bootstrap; it waits until a leader adds it
	 * (POST /cluster/add, imlog cluster add), and asks these nodes for an
	 * engine copy when it has to install one before it knows the members.
	 */
	char join[1024];
	struct cfg_member join_members[CFG_MAX_MEMBERS]; /* parsed from join (id 0) */
	int n_join;
	int64_t friend_verify;		  /* 1: 1:1 sends need the receiver as a friend (1303) */
	int64_t history_for_new_members;  /* 0: new group members start after the history */
	int64_t notification_reliability; /* 1 online only (default), 2 stored in n_ streams */
	bool secret_configured;		  /* set by the loader: a secret came from file/env/flag */
};

/*
 * Fills cfg from defaults, then the file named by --config (if any), then
 * the IMLOG_* environment, then flags in argv (argv[0..argc) after the
 * subcommand).  Returns 0, or IM_EINVAL with a message in err.
 */
int cfg_load(struct cfg *cfg, int argc, char **argv, char *err, size_t errlen);

/*
 * The REST API address of member id ("HOST:PORT"), or NULL when there is
 * none (no cluster, or an unknown id).
 */
const char *cfg_member_api(const struct cfg *cfg, int64_t id);

/* The node runs the cluster machinery: started with cluster or join. */
bool cfg_clustered(const struct cfg *cfg);

/*
 * The secret: configured, or read from DATA_DIR/secret, or generated on the
 * first start (32 random bytes as hex), stored with mode 0600 and printed
 * once.  0, or a negative code with a message on stderr.
 */
int cfg_load_secret(struct cfg *cfg);

/* Logs every setting once (the secret is masked). */
void cfg_log(const struct cfg *cfg);

/* Prints the flag table (for --help). */
void cfg_usage(void);

/* True when user_id is one of the configured admin user ids. */
bool cfg_is_admin(const struct cfg *cfg, struct im_str user_id);

#endif
