/* apply_msg.c - the deterministic effect of the message-side commands and of message items. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "engine_int.h"

/*
 * Same contract as apply.c: each handler runs inside the nested txn of one
 * command and returns 0, ENG__REJECT (res filled, every effect dropped) or a
 * negative storage error; it reads nothing but the txn and the command.
 *
 * Invariants kept here (design.md promises 2 and 3, docs/storage.md):
 *
 *  1. A conversation's messages are exactly seqs 1..max_seq of its conv_seqs
 *     row: the next seq is max_seq + 1, written with the message in one txn.
 *  2. A stored message ends with its seq field (tag 0x70, varint), so the
 *     stored bytes decode to the message with its seq.
 *  3. One (send_id, client_msg_id) is stored at most once: msg_dedup is
 *     checked before and written with the message; a resend gets the
 *     original's seq, serverMsgID and sendTime and produces no event.
 *  4. Conversation rows are created by messages, never changed by them, and
 *     only for registered users; a read seq is only ever raised.
 *  5. members and user_groups are written together, and a group's
 *     member_count is its number of members.
 */

#define reject	eng__reject
#define ID_FMT	ENG__ID_FMT
#define ID_ARG	ENG__ID_ARG
#define put	eng__put
#define get	eng__get
#define scratch eng__scratch

static const struct im_str empty = {NULL, 0};

/* What the helpers below return besides 0, ENG__REJECT (1) and negative errors. */
enum { ABSENT = ENG__ABSENT, DUP = 3 };

/* Shared with apply_group.c (engine_int.h). */
#define conv_seq_get eng__conv_seq_get
#define conv_row_get eng__conv_row_get
#define conv_row_put eng__conv_row_put
#define group_conv   eng__group_conv
#define group_read   eng__group_read

static bool user_exists(struct eng *e, MDB_txn *txn, struct im_str user, int *err)
{
	MDB_val val;
	int rv = get(e, txn, ENG__T_USERS, user.p, user.n, &val, "mdb_get users");
	*err = rv < 0 ? rv : 0;
	return rv == 0;
}

/* A notification stream ("n_..."): no conversation rows (openim-protocol.md §6.1). */
static bool is_notification_stream(struct im_str conv)
{
	return conv.n >= 2 && conv.p[0] == 'n' && conv.p[1] == '_';
}

/* The conv_seqs row of conv; all zero when the conversation has no message yet. */
int conv_seq_get(struct eng *e, MDB_txn *txn, struct im_str conv, struct eng__conv_seq *out,
		 struct eng_result *res)
{
	MDB_val val;
	memset(out, 0, sizeof(*out));
	int rv = get(e, txn, ENG__T_CONV_SEQS, conv.p, conv.n, &val, "mdb_get conv_seqs");
	if (rv != 0)
		return rv < 0 ? rv : 0;
	if (eng__conv_seq_decode(val.mv_data, val.mv_size, out) != 0)
		return reject(res, IM_ECORRUPT,
			      "conv_seqs " ID_FMT ": stored record does not decode", ID_ARG(conv));
	return 0;
}

/* Raises hasReadSeq of (user, conv) to seq; never lowers it.  *old gets the previous value. */
static int read_seq_raise(struct eng *e, MDB_txn *txn, struct im_str user, struct im_str conv,
			  int64_t seq, int64_t *old, struct eng_result *res)
{
	unsigned char k[ENG__CONV_KEY_MAX], v[ENG__I64_VAL_LEN];
	size_t kn = eng__key_join(k, user, conv);
	MDB_val val;
	int64_t cur = 0;
	int rv = get(e, txn, ENG__T_READ_SEQS, k, kn, &val, "mdb_get read_seqs");
	if (rv < 0)
		return rv;
	if (rv == 0) {
		if (val.mv_size != ENG__I64_VAL_LEN)
			return reject(res, IM_ECORRUPT,
				      "read_seqs (" ID_FMT ", " ID_FMT "): %zu bytes, want 8",
				      ID_ARG(user), ID_ARG(conv), val.mv_size);
		cur = (int64_t)im_get_be64(val.mv_data);
	}
	if (old != NULL)
		*old = cur;
	if (seq <= cur)
		return 0;
	im_put_be64(v, (uint64_t)seq);
	return put(e, txn, ENG__T_READ_SEQS, k, kn, v, sizeof(v), 0, "mdb_put read_seqs");
}

/* Encodes c (views may point into the map) into scratch and stores it under (owner, conv). */
int conv_row_put(struct eng *e, MDB_txn *txn, struct im_str owner, const struct eng_conv *c)
{
	unsigned char k[ENG__CONV_KEY_MAX];
	size_t kn = eng__key_join(k, owner, c->conversation_id);
	size_t n = eng__conv_rec_size(c);
	unsigned char *v = scratch(e, n);
	if (v == NULL)
		return -ENOMEM;
	eng__conv_rec_encode(v, c);
	return put(e, txn, ENG__T_CONVS, k, kn, v, n, 0, "mdb_put convs");
}

/* A row of owner was created (INSERT) or changed (UPDATE): the CONVERSATION log (§7.1). */
static int conv_log(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
		    struct im_str owner, struct im_str conv, int state, struct eng_result *res)
{
	return eng__vlog_write(e, txn, index, now_ms, ENG_VLOG_CONVERSATION, owner, conv, state,
			       res);
}

/*
 * Creates owner's row of conv (§6.6 step 5), with an INSERT in owner's
 * CONVERSATION log, unless it has one or owner is not a registered user (a
 * conversation row always belongs to a user).  An existing row costs one
 * lookup and writes nothing, which keeps a message cheap.
 */
static int conv_row_ensure(struct eng *e, MDB_txn *txn, uint64_t index, struct im_str owner,
			   struct im_str conv, int32_t type, struct im_str user_id,
			   struct im_str group_id, int64_t now_ms, struct eng_result *res)
{
	if (!eng__id_valid(owner))
		return 0;
	unsigned char k[ENG__CONV_KEY_MAX];
	size_t kn = eng__key_join(k, owner, conv);
	MDB_val val;
	int rv = get(e, txn, ENG__T_CONVS, k, kn, &val, "mdb_get convs");
	if (rv <= 0)
		return rv;
	if (!user_exists(e, txn, owner, &rv))
		return rv;
	struct eng_conv c = {.owner_user_id = owner,
			     .conversation_id = conv,
			     .conversation_type = type,
			     .user_id = user_id,
			     .group_id = group_id,
			     .create_time = now_ms};
	rv = conv_row_put(e, txn, owner, &c);
	if (rv == 0)
		rv = conv_log(e, txn, index, now_ms, owner, conv, ENG_VLOG_INSERT, res);
	return rv;
}

