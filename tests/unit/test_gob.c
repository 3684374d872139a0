/* test_gob.c - the envelope codecs: Go gob (the byte dumps of openim-protocol.md §4.9), the JSON
 * envelopes of §4.8, base64 and gzip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "envelope.h"
#include "gob.h"

/* ---- the §4.9 dumps ---- */

static const uint8_t resp_type[] = {
    0x60, 0xff, 0x81, 0x03, 0x01, 0x01, 0x04, 0x52, 0x65, 0x73, 0x70, 0x01, 0xff, 0x82,
    0x00, 0x01, 0x06, 0x01, 0x0d, 0x52, 0x65, 0x71, 0x49, 0x64, 0x65, 0x6e, 0x74, 0x69,
    0x66, 0x69, 0x65, 0x72, 0x01, 0x04, 0x00, 0x01, 0x07, 0x4d, 0x73, 0x67, 0x49, 0x6e,
    0x63, 0x72, 0x01, 0x0c, 0x00, 0x01, 0x0b, 0x4f, 0x70, 0x65, 0x72, 0x61, 0x74, 0x69,
    0x6f, 0x6e, 0x49, 0x44, 0x01, 0x0c, 0x00, 0x01, 0x07, 0x45, 0x72, 0x72, 0x43, 0x6f,
    0x64, 0x65, 0x01, 0x04, 0x00, 0x01, 0x06, 0x45, 0x72, 0x72, 0x4d, 0x73, 0x67, 0x01,
    0x0c, 0x00, 0x01, 0x04, 0x44, 0x61, 0x74, 0x61, 0x01, 0x0a, 0x00, 0x00, 0x00};

static const uint8_t push_value[] = {0x10, 0xff, 0x82, 0x01, 0xfe, 0x0f, 0xa2, 0x02, 0x03,
				     0x6f, 0x70, 0x31, 0x03, 0x02, 0x0a, 0x01, 0x00};

static const uint8_t error_value[] = {0x22, 0xff, 0x82, 0x01, 0xfe, 0x07, 0xd6, 0x01, 0x02,
				      0x6d, 0x31, 0x01, 0x02, 0x6f, 0x70, 0x01, 0xfe, 0x0a,
				      0x2c, 0x01, 0x0d, 0x42, 0x6c, 0x6f, 0x63, 0x6b, 0x65,
				      0x64, 0x42, 0x79, 0x50, 0x65, 0x65, 0x72, 0x00};

static const uint8_t kick_value[] = {0x07, 0xff, 0x82, 0x01, 0xfe, 0x0f, 0xa4, 0x00};

static const uint8_t req_frame[] = {
    0x66, 0xff, 0x83, 0x03, 0x01, 0x01, 0x0c, 0x47, 0x65, 0x6e, 0x65, 0x72, 0x61, 0x6c, 0x57, 0x73,
    0x52, 0x65, 0x71, 0x01, 0xff, 0x84, 0x00, 0x01, 0x06, 0x01, 0x0d, 0x52, 0x65, 0x71, 0x49, 0x64,
    0x65, 0x6e, 0x74, 0x69, 0x66, 0x69, 0x65, 0x72, 0x01, 0x04, 0x00, 0x01, 0x05, 0x54, 0x6f, 0x6b,
    0x65, 0x6e, 0x01, 0x0c, 0x00, 0x01, 0x06, 0x53, 0x65, 0x6e, 0x64, 0x49, 0x44, 0x01, 0x0c, 0x00,
    0x01, 0x0b, 0x4f, 0x70, 0x65, 0x72, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x49, 0x44, 0x01, 0x0c, 0x00,
    0x01, 0x07, 0x4d, 0x73, 0x67, 0x49, 0x6e, 0x63, 0x72, 0x01, 0x0c, 0x00, 0x01, 0x04, 0x44, 0x61,
    0x74, 0x61, 0x01, 0x0a, 0x00, 0x00, 0x00,
    /* the value */
    0x18, 0xff, 0x84, 0x01, 0xfe, 0x07, 0xd6, 0x02, 0x02, 0x75, 0x31, 0x01, 0x02, 0x6f, 0x70, 0x01,
    0x02, 0x6d, 0x31, 0x01, 0x03, 0x01, 0x02, 0x03, 0x00};

