/* hash.c - a digest of the committed engine state, to compare the nodes of a cluster. */
#include "engine_int.h"

/* 64-bit FNV-1a, continued over each byte. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
	unsigned char b[8];
	im_put_be64(b, v);
	return fnv(h, b, sizeof(b));
}

int eng_state_hash(struct eng *e, uint64_t *hash, uint64_t *applied)
{
	struct eng_rtxn *r;
	int rv = eng_read_begin(e, &r);
	if (rv != 0)
		return rv;
	uint64_t h = 0xcbf29ce484222325ull;
	for (int t = 0; t < ENG__T_COUNT && rv == 0; t++) {
		if (e->absent[t])
			continue;
		MDB_cursor *c;
		int rc = mdb_cursor_open(r->txn, e->dbi[t], &c);
		if (rc != 0) {
			rv = eng__from_mdb(e, rc, "state_hash: mdb_cursor_open");
			break;
		}
		MDB_val k, v;
		h = fnv_u64(h, (uint64_t)t);
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			h = fnv_u64(h, k.mv_size);
			h = fnv(h, k.mv_data, k.mv_size);
			h = fnv_u64(h, v.mv_size);
			h = fnv(h, v.mv_data, v.mv_size);
		}
		mdb_cursor_close(c);
		if (rc != MDB_NOTFOUND)
			rv = eng__from_mdb(e, rc, "state_hash: mdb_cursor_get");
	}
	if (rv == 0) {
		*hash = h;
		*applied = e->applied_disk;
	}
	eng_read_end(r);
	return rv;
}
