#!/usr/bin/python3
"""fault.peer_gone: a peer that disappears at the TCP level is reported within 1 s, with the
default heartbeat settings (25 s / 20 s), so only TCP signals (FIN, RST) can be what tells.

Server role (tether serve, raw or child-process clients):
  a_sigkill      client process SIGKILLed after the handshake -> network_error
  b_shutdown_wr  client shutdown(SHUT_WR) without a close frame -> network_error, 1006
  b_close        client close() without a close frame         -> network_error, 1006
  c_reset        client resets (SO_LINGER 0, close)            -> network_error, 1006, "reset"
Client role (tether connect against a raw server):
  d_close        server close() without a close frame -> network_error, 1006, exit 1
  e_reset        server resets -> network_error, 1006, "reset", exit 1
--group reason runs only the client-role FIN case and checks its reason text, which the
liveness brief gives as "server closed TCP without a close frame" (the server role says "peer
closed TCP without a close frame"); kept apart so that a wording difference does not hide
the timing results of the default group.
usage: test_peer_gone.py /path/to/tether [--group tcp|reason]
"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

BOUND = 1.0
SERVER_FIN_REASON = "peer closed TCP without a close frame"
CLIENT_FIN_REASON = "server closed TCP without a close frame"


def open_id(reader, port, timeout=5):
    _, ev = reader.wait_for(lambda o: o.get("event") == "open" and o.get("peer") == f"{common.HOST}:{port}",
                            timeout)
    return ev["id"]


def close_of(reader, conn_id, timeout):
    return reader.wait_for(lambda o: o.get("event") == "close" and o.get("id") == conn_id, timeout)


def check_close(res, name, ev, d, reason_has=None, reason_is=None):
    problems = []
    if ev.get("cause") != "network_error":
        problems.append(f"cause {ev.get('cause')!r}")
    if ev.get("code") != 1006:
        problems.append(f"code {ev.get('code')!r}")
    if ev.get("clean") is not False:
        problems.append(f"clean {ev.get('clean')!r}")
    if reason_has and reason_has.lower() not in str(ev.get("reason", "")).lower():
        problems.append(f"reason {ev.get('reason')!r} does not mention {reason_has!r}")
    if reason_is and ev.get("reason") != reason_is:
        problems.append(f"reason {ev.get('reason')!r}, expected {reason_is!r}")
    if d > BOUND:
        problems.append(f"delay {d:.3f} s > {BOUND} s")
    return res.check(name, not problems, f"delay {d * 1000:.1f} ms, event {ev}" + ("; " + ", ".join(problems) if problems else ""))


def server_role(res, tether, delays):
    proc, reader, port = common.start_server(tether)
    try:
        # (a) a client process killed with SIGKILL after the handshake
        try:
            here = os.path.abspath(os.path.join(os.path.dirname(__file__), "common.py"))
            child = common.spawn([sys.executable, here, "child", common.HOST, str(port), "1"],
                                 stdin=subprocess.DEVNULL)
            creader = common.LineReader(child.stdout, "child-stdout")
            _, info = creader.wait_for(lambda o: "port" in o or "error" in o, 15)
            if "error" in info:
                raise RuntimeError(f"child failed: {info['error']}")
            creader.wait_for(lambda o: o.get("_raw") == "ready", 5)
            cid = open_id(reader, info["port"])
            time.sleep(0.2)  # settled: nothing in flight
            os.kill(child.pid, signal.SIGKILL)
            t_kill = time.monotonic()
            child.wait(5)
            t, ev = close_of(reader, cid, BOUND + 2)
            delays.setdefault("a_sigkill", []).append(t - t_kill)
            check_close(res, "a_sigkill", ev, t - t_kill)
        except Exception as e:  # noqa: BLE001
            res.check("a_sigkill", False, repr(e))

        # (b) FIN without a close frame: shutdown(SHUT_WR), and a plain close()
        for name in ("b_shutdown_wr", "b_close"):
            try:
                sock, _, _ = common.client_handshake(port)
                cid = open_id(reader, sock.getsockname()[1])
                time.sleep(0.2)
                t0 = time.monotonic()
                if name == "b_shutdown_wr":
                    sock.shutdown(socket.SHUT_WR)
                else:
                    sock.close()
                t, ev = close_of(reader, cid, BOUND + 2)
                delays.setdefault(name, []).append(t - t0)
                check_close(res, name, ev, t - t0, reason_is=SERVER_FIN_REASON)
                sock.close()
            except Exception as e:  # noqa: BLE001
                res.check(name, False, repr(e))

        # (c) reset
        try:
            sock, _, _ = common.client_handshake(port)
            cid = open_id(reader, sock.getsockname()[1])
            time.sleep(0.2)
            common.set_reset_on_close(sock)
            t0 = time.monotonic()
            sock.close()
            t, ev = close_of(reader, cid, BOUND + 2)
            delays.setdefault("c_reset", []).append(t - t0)
            check_close(res, "c_reset", ev, t - t0, reason_has="reset")
        except Exception as e:  # noqa: BLE001
            res.check("c_reset", False, repr(e))
    finally:
        common.stop_process(proc)


def client_role(res, tether, delays, names=("d_close", "e_reset"), check_reason=False):
    for name in names:
        server = common.RawServer()
        proc = None
        try:
            proc, reader = common.start_client(tether, server.url)
            conn, _, _ = server.accept(timeout=10)
            reader.wait_for(lambda o: o.get("event") == "open", 5)
            time.sleep(0.2)
            if name == "e_reset":
                common.set_reset_on_close(conn)
            t0 = time.monotonic()
            conn.close()
            t, ev = reader.wait_for(lambda o: o.get("event") == "close", BOUND + 2)
            d = t - t0
            delays.setdefault(name, []).append(d)
            try:
                status = proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                status = "still running 3 s after its close line"
            ok = check_close(res, name, ev, d, reason_has="reset" if name == "e_reset" else None)
            res.check(f"{name}.exit_status", status == 1, f"exit status {status!r}")
            if check_reason and name == "d_close" and ok:
                res.check("d_reason", ev.get("reason") == CLIENT_FIN_REASON,
                          f"reason {ev.get('reason')!r}, expected {CLIENT_FIN_REASON!r}")
        except Exception as e:  # noqa: BLE001
            res.check(name, False, repr(e))
        finally:
            if proc is not None:
                common.stop_process(proc)
            server.close()


def main():
    args = sys.argv[1:]
    group = "tcp"
    if len(args) == 3 and args[1] == "--group" and args[2] in ("tcp", "reason"):
        group = args[2]
        args = args[:1]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    common.start_watchdog(90)
    res = common.Results()
    delays = {}
    try:
        if group == "tcp":
            server_role(res, args[0], delays)
            client_role(res, args[0], delays)
        else:
            client_role(res, args[0], delays, names=("d_close",), check_reason=True)
    except Exception as e:  # noqa: BLE001
        res.check("ran", False, repr(e))
    for name, ds in delays.items():
        res.figure(f"{name}: detection delay min {min(ds) * 1000:.1f} ms, max {max(ds) * 1000:.1f} ms")
    res.finish()


if __name__ == "__main__":
    main()
