/* eng_msg.h - the engine's message log, conversations and groups (included by engine.h). */
#ifndef IM_ENG_MSG_H
#define IM_ENG_MSG_H

/*
 * Messages are stored in their wire form (sdkws.MsgData protobuf bytes) keyed
 * by (conversationID, seq), so a pull is assembled from stored bytes without
 * re-encoding (design.md, engine/).  The proposer builds the complete MsgData
 * except its seq; apply assigns the next seq of the conversation and appends
 * the field `seq` (number 14, varint) to the stored bytes: protobuf decoders
 * take the last occurrence of a field, so the stored bytes decode to the
 * message with its seq.  The engine never parses MsgData otherwise: what it
 * needs (conversation, sender, clientMsgID, ...) travels beside the bytes.
 *
 * openim-protocol.md §6.1 (conversation ids), §6.5 (seqs), §6.6 (send).
 */

#define ENG_CONV_ID_MAX	      300	  /* "si_" + two ids + "_" */
#define ENG_MSG_MAX	      (64u << 10) /* MsgData bytes of one message (the WS frame limit is 50 KiB) */
#define ENG_ITEMS_MAX	      64	  /* messages appended by one command */
#define ENG_SEQS_MAX	      10000 /* seqs named by one command */
#define ENG_MEMBERS_MAX	      10000 /* members named by one command */
#define ENG_CONVS_MAX	      10000 /* conversations named by one command (clear) */
#define ENG_SERVER_MSG_ID_MAX 64    /* serverMsgID (32 hex digits in OpenIM) */

/* Flags of a message item. */
enum {
	ENG_MSG_STORE = 1u << 0,	/* option history: assign a seq and store it */
	ENG_MSG_SENDER_SYNC = 1u << 1,	/* push to the sender's other connections too */
	ENG_MSG_NOTIFICATION = 1u << 2, /* an n_ stream: pushed in notificationMsgs */
	ENG_MSG_CHECK_MEMBER = 1u << 3, /* group: reject IM_EPERM if the sender is not a member */
	ENG_MSG_SENDER_READ =
	    1u << 4, /* the sender's hasReadSeq becomes this seq (user messages) */
};

/*
 * One message to append (and push).  Views, owned by the command.  Bounds
 * (codec): conv_id 1..ENG_CONV_ID_MAX bytes, ids and client_msg_id
 * ENG_ID_MAX, server_msg_id ENG_SERVER_MSG_ID_MAX (none of them with a NUL
 * byte), op_id ENG_ID_MAX, data ENG_MSG_MAX.  Apply rejects (IM_EINVAL) an
 * empty conv_id or send_id, a session_type other than 1, 3, 4, session 1/4
 * without recv_id, session 3 without group_id, and unknown flag bits.
 */
struct eng_msg_item {
	struct im_str conv_id; /* si_a_b, sg_g, sn_a_b, n_... */
	struct im_str send_id;
	struct im_str recv_id;	     /* 1:1 and type 4: the receiver; groups: "" */
	struct im_str group_id;	     /* groups: the group */
	struct im_str client_msg_id; /* with send_id, the dedup key (promise 3); empty: none */
	struct im_str server_msg_id;
	struct im_str op_id;  /* operationID of the request, carried to the push */
	int32_t session_type; /* 1, 3, 4 */
	int32_t content_type;
	int64_t send_time;  /* ms */
	uint32_t flags;	    /* ENG_MSG_* */
	struct im_str data; /* sdkws.MsgData without seq */
};

/* A conversation row (conversation.Conversation, §5.3) of one owner. */
struct eng_conv {
	struct im_str owner_user_id;
	struct im_str conversation_id;
	int32_t recv_msg_opt;
	int32_t conversation_type;
	struct im_str user_id;
	struct im_str group_id;
	bool is_pinned;
	struct im_str attached_info;
	bool is_private_chat;
	int32_t group_at_type;
	struct im_str ex;
	int32_t burn_duration;
	int64_t min_seq; /* per-user min seq (clear): reads start at max(this, conv min) */
	int64_t max_seq; /* per-user cap (left the group); 0 = none */
	int64_t msg_destruct_time;
	int64_t latest_msg_destruct_time;
	bool is_msg_destruct;
	int64_t create_time; /* ms: for ordering; not in the proto */
};

/* Field mask for ENG_CMD_CONV_SET (set_conversations wrappers). */
enum {
	ENG_CONV_RECV_MSG_OPT = 1u << 0,
	ENG_CONV_IS_PINNED = 1u << 1,
	ENG_CONV_ATTACHED_INFO = 1u << 2,
	ENG_CONV_IS_PRIVATE_CHAT = 1u << 3,
	ENG_CONV_EX = 1u << 4,
	ENG_CONV_BURN_DURATION = 1u << 5,
	ENG_CONV_MIN_SEQ = 1u << 6,
	ENG_CONV_MAX_SEQ = 1u << 7,
	ENG_CONV_GROUP_AT_TYPE = 1u << 8,
	ENG_CONV_MSG_DESTRUCT_TIME = 1u << 9,
	ENG_CONV_IS_MSG_DESTRUCT = 1u << 10,
};

