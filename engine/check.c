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
 *  7. msgs: per conversation the seqs are exactly 1..n, n is the max_seq of
 *     its conv_seqs row, each value decodes and ends with its seq field, and a
 *     revoked flag has its revokes record;
 *  8. conv_seqs: each decodes, and its max_seq message exists (so a row whose
 *     messages are all gone is caught too);
 *  9. msg_dedup and revokes: each decodes and names an existing message (a
 *     revoked one for revokes);
 * 10. convs: each decodes and its owner is a registered user; read_seqs and
 *     hidden keys and values are well formed;
 * 11. groups, members, user_groups: each decodes; a member's group and user
 *     exist and its user_groups entry too, each user_groups entry names a
 *     member, and member_count is the group's number of members.
 * 12. friends, blacks: each decodes and both users exist;
 * 13. friend_reqs: each decodes, both users exist and its friend_reqs_to
 *     entry too; each friend_reqs_to entry is empty and names a request;
 * 14. vlogs, vlog_entries: each decodes with a known kind and a version of
 *     at least 1; each entry has its document, whose version is at least the
 *     entry's.
 * 15. friends_by_friend (schema 2): each entry is empty and names a friends
 *     row, and each friends row has its entry;
 * 16. group_reqs: each decodes, its group and user exist and its
 *     group_reqs_by_user entry too; each group_reqs_by_user entry is empty
 *     and names a request.
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

/* ---------------------------------------------------------------- message side */

