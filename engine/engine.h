/* engine.h - the storage engine: one LMDB environment, a command codec and deterministic apply. */
#ifndef IM_ENGINE_H
#define IM_ENGINE_H

#include "common.h"
#include "eng_msg.h"
#include "eng_rel.h"

/*
 * The engine owns one LMDB environment in a directory.  Writes happen only by
 * applying commands (eng_apply), which are the entries of the Raft log: the
 * bytes produced by eng_cmd_encode().  Apply is deterministic: it depends only
 * on the stored state and the command bytes (time and ids are stamped in by the
 * proposer).  The applied log index is written in the same LMDB transaction as
 * the effects, and eng_apply() skips entries whose index is not above it, so a
 * replay after a crash applies nothing twice (design.md promises 4 and 5).
 *
 * Group commit: eng_apply() works inside one open write transaction that it
 * begins on demand; eng_flush() commits it.  Each command runs in a nested
 * transaction, so a command that fails leaves no partial effect.  Until
 * eng_flush() returns 0 nothing of the batch is visible to readers, and the
 * caller must not acknowledge the commands of the batch.
 *
 * Commits use MDB_NOSYNC: durability comes from the Raft log's fsync.
 * eng_sync() forces the data to disk (used before a Raft snapshot claims an
 * index).
 *
 * Threading: an engine is used from one thread (the loop thread).
 */

struct eng;

/* Options for eng_open(). */
struct eng_opts {
	const char *dir; /* data directory of the LMDB environment; created if missing */
	size_t map_size; /* initial map size in bytes (0: 64 MiB) */
	size_t map_max;	 /* the map grows up to this size (0: 1 TiB); then writes are refused */
	bool read_only;	 /* open for offline inspection (imlog check) */
};

/*
 * Opens (creating if needed) the environment in o->dir and checks the schema
 * version in the meta table.  On success *out owns the engine; eng_close()
 * frees it.  Errors: -errno, IM_EVERSION (written by a newer schema),
 * IM_ECORRUPT, IM_ESTORAGE.  On error *out is NULL and, if errmsg is not NULL,
 * a description is written there (errmsg_len bytes at most).
 */
int eng_open(struct eng **out, const struct eng_opts *o, char *errmsg, size_t errmsg_len);

/* Commits nothing: an open batch is aborted.  Safe with NULL. */
void eng_close(struct eng *e);

/* The last error's description (wrapped context), valid until the next call. */
const char *eng_errmsg(const struct eng *e);

/* ---------------------------------------------------------------- records */

/* Token status values, as OpenIM keeps them (openim-protocol.md §2.3). */
enum { ENG_TOKEN_NORMAL = 0, ENG_TOKEN_INVALID = 1, ENG_TOKEN_KICKED = 2, ENG_TOKEN_EXPIRED = 3 };

/* Limits enforced by the codec and apply (keys of LMDB stay below 511 bytes). */
#define ENG_ID_MAX    128   /* userID, groupID, ... */
#define ENG_TEXT_MAX  65535 /* nickname, faceURL, ex, ... */
#define ENG_TOKEN_MAX 379   /* a JWT; ENG_ID_MAX + 2 + this stays under LMDB's 511-byte keys */
#define ENG_BATCH_MAX 10000 /* users in one register command */

/* A user row (sdkws.UserInfo).  Strings are views, valid as documented where returned. */
struct eng_user {
	struct im_str user_id;
	struct im_str nickname;
	struct im_str face_url;
	struct im_str ex;
	int64_t create_time;	  /* ms */
	int32_t app_manger_level; /* sic: OpenIM's spelling */
	int32_t global_recv_msg_opt;
};

/* ---------------------------------------------------------------- commands */

