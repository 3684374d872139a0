/* routes_group_req.c - joining groups: requests, their handling and the application lists (§3.4).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "routes_group.h"

/* sdkws.GroupRequest: the request with the applicant's profile and the group. */
static json_t *req_json(struct eng_rtxn *rt, const struct eng_group_req *q)
{
	json_t *o = json_object();
	struct eng_user u;
	struct eng_group g;
	json_object_set_new(o, "userInfo",
			    eng_user_get(rt, q->user_id, &u) == 0
				? grp_public_user_json(rt, q->user_id)
				: json_null());
	json_object_set_new(o, "groupInfo",
			    eng_group_get(rt, q->group_id, &g) == 0 ? api_group_json(&g)
								    : json_null());
	json_object_set_new(o, "handleResult", json_integer(q->handle_result));
	json_object_set_new(o, "reqMsg", json_str(q->req_msg));
	json_object_set_new(o, "handleMsg", json_str(q->handled_msg));
	json_object_set_new(o, "reqTime", json_integer(q->req_time));
	json_object_set_new(o, "handleUserID", json_str(q->handle_user_id));
	json_object_set_new(o, "handleTime", json_integer(q->handle_time));
	json_object_set_new(o, "ex", json_str(q->ex));
	json_object_set_new(o, "joinSource", json_integer(q->join_source));
	json_object_set_new(o, "inviterUserID", json_str(q->inviter_user_id));
	return o;
}

/*
 * 1503 JoinGroupApplication (online only, §8.5) to the owner, the admins, the
 * applicant and the operator, each once (OpenIM's recipients).
 */
