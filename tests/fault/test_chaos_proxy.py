#!/usr/bin/python3
"""fault.chaos_proxy: self-test of tests/fault/chaos_proxy.py against a plain TCP echo upstream
that lives in this script. Python 3 standard library only; every wait is bounded; a watchdog ends
the script (and the proxy subprocesses) after 60 s. Prints PASS/FAIL per check; exits 1 on any
failure.

Library cases (ChaosProxy in this process):
  passthrough   1 MiB each way through the proxy, byte-exact, half-close forwarded, counters
  cut           both the client and the upstream read EOF within 1 s
  reset         the client reads ECONNRESET (and so does the upstream) within 1 s
  blackhole     on: no byte moves for 1 s, the connection stays open, the client's send blocks
                (backpressure, nothing is read); off: everything sent meanwhile arrives, in order
  delay         delay 200 -> a round trip takes >= 200 ms (>= 400: 200 ms each direction); 0 -> fast
  refuse        a new connection is closed at once, the upstream never sees it; off -> works again
  by_id         cut one connection by id, the other keeps working
Command-line cases (chaos_proxy.py as a subprocess):
  cut_every     --cut-every 200 500 --seed 7: a client that reconnects for 3 s; every cut is
                reported, each after 200-500 ms of connection age, intervals within bounds;
                "stats" matches the client's and the upstream's own counts
  commands      replies to the commands, an error line for a bad one, quit -> exit 0
  eof/timeout   stdin EOF -> exits; --max-seconds 1 -> exits by itself
usage: test_chaos_proxy.py
"""
import asyncio
import json
import os
import random
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from chaos_proxy import ChaosProxy  # noqa: E402

HOST = "127.0.0.1"
PROXY_SCRIPT = os.path.join(HERE, "chaos_proxy.py")
MIB = 1 << 20
SLACK_MS = 150  # scheduling tolerance on top of the nominal bounds (the machine may be busy)

_failures = []
_children = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    if not ok:
        _failures.append(name)
    return ok


def start_watchdog(seconds):
    def bite():
        time.sleep(seconds)
        print(f"FAIL watchdog: still running after {seconds} s", flush=True)
        for pid in list(_children):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(3)

    threading.Thread(target=bite, name="watchdog", daemon=True).start()


# ------------------------------------------------------------------------------------------------
# Echo upstream

class EchoRecord:
    def __init__(self):
        self.received = 0
        self.data = bytearray()
        self.eof_at = None
        self.reset_at = None
        self.error = None

    @property
    def ended(self):
        return self.eof_at is not None or self.reset_at is not None or self.error is not None


class Echo:
    """Plain TCP echo; one EchoRecord per accepted connection; closes after the client's EOF."""

    def __init__(self, keep_data=True):
        self.records = []
        self.keep_data = keep_data
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._handle, HOST, 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        rec = EchoRecord()
        self.records.append(rec)
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except ConnectionResetError:
                    rec.reset_at = time.monotonic()
                    return
                if not data:
                    rec.eof_at = time.monotonic()
                    return
                rec.received += len(data)
                if self.keep_data:
                    rec.data += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError) as e:
            rec.error = repr(e)
        finally:
            writer.close()

    async def close(self):
        self.server.close()
        await self.server.wait_closed()


# ------------------------------------------------------------------------------------------------
# Client helpers (raw non-blocking sockets)

async def connect(port, timeout=2.0):
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.wait_for(loop.sock_connect(s, (HOST, port)), timeout)
    return s


async def recv_event(s, timeout):
    """('data', bytes) | ('eof', b'') | ('reset', b'') | ('timeout', b'') | ('error', repr)"""
    loop = asyncio.get_running_loop()
    try:
        data = await asyncio.wait_for(loop.sock_recv(s, 65536), timeout)
    except asyncio.TimeoutError:
        return "timeout", b""
    except ConnectionResetError:
        return "reset", b""
    except OSError as e:
        return "error", repr(e)
    return ("data", data) if data else ("eof", b"")


