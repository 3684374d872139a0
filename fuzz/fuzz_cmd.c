/* fuzz_cmd.c - libFuzzer target for the command codec and apply (untrusted Raft entries). */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/*
 * For each input:
 *  1. decode it; if it decodes, encoding the result must give the same bytes
 *     (the codec is canonical) and the views must lie inside the input;
 *  2. if it fails only on the checksum, fix the CRC and try again, so the
 *     fuzzer reaches the payload parser without having to learn CRC-32;
 *  3. apply the (fixed) bytes to one engine opened once in a temporary
 *     directory with a small map: apply must return 0 or IM_EFULL, and a
 *     command that does not decode must be reported as IM_ECORRUPT.
 * The engine is recreated when its map is full, so every run stays fast.
 */

static struct eng *eng;
static char dir[64];
static uint64_t next_index;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void engine_drop(void)
{
	eng_close(eng);
	eng = NULL;
	if (dir[0])
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}

static void engine_open(void)
{
	snprintf(dir, sizeof(dir), "/tmp/imlog-fuzz-cmd-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	struct eng_opts o = {.dir = dir, .map_size = 256 << 10, .map_max = 1 << 20};
	char err[256];
	if (eng_open(&eng, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_cmd: eng_open: %s\n", err);
		abort();
	}
	next_index = 1;
	static bool registered;
	if (!registered) {
		atexit(engine_drop);
		registered = true;
	}
}

static void check_view(struct im_str s, const uint8_t *d, size_t n)
{
	if (s.n && ((const uint8_t *)s.p < d || (const uint8_t *)s.p + s.n > d + n))
		abort();
}

/* Step 1: a successful decode re-encodes to the same bytes. */
static int round_trip(const uint8_t *d, size_t n)
{
	struct eng_cmd c;
	int rv = eng_cmd_decode(d, n, &c);
	if (rv != 0)
		return rv;
	if (c.type == ENG_CMD_USER_REGISTER)
		for (uint32_t i = 0; i < c.u.user_register.n; i++)
			check_view(c.u.user_register.users[i].nickname, d, n);
	if (c.type == ENG_CMD_TOKEN_ISSUE)
		check_view(c.u.token_issue.token, d, n);
	struct im_buf b = {0};
	if (eng_cmd_encode(&c, &b) != 0 || b.len != n || memcmp(b.p, d, n) != 0)
		abort();
	im_buf_free(&b);
	eng_cmd_release(&c);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	uint8_t *d = malloc(size ? size : 1);
	if (d == NULL)
		return 0;
	memcpy(d, data, size);
	int rv = round_trip(d, size);
	if (rv == IM_ECHECKSUM) {
		/* Step 2: the CRC covers header bytes 0..7 and the payload. */
		uint32_t crc = im_crc32(0, d, 8);
		crc = im_crc32(crc, d + ENG_CMD_HEADER, size - ENG_CMD_HEADER);
		im_put_be32(d + 8, crc);
		rv = round_trip(d, size);
		if (rv == IM_ECHECKSUM)
			abort();
	}

	if (eng == NULL)
		engine_open();
	struct eng_result res;
	int arv = eng_apply(eng, next_index, d, size, &res);
	if (arv == 0) {
		if (rv != 0 && res.code != IM_ECORRUPT)
			abort();
		if (eng_applied_index(eng) != next_index)
			abort();
		next_index++;
		/* A replay of the same index is skipped. */
		if (eng_apply(eng, next_index - 1, d, size, &res) != 0 || !res.skipped)
			abort();
		if (next_index % 8 == 0 && eng_flush(eng) != 0)
			engine_drop();
	} else if (arv == IM_EFULL) {
		engine_drop();
	} else {
		fprintf(stderr, "fuzz_cmd: eng_apply: %s\n", eng_errmsg(eng));
		abort();
	}
	free(d);
	return 0;
}
