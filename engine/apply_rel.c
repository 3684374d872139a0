/* apply_rel.c - the deterministic effect of the relation commands and the version-log writer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "engine_int.h"

/*
 * Same contract as apply.c: each handler runs inside the nested txn of one
 * command and returns 0, ENG__REJECT (res filled, every effect dropped) or a
 * negative storage error; it reads nothing but the txn and the command.
 *
 * Invariants kept here (docs/storage.md, openim-protocol.md §7.1, §8.1):
 *
 *  1. friend_reqs and friend_reqs_to hold the same (from, to) pairs: they are
 *     written together, and requests are never deleted.
 *  2. friends, blacks and friend_reqs rows name registered users only.
 *  3. Every change of a friend row writes the owner's FRIEND version log and
 *     every change of a blacklist row the owner's BLACK log, in the same txn;
 *     a command bumps each document it touches once (eng__vlog_write).
 *  4. A version-log entry's version is at most its document's version, and
 *     a document's version only rises.
 *  5. friends_by_friend holds (friend, owner) exactly for the friends rows
 *     (owner, friend): written and deleted together (schema 2; a schema 1
 *     environment gets it built at its first read-write open).
 *
 * A request's life:
 *
 *          apply               respond 1 / -1
 *   (none) ------> PENDING(0) ---------------> ACCEPTED(1) / REFUSED(-1)
 *                      ^                                |
 *                      +------------ apply -------------+
 */

#define reject	eng__reject
#define ID_FMT	ENG__ID_FMT
#define ID_ARG	ENG__ID_ARG
#define put	eng__put
#define get	eng__get
#define scratch eng__scratch
#define del	eng__del

/* What the helpers below return besides 0, ENG__REJECT (1) and negative errors. */
enum { ABSENT = 2 };

/* 0 if the user is registered, ENG__REJECT (IM_ENOTFOUND) if not, or < 0. */
static int user_must_exist(struct eng *e, MDB_txn *txn, struct im_str user, struct eng_result *res)
{
	MDB_val val;
	int rv = get(e, txn, ENG__T_USERS, user.p, user.n, &val, "mdb_get users");
	if (rv == ABSENT)
		return reject(res, IM_ENOTFOUND, "userID " ID_FMT " not found", ID_ARG(user));
	return rv;
}

/* The rule every pair of ids checks first: both valid and different. */
static int pair_valid(struct im_str a, struct im_str b, struct eng_result *res)
{
	if (!eng__id_valid(a) || !eng__id_valid(b))
		return reject(res, IM_EINVAL, "empty userID");
	if (im_str_eq(a, b))
		return reject(res, IM_EINVAL, "userID " ID_FMT " names itself", ID_ARG(a));
	return 0;
}

/* ---------------------------------------------------------------- version logs */

int eng__vlog_write(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms, int kind,
		    struct im_str doc, struct im_str elem, int state, struct eng_result *res)
{
	if (!eng__vlog_kind_valid(kind) || !eng__id_valid(doc) || elem.n > ENG_CONV_ID_MAX ||
	    (elem.n && memchr(elem.p, 0, elem.n) != NULL) || state < ENG_VLOG_INSERT ||
	    state > ENG_VLOG_UPDATE)
		return reject(res, IM_EINVAL, "version log %d " ID_FMT ": bad write", kind,
			      ID_ARG(doc));
	unsigned char k[ENG__VENTRY_KEY_MAX], v[ENG__VLOG_LEN];
	size_t kn = eng__vlog_key(k, kind, doc);
	MDB_val val;
	struct eng__vlog d;
	bool changed = true;
	int rv = get(e, txn, ENG__T_VLOGS, k, kn, &val, "mdb_get vlogs");
	if (rv < 0)
		return rv;
	if (rv == ABSENT) {
		/* Created at its first write: version 1, a versionID of this index. */
		eng__vlog_id(d.version_id, kind, doc, index);
		d.version = 1;
		d.deleted = 0;
		d.bumped_at = index;
	} else if (eng__vlog_decode(val.mv_data, val.mv_size, &d) != 0) {
		return reject(res, IM_ECORRUPT,
			      "vlogs %d " ID_FMT ": stored record does not decode", kind,
			      ID_ARG(doc));
	} else if (d.bumped_at != index) {
		/* The first write of this command: one bump, whatever it writes. */
		d.version++;
		d.bumped_at = index;
	} else {
		changed = false; /* bumped by this command already */
	}
	if (changed) {
		eng__vlog_encode(v, &d);
		rv = put(e, txn, ENG__T_VLOGS, k, kn, v, ENG__VLOG_LEN, 0, "mdb_put vlogs");
		if (rv != 0)
			return rv;
	}
	/* The element's latest entry replaces its previous one. */
	unsigned char ev[ENG__VENTRY_LEN];
	struct eng__ventry en = {state, d.version, now_ms};
	eng__ventry_encode(ev, &en);
	kn = eng__ventry_key(k, kind, doc, elem);
	return put(e, txn, ENG__T_VLOG_ENTRIES, k, kn, ev, sizeof(ev), 0, "mdb_put vlog_entries");
}

