#!/usr/bin/python3
"""chaos_proxy: a fault-injecting TCP proxy for the tether tests (Python 3 standard library only).

It listens on 127.0.0.1 (port 0 = a free port) and forwards every accepted connection to an
upstream at 127.0.0.1:PORT. Faults act on all current connections, or on one connection by id:

  cut        close both sides with FIN: shutdown(SHUT_WR) on both sockets at once (each peer reads
             EOF after whatever was already handed to the kernel); chunks the proxy had read but
             not yet written are dropped. Then whatever either peer still sends is read and
             discarded until it closes (at most 2 s), so that close() does not turn into a RST.
  reset      RST both sides: SO_LINGER {on, 0}, then close(). Queued data is discarded.
  blackhole  stop forwarding in both directions without closing anything. "Not read" semantics:
             the proxy stops reading from both sockets (and holds back any chunk it already
             read), so the peers' data piles up in the kernel buffers and TCP backpressure builds
             (a sender eventually blocks / gets EAGAIN). Turning it off resumes forwarding, and
             the bytes sent during the blackhole arrive then, in order, none lost.
  delay MS   add MS ms of latency to every forwarded chunk, in each direction (so a round trip
             through the proxy gains 2*MS). It is latency, not a throughput cap: chunks are
             stamped when read and written when due, up to 4 chunks of 64 KiB in flight per
             direction. 0 turns it off.
  refuse     accept new connections and close them at once (FIN; the upstream is not contacted).
             Existing connections are not affected.

blackhole and delay given without a connection id also become the default for connections
accepted later; with an id they apply to that connection only.

Library use (inside a running asyncio loop):

    proxy = ChaosProxy(upstream_port)          # optional: cut_every=(MIN_MS, MAX_MS), seed=N,
    port = await proxy.start()                 #           on_event=callable(dict), listen_port=0
    proxy.cut(); proxy.reset(conn_id); proxy.blackhole(True); proxy.delay(200); proxy.refuse(True)
    proxy.connections()  -> ids of open connections
    proxy.stats()        -> dict of counters (see ChaosProxy.stats)
    await proxy.close()

cut/reset/blackhole/delay return how many connections they acted on (an unknown id raises
KeyError). Half-closes are forwarded (a FIN from one side becomes shutdown(SHUT_WR) toward the
other); a connection ends when both directions have ended; an I/O error on one side (e.g. a
reset peer) resets the other side too.

Command-line use (for tests in other languages):

    chaos_proxy.py --upstream PORT [--listen-port 0] [--cut-every MIN_MS MAX_MS] [--seed N]
                   [--max-seconds 300]

The first stdout line is "listening 127.0.0.1:PORT". Then it reads newline-terminated commands
on stdin:
    cut [ID] | reset [ID] | blackhole on|off [ID] | delay MS [ID] | refuse on|off | stats | quit
Every later stdout line is one JSON object, flushed:
    {"event":"ok","cmd":"cut","affected":1}         reply to a command
    {"event":"error","cmd":"...","msg":"..."}         bad command (the proxy carries on)
    {"event":"stats", ...counters...}                 reply to "stats"
    {"event":"cut","conn":3,"at_ms":812.4,"age_ms":377.1,"by":"timer"}   each cut ("by": timer or command)
    {"event":"reset","conn":3,"at_ms":...,"age_ms":...,"by":"command"}   each reset
    {"event":"quit","reason":"quit|eof|timeout|stdout closed","stats":{...}}   last line
at_ms is milliseconds since the proxy started, age_ms since that connection was established.
With --cut-every MIN MAX every connection gets its own timer, started when the connection to the
upstream is established and drawn uniformly from [MIN, MAX] ms with a random.Random(seed); when it
fires the connection is cut wherever its byte stream happens to be (independent of any message
framing). Each connection is cut once (it is gone afterwards); a client that reconnects gets a new
timer. Without --seed a seed is drawn and reported in the stats ("seed").
It stops on "quit", when stdin reaches EOF, when a write to stdout fails, or after --max-seconds.
"""
import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import threading
import time

