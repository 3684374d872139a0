/* routes_msg.c - /msg/ and /jssdk/ routes (openim-protocol.md §3.6, §3.9, §6.8-6.10). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "msg.h"

/* ---------------------------------------------------------------- helpers */

static void no_data_done(struct api_req *r, int status, const struct eng_result *res)
{
	if (res->code == IM_ENOTFOUND)
		api_fail(r, OI_RECORD_NOT_FOUND, "%s", res->detail);
	else if (res->code == IM_EEXIST)
		api_fail(r, OI_MSG_ALREADY_REVOKE, "%s", res->detail);
	else if (res->code == IM_EPERM)
		api_fail(r, OI_NO_PERMISSION, "%s", res->detail);
	else if (res->code != 0)
		api_fail_im(r, res->code, res->detail);
	else
		api_reply(r, NULL);
}

/* The peer of a 1:1 conversation si_a_b seen from user, into out. */
static bool si_peer(struct im_str conv, struct im_str user, struct im_str *peer)
{
	if (conv.n < 4 || memcmp(conv.p, "si_", 3) != 0)
		return false;
	struct im_str rest = {conv.p + 3, conv.n - 3};
	if (rest.n > user.n + 1 && memcmp(rest.p, user.p, user.n) == 0 && rest.p[user.n] == '_') {
		*peer = (struct im_str){rest.p + user.n + 1, rest.n - user.n - 1};
		return true;
	}
	if (rest.n > user.n + 1 && memcmp(rest.p + rest.n - user.n, user.p, user.n) == 0 &&
	    rest.p[rest.n - user.n - 1] == '_') {
		*peer = (struct im_str){rest.p, rest.n - user.n - 1};
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------- send_msg */

static void rest_send_cb(void *arg, int code, const char *detail, const char *server_msg_id,
			 const char *client_msg_id, int64_t send_time)
{
	struct api_req *r = arg;
	if (code != 0) {
		api_fail(r, code, "%s", detail);
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "serverMsgID", json_string(server_msg_id));
	json_object_set_new(d, "clientMsgID", json_string(client_msg_id));
	json_object_set_new(d, "sendTime", json_integer(send_time));
	json_object_set_new(d, "modify", json_null());
	api_reply(r, d);
}

static bool content_type_ok(int32_t ct)
{
	return (ct >= 101 && ct <= 106) || ct == 110 || ct == 1400;
}

/* /msg/send_msg (admin, §3.6.1): a backend's message, msgFrom 200. */
static void send_msg(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct im_str send, recv, group, nick, face, ex;
	int32_t ct = 0, st = 0, platform = 0;
	int64_t send_time = 0;
	bool online_only = false, not_offline_push = false;
	json_t *content = NULL;
	struct json_err e;
	if (!api_str(r, r->body, "sendID", &send) || !api_str(r, r->body, "recvID", &recv) ||
	    !api_str(r, r->body, "groupID", &group) ||
	    !api_str(r, r->body, "senderNickname", &nick) ||
	    !api_str(r, r->body, "senderFaceURL", &face) || !api_str(r, r->body, "ex", &ex) ||
	    !api_i32(r, r->body, "contentType", &ct, NULL) ||
	    !api_i32(r, r->body, "sessionType", &st, NULL) ||
	    !api_i32(r, r->body, "senderPlatformID", &platform, NULL) ||
	    !api_i64(r, r->body, "sendTime", &send_time, NULL) ||
	    !api_bool(r, r->body, "isOnlineOnly", &online_only, NULL) ||
	    !api_bool(r, r->body, "notOfflinePush", &not_offline_push, NULL))
		return;
	if (json_get_obj(r->body, "content", &content, &e) != 0 || content == NULL) {
		api_fail(r, OI_ARGS, "content is required and must be an object");
		return;
	}
	if (send.n == 0 || !content_type_ok(ct) || (st != 1 && st != 3 && st != 4) ||
	    ((st == 1 || st == 4) && recv.n == 0) || (st == 3 && group.n == 0) ||
	    send.n > ENG_ID_MAX || recv.n > ENG_ID_MAX || group.n > ENG_ID_MAX) {
		api_fail(r, OI_ARGS,
			 "sendID, contentType, sessionType and recvID/groupID are required");
		return;
	}
	/* Stored content: the JSON of the content object, keys sorted (a Go map). */
	char *body = json_dumps(content, JSON_COMPACT | JSON_SORT_KEYS);
	Openim__Sdkws__MsgData *m = pb_msgdata_new();
	char sendz[ENG_ID_MAX + 1], recvz[ENG_ID_MAX + 1], groupz[ENG_ID_MAX + 1];
	char nickz[256], facez[1024], exz[1024];
	snprintf(sendz, sizeof(sendz), "%.*s", (int)send.n, send.p);
	snprintf(recvz, sizeof(recvz), "%.*s", (int)recv.n, recv.p);
	snprintf(groupz, sizeof(groupz), "%.*s", (int)group.n, group.p);
	snprintf(nickz, sizeof(nickz), "%.*s", (int)IM_MIN(nick.n, 255u), nick.p);
	snprintf(facez, sizeof(facez), "%.*s", (int)IM_MIN(face.n, 1023u), face.p);
	snprintf(exz, sizeof(exz), "%.*s", (int)IM_MIN(ex.n, 1023u), ex.p);
	int rv = (body && m) ? 0 : -ENOMEM;
	if (rv == 0 && online_only) {
		static const char *const off[] = {PB_OPT_HISTORY, PB_OPT_PERSISTENT,
						  PB_OPT_SENDER_SYNC, PB_OPT_CONVERSATION_UPDATE};
		for (size_t i = 0; rv == 0 && i < IM_ARRAY_LEN(off); i++)
			rv = pb_opt_set(m, off[i], false);
	}
	if (rv == 0 && not_offline_push)
		rv = pb_opt_set(m, PB_OPT_OFFLINE_PUSH, false);
	if (rv != 0) {
		free(body);
		if (m)
			pb_msgdata_free(m);
		api_fail_im(r, rv, "build message");
		return;
	}
	m->sendid = sendz;
	m->recvid = st == 3 ? groupz : recvz;
	m->groupid = groupz;
	m->clientmsgid = "";
	m->servermsgid = "";
	m->sendernickname = nickz;
	m->senderfaceurl = facez;
	m->senderplatformid = platform;
	m->sessiontype = st;
	m->msgfrom = 200;
	m->contenttype = ct;
	m->content.data = (uint8_t *)body;
	m->content.len = strlen(body);
	m->sendtime = send_time;
	m->createtime = r->s->now_ms();
	m->ex = exz;
	if (r->rt) { /* the token check's read txn: msg_send opens its own (one per thread) */
		eng_read_end(r->rt);
		r->rt = NULL;
	}
	msg_send(r->s, m, r->op_id, true, rest_send_cb, r);
	m->sendid = m->recvid = m->groupid = m->clientmsgid = m->servermsgid = NULL;
	m->sendernickname = m->senderfaceurl = m->ex = NULL;
	m->content.data = NULL;
	m->content.len = 0;
	pb_msgdata_free(m);
	free(body);
}

/* ---------------------------------------------------------------- business notification */

struct business_state {
	struct msg_notif_bufs nb;
};

static void business_done(struct api_req *r, int status, const struct eng_result *res)
{
	struct business_state *st = r->state;
	im_buf_free(&st->nb.data);
	if (res->code != 0) {
		api_fail_im(r, res->code, res->detail);
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "serverMsgID", json_string(st->nb.smid));
	json_object_set_new(d, "clientMsgID", json_string(st->nb.cmid));
	json_object_set_new(d, "sendTime",
			    json_integer(res->n_msgs ? res->msgs[0].send_time : r->s->now_ms()));
	json_object_set_new(d, "modify", json_null());
	api_reply(r, d);
}

/*
 * /msg/send_business_notification (admin, §3.6): contentType 2001 from
 * sendUserID to recvUserID in their n_ stream, content {"detail": {key, data}}.
 */
static void send_business_notification(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct im_str key, data, send, recv;
	if (!api_str(r, r->body, "key", &key) || !api_str(r, r->body, "data", &data) ||
	    !api_str(r, r->body, "sendUserID", &send) || !api_str(r, r->body, "recvUserID", &recv))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_user u;
	if (send.n == 0 || eng_user_get(rt, send, &u) != 0 || recv.n == 0 ||
	    eng_user_get(rt, recv, &u) != 0) {
		api_fail(r, OI_USER_NOT_FOUND, "sendUserID or recvUserID not found");
		return;
	}
	struct business_state *st = im_calloc(1, sizeof(*st));
	if (st == NULL) {
		api_fail_im(r, -ENOMEM, "alloc");
		return;
	}
	r->state = st;
	json_t *tips = json_object();
	json_object_set_new(tips, "key", json_str(key));
	json_object_set_new(tips, "data", json_str(data));
	struct eng_msg_item item;
	int rv = msg_notification(r->s, MSG_NOTIF_STREAM, 2001, 1, send, recv, IM_STR_LIT(""), tips,
				  r->op_id, &st->nb, &item);
	if (rv != 0) {
		api_fail_im(r, rv, "business notification");
		return;
	}
	struct eng_cmd cmd = {
	    .type = ENG_CMD_MSG_SEND, .now_ms = r->s->now_ms(), .n_items = 1, .items = &item};
	api_propose(r, &cmd, business_done);
}

/* ---------------------------------------------------------------- pull_msg_by_seq (JSON) */

/* The Go JSON of sdkws.MsgData (encoding/json over the generated struct, §2.2). */
static json_t *msgdata_json(const Openim__Sdkws__MsgData *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "sendID", json_string(m->sendid));
	json_object_set_new(o, "recvID", json_string(m->recvid));
	json_object_set_new(o, "groupID", json_string(m->groupid));
	json_object_set_new(o, "clientMsgID", json_string(m->clientmsgid));
	json_object_set_new(o, "serverMsgID", json_string(m->servermsgid));
	json_object_set_new(o, "senderPlatformID", json_integer(m->senderplatformid));
	json_object_set_new(o, "senderNickname", json_string(m->sendernickname));
	json_object_set_new(o, "senderFaceURL", json_string(m->senderfaceurl));
	json_object_set_new(o, "sessionType", json_integer(m->sessiontype));
	json_object_set_new(o, "msgFrom", json_integer(m->msgfrom));
	json_object_set_new(o, "contentType", json_integer(m->contenttype));
	struct im_buf b64 = {0};
	if (m->content.len)
		pb_base64_std_encode(m->content.data, m->content.len, &b64);
	json_object_set_new(
	    o, "content", m->content.len ? json_stringn(b64.p ? b64.p : "", b64.len) : json_null());
	im_buf_free(&b64);
	json_object_set_new(o, "seq", json_integer(m->seq));
	json_object_set_new(o, "sendTime", json_integer(m->sendtime));
	json_object_set_new(o, "createTime", json_integer(m->createtime));
	json_object_set_new(o, "status", json_integer(m->status));
	json_object_set_new(o, "isRead", json_boolean(m->isread));
	json_t *opts = json_object();
	for (size_t i = 0; i < m->n_options; i++)
		json_object_set_new(opts, m->options[i]->key, json_boolean(m->options[i]->value));
	json_object_set_new(o, "options", m->n_options ? opts : (json_decref(opts), json_null()));
	if (m->offlinepushinfo) {
		const Openim__Sdkws__OfflinePushInfo *p = m->offlinepushinfo;
		json_t *op = json_object();
		json_object_set_new(op, "title", json_string(p->title));
		json_object_set_new(op, "desc", json_string(p->desc));
		json_object_set_new(op, "ex", json_string(p->ex));
		json_object_set_new(op, "iOSPushSound", json_string(p->iospushsound));
		json_object_set_new(op, "iOSBadgeCount", json_boolean(p->iosbadgecount));
		json_object_set_new(op, "signalInfo", json_string(p->signalinfo));
		json_object_set_new(o, "offlinePushInfo", op);
	} else {
		json_object_set_new(o, "offlinePushInfo", json_null());
	}
	json_t *at = json_array();
	for (size_t i = 0; i < m->n_atuseridlist; i++)
		json_array_append_new(at, json_string(m->atuseridlist[i]));
	json_object_set_new(o, "atUserIDList", api_null_if_empty(at));
	json_object_set_new(o, "attachedInfo", json_string(m->attachedinfo));
	json_object_set_new(o, "ex", json_string(m->ex));
	return o;
}

/* The view of (conv, seq) for user as Go JSON (placeholders included). */
static json_t *view_json(struct eng_rtxn *rt, struct im_str user, struct im_str conv, int64_t seq)
{
	struct im_buf b = {0};
	struct pb_w w;
	pb_w_init(&w, &b);
	msg_add_view(&w, 1, rt, user, conv, seq);
	size_t hdr = 1;
	while (hdr < b.len && ((unsigned char)b.p[hdr] & 0x80))
		hdr++;
	hdr++;
	Openim__Sdkws__MsgData *m = NULL;
	json_t *o = NULL;
	if (pb_w_done(&w) == 0 && hdr <= b.len &&
	    pb_msgdata_unpack((const uint8_t *)b.p + hdr, b.len - hdr, &m) == 0) {
		o = msgdata_json(m);
		pb_msgdata_free(m);
	}
	im_buf_free(&b);
	return o;
}

/* /msg/pull_msg_by_seq: the REST twin of WS 1002, in JSON (content base64, §3.6). */
static void pull_msg_by_seq(struct api_req *r)
{
	struct im_str user;
	int32_t order = 0;
	json_t *ranges = NULL;
	struct json_err e;
	if (!api_str(r, r->body, "userID", &user) || !api_i32(r, r->body, "order", &order, NULL))
		return;
	if (!api_require_self_or_admin(r, user))
		return;
	if (json_get_array(r->body, "seqRanges", &ranges, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	json_t *maps[2] = {json_object(), json_object()};
	bool desc = order == 1;
	for (size_t i = 0; ranges && i < json_array_size(ranges); i++) {
		json_t *rg = json_array_get(ranges, i);
		struct im_str conv;
		int64_t begin = 0, end = 0, num = 0;
		if (!json_is_object(rg) || !api_str(r, rg, "conversationID", &conv) ||
		    !api_i64(r, rg, "begin", &begin, NULL) || !api_i64(r, rg, "end", &end, NULL) ||
		    !api_i64(r, rg, "num", &num, NULL)) {
			if (!json_is_object(rg))
				api_fail(r, OI_ARGS, "seqRanges items must be objects");
			json_decref(maps[0]);
			json_decref(maps[1]);
			return;
		}
		struct msg_window win;
		msg_window(rt, user, conv, &win);
		bool notif = conv.n > 2 && memcmp(conv.p, "n_", 2) == 0;
		if (!win.has_row && !notif)
			continue; /* the user has no such conversation (§6.7) */
		int64_t lo = IM_MAX(begin, win.lo), hi = IM_MIN(end, win.hi);
		num = num > 0 ? IM_MIN(num, 1000) : 1000;
		if (hi < lo)
			continue;
		if (hi - lo + 1 > num)
			lo = hi - num + 1;
		bool is_end = desc ? begin <= win.lo : win.hi <= end;
		json_t *list = json_array();
		for (int64_t seq = lo; seq <= hi; seq++) {
			json_t *m = view_json(rt, user, conv, seq);
			if (m)
				json_array_append_new(list, m);
		}
		json_t *pm = json_object();
		json_object_set_new(pm, "Msgs", api_null_if_empty(list));
		json_object_set_new(pm, "isEnd", json_boolean(is_end));
		json_object_set_new(pm, "endSeq",
				    json_integer(is_end ? (desc ? win.lo : win.hi) : 0));
		char key[ENG_CONV_ID_MAX + 1];
		snprintf(key, sizeof(key), "%.*s", (int)conv.n, conv.p);
		json_object_set_new(maps[notif], key, pm);
	}
	json_t *d = json_object();
	for (int k = 0; k < 2; k++)
		json_object_set_new(
		    d, k ? "notificationMsgs" : "msgs",
		    json_object_size(maps[k]) ? maps[k] : (json_decref(maps[k]), json_null()));
	api_reply(r, d);
}

static void get_server_time(struct api_req *r)
{
	json_t *d = json_object();
	json_object_set_new(d, "serverTime", json_integer(r->s->now_ms()));
	api_reply(r, d);
}

/* ---------------------------------------------------------------- mark as read */

struct read_state {
	struct msg_notif_bufs nb;
	int64_t *seqs;
};

static void mark_read_done(struct api_req *r, int status, const struct eng_result *res)
{
	struct read_state *st = r->state;
	im_buf_free(&st->nb.data);
	im_free(st->seqs);
	st->seqs = NULL;
	no_data_done(r, status, res);
}

static bool read_seqs_arg(struct api_req *r, int64_t **out, size_t *n)
{
	json_t *arr = NULL;
	struct json_err e;
	*out = NULL;
	*n = 0;
	if (json_get_array(r->body, "seqs", &arr, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return false;
	}
	size_t k = arr ? json_array_size(arr) : 0;
	if (k > ENG_SEQS_MAX) {
		api_fail(r, OI_ARGS, "too many seqs");
		return false;
	}
	if (k && (*out = im_calloc(k, sizeof(int64_t))) == NULL) {
		api_fail_im(r, -ENOMEM, "alloc");
		return false;
	}
	for (size_t i = 0; i < k; i++) {
		json_t *v = json_array_get(arr, i);
		if (!json_is_integer(v)) {
			im_free(*out);
			*out = NULL;
			api_fail(r, OI_ARGS, "seqs must be integers");
			return false;
		}
		(*out)[i] = json_integer_value(v);
	}
	*n = k;
	return true;
}

/*
 * mark_conversation_as_read / mark_msgs_as_read / set_conversation_has_read_seq
 * (§6.8): hasReadSeq raised; 1:1 also marks messages read and sends a 2200
 * receipt reader -> peer in the n_ stream.
 */
static void mark_read(struct api_req *r, bool conversation, bool receipt)
{
	struct im_str user, conv;
	int64_t has_read = 0, *seqs = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "userID", &user) ||
	    !api_str(r, r->body, "conversationID", &conv) ||
	    !api_i64(r, r->body, "hasReadSeq", &has_read, NULL))
		return;
	if (!api_require_self_or_admin(r, user))
		return;
	if (conversation && !read_seqs_arg(r, &seqs, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(seqs);
		return;
	}
	struct eng_conv c;
	if (eng_conv_get(rt, user, conv, &c) != 0) {
		im_free(seqs);
		api_fail(r, OI_RECORD_NOT_FOUND, "conversation %.*s not found", (int)conv.n,
			 conv.p);
		return;
	}
	struct msg_window win;
	msg_window(rt, user, conv, &win);
	if (!conversation && has_read > win.max_seq) {
		api_fail(r, OI_ARGS, "hasReadSeq %lld > maxSeq %lld", (long long)has_read,
			 (long long)win.max_seq);
		return;
	}
	for (size_t i = 0; i < n; i++)
		has_read = IM_MAX(has_read, seqs[i]);
	has_read = IM_MIN(has_read, win.max_seq);
	int64_t old = eng_read_seq(rt, user, conv);
	struct read_state *st = im_calloc(1, sizeof(*st));
	if (st == NULL) {
		im_free(seqs);
		api_fail_im(r, -ENOMEM, "alloc");
		return;
	}
	r->state = st;
	st->seqs = seqs;
	struct eng_cmd cmd = {.type = ENG_CMD_MARK_READ, .now_ms = r->s->now_ms()};
	cmd.m.mark_read.user_id = user;
	cmd.m.mark_read.conv_id = conv;
	cmd.m.mark_read.has_read_seq = has_read;
	cmd.m.mark_read.n_seqs = (uint32_t)n;
	cmd.m.mark_read.seqs = seqs;
	struct im_str peer;
	bool one_to_one = si_peer(conv, user, &peer);
	cmd.m.mark_read.mark_msgs = one_to_one;
	struct eng_msg_item item;
	if (receipt && one_to_one && (has_read > old || n > 0)) {
		/* MarkAsReadTips: the seqs newly read, and the new hasReadSeq (§11). */
		json_t *tips = json_object(), *arr = json_array();
		for (int64_t s = IM_MAX(old + 1, win.lo); s <= has_read && s - old <= 1000; s++)
			json_array_append_new(arr, json_integer(s));
		for (size_t i = 0; i < n; i++)
			if (seqs[i] <= old)
				json_array_append_new(arr, json_integer(seqs[i]));
		json_object_set_new(tips, "markAsReadUserID", json_str(user));
		json_object_set_new(tips, "conversationID", json_str(conv));
		json_object_set_new(tips, "seqs", api_null_if_empty(arr));
		json_object_set_new(tips, "hasReadSeq", json_integer(has_read));
		int rv = msg_notification(r->s, MSG_NOTIF_STREAM, 2200, 1, user, peer,
					  IM_STR_LIT(""), tips, r->op_id, &st->nb, &item);
		if (rv != 0) {
			api_fail_im(r, rv, "read receipt");
			return;
		}
		cmd.n_items = 1;
		cmd.items = &item;
	}
	api_propose(r, &cmd, mark_read_done);
}

static void mark_conversation_as_read(struct api_req *r)
{
	mark_read(r, true, true);
}

static void mark_msgs_as_read(struct api_req *r)
{
	mark_read(r, true, true);
}

static void set_conversation_has_read_seq(struct api_req *r)
{
	mark_read(r, false, false);
}

/* ---------------------------------------------------------------- revoke */

struct revoke_state {
	struct msg_notif_bufs nb;
};

static void revoke_done(struct api_req *r, int status, const struct eng_result *res)
{
	struct revoke_state *st = r->state;
	im_buf_free(&st->nb.data);
	no_data_done(r, status, res);
}

/* /msg/revoke_msg (§6.9): sender, or group owner/admin over ordinary members, or app admin. */
static void revoke_msg(struct api_req *r)
{
	struct im_str user, conv;
	int64_t seq = 0;
	if (!api_str(r, r->body, "userID", &user) ||
	    !api_str(r, r->body, "conversationID", &conv) ||
	    !api_i64(r, r->body, "seq", &seq, NULL))
		return;
	if (!api_require_self_or_admin(r, user))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct msg_window win;
	msg_window(rt, user, conv, &win);
	struct im_str data;
	bool is_read, revoked;
	if (!win.has_row || seq < win.lo || seq > win.hi ||
	    eng_msg_get(rt, conv, seq, &data, &is_read, &revoked) != 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "message %.*s/%lld not found", (int)conv.n, conv.p,
			 (long long)seq);
		return;
	}
	if (revoked) {
		api_fail(r, OI_MSG_ALREADY_REVOKE, "message already revoked");
		return;
	}
	Openim__Sdkws__MsgData *m = NULL;
	if (pb_msgdata_unpack((const uint8_t *)data.p, data.n, &m) != 0) {
		api_fail(r, OI_SERVER_INTERNAL, "stored message does not decode");
		return;
	}
	int32_t role = 0;
	bool allowed = r->who.admin || strcmp(m->sendid, r->who.user_id) == 0;
	if (r->who.admin)
		role = 0;
	if (!allowed && m->sessiontype == 3) {
		struct eng_member me, sender;
		struct im_str gid = im_str_c(m->groupid);
		if (eng_member_get(rt, gid, user, &me) == 0) {
			role = me.role_level;
			int32_t their = eng_member_get(rt, gid, im_str_c(m->sendid), &sender) == 0
					    ? sender.role_level
					    : 20;
			allowed = me.role_level == 100 || (me.role_level == 60 && their < 60);
		}
	}
	if (!allowed) {
		pb_msgdata_free(m);
		api_fail(r, OI_NO_PERMISSION, "no permission to revoke this message");
		return;
	}
	struct eng_user revoker;
	struct im_str nick = IM_STR_LIT("");
	if (eng_user_get(rt, user, &revoker) == 0)
		nick = revoker.nickname;
	struct revoke_state *st = im_calloc(1, sizeof(*st));
	if (st == NULL) {
		pb_msgdata_free(m);
		api_fail_im(r, -ENOMEM, "alloc");
		return;
	}
	r->state = st;
	int64_t now = r->s->now_ms();
	json_t *tips = json_object();
	json_object_set_new(tips, "revokerUserID", json_str(user));
	json_object_set_new(tips, "clientMsgID", json_string(m->clientmsgid));
	json_object_set_new(tips, "revokeTime", json_integer(now));
	json_object_set_new(tips, "sesstionType", json_integer(m->sessiontype));
	json_object_set_new(tips, "seq", json_integer(seq));
	json_object_set_new(tips, "conversationID", json_str(conv));
	json_object_set_new(tips, "isAdminRevoke", json_boolean(r->who.admin));
	struct eng_msg_item item;
	struct im_str peer = IM_STR_LIT("");
	if (m->sessiontype != 3)
		peer = strcmp(m->sendid, r->who.user_id) == 0 || r->who.admin ? im_str_c(m->recvid)
									      : im_str_c(m->sendid);
	char groupz[ENG_ID_MAX + 1];
	snprintf(groupz, sizeof(groupz), "%s", m->groupid);
	char peerz[ENG_ID_MAX + 1];
	snprintf(peerz, sizeof(peerz), "%.*s", (int)peer.n, peer.p);
	int32_t session = m->sessiontype == 3 ? 3 : 1;
	pb_msgdata_free(m);
	int rv = msg_notification(r->s, MSG_NOTIF_STREAM, 2101, session, user, im_str_c(peerz),
				  im_str_c(groupz), tips, r->op_id, &st->nb, &item);
	if (rv != 0) {
		api_fail_im(r, rv, "revoke tip");
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_REVOKE, .now_ms = now, .n_items = 1, .items = &item};
	cmd.m.revoke.conv_id = conv;
	cmd.m.revoke.seq = seq;
	cmd.m.revoke.revoker_id = user;
	cmd.m.revoke.revoker_role = role;
	cmd.m.revoke.revoker_nickname = nick;
	cmd.m.revoke.revoke_time = now;
	api_propose(r, &cmd, revoke_done);
}

/* ---------------------------------------------------------------- delete / clear */

static void delete_done(struct api_req *r, int status, const struct eng_result *res)
{
	im_free(r->state);
	r->state = NULL;
	no_data_done(r, status, res);
}

/* /msg/delete_msgs: hidden for the user only (the default without deleteSyncOpt, §6.10). */
static void delete_msgs(struct api_req *r)
{
	struct im_str user, conv;
	int64_t *seqs = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "userID", &user) || !api_str(r, r->body, "conversationID", &conv))
		return;
	if (!api_require_self_or_admin(r, user) || !read_seqs_arg(r, &seqs, &n))
		return;
	r->state = seqs;
	struct eng_cmd cmd = {.type = ENG_CMD_MSG_HIDE, .now_ms = r->s->now_ms()};
	cmd.m.msg_hide.user_id = user;
	cmd.m.msg_hide.conv_id = conv;
	cmd.m.msg_hide.n_seqs = (uint32_t)n;
	cmd.m.msg_hide.seqs = seqs;
	api_propose(r, &cmd, delete_done);
}

