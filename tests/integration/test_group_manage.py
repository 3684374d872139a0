"""/group/ settings, mutes, roles, owner transfer, dismiss and join requests: codes, effects,
the tips over WS and the group-member log (openim-protocol.md §3.4, §5.4, §7, §8.2, §8.4, §8.5)."""
import asyncio
import os
import unittest

from harness import ServerTest
from imws import Client, msgdata_text
from test_group import next_push, tips


class GroupBase(ServerTest):
    users = ()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        assert cls.srv.register(cls.admin, list(cls.users))["errCode"] == 0
        cls.tok = {u: cls.srv.user_token(cls.admin, u) for u in cls.users}

    def post(self, path, body, who):
        tok = self.admin if who == "admin" else self.tok[who]
        return self.srv.post("/group/" + path, body, token=tok)

    def ok(self, path, body, who):
        env = self.post(path, body, who)
        self.assertCode(env, 0)
        return env.get("data")

    def create(self, gid, owner, members, admins=(), **info):
        self.ok("create_group", {"ownerUserID": owner, "memberUserIDs": list(members),
                                 "adminUserIDs": list(admins),
                                 "groupInfo": dict({"groupID": gid, "groupName": gid, "groupType": 2}, **info)},
                owner)

    def info(self, gid):
        return self.ok("get_groups_info", {"groupIDs": [gid]}, "admin")["groupInfos"][0]

    def member(self, gid, uid):
        return self.ok("get_group_members_info", {"groupID": gid, "userIDs": [uid]}, "admin")["members"][0]

    def members(self, gid):
        return self.ok("get_group_member_user_id", {"groupID": gid}, "admin")["userIDs"] or []

    def send(self, gid, who, text="hi"):
        """Sends as `who` over its own WebSocket (1003: the member rules apply): the errCode."""
        async def go():
            c = await Client(who, self.tok[who]).connect(self.srv.ws_port)
            try:
                code, _, _ = await c.request(1003, msgdata_text(who, group_id=gid, session=3, text=text,
                                                                client_msg_id=os.urandom(8).hex()))
                return code
            finally:
                await c.close()
        return asyncio.run(go())

    def versions(self, gid):
        r = self.ok("get_incremental_group_members", {"groupID": gid, "versionID": "", "version": 0}, "admin")
        return r["versionID"], r["version"]

    def since(self, gid, vid, version):
        return self.ok("get_incremental_group_members", {"groupID": gid, "versionID": vid, "version": version},
                       "admin")

    def stream(self, gid, who):
        """contentTypes stored in n_<gid> as who reads them."""
        env = self.srv.post("/msg/pull_msg_by_seq", {"userID": who, "seqRanges": [
            {"conversationID": "n_" + gid, "begin": 1, "end": 100, "num": 100}]}, token=self.tok[who])
        self.assertCode(env, 0)
        conv = (env["data"]["notificationMsgs"] or {}).get("n_" + gid)
        return [m["contentType"] for m in conv["Msgs"] if m.get("status") != 4] if conv else []

    def run_ws(self, users, body):
        async def run():
            cs = {u: await Client(u, self.tok[u]).connect(self.srv.ws_port) for u in users}
            try:
                await body(cs)
            finally:
                for c in cs.values():
                    await c.close()
        asyncio.run(run())


