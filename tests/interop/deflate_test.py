#!/usr/bin/python3
"""permessage-deflate (RFC 7692) interop: tether against python3-websockets 10.4 and raw frames.

Groups (--group):
  serve    `tether serve --deflate[-options ...]` <- python clients. For each tether setting
           (--deflate; none; server_max_window_bits=10; client_max_window_bits=9; everything at
           once with threshold=0; threshold=0,level=1 keeping the context) x each offer python's ClientPerMessageDeflateFactory can make:
           the Sec-WebSocket-Extensions response must follow RFC 7692 §7.1 and what tether's
           options ask for; mixed messages echo on one connection, and the RSV1 bit / compressed
           size of tether's frames (seen by hooking the extension's decode()) show the threshold,
           the window size and context takeover were honoured. Declined offers
           (server_max_window_bits=8, bad parameters) give a 101 without the extension. Raw
           frames: RFC 7692 §7.2.3 examples, a BFINAL=1 message, RSV1 where it is not allowed,
           corrupt data, invalid UTF-8 after inflating, --max-message at the limit, and a 1 GiB
           deflate bomb (one frame, and fragmented) -> close 1009 with tether's peak RSS under
           64 MiB while another connection keeps echoing.
  connect  python websockets servers with ServerPerMessageDeflateFactory variants -> `tether
           connect --deflate[-options ...] --echo --json-events`: tether's offer, the extension
           negotiated, echoes exact, tether's frames honour the window / takeover / threshold;
           a server without compression; a server asking client_max_window_bits=8; raw servers
           whose responses tether must refuse; a deflate bomb sent to tether connect -> 1009.
Every case prints PASS/FAIL; every wait is bounded; exit status 1 on any failure.
"""

import asyncio
import base64
import json
import os
import random
import re
import struct
import sys
import zlib
from dataclasses import dataclass
from functools import lru_cache

from common import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, STEP_TIMEOUT, HarnessError, Report,
                    TetherConnect, TetherServe, accept_key, apply_mask, close_writer, compare_messages,
                    event_message_value, parse_close, parse_http_head, read_frame, read_until_close,
                    require_websockets, wait_eof)

websockets = require_websockets()
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory, PerMessageDeflate, ServerPerMessageDeflateFactory)
from websockets.frames import Opcode  # noqa: E402
from websockets.headers import build_extension, parse_extension  # noqa: E402

CONNECT_OPTS = dict(max_size=None, ping_interval=None, close_timeout=STEP_TIMEOUT, open_timeout=STEP_TIMEOUT)
BIG_TIMEOUT = 15.0
TAIL = b"\x00\x00\xff\xff"
MIB = 1024 * 1024
RSS_LIMIT = 64 * MIB
# Sanitizer builds (TETHER_SANITIZE=1, asan.interop.*) have shadow memory: RSS is printed, not checked.
CHECK_RSS = os.environ.get("TETHER_SANITIZE") != "1"


# ---------------------------------------------------------------- tether's options, RFC 7692 model

@dataclass
class Cfg:
    """What `--deflate-options` sets (tether's DeflateOptions); --deflate alone = both no_context_takeover."""
    snct: bool = False
    cnct: bool = False
    smwb: int = 15
    cmwb: int = 15
    threshold: int = 64


SERVE_CONFIGS = [
    ("--deflate", ["--deflate"], Cfg(snct=True, cnct=True)),
    ("--deflate-options none", ["--deflate-options", "none"], Cfg()),
    ("--deflate-options server_max_window_bits=10", ["--deflate-options", "server_max_window_bits=10"],
     Cfg(smwb=10)),
    ("--deflate-options client_max_window_bits=9", ["--deflate-options", "client_max_window_bits=9"],
     Cfg(cmwb=9)),
    ("--deflate-options everything, threshold=0, level=9",
     ["--deflate-options", "server_no_context_takeover,client_no_context_takeover,server_max_window_bits=9,"
      "client_max_window_bits=11,threshold=0,level=9"],
     Cfg(snct=True, cnct=True, smwb=9, cmwb=11, threshold=0)),
    ("--deflate-options threshold=0,level=1 (context takeover kept)", ["--deflate-options", "threshold=0,level=1"],
     Cfg(threshold=0)),
]

# Offers python's client factory can make (client_max_window_bits=None: not offered, True: bare).
OFFERS = [
    ("no parameters", dict(client_max_window_bits=None)),
    ("client_max_window_bits", dict()),
    ("server_no_context_takeover", dict(server_no_context_takeover=True, client_max_window_bits=None)),
    ("client_no_context_takeover", dict(client_no_context_takeover=True, client_max_window_bits=None)),
    ("both no_context_takeover + client_max_window_bits",
     dict(server_no_context_takeover=True, client_no_context_takeover=True)),
    ("server_max_window_bits=9", dict(server_max_window_bits=9, client_max_window_bits=None)),
    ("server_max_window_bits=10 + client_max_window_bits", dict(server_max_window_bits=10)),
    ("server_max_window_bits=15", dict(server_max_window_bits=15, client_max_window_bits=None)),
    ("client_max_window_bits=9", dict(client_max_window_bits=9)),
    ("client_max_window_bits=12", dict(client_max_window_bits=12)),
    ("client_max_window_bits=15", dict(client_max_window_bits=15)),
    ("server_no_context_takeover + server_max_window_bits=11 + client_max_window_bits=10",
     dict(server_no_context_takeover=True, server_max_window_bits=11, client_max_window_bits=10)),
]


def ext_params(header):
    """[(name, [(param, value)])] of a Sec-WebSocket-Extensions value ("" -> [])."""
    return parse_extension(header) if header else []


def rfc_response_problems(offer, resp):
    """RFC 7692 §7.1 rules a server's response element (list of (name, value)) must follow for `offer`."""
    problems = []
    names = [n for n, _ in resp]
    for n in set(names):
        if names.count(n) > 1:
            problems.append(f"duplicate {n} (§7.1)")
    r = dict(resp)
    known = {"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits",
             "client_max_window_bits"}
    for n, v in resp:
        if n not in known:
            problems.append(f"unknown parameter {n} (§7.1)")
        elif n.endswith("context_takeover") and v is not None:
            problems.append(f"{n} has a value {v!r} (§7.1.1)")
        elif n.endswith("window_bits") and (v is None or not re.fullmatch(r"[89]|1[0-5]", v)):
            problems.append(f"{n}={v!r} is not 8..15 (§7.1.2)")
    if "server_no_context_takeover" in offer and "server_no_context_takeover" not in r:
        problems.append("offered server_no_context_takeover not repeated (§7.1.1.1)")
    if "client_max_window_bits" not in offer and "client_max_window_bits" in r:
        problems.append("client_max_window_bits in the response to an offer without it (§7.1.2.2 MUST NOT)")
    for n in ("server_max_window_bits", "client_max_window_bits"):
        if offer.get(n) and r.get(n) and re.fullmatch(r"\d+", r[n]) and int(r[n]) > int(offer[n]):
            problems.append(f"{n}={r[n]} larger than the offered {offer[n]} (§7.1.2)")
    return problems


