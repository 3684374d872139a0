/* msg_rec.c - keys and records of the message side: messages, seqs, dedup, conversations, groups.
 */
#include <errno.h>

#include "engine_int.h"
#include "rw.h"

/*
 * Layouts (docs/storage.md).  Every record value starts with a format byte;
 * key parts are joined by 0x00; seqs in keys are u64 BE, so a cursor walks a
 * conversation's messages in seq order.  Decoders read through `struct rd`
 * and accept exactly the bytes their encoder writes: short or trailing bytes
 * are IM_ECORRUPT, an unknown format byte IM_EVERSION.
 */

/* ---------------------------------------------------------------- keys */

size_t eng__key_join(unsigned char *buf, struct im_str a, struct im_str b)
{
	memcpy(buf, a.p, a.n);
	buf[a.n] = 0;
	if (b.n)
		memcpy(buf + a.n + 1, b.p, b.n);
	return (size_t)a.n + 1 + b.n;
}

int eng__key_split(const void *key, size_t len, struct im_str *a, struct im_str *b)
{
	const char *k = key;
	const char *nul = len ? memchr(k, 0, len) : NULL;
	if (nul == NULL || nul == k || (size_t)(nul - k) + 1 == len)
		return IM_ECORRUPT;
	size_t an = (size_t)(nul - k);
	*a = (struct im_str){k, (uint32_t)an};
	*b = (struct im_str){nul + 1, (uint32_t)(len - an - 1)};
	return 0;
}

size_t eng__msg_key(unsigned char *buf, struct im_str conv, uint64_t seq)
{
	size_t n = eng__key_join(buf, conv, (struct im_str){NULL, 0});
	im_put_be64(buf + n, seq);
	return n + 8;
}

/* The conversation ends at the first NUL, exactly 8 seq bytes follow. */
int eng__msg_key_parse(const void *key, size_t len, struct im_str *conv, uint64_t *seq)
{
	const char *k = key;
	const char *nul = len ? memchr(k, 0, len) : NULL;
	if (nul == NULL)
		return IM_ECORRUPT;
	size_t cn = (size_t)(nul - k);
	if (cn == 0 || cn > ENG_CONV_ID_MAX || len != cn + 9)
		return IM_ECORRUPT;
	*conv = (struct im_str){k, (uint32_t)cn};
	*seq = im_get_be64((const unsigned char *)nul + 1);
	return 0;
}

size_t eng__hidden_key(unsigned char *buf, struct im_str owner, struct im_str conv, uint64_t seq)
{
	size_t n = eng__key_join(buf, owner, (struct im_str){NULL, 0});
	return n + eng__msg_key(buf + n, conv, seq);
}

/* ---------------------------------------------------------------- the seq field */

size_t eng__seq_field(unsigned char *buf, uint64_t seq)
{
	size_t n = 0;
	buf[n++] = 0x70; /* (14 << 3) | wire type 0 */
	do {
		unsigned char b = seq & 0x7f;
		seq >>= 7;
		buf[n++] = seq ? (unsigned char)(b | 0x80) : b;
	} while (seq);
	return n;
}

bool eng__seq_field_ends(struct im_str data, uint64_t seq)
{
	unsigned char f[ENG__SEQ_FIELD_MAX];
	size_t n = eng__seq_field(f, seq);
	return data.n >= n && memcmp(data.p + data.n - n, f, n) == 0;
}

/* ---------------------------------------------------------------- msgs, conv_seqs */

int eng__msg_val_decode(const void *val, size_t len, uint8_t *flags, struct im_str *data)
{
	const unsigned char *p = val;
	if (len < 1)
		return IM_ECORRUPT;
	if (p[0] != ENG__REC_MSG_V1)
		return IM_EVERSION;
	if (len < ENG__MSG_VAL_HDR || (p[1] & ~ENG__MSG_F_ALL) != 0)
		return IM_ECORRUPT;
	*flags = p[1];
	*data =
	    (struct im_str){(const char *)p + ENG__MSG_VAL_HDR, (uint32_t)(len - ENG__MSG_VAL_HDR)};
	return 0;
}

void eng__conv_seq_encode(unsigned char *p, const struct eng__conv_seq *s)
{
	p = wr_u8(p, ENG__REC_SEQ_V1);
	p = wr_u64(p, (uint64_t)s->max_seq);
	p = wr_u64(p, (uint64_t)s->min_seq);
	wr_u64(p, (uint64_t)s->max_seq_time);
}

