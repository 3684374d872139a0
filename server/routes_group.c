/* routes_group.c - /group/ routes the SDKs need to log in and chat in groups (openim-protocol.md
 * §3.4, §13). */
#include <errno.h>
#include <stdio.h>

#include "routes_group.h"

json_t *api_group_json(const struct eng_group *g)
{
	json_t *o = json_object();
	json_object_set_new(o, "groupID", json_str(g->group_id));
	json_object_set_new(o, "groupName", json_str(g->group_name));
	json_object_set_new(o, "notification", json_str(g->notification));
	json_object_set_new(o, "introduction", json_str(g->introduction));
	json_object_set_new(o, "faceURL", json_str(g->face_url));
	json_object_set_new(o, "ownerUserID", json_str(g->owner_user_id));
	json_object_set_new(o, "createTime", json_integer(g->create_time));
	json_object_set_new(o, "memberCount", json_integer(g->member_count));
	json_object_set_new(o, "ex", json_str(g->ex));
	json_object_set_new(o, "status", json_integer(g->status));
	json_object_set_new(o, "creatorUserID", json_str(g->creator_user_id));
	json_object_set_new(o, "groupType", json_integer(g->group_type));
	json_object_set_new(o, "needVerification", json_integer(g->need_verification));
	json_object_set_new(o, "lookMemberInfo", json_integer(g->look_member_info));
	json_object_set_new(o, "applyMemberFriend", json_integer(g->apply_member_friend));
	json_object_set_new(o, "notificationUpdateTime", json_integer(g->notification_update_time));
	json_object_set_new(o, "notificationUserID", json_str(g->notification_user_id));
	return o;
}

json_t *api_member_json(const struct eng_member *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "groupID", json_str(m->group_id));
	json_object_set_new(o, "userID", json_str(m->user_id));
	json_object_set_new(o, "roleLevel", json_integer(m->role_level));
	json_object_set_new(o, "joinTime", json_integer(m->join_time));
	json_object_set_new(o, "nickname", json_str(m->nickname));
	json_object_set_new(o, "faceURL", json_str(m->face_url));
	json_object_set_new(o, "appMangerLevel", json_integer(0));
	json_object_set_new(o, "joinSource", json_integer(m->join_source));
	json_object_set_new(o, "operatorUserID", json_str(m->operator_user_id));
	json_object_set_new(o, "ex", json_str(m->ex));
	json_object_set_new(o, "muteEndTime", json_integer(m->mute_end_time));
	json_object_set_new(o, "inviterUserID", json_str(m->inviter_user_id));
	return o;
}

/* Member or app admin; answers 1203/1201 and returns false otherwise. */
static bool require_member(struct api_req *r, struct eng_rtxn *rt, struct im_str gid,
			   struct eng_group *g)
{
	if (eng_group_get(rt, gid, g) != 0) {
		api_fail(r, OI_GROUP_NOT_FOUND, "group %.*s not found", (int)gid.n, gid.p);
		return false;
	}
	struct eng_member m;
	if (r->who.admin || eng_member_get(rt, gid, im_str_c(r->who.user_id), &m) == 0)
		return true;
	api_fail(r, OI_NOT_IN_GROUP, "opUser %s is not in group %.*s", r->who.user_id, (int)gid.n,
		 gid.p);
	return false;
}

/* ---------------------------------------------------------------- create */

static bool ids_distinct(struct api_req *r, const struct im_str *ids, size_t n);

#define GRP_TIPS_MEMBERS 100 /* members listed in the 1501 tips */

struct create_state {
	char group_id[32];
	struct msg_notif_bufs nb[2];
};

