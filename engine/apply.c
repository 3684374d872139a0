/* apply.c - the deterministic effect of each command type on the tables. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "engine_int.h"

/*
 * Each handler runs inside the nested txn that eng_apply() opened for one
 * command.  It returns 0 (effects kept), ENG__REJECT after filling res (a rule
 * was broken: eng_apply() drops every effect) or a negative storage error.
 * A handler reads nothing but the txn and the command: no clock, no random.
 */

int eng__reject(struct eng_result *res, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	res->code = code;
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	return ENG__REJECT;
}

#define reject eng__reject
#define ID_FMT ENG__ID_FMT
#define ID_ARG ENG__ID_ARG
#define put    eng__put

int eng__put(struct eng *e, MDB_txn *txn, enum eng__table t, const void *k, size_t kn,
	     const void *v, size_t vn, unsigned int flags, const char *what)
{
	MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
	int rc = mdb_put(txn, e->dbi[t], &key, &val, flags);
	return rc ? eng__from_mdb(e, rc, what) : 0;
}

int eng__get(struct eng *e, MDB_txn *txn, enum eng__table t, const void *k, size_t kn, MDB_val *val,
	     const char *what)
{
	MDB_val key = {kn, (void *)k};
	int rc = mdb_get(txn, e->dbi[t], &key, val);
	if (rc == MDB_NOTFOUND)
		return ENG__ABSENT;
	return rc ? eng__from_mdb(e, rc, what) : 0;
}

int eng__del(struct eng *e, MDB_txn *txn, enum eng__table t, const void *k, size_t kn,
	     const char *what)
{
	MDB_val key = {kn, (void *)k};
	int rc = mdb_del(txn, e->dbi[t], &key, NULL);
	if (rc == MDB_NOTFOUND)
		return ENG__ABSENT;
	return rc ? eng__from_mdb(e, rc, what) : 0;
}

unsigned char *eng__scratch(struct eng *e, size_t n)
{
	e->scratch.len = 0;
	if (im_buf_reserve(&e->scratch, n) != 0) {
		eng__errf(e, -ENOMEM, "record: out of memory");
		return NULL;
	}
	return (unsigned char *)e->scratch.p;
}

/* ---------------------------------------------------------------- users */

/* Encodes u (with seq) into the engine's scratch buffer. */
static int user_record(struct eng *e, const struct eng_user *u, uint64_t seq, MDB_val *out)
{
	size_t n = eng__user_rec_size(u);
	e->scratch.len = 0;
	int rv = im_buf_reserve(&e->scratch, n);
	if (rv != 0)
		return eng__errf(e, rv, "user record: out of memory");
	eng__user_rec_encode((unsigned char *)e->scratch.p, u, seq);
	*out = (MDB_val){n, e->scratch.p};
	return 0;
}

/* USER_REGISTER: all or nothing.  Each user gets the next sequence. */
static int user_register(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd,
			 struct eng_result *res)
{
	uint32_t n = cmd->u.user_register.n;
	if (n == 0)
		return reject(res, IM_EINVAL, "no users to register");
	/* The counters are read in the child, so an abort also undoes them. */
	uint64_t count, seq;
	int rv = eng__meta_get_u64(e, txn, ENG__META_USERS, &count);
	if (rv == 0)
		rv = eng__meta_get_u64(e, txn, ENG__META_USER_SEQ, &seq);
	if (rv != 0)
		return rv == IM_ENOTFOUND ? IM_ECORRUPT : rv;
	for (uint32_t i = 0; i < n; i++) {
		const struct eng_user *u = &cmd->u.user_register.users[i];
		if (!eng__id_valid(u->user_id))
			return reject(res, IM_EINVAL, "user %" PRIu32 ": empty userID", i);
		MDB_val key = {u->user_id.n, (void *)u->user_id.p}, val;
		rv = user_record(e, u, seq, &val);
		if (rv != 0)
			return rv;
		/* NOOVERWRITE also catches a duplicate earlier in this command. */
		int rc = mdb_put(txn, e->dbi[ENG__T_USERS], &key, &val, MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST)
			return reject(res, IM_EEXIST, "userID " ID_FMT " already exists",
				      ID_ARG(u->user_id));
		if (rc != 0)
			return eng__from_mdb(e, rc, "mdb_put users");
		/* The order index: sequence -> userID, for paging. */
		unsigned char sk[8];
		im_put_be64(sk, seq);
		key = (MDB_val){8, sk};
		val = (MDB_val){u->user_id.n, (void *)u->user_id.p};
		rc = mdb_put(txn, e->dbi[ENG__T_USER_ORDER], &key, &val, MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST)
			return reject(res, IM_ECORRUPT, "user_order sequence %" PRIu64 " is taken",
				      seq);
		if (rc != 0)
			return eng__from_mdb(e, rc, "mdb_put user_order");
		seq++;
	}
	rv = eng__meta_put_u64(e, txn, ENG__META_USERS, count + n);
	if (rv == 0)
		rv = eng__meta_put_u64(e, txn, ENG__META_USER_SEQ, seq);
	return rv;
}

