// Scenario 6: A creates a group with B and C; a group text from A reaches B and C
// (OnRecvNewMessages), replies flow to everyone else, nobody gets their own message back as new.
import { Client, cfg, check, eq, run, textOf } from './lib.mjs';

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  const c = new Client('C', cfg.users.C);
  await Promise.all([a.login(), b.login(), c.login()]);
  const A = a.userID, B = b.userID, C = c.userID;

  const info = await a.api('createGroup', {
    memberUserIDs: [B, C], adminUserIDs: [],
    groupInfo: { groupName: 'sdk-js group', groupType: 2, introduction: '', notification: '', faceURL: '', ex: '' },
  });
  const groupID = info?.groupID;
  check(groupID, `createGroup returned no groupID: ${JSON.stringify(info)}`);
  eq(info.ownerUserID, A, 'createGroup ownerUserID');
  const conv = `sg_${groupID}`;

  const checkGroupMsg = (m, text, from, who) => {
    eq(textOf(m), text, `${who}: text`);
    eq(m.sendID, from, `${who}: sendID`);
    eq(m.groupID, groupID, `${who}: groupID`);
    eq(m.sessionType, 3, `${who}: sessionType`);
    eq(m.contentType, 101, `${who}: contentType`);
    check(m.seq > 0, `${who}: seq ${m.seq}`);
  };

  const s1 = await a.sendText('hello group', { groupID });
  const [b1] = await b.waitForMessages([s1.clientMsgID]);
  const [c1] = await c.waitForMessages([s1.clientMsgID]);
  checkGroupMsg(b1, 'hello group', A, 'B receives A');
  checkGroupMsg(c1, 'hello group', A, 'C receives A');
  eq(b1.seq, c1.seq, 'seq of the same group message on B and C');

  const s2 = await b.sendText('B here', { groupID });
  const [a2] = await a.waitForMessages([s2.clientMsgID]);
  const [c2] = await c.waitForMessages([s2.clientMsgID]);
  checkGroupMsg(a2, 'B here', B, 'A receives B');
  checkGroupMsg(c2, 'B here', B, 'C receives B');
  eq(a2.seq, b1.seq + 1, 'seq of B\'s reply');

  const s3 = await c.sendText('C here', { groupID });
  await a.waitForMessages([s3.clientMsgID]);
  await b.waitForMessages([s3.clientMsgID]);
  // Everybody's own copies were pushed before this last message, so they have all arrived.
  const s4 = await a.sendText('bye', { groupID });
  const [b4] = await b.waitForMessages([s4.clientMsgID]);
  const [c4] = await c.waitForMessages([s4.clientMsgID]);
  eq(b4.seq, c4.seq, 'seq of the last message on B and C');
  eq(b4.seq, b1.seq + 3, 'seqs are consecutive');

  const texts = (cl) => cl.received().filter((m) => m.contentType === 101).map(textOf);
  eq(texts(a), ['B here', 'C here'], 'texts A received');
  eq(texts(b), ['hello group', 'C here', 'bye'], 'texts B received');
  eq(texts(c), ['hello group', 'B here', 'bye'], 'texts C received');

  // With cfg.joinedEvent: B and C learn about the new group as an event (the 1501 GroupCreated
  // notification makes the SDK call get_incremental_join_groups with its stored version and fire
  // OnJoinedGroupAdded for the `insert`s: needs the join-group version log, §7).
  if (cfg.joinedEvent) {
    for (const cl of [b, c]) {
      await cl.waitFor('OnJoinedGroupAdded', (d) => d.groupID === groupID, { what: `OnJoinedGroupAdded(${groupID})` });
    }
  }
  const hist = await c.history(conv, 20);
  const chat = hist.messages.filter((m) => m.contentType === 101).map((m) => [m.seq, textOf(m)]);
  eq(chat, [[b1.seq, 'hello group'], [b1.seq + 1, 'B here'], [b1.seq + 2, 'C here'], [b1.seq + 3, 'bye']], 'C group history');
  return { groupID, seqs: [b1.seq, a2.seq, b4.seq], other: hist.messages.filter((m) => m.contentType !== 101).map((m) => [m.seq, m.contentType]) };
});
