#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/fuzz_http.c: raw HTTP requests with tokens valid for its fixed clock."""
import base64, hashlib, hmac, json, os, sys

SECRET = b"fuzz-secret"
NOW = 1800000000  # FUZZ_NOW_MS / 1000


def b64(d):
    return base64.urlsafe_b64encode(d).rstrip(b"=")


def jwt(uid, pid):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    # Keys sorted as the server writes them: a user token is only accepted if it is the one
    # /auth/get_user_token issued (byte for byte).
    c = b64(json.dumps({"UserID": uid, "PlatformID": pid, "exp": NOW + 90 * 86400, "iat": NOW - 5},
                       separators=(",", ":"), sort_keys=True).encode())
    s = b64(hmac.new(SECRET, h + b"." + c, hashlib.sha256).digest())
    return (h + b"." + c + b"." + s).decode()


ADMIN = jwt("imAdmin", 10)


def req(path, body, token=ADMIN, method="POST", extra=""):
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    t = f"token: {token}\r\n" if token else ""
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\noperationID: op1\r\n{t}{extra}"
            f"Content-Length: {len(b)}\r\n\r\n").encode() + b


seeds = {
    "admin_token": req("/auth/get_admin_token", {"secret": "fuzz-secret", "userID": "imAdmin"}, token=None),
    "register": req("/user/user_register", {"users": [{"userID": "u2", "nickname": "two"}]}),
    "users_info": req("/user/get_users_info", {"userIDs": ["u1", "imAdmin"]}),
    "user_token_then_use": req("/auth/get_user_token", {"platformID": 5, "userID": "u1"})
        + req("/user/update_user_info_ex", {"userInfo": {"userID": "u1", "nickname": "x"}}, token=jwt("u1", 5)),
    "force_logout": req("/auth/force_logout", {"platformID": 5, "userID": "u1"}),
    "parse_token": req("/auth/parse_token", {"token": ADMIN}, token=None),
    "all_uid": req("/user/get_all_users_uid", {"pagination": {"pageNumber": 1, "showNumber": 10}}),
    "get_users": req("/user/get_users", {"pagination": {"pageNumber": 1, "showNumber": 10}, "userID": "u"}),
    "account_check": req("/user/account_check", {"checkUserIDs": ["u1", "zz"]}),
    "notif": req("/user/add_notification_account", {"nickName": "n", "appMangerLevel": 3}),
    "search_notif": req("/user/search_notification_account", {"keyword": "n"}),
    "ucmd": req("/user/process_user_command_add", {"userID": "u1", "type": 1, "uuid": "a", "value": "v"})
        + req("/user/process_user_command_get_all", {"userID": "u1"}),
    "online": req("/user/get_users_online_status", {"userIDs": ["u1"]}),
    "options": b"OPTIONS /user/get_users_info HTTP/1.1\r\nHost: x\r\n\r\n",
    "healthz": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "chunked": (b"POST /user/get_users_info HTTP/1.1\r\nHost: x\r\noperationID: o\r\ntoken: " + ADMIN.encode()
                + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"use\r\n10\r\nrIDs\":[\"u1\"]}   \r\n0\r\n\r\n"),
    "bad_json": req("/user/user_register", b'{"users":[{"userID":'),
    "wrong_types": req("/user/user_register", {"users": [{"userID": 5}]}),
    "no_opid": b"POST /user/get_users_info HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    "bad_token": req("/user/get_users_info", {"userIDs": ["u1"]}, token="a.b.c"),
    "garbage": b"\x00\x01GET /\r\n\r\n",
    "http10": b"POST /user/get_users_info HTTP/1.0\r\nConnection: keep-alive\r\noperationID: o\r\ntoken: "
              + ADMIN.encode() + b"\r\nContent-Length: 15\r\n\r\n{\"userIDs\":[1]}",
    # Messaging, conversations and groups (each input is self-contained: it registers its users).
    "send_msg": req("/user/user_register", {"users": [{"userID": "ma", "nickname": "a"}, {"userID": "mb", "nickname": "b"}]})
        + req("/msg/send_msg", {"sendID": "ma", "recvID": "mb", "content": {"content": "hi"}, "contentType": 101,
                                "sessionType": 1, "senderNickname": "a", "ex": "e", "sendTime": 0}),
    "msg_read_revoke_delete": req("/user/user_register", {"users": [{"userID": "ma"}, {"userID": "mb"}]})
        + req("/msg/send_msg", {"sendID": "ma", "recvID": "mb", "content": {"content": "1"}, "contentType": 101,
                                "sessionType": 1})
        + req("/msg/send_msg", {"sendID": "ma", "recvID": "mb", "content": {"content": "2"}, "contentType": 101,
                                "sessionType": 1})
        + req("/msg/mark_conversation_as_read", {"userID": "mb", "conversationID": "si_ma_mb", "hasReadSeq": 1,
                                                 "seqs": [1]})
        + req("/msg/revoke_msg", {"userID": "ma", "conversationID": "si_ma_mb", "seq": 2})
        + req("/msg/delete_msgs", {"userID": "mb", "conversationID": "si_ma_mb", "seqs": [1, 2]}),
    "set_conversations": req("/conversation/set_conversations", {"userIDs": ["u1"], "conversation": {
        "conversationID": "si_imAdmin_u1", "conversationType": 1, "userID": "imAdmin", "isPinned": True,
        "recvMsgOpt": 2, "ex": "e", "attachedInfo": "a", "burnDuration": 30, "isPrivateChat": True}}),
    "create_group": req("/user/user_register", {"users": [{"userID": "ga"}, {"userID": "gb"}]})
        + req("/group/create_group", {"ownerUserID": "ga", "memberUserIDs": ["u1"], "adminUserIDs": ["gb"],
                                      "groupInfo": {"groupID": "g1", "groupName": "g", "groupType": 2,
                                                    "notification": "n", "ex": "x"}})
        + req("/msg/send_msg", {"sendID": "ga", "groupID": "g1", "content": {"content": "hey"}, "contentType": 101,
                                "sessionType": 3}),
    "group_members_batch": req("/group/create_group", {"ownerUserID": "u1", "memberUserIDs": [],
                                                       "groupInfo": {"groupID": "g2", "groupType": 2}})
        + req("/group/get_incremental_group_members_batch", {"userID": "imAdmin", "reqList": [
        {"groupID": "g2", "versionID": "", "version": 0}, {"groupID": "nope"}]}),
    "group_manage": req("/user/user_register", {"users": [{"userID": "ga"}, {"userID": "gb"}, {"userID": "gc"}]})
        + req("/group/create_group", {"ownerUserID": "ga", "memberUserIDs": ["gc"], "adminUserIDs": ["gb"],
                                      "groupInfo": {"groupID": "g3", "groupName": "g", "groupType": 2}})
        + req("/group/set_group_info_ex", {"groupID": "g3", "groupName": "n", "notification": "a",
                                           "needVerification": 1, "ex": "x"})
        + req("/group/set_group_info", {"groupInfoForSet": {"groupID": "g3", "introduction": "i"}})
        + req("/group/mute_group_member", {"groupID": "g3", "userID": "gc", "mutedSeconds": 60})
        + req("/group/cancel_mute_group_member", {"groupID": "g3", "userID": "gc"})
        + req("/group/mute_group", {"groupID": "g3"}) + req("/group/cancel_mute_group", {"groupID": "g3"})
        + req("/group/set_group_member_info", {"members": [{"groupID": "g3", "userID": "gc", "nickname": "c",
                                                            "roleLevel": 60}]})
        + req("/group/transfer_group", {"groupID": "g3", "oldOwnerUserID": "ga", "newOwnerUserID": "gb"})
        + req("/group/get_group_abstract_info", {"groupIDs": ["g3"]})
        + req("/group/get_groups", {"groupName": "n", "pagination": {"pageNumber": 1, "showNumber": 5}})
        + req("/group/dismiss_group", {"groupID": "g3", "deleteMember": True}),
    "group_join": req("/user/user_register", {"users": [{"userID": "ja"}, {"userID": "jb"}]})
        + req("/group/create_group", {"ownerUserID": "ja", "memberUserIDs": [],
                                      "groupInfo": {"groupID": "g4", "groupType": 2}})
        + req("/group/join_group", {"groupID": "g4", "reqMessage": "r", "joinSource": 3, "inviterUserID": "jb"})
        + req("/group/get_recv_group_applicationList", {"fromUserID": "ja",
                                                        "pagination": {"pageNumber": 1, "showNumber": 5}})
        + req("/group/group_application_response", {"groupID": "g4", "fromUserID": "jb", "handledMsg": "ok",
                                                    "handleResult": 1})
        + req("/group/get_specified_user_group_request_info", {"groupID": "g4", "userID": "jb"})
        + req("/group/get_incremental_group_members", {"groupID": "g4", "versionID": "", "version": 0}),
    "jssdk_active_pb": req("/msg/send_msg", {"sendID": "imAdmin", "recvID": "u1", "content": {"content": "a"},
                                              "contentType": 101, "sessionType": 1})
        + req("/jssdk/get_active_conversations", b"\x0a\x07imAdmin\x10\x0a",
                           extra="Content-Type: application/x-protobuf\r\n"),
    "jssdk_convs_pb": req("/auth/get_user_token", {"platformID": 5, "userID": "u1"})
        + req("/msg/send_msg", {"sendID": "imAdmin", "recvID": "u1", "content": {"content": "b"},
                                "contentType": 101, "sessionType": 1})
        + req("/jssdk/get_conversations", b"\x0a\x02u1\x12\x0dsi_imAdmin_u1",
                          token=jwt("u1", 5), extra="Content-Type: application/x-protobuf\r\n"),
}
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "fuzz_http")
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