static void create_done(struct api_req *r, int status, const struct eng_result *res)
{
	struct create_state *st = r->state;
	im_buf_free(&st->nb[0].data);
	im_buf_free(&st->nb[1].data);
	if (res->code == IM_EEXIST) {
		api_fail(r, OI_GROUP_EXISTED, "%s", res->detail);
		return;
	}
	if (res->code == IM_ENOTFOUND) {
		api_fail(r, OI_USER_NOT_FOUND, "%s", res->detail);
		return;
	}
	if (res->code != 0) {
		api_fail_im(r, res->code, res->detail);
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_group g;
	if (eng_group_get(rt, im_str_c(st->group_id), &g) != 0) {
		api_fail(r, OI_SERVER_INTERNAL, "created group vanished");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "groupInfo", api_group_json(&g));
	api_reply(r, d);
}

static void create_group(struct api_req *r)
{
	struct im_str owner, *members = NULL, *admins = NULL;
	size_t n_members = 0, n_admins = 0;
	json_t *gi = NULL;
	struct json_err e;
	if (!api_str(r, r->body, "ownerUserID", &owner))
		return;
	if (json_get_obj(r->body, "groupInfo", &gi, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return;
	}
	if (gi == NULL) {
		api_fail(r, OI_ARGS, "groupInfo is empty");
		return;
	}
	struct eng_group g = {0};
	if (!api_str(r, gi, "groupID", &g.group_id) ||
	    !api_str(r, gi, "groupName", &g.group_name) ||
	    !api_str(r, gi, "notification", &g.notification) ||
	    !api_str(r, gi, "introduction", &g.introduction) ||
	    !api_str(r, gi, "faceURL", &g.face_url) || !api_str(r, gi, "ex", &g.ex) ||
	    !api_i32(r, gi, "groupType", &g.group_type, NULL) ||
	    !api_i32(r, gi, "needVerification", &g.need_verification, NULL) ||
	    !api_i32(r, gi, "lookMemberInfo", &g.look_member_info, NULL) ||
	    !api_i32(r, gi, "applyMemberFriend", &g.apply_member_friend, NULL))
		return;
	if (!api_require_self_or_admin(r, owner))
		return;
	if (g.group_type != 2) {
		api_fail(r, OI_ARGS, "groupType must be 2 (WorkingGroup)");
		return;
	}
	if (!api_strs(r, r->body, "memberUserIDs", &members, &n_members))
		return;
	if (!api_strs(r, r->body, "adminUserIDs", &admins, &n_admins)) {
		im_free(members);
		return;
	}
	size_t total = 1 + n_members + n_admins;
	struct eng_member *list = NULL;
	struct create_state *st = im_calloc(1, sizeof(*st));
	if (total > ENG_MEMBERS_MAX || st == NULL ||
	    (list = im_calloc(total, sizeof(*list))) == NULL) {
		im_free(members);
		im_free(admins);
		im_free(st);
		api_fail(r, OI_ARGS, "too many members (at most %d)", ENG_MEMBERS_MAX);
		return;
	}
	r->state = st;
	int64_t now = r->s->now_ms();
	size_t n = 0;
	/* The owner first, then admins, then members; a repeated id is an error (§3.4). */
	list[n++] = (struct eng_member){.user_id = owner, .role_level = GRP_OWNER};
	for (size_t i = 0; i < n_admins; i++)
		list[n++] = (struct eng_member){.user_id = admins[i], .role_level = GRP_ADMIN};
	for (size_t i = 0; i < n_members; i++)
		list[n++] = (struct eng_member){.user_id = members[i], .role_level = GRP_MEMBER};
	struct im_str *all = im_malloc(n * sizeof(*all));
	if (all == NULL) {
		api_fail_im(r, -ENOMEM, "create group");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		all[i] = list[i].user_id;
	bool distinct = ids_distinct(r, all, n);
	im_free(all);
	if (!distinct)
		goto out;
	if (g.group_id.n == 0) {
		/* OpenIM generates a decimal id; ours is random and checked below. */
		uint64_t rnd = 0;
		im_random(&rnd, sizeof(rnd));
		snprintf(st->group_id, sizeof(st->group_id), "%llu",
			 (unsigned long long)(rnd % 9000000000ull + 1000000000ull));
	} else if (g.group_id.n >= sizeof(st->group_id) || memchr(g.group_id.p, 0, g.group_id.n)) {
		api_fail(r, OI_ARGS, "groupID too long");
		goto out;
	} else {
		memcpy(st->group_id, g.group_id.p, g.group_id.n);
	}
	g.group_id = im_str_c(st->group_id);
	g.owner_user_id = owner;
	g.creator_user_id = r->who.admin ? im_str_c(r->who.user_id) : owner;
	g.create_time = now;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		goto out;
	struct eng_group old;
	if (eng_group_get(rt, g.group_id, &old) == 0) {
		api_fail(r, OI_GROUP_EXISTED, "group %s exists", st->group_id);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct eng_user u;
		if (eng_user_get(rt, list[i].user_id, &u) != 0) {
			api_fail(r, OI_USER_NOT_FOUND, "userID %.*s not found",
				 (int)list[i].user_id.n, list[i].user_id.p);
			goto out;
		}
		list[i].group_id = g.group_id;
		list[i].join_time = now;
		list[i].join_source = 2;
		list[i].operator_user_id = im_str_c(r->who.user_id);
		list[i].inviter_user_id = owner;
	}
	/*
	 * 1501 GroupCreated (§11): one copy pushed in n_<group> (not stored) and
	 * one stored in sg_<group> as the conversation's first tip, sent by the
	 * operator.  The tips carry the group as created and its member log.
	 */
	struct eng_group created = g;
	created.member_count = (uint32_t)n;
	struct im_str op_user = im_str_c(r->who.user_id);
	json_t *member_list = json_array(), *op_json = NULL;
	for (size_t i = 0; i < n; i++) {
		/* The first GRP_TIPS_MEMBERS only: the tips must fit one message (ENG_MSG_MAX);
		 * the SDKs take the members from the member log, not from this list. */
		if (i < GRP_TIPS_MEMBERS)
			json_array_append_new(member_list, api_member_json(&list[i]));
		if (im_str_eq(list[i].user_id, op_user))
			op_json = api_member_json(&list[i]);
	}
	if (op_json == NULL) {
		struct eng_member op = {
		    .group_id = g.group_id, .user_id = op_user, .join_time = now};
		op_json = api_member_json(&op);
	}
	json_t *ver = sync_full_answer(MEMBER_LOG, g.group_id);
	struct eng_msg_item items[2];
	int rv = 0;
	for (int k = 0; k < 2 && rv == 0; k++) {
		json_t *tips = json_object();
		json_object_set_new(tips, "group", api_group_json(&created));
		json_object_set(tips, "opUser", op_json);
		json_object_set(tips, "memberList", member_list);
		json_object_set_new(tips, "operationTime", json_integer(now));
		json_object_set_new(tips, "groupOwnerUser", api_member_json(&list[0]));
		json_object_set(tips, "groupMemberVersion", json_object_get(ver, "version"));
		json_object_set(tips, "groupMemberVersionID", json_object_get(ver, "versionID"));
		rv = msg_notification(r->s, k == 0 ? MSG_NOTIF_STREAM_ONLINE : MSG_NOTIF_CHAT_COPY,
				      1501, 3, op_user, IM_STR_LIT(""), g.group_id, tips, r->op_id,
				      &st->nb[k], &items[k]);
	}
	json_decref(ver);
	json_decref(op_json);
	json_decref(member_list);
	if (rv != 0) {
		im_buf_free(&st->nb[0].data);
		im_buf_free(&st->nb[1].data);
		api_fail_im(r, rv, "group created notification");
		goto out;
	}
	struct eng_cmd cmd = {
	    .type = ENG_CMD_GROUP_CREATE, .now_ms = now, .n_items = 2, .items = items};
	cmd.m.group_create.group = g;
	cmd.m.group_create.n_members = (uint32_t)n;
	cmd.m.group_create.members = list;
	api_propose(r, &cmd, create_done);
out:
	im_free(list);
	im_free(members);
	im_free(admins);
}

/* ---------------------------------------------------------------- invite, kick, quit */

/*
 * Membership changes (§3.4, §8.2): one GROUP_MEMBERS_ADD / _REMOVE command
 * carrying its tips (1509 MemberInvited, 1508 MemberKicked, 1504 MemberQuit)
 * twice, like create_group: an online copy in n_<group> and a stored chat
 * copy in sg_<group> (isSendMsg, §8.5).  The engine adds the removed users
 * to the pushes of the group items of a removal (eng_event.extra), so the
 * leavers receive their 1504/1508 on every node although they are no longer
 * members.  With needVerification 1 an ordinary member's invitations become
 * join requests instead (routes_group_req.c).
 */
/* ---------------------------------------------------------------- shared helpers */

bool grp_id_list_has(const struct im_str *ids, size_t n, struct im_str id)
{
	for (size_t i = 0; i < n; i++)
		if (im_str_eq(ids[i], id))
			return true;
	return false;
}

bool grp_live(struct api_req *r, struct eng_rtxn *rt, struct im_str gid, struct eng_group *g)
{
	if (eng_group_get(rt, gid, g) != 0) {
		api_fail(r, OI_GROUP_NOT_FOUND, "group %.*s not found", (int)gid.n, gid.p);
		return false;
	}
	if (g->status == 2) {
		api_fail(r, OI_DISMISSED, "group %.*s dismissed", (int)gid.n, gid.p);
		return false;
	}
	return true;
}

int32_t grp_role(struct api_req *r, struct eng_rtxn *rt, struct im_str gid, struct eng_member *me)
{
	struct eng_member m;
	if (me == NULL)
		me = &m;
	if (eng_member_get(rt, gid, im_str_c(r->who.user_id), me) != 0) {
		*me = (struct eng_member){.group_id = gid, .user_id = im_str_c(r->who.user_id)};
		return r->who.admin ? GRP_APP_ADMIN : 0;
	}
	return r->who.admin ? GRP_APP_ADMIN : me->role_level;
}

json_t *grp_op_json(struct eng_rtxn *rt, struct im_str gid, struct im_str op)
{
	struct eng_member m;
	if (eng_member_get(rt, gid, op, &m) == 0)
		return api_member_json(&m);
	struct eng_member bare = {.group_id = gid, .user_id = op};
	return api_member_json(&bare);
}

json_t *grp_public_user_json(struct eng_rtxn *rt, struct im_str uid)
{
	struct eng_user u = {.user_id = uid};
	eng_user_get(rt, uid, &u);
	json_t *o = json_object();
	json_object_set_new(o, "userID", json_str(uid));
	json_object_set_new(o, "nickname", json_str(u.nickname));
	json_object_set_new(o, "faceURL", json_str(u.face_url));
	json_object_set_new(o, "ex", json_str(u.ex));
	return o;
}

void grp_tips_versions(json_t *tips, const struct sync_vlog *v)
{
	json_object_set_new(tips, "groupMemberVersion", json_integer((json_int_t)v->version));
	json_object_set_new(tips, "groupMemberVersionID", json_string(v->version_id));
}

struct grp_notes *grp_notes_new(void)
{
	return im_calloc(1, sizeof(struct grp_notes));
}

void grp_notes_free(struct grp_notes *gn)
{
	if (gn == NULL)
		return;
	for (uint32_t i = 0; i < GRP_NOTES_MAX; i++)
		im_buf_free(&gn->nb[i].data);
	im_free(gn);
}

static int note_add(struct api_req *r, struct grp_notes *gn, enum msg_notif_mode mode, int32_t ct,
		    int32_t session, struct im_str sender, struct im_str recv, struct im_str gid,
		    json_t *tips)
{
	if (gn == NULL || gn->n == GRP_NOTES_MAX) {
		json_decref(tips);
		return gn == NULL ? -ENOMEM : IM_ETOOBIG;
	}
	int rv = msg_notification(r->s, mode, ct, session, sender, recv, gid, tips, r->op_id,
				  &gn->nb[gn->n], &gn->items[gn->n]);
	if (rv == 0)
		gn->n++;
	return rv;
}

int grp_note_group(struct api_req *r, struct grp_notes *gn, int32_t ct, bool chat_copy,
		   struct im_str sender, struct im_str gid, json_t *tips)
{
	if (chat_copy) {
		json_incref(tips);
		int rv = note_add(r, gn, MSG_NOTIF_STREAM_ONLINE, ct, 3, sender, IM_STR_LIT(""),
				  gid, tips);
		if (rv != 0) {
			json_decref(tips);
			return rv;
		}
		return note_add(r, gn, MSG_NOTIF_CHAT_COPY, ct, 3, sender, IM_STR_LIT(""), gid,
				tips);
	}
	return note_add(r, gn, MSG_NOTIF_STREAM_ONLINE, ct, 3, sender, IM_STR_LIT(""), gid, tips);
}

int grp_note_user(struct api_req *r, struct grp_notes *gn, int32_t ct, struct im_str sender,
		  struct im_str recv, json_t *tips)
{
	return note_add(r, gn, MSG_NOTIF_STREAM_ONLINE, ct, 1, sender, recv, IM_STR_LIT(""), tips);
}

void grp_notes_propose(struct api_req *r, struct grp_notes *gn, int rv, struct eng_cmd *cmd,
		       api_done done)
{
	if (rv == 0 && gn == NULL)
		rv = -ENOMEM;
	if (rv != 0) {
		grp_notes_free(gn);
		api_fail_im(r, rv, "group notification");
		return;
	}
	cmd->n_items = gn->n;
	cmd->items = gn->n ? gn->items : NULL;
	/* The command is encoded before api_propose returns: the buffers may go. */
	api_propose(r, cmd, done);
	grp_notes_free(gn);
}

void grp_change_done(struct api_req *r, int status, const struct eng_result *res)
{
	switch (res->code) {
	case 0:
		api_reply(r, NULL);
		return;
	case IM_EPERM:
		api_fail(r, OI_NO_PERMISSION, "%s", res->detail);
		return;
	case IM_EEXIST:
		api_fail(r, OI_ARGS, "%s", res->detail);
		return;
	case IM_ENOTFOUND:
		api_fail(r, OI_RECORD_NOT_FOUND, "%s", res->detail);
		return;
	default:
		api_fail_im(r, res->code, res->detail);
	}
}

struct managers {
	struct im_str *out;
	size_t n, max;
};

static int managers_cb(const struct eng_member *m, void *arg)
{
	struct managers *mg = arg;
	if (m->role_level >= GRP_ADMIN && mg->n < mg->max)
		mg->out[mg->n++] = m->user_id;
	return 0;
}

size_t grp_managers(struct eng_rtxn *rt, struct im_str gid, struct im_str *out, size_t max)
{
	struct managers mg = {out, 0, max};
	eng_member_scan(rt, gid, managers_cb, &mg);
	return mg.n;
}

/*
 * Builds the tips of a membership change (list_key: the affected members,
 * stolen) and proposes cmd.  g is the group before the change; delta its
 * member change.
 */
static void change_propose(struct api_req *r, struct eng_rtxn *rt, struct eng_group *g,
			   int64_t delta, int32_t ct, struct im_str sender, const char *list_key,
			   json_t *list, json_t *op_json, struct eng_cmd *cmd, api_done done)
{
	struct grp_notes *gn = grp_notes_new();
	struct sync_vlog v;
	int rv = gn == NULL ? -ENOMEM
			    : sync_vlog_after(rt, ENG_VLOG_GROUP_MEMBER, MEMBER_LOG, g->group_id,
					      true, &v);
	if (rv == 0) {
		struct eng_group after = *g;
		after.member_count = (uint32_t)((int64_t)g->member_count + delta);
		json_t *tips = json_object();
		json_object_set_new(tips, "group", api_group_json(&after));
		if (ct == 1504) {
			json_object_set(tips, "quitUser", json_array_get(list, 0));
		} else {
			json_object_set(tips, "opUser", op_json);
			json_object_set(tips, list_key, list);
		}
		json_object_set_new(tips, "operationTime", json_integer(cmd->now_ms));
		grp_tips_versions(tips, &v);
		if (ct == 1509)
			json_object_set(tips, "inviterUser", op_json);
		rv = grp_note_group(r, gn, ct, true, sender, g->group_id, tips);
	}
	json_decref(list);
	json_decref(op_json);
	grp_notes_propose(r, gn, rv, cmd, done);
}

/*
 * Invitations and kicks of many users go as consecutive commands of at most
 * GRP_BATCH users (OpenIM adds invited members in batches of 50), each with
 * its own tips and member-log version, so every notification fits a message
 * and names exactly the users its command changed.  The answer comes after
 * the last batch; a batch that fails stops the run and is answered (the
 * batches before it stay applied, as in OpenIM).
 */
#define GRP_BATCH 50

struct batch {
	int32_t ct; /* 1509 invite, 1508 kick */
	struct im_str gid;
	size_t n, next;
	struct im_str ids[]; /* views into the request body */
};

static void batch_step(struct api_req *r);

static void batch_done(struct api_req *r, int status, const struct eng_result *res)
{
	struct batch *b = r->state;
	if (res->code != 0) {
		grp_change_done(r, status, res);
		return;
	}
	b->next += IM_MIN((size_t)GRP_BATCH, b->n - b->next);
	if (b->next < b->n)
		batch_step(r);
	else
		api_reply(r, NULL);
}

static void batch_step(struct api_req *r)
{
	struct batch *b = r->state;
	size_t k = IM_MIN((size_t)GRP_BATCH, b->n - b->next);
	struct im_str *ids = b->ids + b->next;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !grp_live(r, rt, b->gid, &g))
		return;
	struct im_str op = im_str_c(r->who.user_id);
	struct eng_cmd cmd = {.now_ms = r->s->now_ms()};
	struct eng_member list[GRP_BATCH];
	json_t *arr = json_array();
	for (size_t i = 0; i < k; i++) {
		if (b->ct == 1509) {
			list[i] = (struct eng_member){.group_id = b->gid,
						      .user_id = ids[i],
						      .role_level = GRP_MEMBER,
						      .join_time = cmd.now_ms,
						      .join_source = 2,
						      .operator_user_id = op,
						      .inviter_user_id = op};
		} else if (eng_member_get(rt, b->gid, ids[i], &list[i]) != 0) {
			json_decref(arr);
			api_fail(r, OI_RECORD_NOT_FOUND, "userID %.*s not in group", (int)ids[i].n,
				 ids[i].p);
			return;
		}
		json_array_append_new(arr, api_member_json(&list[i]));
	}
	if (b->ct == 1509) {
		cmd.type = ENG_CMD_GROUP_MEMBERS_ADD;
		cmd.m.group_members_add.group_id = b->gid;
		cmd.m.group_members_add.n_members = (uint32_t)k;
		cmd.m.group_members_add.members = list;
		cmd.m.group_members_add.hide_history = !r->s->cfg->history_for_new_members;
		change_propose(r, rt, &g, (int64_t)k, 1509, op, "invitedUserList", arr,
			       grp_op_json(rt, b->gid, op), &cmd, batch_done);
	} else {
		cmd.type = ENG_CMD_GROUP_MEMBERS_REMOVE;
		cmd.m.group_members_remove.group_id = b->gid;
		cmd.m.group_members_remove.n_users = (uint32_t)k;
		cmd.m.group_members_remove.user_ids = ids;
		cmd.m.group_members_remove.reason = ENG_GROUP_KICK;
		change_propose(r, rt, &g, -(int64_t)k, 1508, op, "kickedUserList", arr,
			       grp_op_json(rt, b->gid, op), &cmd, batch_done);
	}
}

/* Starts the batches of a checked invitation or kick (ids: n of them). */
static void batch_start(struct api_req *r, int32_t ct, struct im_str gid, const struct im_str *ids,
			size_t n)
{
	struct batch *b = im_malloc(sizeof(*b) + n * sizeof(b->ids[0]));
	if (b == NULL) {
		api_fail_im(r, -ENOMEM, "group change");
		return;
	}
	*b = (struct batch){.ct = ct, .gid = gid, .n = n};
	memcpy(b->ids, ids, n * sizeof(ids[0]));
	r->state = b;
	batch_step(r); /* the first on the snapshot the checks used, the others on fresh ones */
}

static int cmp_str(const void *a, const void *b)
{
	const struct im_str *x = a, *y = b;
	int c = memcmp(x->p, y->p, IM_MIN(x->n, y->n));
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* An id listed twice in ids (n of them), or NULL: O(n log n). */
static const struct im_str *repeated_id(const struct im_str *ids, size_t n, struct im_str *tmp)
{
	memcpy(tmp, ids, n * sizeof(*ids));
	qsort(tmp, n, sizeof(*tmp), cmp_str);
	for (size_t i = 1; i < n; i++)
		if (im_str_eq(tmp[i - 1], tmp[i]))
			return &tmp[i];
	return NULL;
}

/* 1001 when ids repeats one; false after answering. */
static bool ids_distinct(struct api_req *r, const struct im_str *ids, size_t n)
{
	struct im_str *tmp = im_malloc((n ? n : 1) * sizeof(*tmp));
	if (tmp == NULL) {
		api_fail_im(r, -ENOMEM, "ids");
		return false;
	}
	const struct im_str *d = repeated_id(ids, n, tmp);
	if (d != NULL)
		api_fail(r, OI_ARGS, "userID %.*s repeated", (int)d->n, d->p);
	im_free(tmp);
	return d == NULL;
}

static void invite_user_to_group(struct api_req *r)
{
	struct im_str gid, *ids = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "groupID", &gid) ||
	    !api_strs(r, r->body, "invitedUserIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !grp_live(r, rt, gid, &g) || !require_member(r, rt, gid, &g))
		goto out;
	if (n == 0 || n > ENG_MEMBERS_MAX) {
		api_fail(r, OI_ARGS, "invitedUserIDs: 1..%d ids", ENG_MEMBERS_MAX);
		goto out;
	}
	if (!ids_distinct(r, ids, n))
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct eng_user u;
		struct eng_member m;
		if (eng_user_get(rt, ids[i], &u) != 0) {
			api_fail(r, OI_USER_NOT_FOUND, "userID %.*s not found", (int)ids[i].n,
				 ids[i].p);
			goto out;
		}
		if (eng_member_get(rt, gid, ids[i], &m) == 0) {
			api_fail(r, OI_ARGS, "user in group %.*s", (int)ids[i].n, ids[i].p);
			goto out;
		}
	}
	if (g.need_verification == 1 && grp_role(r, rt, gid, NULL) < GRP_ADMIN) {
		/* needVerification 1: an ordinary member's invitations wait for approval. */
		grp_invite_requests(r, rt, &g, ids, n);
		goto out;
	}
	batch_start(r, 1509, gid, ids, n);
out:
	im_free(ids);
}

static void kick_group(struct api_req *r)
{
	struct im_str gid, *ids = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "groupID", &gid) ||
	    !api_strs(r, r->body, "kickedUserIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !grp_live(r, rt, gid, &g))
		goto out;
	if (n == 0 || n > ENG_MEMBERS_MAX) {
		api_fail(r, OI_ARGS, "kickedUserIDs: 1..%d ids", ENG_MEMBERS_MAX);
		goto out;
	}
	struct im_str op = im_str_c(r->who.user_id);
	int32_t my_role = grp_role(r, rt, gid, NULL);
	if (my_role < GRP_ADMIN) {
		api_fail(r, OI_NO_PERMISSION, "only the owner or an admin may kick");
		goto out;
	}
	if (!ids_distinct(r, ids, n))
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct eng_member m;
		if (im_str_eq(ids[i], op)) {
			api_fail(r, OI_ARGS, "userID %.*s is the operator", (int)ids[i].n,
				 ids[i].p);
			goto out;
		}
		if (eng_member_get(rt, gid, ids[i], &m) != 0) {
			api_fail(r, OI_RECORD_NOT_FOUND, "userID %.*s not in group", (int)ids[i].n,
				 ids[i].p);
			goto out;
		}
		/* The owner never leaves; an admin kicks ordinary members only. */
		if (m.role_level == GRP_OWNER ||
		    (my_role == GRP_ADMIN && m.role_level >= GRP_ADMIN)) {
			api_fail(r, OI_NO_PERMISSION, "cannot kick %.*s", (int)ids[i].n, ids[i].p);
			goto out;
		}
	}
	batch_start(r, 1508, gid, ids, n);
out:
	im_free(ids);
}

static void quit_group(struct api_req *r)
{
	struct im_str gid, uid;
	if (!api_str(r, r->body, "groupID", &gid) || !api_str(r, r->body, "userID", &uid))
		return;
	if (!api_require_self_or_admin(r, uid))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	struct eng_member m;
	if (rt == NULL || !grp_live(r, rt, gid, &g))
		return;
	if (eng_member_get(rt, gid, uid, &m) != 0) {
		api_fail(r, OI_NOT_IN_GROUP, "%.*s is not in group %.*s", (int)uid.n, uid.p,
			 (int)gid.n, gid.p);
		return;
	}
	if (m.role_level == 100) {
		api_fail(r, OI_NO_PERMISSION, "the owner cannot quit");
		return;
	}
	json_t *arr = json_array();
	json_array_append_new(arr, api_member_json(&m));
	struct eng_cmd cmd = {.type = ENG_CMD_GROUP_MEMBERS_REMOVE, .now_ms = r->s->now_ms()};
	cmd.m.group_members_remove.group_id = gid;
	cmd.m.group_members_remove.n_users = 1;
	cmd.m.group_members_remove.user_ids = &uid;
	cmd.m.group_members_remove.reason = ENG_GROUP_QUIT;
	change_propose(r, rt, &g, -1, 1504, uid, NULL, arr, NULL, &cmd, grp_change_done);
}

/* ---------------------------------------------------------------- reads */

static void get_groups_info(struct api_req *r)
{
	struct im_str *ids = NULL;
	size_t n = 0;
	if (!api_strs(r, r->body, "groupIDs", &ids, &n))
		return;
	if (n == 0) {
		api_fail(r, OI_ARGS, "groupIDs is empty");
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL) {
		im_free(ids);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_group g;
		if (!grp_id_list_has(ids, i, ids[i]) && eng_group_get(rt, ids[i], &g) == 0)
			json_array_append_new(arr, api_group_json(&g));
	}
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "groupInfos", api_null_if_empty(arr));
	api_reply(r, d);
}

