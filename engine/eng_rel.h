/* eng_rel.h - the engine's relations: version logs, friends, friend requests, blacklists. */
#ifndef IM_ENG_REL_H
#define IM_ENG_REL_H

/*
 * Included by engine.h.  openim-protocol.md §7 (incremental sync) and §8.1
 * (friend semantics); the tables and commands are in docs/storage.md.
 *
 * Version logs (§7.1).  A document is identified by (kind, doc_id): the
 * owner's userID for friend, black, join-group and conversation logs, the
 * groupID for group-member logs.  It holds a versionID (12 bytes, shown as 24
 * hex digits like an ObjectID), a version and, per element, only its latest
 * entry {state, version, last_update}.  A document is created by the first
 * command that writes to it, with version 1 and a versionID derived from
 * (kind, doc_id, log index) (no randomness at apply, so every node agrees);
 * every later command that writes to it adds 1, however many elements it
 * writes.  A document is never deleted today (`deleted` stays 0).
 */

/* The kinds of version log. */
enum eng_vlog_kind {
	ENG_VLOG_FRIEND = 1,	   /* owner -> friend userIDs */
	ENG_VLOG_BLACK = 2,	   /* owner -> blocked userIDs */
	ENG_VLOG_JOIN_GROUP = 3,   /* userID -> groupIDs */
	ENG_VLOG_GROUP_MEMBER = 4, /* groupID -> member userIDs, "" and the sort marker */
	ENG_VLOG_CONVERSATION = 5, /* owner -> conversationIDs */
};
#define ENG_VLOG_KIND_MAX ENG_VLOG_CONVERSATION

/* Entry states, as OpenIM stores them. */
enum { ENG_VLOG_INSERT = 1, ENG_VLOG_DELETE = 2, ENG_VLOG_UPDATE = 3 };

#define ENG_VLOG_ID_LEN 12 /* a versionID: 12 bytes, 24 lowercase hex digits on the wire */
/* The element whose version is the sortVersion (§7.2 step 5). */
#define ENG_VLOG_SORT_ID "____S_O_R_T_I_D____"

#define ENG_FRIENDS_MAX 10000 /* friends named by one update or import command */

/* A friend row (owner's view of friend; relation.FriendInfo without the profile). */
struct eng_friend {
	struct im_str owner_user_id;
	struct im_str friend_user_id;
	struct im_str remark;
	int64_t create_time; /* ms: the now_ms of the command that made the row */
	int32_t add_source;  /* 1 imported, 2 by application */
	struct im_str operator_user_id;
	struct im_str ex;
	bool is_pinned;
};

/* Add sources of a friend row. */
enum { ENG_FRIEND_BY_IMPORT = 1, ENG_FRIEND_BY_APPLY = 2 };

/* A friend request (sdkws.FriendRequest without the profiles), keyed by (from, to). */
struct eng_friend_req {
	struct im_str from_user_id;
	struct im_str to_user_id;
	int32_t handle_result; /* 0 pending, 1 accepted, -1 refused */
	struct im_str req_msg;
	int64_t create_time; /* ms */
	struct im_str handler_user_id;
	struct im_str handle_msg;
	int64_t handle_time; /* ms; 0 until handled */
	struct im_str ex;
};

/* A blacklist row: owner blocks block_user_id. */
struct eng_black {
	struct im_str owner_user_id;
	struct im_str block_user_id;
	int64_t create_time; /* ms */
	int32_t add_source;
	struct im_str operator_user_id;
	struct im_str ex;
};

/* Field mask bits for ENG_CMD_FRIEND_UPDATE. */
enum { ENG_FRIEND_REMARK = 1u << 0, ENG_FRIEND_EX = 1u << 1, ENG_FRIEND_IS_PINNED = 1u << 2 };

/*
 * The fields of the relation commands (struct eng_cmd member `r`; only the
 * member of the command's type is used).  Strings are views like the rest of
 * a command; the friend arrays are owned by the caller (encode) or live in
 * cmd->alloc (decode).
 */
