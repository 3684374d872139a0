/* test_pb.c - the protobuf layer: the §4.8 examples, options, the hand-framed pull/push
 * responses against protobuf-c's own decoder and encoder, and out-of-memory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <mbedtls/base64.h>

#include "pb.h"

/* openim-protocol.md §4.8: the MsgData of the 1003 example, as hex and as its JSON base64. */
static const char example_hex[] =
    "0a02753112027532220663306666656530053a014148015064586562107b22636f6e74656e74223a226869227d"
    "800180d095ffbc31880101a201022801";
static const char example_b64[] =
    "CgJ1MRICdTIiBmMwZmZlZTAFOgFBSAFQZFhlYhB7ImNvbnRlbnQiOiJoaSJ9gAGA0JX/vDGIAQGiAQIoAQ==";

/* Decodes hex into b (replacing its contents). */
static void from_hex(const char *hex, struct im_buf *b)
{
	size_t n = strlen(hex);
	b->len = 0;
	assert_int_equal(n % 2, 0);
	for (size_t i = 0; i < n; i += 2) {
		unsigned v;
		assert_int_equal(sscanf(hex + i, "%2x", &v), 1);
		unsigned char c = (unsigned char)v;
		assert_int_equal(im_buf_add(b, &c, 1), 0);
	}
}

static struct im_str buf_str(const struct im_buf *b)
{
	return (struct im_str){b->p, (uint32_t)b->len};
}

static void expect_example_fields(const Openim__Sdkws__MsgData *m)
{
	assert_string_equal(m->sendid, "u1");
	assert_string_equal(m->recvid, "u2");
	assert_string_equal(m->groupid, "");
	assert_string_equal(m->clientmsgid, "c0ffee");
	assert_string_equal(m->servermsgid, "");
	assert_int_equal(m->senderplatformid, 5);
	assert_string_equal(m->sendernickname, "A");
	assert_string_equal(m->senderfaceurl, "");
	assert_int_equal(m->sessiontype, 1);
	assert_int_equal(m->msgfrom, 100);
	assert_int_equal(m->contenttype, 101);
	assert_int_equal(m->content.len, 16);
	assert_memory_equal(m->content.data, "{\"content\":\"hi\"}", 16);
	assert_int_equal(m->sendtime, 0);
	assert_int_equal(m->createtime, 1700000000000LL);
	assert_int_equal(m->status, 1);
	assert_false(m->isread);
	assert_int_equal(m->n_options, 0);
	assert_non_null(m->offlinepushinfo);
	assert_true(m->offlinepushinfo->iosbadgecount);
	assert_string_equal(m->offlinepushinfo->title, "");
	assert_int_equal(m->n_atuseridlist, 0);
	assert_string_equal(m->attachedinfo, "");
	assert_string_equal(m->ex, "");
	assert_int_equal(m->keyversion, 0);
	assert_int_equal(m->n_dstuserids, 0);
}

static void decodes_the_msgdata_example(void **state)
{
	struct im_buf b = {0}, b64 = {0}, again = {0};
	Openim__Sdkws__MsgData *m;

	from_hex(example_hex, &b);
	assert_int_equal(pb_msgdata_unpack((const uint8_t *)b.p, b.len, &m), 0);
	expect_example_fields(m);
	assert_int_equal(m->seq, 0);

	/* The JSON envelope's base64 is the same bytes. */
	assert_int_equal(pb_base64_std_decode(example_b64, strlen(example_b64), &b64), 0);
	assert_int_equal(b64.len, b.len);
	assert_memory_equal(b64.p, b.p, b.len);

	/* The example is canonical: packing the decoded message gives it back. */
	assert_int_equal(pb_pack(&m->base, &again), 0);
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.p, b.p, b.len);

	pb_msgdata_free(m);
	im_buf_free(&b);
	im_buf_free(&b64);
	im_buf_free(&again);
}