class GroupManageTest(GroupBase):
    users = ("mo", "ma", "mb", "mc", "md", "me", "mx", "mp", "mq")

    def test_profile_change_updates_groups_without_own_name_and_face(self):
        """A nickname change bumps the member log and sends 1516 in each group where the member
        has no group nickname or no group face (OpenIM's NotificationUserInfoUpdate), before the
        request is answered; a group showing both of its own is left alone."""
        for gid in ("pg1", "pg2", "pg3"):
            self.create(gid, "mq", ["mp"])
        m = lambda gid, **kw: {"members": [dict({"groupID": gid, "userID": "mp"}, **kw)]}
        self.ok("set_group_member_info", m("pg2", nickname="P2", faceURL="f2"), "mp")
        self.ok("set_group_member_info", m("pg3", nickname="P3"), "mp")
        before = {gid: self.versions(gid) for gid in ("pg1", "pg2", "pg3")}

        async def body(cs):
            env = self.srv.post("/user/update_user_info", {"userInfo": {
                "userID": "mp", "nickname": "renamed"}}, token=self.tok["mp"])
            self.assertCode(env, 0)
            # Answered after every group's command: the logs moved already.
            for gid in ("pg1", "pg3"):
                vid, v0 = before[gid]
                inc = self.since(gid, vid, v0)
                self.assertEqual(([x["userID"] for x in inc["update"]], inc["version"]),
                                 (["mp"], v0 + 1), gid)
            self.assertEqual(self.versions("pg2"), before["pg2"])
            seen = {}
            while len(seen) < 2:
                _, conv, msg = await next_push(cs["mq"], {1516})
                t = tips(msg)
                seen[msg["groupID"]] = t
                self.assertEqual((conv, t["changedUser"]["userID"], t["opUser"]["userID"]),
                                 ("n_" + msg["groupID"], "mp", "mp"))
                self.assertEqual(t["groupMemberVersion"], before[msg["groupID"]][1] + 1)
            self.assertEqual(sorted(seen), ["pg1", "pg3"])
        self.run_ws(("mq",), body)

    def test_set_group_info(self):
        self.create("s1", "mo", ["mb", "mc"], ["ma"])
        vid, v0 = self.versions("s1")
        # Ordinary member 1002, outsider 1004, unknown group 1201; nothing changes.
        self.assertCode(self.post("set_group_info_ex", {"groupID": "s1", "groupName": "x"}, "mb"), 1002)
        self.assertCode(self.post("set_group_info_ex", {"groupID": "s1", "groupName": "x"}, "mx"), 1004)
        self.assertCode(self.post("set_group_info_ex", {"groupID": "nos", "groupName": "x"}, "mo"), 1201)
        self.assertEqual(self.info("s1")["groupName"], "s1")
        self.assertEqual(self.versions("s1"), (vid, v0))

        async def body(cs):
            self.ok("set_group_info_ex", {"groupID": "s1", "groupName": "New", "notification": "read me",
                                          "needVerification": 2}, "ma")
            for u in ("mo", "mc"):
                seen = {}
                for _ in range(4):  # 1520 and 1519 twice (online + chat copy), 1502 once
                    kind, conv, m = await next_push(cs[u], {1502, 1519, 1520})
                    seen.setdefault(m["contentType"], set()).add(kind)
                    t = tips(m)
                    self.assertEqual(t["group"]["groupName"], "New")
                    self.assertEqual(t["group"]["notification"], "read me")
                    self.assertEqual(t["opUser"]["userID"], "ma")
                    self.assertEqual((t["groupMemberVersionID"], t["groupMemberVersion"]), (vid, v0 + 1))
                kind, _, m = await next_push(cs[u], {1502, 1519, 1520})
                seen.setdefault(m["contentType"], set()).add(kind)
                self.assertEqual(seen, {1519: {"msgs", "notificationMsgs"}, 1520: {"msgs", "notificationMsgs"},
                                        1502: {"notificationMsgs"}})
        self.run_ws(("mo", "mc"), body)
        g = self.info("s1")
        self.assertEqual((g["groupName"], g["notification"], g["needVerification"]), ("New", "read me", 2))
        self.assertEqual(g["notificationUserID"], "ma")
        self.assertGreater(g["notificationUpdateTime"], 0)
        # The announcement marks every member's conversation (groupAtType 4).
        conv = self.srv.post("/conversation/get_conversation", {"ownerUserID": "mc", "conversationID": "sg_s1"},
                             token=self.tok["mc"])
        self.assertCode(conv, 0)
        self.assertEqual(conv["data"]["conversation"]["groupAtType"], 4)
        # The member log: one version later, only the group changed.
        inc = self.since("s1", vid, v0)
        self.assertEqual((inc["full"], inc["version"], inc["insert"], inc["update"], inc["delete"]),
                         (False, v0 + 1, None, None, None))
        self.assertEqual(inc["group"]["groupName"], "New")
        # set_group_info (the older form): empty strings do not apply.
        self.ok("set_group_info", {"groupInfoForSet": {"groupID": "s1", "groupName": "", "introduction": "intro"}},
                "mo")
        g = self.info("s1")
        self.assertEqual((g["groupName"], g["introduction"]), ("New", "intro"))
        # By default (notification.yml) none of these was stored in the n_ stream.
        self.assertEqual(self.stream("s1", "mc"), [])

    def test_mutes(self):
        self.create("s2", "mo", ["mb", "mc"], ["ma", "md"])
        # Who may mute whom.
        self.assertCode(self.post("mute_group_member", {"groupID": "s2", "userID": "mo", "mutedSeconds": 60}, "ma"),
                        1002)
        self.assertCode(self.post("mute_group_member", {"groupID": "s2", "userID": "md", "mutedSeconds": 60}, "ma"),
                        1002)
        self.assertCode(self.post("mute_group_member", {"groupID": "s2", "userID": "mc", "mutedSeconds": 60}, "mb"),
                        1002)
        self.assertCode(self.post("mute_group_member", {"groupID": "s2", "userID": "mx", "mutedSeconds": 60}, "mo"),
                        1004)
        self.assertEqual(self.member("s2", "mb")["muteEndTime"], 0)

        async def body(cs):
            self.ok("mute_group_member", {"groupID": "s2", "userID": "mb", "mutedSeconds": 3600}, "ma")
            _, _, m = await next_push(cs["mc"], {1512})
            t = tips(m)
            self.assertEqual(t["mutedUser"]["userID"], "mb")
            self.assertEqual(t["mutedSeconds"], 3600)
            self.assertGreater(t["mutedUser"]["muteEndTime"], t["operationTime"])
        self.run_ws(("mc",), body)
        self.assertGreater(self.member("s2", "mb")["muteEndTime"], 0)
        self.assertEqual(self.send("s2", "mb"), 1402)
        self.assertEqual(self.send("s2", "mc"), 0)
        self.ok("cancel_mute_group_member", {"groupID": "s2", "userID": "mb"}, "mo")
        self.assertEqual(self.member("s2", "mb")["muteEndTime"], 0)
        self.assertEqual(self.send("s2", "mb"), 0)
        # The whole group: ordinary members 1403, managers still speak.
        self.assertCode(self.post("mute_group", {"groupID": "s2"}, "mb"), 1002)
        self.ok("mute_group", {"groupID": "s2"}, "md")
        self.assertEqual(self.info("s2")["status"], 3)
        self.assertEqual(self.send("s2", "mc"), 1403)
        self.assertEqual(self.send("s2", "ma"), 0)
        self.ok("cancel_mute_group", {"groupID": "s2"}, "mo")
        self.assertEqual(self.info("s2")["status"], 0)
        self.assertEqual(self.send("s2", "mc"), 0)

    def test_member_info_and_roles(self):
        self.create("s3", "mo", ["mb", "mc"], ["ma"])
        vid, v0 = self.versions("s3")
        m = lambda **kw: {"members": [dict({"groupID": "s3"}, **kw)]}
        self.assertCode(self.post("set_group_member_info", m(userID="mc", nickname="x"), "mb"), 1002)
        self.assertCode(self.post("set_group_member_info", m(userID="mb", roleLevel=60), "mb"), 1002)
        self.assertCode(self.post("set_group_member_info", m(userID="mo", nickname="x"), "ma"), 1002)
        self.assertCode(self.post("set_group_member_info", m(userID="mb", roleLevel=100), "mo"), 1002)
        self.assertCode(self.post("set_group_member_info", m(userID="mb", roleLevel=30), "mo"), 1001)
        self.assertCode(self.post("set_group_member_info", m(userID="mx", nickname="x"), "mo"), 1001)
        self.assertCode(self.post("set_group_member_info", m(userID="mo", roleLevel=20), "mo"), 1001)
        self.assertEqual(self.versions("s3"), (vid, v0))

        async def body(cs):
            self.ok("set_group_member_info", m(userID="mb", nickname="Bee"), "mb")
            _, _, msg = await next_push(cs["mo"], {1516})
            self.assertEqual(tips(msg)["changedUser"]["nickname"], "Bee")
            self.ok("set_group_member_info", m(userID="mc", roleLevel=60), "mo")
            _, _, msg = await next_push(cs["mb"], {1517})
            t = tips(msg)
            self.assertEqual((t["changedUser"]["userID"], t["changedUser"]["roleLevel"]), ("mc", 60))
            self.assertEqual(t["groupMemberVersion"], v0 + 2)
        self.run_ws(("mo", "mb"), body)
        self.assertEqual(self.member("s3", "mb")["nickname"], "Bee")
        self.assertEqual(self.member("s3", "mc")["roleLevel"], 60)
        inc = self.since("s3", vid, v0)
        self.assertFalse(inc["full"])
        self.assertEqual(sorted(x["userID"] for x in inc["update"]), ["mb", "mc"])
        self.assertEqual(inc["sortVersion"], v0 + 2)
        # Back to member: 1518; an admin may now kick the ex-admin.
        self.ok("set_group_member_info", m(userID="mc", roleLevel=20), "mo")
        self.assertEqual(self.member("s3", "mc")["roleLevel"], 20)
        self.ok("kick_group", {"groupID": "s3", "kickedUserIDs": ["mc"]}, "ma")

    def test_transfer_and_dismiss(self):
        self.create("s4", "mo", ["mb"], ["ma"])
        self.assertCode(self.post("transfer_group", {"groupID": "s4", "oldOwnerUserID": "mo",
                                                     "newOwnerUserID": "ma"}, "ma"), 1002)
        self.assertCode(self.post("transfer_group", {"groupID": "s4", "oldOwnerUserID": "mo",
                                                     "newOwnerUserID": "mx"}, "mo"), 1001)
        self.assertCode(self.post("transfer_group", {"groupID": "s4", "oldOwnerUserID": "mo",
                                                     "newOwnerUserID": "mo"}, "mo"), 1001)

        async def body(cs):
            self.ok("transfer_group", {"groupID": "s4", "oldOwnerUserID": "mo", "newOwnerUserID": "ma"}, "mo")
            _, _, m = await next_push(cs["mb"], {1507})
            t = tips(m)
            self.assertEqual(t["group"]["ownerUserID"], "ma")
            self.assertEqual(t["newGroupOwner"]["roleLevel"], 100)
            self.assertEqual((t["oldGroupOwner"], t["oldGroupOwnerInfo"]["roleLevel"]), ("mo", 60))
        self.run_ws(("mb",), body)
        self.assertEqual(self.info("s4")["ownerUserID"], "ma")
        self.assertEqual(self.member("s4", "mo")["roleLevel"], 60)
        self.ok("quit_group", {"groupID": "s4", "userID": "mo"}, "mo")  # no longer the owner
        self.assertCode(self.post("quit_group", {"groupID": "s4", "userID": "ma"}, "ma"), 1002)
        # Dismiss: the owner only; then sends and changes are 1204, the group leaves the joined list.
        self.assertCode(self.post("dismiss_group", {"groupID": "s4"}, "mb"), 1002)

        async def body2(cs):
            self.ok("dismiss_group", {"groupID": "s4", "deleteMember": False}, "ma")
            _, _, m = await next_push(cs["mb"], {1511})
            self.assertEqual(tips(m)["opUser"]["userID"], "ma")
        self.run_ws(("mb",), body2)
        self.assertEqual(self.info("s4")["status"], 2)
        self.assertEqual(self.send("s4", "ma"), 1204)
        self.assertCode(self.post("dismiss_group", {"groupID": "s4"}, "ma"), 1204)
        self.assertCode(self.post("set_group_info_ex", {"groupID": "s4", "groupName": "z"}, "ma"), 1204)
        self.assertCode(self.post("get_incremental_group_members",
                                  {"groupID": "s4", "versionID": "", "version": 0}, "ma"), 1204)
        joined = self.ok("get_joined_group_list", {"fromUserID": "mb", "pagination":
                                                   {"pageNumber": 1, "showNumber": 100}}, "mb")
        self.assertNotIn("s4", [g["groupID"] for g in joined["groups"] or []])
        # With deleteMember every row goes and the join logs say so.
        j0 = self.ok("get_incremental_join_groups", {"userID": "mb", "versionID": "", "version": 0}, "mb")
        self.ok("dismiss_group", {"groupID": "s4", "deleteMember": True}, "admin")
        self.assertEqual(self.members("s4"), [])
        self.assertEqual(self.info("s4")["memberCount"], 0)
        j1 = self.ok("get_incremental_join_groups", {"userID": "mb", "versionID": j0["versionID"],
                                                     "version": j0["version"]}, "mb")
        self.assertEqual((j1["full"], j1["delete"]), (False, ["s4"]))

    def test_abstract_info_and_search(self):
        self.create("s5", "mo", ["mb"], groupName="Searchable five")
        a = self.ok("get_group_abstract_info", {"groupIDs": ["s5"]}, "mb")["groupAbstractInfos"][0]
        self.assertEqual((a["groupID"], a["groupMemberNumber"]), ("s5", 2))
        self.ok("invite_user_to_group", {"groupID": "s5", "invitedUserIDs": ["mc"]}, "mo")
        b = self.ok("get_group_abstract_info", {"groupIDs": ["s5"]}, "mb")["groupAbstractInfos"][0]
        self.assertEqual(b["groupMemberNumber"], 3)
        self.assertNotEqual(a["groupMemberListHash"], b["groupMemberListHash"])
        self.assertCode(self.post("get_group_abstract_info", {"groupIDs": ["s5", "s5"]}, "mb"), 1001)
        self.assertCode(self.post("get_group_abstract_info", {"groupIDs": ["nope"]}, "mb"), 1201)
        found = self.ok("get_groups", {"groupName": "Searchable", "pagination":
                                       {"pageNumber": 1, "showNumber": 10}}, "admin")
        self.assertEqual(found["total"], 1)
        self.assertEqual(found["groups"][0]["groupOwnerUserID"], "mo")
        self.assertEqual(found["groups"][0]["groupInfo"]["groupID"], "s5")