/* 1 if key exists in t, 0 if not, or a negative error. */
static int exists(struct chk *k, enum eng__table t, const void *key, size_t kn)
{
	if (k->e->absent[t])
		return 0;
	MDB_val kv = {kn, (void *)key}, v;
	int rc = mdb_get(k->txn, k->e->dbi[t], &kv, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc ? eng__from_mdb(k->e, rc, "check: mdb_get") : 1;
}

/*
 * Walks a whole table, calling fn for each entry; stops at a storage error
 * (returned).  An absent table (read-only open of an older environment) is
 * empty.
 */
static int walk(struct chk *k, enum eng__table t,
		int (*fn)(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg),
		void *arg)
{
	if (k->e->absent[t])
		return 0;
	MDB_cursor *c;
	int rv = open_cursor(k, t, &c);
	if (rv != 0)
		return rv;
	MDB_val key, val;
	int rc;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		rv = fn(k, &key, &val, arg);
		if (rv != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = eng__from_mdb(k->e, rc, "check: mdb_cursor_get");
	return rv;
}

/* The msgs walk's current conversation (7). */
struct conv_run {
	char conv[ENG_CONV_ID_MAX];
	uint32_t n; /* 0: none yet */
	uint64_t last;
};

/* The end of a conversation's run: its last seq must be conv_seqs' max_seq. */
static int run_end(struct chk *k, struct conv_run *run)
{
	if (run->n == 0)
		return 0;
	char sb[ENG_CONV_ID_MAX * 4 + 8];
	const char *name = show(run->conv, run->n, sb, sizeof(sb));
	MDB_val key = {run->n, run->conv}, val;
	int rc = k->e->absent[ENG__T_CONV_SEQS]
		     ? MDB_NOTFOUND
		     : mdb_get(k->txn, k->e->dbi[ENG__T_CONV_SEQS], &key, &val);
	struct eng__conv_seq cs;
	if (rc == MDB_NOTFOUND)
		problem(k, "msgs %s: no conv_seqs row", name);
	else if (rc != 0)
		return eng__from_mdb(k->e, rc, "check: mdb_get conv_seqs");
	else if (eng__conv_seq_decode(val.mv_data, val.mv_size, &cs) == 0 &&
		 (uint64_t)cs.max_seq != run->last)
		problem(k, "msgs %s: last seq %" PRIu64 " but conv_seqs max_seq %" PRId64, name,
			run->last, cs.max_seq);
	return 0;
}

static int msg_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	struct conv_run *run = arg;
	char sb[ENG_CONV_ID_MAX * 4 + 8];
	struct im_str conv;
	uint64_t seq;
	if (eng__msg_key_parse(key->mv_data, key->mv_size, &conv, &seq) != 0) {
		problem(k, "msgs: key '%s' does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb)));
		return 0;
	}
	const char *name = show(conv.p, conv.n, sb, sizeof(sb));
	/* A new conversation: the previous one ends, this one starts at seq 1. */
	if (run->n != conv.n || memcmp(run->conv, conv.p, conv.n) != 0) {
		int rv = run_end(k, run);
		if (rv != 0)
			return rv;
		memcpy(run->conv, conv.p, conv.n);
		run->n = conv.n;
		run->last = 0;
	}
	if (seq != run->last + 1)
		problem(k, "msgs %s: seq %" PRIu64 " where %" PRIu64 " was expected", name, seq,
			run->last + 1);
	run->last = seq;
	uint8_t flags;
	struct im_str data;
	if (eng__msg_val_decode(val->mv_data, val->mv_size, &flags, &data) != 0) {
		problem(k, "msgs %s %" PRIu64 ": record does not decode", name, seq);
		return 0;
	}
	if (!eng__seq_field_ends(data, seq))
		problem(k, "msgs %s %" PRIu64 ": does not end with its seq field", name, seq);
	if (flags & ENG__MSG_F_REVOKED) {
		int rv = exists(k, ENG__T_REVOKES, key->mv_data, key->mv_size);
		if (rv < 0)
			return rv;
		if (rv == 0)
			problem(k, "msgs %s %" PRIu64 ": revoked without a revokes record", name,
				seq);
	}
	return 0;
}

static int conv_seq_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[ENG_CONV_ID_MAX * 4 + 8];
	const char *name = show(key->mv_data, IM_MIN(key->mv_size, 300u), sb, sizeof(sb));
	struct eng__conv_seq cs;
	struct im_str conv = {key->mv_data, (uint32_t)key->mv_size};
	if (!eng__conv_id_valid(conv) ||
	    eng__conv_seq_decode(val->mv_data, val->mv_size, &cs) != 0) {
		problem(k, "conv_seqs %s: record does not decode", name);
		return 0;
	}
	if (cs.max_seq < 1 || cs.min_seq < 1) {
		problem(k, "conv_seqs %s: max_seq %" PRId64 " min_seq %" PRId64, name, cs.max_seq,
			cs.min_seq);
		return 0;
	}
	unsigned char mk[ENG__MSG_KEY_MAX];
	int rv = exists(k, ENG__T_MSGS, mk, eng__msg_key(mk, conv, (uint64_t)cs.max_seq));
	if (rv == 0)
		problem(k, "conv_seqs %s: message %" PRId64 " (max_seq) does not exist", name,
			cs.max_seq);
	return rv < 0 ? rv : 0;
}

static int dedup_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[300];
	const char *name = show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb));
	struct im_str send, cmid;
	struct eng__dedup d;
	if (eng__key_split(key->mv_data, key->mv_size, &send, &cmid) != 0 ||
	    eng__dedup_rec_decode(val->mv_data, val->mv_size, &d) != 0) {
		problem(k, "msg_dedup %s: record does not decode", name);
		return 0;
	}
	unsigned char mk[ENG__MSG_KEY_MAX];
	int rv = d.seq > 0
		     ? exists(k, ENG__T_MSGS, mk, eng__msg_key(mk, d.conv_id, (uint64_t)d.seq))
		     : 0;
	if (rv == 0)
		problem(k, "msg_dedup %s: message %.*s %" PRId64 " does not exist", name,
			ENG__ID_ARG(d.conv_id), d.seq);
	return rv < 0 ? rv : 0;
}

