/* envelope.h - the WebSocket envelopes of openim-protocol.md §4.3 in JSON, their gzip framing, and
 * base64. */
#ifndef IM_ENVELOPE_H
#define IM_ENVELOPE_H

#include "common.h"

/*
 * A client request (Go's Req / the SDK's GeneralWsReq).  The views point
 * either into the bytes given to the decoder (gob) or into `own`, one block
 * the JSON decoder allocates (its strings are copied out of the parsed JSON);
 * env_req_free() releases `own`.  Strings may contain any bytes, NUL included.
 */
struct env_req {
	int32_t req_id; /* reqIdentifier; 0 when absent */
	struct im_str token;
	struct im_str send_id;
	struct im_str op_id;
	struct im_str msg_incr;
	struct im_str data; /* the protobuf request bytes; empty when absent or null */
	void *own;
};

/* Releases what a decoder allocated for r (nothing for gob).  Safe on a zeroed r. */
void env_req_free(struct env_req *r);

/* A server frame (Go's Resp).  has_data false: JSON "data":null, gob Data omitted. */
struct env_resp {
	int32_t req_id;
	struct im_str msg_incr;
	struct im_str op_id;
	int32_t err_code;
	struct im_str err_msg;
	const void *data;
	size_t len;
	bool has_data;
};

/*
 * Decodes a JSON envelope as Go's json.Unmarshal fills Req: keys match
 * case-insensitively, unknown keys are ignored, null leaves a field empty, a
 * wrong type fails, "data" is standard base64 with padding (line breaks are
 * skipped, as Go's decoder does).  The top level must be an object.
 * Returns 0, -ENOMEM, or IM_EINVAL with a reason in err (may be NULL).
 * On error *out is zeroed and owns nothing.
 */
int env_json_decode(const void *buf, size_t len, struct env_req *out, char *err, size_t errlen);

/*
 * Appends the JSON of r exactly as the Go server writes it:
 * {"reqIdentifier":N,"msgIncr":"..","operationID":"..","errCode":N,"errMsg":"..","data":"<base64>"|null}
 * Returns 0 or -ENOMEM (out keeps its old length).
 */
int env_json_encode(const struct env_resp *r, struct im_buf *out);

/*
 * gzip (RFC 1952) as Go's compress/gzip writes and reads it.  env_gzip
 * appends one gzip member of in[0..n).  env_gunzip appends the inflated
 * bytes of one or more concatenated members, failing with IM_ETOOBIG beyond
 * max_out bytes (a bomb guard) and IM_EINVAL on bad or truncated data.  Both
 * return 0 or -ENOMEM too; on error out keeps its old length.
 */
int env_gzip(const void *in, size_t n, struct im_buf *out);
int env_gunzip(const void *in, size_t n, size_t max_out, struct im_buf *out);

/* The inflate cap the gateway uses for compressed frames. */
#define ENV_GUNZIP_MAX (1u << 20)

/*
 * Base64 with mbedTLS.  env_b64_encode appends the standard padded text of
 * p[0..n) (NUL-terminated in out).  env_b64_decode appends the bytes of the
 * standard padded text s[0..n) ("\r" and "\n" are skipped; url=true: the
 * URL-safe alphabet without padding, Go's RawURLEncoding).  Return 0,
 * -ENOMEM, or IM_EINVAL for text that is not such base64.
 */
int env_b64_encode(const void *p, size_t n, struct im_buf *out);
int env_b64_decode(const char *s, size_t n, bool url, struct im_buf *out);

#endif
