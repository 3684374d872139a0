/* rel_rec.c - keys and records of the relations (version logs, friends, requests, blacklists),
 * and the wire form of the relation commands. */
#include <errno.h>

#include "engine_int.h"
#include "rw.h"

/*
 * Layouts (docs/storage.md).  Like msg_rec.c: every record value starts with
 * a format byte, key parts are joined by 0x00, and decoders accept exactly
 * the bytes their encoder writes (short or trailing bytes IM_ECORRUPT, an
 * unknown format byte IM_EVERSION).
 */

/* ---------------------------------------------------------------- version logs */

bool eng__vlog_kind_valid(int kind)
{
	return kind >= ENG_VLOG_FRIEND && kind <= ENG_VLOG_KIND_MAX;
}

/* SplitMix64's finaliser: spreads every input bit over the output. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * FNV-1a over kind | doc | index (u64 BE), then 12 bytes from two mixes of
 * it.  Deterministic, so every node derives the same versionID; a document
 * recreated at another index gets another one (§7.1: that forces a full
 * resync).  Not cryptographic: versionIDs are not secrets.
 */
void eng__vlog_id(uint8_t out[ENG_VLOG_ID_LEN], int kind, struct im_str doc, uint64_t index)
{
	uint64_t h = 0xcbf29ce484222325ull;
	unsigned char ib[8];
	im_put_be64(ib, index);
	h = (h ^ (uint8_t)kind) * 0x100000001b3ull;
	for (uint32_t i = 0; i < doc.n; i++)
		h = (h ^ (uint8_t)doc.p[i]) * 0x100000001b3ull;
	for (int i = 0; i < 8; i++)
		h = (h ^ ib[i]) * 0x100000001b3ull;
	unsigned char b[16];
	im_put_be64(b, mix64(h));
	im_put_be64(b + 8, mix64(h ^ 0x5bd1e9955bd1e995ull));
	memcpy(out, b, ENG_VLOG_ID_LEN);
	/* An all-zero ObjectID reads as "no versionID" to the sync algorithm. */
	bool zero = true;
	for (int i = 0; i < ENG_VLOG_ID_LEN; i++)
		zero = zero && out[i] == 0;
	if (zero)
		out[ENG_VLOG_ID_LEN - 1] = 1;
}

size_t eng__vlog_key(unsigned char *buf, int kind, struct im_str doc)
{
	buf[0] = (unsigned char)kind;
	memcpy(buf + 1, doc.p, doc.n);
	return 1 + (size_t)doc.n;
}

size_t eng__ventry_key(unsigned char *buf, int kind, struct im_str doc, struct im_str elem)
{
	buf[0] = (unsigned char)kind;
	return 1 + eng__key_join(buf + 1, doc, elem);
}

int eng__vlog_key_parse(const void *key, size_t len, int *kind, struct im_str *doc)
{
	const unsigned char *k = key;
	if (len < 2 || !eng__vlog_kind_valid(k[0]))
		return IM_ECORRUPT;
	struct im_str d = {(const char *)k + 1, (uint32_t)(len - 1)};
	if (!eng__id_valid(d))
		return IM_ECORRUPT;
	*kind = k[0];
	*doc = d;
	return 0;
}

/* The doc ends at the first NUL; the element (possibly empty) is the rest. */
int eng__ventry_key_parse(const void *key, size_t len, int *kind, struct im_str *doc,
			  struct im_str *elem)
{
	const unsigned char *k = key;
	if (len < 3 || !eng__vlog_kind_valid(k[0]))
		return IM_ECORRUPT;
	const unsigned char *nul = memchr(k + 1, 0, len - 1);
	if (nul == NULL)
		return IM_ECORRUPT;
	struct im_str d = {(const char *)k + 1, (uint32_t)(nul - k - 1)};
	struct im_str el = {(const char *)nul + 1, (uint32_t)(len - (size_t)(nul - k) - 1)};
	if (!eng__id_valid(d) || el.n > ENG_CONV_ID_MAX)
		return IM_ECORRUPT;
	*kind = k[0];
	*doc = d;
	*elem = el;
	return 0;
}

void eng__vlog_encode(unsigned char p[ENG__VLOG_LEN], const struct eng__vlog *v)
{
	p = wr_u8(p, ENG__REC_VLOG_V1);
	memcpy(p, v->version_id, ENG_VLOG_ID_LEN);
	p += ENG_VLOG_ID_LEN;
	p = wr_u64(p, v->version);
	p = wr_u64(p, v->deleted);
	wr_u64(p, v->bumped_at);
}

