/* read.c - the reusable read snapshot and the readers of users, tokens and user commands. */
#include <errno.h>
#include <inttypes.h>

#include "engine_int.h"

/*
 * An engine has one read txn, created on first use and then only reset and
 * renewed, so a read costs no allocation and no reader-slot lookup.  The
 * `active` flag is what map growth checks (engine.c, invariant 4): the map
 * is never remapped under an active snapshot.
 */

int eng_read_begin(struct eng *e, struct eng_rtxn **out)
{
	*out = NULL;
	if (e->rd.active)
		return eng__errf(e, IM_EINVAL, "read_begin: a read txn is already open");
	if (e->rd.txn != NULL) {
		int rc = mdb_txn_renew(e->rd.txn);
		if (rc == 0)
			goto done;
		/* Start over with a new handle (e.g. the map was resized). */
		mdb_txn_abort(e->rd.txn);
		e->rd.txn = NULL;
	}
	int rv = eng__txn_begin(e, MDB_RDONLY, &e->rd.txn);
	if (rv != 0) {
		eng__wrap(e, "read_begin");
		return rv;
	}
done:
	e->rd.e = e;
	e->rd.active = true;
	*out = &e->rd;
	return 0;
}

void eng_read_end(struct eng_rtxn *r)
{
	if (r == NULL || !r->active)
		return;
	mdb_txn_reset(r->txn);
	r->active = false;
}

int eng_user_get(struct eng_rtxn *r, struct im_str user_id, struct eng_user *out)
{
	struct eng *e = r->e;
	if (!eng__id_valid(user_id))
		return IM_ENOTFOUND; /* no such key can be stored */
	MDB_val key = {user_id.n, (void *)user_id.p}, val;
	int rc = mdb_get(r->txn, e->dbi[ENG__T_USERS], &key, &val);
	if (rc == MDB_NOTFOUND)
		return IM_ENOTFOUND;
	if (rc != 0)
		return eng__from_mdb(e, rc, "user_get: mdb_get");
	/* The id view points into the map like the other fields. */
	struct im_str id = {key.mv_data, (uint32_t)key.mv_size};
	int rv = eng__user_rec_decode(val.mv_data, val.mv_size, id, out, NULL);
	if (rv != 0)
		return eng__errf(e, IM_ECORRUPT, "user_get %.*s: record does not decode",
				 (int)IM_MIN(user_id.n, 64u), user_id.p);
	return 0;
}

/* The count lives in meta; a damaged counter reads as 0 (eng_check reports it). */
uint64_t eng_user_count(struct eng_rtxn *r)
{
	uint64_t n = 0;
	if (eng__meta_get_u64(r->e, r->txn, ENG__META_USERS, &n) != 0)
		return 0;
	return n;
}

/*
 * Users are never deleted, so registration sequences are dense from 1 (and
 * eng_check verifies it): the user at `offset` has sequence offset + 1, and
 * paging is one seek, not a walk over the skipped users.
 */
