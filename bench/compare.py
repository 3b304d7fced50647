#!/usr/bin/python3
"""bench/compare.py: tether against other WebSocket servers and a raw TCP echo ceiling.

    bench/compare.py [--rounds 3] [--pairs 1] [--duration 4] [--warmup 1] [--build build]
                     [--out docs/bench.md] [--charts docs/bench]
                     [--workloads W1,W2,W3,W4a,W4b,W1mc,XC] [--servers raw,tether,beast,...]
                     [--mc-threads 1,2] [--mc-loadgens 1,2] [--crosscheck]

Run from anywhere after building with -DTETHER_BUILD_BENCH=ON (`make bench` does both). For
each round, each workload and each server (the server order rotates every round; tether and the
raw TCP echo always run back to back, as a pair whose order alternates), it starts a
fresh server pinned to CPU 0, drives it with build/bench/loadgen pinned to CPU 1, and stops it.
loadgen reports msgs/s, latency percentiles and, over its measured window, the server's
utime+stime (/proc/PID/stat), CPU 0's softirq time and the machine's other load. The runner
also reads /proc/PID/stat itself before and after each run (whole run, handshakes included).

Prints a table of medians per workload; with --out, rewrites the `compare` section of that
page (bench/md_section.py) and, with --charts, draws PNG charts there with gnuplot.

Two parts are not one run per server. W1mc (multi-core): W1 against `tether serve --threads N`
and `raw_echo PORT N` for each N of --mc-threads, driven by each count of --mc-loadgens loadgen
processes (started together, connections split between them, msgs/s summed), with NOTHING
pinned: on a 2-CPU machine the second loop shares the CPUs with the load generator, and the
report says so. XC (cross-check, alone with --crosscheck): W1 and W2 against `tether serve`,
pinned as above, driven once by bench/loadgen and once by `tether bench --json` (same
connections, size, pipeline and duration; no warm-up for either, as `tether bench` has none),
msgs/s and latency side by side.

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
import resource
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
# Parts that are not one run per server, selectable with --workloads like the others:
EXTRA = {
    # W1 against 1 and 2 event loops (--mc-threads), raw TCP and tether only, NOT pinned
    "W1mc": "W1 with 1 and 2 server event loops, server and load generator unpinned on all CPUs",
    # W1 and W2 against tether serve, driven once by bench/loadgen and once by `tether bench`
    "XC": "cross-check of bench/loadgen against `tether bench` on W1 and W2",
}
DEFAULT_WORKLOADS = [w[0] for w in WORKLOADS] + list(EXTRA)
# The workloads with targets relative to the raw TCP ceiling (--pairs adds raw / tether pairs to these)
TARGET_WORKLOADS = ("W1", "W2")


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
        "raw": dict(label="raw TCP echo", raw=True, exe=b("bench", "raw_echo"),
                    cmd=lambda p, t=1: [b("bench", "raw_echo"), str(p)] + ([str(t)] if t != 1 else [])),
        "tether": dict(label="tether", exe=b("tether"),
                       cmd=lambda p, t=1: [b("tether"), "serve", "--host", "127.0.0.1", "--port", str(p),
                                           "--mode", "echo", "--threads", str(t), "--ping-interval", "25s",
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
    """How many sockets listen on `port` (IPv4 and IPv6 tables; one per loop with SO_REUSEPORT);
    no probe connection."""
    want = f":{port:04X}"
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        n += 1
        except OSError:
            pass
    return n


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


def run_one(args, name, srv, wl, rnd, workdir, pair=0):
    wname, conns, size, pipeline, _, _ = W[wl]
    port = free_port()
    tag = f"{wname}.{name}.{rnd}" + (f".p{pair + 1}" if pair else "")
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


def start_server(cmd, port, tag, workdir, env=None, cpu=None, listeners=1):
    """Starts a server, pinned to `cpu` unless None, and waits until `listeners` sockets listen on
    `port`. Returns (proc, error): proc None on error (the server is then stopped)."""
    err_path = os.path.join(workdir, f"{tag}.server.err")
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    with open(os.path.join(workdir, f"{tag}.server.out"), "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(pin + cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, **(env or {})), start_new_session=True)
    deadline = time.monotonic() + 10
    while listening(port) < listeners:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            return None, f"server did not listen on {port} ({listeners} listener(s)): " + open(err_path).read()[-300:]
        time.sleep(0.02)
    return proc, None


def busy_seconds():
    """All CPUs' user+nice+system time so far, seconds (/proc/stat; as loadgen's machine_busy_s)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:4]]
    return sum(v) / os.sysconf("SC_CLK_TCK")


