/* codec.c - the command wire format (Raft entries) and the on-disk records of users and tokens. */
#include <errno.h>

#include "engine_int.h"
#include "rw.h"

/*
 * Command layout (docs/storage.md):
 *
 *   0  'I' 'M'            magic
 *   2  version u8         ENG__CMD_VERSION
 *   3  type u8            enum eng_cmd_type
 *   4  payload len u32 BE exactly len - 12
 *   8  CRC-32 u32 BE      over bytes 0..7 and the payload
 *  12  payload            now_ms i64 BE, the type's fields, the items tail
 *
 * The items tail ends every payload, whatever the type: n_items u32 BE
 * (<= ENG_ITEMS_MAX), then the items (eng__item_write).  The CRC covers the
 * first eight header bytes as well as the payload, so a flipped type byte
 * (user_register <-> user_update have the same shape) is caught like any
 * other flip.  Every integer is big-endian; a string is a u32 BE length and
 * its bytes; a bool one byte, 0 or 1.  The encoding is canonical: decoding and
 * encoding again gives the same bytes, which the fuzzer checks.
 *
 * Version 2 added the items tail and token_kick's except_token.  Nothing had
 * been deployed with version 1, so version 1 is refused (IM_EVERSION) rather
 * than translated.  Version 3 added group_members_add's hide_history byte
 * (after the members) and the types 25..30; a version 2 entry still decodes
 * (Raft logs written before must replay), its group_members_add with
 * hide_history false.  The encoder writes version 3 only, so the encoding is
 * canonical for version 3 entries.
 */
#define ENG__CMD_VERSION     3
#define ENG__CMD_VERSION_OLD 2

bool eng__id_valid(struct im_str id)
{
	return id.n >= 1 && id.n <= ENG_ID_MAX && memchr(id.p, 0, id.n) == NULL;
}

bool eng__conv_id_valid(struct im_str c)
{
	return c.n >= 1 && c.n <= ENG_CONV_ID_MAX && memchr(c.p, 0, c.n) == NULL;
}

/* Encode-side check of a key part of at most max bytes: no NUL, empty allowed. */
static bool key_ok(struct im_str s, uint32_t max)
{
	return s.n <= max && (s.n == 0 || memchr(s.p, 0, s.n) == NULL);
}

/* Encode-side check of an identifier: empty is allowed (apply rejects it). */
static bool id_ok(struct im_str id)
{
	return key_ok(id, ENG_ID_MAX);
}

static bool text_ok(struct im_str s)
{
	return s.n <= ENG_TEXT_MAX;
}

/* Wire size of a string. */
static uint64_t ws(struct im_str s)
{
	return 4 + (uint64_t)s.n;
}

/* ---------------------------------------------------------------- decode arrays */

/*
 * Arrays of a decoded command live in blocks chained from cmd->alloc, so a
 * command with several arrays (items and seqs, ...) is freed in one call.
 */
union blk {
	union blk *next;
	max_align_t align;
};

/* n elements of size bytes, zeroed; the caller bounded n by the payload. */
static void *cmd_alloc(struct eng_cmd *cmd, size_t n, size_t size)
{
	union blk *b = im_calloc(1, sizeof(*b) + n * size);
	if (b == NULL)
		return NULL;
	b->next = cmd->alloc;
	cmd->alloc = b;
	return b + 1;
}

void *eng__cmd_alloc(struct eng_cmd *cmd, size_t n, size_t size)
{
	return cmd_alloc(cmd, n, size);
}

/* ---------------------------------------------------------------- users */

static bool user_ok(const struct eng_user *u)
{
	return id_ok(u->user_id) && text_ok(u->nickname) && text_ok(u->face_url) && text_ok(u->ex);
}

/* Wire size of a user: four strings, create_time, two i32. */
static uint64_t user_wire_size(const struct eng_user *u)
{
	return 16 + (uint64_t)u->user_id.n + u->nickname.n + u->face_url.n + u->ex.n + 8 + 4 + 4;
}

static unsigned char *wr_user(unsigned char *p, const struct eng_user *u)
{
	p = wr_str(p, u->user_id);
	p = wr_str(p, u->nickname);
	p = wr_str(p, u->face_url);
	p = wr_str(p, u->ex);
	p = wr_u64(p, (uint64_t)u->create_time);
	p = wr_u32(p, (uint32_t)u->app_manger_level);
	return wr_u32(p, (uint32_t)u->global_recv_msg_opt);
}

static void rd_user(struct rd *r, struct eng_user *u)
{
	u->user_id = rd_id(r);
	u->nickname = rd_str(r, ENG_TEXT_MAX);
	u->face_url = rd_str(r, ENG_TEXT_MAX);
	u->ex = rd_str(r, ENG_TEXT_MAX);
	u->create_time = (int64_t)rd_u64(r);
	u->app_manger_level = (int32_t)rd_u32(r);
	u->global_recv_msg_opt = (int32_t)rd_u32(r);
}

/* The smallest wire user: four empty strings and the integers. */
#define USER_WIRE_MIN 32

/* Encode-side check of the fields `type` carries; empty ids are apply's to reject. */
static bool ucmd_ok(int type, const struct eng_user_cmd *c)
{
	if (!id_ok(c->user_id) || !id_ok(c->uuid))
		return false;
	return type == ENG_CMD_USER_CMD_DEL || (text_ok(c->value) && text_ok(c->ex));
}

/*
 * Wire size of a user command of `type`: [mask u32 (update)] | user_id str |
 * type i32 | uuid str | [value str | ex str (add, update)].  create_time is
 * not sent: apply stamps the command's now_ms.
 */
static uint64_t ucmd_wire_size(int type, const struct eng_user_cmd *c)
{
	uint64_t n = 4 + (uint64_t)c->user_id.n + 4 + 4 + c->uuid.n;
	if (type == ENG_CMD_USER_CMD_UPDATE)
		n += 4;
	if (type != ENG_CMD_USER_CMD_DEL)
		n += 8 + (uint64_t)c->value.n + c->ex.n;
	return n;
}

static unsigned char *wr_ucmd(unsigned char *p, int type, uint32_t mask,
			      const struct eng_user_cmd *c)
{
	if (type == ENG_CMD_USER_CMD_UPDATE)
		p = wr_u32(p, mask);
	p = wr_str(p, c->user_id);
	p = wr_u32(p, (uint32_t)c->type);
	p = wr_str(p, c->uuid);
	if (type == ENG_CMD_USER_CMD_DEL)
		return p;
	p = wr_str(p, c->value);
	return wr_str(p, c->ex);
}

/* The fields ADD and DEL do not carry stay zero. */
static void rd_ucmd(struct rd *r, int type, uint32_t *mask, struct eng_user_cmd *c)
{
	if (type == ENG_CMD_USER_CMD_UPDATE)
		*mask = rd_u32(r);
	c->user_id = rd_id(r);
	c->type = (int32_t)rd_u32(r);
	c->uuid = rd_id(r);
	if (type == ENG_CMD_USER_CMD_DEL)
		return;
	c->value = rd_str(r, ENG_TEXT_MAX);
	c->ex = rd_str(r, ENG_TEXT_MAX);
}

/* ---------------------------------------------------------------- message items */

/*
 * An item: conv_id str | send_id str | recv_id str | group_id str |
 * client_msg_id str | server_msg_id str | op_id str | session_type i32 |
 * content_type i32 | send_time i64 | flags u32 | data str.
 */
#define ITEM_WIRE_MIN (8 * 4 + 4 + 4 + 8 + 4)

static bool item_ok(const struct eng_msg_item *it)
{
	return key_ok(it->conv_id, ENG_CONV_ID_MAX) && id_ok(it->send_id) && id_ok(it->recv_id) &&
	       id_ok(it->group_id) && id_ok(it->client_msg_id) &&
	       key_ok(it->server_msg_id, ENG_SERVER_MSG_ID_MAX) && it->op_id.n <= ENG_ID_MAX &&
	       it->data.n <= ENG_MSG_MAX;
}