static int notify_application(struct api_req *r, struct eng_rtxn *rt, struct grp_notes *gn,
			      const struct eng_group *g, const struct eng_group_req *q)
{
	struct im_str to[GRP_NOTES_MAX];
	size_t n = grp_managers(rt, g->group_id, to, GRP_NOTES_MAX - 2);
	to[n++] = q->user_id;
	to[n++] = im_str_c(r->who.user_id);
	for (size_t i = 0; i < n; i++) {
		if (grp_id_list_has(to, i, to[i]))
			continue;
		json_t *t = json_object();
		json_object_set_new(t, "group", api_group_json(g));
		json_object_set_new(t, "applicant", grp_public_user_json(rt, q->user_id));
		json_object_set_new(t, "reqMsg", json_str(q->req_msg));
		json_object_set_new(t, "uuid", json_string(""));
		json_object_set_new(t, "request", json_null());
		int rv = grp_note_user(r, gn, 1503, im_str_c(r->who.user_id), to[i], t);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static void req_done(struct api_req *r, int status, const struct eng_result *res)
{
	if (res->code == IM_EEXIST) /* became a member meanwhile */
		api_fail(r, OI_ARGS, "%s", res->detail);
	else
		grp_change_done(r, status, res);
}

/* Stores the requests (one per user) and proposes them with their 1503s. */
static void put_requests(struct api_req *r, struct eng_rtxn *rt, const struct eng_group *g,
			 struct eng_group_req *reqs, size_t n)
{
	struct grp_notes *gn = grp_notes_new();
	int rv = gn == NULL ? -ENOMEM : 0;
	/* One 1503 per user would overflow a command for big invitations: first users only. */
	for (size_t i = 0; i < n && rv == 0 && gn->n + 8 <= GRP_NOTES_MAX; i++)
		rv = notify_application(r, rt, gn, g, &reqs[i]);
	if (rv == IM_ETOOBIG)
		rv = 0;
	struct eng_cmd cmd = {.type = ENG_CMD_GROUP_REQ_PUT, .now_ms = reqs[0].req_time};
	cmd.m.group_req_put.n_reqs = (uint32_t)n;
	cmd.m.group_req_put.reqs = reqs;
	grp_notes_propose(r, gn, rv, &cmd, req_done);
}

void grp_invite_requests(struct api_req *r, struct eng_rtxn *rt, const struct eng_group *g,
			 const struct im_str *ids, size_t n)
{
	struct eng_group_req *reqs = im_calloc(n, sizeof(*reqs));
	if (reqs == NULL) {
		api_fail_im(r, -ENOMEM, "invite");
		return;
	}
	int64_t now = r->s->now_ms();
	for (size_t i = 0; i < n; i++)
		reqs[i] = (struct eng_group_req){.group_id = g->group_id,
						 .user_id = ids[i],
						 .req_time = now,
						 .join_source = 2,
						 .inviter_user_id = im_str_c(r->who.user_id)};
	put_requests(r, rt, g, reqs, n);
	im_free(reqs);
}

/* The 1510 MemberEnter / 1509 MemberInvited tips of a member that just joined. */
static json_t *enter_tips(struct eng_rtxn *rt, const struct eng_group *g,
			  const struct eng_member *m, int64_t now, const struct sync_vlog *v,
			  int32_t ct, struct im_str op)
{
	struct eng_group after = *g;
	after.member_count++;
	json_t *t = json_object();
	json_object_set_new(t, "group", api_group_json(&after));
	if (ct == 1510) {
		json_object_set_new(t, "entrantUser", api_member_json(m));
	} else {
		json_t *list = json_array();
		json_array_append_new(list, api_member_json(m));
		json_object_set_new(t, "invitedUserList", list);
		json_object_set_new(t, "opUser", grp_op_json(rt, g->group_id, op));
		json_object_set_new(t, "inviterUser",
				    m->inviter_user_id.n
					? grp_op_json(rt, g->group_id, m->inviter_user_id)
					: json_null());
	}
	json_object_set_new(t, "operationTime", json_integer(now));
	grp_tips_versions(t, v);
	return t;
}

/*
 * join_group (§3.4): the applicant is `inviterUserID` (sic, as the SDKs send
 * it; it must be the caller unless an app admin calls).  needVerification 2
 * joins at once with 1510; otherwise a pending request and 1503.
 */
static void join_group(struct api_req *r)
{
	struct im_str gid, msg, uid, ex;
	int32_t source = 0;
	if (!api_str(r, r->body, "groupID", &gid) || !api_str(r, r->body, "reqMessage", &msg) ||
	    !api_str(r, r->body, "inviterUserID", &uid) || !api_str(r, r->body, "ex", &ex) ||
	    !api_i32(r, r->body, "joinSource", &source, NULL))
		return;
	if (uid.n == 0)
		uid = im_str_c(r->who.user_id);
	if (!api_require_self_or_admin(r, uid))
		return;
	if (msg.n > ENG_TEXT_MAX || ex.n > ENG_TEXT_MAX) {
		api_fail(r, OI_ARGS, "reqMessage or ex too long");
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	struct eng_user u;
	struct eng_member m;
	if (rt == NULL)
		return;
	if (eng_user_get(rt, uid, &u) != 0) {
		api_fail(r, OI_USER_NOT_FOUND, "userID %.*s not found", (int)uid.n, uid.p);
		return;
	}
	if (!grp_live(r, rt, gid, &g))
		return;
	if (eng_member_get(rt, gid, uid, &m) == 0) {
		api_fail(r, OI_ARGS, "%.*s is already in group %.*s", (int)uid.n, uid.p, (int)gid.n,
			 gid.p);
		return;
	}
	int64_t now = r->s->now_ms();
	if (g.need_verification != 2) {
		struct eng_group_req q = {.group_id = gid,
					  .user_id = uid,
					  .req_msg = msg,
					  .req_time = now,
					  .ex = ex,
					  .join_source = source};
		put_requests(r, rt, &g, &q, 1);
		return;
	}
	struct sync_vlog v;
	int rv = sync_vlog_after(rt, ENG_VLOG_GROUP_MEMBER, MEMBER_LOG, gid, true, &v);
	if (rv != 0) {
		api_fail_im(r, rv, "group member log");
		return;
	}
	struct eng_member nm = {.group_id = gid,
				.user_id = uid,
				.role_level = GRP_MEMBER,
				.join_time = now,
				.join_source = source,
				.operator_user_id = im_str_c(r->who.user_id),
				.inviter_user_id = uid};
	struct grp_notes *gn = grp_notes_new();
	rv = grp_note_group(r, gn, 1510, true, uid, gid,
			    enter_tips(rt, &g, &nm, now, &v, 1510, uid));
	struct eng_cmd cmd = {.type = ENG_CMD_GROUP_MEMBERS_ADD, .now_ms = now};
	cmd.m.group_members_add.group_id = gid;
	cmd.m.group_members_add.n_members = 1;
	cmd.m.group_members_add.members = &nm;
	cmd.m.group_members_add.hide_history = !r->s->cfg->history_for_new_members;
	grp_notes_propose(r, gn, rv, &cmd, req_done);
}

static void respond_done(struct api_req *r, int status, const struct eng_result *res)
{
	/* The engine refuses a request that is no longer pending (a race). */
	if (res->code == IM_EEXIST)
		api_fail(r, OI_GROUP_REQUEST_HANDLED, "%s", res->detail);
	else
		grp_change_done(r, status, res);
}

/*
 * group_application_response (§3.4): an owner or admin agrees (1505 to the
 * managers and the applicant, then 1509 to the group with the new member) or
 * refuses (1506).  A request handled already is 1206.
 */
static void group_application_response(struct api_req *r)
{
	struct im_str gid, from, hmsg;
	int32_t result = 0;
	if (!api_str(r, r->body, "groupID", &gid) || !api_str(r, r->body, "fromUserID", &from) ||
	    !api_str(r, r->body, "handledMsg", &hmsg) ||
	    !api_i32(r, r->body, "handleResult", &result, NULL))
		return;
	if (result != 1 && result != -1) {
		api_fail(r, OI_ARGS, "HandleResult unknown");
		return;
	}
	if (hmsg.n > ENG_TEXT_MAX) {
		api_fail(r, OI_ARGS, "handledMsg too long");
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	struct eng_member me, m;
	struct eng_group_req q;
	struct eng_user u;
	if (rt == NULL)
		return;
	int32_t role = grp_role(r, rt, gid, &me);
	if (role == 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "opUser is not in group %.*s", (int)gid.n, gid.p);
		return;
	}
	if (role < GRP_ADMIN) {
		api_fail(r, OI_NO_PERMISSION, "no group owner or admin");
		return;
	}
	if (!grp_live(r, rt, gid, &g))
		return;
	if (eng_group_req_get(rt, gid, from, &q) != 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "no request of %.*s", (int)from.n, from.p);
		return;
	}
	if (q.handle_result != 0) {
		api_fail(r, OI_GROUP_REQUEST_HANDLED, "group request already processed");
		return;
	}
	if (eng_user_get(rt, from, &u) != 0) {
		api_fail(r, OI_USER_NOT_FOUND, "userID %.*s not found", (int)from.n, from.p);
		return;
	}
	bool joins = result == 1 && eng_member_get(rt, gid, from, &m) != 0;
	int64_t now = r->s->now_ms();
	struct im_str op = im_str_c(r->who.user_id);
	struct grp_notes *gn = grp_notes_new();
	int rv = gn == NULL ? -ENOMEM : 0;
	struct im_str to[GRP_NOTES_MAX];
	size_t n = rv ? 0 : grp_managers(rt, gid, to, GRP_NOTES_MAX - 4);
	to[n++] = from;
	json_t *op_json = api_member_json(&me);
	for (size_t i = 0; i < n && rv == 0; i++) {
		if (grp_id_list_has(to, i, to[i]))
			continue;
		json_t *t = json_object();
		json_object_set_new(t, "group", api_group_json(&g));
		json_object_set(t, "opUser", op_json);
		json_object_set_new(t, "handleMsg", json_str(hmsg));
		json_object_set_new(t, "receiverAs", json_integer(i == n - 1 ? 0 : 1));
		json_object_set_new(t, "uuid", json_string(""));
		json_object_set_new(t, "request", json_null());
		rv = grp_note_user(r, gn, result == 1 ? 1505 : 1506, op, to[i], t);
	}
	json_decref(op_json);
	struct eng_member nm = {.group_id = gid,
				.user_id = from,
				.role_level = GRP_MEMBER,
				.join_time = now,
				.join_source = q.join_source,
				.operator_user_id = op,
				.inviter_user_id = q.inviter_user_id};
	if (rv == 0 && joins) {
		struct sync_vlog v;
		rv = sync_vlog_after(rt, ENG_VLOG_GROUP_MEMBER, MEMBER_LOG, gid, true, &v);
		if (rv == 0)
			rv = grp_note_group(r, gn, 1509, true, op, gid,
					    enter_tips(rt, &g, &nm, now, &v, 1509, op));
	}
	struct eng_cmd cmd = {.type = ENG_CMD_GROUP_REQ_RESPOND, .now_ms = now};
	cmd.m.group_req_respond.group_id = gid;
	cmd.m.group_req_respond.user_id = from;
	cmd.m.group_req_respond.handler = op;
	cmd.m.group_req_respond.handle_result = result;
	cmd.m.group_req_respond.handled_msg = hmsg;
	cmd.m.group_req_respond.hide_history = !r->s->cfg->history_for_new_members;
	grp_notes_propose(r, gn, rv, &cmd, respond_done);
}

/* ---------------------------------------------------------------- lists */

struct req_list {
	struct eng_rtxn *rt;
	json_t *arr;   /* every request, sorted and paged at the end */
	int64_t since; /* unhandled count: reqTime above this */
	uint64_t count;
};

static int req_collect(const struct eng_group_req *q, void *arg)
{
	struct req_list *l = arg;
	json_array_append_new(l->arr, req_json(l->rt, q));
	return 0;
}

static int by_req_time_desc(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "reqTime"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "reqTime"));
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Answers {total, groupRequests} with arr sorted newest first and paged. */
static void reply_page(struct api_req *r, json_t *arr, uint64_t offset, uint64_t limit)
{
	size_t n = json_array_size(arr);
	json_t **v = im_calloc(n ? n : 1, sizeof(*v));
	if (v == NULL) {
		json_decref(arr);
		api_fail_im(r, -ENOMEM, "application list");
		return;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), by_req_time_desc);
	json_t *page = json_array();
	for (size_t i = offset; i < n && (limit == 0 || i < offset + limit); i++)
		json_array_append(page, v[i]);
	im_free(v);
	json_decref(arr);
	json_t *d = json_object();
	json_object_set_new(d, "total", json_integer((json_int_t)n));
	json_object_set_new(d, "groupRequests", api_null_if_empty(page));
	api_reply(r, d);
}

