// Shared helpers for the sdk-js scenarios: they drive the real @openim/client-sdk@0.0.14 (GPL-3.0,
// installed by install.sh into node_modules, never committed) against a running imlog.
//
// The Python side (tests/integration/test_sdk_js.py) starts the server, registers users, fetches
// their tokens and passes everything in the environment variable IMLOG_SDK_CONFIG (JSON):
//   {apiAddr, wsAddr, adminToken, platformID, users: {A: {userID, token}, ...}, ...scenario extras}
// A scenario prints progress on stderr and exactly one line "RESULT <json>" on stdout, then exits
// 0; any failed expectation prints "FAIL: ..." plus the recorded event trace and exits 1.
//
// getSDK() returns a new, independent instance on every call (no singleton), so one process can
// hold several logged-in users; each instance owns its own WebSocket.
import { EventEmitter } from 'node:events';
import WS from 'ws';

// The package's entry for Node is its CommonJS build (lib/index.js, "main"); bundlers take
// lib/index.es.js ("module"). Both (and the UMD build) carry a transpilation bug in the reconnect
// catch-up: `[].concat(map.entries())` instead of `[...map.entries()]`, so PullMsgByRange (1002)
// after a reconnect throws "Cannot read properties of undefined (reading '0')". The package also
// ships lib/index.modern.mjs, built from the same source without that bug; cfg.sdkBuild ===
// 'modern' (or IMLOG_SDK_BUILD=modern) selects it. Everything else uses the default entry.
export const cfg = JSON.parse(process.env.IMLOG_SDK_CONFIG || '{}');
export const sdkBuild = cfg.sdkBuild || process.env.IMLOG_SDK_BUILD || 'main';
const { getSDK, CbEvents } = await import(
  sdkBuild === 'modern' ? '@openim/client-sdk/lib/index.modern.mjs' : '@openim/client-sdk');

// The only shim the SDK needs in Node 20 (toolchain.md): a WebSocket whose binary frames arrive as
// ArrayBuffer (plain `ws` hands out Buffers and the SDK's decoder breaks on the first frame).
// allowSynchronousEvents: false makes `ws` dispatch each message in its own macrotask, as browsers
// do. With ws 8's client default (true) the frames of one TCP read are dispatched back to back, so
// the SDK's promise continuations do not run in between; then the sender's 1003 reply handler has
// not yet recorded the send's operationID when the PushMsg copy (correctly sent right after the
// reply) is handled, and the SDK reports its own message as new (an artefact of the shim, not of
// the server).
// IMLOG_SDK_WIRE=1 also logs every frame (for bug reports with the exact frames). `wire` emits
// 'text' (socket, string) for every text frame the server sends (connect result, pongs).
const WIRE = !!process.env.IMLOG_SDK_WIRE;
export const wire = new EventEmitter();
let wsSeq = 0;
globalThis.WebSocket = class extends WS {
  constructor(url, protocols) {
    super(url, protocols, { allowSynchronousEvents: false });
    this.binaryType = 'arraybuffer';
    this.on('message', (d, bin) => { if (!bin) wire.emit('text', this, d.toString()); });
    if (WIRE) {
      this.wireId = ++wsSeq;
      const q = new URL(url).searchParams;
      log(`ws#${this.wireId} open ${q.get('sendID')} op=${q.get('operationID')}`);
      this.on('message', (d, bin) => log(`ws#${this.wireId} <- ${bin ? 'bin' : 'text'} ${frame(d)}`));
      this.on('close', (code) => log(`ws#${this.wireId} closed ${code}`));
    }
  }

  send(data, ...rest) {
    if (WIRE && !(typeof data === 'string' && data.includes('"ping"'))) log(`ws#${this.wireId} -> ${frame(data)}`);
    return super.send(data, ...rest);
  }
};

function frame(d) {
  const s = typeof d === 'string' ? d : Buffer.from(d instanceof ArrayBuffer ? new Uint8Array(d) : d).toString();
  return s.length > 1500 ? s.slice(0, 1500) + '…' : s;
}