static int revoke_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[300];
	struct im_str conv;
	uint64_t seq;
	struct eng_revoke rv_;
	if (eng__msg_key_parse(key->mv_data, key->mv_size, &conv, &seq) != 0 ||
	    eng__revoke_rec_decode(val->mv_data, val->mv_size, &rv_) != 0) {
		problem(k, "revokes %s: record does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb)));
		return 0;
	}
	const char *name = show(conv.p, conv.n, sb, sizeof(sb));
	MDB_val mk = *key, mv;
	int rc = k->e->absent[ENG__T_MSGS] ? MDB_NOTFOUND
					   : mdb_get(k->txn, k->e->dbi[ENG__T_MSGS], &mk, &mv);
	uint8_t flags = 0;
	struct im_str data;
	if (rc == MDB_NOTFOUND)
		problem(k, "revokes %s %" PRIu64 ": message does not exist", name, seq);
	else if (rc != 0)
		return eng__from_mdb(k->e, rc, "check: mdb_get msgs");
	else if (eng__msg_val_decode(mv.mv_data, mv.mv_size, &flags, &data) == 0 &&
		 !(flags & ENG__MSG_F_REVOKED))
		problem(k, "revokes %s %" PRIu64 ": message is not flagged revoked", name, seq);
	return 0;
}

static int conv_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[300], cb[300];
	struct eng_conv c;
	if (eng__key_split(key->mv_data, key->mv_size, &c.owner_user_id, &c.conversation_id) != 0 ||
	    c.owner_user_id.n > ENG_ID_MAX || !eng__conv_id_valid(c.conversation_id)) {
		problem(k, "convs: key '%s' does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb)));
		return 0;
	}
	const char *owner = show(c.owner_user_id.p, c.owner_user_id.n, sb, sizeof(sb));
	const char *conv =
	    show(c.conversation_id.p, IM_MIN(c.conversation_id.n, 64u), cb, sizeof(cb));
	if (eng__conv_rec_decode(val->mv_data, val->mv_size, &c) != 0)
		problem(k, "convs (%s, %s): record does not decode", owner, conv);
	int rv = exists(k, ENG__T_USERS, c.owner_user_id.p, c.owner_user_id.n);
	if (rv == 0)
		problem(k, "convs (%s, %s): owner does not exist", owner, conv);
	return rv < 0 ? rv : 0;
}

static int read_seq_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[300];
	struct im_str user, conv;
	if (eng__key_split(key->mv_data, key->mv_size, &user, &conv) != 0 ||
	    val->mv_size != ENG__I64_VAL_LEN)
		problem(k, "read_seqs %s: entry does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb)));
	return 0;
}

static int hidden_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[300];
	struct im_str user, rest, conv;
	uint64_t seq;
	if (eng__key_split(key->mv_data, key->mv_size, &user, &rest) != 0 ||
	    eng__msg_key_parse(rest.p, rest.n, &conv, &seq) != 0 || val->mv_size != 0)
		problem(k, "hidden %s: entry does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb)));
	return 0;
}

/* Counts the members of a group with a cursor of its own. */
static int count_members(struct chk *k, struct im_str group, uint64_t *n)
{
	*n = 0;
	if (k->e->absent[ENG__T_MEMBERS])
		return 0;
	MDB_cursor *c;
	int rv = open_cursor(k, ENG__T_MEMBERS, &c);
	if (rv != 0)
		return rv;
	unsigned char pfx[ENG_ID_MAX + 1];
	size_t pn = eng__key_join(pfx, group, (struct im_str){NULL, 0});
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	while ((rv = eng__prefix_step(k->e, c, pfx, pn, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		(*n)++;
	}
	mdb_cursor_close(c);
	return rv < 0 ? rv : 0;
}

static int group_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[300];
	const char *name = show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb));
	struct eng_group g = {.group_id = {key->mv_data, (uint32_t)key->mv_size}};
	if (!eng__id_valid(g.group_id) || eng__group_rec_decode(val->mv_data, val->mv_size, &g)) {
		problem(k, "groups %s: record does not decode", name);
		return 0;
	}
	uint64_t n;
	int rv = count_members(k, g.group_id, &n);
	if (rv == 0 && n != g.member_count)
		problem(k, "groups %s: member_count %" PRIu32 " but %" PRIu64 " members", name,
			g.member_count, n);
	return rv;
}