static void clear(struct api_req *r, bool all)
{
	struct im_str user, *convs = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "userID", &user))
		return;
	if (!api_require_self_or_admin(r, user))
		return;
	if (!all && !api_strs(r, r->body, "conversationIDs", &convs, &n))
		return;
	if (!all && n == 0) {
		api_fail(r, OI_ARGS, "conversationIDs is empty");
		return;
	}
	r->state = convs;
	struct eng_cmd cmd = {.type = ENG_CMD_CONV_CLEAR, .now_ms = r->s->now_ms()};
	cmd.m.conv_clear.user_id = user;
	cmd.m.conv_clear.n_convs = (uint32_t)n;
	cmd.m.conv_clear.conv_ids = convs;
	api_propose(r, &cmd, delete_done);
}

static void clear_conversation_msg(struct api_req *r)
{
	clear(r, false);
}

static void user_clear_all_msg(struct api_req *r)
{
	clear(r, true);
}

/* ---------------------------------------------------------------- seq queries (JSON twins) */

struct newest_json {
	struct eng_rtxn *rt;
	struct im_str user;
	json_t *maxs, *mins;
};

static void newest_json_one(struct newest_json *n, struct im_str conv)
{
	struct msg_window win;
	msg_window(n->rt, n->user, conv, &win);
	if (win.max_seq == 0)
		return; /* zero seqs are removed (§3.6) */
	char key[ENG_CONV_ID_MAX + 4];
	snprintf(key, sizeof(key), "%.*s", (int)conv.n, conv.p);
	json_object_set_new(n->maxs, key, json_integer(win.hi));
	json_object_set_new(n->mins, key, json_integer(win.lo));
}

