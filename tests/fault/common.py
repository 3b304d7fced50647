"""Helpers for the real-time fault tests (tests/fault/test_*.py).

Standard library only. Everything that waits takes a timeout; every script arms a watchdog
that kills the children it started and exits if the script itself gets stuck.

Run as a program, this file is also the "frozen client" child used by the SIGSTOP / SIGKILL
cases:  python3 common.py child HOST PORT N
It opens N WebSocket connections concurrently, prints one JSON line per connection
({"port": <local port>, "t_before": .., "t_sent": ..}: time.monotonic() just before and just
after the upgrade request was sent; see client_handshake),
then "ready", and then sleeps without touching the sockets (bounded: it exits after 100 s).
"""
import base64
import hashlib
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOST = "127.0.0.1"


class TestTimeout(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# Children and the watchdog

_children = []
_children_lock = threading.Lock()


def register(proc):
    with _children_lock:
        _children.append(proc)
    return proc


def kill_all():
    with _children_lock:
        procs = list(_children)
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)  # a stopped child cannot act on SIGKILL's cleanup
            except OSError:
                pass
            try:
                p.kill()
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except Exception:
            pass


def spawn(argv, **kw):
    """Popen registered for cleanup; stdout is a pipe unless told otherwise."""
    kw.setdefault("stdout", subprocess.PIPE)
    return register(subprocess.Popen(argv, **kw))


def start_watchdog(seconds=90):
    def bite():
        time.sleep(seconds)
        print(f"FAIL watchdog: script still running after {seconds} s; killing children", flush=True)
        kill_all()
        os._exit(3)

    threading.Thread(target=bite, name="watchdog", daemon=True).start()


# ----------------------------------------------------------------------------------------------
# Reading lines from a process with timeouts


class LineReader:
    """A thread reads `stream` line by line and queues (monotonic time, line); None at EOF.

    JSON lines are parsed into dicts; anything else arrives as {"_raw": line}. Lines that a
    wait_for() skipped are kept in `backlog` so a later wait_for() still sees them."""

    def __init__(self, stream, name="reader"):
        self._q = queue.Queue()
        self.backlog = []
        self.eof = False
        self.all = []  # every (t, obj) seen, for diagnostics
        self._stream = stream
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self):
        try:
            for raw in iter(self._stream.readline, b""):
                t = time.monotonic()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._q.put((t, line))
        except (OSError, ValueError):
            pass
        self._q.put((time.monotonic(), None))

    def raw_line(self, timeout):
        """The next raw text line as (t, line); (t, None) at EOF. Raises TestTimeout."""
        try:
            return self._q.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise TestTimeout(f"no line within {timeout:.2f} s")

    @staticmethod
    def _parse(line):
        try:
            obj = json.loads(line)
            return obj if isinstance(obj, dict) else {"_raw": line}
        except ValueError:
            return {"_raw": line}

    def poll(self, timeout):
        """Next event (t, dict) from the backlog or the stream, waiting at most `timeout`;
        None on timeout or EOF."""
        if self.backlog:
            return self.backlog.pop(0)
        if self.eof:
            return None
        try:
            t, line = self._q.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if line is None:
            self.eof = True
            return None
        ev = (t, self._parse(line))
        self.all.append(ev)
        return ev

    def wait_for(self, pred, timeout):
        """First event matching pred within timeout, as (t, dict); others go to the backlog.
        Raises TestTimeout (also at EOF)."""
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            # The backlog first, in order.
            for i, ev in enumerate(self.backlog):
                if pred(ev[1]):
                    del self.backlog[i]
                    return ev
            skipped, self.backlog = self.backlog, []
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    break
                try:
                    t, line = self._q.get(timeout=left)
                except queue.Empty:
                    break
                if line is None:
                    self.eof = True
                    break
                ev = (t, self._parse(line))
                self.all.append(ev)
                if pred(ev[1]):
                    return ev
                skipped.append(ev)
        finally:
            self.backlog = skipped + self.backlog
        raise TestTimeout("stream ended" if self.eof else f"no matching line within {timeout:.2f} s")

    def drain(self, timeout=0.0):
        """Every event available within `timeout` (backlog included)."""
        out = list(self.backlog)
        self.backlog = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.poll(max(0.0, deadline - time.monotonic()))
            if ev is None:
                return out
            out.append(ev)


