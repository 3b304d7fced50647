"""Harness for the multi-node tests (tests/multinode/test_*.py): a private Redis, several
`tether serve --mode pubsub --redis URL` nodes, nginx in front of them, WebSocket clients.

Style of tests/fault and tests/interop: standard library plus python3-websockets (10.4, Debian's
/usr/bin/python3); every wait is bounded; ports are free ones picked by the kernel; each script
prints one PASS/FAIL line per check, exits non-zero on any failure, and a watchdog kills the
children it started and exits if the script itself gets stuck.

    redis = Redis(tmp)                 # redis-server --port FREE --save "" --appendonly no ...
    redis.start(); redis.kill(); redis.start()       # SIGKILL, then again on the same port
    redis.stop()                                     # SIGTERM
    node = Node(tether, redis.url, tmp, "A")         # tether serve --port 0 --mode pubsub ...
    node.start(); node.kill(); node.start()          # again on its old port (or node.restart())
    node.stop()                                      # SIGTERM: 1012 to its clients
    healthz(node.port) -> (status, headers, body); metric(node.port, "tether_redis_up")
"""
import argparse
import asyncio
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import websockets

HOST = "127.0.0.1"
FAILED = []

# ----------------------------------------------------------------------------------------------
# Results


def check(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        FAILED.append(what)
    return ok


def note(what):
    print("  " + what, flush=True)


# ----------------------------------------------------------------------------------------------
# Children, the watchdog, temporary directories

# The child registry and the watchdog are the fault suite's (tests/fault/common.py), loaded by
# path: "common" is also the interop suite's module name.
_fault_spec = importlib.util.spec_from_file_location(
    "fault_common", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault", "common.py"))
_fault = importlib.util.module_from_spec(_fault_spec)
_fault_spec.loader.exec_module(_fault)
register, kill_all, start_watchdog = _fault.register, _fault.kill_all, _fault.start_watchdog


def make_tmpdir(prefix):
    """A temporary directory, kept when TETHER_KEEP_TMP=1 (for the logs)."""
    return tempfile.mkdtemp(prefix=f"tether-multinode-{prefix}-")


def remove_tmpdir(path):
    if os.environ.get("TETHER_KEEP_TMP") == "1":
        print(f"  (kept {path})", flush=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05):
    """Polls pred() until it is truthy (returns its value) or `timeout` passes (returns the
    last value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def finish(name):
    print(f"{name}: {'FAILED: ' + '; '.join(FAILED) if FAILED else 'all passed'}", flush=True)
    return 1 if FAILED else 0


def run_main(name, body, watchdog_s=110):
    """Runs `body()` (a coroutine function) under the watchdog, kills every child at the end,
    prints the summary line and exits with its status."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    start_watchdog(watchdog_s)
    t0 = time.monotonic()
    try:
        asyncio.run(body())
    except Exception as e:  # noqa: BLE001 - a harness failure is a test failure
        import traceback
        traceback.print_exc()
        check(False, f"{name}: unexpected {type(e).__name__}: {e}")
    finally:
        kill_all()
    print(f"{name}: {time.monotonic() - t0:.1f} s", flush=True)
    sys.exit(finish(name))


def main_with_tether(name, doc, body, watchdog_s=100):
    """The command line of a test that needs only the tether binary: --tether PATH, then
    run_main(name, body(tether))."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--tether", required=True)
    a = ap.parse_args()
    run_main(name, lambda: body(a.tether), watchdog_s=watchdog_s)


def stop_cluster(nodes, redis, tmp):
    """Kills the nodes and Redis and removes the test's directory (run_main kills whatever a
    failed test left running)."""
    for n in nodes:
        n.kill()
    redis.kill()
    remove_tmpdir(tmp)


# ----------------------------------------------------------------------------------------------
# Redis


class Redis:
    """A private redis-server on 127.0.0.1 with no persistence, its files in `tmp`."""

    def __init__(self, tmp, binary=None):
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = None
        self.proc = None

    @property
    def url(self):
        return f"redis://{HOST}:{self.port}"

    def start(self, timeout=5.0):
        """Starts it (on its old port after a kill) and waits until it answers PING."""
        if not os.path.exists(self.binary):
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        if self.port is None:
            self.port = free_port()
        deadline = time.monotonic() + timeout
        while True:
            self.proc = register(subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", HOST, "--save", "",
                 "--appendonly", "no", "--dir", self.dir,
                 "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.command("PING") == "+PONG":
                    return
                time.sleep(0.02)
            if self.proc.poll() is None or time.monotonic() >= deadline:
                break
            time.sleep(0.1)  # exited (the port still held a moment after a kill?): once more
        self.kill()
        raise RuntimeError(f"redis-server did not start on port {self.port}; see {self.dir}/redis.log")

    def stop(self, timeout=5.0):
        """SIGTERM: Redis shuts down cleanly (the nodes see their links close)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self):
        """SIGKILL, then started again on the same port."""
        self.kill()
        self.start()

    def kill(self):
        """SIGKILL: no shutdown, the nodes see their links reset."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def command(self, *args, timeout=1.0):
        """One command over a fresh connection; the first reply line (e.g. '+PONG'), or None."""
        try:
            with socket.create_connection((HOST, self.port), timeout=timeout) as s:
                req = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
                s.sendall(req.encode())
                buf = b""
                while b"\r\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        return None
                    buf += chunk
                return buf.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        except OSError:
            return None


# ----------------------------------------------------------------------------------------------
# tether nodes


class Node:
    """`tether serve --mode pubsub --redis URL` on 127.0.0.1. Its stderr goes to a file per start
    (`<tmp>/node-<name>.<n>.stderr`); `stderr_text()` reads the current one."""

    def __init__(self, tether, redis_url, tmp, name, mode="pubsub",
                 ping_interval="1s", ping_timeout="1s", extra=()):
        self.tether = tether
        self.redis_url = redis_url
        self.tmp = tmp
        self.name = name
        self.mode = mode
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.extra = list(extra)
        self.port = 0
        self.proc = None
        self.starts = 0
        self.stderr_path = None

    @property
    def url(self):
        return f"ws://{HOST}:{self.port}"

    def argv(self):
        a = [self.tether, "serve", "--host", HOST, "--port", str(self.port), "--mode", self.mode,
             "--ping-interval", self.ping_interval, "--ping-timeout", self.ping_timeout]
        if self.redis_url:
            a += ["--redis", self.redis_url]
        return a + self.extra

    def start(self, timeout=10.0):
        """Starts the node (on its old port if it ran before) and reads its listening line."""
        deadline = time.monotonic() + timeout
        while True:
            self.starts += 1
            self.stderr_path = os.path.join(self.tmp, f"node-{self.name}.{self.starts}.stderr")
            err = open(self.stderr_path, "wb")
            self.proc = register(subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                                  stdout=subprocess.PIPE, stderr=err))
            err.close()
            lines = queue.Queue()
            out = self.proc.stdout

            def pump():
                for raw in iter(out.readline, b""):
                    lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
                lines.put(None)  # EOF; the rest of stdout is read and dropped here

            threading.Thread(target=pump, daemon=True, name=f"node-{self.name}-stdout").start()
            try:
                first = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                first = None
            m = re.fullmatch(r"listening ws://[^ ]+:(\d+)", first or "")
            if m:
                self.port = int(m.group(1))
                return self
            rc = self.proc.poll()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            # On its old port right after a kill the bind can fail for a moment: try again.
            if self.port and "listen" in self.stderr_text() and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            raise RuntimeError(f"node {self.name}: first stdout line {first!r} (exit {rc}); "
                               f"stderr: {self.stderr_text()[-500:]!r}")

    def kill(self):
        """SIGKILL: no close frames, no goodbye to Redis."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self, timeout=5.0):
        """SIGTERM: close 1012 to every client with paced reconnects, then exit (docs/cli.md)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return None

    def restart(self):
        """SIGKILL, then started again on its old port."""
        self.kill()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self, path=None):
        try:
            with open(path or self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def wait_stderr(self, pattern, timeout):
        """The first match of regex `pattern` in the current stderr file within `timeout`."""
        return wait_until(lambda: re.search(pattern, self.stderr_text()), timeout)


def start_nodes(tether, redis_url, tmp, names, **kw):
    return [Node(tether, redis_url, tmp, n, **kw).start() for n in names]


# ----------------------------------------------------------------------------------------------
# Plain HTTP on a node's port (or nginx's)


def http_get(port, path, timeout=2.0):
    """GET path -> (status, {lower-case header: value}, body text); (None, {}, error) on a
    failure."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
                      .encode())
            buf = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    if m and len(body) >= int(m.group(1)):
                        break
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, body.decode("utf-8", "replace")
    except (OSError, ValueError, IndexError) as e:
        return None, {}, repr(e)