int eng__vlog_decode(const void *val, size_t len, struct eng__vlog *out)
{
	const unsigned char *p = val;
	if (len < 1)
		return IM_ECORRUPT;
	if (p[0] != ENG__REC_VLOG_V1)
		return IM_EVERSION;
	if (len != ENG__VLOG_LEN)
		return IM_ECORRUPT;
	memcpy(out->version_id, p + 1, ENG_VLOG_ID_LEN);
	p += 1 + ENG_VLOG_ID_LEN;
	out->version = im_get_be64(p);
	out->deleted = im_get_be64(p + 8);
	out->bumped_at = im_get_be64(p + 16);
	return 0;
}

void eng__ventry_encode(unsigned char p[ENG__VENTRY_LEN], const struct eng__ventry *v)
{
	p = wr_u8(p, ENG__REC_VENTRY_V1);
	p = wr_u8(p, (uint8_t)v->state);
	p = wr_u64(p, v->version);
	wr_u64(p, (uint64_t)v->last_update);
}

int eng__ventry_decode(const void *val, size_t len, struct eng__ventry *out)
{
	const unsigned char *p = val;
	if (len < 1)
		return IM_ECORRUPT;
	if (p[0] != ENG__REC_VENTRY_V1)
		return IM_EVERSION;
	if (len != ENG__VENTRY_LEN || p[1] < ENG_VLOG_INSERT || p[1] > ENG_VLOG_UPDATE)
		return IM_ECORRUPT;
	out->state = p[1];
	out->version = im_get_be64(p + 2);
	out->last_update = (int64_t)im_get_be64(p + 10);
	return 0;
}

/* ---------------------------------------------------------------- friends */

/*
 * friends value: format u8 | create_time i64 | add_source i32 | is_pinned u8 |
 * remark str | operator_user_id str | ex str.
 */
#define FRIEND_REC_FIXED (1 + 8 + 4 + 1 + 3 * 4)

size_t eng__friend_rec_size(const struct eng_friend *f)
{
	return FRIEND_REC_FIXED + (size_t)f->remark.n + f->operator_user_id.n + f->ex.n;
}

void eng__friend_rec_encode(unsigned char *p, const struct eng_friend *f)
{
	p = wr_u8(p, ENG__REC_FRIEND_V1);
	p = wr_u64(p, (uint64_t)f->create_time);
	p = wr_u32(p, (uint32_t)f->add_source);
	p = wr_u8(p, f->is_pinned);
	p = wr_str(p, f->remark);
	p = wr_str(p, f->operator_user_id);
	wr_str(p, f->ex);
}

/* Fills every field but owner_user_id and friend_user_id (the key's). */
int eng__friend_rec_decode(const void *val, size_t len, struct eng_friend *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_FRIEND_V1)
		return IM_EVERSION;
	struct eng_friend f = {.owner_user_id = out->owner_user_id,
			       .friend_user_id = out->friend_user_id};
	f.create_time = (int64_t)rd_u64(&r);
	f.add_source = (int32_t)rd_u32(&r);
	f.is_pinned = rd_bool(&r);
	f.remark = rd_str(&r, ENG_TEXT_MAX);
	f.operator_user_id = rd_id(&r);
	f.ex = rd_str(&r, ENG_TEXT_MAX);
	if (r.bad || r.n != 0)
		return IM_ECORRUPT;
	*out = f;
	return 0;
}

/*
 * friend_reqs value: format u8 | handle_result i32 | create_time i64 |
 * handle_time i64 | req_msg str | handler_user_id str | handle_msg str | ex str.
 */
#define FREQ_REC_FIXED (1 + 4 + 2 * 8 + 4 * 4)

size_t eng__freq_rec_size(const struct eng_friend_req *q)
{
	return FREQ_REC_FIXED + (size_t)q->req_msg.n + q->handler_user_id.n + q->handle_msg.n +
	       q->ex.n;
}

void eng__freq_rec_encode(unsigned char *p, const struct eng_friend_req *q)
{
	p = wr_u8(p, ENG__REC_FREQ_V1);
	p = wr_u32(p, (uint32_t)q->handle_result);
	p = wr_u64(p, (uint64_t)q->create_time);
	p = wr_u64(p, (uint64_t)q->handle_time);
	p = wr_str(p, q->req_msg);
	p = wr_str(p, q->handler_user_id);
	p = wr_str(p, q->handle_msg);
	wr_str(p, q->ex);
}