def tether_response(offer, cfg):
    """(required params, optional params) of tether serve's response for `offer` under `cfg`."""
    required, optional = {}, {}
    if cfg.snct or "server_no_context_takeover" in offer:
        required["server_no_context_takeover"] = None
    if cfg.cnct:
        required["client_no_context_takeover"] = None
    elif "client_no_context_takeover" in offer:
        optional["client_no_context_takeover"] = None  # RFC: the server may repeat it or not
    if offer.get("server_max_window_bits"):
        required["server_max_window_bits"] = str(min(int(offer["server_max_window_bits"]), cfg.smwb))
    elif cfg.smwb < 15:
        required["server_max_window_bits"] = str(cfg.smwb)
    if "client_max_window_bits" in offer:
        limit = min(cfg.cmwb, int(offer["client_max_window_bits"] or 15))
        if limit < 15:
            required["client_max_window_bits"] = str(limit)
        else:
            optional["client_max_window_bits"] = "15"
    return required, optional


def model_problems(resp, required, optional):
    got = dict(resp)
    problems = []
    for n, v in required.items():
        if n not in got:
            problems.append(f"missing {n}" + (f"={v}" if v else ""))
        elif got[n] != v:
            problems.append(f"{n}={got[n]}, expected {v}")
    for n, v in got.items():
        if n not in required and (n not in optional or optional[n] != v):
            problems.append(f"unexpected {n}" + (f"={v}" if v else ""))
    return problems


def fmt(params):
    return "; ".join(["permessage-deflate"] + [n + (f"={v}" if v is not None else "") for n, v in params])


# ---------------------------------------------------------------- payloads

@lru_cache(maxsize=None)
def json_text(size, seed=0):
    rnd = random.Random(seed)
    items, n = [], 0
    while n < size:
        item = json.dumps({"id": len(items), "user": f"user-{rnd.randrange(50)}", "ok": rnd.random() < 0.5,
                           "text": "é€😀 tether deflate " * rnd.randrange(1, 4), "n": rnd.randrange(10 ** 6)})
        items.append(item)
        n += len(item.encode()) + 1
    text = "[" + ",".join(items) + "]"
    return text


def random_bytes(size, seed):
    return random.Random(seed).randbytes(size)


