/* routes_friend.c - /friend/: friends, friend requests, blacklists and their sync
 * (openim-protocol.md §3.3, §7, §8.1).
 *
 * Reads answer from one read snapshot.  Writes check what they can against a
 * snapshot for a fast, precise answer (1301, 1304, 1305, 1101, 1004), then
 * propose one relation command (eng_rel.h) that carries its notifications as
 * message items (§8.5: online-only copies in n_, and for 1201 a stored chat
 * copy in si_); apply checks again and is the authority, and a rejected
 * command changes nothing, its notifications included.
 *
 * Versions in tips are the state the touched log will have once the command
 * is applied (sync_vlog_after); a write applied in between can make them one
 * behind, which only costs a client one more incremental call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "msg.h"
#include "sync.h"

#define FRIEND_LOG "friend"
#define BLACK_LOG  "black"
#define IMPORT_MAX 1000 /* import_friend takes fewer friends than this (§3.3) */
#define LIST_MAX   10000

/* ---------------------------------------------------------------- JSON */

/* The live profile of id, or an empty one naming id when it is not registered. */
static void profile(struct eng_rtxn *rt, struct im_str id, struct eng_user *u)
{
	if (eng_user_get(rt, id, u) != 0)
		*u = (struct eng_user){.user_id = id};
}

static json_t *public_user_json(const struct eng_user *u)
{
	json_t *o = json_object();
	json_object_set_new(o, "userID", json_str(u->user_id));
	json_object_set_new(o, "nickname", json_str(u->nickname));
	json_object_set_new(o, "faceURL", json_str(u->face_url));
	json_object_set_new(o, "ex", json_str(u->ex));
	return o;
}

/* sdkws.FriendInfo; friendUser is the live profile, or null when rt is NULL. */
static json_t *friend_json(struct eng_rtxn *rt, const struct eng_friend *f)
{
	json_t *o = json_object();
	json_object_set_new(o, "ownerUserID", json_str(f->owner_user_id));
	json_object_set_new(o, "remark", json_str(f->remark));
	json_object_set_new(o, "createTime", json_integer(f->create_time));
	if (rt) {
		struct eng_user u;
		profile(rt, f->friend_user_id, &u);
		json_object_set_new(o, "friendUser", api_user_json(&u));
	} else {
		json_object_set_new(o, "friendUser", json_null());
	}
	json_object_set_new(o, "addSource", json_integer(f->add_source));
	json_object_set_new(o, "operatorUserID", json_str(f->operator_user_id));
	json_object_set_new(o, "ex", json_str(f->ex));
	json_object_set_new(o, "isPinned", json_boolean(f->is_pinned));
	return o;
}

/* sdkws.BlackInfo; blackUserInfo is the live PublicUserInfo, or null when rt is NULL. */
static json_t *black_json(struct eng_rtxn *rt, const struct eng_black *b)
{
	json_t *o = json_object();
	json_object_set_new(o, "ownerUserID", json_str(b->owner_user_id));
	json_object_set_new(o, "createTime", json_integer(b->create_time));
	if (rt) {
		struct eng_user u;
		profile(rt, b->block_user_id, &u);
		json_object_set_new(o, "blackUserInfo", public_user_json(&u));
	} else {
		json_object_set_new(o, "blackUserInfo", json_null());
	}
	json_object_set_new(o, "addSource", json_integer(b->add_source));
	json_object_set_new(o, "operatorUserID", json_str(b->operator_user_id));
	json_object_set_new(o, "ex", json_str(b->ex));
	return o;
}

/* sdkws.FriendRequest with the live nicknames and faces. */
static json_t *freq_json(struct eng_rtxn *rt, const struct eng_friend_req *q)
{
	struct eng_user from, to;
	profile(rt, q->from_user_id, &from);
	profile(rt, q->to_user_id, &to);
	json_t *o = json_object();
	json_object_set_new(o, "fromUserID", json_str(q->from_user_id));
	json_object_set_new(o, "fromNickname", json_str(from.nickname));
	json_object_set_new(o, "fromFaceURL", json_str(from.face_url));
	json_object_set_new(o, "toUserID", json_str(q->to_user_id));
	json_object_set_new(o, "toNickname", json_str(to.nickname));
	json_object_set_new(o, "toFaceURL", json_str(to.face_url));
	json_object_set_new(o, "handleResult", json_integer(q->handle_result));
	json_object_set_new(o, "reqMsg", json_str(q->req_msg));
	json_object_set_new(o, "createTime", json_integer(q->create_time));
	json_object_set_new(o, "handlerUserID", json_str(q->handler_user_id));
	json_object_set_new(o, "handleMsg", json_str(q->handle_msg));
	json_object_set_new(o, "handleTime", json_integer(q->handle_time));
	json_object_set_new(o, "ex", json_str(q->ex));
	return o;
}

static json_t *from_to_json(struct im_str from, struct im_str to)
{
	json_t *o = json_object();
	json_object_set_new(o, "fromUserID", json_str(from));
	json_object_set_new(o, "toUserID", json_str(to));
	return o;
}

/* Tips {fromToUserID, ...}: a new object with the pair first. */
static json_t *tips_new(struct im_str from, struct im_str to)
{
	json_t *o = json_object();
	json_object_set_new(o, "fromToUserID", from_to_json(from, to));
	return o;
}

