/* routes_group_set.c - group settings: info, mutes, member info and roles, owner, dismiss (§3.4).
 */
#include <errno.h>
#include <stdio.h>

#include "routes_group.h"

/*
 * Each route checks the caller's standing on a read snapshot, builds the
 * group (or members) as they will be after the change, proposes one command
 * carrying its notifications (tips computed from that "after" state and the
 * group-member log version the command will produce), and answers {} once it
 * is applied.  The engine re-checks what it can (membership, the owner, a
 * dismissed group), so a race between two requests is refused, not applied
 * half-way.
 */

/* A string that may be absent (a wrapper, §2.1); false after answering 1001. */
static bool str_opt(struct api_req *r, const json_t *o, const char *key, struct im_str *out,
		    bool *present)
{
	struct json_err e;
	if (json_get_str(o, key, out, present, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return false;
	}
	if (out->n > ENG_TEXT_MAX) {
		api_fail(r, OI_ARGS, "%s too long", key);
		return false;
	}
	return true;
}

/* The versions the group-member log has after the command; false after answering. */
static bool versions_after(struct api_req *r, struct eng_rtxn *rt, struct im_str gid,
			   struct sync_vlog *v)
{
	int rv = sync_vlog_after(rt, ENG_VLOG_GROUP_MEMBER, MEMBER_LOG, gid, true, v);
	if (rv != 0)
		api_fail_im(r, rv, "group member log");
	return rv == 0;
}

/* Owner, admin or app admin; 1004 for a non-member, 1002 for an ordinary member. */
static bool require_manager(struct api_req *r, struct eng_rtxn *rt, struct im_str gid,
			    struct eng_member *me, int32_t *role)
{
	*role = grp_role(r, rt, gid, me);
	if (*role == 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "opUser %s is not in group %.*s", r->who.user_id,
			 (int)gid.n, gid.p);
		return false;
	}
	if (*role < GRP_ADMIN) {
		api_fail(r, OI_NO_PERMISSION, "no group owner or admin");
		return false;
	}
	return true;
}

/* {group, opUser, operationTime, versions}: the common part of most tips. */
static json_t *tips_new(const struct eng_group *after, json_t *op_json, int64_t now,
			const struct sync_vlog *v)
{
	json_t *t = json_object();
	json_object_set_new(t, "group", api_group_json(after));
	json_object_set(t, "opUser", op_json);
	json_object_set_new(t, "operationTime", json_integer(now));
	if (v != NULL)
		grp_tips_versions(t, v);
	return t;
}

/* ---------------------------------------------------------------- group info */

/*
 * set_group_info and set_group_info_ex (§3.4): the masked fields of `in`.
 * Notifications as OpenIM sends them: 1519 when a non-empty announcement is
 * set (every member's conversation also gets groupAtType 4), 1520 when the
 * name is set, 1502 when anything else is.
 */
