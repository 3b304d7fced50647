// The chat page's client: tether.js underneath, the JSON protocol of examples/chat/chat_server.hpp
// on top. Query parameters (optional): nick, room, ping (ms), timeout (ms).
import { TetherSocket } from "/tether.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const num = (name, dflt) => {
  const v = Number(params.get(name));
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

// This tab's message ids: a random prefix and a counter, so ids never repeat across tabs.
const idPrefix = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
let idCounter = 0;

let ws = null;
let me = null;               // {room, nick} once the user has joined
let joinSent = false;        // join sent on the current connection
const pending = new Map();   // id -> text: said but not yet seen back from the server
const shown = new Map();     // "nick\nid" -> <li>: every message on screen, for dropping duplicates
let countdown = null;

function setStatus(state, text) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = text;
}

function showError(text) {
  const el = $("error");
  el.textContent = text;
  el.hidden = !text;
}

function stopCountdown() {
  if (countdown) clearInterval(countdown);
  countdown = null;
}

function scrollDown() {
  const log = $("messages");
  log.scrollTop = log.scrollHeight;
}

function notice(text) {
  const li = document.createElement("li");
  li.className = "notice";
  li.textContent = text;
  $("messages").append(li);
  scrollDown();
}

function render(m, isPending) {
  const key = `${m.nick}\n${m.id}`;
  if (m.id && shown.has(key)) {
    const li = shown.get(key);
    if (!isPending && li.classList.contains("pending")) {
      li.classList.remove("pending");
      li.querySelector("time").textContent = new Date(m.ts).toLocaleTimeString();
    }
    const log = $("messages");
    log.dataset.duplicates = String(Number(log.dataset.duplicates || 0) + 1);
    return;  // a duplicate: the same message again after a reconnect (counted, for tests)
  }
  const li = document.createElement("li");
  if (m.id) li.dataset.id = m.id;
  li.dataset.nick = m.nick;
  if (isPending) li.classList.add("pending");
  const time = document.createElement("time");
  time.textContent = isPending ? "…" : new Date(m.ts).toLocaleTimeString();
  const nick = document.createElement("span");
  nick.className = "nick";
  nick.textContent = m.nick;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.text;
  li.append(time, nick, text);
  $("messages").append(li);
  if (m.id) shown.set(key, li);
  scrollDown();
}

function sendJoin() {
  if (!me || joinSent) return;
  joinSent = true;
  ws.send(JSON.stringify({ type: "join", room: me.room, nick: me.nick }));
}

// Messages not seen back yet go again once the (new) connection has joined; the server and
// render() both drop what they already have, by id.
function resendPending() {
  for (const [id, text] of pending) ws.send(JSON.stringify({ type: "say", text, id }));
}

function onServerMessage(data) {
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    return;
  }
  switch (m.type) {
    case "history":
      if (!me || m.room !== me.room) return;
      for (const h of m.messages || []) onChatMessage(h);
      resendPending();
      break;
    case "message":
      onChatMessage(m);
      break;
    case "presence": {
      if (!me || m.room !== me.room) return;
      const list = $("members");
      list.replaceChildren(...(m.members || []).map((n) => {
        const li = document.createElement("li");
        li.textContent = n;
        return li;
      }));
      if (m.joined && m.joined !== me.nick) notice(`${m.joined} joined`);
      if (m.left) notice(`${m.left} left`);
      break;
    }
    case "error":
      // Messages replayed on a new connection before its join are refused; they go again later.
      if (m.message !== "join a room first") showError(m.message);
      break;
  }
}

function onChatMessage(m) {
  if (!me || m.room !== me.room) return;
  if (m.nick === me.nick && pending.has(m.id)) pending.delete(m.id);
  render(m, false);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new TetherSocket(scheme + location.host + "/", {
    resume: true,
    pingInterval: num("ping", 25000),
    pingTimeout: num("timeout", 20000),
  });
  setStatus("connecting", "connecting…");
  ws.addEventListener("open", () => {
    stopCountdown();
    joinSent = false;
    setStatus("connected", "connected");
    sendJoin();
  });
  ws.addEventListener("resumed", () => sendJoin());
  ws.addEventListener("message", (e) => {
    if (typeof e.data === "string") onServerMessage(e.data);
  });
  ws.addEventListener("close", () => {
    joinSent = false;
    stopCountdown();
    setStatus("offline", "offline");
    $("rtt").textContent = "RTT –";
  });
  ws.addEventListener("reconnecting", (e) => {
    stopCountdown();
    const until = Date.now() + (e.delay || 0);
    const tick = () => {
      // tether.js waits for the browser's `online` event before trying again.
      if (navigator.onLine === false) return setStatus("offline", "offline");
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setStatus("reconnecting", left > 0 ? `reconnecting in ${left} s` : "reconnecting…");
    };
    tick();
    countdown = setInterval(tick, 250);
  });
  ws.addEventListener("rtt", (e) => {
    const ms = e.ms ?? e.rtt ?? (e.detail && e.detail.ms);
    if (typeof ms === "number") $("rtt").textContent = `RTT ${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  });
}

$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  const nick = $("nick").value.trim();
  const room = $("room").value.trim();
  if (!nick || !room) return;
  if (!me || me.room !== room) {
    $("messages").replaceChildren();
    shown.clear();
    pending.clear();
    $("members").replaceChildren();
  }
  me = { room, nick };
  sessionStorage.setItem("tether-chat", JSON.stringify(me));
  $("room-title").textContent = `#${room}`;
  $("chat").hidden = false;
  showError("");
  joinSent = false;
  if (!ws) connect();
  else sendJoin();
  $("text").focus();
});

$("say").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value;
  if (!me || !text.trim()) return;
  const id = `${idPrefix}-${++idCounter}`;
  pending.set(id, text);
  render({ nick: me.nick, id, text, ts: Date.now() }, true);
  try {
    ws.send(JSON.stringify({ type: "say", text, id }));
  } catch {
    showError("offline: reload the page to reconnect");
  }
  $("text").value = "";
});

$("leave").addEventListener("click", () => {
  if (!me) return;
  ws.send(JSON.stringify({ type: "leave" }));
  me = null;
  pending.clear();
  $("chat").hidden = true;
  $("members").replaceChildren();
});

// Pre-fill from the query string or this tab's last session.
const saved = JSON.parse(sessionStorage.getItem("tether-chat") || "null");
$("nick").value = params.get("nick") || saved?.nick || "";
$("room").value = params.get("room") || saved?.room || "lobby";
