"""The real OpenIM SDKs against a three-node cluster, each user on a different node.

- The JS SDK (@openim/client-sdk 0.0.14, JSON envelopes, in Node): the scenarios of test_sdk_js
  (tests/sdk-js/*.mjs) run unchanged, with each user's wsAddr/apiAddr pointing at its own node.
- The Go SDK (openim-sdk-core, gob envelopes, tests/sdk-go): the drivers of test_sdk_go, each
  process configured with its own node.

A message sent through one node reaches a user on another as a push, histories agree, and a group
spread over all three nodes works.

Users and tokens are made on the leader; each user then logs in on another node at once, which
works because logins and REST calls on a follower first catch up with the leader (read barrier).
Without node/npm (go) those classes are skipped, as test_sdk_js (test_sdk_go) are."""
import json
import os
import shutil
import subprocess
import unittest

import harness
import test_sdk_go as sdkgo
from cluster import ClusterTestCase

SDK_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "sdk-js"))
NODE = shutil.which("node")
NPM = shutil.which("npm")
SCRIPT_TIMEOUT = 180
PLATFORM_WEB = 5


class ClusterSdkTest(ClusterTestCase):
    seq = 0

    @classmethod
    def setUpClass(cls):
        if not NODE or not NPM:
            raise unittest.SkipTest("node/npm not installed: the real JS SDK cannot run")
        if not os.path.isfile(os.path.join(SDK_DIR, "node_modules", "@openim", "client-sdk",
                                           "package.json")):
            subprocess.run([os.path.join(SDK_DIR, "install.sh")], check=True, timeout=600)
        super().setUpClass()

    def users(self, *names):
        """Fresh users made on the leader; user i logs in on node i % 3 (its own WS and REST)."""
        ClusterSdkTest.seq += 1
        lead = self.c.leader()
        tok = lead.admin()
        ids = {n: "cs%d%s%s" % (ClusterSdkTest.seq, self._testMethodName[5:12], n.lower())
               for n in names}
        self.assertEqual(lead.register(tok, list(ids.values()))["errCode"], 0)
        out = {}
        for i, (n, uid) in enumerate(ids.items()):
            node = self.c.nodes[i % len(self.c.nodes)]
            out[n] = {"userID": uid, "token": lead.user_token(tok, uid, PLATFORM_WEB),
                      "wsAddr": "ws://%s:%d" % (node.host, node.ws_port),
                      "apiAddr": "http://%s" % node.api_addr, "node": node.node_id}
        return out

    def scenario(self, name, users, **extra):
        lead = self.c.leader()
        cfg = dict(apiAddr="http://" + lead.api_addr, wsAddr="ws://%s:%d" % (lead.host,
                                                                               lead.ws_port),
                   adminToken=lead.admin(), platformID=PLATFORM_WEB, users=users, **extra)
        env = dict(os.environ, IMLOG_SDK_CONFIG=json.dumps(cfg))
        p = subprocess.run([NODE, os.path.join(SDK_DIR, name + ".mjs")], cwd=SDK_DIR, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=SCRIPT_TIMEOUT)
        out = p.stdout.decode(errors="replace")
        results = [line[7:] for line in out.splitlines() if line.startswith("RESULT ")]
        self.assertTrue(p.returncode == 0 and len(results) == 1,
                        "%s.mjs exited %d\n%s\n%s" % (name, p.returncode, out[-3000:],
                                                      p.stderr.decode(errors="replace")[-3000:]))
        return json.loads(results[0])

    def test_1_text_between_users_on_two_nodes(self):
        u = self.users("A", "B")
        self.assertNotEqual(u["A"]["node"], u["B"]["node"])
        r = self.scenario("text", u)
        self.assertEqual(r["received"], {"A": ["hello from B", "last from B"],
                                         "B": ["hello from A", "third, from A"]})
        self.assertEqual(r["history"]["A"], [1, 2, 3, 4])

    def test_2_group_over_three_nodes(self):
        u = self.users("A", "B", "C")
        self.assertEqual(len({v["node"] for v in u.values()}), 3)
        r = self.scenario("group", u)
        self.assertTrue(r["groupID"])
        self.assertIn([1, 1501], r["other"])

    def test_3_unread_and_read_receipt_across_nodes(self):
        r = self.scenario("unread", self.users("A", "B"), n=5)
        self.assertEqual(r["receipt"], 5)
        self.assertEqual((r["server"]["maxSeq"], r["server"]["hasReadSeq"]), (6, 6))
        self.c.converged()


