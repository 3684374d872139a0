/* cli_cluster.c - imlog cluster status|add|remove: the admin calls of a cluster from the shell.
 *
 * Each subcommand gets an admin token from the node at --api-addr (with the
 * secret from --secret or DATA_DIR/secret) and calls the /cluster/ routes
 * (routes_cluster.c).  Membership changes run on the leader: when the node
 * asked is not the leader (or stops leading, as after the removal of the
 * leader itself hands leadership over), the command asks that node's
 * /cluster/status who leads and sends the call there, a bounded number of
 * times.  Blocking sockets (node_http_post); for the command line only.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_node.h"
#include "config.h"

#define CLI_RETRIES	40    /* leader changes followed before giving up */
#define CLI_RETRY_MS	250   /* pause when no leader is known */
#define CLI_TIMEOUT_S	30    /* socket timeout of a call */
#define CLI_ADD_WAIT_MS 60000 /* the default catch-up wait of an add */

struct cli {
	const char *addr; /* the node to ask first */
	const char *secret, *dir, *admin;
	char headers[1024]; /* operationID and token */
	/* add/remove */
	long long node_id;
	const char *raft_addr, *node_api_addr, *role;
	long long timeout_ms;
};

/*
 * POSTs body (stolen) to addr; returns the OpenIM envelope (new reference),
 * or NULL after printing why (the node unreachable, not HTTP 200, not JSON).
 */
static json_t *cli_call(const char *addr, const char *path, const char *headers, json_t *body,
			int timeout_s)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct im_buf out = {0};
	char err[512];
	int status = 0;
	int rv = text ? node_http_post(addr, path, headers, text, timeout_s, &status, &out, err,
				       sizeof(err))
		      : -ENOMEM;
	free(text);
	if (rv != 0 || status != 200) {
		fprintf(stderr, "imlog cluster: %s%s: %s\n", addr, path, rv ? err : "HTTP error");
		im_buf_free(&out);
		return NULL;
	}
	json_error_t je;
	json_t *env = json_loadb(out.p, out.len, 0, &je);
	im_buf_free(&out);
	if (env == NULL || !json_is_object(env))
		fprintf(stderr, "imlog cluster: %s%s: not JSON\n", addr, path);
	return env;
}

static int env_code(const json_t *env)
{
	return (int)json_integer_value(json_object_get(env, "errCode"));
}

/* Prints an error envelope on stderr. */
static void env_print_error(const char *path, const json_t *env)
{
	char *dump = json_dumps(env, JSON_COMPACT);
	fprintf(stderr, "imlog cluster: %s: %s\n", path, dump ? dump : "?");
	free(dump);
}

