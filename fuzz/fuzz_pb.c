/* fuzz_pb.c - protobuf requests from clients: unpack as the message the first byte selects,
 * then repack, re-unpack and check options and the push framing around the bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every message a client sends as protobuf (openim-protocol.md §3.9, §4.4). */
static const ProtobufCMessageDescriptor *const descs[] = {
    &openim__sdkws__msg_data__descriptor,
    &openim__msg__get_seq_message_req__descriptor,
    &openim__sdkws__pull_message_by_seqs_req__descriptor,
    &openim__msg__get_conversations_has_read_and_max_seq_req__descriptor,
    &openim__jssdk__get_active_conversations_req__descriptor,
    &openim__jssdk__get_conversations_req__descriptor,
    &openim__sdkws__sub_user_online_status__descriptor,
};

/* A MsgData: the options rule, and the push framing decodes back to the same message. */
static void check_msgdata(Openim__Sdkws__MsgData *m, const struct im_buf *packed)
{
	pb_opt(m, PB_OPT_HISTORY);
	if (pb_opt_set(m, PB_OPT_SENDER_SYNC, false) == 0 && pb_opt(m, PB_OPT_SENDER_SYNC))
		abort();

	struct im_buf out = {0};
	struct im_str blob = {packed->p, (uint32_t)packed->len};
	if (pb_push_messages(&out, false, IM_STR_LIT("si_a_b"), &blob, 1) != 0)
		return;
	ProtobufCMessage *pm;
	if (pb_unpack(&openim__sdkws__push_messages__descriptor, (const uint8_t *)out.p, out.len,
		      &pm) != 0)
		abort();
	Openim__Sdkws__PushMessages *p = (Openim__Sdkws__PushMessages *)pm;
	if (p->n_msgs != 1 || p->msgs[0]->value == NULL || p->msgs[0]->value->n_msgs != 1)
		abort();
	struct im_buf again = {0};
	if (pb_pack(&p->msgs[0]->value->msgs[0]->base, &again) == 0 &&
	    (again.len != packed->len || memcmp(again.p, packed->p, again.len) != 0))
		abort();
	im_buf_free(&again);
	pb_free(pm);
	im_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const ProtobufCMessageDescriptor *d = descs[data[0] % IM_ARRAY_LEN(descs)];
	ProtobufCMessage *m;

	if (pb_unpack(d, data + 1, size - 1, &m) != 0)
		return 0;

	/* Repacking is canonical: a second round gives the same bytes. */
	struct im_buf b1 = {0}, b2 = {0};
	ProtobufCMessage *m2;
	if (pb_pack(m, &b1) != 0)
		abort();
	if (pb_unpack(d, (const uint8_t *)b1.p, b1.len, &m2) != 0)
		abort();
	if (pb_pack(m2, &b2) != 0 || b2.len != b1.len || memcmp(b1.p, b2.p, b1.len) != 0)
		abort();
	if (d == &openim__sdkws__msg_data__descriptor)
		check_msgdata((Openim__Sdkws__MsgData *)m2, &b1);

	pb_free(m2);
	pb_free(m);
	im_buf_free(&b1);
	im_buf_free(&b2);
	return 0;
}