static void group_set(struct api_req *r, struct eng_group *in, uint32_t mask)
{
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	struct eng_member me;
	int32_t role;
	if (rt == NULL || !grp_live(r, rt, in->group_id, &g) ||
	    !require_manager(r, rt, in->group_id, &me, &role))
		return;
	if (mask == 0) {
		api_reply(r, NULL);
		return;
	}
	if ((mask & ENG_GROUP_NEED_VERIFICATION) &&
	    (in->need_verification < 0 || in->need_verification > 2)) {
		api_fail(r, OI_ARGS, "needVerification must be 0, 1 or 2");
		return;
	}
	int64_t now = r->s->now_ms();
	struct im_str op = im_str_c(r->who.user_id);
	struct eng_group after = g;
	if (mask & ENG_GROUP_NAME)
		after.group_name = in->group_name;
	if (mask & ENG_GROUP_NOTIFICATION) {
		after.notification = in->notification;
		after.notification_update_time = now;
		after.notification_user_id = op;
		in->notification_update_time = now;
		in->notification_user_id = op;
		if (in->notification.n)
			mask |= ENG_GROUP_AT_ANNOUNCE;
	}
	if (mask & ENG_GROUP_INTRODUCTION)
		after.introduction = in->introduction;
	if (mask & ENG_GROUP_FACE_URL)
		after.face_url = in->face_url;
	if (mask & ENG_GROUP_EX)
		after.ex = in->ex;
	if (mask & ENG_GROUP_NEED_VERIFICATION)
		after.need_verification = in->need_verification;
	if (mask & ENG_GROUP_LOOK_MEMBER_INFO)
		after.look_member_info = in->look_member_info;
	if (mask & ENG_GROUP_APPLY_MEMBER_FRIEND)
		after.apply_member_friend = in->apply_member_friend;
	struct sync_vlog v;
	if (!versions_after(r, rt, in->group_id, &v))
		return;
	struct grp_notes *gn = grp_notes_new();
	if (gn == NULL) {
		api_fail_im(r, -ENOMEM, "set group info");
		return;
	}
	json_t *op_json = api_member_json(&me);
	int rv = 0;
	if (mask & ENG_GROUP_AT_ANNOUNCE) {
		json_t *t = json_object();
		json_object_set(t, "opUser", op_json);
		json_object_set_new(t, "group", api_group_json(&after));
		grp_tips_versions(t, &v);
		rv = grp_note_group(r, gn, 1519, true, op, in->group_id, t);
	}
	if (rv == 0 && (mask & ENG_GROUP_NAME)) {
		json_t *t = json_object();
		json_object_set(t, "opUser", op_json);
		json_object_set_new(t, "group", api_group_json(&after));
		grp_tips_versions(t, &v);
		rv = grp_note_group(r, gn, 1520, true, op, in->group_id, t);
	}
	uint32_t others =
	    mask & ~(uint32_t)(ENG_GROUP_NAME | ENG_GROUP_NOTIFICATION | ENG_GROUP_AT_ANNOUNCE);
	if (rv == 0 && others) {
		json_t *t = json_object();
		json_object_set(t, "opUser", op_json);
		json_object_set_new(t, "muteTime", json_integer(0));
		json_object_set_new(t, "group", api_group_json(&after));
		grp_tips_versions(t, &v);
		rv = grp_note_group(r, gn, 1502, false, op, in->group_id, t);
	}
	json_decref(op_json);
	struct eng_cmd cmd = {.type = ENG_CMD_GROUP_SET, .now_ms = now};
	cmd.m.group_set.mask = mask;
	cmd.m.group_set.group = *in;
	grp_notes_propose(r, gn, rv, &cmd, grp_change_done);
}

/* Reads one optional field into in and sets its bit when present. */
#define OPT_STR(obj, key, field, bit, only_nonempty)                                               \
	do {                                                                                       \
		bool p_ = false;                                                                   \
		if (!str_opt(r, obj, key, &in.field, &p_))                                         \
			return;                                                                    \
		if (p_ && (!(only_nonempty) || in.field.n))                                        \
			mask |= bit;                                                               \
	} while (0)
#define OPT_I32(obj, key, field, bit)                                                              \
	do {                                                                                       \
		bool p_ = false;                                                                   \
		if (!api_i32(r, obj, key, &in.field, &p_))                                         \
			return;                                                                    \
		if (p_)                                                                            \
			mask |= bit;                                                               \
	} while (0)

static void set_group_info(struct api_req *r)
{
	json_t *gi = NULL;
	struct json_err e;
	if (json_get_obj(r->body, "groupInfoForSet", &gi, &e) != 0 || gi == NULL) {
		api_fail(r, OI_ARGS, "%s", gi == NULL ? "groupInfoForSet is empty" : e.msg);
		return;
	}
	struct eng_group in = {0};
	uint32_t mask = 0;
	if (!api_str(r, gi, "groupID", &in.group_id))
		return;
	/* OpenIM's UpdateGroupInfoMap: plain strings apply when non-empty. */
	OPT_STR(gi, "groupName", group_name, ENG_GROUP_NAME, true);
	OPT_STR(gi, "notification", notification, ENG_GROUP_NOTIFICATION, true);
	OPT_STR(gi, "introduction", introduction, ENG_GROUP_INTRODUCTION, true);
	OPT_STR(gi, "faceURL", face_url, ENG_GROUP_FACE_URL, true);
	OPT_STR(gi, "ex", ex, ENG_GROUP_EX, false);
	OPT_I32(gi, "needVerification", need_verification, ENG_GROUP_NEED_VERIFICATION);
	OPT_I32(gi, "lookMemberInfo", look_member_info, ENG_GROUP_LOOK_MEMBER_INFO);
	OPT_I32(gi, "applyMemberFriend", apply_member_friend, ENG_GROUP_APPLY_MEMBER_FRIEND);
	group_set(r, &in, mask);
}