#define USER_MASK_ALL                                                                              \
	(ENG_USER_NICKNAME | ENG_USER_FACE_URL | ENG_USER_EX | ENG_USER_GLOBAL_RECV_MSG_OPT |      \
	 ENG_USER_APP_MANGER_LEVEL)

/* USER_UPDATE: overwrite the masked fields of one existing user. */
static int user_update(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		       struct eng_result *res)
{
	const struct eng_user *in = &cmd->u.user_update.user;
	uint32_t mask = cmd->u.user_update.mask;
	if (!eng__id_valid(in->user_id))
		return reject(res, IM_EINVAL, "empty userID");
	if (mask & ~(uint32_t)USER_MASK_ALL)
		return reject(res, IM_EINVAL, "unknown field mask 0x%" PRIx32, mask);
	MDB_val key = {in->user_id.n, (void *)in->user_id.p}, val;
	int rc = mdb_get(txn, e->dbi[ENG__T_USERS], &key, &val);
	if (rc == MDB_NOTFOUND)
		return reject(res, IM_ENOTFOUND, "userID " ID_FMT " not found",
			      ID_ARG(in->user_id));
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_get users");
	struct eng_user u;
	uint64_t seq;
	int rv = eng__user_rec_decode(val.mv_data, val.mv_size, in->user_id, &u, &seq);
	if (rv != 0)
		return reject(res, IM_ECORRUPT, "userID " ID_FMT ": stored record: %s",
			      ID_ARG(in->user_id), im_strerror(rv));
	/* Masked fields come from the command, the rest from the record. */
	if (mask & ENG_USER_NICKNAME)
		u.nickname = in->nickname;
	if (mask & ENG_USER_FACE_URL)
		u.face_url = in->face_url;
	if (mask & ENG_USER_EX)
		u.ex = in->ex;
	if (mask & ENG_USER_GLOBAL_RECV_MSG_OPT)
		u.global_recv_msg_opt = in->global_recv_msg_opt;
	if (mask & ENG_USER_APP_MANGER_LEVEL)
		u.app_manger_level = in->app_manger_level;
	/* The views in u point into the map: encode them before the put. */
	rv = user_record(e, &u, seq, &val);
	if (rv != 0)
		return rv;
	rv = put(e, txn, ENG__T_USERS, key.mv_data, key.mv_size, val.mv_data, val.mv_size, 0,
		 "mdb_put users");
	/* §7.1: a new nickname or face is an update in every owner's friend log. */
	if (rv == 0 && (mask & (ENG_USER_NICKNAME | ENG_USER_FACE_URL)))
		rv = eng__friend_profile_changed(e, txn, index, cmd->now_ms, in->user_id, res);
	return rv;
}

/* ---------------------------------------------------------------- tokens */

/* Platform ids are stored as one key byte. */
static bool platform_ok(int32_t p)
{
	return p >= 0 && p <= 255;
}