uint64_t eng__item_wire_size(const struct eng_msg_item *it)
{
	return ITEM_WIRE_MIN + (uint64_t)it->conv_id.n + it->send_id.n + it->recv_id.n +
	       it->group_id.n + it->client_msg_id.n + it->server_msg_id.n + it->op_id.n +
	       it->data.n;
}

unsigned char *eng__item_write(unsigned char *p, const struct eng_msg_item *it)
{
	p = wr_str(p, it->conv_id);
	p = wr_str(p, it->send_id);
	p = wr_str(p, it->recv_id);
	p = wr_str(p, it->group_id);
	p = wr_str(p, it->client_msg_id);
	p = wr_str(p, it->server_msg_id);
	p = wr_str(p, it->op_id);
	p = wr_u32(p, (uint32_t)it->session_type);
	p = wr_u32(p, (uint32_t)it->content_type);
	p = wr_u64(p, (uint64_t)it->send_time);
	p = wr_u32(p, it->flags);
	return wr_str(p, it->data);
}

void eng__item_read(struct rd *r, struct eng_msg_item *it)
{
	it->conv_id = rd_key(r, ENG_CONV_ID_MAX);
	it->send_id = rd_id(r);
	it->recv_id = rd_id(r);
	it->group_id = rd_id(r);
	it->client_msg_id = rd_id(r);
	it->server_msg_id = rd_key(r, ENG_SERVER_MSG_ID_MAX);
	it->op_id = rd_str(r, ENG_ID_MAX);
	it->session_type = (int32_t)rd_u32(r);
	it->content_type = (int32_t)rd_u32(r);
	it->send_time = (int64_t)rd_u64(r);
	it->flags = rd_u32(r);
	it->data = rd_str(r, ENG_MSG_MAX);
}

/* ---------------------------------------------------------------- conversations */

/*
 * A conversation of conv_set: conversation_id str | conversation_type i32 |
 * user_id str | group_id str | recv_msg_opt i32 | is_pinned u8 |
 * attached_info str | is_private_chat u8 | group_at_type i32 | ex str |
 * burn_duration i32 | min_seq i64 | max_seq i64 | msg_destruct_time i64 |
 * latest_msg_destruct_time i64 | is_msg_destruct u8.  owner_user_id (each
 * owner) and create_time (apply's now_ms) are not sent.
 */
static bool conv_ok(const struct eng_conv *c)
{
	return key_ok(c->conversation_id, ENG_CONV_ID_MAX) && id_ok(c->user_id) &&
	       id_ok(c->group_id) && text_ok(c->attached_info) && text_ok(c->ex);
}

static uint64_t conv_wire_size(const struct eng_conv *c)
{
	return ws(c->conversation_id) + ws(c->user_id) + ws(c->group_id) + ws(c->attached_info) +
	       ws(c->ex) + 4 * 4 + 3 + 4 * 8;
}

static unsigned char *wr_conv(unsigned char *p, const struct eng_conv *c)
{
	p = wr_str(p, c->conversation_id);
	p = wr_u32(p, (uint32_t)c->conversation_type);
	p = wr_str(p, c->user_id);
	p = wr_str(p, c->group_id);
	p = wr_u32(p, (uint32_t)c->recv_msg_opt);
	p = wr_u8(p, c->is_pinned);
	p = wr_str(p, c->attached_info);
	p = wr_u8(p, c->is_private_chat);
	p = wr_u32(p, (uint32_t)c->group_at_type);
	p = wr_str(p, c->ex);
	p = wr_u32(p, (uint32_t)c->burn_duration);
	p = wr_u64(p, (uint64_t)c->min_seq);
	p = wr_u64(p, (uint64_t)c->max_seq);
	p = wr_u64(p, (uint64_t)c->msg_destruct_time);
	p = wr_u64(p, (uint64_t)c->latest_msg_destruct_time);
	return wr_u8(p, c->is_msg_destruct);
}

static void rd_conv(struct rd *r, struct eng_conv *c)
{
	c->conversation_id = rd_key(r, ENG_CONV_ID_MAX);
	c->conversation_type = (int32_t)rd_u32(r);
	c->user_id = rd_id(r);
	c->group_id = rd_id(r);
	c->recv_msg_opt = (int32_t)rd_u32(r);
	c->is_pinned = rd_bool(r);
	c->attached_info = rd_str(r, ENG_TEXT_MAX);
	c->is_private_chat = rd_bool(r);
	c->group_at_type = (int32_t)rd_u32(r);
	c->ex = rd_str(r, ENG_TEXT_MAX);
	c->burn_duration = (int32_t)rd_u32(r);
	c->min_seq = (int64_t)rd_u64(r);
	c->max_seq = (int64_t)rd_u64(r);
	c->msg_destruct_time = (int64_t)rd_u64(r);
	c->latest_msg_destruct_time = (int64_t)rd_u64(r);
	c->is_msg_destruct = rd_bool(r);
}

/* ---------------------------------------------------------------- groups */

/*
 * A group: group_id str | group_name str | notification str | introduction str
 * | face_url str | owner_user_id str | create_time i64 | ex str | status i32 |
 * creator_user_id str | group_type i32 | need_verification i32 |
 * look_member_info i32 | apply_member_friend i32 | notification_update_time
 * i64 | notification_user_id str.  member_count is apply's: not sent.
 */
static bool group_ok(const struct eng_group *g)
{
	return id_ok(g->group_id) && text_ok(g->group_name) && text_ok(g->notification) &&
	       text_ok(g->introduction) && text_ok(g->face_url) && id_ok(g->owner_user_id) &&
	       text_ok(g->ex) && id_ok(g->creator_user_id) && id_ok(g->notification_user_id);
}

static uint64_t group_wire_size(const struct eng_group *g)
{
	return ws(g->group_id) + ws(g->group_name) + ws(g->notification) + ws(g->introduction) +
	       ws(g->face_url) + ws(g->owner_user_id) + ws(g->ex) + ws(g->creator_user_id) +
	       ws(g->notification_user_id) + 2 * 8 + 5 * 4;
}

static unsigned char *wr_group(unsigned char *p, const struct eng_group *g)
{
	p = wr_str(p, g->group_id);
	p = wr_str(p, g->group_name);
	p = wr_str(p, g->notification);
	p = wr_str(p, g->introduction);
	p = wr_str(p, g->face_url);
	p = wr_str(p, g->owner_user_id);
	p = wr_u64(p, (uint64_t)g->create_time);
	p = wr_str(p, g->ex);
	p = wr_u32(p, (uint32_t)g->status);
	p = wr_str(p, g->creator_user_id);
	p = wr_u32(p, (uint32_t)g->group_type);
	p = wr_u32(p, (uint32_t)g->need_verification);
	p = wr_u32(p, (uint32_t)g->look_member_info);
	p = wr_u32(p, (uint32_t)g->apply_member_friend);
	p = wr_u64(p, (uint64_t)g->notification_update_time);
	return wr_str(p, g->notification_user_id);
}

static void rd_group(struct rd *r, struct eng_group *g)
{
	g->group_id = rd_id(r);
	g->group_name = rd_str(r, ENG_TEXT_MAX);
	g->notification = rd_str(r, ENG_TEXT_MAX);
	g->introduction = rd_str(r, ENG_TEXT_MAX);
	g->face_url = rd_str(r, ENG_TEXT_MAX);
	g->owner_user_id = rd_id(r);
	g->create_time = (int64_t)rd_u64(r);
	g->ex = rd_str(r, ENG_TEXT_MAX);
	g->status = (int32_t)rd_u32(r);
	g->creator_user_id = rd_id(r);
	g->group_type = (int32_t)rd_u32(r);
	g->need_verification = (int32_t)rd_u32(r);
	g->look_member_info = (int32_t)rd_u32(r);
	g->apply_member_friend = (int32_t)rd_u32(r);
	g->notification_update_time = (int64_t)rd_u64(r);
	g->notification_user_id = rd_id(r);
}