static void get_group_members_info(struct api_req *r)
{
	struct im_str gid, *ids = NULL;
	size_t n = 0;
	if (!api_str(r, r->body, "groupID", &gid) || !api_strs(r, r->body, "userIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !require_member(r, rt, gid, &g)) {
		im_free(ids);
		return;
	}
	if (n == 0) {
		im_free(ids);
		api_fail(r, OI_ARGS, "userIDs empty");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_member m;
		if (!grp_id_list_has(ids, i, ids[i]) && eng_member_get(rt, gid, ids[i], &m) == 0)
			json_array_append_new(arr, api_member_json(&m));
	}
	im_free(ids);
	json_t *d = json_object();
	json_object_set_new(d, "members", api_null_if_empty(arr));
	api_reply(r, d);
}

struct member_page {
	uint64_t offset, limit, total;
	struct im_str keyword;
	json_t *arr;
};

static int member_page_cb(const struct eng_member *m, void *arg)
{
	struct member_page *p = arg;
	if (p->keyword.n && !memmem(m->user_id.p, m->user_id.n, p->keyword.p, p->keyword.n) &&
	    !memmem(m->nickname.p, m->nickname.n, p->keyword.p, p->keyword.n))
		return 0;
	uint64_t i = p->total++;
	if (i >= p->offset && (p->limit == 0 || i < p->offset + p->limit))
		json_array_append_new(p->arr, api_member_json(m));
	return 0;
}

static void get_group_member_list(struct api_req *r)
{
	struct member_page p = {0};
	struct im_str gid;
	if (!api_str(r, r->body, "groupID", &gid) || !api_str(r, r->body, "keyword", &p.keyword) ||
	    !api_pagination(r, r->body, &p.offset, &p.limit))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !require_member(r, rt, gid, &g))
		return;
	p.arr = json_array();
	eng_member_scan(rt, gid, member_page_cb, &p);
	json_t *d = json_object();
	json_object_set_new(d, "total", json_integer((json_int_t)p.total));
	json_object_set_new(d, "members", api_null_if_empty(p.arr));
	api_reply(r, d);
}