def healthz(port):
    return http_get(port, "/healthz")


def health_state(port):
    """'ok', 'degraded' or a description of what else came back."""
    status, headers, body = healthz(port)
    if status == 200 and body.strip() == "ok":
        return "ok"
    if (status == 200 and body.strip() == "degraded: redis down (local delivery only)"
            and headers.get("x-tether-redis") == "down"):
        return "degraded"
    return f"{status} {headers.get('x-tether-redis')!r} {body.strip()!r}"


def metric(port, name):
    """The value of an unlabelled Prometheus sample from GET /metrics, or None if absent."""
    status, _, body = http_get(port, "/metrics")
    if status != 200:
        return None
    m = re.search(rf"(?m)^{re.escape(name)}(?:\{{\}})? ([0-9.eE+-]+)$", body)
    return float(m.group(1)) if m else None


# ----------------------------------------------------------------------------------------------
# WebSocket clients (python websockets, asyncio)


class Peer:
    """One plain WebSocket connection that records every message it receives."""

    def __init__(self, name, url):
        self.name = name
        self.url = url
        self.ws = None
        self.msgs = []
        self.closed = None  # the ConnectionClosed exception (or other error) once it ended
        self._changed = asyncio.Event()
        self._task = None

    async def open(self, timeout=5.0):
        self.ws = await asyncio.wait_for(
            websockets.connect(self.url, ping_interval=None, max_queue=None, compression=None,
                               close_timeout=1, open_timeout=timeout), timeout + 1)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self):
        try:
            async for m in self.ws:
                self.msgs.append(m)
                self._changed.set()
        except Exception as e:  # noqa: BLE001 - recorded, asserted by the tests
            self.closed = e
        else:
            self.closed = self.ws.close_code
        self._changed.set()
        if self.closed is None:
            self.closed = "closed"

    async def send(self, m):
        await self.ws.send(m)

    async def wait_for(self, pred, timeout):
        """True once pred(self) holds, False after `timeout`."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            if pred(self):
                return True
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                return pred(self)
        return True

    async def wait_count(self, n, timeout):
        return await self.wait_for(lambda p: len(p.msgs) >= n, timeout)

    async def close(self):
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 3)
            except Exception:  # noqa: BLE001 - closing at the end, best effort
                pass
        if self._task:
            self._task.cancel()


async def open_peers(specs, timeout=5.0):
    """specs: [(name, url)] -> [Peer], opened concurrently."""
    peers = [Peer(n, u) for n, u in specs]
    await asyncio.gather(*(p.open(timeout) for p in peers))
    return peers


def check_sequences(msgs, expected):
    """msgs: received strings "<prefix>-<i>"; expected: {prefix: count}. Returns a list of
    problems (empty when every prefix's messages are exactly 1..count, in order, once each, and
    nothing else arrived)."""
    by = {p: [] for p in expected}
    foreign = []
    for m in msgs:
        prefix, _, i = m.rpartition("-") if isinstance(m, str) else ("", "", "")
        if prefix in by and i.isdigit():
            by[prefix].append(int(i))
        else:
            foreign.append(m)
    problems = []
    if foreign:
        problems.append(f"{len(foreign)} unexpected messages (first {foreign[:3]!r})")
    for prefix, n in expected.items():
        got = by[prefix]
        if got == list(range(1, n + 1)):
            continue
        seen = set(got)
        missing = [i for i in range(1, n + 1) if i not in seen]
        dups = len(got) - len(seen)
        disorder = sum(1 for a, b in zip(got, got[1:]) if b <= a)
        problems.append(f"{prefix}: {len(got)} received of {n}, {len(missing)} missing "
                        f"(first {missing[:5]}), {dups} duplicates, {disorder} out of order")
    return problems


# ----------------------------------------------------------------------------------------------
# `tether connect` as a subprocess (asyncio), reading its --json-events lines


class TetherConnect:
    """`tether connect URL... --json-events ...` whose stdin is a pipe that is never written,
    so EOF never closes the connection. `events` holds every JSON line; `messages` the data of
    the text messages."""

    def __init__(self, proc):
        self.proc = proc
        self.events = []
        self.messages = []
        self.bad_lines = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, tether, urls, *extra):
        proc = await asyncio.create_subprocess_exec(
            tether, "connect", *urls, "--json-events", *extra,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=1 << 20)
        register(_AsyncProcHandle(proc))
        return cls(proc)

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            try:
                ev = json.loads(line)
                if not isinstance(ev, dict):
                    raise ValueError
            except ValueError:
                self.bad_lines.append(line[:200])
                continue
            if ev.get("event") == "rtt":
                continue
            self.events.append(ev)
            if ev.get("event") == "message":
                self.messages.append(ev.get("data"))
            self._changed.set()
        self._changed.set()

    def of_kind(self, kind):
        return [e for e in self.events if e.get("event") == kind]

    async def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.stdout.at_eof() and self._task.done():
                return pred(self)
            self._changed.clear()
            if pred(self):
                return True
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                return pred(self)
        return True

    async def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._task.cancel()


class _AsyncProcHandle:
    """Lets kill_all() end an asyncio subprocess too."""

    def __init__(self, proc):
        self._p = proc

    def poll(self):
        return self._p.returncode

    def kill(self):
        try:
            os.kill(self._p.pid, signal.SIGKILL)
        except OSError:
            pass

    def wait(self, timeout=None):
        try:
            os.waitpid(self._p.pid, os.WNOHANG)
        except OSError:
            pass


# ----------------------------------------------------------------------------------------------
# nginx in front of the nodes, with the configuration from docs/deploy.md

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY_MD = os.path.join(REPO, "docs", "deploy.md")
BEGIN = "<!-- nginx.conf begin -->"
END = "<!-- nginx.conf end -->"

# The placeholders of the documented configuration (docs/deploy.md says the same): the three
# node addresses, the public listen line, and every proxy_read_timeout / proxy_send_timeout
# (scaled down by TIMEOUT_SCALE, together with the nodes' --ping-interval and --ping-timeout).
PLACEHOLDER_NODES = ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"]
PLACEHOLDER_LISTEN = "listen 80;"
TIMEOUT_SCALE = 20
DOC_PING_INTERVAL_MS = 25_000  # tether serve's defaults, which the documented timeouts assume
DOC_PING_TIMEOUT_MS = 20_000


def documented_nginx_conf(path=DEPLOY_MD):
    """The text between the markers in docs/deploy.md, inside its ```nginx fence."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"{path}: expected one {BEGIN!r} and one {END!r}")
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    m = re.fullmatch(r"```nginx\n(.*?)\n```", block, re.S)
    if not m:
        raise ValueError(f"{path}: the text between the markers is not one ```nginx fence")
    return m.group(1) + "\n"


