/* test_engine_rel.c - the engine's relations: version logs, friends, friend requests, blacklists,
 * their codec, replay and check. */
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

/* Applies c at the next index; the result code must be `code`.  Returns the index. */
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
	return idx;
}

static void register_users(struct fx *f, const char *const *ids)
{
	struct eng_user u[16];
	uint32_t n = 0;
	for (; ids[n] != NULL; n++)
		u[n] = (struct eng_user){.user_id = im_str_c(ids[n])};
	struct eng_cmd c = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1};
	c.u.user_register.n = n;
	c.u.user_register.users = u;
	expect(f, &c, 0);
}

/* ---------------------------------------------------------------- commands */

static struct eng_cmd apply_cmd(const char *from, const char *to, const char *msg, int64_t now)
{
	struct eng_cmd c = {.type = ENG_CMD_FRIEND_APPLY, .now_ms = now};
	c.r.friend_apply.from_user_id = im_str_c(from);
	c.r.friend_apply.to_user_id = im_str_c(to);
	c.r.friend_apply.req_msg = im_str_c(msg);
	c.r.friend_apply.ex = IM_STR_LIT("apply-ex");
	return c;
}

static struct eng_cmd respond_cmd(const char *from, const char *to, int32_t hr, int64_t now)
{
	struct eng_cmd c = {.type = ENG_CMD_FRIEND_RESPOND, .now_ms = now};
	c.r.friend_respond.from_user_id = im_str_c(from);
	c.r.friend_respond.to_user_id = im_str_c(to);
	c.r.friend_respond.handle_result = hr;
	c.r.friend_respond.handle_msg = IM_STR_LIT("ok");
	return c;
}

static struct eng_cmd delete_cmd(const char *owner, const char *friend_id)
{
	struct eng_cmd c = {.type = ENG_CMD_FRIEND_DELETE, .now_ms = 50};
	c.r.friend_delete.owner_user_id = im_str_c(owner);
	c.r.friend_delete.friend_user_id = im_str_c(friend_id);
	return c;
}

/* ids must stay alive until the command is applied. */
static struct eng_cmd update_cmd(const char *owner, struct im_str *ids, uint32_t n, uint32_t mask,
				 const char *remark, bool pinned)
{
	struct eng_cmd c = {.type = ENG_CMD_FRIEND_UPDATE, .now_ms = 60};
	c.r.friend_update.owner_user_id = im_str_c(owner);
	c.r.friend_update.n_friends = n;
	c.r.friend_update.friend_user_ids = ids;
	c.r.friend_update.mask = mask;
	c.r.friend_update.remark = im_str_c(remark);
	c.r.friend_update.ex = IM_STR_LIT("upd-ex");
	c.r.friend_update.is_pinned = pinned;
	return c;
}

static struct eng_cmd import_cmd(const char *owner, struct im_str *ids, uint32_t n)
{
	struct eng_cmd c = {.type = ENG_CMD_FRIEND_IMPORT, .now_ms = 70};
	c.r.friend_import.owner_user_id = im_str_c(owner);
	c.r.friend_import.n_friends = n;
	c.r.friend_import.friend_user_ids = ids;
	c.r.friend_import.operator_user_id = IM_STR_LIT("admin");
	return c;
}

static struct eng_cmd black_cmd(int type, const char *owner, const char *black)
{
	struct eng_cmd c = {.type = (uint8_t)type, .now_ms = 80};
	if (type == ENG_CMD_BLACK_ADD) {
		c.r.black_add.owner_user_id = im_str_c(owner);
		c.r.black_add.black_user_id = im_str_c(black);
		c.r.black_add.ex = IM_STR_LIT("bx");
	} else {
		c.r.black_remove.owner_user_id = im_str_c(owner);
		c.r.black_remove.black_user_id = im_str_c(black);
	}
	return c;
}

/* ---------------------------------------------------------------- readers */

static bool is_friend(struct eng *e, const char *owner, const char *friend_id,
		      struct eng_friend *copy)
{
	struct eng_rtxn *r;
	struct eng_friend fr;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_friend_get(r, im_str_c(owner), im_str_c(friend_id), &fr);
	assert_true(rv == 0 || rv == IM_ENOTFOUND);
	if (rv == 0 && copy != NULL) {
		/* Only the scalars survive the read; strings are compared inside. */
		*copy = fr;
		copy->remark = copy->ex = copy->operator_user_id = (struct im_str){NULL, 0};
	}
	eng_read_end(r);
	return rv == 0;
}

/* The request (from, to): handle_result, or 99 when there is none; *q gets its scalars. */
static int req_state(struct eng *e, const char *from, const char *to, struct eng_friend_req *q)
{
	struct eng_rtxn *r;
	struct eng_friend_req x;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_friend_req_get(r, im_str_c(from), im_str_c(to), &x);
	assert_true(rv == 0 || rv == IM_ENOTFOUND);
	if (rv == 0 && q != NULL) {
		*q = x;
		q->req_msg = q->handle_msg = q->ex = q->handler_user_id = (struct im_str){NULL, 0};
	}
	eng_read_end(r);
	return rv == 0 ? x.handle_result : 99;
}

