/* json.c - Go encoding/json behaviour on top of jansson: escaping, lenient input, typed getters. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Invariants:
 * 1. Every string this file hands to jansson is valid UTF-8: views are
 *    sanitised by json_str(), request bodies by prescan(), both replacing
 *    each byte that does not start a valid sequence with U+FFFD, exactly
 *    where Go's utf8.DecodeRune would return RuneError.
 * 2. Output never depends on jansson's dumper: json_go_dump() writes every
 *    byte itself, so escaping and number formatting follow Go 1.22.
 * 3. Getters treat a key as Go treats a struct field: every member whose
 *    name folds to it is visited in document order, null leaves a scalar
 *    alone, any type mismatch is an error, and the last value wins.
 */

/* Nesting allowed in a request body; OpenIM bodies use fewer than 10 levels. */
#define JSON_MAX_DEPTH 64
/* Nesting json_go_dump() follows before it gives up (values come from our code). */
#define JSON_MAX_DUMP_DEPTH 4096

static const char hex_digits[] = "0123456789abcdef";
static const char utf8_fffd[] = "\xef\xbf\xbd";

/*
 * Length of the UTF-8 sequence at s (1 to 4) with its code point in *cp, or 0
 * if s does not start a valid sequence (overlong, surrogate, above U+10FFFF,
 * truncated): the ranges of Go's utf8.DecodeRune.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	v = v << 6 | (s[1] & 0x3f);
	for (size_t i = 2; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	*cp = v;
	return len;
}

/* ---- Output ---- */

/* Appends s as a Go string literal (encodeState.string with escapeHTML). */
static int dump_str(struct im_buf *out, const unsigned char *s, size_t n)
{
	size_t start = 0, i = 0;

	if (im_buf_add(out, "\"", 1) != 0)
		return -ENOMEM;
	while (i < n) {
		unsigned char c = s[i];
		char esc[7];
		const char *e = esc;
		size_t elen = 2, adv = 1;

		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' &&
			    c != '&') {
				i++;
				continue;
			}
			esc[0] = '\\';
			switch (c) {
			case '"':
			case '\\':
				esc[1] = (char)c;
				break;
			case '\b':
				esc[1] = 'b';
				break;
			case '\f':
				esc[1] = 'f';
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex_digits[c >> 4];
				esc[5] = hex_digits[c & 0xf];
				elen = 6;
				break;
			}
		} else {
			uint32_t cp;
			size_t len = utf8_seq(s + i, n - i, &cp);
			if (len == 0) {
				e = "\\ufffd";
				elen = 6;
			} else if (cp == 0x2028 || cp == 0x2029) {
				e = cp == 0x2028 ? "\\u2028" : "\\u2029";
				elen = 6;
				adv = len;
			} else {
				i += len;
				continue;
			}
		}
		if (im_buf_add(out, s + start, i - start) != 0 || im_buf_add(out, e, elen) != 0)
			return -ENOMEM;
		i += adv;
		start = i;
	}
	if (im_buf_add(out, s + start, n - start) != 0 || im_buf_add(out, "\"", 1) != 0)
		return -ENOMEM;
	return 0;
}

/*
 * Formats f as Go's encoding/json does: the shortest digits that read back
 * as f (strconv 'f' or 'e' with precision -1), exponent form below 1e-6 and
 * from 1e21 on, and "e-07" shortened to "e-7".  buf holds at least 32 bytes.
 */
