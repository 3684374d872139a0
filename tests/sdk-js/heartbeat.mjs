// Heartbeat (§4.6, §13 B5): the SDK pings every 10 s and closes the socket if the previous ping got
// no pong; the server's read deadline is 30 s, re-armed by every data frame. Waiting for the
// server's 3rd pong keeps A connected for over 30 s: A must not have reconnected meanwhile, and a
// message still reaches it on the same connection.
import { Client, cfg, eq, run, textOf } from './lib.mjs';

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const ws = a.sdk.wsManager.ws;
  const pongs = await a.waitForPongs(cfg.pongs || 3, 50000);
  eq(a.count('OnConnecting'), 1, 'OnConnecting on A (1 = no reconnect)');
  eq(a.sdk.wsManager.ws === ws, true, 'A still on its first socket');
  const s = await b.sendText('still there?', { recvID: a.userID });
  const [r] = await a.waitForMessages([s.clientMsgID]);
  eq(textOf(r), 'still there?', 'text after the heartbeats');
  return { pongs };
});