LISTEN_HOST = "127.0.0.1"
CHUNK = 65536             # bytes per read
QUEUE_CHUNKS = 4          # chunks in flight per direction (read, not yet written)
CUT_DRAIN_S = 2.0         # after a cut, discard incoming bytes for at most this long, then close
CONNECT_TIMEOUT_S = 5.0   # connecting to the upstream
CLOSE_TIMEOUT_S = 3.0     # ChaosProxy.close() waits this long for connections to wind down


async def _wait_fd(loop, fd, writable):
    """Wait until fd is readable (or writable); the registration is always removed on the way out."""
    fut = loop.create_future()

    def ready():
        if not fut.done():
            fut.set_result(None)

    if writable:
        loop.add_writer(fd, ready)
    else:
        loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class _Conn:
    """One proxied connection: two directions, each a reader task and a writer task."""

    def __init__(self, proxy, cid, csock, usock):
        self.proxy = proxy
        self.id = cid
        self.csock = csock
        self.usock = usock
        self.state = "open"  # open -> done | error | cut | reset | close
        self.flowing = asyncio.Event()
        if not proxy._blackhole:
            self.flowing.set()
        self.delay_s = proxy._delay_s
        self.t_open = time.monotonic()
        self.bytes = {"c2s": 0, "s2c": 0}
        self.tasks = []
        self.timer = None
        self.supervisor = None

    def start(self):
        for name, src, dst in (("c2s", self.csock, self.usock), ("s2c", self.usock, self.csock)):
            q = asyncio.Queue(QUEUE_CHUNKS)
            self.tasks.append(asyncio.ensure_future(self._read_side(src, q)))
            self.tasks.append(asyncio.ensure_future(self._write_side(dst, q, name)))
        self.supervisor = asyncio.ensure_future(self._supervise())

    async def _read_side(self, src, q):
        loop = asyncio.get_running_loop()
        while True:
            await self.flowing.wait()
            try:
                data = src.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                await _wait_fd(loop, src.fileno(), False)
                continue  # check the blackhole gate again before reading
            await q.put((time.monotonic(), data))
            if not data:
                return

    async def _write_side(self, dst, q, name):
        loop = asyncio.get_running_loop()
        while True:
            t, data = await q.get()
            while True:  # the delay is read live, so changing it also affects queued chunks
                wait = t + self.delay_s - time.monotonic()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            await self.flowing.wait()
            if not data:
                dst.shutdown(socket.SHUT_WR)  # forward the half-close
                return
            view = memoryview(data)
            while view:
                await self.flowing.wait()
                try:
                    n = dst.send(view)
                except (BlockingIOError, InterruptedError):
                    n = 0
                if n:
                    view = view[n:]
                    self.bytes[name] += n
                    self.proxy._counters["bytes_" + name] += n
                else:
                    await _wait_fd(loop, dst.fileno(), True)

    def kill(self, mode):
        """Stop forwarding now; mode is cut, reset or close. False if already ending."""
        if self.state != "open":
            return False
        self.state = mode
        for t in self.tasks:
            t.cancel()  # no further I/O from the pumps, even if their wake-up is already queued
        for s in (self.csock, self.usock):
            try:
                if mode == "cut":
                    s.shutdown(socket.SHUT_WR)  # FIN right away
                elif mode == "reset":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        return True

    async def _drain(self, sock, deadline):
        loop = asyncio.get_running_loop()
        while True:
            try:
                if not sock.recv(CHUNK):
                    return
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(_wait_fd(loop, sock.fileno(), False), left)
            except asyncio.TimeoutError:
                return

    async def _supervise(self):
        try:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = [t for t in self.tasks if t.done() and not t.cancelled() and t.exception()]
            if self.state == "open":
                if failed:
                    self.kill("reset")  # an I/O error on one side: reset the other side too
                    self.state = "error"
                else:
                    self.state = "done"
            for t in self.tasks:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            if self.state == "cut":
                deadline = time.monotonic() + CUT_DRAIN_S
                await asyncio.gather(self._drain(self.csock, deadline), self._drain(self.usock, deadline))
        finally:
            for s in (self.csock, self.usock):
                s.close()
            self.proxy._finished(self)


