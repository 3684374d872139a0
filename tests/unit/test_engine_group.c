/* test_engine_group.c - group set, member set, transfer, dismiss, join requests, hide_history,
 * the conversation log and friend profile logs: apply, logs, rejects, replay, codec. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine_int.h"
#include "eng_fixture.h"

/* ---------------------------------------------------------------- fixture */

static void flush_ok(struct eng *e)
{
	int rv = eng_flush(e);
	if (rv != 0)
		fail_msg("eng_flush: %d %s", rv, eng_errmsg(e));
}

/* Applies c at the next index and flushes; the result code must be `code`.  Returns the index. */
static uint64_t expect(struct fx *f, const struct eng_cmd *c, int code)
{
	struct im_buf b = {0};
	struct eng_result res;
	assert_int_equal(eng_cmd_encode(c, &b), 0);
	uint64_t idx = f->idx++;
	int rv = eng_apply(f->e, idx, b.p, b.len, &res);
	im_buf_free(&b);
	if (rv != 0)
		fail_msg("apply %" PRIu64 ": %d %s", idx, rv, eng_errmsg(f->e));
	assert_false(res.skipped);
	if (res.code != code)
		fail_msg("apply %" PRIu64 " type %d: code %d, want %d (%s)", idx, c->type, res.code,
			 code, res.detail);
	flush_ok(f->e);
	return idx;
}

static int check_problems(struct eng *e)
{
	struct im_buf rep = {0};
	int n = eng_check(e, &rep);
	if (n != 0 && rep.len)
		printf("check report (%d problems):\n%s", n, rep.p);
	im_buf_free(&rep);
	return n;
}

/* A CRC of every key and value of every table but meta (whose applied index moves). */
static uint32_t digest(struct eng *e)
{
	MDB_txn *txn;
	assert_false(eng_dirty(e));
	assert_int_equal(mdb_txn_begin(eng__env(e), NULL, MDB_RDONLY, &txn), 0);
	uint32_t crc = 0;
	for (int t = ENG__T_META + 1; t < ENG__T_COUNT; t++) {
		MDB_cursor *c;
		MDB_val k, v;
		assert_int_equal(mdb_cursor_open(txn, eng__dbi(e, t), &c), 0);
		for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			crc = im_crc32(crc, k.mv_data, k.mv_size);
			crc = im_crc32(crc, v.mv_data, v.mv_size);
		}
		crc = im_crc32(crc, "|", 1);
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return crc;
}

/* A rejected command: the code, and nothing but the applied index changed. */
static void expect_reject(struct fx *f, const struct eng_cmd *c, int code)
{
	uint32_t before = digest(f->e);
	expect(f, c, code);
	assert_int_equal(digest(f->e), before);
	assert_int_equal(check_problems(f->e), 0);
}

static void register_users(struct fx *f, const char *const *ids)
{
	struct eng_user u[16];
	uint32_t n = 0;
	for (; ids[n] != NULL; n++)
		u[n] = (struct eng_user){.user_id = im_str_c(ids[n]), .nickname = im_str_c(ids[n])};
	struct eng_cmd c = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1};
	c.u.user_register.n = n;
	c.u.user_register.users = u;
	expect(f, &c, 0);
}

static const char *const users[] = {"a", "b", "c", "d", "e", NULL};

/* ---------------------------------------------------------------- reads */

static uint64_t vlog_version(struct eng *e, int kind, const char *doc)
{
	struct eng_rtxn *r;
	uint64_t v = 0;
	uint8_t id[12];
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_vlog_get(r, kind, im_str_c(doc), id, &v);
	eng_read_end(r);
	assert_true(rv == 0 || rv == IM_ENOTFOUND);
	return rv == 0 ? v : 0;
}

static char outbuf[4096];

static int collect_entry(struct im_str elem, int state, uint64_t version, void *arg)
{
	size_t n = strlen(outbuf);
	snprintf(outbuf + n, sizeof(outbuf) - n, "%.*s:%d:%" PRIu64 ";", (int)elem.n, elem.p, state,
		 version);
	return 0;
}

/* The entries above `since` as "elem:state:version;...". */
static const char *since(struct eng *e, int kind, const char *doc, uint64_t v)
{
	struct eng_rtxn *r;
	outbuf[0] = '\0';
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_vlog_since(r, kind, im_str_c(doc), v, 200, collect_entry, NULL);
	eng_read_end(r);
	assert_int_equal(rv, 0);
	return outbuf;
}

static struct eng_group group_of(struct eng *e, const char *gid, char *name, size_t nn, char *owner,
				 size_t on)
{
	struct eng_rtxn *r;
	struct eng_group g;
	assert_int_equal(eng_read_begin(e, &r), 0);
	assert_int_equal(eng_group_get(r, im_str_c(gid), &g), 0);
	snprintf(name, nn, "%.*s", (int)g.group_name.n, g.group_name.p);
	snprintf(owner, on, "%.*s", (int)g.owner_user_id.n, g.owner_user_id.p);
	eng_read_end(r);
	return g;
}

/* role_level of (gid, uid), or -1 when not a member; *mute gets mute_end_time. */
static int32_t role_of(struct eng *e, const char *gid, const char *uid, int64_t *mute)
{
	struct eng_rtxn *r;
	struct eng_member m;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_member_get(r, im_str_c(gid), im_str_c(uid), &m);
	eng_read_end(r);
	if (mute != NULL)
		*mute = rv == 0 ? m.mute_end_time : 0;
	return rv == 0 ? m.role_level : -1;
}

/* user's sg_<gid> row (false without one). */
static bool conv_of(struct eng *e, const char *user, const char *conv, struct eng_conv *out)
{
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(e, &r), 0);
	bool ok = eng_conv_get(r, im_str_c(user), im_str_c(conv), out) == 0;
	eng_read_end(r);
	return ok;
}

static int collect_req(const struct eng_group_req *q, void *arg)
{
	size_t n = strlen(outbuf);
	snprintf(outbuf + n, sizeof(outbuf) - n, "%.*s>%.*s:%d,", (int)q->user_id.n, q->user_id.p,
		 (int)q->group_id.n, q->group_id.p, (int)q->handle_result);
	return 0;
}

