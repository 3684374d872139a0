/* routes_user.c - /user/ routes: registration, profiles, lookups, online state (openim-protocol.md
 * §3.2). */
#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "api.h"
#include "routes_group.h"
#include "gateway.h"
#include "msg.h"

/* Validates one user id as OpenIM does for registration (non-empty, no ':'). */
static bool check_user_id(struct api_req *r, struct im_str id)
{
	if (id.n == 0) {
		api_fail(r, OI_ARGS, "userID is empty");
		return false;
	}
	if (memchr(id.p, ':', id.n)) {
		api_fail(r, OI_ARGS, "userID contains ':' is invalid userID");
		return false;
	}
	if (id.n > ENG_ID_MAX) {
		api_fail(r, OI_ARGS, "userID longer than %d bytes", ENG_ID_MAX);
		return false;
	}
	return true;
}

static bool check_text(struct api_req *r, const char *name, struct im_str s)
{
	if (s.n <= ENG_TEXT_MAX)
		return true;
	api_fail(r, OI_ARGS, "%s longer than %d bytes", name, ENG_TEXT_MAX);
	return false;
}

static void no_data_done(struct api_req *r, int status, const struct eng_result *res)
{
	if (res->code == IM_EEXIST)
		api_fail(r, OI_REGISTERED_ALREADY, "userID registered already: %s", res->detail);
	else if (res->code == IM_ENOTFOUND)
		api_fail(r, OI_RECORD_NOT_FOUND, "%s", res->detail);
	else if (res->code != 0)
		api_fail_im(r, res->code, res->detail);
	else
		api_reply(r, NULL);
}

/* ---------------------------------------------------------------- register */

static void user_register(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	json_t *arr = NULL;
	struct json_err e;
	if (json_get_array(r->body, "users", &arr, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return;
	}
	size_t n = arr ? json_array_size(arr) : 0;
	if (n == 0) {
		api_fail(r, OI_ARGS, "users is empty");
		return;
	}
	if (n > ENG_BATCH_MAX) {
		api_fail(r, OI_ARGS, "at most %d users per request", ENG_BATCH_MAX);
		return;
	}
	/* Views into r->body; needed only until the command is encoded. */
	struct eng_user *users = im_calloc(n, sizeof(*users));
	if (users == NULL) {
		api_fail_im(r, -ENOMEM, "alloc");
		return;
	}
	int64_t now = r->s->now_ms();
	bool ok = true;
	for (size_t i = 0; ok && i < n; i++) {
		json_t *o = json_array_get(arr, i);
		struct eng_user *u = &users[i];
		if (!json_is_object(o)) {
			api_fail(r, OI_ARGS,
				 "json: cannot unmarshal %s into Go struct field "
				 "UserRegisterReq.users of type sdkws.UserInfo",
				 json_is_null(o) ? "null" : "value");
			ok = false;
			break;
		}
		ok = api_str(r, o, "userID", &u->user_id) &&
		     api_str(r, o, "nickname", &u->nickname) &&
		     api_str(r, o, "faceURL", &u->face_url) && api_str(r, o, "ex", &u->ex) &&
		     api_i32(r, o, "appMangerLevel", &u->app_manger_level, NULL) &&
		     api_i32(r, o, "globalRecvMsgOpt", &u->global_recv_msg_opt, NULL) &&
		     check_user_id(r, u->user_id) && check_text(r, "nickname", u->nickname) &&
		     check_text(r, "faceURL", u->face_url) && check_text(r, "ex", u->ex);
		u->create_time = now;
		for (size_t k = 0; ok && k < i; k++)
			if (im_str_eq(users[k].user_id, u->user_id)) {
				api_fail(r, OI_ARGS, "userID repeated");
				ok = false;
			}
	}
	if (!ok) {
		im_free(users);
		return;
	}
	/* Checked here for a fast answer, and again at apply (a concurrent register). */
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(users);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct eng_user old;
		if (eng_user_get(rt, users[i].user_id, &old) == 0) {
			api_fail(r, OI_REGISTERED_ALREADY, "userID registered already: %.*s",
				 (int)users[i].user_id.n, users[i].user_id.p);
			im_free(users);
			return;
		}
	}
	struct eng_cmd cmd = {.type = ENG_CMD_USER_REGISTER, .now_ms = now};
	cmd.u.user_register.n = (uint32_t)n;
	cmd.u.user_register.users = users;
	api_propose(r, &cmd, no_data_done);
	im_free(users);
}

/* ---------------------------------------------------------------- updates */