/* ---------------------------------------------------------------- rows */

/* owner's row of friend into *out (views may point into the map): 0, ABSENT, REJECT, < 0. */
static int friend_get(struct eng *e, MDB_txn *txn, struct im_str owner, struct im_str friend_id,
		      struct eng_friend *out, struct eng_result *res)
{
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val val;
	int rv = get(e, txn, ENG__T_FRIENDS, k, eng__key_join(k, owner, friend_id), &val,
		     "mdb_get friends");
	if (rv != 0)
		return rv;
	out->owner_user_id = owner;
	out->friend_user_id = friend_id;
	if (eng__friend_rec_decode(val.mv_data, val.mv_size, out) != 0)
		return reject(res, IM_ECORRUPT,
			      "friends (" ID_FMT ", " ID_FMT "): stored record does not decode",
			      ID_ARG(owner), ID_ARG(friend_id));
	return 0;
}

/*
 * Encodes f into scratch first (its views may point into the map), then
 * stores it and its friends_by_friend entry (invariant 5).
 */
static int friend_put(struct eng *e, MDB_txn *txn, const struct eng_friend *f)
{
	size_t n = eng__friend_rec_size(f);
	unsigned char *v = scratch(e, n);
	if (v == NULL)
		return -ENOMEM;
	eng__friend_rec_encode(v, f);
	unsigned char k[ENG__PAIR_KEY_MAX];
	int rv =
	    put(e, txn, ENG__T_FRIENDS, k, eng__key_join(k, f->owner_user_id, f->friend_user_id), v,
		n, 0, "mdb_put friends");
	if (rv == 0)
		rv = put(e, txn, ENG__T_FRIENDS_BY_FRIEND, k,
			 eng__key_join(k, f->friend_user_id, f->owner_user_id), "", 0, 0,
			 "mdb_put friends_by_friend");
	return rv;
}

int eng__friends_index_build(struct eng *e, MDB_txn *txn)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, e->dbi[ENG__T_FRIENDS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open friends");
	MDB_val key, val;
	int rv = 0;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct im_str owner, friend_id;
		if (eng__key_split(key.mv_data, key.mv_size, &owner, &friend_id) != 0 ||
		    owner.n > ENG_ID_MAX || friend_id.n > ENG_ID_MAX)
			continue; /* eng_check reports it */
		unsigned char k[ENG__PAIR_KEY_MAX];
		rv = put(e, txn, ENG__T_FRIENDS_BY_FRIEND, k, eng__key_join(k, friend_id, owner),
			 "", 0, 0, "mdb_put friends_by_friend");
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = eng__from_mdb(e, rc, "mdb_cursor_get friends");
	return rv;
}

