/* gob.c - a bounded decoder for GeneralWsReq frames and an encoder for Resp frames (Go
 * encoding/gob, openim-protocol.md §4.9). */
#include "gob.h"

#include <errno.h>
#include <stdio.h>

/*
 * Invariants:
 * 1. Every read goes through rd_* on a cursor [p, end) that never passes the
 *    end of the current message; a message never passes the end of the frame.
 * 2. Each loop over a wire count consumes at least one byte per iteration
 *    (every gob value takes a byte or more), and counts larger than the bytes
 *    left are rejected up front, so work is linear in the input.
 * 3. Recursion (skipping nested values) stops at GOB_MAX_DEPTH.
 * 4. Type and field tables are fixed arrays in the decoder: nothing is
 *    allocated, so a failed decode leaks nothing.
 */

enum kind { K_STRUCT = 1, K_SLICE, K_ARRAY, K_MAP, K_MARSHAL };

struct gtype {
	int64_t id;
	enum kind kind;
	int64_t elem, key;
	uint64_t len;
	uint32_t first, n_fields; /* into dec.fields */
};

struct gfield {
	struct im_str name;
	int64_t id;
};

struct dec {
	const uint8_t *p, *end;
	struct gtype types[GOB_MAX_TYPES];
	unsigned n_types;
	struct gfield fields[GOB_MAX_FIELDS];
	unsigned n_fields;
	const char *why;
};

#define FAIL(d, msg)                                                                               \
	do {                                                                                       \
		(d)->why = (msg);                                                                  \
		return false;                                                                      \
	} while (0)

/* ---- primitives ---- */

static size_t left(const struct dec *d)
{
	return (size_t)(d->end - d->p);
}

/* An unsigned int: one byte below 128, else a negated byte count and big-endian bytes. */
static bool rd_uint(struct dec *d, uint64_t *v)
{
	if (d->p >= d->end)
		FAIL(d, "unexpected end of data");
	uint8_t b = *d->p++;
	if (b < 0x80) {
		*v = b;
		return true;
	}
	unsigned n = 256u - b;
	if (n > 8)
		FAIL(d, "encoded unsigned integer out of range");
	if (left(d) < n)
		FAIL(d, "unexpected end of data");
	uint64_t x = 0;
	for (unsigned i = 0; i < n; i++)
		x = x << 8 | *d->p++;
	*v = x;
	return true;
}

/* A signed int: bit 0 is the sign, the rest the magnitude (complemented when negative). */
static bool rd_int(struct dec *d, int64_t *v)
{
	uint64_t u;
	if (!rd_uint(d, &u))
		return false;
	*v = (u & 1) ? (int64_t) ~(u >> 1) : (int64_t)(u >> 1);
	return true;
}

/* A string or []byte: a byte count and the bytes, as a view. */
static bool rd_str(struct dec *d, struct im_str *s)
{
	uint64_t n;
	if (!rd_uint(d, &n))
		return false;
	if (n > left(d))
		FAIL(d, "string or bytes longer than the message");
	s->p = (const char *)d->p;
	s->n = (uint32_t)n;
	d->p += n;
	return true;
}

/* The next field number of a struct, or -2 at its end; fails past n_fields. */
static bool rd_field(struct dec *d, int64_t *field, uint64_t n_fields)
{
	uint64_t delta;
	if (!rd_uint(d, &delta))
		return false;
	if (delta == 0) {
		*field = -2;
		return true;
	}
	if (delta > n_fields || (uint64_t)(*field + 1) + (delta - 1) >= n_fields)
		FAIL(d, "field number out of range");
	*field += (int64_t)delta;
	return true;
}

/* ---- type definitions ---- */

static struct gtype *find_type(struct dec *d, int64_t id)
{
	for (unsigned i = 0; i < d->n_types; i++)
		if (d->types[i].id == id)
			return &d->types[i];
	return NULL;
}