/*
 * A member of group_create: user_id str | role_level i32 | join_time i64 |
 * nickname str | face_url str | join_source i32 | operator_user_id str | ex str
 * | mute_end_time i64 | inviter_user_id str.  group_id is the group's: not
 * sent, and decoded as a view of the group's id.
 */
#define MEMBER_WIRE_MIN (6 * 4 + 2 * 4 + 2 * 8)

static bool member_ok(const struct eng_member *m)
{
	return id_ok(m->user_id) && text_ok(m->nickname) && text_ok(m->face_url) &&
	       id_ok(m->operator_user_id) && text_ok(m->ex) && id_ok(m->inviter_user_id);
}

static uint64_t member_wire_size(const struct eng_member *m)
{
	return MEMBER_WIRE_MIN + (uint64_t)m->user_id.n + m->nickname.n + m->face_url.n +
	       m->operator_user_id.n + m->ex.n + m->inviter_user_id.n;
}

static unsigned char *wr_member(unsigned char *p, const struct eng_member *m)
{
	p = wr_str(p, m->user_id);
	p = wr_u32(p, (uint32_t)m->role_level);
	p = wr_u64(p, (uint64_t)m->join_time);
	p = wr_str(p, m->nickname);
	p = wr_str(p, m->face_url);
	p = wr_u32(p, (uint32_t)m->join_source);
	p = wr_str(p, m->operator_user_id);
	p = wr_str(p, m->ex);
	p = wr_u64(p, (uint64_t)m->mute_end_time);
	return wr_str(p, m->inviter_user_id);
}

static void rd_member(struct rd *r, struct eng_member *m)
{
	m->user_id = rd_id(r);
	m->role_level = (int32_t)rd_u32(r);
	m->join_time = (int64_t)rd_u64(r);
	m->nickname = rd_str(r, ENG_TEXT_MAX);
	m->face_url = rd_str(r, ENG_TEXT_MAX);
	m->join_source = (int32_t)rd_u32(r);
	m->operator_user_id = rd_id(r);
	m->ex = rd_str(r, ENG_TEXT_MAX);
	m->mute_end_time = (int64_t)rd_u64(r);
	m->inviter_user_id = rd_id(r);
}

/*
 * A join request of group_req_put: group_id str | user_id str | req_msg str |
 * req_time i64 | ex str | join_source i32 | inviter_user_id str.  The handle
 * fields are not sent: apply stores the request as pending.
 */
#define GREQ_WIRE_MIN (5 * 4 + 8 + 4)

static bool greq_ok(const struct eng_group_req *q)
{
	return id_ok(q->group_id) && id_ok(q->user_id) && text_ok(q->req_msg) && text_ok(q->ex) &&
	       id_ok(q->inviter_user_id);
}

static uint64_t greq_wire_size(const struct eng_group_req *q)
{
	return GREQ_WIRE_MIN + (uint64_t)q->group_id.n + q->user_id.n + q->req_msg.n + q->ex.n +
	       q->inviter_user_id.n;
}

static unsigned char *wr_greq(unsigned char *p, const struct eng_group_req *q)
{
	p = wr_str(p, q->group_id);
	p = wr_str(p, q->user_id);
	p = wr_str(p, q->req_msg);
	p = wr_u64(p, (uint64_t)q->req_time);
	p = wr_str(p, q->ex);
	p = wr_u32(p, (uint32_t)q->join_source);
	return wr_str(p, q->inviter_user_id);
}

static void rd_greq(struct rd *r, struct eng_group_req *q)
{
	q->group_id = rd_id(r);
	q->user_id = rd_id(r);
	q->req_msg = rd_str(r, ENG_TEXT_MAX);
	q->req_time = (int64_t)rd_u64(r);
	q->ex = rd_str(r, ENG_TEXT_MAX);
	q->join_source = (int32_t)rd_u32(r);
	q->inviter_user_id = rd_id(r);
}

/* ---------------------------------------------------------------- seq lists */

static unsigned char *wr_seqs(unsigned char *p, uint32_t n, const int64_t *seqs)
{
	p = wr_u32(p, n);
	for (uint32_t i = 0; i < n; i++)
		p = wr_u64(p, (uint64_t)seqs[i]);
	return p;
}

/* n u32 (<= ENG_SEQS_MAX) and n i64: 0, IM_ECORRUPT or -ENOMEM. */
static int rd_seqs(struct rd *r, struct eng_cmd *cmd, uint32_t *n_out, int64_t **out)
{
	uint32_t n = rd_u32(r);
	if (r->bad || n > ENG_SEQS_MAX || (uint64_t)n * 8 > r->n)
		return IM_ECORRUPT;
	int64_t *seqs = NULL;
	if (n > 0 && (seqs = cmd_alloc(cmd, n, sizeof(*seqs))) == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		seqs[i] = (int64_t)rd_u64(r);
	*n_out = n;
	*out = seqs;
	return 0;
}

/* n u32 (<= max) and n strings (keys of at most kmax bytes, no NUL). */
static int rd_keys(struct rd *r, struct eng_cmd *cmd, uint32_t max, uint32_t kmax, uint32_t *n_out,
		   struct im_str **out)
{
	uint32_t n = rd_u32(r);
	if (r->bad || n > max || (uint64_t)n * 4 > r->n)
		return IM_ECORRUPT;
	struct im_str *keys = NULL;
	if (n > 0 && (keys = cmd_alloc(cmd, n, sizeof(*keys))) == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && !r->bad; i++)
		keys[i] = rd_key(r, kmax);
	*n_out = n;
	*out = keys;
	return 0;
}

static uint64_t keys_wire_size(uint32_t n, const struct im_str *keys)
{
	uint64_t s = 4;
	for (uint32_t i = 0; i < n; i++)
		s += ws(keys[i]);
	return s;
}

static bool keys_ok(uint32_t n, const struct im_str *keys, uint32_t max, uint32_t kmax)
{
	if (n > max || (n > 0 && keys == NULL))
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!key_ok(keys[i], kmax))
			return false;
	return true;
}

static bool seqs_ok(uint32_t n, const int64_t *seqs)
{
	return n <= ENG_SEQS_MAX && (n == 0 || seqs != NULL);
}

static unsigned char *wr_keys(unsigned char *p, uint32_t n, const struct im_str *keys)
{
	p = wr_u32(p, n);
	for (uint32_t i = 0; i < n; i++)
		p = wr_str(p, keys[i]);
	return p;
}

/* ---------------------------------------------------------------- commands */

const char *eng__cmd_name(int type)
{
	switch (type) {
	case ENG_CMD_NOOP:
		return "noop";
	case ENG_CMD_USER_REGISTER:
		return "user_register";
	case ENG_CMD_USER_UPDATE:
		return "user_update";
	case ENG_CMD_TOKEN_ISSUE:
		return "token_issue";
	case ENG_CMD_TOKEN_KICK:
		return "token_kick";
	case ENG_CMD_USER_CMD_ADD:
		return "user_cmd_add";
	case ENG_CMD_USER_CMD_UPDATE:
		return "user_cmd_update";
	case ENG_CMD_USER_CMD_DEL:
		return "user_cmd_del";
	case ENG_CMD_MSG_SEND:
		return "msg_send";
	case ENG_CMD_CONV_SET:
		return "conv_set";
	case ENG_CMD_MARK_READ:
		return "mark_read";
	case ENG_CMD_REVOKE:
		return "revoke";
	case ENG_CMD_MSG_HIDE:
		return "msg_hide";
	case ENG_CMD_CONV_CLEAR:
		return "conv_clear";
	case ENG_CMD_GROUP_CREATE:
		return "group_create";
	case ENG_CMD_GROUP_MEMBERS_ADD:
		return "group_members_add";
	case ENG_CMD_GROUP_MEMBERS_REMOVE:
		return "group_members_remove";
	case ENG_CMD_GROUP_SET:
		return "group_set";
	case ENG_CMD_MEMBER_SET:
		return "member_set";
	case ENG_CMD_GROUP_TRANSFER:
		return "group_transfer";
	case ENG_CMD_GROUP_DISMISS:
		return "group_dismiss";
	case ENG_CMD_GROUP_REQ_PUT:
		return "group_req_put";
	case ENG_CMD_GROUP_REQ_RESPOND:
		return "group_req_respond";
	case ENG_CMD_FRIEND_APPLY:
		return "friend_apply";
	case ENG_CMD_FRIEND_RESPOND:
		return "friend_respond";
	case ENG_CMD_FRIEND_DELETE:
		return "friend_delete";
	case ENG_CMD_FRIEND_UPDATE:
		return "friend_update";
	case ENG_CMD_FRIEND_IMPORT:
		return "friend_import";
	case ENG_CMD_BLACK_ADD:
		return "black_add";
	case ENG_CMD_BLACK_REMOVE:
		return "black_remove";
	default:
		return "unknown";
	}
}