union eng_rel_cmd {
	struct {
		struct im_str from_user_id;
		struct im_str to_user_id;
		struct im_str req_msg;
		struct im_str ex;
	} friend_apply;
	struct {
		struct im_str from_user_id; /* the applicant */
		struct im_str to_user_id;   /* the responder (handler and operator) */
		int32_t handle_result;	    /* 1 agree, -1 refuse */
		struct im_str handle_msg;
	} friend_respond;
	struct {
		struct im_str owner_user_id;
		struct im_str friend_user_id;
	} friend_delete;
	struct {
		struct im_str owner_user_id;
		uint32_t n_friends;
		struct im_str *friend_user_ids;
		uint32_t mask; /* ENG_FRIEND_* */
		struct im_str remark;
		struct im_str ex;
		bool is_pinned;
	} friend_update;
	struct {
		struct im_str owner_user_id;
		uint32_t n_friends;
		struct im_str *friend_user_ids;
		struct im_str operator_user_id; /* empty: the owner */
	} friend_import;
	struct {
		struct im_str owner_user_id;
		struct im_str black_user_id;
		struct im_str ex;
		struct im_str operator_user_id; /* empty: the owner */
	} black_add;
	struct {
		struct im_str owner_user_id;
		struct im_str black_user_id;
	} black_remove;
};

/* ---------------------------------------------------------------- reads */

/*
 * The readers below take the engine's read snapshot (engine.h); views are
 * valid until eng_read_end().  Arguments that no stored key can have (an empty
 * or oversized id, an unknown kind) read as absent.  Scans stop when cb
 * returns non-zero and return that value; otherwise 0, or IM_ECORRUPT for a
 * record that does not decode.
 */
struct eng_rtxn;

/*
 * The document (kind, doc_id): 0 with its versionID and version, or
 * IM_ENOTFOUND when nothing was ever written to it.
 */
int eng_vlog_get(struct eng_rtxn *r, int kind, struct im_str doc_id,
		 uint8_t version_id[ENG_VLOG_ID_LEN], uint64_t *version);

/*
 * Calls cb for each element of (kind, doc_id) whose entry has a version above
 * `since`, in element (byte) order.  If more than `limit` entries match
 * (§7.2 step 4: 200), cb is never called and IM_ETOOBIG is returned.  The
 * element views are valid until eng_read_end().  A document never written has
 * no entries (0).
 */
typedef int (*eng_vlog_cb)(struct im_str elem, int state, uint64_t version, void *arg);
int eng_vlog_since(struct eng_rtxn *r, int kind, struct im_str doc_id, uint64_t since,
		   uint64_t limit, eng_vlog_cb cb, void *arg);

/* owner's row of friend: 0 or IM_ENOTFOUND.  Views. */
int eng_friend_get(struct eng_rtxn *r, struct im_str owner, struct im_str friend_id,
		   struct eng_friend *out);

/*
 * owner's friends in friend userID order, skipping `offset` and stopping after
 * `limit` (0: no limit).  *total (may be NULL) gets the number of owner's
 * friends when the scan ran to the end (cb never stopped it).
 */
typedef int (*eng_friend_cb)(const struct eng_friend *f, void *arg);
int eng_friend_scan(struct eng_rtxn *r, struct im_str owner, uint64_t offset, uint64_t limit,
		    eng_friend_cb cb, void *arg, uint64_t *total);

/* The request (from, to): 0 or IM_ENOTFOUND.  Views. */
int eng_friend_req_get(struct eng_rtxn *r, struct im_str from, struct im_str to,
		       struct eng_friend_req *out);

/* Requests sent by `from` (in to order) / received by `to` (in from order). */
typedef int (*eng_friend_req_cb)(const struct eng_friend_req *q, void *arg);
int eng_friend_req_scan_from(struct eng_rtxn *r, struct im_str from, eng_friend_req_cb cb,
			     void *arg);
int eng_friend_req_scan_to(struct eng_rtxn *r, struct im_str to, eng_friend_req_cb cb, void *arg);

/* owner's blacklist row of black: 0 or IM_ENOTFOUND.  Views. */
int eng_black_get(struct eng_rtxn *r, struct im_str owner, struct im_str black,
		  struct eng_black *out);

/* owner's blacklist in userID order; offset, limit and *total as eng_friend_scan. */
typedef int (*eng_black_cb)(const struct eng_black *b, void *arg);
int eng_black_scan(struct eng_rtxn *r, struct im_str owner, uint64_t offset, uint64_t limit,
		   eng_black_cb cb, void *arg, uint64_t *total);

#endif
