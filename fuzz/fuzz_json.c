/* fuzz_json.c - request bodies: parse, every getter over likely keys, Go-style dump and its
 * invariants. */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {"userID",	 "users",      "platformID", "secret", "userIDs",
				   "pagination", "pageNumber", "groupInfo",  "a",      ""};

/* Runs every getter on obj for each key; checks the outputs are consistent. */
static void get_all(const json_t *obj)
{
	for (size_t k = 0; k < IM_ARRAY_LEN(keys); k++) {
		struct json_err e;
		struct im_str s, *arr;
		int32_t i32;
		int64_t i64;
		bool b, present;
		json_t *v;
		size_t n;

		if (json_get_str(obj, keys[k], &s, &present, &e) == 0 && !present && s.n != 0)
			abort();
		json_get_i32(obj, keys[k], &i32, &present, &e);
		json_get_i64(obj, keys[k], &i64, NULL, &e);
		json_get_bool(obj, keys[k], &b, &present, &e);
		if (json_get_obj(obj, keys[k], &v, &e) == 0 && v != NULL && !json_is_object(v))
			abort();
		if (json_get_array(obj, keys[k], &v, &e) == 0 && v != NULL) {
			for (size_t i = 0; i < json_array_size(v) && i < 4; i++)
				if (json_is_object(json_array_get(v, i)))
					get_all(json_array_get(v, i));
		}
		if (json_get_str_array(obj, keys[k], &arr, &n, &e) == 0) {
			for (size_t i = 0; i < n; i++)
				if (arr[i].n > 0 && arr[i].p == NULL)
					abort();
			im_free(arr);
		}
		json_field(obj, keys[k]);
	}
}

/* Output invariants: valid JSON, and no byte Go would have escaped left raw. */
static void check_dump(const json_t *v)
{
	struct im_buf out = {0};
	json_error_t je;

	if (json_go_dump(v, &out) != 0)
		return;
	for (size_t i = 0; i < out.len; i++) {
		unsigned char c = (unsigned char)out.p[i];
		if (c < 0x20 || c == '<' || c == '>' || c == '&')
			abort();
		if (c == 0xe2 && i + 2 < out.len && (unsigned char)out.p[i + 1] == 0x80 &&
		    ((unsigned char)out.p[i + 2] == 0xa8 || (unsigned char)out.p[i + 2] == 0xa9))
			abort();
	}
	json_t *back = json_loadb(out.p, out.len,
				  JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
	if (back == NULL)
		abort();
	json_decref(back);
	im_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_err err;
	json_t *v = json_parse_body((const char *)data, size, &err);

	if (v != NULL) {
		get_all(v);
		check_dump(v);
		json_decref(v);
	} else if (err.msg[0] == '\0') {
		abort();
	}
	/* The raw input as a string value: any bytes must come out as valid, escaped JSON. */
	json_t *s = json_str((struct im_str){(const char *)data, (uint32_t)size});
	if (s == NULL)
		abort();
	check_dump(s);
	json_decref(s);
	return 0;
}
