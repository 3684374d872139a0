"""Online state through the gateway: REST online-status endpoints, WS 2005 subscriptions and their
pushes, the multi-login kick (2002) and /auth/force_logout closing live connections."""
import asyncio
import time
import unittest

import harness
from harness import Server
from imws import Client, WSClosed, last, pb_msg, pb_parse


def tips_of(data):
    """SubUserOnlineStatusTips -> {userID: [platformIDs]}."""
    out = {}
    for elem in pb_parse(data).get(1, []):
        e = pb_parse(elem)
        ids = []
        for v in e.get(2, []):
            if isinstance(v, bytes):  # packed
                i = 0
                while i < len(v):
                    n, shift = 0, 0
                    while True:
                        b = v[i]
                        i += 1
                        n |= (b & 0x7F) << shift
                        shift += 7
                        if not b & 0x80:
                            break
                    ids.append(n)
            else:
                ids.append(v)
        out[last(e, 1, b"").decode()] = sorted(ids)
    return out


class OnlineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(secret="online").start()
        cls.admin = cls.srv.admin_token()
        assert cls.srv.register(cls.admin, ["oa", "ob", "oc"])["errCode"] == 0

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def status(self, uid):
        env = self.srv.post("/user/get_users_online_status", {"userIDs": [uid]}, token=self.admin)
        self.assertEqual(env["errCode"], 0, env)
        return env["data"][0]

    def wait_status(self, uid, want, deadline=10):
        end = time.monotonic() + deadline
        while True:
            st = self.status(uid)
            if st["status"] == want or time.monotonic() > end:
                return st

    def test_rest_online_status_follows_connections(self):
        tok = self.srv.user_token(self.admin, "oa", platform=5)

        async def go():
            c = await Client("oa", tok, platform=5).connect(self.srv.ws_port)
            st = self.status("oa")
            self.assertEqual(st["status"], 1)
            self.assertEqual([d["platformID"] for d in st["detailPlatformStatus"]], [5])
            self.assertEqual(st["detailPlatformStatus"][0]["token"], tok)
            env = self.srv.post("/user/get_users_status", {"userID": "oa", "userIDs": ["oa", "oc"]},
                                token=self.admin)
            self.assertEqual(env["data"]["statusList"], [
                {"userID": "oa", "status": 1, "platformIDs": [5]},
                {"userID": "oc", "status": 0, "platformIDs": None}])
            env = self.srv.post("/user/get_users_online_token_detail", {"userIDs": ["oa", "oc"]},
                                token=self.admin)
            self.assertEqual(env["data"], [{"userID": "oa", "status": 1, "singlePlatformToken": [
                {"platformID": 5, "total": 1, "token": [tok]}]}])
            await c.close()
        asyncio.run(go())
        self.assertEqual(self.wait_status("oa", 0)["status"], 0)

    def test_2005_subscription_reply_and_push(self):
        ta = self.srv.user_token(self.admin, "oa", platform=3)
        tb = self.srv.user_token(self.admin, "ob", platform=2)

        async def go():
            a = await Client("oa", ta, platform=3).connect(self.srv.ws_port)
            code, data, _ = await a.request(2005, pb_msg((1, "ob")))
            self.assertEqual(code, 0)
            self.assertEqual(tips_of(data), {"ob": []})
            b = await Client("ob", tb, platform=2).connect(self.srv.ws_port)
            # The subscriber is told, by a push (msgIncr ""), that ob is online on platform 2.
            while True:
                req_id, data, env = await asyncio.wait_for(a.pushes.get(), 15)
                self.assertIsNotNone(req_id, "connection closed")
                if req_id == 2005:
                    self.assertEqual(env["msgIncr"], "")
                    self.assertEqual(tips_of(data), {"ob": [2]})
                    break
            await b.close()
            while True:
                req_id, data, env = await asyncio.wait_for(a.pushes.get(), 15)
                if req_id == 2005:
                    self.assertEqual(tips_of(data), {"ob": []})
                    break
            await a.close()
        asyncio.run(go())

    def test_multi_login_kick_and_force_logout(self):
        old = self.srv.user_token(self.admin, "oc", platform=1)
        new = self.srv.new_user_token(self.admin, "oc", 1, old)

        async def go():
            # A connection with the old token is refused only after it was kicked at issue time:
            # the token issue already marked it kicked (1506), so connect with the new one twice.
            with self.assertRaises(WSClosed) as cm:
                await Client("oc", old, platform=1).connect(self.srv.ws_port)
            self.assertIn("1506", str(cm.exception))
            first = await Client("oc", new, platform=1).connect(self.srv.ws_port)
            # force_logout: the live connection gets 2002 and is closed; the token is kicked.
            env = self.srv.post("/auth/force_logout", {"platformID": 1, "userID": "oc"},
                                token=self.admin)
            self.assertEqual(env["errCode"], 0)
            kicked = False
            while True:
                req_id, _, _ = await asyncio.wait_for(first.pushes.get(), 15)
                if req_id == 2002:
                    kicked = True
                if req_id is None:
                    break
            self.assertTrue(kicked)
            self.assertEqual(self.srv.post("/auth/parse_token", {"token": new})["errCode"], 1506)
        asyncio.run(go())

    def test_second_connection_with_another_token_kicks_the_first(self):
        t1 = self.srv.user_token(self.admin, "ob", platform=7)

        async def go():
            first = await Client("ob", t1, platform=7).connect(self.srv.ws_port)
            # Same token again (a reconnect): not kicked (§2.3).
            again = await Client("ob", t1, platform=7).connect(self.srv.ws_port)
            code, _, _ = await first.request(1006, pb_msg((1, "ob")))
            self.assertEqual(code, 0)
            await again.close()
            # A new login on platform 7: its token is issued (t1 is marked kicked, but a live
            # connection is not re-checked), then it connects and the gateway kicks the first.
            t2 = self.srv.new_user_token(self.admin, "ob", 7, t1)
            second = await Client("ob", t2, platform=7).connect(self.srv.ws_port)
            got = []
            while True:
                req_id, _, _ = await asyncio.wait_for(first.pushes.get(), 15)
                if req_id is None:
                    break
                got.append(req_id)
            self.assertIn(2002, got)
            code, _, _ = await second.request(1006, pb_msg((1, "ob")))
            self.assertEqual(code, 0)
            await second.close()
        asyncio.run(go())


if __name__ == "__main__":
    harness.main()