async def recv_exact(s, n, timeout):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    buf = bytearray()
    while len(buf) < n:
        left = end - loop.time()
        if left <= 0:
            break
        kind, data = await recv_event(s, left)
        if kind != "data":
            break
        buf += data
    return bytes(buf)


async def round_trip(s, msg=b"ping", timeout=3.0):
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    await asyncio.wait_for(loop.sock_sendall(s, msg), timeout)
    got = await recv_exact(s, len(msg), timeout)
    return got == msg, (time.monotonic() - t0) * 1000


async def wait_until(pred, timeout, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


def delta(before, after, *keys):
    return {k: after[k] - before[k] for k in keys}


# ------------------------------------------------------------------------------------------------
# Library cases

async def case_passthrough(proxy, echo):
    loop = asyncio.get_running_loop()
    before = proxy.stats()
    payload = random.Random(1).randbytes(MIB)
    s = await connect(proxy.port)
    got = bytearray()

    async def send():
        await loop.sock_sendall(s, payload)
        s.shutdown(socket.SHUT_WR)

    async def receive():
        while True:
            data = await loop.sock_recv(s, 65536)
            if not data:
                return
            got.extend(data)

    try:
        await asyncio.wait_for(asyncio.gather(send(), receive()), 15)
        finished = True
    except (asyncio.TimeoutError, OSError) as e:
        finished = False
        check("passthrough.finished", False, repr(e))
    s.close()
    rec = echo.records[-1] if echo.records else EchoRecord()
    check("passthrough.c2s_exact", rec.received == MIB and bytes(rec.data) == payload,
          f"upstream got {rec.received} bytes, equal={bytes(rec.data) == payload}")
    check("passthrough.s2c_exact", finished and bytes(got) == payload,
          f"client got {len(got)} bytes back, equal={bytes(got) == payload}")
    await wait_until(lambda: proxy.stats()["active"] == 0 and proxy.stats()["closed"] > before["closed"], 2)
    d = delta(before, proxy.stats(), "accepted", "connected", "closed", "bytes_c2s", "bytes_s2c", "cuts", "errors")
    check("passthrough.stats", d == dict(accepted=1, connected=1, closed=1, bytes_c2s=MIB, bytes_s2c=MIB,
                                         cuts=0, errors=0), str(d))


async def open_pair(proxy, echo):
    """A connection through the proxy, proven by a round trip; returns (sock, echo record)."""
    n = len(echo.records)
    s = await connect(proxy.port)
    ok, _ = await round_trip(s)
    if not ok or len(echo.records) != n + 1:
        raise RuntimeError("could not open a connection through the proxy")
    return s, echo.records[-1]


async def case_cut(proxy, echo):
    before = proxy.stats()
    s, rec = await open_pair(proxy, echo)
    t0 = time.monotonic()
    n = proxy.cut()
    kind, _ = await recv_event(s, 1.0)
    t_client = time.monotonic() - t0
    await wait_until(lambda: rec.ended, 1.0)
    s.close()
    check("cut.affected", n == 1, f"cut() acted on {n}")
    check("cut.client_eof", kind == "eof" and t_client < 1.0, f"client saw {kind} after {t_client * 1000:.1f} ms")
    t_up = (rec.eof_at - t0) * 1000 if rec.eof_at else None
    check("cut.upstream_eof", rec.eof_at is not None and rec.eof_at - t0 < 1.0,
          f"upstream eof after {t_up if t_up is None else round(t_up, 1)} ms (reset={rec.reset_at is not None})")
    await wait_until(lambda: proxy.stats()["active"] == 0 and proxy.stats()["closed"] > before["closed"], 3)
    d = delta(before, proxy.stats(), "cuts", "closed", "resets")
    check("cut.stats", d == dict(cuts=1, closed=1, resets=0), str(d))


async def case_reset(proxy, echo):
    before = proxy.stats()
    s, rec = await open_pair(proxy, echo)
    t0 = time.monotonic()
    n = proxy.reset()
    kind, _ = await recv_event(s, 1.0)
    t_client = time.monotonic() - t0
    await wait_until(lambda: rec.ended, 1.0)
    s.close()
    check("reset.affected", n == 1, f"reset() acted on {n}")
    check("reset.client_econnreset", kind == "reset" and t_client < 1.0,
          f"client saw {kind} after {t_client * 1000:.1f} ms")
    check("reset.upstream_econnreset", rec.reset_at is not None and rec.reset_at - t0 < 1.0,
          f"upstream: reset={rec.reset_at is not None} eof={rec.eof_at is not None} error={rec.error}")
    await wait_until(lambda: proxy.stats()["active"] == 0, 2)
    d = delta(before, proxy.stats(), "resets", "closed", "cuts")
    check("reset.stats", d == dict(resets=1, closed=1, cuts=0), str(d))


async def case_blackhole(proxy, echo):
    s, rec = await open_pair(proxy, echo)
    n = proxy.blackhole(True)
    before = proxy.stats()
    # Send until the kernel says EAGAIN: the proxy is not reading, so the buffers fill up.
    rng = random.Random(2)
    sent = bytearray()
    blocked = False
    cap = 64 * MIB
    chunk = rng.randbytes(65536)
    while len(sent) < cap:
        try:
            k = s.send(chunk)
        except BlockingIOError:
            blocked = True
            break
        sent += chunk[:k]
        chunk = rng.randbytes(65536)
    t0 = time.monotonic()
    kind, _ = await recv_event(s, 1.0)
    quiet_ms = (time.monotonic() - t0) * 1000
    mid = proxy.stats()
    check("blackhole.affected", n == 1, f"blackhole(True) acted on {n}")
    check("blackhole.backpressure", blocked, f"client send blocked after {len(sent)} bytes (cap {cap})")
    check("blackhole.silent_1s", kind == "timeout" and rec.received == 4,
          f"client: {kind} after {quiet_ms:.0f} ms; upstream got {rec.received - 4} bytes during the blackhole")
    d = delta(before, mid, "bytes_c2s", "bytes_s2c", "closed")
    check("blackhole.nothing_forwarded", d == dict(bytes_c2s=0, bytes_s2c=0, closed=0) and mid["active"] == 1,
          f"{d}, active {mid['active']}")
    proxy.blackhole(False)
    got = await recv_exact(s, len(sent), 20)
    s.close()
    check("blackhole.resumes", got == bytes(sent) and bytes(rec.data[4:]) == bytes(sent),
          f"client got {len(got)}/{len(sent)} bytes back, upstream {rec.received - 4}; exact={got == bytes(sent)}")
    await wait_until(lambda: proxy.stats()["active"] == 0, 2)


async def case_delay(proxy, echo):
    s, _ = await open_pair(proxy, echo)
    ok0, rtt0 = await round_trip(s)
    proxy.delay(200)
    rtts = []
    for i in range(3):
        ok, rtt = await round_trip(s, b"delayed-%d" % i)
        rtts.append(rtt if ok else -1)
    proxy.delay(0)
    ok1, rtt1 = await round_trip(s)
    s.close()
    # The delay is per direction, so a round trip gains 2 x 200 ms.
    check("delay.round_trip_ge_200ms", all(400 <= r < 400 + 600 for r in rtts),
          f"round trips {', '.join(f'{r:.1f}' for r in rtts)} ms with delay 200 (per direction)")
    check("delay.off", ok0 and ok1 and rtt0 < 150 and rtt1 < 150,
          f"round trip {rtt0:.1f} ms before, {rtt1:.1f} ms after delay 0")
    await wait_until(lambda: proxy.stats()["active"] == 0, 2)


async def case_refuse(proxy, echo):
    before = proxy.stats()
    n_up = len(echo.records)
    proxy.refuse(True)
    s = await connect(proxy.port)
    t0 = time.monotonic()
    kind, _ = await recv_event(s, 1.0)
    dt = (time.monotonic() - t0) * 1000
    s.close()
    await asyncio.sleep(0.05)
    check("refuse.closed_at_once", kind in ("eof", "reset") and dt < 1000, f"client saw {kind} after {dt:.1f} ms")
    check("refuse.upstream_untouched", len(echo.records) == n_up, f"{len(echo.records) - n_up} upstream connections")
    d = delta(before, proxy.stats(), "accepted", "refused", "connected")
    check("refuse.stats", d == dict(accepted=1, refused=1, connected=0), str(d))
    proxy.refuse(False)
    s2, _ = await open_pair(proxy, echo)
    s2.close()
    check("refuse.off", True, "a new connection works again")
    await wait_until(lambda: proxy.stats()["active"] == 0, 2)


async def case_by_id(proxy, echo):
    a, _ = await open_pair(proxy, echo)
    b, _ = await open_pair(proxy, echo)
    ids = proxy.connections()
    n = proxy.cut(ids[0]) if len(ids) == 2 else 0
    kind, _ = await recv_event(a, 1.0)
    ok, _ = await round_trip(b)
    try:
        proxy.cut(10 ** 6)
        unknown = False
    except KeyError:
        unknown = True
    check("by_id.cut_one", len(ids) == 2 and n == 1 and kind == "eof" and ok and proxy.connections() == ids[1:],
          f"ids {ids}, affected {n}, first saw {kind}, second still echoes: {ok}")
    check("by_id.unknown_id", unknown, "cut(unknown id) raises KeyError")
    a.close()
    b.close()
    await wait_until(lambda: proxy.stats()["active"] == 0, 2)


# ------------------------------------------------------------------------------------------------
# Command-line cases

class Child:
    """chaos_proxy.py as a subprocess; stdout lines collected with their arrival time."""

    def __init__(self):
        self.proc = None
        self.lines = []
        self.port = None
        self._reader = None
        self._new = asyncio.Event()

    async def start(self, *args):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, PROXY_SCRIPT, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        _children.append(self.proc.pid)
        first = await asyncio.wait_for(self.proc.stdout.readline(), 5)
        text = first.decode().strip()
        if not text.startswith("listening 127.0.0.1:"):
            raise RuntimeError(f"unexpected first line {text!r}")
        self.port = int(text.rsplit(":", 1)[1])
        self._reader = asyncio.ensure_future(self._read())
        return text

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            try:
                obj = json.loads(line)
            except ValueError:
                obj = {"event": "unparsable", "text": line.decode(errors="replace")}
            self.lines.append((time.monotonic(), obj))
            self._new.set()

    async def send(self, cmd):
        self.proc.stdin.write(cmd.encode() + b"\n")
        await self.proc.stdin.drain()

    async def wait_line(self, pred, timeout, start=0):
        end = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.lines)):
                if pred(self.lines[i][1]):
                    return i, self.lines[i][1]
            left = end - time.monotonic()
            if left <= 0:
                return None, None
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def ask(self, cmd, timeout=3):
        """Send a command; the first reply line (ok / error / stats) after it."""
        n = len(self.lines)
        await self.send(cmd)
        _, obj = await self.wait_line(lambda o: o.get("event") in ("ok", "error", "stats"), timeout, n)
        return obj

    async def wait_exit(self, timeout):
        try:
            rc = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=2)
        return rc

    async def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def client_session(port, stop_at, totals):
    """Stream data through one connection until the proxy closes it or stop_at; read to EOF."""
    loop = asyncio.get_running_loop()
    s = await connect(port)
    totals["conns"] += 1
    done = asyncio.Event()
    half_closed = False
    msg = bytes(range(256)) * 13  # 3328 bytes: never a multiple of the proxy's chunks

    async def writer():
        nonlocal half_closed
        while not done.is_set() and time.monotonic() < stop_at:
            try:
                await asyncio.wait_for(loop.sock_sendall(s, msg), 1)
            except (OSError, asyncio.TimeoutError):
                return
            totals["sent"] += len(msg)
            await asyncio.sleep(0.005)
        if not done.is_set():
            half_closed = True
            try:
                s.shutdown(socket.SHUT_WR)  # end of the run: let the connection end cleanly
            except OSError:
                pass

    async def reader():
        while True:
            kind, data = await recv_event(s, 3.0)
            if kind == "data":
                totals["received"] += len(data)
                continue
            totals[kind] = totals.get(kind, 0) + 1
            if kind == "eof" and not half_closed:  # the proxy ended it, not our own shutdown
                totals["proxy_eofs"] += 1
            done.set()
            return

    try:
        await asyncio.gather(writer(), reader())
    finally:
        s.close()