static const char *reqs_of(struct eng *e, bool by_user, const char *id)
{
	struct eng_rtxn *r;
	outbuf[0] = '\0';
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = by_user ? eng_group_req_scan_user(r, im_str_c(id), collect_req, NULL)
			 : eng_group_req_scan_group(r, im_str_c(id), collect_req, NULL);
	eng_read_end(r);
	assert_int_equal(rv, 0);
	return outbuf;
}

/* ---------------------------------------------------------------- commands */

static struct eng_member gm[8];

static struct eng_cmd gcreate_cmd(const char *gid, const char *const *ids)
{
	uint32_t n = 0;
	for (; ids[n] != NULL; n++)
		gm[n] = (struct eng_member){
		    .user_id = im_str_c(ids[n]), .role_level = n == 0 ? 100 : 20, .join_time = 5};
	struct eng_cmd c = {.type = ENG_CMD_GROUP_CREATE, .now_ms = 5};
	c.m.group_create.group = (struct eng_group){.group_id = im_str_c(gid),
						    .group_name = IM_STR_LIT("old"),
						    .owner_user_id = im_str_c(ids[0]),
						    .group_type = 2};
	c.m.group_create.n_members = n;
	c.m.group_create.members = gm;
	return c;
}

static void gsend(struct fx *f, const char *gid, const char *from)
{
	char conv[64];
	snprintf(conv, sizeof(conv), "sg_%s", gid);
	struct eng_msg_item it = {.conv_id = im_str_c(conv),
				  .send_id = im_str_c(from),
				  .group_id = im_str_c(gid),
				  .session_type = 3,
				  .content_type = 101,
				  .flags = ENG_MSG_STORE,
				  .data = IM_STR_LIT("x")};
	struct eng_cmd c = {.type = ENG_CMD_MSG_SEND, .now_ms = 8, .n_items = 1, .items = &it};
	expect(f, &c, 0);
}

static struct eng_cmd gset_cmd(const char *gid, uint32_t mask)
{
	struct eng_cmd c = {.type = ENG_CMD_GROUP_SET, .now_ms = 20};
	c.m.group_set.mask = mask;
	c.m.group_set.group = (struct eng_group){.group_id = im_str_c(gid),
						 .group_name = IM_STR_LIT("new"),
						 .notification = IM_STR_LIT("hello all"),
						 .notification_update_time = 19,
						 .notification_user_id = IM_STR_LIT("a"),
						 .introduction = IM_STR_LIT("ignored"),
						 .status = 3};
	return c;
}

static uint32_t ms_masks[8];

static struct eng_cmd mset_cmd(const char *gid, const char *const *ids, uint32_t mask, int32_t role)
{
	uint32_t n = 0;
	for (; ids[n] != NULL; n++) {
		gm[n] = (struct eng_member){.user_id = im_str_c(ids[n]),
					    .role_level = role,
					    .nickname = IM_STR_LIT("nick"),
					    .mute_end_time = 99};
		ms_masks[n] = mask;
	}
	struct eng_cmd c = {.type = ENG_CMD_MEMBER_SET, .now_ms = 30};
	c.m.member_set.group_id = im_str_c(gid);
	c.m.member_set.n_members = n;
	c.m.member_set.members = gm;
	c.m.member_set.masks = ms_masks;
	return c;
}

static struct eng_cmd transfer_cmd(const char *gid, const char *to)
{
	struct eng_cmd c = {.type = ENG_CMD_GROUP_TRANSFER, .now_ms = 40};
	c.m.group_transfer.group_id = im_str_c(gid);
	c.m.group_transfer.new_owner = im_str_c(to);
	return c;
}

static struct eng_cmd dismiss_cmd(const char *gid, bool del)
{
	struct eng_cmd c = {.type = ENG_CMD_GROUP_DISMISS, .now_ms = 50};
	c.m.group_dismiss.group_id = im_str_c(gid);
	c.m.group_dismiss.delete_member = del;
	return c;
}

static struct eng_group_req reqs[4];

static struct eng_cmd rput_cmd(const char *gid, const char *uid)
{
	reqs[0] = (struct eng_group_req){.group_id = im_str_c(gid),
					 .user_id = im_str_c(uid),
					 .handle_result = 1, /* ignored: stored pending */
					 .req_msg = IM_STR_LIT("let me in"),
					 .req_time = 60,
					 .ex = IM_STR_LIT("x"),
					 .join_source = 3,
					 .inviter_user_id = IM_STR_LIT("b")};
	struct eng_cmd c = {.type = ENG_CMD_GROUP_REQ_PUT, .now_ms = 60};
	c.m.group_req_put.n_reqs = 1;
	c.m.group_req_put.reqs = reqs;
	return c;
}

static struct eng_cmd respond_cmd(const char *gid, const char *uid, int32_t hr, bool hide)
{
	struct eng_cmd c = {.type = ENG_CMD_GROUP_REQ_RESPOND, .now_ms = 70};
	c.m.group_req_respond.group_id = im_str_c(gid);
	c.m.group_req_respond.user_id = im_str_c(uid);
	c.m.group_req_respond.handler = IM_STR_LIT("a");
	c.m.group_req_respond.handle_result = hr;
	c.m.group_req_respond.handled_msg = IM_STR_LIT("ok");
	c.m.group_req_respond.hide_history = hide;
	return c;
}

/* ---------------------------------------------------------------- group set */

