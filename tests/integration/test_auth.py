"""/auth/*: admin and user tokens, parse_token, multi-login kicks, force_logout, the secret."""
import os
import stat
import time

import harness
from harness import Server, ServerTest, make_jwt


class AuthTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.srv.register(cls.admin, ["alice", "bob"])
        assert env["errCode"] == 0, env

    def test_admin_token_with_the_secret(self):
        env = self.srv.post("/auth/get_admin_token", {"secret": self.secret, "userID": "imAdmin"})
        self.assertCode(env, 0)
        self.assertEqual(env["data"]["expireTimeSeconds"], 90 * 86400)
        parsed = self.srv.post("/auth/parse_token", {"token": env["data"]["token"]})
        self.assertCode(parsed, 0)
        self.assertEqual(parsed["data"]["userID"], "imAdmin")
        self.assertEqual(parsed["data"]["platformID"], 10)

    def test_wrong_secret_is_1002(self):
        env = self.srv.post("/auth/get_admin_token", {"secret": "openIM123", "userID": "imAdmin"})
        self.assertCode(env, 1002)
        self.assertEqual(env["errMsg"], "NoPermissionError")
        self.assertNotIn("data", env)

    def test_admin_token_for_a_non_admin_is_1001(self):
        env = self.srv.post("/auth/get_admin_token", {"secret": self.secret, "userID": "alice"})
        self.assertCode(env, 1001)

    def test_user_token_and_parse_token(self):
        tok = self.srv.user_token(self.admin, "alice", platform=3)
        env = self.srv.post("/auth/parse_token", {"token": tok})
        self.assertCode(env, 0)
        self.assertEqual(env["data"]["userID"], "alice")
        self.assertEqual(env["data"]["platformID"], 3)
        exp = env["data"]["expireTimeSeconds"]
        self.assertAlmostEqual(exp, time.time() + 90 * 86400, delta=120)
        # The token works on an endpoint open to any user.
        env = self.srv.post("/user/get_users_info", {"userIDs": ["alice"]}, token=tok)
        self.assertCode(env, 0)

    def test_user_token_rules(self):
        self.assertCode(self.srv.post("/auth/get_user_token", {"platformID": 10, "userID": "alice"},
                                      token=self.admin), 1002)
        self.assertCode(self.srv.post("/auth/get_user_token", {"platformID": 5, "userID": "imAdmin"},
                                      token=self.admin), 1002)
        self.assertCode(self.srv.post("/auth/get_user_token", {"platformID": 5, "userID": "nobody"},
                                      token=self.admin), 1101)
        alice = self.srv.user_token(self.admin, "alice", platform=7)
        self.assertCode(self.srv.post("/auth/get_user_token", {"platformID": 5, "userID": "bob"},
                                      token=alice), 1002)

    def test_same_platform_login_kicks_the_old_token(self):
        old = self.srv.user_token(self.admin, "bob", platform=1)
        other = self.srv.user_token(self.admin, "bob", platform=2)
        new = self.srv.new_user_token(self.admin, "bob", 1, old)
        self.assertNotEqual(new, old)
        self.assertCode(self.srv.post("/auth/parse_token", {"token": old}), 1506)
        self.assertCode(self.srv.post("/user/get_users_info", {"userIDs": ["bob"]}, token=old), 1506)
        self.assertCode(self.srv.post("/auth/parse_token", {"token": new}), 0)
        self.assertCode(self.srv.post("/auth/parse_token", {"token": other}), 0)

    def test_force_logout_kicks_with_1506(self):
        tok = self.srv.user_token(self.admin, "alice", platform=5)
        self.assertCode(self.srv.post("/auth/parse_token", {"token": tok}), 0)
        self.assertCode(self.srv.post("/auth/force_logout", {"platformID": 5, "userID": "alice"},
                                      token=self.admin), 0)
        self.assertCode(self.srv.post("/auth/parse_token", {"token": tok}), 1506)
        self.assertCode(self.srv.post("/user/get_users_info", {"userIDs": ["alice"]}, token=tok), 1506)
        # A user may not force anyone out.
        bob = self.srv.user_token(self.admin, "bob", platform=5)
        self.assertCode(self.srv.post("/auth/force_logout", {"platformID": 5, "userID": "alice"},
                                      token=bob), 1002)

    def test_longest_user_id_gets_a_working_token(self):
        long_id = "L" * 128
        self.assertCode(self.srv.register(self.admin, [long_id]), 0)
        self.assertCode(self.srv.register(self.admin, ["L" * 129]), 1001)
        tok = self.srv.user_token(self.admin, long_id, platform=11)
        env = self.srv.post("/auth/parse_token", {"token": tok})
        self.assertCode(env, 0)
        self.assertEqual(env["data"]["userID"], long_id)

    def test_token_never_issued_is_1507(self):
        forged = make_jwt({"UserID": "alice", "PlatformID": 9, "exp": int(time.time()) + 600,
                           "iat": int(time.time()) - 5}, self.secret)
        self.assertCode(self.srv.post("/auth/parse_token", {"token": forged}), 1507)


class GeneratedSecretTest(ServerTest):
    """No secret configured: generated once, stored 0600, printed once, reused after a restart."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()

    def test_generated_secret(self):
        path = os.path.join(self.srv.data_dir, "secret")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        self.assertEqual(mode, 0o600)
        secret = self.srv.stored_secret()
        self.assertGreaterEqual(len(secret), 32)
        self.assertNotEqual(secret, "openIM123")
        printed = [l for l in self.srv.stdout_lines if secret in l]
        self.assertEqual(len(printed), 1, self.srv.stdout_lines)
        self.assertCode(self.srv.post("/auth/get_admin_token",
                                      {"secret": "openIM123", "userID": "imAdmin"}), 1002)
        tok = self.srv.admin_token(secret=secret)
        # Restart on the same directory: same secret, not printed again, old token still valid.
        self.assertEqual(self.srv.stop(), 0)
        again = Server(data_dir=self.srv.data_dir).start()
        try:
            self.assertEqual(again.stored_secret(), secret)
            self.assertFalse([l for l in again.stdout_lines if secret in l], again.stdout_lines)
            self.assertCode(again.post("/auth/parse_token", {"token": tok}), 0)
            self.assertCode(again.post("/user/get_users_info", {"userIDs": ["imAdmin"]},
                                       token=tok), 0)
        finally:
            again.kill9()
            again.proc.stdout.close()


if __name__ == "__main__":
    harness.main()
