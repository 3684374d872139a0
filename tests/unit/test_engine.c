/* test_engine.c - the storage engine: apply, replay, tokens, user commands, paging, check,
 * MAP_FULL, crashes. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine_int.h"

#include "eng_fixture.h"

/* ---------------------------------------------------------------- helpers */

static void reopen(struct fx *f, size_t map_size, size_t map_max)
{
	eng_close(f->e);
	f->e = open_at(f->dir, map_size, map_max);
}

/* Encodes c and applies it at idx; returns eng_apply's value. */
static int apply_c(struct eng *e, uint64_t idx, const struct eng_cmd *c, struct eng_result *res)
{
	struct im_buf b = {0};
	assert_int_equal(eng_cmd_encode(c, &b), 0);
	int rv = eng_apply(e, idx, b.p, b.len, res);
	im_buf_free(&b);
	return rv;
}

/* Registers n users named by ids[] (nickname "nick-<id>") at idx. */
static int apply_register(struct eng *e, uint64_t idx, const char *const *ids, int n,
			  struct eng_result *res)
{
	struct eng_user *u = calloc((size_t)n, sizeof(*u));
	char(*nick)[64] = calloc((size_t)n, 64);
	for (int i = 0; i < n; i++) {
		u[i].user_id = im_str_c(ids[i]);
		snprintf(nick[i], 64, "nick-%s", ids[i]);
		u[i].nickname = im_str_c(nick[i]);
		u[i].face_url = IM_STR_LIT("https://face/1");
		u[i].create_time = 1700000000000 + (int64_t)idx;
		u[i].global_recv_msg_opt = 1;
	}
	struct eng_cmd c = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1700000000000};
	c.u.user_register.n = (uint32_t)n;
	c.u.user_register.users = u;
	int rv = apply_c(e, idx, &c, res);
	free(u);
	free(nick);
	return rv;
}

static void register_ok(struct eng *e, uint64_t idx, const char *id)
{
	struct eng_result res;
	assert_int_equal(apply_register(e, idx, &id, 1, &res), 0);
	if (res.code != 0)
		fail_msg("register %s at %" PRIu64 ": %d %s", id, idx, res.code, res.detail);
}

static int apply_issue(struct eng *e, uint64_t idx, const char *user, int plat, const char *token,
		       int64_t now_ms, int64_t expire_at, int policy, int max,
		       struct eng_result *res)
{
	struct eng_cmd c = {.type = ENG_CMD_TOKEN_ISSUE, .now_ms = now_ms};
	c.u.token_issue.user_id = im_str_c(user);
	c.u.token_issue.platform_id = plat;
	c.u.token_issue.token = im_str_c(token);
	c.u.token_issue.expire_at = expire_at;
	c.u.token_issue.policy = policy;
	c.u.token_issue.max_per_platform = max;
	return apply_c(e, idx, &c, res);
}

static void issue_ok(struct eng *e, uint64_t idx, const char *user, int plat, const char *token,
		     int64_t now_ms, int policy, int max)
{
	struct eng_result res;
	int64_t exp = now_ms / 1000 + 86400;
	assert_int_equal(apply_issue(e, idx, user, plat, token, now_ms, exp, policy, max, &res), 0);
	if (res.code != 0)
		fail_msg("issue %s at %" PRIu64 ": %d %s", token, idx, res.code, res.detail);
}

static int apply_kick(struct eng *e, uint64_t idx, const char *user, int plat,
		      struct eng_result *res)
{
	struct eng_cmd c = {.type = ENG_CMD_TOKEN_KICK, .now_ms = 1};
	c.u.token_kick.user_id = im_str_c(user);
	c.u.token_kick.platform_id = plat;
	return apply_c(e, idx, &c, res);
}

/* A user command (user, type, uuid, value, ex); NULL strings are empty. */
static struct eng_user_cmd ucmd(const char *user, int32_t type, const char *uuid, const char *value,
				const char *ex)
{
	struct eng_user_cmd c = {.user_id = im_str_c(user), .type = type, .uuid = im_str_c(uuid)};
	c.value = im_str_c(value);
	c.ex = im_str_c(ex);
	return c;
}

/* Applies a user command of cmd_type (ADD, UPDATE with mask, DEL) at idx. */
static int apply_ucmd(struct eng *e, uint64_t idx, int cmd_type, uint32_t mask,
		      struct eng_user_cmd c, int64_t now_ms, struct eng_result *res)
{
	struct eng_cmd cmd = {.type = (uint8_t)cmd_type, .now_ms = now_ms};
	cmd.u.user_cmd.mask = mask;
	cmd.u.user_cmd.c = c;
	return apply_c(e, idx, &cmd, res);
}

/* Like apply_ucmd, and the result must be `code`. */
static void ucmd_expect(struct eng *e, uint64_t idx, int cmd_type, uint32_t mask,
			struct eng_user_cmd c, int64_t now_ms, int code)
{
	struct eng_result res;
	assert_int_equal(apply_ucmd(e, idx, cmd_type, mask, c, now_ms, &res), 0);
	assert_false(res.skipped);
	if (res.code != code)
		fail_msg("%d at %" PRIu64 ": code %d, want %d (%s)", cmd_type, idx, res.code, code,
			 res.detail);
}

static void flush_ok(struct eng *e)
{
	int rv = eng_flush(e);
	if (rv != 0)
		fail_msg("eng_flush: %d %s", rv, eng_errmsg(e));
}

/* Token status, or -1 when the token is not stored. */
static int token_status(struct eng *e, const char *user, int plat, const char *token, bool *any)
{
	struct eng_rtxn *r;
	int st = -1;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_token_status(r, im_str_c(user), plat, im_str_c(token), &st, any);
	eng_read_end(r);
	if (rv == IM_ENOTFOUND)
		return -1;
	assert_int_equal(rv, 0);
	return st;
}

static int collect_ucmd(const struct eng_user_cmd *c, void *arg)
{
	struct im_buf *b = arg;
	im_buf_printf(b, "%" PRId32 ":%.*s=%.*s/%.*s@%" PRId64 ";", c->type, (int)c->uuid.n,
		      c->uuid.p, (int)c->value.n, c->value.p, (int)c->ex.n, c->ex.p,
		      c->create_time);
	return 0;
}

/* The user commands of user (type < 0: all) as "type:uuid=value/ex@create_time;...". */
static const char *ucmd_list(struct eng *e, const char *user, int32_t type)
{
	static char out[1024];
	struct im_buf b = {0};
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_user_cmd_scan(r, im_str_c(user), type, collect_ucmd, &b);
	eng_read_end(r);
	assert_int_equal(rv, 0);
	snprintf(out, sizeof(out), "%s", b.p ? b.p : "");
	im_buf_free(&b);
	return out;
}

static bool user_exists(struct eng *e, const char *id)
{
	struct eng_rtxn *r;
	struct eng_user u;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_user_get(r, im_str_c(id), &u);
	eng_read_end(r);
	assert_true(rv == 0 || rv == IM_ENOTFOUND);
	return rv == 0;
}

static uint64_t user_count(struct eng *e)
{
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(e, &r), 0);
	uint64_t n = eng_user_count(r);
	eng_read_end(r);
	return n;
}

static int check_problems(struct eng *e, bool print)
{
	struct im_buf rep = {0};
	int n = eng_check(e, &rep);
	if (print && rep.len)
		printf("check report:\n%s", rep.p);
	im_buf_free(&rep);
	return n;
}

