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
