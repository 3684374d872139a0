/* routes_conv.c - /conversation/ routes (openim-protocol.md §3.5): rows per owner, setters, id
 * lists. */
#include <stdio.h>

#include "api.h"
#include "msg.h"
#include "sync.h"

#define CONV_LOG "conversation"

json_t *api_conv_json(const struct eng_conv *c)
{
	json_t *o = json_object();
	json_object_set_new(o, "ownerUserID", json_str(c->owner_user_id));
	json_object_set_new(o, "conversationID", json_str(c->conversation_id));
	json_object_set_new(o, "recvMsgOpt", json_integer(c->recv_msg_opt));
	json_object_set_new(o, "conversationType", json_integer(c->conversation_type));
	json_object_set_new(o, "userID", json_str(c->user_id));
	json_object_set_new(o, "groupID", json_str(c->group_id));
	json_object_set_new(o, "isPinned", json_boolean(c->is_pinned));
	json_object_set_new(o, "attachedInfo", json_str(c->attached_info));
	json_object_set_new(o, "isPrivateChat", json_boolean(c->is_private_chat));
	json_object_set_new(o, "groupAtType", json_integer(c->group_at_type));
	json_object_set_new(o, "ex", json_str(c->ex));
	json_object_set_new(o, "burnDuration", json_integer(c->burn_duration));
	json_object_set_new(o, "minSeq", json_integer(c->min_seq));
	json_object_set_new(o, "maxSeq", json_integer(c->max_seq));
	json_object_set_new(o, "msgDestructTime", json_integer(c->msg_destruct_time));
	json_object_set_new(o, "latestMsgDestructTime", json_integer(c->latest_msg_destruct_time));
	json_object_set_new(o, "isMsgDestruct", json_boolean(c->is_msg_destruct));
	return o;
}

/* Collects rows (or their ids) of one owner, optionally filtered. */
struct conv_list {
	json_t *arr;
	int filter; /* 0 all, 1 recvMsgOpt != 0, 2 pinned */
	bool ids_only;
	uint64_t offset, limit, total;
};

static int conv_list_cb(const struct eng_conv *c, void *arg)
{
	struct conv_list *l = arg;
	if ((l->filter == 1 && c->recv_msg_opt == 0) || (l->filter == 2 && !c->is_pinned))
		return 0;
	uint64_t i = l->total++;
	if (i < l->offset || (l->limit && i >= l->offset + l->limit))
		return 0;
	json_array_append_new(l->arr,
			      l->ids_only ? json_str(c->conversation_id) : api_conv_json(c));
	return 0;
}

/* The owner named by key: self or admin (the SDK always asks for itself). */
static bool owner_arg(struct api_req *r, const char *key, struct im_str *owner)
{
	return api_str(r, r->body, key, owner) && api_require_self_or_admin(r, *owner);
}

static void list_convs(struct api_req *r, const char *owner_key, const char *out_key,
		       struct conv_list *l)
{
	struct im_str owner;
	if (!owner_arg(r, owner_key, &owner))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	l->arr = json_array();
	int rv = eng_conv_scan(rt, owner, conv_list_cb, l);
	if (rv != 0) {
		json_decref(l->arr);
		api_fail_im(r, rv, "scan conversations");
		return;
	}
	json_t *d = json_object();
	if (l->limit)
		json_object_set_new(d, "total", json_integer((json_int_t)l->total));
	json_object_set_new(d, out_key, api_null_if_empty(l->arr));
	api_reply(r, d);
}

static void get_all_conversations(struct api_req *r)
{
	struct conv_list l = {0};
	list_convs(r, "ownerUserID", "conversations", &l);
}

static void get_not_notify_conversation_ids(struct api_req *r)
{
	struct conv_list l = {.filter = 1, .ids_only = true};
	list_convs(r, "userID", "conversationIDs", &l);
}

static void get_pinned_conversation_ids(struct api_req *r)
{
	struct conv_list l = {.filter = 2, .ids_only = true};
	list_convs(r, "userID", "conversationIDs", &l);
}

static void get_owner_conversation(struct api_req *r)
{
	struct conv_list l = {0};
	if (!api_pagination(r, r->body, &l.offset, &l.limit))
		return;
	if (l.limit == 0)
		l.limit = UINT64_MAX; /* report total even for "all" */
	list_convs(r, "userID", "conversations", &l);
}

static void get_conversation(struct api_req *r)
{
	struct im_str owner, cid;
	if (!owner_arg(r, "ownerUserID", &owner) || !api_str(r, r->body, "conversationID", &cid))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_conv c;
	if (eng_conv_get(rt, owner, cid, &c) != 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "conversation %.*s not found", (int)cid.n, cid.p);
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "conversation", api_conv_json(&c));
	api_reply(r, d);
}

static void get_conversations(struct api_req *r)
{
	struct im_str owner, *ids = NULL;
	size_t n = 0;
	if (!owner_arg(r, "ownerUserID", &owner) ||
	    !api_strs(r, r->body, "conversationIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_conv c;
		if (eng_conv_get(rt, owner, ids[i], &c) == 0)
			json_array_append_new(arr, api_conv_json(&c));
	}
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "conversations", api_null_if_empty(arr));
	api_reply(r, d);
}