static void group_set_writes_masked_fields_and_logs(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", "c", NULL});
	expect(f, &c, 0);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_GROUP_MEMBER, "g"), 1);
	c = gset_cmd("g", ENG_GROUP_NAME | ENG_GROUP_NOTIFICATION | ENG_GROUP_STATUS);
	expect(f, &c, 0);
	char name[32], owner[32];
	struct eng_group g = group_of(f->e, "g", name, sizeof(name), owner, sizeof(owner));
	assert_string_equal(name, "new");
	assert_int_equal(g.status, 3);
	assert_int_equal(g.notification_update_time, 19);
	assert_int_equal(g.member_count, 3);
	/* One bump, the "" element. */
	assert_int_equal(vlog_version(f->e, ENG_VLOG_GROUP_MEMBER, "g"), 2);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 1), ":3:2;");

	/* Status back to 0 and the announcement: every member's row gets groupAtType 4. */
	uint64_t cv = vlog_version(f->e, ENG_VLOG_CONVERSATION, "b");
	c = gset_cmd("g", ENG_GROUP_STATUS | ENG_GROUP_AT_ANNOUNCE);
	c.m.group_set.group.status = 0;
	expect(f, &c, 0);
	g = group_of(f->e, "g", name, sizeof(name), owner, sizeof(owner));
	assert_int_equal(g.status, 0);
	assert_string_equal(name, "new");
	for (const char *u = "abc"; *u; u++) {
		char id[2] = {*u, 0};
		struct eng_conv cr;
		assert_true(conv_of(f->e, id, "sg_g", &cr));
		assert_int_equal(cr.group_at_type, 4);
	}
	assert_int_equal(vlog_version(f->e, ENG_VLOG_CONVERSATION, "b"), cv + 1);
	char want[64];
	snprintf(want, sizeof(want), "sg_g:3:%" PRIu64 ";", cv + 1);
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "b", cv), want);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_GROUP_MEMBER, "g"), 3);
	assert_int_equal(check_problems(f->e), 0);

	/* A member without a row (none is required) gets one, with an insert. */
	MDB_txn *txn;
	unsigned char k[ENG__CONV_KEY_MAX];
	assert_int_equal(mdb_txn_begin(eng__env(f->e), NULL, 0, &txn), 0);
	MDB_val key = {eng__key_join(k, IM_STR_LIT("c"), IM_STR_LIT("sg_g")), k};
	assert_int_equal(mdb_del(txn, eng__dbi(f->e, ENG__T_CONVS), &key, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	uint64_t cc = vlog_version(f->e, ENG_VLOG_CONVERSATION, "c");
	c = gset_cmd("g", ENG_GROUP_AT_ANNOUNCE);
	expect(f, &c, 0);
	struct eng_conv cr;
	assert_true(conv_of(f->e, "c", "sg_g", &cr));
	assert_int_equal(cr.group_at_type, 4);
	assert_int_equal(cr.conversation_type, 3);
	assert_true(im_str_eq(cr.group_id, IM_STR_LIT("g")));
	snprintf(want, sizeof(want), "sg_g:1:%" PRIu64 ";", cc + 1);
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "c", cc), want);
	assert_int_equal(check_problems(f->e), 0);
}

static void group_set_rejects_change_nothing(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", NULL});
	expect(f, &c, 0);
	c = gset_cmd("g", 1u << 20);
	expect_reject(f, &c, IM_EINVAL);
	c = gset_cmd("g", ENG_GROUP_STATUS);
	c.m.group_set.group.status = 2; /* only GROUP_DISMISS */
	expect_reject(f, &c, IM_EINVAL);
	c.m.group_set.group.status = 1;
	expect_reject(f, &c, IM_EINVAL);
	c = gset_cmd("nope", ENG_GROUP_NAME);
	expect_reject(f, &c, IM_ENOTFOUND);
	c = gset_cmd("", ENG_GROUP_NAME);
	expect_reject(f, &c, IM_EINVAL);
	c = dismiss_cmd("g", false);
	expect(f, &c, 0);
	c = gset_cmd("g", ENG_GROUP_NAME);
	expect_reject(f, &c, IM_EPERM);
}

/* ---------------------------------------------------------------- member set */

static void member_set_writes_fields_logs_and_sort_marker(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", "c", "d", NULL});
	expect(f, &c, 0);
	c = mset_cmd("g", (const char *[]){"b", "c", NULL}, ENG_MEMBER_ROLE, 60);
	ms_masks[1] = ENG_MEMBER_NICKNAME | ENG_MEMBER_MUTE_END;
	expect(f, &c, 0);
	int64_t mute;
	assert_int_equal(role_of(f->e, "g", "b", &mute), 60);
	assert_int_equal(mute, 0);
	assert_int_equal(role_of(f->e, "g", "c", &mute), 20);
	assert_int_equal(mute, 99);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_GROUP_MEMBER, "g"), 2);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 1),
			    "____S_O_R_T_I_D____:3:2;b:3:2;c:3:2;");
	/* Without ROLE: no sort marker. */
	c = mset_cmd("g", (const char *[]){"d", NULL}, ENG_MEMBER_EX, 0);
	expect(f, &c, 0);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 2), "d:3:3;");
	assert_int_equal(check_problems(f->e), 0);
}

static void member_set_rejects_change_nothing(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", "c", NULL});
	expect(f, &c, 0);
	c = mset_cmd("g", (const char *[]){"b", "e", NULL}, ENG_MEMBER_NICKNAME, 0);
	expect_reject(f, &c, IM_ENOTFOUND); /* e is not a member */
	c = mset_cmd("g", (const char *[]){"b", "a", NULL}, ENG_MEMBER_ROLE, 60);
	expect_reject(f, &c, IM_EPERM); /* the owner's role */
	c = mset_cmd("g", (const char *[]){"b", NULL}, ENG_MEMBER_ROLE, 100);
	expect_reject(f, &c, IM_EINVAL);
	c = mset_cmd("g", (const char *[]){"b", "c", "b", NULL}, ENG_MEMBER_NICKNAME, 0);
	expect_reject(f, &c, IM_EINVAL); /* b twice */
	c = mset_cmd("g", (const char *[]){"b", NULL}, 1u << 9, 0);
	expect_reject(f, &c, IM_EINVAL);
	c = mset_cmd("g", (const char *[]){NULL}, ENG_MEMBER_NICKNAME, 0);
	expect_reject(f, &c, IM_EINVAL);
	c = mset_cmd("nope", (const char *[]){"b", NULL}, ENG_MEMBER_NICKNAME, 0);
	expect_reject(f, &c, IM_ENOTFOUND);
}

/* ---------------------------------------------------------------- transfer */

