#!/usr/bin/python3
"""fault.pong_priority: inbound data counts as life even when the outbound queue is stuck.

tether serve --mode echo --ping-interval 1s --ping-timeout 1s; raw clients with a small
receive buffer that stop reading, so the server's echoes pile up in its send queue.

  alive:     the client sends a burst (200 x 64 KiB binary) and never reads, but keeps sending
             a small text frame every 500 ms (and one ping). The server must not close the
             connection for 6 s. Then the client drains: every burst echo and tick echo must
             arrive, and the pong to our ping must have jumped the queue (arrive before the last
             burst echo; control frames go ahead of queued data under backpressure).
  silent:    same burst, then the client goes completely silent: the server must report
             heartbeat_timeout 2.0-2.3 s after the last byte it received (its queue stuck).
usage: test_pong_priority.py /path/to/tether
"""
import fcntl
import os
import socket
import struct
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HEARTBEAT = ("--ping-interval", "1s", "--ping-timeout", "1s")
BURST_COUNT, BURST_SIZE = 200, 64 * 1024
RCVBUF = 32 * 1024
WINDOW = 6.0
TICK = 0.5
LOW, HIGH = 2.0, 2.3
PING_PAYLOAD = b"fault-probe"


def burst(sock):
    """Sends the burst; returns (t_before, t_after): time.monotonic() just before the last
    frame's send started and just after it finished."""
    payload = bytes((i * 7 + 3) & 0xFF for i in range(BURST_SIZE))
    frame = common.encode_frame(0x2, payload)  # one masked frame, sent BURST_COUNT times
    sock.settimeout(30)
    for _ in range(BURST_COUNT - 1):
        sock.sendall(frame)
    t_before = time.monotonic()
    sock.sendall(frame)
    t_after = time.monotonic()
    sock.settimeout(None)
    return t_before, t_after


