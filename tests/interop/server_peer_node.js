#!/usr/bin/node
'use strict';
// Interop matrix B, Node peer: `ws` WebSocketServer -> `tether connect URL --echo --json-events`.
//
// The test server drives each tether connect process; the URL path says what to do:
//   /echo          send every payload (text and binary), fragmented messages and pings, check
//                  each echo, then close with 1000
//   /close/CODE    close at once with CODE; tether must echo it and report a clean close
//   /violation/N   (raw TCP server, handshake by hand) send the Nth bad frame of cases.json
//                  "server_violations"; tether must fail the connection with the right code
// The JSON event lines tether prints are checked against what the server sent.
// Groups (--group): echo (the /echo and /close/CODE runs), violations, all.

const net = require('net');
const c = require('./common');

const { WebSocketServer } = c.requireWs();

const children = [];

// Server-side drivers resolve the promise registered for their URL path.
const scenarios = new Map();
function expectScenario(urlPath) {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  scenarios.set(urlPath, { promise, resolve, claimed: false });
  return promise;
}
function claimScenario(urlPath) {
  const s = scenarios.get(urlPath);
  if (!s || s.claimed) return null;
  s.claimed = true;
  return s;
}

// Server side of /echo. Resolves to the messages sent, in order, for matching tether's JSON.
async function driveEcho(report, peer) {
  const sent = [];
  const cases = [];
  for (const size of c.CASES.payload_sizes) {
    cases.push([`tether echoes text ${size} bytes`, c.textPayload(size)]);
    cases.push([`tether echoes binary ${size} bytes`, c.binaryPayload(size)]);
  }
  cases.push(['tether echoes a fragmented text message whole',
    { binary: false, data: ['frag-', 'é€😀', '', '-end'].map((s) => Buffer.from(s)) }]);
  cases.push(['tether echoes a fragmented text message with a code point split across fragments',
    { binary: false, data: [Buffer.from('a\xe2', 'latin1'), Buffer.from('\x82\xacb', 'latin1')] }]);
  cases.push(['tether echoes a fragmented binary message whole',
    { binary: true, data: [c.binaryPayload(1000).data, Buffer.alloc(0), c.binaryPayload(70000).data] }]);
  for (const [name, msg] of cases) {
    const big = !Array.isArray(msg.data) && msg.data.length > 1000000;
    const ms = big ? c.BIG_MS : c.STEP_MS;
    const ok = await report.run(name, async () => {
      await peer.send(msg);
      sent.push(c.wholeMessage(msg));
      return c.compareMessages(c.wholeMessage(msg), await peer.next(ms));
    }, ms + 1000);
    if (!ok) {
      report.fail('remaining echo cases', 'not run after the failure above');
      peer.ws.close(1000, 'echo cases aborted'); // let tether exit instead of being killed
      return sent;
    }
  }
  for (const payload of [Buffer.from('tether\x00\xffping', 'latin1'), Buffer.from([...Array(125).keys()]), Buffer.alloc(0)]) {
    await report.run(`tether answers a ${payload.length}-byte ping with the same pong`, () => peer.ping(payload));
  }
  await report.run("tether echoes the server's close 1000", async () => {
    const got = await peer.close(1000, 'echo done');
    return got.code === 1000 ? null : `tether answered with close ${got.code}`;
  });
  return sent;
}

async function driveClose(peer, code) {
  const got = await peer.close(code, `bye ${code}`);
  return got.code === code ? null : `tether answered close ${code} with close ${got.code}`;
}

// Raw server side of /violation/N: send the bad frames, read tether's close frame, echo it.
async function driveViolation(sock, reader, spec) {
  sock.write(Buffer.concat(spec.frames.map((f) => c.frameFromSpec(f, false))));
  const { close, why } = await reader.readUntilClose(3000);
  if (!close) return `${why}; expected close ${spec.expect[0]} from tether`;
  const problems = [];
  const { code, reason } = c.parseClose(close.payload);
  if (!spec.expect.includes(code)) {
    problems.push(`tether's close frame has code ${code} (reason ${JSON.stringify(reason)}), expected ${spec.expect[0]}`);
  }
  if (!close.masked) problems.push("tether's close frame is not masked");
  // Complete the closing handshake the way a server does: echo, then close TCP.
  sock.end(c.encodeFrame(c.OP.CLOSE, close.payload.subarray(0, 2), { masked: false }));
  return problems.join('; ') || null;
}

// Start tether connect on `url`, wait for the server side and the process exit.
async function runClient(tether, url, scenario, ms) {
  const client = c.startTetherConnect(tether, url);
  children.push(client.proc);
  const exited = new Promise((resolve) => {
    client.proc.once('exit', () => resolve('exited'));
    client.proc.once('error', () => resolve('exited'));
  });
  let result = await c.withTimeout(Promise.race([scenario, exited]), ms, 'scenario').catch(() => 'timeout');
  if (result === 'exited') {
    // The process may exit a moment before the server side has noticed.
    result = await c.withTimeout(scenario, 3000, 'scenario').catch(() =>
      (client.spawnError || `tether connect exited with status ${client.proc.exitCode} before the server side finished`));
  } else if (result === 'timeout') {
    result = `the server side did not finish within ${ms / 1000} s`;
  }
  let rc = await c.waitExit(client.proc, c.STEP_MS);
  if (rc === undefined) c.kill(client.proc);
  await c.withTimeout(client.stdoutDone, 2000, 'stdout').catch(() => {});
  if (rc === null) rc = `signal ${client.proc.signalCode}`;
  return { client, result, rc };
}