def cpu_split():
    """All CPUs' (idle+iowait, softirq, total) time so far, in ticks (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[3] + v[4], v[6], sum(v)


def last_json(text):
    lines = [l for l in text.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def split_connections(conns, parts):
    return [conns // parts + (1 if i < conns % parts else 0) for i in range(parts)]


def run_mc(args, name, srv, threads, nlg, rnd, workdir):
    """W1 against `threads` server loops, driven by `nlg` loadgen processes started together, each
    with its share of W1's connections; nothing pinned. Sums their msgs/s."""
    _, conns, size, pipeline, _, _ = W["W1"]
    port = free_port()
    tag = f"W1mc.{name}.t{threads}.lg{nlg}.{rnd}"
    proc, error = start_server(srv["cmd"](port, threads), port, tag, workdir, srv.get("env"), listeners=threads)
    if error:
        return dict(error=error)
    lgs = []
    try:
        split0 = cpu_split()
        for i, c in enumerate(split_connections(conns, nlg)):
            lg = [os.path.join(args.build, "bench", "loadgen"), "--port", str(port), "--connections", str(c),
                  "--size", str(size), "--pipeline", str(pipeline), "--duration", str(args.duration),
                  "--warmup", str(args.warmup), "--server-pid", str(proc.pid)] + (["--raw"] if srv.get("raw") else [])
            with open(os.path.join(workdir, f"{tag}.loadgen{i}.err"), "w") as err:
                lgs.append(subprocess.Popen(lg, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                            text=True))
        deadline = time.monotonic() + args.duration + args.warmup + 60
        docs = []
        for i, p in enumerate(lgs):
            try:
                out, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return dict(error="loadgen timed out")
            if p.returncode != 0:
                tail = open(os.path.join(workdir, f"{tag}.loadgen{i}.err")).read().strip().splitlines()
                return dict(error=(tail or ["loadgen failed"])[-1])
            docs.append(last_json(out))
        split1 = cpu_split()
        if proc.poll() is not None:
            return dict(error=f"server exited during the run ({proc.returncode})")
    finally:
        for p in lgs:
            if p.poll() is None:
                p.kill()
                p.wait()
        stop(proc)
    if any(d is None for d in docs):
        return dict(error="loadgen printed no result")
    rate = sum(d["msgs_per_sec"] for d in docs)
    res = dict(msgs_per_sec=rate, messages=sum(d["messages"] for d in docs),
               mb_per_sec=sum(d["mb_per_sec"] for d in docs),
               duration_s=statistics.mean(d["duration_s"] for d in docs),
               # one loadgen: its figures; several: the worst of them (histograms are not merged)
               p50_us=max(d["p50_us"] for d in docs), p99_us=max(d["p99_us"] for d in docs),
               p999_us=max(d["p999_us"] for d in docs),
               # each loadgen reads the server's CPU over its own window (they overlap but for the
               # few ms between the processes' starts): their mean rate
               server_use=statistics.mean(d["server_cpu_s"] / d["duration_s"] for d in docs),
               client_use=sum(d["client_cpu_s"] / d["duration_s"] for d in docs),
               machine_busy_s=docs[0]["machine_busy_s"])
    res["cpu_us_per_msg"] = res["server_use"] * 1e6 / rate if rate else float("nan")
    # over the loadgens' whole lives (warm-up included): the machine's idle and softirq shares
    total = max(1, split1[2] - split0[2])
    res["idle"] = (split1[0] - split0[0]) / total
    res["softirq"] = (split1[1] - split0[1]) / total
    res["other_load"] = max(0.0, docs[0]["machine_busy_s"] / docs[0]["duration_s"] - res["server_use"]
                            - res["client_use"]) / len(os.sched_getaffinity(0))
    stderr_text = open(os.path.join(workdir, f"{tag}.server.err")).read().strip()
    res["server_stderr"] = stderr_text.splitlines()[0][:200] if stderr_text else ""
    return res


XC_CLIENTS = ("loadgen", "tether bench")


def xc_cmd(args, client, wl, port, server_pid):
    """The cross-check's client command: same connections, size, pipeline and duration, no warm-up
    (`tether bench` has none), pinned to CLIENT_CPU."""
    _, conns, size, pipeline, _, _ = W[wl]
    pin = ["taskset", "-c", str(CLIENT_CPU)]
    if client == "loadgen":
        return pin + [os.path.join(args.build, "bench", "loadgen"), "--port", str(port), "--connections", str(conns),
                      "--size", str(size), "--pipeline", str(pipeline), "--duration", f"{args.duration:g}",
                      "--warmup", "0", "--server-pid", str(server_pid), "--server-cpu", str(SERVER_CPU)]
    return pin + [os.path.join(args.build, "tether"), "bench", f"ws://127.0.0.1:{port}/", "--connections", str(conns),
                  "--size", str(size), "--pipeline", str(pipeline), "--duration", f"{round(args.duration * 1000)}ms",
                  "--json"]