def periodic_block(size=64 * 1024, period=4096, seed=7):
    """A random `period`-byte block repeated: compressible only with a window wider than the period."""
    block = random_bytes(period, seed)
    return (block * (size // period + 1))[:size]


@lru_cache(maxsize=None)
def mixed_mib(seed=3):
    text = json_text(MIB // 2, seed) + "".join(random.Random(seed).choice("abcdefghij klmnop") for _ in range(MIB // 2))
    return text[:MIB]


@dataclass
class Msg:
    name: str
    data: object          # str, bytes, or a list of fragments
    kind: str = ""        # "tiny": below the threshold; "compressible"; "window"; "takeover1/2"


@lru_cache(maxsize=None)
def message_set(threshold):
    msgs = [
        Msg("2-byte text", "hi", "tiny"),
        Msg("63 bytes of 'a' (text)", "a" * 63, "tiny" if threshold > 63 else "compressible-small"),
        Msg("empty binary", b"", ""),
        Msg("100 KiB JSON text", json_text(100 * 1024, 1), "compressible"),
        Msg("32 KiB random binary (incompressible)", random_bytes(32 * 1024, 2), ""),
        Msg("64 KiB binary: a random 4 KiB block repeated", periodic_block(), "window"),
        Msg("8 KiB JSON text, first time", json_text(8 * 1024, 4), "takeover1"),
        Msg("the same 8 KiB JSON text again", json_text(8 * 1024, 4), "takeover2"),
        Msg("fragmented text (3 frames, compressed as one message)", ["frag-" * 100, "é€😀" * 50, "-end" * 30], ""),
        Msg("1 MiB mixed text (JSON + random letters)", mixed_mib(), "compressible"),
    ]
    # Many similar messages in a row: the context takeover paths (kept windows on both sides).
    msgs += [Msg(f"small JSON message {i} of 20", json_text(300 + 97 * i, 40 + i % 3), "") for i in range(20)]
    return tuple(msgs)


def whole(data):
    if isinstance(data, list):
        return ("" if isinstance(data[0], str) else b"").join(data)
    return data


def raw_len(data):
    d = whole(data)
    return len(d.encode() if isinstance(d, str) else d)


class FrameLog:
    """Hooks a PerMessageDeflate's decode() to see RSV1 and compressed sizes of received data frames."""

    def __init__(self, ext):
        self.frames = []  # (opcode, rsv1, compressed payload length, fin)
        original = ext.decode

        def decode(frame, *, max_size=None):
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                self.frames.append((frame.opcode, frame.rsv1, len(frame.data), frame.fin))
            return original(frame, max_size=max_size)
        ext.decode = decode

    def take_message(self):
        """(rsv1 of the first frame, total payload bytes) of the frames since the last call."""
        frames, self.frames = self.frames, []
        if not frames:
            return None, 0
        return frames[0][1], sum(f[2] for f in frames)


def check_frames(msg, rsv1, size, *, threshold, window_bits, resets):
    """Problems with how a peer's (tether's) frame for `msg` was compressed.

    threshold: tether's; window_bits: the LZ77 window tether may use; resets: tether's compressor
    starts fresh per message (None: unknown). `size` is the payload length on the wire.
    """
    n = raw_len(msg.data)
    if msg.kind == "tiny" and n < threshold and rsv1:
        return f"a {n}-byte message below the threshold {threshold} came compressed (RSV1 set)"
    if msg.kind == "compressible-small" and threshold == 0 and not rsv1:
        return f"a compressible {n}-byte message with threshold=0 came uncompressed"
    if msg.kind == "compressible":
        if not rsv1:
            return f"a compressible {n}-byte message came uncompressed (RSV1 clear)"
        if size > n // 4:
            return f"compressible {n} bytes came as {size} bytes"
    if msg.kind == "window" and rsv1 is not None:
        # Matches 4096 bytes back need a window over 4096 + 262 bytes (zlib): none below 13 bits.
        if window_bits <= 12 and size < n // 2:
            return (f"{n} bytes with a 4 KiB period came as {size} bytes: matches 4096 bytes back, "
                    f"beyond the negotiated {window_bits}-bit window")
        if window_bits == 15 and (not rsv1 or size > n // 4):
            return f"{n} bytes with a 4 KiB period came as {size} bytes (RSV1 {rsv1}) with a 15-bit window"
    return None


# ---------------------------------------------------------------- raw connections

async def raw_connect(host, port, extensions=None, timeout=STEP_TIMEOUT):
    """Handshake by hand, offering `extensions` verbatim. Returns (reader, writer, status, headers)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    ext = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions is not None else ""
    writer.write((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status, headers = parse_http_head(head)
    if status.startswith("HTTP/1.1 101") and headers.get("sec-websocket-accept") != accept_key(key):
        close_writer(writer)
        raise HarnessError(f"bad Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}")
    return reader, writer, status, headers


def frame(opcode, payload=b"", *, fin=True, rsv=0, masked=True):
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


async def raw_read_message(reader, timeout=STEP_TIMEOUT):
    """(opcode, rsv of the first frame, payload joined, [frames]) of the next data message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    frames = []
    while True:
        f = await read_frame(reader, max(0.01, deadline - loop.time()))
        if f.opcode >= 0x8:
            if f.opcode == OP_CLOSE:
                raise HarnessError(f"close frame {parse_close(f.payload)} instead of a message")
            continue
        frames.append(f)
        if f.fin:
            return frames[0].opcode, frames[0].rsv, b"".join(x.payload for x in frames), frames


def inflate(payload, window=15):
    return zlib.decompressobj(-window).decompress(payload + TAIL)


def deflate(data, level=6, window=15, finish=False):
    c = zlib.compressobj(level, zlib.DEFLATED, -window)
    out = c.compress(data) + c.flush(zlib.Z_FINISH if finish else zlib.Z_SYNC_FLUSH)
    if not finish:
        assert out.endswith(TAIL)
        out = out[:-4]
    return out


def bomb_payload(gib=1):
    """`gib` GiB of zeros as one raw DEFLATE stream (~1 MB per GiB), built without the 1 GiB: 1 MiB of
    zeros deflated by a fresh compressor and sync-flushed is self-contained, so copies of it
    concatenated form one valid stream. The final 00 00 ff ff is stripped (§7.2.1)."""
    seg = deflate(bytes(MIB), level=9) + TAIL
    return (seg * (1024 * gib))[:-4]


def vm_hwm(pid):
    """Peak resident set size of `pid` in bytes (VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- serve: negotiation + echo

async def negotiate_raw(server, offer_header):
    reader, writer, status, headers = await raw_connect(server.host, server.port, offer_header)
    close_writer(writer)
    return status, headers.get("sec-websocket-extensions", "")


async def echo_messages(ws, log, msgs, *, threshold, window_bits, resets, takeover_expected):
    """Send each message, check the echo and how tether compressed it. Returns problems."""
    problems = []
    sizes = {}
    for m in msgs:
        try:
            await ws.send(m.data)
            big = raw_len(m.data) > 200000
            got = await asyncio.wait_for(ws.recv(), BIG_TIMEOUT if big else STEP_TIMEOUT)
        except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError) as exc:
            # Name the message whose echo broke the connection (and the frames seen last).
            last = log.frames[-3:] if log else []
            problems.append(f"{m.name}: {type(exc).__name__}: {exc} (last frames from tether: "
                            f"{[(f[1], f[2]) for f in last]} as (RSV1, bytes))")
            return problems
        p = compare_messages(whole(m.data), got)
        if p:
            problems.append(f"{m.name}: {p}")
            continue
        if log is None:
            continue
        rsv1, size = log.take_message()
        sizes[m.kind] = (rsv1, size)
        p = check_frames(m, rsv1, size, threshold=threshold, window_bits=window_bits, resets=resets)
        if p:
            problems.append(f"{m.name}: {p}")
        if m.kind == "takeover2":
            (r1, s1), (r2, s2) = sizes.get("takeover1", (None, 0)), (rsv1, size)
            if r1 and r2:
                if resets and s1 != s2:
                    problems.append(f"the same 8 KiB text compressed to {s1} then {s2} bytes although "
                                    "tether's compressor resets per message (no_context_takeover)")
                # Only a window holding the whole previous message (16 KiB+) makes the repeat cheap.
                if takeover_expected and window_bits >= 14 and not s2 < s1 // 2:
                    problems.append(f"the same 8 KiB text compressed to {s1} then {s2} bytes: tether's "
                                    "context takeover (kept LZ77 window) was not used")
            elif not (r1 and r2):
                problems.append(f"8 KiB JSON text came uncompressed (RSV1 {r1}, {r2})")
    waiter = await ws.ping(b"ping between compressed messages")
    await asyncio.wait_for(waiter, STEP_TIMEOUT)
    return problems


async def offer_case(report, server, cfg_name, cfg, offer_name, kwargs):
    factory = ClientPerMessageDeflateFactory(**kwargs)
    offer = dict(factory.get_request_params())
    header = build_extension([(factory.name, factory.get_request_params())])
    case = f"[{cfg_name}] offer '{header}'"

    # 1. the exact response bytes, from a raw handshake
    status, resp_header = await negotiate_raw(server, header)
    elems = ext_params(resp_header)
    problems = []
    if not status.startswith("HTTP/1.1 101"):
        problems.append(f"status {status!r}")
    if len(elems) != 1 or elems[0][0] != "permessage-deflate":
        problems.append(f"Sec-WebSocket-Extensions {resp_header!r}, expected one permessage-deflate element")
        report.fail(f"{case}: response", "; ".join(problems))
        return
    resp = elems[0][1]
    rfc = rfc_response_problems(offer, resp)
    required, optional = tether_response(offer, cfg)
    model = model_problems(resp, required, optional)
    report.check(f"{case}: response {resp_header!r} follows RFC 7692 §7.1", not rfc and not problems,
                 "; ".join(problems + rfc))
    report.check(f"{case}: response is what the options ask for", not model,
                 f"got {resp_header!r}, expected {fmt(list(required.items()))!r}"
                 + (f" (optional: {list(optional)})" if optional else "") + f": {'; '.join(model)}")

    # 2. python's client accepts it, and messages echo over the negotiated extension
    async def run():
        try:
            ws = await asyncio.wait_for(websockets.connect(server.url + "/", extensions=[factory], compression=None,
                                                           **CONNECT_OPTS), STEP_TIMEOUT)
        except websockets.exceptions.InvalidHandshake as exc:
            return f"python's client rejected the response: {exc}"
        try:
            got_header = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            exts = [e for e in ws.extensions if isinstance(e, PerMessageDeflate)]
            if not exts:
                return f"no PerMessageDeflate in ws.extensions (response {got_header!r})"
            ext = exts[0]
            # remote = tether: its window and reset as python understood the response
            resets = ext.remote_no_context_takeover or False
            problems = await echo_messages(
                ws, FrameLog(ext), message_set(cfg.threshold), threshold=cfg.threshold,
                window_bits=ext.remote_max_window_bits, resets=resets,
                takeover_expected=not ext.remote_no_context_takeover)
            await ws.close(1000)
            if ws.close_rcvd is None or ws.close_rcvd.code != 1000:
                problems.append(f"close 1000 echoed as {ws.close_rcvd}")
            return "; ".join(problems) or None
        finally:
            ws.transport.abort()
    await report.run(f"{case}: python client connects, mixed messages echo, tether's frames honour it", run(),
                     BIG_TIMEOUT * 2)


async def declined_cases(report, server):
    """Offers tether must decline: the 101 comes without the extension (or with a later offer)."""
    cases = [
        ("server_max_window_bits=8 (zlib cannot)", "permessage-deflate; server_max_window_bits=8", None),
        ("server_max_window_bits=16", "permessage-deflate; server_max_window_bits=16", None),
        ("server_max_window_bits without a value", "permessage-deflate; server_max_window_bits", None),
        ("client_max_window_bits=7", "permessage-deflate; client_max_window_bits=7", None),
        ("server_max_window_bits=010 (leading zero)", "permessage-deflate; server_max_window_bits=010", None),
        ("unknown parameter", "permessage-deflate; x_unknown", None),
        ("server_no_context_takeover=1 (a value)", "permessage-deflate; server_no_context_takeover=1", None),
        ("duplicate server_no_context_takeover",
         "permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("only another extension", "x-webkit-deflate-frame", None),
        ("server_max_window_bits=8, then a plain offer: the second is accepted",
         "permessage-deflate; server_max_window_bits=8, permessage-deflate", "permessage-deflate"),
        ("unknown extension first, then permessage-deflate",
         "x-foo; bar=1, permessage-deflate; client_max_window_bits", "permessage-deflate"),
        ('quoted value server_max_window_bits="10" (RFC 6455 §9.1 quoted-string)',
         'permessage-deflate; server_max_window_bits="10"', "permessage-deflate"),
    ]
    for name, offer, accepted in cases:
        async def run(offer=offer, accepted=accepted):
            status, resp = await negotiate_raw(server, offer)
            if not status.startswith("HTTP/1.1 101"):
                return f"status {status!r} (a declined extension must not fail the handshake)"
            elems = ext_params(resp)
            if accepted is None:
                return f"Sec-WebSocket-Extensions {resp!r}, expected none" if resp else None
            if len(elems) != 1 or elems[0][0] != accepted:
                return f"Sec-WebSocket-Extensions {resp!r}, expected one {accepted} element"
            if "=10" in offer and dict(elems[0][1]).get("server_max_window_bits") != "10":
                return f"Sec-WebSocket-Extensions {resp!r}, expected server_max_window_bits=10"
            print(f"note: offer {offer!r} -> {resp!r}", flush=True)
            return None
        verb = "accepted" if accepted else "declined"
        await report.run(f"offer {name}: {verb}, connection opens", run())

    async def python_declined():
        factory = ClientPerMessageDeflateFactory(server_max_window_bits=8, client_max_window_bits=None)
        ws = await asyncio.wait_for(websockets.connect(server.url + "/", extensions=[factory], compression=None,
                                                       **CONNECT_OPTS), STEP_TIMEOUT)
        try:
            if ws.extensions:
                return f"extensions {ws.extensions} negotiated"
            for msg in ("uncompressed after a declined offer", json_text(50000, 9), random_bytes(70000, 9)):
                await ws.send(msg)
                p = compare_messages(msg, await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
                if p:
                    return p
            await ws.close()
            return None
        finally:
            ws.transport.abort()
    await report.run("python client offering server_max_window_bits=8: no extension, messages echo",
                     python_declined())

    async def python_two_offers():
        f8 = ClientPerMessageDeflateFactory(server_max_window_bits=8, client_max_window_bits=None)
        fplain = ClientPerMessageDeflateFactory()
        ws = await asyncio.wait_for(websockets.connect(server.url + "/", extensions=[f8, fplain], compression=None,
                                                       **CONNECT_OPTS), STEP_TIMEOUT)
        try:
            if len(ws.extensions) != 1:
                return f"extensions {ws.extensions} (response {ws.response_headers.get('Sec-WebSocket-Extensions')!r})"
            msg = json_text(30000, 11)
            await ws.send(msg)
            p = compare_messages(msg, await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
            await ws.close()
            return p
        finally:
            ws.transport.abort()
    await report.run("python client offering [server_max_window_bits=8, plain]: the second is negotiated",
                     python_two_offers())


# ---------------------------------------------------------------- serve: raw frames

DEFAULT_OFFER = "permessage-deflate; client_max_window_bits"


async def raw_deflate_conn(server, offer=DEFAULT_OFFER):
    reader, writer, status, headers = await raw_connect(server.host, server.port, offer)
    resp = headers.get("sec-websocket-extensions", "")
    if not status.startswith("HTTP/1.1 101") or not resp.startswith("permessage-deflate"):
        close_writer(writer)
        raise HarnessError(f"raw handshake: {status!r}, extensions {resp!r}")
    return reader, writer, dict(ext_params(resp)[0][1])


async def raw_echo(server, frames_bytes, expect, offer=DEFAULT_OFFER, count=1):
    """Send raw frames; each of the next `count` echoes must be the text/bytes in `expect` (a list)."""
    reader, writer, _ = await raw_deflate_conn(server, offer)
    try:
        writer.write(frames_bytes)
        problems = []
        for want in expect[:count]:
            opcode, rsv, payload, _ = await raw_read_message(reader)
            data = inflate(payload) if rsv & 4 else payload
            if data != want:
                problems.append(f"echo {data[:60]!r} (RSV1 {bool(rsv & 4)}), expected {want[:60]!r}")
            if rsv & 3:
                problems.append(f"echo has RSV2/RSV3 set ({rsv})")
        return "; ".join(problems) or None
    finally:
        close_writer(writer)


async def raw_expect_close(server, frames_bytes, codes, offer=DEFAULT_OFFER, timeout=STEP_TIMEOUT):
    if offer is None:
        reader, writer, status, _ = await raw_connect(server.host, server.port, None)
    else:
        reader, writer, _ = await raw_deflate_conn(server, offer)
    try:
        writer.write(frames_bytes)
        try:
            await asyncio.wait_for(writer.drain(), timeout)
        except (ConnectionResetError, BrokenPipeError):
            pass
        close, skipped, why = await read_until_close(reader, timeout)
        if close is None:
            return f"{why}; expected close {codes[0]}"
        code, reason = parse_close(close.payload)
        if code not in codes:
            return f"close code {code} (reason {reason!r}), expected {' or '.join(map(str, codes))}"
        print(f"note: tether closed with {code} {reason!r}", flush=True)
        if not await wait_eof(reader, 3.0):
            return "no TCP close within 3 s of the close frame"
        return None
    finally:
        close_writer(writer)


async def raw_group(report, server, none_server, takeover0_server=None):
    hello = b"Hello"
    # RFC 7692 §7.2.3.1: "Hello" compressed, in one frame and split across two.
    await report.run("RFC 7692 §7.2.3.1 'Hello' (c1 07 f2 48 cd c9 c9 07 00) echoes 'Hello'",
                     raw_echo(server, frame(OP_TEXT, bytes.fromhex("f248cdc9c90700"), rsv=4), [hello]))
    await report.run("RFC 7692 §7.2.3.1 'Hello' split over two frames (41 03 f2 48 cd / 80 04 c9 c9 07 00)",
                     raw_echo(server, frame(OP_TEXT, bytes.fromhex("f248cd"), fin=False, rsv=4)
                              + frame(OP_CONT, bytes.fromhex("c9c90700")), [hello]))
    # §7.2.3.2: a second 'Hello' referring to the first (needs client context takeover: a server
    # that does not ask for client_no_context_takeover).
    await report.run("RFC 7692 §7.2.3.2 two messages sharing the LZ77 window (f2 00 11 00 00) -> 'Hello' twice",
                     raw_echo(none_server, frame(OP_TEXT, bytes.fromhex("f248cdc9c90700"), rsv=4)
                              + frame(OP_TEXT, bytes.fromhex("f200110000"), rsv=4), [hello, hello], count=2))
    await report.run("RFC 7692 §7.2.3.3 'Hello' in a DEFLATE block with BFINAL=1 (f3 48 cd c9 c9 07 00)",
                     raw_echo(server, frame(OP_TEXT, bytes.fromhex("f348cdc9c90700"), rsv=4), [hello]))
    await report.run("RFC 7692 §7.2.3.4 'Hello' in a stored block (00 05 00 fa ff 48 65 6c 6c 6f 00)",
                     raw_echo(server, frame(OP_TEXT, bytes.fromhex("000500faff48656c6c6f00"), rsv=4), [hello]))
    await report.run("RFC 7692 §7.2.3.5 two DEFLATE blocks in one message -> 'Hello'",
                     raw_echo(server, frame(OP_TEXT, bytes.fromhex("f24805000000ffffcac9c90700"), rsv=4), [hello]))
    await report.run("RFC 7692 §7.2.3.6 empty compressed message (payload 00) echoes empty",
                     raw_echo(server, frame(OP_BINARY, b"\x00", rsv=4), [b""]))
    big = json_text(200000, 21).encode()
    await report.run("200 KB text compressed with Z_FINISH (BFINAL=1 block) echoes exact",
                     raw_echo(server, frame(OP_TEXT, deflate(big, finish=True), rsv=4), [big]))
    await report.run("compressed message in 5 fragments + a ping between them echoes exact",
                     raw_echo(server, _fragments(big, 5, ping_after=2), [big]))
    if takeover0_server is not None:
        await report.run("threshold=0 with context takeover: two empty messages each echo as a valid "
                         "compressed empty message (payload 00, §7.2.3.6) or uncompressed",
                         raw_empty_twice(takeover0_server))
    await report.run("uncompressed message (RSV1 clear) on a deflate connection echoes exact",
                     raw_echo(server, frame(OP_TEXT, b"plain text, RSV1 clear"), [b"plain text, RSV1 clear"]))
    # Violations.
    await report.run("RSV1 without permessage-deflate negotiated -> close 1002",
                     raw_expect_close(server, frame(OP_TEXT, bytes.fromhex("f248cdc9c90700"), rsv=4), [1002],
                                      offer=None))
    await report.run("RSV1 on a continuation frame -> close 1002",
                     raw_expect_close(server, frame(OP_TEXT, bytes.fromhex("f248cd"), fin=False, rsv=4)
                                      + frame(OP_CONT, bytes.fromhex("c9c90700"), rsv=4), [1002]))
    await report.run("RSV1 on a ping -> close 1002",
                     raw_expect_close(server, frame(OP_PING, b"x", rsv=4), [1002]))
    await report.run("RSV2 on a data frame with deflate negotiated -> close 1002",
                     raw_expect_close(server, frame(OP_TEXT, b"x", rsv=2), [1002]))
    await report.run("corrupt DEFLATE data (reserved block type 11) -> close 1007 or 1002",
                     raw_expect_close(server, frame(OP_BINARY, b"\xff\xff\xff\xff", rsv=4), [1007, 1002]))
    await report.run("compressed text inflating to invalid UTF-8 -> close 1007",
                     raw_expect_close(server, frame(OP_TEXT, deflate(b"ok \xff\xfe not utf-8" * 20), rsv=4), [1007]))


async def raw_empty_twice(server):
    """Empty messages through a kept compressor: zlib produces no output for an empty sync flush
    right after another one, and a frame with RSV1 and an empty payload is not a valid compressed
    message (the receiver's appended 00 00 ff ff starts a stored block it cannot finish)."""
    reader, writer, params = await raw_deflate_conn(server, "permessage-deflate")
    try:
        seen = []
        inflater = zlib.decompressobj(-15)  # the peer's view: context kept across messages
        for i, (payload, rsv) in enumerate(((b"", 0), (b"", 0), (b"\x00", 4), (b"after", 0))):
            writer.write(frame(OP_BINARY, payload, rsv=rsv))
            opcode, got_rsv, got, _ = await raw_read_message(reader)
            seen.append(f"{'RSV1' if got_rsv & 4 else 'plain'} {got.hex() or '(empty)'}")
            if got_rsv & 4:
                if got == b"":
                    return (f"echo {i + 1} of {seen} is RSV1 with an EMPTY payload (expected 00 or an uncompressed "
                            f"frame); the peer's inflater then fails on the next message")
                try:
                    data = inflater.decompress(got + TAIL)
                except zlib.error as exc:
                    return f"echoes {seen}: inflating echo {i + 1} with the kept context fails: {exc}"
            else:
                data = got
            want = b"after" if i == 3 else b""
            if data != want:
                return f"echoes {seen}: echo {i + 1} inflates to {data!r}, expected {want!r}"
        return None
    finally:
        close_writer(writer)


def _fragments(data, n, ping_after=None):
    payload = deflate(data)
    step = len(payload) // n + 1
    parts = [payload[i:i + step] for i in range(0, len(payload), step)]
    out = b""
    for i, p in enumerate(parts):
        out += frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(parts) - 1, rsv=4 if i == 0 else 0)
        if i == ping_after:
            out += frame(OP_PING, b"mid")
    return out


async def max_message_cases(report, tether):
    """--max-message 64k: a compressed message inflating to exactly 64 KiB echoes, one byte more gets 1009."""
    try:
        server = await TetherServe.start(tether, ["--deflate", "--max-message", "64k"])
    except HarnessError as exc:
        report.fail("start tether serve --deflate --max-message 64k", str(exc))
        return
    try:
        limit = 64 * 1024
        await report.run("--max-message 64k: a compressed message inflating to 65536 bytes echoes",
                         raw_echo(server, frame(OP_BINARY, deflate(bytes(limit)), rsv=4), [bytes(limit)]))
        await report.run("--max-message 64k: a compressed message inflating to 65537 bytes -> close 1009",
                         raw_expect_close(server, frame(OP_BINARY, deflate(bytes(limit + 1)), rsv=4), [1009]))
        await report.run("--max-message 64k: 65537 bytes over 3 compressed fragments -> close 1009",
                         raw_expect_close(server, _fragments(bytes(limit + 1), 3), [1009]))
    finally:
        await server.kill()


async def bomb_case(report, tether, fragmented):
    """1 GiB of zeros deflated to ~1 MB, sent as one frame (or 16 fragments): close 1009, RSS bounded."""
    label = "fragmented into 16 frames" if fragmented else "in one frame"
    try:
        server = await TetherServe.start(tether, ["--deflate"])
    except HarnessError as exc:
        report.fail("start tether serve --deflate for the bomb", str(exc))
        return
    loop = asyncio.get_running_loop()
    pid = server.proc.pid
    try:
        await _bomb(report, server, loop, pid, fragmented, label)
    except (HarnessError, OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
        report.fail(f"deflate bomb {label}", f"{type(exc).__name__}: {exc}")
    finally:
        await server.kill()


async def _bomb(report, server, loop, pid, fragmented, label):
    if True:
        bystander = await asyncio.wait_for(websockets.connect(server.url + "/", **CONNECT_OPTS), STEP_TIMEOUT)
        await bystander.send("before the bomb")
        await asyncio.wait_for(bystander.recv(), STEP_TIMEOUT)
        base = vm_hwm(pid)
        payload = bomb_payload()
        reader, writer, _ = await raw_deflate_conn(server)
        peak = [base or 0]
        done = asyncio.Event()

        async def watch():
            while not done.is_set():
                v = vm_hwm(pid)
                if v:
                    peak[0] = max(peak[0], v)
                await asyncio.sleep(0.02)

        async def send():
            if fragmented:
                step = len(payload) // 16 + 1
                parts = [payload[i:i + step] for i in range(0, len(payload), step)]
                chunks = [frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == len(parts) - 1, rsv=4 if i == 0 else 0)
                          for i, p in enumerate(parts)]
            else:
                chunks = [frame(OP_BINARY, payload, rsv=4)]
            data = b"".join(chunks)
            try:
                for i in range(0, len(data), 65536):
                    writer.write(data[i:i + 65536])
                    await asyncio.wait_for(writer.drain(), STEP_TIMEOUT)
            except (ConnectionResetError, BrokenPipeError, asyncio.TimeoutError):
                pass  # tether may stop reading once it has given up on the message

        watcher = asyncio.ensure_future(watch())
        sender = asyncio.ensure_future(send())
        start = loop.time()
        close, _, why = await read_until_close(reader, 10.0)
        elapsed = loop.time() - start
        sender.cancel()
        done.set()
        await watcher
        close_writer(writer)
        final = vm_hwm(pid)
        if final:
            peak[0] = max(peak[0], final)
        code = parse_close(close.payload)[0] if close else None
        report.check(f"deflate bomb (1 GiB of zeros as {len(payload)} bytes, {label}) -> close 1009",
                     code == 1009, why or f"close code {code}", f"after {elapsed:.2f} s")
        report.check(f"deflate bomb {label}: tether's peak RSS (VmHWM) stays under 64 MiB",
                     peak[0] and (peak[0] < RSS_LIMIT or not CHECK_RSS),
                     f"VmHWM {peak[0] / MIB:.1f} MiB (before: {(base or 0) / MIB:.1f} MiB)",
                     f"VmHWM {peak[0] / MIB:.1f} MiB, before {(base or 0) / MIB:.1f} MiB")
        await report.run(f"deflate bomb {label}: another connection keeps echoing", _echo_once(bystander, "after"))
        fresh = await asyncio.wait_for(websockets.connect(server.url + "/", **CONNECT_OPTS), STEP_TIMEOUT)
        await report.run(f"deflate bomb {label}: a new deflate connection is served",
                         _echo_once(fresh, json_text(50000, 5)))
        await fresh.close()
        await bystander.close()


async def _echo_once(ws, msg):
    await ws.send(msg)
    return compare_messages(msg, await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))


async def serve_group(report, tether):
    servers = {}
    try:
        for name, args, cfg in SERVE_CONFIGS:
            try:
                servers[name] = (await TetherServe.start(tether, args), cfg)
            except HarnessError as exc:
                report.fail(f"start tether serve {' '.join(args)}", str(exc))
        for name, (server, cfg) in servers.items():
            for offer_name, kwargs in OFFERS:
                await offer_case(report, server, name, cfg, offer_name, kwargs)
        if "--deflate" in servers:
            default = servers["--deflate"][0]
            await declined_cases(report, default)
            none = servers.get("--deflate-options none", (default, None))[0]
            takeover0 = servers.get("--deflate-options threshold=0,level=1 (context takeover kept)", (None, None))[0]
            await raw_group(report, default, none, takeover0)
            # After all that, the server still serves.
            ws = await asyncio.wait_for(websockets.connect(default.url + "/", **CONNECT_OPTS), STEP_TIMEOUT)
            await report.run("tether serve --deflate still serves after the raw cases",
                             _echo_once(ws, json_text(20000, 30)))
            await ws.close()
    finally:
        for server, _ in servers.values():
            await server.kill()
    await max_message_cases(report, tether)
    await bomb_case(report, tether, fragmented=False)
    await bomb_case(report, tether, fragmented=True)


# ---------------------------------------------------------------- connect

CLIENT_CONFIGS = [
    ("--deflate", ["--deflate"], Cfg(snct=True, cnct=True)),
    ("--deflate-options none", ["--deflate-options", "none"], Cfg()),
    ("--deflate-options client_max_window_bits=10", ["--deflate-options", "client_max_window_bits=10"],
     Cfg(cmwb=10)),
    ("--deflate-options server_max_window_bits=11,threshold=0,level=1",
     ["--deflate-options", "server_max_window_bits=11,threshold=0,level=1"], Cfg(smwb=11, threshold=0)),
]

SERVER_FACTORIES = [
    ("python server, no parameters", dict()),
    ("python server, server_no_context_takeover", dict(server_no_context_takeover=True)),
    ("python server, client_no_context_takeover", dict(client_no_context_takeover=True)),
    ("python server, server_max_window_bits=9", dict(server_max_window_bits=9)),
    ("python server, client_max_window_bits=9", dict(client_max_window_bits=9)),
    ("python server, client_max_window_bits=12 + require_client_max_window_bits",
     dict(client_max_window_bits=12, require_client_max_window_bits=True)),
    ("python server, websockets' defaults (both max_window_bits=12, memLevel 5)",
     dict(server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5})),
]


def offer_problems(offer_header, cfg):
    """tether connect's offer must say exactly what its options set."""
    elems = ext_params(offer_header)
    pmd = [e for e in elems if e[0] == "permessage-deflate"]
    if len(pmd) != 1:
        return [f"offer {offer_header!r}: expected one permessage-deflate element"]
    params = pmd[0][1]
    got = dict(params)
    problems = []
    if len(got) != len(params):
        problems.append("duplicate parameters")
    want = {}
    if cfg.snct:
        want["server_no_context_takeover"] = None
    if cfg.cnct:
        want["client_no_context_takeover"] = None
    if cfg.smwb < 15:
        want["server_max_window_bits"] = str(cfg.smwb)
    if cfg.cmwb < 15:
        want["client_max_window_bits"] = str(cfg.cmwb)
    optional = {} if cfg.cmwb < 15 else {"client_max_window_bits": None}
    problems += model_problems(params, want, optional)
    return [f"offer {offer_header!r}: {p}" for p in problems]


class PyDeflateServer:
    """python websockets server with one ServerPerMessageDeflateFactory; every connection sends the
    message set, checks the echoes and tether's frames, closes 1000, and queues its result."""

    def __init__(self, factory_kwargs, compression=True):
        self.factories = [ServerPerMessageDeflateFactory(**factory_kwargs)] if compression else []
        self.results = asyncio.Queue()
        self.cfg = None  # tether connect's options for the current run

    async def start(self):
        self.server = await websockets.serve(self.handler, "127.0.0.1", 0, extensions=self.factories,
                                             compression=None, max_size=None, ping_interval=None,
                                             close_timeout=STEP_TIMEOUT)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handler(self, ws, path=None):
        r = {"offer": ws.request_headers.get("Sec-WebSocket-Extensions", ""),
             "response": ws.response_headers.get("Sec-WebSocket-Extensions", ""),
             "extensions": list(ws.extensions), "problems": [], "sent": []}
        cfg = self.cfg
        try:
            exts = [e for e in ws.extensions if isinstance(e, PerMessageDeflate)]
            log = FrameLog(exts[0]) if exts else None
            if exts:
                ext = exts[0]
                # remote = tether (the client): it resets when the response says so or it offered it.
                resets = ext.remote_no_context_takeover or cfg.cnct
                window = ext.remote_max_window_bits
            else:
                resets, window = None, 15
            msgs = message_set(cfg.threshold)
            r["sent"] = [whole(m.data) for m in msgs]
            r["problems"] = await echo_messages(ws, log, msgs, threshold=cfg.threshold,
                                                window_bits=min(window, cfg.cmwb), resets=resets,
                                                takeover_expected=resets is False)
            await ws.close(1000, "deflate done")
        except Exception as exc:  # noqa: BLE001 - reported as the connection's result
            r["problems"].append(f"{type(exc).__name__}: {exc}")
        await self.results.put(r)

    async def close(self):
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), STEP_TIMEOUT)


