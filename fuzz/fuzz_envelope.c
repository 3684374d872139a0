/* fuzz_envelope.c - JSON envelope decoding and gzip inflation (openim-protocol.md §4.3).
 *
 * Input: one binary frame of a JS client.  It is decoded as a JSON Req; a
 * decoded request is encoded back as a Resp and must stay valid JSON.  The
 * same bytes also go through the gzip reader with a small cap, and when they
 * inflate, the result is decoded as an envelope too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode(const void *p, size_t n)
{
	struct env_req r;
	char err[128];
	if (env_json_decode(p, n, &r, err, sizeof(err)) != 0)
		return;
	struct env_resp out = {.req_id = r.req_id,
			       .msg_incr = r.msg_incr,
			       .op_id = r.op_id,
			       .err_msg = r.send_id,
			       .data = r.data.p,
			       .len = r.data.n,
			       .has_data = r.data.n > 0};
	struct im_buf b = {0};
	if (env_json_encode(&out, &b) == 0) {
		struct env_req back;
		if (env_json_decode(b.p, b.len, &back, NULL, 0) != 0 || back.req_id != r.req_id ||
		    back.data.n != r.data.n || memcmp(back.data.p, r.data.p, r.data.n) != 0)
			abort();
		env_req_free(&back);
	}
	im_buf_free(&b);
	env_req_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode(data, size);
	struct im_buf plain = {0};
	if (env_gunzip(data, size, 1u << 16, &plain) == 0)
		decode(plain.p, plain.len);
	im_buf_free(&plain);
	return 0;
}