int eng__friend_profile_changed(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
				struct im_str user, struct eng_result *res)
{
	unsigned char pfx[ENG_ID_MAX + 1];
	size_t pn = eng__key_join(pfx, user, (struct im_str){NULL, 0});
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, e->dbi[ENG__T_FRIENDS_BY_FRIEND], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open friends_by_friend");
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rv = 0, st;
	/* The writes go to other tables, so the cursor stays valid. */
	while (rv == 0 && (st = eng__prefix_step(e, c, pfx, pn, &key, &val, op)) <= 0) {
		if (st < 0) {
			rv = st;
			break;
		}
		op = MDB_NEXT;
		struct im_str owner = {(const char *)key.mv_data + pn,
				       (uint32_t)(key.mv_size - pn)};
		if (!eng__id_valid(owner))
			continue; /* eng_check reports it */
		char ob[ENG_ID_MAX];
		memcpy(ob, owner.p, owner.n);
		owner.p = ob;
		rv = eng__vlog_write(e, txn, index, now_ms, ENG_VLOG_FRIEND, owner, user,
				     ENG_VLOG_UPDATE, res);
	}
	mdb_cursor_close(c);
	return rv;
}

/*
 * Makes owner a friend of friend_id unless it is one already (an existing
 * row is left as it is, like OpenIM's BecomeFriends), with the insert in
 * owner's FRIEND log.
 */
static int friend_ensure(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
			 struct im_str owner, struct im_str friend_id, int32_t source,
			 struct im_str op, struct eng_result *res)
{
	struct eng_friend f;
	int rv = friend_get(e, txn, owner, friend_id, &f, res);
	if (rv != ABSENT)
		return rv;
	f = (struct eng_friend){.owner_user_id = owner,
				.friend_user_id = friend_id,
				.create_time = now_ms,
				.add_source = source,
				.operator_user_id = op};
	rv = friend_put(e, txn, &f);
	if (rv == 0)
		rv = eng__vlog_write(e, txn, index, now_ms, ENG_VLOG_FRIEND, owner, friend_id,
				     ENG_VLOG_INSERT, res);
	return rv;
}

/* The request (from, to) into *out (views may point into the map): 0, ABSENT, REJECT, < 0. */
static int freq_get(struct eng *e, MDB_txn *txn, struct im_str from, struct im_str to,
		    struct eng_friend_req *out, struct eng_result *res)
{
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val val;
	int rv = get(e, txn, ENG__T_FRIEND_REQS, k, eng__key_join(k, from, to), &val,
		     "mdb_get friend_reqs");
	if (rv != 0)
		return rv;
	out->from_user_id = from;
	out->to_user_id = to;
	if (eng__freq_rec_decode(val.mv_data, val.mv_size, out) != 0)
		return reject(res, IM_ECORRUPT,
			      "friend_reqs (" ID_FMT ", " ID_FMT "): stored record does not decode",
			      ID_ARG(from), ID_ARG(to));
	return 0;
}

/* Stores q and its friend_reqs_to entry (invariant 1). */
static int freq_put(struct eng *e, MDB_txn *txn, const struct eng_friend_req *q)
{
	size_t n = eng__freq_rec_size(q);
	unsigned char *v = scratch(e, n);
	if (v == NULL)
		return -ENOMEM;
	eng__freq_rec_encode(v, q);
	unsigned char k[ENG__PAIR_KEY_MAX];
	int rv =
	    put(e, txn, ENG__T_FRIEND_REQS, k, eng__key_join(k, q->from_user_id, q->to_user_id), v,
		n, 0, "mdb_put friend_reqs");
	if (rv == 0)
		rv = put(e, txn, ENG__T_FRIEND_REQS_TO, k,
			 eng__key_join(k, q->to_user_id, q->from_user_id), "", 0, 0,
			 "mdb_put friend_reqs_to");
	return rv;
}

/* ---------------------------------------------------------------- friends */

