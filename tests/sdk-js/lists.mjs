// Fresh login of each configured user, one after the other: what the SDK then lists as the user's
// friends, blacklist, joined groups, their members, and conversations (the SDK's own cache built
// at login for conversations). The Python side compares it with the server's lists
// (tests/integration/test_relations_random.py).
import { Client, cfg, run } from './lib.mjs';

const PAGE = { offset: 0, count: 1000 };

run(async () => {
  const out = {};
  for (const [name, user] of Object.entries(cfg.users)) {
    const c = new Client(name, user);
    await c.login();
    const friends = (await c.api('getFriendListPage', PAGE)) || [];
    const blacks = (await c.api('getBlackList', PAGE)) || [];
    const groups = (await c.api('getJoinedGroupListPage', PAGE)) || [];
    const members = {};
    for (const g of groups) {
      const list = (await c.api('getGroupMemberList', { groupID: g.groupID, filter: 0, ...PAGE })) || [];
      members[g.groupID] = Object.fromEntries(list.map((m) => [m.userID, m.roleLevel]));
    }
    const convs = (await c.api('getConversationListSplit', PAGE)) || [];
    out[user.userID] = {
      friends: Object.fromEntries(friends.map((f) => [f.userID, f.remark ?? ''])),
      blacks: blacks.map((b) => b.userID).sort(),
      groups: Object.fromEntries(groups.map((g) => [g.groupID, g.groupName])),
      members,
      conversations: Object.fromEntries(convs.map((v) => [v.conversationID, !!v.isPinned])),
    };
    await c.logout();
  }
  return out;
});