static int member_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char gb[300], ub[300];
	struct eng_member m;
	if (eng__key_split(key->mv_data, key->mv_size, &m.group_id, &m.user_id) != 0 ||
	    !eng__id_valid(m.group_id) || !eng__id_valid(m.user_id)) {
		problem(k, "members: key '%s' does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), gb, sizeof(gb)));
		return 0;
	}
	const char *group = show(m.group_id.p, m.group_id.n, gb, sizeof(gb));
	const char *user = show(m.user_id.p, m.user_id.n, ub, sizeof(ub));
	if (eng__member_rec_decode(val->mv_data, val->mv_size, &m) != 0)
		problem(k, "members (%s, %s): record does not decode", group, user);
	int rv = exists(k, ENG__T_GROUPS, m.group_id.p, m.group_id.n);
	if (rv == 0)
		problem(k, "members (%s, %s): group does not exist", group, user);
	if (rv >= 0 && (rv = exists(k, ENG__T_USERS, m.user_id.p, m.user_id.n)) == 0)
		problem(k, "members (%s, %s): user does not exist", group, user);
	unsigned char uk[ENG__PAIR_KEY_MAX];
	if (rv >= 0 &&
	    (rv = exists(k, ENG__T_USER_GROUPS, uk, eng__key_join(uk, m.user_id, m.group_id))) == 0)
		problem(k, "members (%s, %s): no user_groups entry", group, user);
	return rv < 0 ? rv : 0;
}

static int user_group_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char gb[300], ub[300];
	struct im_str user, group;
	if (eng__key_split(key->mv_data, key->mv_size, &user, &group) != 0 ||
	    !eng__id_valid(user) || !eng__id_valid(group) || val->mv_size != ENG__I64_VAL_LEN) {
		problem(k, "user_groups: entry '%s' does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), gb, sizeof(gb)));
		return 0;
	}
	unsigned char mk[ENG__PAIR_KEY_MAX];
	int rv = exists(k, ENG__T_MEMBERS, mk, eng__key_join(mk, group, user));
	if (rv == 0)
		problem(k, "user_groups (%s, %s): not a member",
			show(user.p, user.n, ub, sizeof(ub)),
			show(group.p, group.n, gb, sizeof(gb)));
	return rv < 0 ? rv : 0;
}

/* (7) to (11). */
static int check_msg_side(struct chk *k)
{
	struct conv_run run = {.n = 0};
	int rv = walk(k, ENG__T_MSGS, msg_entry, &run);
	if (rv == 0)
		rv = run_end(k, &run);
	if (rv == 0)
		rv = walk(k, ENG__T_CONV_SEQS, conv_seq_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_MSG_DEDUP, dedup_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_REVOKES, revoke_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_CONVS, conv_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_READ_SEQS, read_seq_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_HIDDEN, hidden_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_GROUPS, group_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_MEMBERS, member_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_USER_GROUPS, user_group_entry, NULL);
	return rv;
}

/* ---------------------------------------------------------------- relations */

/* A row of a pair table (friends, blacks): key decodes, record decodes, both users exist. */
static int user_pair_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	const char *table = arg;
	char ab[300], bb[300];
	struct im_str a, b;
	if (eng__key_split(key->mv_data, key->mv_size, &a, &b) != 0 || !eng__id_valid(a) ||
	    !eng__id_valid(b)) {
		problem(k, "%s: key '%s' does not decode", table,
			show(key->mv_data, IM_MIN(key->mv_size, 64u), ab, sizeof(ab)));
		return 0;
	}
	const char *an = show(a.p, a.n, ab, sizeof(ab)), *bn = show(b.p, b.n, bb, sizeof(bb));
	int dec;
	if (strcmp(table, "friends") == 0) {
		struct eng_friend f;
		dec = eng__friend_rec_decode(val->mv_data, val->mv_size, &f);
	} else if (strcmp(table, "blacks") == 0) {
		struct eng_black x;
		dec = eng__black_rec_decode(val->mv_data, val->mv_size, &x);
	} else {
		struct eng_friend_req q;
		dec = eng__freq_rec_decode(val->mv_data, val->mv_size, &q);
	}
	if (dec != 0)
		problem(k, "%s (%s, %s): record does not decode", table, an, bn);
	unsigned char ik[ENG__PAIR_KEY_MAX];
	int rv;
	/* (15) A friend row has its reverse entry (built at the upgrade to schema 2). */
	if (strcmp(table, "friends") == 0 && k->e->schema >= 2) {
		rv = exists(k, ENG__T_FRIENDS_BY_FRIEND, ik, eng__key_join(ik, b, a));
		if (rv < 0)
			return rv;
		if (rv == 0)
			problem(k, "friends (%s, %s): no friends_by_friend entry", an, bn);
	}
	rv = exists(k, ENG__T_USERS, a.p, a.n);
	if (rv == 0)
		problem(k, "%s (%s, %s): user %s does not exist", table, an, bn, an);
	if (rv >= 0 && (rv = exists(k, ENG__T_USERS, b.p, b.n)) == 0)
		problem(k, "%s (%s, %s): user %s does not exist", table, an, bn, bn);
	if (rv < 0 || strcmp(table, "friend_reqs") != 0)
		return rv < 0 ? rv : 0;
	/* A request has its index entry (to, from). */
	rv = exists(k, ENG__T_FRIEND_REQS_TO, ik, eng__key_join(ik, b, a));
	if (rv == 0)
		problem(k, "friend_reqs (%s, %s): no friend_reqs_to entry", an, bn);
	return rv < 0 ? rv : 0;
}