static int newest_json_cb(const struct eng_conv *c, void *arg)
{
	struct newest_json *n = arg;
	newest_json_one(n, c->conversation_id);
	struct im_str cid = c->conversation_id;
	if (cid.n > 3 &&
	    (!memcmp(cid.p, "si_", 3) || !memcmp(cid.p, "sg_", 3) || !memcmp(cid.p, "sn_", 3))) {
		char twin[ENG_CONV_ID_MAX + 4];
		int k = snprintf(twin, sizeof(twin), "n_%.*s", (int)(cid.n - 3), cid.p + 3);
		newest_json_one(n, (struct im_str){twin, (uint32_t)k});
	}
	return 0;
}

/* /msg/newest_seq: the REST twin of WS 1001. */
static void newest_seq_json(struct api_req *r)
{
	struct im_str user;
	if (!api_str(r, r->body, "userID", &user) || !api_require_self_or_admin(r, user))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct newest_json n = {rt, user, json_object(), json_object()};
	eng_conv_scan(rt, user, newest_json_cb, &n);
	char self[2 * ENG_ID_MAX + 4];
	int k =
	    snprintf(self, sizeof(self), "n_%.*s_%.*s", (int)user.n, user.p, (int)user.n, user.p);
	newest_json_one(&n, (struct im_str){self, (uint32_t)k});
	json_t *d = json_object();
	json_object_set_new(d, "maxSeqs", n.maxs);
	json_object_set_new(d, "minSeqs", n.mins);
	api_reply(r, d);
}