static void transfer_swaps_roles_and_logs(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", "c", NULL});
	expect(f, &c, 0);
	c = mset_cmd("g", (const char *[]){"b", NULL}, ENG_MEMBER_ROLE | ENG_MEMBER_MUTE_END, 60);
	expect(f, &c, 0);
	c = transfer_cmd("g", "b");
	expect(f, &c, 0);
	int64_t mute;
	assert_int_equal(role_of(f->e, "g", "b", &mute), 100);
	assert_int_equal(mute, 0);
	assert_int_equal(role_of(f->e, "g", "a", NULL), 60);
	char name[32], owner[32];
	group_of(f->e, "g", name, sizeof(name), owner, sizeof(owner));
	assert_string_equal(owner, "b");
	assert_int_equal(vlog_version(f->e, ENG_VLOG_GROUP_MEMBER, "g"), 3);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 2),
			    ":3:3;____S_O_R_T_I_D____:3:3;a:3:3;b:3:3;");
	/* Back to c (a member, 20): b takes 20. */
	c = transfer_cmd("g", "c");
	expect(f, &c, 0);
	assert_int_equal(role_of(f->e, "g", "b", NULL), 20);
	assert_int_equal(role_of(f->e, "g", "c", NULL), 100);
	assert_int_equal(check_problems(f->e), 0);

	c = transfer_cmd("g", "c");
	expect_reject(f, &c, IM_EINVAL); /* the owner already */
	c = transfer_cmd("g", "e");
	expect_reject(f, &c, IM_ENOTFOUND);
	c = transfer_cmd("g", "");
	expect_reject(f, &c, IM_EINVAL);
	c = transfer_cmd("nope", "b");
	expect_reject(f, &c, IM_ENOTFOUND);
	c = dismiss_cmd("g", false);
	expect(f, &c, 0);
	c = transfer_cmd("g", "a");
	expect_reject(f, &c, IM_EPERM);
}

/* ---------------------------------------------------------------- dismiss */

static int count_id(struct im_str id, void *arg)
{
	++*(int *)arg;
	return 0;
}

static void dismiss_keeps_or_deletes_members(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", "c", NULL});
	expect(f, &c, 0);
	gsend(f, "g", "a");
	gsend(f, "g", "b");
	c = dismiss_cmd("g", false);
	expect(f, &c, 0);
	char name[32], owner[32];
	struct eng_group g = group_of(f->e, "g", name, sizeof(name), owner, sizeof(owner));
	assert_int_equal(g.status, 2);
	assert_int_equal(g.member_count, 3);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 1), ":3:2;");
	c = dismiss_cmd("g", false);
	expect_reject(f, &c, IM_EEXIST);
	c = dismiss_cmd("nope", true);
	expect_reject(f, &c, IM_ENOTFOUND);

	/* Again with delete_member: everyone leaves, the owner too. */
	c = dismiss_cmd("g", true);
	expect(f, &c, 0);
	g = group_of(f->e, "g", name, sizeof(name), owner, sizeof(owner));
	assert_int_equal(g.status, 2);
	assert_int_equal(g.member_count, 0);
	assert_int_equal(role_of(f->e, "g", "a", NULL), -1);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 2), ":3:3;a:2:3;b:2:3;c:2:3;");
	assert_string_equal(since(f->e, ENG_VLOG_JOIN_GROUP, "a", 1), "g:2:2;");
	struct eng_conv cr;
	assert_true(conv_of(f->e, "c", "sg_g", &cr));
	assert_int_equal(cr.max_seq, 2); /* capped at the history so far */
	struct eng_rtxn *r;
	int groups = 0;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_user_group_scan(r, IM_STR_LIT("a"), count_id, &groups), 0);
	eng_read_end(r);
	assert_int_equal(groups, 0);
	assert_int_equal(check_problems(f->e), 0);
}

static void record_extra(const struct eng_event *ev, void *arg)
{
	char *x = arg;
	size_t n = strlen(x);
	for (uint32_t i = 0; i < ev->extra.n && n + 2 < 128; i++)
		x[n++] = ev->extra.p[i] ? ev->extra.p[i] : ',';
	x[n++] = '|';
	x[n] = '\0';
}

/* The removed members still receive the dismiss tip (eng_event.extra). */
static void dismiss_with_delete_names_removed_users_in_events(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", "c", NULL});
	expect(f, &c, 0);
	char extra[128] = "";
	eng_events_drain(f->e, record_extra, extra);
	struct eng_msg_item tip = {.conv_id = IM_STR_LIT("n_g"),
				   .send_id = IM_STR_LIT("a"),
				   .group_id = IM_STR_LIT("g"),
				   .session_type = 3,
				   .content_type = 1511,
				   .flags = ENG_MSG_NOTIFICATION,
				   .data = IM_STR_LIT("t")};
	c = dismiss_cmd("g", false);
	c.n_items = 1;
	c.items = &tip;
	expect(f, &c, 0);
	extra[0] = '\0';
	eng_events_drain(f->e, record_extra, extra);
	assert_string_equal(extra, "|"); /* members are still members */
	c = dismiss_cmd("g", true);
	c.n_items = 1;
	c.items = &tip;
	expect(f, &c, 0);
	extra[0] = '\0';
	eng_events_drain(f->e, record_extra, extra);
	assert_string_equal(extra, "a,b,c|");
}

/* ---------------------------------------------------------------- join requests */