/* Prints data as indented JSON on stdout. */
static void print_json(const json_t *data)
{
	char *text = json_dumps(data, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", text ? text : "{}");
	free(text);
}

/* The secret from --secret or DIR/secret into cfg->secret; 0, or 1 after printing why. */
static int cli_secret(const struct cli *cli, struct cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", cli->dir);
	if (cli->secret) {
		snprintf(cfg->secret, sizeof(cfg->secret), "%s", cli->secret);
		cfg->secret_configured = true;
		return 0;
	}
	char path[1100];
	snprintf(path, sizeof(path), "%s/secret", cli->dir);
	if (access(path, R_OK) != 0 || cfg_load_secret(cfg) != 0) {
		fprintf(stderr, "imlog cluster: no --secret and %s is not readable\n", path);
		return 1;
	}
	return 0;
}

/* An admin token from cli->addr into cli->headers; 0, or 1 after printing why. */
static int cli_login(struct cli *cli)
{
	struct cfg cfg;
	if (cli_secret(cli, &cfg) != 0)
		return 1;
	json_t *env = cli_call(cli->addr, "/auth/get_admin_token", "operationID: imlog-cli\r\n",
			       json_pack("{s:s,s:s}", "secret", cfg.secret, "userID", cli->admin),
			       CLI_TIMEOUT_S);
	const char *tok =
	    env ? json_string_value(json_object_get(json_object_get(env, "data"), "token")) : NULL;
	if (tok == NULL) {
		if (env)
			env_print_error("/auth/get_admin_token", env);
		json_decref(env);
		return 1;
	}
	snprintf(cli->headers, sizeof(cli->headers), "operationID: imlog-cli\r\ntoken: %s\r\n",
		 tok);
	json_decref(env);
	return 0;
}

/*
 * The REST address of the leader as the node at addr sees it, into out;
 * false when that node knows no leader (an election) or cannot be asked.
 */
static bool leader_api(struct cli *cli, const char *addr, char out[CLU_ADDR_MAX])
{
	json_t *env = cli_call(addr, "/cluster/status", cli->headers, json_object(), CLI_TIMEOUT_S);
	json_t *d = env ? json_object_get(env, "data") : NULL;
	json_int_t lead = json_integer_value(json_object_get(d, "leaderID"));
	bool found = false;
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(d, "members"), i, m)
	{
		const char *api = json_string_value(json_object_get(m, "apiAddress"));
		if (lead != 0 && json_integer_value(json_object_get(m, "id")) == lead && api) {
			snprintf(out, CLU_ADDR_MAX, "%s", api);
			found = true;
		}
	}
	json_decref(env);
	return found;
}

/*
 * Sends a membership change to the leader: body (borrowed) to path on the
 * node that leads, following "not the leader" answers.  0 (prints the
 * answer), or 1.
 */
static int cli_change(struct cli *cli, const char *path, json_t *body, int timeout_s)
{
	char target[CLU_ADDR_MAX];
	snprintf(target, sizeof(target), "%s", cli->addr);
	for (int attempt = 0; attempt < CLI_RETRIES; attempt++) {
		json_t *env = cli_call(target, path, cli->headers, json_incref(body), timeout_s);
		if (env == NULL)
			return 1;
		const char *dlt = json_string_value(json_object_get(env, "errDlt"));
		if (env_code(env) == 0) {
			print_json(json_object_get(env, "data"));
			json_decref(env);
			return 0;
		}
		if (dlt == NULL || strncmp(dlt, "not the leader", 14) != 0) {
			env_print_error(path, env);
			json_decref(env);
			return 1;
		}
		json_decref(env);
		/* Ask the node we talked to who leads now; wait out an election. */
		char lead[CLU_ADDR_MAX];
		if (leader_api(cli, target, lead)) {
			fprintf(stderr, "imlog cluster: %s does not lead; asking %s\n", target,
				lead);
			snprintf(target, sizeof(target), "%s", lead);
		} else {
			usleep(CLI_RETRY_MS * 1000);
		}
	}
	fprintf(stderr, "imlog cluster: %s: no leader took the change after %d tries\n", path,
		CLI_RETRIES);
	return 1;
}

static void cli_usage(void)
{
	fprintf(
	    stderr,
	    "usage: imlog cluster status [common flags]\n"
	    "       imlog cluster add --node-id N --raft-addr HOST:PORT --node-api-addr HOST:PORT\n"
	    "                         [--role voter|standby|spare] [--timeout-ms MS] [common "
	    "flags]\n"
	    "       imlog cluster remove --node-id N [common flags]\n"
	    "common flags: [--api-addr HOST:PORT (a member, default 127.0.0.1:10002)]\n"
	    "              [--secret S | --data-dir DIR (reads DIR/secret)] [--admin-user-id ID]\n"
	    "add: start the new node first with --node-id N --raft-addr ... --join "
	    "MEMBER_API,...\n");
}