# ----------------------------------------------------------------------------------------------
# tether processes


def start_server(tether, *extra, timeout=10):
    """`tether serve` on a free port with --json-events; returns (proc, reader, port)."""
    argv = [tether, "serve", "--host", HOST, "--port", "0", "--mode", "echo", "--json-events", *extra]
    proc = spawn(argv, stdin=subprocess.DEVNULL)
    reader = LineReader(proc.stdout, "server-stdout")
    deadline = time.monotonic() + timeout
    while True:
        t, line = reader.raw_line(deadline - time.monotonic())
        if line is None:
            raise RuntimeError(f"tether serve exited before listening (status {proc.wait(5)})")
        if line.startswith("listening ws://"):
            port = int(line.rsplit(":", 1)[1])
            return proc, reader, port


def start_client(tether, url, *extra):
    """`tether connect URL --json-events ...` with a stdin pipe that is never written (kept
    open, so EOF never closes the connection); returns (proc, reader)."""
    argv = [tether, "connect", url, "--json-events", "--no-reconnect", *extra]
    proc = spawn(argv, stdin=subprocess.PIPE)
    return proc, LineReader(proc.stdout, f"client-{proc.pid}")


def stop_process(proc, timeout=5):
    """SIGTERM, then SIGKILL after `timeout`; returns the exit status (None if unknown)."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
        except OSError:
            pass
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
    return proc.returncode


# ----------------------------------------------------------------------------------------------
# WebSocket bits


def accept_for(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode("ascii")).digest()).decode("ascii")


def mask_bytes(payload, key):
    """RFC 6455 §5.3 masking, done with one big-integer XOR (fast for large payloads)."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload=b"", masked=True, fin=True, key=None):
    head = bytearray([(0x80 if fin else 0) | opcode])
    m = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head.append(m | n)
    elif n < 65536:
        head.append(m | 126)
        head += struct.pack("!H", n)
    else:
        head.append(m | 127)
        head += struct.pack("!Q", n)
    if not masked:
        return bytes(head) + payload
    key = key if key is not None else os.urandom(4)
    return bytes(head) + key + mask_bytes(payload, key)


def _read_head(sock, timeout):
    """Bytes up to and including the blank line ending an HTTP head; returns (head, rest)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestTimeout("no complete HTTP head in time")
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"connection closed during the HTTP head: {buf!r}")
        buf += chunk
        if len(buf) > 65536:
            raise ConnectionError("HTTP head too large")
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def _headers(head):
    lines = head.split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


def client_handshake(port, host=HOST, timeout=5.0, rcvbuf=None):
    """Raw client: connect, send the upgrade, check the 101. Returns (sock, (t_before, t_sent),
    rest): time.monotonic() just before the request was handed to the kernel and just after it
    was fully sent; `rest` holds any bytes that followed the response head. The peer cannot
    have received the request before t_before, so delays measured from t_before are never too
    small; t_sent may lag the real send a little (the thread may wait for the GIL after the
    send), so delays measured from it are never too large. The socket is left blocking."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        req = (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode("ascii")
        t_before = time.monotonic()
        sock.sendall(req)
        t_sent = time.monotonic()
        head, rest = _read_head(sock, timeout)
        status, fields = _headers(head)
        if " 101 " not in status + " ":
            raise ConnectionError(f"upgrade refused: {status!r}")
        if fields.get("sec-websocket-accept") != accept_for(key):
            raise ConnectionError(f"bad Sec-WebSocket-Accept: {fields.get('sec-websocket-accept')!r}")
        sock.settimeout(None)
        return sock, (t_before, t_sent), rest
    except BaseException:
        sock.close()
        raise


def concurrent_handshakes(port, n, timeout=10.0, rcvbuf=None):
    """n raw clients handshaking at the same time (threads released by a barrier).
    Returns a list of (sock, (t_before, t_sent), local_port); raises if any failed."""
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []

    def one(i):
        try:
            barrier.wait(timeout)
            sock, times, _ = client_handshake(port, timeout=timeout, rcvbuf=rcvbuf)
            results[i] = (sock, times, sock.getsockname()[1])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout + 2)
    if errors or any(r is None for r in results):
        for r in results:
            if r:
                r[0].close()
        raise ConnectionError("; ".join(errors) or "a handshake thread did not finish")
    return results