static void decodes_the_send_reply_example(void **state)
{
	static const char reply[] = "CgJzMRIGYzBmZmVlGPvQlf+8MQ==";
	struct im_buf b = {0}, enc = {0};
	ProtobufCMessage *pm;

	assert_int_equal(pb_base64_std_decode(reply, strlen(reply), &b), 0);
	assert_int_equal(
	    pb_unpack(&openim__msg__send_msg_resp__descriptor, (const uint8_t *)b.p, b.len, &pm),
	    0);
	Openim__Msg__SendMsgResp *r = (Openim__Msg__SendMsgResp *)pm;
	assert_string_equal(r->servermsgid, "s1");
	assert_string_equal(r->clientmsgid, "c0ffee");
	assert_int_equal(r->sendtime, 1700000000123LL);
	assert_null(r->modify);

	/* Encoding it again gives the same base64. */
	struct im_buf packed = {0};
	assert_int_equal(pb_pack(pm, &packed), 0);
	assert_int_equal(pb_base64_std_encode(packed.p, packed.len, &enc), 0);
	assert_string_equal(enc.p, reply);
	pb_free(pm);

	/* The JS SDK reads the same bytes as UserSendMsgResp. */
	assert_int_equal(pb_unpack(&openim__sdkws__user_send_msg_resp__descriptor,
				   (const uint8_t *)b.p, b.len, &pm),
			 0);
	Openim__Sdkws__UserSendMsgResp *u = (Openim__Sdkws__UserSendMsgResp *)pm;
	assert_string_equal(u->servermsgid, "s1");
	assert_int_equal(u->sendtime, 1700000000123LL);
	pb_free(pm);
	im_buf_free(&b);
	im_buf_free(&enc);
	im_buf_free(&packed);
}

static void rejects_bytes_that_are_not_the_message(void **state)
{
	static const uint8_t truncated[] = {0x0a, 0x05, 'u', '1'};
	static const uint8_t wrong_wire_type[] = {0x08, 0x01}; /* sendID as a varint */
	Openim__Sdkws__MsgData *m = (void *)1;

	assert_int_equal(pb_msgdata_unpack(truncated, sizeof(truncated), &m), IM_EINVAL);
	assert_null(m);
	assert_int_equal(pb_msgdata_unpack(wrong_wire_type, sizeof(wrong_wire_type), &m),
			 IM_EINVAL);
	/* Field number 0 (tag 81 00), which protobuf-c alone accepts, at the top
	 * and inside offlinePushInfo; other unknown fields are kept. */
	static const uint8_t field0[] = {0x0a, 0x01, 'u', 0x81, 0x00, 0x05};
	static const uint8_t nested0[] = {0xa2, 0x01, 0x03, 0x81, 0x00, 0x05};
	static const uint8_t unknown[] = {0x0a, 0x01, 'u', 0xf8, 0x07, 0x05}; /* field 127 */
	assert_int_equal(pb_msgdata_unpack(field0, sizeof(field0), &m), IM_EINVAL);
	assert_null(m);
	assert_int_equal(pb_msgdata_unpack(nested0, sizeof(nested0), &m), IM_EINVAL);
	assert_int_equal(pb_msgdata_unpack(unknown, sizeof(unknown), &m), 0);
	struct im_buf b = {0};
	assert_int_equal(pb_pack(&m->base, &b), 0);
	assert_int_equal(b.len, sizeof(unknown));
	assert_memory_equal(b.p, unknown, sizeof(unknown));
	im_buf_free(&b);
	pb_msgdata_free(m);

	/* Empty input is the empty message. */
	assert_int_equal(pb_msgdata_unpack((const uint8_t *)"", 0, &m), 0);
	assert_string_equal(m->sendid, "");
	pb_msgdata_free(m);
	pb_msgdata_free(NULL);
}

