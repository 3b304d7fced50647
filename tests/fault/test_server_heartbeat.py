#!/usr/bin/python3
"""fault.server_heartbeat: `tether serve --ping-interval 1s --ping-timeout 1s` must report
heartbeat_timeout for clients that went silent after the handshake, 2.0 s after the last byte
it received from them (plus the 10 ms timer tick and scheduling).

  frozen:   20 raw clients handshake concurrently in this process, then never read or write.
  sigstop:  a child process makes 20 connections, then is SIGSTOPped (SIGCONT + kill at the end).

The delay is measured from the moment each upgrade request was fully sent (the last byte the
server receives from that client) to the moment the server's close event line is read. The
lower bound is checked from just before the send (the server cannot have the request earlier),
the upper bound and the reported figure from just after it (see common.client_handshake).
usage: test_server_heartbeat.py /path/to/tether
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

N = 20
LOW, HIGH = 2.0, 2.3
HEARTBEAT = ("--ping-interval", "1s", "--ping-timeout", "1s")


def collect_closes(reader, sent, deadline):
    """sent: {client port: (t_before, t_sent)}. Follows open events (peer -> id) and close events (id) until
    every client's close arrived or `deadline`. Returns {port: (t_close, close_event)}."""
    id_of_port, closes, early = {}, {}, {}
    while len(closes) < len(sent):
        ev = reader.poll(deadline - time.monotonic())
        if ev is None:
            break
        t, obj = ev
        if obj.get("event") == "open":
            peer = obj.get("peer", "")
            host, _, p = peer.rpartition(":")
            if host == common.HOST and p.isdigit() and int(p) in sent:
                id_of_port[int(p)] = obj.get("id")
                # a close that was seen before its open cannot happen, but keep it honest
                if obj.get("id") in early:
                    closes[int(p)] = early.pop(obj.get("id"))
        elif obj.get("event") == "close":
            port = next((p for p, i in id_of_port.items() if i == obj.get("id")), None)
            if port is None:
                early[obj.get("id")] = (t, obj)
            else:
                closes[port] = (t, obj)
    return id_of_port, closes


def check_group(res, label, reader, sent):
    deadline = max(t for _, t in sent.values()) + HIGH + 2.0
    id_of_port, closes = collect_closes(reader, sent, deadline)
    res.check(f"{label}.open_events", len(id_of_port) == len(sent),
              f"{len(id_of_port)}/{len(sent)} open events matched by peer address")
    delays, delays_before, bad = [], [], []
    for port, (t_before, t_sent) in sorted(sent.items()):
        if port not in closes:
            bad.append(f"port {port}: no close event within {deadline - t_sent:.1f} s")
            continue
        t_close, ev = closes[port]
        d = t_close - t_sent
        delays.append(d)
        delays_before.append(t_close - t_before)
        problems = []
        if ev.get("cause") != "heartbeat_timeout":
            problems.append(f"cause {ev.get('cause')!r}")
        if ev.get("code") != 1006:
            problems.append(f"code {ev.get('code')!r}")
        if ev.get("clean") is not False:
            problems.append(f"clean {ev.get('clean')!r}")
        if not str(ev.get("reason", "")).startswith("heartbeat timeout after"):
            problems.append(f"reason {ev.get('reason')!r}")
        if d > HIGH:
            problems.append(f"delay {d:.3f} s > {HIGH}")
        if t_close - t_before < LOW:
            problems.append(f"delay from before the send {t_close - t_before:.3f} s < {LOW}")
        if problems:
            bad.append(f"port {port} (id {id_of_port.get(port)}): " + ", ".join(problems) + f"; event {ev}")
    res.check(f"{label}.all_heartbeat_timeout_in_bound", not bad and len(delays) == len(sent),
              f"{len(delays)} closes, delay {common.spread(delays)}" + ("; " + "; ".join(bad[:5]) if bad else ""))
    if delays:
        res.figure(f"{label}: detection delay {common.spread(delays)} over {len(delays)} connections "
                   f"(from before the send: {common.spread(delays_before)})")


def case_frozen(res, tether):
    proc, reader, port = common.start_server(tether, *HEARTBEAT)
    try:
        conns = common.concurrent_handshakes(port, N)
        sent = {lp: times for _, times, lp in conns}
        check_group(res, "frozen", reader, sent)
        for sock, _, _ in conns:
            sock.close()
    finally:
        common.stop_process(proc)


def case_sigstop(res, tether):
    proc, reader, port = common.start_server(tether, *HEARTBEAT)
    child = None
    try:
        here = os.path.abspath(os.path.join(os.path.dirname(__file__), "common.py"))
        child = common.spawn([sys.executable, here, "child", common.HOST, str(port), str(N)],
                             stdin=subprocess.DEVNULL)
        creader = common.LineReader(child.stdout, "child-stdout")
        sent = {}
        deadline = time.monotonic() + 15
        while True:
            t, line = creader.raw_line(deadline - time.monotonic())
            if line is None or line == "ready":
                break
            obj = creader._parse(line)
            if "error" in obj:
                raise RuntimeError(f"child failed: {obj['error']}")
            if "port" in obj:
                sent[obj["port"]] = (obj["t_before"], obj["t_sent"])
        if not res.check("sigstop.child_ready", len(sent) == N, f"{len(sent)}/{N} connections"):
            return
        os.kill(child.pid, signal.SIGSTOP)
        t_stop = time.monotonic()
        last = max(t for _, t in sent.values())
        res.check("sigstop.stopped_promptly", t_stop - last < 1.0,
                  f"SIGSTOP {t_stop - last:.3f} s after the last handshake request")
        check_group(res, "sigstop", reader, sent)
    finally:
        if child is not None and child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait(5)
        common.stop_process(proc)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    tether = sys.argv[1]
    common.start_watchdog(90)
    res = common.Results()
    for name, fn in (("frozen", case_frozen), ("sigstop", case_sigstop)):
        try:
            fn(res, tether)
        except Exception as e:  # noqa: BLE001
            res.check(f"{name}.ran", False, repr(e))
    res.finish()


if __name__ == "__main__":
    main()