/* (version, versionID) of a document; 0 when it does not exist. */
static uint64_t vlog_version(struct eng *e, int kind, const char *doc, uint8_t id[12])
{
	struct eng_rtxn *r;
	uint64_t v = 0;
	uint8_t tmp[12];
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_vlog_get(r, kind, im_str_c(doc), id ? id : tmp, &v);
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

/* The entries above `since` as "elem:state:version;...", or "TOOBIG". */
static const char *since(struct eng *e, int kind, const char *doc, uint64_t v, uint64_t limit)
{
	struct eng_rtxn *r;
	outbuf[0] = '\0';
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_vlog_since(r, kind, im_str_c(doc), v, limit, collect_entry, NULL);
	eng_read_end(r);
	if (rv == IM_ETOOBIG) {
		assert_string_equal(outbuf, ""); /* cb never ran */
		return "TOOBIG";
	}
	assert_int_equal(rv, 0);
	return outbuf;
}

static int collect_friend(const struct eng_friend *fr, void *arg)
{
	size_t n = strlen(outbuf);
	snprintf(outbuf + n, sizeof(outbuf) - n, "%.*s,", (int)fr->friend_user_id.n,
		 fr->friend_user_id.p);
	return 0;
}

static int collect_black(const struct eng_black *b, void *arg)
{
	size_t n = strlen(outbuf);
	snprintf(outbuf + n, sizeof(outbuf) - n, "%.*s,", (int)b->block_user_id.n,
		 b->block_user_id.p);
	return 0;
}

static int collect_req(const struct eng_friend_req *q, void *arg)
{
	size_t n = strlen(outbuf);
	snprintf(outbuf + n, sizeof(outbuf) - n, "%.*s>%.*s:%d,", (int)q->from_user_id.n,
		 q->from_user_id.p, (int)q->to_user_id.n, q->to_user_id.p, q->handle_result);
	return 0;
}

/* friends (black = false) or blacklist of owner from offset/limit, and the total. */
static const char *list_of(struct eng *e, bool black, const char *owner, uint64_t off, uint64_t lim,
			   uint64_t *total)
{
	struct eng_rtxn *r;
	outbuf[0] = '\0';
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = black ? eng_black_scan(r, im_str_c(owner), off, lim, collect_black, NULL, total)
		       : eng_friend_scan(r, im_str_c(owner), off, lim, collect_friend, NULL, total);
	eng_read_end(r);
	assert_int_equal(rv, 0);
	return outbuf;
}

static const char *reqs_of(struct eng *e, bool sent, const char *user)
{
	struct eng_rtxn *r;
	outbuf[0] = '\0';
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = sent ? eng_friend_req_scan_from(r, im_str_c(user), collect_req, NULL)
		      : eng_friend_req_scan_to(r, im_str_c(user), collect_req, NULL);
	eng_read_end(r);
	assert_int_equal(rv, 0);
	return outbuf;
}

static int check_problems(struct eng *e, struct im_buf *rep)
{
	struct im_buf local = {0};
	struct im_buf *r = rep ? rep : &local;
	int n = eng_check(e, r);
	if (n != 0 && r->len)
		printf("check report (%d problems):\n%s", n, r->p);
	im_buf_free(&local);
	return n;
}

/* A CRC of every key and value of the relation tables, read with plain LMDB. */
static uint32_t rel_digest(struct eng *e)
{
	static const enum eng__table ts[] = {ENG__T_VLOGS,	    ENG__T_VLOG_ENTRIES,
					     ENG__T_FRIENDS,	    ENG__T_FRIEND_REQS,
					     ENG__T_FRIEND_REQS_TO, ENG__T_BLACKS};
	MDB_txn *txn;
	assert_false(eng_dirty(e));
	assert_int_equal(mdb_txn_begin(eng__env(e), NULL, MDB_RDONLY, &txn), 0);
	uint32_t crc = 0;
	for (size_t i = 0; i < IM_ARRAY_LEN(ts); i++) {
		MDB_cursor *c;
		MDB_val k, v;
		assert_int_equal(mdb_cursor_open(txn, eng__dbi(e, ts[i]), &c), 0);
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

static const char *const users[] = {"a", "b", "c", "d", "e", "admin", NULL};

/* ---------------------------------------------------------------- friend requests */

static void friend_apply_rules(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = apply_cmd("a", "a", "hi", 100);
	expect(f, &c, IM_EINVAL);
	c = apply_cmd("", "b", "hi", 100);
	expect(f, &c, IM_EINVAL);
	c = apply_cmd("a", "ghost", "hi", 100);
	expect(f, &c, IM_ENOTFOUND);
	c = apply_cmd("ghost", "a", "hi", 100);
	expect(f, &c, IM_ENOTFOUND);
	assert_int_equal(req_state(f->e, "a", "ghost", NULL), 99);

	c = apply_cmd("a", "b", "hi", 100);
	expect(f, &c, 0);
	flush_ok(f->e);
	struct eng_friend_req q;
	assert_int_equal(req_state(f->e, "a", "b", &q), 0);
	assert_true(q.create_time == 100 && q.handle_time == 0);
	assert_string_equal(reqs_of(f->e, true, "a"), "a>b:0,");
	assert_string_equal(reqs_of(f->e, false, "b"), "a>b:0,");
	assert_string_equal(reqs_of(f->e, false, "a"), "");

	/* Refused, then applied again: pending with the new time, handler kept. */
	c = respond_cmd("a", "b", -1, 200);
	expect(f, &c, 0);
	c = apply_cmd("a", "b", "again", 300);
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_int_equal(req_state(f->e, "a", "b", &q), 0);
	assert_true(q.create_time == 300 && q.handle_time == 200);
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_friend_req_get(r, IM_STR_LIT("a"), IM_STR_LIT("b"), &q), 0);
	assert_true(im_str_eq(q.req_msg, IM_STR_LIT("again")));
	assert_true(im_str_eq(q.ex, IM_STR_LIT("apply-ex")));
	assert_true(im_str_eq(q.handler_user_id, IM_STR_LIT("b")));
	assert_int_equal(q.handle_msg.n, 0);
	eng_read_end(r);
	/* A request changes no version log. */
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 0);

	/* Friends one way only: applying is fine; both ways: IM_EEXIST (1304). */
	c = respond_cmd("a", "b", 1, 400);
	expect(f, &c, 0);
	c = delete_cmd("b", "a");
	expect(f, &c, 0);
	c = apply_cmd("a", "b", "one way", 500);
	expect(f, &c, 0);
	c = apply_cmd("c", "d", "x", 500);
	expect(f, &c, 0);
	c = respond_cmd("c", "d", 1, 600);
	expect(f, &c, 0);
	c = apply_cmd("d", "c", "x", 700);
	expect(f, &c, IM_EEXIST);
	flush_ok(f->e);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

static void ignore_event(const struct eng_event *ev, void *arg)
{
	(*(int *)arg)++;
}

static void friend_respond_rules(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = respond_cmd("a", "b", 1, 100);
	expect(f, &c, IM_ENOTFOUND);
	c = apply_cmd("a", "b", "hi", 100);
	expect(f, &c, 0);
	/* The reverse request, pending too. */
	c = apply_cmd("b", "a", "me too", 110);
	expect(f, &c, 0);
	c = respond_cmd("a", "b", 0, 120);
	expect(f, &c, IM_EINVAL);
	c = respond_cmd("a", "b", 2, 120);
	expect(f, &c, IM_EINVAL);
	c = respond_cmd("a", "a", 1, 120);
	expect(f, &c, IM_EINVAL);

	/* Agree, with a notification item in the tail. */
	static const char data[] = "\x0a\x01"
				   "b";
	struct eng_msg_item it = {.conv_id = IM_STR_LIT("si_a_b"),
				  .send_id = IM_STR_LIT("b"),
				  .recv_id = IM_STR_LIT("a"),
				  .session_type = 1,
				  .content_type = 1201,
				  .send_time = 130,
				  .flags = ENG_MSG_STORE,
				  .data = {data, sizeof(data) - 1}};
	c = respond_cmd("a", "b", 1, 130);
	c.n_items = 1;
	c.items = &it;
	uint64_t agreed = expect(f, &c, 0);
	flush_ok(f->e);
	int events = 0;
	eng_events_drain(f->e, ignore_event, &events);
	assert_int_equal(events, 1);

	struct eng_friend_req q;
	assert_int_equal(req_state(f->e, "a", "b", &q), 1);
	assert_true(q.handle_time == 130);
	assert_int_equal(req_state(f->e, "b", "a", &q), 1); /* the reverse one too */
	struct eng_friend fr;
	assert_true(is_friend(f->e, "a", "b", &fr));
	assert_int_equal(fr.add_source, ENG_FRIEND_BY_APPLY);
	assert_true(fr.create_time == 130);
	assert_true(is_friend(f->e, "b", "a", &fr));
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_friend_get(r, IM_STR_LIT("a"), IM_STR_LIT("b"), &fr), 0);
	assert_true(im_str_eq(fr.operator_user_id, IM_STR_LIT("b")));
	assert_true(im_str_eq(fr.owner_user_id, IM_STR_LIT("a")));
	eng_read_end(r);
	/* Both owners' friend logs: created at this index, version 1, an insert. */
	uint8_t ida[12], idb[12], want[12];
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", ida) == 1);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "b", idb) == 1);
	eng__vlog_id(want, ENG_VLOG_FRIEND, IM_STR_LIT("a"), agreed);
	assert_memory_equal(ida, want, 12);
	assert_memory_not_equal(ida, idb, 12);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 0, 200), "b:1:1;");
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "b", 0, 200), "a:1:1;");

	/* Handled already (1305): IM_EEXIST, for either answer. */
	c = respond_cmd("a", "b", 1, 140);
	expect(f, &c, IM_EEXIST);
	c = respond_cmd("b", "a", -1, 140);
	expect(f, &c, IM_EEXIST);

	/* Refuse: no rows, no log. */
	c = apply_cmd("c", "d", "hi", 150);
	expect(f, &c, 0);
	c = respond_cmd("c", "d", -1, 160);
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_int_equal(req_state(f->e, "c", "d", NULL), -1);
	assert_false(is_friend(f->e, "c", "d", NULL));
	assert_false(is_friend(f->e, "d", "c", NULL));
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "c", NULL) == 0);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "d", NULL) == 0);

	/* Accepting when one row exists keeps it and logs only the new one. */
	c = delete_cmd("a", "b");
	expect(f, &c, 0);
	c = apply_cmd("a", "b", "back", 170);
	expect(f, &c, 0);
	c = respond_cmd("a", "b", 1, 180);
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_true(is_friend(f->e, "b", "a", &fr));
	assert_true(fr.create_time == 130);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 3);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "b", NULL) == 1);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 1, 200), "b:1:3;");
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- friends */

