"""Linearizability of a three-node cluster under leader crashes, checked with Porcupine.

tests/linear (Go) runs six clients, two per node, each doing one operation at a time on four
registers (user nicknames: /user/update_user_info writes, /user/get_users_info reads) and records
the history; Porcupine (github.com/anishathalye/porcupine, from the Go module proxy) then checks it
against a register model. Meanwhile the nemesis here kills the leader with SIGKILL and restarts it,
twice. Writes without an answer enter the history as may-have-happened; requests a node refused
(it was down) are left out.

Reads on a follower are linearizable only thanks to the read barrier (docs/cluster.md): with it
disabled this check reports a non-linearizable history within a few seconds (a read on a follower
returns a value older than a write that completed before the read began).

IMLOG_SEED=N repeats the workload's random choices (the fault timing is not replayed)."""
import os
import shutil
import subprocess
import time

import harness
from cluster import ClusterTestCase, kill9

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", "linear"))
BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(harness.IMLOG_BIN))),
                   "tests", "linear", "linear")
GO = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK)
                            else None)
SECONDS = 14      # the workload's length
NEMESIS_EVERY = 3.0  # seconds of normal operation before each fault (a schedule, not a wait)
DOWN_FOR = 2.0       # how long the killed leader stays down


class ClusterLinearTest(ClusterTestCase):
    ARGS = ["--snapshot-threshold", "256", "--snapshot-trailing", "64",
            "--forward-timeout-ms", "4000"]

    @classmethod
    def prepare(cls):
        if GO is None:
            return
        p = subprocess.run([os.path.join(SRC, "build.sh"),
                            os.path.dirname(os.path.dirname(os.path.dirname(BIN)))],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert p.returncode == 0 and os.access(BIN, os.X_OK), p.stdout.decode()[-3000:]
        n1 = cls.c.nodes[0]
        env = n1.register(n1.admin(), ["lin%d" % i for i in range(4)], nickname="init")
        assert env["errCode"] == 0, env
        cls.c.converged()

    def test_history_under_leader_crashes_is_linearizable(self):
        if GO is None:
            self.skipTest("go not found")
        seed = os.environ.get("IMLOG_SEED", str(int.from_bytes(os.urandom(4), "little")))
        viz = os.path.join(self.c.log_dir, "linear.html")
        work = subprocess.Popen(
            [BIN, "-nodes", ",".join(n.api_addr for n in self.c.nodes), "-secret", self.c.secret,
             "-seconds", str(SECONDS), "-clients", "6", "-keys", "4", "-seed", seed,
             "-viz", viz], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        faults = []
        t0 = time.monotonic()
        try:
            for _ in range(2):
                time.sleep(NEMESIS_EVERY)  # the fault schedule: normal operation in between
                lead = self.c.leader()
                kill9(lead)
                faults.append("node %d killed at %.1f s" % (lead.node_id, time.monotonic() - t0))
                time.sleep(DOWN_FOR)  # the fault schedule: how long it stays down
                lead.start()
            out, _ = work.communicate(timeout=SECONDS + 120)
        finally:
            if work.poll() is None:
                work.kill()
        print("  " + "; ".join(faults))
        print("  " + out.strip().replace("\n", "\n  "))
        self.assertEqual(work.returncode, 0, "history not linearizable (seed %s, see %s)\n%s"
                         % (seed, viz, out))
        self.assertIn("linearizable: true", out)
        fields = next(line for line in out.splitlines() if line.startswith("ops ")).split()
        counts = dict(zip(fields[::2], fields[1::2]))
        # A history worth checking: both kinds of operation, in numbers.
        self.assertGreater(int(counts["writes"]), 100, out)
        self.assertGreater(int(counts["reads"]), 100, out)
        self.c.converged()


if __name__ == "__main__":
    harness.main()