static int collect_member_id(const struct eng_member *m, void *arg)
{
	json_array_append_new(arg, json_str(m->user_id));
	return 0;
}

static void get_group_member_user_id(struct api_req *r)
{
	struct im_str gid;
	if (!api_str(r, r->body, "groupID", &gid))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !require_member(r, rt, gid, &g))
		return;
	json_t *arr = json_array();
	eng_member_scan(rt, gid, collect_member_id, arr);
	json_t *d = json_object();
	json_object_set_new(d, "userIDs", api_null_if_empty(arr));
	api_reply(r, d);
}

struct joined {
	struct eng_rtxn *rt;
	uint64_t offset, limit, total;
	json_t *arr;
	bool ids_only;
};

static int joined_cb(struct im_str gid, void *arg)
{
	struct joined *j = arg;
	struct eng_group g;
	if (eng_group_get(j->rt, gid, &g) != 0 || g.status == 2)
		return 0;
	uint64_t i = j->total++;
	if (i < j->offset || (j->limit && i >= j->offset + j->limit))
		return 0;
	json_array_append_new(j->arr, j->ids_only ? json_str(gid) : api_group_json(&g));
	return 0;
}

static void get_joined_group_list(struct api_req *r)
{
	struct im_str uid;
	struct joined j = {0};
	if (!api_str(r, r->body, "fromUserID", &uid) ||
	    !api_pagination(r, r->body, &j.offset, &j.limit))
		return;
	if (!api_require_self_or_admin(r, uid))
		return;
	if ((j.rt = api_read(r)) == NULL)
		return;
	j.arr = json_array();
	eng_user_group_scan(j.rt, uid, joined_cb, &j);
	json_t *d = json_object();
	json_object_set_new(d, "total", json_integer((json_int_t)j.total));
	json_object_set_new(d, "groups", api_null_if_empty(j.arr));
	api_reply(r, d);
}

