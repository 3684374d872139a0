// Scenario 3: unread counts and mark-as-read.
//  1. A's first message opens the conversation; B marks it read -> A gets OnRecvC2CReadReceipt.
//  2. A sends N more: B's conversation has unreadCount N (OnConversationChanged and
//     getConversationListSplit) and the total unread is N (OnTotalUnreadMessageCountChanged).
//  3. B logs in again (fresh instance): the server-derived counts (1006 + get_active_conversations)
//     say N as well.
//  4. B marks the conversation read -> A gets OnRecvC2CReadReceipt for exactly those N messages,
//     B's unread drops to 0, and the server's hasReadSeq is N+1.
// (The conversation is opened first because the SDK 0.0.14 does not count the first message of a
// conversation it did not know into the total: triggerConversation only updates the total when
// seq > the cached maxSeq, and for a new conversation it has just cached maxSeq = that seq.)
import { Client, cfg, check, eq, rest, run, singleConvID } from './lib.mjs';

const N = cfg.n || 5;

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const A = a.userID, B = b.userID;
  const conv = singleConvID(A, B);
  const unreadIs = (n) => (d) => d.some((c) => c.conversationID === conv && c.unreadCount === n);

  // 1.
  const first = await a.sendText('first', { recvID: B });
  await b.waitForMessages([first.clientMsgID]);
  await b.waitFor(['OnNewConversation', 'OnConversationChanged'], unreadIs(1), { what: 'OnNewConversation with unreadCount 1' });
  let ma = a.mark(), mb = b.mark();
  await b.api('markConversationMessageAsRead', conv);
  let receipt = await a.waitFor('OnRecvC2CReadReceipt', (d) => d.some((r) => r.userID === B), { since: ma });
  eq(receipt.find((x) => x.userID === B).msgIDList, [first.clientMsgID], 'first read receipt msgIDList on A');
  await b.waitFor('OnConversationChanged', unreadIs(0), { since: mb, what: 'OnConversationChanged with unreadCount 0' });

  // 2.
  mb = b.mark();
  const ids = [];
  for (let i = 1; i <= N; i++) ids.push((await a.sendText(`unread ${i}`, { recvID: B })).clientMsgID);
  const got = await b.waitForMessages(ids, { since: mb });
  eq(got.map((m) => m.seq), Array.from({ length: N }, (_, i) => i + 2), 'seqs B received');
  await b.waitFor('OnConversationChanged', unreadIs(N), { since: mb, what: `OnConversationChanged with unreadCount ${N}` });
  await b.waitFor('OnTotalUnreadMessageCountChanged', (d) => d === N, { since: mb, what: `OnTotalUnreadMessageCountChanged(${N})` });
  let list = await b.api('getConversationListSplit', { offset: 0, count: 20 });
  let c = list.find((x) => x.conversationID === conv);
  check(c, `B's conversation list lacks ${conv}: ${JSON.stringify(list.map((x) => x.conversationID))}`);
  eq(c.unreadCount, N, 'B conversation unreadCount');
  eq(c.userID, A, 'B conversation userID (the peer)');
  eq(c.conversationType, 1, 'B conversation type');
  eq(JSON.parse(c.latestMsg).textElem.content, `unread ${N}`, 'B conversation latestMsg');
  eq(await b.api('getTotalUnreadMsgCount'), N, 'B getTotalUnreadMsgCount');
  // The sender has nothing unread (its hasReadSeq follows its own sends).
  const la = (await a.api('getConversationListSplit', { offset: 0, count: 20 })).find((x) => x.conversationID === conv);
  check(la, `A's conversation list lacks ${conv}`);
  eq(la.unreadCount, 0, 'A conversation unreadCount');

  // 3.
  await b.logout();
  const b2 = new Client('B2', cfg.users.B);
  await b2.login();
  eq(await b2.api('getTotalUnreadMsgCount'), N, 'B total unread after a fresh login');
  list = await b2.api('getConversationListSplit', { offset: 0, count: 20 });
  c = list.find((x) => x.conversationID === conv);
  check(c, `B's conversation list after a fresh login lacks ${conv}`);
  eq(c.unreadCount, N, 'B conversation unreadCount after a fresh login');

  // 4.
  ma = a.mark();
  const m2 = b2.mark();
  await b2.api('markConversationMessageAsRead', conv);
  receipt = await a.waitFor('OnRecvC2CReadReceipt', (d) => d.some((r) => r.userID === B), { since: ma });
  const r = receipt.find((x) => x.userID === B);
  eq([...r.msgIDList].sort(), [...ids].sort(), 'read receipt msgIDList on A');
  eq(r.sessionType, 1, 'read receipt sessionType');
  await b2.waitFor('OnTotalUnreadMessageCountChanged', (d) => d === 0, { since: m2, what: 'OnTotalUnreadMessageCountChanged(0)' });
  await b2.waitFor('OnConversationChanged', unreadIs(0), { since: m2, what: 'OnConversationChanged with unreadCount 0' });
  c = (await b2.api('getConversationListSplit', { offset: 0, count: 20 })).find((x) => x.conversationID === conv);
  eq(c.unreadCount, 0, 'B conversation unreadCount after mark-as-read');

  // The server's view (REST twin of WS 1006).
  const env = await rest('/msg/get_conversations_has_read_and_max_seq', { userID: B, conversationIDs: [conv] }, b2.token);
  eq(env.errCode, 0, `get_conversations_has_read_and_max_seq: ${JSON.stringify(env)}`);
  const seqs = env.data.seqs[conv];
  eq([seqs.maxSeq, seqs.hasReadSeq], [N + 1, N + 1], 'server maxSeq/hasReadSeq for B');
  return { conv, receipt: r.msgIDList.length, server: seqs };
});