/*
 * The notifications of a profile change (online only, §8.4-8.5), as
 * OpenIM's NotificationUserInfoUpdate: 1303 UserInfoUpdated to the user,
 * and when the nickname or face changes, 1209 FriendInfoUpdated to each
 * friend that lists the user (the engine bumps their friend logs in the
 * update itself) and, in each group where the user has no group nickname
 * or no group face, a member-log update with 1516 GroupMemberInfoSet
 * (grp_profile_changed).  One command carries at most ENG_ITEMS_MAX items:
 * the update carries the 1303 and the first friends' 1209s, NOOP commands
 * the rest, ENG_ITEMS_MAX at a time, then one command per group; the
 * request is answered after the last (as import_friend does).
 */
struct profile_notes {
	uint32_t n;
	struct eng_msg_item items[ENG_ITEMS_MAX];
	struct msg_notif_bufs nb[ENG_ITEMS_MAX];
};

static void profile_notes_free(struct profile_notes *pn)
{
	if (pn == NULL)
		return;
	for (uint32_t i = 0; i < pn->n; i++)
		im_buf_free(&pn->nb[i].data);
	im_free(pn);
}

/*
 * The friends and groups to tell, copied out of the read snapshot; one
 * allocation (r->state).  ids[0, n) are friends, ids[n, n + n_groups) groups.
 */
struct profile_state {
	char user[ENG_ID_MAX + 1];
	size_t n, next;
	size_t n_groups, next_group;
	struct {
		uint32_t off, len;
	} ids[];
	/* then the ids' bytes */
};

static struct im_str profile_id(const struct profile_state *st, size_t i)
{
	const char *bytes = (const char *)&st->ids[st->n + st->n_groups];
	return (struct im_str){bytes + st->ids[i].off, st->ids[i].len};
}

struct friend_collect {
	struct eng_rtxn *rt;
	struct im_str user;
	struct im_buf bytes, spans; /* the ids, and (off, len) pairs */
	size_t n;
	int rv;
};

static int collect_span(struct friend_collect *fc, struct im_str id)
{
	uint32_t span[2] = {(uint32_t)fc->bytes.len, id.n};
	fc->rv = im_buf_add(&fc->bytes, id.p, id.n);
	if (fc->rv == 0)
		fc->rv = im_buf_add(&fc->spans, span, sizeof(span));
	fc->n++;
	return fc->rv != 0;
}

static int collect_cb(const struct eng_friend *f, void *arg)
{
	struct friend_collect *fc = arg;
	struct eng_friend back;
	if (eng_friend_get(fc->rt, f->friend_user_id, fc->user, &back) != 0)
		return 0; /* they do not list the user (one-sided import) */
	return collect_span(fc, f->friend_user_id);
}

static int collect_group_cb(struct im_str gid, void *arg)
{
	return collect_span(arg, gid);
}

/* The state of a profile change that tells others: the friends listing user, its groups. */
static struct profile_state *profile_state_new(struct eng_rtxn *rt, struct im_str user, int *rv)
{
	struct friend_collect fc = {.rt = rt, .user = user};
	eng_friend_scan(rt, user, 0, 0, collect_cb, &fc, NULL);
	size_t n_friends = fc.n;
	if (fc.rv == 0)
		eng_user_group_scan(rt, user, collect_group_cb, &fc);
	struct profile_state *st = NULL;
	*rv = fc.rv;
	if (*rv == 0) {
		st = im_calloc(1, sizeof(*st) + fc.n * sizeof(st->ids[0]) + fc.bytes.len);
		*rv = st ? 0 : -ENOMEM;
	}
	if (st) {
		snprintf(st->user, sizeof(st->user), "%.*s", (int)user.n, user.p);
		st->n = n_friends;
		st->n_groups = fc.n - n_friends;
		if (fc.n > 0) {
			memcpy(st->ids, fc.spans.p, fc.spans.len);
			memcpy((char *)&st->ids[fc.n], fc.bytes.p, fc.bytes.len);
		}
	}
	im_buf_free(&fc.bytes);
	im_buf_free(&fc.spans);
	return st;
}

/* Adds 1209s to pn for the next friends of st until pn is full. */
static int profile_batch(struct api_req *r, struct profile_state *st, struct profile_notes *pn)
{
	while (st->next < st->n && pn->n < ENG_ITEMS_MAX) {
		json_t *t = json_object();
		json_object_set_new(t, "userID", json_string(st->user));
		int rv = msg_notification(r->s, MSG_NOTIF_STREAM_ONLINE, 1209, 1,
					  im_str_c(r->who.user_id), profile_id(st, st->next),
					  IM_STR_LIT(""), t, r->op_id, &pn->nb[pn->n],
					  &pn->items[pn->n]);
		if (rv != 0)
			return rv;
		pn->n++;
		st->next++;
	}
	return 0;
}