/* A digest of the whole visible state: every user, token and user command, the count. */
struct dig {
	struct eng_rtxn *r;
	uint32_t crc;
	uint64_t users;
};

static void dig_str(struct dig *d, struct im_str s)
{
	unsigned char n[4];
	im_put_be32(n, s.n);
	d->crc = im_crc32(d->crc, n, 4);
	d->crc = im_crc32(d->crc, s.p, s.n);
}

static void dig_u64(struct dig *d, uint64_t v)
{
	unsigned char b[8];
	im_put_be64(b, v);
	d->crc = im_crc32(d->crc, b, 8);
}

static int dig_token(const struct eng_token *t, void *arg)
{
	struct dig *d = arg;
	dig_str(d, t->token);
	dig_u64(d, (uint64_t)t->platform_id);
	dig_u64(d, (uint64_t)t->status);
	dig_u64(d, (uint64_t)t->expire_at);
	return 0;
}

static int dig_ucmd(const struct eng_user_cmd *c, void *arg)
{
	struct dig *d = arg;
	dig_u64(d, (uint64_t)c->type);
	dig_str(d, c->uuid);
	dig_str(d, c->value);
	dig_str(d, c->ex);
	dig_u64(d, (uint64_t)c->create_time);
	return 0;
}

static int dig_user(const struct eng_user *u, void *arg)
{
	struct dig *d = arg;
	d->users++;
	dig_str(d, u->user_id);
	dig_str(d, u->nickname);
	dig_str(d, u->face_url);
	dig_str(d, u->ex);
	dig_u64(d, (uint64_t)u->create_time);
	dig_u64(d, (uint64_t)u->app_manger_level);
	dig_u64(d, (uint64_t)u->global_recv_msg_opt);
	int rv = eng_token_scan(d->r, u->user_id, -1, dig_token, d);
	return rv ? rv : eng_user_cmd_scan(d->r, u->user_id, -1, dig_ucmd, d);
}

static uint32_t digest(struct eng *e)
{
	struct dig d = {0};
	assert_int_equal(eng_read_begin(e, &d.r), 0);
	assert_int_equal(eng_user_scan(d.r, 0, 0, dig_user, &d), 0);
	assert_int_equal(eng_user_count(d.r), d.users);
	dig_u64(&d, d.users);
	eng_read_end(d.r);
	return d.crc;
}

/* ---------------------------------------------------------------- users */

static void registers_and_reads_back(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	const char *ids[] = {"alice", "bob", "carol"};
	assert_int_equal(apply_register(f->e, 1, ids, 3, &res), 0);
	assert_int_equal(res.code, 0);
	assert_false(res.skipped);
	assert_true(eng_dirty(f->e));
	assert_int_equal(eng_applied_index(f->e), 1);
	/* The open batch is not visible to readers. */
	assert_int_equal(user_count(f->e), 0);
	assert_false(user_exists(f->e, "alice"));
	flush_ok(f->e);
	assert_false(eng_dirty(f->e));
	assert_int_equal(user_count(f->e), 3);

	struct eng_rtxn *r;
	struct eng_user u;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_user_get(r, IM_STR_LIT("bob"), &u), 0);
	assert_true(im_str_eq(u.user_id, IM_STR_LIT("bob")));
	assert_true(im_str_eq(u.nickname, IM_STR_LIT("nick-bob")));
	assert_true(im_str_eq(u.face_url, IM_STR_LIT("https://face/1")));
	assert_int_equal(u.ex.n, 0);
	assert_true(u.create_time == 1700000000001);
	assert_int_equal(u.global_recv_msg_opt, 1);
	assert_int_equal(u.app_manger_level, 0);
	assert_int_equal(eng_user_get(r, IM_STR_LIT("dave"), &u), IM_ENOTFOUND);
	assert_int_equal(eng_user_get(r, IM_STR_LIT(""), &u), IM_ENOTFOUND);
	/* One read txn at a time. */
	struct eng_rtxn *r2;
	assert_int_equal(eng_read_begin(f->e, &r2), IM_EINVAL);
	eng_read_end(r);
	assert_int_equal(check_problems(f->e, true), 0);
}

