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

/* MsgData-like bytes (sendID "alice", clientMsgID "cm-1", content). */
static const char msg_data[] = "\x0a\x05"
			       "alice"
			       "\x12\x03"
			       "bob"
			       "\x22\x04"
			       "cm-1"
			       "\x48\x01\x58\x65\x62\x0f{\"content\":\"hi\"}";

static struct eng_msg_item sample_items[3] = {
    {.conv_id = {"si_alice_bob", 12},
     .send_id = {"alice", 5},
     .recv_id = {"bob", 3},
     .client_msg_id = {"cm-1", 4},
     .server_msg_id = {"0123456789abcdef0123456789abcdef", 32},
     .op_id = {"op\x00x", 4},
     .session_type = 1,
     .content_type = 101,
     .send_time = 1700000000123,
     .flags = ENG_MSG_STORE | ENG_MSG_SENDER_SYNC | ENG_MSG_SENDER_READ,
     .data = {msg_data, sizeof(msg_data) - 1}},
    {.conv_id = {"sg_g1", 5},
     .send_id = {"bob", 3},
     .group_id = {"g1", 2},
     .session_type = 3,
     .content_type = -5,
     .send_time = -1,
     .flags = UINT32_MAX,
     .data = {"", 0}},
    {.conv_id = {"n_alice_bob", 11},
     .send_id = {"alice", 5},
     .recv_id = {"bob", 3},
     .client_msg_id = {"cm-n", 4},
     .session_type = 1,
     .content_type = 2200,
     .send_time = 1700000000999,
     .flags = ENG_MSG_STORE | ENG_MSG_NOTIFICATION,
     .data = {"\x0a\x05"
	      "alice",
	      7}},
};

static struct im_str sample_owners[2] = {{"alice", 5}, {"bob", 3}};
static struct im_str sample_convs[2] = {{"si_alice_bob", 12}, {"sg_g1", 5}};
static int64_t sample_seqs[3] = {1, INT64_MAX, -3};

static struct eng_conv sample_conv = {
    .conversation_id = {"si_alice_bob", 12},
    .recv_msg_opt = 2,
    .conversation_type = 1,
    .user_id = {"bob", 3},
    .is_pinned = true,
    .attached_info = {"{\"a\":1}", 7},
    .is_private_chat = true,
    .group_at_type = 3,
    .ex = {"x\x00y", 3},
    .burn_duration = 30,
    .min_seq = 5,
    .max_seq = -1,
    .msg_destruct_time = 604800,
    .latest_msg_destruct_time = 1700000000000,
    .is_msg_destruct = true,
};

static struct eng_group sample_group = {
    .group_id = {"g1", 2},
    .group_name = {"Group One", 9},
    .notification = {"hello", 5},
    .introduction = {"intro", 5},
    .face_url = {"https://f/g.png", 15},
    .owner_user_id = {"alice", 5},
    .create_time = 1700000000000,
    .ex = {"{}", 2},
    .status = 3,
    .creator_user_id = {"alice", 5},
    .group_type = 2,
    .need_verification = 1,
    .look_member_info = 1,
    .apply_member_friend = -1,
    .notification_update_time = 1700000000001,
    .notification_user_id = {"bob", 3},
};