/* Fills every field but from_user_id and to_user_id (the key's). */
int eng__freq_rec_decode(const void *val, size_t len, struct eng_friend_req *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_FREQ_V1)
		return IM_EVERSION;
	struct eng_friend_req q = {.from_user_id = out->from_user_id,
				   .to_user_id = out->to_user_id};
	q.handle_result = (int32_t)rd_u32(&r);
	q.create_time = (int64_t)rd_u64(&r);
	q.handle_time = (int64_t)rd_u64(&r);
	q.req_msg = rd_str(&r, ENG_TEXT_MAX);
	q.handler_user_id = rd_id(&r);
	q.handle_msg = rd_str(&r, ENG_TEXT_MAX);
	q.ex = rd_str(&r, ENG_TEXT_MAX);
	if (r.bad || r.n != 0 || q.handle_result < -1 || q.handle_result > 1)
		return IM_ECORRUPT;
	*out = q;
	return 0;
}

/* blacks value: format u8 | create_time i64 | add_source i32 | operator_user_id str | ex str. */
#define BLACK_REC_FIXED (1 + 8 + 4 + 2 * 4)

size_t eng__black_rec_size(const struct eng_black *b)
{
	return BLACK_REC_FIXED + (size_t)b->operator_user_id.n + b->ex.n;
}

void eng__black_rec_encode(unsigned char *p, const struct eng_black *b)
{
	p = wr_u8(p, ENG__REC_BLACK_V1);
	p = wr_u64(p, (uint64_t)b->create_time);
	p = wr_u32(p, (uint32_t)b->add_source);
	p = wr_str(p, b->operator_user_id);
	wr_str(p, b->ex);
}

/* Fills every field but owner_user_id and block_user_id (the key's). */
int eng__black_rec_decode(const void *val, size_t len, struct eng_black *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_BLACK_V1)
		return IM_EVERSION;
	struct eng_black b = {.owner_user_id = out->owner_user_id,
			      .block_user_id = out->block_user_id};
	b.create_time = (int64_t)rd_u64(&r);
	b.add_source = (int32_t)rd_u32(&r);
	b.operator_user_id = rd_id(&r);
	b.ex = rd_str(&r, ENG_TEXT_MAX);
	if (r.bad || r.n != 0)
		return IM_ECORRUPT;
	*out = b;
	return 0;
}

/* ---------------------------------------------------------------- command wire form */

/*
 * After now_ms (docs/storage.md, Commands):
 *   friend_apply    from str | to str | req_msg str | ex str
 *   friend_respond  from str | to str | handle_result i32 | handle_msg str
 *   friend_delete   owner str | friend str
 *   friend_update   owner str | n u32 | friend strs | mask u32 | remark str | ex str |
 *                   is_pinned bool
 *   friend_import   owner str | n u32 | friend strs | operator str
 *   black_add       owner str | black str | ex str | operator str
 *   black_remove    owner str | black str
 * Ids are at most ENG_ID_MAX bytes without NUL (empty ones are apply's to
 * reject), texts at most ENG_TEXT_MAX, n at most ENG_FRIENDS_MAX.
 */

bool eng__rel_cmd_type(int type)
{
	return type >= ENG_CMD_FRIEND_APPLY && type <= ENG_CMD_BLACK_REMOVE;
}

static bool id_ok(struct im_str s)
{
	return s.n <= ENG_ID_MAX && (s.n == 0 || memchr(s.p, 0, s.n) == NULL);
}

static bool text_ok(struct im_str s)
{
	return s.n <= ENG_TEXT_MAX;
}

static uint64_t ws(struct im_str s)
{
	return 4 + (uint64_t)s.n;
}

/* A friend list: bounded, not NULL when non-empty, ids; *size gets its wire size. */
static bool ids_ok(uint32_t n, const struct im_str *ids, uint64_t *size)
{
	if (n > ENG_FRIENDS_MAX || (n > 0 && ids == NULL))
		return false;
	*size = 4;
	for (uint32_t i = 0; i < n; i++) {
		if (!id_ok(ids[i]))
			return false;
		*size += ws(ids[i]);
	}
	return true;
}