static void make_friends(struct fx *f, const char *a, const char *b)
{
	struct eng_cmd c = apply_cmd(a, b, "hi", 10);
	expect(f, &c, 0);
	c = respond_cmd(a, b, 1, 20);
	expect(f, &c, 0);
}

static void friend_delete_and_update(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = delete_cmd("a", "b");
	expect(f, &c, IM_ENOTFOUND);
	c = delete_cmd("a", "a");
	expect(f, &c, IM_EINVAL);
	make_friends(f, "a", "b");
	make_friends(f, "a", "c");
	flush_ok(f->e);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 2);

	/* Delete is one-directional. */
	c = delete_cmd("a", "c");
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_false(is_friend(f->e, "a", "c", NULL));
	assert_true(is_friend(f->e, "c", "a", NULL));
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 3);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "c", NULL) == 1);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 0, 200), "b:1:1;c:2:3;");
	c = delete_cmd("a", "c");
	expect(f, &c, IM_ENOTFOUND);

	/* Update: every named friend must be one (all or nothing). */
	struct im_str ids[2] = {IM_STR_LIT("b"), IM_STR_LIT("c")};
	c = update_cmd("a", ids, 2, ENG_FRIEND_REMARK, "R", false);
	expect(f, &c, IM_ENOTFOUND);
	c = update_cmd("a", ids, 0, ENG_FRIEND_REMARK, "R", false);
	expect(f, &c, IM_EINVAL);
	c = update_cmd("a", ids, 1, 1u << 7, "R", false);
	expect(f, &c, IM_EINVAL);
	flush_ok(f->e);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 3);

	/* Two friends, remark and ex: one bump, an update each. */
	make_friends(f, "a", "c"); /* a: 4 */
	c = update_cmd("a", ids, 2, ENG_FRIEND_REMARK | ENG_FRIEND_EX, "R", false);
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 5);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 3, 200), "b:3:5;c:3:5;");
	struct eng_rtxn *r;
	struct eng_friend fr;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_friend_get(r, IM_STR_LIT("a"), IM_STR_LIT("c"), &fr), 0);
	assert_true(im_str_eq(fr.remark, IM_STR_LIT("R")));
	assert_true(im_str_eq(fr.ex, IM_STR_LIT("upd-ex")));
	assert_false(fr.is_pinned);
	eng_read_end(r);

	/* Pinning writes the sort marker too; mask 0 changes nothing. */
	c = update_cmd("a", ids, 1, ENG_FRIEND_IS_PINNED, "", true);
	expect(f, &c, 0);
	c = update_cmd("a", ids, 2, 0, "", false);
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 6);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 5, 200),
			    ENG_VLOG_SORT_ID ":3:6;b:3:6;");
	assert_true(is_friend(f->e, "a", "b", &fr));
	assert_true(fr.is_pinned);
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_friend_get(r, IM_STR_LIT("a"), IM_STR_LIT("b"), &fr), 0);
	assert_true(im_str_eq(fr.remark, IM_STR_LIT("R"))); /* not in the mask: kept */
	eng_read_end(r);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

static void friend_import_rules(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	make_friends(f, "a", "b");
	struct im_str ids[4] = {IM_STR_LIT("b"), IM_STR_LIT("c"), IM_STR_LIT("d"), IM_STR_LIT("a")};
	struct eng_cmd c = import_cmd("a", ids, 0);
	expect(f, &c, IM_EINVAL);
	c = import_cmd("a", ids, 4); /* a itself */
	expect(f, &c, IM_EINVAL);
	struct im_str ghost[2] = {IM_STR_LIT("c"), IM_STR_LIT("ghost")};
	c = import_cmd("a", ghost, 2);
	expect(f, &c, IM_ENOTFOUND);
	c = import_cmd("ghost", ids, 1);
	expect(f, &c, IM_ENOTFOUND);
	flush_ok(f->e);
	assert_false(is_friend(f->e, "a", "c", NULL));

	c = import_cmd("a", ids, 3);
	expect(f, &c, 0);
	flush_ok(f->e);
	struct eng_friend fr;
	assert_true(is_friend(f->e, "a", "b", &fr));
	assert_int_equal(fr.add_source, ENG_FRIEND_BY_APPLY); /* left as it was */
	assert_true(is_friend(f->e, "a", "c", &fr));
	assert_int_equal(fr.add_source, ENG_FRIEND_BY_IMPORT);
	assert_true(is_friend(f->e, "d", "a", &fr));
	assert_int_equal(fr.add_source, ENG_FRIEND_BY_IMPORT);
	assert_true(fr.create_time == 70);
	/* a: one bump for both new friends; b's log untouched. */
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 2);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 1, 200), "c:1:2;d:1:2;");
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "b", NULL) == 1);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "c", NULL) == 1);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "d", 0, 200), "a:1:1;");
	uint64_t total = 0;
	assert_string_equal(list_of(f->e, false, "a", 0, 0, &total), "b,c,d,");
	assert_true(total == 3);
	/* Importing again changes nothing, not even a version. */
	c = import_cmd("a", ids, 3);
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 2);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

static void friend_scan_pages_and_counts(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct im_str ids[4] = {IM_STR_LIT("e"), IM_STR_LIT("c"), IM_STR_LIT("b"), IM_STR_LIT("d")};
	struct eng_cmd c = import_cmd("a", ids, 4);
	expect(f, &c, 0);
	flush_ok(f->e);
	uint64_t total = 0;
	assert_string_equal(list_of(f->e, false, "a", 0, 2, &total), "b,c,");
	assert_true(total == 4);
	assert_string_equal(list_of(f->e, false, "a", 2, 2, &total), "d,e,");
	assert_string_equal(list_of(f->e, false, "a", 3, 0, &total), "e,");
	assert_string_equal(list_of(f->e, false, "a", 9, 2, &total), "");
	assert_true(total == 4);
	assert_string_equal(list_of(f->e, false, "nobody", 0, 0, &total), "");
	assert_true(total == 0);
	/* The owner's id is a prefix of no other owner's keys ("a" vs "admin"). */
	assert_string_equal(list_of(f->e, false, "admin", 0, 0, &total), "");
}

