#!/usr/bin/python3
"""bench/compare.py: tether against other WebSocket servers and a raw TCP echo ceiling.

    bench/compare.py [--rounds 3] [--duration 4] [--warmup 1] [--build build]
                     [--out docs/bench.md] [--charts docs/bench]
                     [--workloads W1,W2,W3,W4a,W4b] [--servers raw,tether,beast,...]

Run from anywhere after building with -DTETHER_BUILD_BENCH=ON (`make bench` does both). For
each round, each workload and each server (the server order rotates every round), it starts a
fresh server pinned to CPU 0, drives it with build/bench/loadgen pinned to CPU 1, and stops it.
loadgen reports msgs/s, latency percentiles and, over its measured window, the server's
utime+stime (/proc/PID/stat), CPU 0's softirq time and the machine's other load. The runner
also reads /proc/PID/stat itself before and after each run (whole run, handshakes included).

Prints a table of medians per workload; with --out, rewrites the `compare` section of that
page (bench/md_section.py) and, with --charts, draws PNG charts there with gnuplot.

Servers: raw (bench/peers/raw_echo.cpp, the ceiling), tether (`tether serve --mode echo`,
heartbeats on at the default 25 s, resume off), beast, websocketpp, lws (libwebsockets) and
node (Node `ws`). A server whose binary is missing is skipped and named in the report.
"""
import argparse
import csv
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
from md_section import write_section  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1
NODE_PATH = os.path.join(REPO, "tests", "interop", "node_modules")

# name, connections, size, pipeline, headline figure, what it shows
WORKLOADS = [
    ("W1", 100, 16, 16, "msgs", "100 connections, 16-byte binary messages, 16 in flight each"),
    ("W2", 512, 1024, 1, "msgs", "512 connections, 1 KiB messages, 1 in flight each"),
    ("W3", 1, 16, 1, "lat", "1 connection, 16-byte messages, 1 in flight: round-trip latency"),
    ("W4a", 4, 64 * 1024, 1, "mb", "4 connections, 64 KiB messages, 1 in flight each"),
    ("W4b", 4, 1024 * 1024, 1, "mb", "4 connections, 1 MiB messages, 1 in flight each"),
]
W = {w[0]: w for w in WORKLOADS}


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def deb_version(pkg):
    v = sh(f"dpkg-query -W -f='${{Version}}' {pkg} 2>/dev/null")
    return re.sub(r"-[^-]*$", "", v) if v else ""


