/* test_cluster_node.c - the node channel's pure parts: the forward answer codec and its HMAC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "cluster_node.h"

static void result_round_trips(void **state)
{
	IM_UNUSED(state);
	struct eng_result r = {.code = IM_EEXIST, .skipped = true, .n_msgs = 2};
	snprintf(r.detail, sizeof(r.detail), "userID u1 registered already");
	r.msgs[0] = (struct eng_msg_result){.seq = 7, .dup = false, .send_time = 1700000000123};
	snprintf(r.msgs[0].server_msg_id, sizeof(r.msgs[0].server_msg_id), "%032x", 0xabcdu);
	r.msgs[1] = (struct eng_msg_result){.seq = 0, .dup = true, .send_time = -5};
	struct im_buf b = {0};
	assert_int_equal(node_result_encode(&b, IM_ENOTLEADER, 123456789012ull, &r), 0);
	int status = 0;
	uint64_t index = 0;
	struct eng_result out;
	assert_int_equal(node_result_decode(b.p, b.len, &status, &index, &out), 0);
	assert_int_equal(status, IM_ENOTLEADER);
	assert_int_equal(index, 123456789012ull);
	assert_int_equal(out.code, IM_EEXIST);
	assert_true(out.skipped);
	assert_string_equal(out.detail, r.detail);
	assert_int_equal(out.n_msgs, 2);
	assert_int_equal(out.msgs[0].seq, 7);
	assert_false(out.msgs[0].dup);
	assert_string_equal(out.msgs[0].server_msg_id, r.msgs[0].server_msg_id);
	assert_int_equal(out.msgs[0].send_time, 1700000000123);
	assert_true(out.msgs[1].dup);
	assert_int_equal(out.msgs[1].send_time, -5);
	/* Every truncation, and one byte too many, is refused. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(node_result_decode(b.p, n, &status, &index, &out), IM_ECORRUPT);
	assert_int_equal(im_buf_add(&b, "", 1), 0);
	assert_int_equal(node_result_decode(b.p, b.len, &status, &index, &out), IM_ECORRUPT);
	im_buf_free(&b);
}

static void no_result_encodes_as_empty(void **state)
{
	IM_UNUSED(state);
	struct im_buf b = {0};
	assert_int_equal(node_result_encode(&b, IM_ESHUTDOWN, 0, NULL), 0);
	int status = 0;
	uint64_t index = 9;
	struct eng_result out;
	assert_int_equal(node_result_decode(b.p, b.len, &status, &index, &out), 0);
	assert_int_equal(status, IM_ESHUTDOWN);
	assert_int_equal(index, 0);
	assert_int_equal(out.n_msgs, 0);
	/* A count over ENG_ITEMS_MAX is corrupt, whatever follows. */
	unsigned char *p = (unsigned char *)b.p + b.len - 4;
	im_put_be32(p, ENG_ITEMS_MAX + 1);
	assert_int_equal(node_result_decode(b.p, b.len, &status, &index, &out), IM_ECORRUPT);
	im_buf_free(&b);
}

static void auth_depends_on_secret_label_and_data(void **state)
{
	IM_UNUSED(state);
	char a[65], b[65], c[65], d[65];
	node_auth(IM_STR_LIT("s1"), "forward", "abc", 3, a);
	node_auth(IM_STR_LIT("s2"), "forward", "abc", 3, b);
	node_auth(IM_STR_LIT("s1"), "kick", "abc", 3, c);
	node_auth(IM_STR_LIT("s1"), "forward", "abd", 3, d);
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	/* The value Python's hmac gives for HMAC-SHA256(b"s1", b"forward\nabc"). */
	assert_string_equal(a, "a816c86a23d561e1f0d3b415fcfebd4c0bc3e0dae1e141bb1c82496728620725");
	char again[65];
	node_auth(IM_STR_LIT("s1"), "forward", "abc", 3, again);
	assert_string_equal(a, again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(result_round_trips),
	    cmocka_unit_test(no_result_encodes_as_empty),
	    cmocka_unit_test(auth_depends_on_secret_label_and_data),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
