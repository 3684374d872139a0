/* engine_int.h - private to engine/: the engine struct, the table list, record codecs. */
#ifndef IM_ENGINE_INT_H
#define IM_ENGINE_INT_H

#include <lmdb.h>

#include "engine.h"

/*
 * The named sub-databases of the environment (docs/storage.md).  Adding a
 * table is one line here: eng_open() opens (and creates) every table in this
 * list, in this order, and struct eng keeps one handle per table.
 *
 * The third column says whether the table may be missing: 1 for a table added
 * after schema 1 shipped without a schema bump.  An environment written before
 * it lacks it; a read-write open creates it, a read-only open (which cannot)
 * marks it absent (struct eng.absent) and its readers see an empty table.
 */
#define ENG__TABLES(X)                                                                             \
	X(ENG__T_META, "meta", 0)                                                                  \
	X(ENG__T_USERS, "users", 0)                                                                \
	X(ENG__T_USER_ORDER, "user_order", 0)                                                      \
	X(ENG__T_TOKENS, "tokens", 0)                                                              \
	X(ENG__T_USER_CMDS, "user_cmds", 1)                                                        \
	X(ENG__T_MSGS, "msgs", 1)                                                                  \
	X(ENG__T_CONV_SEQS, "conv_seqs", 1)                                                        \
	X(ENG__T_MSG_DEDUP, "msg_dedup", 1)                                                        \
	X(ENG__T_CONVS, "convs", 1)                                                                \
	X(ENG__T_READ_SEQS, "read_seqs", 1)                                                        \
	X(ENG__T_HIDDEN, "hidden", 1)                                                              \
	X(ENG__T_REVOKES, "revokes", 1)                                                            \
	X(ENG__T_GROUPS, "groups", 1)                                                              \
	X(ENG__T_MEMBERS, "members", 1)                                                            \
	X(ENG__T_USER_GROUPS, "user_groups", 1)                                                    \
	X(ENG__T_VLOGS, "vlogs", 1)                                                                \
	X(ENG__T_VLOG_ENTRIES, "vlog_entries", 1)                                                  \
	X(ENG__T_FRIENDS, "friends", 1)                                                            \
	X(ENG__T_FRIEND_REQS, "friend_reqs", 1)                                                    \
	X(ENG__T_FRIEND_REQS_TO, "friend_reqs_to", 1)                                              \
	X(ENG__T_BLACKS, "blacks", 1)                                                              \
	X(ENG__T_GROUP_REQS, "group_reqs", 1)                                                      \
	X(ENG__T_GROUP_REQS_BY_USER, "group_reqs_by_user", 1)                                      \
	X(ENG__T_FRIENDS_BY_FRIEND, "friends_by_friend", 1)

enum eng__table {
#define ENG__TABLE_ENUM(id, name, late) id,
	ENG__TABLES(ENG__TABLE_ENUM)
#undef ENG__TABLE_ENUM
	    ENG__T_COUNT
};

/* Keys of the meta table.  Values are big-endian integers. */
#define ENG__META_SCHEMA   "schema"	   /* u32: the schema version */
#define ENG__META_APPLIED  "applied"	   /* u64: the last applied log index */
#define ENG__META_USERS	   "user_count"	   /* u64: number of users */
#define ENG__META_USER_SEQ "user_seq_next" /* u64: next registration sequence (from 1) */

/*
 * Schema 2 added friends_by_friend, an index of friends that schema 1 data
 * lacks: a read-write open of schema 1 builds it from friends and writes 2.
 * A read-only open of schema 1 works (the index reads as absent).
 */
#define ENG__SCHEMA_VERSION 2
#define ENG__MAXDBS	    32

/* Leading format byte of every record value, so records can evolve. */
#define ENG__REC_USER_V1   1
#define ENG__REC_TOKEN_V1  1
#define ENG__REC_UCMD_V1   1
#define ENG__REC_MSG_V1	   1
#define ENG__REC_SEQ_V1	   1
#define ENG__REC_DEDUP_V1  1
#define ENG__REC_CONV_V1   1
#define ENG__REC_REVOKE_V1 1
#define ENG__REC_GROUP_V1  1
#define ENG__REC_MEMBER_V1 1
#define ENG__REC_VLOG_V1   1
#define ENG__REC_VENTRY_V1 1
#define ENG__REC_FRIEND_V1 1
#define ENG__REC_FREQ_V1   1
#define ENG__REC_BLACK_V1  1
#define ENG__REC_GREQ_V1   1

