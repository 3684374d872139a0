/* config.c - one table drives defaults, file keys, environment variables and flags. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cfg_type { CFG_STR, CFG_INT, CFG_ADMINS };

struct cfg_entry {
	const char *name; /* file key; flag is --name with '_' -> '-' */
	const char *env;  /* environment variable or NULL */
	enum cfg_type type;
	const char *def;
	int64_t min, max; /* bounds for CFG_INT */
	size_t offset;
	size_t size; /* buffer size for CFG_STR */
	const char *help;
};

#define S(name, env, field, def, help)                                                             \
	{                                                                                          \
		name, env, CFG_STR, def, 0, 0, offsetof(struct cfg, field),                        \
		    sizeof(((struct cfg *)0)->field), help                                         \
	}
#define I(name, env, field, def, min, max, help)                                                   \
	{                                                                                          \
		name, env, CFG_INT, def, min, max, offsetof(struct cfg, field), 0, help            \
	}

static const struct cfg_entry table[] = {
    S("data_dir", "IMLOG_DATA_DIR", data_dir, "./imlog-data", "data directory"),
    S("api_addr", "IMLOG_API_ADDR", api_addr, "0.0.0.0:10002", "REST API HOST:PORT"),
    S("ws_addr", "IMLOG_WS_ADDR", ws_addr, "0.0.0.0:10001", "WebSocket HOST:PORT"),
    S("raft_addr", "IMLOG_RAFT_ADDR", raft_addr, "127.0.0.1:10003",
      "Raft transport HOST:PORT (IPv4)"),
    I("node_id", "IMLOG_NODE_ID", node_id, "1", 1, 1 << 30, "Raft node id"),
    S("secret", "IMLOG_SECRET", secret, "",
      "JWT and admin secret (generated on first start when empty)"),
    {"admin_user_id", "IMLOG_ADMIN_USER_ID", CFG_ADMINS, "imAdmin", 0, 0, 0, 0,
     "admin user id (repeatable; env: comma-separated)"},
    S("log_level", "IMLOG_LOG_LEVEL", log_level, "info", "debug|info|warn|error"),
    I("token_expire_days", NULL, token_expire_days, "90", 1, 3650, "token lifetime in days"),
    I("multi_login_policy", NULL, multi_login_policy, "1", 0, 1,
      "0 = keep up to max_num_one_end per platform, 1 = one per platform"),
    I("max_num_one_end", NULL, max_num_one_end, "30", 1, 1000, "tokens per platform with policy 0"),
    I("max_body_bytes", NULL, max_body_bytes, "4194304", 1024, 1 << 30, "largest REST body"),
    I("max_header_bytes", NULL, max_header_bytes, "16384", 1024, 1 << 20,
      "largest REST header block"),
    I("idle_timeout_ms", NULL, idle_timeout_ms, "60000", 100, 3600000,
      "idle REST connection timeout"),
    I("map_size_mb", NULL, map_size_mb, "64", 1, 1 << 20, "initial LMDB map size (MiB)"),
    I("map_max_mb", NULL, map_max_mb, "1048576", 1, 1 << 30,
      "largest LMDB map (MiB); then writes are refused"),
    I("snapshot_threshold", NULL, snapshot_threshold, "8192", 16, 1 << 30,
      "Raft entries between snapshots"),
    I("raft_log_mem_mb", NULL, raft_log_mem_mb, "64", 1, 1 << 20,
      "log bytes Raft keeps in memory (MiB): snapshots come sooner for large entries"),
    I("raft_segment_kb", NULL, raft_segment_kb, "8192", 64, 1 << 20,
      "Raft open segment size (KiB)"),
    I("snapshot_trailing", NULL, snapshot_trailing, "2048", 1, 1 << 30,
      "Raft entries kept after a snapshot"),
    I("election_timeout_ms", NULL, election_timeout_ms, "1000", 50, 60000,
      "Raft election timeout (heartbeats every tenth of it)"),
    I("forward_timeout_ms", NULL, forward_timeout_ms, "10000", 100, 600000,
      "how long a follower waits for a forwarded write before failing it (500)"),
    S("cluster", "IMLOG_CLUSTER", cluster, "",
      "voters as ID@HOST:PORT,... (Raft addresses); empty: one node"),
    S("cluster_api", "IMLOG_CLUSTER_API", cluster_api, "",
      "REST API address of each voter as ID@HOST:PORT,... (node-to-node traffic)"),
    S("join", "IMLOG_JOIN", join, "",
      "REST API addresses HOST:PORT,... of a running cluster's members: do not bootstrap, "
      "wait to be added (imlog cluster add)"),
    I("friend_verify", "IMLOG_FRIEND_VERIFY", friend_verify, "0", 0, 1,
      "1 = a 1:1 message needs the receiver in the sender's friend list (1303)"),
    I("enable_history_for_new_members", "IMLOG_ENABLE_HISTORY_FOR_NEW_MEMBERS",
      history_for_new_members, "1", 0, 1,
      "0 = members joining a group do not see the messages sent before they joined"),
    I("notification_reliability", "IMLOG_NOTIFICATION_RELIABILITY", notification_reliability, "1",
      1, 2,
      "1 = relation/group notifications reach online devices only (notification.yml); "
      "2 = also stored in the n_ streams"),
};

