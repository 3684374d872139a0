/* read_rel.c - the readers of version logs, friends, friend requests and blacklists. */
#include <errno.h>
#include <inttypes.h>

#include "engine_int.h"

/*
 * Like read_msg.c: every reader works on the engine's read snapshot, views
 * point into the map until eng_read_end(), and arguments that no stored key
 * can have read as absent, as does a table that a read-only open found
 * missing.
 */

static const struct im_str empty = {NULL, 0};

/* The shared readers of read.c. */
#define rcursor	  eng__rcursor
#define rlookup	  eng__rlookup
#define pair_get  eng__pair_get
#define pair_scan eng__pair_scan

/* ---------------------------------------------------------------- version logs */

int eng_vlog_get(struct eng_rtxn *r, int kind, struct im_str doc_id,
		 uint8_t version_id[ENG_VLOG_ID_LEN], uint64_t *version)
{
	if (!eng__vlog_kind_valid(kind) || !eng__id_valid(doc_id))
		return IM_ENOTFOUND;
	unsigned char k[ENG__VLOG_KEY_MAX];
	MDB_val key = {eng__vlog_key(k, kind, doc_id), k}, val;
	int rv = rlookup(r, ENG__T_VLOGS, &key, &val, "vlog_get: mdb_get");
	if (rv != 0)
		return rv;
	struct eng__vlog d;
	if (eng__vlog_decode(val.mv_data, val.mv_size, &d) != 0)
		return eng__errf(r->e, IM_ECORRUPT, "vlog_get %d %.*s: record does not decode",
				 kind, ENG__ID_ARG(doc_id));
	if (version_id != NULL)
		memcpy(version_id, d.version_id, ENG_VLOG_ID_LEN);
	if (version != NULL)
		*version = d.version;
	return 0;
}

/*
 * One pass over the entries of a document: counts those above `since` when
 * cb is NULL, else calls cb for them.  Entries are in element order, not in
 * version order, so each pass reads every entry of the document.
 */
static int vlog_pass(struct eng_rtxn *r, MDB_cursor *c, const unsigned char *pfx, size_t pn,
		     uint64_t since, uint64_t *count, eng_vlog_cb cb, void *arg)
{
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	*count = 0;
	for (;;) {
		int st = eng__prefix_step(r->e, c, pfx, pn, &key, &val, op);
		if (st != 0)
			return st < 0 ? st : 0;
		op = MDB_NEXT;
		struct eng__ventry en;
		if (eng__ventry_decode(val.mv_data, val.mv_size, &en) != 0 ||
		    key.mv_size - pn > ENG_CONV_ID_MAX)
			return eng__errf(r->e, IM_ECORRUPT, "vlog_since: entry does not decode");
		if (en.version <= since)
			continue;
		(*count)++;
		if (cb == NULL)
			continue;
		struct im_str elem = {(const char *)key.mv_data + pn, (uint32_t)(key.mv_size - pn)};
		int rv = cb(elem, en.state, en.version, arg);
		if (rv != 0)
			return rv;
	}
}

int eng_vlog_since(struct eng_rtxn *r, int kind, struct im_str doc_id, uint64_t since,
		   uint64_t limit, eng_vlog_cb cb, void *arg)
{
	if (!eng__vlog_kind_valid(kind) || !eng__id_valid(doc_id))
		return 0;
	MDB_cursor *c;
	int rv = rcursor(r, ENG__T_VLOG_ENTRIES, &c, "vlog_since: mdb_cursor_open");
	if (rv != 0 || c == NULL)
		return rv;
	unsigned char pfx[ENG__VENTRY_KEY_MAX];
	size_t pn = eng__ventry_key(pfx, kind, doc_id, empty);
	uint64_t n;
	/* Count first, so a caller never sees part of an answer that is too big. */
	rv = vlog_pass(r, c, pfx, pn, since, &n, NULL, NULL);
	if (rv == 0 && n > limit)
		rv = IM_ETOOBIG;
	if (rv == 0)
		rv = vlog_pass(r, c, pfx, pn, since, &n, cb, arg);
	mdb_cursor_close(c);
	return rv;
}

/* ---------------------------------------------------------------- rows */

static int friend_from(struct im_str a, struct im_str b, const MDB_val *val, void *out)
{
	struct eng_friend *f = out;
	f->owner_user_id = a;
	f->friend_user_id = b;
	return eng__friend_rec_decode(val->mv_data, val->mv_size, f);
}

static int freq_from(struct im_str a, struct im_str b, const MDB_val *val, void *out)
{
	struct eng_friend_req *q = out;
	q->from_user_id = a;
	q->to_user_id = b;
	return eng__freq_rec_decode(val->mv_data, val->mv_size, q);
}

static int black_from(struct im_str a, struct im_str b, const MDB_val *val, void *out)
{
	struct eng_black *x = out;
	x->owner_user_id = a;
	x->block_user_id = b;
	return eng__black_rec_decode(val->mv_data, val->mv_size, x);
}

int eng_friend_get(struct eng_rtxn *r, struct im_str owner, struct im_str friend_id,
		   struct eng_friend *out)
{
	return pair_get(r, ENG__T_FRIENDS, owner, friend_id, friend_from, out, "friend_get");
}

/* The callback adapters: pair_scan hands out rows as const void *. */
struct scan_fr {
	eng_friend_cb cb;
	void *arg;
};
static int call_fr(const void *row, void *arg)
{
	struct scan_fr *s = arg;
	return s->cb(row, s->arg);
}

int eng_friend_scan(struct eng_rtxn *r, struct im_str owner, uint64_t offset, uint64_t limit,
		    eng_friend_cb cb, void *arg, uint64_t *total)
{
	struct eng_friend f;
	struct scan_fr s = {cb, arg};
	return pair_scan(r, ENG__T_FRIENDS, owner, offset, limit, friend_from, &f, call_fr, &s,
			 total, "friend_scan");
}

