#!/usr/bin/python3
"""fault.client_heartbeat: 20 `tether connect --ping-interval 1s --ping-timeout 1s` processes
against a raw server that answers the upgrade and then never reads or writes on the connection.
Each client must close with cause heartbeat_timeout, code 1006, 2.0-2.3 s after it opened,
and exit with status 1.

Timing. The client's deadline runs from the moment it took the 101 response (its last received
byte), which lies between the moment the raw server started sending the 101 (t_101) and the moment its
{"event":"open"} line was read here (t_open). Every read of a line lags its write a little,
and with 20 processes starting at once the open line may lag more than the close line, so:
  - the reported delay is open line -> close line (t_close - t_open), checked <= 2.3 s;
  - the lower bound is checked from t_101 (t_close - t_101 >= 2.0 s), which no read lag can
    make too small. Each client connects to its own path (/c<i>) so t_101 is known per client.
usage: test_client_heartbeat.py /path/to/tether
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

N = 20
LOW, HIGH = 2.0, 2.3
HEARTBEAT = ("--ping-interval", "1s", "--ping-timeout", "1s")


def run(res, tether):
    server = common.RawServer()
    accepted, accept_errors = {}, []

    def acceptor():
        out, errs = server.accept_many(N, timeout=20)
        accepted.update(out)
        accept_errors.extend(errs)

    th = threading.Thread(target=acceptor, daemon=True)
    th.start()
    clients = [common.start_client(tether, f"{server.url}c{i}", *HEARTBEAT) for i in range(N)]

    opens, bad = {}, []
    for i, (proc, reader) in enumerate(clients):
        try:
            opens[i] = reader.wait_for(lambda o: o.get("event") in ("open", "close", "error"), 15)
        except common.TestTimeout as e:
            bad.append(f"client {i}: no open line ({e})")
    th.join(20)
    res.check("accept", not accept_errors and len(accepted) == N,
              f"{len(accepted)}/{N} upgrades answered" + (f"; {accept_errors[:3]}" if accept_errors else ""))
    t_101 = {target: t for _, t, target in accepted.values()}
    if t_101:
        res.figure(f"101 responses sent over {max(t_101.values()) - min(t_101.values()):.3f} s")

    delays, delays_101, open_lag, statuses = [], [], [], []
    for i, (proc, reader) in enumerate(clients):
        if i not in opens:
            continue
        t_open, ev = opens[i]
        if ev.get("event") != "open":
            bad.append(f"client {i}: first event {ev}")
            continue
        try:
            # Deadlines run from each open, so a client that never closes costs no extra time.
            t_close, cev = reader.wait_for(lambda o: o.get("event") == "close",
                                           max(0.0, t_open + HIGH + 3.0 - time.monotonic()))
        except common.TestTimeout as e:
            bad.append(f"client {i}: no close line within {HIGH + 3.0} s of open ({e})")
            continue
        d = t_close - t_open
        delays.append(d)
        problems = []
        if cev.get("cause") != "heartbeat_timeout":
            problems.append(f"cause {cev.get('cause')!r}")
        if cev.get("code") != 1006:
            problems.append(f"code {cev.get('code')!r}")
        if cev.get("clean") is not False:
            problems.append(f"clean {cev.get('clean')!r}")
        if not str(cev.get("reason", "")).startswith("heartbeat timeout after"):
            problems.append(f"reason {cev.get('reason')!r}")
        if d > HIGH:
            problems.append(f"delay from open line {d:.3f} s > {HIGH}")
        t101 = t_101.get(f"/c{i}")
        if t101 is None:
            problems.append("no 101 recorded for its path")
        else:
            d101 = t_close - t101
            delays_101.append(d101)
            open_lag.append(t_open - t101)
            if d101 < LOW:
                problems.append(f"delay from the 101 {d101:.3f} s < {LOW}")
        try:
            status = proc.wait(timeout=3)
        except Exception:  # noqa: BLE001
            status = "still running 3 s after its close line"
        statuses.append(status)
        if status != 1:
            problems.append(f"exit status {status!r}")
        if problems:
            bad.append(f"client {i} (pid {proc.pid}): " + ", ".join(problems) + f"; event {cev}")

    res.check("all_heartbeat_timeout_in_bound_exit_1", not bad and len(delays) == N,
              f"{len(delays)}/{N} closes, delay {common.spread(delays)}, exit statuses "
              f"{sorted(set(map(str, statuses)))}" + ("; " + "; ".join(bad[:5]) if bad else ""))
    if delays:
        res.figure(f"client heartbeat: detection delay (open line -> close line) {common.spread(delays)}")
    if delays_101:
        res.figure(f"client heartbeat: delay from the 101 sent -> close line {common.spread(delays_101)}; "
                   f"101 -> open line read {common.spread(open_lag)}")
    for conn, _, _ in accepted.values():
        conn.close()
    server.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    common.start_watchdog(90)
    res = common.Results()
    try:
        run(res, sys.argv[1])
    except Exception as e:  # noqa: BLE001
        res.check("ran", False, repr(e))
    res.finish()


if __name__ == "__main__":
    main()