/* CommonType {Name string; Id int}: both are read and dropped (the message gives the id). */
static bool rd_common(struct dec *d)
{
	int64_t f = -1;
	struct im_str name;
	int64_t id;
	for (;;) {
		if (!rd_field(d, &f, 2))
			return false;
		if (f == -2)
			return true;
		if (f == 0 ? !rd_str(d, &name) : !rd_int(d, &id))
			return false;
	}
}

/* fieldType {Name string; Id int} appended to the field table. */
static bool rd_field_type(struct dec *d)
{
	if (d->n_fields == GOB_MAX_FIELDS)
		FAIL(d, "too many struct fields");
	struct gfield *gf = &d->fields[d->n_fields++];
	*gf = (struct gfield){{"", 0}, 0};
	int64_t f = -1;
	for (;;) {
		if (!rd_field(d, &f, 2))
			return false;
		if (f == -2)
			return true;
		if (f == 0 ? !rd_str(d, &gf->name) : !rd_int(d, &gf->id))
			return false;
	}
}

/*
 * The body of one wireType member.  Field layouts (encoding/gob/type.go):
 * arrayType {CommonType; Elem; Len}, sliceType {CommonType; Elem},
 * structType {CommonType; Field []fieldType}, mapType {CommonType; Key; Elem},
 * gobEncoderType {CommonType}.
 */
static bool rd_kind(struct dec *d, struct gtype *t)
{
	static const uint64_t n_of[] = {
	    [K_STRUCT] = 2, [K_SLICE] = 2, [K_ARRAY] = 3, [K_MAP] = 3, [K_MARSHAL] = 1};
	int64_t f = -1;
	t->first = d->n_fields;
	for (;;) {
		if (!rd_field(d, &f, n_of[t->kind]))
			return false;
		if (f == -2)
			return true;
		bool ok;
		if (f == 0) {
			ok = rd_common(d);
		} else if (t->kind == K_STRUCT) {
			uint64_t n;
			ok = rd_uint(d, &n);
			if (ok && n > left(d))
				FAIL(d, "field count larger than the message");
			for (uint64_t i = 0; ok && i < n; i++)
				ok = rd_field_type(d);
			t->n_fields = d->n_fields - t->first;
		} else if (t->kind == K_ARRAY && f == 2) {
			int64_t len = 0;
			ok = rd_int(d, &len);
			t->len = len < 0 ? 0 : (uint64_t)len;
		} else if (t->kind == K_MAP && f == 1) {
			ok = rd_int(d, &t->key);
		} else {
			ok = rd_int(d, &t->elem);
		}
		if (!ok)
			return false;
	}
}

/* A definition message: wireType with exactly one member set. */
static bool rd_typedef(struct dec *d, int64_t id)
{
	static const enum kind member[] = {K_ARRAY,   K_SLICE,	 K_STRUCT, K_MAP,
					   K_MARSHAL, K_MARSHAL, K_MARSHAL};
	if (id < GOB_MIN_USER_ID || find_type(d, id) != NULL)
		FAIL(d, "duplicate or reserved type id");
	if (d->n_types == GOB_MAX_TYPES)
		FAIL(d, "too many types");
	struct gtype *t = &d->types[d->n_types];
	*t = (struct gtype){.id = id};
	int64_t f = -1;
	for (;;) {
		if (!rd_field(d, &f, IM_ARRAY_LEN(member)))
			return false;
		if (f == -2)
			break;
		if (t->kind != 0)
			FAIL(d, "wireType with two kinds");
		t->kind = member[f];
		if (!rd_kind(d, t))
			return false;
	}
	if (t->kind == 0)
		FAIL(d, "empty wireType");
	d->n_types++;
	return true;
}

/* ---- values ---- */

static bool skip_value(struct dec *d, int64_t id, int depth);

/* A wire count of elements, each at least one byte (invariant 2). */
static bool rd_count(struct dec *d, uint64_t *n)
{
	if (!rd_uint(d, n))
		return false;
	if (*n > left(d))
		FAIL(d, "element count larger than the message");
	return true;
}

