"""Membership changes at runtime with real processes on loopback: a fourth node started with
--join is added with `imlog cluster add` while writes go on (it catches up by an engine copy,
becomes a voter and serves); the leader is removed with `imlog cluster remove` (leadership moves,
the removed process stops itself); a follower is removed, wiped and added back; bad calls are
refused and change nothing.

After each scenario every live member reaches the leader's commit index with an equal state
digest, and holds every acknowledged message exactly once with contiguous seqs."""
import http.client
import json
import threading
import time
import uuid

import harness
from cluster import ClusterTestCase, wait_for


def conv_si(a, b):
    return "si_%s_%s" % tuple(sorted((a, b)))


class Writer(threading.Thread):
    """Sends 1:1 messages through one node over its own connection, one after the other, and
    records the clientMsgIDs the server acknowledged. /msg/send_msg has no client-chosen id (the
    server makes one, as OpenIM does), so a send whose outcome is unknown (a broken connection, a
    500 while leadership moves) may be stored without an ack: `unknown` counts those."""

    def __init__(self, node, token, sender, recv):
        super().__init__(daemon=True)
        self.node, self.token, self.sender, self.recv = node, token, sender, recv
        self.acked, self.unknown, self.error = [], 0, None
        self.halt = threading.Event()

    def send(self, conn, text):
        body = json.dumps({"sendID": self.sender, "recvID": self.recv, "contentType": 101,
                           "sessionType": 1, "content": {"content": text}})
        conn.request("POST", "/msg/send_msg", body, {"operationID": "w-" + text,
                                                      "token": self.token,
                                                      "Content-Type": "application/json"})
        env = json.loads(conn.getresponse().read())
        return env["data"]["clientMsgID"] if env["errCode"] == 0 else None

    def run(self):
        conn = None
        last_ack = time.monotonic()
        try:
            while not self.halt.is_set():
                if time.monotonic() - last_ack > 60:
                    raise AssertionError("no send acknowledged for 60 s")
                try:
                    conn = conn or http.client.HTTPConnection(self.node.host, self.node.api_port,
                                                              timeout=20)
                    cmid = self.send(conn, uuid.uuid4().hex)
                except (OSError, http.client.HTTPException, ValueError):
                    conn.close()
                    conn = None
                    cmid = None
                if cmid:
                    self.acked.append(cmid)
                    last_ack = time.monotonic()
                else:
                    self.unknown += 1
                    time.sleep(0.05)  # back-off between a client's retries
        except BaseException as e:  # reported by stop()
            self.error = e
        finally:
            if conn:
                conn.close()

    def stop(self):
        self.halt.set()
        self.join(120)
        if self.error:
            raise self.error
        return self.acked