static void get_full_join_group_ids(struct api_req *r)
{
	struct im_str uid;
	int64_t id_hash = 0;
	if (!api_str(r, r->body, "userID", &uid) || !api_i64(r, r->body, "idHash", &id_hash, NULL))
		return;
	if (!api_require_self_or_admin(r, uid))
		return;
	struct joined j = {.ids_only = true};
	if ((j.rt = api_read(r)) == NULL)
		return;
	j.arr = json_array();
	eng_user_group_scan(j.rt, uid, joined_cb, &j);
	int err = 0;
	json_t *d = sync_vlog_full_ids(j.rt, ENG_VLOG_JOIN_GROUP, JOIN_LOG, uid, "groupIDs", j.arr,
				       id_hash, &err);
	if (d == NULL)
		api_fail_im(r, err, "version log");
	else
		api_reply(r, d);
}

static void get_full_group_member_user_ids(struct api_req *r)
{
	struct im_str gid;
	int64_t id_hash = 0;
	if (!api_str(r, r->body, "groupID", &gid) || !api_i64(r, r->body, "idHash", &id_hash, NULL))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !require_member(r, rt, gid, &g))
		return;
	json_t *arr = json_array();
	eng_member_scan(rt, gid, collect_member_id, arr);
	int err = 0;
	json_t *d = sync_vlog_full_ids(rt, ENG_VLOG_GROUP_MEMBER, MEMBER_LOG, gid, "userIDs", arr,
				       id_hash, &err);
	if (d == NULL)
		api_fail_im(r, err, "version log");
	else
		api_reply(r, d);
}

