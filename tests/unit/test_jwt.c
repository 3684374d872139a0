/* test_jwt.c - OpenIM tokens: issue/parse round trips, golang-jwt v4.5.1's check order, forged and
 * malformed tokens. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <mbedtls/md.h>

#include "json.h"
#include "jwt.h"

#define NOW    INT64_C(1700000000)
#define SECRET "openIM123"

static const struct im_str secret = {SECRET, sizeof(SECRET) - 1};

/* Tokens are built by hand here (base64url + mbedTLS HMAC), independent of libjwt. */
static void b64url(const unsigned char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1) {
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
		out[o++] = a[v >> 10];
		out[o++] = a[(v >> 4) & 63];
		out[o++] = a[(v & 15) << 2];
	}
	out[o] = '\0';
}

/* header.payload.signature with an HMAC of type md (or no signature if md is NONE). */
static char *make_token(const char *header, const char *payload, const char *key,
			mbedtls_md_type_t md)
{
	static char tok[8192];
	unsigned char mac[64];
	size_t o;

	b64url((const unsigned char *)header, strlen(header), tok);
	o = strlen(tok);
	tok[o++] = '.';
	b64url((const unsigned char *)payload, strlen(payload), tok + o);
	o = strlen(tok);
	if (md != MBEDTLS_MD_NONE) {
		const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
		assert_int_equal(mbedtls_md_hmac(info, (const unsigned char *)key, strlen(key),
						 (const unsigned char *)tok, o, mac),
				 0);
		tok[o++] = '.';
		b64url(mac, mbedtls_md_get_size(info), tok + o);
	} else {
		tok[o++] = '.';
		tok[o] = '\0';
	}
	return tok;
}

static const char hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static char *hs(const char *payload)
{
	return make_token(hs256, payload, SECRET, MBEDTLS_MD_SHA256);
}

static int parse(const char *tok, struct jwt_claims *c)
{
	return jwt_parse(tok, strlen(tok), secret, NOW, c);
}

static int parse_at(const char *tok, int64_t now)
{
	struct jwt_claims c;
	return jwt_parse(tok, strlen(tok), secret, now, &c);
}

static void issued_token_round_trips(void **state)
{
	char *tok = NULL;
	int64_t exp = 0;
	struct jwt_claims c;

	assert_int_equal(jwt_issue(IM_STR_LIT("u1"), 5, secret, NOW, 7776000, &tok, &exp), 0);
	assert_true(exp == NOW + 7776000);
	assert_int_equal(parse(tok, &c), JWT_OK);
	assert_string_equal(c.user_id, "u1");
	assert_int_equal(c.platform_id, 5);
	assert_true(c.exp == NOW + 7776000);
	assert_true(c.iat == NOW - 5);
	/* The header is exactly OpenIM's. */
	char head[64];
	b64url((const unsigned char *)hs256, strlen(hs256), head);
	assert_int_equal(strncmp(tok, head, strlen(head)), 0);
	assert_int_equal(tok[strlen(head)], '.');
	/* Valid until the second before exp. */
	assert_int_equal(parse_at(tok, NOW + 7776000 - 1), JWT_OK);
	assert_int_equal(parse_at(tok, NOW + 7776000), JWT_EXPIRED);
	/* iat = now - 5: a clock 5 s behind still accepts it, 6 s does not. */
	assert_int_equal(parse_at(tok, NOW - 5), JWT_OK);
	assert_int_equal(parse_at(tok, NOW - 6), JWT_UNKNOWN);
	im_free(tok);
}

static void issue_takes_secret_as_view(void **state)
{
	/* The secret is a view: bytes after n must not matter. */
	struct im_str longer = {SECRET "XYZ", sizeof(SECRET) - 1};
	char *tok = NULL;
	struct jwt_claims c;

	assert_int_equal(jwt_issue(IM_STR_LIT("imAdmin"), 10, longer, NOW, 3600, &tok, NULL), 0);
	assert_int_equal(parse(tok, &c), JWT_OK);
	assert_string_equal(c.user_id, "imAdmin");
	assert_int_equal(c.platform_id, 10);
	struct im_str other = {SECRET "XYZ", sizeof(SECRET) + 2};
	assert_int_equal(jwt_parse(tok, strlen(tok), other, NOW, &c), JWT_UNKNOWN);
	assert_string_equal(c.user_id, "");
	im_free(tok);
}