struct has_read_iter {
	struct eng_rtxn *rt;
	struct im_str user;
	json_t *map;
};

static void has_read_one(struct has_read_iter *it, struct im_str conv)
{
	struct msg_window win;
	msg_window(it->rt, it->user, conv, &win);
	if (win.max_seq == 0)
		return;
	json_t *o = json_object();
	json_object_set_new(o, "maxSeq", json_integer(win.hi));
	json_object_set_new(o, "hasReadSeq",
			    json_integer(IM_MIN(eng_read_seq(it->rt, it->user, conv), win.hi)));
	json_object_set_new(o, "maxSeqTime", json_integer(win.max_seq_time));
	char key[ENG_CONV_ID_MAX + 1];
	snprintf(key, sizeof(key), "%.*s", (int)conv.n, conv.p);
	json_object_set_new(it->map, key, o);
}

static int has_read_cb(const struct eng_conv *c, void *arg)
{
	has_read_one(arg, c->conversation_id);
	return 0;
}

static void get_conversations_has_read_and_max_seq(struct api_req *r)
{
	struct im_str user, *ids = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "userID", &user) || !api_require_self_or_admin(r, user) ||
	    !api_strs(r, r->body, "conversationIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	struct has_read_iter it = {rt, user, json_object()};
	if (n == 0)
		eng_conv_scan(rt, user, has_read_cb, &it);
	for (size_t i = 0; i < n; i++)
		has_read_one(&it, ids[i]);
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "seqs", it.map);
	json_object_set_new(d, "pinnedConversationIDs", json_null());
	api_reply(r, d);
}