static void go_float(double f, char *buf)
{
	char tmp[40], digits[20];
	int nd = 0, exp10, p;
	char *w = buf;

	if (f == 0) {
		strcpy(buf, signbit(f) ? "-0" : "0");
		return;
	}
	for (p = 1; p < 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	snprintf(tmp, sizeof(tmp), "%.*e", p - 1, f);
	/* tmp is "[-]d[.ddd]e[+-]XX". */
	const char *t = tmp;
	if (*t == '-')
		*w++ = *t++;
	for (; *t != 'e'; t++)
		if (*t != '.')
			digits[nd++] = *t;
	exp10 = atoi(t + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;

	double a = fabs(f);
	if (a < 1e-6 || a >= 1e21) {
		*w++ = digits[0];
		if (nd > 1) {
			*w++ = '.';
			memcpy(w, digits + 1, (size_t)nd - 1);
			w += nd - 1;
		}
		/* Go writes at least two exponent digits, then json trims "e-0X". */
		if (exp10 < 0 && exp10 > -10)
			sprintf(w, "e-%d", -exp10);
		else
			sprintf(w, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
		return;
	}
	if (exp10 < 0) {
		*w++ = '0';
		*w++ = '.';
		for (int i = -1; i > exp10; i--)
			*w++ = '0';
		memcpy(w, digits, (size_t)nd);
		w += nd;
	} else {
		for (int i = 0; i <= exp10; i++)
			*w++ = i < nd ? digits[i] : '0';
		if (nd > exp10 + 1) {
			*w++ = '.';
			memcpy(w, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
			w += nd - exp10 - 1;
		}
	}
	*w = '\0';
}

static int dump_value(const json_t *v, struct im_buf *out, int depth)
{
	char num[40];
	int rv;

	if (depth > JSON_MAX_DUMP_DEPTH)
		return IM_EINVAL;
	switch (v == NULL ? JSON_NULL : json_typeof(v)) {
	case JSON_OBJECT: {
		bool first = true;
		if (im_buf_add(out, "{", 1) != 0)
			return -ENOMEM;
		for (void *it = json_object_iter((json_t *)v); it != NULL;
		     it = json_object_iter_next((json_t *)v, it)) {
			if (!first && im_buf_add(out, ",", 1) != 0)
				return -ENOMEM;
			first = false;
			rv = dump_str(out, (const unsigned char *)json_object_iter_key(it),
				      json_object_iter_key_len(it));
			if (rv == 0)
				rv = im_buf_add(out, ":", 1);
			if (rv == 0)
				rv = dump_value(json_object_iter_value(it), out, depth + 1);
			if (rv != 0)
				return rv;
		}
		return im_buf_add(out, "}", 1);
	}
	case JSON_ARRAY:
		if (im_buf_add(out, "[", 1) != 0)
			return -ENOMEM;
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i > 0 && im_buf_add(out, ",", 1) != 0)
				return -ENOMEM;
			rv = dump_value(json_array_get(v, i), out, depth + 1);
			if (rv != 0)
				return rv;
		}
		return im_buf_add(out, "]", 1);
	case JSON_STRING:
		return dump_str(out, (const unsigned char *)json_string_value(v),
				json_string_length(v));
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" PRId64, (int64_t)json_integer_value(v));
		return im_buf_addstr(out, num);
	case JSON_REAL:
		go_float(json_real_value(v), num);
		return im_buf_addstr(out, num);
	case JSON_TRUE:
		return im_buf_add(out, "true", 4);
	case JSON_FALSE:
		return im_buf_add(out, "false", 5);
	case JSON_NULL:
	default:
		return im_buf_add(out, "null", 4);
	}
}

/*
 * Differences from Go, all deliberate: NaN and infinities cannot occur
 * (jansson refuses them); a string with invalid UTF-8 that was built with
 * json_str() carries a raw U+FFFD where Go would write the escape \ufffd.
 * Returns IM_EINVAL past JSON_MAX_DUMP_DEPTH levels of nesting.
 */
int json_go_dump(const json_t *v, struct im_buf *out)
{
	size_t len = out->len;
	int rv = dump_value(v, out, 0);
	if (rv != 0 && out->p != NULL) {
		out->len = len;
		out->p[len] = '\0';
	}
	return rv;
}

json_t *json_str(struct im_str s)
{
	const unsigned char *p = (const unsigned char *)s.p;
	struct im_buf fixed = {0};
	size_t done = 0, i = 0;
	uint32_t cp;
	json_t *v;

	if (s.n == 0)
		return json_stringn("", 0);
	while (i < s.n) {
		size_t len = utf8_seq(p + i, s.n - i, &cp);
		if (len != 0) {
			i += len;
			continue;
		}
		if (im_buf_add(&fixed, p + done, i - done) != 0 ||
		    im_buf_add(&fixed, utf8_fffd, 3) != 0) {
			im_buf_free(&fixed);
			return NULL;
		}
		done = ++i;
	}
	if (fixed.p == NULL)
		return json_stringn(s.p, s.n);
	if (im_buf_add(&fixed, p + done, s.n - done) != 0) {
		im_buf_free(&fixed);
		return NULL;
	}
	v = json_stringn(fixed.p, fixed.len);
	im_buf_free(&fixed);
	return v;
}

/* ---- Input: matching keys ---- */

/*
 * The next rune of a name, folded as Go's foldName does (to the smallest rune
 * of its unicode.SimpleFold orbit) for every case that can meet an ASCII
 * field name: ASCII letters, the long s (U+017F, with S) and the Kelvin sign
 * (U+212A, with K).  Other non-ASCII runes compare unfolded.
 */
static uint32_t fold_next(const unsigned char *s, size_t n, size_t *i)
{
	uint32_t cp;
	size_t len = utf8_seq(s + *i, n - *i, &cp);

	if (len == 0) {
		(*i)++;
		return 0xfffd;
	}
	*i += len;
	if (cp >= 'a' && cp <= 'z')
		return cp - ('a' - 'A');
	if (cp == 0x17f)
		return 'S';
	if (cp == 0x212a)
		return 'K';
	return cp;
}

static bool key_match(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, j = 0;

	if (an == bn && memcmp(a, b, an) == 0)
		return true;
	while (i < an && j < bn)
		if (fold_next((const unsigned char *)a, an, &i) !=
		    fold_next((const unsigned char *)b, bn, &j))
			return false;
	return i == an && j == bn;
}

/*
 * Go decodes members in document order into the field each one matches,
 * so when several keys match (say "userID" and "UserID") the last one wins.
 * jansson merges exact duplicates into the first one's position keeping the
 * last value, which is the only case where this can differ from Go.
 */
bool json_key_match(const char *key, size_t key_len, const char *name)
{
	return key_match(key, key_len, name, strlen(name));
}

json_t *json_field(const json_t *obj, const char *key)
{
	size_t kn = strlen(key);
	json_t *found = NULL;

	if (!json_is_object(obj))
		return NULL;
	for (void *it = json_object_iter((json_t *)obj); it != NULL;
	     it = json_object_iter_next((json_t *)obj, it))
		if (key_match(json_object_iter_key(it), json_object_iter_key_len(it), key, kn))
			found = json_object_iter_value(it);
	return found;
}

/* ---- Input: typed getters ---- */

enum kind { K_STR, K_I32, K_I64, K_BOOL, K_OBJ, K_ARR, K_STRARR };

static const char *const kind_type[] = {"string", "int32", "int64",   "bool",
					"object", "array", "[]string"};

/* The word Go's UnmarshalTypeError uses for the JSON value v. */
static void go_value_name(const json_t *v, char *buf, size_t size)
{
	char num[40];

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		snprintf(buf, size, "object");
		break;
	case JSON_ARRAY:
		snprintf(buf, size, "array");
		break;
	case JSON_STRING:
		snprintf(buf, size, "string");
		break;
	case JSON_INTEGER:
		snprintf(buf, size, "number %" PRId64, (int64_t)json_integer_value(v));
		break;
	case JSON_REAL:
		go_float(json_real_value(v), num);
		snprintf(buf, size, "number %s", num);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(buf, size, "bool");
		break;
	default:
		snprintf(buf, size, "null");
		break;
	}
}

static int type_error(struct json_err *err, const json_t *v, const char *key, const char *type)
{
	char what[64];

	if (err != NULL) {
		go_value_name(v, what, sizeof(what));
		/* Go names a number only when it is a number of the wrong range or form. */
		if (strncmp(what, "number", 6) == 0 && strcmp(type, "int32") != 0 &&
		    strcmp(type, "int64") != 0)
			what[6] = '\0';
		snprintf(err->msg, sizeof(err->msg),
			 "json: cannot unmarshal %s into Go struct field .%s of type %s", what, key,
			 type);
	}
	return IM_EINVAL;
}

/* Checks one non-null member against the kind a getter wants. */
static int check_kind(const json_t *v, enum kind k, const char *key, struct json_err *err)
{
	switch (k) {
	case K_STR:
		return json_is_string(v) ? 0 : type_error(err, v, key, kind_type[k]);
	case K_I32:
	case K_I64:
		if (!json_is_integer(v))
			return type_error(err, v, key, kind_type[k]);
		if (k == K_I32 &&
		    (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX))
			return type_error(err, v, key, kind_type[k]);
		return 0;
	case K_BOOL:
		return json_is_boolean(v) ? 0 : type_error(err, v, key, kind_type[k]);
	case K_OBJ:
		return json_is_object(v) ? 0 : type_error(err, v, key, kind_type[k]);
	case K_ARR:
		return json_is_array(v) ? 0 : type_error(err, v, key, kind_type[k]);
	case K_STRARR:
		if (!json_is_array(v))
			return type_error(err, v, key, kind_type[k]);
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);
			if (!json_is_null(e) && !json_is_string(e))
				return type_error(err, e, key, "string");
		}
		return 0;
	}
	return IM_EINVAL;
}