def run_xc(args, client, wl, rnd, workdir, tether_cmd):
    """`wl` against `tether serve --mode echo` (one loop, CPU SERVER_CPU) driven by `client`. CPU
    use is measured the same way for both clients: over the client process's whole life (its
    rusage; the server's /proc/PID/stat), connection set-up included."""
    port = free_port()
    tag = f"XC.{wl}.{client.replace(' ', '_')}.{rnd}"
    proc, error = start_server(tether_cmd(port, 1), port, tag, workdir, cpu=SERVER_CPU)
    if error:
        return dict(error=error)
    try:
        t0, b0, ru0, w0 = cpu_ticks(proc.pid), busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
        try:
            r = subprocess.run(xc_cmd(args, client, wl, port, proc.pid), capture_output=True, text=True,
                               timeout=args.duration + 60)
        except subprocess.TimeoutExpired:
            return dict(error=f"{client} timed out")
        wall = time.monotonic() - w0
        ru1, b1 = resource.getrusage(resource.RUSAGE_CHILDREN), busy_seconds()
        if proc.poll() is not None:
            return dict(error=f"server exited during the run ({proc.returncode})")
        t1 = cpu_ticks(proc.pid)
        if r.returncode != 0:
            return dict(error=(r.stderr.strip().splitlines() or [f"{client} failed"])[-1])
        doc = last_json(r.stdout)
    finally:
        stop(proc)
    if doc is None:
        return dict(error=f"{client} printed no result")
    res = {k: doc[k] for k in ("msgs_per_sec", "messages", "duration_s", "p50_us", "p99_us", "p999_us")}
    res["server_use"] = (t1 - t0) / os.sysconf("SC_CLK_TCK") / wall
    res["client_use"] = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall
    res["other_load"] = max(0.0, (b1 - b0) / wall - res["server_use"] - res["client_use"]) / len(os.sched_getaffinity(0))
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
    ap.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                    help="W1..W4b: one run per server; W1mc: the multi-core part; XC: the cross-check")
    ap.add_argument("--mc-threads", default="1,2", help="W1mc: server event loop counts to compare")
    ap.add_argument("--mc-loadgens", default="1,2",
                    help="W1mc: numbers of loadgen processes, each with its share of the connections")
    ap.add_argument("--crosscheck", action="store_true",
                    help="only the cross-check of loadgen against `tether bench` (same as --workloads XC)")
    ap.add_argument("--servers", default="raw,tether,beast,websocketpp,lws,node")
    ap.add_argument("--pairs", type=int, default=1,
                    help="raw TCP / tether pairs per round for the workloads with ratio targets (W1, W2): "
                         "the extra pairs run right after the round's runs of that workload")
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
    if args.rounds < 1 or args.duration <= 0 or args.pairs < 1:
        sys.exit("compare: --rounds and --pairs must be >= 1 and --duration > 0")
    requested = ["XC"] if args.crosscheck else args.workloads.split(",")
    for w in requested:
        if w not in W and w not in EXTRA:
            sys.exit(f"compare: unknown workload {w} (have {', '.join(DEFAULT_WORKLOADS)})")
    workloads = [w for w in requested if w in W]  # one run per server each
    try:
        mc_threads = sorted({int(t) for t in args.mc_threads.split(",")})
        mc_loadgens = sorted({int(t) for t in args.mc_loadgens.split(",")})
    except ValueError:
        sys.exit("compare: --mc-threads and --mc-loadgens take comma-separated counts")
    if min(mc_threads + mc_loadgens) < 1 or max(mc_loadgens) > W["W1"][1]:
        sys.exit("compare: --mc-threads and --mc-loadgens must be >= 1 (and loadgens <= W1's connections)")
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
    if "raw" not in names and workloads:
        log("WARNING: no raw TCP ceiling: the ratios will be n/a")
    # W1mc: raw TCP (the reference) and tether, each with every loop count and loadgen count
    mc_names = [n for n in ("raw", "tether") if n in names] if "W1mc" in requested else []
    if "W1mc" in requested and "tether" not in names:
        log("W1mc skipped: needs the tether server")
        mc_names = []
    mc_configs = [(n, t, g) for g in mc_loadgens for n in mc_names for t in mc_threads]
    xc_jobs = [(wl, c) for wl in ("W1", "W2") for c in XC_CLIENTS] if "XC" in requested and "tether" in names else []
    if "XC" in requested and not xc_jobs:
        log("XC skipped: needs the tether server")
    if not os.access(os.path.join(args.build, "bench", "loadgen"), os.X_OK):
        sys.exit(f"compare: {args.build}/bench/loadgen not found: build with -DTETHER_BUILD_BENCH=ON")
    if len(os.sched_getaffinity(0)) < 2 or not shutil.which("taskset"):
        sys.exit("compare: needs two CPUs and taskset (util-linux)")

    rows = []
    if args.from_csv:
        with open(args.from_csv) as f:
            for r in csv.DictReader(f):
                if r.get("error"):
                    rows.append(dict(round=int(r["round"]), pair=int(r.get("pair") or 0), workload=r["workload"],
                                     server=r["server"], error=r["error"]))
                    continue
                d = {k: (v if k in ("workload", "server", "server_stderr") else float(v))
                     for k, v in r.items() if k != "error" and v != ""}
                d["round"] = int(d["round"])
                d["pair"] = int(d.get("pair", 0))
                d["softirq_us_per_msg"] = d["server_cpu_softirq_s"] * 1e6 / d["messages"]
                d["server_use"] = d["server_cpu_s"] / d["duration_s"]
                d["client_use"] = d["client_cpu_s"] / d["duration_s"]
                d.setdefault("server_stderr", "")
                d.setdefault("attempts", 1)
                rows.append(d)
        def extra_rows(fname, workload=None):
            path = os.path.join(os.path.dirname(os.path.abspath(args.from_csv)), fname)
            if not os.path.exists(path):
                return []
            out = []
            with open(path) as f:
                for r in csv.DictReader(f):
                    d = {k: (int(v) if k in ("round", "threads", "loadgens", "attempts") else
                             v if k in ("workload", "server", "client", "server_stderr", "error") else float(v))
                         for k, v in r.items() if v != ""}
                    if workload:
                        d["workload"] = workload
                    out.append(d)
            return out
        mc_rows, xc_rows = extra_rows("compare-mc-runs.csv", "W1mc"), extra_rows("compare-xc-runs.csv")
        args.rounds = max(r["round"] for r in rows + mc_rows + xc_rows)
        args.pairs = 1 + max((r.get("pair", 0) for r in rows), default=0)
        workloads = [w for w in W if any(r["workload"] == w for r in rows)]
        names = [n for n in names if any(r["server"] == n for r in rows + mc_rows)]
        mc_names = [n for n in ("raw", "tether") if n in names and any(r["server"] == n for r in mc_rows)]
        mc_threads = sorted({r["threads"] for r in mc_rows})
        mc_loadgens = sorted({r["loadgens"] for r in mc_rows})
        mc_configs = [(n, t, g) for g in mc_loadgens for n in mc_names for t in mc_threads]
        xc_jobs = [(wl, c) for wl in ("W1", "W2") for c in XC_CLIENTS if any(r["workload"] == wl for r in xc_rows)]
    else:
        mc_rows, xc_rows = [], []
    workdir = sh("mktemp -d /tmp/tether-compare.XXXXXX") if not args.from_csv else ""
    paired = "raw" in names and "tether" in names
    pair_wls = [w for w in workloads if w in TARGET_WORKLOADS] if paired else []
    n_runs = args.rounds * (len(workloads) * len(names) + 2 * (args.pairs - 1) * len(pair_wls)
                            + len(mc_configs) + len(xc_jobs))
    eta = n_runs * (args.duration + args.warmup + args.settle + 0.7)
    log(f"{args.rounds} rounds x ({len(workloads)} workloads x {len(names)} servers + {len(mc_configs)} multi-core "
        f"+ {len(xc_jobs)} cross-check runs) = {n_runs} runs, ~{eta / 60:.0f} min; logs in {workdir}")
    started = time.time()

    def measure(run, what):
        """run() with the quiet wait before it and the reruns on other load; (result, attempts)."""
        for attempt in range(1 + args.retries):
            if args.quiet_wait > 0:
                busy = wait_quiet(args.quiet_wait, args.max_other)
                if busy > args.max_other:
                    log(f"machine still {busy:.0%} busy after waiting {args.quiet_wait:g} s; running anyway")
            res = run()
            if "error" in res or res["other_load"] <= args.max_other or attempt == args.retries:
                return res, attempt + 1
            log(f"{what}: other processes used {res['other_load']:.0%} of the machine; running it again")
            time.sleep(2)

    def record(run, what, into, summary, **fields):
        """measure() one run, tag it with `fields`, keep it in `into`, log one line about it."""
        res, attempts = measure(run, what)
        res.update(attempts=attempts, **fields)
        into.append(res)
        log(f"{what}: FAILED: {res['error']}" if "error" in res else f"{what}: {summary(res)}")
        time.sleep(args.settle)

    def shares(res, client="loadgen"):
        return (f"server {100 * res['server_use']:.0f}%, {client} {100 * res['client_use']:.0f}%, "
                f"other {100 * res['other_load']:.0f}%")

    for rnd in range(1, 0 if args.from_csv else args.rounds + 1):
        # Rotate, so that no server always runs first or last; but tether and the raw TCP ceiling
        # run back to back (one unit, tether first in even rounds): each round's tether / raw ratio
        # then compares two runs seconds apart instead of minutes, and the machine's drift between
        # them (this VM's throughput wanders by 10-20% over minutes) mostly cancels (paired_ratio()).
        units = []
        for n in names:
            if paired and n in ("raw", "tether"):
                if not any("raw" in u for u in units):
                    units.append(["raw", "tether"] if rnd % 2 else ["tether", "raw"])
            else:
                units.append([n])
        k = (rnd - 1) % len(units)
        order = [n for u in units[k:] + units[:k] for n in u]
        for wl in workloads:
            # The round's runs of this workload (pair 0), then, for the targets' workloads, the
            # extra raw / tether pairs of --pairs, the pair's order alternating again.
            runs = [(name, 0) for name in order]
            if wl in pair_wls:
                first = [n for n in order if n in ("raw", "tether")]
                for p in range(1, args.pairs):
                    runs += [(n, p) for n in (first if p % 2 == 0 else first[::-1])]
            for name, pair in runs:
                record(lambda: run_one(args, name, all_servers[name], wl, rnd, workdir, pair),
                       f"round {rnd}{f' pair {pair + 1}' if pair else ''} {wl} {name}", rows,
                       lambda r: (f"{r['msgs_per_sec']:,.0f} msgs/s, {r['mb_per_sec']:,.1f} MB/s, p50 "
                                  f"{r['p50_us']:.0f} p99 {r['p99_us']:.0f} us, {r['cpu_us_per_msg']:.2f} us/msg, "
                                  + shares(r)),
                       round=rnd, pair=pair, workload=wl, server=name)
        if mc_configs:
            k = (rnd - 1) % len(mc_configs)
            for name, threads, nlg in mc_configs[k:] + mc_configs[:k]:
                record(lambda: run_mc(args, name, all_servers[name], threads, nlg, rnd, workdir),
                       f"round {rnd} W1mc {name} {threads} loop(s) {nlg} loadgen(s)", mc_rows,
                       lambda r: (f"{r['msgs_per_sec']:,.0f} msgs/s, p99 {r['p99_us']:.0f} us, "
                                  f"{r['cpu_us_per_msg']:.3f} us/msg, " + shares(r)),
                       round=rnd, workload="W1mc", server=name, threads=threads, loadgens=nlg)
        if xc_jobs:
            # alternate which client goes first
            for wl, client in (xc_jobs if rnd % 2 else [j for p in zip(xc_jobs[1::2], xc_jobs[::2]) for j in p]):
                record(lambda: run_xc(args, client, wl, rnd, workdir, all_servers["tether"]["cmd"]),
                       f"round {rnd} XC {wl} {client}", xc_rows,
                       lambda r: (f"{r['msgs_per_sec']:,.0f} msgs/s, p50 {r['p50_us']:.0f} "
                                  f"p99 {r['p99_us']:.0f} us, " + shares(r, "client")),
                       round=rnd, workload=wl, client=client)
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

    def paired_ratio(wl, key):
        """tether / raw TCP per pair (the two ran back to back), median over the pairs where both
        ran undisturbed: the machine's drift between pairs cancels out of each ratio."""
        runs = {(r["round"], r.get("pair", 0), r["server"]): r for r in ok if r["workload"] == wl}
        rs = []
        for rnd, pair, _ in sorted(k for k in runs if k[2] == "tether"):
            t, w = runs[rnd, pair, "tether"], runs.get((rnd, pair, "raw"))
            if w and t["other_load"] <= args.max_other and w["other_load"] <= args.max_other and w[key]:
                rs.append(t[key] / w[key])
        return (statistics.median(rs) if rs else float("nan")), rs

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
            verdict = lambda ok_: "met" if ok_ else "**not met**"
            for what, key, limit, at_least in ((f"msgs/s ≥ {tput_min:.2f}×", "msgs_per_sec", tput_min, True),
                                               (f"{extra_name} ≤ {extra_max:.2f}×", extra_key, extra_max, False)):
                p, each = paired_ratio(wl, key)
                r = ratio(wl, "tether", key)
                each_s = ", ".join(f"{x:.2f}" for x in each) or "none"
                targets.append(f"| {wl} | {what} raw TCP | {fmt(p, '{:.2f}')}× ({each_s}) | {fmt(r, '{:.2f}')}× "
                               f"| {verdict(p >= limit if at_least else p <= limit)} |")
    target_table = ("| workload | target | tether / raw TCP: median of the pairs' ratios (each pair) "
                    "| ratio of the medians | judged on the paired median |\n| --- | --- | ---: | ---: | --- |\n"
                    + "\n".join(targets)) if targets else ""

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
    # W1mc: medians per (server, loops, loadgen processes)
    mc_ok = [r for r in mc_rows if "error" not in r]
    MC = {}
    for n, t, g in mc_configs:
        rs_all = [r for r in mc_ok if (r["server"], r["threads"], r["loadgens"]) == (n, t, g)]
        rs = [r for r in rs_all if r["other_load"] <= args.max_other] or rs_all
        MC[n, t, g] = {k: med(rs, k) for k in ("msgs_per_sec", "p50_us", "p99_us", "cpu_us_per_msg", "server_use",
                                               "client_use", "softirq", "idle", "other_load")}
        MC[n, t, g]["runs"] = len(rs)
        MC[n, t, g]["failed"] = [r["error"] for r in mc_rows
                                 if (r["server"], r["threads"], r["loadgens"]) == (n, t, g) and "error" in r]

    def mc_ratio(n, t, g, key="msgs_per_sec"):
        base = MC.get((n, mc_threads[0], g), {}).get(key, float("nan"))
        v = MC[n, t, g][key]
        return v / base if base and base == base and v == v else float("nan")

    mc_table, mc_verdict = "", ""
    if mc_configs:
        lines = [f"| server | loops | loadgen processes | msgs/s | × {mc_threads[0]} loop{'s' if mc_threads[0] > 1 else ''} "
                 "| p50 µs | p99 µs | server CPU µs/msg | server CPU use | loadgen CPU use | softirq | idle | other load |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for n, t, g in mc_configs:
            m = MC[n, t, g]
            label = labels[n] if n != "tether" else f"**{labels[n]}**"
            if m["runs"] == 0:
                lines.append(f"| {label} | {t} | {g} | failed: {m['failed'][0] if m['failed'] else '?'} |" + " |" * 9)
                continue
            note = f" ({m['runs']} run{'s' if m['runs'] != 1 else ''})" if m["runs"] < args.rounds else ""
            lines.append("| " + " | ".join([
                label + note, str(t), str(g), fmt(m["msgs_per_sec"], "{:,.0f}"), fmt(mc_ratio(n, t, g), "{:.2f}"),
                fmt(m["p50_us"], "{:,.1f}"), fmt(m["p99_us"], "{:,.1f}"), fmt(m["cpu_us_per_msg"], "{:,.3f}"),
                fmt(m["server_use"], "{:.0%}"), fmt(m["client_use"], "{:.0%}"), fmt(m["softirq"], "{:.0%}"),
                fmt(m["idle"], "{:.0%}"), fmt(m["other_load"], "{:.0%}")]) + " |")
        mc_table = "\n".join(lines)
        said = []
        for g in mc_loadgens:
            for t in mc_threads[1:]:
                ref = "".join(f", raw TCP echo {fmt(mc_ratio('raw', t, g), '{:.2f}')}×" for n in mc_names if n == "raw")
                said.append(f"with {g} loadgen process{'es' if g > 1 else ''}: tether "
                            f"{fmt(mc_ratio('tether', t, g), '{:.2f}')}× the msgs/s (server CPU per message "
                            f"{fmt(mc_ratio('tether', t, g, 'cpu_us_per_msg'), '{:.2f}')}×){ref}")
        mc_verdict = (f"**{mc_threads[-1] if len(mc_threads) == 2 else 'N'} loops over {mc_threads[0]}** (medians): "
                      + "; ".join(said) + ".") if said else ""

    # XC: loadgen against `tether bench`, medians per (workload, client)
    xc_ok = [r for r in xc_rows if "error" not in r]
    XCM = {}
    for wl, c in xc_jobs:
        rs_all = [r for r in xc_ok if (r["workload"], r["client"]) == (wl, c)]
        rs = [r for r in rs_all if r["other_load"] <= args.max_other] or rs_all
        XCM[wl, c] = {k: med(rs, k) for k in ("msgs_per_sec", "p50_us", "p99_us", "p999_us", "server_use",
                                              "client_use", "other_load")}
        XCM[wl, c]["runs"] = len(rs)
        XCM[wl, c]["failed"] = [r["error"] for r in xc_rows if (r["workload"], r["client"]) == (wl, c) and "error" in r]
    xc_table = ""
    if xc_jobs:
        lines = ["| workload | client | msgs/s | × loadgen | p50 µs | p99 µs | × loadgen | p99.9 µs | server CPU use "
                 "| client CPU use |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for wl, c in xc_jobs:
            m, base = XCM[wl, c], XCM.get((wl, "loadgen"))
            name = "`bench/loadgen`" if c == "loadgen" else "`tether bench`"
            if m["runs"] == 0:
                lines.append(f"| {wl} | {name} | failed: {m['failed'][0] if m['failed'] else '?'} |" + " |" * 7)
                continue
            rel_to = lambda key: (m[key] / base[key] if base and base["runs"] and base[key] else float("nan"))
            note = f" ({m['runs']} run{'s' if m['runs'] != 1 else ''})" if m["runs"] < args.rounds else ""
            lines.append("| " + " | ".join([
                wl, name + note, fmt(m["msgs_per_sec"], "{:,.0f}"), fmt(rel_to("msgs_per_sec"), "{:.2f}"),
                fmt(m["p50_us"], "{:,.1f}"), fmt(m["p99_us"], "{:,.1f}"), fmt(rel_to("p99_us"), "{:.2f}"),
                fmt(m["p999_us"], "{:,.1f}"), fmt(m["server_use"], "{:.0%}"), fmt(m["client_use"], "{:.0%}")]) + " |")
        xc_table = "\n".join(lines)

    if summary:
        print(summary)
    if target_table:
        print("\n" + target_table)
    if mc_table:
        print(f"\n**W1mc** (not pinned; {len(os.sched_getaffinity(0))} CPUs shared by server and load generators):\n\n"
              + mc_table + ("\n\n" + mc_verdict if mc_verdict else ""))
    if xc_table:
        print("\n**Cross-check** (server CPU 0, client CPU 1, no warm-up):\n\n" + xc_table)

    # raw data next to the charts
    if args.charts:
        os.makedirs(args.charts, exist_ok=True)
        keys = ["round", "pair", "workload", "server", "msgs_per_sec", "mb_per_sec", "messages", "duration_s", "p50_us",
                "p99_us", "p999_us", "server_cpu_s", "run_cpu_s", "cpu_us_per_msg", "server_cpu_softirq_s",
                "client_cpu_s", "machine_busy_s", "other_load", "attempts", "server_stderr", "error"]
        with open(os.path.join(args.charts, "compare-runs.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)
        for fname, extra, keys in (
                ("compare-mc-runs.csv", mc_rows,
                 ["round", "server", "threads", "loadgens", "msgs_per_sec", "mb_per_sec", "messages", "duration_s",
                  "p50_us", "p99_us", "p999_us", "server_use", "client_use", "cpu_us_per_msg", "machine_busy_s",
                  "softirq", "idle", "other_load", "attempts", "server_stderr", "error"]),
                ("compare-xc-runs.csv", xc_rows,
                 ["round", "workload", "client", "msgs_per_sec", "messages", "duration_s", "p50_us", "p99_us",
                  "p999_us", "server_use", "client_use", "other_load", "attempts", "error"])):
            if extra:
                with open(os.path.join(args.charts, fname), "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
                    w.writeheader()
                    for r in extra:
                        w.writerow(r)
        charts = draw_charts(args.charts, workloads, names, labels, M, ratio) if workloads else []
    else:
        charts = []

    all_failed = [r for r in rows + mc_rows + xc_rows if "error" in r]
    if not args.out:
        return 1 if all_failed else 0

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
    if args.pairs != 1:
        flags += f" --pairs {args.pairs}"
    if args.build != os.path.join(REPO, "build"):
        flags += f" --build {rel_build}"
    if args.retries != 2:
        flags += f" --retries {args.retries}"
    if args.quiet_wait != 10:
        flags += f" --quiet-wait {args.quiet_wait:g}"
    ran = workloads + (["W1mc"] if mc_configs else []) + (["XC"] if xc_jobs else [])
    if set(ran) != set(DEFAULT_WORKLOADS):
        flags += f" --workloads {','.join(ran)}"
    if mc_configs and mc_threads != [1, 2]:
        flags += f" --mc-threads {','.join(map(str, mc_threads))}"
    if mc_configs and mc_loadgens != [1, 2]:
        flags += f" --mc-loadgens {','.join(map(str, mc_loadgens))}"
    if names + list(skipped) != "raw,tether,beast,websocketpp,lws,node".split(","):
        flags += f" --servers {','.join(names)}"
    skipped_note = "".join(f"\n- **{n}** was not run: {why}." for n, why in skipped.items())
    failed_runs = [r for r in rows if "error" in r]
    failed_lines = ([f"- round {r['round']}, {r['workload']}, {labels[r['server']]}: `{r['error'][:200]}`"
                     for r in failed_runs]
                    + [f"- round {r['round']}, W1mc, {labels[r['server']]}, {r['threads']} loop(s), {r['loadgens']} "
                       f"loadgen(s): `{r['error'][:200]}`" for r in mc_rows if "error" in r]
                    + [f"- round {r['round']}, cross-check {r['workload']}, {r['client']}: `{r['error'][:200]}`"
                       for r in xc_rows if "error" in r])
    failed_note = ("\n\nFailed runs:\n\n" + "\n".join(failed_lines)) if failed_lines else ""
    extra_runs = ["| round | part | server / client | loops | loadgens | msgs/s | p50 µs | p99 µs | server CPU use "
                  "| client CPU use | other load |", "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in mc_rows + xc_rows:
        mc = r["workload"] == "W1mc"
        head = [str(r["round"]), "W1mc" if mc else f"cross-check {r['workload']}",
                labels[r["server"]] if mc else r["client"], str(r["threads"]) if mc else "1",
                str(r["loadgens"]) if mc else ""]
        if "error" in r:
            extra_runs.append("| " + " | ".join(head) + f" | failed: {r['error'][:120]} |" + " |" * 5)
            continue
        extra_runs.append("| " + " | ".join(head + [f"{r['msgs_per_sec']:,.0f}", f"{r['p50_us']:,.1f}",
                                                    f"{r['p99_us']:,.1f}", f"{r['server_use']:.0%}",
                                                    f"{r['client_use']:.0%}", f"{r['other_load']:.0%}"]) + " |")
    extra_details = (f"\n\n<details><summary>Every multi-core and cross-check run ({len(mc_rows) + len(xc_rows)})"
                     f"</summary>\n\n" + "\n".join(extra_runs) + "\n\n</details>") if mc_rows or xc_rows else ""
    all_ok = ok + [r for r in mc_rows + xc_rows if "error" not in r]
    others = [r["other_load"] for r in all_ok]
    noisy = [r for r in all_ok if r["other_load"] > args.max_other]
    retried = sum(1 for r in all_ok if r.get("attempts", 1) > 1)
    noise_note = (f"Other processes used {statistics.median(others):.0%} of the machine in the median run "
                  f"(max {max(others):.0%})" if others else "")
    if retried:
        noise_note += (f"; {retried} run(s) were repeated because other processes used more than "
                       f"{args.max_other:.0%} (up to {args.retries} times; the last attempt counts)")
    if noisy:
        noise_note += (f"; {len(noisy)} of {len(all_ok)} runs still saw more than {args.max_other:.0%}. The medians leave "
                       "those disturbed runs out (a row based on fewer runs says so); every run is in the "
                       "per-run table, column \"other load\"")
    ncpu = len(os.sched_getaffinity(0))
    lg_path = f"{rel_build}/bench/loadgen"
    mc_section = ""
    if mc_configs:
        t_hi = mc_threads[-1]
        shares = " + ".join(str(c) for c in split_connections(W["W1"][1], mc_loadgens[-1]))
        mc_cmds = "\n".join(
            [" ".join(rel(c) for c in all_servers[n]["cmd"]("PORT", t_hi)) + f"    # {labels[n]}, {t_hi} loops; no taskset"
             for n in mc_names]
            + [f"{lg_path} --port PORT --connections {c} --size {W['W1'][2]} --pipeline {W['W1'][3]} "
               f"--duration {args.duration:g} --warmup {args.warmup:g} --server-pid PID &    # loadgen {i + 1} of "
               f"{mc_loadgens[-1]}, started together; add --raw against raw_echo"
               for i, c in enumerate(split_connections(W["W1"][1], mc_loadgens[-1]))] + ["wait"])
        mc_section = f"""
### Multi-core: W1 with {' and '.join(map(str, mc_threads))} event loops (not pinned)

W1 ({W['W1'][5]}) against `tether serve --mode echo --threads N`
and, for reference, the raw TCP echo with N loops (`raw_echo PORT N`); both give each loop its own listener on the port
(SO_REUSEPORT) and let the kernel spread the connections, so the loops need not get equal
shares. **Nothing is pinned here**: the server's loops and the load generator process(es) share
all {ncpu} CPUs of this machine, and the scheduler places them. On a {ncpu}-CPU machine a second
loop does not get a core of its own: it competes with the load generator (one thread per
loadgen process; pinned, at W1 it keeps its CPU nearly 100% busy). The ratio therefore measures what a second
loop buys on this machine, not how tether scales with spare cores; on a machine with more cores
run e.g. `bench/compare.py --workloads W1mc --mc-threads 1,2,4 --mc-loadgens 4` so the client is
not the limit. Each configuration runs with {' and '.join(map(str, mc_loadgens))} loadgen process(es), started
together, each with its share of the {W['W1'][1]} connections ({shares} for {mc_loadgens[-1]}); their msgs/s
are summed, their latency columns are the worst of the processes (histograms are not merged),
and server CPU is the server's utime+stime (all threads) over the measured window, averaged over
the loadgens' (overlapping) windows. Server and loadgen CPU use are in CPUs (100% = one CPU;
loadgen sums its processes). Softirq, idle and other load are shares of all {ncpu} CPUs: softirq
and idle from `/proc/stat` over the loadgens' whole run (warm-up included; softirq is the
loopback TCP work charged to no process), other load is the machine's user+system time minus
the server's and the loadgens'.
The same {args.rounds} round(s), {args.duration:g} s measured after {args.warmup:g} s of warm-up, medians.

{mc_table}

{mc_verdict}

```sh
{mc_cmds}
```
"""
    xc_section = ""
    if xc_jobs:
        xc_cmds = "\n".join(
            [f"taskset -c {SERVER_CPU} " + " ".join(rel(c) for c in all_servers["tether"]["cmd"]("PORT", 1))]
            + [" ".join(rel(c) for c in xc_cmd(args, c, wl, "PORT", "PID")) + f"    # {wl}"
               for wl in dict.fromkeys(wl for wl, _ in xc_jobs) for c in XC_CLIENTS])
        xc_section = f"""
### Cross-check: `bench/loadgen` against `tether bench`

The tables above use `bench/loadgen` for every server; `tether bench` is the CLI's own load
generator, built on tether's client library. To check that loadgen reports what an independent
client would, W1 and W2 run against `tether serve --mode echo` (one loop, CPU {SERVER_CPU}) once with each
client (CPU {CLIENT_CPU}), same connections, size, pipeline and {args.duration:g} s measured, {args.rounds} round(s), medians,
client order alternating by round. `tether bench` has no warm-up (it measures from the moment
every connection is open), so loadgen runs with `--warmup 0` here, and these figures are not
the ones in the tables above. Both measure a round trip from queueing a message to its echo.
CPU use is the server's and the client's CPU time over the client process's whole life
(connection set-up included) divided by its wall time. "× loadgen" is `tether bench`'s median
over loadgen's: near 1 means the two clients agree; the client with the lower CPU cost per
message can push a server harder when the client is the limit.

{xc_table}

```sh
{xc_cmds}
```
"""
    pairs_note = (f" {args.pairs} such pairs per round for {' and '.join(TARGET_WORKLOADS)} (`--pairs {args.pairs}`, "
                  f"order alternating), so {args.rounds * args.pairs} ratios each: single pairs scatter widely here (each "
                  "target lists its ratios), and a median of few of them moves by several percent between runs of "
                  "the same code."
                  if args.pairs > 1 else "")
    targets_par = (f"\n**Against the issue's targets**: each tether run over the raw TCP run next to it "
                   "(the two run back to back), median over the pairs; the ratio of the two medians beside it. "
                   "Pairing matters on this VM: both servers' throughput wanders by 10-20% over minutes, "
                   f"much more than between two runs seconds apart.{pairs_note}\n\n{target_table}\n"
                   if target_table else "")
    section = f"""## Peer comparison: tether against five servers and raw TCP

Written by `bench/compare.py` (`make bench`); {args.rounds} rounds, {args.duration:g} s measured per run after
{args.warmup:g} s of warm-up, medians over rounds. Server on CPU {SERVER_CPU}, load generator on CPU {CLIENT_CPU} (the multi-core part excepted).
{noise_note}.

In the per-workload tables every server is single-threaded and echoes each message back as one frame; the raw TCP echo
(`bench/peers/raw_echo.cpp`, epoll, one thread) returns the same bytes with no WebSocket framing,
and is the ceiling the ratios ("× raw TCP") compare against. For throughput above 1 would beat
the ceiling; for CPU µs/msg, 1.10 means 10% more CPU per message than raw TCP.

{summary}
{targets_par}
{img}

**uWebSockets** is not measured here: it is neither in Debian 12 nor on npm (its Node binding
`uWebSockets.js` is published only as GitHub release binaries), so `make bench` cannot build it
from the registries this project uses. Figures for it quoted elsewhere are reported, not
measured here.{skipped_note}
{mc_section}{xc_section}
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
  both of its sides are driven by the same client loop{'; the cross-check above runs both clients against tether on W1 and W2' if xc_jobs else ''}.
- **Fresh server per run, interleaved, rotated.** Each round runs every workload against every
  server, each on a freshly started process, {args.settle:g} s apart; the server order rotates by one
  every round, with tether and the raw TCP echo kept next to each other (their order alternates
  by round), so each round gives a paired tether / raw TCP ratio{f"; for {' and '.join(TARGET_WORKLOADS)}, {args.pairs - 1} more pair(s) follow the round's runs" if args.pairs > 1 else ""}. Connections are opened (and upgraded) first, then {args.warmup:g} s of load, then {args.duration:g} s
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

</details>{extra_details}{failed_note}
"""
    write_section(args.out, "compare", section)
    log(f"rewrote the compare section of {args.out}")
    return 1 if all_failed else 0


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
