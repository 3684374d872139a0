/* pb.h - protobuf helpers: protobuf-c over im_malloc, MsgData options, and a writer that frames
 * stored MsgData bytes into pull/push responses without re-encoding them. */
#ifndef IM_PB_H
#define IM_PB_H

#include <protobuf-c/protobuf-c.h>

#include "common.h"

/* The C generated at build time from server/proto/ (openim-protocol.md §5). */
#include "sdkws.pb-c.h"
#include "msg.pb-c.h"
#include "conversation.pb-c.h"
#include "relation.pb-c.h"
#include "jssdk.pb-c.h"
#include "push.pb-c.h"

/*
 * Allocation.  pb_allocator sends protobuf-c's allocations through
 * im_malloc()/im_free(), so tests can inject out-of-memory.  Every message
 * that pb_unpack() returns, and every piece of memory hung on it afterwards
 * (pb_opt_set(), fields filled by hand), belongs to this allocator and is
 * released by pb_free().
 */
extern ProtobufCAllocator pb_allocator;

/*
 * Unpacks len bytes as a message of type desc into *out (free it with
 * pb_free()).  The result owns copies of everything: buf may go away.
 * Unknown fields are kept and packed again after the known ones (like Go),
 * except field number 0, which is invalid: protobuf-c accepts it in a
 * non-minimal tag, Go does not, so it is refused here.
 * Returns 0, -ENOMEM, or IM_EINVAL for bytes that are not such a message.
 * *out is NULL on error.
 */
int pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
	      ProtobufCMessage **out);

/* Frees a message from pb_unpack() or pb_msgdata_new(), with everything hung on it.  NULL is a
 * no-op. */
void pb_free(ProtobufCMessage *m);

/* pb_unpack() for sdkws.MsgData, and its free. */
int pb_msgdata_unpack(const uint8_t *buf, size_t len, Openim__Sdkws__MsgData **out);
void pb_msgdata_free(Openim__Sdkws__MsgData *m);

/*
 * Returns a new empty MsgData owned by pb_allocator (strings are the shared
 * empty string), for messages the server builds itself; NULL when out of
 * memory.  Strings and arrays put on it must come from im_malloc() if it is
 * to be released with pb_msgdata_free().
 */
Openim__Sdkws__MsgData *pb_msgdata_new(void);

/*
 * Appends the protobuf encoding of m to out.  Returns 0, or -ENOMEM (out is
 * then unchanged).
 */
int pb_pack(const ProtobufCMessage *m, struct im_buf *out);

/* Message option keys (MsgData.options, openim-protocol.md §6.4). */
#define PB_OPT_HISTORY			  "history"
#define PB_OPT_PERSISTENT		  "persistent"
#define PB_OPT_OFFLINE_PUSH		  "offlinePush"
#define PB_OPT_UNREAD_COUNT		  "unreadCount"
#define PB_OPT_CONVERSATION_UPDATE	  "conversationUpdate"
#define PB_OPT_SENDER_SYNC		  "senderSync"
#define PB_OPT_NOT_PRIVATE		  "notPrivate"
#define PB_OPT_SENDER_CONVERSATION_UPDATE "senderConversationUpdate"
#define PB_OPT_SENDER_NOTIFICATION_PUSH	  "senderNotificationPush"
#define PB_OPT_REACTION_FROM_CACHE	  "reactionFromCache"
#define PB_OPT_IS_NOT_NOTIFICATION	  "isNotNotification"
#define PB_OPT_IS_SEND_MSG		  "isSendMsg"

/*
 * Returns the option key of m: its value, or true when the key is missing
 * (openim-protocol.md §6.4).  If a key occurs more than once the last entry
 * wins, as in every protobuf decoder.
 */
bool pb_opt(const Openim__Sdkws__MsgData *m, const char *key);

/*
 * Sets option key of m to value: every entry with that key is updated, or
 * one entry is appended.  m must be owned by pb_allocator (pb_msgdata_unpack()
 * or pb_msgdata_new()).  Returns 0 or -ENOMEM (m is then unchanged).
 */
int pb_opt_set(Openim__Sdkws__MsgData *m, const char *key, bool value);

/*
 * The writer: protobuf fields appended to an im_buf, for responses assembled
 * from stored bytes (the engine keeps MsgData in wire form, eng_msg.h).
 *
 * Errors are sticky: the first failure (-ENOMEM, IM_ETOOBIG) is kept in
 * w->err, every later call does nothing, and pb_w_done() returns it, so a
 * sequence of writes needs one check at the end.  Nested messages are opened
 * with pb_w_begin() (a 5-byte length placeholder) and closed with pb_w_end(),
 * which writes the minimal length and moves the body back: the output is the
 * canonical encoding.
 */