enum eng_cmd_type {
	ENG_CMD_NOOP = 1,	     /* no effect but the applied index */
	ENG_CMD_USER_REGISTER = 2,   /* register users, all or nothing: an existing id fails it */
	ENG_CMD_USER_UPDATE = 3,     /* overwrite fields of one existing user (see field mask) */
	ENG_CMD_TOKEN_ISSUE = 4,     /* store a new token; multi-login policy applied (§2.3) */
	ENG_CMD_TOKEN_KICK = 5,	     /* kick all tokens of (user, platform) but except_token */
	ENG_CMD_USER_CMD_ADD = 6,    /* add one user command: IM_EEXIST if present */
	ENG_CMD_USER_CMD_UPDATE = 7, /* update value/ex of one: IM_ENOTFOUND if absent */
	ENG_CMD_USER_CMD_DEL = 8,    /* delete one: IM_ENOTFOUND if absent */
	ENG_CMD_MSG_SEND = 9,	     /* append message items (eng_msg.h) */
	ENG_CMD_CONV_SET = 10,	     /* create or update conversation rows of owners */
	ENG_CMD_MARK_READ = 11,	     /* raise hasReadSeq; 1:1 marks messages read; + items */
	ENG_CMD_REVOKE = 12,	     /* mark (conv, seq) revoked; + items (the 2101 tip) */
	ENG_CMD_MSG_HIDE = 13,	   /* hide seqs of a conversation for one user ("delete for me") */
	ENG_CMD_CONV_CLEAR = 14,   /* a user's min seq of conversations becomes maxSeq+1 */
	ENG_CMD_GROUP_CREATE = 15, /* a group with its members; + items (notifications) */
	/* Relations (eng_rel.h, openim-protocol.md §8.1); each may carry items too. */
	ENG_CMD_FRIEND_APPLY = 16,   /* create or reset the request (from, to) to pending */
	ENG_CMD_FRIEND_RESPOND = 17, /* agree (both rows) or refuse a pending request */
	ENG_CMD_FRIEND_DELETE = 18,  /* delete owner's row of friend (one direction) */
	ENG_CMD_FRIEND_UPDATE = 19,  /* remark / ex / is_pinned of owner's rows of friends */
	ENG_CMD_FRIEND_IMPORT = 20,  /* mutual rows of owner and each friend (admin) */
	ENG_CMD_BLACK_ADD = 21,	     /* owner blocks a user */
	ENG_CMD_BLACK_REMOVE = 22,   /* owner unblocks a user */
	/* Group membership (eng_msg.h, openim-protocol.md §8.2); + items (notifications). */
	ENG_CMD_GROUP_MEMBERS_ADD = 23,	   /* invite: new members of an existing group */
	ENG_CMD_GROUP_MEMBERS_REMOVE = 24, /* quit / kick: members leave (never the owner) */
	ENG_CMD_GROUP_SET = 25,		   /* masked fields of a group (ENG_GROUP_*) */
	ENG_CMD_MEMBER_SET = 26,	   /* masked fields of members (ENG_MEMBER_*) */
	ENG_CMD_GROUP_TRANSFER = 27,	/* a member becomes owner; the old owner takes its role */
	ENG_CMD_GROUP_DISMISS = 28,	/* status 2; with delete_member every member leaves */
	ENG_CMD_GROUP_REQ_PUT = 29,	/* join requests created or reset to pending */
	ENG_CMD_GROUP_REQ_RESPOND = 30, /* a pending request handled; agree adds the member */
};

/* A user command (OpenIM's "user command": favourites, recent items, ...). */
struct eng_user_cmd {
	struct im_str user_id;
	int32_t type;
	struct im_str uuid;  /* up to ENG_ID_MAX bytes */
	struct im_str value; /* up to ENG_TEXT_MAX bytes */
	struct im_str ex;    /* up to ENG_TEXT_MAX bytes */
	int64_t create_time; /* ms; set from the command's now_ms on add */
};

/* Field mask bits for ENG_CMD_USER_CMD_UPDATE. */
enum { ENG_UCMD_VALUE = 1u << 0, ENG_UCMD_EX = 1u << 1 };

/* Field mask bits for ENG_CMD_USER_UPDATE. */
enum {
	ENG_USER_NICKNAME = 1u << 0,
	ENG_USER_FACE_URL = 1u << 1,
	ENG_USER_EX = 1u << 2,
	ENG_USER_GLOBAL_RECV_MSG_OPT = 1u << 3,
	ENG_USER_APP_MANGER_LEVEL = 1u << 4,
};

/*
 * A decoded command.  Strings are views into the buffer given to
 * eng_cmd_decode() (or, for encoding, owned by the caller).  `users` points to
 * an array the caller owns (encode) or that eng_cmd_decode() allocated in
 * `cmd->alloc` (free with eng_cmd_release()).
 */