class LargeChangesTest(GroupBase):
    """create_group with 300 members (the 1501 tips list the first 100 so they fit one message),
    an invitation of 120 users (three commands of at most 50, each with its own 1509 and log
    version: OpenIM's batches) and a kick of 120."""
    users = ("lo", "lw")

    def test_batches(self):
        many = ["lu%03d" % i for i in range(420)]
        self.assertCode(self.srv.register(self.admin, many), 0)
        self.create("l1", "lo", many[:300])
        self.assertEqual(self.info("l1")["memberCount"], 301)
        vid, v0 = self.versions("l1")

        async def body(cs):
            self.ok("invite_user_to_group", {"groupID": "l1", "invitedUserIDs": many[300:] + ["lw"]}, "lo")
            sizes, versions = [], []
            while sum(sizes) < 121:
                _, _, m = await next_push(cs["lw"] if sum(sizes) >= 100 else cs["lo"], {1509})
                if m["seq"] == 0:  # the online copies only (the stored ones repeat them)
                    t = tips(m)
                    sizes.append(len(t["invitedUserList"]))
                    versions.append(t["groupMemberVersion"])
            self.assertEqual(sizes, [50, 50, 21])
            self.assertEqual(versions, [v0 + 1, v0 + 2, v0 + 3])
        self.run_ws(("lo", "lw"), body)
        self.assertEqual(self.info("l1")["memberCount"], 422)
        self.assertEqual(self.versions("l1"), (vid, v0 + 3))
        # A repeated id is refused before anything is applied.
        self.assertCode(self.post("invite_user_to_group", {"groupID": "l1", "invitedUserIDs": ["lw", "lw"]}, "lo"),
                        1001)
        self.ok("kick_group", {"groupID": "l1", "kickedUserIDs": many[:120], "reason": ""}, "lo")
        self.assertEqual(self.info("l1")["memberCount"], 302)
        self.assertEqual(self.versions("l1"), (vid, v0 + 6))
        self.assertEqual(set(self.members("l1")) & set(many[:120]), set())