/* A token value: format u8 | status u8 | expire_at i64 BE | issued_ms i64 BE. */
#define ENG__TOKEN_VAL_LEN 18
/* A token key: userID | 0x00 | platformID u8 | token bytes. */
#define ENG__TOKEN_KEY_MAX (ENG_ID_MAX + 2 + ENG_TOKEN_MAX)

/* A user command key: userID | 0x00 | type u32 BE | uuid bytes. */
#define ENG__UCMD_KEY_MAX (ENG_ID_MAX + 1 + 4 + ENG_ID_MAX)

/* The one read snapshot of an engine, reused with mdb_txn_reset/renew. */
struct eng_rtxn {
	struct eng *e;
	MDB_txn *txn; /* NULL until the first eng_read_begin() */
	bool active;  /* between eng_read_begin() and eng_read_end() */
};

struct eng {
	MDB_env *env;
	MDB_dbi dbi[ENG__T_COUNT];
	/* Read-only open: the late tables this environment lacks (empty). */
	bool absent[ENG__T_COUNT];
	size_t psize;	 /* LMDB page size */
	size_t map_size; /* current map size */
	size_t map_max;	 /* the map never grows past this */
	bool read_only;
	uint32_t schema;       /* the stored schema version (older only on a read-only open) */
	bool full;	       /* the last apply hit IM_EFULL at map_max */
	MDB_txn *batch;	       /* the open group-commit write txn, or NULL */
	bool commit_each;      /* the map is nearly full: commit after each command */
	int copies;	       /* eng_copy() runs on other threads: the map may not grow */
	uint64_t applied;      /* applied index, including the open batch */
	uint64_t applied_disk; /* applied index of the last commit */
	struct eng_rtxn rd;
	int mdb_rc;	       /* raw LMDB code last seen by eng__from_mdb() */
	struct im_buf scratch; /* reused record buffer for apply */
	/*
	 * The users a GROUP_DISMISS with delete_member removed, joined by 0x00:
	 * the extra recipients of its items (apply_msg.c).  Emptied before
	 * each command.
	 */
	struct im_buf removed;
	/*
	 * Events (eng_msg.h) serialised back to back in log order (events.c).
	 * The first events_committed bytes belong to committed batches; the
	 * rest to the open batch, dropped if it is lost.
	 */
	struct im_buf events;
	size_t events_committed;
	char errmsg[512];
};

/*
 * apply: the result of a command handler that broke a rule (an existing user,
 * an unknown user, a bad argument).  res->code and res->detail are set; the
 * nested txn is aborted and only the applied index is written.
 */
#define ENG__REJECT 1

/* The single place where LMDB codes become project codes (engine.c).  It
 * records rc in e->mdb_rc and sets errmsg to "<what>: <mdb_strerror(rc)>". */
int eng__from_mdb(struct eng *e, int rc, const char *what);

