#!/usr/bin/node
'use strict';
// permessage-deflate (RFC 7692) interop with Node's `ws` (tests/interop/package.json).
//
// Groups (--group):
//   serve    `tether serve --deflate[-options ...]` <- ws clients with perMessageDeflate variants
//            ({serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits,
//            clientMaxWindowBits, threshold: 0}): the Sec-WebSocket-Extensions response (seen in the
//            'upgrade' event) must follow RFC 7692 §7.1 and tether's options, ws.extensions must
//            say permessage-deflate, and mixed messages (tiny, 100 KiB JSON, random binary, a
//            periodic block, the same text repeated, fragments, 1 MiB) echo exactly on one
//            connection. An offer tether must decline (serverMaxWindowBits 8) opens without it.
//   connect  ws WebSocketServer({perMessageDeflate: variants}) -> `tether connect
//            --deflate[-options ...] --echo --json-events`: tether's offer says what its options
//            set, the extension is negotiated when ws accepts the offer (and not when ws declines
//            it), the server's messages echo exactly, the JSON events match, close 1000 is clean
//            and tether exits 0.
// PASS/FAIL per case; every wait is bounded; exit status 1 on any failure.

const crypto = require('crypto');
const { spawn } = require('child_process');
const c = require('./common');

const WebSocket = c.requireWs();
const { WebSocketServer } = WebSocket;

const TOTAL_MS = 100000;
const MIB = 1024 * 1024;

function parseArgs(argv) {
  const args = { tether: null, group: 'all' };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--tether') args.tether = argv[i + 1];
    else if (argv[i] === '--group') args.group = argv[i + 1];
    else { console.log(`FAIL: unknown argument ${argv[i]}`); process.exit(2); }
  }
  if (!args.tether || !['serve', 'connect', 'all'].includes(args.group)) {
    console.log('usage: --tether PATH [--group serve|connect|all]');
    process.exit(2);
  }
  return args;
}

// ------------------------------------------------------------------ headers and the RFC 7692 model