static void issue_rejects_bad_arguments(void **state)
{
	char *tok = (char *)"x";
	assert_int_equal(jwt_issue(IM_STR_LIT("u1"), 5, IM_STR_LIT(""), NOW, 60, &tok, NULL),
			 IM_EINVAL);
	assert_null(tok);
	assert_int_equal(jwt_issue((struct im_str){"u\0"
						   "1",
						   3},
				   5, secret, NOW, 60, &tok, NULL),
			 IM_EINVAL);
	assert_int_equal(jwt_issue(IM_STR_LIT("u\xff"), 5, secret, NOW, 60, &tok, NULL), IM_EINVAL);
	assert_int_equal(jwt_issue(IM_STR_LIT("u1"), 5, secret, INT64_MAX - 10, 60, &tok, NULL),
			 IM_EINVAL);
	im_alloc_fail_after(1);
	assert_int_equal(jwt_issue(IM_STR_LIT("u1"), 5, secret, NOW, 60, &tok, NULL), -ENOMEM);
	im_alloc_fail_after(0);
	assert_null(tok);
}

static void accepts_hand_made_tokens(void **state)
{
	struct jwt_claims c;

	/* As open-im-server issues them: field order of the Go struct, with nbf. */
	assert_int_equal(parse(hs("{\"UserID\":\"u1\",\"PlatformID\":5,\"exp\":1700003600,"
				  "\"nbf\":1699999700,\"iat\":1700000000}"),
			       &c),
			 JWT_OK);
	assert_string_equal(c.user_id, "u1");
	assert_int_equal(c.platform_id, 5);
	assert_true(c.exp == 1700003600);
	assert_true(c.iat == NOW);

	/* Keys match case-insensitively, dates may be reals or numeric strings, typ is optional. */
	assert_int_equal(parse(make_token("{\"alg\":\"HS256\"}",
					  "{\"userid\":\"a\",\"PLATFORMID\":2,\"EXP\":1700000100.7,"
					  "\"iat\":\"1699999999\",\"aud\":[\"x\"],\"iss\":\"i\"}",
					  SECRET, MBEDTLS_MD_SHA256),
			       &c),
			 JWT_OK);
	assert_string_equal(c.user_id, "a");
	assert_int_equal(c.platform_id, 2);
	assert_true(c.exp == 1700000100);
	assert_true(c.iat == 1699999999);

	/* Without UserID and PlatformID the token is valid with zero values, as in Go. */
	assert_int_equal(parse(hs("{\"exp\":1700000100}"), &c), JWT_OK);
	assert_string_equal(c.user_id, "");
	assert_int_equal(c.platform_id, 0);
	assert_true(c.iat == 0);
}

static void dates_are_checked_after_the_signature(void **state)
{
	/* now == exp is expired: Go's now.Before(exp) is false. */
	assert_int_equal(parse_at(hs("{\"UserID\":\"u\",\"exp\":1700000000}"), NOW), JWT_EXPIRED);
	assert_int_equal(parse_at(hs("{\"UserID\":\"u\",\"exp\":1700000001}"), NOW), JWT_OK);
	/* A fractional exp is rounded down. */
	assert_int_equal(parse_at(hs("{\"exp\":1700000000.9}"), NOW), JWT_EXPIRED);
	/* A huge exp converts like Go on amd64 (to the minimum) and reads as expired. */
	assert_int_equal(parse_at(hs("{\"exp\":1e300}"), NOW), JWT_EXPIRED);

	/*
	 * golang-jwt v4.5.1 (CVE-2024-51744) verifies the signature first: an
	 * expired token with a bad signature, a wrong secret or alg none is 1505.
	 */
	char *tok = hs("{\"UserID\":\"u\",\"exp\":1600000000}");
	size_t n = strlen(tok);
	tok[n - 5] = tok[n - 5] == 'x' ? 'y' : 'x';
	assert_int_equal(parse_at(tok, NOW), JWT_UNKNOWN);
	assert_int_equal(
	    parse_at(make_token(hs256, "{\"exp\":1}", "wrong", MBEDTLS_MD_SHA256), NOW),
	    JWT_UNKNOWN);
	assert_int_equal(
	    parse_at(make_token("{\"alg\":\"none\"}", "{\"exp\":1}", "", MBEDTLS_MD_NONE), NOW),
	    JWT_UNKNOWN);
	tok = hs("{\"nbf\":1800000000}");
	tok[strlen(tok) - 5] ^= 1;
	assert_int_equal(parse_at(tok, NOW), JWT_UNKNOWN);

	/* Signed: expiry beats not-valid-yet, which beats a future iat. */
	assert_int_equal(parse_at(hs("{\"exp\":1,\"iat\":1800000000,\"nbf\":1800000000}"), NOW),
			 JWT_EXPIRED);
	assert_int_equal(parse_at(hs("{\"nbf\":1800000000,\"iat\":1800000000}"), NOW),
			 JWT_NOT_VALID_YET);
}