/* ---------------------------------------------------------------- /jssdk */

static bool has(struct im_str hay, const char *needle)
{
	return hay.p != NULL && memmem(hay.p, hay.n, needle, strlen(needle)) != NULL;
}

/* The protobuf request body, or JSON (§3.9); answers 1001 itself on failure. */
static bool jssdk_request(struct api_req *r, const ProtobufCMessageDescriptor *desc,
			  ProtobufCMessage **out, bool *as_pb)
{
	struct im_str ct = http_req_header(r->http, "Content-Type");
	*as_pb = has(ct, "application/protobuf") || has(ct, "application/x-protobuf");
	bool as_json = ct.n == 0 || has(ct, "application/json");
	if (!*as_pb && !as_json) {
		api_fail(r, OI_ARGS, "unsupported content type");
		return false;
	}
	if (*as_pb) {
		if (pb_unpack(desc, (const uint8_t *)r->http->body, r->http->body_len, out) != 0) {
			api_fail(r, OI_ARGS, "protobuf body does not decode");
			return false;
		}
		return true;
	}
	*out = NULL;
	return true;
}

/* Writes conversation.Conversation (§5.3). */
static void w_conv(struct pb_w *w, uint32_t field, const struct eng_conv *c)
{
	size_t m = pb_w_begin(w, field);
	pb_w_str(w, 1, c->owner_user_id);
	pb_w_str(w, 2, c->conversation_id);
	pb_w_int64(w, 3, c->recv_msg_opt);
	pb_w_int64(w, 4, c->conversation_type);
	pb_w_str(w, 5, c->user_id);
	pb_w_str(w, 6, c->group_id);
	pb_w_bool(w, 7, c->is_pinned);
	pb_w_str(w, 8, c->attached_info);
	pb_w_bool(w, 9, c->is_private_chat);
	pb_w_int64(w, 10, c->group_at_type);
	pb_w_str(w, 11, c->ex);
	pb_w_int64(w, 12, c->burn_duration);
	pb_w_int64(w, 13, c->min_seq);
	pb_w_int64(w, 14, c->max_seq);
	pb_w_int64(w, 15, c->msg_destruct_time);
	pb_w_int64(w, 16, c->latest_msg_destruct_time);
	pb_w_bool(w, 17, c->is_msg_destruct);
	pb_w_end(w, m);
}

static void w_user(struct pb_w *w, uint32_t field, const struct eng_user *u)
{
	size_t m = pb_w_begin(w, field);
	pb_w_str(w, 1, u->user_id);
	pb_w_str(w, 2, u->nickname);
	pb_w_str(w, 3, u->face_url);
	pb_w_str(w, 4, u->ex);
	pb_w_int64(w, 5, u->create_time);
	pb_w_int64(w, 6, u->app_manger_level);
	pb_w_int64(w, 7, u->global_recv_msg_opt);
	pb_w_end(w, m);
}

