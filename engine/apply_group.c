/* apply_group.c - the deterministic effect of the group commands after create/add/remove. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine_int.h"

/*
 * Same contract as apply.c: each handler runs inside the nested txn of one
 * command and returns 0, ENG__REJECT (res filled, every effect dropped) or a
 * negative storage error; it reads nothing but the txn and the command.
 * openim-protocol.md §8.2 (groups), §7.1 (the logs written).
 *
 * Invariants kept here (with those of apply_msg.c, docs/storage.md):
 *
 *  1. A group has exactly one member of role 100, its owner_user_id, unless
 *     it was dismissed with delete_member (then it has no member at all).
 *  2. The commands here change a dismissed group (status 2) only by a
 *     dismiss with delete_member; its join requests cannot be created or
 *     agreed.
 *  3. group_reqs and group_reqs_by_user hold the same (group, user) pairs:
 *     they are written together, and requests are never deleted.
 *  4. Every change of a group writes its GROUP_MEMBER element "" (UPDATE);
 *     every change of a member its element; a role change the sort marker.
 *
 * A join request's life (as a friend request's, apply_rel.c):
 *
 *          put                 respond 1 / -1
 *   (none) ----> PENDING(0) ---------------> ACCEPTED(1) / REFUSED(-1)
 *                    ^                                |
 *                    +------------- put --------------+
 */

#define reject	eng__reject
#define ID_FMT	ENG__ID_FMT
#define ID_ARG	ENG__ID_ARG
#define put	eng__put
#define get	eng__get
#define scratch eng__scratch

enum { ABSENT = ENG__ABSENT };

static const struct im_str empty = {NULL, 0};
static const struct im_str sort_id = {ENG_VLOG_SORT_ID, sizeof(ENG_VLOG_SORT_ID) - 1};

/* An entry in gid's GROUP_MEMBER log. */
static int gm_log(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms, struct im_str gid,
		  struct im_str elem, struct eng_result *res)
{
	return eng__vlog_write(e, txn, index, now_ms, ENG_VLOG_GROUP_MEMBER, gid, elem,
			       ENG_VLOG_UPDATE, res);
}

/* An id copied out of the map (views do not survive the writes that follow). */
struct idbuf {
	char b[ENG_ID_MAX];
	struct im_str s;
};

static void id_copy(struct idbuf *d, struct im_str s)
{
	d->s = (struct im_str){d->b, IM_MIN(s.n, (uint32_t)ENG_ID_MAX)};
	if (d->s.n)
		memcpy(d->b, s.p, d->s.n);
}

/* The group gid, which must not be dismissed (IM_EPERM); as eng__group_read otherwise. */
static int group_live(struct eng *e, MDB_txn *txn, struct im_str gid, struct eng_group *g,
		      struct eng_result *res)
{
	int rv = eng__group_read(e, txn, gid, g, res);
	if (rv == 0 && g->status == 2)
		return reject(res, IM_EPERM, "group " ID_FMT " is dismissed", ID_ARG(gid));
	return rv;
}

/* The member (gid, uid) into *m (views into the map): 0, ENG__REJECT (IM_ENOTFOUND, ...), < 0. */
static int member_read(struct eng *e, MDB_txn *txn, struct im_str gid, struct im_str uid,
		       struct eng_member *m, struct eng_result *res)
{
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val val;
	int rv =
	    get(e, txn, ENG__T_MEMBERS, k, eng__key_join(k, gid, uid), &val, "mdb_get members");
	if (rv == ABSENT)
		return reject(res, IM_ENOTFOUND,
			      "userID " ID_FMT " is not a member of group " ID_FMT, ID_ARG(uid),
			      ID_ARG(gid));
	if (rv != 0)
		return rv;
	m->group_id = gid;
	m->user_id = uid;
	if (eng__member_rec_decode(val.mv_data, val.mv_size, m) != 0)
		return reject(res, IM_ECORRUPT,
			      "members (" ID_FMT ", " ID_FMT "): stored record does not decode",
			      ID_ARG(gid), ID_ARG(uid));
	return 0;
}

/* Encodes m first (its views may point into the map), then stores it. */
static int member_put(struct eng *e, MDB_txn *txn, const struct eng_member *m)
{
	size_t n = eng__member_rec_size(m);
	unsigned char *v = scratch(e, n);
	if (v == NULL)
		return -ENOMEM;
	eng__member_rec_encode(v, m);
	unsigned char k[ENG__PAIR_KEY_MAX];
	return put(e, txn, ENG__T_MEMBERS, k, eng__key_join(k, m->group_id, m->user_id), v, n, 0,
		   "mdb_put members");
}