static void not_valid_yet_and_future_iat(void **state)
{
	assert_int_equal(parse_at(hs("{\"UserID\":\"u\",\"nbf\":1700000001}"), NOW),
			 JWT_NOT_VALID_YET);
	assert_int_equal(parse_at(hs("{\"UserID\":\"u\",\"nbf\":1700000000}"), NOW), JWT_OK);
	assert_int_equal(parse_at(hs("{\"UserID\":\"u\",\"iat\":1700000001}"), NOW), JWT_UNKNOWN);
	assert_int_equal(parse_at(hs("{\"UserID\":\"u\",\"iat\":1700000000}"), NOW), JWT_OK);
	/* An absent or null date is not checked; the last matching key decides. */
	assert_int_equal(parse_at(hs("{\"exp\":null,\"nbf\":null}"), NOW), JWT_OK);
	assert_int_equal(parse_at(hs("{\"exp\":1,\"EXP\":null}"), NOW), JWT_OK);
	assert_int_equal(parse_at(hs("{\"exp\":null,\"Exp\":1}"), NOW), JWT_EXPIRED);
}

static void hs512_is_refused_even_when_go_would_verify_it(void **state)
{
	/* Go checks HS512 with the same secret (then says 1501 here); we take HS256 only. */
	assert_int_equal(parse_at(make_token("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "{\"exp\":1}",
					     SECRET, MBEDTLS_MD_SHA512),
				  NOW),
			 JWT_UNKNOWN);
}

static void rejects_bad_signatures_and_algorithms(void **state)
{
	const char *payload = "{\"UserID\":\"u1\",\"PlatformID\":5,\"exp\":1700003600}";
	char *tok;

	/* Forged: one flipped signature character. */
	tok = hs(payload);
	size_t n = strlen(tok);
	tok[n - 5] = tok[n - 5] == 'x' ? 'y' : 'x';
	assert_int_equal(parse_at(tok, NOW), JWT_UNKNOWN);
	/* Forged: payload swapped under a valid signature of another payload. */
	char good[512], other[512];
	snprintf(good, sizeof(good), "%s", hs(payload));
	snprintf(other, sizeof(other), "%s", hs("{\"UserID\":\"imAdmin\",\"PlatformID\":10}"));
	char *sig = strrchr(good, '.');
	char *osig = strrchr(other, '.');
	strcpy(osig, sig);
	assert_int_equal(parse_at(other, NOW), JWT_UNKNOWN);
	/* Signed with another secret. */
	assert_int_equal(parse_at(make_token(hs256, payload, "openIM124", MBEDTLS_MD_SHA256), NOW),
			 JWT_UNKNOWN);
	/* alg none with no signature, and alg none carrying a valid HS256 signature. */
	assert_int_equal(
	    parse_at(make_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, "", MBEDTLS_MD_NONE),
		     NOW),
	    JWT_UNKNOWN);
	assert_int_equal(
	    parse_at(make_token("{\"alg\":\"none\"}", payload, SECRET, MBEDTLS_MD_SHA256), NOW),
	    JWT_UNKNOWN);
	/* HS512 with the right secret: Go would accept it, we take HS256 only. */
	assert_int_equal(parse_at(make_token("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", payload, SECRET,
					     MBEDTLS_MD_SHA512),
				  NOW),
			 JWT_UNKNOWN);
	/* An alg golang-jwt does not know, a lower-case one, a missing one, a non-string one. */
	assert_int_equal(
	    parse_at(make_token("{\"alg\":\"hs256\"}", payload, SECRET, MBEDTLS_MD_SHA256), NOW),
	    JWT_UNKNOWN);
	assert_int_equal(
	    parse_at(make_token("{\"typ\":\"JWT\"}", payload, SECRET, MBEDTLS_MD_SHA256), NOW),
	    JWT_UNKNOWN);
	assert_int_equal(
	    parse_at(make_token("{\"alg\":256}", payload, SECRET, MBEDTLS_MD_SHA256), NOW),
	    JWT_UNKNOWN);
	/* An unknown alg is refused before anything else is checked. */
	assert_int_equal(
	    parse_at(make_token("{\"alg\":\"foo\"}", "{\"exp\":1}", SECRET, MBEDTLS_MD_SHA256),
		     NOW),
	    JWT_UNKNOWN);
	/* A null header decodes (to an empty map), then lacks alg. */
	assert_int_equal(parse_at(make_token("null", payload, SECRET, MBEDTLS_MD_SHA256), NOW),
			 JWT_UNKNOWN);
	/* The signature segment must decode: a bad character is 1505, not 1503. */
	tok = hs(payload);
	tok[strlen(tok) - 3] = '*';
	assert_int_equal(parse_at(tok, NOW), JWT_UNKNOWN);
	/* Truncated signature, empty signature. */
	tok = hs(payload);
	tok[strlen(tok) - 4] = '\0';
	assert_int_equal(parse_at(tok, NOW), JWT_UNKNOWN);
	tok = hs(payload);
	strrchr(tok, '.')[1] = '\0';
	assert_int_equal(parse_at(tok, NOW), JWT_UNKNOWN);
}

