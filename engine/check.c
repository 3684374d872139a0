/* check.c - eng_check: verifies that the tables and their indexes agree. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "engine_int.h"

/*
 * The check reads one committed snapshot (an open batch is not seen) and
 * walks each table once:
 *
 *  1. meta: schema, applied, user_count and user_seq_next are present and
 *     well formed;
 *  2. users: each key is a valid id and each record decodes; its sequence
 *     has a user_order entry naming this user;
 *  3. user_order: keys are exactly 1..n (dense, so paging by offset works),
 *     each names an existing user whose record carries the same sequence;
 *  4. meta user_count = n and user_seq_next = n + 1;
 *  5. tokens: each key and value decodes and the user exists;
 *  6. user_cmds: each key and value decodes and the user exists (a table
 *     that a read-only open found absent is empty and has nothing to check).
 *
 * Memory stays constant: every cross-check is a point lookup.
 */

struct chk {
	struct eng *e;
	MDB_txn *txn;
	struct im_buf *report;
	int problems;
};

static void problem(struct chk *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct chk *k, const char *fmt, ...)
{
	k->problems++;
	if (k->report == NULL)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	im_buf_printf(k->report, "%s\n", line);
}

/* Prints a key for a report line: printable bytes as is, others as \xNN. */
static const char *show(const void *p, size_t n, char *buf, size_t size)
{
	const unsigned char *s = p;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < size; i++) {
		if (isprint(s[i]) && s[i] != '\\')
			buf[o++] = (char)s[i];
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", s[i]);
	}
	buf[o] = '\0';
	return buf;
}

/* Reads one meta counter (1); *ok tells whether it could be read. */
static uint64_t check_meta(struct chk *k, const char *key, bool *ok)
{
	uint64_t v = 0;
	int rv = eng__meta_get_u64(k->e, k->txn, key, &v);
	*ok = rv == 0;
	if (rv != 0)
		problem(k, "meta %s: %s", key, k->e->errmsg);
	return v;
}

static int open_cursor(struct chk *k, enum eng__table t, MDB_cursor **c)
{
	int rc = mdb_cursor_open(k->txn, k->e->dbi[t], c);
	return rc ? eng__from_mdb(k->e, rc, "check: mdb_cursor_open") : 0;
}

/* Walks users (2); returns the number of users or a negative error. */
static int64_t check_users(struct chk *k)
{
	MDB_cursor *c;
	int rv = open_cursor(k, ENG__T_USERS, &c);
	if (rv != 0)
		return rv;
	MDB_val key, val;
	int64_t n = 0;
	int rc;
	char sb[300];
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct im_str id = {key.mv_data, (uint32_t)key.mv_size};
		const char *name = show(key.mv_data, key.mv_size, sb, sizeof(sb));
		struct eng_user u;
		uint64_t seq;
		n++;
		if (!eng__id_valid(id))
			problem(k, "users: invalid userID '%s'", name);
		if (eng__user_rec_decode(val.mv_data, val.mv_size, id, &u, &seq) != 0) {
			problem(k, "users %s: record does not decode", name);
			continue;
		}
		/* The order entry of this user's sequence must name it back. */
		unsigned char sk[8];
		im_put_be64(sk, seq);
		MDB_val okey = {8, sk}, oval;
		int orc = mdb_get(k->txn, k->e->dbi[ENG__T_USER_ORDER], &okey, &oval);
		if (orc == MDB_NOTFOUND)
			problem(k, "users %s: no user_order entry for sequence %" PRIu64, name,
				seq);
		else if (orc != 0)
			rc = orc;
		else if (oval.mv_size != key.mv_size ||
			 memcmp(oval.mv_data, key.mv_data, key.mv_size))
			problem(k, "users %s: user_order sequence %" PRIu64 " names another user",
				name, seq);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return eng__from_mdb(k->e, rc, "check users: mdb_cursor_get");
	return n;
}

/* Walks user_order (3); returns the number of entries or a negative error. */
static int64_t check_order(struct chk *k)
{
	MDB_cursor *c;
	int rv = open_cursor(k, ENG__T_USER_ORDER, &c);
	if (rv != 0)
		return rv;
	MDB_val key, val;
	int64_t n = 0;
	uint64_t expect = 1;
	int rc;
	char sb[300];
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		n++;
		if (key.mv_size != 8) {
			problem(k, "user_order: key of %zu bytes", key.mv_size);
			continue;
		}
		/* Dense from 1: a gap or a repeat breaks paging by offset. */
		uint64_t seq = im_get_be64(key.mv_data);
		if (seq != expect)
			problem(k,
				"user_order: sequence %" PRIu64 " where %" PRIu64 " was expected",
				seq, expect);
		expect = seq + 1;
		const char *name = show(val.mv_data, val.mv_size, sb, sizeof(sb));
		MDB_val ukey = val, uval;
		struct eng_user u;
		uint64_t useq;
		if (val.mv_size == 0 || val.mv_size > ENG_ID_MAX) {
			problem(k, "user_order %" PRIu64 ": invalid userID", seq);
			continue;
		}
		int urc = mdb_get(k->txn, k->e->dbi[ENG__T_USERS], &ukey, &uval);
		if (urc == MDB_NOTFOUND) {
			problem(k, "user_order %" PRIu64 ": user %s does not exist", seq, name);
		} else if (urc != 0) {
			rc = urc;
			break;
		} else if (eng__user_rec_decode(
			       uval.mv_data, uval.mv_size,
			       (struct im_str){ukey.mv_data, (uint32_t)ukey.mv_size}, &u,
			       &useq) == 0 &&
			   useq != seq) {
			problem(k, "user_order %" PRIu64 ": user %s has sequence %" PRIu64, seq,
				name, useq);
		}
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return eng__from_mdb(k->e, rc, "check user_order: mdb_cursor_get");
	return n;
}

