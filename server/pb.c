/* pb.c - protobuf-c over im_malloc, MsgData options, the field writer and base64. */
#include <errno.h>

#include <mbedtls/base64.h>

#include "pb.h"

/* Largest varint length of a 32-bit value: the room pb_w_begin() keeps for a length. */
#define LEN_ROOM 5

static void *alloc_im(void *data, size_t size)
{
	void *p = im_malloc(size);
	if (p == NULL && data != NULL)
		*(bool *)data = true;
	return p;
}

static void free_im(void *data, void *p)
{
	IM_UNUSED(data);
	im_free(p);
}

ProtobufCAllocator pb_allocator = {alloc_im, free_im, NULL};

/*
 * Whether m or a message inside it kept an unknown field numbered 0.  Field 0
 * is invalid (Go's decoder rejects it), but protobuf-c 1.4.1 accepts it in a
 * non-minimal tag (81 00) and keeps it, then writes it minimally (01), which
 * protobuf-c itself refuses: such a message would repack into bytes no
 * client can read.
 */
static bool has_field_zero(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *at = (const char *)m + f->offset;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)at;
			for (size_t j = 0; j < n; j++)
				if (has_field_zero(arr[j]))
					return true;
		} else {
			const ProtobufCMessage *sub = *(ProtobufCMessage *const *)at;
			if (sub != NULL && has_field_zero(sub))
				return true;
		}
	}
	return false;
}

int pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
	      ProtobufCMessage **out)
{
	/* protobuf-c answers NULL both for bad bytes and for a failed allocation:
	 * a private allocator records the latter. */
	bool oom = false;
	ProtobufCAllocator a = {alloc_im, free_im, &oom};

	*out = protobuf_c_message_unpack(desc, &a, len, buf);
	if (*out == NULL)
		return oom ? -ENOMEM : IM_EINVAL;
	if (has_field_zero(*out)) {
		pb_free(*out);
		*out = NULL;
		return IM_EINVAL;
	}
	return 0;
}

void pb_free(ProtobufCMessage *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, &pb_allocator);
}

int pb_msgdata_unpack(const uint8_t *buf, size_t len, Openim__Sdkws__MsgData **out)
{
	return pb_unpack(&openim__sdkws__msg_data__descriptor, buf, len, (ProtobufCMessage **)out);
}

void pb_msgdata_free(Openim__Sdkws__MsgData *m)
{
	pb_free(m != NULL ? &m->base : NULL);
}

Openim__Sdkws__MsgData *pb_msgdata_new(void)
{
	Openim__Sdkws__MsgData *m = im_malloc(sizeof(*m));
	if (m != NULL)
		openim__sdkws__msg_data__init(m);
	return m;
}

int pb_pack(const ProtobufCMessage *m, struct im_buf *out)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	int rc = im_buf_reserve(out, n);
	if (rc != 0)
		return rc;
	size_t wrote = protobuf_c_message_pack(m, (uint8_t *)out->p + out->len);
	out->len += wrote;
	out->p[out->len] = '\0';
	return 0;
}

bool pb_opt(const Openim__Sdkws__MsgData *m, const char *key)
{
	for (size_t i = m->n_options; i > 0; i--) {
		const Openim__Sdkws__MsgData__OptionsEntry *e = m->options[i - 1];
		if (e->key != NULL && strcmp(e->key, key) == 0)
			return e->value;
	}
	return true;
}

int pb_opt_set(Openim__Sdkws__MsgData *m, const char *key, bool value)
{
	bool found = false;
	for (size_t i = 0; i < m->n_options; i++) {
		Openim__Sdkws__MsgData__OptionsEntry *e = m->options[i];
		if (e->key != NULL && strcmp(e->key, key) == 0) {
			e->value = value;
			found = true;
		}
	}
	if (found)
		return 0;

	/* Append: a new array (the allocator has no realloc), then the entry. */
	Openim__Sdkws__MsgData__OptionsEntry **arr = im_malloc((m->n_options + 1) * sizeof(*arr));
	Openim__Sdkws__MsgData__OptionsEntry *e = im_malloc(sizeof(*e));
	char *k = im_strndup(key, strlen(key));
	if (arr == NULL || e == NULL || k == NULL) {
		im_free(k);
		im_free(e);
		im_free(arr);
		return -ENOMEM;
	}
	openim__sdkws__msg_data__options_entry__init(e);
	e->key = k;
	e->value = value;
	if (m->n_options > 0)
		memcpy(arr, m->options, m->n_options * sizeof(*arr));
	arr[m->n_options] = e;
	im_free(m->options);
	m->options = arr;
	m->n_options++;
	return 0;
}

/* ---- the writer ---- */

void pb_w_init(struct pb_w *w, struct im_buf *out)
{
	w->b = out;
	w->err = 0;
}

int pb_w_done(const struct pb_w *w)
{
	return w->err;
}

void pb_w_raw(struct pb_w *w, const void *p, size_t n)
{
	if (w->err == 0 && n > 0)
		w->err = im_buf_add(w->b, p, n);
}

