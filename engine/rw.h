/* rw.h - private to engine/: the bounded reader and exact-size writers of the codecs. */
#ifndef IM_ENGINE_RW_H
#define IM_ENGINE_RW_H

#include "common.h"

/*
 * Every integer is big-endian; a string is a u32 BE length and its bytes.
 * Readers never run past the end: any read that does not fit sets `bad` and
 * yields zeros (or an empty string), so a decoder reads all its fields and
 * checks `bad` once.  Writers write into a buffer already reserved to the
 * exact size that the matching size function computed.
 */
struct rd {
	const unsigned char *p;
	size_t n;
	bool bad;
};

static inline const unsigned char *rd_take(struct rd *r, size_t k)
{
	if (r->bad || r->n < k) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += k;
	r->n -= k;
	return p;
}

static inline uint8_t rd_u8(struct rd *r)
{
	const unsigned char *p = rd_take(r, 1);
	return p ? *p : 0;
}

static inline uint32_t rd_u32(struct rd *r)
{
	const unsigned char *p = rd_take(r, 4);
	return p ? im_get_be32(p) : 0;
}

static inline uint64_t rd_u64(struct rd *r)
{
	const unsigned char *p = rd_take(r, 8);
	return p ? im_get_be64(p) : 0;
}

/* A bool is one byte, 0 or 1: anything else is bad (the encoding stays canonical). */
static inline bool rd_bool(struct rd *r)
{
	uint8_t v = rd_u8(r);
	if (v > 1)
		r->bad = true;
	return v == 1;
}

/* A string of at most max bytes; longer ones mark the reader bad. */
static inline struct im_str rd_str(struct rd *r, uint32_t max)
{
	struct im_str s = {NULL, 0};
	uint32_t n = rd_u32(r);
	if (n > max) {
		r->bad = true;
		return s;
	}
	const unsigned char *p = rd_take(r, n);
	if (p != NULL) {
		s.p = (const char *)p;
		s.n = n;
	}
	return s;
}

/* A string of at most max bytes without NUL bytes (they separate key parts). */
static inline struct im_str rd_key(struct rd *r, uint32_t max)
{
	struct im_str s = rd_str(r, max);
	if (s.n && memchr(s.p, 0, s.n) != NULL)
		r->bad = true;
	return s;
}

/* An identifier: up to ENG_ID_MAX bytes, no NUL (empty is apply's to reject). */
#define rd_id(r) rd_key((r), ENG_ID_MAX)

static inline unsigned char *wr_u8(unsigned char *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static inline unsigned char *wr_u32(unsigned char *p, uint32_t v)
{
	im_put_be32(p, v);
	return p + 4;
}

static inline unsigned char *wr_u64(unsigned char *p, uint64_t v)
{
	im_put_be64(p, v);
	return p + 8;
}

static inline unsigned char *wr_str(unsigned char *p, struct im_str s)
{
	p = wr_u32(p, s.n);
	if (s.n)
		memcpy(p, s.p, s.n);
	return p + s.n;
}

#endif