struct managed {
	struct api_req *r;
	struct req_list *l;
	struct im_str user;
};

static int managed_cb(struct im_str gid, void *arg)
{
	struct managed *mg = arg;
	struct eng_member m;
	if (eng_member_get(mg->l->rt, gid, mg->user, &m) == 0 && m.role_level >= GRP_ADMIN)
		eng_group_req_scan_group(mg->l->rt, gid, req_collect, mg->l);
	return 0;
}

/* get_recv_group_applicationList: requests to the groups fromUserID manages. */
static void get_recv_group_application_list(struct api_req *r)
{
	struct im_str uid;
	uint64_t offset, limit;
	if (!api_str(r, r->body, "fromUserID", &uid) ||
	    !api_pagination(r, r->body, &offset, &limit))
		return;
	if (!api_require_self_or_admin(r, uid))
		return;
	struct req_list l = {.rt = api_read(r)};
	if (l.rt == NULL)
		return;
	l.arr = json_array();
	struct managed mg = {r, &l, uid};
	eng_user_group_scan(l.rt, uid, managed_cb, &mg);
	reply_page(r, l.arr, offset, limit);
}

/* get_user_req_group_applicationList: the requests userID made. */
static void get_user_req_group_application_list(struct api_req *r)
{
	struct im_str uid;
	uint64_t offset, limit;
	if (!api_str(r, r->body, "userID", &uid) || !api_pagination(r, r->body, &offset, &limit))
		return;
	if (!api_require_self_or_admin(r, uid))
		return;
	struct req_list l = {.rt = api_read(r)};
	if (l.rt == NULL)
		return;
	l.arr = json_array();
	eng_group_req_scan_user(l.rt, uid, req_collect, &l);
	reply_page(r, l.arr, offset, limit);
}