static void register_existing_user_fails_and_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	register_ok(f->e, 1, "u1");
	flush_ok(f->e);
	uint32_t before = digest(f->e);

	const char *ids[] = {"u2", "u1", "u3"};
	assert_int_equal(apply_register(f->e, 2, ids, 3, &res), 0);
	assert_int_equal(res.code, IM_EEXIST);
	assert_non_null(strstr(res.detail, "u1"));
	/* A duplicate inside one command fails the same way. */
	const char *dup[] = {"x", "y", "x"};
	assert_int_equal(apply_register(f->e, 3, dup, 3, &res), 0);
	assert_int_equal(res.code, IM_EEXIST);
	assert_non_null(strstr(res.detail, "x"));
	/* An empty id is invalid. */
	const char *empty[] = {""};
	assert_int_equal(apply_register(f->e, 4, empty, 1, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_int_equal(apply_register(f->e, 5, ids, 0, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	/* Each failed command still consumed its index. */
	assert_int_equal(eng_applied_index(f->e), 5);
	flush_ok(f->e);
	assert_int_equal(user_count(f->e), 1);
	assert_false(user_exists(f->e, "u2"));
	assert_false(user_exists(f->e, "x"));
	assert_int_equal(digest(f->e), before);
	/* The sequence was not consumed by the failures: the next user gets 2. */
	register_ok(f->e, 6, "u2");
	flush_ok(f->e);
	assert_int_equal(check_problems(f->e, true), 0);
}

static void bad_command_bytes_consume_their_index(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	assert_int_equal(eng_apply(f->e, 1, "garbage", 7, &res), 0);
	assert_int_equal(res.code, IM_ECORRUPT);
	assert_true(strlen(res.detail) > 0);
	assert_int_equal(eng_applied_index(f->e), 1);
	assert_int_equal(eng_apply(f->e, 0, "x", 1, &res), IM_EINVAL);
	flush_ok(f->e);
	reopen(f, 0, 0);
	assert_int_equal(eng_applied_index(f->e), 1);
}

static void updates_only_masked_fields(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	register_ok(f->e, 1, "u1");
	struct eng_cmd c = {.type = ENG_CMD_USER_UPDATE, .now_ms = 5};
	c.u.user_update.mask = ENG_USER_NICKNAME | ENG_USER_APP_MANGER_LEVEL;
	c.u.user_update.user.user_id = IM_STR_LIT("u1");
	c.u.user_update.user.nickname = IM_STR_LIT("New Name");
	c.u.user_update.user.face_url = IM_STR_LIT("ignored");
	c.u.user_update.user.app_manger_level = 3;
	c.u.user_update.user.global_recv_msg_opt = 9;
	assert_int_equal(apply_c(f->e, 2, &c, &res), 0);
	assert_int_equal(res.code, 0);
	c.u.user_update.user.user_id = IM_STR_LIT("nobody");
	assert_int_equal(apply_c(f->e, 3, &c, &res), 0);
	assert_int_equal(res.code, IM_ENOTFOUND);
	assert_non_null(strstr(res.detail, "nobody"));
	c.u.user_update.user.user_id = IM_STR_LIT("u1");
	c.u.user_update.mask = 1u << 20;
	assert_int_equal(apply_c(f->e, 4, &c, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	flush_ok(f->e);

	struct eng_rtxn *r;
	struct eng_user u;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_user_get(r, IM_STR_LIT("u1"), &u), 0);
	assert_true(im_str_eq(u.nickname, IM_STR_LIT("New Name")));
	assert_true(im_str_eq(u.face_url, IM_STR_LIT("https://face/1")));
	assert_int_equal(u.app_manger_level, 3);
	assert_int_equal(u.global_recv_msg_opt, 1);
	assert_true(u.create_time == 1700000000001);
	eng_read_end(r);
	assert_int_equal(check_problems(f->e, true), 0);
}

/* A mixed history used by the replay tests; returns the last index. */
static uint64_t apply_history(struct eng *e)
{
	struct eng_result res;
	const char *ids[] = {"a", "b", "c", "d"};
	uint64_t i = 1;
	assert_int_equal(apply_register(e, i++, ids, 4, &res), 0);
	assert_int_equal(apply_register(e, i++, ids + 1, 1, &res), 0); /* fails: exists */
	issue_ok(e, i++, "a", 1, "ta1", 1000000, 1, 0);
	issue_ok(e, i++, "a", 1, "ta2", 2000000, 1, 0);
	issue_ok(e, i++, "b", 2, "tb1", 2000000, 0, 2);
	assert_int_equal(apply_kick(e, i++, "b", 2, &res), 0);
	struct eng_cmd c = {.type = ENG_CMD_USER_UPDATE, .now_ms = 7};
	c.u.user_update.mask = ENG_USER_EX;
	c.u.user_update.user.user_id = IM_STR_LIT("c");
	c.u.user_update.user.ex = IM_STR_LIT("{\"k\":1}");
	assert_int_equal(apply_c(e, i++, &c, &res), 0);
	c = (struct eng_cmd){.type = ENG_CMD_NOOP, .now_ms = 8};
	assert_int_equal(apply_c(e, i++, &c, &res), 0);
	assert_int_equal(eng_apply(e, i++, "bad", 3, &res), 0);
	const char *more[] = {"e", "f"};
	assert_int_equal(apply_register(e, i++, more, 2, &res), 0);
	issue_ok(e, i++, "e", 5, "te1", 3000000, 1, 0);
	/* User commands: adds, an update, a delete and two that fail. */
	ucmd_expect(e, i++, ENG_CMD_USER_CMD_ADD, 0, ucmd("a", 1, "x", "vx", NULL), 11, 0);
	ucmd_expect(e, i++, ENG_CMD_USER_CMD_ADD, 0, ucmd("a", 1, "y", "vy", "ey"), 12, 0);
	ucmd_expect(e, i++, ENG_CMD_USER_CMD_ADD, 0, ucmd("e", 2, "x", NULL, NULL), 13, 0);
	ucmd_expect(e, i++, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_EX, ucmd("a", 1, "x", NULL, "ex"), 14,
		    0);
	ucmd_expect(e, i++, ENG_CMD_USER_CMD_DEL, 0, ucmd("a", 1, "y", NULL, NULL), 15, 0);
	ucmd_expect(e, i++, ENG_CMD_USER_CMD_ADD, 0, ucmd("a", 1, "x", NULL, NULL), 16, IM_EEXIST);
	ucmd_expect(e, i++, ENG_CMD_USER_CMD_DEL, 0, ucmd("a", 1, "y", NULL, NULL), 17,
		    IM_ENOTFOUND);
	return i - 1;
}

static void replay_skips_applied_indexes(void **state)
{
	struct fx *f = *state;
	uint64_t last = apply_history(f->e);
	flush_ok(f->e);
	uint32_t d1 = digest(f->e);
	assert_int_equal(user_count(f->e), 6);

	/* Replaying the same entries after a restart changes nothing. */
	uint64_t saved = last;
	reopen(f, 0, 0);
	assert_int_equal(eng_applied_index(f->e), saved);
	assert_string_equal(ucmd_list(f->e, "a", -1), "1:x=vx/ex@11;");
	struct eng_result res;
	const char *ids[] = {"zz"};
	for (uint64_t i = 1; i <= saved; i++) {
		assert_int_equal(apply_register(f->e, i, ids, 1, &res), 0);
		assert_true(res.skipped);
	}
	assert_false(eng_dirty(f->e));
	assert_int_equal(digest(f->e), d1);

	/* A batch lost before its flush is re-applied from the log. */
	assert_int_equal(apply_register(f->e, saved + 1, ids, 1, &res), 0);
	assert_int_equal(eng_applied_index(f->e), saved + 1);
	reopen(f, 0, 0); /* closes without flushing: the batch is dropped */
	assert_int_equal(eng_applied_index(f->e), saved);
	assert_int_equal(digest(f->e), d1);
	assert_int_equal(apply_register(f->e, saved + 1, ids, 1, &res), 0);
	assert_false(res.skipped);
	assert_int_equal(res.code, 0);
	flush_ok(f->e);
	assert_true(user_exists(f->e, "zz"));
	assert_int_equal(check_problems(f->e, true), 0);

	/* The same history applied to a fresh engine gives the same digest. */
	char dir2[80];
	snprintf(dir2, sizeof(dir2), "%s2", f->dir);
	struct eng *e2 = open_at(dir2, 0, 0);
	apply_history(e2);
	flush_ok(e2);
	assert_int_equal(digest(e2), d1);
	eng_close(e2);
	rm_rf(dir2);
}

static int collect_ids(const struct eng_user *u, void *arg)
{
	struct im_buf *b = arg;
	im_buf_add(b, u->user_id.p, u->user_id.n);
	im_buf_add(b, ",", 1);
	return 0;
}

static int stop_at_third(const struct eng_user *u, void *arg)
{
	int *n = arg;
	return ++*n == 3 ? 42 : 0;
}

static void user_scan_pages_in_registration_order(void **state)
{
	struct fx *f = *state;
	char names[25][8];
	const char *ids[25];
	struct im_buf want = {0};
	for (int i = 0; i < 25; i++) {
		/* Names out of key order, so order comes from user_order. */
		snprintf(names[i], sizeof(names[i]), "%c%d", 'z' - i % 26, i);
		ids[i] = names[i];
		im_buf_printf(&want, "%s,", names[i]);
	}
	struct eng_result res;
	assert_int_equal(apply_register(f->e, 1, ids, 7, &res), 0);
	assert_int_equal(apply_register(f->e, 2, ids + 7, 1, &res), 0);
	assert_int_equal(apply_register(f->e, 3, ids + 5, 3, &res), 0); /* fails */
	assert_int_equal(res.code, IM_EEXIST);
	assert_int_equal(apply_register(f->e, 4, ids + 8, 17, &res), 0);
	flush_ok(f->e);

	struct eng_rtxn *r;
	struct im_buf got = {0};
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	for (uint64_t off = 0; off < 30; off += 10)
		assert_int_equal(eng_user_scan(r, off, 10, collect_ids, &got), 0);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.p, want.p, want.len);
	got.len = 0;
	assert_int_equal(eng_user_scan(r, 20, 0, collect_ids, &got), 0);
	assert_string_equal(got.p, strchr(want.p, '\0') - (got.len));
	got.len = 0;
	assert_int_equal(eng_user_scan(r, 25, 10, collect_ids, &got), 0);
	assert_int_equal(got.len, 0);
	assert_int_equal(eng_user_scan(r, UINT64_MAX, 1, collect_ids, &got), 0);
	assert_int_equal(got.len, 0);
	int n = 0;
	assert_int_equal(eng_user_scan(r, 0, 0, stop_at_third, &n), 42);
	assert_int_equal(n, 3);
	eng_read_end(r);
	im_buf_free(&got);
	im_buf_free(&want);
}

/* ---------------------------------------------------------------- tokens */

static void token_policy1_kicks_same_platform_and_cleans_up(void **state)
{
	struct fx *f = *state;
	register_ok(f->e, 1, "u1");
	int64_t now = 1700000000000;
	issue_ok(f->e, 2, "u1", 1, "t1", now, 1, 0);
	issue_ok(f->e, 3, "u1", 2, "t2", now, 1, 0);
	flush_ok(f->e);
	bool any = false;
	assert_int_equal(token_status(f->e, "u1", 1, "t1", &any), ENG_TOKEN_NORMAL);
	assert_true(any);
	assert_int_equal(token_status(f->e, "u1", 2, "t2", NULL), ENG_TOKEN_NORMAL);

	/* A new token on platform 1 kicks t1, not the platform 2 token. */
	issue_ok(f->e, 4, "u1", 1, "t3", now + 1000, 1, 0);
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "u1", 1, "t1", NULL), ENG_TOKEN_KICKED);
	assert_int_equal(token_status(f->e, "u1", 1, "t3", NULL), ENG_TOKEN_NORMAL);
	assert_int_equal(token_status(f->e, "u1", 2, "t2", NULL), ENG_TOKEN_NORMAL);

	/* The next issue deletes the kicked t1 and kicks t3. */
	issue_ok(f->e, 5, "u1", 1, "t4", now + 2000, 1, 0);
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "u1", 1, "t1", &any), -1);
	assert_true(any);
	assert_int_equal(token_status(f->e, "u1", 1, "t3", NULL), ENG_TOKEN_KICKED);
	assert_int_equal(token_status(f->e, "u1", 1, "t4", NULL), ENG_TOKEN_NORMAL);
	assert_int_equal(token_status(f->e, "u1", 3, "t4", &any), -1);
	assert_false(any);
	/* A token of another user with the same bytes is a different key. */
	assert_int_equal(token_status(f->e, "u", 1, "t4", &any), -1);
	assert_false(any);
	assert_int_equal(check_problems(f->e, true), 0);
}

