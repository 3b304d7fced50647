// tether.js: the browser client of tether. An ES module, no build step, no dependencies.
//
//   import { TetherSocket } from "/tether.js";
//   const ws = new TetherSocket("ws://127.0.0.1:8080/", { resume: true });
//   ws.onmessage = (e) => console.log(e.data);
//   ws.send("hello");                 // queued while not open
//
// Shaped like the browser's WebSocket (readyState, send, close, bufferedAmount, on* handlers),
// plus what a WebSocket lacks:
// - reconnects with the same backoff as the C++ client (src/liveness/backoff.hpp): the delay for
//   attempt n is backoffMin + random * (min(backoffMax, backoffMin * 2^n) - backoffMin); a
//   1012/1013 close whose reason says "reconnect in N ms" is honoured (+ up to backoffMin of
//   jitter). It reconnects after abnormal ends and after 1001/1011/1012/1013 from the server,
//   not after close() nor 1000/1008 (or any other code) from the server. Attempts pause while
//   navigator.onLine is false and start again at once on the window's `online` event.
// - resume (tether.resume.v1, docs/resume.md): every message is numbered and kept until the
//   server acknowledges it, sent again after a reconnect, and nothing arrives twice.
// - an application heartbeat (docs/resume.md §2.8): browsers can neither send WebSocket pings
//   nor see them, so the client sends `P<n>` text frames and the server answers `Q<n>`. The
//   heartbeat needs the tether.resume.v1 subprotocol: with resume:false (or a server that does
//   not select it) pingInterval has no effect.
//
// Events: open (attempt), message (data), close (code, reason, wasClean, cause), reconnecting
// (attempt, delay), resumed (replayed), resume_failed (reason), rtt (ms). A `close` event is
// dispatched for every connection that ends; `reconnecting` follows when another attempt is
// scheduled. Browsers only let a page close with 1000 or 3000-4999, so where the C++ client
// fails a connection with 1002 (protocol error) or drops it (heartbeat timeout), tether.js
// closes the socket with 4002 / 4000 and reports 1002 / 1006 in its own `close` event.

const SUBPROTOCOL = "tether.resume.v1";
const ACK_DELAY = 50; // ms: standalone ack after the first unacknowledged message
const ACK_EVERY = 64; // messages: standalone ack at once
const RESET_AFTER = 10000; // ms open that reset the backoff attempt counter
const NUMBER = /^(0|[1-9][0-9]{0,19})$/;
const TOKEN = /^[\x21-\x7e]{1,64}$/;
const MAX_U64 = 18446744073709551615n;

/** @typedef {{seq: number, data: string|Uint8Array, size: number}} Stored */
/**
 * @typedef {Object} TetherOptions
 * @property {boolean} [resume=true] negotiate tether.resume.v1 (exactly-once across reconnects)
 * @property {number} [pingInterval=25000] ms; application ping when quiet this long (0: off)
 * @property {number} [pingTimeout=20000] ms; dead after pingInterval + pingTimeout of silence
 * @property {number} [backoffMin=500] ms
 * @property {number} [backoffMax=30000] ms
 * @property {number} [maxAttempts=0] reconnect attempts in a row (0: forever)
 * @property {boolean} [reconnect=true]
 * @property {string[]} [protocols=[]] extra subprotocols offered after tether.resume.v1
 * @property {number} [queueMax=10000] messages kept while offline / unacknowledged
 * @property {number} [handshakeTimeout=10000] ms for the opening handshake (0: the browser's)
 * @property {number} [closeTimeout=5000] ms close() waits for acknowledgements before closing
 */

const enc = new TextEncoder();

/** @param {string} s */
function parseNumber(s) {
  if (!NUMBER.test(s) || (s.length === 20 && BigInt(s) > MAX_U64)) return -1;
  return Number(s);
}

/** Parses "M<seq>,<ack>;" at the start of text or bytes. @returns {{seq:number, ack:number, off:number}|string} */
function parseDataHeader(/** @type {(i:number)=>number} */ at, /** @type {number} */ len) {
  let i = 1;
  const digits = () => {
    let s = "";
    while (i < len && s.length <= 20) {
      const c = at(i);
      if (c < 48 || c > 57) break;
      s += String.fromCharCode(c);
      i++;
    }
    return parseNumber(s);
  };
  const seq = digits();
  if (seq < 1 || i >= len || at(i) !== 44) return "data frame: bad sequence number";
  i++;
  const ack = digits();
  if (ack < 0 || i >= len || at(i) !== 59) return "data frame: bad ack";
  return { seq, ack, off: i + 1 };
}