/* Sets / prefixes the engine's error message (printf style).  Return err. */
int eng__errf(struct eng *e, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void eng__wrap(struct eng *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The name of a command type for messages ("user_register"), or "unknown". */
const char *eng__cmd_name(int type);

/* apply.c: runs one decoded command (log index `index`) inside txn.  0,
 * ENG__REJECT, or < 0.  The command's items run after its own effect. */
int eng__apply_cmd(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		   struct eng_result *res);

/* Fills res for a broken rule; the detail names the offending value.  Returns ENG__REJECT. */
int eng__reject(struct eng_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints at most 64 bytes of an id for a detail message. */
#define ENG__ID_FMT	"%.*s"
#define ENG__ID_ARG(id) (int)IM_MIN((id).n, 64u), (id).p

/*
 * apply_msg.c: the message-side command handlers (same contract as the
 * handlers of apply.c) and the items tail of any command.
 */
int eng__apply_msg_cmd(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		       struct eng_result *res);
int eng__apply_items(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		     struct eng_result *res);

/*
 * apply_msg.c helpers shared with apply_group.c.  ENG__ABSENT is what the
 * lookups return for "no such row" besides 0, ENG__REJECT and errors.
 */
#define ENG__ABSENT 2

/*
 * Row access inside an apply txn, shared by apply*.c (apply.c).  `what`
 * names the call in the engine's error message.  put: 0 or a negative error
 * (IM_EEXIST with MDB_NOOVERWRITE); get: 0 with *val (a view into the map,
 * valid until the next write), ENG__ABSENT or < 0; del: 0, ENG__ABSENT or < 0.
 */
int eng__put(struct eng *e, MDB_txn *txn, enum eng__table t, const void *k, size_t kn,
	     const void *v, size_t vn, unsigned int flags, const char *what);
int eng__get(struct eng *e, MDB_txn *txn, enum eng__table t, const void *k, size_t kn, MDB_val *val,
	     const char *what);
int eng__del(struct eng *e, MDB_txn *txn, enum eng__table t, const void *k, size_t kn,
	     const char *what);
/* n bytes of the engine's scratch buffer, or NULL (errmsg set) when out of memory. */
unsigned char *eng__scratch(struct eng *e, size_t n);
struct eng__conv_seq;
/* The conv_seqs row of conv; all zero when the conversation has no message yet. */
int eng__conv_seq_get(struct eng *e, MDB_txn *txn, struct im_str conv, struct eng__conv_seq *out,
		      struct eng_result *res);
/* owner's row of conv into *c (views may point into the map): 0, ENG__ABSENT, REJECT, < 0. */
int eng__conv_row_get(struct eng *e, MDB_txn *txn, struct im_str owner, struct im_str conv,
		      struct eng_conv *c, struct eng_result *res);
/* Encodes c first (its views may point into the map), then stores it. */
int eng__conv_row_put(struct eng *e, MDB_txn *txn, struct im_str owner, const struct eng_conv *c);
/* "sg_<group>" into buf (ENG_CONV_ID_MAX + 1 bytes). */
struct im_str eng__group_conv(char *buf, struct im_str gid);
/* The stored group (views into the map): 0, ENG__REJECT (EINVAL, ENOTFOUND, ECORRUPT), < 0. */
int eng__group_read(struct eng *e, MDB_txn *txn, struct im_str gid, struct eng_group *g,
		    struct eng_result *res);
/* Encodes g first, then stores it under g->group_id. */
int eng__group_put(struct eng *e, MDB_txn *txn, const struct eng_group *g);
/*
 * One user joins m->group_id (member_count is the caller's to adjust): the
 * members and user_groups rows, the sg_ row (created, or its cap cleared;
 * with hide_history min_seq = maxSeq + 1), the CONVERSATION and membership
 * logs.  The user must be registered (IM_ENOTFOUND) and not a member
 * (IM_EEXIST).
 */
int eng__member_join(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
		     const struct eng_member *m, bool hide_history, struct eng_result *res);
/*
 * One member leaves gid (member_count is the caller's): the rows go, the
 * sg_ row is capped at max_seq (CONVERSATION UPDATE), the membership logs
 * get DELETE.  Not a member: IM_ENOTFOUND.
 */
int eng__member_leave(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
		      struct im_str gid, struct im_str uid, int64_t max_seq,
		      struct eng_result *res);

/* apply_group.c: GROUP_SET .. GROUP_REQ_RESPOND (same contract). */
int eng__apply_group_cmd(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
			 struct eng_result *res);

/*
 * apply_rel.c: a FRIEND log UPDATE of user in every owner that has user as a
 * friend (a profile change, §7.1), found through friends_by_friend.
 */
int eng__friend_profile_changed(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms,
				struct im_str user, struct eng_result *res);
/* apply_rel.c: builds friends_by_friend from friends (the schema 1 -> 2 upgrade). */
int eng__friends_index_build(struct eng *e, MDB_txn *txn);

/*
 * apply_rel.c: the relation command handlers (same contract).  `index` is
 * the command's log index, from which new version-log documents derive their
 * versionID.
 */
int eng__apply_rel_cmd(struct eng *e, MDB_txn *txn, uint64_t index, const struct eng_cmd *cmd,
		       struct eng_result *res);

/*
 * Writes the entry {state, version, now_ms} of elem in the version log (kind,
 * doc) (openim-protocol.md §7.1), replacing the element's previous entry.  The
 * document is created at its first write (version 1, versionID derived from
 * (kind, doc, index)); otherwise its version rises by 1 at the first write of
 * a command (index) and stays for the command's further writes, so a command
 * bumps each document it touches once.  Any command handler may call it.
 * doc must be a valid id and elem at most ENG_CONV_ID_MAX bytes without NUL
 * (it may be empty: the group-member log's "group info" element).  Returns 0,
 * ENG__REJECT (res filled: a stored document that does not decode) or < 0.
 */
int eng__vlog_write(struct eng *e, MDB_txn *txn, uint64_t index, int64_t now_ms, int kind,
		    struct im_str doc, struct im_str elem, int state, struct eng_result *res);

/* events.c: the event list of struct eng.  extra: eng_event.extra (ids joined by 0x00). */
int eng__event_add(struct eng *e, uint64_t index, const struct eng_msg_item *it, uint64_t seq,
		   struct im_str stored, struct im_str extra);
/* Drops the events added after `mark` (a byte offset: e->events.len before a command). */
void eng__events_truncate(struct eng *e, size_t mark);
/* The open batch committed: its events may be drained. */
void eng__events_commit(struct eng *e);
/* The open batch was lost: its events are dropped. */
void eng__events_lose(struct eng *e);

/* Begins a top-level txn (flags 0 or MDB_RDONLY), adopting a map grown by
 * another process (MDB_MAP_RESIZED) when it safely can. */
int eng__txn_begin(struct eng *e, unsigned int flags, MDB_txn **out);

/*
 * Steps cursor c through the keys that start with pfx: op MDB_SET_RANGE for
 * the first key, MDB_NEXT after (also right after mdb_cursor_del).  Returns 0
 * with key/val set, 1 past the prefix range, or a negative error.
 */
int eng__prefix_step(struct eng *e, MDB_cursor *c, const void *pfx, size_t pn, MDB_val *key,
		     MDB_val *val, MDB_cursor_op op);

/*
 * Readers shared by read*.c.  A table that a read-only open found missing
 * (ENG__T_* in e->absent) reads as empty.
 *  - rcursor: a cursor on t, or *c = NULL for an absent table.
 *  - rlookup: key looked up with a cursor (so views into the key stay valid
 *    like the value's): 0 with key/val, IM_ENOTFOUND, or an error.
 *  - pair tables, keyed (a, b) (eng__key_join): pair_get decodes the row
 *    (a, b) with fn: 0, IM_ENOTFOUND, IM_ECORRUPT or an error; pair_scan
 *    walks the rows of a, skipping `offset` and stopping after `limit` (0:
 *    none) rows handed to cb, and counts them all into *total (may be NULL)
 *    when cb never stops the walk.
 */
typedef int (*eng__pair_decode_fn)(struct im_str a, struct im_str b, const MDB_val *val, void *out);
int eng__rcursor(struct eng_rtxn *r, enum eng__table t, MDB_cursor **c, const char *what);
int eng__rlookup(struct eng_rtxn *r, enum eng__table t, MDB_val *key, MDB_val *val,
		 const char *what);
int eng__pair_get(struct eng_rtxn *r, enum eng__table t, struct im_str a, struct im_str b,
		  eng__pair_decode_fn fn, void *out, const char *what);
int eng__pair_scan(struct eng_rtxn *r, enum eng__table t, struct im_str a, uint64_t offset,
		   uint64_t limit, eng__pair_decode_fn fn, void *row,
		   int (*cb)(const void *row, void *arg), void *arg, uint64_t *total,
		   const char *what);

/* Meta table helpers: a missing key reads as IM_ENOTFOUND. */
int eng__meta_get_u64(struct eng *e, MDB_txn *txn, const char *key, uint64_t *out);
int eng__meta_put_u64(struct eng *e, MDB_txn *txn, const char *key, uint64_t v);

/* ---------------------------------------------------------- record codecs (codec.c) */

/* Size of a user record, and its encoding into p (exactly that many bytes). */
size_t eng__user_rec_size(const struct eng_user *u);
void eng__user_rec_encode(unsigned char *p, const struct eng_user *u, uint64_t seq);

/* Decodes a user record; user_id is the table key.  Views point into val. 0,
 * IM_ECORRUPT or IM_EVERSION. */
int eng__user_rec_decode(const void *val, size_t len, struct im_str user_id, struct eng_user *out,
			 uint64_t *seq);

struct eng__token_val {
	int status;
	int64_t expire_at;
	int64_t issued_ms;
};
void eng__token_val_encode(unsigned char p[ENG__TOKEN_VAL_LEN], const struct eng__token_val *v);
int eng__token_val_decode(const void *val, size_t len, struct eng__token_val *out);

/* Writes the token key (or, with an empty token, the (user, platform)
 * prefix; with platform_id < 0 the user prefix) into buf, returns its length. */
size_t eng__token_key(unsigned char *buf, struct im_str user_id, int32_t platform_id,
		      struct im_str token);
/* Splits a token key.  0 or IM_ECORRUPT. */
int eng__token_key_parse(const void *key, size_t len, struct im_str *user_id, int32_t *platform_id,
			 struct im_str *token);

/*
 * user_cmds records.  The key builders write into buf (ENG__UCMD_KEY_MAX
 * bytes) and return the length: eng__ucmd_prefix() the prefix of every command
 * of a user, eng__ucmd_key() the full key (with an empty uuid: the prefix of
 * one type).  The value is format u8 | create_time i64 BE | value str | ex str.
 */
size_t eng__ucmd_prefix(unsigned char *buf, struct im_str user_id);
size_t eng__ucmd_key(unsigned char *buf, struct im_str user_id, int32_t type, struct im_str uuid);
/* Splits a key into out->user_id, type and uuid (views into key).  0 or IM_ECORRUPT. */
int eng__ucmd_key_parse(const void *key, size_t len, struct eng_user_cmd *out);
size_t eng__ucmd_val_size(const struct eng_user_cmd *c);
/* Encodes c's create_time, value and ex into p (exactly eng__ucmd_val_size bytes). */
void eng__ucmd_val_encode(unsigned char *p, const struct eng_user_cmd *c);
/* Fills out->create_time, value and ex (views into val).  0, IM_ECORRUPT or IM_EVERSION. */
int eng__ucmd_val_decode(const void *val, size_t len, struct eng_user_cmd *out);

/* True if id is a valid identifier: 1..ENG_ID_MAX bytes, no NUL byte. */
bool eng__id_valid(struct im_str id);

/* True if c is a valid conversation id: 1..ENG_CONV_ID_MAX bytes, no NUL byte. */
bool eng__conv_id_valid(struct im_str c);

/* ---------------------------------------------------------- message side (msg_rec.c) */

/*
 * Keys of the message-side tables (docs/storage.md).  Parts are joined by a
 * 0x00 byte, which no id and no conversation id contains, so `a | 0x00` is an
 * unambiguous prefix of every key of a.  Seqs are u64 BE.
 */
#define ENG__PAIR_KEY_MAX   (ENG_ID_MAX + 1 + ENG_ID_MAX)	       /* id | 0x00 | id */
#define ENG__CONV_KEY_MAX   (ENG_ID_MAX + 1 + ENG_CONV_ID_MAX)	       /* owner | 0x00 | conv */
#define ENG__MSG_KEY_MAX    (ENG_CONV_ID_MAX + 1 + 8)		       /* conv | 0x00 | seq */
#define ENG__HIDDEN_KEY_MAX (ENG_ID_MAX + 1 + ENG_CONV_ID_MAX + 1 + 8) /* owner|conv|seq */

/* a | 0x00 | b into buf (b may be empty: the prefix of a's keys); returns the length. */
size_t eng__key_join(unsigned char *buf, struct im_str a, struct im_str b);
/* Splits a key at its first 0x00 into a and b (views).  0, or IM_ECORRUPT
 * when there is no separator or a part is empty. */
int eng__key_split(const void *key, size_t len, struct im_str *a, struct im_str *b);
size_t eng__msg_key(unsigned char *buf, struct im_str conv, uint64_t seq);
/* Splits a msgs or revokes key.  0 or IM_ECORRUPT. */
int eng__msg_key_parse(const void *key, size_t len, struct im_str *conv, uint64_t *seq);
size_t eng__hidden_key(unsigned char *buf, struct im_str owner, struct im_str conv, uint64_t seq);

/*
 * The field appended to stored MsgData: tag 0x70 (field 14, varint) and the
 * seq as a varint.  Writes at most ENG__SEQ_FIELD_MAX bytes, returns the count.
 */
#define ENG__SEQ_FIELD_MAX 11
size_t eng__seq_field(unsigned char *buf, uint64_t seq);
/* True if data ends with exactly the seq field of seq. */
bool eng__seq_field_ends(struct im_str data, uint64_t seq);

/* msgs value: format u8 | flags u8 | MsgData bytes with the seq field. */
enum { ENG__MSG_F_READ = 1u << 0, ENG__MSG_F_REVOKED = 1u << 1 };
#define ENG__MSG_F_ALL	 (ENG__MSG_F_READ | ENG__MSG_F_REVOKED)
#define ENG__MSG_VAL_HDR 2
/* Splits a msgs value.  0, IM_ECORRUPT (short, unknown flags) or IM_EVERSION. */
int eng__msg_val_decode(const void *val, size_t len, uint8_t *flags, struct im_str *data);

/* conv_seqs value: format u8 | max_seq i64 | min_seq i64 | max_seq_time i64. */
struct eng__conv_seq {
	int64_t max_seq;
	int64_t min_seq;
	int64_t max_seq_time;
};
#define ENG__CONV_SEQ_LEN 25
void eng__conv_seq_encode(unsigned char *p, const struct eng__conv_seq *s);
int eng__conv_seq_decode(const void *val, size_t len, struct eng__conv_seq *out);

/* msg_dedup value: format u8 | seq i64 | send_time i64 | conv_id str | server_msg_id str. */
struct eng__dedup {
	struct im_str conv_id;
	int64_t seq;
	struct im_str server_msg_id;
	int64_t send_time;
};
size_t eng__dedup_rec_size(const struct eng__dedup *d);
void eng__dedup_rec_encode(unsigned char *p, const struct eng__dedup *d);
int eng__dedup_rec_decode(const void *val, size_t len, struct eng__dedup *out);

/*
 * The records below encode into exactly their size and decode with views into
 * val; the key parts (owner and conversation id, group id, user id) are not
 * repeated in the value.  Decoders return 0, IM_ECORRUPT or IM_EVERSION.
 */
size_t eng__conv_rec_size(const struct eng_conv *c);
void eng__conv_rec_encode(unsigned char *p, const struct eng_conv *c);
int eng__conv_rec_decode(const void *val, size_t len, struct eng_conv *out);

size_t eng__revoke_rec_size(const struct eng_revoke *v);
void eng__revoke_rec_encode(unsigned char *p, const struct eng_revoke *v);
int eng__revoke_rec_decode(const void *val, size_t len, struct eng_revoke *out);

size_t eng__group_rec_size(const struct eng_group *g);
void eng__group_rec_encode(unsigned char *p, const struct eng_group *g);
int eng__group_rec_decode(const void *val, size_t len, struct eng_group *out);

size_t eng__member_rec_size(const struct eng_member *m);
void eng__member_rec_encode(unsigned char *p, const struct eng_member *m);
int eng__member_rec_decode(const void *val, size_t len, struct eng_member *out);

/* group_reqs: group | 0x00 | user -> this record; group_reqs_by_user: user | 0x00 | group -> "". */
size_t eng__greq_rec_size(const struct eng_group_req *q);
void eng__greq_rec_encode(unsigned char *p, const struct eng_group_req *q);
int eng__greq_rec_decode(const void *val, size_t len, struct eng_group_req *out);

/* read_seqs and user_groups values: a bare i64 BE (hasReadSeq, join_time). */
#define ENG__I64_VAL_LEN 8

/* ---------------------------------------------------------- relations (rel_rec.c) */

/*
 * vlogs:        kind u8 | doc_id -> format u8 | version_id[12] | version u64 |
 *               deleted u64 | bumped_at u64 (the log index of the last bump)
 * vlog_entries: kind u8 | doc_id | 0x00 | elem_id -> format u8 | state u8 |
 *               version u64 | last_update i64
 * friends, friend_reqs, blacks: id | 0x00 | id (eng__key_join) -> records
 * below; friend_reqs_to: to | 0x00 | from -> "" (an index of friend_reqs);
 * friends_by_friend: friend | 0x00 | owner -> "" (an index of friends).
 */
#define ENG__VLOG_KEY_MAX   (1 + ENG_ID_MAX)
#define ENG__VENTRY_KEY_MAX (1 + ENG_ID_MAX + 1 + ENG_CONV_ID_MAX)
#define ENG__VLOG_LEN	    (1 + ENG_VLOG_ID_LEN + 3 * 8)
#define ENG__VENTRY_LEN	    (1 + 1 + 2 * 8)

struct eng__vlog {
	uint8_t version_id[ENG_VLOG_ID_LEN];
	uint64_t version;
	uint64_t deleted;
	uint64_t bumped_at;
};
struct eng__ventry {
	int state; /* ENG_VLOG_INSERT, _DELETE, _UPDATE */
	uint64_t version;
	int64_t last_update;
};

/* True for a known enum eng_vlog_kind. */
bool eng__vlog_kind_valid(int kind);
/* The versionID of a document created by the command at `index`: a hash, never all zero. */
void eng__vlog_id(uint8_t out[ENG_VLOG_ID_LEN], int kind, struct im_str doc, uint64_t index);
size_t eng__vlog_key(unsigned char *buf, int kind, struct im_str doc);
/* kind | doc | 0x00 | elem; with an empty elem also the prefix of every entry of the doc. */
size_t eng__ventry_key(unsigned char *buf, int kind, struct im_str doc, struct im_str elem);
/* Splits a vlogs key / vlog_entries key (views).  0 or IM_ECORRUPT. */
int eng__vlog_key_parse(const void *key, size_t len, int *kind, struct im_str *doc);
int eng__ventry_key_parse(const void *key, size_t len, int *kind, struct im_str *doc,
			  struct im_str *elem);
void eng__vlog_encode(unsigned char p[ENG__VLOG_LEN], const struct eng__vlog *v);
int eng__vlog_decode(const void *val, size_t len, struct eng__vlog *out);
void eng__ventry_encode(unsigned char p[ENG__VENTRY_LEN], const struct eng__ventry *v);
int eng__ventry_decode(const void *val, size_t len, struct eng__ventry *out);

/* Records; the key parts (the two ids) are not repeated.  Decoders: 0, IM_ECORRUPT, IM_EVERSION. */
size_t eng__friend_rec_size(const struct eng_friend *f);
void eng__friend_rec_encode(unsigned char *p, const struct eng_friend *f);
int eng__friend_rec_decode(const void *val, size_t len, struct eng_friend *out);
size_t eng__freq_rec_size(const struct eng_friend_req *q);
void eng__freq_rec_encode(unsigned char *p, const struct eng_friend_req *q);
int eng__freq_rec_decode(const void *val, size_t len, struct eng_friend_req *out);
size_t eng__black_rec_size(const struct eng_black *b);
void eng__black_rec_encode(unsigned char *p, const struct eng_black *b);
int eng__black_rec_decode(const void *val, size_t len, struct eng_black *out);

/*
 * The wire form of the relation commands' own fields (rel_rec.c), called by
 * the command codec for types ENG_CMD_FRIEND_APPLY..ENG_CMD_BLACK_REMOVE:
 * size after validation (0 or IM_EINVAL), write, read (0, IM_ECORRUPT or
 * -ENOMEM).
 */
struct rd;
bool eng__rel_cmd_type(int type);
int eng__rel_fields_size(const struct eng_cmd *cmd, uint64_t *out);
unsigned char *eng__rel_fields_write(unsigned char *p, const struct eng_cmd *cmd);
int eng__rel_fields_read(struct rd *r, struct eng_cmd *cmd);
/* n zeroed elements of size bytes in cmd->alloc (codec.c), or NULL. */
void *eng__cmd_alloc(struct eng_cmd *cmd, size_t n, size_t size);

/* The wire form of a message item (codec.c), shared with the event list. */
uint64_t eng__item_wire_size(const struct eng_msg_item *it);
unsigned char *eng__item_write(unsigned char *p, const struct eng_msg_item *it);
void eng__item_read(struct rd *r, struct eng_msg_item *it);

/* ---------------------------------------------------------- test hooks */

/* The LMDB environment and a table handle, for tests that inject corruption
 * with plain LMDB calls.  Only while no batch is open. */
MDB_env *eng__env(struct eng *e);
MDB_dbi eng__dbi(struct eng *e, enum eng__table t);

#endif