static struct eng_member sample_members[2] = {
    {.user_id = {"alice", 5},
     .role_level = 100,
     .join_time = 1700000000000,
     .nickname = {"Al", 2},
     .join_source = 2,
     .operator_user_id = {"alice", 5},
     .mute_end_time = 0},
    {.user_id = {"bob", 3},
     .role_level = 20,
     .join_time = 1700000000002,
     .face_url = {"f", 1},
     .join_source = 3,
     .operator_user_id = {"alice", 5},
     .ex = {"e", 1},
     .mute_end_time = -7,
     .inviter_user_id = {"alice", 5}},
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
		c.u.token_kick.except_token = IM_STR_LIT("keep.me");
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
		/* Any type may carry items: one here, as a notification would. */
		if (type == ENG_CMD_USER_CMD_ADD) {
			c.n_items = 1;
			c.items = &sample_items[2];
		}
		break;
	case ENG_CMD_MSG_SEND:
		c.n_items = 3;
		c.items = sample_items;
		break;
	case ENG_CMD_CONV_SET:
		c.m.conv_set.n_owners = 2;
		c.m.conv_set.owners = sample_owners;
		c.m.conv_set.mask = ENG_CONV_IS_PINNED | ENG_CONV_EX;
		c.m.conv_set.conv = sample_conv;
		break;
	case ENG_CMD_MARK_READ:
		c.m.mark_read.user_id = IM_STR_LIT("bob");
		c.m.mark_read.conv_id = IM_STR_LIT("si_alice_bob");
		c.m.mark_read.has_read_seq = 9;
		c.m.mark_read.n_seqs = 3;
		c.m.mark_read.seqs = sample_seqs;
		c.m.mark_read.mark_msgs = true;
		c.n_items = 1;
		c.items = &sample_items[2];
		break;
	case ENG_CMD_REVOKE:
		c.m.revoke.conv_id = IM_STR_LIT("si_alice_bob");
		c.m.revoke.seq = 1;
		c.m.revoke.revoker_id = IM_STR_LIT("alice");
		c.m.revoke.revoker_role = 100;
		c.m.revoke.revoker_nickname = IM_STR_LIT("Al");
		c.m.revoke.revoke_time = 1700000000500;
		c.n_items = 1;
		c.items = &sample_items[2];
		break;
	case ENG_CMD_MSG_HIDE:
		c.m.msg_hide.user_id = IM_STR_LIT("alice");
		c.m.msg_hide.conv_id = IM_STR_LIT("si_alice_bob");
		c.m.msg_hide.n_seqs = 2;
		c.m.msg_hide.seqs = sample_seqs;
		break;
	case ENG_CMD_CONV_CLEAR:
		c.m.conv_clear.user_id = IM_STR_LIT("alice");
		c.m.conv_clear.n_convs = 2;
		c.m.conv_clear.conv_ids = sample_convs;
		break;
	case ENG_CMD_GROUP_CREATE:
		c.m.group_create.group = sample_group;
		c.m.group_create.n_members = 2;
		c.m.group_create.members = sample_members;
		c.n_items = 1;
		c.items = &sample_items[1];
		break;
	default:
		break;
	}
	return c;
}

static const int types[] = {
    ENG_CMD_NOOP,	ENG_CMD_USER_REGISTER, ENG_CMD_USER_UPDATE,	ENG_CMD_TOKEN_ISSUE,
    ENG_CMD_TOKEN_KICK, ENG_CMD_USER_CMD_ADD,  ENG_CMD_USER_CMD_UPDATE, ENG_CMD_USER_CMD_DEL,
    ENG_CMD_MSG_SEND,	ENG_CMD_CONV_SET,      ENG_CMD_MARK_READ,	ENG_CMD_REVOKE,
    ENG_CMD_MSG_HIDE,	ENG_CMD_CONV_CLEAR,    ENG_CMD_GROUP_CREATE};
/* The corpus file names of the valid seeds, by index into types[]. */
static const char *const type_names[] = {
    "noop",	    "user_register",   "user_update",  "token_issue", "token_kick",
    "user_cmd_add", "user_cmd_update", "user_cmd_del", "msg_send",    "conv_set",
    "mark_read",    "revoke",	       "msg_hide",     "conv_clear",  "group_create"};
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

static void assert_item_eq(const struct eng_msg_item *a, const struct eng_msg_item *b)
{
	assert_str_eq(a->conv_id, b->conv_id);
	assert_str_eq(a->send_id, b->send_id);
	assert_str_eq(a->recv_id, b->recv_id);
	assert_str_eq(a->group_id, b->group_id);
	assert_str_eq(a->client_msg_id, b->client_msg_id);
	assert_str_eq(a->server_msg_id, b->server_msg_id);
	assert_str_eq(a->op_id, b->op_id);
	assert_int_equal(a->session_type, b->session_type);
	assert_int_equal(a->content_type, b->content_type);
	assert_true(a->send_time == b->send_time);
	assert_int_equal(a->flags, b->flags);
	assert_str_eq(a->data, b->data);
}

