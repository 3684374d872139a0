// Scenario 9: /msg/send_msg from an application backend (admin token, REST) reaches an online
// client as OnRecvNewMessages, and the conversation appears in its list.
import { Client, cfg, check, eq, rest, run, singleConvID, textOf } from './lib.mjs';

run(async () => {
  const a = new Client('A', cfg.users.A);
  await a.login();
  const S = cfg.users.S.userID;
  const m = a.mark();
  const env = await rest('/msg/send_msg', {
    sendID: S, recvID: a.userID, groupID: '', senderNickname: 'backend', senderFaceURL: '',
    senderPlatformID: 0, content: { content: 'from the backend' }, contentType: 101, sessionType: 1,
    isOnlineOnly: false, notOfflinePush: false, sendTime: 0,
    offlinePushInfo: { title: '', desc: '', ex: '', iOSPushSound: '', iOSBadgeCount: false, signalInfo: '' }, ex: '',
  }, cfg.adminToken);
  eq(env.errCode, 0, `send_msg: ${JSON.stringify(env)}`);
  const { clientMsgID, serverMsgID } = env.data;
  check(clientMsgID && serverMsgID, `send_msg reply: ${JSON.stringify(env.data)}`);
  const [r] = await a.waitForMessages([clientMsgID], { since: m });
  eq(textOf(r), 'from the backend', 'text');
  eq(r.sendID, S, 'sendID');
  eq(r.recvID, a.userID, 'recvID');
  eq(r.sessionType, 1, 'sessionType');
  eq(r.contentType, 101, 'contentType');
  eq(r.seq, 1, 'seq');
  eq(r.serverMsgID, serverMsgID, 'serverMsgID');
  eq(r.senderNickname, 'backend', 'senderNickname');
  const conv = singleConvID(a.userID, S);
  await a.waitFor('OnNewConversation', (d) => d.some((c) => c.conversationID === conv), { since: m });
  const list = await a.api('getConversationListSplit', { offset: 0, count: 20 });
  const cv = list.find((x) => x.conversationID === conv);
  check(cv, `conversation list lacks ${conv}`);
  eq(cv.unreadCount, 1, 'unreadCount');
  return { conv, msgFrom: r.msgFrom };
});
