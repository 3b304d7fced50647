'use strict';
// Helpers shared by tether's Node interop programs.
//
// The peer library is `ws` (tests/interop/package.json). Everything the library refuses to
// do (malformed frames, masked server frames, ...) is done here by hand on raw TCP sockets,
// so the tests can hit tether with exact bytes. Every wait is bounded by a timeout.

const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');

const CASES = JSON.parse(fs.readFileSync(path.join(__dirname, 'cases.json'), 'utf8'));
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // RFC 6455 section 1.3
const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };
const STEP_MS = 5000;
const BIG_MS = 30000; // one 16 MiB round trip

// Load `ws` from tests/interop/node_modules; a missing install is a failure, not a skip.
function requireWs() {
  try {
    return require('ws');
  } catch (err) {
    console.log(`FAIL: node module 'ws' not found (${err.code || err.message}); ` +
      `run 'npm ci' in ${__dirname} to install it`);
    process.exit(1);
  }
}

// ------------------------------------------------------------------ reporting

class TimeoutError extends Error {}

// Reject after `ms` unless `promise` settles first.
function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Report {
  constructor(suite) {
    this.suite = suite;
    this.passed = 0;
    this.failed = [];
  }

  ok(name, detail) {
    this.passed++;
    console.log(`PASS [${this.suite}] ${name}${detail ? ` (${detail})` : ''}`);
  }

  fail(name, detail) {
    this.failed.push(name);
    console.log(`FAIL [${this.suite}] ${name}: ${detail}`);
  }

  check(name, condition, detailIfFailed) {
    if (condition) this.ok(name);
    else this.fail(name, detailIfFailed);
    return condition;
  }

  // Run one case: `fn` resolves to null (pass) or a failure string; throws count as failures.
  async run(name, fn, ms = STEP_MS) {
    let problem;
    try {
      problem = await withTimeout(fn(), ms, 'case');
    } catch (err) {
      problem = err instanceof TimeoutError ? err.message : `${err.name}: ${err.message}`;
    }
    if (problem) this.fail(name, problem);
    else this.ok(name);
    return !problem;
  }

  finish() {
    console.log(`${this.suite}: ${this.passed} passed, ${this.failed.length} failed`);
    if (this.failed.length) console.log(`failed cases:\n  ${this.failed.join('\n  ')}`);
    return this.passed > 0 && this.failed.length === 0 ? 0 : 1;
  }
}

// ------------------------------------------------------------------ payloads
// A message is { binary: bool, data: Buffer }.

// Valid UTF-8 of exactly `size` bytes mixing 1- to 4-byte code points.
function textPayload(size) {
  const text = 'aé€😀'.repeat(Math.floor(size / 10)) + 'x'.repeat(size % 10); // unit = 10 bytes
  const data = Buffer.from(text, 'utf8');
  if (data.length !== size) throw new Error('textPayload size bug');
  return { binary: false, data };
}

function binaryPayload(size) {
  return { binary: true, data: crypto.randomBytes(size) };
}

function describe(msg) {
  return `${msg.binary ? 'binary' : 'text'} message of ${msg.data.length} bytes`;
}

// null when `got` is byte-for-byte `sent` with the same type, else a description.
function compareMessages(sent, got) {
  if (!got) return `expected ${describe(sent)}, got nothing`;
  if (sent.binary !== got.binary) return `type changed: sent ${describe(sent)}, got ${describe(got)}`;
  if (sent.data.equals(got.data)) return null;
  if (sent.data.length !== got.data.length) {
    return `length differs: sent ${sent.data.length} bytes, got ${got.data.length} bytes`;
  }
  let i = 0;
  while (sent.data[i] === got.data[i]) i++;
  return `content differs from byte ${i} on (${sent.data.length} bytes)`;
}

// ------------------------------------------------------------------ frames

function applyMask(data, key) {
  const out = Buffer.from(data);
  for (let i = 0; i < out.length; i++) out[i] ^= key[i & 3];
  return out;
}

