// The "JS client" of the sdk-go scenarios: one user on the REAL @openim/client-sdk 0.0.14
// (GPL-3.0, test-only), loaded from tests/sdk-js/node_modules (installed by
// tests/sdk-js/install.sh; nothing is installed here). It takes the same config and steps as the
// Go program (main.go) and prints the same JSON event lines on stdout, so the Python test drives
// both alike: $IMLOG_SDKGO_CONFIG = {apiAddr, wsAddr, platformID, userID, token, deadlineMs,
// steps: [{op: send|expect|wait_line|logout, ...}]}.
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'sdk-js', 'package.json'));
const WS = require('ws');
const cfg = JSON.parse(process.env.IMLOG_SDKGO_CONFIG || '{}');
const DEADLINE = cfg.deadlineMs || 20000;
const T0 = Date.now();

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ t: Date.now() - T0, event, ...fields }) + '\n');
}

function fail(msg) {
  emit('fail', { error: msg });
  process.exit(1);
}

// The WebSocket shim of toolchain.md: binary frames as ArrayBuffer; one macrotask per frame as in
// browsers (see tests/sdk-js/lib.mjs for why allowSynchronousEvents matters to the SDK).
globalThis.WebSocket = class extends WS {
  constructor(url, protocols) {
    super(url, protocols, { allowSynchronousEvents: false });
    this.binaryType = 'arraybuffer';
  }
};
console.info = () => {};
console.warn = () => {};
console.log = (...a) => process.stderr.write(a.join(' ') + '\n');

const { getSDK, CbEvents } = require('@openim/client-sdk');
const sdk = getSDK();

const seen = []; // {name, msg}
const waiters = new Set();
function record(ev) {
  seen.push(ev);
  for (const w of [...waiters]) w(ev);
}

function summary(m) {
  return {
    clientMsgID: m.clientMsgID, serverMsgID: m.serverMsgID, sendID: m.sendID, recvID: m.recvID,
    groupID: m.groupID || undefined, sessionType: m.sessionType, contentType: m.contentType,
    seq: m.seq, sendTime: m.sendTime, text: m.textElem?.content ?? '',
  };
}

const simple = {
  OnConnecting: 'connecting', OnConnectSuccess: 'connect_success', OnConnectFailed: 'connect_failed',
  OnKickedOffline: 'kicked_offline', OnUserTokenExpired: 'token_expired', OnUserTokenInvalid: 'token_invalid',
  OnSyncServerStart: 'sync_start', OnSyncServerFinish: 'sync_finish', OnSyncServerFailed: 'sync_failed',
  OnNewConversation: 'new_conversation', OnConversationChanged: 'conversation_changed',
  OnJoinedGroupAdded: 'joined_group_added',
};
for (const [cb, name] of Object.entries(simple)) {
  sdk.on(CbEvents[cb], (p) => {
    emit(name, p?.errCode ? { errCode: p.errCode, errMsg: p.errMsg } : {});
    record({ name, errCode: p?.errCode, errMsg: p?.errMsg });
  });
}
sdk.on(CbEvents.OnRecvNewMessages, ({ data }) => {
  for (const m of data) {
    const s = summary(m);
    emit('recv', { via: 'OnRecvNewMessages', msg: s });
    record({ name: 'recv', msg: s });
  }
});

function waitFor(what, pred) {
  const fatal = ['kicked_offline', 'token_expired', 'token_invalid'];
  const hit = seen.find(pred);
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`no ${what} within ${DEADLINE} ms`), DEADLINE);
    const w = (ev) => {
      if (fatal.includes(ev.name)) fail(`${ev.name} while waiting for ${what}`);
      if (pred(ev)) {
        clearTimeout(timer);
        waiters.delete(w);
        resolve(ev);
      }
    };
    waiters.add(w);
  });
}

async function call(what, promise) {
  try {
    return (await promise).data;
  } catch (e) {
    fail(`${what}: ${e instanceof Error ? e.stack : JSON.stringify(e)}`);
  }
}

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function runStep(s) {
  switch (s.op) {
    case 'send': {
      const msg = await call('createTextMessage', sdk.createTextMessage(s.text));
      const r = await call('sendMessage', sdk.sendMessage({ recvID: s.to || '', groupID: s.group || '', message: msg }));
      if (!r.serverMsgID || !(r.sendTime > 0)) fail(`sendMessage result incomplete: ${JSON.stringify(r)}`);
      emit('sent', { msg: summary(r) });
      break;
    }
    case 'expect': {
      const ev = await waitFor(`message ${JSON.stringify(s.text)} from ${s.from}`, (e) => e.name === 'recv'
        && e.msg.text === s.text && (!s.from || e.msg.sendID === s.from) && (!s.group || e.msg.groupID === s.group));
      const m = ev.msg;
      const want = s.group ? 3 : 1;
      if (!m.serverMsgID || !(m.seq > 0) || !(m.sendTime > 0)) fail(`received message incomplete: ${JSON.stringify(m)}`);
      if (m.sessionType !== want || m.contentType !== 101) fail(`received message types: ${JSON.stringify(m)}`);
      if (!s.group && m.recvID !== cfg.userID) fail(`received message recvID: ${JSON.stringify(m)}`);
      emit('expect_ok', { msg: m });
      break;
    }
    case 'wait_line': {
      emit('waiting_line');
      const { value, done } = await lines.next();
      if (done) fail('stdin closed while waiting for a line');
      emit('line', { text: value.trim() });
      break;
    }
    case 'logout':
      await call('logout', sdk.logout());
      emit('logged_out');
      break;
    default:
      fail(`unknown step op ${s.op}`);
  }
}

process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${e?.stack || JSON.stringify(e)}`));
process.on('uncaughtException', (e) => fail(`uncaught exception: ${e?.stack || e}`));

emit('start', { scenario: cfg.scenario, userID: cfg.userID, sdk: '@openim/client-sdk' });
await call('login', sdk.login({
  userID: cfg.userID, token: cfg.token, wsAddr: cfg.wsAddr, apiAddr: cfg.apiAddr,
  platformID: cfg.platformID || 5, logLevel: 5,
}));
emit('login_ok');
await waitFor('connect_success', (e) => {
  if (e.name === 'connect_failed') fail(`connect failed: ${e.errCode} ${e.errMsg}`);
  return e.name === 'connect_success';
});
await waitFor('sync_finish', (e) => {
  if (e.name === 'sync_failed') fail('sync failed');
  return e.name === 'sync_finish';
});
emit('ready', { userID: cfg.userID });
for (const [i, s] of (cfg.steps || []).entries()) {
  emit('step', { index: i, op: s.op });
  await runStep(s);
}
emit('result', { ok: true, scenario: cfg.scenario });
process.exit(0); // the SDK's heartbeat timer would keep the process alive
