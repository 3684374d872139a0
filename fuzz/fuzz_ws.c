/* fuzz_ws.c - everything after the WebSocket handshake: wslay framing, the text heartbeat, gzip,
 * JSON and gob envelopes, dispatch, 2003/2004/2005, pushes, kicks and online-status changes.
 *
 * Input: byte 0 chooses the connection (bit 0 gob, bit 1 gzip, bit 2
 * isMsgResp, bit 3 platform 5 instead of 2, bit 4 answer held requests before
 * the connection goes instead of after); byte 1 where to split the rest; the
 * rest is fed as raw bytes read after the 101 into one connection of user u1,
 * through the socket-free seam (gateway_int.h).  A second connection (u2,
 * JSON) is subscribed to u1 first, so u1's online changes are published.
 * The application answers 1001 at once (echo), holds 1002, pushes to u1 on
 * 1003, kicks u1 on 1004, and does not know other ids.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gateway_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct srv srv;
static struct gw *gw;
static struct gw_req *held[64];
static int n_held;

static int handler(struct srv *s, struct gw_req *req)
{
	IM_UNUSED(s);
	switch (req->req_id) {
	case 1001:
		gw_reply(req, 0, NULL, req->data, req->len);
		return 0;
	case 1002:
		if (n_held == (int)IM_ARRAY_LEN(held)) {
			gw_reply(req, 1001, NULL, NULL, 0);
			return 0;
		}
		held[n_held++] = req;
		return 0;
	case 1003:
		gw_push(gw, IM_STR_LIT("u1"), 2001, req->op_id, req->data, req->len);
		gw_reply(req, 0, NULL, "", 0);
		return 0;
	case 1004:
		gw_kick(gw, IM_STR_LIT("u1"), 0);
		gw_reply(req, 0, NULL, NULL, 0);
		return 0;
	default:
		return -1;
	}
}

static void discard(void *arg, const uint8_t *d, size_t n)
{
	IM_UNUSED(arg);
	IM_UNUSED(d);
	IM_UNUSED(n);
}

static void release_held(void)
{
	for (int i = 0; i < n_held; i++)
		gw_reply(held[i], 0, NULL, "late", 4);
	n_held = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (gw == NULL) {
		struct gw_opts o = {.handler = handler, .send_queue = 8};
		gw = gw_test_new(&srv, &o);
		if (gw == NULL)
			abort();
		im_log_level = IM_LOG_OFF;
	}
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	size_t cut = size > 2 ? data[1] % (size - 2 + 1) : 0;
	data += 2;
	size -= 2;

	/* The subscriber: u2 subscribes to u1 (a masked 2005 request). */
	struct gw_params p2 = {.token = IM_STR_LIT("t2"),
			       .user_id = IM_STR_LIT("u2"),
			       .platform_id = 5,
			       .msg_resp = true};
	struct gw_conn *sub = gw_test_conn(gw, &p2, discard, NULL);
	if (sub == NULL)
		abort();
	static const char js[] = "{\"reqIdentifier\":2005,\"sendID\":\"u2\",\"msgIncr\":\"1\","
				 "\"operationID\":\"o\",\"data\":\"CgJ1MQ==\"}";
	uint8_t fr[256] = {0x82, 0x80 | (sizeof(js) - 1), 0, 0, 0, 0};
	memcpy(fr + 6, js, sizeof(js) - 1);
	gw_test_feed(sub, fr, 6 + sizeof(js) - 1);

	struct gw_params p = {.token = IM_STR_LIT("t1"),
			      .user_id = IM_STR_LIT("u1"),
			      .platform_id = (flags & 8) ? 5 : 2,
			      .gob = flags & 1,
			      .gzip = flags & 2,
			      .msg_resp = flags & 4};
	struct gw_conn *c = gw_test_conn(gw, &p, discard, NULL);
	if (c == NULL)
		abort();
	if (gw_test_feed(c, data, cut) == 0)
		gw_test_feed(c, data + cut, size - cut);
	if (flags & 16)
		release_held();
	gw_test_conn_free(c);
	release_held();
	gw_test_conn_free(sub);
	if (gw_user_conns(gw, IM_STR_LIT("u1"), NULL, NULL) != 0 ||
	    gw_user_conns(gw, IM_STR_LIT("u2"), NULL, NULL) != 0)
		abort();
	return 0;
}