static void token_issue_deletes_expired_tokens(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	register_ok(f->e, 1, "u1");
	int64_t now = 1700000000000;
	/* Expires one second after now. */
	assert_int_equal(apply_issue(f->e, 2, "u1", 3, "old", now, now / 1000 + 1, 0, 0, &res), 0);
	issue_ok(f->e, 3, "u1", 4, "keep", now, 0, 0);
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "u1", 3, "old", NULL), ENG_TOKEN_NORMAL);
	/* Issued at the expiry second: still valid (expire_at >= now). */
	issue_ok(f->e, 4, "u1", 1, "n1", now + 1000, 0, 0);
	assert_int_equal(eng_flush(f->e), 0);
	assert_int_equal(token_status(f->e, "u1", 3, "old", NULL), ENG_TOKEN_NORMAL);
	issue_ok(f->e, 5, "u1", 1, "n2", now + 2000, 0, 0);
	flush_ok(f->e);
	bool any = true;
	assert_int_equal(token_status(f->e, "u1", 3, "old", &any), -1);
	assert_false(any);
	assert_int_equal(token_status(f->e, "u1", 4, "keep", NULL), ENG_TOKEN_NORMAL);
	assert_int_equal(token_status(f->e, "u1", 1, "n1", NULL), ENG_TOKEN_NORMAL);
}

static void token_policy0_keeps_max_per_platform(void **state)
{
	struct fx *f = *state;
	register_ok(f->e, 1, "u1");
	int64_t now = 1700000000000;
	/* Keys sort "c" < "d" < "e"; issue times make "e" the oldest. */
	issue_ok(f->e, 2, "u1", 5, "e", now, 0, 2);
	issue_ok(f->e, 3, "u1", 5, "c", now + 1, 0, 2);
	issue_ok(f->e, 4, "u1", 5, "d", now + 2, 0, 2);
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "u1", 5, "e", NULL), ENG_TOKEN_KICKED);
	assert_int_equal(token_status(f->e, "u1", 5, "c", NULL), ENG_TOKEN_NORMAL);
	assert_int_equal(token_status(f->e, "u1", 5, "d", NULL), ENG_TOKEN_NORMAL);
	/* Re-issuing a stored token does not count it twice. */
	issue_ok(f->e, 5, "u1", 5, "d", now + 3, 0, 2);
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "u1", 5, "c", NULL), ENG_TOKEN_NORMAL);
	assert_int_equal(token_status(f->e, "u1", 5, "e", NULL), -1);
	/* max_per_platform 0: no limit. */
	for (int i = 0; i < 5; i++) {
		char t[8];
		snprintf(t, sizeof(t), "x%d", i);
		issue_ok(f->e, 6 + (uint64_t)i, "u1", 6, t, now + 10 + i, 0, 0);
	}
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "u1", 6, "x0", NULL), ENG_TOKEN_NORMAL);
	assert_int_equal(token_status(f->e, "u1", 6, "x4", NULL), ENG_TOKEN_NORMAL);
}

