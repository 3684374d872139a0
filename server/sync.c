/* sync.c - version answers and idHash for the incremental-sync endpoints. */
#include "sync.h"

#include <stdio.h>

#include <mbedtls/md5.h>

#include "json.h"

/* A stable 24-hex versionID for (kind, id), like a MongoDB ObjectID string. */
static void version_id(const char *kind, struct im_str id, char out[25])
{
	unsigned char digest[16];
	mbedtls_md5_context ctx;
	mbedtls_md5_init(&ctx);
	mbedtls_md5_starts_ret(&ctx);
	mbedtls_md5_update_ret(&ctx, (const unsigned char *)"imlog-version|", 14);
	mbedtls_md5_update_ret(&ctx, (const unsigned char *)kind, strlen(kind));
	mbedtls_md5_update_ret(&ctx, (const unsigned char *)"|", 1);
	mbedtls_md5_update_ret(&ctx, (const unsigned char *)id.p, id.n);
	mbedtls_md5_finish_ret(&ctx, digest);
	mbedtls_md5_free(&ctx);
	for (int i = 0; i < 12; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

json_t *sync_full_answer(const char *kind, struct im_str id)
{
	char vid[25];
	version_id(kind, id, vid);
	json_t *o = json_object();
	json_object_set_new(o, "version", json_integer(1));
	json_object_set_new(o, "versionID", json_string(vid));
	json_object_set_new(o, "full", json_true());
	json_object_set_new(o, "delete", json_null());
	json_object_set_new(o, "insert", json_null());
	json_object_set_new(o, "update", json_null());
	return o;
}

uint64_t sync_id_hash(const json_t *ids)
{
	if (json_array_size(ids) == 0)
		return 0;
	struct im_buf b = {0};
	if (json_go_dump(ids, &b) != 0)
		return 0;
	unsigned char digest[16];
	mbedtls_md5_ret((const unsigned char *)b.p, b.len, digest);
	im_buf_free(&b);
	return im_get_be64(digest);
}

json_t *sync_full_ids(const char *kind, struct im_str id, const char *key, json_t *ids,
		      int64_t client_hash)
{
	char vid[25];
	version_id(kind, id, vid);
	bool equal = sync_id_hash(ids) == (uint64_t)client_hash;
	json_t *o = json_object();
	json_object_set_new(o, "version", json_integer(1));
	json_object_set_new(o, "versionID", json_string(vid));
	json_object_set_new(o, "equal", json_boolean(equal));
	if (equal || json_array_size(ids) == 0) {
		json_decref(ids);
		json_object_set_new(o, key, json_null());
	} else {
		json_object_set_new(o, key, ids);
	}
	return o;
}

/* ---------------------------------------------------------------- engine version logs */

static void hex_id(const uint8_t id[ENG_VLOG_ID_LEN], char out[25])
{
	for (int i = 0; i < ENG_VLOG_ID_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

int sync_vlog_state(struct eng_rtxn *rt, int kind, const char *kind_name, struct im_str doc,
		    struct sync_vlog *out)
{
	uint8_t id[ENG_VLOG_ID_LEN];
	int rv = eng_vlog_get(rt, kind, doc, id, &out->version);
	if (rv == 0) {
		hex_id(id, out->version_id);
		out->exists = true;
		return 0;
	}
	if (rv != IM_ENOTFOUND)
		return rv;
	out->exists = false;
	out->version = 1;
	version_id(kind_name, doc, out->version_id);
	return 0;
}

int sync_vlog_after(struct eng_rtxn *rt, int kind, const char *kind_name, struct im_str doc,
		    bool bump, struct sync_vlog *out)
{
	int rv = sync_vlog_state(rt, kind, kind_name, doc, out);
	if (rv == 0 && bump && out->exists)
		out->version++;
	return rv;
}

/* 0 and the 12 bytes of a valid non-zero versionID (24 hex digits), else IM_EINVAL. */
static int parse_vid(struct im_str s, char out[25])
{
	if (s.n != 24)
		return IM_EINVAL;
	bool zero = true;
	for (int i = 0; i < 24; i++) {
		char c = s.p[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return IM_EINVAL;
		zero = zero && c == '0';
		out[i] = c;
	}
	out[24] = '\0';
	return zero ? IM_EINVAL : 0;
}

/* Go's nil slice: null for an empty array (stolen). */
static json_t *null_if_empty(json_t *arr)
{
	if (json_array_size(arr) > 0)
		return arr;
	json_decref(arr);
	return json_null();
}

struct incr {
	struct eng_rtxn *rt;
	struct im_str doc;
	sync_obj_fn obj;
	void *arg;
	json_t *del, *ins, *upd;
	uint64_t sort_version;
	bool sort_only; /* full: only look for the sort marker */
};

static int incr_cb(struct im_str elem, int state, uint64_t version, void *arg)
{
	struct incr *c = arg;
	if (im_str_eq(elem, IM_STR_LIT(ENG_VLOG_SORT_ID))) {
		c->sort_version = version;
		return 0;
	}
	if (c->sort_only)
		return 0;
	if (state == ENG_VLOG_DELETE) {
		json_array_append_new(c->del, json_str(elem));
		return 0;
	}
	json_t *o = c->obj(c->rt, c->doc, elem, c->arg);
	if (o != NULL)
		json_array_append_new(state == ENG_VLOG_INSERT ? c->ins : c->upd, o);
	return 0;
}

#define SYNC_LIMIT 200 /* §7.2: more changed entries than this answer full */

json_t *sync_incremental(struct eng_rtxn *rt, int kind, const char *kind_name, struct im_str doc,
			 struct im_str client_vid, uint64_t client_version, bool sort,
			 sync_obj_fn obj, void *arg, int *err)
{
	struct sync_vlog st;
	*err = sync_vlog_state(rt, kind, kind_name, doc, &st);
	if (*err != 0)
		return NULL;
	char cvid[25], stub[25];
	bool valid = parse_vid(client_vid, cvid) == 0 && client_version > 0;
	uint64_t since = client_version;
	/*
	 * The stub's (versionID, 1) is the empty document before its first
	 * write: once the engine has the document, everything in it is a
	 * change since then (so a client that synced before its first friend
	 * hears of that friend as an insert, not as a full resync).
	 */
	version_id(kind_name, doc, stub);
	bool from_stub = valid && st.exists && client_version == 1 && strcmp(cvid, stub) == 0;
	if (from_stub)
		since = 0;
	bool full = !from_stub &&
		    (!valid || strcmp(cvid, st.version_id) != 0 || client_version > st.version);
	struct incr c = {.rt = rt, .doc = doc, .obj = obj, .arg = arg};
	c.del = json_array();
	c.ins = json_array();
	c.upd = json_array();
	int rv = 0;
	if (!full && since < st.version) {
		rv = eng_vlog_since(rt, kind, doc, since, SYNC_LIMIT, incr_cb, &c);
		if (rv == IM_ETOOBIG) {
			full = true;
			rv = 0;
		}
	}
	if (rv == 0 && full) {
		/* Full: empty lists (step 6); the sort marker's version still reported. */
		json_array_clear(c.del);
		json_array_clear(c.ins);
		json_array_clear(c.upd);
		c.sort_version = 0;
		c.sort_only = true;
		if (sort)
			rv = eng_vlog_since(rt, kind, doc, 0, UINT64_MAX, incr_cb, &c);
	}
	if (rv != 0) {
		json_decref(c.del);
		json_decref(c.ins);
		json_decref(c.upd);
		*err = rv;
		return NULL;
	}
	json_t *o = json_object();
	json_object_set_new(o, "version", json_integer((json_int_t)st.version));
	json_object_set_new(o, "versionID", json_string(st.version_id));
	json_object_set_new(o, "full", json_boolean(full));
	json_object_set_new(o, "delete", null_if_empty(c.del));
	json_object_set_new(o, "insert", null_if_empty(c.ins));
	json_object_set_new(o, "update", null_if_empty(c.upd));
	if (sort)
		json_object_set_new(o, "sortVersion", json_integer((json_int_t)c.sort_version));
	return o;
}

json_t *sync_vlog_full_ids(struct eng_rtxn *rt, int kind, const char *kind_name, struct im_str doc,
			   const char *key, json_t *ids, int64_t client_hash, int *err)
{
	struct sync_vlog st;
	*err = sync_vlog_state(rt, kind, kind_name, doc, &st);
	if (*err != 0) {
		json_decref(ids);
		return NULL;
	}
	bool equal = sync_id_hash(ids) == (uint64_t)client_hash;
	json_t *o = json_object();
	json_object_set_new(o, "version", json_integer((json_int_t)st.version));
	json_object_set_new(o, "versionID", json_string(st.version_id));
	json_object_set_new(o, "equal", json_boolean(equal));
	if (equal || json_array_size(ids) == 0) {
		json_decref(ids);
		json_object_set_new(o, key, json_null());
	} else {
		json_object_set_new(o, key, ids);
	}
	return o;
}