/* A group (sdkws.GroupInfo minus the derived memberCount). */
struct eng_group {
	struct im_str group_id;
	struct im_str group_name;
	struct im_str notification;
	struct im_str introduction;
	struct im_str face_url;
	struct im_str owner_user_id;
	int64_t create_time;
	struct im_str ex;
	int32_t status; /* 0 ok, 2 dismissed, 3 muted */
	struct im_str creator_user_id;
	int32_t group_type;
	int32_t need_verification;
	int32_t look_member_info;
	int32_t apply_member_friend;
	int64_t notification_update_time;
	struct im_str notification_user_id;
	uint32_t member_count; /* maintained by apply; ignored on input */
};

/* A group member (sdkws.GroupMemberFullInfo). */
struct eng_member {
	struct im_str group_id;
	struct im_str user_id;
	int32_t role_level; /* 100 owner, 60 admin, 20 member */
	int64_t join_time;
	struct im_str nickname;
	struct im_str face_url;
	int32_t join_source;
	struct im_str operator_user_id;
	struct im_str ex;
	int64_t mute_end_time;
	struct im_str inviter_user_id;
};

/*
 * Field mask bits for ENG_CMD_GROUP_SET.  Every GROUP_SET writes the group's
 * group-member log element "" (UPDATE, §7.1).
 */
enum {
	ENG_GROUP_NAME = 1u << 0,
	ENG_GROUP_NOTIFICATION = 1u << 1, /* + notification_update_time, notification_user_id */
	ENG_GROUP_INTRODUCTION = 1u << 2,
	ENG_GROUP_FACE_URL = 1u << 3,
	ENG_GROUP_EX = 1u << 4,
	ENG_GROUP_NEED_VERIFICATION = 1u << 5,
	ENG_GROUP_LOOK_MEMBER_INFO = 1u << 6,
	ENG_GROUP_APPLY_MEMBER_FRIEND = 1u << 7,
	ENG_GROUP_STATUS = 1u << 8,	 /* 0 ok or 3 muted; 2 only through GROUP_DISMISS */
	ENG_GROUP_AT_ANNOUNCE = 1u << 9, /* every member's sg_ row: groupAtType 4 (1519) */
};

/*
 * Field mask bits for ENG_CMD_MEMBER_SET.  Each member written gets a
 * group-member log UPDATE; ROLE also writes the sort marker (§7.1).
 */
enum {
	ENG_MEMBER_NICKNAME = 1u << 0,
	ENG_MEMBER_FACE_URL = 1u << 1,
	ENG_MEMBER_EX = 1u << 2,
	ENG_MEMBER_ROLE = 1u << 3, /* 60 or 20, never on the owner (GROUP_TRANSFER does that) */
	ENG_MEMBER_MUTE_END = 1u << 4,
};

/* A group join request (sdkws.GroupRequest without the profiles), keyed by (group, user). */
struct eng_group_req {
	struct im_str group_id;
	struct im_str user_id; /* the applicant (or the invited user) */
	int32_t handle_result; /* 0 pending, 1 accepted, -1 refused */
	struct im_str req_msg;
	struct im_str handled_msg;
	int64_t req_time; /* ms */
	struct im_str handle_user_id;
	int64_t handle_time; /* ms; 0 until handled */
	struct im_str ex;
	int32_t join_source;	       /* 2 invitation, 3 search, 4 QR code */
	struct im_str inviter_user_id; /* invitations: the inviting member */
};

/* Why members leave (ENG_CMD_GROUP_MEMBERS_REMOVE). */
enum { ENG_GROUP_QUIT = 1, ENG_GROUP_KICK = 2 };

/* Per-item outcome of a message command, in eng_result.msgs. */
struct eng_msg_result {
	uint64_t seq;		/* 0 when not stored */
	bool dup;		/* (send_id, client_msg_id) was stored before: nothing new */
	char server_msg_id[65]; /* for dup: the original */
	int64_t send_time;	/* for dup: the original */
};

/*
 * An event: what apply did that the server must push.  Produced for every
 * message item applied (stored or online-only, not for dups and not for
 * skipped replays), in log order; drained after the batch commits.  Events of
 * a rejected command, of a command that failed with a storage error and of a
 * lost batch are dropped with their effects.  For an item that was not stored
 * `stored` is item.data as it is (no seq).
 */
struct eng_event {
	uint64_t index;		  /* log index of the command */
	struct eng_msg_item item; /* views valid during the callback only */
	uint64_t seq;		  /* assigned seq, 0 if not stored */
	struct im_str stored;	  /* the MsgData bytes as stored/pushed (with seq) */
	/*
	 * Users who also receive the push besides the item's own recipients,
	 * their ids separated by one 0x00 byte (empty: none).  The group items
	 * of a GROUP_MEMBERS_REMOVE command, and of a GROUP_DISMISS with
	 * delete_member, name the removed users here: they are no longer
	 * members when the push is made (§8.2).
	 */
	struct im_str extra;
};
typedef void (*eng_event_cb)(const struct eng_event *ev, void *arg);

#endif
