#!/usr/bin/node
'use strict';
// The chat page (web/chat/, served at `/` by `tether serve --mode chat`) in a real headless
// Chromium (Debian's /usr/bin/chromium driven by playwright-core), against the real tether.js.
//
//   1. Two pages (ann, bob) join one room: presence shows both on both pages; messages flow.
//   2. Restart: while ann's page sends a message every 100 ms, the server gets SIGTERM and is
//      started again on the same port. Ann's indicator says "reconnecting"; every message ann
//      sent (outage included) shows on bob's page exactly once (by message id).
//   3. SIGSTOP: with the page's heartbeat at 500 ms / 500 ms, ann's indicator leaves
//      "connected" within 1.6 s; SIGCONT afterwards and the page comes back.
// Screenshots before and after the reconnect go to --artifacts DIR.
//
// A missing playwright-core or Chromium is a failure, never a skip. Every wait is bounded; the
// whole program stops itself after 100 s.

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const c = require('./common');

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOTAL_MS = 100000;
const STEP_MS = 10000;
const RECONNECT_MS = 20000; // a 1012 asks for a reconnect within restart_spread (10 s) + jitter
const DETECT_BOUND_MS = 1600; // pingInterval 500 + pingTimeout 500, plus the check period and slack

function parseArgs(argv) {
  const args = { tether: null, chromium: '/usr/bin/chromium', artifacts: null };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--tether') args.tether = argv[i + 1];
    else if (argv[i] === '--chromium') args.chromium = argv[i + 1];
    else if (argv[i] === '--artifacts') args.artifacts = argv[i + 1];
    else if (argv[i] === '--group' && argv[i + 1] === 'all') continue;
    else { console.log(`FAIL: unknown argument ${argv[i]}`); process.exit(2); }
  }
  if (!args.tether) { console.log('usage: --tether PATH [--artifacts DIR] [--chromium PATH]'); process.exit(2); }
  return args;
}

// `tether serve --mode chat` on `port` (0: a free one); resolves with {proc, port}.
async function startChat(tether, port) {
  const proc = spawn(tether, ['serve', '--host', '127.0.0.1', '--port', String(port), '--mode', 'chat',
    '--ping-interval', '1s', '--ping-timeout', '1s'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = new Promise((resolve, reject) => {
    proc.once('error', (err) => reject(new Error(`cannot start ${tether}: ${err.message}`)));
    proc.once('exit', (code) => reject(new Error(`tether serve exited with status ${code}`)));
    let seen = false;
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += String(d);
      if (!seen && buf.includes('\n')) { seen = true; resolve(buf.split('\n')[0]); }
    });
  });
  let line;
  try {
    line = await c.withTimeout(first, STEP_MS, 'waiting for the listening line');
  } catch (err) {
    c.kill(proc);
    throw err;
  }
  const m = /^listening ws:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
  if (!m) { c.kill(proc); throw new Error(`unexpected first line ${JSON.stringify(line)}`); }
  return { proc, port: Number(m[1]) };
}

const firstLine = (err) => `${err.name}: ${String(err.message).split('\n')[0]}`;

// Waits in the page for fn(arg) to be truthy, bounded on both sides.
function waitIn(page, what, fn, arg, ms = STEP_MS) {
  return c.withTimeout(page.waitForFunction(fn, arg, { timeout: ms, polling: 50 }), ms + 2000, what)
    .then((h) => h.jsonValue());
}
function evalIn(page, what, fn, arg) {
  return c.withTimeout(page.evaluate(fn, arg), STEP_MS, what);
}

const state = (page) => evalIn(page, 'reading the indicator', () => {
  const s = document.getElementById('status');
  return { state: s.dataset.state, text: s.textContent };
});
const members = (page) => evalIn(page, 'reading members', () =>
  [...document.querySelectorAll('#members li')].map((li) => li.textContent));
// Messages on screen by `nick`: [{id, text, pending}]
const messagesOf = (page, nick) => evalIn(page, 'reading messages', (n) =>
  [...document.querySelectorAll('#messages li[data-nick]')].filter((li) => li.dataset.nick === n)
    .map((li) => ({ id: li.dataset.id, text: li.querySelector('.text').textContent, pending: li.classList.contains('pending') })), nick);

async function say(page, text) {
  await evalIn(page, 'sending', (t) => {
    document.getElementById('text').value = t;
    document.getElementById('say').requestSubmit();
  }, text);
}

