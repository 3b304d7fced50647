#!/usr/bin/python3
"""Interop matrix A, Python peer: `tether serve --mode echo` <- python3-websockets client.

Groups (--group):
  echo        echo round trips (text and binary, every size in cases.json), fragmented
              messages, ping/pong, and every valid close code echoed by the server
  violations  hand-made bad frames on raw TCP connections, each of which the server must
              answer with the right close code and then drop, while a healthy connection
              keeps working
Both end with SIGTERM (a restart): an open client must get close 1012 with a suggested reconnect
delay ("reconnect in N ms") and tether must exit 0 in 5 s.
"""

import asyncio
import signal
import sys

from common import (BIG_TIMEOUT, CASES, OP_PING, OP_PONG, OP_TEXT, OP_CONT, OP_CLOSE, PAYLOAD_SIZES,
                    STEP_TIMEOUT, VALID_CLOSE_CODES, HarnessError, Report, TetherServe, arg_parser,
                    binary_payload, close_writer, compare_messages, encode_frame, frame_from_spec,
                    parse_close, raw_client_connect, read_frame, read_message, read_until_close,
                    require_websockets, text_payload, wait_eof)

websockets = require_websockets()

# No keepalive pings from the peer (they would interleave with what is being tested);
# no size limit, the 16 MiB messages must pass.
CONNECT_OPTS = dict(max_size=None, ping_interval=None, close_timeout=STEP_TIMEOUT,
                    open_timeout=STEP_TIMEOUT)


# A correct server answers a bad frame at once; keep a broken one from taking minutes.
VIOLATION_TIMEOUT = 3.0


async def connect(url):
    return await asyncio.wait_for(websockets.connect(url, **CONNECT_OPTS), STEP_TIMEOUT)


async def roundtrip(ws, message, timeout=STEP_TIMEOUT):
    """Send `message` (or an iterable of fragments) and check the echo."""
    await ws.send(message)
    got = await asyncio.wait_for(ws.recv(), timeout)
    if isinstance(message, list):  # fragments: the echo must be the one reassembled message
        message = ("" if isinstance(message[0], str) else b"").join(message)
    return compare_messages(message, got)