/* ---------------------------------------------------------------- blacklists */

static void black_add_and_remove(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = black_cmd(ENG_CMD_BLACK_ADD, "a", "a");
	expect(f, &c, IM_EINVAL);
	c = black_cmd(ENG_CMD_BLACK_ADD, "a", "ghost");
	expect(f, &c, IM_ENOTFOUND);
	c = black_cmd(ENG_CMD_BLACK_REMOVE, "a", "b");
	expect(f, &c, IM_ENOTFOUND);
	c = black_cmd(ENG_CMD_BLACK_ADD, "a", "c");
	uint64_t created = expect(f, &c, 0);
	c = black_cmd(ENG_CMD_BLACK_ADD, "a", "b");
	expect(f, &c, 0);
	c = black_cmd(ENG_CMD_BLACK_ADD, "a", "b");
	expect(f, &c, IM_EEXIST);
	flush_ok(f->e);
	uint64_t total;
	assert_string_equal(list_of(f->e, true, "a", 0, 0, &total), "b,c,");
	assert_true(total == 2);
	assert_string_equal(list_of(f->e, true, "a", 1, 1, &total), "c,");
	struct eng_rtxn *r;
	struct eng_black b;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_black_get(r, IM_STR_LIT("a"), IM_STR_LIT("b"), &b), 0);
	assert_true(b.create_time == 80);
	assert_true(im_str_eq(b.ex, IM_STR_LIT("bx")));
	assert_true(im_str_eq(b.operator_user_id, IM_STR_LIT("a"))); /* empty: the owner */
	assert_int_equal(eng_black_get(r, IM_STR_LIT("b"), IM_STR_LIT("a"), &b), IM_ENOTFOUND);
	eng_read_end(r);
	uint8_t id[12], want[12];
	assert_true(vlog_version(f->e, ENG_VLOG_BLACK, "a", id) == 2);
	eng__vlog_id(want, ENG_VLOG_BLACK, IM_STR_LIT("a"), created);
	assert_memory_equal(id, want, 12);
	/* Friend and black logs of one owner are separate documents. */
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", NULL) == 0);

	c = black_cmd(ENG_CMD_BLACK_REMOVE, "a", "b");
	expect(f, &c, 0);
	c = black_cmd(ENG_CMD_BLACK_REMOVE, "a", "b");
	expect(f, &c, IM_ENOTFOUND);
	flush_ok(f->e);
	assert_string_equal(list_of(f->e, true, "a", 0, 0, &total), "c,");
	assert_true(vlog_version(f->e, ENG_VLOG_BLACK, "a", id) == 3);
	assert_memory_equal(id, want, 12); /* the versionID never changes */
	assert_string_equal(since(f->e, ENG_VLOG_BLACK, "a", 1, 200), "b:2:3;");
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- version logs */

static void vlog_since_and_limit(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_rtxn *r;
	uint8_t id[12];
	uint64_t v;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_vlog_get(r, ENG_VLOG_FRIEND, IM_STR_LIT("a"), id, &v), IM_ENOTFOUND);
	assert_int_equal(eng_vlog_get(r, 0, IM_STR_LIT("a"), id, &v), IM_ENOTFOUND);
	assert_int_equal(eng_vlog_get(r, 9, IM_STR_LIT("a"), id, &v), IM_ENOTFOUND);
	assert_int_equal(eng_vlog_get(r, ENG_VLOG_FRIEND, IM_STR_LIT(""), id, &v), IM_ENOTFOUND);
	eng_read_end(r);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 0, 200), "");

	struct im_str ids[4] = {IM_STR_LIT("b"), IM_STR_LIT("c"), IM_STR_LIT("d"), IM_STR_LIT("e")};
	struct eng_cmd c = import_cmd("a", ids, 4); /* a: 1 */
	expect(f, &c, 0);
	c = update_cmd("a", ids + 2, 1, ENG_FRIEND_REMARK, "x", false); /* a: 2 (d) */
	expect(f, &c, 0);
	c = delete_cmd("a", "b"); /* a: 3 */
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 0, 200), "b:2:3;c:1:1;d:3:2;e:1:1;");
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 1, 200), "b:2:3;d:3:2;");
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 2, 200), "b:2:3;");
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 3, 200), "");
	/* More matches than the limit: nothing but IM_ETOOBIG. */
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 0, 4), "b:2:3;c:1:1;d:3:2;e:1:1;");
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 0, 3), "TOOBIG");
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 1, 1), "TOOBIG");
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 2, 1), "b:2:3;");
	/* Another document of the same kind is not mixed in ("a" vs "admin"). */
	c = import_cmd("admin", ids, 1);
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "admin", 0, 200), "b:1:1;");
	assert_string_equal(since(f->e, ENG_VLOG_FRIEND, "a", 3, 200), "");
	assert_int_equal(check_problems(f->e, NULL), 0);
}

static void vlog_id_is_deterministic(void **state)
{
	uint8_t a[12], b[12], zero[12] = {0};
	eng__vlog_id(a, ENG_VLOG_FRIEND, IM_STR_LIT("u1"), 7);
	eng__vlog_id(b, ENG_VLOG_FRIEND, IM_STR_LIT("u1"), 7);
	assert_memory_equal(a, b, 12);
	assert_memory_not_equal(a, zero, 12);
	eng__vlog_id(b, ENG_VLOG_FRIEND, IM_STR_LIT("u1"), 8);
	assert_memory_not_equal(a, b, 12);
	eng__vlog_id(b, ENG_VLOG_BLACK, IM_STR_LIT("u1"), 7);
	assert_memory_not_equal(a, b, 12);
	eng__vlog_id(b, ENG_VLOG_FRIEND, IM_STR_LIT("u2"), 7);
	assert_memory_not_equal(a, b, 12);
}

/* A fixed history of relation commands; `from` skips the first ones (they were applied). */
static void history(struct fx *f)
{
	register_users(f, users);
	make_friends(f, "a", "b");
	make_friends(f, "c", "a");
	struct im_str ids[3] = {IM_STR_LIT("d"), IM_STR_LIT("e"), IM_STR_LIT("b")};
	struct eng_cmd c = import_cmd("c", ids, 3);
	expect(f, &c, 0);
	c = update_cmd("a", ids + 2, 1, ENG_FRIEND_IS_PINNED | ENG_FRIEND_REMARK, "bee", true);
	expect(f, &c, 0);
	c = black_cmd(ENG_CMD_BLACK_ADD, "e", "a");
	expect(f, &c, 0);
	c = delete_cmd("c", "d");
	expect(f, &c, 0);
	c = apply_cmd("d", "b", "hello", 900);
	expect(f, &c, 0);
	c = apply_cmd("a", "a", "rejected", 900);
	expect(f, &c, IM_EINVAL);
	c = black_cmd(ENG_CMD_BLACK_REMOVE, "e", "a");
	expect(f, &c, 0);
}