static void tips_version(json_t *tips, const struct sync_vlog *v)
{
	json_object_set_new(tips, "friendVersion", json_integer((json_int_t)v->version));
	json_object_set_new(tips, "friendVersionID", json_string(v->version_id));
}

/* ---------------------------------------------------------------- notifications */

/* The notification items of one command and the buffers behind them. */
struct notifs {
	uint32_t n;
	struct eng_msg_item items[ENG_ITEMS_MAX];
	struct msg_notif_bufs nb[ENG_ITEMS_MAX];
};

/* Adds a 1:1 notification from -> to (tips stolen): 0 or an error. */
static int notif_add(struct api_req *r, struct notifs *ns, enum msg_notif_mode mode, int32_t ct,
		     struct im_str from, struct im_str to, json_t *tips)
{
	if (ns->n == ENG_ITEMS_MAX) {
		json_decref(tips);
		return IM_ETOOBIG;
	}
	int rv = msg_notification(r->s, mode, ct, 1, from, to, IM_STR_LIT(""), tips, r->op_id,
				  &ns->nb[ns->n], &ns->items[ns->n]);
	if (rv == 0)
		ns->n++;
	return rv;
}

/* An online-only notification, plus a stored chat copy when chat_copy (isSendMsg). */
static int notif_send(struct api_req *r, struct notifs *ns, int32_t ct, struct im_str from,
		      struct im_str to, json_t *tips, bool chat_copy)
{
	if (chat_copy)
		json_incref(tips);
	int rv = notif_add(r, ns, MSG_NOTIF_STREAM_ONLINE, ct, from, to, tips);
	if (chat_copy) {
		if (rv == 0)
			rv = notif_add(r, ns, MSG_NOTIF_CHAT_COPY, ct, from, to, tips);
		else
			json_decref(tips);
	}
	return rv;
}

static void notifs_free(struct notifs *ns)
{
	if (ns == NULL)
		return;
	for (uint32_t i = 0; i < ENG_ITEMS_MAX; i++)
		im_buf_free(&ns->nb[i].data);
	im_free(ns);
}

/*
 * Proposes cmd with the items of ns (may be NULL) and frees ns: the command
 * is encoded by the time api_propose() returns.
 */
static void propose_with(struct api_req *r, struct eng_cmd *cmd, struct notifs *ns, api_done done)
{
	if (ns) {
		cmd->n_items = ns->n;
		cmd->items = ns->items;
	}
	api_propose(r, cmd, done);
	notifs_free(ns);
}

/* Answers an error of building notifications. */
static void notif_fail(struct api_req *r, struct notifs *ns, int rv)
{
	notifs_free(ns);
	api_fail_im(r, rv, "notification");
}

/* ---------------------------------------------------------------- outcomes */

/* Maps an applied command's outcome: 0 answers no data; EEXIST / ENOTFOUND as given. */
static void reply_result(struct api_req *r, const struct eng_result *res, int exist, int notfound)
{
	if (res->code == 0)
		api_reply(r, NULL);
	else if (res->code == IM_EEXIST)
		api_fail(r, exist, "%s", res->detail);
	else if (res->code == IM_ENOTFOUND)
		api_fail(r, notfound, "%s", res->detail);
	else
		api_fail_im(r, res->code, res->detail);
}

static void apply_done(struct api_req *r, int status, const struct eng_result *res)
{
	(void)status;
	reply_result(r, res, OI_RELATIONSHIP_ALREADY, OI_USER_NOT_FOUND);
}

static void respond_done(struct api_req *r, int status, const struct eng_result *res)
{
	(void)status;
	reply_result(r, res, OI_FRIEND_REQUEST_HANDLED, OI_RECORD_NOT_FOUND);
}

static void black_add_done(struct api_req *r, int status, const struct eng_result *res)
{
	(void)status;
	reply_result(r, res, OI_DUPLICATE_KEY, OI_USER_NOT_FOUND);
}

static void plain_done(struct api_req *r, int status, const struct eng_result *res)
{
	(void)status;
	reply_result(r, res, OI_DUPLICATE_KEY, OI_RECORD_NOT_FOUND);
}

/* ---------------------------------------------------------------- arguments */

static bool owner_arg(struct api_req *r, const char *key, struct im_str *owner)
{
	return api_str(r, r->body, key, owner) && api_require_self_or_admin(r, *owner);
}

/* A required, non-empty id field. */
static bool id_arg(struct api_req *r, const char *key, struct im_str *out)
{
	if (!api_str(r, r->body, key, out))
		return false;
	if (out->n > 0)
		return true;
	api_fail(r, OI_ARGS, "%s is empty", key);
	return false;
}

static bool text_ok(struct api_req *r, const char *key, struct im_str s)
{
	if (s.n <= ENG_TEXT_MAX)
		return true;
	api_fail(r, OI_ARGS, "%s longer than %d bytes", key, ENG_TEXT_MAX);
	return false;
}

/* A list of ids: at most max, none repeated (1001 otherwise).  *out freed by the caller. */
static bool id_list_arg(struct api_req *r, const char *key, size_t max, struct im_str **out,
			size_t *n)
{
	if (!api_strs(r, r->body, key, out, n))
		return false;
	const char *why = *n > max ? "too many ids" : NULL;
	for (size_t i = 0; why == NULL && i < *n; i++)
		for (size_t k = 0; k < i; k++)
			if (im_str_eq((*out)[i], (*out)[k])) {
				why = "repeated";
				break;
			}
	if (why == NULL)
		return true;
	im_free(*out);
	*out = NULL;
	api_fail(r, OI_ARGS, "%s %s", key, why);
	return false;
}

