/* read_msg.c - the readers of messages, seqs, dedup, conversations, read seqs and groups. */
#include <errno.h>
#include <inttypes.h>

#include "engine_int.h"

/*
 * Every reader works on the engine's read snapshot (read.c).  Views point into
 * the map and stay valid until eng_read_end().  Arguments that no stored key
 * can have (an empty or oversized id) read as absent, and so does a table that
 * a read-only open found missing (an environment older than the table).
 */

#define rcursor eng__rcursor

/* mdb_get on a table: 0 with *val, IM_ENOTFOUND, or an error. */
static int rget(struct eng_rtxn *r, enum eng__table t, const void *k, size_t kn, MDB_val *val,
		const char *what)
{
	struct eng *e = r->e;
	if (e->absent[t])
		return IM_ENOTFOUND;
	MDB_val key = {kn, (void *)k};
	int rc = mdb_get(r->txn, e->dbi[t], &key, val);
	if (rc == MDB_NOTFOUND)
		return IM_ENOTFOUND;
	return rc ? eng__from_mdb(e, rc, what) : 0;
}

int eng_conv_seq(struct eng_rtxn *r, struct im_str conv_id, int64_t *max_seq, int64_t *min_seq,
		 int64_t *max_seq_time)
{
	if (!eng__conv_id_valid(conv_id))
		return IM_ENOTFOUND;
	MDB_val val;
	int rv = rget(r, ENG__T_CONV_SEQS, conv_id.p, conv_id.n, &val, "conv_seq: mdb_get");
	if (rv != 0)
		return rv;
	struct eng__conv_seq s;
	if (eng__conv_seq_decode(val.mv_data, val.mv_size, &s) != 0)
		return eng__errf(r->e, IM_ECORRUPT, "conv_seq %.*s: record does not decode",
				 ENG__ID_ARG(conv_id));
	if (max_seq != NULL)
		*max_seq = s.max_seq;
	if (min_seq != NULL)
		*min_seq = s.min_seq;
	if (max_seq_time != NULL)
		*max_seq_time = s.max_seq_time;
	return 0;
}

int eng_msg_get(struct eng_rtxn *r, struct im_str conv_id, int64_t seq, struct im_str *data,
		bool *is_read, bool *revoked)
{
	if (!eng__conv_id_valid(conv_id) || seq <= 0)
		return IM_ENOTFOUND;
	unsigned char k[ENG__MSG_KEY_MAX];
	MDB_val val;
	int rv = rget(r, ENG__T_MSGS, k, eng__msg_key(k, conv_id, (uint64_t)seq), &val,
		      "msg_get: mdb_get");
	if (rv != 0)
		return rv;
	uint8_t flags;
	struct im_str d;
	if (eng__msg_val_decode(val.mv_data, val.mv_size, &flags, &d) != 0)
		return eng__errf(r->e, IM_ECORRUPT,
				 "msg_get %.*s %" PRId64 ": record does not decode",
				 ENG__ID_ARG(conv_id), seq);
	if (data != NULL)
		*data = d;
	if (is_read != NULL)
		*is_read = flags & ENG__MSG_F_READ;
	if (revoked != NULL)
		*revoked = flags & ENG__MSG_F_REVOKED;
	return 0;
}

int eng_revoke_get(struct eng_rtxn *r, struct im_str conv_id, int64_t seq, struct eng_revoke *out)
{
	if (!eng__conv_id_valid(conv_id) || seq <= 0)
		return IM_ENOTFOUND;
	unsigned char k[ENG__MSG_KEY_MAX];
	MDB_val val;
	int rv = rget(r, ENG__T_REVOKES, k, eng__msg_key(k, conv_id, (uint64_t)seq), &val,
		      "revoke_get: mdb_get");
	if (rv != 0)
		return rv;
	if (eng__revoke_rec_decode(val.mv_data, val.mv_size, out) != 0)
		return eng__errf(r->e, IM_ECORRUPT,
				 "revoke_get %.*s %" PRId64 ": record does not decode",
				 ENG__ID_ARG(conv_id), seq);
	return 0;
}

