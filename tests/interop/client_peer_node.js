#!/usr/bin/node
'use strict';
// Interop matrix A, Node peer: `tether serve --mode echo` <- `ws` client.
//
// Groups (--group):
//   echo        echo round trips (text and binary, every size in cases.json), fragmented
//               messages, ping/pong, and every valid close code echoed by the server
//   violations  hand-made bad frames on raw TCP connections, each of which the server must
//               answer with the right close code and then drop, while a healthy connection
//               keeps working
// Both end with SIGINT (Ctrl-C, a plain stop; SIGTERM means a restart and is covered by the
// python peer): an open client must get close 1001 and tether must exit 0 in 5 s.

const c = require('./common');

const WebSocket = c.requireWs();

// A correct server answers a bad frame at once; keep a broken one from taking minutes.
const VIOLATION_MS = 3000;

// The ws client offers permessage-deflate by default; keeping that default also checks that
// tether declines an extension it does not implement.
async function connect(url) {
  const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
  const peer = new c.WsPeer(ws);
  await c.withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), c.STEP_MS, `connecting to ${url}`);
  return peer;
}

async function roundtrip(peer, msg, ms = c.STEP_MS) {
  await peer.send(msg);
  return c.compareMessages(c.wholeMessage(msg), await peer.next(ms));
}

async function closeWith(url, code) {
  const peer = await connect(url);
  const got = await peer.close(code, `closing with ${code}`);
  return got.code === code ? null : `the server's close frame has code ${got.code}, expected ${code}`;
}

async function echoGroup(report, url) {
  let peer = await connect(url);
  const cases = [];
  for (const size of c.CASES.payload_sizes) {
    cases.push([`echo text ${size} bytes`, c.textPayload(size)]);
    cases.push([`echo binary ${size} bytes`, c.binaryPayload(size)]);
  }
  cases.push(['fragmented text message comes back whole',
    { binary: false, data: ['frag-', 'é€😀', '', '-end'].map((s) => Buffer.from(s)) }]);
  // Split a code point across fragments too: only the whole message must be valid UTF-8.
  cases.push(['fragmented text with a code point split across fragments comes back whole',
    { binary: false, data: [Buffer.from('a\xe2', 'latin1'), Buffer.from('\x82\xacb', 'latin1')] }]);
  cases.push(['fragmented binary message comes back whole',
    { binary: true, data: [c.binaryPayload(1000).data, Buffer.alloc(0), c.binaryPayload(70000).data] }]);
  for (const [name, msg] of cases) {
    const big = !Array.isArray(msg.data) && msg.data.length > 1000000;
    const ms = big ? c.BIG_MS : c.STEP_MS;
    if (!(await report.run(name, () => roundtrip(peer, msg, ms), ms + 1000))) {
      // A late echo must not be taken for the next case's: continue on a fresh connection.
      peer.ws.terminate();
      peer = await connect(url);
    }
  }

  for (const payload of [Buffer.from('tether\x00\xffping', 'latin1'), Buffer.from([...Array(125).keys()]), Buffer.alloc(0)]) {
    await report.run(`ping with ${payload.length}-byte payload gets the same pong`, () => peer.ping(payload));
  }
  await report.run('connection closes normally after the echo cases', async () => {
    const got = await peer.close(1000);
    return got.code === 1000 ? null : `close code received back: ${got.code}`;
  });

  for (const code of c.CASES.valid_close_codes) {
    await report.run(`close code ${code} is echoed by the server`, () => closeWith(url, code), c.STEP_MS * 2);
  }
}

// Send the frames of one cases.json violation; check the server's close frame and TCP close.
async function violation(server, spec) {
  const { sock, reader } = await c.rawClientConnect(server.host, server.port);
  try {
    sock.write(Buffer.concat(spec.frames.map((f) => c.frameFromSpec(f, true))));
    const { close, why } = await reader.readUntilClose(VIOLATION_MS);
    if (!close) return `${why}; expected close ${spec.expect[0]} from the server`;
    const problems = [];
    const { code, reason } = c.parseClose(close.payload);
    if (!spec.expect.includes(code)) problems.push(`close code ${code} (reason ${JSON.stringify(reason)}), expected ${spec.expect[0]}`);
    if (close.masked) problems.push("the server's close frame is masked");
    if (!(await reader.waitEof(3000))) problems.push('server did not close TCP within 3 s of its close frame');
    return problems.join('; ') || null;
  } finally {
    sock.destroy();
  }
}

