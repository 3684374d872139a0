/* jwt.c - OpenIM tokens: golang-jwt v4.5.1's checks and OpenIM's error codes, libjwt for HS256. */
#include "jwt.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

/*
 * libjwt's header is also named jwt.h and server/ comes first on the include
 * path, so <jwt.h> would find this module's header.  "../include/jwt.h"
 * resolves, relative to the system (or pkg-config) include directory, to
 * libjwt's own.
 */
#include <../include/jwt.h>

#include "json.h"

/*
 * jwt_parse() follows golang-jwt v4.5.1 (the version open-im-server 3.8.3
 * pins) Parser.ParseWithClaims as OpenIM's tokenverify.GetClaimFromToken
 * maps its errors (openim-protocol.md §2.3).  Since v4.5.1 (CVE-2024-51744)
 * the signature is checked before the claims, so a forged token never
 * reports 1501 or 1504:
 *
 *   split in 3 -> decode + unmarshal header -> decode + unmarshal claims  [1503]
 *   -> header "alg" names a registered method                            [1505]
 *   -> signature: HS256 only, verified by libjwt                          [1505]
 *   -> claims: exp [1501] before nbf [1504] before iat [1505]
 *
 * Deliberate differences from Go: HS384/HS512 tokens are refused even when
 * correctly signed (Go verifies them with the same secret); so are validly
 * signed tokens libjwt rejects and Go accepts (a "typ" other than JWT, a
 * non-canonical last signature character, a claims segment that is null or
 * has bytes after the object, segments with line breaks); JSON integers
 * beyond int64 make a token malformed, and so does a key duplicated exactly
 * whose earlier value has the wrong type (jansson keeps only the last); a
 * UserID over 128 bytes or with a NUL byte, or a PlatformID outside int32,
 * gives 1505 after the other checks; an empty secret verifies nothing (libjwt
 * needs a key; config must require one).  A token without UserID or
 * PlatformID is valid with zero values, as in Go.
 */

#define JWT_MAX_TOKEN 4096

_Static_assert(sizeof(long) >= 8, "libjwt's integer grants are longs: exp needs 64 bits");

/* golang-jwt v4's registered signing methods; any other "alg" is unverifiable. */
static const char *const go_algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256",
				      "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA", "none"};

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decodes a segment as Go's base64.RawURLEncoding.DecodeString does: '\r'
 * and '\n' are skipped, '=' and any other byte are errors, a final group of
 * one character is an error, unused low bits are ignored.  out needs n*3/4+2
 * bytes.  Returns 0 or -1.
 */
static int seg_decode(const char *s, size_t n, unsigned char *out, size_t *out_len)
{
	uint32_t v = 0;
	size_t o = 0;
	int q = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			continue;
		int d = b64url_value(c);
		if (d < 0)
			return -1;
		v = v << 6 | (uint32_t)d;
		if (++q == 4) {
			out[o++] = (unsigned char)(v >> 16);
			out[o++] = (unsigned char)(v >> 8);
			out[o++] = (unsigned char)v;
			v = 0;
			q = 0;
		}
	}
	if (q == 1)
		return -1;
	if (q == 2) {
		out[o++] = (unsigned char)(v >> 4);
	} else if (q == 3) {
		out[o++] = (unsigned char)(v >> 10);
		out[o++] = (unsigned char)(v >> 2);
	}
	*out_len = o;
	return 0;
}

/* Decodes a segment and unmarshals it into a JSON object (null: empty), or NULL. */
static json_t *seg_json(const char *s, size_t n)
{
	unsigned char buf[JWT_MAX_TOKEN];
	struct json_err err;
	size_t len;

	if (seg_decode(s, n, buf, &len) != 0)
		return NULL;
	return json_parse_body((const char *)buf, len, &err);
}

/* True if s is a JSON number literal, which is what Go's json.Number accepts in a string. */
static bool number_literal(const char *s, size_t n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0') {
		i++;
	} else if (i < n && s[i] >= '1' && s[i] <= '9') {
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	} else {
		return false;
	}
	if (i < n && s[i] == '.') {
		if (++i >= n || s[i] < '0' || s[i] > '9')
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i == n;
}

/*
 * Seconds of a NumericDate as v4 builds it: math.Modf, time.Unix, then
 * Truncate(time.Second), i.e. rounded down.  A float outside int64 converts
 * to INT64_MIN, as on amd64 (so a huge "exp" reads as long expired).
 */
static int64_t go_seconds(double f)
{
	double whole = trunc(f);
	int64_t sec = whole >= -0x1p63 && whole < 0x1p63 ? (int64_t)whole : INT64_MIN;

	if ((int64_t)((f - whole) * 1e9) < 0)
		sec = (int64_t)((uint64_t)sec - 1);
	return sec;
}

