#!/usr/bin/node
// web/tether.js under Node against a scripted fake WebSocket: the resume protocol byte for byte
// (hello, welcome, numbering, piggybacked and standalone acks, duplicates, gaps, resume and
// resume_failed, P answered by Q), the reconnect policy and backoff bounds, the offline pause.
// No network, no browser. PASS/FAIL per check; every wait bounded; exits non-zero on failure.

class FakeWS {
  static instances = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.protocol = "";
    this.extensions = "";
    this.bufferedAmount = 0;
    this.sent = [];
    this.closedWith = null;
    FakeWS.instances.push(this);
  }
  send(d) { this.sent.push(typeof d === "string" ? d : `<bin ${Buffer.from(d).toString("latin1")}>`); }
  close(code, reason) { this.closedWith = { code, reason }; this.readyState = 3; }
  // the server side, scripted
  open(protocol = "tether.resume.v1") { this.readyState = 1; this.protocol = protocol; this.onopen?.({}); }
  recv(data) { this.onmessage?.({ data }); }
  drop(code = 1006, reason = "", wasClean = false) { this.readyState = 3; this.onclose?.({ code, reason, wasClean }); }
  static last() { return FakeWS.instances[FakeWS.instances.length - 1]; }
}
globalThis.WebSocket = FakeWS;
// Imported as module source (a data: URL), not by file name: web/tether.js is an ES module the
// browser loads as such, and Node 18 (Debian 12) would otherwise parse a .js file as CommonJS.
import { readFileSync } from "node:fs";
const source = readFileSync(new URL("../../web/tether.js", import.meta.url), "utf8");
const { TetherSocket } = await import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));

