"""200 WebSocket clients send 50 messages each into 20 group conversations, resending a random
tenth with the same clientMsgID, while the server is killed with SIGKILL and restarted mid-run.

Afterwards: every acknowledged message is stored exactly once, seqs in every conversation run
1..N with no gap, and every recipient holds every message in seq order after catching up by pull.
"""
import asyncio
import os
import random
import unittest

import harness
from harness import Server
from imws import Client, WSClosed, last, msgdata_text, pb_msg, pb_parse, pull_msgs_map

USERS, GROUPS, PER_USER = 200, 20, 50


class Run:
    def __init__(self, srv, seed):
        self.srv = srv
        self.rnd = random.Random(seed)
        self.acked = {}        # clientMsgID -> serverMsgID
        self.ack_count = 0
        self.restarts = 0
        self.generation = 0    # bumps on every restart
        self.up = asyncio.Event()
        self.up.set()
        self.kill_at = self.rnd.randrange(1500, 6000)
        self.killed = asyncio.Event()


async def connect(run, user, token):
    """Connects to the current server; a failure while the server is down waits for the restart."""
    for _ in range(5):
        await run.up.wait()
        try:
            return await Client(user, token).connect(run.srv.ws_port)
        except (OSError, WSClosed, asyncio.IncompleteReadError):
            if run.up.is_set() and run.srv.alive():
                raise
    raise AssertionError("could not reconnect " + user)


async def sender(run, user, token, group, pushes, order_errors):
    """Sends PER_USER messages; on a lost connection reconnects and resends the one in flight."""
    client = await connect(run, user, token)
    drain = asyncio.ensure_future(collect(client, pushes, order_errors))
    i = 0
    while i < PER_USER:
        cmid = "%s-%d" % (user, i)
        data = msgdata_text(user, group_id=group, client_msg_id=cmid, text=cmid, session=3)
        try:
            code, resp, _ = await client.request(1003, data)
            if code != 0:
                raise AssertionError("send %s -> %d" % (cmid, code))
            smid = last(pb_parse(resp), 1, b"").decode()
            if cmid in run.acked and run.acked[cmid] != smid:
                raise AssertionError("resend of %s answered %s, first %s" % (cmid, smid,
                                                                            run.acked[cmid]))
            if cmid not in run.acked:
                run.ack_count += 1
            run.acked[cmid] = smid
            if run.ack_count >= run.kill_at and not run.killed.is_set():
                run.killed.set()
            # A random tenth is sent again with the same clientMsgID (a client retry).
            if run.rnd.random() < 0.1:
                code, resp, _ = await client.request(1003, data)
                again = last(pb_parse(resp), 1, b"").decode()
                if code != 0 or again != smid:
                    raise AssertionError("retry of %s -> %d %s (first %s)" % (cmid, code, again, smid))
            i += 1
        except (WSClosed, asyncio.TimeoutError, ConnectionError, OSError):
            await client.close()
            await drain
            client = await connect(run, user, token)
            drain = asyncio.ensure_future(collect(client, pushes, order_errors))
    await client.close()
    await drain


async def collect(client, pushes, order_errors):
    """Records pushed messages; within one connection they must arrive in seq order."""
    last_seq = {}
    while True:
        req_id, data, env = await client.pushes.get()
        if req_id is None:
            return
        if req_id != 2001:
            continue
        msgs, _, _ = pull_msgs_map(data)
        for conv, items in msgs.items():
            for m in items:
                if m["seq"] <= last_seq.get(conv, 0):
                    order_errors.append((client.user_id, conv, m["seq"], last_seq.get(conv)))
                last_seq[conv] = m["seq"]
                pushes.setdefault(conv, {})[m["seq"]] = m["clientMsgID"]


async def restarter(run):
    await run.killed.wait()
    run.up.clear()
    run.srv.kill9()
    run.srv.proc.stdout.close()
    run.srv.start()
    run.restarts += 1
    run.up.set()


async def pull_all(client, conv, max_seq):
    """All messages 1..max_seq of conv through 1005, in pages of 100."""
    out = []
    for lo in range(1, max_seq + 1, 100):
        seqs = list(range(lo, min(lo + 99, max_seq) + 1))
        req = pb_msg((1, client.user_id)) + pb_msg((2, pb_msg((2, conv)) + b"".join(
            pb_msg((3, s)) for s in seqs)))
        # GetSeqMessageReq: 1 userID, 2 conversations [{2 conversationID, 3 seqs}] (unpacked ints)
        code, data, _ = await client.request(1005, req)
        assert code == 0, code
        msgs, _, _ = pull_msgs_map(data)
        out += msgs.get(conv, [])
    return out


async def max_seqs(client):
    """1006 with no ids: {conv: (maxSeq, hasReadSeq)}."""
    code, data, _ = await client.request(1006, pb_msg((1, client.user_id)))
    assert code == 0, code
    res = {}
    for entry in pb_parse(data).get(1, []):
        e = pb_parse(entry)
        v = pb_parse(last(e, 2, b""))
        res[last(e, 1).decode()] = (last(v, 1, 0), last(v, 2, 0))
    return res


