"""The REST side of messaging: /msg/* and /conversation/* against messages sent through the API."""
import time

import harness
from harness import ServerTest


class MsgRestTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        assert cls.srv.register(cls.admin, ["ra", "rb", "rc", "ba", "bb", "bc"])["errCode"] == 0
        cls.ta = cls.srv.user_token(cls.admin, "ra")
        cls.tb = cls.srv.user_token(cls.admin, "rb")

    def send(self, sender, recv, text, **extra):
        body = dict({"sendID": sender, "recvID": recv, "content": {"content": text},
                     "contentType": 101, "sessionType": 1}, **extra)
        env = self.srv.post("/msg/send_msg", body, token=self.admin)
        self.assertCode(env, 0)
        return env["data"]

    def seqs(self, tok, user, conv):
        env = self.srv.post("/msg/get_conversations_has_read_and_max_seq",
                            {"userID": user, "conversationIDs": [conv]}, token=tok)
        self.assertCode(env, 0)
        return env["data"]["seqs"].get(conv)

    def test_send_msg_shape_and_seqs(self):
        d = self.send("ra", "rb", "one")
        self.assertEqual(list(d.keys()), ["serverMsgID", "clientMsgID", "sendTime", "modify"])
        self.assertEqual(len(d["serverMsgID"]), 32)
        self.assertIsNone(d["modify"])
        self.assertAlmostEqual(d["sendTime"], time.time() * 1000, delta=60000)
        self.send("ra", "rb", "two")
        s = self.seqs(self.tb, "rb", "si_ra_rb")
        self.assertGreaterEqual(s["maxSeq"], 2)
        # The sender's hasReadSeq follows its own messages (§6.5).
        self.assertEqual(self.seqs(self.ta, "ra", "si_ra_rb")["hasReadSeq"],
                         self.seqs(self.ta, "ra", "si_ra_rb")["maxSeq"])
        self.assertCode(self.srv.post("/msg/send_msg", {"sendID": "ra", "recvID": "rb", "content": {"content": "x"},
                                                         "contentType": 101, "sessionType": 1}, token=self.ta), 1002)
        self.assertCode(self.srv.post("/msg/send_msg", {"sendID": "ra", "recvID": "rb", "content": {"content": "x"},
                                                         "contentType": 999, "sessionType": 1}, token=self.admin), 1001)
        self.assertCode(self.srv.post("/msg/send_msg", {"sendID": "ra", "recvID": "nobody",
                                                         "content": {"content": "x"}, "contentType": 101,
                                                         "sessionType": 1}, token=self.admin), 1101)

    def test_conversation_rows_and_setters(self):
        assert self.srv.register(self.admin, ["cb", "cc"])["errCode"] == 0
        self.send("cb", "cc", "hello")
        tc = self.srv.user_token(self.admin, "cc")
        env = self.srv.post("/conversation/get_all_conversations", {"ownerUserID": "cc"}, token=tc)
        convs = {c["conversationID"]: c for c in env["data"]["conversations"]}
        self.assertIn("si_cb_cc", convs)
        row = convs["si_cb_cc"]
        self.assertEqual((row["ownerUserID"], row["userID"], row["conversationType"]), ("cc", "cb", 1))
        self.assertEqual(list(row.keys())[:4], ["ownerUserID", "conversationID", "recvMsgOpt", "conversationType"])
        env = self.srv.post("/conversation/set_conversations", {"userIDs": ["cc"], "conversation": {
            "conversationID": "si_cb_cc", "conversationType": 1, "userID": "cb", "isPinned": True,
            "recvMsgOpt": 2, "ex": "e"}}, token=tc)
        self.assertCode(env, 0)
        env = self.srv.post("/conversation/get_conversation", {"ownerUserID": "cc", "conversationID": "si_cb_cc"},
                            token=tc)
        c = env["data"]["conversation"]
        self.assertEqual((c["isPinned"], c["recvMsgOpt"], c["ex"]), (True, 2, "e"))
        env = self.srv.post("/conversation/get_pinned_conversation_ids", {"userID": "cc"}, token=tc)
        self.assertEqual(env["data"]["conversationIDs"], ["si_cb_cc"])
        env = self.srv.post("/conversation/get_not_notify_conversation_ids", {"userID": "cc"}, token=tc)
        self.assertEqual(env["data"]["conversationIDs"], ["si_cb_cc"])
        env = self.srv.post("/conversation/get_sorted_conversation_list",
                            {"userID": "cc", "conversationIDs": [], "pagination": {"pageNumber": 1, "showNumber": 10}},
                            token=tc)
        self.assertCode(env, 0)
        e = env["data"]["conversationElems"][0]
        self.assertEqual((e["conversationID"], e["IsPinned"], e["unreadCount"]), ("si_cb_cc", True, 1))
        self.assertEqual(e["msgInfo"]["content"], '{"content":"hello"}')
        self.assertEqual(env["data"]["unreadTotal"], 1)
        # Someone else's rows: 1002.
        self.assertCode(self.srv.post("/conversation/get_all_conversations", {"ownerUserID": "cc"},
                                      token=self.ta), 1002)

    def test_mark_read_revoke_delete_clear(self):
        assert self.srv.register(self.admin, ["ma", "mc"])["errCode"] == 0
        self.ta = self.srv.user_token(self.admin, "ma")
        for i in range(3):
            self.send("ma", "mc", "m%d" % i)
        tc = self.srv.user_token(self.admin, "mc")
        s = self.seqs(tc, "mc", "si_ma_mc")
        self.assertEqual((s["maxSeq"], s["hasReadSeq"]), (3, 0))
        env = self.srv.post("/msg/mark_conversation_as_read",
                            {"userID": "mc", "conversationID": "si_ma_mc", "hasReadSeq": 2, "seqs": []}, token=tc)
        self.assertCode(env, 0)
        self.assertEqual(self.seqs(tc, "mc", "si_ma_mc")["hasReadSeq"], 2)
        # The receipt went to the n_ stream of the pair (§6.8).
        env = self.srv.post("/msg/newest_seq", {"userID": "ma"}, token=self.ta)
        self.assertGreaterEqual(env["data"]["maxSeqs"].get("n_ma_mc", 0), 1)
        # Never lowered.
        self.srv.post("/msg/mark_conversation_as_read",
                      {"userID": "mc", "conversationID": "si_ma_mc", "hasReadSeq": 1, "seqs": []}, token=tc)
        self.assertEqual(self.seqs(tc, "mc", "si_ma_mc")["hasReadSeq"], 2)
        # Revoke: the sender may, the receiver may not; twice is 1404.
        self.assertCode(self.srv.post("/msg/revoke_msg", {"userID": "mc", "conversationID": "si_ma_mc", "seq": 3},
                                      token=tc), 1002)
        self.assertCode(self.srv.post("/msg/revoke_msg", {"userID": "ma", "conversationID": "si_ma_mc", "seq": 3},
                                      token=self.ta), 0)
        self.assertCode(self.srv.post("/msg/revoke_msg", {"userID": "ma", "conversationID": "si_ma_mc", "seq": 3},
                                      token=self.ta), 1404)
        self.assertCode(self.srv.post("/msg/revoke_msg", {"userID": "ma", "conversationID": "si_ma_mc", "seq": 99},
                                      token=self.ta), 1004)
        # Delete for me, then clear: the window moves past everything.
        self.assertCode(self.srv.post("/msg/delete_msgs", {"userID": "mc", "conversationID": "si_ma_mc", "seqs": [1]},
                                      token=tc), 0)
        self.assertCode(self.srv.post("/msg/clear_conversation_msg",
                                      {"userID": "mc", "conversationIDs": ["si_ma_mc"]}, token=tc), 0)
        env = self.srv.post("/msg/newest_seq", {"userID": "mc"}, token=tc)
        self.assertEqual(env["data"]["minSeqs"]["si_ma_mc"], 4)
        self.assertCode(self.srv.post("/msg/set_conversation_has_read_seq",
                                      {"userID": "mc", "conversationID": "si_ma_mc", "hasReadSeq": 100}, token=tc),
                        1001)
        self.assertCode(self.srv.post("/msg/mark_conversation_as_read",
                                      {"userID": "mc", "conversationID": "si_nope", "hasReadSeq": 1}, token=tc), 1004)

    def test_batch_send_and_server_time(self):
        env = self.srv.post("/msg/batch_send_msg", {"sendID": "ba", "recvIDs": ["bb", "bc", "ghost"],
                                                    "content": {"content": "all"}, "contentType": 101},
                            token=self.admin)
        self.assertCode(env, 0)
        self.assertEqual([r["recvID"] for r in env["data"]["results"]], ["bb", "bc"])
        self.assertEqual(env["data"]["failedUserIDs"], ["ghost"])
        cmids = {r["clientMsgID"] for r in env["data"]["results"]}
        self.assertEqual(len(cmids), 2)
        env = self.srv.post("/msg/get_server_time", {}, token=self.ta)
        self.assertAlmostEqual(env["data"]["serverTime"], time.time() * 1000, delta=60000)

    def test_pull_msg_by_seq_json_and_business_notification(self):
        assert self.srv.register(self.admin, ["pa", "pb"])["errCode"] == 0
        tb = self.srv.user_token(self.admin, "pb")
        for i in range(5):
            self.send("pa", "pb", "p%d" % i)
        env = self.srv.post("/msg/pull_msg_by_seq", {"userID": "pb", "order": 0, "seqRanges": [
            {"conversationID": "si_pa_pb", "begin": 1, "end": 10, "num": 3},
            {"conversationID": "si_zz_pb", "begin": 1, "end": 10, "num": 3}]}, token=tb)
        self.assertCode(env, 0)
        d = env["data"]
        self.assertIsNone(d["notificationMsgs"])
        pm = d["msgs"]["si_pa_pb"]
        self.assertEqual(list(pm.keys()), ["Msgs", "isEnd", "endSeq"])
        self.assertEqual([m["seq"] for m in pm["Msgs"]], [3, 4, 5])  # the last num of the range
        self.assertEqual((pm["isEnd"], pm["endSeq"]), (True, 5))
        m = pm["Msgs"][0]
        self.assertEqual(list(m.keys())[:5], ["sendID", "recvID", "groupID", "clientMsgID", "serverMsgID"])
        import base64
        self.assertEqual(base64.b64decode(m["content"]), b'{"content":"p2"}')
        self.assertEqual((m["msgFrom"], m["contentType"], m["status"]), (200, 101, 2))
        self.assertNotIn("si_zz_pb", d["msgs"])  # no row: skipped
        self.assertCode(self.srv.post("/msg/pull_msg_by_seq", {"userID": "pa", "seqRanges": []}, token=tb), 1002)
        # A business notification lands in the pair's n_ stream with contentType 2001.
        env = self.srv.post("/msg/send_business_notification",
                            {"key": "k1", "data": "{\"x\":1}", "sendUserID": "pa", "recvUserID": "pb"},
                            token=self.admin)
        self.assertCode(env, 0)
        self.assertEqual(len(env["data"]["serverMsgID"]), 32)
        env = self.srv.post("/msg/pull_msg_by_seq", {"userID": "pb", "seqRanges": [
            {"conversationID": "n_pa_pb", "begin": 1, "end": 100, "num": 100}]}, token=tb)
        msgs = env["data"]["notificationMsgs"]["n_pa_pb"]["Msgs"]
        self.assertEqual(msgs[-1]["contentType"], 2001)
        import json as _json
        detail = _json.loads(_json.loads(base64.b64decode(msgs[-1]["content"]))["detail"])
        self.assertEqual(detail, {"key": "k1", "data": "{\"x\":1}"})
        self.assertCode(self.srv.post("/msg/send_business_notification",
                                      {"key": "k", "data": "d", "sendUserID": "pa", "recvUserID": "ghost"},
                                      token=self.admin), 1101)


if __name__ == "__main__":
    harness.main()