static int set_value(struct cfg *cfg, const struct cfg_entry *e, const char *v, const char *from,
		     char *err, size_t errlen)
{
	char *base = (char *)cfg;
	switch (e->type) {
	case CFG_STR:
		if (strlen(v) >= e->size) {
			snprintf(err, errlen, "%s (%s): value too long", e->name, from);
			return IM_EINVAL;
		}
		snprintf(base + e->offset, e->size, "%s", v);
		if (strcmp(e->name, "secret") == 0)
			cfg->secret_configured = v[0] != '\0';
		return 0;
	case CFG_INT: {
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (errno || end == v || *end != '\0' || n < e->min || n > e->max) {
			snprintf(err, errlen, "%s (%s): '%s' is not an integer in [%lld, %lld]",
				 e->name, from, v, (long long)e->min, (long long)e->max);
			return IM_EINVAL;
		}
		*(int64_t *)(base + e->offset) = n;
		return 0;
	}
	case CFG_ADMINS: {
		/* A flag or file key adds one id; the default and env give a list. */
		char tmp[2048];
		snprintf(tmp, sizeof(tmp), "%s", v);
		for (char *save = NULL, *id = strtok_r(tmp, ",", &save); id;
		     id = strtok_r(NULL, ",", &save)) {
			if (cfg->n_admins == CFG_MAX_ADMINS || strlen(id) > 128 || !id[0]) {
				snprintf(err, errlen, "%s (%s): too many or bad ids", e->name,
					 from);
				return IM_EINVAL;
			}
			snprintf(cfg->admin_user_ids[cfg->n_admins++], 129, "%s", id);
		}
		return 0;
	}
	}
	return IM_EINVAL;
}

static const struct cfg_entry *find(const char *name)
{
	for (size_t i = 0; i < IM_ARRAY_LEN(table); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

static const char *cfg_member_api_of(const struct cfg_member *m, int n, int64_t id)
{
	for (int i = 0; i < n; i++)
		if (m[i].id == id)
			return m[i].addr;
	return NULL;
}

const char *cfg_member_api(const struct cfg *cfg, int64_t id)
{
	return cfg_member_api_of(cfg->api_members, cfg->n_api_members, id);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* The file holds `key = value` lines; '#' starts a comment line. */
static int load_file(struct cfg *cfg, const char *path, bool *admins_reset, char *err,
		     size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "config %s: %s", path, strerror(errno));
		return IM_EINVAL;
	}
	char line[4096];
	int lineno = 0, rv = 0;
	while (rv == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(err, errlen, "config %s:%d: expected key = value", path, lineno);
			rv = IM_EINVAL;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		size_t vl = strlen(val);
		if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
			val[vl - 1] = '\0';
			val++;
		}
		const struct cfg_entry *e = find(key);
		if (e == NULL) {
			snprintf(err, errlen, "config %s:%d: unknown key '%s'", path, lineno, key);
			rv = IM_EINVAL;
			break;
		}
		if (e->type == CFG_ADMINS && !*admins_reset) {
			cfg->n_admins = 0;
			*admins_reset = true;
		}
		rv = set_value(cfg, e, val, path, err, errlen);
	}
	fclose(f);
	return rv;
}