class JoinRequestTest(GroupBase):
    users = ("jo", "ja", "jb", "jc", "jd", "je", "jf")

    def lists(self, who, key, path):
        return self.ok(path, {key: who, "pagination": {"pageNumber": 1, "showNumber": 50}}, who)

    def test_apply_and_respond(self):
        self.create("j1", "jo", ["jb"], ["ja"])  # needVerification 0: requests need approval

        async def body(cs):
            self.ok("join_group", {"groupID": "j1", "reqMessage": "let me in", "joinSource": 3,
                                   "inviterUserID": "jc"}, "jc")
            for u in ("jo", "ja", "jc"):
                kind, conv, m = await next_push(cs[u], {1503})
                self.assertEqual(kind, "notificationMsgs")
                t = tips(m)
                self.assertEqual((t["applicant"]["userID"], t["group"]["groupID"], t["reqMsg"]),
                                 ("jc", "j1", "let me in"))
            self.ok("group_application_response", {"groupID": "j1", "fromUserID": "jc", "handledMsg": "ok",
                                                   "handleResult": 1}, "ja")
            for u, as_ in (("jc", 0), ("jo", 1)):
                _, _, m = await next_push(cs[u], {1505})
                t = tips(m)
                self.assertEqual((t["receiverAs"], t["opUser"]["userID"], t["handleMsg"]), (as_, "ja", "ok"))
            _, _, m = await next_push(cs["jc"], {1509})
            self.assertEqual([x["userID"] for x in tips(m)["invitedUserList"]], ["jc"])
        self.run_ws(("jo", "ja", "jc"), body)
        self.assertIn("jc", self.members("j1"))
        m = self.member("j1", "jc")
        self.assertEqual((m["joinSource"], m["operatorUserID"], m["roleLevel"]), (3, "ja", 20))
        # The lists, from both sides, and the specified request.
        recv = self.lists("jo", "fromUserID", "get_recv_group_applicationList")
        self.assertEqual(recv["total"], 1)
        r = recv["groupRequests"][0]
        self.assertEqual((r["userInfo"]["userID"], r["groupInfo"]["groupID"], r["handleResult"],
                          r["handleUserID"], r["reqMsg"]), ("jc", "j1", 1, "ja", "let me in"))
        mine = self.lists("jc", "userID", "get_user_req_group_applicationList")
        self.assertEqual([x["groupInfo"]["groupID"] for x in mine["groupRequests"]], ["j1"])
        self.assertEqual(self.lists("jb", "fromUserID", "get_recv_group_applicationList"),
                         {"total": 0, "groupRequests": None})
        self.assertEqual(self.ok("get_group_application_unhandled_count", {"userID": "jo", "time": 0}, "jo"),
                         {"count": 0})
        spec = self.ok("get_specified_user_group_request_info", {"groupID": "j1", "userID": "jc"}, "jc")
        self.assertEqual(spec["total"], 1)
        self.assertCode(self.post("get_specified_user_group_request_info", {"groupID": "j1", "userID": "jc"},
                                  "jb"), 1002)
        # Handled already: 1206; an ordinary member: 1002; no request: 1004; bad result: 1001.
        self.assertCode(self.post("group_application_response", {"groupID": "j1", "fromUserID": "jc",
                                                                 "handleResult": 1}, "jo"), 1206)
        self.ok("join_group", {"groupID": "j1", "reqMessage": "me too", "joinSource": 3, "inviterUserID": "jd"},
                "jd")
        self.assertCode(self.post("group_application_response", {"groupID": "j1", "fromUserID": "jd",
                                                                 "handleResult": 1}, "jb"), 1002)
        self.assertEqual(self.ok("get_group_application_unhandled_count", {"userID": "ja", "time": 0}, "ja"),
                         {"count": 1})
        self.assertEqual(self.ok("get_group_application_unhandled_count", {"userID": "jb", "time": 0}, "jb"),
                         {"count": 0})
        self.assertCode(self.post("group_application_response", {"groupID": "j1", "fromUserID": "je",
                                                                 "handleResult": 1}, "jo"), 1004)
        self.assertCode(self.post("group_application_response", {"groupID": "j1", "fromUserID": "jd",
                                                                 "handleResult": 2}, "jo"), 1001)
        self.assertNotIn("jd", self.members("j1"))
        self.ok("group_application_response", {"groupID": "j1", "fromUserID": "jd", "handledMsg": "no",
                                               "handleResult": -1}, "jo")
        self.assertNotIn("jd", self.members("j1"))
        got = self.ok("get_group_users_req_application_list", {"groupID": "j1", "userIDs": ["jd", "jc"]}, "jo")
        self.assertEqual(sorted((x["userInfo"]["userID"], x["handleResult"]) for x in got["groupRequests"]),
                         [("jc", 1), ("jd", -1)])
        # Asking again resets the request to pending.
        self.ok("join_group", {"groupID": "j1", "reqMessage": "again", "joinSource": 3, "inviterUserID": "jd"},
                "jd")
        spec = self.ok("get_specified_user_group_request_info", {"groupID": "j1", "userID": "jd"}, "jo")
        self.assertEqual((spec["groupRequests"][0]["handleResult"], spec["groupRequests"][0]["reqMsg"]),
                         (0, "again"))
        # Codes of join_group: a member 1001, unknown group 1201, for someone else 1002.
        self.assertCode(self.post("join_group", {"groupID": "j1", "inviterUserID": "jc"}, "jc"), 1001)
        self.assertCode(self.post("join_group", {"groupID": "noj", "inviterUserID": "je"}, "je"), 1201)
        self.assertCode(self.post("join_group", {"groupID": "j1", "inviterUserID": "je"}, "jf"), 1002)

    def test_verification_modes(self):
        self.create("j2", "jo", ["jb"], ["ja"], needVerification=2)

        async def body(cs):
            self.ok("join_group", {"groupID": "j2", "joinSource": 4, "inviterUserID": "je"}, "je")
            _, _, m = await next_push(cs["jo"], {1510})
            self.assertEqual(tips(m)["entrantUser"]["userID"], "je")
        self.run_ws(("jo",), body)
        self.assertIn("je", self.members("j2"))
        # needVerification 1: an ordinary member's invitation waits, an admin's does not.
        self.create("j3", "jo", ["jb"], ["ja"], needVerification=1)
        self.ok("invite_user_to_group", {"groupID": "j3", "invitedUserIDs": ["jf"]}, "jb")
        self.assertNotIn("jf", self.members("j3"))
        spec = self.ok("get_specified_user_group_request_info", {"groupID": "j3", "userID": "jf"}, "jo")
        q = spec["groupRequests"][0]
        self.assertEqual((q["handleResult"], q["joinSource"], q["inviterUserID"]), (0, 2, "jb"))
        self.ok("group_application_response", {"groupID": "j3", "fromUserID": "jf", "handleResult": 1}, "jo")
        m = self.member("j3", "jf")
        self.assertEqual((m["inviterUserID"], m["joinSource"]), ("jb", 2))
        self.ok("invite_user_to_group", {"groupID": "j3", "invitedUserIDs": ["jd"]}, "ja")
        self.assertIn("jd", self.members("j3"))


