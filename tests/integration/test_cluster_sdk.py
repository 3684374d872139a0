"""The real OpenIM JS SDK (@openim/client-sdk 0.0.14, in Node) against a three-node cluster, each
user on a different node: the scenarios of test_sdk_js (tests/sdk-js/*.mjs) run unchanged, with
each user's wsAddr/apiAddr pointing at its own node. A message sent through one node reaches a
user on another as a push, both histories agree, and a group spread over all three nodes works.

Users and tokens are made on the leader; each user then logs in on another node at once, which
works because logins and REST calls on a follower first catch up with the leader (read barrier).
Without node/npm the file is skipped (exit 77), as test_sdk_js is."""
import json
import os
import shutil
import subprocess
import unittest

import harness
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


if __name__ == "__main__":
    harness.main()