def scaled_ms(ms):
    return max(1, round(ms / TIMEOUT_SCALE))


def instantiate_nginx_conf(conf, node_ports, listen_port, scale=True):
    """Applies the documented substitutions; raises if a placeholder is not found exactly as
    documented (so the doc and the test cannot drift apart silently)."""
    out = conf
    for placeholder, port in zip(PLACEHOLDER_NODES, node_ports):
        n = out.count(f"server {placeholder}")
        if n != 1:
            raise ValueError(f"placeholder 'server {placeholder}' found {n} times (expected 1)")
        out = out.replace(f"server {placeholder}", f"server {HOST}:{port}")
    if out.count(PLACEHOLDER_LISTEN) != 1:
        raise ValueError(f"placeholder {PLACEHOLDER_LISTEN!r} not found exactly once")
    out = out.replace(PLACEHOLDER_LISTEN, f"listen {HOST}:{listen_port};")
    if scale:
        pat = re.compile(r"\b(proxy_(?:read|send)_timeout)\s+(\d+)s;")
        if len(pat.findall(out)) < 2:
            raise ValueError("expected proxy_read_timeout and proxy_send_timeout in seconds")

        def sub(m):
            return f"{m.group(1)} {scaled_ms(int(m.group(2)) * 1000)}ms;"
        out = pat.sub(sub, out)
    return out


def documented_timeouts_s(conf):
    return {k: int(v) for k, v in re.findall(r"\b(proxy_(?:read|send)_timeout)\s+(\d+)s;", conf)}


class Nginx:
    """Debian's nginx, not root: its own prefix, pid file, logs and temp paths in `tmp`."""

    def __init__(self, tmp, name="nginx"):
        self.binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None

    def start(self, site_conf, timeout=5.0):
        if not os.path.exists(self.binary):
            raise RuntimeError("nginx not found (scripts/deps.sh installs Debian's nginx)")
        d = self.dir
        with open(os.path.join(d, "tether.conf"), "w") as f:
            f.write(site_conf)
        main = f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  include {d}/tether.conf;
}}
"""
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(main)
        self.proc = register(subprocess.Popen([self.binary, "-p", d, "-c", f"{d}/nginx.conf"],
                                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=open(os.path.join(d, "stderr"), "wb")))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {self.log_tail()}")

    def log_tail(self, n=600):
        text = ""
        for name in ("stderr", "error.log"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text[-n:]
