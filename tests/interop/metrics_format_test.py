#!/usr/bin/python3
"""Observability of `tether serve`: the /metrics page and the stderr connection logs.

Groups (--group):
  format  `tether serve --port 0` <- python websockets traffic (echoes, closes 1000 / 3001 /
          4001, a 403 origin, a malformed request, heartbeat pongs and a silent raw socket
          dropped by the heartbeat), then GET /metrics over a raw socket. The page is checked by
          a strict parser of the Prometheus text format 0.0.4 written here: every sample line is
          `name{labels} value`, names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
          [a-zA-Z_][a-zA-Z0-9_]*, values are floats, every family has HELP then TYPE before its
          samples and its samples are contiguous, counters end in _total, histogram buckets are
          cumulative with +Inf == _count and a _sum, no series twice. Then its counters must
          match the traffic, and `promtool check metrics` must accept it when promtool is
          installed. Also --metrics-port (served there, not on the main port).
  logs    `tether serve --log-format json` (and text, and --log-level warn/error): one stderr
          line per open and close with the fields docs/cli.md lists, a refused handshake at
          warn, a bad TLS file at error with exit status 1; --json-events on stdout unchanged.
Every case prints PASS/FAIL; every wait is bounded; exit status 1 on any failure.
"""

import asyncio
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import tempfile

from common import OP_PING, STEP_TIMEOUT, HarnessError, Report, read_frame, require_websockets

websockets = require_websockets()

CONNECT_OPTS = dict(ping_interval=None, close_timeout=STEP_TIMEOUT, open_timeout=STEP_TIMEOUT)
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


# ---------------------------------------------------------------- tether serve with stderr kept