/** @param {string} type @param {Object} fields */
function makeEvent(type, fields) {
  let ev;
  if (type === "message" && typeof MessageEvent === "function") ev = new MessageEvent(type, { data: fields.data });
  else if (type === "close" && typeof CloseEvent === "function")
    ev = new CloseEvent(type, { code: fields.code, reason: fields.reason, wasClean: fields.wasClean });
  else ev = new Event(type);
  for (const [k, v] of Object.entries(fields)) {
    if (!(k in ev)) Object.defineProperty(ev, k, { value: v, enumerable: true });
  }
  return ev;
}

export class TetherSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  CONNECTING = 0;
  OPEN = 1;
  CLOSING = 2;
  CLOSED = 3;

  /** @param {string|URL} url @param {TetherOptions} [options] */
  constructor(url, options = {}) {
    super();
    /** @type {Required<TetherOptions>} */
    this.options = {
      resume: true, pingInterval: 25000, pingTimeout: 20000, backoffMin: 500, backoffMax: 30000,
      maxAttempts: 0, reconnect: true, protocols: [], queueMax: 10000, handshakeTimeout: 10000,
      closeTimeout: 5000, ...options,
    };
    this.url = String(url);
    this.binaryType = "arraybuffer";
    /** @type {((ev: Event) => any) | null} */ this.onopen = null;
    /** @type {((ev: Event) => any) | null} */ this.onmessage = null;
    /** @type {((ev: Event) => any) | null} */ this.onclose = null;
    /** @type {((ev: Event) => any) | null} */ this.onerror = null;
    /** @type {((ev: Event) => any) | null} */ this.onreconnecting = null;
    /** @type {((ev: Event) => any) | null} */ this.onresumed = null;
    /** @type {((ev: Event) => any) | null} */ this.onresume_failed = null;
    /** @type {((ev: Event) => any) | null} */ this.onrtt = null;
    this._state = 0;
    /** @type {WebSocket|null} */ this._ws = null;
    this._attempt = 0; // backoff attempts since the last stable connection
    this._attemptNo = 1; // the attempt being made (reported in open / reconnecting)
    this._openedAt = 0;
    this._reconnectTimer = 0;
    this._waitingOnline = false;
    this._appClosed = false;
    this._closeCode = 1000;
    this._closeReason = "";
    this._closeTimer = 0;
    // plain mode: messages waiting for the socket
    /** @type {(string|Uint8Array)[]} */ this._pending = [];
    // resume state: lives across connections
    this._active = false; // this connection negotiated tether.resume.v1
    this._rstate = "offline"; // offline | awaiting | established
    this._session = "";
    this._nextSeq = 1;
    this._received = 0; // highest seq received in order
    this._peerAcked = 0;
    this._ackSent = 0;
    this._lostThrough = 0;
    /** @type {Stored[]} */ this._window = [];
    this._ackTimer = 0;
    this._askedResume = false;
    this._hadSession = false;
    this._localReason = "";
    // heartbeat
    this._hbTimer = 0;
    this._lastRecv = 0;
    this._lastSent = 0;
    this._lastPing = 0;
    this._pingNo = 0;
    /** @type {Map<string, number>} */ this._pings = new Map();
    this._onOnline = () => {
      if (this._waitingOnline || this._reconnectTimer) {
        clearTimeout(this._reconnectTimer);
        this._reconnectTimer = 0;
        this._connect();
      }
    };
    if (typeof addEventListener === "function") addEventListener("online", this._onOnline);
    this._connect();
  }

  get readyState() { return this._state; }
  get protocol() { return this._ws ? this._ws.protocol : ""; }
  get extensions() { return this._ws ? this._ws.extensions : ""; }
  /** Bytes queued here (not yet handed to the socket) plus the socket's own. */
  get bufferedAmount() {
    const sock = this._ws && this._ws.readyState === 1 ? this._ws.bufferedAmount : 0;
    const stored = this.options.resume && this._rstate !== "established" ? this._window.reduce((n, m) => n + m.size, 0) : 0;
    return sock + stored + this._pending.reduce((n, m) => n + (typeof m === "string" ? enc.encode(m).length : m.length), 0);
  }
  /** The resume session id ("" when none). */
  get session() { return this._session; }

  /** @param {string|ArrayBuffer|ArrayBufferView} data */
  send(data) {
    if (this._state === 2 || this._state === 3) return; // like WebSocket: discarded after close()
    let msg;
    if (typeof data === "string") msg = data;
    else if (data instanceof ArrayBuffer) msg = new Uint8Array(data.slice(0));
    else if (ArrayBuffer.isView(data)) msg = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    else throw new TypeError("TetherSocket.send: string, ArrayBuffer or a typed array expected");
    if (this.options.resume) {
      const m = { seq: this._nextSeq++, data: msg, size: typeof msg === "string" ? enc.encode(msg).length : msg.length };
      this._window.push(m);
      if (this._rstate !== "awaiting") this._bound();
      if (this._rstate === "established") this._emitData(m);
      else if (!this._active && this._ws && this._ws.readyState === 1) this._flushPlain();
      return;
    }
    if (this._ws && this._ws.readyState === 1 && this._pending.length === 0) return this._raw(msg);
    this._pending.push(msg);
    while (this._pending.length > this.options.queueMax) this._pending.shift();
  }

  /** @param {number} [code=1000] @param {string} [reason=""] */
  close(code = 1000, reason = "") {
    if (code !== 1000 && (code < 3000 || code > 4999)) throw new DOMException(`close code ${code} is not 1000 or 3000-4999`, "InvalidAccessError");
    if (enc.encode(reason).length > 123) throw new DOMException("close reason longer than 123 bytes", "SyntaxError");
    if (this._state === 2 || this._state === 3) return;
    this._appClosed = true;
    this._closeCode = code;
    this._closeReason = reason;
    this._state = 2;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = 0;
    const ws = this._ws;
    if (!ws || ws.readyState >= 2) {
      this._finish({ code, reason, wasClean: true, cause: "local_close" });
      return;
    }
    // With resume, wait (bounded) until the server has acknowledged everything sent.
    this._closeTimer = setTimeout(() => this._closeNow(), this.options.closeTimeout);
    this._maybeCloseNow();
  }

  // ---- connection lifecycle

  _connect() {
    this._reconnectTimer = 0;
    if (this._state === 3 || this._appClosed) return;
    if (typeof navigator !== "undefined" && navigator.onLine === false) {
      this._waitingOnline = true; // the `online` event starts the attempt
      return;
    }
    this._waitingOnline = false;
    this._state = 0;
    const protocols = this.options.resume ? [SUBPROTOCOL, ...this.options.protocols] : [...this.options.protocols];
    let ws;
    try {
      ws = new WebSocket(this.url, protocols);
    } catch (err) {
      // A bad URL is the application's error, not a network condition: no reconnect.
      this._state = 3;
      throw err;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    let opened = false;
    const hs = this.options.handshakeTimeout > 0 ? setTimeout(() => {
      if (this._ws === ws && !opened) this._drop(ws, 1006, `opening handshake not completed within ${this.options.handshakeTimeout} ms`, "handshake_timeout");
    }, this.options.handshakeTimeout) : 0;
    ws.onopen = () => {
      clearTimeout(hs);
      opened = true;
      this._opened(ws);
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      this._lastRecv = performance.now();
      if (this._active) this._onFrame(ev.data);
      else this._emit("message", { data: ev.data });
    };
    ws.onerror = () => {}; // the close event that follows says what happened
    ws.onclose = (ev) => {
      clearTimeout(hs);
      if (this._ws !== ws) return;
      let cause;
      if (this._appClosed) cause = "local_close";
      else if (ev.code === 1006) cause = opened ? "network_error" : "connect_failed";
      else cause = "remote_close";
      let reason = ev.reason;
      if (cause === "network_error" && !reason) reason = "connection lost without a close frame";
      if (cause === "connect_failed" && !reason) reason = "connect failed";
      this._ended({ code: ev.code, reason, wasClean: ev.wasClean, cause });
    };
  }

  _opened(/** @type {WebSocket} */ ws) {
    const now = performance.now();
    this._openedAt = now;
    this._lastRecv = this._lastSent = now;
    this._lastPing = 0;
    this._pings.clear();
    this._state = this._appClosed ? 2 : 1;
    this._active = this.options.resume && ws.protocol === SUBPROTOCOL;
    if (this._active) {
      this._hello();
      const p = this.options.pingInterval;
      if (p > 0) this._hbTimer = setInterval(() => this._heartbeat(), Math.max(20, Math.min(p, this.options.pingTimeout || p) / 8));
    }
    this._emit("open", { attempt: this._attemptNo });
    if (!this._active) {
      if (this.options.resume) this._emit("resume_failed", { reason: "server does not speak tether.resume.v1" });
      this._flushPlain();
    }
  }

  /** Plain connection: send what waits, in order (resume mode: the window, which then is forgotten). */
  _flushPlain() {
    if (this.options.resume) {
      for (const m of this._window) this._pending.push(m.data);
      this._window = [];
    }
    while (this._pending.length && this._ws && this._ws.readyState === 1) this._raw(/** @type {any} */ (this._pending.shift()));
    this._maybeCloseNow();
  }

  /** Drops the connection ourselves (heartbeat, handshake timeout, protocol error). */
  _drop(/** @type {WebSocket} */ ws, /** @type {number} */ code, /** @type {string} */ reason, /** @type {string} */ cause) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(cause === "protocol_error" ? 4002 : 4000, reason.slice(0, 100));
    } catch { /* already closing */ }
    this._ended({ code, reason, wasClean: false, cause });
  }

  /** One connection ended: report it, then reconnect or finish. @param {{code:number, reason:string, wasClean:boolean, cause:string}} info */
  _ended(info) {
    this._ws = null;
    clearInterval(this._hbTimer);
    clearTimeout(this._ackTimer);
    this._hbTimer = this._ackTimer = 0;
    if (this._active) {
      if (info.code === 1000 && info.wasClean) this._endSession();
      else if (info.code === 1002) this._abandon();
      this._rstate = "offline";
      this._active = false;
    }
    const now = performance.now();
    if (this._openedAt && now - this._openedAt >= RESET_AFTER) this._attempt = 0;
    this._openedAt = 0;
    const delay = this._shouldReconnect(info) ? this._delay(info) : null;
    if (delay === null) return this._finish(info);
    this._state = 0;
    this._attemptNo = this._attempt + 1;
    this._emit("close", info);
    if (this._state !== 0 || this._appClosed) return;
    this._emit("reconnecting", { attempt: this._attemptNo, delay: Math.ceil(delay) });
    if (this._state === 0 && !this._appClosed && !this._ws) this._reconnectTimer = setTimeout(() => this._connect(), delay);
  }

  _finish(/** @type {any} */ info) {
    this._state = 3;
    this._ws = null;
    clearTimeout(this._closeTimer);
    clearTimeout(this._reconnectTimer);
    clearInterval(this._hbTimer);
    clearTimeout(this._ackTimer);
    if (typeof removeEventListener === "function") removeEventListener("online", this._onOnline);
    this._emit("close", info);
  }

  /** @param {{code:number, cause:string}} info */
  _shouldReconnect(info) {
    if (!this.options.reconnect || this._appClosed) return false;
    switch (info.cause) {
      case "local_close": return false;
      case "network_error": case "heartbeat_timeout": case "connect_failed":
      case "handshake_timeout": case "handshake_failed": return true;
      case "remote_close": return [1001, 1011, 1012, 1013].includes(info.code);
      default: return false;
    }
  }

  /** The next backoff delay in ms, or null when maxAttempts is used up. @param {{code:number, reason:string}} info */
  _delay(info) {
    const o = this.options;
    if (o.maxAttempts > 0 && this._attempt >= o.maxAttempts) return null;
    this._attempt++;
    const m = /reconnect in (\d+)ms/.exec(info.reason || "");
    if ((info.code === 1012 || info.code === 1013) && m) return Math.min(Number(m[1]), 3600000) + Math.random() * o.backoffMin;
    const ceiling = Math.max(o.backoffMin, Math.min(o.backoffMax, o.backoffMin * 2 ** Math.min(this._attempt, 60)));
    return o.backoffMin + Math.random() * (ceiling - o.backoffMin);
  }

  _maybeCloseNow() {
    if (!this._appClosed || !this._ws || this._ws.readyState !== 1) return;
    if (this._active && (this._rstate !== "established" || this._window.length > 0)) return;
    if (!this._active && this._pending.length > 0) return;
    this._closeNow();
  }

  _closeNow() {
    clearTimeout(this._closeTimer);
    const ws = this._ws;
    if (!ws) return;
    if (ws.readyState === 0) return this._drop(ws, this._closeCode, this._closeReason, "local_close");
    if (ws.readyState === 1) ws.close(this._closeCode, this._closeReason);
  }

  // ---- heartbeat (docs/resume.md §2.8, docs/liveness.md)

  _heartbeat() {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return;
    const now = performance.now();
    const { pingInterval, pingTimeout } = this.options;
    const silent = now - this._lastRecv;
    if (silent >= pingInterval + pingTimeout) {
      this._drop(ws, 1006, `heartbeat timeout after ${Math.round(silent)} ms`, "heartbeat_timeout");
      return;
    }
    const quiet = now - this._lastSent >= pingInterval || silent >= pingInterval;
    if (quiet && now - this._lastPing >= pingInterval) {
      const token = String(++this._pingNo);
      this._lastPing = now;
      this._pings.set(token, now);
      if (this._pings.size > 8) this._pings.delete(/** @type {string} */ (this._pings.keys().next().value));
      this._raw("P" + token);
    }
  }

  // ---- resume (docs/resume.md §3.2)

  _hello() {
    let session = this._session;
    this._localReason = "";
    // Everything after what the server acknowledged must still be here, or we cannot resume.
    if (session && this._lostThrough > this._peerAcked) {
      this._localReason = "replay window exceeded (client)";
      session = "";
    }
    this._hadSession = !!this._session;
    this._askedResume = !!session;
    this._rstate = "awaiting";
    this._raw("H" + JSON.stringify({ v: 1, session, last: session ? this._received : 0 }));
  }

  /** @param {string|ArrayBuffer} data */
  _onFrame(data) {
    const text = typeof data === "string";
    const len = text ? data.length : data.byteLength;
    const bytes = text ? null : new Uint8Array(data);
    const first = len === 0 ? -1 : text ? data.charCodeAt(0) : /** @type {Uint8Array} */ (bytes)[0];
    if (first === 0x50 || first === 0x51) { // P / Q
      if (!text || !TOKEN.test(data.slice(1))) return this._fail("malformed ping frame");
      const token = data.slice(1);
      if (first === 0x50) return this._raw("Q" + token);
      const sent = this._pings.get(token);
      if (sent !== undefined) {
        this._pings.delete(token);
        this._emit("rtt", { ms: performance.now() - sent });
      }
      return;
    }
    if (this._rstate === "awaiting") {
      if (first !== 0x57 || !text) return this._fail("expected a welcome first");
      return this._welcome(data);
    }
    if (first === 0x4d) { // M
      const h = text ? parseDataHeader((i) => data.charCodeAt(i), len) : parseDataHeader((i) => /** @type {Uint8Array} */ (bytes)[i], len);
      if (typeof h === "string") return this._fail(h);
      if (!this._applyAck(h.ack)) return;
      if (h.seq <= this._received) return this._scheduleAck(); // duplicate: dropped, acked again
      if (h.seq !== this._received + 1) return this._fail(`sequence gap: got ${h.seq}, expected ${this._received + 1}`);
      this._received = h.seq;
      this._scheduleAck();
      if (this._received - this._ackSent >= ACK_EVERY) this._sendAck();
      this._emit("message", { data: text ? data.slice(h.off) : data.slice(h.off) });
      return;
    }
    if (first === 0x41 && text) { // A
      const ack = parseNumber(data.slice(1));
      if (ack < 0) return this._fail("ack frame: bad ack");
      this._applyAck(ack);
      return;
    }
    if ((first === 0x48 || first === 0x57) && text) return this._fail(`${first === 0x48 ? "hello" : "welcome"} after the opening exchange`);
    this._fail(len === 0 ? "empty message" : "malformed frame");
  }

  /** @param {string} data */
  _welcome(data) {
    let w;
    try {
      w = JSON.parse(data.slice(1));
    } catch {
      return this._fail("welcome: not a JSON object");
    }
    if (!w || typeof w !== "object" || Array.isArray(w)) return this._fail("welcome: not a JSON object");
    if (w.v !== 1) return this._fail(typeof w.v === "number" ? `welcome: version ${w.v} (only 1 is supported)` : "welcome: missing \"v\"");
    if (typeof w.session !== "string" || !/^[0-9a-f]{32}$/.test(w.session)) return this._fail("welcome: bad \"session\"");
    if (typeof w.resumed !== "boolean") return this._fail("welcome: bad \"resumed\"");
    if (!Number.isInteger(w.last) || w.last < 0) return this._fail("welcome: bad \"last\"");
    const reason = typeof w.reason === "string" ? w.reason : "";
    if (w.resumed) {
      if (!this._askedResume || w.session !== this._session) return this._fail("welcome resumed a session that was not asked for");
      if (w.last > this._nextSeq - 1 || w.last < this._peerAcked) return this._fail(`welcome: last ${w.last} out of range`);
      this._release(w.last);
      this._rstate = "established";
      this._ackSent = this._received;
      this._bound();
      for (const m of this._window) this._emitData(m);
      this._emit("resumed", { replayed: this._window.length });
    } else {
      if (w.last !== 0) return this._fail("welcome: \"last\" must be 0 when not resumed");
      this._session = w.session;
      // A fresh session: numbering restarts at 1 both ways; unacknowledged messages are renumbered.
      this._window.forEach((m, i) => { m.seq = i + 1; });
      this._nextSeq = this._window.length + 1;
      this._received = this._peerAcked = this._ackSent = this._lostThrough = 0;
      this._rstate = "established";
      this._bound();
      for (const m of this._window) this._emitData(m);
      if (this._hadSession) this._emit("resume_failed", { reason: this._localReason || reason });
    }
    this._maybeCloseNow();
  }

  /** @param {number} ack */
  _applyAck(ack) {
    if (ack > this._nextSeq - 1) {
      this._fail(`ack ${ack} is above the highest sequence number sent (${this._nextSeq - 1})`);
      return false;
    }
    if (ack > this._peerAcked) this._release(ack);
    this._maybeCloseNow();
    return true;
  }

  /** @param {number} ack */
  _release(ack) {
    if (ack > this._peerAcked) this._peerAcked = ack;
    let n = 0;
    while (n < this._window.length && this._window[n].seq <= ack) n++;
    if (n) this._window.splice(0, n);
  }

  /** The count bound: forces out the oldest messages (a later resume then fails). */
  _bound() {
    while (this._window.length > this.options.queueMax) {
      const m = /** @type {Stored} */ (this._window.shift());
      if (m.seq > this._lostThrough) this._lostThrough = m.seq;
    }
  }

  /** @param {Stored} m */
  _emitData(m) {
    const head = `M${m.seq},${this._received};`;
    this._ackSent = this._received;
    clearTimeout(this._ackTimer);
    this._ackTimer = 0;
    if (typeof m.data === "string") return this._raw(head + m.data);
    const buf = new Uint8Array(head.length + m.data.length);
    for (let i = 0; i < head.length; i++) buf[i] = head.charCodeAt(i);
    buf.set(m.data, head.length);
    this._raw(buf);
  }

  _scheduleAck() {
    if (!this._ackTimer) this._ackTimer = setTimeout(() => this._sendAck(), ACK_DELAY);
  }

  _sendAck() {
    clearTimeout(this._ackTimer);
    this._ackTimer = 0;
    if (this._rstate !== "established" || !this._ws || this._ws.readyState !== 1) return;
    this._ackSent = this._received;
    this._raw("A" + this._received);
  }

  /** A peer fault: close the connection; reported as 1002, cause protocol_error. @param {string} why */
  _fail(why) {
    if (this._ws) this._drop(this._ws, 1002, why, "protocol_error");
  }

  /** A clean 1000 either way: the session is over. */
  _endSession() {
    this._session = "";
    this._window = [];
    this._nextSeq = 1;
    this._received = this._peerAcked = this._ackSent = this._lostThrough = 0;
  }

  /** After a protocol error: a new session next time, unacknowledged messages kept (at-least-once). */
  _abandon() {
    this._session = "";
    this._window.forEach((m, i) => { m.seq = i + 1; });
    this._nextSeq = this._window.length + 1;
    this._received = this._peerAcked = this._ackSent = this._lostThrough = 0;
  }

  // ---- plumbing

  /** @param {string|Uint8Array} frame */
  _raw(frame) {
    if (!this._ws || this._ws.readyState !== 1) return;
    this._lastSent = performance.now();
    this._ws.send(frame);
  }

  /** @param {string} type @param {Object} fields */
  _emit(type, fields) {
    const ev = makeEvent(type, fields);
    this.dispatchEvent(ev);
    const handler = /** @type {any} */ (this)["on" + type];
    if (typeof handler === "function") {
      try {
        handler.call(this, ev);
      } catch (err) {
        setTimeout(() => { throw err; });
      }
    }
  }
}

export default TetherSocket;