async def ping(ws, payload):
    # websockets resolves the waiter only for a pong carrying this exact payload.
    waiter = await ws.ping(payload)
    try:
        await asyncio.wait_for(waiter, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        return f"no pong with the {len(payload)}-byte ping payload within {STEP_TIMEOUT:g} s"
    return None


async def close_with(url, code):
    ws = await connect(url)
    await ws.close(code, f"closing with {code}")
    if ws.close_rcvd is None:
        return "the server sent no (valid) close frame back"
    if ws.close_rcvd.code != code:
        return f"the server's close frame has code {ws.close_rcvd.code}, expected {code}"
    return None


async def echo_group(report, url):
    ws = await connect(url)
    # One message per case on the same connection; after a failure, start a fresh connection
    # so a late echo cannot be mistaken for the next case's.
    cases = []
    for size in PAYLOAD_SIZES:
        cases.append((f"echo text {size} bytes", text_payload(size)))
        cases.append((f"echo binary {size} bytes", binary_payload(size)))
    cases.append(("fragmented text message comes back whole", ["frag-", "é€😀", "", "-end"]))
    cases.append(("fragmented binary message comes back whole",
                  [binary_payload(1000), b"", binary_payload(70000)]))
    for name, message in cases:
        big = not isinstance(message, list) and len(message) > 1_000_000
        if not await report.run(name, roundtrip(ws, message, BIG_TIMEOUT if big else STEP_TIMEOUT),
                                BIG_TIMEOUT + 5 if big else STEP_TIMEOUT + 1):
            ws.transport.abort()
            ws = await connect(url)

    for payload in (b"tether\x00\xffping", bytes(range(125)), b""):
        await report.run(f"ping with {len(payload)}-byte payload gets the same pong", ping(ws, payload))
    await report.run("connection closes normally after the echo cases", close_with_ws(ws, 1000))

    for code in VALID_CLOSE_CODES:
        await report.run(f"close code {code} is echoed by the server", close_with(url, code),
                         STEP_TIMEOUT * 2)


async def close_with_ws(ws, code):
    await ws.close(code)
    if ws.close_rcvd is None or ws.close_rcvd.code != code:
        return f"close frame received back: {ws.close_rcvd}"
    return None


async def violation(server, spec):
    """Send the frames of one cases.json violation, then check the server's close frame and TCP close."""
    reader, writer = await raw_client_connect(server.host, server.port)
    try:
        writer.write(b"".join(frame_from_spec(f, client_side=True) for f in spec["frames"]))
        try:
            await asyncio.wait_for(writer.drain(), STEP_TIMEOUT)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server may already have given up on us; its close frame is still to read
        close, _, why = await read_until_close(reader, VIOLATION_TIMEOUT)
        if close is None:
            return f"{why}; expected close {spec['expect'][0]} from the server"
        problems = []
        code, reason = parse_close(close.payload)
        if code not in spec["expect"]:
            problems.append(f"close code {code} (reason {reason!r}), expected {spec['expect'][0]}")
        if close.masked:
            problems.append("the server's close frame is masked")
        if not await wait_eof(reader, 3.0):
            problems.append("server did not close TCP within 3 s of its close frame")
        return "; ".join(problems) or None
    finally:
        close_writer(writer)


async def raw_interleaved_ping(server):
    """Valid edge case: a ping between two fragments, and a code point split across them.

    The server must answer the ping at once and echo the text as one message.
    """
    reader, writer = await raw_client_connect(server.host, server.port)
    try:
        writer.write(encode_frame(OP_TEXT, b"a\xe2", fin=False) + encode_frame(OP_PING, b"mid")
                     + encode_frame(OP_CONT, b"\x82\xacb"))
        opcode, payload, controls = await read_message(reader)
        pongs = [c.payload for c in controls if c.opcode == OP_PONG]
        if not pongs:  # a pong after the echo would still be correct
            frame = await read_frame(reader)
            pongs = [frame.payload] if frame.opcode == OP_PONG else []
        problems = []
        if pongs != [b"mid"]:
            problems.append(f"pongs received {pongs}, expected [b'mid']")
        if (opcode, payload) != (OP_TEXT, "a€b".encode()):
            problems.append(f"echo was opcode {opcode} payload {payload!r}, expected text b'a\\xe2\\x82\\xacb'")
        return "; ".join(problems) or None
    finally:
        close_writer(writer)


async def raw_empty_close(server):
    """Valid edge case: a close frame without a code must be answered by a close with no code or 1000."""
    reader, writer = await raw_client_connect(server.host, server.port)
    try:
        writer.write(encode_frame(OP_CLOSE, b""))
        close, _, why = await read_until_close(reader, VIOLATION_TIMEOUT)
        if close is None:
            return why
        code, _ = parse_close(close.payload)
        if code not in (None, 1000):
            return f"answered with close code {code}, expected an empty close frame or 1000"
        if not await wait_eof(reader, 3.0):
            return "server did not close TCP within 3 s of the close handshake"
        return None
    finally:
        close_writer(writer)


async def violation_group(report, server, bystander):
    for spec in CASES["client_violations"]:
        await report.run(f"violation: {spec['name']} -> close {spec['expect'][0]}",
                         violation(server, spec), STEP_TIMEOUT * 3)
    await report.run("valid: ping between fragments, code point split across fragments",
                     raw_interleaved_ping(server))
    await report.run("valid: empty close frame is answered", raw_empty_close(server))
    await report.run("healthy connection still echoes after the violations",
                     roundtrip(bystander, "still here, é€😀"))
    fresh = await connect(server.url + "/")
    await report.run("a new connection is served after the violations", roundtrip(fresh, b"\x00new"))
    await fresh.close()


async def sigterm(report, server, ws):
    loop = asyncio.get_running_loop()
    start = loop.time()
    server.proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(ws.wait_closed(), 5.0)
    except asyncio.TimeoutError:
        pass
    got = ws.close_rcvd.code if ws.close_rcvd else None
    reason = ws.close_rcvd.reason if ws.close_rcvd else ""
    if got is not None:
        detail = f"received close code {got}, reason {reason!r}"
    elif ws.closed:
        detail = "the connection ended without a close frame from the server"
    else:
        detail = "no close frame, connection still open 5 s after SIGTERM"
    report.check("SIGTERM: the open client receives close 1012 (service restart)", got == 1012, detail)
    report.check("SIGTERM: the reason suggests a reconnect delay", "reconnect in " in reason and
                 reason.endswith("ms"), detail)
    try:
        rc = await asyncio.wait_for(server.proc.wait(), max(0.1, 5.0 - (loop.time() - start)))
    except asyncio.TimeoutError:
        rc = None
    report.check("SIGTERM: tether serve exits 0 within 5 s", rc == 0,
                 "still running 5 s after SIGTERM" if rc is None else f"exit status {rc}")


async def main(args):
    report = Report(f"python client -> tether serve [{args.group}]")
    try:
        server = await TetherServe.start(args.tether)
    except HarnessError as exc:
        report.fail("start tether serve", str(exc))
        return report.finish()
    report.ok(f"tether serve printed 'listening {server.url}'")
    url = server.url + "/"
    try:
        # A connection that lives through everything: the server keeps serving everyone else.
        bystander = await connect(url)
        await report.run("bystander connection echoes", roundtrip(bystander, "hello"))
        if args.group in ("echo", "all"):
            await echo_group(report, url)
        if args.group in ("violations", "all"):
            await violation_group(report, server, bystander)
        await sigterm(report, server, bystander)
    except (HarnessError, OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
        report.fail("harness", f"{type(exc).__name__}: {exc}")
    finally:
        await server.kill()
    return report.finish()


if __name__ == "__main__":
    arguments = arg_parser(__doc__.splitlines()[0]).parse_args()
    try:
        # Hard cap under ctest's TIMEOUT so tether is always reaped by the finally above.
        sys.exit(asyncio.run(asyncio.wait_for(main(arguments), 100)))
    except asyncio.TimeoutError:
        print("FAIL: the whole program exceeded 100 s", flush=True)
        sys.exit(1)