static void assert_conv_eq(const struct eng_conv *a, const struct eng_conv *b)
{
	assert_str_eq(a->conversation_id, b->conversation_id);
	assert_int_equal(a->recv_msg_opt, b->recv_msg_opt);
	assert_int_equal(a->conversation_type, b->conversation_type);
	assert_str_eq(a->user_id, b->user_id);
	assert_str_eq(a->group_id, b->group_id);
	assert_int_equal(a->is_pinned, b->is_pinned);
	assert_str_eq(a->attached_info, b->attached_info);
	assert_int_equal(a->is_private_chat, b->is_private_chat);
	assert_int_equal(a->group_at_type, b->group_at_type);
	assert_str_eq(a->ex, b->ex);
	assert_int_equal(a->burn_duration, b->burn_duration);
	assert_true(a->min_seq == b->min_seq);
	assert_true(a->max_seq == b->max_seq);
	assert_true(a->msg_destruct_time == b->msg_destruct_time);
	assert_true(a->latest_msg_destruct_time == b->latest_msg_destruct_time);
	assert_int_equal(a->is_msg_destruct, b->is_msg_destruct);
}

static void assert_group_eq(const struct eng_group *a, const struct eng_group *b)
{
	assert_str_eq(a->group_id, b->group_id);
	assert_str_eq(a->group_name, b->group_name);
	assert_str_eq(a->notification, b->notification);
	assert_str_eq(a->introduction, b->introduction);
	assert_str_eq(a->face_url, b->face_url);
	assert_str_eq(a->owner_user_id, b->owner_user_id);
	assert_true(a->create_time == b->create_time);
	assert_str_eq(a->ex, b->ex);
	assert_int_equal(a->status, b->status);
	assert_str_eq(a->creator_user_id, b->creator_user_id);
	assert_int_equal(a->group_type, b->group_type);
	assert_int_equal(a->need_verification, b->need_verification);
	assert_int_equal(a->look_member_info, b->look_member_info);
	assert_int_equal(a->apply_member_friend, b->apply_member_friend);
	assert_true(a->notification_update_time == b->notification_update_time);
	assert_str_eq(a->notification_user_id, b->notification_user_id);
}

static void assert_member_eq(const struct eng_member *a, const struct eng_member *b)
{
	assert_str_eq(a->user_id, b->user_id);
	assert_int_equal(a->role_level, b->role_level);
	assert_true(a->join_time == b->join_time);
	assert_str_eq(a->nickname, b->nickname);
	assert_str_eq(a->face_url, b->face_url);
	assert_int_equal(a->join_source, b->join_source);
	assert_str_eq(a->operator_user_id, b->operator_user_id);
	assert_str_eq(a->ex, b->ex);
	assert_true(a->mute_end_time == b->mute_end_time);
	assert_str_eq(a->inviter_user_id, b->inviter_user_id);
}