/* True when id is registered; else answers 1101. */
static bool user_known(struct api_req *r, struct eng_rtxn *rt, struct im_str id)
{
	struct eng_user u;
	if (eng_user_get(rt, id, &u) == 0)
		return true;
	api_fail(r, OI_USER_NOT_FOUND, "userID %.*s not found", (int)id.n, id.p);
	return false;
}

/* ---------------------------------------------------------------- requests */

static void add_friend(struct api_req *r)
{
	struct im_str from, to, req_msg, ex;
	if (!id_arg(r, "fromUserID", &from) || !id_arg(r, "toUserID", &to) ||
	    !api_str(r, r->body, "reqMsg", &req_msg) || !api_str(r, r->body, "ex", &ex))
		return;
	if (!api_require_self_or_admin(r, from))
		return;
	if (im_str_eq(from, to)) {
		api_fail(r, OI_CANNOT_ADD_YOURSELF, "can not add yourself");
		return;
	}
	if (!text_ok(r, "reqMsg", req_msg) || !text_ok(r, "ex", ex))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL || !user_known(r, rt, from) || !user_known(r, rt, to))
		return;
	struct eng_friend f;
	if (eng_friend_get(rt, from, to, &f) == 0 && eng_friend_get(rt, to, from, &f) == 0) {
		api_fail(r, OI_RELATIONSHIP_ALREADY, "%.*s and %.*s are friends already",
			 (int)from.n, from.p, (int)to.n, to.p);
		return;
	}
	int64_t now = r->s->now_ms();
	/* The request as apply leaves it (apply_rel.c friend_apply). */
	struct eng_friend_req q;
	if (eng_friend_req_get(rt, from, to, &q) != 0)
		q = (struct eng_friend_req){.from_user_id = from, .to_user_id = to};
	q.handle_result = 0;
	q.req_msg = req_msg;
	q.ex = ex;
	q.create_time = now;
	q.handle_msg = (struct im_str){NULL, 0};
	json_t *tips = tips_new(from, to);
	json_object_set_new(tips, "request", freq_json(rt, &q));
	struct notifs *ns = im_calloc(1, sizeof(*ns));
	int rv = ns ? notif_send(r, ns, 1203, from, to, tips, false) : -ENOMEM;
	if (ns == NULL)
		json_decref(tips);
	if (rv != 0) {
		notif_fail(r, ns, rv);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_FRIEND_APPLY, .now_ms = now};
	cmd.r.friend_apply.from_user_id = from;
	cmd.r.friend_apply.to_user_id = to;
	cmd.r.friend_apply.req_msg = req_msg;
	cmd.r.friend_apply.ex = ex;
	propose_with(r, &cmd, ns, apply_done);
}

static void add_friend_response(struct api_req *r)
{
	struct im_str from, to, handle_msg;
	int32_t hr = 0;
	if (!id_arg(r, "fromUserID", &from) || !id_arg(r, "toUserID", &to) ||
	    !api_i32(r, r->body, "handleResult", &hr, NULL) ||
	    !api_str(r, r->body, "handleMsg", &handle_msg))
		return;
	if (!api_require_self_or_admin(r, to))
		return;
	if (hr != 1 && hr != -1) {
		api_fail(r, OI_ARGS, "handleResult must be 1 or -1, not %d", (int)hr);
		return;
	}
	if (im_str_eq(from, to)) {
		api_fail(r, OI_CANNOT_ADD_YOURSELF, "can not add yourself");
		return;
	}
	if (!text_ok(r, "handleMsg", handle_msg))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_friend_req q;
	if (eng_friend_req_get(rt, from, to, &q) != 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "no friend request from %.*s to %.*s", (int)from.n,
			 from.p, (int)to.n, to.p);
		return;
	}
	if (q.handle_result != 0) {
		api_fail(r, OI_FRIEND_REQUEST_HANDLED, "friend request handled already (%d)",
			 (int)q.handle_result);
		return;
	}
	int64_t now = r->s->now_ms();
	q.handle_result = hr;
	q.handler_user_id = to;
	q.handle_msg = handle_msg;
	q.handle_time = now;
	json_t *tips = tips_new(from, to);
	json_object_set_new(tips, "handleMsg", json_str(handle_msg));
	int rv = 0;
	if (hr == 1) {
		/* The responder's friend log gets the insert unless the row exists (friend_ensure).
		 */
		struct eng_friend f;
		struct sync_vlog v;
		rv = sync_vlog_after(rt, ENG_VLOG_FRIEND, FRIEND_LOG, to,
				     eng_friend_get(rt, to, from, &f) != 0, &v);
		tips_version(tips, &v);
	}
	json_object_set_new(tips, "request", freq_json(rt, &q));
	struct notifs *ns = im_calloc(1, sizeof(*ns));
	if (ns == NULL)
		rv = -ENOMEM;
	if (rv == 0) /* 1201 also as a visible tip in si_ (isSendMsg, §8.5); 1202 online only. */
		rv = notif_send(r, ns, hr == 1 ? 1201 : 1202, to, from, tips, hr == 1);
	else
		json_decref(tips);
	if (rv != 0) {
		notif_fail(r, ns, rv);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_FRIEND_RESPOND, .now_ms = now};
	cmd.r.friend_respond.from_user_id = from;
	cmd.r.friend_respond.to_user_id = to;
	cmd.r.friend_respond.handle_result = hr;
	cmd.r.friend_respond.handle_msg = handle_msg;
	propose_with(r, &cmd, ns, respond_done);
}