static void set_group_info_ex(struct api_req *r)
{
	struct eng_group in = {0};
	uint32_t mask = 0;
	if (!api_str(r, r->body, "groupID", &in.group_id))
		return;
	OPT_STR(r->body, "groupName", group_name, ENG_GROUP_NAME, false);
	OPT_STR(r->body, "notification", notification, ENG_GROUP_NOTIFICATION, false);
	OPT_STR(r->body, "introduction", introduction, ENG_GROUP_INTRODUCTION, false);
	OPT_STR(r->body, "faceURL", face_url, ENG_GROUP_FACE_URL, false);
	OPT_STR(r->body, "ex", ex, ENG_GROUP_EX, false);
	OPT_I32(r->body, "needVerification", need_verification, ENG_GROUP_NEED_VERIFICATION);
	OPT_I32(r->body, "lookMemberInfo", look_member_info, ENG_GROUP_LOOK_MEMBER_INFO);
	OPT_I32(r->body, "applyMemberFriend", apply_member_friend, ENG_GROUP_APPLY_MEMBER_FRIEND);
	if ((mask & ENG_GROUP_NAME) && in.group_name.n == 0) {
		api_fail(r, OI_ARGS, "groupName is empty");
		return;
	}
	group_set(r, &in, mask);
}

/* mute_group (1514) and cancel_mute_group (1515): status 3 or 0. */
static void group_mute(struct api_req *r, int32_t status, int32_t ct)
{
	struct im_str gid;
	if (!api_str(r, r->body, "groupID", &gid))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	struct eng_member me;
	int32_t role;
	if (rt == NULL || !grp_live(r, rt, gid, &g) || !require_manager(r, rt, gid, &me, &role))
		return;
	struct sync_vlog v;
	if (!versions_after(r, rt, gid, &v))
		return;
	int64_t now = r->s->now_ms();
	struct eng_group after = g;
	after.status = status;
	struct grp_notes *gn = grp_notes_new();
	json_t *op_json = api_member_json(&me);
	int rv = grp_note_group(r, gn, ct, true, im_str_c(r->who.user_id), gid,
				tips_new(&after, op_json, now, &v));
	json_decref(op_json);
	struct eng_cmd cmd = {.type = ENG_CMD_GROUP_SET, .now_ms = now};
	cmd.m.group_set.mask = ENG_GROUP_STATUS;
	cmd.m.group_set.group = (struct eng_group){.group_id = gid, .status = status};
	grp_notes_propose(r, gn, rv, &cmd, grp_change_done);
}

static void mute_group(struct api_req *r)
{
	group_mute(r, 3, 1514);
}

static void cancel_mute_group(struct api_req *r)
{
	group_mute(r, 0, 1515);
}

/* ---------------------------------------------------------------- member mutes */

/*
 * mute_group_member (1512) and cancel_mute_group_member (1513): the owner
 * mutes anyone but itself, an admin ordinary members only (§3.4).
 */
