/* envelope.c - JSON envelopes (openim-protocol.md §4.3), gzip framing with zlib, base64 with
 * mbedTLS. */
#include "envelope.h"

#include <errno.h>
#include <stdio.h>

#include <jansson.h>
#include <mbedtls/base64.h>
#include <zlib.h>

#include "json.h"

void env_req_free(struct env_req *r)
{
	im_free(r->own);
	r->own = NULL;
}

/* ---- base64 ---- */

static bool b64_std_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int env_b64_encode(const void *p, size_t n, struct im_buf *out)
{
	return im_b64_encode(out, p, n);
}

/*
 * Go's decoders are stricter than mbedtls_base64_decode() (which allows
 * spaces at line ends and a missing '='): the text is first normalised into
 * a padded standard-alphabet copy, checked here, then decoded by mbedTLS.
 */
int env_b64_decode(const char *s, size_t n, bool url, struct im_buf *out)
{
	if (n > SIZE_MAX / 2)
		return IM_ETOOBIG;
	char *t = im_malloc(n + 4);
	if (t == NULL)
		return -ENOMEM;
	size_t m = 0, pad = 0;
	int rc = IM_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!url && (c == '\r' || c == '\n'))
			continue;
		if (url) {
			if (c == '-')
				c = '+';
			else if (c == '_')
				c = '/';
			else if (c == '+' || c == '/' || c == '=')
				goto out;
		}
		if (c == '=') {
			pad++;
		} else if (!b64_std_char(c) || pad) {
			goto out; /* a foreign byte, or data after padding */
		}
		t[m++] = (char)c;
	}
	if (url) {
		if (m % 4 == 1)
			goto out;
		while (m % 4)
			t[m++] = '=', pad++;
	}
	if (m % 4 != 0 || pad > 2)
		goto out;
	size_t need = m / 4 * 3, olen = 0;
	rc = im_buf_reserve(out, need + 1);
	if (rc != 0)
		goto out;
	rc = IM_EINVAL;
	if (m && mbedtls_base64_decode((unsigned char *)out->p + out->len, need + 1, &olen,
				       (const unsigned char *)t, m) != 0)
		goto out;
	out->len += olen;
	out->p[out->len] = '\0';
	rc = 0;
out:
	im_free(t);
	return rc;
}

/* ---- JSON ---- */

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

/* Appends a view to the block `own`, fixing offsets later (the block may move). */
static size_t blk_add(struct im_buf *b, struct im_str s)
{
	size_t off = b->len;
	if (s.n && im_buf_add(b, s.p, s.n) != 0)
		return SIZE_MAX;
	return off;
}

int env_json_decode(const void *buf, size_t len, struct env_req *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	struct json_err je;
	json_t *root = json_parse_body(buf, len, &je);
	if (root == NULL) {
		set_err(err, errlen, je.msg);
		return IM_EINVAL;
	}
	struct im_str token, send_id, op_id, msg_incr, data = {"", 0};
	int32_t req_id = 0;
	int rc = 0;
	if (json_get_i32(root, "reqIdentifier", &req_id, NULL, &je) != 0 ||
	    json_get_str(root, "token", &token, NULL, &je) != 0 ||
	    json_get_str(root, "sendID", &send_id, NULL, &je) != 0 ||
	    json_get_str(root, "operationID", &op_id, NULL, &je) != 0 ||
	    json_get_str(root, "msgIncr", &msg_incr, NULL, &je) != 0) {
		set_err(err, errlen, je.msg);
		rc = IM_EINVAL;
		goto out;
	}
	json_t *d = json_field(root, "data");
	if (d != NULL && !json_is_null(d)) {
		if (!json_is_string(d)) {
			set_err(err, errlen, "json: cannot unmarshal data into []byte");
			rc = IM_EINVAL;
			goto out;
		}
		data = (struct im_str){json_string_value(d), (uint32_t)json_string_length(d)};
	}
	/* One block: the four strings, then the decoded data. */
	struct im_buf b = {0};
	size_t o_tok = blk_add(&b, token), o_send = blk_add(&b, send_id);
	size_t o_op = blk_add(&b, op_id), o_incr = blk_add(&b, msg_incr), o_data = b.len;
	if (o_tok == SIZE_MAX || o_send == SIZE_MAX || o_op == SIZE_MAX || o_incr == SIZE_MAX) {
		rc = -ENOMEM;
	} else if (data.n && (rc = env_b64_decode(data.p, data.n, false, &b)) != 0) {
		if (rc == IM_EINVAL)
			set_err(err, errlen, "illegal base64 data in data");
	} else if (b.p == NULL && im_buf_reserve(&b, 1) != 0) {
		rc = -ENOMEM;
	}
	if (rc != 0) {
		im_buf_free(&b);
		goto out;
	}
	out->req_id = req_id;
	out->token = (struct im_str){b.p + o_tok, token.n};
	out->send_id = (struct im_str){b.p + o_send, send_id.n};
	out->op_id = (struct im_str){b.p + o_op, op_id.n};
	out->msg_incr = (struct im_str){b.p + o_incr, msg_incr.n};
	out->data = (struct im_str){b.p + o_data, (uint32_t)(b.len - o_data)};
	out->own = b.p;
out:
	json_decref(root);
	return rc;
}