static unsigned char *wr_ids(unsigned char *p, uint32_t n, const struct im_str *ids)
{
	p = wr_u32(p, n);
	for (uint32_t i = 0; i < n; i++)
		p = wr_str(p, ids[i]);
	return p;
}

/* n u32 (<= ENG_FRIENDS_MAX, bounded by the bytes left) and n ids. */
static int rd_ids(struct rd *r, struct eng_cmd *cmd, uint32_t *n_out, struct im_str **out)
{
	uint32_t n = rd_u32(r);
	if (r->bad || n > ENG_FRIENDS_MAX || (uint64_t)n * 4 > r->n)
		return IM_ECORRUPT;
	struct im_str *ids = NULL;
	if (n > 0 && (ids = eng__cmd_alloc(cmd, n, sizeof(*ids))) == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && !r->bad; i++)
		ids[i] = rd_id(r);
	*n_out = n;
	*out = ids;
	return 0;
}

int eng__rel_fields_size(const struct eng_cmd *cmd, uint64_t *out)
{
	const union eng_rel_cmd *c = &cmd->r;
	uint64_t n = 0, ln;
	switch (cmd->type) {
	case ENG_CMD_FRIEND_APPLY:
		if (!id_ok(c->friend_apply.from_user_id) || !id_ok(c->friend_apply.to_user_id) ||
		    !text_ok(c->friend_apply.req_msg) || !text_ok(c->friend_apply.ex))
			return IM_EINVAL;
		n = ws(c->friend_apply.from_user_id) + ws(c->friend_apply.to_user_id) +
		    ws(c->friend_apply.req_msg) + ws(c->friend_apply.ex);
		break;
	case ENG_CMD_FRIEND_RESPOND:
		if (!id_ok(c->friend_respond.from_user_id) ||
		    !id_ok(c->friend_respond.to_user_id) || !text_ok(c->friend_respond.handle_msg))
			return IM_EINVAL;
		n = ws(c->friend_respond.from_user_id) + ws(c->friend_respond.to_user_id) + 4 +
		    ws(c->friend_respond.handle_msg);
		break;
	case ENG_CMD_FRIEND_DELETE:
		if (!id_ok(c->friend_delete.owner_user_id) ||
		    !id_ok(c->friend_delete.friend_user_id))
			return IM_EINVAL;
		n = ws(c->friend_delete.owner_user_id) + ws(c->friend_delete.friend_user_id);
		break;
	case ENG_CMD_FRIEND_UPDATE:
		if (!id_ok(c->friend_update.owner_user_id) ||
		    !ids_ok(c->friend_update.n_friends, c->friend_update.friend_user_ids, &ln) ||
		    !text_ok(c->friend_update.remark) || !text_ok(c->friend_update.ex))
			return IM_EINVAL;
		n = ws(c->friend_update.owner_user_id) + ln + 4 + ws(c->friend_update.remark) +
		    ws(c->friend_update.ex) + 1;
		break;
	case ENG_CMD_FRIEND_IMPORT:
		if (!id_ok(c->friend_import.owner_user_id) ||
		    !ids_ok(c->friend_import.n_friends, c->friend_import.friend_user_ids, &ln) ||
		    !id_ok(c->friend_import.operator_user_id))
			return IM_EINVAL;
		n = ws(c->friend_import.owner_user_id) + ln + ws(c->friend_import.operator_user_id);
		break;
	case ENG_CMD_BLACK_ADD:
		if (!id_ok(c->black_add.owner_user_id) || !id_ok(c->black_add.black_user_id) ||
		    !text_ok(c->black_add.ex) || !id_ok(c->black_add.operator_user_id))
			return IM_EINVAL;
		n = ws(c->black_add.owner_user_id) + ws(c->black_add.black_user_id) +
		    ws(c->black_add.ex) + ws(c->black_add.operator_user_id);
		break;
	case ENG_CMD_BLACK_REMOVE:
		if (!id_ok(c->black_remove.owner_user_id) || !id_ok(c->black_remove.black_user_id))
			return IM_EINVAL;
		n = ws(c->black_remove.owner_user_id) + ws(c->black_remove.black_user_id);
		break;
	default:
		return IM_EINVAL;
	}
	*out = n;
	return 0;
}