static void member_mute(struct api_req *r, bool mute)
{
	struct im_str gid, uid;
	int64_t secs = 0;
	if (!api_str(r, r->body, "groupID", &gid) || !api_str(r, r->body, "userID", &uid))
		return;
	if (mute && !api_i64(r, r->body, "mutedSeconds", &secs, NULL))
		return;
	if (secs < 0 || secs > UINT32_MAX) {
		api_fail(r, OI_ARGS, "mutedSeconds out of range");
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	struct eng_member target, me;
	if (rt == NULL || !grp_live(r, rt, gid, &g))
		return;
	if (eng_member_get(rt, gid, uid, &target) != 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "%.*s is not in group %.*s", (int)uid.n, uid.p,
			 (int)gid.n, gid.p);
		return;
	}
	int32_t role = grp_role(r, rt, gid, &me);
	if (role == 0) {
		api_fail(r, OI_RECORD_NOT_FOUND, "opUser is not in the group");
		return;
	}
	if (role != GRP_APP_ADMIN &&
	    (target.role_level == GRP_OWNER ||
	     (target.role_level == GRP_ADMIN && role != GRP_OWNER) || role < GRP_ADMIN)) {
		api_fail(r, OI_NO_PERMISSION, "cannot %s %.*s", mute ? "mute" : "unmute",
			 (int)uid.n, uid.p);
		return;
	}
	struct sync_vlog v;
	if (!versions_after(r, rt, gid, &v))
		return;
	int64_t now = r->s->now_ms();
	struct eng_member after = target;
	after.mute_end_time = mute ? now + secs * 1000 : 0;
	struct grp_notes *gn = grp_notes_new();
	json_t *op_json = api_member_json(&me);
	json_t *t = tips_new(&g, op_json, now, &v);
	json_decref(op_json);
	json_object_set_new(t, "mutedUser", api_member_json(&after));
	if (mute)
		json_object_set_new(t, "mutedSeconds", json_integer(secs));
	int rv = grp_note_group(r, gn, mute ? 1512 : 1513, true, im_str_c(r->who.user_id), gid, t);
	uint32_t m = ENG_MEMBER_MUTE_END;
	struct eng_cmd cmd = {.type = ENG_CMD_MEMBER_SET, .now_ms = now};
	cmd.m.member_set.group_id = gid;
	cmd.m.member_set.n_members = 1;
	cmd.m.member_set.members = &after;
	cmd.m.member_set.masks = &m;
	grp_notes_propose(r, gn, rv, &cmd, grp_change_done);
}

static void mute_group_member(struct api_req *r)
{
	member_mute(r, true);
}

static void cancel_mute_group_member(struct api_req *r)
{
	member_mute(r, false);
}

/* ---------------------------------------------------------------- member info */

#define SET_MEMBERS_MAX 16 /* members of one set_group_member_info (two tips each) */

/* Whether the caller (role, me) may apply in to the member db (OpenIM's rules). */
static bool member_set_allowed(struct api_req *r, int32_t role, const struct eng_member *me,
			       const struct eng_member *db, const struct eng_member *in,
			       uint32_t mask)
{
	bool self = im_str_eq(db->user_id, me->user_id);
	if (role == GRP_APP_ADMIN)
		return true;
	if (role == GRP_OWNER) {
		if (self && (mask & ENG_MEMBER_ROLE)) {
			api_fail(r, OI_ARGS, "group owner can not change own role level");
			return false;
		}
		return true;
	}
	if (role == GRP_ADMIN) {
		if (db->role_level == GRP_OWNER || (db->role_level == GRP_ADMIN && !self)) {
			api_fail(r, OI_NO_PERMISSION,
				 "admin can not change the owner or other admins");
			return false;
		}
	} else if (!self) {
		api_fail(r, OI_NO_PERMISSION, "ordinary users can not change other members");
		return false;
	}
	if (self && (mask & ENG_MEMBER_ROLE) && in->role_level > me->role_level) {
		api_fail(r, OI_NO_PERMISSION, "can not improve role level by self");
		return false;
	}
	return true;
}