class ClusterSdkGoTest(ClusterTestCase):
    seq = 0

    @classmethod
    def setUpClass(cls):
        if not sdkgo.GO:
            raise unittest.SkipTest("go not installed: the real native SDK cannot be built")
        if sdkgo.SdkGoTest.built is None:
            sdkgo.SdkGoTest.built = sdkgo.build() or ""
        if sdkgo.SdkGoTest.built:
            raise AssertionError(sdkgo.SdkGoTest.built)
        super().setUpClass()

    def setUp(self):
        self.clients = []
        self.srv = self.c.nodes[0]  # whose log sdk-go's Client.trace() shows

    def tearDown(self):
        for c in self.clients:
            c.kill()

    def users(self, *names):
        ClusterSdkGoTest.seq += 1
        ids = {n: "cg%d%s" % (ClusterSdkGoTest.seq, n.lower()) for n in names}
        lead = self.c.leader()
        self.assertEqual(lead.register(lead.admin(), list(ids.values()))["errCode"], 0)
        return ids

    def client(self, node, user_id, steps):
        """An SDK process for user_id on node; its token is issued on the leader."""
        lead = self.c.leader()
        tok = lead.user_token(lead.admin(), user_id, sdkgo.PLATFORM_ANDROID)
        cfg = dict(apiAddr="http://" + node.api_addr,
                   wsAddr="ws://%s:%d" % (node.host, node.ws_port),
                   platformID=sdkgo.PLATFORM_ANDROID,
                   dataDir=os.path.join(node.data_dir, "sdk-" + user_id), userID=user_id,
                   token=tok, scenario=self._testMethodName, deadlineMs=sdkgo.STEP_DEADLINE_MS,
                   steps=steps)
        c = sdkgo.Client(self, "go:%s@node%d" % (user_id, node.node_id), [sdkgo.BIN], cfg)
        self.clients.append(c)
        return c

    def test_1_one_to_one_and_group_across_nodes(self):
        u = self.users("A", "B", "C")
        A, B, C = u["A"], u["B"], u["C"]
        n1, n2, n3 = self.c.nodes
        lead = self.c.leader()
        env = lead.post("/group/create_group", {
            "ownerUserID": A, "memberUserIDs": [B, C], "adminUserIDs": [],
            "groupInfo": {"groupName": "across", "groupType": 2}}, token=lead.admin())
        self.assertEqual(env["errCode"], 0, env)
        gid = env["data"]["groupInfo"]["groupID"]
        b = self.client(n2, B, [{"op": "expect", "from": A, "text": "hello from A"},
                                {"op": "send", "to": A, "text": "hello back from B"},
                                {"op": "expect", "from": A, "group": gid, "text": "to the group"}])
        c = self.client(n3, C, [{"op": "expect", "from": A, "group": gid, "text": "to the group"}])
        a = self.client(n1, A, [{"op": "wait_line"},
                                {"op": "send", "to": B, "text": "hello from A"},
                                {"op": "expect", "from": B, "text": "hello back from B"},
                                {"op": "send", "group": gid, "text": "to the group"}])
        b.wait("ready")
        c.wait("ready")
        a.go_ahead()
        ea, eb, ec = a.finish(), b.finish(), c.finish()
        self.assertEqual([m["text"] for m in b.received() if m["contentType"] == 101],
                         ["hello from A", "to the group"], b.trace())
        self.assertEqual([m["text"] for m in a.received() if m["contentType"] == 101],
                         ["hello back from B"], a.trace())
        got_c = [m for m in c.received() if m["contentType"] == 101]
        self.assertEqual([m["text"] for m in got_c], ["to the group"], c.trace())
        sent = {e["msg"]["text"]: e["msg"] for e in ea if e["event"] == "sent"}
        # The same message, seq and serverMsgID on every node.
        got_b = [m for m in b.received() if m["text"] == "to the group"][0]
        self.assertEqual((got_b["seq"], got_b["serverMsgID"]),
                         (got_c[0]["seq"], got_c[0]["serverMsgID"]))
        self.assertEqual(got_c[0]["serverMsgID"], sent["to the group"]["serverMsgID"])
        self.assertEqual(b.received()[0]["seq"], 1)
        self.c.converged()


if __name__ == "__main__":
    harness.main()
