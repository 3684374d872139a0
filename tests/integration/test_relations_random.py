"""Seeded random relation changes (openim-protocol.md §7, §8): a few hundred friend, blacklist,
group, member and conversation operations over ten users and three groups. Every version-log
document (friends, blacklist, joined groups and conversations of each user, members of each
group) is read after every operation; each time its version moved, its full list is recorded.
At the end:
  - an incremental sync from EVERY recorded version, applied to the list recorded with it,
    yields exactly the server's final list (and the logs never answer `full` for these small
    histories);
  - the full-ID endpoints agree with the lists, and idHash makes them answer `equal`;
  - a fresh login of each user with the real JS SDK lists exactly the server's friends,
    blacklist, joined groups and their members (skipped without node).
The seed is printed; IMLOG_SEED=N replays one run, IMLOG_RANDOM_OPS=N changes the length.
"""
import json
import os
import random
import subprocess
import unittest

from harness import ServerTest
import test_sdk_js

SEED = int(os.environ.get("IMLOG_SEED") or random.SystemRandom().randrange(1 << 30))
OPS = int(os.environ.get("IMLOG_RANDOM_OPS") or 300)
PAGE = {"pageNumber": 1, "showNumber": 1000}

# Codes an operation may legitimately get from a random (often invalid) request: they must
# leave everything unchanged, which the version checks below would catch.
ALLOWED = {0, 1001, 1002, 1003, 1004, 1101, 1201, 1203, 1204, 1206, 1301, 1304, 1305}


