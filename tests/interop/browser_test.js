#!/usr/bin/node
'use strict';
// Browser interop: `tether serve --mode echo` <- the WebSocket API of a real headless Chromium
// (Debian's /usr/bin/chromium, driven by the npm package playwright-core).
//
// The page is a blank HTML page served from 127.0.0.1 by this program: Chromium's Local Network
// Access checks block a WebSocket to a loopback address from about:blank or a data: URL
// (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS), but not from a page that is on loopback
// itself, as a page served next to a local tether would be.
//
// Case 1: the page opens a WebSocket and sends a non-ASCII text message, a 70000-byte binary
//         message with a known byte pattern and an empty text message; each echo must come back
//         exact and with its type. Then ws.close(1000, "done"): the close event must say code
//         1000 and wasClean (its reason is printed; tether echoes only the code).
// Case 2: a second WebSocket is open when the server gets SIGTERM: the page's close event must
//         say code 1012 (service restart) and wasClean, and tether must exit 0 within 5 s.
//
// A missing playwright-core or Chromium is a failure, never a skip. Every wait is bounded, both
// inside the page and around each page.evaluate(); the whole program stops itself after 90 s.

const fs = require('fs');
const http = require('http');
const c = require('./common');

const DEFAULT_CHROMIUM = '/usr/bin/chromium';
// Chromium must not try to reach the network: on a closed network its background requests get
// refused and that breaks its own connections too.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LAUNCH_MS = 30000;
const PAGE_MS = 10000; // one wait inside the page
const EVAL_MS = PAGE_MS + 3000; // the page.evaluate() around it
const TOTAL_MS = 90000; // under ctest's TIMEOUT of 120 s

const TEXT = 'héllo 🌍';
const BINARY_SIZE = 70000;

function parseArgs(argv) {
  const args = { tether: null, chromium: DEFAULT_CHROMIUM };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--tether') args.tether = argv[i + 1];
    else if (argv[i] === '--chromium') args.chromium = argv[i + 1];
    else if (argv[i] === '--group' && argv[i + 1] === 'all') continue; // what CMake's helper passes
    else { console.log(`FAIL: unknown argument ${argv[i]} ${argv[i + 1] || ''}`); process.exit(2); }
  }
  if (!args.tether || !args.chromium) {
    console.log('usage: --tether PATH [--chromium PATH] [--group all]');
    process.exit(2);
  }
  return args;
}

function requirePlaywright() {
  try {
    return require('playwright-core');
  } catch (err) {
    console.log(`FAIL: node module 'playwright-core' not found (${err.code || err.message}); ` +
      `run 'npm ci' in ${__dirname} (scripts/deps.sh does) to install it`);
    process.exit(1);
  }
}

function checkChromium(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch (err) {
    console.log(`FAIL: no Chromium at ${file} (${err.code}); install Debian's 'chromium' package ` +
      '(scripts/deps.sh does, as root)');
    process.exit(1);
  }
}

// ------------------------------------------------------------------ in the page
// Evaluated in the page once: window.tt keeps each WebSocket's received messages and its close
// event, so no event is lost between two page.evaluate() calls. Every wait rejects after `ms`.
function pageHarness() {
  const sockets = {};
  const pattern = (i) => (i * 31 + 7) & 0xff;
  const until = (what, ms, ready, s) => new Promise((resolve, reject) => {
    const poll = () => {
      let value;
      try {
        value = ready();
      } catch (err) {
        clearTimeout(timer);
        s.wake = null;
        reject(err);
        return;
      }
      if (value !== undefined) { clearTimeout(timer); s.wake = null; resolve(value); }
    };
    const timer = setTimeout(() => { s.wake = null; reject(new Error(`${what}: nothing within ${ms / 1000} s`)); }, ms);
    s.wake = poll;
    poll();
  });
  const describe = (data) => {
    if (typeof data === 'string') {
      return { type: 'text', text: data, utf8Bytes: new TextEncoder().encode(data).length };
    }
    if (data instanceof ArrayBuffer) {
      const bytes = new Uint8Array(data);
      let firstMismatch = -1;
      for (let i = 0; i < bytes.length; i++) if (bytes[i] !== pattern(i)) { firstMismatch = i; break; }
      return { type: 'binary', length: bytes.length, firstMismatch };
    }
    return { type: Object.prototype.toString.call(data) };
  };
  window.tt = {
    open(id, url, ms) {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      const s = { ws, messages: [], close: null, errors: 0, opened: false, wake: null };
      sockets[id] = s;
      const notify = () => { if (s.wake) s.wake(); };
      ws.onopen = () => { s.opened = true; notify(); };
      ws.onmessage = (ev) => { s.messages.push(describe(ev.data)); notify(); };
      ws.onerror = () => { s.errors++; notify(); };
      ws.onclose = (ev) => {
        s.close = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean, at: Date.now() };
        notify();
      };
      return until(`opening ${url}`, ms, () => {
        if (s.opened) return { protocol: ws.protocol, extensions: ws.extensions };
        if (s.close) throw new Error(`closed before opening (code ${s.close.code}, ${s.errors} error events)`);
        return undefined;
      }, s);
    },
    sendText(id, text) { sockets[id].ws.send(text); },
    sendPattern(id, size) {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = pattern(i);
      sockets[id].ws.send(bytes.buffer);
    },
    next(id, ms) {
      const s = sockets[id];
      return until('waiting for a message', ms, () => {
        if (s.messages.length) return s.messages.shift();
        if (s.close) throw new Error(`connection closed (code ${s.close.code}) while waiting for a message`);
        return undefined;
      }, s);
    },
    close(id, code, reason) { sockets[id].ws.close(code, reason); },
    waitClose(id, ms) {
      const s = sockets[id];
      return until('waiting for the close event', ms,
        () => (s.close ? { ...s.close, errors: s.errors, unread: s.messages.length } : undefined), s);
    },
  };
}

