"""Real-process clusters for the integration tests: N imlog nodes on loopback, each with its own
data directory and ports, started with the same --cluster and --cluster-api lists."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness

DEADLINE = 60.0  # a deadline for an event, not a sleep


def distinct_ports(n):
    """n distinct free loopback ports (each was free when the kernel handed it out)."""
    ports = set()
    while len(ports) < n:
        ports.add(harness.free_port())
    return list(ports)


def wait_for(cond, what, deadline=DEADLINE):
    """Polls cond() until it returns a true value (returned) or the deadline passes."""
    end = time.monotonic() + deadline
    last_exc = None
    while time.monotonic() < end:
        try:
            v = cond()
            if v:
                return v
        except (OSError, AssertionError, KeyError, ValueError) as e:
            last_exc = e
        time.sleep(0.02)  # polling interval of a condition with a deadline
    raise AssertionError("timed out waiting for %s (last error: %r)" % (what, last_exc))


class Node(harness.Server):
    """One member: fixed ports (peers must know them before it starts)."""

    def __init__(self, cluster, node_id, api_port, ws_port, raft_port, args=(), host="127.0.0.1",
                 netns=None):
        super().__init__(data_dir=tempfile.mkdtemp(prefix="imlog-clu%d-" % node_id),
                         secret=cluster.secret, args=args)
        self.host = host
        self.netns = netns
        self.own_dir = True
        self.cluster = cluster
        self.node_id = node_id
        self.api_port, self.ws_port, self.raft_port = api_port, ws_port, raft_port
        self.log_path = os.path.join(cluster.log_dir, "node%d.log" % node_id)
        self._admin = None
        # None: start with the cluster's --cluster/--cluster-api lists; "HOST:PORT,...": with
        # --join (wait to be added); "": with neither (a node that joined, restarted)
        self.join = None

    @property
    def api_addr(self):
        return "%s:%d" % (self.host, self.api_port)

    @property
    def raft_addr(self):
        return "%s:%d" % (self.host, self.raft_port)

    def launch(self):
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        cmd = (["ip", "netns", "exec", self.netns] if self.netns else []) + [
               harness.IMLOG_BIN, "serve", "--data-dir", self.data_dir,
               "--node-id", str(self.node_id),
               "--api-addr", "%s:%d" % (self.host, self.api_port),
               "--ws-addr", "%s:%d" % (self.host, self.ws_port),
               "--raft-addr", "%s:%d" % (self.host, self.raft_port),
               ] + (["--join", self.join] if self.join else [] if self.join == "" else
                    ["--cluster", self.cluster.members, "--cluster-api", self.cluster.api_members]) + [
               "--secret", self.secret, "--raft-segment-kb", "256",
               "--election-timeout-ms", "1000"] + self.args
        env = dict(os.environ)
        env.pop("IMLOG_SECRET", None)
        log = open(self.log_path, "ab")
        self.stdout_lines = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        return self

    def start(self):
        self.launch()
        self._wait_ready()
        return self

    def wait_ready(self):
        self._wait_ready()
        return self

    def wipe(self):
        """Removes the whole data directory (engine and raft log) of a stopped node."""
        assert not self.alive()
        shutil.rmtree(self.data_dir)
        os.mkdir(self.data_dir)

    def admin(self):
        if self._admin is None:
            self._admin = self.admin_token()
        return self._admin

    def status(self):
        env = self.post("/cluster/status", {}, token=self.admin())
        assert env["errCode"] == 0, env
        return env["data"]


class Cluster:
    """n nodes on loopback ports, or (hosts, netns given) node i on hosts[i] inside netns[i]."""

    def __init__(self, n=3, args=(), log_dir=None, hosts=None, netns=None):
        self.secret = "cluster-secret-" + os.urandom(6).hex()
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="imlog-clulogs-")
        hosts = hosts or ["127.0.0.1"] * n
        ports = distinct_ports(3 * n) if netns is None else [17002, 17001, 17003] * n
        self.members = ",".join("%d@%s:%d" % (i + 1, hosts[i], ports[3 * i + 2]) for i in range(n))
        self.api_members = ",".join("%d@%s:%d" % (i + 1, hosts[i], ports[3 * i]) for i in range(n))
        self.nodes = [Node(self, i + 1, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2], args,
                           hosts[i], netns[i] if netns else None)
                      for i in range(n)]

    def start(self):
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_ready()
        return self

    def new_node(self, args=None):
        """A node with the next id and fresh ports, to be started with --join (not launched)."""
        api, ws, raft = distinct_ports(3)
        node = Node(self, len(self.nodes) + 1, api, ws, raft,
                    self.nodes[0].args if args is None else args)
        node.join = ",".join(n.api_addr for n in self.live())
        self.nodes.append(node)
        return node

    def cli(self, *args, api=None):
        """Runs `imlog cluster ARGS --api-addr API --secret S`; returns (exit code, out, err)."""
        api = api or self.live()[0].api_addr
        p = subprocess.run([harness.IMLOG_BIN, "cluster"] + list(args) +
                           ["--api-addr", api, "--secret", self.secret],
                           capture_output=True, text=True, timeout=180)
        return p.returncode, p.stdout, p.stderr

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def leader(self, among=None):
        """The node every live node (or `among`) agrees leads, once they agree."""
        nodes = among or self.live()

        def agreed():
            ids = {n.status()["leaderID"] for n in nodes}
            if len(ids) != 1 or 0 in ids:
                return None
            lead = self.nodes[ids.pop() - 1]
            return lead if lead in nodes and lead.status()["state"] == "leader" else None
        return wait_for(agreed, "one leader among %s" % [n.node_id for n in nodes])

    def followers(self, leader):
        return [n for n in self.live() if n is not leader]

    def converged(self, nodes=None):
        """Waits until every live node has applied the leader's commit index."""
        nodes = nodes or self.live()
        lead = self.leader(nodes)
        target = lead.status()["commitIndex"]
        try:
            # raft's applied index: the last entries may be barriers or configuration changes,
            # which the engine never sees; after an engine copy the engine's may be ahead.
            wait_for(lambda: all(max(st["appliedIndex"], st["engineIndex"]) >= target
                                 for st in (n.status() for n in nodes)),
                     "nodes applying index %d" % target)
        except AssertionError as e:
            raise AssertionError("%s; nodes: %s" % (e, [
                (n.node_id, n.status()) for n in nodes])) from None
        self.assert_same_state(nodes)
        return target

    def state(self, node):
        env = node.post("/cluster/status", {"stateHash": True}, token=node.admin())
        assert env["errCode"] == 0, env
        return env["data"]["stateIndex"], env["data"]["stateHash"]

    def assert_same_state(self, nodes):
        """Once the nodes' committed states cover the same index, their digests are equal."""
        states = wait_for(lambda: (lambda s: s if len({i for i, _ in s}) == 1 else None)(
            [self.state(n) for n in nodes]), "equal state indexes")
        hashes = {h for _, h in states}
        assert len(hashes) == 1, "state digests differ at index %d: %s" % (
            states[0][0], [(n.node_id, s) for n, s in zip(nodes, states)])

    def cleanup(self):
        for node in self.nodes:
            node.cleanup()
        if os.environ.get("IMLOG_KEEP_LOGS"):
            print("cluster logs kept in", self.log_dir)
        else:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def log_tails(self):
        return "\n".join("--- node %d\n%s" % (n.node_id, n.log_tail(30)) for n in self.nodes)


def kill9(node):
    if node.proc and node.proc.poll() is None:
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()
    node._close_conn()


class ClusterTestCase(unittest.TestCase):
    """Tests that share one cluster of N_NODES started with ARGS; prepare() runs once after it is
    up. A failing test prints the tail of every node's log."""
    N_NODES = 3
    ARGS = ()

    @classmethod
    def prepare(cls):
        pass

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(cls.N_NODES, args=list(cls.ARGS))
        try:
            cls.c.start()
            cls.prepare()
        except BaseException:
            print(cls.c.log_tails())
            cls.c.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            print(self.c.log_tails())
        return out