/* Each command applied: the next batch of 1209s, the next group, or the answer. */
static void profile_done(struct api_req *r, int status, const struct eng_result *res)
{
	struct profile_state *st = r->state;
	if (res->code != 0 || st == NULL) {
		no_data_done(r, status, res);
		return;
	}
	if (st->next >= st->n) {
		struct im_str user = im_str_c(st->user);
		while (st->next_group < st->n_groups) {
			struct im_str gid = profile_id(st, st->n + st->next_group++);
			if (grp_profile_changed(r, gid, user, profile_done))
				return;
		}
		no_data_done(r, status, res);
		return;
	}
	struct profile_notes *pn = im_calloc(1, sizeof(*pn));
	int rv = pn == NULL ? -ENOMEM : profile_batch(r, st, pn);
	if (rv != 0) {
		profile_notes_free(pn);
		api_fail_im(r, rv, "user notification");
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_NOOP, .now_ms = r->s->now_ms()};
	cmd.n_items = pn->n;
	cmd.items = pn->items;
	api_propose(r, &cmd, profile_done);
	profile_notes_free(pn);
}

/*
 * Shared by update_user_info (non-empty fields apply) and update_user_info_ex
 * (present wrapper fields apply, even empty ones).
 */
static void propose_update(struct api_req *r, struct eng_user *u, uint32_t mask)
{
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_user old;
	if (eng_user_get(rt, u->user_id, &old) != 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "userID not found: %.*s", (int)u->user_id.n,
			 u->user_id.p);
		return;
	}
	if (mask == 0) {
		api_reply(r, NULL);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_USER_UPDATE, .now_ms = r->s->now_ms()};
	cmd.u.user_update.mask = mask;
	cmd.u.user_update.user = *u;
	bool profile = ((mask & ENG_USER_NICKNAME) && !im_str_eq(old.nickname, u->nickname)) ||
		       ((mask & ENG_USER_FACE_URL) && !im_str_eq(old.face_url, u->face_url));
	int rv = 0;
	if (profile)
		r->state = profile_state_new(rt, u->user_id, &rv);
	struct profile_notes *pn = rv == 0 ? im_calloc(1, sizeof(*pn)) : NULL;
	if (pn) {
		json_t *t = json_object();
		json_object_set_new(t, "userID", json_str(u->user_id));
		rv = msg_notification(r->s, MSG_NOTIF_STREAM_ONLINE, 1303, 1,
				      im_str_c(r->who.user_id), u->user_id, IM_STR_LIT(""), t,
				      r->op_id, &pn->nb[0], &pn->items[0]);
		pn->n = rv == 0;
	} else if (rv == 0) {
		rv = -ENOMEM;
	}
	if (rv == 0 && r->state)
		rv = profile_batch(r, r->state, pn);
	if (rv != 0) {
		profile_notes_free(pn);
		api_fail_im(r, rv, "user notification");
		return;
	}
	cmd.n_items = pn->n;
	cmd.items = pn->items;
	api_propose(r, &cmd, profile_done);
	profile_notes_free(pn);
}

