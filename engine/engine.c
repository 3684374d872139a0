/* engine.c - open/close, the meta table, group commit, nested apply, map growth, errors. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_int.h"

/*
 * Invariants of this file:
 *
 *  1. At most one write txn exists: e->batch.  Commands run in nested child
 *     txns of it, so a failed command leaves no partial effect in the batch.
 *  2. e->applied is the applied index including the batch; e->applied_disk is
 *     the one of the last commit.  They differ only while e->batch != NULL.
 *  3. Every successful child writes meta "applied" = its index, so the index
 *     and the effects are committed together (design.md promise 5).
 *  4. mdb_env_set_mapsize() is called only with no write txn and the read txn
 *     not active (it remaps the file; views of an active read would dangle).
 *  5. LMDB codes become project codes only in eng__from_mdb().
 *  6. The events of a command join the event list only if its child commits;
 *     those of the batch become drainable only when the batch commits, and
 *     are dropped with it when it is lost (events.c).
 *
 *        eng_apply            eng_apply (child ok / rejected)
 *   IDLE ----------> BATCH <-------------+
 *     ^                |  \______________/
 *     |   eng_flush    |  child MAP_FULL: commit batch, grow, retry in a new batch
 *     +----------------+
 */

static const char *const table_names[ENG__T_COUNT] = {
#define ENG__TABLE_NAME(id, name, late) [id] = name,
    ENG__TABLES(ENG__TABLE_NAME)
#undef ENG__TABLE_NAME
};

static const bool table_late[ENG__T_COUNT] = {
#define ENG__TABLE_LATE(id, name, late) [id] = late,
    ENG__TABLES(ENG__TABLE_LATE)
#undef ENG__TABLE_LATE
};

int eng__from_mdb(struct eng *e, int rc, const char *what)
{
	e->mdb_rc = rc;
	snprintf(e->errmsg, sizeof(e->errmsg), "%s: %s", what, mdb_strerror(rc));
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return IM_ENOTFOUND;
	case MDB_KEYEXIST:
		return IM_EEXIST;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return IM_EFULL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return IM_ECORRUPT;
	case MDB_VERSION_MISMATCH:
		return IM_EVERSION;
	default:
		break;
	}
	if (rc > 0 && rc < 4096)
		return -rc; /* an errno from the system */
	return IM_ESTORAGE;
}

int eng__errf(struct eng *e, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->errmsg, sizeof(e->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

void eng__wrap(struct eng *e, const char *fmt, ...)
{
	char old[sizeof(e->errmsg)];
	memcpy(old, e->errmsg, sizeof(old));
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->errmsg, sizeof(e->errmsg), fmt, ap);
	va_end(ap);
	size_t o = n < 0 ? 0 : IM_MIN((size_t)n, sizeof(e->errmsg) - 1);
	if (old[0] != '\0')
		snprintf(e->errmsg + o, sizeof(e->errmsg) - o, ": %s", old);
}

const char *eng_errmsg(const struct eng *e)
{
	return e ? e->errmsg : "no engine";
}

MDB_env *eng__env(struct eng *e)
{
	return e->env;
}

MDB_dbi eng__dbi(struct eng *e, enum eng__table t)
{
	return e->dbi[t];
}

/* ---------------------------------------------------------------- meta */

int eng__meta_get_u64(struct eng *e, MDB_txn *txn, const char *key, uint64_t *out)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	int rc = mdb_get(txn, e->dbi[ENG__T_META], &k, &v);
	if (rc == MDB_NOTFOUND)
		return eng__errf(e, IM_ENOTFOUND, "meta %s: missing", key);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_get meta");
	if (v.mv_size != 8)
		return eng__errf(e, IM_ECORRUPT, "meta %s: %zu bytes, want 8", key, v.mv_size);
	*out = im_get_be64(v.mv_data);
	return 0;
}

int eng__meta_put_u64(struct eng *e, MDB_txn *txn, const char *key, uint64_t x)
{
	unsigned char b[8];
	im_put_be64(b, x);
	MDB_val k = {strlen(key), (void *)key}, v = {8, b};
	int rc = mdb_put(txn, e->dbi[ENG__T_META], &k, &v, 0);
	return rc ? eng__from_mdb(e, rc, "mdb_put meta") : 0;
}

