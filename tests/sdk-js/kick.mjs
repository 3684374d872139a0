// Scenario 8: a second login of the same user on the same platform (a newly issued token) kicks
// the first: OnKickedOffline on the first instance; the second is connected and synced; the first
// token is refused afterwards. With cfg.forceLogout, /auth/force_logout then kicks the second.
import { Client, cfg, check, eq, newUserToken, rest, run } from './lib.mjs';

run(async () => {
  const platformID = cfg.platformID ?? 5;
  const a1 = new Client('A1', cfg.users.A);
  await a1.login();
  const t2 = await newUserToken(a1.userID, platformID, a1.token);
  check(t2 !== a1.token, 'could not get a second, different token');
  const m1 = a1.mark();
  const a2 = new Client('A2', cfg.users.A, t2);
  await a2.login();
  await a1.waitFor('OnKickedOffline', undefined, { since: m1 });
  eq(a1.sdk.loginStatus, 1, 'A1 login status after the kick (1 = Logout)');
  eq(a2.count('OnKickedOffline'), 0, 'OnKickedOffline on A2');
  const old = await rest('/user/get_users_info', { userIDs: [a1.userID] }, a1.token);
  eq(old.errCode, 1506, `REST with the kicked token (TokenKicked): ${JSON.stringify(old)}`);
  const cur = await rest('/user/get_users_info', { userIDs: [a1.userID] }, t2);
  eq(cur.errCode, 0, 'REST with the new token');
  const out = { kicked: true };
  if (cfg.forceLogout) {
    const m2 = a2.mark();
    const env = await rest('/auth/force_logout', { platformID, userID: a1.userID }, cfg.adminToken);
    eq(env.errCode, 0, `force_logout: ${JSON.stringify(env)}`);
    await a2.waitFor('OnKickedOffline', undefined, { since: m2 });
    const after = await rest('/user/get_users_info', { userIDs: [a1.userID] }, t2);
    eq(after.errCode, 1506, 'REST with the force-logged-out token');
    out.forceLogout = true;
  }
  return out;
});