/* Parses "--flag value" pairs; 0, or 2 after printing the usage. */
static int cli_flags(struct cli *cli, int argc, char **argv)
{
	if (argc % 2 != 0) {
		cli_usage();
		return 2;
	}
	for (int i = 0; i + 1 < argc; i += 2) {
		const char *f = argv[i], *v = argv[i + 1];
		char *end = NULL;
		if (strcmp(f, "--api-addr") == 0)
			cli->addr = v;
		else if (strcmp(f, "--secret") == 0)
			cli->secret = v;
		else if (strcmp(f, "--data-dir") == 0)
			cli->dir = v;
		else if (strcmp(f, "--admin-user-id") == 0)
			cli->admin = v;
		else if (strcmp(f, "--raft-addr") == 0)
			cli->raft_addr = v;
		else if (strcmp(f, "--node-api-addr") == 0)
			cli->node_api_addr = v;
		else if (strcmp(f, "--role") == 0)
			cli->role = v;
		else if (strcmp(f, "--node-id") == 0)
			cli->node_id = strtoll(v, &end, 10);
		else if (strcmp(f, "--timeout-ms") == 0)
			cli->timeout_ms = strtoll(v, &end, 10);
		else {
			fprintf(stderr, "imlog cluster: unknown flag %s\n", f);
			cli_usage();
			return 2;
		}
		if (end && (*end != '\0' || end == v)) {
			fprintf(stderr, "imlog cluster: %s wants an integer\n", f);
			return 2;
		}
	}
	return 0;
}

int cli_cluster(int argc, char **argv)
{
	struct cli cli = {.addr = "127.0.0.1:10002", .dir = "./imlog-data", .admin = "imAdmin"};
	if (argc < 1) {
		cli_usage();
		return 2;
	}
	const char *sub = argv[0];
	int rv = cli_flags(&cli, argc - 1, argv + 1);
	if (rv != 0)
		return rv;
	if (strcmp(sub, "status") == 0) {
		/*
		 * Signed with the secret rather than a token: a token is a write,
		 * and a node cut off from the leader (when status matters most)
		 * cannot make one.
		 */
		struct cfg cfg;
		if (cli_secret(&cli, &cfg) != 0)
			return 1;
		char sig[256];
		node_timed_auth_headers(im_str_c(cfg.secret), "/cluster/status", sig, sizeof(sig));
		snprintf(cli.headers, sizeof(cli.headers), "operationID: imlog-cli\r\n%s", sig);
		json_t *env = cli_call(cli.addr, "/cluster/status", cli.headers, json_object(),
				       CLI_TIMEOUT_S);
		if (env == NULL)
			return 1;
		rv = env_code(env) == 0 ? 0 : 1;
		if (rv == 0)
			print_json(json_object_get(env, "data"));
		else
			env_print_error("/cluster/status", env);
		json_decref(env);
		return rv;
	}
	if (strcmp(sub, "add") == 0) {
		if (cli.node_id <= 0 || cli.raft_addr == NULL || cli.node_api_addr == NULL) {
			cli_usage();
			return 2;
		}
		long long wait = cli.timeout_ms > 0 ? cli.timeout_ms : CLI_ADD_WAIT_MS;
		json_t *body = json_pack("{s:I,s:s,s:s,s:s,s:I}", "nodeID", cli.node_id, "address",
					 cli.raft_addr, "apiAddress", cli.node_api_addr, "role",
					 cli.role ? cli.role : "voter", "timeoutMs", wait);
		rv = cli_login(&cli) != 0 ? 1
					  : cli_change(&cli, "/cluster/add", body,
						       (int)(wait / 1000) + CLI_TIMEOUT_S);
		json_decref(body);
		return rv;
	}
	if (strcmp(sub, "remove") == 0) {
		if (cli.node_id <= 0) {
			cli_usage();
			return 2;
		}
		json_t *body = json_pack("{s:I}", "nodeID", cli.node_id);
		rv = cli_login(&cli) != 0
			 ? 1
			 : cli_change(&cli, "/cluster/remove", body, CLI_TIMEOUT_S);
		json_decref(body);
		return rv;
	}
	cli_usage();
	return 2;
}