export { CbEvents };
export const DEADLINE_MS = Number(process.env.IMLOG_SDK_DEADLINE_MS || 20000);
const DEBUG = !!process.env.IMLOG_SDK_DEBUG;
const T0 = Date.now();
if (!DEBUG) {
  // The SDK prints a banner (console.info) and dumps every get_active_conversations answer
  // (console.warn) whatever its log level; keep the output to the scenario's own lines.
  console.info = () => {};
  console.warn = () => {};
}

export function log(...args) {
  process.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(3)}] ${args.join(' ')}\n`);
}

export class Failure extends Error {}

export function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

export function eq(actual, expected, what) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Failure(`${what}: expected ${e}, got ${a}`);
}

const clients = [];

// Every event the scenarios use (and a few more, for the trace).
const EVENTS = [
  'OnConnecting', 'OnConnectSuccess', 'OnConnectFailed', 'OnKickedOffline', 'OnUserTokenExpired',
  'OnUserTokenInvalid', 'OnSyncServerStart', 'OnSyncServerFinish', 'OnSyncServerFailed',
  'OnRecvNewMessages', 'OnRecvC2CReadReceipt', 'OnNewRecvMessageRevoked', 'OnConversationChanged',
  'OnNewConversation', 'OnTotalUnreadMessageCountChanged', 'OnJoinedGroupAdded', 'OnGroupMemberAdded',
  'OnGroupInfoChanged', 'OnGroupMemberInfoChanged', 'OnGroupMemberDeleted', 'OnJoinedGroupDeleted',
  'OnGroupApplicationAdded', 'OnGroupApplicationAccepted', 'OnGroupApplicationRejected', 'OnGroupDismissed',
  'OnSelfInfoUpdated', 'OnFriendApplicationAdded', 'OnFriendApplicationAccepted',
  'OnFriendApplicationRejected', 'OnFriendAdded', 'OnFriendDeleted', 'OnFriendInfoChanged', 'OnBlackAdded',
  'OnBlackDeleted',
];

// One logged-in user: an SDK instance plus the ordered record of every event it emitted.
export class Client {
  constructor(name, user, token) {
    this.name = name;
    this.userID = user.userID;
    this.token = token || user.token;
    this.platformID = user.platformID ?? cfg.platformID ?? 5;
    // A user may have its own server (a cluster test puts users on different nodes).
    this.wsAddr = user.wsAddr ?? cfg.wsAddr;
    this.apiAddr = user.apiAddr ?? cfg.apiAddr;
    this.sdk = getSDK();
    this.events = []; // {event, data, errCode, errMsg, at}
    this.waiters = new Set();
    for (const ev of EVENTS) {
      this.sdk.on(ev, (payload) => this._record(ev, payload));
    }
    clients.push(this);
  }

  _record(event, p) {
    const rec = { event, data: p?.data ?? null, errCode: p?.errCode ?? 0, errMsg: p?.errMsg ?? '',
      at: Date.now() - T0 };
    this.events.push(rec);
    if (DEBUG) log(`${this.name} <- ${event} ${short(rec.data)} ${rec.errCode ? rec.errCode + ' ' + rec.errMsg : ''}`);
    for (const w of [...this.waiters]) w(rec);
  }

  mark() {
    return this.events.length;
  }

  // Resolves with the first event `name` (or one of several names) at index >= since for which pred(data, rec) holds; rejects
  // when the deadline passes, or at once when one of `failOn` events shows up meanwhile.
  waitFor(name, pred = () => true, { since = 0, timeout = DEADLINE_MS, failOn = [], what } = {}) {
    const names = Array.isArray(name) ? name : [name];
    const desc = what || names.join('|');
    const match = (rec) => names.includes(rec.event) && pred(rec.data, rec);
    for (let i = since; i < this.events.length; i++) {
      const rec = this.events[i];
      if (match(rec)) return Promise.resolve(rec.data);
      if (failOn.includes(rec.event)) {
        return Promise.reject(new Failure(`${this.name}: ${rec.event} (${rec.errCode} ${rec.errMsg}) while waiting for ${desc}`));
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Failure(`${this.name}: no ${desc} within ${timeout} ms`));
      }, timeout);
      const w = (rec) => {
        if (match(rec)) {
          clearTimeout(timer); this.waiters.delete(w); resolve(rec.data);
        } else if (failOn.includes(rec.event)) {
          clearTimeout(timer); this.waiters.delete(w);
          reject(new Failure(`${this.name}: ${rec.event} (${rec.errCode} ${rec.errMsg}) while waiting for ${desc}`));
        }
      };
      this.waiters.add(w);
    });
  }

  count(name, pred = () => true, since = 0) {
    return this.events.slice(since).filter((r) => r.event === name && pred(r.data, r)).length;
  }

  // Every message delivered through OnRecvNewMessages (since index `since`).
  received(since = 0) {
    return this.events.slice(since).filter((r) => r.event === 'OnRecvNewMessages').flatMap((r) => r.data);
  }

  // Waits until OnRecvNewMessages has delivered every clientMsgID in ids; returns those messages.
  async waitForMessages(ids, { since = 0, timeout = DEADLINE_MS } = {}) {
    const want = new Set(ids);
    const have = () => this.received(since).filter((m) => want.has(m.clientMsgID));
    const missing = () => { const got = new Set(have().map((m) => m.clientMsgID)); return [...want].filter((i) => !got.has(i)); };
    if (missing().length) {
      await this.waitFor('OnRecvNewMessages', () => missing().length === 0, {
        since, timeout, what: `OnRecvNewMessages with ${ids.length} message(s) (missing ${missing().length})` });
    }
    return have();
  }

  // Waits until the server has answered n of the SDK's heartbeat pings ({"type":"ping"} every
  // 10 s) on the current socket with a text {"type":"pong"} frame.
  waitForPongs(n, timeout) {
    const ws = this.sdk.wsManager?.ws;
    check(ws, `${this.name}: not connected`);
    let seen = 0;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        wire.off('text', on);
        reject(new Failure(`${this.name}: ${seen} of ${n} pongs within ${timeout} ms`));
      }, timeout);
      const on = (sock, text) => {
        if (sock !== ws) return;
        let type;
        try { type = JSON.parse(text).type; } catch { type = undefined; }
        if (type === 'pong' && ++seen === n) {
          clearTimeout(timer); wire.off('text', on); resolve(seen);
        }
      };
      wire.on('text', on);
    });
  }

  // login() plus the events that mean "connected and synced" (openim-protocol.md §9).
  async login({ expectSync = true } = {}) {
    const since = this.mark();
    await call(`${this.name}.login`, this.sdk.login({
      userID: this.userID, token: this.token, wsAddr: this.wsAddr, apiAddr: this.apiAddr,
      platformID: this.platformID, logLevel: DEBUG ? 1 : 5,
    }));
    await this.waitFor('OnConnectSuccess', undefined, { since, failOn: ['OnConnectFailed'] });
    if (expectSync) {
      await this.waitFor('OnSyncServerFinish', undefined, { since, failOn: ['OnSyncServerFailed'] });
      check(this.count('OnSyncServerFailed', undefined, since) === 0, `${this.name}: OnSyncServerFailed during login`);
    }
    log(`${this.name} (${this.userID}) logged in and synced`);
    return since;
  }

  // logout() is refused by the SDK once it is logged out (e.g. after OnKickedOffline reset it).
  async logout() {
    if (this.sdk.loginStatus !== 1 /* LoginStatus.Logout */) {
      await call(`${this.name}.logout`, this.sdk.logout());
    }
  }

  // SDK calls go through a Proxy that resolves {data, errCode, ...} or rejects with the same shape.
  async api(method, ...args) {
    const r = await call(`${this.name}.${method}`, this.sdk[method](...args));
    return r.data;
  }

  async sendText(text, { recvID = '', groupID = '' } = {}) {
    const msg = await this.api('createTextMessage', text);
    return this.api('sendMessage', { recvID, groupID, message: msg });
  }

  // All history pages of conversationID, `count` at a time (each page continues from the oldest
  // message of the previous one), until isEnd. Returns {messages (oldest first), pages (seqs)}.
  async history(conversationID, count) {
    const pages = [];
    let messages = [];
    let start = '';
    for (let guard = 0; guard < 1000; guard++) {
      const page = await this.api('getAdvancedHistoryMessageList',
        { conversationID, count, startClientMsgID: start, lastMinSeq: 0 });
      pages.push(page.messageList.map((m) => m.seq));
      messages = [...page.messageList, ...messages];
      if (page.isEnd || !page.messageList.length) return { messages, pages, isEnd: page.isEnd };
      start = page.messageList[0].clientMsgID;
    }
    throw new Failure(`${this.name}: history of ${conversationID} never reached isEnd`);
  }
}

async function call(what, promise) {
  try {
    return await promise;
  } catch (e) {
    if (e instanceof Error) throw e;
    throw new Failure(`${what} failed: ${JSON.stringify(e)}`);
  }
}

function short(v) {
  const s = JSON.stringify(v);
  return s && s.length > 400 ? s.slice(0, 400) + '…' : s;
}

export function singleConvID(a, b) {
  return a < b ? `si_${a}_${b}` : `si_${b}_${a}`;
}

export function textOf(m) {
  return m?.textElem?.content;
}

// Fetches a fresh user token over REST with the admin token (a token differing from `other`:
// OpenIM tokens carry whole seconds, so ask again until the clock moved on — bounded).
export async function newUserToken(userID, platformID, other) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = await fetch(`${cfg.apiAddr}/auth/get_user_token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', token: cfg.adminToken, operationID: `tok-${Date.now()}` },
      body: JSON.stringify({ platformID, userID }),
    });
    const env = await r.json();
    check(env.errCode === 0, `get_user_token: ${JSON.stringify(env)}`);
    if (env.data.token !== other || Date.now() > deadline) return env.data.token;
    await new Promise((res) => setTimeout(res, 200)); // waiting for the clock's next second, not for the server
  }
}