/* handleResults filter: NULL/empty means all.  false after answering 1001. */
static bool handle_results_arg(struct api_req *r, int32_t *vals, size_t max, size_t *n)
{
	json_t *arr = NULL;
	struct json_err e;
	*n = 0;
	if (json_get_array(r->body, "handleResults", &arr, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return false;
	}
	for (size_t i = 0; arr && i < json_array_size(arr); i++) {
		json_t *v = json_array_get(arr, i);
		if (!json_is_integer(v)) {
			api_fail(r, OI_ARGS, "handleResults must be integers");
			return false;
		}
		if (*n < max)
			vals[(*n)++] = (int32_t)json_integer_value(v);
	}
	return true;
}

struct req_list {
	struct eng_rtxn *rt;
	const int32_t *filter;
	size_t n_filter;
	json_t *arr; /* requests, unsorted */
};

static int req_list_cb(const struct eng_friend_req *q, void *arg)
{
	struct req_list *l = arg;
	bool keep = l->n_filter == 0;
	for (size_t i = 0; !keep && i < l->n_filter; i++)
		keep = l->filter[i] == q->handle_result;
	if (keep)
		json_array_append_new(l->arr, freq_json(l->rt, q));
	return 0;
}

static int by_create_time_desc(const void *a, const void *b)
{
	json_int_t ta = json_integer_value(json_object_get(*(json_t *const *)a, "createTime"));
	json_int_t tb = json_integer_value(json_object_get(*(json_t *const *)b, "createTime"));
	return ta < tb ? 1 : ta > tb ? -1 : 0;
}

/* Received (get_friend_apply_list, "FriendRequests") or sent requests, newest first, paged. */
static void apply_list(struct api_req *r, bool received)
{
	struct im_str uid;
	uint64_t offset, limit;
	int32_t filter[8];
	struct req_list l = {.filter = filter};
	if (!owner_arg(r, "userID", &uid) || !api_pagination(r, r->body, &offset, &limit) ||
	    !handle_results_arg(r, filter, IM_ARRAY_LEN(filter), &l.n_filter))
		return;
	if ((l.rt = api_read(r)) == NULL)
		return;
	l.arr = json_array();
	int rv = received ? eng_friend_req_scan_to(l.rt, uid, req_list_cb, &l)
			  : eng_friend_req_scan_from(l.rt, uid, req_list_cb, &l);
	if (rv != 0) {
		json_decref(l.arr);
		api_fail_im(r, rv, "friend requests");
		return;
	}
	size_t total = json_array_size(l.arr);
	json_t **v = total ? im_calloc(total, sizeof(*v)) : NULL;
	json_t *page = json_array();
	if (total && v == NULL) {
		json_decref(l.arr);
		json_decref(page);
		api_fail_im(r, -ENOMEM, "friend requests");
		return;
	}
	for (size_t i = 0; i < total; i++)
		v[i] = json_array_get(l.arr, i);
	if (total)
		qsort(v, total, sizeof(*v), by_create_time_desc);
	for (size_t i = 0; i < total; i++)
		if (i >= offset && (limit == 0 || i < offset + limit))
			json_array_append(page, v[i]);
	im_free(v);
	json_decref(l.arr);
	json_t *d = json_object();
	json_object_set_new(d, received ? "FriendRequests" : "friendRequests",
			    api_null_if_empty(page));
	json_object_set_new(d, "total", json_integer((json_int_t)total));
	api_reply(r, d);
}

static void get_friend_apply_list(struct api_req *r)
{
	apply_list(r, true);
}

static void get_self_friend_apply_list(struct api_req *r)
{
	apply_list(r, false);
}

/* Both directions of a pair, like OpenIM's FindBothFriendRequests (any token). */
static void get_designated_friend_apply(struct api_req *r)
{
	struct im_str from, to;
	if (!api_str(r, r->body, "fromUserID", &from) || !api_str(r, r->body, "toUserID", &to))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	json_t *arr = json_array();
	struct eng_friend_req q;
	if (eng_friend_req_get(rt, from, to, &q) == 0)
		json_array_append_new(arr, freq_json(rt, &q));
	if (!im_str_eq(from, to) && eng_friend_req_get(rt, to, from, &q) == 0)
		json_array_append_new(arr, freq_json(rt, &q));
	json_t *d = json_object();
	json_object_set_new(d, "friendRequests", api_null_if_empty(arr));
	api_reply(r, d);
}

struct unhandled {
	int64_t since;
	uint64_t count;
};

static int unhandled_cb(const struct eng_friend_req *q, void *arg)
{
	struct unhandled *u = arg;
	if (q->handle_result == 0 && q->create_time > u->since)
		u->count++;
	return 0;
}

static void get_self_unhandled_apply_count(struct api_req *r)
{
	struct im_str uid;
	struct unhandled u = {0};
	if (!owner_arg(r, "userID", &uid) || !api_i64(r, r->body, "time", &u.since, NULL))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	int rv = eng_friend_req_scan_to(rt, uid, unhandled_cb, &u);
	if (rv != 0) {
		api_fail_im(r, rv, "friend requests");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "count", json_integer((json_int_t)u.count));
	api_reply(r, d);
}

/* ---------------------------------------------------------------- friends */

static void delete_friend(struct api_req *r)
{
	struct im_str owner, fid;
	if (!id_arg(r, "ownerUserID", &owner) || !id_arg(r, "friendUserID", &fid))
		return;
	if (!api_require_self_or_admin(r, owner))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_friend f;
	if (eng_friend_get(rt, owner, fid, &f) != 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "%.*s is not a friend of %.*s", (int)fid.n, fid.p,
			 (int)owner.n, owner.p);
		return;
	}
	struct sync_vlog v;
	int rv = sync_vlog_after(rt, ENG_VLOG_FRIEND, FRIEND_LOG, owner, true, &v);
	struct notifs *ns = rv == 0 ? im_calloc(1, sizeof(*ns)) : NULL;
	if (rv == 0 && ns == NULL)
		rv = -ENOMEM;
	if (rv == 0) {
		json_t *tips = tips_new(owner, fid);
		tips_version(tips, &v);
		rv = notif_send(r, ns, 1205, owner, fid, tips, false);
	}
	if (rv != 0) {
		notif_fail(r, ns, rv);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_FRIEND_DELETE, .now_ms = r->s->now_ms()};
	cmd.r.friend_delete.owner_user_id = owner;
	cmd.r.friend_delete.friend_user_id = fid;
	propose_with(r, &cmd, ns, plain_done);
}

