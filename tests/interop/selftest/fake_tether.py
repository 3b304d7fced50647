#!/usr/bin/python3
"""A stand-in for build/tether built on python3-websockets, to test the interop harness itself.

Implements just the CLI surface the interop programs use (docs: /work/shared/CONTRACT.md):
  fake_tether.py serve --host H --port P --mode echo
  fake_tether.py connect URL --echo --json-events
It is not tether: where websockets answers a violation differently, the harness reports it.
"""

import asyncio
import base64
import json
import signal
import sys

import websockets


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def serve(host, port):
    async def echo(ws):
        try:
            async for message in ws:
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass  # violations end connections; that is the point of those tests

    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, host, port, max_size=16 * 1024 * 1024, ping_interval=None,
                                compression=None) as server:
        print(f"listening ws://{host}:{server.sockets[0].getsockname()[1]}", flush=True)
        await stop
    # Leaving the context closes every connection with 1001 (going away).
    return 0


async def connect(url):
    try:
        ws = await websockets.connect(url, max_size=16 * 1024 * 1024, ping_interval=None, compression=None)
    except Exception as exc:  # noqa: BLE001
        emit({"event": "close", "code": 1006, "reason": str(exc), "clean": False, "cause": "connect_failed"})
        return 1
    emit({"event": "open", "url": url, "attempt": 1})
    try:
        async for message in ws:
            if isinstance(message, str):
                emit({"event": "message", "type": "text", "data": message})
            else:
                emit({"event": "message", "type": "binary", "base64": base64.b64encode(message).decode()})
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    # A close we sent first (websockets failing the connection) counts as a protocol error.
    ours_first = ws.close_sent is not None and ws.close_rcvd_then_sent is not True and \
        ws.close_sent.code in (1002, 1007, 1009)
    if ours_first:
        emit({"event": "close", "code": ws.close_sent.code, "reason": ws.close_sent.reason,
              "clean": False, "cause": "protocol_error"})
        return 1
    code = ws.close_rcvd.code if ws.close_rcvd else 1006
    clean = ws.close_rcvd is not None and ws.close_sent is not None
    emit({"event": "close", "code": code, "reason": ws.close_rcvd.reason if ws.close_rcvd else "",
          "clean": clean, "cause": "remote_close" if clean else "network_error"})
    return 0 if clean else 1


def main(argv):
    if len(argv) >= 2 and argv[0] == "serve":
        opts = dict(zip(argv[1::2], argv[2::2]))
        return asyncio.run(serve(opts.get("--host", "127.0.0.1"), int(opts.get("--port", "8080"))))
    if len(argv) >= 2 and argv[0] == "connect":
        return asyncio.run(connect(argv[1]))
    print("usage: fake_tether.py serve ... | connect URL --echo --json-events", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