static void missing_option_means_true(void **state)
{
	/* options {history: false, senderSync: true, history: true, unreadCount: false}:
	 * a repeated key takes its last value. */
	struct im_buf b = {0};
	Openim__Sdkws__MsgData *m;

	from_hex("9a010b0a07686973746f72791000"
		 "9a010e0a0a73656e64657253796e631001"
		 "9a010b0a07686973746f72791001"
		 "9a010f0a0b756e72656164436f756e741000",
		 &b);
	assert_int_equal(pb_msgdata_unpack((const uint8_t *)b.p, b.len, &m), 0);
	assert_int_equal(m->n_options, 4);
	assert_true(pb_opt(m, PB_OPT_HISTORY));
	assert_true(pb_opt(m, PB_OPT_SENDER_SYNC));
	assert_false(pb_opt(m, PB_OPT_UNREAD_COUNT));
	assert_true(pb_opt(m, PB_OPT_OFFLINE_PUSH));
	assert_true(pb_opt(m, PB_OPT_IS_NOT_NOTIFICATION));
	assert_true(pb_opt(m, ""));

	/* Setting a present key updates every entry of it; a new one is appended. */
	assert_int_equal(pb_opt_set(m, PB_OPT_HISTORY, false), 0);
	assert_int_equal(m->n_options, 4);
	assert_false(pb_opt(m, PB_OPT_HISTORY));
	assert_int_equal(pb_opt_set(m, PB_OPT_OFFLINE_PUSH, false), 0);
	assert_int_equal(m->n_options, 5);
	assert_false(pb_opt(m, PB_OPT_OFFLINE_PUSH));
	assert_true(pb_opt(m, PB_OPT_SENDER_SYNC));

	/* The options survive a pack and unpack. */
	struct im_buf again = {0};
	Openim__Sdkws__MsgData *m2;
	assert_int_equal(pb_pack(&m->base, &again), 0);
	assert_int_equal(pb_msgdata_unpack((const uint8_t *)again.p, again.len, &m2), 0);
	assert_false(pb_opt(m2, PB_OPT_HISTORY));
	assert_false(pb_opt(m2, PB_OPT_OFFLINE_PUSH));
	assert_false(pb_opt(m2, PB_OPT_UNREAD_COUNT));
	assert_true(pb_opt(m2, PB_OPT_SENDER_SYNC));
	assert_true(pb_opt(m2, PB_OPT_IS_SEND_MSG));
	pb_msgdata_free(m2);
	pb_msgdata_free(m);
	im_buf_free(&b);
	im_buf_free(&again);
}

static void sets_options_on_a_new_message(void **state)
{
	Openim__Sdkws__MsgData *m = pb_msgdata_new();
	struct im_buf b = {0};

	assert_non_null(m);
	assert_true(pb_opt(m, PB_OPT_HISTORY));
	assert_int_equal(pb_opt_set(m, PB_OPT_IS_NOT_NOTIFICATION, false), 0);
	assert_int_equal(pb_opt_set(m, PB_OPT_SENDER_SYNC, true), 0);
	assert_false(pb_opt(m, PB_OPT_IS_NOT_NOTIFICATION));
	assert_true(pb_opt(m, PB_OPT_SENDER_SYNC));
	m->sendid = im_strndup("admin", 5);
	assert_int_equal(pb_pack(&m->base, &b), 0);
	assert_true(b.len > 0);
	pb_msgdata_free(m);
	im_buf_free(&b);
}

/* Unpacks b as a PushMessages-shaped message (PushMessages, PullMessageBySeqsResp and
 * GetSeqMessageResp share the layout). */
static Openim__Sdkws__PushMessages *unpack_push(const struct im_buf *b)
{
	ProtobufCMessage *pm;
	assert_int_equal(pb_unpack(&openim__sdkws__push_messages__descriptor, (const uint8_t *)b->p,
				   b->len, &pm),
			 0);
	return (Openim__Sdkws__PushMessages *)pm;
}

/* Packs a decoded MsgData and compares with the expected stored bytes. */
static void expect_msg_bytes(const Openim__Sdkws__MsgData *m, const struct im_buf *want)
{
	struct im_buf b = {0};
	assert_int_equal(pb_pack(&m->base, &b), 0);
	assert_int_equal(b.len, want->len);
	assert_memory_equal(b.p, want->p, b.len);
	im_buf_free(&b);
}