/* Replaying the log (skipped), reopening and applying it to a new engine give the same state. */
static void replay_and_reopen_keep_versions(void **state)
{
	struct fx *f = *state;
	history(f);
	flush_ok(f->e);
	assert_int_equal(check_problems(f->e, NULL), 0);
	uint32_t d1 = rel_digest(f->e);
	uint8_t id1[12], id2[12];
	uint64_t v1 = vlog_version(f->e, ENG_VLOG_FRIEND, "a", id1);
	assert_true(v1 == 3); /* b, c, then the update */

	/* Replay from index 1: every command is skipped. */
	uint64_t next = f->idx;
	f->idx = 1;
	struct im_buf b = {0};
	struct eng_cmd c = apply_cmd("a", "e", "new", 1000);
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	for (uint64_t i = 1; i < next; i++) {
		struct eng_result res;
		assert_int_equal(eng_apply(f->e, i, b.p, b.len, &res), 0);
		assert_true(res.skipped);
	}
	im_buf_free(&b);
	f->idx = next;
	flush_ok(f->e);
	assert_int_equal(rel_digest(f->e), d1);

	/* Reopen: same state, same versionID. */
	eng_close(f->e);
	f->e = open_at(f->dir, 0, 0);
	assert_int_equal(rel_digest(f->e), d1);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", id2) == v1);
	assert_memory_equal(id1, id2, 12);
	assert_int_equal(check_problems(f->e, NULL), 0);

	/* The same history on a fresh engine: byte-identical tables. */
	struct fx g;
	snprintf(g.dir, sizeof(g.dir), "%.60s2", f->dir);
	g.e = open_at(g.dir, 0, 0);
	g.idx = 1;
	history(&g);
	flush_ok(g.e);
	assert_int_equal(rel_digest(g.e), d1);
	eng_close(g.e);
	nftw(g.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);

	/* A later command bumps from there, and the versionID stays. */
	make_friends(f, "a", "d");
	flush_ok(f->e);
	assert_true(vlog_version(f->e, ENG_VLOG_FRIEND, "a", id2) == v1 + 1);
	assert_memory_equal(id1, id2, 12);
}

/* ---------------------------------------------------------------- check */

static void del_req_index(struct eng *e, MDB_txn *txn)
{
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val key = {eng__key_join(k, IM_STR_LIT("b"), IM_STR_LIT("d")), k};
	assert_int_equal(mdb_del(txn, eng__dbi(e, ENG__T_FRIEND_REQS_TO), &key, NULL), 0);
}

static void add_orphan_index(struct eng *e, MDB_txn *txn)
{
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val key = {eng__key_join(k, IM_STR_LIT("e"), IM_STR_LIT("c")), k}, val = {0, ""};
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_FRIEND_REQS_TO), &key, &val, 0), 0);
}

static void add_future_entry(struct eng *e, MDB_txn *txn)
{
	unsigned char k[ENG__VENTRY_KEY_MAX], v[ENG__VENTRY_LEN];
	struct eng__ventry en = {ENG_VLOG_UPDATE, 99, 1};
	eng__ventry_encode(v, &en);
	MDB_val key = {eng__ventry_key(k, ENG_VLOG_FRIEND, IM_STR_LIT("a"), IM_STR_LIT("zz")), k};
	MDB_val val = {sizeof(v), v};
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_VLOG_ENTRIES), &key, &val, 0), 0);
}

static void add_ghost_friend(struct eng *e, MDB_txn *txn)
{
	struct eng_friend fr = {.add_source = 1};
	unsigned char k[ENG__PAIR_KEY_MAX], v[64];
	MDB_val key = {eng__key_join(k, IM_STR_LIT("a"), IM_STR_LIT("ghost")), k};
	MDB_val val = {eng__friend_rec_size(&fr), v};
	eng__friend_rec_encode(v, &fr);
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_FRIENDS), &key, &val, 0), 0);
}