static bool skip_struct(struct dec *d, const struct gtype *t, int depth)
{
	int64_t f = -1;
	for (;;) {
		if (!rd_field(d, &f, t->n_fields))
			return false;
		if (f == -2)
			return true;
		if (!skip_value(d, d->fields[t->first + f].id, depth + 1))
			return false;
	}
}

static bool skip_value(struct dec *d, int64_t id, int depth)
{
	uint64_t u, n;
	struct im_str s;
	int64_t i;
	if (depth > GOB_MAX_DEPTH)
		FAIL(d, "values nested too deeply");
	switch (id) {
	case GOB_BOOL:
	case GOB_INT:
	case GOB_UINT:
	case GOB_FLOAT:
		return rd_uint(d, &u);
	case GOB_BYTES:
	case GOB_STRING:
		return rd_str(d, &s);
	case GOB_COMPLEX:
		return rd_uint(d, &u) && rd_uint(d, &u);
	case GOB_INTERFACE:
		/* A concrete type name ("" = nil), its type id, a byte count, the value. */
		if (!rd_str(d, &s))
			return false;
		if (s.n == 0)
			return true;
		return rd_int(d, &i) && rd_str(d, &s);
	default:
		break;
	}
	const struct gtype *t = find_type(d, id);
	if (t == NULL)
		FAIL(d, "value of an undefined type");
	switch (t->kind) {
	case K_STRUCT:
		return skip_struct(d, t, depth);
	case K_SLICE:
	case K_ARRAY:
		if (!rd_count(d, &n))
			return false;
		if (t->kind == K_ARRAY && n != t->len)
			FAIL(d, "array length mismatch");
		for (uint64_t k = 0; k < n; k++)
			if (!skip_value(d, t->elem, depth + 1))
				return false;
		return true;
	case K_MAP:
		if (!rd_count(d, &n))
			return false;
		for (uint64_t k = 0; k < n; k++)
			if (!skip_value(d, t->key, depth + 1) || !skip_value(d, t->elem, depth + 1))
				return false;
		return true;
	case K_MARSHAL:
		return rd_str(d, &s);
	}
	FAIL(d, "bad type");
}

/* The local struct: GeneralWsReq's fields and their wire types. */
enum { F_REQ_ID, F_TOKEN, F_SEND_ID, F_OP_ID, F_MSG_INCR, F_DATA, F_NONE };
static const struct {
	const char *name;
	int64_t type;
} req_fields[] = {
    [F_REQ_ID] = {"ReqIdentifier", GOB_INT}, [F_TOKEN] = {"Token", GOB_STRING},
    [F_SEND_ID] = {"SendID", GOB_STRING},    [F_OP_ID] = {"OperationID", GOB_STRING},
    [F_MSG_INCR] = {"MsgIncr", GOB_STRING},  [F_DATA] = {"Data", GOB_BYTES},
};

static int local_field(struct im_str name)
{
	for (int i = 0; i < F_NONE; i++)
		if (im_str_eq(name, im_str_c(req_fields[i].name)))
			return i;
	return F_NONE;
}

static bool rd_req(struct dec *d, const struct gtype *t, struct env_req *out)
{
	/* Go compiles the decoder first: a name with another type fails even if absent. */
	bool any = false;
	for (uint32_t k = 0; k < t->n_fields; k++) {
		const struct gfield *gf = &d->fields[t->first + k];
		int lf = local_field(gf->name);
		if (lf == F_NONE)
			continue;
		if (gf->id != req_fields[lf].type)
			FAIL(d, "wrong type for a GeneralWsReq field");
		any = true;
	}
	if (!any)
		FAIL(d, "type mismatch: no fields matched");
	struct im_str *strs[] = {[F_TOKEN] = &out->token,
				 [F_SEND_ID] = &out->send_id,
				 [F_OP_ID] = &out->op_id,
				 [F_MSG_INCR] = &out->msg_incr,
				 [F_DATA] = &out->data};
	int64_t f = -1, v;
	for (;;) {
		if (!rd_field(d, &f, t->n_fields))
			return false;
		if (f == -2)
			return true;
		const struct gfield *gf = &d->fields[t->first + f];
		int lf = local_field(gf->name);
		if (lf == F_NONE) {
			if (!skip_value(d, gf->id, 1))
				return false;
		} else if (lf == F_REQ_ID) {
			if (!rd_int(d, &v))
				return false;
			if (v < INT32_MIN || v > INT32_MAX)
				FAIL(d, "ReqIdentifier out of range");
			out->req_id = (int32_t)v;
		} else if (!rd_str(d, strs[lf])) {
			return false;
		}
	}
}