int eng__conv_seq_decode(const void *val, size_t len, struct eng__conv_seq *out)
{
	const unsigned char *p = val;
	if (len < 1)
		return IM_ECORRUPT;
	if (p[0] != ENG__REC_SEQ_V1)
		return IM_EVERSION;
	if (len != ENG__CONV_SEQ_LEN)
		return IM_ECORRUPT;
	out->max_seq = (int64_t)im_get_be64(p + 1);
	out->min_seq = (int64_t)im_get_be64(p + 9);
	out->max_seq_time = (int64_t)im_get_be64(p + 17);
	return 0;
}

/* ---------------------------------------------------------------- msg_dedup */

size_t eng__dedup_rec_size(const struct eng__dedup *d)
{
	return 1 + 8 + 8 + 4 + (size_t)d->conv_id.n + 4 + d->server_msg_id.n;
}

void eng__dedup_rec_encode(unsigned char *p, const struct eng__dedup *d)
{
	p = wr_u8(p, ENG__REC_DEDUP_V1);
	p = wr_u64(p, (uint64_t)d->seq);
	p = wr_u64(p, (uint64_t)d->send_time);
	p = wr_str(p, d->conv_id);
	wr_str(p, d->server_msg_id);
}

int eng__dedup_rec_decode(const void *val, size_t len, struct eng__dedup *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_DEDUP_V1)
		return IM_EVERSION;
	struct eng__dedup d;
	d.seq = (int64_t)rd_u64(&r);
	d.send_time = (int64_t)rd_u64(&r);
	d.conv_id = rd_key(&r, ENG_CONV_ID_MAX);
	d.server_msg_id = rd_key(&r, ENG_SERVER_MSG_ID_MAX);
	if (r.bad || r.n != 0 || d.conv_id.n == 0)
		return IM_ECORRUPT;
	*out = d;
	return 0;
}

/* ---------------------------------------------------------------- convs */

/*
 * convs value: format u8 | conversation_type i32 | recv_msg_opt i32 |
 * group_at_type i32 | burn_duration i32 | is_pinned u8 | is_private_chat u8 |
 * is_msg_destruct u8 | min_seq i64 | max_seq i64 | msg_destruct_time i64 |
 * latest_msg_destruct_time i64 | create_time i64 | user_id str | group_id str
 * | attached_info str | ex str.  Owner and conversationID are the key.
 */
#define CONV_REC_FIXED (1 + 4 * 4 + 3 + 5 * 8 + 4 * 4)

size_t eng__conv_rec_size(const struct eng_conv *c)
{
	return CONV_REC_FIXED + (size_t)c->user_id.n + c->group_id.n + c->attached_info.n + c->ex.n;
}

void eng__conv_rec_encode(unsigned char *p, const struct eng_conv *c)
{
	p = wr_u8(p, ENG__REC_CONV_V1);
	p = wr_u32(p, (uint32_t)c->conversation_type);
	p = wr_u32(p, (uint32_t)c->recv_msg_opt);
	p = wr_u32(p, (uint32_t)c->group_at_type);
	p = wr_u32(p, (uint32_t)c->burn_duration);
	p = wr_u8(p, c->is_pinned);
	p = wr_u8(p, c->is_private_chat);
	p = wr_u8(p, c->is_msg_destruct);
	p = wr_u64(p, (uint64_t)c->min_seq);
	p = wr_u64(p, (uint64_t)c->max_seq);
	p = wr_u64(p, (uint64_t)c->msg_destruct_time);
	p = wr_u64(p, (uint64_t)c->latest_msg_destruct_time);
	p = wr_u64(p, (uint64_t)c->create_time);
	p = wr_str(p, c->user_id);
	p = wr_str(p, c->group_id);
	p = wr_str(p, c->attached_info);
	wr_str(p, c->ex);
}

/* Fills every field but owner_user_id and conversation_id (the key's). */
int eng__conv_rec_decode(const void *val, size_t len, struct eng_conv *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_CONV_V1)
		return IM_EVERSION;
	struct eng_conv c = {.owner_user_id = out->owner_user_id,
			     .conversation_id = out->conversation_id};
	c.conversation_type = (int32_t)rd_u32(&r);
	c.recv_msg_opt = (int32_t)rd_u32(&r);
	c.group_at_type = (int32_t)rd_u32(&r);
	c.burn_duration = (int32_t)rd_u32(&r);
	c.is_pinned = rd_bool(&r);
	c.is_private_chat = rd_bool(&r);
	c.is_msg_destruct = rd_bool(&r);
	c.min_seq = (int64_t)rd_u64(&r);
	c.max_seq = (int64_t)rd_u64(&r);
	c.msg_destruct_time = (int64_t)rd_u64(&r);
	c.latest_msg_destruct_time = (int64_t)rd_u64(&r);
	c.create_time = (int64_t)rd_u64(&r);
	c.user_id = rd_id(&r);
	c.group_id = rd_id(&r);
	c.attached_info = rd_str(&r, ENG_TEXT_MAX);
	c.ex = rd_str(&r, ENG_TEXT_MAX);
	if (r.bad || r.n != 0)
		return IM_ECORRUPT;
	*out = c;
	return 0;
}

