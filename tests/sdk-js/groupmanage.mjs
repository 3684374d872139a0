// Scenario 12: the group and conversation setters of the SDK, each with the events every involved
// client receives: setGroupInfo (OnGroupInfoChanged), setGroupMemberInfo (OnGroupMemberInfoChanged),
// changeGroupMemberMute (+ the muted member's send fails with 1402), changeGroupMute, joinGroup +
// acceptGroupApplication (OnGroupApplicationAdded / Accepted, OnJoinedGroupAdded, OnGroupMemberAdded),
// refuseGroupApplication (OnGroupApplicationRejected), kickGroupMember (OnJoinedGroupDeleted,
// OnGroupMemberDeleted), transferGroupOwner, setConversation (OnConversationChanged), a second
// device of D that logs in afterwards and lists the same, and dismissGroup (OnGroupDismissed).
import { Client, Failure, cfg, check, eq, log, run } from './lib.mjs';

async function expectCode(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    eq(e?.errCode, code, `${what}: errCode`);
    return;
  }
  throw new Failure(`${what}: succeeded, expected errCode ${code}`);
}

const PAGE = { offset: 0, count: 100 };

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  const c = new Client('C', cfg.users.C);
  const d = new Client('D', cfg.users.D);
  const e = new Client('E', cfg.users.E);
  await Promise.all([a.login(), b.login(), c.login(), d.login(), e.login()]);
  const A = a.userID, B = b.userID, C = c.userID, D = d.userID, E = e.userID;

  let mark = b.mark();
  const info = await a.api('createGroup', {
    memberUserIDs: [B, C], adminUserIDs: [],
    groupInfo: { groupName: 'managed', groupType: 2, introduction: '', notification: '', faceURL: '', ex: '' },
  });
  const groupID = info.groupID;
  await b.waitFor('OnJoinedGroupAdded', (g) => g.groupID === groupID, { since: mark });
  const ofGroup = (x) => x?.groupID === groupID;

  // setGroupInfo: name and announcement reach the members.
  mark = b.mark();
  await a.api('setGroupInfo', { groupID, groupName: 'renamed', notification: 'read this' });
  await b.waitFor('OnGroupInfoChanged', (g) => ofGroup(g) && g.groupName === 'renamed', { since: mark });
  await b.waitFor('OnGroupInfoChanged', (g) => ofGroup(g) && g.notification === 'read this', { since: mark });
  log('setGroupInfo ok');

  // setGroupMemberInfo: B becomes an admin; C sees it.
  mark = c.mark();
  await a.api('setGroupMemberInfo', { groupID, userID: B, roleLevel: 60 });
  await c.waitFor('OnGroupMemberInfoChanged', (m) => ofGroup(m) && m.userID === B && m.roleLevel === 60,
    { since: mark });
  mark = a.mark();
  await c.api('setGroupMemberInfo', { groupID, userID: C, nickname: 'Cee' });
  await a.waitFor('OnGroupMemberInfoChanged', (m) => ofGroup(m) && m.userID === C && m.nickname === 'Cee',
    { since: mark });
  log('setGroupMemberInfo ok');

  // changeGroupMemberMute: the admin mutes C; C cannot send (1402); unmuted, C can.
  mark = a.mark();
  await b.api('changeGroupMemberMute', { groupID, userID: C, mutedSeconds: 600 });
  await a.waitFor('OnGroupMemberInfoChanged', (m) => ofGroup(m) && m.userID === C && m.muteEndTime > Date.now(),
    { since: mark });
  const muted = await c.api('createTextMessage', 'muted?');
  await expectCode(c.sdk.sendMessage({ recvID: '', groupID, message: muted }), 1402, 'muted member sends');
  mark = a.mark();
  await b.api('changeGroupMemberMute', { groupID, userID: C, mutedSeconds: 0 });
  await a.waitFor('OnGroupMemberInfoChanged', (m) => ofGroup(m) && m.userID === C && m.muteEndTime === 0,
    { since: mark });
  await c.sendText('free again', { groupID });
  log('changeGroupMemberMute ok');

  // changeGroupMute: status 3 then 0 at the members.
  mark = c.mark();
  await a.api('changeGroupMute', { groupID, isMute: true });
  await c.waitFor('OnGroupInfoChanged', (g) => ofGroup(g) && g.status === 3, { since: mark });
  await a.api('changeGroupMute', { groupID, isMute: false });
  await c.waitFor('OnGroupInfoChanged', (g) => ofGroup(g) && g.status === 0, { since: mark });
  log('changeGroupMute ok');

  // joinGroup (needs approval by default): the owner sees the application and accepts it.
  let markA = a.mark(), markD = d.mark(), markC = c.mark();
  await d.api('joinGroup', { groupID, reqMsg: 'let me in', joinSource: 3 });
  await a.waitFor('OnGroupApplicationAdded', (q) => ofGroup(q) && q.userID === D, { since: markA });
  const pending = await a.api('getGroupApplicationListAsRecipient', PAGE);
  check(pending.some((q) => ofGroup(q) && q.userID === D && q.handleResult === 0),
    `D's application listed: ${JSON.stringify(pending)}`);
  await a.api('acceptGroupApplication', { groupID, fromUserID: D, handleMsg: 'welcome' });
  await d.waitFor('OnGroupApplicationAccepted', (q) => ofGroup(q), { since: markD });
  await d.waitFor('OnJoinedGroupAdded', (g) => ofGroup(g), { since: markD });
  await c.waitFor('OnGroupMemberAdded', (m) => ofGroup(m) && m.userID === D, { since: markC });
  log('joinGroup + accept ok');

  // E applies and is refused.
  markA = a.mark();
  const markE = e.mark();
  await e.api('joinGroup', { groupID, reqMsg: 'me too', joinSource: 3 });
  await a.waitFor('OnGroupApplicationAdded', (q) => ofGroup(q) && q.userID === E, { since: markA });
  await a.api('refuseGroupApplication', { groupID, fromUserID: E, handleMsg: 'no' });
  await e.waitFor('OnGroupApplicationRejected', (q) => ofGroup(q), { since: markE });
  eq(await e.api('isJoinGroup', groupID), false, 'E after refusal: isJoinGroup');
  log('refuse ok');

  // kickGroupMember: C leaves; B sees the deletion.
  markC = c.mark();
  const markB = b.mark();
  await a.api('kickGroupMember', { groupID, reason: '', userIDList: [C] });
  await c.waitFor('OnJoinedGroupDeleted', (g) => ofGroup(g), { since: markC });
  await b.waitFor('OnGroupMemberDeleted', (m) => ofGroup(m) && m.userID === C, { since: markB });
  log('kick ok');

  // transferGroupOwner: B owns the group.
  markD = d.mark();
  await a.api('transferGroupOwner', { groupID, newOwnerUserID: B });
  await d.waitFor('OnGroupInfoChanged', (g) => ofGroup(g) && g.ownerUserID === B, { since: markD });
  await d.waitFor('OnGroupMemberInfoChanged', (m) => ofGroup(m) && m.userID === B && m.roleLevel === 100,
    { since: markD });
  log('transfer ok');

  // setConversation: D pins the group's conversation.
  markD = d.mark();
  await d.api('setConversation', { conversationID: `sg_${groupID}`, isPinned: true });
  await d.waitFor('OnConversationChanged', (list) => list.some((v) => v.conversationID === `sg_${groupID}` && v.isPinned),
    { since: markD });
  log('setConversation ok');

  // A second device of D logs in afterwards and lists what the first one does.
  const d2 = new Client('D2', { ...cfg.users.D2 });
  await d2.login();
  const groupsOf = async (cl) => (await cl.api('getJoinedGroupListPage', PAGE)).map((g) => [g.groupID, g.ownerUserID]).sort();
  const membersOf = async (cl) => (await cl.api('getGroupMemberList', { groupID, filter: 0, ...PAGE }))
    .map((m) => [m.userID, m.roleLevel]).sort();
  const convOf = async (cl) => (await cl.api('getConversationListSplit', PAGE))
    .filter((v) => v.conversationID === `sg_${groupID}`).map((v) => v.isPinned);
  eq(await groupsOf(d2), await groupsOf(d), 'D2 joined groups');
  eq(await membersOf(d2), await membersOf(d), 'D2 members');
  eq(await membersOf(d2), [[A, 60], [B, 100], [D, 20]].sort(), 'members after the changes');
  eq(await convOf(d2), [true], 'D2 sees the pinned conversation');
  log('second device ok');

  // dismissGroup by the new owner.
  const markA2 = a.mark();
  markD = d.mark();
  await b.api('dismissGroup', groupID);
  await a.waitFor('OnGroupDismissed', (g) => ofGroup(g), { since: markA2 });
  await d.waitFor('OnGroupDismissed', (g) => ofGroup(g), { since: markD });
  log('dismiss ok');

  for (const cl of [a, b, c, d, e, d2]) await cl.logout();
  return { groupID };
});