// Problems with the JSON close event / exit status of a finished tether connect.
function closeEventProblems(client, rc, codes, cause, clean, wantRc) {
  const problems = [];
  if (client.badLines.length) problems.push(`stdout lines that are not JSON events: ${JSON.stringify(client.badLines.slice(0, 3))}`);
  if (!client.ofKind('open').length) problems.push("no 'open' event");
  const closes = client.ofKind('close');
  if (closes.length !== 1) problems.push(`${closes.length} 'close' events, expected 1`);
  if (closes.length) {
    const ev = closes[closes.length - 1];
    if (!codes.includes(ev.code)) problems.push(`close event code ${ev.code}, expected ${codes[0]}`);
    if (clean !== null && ev.clean !== clean) problems.push(`close event clean=${ev.clean}, expected ${clean}`);
    if (ev.cause !== cause) problems.push(`close event cause ${JSON.stringify(ev.cause)}, expected ${JSON.stringify(cause)}`);
  }
  if (client.ofKind('reconnecting').length) problems.push('tether tried to reconnect');
  if (rc === undefined) problems.push(`tether connect did not exit within ${c.STEP_MS / 1000} s of the close (killed)`);
  else if (wantRc !== null && rc !== wantRc) problems.push(`exit status ${rc}, expected ${wantRc}`);
  return problems;
}

async function echoGroup(report, tether, base) {
  const { client, result: sent, rc } = await runClient(tether, `${base}/echo`, expectScenario('/echo'), 90000);
  if (!Array.isArray(sent)) {
    report.fail('echo run', sent);
    return;
  }
  const got = client.ofKind('message');
  let mismatch = null;
  if (got.length !== sent.length) {
    mismatch = `${got.length} message events for ${sent.length} messages sent`;
  } else {
    for (let i = 0; i < sent.length && !mismatch; i++) {
      let msg;
      try {
        msg = c.eventMessage(got[i]);
      } catch (err) {
        mismatch = `message event #${i + 1}: ${err.message}`;
        break;
      }
      const problem = c.compareMessages(sent[i], msg);
      if (problem) mismatch = `message event #${i + 1}: ${problem}`;
    }
  }
  report.check('JSON message events match the messages sent', !mismatch, mismatch);
  const problems = closeEventProblems(client, rc, [1000], 'remote_close', true, 0);
  report.check('JSON close event {code:1000, clean:true, cause:remote_close} and exit 0', !problems.length, problems.join('; '));

  for (const code of c.CASES.valid_close_codes) {
    const run = await runClient(tether, `${base}/close/${code}`, expectScenario(`/close/${code}`), 10000);
    const p = (run.result ? [run.result] : []).concat(closeEventProblems(run.client, run.rc, [code], 'remote_close', true, 0));
    report.check(`server close ${code}: echoed, JSON close event code ${code} clean, exit 0`, !p.length, p.join('; '));
  }
}

async function violationsGroup(report, tether) {
  const raw = net.createServer(async (sock) => {
    sock.on('error', () => {});
    const reader = new c.SocketReader(sock);
    let hs;
    try {
      hs = await c.rawServerHandshake(sock, reader);
    } catch (err) {
      sock.destroy();
      return;
    }
    const s = claimScenario(hs.path);
    if (!s) { // a second connection (tether reconnecting?) or a stray one
      sock.destroy();
      return;
    }
    if (hs.problems.length) {
      sock.destroy();
      s.resolve(`bad client handshake: ${hs.problems.join('; ')}`);
      return;
    }
    const spec = c.CASES.server_violations[Number(hs.path.split('/').pop())];
    let result;
    try {
      result = await driveViolation(sock, reader, spec);
    } catch (err) {
      result = `${err.name}: ${err.message}`;
      sock.destroy();
    }
    s.resolve(result);
  });
  await new Promise((resolve) => raw.listen(0, '127.0.0.1', resolve));
  const port = raw.address().port;
  try {
    for (const [i, spec] of c.CASES.server_violations.entries()) {
      const run = await runClient(tether, `ws://127.0.0.1:${port}/violation/${i}`, expectScenario(`/violation/${i}`), 10000);
      // Exit status is not checked: the contract leaves it open after a protocol error.
      const p = (run.result ? [run.result] : []).concat(closeEventProblems(run.client, run.rc, spec.expect, 'protocol_error', null, null));
      report.check(`server violation: ${spec.name} -> tether closes ${spec.expect[0]}`, !p.length, p.join('; '));
    }
  } finally {
    raw.close();
  }
}

async function main() {
  const args = c.parseArgs(process.argv.slice(2));
  const report = new c.Report(`node server -> tether connect [${args.group}]`);
  c.capRuntime(100000, children);
  // maxPayload: the 16 MiB messages must pass (ws's default is 100 MiB; set it explicitly).
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', async (ws, req) => {
    const peer = new c.WsPeer(ws);
    const s = claimScenario(req.url);
    if (!s) {
      ws.close(1008, 'unexpected connection');
      return;
    }
    let result;
    try {
      result = req.url === '/echo' ? await driveEcho(report, peer) : await driveClose(peer, Number(req.url.split('/').pop()));
    } catch (err) {
      result = `${err.name}: ${err.message}`;
    }
    s.resolve(result);
  });
  const base = `ws://127.0.0.1:${wss.address().port}`;
  try {
    if (args.group !== 'violations') await echoGroup(report, args.tether, base);
    if (args.group !== 'echo') await violationsGroup(report, args.tether);
  } catch (err) {
    report.fail('harness', `${err.name}: ${err.message}`);
  } finally {
    children.forEach(c.kill);
    wss.close();
  }
  return report.finish();
}

main().then((code) => process.exit(code), (err) => {
  console.log(`FAIL: ${err.stack}`);
  children.forEach(c.kill);
  process.exit(1);
});