int gob_decode_req(const uint8_t *buf, size_t len, struct env_req *out, char *err, size_t errlen)
{
	static struct env_req zero;
	struct dec *d, dd;
	d = &dd;
	d->n_types = d->n_fields = 0;
	d->why = NULL;
	*out = zero;
	out->token = out->send_id = out->op_id = out->msg_incr = out->data = IM_STR_LIT("");
	if (len == 0) {
		if (err && errlen)
			snprintf(err, errlen, "gob: empty frame");
		return IM_EINVAL;
	}
	const uint8_t *q = buf, *qend = buf + len;
	bool ok = true;
	while (ok) {
		uint64_t mlen;
		int64_t id;
		d->p = q;
		d->end = qend;
		if (!(ok = rd_uint(d, &mlen)))
			break;
		if (mlen == 0 || mlen > left(d)) {
			d->why = "bad message length";
			ok = false;
			break;
		}
		d->end = d->p + mlen;
		q = d->end;
		if (!(ok = rd_int(d, &id)))
			break;
		if (id < 0) {
			ok = id != INT64_MIN && rd_typedef(d, -id);
			if (ok && d->p != d->end) {
				d->why = "extra data after a type definition";
				ok = false;
			}
			continue;
		}
		const struct gtype *t = find_type(d, id);
		if (t == NULL || t->kind != K_STRUCT) {
			d->why = "the value is not a defined struct";
			ok = false;
			break;
		}
		ok = rd_req(d, t, out);
		break;
	}
	if (ok)
		return 0;
	if (d->why == NULL)
		d->why = "bad gob";
	if (err && errlen)
		snprintf(err, errlen, "gob: %s", d->why);
	*out = zero;
	return IM_EINVAL;
}

/* ---- encoding ---- */

int gob_put_uint(struct im_buf *out, uint64_t v)
{
	unsigned char b[9];
	if (v < 0x80) {
		b[0] = (unsigned char)v;
		return im_buf_add(out, b, 1);
	}
	unsigned n = 0;
	for (uint64_t x = v; x; x >>= 8)
		n++;
	b[0] = (unsigned char)(256u - n);
	for (unsigned i = 0; i < n; i++)
		b[1 + i] = (unsigned char)(v >> (8 * (n - 1 - i)));
	return im_buf_add(out, b, n + 1);
}

int gob_put_int(struct im_buf *out, int64_t v)
{
	uint64_t u = v < 0 ? (~(uint64_t)v << 1) | 1 : (uint64_t)v << 1;
	return gob_put_uint(out, u);
}

int gob_put_bytes(struct im_buf *out, const void *p, size_t n)
{
	int rc = gob_put_uint(out, n);
	return rc ? rc : im_buf_add(out, p, n);
}

static int put_str(struct im_buf *out, const char *s)
{
	return gob_put_bytes(out, s, strlen(s));
}

/*
 * Starts a message at the end of out: room for the longest length prefix,
 * then the type id.  end_msg() writes the real prefix and closes the gap.
 */
static size_t begin_msg(struct im_buf *out, int64_t type_id, int *rc)
{
	static const unsigned char gap[9];
	size_t mark = out->len;
	*rc = im_buf_add(out, gap, sizeof(gap));
	if (*rc == 0)
		*rc = gob_put_int(out, type_id);
	return mark;
}