static void set_group_member_info(struct api_req *r)
{
	json_t *list = NULL;
	struct json_err e;
	if (json_get_array(r->body, "members", &list, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return;
	}
	size_t n = list ? json_array_size(list) : 0;
	if (n == 0 || n > SET_MEMBERS_MAX) {
		api_fail(r, OI_ARGS, "members: 1..%d entries", SET_MEMBERS_MAX);
		return;
	}
	struct eng_member in[SET_MEMBERS_MAX] = {0};
	uint32_t masks[SET_MEMBERS_MAX] = {0};
	struct im_str gid = {0};
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(list, i);
		if (!json_is_object(o)) {
			api_fail(r, OI_ARGS, "members[%zu] is not an object", i);
			return;
		}
		struct im_str g1;
		bool p = false;
		if (!api_str(r, o, "groupID", &g1) || !api_str(r, o, "userID", &in[i].user_id))
			return;
		if (i > 0 && !im_str_eq(g1, gid)) {
			api_fail(r, OI_ARGS, "members of one group per request");
			return;
		}
		gid = g1;
		in[i].group_id = gid;
		if (!str_opt(r, o, "nickname", &in[i].nickname, &p))
			return;
		masks[i] |= p ? ENG_MEMBER_NICKNAME : 0;
		if (!str_opt(r, o, "faceURL", &in[i].face_url, &p))
			return;
		masks[i] |= p ? ENG_MEMBER_FACE_URL : 0;
		if (!str_opt(r, o, "ex", &in[i].ex, &p))
			return;
		masks[i] |= p ? ENG_MEMBER_EX : 0;
		if (!api_i32(r, o, "roleLevel", &in[i].role_level, &p))
			return;
		if (p) {
			if (in[i].role_level == GRP_OWNER) {
				api_fail(r, OI_NO_PERMISSION, "cannot set group owner");
				return;
			}
			if (in[i].role_level != GRP_ADMIN && in[i].role_level != GRP_MEMBER) {
				api_fail(r, OI_ARGS, "invalid role level");
				return;
			}
			masks[i] |= ENG_MEMBER_ROLE;
		}
		for (size_t k = 0; k < i; k++)
			if (im_str_eq(in[k].user_id, in[i].user_id)) {
				api_fail(r, OI_ARGS, "repeat group %.*s user %.*s", (int)gid.n,
					 gid.p, (int)in[i].user_id.n, in[i].user_id.p);
				return;
			}
	}
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	struct eng_member me;
	if (rt == NULL || !grp_live(r, rt, gid, &g))
		return;
	int32_t role = grp_role(r, rt, gid, &me);
	struct eng_member after[SET_MEMBERS_MAX];
	for (size_t i = 0; i < n; i++) {
		struct eng_member db;
		if (eng_member_get(rt, gid, in[i].user_id, &db) != 0) {
			api_fail(r, OI_ARGS, "user %.*s not in group", (int)in[i].user_id.n,
				 in[i].user_id.p);
			return;
		}
		if (role == 0) {
			api_fail(r, OI_NO_PERMISSION, "user not in group");
			return;
		}
		if (!member_set_allowed(r, role, &me, &db, &in[i], masks[i]))
			return;
		if (db.role_level == GRP_OWNER && (masks[i] & ENG_MEMBER_ROLE)) {
			api_fail(r, OI_NO_PERMISSION, "the owner changes only by transfer");
			return;
		}
		after[i] = db;
		if (masks[i] & ENG_MEMBER_NICKNAME)
			after[i].nickname = in[i].nickname;
		if (masks[i] & ENG_MEMBER_FACE_URL)
			after[i].face_url = in[i].face_url;
		if (masks[i] & ENG_MEMBER_EX)
			after[i].ex = in[i].ex;
		if (masks[i] & ENG_MEMBER_ROLE)
			after[i].role_level = in[i].role_level;
	}
	struct sync_vlog v;
	if (!versions_after(r, rt, gid, &v))
		return;
	int64_t now = r->s->now_ms();
	struct im_str op = im_str_c(r->who.user_id);
	struct grp_notes *gn = grp_notes_new();
	json_t *op_json = api_member_json(&me);
	int rv = gn == NULL ? -ENOMEM : 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		const uint32_t info = ENG_MEMBER_NICKNAME | ENG_MEMBER_FACE_URL | ENG_MEMBER_EX;
		for (int k = 0; k < 2 && rv == 0; k++) {
			int32_t ct;
			if (k == 0 && (masks[i] & ENG_MEMBER_ROLE))
				ct = after[i].role_level == GRP_ADMIN ? 1517 : 1518;
			else if (k == 1 && (masks[i] & info))
				ct = 1516;
			else
				continue;
			json_t *t = tips_new(&g, op_json, now, &v);
			json_object_set_new(t, "changedUser", api_member_json(&after[i]));
			json_object_set_new(
			    t, "groupSortVersion",
			    json_integer((masks[i] & ENG_MEMBER_ROLE) ? (json_int_t)v.version : 0));
			rv = grp_note_group(r, gn, ct, false, op, gid, t);
		}
	}
	json_decref(op_json);
	struct eng_cmd cmd = {.type = ENG_CMD_MEMBER_SET, .now_ms = now};
	cmd.m.member_set.group_id = gid;
	cmd.m.member_set.n_members = (uint32_t)n;
	cmd.m.member_set.members = after;
	cmd.m.member_set.masks = masks;
	grp_notes_propose(r, gn, rv, &cmd, grp_change_done);
}