static void join_requests_pending_refuse_agree(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", NULL});
	expect(f, &c, 0);
	gsend(f, "g", "a");
	gsend(f, "g", "a");
	c = rput_cmd("g", "d");
	expect(f, &c, 0);
	c = rput_cmd("g", "e");
	expect(f, &c, 0);
	assert_string_equal(reqs_of(f->e, false, "g"), "d>g:0,e>g:0,");
	assert_string_equal(reqs_of(f->e, true, "d"), "d>g:0,");
	struct eng_rtxn *r;
	struct eng_group_req q;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_group_req_get(r, IM_STR_LIT("g"), IM_STR_LIT("d"), &q), 0);
	assert_int_equal(q.handle_result, 0);
	assert_int_equal(q.req_time, 60);
	assert_int_equal(q.join_source, 3);
	assert_true(im_str_eq(q.req_msg, IM_STR_LIT("let me in")));
	assert_int_equal(eng_group_req_get(r, IM_STR_LIT("g"), IM_STR_LIT("a"), &q), IM_ENOTFOUND);
	eng_read_end(r);

	/* Rejects of put. */
	c = rput_cmd("nope", "d");
	expect_reject(f, &c, IM_ENOTFOUND);
	c = rput_cmd("g", "ghost");
	expect_reject(f, &c, IM_ENOTFOUND);
	c = rput_cmd("g", "b");
	expect_reject(f, &c, IM_EEXIST);
	c = rput_cmd("g", "");
	expect_reject(f, &c, IM_EINVAL);

	/* Refuse d: handled, not a member; a second answer is refused. */
	c = respond_cmd("g", "d", -1, false);
	expect(f, &c, 0);
	assert_int_equal(role_of(f->e, "g", "d", NULL), -1);
	assert_string_equal(reqs_of(f->e, true, "d"), "d>g:-1,");
	c = respond_cmd("g", "d", 1, false);
	expect_reject(f, &c, IM_EEXIST);
	c = respond_cmd("g", "c", 1, false);
	expect_reject(f, &c, IM_ENOTFOUND);
	c = respond_cmd("g", "e", 0, false);
	expect_reject(f, &c, IM_EINVAL);

	/* Agree e with hidden history: a member like an invited one. */
	uint64_t gv = vlog_version(f->e, ENG_VLOG_GROUP_MEMBER, "g");
	c = respond_cmd("g", "e", 1, true);
	expect(f, &c, 0);
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_group_req_get(r, IM_STR_LIT("g"), IM_STR_LIT("e"), &q), 0);
	assert_int_equal(q.handle_result, 1);
	assert_int_equal(q.handle_time, 70);
	assert_true(im_str_eq(q.handle_user_id, IM_STR_LIT("a")));
	assert_true(im_str_eq(q.handled_msg, IM_STR_LIT("ok")));
	struct eng_member m;
	assert_int_equal(eng_member_get(r, IM_STR_LIT("g"), IM_STR_LIT("e"), &m), 0);
	assert_int_equal(m.role_level, 20);
	assert_int_equal(m.join_time, 70);
	assert_int_equal(m.join_source, 3);
	assert_true(im_str_eq(m.operator_user_id, IM_STR_LIT("a")));
	assert_true(im_str_eq(m.inviter_user_id, IM_STR_LIT("b")));
	eng_read_end(r);
	struct eng_conv cr;
	assert_true(conv_of(f->e, "e", "sg_g", &cr));
	assert_int_equal(cr.min_seq, 3); /* past the two messages */
	char name[32], owner[32];
	assert_int_equal(group_of(f->e, "g", name, sizeof(name), owner, sizeof(owner)).member_count,
			 3);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_GROUP_MEMBER, "g"), gv + 1);
	char want[64];
	snprintf(want, sizeof(want), "e:1:%" PRIu64 ";", gv + 1);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", gv), want);
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "e", 0), "sg_g:1:1;");

	/* Re-applying resets d's request to pending. */
	c = rput_cmd("g", "d");
	expect(f, &c, 0);
	assert_string_equal(reqs_of(f->e, true, "d"), "d>g:0,");
	/* Dismissed: neither put nor agree. */
	c = dismiss_cmd("g", false);
	expect(f, &c, 0);
	c = rput_cmd("g", "c");
	expect_reject(f, &c, IM_EPERM);
	c = respond_cmd("g", "d", 1, false);
	expect_reject(f, &c, IM_EPERM);
	assert_int_equal(check_problems(f->e), 0);
}

/* ---------------------------------------------------------------- hide_history, logs */

static void members_add_hide_history_sets_min_seq(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", NULL});
	expect(f, &c, 0);
	gsend(f, "g", "a");
	gsend(f, "g", "b");
	gsend(f, "g", "b");
	struct eng_member nm[2] = {{.user_id = IM_STR_LIT("c"), .role_level = 20},
				   {.user_id = IM_STR_LIT("d"), .role_level = 20}};
	c = (struct eng_cmd){.type = ENG_CMD_GROUP_MEMBERS_ADD, .now_ms = 9};
	c.m.group_members_add.group_id = IM_STR_LIT("g");
	c.m.group_members_add.n_members = 1;
	c.m.group_members_add.members = &nm[0];
	c.m.group_members_add.hide_history = true;
	expect(f, &c, 0);
	c.m.group_members_add.members = &nm[1];
	c.m.group_members_add.hide_history = false;
	expect(f, &c, 0);
	struct eng_conv cr;
	assert_true(conv_of(f->e, "c", "sg_g", &cr));
	assert_int_equal(cr.min_seq, 4);
	assert_true(conv_of(f->e, "d", "sg_g", &cr));
	assert_int_equal(cr.min_seq, 0);
	assert_int_equal(check_problems(f->e), 0);
}