/* Sets the status of the token under cursor c (value val) in place. */
static int token_set_status(struct eng *e, MDB_cursor *c, MDB_val *key, const MDB_val *val,
			    int status)
{
	struct eng__token_val tv;
	unsigned char b[ENG__TOKEN_VAL_LEN];
	if (eng__token_val_decode(val->mv_data, val->mv_size, &tv) != 0)
		return eng__errf(e, IM_ECORRUPT, "token value does not decode");
	tv.status = status;
	eng__token_val_encode(b, &tv);
	MDB_val v = {sizeof(b), b};
	int rc = mdb_cursor_put(c, key, &v, MDB_CURRENT);
	return rc ? eng__from_mdb(e, rc, "mdb_cursor_put tokens") : 0;
}

/* Deletes every token of the user that is not NORMAL or has expired. */
static int token_cleanup(struct eng *e, MDB_cursor *c, struct im_str user, int64_t now_s)
{
	unsigned char pfx[ENG__TOKEN_KEY_MAX];
	size_t pn = eng__token_key(pfx, user, -1, (struct im_str){NULL, 0});
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rv;
	while ((rv = eng__prefix_step(e, c, pfx, pn, &key, &val, op)) == 0) {
		struct eng__token_val tv;
		op = MDB_NEXT;
		/* A value that does not decode is dropped like an invalid token. */
		if (eng__token_val_decode(val.mv_data, val.mv_size, &tv) == 0 &&
		    tv.status == ENG_TOKEN_NORMAL && tv.expire_at >= now_s)
			continue;
		int rc = mdb_cursor_del(c, 0);
		if (rc != 0)
			return eng__from_mdb(e, rc, "mdb_cursor_del tokens");
		/* MDB_NEXT after a delete yields the item that followed it. */
	}
	return rv < 0 ? rv : 0;
}

/*
 * Kicks NORMAL tokens of (user, platform) other than `keep`: all of them
 * (limit < 0) or the oldest ones until fewer than `limit` remain, making room
 * for the token about to be stored.  Oldest = smallest issued_ms, ties broken
 * by key order.
 */
static int token_kick_normal(struct eng *e, MDB_cursor *c, struct im_str user, int32_t platform,
			     struct im_str keep, int32_t limit)
{
	unsigned char pfx[ENG__TOKEN_KEY_MAX], oldest[ENG__TOKEN_KEY_MAX];
	size_t pn = eng__token_key(pfx, user, platform, (struct im_str){NULL, 0});
	for (;;) {
		MDB_val key, val;
		MDB_cursor_op op = MDB_SET_RANGE;
		size_t oldest_n = 0;
		int64_t oldest_ms = INT64_MAX;
		int32_t normal = 0;
		int rv;
		while ((rv = eng__prefix_step(e, c, pfx, pn, &key, &val, op)) == 0) {
			struct eng__token_val tv;
			op = MDB_NEXT;
			if (eng__token_val_decode(val.mv_data, val.mv_size, &tv) != 0 ||
			    tv.status != ENG_TOKEN_NORMAL)
				continue;
			if (key.mv_size - pn == keep.n &&
			    memcmp((char *)key.mv_data + pn, keep.p, keep.n) == 0)
				continue;
			if (limit < 0) {
				rv = token_set_status(e, c, &key, &val, ENG_TOKEN_KICKED);
				if (rv != 0)
					return rv;
				continue;
			}
			normal++;
			if (tv.issued_ms < oldest_ms) {
				oldest_ms = tv.issued_ms;
				oldest_n = key.mv_size;
				memcpy(oldest, key.mv_data, key.mv_size);
			}
		}
		if (rv < 0)
			return rv;
		/* Room for the new token?  Else kick the oldest and count again. */
		if (limit < 0 || normal < limit || oldest_n == 0)
			return 0;
		key = (MDB_val){oldest_n, oldest};
		int rc = mdb_cursor_get(c, &key, &val, MDB_SET_KEY);
		if (rc != 0)
			return eng__from_mdb(e, rc, "mdb_cursor_get tokens");
		rv = token_set_status(e, c, &key, &val, ENG_TOKEN_KICKED);
		if (rv != 0)
			return rv;
	}
}