static void push_framing_decodes_to_the_stored_message(void **state)
{
	struct im_buf msg = {0}, out = {0};
	Openim__Sdkws__PushMessages *pm;

	from_hex(example_hex, &msg);
	struct im_str blob = buf_str(&msg);
	assert_int_equal(pb_push_messages(&out, false, IM_STR_LIT("si_u1_u2"), &blob, 1), 0);
	pm = unpack_push(&out);
	assert_int_equal(pm->n_msgs, 1);
	assert_int_equal(pm->n_notificationmsgs, 0);
	assert_string_equal(pm->msgs[0]->key, "si_u1_u2");
	Openim__Sdkws__PullMsgs *pull = pm->msgs[0]->value;
	assert_non_null(pull);
	assert_int_equal(pull->n_msgs, 1);
	assert_false(pull->isend);
	assert_int_equal(pull->endseq, 0);
	expect_example_fields(pull->msgs[0]);
	expect_msg_bytes(pull->msgs[0], &msg);

	/* The framing is what protobuf-c itself writes for the same message. */
	struct im_buf canon = {0};
	assert_int_equal(pb_pack(&pm->base, &canon), 0);
	assert_int_equal(canon.len, out.len);
	assert_memory_equal(canon.p, out.p, out.len);
	pb_free(&pm->base);
	im_buf_free(&canon);

	/* Notifications go in notificationMsgs (field 2); several messages in order. */
	struct im_str three[3] = {blob, blob, blob};
	out.len = 0;
	assert_int_equal(pb_push_messages(&out, true, IM_STR_LIT("n_u1"), three, 3), 0);
	pm = unpack_push(&out);
	assert_int_equal(pm->n_msgs, 0);
	assert_int_equal(pm->n_notificationmsgs, 1);
	assert_string_equal(pm->notificationmsgs[0]->key, "n_u1");
	assert_int_equal(pm->notificationmsgs[0]->value->n_msgs, 3);
	for (int i = 0; i < 3; i++)
		expect_msg_bytes(pm->notificationmsgs[0]->value->msgs[i], &msg);
	pb_free(&pm->base);

	/* Appending keeps what out held: the concatenation decodes as the merge. */
	assert_int_equal(pb_push_messages(&out, false, IM_STR_LIT("sg_g1"), &blob, 1), 0);
	pm = unpack_push(&out);
	assert_int_equal(pm->n_notificationmsgs, 1);
	assert_int_equal(pm->n_msgs, 1);
	assert_string_equal(pm->msgs[0]->key, "sg_g1");
	pb_free(&pm->base);
	im_buf_free(&msg);
	im_buf_free(&out);
}

static void appended_seq_wins_over_the_stored_one(void **state)
{
	struct im_buf msg = {0}, out = {0};
	Openim__Sdkws__MsgData *m;

	/* A stored message that already says seq 5, then the engine's append of
	 * seq 300 (0x70, varint ac 02). */
	from_hex(example_hex, &msg);
	assert_int_equal(pb_msgdata_unpack((const uint8_t *)msg.p, msg.len, &m), 0);
	m->seq = 5;
	msg.len = 0;
	assert_int_equal(pb_pack(&m->base, &msg), 0);
	pb_msgdata_free(m);
	static const uint8_t tail[] = {0x70, 0xac, 0x02};
	assert_int_equal(im_buf_add(&msg, tail, sizeof(tail)), 0);

	struct im_str blob = buf_str(&msg);
	assert_int_equal(pb_push_messages(&out, false, IM_STR_LIT("si_u1_u2"), &blob, 1), 0);
	Openim__Sdkws__PushMessages *pm = unpack_push(&out);
	Openim__Sdkws__MsgData *got = pm->msgs[0]->value->msgs[0];
	assert_int_equal(got->seq, 300);
	assert_int_equal(got->status, 1);
	assert_string_equal(got->clientmsgid, "c0ffee");
	pb_free(&pm->base);

	/* The patched add overrides seq and status (the pushed copy's 1 -> 2). */
	struct pb_w w;
	struct pb_entry e;
	out.len = 0;
	pb_w_init(&w, &out);
	pb_pull_msgs_map_entry_begin(&w, false, IM_STR_LIT("si_u1_u2"), &e);
	pb_pull_msgs_add_patched(&w, blob, 1LL << 40, 2);
	pb_pull_msgs_add_patched(&w, blob, 0, 0);
	pb_pull_msgs_map_entry_end(&w, &e, false, 0);
	assert_int_equal(pb_w_done(&w), 0);
	pm = unpack_push(&out);
	assert_int_equal(pm->msgs[0]->value->n_msgs, 2);
	assert_int_equal(pm->msgs[0]->value->msgs[0]->seq, 1LL << 40);
	assert_int_equal(pm->msgs[0]->value->msgs[0]->status, 2);
	assert_int_equal(pm->msgs[0]->value->msgs[1]->seq, 300);
	assert_int_equal(pm->msgs[0]->value->msgs[1]->status, 1);
	pb_free(&pm->base);
	im_buf_free(&msg);
	im_buf_free(&out);
}

