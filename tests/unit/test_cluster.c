/* test_cluster.c - the Raft glue on a real raft_uv one-voter cluster: propose, apply, snapshot,
 * replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"

struct fixture {
	char dir[256];
	char engdir[300];
	char raftdir[300];
	char addr[64];
	uv_loop_t loop;
	struct eng *eng;
	struct clu *clu;
	int ready;
	int done;
	int closed;
	int want;
	uint64_t last_index_seen;
};

static int free_port(void)
{
	/* A port from the kernel on 127.0.0.1, released again for raft_uv to bind. */
	uv_loop_t loop;
	uv_loop_init(&loop);
	uv_tcp_t t;
	uv_tcp_init(&loop, &t);
	struct sockaddr_in sa;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_bind(&t, (const struct sockaddr *)&sa, 0);
	struct sockaddr_in got;
	int len = sizeof(got);
	uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return ntohs(got.sin_port);
}

static void on_ready(struct clu *c, void *arg)
{
	(void)c;
	struct fixture *f = arg;
	f->ready = 1;
	uv_stop(&f->loop);
}

static void start(struct fixture *f, unsigned threshold)
{
	char err[256];
	struct eng_opts eo = {.dir = f->engdir, .map_size = 8u << 20};
	assert_int_equal(eng_open(&f->eng, &eo, err, sizeof(err)), 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	struct clu_opts co = {.loop = &f->loop,
			      .dir = f->raftdir,
			      .id = 1,
			      .addr = f->addr,
			      .eng = f->eng,
			      .snapshot_threshold = threshold,
			      .snapshot_trailing = threshold / 2,
			      .segment_size = 64 * 1024,
			      .on_ready = on_ready,
			      .arg = f};
	f->ready = 0;
	assert_int_equal(clu_start(&co, &f->clu, err, sizeof(err)), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_true(f->ready);
}

static void closed_cb(void *arg)
{
	struct fixture *f = arg;
	f->closed = 1;
}

static void stop(struct fixture *f)
{
	f->closed = 0;
	clu_close(f->clu, closed_cb, f);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_true(f->closed);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	eng_close(f->eng);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/imlog-clu-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->engdir, sizeof(f->engdir), "%s/engine", f->dir);
	snprintf(f->raftdir, sizeof(f->raftdir), "%s/raft", f->dir);
	snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", free_port());
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

struct prop {
	struct clu_req req;
	struct fixture *f;
	struct im_buf cmd;
	char id[32];
	int status;
	int code;
	bool visible; /* the user was readable when the callback ran */
};

static void prop_cb(struct clu_req *req, int status, const struct eng_result *res)
{
	struct prop *p = req->data;
	p->status = status;
	p->code = res ? res->code : -1;
	/* Invariant 1 of cluster.c: the effect is committed and readable when we hear back. */
	struct eng_rtxn *rt;
	assert_int_equal(eng_read_begin(p->f->eng, &rt), 0);
	struct eng_user u;
	p->visible = eng_user_get(rt, im_str_c(p->id), &u) == 0;
	eng_read_end(rt);
	if (++p->f->done == p->f->want)
		uv_stop(&p->f->loop);
}

static void propose_users(struct fixture *f, struct prop *ps, int n, int first, bool dup_last)
{
	f->done = 0;
	f->want = n;
	for (int i = 0; i < n; i++) {
		struct prop *p = &ps[i];
		memset(p, 0, sizeof(*p));
		p->f = f;
		snprintf(p->id, sizeof(p->id), "u%d", (dup_last && i == n - 1) ? first : first + i);
		struct eng_user u = {.user_id = im_str_c(p->id), .nickname = im_str_c(p->id)};
		struct eng_cmd cmd = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1000 + i};
		cmd.u.user_register.n = 1;
		cmd.u.user_register.users = &u;
		assert_int_equal(eng_cmd_encode(&cmd, &p->cmd), 0);
		p->req.data = p;
		assert_int_equal(clu_propose(f->clu, &p->req, p->cmd.p, p->cmd.len, prop_cb), 0);
	}
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->done, n);
	for (int i = 0; i < n; i++)
		im_buf_free(&ps[i].cmd);
}