/* Go compares times as seconds since year 1, in int64 arithmetic that wraps. */
static int64_t go_abs(int64_t unix_s)
{
	return (int64_t)((uint64_t)unix_s + UINT64_C(62135596800));
}

/* A NumericDate value: a number, or a string holding a JSON number.  0 or -1. */
static int date_value(const json_t *v, int64_t *sec)
{
	double f;

	if (json_is_integer(v)) {
		f = (double)json_integer_value(v);
	} else if (json_is_real(v)) {
		f = json_real_value(v);
	} else if (json_is_string(v)) {
		if (!number_literal(json_string_value(v), json_string_length(v)))
			return -1;
		/* The literal has no NUL inside, so strtod stops at its end. */
		f = strtod(json_string_value(v), NULL);
		if (isinf(f))
			return -1;
	} else {
		return -1;
	}
	*sec = go_seconds(f);
	return 0;
}

/* "aud" is a string or an array of strings (ClaimStrings); null elements are errors. */
static int aud_value(const json_t *v)
{
	if (json_is_string(v))
		return 0;
	if (!json_is_array(v))
		return -1;
	for (size_t i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)))
			return -1;
	return 0;
}

/*
 * Reads a pointer-typed claim (NumericDate or aud) as Go's decoder does:
 * every member matching key is decoded in order, a wrong type anywhere is an
 * error, and the last one decides, null meaning absent.  Returns 0 or -1.
 */
static int claim_ptr(const json_t *claims, const char *key, int64_t *sec, bool *present)
{
	bool is_date = sec != NULL;

	*present = false;
	for (void *it = json_object_iter((json_t *)claims); it != NULL;
	     it = json_object_iter_next((json_t *)claims, it)) {
		if (!json_key_match(json_object_iter_key(it), json_object_iter_key_len(it), key))
			continue;
		json_t *v = json_object_iter_value(it);
		*present = !json_is_null(v);
		if (*present && (is_date ? date_value(v, sec) : aud_value(v)) != 0)
			return -1;
	}
	return 0;
}

struct parsed {
	struct im_str user_id;
	int64_t platform_id;
	int64_t exp, nbf, iat;
	bool has_exp, has_nbf, has_iat;
};

/* Decodes the claims as Go's decoder fills tokenverify.Claims.  0 or -1. */
static int read_claims(const json_t *c, struct parsed *p)
{
	struct im_str s;
	bool aud;

	if (json_get_str(c, "UserID", &p->user_id, NULL, NULL) != 0 ||
	    json_get_i64(c, "PlatformID", &p->platform_id, NULL, NULL) != 0 ||
	    json_get_str(c, "iss", &s, NULL, NULL) != 0 ||
	    json_get_str(c, "sub", &s, NULL, NULL) != 0 ||
	    json_get_str(c, "jti", &s, NULL, NULL) != 0 || claim_ptr(c, "aud", NULL, &aud) != 0 ||
	    claim_ptr(c, "exp", &p->exp, &p->has_exp) != 0 ||
	    claim_ptr(c, "nbf", &p->nbf, &p->has_nbf) != 0 ||
	    claim_ptr(c, "iat", &p->iat, &p->has_iat) != 0)
		return -1;
	return 0;
}

static bool alg_registered(const json_t *header)
{
	const char *alg = json_string_value(json_object_get(header, "alg"));

	if (alg == NULL)
		return false;
	for (size_t i = 0; i < IM_ARRAY_LEN(go_algs); i++)
		if (strcmp(alg, go_algs[i]) == 0)
			return true;
	return false;
}

/* The signature check: HS256 only, the signature must decode, then libjwt verifies. */
static bool signature_ok(const json_t *header, const char *token, size_t len, const char *sig,
			 size_t sig_len, struct im_str secret)
{
	unsigned char raw[JWT_MAX_TOKEN];
	char copy[JWT_MAX_TOKEN + 1];
	size_t raw_len;
	jwt_t *j = NULL;

	/* Refusing "none" (and everything but HS256) here never lets libjwt skip the check. */
	if (strcmp(json_string_value(json_object_get(header, "alg")), "HS256") != 0)
		return false;
	if (seg_decode(sig, sig_len, raw, &raw_len) != 0 || raw_len != 32)
		return false;
	if (secret.n == 0 || secret.n > INT_MAX)
		return false;
	memcpy(copy, token, len);
	copy[len] = '\0';
	int rv = jwt_decode(&j, copy, (const unsigned char *)secret.p, (int)secret.n);
	bool ok = rv == 0 && j != NULL && jwt_get_alg(j) == JWT_ALG_HS256;
	if (j != NULL)
		jwt_free(j);
	return ok;
}