class ChaosProxy:
    """Fault-injecting TCP proxy, see the module docstring. All methods run in the loop's thread."""

    def __init__(self, upstream_port, upstream_host="127.0.0.1", listen_port=0, cut_every=None,
                 seed=None, on_event=None):
        self.upstream = (upstream_host, int(upstream_port))
        self.listen_port = int(listen_port)
        if cut_every is not None:
            lo, hi = float(cut_every[0]), float(cut_every[1])
            if not 0 <= lo <= hi:
                raise ValueError("cut_every needs 0 <= MIN <= MAX")
            cut_every = (lo, hi)
        self.cut_every = cut_every
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")
        self._rng = random.Random(self.seed)
        self.on_event = on_event
        self.port = None
        self._lsock = None
        self._accept_task = None
        self._connecting = set()
        self._conns = {}      # id -> _Conn, until fully closed
        self._next_id = 1
        self._blackhole = False
        self._delay_s = 0.0
        self._refusing = False
        self._t0 = time.monotonic()
        self._counters = dict(accepted=0, refused=0, connected=0, upstream_failures=0, closed=0,
                              cuts=0, resets=0, errors=0, bytes_c2s=0, bytes_s2c=0)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self):
        """Start listening; returns the port."""
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((LISTEN_HOST, self.listen_port))
        lsock.listen(128)
        lsock.setblocking(False)
        self._lsock = lsock
        self.port = lsock.getsockname()[1]
        self._t0 = time.monotonic()
        self._accept_task = asyncio.ensure_future(self._accept_loop())
        return self.port

    async def close(self):
        """Stop listening, close every connection (plain close) and wait (bounded) for the tasks."""
        if self._accept_task is not None:
            self._accept_task.cancel()
            await asyncio.gather(self._accept_task, return_exceptions=True)
            self._accept_task = None
        if self._lsock is not None:
            self._lsock.close()
            self._lsock = None
        for t in list(self._connecting):
            t.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        conns = list(self._conns.values())
        for c in conns:
            c.kill("close")
        sups = [c.supervisor for c in conns if c.supervisor is not None]
        if sups:
            _, pending = await asyncio.wait(sups, timeout=CLOSE_TIMEOUT_S)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- faults ---------------------------------------------------------------------------------

    def _targets(self, conn):
        if conn is None:
            return [c for c in self._conns.values() if c.state == "open"]
        c = self._conns.get(int(conn))
        if c is None or c.state != "open":
            raise KeyError(f"no open connection {conn}")
        return [c]

    def _emit(self, event, conn, by):
        if self.on_event is not None:
            now = time.monotonic()
            self.on_event({"event": event, "conn": conn.id, "at_ms": round((now - self._t0) * 1000, 1),
                           "age_ms": round((now - conn.t_open) * 1000, 1), "by": by})

    def _cut_one(self, c, by):
        if not c.kill("cut"):
            return 0
        self._counters["cuts"] += 1
        self._emit("cut", c, by)
        return 1

    def cut(self, conn=None):
        """Close both sides with FIN (all open connections, or the one with id conn)."""
        return sum(self._cut_one(c, "command") for c in self._targets(conn))

    def reset(self, conn=None):
        """RST both sides (SO_LINGER 0, close)."""
        n = 0
        for c in self._targets(conn):
            if c.kill("reset"):
                n += 1
                self._counters["resets"] += 1
                self._emit("reset", c, "command")
        return n

    def blackhole(self, on, conn=None):
        """Stop (on=True) or resume forwarding in both directions; bytes are left unread."""
        targets = self._targets(conn)
        if conn is None:
            self._blackhole = bool(on)
        for c in targets:
            if on:
                c.flowing.clear()
            else:
                c.flowing.set()
        return len(targets)

    def delay(self, ms, conn=None):
        """Add ms milliseconds of latency to each forwarded chunk, each direction (0 = none)."""
        ms = float(ms)
        if ms < 0:
            raise ValueError("delay must be >= 0")
        targets = self._targets(conn)
        if conn is None:
            self._delay_s = ms / 1000.0
        for c in targets:
            c.delay_s = ms / 1000.0
        return len(targets)

    def refuse(self, on):
        """Accept and immediately close new connections while on."""
        self._refusing = bool(on)

    # -- inspection -----------------------------------------------------------------------------

    def connections(self):
        """Ids of the open connections (not yet cut, reset or ended)."""
        return [cid for cid, c in self._conns.items() if c.state == "open"]

    def stats(self):
        """Counters: accepted (every TCP accept, refused ones included), refused, connected
        (upstream reached, forwarding started), upstream_failures, active (open now), closed
        (fully closed, any cause), cuts, resets (by command), errors (ended by an I/O error),
        bytes_c2s / bytes_s2c (bytes written to upstream / to clients), and the settings."""
        d = dict(self._counters)
        d.update(active=len(self.connections()), blackhole=self._blackhole,
                 delay_ms=self._delay_s * 1000.0, refusing=self._refusing, seed=self.seed,
                 uptime_ms=round((time.monotonic() - self._t0) * 1000, 1))
        return d

    # -- internals ------------------------------------------------------------------------------

    async def _accept_loop(self):
        loop = asyncio.get_running_loop()
        while True:
            try:
                csock, _ = await loop.sock_accept(self._lsock)
            except OSError:  # e.g. EMFILE: back off briefly instead of spinning
                await asyncio.sleep(0.05)
                continue
            csock.setblocking(False)
            self._counters["accepted"] += 1
            if self._refusing:
                self._counters["refused"] += 1
                csock.close()
                continue
            cid = self._next_id
            self._next_id += 1
            t = asyncio.ensure_future(self._connect(cid, csock))
            self._connecting.add(t)
            t.add_done_callback(self._connecting.discard)

    async def _connect(self, cid, csock):
        loop = asyncio.get_running_loop()
        usock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        usock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(usock, self.upstream), CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            self._counters["upstream_failures"] += 1
            usock.close()
            csock.close()
            return
        except asyncio.CancelledError:
            usock.close()
            csock.close()
            raise
        for s in (csock, usock):
            try:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        c = _Conn(self, cid, csock, usock)
        self._conns[cid] = c
        self._counters["connected"] += 1
        c.start()
        if self.cut_every is not None:
            c.timer = asyncio.ensure_future(self._cut_timer(c, self._rng.uniform(*self.cut_every)))

    async def _cut_timer(self, c, ms):
        await asyncio.sleep(ms / 1000.0)
        self._cut_one(c, "timer")

    def _finished(self, c):
        if self._conns.pop(c.id, None) is None:
            return
        self._counters["closed"] += 1
        if c.state == "error":
            self._counters["errors"] += 1
        if c.timer is not None:
            c.timer.cancel()