#define S(lit) IM_STR_LIT(lit)

static void expect_str(struct im_str got, const char *want)
{
	if (got.n != strlen(want) || memcmp(got.p, want, got.n) != 0)
		fail_msg("got \"%.*s\", want \"%s\"", (int)got.n, got.p, want);
}

/* Encodes r with gob and compares with the type dump followed by `value`. */
static void expect_gob(const struct env_resp *r, const uint8_t *value, size_t n)
{
	struct im_buf b = {0};
	assert_int_equal(gob_encode_resp(r, &b), 0);
	assert_int_equal(b.len, sizeof(resp_type) + n);
	assert_memory_equal(b.p, resp_type, sizeof(resp_type));
	assert_memory_equal(b.p + sizeof(resp_type), value, n);
	im_buf_free(&b);
}

static void resp_type_definition_is_the_97_byte_dump(void **state)
{
	struct im_buf b = {0};
	assert_int_equal(gob_put_resp_type(&b), 0);
	assert_int_equal(b.len, 97);
	assert_memory_equal(b.p, resp_type, 97);
	im_buf_free(&b);
}

static void encodes_push_error_and_kick_frames_exactly(void **state)
{
	struct env_resp push = {
	    .req_id = 2001, .op_id = S("op1"), .data = "\x0a\x01", .len = 2, .has_data = true};
	expect_gob(&push, push_value, sizeof(push_value));
	struct env_resp err = {.req_id = 1003,
			       .msg_incr = S("m1"),
			       .op_id = S("op"),
			       .err_code = 1302,
			       .err_msg = S("BlockedByPeer")};
	expect_gob(&err, error_value, sizeof(error_value));
	struct env_resp kick = {.req_id = 2002};
	expect_gob(&kick, kick_value, sizeof(kick_value));
	/* Empty data is a zero value: omitted, as for a nil slice. */
	kick.has_data = true;
	expect_gob(&kick, kick_value, sizeof(kick_value));
}

static void decodes_the_general_ws_req_dump(void **state)
{
	struct env_req r;
	char err[128];
	assert_int_equal(gob_decode_req(req_frame, sizeof(req_frame), &r, err, sizeof(err)), 0);
	assert_int_equal(r.req_id, 1003);
	expect_str(r.send_id, "u1");
	expect_str(r.op_id, "op");
	expect_str(r.msg_incr, "m1");
	expect_str(r.token, "");
	assert_int_equal(r.data.n, 3);
	assert_memory_equal(r.data.p, "\x01\x02\x03", 3);
	assert_null(r.own);
	env_req_free(&r);
}

/*
 * What Go 1.26's encoder (and so the native SDK built with it) sends for
 * GeneralWsReq{1001, SendID "u1", OperationID "op", MsgIncr "m1", Data 01 02 03}:
 * the first user type id is 64 there, not 65 as in the Go 1.19 dump of §4.9.
 */
static const uint8_t req_frame_go126[] = {
    0x65, 0x7f, 0x03, 0x01, 0x01, 0x0c, 0x47, 0x65, 0x6e, 0x65, 0x72, 0x61, 0x6c, 0x57, 0x73, 0x52,
    0x65, 0x71, 0x01, 0xff, 0x80, 0x00, 0x01, 0x06, 0x01, 0x0d, 0x52, 0x65, 0x71, 0x49, 0x64, 0x65,
    0x6e, 0x74, 0x69, 0x66, 0x69, 0x65, 0x72, 0x01, 0x04, 0x00, 0x01, 0x05, 0x54, 0x6f, 0x6b, 0x65,
    0x6e, 0x01, 0x0c, 0x00, 0x01, 0x06, 0x53, 0x65, 0x6e, 0x64, 0x49, 0x44, 0x01, 0x0c, 0x00, 0x01,
    0x0b, 0x4f, 0x70, 0x65, 0x72, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x49, 0x44, 0x01, 0x0c, 0x00, 0x01,
    0x07, 0x4d, 0x73, 0x67, 0x49, 0x6e, 0x63, 0x72, 0x01, 0x0c, 0x00, 0x01, 0x04, 0x44, 0x61, 0x74,
    0x61, 0x01, 0x0a, 0x00, 0x00, 0x00, 0x18, 0xff, 0x80, 0x01, 0xfe, 0x07, 0xd2, 0x02, 0x02, 0x75,
    0x31, 0x01, 0x02, 0x6f, 0x70, 0x01, 0x02, 0x6d, 0x31, 0x01, 0x03, 0x01, 0x02, 0x03, 0x00};