async def start_connect(tether, url, extra):
    try:
        proc = await asyncio.create_subprocess_exec(
            tether, "connect", url, "--echo", "--json-events", "--no-reconnect", *extra,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, limit=64 * MIB)
    except OSError as exc:
        raise HarnessError(f"cannot start {tether}: {exc}") from exc
    return TetherConnect(proc)


async def connect_case(tether, server, cfg, args, expect_extension=True):
    server.cfg = cfg
    client = await start_connect(tether, f"ws://127.0.0.1:{server.port}/", args)
    try:
        try:
            r = await asyncio.wait_for(server.results.get(), BIG_TIMEOUT * 2)
        except asyncio.TimeoutError:
            return f"no connection completed within {BIG_TIMEOUT * 2:g} s (events {client.events[-3:]})"
        problems = [f"server side: {p}" for p in r["problems"]]
        problems += offer_problems(r["offer"], cfg)
        if expect_extension and not any(isinstance(e, PerMessageDeflate) for e in r["extensions"]):
            problems.append(f"no permessage-deflate negotiated (offer {r['offer']!r}, response {r['response']!r})")
        if not expect_extension and r["extensions"]:
            problems.append(f"extensions {r['extensions']} negotiated")
        rc = await client.wait_exit(STEP_TIMEOUT)
        messages = [event_message_value(e) for e in client.of_kind("message")]
        if messages != r["sent"]:
            problems.append(f"JSON message events ({len(messages)}) differ from the {len(r['sent'])} messages sent")
        closes = client.of_kind("close")
        want = {"code": 1000, "clean": True, "cause": "remote_close"}
        if len(closes) != 1 or any(closes[0].get(k) != v for k, v in want.items()):
            problems.append(f"close events {closes}, expected one with {want}")
        if rc != 0:
            problems.append(f"exit status {rc}")
        if not problems:
            print(f"note: offer {r['offer']!r} -> response {r['response']!r}", flush=True)
        return "; ".join(problems) or None
    finally:
        await client.kill()


