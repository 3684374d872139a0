/* lmdb_append.c - the physical limit of the storage path: raw LMDB appends of message-sized
 * records, B per write transaction, with MDB_NOSYNC and one fdatasync per transaction. */

/*
 * What imlog's engine does at its core, without Raft, the server or any index: append records
 * keyed by a big-endian sequence number (MDB_APPEND) in one sub-database.  For each batch size
 * B (records per transaction) it runs `seconds` of:
 *   sync    one transaction of B records, then mdb_env_sync(force) (fdatasync on Linux): the
 *           cost of durability per batch, as in group commit; B = 1 is a sync per record;
 *   nosync  the same transactions with no sync at all: LMDB's own CPU cost, the ceiling.
 * Usage: lmdb_append DIR [seconds-per-run] [record-bytes] [batch ...]
 * Prints one line per run: records/s, transactions/s and the batch size.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "lmdb_append: %s: %s\n", what, mdb_strerror(rc));
		exit(1);
	}
}

/* One run on a fresh environment in dir; returns the records appended. */
static long run(const char *dir, double seconds, size_t size, long batch, int sync, double *took)
{
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	check(mdb_env_create(&env), "env_create");
	check(mdb_env_set_mapsize(env, (size_t)8 << 30), "set_mapsize");
	check(mdb_env_set_maxdbs(env, 4), "set_maxdbs");
	check(mdb_env_open(env, dir, MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOTLS, 0600), "env_open");
	check(mdb_txn_begin(env, NULL, 0, &txn), "txn_begin");
	check(mdb_dbi_open(txn, "msgs", MDB_CREATE, &dbi), "dbi_open");
	check(mdb_txn_commit(txn), "commit");

	char *val = malloc(size);
	if (val == NULL)
		exit(1);
	memset(val, 'm', size);
	uint64_t seq = 0;
	long n = 0;
	double start = now_s(), end = start + seconds;
	while (now_s() < end) {
		check(mdb_txn_begin(env, NULL, 0, &txn), "txn_begin");
		for (long i = 0; i < batch; i++) {
			uint8_t k[8];
			seq++;
			for (int b = 0; b < 8; b++)
				k[b] = (uint8_t)(seq >> (56 - 8 * b));
			MDB_val key = {sizeof(k), k}, data = {size, val};
			check(mdb_put(txn, dbi, &key, &data, MDB_APPEND), "put");
		}
		check(mdb_txn_commit(txn), "commit");
		if (sync)
			check(mdb_env_sync(env, 1), "env_sync");
		n += batch;
	}
	*took = now_s() - start;
	free(val);
	mdb_env_close(env);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: lmdb_append DIR [seconds-per-run] [record-bytes] [batch ...]\n",
		      stderr);
		return 2;
	}
	const char *dir = argv[1];
	double seconds = argc > 2 ? atof(argv[2]) : 2.0;
	size_t size = argc > 3 ? (size_t)atol(argv[3]) : 200;
	static const long def[] = {1, 10, 100, 1000};
	long batches[16];
	int nb = 0;
	for (int i = 4; i < argc && nb < 16; i++)
		batches[nb++] = atol(argv[i]);
	if (nb == 0)
		for (; nb < 4; nb++)
			batches[nb] = def[nb];
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	for (int i = 0; i < nb; i++)
		for (int sync = 1; sync >= 0; sync--) {
			double took;
			long n = run(dir, seconds, size, batches[i], sync, &took);
			printf("lmdb_append_%s batch=%ld records_per_s %.0f txns_per_s %.0f "
			       "(%zu-byte records, %ld in %.2f s)\n",
			       sync ? "sync" : "nosync", batches[i], (double)n / took,
			       (double)n / (double)batches[i] / took, size, n, took);
			fflush(stdout);
		}
	return 0;
}
