// Scenario 7a: B logs out; A sends messages meanwhile; B logs in again (a fresh SDK instance) and
// finds them: conversation unreadCount and latest message, total unread, and history.
import { Client, cfg, check, eq, run, singleConvID, textOf } from './lib.mjs';

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const A = a.userID, B = b.userID;
  const conv = singleConvID(A, B);

  const first = await a.sendText('while online', { recvID: B });
  await b.waitForMessages([first.clientMsgID]);
  await b.logout();

  const texts = ['offline 1', 'offline 2', 'offline 3'];
  const ids = [];
  for (const t of texts) ids.push((await a.sendText(t, { recvID: B })).clientMsgID);

  const b2 = new Client('B2', cfg.users.B);
  await b2.login();
  const list = await b2.api('getConversationListSplit', { offset: 0, count: 20 });
  const cv = list.find((x) => x.conversationID === conv);
  check(cv, `B's conversation list after login lacks ${conv}: ${JSON.stringify(list.map((x) => x.conversationID))}`);
  eq(cv.unreadCount, 4, 'B unreadCount after login');
  eq(JSON.parse(cv.latestMsg).textElem?.content, 'offline 3', 'B latestMsg after login');
  eq(await b2.api('getTotalUnreadMsgCount'), 4, 'B total unread after login');
  const { messages } = await b2.history(conv, 10);
  eq(messages.map((m) => [m.seq, textOf(m)]),
    [[1, 'while online'], [2, 'offline 1'], [3, 'offline 2'], [4, 'offline 3']], 'B history after login');
  eq(messages.slice(1).map((m) => m.clientMsgID), ids, 'clientMsgIDs of the offline messages');
  return { conv, unread: cv.unreadCount };
});
