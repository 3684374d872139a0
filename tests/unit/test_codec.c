/* test_codec.c - the command codec: round trips, truncations, bit flips, bounds, random input. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "engine.h"

static struct eng_user sample_users[3] = {
    {{"alice", 5}, {"Alice", 5}, {"https://x/a.png", 15}, {"{}", 2}, 1700000000123, 1, 0},
    {{"bob", 3}, {"", 0}, {"", 0}, {"", 0}, 0, 0, 2},
    {{"c\xc3\xa9", 3}, {"\x01\x02", 2}, {"f", 1}, {"ex", 2}, -1, INT32_MIN, INT32_MAX},
};

/* A valid command of each type; strings point to static storage. */
static struct eng_cmd sample(int type)
{
	struct eng_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = (uint8_t)type;
	c.now_ms = 1700000000000 + type;
	switch (type) {
	case ENG_CMD_USER_REGISTER:
		c.u.user_register.n = 3;
		c.u.user_register.users = sample_users;
		break;
	case ENG_CMD_USER_UPDATE:
		c.u.user_update.mask = ENG_USER_NICKNAME | ENG_USER_EX;
		c.u.user_update.user = sample_users[0];
		break;
	case ENG_CMD_TOKEN_ISSUE:
		c.u.token_issue.user_id = IM_STR_LIT("alice");
		c.u.token_issue.platform_id = 5;
		c.u.token_issue.token = IM_STR_LIT("eyJhbGciOiJIUzI1NiJ9.e30.sig");
		c.u.token_issue.expire_at = 1707776000;
		c.u.token_issue.policy = 1;
		c.u.token_issue.max_per_platform = 3;
		break;
	case ENG_CMD_TOKEN_KICK:
		c.u.token_kick.user_id = IM_STR_LIT("bob");
		c.u.token_kick.platform_id = 2;
		break;
	case ENG_CMD_USER_CMD_ADD:
	case ENG_CMD_USER_CMD_UPDATE:
	case ENG_CMD_USER_CMD_DEL:
		/* Each type carries only its own fields (a negative type for del). */
		c.u.user_cmd.c.user_id = IM_STR_LIT("alice");
		c.u.user_cmd.c.type = type == ENG_CMD_USER_CMD_DEL ? -7 : 3;
		c.u.user_cmd.c.uuid = IM_STR_LIT("b6f1c2d0-uuid");
		if (type != ENG_CMD_USER_CMD_DEL) {
			c.u.user_cmd.c.value = IM_STR_LIT("{\"fav\":1}");
			c.u.user_cmd.c.ex = IM_STR_LIT("x\x00y");
		}
		if (type == ENG_CMD_USER_CMD_UPDATE)
			c.u.user_cmd.mask = ENG_UCMD_VALUE | ENG_UCMD_EX;
		break;
	default:
		break;
	}
	return c;
}

static const int types[] = {
    ENG_CMD_NOOP,	ENG_CMD_USER_REGISTER, ENG_CMD_USER_UPDATE,	ENG_CMD_TOKEN_ISSUE,
    ENG_CMD_TOKEN_KICK, ENG_CMD_USER_CMD_ADD,  ENG_CMD_USER_CMD_UPDATE, ENG_CMD_USER_CMD_DEL};
/* The corpus file names of the valid seeds, by index into types[]. */
static const char *const type_names[] = {
    "noop",	  "user_register", "user_update",     "token_issue",
    "token_kick", "user_cmd_add",  "user_cmd_update", "user_cmd_del"};
_Static_assert(IM_ARRAY_LEN(types) == IM_ARRAY_LEN(type_names), "a name for every type");

static void assert_str_eq(struct im_str a, struct im_str b)
{
	assert_int_equal(a.n, b.n);
	if (a.n)
		assert_memory_equal(a.p, b.p, a.n);
}

