/* fuzz_http.c - the whole REST request path: llhttp, limits, router, token check, JSON decoding,
 * handlers.
 *
 * Input: raw bytes as a client would send them on the REST port.  They go
 * through the HTTP test seam (no sockets) into api_handle(); writes are
 * applied to a real engine at once by a proposer that skips Raft (the fuzzer
 * is about the parsers and handlers; the log is covered by its own tests).
 * Tokens in the corpus are valid: the secret and the clock are fixed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW_MS 1800000000000ll /* 2027-01-15: corpus tokens expire in 2027-04 */

static struct srv srv;
static struct cfg cfg;
static struct eng *eng;
static uint64_t next_index = 1;

static int64_t fixed_now(void)
{
	return FUZZ_NOW_MS;
}

/* Applies the command to the engine at once and answers (no Raft). */
static int propose_direct(struct srv *s, struct clu_req *req, const void *cmd, size_t len,
			  clu_done_cb cb)
{
	struct eng_result res;
	memset(&res, 0, sizeof(res));
	int rv = eng_apply(s->eng, next_index++, cmd, len, &res);
	if (rv == 0)
		rv = eng_flush(s->eng);
	if (rv != 0)
		return rv;
	cb(req, 0, &res);
	return 0;
}

static void discard(void *arg, const char *d, size_t n)
{
	(void)arg;
	(void)d;
	(void)n;
}

static char dir[] = "/tmp/imlog-fuzz-http-XXXXXX";

/* The engine directory goes away with the process (replay runs exit normally). */
static void cleanup(void)
{
	eng_close(eng);
	char cmd[sizeof(dir) + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void setup(void)
{
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	char err[256];
	if (cfg_load(&cfg, 0, NULL, err, sizeof(err)) != 0)
		abort();
	snprintf(cfg.secret, sizeof(cfg.secret), "fuzz-secret");
	cfg.max_body_bytes = 65536;
	struct eng_opts eo = {.dir = dir, .map_size = 32u << 20, .map_max = 64u << 20};
	if (eng_open(&eng, &eo, err, sizeof(err)) != 0)
		abort();
	srv = (struct srv){.cfg = &cfg,
			   .eng = eng,
			   .secret = im_str_c(cfg.secret),
			   .token_expire_s = 90 * 86400,
			   .propose = propose_direct,
			   .now_ms = fixed_now};
	/* The admin user and one ordinary user exist. */
	struct eng_user users[2] = {{.user_id = IM_STR_LIT("imAdmin"),
				     .nickname = IM_STR_LIT("imAdmin"),
				     .app_manger_level = 3},
				    {.user_id = IM_STR_LIT("u1"), .nickname = IM_STR_LIT("one")}};
	struct eng_cmd cmd = {.type = ENG_CMD_USER_REGISTER, .now_ms = FUZZ_NOW_MS};
	cmd.u.user_register.n = 2;
	cmd.u.user_register.users = users;
	struct im_buf b = {0};
	struct eng_result res;
	if (eng_cmd_encode(&cmd, &b) != 0 || eng_apply(eng, next_index++, b.p, b.len, &res) != 0 ||
	    eng_flush(eng) != 0)
		abort();
	im_buf_free(&b);
	im_log_level = IM_LOG_OFF;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (eng == NULL)
		setup();
	struct http_opts o = {.handler = api_handle,
			      .arg = &srv,
			      .max_header_bytes = 8192,
			      .max_body_bytes = 65536,
			      .max_pipeline = 8};
	struct http_conn *c = http_test_conn_new(&o, discard, NULL);
	if (c == NULL)
		return 0;
	/* Feed in two pieces at a point chosen by the first byte, to vary the splits. */
	size_t cut = size ? (size_t)data[0] % (size + 1) : 0;
	if (http_test_feed(c, (const char *)data, cut) >= 0)
		http_test_feed(c, (const char *)data + cut, size - cut);
	http_test_conn_free(c);
	return 0;
}