// A blank HTML page on http://127.0.0.1:PORT/ for the page to be loaded from.
async function startPageServer() {
  const server = http.createServer((req, res) => {
    if (req.url === '/favicon.ico') { res.writeHead(204).end(); return; }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end('<!doctype html><meta charset="utf-8"><title>tether browser interop</title>\n');
  });
  await c.withTimeout(new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  }), PAGE_MS, 'starting the page server');
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

// The first line of an error: playwright appends the page's stack to evaluate() errors.
const firstLine = (err) => `${err.name}: ${String(err.message).split('\n')[0]}`;

// page.evaluate() with a bound on the node side too (a hung or crashed page rejects).
function inPage(page, what, fn, arg) {
  return c.withTimeout(page.evaluate(fn, arg), EVAL_MS, what);
}

// ------------------------------------------------------------------ cases

function checkEcho(got, expect) {
  if (got.type !== expect.type) return `came back as ${got.type}, sent as ${expect.type}`;
  if (expect.type === 'text') {
    if (got.text !== expect.text) {
      return `got ${JSON.stringify(got.text)} (${got.utf8Bytes} UTF-8 bytes), sent ${JSON.stringify(expect.text)}`;
    }
    return null;
  }
  if (got.length !== expect.length) return `got ${got.length} bytes, sent ${expect.length}`;
  if (got.firstMismatch >= 0) return `content differs from byte ${got.firstMismatch} on`;
  return null;
}

async function echoAndClose(report, page, url) {
  const opened = await inPage(page, 'opening a WebSocket', ([u, ms]) => window.tt.open('a', u, ms), [url, PAGE_MS]);
  report.ok(`the page's WebSocket opens ${url}`,
    `protocol ${JSON.stringify(opened.protocol)}, extensions ${JSON.stringify(opened.extensions)}`);

  await inPage(page, 'sending', ([text, size]) => {
    window.tt.sendText('a', text);
    window.tt.sendPattern('a', size);
    window.tt.sendText('a', '');
  }, [TEXT, BINARY_SIZE]);
  const expected = [
    [`echo text ${JSON.stringify(TEXT)} (${Buffer.byteLength(TEXT)} UTF-8 bytes)`, { type: 'text', text: TEXT }],
    [`echo binary ArrayBuffer of ${BINARY_SIZE} bytes, byte-exact`, { type: 'binary', length: BINARY_SIZE }],
    ['echo empty text message', { type: 'text', text: '' }],
  ];
  for (const [name, expect] of expected) {
    await report.run(name, async () => {
      const got = await inPage(page, name, (ms) => window.tt.next('a', ms), PAGE_MS);
      return checkEcho(got, expect);
    }, EVAL_MS + 1000);
  }

  await inPage(page, 'closing', () => window.tt.close('a', 1000, 'done'));
  const closed = await inPage(page, 'waiting for the close event', (ms) => window.tt.waitClose('a', ms), PAGE_MS);
  report.check('ws.close(1000, "done"): the close event has code 1000', closed.code === 1000,
    `close event code ${closed.code}`);
  report.check('ws.close(1000, "done"): the close event has wasClean true', closed.wasClean === true,
    `wasClean ${closed.wasClean} (code ${closed.code})`);
  report.check('ws.close(1000, "done"): no error event', closed.errors === 0, `${closed.errors} error events`);
  console.log(`note: the close event's reason is ${JSON.stringify(closed.reason)}` +
    (closed.reason === 'done' ? ' (echoed)' : ' (tether echoes the code only)'));
}

