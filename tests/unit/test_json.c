/* test_json.c - Go-compatible JSON: output escaping and numbers, key matching, typed getters,
 * parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "json.h"

/* Dumps v (stealing the reference) and compares with the exact Go output. */
static void expect_dump(json_t *v, const char *want)
{
	struct im_buf b = {0};
	assert_non_null(v);
	assert_int_equal(json_go_dump(v, &b), 0);
	assert_string_equal(b.p, want);
	im_buf_free(&b);
	json_decref(v);
}

static void expect_str_dump(const char *s, size_t n, const char *want)
{
	expect_dump(json_str((struct im_str){s, (uint32_t)n}), want);
}

static json_t *parse_ok(const char *s)
{
	struct json_err e;
	json_t *v = json_parse_body(s, strlen(s), &e);
	if (v == NULL)
		fail_msg("parse failed: %s", e.msg);
	return v;
}

static void expect_parse_error(const char *s, size_t n, const char *want_substr)
{
	struct json_err e;
	json_t *v = json_parse_body(s, n, &e);
	assert_null(v);
	if (strstr(e.msg, want_substr) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", e.msg, want_substr);
}

static void escapes_html_characters_like_go(void **state)
{
	expect_str_dump("<a&b>", 5, "\"\\u003ca\\u0026b\\u003e\"");
	expect_str_dump("</script>", 9, "\"\\u003c/script\\u003e\"");
}

static void escapes_line_and_paragraph_separators(void **state)
{
	expect_str_dump("a\xe2\x80\xa8"
			"b\xe2\x80\xa9",
			8, "\"a\\u2028b\\u2029\"");
	/* Neighbours of U+2028 stay raw. */
	expect_str_dump("\xe2\x80\xa7\xe2\x80\xaa", 6, "\"\xe2\x80\xa7\xe2\x80\xaa\"");
}

static void escapes_control_characters_like_go(void **state)
{
	expect_str_dump("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
	expect_str_dump("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
	expect_str_dump("q\"b\\", 4, "\"q\\\"b\\\\\"");
}

static void keeps_slash_and_unicode_raw(void **state)
{
	expect_str_dump("a/b \xc3\xa9 \xf0\x9f\x98\x80", 11, "\"a/b \xc3\xa9 \xf0\x9f\x98\x80\"");
}

static void keeps_nul_bytes(void **state)
{
	expect_str_dump("a\0b", 3, "\"a\\u0000b\"");
}

static void replaces_invalid_utf8_with_fffd(void **state)
{
	/* One U+FFFD per byte that starts no valid sequence, as Go's DecodeRune. */
	expect_str_dump("a\xff"
			"b",
			3,
			"\"a\xef\xbf\xbd"
			"b\"");
	expect_str_dump("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	expect_str_dump("\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	expect_str_dump("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	expect_str_dump("\xf4\x90\x80\x80", 4,
			"\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	expect_str_dump("", 0, "\"\"");
}

static void escapes_keys_too(void **state)
{
	json_t *o = json_object();
	json_object_set_new(o, "<k>\n", json_integer(1));
	expect_dump(o, "{\"\\u003ck\\u003e\\n\":1}");
}

static void keeps_insertion_order(void **state)
{
	json_t *o = json_object();
	json_object_set_new(o, "zeta", json_integer(1));
	json_object_set_new(o, "alpha", json_string("x"));
	json_object_set_new(o, "mid", json_true());
	json_object_set_new(o, "zeta", json_integer(3));
	expect_dump(o, "{\"zeta\":3,\"alpha\":\"x\",\"mid\":true}");
}

static void prints_null_and_empty_values(void **state)
{
	expect_dump(json_null(), "null");
	json_t *o = json_object();
	json_object_set_new(o, "insert", json_null());
	json_object_set_new(o, "update", json_array());
	json_object_set_new(o, "group", json_object());
	json_object_set_new(o, "full", json_false());
	expect_dump(o, "{\"insert\":null,\"update\":[],\"group\":{},\"full\":false}");
}

static void formats_numbers_like_go(void **state)
{
	expect_dump(json_integer(INT64_MIN), "-9223372036854775808");
	expect_dump(json_integer(INT64_MAX), "9223372036854775807");
	static const struct {
		double v;
		const char *go;
	} reals[] = {
	    {0.1, "0.1"},
	    {1.5, "1.5"},
	    {100.0, "100"},
	    {-0.0, "-0"},
	    {0.0, "0"},
	    {1e20, "100000000000000000000"},
	    {1e21, "1e+21"},
	    {1.5e300, "1.5e+300"},
	    {1e-6, "0.000001"},
	    {1e-7, "1e-7"},
	    {1.25e-10, "1.25e-10"},
	    {123456789.125, "123456789.125"},
	    {5e-324, "5e-324"},
	    {1.7976931348623157e308, "1.7976931348623157e+308"},
	    {-2.5, "-2.5"},
	    {1.0 / 3, "0.3333333333333333"},
	    {1700000000.5, "1700000000.5"},
	};
	for (size_t i = 0; i < IM_ARRAY_LEN(reals); i++)
		expect_dump(json_real(reals[i].v), reals[i].go);
}

static void appends_to_existing_buffer(void **state)
{
	struct im_buf b = {0};
	json_t *a = json_pack("[i,s,n]", 1, "x", NULL);
	assert_int_equal(im_buf_addstr(&b, "data="), 0);
	assert_int_equal(json_go_dump(a, &b), 0);
	assert_string_equal(b.p, "data=[1,\"x\",null]");
	im_buf_free(&b);
	json_decref(a);
}

static void dump_reports_out_of_memory(void **state)
{
	struct im_buf b = {0};
	json_t *a = json_pack("{s:s}", "k", "v");
	im_alloc_fail_after(1);
	assert_int_equal(json_go_dump(a, &b), -ENOMEM);
	im_alloc_fail_after(0);
	im_buf_free(&b);
	im_alloc_fail_after(1);
	assert_null(json_str((struct im_str){"a\xff", 2}));
	im_alloc_fail_after(0);
	json_decref(a);
}

static void matches_keys_case_insensitively(void **state)
{
	json_t *o = parse_ok("{\"USERid\":\"a\",\"other\":1}");
	assert_string_equal(json_string_value(json_field(o, "userID")), "a");
	assert_null(json_field(o, "user"));
	assert_null(json_field(o, "userIDs"));
	json_decref(o);

	/* The two non-ASCII runes in the fold orbits of ASCII letters; dotless and dotted I are
	 * not. */
	o = parse_ok("{\"\xc5\xbf"
		     "ecret\":\"s\",\"\xe2\x84\xaa"
		     "ey\":1,\"\xc4\xb1\xc4\xb0\":2}");
	assert_string_equal(json_string_value(json_field(o, "secret")), "s");
	assert_int_equal(json_integer_value(json_field(o, "key")), 1);
	assert_null(json_field(o, "ii"));
	json_decref(o);
}

static void last_matching_key_wins_like_go(void **state)
{
	json_t *o = parse_ok("{\"userID\":\"exact\",\"UserId\":\"later\"}");
	assert_string_equal(json_string_value(json_field(o, "userID")), "later");
	json_decref(o);
	o = parse_ok("{\"UserId\":\"earlier\",\"userID\":\"exact\"}");
	assert_string_equal(json_string_value(json_field(o, "userID")), "exact");
	json_decref(o);
	assert_null(json_field(NULL, "x"));
}

static void null_and_absent_give_zero_values(void **state)
{
	json_t *o = parse_ok("{\"s\":null,\"i\":null,\"b\":null,\"o\":null,\"a\":null}");
	struct json_err e;
	struct im_str s = {"junk", 4};
	int32_t i32 = 7;
	int64_t i64 = 7;
	bool b = true, present = true;
	json_t *sub = o;
	struct im_str *arr = (struct im_str *)&s;
	size_t n = 9;

	assert_int_equal(json_get_str(o, "s", &s, &present, &e), 0);
	assert_int_equal(s.n, 0);
	assert_false(present);
	assert_int_equal(json_get_i32(o, "i", &i32, &present, &e), 0);
	assert_int_equal(i32, 0);
	assert_false(present);
	assert_int_equal(json_get_i64(o, "missing", &i64, &present, &e), 0);
	assert_int_equal(i64, 0);
	assert_false(present);
	assert_int_equal(json_get_bool(o, "b", &b, NULL, &e), 0);
	assert_false(b);
	assert_int_equal(json_get_obj(o, "o", &sub, &e), 0);
	assert_null(sub);
	assert_int_equal(json_get_array(o, "a", &sub, &e), 0);
	assert_null(sub);
	assert_int_equal(json_get_str_array(o, "a", &arr, &n, &e), 0);
	assert_null(arr);
	assert_int_equal(n, 0);
	/* A non-object holder has no fields. */
	assert_int_equal(json_get_str(NULL, "s", &s, &present, &e), 0);
	assert_false(present);
	json_decref(o);
}

static void reads_present_values(void **state)
{
	json_t *o = parse_ok("{\"userID\":\"u\\u00001\",\"platformID\":5,\"seq\":9007199254740993,"
			     "\"ok\":true,\"info\":{\"x\":1},\"list\":[1,2]}");
	struct im_str s;
	int32_t i32;
	int64_t i64;
	bool b, present;
	json_t *sub;

	assert_int_equal(json_get_str(o, "userid", &s, &present, NULL), 0);
	assert_true(present);
	assert_int_equal(s.n, 3);
	assert_memory_equal(s.p,
			    "u\0"
			    "1",
			    3);
	assert_int_equal(json_get_i32(o, "platformID", &i32, &present, NULL), 0);
	assert_int_equal(i32, 5);
	assert_true(present);
	assert_int_equal(json_get_i64(o, "seq", &i64, NULL, NULL), 0);
	assert_true(i64 == 9007199254740993LL);
	assert_int_equal(json_get_bool(o, "OK", &b, &present, NULL), 0);
	assert_true(b && present);
	assert_int_equal(json_get_obj(o, "info", &sub, NULL), 0);
	assert_true(json_is_object(sub));
	assert_int_equal(json_get_array(o, "list", &sub, NULL), 0);
	assert_int_equal(json_array_size(sub), 2);
	json_decref(o);
}

static void rejects_wrong_types_with_go_messages(void **state)
{
	json_t *o = parse_ok("{\"userID\":12,\"platformID\":\"5\",\"flag\":1,\"info\":[],"
			     "\"ids\":\"u1\",\"list\":{},\"mixed\":[\"a\",3]}");
	struct json_err e;
	struct im_str s, *arr;
	int32_t i32;
	bool b;
	json_t *sub;
	size_t n;

	assert_int_equal(json_get_str(o, "userID", &s, NULL, &e), IM_EINVAL);
	assert_string_equal(
	    e.msg, "json: cannot unmarshal number into Go struct field .userID of type string");
	assert_int_equal(json_get_i32(o, "platformID", &i32, NULL, &e), IM_EINVAL);
	assert_string_equal(
	    e.msg, "json: cannot unmarshal string into Go struct field .platformID of type int32");
	assert_int_equal(json_get_bool(o, "flag", &b, NULL, &e), IM_EINVAL);
	assert_string_equal(
	    e.msg, "json: cannot unmarshal number into Go struct field .flag of type bool");
	assert_int_equal(json_get_obj(o, "info", &sub, &e), IM_EINVAL);
	assert_null(sub);
	assert_non_null(strstr(e.msg, "cannot unmarshal array"));
	assert_int_equal(json_get_str_array(o, "ids", &arr, &n, &e), IM_EINVAL);
	assert_non_null(strstr(e.msg, "cannot unmarshal string"));
	assert_int_equal(json_get_array(o, "list", &sub, &e), IM_EINVAL);
	assert_non_null(strstr(e.msg, "cannot unmarshal object"));
	assert_int_equal(json_get_str_array(o, "mixed", &arr, &n, &e), IM_EINVAL);
	assert_string_equal(
	    e.msg, "json: cannot unmarshal number into Go struct field .mixed of type string");
	assert_null(arr);
	assert_int_equal(n, 0);
	/* A NULL err is allowed. */
	assert_int_equal(json_get_str(o, "userID", &s, NULL, NULL), IM_EINVAL);
	json_decref(o);
}

static void rejects_out_of_range_and_fractional_integers(void **state)
{
	json_t *o = parse_ok("{\"max\":2147483647,\"min\":-2147483648,\"over\":2147483648,"
			     "\"under\":-2147483649,\"half\":1.5,\"whole\":1.0,\"exp\":1e3,"
			     "\"big\":9223372036854775807}");
	struct json_err e;
	int32_t i32;
	int64_t i64;

	assert_int_equal(json_get_i32(o, "max", &i32, NULL, &e), 0);
	assert_int_equal(i32, INT32_MAX);
	assert_int_equal(json_get_i32(o, "min", &i32, NULL, &e), 0);
	assert_int_equal(i32, INT32_MIN);
	assert_int_equal(json_get_i32(o, "over", &i32, NULL, &e), IM_EINVAL);
	assert_string_equal(
	    e.msg,
	    "json: cannot unmarshal number 2147483648 into Go struct field .over of type int32");
	assert_int_equal(i32, 0);
	assert_int_equal(json_get_i32(o, "under", &i32, NULL, &e), IM_EINVAL);
	assert_int_equal(json_get_i64(o, "half", &i64, NULL, &e), IM_EINVAL);
	assert_string_equal(
	    e.msg, "json: cannot unmarshal number 1.5 into Go struct field .half of type int64");
	assert_int_equal(json_get_i64(o, "whole", &i64, NULL, &e), IM_EINVAL);
	assert_int_equal(json_get_i32(o, "exp", &i32, NULL, &e), IM_EINVAL);
	assert_int_equal(json_get_i64(o, "big", &i64, NULL, &e), 0);
	assert_true(i64 == INT64_MAX);
	assert_int_equal(json_get_i64(o, "over", &i64, NULL, &e), 0);
	assert_true(i64 == 2147483648LL);
	json_decref(o);
}

static void duplicate_keys_follow_go(void **state)
{
	struct json_err e;
	struct im_str s;
	bool present;
	json_t *sub;

	/* A wrong type in any matching member is an error, even if a later one is fine. */
	json_t *o = parse_ok("{\"userID\":1,\"UserID\":\"a\"}");
	assert_int_equal(json_get_str(o, "userID", &s, NULL, &e), IM_EINVAL);
	json_decref(o);
	/* A later null leaves a scalar alone ... */
	o = parse_ok("{\"userID\":\"a\",\"USERID\":null}");
	assert_int_equal(json_get_str(o, "userID", &s, &present, &e), 0);
	assert_true(present);
	assert_int_equal(s.n, 1);
	json_decref(o);
	/* ... but sets a pointer (object) to nil. */
	o = parse_ok("{\"info\":{},\"Info\":null}");
	assert_int_equal(json_get_obj(o, "info", &sub, &e), 0);
	assert_null(sub);
	json_decref(o);
}

static void reads_string_arrays(void **state)
{
	json_t *o = parse_ok("{\"userIDs\":[\"a\",null,\"b\\u003c\"],\"empty\":[]}");
	struct im_str *arr;
	size_t n;

	assert_int_equal(json_get_str_array(o, "userids", &arr, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_int_equal(arr[0].n, 1);
	assert_memory_equal(arr[0].p, "a", 1);
	assert_int_equal(arr[1].n, 0);
	assert_int_equal(arr[2].n, 2);
	assert_memory_equal(arr[2].p, "b<", 2);
	im_free(arr);
	assert_int_equal(json_get_str_array(o, "empty", &arr, &n, NULL), 0);
	assert_null(arr);
	assert_int_equal(n, 0);
	im_alloc_fail_after(1);
	assert_int_equal(json_get_str_array(o, "userIDs", &arr, &n, NULL), -ENOMEM);
	im_alloc_fail_after(0);
	assert_null(arr);
	json_decref(o);
}

static void parse_errors_read_like_go(void **state)
{
	expect_parse_error("", 0, "unexpected end of JSON input");
	expect_parse_error("  \n", 3, "unexpected end of JSON input");
	expect_parse_error("{\"users\":[{\"userID\":\"u1\"", 24, "unexpected end of JSON input");
	expect_parse_error(NULL, 0, "unexpected end of JSON input");
	expect_parse_error("{\"a\":1} x", 9, "after top-level value");
	expect_parse_error("{\"a\" 1}", 7, "invalid character");
	expect_parse_error("{\"a\":tru}", 9, "invalid character");
	expect_parse_error("[1]", 3, "json: cannot unmarshal array into Go value");
	expect_parse_error("\"s\"", 3, "json: cannot unmarshal string into Go value");
	expect_parse_error("12", 2, "json: cannot unmarshal number into Go value");
	expect_parse_error("{\"a\":\"\x01\"}", 8, "control character");
	expect_parse_error("{\"a\":1}\0", 8, "invalid character '\\x00' at offset 7");
	expect_parse_error("null\0", 5, "invalid character '\\x00'");
	expect_parse_error("{\"a\":\"\0\"}", 8, "invalid character '\\x00'");
}

static void parses_like_go(void **state)
{
	struct json_err e;
	json_t *v = json_parse_body("null", 4, &e);
	assert_true(json_is_object(v));
	assert_int_equal(json_object_size(v), 0);
	json_decref(v);

	v = parse_ok(" {\"secret\":\"openIM123\",\"userID\":\"imAdmin\"} \n");
	assert_string_equal(json_string_value(json_field(v, "secret")), "openIM123");
	json_decref(v);

	/* Invalid UTF-8 inside a string becomes U+FFFD, as Go decodes it. */
	v = parse_ok("{\"a\":\"x\xff"
		     "y\"}");
	assert_string_equal(json_string_value(json_field(v, "a")), "x\xef\xbf\xbdy");
	json_decref(v);

	/* NUL escapes are allowed in values. */
	v = parse_ok("{\"a\":\"x\\u0000y\"}");
	assert_int_equal(json_string_length(json_field(v, "a")), 3);
	json_decref(v);
}

static void replaces_lone_surrogate_escapes(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"{\"a\":\"\\ud800x\"}", "\xef\xbf\xbdx"},
	    {"{\"a\":\"\\udc00\"}", "\xef\xbf\xbd"},
	    {"{\"a\":\"\\uD83D\\uDE00\"}", "\xf0\x9f\x98\x80"},
	    {"{\"a\":\"\\ud800\\u0041\"}", "\xef\xbf\xbd"
					   "A"},
	    {"{\"a\":\"\\ud800\\ud83d\\ude00\"}", "\xef\xbf\xbd\xf0\x9f\x98\x80"},
	    {"{\"a\":\"\\\\ud800\"}", "\\ud800"},
	};
	for (size_t i = 0; i < IM_ARRAY_LEN(cases); i++) {
		json_t *v = parse_ok(cases[i].in);
		assert_string_equal(json_string_value(json_field(v, "a")), cases[i].want);
		json_decref(v);
	}
}

static char *nested(size_t depth, const char *inner)
{
	size_t n = strlen(inner);
	char *s = malloc(2 * depth + n + 1);
	memset(s, '[', depth);
	memcpy(s + depth, inner, n);
	memset(s + depth + n, ']', depth);
	s[2 * depth + n] = '\0';
	return s;
}

static void survives_deep_nesting(void **state)
{
	struct json_err e;
	char *deep = nested(100000, "");
	deep[0] = '{';
	assert_null(json_parse_body(deep, 2 * 100000, &e));
	assert_non_null(strstr(e.msg, "exceeded max depth"));
	free(deep);

	/* 64 levels are fine, 65 are not. */
	char body[300];
	char *arr = nested(63, "1");
	snprintf(body, sizeof(body), "{\"a\":%s}", arr);
	free(arr);
	json_t *v = parse_ok(body);
	struct im_buf b = {0};
	assert_int_equal(json_go_dump(v, &b), 0);
	assert_string_equal(b.p, body);
	im_buf_free(&b);
	json_decref(v);
	arr = nested(64, "1");
	snprintf(body, sizeof(body), "{\"a\":%s}", arr);
	free(arr);
	assert_null(json_parse_body(body, strlen(body), &e));

	/* Brackets inside strings do not count. */
	char *str = nested(50000, "");
	size_t n = strlen(str) + 16;
	char *doc = malloc(n);
	snprintf(doc, n, "{\"a\":\"%s\"}", str);
	v = parse_ok(doc);
	assert_int_equal(json_string_length(json_field(v, "a")), 100000);
	json_decref(v);
	free(doc);
	free(str);
}

/* Out of memory at the n-th allocation, for every n, jansson's included: errors, never crashes or
 * leaks. */
static void survives_out_of_memory_at_every_allocation(void **state)
{
	static const char body[] =
	    "{\"users\":[{\"userID\":\"u\\ud800\xff\",\"nickname\":\"<n>\"}],"
	    "\"userIDs\":[\"a\",null],\"platformID\":5,\"f\":1.5}";
	bool completed = false;

	json_set_alloc_funcs(im_malloc, im_free);
	for (long n = 1; n < 200 && !completed; n++) {
		struct json_err e;
		struct im_buf b = {0};
		struct im_str *ids = NULL;
		size_t nids;
		json_t *users;

		im_alloc_fail_after(n);
		json_t *v = json_parse_body(body, sizeof(body) - 1, &e);
		if (v != NULL && json_get_str_array(v, "userIDs", &ids, &nids, &e) == 0 &&
		    json_get_array(v, "users", &users, &e) == 0 && json_go_dump(v, &b) == 0) {
			assert_non_null(strstr(b.p, "\\u003cn\\u003e"));
			completed = true;
		}
		im_alloc_fail_after(0);
		im_free(ids);
		im_buf_free(&b);
		json_decref(v);
	}
	json_set_alloc_funcs(malloc, free);
	assert_true(completed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(escapes_html_characters_like_go),
	    cmocka_unit_test(escapes_line_and_paragraph_separators),
	    cmocka_unit_test(escapes_control_characters_like_go),
	    cmocka_unit_test(keeps_slash_and_unicode_raw),
	    cmocka_unit_test(keeps_nul_bytes),
	    cmocka_unit_test(replaces_invalid_utf8_with_fffd),
	    cmocka_unit_test(escapes_keys_too),
	    cmocka_unit_test(keeps_insertion_order),
	    cmocka_unit_test(prints_null_and_empty_values),
	    cmocka_unit_test(formats_numbers_like_go),
	    cmocka_unit_test(appends_to_existing_buffer),
	    cmocka_unit_test(dump_reports_out_of_memory),
	    cmocka_unit_test(matches_keys_case_insensitively),
	    cmocka_unit_test(last_matching_key_wins_like_go),
	    cmocka_unit_test(null_and_absent_give_zero_values),
	    cmocka_unit_test(reads_present_values),
	    cmocka_unit_test(rejects_wrong_types_with_go_messages),
	    cmocka_unit_test(rejects_out_of_range_and_fractional_integers),
	    cmocka_unit_test(duplicate_keys_follow_go),
	    cmocka_unit_test(reads_string_arrays),
	    cmocka_unit_test(parse_errors_read_like_go),
	    cmocka_unit_test(parses_like_go),
	    cmocka_unit_test(replaces_lone_surrogate_escapes),
	    cmocka_unit_test(survives_deep_nesting),
	    cmocka_unit_test(survives_out_of_memory_at_every_allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