static void get_full_conversation_ids(struct api_req *r)
{
	struct im_str owner;
	int64_t id_hash = 0;
	if (!owner_arg(r, "userID", &owner) || !api_i64(r, r->body, "idHash", &id_hash, NULL))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct conv_list l = {.arr = json_array(), .ids_only = true};
	eng_conv_scan(rt, owner, conv_list_cb, &l);
	int err = 0;
	json_t *d = sync_vlog_full_ids(rt, ENG_VLOG_CONVERSATION, CONV_LOG, owner,
				       "conversationIDs", l.arr, id_hash, &err);
	if (d == NULL)
		api_fail_im(r, err, "version log");
	else
		api_reply(r, d);
}

/* The owner's Conversation (insert/update of the conversation log), NULL if gone. */
static json_t *conv_obj(struct eng_rtxn *rt, struct im_str owner, struct im_str cid, void *arg)
{
	struct eng_conv c;
	return eng_conv_get(rt, owner, cid, &c) == 0 ? api_conv_json(&c) : NULL;
}

/* get_incremental_conversations (§7.2; no owner check in OpenIM 3.8.3, kept here). */
static void get_incremental_conversations(struct api_req *r)
{
	struct im_str owner, vid = {0};
	int64_t version = 0;
	if (!owner_arg(r, "userID", &owner) || !api_str(r, r->body, "versionID", &vid) ||
	    !api_i64(r, r->body, "version", &version, NULL))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	int err = 0;
	json_t *d =
	    sync_incremental(rt, ENG_VLOG_CONVERSATION, CONV_LOG, owner, vid,
			     version < 0 ? 0 : (uint64_t)version, false, conv_obj, NULL, &err);
	if (d == NULL)
		api_fail_im(r, err, "version log");
	else
		api_reply(r, d);
}

static void get_conversation_offline_push_user_ids(struct api_req *r)
{
	struct im_str cid, *ids = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "conversationID", &cid) ||
	    !api_strs(r, r->body, "userIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	/* Users whose row does not silence the conversation (recvMsgOpt 0 or no row). */
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_conv c;
		if (eng_conv_get(rt, ids[i], cid, &c) != 0 || c.recv_msg_opt == 0)
			json_array_append_new(arr, json_str(ids[i]));
	}
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "userIDs", api_null_if_empty(arr));
	api_reply(r, d);
}

/* ---------------------------------------------------------------- set_conversations */

static void no_data_done(struct api_req *r, int status, const struct eng_result *res)
{
	if (res->code != 0)
		api_fail_im(r, res->code, res->detail);
	else
		api_reply(r, NULL);
}

/*
 * The notifications of set_conversations (§3.5): 1300 ConversationChanged to
 * each owner (online only), and for a 1:1 conversation whose isPrivateChat is
 * set, 1701 ConversationSetPrivate from the owner to the peer, stored in the
 * chat (isSendMsg).  At most ENG_ITEMS_MAX items: owners beyond that get no
 * push and see the change at their next sync.
 */
struct conv_notes {
	uint32_t n;
	struct eng_msg_item items[ENG_ITEMS_MAX];
	struct msg_notif_bufs nb[ENG_ITEMS_MAX];
};

static void conv_notes_free(struct conv_notes *cn)
{
	if (cn == NULL)
		return;
	for (uint32_t i = 0; i < cn->n; i++)
		im_buf_free(&cn->nb[i].data);
	im_free(cn);
}

static int conv_notes(struct api_req *r, const struct im_str *owners, size_t n,
		      const struct eng_conv *conv, uint32_t mask, struct conv_notes *cn)
{
	bool private_tip = (mask & ENG_CONV_IS_PRIVATE_CHAT) && conv->conversation_type == 1 &&
			   conv->user_id.n > 0;
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 2; k++) {
			if (cn->n == ENG_ITEMS_MAX)
				return 0;
			json_t *t = json_object();
			int rv;
			if (k == 0) {
				json_t *ids = json_array();
				json_array_append_new(ids, json_str(conv->conversation_id));
				json_object_set_new(t, "userID", json_str(owners[i]));
				json_object_set_new(t, "conversationIDList", ids);
				rv = msg_notification(r->s, MSG_NOTIF_STREAM_ONLINE, 1300, 1,
						      owners[i], owners[i], IM_STR_LIT(""), t,
						      r->op_id, &cn->nb[cn->n], &cn->items[cn->n]);
			} else if (private_tip) {
				json_object_set_new(t, "recvID", json_str(conv->user_id));
				json_object_set_new(t, "sendID", json_str(owners[i]));
				json_object_set_new(t, "isPrivate",
						    json_boolean(conv->is_private_chat));
				json_object_set_new(t, "conversationID",
						    json_str(conv->conversation_id));
				rv = msg_notification(r->s, MSG_NOTIF_CHAT_COPY, 1701, 1, owners[i],
						      conv->user_id, IM_STR_LIT(""), t, r->op_id,
						      &cn->nb[cn->n], &cn->items[cn->n]);
			} else {
				json_decref(t);
				continue;
			}
			if (rv != 0)
				return rv;
			cn->n++;
		}
	}
	return 0;
}

