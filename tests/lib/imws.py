"""A minimal OpenIM WebSocket client for tests (stdlib only): RFC 6455 client frames, the JSON
envelopes of openim-protocol.md §4.3, and just enough protobuf to build MsgData and read replies.

It is a test tool, not an SDK: the real SDKs are exercised by tests/sdk-js and tests/sdk-go.
"""
import asyncio
import base64
import json
import os
import struct

# ---------------------------------------------------------------- protobuf


def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num, value):
    """Encodes one field: int -> varint, bool -> varint, str/bytes -> length-delimited."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def pb_msg(*fields):
    """fields: (num, value) pairs; zero values are skipped like proto3."""
    return b"".join(pb_field(n, v) for n, v in fields if v not in (0, "", b"", False, None))


def pb_parse(data):
    """Returns {field: [values]}: ints for varints, bytes for length-delimited."""
    out, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(data, i)
        elif wire == 2:
            n, i = _read_varint(data, i)
            v, i = data[i:i + n], i + n
        elif wire == 1:
            v, i = data[i:i + 8], i + 8
        elif wire == 5:
            v, i = data[i:i + 4], i + 4
        else:
            raise ValueError("bad wire type %d" % wire)
        out.setdefault(num, []).append(v)
    return out


def _read_varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def last(fields, num, default=None):
    v = fields.get(num)
    return v[-1] if v else default


MSGDATA_FIELDS = {1: "sendID", 2: "recvID", 3: "groupID", 4: "clientMsgID", 5: "serverMsgID",
                  6: "senderPlatformID", 9: "sessionType", 10: "msgFrom", 11: "contentType",
                  12: "content", 14: "seq", 15: "sendTime", 16: "createTime", 17: "status",
                  18: "isRead"}


def msgdata_decode(data):
    f = pb_parse(data)
    m = {}
    for num, name in MSGDATA_FIELDS.items():
        v = last(f, num)
        if isinstance(v, bytes) and num != 12:
            v = v.decode()
        m[name] = v if v is not None else ("" if num in (1, 2, 3, 4, 5) else 0)
    return m


def msgdata_text(send_id, recv_id="", group_id="", client_msg_id="", text="hi", session=1,
                 platform=5, create_time=0):
    return pb_msg((1, send_id), (2, recv_id), (3, group_id), (4, client_msg_id), (6, platform),
                  (9, session), (10, 100), (11, 101),
                  (12, json.dumps({"content": text}).encode()), (16, create_time), (17, 1))


def pull_msgs_map(data):
    """PushMessages / GetSeqMessageResp / PullMessageBySeqsResp -> ({conv: [msg]}, {conv: [msg]},
    {conv: (isEnd, endSeq)})."""
    f = pb_parse(data)
    maps = ({}, {})
    ends = {}
    for which in (1, 2):
        for entry in f.get(which, []):
            e = pb_parse(entry)
            key = last(e, 1, b"").decode()
            val = pb_parse(last(e, 2, b""))
            maps[which - 1][key] = [msgdata_decode(m) for m in val.get(1, [])]
            ends[key] = (bool(last(val, 2, 0)), last(val, 3, 0))
    return maps[0], maps[1], ends


# ---------------------------------------------------------------- WebSocket


class WSClosed(Exception):
    pass


class Client:
    """One connection, JSON envelopes (sdkType=js)."""

    def __init__(self, user_id, token, platform=5, sdk_type="js"):
        self.user_id, self.token, self.platform = user_id, token, platform
        self.sdk_type = sdk_type
        self.reader = self.writer = None
        self.pending = {}  # msgIncr -> Future
        self.pushes = asyncio.Queue()
        self.incr = 0
        self.reader_task = None
        self.closed = False

    async def connect(self, port, query_extra=""):
        try:
            return await self._connect(port, query_extra)
        except BaseException:
            if self.writer is not None:
                self.writer.close()
            raise

    async def _connect(self, port, query_extra):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        path = ("/?sendID=%s&token=%s&platformID=%d&operationID=op-%s&isBackground=false"
                "&isMsgResp=true%s%s" % (self.user_id, self.token, self.platform,
                                         os.urandom(4).hex(),
                                         "&sdkType=" + self.sdk_type if self.sdk_type else "",
                                         query_extra))
        self.writer.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise WSClosed(head.decode(errors="replace"))
        opcode, payload = await self._read_frame()
        if opcode != 1:
            raise WSClosed("first frame is not text")
        result = json.loads(payload)
        if result.get("errCode") != 0:
            raise WSClosed("connect refused: %r" % result)
        self.reader_task = asyncio.ensure_future(self._read_loop())
        return self

    async def _read_frame(self):
        h = await self.reader.readexactly(2)
        opcode, n = h[0] & 0x0F, h[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", await self.reader.readexactly(8))[0]
        return opcode, await self.reader.readexactly(n)

    def _send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + body)

    async def _read_loop(self):
        try:
            while True:
                opcode, payload = await self._read_frame()
                if opcode == 8:
                    break
                if opcode == 9:
                    self._send_frame(10, payload)
                    continue
                if opcode != 2:
                    continue  # text pongs
                env = json.loads(payload)
                data = base64.b64decode(env["data"]) if env.get("data") else b""
                fut = self.pending.pop(env.get("msgIncr"), None) if env.get("msgIncr") else None
                if fut is not None and not fut.done():
                    fut.set_result((env["errCode"], data, env))
                else:
                    await self.pushes.put((env["reqIdentifier"], data, env))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            self.writer.close()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(WSClosed("connection closed"))
            self.pending.clear()
            await self.pushes.put((None, b"", None))

    async def request(self, req_id, data, op_id=None, timeout=30):
        """Sends an envelope and waits for its reply: (errCode, data bytes, envelope)."""
        if self.closed:
            raise WSClosed("closed")
        self.incr += 1
        incr = "%s-%d" % (self.user_id, self.incr)
        fut = asyncio.get_event_loop().create_future()
        self.pending[incr] = fut
        env = {"reqIdentifier": req_id, "msgIncr": incr, "sendID": self.user_id,
               "operationID": op_id or incr, "data": base64.b64encode(data).decode()}
        self._send_frame(2, json.dumps(env).encode())
        return await asyncio.wait_for(fut, timeout)

    def send_raw(self, opcode, payload):
        self._send_frame(opcode, payload)

    async def close(self):
        if self.writer:
            try:
                self._send_frame(8, b"\x03\xe8")
            except (ConnectionError, OSError):
                pass
            self.writer.close()
        if self.reader_task:
            await asyncio.gather(self.reader_task, return_exceptions=True)