static void rejects_unrepresentable_claims_after_verification(void **state)
{
	char payload[400];
	char uid[130];
	struct jwt_claims c;

	memset(uid, 'x', 128);
	uid[128] = '\0';
	snprintf(payload, sizeof(payload), "{\"UserID\":\"%s\",\"PlatformID\":1}", uid);
	assert_int_equal(parse(hs(payload), &c), JWT_OK);
	assert_int_equal(strlen(c.user_id), 128);
	uid[128] = 'x';
	uid[129] = '\0';
	snprintf(payload, sizeof(payload), "{\"UserID\":\"%s\",\"PlatformID\":1}", uid);
	assert_int_equal(parse(hs(payload), &c), JWT_UNKNOWN);
	assert_int_equal(parse(hs("{\"UserID\":\"a\\u0000b\"}"), &c), JWT_UNKNOWN);
	assert_int_equal(parse(hs("{\"UserID\":\"a\",\"PlatformID\":1099511627776}"), &c),
			 JWT_UNKNOWN);
}

static void reports_malformed_tokens(void **state)
{
	char buf[8192];
	char *tok = hs("{\"UserID\":\"u1\",\"PlatformID\":5}");
	char *dot = strchr(tok, '.');

	/* Two parts, four parts, empty, over 4 KiB. */
	snprintf(buf, sizeof(buf), "%.*s", (int)(strrchr(tok, '.') - tok), tok);
	assert_int_equal(parse_at(buf, NOW), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "%s.x", tok);
	assert_int_equal(parse_at(buf, NOW), JWT_MALFORMED);
	assert_int_equal(parse_at("", NOW), JWT_MALFORMED);
	assert_int_equal(parse_at("..", NOW), JWT_MALFORMED);
	struct jwt_claims c;
	assert_int_equal(jwt_parse(NULL, 0, secret, NOW, &c), JWT_MALFORMED);
	memset(buf, 'A', 4097);
	buf[10] = '.';
	buf[20] = '.';
	assert_int_equal(jwt_parse(buf, 4097, secret, NOW, &c), JWT_MALFORMED);

	/* Bad base64 in the header, padding, a lone trailing character. */
	snprintf(buf, sizeof(buf), "%s", tok);
	buf[3] = '*';
	assert_int_equal(parse_at(buf, NOW), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "%.*s=%s", (int)(dot - tok), tok, dot);
	assert_int_equal(parse_at(buf, NOW), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "%.*sA%s", (int)(dot - tok), tok, dot);
	assert_int_equal(parse_at(buf, NOW), JWT_MALFORMED);
	/* "Bearer " in front. */
	snprintf(buf, sizeof(buf), "Bearer %s", tok);
	assert_int_equal(parse_at(buf, NOW), JWT_MALFORMED);

	/* Not JSON, not an object, wrong claim types - even when expired. */
	static const char *const bad[][2] = {
	    {"{\"alg\":\"HS256\"", "{}"},
	    {"[]", "{}"},
	    {"{\"alg\":\"HS256\"}", "not json"},
	    {"{\"alg\":\"HS256\"}", ""},
	    {"{\"alg\":\"HS256\"}", "[1]"},
	    {"{\"alg\":\"HS256\"}", "{\"UserID\":5,\"exp\":1}"},
	    {"{\"alg\":\"HS256\"}", "{\"PlatformID\":\"5\",\"exp\":1}"},
	    {"{\"alg\":\"HS256\"}", "{\"PlatformID\":5.5}"},
	    {"{\"alg\":\"HS256\"}", "{\"exp\":\"abc\"}"},
	    {"{\"alg\":\"HS256\"}", "{\"exp\":\"1e400\"}"},
	    {"{\"alg\":\"HS256\"}", "{\"exp\":true}"},
	    {"{\"alg\":\"HS256\"}", "{\"nbf\":{}}"},
	    {"{\"alg\":\"HS256\"}", "{\"aud\":[null]}"},
	    {"{\"alg\":\"HS256\"}", "{\"aud\":5}"},
	    {"{\"alg\":\"HS256\"}", "{\"iss\":1}"},
	    {"{\"alg\":\"HS256\"}", "{\"Iat\":{},\"iat\":5}"},
	    {"{\"alg\":\"HS256\"}", "{\"userid\":[],\"UserID\":\"u\"}"},
	};
	for (size_t i = 0; i < IM_ARRAY_LEN(bad); i++) {
		tok = make_token(bad[i][0], bad[i][1], SECRET, MBEDTLS_MD_SHA256);
		if (parse_at(tok, NOW) != JWT_MALFORMED)
			fail_msg("case %zu (%s / %s) not malformed", i, bad[i][0], bad[i][1]);
	}
	/* A valid signature over a segment of raw, non-base64 bytes. */
	assert_int_equal(parse_at("e30.\xff\xfe.AAAA", NOW), JWT_MALFORMED);
}