static void decodes_type_id_64_from_newer_go(void **state)
{
	struct env_req r;
	char err[128] = "";
	int rc = gob_decode_req(req_frame_go126, sizeof(req_frame_go126), &r, err, sizeof(err));
	if (rc != 0)
		fail_msg("decode: %s", err);
	assert_int_equal(r.req_id, 1001);
	expect_str(r.send_id, "u1");
	expect_str(r.op_id, "op");
	expect_str(r.msg_incr, "m1");
	assert_int_equal(r.data.n, 3);
	/* Ids below 64 are Go's own (wireType and friends): a peer may not define them. */
	uint8_t bad[sizeof(req_frame_go126)];
	memcpy(bad, req_frame_go126, sizeof(bad));
	bad[1] = 0x7d; /* -63 */
	assert_int_equal(gob_decode_req(bad, sizeof(bad), &r, NULL, 0), IM_EINVAL);
}

/* Our own Resp frames decode by name too (ErrCode and ErrMsg are skipped as unknown). */
static void decodes_resp_frames_by_field_name(void **state)
{
	struct env_resp in = {.req_id = -7,
			      .msg_incr = S("incr"),
			      .op_id = S("op"),
			      .err_code = 1501,
			      .err_msg = S("TokenExpiredError"),
			      .data = "abc",
			      .len = 3,
			      .has_data = true};
	struct im_buf b = {0};
	assert_int_equal(gob_encode_resp(&in, &b), 0);
	struct env_req r;
	assert_int_equal(gob_decode_req((uint8_t *)b.p, b.len, &r, NULL, 0), 0);
	assert_int_equal(r.req_id, -7);
	expect_str(r.msg_incr, "incr");
	expect_str(r.op_id, "op");
	expect_str(r.data, "abc");
	im_buf_free(&b);
}

static void rejects_every_truncation_and_survives_bit_flips(void **state)
{
	struct env_req r;
	assert_int_equal(gob_decode_req(NULL, 0, &r, NULL, 0),
			 IM_EINVAL); /* wslay's empty message */
	for (size_t n = 0; n < sizeof(req_frame); n++)
		assert_int_equal(gob_decode_req(req_frame, n, &r, NULL, 0), IM_EINVAL);
	uint8_t m[sizeof(req_frame)];
	for (size_t i = 0; i < sizeof(req_frame); i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(m, req_frame, sizeof(m));
			m[i] ^= (uint8_t)(1u << bit);
			int rc = gob_decode_req(m, sizeof(m), &r, NULL, 0);
			assert_true(rc == 0 || rc == IM_EINVAL);
		}
	}
}

static void primitive_encodings_follow_go(void **state)
{
	struct {
		uint64_t v;
		const char *want;
		size_t n;
	} u[] = {{0, "\x00", 1},
		 {127, "\x7f", 1},
		 {128, "\xff\x80", 2},
		 {256, "\xfe\x01\x00", 3},
		 {UINT64_MAX, "\xf8\xff\xff\xff\xff\xff\xff\xff\xff", 9}};
	for (size_t i = 0; i < IM_ARRAY_LEN(u); i++) {
		struct im_buf b = {0};
		assert_int_equal(gob_put_uint(&b, u[i].v), 0);
		assert_int_equal(b.len, u[i].n);
		assert_memory_equal(b.p, u[i].want, u[i].n);
		im_buf_free(&b);
	}
	/* Signed: 2001 -> 4002 (fe 0f a2), -1 -> 1, -129 -> 257 (fe 01 01). */
	struct im_buf b = {0};
	assert_int_equal(gob_put_int(&b, 2001), 0);
	assert_int_equal(gob_put_int(&b, -1), 0);
	assert_int_equal(gob_put_int(&b, -129), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.p, "\xfe\x0f\xa2\x01\xfe\x01\x01", 7);
	im_buf_free(&b);
}