// Valid edge case: a ping between two fragments must be answered at once, the text echoed whole.
async function rawInterleavedPing(server) {
  const { sock, reader } = await c.rawClientConnect(server.host, server.port);
  try {
    sock.write(Buffer.concat([
      c.encodeFrame(c.OP.TEXT, Buffer.from('a\xe2', 'latin1'), { fin: false }),
      c.encodeFrame(c.OP.PING, Buffer.from('mid')),
      c.encodeFrame(c.OP.CONT, Buffer.from('\x82\xacb', 'latin1')),
    ]));
    const { opcode, payload, controls } = await reader.readMessage();
    let pongs = controls.filter((f) => f.opcode === c.OP.PONG).map((f) => f.payload.toString('latin1'));
    if (pongs.length === 0) { // a pong after the echo would still be correct
      const frame = await reader.readFrame();
      pongs = frame.opcode === c.OP.PONG ? [frame.payload.toString('latin1')] : [];
    }
    const problems = [];
    if (pongs.length !== 1 || pongs[0] !== 'mid') problems.push(`pongs received ${JSON.stringify(pongs)}, expected ["mid"]`);
    if (opcode !== c.OP.TEXT || !payload.equals(Buffer.from('a€b'))) {
      problems.push(`echo was opcode ${opcode} payload ${payload.toString('hex')}, expected text 61e282ac62`);
    }
    return problems.join('; ') || null;
  } finally {
    sock.destroy();
  }
}

// Valid edge case: a close frame without a code is answered by a close with no code or 1000.
async function rawEmptyClose(server) {
  const { sock, reader } = await c.rawClientConnect(server.host, server.port);
  try {
    sock.write(c.encodeFrame(c.OP.CLOSE, Buffer.alloc(0)));
    const { close, why } = await reader.readUntilClose(VIOLATION_MS);
    if (!close) return why;
    const { code } = c.parseClose(close.payload);
    if (code !== null && code !== 1000) return `answered with close code ${code}, expected an empty close frame or 1000`;
    if (!(await reader.waitEof(3000))) return 'server did not close TCP within 3 s of the close handshake';
    return null;
  } finally {
    sock.destroy();
  }
}

async function violationGroup(report, server, bystander) {
  for (const spec of c.CASES.client_violations) {
    await report.run(`violation: ${spec.name} -> close ${spec.expect[0]}`, () => violation(server, spec), c.STEP_MS * 3);
  }
  await report.run('valid: ping between fragments, code point split across fragments', () => rawInterleavedPing(server));
  await report.run('valid: empty close frame is answered', () => rawEmptyClose(server));
  await report.run('healthy connection still echoes after the violations',
    () => roundtrip(bystander, { binary: false, data: Buffer.from('still here, é€😀') }));
  const fresh = await connect(`${server.url}/`);
  await report.run('a new connection is served after the violations',
    () => roundtrip(fresh, { binary: true, data: Buffer.from('\x00new', 'latin1') }));
  await fresh.close(1000).catch(() => {});
}

async function sigterm(report, server, peer) {
  const start = Date.now();
  server.proc.kill('SIGINT');
  let got = null;
  try {
    got = await peer.waitClosed(5000);
  } catch (err) { /* reported below */ }
  report.check('SIGINT: the open client receives close 1001', got && got.code === 1001,
    got ? `received close code ${got.code}` : 'connection still open 5 s after SIGINT');
  const rc = await c.waitExit(server.proc, Math.max(100, 5000 - (Date.now() - start)));
  report.check('SIGINT: tether serve exits 0 within 5 s', rc === 0,
    rc === undefined ? 'still running 5 s after SIGINT' : `exit status ${rc} (signal ${server.proc.signalCode})`);
}

async function main() {
  const args = c.parseArgs(process.argv.slice(2));
  const report = new c.Report(`node client -> tether serve [${args.group}]`);
  let server;
  try {
    server = await c.startTetherServe(args.tether);
  } catch (err) {
    report.fail('start tether serve', err.message);
    return report.finish();
  }
  c.capRuntime(100000, [server.proc]);
  report.ok(`tether serve printed 'listening ${server.url}'`);
  const url = `${server.url}/`;
  try {
    // A connection that lives through everything: the server keeps serving everyone else.
    const bystander = await connect(url);
    await report.run('bystander connection echoes', () => roundtrip(bystander, { binary: false, data: Buffer.from('hello') }));
    if (args.group !== 'violations') await echoGroup(report, url);
    if (args.group !== 'echo') await violationGroup(report, server, bystander);
    await sigterm(report, server, bystander);
  } catch (err) {
    report.fail('harness', `${err.name}: ${err.message}`);
  } finally {
    c.kill(server.proc);
  }
  return report.finish();
}

main().then((code) => process.exit(code), (err) => {
  console.log(`FAIL: ${err.stack}`);
  process.exit(1);
});