static void assert_ucmd_eq(const struct eng_user_cmd *a, const struct eng_user_cmd *b)
{
	assert_str_eq(a->user_id, b->user_id);
	assert_int_equal(a->type, b->type);
	assert_str_eq(a->uuid, b->uuid);
	assert_str_eq(a->value, b->value);
	assert_str_eq(a->ex, b->ex);
}

static void assert_user_eq(const struct eng_user *a, const struct eng_user *b)
{
	assert_str_eq(a->user_id, b->user_id);
	assert_str_eq(a->nickname, b->nickname);
	assert_str_eq(a->face_url, b->face_url);
	assert_str_eq(a->ex, b->ex);
	assert_true(a->create_time == b->create_time);
	assert_int_equal(a->app_manger_level, b->app_manger_level);
	assert_int_equal(a->global_recv_msg_opt, b->global_recv_msg_opt);
}

static void encode_ok(const struct eng_cmd *c, struct im_buf *b)
{
	b->len = 0;
	assert_int_equal(eng_cmd_encode(c, b), 0);
}

/* Recomputes the CRC of a command after a test changed its bytes. */
static void fix_crc(unsigned char *p, size_t len)
{
	uint32_t crc = im_crc32(0, p, 8);
	crc = im_crc32(crc, p + ENG_CMD_HEADER, len - ENG_CMD_HEADER);
	im_put_be32(p + 8, crc);
}

static void round_trips_every_command_type(void **state)
{
	struct im_buf b = {0}, b2 = {0};
	for (size_t t = 0; t < IM_ARRAY_LEN(types); t++) {
		struct eng_cmd c = sample(types[t]), d;
		encode_ok(&c, &b);
		assert_int_equal(b.p[0], 'I');
		assert_int_equal(b.p[1], 'M');
		assert_int_equal(b.p[2], 1);
		assert_int_equal(b.p[3], types[t]);
		assert_int_equal(im_get_be32((unsigned char *)b.p + 4), b.len - ENG_CMD_HEADER);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
		assert_int_equal(d.type, c.type);
		assert_true(d.now_ms == c.now_ms);
		switch (c.type) {
		case ENG_CMD_USER_REGISTER:
			assert_int_equal(d.u.user_register.n, 3);
			for (int i = 0; i < 3; i++)
				assert_user_eq(&d.u.user_register.users[i], &sample_users[i]);
			break;
		case ENG_CMD_USER_UPDATE:
			assert_int_equal(d.u.user_update.mask, c.u.user_update.mask);
			assert_user_eq(&d.u.user_update.user, &c.u.user_update.user);
			break;
		case ENG_CMD_TOKEN_ISSUE:
			assert_str_eq(d.u.token_issue.user_id, c.u.token_issue.user_id);
			assert_str_eq(d.u.token_issue.token, c.u.token_issue.token);
			assert_int_equal(d.u.token_issue.platform_id, 5);
			assert_true(d.u.token_issue.expire_at == 1707776000);
			assert_int_equal(d.u.token_issue.policy, 1);
			assert_int_equal(d.u.token_issue.max_per_platform, 3);
			break;
		case ENG_CMD_TOKEN_KICK:
			assert_str_eq(d.u.token_kick.user_id, c.u.token_kick.user_id);
			assert_int_equal(d.u.token_kick.platform_id, 2);
			break;
		case ENG_CMD_USER_CMD_ADD:
		case ENG_CMD_USER_CMD_UPDATE:
		case ENG_CMD_USER_CMD_DEL:
			assert_int_equal(d.u.user_cmd.mask, c.u.user_cmd.mask);
			assert_ucmd_eq(&d.u.user_cmd.c, &c.u.user_cmd.c);
			/* create_time is not on the wire: apply stamps now_ms. */
			assert_true(d.u.user_cmd.c.create_time == 0);
			break;
		default:
			break;
		}
		/* Canonical: encoding the decoded command gives the same bytes. */
		encode_ok(&d, &b2);
		assert_int_equal(b2.len, b.len);
		assert_memory_equal(b2.p, b.p, b.len);
		eng_cmd_release(&d);
	}
	im_buf_free(&b);
	im_buf_free(&b2);
}

