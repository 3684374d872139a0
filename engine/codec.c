/* codec.c - the command wire format (Raft entries) and the on-disk record formats. */
#include <errno.h>

#include "engine_int.h"

/*
 * Command layout (docs/storage.md):
 *
 *   0  'I' 'M'            magic
 *   2  version u8         ENG__CMD_VERSION
 *   3  type u8            enum eng_cmd_type
 *   4  payload len u32 BE exactly len - 12
 *   8  CRC-32 u32 BE      over bytes 0..7 and the payload
 *  12  payload            now_ms i64 BE, then the type's fields
 *
 * The CRC covers the first eight header bytes as well as the payload, so a
 * flipped type byte (user_register <-> user_update have the same shape) is
 * caught like any other flip.  Every integer is big-endian; a string is a u32
 * BE length and its bytes.  The encoding is canonical: decoding and encoding
 * again gives the same bytes, which the fuzzer checks.
 */
#define ENG__CMD_VERSION 1

/* A bounded reader: any read past the end sets `bad` and yields zeros. */
struct rd {
	const unsigned char *p;
	size_t n;
	bool bad;
};

static const unsigned char *rd_take(struct rd *r, size_t k)
{
	if (r->bad || r->n < k) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += k;
	r->n -= k;
	return p;
}

static uint32_t rd_u32(struct rd *r)
{
	const unsigned char *p = rd_take(r, 4);
	return p ? im_get_be32(p) : 0;
}

static uint64_t rd_u64(struct rd *r)
{
	const unsigned char *p = rd_take(r, 8);
	return p ? im_get_be64(p) : 0;
}

/* A string of at most max bytes; longer ones mark the reader bad. */
static struct im_str rd_str(struct rd *r, uint32_t max)
{
	struct im_str s = {NULL, 0};
	uint32_t n = rd_u32(r);
	if (n > max) {
		r->bad = true;
		return s;
	}
	const unsigned char *p = rd_take(r, n);
	if (p != NULL) {
		s.p = (const char *)p;
		s.n = n;
	}
	return s;
}

/* An identifier: a string without NUL bytes (they separate token keys). */
static struct im_str rd_id(struct rd *r)
{
	struct im_str s = rd_str(r, ENG_ID_MAX);
	if (s.n && memchr(s.p, 0, s.n) != NULL)
		r->bad = true;
	return s;
}

/* A writer into a buffer already reserved to the exact size. */
static unsigned char *wr_u32(unsigned char *p, uint32_t v)
{
	im_put_be32(p, v);
	return p + 4;
}

static unsigned char *wr_u64(unsigned char *p, uint64_t v)
{
	im_put_be64(p, v);
	return p + 8;
}

static unsigned char *wr_str(unsigned char *p, struct im_str s)
{
	p = wr_u32(p, s.n);
	if (s.n)
		memcpy(p, s.p, s.n);
	return p + s.n;
}

bool eng__id_valid(struct im_str id)
{
	return id.n >= 1 && id.n <= ENG_ID_MAX && memchr(id.p, 0, id.n) == NULL;
}

/* Encode-side check of an identifier: empty is allowed (apply rejects it). */
static bool id_ok(struct im_str id)
{
	return id.n == 0 || eng__id_valid(id);
}

static bool user_ok(const struct eng_user *u)
{
	return id_ok(u->user_id) && u->nickname.n <= ENG_TEXT_MAX &&
	       u->face_url.n <= ENG_TEXT_MAX && u->ex.n <= ENG_TEXT_MAX;
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
	return type == ENG_CMD_USER_CMD_DEL ||
	       (c->value.n <= ENG_TEXT_MAX && c->ex.n <= ENG_TEXT_MAX);
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
	default:
		return "unknown";
	}
}