async def case_cut_every():
    echo = Echo(keep_data=False)
    up = await echo.start()
    child = Child()
    try:
        await child.start("--upstream", str(up), "--cut-every", "200", "500", "--seed", "7", "--max-seconds", "30")
        t_start = time.monotonic()
        stop_at = t_start + 3.0
        totals = {"conns": 0, "sent": 0, "received": 0, "eof": 0, "proxy_eofs": 0}
        while time.monotonic() < stop_at:
            await asyncio.wait_for(client_session(child.port, stop_at, totals), 10)
        await wait_until(lambda: all(r.ended for r in echo.records), 3)
        stats = await child.ask("stats")
        cuts = [o for _, o in child.lines if o.get("event") == "cut"]
        check("cut_every.reported", stats is not None and len(cuts) == stats.get("cuts")
              and all(c.get("by") == "timer" and isinstance(c.get("at_ms"), (int, float)) for c in cuts)
              and len({c["conn"] for c in cuts}) == len(cuts),
              f"{len(cuts)} cut lines, stats cuts {stats and stats.get('cuts')}, first {cuts[:1]}")
        check("cut_every.count", 5 <= len(cuts) <= 16, f"{len(cuts)} cuts in 3 s with intervals 200-500 ms")
        ages = [c["age_ms"] for c in cuts]
        check("cut_every.age_in_bounds", ages and all(200 <= a <= 500 + SLACK_MS for a in ages),
              f"connection age at cut: min {min(ages, default=0):.1f}, max {max(ages, default=0):.1f} ms")
        at = sorted(c["at_ms"] for c in cuts)
        gaps = [b - a for a, b in zip(at, at[1:])]
        check("cut_every.intervals_in_bounds", gaps and all(200 <= g <= 500 + SLACK_MS for g in gaps),
              "intervals " + ", ".join(f"{g:.0f}" for g in gaps) + " ms")
        # Every session ends in EOF (never a reset); all but possibly the last are ended by a cut
        # (the last one may be cut just after the client's own end-of-run half-close, or not at all).
        check("cut_every.client_saw_each_cut",
              totals["eof"] == totals["conns"] and not totals.get("reset") and not totals.get("timeout")
              and len(cuts) - 1 <= totals["proxy_eofs"] <= len(cuts) and totals["proxy_eofs"] >= totals["conns"] - 1,
              f"sessions {totals['conns']}, EOFs {totals['eof']} ({totals['proxy_eofs']} before the client's own "
              f"half-close), resets {totals.get('reset', 0)}, cuts {len(cuts)}")
        up_total = sum(r.received for r in echo.records)
        ok = (stats is not None and stats["accepted"] == totals["conns"] == len(echo.records)
              and stats["bytes_c2s"] == up_total and stats["bytes_s2c"] == totals["received"]
              and stats["errors"] == 0 and stats["active"] == 0 and stats["seed"] == 7)
        check("cut_every.stats_match", ok,
              f"accepted {stats and stats['accepted']} / client conns {totals['conns']} / upstream conns "
              f"{len(echo.records)}; bytes_c2s {stats and stats['bytes_c2s']} / upstream got {up_total}; "
              f"bytes_s2c {stats and stats['bytes_s2c']} / client got {totals['received']}; "
              f"errors {stats and stats['errors']}, active {stats and stats['active']}")
        await child.send("quit")
        rc = await child.wait_exit(5)
        last = child.lines[-1][1] if child.lines else {}
        check("cut_every.quit", rc == 0 and last.get("event") == "quit" and last.get("reason") == "quit",
              f"rc {rc}, last line {json.dumps(last)[:120]}")
    finally:
        await child.kill()
        await echo.close()