static void assert_seqs_eq(uint32_t n, const int64_t *a, const int64_t *b)
{
	for (uint32_t i = 0; i < n; i++)
		assert_true(a[i] == b[i]);
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
		assert_int_equal(b.p[2], 3);
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
			assert_str_eq(d.u.token_kick.except_token, c.u.token_kick.except_token);
			break;
		case ENG_CMD_CONV_SET:
			assert_int_equal(d.m.conv_set.n_owners, 2);
			assert_str_eq(d.m.conv_set.owners[0], sample_owners[0]);
			assert_str_eq(d.m.conv_set.owners[1], sample_owners[1]);
			assert_int_equal(d.m.conv_set.mask, c.m.conv_set.mask);
			assert_conv_eq(&d.m.conv_set.conv, &sample_conv);
			break;
		case ENG_CMD_MARK_READ:
			assert_str_eq(d.m.mark_read.user_id, c.m.mark_read.user_id);
			assert_str_eq(d.m.mark_read.conv_id, c.m.mark_read.conv_id);
			assert_true(d.m.mark_read.has_read_seq == 9);
			assert_int_equal(d.m.mark_read.n_seqs, 3);
			assert_seqs_eq(3, d.m.mark_read.seqs, sample_seqs);
			assert_true(d.m.mark_read.mark_msgs);
			break;
		case ENG_CMD_REVOKE:
			assert_str_eq(d.m.revoke.conv_id, c.m.revoke.conv_id);
			assert_true(d.m.revoke.seq == 1);
			assert_str_eq(d.m.revoke.revoker_id, c.m.revoke.revoker_id);
			assert_int_equal(d.m.revoke.revoker_role, 100);
			assert_str_eq(d.m.revoke.revoker_nickname, c.m.revoke.revoker_nickname);
			assert_true(d.m.revoke.revoke_time == c.m.revoke.revoke_time);
			break;
		case ENG_CMD_MSG_HIDE:
			assert_str_eq(d.m.msg_hide.user_id, c.m.msg_hide.user_id);
			assert_str_eq(d.m.msg_hide.conv_id, c.m.msg_hide.conv_id);
			assert_int_equal(d.m.msg_hide.n_seqs, 2);
			assert_seqs_eq(2, d.m.msg_hide.seqs, sample_seqs);
			break;
		case ENG_CMD_CONV_CLEAR:
			assert_str_eq(d.m.conv_clear.user_id, c.m.conv_clear.user_id);
			assert_int_equal(d.m.conv_clear.n_convs, 2);
			assert_str_eq(d.m.conv_clear.conv_ids[0], sample_convs[0]);
			assert_str_eq(d.m.conv_clear.conv_ids[1], sample_convs[1]);
			break;
		case ENG_CMD_GROUP_CREATE:
			assert_group_eq(&d.m.group_create.group, &sample_group);
			assert_int_equal(d.m.group_create.n_members, 2);
			for (int i = 0; i < 2; i++) {
				assert_member_eq(&d.m.group_create.members[i], &sample_members[i]);
				/* The group's id, not sent per member. */
				assert_str_eq(d.m.group_create.members[i].group_id,
					      sample_group.group_id);
			}
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
		/* The items tail, whatever the type. */
		assert_int_equal(d.n_items, c.n_items);
		for (uint32_t i = 0; i < c.n_items; i++)
			assert_item_eq(&d.items[i], &c.items[i]);
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
	p[2] = 4;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_EVERSION);
	/* Version 1 (no items tail) is refused, not misread. */
	p[2] = 1;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_EVERSION);
	p[2] = 0;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_EVERSION);
	p[2] = 2;
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
	unsigned char h[ENG_CMD_HEADER] = {'I', 'M', 2, (unsigned char)type};
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
	im_put_be32(num, 0); /* no items */
	im_buf_add(b, num, 4);
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