class ConcurrencyTest(unittest.TestCase):
    def test_200_clients_kill9_mid_run(self):
        seed = int(os.environ.get("IMLOG_SEED", random.randrange(1 << 30)))
        print("seed", seed)
        srv = Server(secret="conc-secret").start()
        try:
            admin = srv.admin_token()
            users = ["c%03d" % i for i in range(USERS)]
            self.assertEqual(srv.register(admin, users)["errCode"], 0)
            tokens = {u: srv.user_token(admin, u) for u in users}
            groups = {}
            for g in range(GROUPS):
                members = users[g * 10:(g + 1) * 10]
                gid = "grp%02d" % g
                env = srv.post("/group/create_group", {
                    "ownerUserID": members[0], "memberUserIDs": members[1:], "adminUserIDs": [],
                    "groupInfo": {"groupID": gid, "groupName": gid, "groupType": 2}}, token=admin)
                self.assertEqual(env["errCode"], 0, env)
                groups[gid] = members
            asyncio.run(self.run_clients(srv, seed, users, tokens, groups))
        finally:
            srv.cleanup()

    async def run_clients(self, srv, seed, users, tokens, groups):
        run = Run(srv, seed)
        pushes = {u: {} for u in users}
        order_errors = []
        group_of = {u: g for g, ms in groups.items() for u in ms}
        kill = asyncio.ensure_future(restarter(run))
        results = await asyncio.wait_for(asyncio.gather(*[
            sender(run, u, tokens[u], group_of[u], pushes[u], order_errors) for u in users],
            return_exceptions=True), timeout=float(os.environ.get("IMLOG_CONC_TIMEOUT", "500")))
        errors = [r for r in results if isinstance(r, BaseException)]
        if not run.killed.is_set():
            kill.cancel()
        if errors:
            raise errors[0]
        self.assertTrue(run.killed.is_set(), "the run ended before the kill (kill_at %d)" % run.kill_at)
        await kill
        self.assertEqual(run.restarts, 1)
        self.assertEqual(order_errors, [], "pushes out of seq order")
        self.assertEqual(len(run.acked), USERS * PER_USER)

        for gid, members in groups.items():
            conv = "sg_" + gid
            reader = await Client(members[0], tokens[members[0]]).connect(srv.ws_port)
            seqs = await max_seqs(reader)
            max_seq = seqs[conv][0]
            stored = await pull_all(reader, conv, max_seq)
            await reader.close()
            # Seqs run 1..N with no gap, every message is real, each clientMsgID once.
            self.assertEqual([m["seq"] for m in stored], list(range(1, max_seq + 1)))
            self.assertTrue(all(m["status"] == 2 for m in stored), "placeholder in %s" % conv)
            # The group's history opens with its 1501 GroupCreated tip (§11), then user messages.
            self.assertEqual((stored[0]["seq"], stored[0]["contentType"], stored[0]["msgFrom"]),
                             (1, 1501, 200))
            tip = stored[0]["clientMsgID"]
            stored = stored[1:]
            cmids = [m["clientMsgID"] for m in stored]
            self.assertEqual(len(cmids), len(set(cmids)), "a message stored twice in %s" % conv)
            expected = {"%s-%d" % (u, i) for u in members for i in range(PER_USER)}
            self.assertEqual(set(cmids), expected, "acked messages missing in %s" % conv)
            for m in stored:
                self.assertEqual(run.acked[m["clientMsgID"]], m["serverMsgID"])
            by_seq = {m["seq"]: m["clientMsgID"] for m in stored}
            by_seq[1] = tip  # pushed before the clients connected: they get it by pull
            # Every member holds every message in seq order once it catches up by pull (1002).
            for u in members:
                have = dict(pushes[u].get(conv, {}))
                have.setdefault(1, tip)
                for s, cmid in have.items():
                    self.assertEqual(by_seq[s], cmid, "push of %s seq %d differs" % (u, s))
                missing = [s for s in range(1, max_seq + 1) if s not in have]
                if missing:
                    c = await Client(u, tokens[u]).connect(srv.ws_port)
                    req = pb_msg((1, u), (2, pb_msg((1, conv), (2, 1), (3, max_seq), (4, max_seq))))
                    code, data, _ = await c.request(1002, req)
                    await c.close()
                    self.assertEqual(code, 0)
                    msgs, _, _ = pull_msgs_map(data)
                    got = msgs.get(conv, [])
                    self.assertEqual([m["seq"] for m in got], list(range(1, max_seq + 1)))
                    for m in got:
                        have[m["seq"]] = m["clientMsgID"]
                self.assertEqual([have[s] for s in range(1, max_seq + 1)],
                                 [by_seq[s] for s in range(1, max_seq + 1)])


if __name__ == "__main__":
    harness.main()