static bool user_info_obj(struct api_req *r, json_t **out)
{
	struct json_err e;
	if (json_get_obj(r->body, "userInfo", out, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return false;
	}
	if (*out == NULL) {
		api_fail(r, OI_ARGS, "userInfo is empty");
		return false;
	}
	return true;
}

static void update_user_info(struct api_req *r)
{
	json_t *o;
	if (!user_info_obj(r, &o))
		return;
	struct eng_user u = {0};
	if (!api_str(r, o, "userID", &u.user_id) || !api_str(r, o, "nickname", &u.nickname) ||
	    !api_str(r, o, "faceURL", &u.face_url) || !api_str(r, o, "ex", &u.ex) ||
	    !api_i32(r, o, "appMangerLevel", &u.app_manger_level, NULL) ||
	    !api_i32(r, o, "globalRecvMsgOpt", &u.global_recv_msg_opt, NULL))
		return;
	if (u.user_id.n == 0) {
		api_fail(r, OI_ARGS, "userID is empty");
		return;
	}
	if (!api_require_self_or_admin(r, u.user_id) || !check_text(r, "nickname", u.nickname) ||
	    !check_text(r, "faceURL", u.face_url) || !check_text(r, "ex", u.ex))
		return;
	uint32_t mask = 0;
	mask |= u.nickname.n ? ENG_USER_NICKNAME : 0;
	mask |= u.face_url.n ? ENG_USER_FACE_URL : 0;
	mask |= u.ex.n ? ENG_USER_EX : 0;
	mask |= u.global_recv_msg_opt ? ENG_USER_GLOBAL_RECV_MSG_OPT : 0;
	if (u.app_manger_level) {
		if (!r->who.admin) {
			api_fail(r, OI_NO_PERMISSION, "only an admin may set appMangerLevel");
			return;
		}
		mask |= ENG_USER_APP_MANGER_LEVEL;
	}
	propose_update(r, &u, mask);
}

static void update_user_info_ex(struct api_req *r)
{
	json_t *o;
	if (!user_info_obj(r, &o))
		return;
	struct eng_user u = {0};
	bool nick = false, face = false, ex = false, opt = false;
	struct json_err e;
	if (!api_str(r, o, "userID", &u.user_id))
		return;
	if (json_get_str(o, "nickname", &u.nickname, &nick, &e) != 0 ||
	    json_get_str(o, "faceURL", &u.face_url, &face, &e) != 0 ||
	    json_get_str(o, "ex", &u.ex, &ex, &e) != 0 ||
	    json_get_i32(o, "globalRecvMsgOpt", &u.global_recv_msg_opt, &opt, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return;
	}
	if (u.user_id.n == 0) {
		api_fail(r, OI_ARGS, "userID is empty");
		return;
	}
	if (!api_require_self_or_admin(r, u.user_id) || !check_text(r, "nickname", u.nickname) ||
	    !check_text(r, "faceURL", u.face_url) || !check_text(r, "ex", u.ex))
		return;
	uint32_t mask = (nick ? ENG_USER_NICKNAME : 0) | (face ? ENG_USER_FACE_URL : 0) |
			(ex ? ENG_USER_EX : 0) | (opt ? ENG_USER_GLOBAL_RECV_MSG_OPT : 0);
	propose_update(r, &u, mask);
}

static void set_global_msg_recv_opt(struct api_req *r)
{
	struct eng_user u = {0};
	if (!api_str(r, r->body, "userID", &u.user_id) ||
	    !api_i32(r, r->body, "globalRecvMsgOpt", &u.global_recv_msg_opt, NULL))
		return;
	if (!api_require_self_or_admin(r, u.user_id))
		return;
	if (u.global_recv_msg_opt < 0 || u.global_recv_msg_opt > 2) {
		api_fail(r, OI_ARGS, "globalRecvMsgOpt must be 0, 1 or 2");
		return;
	}
	propose_update(r, &u, ENG_USER_GLOBAL_RECV_MSG_OPT);
}

/* ---------------------------------------------------------------- reads */

static void get_users_info(struct api_req *r)
{
	struct im_str *ids = NULL;
	size_t n = 0;
	if (!api_strs(r, r->body, "userIDs", &ids, &n))
		return;
	if (n == 0) {
		api_fail(r, OI_ARGS, "userIDs is empty");
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t k = 0; k < i && !dup; k++)
			dup = im_str_eq(ids[k], ids[i]);
		struct eng_user u;
		if (!dup && eng_user_get(rt, ids[i], &u) == 0)
			json_array_append_new(arr, api_user_json(&u));
	}
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "usersInfo", api_null_if_empty(arr));
	api_reply(r, d);
}

static int collect_id(const struct eng_user *u, void *arg)
{
	json_array_append_new(arg, json_str(u->user_id));
	return 0;
}

static void get_all_users_uid(struct api_req *r)
{
	uint64_t off, lim;
	if (!api_pagination(r, r->body, &off, &lim))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	json_t *arr = json_array();
	int rv = eng_user_scan(rt, off, lim, collect_id, arr);
	if (rv != 0) {
		json_decref(arr);
		api_fail_im(r, rv, "scan users");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "total", json_integer((json_int_t)eng_user_count(rt)));
	json_object_set_new(d, "userIDs", api_null_if_empty(arr));
	api_reply(r, d);
}