async def connect_refuses(tether, response_ext, args, pattern=None):
    """A raw server answers tether's offer with `response_ext`: tether must fail the connection."""
    offers = []

    async def handle(reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP_TIMEOUT)
            _, headers = parse_http_head(head)
            offers.append(headers.get("sec-websocket-extensions"))
            writer.write((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept_key(headers.get('sec-websocket-key', ''))}\r\n"
                          f"Sec-WebSocket-Extensions: {response_ext}\r\n\r\n").encode())
            await writer.drain()
            # A compressed "Hello" in case tether accepted: it must not get that far.
            writer.write(bytes.fromhex("c107f248cdc9c90700"))
            await wait_eof(reader, STEP_TIMEOUT)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            close_writer(writer)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client = await start_connect(tether, f"ws://127.0.0.1:{port}/", args)
    try:
        rc = await client.wait_exit(STEP_TIMEOUT * 2)
        problems = []
        if client.of_kind("open") or client.of_kind("message"):
            problems.append(f"tether accepted the response (events {client.events[:3]})")
        closes = client.of_kind("close")
        if len(closes) != 1:
            problems.append(f"{len(closes)} close events")
        else:
            print(f"note: offer {offers[:1]} / response {response_ext!r} -> {json.dumps(closes[0])}", flush=True)
            if closes[0].get("cause") != "handshake_failed":
                problems.append(f"cause {closes[0].get('cause')!r}, expected handshake_failed")
            if pattern and not re.search(pattern, closes[0].get("reason", ""), re.I):
                problems.append(f"reason {closes[0].get('reason')!r} does not match /{pattern}/")
        if rc != 1:
            problems.append(f"exit status {rc}, expected 1")
        return "; ".join(problems) or None
    finally:
        await client.kill()
        srv.close()