class Serve:
    """`tether serve` with stdout and stderr read line by line into lists."""

    def __init__(self, proc, port):
        self.proc, self.port = proc, port
        self.stdout, self.stderr = [], []
        self.changed = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._pump(proc.stdout, self.stdout)),
                       asyncio.ensure_future(self._pump(proc.stderr, self.stderr))]

    @classmethod
    async def start(cls, tether, *extra):
        proc = await asyncio.create_subprocess_exec(
            tether, "serve", "--host", "127.0.0.1", "--port", "0", *extra,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(proc.stdout.readline(), 10.0)
        m = re.fullmatch(r"listening ws://127\.0\.0\.1:(\d+)", line.decode().strip())
        if not m:
            err = b""
            if proc.returncode is None:
                proc.kill()
            err = await asyncio.wait_for(proc.stderr.read(), 5.0)
            await proc.wait()
            raise HarnessError(f"tether serve printed {line!r}, stderr {err.decode(errors='replace')!r}")
        return cls(proc, int(m.group(1)))

    async def _pump(self, stream, lines):
        while True:
            line = await stream.readline()
            if not line:
                return
            lines.append(line.decode("utf-8", "replace").rstrip("\n"))
            self.changed.set()

    async def wait_for(self, lines, pred, timeout=STEP_TIMEOUT):
        """The first line (JSON-decoded when it parses) satisfying pred, or None after timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for line in lines[seen:]:
                if pred(line):
                    return line
            seen = len(lines)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                return None

    async def stop(self):
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            rc = await asyncio.wait_for(self.proc.wait(), 5.0)
        except asyncio.TimeoutError:
            self.proc.kill()
            rc = await self.proc.wait()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5.0)
        return rc


async def http_get(port, path="/metrics"):
    """(status line, headers dict, body) of GET path, read to EOF."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), STEP_TIMEOUT)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), STEP_TIMEOUT)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for h in lines[1:]:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body.decode("utf-8")


# ---------------------------------------------------------------- a strict text-format parser

def parse_float(text):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        raise ValueError(f"not a float: {text!r}")
    return float(text)


def parse_labels(text, where):
    """The inside of {...}: name="value" pairs with \\\\ \\" \\n escapes. Returns a dict."""
    labels, i = {}, 0
    while i < len(text):
        m = LABEL_NAME_RE.match(text, i)
        if not m:
            raise ValueError(f"{where}: bad label name at {text[i:]!r}")
        name = m.group(0)
        if name.startswith("__"):
            raise ValueError(f"{where}: reserved label name {name}")
        i = m.end()
        if text[i:i + 2] != '="':
            raise ValueError(f"{where}: expected =\" after {name}")
        i += 2
        value = []
        while True:
            if i >= len(text):
                raise ValueError(f"{where}: unterminated label value")
            c = text[i]
            if c == "\\":
                nxt = text[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError(f"{where}: bad escape \\{nxt}")
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ValueError(f"{where}: raw newline in a label value")
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise ValueError(f"{where}: label {name} twice")
        labels[name] = "".join(value)
        if i < len(text):
            if text[i] != ",":
                raise ValueError(f"{where}: expected , at {text[i:]!r}")
            i += 1
    return labels


def split_sample(line, where):
    """name, labels dict, value of one sample line (the value may not be followed by junk)."""
    m = NAME_RE.match(line)
    if not m:
        raise ValueError(f"{where}: bad metric name in {line!r}")
    name, rest = m.group(0), line[m.end():]
    labels = {}
    if rest.startswith("{"):
        # The closing brace: the first } outside a quoted value.
        i, quoted = 1, False
        while i < len(rest):
            c = rest[i]
            if quoted and c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "}" and not quoted:
                break
            i += 1
        else:
            raise ValueError(f"{where}: no closing brace")
        labels = parse_labels(rest[1:i], where)
        rest = rest[i + 1:]
    parts = rest.split(" ")
    if len(parts) not in (2, 3) or parts[0] != "":
        raise ValueError(f"{where}: expected ' value [timestamp]' after the name, got {rest!r}")
    value = parse_float(parts[1])
    if len(parts) == 3 and not re.fullmatch(r"-?\d+", parts[2]):
        raise ValueError(f"{where}: bad timestamp {parts[2]!r}")
    return name, labels, value


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return None


def parse_exposition(text):
    """Strictly parse a text exposition. Returns (types, samples {(name, frozenset labels): value})."""
    problems = []
    if not text.endswith("\n"):
        problems.append("the page does not end with a newline")
    helps, types, samples = {}, {}, {}
    order = []  # families in order of their samples, to check contiguity
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}"
        try:
            if line.startswith("#"):
                m = re.fullmatch(r"# (HELP|TYPE) (\S+) ?(.*)", line)
                if not m:
                    raise ValueError(f"{where}: comment that is neither HELP nor TYPE: {line!r}")
                kind, name, rest = m.groups()
                if not NAME_RE.fullmatch(name):
                    raise ValueError(f"{where}: bad family name {name!r}")
                if kind == "HELP":
                    if name in helps:
                        raise ValueError(f"{where}: second HELP for {name}")
                    if name in types or any(f == name for f in order):
                        raise ValueError(f"{where}: HELP for {name} after its TYPE or samples")
                    if re.search(r"\\[^\\n]", rest):
                        raise ValueError(f"{where}: bad escape in HELP")
                    helps[name] = rest
                else:
                    if name in types:
                        raise ValueError(f"{where}: second TYPE for {name}")
                    if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        raise ValueError(f"{where}: unknown type {rest!r}")
                    if name in order:
                        raise ValueError(f"{where}: TYPE for {name} after its samples")
                    types[name] = rest
                continue
            if not line:
                raise ValueError(f"{where}: empty line")
            name, labels, value = split_sample(line, where)
            fam = family_of(name, types)
            if fam is None:
                raise ValueError(f"{where}: sample {name} before its TYPE line")
            if fam not in helps:
                raise ValueError(f"{where}: family {fam} has no HELP")
            if order and order[-1] != fam and fam in order:
                raise ValueError(f"{where}: samples of {fam} are not contiguous")
            if not order or order[-1] != fam:
                order.append(fam)
            key = (name, frozenset(labels.items()))
            if key in samples:
                raise ValueError(f"{where}: series {name}{labels} twice")
            samples[key] = value
            kind = types[fam]
            if kind == "counter" and not (value >= 0):
                raise ValueError(f"{where}: negative counter {name}")
            if kind == "histogram" and name == fam:
                raise ValueError(f"{where}: histogram sample without _bucket/_sum/_count: {name}")
            if kind == "histogram" and name.endswith("_bucket") and "le" not in labels:
                raise ValueError(f"{where}: bucket without le")
        except ValueError as exc:
            problems.append(str(exc))
    for fam, kind in types.items():
        if kind == "counter" and not fam.endswith("_total"):
            problems.append(f"counter {fam} does not end in _total")
        if kind == "gauge" and fam.endswith("_total"):
            problems.append(f"gauge {fam} ends in _total")
        if kind == "histogram":
            problems += check_histogram(fam, samples)
    return types, samples, problems


def check_histogram(fam, samples):
    problems = []
    groups = {}  # labels other than le -> [(le, value)]
    for (name, labels), value in samples.items():
        if name == fam + "_bucket":
            d = dict(labels)
            le = d.pop("le")
            groups.setdefault(frozenset(d.items()), []).append((parse_float(le), value))
    for rest, buckets in groups.items():
        buckets.sort()
        counts = [v for _, v in buckets]
        if counts != sorted(counts):
            problems.append(f"{fam}{dict(rest)}: buckets are not cumulative: {buckets}")
        if not buckets or buckets[-1][0] != math.inf:
            problems.append(f"{fam}{dict(rest)}: no +Inf bucket")
            continue
        count = samples.get((fam + "_count", rest))
        total = samples.get((fam + "_sum", rest))
        if count is None or total is None:
            problems.append(f"{fam}{dict(rest)}: missing _count or _sum")
        elif count != buckets[-1][1]:
            problems.append(f"{fam}{dict(rest)}: +Inf bucket {buckets[-1][1]} != _count {count}")
    if not groups:
        problems.append(f"histogram {fam} has no buckets")
    return problems


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def self_test_parser():
    """The parser must reject what the format forbids (so a pass means something)."""
    good = ('# HELP a_total x\n# TYPE a_total counter\na_total{k="v\\"q"} 1\n'
            '# HELP h y\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
            'h_sum 3.5\nh_count 2\n')
    _, _, problems = parse_exposition(good)
    if problems:
        return f"a valid page was refused: {problems}"
    bad = {
        "no TYPE": "# HELP a_total x\na_total 1\n",
        "counter without _total": "# HELP a x\n# TYPE a counter\na 1\n",
        "duplicate series": "# HELP a_total x\n# TYPE a_total counter\na_total 1\na_total 2\n",
        "bad name": "# HELP a_total x\n# TYPE a_total counter\n1a_total 1\n",
        "bad value": "# HELP a_total x\n# TYPE a_total counter\na_total one\n",
        "not cumulative": ('# HELP h y\n# TYPE h histogram\nh_bucket{le="1"} 3\n'
                           'h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n'),
        "+Inf != count": ('# HELP h y\n# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\n'
                          'h_count 3\n'),
        "bad escape": '# HELP a_total x\n# TYPE a_total counter\na_total{k="\\t"} 1\n',
        "no newline at end": "# HELP a_total x\n# TYPE a_total counter\na_total 1",
    }
    for what, page in bad.items():
        if not parse_exposition(page)[2]:
            return f"the parser accepted a page with {what}"
    return None


# ---------------------------------------------------------------- format group

async def traffic(port, steps):
    """What /metrics must then count. Returns the expected values; `steps` names the step in
    progress (for the failure message)."""
    url = f"ws://127.0.0.1:{port}"
    steps.append("echo clients")
    # 3 clients echo 5 messages each (text and binary), then close 1000.
    for c in range(3):
        async with websockets.connect(url + "/", **CONNECT_OPTS) as ws:
            for n in (0, 1, 125, 126, 70000):
                msg = bytes([c]) * n if n % 2 == 0 else "é" * (n // 2) + "x"
                await ws.send(msg)
                echo = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
                assert echo == msg, "echo differs"
    steps.append("close codes 3001, 4001")
    # Application codes: classes 3xxx and 4xxx.
    for code in (3001, 4001):
        ws = await websockets.connect(url + "/", **CONNECT_OPTS)
        await ws.close(code, "bye")
    steps.append("403 origin")
    # A browser from another origin: 403.
    try:
        ws = await websockets.connect(url + "/", origin="https://evil.example", **CONNECT_OPTS)
        await ws.close()
        raise AssertionError("the 403 origin was accepted")
    except websockets.exceptions.InvalidStatusCode as exc:
        assert exc.status_code == 403, f"status {exc.status_code}"
    steps.append("malformed request")
    # A malformed request line: 400.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET\r\n\r\n")
    await asyncio.wait_for(reader.read(), STEP_TIMEOUT)
    writer.close()
    steps.append("heartbeat")
    # A client that answers heartbeat pings (websockets does) past one interval, and a raw socket
    # that never answers: dropped after interval + timeout (1 s + 1 s; a client of this program
    # stalled for a second by a loaded machine would be dropped too, so not less).
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP_TIMEOUT)
    async with websockets.connect(url + "/", **CONNECT_OPTS) as ws:
        await asyncio.sleep(1.3)
        await ws.send("still here")
        await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
    pings = 0
    try:
        while True:
            f = await read_frame(reader, 3.0)
            pings += f.opcode == OP_PING
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    writer.close()
    assert pings >= 1, "the silent socket got no ping"
    return {
        "opened": 3 + 2 + 1 + 1,  # echo clients, 3001/4001, the silent socket, the pinged client
        "closed_1000": 3 + 1,
        "received_messages": 15 + 1,
        "sent_messages": 15 + 1,
    }


async def format_group(report, tether):
    report.check("parser rejects invalid pages", (problem := self_test_parser()) is None, problem or "")
    server = await Serve.start(tether, "--ping-interval", "1s", "--ping-timeout", "1s",
                               "--origin", "https://ok.example")
    try:
        steps = []
        try:
            expected = await asyncio.wait_for(traffic(server.port, steps), 30)
        except Exception as exc:
            raise HarnessError(f"traffic step '{steps[-1] if steps else '?'}': "
                               f"{type(exc).__name__}: {exc}; tether stderr: {server.stderr[-5:]}") from exc
        status, headers, body = await http_get(server.port)
        report.check("GET /metrics answers 200", status.startswith("HTTP/1.1 200"), status)
        ctype = headers.get("content-type", "")
        report.check("Content-Type is the text format 0.0.4",
                     ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype)
        types, samples, problems = parse_exposition(body)
        report.check("page follows the text format", not problems,
                     "; ".join(problems[:10]) + f"\n--- page ---\n{body}",
                     f"{len(types)} families, {len(samples)} series")

        def expect(case, got, want):
            report.check(case, got == want, f"got {got!r}, want {want!r}")

        expect("opened_total", value(samples, "tether_connections_opened_total"), expected["opened"])
        expect("connections_open", value(samples, "tether_connections_open"), 0)
        expect("closed 1000 remote_close",
               value(samples, "tether_connections_closed_total", cause="remote_close", code="1000"),
               expected["closed_1000"])
        expect("closed 3xxx", value(samples, "tether_connections_closed_total",
                                    cause="remote_close", code="3xxx"), 1)
        expect("closed 4xxx", value(samples, "tether_connections_closed_total",
                                    cause="remote_close", code="4xxx"), 1)
        expect("closed heartbeat_timeout",
               value(samples, "tether_connections_closed_total", cause="heartbeat_timeout",
                     code="1006"), 1)
        expect("heartbeat_timeouts_total", value(samples, "tether_heartbeat_timeouts_total"), 1)
        expect("rejections 403", value(samples, "tether_handshake_rejections_total", status="403"), 1)
        expect("rejections 400", value(samples, "tether_handshake_rejections_total", status="400"), 1)
        expect("received_messages", value(samples, "tether_received_messages_total"),
               expected["received_messages"])
        expect("sent_messages", value(samples, "tether_sent_messages_total"),
               expected["sent_messages"])
        rtt_count = value(samples, "tether_rtt_seconds_count")
        report.check("rtt histogram has the pinged client's samples", rtt_count and rtt_count >= 1,
                     f"count {rtt_count}", f"{rtt_count:g} samples")
        received = value(samples, "tether_received_bytes_total") or 0
        report.check("received bytes cover the messages", received > 3 * 70000, f"{received}")
        expect("send queue empty", value(samples, "tether_send_queue_bytes"), 0)
        expect("build_info", sum(v for (n, _), v in samples.items() if n == "tether_build_info"), 1)

        promtool = shutil.which("promtool")
        if promtool:
            proc = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                                  capture_output=True, timeout=30)
            report.check("promtool check metrics", proc.returncode == 0,
                          (proc.stdout + proc.stderr).strip()[-800:])
        else:
            print("note: promtool not installed; the parser above is the format check", flush=True)
    finally:
        rc = await server.stop()
        report.check("serve exits 0 on SIGTERM", rc == 0, f"exit status {rc}")

    # --metrics-port: served there (with /healthz), not on the main port.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        mport = s.getsockname()[1]
    server = await Serve.start(tether, "--metrics-port", str(mport))
    try:
        status, _, body = await http_get(mport)
        _, _, problems = parse_exposition(body)
        report.check("--metrics-port serves /metrics", status.startswith("HTTP/1.1 200") and not problems,
                     f"{status} {problems[:3]}")
        status, _, _ = await http_get(mport, "/healthz")
        report.check("--metrics-port serves /healthz", status.startswith("HTTP/1.1 200"), status)
        status, _, _ = await http_get(server.port)
        report.check("main port no longer serves /metrics", status.startswith("HTTP/1.1 426"), status)
    finally:
        await server.stop()