static void token_issue_rejects_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	register_ok(f->e, 1, "u1");
	assert_int_equal(apply_issue(f->e, 2, "ghost", 1, "t", 1000, 5, 1, 0, &res), 0);
	assert_int_equal(res.code, IM_ENOTFOUND);
	assert_non_null(strstr(res.detail, "ghost"));
	assert_int_equal(apply_issue(f->e, 3, "u1", 256, "t", 1000, 5, 1, 0, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_int_equal(apply_issue(f->e, 4, "u1", -1, "t", 1000, 5, 1, 0, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_int_equal(apply_issue(f->e, 5, "u1", 1, "", 1000, 5, 1, 0, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_int_equal(apply_issue(f->e, 6, "u1", 1, "t", 1000, 5, 7, 0, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_int_equal(apply_kick(f->e, 7, "u1", 300, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	flush_ok(f->e);
	bool any = true;
	assert_int_equal(token_status(f->e, "u1", 1, "t", &any), -1);
	assert_false(any);
	assert_int_equal(eng_applied_index(f->e), 7);
}

static int count_tokens(const struct eng_token *t, void *arg)
{
	int *n = arg;
	assert_int_equal(t->status, ENG_TOKEN_KICKED);
	(*n)++;
	return 0;
}

static void token_kick_marks_every_token_of_the_platform(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	register_ok(f->e, 1, "u1");
	issue_ok(f->e, 2, "u1", 2, "a", 1000, 0, 0);
	issue_ok(f->e, 3, "u1", 2, "b", 1000, 0, 0);
	issue_ok(f->e, 4, "u1", 3, "c", 1000, 0, 0);
	assert_int_equal(apply_kick(f->e, 5, "u1", 2, &res), 0);
	assert_int_equal(res.code, 0);
	/* Nothing to kick is not an error, even for an unknown user. */
	assert_int_equal(apply_kick(f->e, 6, "u1", 9, &res), 0);
	assert_int_equal(res.code, 0);
	assert_int_equal(apply_kick(f->e, 7, "ghost", 2, &res), 0);
	assert_int_equal(res.code, 0);
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "u1", 2, "a", NULL), ENG_TOKEN_KICKED);
	assert_int_equal(token_status(f->e, "u1", 2, "b", NULL), ENG_TOKEN_KICKED);
	assert_int_equal(token_status(f->e, "u1", 3, "c", NULL), ENG_TOKEN_NORMAL);
	/* Kicked tokens stay kicked after a restart. */
	reopen(f, 0, 0);
	struct eng_rtxn *r;
	int n = 0;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_token_scan(r, IM_STR_LIT("u1"), 2, count_tokens, &n), 0);
	eng_read_end(r);
	assert_int_equal(n, 2);
}

/* ---------------------------------------------------------------- user commands */

static void user_cmd_add_update_del_follow_the_rules(void **state)
{
	struct fx *f = *state;
	register_ok(f->e, 1, "u1");
	ucmd_expect(f->e, 2, ENG_CMD_USER_CMD_ADD, 0, ucmd("u1", 1, "a", "v1", "e1"), 1000, 0);
	/* Like everything else, invisible until the batch commits. */
	assert_string_equal(ucmd_list(f->e, "u1", -1), "");
	flush_ok(f->e);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "1:a=v1/e1@1000;");
	uint32_t before = digest(f->e);

	/* Each rejection consumes its index and changes nothing else. */
	struct eng_result res;
	assert_int_equal(apply_ucmd(f->e, 3, ENG_CMD_USER_CMD_ADD, 0,
				    ucmd("u1", 1, "a", "v2", NULL), 2000, &res),
			 0);
	assert_int_equal(res.code, IM_EEXIST);
	assert_non_null(strstr(res.detail, "u1"));
	assert_non_null(strstr(res.detail, "already exists"));
	assert_int_equal(
	    apply_ucmd(f->e, 4, ENG_CMD_USER_CMD_ADD, 0, ucmd("ghost", 1, "a", "v", NULL), 1, &res),
	    0);
	assert_int_equal(res.code, IM_ENOTFOUND);
	assert_non_null(strstr(res.detail, "ghost"));
	ucmd_expect(f->e, 5, ENG_CMD_USER_CMD_ADD, 0, ucmd("u1", 1, "", "v", NULL), 1, IM_EINVAL);
	ucmd_expect(f->e, 6, ENG_CMD_USER_CMD_ADD, 0, ucmd("", 1, "a", "v", NULL), 1, IM_EINVAL);
	ucmd_expect(f->e, 7, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_VALUE, ucmd("u1", 1, "b", "v", NULL),
		    1, IM_ENOTFOUND);
	/* The type is part of the key. */
	ucmd_expect(f->e, 8, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_VALUE, ucmd("u1", 2, "a", "v", NULL),
		    1, IM_ENOTFOUND);
	ucmd_expect(f->e, 9, ENG_CMD_USER_CMD_UPDATE, 1u << 5, ucmd("u1", 1, "a", "v", NULL), 1,
		    IM_EINVAL);
	ucmd_expect(f->e, 10, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_VALUE, ucmd("u1", 1, "", "v", NULL),
		    1, IM_EINVAL);
	ucmd_expect(f->e, 11, ENG_CMD_USER_CMD_DEL, 0, ucmd("u1", 1, "b", NULL, NULL), 1,
		    IM_ENOTFOUND);
	ucmd_expect(f->e, 12, ENG_CMD_USER_CMD_DEL, 0, ucmd("u1", 1, "", NULL, NULL), 1, IM_EINVAL);
	ucmd_expect(f->e, 13, ENG_CMD_USER_CMD_DEL, 0, ucmd("ghost", 1, "a", NULL, NULL), 1,
		    IM_ENOTFOUND);
	assert_int_equal(eng_applied_index(f->e), 13);
	flush_ok(f->e);
	assert_int_equal(digest(f->e), before);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "1:a=v1/e1@1000;");
	assert_string_equal(ucmd_list(f->e, "ghost", -1), "");

	/* Update writes the masked fields only and keeps create_time. */
	ucmd_expect(f->e, 14, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_VALUE,
		    ucmd("u1", 1, "a", "v2", "not me"), 5000, 0);
	flush_ok(f->e);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "1:a=v2/e1@1000;");
	ucmd_expect(f->e, 15, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_EX, ucmd("u1", 1, "a", "x", ""),
		    6000, 0);
	ucmd_expect(f->e, 16, ENG_CMD_USER_CMD_UPDATE, 0, ucmd("u1", 1, "a", "x", "y"), 7000, 0);
	flush_ok(f->e);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "1:a=v2/@1000;");
	ucmd_expect(f->e, 17, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_VALUE | ENG_UCMD_EX,
		    ucmd("u1", 1, "a", "v3", "e3"), 7000, 0);
	flush_ok(f->e);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "1:a=v3/e3@1000;");
	assert_int_equal(check_problems(f->e, true), 0);

	/* Delete, then it is gone: a second delete and an update fail. */
	ucmd_expect(f->e, 18, ENG_CMD_USER_CMD_DEL, 0, ucmd("u1", 1, "a", NULL, NULL), 8000, 0);
	ucmd_expect(f->e, 19, ENG_CMD_USER_CMD_DEL, 0, ucmd("u1", 1, "a", NULL, NULL), 8000,
		    IM_ENOTFOUND);
	ucmd_expect(f->e, 20, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_VALUE,
		    ucmd("u1", 1, "a", "v", NULL), 8000, IM_ENOTFOUND);
	flush_ok(f->e);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "");
	/* Added again, it is a new command with a new create_time. */
	ucmd_expect(f->e, 21, ENG_CMD_USER_CMD_ADD, 0, ucmd("u1", 1, "a", NULL, NULL), 9000, 0);
	flush_ok(f->e);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "1:a=/@9000;");
	assert_int_equal(check_problems(f->e, true), 0);
}

static int stop_at_second_ucmd(const struct eng_user_cmd *c, void *arg)
{
	int *n = arg;
	return ++*n == 2 ? 7 : 0;
}

static void user_cmd_scan_orders_by_type_then_uuid(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	/* "u" is a prefix of "u1": the 0x00 separator keeps them apart. */
	const char *ids[] = {"u", "u1", "u2"};
	assert_int_equal(apply_register(f->e, 1, ids, 3, &res), 0);
	assert_int_equal(res.code, 0);
	uint64_t i = 2;
	const struct {
		int32_t type;
		const char *uuid;
	} adds[] = {{2, "b"}, {1, "z"}, {1, "a"}, {256, "m"}, {0, "k"}, {-1, "neg"}, {1, "aa"}};
	for (size_t k = 0; k < IM_ARRAY_LEN(adds); k++)
		ucmd_expect(f->e, i++, ENG_CMD_USER_CMD_ADD, 0,
			    ucmd("u1", adds[k].type, adds[k].uuid, NULL, NULL), 10, 0);
	ucmd_expect(f->e, i++, ENG_CMD_USER_CMD_ADD, 0, ucmd("u", 1, "a", "of u", NULL), 20, 0);
	ucmd_expect(f->e, i++, ENG_CMD_USER_CMD_ADD, 0, ucmd("u2", 1, "x", NULL, NULL), 30, 0);
	flush_ok(f->e);

	/* Types in unsigned order (negative last), uuids in byte order. */
	assert_string_equal(ucmd_list(f->e, "u1", -1), "0:k=/@10;1:a=/@10;1:aa=/@10;1:z=/@10;"
						       "2:b=/@10;256:m=/@10;-1:neg=/@10;");
	assert_string_equal(ucmd_list(f->e, "u1", 1), "1:a=/@10;1:aa=/@10;1:z=/@10;");
	assert_string_equal(ucmd_list(f->e, "u1", 256), "256:m=/@10;");
	assert_string_equal(ucmd_list(f->e, "u1", 0), "0:k=/@10;");
	assert_string_equal(ucmd_list(f->e, "u1", 3), "");
	assert_string_equal(ucmd_list(f->e, "u", -1), "1:a=of u/@20;");
	assert_string_equal(ucmd_list(f->e, "u2", -1), "1:x=/@30;");
	assert_string_equal(ucmd_list(f->e, "nobody", -1), "");
	assert_string_equal(ucmd_list(f->e, "", -1), "");

	/* A callback's non-zero value stops the scan and is returned. */
	struct eng_rtxn *r;
	int n = 0;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_user_cmd_scan(r, IM_STR_LIT("u1"), -1, stop_at_second_ucmd, &n), 7);
	eng_read_end(r);
	assert_int_equal(n, 2);
	assert_int_equal(check_problems(f->e, true), 0);
}

