// Scenario 5: history paging after a fresh login. Phase "send" (one process): A sends 30 texts to
// B while both are online. Phase "read" (a new process, so nothing is cached): A and B log in
// again and page getAdvancedHistoryMessageList 10 at a time until isEnd; all 30, in order.
import { Client, cfg, check, eq, run, singleConvID, textOf } from './lib.mjs';

const N = cfg.n || 30;
const PAGE = cfg.page || 10;
const text = (i) => `h${String(i).padStart(2, '0')}`;

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const A = a.userID, B = b.userID;
  const conv = singleConvID(A, B);

  if (cfg.phase === 'send') {
    const ids = [];
    for (let i = 1; i <= N; i++) ids.push((await a.sendText(text(i), { recvID: B })).clientMsgID);
    const got = await b.waitForMessages(ids);
    eq(got.map((m) => m.seq), Array.from({ length: N }, (_, i) => i + 1), 'seqs B received live');
    return { conv, ids };
  }

  check(cfg.phase === 'read', `unknown phase ${cfg.phase}`);
  const out = {};
  for (const c of [a, b]) {
    const { messages, pages, isEnd } = await c.history(conv, PAGE);
    check(isEnd, `${c.name}: history did not end with isEnd`);
    const full = Math.floor(N / PAGE);
    const want = [];
    for (let p = 0; p < full; p++) want.push(Array.from({ length: PAGE }, (_, i) => N - (p + 1) * PAGE + 1 + i));
    if (N % PAGE) want.push(Array.from({ length: N % PAGE }, (_, i) => i + 1));
    else want.push([]);
    eq(pages, want, `${c.name}: seqs of each history page`);
    eq(messages.map(textOf), Array.from({ length: N }, (_, i) => text(i + 1)), `${c.name}: texts in order`);
    eq(messages.map((m) => m.clientMsgID), cfg.ids, `${c.name}: clientMsgIDs in order`);
    check(messages.every((m) => m.sendID === A && m.recvID === B && m.sessionType === 1),
      `${c.name}: sender/receiver/sessionType of the history`);
    const conversations = await c.api('getConversationListSplit', { offset: 0, count: 20 });
    const cv = conversations.find((x) => x.conversationID === conv);
    check(cv, `${c.name}: conversation list lacks ${conv}`);
    eq(JSON.parse(cv.latestMsg).textElem.content, text(N), `${c.name}: latestMsg`);
    out[c.name] = { pages, unread: cv.unreadCount };
  }
  eq(out.A.unread, 0, 'A unreadCount (its own messages)');
  eq(out.B.unread, N, 'B unreadCount (never read)');
  return { conv, ...out };
});