static int end_msg(struct im_buf *out, size_t mark)
{
	size_t body = out->len - mark - 9;
	struct im_buf pre = {0};
	int rc = gob_put_uint(&pre, body);
	if (rc == 0) {
		memcpy(out->p + mark, pre.p, pre.len);
		memmove(out->p + mark + pre.len, out->p + mark + 9, body);
		out->len = mark + pre.len + body;
		out->p[out->len] = '\0';
	}
	im_buf_free(&pre);
	return rc;
}

/* The fields of Resp in declaration order, with their wire types. */
static const struct {
	const char *name;
	int64_t type;
} resp_fields[] = {
    {"ReqIdentifier", GOB_INT}, {"MsgIncr", GOB_STRING}, {"OperationID", GOB_STRING},
    {"ErrCode", GOB_INT},	{"ErrMsg", GOB_STRING},	 {"Data", GOB_BYTES},
};

int gob_put_resp_type(struct im_buf *out)
{
	size_t old = out->len;
	int rc;
	size_t mark = begin_msg(out, -GOB_FIRST_USER_ID, &rc);
	/* wireType{StructT: &structType{CommonType{"Resp", 65}, Field: [...]}} */
	rc = rc ? rc : gob_put_uint(out, 3); /* field -1 -> 2: StructT */
	rc = rc ? rc : gob_put_uint(out, 1); /* structType.CommonType */
	rc = rc ? rc : gob_put_uint(out, 1);
	rc = rc ? rc : put_str(out, "Resp");
	rc = rc ? rc : gob_put_uint(out, 1);
	rc = rc ? rc : gob_put_int(out, GOB_FIRST_USER_ID);
	rc = rc ? rc : gob_put_uint(out, 0);
	rc = rc ? rc : gob_put_uint(out, 1); /* structType.Field */
	rc = rc ? rc : gob_put_uint(out, IM_ARRAY_LEN(resp_fields));
	for (size_t i = 0; i < IM_ARRAY_LEN(resp_fields); i++) {
		rc = rc ? rc : gob_put_uint(out, 1);
		rc = rc ? rc : put_str(out, resp_fields[i].name);
		rc = rc ? rc : gob_put_uint(out, 1);
		rc = rc ? rc : gob_put_int(out, resp_fields[i].type);
		rc = rc ? rc : gob_put_uint(out, 0);
	}
	rc = rc ? rc : gob_put_uint(out, 0); /* end of structType */
	rc = rc ? rc : gob_put_uint(out, 0); /* end of wireType */
	rc = rc ? rc : end_msg(out, mark);
	if (rc != 0)
		out->len = old;
	return rc;
}

int gob_encode_resp(const struct env_resp *r, struct im_buf *out)
{
	size_t old = out->len;
	int rc = gob_put_resp_type(out);
	if (rc != 0)
		return rc;
	size_t mark = begin_msg(out, GOB_FIRST_USER_ID, &rc);
	/* Zero values are omitted; the delta counts the fields skipped. */
	int last = -1;
	const struct im_str strs[] = {{NULL, 0}, r->msg_incr, r->op_id, {NULL, 0}, r->err_msg};
	for (int f = 0; f < 6 && rc == 0; f++) {
		bool present;
		switch (f) {
		case 0:
			present = r->req_id != 0;
			break;
		case 3:
			present = r->err_code != 0;
			break;
		case 5:
			present = r->has_data && r->len > 0;
			break;
		default:
			present = strs[f].n > 0;
		}
		if (!present)
			continue;
		rc = gob_put_uint(out, (uint64_t)(f - last));
		last = f;
		if (rc != 0)
			break;
		if (f == 0)
			rc = gob_put_int(out, r->req_id);
		else if (f == 3)
			rc = gob_put_int(out, r->err_code);
		else if (f == 5)
			rc = gob_put_bytes(out, r->data, r->len);
		else
			rc = gob_put_bytes(out, strs[f].p, strs[f].n);
	}
	rc = rc ? rc : gob_put_uint(out, 0);
	rc = rc ? rc : end_msg(out, mark);
	if (rc != 0)
		out->len = old;
	return rc;
}