/* get_group_users_req_application_list: the requests of userIDs to groupID (managers). */
static void get_group_users_req_application_list(struct api_req *r)
{
	struct im_str gid, *ids = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "groupID", &gid) || !api_strs(r, r->body, "userIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || eng_group_get(rt, gid, &g) != 0) {
		if (rt != NULL)
			api_fail(r, OI_GROUP_NOT_FOUND, "group %.*s not found", (int)gid.n, gid.p);
		im_free(ids);
		return;
	}
	if (grp_role(r, rt, gid, NULL) < GRP_ADMIN) {
		im_free(ids);
		api_fail(r, OI_NO_PERMISSION, "no group owner or admin");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_group_req q;
		if (!grp_id_list_has(ids, i, ids[i]) && eng_group_req_get(rt, gid, ids[i], &q) == 0)
			json_array_append_new(arr, req_json(rt, &q));
	}
	im_free(ids);
	reply_page(r, arr, 0, 0);
}

/* get_specified_user_group_request_info: the caller's own request, or any for managers. */
static void get_specified_user_group_request_info(struct api_req *r)
{
	struct im_str gid, uid;
	if (!api_str(r, r->body, "groupID", &gid) || !api_str(r, r->body, "userID", &uid))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL)
		return;
	if (eng_group_get(rt, gid, &g) != 0) {
		api_fail(r, OI_GROUP_NOT_FOUND, "group %.*s not found", (int)gid.n, gid.p);
		return;
	}
	if (!im_str_eq(uid, im_str_c(r->who.user_id)) && grp_role(r, rt, gid, NULL) < GRP_ADMIN) {
		api_fail(r, OI_NO_PERMISSION, "opUser no permission");
		return;
	}
	struct eng_group_req q;
	json_t *arr = json_array();
	if (eng_group_req_get(rt, gid, uid, &q) == 0)
		json_array_append_new(arr, req_json(rt, &q));
	reply_page(r, arr, 0, 0);
}