/* Opens every table; on a new environment writes the schema and counters. */
static int open_tables(struct eng *e)
{
	MDB_txn *txn;
	unsigned int tflags = e->read_only ? MDB_RDONLY : 0;
	int rc = mdb_txn_begin(e->env, NULL, tflags, &txn);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_txn_begin");
	for (int t = 0; t < ENG__T_COUNT; t++) {
		rc = mdb_dbi_open(txn, table_names[t], e->read_only ? 0 : MDB_CREATE, &e->dbi[t]);
		if (rc == MDB_NOTFOUND && table_late[t]) {
			/* Read-only, written before this table existed: it is empty. */
			e->absent[t] = true;
			continue;
		}
		if (rc == MDB_NOTFOUND) {
			mdb_txn_abort(txn);
			return eng__errf(e, IM_ECORRUPT, "table %s: missing", table_names[t]);
		}
		if (rc != 0) {
			mdb_txn_abort(txn);
			eng__from_mdb(e, rc, "mdb_dbi_open");
			eng__wrap(e, "table %s", table_names[t]);
			return IM_ESTORAGE;
		}
	}
	/* The schema version decides whether this build may touch the data. */
	MDB_val k = {strlen(ENG__META_SCHEMA), ENG__META_SCHEMA}, v;
	int rv = 0;
	rc = mdb_get(txn, e->dbi[ENG__T_META], &k, &v);
	if (rc == MDB_NOTFOUND && !e->read_only) {
		/* A new environment: schema first, then the counters. */
		unsigned char b[4];
		im_put_be32(b, ENG__SCHEMA_VERSION);
		v = (MDB_val){4, b};
		rc = mdb_put(txn, e->dbi[ENG__T_META], &k, &v, MDB_NOOVERWRITE);
		rv = rc ? eng__from_mdb(e, rc, "mdb_put meta schema") : 0;
		if (rv == 0)
			rv = eng__meta_put_u64(e, txn, ENG__META_APPLIED, 0);
		if (rv == 0)
			rv = eng__meta_put_u64(e, txn, ENG__META_USERS, 0);
		if (rv == 0)
			rv = eng__meta_put_u64(e, txn, ENG__META_USER_SEQ, 1);
	} else if (rc == MDB_NOTFOUND) {
		rv = eng__errf(e, IM_ECORRUPT, "meta schema: missing");
	} else if (rc != 0) {
		rv = eng__from_mdb(e, rc, "mdb_get meta schema");
	} else if (v.mv_size != 4) {
		rv = eng__errf(e, IM_ECORRUPT, "meta schema: %zu bytes, want 4", v.mv_size);
	} else if (im_get_be32(v.mv_data) == 0 || im_get_be32(v.mv_data) > ENG__SCHEMA_VERSION) {
		uint32_t ver = im_get_be32(v.mv_data);
		rv = eng__errf(e, ver > ENG__SCHEMA_VERSION ? IM_EVERSION : IM_ECORRUPT,
			       "schema version %" PRIu32 ", this build knows %d", ver,
			       ENG__SCHEMA_VERSION);
	} else if (im_get_be32(v.mv_data) < ENG__SCHEMA_VERSION && !e->read_only) {
		/* Schema 1 -> 2: the friends_by_friend index, then the new version. */
		rv = eng__friends_index_build(e, txn);
		unsigned char b[4];
		im_put_be32(b, ENG__SCHEMA_VERSION);
		v = (MDB_val){4, b};
		rc = rv ? 0 : mdb_put(txn, e->dbi[ENG__T_META], &k, &v, 0);
		rv = rv ? rv : rc ? eng__from_mdb(e, rc, "mdb_put meta schema") : 0;
	} else {
		e->schema = im_get_be32(v.mv_data);
	}
	if (e->schema == 0)
		e->schema = ENG__SCHEMA_VERSION;
	if (rv == 0)
		rv = eng__meta_get_u64(e, txn, ENG__META_APPLIED, &e->applied_disk);
	if (rv != 0) {
		mdb_txn_abort(txn);
		return rv;
	}
	e->applied = e->applied_disk;
	rc = mdb_txn_commit(txn);
	return rc ? eng__from_mdb(e, rc, "mdb_txn_commit") : 0;
}

/* ---------------------------------------------------------------- map size */

static size_t round_pages(size_t n, size_t psize)
{
	return (n + psize - 1) / psize * psize;
}