/* Parses "ID@HOST:PORT,..." into out[]; returns the count or -1 with a message. */
static int parse_list(const char *name, const char *list, struct cfg_member *out, char *err,
		      size_t errlen)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", list);
	int n = 0;
	for (char *save = NULL, *it = strtok_r(tmp, ",", &save); it;
	     it = strtok_r(NULL, ",", &save)) {
		it = trim(it);
		char *at = strchr(it, '@');
		char *end = NULL;
		long long id = at ? strtoll(it, &end, 10) : 0;
		const char *addr = at ? at + 1 : "";
		if (n == CFG_MAX_MEMBERS || at == NULL || end != at || id < 1 || id > (1 << 30) ||
		    strchr(addr, ':') == NULL || strlen(addr) >= sizeof(out[n].addr)) {
			snprintf(err, errlen, "%s: '%s' is not ID@HOST:PORT (at most %d members)",
				 name, it, CFG_MAX_MEMBERS);
			return -1;
		}
		for (int k = 0; k < n; k++)
			if (out[k].id == id) {
				snprintf(err, errlen, "%s: id %lld twice", name, id);
				return -1;
			}
		out[n].id = id;
		snprintf(out[n].addr, sizeof(out[n].addr), "%s", addr);
		n++;
	}
	return n;
}

/* Parses the join list "HOST:PORT,..." into cfg->join_members (ids 0). */
static int parse_join(struct cfg *cfg, char *err, size_t errlen)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", cfg->join);
	cfg->n_join = 0;
	for (char *save = NULL, *it = strtok_r(tmp, ",", &save); it;
	     it = strtok_r(NULL, ",", &save)) {
		it = trim(it);
		if (cfg->n_join == CFG_MAX_MEMBERS || strchr(it, ':') == NULL ||
		    strlen(it) >= sizeof(cfg->join_members[0].addr)) {
			snprintf(err, errlen, "join: '%s' is not HOST:PORT (at most %d)", it,
				 CFG_MAX_MEMBERS);
			return -1;
		}
		cfg->join_members[cfg->n_join].id = 0;
		snprintf(cfg->join_members[cfg->n_join].addr, sizeof(cfg->join_members[0].addr),
			 "%s", it);
		cfg->n_join++;
	}
	return 0;
}

bool cfg_clustered(const struct cfg *cfg)
{
	return cfg->n_members > 0 || cfg->n_join > 0;
}

/* Checks the cluster lists: the same ids in both, this node among them. */
static int parse_members(struct cfg *cfg, char *err, size_t errlen)
{
	cfg->n_members = cfg->n_api_members = 0;
	if (parse_join(cfg, err, errlen) != 0)
		return -1;
	if (cfg->cluster[0] == '\0' && cfg->cluster_api[0] == '\0')
		return 0;
	int n = parse_list("cluster", cfg->cluster, cfg->members, err, errlen);
	if (n < 0)
		return -1;
	int na = parse_list("cluster_api", cfg->cluster_api, cfg->api_members, err, errlen);
	if (na < 0)
		return -1;
	if (n == 0 || n != na) {
		snprintf(err, errlen, "cluster and cluster_api must list the same members");
		return -1;
	}
	bool self = false;
	for (int i = 0; i < n; i++) {
		self |= cfg->members[i].id == cfg->node_id;
		if (cfg_member_api_of(cfg->api_members, na, cfg->members[i].id) == NULL) {
			snprintf(err, errlen, "cluster_api has no address for node %lld",
				 (long long)cfg->members[i].id);
			return -1;
		}
	}
	if (!self) {
		snprintf(err, errlen, "node_id %lld is not in cluster", (long long)cfg->node_id);
		return -1;
	}
	cfg->n_members = n;
	cfg->n_api_members = na;
	return 0;
}