export async function rest(path, body, token) {
  const r = await fetch(`${cfg.apiAddr}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', token, operationID: `op-${Date.now()}` },
    body: JSON.stringify(body),
  });
  check(r.status === 200, `${path}: HTTP ${r.status}`);
  return r.json();
}

function trace() {
  for (const c of clients) {
    process.stderr.write(`--- events of ${c.name} (${c.userID}):\n`);
    for (const r of c.events) {
      process.stderr.write(`  +${r.at}ms ${r.event}${r.errCode ? ` err=${r.errCode} ${r.errMsg}` : ''} ${short(r.data) ?? ''}\n`);
    }
  }
}

// Runs a scenario: prints RESULT and exits 0, or FAIL plus the event trace and exits 1. Always
// exits explicitly: the SDK's heartbeat and cache-cleanup timers keep the event loop alive.
export async function run(scenario) {
  // An exception inside the SDK's own event handling (not awaited by anyone) is a failure too.
  const crash = (e) => {
    const text = String(e?.stack || e).split('\n').map((l) => (l.length > 300 ? l.slice(0, 300) + '…' : l));
    process.stdout.write(`FAIL: unhandled error inside the SDK: ${text[0]}\n`);
    process.stderr.write(text.slice(0, 12).join('\n') + '\n');
    trace();
    process.exit(1);
  };
  process.on('unhandledRejection', crash);
  process.on('uncaughtException', crash);
  const hard = setTimeout(() => {
    process.stdout.write('FAIL: scenario did not finish within its overall deadline\n');
    trace();
    process.exit(1);
  }, Number(process.env.IMLOG_SDK_SCENARIO_MS || 120000));
  try {
    const result = await scenario();
    for (const c of clients) {
      try { await c.logout(); } catch (e) { log(`${c.name} logout: ${e.message}`); }
    }
    clearTimeout(hard);
    if (DEBUG) trace();
    process.stdout.write(`RESULT ${JSON.stringify(result ?? {})}\n`);
    process.exit(0);
  } catch (e) {
    process.stdout.write(`FAIL: ${e instanceof Failure ? e.message : e.stack || e}\n`);
    trace();
    process.exit(1);
  }
}
