"""Scenarios with the REAL OpenIM native SDK (openim-sdk-core, Go) against `imlog serve`.

tests/sdk-go/main.go wraps github.com/openimsdk/openim-sdk-core/v3 (pinned in tests/sdk-go/go.mod;
GPL-3.0, downloaded through the Go module proxy at build time, test-only, never committed) into a
program that logs one user in and runs a list of steps (send / expect / expect_latest / idle /
wait_line / logout), printing every SDK callback as a JSON line. It talks gob envelopes, gzip-compressed, to the
gateway (openim-protocol.md §4.9, §10). The SDK keeps its state in a process-wide singleton, so each
user is one process. tests/sdk-go/js_peer.mjs is the same driver on the real JS SDK
(@openim/client-sdk 0.0.14 from tests/sdk-js/node_modules) for the mixed Go <-> JS scenarios.

The program is built once per run into <builddir>/tests/sdk-go/sdkgo, with GOCACHE beside it
(tools/test.sh builds it before meson test; the build here is then a quick no-op). Without `go`
the whole file is skipped; the JS scenarios are skipped without node or the installed JS SDK.
Synchronisation is by the printed events only, each wait bounded by a deadline.
Debugging: the SDK's own log is in <server data dir>/sdk-<user>/log/; IMLOG_SDKGO_KEEP=1 keeps
the data dirs and prints where they are.
"""
import json
import os
import select
import shutil
import subprocess
import time
import unittest

import harness
from harness import ServerTest

HERE = os.path.dirname(os.path.abspath(__file__))
GO_DIR = os.path.abspath(os.path.join(HERE, "..", "sdk-go"))
JS_SDK = os.path.abspath(os.path.join(HERE, "..", "sdk-js", "node_modules", "@openim", "client-sdk",
                                      "package.json"))
BUILD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(harness.IMLOG_BIN))),
                         "tests", "sdk-go")
BIN = os.path.join(BUILD_DIR, "sdkgo")
GO = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
NODE = shutil.which("node")
BUILD_TIMEOUT = 420  # a cold build downloads the modules and compiles sqlite (cgo): ~2 min here
STEP_DEADLINE_MS = 20000  # each wait inside a client
EVENT_TIMEOUT = 45      # each wait here for a client's event
PLATFORM_ANDROID, PLATFORM_WEB = 2, 5