/* FRIEND_APPLY (add_friend): a new or reset pending request. */
static int friend_apply(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd,
			struct eng_result *res)
{
	struct im_str from = cmd->r.friend_apply.from_user_id, to = cmd->r.friend_apply.to_user_id;
	int rv = pair_valid(from, to, res);
	if (rv == 0)
		rv = user_must_exist(e, txn, from, res);
	if (rv == 0)
		rv = user_must_exist(e, txn, to, res);
	if (rv != 0)
		return rv;
	/* Friends in both directions already: 1304. */
	struct eng_friend f;
	int r1 = friend_get(e, txn, from, to, &f, res);
	if (r1 < 0 || r1 == ENG__REJECT)
		return r1;
	int r2 = friend_get(e, txn, to, from, &f, res);
	if (r2 < 0 || r2 == ENG__REJECT)
		return r2;
	if (r1 == 0 && r2 == 0)
		return reject(res, IM_EEXIST, ID_FMT " and " ID_FMT " are friends already",
			      ID_ARG(from), ID_ARG(to));
	/*
	 * Re-applying resets the request to pending with the new message, ex and
	 * time and clears handle_msg; like OpenIM it keeps the previous handler
	 * and handle time.
	 */
	struct eng_friend_req q;
	rv = freq_get(e, txn, from, to, &q, res);
	if (rv == ABSENT)
		q = (struct eng_friend_req){.from_user_id = from, .to_user_id = to};
	else if (rv != 0)
		return rv;
	q.handle_result = 0;
	q.req_msg = cmd->r.friend_apply.req_msg;
	q.ex = cmd->r.friend_apply.ex;
	q.create_time = cmd->now_ms;
	q.handle_msg = (struct im_str){NULL, 0};
	return freq_put(e, txn, &q);
}

/* FRIEND_RESPOND (add_friend_response): a pending request is accepted or refused. */
static int friend_respond(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			  struct eng_result *res)
{
	struct im_str from = cmd->r.friend_respond.from_user_id;
	struct im_str to = cmd->r.friend_respond.to_user_id;
	int32_t hr = cmd->r.friend_respond.handle_result;
	int rv = pair_valid(from, to, res);
	if (rv != 0)
		return rv;
	if (hr != 1 && hr != -1)
		return reject(res, IM_EINVAL, "handleResult %" PRId32 " is neither 1 nor -1", hr);
	struct eng_friend_req q;
	rv = freq_get(e, txn, from, to, &q, res);
	if (rv == ABSENT)
		return reject(res, IM_ENOTFOUND, "no friend request from " ID_FMT " to " ID_FMT,
			      ID_ARG(from), ID_ARG(to));
	if (rv != 0)
		return rv;
	/* Handled already (1305 at the API edge). */
	if (q.handle_result != 0)
		return reject(res, IM_EEXIST,
			      "friend request from " ID_FMT " to " ID_FMT
			      " handled already (%" PRId32 ")",
			      ID_ARG(from), ID_ARG(to), q.handle_result);
	q.handle_result = hr;
	q.handler_user_id = to;
	q.handle_msg = cmd->r.friend_respond.handle_msg;
	q.handle_time = cmd->now_ms;
	rv = freq_put(e, txn, &q);
	if (rv != 0 || hr != 1)
		return rv;
	/* Agreed: a pending reverse request is accepted too (§8.1). */
	rv = freq_get(e, txn, to, from, &q, res);
	if (rv == 0 && q.handle_result == 0) {
		q.handle_result = 1;
		q.handler_user_id = to;
		q.handle_time = cmd->now_ms;
		rv = freq_put(e, txn, &q);
	}
	if (rv < 0 || rv == ENG__REJECT)
		return rv;
	/* Rows in both directions, by application, the responder operating. */
	rv = friend_ensure(e, txn, index, cmd->now_ms, from, to, ENG_FRIEND_BY_APPLY, to, res);
	if (rv == 0)
		rv = friend_ensure(e, txn, index, cmd->now_ms, to, from, ENG_FRIEND_BY_APPLY, to,
				   res);
	return rv;
}

