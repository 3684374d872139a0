"""/user/*: registration in batches, lookups, updates, searches, notification accounts, shapes."""
import harness
from harness import ServerTest


class UserTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ids = ["user%04d" % i for i in range(1000)]
        for k in range(0, 1000, 100):
            env = cls.srv.register(cls.admin, cls.ids[k:k + 100], ex="batch%d" % (k // 100))
            assert env["errCode"] == 0, env
        cls.tok = cls.srv.user_token(cls.admin, "user0001")

    def test_1000_registered_in_order(self):
        env = self.srv.post("/user/get_all_users_uid", {"pagination": {"pageNumber": 1, "showNumber": 5000}},
                            token=self.admin)
        self.assertCode(env, 0)
        ids = env["data"]["userIDs"]
        self.assertEqual(env["data"]["total"], len(ids))
        self.assertEqual([i for i in ids if i.startswith("user")], self.ids)
        self.assertIn("imAdmin", ids)
        env = self.srv.post("/user/get_all_users_uid", {"pagination": {"pageNumber": 3, "showNumber": 10}},
                            token=self.tok)
        self.assertEqual(env["data"]["userIDs"], ids[20:30])

    def test_registering_an_existing_user_is_1102_and_changes_nothing(self):
        before = self.srv.post("/user/get_all_users_uid", {}, token=self.admin)["data"]["total"]
        env = self.srv.register(self.admin, ["fresh-1", "user0500", "fresh-2"])
        self.assertCode(env, 1102)
        after = self.srv.post("/user/get_all_users_uid", {}, token=self.admin)["data"]["total"]
        self.assertEqual(before, after)
        env = self.srv.post("/user/get_users_info", {"userIDs": ["fresh-1", "fresh-2"]}, token=self.tok)
        self.assertIsNone(env["data"]["usersInfo"])

    def test_register_validation(self):
        self.assertCode(self.srv.post("/user/user_register", {"users": []}, token=self.admin), 1001)
        self.assertCode(self.srv.register(self.admin, ["dup-x", "dup-x"]), 1001)
        self.assertCode(self.srv.register(self.admin, [""]), 1001)
        self.assertCode(self.srv.register(self.admin, ["a:b"]), 1001)
        self.assertCode(self.srv.post("/user/user_register", {"users": [{"userID": "zz"}]},
                                      token=self.tok), 1002)

    def test_get_users_info_exact_shape(self):
        env = self.srv.post("/user/get_users_info", {"userIDs": ["user0007", "nope", "user0007"]},
                            token=self.tok)
        self.assertCode(env, 0)
        self.assertEqual(list(env.keys()), ["errCode", "errMsg", "errDlt", "data"])
        infos = env["data"]["usersInfo"]
        self.assertEqual(len(infos), 1)
        u = infos[0]
        self.assertEqual(list(u.keys()), ["userID", "nickname", "faceURL", "ex", "createTime",
                                          "appMangerLevel", "globalRecvMsgOpt"])
        self.assertEqual(u["userID"], "user0007")
        self.assertEqual(u["nickname"], "n-user0007")
        self.assertEqual(u["ex"], "batch0")
        self.assertGreater(u["createTime"], 1_600_000_000_000)
        self.assertCode(self.srv.post("/user/get_users_info", {"userIDs": []}, token=self.tok), 1001)

    def test_account_check(self):
        env = self.srv.post("/user/account_check", {"checkUserIDs": ["user0002", "ghost"]},
                            token=self.admin)
        self.assertCode(env, 0)
        self.assertEqual(env["data"]["results"], [{"userID": "user0002", "accountStatus": 1},
                                                  {"userID": "ghost", "accountStatus": 0}])
        self.assertCode(self.srv.post("/user/account_check", {"checkUserIDs": ["a"]}, token=self.tok), 1002)

    def test_update_user_info_and_ex(self):
        tok = self.srv.user_token(self.admin, "user0100")
        env = self.srv.post("/user/update_user_info",
                            {"userInfo": {"userID": "user0100", "nickname": "Hundred", "faceURL": ""}},
                            token=tok)
        self.assertCode(env, 0)
        self.assertNotIn("data", env)
        u = self.srv.post("/user/get_users_info", {"userIDs": ["user0100"]}, token=tok)["data"]["usersInfo"][0]
        self.assertEqual(u["nickname"], "Hundred")
        self.assertEqual(u["ex"], "batch1")  # empty fields are left alone
        # _ex: a present empty string does apply.
        env = self.srv.post("/user/update_user_info_ex",
                            {"userInfo": {"userID": "user0100", "ex": "", "faceURL": "http://f"}}, token=tok)
        self.assertCode(env, 0)
        u = self.srv.post("/user/get_users_info", {"userIDs": ["user0100"]}, token=tok)["data"]["usersInfo"][0]
        self.assertEqual((u["nickname"], u["ex"], u["faceURL"]), ("Hundred", "", "http://f"))
        # Someone else's profile: 1002; unknown user (admin): 1004.
        self.assertCode(self.srv.post("/user/update_user_info",
                                      {"userInfo": {"userID": "user0101", "nickname": "x"}}, token=tok), 1002)
        self.assertCode(self.srv.post("/user/update_user_info",
                                      {"userInfo": {"userID": "ghost", "nickname": "x"}}, token=self.admin), 1004)
        self.assertCode(self.srv.post("/user/update_user_info", {}, token=tok), 1001)

    def test_set_global_msg_recv_opt(self):
        tok = self.srv.user_token(self.admin, "user0200")
        self.assertCode(self.srv.post("/user/set_global_msg_recv_opt",
                                      {"userID": "user0200", "globalRecvMsgOpt": 2}, token=tok), 0)
        u = self.srv.post("/user/get_users_info", {"userIDs": ["user0200"]}, token=tok)["data"]["usersInfo"][0]
        self.assertEqual(u["globalRecvMsgOpt"], 2)
        self.assertCode(self.srv.post("/user/set_global_msg_recv_opt",
                                      {"userID": "user0200", "globalRecvMsgOpt": 7}, token=tok), 1001)

    def test_get_users_search(self):
        env = self.srv.post("/user/get_users", {"pagination": {"pageNumber": 1, "showNumber": 3},
                                                "userID": "user09"}, token=self.tok)
        self.assertCode(env, 0)
        self.assertEqual(env["data"]["total"], 100)
        self.assertEqual([u["userID"] for u in env["data"]["users"]], ["user0900", "user0901", "user0902"])
        env = self.srv.post("/user/get_users", {"pagination": {"pageNumber": 1, "showNumber": 3},
                                                "userID": "no-such"}, token=self.tok)
        self.assertEqual(env["data"], {"total": 0, "users": None})

    def test_online_status_shapes_everyone_offline(self):
        env = self.srv.post("/user/get_users_online_status", {"userIDs": ["user0001", "ghost"]},
                            token=self.admin)
        self.assertCode(env, 0)
        self.assertEqual(env["data"], [
            {"userID": "user0001", "status": 0, "detailPlatformStatus": None},
            {"userID": "ghost", "status": 0, "detailPlatformStatus": None}])
        self.assertCode(self.srv.post("/user/get_users_online_status", {"userIDs": ["a"]}, token=self.tok), 1002)
        env = self.srv.post("/user/get_users_status", {"userID": "user0001", "userIDs": ["user0002"]},
                            token=self.tok)
        self.assertEqual(env["data"]["statusList"], [{"userID": "user0002", "status": 0, "platformIDs": None}])

    def test_notification_accounts(self):
        env = self.srv.post("/user/add_notification_account",
                            {"nickName": "System", "faceURL": "http://s", "appMangerLevel": 3}, token=self.admin)
        self.assertCode(env, 0)
        d = env["data"]
        self.assertEqual((d["nickName"], d["faceURL"], d["appMangerLevel"]), ("System", "http://s", 3))
        self.assertEqual(len(d["userID"]), 10)
        self.assertTrue(d["userID"].isdigit())
        self.assertCode(self.srv.post("/user/add_notification_account",
                                      {"userID": "robot1", "nickName": "Bot", "appMangerLevel": 4},
                                      token=self.admin), 0)
        self.assertCode(self.srv.post("/user/add_notification_account",
                                      {"userID": "robot2", "nickName": "Bad", "appMangerLevel": 1},
                                      token=self.admin), 1001)
        self.assertCode(self.srv.post("/user/update_notification_account",
                                      {"userID": "robot1", "nickName": "Robot", "faceURL": ""},
                                      token=self.admin), 0)
        self.assertCode(self.srv.post("/user/update_notification_account",
                                      {"userID": "user0001", "nickName": "x"}, token=self.admin), 1004)
        env = self.srv.post("/user/search_notification_account",
                            {"keyword": "Robot", "pagination": {"pageNumber": 1, "showNumber": 10}},
                            token=self.admin)
        self.assertEqual(env["data"], {"total": 1, "notificationAccounts": [
            {"userID": "robot1", "faceURL": "", "nickName": "Robot", "appMangerLevel": 4}]})
        # Notification accounts cannot log in.
        self.assertCode(self.srv.post("/auth/get_user_token", {"platformID": 5, "userID": "robot1"},
                                      token=self.admin), 1001)

    def test_user_commands(self):
        tok = self.srv.user_token(self.admin, "user0300")
        add = lambda t, u, v: self.srv.post("/user/process_user_command_add",
                                            {"userID": "user0300", "type": t, "uuid": u, "value": v}, token=tok)
        self.assertCode(add(2, "b", "vb"), 0)
        self.assertCode(add(1, "a", "va"), 0)
        self.assertCode(add(2, "a", "va2"), 0)
        self.assertCode(add(2, "a", "again"), 1003)
        env = self.srv.post("/user/process_user_command_get", {"userID": "user0300", "type": 2}, token=tok)
        self.assertCode(env, 0)
        got = env["data"]["CommandResp"]
        self.assertEqual([(c["uuid"], c["value"]) for c in got], [("a", "va2"), ("b", "vb")])
        self.assertEqual(list(got[0].keys()), ["type", "createTime", "uuid", "value", "ex"])
        self.assertCode(self.srv.post("/user/process_user_command_update",
                                      {"userID": "user0300", "type": 2, "uuid": "b", "ex": "E"}, token=tok), 0)
        self.assertCode(self.srv.post("/user/process_user_command_update",
                                      {"userID": "user0300", "type": 9, "uuid": "b", "ex": "E"}, token=tok), 1004)
        self.assertCode(self.srv.post("/user/process_user_command_delete",
                                      {"userID": "user0300", "type": 1, "uuid": "a"}, token=tok), 0)
        env = self.srv.post("/user/process_user_command_get_all", {"userID": "user0300"}, token=tok)
        self.assertEqual([(c["type"], c["uuid"], c["value"], c["ex"]) for c in env["data"]["CommandResp"]],
                         [(2, "a", "va2", ""), (2, "b", "vb", "E")])
        self.assertCode(self.srv.post("/user/process_user_command_get_all", {"userID": "user0301"}, token=tok), 1002)
        env = self.srv.post("/user/process_user_command_get_all", {"userID": "user0301"}, token=self.admin)
        self.assertIsNone(env["data"]["CommandResp"])


if __name__ == "__main__":
    harness.main()
