#!/usr/bin/python3
"""Liveness through a real nginx reverse proxy (Debian's nginx, started here on 127.0.0.1).

  nginx_test.py --tether build/tether keepalive     # heartbeats keep a proxied connection open
  nginx_test.py --tether build/tether probe-nginx   # tether probe finds proxy_read_timeout 3s
  nginx_test.py --tether build/tether probe-direct  # and no limit without a proxy

Every wait is bounded; a watchdog kills everything after 100 s.
"""
import argparse
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

FAILED = []
CHILDREN = []


def check(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        FAILED.append(what)


def cleanup():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def watchdog(seconds):
    def fire():
        print(f"FAIL: watchdog: test still running after {seconds} s", flush=True)
        cleanup()
        os._exit(3)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    CHILDREN.append(p)
    return p


def lines_of(proc):
    """A queue fed with the process's stdout lines by a reader thread (None at EOF)."""
    q = queue.Queue()

    def pump():
        for line in proc.stdout:
            q.put(line.rstrip("\n"))
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def start_tether(tether, *extra):
    # --log-level warn: the per-connection info lines would fill the unread stderr pipe.
    p = spawn([tether, "serve", "--host", "127.0.0.1", "--port", "0", "--mode", "echo",
               "--log-level", "warn", *extra])
    q = lines_of(p)
    try:
        first = q.get(timeout=10)
    except queue.Empty:
        first = None
    if not first or not first.startswith("listening ws://"):
        raise SystemExit(f"FAIL: tether serve did not print its listening line (got {first!r})")
    return int(first.rsplit(":", 1)[1])


def start_nginx(routes, read_timeout):
    """routes: {"/a": upstream_port, ...}. Returns nginx's port."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise SystemExit("FAIL: nginx not found (scripts/deps.sh installs Debian's nginx)")
    d = tempfile.mkdtemp(prefix="tether-nginx-")
    port = free_port()
    locations = "".join(f"""
    location {path} {{
      proxy_pass http://127.0.0.1:{up}/;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout {read_timeout};
      proxy_send_timeout {read_timeout};
    }}""" for path, up in routes.items())
    conf = f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen 127.0.0.1:{port};{locations}
  }}
}}
"""
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(conf)
    spawn([nginx, "-p", d, "-c", f"{d}/nginx.conf"])
    for _ in range(100):  # bounded: 5 s
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return port
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"FAIL: nginx did not start; see {d}/error.log")