// "permessage-deflate; a; b=1, x" -> [{ name, params: [[k, v|null]] }]
function parseExtensions(header) {
  if (!header) return [];
  return header.split(',').map((elem) => {
    const [name, ...params] = elem.split(';').map((s) => s.trim());
    return {
      name,
      params: params.filter((p) => p).map((p) => {
        const eq = p.indexOf('=');
        if (eq < 0) return [p, null];
        return [p.slice(0, eq).trim(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')];
      }),
    };
  });
}

const fmt = (params) => ['permessage-deflate', ...params.map(([k, v]) => (v === null ? k : `${k}=${v}`))].join('; ');

// tether's DeflateOptions as set by the flags (--deflate alone: both no_context_takeover).
function cfg(o = {}) {
  return { snct: false, cnct: false, smwb: 15, cmwb: 15, threshold: 64, ...o };
}

// RFC 7692 §7.1 rules for a response `resp` ([[k, v]]) to the offer `offer` ({k: v|null}).
function rfcProblems(offer, resp) {
  const problems = [];
  const names = resp.map(([k]) => k);
  const r = Object.fromEntries(resp);
  for (const n of new Set(names)) if (names.filter((x) => x === n).length > 1) problems.push(`duplicate ${n}`);
  for (const [k, v] of resp) {
    if (!['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits',
      'client_max_window_bits'].includes(k)) problems.push(`unknown parameter ${k}`);
    else if (k.endsWith('context_takeover') && v !== null) problems.push(`${k} has a value`);
    else if (k.endsWith('window_bits') && !/^([89]|1[0-5])$/.test(v || '')) problems.push(`${k}=${v} is not 8..15`);
  }
  if ('server_no_context_takeover' in offer && !('server_no_context_takeover' in r)) {
    problems.push('offered server_no_context_takeover not repeated (§7.1.1.1)');
  }
  if (!('client_max_window_bits' in offer) && 'client_max_window_bits' in r) {
    problems.push('client_max_window_bits in the response to an offer without it (§7.1.2.2)');
  }
  for (const n of ['server_max_window_bits', 'client_max_window_bits']) {
    if (offer[n] && r[n] && Number(r[n]) > Number(offer[n])) problems.push(`${n}=${r[n]} larger than offered ${offer[n]}`);
  }
  return problems;
}

// What tether serve answers: [required {k: v}, optional {k: v}].
function tetherResponse(offer, o) {
  const req = {};
  const opt = {};
  if (o.snct || 'server_no_context_takeover' in offer) req.server_no_context_takeover = null;
  if (o.cnct) req.client_no_context_takeover = null;
  else if ('client_no_context_takeover' in offer) opt.client_no_context_takeover = null;
  if (offer.server_max_window_bits) req.server_max_window_bits = String(Math.min(Number(offer.server_max_window_bits), o.smwb));
  else if (o.smwb < 15) req.server_max_window_bits = String(o.smwb);
  if ('client_max_window_bits' in offer) {
    const limit = Math.min(o.cmwb, Number(offer.client_max_window_bits || 15));
    if (limit < 15) req.client_max_window_bits = String(limit);
    else opt.client_max_window_bits = '15';
  }
  return [req, opt];
}

function modelProblems(resp, req, opt) {
  const got = Object.fromEntries(resp);
  const problems = [];
  for (const [k, v] of Object.entries(req)) {
    if (!(k in got)) problems.push(`missing ${k}${v === null ? '' : `=${v}`}`);
    else if (got[k] !== v) problems.push(`${k}=${got[k]}, expected ${v}`);
  }
  for (const [k, v] of Object.entries(got)) {
    if (!(k in req) && (!(k in opt) || opt[k] !== v)) problems.push(`unexpected ${k}${v === null ? '' : `=${v}`}`);
  }
  return problems;
}

// ------------------------------------------------------------------ payloads

function jsonText(size, seed) {
  let x = seed + 1;
  const rnd = (n) => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x % n; };
  const items = [];
  let n = 2;
  while (n < size) {
    const s = JSON.stringify({ id: items.length, user: `user-${rnd(50)}`, ok: rnd(2) === 1,
      text: 'é€😀 tether deflate '.repeat(1 + rnd(3)), n: rnd(1000000) });
    items.push(s);
    n += Buffer.byteLength(s) + 1;
  }
  return `[${items.join(',')}]`;
}

function periodic(size, period, seed) {
  const block = crypto.createHash('sha512').update(String(seed)).digest();
  const blocks = [];
  for (let i = 0; i * 64 < period; i++) blocks.push(crypto.createHash('sha512').update(block).update(String(i)).digest());
  const unit = Buffer.concat(blocks).subarray(0, period);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += period) unit.copy(out, i);
  return out;
}

const text = (s) => ({ binary: false, data: Buffer.from(s, 'utf8') });
const MESSAGES = (() => {
  const json8 = jsonText(8 * 1024, 4);
  return [
    ['2-byte text', text('hi')],
    ['empty binary', { binary: true, data: Buffer.alloc(0) }],
    ['100 KiB JSON text', text(jsonText(100 * 1024, 1))],
    ['32 KiB random binary', c.binaryPayload(32 * 1024)],
    ['64 KiB binary: a random 4 KiB block repeated', { binary: true, data: periodic(64 * 1024, 4096, 7) }],
    ['8 KiB JSON text (1st)', text(json8)],
    ['8 KiB JSON text (2nd, same)', text(json8)],
    ['8 KiB JSON text (3rd, same)', text(json8)],
    ['fragmented text, 3 frames', { binary: false, data: ['frag-'.repeat(100), 'é€😀'.repeat(50), '-end'.repeat(30)].map((s) => Buffer.from(s)) }],
    ['1 MiB JSON text', text(jsonText(MIB, 3))],
  ];
})();

async function echoAll(peer) {
  const problems = [];
  for (const [name, msg] of MESSAGES) {
    let got;
    try {
      await peer.send(msg);
      got = await peer.next(msg.data.length > 500000 ? c.BIG_MS : c.STEP_MS);
    } catch (err) {
      // Name the message whose echo broke the connection, and what ws said about it.
      problems.push(`${name}: ${err.message}${peer.error ? ` (ws error: ${peer.error.message})` : ''}`);
      return problems;
    }
    const p = c.compareMessages(c.wholeMessage(msg), got);
    if (p) problems.push(`${name}: ${p}`);
  }
  const pong = await peer.ping(Buffer.from('ping between compressed messages'));
  if (pong) problems.push(pong);
  return problems;
}