bool grp_profile_changed(struct api_req *r, struct im_str gid, struct im_str user, api_done done)
{
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	struct eng_member m;
	if (rt == NULL || eng_group_get(rt, gid, &g) != 0 || g.status == 2 /* dismissed */ ||
	    eng_member_get(rt, gid, user, &m) != 0 || (m.nickname.n > 0 && m.face_url.n > 0))
		return false; /* gone meanwhile, or the group shows its own name and face */
	struct sync_vlog v;
	int rv = sync_vlog_after(rt, ENG_VLOG_GROUP_MEMBER, MEMBER_LOG, gid, true, &v);
	struct grp_notes *gn = rv == 0 ? grp_notes_new() : NULL;
	if (gn) {
		struct im_str op = im_str_c(r->who.user_id); /* the user, or an app admin */
		json_t *op_json = grp_op_json(rt, gid, op);
		json_t *t = tips_new(&g, op_json, r->s->now_ms(), &v);
		json_decref(op_json);
		json_object_set_new(t, "changedUser", api_member_json(&m));
		json_object_set_new(t, "groupSortVersion", json_integer(0));
		rv = grp_note_group(r, gn, 1516, false, op, gid, t);
	}
	uint32_t mask = 0; /* nothing changes in the row: the member log records an update */
	struct eng_cmd cmd = {.type = ENG_CMD_MEMBER_SET, .now_ms = r->s->now_ms()};
	cmd.m.member_set.group_id = gid;
	cmd.m.member_set.n_members = 1;
	cmd.m.member_set.members = &m;
	cmd.m.member_set.masks = &mask;
	grp_notes_propose(r, gn, rv, &cmd, done);
	return true;
}

/* ---------------------------------------------------------------- owner, dismiss */