# ------------------------------------------------------------------------------------------------
# Command-line tool

class _Out:
    """Flushed stdout lines; remembers a closed stdout instead of raising."""

    def __init__(self):
        self.broken = False

    def line(self, text):
        if self.broken:
            return
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = True
            try:  # keep the interpreter's final flush from complaining
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass

    def json(self, obj):
        self.line(json.dumps(obj, separators=(",", ":")))


def _stdin_thread(loop, q):
    """Read stdin lines in a daemon thread (works for pipes, ttys and files); None means EOF."""

    def post(item):
        try:
            loop.call_soon_threadsafe(q.put_nowait, item)
        except RuntimeError:  # loop already closed
            pass

    def run():
        buf = b""
        try:
            while True:
                chunk = os.read(0, 4096)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    post(line.decode("utf-8", "replace"))
            if buf:
                post(buf.decode("utf-8", "replace"))
        except OSError:
            pass
        post(None)

    threading.Thread(target=run, name="stdin", daemon=True).start()


def _on_off(word):
    w = word.lower()
    if w in ("on", "1", "true", "yes"):
        return True
    if w in ("off", "0", "false", "no"):
        return False
    raise ValueError(f"expected on|off, got {word!r}")


def _command(proxy, out, line):
    """Run one command line; returns "quit" to stop, else None."""
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    cmd, rest = words[0].lower(), words[1:]

    def conn_arg(i):
        if len(rest) > i + 1:
            raise ValueError("too many arguments")
        return int(rest[i]) if len(rest) > i else None

    try:
        if cmd in ("quit", "exit"):
            return "quit"
        if cmd == "stats":
            out.json(dict(event="stats", **proxy.stats()))
            return None
        if cmd == "cut":
            n = proxy.cut(conn_arg(0))
        elif cmd == "reset":
            n = proxy.reset(conn_arg(0))
        elif cmd == "blackhole":
            if not rest:
                raise ValueError("usage: blackhole on|off [ID]")
            n = proxy.blackhole(_on_off(rest[0]), conn_arg(1))
        elif cmd == "delay":
            if not rest:
                raise ValueError("usage: delay MS [ID]")
            n = proxy.delay(float(rest[0]), conn_arg(1))
        elif cmd == "refuse":
            if len(rest) != 1:
                raise ValueError("usage: refuse on|off")
            proxy.refuse(_on_off(rest[0]))
            n = 0
        else:
            raise ValueError("unknown command")
    except (ValueError, KeyError) as e:
        out.json({"event": "error", "cmd": line.strip(), "msg": str(e).strip("'\"")})
        return None
    out.json({"event": "ok", "cmd": cmd, "affected": n})
    return None