struct eng_cmd {
	uint8_t type;	/* enum eng_cmd_type */
	int64_t now_ms; /* proposer's wall clock, the only time apply may use */
	union {
		struct {
			uint32_t n;
			struct eng_user *users;
		} user_register;
		struct {
			uint32_t mask; /* ENG_USER_* bits: which fields of `user` to write */
			struct eng_user user;
		} user_update;
		struct {
			struct im_str user_id;
			int32_t platform_id;
			struct im_str token;
			int64_t expire_at; /* seconds: the JWT's exp */
			int32_t policy;	   /* multi-login policy (1 = kick the same platform) */
			int32_t max_per_platform; /* for policy 0 */
		} token_issue;
		struct {
			struct im_str user_id;
			int32_t platform_id;
			struct im_str except_token; /* this token stays as it is (empty: none) */
		} token_kick;
		struct {
			uint32_t mask; /* ENG_UCMD_* for UPDATE; ignored by ADD and DEL */
			struct eng_user_cmd c;
		} user_cmd;
	} u;
	/*
	 * Message items appended by MSG_SEND (the messages), MARK_READ, REVOKE and
	 * GROUP_CREATE (their notifications), after the command's own effect.
	 */
	uint32_t n_items;
	struct eng_msg_item *items;
	/* The message-side commands (only the member of `type` is used). */
	union {
		struct {
			uint32_t n_owners;
			struct im_str *owners; /* rows of these users; created if missing */
			uint32_t mask;	       /* ENG_CONV_* */
			struct eng_conv conv;  /* conversation_id and the masked fields */
		} conv_set;
		struct {
			struct im_str user_id;
			struct im_str conv_id;
			int64_t
			    has_read_seq; /* raised to this (never lowered); clamped to maxSeq */
			uint32_t n_seqs;
			int64_t *seqs;	/* 1:1 only: also marked read */
			bool mark_msgs; /* 1:1: set isRead on (old, new] and seqs */
		} mark_read;
		struct {
			struct im_str conv_id;
			int64_t seq;
			struct im_str revoker_id;
			int32_t revoker_role;
			struct im_str revoker_nickname;
			int64_t revoke_time;
		} revoke;
		struct {
			struct im_str user_id;
			struct im_str conv_id;
			uint32_t n_seqs;
			int64_t *seqs;
		} msg_hide;
		struct {
			struct im_str user_id;
			uint32_t n_convs;
			struct im_str *conv_ids; /* empty: every conversation of the user */
		} conv_clear;
		struct {
			struct eng_group group;
			uint32_t n_members;
			struct eng_member *members; /* the owner included, role 100 */
		} group_create;
		struct {
			struct im_str group_id;
			uint32_t n_members;
			struct eng_member *members; /* not members yet; group_id ignored */
			bool hide_history; /* new members' sg_ min seq = maxSeq+1 (§8.2) */
		} group_members_add;
		struct {
			struct im_str group_id;
			uint32_t n_users;
			struct im_str *user_ids; /* current members, not the owner */
			int32_t reason;		 /* ENG_GROUP_QUIT or ENG_GROUP_KICK */
		} group_members_remove;
		struct {
			uint32_t mask; /* ENG_GROUP_* */
			struct eng_group
			    group; /* group_id names it; the masked fields are written */
		} group_set;
		struct {
			struct im_str group_id;
			uint32_t n_members;
			struct eng_member *members; /* current members; group_id ignored */
			uint32_t *masks;	    /* ENG_MEMBER_* per member */
		} member_set;
		struct {
			struct im_str group_id;
			struct im_str new_owner; /* a member other than the owner */
		} group_transfer;
		struct {
			struct im_str group_id;
			bool delete_member;
		} group_dismiss;
		struct {
			uint32_t n_reqs;
			struct eng_group_req *reqs; /* each reset to pending with its req_time */
		} group_req_put;
		struct {
			struct im_str group_id;
			struct im_str user_id; /* the applicant */
			struct im_str handler; /* handle_user_id, and the new member's operator */
			int32_t handle_result; /* 1 agree, -1 refuse */
			struct im_str handled_msg;
			bool hide_history; /* as group_members_add */
		} group_req_respond;
	} m;
	/* The relation commands (eng_rel.h; only the member of `type` is used). */
	union eng_rel_cmd r;
	void *alloc; /* decode-time allocation, released by eng_cmd_release() */
};

/*
 * Command wire format (docs/storage.md): a 12-byte header
 *   magic "IM" | version u8 (3; 2 still decodes) | type u8 | payload length u32 BE | CRC-32 u32 BE
 * followed by the payload (big-endian integers, strings as u32 BE length + bytes):
 * now_ms i64, the type's own fields, then the items tail that every type
 * carries: n_items u32 (<= ENG_ITEMS_MAX) and the items.  The CRC covers header
 * bytes 0..7 and the payload, so a flipped type byte is caught too.  Version 1
 * (no items tail, token_kick without except_token) is refused as IM_EVERSION.
 */
