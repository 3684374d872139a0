// Scenario 1: login reaches OnConnectSuccess and OnSyncServerFinish with no OnSyncServerFailed,
// for two users at once; a fresh user then sees an empty, fully read conversation list.
import { Client, cfg, check, eq, run } from './lib.mjs';

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const out = {};
  for (const c of [a, b]) {
    eq(c.count('OnConnectSuccess'), 1, `${c.name} OnConnectSuccess count`);
    eq(c.count('OnSyncServerStart'), 1, `${c.name} OnSyncServerStart count`);
    eq(c.count('OnSyncServerFinish'), 1, `${c.name} OnSyncServerFinish count`);
    eq(c.count('OnSyncServerFailed'), 0, `${c.name} OnSyncServerFailed count`);
    const order = c.events.map((r) => r.event).filter((e) => e.startsWith('OnConnect') || e.startsWith('OnSync'));
    eq(order, ['OnConnecting', 'OnConnectSuccess', 'OnSyncServerStart', 'OnSyncServerFinish'], `${c.name} event order`);
    const self = await c.api('getSelfUserInfo');
    eq(self?.userID, c.userID, `${c.name} getSelfUserInfo().userID`);
    eq(self?.nickname, `n-${c.userID}`, `${c.name} getSelfUserInfo().nickname`);
    const convs = await c.api('getConversationListSplit', { offset: 0, count: 20 });
    eq(convs.length, 0, `${c.name} conversations of a fresh user`);
    eq(await c.api('getTotalUnreadMsgCount'), 0, `${c.name} total unread of a fresh user`);
    out[c.name] = { events: order };
  }
  const status = await a.api('getLoginStatus');
  eq(status, 3, 'getLoginStatus() (3 = Logged)');
  return out;
});
