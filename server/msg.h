/* msg.h - messaging: send (WS 1003, /msg/send_msg), reads (1001/1002/1005/1006/1007), pushes. */
#ifndef IM_MSG_H
#define IM_MSG_H

#include "api.h"
#include "gateway.h"
#include "pb.h"

/* The gateway's request handler: 1001, 1002, 1003, 1005, 1006, 1007 (gateway.h). */
int msg_ws_handler(struct srv *s, struct gw_req *req);

/*
 * Pushes one applied message (an engine event) to the connections this node
 * holds: 1:1 and type 4 to the receiver and, with senderSync, the sender;
 * groups to every member (openim-protocol.md §4.5).  arg is the struct srv.
 */
void msg_on_event(const struct eng_event *ev, void *arg);

/* The outcome of a send: code 0 or an OpenIM code; ids valid during the call. */
typedef void (*msg_send_cb)(void *arg, int code, const char *detail, const char *server_msg_id,
			    const char *client_msg_id, int64_t send_time);

/*
 * Sends m (owned by the caller; this function may change its server-set
 * fields) as §6.6 says: verification, encapsulation, an idempotent proposal
 * keyed on (sendID, clientMsgID), the answer after apply.  `admin` skips the
 * checks OpenIM skips for admin senders.  cb runs exactly once, possibly
 * before this returns.
 */
void msg_send(struct srv *s, Openim__Sdkws__MsgData *m, const char *op_id, bool admin,
	      msg_send_cb cb, void *arg);

/* Conversation id of a message (§6.1) into out; 0 or IM_EINVAL. */
int msg_conv_id(int32_t session_type, struct im_str send_id, struct im_str recv_id,
		struct im_str group_id, bool notification, char *out, size_t n);

/* The readable window of conv for user (§6.5): [lo, hi]; hi < lo when empty. */
struct msg_window {
	int64_t lo, hi;
	int64_t max_seq, min_seq, max_seq_time;
	bool has_row; /* the user has a conversation row */
};
void msg_window(struct eng_rtxn *rt, struct im_str user, struct im_str conv, struct msg_window *w);

/*
 * Appends to w one element (field 1 of PullMsgs, or `field` in general) for
 * (conv, seq) as user sees it: the stored bytes, with isRead appended when
 * set, rewritten to a 2101 tip when revoked, or a placeholder {seq, status 4}
 * when missing or hidden.  Returns true for a real message.
 */
bool msg_add_view(struct pb_w *w, uint32_t field, struct eng_rtxn *rt, struct im_str user,
		  struct im_str conv, int64_t seq);

/* How a server notification travels (openim-protocol.md §6.4, §8.5, §11). */
enum msg_notif_mode {
	MSG_NOTIF_STREAM, /* stored in its n_ stream, pushed in notificationMsgs (2101, 2200) */
	MSG_NOTIF_STREAM_ONLINE, /* pushed in notificationMsgs, not stored (no seq) */
	MSG_NOTIF_CHAT_COPY,	 /* stored in the chat (si_/sg_) as a visible tip with a seq */
};

/* Buffers behind a notification item; they must outlive the command's encoding. */
struct msg_notif_bufs {
	struct im_buf data;
	char conv[ENG_CONV_ID_MAX + 1];
	char smid[33];
	char cmid[33];
};

/*
 * Builds the MsgData of a server notification (msgFrom 200, content
 * {"detail": <tips JSON>}, tips stolen) from send to recv (sessionType 1) or
 * to a group (3), and the message item that appends and pushes it.  b must be
 * zeroed; free b->data after the command is encoded.  0 or an error.
 */
int msg_notification(struct srv *s, enum msg_notif_mode mode, int32_t content_type,
		     int32_t session_type, struct im_str send, struct im_str recv,
		     struct im_str group, json_t *tips, const char *op_id, struct msg_notif_bufs *b,
		     struct eng_msg_item *item);

#endif