int jwt_parse(const char *token, size_t token_len, struct im_str secret, int64_t now_s,
	      struct jwt_claims *claims)
{
	struct parsed p = {0};
	json_t *header = NULL, *body = NULL;
	int status;

	memset(claims, 0, sizeof(*claims));
	if (token == NULL || token_len > JWT_MAX_TOKEN)
		return JWT_MALFORMED;
	const char *dot1 = memchr(token, '.', token_len);
	const char *dot2 =
	    dot1 ? memchr(dot1 + 1, '.', token_len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', token_len - (size_t)(dot2 + 1 - token)) != NULL)
		return JWT_MALFORMED;

	header = seg_json(token, (size_t)(dot1 - token));
	if (header != NULL)
		body = seg_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (body == NULL || read_claims(body, &p) != 0) {
		status = JWT_MALFORMED;
		goto out;
	}
	if (!alg_registered(header)) {
		status = JWT_UNKNOWN;
		goto out;
	}
	/* Then RegisteredClaims.Valid(): now must be before exp, at or after nbf and iat. */
	int64_t now = go_abs(now_s);
	if (!signature_ok(header, token, token_len, dot2 + 1,
			  token_len - (size_t)(dot2 + 1 - token), secret))
		status = JWT_UNKNOWN;
	else if (p.has_exp && now >= go_abs(p.exp))
		status = JWT_EXPIRED;
	else if (p.has_nbf && now < go_abs(p.nbf))
		status = JWT_NOT_VALID_YET;
	else if (p.has_iat && now < go_abs(p.iat))
		status = JWT_UNKNOWN;
	else if (p.user_id.n >= sizeof(claims->user_id) ||
		 memchr(p.user_id.p, '\0', p.user_id.n) != NULL || p.platform_id < INT32_MIN ||
		 p.platform_id > INT32_MAX)
		status = JWT_UNKNOWN;
	else
		status = JWT_OK;
	if (status == JWT_OK) {
		memcpy(claims->user_id, p.user_id.p, p.user_id.n);
		claims->user_id[p.user_id.n] = '\0';
		claims->platform_id = (int32_t)p.platform_id;
		claims->exp = p.has_exp ? p.exp : 0;
		claims->iat = p.has_iat ? p.iat : 0;
	}
out:
	json_decref(body);
	json_decref(header);
	return status;
}

/* libjwt reports errno values; anything but ENOMEM means we passed something it refuses. */
static int from_libjwt(int rv)
{
	return rv == 0 ? 0 : rv == ENOMEM ? -ENOMEM : IM_EINVAL;
}

int jwt_issue(struct im_str user_id, int32_t platform_id, struct im_str secret, int64_t now_s,
	      int64_t expire_s, char **out, int64_t *exp_out)
{
	int64_t exp, iat;
	jwt_t *j = NULL;
	char *uid = NULL, *tok = NULL;
	int rv;

	*out = NULL;
	if (secret.n == 0 || secret.n > INT_MAX || __builtin_add_overflow(now_s, expire_s, &exp) ||
	    __builtin_sub_overflow(now_s, 5, &iat) ||
	    (user_id.n > 0 && memchr(user_id.p, '\0', user_id.n) != NULL))
		return IM_EINVAL;
	/* libjwt stores grants with jansson, which refuses invalid UTF-8: say so up front. */
	json_t *check = json_stringn(user_id.n ? user_id.p : "", user_id.n);
	if (check == NULL)
		return IM_EINVAL;
	json_decref(check);
	uid = im_strndup(user_id.n ? user_id.p : "", user_id.n);
	if (uid == NULL)
		return -ENOMEM;

	rv = from_libjwt(jwt_new(&j));
	if (rv != 0)
		goto err_after_uid;
	rv = from_libjwt(
	    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret.p, (int)secret.n));
	if (rv == 0)
		rv = from_libjwt(jwt_add_grant(j, "UserID", uid));
	if (rv == 0)
		rv = from_libjwt(jwt_add_grant_int(j, "PlatformID", platform_id));
	if (rv == 0)
		rv = from_libjwt(jwt_add_grant_int(j, "exp", (long)exp));
	if (rv == 0)
		rv = from_libjwt(jwt_add_grant_int(j, "iat", (long)iat));
	if (rv == 0 && (tok = jwt_encode_str(j)) == NULL)
		rv = errno == EINVAL ? IM_EINVAL : -ENOMEM;
	if (rv == 0 && (*out = im_strndup(tok, strlen(tok))) == NULL)
		rv = -ENOMEM;
	free(tok);
	jwt_free(j);
err_after_uid:
	im_free(uid);
	if (rv == 0 && exp_out != NULL)
		*exp_out = exp;
	return rv;
}
