// Scenario 11: friends and blacklists with the real SDK (openim-protocol.md §8.1, §8.4, §8.5).
// A applies to B: B gets OnFriendApplicationAdded (1203, then get_designated_friend_apply). B
// accepts: B gets OnFriendAdded (its own incremental friend sync), A gets
// OnFriendApplicationAccepted (1201 in n_) and the stored 1201 chat copy (si_, isSendMsg) as a new
// message. A blocks B: A gets OnBlackAdded (get_specified_blacks), and B's message to A is refused
// with 1302.
//
// A gets no OnFriendAdded here, as with OpenIM itself: the SDK's 1201 handler puts an async
// function into Promise.all without calling it, so its syncFriendVersion never runs. The result
// reports whether it happened (friendAddedOnA) without requiring it.
import { Client, cfg, check, eq, rest, run } from './lib.mjs';

run(async () => {
  const a = new Client('A', cfg.users.A);
  const b = new Client('B', cfg.users.B);
  await Promise.all([a.login(), b.login()]);
  const A = a.userID, B = b.userID;

  const sinceB = b.mark();
  await a.api('addFriend', { toUserID: B, reqMsg: 'hello B' });
  const app = await b.waitFor('OnFriendApplicationAdded', (d) => d?.fromUserID === A, { since: sinceB });
  eq([app.fromUserID, app.toUserID, app.reqMsg, app.handleResult], [A, B, 'hello B', 0], 'B: application');

  const sinceA = a.mark();
  await b.api('acceptFriendApplication', { toUserID: A, handleMsg: 'welcome' });
  const acc = await a.waitFor('OnFriendApplicationAccepted', (d) => d?.toUserID === B, { since: sinceA });
  eq([acc.fromUserID, acc.handleResult, acc.handleMsg], [A, 1, 'welcome'], 'A: accepted application');
  await b.waitFor('OnFriendAdded', (d) => d?.userID === A, { since: sinceB, what: 'OnFriendAdded(A) on B' });
  await a.waitFor('OnRecvNewMessages', (d) => d.some((m) => m.contentType === 1201 && m.sendID === B),
    { since: sinceA, what: 'the 1201 chat copy on A' });
  const isFriend = await rest('/friend/is_friend', { userID1: A, userID2: B }, a.token);
  eq(isFriend.data, { inUser1Friends: true, inUser2Friends: true }, 'is_friend after acceptance');

  const sinceBlack = a.mark();
  await a.api('addBlack', { toUserID: B, ex: '' });
  await a.waitFor('OnBlackAdded', (d) => d?.userID === B, { since: sinceBlack, what: 'OnBlackAdded(B) on A' });

  let refused = 0;
  const msg = await b.api('createTextMessage', 'blocked?');
  try {
    await b.sdk.sendMessage({ recvID: A, groupID: '', message: msg });
  } catch (e) {
    refused = e?.errCode ?? -1;
  }
  eq(refused, 1302, 'B sending to A who blocked B');
  check(a.count('OnRecvNewMessages', (d) => d.some((m) => m.contentType === 101)) === 0, 'A received the blocked text');
  return { application: app.reqMsg, accepted: acc.handleResult, black: true, refused,
    friendAddedOnA: a.count('OnFriendAdded', (d) => d?.userID === B, sinceA) > 0 };
});