async function sigterm(report, page, url, server) {
  await inPage(page, 'opening a second WebSocket', ([u, ms]) => window.tt.open('b', u, ms), [url, PAGE_MS]);
  // One round trip, so the server surely has this connection in its open state.
  const got = await inPage(page, 'echo before SIGTERM', ([ms]) => {
    window.tt.sendText('b', 'before SIGTERM');
    return window.tt.next('b', ms);
  }, [PAGE_MS]);
  report.check('second WebSocket opens and echoes', got.type === 'text' && got.text === 'before SIGTERM',
    `got ${JSON.stringify(got)}`);

  const start = Date.now();
  let exitMs = null;
  server.proc.once('exit', () => { exitMs = Date.now() - start; });
  const exited = c.waitExit(server.proc, 5000); // runs while the page waits for its close event
  server.proc.kill('SIGTERM');
  let closed = null;
  let problem = '';
  try {
    closed = await inPage(page, 'waiting for the close event after SIGTERM', (ms) => window.tt.waitClose('b', ms), PAGE_MS);
  } catch (err) {
    problem = firstLine(err);
  }
  const rc = await exited;
  if (closed) {
    report.check('SIGTERM: the close event has code 1012', closed.code === 1012, `close event code ${closed.code}`);
    report.check('SIGTERM: the close event has wasClean true', closed.wasClean === true,
      `wasClean ${closed.wasClean} (code ${closed.code}, ${closed.errors} error events)`);
    console.log(`note: the close event came ${closed.at - start} ms after SIGTERM, ` +
      `reason ${JSON.stringify(closed.reason)}`);
  } else {
    report.fail('SIGTERM: the page gets a close event', problem);
  }
  report.check('SIGTERM: tether serve exits 0 within 5 s', rc === 0,
    rc === undefined ? 'still running 5 s after SIGTERM' : `exit status ${rc} (signal ${server.proc.signalCode})`);
  if (exitMs !== null) console.log(`note: tether serve exited ${exitMs} ms after SIGTERM`);
}

// ------------------------------------------------------------------ main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { chromium } = requirePlaywright();
  checkChromium(args.chromium);
  const report = new c.Report('chromium -> tether serve');
  const t0 = Date.now();
  const children = [];
  c.capRuntime(TOTAL_MS, children); // process.exit() there also makes playwright kill Chromium

  let server;
  try {
    server = await c.startTetherServe(args.tether);
  } catch (err) {
    report.fail('start tether serve', err.message);
    return report.finish();
  }
  children.push(server.proc);
  report.ok(`tether serve printed 'listening ${server.url}'`);

  let browser = null;
  let pages = null;
  const pageLog = [];
  try {
    pages = await startPageServer();
    const launchStart = Date.now();
    try {
      browser = await chromium.launch({
        executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS, timeout: LAUNCH_MS,
      });
    } catch (err) {
      report.fail('launch Chromium', `${args.chromium}: ${err.message.split('\n').slice(0, 8).join(' | ')}`);
      return report.finish();
    }
    report.ok('launch headless Chromium', `${browser.version()}, ${Date.now() - launchStart} ms`);
    const page = await c.withTimeout(browser.newPage(), PAGE_MS, 'opening a page');
    page.on('console', (msg) => pageLog.push(`console.${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => pageLog.push(`page error: ${err.message}`));
    page.on('crash', () => pageLog.push('the page crashed'));
    const response = await c.withTimeout(page.goto(pages.url), PAGE_MS, `loading ${pages.url}`);
    if (!response || !response.ok()) throw new Error(`loading ${pages.url} gave ${response && response.status()}`);
    await inPage(page, 'installing the page harness', pageHarness);

    const url = `${server.url}/`;
    for (const [name, fn] of [['echo and close 1000', () => echoAndClose(report, page, url)],
      ['SIGTERM', () => sigterm(report, page, url, server)]]) {
      try {
        await fn();
      } catch (err) {
        report.fail(name, err instanceof c.TimeoutError ? err.message : firstLine(err));
      }
    }
  } catch (err) {
    report.fail('harness', firstLine(err));
  } finally {
    if (browser) await c.withTimeout(browser.close(), 10000, 'closing Chromium').catch(() => {});
    if (pages) pages.server.close();
    c.kill(server.proc);
  }
  if (report.failed.length && pageLog.length) console.log(`page log:\n  ${pageLog.join('\n  ')}`);
  console.log(`note: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
  return report.finish();
}

main().then((code) => process.exit(code), (err) => {
  console.log(`FAIL: ${err.stack}`);
  process.exit(1);
});
