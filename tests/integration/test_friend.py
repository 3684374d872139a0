"""/friend/*: requests, friends, blacklists, incremental sync, full-ID hashes, the 1201-1210
notifications, and the 1302/1303 send checks (openim-protocol.md §3.3, §7, §8.1, §8.5)."""
import asyncio
import hashlib
import json
import os
import struct
import unittest

import harness
from harness import Server, ServerTest
from imws import Client, msgdata_text, pull_msgs_map

FRIEND_INFO_KEYS = ["ownerUserID", "remark", "createTime", "friendUser", "addSource",
                    "operatorUserID", "ex", "isPinned"]
USER_KEYS = ["userID", "nickname", "faceURL", "ex", "createTime", "appMangerLevel", "globalRecvMsgOpt"]
BLACK_KEYS = ["ownerUserID", "createTime", "blackUserInfo", "addSource", "operatorUserID", "ex"]
PUBLIC_KEYS = ["userID", "nickname", "faceURL", "ex"]
REQUEST_KEYS = ["fromUserID", "fromNickname", "fromFaceURL", "toUserID", "toNickname", "toFaceURL",
                "handleResult", "reqMsg", "createTime", "handlerUserID", "handleMsg", "handleTime", "ex"]
INCR_KEYS = ["version", "versionID", "full", "delete", "insert", "update"]


def id_hash(ids):
    if not ids:
        return 0
    raw = json.dumps(ids, separators=(",", ":")).encode()
    return struct.unpack(">q", hashlib.md5(raw).digest()[:8])[0]


async def next_push(client, want, timeout=10):
    """The next pushed message (msgs or notificationMsgs) whose contentType is in want."""
    loop = asyncio.get_event_loop()
    end = loop.time() + timeout
    while True:
        left = end - loop.time()
        if left <= 0:
            raise AssertionError("no push with contentType %s" % (want,))
        req_id, data, _ = await asyncio.wait_for(client.pushes.get(), left)
        if req_id is None:
            raise AssertionError("connection closed")
        if req_id != 2001:
            continue
        msgs, notifs, _ = pull_msgs_map(data)
        for kind, m in (("msgs", msgs), ("notificationMsgs", notifs)):
            for conv, lst in m.items():
                for msg in lst:
                    if msg["contentType"] in want:
                        return kind, conv, msg


def tips(msg):
    return json.loads(json.loads(msg["content"])["detail"])


class FriendTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = ["fa", "fb", "fc", "fd", "fe", "ff", "fg", "fh", "fi", "fj", "fk"]
        assert cls.srv.register(cls.admin, cls.users)["errCode"] == 0
        cls.tok = {u: cls.srv.user_token(cls.admin, u) for u in cls.users}

    def post(self, path, body, who):
        tok = self.admin if who == "admin" else self.tok[who]
        return self.srv.post("/friend/" + path, body, token=tok)

    def ok(self, path, body, who):
        env = self.post(path, body, who)
        self.assertCode(env, 0)
        return env.get("data")

    def friend_ids(self, owner):
        return self.ok("get_friend_id", {"userID": owner}, owner)["friendIDs"]

    def incr(self, owner, vid="", version=0, path="get_incremental_friends"):
        return self.ok(path, {"userID": owner, "versionID": vid, "version": version}, owner)

    def befriend(self, a, b):
        self.ok("add_friend", {"fromUserID": a, "toUserID": b, "reqMsg": "hi", "ex": ""}, a)
        self.ok("add_friend_response", {"fromUserID": a, "toUserID": b, "handleResult": 1,
                                        "handleMsg": "ok"}, b)

    # ------------------------------------------------------------ requests and friends

    def test_apply_accept_flow_and_shapes(self):
        d = self.ok("add_friend", {"fromUserID": "fa", "toUserID": "fb", "reqMsg": "hello", "ex": "e1"}, "fa")
        self.assertIsNone(d)
        recv = self.ok("get_friend_apply_list", {"userID": "fb", "pagination": {"pageNumber": 1, "showNumber": 10}},
                       "fb")
        self.assertEqual(list(recv), ["FriendRequests", "total"])
        self.assertEqual(recv["total"], 1)
        q = recv["FriendRequests"][0]
        self.assertEqual(list(q), REQUEST_KEYS)
        self.assertEqual((q["fromUserID"], q["fromNickname"], q["toUserID"], q["toNickname"], q["handleResult"],
                          q["reqMsg"], q["ex"]), ("fa", "n-fa", "fb", "n-fb", 0, "hello", "e1"))
        sent = self.ok("get_self_friend_apply_list", {"userID": "fa"}, "fa")
        self.assertEqual(list(sent), ["friendRequests", "total"])
        self.assertEqual(sent["friendRequests"], recv["FriendRequests"])
        self.assertEqual(self.ok("get_self_unhandled_apply_count", {"userID": "fb", "time": 0}, "fb"), {"count": 1})
        self.assertEqual(self.ok("get_self_unhandled_apply_count", {"userID": "fb", "time": q["createTime"]}, "fb"),
                         {"count": 0})
        self.assertEqual(self.ok("get_friend_apply_list", {"userID": "fb", "handleResults": [1]}, "fb"),
                         {"FriendRequests": None, "total": 0})
        des = self.ok("get_designated_friend_apply", {"fromUserID": "fa", "toUserID": "fb"}, "fc")
        self.assertEqual(des["friendRequests"], recv["FriendRequests"])
        self.assertEqual(self.ok("is_friend", {"userID1": "fa", "userID2": "fb"}, "fc"),
                         {"inUser1Friends": False, "inUser2Friends": False})

        self.ok("add_friend_response", {"fromUserID": "fa", "toUserID": "fb", "handleResult": 1,
                                        "handleMsg": "welcome"}, "fb")
        q = self.ok("get_designated_friend_apply", {"fromUserID": "fa", "toUserID": "fb"}, "fa")["friendRequests"][0]
        self.assertEqual((q["handleResult"], q["handlerUserID"], q["handleMsg"]), (1, "fb", "welcome"))
        self.assertGreater(q["handleTime"], 0)
        self.assertEqual(self.ok("is_friend", {"userID1": "fa", "userID2": "fb"}, "fa"),
                         {"inUser1Friends": True, "inUser2Friends": True})
        fl = self.ok("get_friend_list", {"userID": "fa", "pagination": {"pageNumber": 1, "showNumber": 10}}, "fa")
        self.assertEqual(list(fl), ["friendsInfo", "total"])
        self.assertEqual(fl["total"], 1)
        f = fl["friendsInfo"][0]
        self.assertEqual(list(f), FRIEND_INFO_KEYS)
        self.assertEqual(list(f["friendUser"]), USER_KEYS)
        self.assertEqual((f["ownerUserID"], f["friendUser"]["userID"], f["friendUser"]["nickname"], f["addSource"],
                          f["operatorUserID"], f["isPinned"]), ("fa", "fb", "n-fb", 2, "fb", False))
        self.assertEqual(self.friend_ids("fb"), ["fa"])
        des = self.ok("get_designated_friends", {"ownerUserID": "fa", "friendUserIDs": ["fb", "fc"]}, "fa")
        self.assertEqual(des, {"friendsInfo": [f]})
        # Profiles are live: a nickname change shows at once.
        self.assertCode(self.srv.post("/user/update_user_info", {"userInfo": {"userID": "fb", "nickname": "Bee"}},
                                      token=self.tok["fb"]), 0)
        f2 = self.ok("get_friend_list", {"userID": "fa"}, "fa")["friendsInfo"][0]
        self.assertEqual(f2["friendUser"]["nickname"], "Bee")
        self.assertEqual(self.ok("get_designated_friend_apply", {"fromUserID": "fa", "toUserID": "fb"}, "fa")
                         ["friendRequests"][0]["toNickname"], "Bee")
        # Both directions friends: 1304; handled: 1305.
        self.assertCode(self.post("add_friend", {"fromUserID": "fb", "toUserID": "fa"}, "fb"), 1304)
        self.assertCode(self.post("add_friend_response", {"fromUserID": "fa", "toUserID": "fb", "handleResult": 1},
                                  "fb"), 1305)
        info = self.ok("get_specified_friends_info", {"ownerUserID": "fa", "userIDList": ["fb", "ghost", "fc"]}, "fa")
        self.assertEqual(len(info["infos"]), 2)
        self.assertEqual(list(info["infos"][0]), ["userInfo", "friendInfo", "blackInfo"])
        self.assertEqual(info["infos"][0]["friendInfo"]["friendUser"], None)
        self.assertIsNone(info["infos"][0]["blackInfo"])
        self.assertIsNone(info["infos"][1]["friendInfo"])

    def test_refuse_delete_and_codes(self):
        self.ok("add_friend", {"fromUserID": "fc", "toUserID": "fd", "reqMsg": "x"}, "fc")
        self.ok("add_friend_response", {"fromUserID": "fc", "toUserID": "fd", "handleResult": -1,
                                        "handleMsg": "no"}, "fd")
        q = self.ok("get_designated_friend_apply", {"fromUserID": "fc", "toUserID": "fd"}, "fd")["friendRequests"][0]
        self.assertEqual(q["handleResult"], -1)
        self.assertIsNone(self.friend_ids("fc"))
        self.assertCode(self.post("add_friend_response", {"fromUserID": "fc", "toUserID": "fd", "handleResult": 1},
                                  "fd"), 1305)
        # Re-applying resets it to pending.
        self.ok("add_friend", {"fromUserID": "fc", "toUserID": "fd", "reqMsg": "again"}, "fc")
        q = self.ok("get_designated_friend_apply", {"fromUserID": "fc", "toUserID": "fd"}, "fd")["friendRequests"][0]
        self.assertEqual((q["handleResult"], q["reqMsg"]), (0, "again"))
        # Codes, each changing nothing.
        self.assertCode(self.post("add_friend", {"fromUserID": "fc", "toUserID": "fc"}, "fc"), 1301)
        self.assertCode(self.post("add_friend", {"fromUserID": "fc", "toUserID": "ghost"}, "fc"), 1101)
        self.assertCode(self.post("add_friend", {"fromUserID": "fd", "toUserID": "fc"}, "fc"), 1002)
        self.assertCode(self.post("add_friend", {"fromUserID": "", "toUserID": "fc"}, "fc"), 1001)
        self.assertCode(self.post("add_friend", {"fromUserID": 5, "toUserID": "fc"}, "fc"), 1001)
        self.assertCode(self.post("add_friend_response", {"fromUserID": "fc", "toUserID": "fd", "handleResult": 2},
                                  "fd"), 1001)
        self.assertCode(self.post("add_friend_response", {"fromUserID": "fc", "toUserID": "fd", "handleResult": 1},
                                  "fc"), 1002)
        self.assertCode(self.post("add_friend_response", {"fromUserID": "fe", "toUserID": "fd", "handleResult": 1},
                                  "fd"), 1004)
        self.assertCode(self.post("get_friend_list", {"userID": "fd"}, "fc"), 1002)
        self.assertCode(self.post("delete_friend", {"ownerUserID": "fc", "friendUserID": "fd"}, "fc"), 1004)
        self.assertEqual(self.ok("get_self_unhandled_apply_count", {"userID": "fd"}, "fd"), {"count": 1})
        # Accept, then a one-directional delete.
        self.ok("add_friend_response", {"fromUserID": "fc", "toUserID": "fd", "handleResult": 1}, "fd")
        self.ok("delete_friend", {"ownerUserID": "fc", "friendUserID": "fd"}, "fc")
        self.assertIsNone(self.friend_ids("fc"))
        self.assertEqual(self.friend_ids("fd"), ["fc"])
        self.assertEqual(self.ok("is_friend", {"userID1": "fc", "userID2": "fd"}, "fc"),
                         {"inUser1Friends": False, "inUser2Friends": True})
        # Not both directions: applying again is allowed.
        self.ok("add_friend", {"fromUserID": "fd", "toUserID": "fc"}, "fd")

    def test_remark_update_and_import(self):
        self.befriend("fe", "ff")
        self.ok("set_friend_remark", {"ownerUserID": "fe", "friendUserID": "ff", "remark": "buddy"}, "fe")
        self.assertCode(self.post("set_friend_remark", {"ownerUserID": "fe", "friendUserID": "fg", "remark": "x"},
                                  "fe"), 1004)
        self.ok("update_friends", {"ownerUserID": "fe", "friendUserIDs": ["ff"], "isPinned": True, "ex": "X"}, "fe")
        f = self.ok("get_friend_list", {"userID": "fe"}, "fe")["friendsInfo"][0]
        self.assertEqual((f["remark"], f["isPinned"], f["ex"]), ("buddy", True, "X"))
        self.assertCode(self.post("update_friends", {"ownerUserID": "fe", "friendUserIDs": []}, "fe"), 1001)
        self.assertCode(self.post("update_friends", {"ownerUserID": "fe", "friendUserIDs": ["ff", "ff"],
                                                     "remark": "y"}, "fe"), 1001)
        self.assertCode(self.post("update_friends", {"ownerUserID": "fe", "friendUserIDs": ["ff", "fg"],
                                                     "remark": "y"}, "fe"), 1004)
        self.assertEqual(self.ok("get_friend_list", {"userID": "fe"}, "fe")["friendsInfo"][0]["remark"], "buddy")
        # import_friend: admin only; self 1301; unknown 1101; mutual rows, addSource 1.
        self.assertCode(self.post("import_friend", {"ownerUserID": "fg", "friendUserIDs": ["fh"]}, "fg"), 1002)
        self.assertCode(self.post("import_friend", {"ownerUserID": "fg", "friendUserIDs": ["fg"]}, "admin"), 1301)
        self.assertCode(self.post("import_friend", {"ownerUserID": "fg", "friendUserIDs": ["fh", "ghost"]}, "admin"),
                        1101)
        self.assertCode(self.post("import_friend", {"ownerUserID": "fg", "friendUserIDs": []}, "admin"), 1001)
        self.assertIsNone(self.friend_ids("fg"))
        self.ok("import_friend", {"ownerUserID": "fg", "friendUserIDs": ["fh", "fi"]}, "admin")
        self.assertEqual(self.friend_ids("fg"), ["fh", "fi"])
        self.assertEqual(self.friend_ids("fh"), ["fg"])
        f = self.ok("get_friend_list", {"userID": "fh"}, "fh")["friendsInfo"][0]
        self.assertEqual((f["addSource"], f["operatorUserID"]), (1, "imAdmin"))

    def test_import_many_chains_notifications(self):
        ids = ["imp%03d" % i for i in range(70)]
        self.assertCode(self.srv.register(self.admin, ids + ["impowner"]), 0)
        self.ok("import_friend", {"ownerUserID": "impowner", "friendUserIDs": ids}, "admin")
        tok = self.srv.user_token(self.admin, "impowner")
        env = self.srv.post("/friend/get_friend_id", {"userID": "impowner"}, token=tok)
        self.assertEqual(env["data"]["friendIDs"], ids)
        # Each friend has the stored 1201 chat copy (isSendMsg) in si_.
        last = ids[-1]
        conv = "si_%s_%s" % tuple(sorted(["impowner", last]))
        tok2 = self.srv.user_token(self.admin, last)
        env = self.srv.post("/msg/get_conversations_has_read_and_max_seq", {"userID": last, "conversationIDs": [conv]},
                            token=tok2)
        self.assertCode(env, 0)
        self.assertEqual(env["data"]["seqs"][conv]["maxSeq"], 1)

    def test_profile_change_tells_every_friend(self):
        """A nickname change sends 1209 FriendInfoUpdated to every friend online: 150 friends,
        more than one command's 64 notifications (the update carries the first, NOOP commands the
        rest, and the request is answered after the last)."""
        ids = ["pf%03d" % i for i in range(150)]
        self.assertCode(self.srv.register(self.admin, ids + ["pfowner"]), 0)
        self.ok("import_friend", {"ownerUserID": "pfowner", "friendUserIDs": ids}, "admin")
        toks = {u: self.srv.user_token(self.admin, u) for u in ids}
        owner_tok = self.srv.user_token(self.admin, "pfowner")

        async def run():
            clients = [await Client(u, toks[u]).connect(self.srv.ws_port) for u in ids]
            try:
                env = self.srv.post("/user/update_user_info", {"userInfo": {
                    "userID": "pfowner", "nickname": "renamed"}}, token=owner_tok)
                self.assertCode(env, 0)
                for u, c in zip(ids, clients):
                    kind, conv, m = await next_push(c, {1209})
                    self.assertEqual((kind, m["recvID"]), ("notificationMsgs", u))
                    self.assertEqual(tips(m), {"userID": "pfowner"})
            finally:
                for c in clients:
                    await c.close()
        asyncio.run(run())

    # ------------------------------------------------------------ blacklists

    def test_blacklist(self):
        self.ok("add_black", {"ownerUserID": "fj", "blackUserID": "fk", "ex": "bx"}, "fj")
        self.assertCode(self.post("add_black", {"ownerUserID": "fj", "blackUserID": "fk"}, "fj"), 1003)
        self.assertCode(self.post("add_black", {"ownerUserID": "fj", "blackUserID": "ghost"}, "fj"), 1101)
        self.assertCode(self.post("add_black", {"ownerUserID": "fk", "blackUserID": "fj"}, "fj"), 1002)
        self.assertCode(self.post("add_black", {"ownerUserID": "fj", "blackUserID": "fj"}, "fj"), 1001)
        bl = self.ok("get_black_list", {"userID": "fj", "pagination": {"pageNumber": 1, "showNumber": 10}}, "fj")
        self.assertEqual(list(bl), ["blacks", "total"])
        self.assertEqual(bl["total"], 1)
        b = bl["blacks"][0]
        self.assertEqual(list(b), BLACK_KEYS)
        self.assertEqual(list(b["blackUserInfo"]), PUBLIC_KEYS)
        self.assertEqual((b["ownerUserID"], b["blackUserInfo"]["userID"], b["ex"], b["operatorUserID"]),
                         ("fj", "fk", "bx", "fj"))
        sp = self.ok("get_specified_blacks", {"ownerUserID": "fj", "userIDList": ["fk", "fa"]}, "fj")
        self.assertEqual(sp, {"blacks": [b], "total": 1})
        self.assertEqual(self.ok("get_black_list", {"userID": "fk"}, "fk"), {"blacks": None, "total": 0})
        info = self.ok("get_specified_friends_info", {"ownerUserID": "fj", "userIDList": ["fk"]}, "fj")
        self.assertEqual(info["infos"][0]["blackInfo"]["blackUserInfo"], None)
        # Incremental blacks from the black log.
        full = self.incr("fj", path="get_incremental_blacks")
        self.assertEqual(list(full), INCR_KEYS)
        self.assertTrue(full["full"])
        self.ok("remove_black", {"ownerUserID": "fj", "blackUserID": "fk"}, "fj")
        inc = self.incr("fj", full["versionID"], full["version"], path="get_incremental_blacks")
        self.assertEqual((inc["full"], inc["delete"], inc["insert"], inc["version"]),
                         (False, ["fk"], None, full["version"] + 1))
        self.assertCode(self.post("remove_black", {"ownerUserID": "fj", "blackUserID": "fk"}, "fj"), 1004)
        self.assertEqual(self.ok("get_black_list", {"userID": "fj"}, "fj"), {"blacks": None, "total": 0})

    def test_blacklist_blocks_a_ws_send_with_1302(self):
        self.assertCode(self.srv.register(self.admin, ["bs", "br"]), 0)
        ts = self.srv.user_token(self.admin, "bs")
        tr = self.srv.user_token(self.admin, "br")
        self.assertCode(self.srv.post("/friend/add_black", {"ownerUserID": "br", "blackUserID": "bs"}, token=tr), 0)

        async def run():
            s = await Client("bs", ts).connect(self.srv.ws_port)
            r = await Client("br", tr).connect(self.srv.ws_port)
            try:
                code, _, _ = await s.request(1003, msgdata_text("bs", "br", client_msg_id=os.urandom(8).hex()))
                self.assertEqual(code, 1302)
                # The blocker may still send to the blocked user.
                code, _, _ = await r.request(1003, msgdata_text("br", "bs", client_msg_id=os.urandom(8).hex()))
                self.assertEqual(code, 0)
            finally:
                await s.close()
                await r.close()
            self.assertCode(self.srv.post("/friend/remove_black", {"ownerUserID": "br", "blackUserID": "bs"},
                                          token=tr), 0)
            s = await Client("bs", ts).connect(self.srv.ws_port)
            try:
                code, _, _ = await s.request(1003, msgdata_text("bs", "br", client_msg_id=os.urandom(8).hex()))
                self.assertEqual(code, 0)
            finally:
                await s.close()
        asyncio.run(run())

    # ------------------------------------------------------------ sync

    def test_incremental_friends_and_full_ids(self):
        self.assertCode(self.srv.register(self.admin, ["sa", "sb", "sc", "sd"]), 0)
        for u in ("sa", "sb", "sc", "sd"):
            self.tok[u] = self.srv.user_token(self.admin, u)
        # Never written: version 1, a stable versionID, full.
        v0 = self.incr("sa")
        self.assertEqual(list(v0), INCR_KEYS + ["sortVersion"])
        self.assertEqual((v0["version"], v0["full"], v0["insert"], v0["delete"], v0["update"]),
                         (1, True, None, None, None))
        self.assertEqual(len(v0["versionID"]), 24)
        self.assertEqual(self.incr("sa")["versionID"], v0["versionID"])
        ids = self.ok("get_full_friend_user_ids", {"userID": "sa", "idHash": 0}, "sa")
        self.assertEqual(list(ids), ["version", "versionID", "equal", "userIDs"])
        self.assertEqual((ids["equal"], ids["userIDs"]), (True, None))

        self.befriend("sa", "sb")
        self.befriend("sa", "sc")
        v1 = self.incr("sa")
        self.assertTrue(v1["full"])
        self.assertNotEqual(v1["versionID"], v0["versionID"])
        self.assertEqual(v1["version"], 2)
        # The never-written document's (versionID, 1) is "empty": everything since is inserted.
        first = self.incr("sa", v0["versionID"], 1)
        self.assertEqual((first["full"], first["version"], first["versionID"]), (False, 2, v1["versionID"]))
        self.assertEqual([f["friendUser"]["userID"] for f in first["insert"]], ["sb", "sc"])
        self.assertTrue(self.incr("sa", v0["versionID"], 2)["full"])
        # The client's own version: nothing changed.
        same = self.incr("sa", v1["versionID"], v1["version"])
        self.assertEqual((same["full"], same["insert"], same["update"], same["delete"]), (False, None, None, None))
        # Upper-case hex is the same ObjectID.
        self.assertFalse(self.incr("sa", v1["versionID"].upper(), v1["version"])["full"])
        # Changes since v1: insert sd, update sb (remark), delete sc.
        self.befriend("sd", "sa")
        self.ok("set_friend_remark", {"ownerUserID": "sa", "friendUserID": "sb", "remark": "r"}, "sa")
        self.ok("delete_friend", {"ownerUserID": "sa", "friendUserID": "sc"}, "sa")
        inc = self.incr("sa", v1["versionID"], v1["version"])
        self.assertFalse(inc["full"])
        self.assertEqual(inc["version"], v1["version"] + 3)
        self.assertEqual(inc["versionID"], v1["versionID"])
        self.assertEqual([f["friendUser"]["userID"] for f in inc["insert"]], ["sd"])
        self.assertEqual([(f["friendUser"]["userID"], f["remark"]) for f in inc["update"]], [("sb", "r")])
        self.assertEqual(inc["delete"], ["sc"])
        self.assertEqual(list(inc["insert"][0]), FRIEND_INFO_KEYS)
        self.assertEqual(inc["sortVersion"], 0)
        # Pinning writes the sort marker, reported as sortVersion, not as an element.
        self.ok("update_friends", {"ownerUserID": "sa", "friendUserIDs": ["sb"], "isPinned": True}, "sa")
        inc2 = self.incr("sa", inc["versionID"], inc["version"])
        self.assertEqual(inc2["sortVersion"], inc["version"] + 1)
        self.assertEqual([f["friendUser"]["userID"] for f in inc2["update"]], ["sb"])
        # A wrong versionID, version 0 or a version from the future: full.
        self.assertTrue(self.incr("sa", "0" * 24, 3)["full"])
        self.assertTrue(self.incr("sa", "zz", 3)["full"])
        self.assertTrue(self.incr("sa", inc["versionID"], 0)["full"])
        self.assertTrue(self.incr("sa", inc["versionID"], 999)["full"])
        # Full IDs and idHash.
        ids = self.ok("get_full_friend_user_ids", {"userID": "sa", "idHash": 0}, "sa")
        self.assertEqual((ids["equal"], ids["userIDs"]), (False, ["sb", "sd"]))
        self.assertEqual((ids["version"], ids["versionID"]), (inc2["version"], inc2["versionID"]))
        eq = self.ok("get_full_friend_user_ids", {"userID": "sa", "idHash": id_hash(["sb", "sd"])}, "sa")
        self.assertEqual((eq["equal"], eq["userIDs"]), (True, None))
        self.assertCode(self.post("get_incremental_friends", {"userID": "sb", "versionID": "", "version": 0}, "sa"),
                        1002)

    def test_incremental_too_many_changes_is_full(self):
        ids = ["many%03d" % i for i in range(205)]
        self.assertCode(self.srv.register(self.admin, ids + ["manyown"]), 0)
        tok = self.srv.user_token(self.admin, "manyown")
        body = {"userID": "manyown", "versionID": "", "version": 0}
        v = self.srv.post("/friend/get_incremental_friends", body, token=tok)["data"]
        self.ok("import_friend", {"ownerUserID": "manyown", "friendUserIDs": ids[:1]}, "admin")
        v = self.srv.post("/friend/get_incremental_friends", body, token=tok)["data"]
        self.ok("import_friend", {"ownerUserID": "manyown", "friendUserIDs": ids[1:]}, "admin")
        inc = self.srv.post("/friend/get_incremental_friends",
                            {"userID": "manyown", "versionID": v["versionID"], "version": v["version"]},
                            token=tok)["data"]
        self.assertTrue(inc["full"])
        self.assertIsNone(inc["insert"])

    # ------------------------------------------------------------ notifications

    def test_notifications(self):
        self.assertCode(self.srv.register(self.admin, ["na", "nb"]), 0)
        ta = self.srv.user_token(self.admin, "na")
        tb = self.srv.user_token(self.admin, "nb")

        async def run():
            a = await Client("na", ta).connect(self.srv.ws_port)
            b = await Client("nb", tb).connect(self.srv.ws_port)
            try:
                self.assertCode(self.srv.post("/friend/add_friend", {"fromUserID": "na", "toUserID": "nb",
                                                                     "reqMsg": "yo"}, token=ta), 0)
                kind, conv, m = await next_push(b, {1203})
                self.assertEqual((kind, conv, m["sendID"], m["recvID"], m["seq"]), ("notificationMsgs", "n_na_nb",
                                                                                  "na", "nb", 0))
                t = tips(m)
                self.assertEqual(list(t), ["fromToUserID", "request"])
                self.assertEqual(t["fromToUserID"], {"fromUserID": "na", "toUserID": "nb"})
                self.assertEqual(list(t["request"]), REQUEST_KEYS)
                self.assertEqual(t["request"]["reqMsg"], "yo")

                self.assertCode(self.srv.post("/friend/add_friend_response", {
                    "fromUserID": "na", "toUserID": "nb", "handleResult": 1, "handleMsg": "sure"}, token=tb), 0)
                got = {}
                while len(got) < 2:
                    kind, conv, m = await next_push(a, {1201})
                    got[kind] = (conv, m)
                conv, m = got["notificationMsgs"]
                self.assertEqual((conv, m["sendID"], m["recvID"], m["seq"]), ("n_na_nb", "nb", "na", 0))
                t = tips(m)
                self.assertEqual(list(t), ["fromToUserID", "handleMsg", "friendVersion", "friendVersionID",
                                           "request"])
                self.assertEqual((t["handleMsg"], t["request"]["handleResult"]), ("sure", 1))
                v = self.srv.post("/friend/get_incremental_friends", {"userID": "nb", "versionID": "", "version": 0},
                                  token=tb)["data"]
                self.assertEqual(t["friendVersion"], v["version"])
                conv, m = got["msgs"]
                self.assertEqual((conv, m["seq"]), ("si_na_nb", 1))

                self.assertCode(self.srv.post("/friend/set_friend_remark", {
                    "ownerUserID": "na", "friendUserID": "nb", "remark": "B"}, token=ta), 0)
                _, _, m = await next_push(b, {1206})
                t = tips(m)
                self.assertEqual(list(t), ["fromToUserID", "friendVersion", "friendVersionID", "friendSortVersion"])
                va = self.srv.post("/friend/get_incremental_friends", {"userID": "na", "versionID": "", "version": 0},
                                   token=ta)["data"]
                self.assertEqual((t["friendVersion"], t["friendVersionID"]), (va["version"], va["versionID"]))

                self.assertCode(self.srv.post("/friend/update_friends", {
                    "ownerUserID": "na", "friendUserIDs": ["nb"], "isPinned": True}, token=ta), 0)
                _, conv, m = await next_push(a, {1210})
                t = tips(m)
                self.assertEqual(conv, "n_na_na")
                self.assertEqual(list(t), ["fromToUserID", "friendIDs", "friendVersion", "friendVersionID"])
                self.assertEqual((t["friendIDs"], t["friendVersion"]), (["nb"], va["version"] + 1))

                self.assertCode(self.srv.post("/friend/add_black", {"ownerUserID": "na", "blackUserID": "nb"},
                                              token=ta), 0)
                _, _, m = await next_push(b, {1207})
                self.assertEqual(tips(m), {"fromToUserID": {"fromUserID": "na", "toUserID": "nb"}})
                self.assertCode(self.srv.post("/friend/remove_black", {"ownerUserID": "na", "blackUserID": "nb"},
                                              token=ta), 0)
                _, _, m = await next_push(b, {1208})
                self.assertEqual(tips(m), {"fromToUserID": {"fromUserID": "na", "toUserID": "nb"}})

                self.assertCode(self.srv.post("/friend/delete_friend", {"ownerUserID": "na", "friendUserID": "nb"},
                                              token=ta), 0)
                _, _, m = await next_push(b, {1205})
                t = tips(m)
                self.assertEqual(list(t), ["fromToUserID", "friendVersion", "friendVersionID"])
                self.assertEqual(t["friendVersion"], va["version"] + 2)

                # A refused request: 1202 to the applicant.
                self.assertCode(self.srv.post("/friend/add_friend", {"fromUserID": "nb", "toUserID": "na"},
                                              token=tb), 0)
                self.assertCode(self.srv.post("/friend/add_friend_response", {
                    "fromUserID": "nb", "toUserID": "na", "handleResult": -1, "handleMsg": "nope"}, token=ta), 0)
                _, _, m = await next_push(b, {1202})
                t = tips(m)
                self.assertEqual(list(t), ["fromToUserID", "handleMsg", "request"])
                self.assertEqual(t["fromToUserID"], {"fromUserID": "nb", "toUserID": "na"})
            finally:
                await a.close()
                await b.close()
        asyncio.run(run())


