"""/group/ invite, kick and quit: codes, member counts, the 1509/1508/1504 tips over WS (the
leavers included), the leaver's history cap, and incremental sync of the join-group and
group-member logs (openim-protocol.md §3.4, §5.4, §6.5, §7, §8.2, §8.5)."""
import asyncio
import base64
import json
import os
import unittest

from harness import ServerTest
from imws import Client, msgdata_text, pull_msgs_map


async def next_push(client, want, timeout=10):
    """(kind, conv, msg) of the next pushed message whose contentType is in want."""
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


class GroupTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = ["go", "ga", "gb", "gc", "gd", "ge", "gf"]
        assert cls.srv.register(cls.admin, cls.users)["errCode"] == 0
        cls.tok = {u: cls.srv.user_token(cls.admin, u) for u in cls.users}

    def post(self, path, body, who):
        tok = self.admin if who == "admin" else self.tok[who]
        return self.srv.post("/group/" + path, body, token=tok)

    def ok(self, path, body, who):
        env = self.post(path, body, who)
        self.assertCode(env, 0)
        return env.get("data")

    def create(self, gid, owner, members, admins=()):
        self.ok("create_group", {"ownerUserID": owner, "memberUserIDs": list(members),
                                 "adminUserIDs": list(admins),
                                 "groupInfo": {"groupID": gid, "groupName": gid, "groupType": 2}}, owner)

    def count(self, gid):
        return self.ok("get_groups_info", {"groupIDs": [gid]}, "admin")["groupInfos"][0]["memberCount"]

    def members(self, gid):
        return self.ok("get_group_member_user_id", {"groupID": gid}, "admin")["userIDs"]

    def send(self, gid, who, text):
        env = self.srv.post("/msg/send_msg", {
            "sendID": who, "groupID": gid, "sessionType": 3, "contentType": 101, "senderPlatformID": 5,
            "content": {"content": text}}, token=self.admin)
        self.assertCode(env, 0)

    def seqs(self, gid, who):
        env = self.srv.post("/msg/pull_msg_by_seq", {"userID": who, "seqRanges": [
            {"conversationID": "sg_" + gid, "begin": 1, "end": 1000, "num": 1000}]}, token=self.tok[who])
        self.assertCode(env, 0)
        conv = (env["data"]["msgs"] or {}).get("sg_" + gid)
        return [m["seq"] for m in conv["Msgs"] if m.get("status") != 4] if conv else []

    def test_application_lists_are_empty_and_self_only(self):
        for path, key in (("/group/get_recv_group_applicationList", "fromUserID"),
                          ("/group/get_user_req_group_applicationList", "userID")):
            env = self.srv.post(path, {key: "ga", "pagination": {"pageNumber": 1, "showNumber": 10}},
                                token=self.tok["ga"])
            self.assertCode(env, 0)
            self.assertEqual(env["data"], {"total": 0, "groupRequests": None})
            self.assertCode(self.srv.post(path, {key: "gb"}, token=self.tok["ga"]), 1002)

    def test_codes_and_counts(self):
        self.create("g1", "go", ["ga", "gb"], ["gc"])
        self.assertEqual(self.count("g1"), 4)
        # Unknown group, unknown user, already member, not a member.
        self.assertCode(self.post("invite_user_to_group", {"groupID": "nog", "invitedUserIDs": ["gd"]}, "go"), 1201)
        self.assertCode(self.post("invite_user_to_group", {"groupID": "g1", "invitedUserIDs": ["ghost"]}, "go"), 1101)
        self.assertCode(self.post("invite_user_to_group", {"groupID": "g1", "invitedUserIDs": ["ga"]}, "go"), 1001)
        self.assertCode(self.post("invite_user_to_group", {"groupID": "g1", "invitedUserIDs": ["ge"]}, "gd"), 1203)
        self.assertCode(self.post("kick_group", {"groupID": "nog", "kickedUserIDs": ["ga"]}, "go"), 1201)
        self.assertCode(self.post("quit_group", {"groupID": "nog", "userID": "ga"}, "ga"), 1201)
        # An ordinary member invites; ordinary members cannot kick; admins not the owner/admins.
        self.ok("invite_user_to_group", {"groupID": "g1", "invitedUserIDs": ["gd", "ge"], "reason": ""}, "ga")
        self.assertEqual(self.count("g1"), 6)
        self.assertCode(self.post("kick_group", {"groupID": "g1", "kickedUserIDs": ["gb"]}, "ga"), 1002)
        self.assertCode(self.post("kick_group", {"groupID": "g1", "kickedUserIDs": ["go"]}, "gc"), 1002)
        self.assertCode(self.post("kick_group", {"groupID": "g1", "kickedUserIDs": ["go"]}, "admin"), 1002)
        self.assertCode(self.post("kick_group", {"groupID": "g1", "kickedUserIDs": ["gf"]}, "go"), 1004)
        self.ok("kick_group", {"groupID": "g1", "kickedUserIDs": ["gb", "gd"], "reason": "x"}, "gc")
        self.assertEqual(self.count("g1"), 4)
        # The owner cannot quit; others only for themselves (or the app admin).
        self.assertCode(self.post("quit_group", {"groupID": "g1", "userID": "go"}, "go"), 1002)
        self.assertCode(self.post("quit_group", {"groupID": "g1", "userID": "ga"}, "ge"), 1002)
        self.assertCode(self.post("quit_group", {"groupID": "g1", "userID": "gb"}, "gb"), 1203)
        self.ok("quit_group", {"groupID": "g1", "userID": "ga"}, "ga")
        self.ok("quit_group", {"groupID": "g1", "userID": "ge"}, "admin")
        self.assertEqual(self.count("g1"), 2)
        self.assertEqual(self.members("g1"), ["gc", "go"])
        self.assertCode(self.post("get_group_member_list", {"groupID": "g1"}, "ga"), 1203)

    def test_tips_pushes_and_cap(self):
        self.create("g2", "go", ["ga", "gb"])
        self.send("g2", "go", "m1")

        async def run():
            cs = {u: await Client(u, self.tok[u]).connect(self.srv.ws_port) for u in ("go", "ga", "gb", "gd")}
            try:
                self.ok("invite_user_to_group", {"groupID": "g2", "invitedUserIDs": ["gd"]}, "ga")
                for u in ("go", "gd"):
                    got = {}
                    for _ in range(2):
                        kind, conv, m = await next_push(cs[u], {1509})
                        got[kind] = (conv, m)
                    self.assertEqual(got["notificationMsgs"][0], "n_g2")
                    self.assertEqual(got["notificationMsgs"][1]["seq"], 0)
                    self.assertEqual(got["msgs"][0], "sg_g2")
                    self.assertGreater(got["msgs"][1]["seq"], 0)
                    t = tips(got["notificationMsgs"][1])
                    self.assertEqual(t["group"]["memberCount"], 4)
                    self.assertEqual(t["opUser"]["userID"], "ga")
                    self.assertEqual([x["userID"] for x in t["invitedUserList"]], ["gd"])
                    self.assertIn("groupMemberVersionID", t)
                    self.assertGreater(t["operationTime"], 0)
                self.ok("kick_group", {"groupID": "g2", "kickedUserIDs": ["gb"]}, "go")
                for u in ("ga", "gb"):  # gb is no longer a member, and still hears of it
                    _, _, m = await next_push(cs[u], {1508})
                    t = tips(m)
                    self.assertEqual(t["group"]["memberCount"], 3)
                    self.assertEqual([x["userID"] for x in t["kickedUserList"]], ["gb"])
                    self.assertEqual(t["opUser"]["userID"], "go")
                self.ok("quit_group", {"groupID": "g2", "userID": "gd"}, "gd")
                for u in ("go", "gd"):
                    kinds = set()
                    for _ in range(2):
                        kind, _, m = await next_push(cs[u], {1504})
                        kinds.add(kind)
                        t = tips(m)
                        self.assertEqual(t["quitUser"]["userID"], "gd")
                        self.assertEqual(t["group"]["memberCount"], 2)
                    self.assertEqual(kinds, {"msgs", "notificationMsgs"})
            finally:
                for c in cs.values():
                    await c.close()
        asyncio.run(run())
        # The kicked user reads history up to leaving and nothing after.
        before = self.seqs("g2", "gb")
        self.send("g2", "go", "after")
        self.assertEqual(self.seqs("g2", "gb"), before)
        self.assertGreater(len(self.seqs("g2", "go")), len(before))
        # Back in: the cap is gone.
        self.ok("invite_user_to_group", {"groupID": "g2", "invitedUserIDs": ["gb"]}, "go")
        self.assertEqual(self.seqs("g2", "gb"), self.seqs("g2", "go"))

    def test_incremental_sync(self):
        self.create("g3", "go", ["ga"])
        full = self.ok("get_incremental_join_groups", {"userID": "ga", "versionID": "", "version": 0}, "ga")
        self.assertTrue(full["full"])
        self.assertIsNone(full["insert"])
        ids = self.ok("get_full_join_group_ids", {"userID": "ga", "idHash": 0}, "ga")
        self.assertIn("g3", ids["groupIDs"])
        self.assertEqual((ids["version"], ids["versionID"]), (full["version"], full["versionID"]))
        req = {"userID": "go", "reqList": [{"groupID": "g3", "versionID": "", "version": 0}]}
        m0 = self.ok("get_incremental_group_members_batch", req, "go")["respList"]["g3"]
        self.assertTrue(m0["full"])
        self.assertIsNone(m0["insert"])
        self.assertIsNone(m0["delete"])
        self.assertEqual(m0["group"]["memberCount"], 2)
        fm = self.ok("get_full_group_member_user_ids", {"groupID": "g3", "idHash": 0}, "go")
        self.assertEqual(fm["userIDs"], ["ga", "go"])
        self.assertEqual(fm["version"], m0["version"])

        self.ok("invite_user_to_group", {"groupID": "g3", "invitedUserIDs": ["gb", "gc"]}, "go")
        self.ok("kick_group", {"groupID": "g3", "kickedUserIDs": ["ga"]}, "go")
        req["reqList"][0].update(versionID=m0["versionID"], version=m0["version"])
        m1 = self.ok("get_incremental_group_members_batch", req, "go")["respList"]["g3"]
        self.assertFalse(m1["full"])
        self.assertEqual(m1["version"], m0["version"] + 2)
        self.assertEqual(sorted(x["userID"] for x in m1["insert"]), ["gb", "gc"])
        self.assertEqual(m1["delete"], ["ga"])
        self.assertIsNone(m1["update"])
        self.assertEqual(m1["group"]["memberCount"], 3)
        # Nothing new: null lists.
        req["reqList"][0].update(versionID=m1["versionID"], version=m1["version"])
        m2 = self.ok("get_incremental_group_members_batch", req, "go")["respList"]["g3"]
        self.assertEqual((m2["full"], m2["insert"], m2["delete"], m2["update"]), (False, None, None, None))
        # The kicked user's join log: a delete; the invited one's: an insert.
        j1 = self.ok("get_incremental_join_groups", {"userID": "ga", "versionID": full["versionID"],
                                                     "version": full["version"]}, "ga")
        self.assertEqual((j1["full"], j1["delete"], j1["insert"]), (False, ["g3"], None))
        jb = self.ok("get_incremental_join_groups", {"userID": "gb", "versionID": "", "version": 0}, "gb")
        self.assertTrue(jb["full"])
        self.assertEqual(self.ok("get_full_join_group_ids", {"userID": "ga", "idHash": 0}, "ga")["groupIDs"] or [],
                         [g for g in (ids["groupIDs"] or []) if g != "g3"])


if __name__ == "__main__":
    unittest.main()