// ------------------------------------------------------------------ serve

const SERVE_CONFIGS = [
  ['--deflate', ['--deflate'], cfg({ snct: true, cnct: true })],
  ['--deflate-options none', ['--deflate-options', 'none'], cfg()],
  ['--deflate-options server_max_window_bits=10,client_max_window_bits=12',
    ['--deflate-options', 'server_max_window_bits=10,client_max_window_bits=12'], cfg({ smwb: 10, cmwb: 12 })],
];

const CLIENT_VARIANTS = [
  ['ws defaults (perMessageDeflate: true)', true],
  ['threshold 0', { threshold: 0 }],
  ['serverNoContextTakeover', { serverNoContextTakeover: true, threshold: 0 }],
  ['clientNoContextTakeover', { clientNoContextTakeover: true, threshold: 0 }],
  ['serverMaxWindowBits 9', { serverMaxWindowBits: 9, threshold: 0 }],
  ['serverMaxWindowBits 12, clientMaxWindowBits 10', { serverMaxWindowBits: 12, clientMaxWindowBits: 10, threshold: 0 }],
  ['clientMaxWindowBits 9', { clientMaxWindowBits: 9, threshold: 0 }],
  ['clientMaxWindowBits not offered', { clientMaxWindowBits: false, threshold: 0 }],
  ['all four parameters at 15', { serverNoContextTakeover: true, clientNoContextTakeover: true,
    serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 0 }],
];

async function connectWs(url, perMessageDeflate) {
  const ws = new WebSocket(url, { perMessageDeflate, maxPayload: 64 * MIB });
  const sentOffer = ws._req ? ws._req.getHeader('sec-websocket-extensions') : undefined;
  const upgrade = new Promise((resolve) => ws.once('upgrade', (res) => resolve(res.headers)));
  const peer = new c.WsPeer(ws);
  await c.withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), c.STEP_MS, `connecting to ${url}`);
  return { peer, headers: await upgrade, sentOffer };
}

// The offer ws's PerMessageDeflate.offer() makes for these options (ws/lib/permessage-deflate.js;
// the module is not exported, so its rules are restated): {param: value or null (bare)}.
function wsOffer(perMessageDeflate) {
  const o = perMessageDeflate === true ? {} : perMessageDeflate;
  const offer = {};
  if (o.serverNoContextTakeover) offer.server_no_context_takeover = null;
  if (o.clientNoContextTakeover) offer.client_no_context_takeover = null;
  if (o.serverMaxWindowBits) offer.server_max_window_bits = String(o.serverMaxWindowBits);
  if (o.clientMaxWindowBits) offer.client_max_window_bits = o.clientMaxWindowBits === true ? null : String(o.clientMaxWindowBits);
  else if (o.clientMaxWindowBits == null) offer.client_max_window_bits = null;
  return offer;
}

async function serveVariant(server, cfgName, o, name, pmd) {
  const offer = wsOffer(pmd);
  const { peer, headers, sentOffer } = await connectWs(`${server.url}/`, pmd);
  try {
    const respHeader = headers['sec-websocket-extensions'] || '';
    const elems = parseExtensions(respHeader);
    const problems = [];
    if (sentOffer !== undefined && sentOffer !== fmt(Object.entries(offer))) {
      problems.push(`harness: ws sent ${JSON.stringify(sentOffer)}, the model says ${JSON.stringify(fmt(Object.entries(offer)))}`);
    }
    if (elems.length !== 1 || elems[0].name !== 'permessage-deflate') {
      problems.push(`response Sec-WebSocket-Extensions ${JSON.stringify(respHeader)}, expected one permessage-deflate element`);
    } else {
      const resp = elems[0].params;
      problems.push(...rfcProblems(offer, resp).map((p) => `RFC 7692: ${p}`));
      const [req, opt] = tetherResponse(offer, o);
      const m = modelProblems(resp, req, opt);
      if (m.length) problems.push(`response ${JSON.stringify(respHeader)}, expected ${JSON.stringify(fmt(Object.entries(req)))}: ${m.join('; ')}`);
    }
    if (peer.ws.extensions !== 'permessage-deflate') problems.push(`ws.extensions ${JSON.stringify(peer.ws.extensions)}`);
    problems.push(...await echoAll(peer));
    const closed = await peer.close(1000);
    if (closed.code !== 1000) problems.push(`close 1000 echoed as ${closed.code}`);
    if (!problems.length) console.log(`note: [${cfgName}] ${name}: offer ${JSON.stringify(fmt(Object.entries(offer)))} -> ${JSON.stringify(respHeader)}`);
    return problems.join('; ') || null;
  } finally {
    peer.ws.terminate();
  }
}