def set_reset_on_close(sock):
    """SO_LINGER on with a zero timeout: close() sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class RawServer:
    """One listening socket on 127.0.0.1; accept() answers one upgrade correctly and hands back
    the connection, which the caller then leaves alone (or closes / resets)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"ws://{HOST}:{self.port}/"

    def accept(self, timeout=10.0):
        """Returns (conn, t_response, peer_port); t_response is taken just before the 101 is sent."""
        self.sock.settimeout(timeout)
        conn, addr = self.sock.accept()
        try:
            head, rest = _read_head(conn, timeout)
            status, fields = _headers(head)
            key = fields.get("sec-websocket-key")
            if not status.startswith("GET ") or not key:
                raise ConnectionError(f"not an upgrade request: {status!r}")
            resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_for(key)}\r\n\r\n")
            t = time.monotonic()  # before sending: the peer cannot have the 101 earlier
            conn.sendall(resp.encode("ascii"))
            conn.settimeout(None)
            return conn, t, addr[1]
        except BaseException:
            conn.close()
            raise

    def accept_many(self, n, timeout=15.0):
        """Accepts n connections, each answered on its own thread so a slow one does not hold
        up the rest. Returns a dict peer_port -> (conn, t_response, request_target), plus
        a list of errors."""
        out, errors, lock = {}, [], threading.Lock()
        threads = []
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)

        def answer(conn, addr):
            try:
                head, _ = _read_head(conn, max(0.1, deadline - time.monotonic()))
                status, fields = _headers(head)
                key = fields.get("sec-websocket-key")
                resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_for(key)}\r\n\r\n")
                t = time.monotonic()  # before sending: the peer cannot have the 101 earlier
                conn.sendall(resp.encode("ascii"))
                conn.settimeout(None)
                target = status.split(" ")[1] if status.count(" ") >= 2 else ""
                with lock:
                    out[addr[1]] = (conn, t, target)
            except BaseException as e:  # noqa: BLE001
                with lock:
                    errors.append(f"{addr}: {e!r}")
                conn.close()

        for _ in range(n):
            left = deadline - time.monotonic()
            if left <= 0:
                errors.append("accept timed out")
                break
            self.sock.settimeout(left)
            try:
                conn, addr = self.sock.accept()
            except socket.timeout:
                errors.append("accept timed out")
                break
            th = threading.Thread(target=answer, args=(conn, addr), daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join(max(0.1, deadline - time.monotonic()))
        return out, errors

    def close(self):
        self.sock.close()


# ----------------------------------------------------------------------------------------------
# Reporting


class Results:
    def __init__(self):
        self.failed = []
        self.figures = []

    def check(self, name, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            self.failed.append(name)
        return ok

    def figure(self, text):
        print(f"  figure {text}", flush=True)
        self.figures.append(text)

    def finish(self):
        if self.failed:
            print(f"FAILED: {', '.join(self.failed)}", flush=True)
            kill_all()
            sys.exit(1)
        print("ALL PASS", flush=True)
        kill_all()
        sys.exit(0)


def spread(values):
    return f"min {min(values):.3f} s, max {max(values):.3f} s" if values else "no samples"


# ----------------------------------------------------------------------------------------------
# The frozen client child (see the module docstring)


def _child_main(argv):
    host, port, n = argv[0], int(argv[1]), int(argv[2])
    threading.Thread(target=lambda: (time.sleep(100), os._exit(0)), daemon=True).start()
    try:
        conns = concurrent_handshakes(port, n)
    except BaseException as e:  # noqa: BLE001
        print(json.dumps({"error": repr(e)}), flush=True)
        os._exit(1)
    for sock, (t_before, t_sent), local_port in conns:
        print(json.dumps({"port": local_port, "t_before": t_before, "t_sent": t_sent}), flush=True)
    print("ready", flush=True)
    while True:  # never read or write again
        time.sleep(3600)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "child":
        _child_main(sys.argv[2:])
    else:
        print("usage: common.py child HOST PORT N", file=sys.stderr)
        sys.exit(2)