static void encode_appends_to_buffer(void **state)
{
	struct im_buf b = {0};
	struct eng_cmd c = sample(ENG_CMD_NOOP), d;
	im_buf_addstr(&b, "xyz");
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	assert_memory_equal(b.p, "xyz", 3);
	assert_int_equal(eng_cmd_decode(b.p + 3, b.len - 3, &d), 0);
	assert_int_equal(d.type, ENG_CMD_NOOP);
	eng_cmd_release(&d);
	im_buf_free(&b);
}

static void rejects_every_truncation(void **state)
{
	struct im_buf b = {0};
	for (size_t t = 0; t < IM_ARRAY_LEN(types); t++) {
		struct eng_cmd c = sample(types[t]), d;
		encode_ok(&c, &b);
		/* Copy each prefix to its own allocation so ASan sees overreads. */
		for (size_t n = 0; n < b.len; n++) {
			unsigned char *p = malloc(n ? n : 1);
			memcpy(p, b.p, n);
			int rv = eng_cmd_decode(p, n, &d);
			if (rv == 0)
				fail_msg("type %d: prefix of %zu/%zu bytes decoded", types[t], n,
					 b.len);
			/* With the length and CRC fixed up it is still a short field. */
			if (n >= ENG_CMD_HEADER) {
				im_put_be32(p + 4, (uint32_t)(n - ENG_CMD_HEADER));
				fix_crc(p, n);
				assert_int_equal(eng_cmd_decode(p, n, &d), IM_ECORRUPT);
			}
			free(p);
		}
	}
	im_buf_free(&b);
}

static void rejects_every_bit_flip(void **state)
{
	struct im_buf b = {0};
	for (size_t t = 0; t < IM_ARRAY_LEN(types); t++) {
		struct eng_cmd c = sample(types[t]), d;
		encode_ok(&c, &b);
		for (size_t i = 0; i < b.len * 8; i++) {
			b.p[i / 8] ^= (char)(1u << (i % 8));
			int rv = eng_cmd_decode(b.p, b.len, &d);
			if (rv == 0)
				fail_msg("type %d: flip of bit %zu decoded", types[t], i);
			/* Payload flips are caught by the checksum. */
			if (i / 8 >= ENG_CMD_HEADER)
				assert_int_equal(rv, IM_ECHECKSUM);
			b.p[i / 8] ^= (char)(1u << (i % 8));
		}
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
		eng_cmd_release(&d);
	}
	im_buf_free(&b);
}

static void rejects_bad_magic_version_type_and_length(void **state)
{
	struct im_buf b = {0};
	struct eng_cmd c = sample(ENG_CMD_TOKEN_KICK), d;
	encode_ok(&c, &b);
	unsigned char *p = (unsigned char *)b.p;

	p[0] = 'X';
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	p[0] = 'I';
	p[2] = 2;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_EVERSION);
	p[2] = 0;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_EVERSION);
	p[2] = 1;
	p[3] = 99;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	p[3] = 0;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	p[3] = ENG_CMD_TOKEN_KICK;
	/* A length field that disagrees with the buffer. */
	im_put_be32(p + 4, (uint32_t)(b.len - ENG_CMD_HEADER + 1));
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_put_be32(p + 4, UINT32_MAX);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_put_be32(p + 4, (uint32_t)(b.len - ENG_CMD_HEADER));
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), 0);
	eng_cmd_release(&d);

	/* Trailing bytes inside the payload (length and CRC consistent). */
	im_buf_add(&b, "\0", 1);
	p = (unsigned char *)b.p;
	im_put_be32(p + 4, (uint32_t)(b.len - ENG_CMD_HEADER));
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_buf_free(&b);
}