/* Encodes v as a varint into p (at least 10 bytes); returns its length. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

void pb_w_varint(struct pb_w *w, uint64_t v)
{
	uint8_t tmp[10];
	pb_w_raw(w, tmp, put_varint(tmp, v));
}

void pb_w_tag(struct pb_w *w, uint32_t field, enum pb_wire wire)
{
	pb_w_varint(w, (uint64_t)field << 3 | (uint64_t)wire);
}

void pb_w_int64(struct pb_w *w, uint32_t field, int64_t v)
{
	pb_w_uint64(w, field, (uint64_t)v);
}

void pb_w_uint64(struct pb_w *w, uint32_t field, uint64_t v)
{
	if (v == 0)
		return;
	pb_w_tag(w, field, PB_WIRE_VARINT);
	pb_w_varint(w, v);
}

void pb_w_bool(struct pb_w *w, uint32_t field, bool v)
{
	pb_w_uint64(w, field, v ? 1 : 0);
}

void pb_w_str(struct pb_w *w, uint32_t field, struct im_str s)
{
	if (s.n > 0)
		pb_w_bytes(w, field, s.p, s.n);
}

void pb_w_bytes(struct pb_w *w, uint32_t field, const void *p, size_t n)
{
	pb_w_tag(w, field, PB_WIRE_LEN);
	pb_w_varint(w, n);
	pb_w_raw(w, p, n);
}

size_t pb_w_begin(struct pb_w *w, uint32_t field)
{
	static const uint8_t room[LEN_ROOM];

	pb_w_tag(w, field, PB_WIRE_LEN);
	pb_w_raw(w, room, sizeof(room));
	return w->err == 0 ? w->b->len : 0;
}

void pb_w_end(struct pb_w *w, size_t mark)
{
	if (w->err != 0)
		return;
	size_t body = w->b->len - mark;
	if (body > UINT32_MAX) {
		w->err = IM_ETOOBIG;
		return;
	}
	/* Write the minimal length in front of the body and close the gap. */
	uint8_t tmp[10];
	size_t k = put_varint(tmp, body);
	char *start = w->b->p + mark - LEN_ROOM;
	memcpy(start, tmp, k);
	if (k < LEN_ROOM) {
		memmove(start + k, w->b->p + mark, body);
		w->b->len -= LEN_ROOM - k;
		w->b->p[w->b->len] = '\0';
	}
}

void pb_pull_msgs_map_entry_begin(struct pb_w *w, bool notification, struct im_str conv_id,
				  struct pb_entry *e)
{
	e->entry = pb_w_begin(w, notification ? 2 : 1);
	pb_w_bytes(w, 1, conv_id.p, conv_id.n); /* key */
	e->value = pb_w_begin(w, 2);		/* value: PullMsgs */
}

void pb_pull_msgs_add(struct pb_w *w, struct im_str msg)
{
	pb_w_bytes(w, 1, msg.p, msg.n);
}

void pb_pull_msgs_add_patched(struct pb_w *w, struct im_str msg, int64_t seq, int32_t status)
{
	if (seq == 0 && status == 0) {
		pb_pull_msgs_add(w, msg);
		return;
	}
	/* The element's length is known up front: no placeholder needed. */
	uint8_t tail[2 * 12];
	size_t n = 0;
	if (seq != 0) {
		n += put_varint(tail + n, 14 << 3 | PB_WIRE_VARINT);
		n += put_varint(tail + n, (uint64_t)seq);
	}
	if (status != 0) {
		n += put_varint(tail + n, 17 << 3 | PB_WIRE_VARINT);
		n += put_varint(tail + n, (uint64_t)(int64_t)status);
	}
	pb_w_tag(w, 1, PB_WIRE_LEN);
	pb_w_varint(w, (uint64_t)msg.n + n);
	pb_w_raw(w, msg.p, msg.n);
	pb_w_raw(w, tail, n);
}

void pb_pull_msgs_map_entry_end(struct pb_w *w, struct pb_entry *e, bool is_end, int64_t end_seq)
{
	pb_w_bool(w, 2, is_end);
	pb_w_int64(w, 3, end_seq);
	pb_w_end(w, e->value);
	pb_w_end(w, e->entry);
}

int pb_pull_msgs_map_entry(struct pb_w *w, bool notification, struct im_str conv_id,
			   const struct im_str *msgs, size_t n, bool is_end, int64_t end_seq)
{
	struct pb_entry e;

	pb_pull_msgs_map_entry_begin(w, notification, conv_id, &e);
	for (size_t i = 0; i < n; i++)
		pb_pull_msgs_add(w, msgs[i]);
	pb_pull_msgs_map_entry_end(w, &e, is_end, end_seq);
	return pb_w_done(w);
}

int pb_push_messages(struct im_buf *out, bool notification, struct im_str conv_id,
		     const struct im_str *msgs, size_t n)
{
	size_t len0 = out->len;
	struct pb_w w;

	pb_w_init(&w, out);
	int rc = pb_pull_msgs_map_entry(&w, notification, conv_id, msgs, n, false, 0);
	if (rc != 0)
		out->len = len0;
	return rc;
}

/* ---- base64 ---- */

int pb_base64_std_encode(const void *p, size_t n, struct im_buf *out)
{
	return im_b64_encode(out, p, n);
}

int pb_base64_std_decode(const char *s, size_t n, struct im_buf *out)
{
	size_t need = 0, chars = 0;

	/* Go's StdEncoding ignores line breaks and wants whole padded groups;
	 * mbedTLS 2.28 silently decodes a trailing partial group to nothing. */
	for (size_t i = 0; i < n; i++)
		chars += s[i] != '\r' && s[i] != '\n';
	if (chars % 4 != 0)
		return IM_EINVAL;
	/* A first call with no room checks the text and measures the output. */
	int mrc = mbedtls_base64_decode(NULL, 0, &need, (const unsigned char *)s, n);
	if (mrc == MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
		return IM_EINVAL;
	int rc = im_buf_reserve(out, need);
	if (rc != 0)
		return rc;
	size_t olen = 0;
	if (mbedtls_base64_decode((unsigned char *)out->p + out->len, need + 1, &olen,
				  (const unsigned char *)s, n) != 0)
		return IM_EINVAL;
	out->len += olen;
	out->p[out->len] = '\0';
	return 0;
}