/* ---- hand-built frames with other types ---- */

static void put_msg(struct im_buf *out, int64_t id, const struct im_buf *payload)
{
	struct im_buf m = {0};
	assert_int_equal(gob_put_int(&m, id), 0);
	assert_int_equal(im_buf_add(&m, payload->p, payload->len), 0);
	assert_int_equal(gob_put_uint(out, m.len), 0);
	assert_int_equal(im_buf_add(out, m.p, m.len), 0);
	im_buf_free(&m);
}

static void put_common(struct im_buf *p, const char *name, int64_t id)
{
	gob_put_uint(p, 1);
	gob_put_uint(p, 1);
	gob_put_bytes(p, name, strlen(name));
	gob_put_uint(p, 1);
	gob_put_int(p, id);
	gob_put_uint(p, 0);
}

/* A struct definition: names[i] has type ids[i]. */
static void def_struct(struct im_buf *out, int64_t id, const char *name, const char *const *names,
		       const int64_t *ids, size_t n)
{
	struct im_buf p = {0};
	gob_put_uint(&p, 3); /* StructT */
	put_common(&p, name, id);
	gob_put_uint(&p, 1);
	gob_put_uint(&p, n);
	for (size_t i = 0; i < n; i++) {
		gob_put_uint(&p, 1);
		gob_put_bytes(&p, names[i], strlen(names[i]));
		gob_put_uint(&p, 1);
		gob_put_int(&p, ids[i]);
		gob_put_uint(&p, 0);
	}
	gob_put_uint(&p, 0);
	gob_put_uint(&p, 0);
	put_msg(out, -id, &p);
	im_buf_free(&p);
}

static void def_slice(struct im_buf *out, int64_t id, int64_t elem)
{
	struct im_buf p = {0};
	gob_put_uint(&p, 2); /* SliceT */
	put_common(&p, "[]x", id);
	gob_put_uint(&p, 1);
	gob_put_int(&p, elem);
	gob_put_uint(&p, 0);
	gob_put_uint(&p, 0);
	put_msg(out, -id, &p);
	im_buf_free(&p);
}

static void def_map(struct im_buf *out, int64_t id, int64_t key, int64_t elem)
{
	struct im_buf p = {0};
	gob_put_uint(&p, 4); /* MapT */
	put_common(&p, "map", id);
	gob_put_uint(&p, 1);
	gob_put_int(&p, key);
	gob_put_uint(&p, 1);
	gob_put_int(&p, elem);
	gob_put_uint(&p, 0);
	gob_put_uint(&p, 0);
	put_msg(out, -id, &p);
	im_buf_free(&p);
}