/* Rows of every current member of a group conversation. */
static int conv_rows_group(struct eng *e, MDB_txn *txn, uint64_t index,
			   const struct eng_msg_item *it, int64_t now_ms, struct eng_result *res)
{
	unsigned char pfx[ENG_ID_MAX + 1];
	size_t pn = eng__key_join(pfx, it->group_id, empty);
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, e->dbi[ENG__T_MEMBERS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open members");
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rv;
	while ((rv = eng__prefix_step(e, c, pfx, pn, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		/* Copied out of the map before the writes below. */
		char uid[ENG_ID_MAX];
		size_t un = key.mv_size - pn;
		if (un == 0 || un > ENG_ID_MAX)
			continue; /* eng_check reports such keys */
		memcpy(uid, (char *)key.mv_data + pn, un);
		rv = conv_row_ensure(e, txn, index, (struct im_str){uid, (uint32_t)un}, it->conv_id,
				     3, empty, it->group_id, now_ms, res);
		if (rv != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv < 0 ? rv : 0;
}

/*
 * The participants' rows of a stored message (§6.6 step 5): rows are
 * created, never changed, by messages.  1:1 and type 4 rows are checked on
 * every message (two lookups).  A group's rows are made for every member by
 * group_create and by the commands that add members, so a message walks the
 * member list only when it is the conversation's first (`first`); otherwise
 * only the sender's row is ensured, which keeps a send O(1) in the group size.
 */
static int conv_rows(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_msg_item *it,
		     int64_t now_ms, bool first, struct eng_result *res)
{
	if (is_notification_stream(it->conv_id))
		return 0;
	int rv = 0;
	switch (it->session_type) {
	case 1:
		rv = conv_row_ensure(e, txn, index, it->send_id, it->conv_id, 1, it->recv_id, empty,
				     now_ms, res);
		if (rv == 0)
			rv = conv_row_ensure(e, txn, index, it->recv_id, it->conv_id, 1,
					     it->send_id, empty, now_ms, res);
		break;
	case 4:
		rv = conv_row_ensure(e, txn, index, it->recv_id, it->conv_id, 4, it->send_id, empty,
				     now_ms, res);
		break;
	case 3:
		rv = first ? conv_rows_group(e, txn, index, it, now_ms, res)
			   : conv_row_ensure(e, txn, index, it->send_id, it->conv_id, 3, empty,
					     it->group_id, now_ms, res);
		break;
	default:
		break;
	}
	return rv;
}

/* ---------------------------------------------------------------- items */

#define ITEM_FLAGS_ALL                                                                             \
	(ENG_MSG_STORE | ENG_MSG_SENDER_SYNC | ENG_MSG_NOTIFICATION | ENG_MSG_CHECK_MEMBER |       \
	 ENG_MSG_SENDER_READ)

/* The rules every item checks first (the codec already bounds the lengths). */
static int item_valid(uint32_t i, const struct eng_msg_item *it, struct eng_result *res)
{
	if (!eng__conv_id_valid(it->conv_id))
		return reject(res, IM_EINVAL, "item %" PRIu32 ": empty conversationID", i);
	if (!eng__id_valid(it->send_id))
		return reject(res, IM_EINVAL, "item %" PRIu32 ": empty sendID", i);
	if (it->flags & ~(uint32_t)ITEM_FLAGS_ALL)
		return reject(res, IM_EINVAL, "item %" PRIu32 ": unknown flags 0x%" PRIx32, i,
			      it->flags);
	switch (it->session_type) {
	case 1:
	case 4:
		if (!eng__id_valid(it->recv_id))
			return reject(res, IM_EINVAL, "item %" PRIu32 ": empty recvID", i);
		return 0;
	case 3:
		if (!eng__id_valid(it->group_id))
			return reject(res, IM_EINVAL, "item %" PRIu32 ": empty groupID", i);
		return 0;
	default:
		return reject(res, IM_EINVAL, "item %" PRIu32 ": unknown sessionType %" PRId32, i,
			      it->session_type);
	}
}

static void result_set(struct eng_msg_result *m, uint64_t seq, bool dup, struct im_str smid,
		       int64_t send_time)
{
	m->seq = seq;
	m->dup = dup;
	size_t n = IM_MIN((size_t)smid.n, sizeof(m->server_msg_id) - 1);
	if (n)
		memcpy(m->server_msg_id, smid.p, n);
	m->server_msg_id[n] = '\0';
	m->send_time = send_time;
}

/*
 * Looks (send_id, client_msg_id) up in msg_dedup.  DUP and res->msgs[i]
 * filled with the original when found, 0 when not, or < 0 / ENG__REJECT.
 */
static int item_dedup(struct eng *e, MDB_txn *txn, uint32_t i, const struct eng_msg_item *it,
		      struct eng_result *res)
{
	if (it->client_msg_id.n == 0)
		return 0;
	unsigned char k[ENG__PAIR_KEY_MAX];
	size_t kn = eng__key_join(k, it->send_id, it->client_msg_id);
	MDB_val val;
	int rv = get(e, txn, ENG__T_MSG_DEDUP, k, kn, &val, "mdb_get msg_dedup");
	if (rv != 0)
		return rv < 0 ? rv : 0;
	struct eng__dedup d;
	if (eng__dedup_rec_decode(val.mv_data, val.mv_size, &d) != 0)
		return reject(res, IM_ECORRUPT,
			      "msg_dedup (" ID_FMT ", " ID_FMT "): stored record does not decode",
			      ID_ARG(it->send_id), ID_ARG(it->client_msg_id));
	result_set(&res->msgs[i], (uint64_t)d.seq, true, d.server_msg_id, d.send_time);
	return DUP;
}

/* Group messages with ENG_MSG_CHECK_MEMBER: the sender must be a member (§6.6 step 3). */
static int item_member_check(struct eng *e, MDB_txn *txn, uint32_t i, const struct eng_msg_item *it,
			     struct eng_result *res)
{
	if (!(it->flags & ENG_MSG_CHECK_MEMBER) || it->session_type != 3)
		return 0;
	unsigned char k[ENG__PAIR_KEY_MAX];
	size_t kn = eng__key_join(k, it->group_id, it->send_id);
	MDB_val val;
	int rv = get(e, txn, ENG__T_MEMBERS, k, kn, &val, "mdb_get members");
	if (rv == ABSENT)
		return reject(res, IM_EPERM,
			      "item %" PRIu32 ": " ID_FMT " is not a member of group " ID_FMT, i,
			      ID_ARG(it->send_id), ID_ARG(it->group_id));
	return rv;
}

/* Stores one item: the next seq, the bytes with the seq field, seqs, dedup, read seq, rows. */
static int item_store(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms, uint32_t i,
		      const struct eng_msg_item *it, struct im_str extra, struct eng_result *res)
{
	struct eng__conv_seq cs;
	int rv = conv_seq_get(e, txn, it->conv_id, &cs, res);
	if (rv != 0)
		return rv;
	if (cs.max_seq < 0 || cs.max_seq == INT64_MAX)
		return reject(res, IM_ECORRUPT, "conv_seqs " ID_FMT ": max_seq %" PRId64,
			      ID_ARG(it->conv_id), cs.max_seq);
	uint64_t seq = (uint64_t)cs.max_seq + 1;

	/* format | flags | MsgData | the seq field (invariant 2). */
	size_t vn = ENG__MSG_VAL_HDR + (size_t)it->data.n + ENG__SEQ_FIELD_MAX;
	unsigned char *v = scratch(e, vn);
	if (v == NULL)
		return -ENOMEM;
	v[0] = ENG__REC_MSG_V1;
	v[1] = 0;
	if (it->data.n)
		memcpy(v + ENG__MSG_VAL_HDR, it->data.p, it->data.n);
	vn = ENG__MSG_VAL_HDR + it->data.n + eng__seq_field(v + ENG__MSG_VAL_HDR + it->data.n, seq);
	unsigned char k[ENG__MSG_KEY_MAX];
	size_t kn = eng__msg_key(k, it->conv_id, seq);
	MDB_val key = {kn, k}, val = {vn, v};
	int rc = mdb_put(txn, e->dbi[ENG__T_MSGS], &key, &val, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return reject(res, IM_ECORRUPT, "msgs " ID_FMT ": seq %" PRIu64 " is taken",
			      ID_ARG(it->conv_id), seq);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_put msgs");
	/* The event copies the stored bytes before scratch is reused. */
	struct im_str stored = {(const char *)v + ENG__MSG_VAL_HDR,
				(uint32_t)(vn - ENG__MSG_VAL_HDR)};
	rv = eng__event_add(e, index, it, seq, stored, extra);
	if (rv != 0)
		return rv;

	/* Invariant 1: max_seq moves with the message; min_seq starts at 1. */
	unsigned char sv[ENG__CONV_SEQ_LEN];
	struct eng__conv_seq ns = {(int64_t)seq, cs.min_seq ? cs.min_seq : 1, it->send_time};
	eng__conv_seq_encode(sv, &ns);
	rv = put(e, txn, ENG__T_CONV_SEQS, it->conv_id.p, it->conv_id.n, sv, sizeof(sv), 0,
		 "mdb_put conv_seqs");
	if (rv != 0)
		return rv;

	/* Invariant 3: the dedup record names the message. */
	if (it->client_msg_id.n) {
		struct eng__dedup d = {it->conv_id, (int64_t)seq, it->server_msg_id, it->send_time};
		size_t dn = eng__dedup_rec_size(&d);
		unsigned char *dv = scratch(e, dn);
		if (dv == NULL)
			return -ENOMEM;
		eng__dedup_rec_encode(dv, &d);
		unsigned char dk[ENG__PAIR_KEY_MAX];
		size_t dkn = eng__key_join(dk, it->send_id, it->client_msg_id);
		rv = put(e, txn, ENG__T_MSG_DEDUP, dk, dkn, dv, dn, MDB_NOOVERWRITE,
			 "mdb_put msg_dedup");
		if (rv != 0)
			return rv;
	}
	if (it->flags & ENG_MSG_SENDER_READ) {
		rv = read_seq_raise(e, txn, it->send_id, it->conv_id, (int64_t)seq, NULL, res);
		if (rv != 0)
			return rv;
	}
	rv = conv_rows(e, txn, index, it, now_ms, seq == 1, res);
	if (rv != 0)
		return rv;
	result_set(&res->msgs[i], seq, false, it->server_msg_id, it->send_time);
	return 0;
}

static int items_run(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		     struct im_str all_extra, struct eng_result *res);

/*
 * The extra recipients (eng_event.extra) of the items of cmd: the users a
 * GROUP_MEMBERS_REMOVE removed, joined by 0x00, into *buf (freed by the
 * caller).  Empty for every other command.
 */
static int items_extra(struct eng *e, const struct eng_cmd *cmd, struct im_buf *buf,
		       struct im_str *out)
{
	*out = empty;
	if (cmd->type == ENG_CMD_GROUP_DISMISS) {
		/* group_dismiss (apply_group.c) listed the members it removed. */
		*out = (struct im_str){e->removed.p, (uint32_t)e->removed.len};
		return 0;
	}
	if (cmd->type != ENG_CMD_GROUP_MEMBERS_REMOVE)
		return 0;
	for (uint32_t i = 0; i < cmd->m.group_members_remove.n_users; i++) {
		struct im_str u = cmd->m.group_members_remove.user_ids[i];
		if ((i > 0 && im_buf_add(buf, "", 1) != 0) || im_buf_add(buf, u.p, u.n) != 0)
			return eng__errf(e, -ENOMEM, "event: out of memory");
	}
	*out = (struct im_str){buf->p, (uint32_t)buf->len};
	return 0;
}

/* True if the item is a group item of the group cmd removes members from. */
static bool item_gets_extra(const struct eng_cmd *cmd, const struct eng_msg_item *it)
{
	if (cmd->type == ENG_CMD_GROUP_DISMISS)
		return it->session_type == 3 &&
		       im_str_eq(it->group_id, cmd->m.group_dismiss.group_id);
	return cmd->type == ENG_CMD_GROUP_MEMBERS_REMOVE && it->session_type == 3 &&
	       im_str_eq(it->group_id, cmd->m.group_members_remove.group_id);
}

int eng__apply_items(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		     struct eng_result *res)
{
	struct im_buf xb = {0};
	struct im_str extra;
	int rv = items_extra(e, cmd, &xb, &extra);
	if (rv == 0)
		rv = items_run(e, txn, index, cmd, extra, res);
	im_buf_free(&xb);
	return rv;
}

static int items_run(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		     struct im_str all_extra, struct eng_result *res)
{
	res->n_msgs = cmd->n_items;
	for (uint32_t i = 0; i < cmd->n_items; i++) {
		const struct eng_msg_item *it = &cmd->items[i];
		int rv = item_valid(i, it, res);
		if (rv == 0)
			rv = item_dedup(e, txn, i, it, res);
		if (rv == DUP)
			continue; /* a resend: the original's answer, nothing else */
		if (rv == 0)
			rv = item_member_check(e, txn, i, it, res);
		if (rv != 0)
			return rv;
		struct im_str extra = item_gets_extra(cmd, it) ? all_extra : empty;
		if (it->flags & ENG_MSG_STORE) {
			rv = item_store(e, txn, index, cmd->now_ms, i, it, extra, res);
		} else {
			/* Online only: pushed as it is, no seq. */
			rv = eng__event_add(e, index, it, 0, it->data, extra);
			result_set(&res->msgs[i], 0, false, it->server_msg_id, it->send_time);
		}
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* ---------------------------------------------------------------- conversations */

#define CONV_MASK_ALL                                                                              \
	(ENG_CONV_RECV_MSG_OPT | ENG_CONV_IS_PINNED | ENG_CONV_ATTACHED_INFO |                     \
	 ENG_CONV_IS_PRIVATE_CHAT | ENG_CONV_EX | ENG_CONV_BURN_DURATION | ENG_CONV_MIN_SEQ |      \
	 ENG_CONV_MAX_SEQ | ENG_CONV_GROUP_AT_TYPE | ENG_CONV_MSG_DESTRUCT_TIME |                  \
	 ENG_CONV_IS_MSG_DESTRUCT)

/* Reads owner's row of conv into *c: 0, ABSENT, < 0 or ENG__REJECT. */
int conv_row_get(struct eng *e, MDB_txn *txn, struct im_str owner, struct im_str conv,
		 struct eng_conv *c, struct eng_result *res)
{
	unsigned char k[ENG__CONV_KEY_MAX];
	size_t kn = eng__key_join(k, owner, conv);
	MDB_val val;
	int rv = get(e, txn, ENG__T_CONVS, k, kn, &val, "mdb_get convs");
	if (rv != 0)
		return rv;
	c->owner_user_id = owner;
	c->conversation_id = conv;
	if (eng__conv_rec_decode(val.mv_data, val.mv_size, c) != 0)
		return reject(res, IM_ECORRUPT,
			      "convs (" ID_FMT ", " ID_FMT "): stored record does not decode",
			      ID_ARG(owner), ID_ARG(conv));
	return 0;
}

/*
 * CONV_SET (set_conversations): create missing rows, then write the masked
 * fields; each owner's CONVERSATION log gets INSERT (created) or UPDATE.
 */
static int conv_set(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		    struct eng_result *res)
{
	const struct eng_conv *in = &cmd->m.conv_set.conv;
	uint32_t mask = cmd->m.conv_set.mask;
	if (!eng__conv_id_valid(in->conversation_id))
		return reject(res, IM_EINVAL, "empty conversationID");
	if (mask & ~(uint32_t)CONV_MASK_ALL)
		return reject(res, IM_EINVAL, "unknown field mask 0x%" PRIx32, mask);
	if (cmd->m.conv_set.n_owners == 0)
		return reject(res, IM_EINVAL, "no owners");
	for (uint32_t i = 0; i < cmd->m.conv_set.n_owners; i++) {
		struct im_str owner = cmd->m.conv_set.owners[i];
		if (!eng__id_valid(owner))
			return reject(res, IM_EINVAL, "owner %" PRIu32 ": empty userID", i);
		struct eng_conv c;
		int rv = conv_row_get(e, txn, owner, in->conversation_id, &c, res);
		if (rv < 0 || rv == ENG__REJECT)
			return rv;
		int state = rv == ABSENT ? ENG_VLOG_INSERT : ENG_VLOG_UPDATE;
		if (rv == ABSENT) {
			if (!user_exists(e, txn, owner, &rv))
				return rv ? rv
					  : reject(res, IM_ENOTFOUND, "userID " ID_FMT " not found",
						   ID_ARG(owner));
			c = (struct eng_conv){.owner_user_id = owner,
					      .conversation_id = in->conversation_id,
					      .conversation_type = in->conversation_type,
					      .user_id = in->user_id,
					      .group_id = in->group_id,
					      .create_time = cmd->now_ms};
		}
		if (mask & ENG_CONV_RECV_MSG_OPT)
			c.recv_msg_opt = in->recv_msg_opt;
		if (mask & ENG_CONV_IS_PINNED)
			c.is_pinned = in->is_pinned;
		if (mask & ENG_CONV_ATTACHED_INFO)
			c.attached_info = in->attached_info;
		if (mask & ENG_CONV_IS_PRIVATE_CHAT)
			c.is_private_chat = in->is_private_chat;
		if (mask & ENG_CONV_EX)
			c.ex = in->ex;
		if (mask & ENG_CONV_BURN_DURATION)
			c.burn_duration = in->burn_duration;
		if (mask & ENG_CONV_MIN_SEQ)
			c.min_seq = in->min_seq;
		if (mask & ENG_CONV_MAX_SEQ)
			c.max_seq = in->max_seq;
		if (mask & ENG_CONV_GROUP_AT_TYPE)
			c.group_at_type = in->group_at_type;
		if (mask & ENG_CONV_MSG_DESTRUCT_TIME)
			c.msg_destruct_time = in->msg_destruct_time;
		if (mask & ENG_CONV_IS_MSG_DESTRUCT)
			c.is_msg_destruct = in->is_msg_destruct;
		/* The views in c may point into the map: conv_row_put encodes first. */
		rv = conv_row_put(e, txn, owner, &c);
		if (rv == 0)
			rv = conv_log(e, txn, index, cmd->now_ms, owner, in->conversation_id, state,
				      res);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* Sets flag bits on the stored message under cursor c (key/val from it), if not set yet. */
static int msg_flag_set_at(struct eng *e, MDB_cursor *c, MDB_val *key, const MDB_val *val,
			   uint8_t flag)
{
	uint8_t flags;
	struct im_str data;
	if (eng__msg_val_decode(val->mv_data, val->mv_size, &flags, &data) != 0)
		return eng__errf(e, IM_ECORRUPT, "msgs: record does not decode");
	if (flags & flag)
		return 0;
	/* A copy with the new flags; same size, so the put does not move the key. */
	unsigned char *v = scratch(e, val->mv_size);
	if (v == NULL)
		return -ENOMEM;
	memcpy(v, val->mv_data, val->mv_size);
	v[1] = (unsigned char)(flags | flag);
	MDB_val nv = {val->mv_size, v};
	int rc = mdb_cursor_put(c, key, &nv, MDB_CURRENT);
	return rc ? eng__from_mdb(e, rc, "mdb_cursor_put msgs") : 0;
}

/* Marks (conv, seq) read if it is stored; 0 either way. */
static int msg_mark_one(struct eng *e, MDB_cursor *c, struct im_str conv, int64_t seq)
{
	if (seq <= 0)
		return 0;
	unsigned char k[ENG__MSG_KEY_MAX];
	MDB_val key = {eng__msg_key(k, conv, (uint64_t)seq), k}, val;
	int rc = mdb_cursor_get(c, &key, &val, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_get msgs");
	return msg_flag_set_at(e, c, &key, &val, ENG__MSG_F_READ);
}

/*
 * Sets isRead on the stored messages of (old, new] and on the listed seqs.
 * The engine cannot tell who sent opaque bytes, so it marks every message of
 * the range: in 1:1 the reader's own messages are at or below the reader's
 * hasReadSeq already (ENG_MSG_SENDER_READ), so the range holds the peer's.
 */
static int mark_msgs(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd, int64_t old,
		     int64_t upto)
{
	struct im_str conv = cmd->m.mark_read.conv_id;
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, e->dbi[ENG__T_MSGS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open msgs");
	unsigned char pfx[ENG__MSG_KEY_MAX], start[ENG__MSG_KEY_MAX];
	size_t pn = eng__key_join(pfx, conv, empty);
	int rv = 0;
	if (upto > old) {
		/* From old + 1 while the key is in the conversation and <= upto. */
		MDB_val key = {eng__msg_key(start, conv, (uint64_t)old + 1), start}, val;
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		while (rc == 0 && key.mv_size == pn + 8 && memcmp(key.mv_data, pfx, pn) == 0 &&
		       im_get_be64((unsigned char *)key.mv_data + pn) <= (uint64_t)upto) {
			rv = msg_flag_set_at(e, c, &key, &val, ENG__MSG_F_READ);
			if (rv != 0)
				break;
			rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
		}
		if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
			rv = eng__from_mdb(e, rc, "mdb_cursor_get msgs");
	}
	for (uint32_t i = 0; rv == 0 && i < cmd->m.mark_read.n_seqs; i++)
		rv = msg_mark_one(e, c, conv, cmd->m.mark_read.seqs[i]);
	mdb_cursor_close(c);
	return rv;
}

/* MARK_READ (§6.8): raise hasReadSeq to min(has_read_seq, maxSeq); 1:1 marks messages. */
static int mark_read(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd, struct eng_result *res)
{
	struct im_str user = cmd->m.mark_read.user_id, conv = cmd->m.mark_read.conv_id;
	if (!eng__id_valid(user))
		return reject(res, IM_EINVAL, "empty userID");
	if (!eng__conv_id_valid(conv))
		return reject(res, IM_EINVAL, "empty conversationID");
	struct eng_conv row;
	int rv = conv_row_get(e, txn, user, conv, &row, res);
	if (rv == ABSENT)
		return reject(res, IM_ENOTFOUND, "conversation " ID_FMT " of " ID_FMT " not found",
			      ID_ARG(conv), ID_ARG(user));
	if (rv != 0)
		return rv;
	struct eng__conv_seq cs;
	rv = conv_seq_get(e, txn, conv, &cs, res);
	if (rv != 0)
		return rv;
	int64_t upto = IM_MIN(cmd->m.mark_read.has_read_seq, cs.max_seq), old;
	rv = read_seq_raise(e, txn, user, conv, upto, &old, res);
	if (rv != 0 || !cmd->m.mark_read.mark_msgs)
		return rv;
	return mark_msgs(e, txn, cmd, old, upto);
}

/* REVOKE (§6.9): flag the message and keep the revoker's marker. */
static int revoke(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd, struct eng_result *res)
{
	struct im_str conv = cmd->m.revoke.conv_id;
	int64_t seq = cmd->m.revoke.seq;
	if (!eng__conv_id_valid(conv))
		return reject(res, IM_EINVAL, "empty conversationID");
	if (!eng__id_valid(cmd->m.revoke.revoker_id))
		return reject(res, IM_EINVAL, "empty revoker userID");
	if (seq <= 0)
		return reject(res, IM_ENOTFOUND, "message (" ID_FMT ", %" PRId64 ") not found",
			      ID_ARG(conv), seq);
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, e->dbi[ENG__T_MSGS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open msgs");
	unsigned char k[ENG__MSG_KEY_MAX];
	size_t kn = eng__msg_key(k, conv, (uint64_t)seq);
	MDB_val key = {kn, k}, val;
	uint8_t flags = 0;
	struct im_str data;
	int rv = 0;
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND)
		rv = reject(res, IM_ENOTFOUND, "message (" ID_FMT ", %" PRId64 ") not found",
			    ID_ARG(conv), seq);
	else if (rc != 0)
		rv = eng__from_mdb(e, rc, "mdb_cursor_get msgs");
	else if (eng__msg_val_decode(val.mv_data, val.mv_size, &flags, &data) != 0)
		rv = reject(res, IM_ECORRUPT,
			    "message (" ID_FMT ", %" PRId64 "): stored record does not decode",
			    ID_ARG(conv), seq);
	else if (flags & ENG__MSG_F_REVOKED)
		rv = reject(res, IM_EEXIST, "message (" ID_FMT ", %" PRId64 ") already revoked",
			    ID_ARG(conv), seq);
	else
		rv = msg_flag_set_at(e, c, &key, &val, ENG__MSG_F_REVOKED);
	mdb_cursor_close(c);
	if (rv != 0)
		return rv;
	struct eng_revoke r = {cmd->m.revoke.revoker_id, cmd->m.revoke.revoker_role,
			       cmd->m.revoke.revoker_nickname, cmd->m.revoke.revoke_time};
	size_t n = eng__revoke_rec_size(&r);
	unsigned char *v = scratch(e, n);
	if (v == NULL)
		return -ENOMEM;
	eng__revoke_rec_encode(v, &r);
	rv = put(e, txn, ENG__T_REVOKES, k, kn, v, n, MDB_NOOVERWRITE, "mdb_put revokes");
	if (rv == IM_EEXIST)
		return reject(res, IM_ECORRUPT,
			      "message (" ID_FMT ", %" PRId64 "): revoke record without the flag",
			      ID_ARG(conv), seq);
	return rv;
}

/* MSG_HIDE (§6.10 delete for me): hide the listed seqs that are stored. */
static int msg_hide(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd, struct eng_result *res)
{
	struct im_str user = cmd->m.msg_hide.user_id, conv = cmd->m.msg_hide.conv_id;
	if (!eng__id_valid(user))
		return reject(res, IM_EINVAL, "empty userID");
	if (!eng__conv_id_valid(conv))
		return reject(res, IM_EINVAL, "empty conversationID");
	for (uint32_t i = 0; i < cmd->m.msg_hide.n_seqs; i++) {
		int64_t seq = cmd->m.msg_hide.seqs[i];
		if (seq <= 0)
			continue;
		unsigned char k[ENG__MSG_KEY_MAX], hk[ENG__HIDDEN_KEY_MAX];
		size_t kn = eng__msg_key(k, conv, (uint64_t)seq);
		MDB_val val;
		int rv = get(e, txn, ENG__T_MSGS, k, kn, &val, "mdb_get msgs");
		if (rv == ABSENT)
			continue;
		if (rv == 0)
			rv = put(e, txn, ENG__T_HIDDEN, hk,
				 eng__hidden_key(hk, user, conv, (uint64_t)seq), "", 0, 0,
				 "mdb_put hidden");
		if (rv != 0)
			return rv;
	}
	return 0;
}

/*
 * Clears one row (the views of *c may point into the map): its min_seq
 * becomes maxSeq + 1 and the read seq rises to maxSeq (§6.10).
 */
static int conv_clear_row(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
			  struct eng_conv *c, struct eng_result *res)
{
	struct eng__conv_seq cs;
	int rv = conv_seq_get(e, txn, c->conversation_id, &cs, res);
	if (rv != 0)
		return rv;
	c->min_seq = cs.max_seq + 1;
	rv = conv_row_put(e, txn, c->owner_user_id, c);
	if (rv == 0)
		rv = conv_log(e, txn, index, now_ms, c->owner_user_id, c->conversation_id,
			      ENG_VLOG_UPDATE, res);
	if (rv == 0)
		rv = read_seq_raise(e, txn, c->owner_user_id, c->conversation_id, cs.max_seq, NULL,
				    res);
	return rv;
}

/*
 * The key after last (ln bytes; ln 0: the first) under the prefix pfx, copied
 * into last: 0, ABSENT past the prefix, or an error.  Seeking by key each
 * time keeps no cursor open across the writes of the caller.
 */
static int conv_next_row(struct eng *e, MDB_txn *txn, const unsigned char *pfx, size_t pn,
			 unsigned char *last, size_t *ln, struct eng_result *res)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, e->dbi[ENG__T_CONVS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open convs");
	MDB_val key = *ln ? (MDB_val){*ln, last} : (MDB_val){pn, (void *)pfx}, val;
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	if (rc == 0 && *ln && key.mv_size == *ln && memcmp(key.mv_data, last, *ln) == 0)
		rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
	int rv = 0;
	if (rc == MDB_NOTFOUND || (rc == 0 && (key.mv_size < pn || memcmp(key.mv_data, pfx, pn))))
		rv = ABSENT;
	else if (rc != 0)
		rv = eng__from_mdb(e, rc, "mdb_cursor_get convs");
	else if (key.mv_size == pn || key.mv_size > ENG__CONV_KEY_MAX)
		rv = reject(res, IM_ECORRUPT, "convs: bad key of %zu bytes", key.mv_size);
	else
		memcpy(last, key.mv_data, *ln = key.mv_size);
	mdb_cursor_close(c);
	return rv;
}

/* CONV_CLEAR (clear_conversation_msg, user_clear_all_msg): rows without one are skipped. */
static int conv_clear(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		      struct eng_result *res)
{
	struct im_str user = cmd->m.conv_clear.user_id;
	if (!eng__id_valid(user))
		return reject(res, IM_EINVAL, "empty userID");
	for (uint32_t i = 0; i < cmd->m.conv_clear.n_convs; i++) {
		struct im_str conv = cmd->m.conv_clear.conv_ids[i];
		if (!eng__conv_id_valid(conv))
			return reject(res, IM_EINVAL, "conversation %" PRIu32 ": empty id", i);
		struct eng_conv c;
		int rv = conv_row_get(e, txn, user, conv, &c, res);
		if (rv == ABSENT)
			continue;
		if (rv == 0)
			rv = conv_clear_row(e, txn, index, cmd->now_ms, &c, res);
		if (rv != 0)
			return rv;
	}
	if (cmd->m.conv_clear.n_convs > 0)
		return 0;
	/* Every row of the user, one at a time (the rows are written as we go). */
	unsigned char pfx[ENG__CONV_KEY_MAX], last[ENG__CONV_KEY_MAX];
	size_t pn = eng__key_join(pfx, user, empty), ln = 0;
	int rv;
	while ((rv = conv_next_row(e, txn, pfx, pn, last, &ln, res)) == 0) {
		struct im_str conv = {(const char *)last + pn, (uint32_t)(ln - pn)};
		struct eng_conv c;
		rv = conv_row_get(e, txn, user, conv, &c, res);
		if (rv == 0)
			rv = conv_clear_row(e, txn, index, cmd->now_ms, &c, res);
		if (rv != 0)
			return rv == ABSENT ? IM_ECORRUPT : rv;
	}
	return rv == ABSENT ? 0 : rv;
}

/* ---------------------------------------------------------------- groups */

/* "sg_<group>" into buf (ENG_CONV_ID_MAX + 1 bytes). */
struct im_str group_conv(char *buf, struct im_str gid)
{
	int cn = snprintf(buf, ENG_CONV_ID_MAX + 1, "sg_%.*s", (int)gid.n, gid.p);
	return (struct im_str){buf, (uint32_t)cn};
}

/* The membership logs of one member joining (INSERT) or leaving (DELETE) (§7.1). */
static int member_logs(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
		       struct im_str gid, struct im_str uid, int state, struct eng_result *res)
{
	int rv = eng__vlog_write(e, txn, index, now_ms, ENG_VLOG_JOIN_GROUP, uid, gid, state, res);
	if (rv == 0)
		rv = eng__vlog_write(e, txn, index, now_ms, ENG_VLOG_GROUP_MEMBER, gid, uid, state,
				     res);
	return rv;
}

int eng__group_put(struct eng *e, MDB_txn *txn, const struct eng_group *g)
{
	size_t gn = eng__group_rec_size(g);
	unsigned char *gv = scratch(e, gn);
	if (gv == NULL)
		return -ENOMEM;
	eng__group_rec_encode(gv, g);
	return put(e, txn, ENG__T_GROUPS, g->group_id.p, g->group_id.n, gv, gn, 0,
		   "mdb_put groups");
}

/* GROUP_CREATE: a new group, its members and the user_groups index (invariant 5). */
static int group_create(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			struct eng_result *res)
{
	struct eng_group g = cmd->m.group_create.group;
	uint32_t n = cmd->m.group_create.n_members;
	if (!eng__id_valid(g.group_id))
		return reject(res, IM_EINVAL, "empty groupID");
	if (n == 0)
		return reject(res, IM_EINVAL, "group " ID_FMT ": no members", ID_ARG(g.group_id));
	MDB_val val;
	int rv = get(e, txn, ENG__T_GROUPS, g.group_id.p, g.group_id.n, &val, "mdb_get groups");
	if (rv == 0)
		return reject(res, IM_EEXIST, "groupID " ID_FMT " already exists",
			      ID_ARG(g.group_id));
	if (rv < 0)
		return rv;
	char convb[ENG_CONV_ID_MAX + 1];
	struct im_str conv = group_conv(convb, g.group_id);
	for (uint32_t i = 0; i < n; i++) {
		struct eng_member m = cmd->m.group_create.members[i];
		m.group_id = g.group_id;
		if (!eng__id_valid(m.user_id))
			return reject(res, IM_EINVAL, "member %" PRIu32 ": empty userID", i);
		if (!user_exists(e, txn, m.user_id, &rv))
			return rv ? rv
				  : reject(res, IM_ENOTFOUND, "userID " ID_FMT " not found",
					   ID_ARG(m.user_id));
		unsigned char k[ENG__PAIR_KEY_MAX];
		size_t kn = eng__key_join(k, g.group_id, m.user_id);
		size_t vn = eng__member_rec_size(&m);
		unsigned char *v = scratch(e, vn);
		if (v == NULL)
			return -ENOMEM;
		eng__member_rec_encode(v, &m);
		rv = put(e, txn, ENG__T_MEMBERS, k, kn, v, vn, MDB_NOOVERWRITE, "mdb_put members");
		if (rv == IM_EEXIST)
			return reject(res, IM_EEXIST, "member " ID_FMT " listed twice",
				      ID_ARG(m.user_id));
		if (rv != 0)
			return rv;
		unsigned char jt[ENG__I64_VAL_LEN];
		im_put_be64(jt, (uint64_t)m.join_time);
		kn = eng__key_join(k, m.user_id, g.group_id);
		rv = put(e, txn, ENG__T_USER_GROUPS, k, kn, jt, sizeof(jt), 0,
			 "mdb_put user_groups");
		if (rv != 0)
			return rv;
		/* Every member has the group's conversation row from the start. */
		rv = conv_row_ensure(e, txn, index, m.user_id, conv, 3, empty, g.group_id,
				     cmd->now_ms, res);
		if (rv == 0)
			rv = member_logs(e, txn, index, cmd->now_ms, g.group_id, m.user_id,
					 ENG_VLOG_INSERT, res);
		if (rv != 0)
			return rv;
	}
	g.member_count = n;
	return eng__group_put(e, txn, &g);
}

int group_read(struct eng *e, MDB_txn *txn, struct im_str gid, struct eng_group *g,
	       struct eng_result *res)
{
	if (!eng__id_valid(gid))
		return reject(res, IM_EINVAL, "empty groupID");
	MDB_val val;
	int rv = get(e, txn, ENG__T_GROUPS, gid.p, gid.n, &val, "mdb_get groups");
	if (rv == ABSENT)
		return reject(res, IM_ENOTFOUND, "groupID " ID_FMT " not found", ID_ARG(gid));
	if (rv != 0)
		return rv;
	if (eng__group_rec_decode(val.mv_data, val.mv_size, g) != 0)
		return reject(res, IM_ECORRUPT, "groups " ID_FMT ": stored record does not decode",
			      ID_ARG(gid));
	g->group_id = gid;
	return 0;
}

/* member_count of gid changes by delta (invariant 5); read after the member writes. */
static int group_count_add(struct eng *e, MDB_txn *txn, struct im_str gid, int64_t delta,
			   struct eng_result *res)
{
	struct eng_group g;
	int rv = group_read(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	int64_t n = (int64_t)g.member_count + delta;
	if (n < 0 || n > UINT32_MAX)
		return reject(res, IM_ECORRUPT, "groups " ID_FMT ": member_count %" PRId64,
			      ID_ARG(gid), n);
	g.member_count = (uint32_t)n;
	return eng__group_put(e, txn, &g);
}

int eng__member_join(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
		     const struct eng_member *m, bool hide_history, struct eng_result *res)
{
	struct im_str gid = m->group_id;
	int rv;
	if (!eng__id_valid(m->user_id))
		return reject(res, IM_EINVAL, "empty userID");
	if (!user_exists(e, txn, m->user_id, &rv))
		return rv ? rv
			  : reject(res, IM_ENOTFOUND, "userID " ID_FMT " not found",
				   ID_ARG(m->user_id));
	unsigned char k[ENG__PAIR_KEY_MAX];
	size_t kn = eng__key_join(k, gid, m->user_id);
	size_t vn = eng__member_rec_size(m);
	unsigned char *v = scratch(e, vn);
	if (v == NULL)
		return -ENOMEM;
	eng__member_rec_encode(v, m);
	rv = put(e, txn, ENG__T_MEMBERS, k, kn, v, vn, MDB_NOOVERWRITE, "mdb_put members");
	if (rv == IM_EEXIST)
		return reject(res, IM_EEXIST, "userID " ID_FMT " is already a member",
			      ID_ARG(m->user_id));
	if (rv != 0)
		return rv;
	unsigned char jt[ENG__I64_VAL_LEN];
	im_put_be64(jt, (uint64_t)m->join_time);
	kn = eng__key_join(k, m->user_id, gid);
	rv = put(e, txn, ENG__T_USER_GROUPS, k, kn, jt, sizeof(jt), 0, "mdb_put user_groups");
	if (rv != 0)
		return rv;
	char convb[ENG_CONV_ID_MAX + 1];
	struct im_str conv = group_conv(convb, gid);
	/* §8.2 enableHistoryForNewMembers=false: reads start past today's history. */
	int64_t min_seq = -1;
	if (hide_history) {
		struct eng__conv_seq cs;
		rv = conv_seq_get(e, txn, conv, &cs, res);
		if (rv != 0)
			return rv;
		min_seq = cs.max_seq + 1;
	}
	struct eng_conv c;
	rv = conv_row_get(e, txn, m->user_id, conv, &c, res);
	if (rv < 0 || rv == ENG__REJECT)
		return rv;
	int state = ENG_VLOG_UPDATE;
	if (rv == ABSENT) {
		c = (struct eng_conv){.owner_user_id = m->user_id,
				      .conversation_id = conv,
				      .conversation_type = 3,
				      .group_id = gid,
				      .create_time = now_ms};
		state = ENG_VLOG_INSERT;
	} else if (c.max_seq == 0 && (min_seq < 0 || c.min_seq == min_seq)) {
		state = 0; /* nothing changes */
	}
	c.max_seq = 0; /* back in: no cap */
	if (min_seq >= 0)
		c.min_seq = min_seq;
	rv = 0;
	if (state != 0) {
		rv = conv_row_put(e, txn, m->user_id, &c);
		if (rv == 0)
			rv = conv_log(e, txn, index, now_ms, m->user_id, conv, state, res);
	}
	if (rv == 0)
		rv = member_logs(e, txn, index, now_ms, gid, m->user_id, ENG_VLOG_INSERT, res);
	return rv;
}

int eng__member_leave(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
		      struct im_str gid, struct im_str uid, int64_t max_seq, struct eng_result *res)
{
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val key = {eng__key_join(k, gid, uid), k};
	int rc = mdb_del(txn, e->dbi[ENG__T_MEMBERS], &key, NULL);
	if (rc == MDB_NOTFOUND)
		return reject(res, IM_ENOTFOUND,
			      "userID " ID_FMT " is not a member of group " ID_FMT, ID_ARG(uid),
			      ID_ARG(gid));
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_del members");
	key = (MDB_val){eng__key_join(k, uid, gid), k};
	rc = mdb_del(txn, e->dbi[ENG__T_USER_GROUPS], &key, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return eng__from_mdb(e, rc, "mdb_del user_groups");
	char convb[ENG_CONV_ID_MAX + 1];
	struct im_str conv = group_conv(convb, gid);
	struct eng_conv c;
	int rv = conv_row_get(e, txn, uid, conv, &c, res);
	if (rv == 0) {
		c.max_seq = max_seq;
		rv = conv_row_put(e, txn, uid, &c);
		if (rv == 0)
			rv = conv_log(e, txn, index, now_ms, uid, conv, ENG_VLOG_UPDATE, res);
	} else if (rv == ABSENT) {
		rv = 0;
	}
	if (rv == 0)
		rv = member_logs(e, txn, index, now_ms, gid, uid, ENG_VLOG_DELETE, res);
	return rv;
}

/*
 * GROUP_MEMBERS_ADD (invite, §8.2): each new member gets its members and
 * user_groups rows, an sg_ row without a cap (a rejoining user's old cap is
 * cleared, §6.5; with hide_history its min seq passes today's history) and
 * the membership logs.
 */
static int group_members_add(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			     struct eng_result *res)
{
	struct im_str gid = cmd->m.group_members_add.group_id;
	uint32_t n = cmd->m.group_members_add.n_members;
	struct eng_group g;
	int rv = group_read(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	if (n == 0)
		return reject(res, IM_EINVAL, "group " ID_FMT ": no members", ID_ARG(gid));
	for (uint32_t i = 0; i < n; i++) {
		struct eng_member m = cmd->m.group_members_add.members[i];
		m.group_id = gid;
		if (!eng__id_valid(m.user_id))
			return reject(res, IM_EINVAL, "member %" PRIu32 ": empty userID", i);
		rv = eng__member_join(e, txn, index, cmd->now_ms, &m,
				      cmd->m.group_members_add.hide_history, res);
		if (rv != 0)
			return rv;
	}
	return group_count_add(e, txn, gid, n, res);
}

/*
 * GROUP_MEMBERS_REMOVE (quit, kick, §8.2): the rows go, each leaver's sg_ row
 * is capped at the conversation's current max seq (§6.5: with no message yet
 * the cap is 0, i.e. none), and the membership logs get DELETE.  The owner
 * cannot leave (IM_EPERM); a user that is not a member is IM_ENOTFOUND.
 */
static int group_members_remove(struct eng *e, MDB_txn *txn, uint64_t index,
				const struct eng_cmd *cmd, struct eng_result *res)
{
	struct im_str gid = cmd->m.group_members_remove.group_id;
	uint32_t n = cmd->m.group_members_remove.n_users;
	int32_t reason = cmd->m.group_members_remove.reason;
	struct eng_group g;
	int rv = group_read(e, txn, gid, &g, res);
	if (rv != 0)
		return rv;
	if (n == 0)
		return reject(res, IM_EINVAL, "group " ID_FMT ": no members", ID_ARG(gid));
	if (reason != ENG_GROUP_QUIT && reason != ENG_GROUP_KICK)
		return reject(res, IM_EINVAL, "unknown reason %" PRId32, reason);
	/* Copied: the record's views do not survive the writes below. */
	char owner_b[ENG_ID_MAX];
	struct im_str owner = {owner_b, IM_MIN(g.owner_user_id.n, (uint32_t)ENG_ID_MAX)};
	memcpy(owner_b, g.owner_user_id.p, owner.n);
	char convb[ENG_CONV_ID_MAX + 1];
	struct im_str conv = group_conv(convb, gid);
	struct eng__conv_seq cs;
	rv = conv_seq_get(e, txn, conv, &cs, res);
	if (rv != 0)
		return rv;
	for (uint32_t i = 0; i < n; i++) {
		struct im_str uid = cmd->m.group_members_remove.user_ids[i];
		if (!eng__id_valid(uid))
			return reject(res, IM_EINVAL, "user %" PRIu32 ": empty userID", i);
		if (im_str_eq(uid, owner))
			return reject(res, IM_EPERM, "userID " ID_FMT " owns group " ID_FMT,
				      ID_ARG(uid), ID_ARG(gid));
		rv = eng__member_leave(e, txn, index, cmd->now_ms, gid, uid, cs.max_seq, res);
		if (rv != 0)
			return rv;
	}
	return group_count_add(e, txn, gid, -(int64_t)n, res);
}

int eng__apply_msg_cmd(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		       struct eng_result *res)
{
	switch (cmd->type) {
	case ENG_CMD_MSG_SEND:
		/* The items are the command: eng__apply_items() runs them next. */
		return cmd->n_items ? 0 : reject(res, IM_EINVAL, "no message items");
	case ENG_CMD_CONV_SET:
		return conv_set(e, txn, index, cmd, res);
	case ENG_CMD_MARK_READ:
		return mark_read(e, txn, cmd, res);
	case ENG_CMD_REVOKE:
		return revoke(e, txn, cmd, res);
	case ENG_CMD_MSG_HIDE:
		return msg_hide(e, txn, cmd, res);
	case ENG_CMD_CONV_CLEAR:
		return conv_clear(e, txn, index, cmd, res);
	case ENG_CMD_GROUP_CREATE:
		return group_create(e, txn, index, cmd, res);
	case ENG_CMD_GROUP_MEMBERS_ADD:
		return group_members_add(e, txn, index, cmd, res);
	case ENG_CMD_GROUP_MEMBERS_REMOVE:
		return group_members_remove(e, txn, index, cmd, res);
	default:
		return reject(res, IM_ECORRUPT, "unknown command type %d", cmd->type);
	}
}
