/* main.c - the imlog binary: serve, check, version. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "cluster.h"
#include "cluster_node.h"
#include "config.h"
#include "engine.h"
#include "gateway.h"
#include "ws.h"
#include "http.h"
#include "msg.h"

struct app {
	uv_loop_t loop;
	struct cfg cfg;
	struct srv srv;
	struct eng *eng;
	struct clu *clu;
	struct http_server *api;
	uv_signal_t sigterm, sigint;
	struct node *node; /* a cluster's node-to-node channel, NULL for one node */
	struct clu_req admin_req;
	struct im_buf admin_cmd;
	uv_timer_t admin_retry; /* a cluster retries creating the admin users */
	bool stopping;
	int exit_code;
};

static int mkdir_p(const char *dir)
{
	char tmp[1024];
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void on_api_closed(void *arg)
{
	IM_UNUSED(arg);
}

static void on_gw_closed(void *arg)
{
	IM_UNUSED(arg);
}

/* Applied messages: push them to the connections this node holds. */
static void on_event(const struct eng_event *ev, void *arg)
{
	struct app *a = arg;
	msg_on_event(ev, &a->srv);
}

/* The answers of a commit leave before its pushes are built (a large group's fan-out). */
static void on_answered(void *arg)
{
	IM_UNUSED(arg);
	ws_flush_queued();
}

static void on_clu_closed(void *arg)
{
	struct app *a = arg;
	a->clu = NULL;
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void stop(struct app *a, int code)
{
	if (a->stopping)
		return;
	a->stopping = true;
	a->exit_code = code;
	IM_INFO("stopping");
	if (a->api) {
		http_server_close(a->api, on_api_closed, a);
		a->api = NULL;
	}
	if (a->srv.gw) {
		gw_close(a->srv.gw, on_gw_closed, a);
		a->srv.gw = NULL;
	}
	if (a->node) {
		node_close(a->node); /* before the cluster: its waits are cancelled there */
		a->node = NULL;
		a->srv.node = NULL;
	}
	uv_close((uv_handle_t *)&a->admin_retry, NULL);
	if (a->clu)
		clu_close(a->clu, on_clu_closed, a);
	else {
		uv_close((uv_handle_t *)&a->sigterm, NULL);
		uv_close((uv_handle_t *)&a->sigint, NULL);
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	IM_INFO("signal %d", signum);
	stop(h->data, 0);
}

/* The leader removed this node from the cluster: stop as on SIGTERM (outside the HTTP handler). */
static void on_removed(struct srv *s)
{
	IM_UNUSED(s);
	printf("imlog: removed from the cluster, stopping\n");
	fflush(stdout);
	kill(getpid(), SIGTERM);
}

static int propose_real(struct srv *s, struct clu_req *req, const void *cmd, size_t len,
			clu_done_cb cb)
{
	return clu_propose(s->clu, req, cmd, len, cb);
}

static void start_api(struct app *a)
{
	struct http_opts ho = {
	    .addr = a->cfg.api_addr,
	    .handler = api_handle,
	    .arg = &a->srv,
	    .max_header_bytes = (size_t)a->cfg.max_header_bytes,
	    .max_body_bytes = (size_t)a->cfg.max_body_bytes,
	    .idle_timeout_ms = (unsigned)a->cfg.idle_timeout_ms,
	};
	int rv = http_server_start(&a->loop, &ho, &a->api);
	if (rv != 0) {
		IM_ERROR("listen %s: %s", a->cfg.api_addr, uv_strerror(rv));
		stop(a, 1);
		return;
	}
	IM_INFO("REST API listening on %s", a->cfg.api_addr);
	struct gw_opts go = {.addr = a->cfg.ws_addr, .handler = msg_ws_handler};
	rv = gw_start(&a->srv, &go, &a->srv.gw);
	if (rv != 0) {
		IM_ERROR("listen %s: %s", a->cfg.ws_addr, uv_strerror(rv));
		stop(a, 1);
		return;
	}
	IM_INFO("WebSocket gateway listening on %s", a->cfg.ws_addr);
	printf("imlog: ready, REST API on %s, WebSocket on %s\n", a->cfg.api_addr, a->cfg.ws_addr);
	fflush(stdout);
}

static void on_ready(struct clu *c, void *arg);

static void admin_retry_cb(uv_timer_t *t)
{
	struct app *a = t->data;
	on_ready(a->clu, a);
}

static void admin_done(struct clu_req *req, int status, const struct eng_result *res)
{
	struct app *a = req->data;
	im_buf_free(&a->admin_cmd);
	if (a->stopping)
		return;
	if (status != 0 && a->node) {
		/* A cluster: the leader may be changing or not listening yet; try again. */
		IM_WARN("creating the admin users: %s; retrying", im_strerror(status));
		uv_timer_start(&a->admin_retry, admin_retry_cb, 200, 0);
		return;
	}
	if (status != 0 || (res->code != 0 && res->code != IM_EEXIST)) {
		IM_ERROR("creating the admin users failed: %s %s", im_strerror(status),
			 res ? res->detail : "");
		stop(a, 1);
		return;
	}
	start_api(a);
}

static void admin_users(struct app *a);

static void ready_caught_up(struct clu_req *req, int status, const struct eng_result *res)
{
	IM_UNUSED(res);
	struct app *a = req->data;
	if (a->stopping)
		return;
	if (status != 0) {
		IM_WARN("catching up with the leader: %s; retrying", im_strerror(status));
		uv_timer_start(&a->admin_retry, admin_retry_cb, 200, 0);
		return;
	}
	admin_users(a);
}

/*
 * Ready (cluster.h): a follower first catches up with the leader's commit
 * index (raft only says it applied what it knows committed, which for a
 * node that just joined or restarted may be far behind), then the admin
 * users exist from the first start (openim-protocol.md §1.2), then listen.
 */
static void on_ready(struct clu *c, void *arg)
{
	struct app *a = arg;
	IM_UNUSED(c);
	if (a->srv.read_barrier) {
		a->admin_req.data = a;
		int rv = a->srv.read_barrier(&a->srv, &a->admin_req, ready_caught_up);
		if (rv == 0)
			return;
		if (rv != 1) {
			ready_caught_up(&a->admin_req, rv, NULL);
			return;
		}
	}
	admin_users(a);
}

static void admin_users(struct app *a)
{
	struct eng_rtxn *rt;
	if (eng_read_begin(a->srv.eng, &rt) != 0) {
		stop(a, 1);
		return;
	}
	struct eng_user missing[CFG_MAX_ADMINS];
	uint32_t n = 0;
	int64_t now = im_now_ms();
	for (int i = 0; i < a->cfg.n_admins; i++) {
		struct eng_user u;
		struct im_str id = im_str_c(a->cfg.admin_user_ids[i]);
		if (eng_user_get(rt, id, &u) == 0)
			continue;
		missing[n] = (struct eng_user){
		    .user_id = id, .nickname = id, .create_time = now, .app_manger_level = 3};
		n++;
	}
	eng_read_end(rt);
	if (n == 0) {
		start_api(a);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_USER_REGISTER, .now_ms = now};
	cmd.u.user_register.n = n;
	cmd.u.user_register.users = missing;
	a->admin_req.data = a;
	int rv = eng_cmd_encode(&cmd, &a->admin_cmd);
	if (rv == 0)
		rv = a->srv.propose(&a->srv, &a->admin_req, a->admin_cmd.p, a->admin_cmd.len,
				    admin_done);
	if (rv != 0) {
		IM_ERROR("creating the admin users: %s", im_strerror(rv));
		im_buf_free(&a->admin_cmd);
		stop(a, 1);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	IM_UNUSED(st);
	IM_UNUSED(flag);
	IM_UNUSED(ftw);
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static struct eng_opts engine_opts(const struct cfg *cfg, const char *dir)
{
	return (struct eng_opts){.dir = dir,
				 .map_size = (size_t)cfg->map_size_mb << 20,
				 .map_max = (size_t)cfg->map_max_mb << 20};
}

/*
 * An install swaps DATA/engine for DATA/engine.install through
 * DATA/engine.old.  After a crash in between: engine missing and
 * engine.old present means the swap did not finish, so the old engine comes
 * back (raft restores its snapshot again and the install is retried); the
 * leftovers are removed.
 */
static void recover_engine_dir(const struct cfg *cfg)
{
	char eng[1100], old[1100], inst[1100];
	snprintf(eng, sizeof(eng), "%s/engine", cfg->data_dir);
	snprintf(old, sizeof(old), "%s/engine.old", cfg->data_dir);
	snprintf(inst, sizeof(inst), "%s/engine.install", cfg->data_dir);
	struct stat st;
	if (stat(eng, &st) != 0 && stat(old, &st) == 0 && rename(old, eng) == 0)
		IM_WARN("an engine install was interrupted: the previous engine is back");
	rm_rf(old);
	rm_rf(inst);
}

/*
 * Replaces the engine by a copy of node from's (its leader's) at index or
 * later: fetched into DATA/engine.install, checked, swapped in.  Returns 0
 * with *engp the new engine (the old one closed), or an error with *engp as
 * it was.  Blocks while the copy streams.
 */
static int install_from(struct app *a, const char *from, uint64_t index, struct eng **engp)
{
	char eng[1100], old[1100], inst[1100], err[512];
	snprintf(eng, sizeof(eng), "%s/engine", a->cfg.data_dir);
	snprintf(old, sizeof(old), "%s/engine.old", a->cfg.data_dir);
	snprintf(inst, sizeof(inst), "%s/engine.install", a->cfg.data_dir);
	rm_rf(inst);
	if (mkdir(inst, 0700) != 0)
		return -errno;
	int64_t t0 = im_now_ms();
	int rv = node_fetch_copy(&a->srv, from, inst, err, sizeof(err));
	struct eng *e = NULL;
	if (rv == 0) {
		struct eng_opts eo = engine_opts(&a->cfg, inst);
		rv = eng_open(&e, &eo, err, sizeof(err));
	}
	if (rv == 0 && eng_applied_index(e) < index) {
		snprintf(err, sizeof(err), "the copy is at %llu, behind %llu",
			 (unsigned long long)eng_applied_index(e), (unsigned long long)index);
		rv = IM_EINVAL;
	}
	eng_close(e);
	if (rv != 0) {
		IM_WARN("install at %llu from %s: %s", (unsigned long long)index, from, err);
		rm_rf(inst);
		return rv;
	}
	eng_close(*engp);
	*engp = NULL;
	if (rename(eng, old) != 0 || rename(inst, eng) != 0) {
		IM_ERROR("install: swapping %s: %s; exiting", eng, strerror(errno));
		exit(70);
	}
	fsync_dir(a->cfg.data_dir);
	rm_rf(old);
	struct eng_opts eo = engine_opts(&a->cfg, eng);
	if (eng_open(&e, &eo, err, sizeof(err)) != 0) {
		IM_ERROR("install: reopening %s: %s; exiting", eng, err);
		exit(70);
	}
	*engp = a->eng = a->srv.eng = e;
	IM_INFO("installed the engine of %s at index %llu (snapshot %llu) in %lld ms", from,
		(unsigned long long)eng_applied_index(e), (unsigned long long)index,
		(long long)(im_now_ms() - t0));
	return 0;
}

/*
 * The clu install hook (cluster.h): the engine is behind a snapshot raft
 * installs, so copy the leader's.
 */
static int install_engine(struct clu *c, uint64_t index, struct eng **engp, void *arg)
{
	struct app *a = arg;
	uint64_t from = clu_leader_id(c);
	char addr[CLU_ADDR_MAX];
	if (from == 0 || from == (uint64_t)a->cfg.node_id) {
		IM_WARN("install at %llu: no leader to copy from", (unsigned long long)index);
		return IM_ENOTLEADER;
	}
	if (node_member_api(&a->srv, from, addr))
		return install_from(a, addr, index, engp);
	/*
	 * A joining node installs before it has the configuration that names
	 * the leader's API address (raft restores the snapshot's configuration
	 * after the FSM): ask the nodes it was told to join (only the leader
	 * serves a copy).
	 */
	int rv = IM_ENOTLEADER;
	for (int i = 0; i < a->cfg.n_join && rv != 0; i++)
		rv = install_from(a, a->cfg.join_members[i].addr, index, engp);
	return rv;
}

/*
 * Before raft starts: an engine behind the newest snapshot in the Raft
 * directory (an install cut short by a crash, or an engine directory lost)
 * would make raft's restore at start fail.  Copy the leader's engine first,
 * asking each peer (only the leader serves copies) until one does.
 */
static int catch_up_before_start(struct app *a, const char *raft_dir)
{
	uint64_t snap = clu_snapshot_on_disk(raft_dir);
	if (!cfg_clustered(&a->cfg) || snap <= eng_applied_index(a->eng))
		return 0;
	IM_WARN("the engine (index %llu) is behind the Raft snapshot %llu: copying the leader's",
		(unsigned long long)eng_applied_index(a->eng), (unsigned long long)snap);
	for (int round = 0; round < 600; round++) {
		for (int i = 0; i < a->cfg.n_api_members; i++)
			if (a->cfg.api_members[i].id != a->cfg.node_id &&
			    install_from(a, a->cfg.api_members[i].addr, snap, &a->eng) == 0)
				return 0;
		for (int i = 0; i < a->cfg.n_join; i++)
			if (install_from(a, a->cfg.join_members[i].addr, snap, &a->eng) == 0)
				return 0;
		usleep(200 * 1000); /* start-up retry while the cluster elects or starts */
	}
	return IM_ENOTLEADER;
}

static int cmd_serve(int argc, char **argv)
{
	static struct app a; /* large; lives for the whole process */
	char err[512];
	signal(SIGPIPE, SIG_IGN);
	if (cfg_load(&a.cfg, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "imlog: %s\n", err);
		return 2;
	}
	im_log_level = im_log_level_parse(a.cfg.log_level);
	int rv = mkdir_p(a.cfg.data_dir);
	if (rv != 0) {
		fprintf(stderr, "imlog: data dir %s: %s\n", a.cfg.data_dir, im_strerror(rv));
		return 1;
	}
	if (cfg_load_secret(&a.cfg) != 0)
		return 1;
	cfg_log(&a.cfg);

	char dir[1100];
	recover_engine_dir(&a.cfg);
	snprintf(dir, sizeof(dir), "%s/engine", a.cfg.data_dir);
	struct eng_opts eo = engine_opts(&a.cfg, dir);
	rv = eng_open(&a.eng, &eo, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "imlog: open engine %s: %s\n", dir, err);
		return 1;
	}
	uv_loop_init(&a.loop);
	a.srv = (struct srv){.loop = &a.loop,
			     .cfg = &a.cfg,
			     .eng = a.eng,
			     .secret = im_str_c(a.cfg.secret),
			     .token_expire_s = a.cfg.token_expire_days * 86400,
			     .propose = propose_real,
			     .now_ms = im_now_ms,
			     .on_kick = auth_kick_tokens};

	snprintf(dir, sizeof(dir), "%s/raft", a.cfg.data_dir);
	if (catch_up_before_start(&a, dir) != 0) {
		fprintf(stderr, "imlog: the engine is behind the Raft snapshot and no leader "
				"served a copy\n");
		eng_close(a.eng);
		return 1;
	}
	struct clu_member members[CFG_MAX_MEMBERS];
	const char *self_addr = a.cfg.raft_addr;
	for (int i = 0; i < a.cfg.n_members; i++) {
		members[i] =
		    (struct clu_member){.id = (uint64_t)a.cfg.members[i].id,
					.addr = a.cfg.members[i].addr,
					.api_addr = cfg_member_api(&a.cfg, a.cfg.members[i].id)};
		if (a.cfg.members[i].id == a.cfg.node_id)
			self_addr = a.cfg.members[i].addr;
	}
	/*
	 * In a cluster the member list says where peers reach this node; the
	 * Raft transport binds to raft_addr when one is given (not the default).
	 */
	const char *bind_addr = a.cfg.raft_addr;
	if (a.cfg.n_members > 0 && strcmp(a.cfg.raft_addr, "127.0.0.1:10003") == 0)
		bind_addr = self_addr;
	struct clu_opts co = {.loop = &a.loop,
			      .dir = dir,
			      .id = (uint64_t)a.cfg.node_id,
			      .addr = self_addr,
			      .bind_addr = bind_addr,
			      .api_addr = cfg_member_api(&a.cfg, a.cfg.node_id),
			      .n_members = (unsigned)a.cfg.n_members,
			      .members = members,
			      .join = a.cfg.n_join > 0,
			      .election_timeout_ms = (unsigned)a.cfg.election_timeout_ms,
			      .eng = a.eng,
			      .snapshot_threshold = (unsigned)a.cfg.snapshot_threshold,
			      .snapshot_trailing = (unsigned)a.cfg.snapshot_trailing,
			      .log_mem_budget = (uint64_t)a.cfg.raft_log_mem_mb << 20,
			      .segment_size = (size_t)a.cfg.raft_segment_kb << 10,
			      .on_ready = on_ready,
			      .on_event = on_event,
			      .on_answered = on_answered,
			      .install = install_engine,
			      .arg = &a};
	uv_timer_init(&a.loop, &a.admin_retry);
	a.admin_retry.data = &a;
	rv = clu_start(&co, &a.clu, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "imlog: raft: %s\n", err);
		eng_close(a.eng);
		return 1;
	}
	a.srv.clu = a.clu;
	/*
	 * A cluster node: started with cluster or join, or a Raft configuration
	 * of several servers on disk (a node that joined, restarted without
	 * --join).  raft_start has loaded the configuration.
	 */
	if (cfg_clustered(&a.cfg) || clu_member_count(a.clu) > 1) {
		a.srv.propose = node_propose;
		rv = node_start(&a.srv, &a.node);
		if (rv != 0) {
			fprintf(stderr, "imlog: node channel: %s\n", im_strerror(rv));
			return 1;
		}
		a.srv.node = a.node;
		a.srv.kick_remote = node_kick_remote;
		a.srv.on_removed = on_removed;
		a.srv.read_barrier = node_read_barrier;
	}
	uv_signal_init(&a.loop, &a.sigterm);
	uv_signal_init(&a.loop, &a.sigint);
	a.sigterm.data = a.sigint.data = &a;
	uv_signal_start(&a.sigterm, on_signal, SIGTERM);
	uv_signal_start(&a.sigint, on_signal, SIGINT);

	uv_run(&a.loop, UV_RUN_DEFAULT);
	rv = uv_loop_close(&a.loop);
	if (rv != 0)
		IM_WARN("loop closed with handles open: %s", uv_strerror(rv));
	eng_close(a.srv.eng);
	IM_INFO("stopped");
	return a.exit_code;
}

static int cmd_check(int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "usage: imlog check DATA_DIR\n");
		return 2;
	}
	char dir[1100], err[512];
	snprintf(dir, sizeof(dir), "%s/engine", argv[0]);
	struct eng_opts eo = {.dir = dir, .read_only = true};
	struct eng *e;
	if (eng_open(&e, &eo, err, sizeof(err)) != 0) {
		fprintf(stderr, "imlog check: %s: %s\n", dir, err);
		return 2;
	}
	struct im_buf report = {0};
	int problems = eng_check(e, &report);
	if (report.len)
		fputs(report.p, stdout);
	im_buf_free(&report);
	eng_close(e);
	if (problems < 0) {
		fprintf(stderr, "imlog check: %s\n", im_strerror(problems));
		return 2;
	}
	printf("%s: %d problem%s\n", problems ? "corrupt" : "ok", problems,
	       problems == 1 ? "" : "s");
	return problems ? 1 : 0;
}

static void usage(void)
{
	printf("usage: imlog serve [flags]    run the server\n"
	       "       imlog check DATA_DIR   verify every index against the stored data\n"
	       "       imlog cluster status|add|remove ...\n"
	       "                              see and change a cluster's members (imlog cluster)\n"
	       "       imlog version          print the version\n\nflags of serve:\n");
	cfg_usage();
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage();
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("imlog %s\n", IMLOG_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 2, argv + 2);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 2, argv + 2);
	if (strcmp(argv[1], "cluster") == 0)
		return cli_cluster(argc - 2, argv + 2);
	fprintf(stderr, "imlog: unknown command '%s'\n", argv[1]);
	usage();
	return 2;
}