/* Builds a MsgData blob with the given seq and a content of size bytes. */
static void make_msg(struct im_buf *out, int64_t seq, size_t size)
{
	Openim__Sdkws__MsgData m = OPENIM__SDKWS__MSG_DATA__INIT;
	char *content = malloc(size + 1);
	assert_non_null(content);
	memset(content, 'x', size);
	m.sendid = "u1";
	m.recvid = "u2";
	m.seq = seq;
	m.content.data = (uint8_t *)content;
	m.content.len = size;
	out->len = 0;
	assert_int_equal(pb_pack(&m.base, out), 0);
	free(content);
}

static void pull_entries_match_protobuf_c_encoding(void **state)
{
	/* Two entries (a chat and a notification stream) with enough bytes for
	 * one-, two- and three-byte lengths, written by the writer and by
	 * protobuf-c from the decoded structure: the bytes must agree. */
	enum { N = 40 };
	struct im_buf blobs[N] = {{0}}, out = {0}, canon = {0};
	struct im_str views[N];
	struct pb_w w;

	for (int i = 0; i < N; i++) {
		make_msg(&blobs[i], i + 1, (size_t)i * 700);
		views[i] = buf_str(&blobs[i]);
	}
	pb_w_init(&w, &out);
	assert_int_equal(
	    pb_pull_msgs_map_entry(&w, false, IM_STR_LIT("si_u1_u2"), views, N, true, N), 0);
	assert_int_equal(pb_pull_msgs_map_entry(&w, true, IM_STR_LIT("n_u1"), views, 1, false, 0),
			 0);
	assert_int_equal(pb_pull_msgs_map_entry(&w, false, IM_STR_LIT("sg_g"), NULL, 0, true, 7),
			 0);

	ProtobufCMessage *pm;
	assert_int_equal(pb_unpack(&openim__msg__get_seq_message_resp__descriptor,
				   (const uint8_t *)out.p, out.len, &pm),
			 0);
	Openim__Msg__GetSeqMessageResp *r = (Openim__Msg__GetSeqMessageResp *)pm;
	assert_int_equal(r->n_msgs, 2);
	assert_string_equal(r->msgs[0]->key, "si_u1_u2");
	assert_int_equal(r->msgs[0]->value->n_msgs, N);
	assert_true(r->msgs[0]->value->isend);
	assert_int_equal(r->msgs[0]->value->endseq, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(r->msgs[0]->value->msgs[i]->seq, i + 1);
		assert_int_equal(r->msgs[0]->value->msgs[i]->content.len, (size_t)i * 700);
	}
	assert_string_equal(r->msgs[1]->key, "sg_g");
	assert_int_equal(r->msgs[1]->value->n_msgs, 0);
	assert_int_equal(r->msgs[1]->value->endseq, 7);
	assert_int_equal(r->n_notificationmsgs, 1);
	assert_int_equal(r->notificationmsgs[0]->value->n_msgs, 1);

	/* Same layout as PullMessageBySeqsResp. */
	ProtobufCMessage *pm2;
	assert_int_equal(pb_unpack(&openim__sdkws__pull_message_by_seqs_resp__descriptor,
				   (const uint8_t *)out.p, out.len, &pm2),
			 0);
	assert_int_equal(((Openim__Sdkws__PullMessageBySeqsResp *)pm2)->n_msgs, 2);
	pb_free(pm2);

	/* protobuf-c writes field 1 entries before field 2: order ours the same way. */
	struct im_buf ordered = {0};
	pb_w_init(&w, &ordered);
	pb_pull_msgs_map_entry(&w, false, IM_STR_LIT("si_u1_u2"), views, N, true, N);
	pb_pull_msgs_map_entry(&w, false, IM_STR_LIT("sg_g"), NULL, 0, true, 7);
	pb_pull_msgs_map_entry(&w, true, IM_STR_LIT("n_u1"), views, 1, false, 0);
	assert_int_equal(pb_w_done(&w), 0);
	assert_int_equal(pb_pack(pm, &canon), 0);
	assert_int_equal(canon.len, ordered.len);
	assert_memory_equal(canon.p, ordered.p, canon.len);

	pb_free(pm);
	for (int i = 0; i < N; i++)
		im_buf_free(&blobs[i]);
	im_buf_free(&out);
	im_buf_free(&ordered);
	im_buf_free(&canon);
}