/* A joined group's GroupInfo (insert/update of the join-group log), NULL if gone. */
static json_t *group_obj(struct eng_rtxn *rt, struct im_str doc, struct im_str elem, void *arg)
{
	struct eng_group g;
	return eng_group_get(rt, elem, &g) == 0 ? api_group_json(&g) : NULL;
}

/* A member's GroupMemberFullInfo (group-member log), NULL if gone or a marker. */
static json_t *member_obj(struct eng_rtxn *rt, struct im_str doc, struct im_str elem, void *arg)
{
	struct eng_member m;
	return elem.n && eng_member_get(rt, doc, elem, &m) == 0 ? api_member_json(&m) : NULL;
}

static void get_incremental_join_groups(struct api_req *r)
{
	struct im_str uid;
	if (!api_str(r, r->body, "userID", &uid))
		return;
	struct im_str vid = {0};
	int64_t version = 0;
	if (!api_str(r, r->body, "versionID", &vid) ||
	    !api_i64(r, r->body, "version", &version, NULL))
		return;
	if (!api_require_self_or_admin(r, uid))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	int err = 0;
	json_t *d =
	    sync_incremental(rt, ENG_VLOG_JOIN_GROUP, JOIN_LOG, uid, vid,
			     version < 0 ? 0 : (uint64_t)version, false, group_obj, NULL, &err);
	if (d == NULL)
		api_fail_im(r, err, "version log");
	else
		api_reply(r, d);
}