unsigned char *eng__rel_fields_write(unsigned char *p, const struct eng_cmd *cmd)
{
	const union eng_rel_cmd *c = &cmd->r;
	switch (cmd->type) {
	case ENG_CMD_FRIEND_APPLY:
		p = wr_str(p, c->friend_apply.from_user_id);
		p = wr_str(p, c->friend_apply.to_user_id);
		p = wr_str(p, c->friend_apply.req_msg);
		return wr_str(p, c->friend_apply.ex);
	case ENG_CMD_FRIEND_RESPOND:
		p = wr_str(p, c->friend_respond.from_user_id);
		p = wr_str(p, c->friend_respond.to_user_id);
		p = wr_u32(p, (uint32_t)c->friend_respond.handle_result);
		return wr_str(p, c->friend_respond.handle_msg);
	case ENG_CMD_FRIEND_DELETE:
		p = wr_str(p, c->friend_delete.owner_user_id);
		return wr_str(p, c->friend_delete.friend_user_id);
	case ENG_CMD_FRIEND_UPDATE:
		p = wr_str(p, c->friend_update.owner_user_id);
		p = wr_ids(p, c->friend_update.n_friends, c->friend_update.friend_user_ids);
		p = wr_u32(p, c->friend_update.mask);
		p = wr_str(p, c->friend_update.remark);
		p = wr_str(p, c->friend_update.ex);
		return wr_u8(p, c->friend_update.is_pinned);
	case ENG_CMD_FRIEND_IMPORT:
		p = wr_str(p, c->friend_import.owner_user_id);
		p = wr_ids(p, c->friend_import.n_friends, c->friend_import.friend_user_ids);
		return wr_str(p, c->friend_import.operator_user_id);
	case ENG_CMD_BLACK_ADD:
		p = wr_str(p, c->black_add.owner_user_id);
		p = wr_str(p, c->black_add.black_user_id);
		p = wr_str(p, c->black_add.ex);
		return wr_str(p, c->black_add.operator_user_id);
	case ENG_CMD_BLACK_REMOVE:
		p = wr_str(p, c->black_remove.owner_user_id);
		return wr_str(p, c->black_remove.black_user_id);
	default:
		return p;
	}
}

int eng__rel_fields_read(struct rd *r, struct eng_cmd *cmd)
{
	union eng_rel_cmd *c = &cmd->r;
	int rv = 0;
	switch (cmd->type) {
	case ENG_CMD_FRIEND_APPLY:
		c->friend_apply.from_user_id = rd_id(r);
		c->friend_apply.to_user_id = rd_id(r);
		c->friend_apply.req_msg = rd_str(r, ENG_TEXT_MAX);
		c->friend_apply.ex = rd_str(r, ENG_TEXT_MAX);
		break;
	case ENG_CMD_FRIEND_RESPOND:
		c->friend_respond.from_user_id = rd_id(r);
		c->friend_respond.to_user_id = rd_id(r);
		c->friend_respond.handle_result = (int32_t)rd_u32(r);
		c->friend_respond.handle_msg = rd_str(r, ENG_TEXT_MAX);
		break;
	case ENG_CMD_FRIEND_DELETE:
		c->friend_delete.owner_user_id = rd_id(r);
		c->friend_delete.friend_user_id = rd_id(r);
		break;
	case ENG_CMD_FRIEND_UPDATE:
		c->friend_update.owner_user_id = rd_id(r);
		rv = rd_ids(r, cmd, &c->friend_update.n_friends, &c->friend_update.friend_user_ids);
		c->friend_update.mask = rd_u32(r);
		c->friend_update.remark = rd_str(r, ENG_TEXT_MAX);
		c->friend_update.ex = rd_str(r, ENG_TEXT_MAX);
		c->friend_update.is_pinned = rd_bool(r);
		break;
	case ENG_CMD_FRIEND_IMPORT:
		c->friend_import.owner_user_id = rd_id(r);
		rv = rd_ids(r, cmd, &c->friend_import.n_friends, &c->friend_import.friend_user_ids);
		c->friend_import.operator_user_id = rd_id(r);
		break;
	case ENG_CMD_BLACK_ADD:
		c->black_add.owner_user_id = rd_id(r);
		c->black_add.black_user_id = rd_id(r);
		c->black_add.ex = rd_str(r, ENG_TEXT_MAX);
		c->black_add.operator_user_id = rd_id(r);
		break;
	case ENG_CMD_BLACK_REMOVE:
		c->black_remove.owner_user_id = rd_id(r);
		c->black_remove.black_user_id = rd_id(r);
		break;
	default:
		return IM_ECORRUPT;
	}
	return rv;
}