static void account_check(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct im_str *ids = NULL;
	size_t n = 0;
	if (!api_strs(r, r->body, "checkUserIDs", &ids, &n))
		return;
	if (n == 0) {
		api_fail(r, OI_ARGS, "checkUserIDs is empty");
		return;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < i; k++)
			if (im_str_eq(ids[i], ids[k])) {
				im_free(ids);
				api_fail(r, OI_ARGS, "userID repeated");
				return;
			}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_user u;
		json_t *o = json_object();
		json_object_set_new(o, "userID", json_str(ids[i]));
		json_object_set_new(o, "accountStatus",
				    json_integer(eng_user_get(rt, ids[i], &u) == 0 ? 1 : 0));
		json_array_append_new(arr, o);
	}
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "results", arr);
	api_reply(r, d);
}

/* Case-sensitive substring test on views. */
static bool contains(struct im_str hay, struct im_str needle)
{
	if (needle.n == 0)
		return true;
	if (needle.n > hay.n)
		return false;
	return memmem(hay.p, hay.n, needle.p, needle.n) != NULL;
}

struct search {
	struct im_str user_id, nickname, keyword;
	bool notification; /* notification accounts (level >= 3) instead of ordinary users */
	int32_t level;	   /* with notification: 0 = 3 and 4 */
	uint64_t offset, limit, total;
	json_t *arr;
};

static int search_cb(const struct eng_user *u, void *arg)
{
	struct search *s = arg;
	bool is_notif = u->app_manger_level >= 3;
	if (is_notif != s->notification)
		return 0;
	if (s->notification && s->level && u->app_manger_level != s->level)
		return 0;
	if (s->keyword.n && !im_str_eq(u->user_id, s->keyword) &&
	    !contains(u->nickname, s->keyword))
		return 0;
	if ((s->user_id.n || s->nickname.n) &&
	    !((s->user_id.n && contains(u->user_id, s->user_id)) ||
	      (s->nickname.n && contains(u->nickname, s->nickname))))
		return 0;
	uint64_t i = s->total++;
	if (i < s->offset || (s->limit && i >= s->offset + s->limit))
		return 0;
	if (s->notification) {
		json_t *o = json_object();
		json_object_set_new(o, "userID", json_str(u->user_id));
		json_object_set_new(o, "faceURL", json_str(u->face_url));
		json_object_set_new(o, "nickName", json_str(u->nickname));
		json_object_set_new(o, "appMangerLevel", json_integer(u->app_manger_level));
		json_array_append_new(s->arr, o);
	} else {
		json_array_append_new(s->arr, api_user_json(u));
	}
	return 0;
}

static void run_search(struct api_req *r, struct search *s, const char *list_key)
{
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	s->arr = json_array();
	int rv = eng_user_scan(rt, 0, 0, search_cb, s);
	if (rv != 0) {
		json_decref(s->arr);
		api_fail_im(r, rv, "scan users");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "total", json_integer((json_int_t)s->total));
	json_object_set_new(d, list_key, api_null_if_empty(s->arr));
	api_reply(r, d);
}

static void get_users(struct api_req *r)
{
	struct search s = {0};
	if (!api_pagination(r, r->body, &s.offset, &s.limit) ||
	    !api_str(r, r->body, "userID", &s.user_id) ||
	    !api_str(r, r->body, "nickName", &s.nickname))
		return;
	run_search(r, &s, "users");
}

/* ---------------------------------------------------------------- online state */

/* The live connections of a user, from the gateway of this node. */
struct online {
	json_t *platforms; /* detailPlatformStatus / platformIDs / singlePlatformToken */
	int kind;	   /* 0 detail, 1 platform ids, 2 tokens per platform */
	const char *user_id;
};

static void online_cb(const struct gw_conn_info *ci, void *arg)
{
	struct online *o = arg;
	if (o->kind == 1) {
		/* platformIDs: each platform once. */
		for (size_t i = 0; i < json_array_size(o->platforms); i++)
			if (json_integer_value(json_array_get(o->platforms, i)) == ci->platform_id)
				return;
		json_array_append_new(o->platforms, json_integer(ci->platform_id));
		return;
	}
	if (o->kind == 2) {
		json_t *entry = NULL;
		for (size_t i = 0; i < json_array_size(o->platforms) && !entry; i++) {
			json_t *e = json_array_get(o->platforms, i);
			if (json_integer_value(json_object_get(e, "platformID")) == ci->platform_id)
				entry = e;
		}
		if (entry == NULL) {
			entry = json_object();
			json_object_set_new(entry, "platformID", json_integer(ci->platform_id));
			json_object_set_new(entry, "total", json_integer(0));
			json_object_set_new(entry, "token", json_array());
			json_array_append_new(o->platforms, entry);
		}
		json_object_set_new(
		    entry, "total",
		    json_integer(json_integer_value(json_object_get(entry, "total")) + 1));
		json_array_append_new(json_object_get(entry, "token"), json_string(ci->token));
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "platformID", json_integer(ci->platform_id));
	json_object_set_new(d, "connID", json_integer((json_int_t)ci->conn_id));
	json_object_set_new(d, "isBackground", json_boolean(ci->is_background));
	json_object_set_new(d, "token", json_string(ci->token ? ci->token : ""));
	json_array_append_new(o->platforms, d);
}

