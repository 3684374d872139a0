/* msg.c - messaging on the WebSocket path: send, pulls, last messages, read seqs, and pushes.
 *
 * Invariants:
 *  1. A send is answered only after its entry is applied (so an answer is
 *     durable), and before the push of the same message: answers run in the
 *     proposers' callbacks, pushes in msg_on_event(), which the Raft glue
 *     calls after them (cluster.h).
 *  2. A retried send (same sendID and clientMsgID) is stored once and answered
 *     with the original serverMsgID and sendTime: checked here for a fast
 *     answer and again at apply, which is the authority (promise 3).
 *  3. Reads are clamped to the reader's window (§6.5) and never reveal a
 *     conversation the reader has no row in (non-n_), nor a notification
 *     stream the reader is not part of.
 */
#include "msg.h"

#include <errno.h>
#include <stdio.h>

#include <mbedtls/md5.h>

#define CT_REVOKE_NOTIFICATION 2101
#define CT_HAS_READ_RECEIPT    2200
#define CT_TYPING	       113
#define CT_REVOKE_LEGACY       111
#define STATUS_SUCCESS	       2
#define STATUS_FILTERED	       4

/* ---------------------------------------------------------------- ids */

int msg_conv_id(int32_t session_type, struct im_str send_id, struct im_str recv_id,
		struct im_str group_id, bool notification, char *out, size_t n)
{
	int len;
	if (session_type == 3) {
		len = snprintf(out, n, "%s%.*s", notification ? "n_" : "sg_", (int)group_id.n,
			       group_id.p);
	} else if (session_type == 1 || session_type == 4) {
		/* The pair sorted by bytes (§6.1). */
		struct im_str a = send_id, b = recv_id;
		int c = memcmp(a.p, b.p, IM_MIN(a.n, b.n));
		if (c > 0 || (c == 0 && a.n > b.n)) {
			a = recv_id;
			b = send_id;
		}
		const char *pfx = notification ? "n_" : session_type == 1 ? "si_" : "sn_";
		len = snprintf(out, n, "%s%.*s_%.*s", pfx, (int)a.n, a.p, (int)b.n, b.p);
	} else {
		return IM_EINVAL;
	}
	return len > 0 && (size_t)len < n && (size_t)len <= ENG_CONV_ID_MAX ? 0 : IM_EINVAL;
}

/*
 * serverMsgID: MD5 hex of time, sender and a per-process random key with a
 * counter, so ids never repeat and no message costs a getrandom() call.
 */