async function serveGroup(report, tether, children) {
  for (const [cfgName, args, o] of SERVE_CONFIGS) {
    let server;
    try {
      server = await startServe(tether, args);
    } catch (err) {
      report.fail(`start tether serve ${args.join(' ')}`, err.message);
      continue;
    }
    children.push(server.proc);
    try {
      for (const [name, pmd] of CLIENT_VARIANTS) {
        await report.run(`[${cfgName}] ws client ${name}: response, ws.extensions, mixed echo`,
          () => serveVariant(server, cfgName, o, name, pmd), c.BIG_MS);
      }
      if (cfgName === '--deflate') {
        await report.run(`[${cfgName}] ws client serverMaxWindowBits 8: declined, ws.extensions empty, echo`, async () => {
          const { peer, headers } = await connectWs(`${server.url}/`, { serverMaxWindowBits: 8, threshold: 0 });
          try {
            if (headers['sec-websocket-extensions']) return `response extensions ${headers['sec-websocket-extensions']}`;
            if (peer.ws.extensions !== '') return `ws.extensions ${JSON.stringify(peer.ws.extensions)}`;
            const problems = await echoAll(peer);
            await peer.close(1000);
            return problems.join('; ') || null;
          } finally {
            peer.ws.terminate();
          }
        }, c.BIG_MS);
        await report.run(`[${cfgName}] 10 parallel ws deflate clients each echo the message set`, async () => {
          const results = await Promise.all([...Array(10).keys()].map(async (i) => {
            const { peer } = await connectWs(`${server.url}/`, { threshold: 0, serverNoContextTakeover: i % 2 === 0 });
            try {
              const p = await echoAll(peer);
              await peer.close(1000);
              return p.length ? `client ${i}: ${p.join('; ')}` : null;
            } finally {
              peer.ws.terminate();
            }
          }));
          return results.filter((r) => r).join('; ') || null;
        }, c.BIG_MS);
      }
    } finally {
      c.kill(server.proc);
    }
  }
}