class StoredNotificationsTest(GroupBase):
    """notification_reliability 2: the online-only notifications are stored in the n_ streams
    too, so a member that was offline pulls them (§8.5); GroupManageTest runs with the default."""
    users = ("no", "na")
    server_args = ("--notification-reliability", "2")

    def test_offline_member_pulls_the_notifications(self):
        self.create("n1", "no", ["na"])
        self.ok("set_group_info_ex", {"groupID": "n1", "introduction": "x"}, "no")  # 1502
        self.ok("set_group_member_info", {"members": [{"groupID": "n1", "userID": "na", "nickname": "A"}]}, "na")
        self.assertEqual(self.stream("n1", "na"), [1501, 1502, 1516])


class HistoryForNewMembersTest(GroupBase):
    users = ("ho", "ha", "hb")
    server_args = ("--enable-history-for-new-members", "0")

    def seqs(self, gid, who):
        env = self.srv.post("/msg/pull_msg_by_seq", {"userID": who, "seqRanges": [
            {"conversationID": "sg_" + gid, "begin": 1, "end": 1000, "num": 1000}]}, token=self.tok[who])
        self.assertCode(env, 0)
        conv = (env["data"]["msgs"] or {}).get("sg_" + gid)
        return [m["seq"] for m in conv["Msgs"] if m.get("status") != 4] if conv else []

    def test_new_members_start_after_the_history(self):
        self.create("h1", "ho", ["ha"], needVerification=2)
        for i in range(3):
            self.assertEqual(self.send("h1", "ho", "old %d" % i), 0)
        before = self.seqs("h1", "ho")
        self.ok("invite_user_to_group", {"groupID": "h1", "invitedUserIDs": ["hb"]}, "ho")
        self.assertEqual(self.send("h1", "ho", "new"), 0)
        seen = self.seqs("h1", "hb")
        self.assertTrue(seen)
        self.assertTrue(all(s > max(before) for s in seen), (seen, before))
        self.assertEqual(seen, [s for s in self.seqs("h1", "ho") if s > max(before)])


if __name__ == "__main__":
    unittest.main()