class RelationsRandomTest(ServerTest):
    def setUp(self):
        print("IMLOG_SEED=%d IMLOG_RANDOM_OPS=%d" % (SEED, OPS), flush=True)
        self.rnd = random.Random(SEED)
        self.users = ["rr%d" % i for i in range(10)]
        self.groups = ["rg0", "rg1", "rg2"]
        self.assertCode(self.srv.register(self.admin, self.users), 0)
        self.tok = {u: self.srv.user_token(self.admin, u) for u in self.users}
        self.codes = {}

    # ---- REST

    def call(self, path, body, who="admin"):
        env = self.srv.post(path, body, token=self.admin if who == "admin" else self.tok[who])
        self.codes[env["errCode"]] = self.codes.get(env["errCode"], 0) + 1
        self.assertIn(env["errCode"], ALLOWED, (path, body, who, env))
        return env

    def data(self, path, body):
        env = self.srv.post(path, body, token=self.admin)
        self.assertCode(env, 0, (path, body, env))
        return env["data"]

    # ---- the documents: (kind, id) -> list path, incremental path, how to read elements

    def docs(self):
        return [(k, u) for u in self.users for k in ("friend", "black", "join", "conv")] + \
               [("member", g) for g in self.groups]

    INC = {"friend": ("/friend/get_incremental_friends", "userID"),
           "black": ("/friend/get_incremental_blacks", "userID"),
           "join": ("/group/get_incremental_join_groups", "userID"),
           "conv": ("/conversation/get_incremental_conversations", "userID"),
           "member": ("/group/get_incremental_group_members", "groupID")}

    @staticmethod
    def elem(kind, o):
        """(id, the fields the log must keep current) of one object of a list or an answer."""
        if kind == "friend":
            return o["friendUser"]["userID"], (o["remark"], o["isPinned"], o["friendUser"]["nickname"])
        if kind == "black":
            return o["blackUserInfo"]["userID"], None
        if kind == "join":
            return o["groupID"], None
        if kind == "conv":
            return o["conversationID"], (o["isPinned"], o["recvMsgOpt"], o["groupAtType"])
        return o["userID"], (o["roleLevel"], o["nickname"], o["muteEndTime"])

    def fetch(self, kind, doc):
        if kind == "friend":
            lst = self.data("/friend/get_friend_list", {"userID": doc, "pagination": PAGE})["friendsInfo"]
        elif kind == "black":
            lst = self.data("/friend/get_black_list", {"userID": doc, "pagination": PAGE})["blacks"]
        elif kind == "join":
            lst = self.data("/group/get_joined_group_list", {"fromUserID": doc, "pagination": PAGE})["groups"]
        elif kind == "conv":
            lst = self.data("/conversation/get_all_conversations", {"ownerUserID": doc})["conversations"]
        else:
            lst = self.data("/group/get_group_member_list", {"groupID": doc, "pagination": PAGE})["members"]
        return dict(self.elem(kind, o) for o in lst or [])

    def version(self, kind, doc):
        path, key = self.INC[kind]
        d = self.data(path, {key: doc, "versionID": "", "version": 0})
        self.assertTrue(d["full"])
        return d["versionID"], d["version"]

    def observe(self, last, snaps):
        for kind, doc in self.docs():
            v = self.version(kind, doc)
            if last.get((kind, doc)) != v:
                last[(kind, doc)] = v
                snaps.append((kind, doc, v, self.fetch(kind, doc)))

    # ---- random operations; each picks its actors and makes one (or two) calls

    def pick(self, k=1):
        return self.rnd.sample(self.users, k)

    def member_ids(self, g):
        return self.data("/group/get_group_member_user_id", {"groupID": g})["userIDs"] or []

    def op_friend_apply(self):
        a, b = self.pick(2)
        self.call("/friend/add_friend", {"fromUserID": a, "toUserID": b, "reqMsg": "hi", "ex": ""}, a)
        if self.rnd.random() < 0.8:
            self.call("/friend/add_friend_response", {"fromUserID": a, "toUserID": b, "handleMsg": "",
                                                      "handleResult": self.rnd.choice([1, 1, 1, -1])}, b)

    def op_friend_delete(self):
        a, b = self.pick(2)
        self.call("/friend/delete_friend", {"ownerUserID": a, "friendUserID": b}, a)

    def op_friend_remark(self):
        a, b = self.pick(2)
        if self.rnd.random() < 0.5:
            self.call("/friend/set_friend_remark", {"ownerUserID": a, "friendUserID": b,
                                                    "remark": "r%d" % self.rnd.randrange(100)}, a)
        else:
            self.call("/friend/update_friends", {"ownerUserID": a, "friendUserIDs": [b],
                                                 "isPinned": self.rnd.random() < 0.5}, a)

    def op_black(self):
        a, b = self.pick(2)
        if self.rnd.random() < 0.6:
            self.call("/friend/add_black", {"ownerUserID": a, "blackUserID": b, "ex": ""}, a)
        else:
            self.call("/friend/remove_black", {"ownerUserID": a, "blackUserID": b}, a)

    def op_profile(self):
        (a,) = self.pick()
        self.call("/user/update_user_info_ex", {"userInfo": {"userID": a, "nickname": "n%d" % self.rnd.randrange(50)}},
                  a)

    def op_invite(self):
        g = self.rnd.choice(self.groups)
        (op,) = self.rnd.sample(self.member_ids(g) or self.users, 1)
        who = self.pick(self.rnd.randint(1, 2))
        self.call("/group/invite_user_to_group", {"groupID": g, "invitedUserIDs": who, "reason": ""}, op)

    def op_kick_or_quit(self):
        g = self.rnd.choice(self.groups)
        members = self.member_ids(g)
        if len(members) < 2:
            return
        a, b = self.rnd.sample(members, 2)
        if self.rnd.random() < 0.5:
            self.call("/group/quit_group", {"groupID": g, "userID": a}, a)
        else:
            self.call("/group/kick_group", {"groupID": g, "kickedUserIDs": [b], "reason": ""}, a)

    def op_member_info(self):
        g = self.rnd.choice(self.groups)
        members = self.member_ids(g)
        if not members:
            return
        a, b = self.rnd.choice(members), self.rnd.choice(members)
        m = {"groupID": g, "userID": b}
        if self.rnd.random() < 0.5:
            m["nickname"] = "gn%d" % self.rnd.randrange(50)
        else:
            m["roleLevel"] = self.rnd.choice([20, 60])
        self.call("/group/set_group_member_info", {"members": [m]}, a)

    def op_mute(self):
        g = self.rnd.choice(self.groups)
        members = self.member_ids(g)
        if not members:
            return
        a, b = self.rnd.choice(members), self.rnd.choice(members)
        if self.rnd.random() < 0.5:
            self.call("/group/mute_group_member", {"groupID": g, "userID": b, "mutedSeconds": 600}, a)
        else:
            self.call("/group/cancel_mute_group_member", {"groupID": g, "userID": b}, a)

    def op_group_info(self):
        g = self.rnd.choice(self.groups)
        members = self.member_ids(g)
        if not members:
            return
        body = {"groupID": g}
        if self.rnd.random() < 0.5:
            body["groupName"] = "name%d" % self.rnd.randrange(100)
        else:
            body["notification"] = "note%d" % self.rnd.randrange(100)
        self.call("/group/set_group_info_ex", body, self.rnd.choice(members))

    def op_transfer(self):
        g = self.rnd.choice(self.groups)
        info = self.data("/group/get_groups_info", {"groupIDs": [g]})["groupInfos"][0]
        members = [m for m in self.member_ids(g) if m != info["ownerUserID"]]
        if members:
            self.call("/group/transfer_group", {"groupID": g, "oldOwnerUserID": info["ownerUserID"],
                                                "newOwnerUserID": self.rnd.choice(members)}, info["ownerUserID"])

    def op_join(self):
        g = self.rnd.choice(self.groups)
        (a,) = self.pick()
        self.call("/group/join_group", {"groupID": g, "reqMessage": "", "joinSource": 3, "inviterUserID": a}, a)
        if self.rnd.random() < 0.7:
            members = self.member_ids(g)
            if members:
                self.call("/group/group_application_response", {
                    "groupID": g, "fromUserID": a, "handledMsg": "",
                    "handleResult": self.rnd.choice([1, -1])}, self.rnd.choice(members))

    def op_send(self):
        a, b = self.pick(2)
        if self.rnd.random() < 0.5:
            body = {"sendID": a, "recvID": b, "sessionType": 1}
        else:
            body = {"sendID": a, "groupID": self.rnd.choice(self.groups), "sessionType": 3}
        body.update(contentType=101, senderPlatformID=5, content={"content": "x"})
        env = self.srv.post("/msg/send_msg", body, token=self.admin)
        self.assertIn(env["errCode"], {0, 1203, 1302, 1402, 1403}, env)

    def op_conversation(self):
        a, b = self.pick(2)
        conv = "si_%s_%s" % tuple(sorted((a, b))) if self.rnd.random() < 0.5 else "sg_" + self.rnd.choice(self.groups)
        c = {"conversationID": conv, "conversationType": 1 if conv.startswith("si_") else 3,
             "userID": b if conv.startswith("si_") else "", "groupID": "" if conv.startswith("si_") else conv[3:]}
        if self.rnd.random() < 0.5:
            c["isPinned"] = self.rnd.random() < 0.5
        else:
            c["recvMsgOpt"] = self.rnd.choice([0, 1, 2])
        self.call("/conversation/set_conversations", {"userIDs": [a], "conversation": c}, a)

    # ---- the test

    def apply_incremental(self, kind, state, inc):
        out = dict(state)
        for i in inc["delete"] or []:
            out.pop(i, None)
        for o in (inc["insert"] or []) + (inc["update"] or []):
            k, v = self.elem(kind, o)
            out[k] = v
        return out

    def test_random_operations(self):
        u = self.users
        self.call("/group/create_group", {"ownerUserID": u[0], "memberUserIDs": u[1:4], "adminUserIDs": [u[4]],
                                          "groupInfo": {"groupID": "rg0", "groupName": "rg0", "groupType": 2}}, u[0])
        self.call("/group/create_group", {"ownerUserID": u[5], "memberUserIDs": u[6:8], "adminUserIDs": [],
                                          "groupInfo": {"groupID": "rg1", "groupName": "rg1", "groupType": 2,
                                                        "needVerification": 2}}, u[5])
        self.call("/group/create_group", {"ownerUserID": u[8], "memberUserIDs": [u[9], u[0]], "adminUserIDs": [],
                                          "groupInfo": {"groupID": "rg2", "groupName": "rg2", "groupType": 2,
                                                        "needVerification": 1}}, u[8])
        ops = [self.op_friend_apply] * 4 + [self.op_friend_delete, self.op_friend_remark, self.op_black,
                                            self.op_profile, self.op_invite, self.op_kick_or_quit,
                                            self.op_member_info, self.op_mute, self.op_group_info, self.op_transfer,
                                            self.op_join, self.op_send, self.op_send, self.op_conversation]
        last, snaps = {}, []
        self.observe(last, snaps)
        for _ in range(OPS):
            self.rnd.choice(ops)()
            self.observe(last, snaps)
        self.assertTrue(self.srv.alive())
        # The run did things: most kinds of change succeeded at least sometimes.
        self.assertGreater(self.codes.get(0, 0), OPS // 3, self.codes)
        final = {(k, d): self.fetch(k, d) for k, d in self.docs()}
        for kind, doc, (vid, ver), state in snaps:
            path, key = self.INC[kind]
            inc = self.data(path, {key: doc, "versionID": vid, "version": ver})
            self.assertEqual(inc["versionID"], last[(kind, doc)][0])
            self.assertFalse(inc["full"], (kind, doc, ver, inc["version"]))
            self.assertEqual(self.apply_incremental(kind, state, inc), final[(kind, doc)],
                             "%s %s from version %d (seed %d)" % (kind, doc, ver, SEED))
            if kind == "member":
                g = self.data("/group/get_groups_info", {"groupIDs": [doc]})["groupInfos"][0]
                if inc["version"] != ver:
                    self.assertEqual(inc["group"], g)
        self.assertGreater(len(snaps), len(self.docs()) + OPS // 2)
        print("%d operations, codes %s; %d recorded versions checked" % (OPS, sorted(self.codes.items()), len(snaps)))
        self.check_full_ids(final)
        self.check_fresh_login(final)

    def check_full_ids(self, final):
        for uid in self.users:
            for path, key, kind in (("/friend/get_full_friend_user_ids", "userIDs", "friend"),
                                    ("/group/get_full_join_group_ids", "groupIDs", "join"),
                                    ("/conversation/get_full_conversation_ids", "conversationIDs", "conv")):
                d = self.data(path, {"userID": uid, "idHash": 0})
                self.assertEqual(sorted(d[key] or []), sorted(final[(kind, uid)]), (path, uid))
                if d[key]:
                    again = self.data(path, {"userID": uid, "idHash": self.id_hash(d[key])})
                    self.assertEqual((again["equal"], again[key]), (True, None))
        for g in self.groups:
            d = self.data("/group/get_full_group_member_user_ids", {"groupID": g, "idHash": 0})
            self.assertEqual(sorted(d["userIDs"] or []), sorted(final[("member", g)]))

    @staticmethod
    def id_hash(ids):
        import hashlib
        raw = json.dumps(ids, separators=(",", ":")).encode()
        return int.from_bytes(hashlib.md5(raw).digest()[:8], "big", signed=True)

    def check_fresh_login(self, final):
        if not test_sdk_js.NODE or not test_sdk_js.sdk_installed():
            print("SKIP fresh-login check: the JS SDK is not installed")
            return
        users = {u: {"userID": u, "token": self.srv.user_token(self.admin, u)} for u in self.users}
        cfg = dict(apiAddr=f"http://127.0.0.1:{self.srv.api_port}", wsAddr=f"ws://127.0.0.1:{self.srv.ws_port}",
                   adminToken=self.admin, platformID=5, users=users)
        env = dict(os.environ, IMLOG_SDK_CONFIG=json.dumps(cfg))
        p = subprocess.run([test_sdk_js.NODE, os.path.join(test_sdk_js.SDK_DIR, "lists.mjs")],
                           cwd=test_sdk_js.SDK_DIR, env=env, capture_output=True, timeout=300)
        out = p.stdout.decode(errors="replace")
        res = [line[7:] for line in out.splitlines() if line.startswith("RESULT ")]
        self.assertEqual((p.returncode, len(res)), (0, 1), out[-3000:] + p.stderr.decode(errors="replace")[-3000:])
        seen = json.loads(res[0])
        for uid in self.users:
            s = seen[uid]
            self.assertEqual(sorted(s["friends"]), sorted(final[("friend", uid)]), uid)
            self.assertEqual({k: v[0] for k, v in final[("friend", uid)].items()}, s["friends"], uid)
            self.assertEqual(s["blacks"], sorted(final[("black", uid)]), uid)
            self.assertEqual(sorted(s["groups"]), sorted(final[("join", uid)]), uid)
            for g, members in s["members"].items():
                self.assertEqual({m: v[0] for m, v in final[("member", g)].items()}, members, (uid, g))
        print("fresh login of %d users with the JS SDK: lists equal" % len(self.users))


if __name__ == "__main__":
    unittest.main()