int env_json_encode(const struct env_resp *r, struct im_buf *out)
{
	size_t old = out->len;
	int rc = -ENOMEM;
	struct im_buf b64 = {0};
	json_t *o = json_object();
	if (o == NULL)
		return -ENOMEM;
	json_t *data = json_null();
	if (r->has_data) {
		if (env_b64_encode(r->data, r->len, &b64) != 0)
			goto out;
		data = json_stringn(b64.p ? b64.p : "", b64.len);
	}
	if (json_object_set_new(o, "reqIdentifier", json_integer(r->req_id)) != 0 ||
	    json_object_set_new(o, "msgIncr", json_str(r->msg_incr)) != 0 ||
	    json_object_set_new(o, "operationID", json_str(r->op_id)) != 0 ||
	    json_object_set_new(o, "errCode", json_integer(r->err_code)) != 0 ||
	    json_object_set_new(o, "errMsg", json_str(r->err_msg)) != 0 ||
	    json_object_set_new(o, "data", data) != 0)
		goto out;
	rc = json_go_dump(o, out);
out:
	if (rc != 0)
		out->len = old;
	json_decref(o);
	im_buf_free(&b64);
	return rc;
}

/* ---- gzip ---- */

/* zlib allocates through the project's wrappers, so tests can inject OOM. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	IM_UNUSED(opaque);
	return im_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
	IM_UNUSED(opaque);
	im_free(p);
}

int env_gzip(const void *in, size_t n, struct im_buf *out)
{
	if (n > UINT32_MAX)
		return IM_ETOOBIG;
	z_stream z = {.zalloc = z_alloc, .zfree = z_free};
	size_t old = out->len;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	size_t bound = deflateBound(&z, (uLong)n);
	int rc = im_buf_reserve(out, bound);
	if (rc == 0) {
		z.next_in = (Bytef *)in;
		z.avail_in = (uInt)n;
		z.next_out = (Bytef *)out->p + out->len;
		z.avail_out = (uInt)bound;
		/* deflateBound() guarantees one call finishes the stream. */
		rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : -ENOMEM;
		if (rc == 0)
			out->len += bound - z.avail_out;
	}
	deflateEnd(&z);
	if (rc != 0)
		out->len = old;
	else
		out->p[out->len] = '\0';
	return rc;
}

int env_gunzip(const void *in, size_t n, size_t max_out, struct im_buf *out)
{
	if (n > UINT32_MAX)
		return IM_ETOOBIG;
	z_stream z = {.zalloc = z_alloc, .zfree = z_free};
	size_t old = out->len;
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	int rc = n ? 0 : IM_EINVAL;
	while (rc == 0) {
		if (out->len - old >= max_out) {
			/* Full: only a clean end of input (or an empty tail) is acceptable. */
			unsigned char probe;
			z.next_out = &probe;
			z.avail_out = 1;
			int zr = inflate(&z, Z_NO_FLUSH);
			if (z.avail_out == 0)
				rc = IM_ETOOBIG;
			else if (zr == Z_STREAM_END && z.avail_in == 0)
				break;
			else if (zr != Z_STREAM_END)
				rc = zr == Z_MEM_ERROR ? -ENOMEM : IM_EINVAL;
			else if (inflateReset(&z) != Z_OK)
				rc = IM_EINVAL;
			continue;
		}
		size_t room = IM_MIN(max_out - (out->len - old), (size_t)64 * 1024);
		if ((rc = im_buf_reserve(out, room)) != 0)
			break;
		z.next_out = (Bytef *)out->p + out->len;
		z.avail_out = (uInt)room;
		int zr = inflate(&z, Z_NO_FLUSH);
		out->len += room - z.avail_out;
		if (zr == Z_STREAM_END) {
			if (z.avail_in == 0)
				break;
			/* Another member follows (Go's reader is multistream). */
			if (inflateReset(&z) != Z_OK)
				rc = IM_EINVAL;
		} else if (zr == Z_MEM_ERROR) {
			rc = -ENOMEM;
		} else if (zr != Z_OK || (z.avail_in == 0 && z.avail_out != 0)) {
			rc = IM_EINVAL; /* corrupt, or the input ended mid-stream */
		}
	}
	inflateEnd(&z);
	if (rc != 0)
		out->len = old;
	if (out->p)
		out->p[out->len] = '\0';
	return rc;
}