static uint64_t user_count(struct fixture *f)
{
	struct eng_rtxn *rt;
	assert_int_equal(eng_read_begin(f->eng, &rt), 0);
	uint64_t n = eng_user_count(rt);
	eng_read_end(rt);
	return n;
}

static void applies_and_answers_after_commit(void **state)
{
	struct fixture *f = *state;
	start(f, 1024);
	struct prop ps[50];
	propose_users(f, ps, 50, 0, true);
	for (int i = 0; i < 49; i++) {
		assert_int_equal(ps[i].status, 0);
		assert_int_equal(ps[i].code, 0);
		assert_true(ps[i].visible);
	}
	/* The last one repeats u0: applied (consumes an index) but rejected by the engine. */
	assert_int_equal(ps[49].status, 0);
	assert_int_equal(ps[49].code, IM_EEXIST);
	assert_int_equal(user_count(f), 49);
	struct clu_status st;
	clu_get_status(f->clu, &st);
	assert_int_equal(st.state, RAFT_LEADER);
	assert_int_equal(st.leader_id, 1);
	assert_true(st.ready);
	assert_int_equal(st.applied_index, eng_applied_index(f->eng));
	stop(f);
}

static void restart_replays_without_double_apply(void **state)
{
	struct fixture *f = *state;
	struct prop ps[40];
	/* A low threshold makes raft take snapshot markers and truncate its log. */
	start(f, 16);
	propose_users(f, ps, 40, 0, false);
	uint64_t applied = eng_applied_index(f->eng);
	stop(f);
	for (int round = 0; round < 3; round++) {
		start(f, 16);
		/* Replay skipped everything already applied: same index, same users. */
		assert_true(eng_applied_index(f->eng) >= applied);
		assert_int_equal(user_count(f), 40 + 40 * round);
		propose_users(f, ps, 40, 1000 * (round + 1), false);
		for (int i = 0; i < 40; i++)
			assert_int_equal(ps[i].code, 0);
		applied = eng_applied_index(f->eng);
		stop(f);
	}
	char err[256];
	struct eng_opts eo = {.dir = f->engdir, .read_only = true};
	assert_int_equal(eng_open(&f->eng, &eo, err, sizeof(err)), 0);
	assert_int_equal(eng_check(f->eng, NULL), 0);
	eng_close(f->eng);
}

/* Member addresses in the Raft configuration: "RAFT[;API]", IPv4 HOST:PORT each. */
static void member_addresses_split(void **state)
{
	IM_UNUSED(state);
	char raft[CLU_ADDR_MAX], api[CLU_ADDR_MAX];
	assert_true(clu_addr_split("10.0.0.1:10003;10.0.0.1:10002", raft, api));
	assert_string_equal(raft, "10.0.0.1:10003");
	assert_string_equal(api, "10.0.0.1:10002");
	assert_true(clu_addr_split("127.0.0.1:1", raft, api)); /* an older configuration */
	assert_string_equal(raft, "127.0.0.1:1");
	assert_string_equal(api, "");
	const char *bad[] = {"",
			     ";",
			     "127.0.0.1",
			     "127.0.0.1:",
			     "127.0.0.1:0",
			     "127.0.0.1:65536",
			     "127.0.0.1:1x",
			     "host:1",
			     "127.0.0.1:1;",
			     "127.0.0.1:1;127.0.0.1",
			     "127.0.0.1:1;x:2",
			     "127.0.0.1:1;127.0.0.1:2;127.0.0.1:3",
			     "1.2.3.4.5:1"};
	for (size_t i = 0; i < IM_ARRAY_LEN(bad); i++)
		assert_false(clu_addr_split(bad[i], raft, api));
	char longer[300];
	memset(longer, '1', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_false(clu_addr_split(longer, raft, api));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(member_addresses_split),
	    cmocka_unit_test_setup_teardown(applies_and_answers_after_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(restart_replays_without_double_apply, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