static void user_cmd_replay_is_skipped(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	register_ok(f->e, 1, "u1");
	struct eng_user_cmd a = ucmd("u1", 4, "id-1", "v", "e");
	ucmd_expect(f->e, 2, ENG_CMD_USER_CMD_ADD, 0, a, 100, 0);
	ucmd_expect(f->e, 3, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_VALUE, ucmd("u1", 4, "id-1", "w", 0),
		    200, 0);
	ucmd_expect(f->e, 4, ENG_CMD_USER_CMD_ADD, 0, ucmd("u1", 4, "id-2", NULL, NULL), 300, 0);
	ucmd_expect(f->e, 5, ENG_CMD_USER_CMD_DEL, 0, ucmd("u1", 4, "id-2", NULL, NULL), 400, 0);
	flush_ok(f->e);
	reopen(f, 0, 0);
	const char *want = "4:id-1=w/e@100;";
	assert_string_equal(ucmd_list(f->e, "u1", -1), want);

	/* The same entries again: skipped, not IM_EEXIST or IM_ENOTFOUND. */
	assert_int_equal(apply_ucmd(f->e, 2, ENG_CMD_USER_CMD_ADD, 0, a, 100, &res), 0);
	assert_true(res.skipped);
	assert_int_equal(res.code, 0);
	assert_int_equal(apply_ucmd(f->e, 3, ENG_CMD_USER_CMD_UPDATE, ENG_UCMD_VALUE,
				    ucmd("u1", 4, "id-1", "w", 0), 200, &res),
			 0);
	assert_true(res.skipped);
	assert_int_equal(apply_ucmd(f->e, 4, ENG_CMD_USER_CMD_ADD, 0,
				    ucmd("u1", 4, "id-2", NULL, NULL), 300, &res),
			 0);
	assert_true(res.skipped);
	assert_int_equal(apply_ucmd(f->e, 5, ENG_CMD_USER_CMD_DEL, 0,
				    ucmd("u1", 4, "id-2", NULL, NULL), 400, &res),
			 0);
	assert_true(res.skipped);
	assert_int_equal(res.code, 0);
	assert_false(eng_dirty(f->e));
	assert_int_equal(eng_applied_index(f->e), 5);
	assert_string_equal(ucmd_list(f->e, "u1", -1), want);
	assert_int_equal(check_problems(f->e, true), 0);
}

/* ---------------------------------------------------------------- check, open */

/* Runs fn on a plain LMDB write txn of the engine (no batch open). */
static void inject(struct eng *e, void (*fn)(struct eng *, MDB_txn *))
{
	MDB_txn *txn;
	assert_false(eng_dirty(e));
	assert_int_equal(mdb_txn_begin(eng__env(e), NULL, 0, &txn), 0);
	fn(e, txn);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

static void del_order_2(struct eng *e, MDB_txn *txn)
{
	unsigned char k[8];
	im_put_be64(k, 2);
	MDB_val key = {8, k};
	assert_int_equal(mdb_del(txn, eng__dbi(e, ENG__T_USER_ORDER), &key, NULL), 0);
}

static void add_orphan_token(struct eng *e, MDB_txn *txn)
{
	MDB_val key = {8, "ghost\0\x01t"}, val = {ENG__TOKEN_VAL_LEN, "\x01\0\0\0\0\0\0\0\0\x01"
								      "\0\0\0\0\0\0\0\0"};
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_TOKENS), &key, &val, 0), 0);
}

static void bad_user_record(struct eng *e, MDB_txn *txn)
{
	MDB_val key = {2, "u3"}, val = {3, "\x01zz"};
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_USERS), &key, &val, 0), 0);
}

/* Puts a user command (user, type 1, uuid) with a valid value, or raw bytes. */
static void put_ucmd(struct eng *e, MDB_txn *txn, const char *user, const char *uuid,
		     const void *raw, size_t raw_n)
{
	unsigned char k[ENG__UCMD_KEY_MAX], v[64];
	struct eng_user_cmd c = ucmd(user, 1, uuid, "v", NULL);
	MDB_val key = {eng__ucmd_key(k, c.user_id, c.type, c.uuid), k}, val = {raw_n, (void *)raw};
	if (raw == NULL) {
		val.mv_size = eng__ucmd_val_size(&c);
		assert_true(val.mv_size <= sizeof(v));
		eng__ucmd_val_encode(v, &c);
		val.mv_data = v;
	}
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_USER_CMDS), &key, &val, 0), 0);
}

static void add_orphan_ucmd(struct eng *e, MDB_txn *txn)
{
	put_ucmd(e, txn, "ghost", "g1", NULL, 0);
}

static void add_bad_ucmds(struct eng *e, MDB_txn *txn)
{
	put_ucmd(e, txn, "u1", "bad-value", "\x01zz", 3);
	put_ucmd(e, txn, "u1", "new-format", "\x02", 1);
	/* A key without the 0x00 separator. */
	MDB_val key = {8, "nonulkey"}, val = {1, "\x01"};
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_USER_CMDS), &key, &val, 0), 0);
}

static void check_detects_bad_user_cmds(void **state)
{
	struct fx *f = *state;
	register_ok(f->e, 1, "u1");
	ucmd_expect(f->e, 2, ENG_CMD_USER_CMD_ADD, 0, ucmd("u1", 1, "ok", "v", NULL), 1, 0);
	flush_ok(f->e);
	assert_int_equal(check_problems(f->e, true), 0);

	/* A command of a user that was never registered. */
	inject(f->e, add_orphan_ucmd);
	struct im_buf rep = {0};
	int n = eng_check(f->e, &rep);
	printf("after an orphan user command (%d problems):\n%s", n, rep.p ? rep.p : "");
	assert_int_equal(n, 1);
	assert_non_null(strstr(rep.p, "user_cmds (ghost, 1, g1): user does not exist"));
	assert_non_null(strstr(rep.p, "user does not exist"));
	/* The scan of that user still returns it: check is what finds orphans. */
	assert_string_equal(ucmd_list(f->e, "ghost", -1), "1:g1=v/@0;");
	im_buf_free(&rep);

	inject(f->e, add_bad_ucmds);
	n = eng_check(f->e, &rep);
	printf("plus undecodable user commands (%d problems):\n%s", n, rep.p);
	assert_int_equal(n, 4);
	assert_non_null(strstr(rep.p, "(u1, 1, bad-value): value does not decode"));
	assert_non_null(strstr(rep.p, "(u1, 1, new-format): value does not decode"));
	assert_non_null(strstr(rep.p, "key 'nonulkey' does not decode"));
	im_buf_free(&rep);
	/* A reader meeting such a record reports it. */
	struct eng_rtxn *r;
	struct im_buf b = {0};
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_user_cmd_scan(r, IM_STR_LIT("u1"), -1, collect_ucmd, &b), IM_ECORRUPT);
	eng_read_end(r);
	im_buf_free(&b);
}