static void w_group(struct pb_w *w, uint32_t field, const struct eng_group *g)
{
	size_t m = pb_w_begin(w, field);
	pb_w_str(w, 1, g->group_id);
	pb_w_str(w, 2, g->group_name);
	pb_w_str(w, 3, g->notification);
	pb_w_str(w, 4, g->introduction);
	pb_w_str(w, 5, g->face_url);
	pb_w_str(w, 6, g->owner_user_id);
	pb_w_int64(w, 7, g->create_time);
	pb_w_uint64(w, 8, g->member_count);
	pb_w_str(w, 9, g->ex);
	pb_w_int64(w, 10, g->status);
	pb_w_str(w, 11, g->creator_user_id);
	pb_w_int64(w, 12, g->group_type);
	pb_w_int64(w, 13, g->need_verification);
	pb_w_int64(w, 14, g->look_member_info);
	pb_w_int64(w, 15, g->apply_member_friend);
	pb_w_int64(w, 16, g->notification_update_time);
	pb_w_str(w, 17, g->notification_user_id);
	pb_w_end(w, m);
}

/* One active conversation of the user, with what sorting needs. */
struct active {
	char conv[ENG_CONV_ID_MAX + 1];
	bool pinned;
	int64_t time, max_seq, read_seq, last_seq;
};

struct active_scan {
	struct eng_rtxn *rt;
	struct im_str user;
	struct active *list;
	size_t n, cap;
	int64_t unread;
	/* When ids are given, only those (jssdk/get_conversations). */
	const struct im_str *ids;
	size_t n_ids;
};

/* The newest seq the user can see in conv (hidden ones skipped), or 0. */
static int64_t last_visible(struct eng_rtxn *rt, struct im_str user, struct im_str conv,
			    const struct msg_window *win)
{
	for (int64_t seq = win->hi, tries = 0; seq >= win->lo && tries < 200; seq--, tries++) {
		struct im_str data;
		if (!eng_msg_hidden(rt, user, conv, seq) &&
		    eng_msg_get(rt, conv, seq, &data, NULL, NULL) == 0)
			return seq;
	}
	return 0;
}

static int active_cb(const struct eng_conv *c, void *arg)
{
	struct active_scan *a = arg;
	if (a->ids) {
		bool wanted = false;
		for (size_t i = 0; i < a->n_ids && !wanted; i++)
			wanted = im_str_eq(a->ids[i], c->conversation_id);
		if (!wanted)
			return 0;
	}
	struct msg_window win;
	msg_window(a->rt, a->user, c->conversation_id, &win);
	if (win.max_seq == 0)
		return 0;
	int64_t read = IM_MIN(eng_read_seq(a->rt, a->user, c->conversation_id), win.hi);
	a->unread += IM_MAX(0, win.hi - read);
	int64_t last = last_visible(a->rt, a->user, c->conversation_id, &win);
	if (last == 0)
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct active *l = im_realloc(a->list, cap * sizeof(*l));
		if (l == NULL)
			return -ENOMEM;
		a->list = l;
		a->cap = cap;
	}
	struct active *x = &a->list[a->n++];
	snprintf(x->conv, sizeof(x->conv), "%.*s", (int)c->conversation_id.n, c->conversation_id.p);
	x->pinned = c->is_pinned;
	x->time = win.max_seq_time;
	x->max_seq = win.hi;
	x->read_seq = read;
	x->last_seq = last;
	return 0;
}

static int active_cmp(const void *pa, const void *pb)
{
	const struct active *a = pa, *b = pb;
	if (a->pinned != b->pinned)
		return a->pinned ? -1 : 1;
	return a->time > b->time ? -1 : a->time < b->time ? 1 : strcmp(a->conv, b->conv);
}

/* Writes jssdk.GetActiveConversationsResp / GetConversationsResp (same shape). */
static void jssdk_answer(struct api_req *r, struct active_scan *a, size_t count, bool as_pb)
{
	struct im_buf out = {0};
	struct pb_w w;
	pb_w_init(&w, &out);
	pb_w_int64(&w, 1, a->unread);
	for (size_t i = 0; i < a->n && i < count; i++) {
		struct active *x = &a->list[i];
		struct im_str conv = im_str_c(x->conv);
		struct eng_conv c;
		if (eng_conv_get(a->rt, a->user, conv, &c) != 0)
			continue;
		size_t m = pb_w_begin(&w, 2);
		w_conv(&w, 1, &c);
		msg_add_view(&w, 2, a->rt, a->user, conv, x->last_seq);
		struct eng_user u;
		struct eng_group g;
		if (c.conversation_type != 3 && c.user_id.n &&
		    eng_user_get(a->rt, c.user_id, &u) == 0)
			w_user(&w, 3, &u);
		if (c.conversation_type == 3 && eng_group_get(a->rt, c.group_id, &g) == 0)
			w_group(&w, 5, &g);
		pb_w_int64(&w, 6, x->max_seq);
		pb_w_int64(&w, 7, x->read_seq);
		pb_w_end(&w, m);
	}
	int rv = pb_w_done(&w);
	if (rv != 0) {
		im_buf_free(&out);
		api_fail_im(r, rv, "encode");
		return;
	}
	if (as_pb) {
		struct im_buf b64 = {0};
		rv = pb_base64_std_encode(out.p, out.len, &b64);
		im_buf_free(&out);
		if (rv != 0) {
			api_fail_im(r, rv, "encode");
			return;
		}
		api_reply(r, json_stringn(b64.p ? b64.p : "", b64.len));
		im_buf_free(&b64);
		return;
	}
	/* JSON callers get the same message decoded into Go-style JSON. */
	im_buf_free(&out);
	api_fail(r, OI_ARGS, "use Content-Type application/x-protobuf for /jssdk");
}

static void get_active_conversations(struct api_req *r)
{
	ProtobufCMessage *q = NULL;
	bool as_pb;
	if (!jssdk_request(r, &openim__jssdk__get_active_conversations_req__descriptor, &q, &as_pb))
		return;
	int64_t count = 0;
	if (q)
		count = ((Openim__Jssdk__GetActiveConversationsReq *)q)->count;
	else
		api_i64(r, r->body, "count", &count, NULL); /* JSON: best effort */
	if (q)
		pb_free(q);
	if (count <= 0 || count > 500)
		count = 100;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	/* The server uses the token's user, whatever ownerUserID says (§3.9). */
	struct active_scan a = {.rt = rt, .user = im_str_c(r->who.user_id)};
	if (eng_conv_scan(rt, a.user, active_cb, &a) != 0) {
		im_free(a.list);
		api_fail(r, OI_SERVER_INTERNAL, "scan conversations");
		return;
	}
	if (a.n > 1) /* a.list is NULL when empty: qsort(NULL, 0) is UB (UBSan aborts) */
		qsort(a.list, a.n, sizeof(*a.list), active_cmp);
	jssdk_answer(r, &a, (size_t)count, as_pb);
	im_free(a.list);
}