static void new_server_msg_id(struct im_str send_id, int64_t now, char out[33])
{
	static unsigned char key[8];
	static uint64_t counter;
	if (counter == 0 && im_random(key, sizeof(key)) != 0)
		memcpy(key, &now, sizeof(key)); /* no kernel randomness: still unique per process */
	unsigned char rnd[16], digest[16];
	memcpy(rnd, key, sizeof(key));
	im_put_be64(rnd + 8, ++counter);
	char buf[300];
	int n = snprintf(buf, sizeof(buf), "%lld-%.*s-", (long long)now, (int)send_id.n, send_id.p);
	mbedtls_md5_context ctx;
	mbedtls_md5_init(&ctx);
	mbedtls_md5_starts_ret(&ctx);
	mbedtls_md5_update_ret(&ctx, (unsigned char *)buf, (size_t)n);
	mbedtls_md5_update_ret(&ctx, rnd, sizeof(rnd));
	mbedtls_md5_finish_ret(&ctx, digest);
	mbedtls_md5_free(&ctx);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* ---------------------------------------------------------------- send */

struct send_op {
	struct srv *s;
	struct clu_req creq;
	struct im_buf cmd;
	struct im_buf data;
	msg_send_cb cb;
	void *arg;
	char server_msg_id[33];
	char client_msg_id[129];
	int64_t send_time;
};

static void send_done(struct clu_req *creq, int status, const struct eng_result *res)
{
	struct send_op *op = creq->data;
	if (status != 0) {
		op->cb(op->arg, status == IM_EREADONLY ? OI_DATABASE : OI_SERVER_INTERNAL,
		       im_strerror(status), "", op->client_msg_id, 0);
	} else if (res->code == IM_EPERM) {
		op->cb(op->arg, OI_NOT_IN_GROUP, res->detail, "", op->client_msg_id, 0);
	} else if (res->code != 0) {
		op->cb(op->arg, OI_ARGS, res->detail, "", op->client_msg_id, 0);
	} else if (res->n_msgs == 1 && res->msgs[0].dup) {
		op->cb(op->arg, 0, "", res->msgs[0].server_msg_id, op->client_msg_id,
		       res->msgs[0].send_time);
	} else {
		op->cb(op->arg, 0, "", op->server_msg_id, op->client_msg_id, op->send_time);
	}
	im_buf_free(&op->cmd);
	im_buf_free(&op->data);
	im_free(op);
}

/* Verification of §6.6 step 3.  Returns 0, an OpenIM code, or -1 for "drop silently". */
static int verify(struct srv *s, struct eng_rtxn *rt, const Openim__Sdkws__MsgData *m, bool admin,
		  int64_t now, char *detail, size_t dn, bool *no_push)
{
	struct im_str send = im_str_c(m->sendid), recv = im_str_c(m->recvid);
	struct im_str gid = im_str_c(m->groupid);
	switch (m->sessiontype) {
	case 1: {
		struct eng_user u;
		if (eng_user_get(rt, recv, &u) != 0) {
			snprintf(detail, dn, "recvID %s not found", m->recvid);
			return OI_USER_NOT_FOUND;
		}
		if (admin || (m->contenttype >= 1000 && m->contenttype <= 5000))
			return 0;
		/* The receiver blocks the sender: 1302; friendVerify: 1303 (§6.6 step 3, §8.1). */
		struct eng_black b;
		if (eng_black_get(rt, recv, send, &b) == 0) {
			snprintf(detail, dn, "%s is in the blacklist of %s", m->sendid, m->recvid);
			return OI_BLOCKED_BY_PEER;
		}
		struct eng_friend f;
		if (s->cfg->friend_verify && eng_friend_get(rt, send, recv, &f) != 0) {
			snprintf(detail, dn, "%s is not a friend of %s", m->recvid, m->sendid);
			return OI_NOT_PEERS_FRIEND;
		}
		if (u.global_recv_msg_opt == 1)
			return -1;
		char cid[ENG_CONV_ID_MAX + 1];
		struct eng_conv c;
		if (msg_conv_id(1, send, recv, gid, false, cid, sizeof(cid)) == 0 &&
		    eng_conv_get(rt, recv, im_str_c(cid), &c) == 0) {
			if (c.recv_msg_opt == 1 && m->contenttype != CT_HAS_READ_RECEIPT)
				return -1;
			*no_push = c.recv_msg_opt == 2;
		}
		*no_push = *no_push || u.global_recv_msg_opt == 2;
		return 0;
	}
	case 3: {
		struct eng_group g;
		struct eng_member mem;
		if (eng_group_get(rt, gid, &g) != 0) {
			snprintf(detail, dn, "group %s not found", m->groupid);
			return OI_GROUP_NOT_FOUND;
		}
		if (g.status == 2 && m->contenttype != 1511) {
			snprintf(detail, dn, "group %s dismissed", m->groupid);
			return OI_DISMISSED;
		}
		if (admin || (m->contenttype >= 1000 && m->contenttype <= 5000))
			return 0;
		if (eng_member_get(rt, gid, send, &mem) != 0) {
			snprintf(detail, dn, "%s is not in group %s", m->sendid, m->groupid);
			return OI_NOT_IN_GROUP;
		}
		if (mem.role_level == 100)
			return 0;
		if (mem.mute_end_time >= now) {
			snprintf(detail, dn, "muted in group until %lld",
				 (long long)mem.mute_end_time);
			return OI_MUTED_IN_GROUP;
		}
		if (g.status == 3 && mem.role_level < 60) {
			snprintf(detail, dn, "group %s is muted", m->groupid);
			return OI_MUTED_GROUP;
		}
		return 0;
	}
	case 4:
		return 0;
	default:
		snprintf(detail, dn, "unknown sessionType %d", m->sessiontype);
		return OI_ARGS;
	}
}

/* Option overrides by contentType before storing (§6.4). */
static int override_options(Openim__Sdkws__MsgData *m)
{
	static const char *const typing[] = {PB_OPT_HISTORY,
					     PB_OPT_PERSISTENT,
					     PB_OPT_SENDER_SYNC,
					     PB_OPT_CONVERSATION_UPDATE,
					     PB_OPT_SENDER_CONVERSATION_UPDATE,
					     PB_OPT_UNREAD_COUNT,
					     PB_OPT_OFFLINE_PUSH};
	static const char *const receipt[] = {PB_OPT_CONVERSATION_UPDATE,
					      PB_OPT_SENDER_CONVERSATION_UPDATE,
					      PB_OPT_UNREAD_COUNT, PB_OPT_OFFLINE_PUSH};
	static const char *const revoke[] = {PB_OPT_UNREAD_COUNT, PB_OPT_OFFLINE_PUSH};
	const char *const *keys = NULL;
	size_t n = 0;
	if (m->contenttype == CT_TYPING) {
		keys = typing;
		n = IM_ARRAY_LEN(typing);
	} else if (m->contenttype == CT_HAS_READ_RECEIPT) {
		keys = receipt;
		n = IM_ARRAY_LEN(receipt);
	} else if (m->contenttype == CT_REVOKE_LEGACY) {
		keys = revoke;
		n = IM_ARRAY_LEN(revoke);
	}
	for (size_t i = 0; i < n; i++) {
		int rv = pb_opt_set(m, keys[i], false);
		if (rv != 0)
			return rv;
	}
	return 0;
}

void msg_send(struct srv *s, Openim__Sdkws__MsgData *m, const char *op_id, bool admin,
	      msg_send_cb cb, void *arg)
{
	char detail[200] = "";
	int64_t now = s->now_ms();
	struct im_str send = im_str_c(m->sendid), cmid = im_str_c(m->clientmsgid);
	if (m->sessiontype != 1 && m->sessiontype != 3 && m->sessiontype != 4) {
		cb(arg, OI_ARGS, "unknown sessionType", "", m->clientmsgid, 0);
		return;
	}
	if (send.n == 0 || send.n > ENG_ID_MAX || cmid.n > 128 || strlen(m->recvid) > ENG_ID_MAX ||
	    strlen(m->groupid) > ENG_ID_MAX) {
		cb(arg, OI_ARGS, "sendID, recvID, groupID or clientMsgID invalid", "",
		   m->clientmsgid, 0);
		return;
	}
	struct eng_rtxn *rt;
	if (eng_read_begin(s->eng, &rt) != 0) {
		cb(arg, OI_SERVER_INTERNAL, "read", "", m->clientmsgid, 0);
		return;
	}
	/* A retry of an acknowledged send: the original answer, nothing proposed. */
	struct im_str dconv, dsmid;
	int64_t dseq, dtime;
	if (cmid.n && eng_msg_dedup(rt, send, cmid, &dconv, &dseq, &dsmid, &dtime) == 0) {
		char smid[65];
		snprintf(smid, sizeof(smid), "%.*s", (int)IM_MIN(dsmid.n, 64u), dsmid.p);
		eng_read_end(rt);
		cb(arg, 0, "", smid, m->clientmsgid, dtime);
		return;
	}
	bool no_push = false;
	int code = verify(s, rt, m, admin, now, detail, sizeof(detail), &no_push);
	eng_read_end(rt);
	if (code == -1) {
		/* Receive option "do not receive": dropped, answered with empty ids (§6.6). */
		cb(arg, 0, "", "", m->clientmsgid, 0);
		return;
	}
	if (code != 0) {
		cb(arg, code, detail, "", m->clientmsgid, 0);
		return;
	}
	struct send_op *op = im_calloc(1, sizeof(*op));
	if (op == NULL) {
		cb(arg, OI_SERVER_INTERNAL, "out of memory", "", m->clientmsgid, 0);
		return;
	}
	op->s = s;
	op->cb = cb;
	op->arg = arg;
	if (cmid.n == 0)
		new_server_msg_id(send, now + 1, op->client_msg_id);
	else
		snprintf(op->client_msg_id, sizeof(op->client_msg_id), "%s", m->clientmsgid);
	new_server_msg_id(send, now, op->server_msg_id);
	/* Encapsulate (§6.6 step 2): ids, time, status, options. */
	m->servermsgid = op->server_msg_id;
	m->clientmsgid = op->client_msg_id;
	if (m->sendtime == 0)
		m->sendtime = now;
	op->send_time = m->sendtime;
	m->status = STATUS_SUCCESS;
	m->seq = 0;
	int rv = override_options(m);
	if (rv == 0 && no_push)
		rv = pb_opt_set(m, PB_OPT_OFFLINE_PUSH, false);
	if (rv == 0)
		rv = pb_pack(&m->base, &op->data);
	char conv[ENG_CONV_ID_MAX + 1];
	bool notif = !pb_opt(m, PB_OPT_IS_NOT_NOTIFICATION);
	if (rv == 0)
		rv = msg_conv_id(m->sessiontype, send, im_str_c(m->recvid), im_str_c(m->groupid),
				 notif, conv, sizeof(conv));
	if (rv != 0 || op->data.len > ENG_MSG_MAX) {
		cb(arg, OI_ARGS, "message too large or invalid", "", op->client_msg_id, 0);
		goto err;
	}
	bool store = pb_opt(m, PB_OPT_HISTORY);
	struct eng_msg_item item = {
	    .conv_id = im_str_c(conv),
	    .send_id = send,
	    .recv_id = m->sessiontype == 3 ? IM_STR_LIT("") : im_str_c(m->recvid),
	    .group_id = im_str_c(m->groupid),
	    .client_msg_id = im_str_c(op->client_msg_id),
	    .server_msg_id = im_str_c(op->server_msg_id),
	    .op_id = im_str_c(op_id),
	    .session_type = m->sessiontype,
	    .content_type = m->contenttype,
	    .send_time = m->sendtime,
	    .flags = (store ? ENG_MSG_STORE : 0) |
		     (pb_opt(m, PB_OPT_SENDER_SYNC) ? ENG_MSG_SENDER_SYNC : 0) |
		     (notif ? ENG_MSG_NOTIFICATION : 0) |
		     (m->sessiontype == 3 && !admin ? ENG_MSG_CHECK_MEMBER : 0) |
		     (store && !notif ? ENG_MSG_SENDER_READ : 0),
	    .data = {op->data.p, (uint32_t)op->data.len},
	};
	if (item.op_id.n > 128)
		item.op_id.n = 128;
	struct eng_cmd cmd = {
	    .type = ENG_CMD_MSG_SEND, .now_ms = now, .n_items = 1, .items = &item};
	rv = eng_cmd_encode(&cmd, &op->cmd);
	if (rv == 0) {
		op->creq.data = op;
		rv = s->propose(s, &op->creq, op->cmd.p, op->cmd.len, send_done);
	}
	if (rv != 0) {
		cb(arg, rv == IM_EREADONLY ? OI_DATABASE : OI_SERVER_INTERNAL, im_strerror(rv), "",
		   op->client_msg_id, 0);
		goto err;
	}
	return;
err:
	im_buf_free(&op->cmd);
	im_buf_free(&op->data);
	im_free(op);
}

/* ---------------------------------------------------------------- WS 1003 */

static void ws_send_cb(void *arg, int code, const char *detail, const char *server_msg_id,
		       const char *client_msg_id, int64_t send_time)
{
	struct gw_req *req = arg;
	if (code != 0) {
		IM_INFO("op=%s user=%s send -> %d %s", req->op_id, req->user_id, code, detail);
		gw_reply(req, code, api_code_name(code), NULL, 0);
		return;
	}
	Openim__Msg__SendMsgResp resp = OPENIM__MSG__SEND_MSG_RESP__INIT;
	resp.servermsgid = (char *)server_msg_id;
	resp.clientmsgid = (char *)client_msg_id;
	resp.sendtime = send_time;
	struct im_buf out = {0};
	if (pb_pack(&resp.base, &out) != 0) {
		gw_reply(req, OI_SERVER_INTERNAL, api_code_name(OI_SERVER_INTERNAL), NULL, 0);
	} else {
		gw_reply(req, 0, "", out.p ? out.p : "", out.len);
	}
	im_buf_free(&out);
}

static void ws_send(struct srv *s, struct gw_req *req)
{
	Openim__Sdkws__MsgData *m = NULL;
	if (pb_msgdata_unpack(req->data, req->len, &m) != 0) {
		gw_reply(req, OI_ARGS, api_code_name(OI_ARGS), NULL, 0);
		return;
	}
	/* The message's sender must be the connection's user (§5.1). */
	if (strcmp(m->sendid, req->user_id) != 0) {
		pb_msgdata_free(m);
		gw_reply(req, OI_ARGS, api_code_name(OI_ARGS), NULL, 0);
		return;
	}
	/* msg_send rewrites ids into buffers it owns; m is freed here afterwards. */
	char *orig_smid = m->servermsgid, *orig_cmid = m->clientmsgid;
	msg_send(s, m, req->op_id, false, ws_send_cb, req);
	m->servermsgid = orig_smid;
	m->clientmsgid = orig_cmid;
	pb_msgdata_free(m);
}

/* ---------------------------------------------------------------- pushes */

static int push_member(const struct eng_member *m, void *arg)
{
	gw_batch_add(arg, m->user_id);
	return 0;
}

/*
 * A group message goes to the members with a connection here.  The cheaper
 * side is walked: the members (a scan of the group) when they are fewer than
 * the users online here, else the online users, each checked for membership
 * (a large group with a few members online costs O(online), not O(members)).
 */
static void push_group(struct srv *s, struct gw_batch *b, struct im_str gid)
{
	struct eng_rtxn *rt;
	if (eng_read_begin(s->eng, &rt) != 0)
		return;
	struct eng_group g;
	struct im_buf ids = {0};
	size_t n = 0;
	if (eng_group_get(rt, gid, &g) == 0 && gw_online_bound(s->gw) < g.member_count)
		n = gw_online_ids(s->gw, &ids);
	if (n == 0) {
		eng_member_scan(rt, gid, push_member, b);
	} else {
		for (size_t off = 0; off + 4 <= ids.len;) {
			struct im_str uid = {ids.p + off + 4,
					     im_get_be32((unsigned char *)ids.p + off)};
			struct eng_member m;
			off += 4 + uid.n;
			if (eng_member_get(rt, gid, uid, &m) == 0)
				gw_batch_add(b, uid);
		}
	}
	im_buf_free(&ids);
	eng_read_end(rt);
}

void msg_on_event(const struct eng_event *ev, void *arg)
{
	struct srv *s = arg;
	if (s->gw == NULL)
		return;
	const struct eng_msg_item *it = &ev->item;
	struct im_buf frame = {0};
	bool notif = it->flags & ENG_MSG_NOTIFICATION;
	if (pb_push_messages(&frame, notif, it->conv_id, &ev->stored, 1) != 0) {
		IM_ERROR("push index=%llu: cannot encode", (unsigned long long)ev->index);
		return;
	}
	char op_id[129];
	snprintf(op_id, sizeof(op_id), "%.*s", (int)IM_MIN(it->op_id.n, 128u), it->op_id.p);
	struct gw_batch b;
	gw_batch_begin(&b, s->gw, 2001, op_id, frame.p, frame.len);
	if (it->session_type == 3) {
		push_group(s, &b, it->group_id);
		/* Users the command removed from the group (quit, kick) hear of it too. */
		for (uint32_t i = 0, j = 0; i <= ev->extra.n && ev->extra.n > 0; i++) {
			if (i < ev->extra.n && ev->extra.p[i] != '\0')
				continue;
			gw_batch_add(&b, (struct im_str){ev->extra.p + j, i - j});
			j = i + 1;
		}
	} else {
		gw_batch_add(&b, it->recv_id);
		if ((it->flags & ENG_MSG_SENDER_SYNC) && !im_str_eq(it->send_id, it->recv_id))
			gw_batch_add(&b, it->send_id);
	}
	gw_batch_end(&b);
	im_buf_free(&frame);
}

/* ---------------------------------------------------------------- read views */

void msg_window(struct eng_rtxn *rt, struct im_str user, struct im_str conv, struct msg_window *w)
{
	memset(w, 0, sizeof(*w));
	if (eng_conv_seq(rt, conv, &w->max_seq, &w->min_seq, &w->max_seq_time) != 0)
		w->max_seq = w->min_seq = 0;
	w->lo = IM_MAX(w->min_seq, 1);
	w->hi = w->max_seq;
	struct eng_conv c;
	if (eng_conv_get(rt, user, conv, &c) == 0) {
		w->has_row = true;
		w->lo = IM_MAX(w->lo, c.min_seq);
		if (c.max_seq > 0)
			w->hi = IM_MIN(w->hi, c.max_seq);
	}
}

/* The 2101 form of a revoked message (§6.3), packed into out. */
static int revoked_view(struct im_str data, const struct eng_revoke *rv, struct im_buf *out)
{
	Openim__Sdkws__MsgData *m = NULL;
	int err = pb_msgdata_unpack((const uint8_t *)data.p, data.n, &m);
	if (err != 0)
		return err;
	json_t *d = json_object();
	json_object_set_new(d, "revokerID", json_str(rv->revoker_id));
	json_object_set_new(d, "revokerRole", json_integer(rv->revoker_role));
	json_object_set_new(d, "clientMsgID", json_string(m->clientmsgid));
	json_object_set_new(d, "revokerNickname", json_str(rv->revoker_nickname));
	json_object_set_new(d, "revokeTime", json_integer(rv->revoke_time));
	json_object_set_new(d, "sourceMessageSendTime", json_integer(m->sendtime));
	json_object_set_new(d, "sourceMessageSendID", json_string(m->sendid));
	json_object_set_new(d, "sourceMessageSenderNickname", json_string(m->sendernickname));
	json_object_set_new(d, "sessionType", json_integer(m->sessiontype));
	json_object_set_new(d, "seq", json_integer(m->seq));
	json_object_set_new(d, "ex", json_string(m->ex));
	struct im_buf inner = {0}, outer = {0};
	err = json_go_dump(d, &inner);
	json_decref(d);
	json_t *o = json_object();
	json_object_set_new(o, "detail", json_str((struct im_str){inner.p, (uint32_t)inner.len}));
	if (err == 0)
		err = json_go_dump(o, &outer);
	json_decref(o);
	im_buf_free(&inner);
	if (err == 0) {
		m->contenttype = CT_REVOKE_NOTIFICATION;
		m->content.data = (uint8_t *)outer.p;
		m->content.len = outer.len;
		err = pb_pack(&m->base, out);
		m->content.data = NULL;
		m->content.len = 0;
	}
	im_buf_free(&outer);
	pb_msgdata_free(m);
	return err;
}

bool msg_add_view(struct pb_w *w, uint32_t field, struct eng_rtxn *rt, struct im_str user,
		  struct im_str conv, int64_t seq)
{
	struct im_str data;
	bool is_read = false, revoked = false;
	if (eng_msg_hidden(rt, user, conv, seq) ||
	    eng_msg_get(rt, conv, seq, &data, &is_read, &revoked) != 0) {
		size_t mark = pb_w_begin(w, field);
		pb_w_int64(w, 14, seq);
		pb_w_int64(w, 17, STATUS_FILTERED);
		pb_w_end(w, mark);
		return false;
	}
	struct eng_revoke rv;
	if (revoked && eng_revoke_get(rt, conv, seq, &rv) == 0) {
		struct im_buf b = {0};
		if (revoked_view(data, &rv, &b) == 0) {
			pb_w_bytes(w, field, b.p, b.len);
			im_buf_free(&b);
			return true;
		}
		im_buf_free(&b);
	}
	size_t mark = pb_w_begin(w, field);
	pb_w_raw(w, data.p, data.n);
	if (is_read)
		pb_w_bool(w, 18, true);
	pb_w_end(w, mark);
	return true;
}

/* May user read conv at all (invariant 3)? */
static bool may_read(struct eng_rtxn *rt, struct im_str user, struct im_str conv,
		     const struct msg_window *w)
{
	if (w->has_row)
		return true;
	if (conv.n < 2 || memcmp(conv.p, "n_", 2) != 0)
		return false;
	struct im_str rest = {conv.p + 2, conv.n - 2};
	/* n_<a>_<b>: the user is a or b; n_<group>: a member. */
	if (rest.n > user.n && memcmp(rest.p, user.p, user.n) == 0 && rest.p[user.n] == '_')
		return true;
	if (rest.n > user.n && memcmp(rest.p + rest.n - user.n, user.p, user.n) == 0 &&
	    rest.p[rest.n - user.n - 1] == '_')
		return true;
	struct eng_member m;
	return eng_member_get(rt, rest, user, &m) == 0;
}

static bool is_notification_conv(const char *conv)
{
	return strncmp(conv, "n_", 2) == 0;
}

/* ---------------------------------------------------------------- WS reads */

/* Answers req with the writer's bytes (or 500 on a writer error) and frees out. */
static void reply_buf(struct gw_req *req, struct pb_w *w, struct im_buf *out)
{
	if (pb_w_done(w) != 0)
		gw_reply(req, OI_SERVER_INTERNAL, api_code_name(OI_SERVER_INTERNAL), NULL, 0);
	else
		gw_reply(req, 0, "", out->p ? out->p : "", out->len);
	im_buf_free(out);
}

static bool self_only(struct gw_req *req, const char *user_id)
{
	if (user_id[0] == '\0' || strcmp(user_id, req->user_id) == 0)
		return true;
	gw_reply(req, OI_NO_PERMISSION, api_code_name(OI_NO_PERMISSION), NULL, 0);
	return false;
}

/*
 * The prologue of every WS read: unpack the request, check that its userID
 * is the caller (a C server enforces it, §4.4 notes), open a read snapshot
 * and a reply writer.  On failure the request is answered and false returned.
 */
static bool ws_read_begin(struct srv *s, struct gw_req *req, const ProtobufCMessageDescriptor *desc,
			  ProtobufCMessage **q, struct eng_rtxn **rt, struct im_buf *out,
			  struct pb_w *w)
{
	if (pb_unpack(desc, req->data, req->len, q) != 0) {
		gw_reply(req, OI_ARGS, api_code_name(OI_ARGS), NULL, 0);
		return false;
	}
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(desc, "userID");
	const char *uid = f ? *(const char *const *)((const char *)*q + f->offset) : "";
	if (!self_only(req, uid ? uid : "")) {
		pb_free(*q);
		return false;
	}
	if (eng_read_begin(s->eng, rt) != 0) {
		pb_free(*q);
		gw_reply(req, OI_SERVER_INTERNAL, api_code_name(OI_SERVER_INTERNAL), NULL, 0);
		return false;
	}
	memset(out, 0, sizeof(*out));
	pb_w_init(w, out);
	return true;
}

/* 1005 GetSeqMessage (§6.7): an entry per conversation, placeholders for gaps. */
static void ws_get_seq_message(struct srv *s, struct gw_req *req)
{
	Openim__Msg__GetSeqMessageReq *q = NULL;
	struct eng_rtxn *rt;
	struct im_buf out;
	struct pb_w w;
	if (!ws_read_begin(s, req, &openim__msg__get_seq_message_req__descriptor,
			   (ProtobufCMessage **)&q, &rt, &out, &w))
		return;
	struct im_str user = im_str_c(req->user_id);
	bool desc = q->order == OPENIM__SDKWS__PULL_ORDER__PullOrderDesc;
	size_t total = 0;
	for (size_t i = 0; i < q->n_conversations; i++) {
		Openim__Msg__ConversationSeqs *cs = q->conversations[i];
		struct im_str conv = im_str_c(cs->conversationid);
		struct msg_window win;
		msg_window(rt, user, conv, &win);
		bool allowed = may_read(rt, user, conv, &win);
		struct pb_entry e;
		pb_pull_msgs_map_entry_begin(&w, is_notification_conv(cs->conversationid), conv,
					     &e);
		bool is_end = false;
		for (size_t k = 0; allowed && k < cs->n_seqs && total < ENG_SEQS_MAX;
		     k++, total++) {
			int64_t seq = cs->seqs[k];
			if (seq < win.lo || seq > win.hi) {
				if ((desc && seq < win.lo) || (!desc && seq > win.hi))
					is_end = true;
				continue;
			}
			msg_add_view(&w, 1, rt, user, conv, seq);
			if ((desc && seq <= win.lo) || (!desc && seq >= win.hi))
				is_end = true;
		}
		if (!allowed || win.hi < win.lo)
			is_end = true;
		pb_pull_msgs_map_entry_end(&w, &e, is_end, is_end ? (desc ? win.lo : win.hi) : 0);
	}
	eng_read_end(rt);
	pb_free(&q->base);
	reply_buf(req, &w, &out);
}

/* 1002 PullMessageBySeqs (§6.7): ranges clamped, at most num each, the last ones. */
static void ws_pull_by_seqs(struct srv *s, struct gw_req *req)
{
	Openim__Sdkws__PullMessageBySeqsReq *q = NULL;
	struct eng_rtxn *rt;
	struct im_buf out;
	struct pb_w w;
	if (!ws_read_begin(s, req, &openim__sdkws__pull_message_by_seqs_req__descriptor,
			   (ProtobufCMessage **)&q, &rt, &out, &w))
		return;
	struct im_str user = im_str_c(req->user_id);
	bool desc = q->order == OPENIM__SDKWS__PULL_ORDER__PullOrderDesc;
	for (size_t i = 0; i < q->n_seqranges; i++) {
		Openim__Sdkws__SeqRange *r = q->seqranges[i];
		struct im_str conv = im_str_c(r->conversationid);
		struct msg_window win;
		msg_window(rt, user, conv, &win);
		if (!may_read(rt, user, conv, &win))
			continue;
		int64_t lo = IM_MAX(r->begin, win.lo), hi = IM_MIN(r->end, win.hi);
		int64_t num = r->num > 0 ? IM_MIN(r->num, 1000) : 1000;
		if (hi < lo)
			continue; /* conversations with no messages are omitted */
		if (hi - lo + 1 > num)
			lo = hi - num + 1;
		bool is_end = desc ? r->begin <= win.lo : win.hi <= r->end;
		struct pb_entry e;
		pb_pull_msgs_map_entry_begin(&w, is_notification_conv(r->conversationid), conv, &e);
		for (int64_t seq = lo; seq <= hi; seq++)
			msg_add_view(&w, 1, rt, user, conv, seq);
		pb_pull_msgs_map_entry_end(&w, &e, is_end, is_end ? (desc ? win.lo : win.hi) : 0);
	}
	eng_read_end(rt);
	pb_free(&q->base);
	reply_buf(req, &w, &out);
}

/* Writes one map<string, Seqs> entry of 1006. */
static void write_seqs_entry(struct pb_w *w, struct eng_rtxn *rt, struct im_str user,
			     struct im_str conv)
{
	struct msg_window win;
	msg_window(rt, user, conv, &win);
	if (win.max_seq == 0)
		return; /* only conversations with a seq record (§6.7) */
	size_t entry = pb_w_begin(w, 1);
	pb_w_str(w, 1, conv);
	size_t val = pb_w_begin(w, 2);
	pb_w_int64(w, 1, win.hi);
	pb_w_int64(w, 2, IM_MIN(eng_read_seq(rt, user, conv), win.hi));
	pb_w_int64(w, 3, win.max_seq_time);
	pb_w_end(w, val);
	pb_w_end(w, entry);
}

struct seqs_scan {
	struct pb_w *w;
	struct eng_rtxn *rt;
	struct im_str user;
};

static int seqs_scan_cb(const struct eng_conv *c, void *arg)
{
	struct seqs_scan *p = arg;
	write_seqs_entry(p->w, p->rt, p->user, c->conversation_id);
	return 0;
}

/* 1006 GetConversationsHasReadAndMaxSeq (§6.7). */
static void ws_has_read_and_max_seq(struct srv *s, struct gw_req *req)
{
	Openim__Msg__GetConversationsHasReadAndMaxSeqReq *q = NULL;
	struct eng_rtxn *rt;
	struct im_buf out;
	struct pb_w w;
	if (!ws_read_begin(s, req,
			   &openim__msg__get_conversations_has_read_and_max_seq_req__descriptor,
			   (ProtobufCMessage **)&q, &rt, &out, &w))
		return;
	struct im_str user = im_str_c(req->user_id);
	if (q->n_conversationids == 0) {
		struct seqs_scan p = {&w, rt, user};
		eng_conv_scan(rt, user, seqs_scan_cb, &p);
	}
	for (size_t i = 0; i < q->n_conversationids; i++) {
		struct im_str conv = im_str_c(q->conversationids[i]);
		struct msg_window win;
		msg_window(rt, user, conv, &win);
		if (may_read(rt, user, conv, &win))
			write_seqs_entry(&w, rt, user, conv);
	}
	eng_read_end(rt);
	pb_free(&q->base);
	reply_buf(req, &w, &out);
}

struct newest {
	struct pb_w *w;
	struct eng_rtxn *rt;
	struct im_str user;
	struct im_buf mins; /* minSeqs entries, appended after maxSeqs */
	struct pb_w mw;
};

static void newest_one(struct newest *n, struct im_str conv)
{
	struct msg_window win;
	msg_window(n->rt, n->user, conv, &win);
	if (win.max_seq == 0)
		return; /* zero seqs are removed */
	size_t e = pb_w_begin(n->w, 1);
	pb_w_str(n->w, 1, conv);
	pb_w_int64(n->w, 2, win.hi);
	pb_w_end(n->w, e);
	e = pb_w_begin(&n->mw, 2);
	pb_w_str(&n->mw, 1, conv);
	pb_w_int64(&n->mw, 2, win.lo);
	pb_w_end(&n->mw, e);
}

static int newest_cb(const struct eng_conv *c, void *arg)
{
	struct newest *n = arg;
	newest_one(n, c->conversation_id);
	/* ... and its n_ twin (§3.6 newest_seq). */
	const char *cid = c->conversation_id.p;
	size_t len = c->conversation_id.n;
	char twin[ENG_CONV_ID_MAX + 8];
	if (len > 3 && (memcmp(cid, "si_", 3) == 0 || memcmp(cid, "sg_", 3) == 0 ||
			memcmp(cid, "sn_", 3) == 0)) {
		int k = snprintf(twin, sizeof(twin), "n_%.*s", (int)(len - 3), cid + 3);
		newest_one(n, (struct im_str){twin, (uint32_t)k});
	}
	return 0;
}

/* 1001 GetNewestSeq: max and min seqs of every conversation of the user, n_ twins included. */
static void ws_newest_seq(struct srv *s, struct gw_req *req)
{
	Openim__Sdkws__GetMaxSeqReq *q = NULL;
	struct eng_rtxn *rt;
	struct im_buf out;
	struct pb_w w;
	if (!ws_read_begin(s, req, &openim__sdkws__get_max_seq_req__descriptor,
			   (ProtobufCMessage **)&q, &rt, &out, &w))
		return;
	pb_free(&q->base);
	struct newest n = {.w = &w, .rt = rt, .user = im_str_c(req->user_id)};
	pb_w_init(&n.mw, &n.mins);
	eng_conv_scan(rt, n.user, newest_cb, &n);
	char self[2 * ENG_ID_MAX + 4];
	int k = snprintf(self, sizeof(self), "n_%s_%s", req->user_id, req->user_id);
	newest_one(&n, (struct im_str){self, (uint32_t)k});
	eng_read_end(rt);
	pb_w_raw(&w, n.mins.p, n.mins.len);
	if (pb_w_done(&n.mw) != 0)
		w.err = pb_w_done(&n.mw);
	im_buf_free(&n.mins);
	reply_buf(req, &w, &out);
}

/* 1007 GetLastMessage: map<convID, MsgData> of the newest readable message. */
static void ws_last_message(struct srv *s, struct gw_req *req)
{
	Openim__Msg__GetLastMessageReq *q = NULL;
	struct eng_rtxn *rt;
	struct im_buf out;
	struct pb_w w;
	if (!ws_read_begin(s, req, &openim__msg__get_last_message_req__descriptor,
			   (ProtobufCMessage **)&q, &rt, &out, &w))
		return;
	struct im_str user = im_str_c(req->user_id);
	for (size_t i = 0; i < q->n_conversationids; i++) {
		struct im_str conv = im_str_c(q->conversationids[i]);
		struct msg_window win;
		msg_window(rt, user, conv, &win);
		if (!may_read(rt, user, conv, &win) || win.hi < win.lo)
			continue;
		size_t e = pb_w_begin(&w, 1);
		pb_w_str(&w, 1, conv);
		msg_add_view(&w, 2, rt, user, conv, win.hi);
		pb_w_end(&w, e);
	}
	eng_read_end(rt);
	pb_free(&q->base);
	reply_buf(req, &w, &out);
}

int msg_ws_handler(struct srv *s, struct gw_req *req)
{
	switch (req->req_id) {
	case 1001:
		ws_newest_seq(s, req);
		return 0;
	case 1002:
		ws_pull_by_seqs(s, req);
		return 0;
	case 1003:
		ws_send(s, req);
		return 0;
	case 1005:
		ws_get_seq_message(s, req);
		return 0;
	case 1006:
		ws_has_read_and_max_seq(s, req);
		return 0;
	case 1007:
		ws_last_message(s, req);
		return 0;
	default:
		return -1;
	}
}

/* ---------------------------------------------------------------- notifications */

/*
 * Options of a server notification (§6.4): the base set, then what the mode
 * changes.  A chat copy (isSendMsg) keeps only {offlinePush:false,
 * unreadCount:true} (§11).
 */
static int notification_options(Openim__Sdkws__MsgData *m, enum msg_notif_mode mode)
{
	static const struct {
		const char *key;
		bool v;
	} base[] = {
	    {PB_OPT_IS_NOT_NOTIFICATION, false},
	    {PB_OPT_IS_SEND_MSG, false},
	    {PB_OPT_HISTORY, false},
	    {PB_OPT_PERSISTENT, false},
	    {PB_OPT_OFFLINE_PUSH, false},
	    {PB_OPT_UNREAD_COUNT, false},
	    {PB_OPT_CONVERSATION_UPDATE, false},
	    {PB_OPT_SENDER_SYNC, true},
	    {PB_OPT_NOT_PRIVATE, false},
	    {PB_OPT_SENDER_CONVERSATION_UPDATE, false},
	    {PB_OPT_REACTION_FROM_CACHE, false},
	};
	int rv = 0;
	if (mode == MSG_NOTIF_CHAT_COPY) {
		rv = pb_opt_set(m, PB_OPT_OFFLINE_PUSH, false);
		return rv ? rv : pb_opt_set(m, PB_OPT_UNREAD_COUNT, true);
	}
	for (size_t i = 0; rv == 0 && i < IM_ARRAY_LEN(base); i++)
		rv = pb_opt_set(m, base[i].key, base[i].v);
	if (rv == 0 && mode == MSG_NOTIF_STREAM) {
		/* reliabilityLevel 2: history and persistent (§6.4). */
		rv = pb_opt_set(m, PB_OPT_HISTORY, true);
		if (rv == 0)
			rv = pb_opt_set(m, PB_OPT_PERSISTENT, true);
	}
	return rv;
}

int msg_notification(struct srv *s, enum msg_notif_mode mode, int32_t content_type,
		     int32_t session_type, struct im_str send, struct im_str recv,
		     struct im_str group, json_t *tips, const char *op_id, struct msg_notif_bufs *b,
		     struct eng_msg_item *item)
{
	/* notification.yml's reliabilityLevel, one setting for all of them (§8.5). */
	if (mode == MSG_NOTIF_STREAM_ONLINE && s->cfg && s->cfg->notification_reliability == 2)
		mode = MSG_NOTIF_STREAM;
	int64_t now = s->now_ms();
	struct im_buf inner = {0}, outer = {0};
	int rv = json_go_dump(tips, &inner);
	json_decref(tips);
	json_t *o = json_object();
	json_object_set_new(o, "detail", json_str((struct im_str){inner.p, (uint32_t)inner.len}));
	if (rv == 0)
		rv = json_go_dump(o, &outer);
	json_decref(o);
	im_buf_free(&inner);
	Openim__Sdkws__MsgData *m = pb_msgdata_new();
	if (m == NULL)
		rv = -ENOMEM;
	if (rv == 0)
		rv = notification_options(m, mode);
	bool stream = mode != MSG_NOTIF_CHAT_COPY;
	if (rv == 0) {
		new_server_msg_id(send, now, b->smid);
		new_server_msg_id(send, now + 1, b->cmid);
		char sendz[ENG_ID_MAX + 1], recvz[ENG_ID_MAX + 1], groupz[ENG_ID_MAX + 1];
		snprintf(sendz, sizeof(sendz), "%.*s", (int)send.n, send.p);
		snprintf(recvz, sizeof(recvz), "%.*s", (int)recv.n, recv.p);
		snprintf(groupz, sizeof(groupz), "%.*s", (int)group.n, group.p);
		/* Group notifications carry the group in recvID as well (§5.1 groupID). */
		m->sendid = sendz;
		m->recvid = session_type == 3 ? groupz : recvz;
		m->groupid = groupz;
		m->clientmsgid = b->cmid;
		m->servermsgid = b->smid;
		m->sessiontype = session_type;
		m->msgfrom = 200;
		m->contenttype = content_type;
		m->content.data = (uint8_t *)outer.p;
		m->content.len = outer.len;
		m->sendtime = now;
		m->createtime = now;
		m->status = STATUS_SUCCESS;
		rv = pb_pack(&m->base, &b->data);
		if (rv == 0)
			rv = msg_conv_id(session_type, send, recv, group, stream, b->conv,
					 sizeof(b->conv));
		m->sendid = m->recvid = m->groupid = m->clientmsgid = m->servermsgid = NULL;
		m->content.data = NULL;
		m->content.len = 0;
	}
	if (m)
		pb_msgdata_free(m);
	im_buf_free(&outer);
	if (rv != 0)
		return rv;
	*item = (struct eng_msg_item){
	    .conv_id = im_str_c(b->conv),
	    .send_id = send,
	    .recv_id = session_type == 3 ? IM_STR_LIT("") : recv,
	    .group_id = group,
	    .client_msg_id = im_str_c(b->cmid),
	    .server_msg_id = im_str_c(b->smid),
	    .op_id = im_str_c(op_id),
	    .session_type = session_type,
	    .content_type = content_type,
	    .send_time = now,
	    .flags = (mode != MSG_NOTIF_STREAM_ONLINE ? ENG_MSG_STORE : 0) | ENG_MSG_SENDER_SYNC |
		     (stream ? ENG_MSG_NOTIFICATION : 0),
	    .data = {b->data.p, (uint32_t)b->data.len},
	};
	if (item->op_id.n > 128)
		item->op_id.n = 128;
	return 0;
}