static void decode_rejects_bad_fields(void **state)
{
	struct im_buf b = {0};
	struct eng_cmd c = sample(ENG_CMD_TOKEN_KICK), d;
	encode_ok(&c, &b);
	unsigned char *p = (unsigned char *)b.p;
	/* payload: now_ms(8) | len(4) "bob" | platform: put a NUL in the id. */
	p[ENG_CMD_HEADER + 12 + 1] = 0;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);

	/* A register count far larger than the payload could hold. */
	c = sample(ENG_CMD_USER_REGISTER);
	encode_ok(&c, &b);
	p = (unsigned char *)b.p;
	im_put_be32(p + ENG_CMD_HEADER + 8, ENG_BATCH_MAX);
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_put_be32(p + ENG_CMD_HEADER + 8, UINT32_MAX);
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	/* A string length past the end of the buffer. */
	im_put_be32(p + ENG_CMD_HEADER + 8, 3);
	im_put_be32(p + ENG_CMD_HEADER + 12, 0x7fffffff);
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_buf_free(&b);
}

static void encode_rejects_oversized_fields(void **state)
{
	struct im_buf b = {0};
	static char big[ENG_TEXT_MAX + 2];
	memset(big, 'x', sizeof(big));
	struct eng_cmd c = sample(ENG_CMD_TOKEN_ISSUE);
	c.u.token_issue.token = (struct im_str){big, ENG_TOKEN_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.u.token_issue.token = (struct im_str){big, ENG_TOKEN_MAX};
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	b.len = 0;
	c.u.token_issue.user_id = (struct im_str){big, ENG_ID_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.u.token_issue.user_id = (struct im_str){"a\0b", 3};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);

	struct eng_user u = sample_users[0];
	c = sample(ENG_CMD_USER_UPDATE);
	c.u.user_update.user.nickname = (struct im_str){big, ENG_TEXT_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.u.user_update.user = u;
	c.u.user_update.user.ex = (struct im_str){big, ENG_TEXT_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);

	c = sample(ENG_CMD_USER_REGISTER);
	c.u.user_register.n = ENG_BATCH_MAX + 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.u.user_register.users = NULL;
	c.u.user_register.n = 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);

	/* 300 users with the largest texts pass every field limit but not 16 MiB. */
	struct eng_user *many = calloc(300, sizeof(*many));
	char id[16];
	for (int i = 0; i < 300; i++) {
		many[i].user_id = (struct im_str){id, (uint32_t)snprintf(id, sizeof(id), "u%d", i)};
		many[i].nickname = many[i].face_url = (struct im_str){big, ENG_TEXT_MAX};
	}
	c.u.user_register.users = many;
	c.u.user_register.n = 300;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_ETOOBIG);
	free(many);

	c = sample(ENG_CMD_NOOP);
	c.type = 42;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	/* A failed encode leaves the buffer as it was. */
	assert_int_equal(b.len, 0);
	im_buf_free(&b);
}