static void inject(struct eng *e, void (*fn)(struct eng *, MDB_txn *))
{
	MDB_txn *txn;
	assert_false(eng_dirty(e));
	assert_int_equal(mdb_txn_begin(eng__env(e), NULL, 0, &txn), 0);
	fn(e, txn);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

static void check_detects_broken_relations(void **state)
{
	struct fx *f = *state;
	history(f);
	flush_ok(f->e);
	assert_int_equal(check_problems(f->e, NULL), 0);

	struct im_buf rep = {0};
	inject(f->e, del_req_index);
	int n = eng_check(f->e, &rep);
	printf("without the index entry of d>b (%d problems):\n%s", n, rep.p ? rep.p : "");
	assert_int_equal(n, 1);
	assert_non_null(strstr(rep.p, "friend_reqs (d, b): no friend_reqs_to entry"));
	/* The reader notices nothing is there, but does not crash either. */
	assert_string_equal(reqs_of(f->e, false, "b"), "a>b:1,");
	im_buf_free(&rep);

	inject(f->e, add_orphan_index);
	n = eng_check(f->e, &rep);
	printf("plus an index entry without its request (%d problems):\n%s", n, rep.p);
	assert_int_equal(n, 2);
	assert_non_null(strstr(rep.p, "friend_reqs_to (e, c): no friend request from c"));
	im_buf_free(&rep);

	inject(f->e, add_future_entry);
	inject(f->e, add_ghost_friend);
	n = eng_check(f->e, &rep);
	printf("plus a future entry and a ghost friend (%d problems):\n%s", n, rep.p);
	/* The ghost row lacks its friends_by_friend entry too. */
	assert_int_equal(n, 5);
	assert_non_null(strstr(rep.p, "friends (a, ghost): no friends_by_friend entry"));
	assert_non_null(strstr(rep.p, "vlog_entries 1 a 'zz': version 99 but the document's 3"));
	assert_non_null(strstr(rep.p, "friends (a, ghost): user ghost does not exist"));
	im_buf_free(&rep);
}

/* ---------------------------------------------------------------- codec */

static struct im_str sample_ids[3] = {{"bob", 3}, {"c\xc3\xa9", 3}, {"dave", 4}};

/* A valid command of each relation type. */
static struct eng_cmd sample(int type)
{
	struct eng_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = (uint8_t)type;
	c.now_ms = 1700000000000 + type;
	switch (type) {
	case ENG_CMD_FRIEND_APPLY:
		c = apply_cmd("alice", "bob", "hello \x00 there", c.now_ms);
		c.r.friend_apply.req_msg = IM_STR_LIT("hello \x00 there");
		break;
	case ENG_CMD_FRIEND_RESPOND:
		c = respond_cmd("alice", "bob", -1, c.now_ms);
		break;
	case ENG_CMD_FRIEND_DELETE:
		c = delete_cmd("alice", "bob");
		break;
	case ENG_CMD_FRIEND_UPDATE:
		c = update_cmd("alice", sample_ids, 3, ENG_FRIEND_IS_PINNED | ENG_FRIEND_EX, "rem",
			       true);
		break;
	case ENG_CMD_FRIEND_IMPORT:
		c = import_cmd("alice", sample_ids, 2);
		break;
	case ENG_CMD_BLACK_ADD:
	case ENG_CMD_BLACK_REMOVE:
		c = black_cmd(type, "alice", "bob");
		break;
	default:
		break;
	}
	return c;
}

static const int rel_types[] = {
    ENG_CMD_FRIEND_APPLY,  ENG_CMD_FRIEND_RESPOND, ENG_CMD_FRIEND_DELETE, ENG_CMD_FRIEND_UPDATE,
    ENG_CMD_FRIEND_IMPORT, ENG_CMD_BLACK_ADD,	   ENG_CMD_BLACK_REMOVE};

static void assert_str_eq(struct im_str a, struct im_str b)
{
	assert_int_equal(a.n, b.n);
	if (a.n)
		assert_memory_equal(a.p, b.p, a.n);
}

static void assert_ids_eq(uint32_t n, const struct im_str *a, const struct im_str *b)
{
	for (uint32_t i = 0; i < n; i++)
		assert_str_eq(a[i], b[i]);
}

static void codec_round_trips_relation_commands(void **state)
{
	struct im_buf b = {0}, b2 = {0};
	static const char nd[] = "\x0a\x01x";
	struct eng_msg_item it = {.conv_id = IM_STR_LIT("si_alice_bob"),
				  .send_id = IM_STR_LIT("alice"),
				  .recv_id = IM_STR_LIT("bob"),
				  .session_type = 1,
				  .content_type = 1203,
				  .data = {nd, sizeof(nd) - 1}};
	for (size_t t = 0; t < IM_ARRAY_LEN(rel_types); t++) {
		struct eng_cmd c = sample(rel_types[t]), d;
		c.n_items = t % 2; /* the items tail, on every other type */
		c.items = &it;
		b.len = 0;
		assert_int_equal(eng_cmd_encode(&c, &b), 0);
		assert_int_equal(b.p[3], rel_types[t]);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
		assert_int_equal(d.type, c.type);
		assert_true(d.now_ms == c.now_ms);
		const union eng_rel_cmd *x = &c.r, *y = &d.r;
		switch (c.type) {
		case ENG_CMD_FRIEND_APPLY:
			assert_str_eq(y->friend_apply.from_user_id, x->friend_apply.from_user_id);
			assert_str_eq(y->friend_apply.to_user_id, x->friend_apply.to_user_id);
			assert_str_eq(y->friend_apply.req_msg, x->friend_apply.req_msg);
			assert_str_eq(y->friend_apply.ex, x->friend_apply.ex);
			break;
		case ENG_CMD_FRIEND_RESPOND:
			assert_str_eq(y->friend_respond.from_user_id,
				      x->friend_respond.from_user_id);
			assert_str_eq(y->friend_respond.to_user_id, x->friend_respond.to_user_id);
			assert_int_equal(y->friend_respond.handle_result, -1);
			assert_str_eq(y->friend_respond.handle_msg, x->friend_respond.handle_msg);
			break;
		case ENG_CMD_FRIEND_DELETE:
			assert_str_eq(y->friend_delete.owner_user_id,
				      x->friend_delete.owner_user_id);
			assert_str_eq(y->friend_delete.friend_user_id,
				      x->friend_delete.friend_user_id);
			break;
		case ENG_CMD_FRIEND_UPDATE:
			assert_str_eq(y->friend_update.owner_user_id,
				      x->friend_update.owner_user_id);
			assert_int_equal(y->friend_update.n_friends, 3);
			assert_ids_eq(3, y->friend_update.friend_user_ids, sample_ids);
			assert_int_equal(y->friend_update.mask, x->friend_update.mask);
			assert_str_eq(y->friend_update.remark, x->friend_update.remark);
			assert_str_eq(y->friend_update.ex, x->friend_update.ex);
			assert_true(y->friend_update.is_pinned);
			break;
		case ENG_CMD_FRIEND_IMPORT:
			assert_str_eq(y->friend_import.owner_user_id,
				      x->friend_import.owner_user_id);
			assert_int_equal(y->friend_import.n_friends, 2);
			assert_ids_eq(2, y->friend_import.friend_user_ids, sample_ids);
			assert_str_eq(y->friend_import.operator_user_id,
				      x->friend_import.operator_user_id);
			break;
		case ENG_CMD_BLACK_ADD:
			assert_str_eq(y->black_add.owner_user_id, x->black_add.owner_user_id);
			assert_str_eq(y->black_add.black_user_id, x->black_add.black_user_id);
			assert_str_eq(y->black_add.ex, x->black_add.ex);
			assert_str_eq(y->black_add.operator_user_id, x->black_add.operator_user_id);
			break;
		case ENG_CMD_BLACK_REMOVE:
			assert_str_eq(y->black_remove.owner_user_id, x->black_remove.owner_user_id);
			assert_str_eq(y->black_remove.black_user_id, x->black_remove.black_user_id);
			break;
		}
		assert_int_equal(d.n_items, c.n_items);
		/* Canonical: the decoded command encodes to the same bytes. */
		b2.len = 0;
		assert_int_equal(eng_cmd_encode(&d, &b2), 0);
		assert_int_equal(b2.len, b.len);
		assert_memory_equal(b2.p, b.p, b.len);
		eng_cmd_release(&d);
		assert_null(d.alloc);

		/* Every truncation (length and CRC fixed up) is IM_ECORRUPT. */
		for (size_t n = ENG_CMD_HEADER; n < b.len; n++) {
			unsigned char *p = malloc(n);
			memcpy(p, b.p, n);
			im_put_be32(p + 4, (uint32_t)(n - ENG_CMD_HEADER));
			uint32_t crc = im_crc32(0, p, 8);
			im_put_be32(p + 8, im_crc32(crc, p + ENG_CMD_HEADER, n - ENG_CMD_HEADER));
			assert_int_equal(eng_cmd_decode(p, n, &d), IM_ECORRUPT);
			free(p);
		}
	}
	im_buf_free(&b);
	im_buf_free(&b2);
}

static void codec_checks_relation_bounds(void **state)
{
	struct im_buf b = {0};
	char *big = malloc(ENG_TEXT_MAX + 1);
	memset(big, 'x', ENG_TEXT_MAX + 1);
	struct im_str too_long = {big, ENG_ID_MAX + 1}, text = {big, ENG_TEXT_MAX + 1};
	struct eng_cmd c = sample(ENG_CMD_FRIEND_APPLY);
	c.r.friend_apply.to_user_id = too_long;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_FRIEND_APPLY);
	c.r.friend_apply.req_msg = text;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.r.friend_apply.req_msg = (struct im_str){big, ENG_TEXT_MAX};
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	c = sample(ENG_CMD_FRIEND_DELETE);
	c.r.friend_delete.friend_user_id = IM_STR_LIT("a\0"
						      "b");
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_FRIEND_UPDATE);
	c.r.friend_update.n_friends = ENG_FRIENDS_MAX + 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.r.friend_update.n_friends = 1;
	c.r.friend_update.friend_user_ids = NULL;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_FRIEND_IMPORT);
	c.r.friend_import.operator_user_id = too_long;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_BLACK_ADD);
	c.r.black_add.ex = text;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_BLACK_REMOVE);
	c.type = ENG_CMD_GROUP_REQ_RESPOND + 1; /* unknown */
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);

	/* Decode: a friend count the payload cannot hold, and a bad bool. */
	c = sample(ENG_CMD_FRIEND_UPDATE);
	b.len = 0;
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	struct eng_cmd d;
	unsigned char *p = (unsigned char *)b.p;
	size_t cnt = ENG_CMD_HEADER + 8 + 4 + 5; /* now_ms, "alice" */
	assert_true(im_get_be32(p + cnt) == 3);
	im_put_be32(p + cnt, ENG_FRIENDS_MAX);
	uint32_t crc = im_crc32(0, p, 8);
	im_put_be32(p + 8, im_crc32(crc, p + ENG_CMD_HEADER, b.len - ENG_CMD_HEADER));
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_put_be32(p + cnt, 3);
	p[b.len - 5] = 2; /* is_pinned, before the empty items tail */
	crc = im_crc32(0, p, 8);
	im_put_be32(p + 8, im_crc32(crc, p + ENG_CMD_HEADER, b.len - ENG_CMD_HEADER));
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	p[b.len - 5] = 1;
	crc = im_crc32(0, p, 8);
	im_put_be32(p + 8, im_crc32(crc, p + ENG_CMD_HEADER, b.len - ENG_CMD_HEADER));
	assert_int_equal(eng_cmd_decode(p, b.len, &d), 0);
	eng_cmd_release(&d);
	free(big);
	im_buf_free(&b);
}