static int freq_to_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char ab[300], bb[300];
	struct im_str to, from;
	if (eng__key_split(key->mv_data, key->mv_size, &to, &from) != 0 || !eng__id_valid(to) ||
	    !eng__id_valid(from) || val->mv_size != 0) {
		problem(k, "friend_reqs_to: entry '%s' does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), ab, sizeof(ab)));
		return 0;
	}
	unsigned char rk[ENG__PAIR_KEY_MAX];
	int rv = exists(k, ENG__T_FRIEND_REQS, rk, eng__key_join(rk, from, to));
	if (rv == 0)
		problem(k, "friend_reqs_to (%s, %s): no friend request from %s",
			show(to.p, to.n, ab, sizeof(ab)), show(from.p, from.n, bb, sizeof(bb)), bb);
	return rv < 0 ? rv : 0;
}

static int vlog_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[300];
	int kind;
	struct im_str doc;
	struct eng__vlog d;
	if (eng__vlog_key_parse(key->mv_data, key->mv_size, &kind, &doc) != 0 ||
	    eng__vlog_decode(val->mv_data, val->mv_size, &d) != 0) {
		problem(k, "vlogs %s: record does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb)));
		return 0;
	}
	if (d.version < 1)
		problem(k, "vlogs %d %s: version 0", kind, show(doc.p, doc.n, sb, sizeof(sb)));
	return 0;
}

static int ventry_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char sb[300], eb[300];
	int kind;
	struct im_str doc, elem;
	struct eng__ventry en;
	if (eng__ventry_key_parse(key->mv_data, key->mv_size, &kind, &doc, &elem) != 0 ||
	    eng__ventry_decode(val->mv_data, val->mv_size, &en) != 0) {
		problem(k, "vlog_entries %s: entry does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), sb, sizeof(sb)));
		return 0;
	}
	const char *dn = show(doc.p, doc.n, sb, sizeof(sb));
	const char *el = show(elem.p, IM_MIN(elem.n, 64u), eb, sizeof(eb));
	unsigned char vk[ENG__VLOG_KEY_MAX];
	MDB_val dk = {eng__vlog_key(vk, kind, doc), vk}, dv;
	int rc = k->e->absent[ENG__T_VLOGS] ? MDB_NOTFOUND
					    : mdb_get(k->txn, k->e->dbi[ENG__T_VLOGS], &dk, &dv);
	struct eng__vlog d;
	if (rc == MDB_NOTFOUND)
		problem(k, "vlog_entries %d %s '%s': no vlogs document", kind, dn, el);
	else if (rc != 0)
		return eng__from_mdb(k->e, rc, "check: mdb_get vlogs");
	else if (eng__vlog_decode(dv.mv_data, dv.mv_size, &d) == 0 &&
		 (en.version < 1 || en.version > d.version))
		problem(k,
			"vlog_entries %d %s '%s': version %" PRIu64 " but the document's %" PRIu64,
			kind, dn, el, en.version, d.version);
	return 0;
}