// One RFC 6455 frame; deliberately allows every illegal combination.
function encodeFrame(opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0, masked = true } = {}) {
  const n = payload.length;
  let head;
  if (n < 126) {
    head = Buffer.from([0, n]);
  } else if (n < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  if (!masked) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  return Buffer.concat([head, key, applyMask(payload, key)]);
}

// Bytes of one frame described in cases.json (see its _comment).
function frameFromSpec(spec, clientSide) {
  let payload = Buffer.alloc(0);
  if ('text' in spec) payload = Buffer.from(spec.text, 'utf8');
  else if ('hex' in spec) payload = Buffer.from(spec.hex, 'hex');
  else if ('fill' in spec) payload = Buffer.alloc(spec.fill, 'x');
  else if ('close_code' in spec) {
    const code = Buffer.alloc(2);
    code.writeUInt16BE(spec.close_code);
    const reason = 'reason_hex' in spec ? Buffer.from(spec.reason_hex, 'hex') : Buffer.from(spec.reason || '');
    payload = Buffer.concat([code, reason]);
  }
  return encodeFrame(spec.opcode, payload, {
    fin: spec.fin !== undefined ? spec.fin : true,
    rsv: spec.rsv || 0,
    masked: spec.masked !== undefined ? spec.masked : clientSide,
  });
}

// { code, reason }: code null for an empty payload, -1 for a 1-byte one.
function parseClose(payload) {
  if (payload.length === 0) return { code: null, reason: '' };
  if (payload.length === 1) return { code: -1, reason: '' };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('latin1') };
}

class EofError extends Error {}

// Buffered reads with deadlines over a net.Socket.
class SocketReader {
  constructor(sock) {
    this.chunks = [];
    this.length = 0;
    this.ended = false;
    this.wake = null;
    sock.on('data', (d) => { this.chunks.push(d); this.length += d.length; this._notify(); });
    sock.on('end', () => { this.ended = true; this._notify(); });
    sock.on('close', () => { this.ended = true; this._notify(); });
    sock.on('error', () => { this.ended = true; this._notify(); }); // ECONNRESET counts as closed
  }

  _notify() {
    if (this.wake) { const w = this.wake; this.wake = null; w(); }
  }

  _take(n) {
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.length = all.length - n;
    return all.subarray(0, n);
  }

  async _wait(deadline) {
    const ms = deadline - Date.now();
    if (ms <= 0) throw new TimeoutError('read timed out');
    await withTimeout(new Promise((resolve) => { this.wake = resolve; }), ms, 'read');
  }

  async readExactly(n, deadline) {
    while (this.length < n) {
      if (this.ended) throw new EofError(`connection closed (${this.length} of ${n} bytes read)`);
      await this._wait(deadline);
    }
    return this._take(n);
  }

  async readUntil(separator, deadline) {
    for (;;) {
      const all = Buffer.concat(this.chunks);
      const at = all.indexOf(separator);
      if (at >= 0) {
        this.chunks = [all];
        return this._take(at + separator.length);
      }
      if (this.ended) throw new EofError('connection closed before the HTTP head ended');
      await this._wait(deadline);
    }
  }

  async readFrame(ms = STEP_MS) {
    const deadline = Date.now() + Math.max(0, ms);
    const [b0, b1] = await this.readExactly(2, deadline);
    let n = b1 & 0x7f;
    if (n === 126) n = (await this.readExactly(2, deadline)).readUInt16BE(0);
    else if (n === 127) n = Number((await this.readExactly(8, deadline)).readBigUInt64BE(0));
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? await this.readExactly(4, deadline) : null;
    const data = await this.readExactly(n, deadline);
    return { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked,
      payload: masked ? applyMask(data, key) : data };
  }

  // Skip frames until a close frame: { close: frame or null, skipped: [frames], why }; `why`
  // says what happened instead of a close frame, for the failure message.
  async readUntilClose(ms = STEP_MS) {
    const deadline = Date.now() + ms;
    const skipped = [];
    for (;;) {
      let frame;
      let why;
      try {
        frame = await this.readFrame(deadline - Date.now());
      } catch (err) {
        if (err instanceof EofError) why = 'TCP closed without a close frame';
        else if (err instanceof TimeoutError) why = `no close frame within ${ms / 1000} s`;
        else throw err;
      }
      if (why) {
        if (skipped.length) why += ` (frames received before: opcodes [${skipped.map((f) => f.opcode)}])`;
        return { close: null, skipped, why };
      }
      if (frame.opcode === OP.CLOSE) return { close: frame, skipped, why: '' };
      skipped.push(frame);
    }
  }

  // Reassemble one data message; control frames met on the way are returned too.
  async readMessage(ms = STEP_MS) {
    const deadline = Date.now() + ms;
    const controls = [];
    const parts = [];
    let opcode = null;
    for (;;) {
      const frame = await this.readFrame(Math.max(10, deadline - Date.now()));
      if (frame.opcode >= 0x8) {
        controls.push(frame);
        if (frame.opcode === OP.CLOSE) return { opcode: null, payload: Buffer.alloc(0), controls };
        continue;
      }
      if (opcode === null) opcode = frame.opcode;
      parts.push(frame.payload);
      if (frame.fin) return { opcode, payload: Buffer.concat(parts), controls };
    }
  }