#define ENG_CMD_HEADER 12
#define ENG_CMD_MAX    (16u << 20) /* a command is at most 16 MiB */

/*
 * Encodes cmd into out (appended).  Returns 0, IM_EINVAL (a field over its
 * limit, a count over its limit or with a NULL array, unknown type),
 * IM_ETOOBIG or -ENOMEM.
 */
int eng_cmd_encode(const struct eng_cmd *cmd, struct im_buf *out);

/*
 * Decodes len bytes at buf into cmd.  Checks magic, version, length, CRC and
 * every field's bounds; never reads outside [buf, buf+len).  Returns 0,
 * IM_ECORRUPT, IM_ECHECKSUM, IM_EVERSION or -ENOMEM.  On success call
 * eng_cmd_release(cmd) when done; views point into buf, and the arrays
 * (users, items, owners, seqs, conv_ids, members, friend_user_ids) live in
 * cmd->alloc.
 */
int eng_cmd_decode(const void *buf, size_t len, struct eng_cmd *cmd);

/*
 * The length a command's header announces (ENG_CMD_HEADER + payload), or len
 * if the header is short or announces more than len bytes.  Used by the Raft
 * glue, which pads log entries to a multiple of 8 bytes (raft_uv requires it).
 */
size_t eng_cmd_framed_len(const void *buf, size_t len);
void eng_cmd_release(struct eng_cmd *cmd);

/* ---------------------------------------------------------------- apply */

/* The outcome of one command, reported to whoever proposed it. */
struct eng_result {
	int code; /* 0, or a project code: IM_EEXIST, IM_ENOTFOUND, IM_EINVAL, IM_EPERM, IM_ECORRUPT
		   */
	bool skipped;	  /* index was already applied: nothing happened now */
	char detail[160]; /* for errors: e.g. the user id that exists */
	uint32_t n_msgs;  /* message items of the command, in order (0 when code != 0) */
	struct eng_msg_result msgs[ENG_ITEMS_MAX];
};

/*
 * Applies the command at log index `index` (must be > 0).  If index <= the
 * applied index, sets res->skipped and returns 0.  A command that decodes
 * badly or breaks a rule (an existing user on register, ...) still consumes
 * its index: it returns 0 with res->code set and no other effect, because
 * every node must make the same decision.
 *
 * Returns non-zero only for storage failures that mean "not applied, try
 * again": IM_EFULL when the map cannot grow further (writes are refused until
 * the limit is raised; reads go on), IM_ESTORAGE, -ENOMEM.  In that case
 * nothing of this command is applied and the applied index is unchanged.
 * IM_ESTORAGE is also returned when the map must grow while a read txn is
 * open (the map cannot be remapped under it): end the read and retry.  The one
 * exception to "unchanged": if committing the open batch to make room fails,
 * the batch is lost as in eng_flush(); re-apply from eng_applied_index() + 1.
 */
int eng_apply(struct eng *e, uint64_t index, const void *buf, size_t len, struct eng_result *res);

/*
 * Commits the open batch, if any, and then grows the map when it is more than
 * three quarters used.  Returns 0, IM_EFULL, IM_ESTORAGE.  If the commit fails
 * the batch is lost in memory: the engine's applied index goes back to what is
 * on disk, and the caller must re-apply from there (the Raft glue treats this
 * as fatal and restarts from the log).
 */
int eng_flush(struct eng *e);

/* True while a batch is open (eng_apply ran since the last eng_flush). */
bool eng_dirty(const struct eng *e);

/* Flushes, then fsyncs the environment (mdb_env_sync(force=1)). */
int eng_sync(struct eng *e);

/* The applied index: of the open batch if any, else of the last commit. */
uint64_t eng_applied_index(const struct eng *e);

/*
 * Copying the environment for another node (docs/cluster.md, follower
 * install).  eng_copy_begin() (loop thread) pins the map size, since LMDB
 * cannot resize while another thread reads; eng_copy() then writes a
 * consistent copy of the last commit into the existing, empty directory dir
 * (mdb_env_copy2), from any thread; eng_copy_end() (loop thread) unpins.
 * While pinned, an apply that needs a bigger map fails with IM_ESTORAGE and is
 * retried by Raft.  eng_copy returns 0, -errno or IM_ESTORAGE; it does not
 * touch eng_errmsg (thread safety).
 */