/* Walks tokens (5). */
static int check_tokens(struct chk *k)
{
	MDB_cursor *c;
	int rv = open_cursor(k, ENG__T_TOKENS, &c);
	if (rv != 0)
		return rv;
	MDB_val key, val;
	int rc;
	char sb[300];
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct im_str user, token;
		int32_t platform;
		struct eng__token_val tv;
		const char *name = show(key.mv_data, IM_MIN(key.mv_size, 64u), sb, sizeof(sb));
		if (eng__token_key_parse(key.mv_data, key.mv_size, &user, &platform, &token) != 0) {
			problem(k, "tokens: key '%s' does not decode", name);
			continue;
		}
		if (eng__token_val_decode(val.mv_data, val.mv_size, &tv) != 0)
			problem(k, "tokens %s: value does not decode", name);
		/* A token of an unknown user is an orphan. */
		MDB_val ukey = {user.n, (void *)user.p}, uval;
		int urc = mdb_get(k->txn, k->e->dbi[ENG__T_USERS], &ukey, &uval);
		if (urc == MDB_NOTFOUND) {
			problem(k, "tokens %s: user does not exist", name);
		} else if (urc != 0) {
			rc = urc;
			break;
		}
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return eng__from_mdb(k->e, rc, "check tokens: mdb_cursor_get");
	return 0;
}

/* Walks user_cmds (6). */
static int check_user_cmds(struct chk *k)
{
	if (k->e->absent[ENG__T_USER_CMDS])
		return 0;
	MDB_cursor *c;
	int rv = open_cursor(k, ENG__T_USER_CMDS, &c);
	if (rv != 0)
		return rv;
	MDB_val key, val;
	int rc;
	char sb[300];
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct eng_user_cmd u;
		if (eng__ucmd_key_parse(key.mv_data, key.mv_size, &u) != 0) {
			problem(k, "user_cmds: key '%s' does not decode",
				show(key.mv_data, IM_MIN(key.mv_size, 64u), sb, sizeof(sb)));
			continue;
		}
		/* Named like apply's details: (user, type, uuid). */
		char name[sizeof(sb) * 2 + 16], qb[sizeof(sb)];
		snprintf(name, sizeof(name), "(%s, %" PRId32 ", %s)",
			 show(u.user_id.p, u.user_id.n, sb, sizeof(sb)), u.type,
			 show(u.uuid.p, u.uuid.n, qb, sizeof(qb)));
		if (eng__ucmd_val_decode(val.mv_data, val.mv_size, &u) != 0)
			problem(k, "user_cmds %s: value does not decode", name);
		/* A command of an unknown user is an orphan. */
		MDB_val ukey = {u.user_id.n, (void *)u.user_id.p}, uval;
		int urc = mdb_get(k->txn, k->e->dbi[ENG__T_USERS], &ukey, &uval);
		if (urc == MDB_NOTFOUND) {
			problem(k, "user_cmds %s: user does not exist", name);
		} else if (urc != 0) {
			rc = urc;
			break;
		}
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return eng__from_mdb(k->e, rc, "check user_cmds: mdb_cursor_get");
	return 0;
}

int eng_check(struct eng *e, struct im_buf *report)
{
	struct chk k = {e, NULL, report, 0};
	/* A txn of its own: the check may run while a reader is open. */
	int rv = eng__txn_begin(e, MDB_RDONLY, &k.txn);
	if (rv != 0) {
		eng__wrap(e, "check");
		return rv;
	}
	/* A storage error ends the check; problems only add up. */
	bool ok_count, ok_seq, ok;
	check_meta(&k, ENG__META_APPLIED, &ok);
	uint64_t count = check_meta(&k, ENG__META_USERS, &ok_count);
	uint64_t seq_next = check_meta(&k, ENG__META_USER_SEQ, &ok_seq);
	int64_t users = check_users(&k);
	int64_t order = users < 0 ? users : check_order(&k);
	rv = order < 0 ? (int)order : check_tokens(&k);
	if (rv == 0)
		rv = check_user_cmds(&k);
	mdb_txn_abort(k.txn);
	if (rv != 0) {
		eng__wrap(e, "check");
		return rv;
	}
	/* (4): the counters agree with what the walks found. */
	if (order != users)
		problem(&k, "users: %" PRId64 " users but %" PRId64 " user_order entries", users,
			order);
	if (ok_count && count != (uint64_t)users)
		problem(&k, "meta user_count: %" PRIu64 " but %" PRId64 " users", count, users);
	if (ok_seq && seq_next != (uint64_t)order + 1)
		problem(&k, "meta user_seq_next: %" PRIu64 " but %" PRId64 " user_order entries",
			seq_next, order);
	return k.problems;
}