/* Proposes FRIEND_UPDATE of owner's rows of ids with a 1206 (one friend) or 1210 tip. */
static void propose_update(struct api_req *r, struct im_str owner, struct im_str *ids, size_t n,
			   uint32_t mask, struct im_str remark, struct im_str ex, bool pinned,
			   bool remark_tip)
{
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		struct eng_friend f;
		if (eng_friend_get(rt, owner, ids[i], &f) != 0) {
			api_fail(r, OI_RECORD_NOT_FOUND, "%.*s is not a friend of %.*s",
				 (int)ids[i].n, ids[i].p, (int)owner.n, owner.p);
			return;
		}
	}
	struct sync_vlog v;
	int rv = sync_vlog_after(rt, ENG_VLOG_FRIEND, FRIEND_LOG, owner, mask != 0, &v);
	struct notifs *ns = rv == 0 ? im_calloc(1, sizeof(*ns)) : NULL;
	if (rv == 0 && ns == NULL)
		rv = -ENOMEM;
	if (rv == 0 && remark_tip) {
		/* FriendInfoChangedTips, owner -> friend (OpenIM's FriendRemarkSetNotification). */
		json_t *tips = tips_new(owner, ids[0]);
		tips_version(tips, &v);
		json_object_set_new(tips, "friendSortVersion", json_integer(0));
		rv = notif_send(r, ns, 1206, owner, ids[0], tips, false);
	} else if (rv == 0) {
		/* FriendsInfoUpdateTips, owner -> owner. */
		json_t *tips = tips_new(owner, owner), *list = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, json_str(ids[i]));
		json_object_set_new(tips, "friendIDs", list);
		tips_version(tips, &v);
		rv = notif_send(r, ns, 1210, owner, owner, tips, false);
	}
	if (rv != 0) {
		notif_fail(r, ns, rv);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_FRIEND_UPDATE, .now_ms = r->s->now_ms()};
	cmd.r.friend_update.owner_user_id = owner;
	cmd.r.friend_update.n_friends = (uint32_t)n;
	cmd.r.friend_update.friend_user_ids = ids;
	cmd.r.friend_update.mask = mask;
	cmd.r.friend_update.remark = remark;
	cmd.r.friend_update.ex = ex;
	cmd.r.friend_update.is_pinned = pinned;
	propose_with(r, &cmd, ns, plain_done);
}

static void set_friend_remark(struct api_req *r)
{
	struct im_str owner, fid, remark;
	if (!id_arg(r, "ownerUserID", &owner) || !id_arg(r, "friendUserID", &fid) ||
	    !api_str(r, r->body, "remark", &remark))
		return;
	if (!api_require_self_or_admin(r, owner) || !text_ok(r, "remark", remark))
		return;
	propose_update(r, owner, &fid, 1, ENG_FRIEND_REMARK, remark, (struct im_str){NULL, 0},
		       false, true);
}