/*
 * An entry (a, b) of an index table that must name the row (b, a) of `of`
 * (friends_by_friend -> friends, group_reqs_by_user -> group_reqs).
 */
static int index_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	enum eng__table of = *(const enum eng__table *)arg;
	const char *name = of == ENG__T_FRIENDS ? "friends_by_friend" : "group_reqs_by_user";
	char ab[300], bb[300];
	struct im_str a, b;
	if (eng__key_split(key->mv_data, key->mv_size, &a, &b) != 0 || !eng__id_valid(a) ||
	    !eng__id_valid(b) || val->mv_size != 0) {
		problem(k, "%s: entry '%s' does not decode", name,
			show(key->mv_data, IM_MIN(key->mv_size, 64u), ab, sizeof(ab)));
		return 0;
	}
	unsigned char rk[ENG__PAIR_KEY_MAX];
	int rv = exists(k, of, rk, eng__key_join(rk, b, a));
	if (rv == 0)
		problem(k, "%s (%s, %s): no row (%s, %s)", name, show(a.p, a.n, ab, sizeof(ab)),
			show(b.p, b.n, bb, sizeof(bb)), bb, ab);
	return rv < 0 ? rv : 0;
}

/* (16) A join request: key, record, its group and user, its index entry. */
static int greq_entry(struct chk *k, const MDB_val *key, const MDB_val *val, void *arg)
{
	char ab[300], bb[300];
	struct im_str g, u;
	if (eng__key_split(key->mv_data, key->mv_size, &g, &u) != 0 || !eng__id_valid(g) ||
	    !eng__id_valid(u)) {
		problem(k, "group_reqs: key '%s' does not decode",
			show(key->mv_data, IM_MIN(key->mv_size, 64u), ab, sizeof(ab)));
		return 0;
	}
	const char *gn = show(g.p, g.n, ab, sizeof(ab)), *un = show(u.p, u.n, bb, sizeof(bb));
	struct eng_group_req q;
	if (eng__greq_rec_decode(val->mv_data, val->mv_size, &q) != 0)
		problem(k, "group_reqs (%s, %s): record does not decode", gn, un);
	int rv = exists(k, ENG__T_GROUPS, g.p, g.n);
	if (rv == 0)
		problem(k, "group_reqs (%s, %s): group %s does not exist", gn, un, gn);
	if (rv >= 0 && (rv = exists(k, ENG__T_USERS, u.p, u.n)) == 0)
		problem(k, "group_reqs (%s, %s): user %s does not exist", gn, un, un);
	unsigned char ik[ENG__PAIR_KEY_MAX];
	if (rv >= 0 &&
	    (rv = exists(k, ENG__T_GROUP_REQS_BY_USER, ik, eng__key_join(ik, u, g))) == 0)
		problem(k, "group_reqs (%s, %s): no group_reqs_by_user entry", gn, un);
	return rv < 0 ? rv : 0;
}

/* (12) to (16). */
static int check_rel_side(struct chk *k)
{
	static const enum eng__table friends = ENG__T_FRIENDS, greqs = ENG__T_GROUP_REQS;
	int rv = walk(k, ENG__T_FRIENDS, user_pair_entry, "friends");
	if (rv == 0)
		rv = walk(k, ENG__T_BLACKS, user_pair_entry, "blacks");
	if (rv == 0)
		rv = walk(k, ENG__T_FRIEND_REQS, user_pair_entry, "friend_reqs");
	if (rv == 0)
		rv = walk(k, ENG__T_FRIEND_REQS_TO, freq_to_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_VLOGS, vlog_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_VLOG_ENTRIES, ventry_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_FRIENDS_BY_FRIEND, index_entry, (void *)&friends);
	if (rv == 0)
		rv = walk(k, ENG__T_GROUP_REQS, greq_entry, NULL);
	if (rv == 0)
		rv = walk(k, ENG__T_GROUP_REQS_BY_USER, index_entry, (void *)&greqs);
	return rv;
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
	if (rv == 0)
		rv = check_msg_side(&k);
	if (rv == 0)
		rv = check_rel_side(&k);
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