/* Reads a wrapper field: present (even empty/false) means "set" (§2.1). */
#define WRAP(getter, key, field, bit)                                                              \
	do {                                                                                       \
		bool present_ = false;                                                             \
		if (getter(c, key, &conv.field, &present_, &e) != 0)                               \
			goto bad;                                                                  \
		if (present_)                                                                      \
			mask |= bit;                                                               \
	} while (0)

static void set_conversations(struct api_req *r)
{
	struct im_str *owners = NULL;
	size_t n = 0;
	json_t *c = NULL;
	struct json_err e;
	if (!api_strs(r, r->body, "userIDs", &owners, &n))
		return;
	if (json_get_obj(r->body, "conversation", &c, &e) != 0)
		goto bad;
	if (c == NULL || n == 0) {
		im_free(owners);
		api_fail(r, OI_ARGS, "conversation and userIDs are required");
		return;
	}
	struct eng_conv conv = {0};
	uint32_t mask = 0;
	if (json_get_str(c, "conversationID", &conv.conversation_id, NULL, &e) != 0 ||
	    json_get_i32(c, "conversationType", &conv.conversation_type, NULL, &e) != 0 ||
	    json_get_str(c, "userID", &conv.user_id, NULL, &e) != 0 ||
	    json_get_str(c, "groupID", &conv.group_id, NULL, &e) != 0)
		goto bad;
	WRAP(json_get_i32, "recvMsgOpt", recv_msg_opt, ENG_CONV_RECV_MSG_OPT);
	WRAP(json_get_bool, "isPinned", is_pinned, ENG_CONV_IS_PINNED);
	WRAP(json_get_str, "attachedInfo", attached_info, ENG_CONV_ATTACHED_INFO);
	WRAP(json_get_bool, "isPrivateChat", is_private_chat, ENG_CONV_IS_PRIVATE_CHAT);
	WRAP(json_get_str, "ex", ex, ENG_CONV_EX);
	WRAP(json_get_i32, "burnDuration", burn_duration, ENG_CONV_BURN_DURATION);
	WRAP(json_get_i64, "minSeq", min_seq, ENG_CONV_MIN_SEQ);
	WRAP(json_get_i64, "maxSeq", max_seq, ENG_CONV_MAX_SEQ);
	WRAP(json_get_i32, "groupAtType", group_at_type, ENG_CONV_GROUP_AT_TYPE);
	WRAP(json_get_i64, "msgDestructTime", msg_destruct_time, ENG_CONV_MSG_DESTRUCT_TIME);
	WRAP(json_get_bool, "isMsgDestruct", is_msg_destruct, ENG_CONV_IS_MSG_DESTRUCT);
	if (conv.conversation_id.n == 0 || conv.conversation_id.n > ENG_CONV_ID_MAX) {
		im_free(owners);
		api_fail(r, OI_ARGS, "conversationID is empty or too long");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!api_require_self_or_admin(r, owners[i])) {
			im_free(owners);
			return;
		}
	struct eng_cmd cmd = {.type = ENG_CMD_CONV_SET, .now_ms = r->s->now_ms()};
	cmd.m.conv_set.n_owners = (uint32_t)n;
	cmd.m.conv_set.owners = owners;
	cmd.m.conv_set.mask = mask;
	cmd.m.conv_set.conv = conv;
	struct conv_notes *cn = im_calloc(1, sizeof(*cn));
	int rv = cn == NULL ? -ENOMEM : conv_notes(r, owners, n, &conv, mask, cn);
	if (rv != 0) {
		conv_notes_free(cn);
		im_free(owners);
		api_fail_im(r, rv, "conversation notification");
		return;
	}
	cmd.n_items = cn->n;
	cmd.items = cn->items;
	api_propose(r, &cmd, no_data_done);
	conv_notes_free(cn);
	im_free(owners);
	return;
bad:
	im_free(owners);
	api_fail(r, OI_ARGS, "%s", e.msg);
}

const struct api_route api_routes_conv[] = {
    {"/conversation/get_all_conversations", get_all_conversations, 0},
    {"/conversation/get_conversation", get_conversation, 0},
    {"/conversation/get_conversations", get_conversations, 0},
    {"/conversation/get_owner_conversation", get_owner_conversation, 0},
    {"/conversation/get_not_notify_conversation_ids", get_not_notify_conversation_ids, 0},
    {"/conversation/get_pinned_conversation_ids", get_pinned_conversation_ids, 0},
    {"/conversation/get_full_conversation_ids", get_full_conversation_ids, 0},
    {"/conversation/get_incremental_conversations", get_incremental_conversations, 0},
    {"/conversation/get_conversation_offline_push_user_ids", get_conversation_offline_push_user_ids,
     0},
    {"/conversation/set_conversations", set_conversations, 0},
    {NULL, NULL, 0},
};