/* Connections of id (0 when the gateway is not up), their list built by kind. */
static int online_of(struct api_req *r, struct im_str id, int kind, json_t **list)
{
	struct online o = {.platforms = json_array(), .kind = kind};
	int n = r->s->gw ? gw_user_conns(r->s->gw, id, online_cb, &o) : 0;
	*list = o.platforms;
	return n;
}

static void get_users_online_status(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct im_str *ids = NULL;
	size_t n = 0;
	if (!api_strs(r, r->body, "userIDs", &ids, &n))
		return;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *detail;
		int conns = online_of(r, ids[i], 0, &detail);
		json_t *o = json_object();
		json_object_set_new(o, "userID", json_str(ids[i]));
		json_object_set_new(o, "status", json_integer(conns > 0));
		json_object_set_new(o, "detailPlatformStatus", api_null_if_empty(detail));
		json_array_append_new(arr, o);
	}
	im_free(ids);
	api_reply(r, api_null_if_empty(arr));
}

static void get_users_online_token_detail(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct im_str *ids = NULL;
	size_t n = 0;
	if (!api_strs(r, r->body, "userIDs", &ids, &n))
		return;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *tokens;
		if (online_of(r, ids[i], 2, &tokens) == 0) {
			json_decref(tokens);
			continue; /* online users only */
		}
		json_t *o = json_object();
		json_object_set_new(o, "userID", json_str(ids[i]));
		json_object_set_new(o, "status", json_integer(1));
		json_object_set_new(o, "singlePlatformToken", tokens);
		json_array_append_new(arr, o);
	}
	im_free(ids);
	api_reply(r, api_null_if_empty(arr));
}

static json_t *status_list(struct api_req *r, const struct im_str *ids, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *platforms;
		int conns = online_of(r, ids[i], 1, &platforms);
		json_t *o = json_object();
		json_object_set_new(o, "userID", json_str(ids[i]));
		json_object_set_new(o, "status", json_integer(conns > 0));
		json_object_set_new(o, "platformIDs", api_null_if_empty(platforms));
		json_array_append_new(arr, o);
	}
	return api_null_if_empty(arr);
}

/*
 * REST subscriptions are answered with the current states; the live
 * subscription (pushes on change) is the WebSocket 2005 of the connection
 * (§3.2: the JS SDK maps this call but uses 2005).
 */
static void subscribe_users_status(struct api_req *r)
{
	struct im_str uid, *ids = NULL;
	size_t n = 0;
	int32_t genre = 0;
	if (!api_str(r, r->body, "userID", &uid) || !api_i32(r, r->body, "genre", &genre, NULL) ||
	    !api_strs(r, r->body, "userIDs", &ids, &n))
		return;
	if (!api_require_self_or_admin(r, uid)) {
		im_free(ids);
		return;
	}
	if (genre != 1 && genre != 2) {
		im_free(ids);
		api_fail(r, OI_ARGS, "genre must be 1 (subscribe) or 2 (unsubscribe)");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "statusList", genre == 1 ? status_list(r, ids, n) : json_null());
	im_free(ids);
	api_reply(r, d);
}

static void get_users_status(struct api_req *r)
{
	struct im_str uid, *ids = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "userID", &uid) || !api_strs(r, r->body, "userIDs", &ids, &n))
		return;
	json_t *d = json_object();
	json_object_set_new(d, "statusList", status_list(r, ids, n));
	im_free(ids);
	api_reply(r, d);
}

static void get_subscribe_users_status(struct api_req *r)
{
	struct im_str uid;
	if (!api_str(r, r->body, "userID", &uid))
		return;
	json_t *d = json_object();
	json_object_set_new(d, "statusList", json_null());
	api_reply(r, d);
}

/* ---------------------------------------------------------------- notification accounts */

struct notif_state {
	char user_id[32];
};