static void conversation_log_follows_rows(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_msg_item it = {.conv_id = IM_STR_LIT("si_a_b"),
				  .send_id = IM_STR_LIT("a"),
				  .recv_id = IM_STR_LIT("b"),
				  .session_type = 1,
				  .content_type = 101,
				  .flags = ENG_MSG_STORE,
				  .data = IM_STR_LIT("x")};
	struct eng_cmd c = {.type = ENG_CMD_MSG_SEND, .now_ms = 8, .n_items = 1, .items = &it};
	expect(f, &c, 0);
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "a", 0), "si_a_b:1:1;");
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "b", 0), "si_a_b:1:1;");
	/* A later message creates nothing: no write. */
	expect(f, &c, 0);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_CONVERSATION, "a"), 1);
	/* set_conversations: update for a, insert for c (a new row). */
	struct im_str owners[2] = {IM_STR_LIT("a"), IM_STR_LIT("c")};
	c = (struct eng_cmd){.type = ENG_CMD_CONV_SET, .now_ms = 9};
	c.m.conv_set.n_owners = 2;
	c.m.conv_set.owners = owners;
	c.m.conv_set.mask = ENG_CONV_IS_PINNED;
	c.m.conv_set.conv = (struct eng_conv){
	    .conversation_id = IM_STR_LIT("si_a_b"), .conversation_type = 1, .is_pinned = true};
	expect(f, &c, 0);
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "a", 1), "si_a_b:3:2;");
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "c", 0), "si_a_b:1:1;");
	/* Clearing changes min_seq: update. */
	struct im_str convs[1] = {IM_STR_LIT("si_a_b")};
	c = (struct eng_cmd){.type = ENG_CMD_CONV_CLEAR, .now_ms = 10};
	c.m.conv_clear.user_id = IM_STR_LIT("b");
	c.m.conv_clear.n_convs = 1;
	c.m.conv_clear.conv_ids = convs;
	expect(f, &c, 0);
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "b", 1), "si_a_b:3:2;");
	/* Group creation inserts every member's row; a kick updates the leaver's cap. */
	c = gcreate_cmd("g", (const char *[]){"a", "d", NULL});
	expect(f, &c, 0);
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "d", 0), "sg_g:1:1;");
	struct im_str kick[1] = {IM_STR_LIT("d")};
	c = (struct eng_cmd){.type = ENG_CMD_GROUP_MEMBERS_REMOVE, .now_ms = 11};
	c.m.group_members_remove.group_id = IM_STR_LIT("g");
	c.m.group_members_remove.n_users = 1;
	c.m.group_members_remove.user_ids = kick;
	c.m.group_members_remove.reason = ENG_GROUP_KICK;
	expect(f, &c, 0);
	assert_string_equal(since(f->e, ENG_VLOG_CONVERSATION, "d", 1), "sg_g:3:2;");
	assert_int_equal(check_problems(f->e), 0);
}

/* ---------------------------------------------------------------- friend profile logs */

static struct eng_cmd uupdate_cmd(const char *uid, uint32_t mask)
{
	struct eng_cmd c = {.type = ENG_CMD_USER_UPDATE, .now_ms = 80};
	c.u.user_update.mask = mask;
	c.u.user_update.user = (struct eng_user){
	    .user_id = im_str_c(uid), .nickname = IM_STR_LIT("Bee"), .ex = IM_STR_LIT("e")};
	return c;
}

static void profile_change_updates_every_owners_friend_log(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	/* a and c have b as a friend (import is mutual); b deletes nobody. */
	struct im_str fb[1] = {IM_STR_LIT("b")};
	struct eng_cmd c = {.type = ENG_CMD_FRIEND_IMPORT, .now_ms = 3};
	c.r.friend_import.owner_user_id = IM_STR_LIT("a");
	c.r.friend_import.n_friends = 1;
	c.r.friend_import.friend_user_ids = fb;
	expect(f, &c, 0);
	c.r.friend_import.owner_user_id = IM_STR_LIT("c");
	expect(f, &c, 0);
	/* c deletes b: c no longer has b as a friend. */
	c = (struct eng_cmd){.type = ENG_CMD_FRIEND_DELETE, .now_ms = 4};
	c.r.friend_delete.owner_user_id = IM_STR_LIT("c");
	c.r.friend_delete.friend_user_id = IM_STR_LIT("b");
	expect(f, &c, 0);
	uint64_t va = vlog_version(f->e, ENG_VLOG_FRIEND, "a");
	uint64_t vc = vlog_version(f->e, ENG_VLOG_FRIEND, "c");
	uint64_t vb = vlog_version(f->e, ENG_VLOG_FRIEND, "b");

	c = uupdate_cmd("b", ENG_USER_EX);
	expect(f, &c, 0);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_FRIEND, "a"), va);
	c = uupdate_cmd("b", ENG_USER_NICKNAME | ENG_USER_FACE_URL);
	expect(f, &c, 0);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_FRIEND, "a"), va + 1);
	char want[64];
	snprintf(want, sizeof(want), "b:3:%" PRIu64 ";", va + 1);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", va), want);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_FRIEND, "c"), vc);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_FRIEND, "b"), vb);
	assert_int_equal(check_problems(f->e), 0);
}

/* Schema 1 data: no friends_by_friend entries and schema 1 in meta. */
static void downgrade_to_schema_1(struct eng *e)
{
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(eng__env(e), NULL, 0, &txn), 0);
	assert_int_equal(mdb_drop(txn, eng__dbi(e, ENG__T_FRIENDS_BY_FRIEND), 0), 0);
	MDB_val key = {6, "schema"}, val = {4, "\0\0\0\x01"};
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_META), &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