static void get_incremental_group_members_batch(struct api_req *r)
{
	struct im_str uid;
	json_t *list = NULL;
	struct json_err e;
	if (!api_str(r, r->body, "userID", &uid))
		return;
	if (json_get_array(r->body, "reqList", &list, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	json_t *map = json_object();
	for (size_t i = 0; list && i < json_array_size(list); i++) {
		json_t *item = json_array_get(list, i);
		struct im_str gid;
		if (!json_is_object(item)) {
			json_decref(map);
			api_fail(r, OI_ARGS, "reqList items must be objects");
			return;
		}
		struct im_str vid = {0};
		int64_t version = 0;
		if (!api_str(r, item, "groupID", &gid) || !api_str(r, item, "versionID", &vid) ||
		    !api_i64(r, item, "version", &version, NULL)) {
			json_decref(map);
			return;
		}
		struct eng_group g;
		struct eng_member m;
		/* Dismissed groups are skipped silently (§3.4); others need membership. */
		if (eng_group_get(rt, gid, &g) != 0 || g.status == 2)
			continue;
		if (!r->who.admin && eng_member_get(rt, gid, im_str_c(r->who.user_id), &m) != 0) {
			json_decref(map);
			api_fail(r, OI_NOT_IN_GROUP, "not in group %.*s", (int)gid.n, gid.p);
			return;
		}
		/* Go emits null, never [], for the empty lists: the JS SDK relies on it (§2.2). */
		int err = 0;
		json_t *one = sync_incremental(rt, ENG_VLOG_GROUP_MEMBER, MEMBER_LOG, gid, vid,
					       version < 0 ? 0 : (uint64_t)version, true,
					       member_obj, NULL, &err);
		if (one == NULL) {
			json_decref(map);
			api_fail_im(r, err, "version log");
			return;
		}
		json_object_set_new(one, "group", api_group_json(&g));
		char key[ENG_ID_MAX + 1];
		snprintf(key, sizeof(key), "%.*s", (int)gid.n, gid.p);
		json_object_set_new(map, key, one);
	}
	json_t *d = json_object();
	json_object_set_new(d, "respList", map);
	api_reply(r, d);
}

static int collect_member(const struct eng_member *m, void *arg)
{
	json_array_append_new(arg, api_member_json(m));
	return 0;
}

/*
 * get_group_abstract_info (§3.4): member count and OpenIM's member-list hash
 * (MD5 over the Go JSON of the members in userID order, first 8 bytes).
 */
static void get_group_abstract_info(struct api_req *r)
{
	struct im_str *ids = NULL;
	size_t n = 0;
	if (!api_strs(r, r->body, "groupIDs", &ids, &n))
		return;
	struct eng_rtxn *rt = NULL;
	json_t *arr = NULL;
	if (n == 0) {
		api_fail(r, OI_ARGS, "groupIDs empty");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (grp_id_list_has(ids, i, ids[i])) {
			api_fail(r, OI_ARGS, "groupIDs duplicate");
			goto out;
		}
	if ((rt = api_read(r)) == NULL)
		goto out;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct eng_group g;
		if (eng_group_get(rt, ids[i], &g) != 0) {
			json_decref(arr);
			api_fail(r, OI_GROUP_NOT_FOUND, "not found group %.*s", (int)ids[i].n,
				 ids[i].p);
			goto out;
		}
		json_t *members = json_array();
		eng_member_scan(rt, ids[i], collect_member, members);
		json_t *o = json_object();
		json_object_set_new(o, "groupID", json_str(ids[i]));
		json_object_set_new(o, "groupMemberNumber", json_integer(g.member_count));
		json_object_set_new(o, "groupMemberListHash",
				    json_integer((json_int_t)sync_id_hash(members)));
		json_decref(members);
		json_array_append_new(arr, o);
	}
	json_t *d = json_object();
	json_object_set_new(d, "groupAbstractInfos", api_null_if_empty(arr));
	api_reply(r, d);
out:
	im_free(ids);
}

/* CMSGroup: the group with its owner's id and group nickname. */
static json_t *cms_group_json(struct eng_rtxn *rt, const struct eng_group *g)
{
	struct eng_member owner = {0};
	eng_member_get(rt, g->group_id, g->owner_user_id, &owner);
	json_t *o = json_object();
	json_object_set_new(o, "groupInfo", api_group_json(g));
	json_object_set_new(o, "groupOwnerUserName", json_str(owner.nickname));
	json_object_set_new(o, "groupOwnerUserID", json_str(g->owner_user_id));
	return o;
}

struct group_search {
	struct eng_rtxn *rt;
	struct im_str name;
	uint64_t offset, limit, total;
	json_t *arr;
};

static int group_search_cb(const struct eng_group *g, void *arg)
{
	struct group_search *q = arg;
	if (q->name.n && !memmem(g->group_name.p, g->group_name.n, q->name.p, q->name.n))
		return 0;
	uint64_t i = q->total++;
	if (i >= q->offset && (q->limit == 0 || i < q->offset + q->limit))
		json_array_append_new(q->arr, cms_group_json(q->rt, g));
	return 0;
}

/* get_groups (§3.4, the CMS search): by groupID, or by a name substring, paged. */
static void get_groups(struct api_req *r)
{
	struct group_search q = {0};
	struct im_str gid;
	if (!api_str(r, r->body, "groupID", &gid) || !api_str(r, r->body, "groupName", &q.name) ||
	    !api_pagination(r, r->body, &q.offset, &q.limit))
		return;
	if ((q.rt = api_read(r)) == NULL)
		return;
	q.arr = json_array();
	if (gid.n) {
		struct eng_group g;
		if (eng_group_get(q.rt, gid, &g) == 0) {
			json_array_append_new(q.arr, cms_group_json(q.rt, &g));
			q.total = 1;
		}
	} else {
		eng_group_scan(q.rt, group_search_cb, &q);
	}
	json_t *d = json_object();
	json_object_set_new(d, "total", json_integer((json_int_t)q.total));
	json_object_set_new(d, "groups", api_null_if_empty(q.arr));
	api_reply(r, d);
}

/* get_incremental_group_members (§3.4): one group; a dismissed group is 1204. */
static void get_incremental_group_members(struct api_req *r)
{
	struct im_str gid, vid = {0};
	int64_t version = 0;
	if (!api_str(r, r->body, "groupID", &gid) || !api_str(r, r->body, "versionID", &vid) ||
	    !api_i64(r, r->body, "version", &version, NULL))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !grp_live(r, rt, gid, &g) || !require_member(r, rt, gid, &g))
		return;
	int err = 0;
	json_t *d =
	    sync_incremental(rt, ENG_VLOG_GROUP_MEMBER, MEMBER_LOG, gid, vid,
			     version < 0 ? 0 : (uint64_t)version, true, member_obj, NULL, &err);
	if (d == NULL) {
		api_fail_im(r, err, "version log");
		return;
	}
	json_object_set_new(d, "group", api_group_json(&g));
	api_reply(r, d);
}

const struct api_route api_routes_group[] = {
    {"/group/create_group", create_group, 0},
    {"/group/get_groups_info", get_groups_info, 0},
    {"/group/get_group_members_info", get_group_members_info, 0},
    {"/group/get_group_member_list", get_group_member_list, 0},
    {"/group/get_group_member_user_id", get_group_member_user_id, 0},
    {"/group/get_joined_group_list", get_joined_group_list, 0},
    {"/group/get_full_join_group_ids", get_full_join_group_ids, 0},
    {"/group/get_full_group_member_user_ids", get_full_group_member_user_ids, 0},
    {"/group/get_incremental_join_groups", get_incremental_join_groups, 0},
    {"/group/get_incremental_group_members_batch", get_incremental_group_members_batch, 0},
    {"/group/invite_user_to_group", invite_user_to_group, 0},
    {"/group/kick_group", kick_group, 0},
    {"/group/quit_group", quit_group, 0},
    {"/group/get_group_abstract_info", get_group_abstract_info, 0},
    {"/group/get_groups", get_groups, 0},
    {"/group/get_incremental_group_members", get_incremental_group_members, 0},
    {NULL, NULL, 0},
};