static void add_notif_done(struct api_req *r, int status, const struct eng_result *res)
{
	if (res->code != 0) {
		no_data_done(r, status, res);
		return;
	}
	json_t *d = json_object();
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		json_decref(d);
		return;
	}
	struct notif_state *st = r->state;
	struct eng_user u;
	if (eng_user_get(rt, im_str_c(st->user_id), &u) != 0) {
		json_decref(d);
		api_fail(r, OI_SERVER_INTERNAL, "notification account vanished");
		return;
	}
	json_object_set_new(d, "userID", json_str(u.user_id));
	json_object_set_new(d, "faceURL", json_str(u.face_url));
	json_object_set_new(d, "nickName", json_str(u.nickname));
	json_object_set_new(d, "appMangerLevel", json_integer(u.app_manger_level));
	api_reply(r, d);
}

static void add_notification_account(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct eng_user u = {0};
	if (!api_str(r, r->body, "userID", &u.user_id) ||
	    !api_str(r, r->body, "nickName", &u.nickname) ||
	    !api_str(r, r->body, "faceURL", &u.face_url) ||
	    !api_i32(r, r->body, "appMangerLevel", &u.app_manger_level, NULL))
		return;
	if (u.app_manger_level != 3 && u.app_manger_level != 4) {
		api_fail(r, OI_ARGS, "appMangerLevel must be 3 (notification) or 4 (robot)");
		return;
	}
	struct notif_state *st = im_calloc(1, sizeof(*st));
	if (st == NULL) {
		api_fail_im(r, -ENOMEM, "alloc");
		return;
	}
	r->state = st;
	if (u.user_id.n == 0) {
		/* OpenIM generates a random 10-digit decimal id. */
		uint64_t rnd = 0;
		im_random(&rnd, sizeof(rnd));
		snprintf(st->user_id, sizeof(st->user_id), "%010llu",
			 (unsigned long long)(rnd % 10000000000ull));
	} else {
		if (!check_user_id(r, u.user_id))
			return;
		if (u.user_id.n >= sizeof(st->user_id)) {
			api_fail(r, OI_ARGS, "userID too long");
			return;
		}
		memcpy(st->user_id, u.user_id.p, u.user_id.n);
	}
	u.user_id = im_str_c(st->user_id);
	if (!check_text(r, "nickName", u.nickname) || !check_text(r, "faceURL", u.face_url))
		return;
	u.create_time = r->s->now_ms();
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_user old;
	if (eng_user_get(rt, u.user_id, &old) == 0) {
		api_fail(r, OI_REGISTERED_ALREADY, "userID registered already: %s", st->user_id);
		return;
	}
	struct eng_cmd cmd = {.type = ENG_CMD_USER_REGISTER, .now_ms = u.create_time};
	cmd.u.user_register.n = 1;
	cmd.u.user_register.users = &u;
	api_propose(r, &cmd, add_notif_done);
}

static void update_notification_account(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct eng_user u = {0};
	if (!api_str(r, r->body, "userID", &u.user_id) ||
	    !api_str(r, r->body, "nickName", &u.nickname) ||
	    !api_str(r, r->body, "faceURL", &u.face_url))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_user old;
	if (eng_user_get(rt, u.user_id, &old) != 0 || old.app_manger_level < 3) {
		api_fail(r, OI_RECORD_NOT_FOUND, "notification account %.*s not found",
			 (int)u.user_id.n, u.user_id.p);
		return;
	}
	if (!check_text(r, "nickName", u.nickname) || !check_text(r, "faceURL", u.face_url))
		return;
	uint32_t mask =
	    (u.nickname.n ? ENG_USER_NICKNAME : 0) | (u.face_url.n ? ENG_USER_FACE_URL : 0);
	propose_update(r, &u, mask);
}

static void search_notification_account(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct search s = {.notification = true};
	if (!api_pagination(r, r->body, &s.offset, &s.limit) ||
	    !api_str(r, r->body, "keyword", &s.keyword) ||
	    !api_i32(r, r->body, "appManagerLevel", &s.level, NULL))
		return;
	run_search(r, &s, "notificationAccounts");
}

/* ---------------------------------------------------------------- user commands */