def servers(build):
    b = lambda *p: os.path.join(build, *p)
    boost = sh("awk '/^#define BOOST_LIB_VERSION/ { gsub(/\"/, \"\", $3); gsub(/_/, \".\", $3); print $3 }' "
               "/usr/include/boost/version.hpp")
    try:
        with open(os.path.join(NODE_PATH, "ws", "package.json")) as f:
            ws_version = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        ws_version = "?"
    return {
        "raw": dict(label="raw TCP echo", cmd=lambda p: [b("bench", "raw_echo"), str(p)], raw=True,
                    exe=b("bench", "raw_echo")),
        "tether": dict(label="tether", exe=b("tether"),
                       cmd=lambda p: [b("tether"), "serve", "--host", "127.0.0.1", "--port", str(p),
                                      "--mode", "echo", "--threads", "1", "--ping-interval", "25s",
                                      "--resume-window", "0", "--max-connections-per-ip", "1024",
                                      "--log-level", "warn"]),
        "beast": dict(label=f"Boost.Beast {boost}", exe=b("bench", "beast_echo"),
                      cmd=lambda p: [b("bench", "beast_echo"), str(p)]),
        "websocketpp": dict(label=f"websocketpp {deb_version('libwebsocketpp-dev')}",
                            exe=b("bench", "websocketpp_echo"),
                            cmd=lambda p: [b("bench", "websocketpp_echo"), str(p)]),
        "lws": dict(label=f"libwebsockets {deb_version('libwebsockets-dev')}", exe=b("bench", "lws_echo"),
                    cmd=lambda p: [b("bench", "lws_echo"), str(p)]),
        "node": dict(label=f"Node ws {ws_version}", exe=shutil.which("node") or "node",
                     cmd=lambda p: ["node", os.path.join(REPO, "bench", "peers", "ws_echo.js"), str(p)],
                     env={"NODE_PATH": NODE_PATH}),
    }


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    """True once something listens on `port` (IPv4 or IPv6 table); no probe connection."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def run_one(args, name, srv, wl, rnd, workdir):
    wname, conns, size, pipeline, _, _ = W[wl]
    port = free_port()
    tag = f"{wname}.{name}.{rnd}"
    err_path = os.path.join(workdir, f"{tag}.server.err")
    env = dict(os.environ, **srv.get("env", {}))
    with open(os.path.join(workdir, f"{tag}.server.out"), "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(["taskset", "-c", str(SERVER_CPU)] + srv["cmd"](port), stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                return dict(error=f"server did not listen on {port}: " + open(err_path).read()[-300:])
            time.sleep(0.02)
        t0 = cpu_ticks(proc.pid)
        lg = ["taskset", "-c", str(CLIENT_CPU), os.path.join(args.build, "bench", "loadgen"),
              "--port", str(port), "--connections", str(conns), "--size", str(size),
              "--pipeline", str(pipeline), "--duration", str(args.duration), "--warmup", str(args.warmup),
              "--server-pid", str(proc.pid), "--server-cpu", str(SERVER_CPU)] + (["--raw"] if srv.get("raw") else [])
        try:
            r = subprocess.run(lg, capture_output=True, text=True, timeout=args.duration + args.warmup + 60)
        except subprocess.TimeoutExpired:
            return dict(error="loadgen timed out")
        if proc.poll() is not None:
            return dict(error=f"server exited during the run ({proc.returncode}): " + open(err_path).read()[-300:])
        t1 = cpu_ticks(proc.pid)
        if r.returncode != 0:
            return dict(error=(r.stderr.strip().splitlines() or ["loadgen failed"])[-1])
        doc = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
    finally:
        stop(proc)
    msgs = doc["messages"]
    secs = doc["duration_s"]
    res = dict(doc)
    res["run_cpu_s"] = (t1 - t0) / os.sysconf("SC_CLK_TCK")
    res["cpu_us_per_msg"] = doc["server_cpu_s"] * 1e6 / msgs if msgs else float("nan")
    res["softirq_us_per_msg"] = doc["server_cpu_softirq_s"] * 1e6 / msgs if msgs else float("nan")
    res["server_use"] = doc["server_cpu_s"] / secs
    res["client_use"] = doc["client_cpu_s"] / secs
    res["other_load"] = max(0.0, doc["machine_busy_s"] - doc["server_cpu_s"] - doc["client_cpu_s"]) / (
        secs * len(os.sched_getaffinity(0)))
    stderr_text = open(err_path).read().strip()
    res["server_stderr"] = stderr_text.splitlines()[0][:200] if stderr_text else ""
    return res


def machine_busy(interval=0.5):
    """Share of all CPUs in user+nice+system time over `interval` seconds (/proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[0] + v[1] + v[2], sum(v[:8])
    b0, t0 = sample()
    time.sleep(interval)
    b1, t1 = sample()
    return (b1 - b0) / max(1, t1 - t0)


def wait_quiet(limit_s, max_busy):
    """Waits up to limit_s for a half second in which the machine is at most max_busy busy."""
    deadline = time.monotonic() + limit_s
    busy = machine_busy()
    while busy > max_busy and time.monotonic() < deadline:
        busy = machine_busy()
    return busy


def med(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and r[key] == r[key]]
    return statistics.median(vals) if vals else float("nan")


def fmt(v, f):
    return "n/a" if v is None or v != v else f.format(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of load before measuring")
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--out", help="markdown page whose `compare` section to rewrite")
    ap.add_argument("--charts", help="directory for the PNG charts (needs gnuplot)")
    ap.add_argument("--workloads", default=",".join(w[0] for w in WORKLOADS))
    ap.add_argument("--servers", default="raw,tether,beast,websocketpp,lws,node")
    ap.add_argument("--settle", type=float, default=0.5, help="pause between runs, seconds")
    ap.add_argument("--max-other", type=float, default=0.10,
                    help="rerun a run when other processes used more than this share of the machine")
    ap.add_argument("--retries", type=int, default=2, help="reruns allowed per run (--max-other)")
    ap.add_argument("--from-csv", help="no runs: rebuild the report from a compare-runs.csv of an earlier run")
    ap.add_argument("--quiet-wait", type=float, default=10,
                    help="before each run, wait up to this many seconds for the machine to be quiet")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the running server is stopped by run_one's `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.build = os.path.abspath(args.build)
    if args.rounds < 1 or args.duration <= 0:
        sys.exit("compare: --rounds must be >= 1 and --duration > 0")
    workloads = args.workloads.split(",")
    for w in workloads:
        if w not in W:
            sys.exit(f"compare: unknown workload {w} (have {', '.join(W)})")
    all_servers = servers(args.build)
    names, skipped = [], {}
    for n in args.servers.split(","):
        if n not in all_servers:
            sys.exit(f"compare: unknown server {n} (have {', '.join(all_servers)})")
        exe = all_servers[n]["exe"]
        if not (os.access(exe, os.X_OK) or shutil.which(exe)):
            skipped[n] = f"{exe} not found (build with -DTETHER_BUILD_BENCH=ON; see bench/CMakeLists.txt)"
            log(f"skipping {n}: {skipped[n]}")
        else:
            names.append(n)
    if "raw" not in names:
        log("WARNING: no raw TCP ceiling: the ratios will be n/a")
    if not os.access(os.path.join(args.build, "bench", "loadgen"), os.X_OK):
        sys.exit(f"compare: {args.build}/bench/loadgen not found: build with -DTETHER_BUILD_BENCH=ON")
    if len(os.sched_getaffinity(0)) < 2 or not shutil.which("taskset"):
        sys.exit("compare: needs two CPUs and taskset (util-linux)")

    rows = []
    if args.from_csv:
        with open(args.from_csv) as f:
            for r in csv.DictReader(f):
                if r.get("error"):
                    rows.append(dict(round=int(r["round"]), workload=r["workload"], server=r["server"], error=r["error"]))
                    continue
                d = {k: (v if k in ("workload", "server") else float(v)) for k, v in r.items() if k != "error" and v != ""}
                d["round"] = int(d["round"])
                d["softirq_us_per_msg"] = d["server_cpu_softirq_s"] * 1e6 / d["messages"]
                d["server_use"] = d["server_cpu_s"] / d["duration_s"]
                d["client_use"] = d["client_cpu_s"] / d["duration_s"]
                d.setdefault("server_stderr", "")
                d.setdefault("attempts", 1)
                rows.append(d)
        args.rounds = max(r["round"] for r in rows)
        workloads = [w for w in W if any(r["workload"] == w for r in rows)]
        names = [n for n in names if any(r["server"] == n for r in rows)]
    workdir = sh("mktemp -d /tmp/tether-compare.XXXXXX") if not args.from_csv else ""
    n_runs = args.rounds * len(workloads) * len(names)
    eta = n_runs * (args.duration + args.warmup + args.settle + 0.7)
    log(f"{args.rounds} rounds x {len(workloads)} workloads x {len(names)} servers = {n_runs} runs, "
        f"~{eta / 60:.0f} min; logs in {workdir}")
    started = time.time()
    for rnd in range(1, 0 if args.from_csv else args.rounds + 1):
        k = (rnd - 1) % len(names)
        order = names[k:] + names[:k]  # rotate: no server always runs first or last
        for wl in workloads:
            for name in order:
                for attempt in range(1 + args.retries):
                    if args.quiet_wait > 0:
                        busy = wait_quiet(args.quiet_wait, args.max_other)
                        if busy > args.max_other:
                            log(f"machine still {busy:.0%} busy after waiting {args.quiet_wait:g} s; running anyway")
                    res = run_one(args, name, all_servers[name], wl, rnd, workdir)
                    if "error" in res or res["other_load"] <= args.max_other or attempt == args.retries:
                        break
                    log(f"round {rnd} {wl} {name}: other processes used {res['other_load']:.0%} of the "
                        f"machine; running it again")
                    time.sleep(2)
                res.update(round=rnd, workload=wl, server=name, attempts=attempt + 1)
                rows.append(res)
                if "error" in res:
                    log(f"round {rnd} {wl} {name}: FAILED: {res['error']}")
                else:
                    log(f"round {rnd} {wl} {name}: {res['msgs_per_sec']:,.0f} msgs/s, {res['mb_per_sec']:,.1f} MB/s, "
                        f"p50 {res['p50_us']:.0f} p99 {res['p99_us']:.0f} us, server {res['cpu_us_per_msg']:.2f} us/msg "
                        f"({100 * res['server_use']:.0f}%), loadgen {100 * res['client_use']:.0f}%, "
                        f"other {100 * res['other_load']:.0f}%")
                time.sleep(args.settle)
    log(f"done in {(time.time() - started) / 60:.1f} min")

    labels = {n: all_servers[n]["label"] for n in all_servers}
    ok = [r for r in rows if "error" not in r]
    M = {}  # (wl, server) -> medians
    for wl in workloads:
        for n in names:
            rs_all = [r for r in ok if r["workload"] == wl and r["server"] == n]
            # Medians over the undisturbed runs (other load <= --max-other); all runs only when
            # none was undisturbed. Every run is in the per-run table either way.
            rs = [r for r in rs_all if r["other_load"] <= args.max_other] or rs_all
            M[wl, n] = {k: med(rs, k) for k in ("msgs_per_sec", "mb_per_sec", "p50_us", "p99_us", "p999_us",
                                              "cpu_us_per_msg", "softirq_us_per_msg", "server_use",
                                              "client_use", "other_load")}
            M[wl, n]["runs"] = len(rs)
            M[wl, n]["disturbed_only"] = bool(rs_all) and not any(r["other_load"] <= args.max_other for r in rs_all)
            M[wl, n]["failed"] = [r["error"] for r in rows if r["workload"] == wl and r["server"] == n and "error" in r]

    def ratio(wl, n, key):
        if "raw" not in names:
            return float("nan")
        a, b = M[wl, n][key], M[wl, "raw"][key]
        return a / b if b and b == b and a == a else float("nan")

    tables = []
    for wl in workloads:
        wname, conns, size, pipeline, head, desc = W[wl]
        tput = "MB/s" if head == "mb" else "msgs/s"
        key = "mb_per_sec" if head == "mb" else "msgs_per_sec"
        lines = [f"**{wl}**: {desc}.\n",
                 f"| server | {tput} | × raw TCP | p50 µs | p99 µs | p99.9 µs | server CPU µs/msg | × raw TCP "
                 "| softirq µs/msg (CPU 0) | server CPU use | loadgen CPU use |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for n in names:
            m = M[wl, n]
            if m["runs"] == 0:
                lines.append(f"| {labels[n]} | failed: {m['failed'][0] if m['failed'] else '?'} |" + " |" * 9)
                continue
            tf = "{:,.1f}" if head == "mb" else "{:,.0f}"
            note = ""
            if m["runs"] < args.rounds:
                note = (f" ({m['runs']} run{'s' if m['runs'] != 1 else ''}"
                        + (", all disturbed" if m["disturbed_only"] else "") + ")")
            lines.append("| " + " | ".join([
                (labels[n] if n != "tether" else f"**{labels[n]}**") + note, fmt(m[key], tf), fmt(ratio(wl, n, key), "{:.2f}"),
                fmt(m["p50_us"], "{:,.1f}"), fmt(m["p99_us"], "{:,.1f}"), fmt(m["p999_us"], "{:,.1f}"),
                fmt(m["cpu_us_per_msg"], "{:,.3f}"), fmt(ratio(wl, n, "cpu_us_per_msg"), "{:.2f}"),
                fmt(m["softirq_us_per_msg"], "{:,.3f}"), fmt(m["server_use"], "{:.0%}"), fmt(m["client_use"], "{:.0%}"),
            ]) + " |")
        tables.append("\n".join(lines))
    summary = "\n\n".join(tables)

    # the targets
    targets = []
    if "tether" in names and "raw" in names:
        for wl, tput_min, extra_key, extra_max, extra_name in (("W1", 0.92, "cpu_us_per_msg", 1.10, "server CPU/msg"),
                                                              ("W2", 0.98, "p99_us", 1.05, "p99")):
            if wl not in workloads:
                continue
            r1, r2 = ratio(wl, "tether", "msgs_per_sec"), ratio(wl, "tether", extra_key)
            verdict = lambda ok_: "met" if ok_ else "**not met**"
            targets.append(f"| {wl} | msgs/s ≥ {tput_min:.2f}× raw TCP | {fmt(r1, '{:.2f}')}× | {verdict(r1 >= tput_min)} |")
            targets.append(f"| {wl} | {extra_name} ≤ {extra_max:.2f}× raw TCP | {fmt(r2, '{:.2f}')}× | {verdict(r2 <= extra_max)} |")
    target_table = ("| workload | target | tether (median) | |\n| --- | --- | ---: | --- |\n" + "\n".join(targets)) if targets else ""

    per_run = ["| round | workload | server | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/msg | "
               "server CPU use | loadgen CPU use | other load | server stderr |",
               "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if "error" in r:
            per_run.append(f"| {r['round']} | {r['workload']} | {labels[r['server']]} | failed: {r['error'][:120]} |" + " |" * 9)
            continue
        per_run.append("| " + " | ".join([str(r["round"]), r["workload"], labels[r["server"]],
                                          f"{r['msgs_per_sec']:,.0f}", f"{r['mb_per_sec']:,.1f}",
                                          f"{r['p50_us']:,.1f}", f"{r['p99_us']:,.1f}", f"{r['p999_us']:,.1f}",
                                          f"{r['cpu_us_per_msg']:.3f}", f"{r['server_use']:.0%}",
                                          f"{r['client_use']:.0%}", f"{r['other_load']:.0%}",
                                          r["server_stderr"].replace("|", "/")[:80]]) + " |")
    per_run_table = "\n".join(per_run)
    print(summary)
    if target_table:
        print("\n" + target_table)

    # raw data next to the charts
    if args.charts:
        os.makedirs(args.charts, exist_ok=True)
        keys = ["round", "workload", "server", "msgs_per_sec", "mb_per_sec", "messages", "duration_s", "p50_us",
                "p99_us", "p999_us", "server_cpu_s", "run_cpu_s", "cpu_us_per_msg", "server_cpu_softirq_s",
                "client_cpu_s", "machine_busy_s", "other_load", "attempts", "server_stderr", "error"]
        with open(os.path.join(args.charts, "compare-runs.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)
        charts = draw_charts(args.charts, workloads, names, labels, M, ratio)
    else:
        charts = []

    if not args.out:
        return 1 if len(ok) < len(rows) else 0

    # machine and versions
    model = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
    hyper = " (virtual machine: the hypervisor flag is set)" if "hypervisor" in open("/proc/cpuinfo").read() else ""
    lscpu_cores = sh("lscpu | sed -n 's/^Core(s) per socket: *//p'")
    lscpu_threads = sh("lscpu | sed -n 's/^Thread(s) per core: *//p'")
    commit = sh(f"git -C {REPO} rev-parse --short HEAD") or "?"
    dirty = sh(f"git -C {REPO} status --porcelain -- src include tools CMakeLists.txt cmake")
    if dirty:
        files = ", ".join(f"`{l.split(maxsplit=1)[-1]}`" for l in dirty.splitlines()[:12])
        commit += (f" plus uncommitted changes in the library/CLI sources at build time ({files}): the "
                   "tether measured is the working tree, not exactly this commit")
    build_type = sh(f"sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' {args.build}/CMakeCache.txt")
    rel_build = os.path.relpath(args.build, REPO)
    pagedir = os.path.dirname(os.path.abspath(args.out))
    img = "\n\n".join(f"![{alt}]({os.path.relpath(p, pagedir)})" for alt, p in charts)
    def rel(c):
        return os.path.relpath(c, REPO) if c.startswith(REPO + "/") else c
    cmds = "\n".join(
        ("NODE_PATH=tests/interop/node_modules " if n == "node" else "") + f"taskset -c {SERVER_CPU} "
        + " ".join(rel(c) for c in all_servers[n]["cmd"]("PORT")) + f"    # {labels[n]}" for n in names)
    lg_cmds = "\n".join(
        f"taskset -c {CLIENT_CPU} {rel_build}/bench/loadgen --port PORT --connections {W[wl][1]} --size {W[wl][2]} "
        f"--pipeline {W[wl][3]} --duration {args.duration:g} --warmup {args.warmup:g} --server-pid PID "
        f"--server-cpu {SERVER_CPU}    # {wl}; add --raw against raw_echo" for wl in workloads)
    flags = f"--rounds {args.rounds} --duration {args.duration:g} --warmup {args.warmup:g}"
    if args.build != os.path.join(REPO, "build"):
        flags += f" --build {rel_build}"
    if args.retries != 2:
        flags += f" --retries {args.retries}"
    if args.quiet_wait != 10:
        flags += f" --quiet-wait {args.quiet_wait:g}"
    if set(workloads) != set(W):
        flags += f" --workloads {','.join(workloads)}"
    if names + list(skipped) != "raw,tether,beast,websocketpp,lws,node".split(","):
        flags += f" --servers {','.join(names)}"
    skipped_note = "".join(f"\n- **{n}** was not run: {why}." for n, why in skipped.items())
    failed_runs = [r for r in rows if "error" in r]
    failed_note = ("\n\nFailed runs:\n\n" + "\n".join(f"- round {r['round']}, {r['workload']}, {labels[r['server']]}: "
                                                    f"`{r['error'][:200]}`" for r in failed_runs)) if failed_runs else ""
    others = [r["other_load"] for r in ok]
    noisy = [r for r in ok if r["other_load"] > args.max_other]
    retried = sum(1 for r in ok if r.get("attempts", 1) > 1)
    noise_note = (f"Other processes used {statistics.median(others):.0%} of the machine in the median run "
                  f"(max {max(others):.0%})" if others else "")
    if retried:
        noise_note += (f"; {retried} run(s) were repeated because other processes used more than "
                       f"{args.max_other:.0%} (up to {args.retries} times; the last attempt counts)")
    if noisy:
        noise_note += (f"; {len(noisy)} of {len(ok)} runs still saw more than {args.max_other:.0%}. The medians leave "
                       "those disturbed runs out (a row based on fewer runs says so); every run is in the "
                       "per-run table, column \"other load\"")
    section = f"""## Peer comparison: tether against five servers and raw TCP

Written by `bench/compare.py` (`make bench`); {args.rounds} rounds, {args.duration:g} s measured per run after
{args.warmup:g} s of warm-up, medians over rounds. Server on CPU {SERVER_CPU}, load generator on CPU {CLIENT_CPU}.
{noise_note}.

Every server is single-threaded and echoes each message back as one frame; the raw TCP echo
(`bench/peers/raw_echo.cpp`, epoll, one thread) returns the same bytes with no WebSocket framing,
and is the ceiling the ratios ("× raw TCP") compare against. For throughput above 1 would beat
the ceiling; for CPU µs/msg, 1.10 means 10% more CPU per message than raw TCP.

{summary}

**Against the issue's targets** (tether's medians over raw TCP's):

{target_table}

{img}

**uWebSockets** is not measured here: it is neither in Debian 12 nor on npm (its Node binding
`uWebSockets.js` is published only as GitHub release binaries), so `make bench` cannot build it
from the registries this project uses. Figures for it quoted elsewhere are reported, not
measured here.{skipped_note}

### How to read it

- **msgs/s and MB/s** count echoes received by the load generator over the measured window
  (MB = 10^6 bytes of payload, one direction). **Latency** is the round trip from queueing a
  message to receiving its echo, queueing included (closed loop, so p50 ≈ in-flight / msgs/s;
  no coordinated-omission correction).
- **Server CPU µs/msg** is the server process's utime+stime (all threads, `/proc/PID/stat`) over
  the measured window divided by the messages echoed. It ranks servers even when the load
  generator, not the server, set the pace. It leaves out the kernel's loopback receive work
  done in softirq on the server's CPU, charged to no process: that is the separate softirq
  column (CPU 0's softirq time per message; it follows the number of TCP segments the server sends).
- **Server / loadgen CPU use** is each process's CPU time over the window. A server near 100%
  was the bottleneck; well below means the load generator (near 100%) or the round trip set the
  pace, and msgs/s then says more about the client than the server. The raw TCP server is the
  cheapest possible, so its runs are usually load-generator-bound: a WebSocket server at 0.9×
  of its msgs/s may be closer to the ceiling in CPU terms than the throughput ratio shows.
- **W3** (one message in flight) measures latency, not capacity: both processes sleep between
  messages, so CPU use is low and CPU µs/msg includes wake-up costs.

### Method

- **One load generator for all.** `bench/loadgen.cpp` (one thread, level-triggered epoll,
  one `recv` per readable socket per wakeup, one `writev` of all replies due per socket)
  drives every server, WebSocket or raw. In WebSocket mode it sends masked binary frames
  (RFC 6455 5.3; the frame is masked once per run, so client cost per message is the same
  for every server) and parses the server's frames without copying payloads; `--raw` sends
  the same payload bytes unframed and counts a message per `size` bytes echoed. `tether bench`
  is not used here because the raw ceiling needs a raw client, and a ratio is only fair when
  both of its sides are driven by the same client loop.
- **Fresh server per run, interleaved, rotated.** Each round runs every workload against every
  server, each on a freshly started process, {args.settle:g} s apart; the server order rotates by one
  every round. Connections are opened (and upgraded) first, then {args.warmup:g} s of load, then {args.duration:g} s
  measured.
- **Same settings everywhere.** Plain `ws://` over loopback, no permessage-deflate, TCP_NODELAY,
  one thread, 16 MiB message limit where there is one. tether runs as `tether serve --mode echo`
  with its defaults except `--resume-window 0` (resume off) and `--max-connections-per-ip 1024`
  (its default of 256 per address would refuse W2's 512 loopback connections) and
  `--log-level warn` (like the peers, it then prints only problems; at the default level it logs
  each connection's open and close, outside the measured window); heartbeats stay on at the
  default 25 s. Each peer's source names its settings at the top.
- **Other load** is the machine's user+system time during the window minus the server's and the
  load generator's, as a share of all CPUs (from `/proc/stat`); per run below. A run above
  {args.max_other:.0%} is repeated (up to {args.retries} times) and the last attempt counts; before each
  run the script waits up to {args.quiet_wait:g} s for half a second with at most {args.max_other:.0%} busy.

### Machine and build

- CPU: {model}{hyper}; {len(os.sched_getaffinity(0))} CPUs usable ({lscpu_cores or '?'} core(s) per socket, {lscpu_threads or '?'} thread(s) per core)
- Kernel: {platform.system()} {platform.release()}; clocksource {sh('cat /sys/devices/system/clocksource/clocksource0/current_clocksource') or '?'}
- Compiler: {sh('g++ --version | head -n1')}; tether {build_type or '?'} (-O3 -DNDEBUG), C++ peers and loadgen -O3 -DNDEBUG
- Node: {sh('node --version')}; libraries: {', '.join(labels[n] for n in names if n not in ('raw', 'tether'))}
- tether commit: {commit}
- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}

### Reproduce

```sh
make bench     # scripts/deps.sh, configure with -DTETHER_BUILD_BENCH=ON, build, then compare.py
# or step by step, from the repo root:
cmake -S . -B {rel_build} -DCMAKE_BUILD_TYPE=Release -DTETHER_BUILD_BENCH=ON && cmake --build {rel_build} -j2
bench/compare.py {flags} --out docs/bench.md --charts docs/bench
```

One run by hand (PORT: any free port; PID: the server's):

```sh
{cmds}
{lg_cmds}
```

<details><summary>Every run ({len(rows)})</summary>

{per_run_table}

</details>{failed_note}
"""
    write_section(args.out, "compare", section)
    log(f"rewrote the compare section of {args.out}")
    return 1 if failed_runs else 0


def draw_charts(outdir, workloads, names, labels, M, ratio):
    gp = shutil.which("gnuplot")
    if not gp:
        log("no gnuplot: charts skipped (Debian: gnuplot-nox)")
        return []
    charts = []

    def clustered(fname, title, ylabel, rows, logscale=False):
        dat = os.path.join(outdir, fname.replace(".png", ".dat"))
        with open(dat, "w") as f:
            f.write("x " + " ".join(f'"{labels[n]}"' for n in names) + "\n")
            for rlabel, vals in rows:
                f.write(f'"{rlabel}" ' + " ".join("NaN" if v != v else f"{v:.6g}" for v in vals) + "\n")
        png = os.path.join(outdir, fname)
        script = f"""
set terminal pngcairo size 1000,480 font "sans,10"
set output '{png}'
set title "{title}"
set ylabel "{ylabel}"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top
set grid ytics
set yrange [{'*' if logscale else '0'}:*]
{'set logscale y' if logscale else ''}
set datafile missing "NaN"
plot for [i=2:{len(names) + 1}] '{dat}' using i:xtic(1) title columnheader(i)
"""
        r = subprocess.run([gp], input=script, capture_output=True, text=True)
        os.remove(dat)
        if r.returncode != 0:
            log(f"gnuplot failed for {fname}: {r.stderr.strip()[:300]}")
            return
        charts.append((title, png))

    tputkey = lambda wl: "mb_per_sec" if W[wl][4] == "mb" else "msgs_per_sec"
    clustered("compare-throughput.png", "Throughput relative to the raw TCP echo (median; 1 = ceiling)",
              "x raw TCP", [(wl, [ratio(wl, n, tputkey(wl)) for n in names]) for wl in workloads])
    clustered("compare-cpu.png", "Server CPU per message (median, utime+stime; log scale)", "µs per message",
              [(wl, [M[wl, n]["cpu_us_per_msg"] for n in names]) for wl in workloads], logscale=True)
    lat_rows = []
    for wl in ("W2", "W3"):
        if wl in workloads:
            lat_rows += [(f"{wl} p50", [M[wl, n]["p50_us"] for n in names]),
                         (f"{wl} p99", [M[wl, n]["p99_us"] for n in names]),
                         (f"{wl} p99.9", [M[wl, n]["p999_us"] for n in names])]
    if lat_rows:
        clustered("compare-latency.png", "Round-trip latency (median of runs; log scale)", "µs", lat_rows, logscale=True)
    return charts


if __name__ == "__main__":
    sys.exit(main())