static void skips_unknown_fields_of_every_kind(void **state)
{
	struct im_buf f = {0}, v = {0};
	def_slice(&f, 65, GOB_STRING);
	static const char *const xn[] = {"A", "B"};
	static const int64_t xi[] = {GOB_INT, 65};
	def_struct(&f, 66, "Extra", xn, xi, 2);
	def_map(&f, 67, GOB_STRING, 66);
	static const char *const rn[] = {"Token", "X", "SendID", "M",	    "ReqIdentifier", "Y",
					 "Data",  "F", "I",	 "MsgIncr", "OperationID"};
	static const int64_t ri[] = {GOB_STRING,    66,		GOB_STRING, 67,
				     GOB_INT,	    65,		GOB_BYTES,  GOB_FLOAT,
				     GOB_INTERFACE, GOB_STRING, GOB_STRING};
	def_struct(&f, 68, "Req", rn, ri, IM_ARRAY_LEN(rn));
	/* The value: every field present, unknown ones interleaved. */
	gob_put_uint(&v, 1), gob_put_bytes(&v, "tok", 3); /* Token */
	gob_put_uint(&v, 1);				  /* X: Extra{A: 5, B: ["p", "q"]} */
	gob_put_uint(&v, 1), gob_put_int(&v, 5);
	gob_put_uint(&v, 1), gob_put_uint(&v, 2), gob_put_bytes(&v, "p", 1),
	    gob_put_bytes(&v, "q", 1);
	gob_put_uint(&v, 0);
	gob_put_uint(&v, 1), gob_put_bytes(&v, "u9", 2); /* SendID */
	gob_put_uint(&v, 1), gob_put_uint(&v, 1);	 /* M: {"k": Extra{}} */
	gob_put_bytes(&v, "k", 1), gob_put_uint(&v, 0);
	gob_put_uint(&v, 1), gob_put_int(&v, 2005);			     /* ReqIdentifier */
	gob_put_uint(&v, 1), gob_put_uint(&v, 1), gob_put_bytes(&v, "s", 1); /* Y */
	gob_put_uint(&v, 1), gob_put_bytes(&v, "\x00\xff", 2);		     /* Data */
	gob_put_uint(&v, 1), gob_put_uint(&v, 0xfe);			     /* F */
	gob_put_uint(&v, 1), gob_put_bytes(&v, "T", 1);			     /* I: a "T" value */
	gob_put_int(&v, 66), gob_put_bytes(&v, "\x00", 1);
	gob_put_uint(&v, 1), gob_put_bytes(&v, "mi", 2); /* MsgIncr */
	gob_put_uint(&v, 1), gob_put_bytes(&v, "o", 1);	 /* OperationID */
	gob_put_uint(&v, 0);
	put_msg(&f, 68, &v);
	struct env_req r;
	char err[128] = "";
	int rc = gob_decode_req((uint8_t *)f.p, f.len, &r, err, sizeof(err));
	if (rc != 0)
		fail_msg("decode: %s", err);
	assert_int_equal(r.req_id, 2005);
	expect_str(r.token, "tok");
	expect_str(r.send_id, "u9");
	expect_str(r.msg_incr, "mi");
	expect_str(r.op_id, "o");
	assert_int_equal(r.data.n, 2);
	im_buf_free(&f);
	im_buf_free(&v);
}

static void rejects_wrong_types_duplicates_and_strangers(void **state)
{
	struct env_req r;
	struct im_buf f = {0}, v = {0};
	/* ReqIdentifier sent as a string: Go's "wrong type", even when the value omits it. */
	static const char *const n1[] = {"ReqIdentifier", "SendID"};
	static const int64_t i1[] = {GOB_STRING, GOB_STRING};
	def_struct(&f, 65, "Req", n1, i1, 2);
	gob_put_uint(&v, 2), gob_put_bytes(&v, "u1", 2), gob_put_uint(&v, 0);
	put_msg(&f, 65, &v);
	assert_int_equal(gob_decode_req((uint8_t *)f.p, f.len, &r, NULL, 0), IM_EINVAL);
	f.len = 0;
	/* No field in common. */
	static const char *const n2[] = {"Other"};
	static const int64_t i2[] = {GOB_INT};
	def_struct(&f, 65, "Req", n2, i2, 1);
	v.len = 0;
	gob_put_uint(&v, 0);
	put_msg(&f, 65, &v);
	assert_int_equal(gob_decode_req((uint8_t *)f.p, f.len, &r, NULL, 0), IM_EINVAL);
	/* A type defined twice, a builtin redefined, a value of an undefined type. */
	f.len = 0;
	def_struct(&f, 65, "Req", n1 + 1, i1 + 1, 1);
	def_struct(&f, 65, "Req", n1 + 1, i1 + 1, 1);
	assert_int_equal(gob_decode_req((uint8_t *)f.p, f.len, &r, NULL, 0), IM_EINVAL);
	f.len = 0;
	def_struct(&f, 6, "Req", n1 + 1, i1 + 1, 1);
	assert_int_equal(gob_decode_req((uint8_t *)f.p, f.len, &r, NULL, 0), IM_EINVAL);
	f.len = 0;
	put_msg(&f, 70, &v);
	assert_int_equal(gob_decode_req((uint8_t *)f.p, f.len, &r, NULL, 0), IM_EINVAL);
	/* A field number past the struct's fields. */
	f.len = v.len = 0;
	def_struct(&f, 65, "Req", n1 + 1, i1 + 1, 1);
	gob_put_uint(&v, 2), gob_put_bytes(&v, "u1", 2), gob_put_uint(&v, 0);
	put_msg(&f, 65, &v);
	assert_int_equal(gob_decode_req((uint8_t *)f.p, f.len, &r, NULL, 0), IM_EINVAL);
	/* A self-referencing struct nested past the depth limit. */
	f.len = v.len = 0;
	static const char *const n3[] = {"SendID", "Self"};
	static const int64_t i3[] = {GOB_STRING, 65};
	def_struct(&f, 65, "Req", n3, i3, 2);
	for (int d = 0; d < GOB_MAX_DEPTH + 2; d++)
		gob_put_uint(&v, 2);
	for (int d = 0; d < GOB_MAX_DEPTH + 3; d++)
		gob_put_uint(&v, 0);
	put_msg(&f, 65, &v);
	assert_int_equal(gob_decode_req((uint8_t *)f.p, f.len, &r, NULL, 0), IM_EINVAL);
	im_buf_free(&f);
	im_buf_free(&v);
}