/* Out of memory anywhere in the decode of a friend list: -ENOMEM, nothing leaks. */
static void codec_reports_out_of_memory(void **state)
{
	struct im_buf b = {0};
	struct eng_cmd c = sample(ENG_CMD_FRIEND_IMPORT), d;
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	im_alloc_fail_after(1);
	int rv = eng_cmd_decode(b.p, b.len, &d);
	im_alloc_fail_after(0);
	assert_int_equal(rv, -ENOMEM);
	im_buf_free(&b);
}

/*
 * The fuzz/corpus/fuzz_cmd seeds of the relation commands: with
 * IMLOG_WRITE_CORPUS=<dir> this writes a valid command of each type there.
 */
static void writes_seed_corpus_when_asked(void **state)
{
	const char *dir = getenv("IMLOG_WRITE_CORPUS");
	if (dir == NULL)
		skip();
	struct im_buf b = {0};
	for (size_t t = 0; t < IM_ARRAY_LEN(rel_types); t++) {
		struct eng_cmd c = sample(rel_types[t]);
		b.len = 0;
		assert_int_equal(eng_cmd_encode(&c, &b), 0);
		char path[1024];
		snprintf(path, sizeof(path), "%s/valid_%s", dir, eng__cmd_name(rel_types[t]));
		FILE *fp = fopen(path, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(b.p, 1, b.len, fp), b.len);
		fclose(fp);
	}
	im_buf_free(&b);
}

/* ---------------------------------------------------------------- group membership */

static struct eng_member gm[8];

static struct eng_cmd gcreate_cmd(const char *gid, const char *const *ids)
{
	uint32_t n = 0;
	for (; ids[n] != NULL; n++)
		gm[n] = (struct eng_member){
		    .user_id = im_str_c(ids[n]), .role_level = n == 0 ? 100 : 20, .join_time = 5};
	struct eng_cmd c = {.type = ENG_CMD_GROUP_CREATE, .now_ms = 5};
	c.m.group_create.group = (struct eng_group){
	    .group_id = im_str_c(gid), .owner_user_id = im_str_c(ids[0]), .group_type = 2};
	c.m.group_create.n_members = n;
	c.m.group_create.members = gm;
	return c;
}

static struct eng_cmd gadd_cmd(const char *gid, const char *const *ids)
{
	uint32_t n = 0;
	for (; ids[n] != NULL; n++)
		gm[n] = (struct eng_member){.user_id = im_str_c(ids[n]), .role_level = 20};
	struct eng_cmd c = {.type = ENG_CMD_GROUP_MEMBERS_ADD, .now_ms = 6};
	c.m.group_members_add.group_id = im_str_c(gid);
	c.m.group_members_add.n_members = n;
	c.m.group_members_add.members = gm;
	return c;
}

static struct im_str gids[8];

static struct eng_cmd gremove_cmd(const char *gid, const char *const *ids, int32_t reason)
{
	uint32_t n = 0;
	for (; ids[n] != NULL; n++)
		gids[n] = im_str_c(ids[n]);
	struct eng_cmd c = {.type = ENG_CMD_GROUP_MEMBERS_REMOVE, .now_ms = 7};
	c.m.group_members_remove.group_id = im_str_c(gid);
	c.m.group_members_remove.n_users = n;
	c.m.group_members_remove.user_ids = gids;
	c.m.group_members_remove.reason = reason;
	return c;
}

/* One stored group message from `from` (a visible tip or a chat message). */
static void gsend(struct fx *f, const char *gid, const char *from)
{
	struct eng *e = f->e;
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
	flush_ok(e);
}

static uint32_t member_count(struct eng *e, const char *gid)
{
	struct eng_rtxn *r;
	struct eng_group g;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_group_get(r, im_str_c(gid), &g);
	eng_read_end(r);
	assert_int_equal(rv, 0);
	return g.member_count;
}

/* The sg_ row's max_seq of user (-1 without a row) and whether user is a member. */
static int64_t cap_of(struct eng *e, const char *user, const char *gid, bool *member)
{
	struct eng_rtxn *r;
	struct eng_conv c;
	struct eng_member m;
	char conv[64];
	snprintf(conv, sizeof(conv), "sg_%s", gid);
	assert_int_equal(eng_read_begin(e, &r), 0);
	int64_t cap = eng_conv_get(r, im_str_c(user), im_str_c(conv), &c) == 0 ? c.max_seq : -1;
	*member = eng_member_get(r, im_str_c(gid), im_str_c(user), &m) == 0;
	eng_read_end(r);
	return cap;
}

struct extra_seen {
	char extra[128];
	int n;
};

static void record_extra(const struct eng_event *ev, void *arg)
{
	struct extra_seen *x = arg;
	x->n++;
	size_t n = strlen(x->extra);
	for (uint32_t i = 0; i < ev->extra.n && n + 1 < sizeof(x->extra); i++)
		x->extra[n++] = ev->extra.p[i] ? ev->extra.p[i] : ',';
	x->extra[n] = '\0';
	if (n + 1 < sizeof(x->extra))
		strcat(x->extra, "|");
}

