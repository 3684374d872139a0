/* lg_hist.h - the benchmark programs' latency histogram: log-linear like HdrHistogram, values
 * in nanoseconds, exact below 256 ns, above that 128 sub-buckets per power of two (7,424
 * counters): a reported percentile is the upper edge of its bucket, at most 1/128 (0.78%) above
 * the true value; the maximum is exact.  Not thread-safe: callers lock. */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define H_SUB_BITS 7
#define H_SUB	   (1u << H_SUB_BITS)
#define H_BUCKETS  (2 * H_SUB + (64 - H_SUB_BITS - 1) * H_SUB)

struct hist {
	uint64_t n, max;
	uint64_t c[H_BUCKETS];
};

static inline unsigned h_index(uint64_t v)
{
	if (v < 2 * H_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - H_SUB_BITS; /* v >> shift is in [H_SUB, 2 H_SUB) */
	return 2 * H_SUB + (shift - 1) * H_SUB + (unsigned)((v >> shift) - H_SUB);
}

/* The largest value that lands in bucket i. */
static inline uint64_t h_upper(unsigned i)
{
	if (i < 2 * H_SUB)
		return i;
	unsigned shift = (i - 2 * H_SUB) / H_SUB + 1;
	uint64_t sub = (i - 2 * H_SUB) % H_SUB + H_SUB;
	return ((sub + 1) << shift) - 1;
}

static inline void h_record(struct hist *h, uint64_t v)
{
	h->c[h_index(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static inline uint64_t h_quantile(const struct hist *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->c[i];
		if (seen >= want)
			return (h_upper(i) < h->max ? h_upper(i) : h->max);
	}
	return h->max;
}

#endif
