/* eng_fixture.h - the engine tests' shared fixture: a fresh environment in a temp dir, seeds,
 * cleanup. */
#ifndef IM_ENG_FIXTURE_H
#define IM_ENG_FIXTURE_H

/* Include after <cmocka.h> and "engine_int.h"; everything here is static (one copy per test). */

__attribute__((unused)) static unsigned test_seed(const char *name)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	if (getenv("TEST_SEED"))
		seed = (unsigned)strtoul(getenv("TEST_SEED"), NULL, 10);
	printf("%s: seed %u (TEST_SEED=%u to repeat)\n", name, seed, seed);
	fflush(stdout);
	return seed;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct fx {
	char dir[64];
	struct eng *e;
	uint64_t idx; /* the next log index (the tests that apply with a running index) */
};

static struct eng *open_at(const char *dir, size_t map_size, size_t map_max)
{
	struct eng_opts o = {.dir = dir, .map_size = map_size, .map_max = map_max};
	struct eng *e = NULL;
	char err[256];
	int rv = eng_open(&e, &o, err, sizeof(err));
	if (rv != 0)
		fail_msg("eng_open %s: %d %s", dir, rv, err);
	return e;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/imlog-eng-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	/* A subdirectory that does not exist yet: eng_open creates it. */
	strcat(f->dir, "/db");
	f->e = open_at(f->dir, 0, 0);
	f->idx = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	eng_close(f->e);
	char *slash = strrchr(f->dir, '/');
	*slash = '\0';
	rm_rf(f->dir);
	free(f);
	return 0;
}

#endif
