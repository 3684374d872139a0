/* sync.h - incremental-sync answers (openim-protocol.md §7) and the idHash of full-ID lists (§7.4).
 */
#ifndef IM_SYNC_H
#define IM_SYNC_H

#include <jansson.h>

#include "common.h"
#include "engine.h"

/*
 * The logs the engine keeps (friend, black, join-group, group-member;
 * eng_rel.h) are answered from the engine's version log by sync_incremental()
 * and sync_vlog_full_ids().  sync_full_answer() and sync_full_ids() report
 * the stub (version 1 of a document whose versionID is derived from (kind,
 * id), `full:true`, null lists) for logs the engine does not keep; the 1501
 * tips carry that stub's version of the group-member log.
 *
 * A document the engine never wrote is reported like the stub: version 1 and
 * the versionID derived from (kind name, id) (§7.1 "created lazily, empty,
 * version 1, the first time it is read").  Its first write creates the
 * engine's document with a different versionID; an incremental request
 * that presents the stub's (versionID, version 1) after that is answered,
 * not full, with every entry of the engine's document (the changes since
 * the empty document) and the engine's versionID.  So the JS SDK, which
 * ignores `full` and fires events only from insert/update/delete (§7.3),
 * still hears of a user's first friend.
 */

/* The state of a version log as reported to clients. */
struct sync_vlog {
	uint64_t version;
	char version_id[25]; /* 24 lowercase hex digits */
	bool exists;	     /* the engine has the document */
};

/* Reads (kind, doc) (kind_name names it for the stub versionID): 0 or an engine error. */
int sync_vlog_state(struct eng_rtxn *rt, int kind, const char *kind_name, struct im_str doc,
		    struct sync_vlog *out);

/*
 * The state (kind, doc) will have after one command that writes to it is
 * applied (eng_rel.h: a new document starts at version 1, an existing one
 * adds 1).  When `bump` is false the current state.  The versionID of a
 * document that does not exist yet depends on the log index, unknown before
 * the proposal: the stub's is reported, which sync_incremental() accepts
 * as "the empty document" (above).
 */
int sync_vlog_after(struct eng_rtxn *rt, int kind, const char *kind_name, struct im_str doc,
		    bool bump, struct sync_vlog *out);

/*
 * Builds the object of one changed element (insert or update) of (kind, doc),
 * or returns NULL to leave it out (the row is gone).
 */
typedef json_t *(*sync_obj_fn)(struct eng_rtxn *rt, struct im_str doc, struct im_str elem,
			       void *arg);

/*
 * The incremental answer of §7.2 for (kind, doc) from the client's
 * (versionID, version): {version, versionID, full, delete, insert, update}
 * and, with sort (friend logs), sortVersion: the version of the sort marker
 * when its entry is among the changes (or, when full, present at all), else 0.
 * Returns NULL with *err set to an engine error.
 */
json_t *sync_incremental(struct eng_rtxn *rt, int kind, const char *kind_name, struct im_str doc,
			 struct im_str client_vid, uint64_t client_version, bool sort,
			 sync_obj_fn obj, void *arg, int *err);

/*
 * {version, versionID, equal, <key>: ids} for a log the engine keeps: ids (a
 * JSON array of strings, stolen) is replaced by null when its idHash equals
 * client_hash or it is empty.  NULL with *err set on an engine error.
 */
json_t *sync_vlog_full_ids(struct eng_rtxn *rt, int kind, const char *kind_name, struct im_str doc,
			   const char *key, json_t *ids, int64_t client_hash, int *err);

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