static void jssdk_get_conversations(struct api_req *r)
{
	ProtobufCMessage *q = NULL;
	bool as_pb;
	if (!jssdk_request(r, &openim__jssdk__get_conversations_req__descriptor, &q, &as_pb))
		return;
	struct im_str *ids = NULL;
	size_t n = 0;
	if (q) {
		Openim__Jssdk__GetConversationsReq *g = (Openim__Jssdk__GetConversationsReq *)q;
		n = g->n_conversationids;
		ids = n ? im_calloc(n, sizeof(*ids)) : NULL;
		for (size_t i = 0; ids && i < n; i++)
			ids[i] = im_str_c(g->conversationids[i]);
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		if (q)
			pb_free(q);
		return;
	}
	struct active_scan a = {.rt = rt, .user = im_str_c(r->who.user_id), .ids = ids, .n_ids = n};
	if (n > 0)
		eng_conv_scan(rt, a.user, active_cb, &a);
	/* unreadCount covers the listed conversations only. */
	if (a.n > 1) /* a.list is NULL when empty: qsort(NULL, 0) is UB (UBSan aborts) */
		qsort(a.list, a.n, sizeof(*a.list), active_cmp);
	jssdk_answer(r, &a, SIZE_MAX, as_pb);
	im_free(a.list);
	im_free(ids);
	if (q)
		pb_free(q);
}

/* ---------------------------------------------------------------- batch_send_msg */

/* Sends one copy per recipient, one after the other (each answer starts the next). */
struct batch {
	struct api_req *r;
	json_t *recv_ids; /* array of strings still to send to */
	size_t next;
	json_t *results;
	json_t *failed;
	/* The message template. */
	char send_id[ENG_ID_MAX + 1];
	char nick[256], face[1024], ex[1024];
	char *content;
	int32_t content_type, platform;
	bool online_only, not_offline_push;
};

static void batch_next(struct batch *b);

static void batch_cb(void *arg, int code, const char *detail, const char *server_msg_id,
		     const char *client_msg_id, int64_t send_time)
{
	struct batch *b = arg;
	json_t *rid = json_array_get(b->recv_ids, b->next - 1);
	if (code != 0) {
		json_array_append(b->failed, rid);
	} else {
		json_t *o = json_object();
		json_object_set_new(o, "serverMsgID", json_string(server_msg_id));
		json_object_set_new(o, "clientMsgID", json_string(client_msg_id));
		json_object_set_new(o, "sendTime", json_integer(send_time));
		json_object_set(o, "recvID", rid);
		json_array_append_new(b->results, o);
	}
	IM_UNUSED(detail);
	batch_next(b);
}

static void batch_next(struct batch *b)
{
	if (b->next == json_array_size(b->recv_ids)) {
		json_t *d = json_object();
		json_object_set_new(d, "results", api_null_if_empty(b->results));
		json_object_set_new(d, "failedUserIDs", api_null_if_empty(b->failed));
		struct api_req *r = b->r;
		json_decref(b->recv_ids);
		free(b->content);
		im_free(b);
		api_reply(r, d);
		return;
	}
	const char *recv = json_string_value(json_array_get(b->recv_ids, b->next++));
	Openim__Sdkws__MsgData *m = pb_msgdata_new();
	int rv = m ? 0 : -ENOMEM;
	if (rv == 0 && b->online_only) {
		static const char *const off[] = {PB_OPT_HISTORY, PB_OPT_PERSISTENT,
						  PB_OPT_SENDER_SYNC, PB_OPT_CONVERSATION_UPDATE};
		for (size_t i = 0; rv == 0 && i < IM_ARRAY_LEN(off); i++)
			rv = pb_opt_set(m, off[i], false);
	}
	if (rv == 0 && b->not_offline_push)
		rv = pb_opt_set(m, PB_OPT_OFFLINE_PUSH, false);
	if (rv != 0 || recv == NULL) {
		if (m)
			pb_msgdata_free(m);
		batch_cb(b, OI_SERVER_INTERNAL, "build", "", "", 0);
		return;
	}
	/* A fresh clientMsgID per recipient: OpenIM reuses one, which our dedup would merge. */
	m->sendid = b->send_id;
	m->recvid = (char *)recv;
	m->groupid = "";
	m->clientmsgid = "";
	m->servermsgid = "";
	m->sendernickname = b->nick;
	m->senderfaceurl = b->face;
	m->senderplatformid = b->platform;
	m->sessiontype = 1;
	m->msgfrom = 200;
	m->contenttype = b->content_type;
	m->content.data = (uint8_t *)b->content;
	m->content.len = strlen(b->content);
	m->createtime = b->r->s->now_ms();
	m->ex = b->ex;
	msg_send(b->r->s, m, b->r->op_id, true, batch_cb, b);
	m->sendid = m->recvid = m->groupid = m->clientmsgid = m->servermsgid = NULL;
	m->sendernickname = m->senderfaceurl = m->ex = NULL;
	m->content.data = NULL;
	m->content.len = 0;
	pb_msgdata_free(m);
}

static int all_user_ids(const struct eng_user *u, void *arg)
{
	json_array_append_new(arg, json_str(u->user_id));
	return 0;
}

/* /msg/batch_send_msg (admin, §3.6.1): the same message to recvIDs, or to every user. */
static void batch_send_msg(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct im_str send, nick, face, ex;
	int32_t ct = 0, platform = 0;
	bool all = false, online_only = false, not_offline_push = false;
	json_t *content = NULL, *recv_ids = NULL;
	struct json_err e;
	if (!api_str(r, r->body, "sendID", &send) ||
	    !api_str(r, r->body, "senderNickname", &nick) ||
	    !api_str(r, r->body, "senderFaceURL", &face) || !api_str(r, r->body, "ex", &ex) ||
	    !api_i32(r, r->body, "contentType", &ct, NULL) ||
	    !api_i32(r, r->body, "senderPlatformID", &platform, NULL) ||
	    !api_bool(r, r->body, "isSendAll", &all, NULL) ||
	    !api_bool(r, r->body, "isOnlineOnly", &online_only, NULL) ||
	    !api_bool(r, r->body, "notOfflinePush", &not_offline_push, NULL))
		return;
	if (json_get_obj(r->body, "content", &content, &e) != 0 || content == NULL ||
	    json_get_array(r->body, "recvIDs", &recv_ids, &e) != 0 || send.n == 0 ||
	    send.n > ENG_ID_MAX || !content_type_ok(ct)) {
		api_fail(r, OI_ARGS, "sendID, content and a valid contentType are required");
		return;
	}
	struct batch *b = im_calloc(1, sizeof(*b));
	if (b == NULL) {
		api_fail_im(r, -ENOMEM, "alloc");
		return;
	}
	b->r = r;
	b->recv_ids = json_array();
	if (all) {
		struct eng_rtxn *rt = api_read(r);
		if (rt == NULL) {
			json_decref(b->recv_ids);
			im_free(b);
			return;
		}
		eng_user_scan(rt, 0, 0, all_user_ids, b->recv_ids);
		eng_read_end(rt);
		r->rt = NULL;
	} else {
		for (size_t i = 0; recv_ids && i < json_array_size(recv_ids); i++)
			if (json_is_string(json_array_get(recv_ids, i)))
				json_array_append(b->recv_ids, json_array_get(recv_ids, i));
	}
	b->results = json_array();
	b->failed = json_array();
	snprintf(b->send_id, sizeof(b->send_id), "%.*s", (int)send.n, send.p);
	snprintf(b->nick, sizeof(b->nick), "%.*s", (int)IM_MIN(nick.n, 255u), nick.p);
	snprintf(b->face, sizeof(b->face), "%.*s", (int)IM_MIN(face.n, 1023u), face.p);
	snprintf(b->ex, sizeof(b->ex), "%.*s", (int)IM_MIN(ex.n, 1023u), ex.p);
	b->content = json_dumps(content, JSON_COMPACT | JSON_SORT_KEYS);
	b->content_type = ct;
	b->platform = platform;
	b->online_only = online_only;
	b->not_offline_push = not_offline_push;
	if (r->rt) { /* the token check's read txn: msg_send opens its own (one per thread) */
		eng_read_end(r->rt);
		r->rt = NULL;
	}
	batch_next(b);
}

