"""Linearizability of a three-node cluster under leader crashes, checked with Porcupine.

tests/linear (Go) runs six clients, two per node, each doing one operation at a time on four
fresh registers per test (user nicknames: /user/update_user_info writes, /user/get_users_info reads) and records
the history; Porcupine (github.com/anishathalye/porcupine, from the Go module proxy) then checks it
against a register model. Meanwhile the nemesis here, twice, kills the leader with SIGKILL and restarts
it (test_1), or freezes it with SIGSTOP past an election and resumes it (test_2). Writes without an answer enter the history as may-have-happened; requests a node refused
(it was down) are left out.

Reads on a follower are linearizable only thanks to the read barrier (docs/cluster.md): with it
disabled this check reports a non-linearizable history within a few seconds (a read on a follower
returns a value older than a write that completed before the read began). Reads on a resumed old
leader are linearizable only thanks to the leader lease.

IMLOG_SEED=N repeats the workload's random choices (the fault timing is not replayed)."""
import os
import shutil
import signal
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

    def check(self, fault):
        """Runs the workload while fault(leader, t0) is applied twice; checks the history."""
        if GO is None:
            self.skipTest("go not found")
        seed = os.environ.get("IMLOG_SEED", str(int.from_bytes(os.urandom(4), "little")))
        viz = os.path.join(self.c.log_dir, "linear-%s.html" % self._testMethodName)
        # Fresh registers for each test: the model starts every one at "init".
        prefix = "lin%s" % self._testMethodName.split("_")[1]
        lead = self.c.leader()
        env = lead.register(lead.admin(), ["%s%d" % (prefix, i) for i in range(4)],
                            nickname="init")
        self.assertEqual(env["errCode"], 0, env)
        work = subprocess.Popen(
            [BIN, "-nodes", ",".join(n.api_addr for n in self.c.nodes), "-secret", self.c.secret,
             "-seconds", str(SECONDS), "-clients", "6", "-readers", "3", "-keys", "4", "-prefix", prefix,
             "-seed", seed, "-viz", viz], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        faults = []
        t0 = time.monotonic()
        try:
            for _ in range(2):
                time.sleep(NEMESIS_EVERY)  # the fault schedule: normal operation in between
                faults.append(fault(self.c.leader(), t0))
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

    def test_1_history_under_leader_crashes_is_linearizable(self):
        def crash(lead, t0):
            kill9(lead)
            at = time.monotonic() - t0
            time.sleep(DOWN_FOR)  # the fault schedule: how long it stays down
            lead.start()
            return "node %d killed at %.1f s" % (lead.node_id, at)
        self.check(crash)

    def test_2_history_under_leader_pauses_is_linearizable(self):
        """The leader frozen (SIGSTOP) longer than an election timeout, then resumed: the
        others elect a leader and go on; the old one, resumed, still believes it leads and has
        requests waiting in its sockets. It must not answer reads from its own state then: reads
        on a leader need its lease (docs/cluster.md), which ran out while it was frozen."""
        def pause(lead, t0):
            lead.proc.send_signal(signal.SIGSTOP)
            at = time.monotonic() - t0
            time.sleep(DOWN_FOR + 0.5)  # the fault schedule: frozen past an election
            lead.proc.send_signal(signal.SIGCONT)
            return "node %d paused at %.1f s" % (lead.node_id, at)
        self.check(pause)


if __name__ == "__main__":
    harness.main()