/*
 * Visits every member matching key (invariant 3).  *val is the last non-null
 * value for scalars; for objects and arrays a later null resets it, as null
 * sets a Go pointer, slice or map to nil.
 */
static int lookup(const json_t *obj, const char *key, enum kind k, json_t **val,
		  struct json_err *err)
{
	size_t kn = strlen(key);
	bool scalar = k == K_STR || k == K_I32 || k == K_I64 || k == K_BOOL;

	*val = NULL;
	if (!json_is_object(obj))
		return 0;
	for (void *it = json_object_iter((json_t *)obj); it != NULL;
	     it = json_object_iter_next((json_t *)obj, it)) {
		if (!key_match(json_object_iter_key(it), json_object_iter_key_len(it), key, kn))
			continue;
		json_t *v = json_object_iter_value(it);
		if (json_is_null(v)) {
			if (!scalar)
				*val = NULL;
			continue;
		}
		int rv = check_kind(v, k, key, err);
		if (rv != 0) {
			*val = NULL;
			return rv;
		}
		*val = v;
	}
	return 0;
}

int json_get_str(const json_t *obj, const char *key, struct im_str *out, bool *present,
		 struct json_err *err)
{
	json_t *v;
	int rv = lookup(obj, key, K_STR, &v, err);

	*out = v ? (struct im_str){json_string_value(v), (uint32_t)json_string_length(v)}
		 : (struct im_str){"", 0};
	if (present != NULL)
		*present = v != NULL;
	return rv;
}