static void writer_encodes_scalars_like_protobuf(void **state)
{
	struct im_buf b = {0};
	struct pb_w w;

	pb_w_init(&w, &b);
	pb_w_int64(&w, 1, 0);		   /* default: nothing */
	pb_w_str(&w, 2, IM_STR_LIT(""));   /* default: nothing */
	pb_w_bool(&w, 3, false);	   /* default: nothing */
	pb_w_int64(&w, 1, 300);		   /* 08 ac 02 */
	pb_w_int64(&w, 2, -1);		   /* 10 ff*9 01 */
	pb_w_bool(&w, 3, true);		   /* 18 01 */
	pb_w_str(&w, 4, IM_STR_LIT("ab")); /* 22 02 61 62 */
	pb_w_bytes(&w, 5, "", 0);	   /* 2a 00 */
	pb_w_uint64(&w, 16, UINT64_MAX);   /* 80 01 ff*9 01 */
	size_t mk = pb_w_begin(&w, 6);	   /* 32 02 */
	pb_w_int64(&w, 1, 1);		   /* 08 01 */
	pb_w_end(&w, mk);
	mk = pb_w_begin(&w, 7); /* empty: 3a 00 */
	pb_w_end(&w, mk);
	assert_int_equal(pb_w_done(&w), 0);

	struct im_buf want = {0};
	from_hex("08ac02"
		 "10ffffffffffffffffff01"
		 "1801"
		 "22026162"
		 "2a00"
		 "8001ffffffffffffffffff01"
		 "32020801"
		 "3a00",
		 &want);
	assert_int_equal(b.len, want.len);
	assert_memory_equal(b.p, want.p, b.len);
	im_buf_free(&b);
	im_buf_free(&want);
}

static void writer_nests_with_minimal_lengths(void **state)
{
	/* Inner bodies around the one/two/three-byte length boundaries. */
	static const size_t sizes[] = {127, 128, 16383, 16384};
	for (size_t i = 0; i < IM_ARRAY_LEN(sizes); i++) {
		struct im_buf b = {0};
		struct pb_w w;
		char *fill = calloc(1, sizes[i]);
		assert_non_null(fill);

		pb_w_init(&w, &b);
		size_t outer = pb_w_begin(&w, 1);
		size_t inner = pb_w_begin(&w, 2);
		pb_w_raw(&w, fill, sizes[i]);
		pb_w_end(&w, inner);
		pb_w_end(&w, outer);
		assert_int_equal(pb_w_done(&w), 0);

		/* Compare with the lengths computed directly. */
		size_t in_len = sizes[i];
		size_t in_lb = in_len < 128 ? 1 : in_len < 16384 ? 2 : 3;
		size_t out_len = 1 + in_lb + in_len;
		size_t out_lb = out_len < 128 ? 1 : out_len < 16384 ? 2 : 3;
		assert_int_equal(b.len, 1 + out_lb + out_len);
		assert_int_equal((unsigned char)b.p[0], 0x0a);
		assert_int_equal((unsigned char)b.p[1 + out_lb], 0x12);
		free(fill);
		im_buf_free(&b);
	}
}

static void base64_round_trips_and_rejects_junk(void **state)
{
	struct im_buf b = {0}, t = {0};

	for (size_t n = 0; n < 8; n++) {
		b.len = 0;
		t.len = 0;
		assert_int_equal(pb_base64_std_encode("\x00\xff\x10zzzz", n, &t), 0);
		assert_int_equal(t.len, (n + 2) / 3 * 4);
		assert_int_equal(t.p == NULL ? 0 : strlen(t.p), t.len);
		assert_int_equal(pb_base64_std_decode(t.p, t.len, &b), 0);
		assert_int_equal(b.len, n);
		assert_memory_equal(b.p, "\x00\xff\x10zzzz", n);
	}
	assert_int_equal(pb_base64_std_decode("CgE*", 4, &b), IM_EINVAL);
	assert_int_equal(pb_base64_std_decode("Cg-_", 4, &b), IM_EINVAL); /* URL alphabet */
	/* Whole padded groups only, as Go's StdEncoding; line breaks are skipped. */
	static const char *const bad[] = {"CgE", "Cg=", "CgE==", "=", "C===", "CgE=CgE=", "Cg E="};
	for (size_t i = 0; i < IM_ARRAY_LEN(bad); i++)
		assert_int_equal(pb_base64_std_decode(bad[i], strlen(bad[i]), &b), IM_EINVAL);
	b.len = 0;
	assert_int_equal(pb_base64_std_decode("Cg\r\nE=", 6, &b), 0);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.p, "\x0a\x01", 2);
	im_buf_free(&b);
	im_buf_free(&t);
}