/* FRIEND_DELETE (delete_friend): owner's row only; the friend still lists the owner. */
static int friend_delete(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			 struct eng_result *res)
{
	struct im_str owner = cmd->r.friend_delete.owner_user_id;
	struct im_str friend_id = cmd->r.friend_delete.friend_user_id;
	int rv = pair_valid(owner, friend_id, res);
	if (rv != 0)
		return rv;
	unsigned char k[ENG__PAIR_KEY_MAX];
	rv = del(e, txn, ENG__T_FRIENDS, k, eng__key_join(k, owner, friend_id), "mdb_del friends");
	if (rv == ABSENT)
		return reject(res, IM_ENOTFOUND, ID_FMT " is not a friend of " ID_FMT,
			      ID_ARG(friend_id), ID_ARG(owner));
	if (rv == 0)
		rv = del(e, txn, ENG__T_FRIENDS_BY_FRIEND, k, eng__key_join(k, friend_id, owner),
			 "mdb_del friends_by_friend");
	if (rv == ABSENT)
		rv = 0; /* an index entry missing already: eng_check reports that */
	if (rv != 0)
		return rv;
	return eng__vlog_write(e, txn, index, cmd->now_ms, ENG_VLOG_FRIEND, owner, friend_id,
			       ENG_VLOG_DELETE, res);
}

#define FRIEND_MASK_ALL (ENG_FRIEND_REMARK | ENG_FRIEND_EX | ENG_FRIEND_IS_PINNED)

/*
 * FRIEND_UPDATE (update_friends, set_friend_remark): every named friend must
 * be one; then the masked fields of each row, an update in the owner's log
 * for each, and with is_pinned in the mask the sort marker too (OpenIM writes
 * it whenever the request sets isPinned).  Mask 0 changes nothing.
 */
static int friend_update(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			 struct eng_result *res)
{
	struct im_str owner = cmd->r.friend_update.owner_user_id;
	uint32_t mask = cmd->r.friend_update.mask, n = cmd->r.friend_update.n_friends;
	if (!eng__id_valid(owner))
		return reject(res, IM_EINVAL, "empty userID");
	if (n == 0)
		return reject(res, IM_EINVAL, "no friends to update");
	if (mask & ~(uint32_t)FRIEND_MASK_ALL)
		return reject(res, IM_EINVAL, "unknown field mask 0x%" PRIx32, mask);
	for (uint32_t i = 0; i < n; i++) {
		struct im_str fid = cmd->r.friend_update.friend_user_ids[i];
		if (!eng__id_valid(fid))
			return reject(res, IM_EINVAL, "friend %" PRIu32 ": empty userID", i);
		struct eng_friend f;
		int rv = friend_get(e, txn, owner, fid, &f, res);
		if (rv == ABSENT)
			return reject(res, IM_ENOTFOUND, ID_FMT " is not a friend of " ID_FMT,
				      ID_ARG(fid), ID_ARG(owner));
		if (rv != 0)
			return rv;
		if (mask == 0)
			continue;
		if (mask & ENG_FRIEND_REMARK)
			f.remark = cmd->r.friend_update.remark;
		if (mask & ENG_FRIEND_EX)
			f.ex = cmd->r.friend_update.ex;
		if (mask & ENG_FRIEND_IS_PINNED)
			f.is_pinned = cmd->r.friend_update.is_pinned;
		rv = friend_put(e, txn, &f);
		if (rv == 0)
			rv = eng__vlog_write(e, txn, index, cmd->now_ms, ENG_VLOG_FRIEND, owner,
					     fid, ENG_VLOG_UPDATE, res);
		if (rv != 0)
			return rv;
	}
	if (!(mask & ENG_FRIEND_IS_PINNED))
		return 0;
	return eng__vlog_write(e, txn, index, cmd->now_ms, ENG_VLOG_FRIEND, owner,
			       IM_STR_LIT(ENG_VLOG_SORT_ID), ENG_VLOG_UPDATE, res);
}