static void check_msg_is_send_success(struct api_req *r)
{
	/* Every acknowledged message is stored: there is no "sending" state to report. */
	json_t *d = json_object();
	json_object_set_new(d, "status", json_integer(2));
	api_reply(r, d);
}

/* /conversation/get_sorted_conversation_list (§3.5): pinned first, then newest message first. */
static void get_sorted_conversation_list(struct api_req *r)
{
	struct im_str user, *ids = NULL;
	size_t n = 0;
	uint64_t offset, limit;
	if (!api_str(r, r->body, "userID", &user) || !api_require_self_or_admin(r, user) ||
	    !api_pagination(r, r->body, &offset, &limit) ||
	    !api_strs(r, r->body, "conversationIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	struct active_scan a = {.rt = rt, .user = user, .ids = n ? ids : NULL, .n_ids = n};
	if (eng_conv_scan(rt, user, active_cb, &a) != 0) {
		im_free(a.list);
		im_free(ids);
		api_fail(r, OI_SERVER_INTERNAL, "scan conversations");
		return;
	}
	if (a.n > 1)
		qsort(a.list, a.n, sizeof(*a.list), active_cmp);
	json_t *elems = json_array();
	for (size_t i = offset; i < a.n && (limit == 0 || i < offset + limit); i++) {
		struct active *x = &a.list[i];
		struct im_str conv = im_str_c(x->conv);
		struct eng_conv c;
		if (eng_conv_get(rt, user, conv, &c) != 0)
			continue;
		struct im_buf view = {0};
		struct pb_w w;
		pb_w_init(&w, &view);
		msg_add_view(&w, 1, rt, user, conv, x->last_seq);
		Openim__Sdkws__MsgData *m = NULL;
		/* The view is framed as field 1: skip its tag and length to unpack the message. */
		size_t hdr = 1;
		while (hdr < view.len && (view.p[hdr] & 0x80))
			hdr++;
		hdr++;
		if (pb_w_done(&w) != 0 || hdr > view.len ||
		    pb_msgdata_unpack((const uint8_t *)view.p + hdr, view.len - hdr, &m) != 0) {
			im_buf_free(&view);
			continue;
		}
		im_buf_free(&view);
		struct eng_group g = {0};
		bool group = c.conversation_type == 3 && eng_group_get(rt, c.group_id, &g) == 0;
		json_t *mi = json_object();
		json_object_set_new(mi, "serverMsgID", json_string(m->servermsgid));
		json_object_set_new(mi, "clientMsgID", json_string(m->clientmsgid));
		json_object_set_new(mi, "sessionType", json_integer(m->sessiontype));
		json_object_set_new(mi, "sendID", json_string(m->sendid));
		json_object_set_new(mi, "recvID", json_string(m->recvid));
		json_object_set_new(mi, "senderName", json_string(m->sendernickname));
		json_object_set_new(mi, "faceURL", json_string(m->senderfaceurl));
		json_object_set_new(mi, "groupID", json_string(m->groupid));
		json_object_set_new(mi, "groupName", json_str(g.group_name));
		json_object_set_new(mi, "groupFaceURL", json_str(g.face_url));
		json_object_set_new(mi, "groupType", json_integer(g.group_type));
		json_object_set_new(mi, "groupMemberCount",
				    json_integer(group ? g.member_count : 0));
		json_object_set_new(mi, "LatestMsgRecvTime", json_integer(m->sendtime));
		json_object_set_new(mi, "msgFrom", json_integer(m->msgfrom));
		json_object_set_new(mi, "contentType", json_integer(m->contenttype));
		json_object_set_new(mi, "content",
				    json_str((struct im_str){(const char *)m->content.data,
							     (uint32_t)m->content.len}));
		json_object_set_new(mi, "ex", json_string(m->ex));
		pb_msgdata_free(m);
		json_t *e = json_object();
		json_object_set_new(e, "conversationID", json_str(conv));
		json_object_set_new(e, "recvMsgOpt", json_integer(c.recv_msg_opt));
		json_object_set_new(e, "unreadCount",
				    json_integer(IM_MAX(0, x->max_seq - x->read_seq)));
		json_object_set_new(e, "IsPinned", json_boolean(c.is_pinned));
		json_object_set_new(e, "msgInfo", mi);
		json_array_append_new(elems, e);
	}
	json_t *d = json_object();
	json_object_set_new(d, "conversationTotal", json_integer((json_int_t)a.n));
	json_object_set_new(d, "unreadTotal", json_integer(a.unread));
	json_object_set_new(d, "conversationElems", api_null_if_empty(elems));
	im_free(a.list);
	im_free(ids);
	api_reply(r, d);
}

const struct api_route api_routes_msg[] = {
    {"/msg/send_msg", send_msg, 0},
    {"/msg/get_server_time", get_server_time, 0},
    {"/msg/pull_msg_by_seq", pull_msg_by_seq, 0},
    {"/msg/send_business_notification", send_business_notification, 0},
    {"/msg/batch_send_msg", batch_send_msg, 0},
    {"/msg/check_msg_is_send_success", check_msg_is_send_success, 0},
    {"/msg/mark_conversation_as_read", mark_conversation_as_read, 0},
    {"/msg/mark_msgs_as_read", mark_msgs_as_read, 0},
    {"/msg/set_conversation_has_read_seq", set_conversation_has_read_seq, 0},
    {"/msg/revoke_msg", revoke_msg, 0},
    {"/msg/delete_msgs", delete_msgs, 0},
    {"/msg/clear_conversation_msg", clear_conversation_msg, 0},
    {"/msg/user_clear_all_msg", user_clear_all_msg, 0},
    {"/msg/newest_seq", newest_seq_json, 0},
    {"/msg/get_conversations_has_read_and_max_seq", get_conversations_has_read_and_max_seq, 0},
    {"/conversation/get_sorted_conversation_list", get_sorted_conversation_list, 0},
    {"/jssdk/get_active_conversations", get_active_conversations, API_RAW_BODY},
    {"/jssdk/get_conversations", jssdk_get_conversations, API_RAW_BODY},
    {NULL, NULL, 0},
};