static void update_friends(struct api_req *r)
{
	struct im_str owner, remark, ex, *ids = NULL;
	size_t n = 0;
	bool pinned = false, has_pin = false, has_remark = false, has_ex = false;
	struct json_err e;
	if (!id_arg(r, "ownerUserID", &owner))
		return;
	if (!api_bool(r, r->body, "isPinned", &pinned, &has_pin))
		return;
	if (json_get_str(r->body, "remark", &remark, &has_remark, &e) != 0 ||
	    json_get_str(r->body, "ex", &ex, &has_ex, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return;
	}
	if (!api_require_self_or_admin(r, owner) || !text_ok(r, "remark", remark) ||
	    !text_ok(r, "ex", ex))
		return;
	if (!id_list_arg(r, "friendUserIDs", ENG_FRIENDS_MAX, &ids, &n))
		return;
	if (n == 0) {
		api_fail(r, OI_ARGS, "friendUserIDs is empty");
		return;
	}
	uint32_t mask = (has_pin ? ENG_FRIEND_IS_PINNED : 0) |
			(has_remark ? ENG_FRIEND_REMARK : 0) | (has_ex ? ENG_FRIEND_EX : 0);
	propose_update(r, owner, ids, n, mask, remark, ex, pinned, false);
	im_free(ids);
}

/*
 * import_friend: one FRIEND_IMPORT command, then, when there are more
 * friends than items fit in one command, NOOP commands carrying the rest of
 * the 1201 notifications (two items per friend: online and chat copy).
 */
struct import_state {
	struct im_str owner;
	size_t n, next;
	struct im_str ids[];
};

#define IMPORT_PER_CMD (ENG_ITEMS_MAX / 2)

/* Notifications of the next batch of friends; first: before the import is applied. */
static int import_batch(struct api_req *r, struct eng_rtxn *rt, struct import_state *st, bool first,
			struct notifs *ns)
{
	size_t end = IM_MIN(st->n, st->next + IMPORT_PER_CMD);
	for (size_t i = st->next; i < end; i++) {
		struct im_str fid = st->ids[i];
		struct eng_friend f;
		struct eng_friend_req q;
		struct sync_vlog v;
		bool bump = first && eng_friend_get(rt, fid, st->owner, &f) != 0;
		int rv = sync_vlog_after(rt, ENG_VLOG_FRIEND, FRIEND_LOG, fid, bump, &v);
		if (rv != 0)
			return rv;
		json_t *tips = tips_new(st->owner, fid);
		json_object_set_new(tips, "handleMsg", json_string(""));
		tips_version(tips, &v);
		json_object_set_new(tips, "request",
				    eng_friend_req_get(rt, st->owner, fid, &q) == 0
					? freq_json(rt, &q)
					: json_null());
		rv = notif_send(r, ns, 1201, st->owner, fid, tips, true);
		if (rv != 0)
			return rv;
	}
	st->next = end;
	return 0;
}

static void import_done(struct api_req *r, int status, const struct eng_result *res)
{
	(void)status;
	struct import_state *st = r->state;
	if (res->code != 0 || st->next >= st->n) {
		reply_result(r, res, OI_DUPLICATE_KEY, OI_USER_NOT_FOUND);
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct notifs *ns = im_calloc(1, sizeof(*ns));
	int rv = ns ? import_batch(r, rt, st, false, ns) : -ENOMEM;
	if (rv != 0) {
		notif_fail(r, ns, rv);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_NOOP, .now_ms = r->s->now_ms()};
	propose_with(r, &cmd, ns, import_done);
}

static void import_friend(struct api_req *r)
{
	struct im_str owner, *ids = NULL;
	size_t n = 0;
	if (!api_require_admin(r) || !id_arg(r, "ownerUserID", &owner) ||
	    !id_list_arg(r, "friendUserIDs", IMPORT_MAX - 1, &ids, &n))
		return;
	struct import_state *st = NULL;
	struct eng_rtxn *rt = NULL;
	if (n == 0) {
		api_fail(r, OI_ARGS, "friendUserIDs is empty");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (im_str_eq(ids[i], owner)) {
			api_fail(r, OI_CANNOT_ADD_YOURSELF, "can not add yourself");
			goto out;
		}
	if ((rt = api_read(r)) == NULL || !user_known(r, rt, owner))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!user_known(r, rt, ids[i]))
			goto out;
	st = im_calloc(1, sizeof(*st) + n * sizeof(st->ids[0]));
	if (st == NULL) {
		api_fail_im(r, -ENOMEM, "import");
		goto out;
	}
	st->owner = owner;
	st->n = n;
	memcpy(st->ids, ids, n * sizeof(ids[0]));
	r->state = st;
	struct notifs *ns = im_calloc(1, sizeof(*ns));
	int rv = ns ? import_batch(r, rt, st, true, ns) : -ENOMEM;
	if (rv != 0) {
		notif_fail(r, ns, rv);
		goto out;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_FRIEND_IMPORT, .now_ms = r->s->now_ms()};
	cmd.r.friend_import.owner_user_id = owner;
	cmd.r.friend_import.n_friends = (uint32_t)n;
	cmd.r.friend_import.friend_user_ids = st->ids;
	cmd.r.friend_import.operator_user_id = im_str_c(r->who.user_id);
	propose_with(r, &cmd, ns, import_done);
out:
	im_free(ids);
}

struct page {
	struct eng_rtxn *rt;
	json_t *arr;
	bool ids_only;
};

static int friend_page_cb(const struct eng_friend *f, void *arg)
{
	struct page *p = arg;
	json_array_append_new(p->arr,
			      p->ids_only ? json_str(f->friend_user_id) : friend_json(p->rt, f));
	return 0;
}

static void get_friend_list(struct api_req *r)
{
	struct im_str uid;
	uint64_t offset, limit, total = 0;
	struct page p = {0};
	if (!owner_arg(r, "userID", &uid) || !api_pagination(r, r->body, &offset, &limit))
		return;
	if ((p.rt = api_read(r)) == NULL)
		return;
	p.arr = json_array();
	int rv = eng_friend_scan(p.rt, uid, offset, limit, friend_page_cb, &p, &total);
	if (rv != 0) {
		json_decref(p.arr);
		api_fail_im(r, rv, "friends");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "friendsInfo", api_null_if_empty(p.arr));
	json_object_set_new(d, "total", json_integer((json_int_t)total));
	api_reply(r, d);
}

/* Owner's friends among the ids (others are left out). */
static void get_designated_friends(struct api_req *r)
{
	struct im_str uid, *ids = NULL;
	size_t n = 0;
	if (!owner_arg(r, "ownerUserID", &uid) ||
	    !id_list_arg(r, "friendUserIDs", LIST_MAX, &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_friend f;
		if (eng_friend_get(rt, uid, ids[i], &f) == 0)
			json_array_append_new(arr, friend_json(rt, &f));
	}
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "friendsInfo", api_null_if_empty(arr));
	api_reply(r, d);
}

static void is_friend(struct api_req *r)
{
	struct im_str a, b;
	if (!api_str(r, r->body, "userID1", &a) || !api_str(r, r->body, "userID2", &b))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_friend f;
	json_t *d = json_object();
	json_object_set_new(d, "inUser1Friends", json_boolean(eng_friend_get(rt, a, b, &f) == 0));
	json_object_set_new(d, "inUser2Friends", json_boolean(eng_friend_get(rt, b, a, &f) == 0));
	api_reply(r, d);
}

static void get_friend_id(struct api_req *r)
{
	struct im_str uid;
	struct page p = {.ids_only = true};
	if (!owner_arg(r, "userID", &uid) || (p.rt = api_read(r)) == NULL)
		return;
	p.arr = json_array();
	int rv = eng_friend_scan(p.rt, uid, 0, 0, friend_page_cb, &p, NULL);
	if (rv != 0) {
		json_decref(p.arr);
		api_fail_im(r, rv, "friends");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "friendIDs", api_null_if_empty(p.arr));
	api_reply(r, d);
}

/* {infos:[{userInfo, friendInfo, blackInfo}]} for registered ids; rows without profiles. */
static void get_specified_friends_info(struct api_req *r)
{
	struct im_str uid, *ids = NULL;
	size_t n = 0;
	if (!owner_arg(r, "ownerUserID", &uid) || !id_list_arg(r, "userIDList", LIST_MAX, &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_user u;
		struct eng_friend f;
		struct eng_black b;
		if (eng_user_get(rt, ids[i], &u) != 0)
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "userInfo", api_user_json(&u));
		json_object_set_new(o, "friendInfo",
				    eng_friend_get(rt, uid, ids[i], &f) == 0 ? friend_json(NULL, &f)
									     : json_null());
		json_object_set_new(o, "blackInfo",
				    eng_black_get(rt, uid, ids[i], &b) == 0 ? black_json(NULL, &b)
									    : json_null());
		json_array_append_new(arr, o);
	}
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "infos", api_null_if_empty(arr));
	api_reply(r, d);
}

/* ---------------------------------------------------------------- sync */

static json_t *friend_obj(struct eng_rtxn *rt, struct im_str doc, struct im_str elem, void *arg)
{
	(void)arg;
	struct eng_friend f;
	return eng_friend_get(rt, doc, elem, &f) == 0 ? friend_json(rt, &f) : NULL;
}

static json_t *black_obj(struct eng_rtxn *rt, struct im_str doc, struct im_str elem, void *arg)
{
	(void)arg;
	struct eng_black b;
	return eng_black_get(rt, doc, elem, &b) == 0 ? black_json(rt, &b) : NULL;
}

static void incremental(struct api_req *r, int kind, const char *name, sync_obj_fn obj)
{
	struct im_str uid, vid;
	int64_t version = 0;
	if (!owner_arg(r, "userID", &uid) || !api_str(r, r->body, "versionID", &vid) ||
	    !api_i64(r, r->body, "version", &version, NULL))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	int err = 0;
	json_t *d = sync_incremental(rt, kind, name, uid, vid, version < 0 ? 0 : (uint64_t)version,
				     kind == ENG_VLOG_FRIEND, obj, NULL, &err);
	if (d == NULL)
		api_fail_im(r, err, "version log");
	else
		api_reply(r, d);
}

static void get_incremental_friends(struct api_req *r)
{
	incremental(r, ENG_VLOG_FRIEND, FRIEND_LOG, friend_obj);
}

/*
 * OpenIM 3.8.3 routes this but its RPC fails; the black log is kept like
 * the friend log, so it is answered the same way (without sortVersion).
 */
static void get_incremental_blacks(struct api_req *r)
{
	incremental(r, ENG_VLOG_BLACK, BLACK_LOG, black_obj);
}

static void get_full_friend_user_ids(struct api_req *r)
{
	struct im_str uid;
	int64_t id_hash = 0;
	struct page p = {.ids_only = true};
	if (!owner_arg(r, "userID", &uid) || !api_i64(r, r->body, "idHash", &id_hash, NULL))
		return;
	if ((p.rt = api_read(r)) == NULL)
		return;
	p.arr = json_array();
	int rv = eng_friend_scan(p.rt, uid, 0, 0, friend_page_cb, &p, NULL);
	if (rv != 0) {
		json_decref(p.arr);
		api_fail_im(r, rv, "friends");
		return;
	}
	json_t *d = sync_vlog_full_ids(p.rt, ENG_VLOG_FRIEND, FRIEND_LOG, uid, "userIDs", p.arr,
				       id_hash, &rv);
	if (d == NULL)
		api_fail_im(r, rv, "version log");
	else
		api_reply(r, d);
}

/* ---------------------------------------------------------------- blacklists */

static void add_black(struct api_req *r)
{
	struct im_str owner, black, ex;
	if (!id_arg(r, "ownerUserID", &owner) || !id_arg(r, "blackUserID", &black) ||
	    !api_str(r, r->body, "ex", &ex))
		return;
	if (!api_require_self_or_admin(r, owner) || !text_ok(r, "ex", ex))
		return;
	if (im_str_eq(owner, black)) {
		api_fail(r, OI_ARGS, "can not block yourself");
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL || !user_known(r, rt, owner) || !user_known(r, rt, black))
		return;
	struct eng_black b;
	if (eng_black_get(rt, owner, black, &b) == 0) {
		api_fail(r, OI_DUPLICATE_KEY, "%.*s is in the blacklist of %.*s already",
			 (int)black.n, black.p, (int)owner.n, owner.p);
		return;
	}
	struct notifs *ns = im_calloc(1, sizeof(*ns));
	int rv =
	    ns ? notif_send(r, ns, 1207, owner, black, tips_new(owner, black), false) : -ENOMEM;
	if (rv != 0) {
		notif_fail(r, ns, rv);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_BLACK_ADD, .now_ms = r->s->now_ms()};
	cmd.r.black_add.owner_user_id = owner;
	cmd.r.black_add.black_user_id = black;
	cmd.r.black_add.ex = ex;
	cmd.r.black_add.operator_user_id = im_str_c(r->who.user_id);
	propose_with(r, &cmd, ns, black_add_done);
}

static void remove_black(struct api_req *r)
{
	struct im_str owner, black;
	if (!id_arg(r, "ownerUserID", &owner) || !id_arg(r, "blackUserID", &black))
		return;
	if (!api_require_self_or_admin(r, owner))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_black b;
	if (eng_black_get(rt, owner, black, &b) != 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "%.*s is not in the blacklist of %.*s",
			 (int)black.n, black.p, (int)owner.n, owner.p);
		return;
	}
	struct notifs *ns = im_calloc(1, sizeof(*ns));
	int rv =
	    ns ? notif_send(r, ns, 1208, owner, black, tips_new(owner, black), false) : -ENOMEM;
	if (rv != 0) {
		notif_fail(r, ns, rv);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_BLACK_REMOVE, .now_ms = r->s->now_ms()};
	cmd.r.black_remove.owner_user_id = owner;
	cmd.r.black_remove.black_user_id = black;
	propose_with(r, &cmd, ns, plain_done);
}

