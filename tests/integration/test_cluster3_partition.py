"""A network partition: three imlog nodes, each in its own network namespace, joined by veth pairs
to the test's own private namespace, which routes between them.  The leader is cut off from both
followers (ip rules on the router namespace, so the test still reaches every node): the leader
acknowledges nothing, the majority elects a new leader and goes on; after healing every node holds
exactly the acknowledged messages, seqs contiguous, and the same state digest.

Needs root, iproute2 and unshare; otherwise it is skipped.  It runs itself again under
`unshare -n` so that nothing outside that private namespace is touched (all addresses are on the
veth links between the test's namespaces)."""
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import unittest

from cluster import Cluster

IN_NETNS = os.environ.get("IMLOG_PARTITION_NETNS") == "1"
TAG = "imlogp%d" % os.getpid()


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def conv_si(a, b):
    return "si_%s_%s" % tuple(sorted((a, b)))


class PartitionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not IN_NETNS:
            raise unittest.SkipTest("needs root, iproute2 and unshare (runs under unshare -n)")
        cls.ns = ["%s-%d" % (TAG, i) for i in (1, 2, 3)]
        sh("ip", "link", "set", "lo", "up")
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")
        for i, ns in enumerate(cls.ns, 1):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", "t%d" % i, "type", "veth", "peer", "name", "n%d" % i)
            sh("ip", "link", "set", "n%d" % i, "netns", ns)
            sh("ip", "addr", "add", "10.213.%d.1/24" % i, "dev", "t%d" % i)
            sh("ip", "link", "set", "t%d" % i, "up")
            for cmd in (["ip", "link", "set", "lo", "up"],
                        ["ip", "addr", "add", "10.213.%d.2/24" % i, "dev", "n%d" % i],
                        ["ip", "link", "set", "n%d" % i, "up"],
                        ["ip", "route", "add", "default", "via", "10.213.%d.1" % i]):
                sh("ip", "netns", "exec", ns, *cmd)
        cls.c = Cluster(3, hosts=["10.213.%d.2" % i for i in (1, 2, 3)], netns=cls.ns,
                        args=["--forward-timeout-ms", "4000"])
        try:
            cls.c.start()
        except BaseException:
            print(cls.c.log_tails())
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()
        for ns in cls.ns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before and IN_NETNS:
            print(self.c.log_tails())
        return out

    def cut(self, a, b, add=True):
        """Drops what the router forwards between nodes a and b (both ways)."""
        for x, y in ((a, b), (b, a)):
            sh("ip", "rule", "add" if add else "del", "iif", "t%d" % x.node_id, "to",
               "10.213.%d.0/24" % y.node_id, "prohibit", "pref", str(100 + 10 * x.node_id + y.node_id))

    def send(self, node, text):
        env = node.post("/msg/send_msg", {"sendID": "pa", "recvID": "pb", "content": {"content": text},
                                          "contentType": 101, "sessionType": 1}, token=node.admin())
        return env

    def test_partitioned_leader_acknowledges_nothing_and_majority_goes_on(self):
        lead = self.c.leader()
        followers = self.c.followers(lead)
        self.assertEqual(lead.register(lead.admin(), ["pa", "pb"])["errCode"], 0)
        self.c.converged()
        acked = [self.send(lead, "before")["data"]["clientMsgID"]]
        for f in followers:
            self.cut(lead, f)
        minority = []

        def on_minority(i):
            conn = http.client.HTTPConnection(lead.host, lead.api_port, timeout=60)
            body = {"sendID": "pa", "recvID": "pb", "content": {"content": "minority%d" % i},
                    "contentType": 101, "sessionType": 1}
            conn.request("POST", "/msg/send_msg", json.dumps(body),
                         {"operationID": "part", "token": lead.admin()})
            minority.append(json.loads(conn.getresponse().read())["errCode"])
            conn.close()
        threads = [threading.Thread(target=on_minority, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        try:
            # The majority elects a leader of its own and acknowledges writes.
            new = self.c.leader(followers)
            self.assertIsNot(new, lead)
            for i in range(10):
                env = self.send(followers[i % 2], "majority%d" % i)
                self.assertEqual(env["errCode"], 0, env)
                acked.append(env["data"]["clientMsgID"])
            for t in threads:
                t.join(120)
            self.assertEqual(minority, [500] * 3)  # refused (retryable), never acknowledged
        finally:
            for f in followers:
                self.cut(lead, f, add=False)
        self.c.converged()
        for node in self.c.nodes:
            env = node.post("/msg/pull_msg_by_seq", {"userID": "pb", "seqRanges": [
                {"conversationID": conv_si("pa", "pb"), "begin": 1, "end": 1000, "num": 1000}]},
                token=node.admin())
            msgs = env["data"]["msgs"][conv_si("pa", "pb")]["Msgs"]
            self.assertEqual([m["seq"] for m in msgs], list(range(1, len(msgs) + 1)))
            # The old leader's uncommitted entries were replaced by the majority's log.
            self.assertEqual([m["clientMsgID"] for m in msgs], acked, "node %d" % node.node_id)


def main():
    if not IN_NETNS and os.geteuid() == 0 and shutil.which("ip") and shutil.which("unshare"):
        env = dict(os.environ, IMLOG_PARTITION_NETNS="1")
        rc = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__)],
                            env=env).returncode
        sys.exit(rc)
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
