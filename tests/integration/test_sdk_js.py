"""Conformance scenarios with the REAL OpenIM JS SDK (@openim/client-sdk 0.0.14) in Node 20.

The server is the real `imlog serve` (harness.Server); users are registered and their tokens
fetched over REST here; each scenario is a node script in tests/sdk-js/ that logs the users in
with the SDK, waits for the SDK's events with deadlines and checks them. The config goes in the
environment variable IMLOG_SDK_CONFIG; the script prints "RESULT <json>" and exits 0, or prints
"FAIL: ..." with the event trace and exits 1.

tests/sdk-js/install.sh installs the SDK (tools/test.sh runs it before meson test; this file runs
it too when node_modules is missing). Without node/npm the whole file is skipped (exit 77).
Debugging: IMLOG_SDK_DEBUG=1 prints the SDK's events (and its own log) as they happen,
IMLOG_SDK_WIRE=1 every WebSocket frame; IMLOG_SDK_BUILD=modern runs every scenario on the package's
lib/index.modern.mjs instead of its default entry (see tests/sdk-js/lib.mjs).
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

import harness
from harness import ServerTest

SDK_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "sdk-js"))
NODE = shutil.which("node")
NPM = shutil.which("npm")
SCRIPT_TIMEOUT = 180  # seconds for one node process; the scenarios' own deadlines are shorter
PLATFORM_WEB = 5


def sdk_installed():
    return os.path.isfile(os.path.join(SDK_DIR, "node_modules", "@openim", "client-sdk", "package.json"))


class SdkJsTest(ServerTest):
    server_args = ("--log-level", os.environ.get("IMLOG_SDK_SERVER_LOG", "debug"))
    seq = 0

    @classmethod
    def setUpClass(cls):
        if not NODE or not NPM:
            raise unittest.SkipTest("node/npm not installed: the real JS SDK cannot run")
        if not sdk_installed():
            subprocess.run([os.path.join(SDK_DIR, "install.sh")], check=True, timeout=600)
        super().setUpClass()
        cls.api_addr = f"http://127.0.0.1:{cls.srv.api_port}"
        cls.ws_addr = f"ws://127.0.0.1:{cls.srv.ws_port}"

    # ---- helpers

    def users(self, *names):
        """Registers one fresh user per name (unique to this test) and issues a Web token each."""
        SdkJsTest.seq += 1
        prefix = "js%d%s" % (SdkJsTest.seq, self._testMethodName.replace("test_", "")[:10].replace("_", ""))
        ids = {n: f"{prefix}{n.lower()}" for n in names}
        env = self.srv.register(self.admin, list(ids.values()))
        self.assertCode(env, 0)
        return {n: {"userID": uid, "token": self.srv.user_token(self.admin, uid, PLATFORM_WEB)}
                for n, uid in ids.items()}

    def scenario(self, name, users, **extra):
        """Runs tests/sdk-js/<name>.mjs; returns its RESULT object (fails the test on FAIL)."""
        cfg = dict(apiAddr=self.api_addr, wsAddr=self.ws_addr, adminToken=self.admin,
                   platformID=PLATFORM_WEB, users=users, **extra)
        env = dict(os.environ, IMLOG_SDK_CONFIG=json.dumps(cfg))
        try:
            p = subprocess.run([NODE, os.path.join(SDK_DIR, name + ".mjs")], cwd=SDK_DIR, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            self.fail(f"{name}.mjs did not exit within {SCRIPT_TIMEOUT} s\n{self._tails(e.stdout, e.stderr)}")
        out = p.stdout.decode(errors="replace")
        results = [line[7:] for line in out.splitlines() if line.startswith("RESULT ")]
        if p.returncode != 0 or len(results) != 1:
            fail = [line for line in out.splitlines() if line.startswith("FAIL")]
            self.fail(f"{name}.mjs exited {p.returncode}: {fail[0] if fail else '(no FAIL line)'}\n"
                      + self._tails(p.stdout, p.stderr))
        self.assertTrue(self.srv.alive(), "the server died during " + name)
        return json.loads(results[0])

    def _tails(self, stdout, stderr):
        def tail(b, n):
            lines = (b or b"").decode(errors="replace").splitlines()[-n:]
            return "\n".join(line if len(line) <= 400 else line[:400] + "…" for line in lines)
        log = [line for line in self.srv.log_tail(400).splitlines() if "end of file" not in line]
        return (f"--- node stdout:\n{tail(stdout, 30)}\n--- node stderr:\n{tail(stderr, 80)}\n"
                f"--- server log ({self.srv.log_path}):\n" + "\n".join(log[-60:]))

    # ---- scenarios (issue text, numbered as there)

    def test_1_login_syncs(self):
        r = self.scenario("login", self.users("A", "B"))
        for n in ("A", "B"):
            self.assertEqual(r[n]["events"],
                             ["OnConnecting", "OnConnectSuccess", "OnSyncServerStart", "OnSyncServerFinish"])

    def test_2_text_both_ways_without_echo(self):
        u = self.users("A", "B")
        r = self.scenario("text", u)
        self.assertEqual(r["received"], {"A": ["hello from B", "last from B"],
                                         "B": ["hello from A", "third, from A"]})
        self.assertEqual(r["history"]["A"], [1, 2, 3, 4])

    def test_3_unread_count_and_read_receipt(self):
        u = self.users("A", "B")
        r = self.scenario("unread", u, n=5)
        self.assertEqual(r["receipt"], 5)
        self.assertEqual((r["server"]["maxSeq"], r["server"]["hasReadSeq"]), (6, 6))

    def test_4_revoke_reaches_receiver(self):
        r = self.scenario("revoke", self.users("A", "B"))
        self.assertEqual(r["revoked"]["seq"], 1)

    def test_5_history_paging_after_fresh_login(self):
        u = self.users("A", "B")
        sent = self.scenario("history", u, phase="send", n=30)
        self.assertEqual(len(sent["ids"]), 30)
        r = self.scenario("history", u, phase="read", n=30, page=10, ids=sent["ids"])
        for n in ("A", "B"):
            self.assertEqual([len(p) for p in r[n]["pages"]], [10, 10, 10, 0])

    def test_6_group_of_three(self):
        r = self.scenario("group", self.users("A", "B", "C"))
        self.assertTrue(r["groupID"])

    # create_group emits 1501 GroupCreated: pushed in n_<group> and stored as the first tip of
    # sg_<group> (§11, §13 E21), so the group's history starts with it at seq 1.
    def test_6b_group_created_tip_in_history(self):
        r = self.scenario("group", self.users("A", "B", "C"))
        self.assertIn([1, 1501], r["other"])

    # The 1501 tips carry the join-group log's empty-document version; the incremental answer
    # from it lists the new group as an insert, so the SDK fires OnJoinedGroupAdded (§7.3).
    def test_6c_members_get_joined_group_event(self):
        self.scenario("group", self.users("A", "B", "C"), joinedEvent=True)

    def test_7a_offline_receiver_finds_messages_after_login(self):
        r = self.scenario("offline", self.users("A", "B"))
        self.assertEqual(r["unread"], 4)

    def test_7b_reconnect_pulls_missed_messages(self):
        r = self.scenario("reconnect", self.users("A", "B"), sdkBuild="modern")
        self.assertEqual(r["caughtUp"], [2, 3, 4])

    def test_8_second_login_same_platform_kicks_first(self):
        r = self.scenario("kick", self.users("A"))
        self.assertTrue(r["kicked"])

    def test_8b_force_logout_kicks_client(self):
        r = self.scenario("kick", self.users("A"), forceLogout=True)
        self.assertTrue(r["forceLogout"])

    def test_9_backend_send_msg_reaches_online_client(self):
        u = self.users("A", "S")
        r = self.scenario("backend", u)
        self.assertEqual(r["conv"], "si_" + "_".join(sorted([u["A"]["userID"], u["S"]["userID"]])))

    # Beyond the list: §13 B5 / §4.6. Takes 30 s (the SDK pings every 10 s).
    def test_10_heartbeat_keeps_connection_past_read_deadline(self):
        r = self.scenario("heartbeat", self.users("A", "B"))
        self.assertEqual(r["pongs"], 3)

    # Friends (§8.1, §8.4): application, acceptance and blacklist events, and 1302 on a send.
    def test_11_friend_application_accept_and_black(self):
        r = self.scenario("friend", self.users("A", "B"))
        self.assertEqual((r["application"], r["accepted"], r["refused"]), ("hello B", 1, 1302))
        self.assertTrue(r["black"])

    # Groups and conversations (§3.4, §8.2-8.4): every setter with the events each client gets,
    # a second device of one user (another platform) syncing the same lists afterwards.
    def test_12_group_and_conversation_setters(self):
        users = self.users("A", "B", "C", "D", "E")
        users["D2"] = {"userID": users["D"]["userID"], "platformID": 2,
                       "token": self.srv.user_token(self.admin, users["D"]["userID"], 2)}
        r = self.scenario("groupmanage", users)
        self.assertTrue(r["groupID"])


if __name__ == "__main__":
    if not NODE or not NPM:
        print("SKIP: node/npm not installed; the real OpenIM JS SDK tests need Node 20 and npm")
        sys.exit(77)  # meson's "skipped"
    harness.main()