/* Size of the type's own fields after validating them; 0 on success. */
static int fields_size(const struct eng_cmd *cmd, uint64_t *out)
{
	uint64_t n = 0;
	switch (cmd->type) {
	case ENG_CMD_NOOP:
	case ENG_CMD_MSG_SEND:
		break;
	case ENG_CMD_USER_REGISTER: {
		uint32_t k = cmd->u.user_register.n;
		if (k > ENG_BATCH_MAX || (k > 0 && cmd->u.user_register.users == NULL))
			return IM_EINVAL;
		n += 4;
		for (uint32_t i = 0; i < k; i++) {
			if (!user_ok(&cmd->u.user_register.users[i]))
				return IM_EINVAL;
			n += user_wire_size(&cmd->u.user_register.users[i]);
		}
		break;
	}
	case ENG_CMD_USER_UPDATE:
		if (!user_ok(&cmd->u.user_update.user))
			return IM_EINVAL;
		n += 4 + user_wire_size(&cmd->u.user_update.user);
		break;
	case ENG_CMD_TOKEN_ISSUE:
		if (!id_ok(cmd->u.token_issue.user_id) ||
		    cmd->u.token_issue.token.n > ENG_TOKEN_MAX)
			return IM_EINVAL;
		n += 4 + (uint64_t)cmd->u.token_issue.user_id.n + 4 + 4 +
		     cmd->u.token_issue.token.n + 8 + 4 + 4;
		break;
	case ENG_CMD_TOKEN_KICK:
		if (!id_ok(cmd->u.token_kick.user_id) ||
		    cmd->u.token_kick.except_token.n > ENG_TOKEN_MAX)
			return IM_EINVAL;
		n += ws(cmd->u.token_kick.user_id) + 4 + ws(cmd->u.token_kick.except_token);
		break;
	case ENG_CMD_USER_CMD_ADD:
	case ENG_CMD_USER_CMD_UPDATE:
	case ENG_CMD_USER_CMD_DEL:
		if (!ucmd_ok(cmd->type, &cmd->u.user_cmd.c))
			return IM_EINVAL;
		n += ucmd_wire_size(cmd->type, &cmd->u.user_cmd.c);
		break;
	case ENG_CMD_CONV_SET:
		if (!keys_ok(cmd->m.conv_set.n_owners, cmd->m.conv_set.owners, ENG_MEMBERS_MAX,
			     ENG_ID_MAX) ||
		    !conv_ok(&cmd->m.conv_set.conv))
			return IM_EINVAL;
		n += keys_wire_size(cmd->m.conv_set.n_owners, cmd->m.conv_set.owners) + 4 +
		     conv_wire_size(&cmd->m.conv_set.conv);
		break;
	case ENG_CMD_MARK_READ:
		if (!id_ok(cmd->m.mark_read.user_id) ||
		    !key_ok(cmd->m.mark_read.conv_id, ENG_CONV_ID_MAX) ||
		    !seqs_ok(cmd->m.mark_read.n_seqs, cmd->m.mark_read.seqs))
			return IM_EINVAL;
		n += ws(cmd->m.mark_read.user_id) + ws(cmd->m.mark_read.conv_id) + 8 + 4 +
		     8 * (uint64_t)cmd->m.mark_read.n_seqs + 1;
		break;
	case ENG_CMD_REVOKE:
		if (!key_ok(cmd->m.revoke.conv_id, ENG_CONV_ID_MAX) ||
		    !id_ok(cmd->m.revoke.revoker_id) || !text_ok(cmd->m.revoke.revoker_nickname))
			return IM_EINVAL;
		n += ws(cmd->m.revoke.conv_id) + 8 + ws(cmd->m.revoke.revoker_id) + 4 +
		     ws(cmd->m.revoke.revoker_nickname) + 8;
		break;
	case ENG_CMD_MSG_HIDE:
		if (!id_ok(cmd->m.msg_hide.user_id) ||
		    !key_ok(cmd->m.msg_hide.conv_id, ENG_CONV_ID_MAX) ||
		    !seqs_ok(cmd->m.msg_hide.n_seqs, cmd->m.msg_hide.seqs))
			return IM_EINVAL;
		n += ws(cmd->m.msg_hide.user_id) + ws(cmd->m.msg_hide.conv_id) + 4 +
		     8 * (uint64_t)cmd->m.msg_hide.n_seqs;
		break;
	case ENG_CMD_CONV_CLEAR:
		if (!id_ok(cmd->m.conv_clear.user_id) ||
		    !keys_ok(cmd->m.conv_clear.n_convs, cmd->m.conv_clear.conv_ids, ENG_CONVS_MAX,
			     ENG_CONV_ID_MAX))
			return IM_EINVAL;
		n += ws(cmd->m.conv_clear.user_id) +
		     keys_wire_size(cmd->m.conv_clear.n_convs, cmd->m.conv_clear.conv_ids);
		break;
	case ENG_CMD_GROUP_CREATE: {
		uint32_t k = cmd->m.group_create.n_members;
		if (!group_ok(&cmd->m.group_create.group) || k > ENG_MEMBERS_MAX ||
		    (k > 0 && cmd->m.group_create.members == NULL))
			return IM_EINVAL;
		n += group_wire_size(&cmd->m.group_create.group) + 4;
		for (uint32_t i = 0; i < k; i++) {
			if (!member_ok(&cmd->m.group_create.members[i]))
				return IM_EINVAL;
			n += member_wire_size(&cmd->m.group_create.members[i]);
		}
		break;
	}
	case ENG_CMD_GROUP_MEMBERS_ADD: {
		uint32_t k = cmd->m.group_members_add.n_members;
		if (!id_ok(cmd->m.group_members_add.group_id) || k > ENG_MEMBERS_MAX ||
		    (k > 0 && cmd->m.group_members_add.members == NULL))
			return IM_EINVAL;
		n += ws(cmd->m.group_members_add.group_id) + 4 + 1;
		for (uint32_t i = 0; i < k; i++) {
			if (!member_ok(&cmd->m.group_members_add.members[i]))
				return IM_EINVAL;
			n += member_wire_size(&cmd->m.group_members_add.members[i]);
		}
		break;
	}
	case ENG_CMD_GROUP_SET:
		if (!group_ok(&cmd->m.group_set.group))
			return IM_EINVAL;
		n += 4 + group_wire_size(&cmd->m.group_set.group);
		break;
	case ENG_CMD_MEMBER_SET: {
		uint32_t k = cmd->m.member_set.n_members;
		if (!id_ok(cmd->m.member_set.group_id) || k > ENG_MEMBERS_MAX ||
		    (k > 0 &&
		     (cmd->m.member_set.members == NULL || cmd->m.member_set.masks == NULL)))
			return IM_EINVAL;
		n += ws(cmd->m.member_set.group_id) + 4;
		for (uint32_t i = 0; i < k; i++) {
			if (!member_ok(&cmd->m.member_set.members[i]))
				return IM_EINVAL;
			n += 4 + member_wire_size(&cmd->m.member_set.members[i]);
		}
		break;
	}
	case ENG_CMD_GROUP_TRANSFER:
		if (!id_ok(cmd->m.group_transfer.group_id) ||
		    !id_ok(cmd->m.group_transfer.new_owner))
			return IM_EINVAL;
		n += ws(cmd->m.group_transfer.group_id) + ws(cmd->m.group_transfer.new_owner);
		break;
	case ENG_CMD_GROUP_DISMISS:
		if (!id_ok(cmd->m.group_dismiss.group_id))
			return IM_EINVAL;
		n += ws(cmd->m.group_dismiss.group_id) + 1;
		break;
	case ENG_CMD_GROUP_REQ_PUT: {
		uint32_t k = cmd->m.group_req_put.n_reqs;
		if (k > ENG_MEMBERS_MAX || (k > 0 && cmd->m.group_req_put.reqs == NULL))
			return IM_EINVAL;
		n += 4;
		for (uint32_t i = 0; i < k; i++) {
			if (!greq_ok(&cmd->m.group_req_put.reqs[i]))
				return IM_EINVAL;
			n += greq_wire_size(&cmd->m.group_req_put.reqs[i]);
		}
		break;
	}
	case ENG_CMD_GROUP_REQ_RESPOND:
		if (!id_ok(cmd->m.group_req_respond.group_id) ||
		    !id_ok(cmd->m.group_req_respond.user_id) ||
		    !id_ok(cmd->m.group_req_respond.handler) ||
		    !text_ok(cmd->m.group_req_respond.handled_msg))
			return IM_EINVAL;
		n += ws(cmd->m.group_req_respond.group_id) + ws(cmd->m.group_req_respond.user_id) +
		     ws(cmd->m.group_req_respond.handler) + 4 +
		     ws(cmd->m.group_req_respond.handled_msg) + 1;
		break;
	case ENG_CMD_GROUP_MEMBERS_REMOVE:
		if (!id_ok(cmd->m.group_members_remove.group_id) ||
		    !keys_ok(cmd->m.group_members_remove.n_users,
			     cmd->m.group_members_remove.user_ids, ENG_MEMBERS_MAX, ENG_ID_MAX))
			return IM_EINVAL;
		n += ws(cmd->m.group_members_remove.group_id) +
		     keys_wire_size(cmd->m.group_members_remove.n_users,
				    cmd->m.group_members_remove.user_ids) +
		     4;
		break;
	default:
		/* The relation commands (rel_rec.c), or IM_EINVAL for an unknown type. */
		return eng__rel_fields_size(cmd, out);
	}
	*out = n;
	return 0;
}

