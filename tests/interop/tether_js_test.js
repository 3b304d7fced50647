#!/usr/bin/node
'use strict';
// web/tether.js in a real headless Chromium (Debian's /usr/bin/chromium driven by the npm
// package playwright-core, launched as in browser_test.js), against build/tether.
//
// The page is loaded from the tether server itself (http://127.0.0.1:PORT/healthz), so that
// `import('/tether.js')` is a same-origin module import of the copy compiled into the server,
// and Chromium's Local Network Access checks allow WebSockets to 127.0.0.1.
//
// Case a: TetherSocket (resume on) to `tether serve --mode echo`: open, a text and a binary
//         message echo back exact and typed, an rtt event arrives (pingInterval 300, from the
//         application ping P/Q), close(1000) gives a clean close event with code 1000.
// Case c: resume through tests/fault/chaos_proxy.py --cut-every 300 600: the page sends 1..500 at
//         100/s while the proxy cuts every connection after 300-600 ms; the echoes must be
//         exactly 1..500 in order, with `resumed` events.
// Case b: heartbeat: `tether serve --ping-interval 0` (the server never pings), the page uses
//         pingInterval 500 / pingTimeout 500; the server gets SIGSTOP: the page must report a
//         close with cause heartbeat_timeout, code 1006, 1.0-1.6 s after the last message it
//         received, then `reconnecting`. SIGCONT at the end.
//
// Every wait is bounded; PASS/FAIL per check; the program stops itself after 100 s.

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const c = require('./common');

const DEFAULT_CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LAUNCH_MS = 30000;
const EVAL_MS = 5000;
const TOTAL_MS = 100000;
const PROXY = path.join(__dirname, '..', 'fault', 'chaos_proxy.py');

function parseArgs(argv) {
  const args = { tether: null, chromium: DEFAULT_CHROMIUM };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--tether') args.tether = argv[i + 1];
    else if (argv[i] === '--chromium') args.chromium = argv[i + 1];
    else if (argv[i] === '--group' && argv[i + 1] === 'all') continue;
    else { console.log(`FAIL: unknown argument ${argv[i]} ${argv[i + 1] || ''}`); process.exit(2); }
  }
  if (!args.tether) { console.log('usage: --tether PATH [--chromium PATH] [--group all]'); process.exit(2); }
  return args;
}

function requirePlaywright() {
  try {
    return require('playwright-core');
  } catch (err) {
    console.log(`FAIL: node module 'playwright-core' not found (${err.code || err.message}); run 'npm ci' in ${__dirname}`);
    process.exit(1);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const firstLine = (err) => `${err.name}: ${String(err.message).split('\n')[0]}`;
const inPage = (page, what, fn, arg) => c.withTimeout(page.evaluate(fn, arg), EVAL_MS, what);

// Polls `fn` in the page until it returns something other than undefined, for at most `ms`.
async function pollPage(page, what, fn, arg, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await inPage(page, what, fn, arg);
    if (v !== undefined && v !== null) return v;
    if (Date.now() > end) throw new c.TimeoutError(`${what}: nothing within ${ms / 1000} s`);
    await sleep(50);
  }
}

// ------------------------------------------------------------------ in the page
async function pageHarness() {
  const mod = await import('/tether.js');
  const sockets = {};
  window.tj = {
    mod,
    open(id, url, options) {
      const ws = new mod.TetherSocket(url, options);
      const s = { ws, events: [], messages: [], lastRecv: 0 };
      sockets[id] = s;
      for (const type of ['open', 'close', 'reconnecting', 'resumed', 'resume_failed', 'rtt']) {
        ws.addEventListener(type, (e) => {
          const rec = { type, at: performance.now() };
          for (const k of ['attempt', 'delay', 'code', 'reason', 'wasClean', 'cause', 'replayed', 'ms']) if (k in e) rec[k] = e[k];
          s.events.push(rec);
          if (type === 'rtt') s.lastRecv = rec.at;
        });
      }
      ws.onmessage = (e) => {
        s.lastRecv = performance.now();
        if (typeof e.data === 'string') s.messages.push({ type: 'text', text: e.data });
        else s.messages.push({ type: 'binary', bytes: Array.from(new Uint8Array(e.data)) });
      };
      return true;
    },
    s: (id) => sockets[id],
    ev: (id, type) => sockets[id].events.filter((e) => type === undefined || e.type === type),
  };
  return typeof mod.TetherSocket;
}

// ------------------------------------------------------------------ cases

async function caseEcho(report, page, url) {
  await inPage(page, 'open', ([u]) => window.tj.open('a', u, { pingInterval: 300, pingTimeout: 2000 }), [url]);
  const open = await pollPage(page, 'open event', () => window.tj.ev('a', 'open')[0], undefined, 5000);
  report.check('a: open event with attempt 1', open.attempt === 1, JSON.stringify(open));
  const proto = await inPage(page, 'protocol', () => window.tj.s('a').ws.protocol);
  report.check('a: subprotocol tether.resume.v1 negotiated', proto === 'tether.resume.v1', `protocol ${JSON.stringify(proto)}`);
  await inPage(page, 'send', () => {
    const ws = window.tj.s('a').ws;
    ws.send('héllo 🌍');
    ws.send(new Uint8Array([0, 1, 2, 59, 77, 255]));
    ws.send(new Uint8Array([9, 8, 7]).buffer);
  });
  const msgs = await pollPage(page, 'echoes', () => {
    const m = window.tj.s('a').messages;
    return m.length >= 3 ? m : undefined;
  }, undefined, 5000);
  report.check('a: text echo exact', msgs[0].type === 'text' && msgs[0].text === 'héllo 🌍', JSON.stringify(msgs[0]));
  report.check('a: binary echo (typed array) exact', msgs[1].type === 'binary' && msgs[1].bytes.join() === '0,1,2,59,77,255', JSON.stringify(msgs[1]));
  report.check('a: binary echo (ArrayBuffer) exact', msgs[2].type === 'binary' && msgs[2].bytes.join() === '9,8,7', JSON.stringify(msgs[2]));
  const rtt = await pollPage(page, 'rtt event', () => window.tj.ev('a', 'rtt')[0], undefined, 3000);
  report.check('a: rtt event from P/Q', typeof rtt.ms === 'number' && rtt.ms >= 0 && rtt.ms < 1000, JSON.stringify(rtt));
  await inPage(page, 'close', () => window.tj.s('a').ws.close(1000, 'done'));
  const closed = await pollPage(page, 'close event', () => window.tj.ev('a', 'close')[0], undefined, 5000);
  report.check('a: close event code 1000, wasClean, cause local_close',
    closed.code === 1000 && closed.wasClean === true && closed.cause === 'local_close', JSON.stringify(closed));
  const st = await inPage(page, 'state', () => [window.tj.s('a').ws.readyState, window.tj.ev('a', 'reconnecting').length]);
  report.check('a: readyState CLOSED, no reconnect', st[0] === 3 && st[1] === 0, JSON.stringify(st));
}

function startProxy(upstreamPort) {
  const proc = spawn('/usr/bin/python3', [PROXY, '--upstream', String(upstreamPort), '--cut-every', '300', '600',
    '--seed', '7', '--max-seconds', '90'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = { proc, cuts: 0, port: 0 };
  const ready = new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`chaos_proxy exited with ${code}`)));
    let first = true;
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (first) {
          first = false;
          const m = /^listening 127\.0\.0\.1:(\d+)$/.exec(line);
          if (m) { info.port = Number(m[1]); resolve(info); } else reject(new Error(`proxy said ${line}`));
        } else if (line.includes('"event":"cut"')) info.cuts++;
      }
    });
  });
  return { info, ready: c.withTimeout(ready, 10000, 'starting chaos_proxy') };
}