static void open_builds_friend_index_of_schema_1(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct im_str fb[2] = {IM_STR_LIT("b"), IM_STR_LIT("c")};
	struct eng_cmd c = {.type = ENG_CMD_FRIEND_IMPORT, .now_ms = 3};
	c.r.friend_import.owner_user_id = IM_STR_LIT("a");
	c.r.friend_import.n_friends = 2;
	c.r.friend_import.friend_user_ids = fb;
	expect(f, &c, 0);
	uint32_t before = digest(f->e);
	downgrade_to_schema_1(f->e);
	assert_int_not_equal(digest(f->e), before);
	eng_close(f->e);

	/* Read-only: opens, and the check does not ask for the index. */
	struct eng_opts o = {.dir = f->dir, .read_only = true};
	char err[256];
	assert_int_equal(eng_open(&f->e, &o, err, sizeof(err)), 0);
	assert_int_equal(check_problems(f->e), 0);
	eng_close(f->e);

	/* Read-write: the index is built and the schema is 2. */
	f->e = open_at(f->dir, 0, 0);
	assert_int_equal(digest(f->e), before);
	assert_int_equal(check_problems(f->e), 0);
	c = uupdate_cmd("c", ENG_USER_NICKNAME);
	uint64_t va = vlog_version(f->e, ENG_VLOG_FRIEND, "a");
	expect(f, &c, 0);
	assert_int_equal(vlog_version(f->e, ENG_VLOG_FRIEND, "a"), va + 1);
	MDB_txn *txn;
	MDB_val key = {6, "schema"}, val;
	assert_int_equal(mdb_txn_begin(eng__env(f->e), NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_get(txn, eng__dbi(f->e, ENG__T_META), &key, &val), 0);
	assert_int_equal(im_get_be32(val.mv_data), 2);
	mdb_txn_abort(txn);
}

static void check_detects_broken_group_req_index(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", NULL});
	expect(f, &c, 0);
	c = rput_cmd("g", "d");
	expect(f, &c, 0);
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(eng__env(f->e), NULL, 0, &txn), 0);
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val key = {eng__key_join(k, IM_STR_LIT("d"), IM_STR_LIT("g")), k};
	assert_int_equal(mdb_del(txn, eng__dbi(f->e, ENG__T_GROUP_REQS_BY_USER), &key, NULL), 0);
	key = (MDB_val){eng__key_join(k, IM_STR_LIT("e"), IM_STR_LIT("g")), k};
	MDB_val val = {0, ""};
	assert_int_equal(mdb_put(txn, eng__dbi(f->e, ENG__T_GROUP_REQS_BY_USER), &key, &val, 0), 0);
	key = (MDB_val){eng__key_join(k, IM_STR_LIT("a"), IM_STR_LIT("zz")), k};
	assert_int_equal(mdb_put(txn, eng__dbi(f->e, ENG__T_FRIENDS_BY_FRIEND), &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	struct im_buf rep = {0};
	int n = eng_check(f->e, &rep);
	printf("%d problems:\n%s", n, rep.p ? rep.p : "");
	assert_int_equal(n, 3);
	assert_non_null(strstr(rep.p, "group_reqs (g, d): no group_reqs_by_user entry"));
	assert_non_null(strstr(rep.p, "group_reqs_by_user (e, g): no row (g, e)"));
	assert_non_null(strstr(rep.p, "friends_by_friend (a, zz): no row (zz, a)"));
	im_buf_free(&rep);
}

/* ---------------------------------------------------------------- replay */

static void replay_applies_nothing_twice(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", "c", NULL});
	expect(f, &c, 0);
	struct eng_cmd cmds[6] = {gset_cmd("g", ENG_GROUP_NAME | ENG_GROUP_AT_ANNOUNCE),
				  mset_cmd("g", (const char *[]){"b", NULL}, ENG_MEMBER_ROLE, 60),
				  rput_cmd("g", "d"),
				  respond_cmd("g", "d", 1, true),
				  transfer_cmd("g", "b"),
				  dismiss_cmd("g", true)};
	for (size_t i = 0; i < IM_ARRAY_LEN(cmds); i++) {
		struct im_buf b = {0};
		struct eng_result res;
		assert_int_equal(eng_cmd_encode(&cmds[i], &b), 0);
		uint64_t idx = expect(f, &cmds[i], 0);
		uint32_t d = digest(f->e);
		assert_int_equal(eng_apply(f->e, idx, b.p, b.len, &res), 0);
		assert_true(res.skipped);
		flush_ok(f->e);
		assert_int_equal(digest(f->e), d);
		im_buf_free(&b);
	}
	assert_int_equal(check_problems(f->e), 0);
}

/* ---------------------------------------------------------------- codec */

static const int group_types[] = {ENG_CMD_GROUP_SET,	  ENG_CMD_MEMBER_SET,
				  ENG_CMD_GROUP_TRANSFER, ENG_CMD_GROUP_DISMISS,
				  ENG_CMD_GROUP_REQ_PUT,  ENG_CMD_GROUP_REQ_RESPOND};

static struct eng_cmd sample(int type)
{
	struct eng_cmd c;
	switch (type) {
	case ENG_CMD_GROUP_SET:
		c = gset_cmd("g", ENG_GROUP_NAME | ENG_GROUP_NOTIFICATION);
		break;
	case ENG_CMD_MEMBER_SET:
		c = mset_cmd("g", (const char *[]){"b", "c", NULL}, ENG_MEMBER_NICKNAME, 20);
		ms_masks[1] = ENG_MEMBER_ROLE;
		break;
	case ENG_CMD_GROUP_TRANSFER:
		c = transfer_cmd("g", "b");
		break;
	case ENG_CMD_GROUP_DISMISS:
		c = dismiss_cmd("g", true);
		break;
	case ENG_CMD_GROUP_REQ_PUT:
		c = rput_cmd("g", "d");
		reqs[0].handle_result = 0;
		break;
	default:
		c = respond_cmd("g", "d", 1, true);
		break;
	}
	return c;
}

static void codec_round_trips_group_commands(void **state)
{
	struct im_buf b = {0}, b2 = {0};
	for (size_t t = 0; t < IM_ARRAY_LEN(group_types); t++) {
		struct eng_cmd c = sample(group_types[t]), d;
		b.len = 0;
		assert_int_equal(eng_cmd_encode(&c, &b), 0);
		assert_int_equal(b.p[2], 3);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
		assert_int_equal(d.type, group_types[t]);
		b2.len = 0;
		assert_int_equal(eng_cmd_encode(&d, &b2), 0);
		assert_int_equal(b2.len, b.len);
		assert_memory_equal(b2.p, b.p, b.len);
		/* Every truncation is refused. */
		for (size_t n = ENG_CMD_HEADER; n < b.len; n++) {
			struct eng_cmd x;
			unsigned char *p = (unsigned char *)b.p;
			uint32_t plen = im_get_be32(p + 4);
			im_put_be32(p + 4, (uint32_t)(n - ENG_CMD_HEADER));
			uint32_t crc = im_crc32(0, p, 8);
			crc = im_crc32(crc, p + ENG_CMD_HEADER, n - ENG_CMD_HEADER);
			uint32_t old = im_get_be32(p + 8);
			im_put_be32(p + 8, crc);
			assert_int_not_equal(eng_cmd_decode(p, n, &x), 0);
			im_put_be32(p + 4, plen);
			im_put_be32(p + 8, old);
		}
		switch (group_types[t]) {
		case ENG_CMD_GROUP_SET:
			assert_int_equal(d.m.group_set.mask, c.m.group_set.mask);
			assert_true(
			    im_str_eq(d.m.group_set.group.notification_user_id, IM_STR_LIT("a")));
			break;
		case ENG_CMD_MEMBER_SET:
			assert_int_equal(d.m.member_set.n_members, 2);
			assert_int_equal(d.m.member_set.masks[1], ENG_MEMBER_ROLE);
			assert_true(im_str_eq(d.m.member_set.members[1].group_id, IM_STR_LIT("g")));
			break;
		case ENG_CMD_GROUP_DISMISS:
			assert_true(d.m.group_dismiss.delete_member);
			break;
		case ENG_CMD_GROUP_REQ_PUT:
			assert_int_equal(d.m.group_req_put.n_reqs, 1);
			assert_int_equal(d.m.group_req_put.reqs[0].join_source, 3);
			assert_int_equal(d.m.group_req_put.reqs[0].handle_result, 0);
			break;
		case ENG_CMD_GROUP_REQ_RESPOND:
			assert_int_equal(d.m.group_req_respond.handle_result, 1);
			assert_true(d.m.group_req_respond.hide_history);
			break;
		default:
			break;
		}
		eng_cmd_release(&d);
	}
	/* Encode refuses arrays without storage and oversized ids. */
	struct eng_cmd c = sample(ENG_CMD_MEMBER_SET);
	c.m.member_set.masks = NULL;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_GROUP_REQ_PUT);
	c.m.group_req_put.reqs = NULL;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_GROUP_TRANSFER);
	c.m.group_transfer.new_owner = (struct im_str){"a\0b", 3};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	im_buf_free(&b);
	im_buf_free(&b2);
}

