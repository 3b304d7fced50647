#!/usr/bin/node
'use strict';
// Browser over TLS: headless Chromium (Debian's /usr/bin/chromium driven by playwright-core, as
// in browser_test.js) against `tether serve --tls-cert chain.pem --tls-key server.key`.
//
// A throw-away CA and a server certificate (DNS:localhost, IP:127.0.0.1) are made with the
// `openssl` command in a temporary directory. Chromium is not told to ignore certificate errors:
// it gets --ignore-certificate-errors-spki-list=<base64 SHA-256 of the server's public key>,
// which accepts that one key only (it needs a user data dir, which playwright always passes).
// A second Chromium without the flag must refuse the same page (net::ERR_CERT_AUTHORITY_INVALID).
//
// Group all (interop.tls.browser):
//   the page is https://127.0.0.1:PORT/healthz (a secure context, same origin as tether); a
//   WebSocket to wss://127.0.0.1:PORT/ echoes a non-ASCII text and a 64 KiB ArrayBuffer exactly,
//   ws.close(1000) gives a clean close event with code 1000; import('/tether.js') over https
//   gives TetherSocket, which opens over wss (subprotocol tether.resume.v1), echoes text and
//   binary, and closes cleanly.
// Group deflate (interop.deflate.browser): Chromium's own permessage-deflate offer
//   ("permessage-deflate; client_max_window_bits") against `tether serve --deflate`, over ws://
//   and over wss://, and against `--deflate-options threshold=0` (context takeover kept, every
//   message compressed): ws.extensions must show what tether asks for (both no_context_takeover
//   by default, nothing for threshold=0), and short, empty and 100 KiB texts, 64 KiB binaries
//   and a 1 MiB text must echo exactly, three rounds (context paths), then close 1000 cleanly.
//
// PASS/FAIL per check; every wait is bounded; the program stops itself after 90 s.

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const c = require('./common');

const DEFAULT_CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LAUNCH_MS = 30000;
const PAGE_MS = 10000;
const EVAL_MS = PAGE_MS + 3000;
const TOTAL_MS = 90000;
const TEXT = 'héllo wss 🌍';
const BINARY_SIZE = 64 * 1024;

function parseArgs(argv) {
  const args = { tether: null, chromium: DEFAULT_CHROMIUM, group: 'all' };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--tether') args.tether = argv[i + 1];
    else if (argv[i] === '--chromium') args.chromium = argv[i + 1];
    else if (argv[i] === '--group') args.group = argv[i + 1];
    else { console.log(`FAIL: unknown argument ${argv[i]} ${argv[i + 1] || ''}`); process.exit(2); }
  }
  if (!args.tether || !['all', 'deflate'].includes(args.group)) {
    console.log('usage: --tether PATH [--chromium PATH] [--group all|deflate]');
    process.exit(2);
  }
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

const firstLine = (err) => `${err.name}: ${String(err.message).split('\n')[0]}`;
const inPage = (page, what, fn, arg) => c.withTimeout(page.evaluate(fn, arg), EVAL_MS, what);

// ------------------------------------------------------------------ PKI

function openssl(dir, args, input) {
  return execFileSync('openssl', args, { cwd: dir, input, timeout: 30000, stdio: ['pipe', 'pipe', 'pipe'] });
}

// A root CA and a leaf for DNS:localhost + IP:127.0.0.1 signed by it; returns file names and the
// base64 SHA-256 of the leaf's SubjectPublicKeyInfo (what Chromium's SPKI list wants).
function makePki(dir) {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...key, '-keyout', 'root.key', '-out', 'root.pem', '-days', '2',
    '-subj', '/CN=tether browser test root CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  fs.writeFileSync(path.join(dir, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\n' +
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' +
    'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(dir, ['req', '-new', ...key, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-set_serial', '7',
    '-days', '2', '-out', 'server.pem', '-extfile', 'leaf.ext']);
  // x509 -pubkey | pkey -pubin -outform der | dgst -sha256 -binary | base64
  const pub = openssl(dir, ['x509', '-in', 'server.pem', '-pubkey', '-noout']);
  const der = openssl(dir, ['pkey', '-pubin', '-outform', 'der'], pub);
  const spki = crypto.createHash('sha256').update(der).digest('base64');
  return { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key'), spki };
}

// ------------------------------------------------------------------ tether serve (ws or wss)