/* ---------------------------------------------------------------- revokes */

/* revokes value: format u8 | revoker_role i32 | revoke_time i64 | revoker_id str | nickname str. */
size_t eng__revoke_rec_size(const struct eng_revoke *v)
{
	return 1 + 4 + 8 + 4 + (size_t)v->revoker_id.n + 4 + v->revoker_nickname.n;
}

void eng__revoke_rec_encode(unsigned char *p, const struct eng_revoke *v)
{
	p = wr_u8(p, ENG__REC_REVOKE_V1);
	p = wr_u32(p, (uint32_t)v->revoker_role);
	p = wr_u64(p, (uint64_t)v->revoke_time);
	p = wr_str(p, v->revoker_id);
	wr_str(p, v->revoker_nickname);
}

int eng__revoke_rec_decode(const void *val, size_t len, struct eng_revoke *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_REVOKE_V1)
		return IM_EVERSION;
	struct eng_revoke x;
	x.revoker_role = (int32_t)rd_u32(&r);
	x.revoke_time = (int64_t)rd_u64(&r);
	x.revoker_id = rd_id(&r);
	x.revoker_nickname = rd_str(&r, ENG_TEXT_MAX);
	if (r.bad || r.n != 0)
		return IM_ECORRUPT;
	*out = x;
	return 0;
}

/* ---------------------------------------------------------------- groups */

/*
 * groups value: format u8 | member_count u32 | status i32 | group_type i32 |
 * need_verification i32 | look_member_info i32 | apply_member_friend i32 |
 * create_time i64 | notification_update_time i64 | group_name str |
 * notification str | introduction str | face_url str | owner_user_id str | ex
 * str | creator_user_id str | notification_user_id str.  group_id is the key.
 */
#define GROUP_REC_FIXED (1 + 6 * 4 + 2 * 8 + 8 * 4)

size_t eng__group_rec_size(const struct eng_group *g)
{
	return GROUP_REC_FIXED + (size_t)g->group_name.n + g->notification.n + g->introduction.n +
	       g->face_url.n + g->owner_user_id.n + g->ex.n + g->creator_user_id.n +
	       g->notification_user_id.n;
}

void eng__group_rec_encode(unsigned char *p, const struct eng_group *g)
{
	p = wr_u8(p, ENG__REC_GROUP_V1);
	p = wr_u32(p, g->member_count);
	p = wr_u32(p, (uint32_t)g->status);
	p = wr_u32(p, (uint32_t)g->group_type);
	p = wr_u32(p, (uint32_t)g->need_verification);
	p = wr_u32(p, (uint32_t)g->look_member_info);
	p = wr_u32(p, (uint32_t)g->apply_member_friend);
	p = wr_u64(p, (uint64_t)g->create_time);
	p = wr_u64(p, (uint64_t)g->notification_update_time);
	p = wr_str(p, g->group_name);
	p = wr_str(p, g->notification);
	p = wr_str(p, g->introduction);
	p = wr_str(p, g->face_url);
	p = wr_str(p, g->owner_user_id);
	p = wr_str(p, g->ex);
	p = wr_str(p, g->creator_user_id);
	wr_str(p, g->notification_user_id);
}

/* Fills every field but group_id (the key's). */
int eng__group_rec_decode(const void *val, size_t len, struct eng_group *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_GROUP_V1)
		return IM_EVERSION;
	struct eng_group g = {.group_id = out->group_id};
	g.member_count = rd_u32(&r);
	g.status = (int32_t)rd_u32(&r);
	g.group_type = (int32_t)rd_u32(&r);
	g.need_verification = (int32_t)rd_u32(&r);
	g.look_member_info = (int32_t)rd_u32(&r);
	g.apply_member_friend = (int32_t)rd_u32(&r);
	g.create_time = (int64_t)rd_u64(&r);
	g.notification_update_time = (int64_t)rd_u64(&r);
	g.group_name = rd_str(&r, ENG_TEXT_MAX);
	g.notification = rd_str(&r, ENG_TEXT_MAX);
	g.introduction = rd_str(&r, ENG_TEXT_MAX);
	g.face_url = rd_str(&r, ENG_TEXT_MAX);
	g.owner_user_id = rd_id(&r);
	g.ex = rd_str(&r, ENG_TEXT_MAX);
	g.creator_user_id = rd_id(&r);
	g.notification_user_id = rd_id(&r);
	if (r.bad || r.n != 0)
		return IM_ECORRUPT;
	*out = g;
	return 0;
}