// `tether serve --host 127.0.0.1 --port 0 --mode echo ARGS`, listening line read.
async function startServe(tether, extra, ms = 10000) {
  const proc = spawn(tether, ['serve', '--host', '127.0.0.1', '--port', '0', '--mode', 'echo', ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = new Promise((resolve, reject) => {
    proc.once('error', (err) => reject(new Error(`cannot start ${tether}: ${err.message}`)));
    proc.once('exit', (code) => reject(new Error(`tether serve exited with status ${code}`)));
    let buf = '';
    let seen = false;
    proc.stdout.on('data', (d) => {
      if (seen) return;
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) { seen = true; resolve(buf.slice(0, nl)); }
    });
  });
  let line;
  try {
    line = await c.withTimeout(first, ms, 'waiting for the listening line');
  } catch (err) {
    c.kill(proc);
    throw err;
  }
  const m = /^listening (ws:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
  if (!m) {
    c.kill(proc);
    throw new Error(`first stdout line of tether serve is ${JSON.stringify(line)}`);
  }
  return { proc, url: m[1], port: Number(m[2]) };
}

// ------------------------------------------------------------------ connect

const CONNECT_CONFIGS = [
  ['--deflate', ['--deflate'], cfg({ snct: true, cnct: true })],
  ['--deflate-options none', ['--deflate-options', 'none'], cfg()],
  ['--deflate-options server_max_window_bits=12,client_max_window_bits=11,threshold=0',
    ['--deflate-options', 'server_max_window_bits=12,client_max_window_bits=11,threshold=0'],
    cfg({ smwb: 12, cmwb: 11, threshold: 0 })],
];

const SERVER_VARIANTS = [
  ['ws server defaults (perMessageDeflate: true)', true],
  ['both no_context_takeover, threshold 0', { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 }],
  ['serverMaxWindowBits 10, threshold 0', { serverMaxWindowBits: 10, threshold: 0 }],
  ['clientMaxWindowBits 9, threshold 0', { clientMaxWindowBits: 9, threshold: 0 }],
  ['serverMaxWindowBits 15 + clientMaxWindowBits 15, threshold 0', { serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 0 }],
  ['serverNoContextTakeover false (rejects offers asking for it), threshold 0', { serverNoContextTakeover: false, threshold: 0 }],
];

// Whether ws's acceptAsServer takes tether's offer (ws/lib/permessage-deflate.js); when it does
// not, ws fails the whole handshake with 400 rather than declining the extension.
function wsAccepts(opts, o) {
  if (opts === true) opts = {};
  if (opts.serverNoContextTakeover === false && o.snct) return false;
  if (o.smwb < 15 && (opts.serverMaxWindowBits === false
    || (typeof opts.serverMaxWindowBits === 'number' && opts.serverMaxWindowBits > o.smwb))) return false;
  return true;
}

function offerProblems(header, o) {
  const elems = parseExtensions(header).filter((e) => e.name === 'permessage-deflate');
  if (elems.length !== 1) return [`offer ${JSON.stringify(header)}: expected one permessage-deflate element`];
  const want = {};
  if (o.snct) want.server_no_context_takeover = null;
  if (o.cnct) want.client_no_context_takeover = null;
  if (o.smwb < 15) want.server_max_window_bits = String(o.smwb);
  if (o.cmwb < 15) want.client_max_window_bits = String(o.cmwb);
  const opt = o.cmwb < 15 ? {} : { client_max_window_bits: null };
  return modelProblems(elems[0].params, want, opt).map((p) => `offer ${JSON.stringify(header)}: ${p}`);
}

function startConnect(tether, url, extra) {
  const proc = spawn(tether, ['connect', url, '--echo', '--json-events', '--no-reconnect', ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const client = { proc, events: [], badLines: [] };
  proc.on('error', (err) => { client.spawnError = err.message; });
  let pending = [];
  proc.stdout.on('data', (chunk) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      const line = Buffer.concat(pending).toString('utf8');
      pending = [];
      start = nl + 1;
      try { client.events.push(JSON.parse(line)); } catch (err) { client.badLines.push(line.slice(0, 200)); }
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  });
  client.ofKind = (k) => client.events.filter((e) => e.event === k);
  return client;
}

async function startWsServer(perMessageDeflate) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate, maxPayload: 64 * MIB });
  await c.withTimeout(new Promise((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  }), c.STEP_MS, 'starting a ws server');
  const s = { wss, port: wss.address().port, waiters: [], responseHeaders: [] };
  wss.on('headers', (headers) => {
    s.responseHeaders.push(headers.find((h) => /^sec-websocket-extensions:/i.test(h)) || '');
  });
  wss.on('connection', (ws, req) => {
    const w = s.waiters.shift();
    if (w) w({ ws, offer: req.headers['sec-websocket-extensions'] || '', response: s.responseHeaders.shift() });
    else ws.terminate();
  });
  s.next = (ms) => {
    let waiter;
    const p = new Promise((resolve) => { waiter = resolve; s.waiters.push(resolve); });
    // A waiter that timed out must not take the next case's connection.
    return c.withTimeout(p, ms, 'waiting for tether to connect').finally(() => {
      s.waiters = s.waiters.filter((w) => w !== waiter);
    });
  };
  return s;
}