/* TOKEN_ISSUE: OpenIM CreateToken (openim-protocol.md §2.3), see docs/storage.md. */
static int token_issue(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd,
		       struct eng_result *res)
{
	struct im_str user = cmd->u.token_issue.user_id, token = cmd->u.token_issue.token;
	int32_t platform = cmd->u.token_issue.platform_id, policy = cmd->u.token_issue.policy;
	if (!eng__id_valid(user))
		return reject(res, IM_EINVAL, "empty userID");
	if (!platform_ok(platform))
		return reject(res, IM_EINVAL, "platformID %" PRId32 " out of range", platform);
	if (token.n == 0)
		return reject(res, IM_EINVAL, "empty token");
	if (policy != 0 && policy != 1)
		return reject(res, IM_EINVAL, "unknown multi-login policy %" PRId32, policy);
	MDB_val key = {user.n, (void *)user.p}, val;
	int rc = mdb_get(txn, e->dbi[ENG__T_USERS], &key, &val);
	if (rc == MDB_NOTFOUND)
		return reject(res, IM_ENOTFOUND, "userID " ID_FMT " not found", ID_ARG(user));
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_get users");

	/* One cursor for the cleanup and the kicks, closed before the put. */
	MDB_cursor *c;
	rc = mdb_cursor_open(txn, e->dbi[ENG__T_TOKENS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open tokens");
	/* Integer division rounds toward zero; times before 1970 do not occur. */
	int rv = token_cleanup(e, c, user, cmd->now_ms / 1000);
	if (rv == 0 && policy == 1)
		rv = token_kick_normal(e, c, user, platform, token, -1);
	else if (rv == 0 && cmd->u.token_issue.max_per_platform > 0)
		rv = token_kick_normal(e, c, user, platform, token,
				       cmd->u.token_issue.max_per_platform);
	mdb_cursor_close(c);
	if (rv != 0)
		return rv;

	/* Finally the new token, normal; a re-issued one is overwritten. */
	unsigned char k[ENG__TOKEN_KEY_MAX], v[ENG__TOKEN_VAL_LEN];
	size_t kn = eng__token_key(k, user, platform, token);
	struct eng__token_val tv = {ENG_TOKEN_NORMAL, cmd->u.token_issue.expire_at, cmd->now_ms};
	eng__token_val_encode(v, &tv);
	return put(e, txn, ENG__T_TOKENS, k, kn, v, sizeof(v), 0, "mdb_put tokens");
}

/* TOKEN_KICK: every token of (user, platform) but except_token becomes KICKED; none is fine. */
static int token_kick(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd,
		      struct eng_result *res)
{
	struct im_str user = cmd->u.token_kick.user_id, keep = cmd->u.token_kick.except_token;
	int32_t platform = cmd->u.token_kick.platform_id;
	if (!eng__id_valid(user))
		return reject(res, IM_EINVAL, "empty userID");
	if (!platform_ok(platform))
		return reject(res, IM_EINVAL, "platformID %" PRId32 " out of range", platform);
	unsigned char pfx[ENG__TOKEN_KEY_MAX];
	size_t pn = eng__token_key(pfx, user, platform, (struct im_str){NULL, 0});
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, e->dbi[ENG__T_TOKENS], &c);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_cursor_open tokens");
	MDB_val key, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rv;
	while ((rv = eng__prefix_step(e, c, pfx, pn, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		struct eng__token_val tv;
		if (eng__token_val_decode(val.mv_data, val.mv_size, &tv) == 0 &&
		    tv.status == ENG_TOKEN_KICKED)
			continue;
		/* The token of the session asking for the kick keeps its status. */
		if (keep.n && key.mv_size - pn == keep.n &&
		    memcmp((char *)key.mv_data + pn, keep.p, keep.n) == 0)
			continue;
		rv = token_set_status(e, c, &key, &val, ENG_TOKEN_KICKED);
		if (rv != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv < 0 ? rv : 0;
}

/* ---------------------------------------------------------------- user commands */

/* Prints a user command's (user, type, uuid) for a detail message. */
#define UCMD_FMT    "(" ID_FMT ", %" PRId32 ", " ID_FMT ")"
#define UCMD_ARG(c) ID_ARG((c)->user_id), (c)->type, ID_ARG((c)->uuid)

/*
 * The rules every user command checks first.  The decoder already
 * bounds the lengths; checking them again keeps apply's rules whole.
 */
static int ucmd_valid(const struct eng_user_cmd *c, struct eng_result *res)
{
	if (!eng__id_valid(c->user_id))
		return reject(res, IM_EINVAL, "empty userID");
	if (!eng__id_valid(c->uuid))
		return reject(res, IM_EINVAL, "empty uuid");
	if (c->value.n > ENG_TEXT_MAX || c->ex.n > ENG_TEXT_MAX)
		return reject(res, IM_EINVAL, "value or ex over %d bytes", ENG_TEXT_MAX);
	return 0;
}

/* Encodes c's value into the engine's scratch buffer. */
static int ucmd_record(struct eng *e, const struct eng_user_cmd *c, MDB_val *out)
{
	size_t n = eng__ucmd_val_size(c);
	e->scratch.len = 0;
	int rv = im_buf_reserve(&e->scratch, n);
	if (rv != 0)
		return eng__errf(e, rv, "user command record: out of memory");
	eng__ucmd_val_encode((unsigned char *)e->scratch.p, c);
	*out = (MDB_val){n, e->scratch.p};
	return 0;
}

/* USER_CMD_ADD (process_user_command_add, openim-protocol.md §3.2): a new (user, type, uuid). */
static int user_cmd_add(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd,
			struct eng_result *res)
{
	struct eng_user_cmd c = cmd->u.user_cmd.c;
	int rv = ucmd_valid(&c, res);
	if (rv != 0)
		return rv;
	MDB_val key = {c.user_id.n, (void *)c.user_id.p}, val;
	int rc = mdb_get(txn, e->dbi[ENG__T_USERS], &key, &val);
	if (rc == MDB_NOTFOUND)
		return reject(res, IM_ENOTFOUND, "userID " ID_FMT " not found", ID_ARG(c.user_id));
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_get users");
	/* The only time apply may use is the proposer's. */
	c.create_time = cmd->now_ms;
	unsigned char k[ENG__UCMD_KEY_MAX];
	key = (MDB_val){eng__ucmd_key(k, c.user_id, c.type, c.uuid), k};
	rv = ucmd_record(e, &c, &val);
	if (rv != 0)
		return rv;
	rc = mdb_put(txn, e->dbi[ENG__T_USER_CMDS], &key, &val, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return reject(res, IM_EEXIST, "user command " UCMD_FMT " already exists",
			      UCMD_ARG(&c));
	return rc ? eng__from_mdb(e, rc, "mdb_put user_cmds") : 0;
}

#define UCMD_MASK_ALL (ENG_UCMD_VALUE | ENG_UCMD_EX)

/* USER_CMD_UPDATE: overwrite value and/or ex of an existing one. */
static int user_cmd_update(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd,
			   struct eng_result *res)
{
	const struct eng_user_cmd *in = &cmd->u.user_cmd.c;
	uint32_t mask = cmd->u.user_cmd.mask;
	int rv = ucmd_valid(in, res);
	if (rv != 0)
		return rv;
	if (mask & ~(uint32_t)UCMD_MASK_ALL)
		return reject(res, IM_EINVAL, "unknown field mask 0x%" PRIx32, mask);
	unsigned char k[ENG__UCMD_KEY_MAX];
	MDB_val key = {eng__ucmd_key(k, in->user_id, in->type, in->uuid), k}, val;
	int rc = mdb_get(txn, e->dbi[ENG__T_USER_CMDS], &key, &val);
	if (rc == MDB_NOTFOUND)
		return reject(res, IM_ENOTFOUND, "user command " UCMD_FMT " not found",
			      UCMD_ARG(in));
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_get user_cmds");
	struct eng_user_cmd c = *in;
	rv = eng__ucmd_val_decode(val.mv_data, val.mv_size, &c);
	if (rv != 0)
		return reject(res, IM_ECORRUPT, "user command " UCMD_FMT ": stored record: %s",
			      UCMD_ARG(in), im_strerror(rv));
	/* create_time is kept; the masked fields come from the command. */
	if (mask & ENG_UCMD_VALUE)
		c.value = in->value;
	if (mask & ENG_UCMD_EX)
		c.ex = in->ex;
	/* The views in c may point into the map: encode them before the put. */
	rv = ucmd_record(e, &c, &val);
	if (rv != 0)
		return rv;
	return put(e, txn, ENG__T_USER_CMDS, k, key.mv_size, val.mv_data, val.mv_size, 0,
		   "mdb_put user_cmds");
}

/* USER_CMD_DEL: remove an existing one. */
static int user_cmd_del(struct eng *e, MDB_txn *txn, const struct eng_cmd *cmd,
			struct eng_result *res)
{
	const struct eng_user_cmd *in = &cmd->u.user_cmd.c;
	int rv = ucmd_valid(in, res);
	if (rv != 0)
		return rv;
	unsigned char k[ENG__UCMD_KEY_MAX];
	MDB_val key = {eng__ucmd_key(k, in->user_id, in->type, in->uuid), k};
	int rc = mdb_del(txn, e->dbi[ENG__T_USER_CMDS], &key, NULL);
	if (rc == MDB_NOTFOUND)
		return reject(res, IM_ENOTFOUND, "user command " UCMD_FMT " not found",
			      UCMD_ARG(in));
	return rc ? eng__from_mdb(e, rc, "mdb_del user_cmds") : 0;
}

/* The command's own effect. */
static int apply_own(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		     struct eng_result *res)
{
	switch (cmd->type) {
	case ENG_CMD_NOOP:
		return 0;
	case ENG_CMD_USER_REGISTER:
		return user_register(e, txn, cmd, res);
	case ENG_CMD_USER_UPDATE:
		return user_update(e, txn, index, cmd, res);
	case ENG_CMD_TOKEN_ISSUE:
		return token_issue(e, txn, cmd, res);
	case ENG_CMD_TOKEN_KICK:
		return token_kick(e, txn, cmd, res);
	case ENG_CMD_USER_CMD_ADD:
		return user_cmd_add(e, txn, cmd, res);
	case ENG_CMD_USER_CMD_UPDATE:
		return user_cmd_update(e, txn, cmd, res);
	case ENG_CMD_USER_CMD_DEL:
		return user_cmd_del(e, txn, cmd, res);
	case ENG_CMD_MSG_SEND:
	case ENG_CMD_CONV_SET:
	case ENG_CMD_MARK_READ:
	case ENG_CMD_REVOKE:
	case ENG_CMD_MSG_HIDE:
	case ENG_CMD_CONV_CLEAR:
	case ENG_CMD_GROUP_CREATE:
	case ENG_CMD_GROUP_MEMBERS_ADD:
	case ENG_CMD_GROUP_MEMBERS_REMOVE:
		return eng__apply_msg_cmd(e, txn, index, cmd, res);
	case ENG_CMD_FRIEND_APPLY:
	case ENG_CMD_FRIEND_RESPOND:
	case ENG_CMD_FRIEND_DELETE:
	case ENG_CMD_FRIEND_UPDATE:
	case ENG_CMD_FRIEND_IMPORT:
	case ENG_CMD_BLACK_ADD:
	case ENG_CMD_BLACK_REMOVE:
		return eng__apply_rel_cmd(e, txn, index, cmd, res);
	case ENG_CMD_GROUP_SET:
	case ENG_CMD_MEMBER_SET:
	case ENG_CMD_GROUP_TRANSFER:
	case ENG_CMD_GROUP_DISMISS:
	case ENG_CMD_GROUP_REQ_PUT:
	case ENG_CMD_GROUP_REQ_RESPOND:
		return eng__apply_group_cmd(e, txn, index, cmd, res);
	default:
		return reject(res, IM_ECORRUPT, "unknown command type %d", cmd->type);
	}
}

/* The own effect, then the items tail (any type may carry one): all or nothing. */
int eng__apply_cmd(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		   struct eng_result *res)
{
	e->removed.len = 0;
	int rv = apply_own(e, txn, index, cmd, res);
	if (rv == 0 && cmd->n_items > 0)
		rv = eng__apply_items(e, txn, index, cmd, res);
	return rv;
}