let failed = 0;
let passed = 0;
const check = (name, cond, detail) => {
  if (cond) { passed++; console.log(`PASS [tether.js unit] ${name}`); }
  else { failed++; console.log(`FAIL [tether.js unit] ${name}: ${detail}`); }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const SID = "8cea27e5b4bfd859d8ae21e16abb870f";
const SID2 = "3f0c1e9a77d24b6c8e5f0a1b2c3d4e5f";
function record(ts) {
  const ev = [];
  for (const t of ["open", "message", "close", "reconnecting", "resumed", "resume_failed", "rtt"])
    ts.addEventListener(t, (e) => ev.push({ type: t, data: e.data, code: e.code, cause: e.cause, reason: e.reason,
      wasClean: e.wasClean, attempt: e.attempt, delay: e.delay, replayed: e.replayed }));
  return ev;
}
const welcome = (o) => "W" + JSON.stringify({ v: 1, session: SID, resumed: false, last: 0, reason: "new session", ...o });

// ---- resume: hello, welcome, numbering, acks
{
  const ts = new TetherSocket("ws://x/", { pingInterval: 0, backoffMin: 20, backoffMax: 40 });
  const ev = record(ts);
  ts.send("early");
  const ws = FakeWS.last();
  check("offers tether.resume.v1 first", same(ws.protocols, ["tether.resume.v1"]), JSON.stringify(ws.protocols));
  ws.open();
  check("hello for a new session", same(ws.sent, ['H{"v":1,"session":"","last":0}']), JSON.stringify(ws.sent));
  check("open event attempt 1, readyState OPEN", ev[0]?.type === "open" && ev[0].attempt === 1 && ts.readyState === 1, JSON.stringify(ev));
  ws.sent = [];
  ws.recv("P7");
  check("P before the welcome is answered with Q", same(ws.sent, ["Q7"]), JSON.stringify(ws.sent));
  ws.sent = [];
  ws.recv(welcome());
  check("after the welcome the stored message goes out as M1,0", same(ws.sent, ["M1,0;early"]), JSON.stringify(ws.sent));
  check("no resume_failed for a first session", !ev.some((e) => e.type === "resume_failed"), JSON.stringify(ev));
  ws.sent = [];
  ws.recv("M1,1;a");
  ts.send(new Uint8Array([1, 2]));
  check("piggybacked ack, binary keeps its type", same(ws.sent, ["<bin M2,1;\x01\x02>"]), JSON.stringify(ws.sent));
  ws.recv("M2,1;b");
  ws.recv("M2,1;b");
  const bin = new Uint8Array([77, 51, 44, 50, 59, 200]).buffer; // "M3,2;" + 0xC8
  ws.recv(bin);
  const msgs = ev.filter((e) => e.type === "message").map((e) => (typeof e.data === "string" ? e.data : [...new Uint8Array(e.data)]));
  check("in-order delivery, duplicate dropped, binary payload as ArrayBuffer", same(msgs, ["a", "b", [200]]), JSON.stringify(msgs));
  ws.sent = [];
  await sleep(90);
  check("standalone ack after 50 ms", same(ws.sent, ["A3"]), JSON.stringify(ws.sent));
  ws.sent = [];
  for (let i = 4; i < 4 + 64; i++) ws.recv(`M${i},2;x`);
  check("ack at once after 64 messages", same(ws.sent, ["A67"]), JSON.stringify(ws.sent));
  ws.sent = [];
  ws.recv("Q1"); // answers no ping of ours: ignored
  check("stray Q ignored", ws.sent.length === 0 && ws.closedWith === null, JSON.stringify(ws.sent));

  // connection lost: resume
  ts.send("offline-1");
  ws.drop(1006);
  const close1 = ev.filter((e) => e.type === "close")[0];
  check("abnormal close reported as network_error 1006", close1?.code === 1006 && close1.cause === "network_error" && close1.wasClean === false, JSON.stringify(close1));
  const rec = ev.filter((e) => e.type === "reconnecting")[0];
  check("reconnecting with attempt 2 and a delay in [min, 2*min]", rec?.attempt === 2 && rec.delay >= 20 && rec.delay <= 40, JSON.stringify(rec));
  check("readyState CONNECTING while reconnecting", ts.readyState === 0, String(ts.readyState));
  ts.send("offline-2");
  await sleep(80);
  const ws2 = FakeWS.last();
  check("reconnected", ws2 !== ws, "no new socket");
  ws2.open();
  check("hello names the session and last", same(ws2.sent, [`H{"v":1,"session":"${SID}","last":67}`]), JSON.stringify(ws2.sent));
  ws2.sent = [];
  ws2.recv("W" + JSON.stringify({ v: 1, session: SID, resumed: true, last: 2, reason: "" }));
  check("resume re-sends what the server lacks, original numbers, current ack",
    same(ws2.sent, ["M3,67;offline-1", "M4,67;offline-2"]), JSON.stringify(ws2.sent));
  const resumed = ev.filter((e) => e.type === "resumed")[0];
  check("resumed event with replayed 2", resumed?.replayed === 2, JSON.stringify(resumed));
  ws2.recv("A4");
  ws2.recv("M68,4;y");
  check("numbering continues", ev.filter((e) => e.type === "message").pop()?.data === "y", "");

  // fresh session: renumbered, resume_failed
  ts.send("z1");
  ws2.drop(1001, "going away", true);
  const close2 = ev.filter((e) => e.type === "close")[1];
  check("1001 from the server: remote_close, reconnect", close2?.cause === "remote_close" && ev.filter((e) => e.type === "reconnecting").length === 2, JSON.stringify(close2));
  await sleep(100);
  const ws3 = FakeWS.last();
  ws3.open();
  ws3.sent = [];
  ws3.recv(welcome({ session: SID2, reason: "unknown session" }));
  check("fresh session: unacknowledged messages renumbered from 1", same(ws3.sent, ["M1,0;z1"]), JSON.stringify(ws3.sent));
  const rf = ev.filter((e) => e.type === "resume_failed")[0];
  check("resume_failed with the server's reason", rf?.reason === "unknown session", JSON.stringify(rf));

  // gap: protocol error
  ws3.recv("M2,0;gap");
  check("a gap closes the socket (4002) and reports 1002 protocol_error",
    ws3.closedWith?.code === 4002 && ev.filter((e) => e.type === "close").pop()?.code === 1002 &&
    ev.filter((e) => e.type === "close").pop()?.cause === "protocol_error", JSON.stringify(ws3.closedWith));
  check("no reconnect after a protocol error; CLOSED", ts.readyState === 3, String(ts.readyState));
}

// ---- malformed frames
for (const bad of ["M01,0;x", "X1", "", "A", "P", "P a", "Mx", "H{}", "A99"]) {
  const ts = new TetherSocket("ws://x/", { pingInterval: 0, reconnect: false });
  const ws = FakeWS.last();
  ws.open();
  ws.recv(welcome());
  ws.recv(bad);
  check(`malformed/unexpected ${JSON.stringify(bad)} -> 1002`, ws.closedWith?.code === 4002 && ts.readyState === 3, JSON.stringify(ws.closedWith));
}

// ---- close(): waits for acks, 1000 ends the session; a server 1000 does not reconnect
{
  const ts = new TetherSocket("ws://x/", { pingInterval: 0 });
  const ev = record(ts);
  const ws = FakeWS.last();
  ws.open();
  ws.recv(welcome());
  ts.send("last words");
  ts.close(1000, "bye");
  check("close() waits for the ack", ws.closedWith === null && ts.readyState === 2, JSON.stringify(ws.closedWith));
  ws.recv("A1");
  check("then closes with the app's code", ws.closedWith?.code === 1000 && ws.closedWith.reason === "bye", JSON.stringify(ws.closedWith));
  ws.drop(1000, "bye", true);
  const c = ev.filter((e) => e.type === "close");
  check("one close event, local_close, clean, CLOSED", c.length === 1 && c[0].cause === "local_close" && c[0].wasClean && ts.readyState === 3, JSON.stringify(c));
  const ts2 = new TetherSocket("ws://x/", { pingInterval: 0 });
  const ev2 = record(ts2);
  FakeWS.last().open("");
  FakeWS.last().drop(1000, "", true);
  check("server 1000: no reconnect", ev2.filter((e) => e.type === "reconnecting").length === 0 && ts2.readyState === 3, JSON.stringify(ev2));
}

// ---- backoff: bounds, maxAttempts, 1012 "reconnect in N ms"
{
  const ts = new TetherSocket("ws://x/", { resume: false, backoffMin: 10, backoffMax: 35, maxAttempts: 4 });
  const ev = record(ts);
  for (let i = 0; i < 5; i++) {
    FakeWS.last().drop(1006);
    await sleep(60);
  }
  const recs = ev.filter((e) => e.type === "reconnecting");
  const ceilings = [20, 35, 35, 35];
  check("4 reconnect attempts, then CLOSED with connect_failed", recs.length === 4 && ts.readyState === 3 &&
    ev.filter((e) => e.type === "close").pop()?.cause === "connect_failed", JSON.stringify(recs));
  check("delays within [min, min(max, min*2^n)]", recs.every((r, i) => r.delay >= 10 && r.delay <= Math.ceil(ceilings[i])),
    JSON.stringify(recs.map((r) => r.delay)));
  const ts2 = new TetherSocket("ws://x/", { resume: false, backoffMin: 10 });
  const ev2 = record(ts2);
  FakeWS.last().open("");
  FakeWS.last().drop(1012, "restarting; reconnect in 70ms", true);
  const r = ev2.find((e) => e.type === "reconnecting");
  check("1012 'reconnect in 70ms' honoured (+ up to min)", r && r.delay >= 70 && r.delay <= 80, JSON.stringify(r));
  ts2.close();
}

// ---- plain mode: offline queue, order
{
  const ts = new TetherSocket("ws://x/", { resume: false });
  ts.send("1");
  ts.send("2");
  const ws = FakeWS.last();
  check("plain: no subprotocol offered", same(ws.protocols, []), JSON.stringify(ws.protocols));
  ws.open("");
  ts.send("3");
  check("plain: queued messages first, in order", same(ws.sent, ["1", "2", "3"]), JSON.stringify(ws.sent));
  ts.close();
}

// ---- offline pause
{
  globalThis.navigator = { onLine: false };
  const listeners = {};
  globalThis.addEventListener = (t, f) => { listeners[t] = f; };
  globalThis.removeEventListener = () => {};
  const n = FakeWS.instances.length;
  const ts = new TetherSocket("ws://x/", { resume: false });
  check("offline: no attempt while navigator.onLine is false", FakeWS.instances.length === n, "a socket was created");
  globalThis.navigator.onLine = true;
  listeners.online?.();
  check("online event: attempt at once", FakeWS.instances.length === n + 1, "no socket");
  ts.close();
}

// ---- heartbeat: P sent when quiet, rtt from Q, dead peer -> heartbeat_timeout
{
  const ts = new TetherSocket("ws://x/", { pingInterval: 60, pingTimeout: 60, backoffMin: 1000 });
  const ev = record(ts);
  const ws = FakeWS.last();
  ws.open();
  ws.recv(welcome());
  await sleep(100);
  const ping = ws.sent.find((s) => s.startsWith("P"));
  check("P<n> sent after pingInterval of quiet", /^P\d+$/.test(ping || ""), JSON.stringify(ws.sent));
  ws.recv("Q" + ping.slice(1));
  check("rtt event from the answer", ev.some((e) => e.type === "rtt"), JSON.stringify(ev));
  await sleep(250);
  const c = ev.find((e) => e.type === "close");
  check("silent peer: close 1006 heartbeat_timeout, then reconnecting",
    c?.cause === "heartbeat_timeout" && c.code === 1006 && ev.some((e) => e.type === "reconnecting") && ws.closedWith?.code === 4000,
    JSON.stringify(c));
  ts.close();
}

console.log(`tether.js unit: ${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);