/*
 * A version 2 group_members_add (no hide_history byte, written before format
 * 3) still decodes, as hide_history false, so existing Raft logs replay.
 */
/* A version 2 group_members_add of c to g into b (as a proposer before format 3 wrote it). */
static void members_add_v2(struct im_buf *b)
{
	struct eng_member m = {.user_id = IM_STR_LIT("c"), .role_level = 20};
	struct eng_cmd c = {.type = ENG_CMD_GROUP_MEMBERS_ADD, .now_ms = 9};
	c.m.group_members_add.group_id = IM_STR_LIT("g");
	c.m.group_members_add.n_members = 1;
	c.m.group_members_add.members = &m;
	c.m.group_members_add.hide_history = true;
	b->len = 0;
	assert_int_equal(eng_cmd_encode(&c, b), 0);
	unsigned char *p = (unsigned char *)b->p;
	/* The flag is the byte before the items tail (n_items u32 = 0). */
	assert_int_equal(p[b->len - 5], 1);
	memmove(p + b->len - 5, p + b->len - 4, 4);
	b->len--;
	p[2] = 2;
	im_put_be32(p + 4, (uint32_t)(b->len - ENG_CMD_HEADER));
	uint32_t crc = im_crc32(0, p, 8);
	im_put_be32(p + 8, im_crc32(crc, p + ENG_CMD_HEADER, b->len - ENG_CMD_HEADER));
}

static void codec_decodes_version_2_members_add(void **state)
{
	struct im_buf b = {0};
	members_add_v2(&b);
	unsigned char *p = (unsigned char *)b.p;
	size_t n = b.len;
	uint32_t crc;
	struct eng_cmd d;
	assert_int_equal(eng_cmd_decode(p, n, &d), 0);
	assert_int_equal(d.type, ENG_CMD_GROUP_MEMBERS_ADD);
	assert_false(d.m.group_members_add.hide_history);
	assert_int_equal(d.m.group_members_add.n_members, 1);
	assert_true(im_str_eq(d.m.group_members_add.members[0].user_id, IM_STR_LIT("c")));
	eng_cmd_release(&d);
	/* The same bytes as version 3 lack the flag: corrupt. */
	p[2] = 3;
	crc = im_crc32(0, p, 8);
	im_put_be32(p + 8, im_crc32(crc, p + ENG_CMD_HEADER, n - ENG_CMD_HEADER));
	assert_int_equal(eng_cmd_decode(p, n, &d), IM_ECORRUPT);
	im_buf_free(&b);
}

/*
 * The fuzz/corpus/fuzz_cmd seeds of types 25..30: with IMLOG_WRITE_CORPUS=<dir>
 * this writes a valid command of each type there.
 */
static void writes_seed_corpus_when_asked(void **state)
{
	const char *dir = getenv("IMLOG_WRITE_CORPUS");
	if (dir == NULL)
		skip();
	struct im_buf b = {0};
	for (size_t t = 0; t < IM_ARRAY_LEN(group_types); t++) {
		struct eng_cmd c = sample(group_types[t]);
		b.len = 0;
		assert_int_equal(eng_cmd_encode(&c, &b), 0);
		char path[1024];
		snprintf(path, sizeof(path), "%s/valid_%s", dir, eng__cmd_name(group_types[t]));
		FILE *fp = fopen(path, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(b.p, 1, b.len, fp), b.len);
		fclose(fp);
	}
	/* A version 2 entry: decodes, re-encodes as version 3. */
	members_add_v2(&b);
	char path[1024];
	snprintf(path, sizeof(path), "%s/v2_group_members_add", dir);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(b.p, 1, b.len, fp), b.len);
	fclose(fp);
	im_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(group_set_writes_masked_fields_and_logs, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(group_set_rejects_change_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(member_set_writes_fields_logs_and_sort_marker, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(member_set_rejects_change_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(transfer_swaps_roles_and_logs, setup, teardown),
	    cmocka_unit_test_setup_teardown(dismiss_keeps_or_deletes_members, setup, teardown),
	    cmocka_unit_test_setup_teardown(dismiss_with_delete_names_removed_users_in_events,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(join_requests_pending_refuse_agree, setup, teardown),
	    cmocka_unit_test_setup_teardown(members_add_hide_history_sets_min_seq, setup, teardown),
	    cmocka_unit_test_setup_teardown(conversation_log_follows_rows, setup, teardown),
	    cmocka_unit_test_setup_teardown(profile_change_updates_every_owners_friend_log, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(open_builds_friend_index_of_schema_1, setup, teardown),
	    cmocka_unit_test_setup_teardown(check_detects_broken_group_req_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(replay_applies_nothing_twice, setup, teardown),
	    cmocka_unit_test(codec_round_trips_group_commands),
	    cmocka_unit_test(codec_decodes_version_2_members_add),
	    cmocka_unit_test(writes_seed_corpus_when_asked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