static void encode_checks_message_bounds(void **state)
{
	struct im_buf b = {0};
	static char big[ENG_MSG_MAX + 2];
	memset(big, 'x', sizeof(big));
	struct eng_msg_item it = sample_items[0], items[ENG_ITEMS_MAX + 1];
	struct eng_cmd c = sample(ENG_CMD_MSG_SEND), d;
	c.n_items = 1;
	c.items = &it;
	/* Each field one byte over its limit, then at its limit. */
	struct {
		struct im_str *f;
		uint32_t max;
	} fields[] = {
	    {&it.conv_id, ENG_CONV_ID_MAX},  {&it.send_id, ENG_ID_MAX},
	    {&it.recv_id, ENG_ID_MAX},	     {&it.group_id, ENG_ID_MAX},
	    {&it.client_msg_id, ENG_ID_MAX}, {&it.server_msg_id, ENG_SERVER_MSG_ID_MAX},
	    {&it.op_id, ENG_ID_MAX},	     {&it.data, ENG_MSG_MAX},
	};
	for (size_t i = 0; i < IM_ARRAY_LEN(fields); i++) {
		it = sample_items[0];
		*fields[i].f = (struct im_str){big, fields[i].max + 1};
		b.len = 0;
		if (eng_cmd_encode(&c, &b) != IM_EINVAL)
			fail_msg("item field %zu: %u bytes encoded", i, fields[i].max + 1);
		assert_int_equal(b.len, 0);
		*fields[i].f = (struct im_str){big, fields[i].max};
		encode_ok(&c, &b);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
		assert_item_eq(&d.items[0], &it);
		eng_cmd_release(&d);
	}
	/* Key parts may not hold a NUL (op_id and data may). */
	it = sample_items[0];
	it.conv_id = (struct im_str){"si_a\0b", 6};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	it = sample_items[0];
	it.server_msg_id = (struct im_str){"ab\0", 3};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	/* The item count. */
	for (int i = 0; i <= ENG_ITEMS_MAX; i++)
		items[i] = sample_items[1];
	c.items = items;
	c.n_items = ENG_ITEMS_MAX + 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.n_items = ENG_ITEMS_MAX;
	encode_ok(&c, &b);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.n_items, ENG_ITEMS_MAX);
	eng_cmd_release(&d);
	c.items = NULL;
	c.n_items = 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);

	/* The arrays and texts of the other commands. */
	c = sample(ENG_CMD_CONV_SET);
	c.m.conv_set.n_owners = ENG_MEMBERS_MAX + 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.m.conv_set.n_owners = 1;
	c.m.conv_set.owners = NULL;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_CONV_SET);
	c.m.conv_set.conv.ex = (struct im_str){big, ENG_TEXT_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_CONV_SET);
	c.m.conv_set.conv.conversation_id = (struct im_str){big, ENG_CONV_ID_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_MARK_READ);
	c.m.mark_read.n_seqs = ENG_SEQS_MAX + 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.m.mark_read.seqs = NULL;
	c.m.mark_read.n_seqs = 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_MSG_HIDE);
	c.m.msg_hide.n_seqs = ENG_SEQS_MAX + 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_CONV_CLEAR);
	c.m.conv_clear.n_convs = ENG_CONVS_MAX + 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_CONV_CLEAR);
	struct im_str long_conv = {big, ENG_CONV_ID_MAX + 1};
	c.m.conv_clear.conv_ids = &long_conv;
	c.m.conv_clear.n_convs = 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_REVOKE);
	c.m.revoke.revoker_nickname = (struct im_str){big, ENG_TEXT_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_GROUP_CREATE);
	c.m.group_create.n_members = ENG_MEMBERS_MAX + 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.m.group_create.n_members = 1;
	c.m.group_create.members = NULL;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_GROUP_CREATE);
	c.m.group_create.group.group_name = (struct im_str){big, ENG_TEXT_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	struct eng_member m = sample_members[1];
	m.inviter_user_id = (struct im_str){big, ENG_ID_MAX + 1};
	c = sample(ENG_CMD_GROUP_CREATE);
	c.m.group_create.members = &m;
	c.m.group_create.n_members = 1;
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c = sample(ENG_CMD_TOKEN_KICK);
	c.u.token_kick.except_token = (struct im_str){big, ENG_TOKEN_MAX + 1};
	assert_int_equal(eng_cmd_encode(&c, &b), IM_EINVAL);
	c.u.token_kick.except_token = (struct im_str){big, ENG_TOKEN_MAX};
	encode_ok(&c, &b);
	/* 64 items of 64 KiB fit in a command (4 MiB of 16). */
	c = sample(ENG_CMD_MSG_SEND);
	for (int i = 0; i < ENG_ITEMS_MAX; i++) {
		items[i] = sample_items[0];
		items[i].data = (struct im_str){big, ENG_MSG_MAX};
	}
	c.items = items;
	c.n_items = ENG_ITEMS_MAX;
	encode_ok(&c, &b);
	im_buf_free(&b);
}

/* Builds a one-item msg_send by hand with the given field lengths. */
static void raw_msg_send(struct im_buf *b, uint32_t n_items, uint32_t conv_n, uint32_t cmid_n,
			 uint32_t smid_n, uint32_t op_n, uint32_t data_n)
{
	unsigned char h[ENG_CMD_HEADER] = {'I', 'M', 2, ENG_CMD_MSG_SEND};
	unsigned char num[8];
	b->len = 0;
	im_buf_add(b, h, sizeof(h));
	im_put_be64(num, 1700000000000);
	im_buf_add(b, num, 8);
	im_put_be32(num, n_items);
	im_buf_add(b, num, 4);
	for (uint32_t i = 0; i < n_items; i++) {
		add_str(b, conv_n, 'c');
		add_str(b, 5, 's');
		add_str(b, 5, 'r');
		add_str(b, 0, 'g');
		add_str(b, cmid_n, 'm');
		add_str(b, smid_n, 'v');
		add_str(b, op_n, 'o');
		im_put_be32(num, 1);
		im_buf_add(b, num, 4);
		im_buf_add(b, num, 4);
		im_put_be64(num, 5);
		im_buf_add(b, num, 8);
		im_put_be32(num, ENG_MSG_STORE);
		im_buf_add(b, num, 4);
		add_str(b, data_n, 'd');
	}
	unsigned char *p = (unsigned char *)b->p;
	im_put_be32(p + 4, (uint32_t)(b->len - ENG_CMD_HEADER));
	fix_crc(p, b->len);
}