async def connect_bomb(tether):
    """A raw server negotiates permessage-deflate and sends tether connect the 1 GiB bomb."""
    got = {}
    done = asyncio.Event()

    async def handle(reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP_TIMEOUT)
            _, headers = parse_http_head(head)
            writer.write((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept_key(headers.get('sec-websocket-key', ''))}\r\n"
                          f"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                          f"client_no_context_takeover\r\n\r\n").encode())
            data = frame(OP_BINARY, bomb_payload(), rsv=4, masked=False)

            async def send():
                try:
                    for i in range(0, len(data), 65536):
                        writer.write(data[i:i + 65536])
                        await asyncio.wait_for(writer.drain(), STEP_TIMEOUT)
                except (ConnectionError, asyncio.TimeoutError):
                    pass
            sender = asyncio.ensure_future(send())
            close, _, why = await read_until_close(reader, 10.0)
            sender.cancel()
            got["close"] = (parse_close(close.payload), close.masked) if close else why
        except Exception as exc:  # noqa: BLE001
            got["close"] = f"{type(exc).__name__}: {exc}"
        finally:
            close_writer(writer)
            done.set()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client = await start_connect(tether, f"ws://127.0.0.1:{port}/", ["--deflate"])
    peak = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not done.is_set() and loop.time() < deadline:
            peak = max(peak, vm_hwm(client.proc.pid) or 0)
            await asyncio.sleep(0.02)
        peak = max(peak, vm_hwm(client.proc.pid) or 0)
        rc = await client.wait_exit(STEP_TIMEOUT)
        problems = []
        c = got.get("close")
        if not isinstance(c, tuple) or c[0][0] != 1009:
            problems.append(f"tether's close frame: {c}, expected 1009")
        elif not c[1]:
            problems.append("tether's close frame is not masked")
        closes = client.of_kind("close")
        if len(closes) != 1 or closes[0].get("code") != 1009:
            problems.append(f"close events {closes}, expected code 1009")
        if not peak or (peak >= RSS_LIMIT and CHECK_RSS):
            problems.append(f"tether connect's VmHWM {peak / MIB:.1f} MiB, limit 64 MiB")
        print(f"note: tether connect bomb: close {c}, events {closes}, exit {rc}, VmHWM {peak / MIB:.1f} MiB",
              flush=True)
        return "; ".join(problems) or None
    finally:
        await client.kill()
        srv.close()


async def connect_group(report, tether):
    servers = []
    try:
        for name, kwargs in SERVER_FACTORIES:
            servers.append((name, await PyDeflateServer(kwargs).start()))
        for cfg_name, args, cfg in CLIENT_CONFIGS:
            for name, server in servers:
                await report.run(f"[tether connect {cfg_name}] <- {name}: offer, negotiated, echo, tether's frames",
                                 connect_case(tether, server, cfg, args), BIG_TIMEOUT * 3)
        plain = await PyDeflateServer({}, compression=False).start()
        servers.append(("plain", plain))
        await report.run("[tether connect --deflate] <- python server without compression: no extension, echo",
                         connect_case(tether, plain, Cfg(snct=True, cnct=True), ["--deflate"], expect_extension=False),
                         BIG_TIMEOUT * 3)
    finally:
        for _, s in servers:
            await s.close()

    # A python server asking for client_max_window_bits=8: zlib cannot compress with 256 bytes,
    # so tether must fail the connection rather than break the window promise.
    s8 = await PyDeflateServer(dict(client_max_window_bits=8)).start()
    try:
        async def run8():
            s8.cfg = Cfg(snct=True, cnct=True)
            client = await start_connect(tether, f"ws://127.0.0.1:{s8.port}/", ["--deflate"])
            try:
                rc = await client.wait_exit(STEP_TIMEOUT * 2)
                closes = client.of_kind("close")
                print(f"note: response client_max_window_bits=8 -> events {client.events[:3]}, exit {rc}", flush=True)
                if client.of_kind("message"):
                    return "tether exchanged messages with an 8-bit client window"
                if len(closes) != 1 or closes[0].get("cause") != "handshake_failed" or rc != 1:
                    return f"close events {closes}, exit {rc}; expected handshake_failed and exit 1"
                return None
            finally:
                await client.kill()
        await report.run("[tether connect --deflate] <- python server asking client_max_window_bits=8: "
                         "handshake_failed, exit 1", run8(), STEP_TIMEOUT * 3)
    finally:
        await s8.close()

    refusals = [
        ("response without an offer (tether not run with --deflate)", "permessage-deflate", []),
        ("unknown parameter", "permessage-deflate; x_unknown=1", ["--deflate"]),
        ("client_max_window_bits without a value", "permessage-deflate; client_max_window_bits", ["--deflate"]),
        ("server_max_window_bits=12 when 10 was offered", "permessage-deflate; server_max_window_bits=12",
         ["--deflate-options", "server_max_window_bits=10"]),
        ("server_max_window_bits=16", "permessage-deflate; server_max_window_bits=16", ["--deflate"]),
        ("duplicate server_no_context_takeover",
         "permessage-deflate; server_no_context_takeover; server_no_context_takeover", ["--deflate"]),
        ("two permessage-deflate elements", "permessage-deflate, permessage-deflate", ["--deflate"]),
        ("an extension tether did not offer", "x-webkit-deflate-frame", ["--deflate"]),
    ]
    for name, resp, args in refusals:
        await report.run(f"tether connect {' '.join(args) or '(no --deflate)'} refuses a response with {name}",
                         connect_refuses(tether, resp, args), STEP_TIMEOUT * 3)
    await report.run("tether connect --deflate <- 1 GiB deflate bomb: close 1009, VmHWM under 64 MiB",
                     connect_bomb(tether), 30)


async def main(args):
    report = Report(f"deflate python [{args.group}]")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        if args.group in ("serve", "all"):
            await serve_group(report, args.tether)
        if args.group in ("connect", "all"):
            await connect_group(report, args.tether)
    except (HarnessError, OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
        report.fail("harness", f"{type(exc).__name__}: {exc}")
    print(f"note: {loop.time() - t0:.1f} s in all", flush=True)
    return report.finish()


def parse_args():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tether", required=True, help="path of the tether binary")
    parser.add_argument("--group", choices=["serve", "connect", "all"], default="all")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(arguments), 100)))
    except asyncio.TimeoutError:
        print("FAIL: the whole program exceeded 100 s", flush=True)
        sys.exit(1)
