"""Helpers shared by tether's Python interop programs.

The peer library is python3-websockets 10.4 (Debian). Everything the library
would refuse to do (malformed frames, masked server frames, ...) is done here by
hand on a raw TCP socket, so the tests can hit tether with exact bytes.

Every wait is bounded: each await goes through asyncio.wait_for with a timeout.
"""

import asyncio
import base64
import hashlib
import json
import os
import random
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))

PAYLOAD_SIZES = CASES["payload_sizes"]
VALID_CLOSE_CODES = CASES["valid_close_codes"]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# The 16 MiB messages take the longest; give one round trip this long.
BIG_TIMEOUT = 30.0
STEP_TIMEOUT = 5.0
# tether connect prints a 16 MiB binary message as ~22 MB of base64 on one line.
LINE_LIMIT = 128 * 1024 * 1024


class HarnessError(Exception):
    """A precondition of the test failed (tether missing, no listening line, ...)."""


# ---------------------------------------------------------------- reporting

class Report:
    """PASS/FAIL lines per case, and a closing 'N passed, N failed' line."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = []

    def ok(self, case, detail=""):
        self.passed += 1
        print(f"PASS [{self.suite}] {case}" + (f" ({detail})" if detail else ""), flush=True)

    def fail(self, case, detail):
        self.failed.append(case)
        print(f"FAIL [{self.suite}] {case}: {detail}", flush=True)

    def check(self, case, condition, detail_if_failed, detail_if_passed=""):
        if condition:
            self.ok(case, detail_if_passed)
        else:
            self.fail(case, detail_if_failed)
        return condition

    async def run(self, case, coro, timeout=STEP_TIMEOUT):
        """Run one case coroutine; it returns None (pass) or a failure string.

        Exceptions and timeouts count as failures of that case only, so one
        broken case does not hide the others.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            problem = await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            problem = f"timed out (waited {loop.time() - start:.1f} s)"
        except Exception as exc:  # noqa: BLE001 - any error is a failed case
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self.fail(case, problem)
        else:
            self.ok(case)
        return not problem

    def finish(self):
        print(f"{self.suite}: {self.passed} passed, {len(self.failed)} failed", flush=True)
        if self.failed:
            print("failed cases:\n  " + "\n  ".join(self.failed), flush=True)
        return 0 if self.passed and not self.failed else 1


def require_websockets():
    """Import websockets, failing (not skipping) with a clear message when absent."""
    try:
        import websockets  # noqa: F401
    except ImportError:
        print("FAIL: python3 module 'websockets' not found; install the Debian package "
              "python3-websockets and run with /usr/bin/python3", flush=True)
        sys.exit(1)
    return websockets


# ---------------------------------------------------------------- payloads