static void check_detects_injected_corruption(void **state)
{
	struct fx *f = *state;
	for (uint64_t i = 1; i <= 4; i++) {
		char id[8];
		snprintf(id, sizeof(id), "u%" PRIu64, i);
		register_ok(f->e, i, id);
	}
	issue_ok(f->e, 5, "u1", 1, "tok", 1000, 1, 0);
	flush_ok(f->e);
	assert_int_equal(check_problems(f->e, true), 0);

	inject(f->e, del_order_2);
	struct im_buf rep = {0};
	int n = eng_check(f->e, &rep);
	printf("after deleting user_order 2 (%d problems):\n%s", n, rep.p ? rep.p : "");
	assert_true(n >= 1);
	assert_non_null(strstr(rep.p, "u2"));
	im_buf_free(&rep);

	inject(f->e, add_orphan_token);
	inject(f->e, bad_user_record);
	int n2 = eng_check(f->e, &rep);
	printf("plus an orphan token and a bad record (%d problems):\n%s", n2, rep.p);
	assert_true(n2 >= n + 2);
	assert_non_null(strstr(rep.p, "ghost"));
	assert_non_null(strstr(rep.p, "u3"));
	im_buf_free(&rep);
	/* Without a report it still counts. */
	assert_int_equal(eng_check(f->e, NULL), n2);
}

static void put_schema_2(struct eng *e, MDB_txn *txn)
{
	/* One above ENG__SCHEMA_VERSION (2). */
	MDB_val key = {6, "schema"}, val = {4, "\0\0\0\x03"};
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_META), &key, &val, 0), 0);
}

static void open_refuses_newer_schema(void **state)
{
	struct fx *f = *state;
	inject(f->e, put_schema_2);
	eng_close(f->e);
	f->e = NULL;
	struct eng_opts o = {.dir = f->dir};
	char err[256] = "";
	assert_int_equal(eng_open(&f->e, &o, err, sizeof(err)), IM_EVERSION);
	assert_null(f->e);
	assert_non_null(strstr(err, "schema"));
}

static void read_only_open_reads_and_refuses_writes(void **state)
{
	struct fx *f = *state;
	register_ok(f->e, 1, "u1");
	flush_ok(f->e);
	eng_close(f->e);
	struct eng_opts o = {.dir = f->dir, .read_only = true};
	char err[256];
	assert_int_equal(eng_open(&f->e, &o, err, sizeof(err)), 0);
	struct eng_result res;
	assert_int_equal(apply_register(f->e, 2, (const char *[]){"u2"}, 1, &res), IM_EREADONLY);
	assert_true(user_exists(f->e, "u1"));
	assert_int_equal(eng_applied_index(f->e), 1);
	assert_int_equal(check_problems(f->e, true), 0);
	/* A missing directory is an error in read-only mode. */
	struct eng *e2 = NULL;
	o.dir = "/nonexistent/imlog";
	assert_true(eng_open(&e2, &o, err, sizeof(err)) < 0);
	assert_null(e2);
}

static void drop_user_cmds(struct eng *e, MDB_txn *txn)
{
	assert_int_equal(mdb_drop(txn, eng__dbi(e, ENG__T_USER_CMDS), 1), 0);
}

/* An environment written before user_cmds existed (schema 1 all the same). */
static void open_handles_an_environment_without_user_cmds(void **state)
{
	struct fx *f = *state;
	register_ok(f->e, 1, "u1");
	flush_ok(f->e);
	inject(f->e, drop_user_cmds);
	eng_close(f->e);

	/* Read-only cannot create the table: it reads as empty. */
	struct eng_opts o = {.dir = f->dir, .read_only = true};
	char err[256];
	if (eng_open(&f->e, &o, err, sizeof(err)) != 0)
		fail_msg("read-only open: %s", err);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "");
	assert_int_equal(check_problems(f->e, true), 0);
	eng_close(f->e);

	/* Read-write creates it, and user commands work. */
	f->e = open_at(f->dir, 0, 0);
	assert_int_equal(eng_applied_index(f->e), 1);
	ucmd_expect(f->e, 2, ENG_CMD_USER_CMD_ADD, 0, ucmd("u1", 1, "a", NULL, NULL), 5, 0);
	flush_ok(f->e);
	assert_string_equal(ucmd_list(f->e, "u1", -1), "1:a=/@5;");
	assert_int_equal(check_problems(f->e, true), 0);
}

static void apply_reports_out_of_memory_without_effect(void **state)
{
	struct fx *f = *state;
	struct eng_result res;
	struct eng_user u[2] = {{.user_id = IM_STR_LIT("m1")}, {.user_id = IM_STR_LIT("m2")}};
	struct eng_cmd c = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1};
	c.u.user_register.n = 2;
	c.u.user_register.users = u;
	struct im_buf b = {0};
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	/* The 1st allocation is the decoded user array, the 2nd the record buffer. */
	for (long n = 1; n <= 2; n++) {
		im_alloc_fail_after(n);
		int rv = eng_apply(f->e, 1, b.p, b.len, &res);
		im_alloc_fail_after(0);
		assert_int_equal(rv, -ENOMEM);
		assert_int_equal(eng_applied_index(f->e), 0);
	}
	assert_int_equal(eng_apply(f->e, 1, b.p, b.len, &res), 0);
	assert_int_equal(res.code, 0);
	flush_ok(f->e);
	assert_int_equal(user_count(f->e), 2);
	assert_int_equal(check_problems(f->e, true), 0);
	im_buf_free(&b);
}

/* ---------------------------------------------------------------- MAP_FULL */

/* Registers one user with a 1000-byte nickname. */
static int register_big(struct eng *e, uint64_t idx, struct eng_result *res)
{
	static char nick[1000];
	memset(nick, 'n', sizeof(nick));
	char id[16];
	snprintf(id, sizeof(id), "u%" PRIu64, idx);
	struct eng_user u = {.user_id = im_str_c(id), .nickname = {nick, sizeof(nick)}};
	struct eng_cmd c = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1};
	c.u.user_register.n = 1;
	c.u.user_register.users = &u;
	return apply_c(e, idx, &c, res);
}

