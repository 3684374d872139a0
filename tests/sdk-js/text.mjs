// Scenario 2: 1:1 text both ways. The receiver gets OnRecvNewMessages with the right text, sender
// and seq; the sender gets no OnRecvNewMessages for its own message (the server answers 1003 before
// it pushes the sender's copy, with the send's operationID: openim-protocol.md §4.5).
import { Client, cfg, check, eq, run, singleConvID, textOf } from './lib.mjs';

function checkMsg(m, { text, from, to, seq }, who) {
  eq(textOf(m), text, `${who}: text`);
  eq(m.sendID, from, `${who}: sendID`);
  eq(m.recvID, to, `${who}: recvID`);
  eq(m.sessionType, 1, `${who}: sessionType`);
  eq(m.contentType, 101, `${who}: contentType`);
  eq(m.seq, seq, `${who}: seq`);
  check(m.serverMsgID, `${who}: serverMsgID is empty`);
  check(m.sendTime > 0, `${who}: sendTime ${m.sendTime}`);
}

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const A = a.userID, B = b.userID;
  const conv = singleConvID(A, B);

  const s1 = await a.sendText('hello from A', { recvID: B });
  check(s1.serverMsgID && s1.sendTime > 0, `A's send reply lacks serverMsgID/sendTime: ${JSON.stringify(s1)}`);
  const [r1] = await b.waitForMessages([s1.clientMsgID]);
  checkMsg(r1, { text: 'hello from A', from: A, to: B, seq: 1 }, 'B receives 1');
  eq(r1.serverMsgID, s1.serverMsgID, 'B receives 1: serverMsgID equals the send reply');

  const s2 = await b.sendText('hello from B', { recvID: A });
  const [r2] = await a.waitForMessages([s2.clientMsgID]);
  checkMsg(r2, { text: 'hello from B', from: B, to: A, seq: 2 }, 'A receives 2');

  // A's own copy of message 1 was pushed to A before message 2 existed, so it has arrived by now.
  const s3 = await a.sendText('third, from A', { recvID: B });
  const [r3] = await b.waitForMessages([s3.clientMsgID]);
  checkMsg(r3, { text: 'third, from A', from: A, to: B, seq: 3 }, 'B receives 3');
  // ...and B's own copy of message 2 reached B before message 3. One more from B, so that A has
  // its own copy of message 3 (with its seq) too.
  const s4 = await b.sendText('last from B', { recvID: A });
  const [r4] = await a.waitForMessages([s4.clientMsgID]);
  checkMsg(r4, { text: 'last from B', from: B, to: A, seq: 4 }, 'A receives 4');

  const echoA = a.received().filter((m) => m.sendID === A).map((m) => textOf(m));
  const echoB = b.received().filter((m) => m.sendID === B).map((m) => textOf(m));
  eq(echoA, [], 'OnRecvNewMessages on A for its own messages');
  eq(echoB, [], 'OnRecvNewMessages on B for its own messages');
  eq(b.received().length, 2, 'messages B received');
  eq(a.received().length, 2, 'messages A received');

  // A's history: its own messages carry the seq from the pushed copy. (B's own copy of message 4
  // may still be on its way, so B's history is checked up to 3.)
  const out = {};
  for (const [c, n] of [[a, 4], [b, 3]]) {
    const { messages } = await c.history(conv, 10);
    eq(messages.slice(0, n).map((m) => [m.seq, m.sendID, textOf(m)]),
      [[1, A, 'hello from A'], [2, B, 'hello from B'], [3, A, 'third, from A'], [4, B, 'last from B']].slice(0, n),
      `${c.name} history`);
    out[c.name] = messages.map((m) => m.seq);
  }
  return { conv, history: out, received: { A: a.received().map(textOf), B: b.received().map(textOf) } };
});