void eng_copy_begin(struct eng *e);
int eng_copy(struct eng *e, const char *dir);
void eng_copy_end(struct eng *e);

/*
 * A 64-bit digest (FNV-1a) of every key and value of every table in the last
 * commit, and that commit's applied index.  Two engines that applied the same
 * log prefix have the same digest (deterministic apply), whatever their page
 * layout; the cluster compares nodes with it.  Reads everything: O(data).
 * Returns 0 or an error; uses the engine's read txn (none may be open).
 */
int eng_state_hash(struct eng *e, uint64_t *hash, uint64_t *applied);

/* True once apply hit IM_EFULL at map_max; cleared by a successful apply. */
bool eng_full(const struct eng *e);

/* ---------------------------------------------------------------- reads */

/*
 * A read snapshot (LMDB read transaction).  Views returned by the readers are
 * valid until eng_read_end().  One read txn at a time per engine on the loop
 * thread (it is reused with mdb_txn_reset/renew).
 */
struct eng_rtxn;
int eng_read_begin(struct eng *e, struct eng_rtxn **out);
void eng_read_end(struct eng_rtxn *r);

/* 0 and *out filled, IM_ENOTFOUND, IM_ECORRUPT. */
int eng_user_get(struct eng_rtxn *r, struct im_str user_id, struct eng_user *out);

/* Number of registered users. */
uint64_t eng_user_count(struct eng_rtxn *r);

/*
 * Calls cb for users in registration order, skipping `offset` and stopping
 * after `limit` (0: no limit) or when cb returns non-zero (that value is
 * returned).  Returns 0 or an error.
 */
typedef int (*eng_user_cb)(const struct eng_user *u, void *arg);
int eng_user_scan(struct eng_rtxn *r, uint64_t offset, uint64_t limit, eng_user_cb cb, void *arg);

/*
 * Looks up the status of `token` for (user, platform).  Returns 0 and
 * *status, or IM_ENOTFOUND when the token is not stored.  *any_for_platform
 * (if not NULL) tells whether any token is stored for (user, platform).
 */
int eng_token_status(struct eng_rtxn *r, struct im_str user_id, int32_t platform_id,
		     struct im_str token, int *status, bool *any_for_platform);

/* One stored token. */
struct eng_token {
	struct im_str user_id;
	int32_t platform_id;
	struct im_str token;
	int status;
	int64_t expire_at; /* seconds */
};
typedef int (*eng_token_cb)(const struct eng_token *t, void *arg);
/* Calls cb for each stored token of user (platform_id < 0: every platform). */
int eng_token_scan(struct eng_rtxn *r, struct im_str user_id, int32_t platform_id, eng_token_cb cb,
		   void *arg);

/*
 * Calls cb for each user command of user_id, ordered by (type, uuid); with
 * type >= 0 only that type.  Types order as unsigned 32-bit values, so
 * negative types come after every positive one (and cannot be selected
 * alone).  Views in *c are valid until eng_read_end().  Stops when cb returns
 * non-zero and returns that value; otherwise 0, or IM_ECORRUPT for a record
 * that does not decode.  IM_ENOTFOUND is never returned for "none".
 */
typedef int (*eng_user_cmd_cb)(const struct eng_user_cmd *c, void *arg);
int eng_user_cmd_scan(struct eng_rtxn *r, struct im_str user_id, int32_t type, eng_user_cmd_cb cb,
		      void *arg);

/*
 * Calls cb for every event of the committed batches since the last drain, in
 * log order, then forgets them.  Call after eng_flush() returned 0; events of
 * a batch still open stay for a later drain.  Events are kept in memory until
 * drained, so whoever flushes must drain (the Raft glue, after each flush).
 * cb must not call eng_apply(), eng_flush() or eng_events_drain().
 */
void eng_events_drain(struct eng *e, eng_event_cb cb, void *arg);

/* ---------------------------------------------------------------- message reads */

/* Conversation-wide seqs: 0 and the values, or IM_ENOTFOUND (no message yet). */
int eng_conv_seq(struct eng_rtxn *r, struct im_str conv_id, int64_t *max_seq, int64_t *min_seq,
		 int64_t *max_seq_time);

/*
 * The stored MsgData bytes of (conv, seq) (with seq), a view valid until the
 * read ends; *is_read and *revoked from the message's flags (may be NULL).
 * IM_ENOTFOUND if absent.
 */
int eng_msg_get(struct eng_rtxn *r, struct im_str conv_id, int64_t seq, struct im_str *data,
		bool *is_read, bool *revoked);