async function startServe(tether, extra, ms = 10000) {
  const proc = spawn(tether, ['serve', '--host', '127.0.0.1', '--port', '0', '--mode', 'echo', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = [];
  proc.stderr.on('data', (d) => stderr.push(...d.toString().split('\n').filter((l) => l)));
  const first = new Promise((resolve, reject) => {
    proc.once('error', (err) => reject(new Error(`cannot start ${tether}: ${err.message}`)));
    proc.once('exit', (code) => reject(new Error(`tether serve exited with status ${code}: ${stderr.slice(-3).join(' | ')}`)));
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
  const m = /^listening ((wss?):\/\/127\.0\.0\.1:(\d+))$/.exec(line);
  if (!m) {
    c.kill(proc);
    throw new Error(`first stdout line of tether serve is ${JSON.stringify(line)}`);
  }
  return { proc, line, url: m[1], scheme: m[2], port: Number(m[3]), stderr };
}

// ------------------------------------------------------------------ in the page

async function pageHarness() {
  const sockets = {};
  const pattern = (i, seed) => ((i * 31 + 7 + seed) ^ (i >> 8)) & 0xff;
  const until = (what, ms, ready, s) => new Promise((resolve, reject) => {
    const poll = () => {
      let value;
      try { value = ready(); } catch (err) { clearTimeout(timer); s.wake = null; reject(err); return; }
      if (value !== undefined) { clearTimeout(timer); s.wake = null; resolve(value); }
    };
    const timer = setTimeout(() => { s.wake = null; reject(new Error(`${what}: nothing within ${ms / 1000} s`)); }, ms);
    s.wake = poll;
    poll();
  });
  const describe = (data, seed) => {
    if (typeof data === 'string') return { type: 'text', text: data.length > 200 ? null : data, length: data.length, hash: hashText(data) };
    const bytes = new Uint8Array(data);
    let firstMismatch = -1;
    if (seed !== undefined) for (let i = 0; i < bytes.length; i++) if (bytes[i] !== pattern(i, seed)) { firstMismatch = i; break; }
    return { type: 'binary', length: bytes.length, firstMismatch };
  };
  const hashText = (t) => { let h = 0; for (let i = 0; i < t.length; i++) h = (h * 33 + t.charCodeAt(i)) | 0; return h; };
  let mod = null;
  let modError = null;
  try { mod = await import('/tether.js'); } catch (err) { modError = String(err); }
  window.tt = {
    secure: { protocol: location.protocol, isSecureContext: window.isSecureContext },
    modKind: mod ? typeof mod.TetherSocket : `import failed: ${modError}`,
    hashText,
    bigText(n, seed) {
      const words = ['tether', 'wss', 'deflate', 'é', '€', '😀', '{"k":', String(seed), '}', ' '];
      let out = '';
      let i = 0;
      while (out.length < n) out += words[(i++ * 7 + seed) % words.length];
      out = out.slice(0, n);
      // Never end on half a surrogate pair (it would be sent as U+FFFD).
      return /[\ud800-\udbff]$/.test(out) ? `${out.slice(0, -1)}x` : out;
    },
    open(id, url, ms) {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      const s = { ws, messages: [], close: null, errors: 0, opened: false, wake: null, seeds: [] };
      sockets[id] = s;
      const notify = () => { if (s.wake) s.wake(); };
      ws.onopen = () => { s.opened = true; notify(); };
      ws.onmessage = (ev) => { s.messages.push(describe(ev.data, typeof ev.data === 'string' ? undefined : s.seeds.shift())); notify(); };
      ws.onerror = () => { s.errors++; notify(); };
      ws.onclose = (ev) => { s.close = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean }; notify(); };
      return until(`opening ${url}`, ms, () => {
        if (s.opened) return { protocol: ws.protocol, extensions: ws.extensions };
        if (s.close) throw new Error(`closed before opening (code ${s.close.code}, ${s.errors} error events)`);
        return undefined;
      }, s);
    },
    sendText(id, text) { sockets[id].ws.send(text); return { length: text.length, hash: hashText(text) }; },
    sendPattern(id, size, seed) {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = pattern(i, seed);
      sockets[id].seeds.push(seed);
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
      return until('waiting for the close event', ms, () => (s.close ? { ...s.close, errors: s.errors } : undefined), s);
    },
    // TetherSocket (web/tether.js as served by tether): open, echo text + binary, close.
    async tetherSocket(url, ms) {
      const ws = new mod.TetherSocket(url, { pingInterval: 1000, pingTimeout: 3000 });
      ws.binaryType = 'arraybuffer';
      const s = { wake: null, events: [], messages: [] };
      const notify = () => { if (s.wake) s.wake(); };
      for (const type of ['open', 'close', 'reconnecting']) {
        ws.addEventListener(type, (e) => {
          s.events.push({ type, code: e.code, wasClean: e.wasClean, cause: e.cause, attempt: e.attempt });
          notify();
        });
      }
      ws.onmessage = (e) => {
        s.messages.push(typeof e.data === 'string' ? { type: 'text', text: e.data }
          : { type: 'binary', bytes: Array.from(new Uint8Array(e.data)) });
        notify();
      };
      const open = await until('TetherSocket open', ms, () => s.events.find((e) => e.type === 'open'), s);
      const protocol = ws.protocol;
      ws.send('tether.js over wss ✓');
      ws.send(new Uint8Array([0, 1, 2, 250, 255]));
      const msgs = await until('TetherSocket echoes', ms, () => (s.messages.length >= 2 ? s.messages.slice(0, 2) : undefined), s);
      ws.close(1000, 'done');
      const close = await until('TetherSocket close', ms, () => s.events.find((e) => e.type === 'close'), s);
      return { open, protocol, msgs, close, reconnecting: s.events.filter((e) => e.type === 'reconnecting').length };
    },
  };
  return window.tt.modKind;
}

// ------------------------------------------------------------------ cases

function checkEcho(got, expect) {
  if (got.type !== expect.type) return `came back as ${got.type}, sent as ${expect.type}`;
  if (got.length !== expect.length) return `got ${got.length} ${got.type === 'text' ? 'UTF-16 units' : 'bytes'}, sent ${expect.length}`;
  if (expect.type === 'text' && got.hash !== expect.hash) return `text differs (${JSON.stringify(got.text)})`;
  if (expect.type === 'binary' && got.firstMismatch >= 0) return `content differs from byte ${got.firstMismatch} on`;
  return null;
}

async function echoCase(report, page, id, url, label, messages, extensionsCheck) {
  const opened = await inPage(page, `opening ${url}`, ([i, u, ms]) => window.tt.open(i, u, ms), [id, url, PAGE_MS]);
  report.ok(`${label}: the page's WebSocket opens ${url}`, `extensions ${JSON.stringify(opened.extensions)}`);
  if (extensionsCheck) {
    const problem = extensionsCheck(opened.extensions);
    if (problem) report.fail(`${label}: negotiated extensions`, problem);
    else report.ok(`${label}: negotiated extensions`, JSON.stringify(opened.extensions));
  }
  for (const [index, m] of messages.entries()) {
    const expect = await inPage(page, 'sending', ([i, msg]) => {
      if (msg.type === 'text') {
        const text = msg.text !== undefined ? msg.text : window.tt.bigText(msg.size, msg.seed);
        return { type: 'text', ...window.tt.sendText(i, text) };
      }
      window.tt.sendPattern(i, msg.size, msg.seed);
      return { type: 'binary', length: msg.size };
    }, [id, m]);
    const ok = await report.run(`${label}: echo ${m.name}`, async () => {
      const got = await inPage(page, m.name, ([i, ms]) => window.tt.next(i, ms), [id, PAGE_MS]);
      return checkEcho(got, expect);
    }, EVAL_MS + 1000);
    if (!ok) {
      const closed = await inPage(page, 'close state', ([i]) => window.tt.waitClose(i, 1000).catch(() => null), [id]);
      if (closed) {
        const rest = messages.length - index - 1;
        report.fail(`${label}: remaining ${rest} echoes and the close`,
          `not run: the connection is closed (${JSON.stringify(closed)}) after "${m.name}"` +
          (index > 0 ? ` (the message before it: "${messages[index - 1].name}")` : ''));
        return;
      }
    }
  }
  await inPage(page, 'closing', ([i]) => window.tt.close(i, 1000, 'done'), [id]);
  const closed = await inPage(page, 'waiting for the close event', ([i, ms]) => window.tt.waitClose(i, ms), [id, PAGE_MS]);
  report.check(`${label}: ws.close(1000) gives a clean close event with code 1000 and no error event`,
    closed.code === 1000 && closed.wasClean === true && closed.errors === 0, JSON.stringify(closed));
}

async function tlsGroup(report, browser, server, launchPlain) {
  const origin = `https://127.0.0.1:${server.port}`;
  const page = await c.withTimeout(browser.newPage(), PAGE_MS, 'opening a page');
  const pageLog = [];
  page.on('console', (msg) => pageLog.push(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => pageLog.push(`page error: ${err.message}`));
  try {
    const res = await c.withTimeout(page.goto(`${origin}/healthz`), PAGE_MS, `loading ${origin}/healthz`);
    report.check(`Chromium (SPKI of the server key pinned) loads ${origin}/healthz`, res && res.ok(),
      `status ${res && res.status()}`);
    const kind = await inPage(page, 'installing the page harness', pageHarness);
    const secure = await inPage(page, 'secure context', () => window.tt.secure);
    report.check('the page is an https: secure context', secure.protocol === 'https:' && secure.isSecureContext,
      JSON.stringify(secure));
    report.check("import('/tether.js') over https exports TetherSocket", kind === 'function', kind);
    await echoCase(report, page, 'a', `wss://127.0.0.1:${server.port}/`, 'wss', [
      { name: `text ${JSON.stringify(TEXT)}`, type: 'text', text: TEXT },
      { name: `binary ArrayBuffer of ${BINARY_SIZE} bytes`, type: 'binary', size: BINARY_SIZE, seed: 1 },
      { name: 'empty text', type: 'text', text: '' },
    ]);
    if (kind === 'function') {
      const r = await inPage(page, 'TetherSocket over wss', ([u, ms]) => window.tt.tetherSocket(u, ms),
        [`wss://127.0.0.1:${server.port}/`, PAGE_MS / 2]);
      report.check('TetherSocket over wss: open (attempt 1), subprotocol tether.resume.v1',
        r.open.attempt === 1 && r.protocol === 'tether.resume.v1', JSON.stringify({ open: r.open, protocol: r.protocol }));
      report.check('TetherSocket over wss: text echo exact',
        r.msgs[0].type === 'text' && r.msgs[0].text === 'tether.js over wss ✓', JSON.stringify(r.msgs[0]));
      report.check('TetherSocket over wss: binary echo exact',
        r.msgs[1].type === 'binary' && r.msgs[1].bytes.join() === '0,1,2,250,255', JSON.stringify(r.msgs[1]));
      report.check('TetherSocket over wss: close(1000) clean, cause local_close, no reconnect',
        r.close.code === 1000 && r.close.wasClean === true && r.close.cause === 'local_close' && r.reconnecting === 0,
        JSON.stringify(r));
    }
    // Without the pin the same certificate must be refused: the pin, not a blanket ignore, made it work.
    const plain = await launchPlain();
    try {
      const p2 = await c.withTimeout(plain.newPage(), PAGE_MS, 'opening a page');
      let error = null;
      try {
        await c.withTimeout(p2.goto(`${origin}/healthz`), PAGE_MS, 'loading without the pin');
      } catch (err) {
        error = firstLine(err);
      }
      report.check('Chromium without the SPKI pin refuses the test certificate (ERR_CERT_AUTHORITY_INVALID)',
        error !== null && /ERR_CERT_AUTHORITY_INVALID/.test(error), error || 'the page loaded');
    } finally {
      await c.withTimeout(plain.close(), 10000, 'closing Chromium').catch(() => {});
    }
  } finally {
    if (report.failed.length && pageLog.length) console.log(`page log:\n  ${pageLog.slice(-20).join('\n  ')}`);
  }
}

async function deflateGroup(report, browser, servers) {
  // Chromium offers "permessage-deflate; client_max_window_bits"; tether's default answer adds both
  // no_context_takeover parameters, and threshold=0 alone asks for nothing.
  const extensionsCheck = (want) => (ext) => {
    const parts = ext.split(';').map((p) => p.trim());
    if (parts[0] !== 'permessage-deflate') return `ws.extensions is ${JSON.stringify(ext)}, expected permessage-deflate`;
    if (parts.slice(1).sort().join() !== want.slice().sort().join()) {
      return `ws.extensions ${JSON.stringify(ext)}, expected the parameters [${want.join(', ')}]`;
    }
    return null;
  };
  const messages = [];
  for (let round = 0; round < 3; round++) {
    messages.push({ name: `round ${round}: short text`, type: 'text', text: `hi ${round}` });
    messages.push({ name: `round ${round}: empty text`, type: 'text', text: '' });
    messages.push({ name: `round ${round}: 100 KiB compressible text`, type: 'text', size: 100 * 1024, seed: 3 });
    messages.push({ name: `round ${round}: 64 KiB binary`, type: 'binary', size: BINARY_SIZE, seed: 5 + round });
  }
  messages.push({ name: '1 MiB text', type: 'text', size: 1024 * 1024, seed: 9 });
  const label = (server) => `${server.scheme} + permessage-deflate${server.takeover ? ' (threshold=0, context takeover)' : ''}`;
  for (const server of servers) {
    const origin = `${server.scheme === 'wss' ? 'https' : 'http'}://127.0.0.1:${server.port}`;
    const page = await c.withTimeout(browser.newPage(), PAGE_MS, 'opening a page');
    try {
      const res = await c.withTimeout(page.goto(`${origin}/healthz`), PAGE_MS, `loading ${origin}/healthz`);
      if (!res || !res.ok()) throw new Error(`${origin}/healthz gave ${res && res.status()}`);
      await inPage(page, 'installing the page harness', pageHarness);
      await echoCase(report, page, 'd', `${server.url}/`, label(server), messages,
        extensionsCheck(server.takeover ? [] : ['server_no_context_takeover', 'client_no_context_takeover']));
    } catch (err) {
      report.fail(label(server), err instanceof c.TimeoutError ? err.message : firstLine(err));
    } finally {
      await page.close().catch(() => {});
    }
  }
}

// ------------------------------------------------------------------ main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { chromium } = requirePlaywright();
  try {
    fs.accessSync(args.chromium, fs.constants.X_OK);
  } catch (err) {
    console.log(`FAIL: no Chromium at ${args.chromium} (${err.code}); install Debian's 'chromium' package`);
    return 1;
  }
  const report = new c.Report(`chromium over TLS [${args.group}]`);
  const t0 = Date.now();
  const children = [];
  c.capRuntime(TOTAL_MS, children);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-tls-browser-'));
  const servers = [];
  let browser = null;
  try {
    let pki;
    try {
      pki = makePki(tmp);
    } catch (err) {
      report.fail('generate the test CA and server certificate with openssl', `${err.message} ${err.stderr || ''}`);
      return report.finish();
    }
    report.ok('test CA and server certificate generated with openssl', `SPKI sha256 ${pki.spki}`);
    const tlsArgs = ['--tls-cert', pki.cert, '--tls-key', pki.key];
    // deflate: tether's default (both no_context_takeover) over ws and wss, and context takeover
    // kept with every message compressed (threshold=0), as Chromium itself keeps its context.
    const configs = args.group === 'all' ? [tlsArgs]
      : [['--deflate'], [...tlsArgs, '--deflate'], ['--deflate-options', 'threshold=0']];
    for (const extra of configs) {
      try {
        const s = await startServe(args.tether, extra);
        children.push(s.proc);
        s.takeover = extra.includes('threshold=0');
        servers.push(s);
        const wantTls = extra.includes('--tls-cert');
        report.check(`tether serve ${extra.filter((a) => a.startsWith('--')).join(' ')} prints '${s.line}'`,
          s.scheme === (wantTls ? 'wss' : 'ws'), `expected ${wantTls ? 'wss' : 'ws'}://`);
      } catch (err) {
        report.fail(`start tether serve ${extra.join(' ')}`, err.message);
        return report.finish();
      }
    }
    const launch = (extraArgs) => chromium.launch({
      executablePath: args.chromium, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: LAUNCH_MS,
    });
    try {
      browser = await launch([`--ignore-certificate-errors-spki-list=${pki.spki}`]);
    } catch (err) {
      report.fail('launch Chromium', err.message.split('\n')[0]);
      return report.finish();
    }
    report.ok('launch headless Chromium with the server key pinned', browser.version());
    if (args.group === 'all') await tlsGroup(report, browser, servers[0], () => launch([]));
    else await deflateGroup(report, browser, servers);
  } catch (err) {
    report.fail('harness', err instanceof c.TimeoutError ? err.message : firstLine(err));
  } finally {
    if (browser) await c.withTimeout(browser.close(), 10000, 'closing Chromium').catch(() => {});
    for (const s of servers) {
      c.kill(s.proc);
      if (s.stderr.length) console.log(`note: tether serve stderr:\n  ${s.stderr.slice(-10).join('\n  ')}`);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`note: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
  return report.finish();
}

main().then((code) => process.exit(code), (err) => {
  console.log(`FAIL: ${err.stack}`);
  process.exit(1);
});