class FriendVerifyTest(unittest.TestCase):
    """A server with friend_verify: 1:1 sends need the receiver in the sender's friend list."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(secret="fv", args=["--friend-verify", "1"]).start()
        cls.admin = cls.srv.admin_token()
        assert cls.srv.register(cls.admin, ["va", "vb"])["errCode"] == 0

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def test_1303_until_friends(self):
        ta = self.srv.user_token(self.admin, "va")

        async def send():
            c = await Client("va", ta).connect(self.srv.ws_port)
            try:
                code, _, _ = await c.request(1003, msgdata_text("va", "vb", client_msg_id=os.urandom(8).hex()))
                return code
            finally:
                await c.close()
        self.assertEqual(asyncio.run(send()), 1303)
        # Admin senders skip the check.
        env = self.srv.post("/msg/send_msg", {"sendID": "va", "recvID": "vb", "content": {"content": "x"},
                                              "contentType": 101, "sessionType": 1}, token=self.admin)
        self.assertEqual(env["errCode"], 0, env)
        env = self.srv.post("/friend/import_friend", {"ownerUserID": "va", "friendUserIDs": ["vb"]}, token=self.admin)
        self.assertEqual(env["errCode"], 0, env)
        self.assertEqual(asyncio.run(send()), 0)


if __name__ == "__main__":
    harness.main()
