"""Bad input on the WebSocket: the offending connection is closed or answered with §4's code; another
connection of the same users keeps working and nothing stored changes."""
import asyncio
import base64
import json
import os
import struct
import unittest

import harness
from harness import Server
from imws import Client, WSClosed, last, msgdata_text, pb_msg, pb_parse, pull_msgs_map


class WSBadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(secret="ws-bad").start()
        admin = cls.srv.admin_token()
        assert cls.srv.register(admin, ["wa", "wb"])["errCode"] == 0
        cls.tok = {u: cls.srv.user_token(admin, u, platform=3) for u in ("wa", "wb")}
        cls.tok_web = {u: cls.srv.user_token(admin, u, platform=5) for u in ("wa", "wb")}

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 60))

    async def stored(self, client):
        """(maxSeq of si_wa_wb, clientMsgIDs stored) as seen by client."""
        code, data, _ = await client.request(1006, pb_msg((1, client.user_id)))
        self.assertEqual(code, 0)
        seqs = {}
        for entry in pb_parse(data).get(1, []):
            e = pb_parse(entry)
            seqs[last(e, 1).decode()] = last(pb_parse(last(e, 2, b"")), 1, 0)
        n = seqs.get("si_wa_wb", 0)
        if n == 0:
            return 0, []
        req = pb_msg((1, client.user_id)) + pb_msg((2, pb_msg((2, "si_wa_wb")) + b"".join(
            pb_msg((3, s)) for s in range(1, n + 1))))
        code, data, _ = await client.request(1005, req)
        msgs, _, _ = pull_msgs_map(data)
        return n, [m["clientMsgID"] for m in msgs["si_wa_wb"]]

    async def expect_closed(self, client):
        """The server closes the connection: the reader sees EOF/close within the deadline."""
        while True:
            req_id, _, _ = await asyncio.wait_for(client.pushes.get(), 30)
            if req_id is None:
                return

    async def scenario(self, attack):
        # A healthy pair of connections on another platform, and one victim connection.
        wa = await Client("wa", self.tok["wa"], platform=3).connect(self.srv.ws_port)
        wb = await Client("wb", self.tok["wb"], platform=3).connect(self.srv.ws_port)
        code, _, _ = await wa.request(1003, msgdata_text("wa", "wb", client_msg_id=os.urandom(8).hex()))
        self.assertEqual(code, 0)
        before = await self.stored(wb)
        victim = await Client("wa", self.tok_web["wa"], platform=5).connect(self.srv.ws_port)
        await attack(victim)
        await victim.close()
        # The other connections still work and nothing changed.
        self.assertEqual(await self.stored(wb), before)
        cmid = os.urandom(8).hex()
        code, _, _ = await wa.request(1003, msgdata_text("wa", "wb", client_msg_id=cmid))
        self.assertEqual(code, 0)
        n, cmids = await self.stored(wb)
        self.assertEqual(n, before[0] + 1)
        self.assertEqual(cmids[-1], cmid)
        await wa.close()
        await wb.close()

    def test_garbage_binary_frame_closes(self):
        async def attack(v):
            v.send_raw(2, b"\x00\xffnot json at all")
            await self.expect_closed(v)
        self.run_async(self.scenario(attack))

    def test_text_frame_that_is_not_a_ping_closes(self):
        async def attack(v):
            v.send_raw(1, b'{"type":"hello"}')
            await self.expect_closed(v)
        self.run_async(self.scenario(attack))

    def test_text_ping_gets_a_pong_and_stays_open(self):
        async def attack(v):
            v.send_raw(1, b'{"type":"ping"}')
            # The connection stays usable: a request still gets its reply.
            code, _, _ = await v.request(1006, pb_msg((1, "wa")))
            self.assertEqual(code, 0)
        self.run_async(self.scenario(attack))

    def test_wrong_send_id_closes(self):
        async def attack(v):
            env = {"reqIdentifier": 1003, "msgIncr": "x1", "sendID": "wb", "operationID": "o",
                   "data": base64.b64encode(msgdata_text("wb", "wa", client_msg_id="evil")).decode()}
            v.send_raw(2, json.dumps(env).encode())
            await self.expect_closed(v)
        self.run_async(self.scenario(attack))

    def test_msgdata_sender_not_the_connection_user_is_refused(self):
        async def attack(v):
            code, _, _ = await v.request(1003, msgdata_text("wb", "wa", client_msg_id="forged"))
            self.assertEqual(code, 1001)
            # Reads name their user: another user's is refused (1001/1002/1005/1006/1007).
            for req_id, body in [(1001, pb_msg((1, "wb"))), (1006, pb_msg((1, "wb"))),
                                 (1005, pb_msg((1, "wb"))), (1002, pb_msg((1, "wb"))),
                                 (1007, pb_msg((1, "wb")))]:
                code, _, _ = await v.request(req_id, body)
                self.assertEqual(code, 1002, req_id)
        self.run_async(self.scenario(attack))

    def test_unknown_req_identifier_closes(self):
        async def attack(v):
            env = {"reqIdentifier": 4242, "msgIncr": "x2", "sendID": "wa", "operationID": "o", "data": ""}
            v.send_raw(2, json.dumps(env).encode())
            await self.expect_closed(v)
        self.run_async(self.scenario(attack))

    def test_oversized_frame_closes(self):
        async def attack(v):
            env = {"reqIdentifier": 1003, "msgIncr": "x3", "sendID": "wa", "operationID": "o",
                   "data": base64.b64encode(b"x" * 60000).decode()}
            v.send_raw(2, json.dumps(env).encode())
            await self.expect_closed(v)
        self.run_async(self.scenario(attack))

    def test_malformed_protobuf_is_1001(self):
        async def attack(v):
            code, _, _ = await v.request(1003, b"\x0a\xff\xff\xff\x0f")
            self.assertEqual(code, 1001)
            code, _, _ = await v.request(1005, b"\x12\x05\x12")
            self.assertEqual(code, 1001)
        self.run_async(self.scenario(attack))

    def test_malformed_base64_closes(self):
        async def attack(v):
            env = {"reqIdentifier": 1006, "msgIncr": "x4", "sendID": "wa", "operationID": "o",
                   "data": "***not base64***"}
            v.send_raw(2, json.dumps(env).encode())
            await self.expect_closed(v)
        self.run_async(self.scenario(attack))

    def test_malformed_gob_closes(self):
        async def attack(v):
            pass

        async def go():
            # A Go-core client (no sdkType: gob envelopes) sending a frame that is not gob.
            g = await Client("wa", self.tok_web["wa"], platform=5, sdk_type="").connect(self.srv.ws_port)
            g.send_raw(2, b"\x05\xff\x83\x03\x01\x01not gob at all")
            await self.expect_closed(g)
            await g.close()
            await self.scenario(attack)  # the others are unaffected
        self.run_async(go())

    def test_handshake_errors(self):
        async def go():
            # A bad token: upgraded, one text frame with the code, then closed (isMsgResp=true).
            with self.assertRaises(WSClosed) as cm:
                await Client("wa", "a.b.c", platform=5).connect(self.srv.ws_port)
            self.assertIn("1503", str(cm.exception))
            # The token of another user: 1502.
            with self.assertRaises(WSClosed) as cm:
                await Client("wb", self.tok_web["wa"], platform=5).connect(self.srv.ws_port)
            self.assertIn("1502", str(cm.exception))
            # Without isMsgResp: an HTTP 200 JSON body instead of an upgrade.
            r, w = await asyncio.open_connection("127.0.0.1", self.srv.ws_port)
            w.write(b"GET /?sendID=wa&token=zz&platformID=5&operationID=o HTTP/1.1\r\nHost: x\r\n"
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                    b"dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            data = await r.read()
            w.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:60])
            self.assertIn(b'"errCode":1503', data)
            # Missing parameters: 1602.
            r, w = await asyncio.open_connection("127.0.0.1", self.srv.ws_port)
            w.write(b"GET /?token=zz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            data = await r.read()
            w.close()
            self.assertIn(b'"errCode":1602', data)
        self.run_async(go())


if __name__ == "__main__":
    harness.main()