int eng_user_scan(struct eng_rtxn *r, uint64_t offset, uint64_t limit, eng_user_cb cb, void *arg)
{
	struct eng *e = r->e;
	MDB_cursor *c;
	int rc = mdb_cursor_open(r->txn, e->dbi[ENG__T_USER_ORDER], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "user_scan: mdb_cursor_open");
	unsigned char sk[8];
	/* Sequence offset + 1 is the first wanted user; saturate at the top. */
	im_put_be64(sk, offset == UINT64_MAX ? offset : offset + 1);
	MDB_val key = {8, sk}, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	uint64_t seen = 0;
	int rv = 0;
	/* Each order entry names a user; the record is a point lookup. */
	while (limit == 0 || seen < limit) {
		rc = mdb_cursor_get(c, &key, &val, op);
		op = MDB_NEXT;
		if (rc == MDB_NOTFOUND)
			break;
		if (rc != 0) {
			rv = eng__from_mdb(e, rc, "user_scan: mdb_cursor_get");
			break;
		}
		MDB_val ukey = val, uval;
		rc = mdb_get(r->txn, e->dbi[ENG__T_USERS], &ukey, &uval);
		if (rc != 0) {
			rv = rc == MDB_NOTFOUND
				 ? eng__errf(e, IM_ECORRUPT, "user_scan: order entry without user")
				 : eng__from_mdb(e, rc, "user_scan: mdb_get");
			break;
		}
		struct eng_user u;
		struct im_str id = {ukey.mv_data, (uint32_t)ukey.mv_size};
		if (eng__user_rec_decode(uval.mv_data, uval.mv_size, id, &u, NULL) != 0) {
			rv = eng__errf(e, IM_ECORRUPT, "user_scan: record does not decode");
			break;
		}
		seen++;
		rv = cb(&u, arg);
		if (rv != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv;
}

/* Shared by the token and user command readers here and the token handlers in apply.c. */
int eng__prefix_step(struct eng *e, MDB_cursor *c, const void *pfx, size_t pn, MDB_val *key,
		     MDB_val *val, MDB_cursor_op op)
{
	if (op == MDB_SET_RANGE)
		*key = (MDB_val){pn, (void *)pfx};
	int rc = mdb_cursor_get(c, key, val, op);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_get");
	return key->mv_size >= pn && memcmp(key->mv_data, pfx, pn) == 0 ? 0 : 1;
}

int eng_token_status(struct eng_rtxn *r, struct im_str user_id, int32_t platform_id,
		     struct im_str token, int *status, bool *any_for_platform)
{
	struct eng *e = r->e;
	if (any_for_platform != NULL)
		*any_for_platform = false;
	if (!eng__id_valid(user_id) || platform_id < 0 || platform_id > 255 ||
	    token.n > ENG_TOKEN_MAX)
		return IM_ENOTFOUND;
	unsigned char k[ENG__TOKEN_KEY_MAX];
	size_t pn = eng__token_key(k, user_id, platform_id, (struct im_str){NULL, 0});
	MDB_cursor *c;
	int rc = mdb_cursor_open(r->txn, e->dbi[ENG__T_TOKENS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "token_status: mdb_cursor_open");
	MDB_val key, val;
	int rv = 0;
	/* First: is anything stored under (user, platform)?  One seek. */
	if (any_for_platform != NULL) {
		rv = eng__prefix_step(e, c, k, pn, &key, &val, MDB_SET_RANGE);
		if (rv < 0)
			goto out;
		*any_for_platform = rv == 0;
	}
	/* Then the exact token, if one was asked for. */
	rv = IM_ENOTFOUND;
	if (token.n == 0)
		goto out;
	size_t kn = eng__token_key(k, user_id, platform_id, token);
	key = (MDB_val){kn, k};
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND)
		goto out;
	if (rc != 0) {
		rv = eng__from_mdb(e, rc, "token_status: mdb_cursor_get");
		goto out;
	}
	struct eng__token_val tv;
	if (eng__token_val_decode(val.mv_data, val.mv_size, &tv) != 0) {
		rv = eng__errf(e, IM_ECORRUPT, "token_status: value does not decode");
		goto out;
	}
	*status = tv.status;
	rv = 0;
out:
	mdb_cursor_close(c);
	return rv;
}

int eng_token_scan(struct eng_rtxn *r, struct im_str user_id, int32_t platform_id, eng_token_cb cb,
		   void *arg)
{
	struct eng *e = r->e;
	/* Such ids and platforms cannot be stored: nothing to report. */
	if (!eng__id_valid(user_id) || platform_id > 255)
		return 0;
	unsigned char pfx[ENG__TOKEN_KEY_MAX];
	size_t pn = eng__token_key(pfx, user_id, platform_id < 0 ? -1 : platform_id,
				   (struct im_str){NULL, 0});
	MDB_cursor *c;
	int rc = mdb_cursor_open(r->txn, e->dbi[ENG__T_TOKENS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "token_scan: mdb_cursor_open");
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rv;
	for (;;) {
		int st = eng__prefix_step(e, c, pfx, pn, &key, &val, op);
		if (st != 0) {
			rv = st < 0 ? st : 0;
			break;
		}
		op = MDB_NEXT;
		struct eng_token t;
		struct eng__token_val tv;
		if (eng__token_key_parse(key.mv_data, key.mv_size, &t.user_id, &t.platform_id,
					 &t.token) != 0 ||
		    eng__token_val_decode(val.mv_data, val.mv_size, &tv) != 0) {
			rv = eng__errf(e, IM_ECORRUPT, "token_scan: record does not decode");
			break;
		}
		/* The views point into the map, valid until eng_read_end(). */
		t.status = tv.status;
		t.expire_at = tv.expire_at;
		rv = cb(&t, arg);
		if (rv != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv;
}

int eng_user_cmd_scan(struct eng_rtxn *r, struct im_str user_id, int32_t type, eng_user_cmd_cb cb,
		      void *arg)
{
	struct eng *e = r->e;
	/* No such id can be stored, and an old environment may lack the table. */
	if (!eng__id_valid(user_id) || e->absent[ENG__T_USER_CMDS])
		return 0;
	unsigned char pfx[ENG__UCMD_KEY_MAX];
	size_t pn = type >= 0 ? eng__ucmd_key(pfx, user_id, type, (struct im_str){NULL, 0})
			      : eng__ucmd_prefix(pfx, user_id);
	MDB_cursor *c;
	int rc = mdb_cursor_open(r->txn, e->dbi[ENG__T_USER_CMDS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "user_cmd_scan: mdb_cursor_open");
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rv;
	/* Key order is (type as u32, uuid): the order the header promises. */
	for (;;) {
		int st = eng__prefix_step(e, c, pfx, pn, &key, &val, op);
		if (st != 0) {
			rv = st < 0 ? st : 0;
			break;
		}
		op = MDB_NEXT;
		struct eng_user_cmd u;
		if (eng__ucmd_key_parse(key.mv_data, key.mv_size, &u) != 0 ||
		    eng__ucmd_val_decode(val.mv_data, val.mv_size, &u) != 0) {
			rv = eng__errf(e, IM_ECORRUPT, "user_cmd_scan: record does not decode");
			break;
		}
		/* The views point into the map, valid until eng_read_end(). */
		rv = cb(&u, arg);
		if (rv != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv;
}

/* ---------------------------------------------------------------- pair tables (engine_int.h) */

int eng__rcursor(struct eng_rtxn *r, enum eng__table t, MDB_cursor **c, const char *what)
{
	*c = NULL;
	if (r->e->absent[t])
		return 0;
	int rc = mdb_cursor_open(r->txn, r->e->dbi[t], c);
	return rc ? eng__from_mdb(r->e, rc, what) : 0;
}

int eng__rlookup(struct eng_rtxn *r, enum eng__table t, MDB_val *key, MDB_val *val,
		 const char *what)
{
	MDB_cursor *c;
	int rv = eng__rcursor(r, t, &c, what);
	if (rv != 0)
		return rv;
	if (c == NULL)
		return IM_ENOTFOUND;
	int rc = mdb_cursor_get(c, key, val, MDB_SET_KEY);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return IM_ENOTFOUND;
	return rc ? eng__from_mdb(r->e, rc, what) : 0;
}

int eng__pair_get(struct eng_rtxn *r, enum eng__table t, struct im_str a, struct im_str b,
		  eng__pair_decode_fn fn, void *out, const char *what)
{
	if (!eng__id_valid(a) || !eng__id_valid(b))
		return IM_ENOTFOUND;
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val key = {eng__key_join(k, a, b), k}, val;
	int rv = eng__rlookup(r, t, &key, &val, what);
	if (rv != 0)
		return rv;
	struct im_str ka, kb;
	if (eng__key_split(key.mv_data, key.mv_size, &ka, &kb) != 0 || fn(ka, kb, &val, out) != 0)
		return eng__errf(r->e, IM_ECORRUPT, "%s %.*s: record does not decode", what,
				 ENG__ID_ARG(b));
	return 0;
}

int eng__pair_scan(struct eng_rtxn *r, enum eng__table t, struct im_str a, uint64_t offset,
		   uint64_t limit, eng__pair_decode_fn fn, void *row,
		   int (*cb)(const void *, void *), void *arg, uint64_t *total, const char *what)
{
	if (total != NULL)
		*total = 0;
	if (!eng__id_valid(a))
		return 0;
	MDB_cursor *c;
	int rv = eng__rcursor(r, t, &c, what);
	if (rv != 0 || c == NULL)
		return rv;
	unsigned char pfx[ENG_ID_MAX + 1];
	size_t pn = eng__key_join(pfx, a, (struct im_str){NULL, 0});
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	uint64_t seen = 0;
	for (;;) {
		int st = eng__prefix_step(r->e, c, pfx, pn, &key, &val, op);
		if (st != 0) {
			rv = st < 0 ? st : 0;
			break;
		}
		op = MDB_NEXT;
		uint64_t i = seen++;
		if (i < offset || (limit != 0 && i - offset >= limit))
			continue;
		struct im_str ka, kb;
		if (eng__key_split(key.mv_data, key.mv_size, &ka, &kb) != 0 ||
		    fn(ka, kb, &val, row) != 0) {
			rv = eng__errf(r->e, IM_ECORRUPT, "%s: record does not decode", what);
			break;
		}
		rv = cb(row, arg);
		if (rv != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rv == 0 && total != NULL)
		*total = seen;
	return rv;
}