static void unpack_reports_out_of_memory(void **state)
{
	struct im_buf b = {0};
	Openim__Sdkws__MsgData *m;
	int rc, n, failed = 0;

	/* Fail the 1st, 2nd, ... allocation until the unpack needs no more. */
	from_hex(example_hex, &b);
	for (n = 1;; n++) {
		im_alloc_fail_after(n);
		rc = pb_msgdata_unpack((const uint8_t *)b.p, b.len, &m);
		im_alloc_fail_after(0);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_null(m);
		failed++;
	}
	assert_true(failed >= 2); /* the message and its OfflinePushInfo at least */
	expect_example_fields(m);

	/* pb_opt_set leaves the message unchanged when it cannot allocate. */
	for (n = 1; n <= 3; n++) {
		im_alloc_fail_after(n);
		assert_int_equal(pb_opt_set(m, PB_OPT_HISTORY, false), -ENOMEM);
		im_alloc_fail_after(0);
		assert_int_equal(m->n_options, 0);
		assert_true(pb_opt(m, PB_OPT_HISTORY));
	}

	/* The writer's error is sticky and pb_push_messages restores out. */
	struct im_buf out = {0};
	struct im_str blob = buf_str(&b);
	assert_int_equal(im_buf_add(&out, "keep", 4), 0);
	size_t cap = out.cap;
	struct im_str many[64];
	for (size_t i = 0; i < IM_ARRAY_LEN(many); i++)
		many[i] = blob;
	im_alloc_fail_after(1);
	assert_int_equal(pb_push_messages(&out, false, IM_STR_LIT("si_u1_u2"), many, 64), -ENOMEM);
	im_alloc_fail_after(0);
	assert_int_equal(out.len, 4);
	assert_int_equal(out.cap, cap);

	/* pb_pack leaves out as it was. */
	struct im_buf p = {0};
	im_alloc_fail_after(1);
	assert_int_equal(pb_pack(&m->base, &p), -ENOMEM);
	im_alloc_fail_after(0);
	assert_int_equal(p.len, 0);

	pb_msgdata_free(m);
	im_buf_free(&b);
	im_buf_free(&out);
}

/* im_b64_encode (the table coder) writes exactly what mbedTLS writes, for every length 0..300. */
static void base64_matches_mbedtls(void **state)
{
	(void)state;
	unsigned char in[300];
	uint32_t x = 2463534242u; /* xorshift: fixed, so a failure repeats */
	for (size_t i = 0; i < sizeof(in); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		in[i] = (unsigned char)x;
	}
	for (size_t n = 0; n <= sizeof(in); n++) {
		unsigned char want[512];
		size_t wn = 0;
		assert_int_equal(mbedtls_base64_encode(want, sizeof(want), &wn, in, n), 0);
		struct im_buf got = {0};
		assert_int_equal(im_buf_add(&got, "x", 1), 0); /* appends after what is there */
		assert_int_equal(im_b64_encode(&got, in, n), 0);
		assert_int_equal(got.len, wn + 1);
		assert_memory_equal(got.p + 1, want, wn);
		assert_int_equal(got.p[got.len], '\0');
		im_buf_free(&got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(base64_matches_mbedtls),
	    cmocka_unit_test(decodes_the_msgdata_example),
	    cmocka_unit_test(decodes_the_send_reply_example),
	    cmocka_unit_test(rejects_bytes_that_are_not_the_message),
	    cmocka_unit_test(missing_option_means_true),
	    cmocka_unit_test(sets_options_on_a_new_message),
	    cmocka_unit_test(push_framing_decodes_to_the_stored_message),
	    cmocka_unit_test(appended_seq_wins_over_the_stored_one),
	    cmocka_unit_test(pull_entries_match_protobuf_c_encoding),
	    cmocka_unit_test(writer_encodes_scalars_like_protobuf),
	    cmocka_unit_test(writer_nests_with_minimal_lengths),
	    cmocka_unit_test(base64_round_trips_and_rejects_junk),
	    cmocka_unit_test(unpack_reports_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