def build():
    """tests/sdk-go/build.sh (an incremental go build); returns None or the reason it failed."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([os.path.join(GO_DIR, "build.sh"), os.path.dirname(os.path.dirname(BUILD_DIR))],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"go build did not finish within {BUILD_TIMEOUT} s"
    if p.returncode != 0 or not os.access(BIN, os.X_OK):
        return "tests/sdk-go/build.sh failed:\n" + p.stdout.decode(errors="replace")[-4000:]
    print(f"sdkgo built in {time.monotonic() - t0:.1f} s", flush=True)
    return None


class Client:
    """One SDK process (Go or JS); reads its JSON event lines with deadlines."""

    def __init__(self, test, name, cmd, cfg):
        self.test, self.name = test, name
        self.events = []
        self.other = []  # non-JSON stdout lines
        self.stderr_path = os.path.join(cfg["dataDir"], "stderr.txt")
        os.makedirs(cfg["dataDir"], exist_ok=True)
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                     env=dict(os.environ, IMLOG_SDKGO_CONFIG=json.dumps(cfg)))
        err.close()
        self._buf = b""
        self._eof = False

    def _read(self, timeout):
        """Reads what is available (waiting at most timeout); False at end of stream."""
        if self._eof:
            return False
        r, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout))
        if not r:
            return True
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            text = line.decode(errors="replace")
            try:
                self.events.append(json.loads(text))
            except ValueError:
                self.other.append(text)
        return True

    def wait(self, name, pred=lambda e: True, timeout=EVENT_TIMEOUT):
        """The first event `name` satisfying pred; fails on a "fail" event, exit or deadline."""
        deadline = time.monotonic() + timeout
        i = 0
        while True:
            while i < len(self.events):
                e = self.events[i]
                i += 1
                if e["event"] == name and pred(e):
                    return e
                if e["event"] == "fail":
                    self.test.fail(f"{self.name}: {e['error']}\n{self.trace()}")
            left = deadline - time.monotonic()
            if left <= 0:
                self.test.fail(f"{self.name}: no {name} event within {timeout} s\n{self.trace()}")
            if not self._read(left):
                if i >= len(self.events):
                    self.test.fail(f"{self.name}: exited ({self.proc.wait()}) before {name}\n{self.trace()}")

    def go_ahead(self):
        self.wait("waiting_line")
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def finish(self):
        """Waits for the result line and exit 0; returns all events."""
        self.wait("result")
        try:
            rc = self.proc.wait(timeout=EVENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.test.fail(f"{self.name}: still running after its result line\n{self.trace()}")
        self.test.assertEqual(rc, 0, self.trace())
        while self._read(0):
            pass
        return self.events

    def received(self):
        return [e["msg"] for e in self.events if e["event"] == "recv"]

    def trace(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                err = f.read()[-3000:]
        except OSError:
            err = ""
        lines = [json.dumps(e)[:1500] for e in self.events[-60:]]
        return (f"--- {self.name} events:\n" + "\n".join(lines)
                + (f"\n--- {self.name} other stdout:\n" + "\n".join(self.other[-20:]) if self.other else "")
                + f"\n--- {self.name} stderr:\n{err}"
                + f"\n--- server log:\n{self.test.srv.log_tail(30)}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stdin.close()


class SdkGoTest(ServerTest):
    server_args = ("--log-level", os.environ.get("IMLOG_SDKGO_SERVER_LOG", "debug"))
    seq = 0
    built = None

    @classmethod
    def setUpClass(cls):
        if not GO:
            raise unittest.SkipTest("go not installed: the real native SDK cannot be built")
        if SdkGoTest.built is None:
            SdkGoTest.built = build() or ""
        if SdkGoTest.built:
            raise AssertionError(SdkGoTest.built)
        super().setUpClass()
        cls.api_addr = f"http://127.0.0.1:{cls.srv.api_port}"
        cls.ws_addr = f"ws://127.0.0.1:{cls.srv.ws_port}"

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("IMLOG_SDKGO_KEEP"):
            cls.srv.own_dir = False
            print("kept server and SDK data in", cls.srv.data_dir)
        super().tearDownClass()

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.kill()

    # ---- helpers

    def users(self, *names, platform=PLATFORM_ANDROID):
        """Registers one fresh user per name; returns {name: (userID, token)}."""
        SdkGoTest.seq += 1
        ids = {n: f"go{SdkGoTest.seq}{n.lower()}" for n in names}
        self.assertCode(self.srv.register(self.admin, list(ids.values())), 0)
        return {n: uid for n, uid in ids.items()}

    def client(self, user_id, steps, js=False):
        platform = PLATFORM_WEB if js else PLATFORM_ANDROID
        tok = self.srv.user_token(self.admin, user_id, platform)
        cfg = dict(apiAddr=self.api_addr, wsAddr=self.ws_addr, platformID=platform,
                   dataDir=os.path.join(self.srv.data_dir, "sdk-" + user_id), userID=user_id, token=tok,
                   scenario=self._testMethodName, deadlineMs=STEP_DEADLINE_MS, steps=steps)
        if js:
            if not NODE or not os.path.isfile(JS_SDK):
                self.skipTest("node or the JS SDK (tests/sdk-js/install.sh) is missing")
            cmd = [NODE, os.path.join(GO_DIR, "js_peer.mjs")]
        else:
            cmd = [BIN]
        c = Client(self, ("js:" if js else "go:") + user_id, cmd, cfg)
        self.clients.append(c)
        return c

    def create_group(self, owner, members):
        tok = self.srv.user_token(self.admin, owner, PLATFORM_WEB)
        env = self.srv.post("/group/create_group", {
            "ownerUserID": owner, "memberUserIDs": members, "adminUserIDs": [],
            "groupInfo": {"groupName": "sdk-go group", "groupType": 2}}, token=tok)
        self.assertCode(env, 0)
        return env["data"]["groupInfo"]["groupID"]

    def assertMsg(self, m, text, sender, recv=None, group=None):
        self.assertEqual(m["text"], text, m)
        self.assertEqual(m["sendID"], sender, m)
        self.assertEqual(m["contentType"], 101, m)
        if group:
            self.assertEqual(m["sessionType"], 3, m)
            self.assertEqual(m["groupID"], group, m)
        else:
            self.assertEqual(m["sessionType"], 1, m)
            self.assertEqual(m["recvID"], recv, m)
        self.assertTrue(m["serverMsgID"], m)
        self.assertGreater(m["seq"], 0, m)

    # ---- scenarios

    def test_1_login_sync_logout(self):
        u = self.users("A")
        a = self.client(u["A"], [{"op": "logout"}])
        ev = a.finish()
        names = [e["event"] for e in ev]
        self.assertIn("connect_success", names)
        self.assertIn("sync_finish", names)
        self.assertLess(names.index("ready"), names.index("logged_out"))
        self.assertNotIn("connect_failed", names)
        self.assertEqual(names.count("connecting"), 1, "the SDK had to reconnect:\n" + a.trace())
        self.assertTrue(self.srv.alive())

    def test_2_one_to_one_both_ways(self):
        u = self.users("A", "B")
        A, B = u["A"], u["B"]
        b = self.client(B, [{"op": "expect", "from": A, "text": "hello from A"},
                            {"op": "send", "to": A, "text": "hello back from B"},
                            {"op": "expect", "from": A, "text": "second from A"}])
        a = self.client(A, [{"op": "wait_line"},
                            {"op": "send", "to": B, "text": "hello from A"},
                            {"op": "expect", "from": B, "text": "hello back from B"},
                            {"op": "send", "to": B, "text": "second from A"},
                            # The SDK has taken in the push of its own message before logging out
                            # (a push handled during its logout is reported as new by the SDK).
                            {"op": "expect_latest", "from": A, "text": "second from A", "synced": True},
                            {"op": "logout"}])
        b.wait("ready")
        a.go_ahead()
        ea, eb = a.finish(), b.finish()
        sent_a = [e["msg"] for e in ea if e["event"] == "sent"]
        sent_b = [e["msg"] for e in eb if e["event"] == "sent"]
        self.assertEqual(len(sent_a + sent_b), 3)
        rb, ra = b.received(), a.received()
        self.assertEqual([m["text"] for m in rb], ["hello from A", "second from A"],
                         "B got its own message back as new, or missed one:\n" + b.trace())
        self.assertEqual([m["text"] for m in ra], ["hello back from B"],
                         "A got its own message back as new, or missed one:\n" + a.trace())
        self.assertMsg(rb[0], "hello from A", A, recv=B)
        self.assertEqual(rb[0]["seq"], 1)
        self.assertEqual(rb[0]["serverMsgID"], sent_a[0]["serverMsgID"])
        self.assertMsg(ra[0], "hello back from B", B, recv=A)
        self.assertEqual(ra[0]["seq"], 2)
        self.assertEqual(rb[1]["seq"], 3)

    def test_3_group_receive(self):
        u = self.users("A", "B", "C")
        A, B, C = u["A"], u["B"], u["C"]
        gid = self.create_group(A, [B, C])
        b = self.client(B, [{"op": "expect", "from": A, "group": gid, "text": "hello group"},
                            {"op": "send", "group": gid, "text": "B here"}])
        c = self.client(C, [{"op": "expect", "from": A, "group": gid, "text": "hello group"},
                            {"op": "expect", "from": B, "group": gid, "text": "B here"}])
        a = self.client(A, [{"op": "wait_line"},
                            {"op": "send", "group": gid, "text": "hello group"},
                            {"op": "expect", "from": B, "group": gid, "text": "B here"}])
        b.wait("ready")
        c.wait("ready")
        a.go_ahead()
        for cl in (a, b, c):
            cl.finish()
        for who, cl, want in ((A, a, ["B here"]), (B, b, ["hello group"]), (C, c, ["hello group", "B here"])):
            got = [m for m in cl.received() if m["contentType"] == 101]
            self.assertEqual([m["text"] for m in got], want, f"texts {who} received:\n" + cl.trace())
        mb = b.received()[0]
        mc = [m for m in c.received() if m["text"] == "hello group"][0]
        self.assertMsg(mb, "hello group", A, group=gid)
        self.assertEqual(mb["seq"], mc["seq"])
        self.assertEqual(mb["serverMsgID"], mc["serverMsgID"])
        self.assertEqual(a.received()[0]["seq"], mb["seq"] + 1)

    def test_4_offline_messages_synced_at_login(self):
        """B logs in once (its SDK database now exists) and out; A sends to B and to C, who never
        logged in; B's second login pulls the gap and reports it as a new message (1001 + 1002);
        C's SDK, on a fresh database, syncs the conversation with the message as its latest."""
        u = self.users("A", "B", "C")
        A, B, C = u["A"], u["B"], u["C"]
        self.client(B, [{"op": "logout"}]).finish()
        a = self.client(A, [{"op": "send", "to": B, "text": "while you were away"},
                            {"op": "send", "to": C, "text": "hello newcomer"}, {"op": "logout"}])
        sent = [e["msg"] for e in a.finish() if e["event"] == "sent"]
        b = self.client(B, [{"op": "expect", "from": A, "text": "while you were away"}, {"op": "logout"}])
        b.finish()
        m = b.received()[0]
        self.assertMsg(m, "while you were away", A, recv=B)
        self.assertEqual(m["serverMsgID"], sent[0]["serverMsgID"])
        self.assertEqual(m["seq"], 1)
        c = self.client(C, [{"op": "expect_latest", "from": A, "text": "hello newcomer"}, {"op": "logout"}])
        ok = c.wait("expect_ok")
        c.finish()
        self.assertEqual(ok["conversationID"], "si_%s_%s" % tuple(sorted((A, C))), ok)
        self.assertEqual(ok["unreadCount"], 1, ok)
        self.assertMsg(ok["msg"], "hello newcomer", A, recv=C)
        self.assertEqual(ok["msg"]["serverMsgID"], sent[1]["serverMsgID"])

    def test_5_go_and_js_both_ways(self):
        u = self.users("G", "J")
        G, J = u["G"], u["J"]
        j = self.client(J, [{"op": "expect", "from": G, "text": "from the Go SDK"},
                            {"op": "send", "to": G, "text": "from the JS SDK"}], js=True)
        g = self.client(G, [{"op": "wait_line"},
                            {"op": "send", "to": J, "text": "from the Go SDK"},
                            {"op": "expect", "from": J, "text": "from the JS SDK"},
                            {"op": "logout"}])
        j.wait("ready")
        g.go_ahead()
        g.finish()
        j.finish()
        self.assertEqual([m["text"] for m in j.received()], ["from the Go SDK"], j.trace())
        self.assertEqual([m["text"] for m in g.received()], ["from the JS SDK"], g.trace())
        self.assertMsg(j.received()[0], "from the Go SDK", G, recv=J)
        self.assertMsg(g.received()[0], "from the JS SDK", J, recv=G)
        self.assertEqual(j.received()[0]["seq"], 1)
        self.assertEqual(g.received()[0]["seq"], 2)

    def test_6_group_with_go_and_js(self):
        u = self.users("G", "H", "J")
        G, H, J = u["G"], u["H"], u["J"]
        gid = self.create_group(J, [G, H])
        j = self.client(J, [{"op": "wait_line"},
                            {"op": "send", "group": gid, "text": "JS to the group"},
                            {"op": "expect", "from": G, "group": gid, "text": "Go to the group"}], js=True)
        g = self.client(G, [{"op": "expect", "from": J, "group": gid, "text": "JS to the group"},
                            {"op": "send", "group": gid, "text": "Go to the group"}])
        h = self.client(H, [{"op": "expect", "from": J, "group": gid, "text": "JS to the group"},
                            {"op": "expect", "from": G, "group": gid, "text": "Go to the group"}])
        g.wait("ready")
        h.wait("ready")
        j.go_ahead()
        for cl in (j, g, h):
            cl.finish()
        self.assertEqual([m["text"] for m in h.received() if m["contentType"] == 101],
                         ["JS to the group", "Go to the group"], h.trace())
        self.assertEqual([m["text"] for m in j.received() if m["contentType"] == 101],
                         ["Go to the group"], j.trace())

    def test_8_group_management(self):
        """The native SDK's group setters and the events each member's SDK fires (§8.4): the owner
        renames the group and makes B an admin; C applies, B (now an admin) sees the application
        and accepts it; C joins; the owner transfers the group to B; the lists agree."""
        u = self.users("A", "B", "C")
        A, B, C = u["A"], u["B"], u["C"]
        gid = self.create_group(A, [B])
        ev = lambda name, **match: {"op": "expect_event", "event": name, "match": match}
        call = lambda method, *args: {"op": "call", "method": method, "args": list(args)}
        b = self.client(B, [ev("group_info_changed", groupID=gid, groupName="renamed"),
                            ev("group_member_info_changed", groupID=gid, userID=B, roleLevel=60),
                            ev("group_application_added", groupID=gid, userID=C),
                            call("AcceptGroupApplication", gid, C, "welcome"),
                            ev("group_member_added", groupID=gid, userID=C),
                            ev("group_member_info_changed", groupID=gid, userID=B, roleLevel=100),
                            call("GetGroupMemberList", gid)])
        c = self.client(C, [{"op": "wait_line"},
                            call("JoinGroup", gid, "let me in", 3, ""),
                            ev("group_application_accepted", groupID=gid),
                            ev("joined_group_added", groupID=gid),
                            call("GetJoinedGroupList")])
        a = self.client(A, [{"op": "wait_line"},
                            call("SetGroupInfo", {"groupID": gid, "groupName": "renamed",
                                                  "notification": "read me"}),
                            call("SetGroupMemberInfo", {"groupID": gid, "userID": B, "roleLevel": 60}),
                            ev("group_member_added", groupID=gid, userID=C),
                            call("TransferGroupOwner", gid, B),
                            ev("group_info_changed", groupID=gid, ownerUserID=B)])
        b.wait("ready")
        c.wait("ready")
        a.go_ahead()
        b.wait("expect_ok", lambda e: e.get("expected") == "group_member_info_changed")
        c.go_ahead()
        for cl in (a, b, c):
            cl.finish()
        members = [e["data"] for e in b.events if e["event"] == "call_ok"][-1]
        self.assertEqual(sorted((m["userID"], m["roleLevel"]) for m in members),
                         sorted([(A, 60), (B, 100), (C, 20)]), b.trace())
        joined = [e["data"] for e in c.events if e["event"] == "call_ok"][-1]
        self.assertEqual([g["groupID"] for g in joined], [gid], c.trace())
        self.assertEqual(joined[0]["groupName"], "renamed")

    def test_7_idle_connection_survives_the_read_deadline(self):
        """The server's read deadline is 30 s; the native SDK sends nothing but a WS Ping control
        frame every 24 s while idle (§4.6, §10), which must keep the connection open."""
        u = self.users("A", "B")
        A, B = u["A"], u["B"]
        b = self.client(B, [{"op": "idle", "ms": 40000},
                            {"op": "expect", "from": A, "text": "still there?"}])
        b.wait("ready")
        a = self.client(A, [{"op": "wait_line"}, {"op": "send", "to": B, "text": "still there?"}])
        b.wait("idle_ok", timeout=70)
        a.go_ahead()
        a.finish()
        b.finish()
        names = [e["event"] for e in b.events]
        self.assertEqual(names.count("connecting"), 1, b.trace())


if __name__ == "__main__":
    harness.main()