/* The revoke record of (conv, seq), if revoked: 0 or IM_ENOTFOUND. Views. */
struct eng_revoke {
	struct im_str revoker_id;
	int32_t revoker_role;
	struct im_str revoker_nickname;
	int64_t revoke_time;
};
int eng_revoke_get(struct eng_rtxn *r, struct im_str conv_id, int64_t seq, struct eng_revoke *out);

/* True when user hid (conv, seq) ("delete for me"). */
bool eng_msg_hidden(struct eng_rtxn *r, struct im_str user_id, struct im_str conv_id, int64_t seq);

/* The dedup record of (send_id, client_msg_id): 0 or IM_ENOTFOUND. */
int eng_msg_dedup(struct eng_rtxn *r, struct im_str send_id, struct im_str client_msg_id,
		  struct im_str *conv_id, int64_t *seq, struct im_str *server_msg_id,
		  int64_t *send_time);

/* A user's conversation row: 0 or IM_ENOTFOUND.  Views. */
int eng_conv_get(struct eng_rtxn *r, struct im_str owner, struct im_str conv_id,
		 struct eng_conv *out);
/* Every conversation row of owner, in conversationID order; cb may stop with non-zero. */
typedef int (*eng_conv_cb)(const struct eng_conv *c, void *arg);
int eng_conv_scan(struct eng_rtxn *r, struct im_str owner, eng_conv_cb cb, void *arg);

/* hasReadSeq of (user, conv), 0 when never set. */
int64_t eng_read_seq(struct eng_rtxn *r, struct im_str user_id, struct im_str conv_id);

/* Groups: 0 or IM_ENOTFOUND.  member_count is filled.  Views. */
int eng_group_get(struct eng_rtxn *r, struct im_str group_id, struct eng_group *out);
/* Every group in groupID order (the CMS search). */
typedef int (*eng_group_cb)(const struct eng_group *g, void *arg);
int eng_group_scan(struct eng_rtxn *r, eng_group_cb cb, void *arg);
int eng_member_get(struct eng_rtxn *r, struct im_str group_id, struct im_str user_id,
		   struct eng_member *out);
/* Members of a group in userID order. */
typedef int (*eng_member_cb)(const struct eng_member *m, void *arg);
int eng_member_scan(struct eng_rtxn *r, struct im_str group_id, eng_member_cb cb, void *arg);
/* Groups a user is a member of, in groupID order (views of the group ids). */
typedef int (*eng_id_cb)(struct im_str id, void *arg);
int eng_user_group_scan(struct eng_rtxn *r, struct im_str user_id, eng_id_cb cb, void *arg);

/* The join request (group, user): 0 or IM_ENOTFOUND.  Views. */
int eng_group_req_get(struct eng_rtxn *r, struct im_str group_id, struct im_str user_id,
		      struct eng_group_req *out);
/* Requests to join group_id (in user order) / made by user_id (in group order). */
typedef int (*eng_group_req_cb)(const struct eng_group_req *q, void *arg);
int eng_group_req_scan_group(struct eng_rtxn *r, struct im_str group_id, eng_group_req_cb cb,
			     void *arg);
int eng_group_req_scan_user(struct eng_rtxn *r, struct im_str user_id, eng_group_req_cb cb,
			    void *arg);

/* ---------------------------------------------------------------- offline */

/*
 * Verifies that every index agrees with the stored data (like SQLite's
 * integrity_check): each user has exactly one registration-order entry and
 * each entry names an existing user; the user count in meta matches; every
 * record decodes; every token and every user command belongs to a
 * registered user; the messages of each conversation are exactly seqs
 * 1..max_seq of conv_seqs, each ending with its seq field; every dedup record
 * and revoke record points to an existing message; every conversation row
 * belongs to a registered user; members and user_groups agree both ways and
 * each group's member_count is its number of members; friend, blacklist
 * and request rows name registered users, friend_reqs_to and friend_reqs
 * agree both ways, friends_by_friend and friends agree both ways (from
 * schema 2), group_reqs rows name an existing group and a registered user
 * and agree both ways with group_reqs_by_user, and every version-log entry
 * has a document whose version is at least the entry's.  It reads the committed state (an open
 * batch is not seen). Writes one line per problem to `report` (may be NULL).  Returns the number of
 * problems (0 = consistent) or a negative error.
 */
int eng_check(struct eng *e, struct im_buf *report);

#endif
