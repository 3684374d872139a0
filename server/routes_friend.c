/* routes_friend.c - the /friend/ calls the SDKs make at login and before a first 1:1 message.
 *
 * Friendships and blacklists are the relations issue's work: until then every
 * user has no friends and blocks nobody, and these answers say exactly that in
 * OpenIM's shapes (openim-protocol.md §3.3, §7).
 */
#include "api.h"
#include "sync.h"

static bool owner_arg(struct api_req *r, const char *key, struct im_str *owner)
{
	return api_str(r, r->body, key, owner) && api_require_self_or_admin(r, *owner);
}

static void get_incremental_friends(struct api_req *r)
{
	struct im_str uid;
	if (!owner_arg(r, "userID", &uid))
		return;
	json_t *d = sync_full_answer("friend", uid);
	json_object_set_new(d, "sortVersion", json_integer(0));
	api_reply(r, d);
}

static void get_full_friend_user_ids(struct api_req *r)
{
	struct im_str uid;
	int64_t id_hash = 0;
	if (!owner_arg(r, "userID", &uid) || !api_i64(r, r->body, "idHash", &id_hash, NULL))
		return;
	api_reply(r, sync_full_ids("friend", uid, "userIDs", json_array(), id_hash));
}

static void get_designated_friends(struct api_req *r)
{
	struct im_str uid;
	if (!owner_arg(r, "ownerUserID", &uid))
		return;
	json_t *d = json_object();
	json_object_set_new(d, "friendsInfo", json_null());
	api_reply(r, d);
}

static void get_friend_list(struct api_req *r)
{
	struct im_str uid;
	if (!owner_arg(r, "userID", &uid))
		return;
	json_t *d = json_object();
	json_object_set_new(d, "friendsInfo", json_null());
	json_object_set_new(d, "total", json_integer(0));
	api_reply(r, d);
}

static void get_black_list(struct api_req *r)
{
	struct im_str uid;
	if (!owner_arg(r, "userID", &uid))
		return;
	json_t *d = json_object();
	json_object_set_new(d, "blacks", json_null());
	json_object_set_new(d, "total", json_integer(0));
	api_reply(r, d);
}

static void is_friend(struct api_req *r)
{
	struct im_str a, b;
	if (!api_str(r, r->body, "userID1", &a) || !api_str(r, r->body, "userID2", &b))
		return;
	json_t *d = json_object();
	json_object_set_new(d, "inUser1Friends", json_false());
	json_object_set_new(d, "inUser2Friends", json_false());
	api_reply(r, d);
}

const struct api_route api_routes_friend[] = {
    {"/friend/get_incremental_friends", get_incremental_friends, 0},
    {"/friend/get_full_friend_user_ids", get_full_friend_user_ids, 0},
    {"/friend/get_designated_friends", get_designated_friends, 0},
    {"/friend/get_friend_list", get_friend_list, 0},
    {"/friend/get_black_list", get_black_list, 0},
    {"/friend/is_friend", is_friend, 0},
    {NULL, NULL, 0},
};