/* The text limits apply to the types that carry value and ex. */
static void encode_checks_user_cmd_bounds(void **state)
{
	struct im_buf b = {0}, b2 = {0};
	static char big[ENG_TEXT_MAX + 2];
	memset(big, 'x', sizeof(big));
	const int ucmd_types[] = {ENG_CMD_USER_CMD_ADD, ENG_CMD_USER_CMD_UPDATE,
				  ENG_CMD_USER_CMD_DEL};
	for (size_t t = 0; t < IM_ARRAY_LEN(ucmd_types); t++) {
		int type = ucmd_types[t];
		struct eng_cmd c = sample(type), d;
		c.u.user_cmd.c.uuid = (struct im_str){big, ENG_ID_MAX + 1};
		assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
		c.u.user_cmd.c.uuid = (struct im_str){"a\0b", 3};
		assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
		c = sample(type);
		c.u.user_cmd.c.user_id = (struct im_str){big, ENG_ID_MAX + 1};
		assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
		c.u.user_cmd.c.user_id = (struct im_str){"a\0", 2};
		assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
		assert_int_equal(b.len, 0);
		/* At the limits it encodes and decodes. */
		c = sample(type);
		c.u.user_cmd.c.user_id = (struct im_str){big, ENG_ID_MAX};
		c.u.user_cmd.c.uuid = (struct im_str){big, ENG_ID_MAX};
		if (type != ENG_CMD_USER_CMD_DEL)
			c.u.user_cmd.c.value = c.u.user_cmd.c.ex =
			    (struct im_str){big, ENG_TEXT_MAX};
		encode_ok(&c, &b);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
		assert_ucmd_eq(&d.u.user_cmd.c, &c.u.user_cmd.c);
		eng_cmd_release(&d);
		/* Empty ids pass the codec; apply rejects them with IM_EINVAL. */
		c = sample(type);
		c.u.user_cmd.c.uuid = (struct im_str){NULL, 0};
		encode_ok(&c, &b);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
		assert_int_equal(d.u.user_cmd.c.uuid.n, 0);
		eng_cmd_release(&d);
		/* One byte over a text limit fails where the type carries the text. */
		b.len = 0;
		c = sample(type);
		c.u.user_cmd.c.value = (struct im_str){big, ENG_TEXT_MAX + 1};
		assert_int_equal(eng_cmd_encode(&c, &b),
				 type == ENG_CMD_USER_CMD_DEL ? 0 : IM_EINVAL);
		b.len = 0;
		c = sample(type);
		c.u.user_cmd.c.ex = (struct im_str){big, ENG_TEXT_MAX + 1};
		assert_int_equal(eng_cmd_encode(&c, &b),
				 type == ENG_CMD_USER_CMD_DEL ? 0 : IM_EINVAL);
	}
	/* Fields a type does not carry are not encoded: the bytes are the same. */
	struct eng_cmd c = sample(ENG_CMD_USER_CMD_ADD);
	encode_ok(&c, &b);
	c.u.user_cmd.mask = ENG_UCMD_EX;
	c.u.user_cmd.c.create_time = 12345;
	encode_ok(&c, &b2);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.p, b.p, b.len);
	c = sample(ENG_CMD_USER_CMD_DEL);
	encode_ok(&c, &b);
	c.u.user_cmd.c.value = IM_STR_LIT("ignored");
	c.u.user_cmd.c.ex = (struct im_str){big, ENG_TEXT_MAX + 1};
	encode_ok(&c, &b2);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.p, b.p, b.len);
	im_buf_free(&b);
	im_buf_free(&b2);
}

/* Appends a wire string of n bytes `ch`. */
static void add_str(struct im_buf *b, uint32_t n, char ch)
{
	unsigned char len[4];
	im_put_be32(len, n);
	assert_int_equal(im_buf_add(b, len, 4), 0);
	char *fill = malloc(n ? n : 1);
	memset(fill, ch, n);
	assert_int_equal(im_buf_add(b, fill, n), 0);
	free(fill);
}

/* Builds a user command by hand, so its fields may break the limits. */
static void raw_ucmd(struct im_buf *b, int type, uint32_t idn, uint32_t uuidn, uint32_t valn,
		     uint32_t exn)
{
	unsigned char h[ENG_CMD_HEADER] = {'I', 'M', 1, (unsigned char)type};
	unsigned char num[8];
	b->len = 0;
	assert_int_equal(im_buf_add(b, h, sizeof(h)), 0);
	im_put_be64(num, 1700000000000);
	im_buf_add(b, num, 8);
	if (type == ENG_CMD_USER_CMD_UPDATE) {
		im_put_be32(num, ENG_UCMD_VALUE);
		im_buf_add(b, num, 4);
	}
	add_str(b, idn, 'u');
	im_put_be32(num, 9);
	im_buf_add(b, num, 4);
	add_str(b, uuidn, 'q');
	if (type != ENG_CMD_USER_CMD_DEL) {
		add_str(b, valn, 'v');
		add_str(b, exn, 'e');
	}
	unsigned char *p = (unsigned char *)b->p;
	im_put_be32(p + 4, (uint32_t)(b->len - ENG_CMD_HEADER));
	fix_crc(p, b->len);
}

