// Scenario 7b: B's connection drops; A sends while B is disconnected; the SDK reconnects on its
// own and catches up (1006 diff -> 1002 PullMsgByRange), delivering OnRecvNewMessages.
import { Client, cfg, check, eq, log, run, singleConvID, textOf } from './lib.mjs';

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const A = a.userID, B = b.userID;

  const first = await a.sendText('before the drop', { recvID: B });
  await b.waitForMessages([first.clientMsgID]);

  // Hold the SDK's reconnect until A's messages are stored (the SDK retries 5 s after a close;
  // shortened here, and gated on an event instead of time).
  const wm = b.sdk.wsManager;
  check(wm && wm.ws, 'B has no WebSocket manager');
  let open;
  const gate = new Promise((res) => { open = res; });
  const connect = wm.connect;
  wm.connect = () => gate.then(() => connect());
  wm.reconnectInterval = 50;
  const mb = b.mark();
  wm.ws.terminate(); // an abrupt TCP close, no close frame: a network drop
  await b.waitFor('OnConnecting', undefined, { since: mb, what: 'OnConnecting (reconnect started)' });

  const texts = ['missed 1', 'missed 2', 'missed 3'];
  const ids = [];
  for (const t of texts) ids.push((await a.sendText(t, { recvID: B })).clientMsgID);
  log('A sent 3 messages while B was disconnected; letting B reconnect');
  open();

  await b.waitFor('OnConnectSuccess', undefined, { since: mb, failOn: ['OnConnectFailed'] });
  const got = await b.waitForMessages(ids, { since: mb });
  eq(got.map((m) => [m.seq, textOf(m), m.sendID]), texts.map((t, i) => [i + 2, t, A]), 'messages B caught up on');
  await b.waitFor('OnSyncServerFinish', undefined, { since: mb, failOn: ['OnSyncServerFailed'] });
  eq(b.count('OnRecvNewMessages', (d) => d.some((m) => m.clientMsgID === first.clientMsgID)), 1,
    'the message from before the drop is not delivered twice');
  // Live pushes work again on the new connection.
  const after = await a.sendText('after the reconnect', { recvID: B });
  const [r] = await b.waitForMessages([after.clientMsgID], { since: mb });
  eq(r.seq, 5, 'seq of the first live message after the reconnect');
  return { conv: singleConvID(A, B), caughtUp: got.map((m) => m.seq) };
});
