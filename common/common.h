/* common.h - shared types, the project error table, allocation and logging. */
#ifndef IM_COMMON_H
#define IM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#define IM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define IM_UNUSED(x)	((void)(x))
#define IM_MIN(a, b)	((a) < (b) ? (a) : (b))
#define IM_MAX(a, b)	((a) > (b) ? (a) : (b))

/*
 * Project error codes.  Functions return 0 on success and a negative value on
 * failure: -errno for system errors (like libuv), or one of the codes below,
 * which live in a reserved range far from any errno.  One X-macro table yields
 * the enum and im_strerror().
 */
#define IM_ERR_MAP(X)                                                                              \
	X(IM_EBASE, -20000, "base of the project range")                                           \
	X(IM_ECORRUPT, -20001, "corrupt record")                                                   \
	X(IM_ECHECKSUM, -20002, "checksum mismatch")                                               \
	X(IM_EVERSION, -20003, "unsupported format version")                                       \
	X(IM_EFULL, -20004, "storage full")                                                        \
	X(IM_ENOTFOUND, -20005, "not found")                                                       \
	X(IM_EEXIST, -20006, "already exists")                                                     \
	X(IM_EINVAL, -20007, "invalid argument")                                                   \
	X(IM_ETOOBIG, -20008, "too large")                                                         \
	X(IM_ESTORAGE, -20009, "storage error")                                                    \
	X(IM_ENOTLEADER, -20010, "not the leader")                                                 \
	X(IM_ESHUTDOWN, -20011, "shutting down")                                                   \
	X(IM_ERAFT, -20012, "raft error")                                                          \
	X(IM_EREADONLY, -20013, "storage refuses writes")                                          \
	X(IM_EPERM, -20014, "not permitted")                                                       \
	X(IM_ELAST, -20015, "end of the project range")

enum im_err {
#define IM_ERR_ENUM(name, value, text) name = value,
	IM_ERR_MAP(IM_ERR_ENUM)
#undef IM_ERR_ENUM
};

/* Returns a static description of a project code or of a negative errno. */
const char *im_strerror(int err);

/* A byte string view: not NUL-terminated, owned elsewhere. */
struct im_str {
	const char *p;
	uint32_t n;
};

#define IM_STR_LIT(s) ((struct im_str){(s), (uint32_t)(sizeof(s) - 1)})
static inline struct im_str im_str_c(const char *s)
{
	return (struct im_str){s, s ? (uint32_t)strlen(s) : 0};
}
static inline bool im_str_eq(struct im_str a, struct im_str b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/*
 * Allocation goes through these wrappers so tests can inject out-of-memory:
 * im_alloc_fail_after(n) makes the n-th following allocation fail (0 = never).
 */
void *im_malloc(size_t n);
void *im_calloc(size_t n, size_t size);
void *im_realloc(void *p, size_t n);
char *im_strndup(const char *s, size_t n);
void im_free(void *p);
void im_alloc_fail_after(long n);

/* A growable byte buffer.  Owns its memory; im_buf_free() releases it. */
struct im_buf {
	char *p;
	size_t len;
	size_t cap;
};
int im_buf_reserve(struct im_buf *b, size_t extra);
int im_buf_add(struct im_buf *b, const void *data, size_t n);
int im_buf_addstr(struct im_buf *b, const char *s);
int im_buf_printf(struct im_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void im_buf_free(struct im_buf *b);

/* Logging: one sink (stderr), one macro that checks the level first. */
enum im_log_level { IM_LOG_DEBUG, IM_LOG_INFO, IM_LOG_WARN, IM_LOG_ERROR, IM_LOG_OFF };
extern int im_log_level;
void im_log_write(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int im_log_level_parse(const char *s);

#define IM_LOG(level, ...)                                                                         \
	do {                                                                                       \
		if ((level) >= im_log_level)                                                       \
			im_log_write((level), __FILE__, __LINE__, __VA_ARGS__);                    \
	} while (0)
#ifdef NDEBUG
#define IM_DEBUG(...) ((void)0)
#else
#define IM_DEBUG(...) IM_LOG(IM_LOG_DEBUG, __VA_ARGS__)
#endif
#define IM_INFO(...)  IM_LOG(IM_LOG_INFO, __VA_ARGS__)
#define IM_WARN(...)  IM_LOG(IM_LOG_WARN, __VA_ARGS__)
#define IM_ERROR(...) IM_LOG(IM_LOG_ERROR, __VA_ARGS__)

/* Wall clock in milliseconds and seconds (CLOCK_REALTIME). */
int64_t im_now_ms(void);

/* CRC-32 (zlib) of a buffer, continuing from crc (start with 0). */
uint32_t im_crc32(uint32_t crc, const void *data, size_t n);

/*
 * Appends the standard base64 (RFC 4648 section 4, padded) of p[0..n) to
 * out, NUL-terminated (the NUL not counted in out->len).  0, or -ENOMEM.
 * Table-driven on purpose: mbedTLS's coder is constant-time (meant for key
 * material) and cost 8-28 % of the server's CPU on message traffic
 * (docs/benchmarks.md); message bodies need no side-channel protection.
 * Decoding stays with mbedTLS (smaller inputs, strict checks around it).
 */
int im_b64_encode(struct im_buf *out, const void *p, size_t n);

/* Fills buf with n bytes from the kernel's random source.  0 or -errno. */
int im_random(void *buf, size_t n);

/*
 * Parses the IPv4 "A.B.C.D:PORT" in p[0, len) (port 1-65535, nothing else)
 * into *out.  0, or IM_EINVAL.
 */
struct sockaddr_in;
int im_ipv4_parse(const char *p, size_t len, struct sockaddr_in *out);

/* Big-endian helpers for keys and records. */
static inline void im_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}
static inline uint32_t im_get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void im_put_be64(unsigned char *p, uint64_t v)
{
	im_put_be32(p, (uint32_t)(v >> 32));
	im_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t im_get_be64(const unsigned char *p)
{
	return (uint64_t)im_get_be32(p) << 32 | im_get_be32(p + 4);
}

#endif