static int unhandled_cb(const struct eng_group_req *q, void *arg)
{
	struct req_list *l = arg;
	if (q->handle_result == 0 && q->req_time > l->since)
		l->count++;
	return 0;
}

static int managed_count_cb(struct im_str gid, void *arg)
{
	struct managed *mg = arg;
	struct eng_member m;
	if (eng_member_get(mg->l->rt, gid, mg->user, &m) == 0 && m.role_level >= GRP_ADMIN)
		eng_group_req_scan_group(mg->l->rt, gid, unhandled_cb, mg->l);
	return 0;
}

/* get_group_application_unhandled_count: pending requests newer than `time` (ms) to managed groups.
 */
static void get_group_application_unhandled_count(struct api_req *r)
{
	struct im_str uid;
	struct req_list l = {0};
	if (!api_str(r, r->body, "userID", &uid) || !api_i64(r, r->body, "time", &l.since, NULL))
		return;
	if (!api_require_self_or_admin(r, uid))
		return;
	if ((l.rt = api_read(r)) == NULL)
		return;
	struct managed mg = {r, &l, uid};
	eng_user_group_scan(l.rt, uid, managed_count_cb, &mg);
	json_t *d = json_object();
	json_object_set_new(d, "count", json_integer((json_int_t)l.count));
	api_reply(r, d);
}

const struct api_route api_routes_group_req[] = {
    {"/group/get_group_application_unhandled_count", get_group_application_unhandled_count, 0},
    {"/group/join_group", join_group, 0},
    {"/group/group_application_response", group_application_response, 0},
    {"/group/get_recv_group_applicationList", get_recv_group_application_list, 0},
    {"/group/get_user_req_group_applicationList", get_user_req_group_application_list, 0},
    {"/group/get_group_users_req_application_list", get_group_users_req_application_list, 0},
    {"/group/get_specified_user_group_request_info", get_specified_user_group_request_info, 0},
    {NULL, NULL, 0},
};