/*
 * Out of memory at the n-th allocation, jansson's included (also inside
 * libjwt's jwt_decode).  Issuing is swept over our allocations only:
 * libjwt 1.10.2's jwt_encode_str() calls strlen() on a failed json_dumps().
 */
static void survives_out_of_memory_at_every_allocation(void **state)
{
	char *tok = NULL;
	struct jwt_claims c;
	bool completed = false;
	int rv;

	for (long n = 1; n < 10 && !completed; n++) {
		im_alloc_fail_after(n);
		rv = jwt_issue(IM_STR_LIT("u1"), 5, secret, NOW, 60, &tok, NULL);
		im_alloc_fail_after(0);
		assert_true(rv == 0 || rv == -ENOMEM);
		completed = rv == 0;
	}
	assert_true(completed);

	json_set_alloc_funcs(im_malloc, im_free);
	completed = false;
	for (long n = 1; n < 300 && !completed; n++) {
		im_alloc_fail_after(n);
		rv = jwt_parse(tok, strlen(tok), secret, NOW, &c);
		im_alloc_fail_after(0);
		/* A failed allocation reads as a token we cannot use, never as a valid one. */
		assert_true(rv == JWT_OK || rv == JWT_MALFORMED || rv == JWT_UNKNOWN);
		completed = rv == JWT_OK;
	}
	json_set_alloc_funcs(malloc, free);
	assert_true(completed);
	assert_string_equal(c.user_id, "u1");
	im_free(tok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(issued_token_round_trips),
	    cmocka_unit_test(issue_takes_secret_as_view),
	    cmocka_unit_test(issue_rejects_bad_arguments),
	    cmocka_unit_test(accepts_hand_made_tokens),
	    cmocka_unit_test(dates_are_checked_after_the_signature),
	    cmocka_unit_test(not_valid_yet_and_future_iat),
	    cmocka_unit_test(hs512_is_refused_even_when_go_would_verify_it),
	    cmocka_unit_test(rejects_bad_signatures_and_algorithms),
	    cmocka_unit_test(rejects_unrepresentable_claims_after_verification),
	    cmocka_unit_test(reports_malformed_tokens),
	    cmocka_unit_test(survives_out_of_memory_at_every_allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