/*
 * members value: format u8 | role_level i32 | join_source i32 | join_time i64
 * | mute_end_time i64 | nickname str | face_url str | operator_user_id str |
 * ex str | inviter_user_id str.  group_id and user_id are the key.
 */
#define MEMBER_REC_FIXED (1 + 2 * 4 + 2 * 8 + 5 * 4)

size_t eng__member_rec_size(const struct eng_member *m)
{
	return MEMBER_REC_FIXED + (size_t)m->nickname.n + m->face_url.n + m->operator_user_id.n +
	       m->ex.n + m->inviter_user_id.n;
}

void eng__member_rec_encode(unsigned char *p, const struct eng_member *m)
{
	p = wr_u8(p, ENG__REC_MEMBER_V1);
	p = wr_u32(p, (uint32_t)m->role_level);
	p = wr_u32(p, (uint32_t)m->join_source);
	p = wr_u64(p, (uint64_t)m->join_time);
	p = wr_u64(p, (uint64_t)m->mute_end_time);
	p = wr_str(p, m->nickname);
	p = wr_str(p, m->face_url);
	p = wr_str(p, m->operator_user_id);
	p = wr_str(p, m->ex);
	wr_str(p, m->inviter_user_id);
}

/* Fills every field but group_id and user_id (the key's). */
int eng__member_rec_decode(const void *val, size_t len, struct eng_member *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_MEMBER_V1)
		return IM_EVERSION;
	struct eng_member m = {.group_id = out->group_id, .user_id = out->user_id};
	m.role_level = (int32_t)rd_u32(&r);
	m.join_source = (int32_t)rd_u32(&r);
	m.join_time = (int64_t)rd_u64(&r);
	m.mute_end_time = (int64_t)rd_u64(&r);
	m.nickname = rd_str(&r, ENG_TEXT_MAX);
	m.face_url = rd_str(&r, ENG_TEXT_MAX);
	m.operator_user_id = rd_id(&r);
	m.ex = rd_str(&r, ENG_TEXT_MAX);
	m.inviter_user_id = rd_id(&r);
	if (r.bad || r.n != 0)
		return IM_ECORRUPT;
	*out = m;
	return 0;
}

/*
 * group_reqs value: format u8 | handle_result i32 | join_source i32 |
 * req_time i64 | handle_time i64 | req_msg str | handled_msg str |
 * handle_user_id str | ex str | inviter_user_id str.  group_id and user_id
 * are the key.
 */
#define GREQ_REC_FIXED (1 + 2 * 4 + 2 * 8 + 5 * 4)

size_t eng__greq_rec_size(const struct eng_group_req *q)
{
	return GREQ_REC_FIXED + (size_t)q->req_msg.n + q->handled_msg.n + q->handle_user_id.n +
	       q->ex.n + q->inviter_user_id.n;
}

void eng__greq_rec_encode(unsigned char *p, const struct eng_group_req *q)
{
	p = wr_u8(p, ENG__REC_GREQ_V1);
	p = wr_u32(p, (uint32_t)q->handle_result);
	p = wr_u32(p, (uint32_t)q->join_source);
	p = wr_u64(p, (uint64_t)q->req_time);
	p = wr_u64(p, (uint64_t)q->handle_time);
	p = wr_str(p, q->req_msg);
	p = wr_str(p, q->handled_msg);
	p = wr_str(p, q->handle_user_id);
	p = wr_str(p, q->ex);
	wr_str(p, q->inviter_user_id);
}

/* Fills every field but group_id and user_id (the key's). */
int eng__greq_rec_decode(const void *val, size_t len, struct eng_group_req *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_GREQ_V1)
		return IM_EVERSION;
	struct eng_group_req q = {.group_id = out->group_id, .user_id = out->user_id};
	q.handle_result = (int32_t)rd_u32(&r);
	q.join_source = (int32_t)rd_u32(&r);
	q.req_time = (int64_t)rd_u64(&r);
	q.handle_time = (int64_t)rd_u64(&r);
	q.req_msg = rd_str(&r, ENG_TEXT_MAX);
	q.handled_msg = rd_str(&r, ENG_TEXT_MAX);
	q.handle_user_id = rd_id(&r);
	q.ex = rd_str(&r, ENG_TEXT_MAX);
	q.inviter_user_id = rd_id(&r);
	if (r.bad || r.n != 0 || q.handle_result < -1 || q.handle_result > 1)
		return IM_ECORRUPT;
	*out = q;
	return 0;
}