static void transfer_group(struct api_req *r)
{
	struct im_str gid, old_id, new_id;
	if (!api_str(r, r->body, "groupID", &gid) ||
	    !api_str(r, r->body, "oldOwnerUserID", &old_id) ||
	    !api_str(r, r->body, "newOwnerUserID", &new_id))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL || !grp_live(r, rt, gid, &g))
		return;
	if (im_str_eq(old_id, new_id)) {
		api_fail(r, OI_ARGS, "OldOwnerUserID == NewOwnerUserID");
		return;
	}
	struct eng_member old_m, new_m;
	if (eng_member_get(rt, gid, old_id, &old_m) != 0 ||
	    eng_member_get(rt, gid, new_id, &new_m) != 0) {
		api_fail(r, OI_ARGS, "user not in group");
		return;
	}
	if (!r->who.admin &&
	    !(im_str_eq(im_str_c(r->who.user_id), old_id) && old_m.role_level == GRP_OWNER)) {
		api_fail(r, OI_NO_PERMISSION, "no permission transfer group owner");
		return;
	}
	if (old_m.role_level != GRP_OWNER) {
		api_fail(r, OI_ARGS, "%.*s is not the owner", (int)old_id.n, old_id.p);
		return;
	}
	struct sync_vlog v;
	if (!versions_after(r, rt, gid, &v))
		return;
	int64_t now = r->s->now_ms();
	struct eng_group after = g;
	after.owner_user_id = new_id;
	struct eng_member old_after = old_m, new_after = new_m;
	old_after.role_level = new_m.role_level;
	new_after.role_level = GRP_OWNER;
	new_after.mute_end_time = 0;
	struct im_str op = im_str_c(r->who.user_id);
	json_t *op_json =
	    im_str_eq(op, old_id) ? api_member_json(&old_after) : grp_op_json(rt, gid, op);
	json_t *t = tips_new(&after, op_json, now, &v);
	json_decref(op_json);
	json_object_set_new(t, "newGroupOwner", api_member_json(&new_after));
	json_object_set_new(t, "oldGroupOwner", json_str(old_id));
	json_object_set_new(t, "oldGroupOwnerInfo", api_member_json(&old_after));
	struct grp_notes *gn = grp_notes_new();
	int rv = grp_note_group(r, gn, 1507, true, op, gid, t);
	struct eng_cmd cmd = {.type = ENG_CMD_GROUP_TRANSFER, .now_ms = now};
	cmd.m.group_transfer.group_id = gid;
	cmd.m.group_transfer.new_owner = new_id;
	grp_notes_propose(r, gn, rv, &cmd, grp_change_done);
}

/*
 * dismiss_group (§3.4): status 2 and 1511; with deleteMember every member
 * leaves and, as in OpenIM 3.8.3, no notification is sent.
 */
static void dismiss_group(struct api_req *r)
{
	struct im_str gid;
	bool delete_member = false;
	if (!api_str(r, r->body, "groupID", &gid) ||
	    !api_bool(r, r->body, "deleteMember", &delete_member, NULL))
		return;
	struct eng_rtxn *rt = api_read(r);
	struct eng_group g;
	if (rt == NULL)
		return;
	if (eng_group_get(rt, gid, &g) != 0) {
		api_fail(r, OI_GROUP_NOT_FOUND, "group %.*s not found", (int)gid.n, gid.p);
		return;
	}
	struct im_str op = im_str_c(r->who.user_id);
	if (!r->who.admin && !im_str_eq(g.owner_user_id, op)) {
		api_fail(r, OI_NO_PERMISSION, "not group owner");
		return;
	}
	if (!delete_member && g.status == 2) {
		api_fail(r, OI_DISMISSED, "group status is dismissed");
		return;
	}
	int64_t now = r->s->now_ms();
	struct grp_notes *gn = grp_notes_new();
	int rv = gn == NULL ? -ENOMEM : 0;
	if (rv == 0 && !delete_member) {
		struct eng_member bare = {0};
		json_t *op_json = im_str_eq(g.owner_user_id, op) ? grp_op_json(rt, gid, op)
								 : api_member_json(&bare);
		rv = grp_note_group(r, gn, 1511, true, op, gid, tips_new(&g, op_json, now, NULL));
		json_decref(op_json);
	}
	struct eng_cmd cmd = {.type = ENG_CMD_GROUP_DISMISS, .now_ms = now};
	cmd.m.group_dismiss.group_id = gid;
	cmd.m.group_dismiss.delete_member = delete_member;
	grp_notes_propose(r, gn, rv, &cmd, grp_change_done);
}

const struct api_route api_routes_group_set[] = {
    {"/group/set_group_info", set_group_info, 0},
    {"/group/set_group_info_ex", set_group_info_ex, 0},
    {"/group/mute_group", mute_group, 0},
    {"/group/cancel_mute_group", cancel_mute_group, 0},
    {"/group/mute_group_member", mute_group_member, 0},
    {"/group/cancel_mute_group_member", cancel_mute_group_member, 0},
    {"/group/set_group_member_info", set_group_member_info, 0},
    {"/group/transfer_group", transfer_group, 0},
    {"/group/dismiss_group", dismiss_group, 0},
    {NULL, NULL, 0},
};