/* ---- JSON envelopes (§4.8) ---- */

static void expect_json(const struct env_resp *r, const char *want)
{
	struct im_buf b = {0};
	assert_int_equal(env_json_encode(r, &b), 0);
	assert_string_equal(b.p, want);
	im_buf_free(&b);
}

static void json_replies_match_the_go_server(void **state)
{
	struct env_resp push = {
	    .req_id = 2001, .op_id = S("op1"), .data = "\x0a\x01", .len = 2, .has_data = true};
	expect_json(&push, "{\"reqIdentifier\":2001,\"msgIncr\":\"\",\"operationID\":\"op1\","
			   "\"errCode\":0,\"errMsg\":\"\",\"data\":\"CgE=\"}");
	struct env_resp err = {.req_id = 1003,
			       .msg_incr = S("k3x9"),
			       .op_id = S("op-42"),
			       .err_code = 1302,
			       .err_msg = S("BlockedByPeer")};
	expect_json(&err, "{\"reqIdentifier\":1003,\"msgIncr\":\"k3x9\",\"operationID\":\"op-42\","
			  "\"errCode\":1302,\"errMsg\":\"BlockedByPeer\",\"data\":null}");
	struct env_resp kick = {.req_id = 2002};
	expect_json(&kick, "{\"reqIdentifier\":2002,\"msgIncr\":\"\",\"operationID\":\"\","
			   "\"errCode\":0,\"errMsg\":\"\",\"data\":null}");
	kick.has_data = true; /* an empty, non-nil []byte */
	expect_json(&kick, "{\"reqIdentifier\":2002,\"msgIncr\":\"\",\"operationID\":\"\","
			   "\"errCode\":0,\"errMsg\":\"\",\"data\":\"\"}");
	struct env_resp html = {.req_id = 1, .msg_incr = S("<&>")};
	expect_json(&html, "{\"reqIdentifier\":1,\"msgIncr\":\"\\u003c\\u0026\\u003e\","
			   "\"operationID\":\"\",\"errCode\":0,\"errMsg\":\"\",\"data\":null}");
}