def pending_bytes(sock):
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def frames(buf):
    """Parses complete unmasked server frames from bytearray `buf` (consumed in place)."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = struct.unpack("!H", bytes(buf[2:4]))[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, off = struct.unpack("!Q", bytes(buf[2:10]))[0], 10
        if b1 & 0x80:
            raise ValueError("server frame is masked")
        if len(buf) < off + n:
            break
        out.append((b0 & 0x0F, bytes(buf[off:off + n])))
        del buf[:off + n]
    return out


def case_alive(res, reader, port):
    sock, _, rest = common.client_handshake(port, rcvbuf=RCVBUF)
    cid = reader.wait_for(lambda o: o.get("event") == "open" and
                          o.get("peer") == f"{common.HOST}:{sock.getsockname()[1]}", 5)[1]["id"]
    t_burst = burst(sock)[1]
    res.figure(f"alive: burst of {BURST_COUNT} x {BURST_SIZE} bytes sent, then unread")
    ticks = 0
    pinged = False
    closed = None
    t_end = t_burst + WINDOW
    next_tick = time.monotonic()
    while time.monotonic() < t_end:
        now = time.monotonic()
        if now >= next_tick:
            sock.sendall(common.encode_frame(0x1, f"tick {ticks}".encode()))
            ticks += 1
            next_tick += TICK
            if not pinged and now - t_burst >= 1.0:
                sock.sendall(common.encode_frame(0x9, PING_PAYLOAD))
                pinged = True
        ev = reader.poll(max(0.0, min(next_tick, t_end) - time.monotonic()))
        if ev and ev[1].get("event") == "close" and ev[1].get("id") == cid:
            closed = ev
            break
    stuck = pending_bytes(sock)
    res.check("alive.not_declared_dead", closed is None,
              f"no close in {WINDOW:.0f} s after the burst ({ticks} ticks sent)" if closed is None
              else f"closed {closed[0] - t_burst:.3f} s after the burst: {closed[1]}")
    res.check("alive.queue_was_stuck", stuck > 0,
              f"{stuck} unread bytes waiting in the client's receive buffer")
    if closed is not None:
        sock.close()
        return

    # Drain: everything must come back; answer the server's pings so it keeps hearing from us.
    buf = bytearray(rest)
    burst_echoes = tick_echoes = server_pings = 0
    burst_bytes_before_pong = None
    pong_before_last_burst = False
    deadline = time.monotonic() + 15
    sock.settimeout(0.5)
    while time.monotonic() < deadline and (burst_echoes < BURST_COUNT or tick_echoes < ticks
                                           or burst_bytes_before_pong is None):
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        for op, data in frames(buf):
            if op == 0x2:
                burst_echoes += 1
            elif op == 0x1:
                tick_echoes += 1
            elif op == 0x9:
                server_pings += 1
                sock.sendall(common.encode_frame(0xA, data))
            elif op == 0xA and data == PING_PAYLOAD and burst_bytes_before_pong is None:
                burst_bytes_before_pong = burst_echoes * BURST_SIZE
                pong_before_last_burst = burst_echoes < BURST_COUNT
            elif op == 0x8:
                deadline = 0
                break
    res.check("alive.all_echoes_arrived", burst_echoes == BURST_COUNT and tick_echoes == ticks,
              f"{burst_echoes}/{BURST_COUNT} burst echoes, {tick_echoes}/{ticks} tick echoes")
    res.check("alive.pong_jumped_the_queue", pong_before_last_burst,
              f"pong after {burst_bytes_before_pong} of {BURST_COUNT * BURST_SIZE} echoed burst bytes"
              if burst_bytes_before_pong is not None else "no pong for our ping")
    res.figure(f"alive: {server_pings} server pings seen while draining; pong after "
               f"{burst_bytes_before_pong} burst bytes")
    # Then a clean close.
    sock.settimeout(5)
    sock.sendall(common.encode_frame(0x8, struct.pack("!H", 1000)))
    try:
        t, ev = reader.wait_for(lambda o: o.get("event") == "close" and o.get("id") == cid, 5)
        res.check("alive.clean_close", ev.get("cause") == "remote_close" and ev.get("code") == 1000,
                  f"{ev}")
    except common.TestTimeout as e:
        res.check("alive.clean_close", False, repr(e))
    sock.close()


def case_silent(res, reader, port):
    sock, _, _ = common.client_handshake(port, rcvbuf=RCVBUF)
    cid = reader.wait_for(lambda o: o.get("event") == "open" and
                          o.get("peer") == f"{common.HOST}:{sock.getsockname()[1]}", 5)[1]["id"]
    t_first, t_last = burst(sock)
    try:
        t, ev = reader.wait_for(lambda o: o.get("event") == "close" and o.get("id") == cid, HIGH + 3)
    except common.TestTimeout as e:
        res.check("silent.heartbeat_timeout", False, f"no close within {HIGH + 3} s of the burst: {e!r}")
        sock.close()
        return
    d = t - t_last
    problems = []
    if ev.get("cause") != "heartbeat_timeout" or ev.get("code") != 1006 or ev.get("clean") is not False:
        problems.append("not a heartbeat_timeout 1006 unclean close")
    # The server cannot read the last byte before the last send started (lower bound from
    # there); the upper bound, from the end of the send, includes however long the server took
    # to read what was still buffered.
    if d > HIGH:
        problems.append(f"delay {d:.3f} s > {HIGH}")
    if t - t_first < LOW:
        problems.append(f"delay from the start of the last send {t - t_first:.3f} s < {LOW}")
    res.check("silent.heartbeat_timeout", not problems,
              f"delay {d:.3f} s after the last burst byte, event {ev}" + ("; " + ", ".join(problems) if problems else ""))
    res.figure(f"silent (queue stuck): detection delay {d:.3f} s")
    sock.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    common.start_watchdog(90)
    res = common.Results()
    try:
        proc, reader, port = common.start_server(sys.argv[1], *HEARTBEAT)
    except Exception as e:  # noqa: BLE001
        res.check("server_started", False, repr(e))
        res.finish()
    try:
        for name, fn in (("alive", case_alive), ("silent", case_silent)):
            try:
                fn(res, reader, port)
            except Exception as e:  # noqa: BLE001
                res.check(f"{name}.ran", False, repr(e))
    finally:
        common.stop_process(proc)
    res.finish()


if __name__ == "__main__":
    main()
