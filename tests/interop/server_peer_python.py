#!/usr/bin/python3
"""Interop matrix B, Python peer: python3-websockets server -> `tether connect URL --echo --json-events`.

The test server drives each tether connect process; the URL path says what to do:
  /echo          send every payload (text and binary), fragmented messages and pings, check
                 each echo, then close with 1000
  /close/CODE    close at once with CODE; tether must echo it and report a clean close
  /violation/N   (raw TCP server, handshake by hand) send the Nth bad frame of cases.json
                 "server_violations"; tether must fail the connection with the right code
The JSON event lines tether prints are checked against what the server sent.

Groups (--group): echo (the /echo and /close/CODE runs), violations, all.
"""

import asyncio
import sys

from common import (BIG_TIMEOUT, CASES, OP_CLOSE, PAYLOAD_SIZES, STEP_TIMEOUT, VALID_CLOSE_CODES,
                    HarnessError, Report, TetherConnect, arg_parser, binary_payload, close_writer,
                    compare_messages, encode_frame, event_message_value, frame_from_spec, parse_close,
                    raw_server_handshake, read_until_close, require_websockets, text_payload, wait_eof)

websockets = require_websockets()


class Scenarios:
    """Futures keyed by URL path: the server side of a run resolves its future with its result."""

    def __init__(self):
        self.pending = {}

    def expect(self, path):
        self.pending[path] = asyncio.get_running_loop().create_future()
        return self.pending[path]

    def claim(self, path):
        fut = self.pending.get(path)
        return fut if fut is not None and not fut.done() else None


async def drive_echo(report, ws):
    """Server side of /echo. Returns the messages sent, in order, to match against tether's JSON."""
    sent = []

    async def roundtrip(message, timeout):
        await ws.send(message)
        got = await asyncio.wait_for(ws.recv(), timeout)
        whole = message if not isinstance(message, list) else \
            ("" if isinstance(message[0], str) else b"").join(message)
        sent.append(whole)
        return compare_messages(whole, got)

    cases = []
    for size in PAYLOAD_SIZES:
        cases.append((f"tether echoes text {size} bytes", text_payload(size)))
        cases.append((f"tether echoes binary {size} bytes", binary_payload(size)))
    # The library sends a list as one fragmented message (one frame per item).
    cases.append(("tether echoes a fragmented text message whole", ["frag-", "é€😀", "", "-end"]))
    cases.append(("tether echoes a fragmented binary message whole",
                  [binary_payload(1000), b"", binary_payload(70000)]))
    for name, message in cases:
        big = not isinstance(message, list) and len(message) > 1_000_000
        timeout = BIG_TIMEOUT if big else STEP_TIMEOUT
        if not await report.run(name, roundtrip(message, timeout), timeout + 1):
            report.fail("remaining echo cases", "not run after the failure above")
            return sent

    async def ping(payload):
        waiter = await ws.ping(payload)  # resolved only by a pong with this payload
        await asyncio.wait_for(waiter, STEP_TIMEOUT)
    for payload in (b"tether\x00\xffping", bytes(range(125)), b""):
        await report.run(f"tether answers a {len(payload)}-byte ping with the same pong", ping(payload))

    await ws.close(1000, "echo done")
    report.check("tether echoes the server's close 1000", ws.close_rcvd is not None and ws.close_rcvd.code == 1000,
                 f"close frame received back: {ws.close_rcvd}")
    return sent


async def drive_close(ws, code):
    await ws.close(code, f"bye {code}")
    if ws.close_rcvd is None:
        return f"tether sent no close frame back after the server's close {code}"
    if ws.close_rcvd.code != code:
        return f"tether answered close {code} with close {ws.close_rcvd.code}"
    return None


async def drive_violation(reader, writer, spec):
    """Raw server side of /violation/N: send the bad frames, read tether's close frame."""
    writer.write(b"".join(frame_from_spec(f, client_side=False) for f in spec["frames"]))
    try:
        await asyncio.wait_for(writer.drain(), STEP_TIMEOUT)
    except (ConnectionResetError, BrokenPipeError):
        pass  # tether may already have given up on us; its close frame is still to read
    close, _, why = await read_until_close(reader, 3.0)
    if close is None:
        return f"{why}; expected close {spec['expect'][0]} from tether"
    problems = []
    code, reason = parse_close(close.payload)
    if code not in spec["expect"]:
        problems.append(f"tether's close frame has code {code} (reason {reason!r}), expected {spec['expect'][0]}")
    if not close.masked:
        problems.append("tether's close frame is not masked")
    try:  # complete the closing handshake the way a server does: echo, then close TCP
        writer.write(encode_frame(OP_CLOSE, close.payload[:2], masked=False))
        await writer.drain()
    except (ConnectionResetError, BrokenPipeError):
        pass
    close_writer(writer)
    return "; ".join(problems) or None