/* Payload size of cmd after validating its fields and items; 0 on success. */
static int payload_size(const struct eng_cmd *cmd, uint64_t *out)
{
	uint64_t n;
	int rv = fields_size(cmd, &n);
	if (rv != 0)
		return rv;
	n += 8 + 4; /* now_ms, n_items */
	if (cmd->n_items > ENG_ITEMS_MAX || (cmd->n_items > 0 && cmd->items == NULL))
		return IM_EINVAL;
	for (uint32_t i = 0; i < cmd->n_items; i++) {
		if (!item_ok(&cmd->items[i]))
			return IM_EINVAL;
		n += eng__item_wire_size(&cmd->items[i]);
	}
	if (n + ENG_CMD_HEADER > ENG_CMD_MAX)
		return IM_ETOOBIG;
	*out = n;
	return 0;
}

/* Writes the type's own fields (validated by fields_size). */
static unsigned char *wr_fields(unsigned char *p, const struct eng_cmd *cmd)
{
	switch (cmd->type) {
	case ENG_CMD_USER_REGISTER:
		p = wr_u32(p, cmd->u.user_register.n);
		for (uint32_t i = 0; i < cmd->u.user_register.n; i++)
			p = wr_user(p, &cmd->u.user_register.users[i]);
		break;
	case ENG_CMD_USER_UPDATE:
		p = wr_u32(p, cmd->u.user_update.mask);
		p = wr_user(p, &cmd->u.user_update.user);
		break;
	case ENG_CMD_TOKEN_ISSUE:
		p = wr_str(p, cmd->u.token_issue.user_id);
		p = wr_u32(p, (uint32_t)cmd->u.token_issue.platform_id);
		p = wr_str(p, cmd->u.token_issue.token);
		p = wr_u64(p, (uint64_t)cmd->u.token_issue.expire_at);
		p = wr_u32(p, (uint32_t)cmd->u.token_issue.policy);
		p = wr_u32(p, (uint32_t)cmd->u.token_issue.max_per_platform);
		break;
	case ENG_CMD_TOKEN_KICK:
		p = wr_str(p, cmd->u.token_kick.user_id);
		p = wr_u32(p, (uint32_t)cmd->u.token_kick.platform_id);
		p = wr_str(p, cmd->u.token_kick.except_token);
		break;
	case ENG_CMD_USER_CMD_ADD:
	case ENG_CMD_USER_CMD_UPDATE:
	case ENG_CMD_USER_CMD_DEL:
		p = wr_ucmd(p, cmd->type, cmd->u.user_cmd.mask, &cmd->u.user_cmd.c);
		break;
	case ENG_CMD_CONV_SET:
		p = wr_keys(p, cmd->m.conv_set.n_owners, cmd->m.conv_set.owners);
		p = wr_u32(p, cmd->m.conv_set.mask);
		p = wr_conv(p, &cmd->m.conv_set.conv);
		break;
	case ENG_CMD_MARK_READ:
		p = wr_str(p, cmd->m.mark_read.user_id);
		p = wr_str(p, cmd->m.mark_read.conv_id);
		p = wr_u64(p, (uint64_t)cmd->m.mark_read.has_read_seq);
		p = wr_seqs(p, cmd->m.mark_read.n_seqs, cmd->m.mark_read.seqs);
		p = wr_u8(p, cmd->m.mark_read.mark_msgs);
		break;
	case ENG_CMD_REVOKE:
		p = wr_str(p, cmd->m.revoke.conv_id);
		p = wr_u64(p, (uint64_t)cmd->m.revoke.seq);
		p = wr_str(p, cmd->m.revoke.revoker_id);
		p = wr_u32(p, (uint32_t)cmd->m.revoke.revoker_role);
		p = wr_str(p, cmd->m.revoke.revoker_nickname);
		p = wr_u64(p, (uint64_t)cmd->m.revoke.revoke_time);
		break;
	case ENG_CMD_MSG_HIDE:
		p = wr_str(p, cmd->m.msg_hide.user_id);
		p = wr_str(p, cmd->m.msg_hide.conv_id);
		p = wr_seqs(p, cmd->m.msg_hide.n_seqs, cmd->m.msg_hide.seqs);
		break;
	case ENG_CMD_CONV_CLEAR:
		p = wr_str(p, cmd->m.conv_clear.user_id);
		p = wr_keys(p, cmd->m.conv_clear.n_convs, cmd->m.conv_clear.conv_ids);
		break;
	case ENG_CMD_GROUP_CREATE:
		p = wr_group(p, &cmd->m.group_create.group);
		p = wr_u32(p, cmd->m.group_create.n_members);
		for (uint32_t i = 0; i < cmd->m.group_create.n_members; i++)
			p = wr_member(p, &cmd->m.group_create.members[i]);
		break;
	case ENG_CMD_GROUP_MEMBERS_ADD:
		p = wr_str(p, cmd->m.group_members_add.group_id);
		p = wr_u32(p, cmd->m.group_members_add.n_members);
		for (uint32_t i = 0; i < cmd->m.group_members_add.n_members; i++)
			p = wr_member(p, &cmd->m.group_members_add.members[i]);
		p = wr_u8(p, cmd->m.group_members_add.hide_history);
		break;
	case ENG_CMD_GROUP_SET:
		p = wr_u32(p, cmd->m.group_set.mask);
		p = wr_group(p, &cmd->m.group_set.group);
		break;
	case ENG_CMD_MEMBER_SET:
		p = wr_str(p, cmd->m.member_set.group_id);
		p = wr_u32(p, cmd->m.member_set.n_members);
		for (uint32_t i = 0; i < cmd->m.member_set.n_members; i++) {
			p = wr_u32(p, cmd->m.member_set.masks[i]);
			p = wr_member(p, &cmd->m.member_set.members[i]);
		}
		break;
	case ENG_CMD_GROUP_TRANSFER:
		p = wr_str(p, cmd->m.group_transfer.group_id);
		p = wr_str(p, cmd->m.group_transfer.new_owner);
		break;
	case ENG_CMD_GROUP_DISMISS:
		p = wr_str(p, cmd->m.group_dismiss.group_id);
		p = wr_u8(p, cmd->m.group_dismiss.delete_member);
		break;
	case ENG_CMD_GROUP_REQ_PUT:
		p = wr_u32(p, cmd->m.group_req_put.n_reqs);
		for (uint32_t i = 0; i < cmd->m.group_req_put.n_reqs; i++)
			p = wr_greq(p, &cmd->m.group_req_put.reqs[i]);
		break;
	case ENG_CMD_GROUP_REQ_RESPOND:
		p = wr_str(p, cmd->m.group_req_respond.group_id);
		p = wr_str(p, cmd->m.group_req_respond.user_id);
		p = wr_str(p, cmd->m.group_req_respond.handler);
		p = wr_u32(p, (uint32_t)cmd->m.group_req_respond.handle_result);
		p = wr_str(p, cmd->m.group_req_respond.handled_msg);
		p = wr_u8(p, cmd->m.group_req_respond.hide_history);
		break;
	case ENG_CMD_GROUP_MEMBERS_REMOVE:
		p = wr_str(p, cmd->m.group_members_remove.group_id);
		p = wr_keys(p, cmd->m.group_members_remove.n_users,
			    cmd->m.group_members_remove.user_ids);
		p = wr_u32(p, (uint32_t)cmd->m.group_members_remove.reason);
		break;
	default:
		p = eng__rel_fields_write(p, cmd);
		break;
	}
	return p;
}