static void decode_rejects_bad_user_cmd_fields(void **state)
{
	struct im_buf b = {0};
	struct eng_cmd d;
	const int ucmd_types[] = {ENG_CMD_USER_CMD_ADD, ENG_CMD_USER_CMD_UPDATE,
				  ENG_CMD_USER_CMD_DEL};
	for (size_t t = 0; t < IM_ARRAY_LEN(ucmd_types); t++) {
		int type = ucmd_types[t];
		/* The builder is right: at the limits it decodes. */
		raw_ucmd(&b, type, ENG_ID_MAX, ENG_ID_MAX, ENG_TEXT_MAX, ENG_TEXT_MAX);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
		assert_int_equal(d.u.user_cmd.c.type, 9);
		assert_int_equal(d.u.user_cmd.mask, type == ENG_CMD_USER_CMD_UPDATE);
		eng_cmd_release(&d);
		raw_ucmd(&b, type, ENG_ID_MAX + 1, 5, 1, 1);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
		raw_ucmd(&b, type, 5, ENG_ID_MAX + 1, 1, 1);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
		if (type == ENG_CMD_USER_CMD_DEL)
			continue;
		raw_ucmd(&b, type, 5, 5, ENG_TEXT_MAX + 1, 1);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
		raw_ucmd(&b, type, 5, 5, 1, ENG_TEXT_MAX + 1);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
	}
	/* A NUL in the uuid: payload now_ms(8) | "alice"(4+5) | type(4) | uuid(4+...). */
	struct eng_cmd c = sample(ENG_CMD_USER_CMD_DEL);
	encode_ok(&c, &b);
	unsigned char *p = (unsigned char *)b.p;
	p[ENG_CMD_HEADER + 8 + 9 + 4 + 4 + 2] = 0;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	/* An add relabelled as a del has trailing bytes; a del as an add is short. */
	c = sample(ENG_CMD_USER_CMD_ADD);
	encode_ok(&c, &b);
	p = (unsigned char *)b.p;
	p[3] = ENG_CMD_USER_CMD_DEL;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	c = sample(ENG_CMD_USER_CMD_DEL);
	encode_ok(&c, &b);
	p = (unsigned char *)b.p;
	p[3] = ENG_CMD_USER_CMD_ADD;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_buf_free(&b);
}

static void decode_reports_out_of_memory(void **state)
{
	struct im_buf b = {0};
	struct eng_cmd c = sample(ENG_CMD_USER_REGISTER), d;
	encode_ok(&c, &b);
	im_alloc_fail_after(1);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), -ENOMEM);
	im_alloc_fail_after(0);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
	eng_cmd_release(&d);
	im_buf_free(&b);
}

/* Decodes buf; when it decodes, encoding again must give the same bytes. */
static void decode_and_check(const unsigned char *p, size_t n, struct im_buf *tmp)
{
	struct eng_cmd d;
	unsigned char *copy = malloc(n ? n : 1);
	memcpy(copy, p, n);
	if (eng_cmd_decode(copy, n, &d) == 0) {
		tmp->len = 0;
		assert_int_equal(eng_cmd_encode(&d, tmp), 0);
		assert_int_equal(tmp->len, n);
		assert_memory_equal(tmp->p, copy, n);
		eng_cmd_release(&d);
	}
	free(copy);
}