static int refresh_map(struct eng *e, size_t *used)
{
	MDB_envinfo info;
	int rc = mdb_env_info(e->env, &info);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_env_info");
	e->map_size = info.me_mapsize;
	if (used != NULL)
		*used = (info.me_last_pgno + 1) * e->psize;
	return 0;
}

/* Doubles the map (invariant 4), capped at map_max.  IM_EFULL at the cap. */
static int map_grow(struct eng *e)
{
	if (e->map_size >= e->map_max)
		return eng__errf(e, IM_EFULL, "map at its limit of %zu bytes", e->map_max);
	if (e->rd.active)
		return eng__errf(e, IM_ESTORAGE, "map full: cannot grow while a read txn is open");
	if (e->copies)
		return eng__errf(e, IM_ESTORAGE, "map full: cannot grow while a copy runs");
	size_t want = e->map_size > e->map_max / 2 ? e->map_max : e->map_size * 2;
	want = round_pages(want, e->psize);
	int rc = mdb_env_set_mapsize(e->env, want);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_env_set_mapsize");
	IM_DEBUG("engine: map grown to %zu bytes", want);
	return refresh_map(e, NULL);
}

/* Grows the map ahead of need once more than 3/4 of it is used.  Only with no
 * write txn; silently does nothing while a read is open or at the cap. */
static void map_grow_if_needed(struct eng *e)
{
	size_t used = 0;
	if (e->read_only || e->batch != NULL || e->rd.active || e->copies ||
	    refresh_map(e, &used) != 0)
		return;
	if (used / 3 * 4 > e->map_size && e->map_size < e->map_max)
		map_grow(e);
}

/* ---------------------------------------------------------------- open/close */

int eng_open(struct eng **out, const struct eng_opts *o, char *errmsg, size_t errmsg_len)
{
	*out = NULL;
	struct eng *e = im_calloc(1, sizeof(*e));
	if (e == NULL) {
		if (errmsg && errmsg_len)
			snprintf(errmsg, errmsg_len, "eng_open: out of memory");
		return -ENOMEM;
	}
	e->read_only = o->read_only;
	int rv = 0, rc;
	if (!o->read_only && mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
		rv = eng__errf(e, -errno, "mkdir %s: %s", o->dir, strerror(errno));
		goto err_after_alloc;
	}
	rc = mdb_env_create(&e->env);
	if (rc != 0) {
		rv = eng__from_mdb(e, rc, "mdb_env_create");
		goto err_after_alloc;
	}
	/* Sizes are page multiples; LMDB's page is the OS page. */
	e->psize = (size_t)sysconf(_SC_PAGESIZE);
	size_t map_size = round_pages(o->map_size ? o->map_size : (size_t)64 << 20, e->psize);
	size_t map_max = o->map_max ? o->map_max : (size_t)1 << 40;
	e->map_max = round_pages(IM_MAX(map_max, map_size), e->psize);
	mdb_env_set_maxdbs(e->env, ENG__MAXDBS);
	mdb_env_set_mapsize(e->env, map_size);
	unsigned int flags = MDB_NOSYNC | MDB_NOTLS | (o->read_only ? MDB_RDONLY : 0);
	rc = mdb_env_open(e->env, o->dir, flags, 0644);
	if (rc != 0) {
		rv = eng__from_mdb(e, rc, "mdb_env_open");
		goto err_after_env;
	}
	/* Readers left behind by a killed process pin old pages: free them. */
	int dead = 0;
	mdb_reader_check(e->env, &dead);
	MDB_stat st;
	if (mdb_env_stat(e->env, &st) == 0)
		e->psize = st.ms_psize;
	rv = refresh_map(e, NULL);
	if (rv != 0)
		goto err_after_env;
	/* An existing environment may already be bigger than asked. */
	e->map_max = IM_MAX(e->map_max, e->map_size);
	rv = open_tables(e);
	if (rv != 0)
		goto err_after_env;
	if (!e->read_only)
		map_grow_if_needed(e);
	e->rd.e = e;
	e->errmsg[0] = '\0';
	*out = e;
	return 0;

err_after_env:
	mdb_env_close(e->env);
err_after_alloc:
	eng__wrap(e, "open %s", o->dir);
	if (errmsg && errmsg_len)
		snprintf(errmsg, errmsg_len, "%s", e->errmsg);
	im_free(e);
	return rv;
}

