/* common.c - error strings, allocation wrappers, buffers, logging, clock, CRC-32. */
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <time.h>
#include <zlib.h>

const char *im_strerror(int err)
{
	switch (err) {
#define IM_ERR_CASE(name, value, text)                                                             \
	case name:                                                                                 \
		return text;
		IM_ERR_MAP(IM_ERR_CASE)
#undef IM_ERR_CASE
	case 0:
		return "success";
	default:
		break;
	}
	if (err < 0 && err > IM_EBASE)
		return strerror(-err);
	return "unknown error";
}

/* Countdown for injected allocation failures; 0 means disabled. */
static long alloc_countdown;

void im_alloc_fail_after(long n)
{
	alloc_countdown = n;
}

static bool alloc_should_fail(void)
{
	if (alloc_countdown <= 0)
		return false;
	return --alloc_countdown == 0;
}

void *im_malloc(size_t n)
{
	return alloc_should_fail() ? NULL : malloc(n ? n : 1);
}

void *im_calloc(size_t n, size_t size)
{
	return alloc_should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *im_realloc(void *p, size_t n)
{
	return alloc_should_fail() ? NULL : realloc(p, n ? n : 1);
}

char *im_strndup(const char *s, size_t n)
{
	char *d = im_malloc(n + 1);
	if (d == NULL)
		return NULL;
	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void im_free(void *p)
{
	free(p);
}

int im_buf_reserve(struct im_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = im_realloc(b->p, cap);
	if (p == NULL)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int im_buf_add(struct im_buf *b, const void *data, size_t n)
{
	int rv = im_buf_reserve(b, n);
	if (rv != 0)
		return rv;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int im_buf_addstr(struct im_buf *b, const char *s)
{
	return im_buf_add(b, s, strlen(s));
}

int im_buf_printf(struct im_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	int rv = im_buf_reserve(b, (size_t)n);
	if (rv != 0)
		return rv;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void im_buf_free(struct im_buf *b)
{
	im_free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int im_log_level = IM_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int im_log_level_parse(const char *s)
{
	for (int i = 0; i < (int)IM_ARRAY_LEN(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

void im_log_write(int level, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	const char *base = strrchr(file, '/');
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s:%d %s\n", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		level_names[level < 0 || level > IM_LOG_ERROR ? IM_LOG_ERROR : level],
		base ? base + 1 : file, line, msg);
}

int64_t im_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int im_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

uint32_t im_crc32(uint32_t crc, const void *data, size_t n)
{
	/* zlib's CRC-32 (IEEE); n is bounded by the callers' record limits. */
	return (uint32_t)crc32(crc, data, (uInt)n);
}

int im_b64_encode(struct im_buf *out, const void *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (n > (SIZE_MAX - 8) / 4 * 3)
		return -ENOMEM;
	size_t need = (n + 2) / 3 * 4;
	if (im_buf_reserve(out, need + 1) != 0)
		return -ENOMEM;
	const unsigned char *s = p;
	char *d = out->p + out->len;
	size_t i = 0;
	for (; i + 3 <= n; i += 3, d += 4) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		d[0] = tab[v >> 18];
		d[1] = tab[(v >> 12) & 63];
		d[2] = tab[(v >> 6) & 63];
		d[3] = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		d[0] = tab[v >> 18];
		d[1] = tab[(v >> 12) & 63];
		d[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		d[3] = '=';
		d += 4;
	}
	*d = '\0';
	out->len += need;
	return 0;
}

int im_ipv4_parse(const char *p, size_t len, struct sockaddr_in *out)
{
	char tmp[64];
	if (p == NULL || len == 0 || len >= sizeof(tmp))
		return IM_EINVAL;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	char *colon = strrchr(tmp, ':');
	if (colon == NULL || colon[1] == '\0')
		return IM_EINVAL;
	*colon = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (*end != '\0' || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, tmp, &out->sin_addr) != 1)
		return IM_EINVAL;
	return 0;
}