static void decodes_the_js_send_example(void **state)
{
	static const char in[] =
	    "{\"reqIdentifier\":1003,\"msgIncr\":\"k3x9-1700000000000\",\"sendID\":\"u1\","
	    "\"operationID\":\"op-42\",\"data\":"
	    "\"CgJ1MRICdTIiBmMwZmZlZTAFOgFBSAFQZFhlYhB7ImNvbnRlbnQ"
	    "iOiJoaSJ9gAGA0JX/vDGIAQGiAQIoAQ==\"}";
	static const uint8_t want[] = {
	    0x0a, 0x02, 0x75, 0x31, 0x12, 0x02, 0x75, 0x32, 0x22, 0x06, 0x63, 0x30, 0x66,
	    0x66, 0x65, 0x65, 0x30, 0x05, 0x3a, 0x01, 0x41, 0x48, 0x01, 0x50, 0x64, 0x58,
	    0x65, 0x62, 0x10, 0x7b, 0x22, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x22,
	    0x3a, 0x22, 0x68, 0x69, 0x22, 0x7d, 0x80, 0x01, 0x80, 0xd0, 0x95, 0xff, 0xbc,
	    0x31, 0x88, 0x01, 0x01, 0xa2, 0x01, 0x02, 0x28, 0x01};
	struct env_req r;
	char err[128] = "";
	assert_int_equal(env_json_decode(in, sizeof(in) - 1, &r, err, sizeof(err)), 0);
	assert_int_equal(r.req_id, 1003);
	expect_str(r.msg_incr, "k3x9-1700000000000");
	expect_str(r.send_id, "u1");
	expect_str(r.op_id, "op-42");
	assert_int_equal(r.data.n, sizeof(want));
	assert_memory_equal(r.data.p, want, sizeof(want));
	env_req_free(&r);
}

static void json_decoding_follows_go_rules(void **state)
{
	struct env_req r;
	char err[128];
	/* Keys fold case; null and absent leave zero values; unknown keys are ignored. */
	const char *ok = "{\"REQIDENTIFIER\":5,\"sendid\":\"u\",\"data\":null,\"x\":[1]}";
	assert_int_equal(env_json_decode(ok, strlen(ok), &r, err, sizeof(err)), 0);
	assert_int_equal(r.req_id, 5);
	expect_str(r.send_id, "u");
	assert_int_equal(r.data.n, 0);
	env_req_free(&r);
	const char *bad[] = {
	    "{\"reqIdentifier\":\"5\"}",
	    "{\"data\":\"CgE\"}",
	    "{\"data\":\"C gE=\"}",
	    "{\"data\":7}",
	    "[1]",
	    "{\"sendID\":1}",
	    "{\"reqIdentifier\":1e99}",
	    "{\"data\":\"CgE=\"",
	    "",
	    "{\"reqIdentifier\":2.5}",
	    "{\"msgIncr\":{}}",
	    "{\"data\":\"=CgE\"}",
	};
	for (size_t i = 0; i < IM_ARRAY_LEN(bad); i++) {
		if (env_json_decode(bad[i], strlen(bad[i]), &r, err, sizeof(err)) != IM_EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_null(r.own);
	}
	/* Go's base64 skips line breaks. */
	const char *nl = "{\"data\":\"Cg\\r\\nE=\"}";
	assert_int_equal(env_json_decode(nl, strlen(nl), &r, err, sizeof(err)), 0);
	assert_int_equal(r.data.n, 2);
	env_req_free(&r);
}

static void base64_variants(void **state)
{
	struct im_buf b = {0};
	assert_int_equal(env_b64_decode("-_8", 3, true, &b), 0); /* fb ff */
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.p, "\xfb\xff", 2);
	b.len = 0;
	assert_int_equal(env_b64_decode("-_8=", 4, true, &b), IM_EINVAL);
	assert_int_equal(env_b64_decode("+/8=", 4, true, &b), IM_EINVAL);
	assert_int_equal(env_b64_decode("A", 1, true, &b), IM_EINVAL);
	assert_int_equal(env_b64_decode("+/8=", 4, false, &b), 0);
	assert_int_equal(b.len, 2);
	b.len = 0;
	assert_int_equal(env_b64_encode("\xfb\xff", 2, &b), 0);
	assert_string_equal(b.p, "+/8=");
	im_buf_free(&b);
}

/* ---- gzip ---- */