def connect(tether, url, ping_interval):
    """tether connect with stdin held open (nothing is sent unless heartbeats send it)."""
    p = subprocess.Popen([tether, "connect", url, "--ping-interval", ping_interval,
                          "--json-events", "--no-reconnect"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    CHILDREN.append(p)
    return p, lines_of(p)


def next_event(q, deadline):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            line = q.get(timeout=left)
        except queue.Empty:
            return None
        if line is None:
            return {"event": "eof"}
        ev = json.loads(line)
        if ev.get("event") != "rtt":
            return ev


def keepalive(tether):
    pinging = start_tether(tether, "--ping-interval", "1s", "--ping-timeout", "5s")
    silent = start_tether(tether, "--ping-interval", "0")
    port = start_nginx({"/pinging/": pinging, "/silent/": silent}, "2s")
    base = f"ws://127.0.0.1:{port}"
    cases = {
        # The server pings every second; the client only answers (pongs).
        "server heartbeat only": connect(tether, base + "/pinging/", "0"),
        # The client pings every second; the server only answers.
        "client heartbeat only": connect(tether, base + "/silent/", "1s"),
        # Nobody pings: nginx must cut it after proxy_read_timeout 2s.
        "no heartbeat": connect(tether, base + "/silent/", "0"),
    }
    opened = {}
    for name, (_, q) in cases.items():
        ev = next_event(q, time.monotonic() + 5)
        check(ev is not None and ev.get("event") == "open", f"{name}: open through nginx ({ev})")
        opened[name] = time.monotonic()

    # The unpinged one is cut by nginx at ~2 s (a FIN from nginx, no close frame).
    _, q = cases["no heartbeat"]
    ev = next_event(q, opened["no heartbeat"] + 6)
    took = time.monotonic() - opened["no heartbeat"]
    check(ev is not None and ev.get("event") == "close" and ev.get("code") == 1006
          and ev.get("cause") == "network_error",
          f"no heartbeat: cut by nginx with 1006/network_error ({ev})")
    check(1.8 <= took <= 3.0, f"no heartbeat: cut after {took:.2f} s (nginx proxy_read_timeout 2s)")

    # The other two stay open for 20 s (10 proxy timeouts).
    end = max(opened["server heartbeat only"], opened["client heartbeat only"]) + 20
    for name in ("server heartbeat only", "client heartbeat only"):
        _, q = cases[name]
        ev = next_event(q, end)
        check(ev is None, f"{name}: still open after 20 s through nginx (event: {ev})")
    for name in ("server heartbeat only", "client heartbeat only"):
        p, q = cases[name]
        p.stdin.close()  # EOF: clean close with 1000 through the proxy
        ev = next_event(q, time.monotonic() + 5)
        check(ev is not None and ev.get("event") == "close" and ev.get("code") == 1000
              and ev.get("clean") is True, f"{name}: clean close at the end ({ev})")
        try:
            rc = p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f"{name}: exit status 0 (got {rc})")


def run_probe(tether, url, max_, expect):
    t0 = time.monotonic()
    p = subprocess.run([tether, "probe", url, "--max", max_, "--json"], capture_output=True,
                       text=True, timeout=90)
    took = time.monotonic() - t0
    check(p.returncode == 0, f"probe exit status 0 (got {p.returncode}; stderr: {p.stderr[-300:]!r})")
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "{}"
    result = json.loads(last)
    expect(result, took)
    # The human form too (CONTRACT: the last line).
    return result


def probe_nginx(tether):
    upstream = start_tether(tether, "--ping-interval", "0")
    port = start_nginx({"/": upstream}, "3s")

    def expect(r, took):
        limit = r.get("idle_limit_ms")
        check(limit is not None and 2500 <= limit <= 3500,
              f"probe through nginx proxy_read_timeout 3s: idle_limit_ms {limit} within 3000 ± 500 "
              f"({took:.1f} s)")
        rec = r.get("recommended_ping_interval_ms")
        check(rec is not None and limit is not None and 0.4 * limit <= rec <= 0.55 * limit,
              f"recommended ping interval {rec} ms is about half the limit")
    run_probe(tether, f"ws://127.0.0.1:{port}/", "60s", expect)
    text = subprocess.run([tether, "probe", f"ws://127.0.0.1:{port}/", "--max", "60s"],
                          capture_output=True, text=True, timeout=90).stdout.strip().splitlines()
    check(bool(text) and text[-1].startswith("idle-limit: 3.") and
          "; recommended ping interval: 1." in text[-1],
          f"human-readable last line ({text[-1] if text else None!r})")


def probe_direct(tether):
    port = start_tether(tether, "--ping-interval", "0")

    def expect(r, took):
        check(r.get("idle_limit_ms") is None and r.get("max_ms") == 10000,
              f"probe without a proxy: no limit up to 10 s ({r}, {took:.1f} s)")
    run_probe(tether, f"ws://127.0.0.1:{port}/", "10s", expect)
    text = subprocess.run([tether, "probe", f"ws://127.0.0.1:{port}/", "--max", "2s"],
                          capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
    check(bool(text) and text[-1] == "idle-limit: none up to 2s",
          f"human-readable last line ({text[-1] if text else None!r})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tether", required=True)
    ap.add_argument("case", choices=["keepalive", "probe-nginx", "probe-direct"])
    a = ap.parse_args()
    watchdog(100)
    try:
        {"keepalive": keepalive, "probe-nginx": probe_nginx, "probe-direct": probe_direct}[a.case](a.tether)
    finally:
        cleanup()
    print(f"{a.case}: {'FAILED: ' + '; '.join(FAILED) if FAILED else 'all passed'}", flush=True)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