void eng_close(struct eng *e)
{
	if (e == NULL)
		return;
	if (e->batch != NULL)
		mdb_txn_abort(e->batch);
	if (e->rd.txn != NULL)
		mdb_txn_abort(e->rd.txn);
	mdb_env_close(e->env);
	im_buf_free(&e->scratch);
	im_buf_free(&e->removed);
	im_buf_free(&e->events);
	im_free(e);
}

/* ---------------------------------------------------------------- batch */

bool eng_dirty(const struct eng *e)
{
	return e->batch != NULL;
}

uint64_t eng_applied_index(const struct eng *e)
{
	return e->applied;
}

bool eng_full(const struct eng *e)
{
	return e->full;
}

int eng__txn_begin(struct eng *e, unsigned int flags, MDB_txn **out)
{
	int rc = mdb_txn_begin(e->env, NULL, flags, out);
	if (rc == MDB_MAP_RESIZED && e->batch == NULL && !e->rd.active) {
		/* Another process (imlog serving while we inspect) grew the map. */
		rc = mdb_env_set_mapsize(e->env, 0);
		if (rc == 0)
			rc = mdb_txn_begin(e->env, NULL, flags, out);
		if (rc == 0)
			refresh_map(e, NULL);
	}
	if (rc != 0) {
		*out = NULL;
		return eng__from_mdb(e, rc, "mdb_txn_begin");
	}
	return 0;
}

/*
 * Begins the batch, growing the map first if it is more than 3/4 used.  If it
 * still is (at map_max, or a reader blocks the remap), the batch commits after
 * every command: a commit needs a few pages of its own (the free list), and a
 * commit that no longer fits must lose nothing but the command at hand.
 */
static int batch_begin(struct eng *e)
{
	if (e->batch != NULL)
		return 0;
	map_grow_if_needed(e);
	size_t used = 0;
	e->commit_each = refresh_map(e, &used) != 0 || used / 3 * 4 > e->map_size;
	MDB_txn *txn;
	int rv = eng__txn_begin(e, 0, &txn);
	if (rv == 0)
		e->batch = txn;
	return rv;
}

/* Commits the batch.  On failure the batch is lost: the applied index goes
 * back to the committed one and the caller must re-apply from there. */
static int batch_commit(struct eng *e)
{
	if (e->batch == NULL)
		return 0;
	int rc = mdb_txn_commit(e->batch);
	e->batch = NULL;
	if (rc != 0) {
		int rv = eng__from_mdb(e, rc, "mdb_txn_commit");
		eng__wrap(e, "batch lost, applied index back to %" PRIu64, e->applied_disk);
		e->applied = e->applied_disk;
		eng__events_lose(e);
		if (rv == IM_EFULL && e->map_size < e->map_max && !e->rd.active) {
			/* Grow so the re-apply fits; the error and its message stand. */
			char keep[sizeof(e->errmsg)];
			memcpy(keep, e->errmsg, sizeof(keep));
			map_grow(e);
			memcpy(e->errmsg, keep, sizeof(keep));
		}
		return rv;
	}
	e->applied_disk = e->applied;
	eng__events_commit(e);
	return 0;
}

int eng_flush(struct eng *e)
{
	int rv = batch_commit(e);
	if (rv != 0) {
		eng__wrap(e, "flush");
		return rv;
	}
	map_grow_if_needed(e);
	return 0;
}

int eng_sync(struct eng *e)
{
	int rv = eng_flush(e);
	if (rv != 0 || e->read_only)
		return rv;
	int rc = mdb_env_sync(e->env, 1);
	if (rc != 0) {
		rv = eng__from_mdb(e, rc, "mdb_env_sync");
		eng__wrap(e, "sync");
	}
	return rv;
}

/* ---------------------------------------------------------------- apply */

/*
 * One attempt at applying index in a child of the batch.  cmd is NULL when
 * the bytes did not decode (derr says why): the index is consumed with
 * res->code = IM_ECORRUPT.  Returns 0 or a storage error (IM_EFULL when the
 * map is full); on error nothing of the attempt remains.
 */