bool eng_msg_hidden(struct eng_rtxn *r, struct im_str user_id, struct im_str conv_id, int64_t seq)
{
	if (!eng__id_valid(user_id) || !eng__conv_id_valid(conv_id) || seq <= 0)
		return false;
	unsigned char k[ENG__HIDDEN_KEY_MAX];
	MDB_val val;
	return rget(r, ENG__T_HIDDEN, k, eng__hidden_key(k, user_id, conv_id, (uint64_t)seq), &val,
		    "msg_hidden: mdb_get") == 0;
}

int eng_msg_dedup(struct eng_rtxn *r, struct im_str send_id, struct im_str client_msg_id,
		  struct im_str *conv_id, int64_t *seq, struct im_str *server_msg_id,
		  int64_t *send_time)
{
	if (!eng__id_valid(send_id) || !eng__id_valid(client_msg_id))
		return IM_ENOTFOUND;
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val val;
	int rv = rget(r, ENG__T_MSG_DEDUP, k, eng__key_join(k, send_id, client_msg_id), &val,
		      "msg_dedup: mdb_get");
	if (rv != 0)
		return rv;
	struct eng__dedup d;
	if (eng__dedup_rec_decode(val.mv_data, val.mv_size, &d) != 0)
		return eng__errf(r->e, IM_ECORRUPT, "msg_dedup %.*s: record does not decode",
				 ENG__ID_ARG(client_msg_id));
	if (conv_id != NULL)
		*conv_id = d.conv_id;
	if (seq != NULL)
		*seq = d.seq;
	if (server_msg_id != NULL)
		*server_msg_id = d.server_msg_id;
	if (send_time != NULL)
		*send_time = d.send_time;
	return 0;
}

int eng_conv_get(struct eng_rtxn *r, struct im_str owner, struct im_str conv_id,
		 struct eng_conv *out)
{
	if (!eng__id_valid(owner) || !eng__conv_id_valid(conv_id))
		return IM_ENOTFOUND;
	unsigned char k[ENG__CONV_KEY_MAX];
	size_t kn = eng__key_join(k, owner, conv_id);
	MDB_val key = {kn, k}, val;
	struct eng *e = r->e;
	if (e->absent[ENG__T_CONVS])
		return IM_ENOTFOUND;
	/* A cursor, so the key views can point into the map like the rest. */
	MDB_cursor *c;
	int rc = mdb_cursor_open(r->txn, e->dbi[ENG__T_CONVS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "conv_get: mdb_cursor_open");
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_KEY);
	int rv = 0;
	if (rc == MDB_NOTFOUND) {
		rv = IM_ENOTFOUND;
	} else if (rc != 0) {
		rv = eng__from_mdb(e, rc, "conv_get: mdb_cursor_get");
	} else {
		const char *kp = key.mv_data;
		out->owner_user_id = (struct im_str){kp, owner.n};
		out->conversation_id = (struct im_str){kp + owner.n + 1, conv_id.n};
		if (eng__conv_rec_decode(val.mv_data, val.mv_size, out) != 0)
			rv = eng__errf(e, IM_ECORRUPT, "conv_get %.*s: record does not decode",
				       ENG__ID_ARG(conv_id));
	}
	mdb_cursor_close(c);
	return rv;
}

static int conv_from(struct im_str a, struct im_str b, const MDB_val *val, void *out)
{
	struct eng_conv *cv = out;
	cv->owner_user_id = a;
	cv->conversation_id = b;
	return eng__conv_rec_decode(val->mv_data, val->mv_size, cv);
}

struct scan_cv {
	eng_conv_cb cb;
	void *arg;
};
static int call_cv(const void *row, void *arg)
{
	struct scan_cv *s = arg;
	return s->cb(row, s->arg);
}

int eng_conv_scan(struct eng_rtxn *r, struct im_str owner, eng_conv_cb cb, void *arg)
{
	struct eng_conv cv;
	struct scan_cv s = {cb, arg};
	return eng__pair_scan(r, ENG__T_CONVS, owner, 0, 0, conv_from, &cv, call_cv, &s, NULL,
			      "conv_scan");
}
/* A damaged value reads as 0 (eng_check reports it). */
int64_t eng_read_seq(struct eng_rtxn *r, struct im_str user_id, struct im_str conv_id)
{
	if (!eng__id_valid(user_id) || !eng__conv_id_valid(conv_id))
		return 0;
	unsigned char k[ENG__CONV_KEY_MAX];
	MDB_val val;
	if (rget(r, ENG__T_READ_SEQS, k, eng__key_join(k, user_id, conv_id), &val,
		 "read_seq: mdb_get") != 0 ||
	    val.mv_size != ENG__I64_VAL_LEN)
		return 0;
	return (int64_t)im_get_be64(val.mv_data);
}