int eng_cmd_encode(const struct eng_cmd *cmd, struct im_buf *out)
{
	uint64_t plen;
	int rv = payload_size(cmd, &plen);
	if (rv != 0)
		return rv;
	/* Sized first, so a failure leaves `out` as it was. */
	size_t total = ENG_CMD_HEADER + (size_t)plen;
	rv = im_buf_reserve(out, total);
	if (rv != 0)
		return rv;
	unsigned char *h = (unsigned char *)out->p + out->len;
	unsigned char *p = h + ENG_CMD_HEADER;
	h[0] = 'I';
	h[1] = 'M';
	h[2] = ENG__CMD_VERSION;
	h[3] = cmd->type;
	im_put_be32(h + 4, (uint32_t)plen);
	p = wr_u64(p, (uint64_t)cmd->now_ms);
	p = wr_fields(p, cmd);
	p = wr_u32(p, cmd->n_items);
	for (uint32_t i = 0; i < cmd->n_items; i++)
		p = eng__item_write(p, &cmd->items[i]);
	if ((size_t)(p - h) != total)
		return IM_EINVAL; /* unreachable: payload_size() and the writers disagree */
	uint32_t crc = im_crc32(0, h, 8);
	crc = im_crc32(crc, h + ENG_CMD_HEADER, (size_t)plen);
	im_put_be32(h + 8, crc);
	out->len += total;
	out->p[out->len] = '\0';
	return 0;
}

size_t eng_cmd_framed_len(const void *buf, size_t len)
{
	if (len < ENG_CMD_HEADER)
		return len;
	uint64_t framed = ENG_CMD_HEADER + (uint64_t)im_get_be32((const unsigned char *)buf + 4);
	return framed <= len ? (size_t)framed : len;
}

/* n members (<= ENG_MEMBERS_MAX) of group gid, each after a mask when masks != NULL. */
static int rd_members(struct rd *r, struct eng_cmd *cmd, struct im_str gid, uint32_t *n_out,
		      struct eng_member **out, uint32_t **masks_out)
{
	uint32_t k = rd_u32(r);
	uint64_t min = MEMBER_WIRE_MIN + (masks_out ? 4 : 0);
	if (r->bad || k > ENG_MEMBERS_MAX || (uint64_t)k * min > r->n)
		return IM_ECORRUPT;
	struct eng_member *members = NULL;
	uint32_t *masks = NULL;
	if (k > 0 && (members = cmd_alloc(cmd, k, sizeof(*members))) == NULL)
		return -ENOMEM;
	if (k > 0 && masks_out && (masks = cmd_alloc(cmd, k, sizeof(*masks))) == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < k && !r->bad; i++) {
		if (masks)
			masks[i] = rd_u32(r);
		rd_member(r, &members[i]);
		members[i].group_id = gid;
	}
	*n_out = k;
	*out = members;
	if (masks_out)
		*masks_out = masks;
	return 0;
}

/*
 * Reads the type's own fields of a `version` entry.  0, IM_ECORRUPT (unknown
 * type, a bad count) or -ENOMEM.
 */