static int apply_once(struct eng *e, uint64_t index, const struct eng_cmd *cmd, int derr,
		      struct eng_result *res)
{
	MDB_txn *child;
	int rv = batch_begin(e);
	if (rv != 0)
		return rv;
	int rc = mdb_txn_begin(e->env, e->batch, 0, &child);
	if (rc != 0)
		return eng__from_mdb(e, rc, "mdb_txn_begin nested");
	/* The events this command adds go if its child does (invariant 6). */
	size_t ev_mark = e->events.len;
	if (cmd != NULL) {
		rv = eng__apply_cmd(e, child, index, cmd, res);
	} else {
		res->code = IM_ECORRUPT;
		snprintf(res->detail, sizeof(res->detail), "command does not decode: %s",
			 im_strerror(derr));
		rv = ENG__REJECT;
	}
	if (rv == ENG__REJECT) {
		/* A rule was broken: drop the effects, keep only the index. */
		mdb_txn_abort(child);
		eng__events_truncate(e, ev_mark);
		res->n_msgs = 0;
		rc = mdb_txn_begin(e->env, e->batch, 0, &child);
		if (rc != 0)
			return eng__from_mdb(e, rc, "mdb_txn_begin nested");
		rv = 0;
	}
	if (rv == 0)
		rv = eng__meta_put_u64(e, child, ENG__META_APPLIED, index);
	if (rv != 0) {
		mdb_txn_abort(child);
		eng__events_truncate(e, ev_mark);
		return rv;
	}
	rc = mdb_txn_commit(child);
	if (rc != 0) {
		eng__events_truncate(e, ev_mark);
		return eng__from_mdb(e, rc, "mdb_txn_commit nested");
	}
	e->applied = index;
	/* Near the end of the map the batch holds this command only. */
	return e->commit_each ? batch_commit(e) : 0;
}

int eng_apply(struct eng *e, uint64_t index, const void *buf, size_t len, struct eng_result *res)
{
	memset(res, 0, sizeof(*res));
	if (e->read_only)
		return eng__errf(e, IM_EREADONLY, "apply index=%" PRIu64 ": read-only", index);
	if (index == 0)
		return eng__errf(e, IM_EINVAL, "apply: index 0");
	/* Replays after a restart land here (design.md promise 5). */
	if (index <= e->applied) {
		res->skipped = true;
		return 0;
	}
	struct eng_cmd cmd;
	int derr = eng_cmd_decode(buf, len, &cmd);
	if (derr == -ENOMEM)
		return eng__errf(e, -ENOMEM, "apply index=%" PRIu64 ": decode: out of memory",
				 index);
	const char *name = derr == 0 ? eng__cmd_name(cmd.type) : "undecodable";
	bool retried_at_max = false;
	int rv;
	for (;;) {
		memset(res, 0, sizeof(*res));
		rv = apply_once(e, index, derr == 0 ? &cmd : NULL, derr, res);
		if (rv != IM_EFULL)
			break;
		/* The child did not fit: commit what the batch holds, then grow
		 * the map and retry in a fresh batch.  At the cap, retry once. */
		rv = batch_commit(e);
		if (rv != 0)
			break;
		if (e->map_size >= e->map_max) {
			if (retried_at_max) {
				e->full = true;
				rv = eng__errf(e, IM_EFULL, "map full at its limit of %zu bytes",
					       e->map_max);
				break;
			}
			retried_at_max = true;
			continue;
		}
		rv = map_grow(e);
		if (rv != 0)
			break;
	}
	/* Views into buf are no longer needed once the child committed. */
	if (derr == 0)
		eng_cmd_release(&cmd);
	if (rv == 0) {
		e->full = false;
		return 0;
	}
	memset(res, 0, sizeof(*res));
	eng__wrap(e, "apply index=%" PRIu64 " %s", index, name);
	return rv;
}

/* ---------------------------------------------------------------- copies */

void eng_copy_begin(struct eng *e)
{
	e->copies++;
}

void eng_copy_end(struct eng *e)
{
	e->copies--;
}

int eng_copy(struct eng *e, const char *dir)
{
	/* A read txn of its own on the committed state: safe beside the loop's writer (MDB_NOTLS).
	 */
	int rc = mdb_env_copy2(e->env, dir, 0);
	if (rc == 0)
		return 0;
	return rc > 0 ? -rc : IM_ESTORAGE; /* errno, or an LMDB code (negative) */
}