int json_get_i32(const json_t *obj, const char *key, int32_t *out, bool *present,
		 struct json_err *err)
{
	json_t *v;
	int rv = lookup(obj, key, K_I32, &v, err);

	*out = v ? (int32_t)json_integer_value(v) : 0;
	if (present != NULL)
		*present = v != NULL;
	return rv;
}

int json_get_i64(const json_t *obj, const char *key, int64_t *out, bool *present,
		 struct json_err *err)
{
	json_t *v;
	int rv = lookup(obj, key, K_I64, &v, err);

	*out = v ? (int64_t)json_integer_value(v) : 0;
	if (present != NULL)
		*present = v != NULL;
	return rv;
}

int json_get_bool(const json_t *obj, const char *key, bool *out, bool *present,
		  struct json_err *err)
{
	json_t *v;
	int rv = lookup(obj, key, K_BOOL, &v, err);

	*out = v ? json_is_true(v) : false;
	if (present != NULL)
		*present = v != NULL;
	return rv;
}

int json_get_obj(const json_t *obj, const char *key, json_t **out, struct json_err *err)
{
	return lookup(obj, key, K_OBJ, out, err);
}

int json_get_array(const json_t *obj, const char *key, json_t **out, struct json_err *err)
{
	return lookup(obj, key, K_ARR, out, err);
}

int json_get_str_array(const json_t *obj, const char *key, struct im_str **out, size_t *n,
		       struct json_err *err)
{
	json_t *v;
	int rv = lookup(obj, key, K_STRARR, &v, err);
	size_t count = v ? json_array_size(v) : 0;

