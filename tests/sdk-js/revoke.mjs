// Scenario 4: the sender revokes a delivered message; the receiver gets OnNewRecvMessageRevoked.
import { Client, cfg, check, eq, run, singleConvID, textOf } from './lib.mjs';

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const A = a.userID, B = b.userID;
  const conv = singleConvID(A, B);

  const s = await a.sendText('to be revoked', { recvID: B });
  const [r] = await b.waitForMessages([s.clientMsgID]);
  eq(r.seq, 1, 'seq of the message B received');
  // The SDK revokes by (clientMsgID -> cached seq); A's cached copy gets its seq from the pushed
  // copy, which reaches A before B's reply does.
  const reply = await b.sendText('got it', { recvID: A });
  await a.waitForMessages([reply.clientMsgID]);

  const ma = a.mark(), mb = b.mark();
  await a.api('revokeMessage', { conversationID: conv, clientMsgID: s.clientMsgID });
  const rev = await b.waitFor('OnNewRecvMessageRevoked', (d) => d.clientMsgID === s.clientMsgID,
    { since: mb, what: 'OnNewRecvMessageRevoked for the message' });
  eq(rev.revokerID, A, 'revokerID');
  eq(rev.seq, 1, 'revoked seq');
  eq(rev.sessionType, 1, 'revoke sessionType');
  eq(rev.sourceMessageSendID, A, 'sourceMessageSendID');
  check(rev.revokeTime > 0, `revokeTime ${rev.revokeTime}`);
  // The revoke reached B as a notification, not as a new chat message.
  eq(b.received(mb).map((m) => m.contentType), [], 'OnRecvNewMessages on B caused by the revoke');
  const { messages } = await b.history(conv, 10);
  eq(messages.map((m) => [m.seq, m.contentType]), [[1, 2101], [2, 101]], 'B history after the revoke');
  // The revoker's SDK updates itself locally and ignores the echo of its own revoke (the server
  // pushes it with the operationID of the revoke_msg request). The echo was pushed to A before B
  // had the revoke, so it has arrived once A has B's next message.
  await a.waitFor('OnNewRecvMessageRevoked', (d) => d.clientMsgID === s.clientMsgID, { since: ma });
  const after = await b.sendText('after the revoke', { recvID: A });
  await a.waitForMessages([after.clientMsgID], { since: ma });
  eq(a.count('OnNewRecvMessageRevoked', undefined, ma), 1, 'OnNewRecvMessageRevoked count on A');
  return { conv, revoked: rev };
});