/* Reads {userID, type, uuid, value?, ex?}; answers 1001/1002 itself on failure. */
static bool user_cmd_args(struct api_req *r, struct eng_user_cmd *c, uint32_t *mask)
{
	bool has_value = false, has_ex = false;
	struct json_err e;
	memset(c, 0, sizeof(*c));
	if (!api_str(r, r->body, "userID", &c->user_id) ||
	    !api_i32(r, r->body, "type", &c->type, NULL) || !api_str(r, r->body, "uuid", &c->uuid))
		return false;
	if (json_get_str(r->body, "value", &c->value, &has_value, &e) != 0 ||
	    json_get_str(r->body, "ex", &c->ex, &has_ex, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return false;
	}
	if (!api_require_self_or_admin(r, c->user_id))
		return false;
	if (c->uuid.n == 0 || c->uuid.n > ENG_ID_MAX || memchr(c->uuid.p, 0, c->uuid.n)) {
		api_fail(r, OI_ARGS, "uuid is empty or invalid");
		return false;
	}
	if (!check_text(r, "value", c->value) || !check_text(r, "ex", c->ex))
		return false;
	*mask = (has_value ? ENG_UCMD_VALUE : 0) | (has_ex ? ENG_UCMD_EX : 0);
	return true;
}

static void user_cmd_done(struct api_req *r, int status, const struct eng_result *res)
{
	if (res->code == IM_EEXIST)
		api_fail(r, OI_DUPLICATE_KEY, "%s", res->detail);
	else
		no_data_done(r, status, res);
}

static void user_cmd_propose(struct api_req *r, uint8_t type)
{
	struct eng_cmd cmd = {.type = type, .now_ms = r->s->now_ms()};
	if (!user_cmd_args(r, &cmd.u.user_cmd.c, &cmd.u.user_cmd.mask))
		return;
	api_propose(r, &cmd, user_cmd_done);
}

static void process_user_command_add(struct api_req *r)
{
	user_cmd_propose(r, ENG_CMD_USER_CMD_ADD);
}

static void process_user_command_update(struct api_req *r)
{
	user_cmd_propose(r, ENG_CMD_USER_CMD_UPDATE);
}

static void process_user_command_delete(struct api_req *r)
{
	user_cmd_propose(r, ENG_CMD_USER_CMD_DEL);
}

static int user_cmd_json(const struct eng_user_cmd *c, void *arg)
{
	json_t *o = json_object();
	json_object_set_new(o, "type", json_integer(c->type));
	json_object_set_new(o, "createTime", json_integer(c->create_time));
	json_object_set_new(o, "uuid", json_str(c->uuid));
	json_object_set_new(o, "value", json_str(c->value));
	json_object_set_new(o, "ex", json_str(c->ex));
	json_array_append_new(arg, o);
	return 0;
}

static void user_cmd_list(struct api_req *r, bool by_type)
{
	struct im_str uid;
	int32_t type = -1;
	if (!api_str(r, r->body, "userID", &uid) ||
	    (by_type && !api_i32(r, r->body, "type", &type, NULL)))
		return;
	if (!api_require_self_or_admin(r, uid))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	json_t *arr = json_array();
	int rv = eng_user_cmd_scan(rt, uid, by_type ? type : -1, user_cmd_json, arr);
	if (rv != 0) {
		json_decref(arr);
		api_fail_im(r, rv, "scan user commands");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "CommandResp", api_null_if_empty(arr));
	api_reply(r, d);
}

static void process_user_command_get(struct api_req *r)
{
	user_cmd_list(r, true);
}

static void process_user_command_get_all(struct api_req *r)
{
	user_cmd_list(r, false);
}

const struct api_route api_routes_user[] = {
    {"/user/user_register", user_register, 0},
    {"/user/update_user_info", update_user_info, 0},
    {"/user/update_user_info_ex", update_user_info_ex, 0},
    {"/user/set_global_msg_recv_opt", set_global_msg_recv_opt, 0},
    {"/user/get_users_info", get_users_info, 0},
    {"/user/get_all_users_uid", get_all_users_uid, 0},
    {"/user/account_check", account_check, 0},
    {"/user/get_users", get_users, 0},
    {"/user/get_users_online_status", get_users_online_status, 0},
    {"/user/get_users_online_token_detail", get_users_online_token_detail, 0},
    {"/user/subscribe_users_status", subscribe_users_status, 0},
    {"/user/get_users_status", get_users_status, 0},
    {"/user/get_subscribe_users_status", get_subscribe_users_status, 0},
    {"/user/process_user_command_add", process_user_command_add, 0},
    {"/user/process_user_command_update", process_user_command_update, 0},
    {"/user/process_user_command_delete", process_user_command_delete, 0},
    {"/user/process_user_command_get", process_user_command_get, 0},
    {"/user/process_user_command_get_all", process_user_command_get_all, 0},
    {"/user/add_notification_account", add_notification_account, 0},
    {"/user/update_notification_account", update_notification_account, 0},
    {"/user/search_notification_account", search_notification_account, 0},
    {NULL, NULL, 0},
};