	*out = NULL;
	*n = 0;
	if (rv != 0 || count == 0)
		return rv;
	if (count > SIZE_MAX / sizeof(**out) || (*out = im_malloc(count * sizeof(**out))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		json_t *e = json_array_get(v, i);
		(*out)[i] = json_is_string(e) ? (struct im_str){json_string_value(e),
								(uint32_t)json_string_length(e)}
					      : (struct im_str){"", 0};
	}
	*n = count;
	return 0;
}

/* ---- Input: parsing ---- */

static int hex4(const char *p, size_t n)
{
	int v = 0;

	if (n < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* Queues p[*done, at) plus a replacement into fix. */
static int splice(struct im_buf *fix, const char *p, size_t *done, size_t at, const char *rep,
		  size_t rep_len, size_t skip)
{
	if (im_buf_add(fix, p + *done, at - *done) != 0 || im_buf_add(fix, rep, rep_len) != 0)
		return -ENOMEM;
	*done = at + skip;
	return 0;
}

/*
 * One pass over a body before jansson sees it: enforces JSON_MAX_DEPTH (so
 * jansson's recursive parser stays shallow), refuses NUL bytes, and rewrites what Go accepts but
 * jansson rejects into what Go makes of it: bytes of invalid UTF-8 become
 * U+FFFD, and a \u escape of a UTF-16 surrogate that is not part of a valid
 * pair becomes \ufffd.  fix stays empty when nothing needs rewriting.
 */
static int prescan(const char *p, size_t n, struct im_buf *fix, struct json_err *err)
{
	size_t i = 0, done = 0;
	int depth = 0;
	bool in_str = false;
	uint32_t cp;

	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		if (c == 0) {
			/* Never valid JSON, and jansson misses it after a top-level literal. */
			snprintf(err->msg, sizeof(err->msg),
				 "invalid character '\\x00' at offset %zu", i);
			return IM_EINVAL;
		}
		if (c >= 0x80) {
			size_t len = utf8_seq((const unsigned char *)p + i, n - i, &cp);
			if (len != 0) {
				i += len;
				continue;
			}
			if (splice(fix, p, &done, i, utf8_fffd, 3, 1) != 0)
				return -ENOMEM;
			i++;
		} else if (in_str) {
			if (c == '"') {
				in_str = false;
			} else if (c == '\\' && i + 1 < n && p[i + 1] == 'u') {
				int u = hex4(p + i + 2, n - i - 2);
				if (u >= 0xd800 && u <= 0xdfff) {
					int lo = -1;
					if (u < 0xdc00 && i + 12 <= n && p[i + 6] == '\\' &&
					    p[i + 7] == 'u')
						lo = hex4(p + i + 8, 4);
					if (lo >= 0xdc00 && lo <= 0xdfff) {
						i += 12;
						continue;
					}
					if (splice(fix, p, &done, i, "\\ufffd", 6, 6) != 0)
						return -ENOMEM;
					i += 6;
					continue;
				}
				i++;
			} else if (c == '\\') {
				i++;
			}
			i++;
		} else {
			if (c == '"') {
				in_str = true;
			} else if (c == '[' || c == '{') {
				if (++depth > JSON_MAX_DEPTH) {
					snprintf(err->msg, sizeof(err->msg),
						 "exceeded max depth (%d) at offset %zu",
						 JSON_MAX_DEPTH, i);
					return IM_EINVAL;
				}
			} else if (c == ']' || c == '}') {
				depth--;
			}
			i++;
		}
	}
	if (fix->p != NULL && im_buf_add(fix, p + done, n - done) != 0)
		return -ENOMEM;
	return 0;
}

/* Go-like wording for a jansson error, with jansson's detail kept. */
static void parse_error(const json_error_t *je, struct json_err *err)
{
	switch (json_error_code(je)) {
	case json_error_premature_end_of_input:
		snprintf(err->msg, sizeof(err->msg), "unexpected end of JSON input");
		break;
	case json_error_end_of_input_expected:
		snprintf(err->msg, sizeof(err->msg),
			 "invalid character after top-level value at offset %d (%.120s)",
			 je->position, je->text);
		break;
	case json_error_out_of_memory:
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		break;
	case json_error_invalid_syntax:
	case json_error_invalid_format:
		snprintf(err->msg, sizeof(err->msg), "invalid character at offset %d (%.120s)",
			 je->position, je->text);
		break;
	default:
		snprintf(err->msg, sizeof(err->msg), "json: at offset %d: %.120s", je->position,
			 je->text);
		break;
	}
	/* jansson quotes the offending input, raw: keep control bytes out of logs. */
	for (char *c = err->msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/*
 * Differences from Go: integers beyond int64 and reals beyond double fail
 * the whole body (Go fails only a field that receives them), so does a NUL
 * escape inside a key, and nesting is limited to JSON_MAX_DEPTH (Go: 10000).
 * A top-level null decodes like Go into an empty object.
 */
json_t *json_parse_body(const char *body, size_t len, struct json_err *err)
{
	struct json_err dummy;
	struct im_buf fix = {0};
	json_error_t je;
	json_t *v;

	if (err == NULL)
		err = &dummy;
	err->msg[0] = '\0';
	if (body == NULL)
		len = 0;
	int rv = prescan(body, len, &fix, err);
	if (rv != 0) {
		if (rv == -ENOMEM)
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		im_buf_free(&fix);
		return NULL;
	}
	if (fix.p != NULL) {
		body = fix.p;
		len = fix.len;
	}
	v = json_loadb(len ? body : "", len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	im_buf_free(&fix);
	if (v == NULL) {
		parse_error(&je, err);
		return NULL;
	}
	if (json_is_object(v))
		return v;
	if (json_is_null(v)) {
		json_decref(v);
		v = json_object();
		if (v == NULL)
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		return v;
	}
	char what[64];
	go_value_name(v, what, sizeof(what));
	if (strncmp(what, "number", 6) == 0)
		what[6] = '\0';
	snprintf(err->msg, sizeof(err->msg),
		 "json: cannot unmarshal %s into Go value of type struct", what);
	json_decref(v);
	return NULL;
}