/* FRIEND_IMPORT (import_friend): mutual rows, imported; existing rows stay as they are. */
static int friend_import(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			 struct eng_result *res)
{
	struct im_str owner = cmd->r.friend_import.owner_user_id;
	struct im_str op = cmd->r.friend_import.operator_user_id;
	uint32_t n = cmd->r.friend_import.n_friends;
	if (!eng__id_valid(owner))
		return reject(res, IM_EINVAL, "empty userID");
	if (n == 0)
		return reject(res, IM_EINVAL, "no friends to import");
	int rv = user_must_exist(e, txn, owner, res);
	if (rv != 0)
		return rv;
	if (op.n == 0)
		op = owner;
	for (uint32_t i = 0; i < n; i++) {
		struct im_str fid = cmd->r.friend_import.friend_user_ids[i];
		rv = pair_valid(owner, fid, res);
		if (rv == 0)
			rv = user_must_exist(e, txn, fid, res);
		if (rv == 0)
			rv = friend_ensure(e, txn, index, cmd->now_ms, owner, fid,
					   ENG_FRIEND_BY_IMPORT, op, res);
		if (rv == 0)
			rv = friend_ensure(e, txn, index, cmd->now_ms, fid, owner,
					   ENG_FRIEND_BY_IMPORT, op, res);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* ---------------------------------------------------------------- blacklists */

/* BLACK_ADD (add_black): a new row and an insert in the owner's BLACK log. */
static int black_add(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		     struct eng_result *res)
{
	struct im_str owner = cmd->r.black_add.owner_user_id;
	struct im_str black = cmd->r.black_add.black_user_id;
	int rv = pair_valid(owner, black, res);
	if (rv == 0)
		rv = user_must_exist(e, txn, owner, res);
	if (rv == 0)
		rv = user_must_exist(e, txn, black, res);
	if (rv != 0)
		return rv;
	struct eng_black b = {.owner_user_id = owner,
			      .block_user_id = black,
			      .create_time = cmd->now_ms,
			      .operator_user_id = cmd->r.black_add.operator_user_id,
			      .ex = cmd->r.black_add.ex};
	if (b.operator_user_id.n == 0)
		b.operator_user_id = owner;
	size_t vn = eng__black_rec_size(&b);
	unsigned char *v = scratch(e, vn);
	if (v == NULL)
		return -ENOMEM;
	eng__black_rec_encode(v, &b);
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val key = {eng__key_join(k, owner, black), k}, val = {vn, v};
	int rc = mdb_put(txn, e->dbi[ENG__T_BLACKS], &key, &val, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return reject(res, IM_EEXIST, ID_FMT " is in the blacklist of " ID_FMT " already",
			      ID_ARG(black), ID_ARG(owner));
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_put blacks");
	return eng__vlog_write(e, txn, index, cmd->now_ms, ENG_VLOG_BLACK, owner, black,
			       ENG_VLOG_INSERT, res);
}

/* BLACK_REMOVE (remove_black). */
static int black_remove(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			struct eng_result *res)
{
	struct im_str owner = cmd->r.black_remove.owner_user_id;
	struct im_str black = cmd->r.black_remove.black_user_id;
	int rv = pair_valid(owner, black, res);
	if (rv != 0)
		return rv;
	unsigned char k[ENG__PAIR_KEY_MAX];
	rv = del(e, txn, ENG__T_BLACKS, k, eng__key_join(k, owner, black), "mdb_del blacks");
	if (rv == ABSENT)
		return reject(res, IM_ENOTFOUND, ID_FMT " is not in the blacklist of " ID_FMT,
			      ID_ARG(black), ID_ARG(owner));
	if (rv != 0)
		return rv;
	return eng__vlog_write(e, txn, index, cmd->now_ms, ENG_VLOG_BLACK, owner, black,
			       ENG_VLOG_DELETE, res);
}

int eng__apply_rel_cmd(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		       struct eng_result *res)
{
	switch (cmd->type) {
	case ENG_CMD_FRIEND_APPLY:
		return friend_apply(e, txn, cmd, res);
	case ENG_CMD_FRIEND_RESPOND:
		return friend_respond(e, txn, index, cmd, res);
	case ENG_CMD_FRIEND_DELETE:
		return friend_delete(e, txn, index, cmd, res);
	case ENG_CMD_FRIEND_UPDATE:
		return friend_update(e, txn, index, cmd, res);
	case ENG_CMD_FRIEND_IMPORT:
		return friend_import(e, txn, index, cmd, res);
	case ENG_CMD_BLACK_ADD:
		return black_add(e, txn, index, cmd, res);
	case ENG_CMD_BLACK_REMOVE:
		return black_remove(e, txn, index, cmd, res);
	default:
		return reject(res, IM_ECORRUPT, "unknown command type %d", cmd->type);
	}
}