async def case_commands():
    echo = Echo()
    up = await echo.start()
    child = Child()
    try:
        await child.start("--upstream", str(up))
        s = await connect(child.port)
        ok, _ = await round_trip(s)
        replies = {}
        for cmd in ("delay 50", "delay 0", "blackhole on", "blackhole off", "refuse on", "refuse off",
                    "bogus", "blackhole maybe", "cut 999", "stats", "cut"):
            replies[cmd] = await child.ask(cmd)
        kind, _ = await recv_event(s, 1.0)
        s.close()
        good = (ok and all(replies[c] and replies[c]["event"] == "ok" and replies[c]["affected"] == 1
                           for c in ("delay 50", "delay 0", "blackhole on", "blackhole off", "cut"))
                and all(replies[c] and replies[c]["event"] == "ok" for c in ("refuse on", "refuse off"))
                and all(replies[c] and replies[c]["event"] == "error" for c in ("bogus", "blackhole maybe", "cut 999"))
                and replies["stats"] and replies["stats"]["event"] == "stats" and replies["stats"]["active"] == 1
                and kind == "eof")
        check("commands.replies", good, "; ".join(f"{c} -> {json.dumps(r)[:70]}" for c, r in replies.items()
                                                     if c in ("cut", "bogus", "cut 999"))
              + f"; client after cut: {kind}")
        # reset over the command line
        s = await connect(child.port)
        ok, _ = await round_trip(s)
        r = await child.ask("reset")
        kind, _ = await recv_event(s, 1.0)
        s.close()
        check("commands.reset", ok and r and r.get("affected") == 1 and kind == "reset", f"{r}, client saw {kind}")
        child.proc.stdin.close()  # EOF -> quit
        t0 = time.monotonic()
        rc = await child.wait_exit(5)
        last = child.lines[-1][1] if child.lines else {}
        check("commands.stdin_eof_quits", rc == 0 and last.get("reason") == "eof",
              f"rc {rc} after {(time.monotonic() - t0) * 1000:.0f} ms, reason {last.get('reason')}")
    finally:
        await child.kill()
        await echo.close()
    child = Child()
    try:
        await child.start("--upstream", str(up), "--max-seconds", "1")
        t0 = time.monotonic()
        rc = await child.wait_exit(5)  # stdin stays open
        last = child.lines[-1][1] if child.lines else {}
        check("commands.max_seconds", rc == 0 and last.get("reason") == "timeout",
              f"rc {rc} after {(time.monotonic() - t0) * 1000:.0f} ms, reason {last.get('reason')}")
    finally:
        await child.kill()


# ------------------------------------------------------------------------------------------------

async def run_all():
    echo = Echo()
    up = await echo.start()
    proxy = ChaosProxy(up)
    await proxy.start()
    cases = [case_passthrough, case_cut, case_reset, case_blackhole, case_delay, case_refuse, case_by_id]
    try:
        for case in cases:
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(case(proxy, echo), 30)
            except Exception as e:  # a broken case must not hide the others
                check(case.__name__, False, f"raised {e!r}")
            print(f"  ({case.__name__} took {time.monotonic() - t0:.2f} s)", flush=True)
    finally:
        await proxy.close()
        await echo.close()
    for case in (case_cut_every, case_commands):
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(case(), 30)
        except Exception as e:
            check(case.__name__, False, f"raised {e!r}")
        print(f"  ({case.__name__} took {time.monotonic() - t0:.2f} s)", flush=True)


def main():
    start_watchdog(60)
    t0 = time.monotonic()
    asyncio.run(run_all())
    print(f"{'FAIL' if _failures else 'PASS'} all: {len(_failures)} failed check(s) {_failures}, "
          f"{time.monotonic() - t0:.1f} s", flush=True)
    return 1 if _failures else 0


if __name__ == "__main__":
    sys.exit(main())