async function caseResume(report, page, server, children) {
  const { info, ready } = startProxy(server.port);
  children.push(info.proc);
  await ready;
  try {
    const url = `ws://127.0.0.1:${info.port}/`;
    await inPage(page, 'open c', ([u]) => {
      window.tj.open('c', u, { backoffMin: 50, backoffMax: 300, pingInterval: 1000, pingTimeout: 2000 });
      let n = 0;
      const s = window.tj.s('c');
      s.timer = setInterval(() => {
        s.ws.send(String(++n));
        if (n >= 500) clearInterval(s.timer);
      }, 10);
      return true;
    }, [url]);
    let got = [];
    try {
      got = await pollPage(page, '500 echoes', () => {
        const m = window.tj.s('c').messages;
        return m.length >= 500 ? m.map((x) => x.text) : undefined;
      }, undefined, 40000);
    } catch (err) {
      got = await inPage(page, 'echoes so far', () => window.tj.s('c').messages.map((x) => x.text));
      report.fail('c: 500 echoes within 40 s', `${got.length} arrived`);
    }
    await sleep(300); // anything extra (a duplicate) would arrive now
    got = await inPage(page, 'echoes', () => window.tj.s('c').messages.map((x) => x.text));
    let bad = -1;
    for (let i = 0; i < Math.max(got.length, 500); i++) if (got[i] !== String(i + 1)) { bad = i; break; }
    report.check('c: echoes are exactly 1..500 in order', got.length === 500 && bad < 0,
      `${got.length} echoes, first difference at index ${bad}: ${JSON.stringify(got.slice(Math.max(0, bad - 2), bad + 3))}`);
    const ev = await inPage(page, 'events', () => window.tj.ev('c'));
    const count = (t) => ev.filter((e) => e.type === t).length;
    report.check('c: resumed events after cuts', count('resumed') >= 2 && count('resume_failed') === 0,
      `${count('resumed')} resumed, ${count('resume_failed')} resume_failed, ${count('close')} close, ${info.cuts} cuts`);
    console.log(`note: c: ${info.cuts} cuts, ${count('close')} close events, ${count('resumed')} resumed, ` +
      `replayed ${ev.filter((e) => e.type === 'resumed').map((e) => e.replayed).join(',')}`);
    await inPage(page, 'close c', () => { clearInterval(window.tj.s('c').timer); window.tj.s('c').ws.close(); });
  } finally {
    try { info.proc.stdin.end('quit\n'); } catch { /* gone */ }
    await c.waitExit(info.proc, 3000);
    c.kill(info.proc);
  }
}