static int rd_fields(struct rd *r, struct eng_cmd *cmd, int version)
{
	int rv = 0;
	switch (cmd->type) {
	case ENG_CMD_NOOP:
	case ENG_CMD_MSG_SEND:
		break;
	case ENG_CMD_USER_REGISTER: {
		uint32_t k = rd_u32(r);
		/* Bound the allocation by what the payload can hold. */
		if (r->bad || k > ENG_BATCH_MAX || (uint64_t)k * USER_WIRE_MIN > r->n)
			return IM_ECORRUPT;
		struct eng_user *users = NULL;
		if (k > 0 && (users = cmd_alloc(cmd, k, sizeof(*users))) == NULL)
			return -ENOMEM;
		for (uint32_t i = 0; i < k && !r->bad; i++)
			rd_user(r, &users[i]);
		cmd->u.user_register.n = k;
		cmd->u.user_register.users = users;
		break;
	}
	case ENG_CMD_USER_UPDATE:
		cmd->u.user_update.mask = rd_u32(r);
		rd_user(r, &cmd->u.user_update.user);
		break;
	case ENG_CMD_TOKEN_ISSUE:
		cmd->u.token_issue.user_id = rd_id(r);
		cmd->u.token_issue.platform_id = (int32_t)rd_u32(r);
		cmd->u.token_issue.token = rd_str(r, ENG_TOKEN_MAX);
		cmd->u.token_issue.expire_at = (int64_t)rd_u64(r);
		cmd->u.token_issue.policy = (int32_t)rd_u32(r);
		cmd->u.token_issue.max_per_platform = (int32_t)rd_u32(r);
		break;
	case ENG_CMD_TOKEN_KICK:
		cmd->u.token_kick.user_id = rd_id(r);
		cmd->u.token_kick.platform_id = (int32_t)rd_u32(r);
		cmd->u.token_kick.except_token = rd_str(r, ENG_TOKEN_MAX);
		break;
	case ENG_CMD_USER_CMD_ADD:
	case ENG_CMD_USER_CMD_UPDATE:
	case ENG_CMD_USER_CMD_DEL:
		rd_ucmd(r, cmd->type, &cmd->u.user_cmd.mask, &cmd->u.user_cmd.c);
		break;
	case ENG_CMD_CONV_SET:
		rv = rd_keys(r, cmd, ENG_MEMBERS_MAX, ENG_ID_MAX, &cmd->m.conv_set.n_owners,
			     &cmd->m.conv_set.owners);
		cmd->m.conv_set.mask = rd_u32(r);
		rd_conv(r, &cmd->m.conv_set.conv);
		break;
	case ENG_CMD_MARK_READ:
		cmd->m.mark_read.user_id = rd_id(r);
		cmd->m.mark_read.conv_id = rd_key(r, ENG_CONV_ID_MAX);
		cmd->m.mark_read.has_read_seq = (int64_t)rd_u64(r);
		rv = rd_seqs(r, cmd, &cmd->m.mark_read.n_seqs, &cmd->m.mark_read.seqs);
		cmd->m.mark_read.mark_msgs = rd_bool(r);
		break;
	case ENG_CMD_REVOKE:
		cmd->m.revoke.conv_id = rd_key(r, ENG_CONV_ID_MAX);
		cmd->m.revoke.seq = (int64_t)rd_u64(r);
		cmd->m.revoke.revoker_id = rd_id(r);
		cmd->m.revoke.revoker_role = (int32_t)rd_u32(r);
		cmd->m.revoke.revoker_nickname = rd_str(r, ENG_TEXT_MAX);
		cmd->m.revoke.revoke_time = (int64_t)rd_u64(r);
		break;
	case ENG_CMD_MSG_HIDE:
		cmd->m.msg_hide.user_id = rd_id(r);
		cmd->m.msg_hide.conv_id = rd_key(r, ENG_CONV_ID_MAX);
		rv = rd_seqs(r, cmd, &cmd->m.msg_hide.n_seqs, &cmd->m.msg_hide.seqs);
		break;
	case ENG_CMD_CONV_CLEAR:
		cmd->m.conv_clear.user_id = rd_id(r);
		rv = rd_keys(r, cmd, ENG_CONVS_MAX, ENG_CONV_ID_MAX, &cmd->m.conv_clear.n_convs,
			     &cmd->m.conv_clear.conv_ids);
		break;
	case ENG_CMD_GROUP_CREATE: {
		struct eng_group *g = &cmd->m.group_create.group;
		rd_group(r, g);
		uint32_t k = rd_u32(r);
		if (r->bad || k > ENG_MEMBERS_MAX || (uint64_t)k * MEMBER_WIRE_MIN > r->n)
			return IM_ECORRUPT;
		struct eng_member *members = NULL;
		if (k > 0 && (members = cmd_alloc(cmd, k, sizeof(*members))) == NULL)
			return -ENOMEM;
		for (uint32_t i = 0; i < k && !r->bad; i++) {
			rd_member(r, &members[i]);
			members[i].group_id = g->group_id;
		}
		cmd->m.group_create.n_members = k;
		cmd->m.group_create.members = members;
		break;
	}
	case ENG_CMD_GROUP_MEMBERS_ADD: {
		struct im_str gid = cmd->m.group_members_add.group_id = rd_id(r);
		rv = rd_members(r, cmd, gid, &cmd->m.group_members_add.n_members,
				&cmd->m.group_members_add.members, NULL);
		/* Version 2 had no flag: history stays visible. */
		if (rv == 0 && version >= 3)
			cmd->m.group_members_add.hide_history = rd_bool(r);
		break;
	}
	case ENG_CMD_GROUP_MEMBERS_REMOVE:
		cmd->m.group_members_remove.group_id = rd_id(r);
		rv = rd_keys(r, cmd, ENG_MEMBERS_MAX, ENG_ID_MAX,
			     &cmd->m.group_members_remove.n_users,
			     &cmd->m.group_members_remove.user_ids);
		cmd->m.group_members_remove.reason = (int32_t)rd_u32(r);
		break;
	case ENG_CMD_GROUP_SET:
		cmd->m.group_set.mask = rd_u32(r);
		rd_group(r, &cmd->m.group_set.group);
		break;
	case ENG_CMD_MEMBER_SET: {
		struct im_str gid = cmd->m.member_set.group_id = rd_id(r);
		rv = rd_members(r, cmd, gid, &cmd->m.member_set.n_members,
				&cmd->m.member_set.members, &cmd->m.member_set.masks);
		break;
	}
	case ENG_CMD_GROUP_TRANSFER:
		cmd->m.group_transfer.group_id = rd_id(r);
		cmd->m.group_transfer.new_owner = rd_id(r);
		break;
	case ENG_CMD_GROUP_DISMISS:
		cmd->m.group_dismiss.group_id = rd_id(r);
		cmd->m.group_dismiss.delete_member = rd_bool(r);
		break;
	case ENG_CMD_GROUP_REQ_PUT: {
		uint32_t k = rd_u32(r);
		if (r->bad || k > ENG_MEMBERS_MAX || (uint64_t)k * GREQ_WIRE_MIN > r->n)
			return IM_ECORRUPT;
		struct eng_group_req *reqs = NULL;
		if (k > 0 && (reqs = cmd_alloc(cmd, k, sizeof(*reqs))) == NULL)
			return -ENOMEM;
		for (uint32_t i = 0; i < k && !r->bad; i++)
			rd_greq(r, &reqs[i]);
		cmd->m.group_req_put.n_reqs = k;
		cmd->m.group_req_put.reqs = reqs;
		break;
	}
	case ENG_CMD_GROUP_REQ_RESPOND:
		cmd->m.group_req_respond.group_id = rd_id(r);
		cmd->m.group_req_respond.user_id = rd_id(r);
		cmd->m.group_req_respond.handler = rd_id(r);
		cmd->m.group_req_respond.handle_result = (int32_t)rd_u32(r);
		cmd->m.group_req_respond.handled_msg = rd_str(r, ENG_TEXT_MAX);
		cmd->m.group_req_respond.hide_history = rd_bool(r);
		break;
	default:
		/* The relation commands (rel_rec.c), or IM_ECORRUPT for an unknown type. */
		return eng__rel_fields_read(r, cmd);
	}
	return rv;
}

/* Reads the items tail.  0, IM_ECORRUPT or -ENOMEM. */
static int rd_items(struct rd *r, struct eng_cmd *cmd)
{
	uint32_t k = rd_u32(r);
	if (r->bad || k > ENG_ITEMS_MAX || (uint64_t)k * ITEM_WIRE_MIN > r->n)
		return IM_ECORRUPT;
	struct eng_msg_item *items = NULL;
	if (k > 0 && (items = cmd_alloc(cmd, k, sizeof(*items))) == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < k && !r->bad; i++)
		eng__item_read(r, &items[i]);
	cmd->n_items = k;
	cmd->items = items;
	return 0;
}

int eng_cmd_decode(const void *buf, size_t len, struct eng_cmd *cmd)
{
	const unsigned char *h = buf;
	memset(cmd, 0, sizeof(*cmd));
	if (len < ENG_CMD_HEADER || h[0] != 'I' || h[1] != 'M')
		return IM_ECORRUPT;
	if (h[2] != ENG__CMD_VERSION && h[2] != ENG__CMD_VERSION_OLD)
		return IM_EVERSION;
	/* The length must match exactly: no slack before or after. */
	uint32_t plen = im_get_be32(h + 4);
	if (plen != len - ENG_CMD_HEADER || len > ENG_CMD_MAX)
		return IM_ECORRUPT;
	uint32_t crc = im_crc32(0, h, 8);
	crc = im_crc32(crc, h + ENG_CMD_HEADER, plen);
	if (crc != im_get_be32(h + 8))
		return IM_ECHECKSUM;

	/* Fields are read through `r`, which cannot run past the payload. */
	struct rd r = {h + ENG_CMD_HEADER, plen, false};
	cmd->type = h[3];
	cmd->now_ms = (int64_t)rd_u64(&r);
	int rv = rd_fields(&r, cmd, h[2]);
	if (rv == 0)
		rv = rd_items(&r, cmd);
	/* Short fields and trailing bytes are both corrupt. */
	if (rv == 0 && (r.bad || r.n != 0))
		rv = IM_ECORRUPT;
	if (rv != 0)
		eng_cmd_release(cmd);
	return rv;
}