static void group_membership_logs_caps_counts(void **state)
{
	struct fx *f = *state;
	register_users(f, users);
	struct eng_cmd c = gcreate_cmd("g", (const char *[]){"a", "b", "c", NULL});
	expect(f, &c, 0);
	flush_ok(f->e);
	/* Creation writes both logs of every member. */
	assert_int_equal(vlog_version(f->e, ENG_VLOG_GROUP_MEMBER, "g", NULL), 1);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 0, 200), "a:1:1;b:1:1;c:1:1;");
	assert_string_equal(since(f->e, ENG_VLOG_JOIN_GROUP, "b", 0, 200), "g:1:1;");
	assert_int_equal(member_count(f->e, "g"), 3);
	gsend(f, "g", "a");
	gsend(f, "g", "b");

	/* Invite d and e: rows, count, logs (one bump). */
	c = gadd_cmd("g", (const char *[]){"d", "e", NULL});
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_int_equal(member_count(f->e, "g"), 5);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 1, 200), "d:1:2;e:1:2;");
	assert_string_equal(since(f->e, ENG_VLOG_JOIN_GROUP, "d", 0, 200), "g:1:1;");
	bool member;
	assert_int_equal(cap_of(f->e, "d", "g", &member), 0);
	assert_true(member);
	assert_int_equal(check_problems(f->e, NULL), 0);

	/* Kick b and c: capped at the current max seq (2), logs deleted, count down. */
	c = gremove_cmd("g", (const char *[]){"b", "c", NULL}, ENG_GROUP_KICK);
	struct eng_msg_item tip = {.conv_id = IM_STR_LIT("n_g"),
				   .send_id = IM_STR_LIT("a"),
				   .group_id = IM_STR_LIT("g"),
				   .session_type = 3,
				   .content_type = 1508,
				   .flags = ENG_MSG_NOTIFICATION,
				   .data = IM_STR_LIT("t")};
	c.n_items = 1;
	c.items = &tip;
	expect(f, &c, 0);
	flush_ok(f->e);
	flush_ok(f->e);
	struct extra_seen x = {{0}, 0};
	eng_events_drain(f->e, record_extra, &x);
	/* The sends' events had no extra; the kick's names the leavers. */
	assert_string_equal(x.extra, "||b,c|");
	assert_int_equal(member_count(f->e, "g"), 3);
	assert_int_equal(cap_of(f->e, "b", "g", &member), 2);
	assert_false(member);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 2, 200), "b:2:3;c:2:3;");
	assert_string_equal(since(f->e, ENG_VLOG_JOIN_GROUP, "c", 1, 200), "g:2:2;");
	assert_int_equal(check_problems(f->e, NULL), 0);
	gsend(f, "g", "a");

	/* Rejections change nothing: the owner, a non-member, unknown group/user, dup. */
	flush_ok(f->e);
	uint32_t before = rel_digest(f->e);
	c = gremove_cmd("g", (const char *[]){"d", "a", NULL}, ENG_GROUP_QUIT);
	expect(f, &c, IM_EPERM);
	c = gremove_cmd("g", (const char *[]){"d", "b", NULL}, ENG_GROUP_QUIT);
	expect(f, &c, IM_ENOTFOUND);
	c = gremove_cmd("g", (const char *[]){"d", "d", NULL}, ENG_GROUP_QUIT);
	expect(f, &c, IM_ENOTFOUND);
	c = gremove_cmd("g", (const char *[]){"d", NULL}, 9);
	expect(f, &c, IM_EINVAL);
	c = gremove_cmd("nog", (const char *[]){"d", NULL}, ENG_GROUP_QUIT);
	expect(f, &c, IM_ENOTFOUND);
	c = gadd_cmd("g", (const char *[]){"b", "d", NULL});
	expect(f, &c, IM_EEXIST);
	c = gadd_cmd("g", (const char *[]){"b", "zz", NULL});
	expect(f, &c, IM_ENOTFOUND);
	c = gadd_cmd("nog", (const char *[]){"b", NULL});
	expect(f, &c, IM_ENOTFOUND);
	flush_ok(f->e);
	assert_int_equal(rel_digest(f->e), before);
	assert_int_equal(member_count(f->e, "g"), 3);
	assert_true(cap_of(f->e, "d", "g", &member) == 0 && member);

	/* Quit d; b rejoins: its cap is cleared. */
	c = gremove_cmd("g", (const char *[]){"d", NULL}, ENG_GROUP_QUIT);
	expect(f, &c, 0);
	flush_ok(f->e);
	assert_int_equal(cap_of(f->e, "d", "g", &member), 3);
	c = gadd_cmd("g", (const char *[]){"b", NULL});
	uint64_t idx = expect(f, &c, 0);
	flush_ok(f->e);
	assert_int_equal(cap_of(f->e, "b", "g", &member), 0);
	assert_true(member);
	assert_int_equal(member_count(f->e, "g"), 3);
	assert_string_equal(since(f->e, ENG_VLOG_GROUP_MEMBER, "g", 3, 200), "b:1:5;d:2:4;");
	flush_ok(f->e);
	int drained = 0;
	eng_events_drain(f->e, ignore_event, &drained);
	assert_int_equal(drained, 1); /* the send after the kick: no item since */
	assert_int_equal(check_problems(f->e, NULL), 0);

	/* Replay of an applied index is skipped. */
	before = rel_digest(f->e);
	struct im_buf b = {0};
	struct eng_result res;
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	assert_int_equal(eng_apply(f->e, idx, b.p, b.len, &res), 0);
	assert_true(res.skipped);
	c = gremove_cmd("g", (const char *[]){"b", NULL}, ENG_GROUP_KICK);
	b.len = 0;
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	assert_int_equal(eng_apply(f->e, idx, b.p, b.len, &res), 0);
	assert_true(res.skipped);
	im_buf_free(&b);
	flush_ok(f->e);
	assert_int_equal(rel_digest(f->e), before);
	assert_true(cap_of(f->e, "b", "g", &member) == 0 && member);
}

static void codec_round_trips_group_membership(void **state)
{
	(void)state;
	struct eng_cmd c = gadd_cmd("g1", (const char *[]){"x", "y", NULL}), d;
	gm[1].nickname = IM_STR_LIT("nick");
	struct im_buf b = {0};
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.type, ENG_CMD_GROUP_MEMBERS_ADD);
	assert_int_equal(d.m.group_members_add.n_members, 2);
	assert_str_eq(d.m.group_members_add.members[1].user_id, IM_STR_LIT("y"));
	assert_str_eq(d.m.group_members_add.members[1].nickname, IM_STR_LIT("nick"));
	assert_str_eq(d.m.group_members_add.members[1].group_id, IM_STR_LIT("g1"));
	eng_cmd_release(&d);
	c = gremove_cmd("g1", (const char *[]){"x", "y", NULL}, ENG_GROUP_KICK);
	b.len = 0;
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.m.group_members_remove.reason, ENG_GROUP_KICK);
	assert_ids_eq(2, d.m.group_members_remove.user_ids, gids);
	/* Every truncation is refused. */
	for (size_t n = 0; n < b.len; n++) {
		struct eng_cmd t;
		assert_int_not_equal(eng_cmd_decode(b.p, n, &t), 0);
	}
	eng_cmd_release(&d);
	im_buf_free(&b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(friend_apply_rules),
	    T(friend_respond_rules),
	    T(friend_delete_and_update),
	    T(friend_import_rules),
	    T(friend_scan_pages_and_counts),
	    T(black_add_and_remove),
	    T(vlog_since_and_limit),
	    cmocka_unit_test(vlog_id_is_deterministic),
	    T(replay_and_reopen_keep_versions),
	    T(check_detects_broken_relations),
	    cmocka_unit_test(codec_round_trips_relation_commands),
	    cmocka_unit_test(codec_checks_relation_bounds),
	    cmocka_unit_test(codec_reports_out_of_memory),
	    cmocka_unit_test(writes_seed_corpus_when_asked),
	    T(group_membership_logs_caps_counts),
	    cmocka_unit_test(codec_round_trips_group_membership),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