static void gzip_round_trips_and_guards_against_bombs(void **state)
{
	char *big = calloc(1, 3u << 20);
	assert_non_null(big);
	struct im_buf z = {0}, out = {0};
	assert_int_equal(env_gzip("hello", 5, &z), 0);
	assert_true(z.len > 10 && (uint8_t)z.p[0] == 0x1f && (uint8_t)z.p[1] == 0x8b);
	assert_int_equal(env_gunzip(z.p, z.len, 100, &out), 0);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.p, "hello", 5);
	/* Two members read as one stream, like Go's multistream reader. */
	size_t one = z.len;
	assert_int_equal(im_buf_add(&z, z.p, one), 0);
	out.len = 0;
	assert_int_equal(env_gunzip(z.p, z.len, 100, &out), 0);
	assert_int_equal(out.len, 10);
	/* Exactly at the cap passes; one byte over fails. */
	out.len = 0;
	assert_int_equal(env_gunzip(z.p, one, 5, &out), 0);
	assert_int_equal(env_gunzip(z.p, one, 4, &out), IM_ETOOBIG);
	assert_int_equal(out.len, 5);
	/* Truncated, garbage after a member, empty, not gzip. */
	out.len = 0;
	assert_int_equal(env_gunzip(z.p, one - 1, 100, &out), IM_EINVAL);
	assert_int_equal(env_gunzip(z.p, one + 3, 100, &out), IM_EINVAL);
	assert_int_equal(env_gunzip(z.p, 0, 100, &out), IM_EINVAL);
	assert_int_equal(env_gunzip("hello", 5, 100, &out), IM_EINVAL);
	assert_int_equal(out.len, 0);
	/* A 3 MiB bomb stops at the 1 MiB cap. */
	z.len = 0;
	assert_int_equal(env_gzip(big, 3u << 20, &z), 0);
	assert_true(z.len < 8192);
	assert_int_equal(env_gunzip(z.p, z.len, ENV_GUNZIP_MAX, &out), IM_ETOOBIG);
	im_buf_free(&z);
	im_buf_free(&out);
	free(big);
}

static void codecs_survive_out_of_memory(void **state)
{
	struct env_resp push = {
	    .req_id = 2001, .op_id = S("op1"), .data = "\x0a\x01", .len = 2, .has_data = true};
	static const char js[] = "{\"reqIdentifier\":1,\"sendID\":\"u1\",\"data\":\"CgE=\"}";
	for (long n = 1; n < 200; n++) {
		struct im_buf b = {0};
		struct env_req r;
		im_alloc_fail_after(n);
		int a = gob_encode_resp(&push, &b);
		b.len = 0;
		int c = env_json_encode(&push, &b);
		b.len = 0;
		int d = env_gzip("abc", 3, &b);
		int e = env_json_decode(js, sizeof(js) - 1, &r, NULL, 0);
		if (e == 0)
			env_req_free(&r);
		im_alloc_fail_after(0);
		assert_true(a == 0 || a == -ENOMEM);
		assert_true(c == 0 || c == -ENOMEM);
		assert_true(d == 0 || d == -ENOMEM);
		assert_true(e == 0 || e == -ENOMEM || e == IM_EINVAL);
		im_buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(resp_type_definition_is_the_97_byte_dump),
	    cmocka_unit_test(encodes_push_error_and_kick_frames_exactly),
	    cmocka_unit_test(decodes_the_general_ws_req_dump),
	    cmocka_unit_test(decodes_type_id_64_from_newer_go),
	    cmocka_unit_test(decodes_resp_frames_by_field_name),
	    cmocka_unit_test(rejects_every_truncation_and_survives_bit_flips),
	    cmocka_unit_test(primitive_encodings_follow_go),
	    cmocka_unit_test(skips_unknown_fields_of_every_kind),
	    cmocka_unit_test(rejects_wrong_types_duplicates_and_strangers),
	    cmocka_unit_test(json_replies_match_the_go_server),
	    cmocka_unit_test(decodes_the_js_send_example),
	    cmocka_unit_test(json_decoding_follows_go_rules),
	    cmocka_unit_test(base64_variants),
	    cmocka_unit_test(gzip_round_trips_and_guards_against_bombs),
	    cmocka_unit_test(codecs_survive_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
