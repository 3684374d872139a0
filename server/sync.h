/* sync.h - incremental-sync answers (openim-protocol.md §7) and the idHash of full-ID lists (§7.4).
 */
#ifndef IM_SYNC_H
#define IM_SYNC_H

#include <jansson.h>

#include "common.h"

/*
 * Until the version logs exist (the relations issue), every log is reported
 * as version 1 of a document whose versionID is derived from (kind, id), and
 * every incremental request is answered `full:true` with null lists: the
 * client then refetches complete lists, which is always correct (§7.2 step 6).
 */

/* {version, versionID, full:true, delete:null, insert:null, update:null}. */
json_t *sync_full_answer(const char *kind, struct im_str id);

/*
 * {version, versionID, equal, <key>: ids}: ids (a JSON array of strings,
 * stolen) is replaced by null when its idHash equals client_hash.
 */
json_t *sync_full_ids(const char *kind, struct im_str id, const char *key, json_t *ids,
		      int64_t client_hash);

/* idHash: first 8 bytes (big-endian) of MD5 over the Go JSON of the id array; 0 when empty. */
uint64_t sync_id_hash(const json_t *ids);

#endif