static void decode_rejects_bad_message_fields(void **state)
{
	struct im_buf b = {0};
	struct eng_cmd d;
	/* The builder is right: at the limits it decodes. */
	raw_msg_send(&b, 1, ENG_CONV_ID_MAX, ENG_ID_MAX, ENG_SERVER_MSG_ID_MAX, ENG_ID_MAX,
		     ENG_MSG_MAX);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.n_items, 1);
	assert_int_equal(d.items[0].data.n, ENG_MSG_MAX);
	eng_cmd_release(&d);
	raw_msg_send(&b, ENG_ITEMS_MAX, 5, 1, 1, 1, 1);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
	eng_cmd_release(&d);
	/* One over each limit. */
	raw_msg_send(&b, ENG_ITEMS_MAX + 1, 5, 1, 1, 1, 1);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
	raw_msg_send(&b, 1, ENG_CONV_ID_MAX + 1, 1, 1, 1, 1);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
	raw_msg_send(&b, 1, 5, ENG_ID_MAX + 1, 1, 1, 1);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
	raw_msg_send(&b, 1, 5, 1, ENG_SERVER_MSG_ID_MAX + 1, 1, 1);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
	raw_msg_send(&b, 1, 5, 1, 1, ENG_ID_MAX + 1, 1);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
	raw_msg_send(&b, 1, 5, 1, 1, 1, ENG_MSG_MAX + 1);
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), IM_ECORRUPT);
	/* A NUL in the conversation id: payload now(8) | n_items(4) | conv(4+5). */
	raw_msg_send(&b, 1, 5, 1, 1, 1, 1);
	unsigned char *p = (unsigned char *)b.p;
	p[ENG_CMD_HEADER + 8 + 4 + 4 + 2] = 0;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);

	/* mark_read: now(8) | "bob"(7) | "si_alice_bob"(16) | has_read(8) | n_seqs(4) |
	 * seqs(24) | mark_msgs(1) | n_items(4) | the item. */
	struct eng_cmd c = sample(ENG_CMD_MARK_READ);
	size_t at_n_seqs = ENG_CMD_HEADER + 8 + 7 + 16 + 8, at_mark = at_n_seqs + 4 + 24;
	encode_ok(&c, &b);
	p = (unsigned char *)b.p;
	assert_int_equal(p[at_mark], 1);
	p[at_mark] = 2; /* a bool is 0 or 1: anything else would not re-encode the same */
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	p[at_mark] = 1;
	im_put_be32(p + at_n_seqs, ENG_SEQS_MAX + 1);
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_put_be32(p + at_n_seqs, 5000); /* more than the payload holds */
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_put_be32(p + at_n_seqs, 3);
	im_put_be32(p + at_mark + 1, 2); /* two items announced, one present */
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_put_be32(p + at_mark + 1, 1);
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), 0);
	eng_cmd_release(&d);

	/* conv_set: a bool field of the conversation out of range. */
	c = sample(ENG_CMD_CONV_SET);
	encode_ok(&c, &b);
	p = (unsigned char *)b.p;
	/* now(8) | owners 4+(4+5)+(4+3) | mask(4) | conv_id(4+12) | type(4) | user(4+3) |
	 * group(4) | recv_msg_opt(4) | is_pinned */
	size_t at_pinned = ENG_CMD_HEADER + 8 + 20 + 4 + 16 + 4 + 7 + 4 + 4;
	assert_int_equal(p[at_pinned], 1);
	p[at_pinned] = 0xff;
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	/* A group with more members announced than the payload holds. */
	c = sample(ENG_CMD_GROUP_CREATE);
	c.n_items = 0;
	encode_ok(&c, &b);
	p = (unsigned char *)b.p;
	size_t at_members = b.len - 4 - 2 * 48 - (5 + 2 + 5) - (3 + 1 + 5 + 1 + 5) - 4;
	assert_int_equal(im_get_be32(p + at_members), 2);
	im_put_be32(p + at_members, ENG_MEMBERS_MAX);
	fix_crc(p, b.len);
	assert_int_equal(eng_cmd_decode(p, b.len, &d), IM_ECORRUPT);
	im_put_be32(p + at_members, ENG_MEMBERS_MAX + 1);
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
	/* Two arrays (seqs, then items): either failing frees the other (ASan sees leaks). */
	c = sample(ENG_CMD_MARK_READ);
	encode_ok(&c, &b);
	for (long n = 1; n <= 2; n++) {
		im_alloc_fail_after(n);
		assert_int_equal(eng_cmd_decode(b.p, b.len, &d), -ENOMEM);
		im_alloc_fail_after(0);
	}
	assert_int_equal(eng_cmd_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.n_items, 1);
	eng_cmd_release(&d);
	assert_null(d.items);
	assert_null(d.m.mark_read.seqs);
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
	static unsigned char buf[4096];
	for (int iter = 0; iter < 20000; iter++) {
		size_t n;
		if (iter % 2 == 0) {
			/* Pure noise, sometimes with a plausible header. */
			n = (size_t)rand() % 64;
			for (size_t i = 0; i < n; i++)
				buf[i] = (unsigned char)rand();
			if (n >= ENG_CMD_HEADER && rand() % 2) {
				buf[0] = 'I', buf[1] = 'M', buf[2] = 2;
				buf[3] = (unsigned char)(rand() % 17);
				im_put_be32(buf + 4, (uint32_t)(n - ENG_CMD_HEADER));
				fix_crc(buf, n);
			}
		} else {
			/* A valid command with a few bytes changed, CRC fixed. */
			struct eng_cmd c = sample(types[(size_t)rand() % IM_ARRAY_LEN(types)]);
			encode_ok(&c, &b);
			n = b.len;
			assert_true(n <= sizeof(buf));
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
	write_file(dir, "header_only", "IM\x02\x01\0\0\0\0\0\0\0\0", 12);
	/* Message-side seeds that apply after the register seed: a group of its
	 * users, a group message from a member and one from an outsider, a mark
	 * read of a stored message, a clear of every conversation, a kick. */
	c = sample(ENG_CMD_GROUP_CREATE);
	c.m.group_create.group.group_id = IM_STR_LIT("g2");
	c.n_items = 0;
	encode_ok(&c, &b);
	write_file(dir, "valid_group_create_no_items", b.p, b.len);
	struct eng_msg_item it = sample_items[1];
	it.flags = ENG_MSG_STORE | ENG_MSG_CHECK_MEMBER | ENG_MSG_SENDER_READ;
	it.client_msg_id = IM_STR_LIT("cm-g");
	c = sample(ENG_CMD_MSG_SEND);
	c.n_items = 1;
	c.items = &it;
	encode_ok(&c, &b);
	write_file(dir, "valid_msg_send_group_member", b.p, b.len);
	it.send_id = IM_STR_LIT("c\xc3\xa9");
	encode_ok(&c, &b);
	write_file(dir, "valid_msg_send_group_outsider", b.p, b.len);
	/* The same 1:1 message twice in one command: the second is a dup. */
	struct eng_msg_item twice[2] = {sample_items[0], sample_items[0]};
	c = sample(ENG_CMD_MSG_SEND);
	c.n_items = 2;
	c.items = twice;
	encode_ok(&c, &b);
	write_file(dir, "valid_msg_send_twice", b.p, b.len);
	c = sample(ENG_CMD_CONV_CLEAR);
	c.m.conv_clear.n_convs = 0;
	c.m.conv_clear.conv_ids = NULL;
	encode_ok(&c, &b);
	write_file(dir, "valid_conv_clear_all", b.p, b.len);
	c = sample(ENG_CMD_MARK_READ);
	c.m.mark_read.user_id = IM_STR_LIT("alice");
	c.n_items = 0;
	encode_ok(&c, &b);
	write_file(dir, "valid_mark_read_alice", b.p, b.len);
	c = sample(ENG_CMD_MSG_SEND);
	encode_ok(&c, &b);
	write_file(dir, "truncated_msg_send", b.p, b.len - 3);
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
	    cmocka_unit_test(encode_checks_message_bounds),
	    cmocka_unit_test(decode_rejects_bad_message_fields),
	    cmocka_unit_test(decode_reports_out_of_memory),
	    cmocka_unit_test(random_bytes_never_crash),
	    cmocka_unit_test(writes_seed_corpus_when_asked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