static void random_bytes_never_crash(void **state)
{
	unsigned seed = (unsigned)time(NULL);
	if (getenv("TEST_SEED"))
		seed = (unsigned)strtoul(getenv("TEST_SEED"), NULL, 10);
	printf("random_bytes_never_crash: seed %u (TEST_SEED=%u to repeat)\n", seed, seed);
	srand(seed);
	struct im_buf b = {0}, tmp = {0};
	unsigned char buf[512];
	for (int iter = 0; iter < 20000; iter++) {
		size_t n;
		if (iter % 2 == 0) {
			/* Pure noise, sometimes with a plausible header. */
			n = (size_t)rand() % 64;
			for (size_t i = 0; i < n; i++)
				buf[i] = (unsigned char)rand();
			if (n >= ENG_CMD_HEADER && rand() % 2) {
				buf[0] = 'I', buf[1] = 'M', buf[2] = 1;
				buf[3] = (unsigned char)(rand() % 10);
				im_put_be32(buf + 4, (uint32_t)(n - ENG_CMD_HEADER));
				fix_crc(buf, n);
			}
		} else {
			/* A valid command with a few bytes changed, CRC fixed. */
			struct eng_cmd c = sample(types[(size_t)rand() % IM_ARRAY_LEN(types)]);
			encode_ok(&c, &b);
			n = b.len;
			memcpy(buf, b.p, n);
			for (int k = rand() % 4 + 1; k > 0; k--)
				buf[ENG_CMD_HEADER + (size_t)rand() % (n - ENG_CMD_HEADER)] =
				    (unsigned char)rand();
			if (rand() % 4 == 0)
				n = ENG_CMD_HEADER + (size_t)rand() % (n - ENG_CMD_HEADER);
			im_put_be32(buf + 4, (uint32_t)(n - ENG_CMD_HEADER));
			fix_crc(buf, n);
		}
		decode_and_check(buf, n, &tmp);
	}
	im_buf_free(&b);
	im_buf_free(&tmp);
}

/*
 * The fuzz/corpus/fuzz_cmd seeds: with IMLOG_WRITE_CORPUS=<dir> this writes
 * a valid command of each type plus truncated and corrupted ones there.
 */
static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void writes_seed_corpus_when_asked(void **state)
{
	const char *dir = getenv("IMLOG_WRITE_CORPUS");
	if (dir == NULL)
		skip();
	struct im_buf b = {0};
	char name[64];
	for (size_t t = 0; t < IM_ARRAY_LEN(types); t++) {
		struct eng_cmd c = sample(types[t]);
		encode_ok(&c, &b);
		snprintf(name, sizeof(name), "valid_%s", type_names[t]);
		write_file(dir, name, b.p, b.len);
	}
	/* A token issue for a user the register seed creates, policy 0. */
	struct eng_cmd c = sample(ENG_CMD_TOKEN_ISSUE);
	c.u.token_issue.policy = 0;
	c.u.token_issue.max_per_platform = 1;
	encode_ok(&c, &b);
	write_file(dir, "valid_token_issue_policy0", b.p, b.len);
	c = sample(ENG_CMD_USER_REGISTER);
	encode_ok(&c, &b);
	write_file(dir, "truncated_user_register", b.p, b.len - 5);
	b.p[20] ^= 0x10;
	write_file(dir, "bitflip_user_register", b.p, b.len);
	c = sample(ENG_CMD_TOKEN_ISSUE);
	encode_ok(&c, &b);
	b.p[2] = 9;
	write_file(dir, "bad_version", b.p, b.len);
	b.p[2] = 1;
	b.p[0] = 'X';
	write_file(dir, "bad_magic", b.p, b.len);
	write_file(dir, "header_only", "IM\x01\x01\0\0\0\0\0\0\0\0", 12);
	write_file(dir, "empty", "", 0);
	im_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trips_every_command_type),
	    cmocka_unit_test(encode_appends_to_buffer),
	    cmocka_unit_test(rejects_every_truncation),
	    cmocka_unit_test(rejects_every_bit_flip),
	    cmocka_unit_test(rejects_bad_magic_version_type_and_length),
	    cmocka_unit_test(decode_rejects_bad_fields),
	    cmocka_unit_test(encode_rejects_oversized_fields),
	    cmocka_unit_test(encode_checks_user_cmd_bounds),
	    cmocka_unit_test(decode_rejects_bad_user_cmd_fields),
	    cmocka_unit_test(decode_reports_out_of_memory),
	    cmocka_unit_test(random_bytes_never_crash),
	    cmocka_unit_test(writes_seed_corpus_when_asked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
