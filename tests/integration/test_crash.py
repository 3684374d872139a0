"""kill -9 during a registration stream: every acknowledged registration survives, once; kicks survive."""
import http.client
import json
import os
import random
import subprocess
import threading
import unittest

import harness
from harness import IMLOG_BIN, Server


class Writer(threading.Thread):
    """Registers users one request at a time and records the acknowledged ones."""

    def __init__(self, port, admin, prefix, acked, cond):
        super().__init__(daemon=True)
        self.port, self.admin, self.prefix = port, admin, prefix
        self.acked, self.cond = acked, cond

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        try:
            while True:
                uid = "%s-%d" % (self.prefix, i)
                body = json.dumps({"users": [{"userID": uid, "nickname": uid}]})
                conn.request("POST", "/user/user_register", body,
                             {"operationID": "crash", "token": self.admin})
                env = json.loads(conn.getresponse().read())
                if env["errCode"] != 0:
                    raise AssertionError(env)
                with self.cond:
                    self.acked.append(uid)
                    self.cond.notify_all()
                i += 1
        except (OSError, http.client.HTTPException, ValueError):
            return  # the server was killed


class CrashTest(unittest.TestCase):
    def test_kill9_during_registration_stream(self):
        seed = int(os.environ.get("IMLOG_SEED", random.randrange(1 << 30)))
        print("seed", seed)
        rnd = random.Random(seed)
        secret = "crash-secret"
        srv = Server(secret=secret).start()
        data_dir = srv.data_dir
        try:
            admin = srv.admin_token()
            self.assertEqual(srv.register(admin, ["victim"])["errCode"], 0)
            kicked = srv.user_token(admin, "victim", platform=5)
            self.assertEqual(srv.post("/auth/force_logout", {"platformID": 5, "userID": "victim"},
                                      token=admin)["errCode"], 0)
            all_acked = []
            for rnd_no in range(3):
                acked, cond = [], threading.Condition()
                writers = [Writer(srv.api_port, admin, "r%dw%d" % (rnd_no, w), acked, cond)
                           for w in range(4)]
                for w in writers:
                    w.start()
                target = rnd.randrange(50, 400)
                with cond:
                    ok = cond.wait_for(lambda: len(acked) >= target, timeout=120)
                self.assertTrue(ok, "writers stalled: " + srv.log_tail())
                srv.kill9()
                for w in writers:
                    w.join(timeout=60)
                with cond:
                    all_acked += acked
                srv.proc.stdout.close()
                srv = Server(data_dir=data_dir, secret=secret).start()
                admin = srv.admin_token()
                # Every acknowledged registration is there.
                for k in range(0, len(all_acked), 500):
                    chunk = all_acked[k:k + 500]
                    env = srv.post("/user/get_users_info", {"userIDs": chunk}, token=admin)
                    got = {u["userID"] for u in (env["data"]["usersInfo"] or [])}
                    self.assertEqual(set(chunk) - got, set(), "lost after kill -9 (seed %d)" % seed)
                # Exactly once: the registration-order index has no duplicates and matches the total.
                env = srv.post("/user/get_all_users_uid", {}, token=admin)
                ids = env["data"]["userIDs"]
                self.assertEqual(len(ids), len(set(ids)))
                self.assertEqual(env["data"]["total"], len(ids))
                # The kicked token is still kicked.
                env = srv.post("/auth/parse_token", {"token": kicked})
                self.assertEqual(env["errCode"], 1506, env)
            self.assertEqual(srv.stop(), 0)
            out = subprocess.run([IMLOG_BIN, "check", data_dir], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("ok: 0 problems", out.stdout)
        finally:
            srv.cleanup()
            import shutil
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    harness.main()