async def _cli(args):
    out = _Out()
    proxy = ChaosProxy(args.upstream, listen_port=args.listen_port, cut_every=args.cut_every,
                       seed=args.seed, on_event=out.json)
    port = await proxy.start()
    out.line(f"listening {LISTEN_HOST}:{port}")
    loop = asyncio.get_running_loop()
    cmds = asyncio.Queue()
    _stdin_thread(loop, cmds)
    deadline = loop.time() + args.max_seconds
    reason = None
    get = None
    try:
        while reason is None:
            left = deadline - loop.time()
            if left <= 0:
                reason = "timeout"
                break
            if get is None:
                get = asyncio.ensure_future(cmds.get())
            await asyncio.wait([get], timeout=min(left, 0.5))  # wake up now and then to look at stdout
            if out.broken:
                reason = "stdout closed"
            if not get.done():
                continue
            line, get = get.result(), None
            if line is None:
                reason = "eof"
            elif _command(proxy, out, line) == "quit":
                reason = "quit"
    finally:
        if get is not None:
            get.cancel()
        stats = proxy.stats()
        await proxy.close()
        out.json({"event": "quit", "reason": reason or "interrupted", "stats": stats})


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fault-injecting TCP proxy (see the module docstring).")
    ap.add_argument("--upstream", type=int, required=True, metavar="PORT", help="upstream 127.0.0.1:PORT")
    ap.add_argument("--listen-port", type=int, default=0, metavar="PORT", help="0 (default) = a free port")
    ap.add_argument("--cut-every", type=float, nargs=2, metavar=("MIN_MS", "MAX_MS"),
                    help="cut each connection after a uniform random [MIN, MAX] ms")
    ap.add_argument("--seed", type=int, default=None, help="seed for --cut-every")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="exit after this long (default 300)")
    args = ap.parse_args(argv)
    if args.cut_every is not None and not 0 <= args.cut_every[0] <= args.cut_every[1]:
        ap.error("--cut-every needs 0 <= MIN_MS <= MAX_MS")
    if args.max_seconds <= 0:
        ap.error("--max-seconds must be > 0")
    try:
        asyncio.run(_cli(args))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