async def run_client(tether, url, fut, timeout):
    """Start tether connect on `url`, wait for the server side (`fut`) and the process exit.

    Returns (TetherConnect, server-side result, exit status or None if it had to be killed).
    """
    client = await TetherConnect.start(tether, url)
    exited = asyncio.ensure_future(client.proc.wait())
    await asyncio.wait([fut, exited], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if not fut.done():
        try:  # the process may exit a moment before the server side has noticed
            await asyncio.wait_for(asyncio.shield(fut), 3.0 if exited.done() else 0.01)
        except asyncio.TimeoutError:
            pass
    if fut.done():
        result = fut.result()
    elif exited.done():
        result = f"tether connect exited with status {client.proc.returncode} before the server side finished"
    else:
        result = f"the server side did not finish within {timeout:g} s"
    rc = await client.wait_exit(STEP_TIMEOUT)
    exited.cancel()
    return client, result, rc


def close_event_problems(client, rc, code, cause, clean, want_rc):
    """Problems with the JSON close event / exit status of a finished tether connect."""
    problems = []
    if client.bad_lines:
        problems.append(f"stdout lines that are not JSON events: {client.bad_lines[:3]}")
    if not client.of_kind("open"):
        problems.append("no 'open' event")
    closes = client.of_kind("close")
    if len(closes) != 1:
        problems.append(f"{len(closes)} 'close' events, expected 1")
    if closes:
        ev = closes[-1]
        if ev.get("code") not in code:
            problems.append(f"close event code {ev.get('code')}, expected {code[0]}")
        if clean is not None and ev.get("clean") is not clean:
            problems.append(f"close event clean={ev.get('clean')}, expected {clean}")
        if ev.get("cause") != cause:
            problems.append(f"close event cause {ev.get('cause')!r}, expected {cause!r}")
    if client.of_kind("reconnecting"):
        problems.append("tether tried to reconnect")
    if rc is None:
        problems.append(f"tether connect did not exit within {STEP_TIMEOUT:g} s of the close (killed)")
    elif want_rc is not None and rc != want_rc:
        problems.append(f"exit status {rc}, expected {want_rc}")
    return problems


async def echo_group(report, tether, base, scenarios):
    fut = scenarios.expect("/echo")
    client, sent, rc = await run_client(tether, base + "/echo", fut, 90)
    if isinstance(sent, str):  # the run never got going
        report.fail("echo run", sent)
        return
    events = client.of_kind("message")
    got = []
    for ev in events:
        try:
            got.append(event_message_value(ev))
        except ValueError as exc:
            got.append(f"<undecodable event: {exc}>")
    mismatch = None
    if len(got) != len(sent):
        mismatch = f"{len(got)} message events for {len(sent)} messages sent"
    else:
        for i, (a, b) in enumerate(zip(sent, got)):
            problem = compare_messages(a, b)
            if problem:
                mismatch = f"message event #{i + 1}: {problem}"
                break
    report.check("JSON message events match the messages sent", mismatch is None, mismatch)
    problems = close_event_problems(client, rc, [1000], "remote_close", True, 0)
    report.check("JSON close event {code:1000, clean:true, cause:remote_close} and exit 0", not problems,
                 "; ".join(problems))

    for code in VALID_CLOSE_CODES:
        fut = scenarios.expect(f"/close/{code}")
        client, result, rc = await run_client(tether, f"{base}/close/{code}", fut, 10)
        problems = ([result] if result else []) + close_event_problems(client, rc, [code], "remote_close", True, 0)
        report.check(f"server close {code}: echoed, JSON close event code {code} clean, exit 0", not problems,
                     "; ".join(problems))


async def violations_group(report, tether, scenarios):
    async def on_raw_connection(reader, writer):
        try:
            path, problems = await raw_server_handshake(reader, writer)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            close_writer(writer)
            return
        fut = scenarios.claim(path)
        if fut is None:  # a second connection (tether reconnecting?) or a stray one
            close_writer(writer)
            return
        if problems:
            fut.set_result("bad client handshake: " + "; ".join(problems))
            close_writer(writer)
            return
        try:
            result = await drive_violation(reader, writer, CASES["server_violations"][int(path.rsplit("/", 1)[1])])
        except Exception as exc:  # noqa: BLE001
            result = f"{type(exc).__name__}: {exc}"
        close_writer(writer)
        if not fut.done():
            fut.set_result(result)

    raw = await asyncio.start_server(on_raw_connection, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    try:
        for i, spec in enumerate(CASES["server_violations"]):
            fut = scenarios.expect(f"/violation/{i}")
            client, result, rc = await run_client(tether, f"ws://127.0.0.1:{port}/violation/{i}", fut, 10)
            # Exit status is not checked: the contract leaves it open after a protocol error.
            problems = ([result] if result else []) + \
                close_event_problems(client, rc, spec["expect"], "protocol_error", None, None)
            report.check(f"server violation: {spec['name']} -> tether closes {spec['expect'][0]}",
                         not problems, "; ".join(problems))
    finally:
        raw.close()


async def main(args):
    report = Report(f"python server -> tether connect [{args.group}]")
    scenarios = Scenarios()

    async def handler(ws):
        fut = scenarios.claim(ws.path)
        if fut is None:
            await ws.close(1008, "unexpected connection")
            return
        try:
            if ws.path == "/echo":
                result = await drive_echo(report, ws)
            else:
                result = await drive_close(ws, int(ws.path.rsplit("/", 1)[1]))
        except Exception as exc:  # noqa: BLE001
            result = f"{type(exc).__name__}: {exc}"
        if not fut.done():
            fut.set_result(result)

    try:
        # No keepalive pings from the test server, no size limit (16 MiB must pass).
        async with websockets.serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None,
                                    close_timeout=STEP_TIMEOUT) as server:
            base = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            if args.group in ("echo", "all"):
                await echo_group(report, args.tether, base, scenarios)
            if args.group in ("violations", "all"):
                await violations_group(report, args.tether, scenarios)
    except HarnessError as exc:
        report.fail("harness", str(exc))
    return report.finish()


if __name__ == "__main__":
    arguments = arg_parser(__doc__.splitlines()[0]).parse_args()
    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(arguments), 100)))
    except asyncio.TimeoutError:
        print("FAIL: the whole program exceeded 100 s", flush=True)
        sys.exit(1)