def text_payload(size):
    """Valid UTF-8 text of exactly `size` bytes, mixing 1- to 4-byte code points.

    Multi-byte characters make a server that splits or validates text at byte
    level (rather than code point level) show up as a failure.
    """
    unit = "aé€😀"  # 1 + 2 + 3 + 4 = 10 bytes in UTF-8
    text = unit * (size // 10) + "x" * (size % 10)
    assert len(text.encode("utf-8")) == size
    return text


def binary_payload(size):
    """Deterministic pseudo-random bytes (every byte value, no short period)."""
    return random.Random(size).randbytes(size)


def describe(msg):
    kind = "text" if isinstance(msg, str) else "binary"
    raw = msg.encode("utf-8") if isinstance(msg, str) else msg
    return f"{kind} message of {len(raw)} bytes"


def compare_messages(sent, got):
    """None when `got` is byte-for-byte `sent` with the same type, else a description."""
    if got is None:
        return f"expected {describe(sent)}, got nothing"
    if isinstance(sent, str) != isinstance(got, str):
        return f"type changed: sent {describe(sent)}, got {describe(got)}"
    a = sent.encode("utf-8") if isinstance(sent, str) else bytes(sent)
    b = got.encode("utf-8") if isinstance(got, str) else bytes(got)
    if a == b:
        return None
    if len(a) != len(b):
        return f"length differs: sent {len(a)} bytes, got {len(b)} bytes"
    first = next(i for i in range(len(a)) if a[i] != b[i])
    return f"content differs from byte {first} on ({len(a)} bytes)"


# ---------------------------------------------------------------- frames

def apply_mask(data, key):
    # XOR through big integers: fast enough for multi-megabyte payloads in pure Python.
    if not data:
        return b""
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")).to_bytes(len(data), "little")


def encode_frame(opcode, payload=b"", *, fin=True, rsv=0, masked=True, key=None):
    """One RFC 6455 frame; deliberately allows every illegal combination."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if masked:
        key = key or os.urandom(4)
        return head + key + apply_mask(payload, key)
    return head + payload


def frame_from_spec(spec, client_side):
    """Bytes of one frame described in cases.json (see its _comment)."""
    if "text" in spec:
        payload = spec["text"].encode("utf-8")
    elif "hex" in spec:
        payload = bytes.fromhex(spec["hex"])
    elif "fill" in spec:
        payload = b"x" * spec["fill"]
    elif "close_code" in spec:
        reason = bytes.fromhex(spec["reason_hex"]) if "reason_hex" in spec else spec.get("reason", "").encode()
        payload = struct.pack("!H", spec["close_code"]) + reason
    else:
        payload = b""
    return encode_frame(spec["opcode"], payload, fin=spec.get("fin", True), rsv=spec.get("rsv", 0),
                        masked=spec.get("masked", client_side))


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes


async def read_frame(reader, timeout=STEP_TIMEOUT):
    """Read one frame; raises asyncio.IncompleteReadError on EOF."""
    async def read():
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await reader.readexactly(8))
        key = await reader.readexactly(4) if b1 & 0x80 else None
        data = await reader.readexactly(n)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, key is not None,
                     apply_mask(data, key) if key else data)
    return await asyncio.wait_for(read(), timeout)


def parse_close(payload):
    """(code, reason bytes) of a close payload; code None for an empty payload."""
    if len(payload) == 0:
        return None, b""
    if len(payload) == 1:
        return -1, b""
    return struct.unpack("!H", payload[:2])[0], payload[2:]


async def read_until_close(reader, timeout=STEP_TIMEOUT):
    """Skip frames until a close frame.

    Returns (close Frame or None, skipped frames, why): why is "" when a close frame came,
    else what happened instead, for the failure message.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    skipped = []
    while True:
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError()
            frame = await read_frame(reader, remaining)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            why = "TCP closed without a close frame"
        except asyncio.TimeoutError:
            why = f"no close frame within {timeout:g} s"
        else:
            if frame.opcode == OP_CLOSE:
                return frame, skipped, ""
            skipped.append(frame)
            continue
        if skipped:
            why += f" (frames received before: opcodes {[f.opcode for f in skipped]})"
        return None, skipped, why


async def read_message(reader, timeout=STEP_TIMEOUT):
    """Reassemble one data message from raw frames, collecting control frames seen on the way.

    Returns (opcode, payload, control_frames); tether may fragment its own echo.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    controls, parts, opcode = [], [], None
    while True:
        frame = await read_frame(reader, max(0.01, deadline - loop.time()))
        if frame.opcode >= 0x8:
            controls.append(frame)
            if frame.opcode == OP_CLOSE:
                return None, b"", controls
            continue
        if opcode is None:
            opcode = frame.opcode
        parts.append(frame.payload)
        if frame.fin:
            return opcode, b"".join(parts), controls


async def wait_eof(reader, timeout):
    """True when the peer closes TCP (FIN or RST) within `timeout` seconds."""
    async def drain():
        while True:
            try:
                chunk = await reader.read(65536)
            except (ConnectionResetError, BrokenPipeError):
                return
            if not chunk:
                return
    try:
        await asyncio.wait_for(drain(), timeout)
        return True
    except asyncio.TimeoutError:
        return False


def close_writer(writer):
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - already closed by the peer is fine
        pass


# ---------------------------------------------------------------- handshakes

def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def parse_http_head(head):
    """(first line, {lower-case header: value}) of an HTTP request or response head."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def raw_client_connect(host, port, path="/", timeout=STEP_TIMEOUT):
    """Open TCP and do the client handshake by hand; returns (reader, writer)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status, headers = parse_http_head(head)
    if not status.startswith("HTTP/1.1 101"):
        close_writer(writer)
        raise HarnessError(f"handshake refused: {status!r}")
    if headers.get("sec-websocket-accept") != accept_key(key):
        close_writer(writer)
        raise HarnessError(f"bad Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}")
    return reader, writer


async def raw_server_handshake(reader, writer, timeout=STEP_TIMEOUT):
    """Answer a client handshake by hand. Returns (path, list of problems with the request)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    request_line, headers = parse_http_head(head)
    parts = request_line.split(" ")
    problems = []
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        problems.append(f"bad request line {request_line!r}")
    if headers.get("upgrade", "").lower() != "websocket":
        problems.append(f"Upgrade header is {headers.get('upgrade')!r}")
    if "upgrade" not in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
        problems.append(f"Connection header is {headers.get('connection')!r}")
    if headers.get("sec-websocket-version") != "13":
        problems.append(f"Sec-WebSocket-Version is {headers.get('sec-websocket-version')!r}")
    key = headers.get("sec-websocket-key", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            problems.append(f"Sec-WebSocket-Key {key!r} is not 16 base64 bytes")
    except ValueError:
        problems.append(f"Sec-WebSocket-Key {key!r} is not base64")
    writer.write((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n").encode())
    await writer.drain()
    return (parts[1] if len(parts) > 1 else "/"), problems


# ---------------------------------------------------------------- tether processes

class TetherServe:
    """`tether serve --host 127.0.0.1 --port 0 --mode echo` as a subprocess."""

    def __init__(self, proc, url):
        self.proc = proc
        self.url = url  # ws://HOST:PORT, as printed
        m = re.fullmatch(r"ws://(.+):(\d+)", url)
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
        self._drain = asyncio.ensure_future(self._drain_stdout())

    @classmethod
    async def start(cls, tether, extra_args=(), timeout=10.0):
        try:
            proc = await asyncio.create_subprocess_exec(
                tether, "serve", "--host", "127.0.0.1", "--port", "0", "--mode", "echo", *extra_args,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise HarnessError(f"cannot start {tether}: {exc}") from exc
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise HarnessError(f"tether serve printed no line within {timeout:g} s") from None
        text = line.decode("utf-8", "replace").rstrip("\n")
        m = re.fullmatch(r"listening (ws://\S+:\d+)", text)
        if not m:
            rc = None
            if not line:  # stdout closed: tether exited (usage error, crash, ...)
                try:
                    rc = await asyncio.wait_for(proc.wait(), 2.0)
                except asyncio.TimeoutError:
                    pass
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise HarnessError(f"first stdout line of tether serve is {line!r}, expected "
                               f"'listening ws://HOST:PORT' (exit status {rc})")
        return cls(proc, m.group(1))

    async def _drain_stdout(self):
        # Keep the pipe empty so tether never blocks on a full stdout.
        while await self.proc.stdout.readline():
            pass

    async def terminate(self, timeout=5.0):
        """SIGTERM, then the exit status, or None if it did not exit in time (then killed)."""
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            await self.kill()
            return None

    async def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._drain.cancel()


class TetherConnect:
    """`tether connect URL --echo --json-events`, collecting its JSON event lines."""

    def __init__(self, proc):
        self.proc = proc
        self.events = []
        self.bad_lines = []  # stdout lines that are not JSON objects
        self.changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, tether, url):
        try:
            proc = await asyncio.create_subprocess_exec(
                tether, "connect", url, "--echo", "--json-events", "--no-reconnect",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, limit=LINE_LIMIT)
        except OSError as exc:
            raise HarnessError(f"cannot start {tether}: {exc}") from exc
        return cls(proc)

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            try:
                event = json.loads(line)
                if not isinstance(event, dict) or "event" not in event:
                    raise ValueError("no 'event' key")
                self.events.append(event)
            except ValueError:
                self.bad_lines.append(line[:200])
            self.changed.set()

    def of_kind(self, kind):
        return [e for e in self.events if e.get("event") == kind]

    async def wait_exit(self, timeout=STEP_TIMEOUT):
        """Exit status, or None if it had to be killed; stdout is fully read afterwards."""
        try:
            rc = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            rc = None
        try:
            await asyncio.wait_for(self._reader, 2.0)
        except asyncio.TimeoutError:
            self._reader.cancel()
        return rc

    async def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


def event_message_value(event):
    """The message a JSON 'message' event stands for (str for text, bytes for binary)."""
    if event.get("type") == "text":
        return event.get("data")
    if event.get("type") == "binary":
        return base64.b64decode(event.get("base64", ""), validate=True)
    raise ValueError(f"unknown message type {event.get('type')!r}")


def arg_parser(description):
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tether", required=True, help="path of the tether binary (build/tether)")
    parser.add_argument("--group", choices=["echo", "violations", "all"], default="all",
                        help="which part of the matrix to run")
    return parser
