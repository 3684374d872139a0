/* routes_group.h - what the /group route files share (routes_group*.c only). */
#ifndef IM_ROUTES_GROUP_H
#define IM_ROUTES_GROUP_H

#include "msg.h"
#include "sync.h"

#define MEMBER_LOG "group_member"
#define JOIN_LOG   "join_group"

/* Role levels (§8.2), and what grp_role() answers for an app admin. */
enum { GRP_OWNER = 100, GRP_ADMIN = 60, GRP_MEMBER = 20, GRP_APP_ADMIN = 1000 };

bool grp_id_list_has(const struct im_str *ids, size_t n, struct im_str id);

/* Reads the group: false after answering 1201 (unknown) or 1204 (dismissed). */
bool grp_live(struct api_req *r, struct eng_rtxn *rt, struct im_str gid, struct eng_group *g);

/*
 * The caller's standing in gid: GRP_APP_ADMIN for an app admin, else its role
 * level with its row in *me (may be NULL), or 0 when it is not a member.
 */
int32_t grp_role(struct api_req *r, struct eng_rtxn *rt, struct im_str gid, struct eng_member *me);

/* The tips' operator: its member row, or a bare one (app admin outside the group). */
json_t *grp_op_json(struct eng_rtxn *rt, struct im_str gid, struct im_str op);

/* PublicUserInfo of a user (userID, nickname, faceURL, ex); bare if unknown. */
json_t *grp_public_user_json(struct eng_rtxn *rt, struct im_str uid);

/* Adds groupMemberVersion / groupMemberVersionID (the state after the change) to tips. */
void grp_tips_versions(json_t *tips, const struct sync_vlog *v);

/*
 * The notifications one command carries (§8.4, §8.5), built before it is
 * proposed.  Heap-allocated (grp_notes_new); grp_notes_propose() or
 * grp_notes_free() releases it.
 */
#define GRP_NOTES_MAX 32
struct grp_notes {
	uint32_t n;
	struct eng_msg_item items[GRP_NOTES_MAX];
	struct msg_notif_bufs nb[GRP_NOTES_MAX];
};
struct grp_notes *grp_notes_new(void);
void grp_notes_free(struct grp_notes *gn);

/*
 * A group notification (sessionType 3, tips stolen): an online copy in
 * n_<group>, and with chat_copy (isSendMsg) a stored tip in sg_<group>.
 * 0, or IM_ETOOBIG when full, or an error.
 */
int grp_note_group(struct api_req *r, struct grp_notes *gn, int32_t ct, bool chat_copy,
		   struct im_str sender, struct im_str gid, json_t *tips);

/* A notification to one user (sessionType 1, online only; tips stolen). */
int grp_note_user(struct api_req *r, struct grp_notes *gn, int32_t ct, struct im_str sender,
		  struct im_str recv, json_t *tips);

/*
 * Attaches the notes to cmd and proposes it; gn is freed.  rv is the outcome
 * of building the notes (a NULL gn counts as -ENOMEM): non-zero answers r
 * with it instead.
 */
void grp_notes_propose(struct api_req *r, struct grp_notes *gn, int rv, struct eng_cmd *cmd,
		       api_done done);

/*
 * The group side of user's profile change (OpenIM's NotificationUserInfoUpdate):
 * if user is a member of live group gid without both a group nickname and a
 * group face, proposes a member-log update (MEMBER_SET, no field changed)
 * carrying 1516 GroupMemberInfoSet to the group, and returns true (done runs,
 * or r is answered with an error).  False: nothing to do for gid.
 */
bool grp_profile_changed(struct api_req *r, struct im_str gid, struct im_str user, api_done done);

/* The usual outcome mapping of a group change: {} or the code of res. */
void grp_change_done(struct api_req *r, int status, const struct eng_result *res);

/* The owner and the admins of gid, as ids (views valid with rt), at most max. */
size_t grp_managers(struct eng_rtxn *rt, struct im_str gid, struct im_str *out, size_t max);

/*
 * Invitations that need approval (needVerification 1, ordinary inviter):
 * stores a request per invited user and sends 1503 (routes_group_req.c).
 */
void grp_invite_requests(struct api_req *r, struct eng_rtxn *rt, const struct eng_group *g,
			 const struct im_str *ids, size_t n);

#endif
