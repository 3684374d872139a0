/* fuzz_gob.c - the gob decoder of client envelopes (openim-protocol.md §4.9).
 *
 * Input: one WebSocket binary frame as the Go SDK sends it (type definitions
 * and a GeneralWsReq value).  Whatever decodes is encoded back as a Resp
 * frame and decoded again: the fields matched by name must survive.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct env_req r;
	char err[128];
	if (gob_decode_req(data, size, &r, err, sizeof(err)) != 0)
		return 0;
	struct env_resp out = {.req_id = r.req_id,
			       .msg_incr = r.msg_incr,
			       .op_id = r.op_id,
			       .err_code = 1,
			       .err_msg = r.token,
			       .data = r.data.p,
			       .len = r.data.n,
			       .has_data = true};
	struct im_buf b = {0};
	if (gob_encode_resp(&out, &b) == 0) {
		struct env_req back;
		if (gob_decode_req((const uint8_t *)b.p, b.len, &back, NULL, 0) != 0 ||
		    back.req_id != r.req_id || !im_str_eq(back.msg_incr, r.msg_incr) ||
		    !im_str_eq(back.op_id, r.op_id) || !im_str_eq(back.data, r.data))
			abort();
	}
	im_buf_free(&b);
	return 0;
}