/* Payload size of cmd after validating its fields; 0 on success. */
static int payload_size(const struct eng_cmd *cmd, uint64_t *out)
{
	uint64_t n = 8; /* now_ms */
	switch (cmd->type) {
	case ENG_CMD_NOOP:
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
		if (!id_ok(cmd->u.token_kick.user_id))
			return IM_EINVAL;
		n += 4 + (uint64_t)cmd->u.token_kick.user_id.n + 4;
		break;
	case ENG_CMD_USER_CMD_ADD:
	case ENG_CMD_USER_CMD_UPDATE:
	case ENG_CMD_USER_CMD_DEL:
		if (!ucmd_ok(cmd->type, &cmd->u.user_cmd.c))
			return IM_EINVAL;
		n += ucmd_wire_size(cmd->type, &cmd->u.user_cmd.c);
		break;
	default:
		return IM_EINVAL;
	}
	if (n + ENG_CMD_HEADER > ENG_CMD_MAX)
		return IM_ETOOBIG;
	*out = n;
	return 0;
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
		break;
	case ENG_CMD_USER_CMD_ADD:
	case ENG_CMD_USER_CMD_UPDATE:
	case ENG_CMD_USER_CMD_DEL:
		p = wr_ucmd(p, cmd->type, cmd->u.user_cmd.mask, &cmd->u.user_cmd.c);
		break;
	default:
		break;
	}
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

int eng_cmd_decode(const void *buf, size_t len, struct eng_cmd *cmd)
{
	const unsigned char *h = buf;
	memset(cmd, 0, sizeof(*cmd));
	if (len < ENG_CMD_HEADER || h[0] != 'I' || h[1] != 'M')
		return IM_ECORRUPT;
	if (h[2] != ENG__CMD_VERSION)
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
	switch (cmd->type) {
	case ENG_CMD_NOOP:
		break;
	case ENG_CMD_USER_REGISTER: {
		uint32_t k = rd_u32(&r);
		/* Bound the allocation by what the payload can hold. */
		if (r.bad || k > ENG_BATCH_MAX || (uint64_t)k * USER_WIRE_MIN > r.n)
			return IM_ECORRUPT;
		struct eng_user *users = NULL;
		if (k > 0) {
			users = im_calloc(k, sizeof(*users));
			if (users == NULL)
				return -ENOMEM;
		}
		for (uint32_t i = 0; i < k && !r.bad; i++)
			rd_user(&r, &users[i]);
		cmd->u.user_register.n = k;
		cmd->u.user_register.users = users;
		cmd->alloc = users;
		break;
	}
	case ENG_CMD_USER_UPDATE:
		cmd->u.user_update.mask = rd_u32(&r);
		rd_user(&r, &cmd->u.user_update.user);
		break;
	case ENG_CMD_TOKEN_ISSUE:
		cmd->u.token_issue.user_id = rd_id(&r);
		cmd->u.token_issue.platform_id = (int32_t)rd_u32(&r);
		cmd->u.token_issue.token = rd_str(&r, ENG_TOKEN_MAX);
		cmd->u.token_issue.expire_at = (int64_t)rd_u64(&r);
		cmd->u.token_issue.policy = (int32_t)rd_u32(&r);
		cmd->u.token_issue.max_per_platform = (int32_t)rd_u32(&r);
		break;
	case ENG_CMD_TOKEN_KICK:
		cmd->u.token_kick.user_id = rd_id(&r);
		cmd->u.token_kick.platform_id = (int32_t)rd_u32(&r);
		break;
	case ENG_CMD_USER_CMD_ADD:
	case ENG_CMD_USER_CMD_UPDATE:
	case ENG_CMD_USER_CMD_DEL:
		rd_ucmd(&r, cmd->type, &cmd->u.user_cmd.mask, &cmd->u.user_cmd.c);
		break;
	default:
		return IM_ECORRUPT;
	}
	/* Short fields and trailing bytes are both corrupt. */
	if (r.bad || r.n != 0) {
		eng_cmd_release(cmd);
		return IM_ECORRUPT;
	}
	return 0;
}

void eng_cmd_release(struct eng_cmd *cmd)
{
	if (cmd == NULL)
		return;
	im_free(cmd->alloc);
	cmd->alloc = NULL;
	if (cmd->type == ENG_CMD_USER_REGISTER) {
		cmd->u.user_register.users = NULL;
		cmd->u.user_register.n = 0;
	}
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