async function caseHeartbeat(report, page, tether, children) {
  const proc = spawn(tether, ['serve', '--host', '127.0.0.1', '--port', '0', '--mode', 'echo', '--ping-interval', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  let stopped = false;
  try {
    const line = await c.withTimeout(new Promise((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`tether serve exited with ${code}`)));
      proc.stdout.once('data', (d) => resolve(d.toString().split('\n')[0]));
    }), 10000, 'starting tether serve --ping-interval 0');
    const m = /^listening (ws:\/\/\S+)$/.exec(line);
    if (!m) throw new Error(`tether serve said ${JSON.stringify(line)}`);
    await inPage(page, 'open b', ([u]) => window.tj.open('b', `${u}/`, { pingInterval: 500, pingTimeout: 500 }), [m[1]]);
    await inPage(page, 'send b', () => true);
    await pollPage(page, 'open b', () => window.tj.ev('b', 'open')[0], undefined, 5000);
    await inPage(page, 'echo b', () => window.tj.s('b').ws.send('ping me'));
    await pollPage(page, 'echo b', () => window.tj.s('b').messages[0], undefined, 5000);
    // Let a few P/Q round trips happen: they alone keep the connection alive.
    await sleep(1800);
    const before = await inPage(page, 'b state', () => [window.tj.ev('b', 'close').length, window.tj.ev('b', 'rtt').length]);
    report.check('b: alive on P/Q alone for 1.8 s (server never pings)', before[0] === 0 && before[1] >= 2,
      `${before[0]} close events, ${before[1]} rtt events`);
    proc.kill('SIGSTOP');
    stopped = true;
    const closed = await pollPage(page, 'heartbeat close', () => window.tj.ev('b', 'close')[0], undefined, 5000);
    const last = await inPage(page, 'last received', () => window.tj.s('b').lastRecv);
    const gap = closed.at - last;
    report.check('b: close with cause heartbeat_timeout, code 1006, not clean',
      closed.cause === 'heartbeat_timeout' && closed.code === 1006 && closed.wasClean === false, JSON.stringify(closed));
    report.check('b: detected 1.0-1.6 s after the last message received', gap >= 1000 && gap <= 1600, `${gap.toFixed(0)} ms`);
    console.log(`note: b: heartbeat close ${gap.toFixed(0)} ms after the last message; reason ${JSON.stringify(closed.reason)}`);
    const rec = await pollPage(page, 'reconnecting', () => window.tj.ev('b', 'reconnecting')[0], undefined, 3000);
    report.check('b: reconnecting follows', rec.attempt >= 2 && rec.delay >= 0, JSON.stringify(rec));
    await inPage(page, 'close b', () => window.tj.s('b').ws.close());
  } finally {
    if (stopped) proc.kill('SIGCONT');
    c.kill(proc);
  }
}

// ------------------------------------------------------------------ main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { chromium } = requirePlaywright();
  try {
    fs.accessSync(args.chromium, fs.constants.X_OK);
  } catch (err) {
    console.log(`FAIL: no Chromium at ${args.chromium} (${err.code})`);
    return 1;
  }
  const report = new c.Report('tether.js in chromium');
  const children = [];
  c.capRuntime(TOTAL_MS, children);
  let server;
  try {
    server = await c.startTetherServe(args.tether);
  } catch (err) {
    report.fail('start tether serve', err.message);
    return report.finish();
  }
  children.push(server.proc);
  let browser = null;
  const pageLog = [];
  try {
    try {
      browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS, timeout: LAUNCH_MS });
    } catch (err) {
      report.fail('launch Chromium', err.message.split('\n')[0]);
      return report.finish();
    }
    const page = await c.withTimeout(browser.newPage(), EVAL_MS, 'opening a page');
    page.on('console', (msg) => pageLog.push(`console.${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => pageLog.push(`page error: ${err.message}`));
    const origin = `http://127.0.0.1:${server.port}`;
    const res = await c.withTimeout(page.goto(`${origin}/healthz`), EVAL_MS, 'loading /healthz');
    if (!res || !res.ok()) throw new Error(`/healthz gave ${res && res.status()}`);
    const kind = await inPage(page, "import('/tether.js')", pageHarness);
    report.check("import('/tether.js') from the server exports TetherSocket", kind === 'function', kind);
    for (const [name, fn] of [
      ['a: echo', () => caseEcho(report, page, `${server.url}/`)],
      ['c: resume through chaos_proxy', () => caseResume(report, page, server, children)],
      ['b: heartbeat', () => caseHeartbeat(report, page, args.tether, children)]]) {
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
    c.kill(server.proc);
  }
  if (report.failed.length && pageLog.length) console.log(`page log:\n  ${pageLog.slice(-30).join('\n  ')}`);
  return report.finish();
}

main().then((code) => process.exit(code), (err) => {
  console.log(`FAIL: ${err.stack}`);
  process.exit(1);
});