static int black_page_cb(const struct eng_black *b, void *arg)
{
	struct page *p = arg;
	json_array_append_new(p->arr, black_json(p->rt, b));
	return 0;
}

static void get_black_list(struct api_req *r)
{
	struct im_str uid;
	uint64_t offset, limit, total = 0;
	struct page p = {0};
	if (!owner_arg(r, "userID", &uid) || !api_pagination(r, r->body, &offset, &limit))
		return;
	if ((p.rt = api_read(r)) == NULL)
		return;
	p.arr = json_array();
	int rv = eng_black_scan(p.rt, uid, offset, limit, black_page_cb, &p, &total);
	if (rv != 0) {
		json_decref(p.arr);
		api_fail_im(r, rv, "blacklist");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "blacks", api_null_if_empty(p.arr));
	json_object_set_new(d, "total", json_integer((json_int_t)total));
	api_reply(r, d);
}

static void get_specified_blacks(struct api_req *r)
{
	struct im_str uid, *ids = NULL;
	size_t n = 0;
	if (!owner_arg(r, "ownerUserID", &uid) || !id_list_arg(r, "userIDList", LIST_MAX, &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_black b;
		if (eng_black_get(rt, uid, ids[i], &b) == 0)
			json_array_append_new(arr, black_json(rt, &b));
	}
	im_free(ids);
	json_t *d = json_object();
	size_t total = json_array_size(arr);
	json_object_set_new(d, "blacks", api_null_if_empty(arr));
	json_object_set_new(d, "total", json_integer((json_int_t)total));
	api_reply(r, d);
}

const struct api_route api_routes_friend[] = {
    {"/friend/add_friend", add_friend, 0},
    {"/friend/add_friend_response", add_friend_response, 0},
    {"/friend/delete_friend", delete_friend, 0},
    {"/friend/get_friend_apply_list", get_friend_apply_list, 0},
    {"/friend/get_self_friend_apply_list", get_self_friend_apply_list, 0},
    {"/friend/get_designated_friend_apply", get_designated_friend_apply, 0},
    {"/friend/get_friend_list", get_friend_list, 0},
    {"/friend/get_designated_friends", get_designated_friends, 0},
    {"/friend/set_friend_remark", set_friend_remark, 0},
    {"/friend/update_friends", update_friends, 0},
    {"/friend/add_black", add_black, 0},
    {"/friend/remove_black", remove_black, 0},
    {"/friend/get_black_list", get_black_list, 0},
    {"/friend/get_specified_blacks", get_specified_blacks, 0},
    {"/friend/import_friend", import_friend, 0},
    {"/friend/is_friend", is_friend, 0},
    {"/friend/get_friend_id", get_friend_id, 0},
    {"/friend/get_specified_friends_info", get_specified_friends_info, 0},
    {"/friend/get_incremental_friends", get_incremental_friends, 0},
    {"/friend/get_incremental_blacks", get_incremental_blacks, 0},
    {"/friend/get_full_friend_user_ids", get_full_friend_user_ids, 0},
    {"/friend/get_self_unhandled_apply_count", get_self_unhandled_apply_count, 0},
    {NULL, NULL, 0},
};