void eng_cmd_release(struct eng_cmd *cmd)
{
	if (cmd == NULL)
		return;
	for (union blk *b = cmd->alloc, *next; b != NULL; b = next) {
		next = b->next;
		im_free(b);
	}
	cmd->alloc = NULL;
	/* The arrays were in the blocks: forget every field (type and now_ms stay). */
	cmd->n_items = 0;
	cmd->items = NULL;
	memset(&cmd->u, 0, sizeof(cmd->u));
	memset(&cmd->m, 0, sizeof(cmd->m));
	memset(&cmd->r, 0, sizeof(cmd->r));
}

/* ---------------------------------------------------------------- records */

/*
 * users value: format u8 | seq u64 | create_time i64 | app_manger_level i32 |
 * global_recv_msg_opt i32 | nickname str | face_url str | ex str.
 * The userID is the key and is not repeated.
 */
#define USER_REC_FIXED (1 + 8 + 8 + 4 + 4)

size_t eng__user_rec_size(const struct eng_user *u)
{
	return USER_REC_FIXED + 12 + (size_t)u->nickname.n + u->face_url.n + u->ex.n;
}

void eng__user_rec_encode(unsigned char *p, const struct eng_user *u, uint64_t seq)
{
	*p++ = ENG__REC_USER_V1;
	p = wr_u64(p, seq);
	p = wr_u64(p, (uint64_t)u->create_time);
	p = wr_u32(p, (uint32_t)u->app_manger_level);
	p = wr_u32(p, (uint32_t)u->global_recv_msg_opt);
	p = wr_str(p, u->nickname);
	p = wr_str(p, u->face_url);
	wr_str(p, u->ex);
}

int eng__user_rec_decode(const void *val, size_t len, struct im_str user_id, struct eng_user *out,
			 uint64_t *seq)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_USER_V1)
		return IM_EVERSION;
	memset(out, 0, sizeof(*out));
	out->user_id = user_id;
	uint64_t s = rd_u64(&r);
	out->create_time = (int64_t)rd_u64(&r);
	out->app_manger_level = (int32_t)rd_u32(&r);
	out->global_recv_msg_opt = (int32_t)rd_u32(&r);
	out->nickname = rd_str(&r, ENG_TEXT_MAX);
	out->face_url = rd_str(&r, ENG_TEXT_MAX);
	out->ex = rd_str(&r, ENG_TEXT_MAX);
	if (r.bad || r.n != 0)
		return IM_ECORRUPT;
	if (seq != NULL)
		*seq = s;
	return 0;
}

void eng__token_val_encode(unsigned char p[ENG__TOKEN_VAL_LEN], const struct eng__token_val *v)
{
	p[0] = ENG__REC_TOKEN_V1;
	p[1] = (unsigned char)v->status;
	im_put_be64(p + 2, (uint64_t)v->expire_at);
	im_put_be64(p + 10, (uint64_t)v->issued_ms);
}

/* A newer format byte is IM_EVERSION, anything malformed IM_ECORRUPT. */
int eng__token_val_decode(const void *val, size_t len, struct eng__token_val *out)
{
	const unsigned char *p = val;
	if (len < 1)
		return IM_ECORRUPT;
	if (p[0] != ENG__REC_TOKEN_V1)
		return IM_EVERSION;
	if (len != ENG__TOKEN_VAL_LEN || p[1] > ENG_TOKEN_EXPIRED)
		return IM_ECORRUPT;
	out->status = p[1];
	out->expire_at = (int64_t)im_get_be64(p + 2);
	out->issued_ms = (int64_t)im_get_be64(p + 10);
	return 0;
}

size_t eng__token_key(unsigned char *buf, struct im_str user_id, int32_t platform_id,
		      struct im_str token)
{
	size_t n = 0;
	memcpy(buf, user_id.p, user_id.n);
	n += user_id.n;
	buf[n++] = 0;
	if (platform_id < 0)
		return n;
	buf[n++] = (unsigned char)platform_id;
	if (token.n)
		memcpy(buf + n, token.p, token.n);
	return n + token.n;
}

/* The user part ends at the first NUL, which ids cannot contain. */
int eng__token_key_parse(const void *key, size_t len, struct im_str *user_id, int32_t *platform_id,
			 struct im_str *token)
{
	const char *k = key;
	const char *nul = len ? memchr(k, 0, len) : NULL;
	if (nul == NULL)
		return IM_ECORRUPT;
	size_t idn = (size_t)(nul - k);
	/* The separator, the platform byte and at least one token byte. */
	if (idn == 0 || idn > ENG_ID_MAX || len < idn + 3 || len - idn - 2 > ENG_TOKEN_MAX)
		return IM_ECORRUPT;
	*user_id = (struct im_str){k, (uint32_t)idn};
	*platform_id = (unsigned char)k[idn + 1];
	*token = (struct im_str){k + idn + 2, (uint32_t)(len - idn - 2)};
	return 0;
}

/* ---------------------------------------------------------------- user commands */

size_t eng__ucmd_prefix(unsigned char *buf, struct im_str user_id)
{
	memcpy(buf, user_id.p, user_id.n);
	buf[user_id.n] = 0;
	return (size_t)user_id.n + 1;
}

/* The type is stored as the unsigned value of the i32: negative ones sort last. */
size_t eng__ucmd_key(unsigned char *buf, struct im_str user_id, int32_t type, struct im_str uuid)
{
	size_t n = eng__ucmd_prefix(buf, user_id);
	im_put_be32(buf + n, (uint32_t)type);
	n += 4;
	if (uuid.n)
		memcpy(buf + n, uuid.p, uuid.n);
	return n + uuid.n;
}

/* Like a token key, the user part ends at the first NUL. */
int eng__ucmd_key_parse(const void *key, size_t len, struct eng_user_cmd *out)
{
	const char *k = key;
	const char *nul = len ? memchr(k, 0, len) : NULL;
	if (nul == NULL)
		return IM_ECORRUPT;
	size_t idn = (size_t)(nul - k);
	/* The separator, the type and a valid uuid. */
	if (idn == 0 || idn > ENG_ID_MAX || len < idn + 6)
		return IM_ECORRUPT;
	struct im_str uuid = {k + idn + 5, (uint32_t)(len - idn - 5)};
	if (!eng__id_valid(uuid))
		return IM_ECORRUPT;
	out->user_id = (struct im_str){k, (uint32_t)idn};
	out->type = (int32_t)im_get_be32((const unsigned char *)k + idn + 1);
	out->uuid = uuid;
	return 0;
}

#define UCMD_VAL_FIXED (1 + 8)

size_t eng__ucmd_val_size(const struct eng_user_cmd *c)
{
	return UCMD_VAL_FIXED + 8 + (size_t)c->value.n + c->ex.n;
}

void eng__ucmd_val_encode(unsigned char *p, const struct eng_user_cmd *c)
{
	*p++ = ENG__REC_UCMD_V1;
	p = wr_u64(p, (uint64_t)c->create_time);
	p = wr_str(p, c->value);
	wr_str(p, c->ex);
}

int eng__ucmd_val_decode(const void *val, size_t len, struct eng_user_cmd *out)
{
	struct rd r = {val, len, false};
	const unsigned char *v = rd_take(&r, 1);
	if (v == NULL)
		return IM_ECORRUPT;
	if (*v != ENG__REC_UCMD_V1)
		return IM_EVERSION;
	int64_t create_time = (int64_t)rd_u64(&r);
	struct im_str value = rd_str(&r, ENG_TEXT_MAX);
	struct im_str ex = rd_str(&r, ENG_TEXT_MAX);
	if (r.bad || r.n != 0)
		return IM_ECORRUPT;
	out->create_time = create_time;
	out->value = value;
	out->ex = ex;
	return 0;
}