# ---------------------------------------------------------------- logs group

def json_lines(lines):
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            out.append({"unparsed": line})
    return out


async def logs_group(report, tether):
    server = await Serve.start(tether, "--log-format", "json", "--json-events",
                               "--origin", "https://ok.example")
    try:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/room?x=1", **CONNECT_OPTS) as ws:
            local_port = ws.transport.get_extra_info("sockname")[1]
            for msg in ("one", "two"):
                await ws.send(msg)
                await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
        try:
            await websockets.connect(f"ws://127.0.0.1:{server.port}/", origin="https://evil.example",
                                     **CONNECT_OPTS)
        except websockets.exceptions.InvalidStatusCode:
            pass
        close_line = await server.wait_for(server.stderr, lambda l: '"event":"close"' in l)
        await server.wait_for(server.stderr, lambda l: '"level":"warn"' in l)
    finally:
        rc = await server.stop()
    logs = json_lines(server.stderr)
    bad = [l for l in logs if "unparsed" in l]
    report.check("every stderr line is JSON", not bad, f"{bad[:3]}")
    report.check("every line has ts, level, event",
                 all(TS_RE.fullmatch(str(l.get("ts", ""))) and l.get("level") in
                     ("debug", "info", "warn", "error") and isinstance(l.get("event"), str)
                     for l in logs if "unparsed" not in l), f"{logs[:5]}")
    peer = f"127.0.0.1:{local_port}"
    opens = [l for l in logs if l.get("event") == "open"]
    closes = [l for l in logs if l.get("event") == "close"]
    report.check("one open line", len(opens) == 1, f"{opens}")
    report.check("one close line", len(closes) == 1 and close_line is not None, f"{closes}")
    if opens:
        o = opens[0]
        report.check("open fields", o.get("level") == "info" and isinstance(o.get("id"), int)
                     and o.get("peer") == peer and o.get("path") == "/room?x=1"
                     and o.get("subprotocol") == "" and isinstance(o.get("handshake_ms"), (int, float))
                     and 0 <= o["handshake_ms"] < 5000, f"{o} (peer should be {peer})")
    if opens and closes:
        c = closes[0]
        report.check("close fields", c.get("level") == "info" and c.get("id") == opens[0].get("id")
                     and c.get("peer") == peer and c.get("code") == 1000 and c.get("reason") == ""
                     and c.get("clean") is True and c.get("cause") == "remote_close"
                     and isinstance(c.get("duration_ms"), (int, float)) and 0 <= c["duration_ms"] < 10000
                     and c.get("messages_in") == 2 and c.get("messages_out") == 2
                     and c.get("bytes_in", 0) > 0 and c.get("bytes_out", 0) > 0, f"{c}")
    warns = [l for l in logs if l.get("level") == "warn"]
    report.check("refused handshake logged at warn",
                 any("403" in str(w.get("message", "")) for w in warns), f"{warns}")
    report.check("serve exits 0", rc == 0, f"exit status {rc}")
    # --json-events on stdout is unchanged by the logs.
    events = json_lines(server.stdout)  # the `listening` line was read by Serve.start
    ev_open = [e for e in events if e.get("event") == "open"]
    ev_close = [e for e in events if e.get("event") == "close"]
    report.check("--json-events unchanged",
                 len(ev_open) == 1 and list(ev_open[0]) == ["event", "id", "peer"]
                 and len(ev_close) == 1
                 and list(ev_close[0]) == ["event", "id", "code", "reason", "clean", "cause"],
                 f"stdout {server.stdout}")

    # Text format (logfmt): the same line shape.
    server = await Serve.start(tether)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/", **CONNECT_OPTS):
            pass
        line = await server.wait_for(server.stderr, lambda l: " info close " in l)
    finally:
        await server.stop()
    ok = line is not None and re.fullmatch(
        r"\S+Z info close id=\d+ peer=127\.0\.0\.1:\d+ code=1000 reason=\"\" clean=true "
        r"cause=remote_close duration_ms=[\d.]+ bytes_in=\d+ bytes_out=\d+ messages_in=0 "
        r"messages_out=0", line)
    report.check("text close line", ok, f"{line!r}; stderr {server.stderr}")

    # --log-level warn: no connection lines.
    server = await Serve.start(tether, "--log-level", "warn")
    try:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/", **CONNECT_OPTS):
            pass
        await asyncio.sleep(0.2)
    finally:
        await server.stop()
    report.check("--log-level warn hides open/close", not server.stderr, f"{server.stderr}")

    # A configuration failure: error level, exit 1.
    with tempfile.TemporaryDirectory() as d:
        proc = await asyncio.create_subprocess_exec(
            tether, "serve", "--port", "0", "--log-format", "json",
            "--tls-cert", f"{d}/missing.pem", "--tls-key", f"{d}/missing.key",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    lines = json_lines(err.decode(errors="replace").splitlines())
    report.check("bad TLS files: error lines, exit 1",
                 proc.returncode == 1 and lines and all(l.get("level") == "error" for l in lines)
                 and any(l.get("event") == "listen_failed" for l in lines),
                 f"exit {proc.returncode}, stderr {lines}")


async def main(args):
    report = Report(f"metrics [{args.group}]")
    try:
        if args.group in ("format", "all"):
            await format_group(report, args.tether)
        if args.group in ("logs", "all"):
            await logs_group(report, args.tether)
    except (HarnessError, OSError, AssertionError, asyncio.TimeoutError,
            websockets.exceptions.WebSocketException) as exc:
        report.fail("harness", f"{type(exc).__name__}: {exc}")
    return report.finish()


def parse_args():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tether", required=True, help="path of the tether binary")
    parser.add_argument("--group", choices=["format", "logs", "all"], default="all")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(arguments), 90)))
    except asyncio.TimeoutError:
        print("FAIL: the whole program exceeded 90 s", flush=True)
        sys.exit(1)