/*
 * The user ids of gid's members, in order, into *out (an array of n idbufs
 * the caller frees).  Collected first so the caller may write members.
 */
static int member_ids(struct eng *e, MDB_txn *txn, struct im_str gid, struct idbuf **out,
		      uint32_t *n_out)
{
	unsigned char pfx[ENG_ID_MAX + 1];
	size_t pn = eng__key_join(pfx, gid, empty);
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, e->dbi[ENG__T_MEMBERS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open members");
	struct idbuf *ids = NULL;
	uint32_t n = 0, cap = 0;
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rv;
	while ((rv = eng__prefix_step(e, c, pfx, pn, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		size_t un = key.mv_size - pn;
		if (un == 0 || un > ENG_ID_MAX)
			continue; /* eng_check reports such keys */
		if (n == cap) {
			uint32_t ncap = cap ? cap * 2 : 16;
			struct idbuf *nb = im_realloc(ids, (size_t)ncap * sizeof(*ids));
			if (nb == NULL) {
				rv = eng__errf(e, -ENOMEM, "members: out of memory");
				break;
			}
			ids = nb;
			cap = ncap;
		}
		id_copy(&ids[n++], (struct im_str){(const char *)key.mv_data + pn, (uint32_t)un});
	}
	mdb_cursor_close(c);
	if (rv < 0) {
		im_free(ids);
		return rv;
	}
	/* The copies moved with realloc: point each view at its own buffer. */
	for (uint32_t i = 0; i < n; i++)
		ids[i].s.p = ids[i].b;
	*out = ids;
	*n_out = n;
	return 0;
}

/* ---------------------------------------------------------------- group set */

#define GROUP_MASK_ALL                                                                             \
	(ENG_GROUP_NAME | ENG_GROUP_NOTIFICATION | ENG_GROUP_INTRODUCTION | ENG_GROUP_FACE_URL |   \
	 ENG_GROUP_EX | ENG_GROUP_NEED_VERIFICATION | ENG_GROUP_LOOK_MEMBER_INFO |                 \
	 ENG_GROUP_APPLY_MEMBER_FRIEND | ENG_GROUP_STATUS | ENG_GROUP_AT_ANNOUNCE)

/*
 * Every member's sg_ row gets groupAtType 4 (a group announcement, 1519),
 * created if missing; each owner's CONVERSATION log gets UPDATE (INSERT for
 * a row created here).
 */
static int at_announce(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
		       struct im_str gid, struct eng_result *res)
{
	struct idbuf *ids;
	uint32_t n;
	int rv = member_ids(e, txn, gid, &ids, &n);
	if (rv != 0)
		return rv;
	char convb[ENG_CONV_ID_MAX + 1];
	struct im_str conv = eng__group_conv(convb, gid);
	for (uint32_t i = 0; i < n && rv == 0; i++) {
		struct im_str uid = ids[i].s;
		struct eng_conv c;
		int state = ENG_VLOG_UPDATE;
		rv = eng__conv_row_get(e, txn, uid, conv, &c, res);
		if (rv == ABSENT) {
			c = (struct eng_conv){.owner_user_id = uid,
					      .conversation_id = conv,
					      .conversation_type = 3,
					      .group_id = gid,
					      .create_time = now_ms};
			state = ENG_VLOG_INSERT;
			rv = 0;
		}
		if (rv != 0)
			break;
		c.group_at_type = 4;
		rv = eng__conv_row_put(e, txn, uid, &c);
		if (rv == 0)
			rv = eng__vlog_write(e, txn, index, now_ms, ENG_VLOG_CONVERSATION, uid,
					     conv, state, res);
	}
	im_free(ids);
	return rv;
}

/* GROUP_SET (set_group_info_ex, mute/cancel_mute_group, §8.2): the masked fields. */
static int group_set(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		     struct eng_result *res)
{
	const struct eng_group *in = &cmd->m.group_set.group;
	uint32_t mask = cmd->m.group_set.mask;
	if (mask & ~(uint32_t)GROUP_MASK_ALL)
		return reject(res, IM_EINVAL, "unknown field mask 0x%" PRIx32, mask);
	if ((mask & ENG_GROUP_STATUS) && in->status != 0 && in->status != 3)
		return reject(res, IM_EINVAL, "status %" PRId32 ": only 0 or 3 may be set",
			      in->status);
	struct eng_group g;
	int rv = group_live(e, txn, in->group_id, &g, res);
	if (rv != 0)
		return rv;
	if (mask & ENG_GROUP_NAME)
		g.group_name = in->group_name;
	if (mask & ENG_GROUP_NOTIFICATION) {
		g.notification = in->notification;
		g.notification_update_time = in->notification_update_time;
		g.notification_user_id = in->notification_user_id;
	}
	if (mask & ENG_GROUP_INTRODUCTION)
		g.introduction = in->introduction;
	if (mask & ENG_GROUP_FACE_URL)
		g.face_url = in->face_url;
	if (mask & ENG_GROUP_EX)
		g.ex = in->ex;
	if (mask & ENG_GROUP_NEED_VERIFICATION)
		g.need_verification = in->need_verification;
	if (mask & ENG_GROUP_LOOK_MEMBER_INFO)
		g.look_member_info = in->look_member_info;
	if (mask & ENG_GROUP_APPLY_MEMBER_FRIEND)
		g.apply_member_friend = in->apply_member_friend;
	if (mask & ENG_GROUP_STATUS)
		g.status = in->status;
	rv = eng__group_put(e, txn, &g);
	if (rv == 0)
		rv = gm_log(e, txn, index, cmd->now_ms, in->group_id, empty, res);
	if (rv == 0 && (mask & ENG_GROUP_AT_ANNOUNCE))
		rv = at_announce(e, txn, index, cmd->now_ms, in->group_id, res);
	return rv;
}

/* ---------------------------------------------------------------- member set */

#define MEMBER_MASK_ALL                                                                            \
	(ENG_MEMBER_NICKNAME | ENG_MEMBER_FACE_URL | ENG_MEMBER_EX | ENG_MEMBER_ROLE |             \
	 ENG_MEMBER_MUTE_END)

static int str_cmp(const void *a, const void *b)
{
	const struct im_str *x = *(const struct im_str *const *)a;
	const struct im_str *y = *(const struct im_str *const *)b;
	int c = memcmp(x->p, y->p, IM_MIN(x->n, y->n));
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* IM_EINVAL (rejected) if a user id is named twice in the members of cmd. */
static int members_distinct(struct eng *e, const struct eng_cmd *cmd, struct eng_result *res)
{
	uint32_t n = cmd->m.member_set.n_members;
	if (n < 2)
		return 0;
	const struct im_str **v = im_malloc((size_t)n * sizeof(*v));
	if (v == NULL)
		return eng__errf(e, -ENOMEM, "member_set: out of memory");
	for (uint32_t i = 0; i < n; i++)
		v[i] = &cmd->m.member_set.members[i].user_id;
	qsort(v, n, sizeof(*v), str_cmp);
	int rv = 0;
	for (uint32_t i = 1; i < n && rv == 0; i++)
		if (str_cmp(&v[i - 1], &v[i]) == 0)
			rv = reject(res, IM_EINVAL, "userID " ID_FMT " named twice", ID_ARG(*v[i]));
	im_free(v);
	return rv;
}

/*
 * MEMBER_SET (set_group_member_info, mute_group_member, §8.2): each named
 * member's masked fields; a GROUP_MEMBER UPDATE for each and, with ROLE, the
 * sort marker.  All named users must be members; ROLE is 20 or 60 and never
 * the owner's (GROUP_TRANSFER changes that).
 */
static int member_set(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		      struct eng_result *res)
{
	struct im_str gid = cmd->m.member_set.group_id;
	uint32_t n = cmd->m.member_set.n_members;
	struct eng_group g;
	int rv = group_live(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	if (n == 0)
		return reject(res, IM_EINVAL, "group " ID_FMT ": no members", ID_ARG(gid));
	struct idbuf owner;
	id_copy(&owner, g.owner_user_id);
	bool sort = false;
	for (uint32_t i = 0; i < n; i++) {
		const struct eng_member *in = &cmd->m.member_set.members[i];
		uint32_t mask = cmd->m.member_set.masks[i];
		if (!eng__id_valid(in->user_id))
			return reject(res, IM_EINVAL, "member %" PRIu32 ": empty userID", i);
		if (mask & ~(uint32_t)MEMBER_MASK_ALL)
			return reject(res, IM_EINVAL, "member %" PRIu32 ": unknown mask 0x%" PRIx32,
				      i, mask);
		if ((mask & ENG_MEMBER_ROLE) && in->role_level != 20 && in->role_level != 60)
			return reject(res, IM_EINVAL, "member %" PRIu32 ": role %" PRId32, i,
				      in->role_level);
	}
	rv = members_distinct(e, cmd, res);
	if (rv != 0)
		return rv;
	for (uint32_t i = 0; i < n; i++) {
		const struct eng_member *in = &cmd->m.member_set.members[i];
		uint32_t mask = cmd->m.member_set.masks[i];
		struct eng_member m;
		rv = member_read(e, txn, gid, in->user_id, &m, res);
		if (rv != 0)
			return rv;
		if ((mask & ENG_MEMBER_ROLE) &&
		    (im_str_eq(in->user_id, owner.s) || m.role_level == 100))
			return reject(res, IM_EPERM,
				      "userID " ID_FMT " owns group " ID_FMT ": role is fixed",
				      ID_ARG(in->user_id), ID_ARG(gid));
		if (mask & ENG_MEMBER_NICKNAME)
			m.nickname = in->nickname;
		if (mask & ENG_MEMBER_FACE_URL)
			m.face_url = in->face_url;
		if (mask & ENG_MEMBER_EX)
			m.ex = in->ex;
		if (mask & ENG_MEMBER_ROLE)
			m.role_level = in->role_level;
		if (mask & ENG_MEMBER_MUTE_END)
			m.mute_end_time = in->mute_end_time;
		sort |= (mask & ENG_MEMBER_ROLE) != 0;
		rv = member_put(e, txn, &m);
		if (rv == 0)
			rv = gm_log(e, txn, index, cmd->now_ms, gid, in->user_id, res);
		if (rv != 0)
			return rv;
	}
	return sort ? gm_log(e, txn, index, cmd->now_ms, gid, sort_id, res) : 0;
}

/* ---------------------------------------------------------------- transfer, dismiss */

/*
 * GROUP_TRANSFER (transfer_group, §8.2): the new owner gets role 100 and no
 * mute, the old owner the new owner's previous role; logs: the sort marker,
 * both members and "".
 */
static int group_transfer(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			  struct eng_result *res)
{
	struct im_str gid = cmd->m.group_transfer.group_id;
	struct im_str to = cmd->m.group_transfer.new_owner;
	struct eng_group g;
	int rv = group_live(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	if (!eng__id_valid(to))
		return reject(res, IM_EINVAL, "empty new owner");
	if (im_str_eq(to, g.owner_user_id))
		return reject(res, IM_EINVAL, "userID " ID_FMT " owns group " ID_FMT " already",
			      ID_ARG(to), ID_ARG(gid));
	struct idbuf from;
	id_copy(&from, g.owner_user_id);
	struct eng_member nm, om;
	rv = member_read(e, txn, gid, to, &nm, res);
	if (rv != 0)
		return rv;
	int32_t role = nm.role_level;
	nm.role_level = 100;
	nm.mute_end_time = 0;
	rv = member_put(e, txn, &nm);
	if (rv != 0)
		return rv;
	rv = member_read(e, txn, gid, from.s, &om, res);
	if (rv == ENG__REJECT && res->code == IM_ENOTFOUND)
		return reject(res, IM_ECORRUPT, "group " ID_FMT ": owner " ID_FMT " is no member",
			      ID_ARG(gid), ID_ARG(from.s));
	if (rv != 0)
		return rv;
	om.role_level = role;
	rv = member_put(e, txn, &om);
	if (rv != 0)
		return rv;
	rv = eng__group_read(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	g.owner_user_id = to;
	rv = eng__group_put(e, txn, &g);
	if (rv == 0)
		rv = gm_log(e, txn, index, cmd->now_ms, gid, sort_id, res);
	if (rv == 0)
		rv = gm_log(e, txn, index, cmd->now_ms, gid, from.s, res);
	if (rv == 0)
		rv = gm_log(e, txn, index, cmd->now_ms, gid, to, res);
	if (rv == 0)
		rv = gm_log(e, txn, index, cmd->now_ms, gid, empty, res);
	return rv;
}

/*
 * GROUP_DISMISS (dismiss_group, §8.2): status 2 and "" in the member log;
 * with delete_member every member, the owner too, leaves as in
 * GROUP_MEMBERS_REMOVE.  Dismissing a dismissed group again is IM_EEXIST
 * unless it deletes the members (which a first dismiss may have kept).
 */
static int group_dismiss(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			 struct eng_result *res)
{
	struct im_str gid = cmd->m.group_dismiss.group_id;
	bool del = cmd->m.group_dismiss.delete_member;
	struct eng_group g;
	int rv = eng__group_read(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	if (g.status == 2 && !del)
		return reject(res, IM_EEXIST, "group " ID_FMT " is dismissed already", ID_ARG(gid));
	if (del) {
		char convb[ENG_CONV_ID_MAX + 1];
		struct eng__conv_seq cs;
		rv = eng__conv_seq_get(e, txn, eng__group_conv(convb, gid), &cs, res);
		if (rv != 0)
			return rv;
		struct idbuf *ids;
		uint32_t n;
		rv = member_ids(e, txn, gid, &ids, &n);
		if (rv != 0)
			return rv;
		for (uint32_t i = 0; i < n && rv == 0; i++) {
			rv = eng__member_leave(e, txn, index, cmd->now_ms, gid, ids[i].s,
					       cs.max_seq, res);
			/* They still receive the dismiss tip (the items' extra recipients). */
			if (rv == 0 && ((i > 0 && im_buf_add(&e->removed, "", 1) != 0) ||
					im_buf_add(&e->removed, ids[i].s.p, ids[i].s.n) != 0))
				rv = eng__errf(e, -ENOMEM, "dismiss: out of memory");
		}
		im_free(ids);
		if (rv != 0)
			return rv;
		rv = eng__group_read(e, txn, gid, &g, res);
		if (rv != 0)
			return rv;
		g.member_count = 0;
	}
	g.status = 2;
	rv = eng__group_put(e, txn, &g);
	if (rv == 0)
		rv = gm_log(e, txn, index, cmd->now_ms, gid, empty, res);
	return rv;
}

/* ---------------------------------------------------------------- join requests */

/* The request (gid, uid) into *q (views may point into the map): 0, ABSENT, REJECT, < 0. */
static int greq_get(struct eng *e, MDB_txn *txn, struct im_str gid, struct im_str uid,
		    struct eng_group_req *q, struct eng_result *res)
{
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val val;
	int rv = get(e, txn, ENG__T_GROUP_REQS, k, eng__key_join(k, gid, uid), &val,
		     "mdb_get group_reqs");
	if (rv != 0)
		return rv;
	q->group_id = gid;
	q->user_id = uid;
	if (eng__greq_rec_decode(val.mv_data, val.mv_size, q) != 0)
		return reject(res, IM_ECORRUPT,
			      "group_reqs (" ID_FMT ", " ID_FMT "): stored record does not decode",
			      ID_ARG(gid), ID_ARG(uid));
	return 0;
}

/* Stores q and its group_reqs_by_user entry (invariant 3). */
static int greq_put(struct eng *e, MDB_txn *txn, const struct eng_group_req *q)
{
	size_t n = eng__greq_rec_size(q);
	unsigned char *v = scratch(e, n);
	if (v == NULL)
		return -ENOMEM;
	eng__greq_rec_encode(v, q);
	unsigned char k[ENG__PAIR_KEY_MAX];
	int rv = put(e, txn, ENG__T_GROUP_REQS, k, eng__key_join(k, q->group_id, q->user_id), v, n,
		     0, "mdb_put group_reqs");
	if (rv == 0)
		rv = put(e, txn, ENG__T_GROUP_REQS_BY_USER, k,
			 eng__key_join(k, q->user_id, q->group_id), "", 0, 0,
			 "mdb_put group_reqs_by_user");
	return rv;
}

/*
 * GROUP_REQ_PUT (join_group, an invitation needing approval): each request
 * is created or reset to pending.  The group must exist and be live, the
 * user registered and not a member.
 */
static int group_req_put(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd,
			 struct eng_result *res)
{
	uint32_t n = cmd->m.group_req_put.n_reqs;
	if (n == 0)
		return reject(res, IM_EINVAL, "no requests");
	for (uint32_t i = 0; i < n; i++) {
		const struct eng_group_req *in = &cmd->m.group_req_put.reqs[i];
		if (!eng__id_valid(in->group_id) || !eng__id_valid(in->user_id))
			return reject(res, IM_EINVAL, "request %" PRIu32 ": empty id", i);
		struct eng_group g;
		int rv = group_live(e, txn, in->group_id, &g, res);
		if (rv != 0)
			return rv;
		MDB_val val;
		rv = get(e, txn, ENG__T_USERS, in->user_id.p, in->user_id.n, &val, "mdb_get users");
		if (rv == ABSENT)
			return reject(res, IM_ENOTFOUND, "userID " ID_FMT " not found",
				      ID_ARG(in->user_id));
		if (rv != 0)
			return rv;
		unsigned char k[ENG__PAIR_KEY_MAX];
		rv = get(e, txn, ENG__T_MEMBERS, k, eng__key_join(k, in->group_id, in->user_id),
			 &val, "mdb_get members");
		if (rv == 0)
			return reject(res, IM_EEXIST,
				      "userID " ID_FMT " is already a member of group " ID_FMT,
				      ID_ARG(in->user_id), ID_ARG(in->group_id));
		if (rv != ABSENT)
			return rv;
		struct eng_group_req q = {.group_id = in->group_id,
					  .user_id = in->user_id,
					  .req_msg = in->req_msg,
					  .req_time = in->req_time,
					  .ex = in->ex,
					  .join_source = in->join_source,
					  .inviter_user_id = in->inviter_user_id};
		rv = greq_put(e, txn, &q);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/*
 * GROUP_REQ_RESPOND (group_application_response): a pending request gets
 * its answer; agreeing adds the user as GROUP_MEMBERS_ADD would (role 20,
 * joined now, operator the handler) unless it is a member already.
 */
static int group_req_respond(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			     struct eng_result *res)
{
	struct im_str gid = cmd->m.group_req_respond.group_id;
	struct im_str uid = cmd->m.group_req_respond.user_id;
	struct im_str handler = cmd->m.group_req_respond.handler;
	int32_t hr = cmd->m.group_req_respond.handle_result;
	if (!eng__id_valid(gid) || !eng__id_valid(uid))
		return reject(res, IM_EINVAL, "empty id");
	if (hr != 1 && hr != -1)
		return reject(res, IM_EINVAL, "handle result %" PRId32, hr);
	struct eng_group_req q;
	int rv = greq_get(e, txn, gid, uid, &q, res);
	if (rv == ABSENT)
		return reject(res, IM_ENOTFOUND, "no request of " ID_FMT " to join group " ID_FMT,
			      ID_ARG(uid), ID_ARG(gid));
	if (rv != 0)
		return rv;
	/* Handled already (1206 at the API edge). */
	if (q.handle_result != 0)
		return reject(res, IM_EEXIST,
			      "request of " ID_FMT " to join group " ID_FMT
			      " handled already (%" PRId32 ")",
			      ID_ARG(uid), ID_ARG(gid), q.handle_result);
	q.handle_result = hr;
	q.handled_msg = cmd->m.group_req_respond.handled_msg;
	q.handle_user_id = handler;
	q.handle_time = cmd->now_ms;
	/* Copied: the request's views do not survive the writes below. */
	struct idbuf inviter;
	id_copy(&inviter, q.inviter_user_id);
	int32_t source = q.join_source;
	rv = greq_put(e, txn, &q);
	if (rv != 0 || hr != 1)
		return rv;
	struct eng_group g;
	rv = group_live(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val val;
	rv = get(e, txn, ENG__T_MEMBERS, k, eng__key_join(k, gid, uid), &val, "mdb_get members");
	if (rv == 0)
		return 0; /* a member already (invited meanwhile): only the answer */
	if (rv != ABSENT)
		return rv;
	struct eng_member m = {.group_id = gid,
			       .user_id = uid,
			       .role_level = 20,
			       .join_time = cmd->now_ms,
			       .join_source = source,
			       .operator_user_id = handler,
			       .inviter_user_id = inviter.s};
	rv = eng__member_join(e, txn, index, cmd->now_ms, &m, cmd->m.group_req_respond.hide_history,
			      res);
	if (rv != 0)
		return rv;
	rv = eng__group_read(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	g.member_count++;
	return eng__group_put(e, txn, &g);
}

int eng__apply_group_cmd(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			 struct eng_result *res)
{
	switch (cmd->type) {
	case ENG_CMD_GROUP_SET:
		return group_set(e, txn, index, cmd, res);
	case ENG_CMD_MEMBER_SET:
		return member_set(e, txn, index, cmd, res);
	case ENG_CMD_GROUP_TRANSFER:
		return group_transfer(e, txn, index, cmd, res);
	case ENG_CMD_GROUP_DISMISS:
		return group_dismiss(e, txn, index, cmd, res);
	case ENG_CMD_GROUP_REQ_PUT:
		return group_req_put(e, txn, cmd, res);
	case ENG_CMD_GROUP_REQ_RESPOND:
		return group_req_respond(e, txn, index, cmd, res);
	default:
		return reject(res, IM_ECORRUPT, "unknown command type %d", cmd->type);
	}
}