int eng_group_get(struct eng_rtxn *r, struct im_str group_id, struct eng_group *out)
{
	if (!eng__id_valid(group_id))
		return IM_ENOTFOUND;
	struct eng *e = r->e;
	if (e->absent[ENG__T_GROUPS])
		return IM_ENOTFOUND;
	MDB_cursor *c;
	int rc = mdb_cursor_open(r->txn, e->dbi[ENG__T_GROUPS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "group_get: mdb_cursor_open");
	MDB_val key = {group_id.n, (void *)group_id.p}, val;
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_KEY);
	int rv = 0;
	if (rc == MDB_NOTFOUND) {
		rv = IM_ENOTFOUND;
	} else if (rc != 0) {
		rv = eng__from_mdb(e, rc, "group_get: mdb_cursor_get");
	} else {
		out->group_id = (struct im_str){key.mv_data, (uint32_t)key.mv_size};
		if (eng__group_rec_decode(val.mv_data, val.mv_size, out) != 0)
			rv = eng__errf(e, IM_ECORRUPT, "group_get %.*s: record does not decode",
				       ENG__ID_ARG(group_id));
	}
	mdb_cursor_close(c);
	return rv;
}

int eng_group_scan(struct eng_rtxn *r, eng_group_cb cb, void *arg)
{
	struct eng *e = r->e;
	MDB_cursor *c;
	int rv = rcursor(r, ENG__T_GROUPS, &c, "group_scan: mdb_cursor_open");
	if (rv != 0 || c == NULL)
		return rv;
	MDB_val key, val;
	int rc;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct eng_group g = {.group_id = {key.mv_data, (uint32_t)key.mv_size}};
		if (eng__group_rec_decode(val.mv_data, val.mv_size, &g) != 0)
			rv = eng__errf(e, IM_ECORRUPT, "group_scan: record does not decode");
		else
			rv = cb(&g, arg);
	}
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = eng__from_mdb(e, rc, "group_scan: mdb_cursor_get");
	mdb_cursor_close(c);
	return rv;
}

/* Fills a member from its key and value (views). */
static int member_from(struct im_str a, struct im_str b, const MDB_val *val, void *out)
{
	struct eng_member *m = out;
	m->group_id = a;
	m->user_id = b;
	return eng__member_rec_decode(val->mv_data, val->mv_size, m);
}
int eng_member_get(struct eng_rtxn *r, struct im_str group_id, struct im_str user_id,
		   struct eng_member *out)
{
	return eng__pair_get(r, ENG__T_MEMBERS, group_id, user_id, member_from, out, "member_get");
}
struct scan_mb {
	eng_member_cb cb;
	void *arg;
};
static int call_mb(const void *row, void *arg)
{
	struct scan_mb *s = arg;
	return s->cb(row, s->arg);
}

int eng_member_scan(struct eng_rtxn *r, struct im_str group_id, eng_member_cb cb, void *arg)
{
	struct eng_member m;
	struct scan_mb s = {cb, arg};
	return eng__pair_scan(r, ENG__T_MEMBERS, group_id, 0, 0, member_from, &m, call_mb, &s, NULL,
			      "member_scan");
}
/* A user_groups row is its key (user, group); the row handed on is the group id. */
static int group_of(struct im_str a, struct im_str b, const MDB_val *val, void *out)
{
	(void)a;
	(void)val;
	*(struct im_str *)out = b;
	return 0;
}

struct scan_ug {
	eng_id_cb cb;
	void *arg;
};
static int call_ug(const void *row, void *arg)
{
	struct scan_ug *s = arg;
	return s->cb(*(const struct im_str *)row, s->arg);
}

int eng_user_group_scan(struct eng_rtxn *r, struct im_str user_id, eng_id_cb cb, void *arg)
{
	struct im_str gid;
	struct scan_ug s = {cb, arg};
	return eng__pair_scan(r, ENG__T_USER_GROUPS, user_id, 0, 0, group_of, &gid, call_ug, &s,
			      NULL, "user_group_scan");
}