int eng_friend_req_get(struct eng_rtxn *r, struct im_str from, struct im_str to,
		       struct eng_friend_req *out)
{
	return pair_get(r, ENG__T_FRIEND_REQS, from, to, freq_from, out, "friend_req_get");
}

struct scan_rq {
	eng_friend_req_cb cb;
	void *arg;
};
static int call_rq(const void *row, void *arg)
{
	struct scan_rq *s = arg;
	return s->cb(row, s->arg);
}

int eng_friend_req_scan_from(struct eng_rtxn *r, struct im_str from, eng_friend_req_cb cb,
			     void *arg)
{
	struct eng_friend_req q;
	struct scan_rq s = {cb, arg};
	return pair_scan(r, ENG__T_FRIEND_REQS, from, 0, 0, freq_from, &q, call_rq, &s, NULL,
			 "friend_req_scan_from");
}

/*
 * Walks an index table whose entries (a, b) name the row (b, a) of `rows`
 * (friend_reqs_to, group_reqs_by_user): each row is read by a point lookup
 * into *row and handed to cb.  An entry without its row is IM_ECORRUPT.
 */
struct index_walk {
	struct eng_rtxn *r;
	enum eng__table rows;
	eng__pair_decode_fn fn;
	int (*cb)(const void *row, void *arg);
	void *arg;
	const char *what;
};

static int index_scan(const struct index_walk *w, enum eng__table index, struct im_str a, void *row)
{
	if (!eng__id_valid(a))
		return 0;
	MDB_cursor *c;
	int rv = rcursor(w->r, index, &c, w->what);
	if (rv != 0 || c == NULL)
		return rv;
	unsigned char pfx[ENG_ID_MAX + 1];
	size_t pn = eng__key_join(pfx, a, empty);
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	for (;;) {
		int st = eng__prefix_step(w->r->e, c, pfx, pn, &key, &val, op);
		if (st != 0) {
			rv = st < 0 ? st : 0;
			break;
		}
		op = MDB_NEXT;
		struct im_str ka, kb;
		if (eng__key_split(key.mv_data, key.mv_size, &ka, &kb) != 0) {
			rv = eng__errf(w->r->e, IM_ECORRUPT, "%s: key does not decode", w->what);
			break;
		}
		rv = pair_get(w->r, w->rows, kb, ka, w->fn, row, w->what);
		if (rv == IM_ENOTFOUND)
			rv = eng__errf(w->r->e, IM_ECORRUPT, "%s: index entry without its row",
				       w->what);
		if (rv == 0)
			rv = w->cb(row, w->arg);
		if (rv != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv;
}

int eng_friend_req_scan_to(struct eng_rtxn *r, struct im_str to, eng_friend_req_cb cb, void *arg)
{
	struct eng_friend_req q;
	struct scan_rq s = {cb, arg};
	struct index_walk w = {r, ENG__T_FRIEND_REQS, freq_from, call_rq, &s, "friend_req_scan_to"};
	return index_scan(&w, ENG__T_FRIEND_REQS_TO, to, &q);
}

int eng_black_get(struct eng_rtxn *r, struct im_str owner, struct im_str black,
		  struct eng_black *out)
{
	return pair_get(r, ENG__T_BLACKS, owner, black, black_from, out, "black_get");
}

struct scan_bl {
	eng_black_cb cb;
	void *arg;
};
static int call_bl(const void *row, void *arg)
{
	struct scan_bl *s = arg;
	return s->cb(row, s->arg);
}

int eng_black_scan(struct eng_rtxn *r, struct im_str owner, uint64_t offset, uint64_t limit,
		   eng_black_cb cb, void *arg, uint64_t *total)
{
	struct eng_black b;
	struct scan_bl s = {cb, arg};
	return pair_scan(r, ENG__T_BLACKS, owner, offset, limit, black_from, &b, call_bl, &s, total,
			 "black_scan");
}

/* ---------------------------------------------------------------- group join requests */

static int greq_from(struct im_str a, struct im_str b, const MDB_val *val, void *out)
{
	struct eng_group_req *q = out;
	q->group_id = a;
	q->user_id = b;
	return eng__greq_rec_decode(val->mv_data, val->mv_size, q);
}

int eng_group_req_get(struct eng_rtxn *r, struct im_str group_id, struct im_str user_id,
		      struct eng_group_req *out)
{
	return pair_get(r, ENG__T_GROUP_REQS, group_id, user_id, greq_from, out, "group_req_get");
}

struct scan_gq {
	eng_group_req_cb cb;
	void *arg;
};
static int call_gq(const void *row, void *arg)
{
	struct scan_gq *s = arg;
	return s->cb(row, s->arg);
}

int eng_group_req_scan_group(struct eng_rtxn *r, struct im_str group_id, eng_group_req_cb cb,
			     void *arg)
{
	struct eng_group_req q;
	struct scan_gq s = {cb, arg};
	return pair_scan(r, ENG__T_GROUP_REQS, group_id, 0, 0, greq_from, &q, call_gq, &s, NULL,
			 "group_req_scan_group");
}

/* Each group_reqs_by_user entry (user, group) names the request (group, user). */
int eng_group_req_scan_user(struct eng_rtxn *r, struct im_str user_id, eng_group_req_cb cb,
			    void *arg)
{
	struct eng_group_req q;
	struct scan_gq s = {cb, arg};
	struct index_walk w = {r, ENG__T_GROUP_REQS, greq_from, call_gq, &s, "group_req_scan_user"};
	return index_scan(&w, ENG__T_GROUP_REQS_BY_USER, user_id, &q);
}
