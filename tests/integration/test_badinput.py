"""Bad input: each gets its OpenIM code, changes nothing, and the server keeps serving."""
import socket
import time

import harness
from harness import ServerTest, make_jwt


class BadInputTest(ServerTest):
    server_args = ("--max-body-bytes", "65536")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        assert cls.srv.register(cls.admin, ["carol"])["errCode"] == 0

    def tearDown(self):
        # Whatever the test sent, the server still serves and stored nothing new.
        self.assertServing()
        env = self.srv.post("/user/get_all_users_uid", {}, token=self.admin)
        self.assertCode(env, 0)
        self.assertEqual(sorted(env["data"]["userIDs"]), ["carol", "imAdmin"])

    def test_missing_operation_id(self):
        env = self.srv.post("/user/get_users_info", {"userIDs": ["carol"]}, token=self.admin, op_id=None)
        self.assertCode(env, 1001)
        self.assertIn("operationID", env["errDlt"])

    def test_missing_token(self):
        env = self.srv.post("/user/get_users_info", {"userIDs": ["carol"]})
        self.assertCode(env, 1001)
        self.assertIn("token", env["errDlt"])

    def test_truncated_and_malformed_json(self):
        for raw in [b'{"users":[{"userID":"x1"', b"", b"{", b"not json", b'{"users":[}]}', b"[1,2]",
                    b'{"users":[{"userID":"x2"}]} trailing', b"\xff\xfe"]:
            env = self.srv.post("/user/user_register", None, token=self.admin, raw_body=raw)
            self.assertCode(env, 1001, raw)

    def test_wrong_types(self):
        bodies = [{"users": "x"}, {"users": [{"userID": 5}]}, {"users": [{"userID": "x3", "appMangerLevel": "1"}]},
                  {"users": [{"userID": "x4", "globalRecvMsgOpt": 1.5}]}, {"users": [7]},
                  {"users": [{"userID": "x5", "createTime": "yesterday", "ex": {}}]}]
        for body in bodies:
            env = self.srv.post("/user/user_register", body, token=self.admin)
            self.assertCode(env, 1001, body)
        env = self.srv.post("/auth/get_user_token", {"platformID": 99999999999, "userID": "carol"},
                            token=self.admin)
        self.assertCode(env, 1001)

    def test_unknown_fields_are_ignored(self):
        env = self.srv.post("/user/get_users_info", {"userIDs": ["carol"], "surprise": {"a": [1]}},
                            token=self.admin)
        self.assertCode(env, 0)
        # Keys match case-insensitively, as Go's encoding/json does.
        env = self.srv.post("/user/get_users_info", {"USERIDS": ["carol"]}, token=self.admin)
        self.assertEqual(env["data"]["usersInfo"][0]["userID"], "carol")

    def test_body_over_the_limit(self):
        big = {"users": [{"userID": "big", "ex": "x" * 70000}]}
        env = self.srv.post("/user/user_register", big, token=self.admin)
        self.assertCode(env, 1001)

    def test_bad_tokens(self):
        now = int(time.time())
        s = self.secret
        good = {"UserID": "carol", "PlatformID": 5, "exp": now + 600, "iat": now - 5}
        cases = [
            (make_jwt(dict(good, exp=now - 60), s), 1501),                       # expired
            (make_jwt(dict(good, nbf=now + 600), s), 1504),                      # not yet valid
            (make_jwt(good, s)[:-4] + "AAAA", 1505),                             # forged signature
            (make_jwt(good, s, header={"alg": "none", "typ": "JWT"}, sign=False), 1505),  # alg none
            (make_jwt(good, "openIM123"), 1505),                                 # foreign secret
            (make_jwt(dict(good, exp=now - 60), "other"), 1505),                 # signature first (golang-jwt 4.5.1)
            ("abc.def", 1503),                                                   # malformed
            ("a.b.c", 1503),
            ("", 1001),                                                          # empty header: missing
        ]
        for tok, code in cases:
            env = self.srv.post("/user/get_users_info", {"userIDs": ["carol"]}, token=tok)
            self.assertCode(env, code, tok)
            if code != 1001:
                self.assertCode(self.srv.post("/auth/parse_token", {"token": tok}), code, tok)

    def test_user_token_on_admin_endpoints(self):
        tok = self.srv.user_token(self.admin, "carol")
        for path, body in [("/user/user_register", {"users": [{"userID": "evil"}]}),
                           ("/auth/get_user_token", {"platformID": 5, "userID": "carol"}),
                           ("/auth/force_logout", {"platformID": 5, "userID": "carol"}),
                           ("/user/account_check", {"checkUserIDs": ["carol"]}),
                           ("/user/add_notification_account", {"nickName": "x", "appMangerLevel": 3})]:
            self.assertCode(self.srv.post(path, body, token=tok), 1002, path)

    def test_routes_and_cors(self):
        status, headers, body = self.srv.raw("OPTIONS", "/user/get_users_info",
                                             headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"})
        self.assertEqual(status, 200)
        self.assertEqual(body, b"Options Request!")
        self.assertEqual(headers["Access-Control-Allow-Origin"], "*")
        self.assertEqual(headers["Access-Control-Max-Age"], "172800")
        status, _, _ = self.srv.raw("POST", "/no/such/route", b"{}", {"operationID": "x"})
        self.assertEqual(status, 404)
        status, _, _ = self.srv.raw("GET", "/user/get_users_info")
        self.assertEqual(status, 404)

    def test_garbage_bytes_on_the_socket(self):
        for junk in [b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"POST /user/get_users_info HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"POST /x HTTP/1.1\r\n" + b"X-Long: " + b"a" * 40000 + b"\r\n\r\n"]:
            with socket.create_connection(("127.0.0.1", self.srv.api_port), timeout=10) as c:
                c.sendall(junk)
                c.shutdown(socket.SHUT_WR)
                data = b""
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.startswith(b"HTTP/1.1 4"), data[:80])

    def test_pipelined_requests_answer_in_order(self):
        req = lambda uid: (b"POST /user/get_users_info HTTP/1.1\r\nHost: x\r\noperationID: p\r\ntoken: "
                           + self.admin.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(uid) + uid)
        bodies = [b'{"userIDs":["carol"]}', b'{"userIDs":["imAdmin"]}', b'{"bad json', b'{"userIDs":["carol"]}']
        with socket.create_connection(("127.0.0.1", self.srv.api_port), timeout=10) as c:
            c.sendall(b"".join(req(b) for b in bodies))
            data = b""
            while data.count(b"HTTP/1.1 200") < 4:
                chunk = c.recv(65536)
                self.assertTrue(chunk, data)
                data += chunk
        parts = data.split(b"HTTP/1.1 200")[1:]
        self.assertIn(b'"userID":"carol"', parts[0])
        self.assertIn(b'"userID":"imAdmin"', parts[1])
        self.assertIn(b'"errCode":1001', parts[2])
        self.assertIn(b'"userID":"carol"', parts[3])


if __name__ == "__main__":
    harness.main()
