/* json.h - Go-compatible JSON: encoding/json's output and its lenient, case-insensitive input. */
#ifndef IM_JSON_H
#define IM_JSON_H

#include <jansson.h>

#include "common.h"

/*
 * Output.  json_go_dump() writes v compactly, keys in insertion order (build
 * objects in the order the Go struct declares its fields), and escapes like
 * Go's encoding/json (1.22 and later): '<', '>' and '&' as \u003c \u003e
 * \u0026, U+2028 and U+2029 as \u2028 \u2029, control characters as \u00xx
 * except \b \f \n \r \t, and '/' unescaped; reals as Go formats float64.
 * Appends to out.  Returns 0, -ENOMEM, or IM_EINVAL past 4096 levels.
 */
int json_go_dump(const json_t *v, struct im_buf *out);

/* A JSON string from a view (may contain any bytes: invalid UTF-8 becomes U+FFFD as in Go). */
json_t *json_str(struct im_str s);

/*
 * Input.  Go decodes a JSON object into a struct by matching keys
 * case-insensitively (an exact match wins), ignoring unknown keys, treating
 * null as "leave the zero value", and failing on a type mismatch.  These
 * getters do the same.  Each returns 0 (found and converted, or absent/null:
 * then the zero value is stored and *present, if given, is false) or
 * IM_EINVAL with a Go-like message in err (e.g. "json: cannot unmarshal
 * number into Go struct field .userID of type string").
 */
struct json_err {
	char msg[200];
};

/* The member of obj matching key as Go would, or NULL. */
json_t *json_field(const json_t *obj, const char *key);

/*
 * True if the object key (key_len bytes) matches the ASCII field name as
 * Go's decoder matches them: exactly, or case-insensitively (with the Kelvin
 * sign and long s folding to K and S).  For callers that visit every member.
 */
bool json_key_match(const char *key, size_t key_len, const char *name);

int json_get_str(const json_t *obj, const char *key, struct im_str *out, bool *present,
		 struct json_err *err);
int json_get_i32(const json_t *obj, const char *key, int32_t *out, bool *present,
		 struct json_err *err);
int json_get_i64(const json_t *obj, const char *key, int64_t *out, bool *present,
		 struct json_err *err);
int json_get_bool(const json_t *obj, const char *key, bool *out, bool *present,
		  struct json_err *err);
/* An object (or null/absent: *out = NULL). */
int json_get_obj(const json_t *obj, const char *key, json_t **out, struct json_err *err);
/*
 * An array of strings.  *out is an array of *n views allocated with
 * im_malloc (caller frees; NULL when n == 0); the views point into obj.
 */
int json_get_str_array(const json_t *obj, const char *key, struct im_str **out, size_t *n,
		       struct json_err *err);
/* An array (or null/absent: *out = NULL). */
int json_get_array(const json_t *obj, const char *key, json_t **out, struct json_err *err);

/*
 * Parses a request body.  Returns the value (caller json_decref) or NULL with
 * a Go-like message in err ("unexpected end of JSON input",
 * "invalid character ...").
 * Integers keep 64-bit precision.  The top level must be an object.
 */
json_t *json_parse_body(const char *body, size_t len, struct json_err *err);

#endif