static void map_full_refuses_writes_then_grows_on_reopen(void **state)
{
	struct fx *f = *state;
	reopen(f, 128 << 10, 512 << 10);
	struct eng_result res;
	uint64_t last_ok = 0, i;
	int rv = 0;
	for (i = 1; i < 5000; i++) {
		rv = register_big(f->e, i, &res);
		if (rv != 0)
			break;
		assert_int_equal(res.code, 0);
		last_ok = i;
		if (i % 3 == 0)
			flush_ok(f->e);
	}
	printf("map full after %" PRIu64 " users: %s\n", last_ok, eng_errmsg(f->e));
	assert_int_equal(rv, IM_EFULL);
	assert_true(last_ok > 100); /* the map did grow from 128 KiB */
	assert_true(eng_full(f->e));
	assert_non_null(strstr(eng_errmsg(f->e), "apply index="));
	/* Nothing of the refused command, everything before it. */
	assert_int_equal(eng_applied_index(f->e), last_ok);
	flush_ok(f->e);
	assert_int_equal(user_count(f->e), last_ok);
	for (uint64_t k = 1; k <= last_ok + 1; k++) {
		char id[16];
		snprintf(id, sizeof(id), "u%" PRIu64, k);
		assert_int_equal(user_exists(f->e, id), k <= last_ok);
	}
	assert_int_equal(check_problems(f->e, true), 0);
	/* Still full on a second try; replays are still skipped. */
	assert_int_equal(register_big(f->e, last_ok + 1, &res), IM_EFULL);
	assert_int_equal(register_big(f->e, last_ok, &res), 0);
	assert_true(res.skipped);

	/* A bigger limit lets the same entry and more through. */
	reopen(f, 128 << 10, 2 << 20);
	assert_int_equal(eng_applied_index(f->e), last_ok);
	assert_false(eng_full(f->e));
	for (i = last_ok + 1; i <= last_ok + 200; i++) {
		assert_int_equal(register_big(f->e, i, &res), 0);
		assert_int_equal(res.code, 0);
	}
	flush_ok(f->e);
	assert_int_equal(user_count(f->e), last_ok + 200);
	assert_int_equal(check_problems(f->e, true), 0);
}

static void map_growth_waits_for_the_reader(void **state)
{
	struct fx *f = *state;
	reopen(f, 128 << 10, 4 << 20);
	struct eng_rtxn *r;
	struct eng_result res;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	/* With a snapshot open the map cannot be remapped: apply says so. */
	uint64_t i;
	int rv = 0;
	for (i = 1; i < 2000 && rv == 0; i++) {
		rv = register_big(f->e, i, &res);
		if (rv == 0 && i % 2 == 0)
			flush_ok(f->e);
	}
	assert_int_equal(rv, IM_ESTORAGE);
	assert_false(eng_full(f->e));
	uint64_t failed = i - 1;
	assert_int_equal(eng_applied_index(f->e), failed - 1);
	assert_int_equal(eng_user_count(r), 0); /* the old snapshot */
	eng_read_end(r);
	/* Once the reader is gone the same entry applies. */
	assert_int_equal(register_big(f->e, failed, &res), 0);
	assert_int_equal(res.code, 0);
	flush_ok(f->e);
	assert_int_equal(user_count(f->e), failed);
}

/* ---------------------------------------------------------------- crashes */

static void xwrite(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		_exit(9);
}

/* The child: applies "u<i>" at index i, acknowledging each flushed index. */
static void crash_child(const char *dir, int wfd, unsigned seed)
{
	struct eng_opts o = {.dir = dir, .map_size = 128 << 10, .map_max = 64 << 20};
	struct eng *e;
	if (eng_open(&e, &o, NULL, 0) != 0)
		_exit(2);
	srand(seed);
	uint64_t start = eng_applied_index(e) + 1;
	/* Sometimes start a little early, as Raft does after a crash. */
	uint64_t from = start > 4 && rand() % 2 ? start - 1 - (uint64_t)(rand() % 3) : start;
	static char nick[300];
	memset(nick, 'k', sizeof(nick));
	for (uint64_t i = from; i < from + 100000; i++) {
		char id[24];
		snprintf(id, sizeof(id), "u%" PRIu64, i);
		struct eng_user u = {.user_id = im_str_c(id),
				     .nickname = {nick, (uint32_t)(rand() % 300)}};
		struct eng_cmd c = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1};
		c.u.user_register.n = 1;
		c.u.user_register.users = &u;
		struct im_buf b = {0};
		struct eng_result res;
		if (eng_cmd_encode(&c, &b) != 0 || eng_apply(e, i, b.p, b.len, &res) != 0)
			_exit(3);
		im_buf_free(&b);
		if (i < start && !res.skipped)
			_exit(4);
		if (i >= start && (res.skipped || res.code != 0))
			_exit(5);
		if (rand() % 4 == 0) {
			if (eng_flush(e) != 0)
				_exit(6);
			uint64_t a = eng_applied_index(e);
			xwrite(wfd, &a, sizeof(a));
		}
	}
	_exit(0);
}

static void crash_at_random_points_loses_no_ack(void **state)
{
	struct fx *f = *state;
	unsigned seed = test_seed("crash_at_random_points_loses_no_ack");
	srand(seed);
	eng_close(f->e); /* no environment open across fork */
	f->e = NULL;
	uint64_t acked = 0;
	for (int round = 0; round < 20; round++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		unsigned child_seed = (unsigned)rand();
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(f->dir, p[1], child_seed);
		}
		close(p[1]);
		int want = 1 + rand() % 40;
		for (int k = 0; k < want; k++) {
			uint64_t a;
			ssize_t n = read(p[0], &a, sizeof(a));
			if (n != (ssize_t)sizeof(a)) {
				int st;
				waitpid(pid, &st, 0);
				fail_msg("round %d: child ended early, status 0x%x", round, st);
			}
			assert_true(a >= acked);
			acked = a;
		}
		kill(pid, SIGKILL);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		close(p[0]);
	}

	f->e = open_at(f->dir, 0, 0);
	uint64_t applied = eng_applied_index(f->e);
	printf("acknowledged %" PRIu64 ", applied %" PRIu64 "\n", acked, applied);
	assert_true(applied >= acked);
	assert_int_equal(user_count(f->e), applied);
	/* Exactly u1..u<applied>, once each, in order. */
	struct eng_rtxn *r;
	struct im_buf got = {0}, want = {0};
	for (uint64_t i = 1; i <= applied; i++)
		im_buf_printf(&want, "u%" PRIu64 ",", i);
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_user_scan(r, 0, 0, collect_ids, &got), 0);
	eng_read_end(r);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.p, want.p, want.len);
	char next[24];
	snprintf(next, sizeof(next), "u%" PRIu64, applied + 1);
	assert_false(user_exists(f->e, next));
	assert_int_equal(check_problems(f->e, true), 0);
	im_buf_free(&got);
	im_buf_free(&want);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(registers_and_reads_back),
	    T(register_existing_user_fails_and_changes_nothing),
	    T(bad_command_bytes_consume_their_index),
	    T(updates_only_masked_fields),
	    T(replay_skips_applied_indexes),
	    T(user_scan_pages_in_registration_order),
	    T(token_policy1_kicks_same_platform_and_cleans_up),
	    T(token_issue_deletes_expired_tokens),
	    T(token_policy0_keeps_max_per_platform),
	    T(token_issue_rejects_bad_arguments),
	    T(token_kick_marks_every_token_of_the_platform),
	    T(user_cmd_add_update_del_follow_the_rules),
	    T(user_cmd_scan_orders_by_type_then_uuid),
	    T(user_cmd_replay_is_skipped),
	    T(check_detects_injected_corruption),
	    T(check_detects_bad_user_cmds),
	    T(open_refuses_newer_schema),
	    T(read_only_open_reads_and_refuses_writes),
	    T(open_handles_an_environment_without_user_cmds),
	    T(apply_reports_out_of_memory_without_effect),
	    T(map_full_refuses_writes_then_grows_on_reopen),
	    T(map_growth_waits_for_the_reader),
	    T(crash_at_random_points_loses_no_ack),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