// ws's server cannot decline an offer it does not like: it answers 400 ("Invalid or unacceptable
// Sec-WebSocket-Extensions header"). tether must report that as a failed handshake and exit 1.
async function connectRejected(tether, server, args) {
  const client = startConnect(tether, `ws://127.0.0.1:${server.port}/`, args);
  try {
    const rc = await c.waitExit(client.proc, c.STEP_MS * 2);
    const closes = client.ofKind('close');
    const problems = [];
    if (client.ofKind('open').length) problems.push('an open event was printed');
    if (closes.length !== 1 || closes[0].cause !== 'handshake_failed') {
      problems.push(`close events ${JSON.stringify(closes)}, expected one with cause handshake_failed`);
    } else {
      console.log(`note: ws answered 400: ${JSON.stringify(closes[0])}`);
    }
    if (rc !== 1) problems.push(`exit status ${rc}, expected 1`);
    return problems.join('; ') || null;
  } finally {
    c.kill(client.proc);
  }
}

async function connectVariant(tether, server, args, o, pmd) {
  if (!wsAccepts(pmd, o)) return connectRejected(tether, server, args);
  const conn = server.next(c.STEP_MS * 2);
  const client = startConnect(tether, `ws://127.0.0.1:${server.port}/`, args);
  try {
    const { ws, offer, response } = await conn;
    const peer = new c.WsPeer(ws);
    const problems = offerProblems(offer, o);
    if (ws.extensions !== 'permessage-deflate') {
      problems.push(`permessage-deflate not negotiated (offer ${JSON.stringify(offer)}, response ${JSON.stringify(response)})`);
    }
    problems.push(...(await echoAll(peer)).map((p) => `server side: ${p}`));
    await peer.close(1000, 'deflate done');
    const rc = await c.waitExit(client.proc, c.STEP_MS);
    const messages = client.ofKind('message').map(c.eventMessage);
    const sent = MESSAGES.map(([, m]) => c.wholeMessage(m));
    if (messages.length !== sent.length || messages.some((m, i) => c.compareMessages(sent[i], m))) {
      problems.push(`JSON message events (${messages.length}) differ from the ${sent.length} messages sent`);
    }
    const closes = client.ofKind('close');
    if (closes.length !== 1 || closes[0].code !== 1000 || closes[0].clean !== true || closes[0].cause !== 'remote_close') {
      problems.push(`close events ${JSON.stringify(closes)}, expected one with code 1000, clean, remote_close`);
    }
    if (rc !== 0) problems.push(`exit status ${rc}`);
    if (client.badLines.length) problems.push(`non-JSON lines ${client.badLines.slice(0, 2)}`);
    if (!problems.length) console.log(`note: offer ${JSON.stringify(offer)} -> ${JSON.stringify(response)}`);
    return problems.join('; ') || null;
  } finally {
    c.kill(client.proc);
  }
}
async function connectGroup(report, tether) {
  const servers = [];
  try {
    for (const [name, pmd] of SERVER_VARIANTS) servers.push([name, pmd, await startWsServer(pmd)]);
    for (const [cfgName, args, o] of CONNECT_CONFIGS) {
      for (const [name, pmd, server] of servers) {
        const what = wsAccepts(pmd, o) ? 'offer, negotiated, echo, close 1000'
          : 'ws rejects the offer with 400: handshake_failed, exit 1';
        await report.run(`[tether connect ${cfgName}] <- ${name}: ${what}`,
          () => connectVariant(tether, server, args, o, pmd), c.BIG_MS);
      }
    }
  } finally {
    for (const [, , s] of servers) {
      for (const ws of s.wss.clients) ws.terminate();
      s.wss.close();
    }
  }
}

// ------------------------------------------------------------------ main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const report = new c.Report(`deflate node ws [${args.group}]`);
  const t0 = Date.now();
  const children = [];
  c.capRuntime(TOTAL_MS, children);
  try {
    if (args.group === 'serve' || args.group === 'all') await serveGroup(report, args.tether, children);
    if (args.group === 'connect' || args.group === 'all') await connectGroup(report, args.tether);
  } catch (err) {
    report.fail('harness', err.stack);
  } finally {
    for (const p of children) c.kill(p);
  }
  console.log(`note: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
  return report.finish();
}

main().then((code) => process.exit(code), (err) => {
  console.log(`FAIL: ${err.stack}`);
  process.exit(1);
});