int cfg_load(struct cfg *cfg, int argc, char **argv, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < IM_ARRAY_LEN(table); i++) {
		int rv = set_value(cfg, &table[i], table[i].def, "default", err, errlen);
		if (rv != 0)
			return rv;
	}
	cfg->secret_configured = false;

	/* --config first, so the layers apply in order: file, environment, flags. */
	bool admins_reset = false;
	for (int i = 0; i < argc; i++) {
		const char *path = NULL;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
		if (path) {
			int rv = load_file(cfg, path, &admins_reset, err, errlen);
			if (rv != 0)
				return rv;
		}
	}
	for (size_t i = 0; i < IM_ARRAY_LEN(table); i++) {
		const char *v = table[i].env ? getenv(table[i].env) : NULL;
		if (v == NULL)
			continue;
		if (table[i].type == CFG_ADMINS)
			cfg->n_admins = 0;
		int rv = set_value(cfg, &table[i], v, table[i].env, err, errlen);
		if (rv != 0)
			return rv;
	}
	bool flag_admins = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return IM_EINVAL;
		}
		char name[64];
		const char *val = strchr(a, '=');
		size_t nl = val ? (size_t)(val - a - 2) : strlen(a + 2);
		if (nl >= sizeof(name)) {
			snprintf(err, errlen, "unknown flag '%s'", a);
			return IM_EINVAL;
		}
		memcpy(name, a + 2, nl);
		name[nl] = '\0';
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		if (val)
			val++;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			snprintf(err, errlen, "flag '%s' needs a value", a);
			return IM_EINVAL;
		}
		if (strcmp(name, "config") == 0)
			continue;
		const struct cfg_entry *e = find(name);
		if (e == NULL) {
			snprintf(err, errlen, "unknown flag '--%s'", name);
			return IM_EINVAL;
		}
		if (e->type == CFG_ADMINS && !flag_admins) {
			cfg->n_admins = 0;
			flag_admins = true;
		}
		int rv = set_value(cfg, e, val, "flag", err, errlen);
		if (rv != 0)
			return rv;
	}
	if (im_log_level_parse(cfg->log_level) < 0) {
		snprintf(err, errlen, "log_level: '%s' is not debug|info|warn|error",
			 cfg->log_level);
		return IM_EINVAL;
	}
	if (cfg->n_admins == 0) {
		snprintf(err, errlen, "admin_user_id: at least one is needed");
		return IM_EINVAL;
	}
	if (parse_members(cfg, err, errlen) != 0)
		return IM_EINVAL;
	if (cfg->map_size_mb > cfg->map_max_mb)
		cfg->map_size_mb = cfg->map_max_mb;
	return 0;
}

void cfg_log(const struct cfg *cfg)
{
	char *base = (char *)cfg;
	for (size_t i = 0; i < IM_ARRAY_LEN(table); i++) {
		const struct cfg_entry *e = &table[i];
		if (e->type == CFG_STR && strcmp(e->name, "secret") == 0)
			IM_INFO("config %s = %s", e->name, cfg->secret[0] ? "(set)" : "(empty)");
		else if (e->type == CFG_STR)
			IM_INFO("config %s = %s", e->name, base + e->offset);
		else if (e->type == CFG_INT)
			IM_INFO("config %s = %lld", e->name,
				(long long)*(int64_t *)(base + e->offset));
		else
			for (int k = 0; k < cfg->n_admins; k++)
				IM_INFO("config %s = %s", e->name, cfg->admin_user_ids[k]);
	}
}

void cfg_usage(void)
{
	for (size_t i = 0; i < IM_ARRAY_LEN(table); i++) {
		char flag[64];
		snprintf(flag, sizeof(flag), "--%s", table[i].name);
		for (char *p = flag + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		printf("  %-24s %s (default %s%s%s)\n", flag, table[i].help,
		       table[i].def[0] ? table[i].def : "empty", table[i].env ? "; env " : "",
		       table[i].env ? table[i].env : "");
	}
	printf("  %-24s read key = value lines from FILE (keys as above, with '_')\n",
	       "--config FILE");
}

bool cfg_is_admin(const struct cfg *cfg, struct im_str user_id)
{
	for (int i = 0; i < cfg->n_admins; i++)
		if (im_str_eq(user_id, im_str_c(cfg->admin_user_ids[i])))
			return true;
	return false;
}

/*
 * The secret: configured, or read from DIR/secret, or generated on the first
 * start (32 random bytes as hex), stored with mode 0600 and printed once.
 */
int cfg_load_secret(struct cfg *cfg)
{
	if (cfg->secret_configured)
		return 0;
	char path[1100];
	snprintf(path, sizeof(path), "%s/secret", cfg->data_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[256];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		if (n <= 0) {
			fprintf(stderr, "imlog: %s is empty\n", path);
			return -EINVAL;
		}
		buf[n] = '\0';
		snprintf(cfg->secret, sizeof(cfg->secret), "%s", buf);
		return 0;
	}
	if (errno != ENOENT) {
		fprintf(stderr, "imlog: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	unsigned char rnd[32];
	int rv = im_random(rnd, sizeof(rnd));
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(cfg->secret + 2 * i, 3, "%02x", rnd[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "imlog: create %s: %s\n", path, strerror(errno));
		return -errno;
	}
	size_t len = strlen(cfg->secret);
	if (write(fd, cfg->secret, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		rv = -errno;
		close(fd);
		unlink(path);
		return rv;
	}
	close(fd);
	printf("imlog: generated the admin secret (stored in %s, mode 0600): %s\n", path,
	       cfg->secret);
	fflush(stdout);
	return 0;
}