class ClusterMembersTest(ClusterTestCase):
    # Small snapshot thresholds: the log is compacted, so new nodes install an engine copy.
    ARGS = ["--snapshot-threshold", "64", "--snapshot-trailing", "16",
            "--forward-timeout-ms", "4000"]

    @classmethod
    def prepare(cls):
        cls.sent = []  # every acknowledged clientMsgID from "ma" to "mb", in any order
        cls.unknown = [0]  # sends whose outcome the writers could not know (see Writer)
        n1 = cls.c.nodes[0]
        assert n1.register(n1.admin(), ["ma", "mb"])["errCode"] == 0
        cls.c.converged()  # every node checks the users exist before it forwards a send

    # ---- helpers

    def send_rest(self, node, n):
        for _ in range(n):
            env = node.post("/msg/send_msg", {"sendID": "ma", "recvID": "mb", "contentType": 101,
                                              "sessionType": 1,
                                              "content": {"content": uuid.uuid4().hex}},
                            token=node.admin())
            self.assertEqual(env["errCode"], 0, env)
            self.sent.append(env["data"]["clientMsgID"])

    def collect(self, writer):
        self.sent.extend(writer.stop())
        self.unknown[0] += writer.unknown
        return writer

    def members(self, node):
        return {m["id"]: m for m in node.status()["members"]}

    def assert_all_hold_everything(self):
        """Every live member: equal state digests, and conversation ma-mb = the acked sends."""
        self.c.converged()
        for node in self.c.live():
            env = node.post("/msg/pull_msg_by_seq", {"userID": "mb", "seqRanges": [
                {"conversationID": conv_si("ma", "mb"), "begin": 1, "end": 100000,
                 "num": 100000}]}, token=node.admin())
            self.assertEqual(env["errCode"], 0, env)
            msgs = (env["data"]["msgs"] or {}).get(conv_si("ma", "mb"), {}).get("Msgs", [])
            seqs = [m["seq"] for m in msgs]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "node %d: seq gap" % node.node_id)
            ids = [m["clientMsgID"] for m in msgs]
            self.assertEqual(len(ids), len(set(ids)), "node %d: a message twice" % node.node_id)
            missing = set(self.sent) - set(ids)
            self.assertFalse(missing, "node %d: %d acknowledged messages missing"
                             % (node.node_id, len(missing)))
            self.assertLessEqual(len(ids) - len(self.sent), self.unknown[0],
                                 "node %d: messages nobody sent" % node.node_id)

    def add(self, node, via):
        rc, out, err = self.c.cli("add", "--node-id", str(node.node_id), "--raft-addr",
                                  node.raft_addr, "--node-api-addr", node.api_addr, api=via)
        self.assertEqual(rc, 0, out + err)
        return out + err

    def remove(self, node_id, via):
        rc, out, err = self.c.cli("remove", "--node-id", str(node_id), api=via)
        self.assertEqual(rc, 0, out + err)
        return out + err

    # ---- tests (run in name order on one cluster)

    def test_1_node_added_under_load_catches_up_and_votes(self):
        self.send_rest(self.c.nodes[0], 150)  # past two snapshot thresholds
        lead = self.c.leader()
        follower = self.c.followers(lead)[0]
        n4 = self.c.new_node()
        n4.launch()
        writer = Writer(follower, follower.admin(), "ma", "mb")
        writer.start()
        wait_for(lambda: len(writer.acked) >= 20, "writes before the add")
        # Asked on a follower: the CLI finds the leader itself.
        t0 = time.monotonic()
        out = self.add(n4, via=follower.api_addr)
        print("  imlog cluster add: %.0f ms (engine copy and promotion included)"
              % ((time.monotonic() - t0) * 1000))
        self.assertIn("does not lead", out)
        n4.wait_ready()
        during = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= during + 10, "writes after the add")
        self.collect(writer)
        print("  add under load: %d sends acknowledged around the add, %d without an answer"
              % (len(writer.acked), writer.unknown))
        lead = self.c.leader()
        m = self.members(lead)
        self.assertEqual(sorted(m), [1, 2, 3, 4])
        self.assertEqual({v["role"] for v in m.values()}, {"voter"})
        self.assertEqual(m[4]["address"], n4.raft_addr)
        self.assertEqual(m[4]["apiAddress"], n4.api_addr)
        # It had to install an engine copy: the log was compacted past its start.
        self.assertGreater(n4.status()["snapshotIndex"], 0)
        with open(n4.log_path, errors="replace") as log:
            self.assertIn("installed the engine", log.read())
        self.assert_all_hold_everything()

    def test_2_added_node_serves_and_counts_in_the_quorum(self):
        n4 = self.c.nodes[3]
        self.send_rest(n4, 10)  # forwarded to the leader, answered after node 4 applied it
        # Four voters: a majority is 3. With one old node stopped, writes still commit, and each
        # of the three left, node 4 included, is needed for them to.
        lead = self.c.leader()
        down = [n for n in self.c.followers(lead) if n is not n4][0]
        down.stop()
        self.send_rest(n4, 10)
        down.start()
        self.assert_all_hold_everything()
        # Restarted with neither --join nor a member list, it is still a cluster node: its Raft
        # configuration says so. It forwards writes and reads through the barrier.
        n4.stop()
        n4.join = ""
        n4.start()
        self.assertIsNot(self.c.leader(), n4)  # pre-vote: a restarted node does not depose it
        self.send_rest(n4, 5)
        self.assert_all_hold_everything()

    def test_3_removing_the_leader_moves_leadership_and_stops_it(self):
        lead = self.c.leader()
        other = [n for n in self.c.followers(lead)][0]
        writer = Writer(other, other.admin(), "ma", "mb")
        writer.start()
        wait_for(lambda: len(writer.acked) >= 10, "writes before the removal")
        t0 = time.monotonic()
        self.remove(lead.node_id, via=other.api_addr)
        print("  imlog cluster remove of the leader: %.0f ms (handover included)"
              % ((time.monotonic() - t0) * 1000))
        # The removed process is told and stops by itself with status 0.
        self.assertEqual(lead.proc.wait(timeout=30), 0)
        new = self.c.leader()
        self.assertNotEqual(new.node_id, lead.node_id)
        during = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= during + 10, "writes after the removal")
        self.collect(writer)
        print("  leader removal under load: %d sends acknowledged, %d without an answer"
              % (len(writer.acked), writer.unknown))
        for node in self.c.live():
            wait_for(lambda: sorted(self.members(node)) == sorted(
                n.node_id for n in self.c.live()), "node %d's configuration" % node.node_id)
        self.assertEqual(len(self.c.live()), 3)
        self.send_rest(new, 5)
        self.assert_all_hold_everything()

    def test_4_removed_follower_wiped_and_added_back(self):
        lead = self.c.leader()
        f = self.c.followers(lead)[0]
        self.remove(f.node_id, via=lead.api_addr)
        self.assertEqual(f.proc.wait(timeout=30), 0)
        self.send_rest(lead, 100)  # the log moves on and is compacted without it
        f.wipe()
        f.join = ",".join(n.api_addr for n in self.c.live())
        f.launch()
        self.add(f, via=lead.api_addr)
        f.wait_ready()
        self.assertEqual(sorted(self.members(self.c.leader())), sorted(
            n.node_id for n in self.c.live()))
        self.assertGreater(f.status()["snapshotIndex"], 0)
        self.assert_all_hold_everything()

    def test_5_bad_changes_are_refused_and_change_nothing(self):
        lead = self.c.leader()
        before = self.members(lead)
        tok = lead.admin()
        cases = [
            ({"nodeID": 9, "address": "nohost", "apiAddress": "127.0.0.1:1"}, 1001),
            ({"nodeID": 9, "address": "127.0.0.1:1"}, 1001),
            ({"nodeID": 0, "address": "127.0.0.1:1", "apiAddress": "127.0.0.1:2"}, 1001),
            ({"nodeID": 9, "address": "127.0.0.1:1", "apiAddress": "127.0.0.1:2",
              "role": "king"}, 1001),
            # A member at other addresses: remove it first.
            ({"nodeID": lead.node_id, "address": "127.0.0.1:1", "apiAddress": "127.0.0.1:2"},
             1001),
        ]
        for body, code in cases:
            env = lead.post("/cluster/add", body, token=tok)
            self.assertEqual(env["errCode"], code, (body, env))
        env = lead.post("/cluster/remove", {"nodeID": 99}, token=tok)
        self.assertEqual(env["errCode"], 1001, env)
        self.assertIn("not a member", env["errDlt"])
        # Not an admin: 1002.
        self.assertEqual(lead.register(tok, ["mc"])["errCode"], 0)
        env = lead.post("/cluster/remove", {"nodeID": 2}, token=lead.user_token(tok, "mc"))
        self.assertEqual(env["errCode"], 1002, env)
        # A follower does not change the configuration; it names the leader.
        f = self.c.followers(lead)[0]
        env = f.post("/cluster/remove", {"nodeID": lead.node_id}, token=f.admin())
        self.assertEqual(env["errCode"], 500, env)
        self.assertIn("not the leader: node %d leads at %s" % (lead.node_id, lead.api_addr),
                      env["errDlt"])
        # A node that never comes up: the add gives up after timeoutMs and leaves a standby,
        # which does not count in the quorum and can be removed.
        env = lead.post("/cluster/add", {"nodeID": 9, "address": "127.0.0.1:9",
                                         "apiAddress": "127.0.0.1:9", "timeoutMs": 1500},
                        token=tok)
        self.assertEqual(env["errCode"], 500, env)
        self.assertIn("did not catch up", env["errDlt"])
        self.assertEqual(self.members(lead)[9]["role"], "standby")
        self.send_rest(lead, 3)
        env = lead.post("/cluster/remove", {"nodeID": 9}, token=tok)
        self.assertEqual(env["errCode"], 0, env)
        self.assertEqual(sorted(self.members(lead)), sorted(before))
        # The command line refuses bad flags (exit 2) before calling anything.
        rc, _, err = self.c.cli("add", "--node-id", "x")
        self.assertEqual(rc, 2, err)
        rc, _, err = self.c.cli("add", "--node-id", "5")
        self.assertEqual(rc, 2, err)
        self.assert_all_hold_everything()


if __name__ == "__main__":
    harness.main()