async function openChat(browser, port, nick, room, log) {
  const context = await c.withTimeout(browser.newContext({ viewport: { width: 900, height: 600 } }), STEP_MS, 'new context');
  const page = await c.withTimeout(context.newPage(), STEP_MS, 'new page');
  page.on('console', (msg) => log.push(`${nick} console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => log.push(`${nick} page error: ${err.message}`));
  const url = `http://127.0.0.1:${port}/?nick=${nick}&room=${room}&ping=500&timeout=500`;
  const res = await c.withTimeout(page.goto(url), STEP_MS, `loading ${url}`);
  if (!res || !res.ok()) throw new Error(`loading ${url} gave ${res && res.status()}`);
  await waitIn(page, 'the page script loaded', () => document.getElementById('nick').value !== '');
  await evalIn(page, 'joining', () => document.getElementById('join').requestSubmit());
  await waitIn(page, `${nick} connected`, () => document.getElementById('status').dataset.state === 'connected');
  return page;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (err) {
    console.log(`FAIL: node module 'playwright-core' not found; run 'npm ci' in ${__dirname}`);
    return 1;
  }
  if (!fs.existsSync(args.chromium)) { console.log(`FAIL: no Chromium at ${args.chromium}`); return 1; }
  const artifacts = args.artifacts || path.join(process.cwd(), 'artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  const report = new c.Report('chromium chat page -> tether serve --mode chat');
  const children = [];
  c.capRuntime(TOTAL_MS, children);
  const log = [];
  let server = null;
  let browser = null;
  try {
    server = await startChat(args.tether, 0);
    children.push(server.proc);
    const port = server.port;
    browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
    const ann = await openChat(browser, port, 'ann', 'den', log);
    const bob = await openChat(browser, port, 'bob', 'den', log);

    // 1. presence and messages
    await report.run('presence: both pages list ann and bob', async () => {
      const ok = (p) => waitIn(p, 'members ann+bob', () => {
        const m = [...document.querySelectorAll('#members li')].map((li) => li.textContent);
        return m.length === 2 && m.includes('ann') && m.includes('bob');
      });
      await ok(ann);
      await ok(bob);
      return null;
    }, STEP_MS * 3);
    await report.run('messages flow both ways', async () => {
      await say(ann, 'hello bob');
      await waitIn(bob, 'bob sees ann', () => [...document.querySelectorAll('#messages li .text')].some((e) => e.textContent === 'hello bob'));
      await say(bob, 'hi ann');
      await waitIn(ann, 'ann sees bob', () => [...document.querySelectorAll('#messages li .text')].some((e) => e.textContent === 'hi ann'));
      return null;
    }, STEP_MS * 3);
    await report.run('the page shows a live RTT (heartbeat every 500 ms when quiet)', async () => {
      const rtt = await waitIn(ann, 'an RTT figure', () => {
        const t = document.getElementById('rtt').textContent;
        return /^RTT [0-9.]+ ms$/.test(t) && t;
      }, null, 5000);
      console.log(`note: ann's RTT display: ${rtt}`);
      return null;
    }, 8000);
    await ann.screenshot({ path: path.join(artifacts, 'chat-before-restart.png') });

    // 2. restart while ann keeps sending. At most MAX_TICKS: the room's history keeps the last
    // 100 messages (ChatServer::history_limit), and bob, reconnecting to the restarted server
    // up to ~10 s after the kill (the server paces reconnects), sees what he missed only
    // through that history; more ticks than it holds would push the oldest out before he
    // rejoins, whatever the delivery guarantees.
    const MAX_TICKS = 80;
    await evalIn(ann, 'start sending', (max) => {
      window.__n = 0;
      window.__timer = setInterval(() => {
        if (window.__n >= max) {
          clearInterval(window.__timer);
          return;
        }
        document.getElementById('text').value = `tick ${++window.__n}`;
        document.getElementById('say').requestSubmit();
      }, 100);
      window.__states = [];
      new MutationObserver(() => window.__states.push(document.getElementById('status').dataset.state))
        .observe(document.getElementById('status'), { attributes: true, childList: true });
    }, MAX_TICKS);
    await c.sleep(300);
    const exited = c.waitExit(server.proc, 6000);
    server.proc.kill('SIGTERM');
    await report.run('restart: ann\'s indicator says "reconnecting"', async () => {
      await waitIn(ann, 'reconnecting', () => /^reconnecting/.test(document.getElementById('status').textContent));
      return null;
    }, STEP_MS + 3000);
    const rc = await exited;
    report.check('SIGTERM: tether serve exits 0', rc === 0, `exit ${rc}`);
    const sentBefore = await evalIn(ann, 'count', () => window.__n);
    let restarted = null;
    for (let i = 0; i < 20 && !restarted; i++) {
      try {
        restarted = await startChat(args.tether, port);
      } catch (err) {
        await c.sleep(100);
      }
    }
    if (!restarted) throw new Error(`could not restart tether serve on port ${port}`);
    server = restarted;
    children.push(server.proc);
    await report.run('restart: both pages reconnect', async () => {
      for (const p of [ann, bob]) await waitIn(p, 'connected again', () => document.getElementById('status').dataset.state === 'connected', null, RECONNECT_MS);
      return null;
    }, RECONNECT_MS * 2 + 2000);
    const sentAtReconnect = await evalIn(ann, 'count', () => window.__n);
    await c.sleep(500);
    await evalIn(ann, 'stop sending', () => clearInterval(window.__timer));
    const total = await evalIn(ann, 'count', () => window.__n);
    console.log(`note: ann sent ${total} ticks, ${sentAtReconnect - sentBefore} of them while reconnecting`);
    await report.run('restart: ann has no message left unconfirmed', async () => {
      await waitIn(ann, 'no pending', () => document.querySelectorAll('#messages li.pending').length === 0, null, STEP_MS);
      return null;
    }, STEP_MS + 3000);
    await report.run('restart: every tick ann sent shows on bob\'s page exactly once', async () => {
      await waitIn(bob, 'all ticks on bob', (n) => [...document.querySelectorAll('#messages li[data-nick="ann"] .text')]
        .filter((e) => /^tick /.test(e.textContent)).length >= n, total, STEP_MS).catch(() => {});
      const mine = (await messagesOf(ann, 'ann')).filter((m) => /^tick /.test(m.text));
      const seen = (await messagesOf(bob, 'ann')).filter((m) => /^tick /.test(m.text));
      if (mine.length !== total) return `ann's page shows ${mine.length} ticks, sent ${total}`;
      const count = new Map();
      for (const m of seen) count.set(m.id, (count.get(m.id) || 0) + 1);
      const missing = mine.filter((m) => !count.has(m.id)).map((m) => m.text);
      const twice = [...count].filter(([, n]) => n > 1).map(([id]) => id);
      if (missing.length) return `${missing.length} missing on bob: ${missing.slice(0, 5).join(', ')}`;
      if (twice.length) return `${twice.length} shown twice on bob`;
      const texts = new Set(seen.map((m) => m.text));
      if (texts.size !== seen.length) return 'a tick text shows twice on bob';
      const dropped = await evalIn(bob, 'duplicates', () => document.getElementById('messages').dataset.duplicates || '0');
      console.log(`note: ${seen.length} ticks on bob's page; the page dropped ${dropped} duplicate deliveries by id`);
      return null;
    }, STEP_MS * 2);
    await ann.screenshot({ path: path.join(artifacts, 'chat-after-restart.png') });
    await bob.screenshot({ path: path.join(artifacts, 'chat-after-restart-bob.png') });
    await report.run('presence after the restart: both pages list ann and bob', async () => {
      for (const p of [ann, bob]) {
        await waitIn(p, 'members ann+bob', () => {
          const m = [...document.querySelectorAll('#members li')].map((li) => li.textContent);
          return m.length === 2 && m.includes('ann') && m.includes('bob');
        });
      }
      return null;
    }, STEP_MS * 3);

    // 3. SIGSTOP: the heartbeat notices
    server.proc.kill('SIGSTOP');
    const t0 = Date.now();
    let detectMs = null;
    try {
      await waitIn(ann, 'leaving connected', () => document.getElementById('status').dataset.state !== 'connected', null, 5000);
      detectMs = Date.now() - t0;
    } catch (err) { /* reported below */ }
    report.check(`SIGSTOP: ann's indicator leaves "connected" within ${DETECT_BOUND_MS} ms`,
      detectMs !== null && detectMs <= DETECT_BOUND_MS, detectMs === null ? 'not within 5 s' : `after ${detectMs} ms`);
    if (detectMs !== null) console.log(`note: SIGSTOP noticed after ${detectMs} ms: ${JSON.stringify(await state(ann))}`);
    server.proc.kill('SIGCONT');
    await report.run('SIGCONT: ann connects again', async () => {
      await waitIn(ann, 'connected again', () => document.getElementById('status').dataset.state === 'connected', null, RECONNECT_MS);
      return null;
    }, RECONNECT_MS + 3000);
    console.log(`note: members now ${JSON.stringify(await members(ann))}`);
  } catch (err) {
    report.fail('harness', err instanceof c.TimeoutError ? err.message : firstLine(err));
  } finally {
    if (browser) await c.withTimeout(browser.close(), 10000, 'closing Chromium').catch(() => {});
    for (const p of children) { try { p.kill('SIGCONT'); } catch { /* gone */ } c.kill(p); }
  }
  if (report.failed.length && log.length) console.log(`page log:\n  ${log.slice(-40).join('\n  ')}`);
  return report.finish();
}

main().then((code) => process.exit(code), (err) => {
  console.log(`FAIL: ${err.stack}`);
  process.exit(1);
});