struct pb_w {
	struct im_buf *b; /* not owned */
	int err;
};

enum pb_wire { PB_WIRE_VARINT = 0, PB_WIRE_I64 = 1, PB_WIRE_LEN = 2, PB_WIRE_I32 = 5 };

/* Starts writing at the end of out (which keeps its contents). */
void pb_w_init(struct pb_w *w, struct im_buf *out);
/* Returns 0 or the first error of the writes. */
int pb_w_done(const struct pb_w *w);

/* Raw bytes, a raw varint, a field key. */
void pb_w_raw(struct pb_w *w, const void *p, size_t n);
void pb_w_varint(struct pb_w *w, uint64_t v);
void pb_w_tag(struct pb_w *w, uint32_t field, enum pb_wire wire);

/*
 * Singular proto3 scalars and strings: zero, false and "" are the defaults
 * and are not written.  int32/int64 negatives take ten bytes (two's
 * complement), as protobuf requires.
 */
void pb_w_int64(struct pb_w *w, uint32_t field, int64_t v);
void pb_w_uint64(struct pb_w *w, uint32_t field, uint64_t v);
void pb_w_bool(struct pb_w *w, uint32_t field, bool v);
void pb_w_str(struct pb_w *w, uint32_t field, struct im_str s);

/* One length-delimited field, written even when empty: repeated elements,
 * map keys, embedded messages from stored bytes. */
void pb_w_bytes(struct pb_w *w, uint32_t field, const void *p, size_t n);

/*
 * Opens an embedded message (or map entry) as field; returns the mark to pass
 * to pb_w_end(), which closes it.  Marks nest like parentheses.
 */
size_t pb_w_begin(struct pb_w *w, uint32_t field);
void pb_w_end(struct pb_w *w, size_t mark);

/*
 * map<string,PullMsgs> entries, the body of sdkws.PushMessages,
 * sdkws.PullMessageBySeqsResp and msg.GetSeqMessageResp (all three: field 1
 * msgs, field 2 notificationMsgs; entry: 1 key, 2 value PullMsgs; PullMsgs:
 * 1 Msgs, 2 isEnd, 3 endSeq).  Stream an entry with begin / add... / end, or
 * write it in one call with pb_pull_msgs_map_entry().
 */
struct pb_entry {
	size_t entry; /* mark of the map entry */
	size_t value; /* mark of its PullMsgs */
};

/* Opens the entry for conv_id in msgs (notification false) or notificationMsgs. */
void pb_pull_msgs_map_entry_begin(struct pb_w *w, bool notification, struct im_str conv_id,
				  struct pb_entry *e);

/* Adds one stored MsgData (its protobuf bytes, copied as they are) to the open entry. */
void pb_pull_msgs_add(struct pb_w *w, struct im_str msg);

/*
 * Adds one stored MsgData and overrides fields after it inside the same
 * element: seq (14) when seq != 0 and status (17) when status != 0.
 * Decoders take the last occurrence of a field, so the message reads with
 * the new values (e.g. the pushed copy's status 1 -> 2, openim-protocol.md §4.5).
 */
void pb_pull_msgs_add_patched(struct pb_w *w, struct im_str msg, int64_t seq, int32_t status);

/* Closes the entry, writing PullMsgs.isEnd and endSeq (each only when non-zero). */
void pb_pull_msgs_map_entry_end(struct pb_w *w, struct pb_entry *e, bool is_end, int64_t end_seq);

/* begin + add each of msgs[0..n) + end.  Returns pb_w_done(w). */
int pb_pull_msgs_map_entry(struct pb_w *w, bool notification, struct im_str conv_id,
			   const struct im_str *msgs, size_t n, bool is_end, int64_t end_seq);

/*
 * Appends to out the sdkws.PushMessages of a 2001 frame (openim-protocol.md
 * §4.5): one entry for conv_id in msgs, or notificationMsgs when notification
 * is true, holding the stored MsgData bytes msgs[0..n) unchanged.  Returns 0,
 * -ENOMEM or IM_ETOOBIG; on error out->len is restored.
 */
int pb_push_messages(struct im_buf *out, bool notification, struct im_str conv_id,
		     const struct im_str *msgs, size_t n);

/*
 * Base64 with the standard alphabet and padding (Go's base64.StdEncoding),
 * for the JSON envelope's data and the /jssdk responses (§3.9, §4.3).
 * encode appends the text to out (NUL-terminated); decode appends the bytes.
 * Both return 0, -ENOMEM, and decode IM_EINVAL for text that is not base64.
 */
int pb_base64_std_encode(const void *p, size_t n, struct im_buf *out);
int pb_base64_std_decode(const char *s, size_t n, struct im_buf *out);

#endif