  // True when the peer closes TCP (FIN or RST) within `ms`.
  async waitEof(ms) {
    const deadline = Date.now() + ms;
    while (!this.ended) {
      this.chunks = [];
      this.length = 0;
      try {
        await this._wait(deadline);
      } catch (err) {
        return false;
      }
    }
    return true;
  }
}

// ------------------------------------------------------------------ handshakes

const acceptKey = (key) => crypto.createHash('sha1').update(key + GUID).digest('base64');

function parseHttpHead(head) {
  const lines = head.toString('latin1').split('\r\n');
  const headers = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { first: lines[0], headers };
}

// Open TCP and do the client handshake by hand: { sock, reader }.
async function rawClientConnect(host, port, urlPath = '/', ms = STEP_MS) {
  const deadline = Date.now() + ms;
  const sock = net.createConnection({ host, port });
  sock.on('error', () => {}); // surfaced through the reader
  const reader = new SocketReader(sock);
  await withTimeout(new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  }), ms, 'TCP connect');
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(`GET ${urlPath} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const { first, headers } = parseHttpHead(await reader.readUntil(Buffer.from('\r\n\r\n'), deadline));
  if (!first.startsWith('HTTP/1.1 101')) {
    sock.destroy();
    throw new Error(`handshake refused: ${JSON.stringify(first)}`);
  }
  if (headers['sec-websocket-accept'] !== acceptKey(key)) {
    sock.destroy();
    throw new Error(`bad Sec-WebSocket-Accept ${headers['sec-websocket-accept']}`);
  }
  return { sock, reader };
}

// Answer a client handshake by hand: { path, problems } (problems with the request).
async function rawServerHandshake(sock, reader, ms = STEP_MS) {
  const head = await reader.readUntil(Buffer.from('\r\n\r\n'), Date.now() + ms);
  const { first, headers } = parseHttpHead(head);
  const parts = first.split(' ');
  const problems = [];
  if (parts.length !== 3 || parts[0] !== 'GET' || parts[2] !== 'HTTP/1.1') {
    problems.push(`bad request line ${JSON.stringify(first)}`);
  }
  if ((headers.upgrade || '').toLowerCase() !== 'websocket') problems.push(`Upgrade header is ${headers.upgrade}`);
  const tokens = (headers.connection || '').split(',').map((t) => t.trim().toLowerCase());
  if (!tokens.includes('upgrade')) problems.push(`Connection header is ${headers.connection}`);
  if (headers['sec-websocket-version'] !== '13') {
    problems.push(`Sec-WebSocket-Version is ${headers['sec-websocket-version']}`);
  }
  const key = headers['sec-websocket-key'] || '';
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) problems.push(`Sec-WebSocket-Key ${JSON.stringify(key)} is not 16 base64 bytes`);
  sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
  return { path: parts[1] || '/', problems };
}

// ------------------------------------------------------------------ ws library wrapper

// Queue the messages of a `ws` WebSocket so tests can await them one by one.
class WsPeer {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.closed = null; // { code, reason } once the 'close' event fired
    this.wake = null;
    ws.on('message', (data, isBinary) => {
      this.queue.push({ binary: isBinary, data: Buffer.isBuffer(data) ? data : Buffer.concat(data) });
      this._notify();
    });
    ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; this._notify(); });
    ws.on('error', (err) => { this.error = err; });
  }

  _notify() {
    if (this.wake) { const w = this.wake; this.wake = null; w(); }
  }

  async next(ms = STEP_MS) {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      if (this.closed) throw new Error(`connection closed (code ${this.closed.code}) while waiting for a message`);
      await withTimeout(new Promise((resolve) => { this.wake = resolve; }),
        Math.max(1, deadline - Date.now()), 'waiting for a message');
    }
    return this.queue.shift();
  }

  async waitClosed(ms = STEP_MS) {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      await withTimeout(new Promise((resolve) => { this.wake = resolve; }),
        Math.max(1, deadline - Date.now()), 'waiting for the close');
    }
    return this.closed;
  }

  // Send one message, or a list of fragments as one fragmented message.
  send(msg) {
    const frags = Array.isArray(msg.data) ? msg.data : [msg.data];
    return Promise.all(frags.map((data, i) => new Promise((resolve, reject) => {
      this.ws.send(data, { binary: msg.binary, fin: i === frags.length - 1 },
        (err) => (err ? reject(err) : resolve()));
    })));
  }

  // Ping with `payload`; null when the pong carries the same payload.
  async ping(payload, ms = STEP_MS) {
    const pong = new Promise((resolve) => this.ws.once('pong', resolve));
    this.ws.ping(payload);
    const data = await withTimeout(pong, ms, 'waiting for the pong');
    return data.equals(payload) ? null : `pong payload ${data.toString('hex')} != ping payload ${payload.toString('hex')}`;
  }

  async close(code, reason, ms = STEP_MS) {
    this.ws.close(code, reason);
    return this.waitClosed(ms);
  }
}

// A whole-message view of a WsPeer.send() argument (fragments joined).
function wholeMessage(msg) {
  return Array.isArray(msg.data) ? { binary: msg.binary, data: Buffer.concat(msg.data) } : msg;
}

// ------------------------------------------------------------------ tether processes

function waitExit(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return withTimeout(new Promise((resolve) => proc.once('exit', (code) => resolve(code))), ms, 'waiting for exit')
    .catch(() => undefined); // undefined: still running
}

function kill(proc) {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}

// Split a stream into lines without quadratic copying (a 16 MiB message is one ~22 MB line).
function onLines(stream, callback) {
  let pending = [];
  stream.on('data', (chunk) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      callback(Buffer.concat(pending).toString('utf8'));
      pending = [];
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  });
}

// `tether serve --host 127.0.0.1 --port 0 --mode echo`; resolves once the listening line is read.
async function startTetherServe(tether, ms = 10000) {
  const proc = spawn(tether, ['serve', '--host', '127.0.0.1', '--port', '0', '--mode', 'echo'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = new Promise((resolve, reject) => {
    proc.once('error', (err) => reject(new Error(`cannot start ${tether}: ${err.message}`)));
    proc.once('exit', (code) => reject(new Error(`tether serve exited with status ${code} before printing a line`)));
    let seen = false;
    onLines(proc.stdout, (line) => { if (!seen) { seen = true; resolve(line); } });
  });
  let line;
  try {
    line = await withTimeout(first, ms, 'waiting for the listening line');
  } catch (err) {
    kill(proc);
    throw err;
  }
  const m = /^listening (ws:\/\/(\S+):(\d+))$/.exec(line);
  if (!m) {
    kill(proc);
    throw new Error(`first stdout line of tether serve is ${JSON.stringify(line)}, expected 'listening ws://HOST:PORT'`);
  }
  return { proc, url: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

// `tether connect URL --echo --json-events`, collecting its JSON event lines.
function startTetherConnect(tether, url) {
  const proc = spawn(tether, ['connect', url, '--echo', '--json-events', '--no-reconnect'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const client = { proc, events: [], badLines: [], spawnError: null };
  proc.on('error', (err) => { client.spawnError = `cannot start ${tether}: ${err.message}`; });
  client.stdoutDone = new Promise((resolve) => proc.stdout.on('end', resolve));
  onLines(proc.stdout, (line) => {
    try {
      const ev = JSON.parse(line);
      if (typeof ev !== 'object' || ev === null || !('event' in ev)) throw new Error('no event key');
      client.events.push(ev);
    } catch (err) {
      client.badLines.push(line.slice(0, 200));
    }
  });
  client.ofKind = (kind) => client.events.filter((e) => e.event === kind);
  return client;
}

// The message a JSON 'message' event stands for.
function eventMessage(ev) {
  if (ev.type === 'text') return { binary: false, data: Buffer.from(ev.data, 'utf8') };
  if (ev.type === 'binary') return { binary: true, data: Buffer.from(ev.base64, 'base64') };
  throw new Error(`unknown message type ${ev.type}`);
}

function parseArgs(argv) {
  const args = { tether: null, group: 'all' };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--tether') args.tether = argv[i + 1];
    else if (argv[i] === '--group') args.group = argv[i + 1];
    else { console.log(`FAIL: unknown argument ${argv[i]}`); process.exit(2); }
  }
  if (!args.tether || !['echo', 'violations', 'all'].includes(args.group)) {
    console.log('usage: --tether PATH [--group echo|violations|all]');
    process.exit(2);
  }
  return args;
}

// Hard cap under ctest's TIMEOUT, so children are always reaped.
function capRuntime(ms, children) {
  setTimeout(() => {
    console.log(`FAIL: the whole program exceeded ${ms / 1000} s`);
    for (const c of children) kill(c);
    process.exit(1);
  }, ms).unref();
}

module.exports = {
  CASES, OP, STEP_MS, BIG_MS, TimeoutError, EofError, requireWs, withTimeout, sleep, Report,
  textPayload, binaryPayload, describe, compareMessages, encodeFrame, frameFromSpec, parseClose,
  SocketReader, rawClientConnect, rawServerHandshake, WsPeer, wholeMessage, waitExit, kill,
  startTetherServe, startTetherConnect, eventMessage, parseArgs, capRuntime,
};
