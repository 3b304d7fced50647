#!/usr/bin/env bash
# bench/run.sh: tether vs Boost.Beast WebSocket echo benchmark.
#
#   bench/run.sh [--rounds 3] [--duration 10] [--out docs/bench.md]
#                [--connections 100] [--size 16] [--pipeline 16]
#
# Run from the repo root after building build/tether and build/bench/beast_echo
# (`make bench` does both and then calls this). Each round starts each server in
# turn (tether, beast, tether, beast, ...) pinned to one CPU, drives it with
# `tether bench --json` pinned to another, records msgs/s, latency percentiles
# and the server's CPU time, and stops it. Prints a markdown table of the
# medians over rounds; with --out, also rewrites its section of a docs page
# (between <!-- run begin --> and <!-- run end -->; bench/md_section.py).
#
# Overrides (environment), mainly for testing the plumbing:
#   TETHER_BIN          tether binary                 (default build/tether)
#   BEAST_BIN           Beast echo peer               (default build/bench/beast_echo)
#   TETHER_SERVER_CMD   tether server command line    (default "$TETHER_BIN serve --host 127.0.0.1 --port 0 --mode echo --threads 1")
#   BEAST_SERVER_CMD    Beast server command line     (default "$BEAST_BIN 0")
#   TETHER_BENCH_CMD    load generator, before the URL (default "$TETHER_BIN bench")
# Command strings are split on whitespace (no quoting inside them).
set -euo pipefail

PY=/usr/bin/python3
LISTEN_WAIT_S=10      # the server's `listening` line must appear within this
STOP_WAIT_S=5         # SIGTERM grace period before SIGKILL
BENCH_SLACK_S=60      # the bench may overrun --duration by this much (connect, drain)
SETTLE_S=1            # pause between runs (sockets in TIME_WAIT, CPU frequency)

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}
die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "run.sh: $*" >&2; }

rounds=3 duration=10 out="" connections=100 size=16 pipeline=16
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --size) size=${2:?--size needs a value}; shift 2 ;;
    --pipeline) pipeline=${2:?--pipeline needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
duration=${duration%s}   # accept "10s" as well as "10"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer (got '$rounds')"
if [[ ! $duration =~ ^[0-9]+(\.[0-9]+)?$ || $duration =~ ^0+(\.0+)?$ ]]; then
  die "--duration must be a positive number of seconds (got '$duration')"
fi
for v in connections size pipeline; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v must be a positive integer (got '${!v}')"
done
# `tether bench --duration`: the contract's form is "10s"; a bare number also means seconds.
if [[ $duration =~ ^[0-9]+$ ]]; then bench_duration="${duration}s"; else bench_duration=$duration; fi

# Resolve --out against the caller's directory, then work from the repo root.
if [[ -n $out && $out != /* ]]; then out="$PWD/$out"; fi
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

TETHER_BIN=${TETHER_BIN:-build/tether}
BEAST_BIN=${BEAST_BIN:-build/bench/beast_echo}
boost=$(awk '/^#define BOOST_LIB_VERSION/ { gsub(/"/, "", $3); gsub(/_/, ".", $3); print $3 }' \
  /usr/include/boost/version.hpp 2>/dev/null || true)

# ---- the servers, in run order. tether comes first; the report's ratio rows
# are tether against each of the others. To add a peer: one entry per map.
servers=(tether beast)
declare -A server_cmdline=(
  [tether]="${TETHER_SERVER_CMD:-$TETHER_BIN serve --host 127.0.0.1 --port 0 --mode echo --threads 1}"
  [beast]="${BEAST_SERVER_CMD:-$BEAST_BIN 0}"
)
declare -A server_label=(
  [tether]="tether"
  [beast]="Boost.Beast ${boost:-}"
)
declare -A server_hint=(
  [tether]="build it: cmake -S . -B build && cmake --build build"
  [beast]="build it: cmake -S . -B build -DTETHER_BUILD_BENCH=ON && cmake --build build"
)
read -r -a bench_cmd <<<"${TETHER_BENCH_CMD:-$TETHER_BIN bench}"
overridden=""   # named in the report, which then is not the standard comparison
[[ $TETHER_BIN != build/tether ]] && overridden+="TETHER_BIN "
[[ $BEAST_BIN != build/bench/beast_echo ]] && overridden+="BEAST_BIN "
for v in TETHER_SERVER_CMD BEAST_SERVER_CMD TETHER_BENCH_CMD; do
  if [[ -n ${!v:-} ]]; then overridden+="$v "; fi
done

need_exe() {
  command -v "$1" >/dev/null 2>&1 || [[ -x $1 ]] || die "$2: '$1' not found or not executable${3:+ ($3)}"
}
for name in "${servers[@]}"; do
  read -r -a cmd <<<"${server_cmdline[$name]}"
  need_exe "${cmd[0]}" "$name server" "${server_hint[$name]:-}"
done
need_exe "${bench_cmd[0]}" "load generator"
need_exe "$PY" "python3"
need_exe timeout "coreutils timeout"
[[ -r /proc/self/stat ]] || die "/proc is needed to measure the server's CPU time"
clk_tck=$(getconf CLK_TCK) || die "getconf CLK_TCK failed"
[[ $clk_tck =~ ^[0-9]+$ && $clk_tck -gt 0 ]] || die "odd CLK_TCK '$clk_tck'"

# ---- CPU pinning: server and client on two different CPUs we may run on.
# Prefer CPU 0 for the server and the next allowed CPU that is not its SMT
# sibling for the client (CPU 1 on an ordinary machine).
read -r server_cpu client_cpu smt_note < <("$PY" - <<'EOF'
import os
cpus = sorted(os.sched_getaffinity(0))
if len(cpus) < 2:
    print("- - -")
else:
    server = cpus[0]
    siblings = set()
    try:
        with open(f"/sys/devices/system/cpu/cpu{server}/topology/thread_siblings_list") as f:
            for part in f.read().strip().split(","):
                lo, _, hi = part.partition("-")
                siblings.update(range(int(lo), int(hi or lo) + 1))
    except (OSError, ValueError):
        pass
    others = [c for c in cpus[1:] if c not in siblings]
    client = others[0] if others else cpus[1]
    print(server, client, "separate-cores" if others else "smt-siblings")
EOF
)
if [[ $server_cpu == - ]]; then
  pinning=0
  server_pin=() client_pin=()
  pin_note="not pinned: fewer than 2 CPUs available, so server and client share one"
  log "WARNING: $pin_note"
else
  need_exe taskset "taskset (util-linux)"
  pinning=1
  server_pin=(taskset -c "$server_cpu") client_pin=(taskset -c "$client_cpu")
  pin_note="server on CPU $server_cpu, load generator on CPU $client_cpu"
  [[ $smt_note == smt-siblings ]] && pin_note+=" (SMT siblings of one physical core: no other CPU was available)"
fi

setsid=()
command -v setsid >/dev/null 2>&1 && setsid=(setsid)

# ---- scratch space and cleanup
work=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench.XXXXXX")
server_pid=""
bench_pid=""
keep_work=0
cleanup() {
  local rc=$?
  if [[ -n $bench_pid ]]; then
    kill -TERM "$bench_pid" 2>/dev/null || true   # timeout passes it on to the bench
    wait "$bench_pid" 2>/dev/null || true
  fi
  if [[ -n $server_pid ]]; then stop_server || true; fi
  if [[ $rc -ne 0 || $keep_work -eq 1 ]]; then
    log "logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# State of process $1 from /proc ("" when gone); a zombie ("Z") counts as gone.
proc_state() { awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null || true; }
alive() { local s; s=$(proc_state "$1"); [[ -n $s && $s != Z ]]; }
# utime + stime of process $1 (all its threads), in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
show_tail() { [[ -s $1 ]] && { echo "--- $2 (last lines of $1):" >&2; tail -n 15 "$1" >&2; }; return 0; }

# start_server NAME ROUND CMD... -> sets server_pid, server_url
start_server() {
  local name=$1 round=$2; shift 2
  local sout="$work/$name.$round.server.out" serr="$work/$name.$round.server.err"
  : >"$sout"   # exists before the poll below reads it
  # setsid: the server leads its own process group, so stop_server can also
  # clean up anything it spawned. setsid and taskset both exec (setsid forks
  # only when already a group leader, which a background job here is not), so
  # $! is the server process itself.
  "${setsid[@]}" "${server_pin[@]}" "$@" >"$sout" 2>"$serr" </dev/null &
  server_pid=$!
  local line="" i
  for ((i = 0; i < LISTEN_WAIT_S * 20; i++)); do
    if IFS= read -r line <"$sout"; then break; fi   # a complete first line
    if ! alive "$server_pid"; then
      show_tail "$serr" "$name stderr"
      die "$name server exited before printing its listening line: $*"
    fi
    sleep 0.05
  done
  if [[ ! $line =~ ^listening\ (wss?://[^[:space:]]+)$ ]]; then
    show_tail "$sout" "$name stdout"; show_tail "$serr" "$name stderr"
    [[ -z $line ]] && die "$name server printed no listening line within ${LISTEN_WAIT_S}s: $*"
    die "$name server's first line is not 'listening ws://HOST:PORT': '$line'"
  fi
  server_url=${BASH_REMATCH[1]}
}

# stop_server: SIGTERM, SIGKILL after STOP_WAIT_S, reap. Sets server_exit_note.
stop_server() {
  local pid=$server_pid i st=0
  server_exit_note=""
  [[ -z $pid ]] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_WAIT_S * 20; i++)); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    server_exit_note="needed SIGKILL (no exit ${STOP_WAIT_S}s after SIGTERM)"
  fi
  wait "$pid" 2>/dev/null || st=$?
  # Anything the server left behind in its process group goes too.
  if [[ ${#setsid[@]} -gt 0 ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  [[ -z $server_exit_note && $st -ne 0 ]] && server_exit_note="exit status $st after SIGTERM"
  server_pid=""
  return 0
}

# ---- is the machine quiet? Other load (a build, a browser) skews every figure.
busy_pct=$("$PY" - <<'EOF2'
import time
def sample():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)   # idle + iowait
    return sum(v[:8]), idle
t0, i0 = sample(); time.sleep(1); t1, i1 = sample()
print(round(100 * (1 - (i1 - i0) / max(1, t1 - t0))))
EOF2
)
if [[ $busy_pct -gt 10 ]]; then
  busy_note="NOT idle: ${busy_pct}% of all CPU time was busy in the second before the runs (other load skews the figures)"
  log "WARNING: machine is $busy_note"
else
  busy_note="idle (${busy_pct}% busy in the second before the runs)"
fi

results="$work/results.tsv"
: >"$results"
log "$rounds round(s) x ${#servers[@]} servers x ${duration}s; $connections connections, ${size}-byte binary messages, pipeline $pipeline; $pin_note"
for ((round = 1; round <= rounds; round++)); do
  for name in "${servers[@]}"; do
    read -r -a cmd <<<"${server_cmdline[$name]}"
    start_server "$name" "$round" "${cmd[@]}"
    log "round $round/$rounds: $name at $server_url (pid $server_pid)"

    bout="$work/$name.$round.bench.out" berr="$work/$name.$round.bench.err"
    ticks0=$(cpu_ticks "$server_pid")
    t0=$(date +%s.%N)
    brc=0
    # In the background + wait, so that a signal to this script (Ctrl-C) is
    # acted on at once instead of after the run; cleanup stops the bench.
    timeout -k 5 "$(awk -v d="$duration" -v s="$BENCH_SLACK_S" 'BEGIN { print d + s }')" \
      "${client_pin[@]}" "${bench_cmd[@]}" "$server_url" \
      --connections "$connections" --size "$size" --pipeline "$pipeline" \
      --duration "$bench_duration" --json >"$bout" 2>"$berr" </dev/null &
    bench_pid=$!
    wait "$bench_pid" || brc=$?
    bench_pid=""
    t1=$(date +%s.%N)
    if ! alive "$server_pid"; then
      show_tail "$work/$name.$round.server.err" "$name stderr"
      die "$name server died during the run (round $round)"
    fi
    ticks1=$(cpu_ticks "$server_pid")
    stop_server
    [[ -n $server_exit_note ]] && log "note: $name server $server_exit_note"
    if [[ $brc -ne 0 ]]; then
      show_tail "$berr" "bench stderr"; show_tail "$bout" "bench stdout"
      [[ $brc -eq 124 || $brc -eq 137 ]] && die "bench against $name overran ${duration}s + ${BENCH_SLACK_S}s and was killed"
      die "bench against $name failed with exit status $brc"
    fi
    "$PY" - "$results" "$round" "$name" "$bout" "$((ticks1 - ticks0))" "$clk_tck" "$t0" "$t1" <<'EOF' || { show_tail "$bout" "bench stdout"; die "could not read the bench's JSON against $name"; }
import json, sys
results, rnd, name, bout, ticks, clk_tck, t0, t1 = sys.argv[1:]
doc = None
with open(bout) as f:
    for line in f:
        line = line.strip()
        if line.startswith("{"):
            doc = json.loads(line)          # the last JSON line wins
if doc is None:
    sys.exit("no JSON object on the bench's stdout")
for key in ("msgs_per_sec", "messages"):
    if not isinstance(doc.get(key), (int, float)):
        sys.exit(f"JSON lacks a numeric '{key}': {doc}")
if doc["messages"] <= 0:
    sys.exit(f"the bench completed no messages: {doc}")
cpu_s = int(ticks) / int(clk_tck)
wall_s = float(t1) - float(t0)
def num(key):
    v = doc.get(key)
    return repr(float(v)) if isinstance(v, (int, float)) else "nan"
row = [rnd, name, num("msgs_per_sec"), str(int(doc["messages"])), num("duration_s"),
       num("p50_us"), num("p99_us"), num("p999_us"),
       repr(cpu_s), repr(cpu_s * 1e6 / doc["messages"]), repr(wall_s)]
with open(results, "a") as f:
    f.write("\t".join(row) + "\n")
print(f"  {doc['msgs_per_sec']:,.0f} msgs/s, p50 {float(num('p50_us')):.1f} us, p99 {float(num('p99_us')):.1f} us, "
      f"server CPU {cpu_s:.2f} s ({cpu_s * 1e6 / doc['messages']:.3f} us/msg, {100 * cpu_s / wall_s:.0f}% of {wall_s:.1f} s)",
      file=sys.stderr)
EOF
    sleep "$SETTLE_S"
  done
done

# ---- machine description and the report
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[[ -z $cpu_model ]] && cpu_model=$(awk -F': ' '/^(Hardware|cpu model|Processor)/ { print $2; exit }' /proc/cpuinfo)
grep -qw hypervisor /proc/cpuinfo && cpu_model+=" (virtual machine: the hypervisor flag is set)"
online=$(nproc --all 2>/dev/null || getconf _NPROCESSORS_ONLN)
usable=$(nproc)
gxx=$(g++ --version 2>/dev/null | head -n1 || echo unknown)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "none yet")
[[ -n $(git -C "$repo" status --porcelain 2>/dev/null | head -n1) ]] && commit+=" (working tree has uncommitted changes)"
governor=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null || echo "n/a")
kernel=$(uname -sr)
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' build/CMakeCache.txt 2>/dev/null | head -n1)
today=$(date -u '+%Y-%m-%d %H:%M UTC')

export BENCH_ROUNDS=$rounds BENCH_DURATION=$duration BENCH_CONNECTIONS=$connections \
  BENCH_SIZE=$size BENCH_PIPELINE=$pipeline BENCH_PIN_NOTE=$pin_note BENCH_PINNING=$pinning \
  BENCH_SERVER_CPU=$server_cpu BENCH_CLIENT_CPU=$client_cpu BENCH_BENCH_DURATION=$bench_duration \
  BENCH_CPU_MODEL=$cpu_model BENCH_ONLINE=$online BENCH_USABLE=$usable BENCH_KERNEL=$kernel \
  BENCH_GXX=$gxx BENCH_BOOST=${boost:-unknown} BENCH_COMMIT=$commit BENCH_GOVERNOR=$governor \
  BENCH_DATE=$today BENCH_OVERRIDDEN=$overridden \
  BENCH_SERVERS="${servers[*]}" \
  BENCH_CLIENT="${bench_cmd[*]}" BENCH_CLK_TCK=$clk_tck BENCH_SETTLE=$SETTLE_S BENCH_BUSY=$busy_note \
  BENCH_BUILD_TYPE=${build_type:-unknown}
for name in "${servers[@]}"; do
  export "BENCH_LABEL_$name=${server_label[$name]:-$name}" "BENCH_CMD_$name=${server_cmdline[$name]}"
done
"$PY" - "$results" "$out" <<'EOF'
import math, os, statistics, sys

results, out = sys.argv[1], sys.argv[2]
E = os.environ
cols = ["round", "server", "msgs_per_sec", "messages", "duration_s", "p50_us", "p99_us",
        "p999_us", "cpu_s", "cpu_us_per_msg", "wall_s"]
rows = []
with open(results) as f:
    for line in f:
        r = dict(zip(cols, line.rstrip("\n").split("\t")))
        for k in cols[2:]:
            r[k] = float(r[k])
        r["round"] = int(r["round"])
        r["cpu_util"] = r["cpu_s"] / r["wall_s"] if r["wall_s"] > 0 else math.nan
        rows.append(r)

SERVERS = E["BENCH_SERVERS"].split()
LABEL = {s: E.get(f"BENCH_LABEL_{s}", s).strip() or s for s in SERVERS}
METRICS = [  # key, header, format, better
    ("msgs_per_sec", "msgs/s", "{:,.0f}", "higher"),
    ("p50_us", "p50 µs", "{:,.1f}", "lower"),
    ("p99_us", "p99 µs", "{:,.1f}", "lower"),
    ("p999_us", "p99.9 µs", "{:,.1f}", "lower"),
    ("cpu_us_per_msg", "server CPU µs/msg", "{:.3f}", "lower"),
    ("cpu_util", "server CPU use", "{:.0%}", "-"),
]

def fmt(fmtstr, v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmtstr.format(v)

def median(server, key):
    vals = [r[key] for r in rows if r["server"] == server and not math.isnan(r[key])]
    return statistics.median(vals) if vals else math.nan

def table_row(cells):
    return "| " + " | ".join(cells) + " |"

med = {s: {k: median(s, k) for k, *_ in METRICS} for s in SERVERS}
lines = [table_row(["server"] + [h for _, h, _, _ in METRICS]),
         table_row(["---"] + ["---:"] * len(METRICS))]
for s in SERVERS:
    lines.append(table_row([LABEL[s]] + [fmt(f, med[s][k]) for k, _, f, _ in METRICS]))
for peer in SERVERS[1:]:
    ratio = []
    for k, _, _, better in METRICS:
        a, b = med[SERVERS[0]][k], med[peer][k]
        if better == "-":
            ratio.append("")
        elif math.isnan(a) or math.isnan(b) or b == 0:
            ratio.append("n/a")
        else:
            ratio.append(f"**{a / b:.2f}×**")
    lines.append(table_row([f"**{LABEL[SERVERS[0]]} / {LABEL[peer].split()[0]}**"] + ratio))
summary = "\n".join(lines)

raw = [table_row(["round", "server", "msgs/s", "messages", "p50 µs", "p99 µs", "p99.9 µs",
                  "server CPU s", "server CPU µs/msg", "server CPU use"]),
       table_row(["---:", "---"] + ["---:"] * 8)]
for r in sorted(rows, key=lambda r: (r["round"], SERVERS.index(r["server"]))):
    raw.append(table_row([str(r["round"]), LABEL[r["server"]], fmt("{:,.0f}", r["msgs_per_sec"]),
                          fmt("{:,.0f}", r["messages"]), fmt("{:,.1f}", r["p50_us"]),
                          fmt("{:,.1f}", r["p99_us"]), fmt("{:,.1f}", r["p999_us"]),
                          fmt("{:.2f}", r["cpu_s"]), fmt("{:.3f}", r["cpu_us_per_msg"]),
                          fmt("{:.0%}", r["cpu_util"])]))
raw_table = "\n".join(raw)

unsaturated = [LABEL[s] for s in SERVERS if not math.isnan(med[s]["cpu_util"]) and med[s]["cpu_util"] < 0.9]
saturation_note = ""
if unsaturated:
    who = (f"{unsaturated[0]} used" if len(unsaturated) == 1
           else f"{' and '.join(unsaturated)} each used")
    saturation_note = (f"\n> **Caution:** {who} under 90% of its core, so the "
                       "server was not the only limit: the load generator, the kernel's loopback work, "
                       "or other load on the machine capped the throughput. Compare CPU µs/msg rather "
                       "than msgs/s, or rerun on a quiet machine.\n")

n = int(E["BENCH_ROUNDS"])
params = (f"{E['BENCH_CONNECTIONS']} connections, {E['BENCH_SIZE']}-byte binary messages, "
          f"{E['BENCH_PIPELINE']} in flight per connection, {E['BENCH_DURATION']} s per run, "
          f"median of {n} round{'s' if n != 1 else ''}")
how_to_read = ("Ratio rows: tether's median divided by the peer's. For msgs/s above 1× means tether "
               "is faster; for latency and CPU µs/msg below 1× means tether is better.")

print(f"\n{params}; {E['BENCH_PIN_NOTE']}; machine {E['BENCH_BUSY']}.\n")
print(summary)
print(f"\n{how_to_read}\n{saturation_note}\nPer run:\n")
print(raw_table)
if E["BENCH_OVERRIDDEN"].strip():
    print(f"\nNOTE: run with overrides ({E['BENCH_OVERRIDDEN'].strip()}): not the standard comparison.")

if not out:
    sys.exit(0)

pinned = E["BENCH_PINNING"] == "1"
sp = f"taskset -c {E['BENCH_SERVER_CPU']} " if pinned else ""
cp = f"taskset -c {E['BENCH_CLIENT_CPU']} " if pinned else ""
client = (f"{cp}{E['BENCH_CLIENT']} ws://127.0.0.1:PORT --connections {E['BENCH_CONNECTIONS']} "
          f"--size {E['BENCH_SIZE']} --pipeline {E['BENCH_PIPELINE']} "
          f"--duration {E['BENCH_BENCH_DURATION']} --json")
run_args = f"--rounds {n} --duration {E['BENCH_DURATION']}"
for flag, key, default in (("--connections", "BENCH_CONNECTIONS", "100"), ("--size", "BENCH_SIZE", "16"),
                           ("--pipeline", "BENCH_PIPELINE", "16")):
    if E[key] != default:
        run_args += f" {flag} {E[key]}"

server_cmds = "\n".join(sp + E[f"BENCH_CMD_{s}"] + f"    # {LABEL[s]}" for s in SERVERS)
override_note = ""
if E["BENCH_OVERRIDDEN"].strip():
    override_note = (f"\n> **Note:** these figures were produced with overridden commands "
                     f"({E['BENCH_OVERRIDDEN'].strip()}), not the standard comparison.\n")

doc = f"""## tether vs Boost.Beast: pipelined echo (bench/run.sh)

Echo throughput, round-trip latency and server CPU cost of `tether serve --mode echo`
against a Boost.Beast echo server (`bench/peers/beast_echo.cpp`), both driven by
`tether bench` on the same machine. Written by `bench/run.sh --out docs/bench.md`, which
rewrites only this section.
{override_note}
### Results

{params}; {E['BENCH_PIN_NOTE']}; machine {E['BENCH_BUSY']}.

{summary}

{how_to_read} "Server CPU use" is the server's CPU time over the run's wall time
(100% means its one core was saturated).
{saturation_note}
Per run:

{raw_table}

### Machine

- CPU: {E['BENCH_CPU_MODEL']}; {E['BENCH_ONLINE']} CPUs online, {E['BENCH_USABLE']} usable by the benchmark; frequency governor: {E['BENCH_GOVERNOR']}
- Load: machine {E['BENCH_BUSY']}
- Kernel: {E['BENCH_KERNEL']}
- Compiler: {E['BENCH_GXX']}
- Boost: {E['BENCH_BOOST']} (header-only Beast and Asio)
- tether commit: {E['BENCH_COMMIT']}
- Date: {E['BENCH_DATE']}

### Reproduce

```sh
make bench          # configures with -DTETHER_BUILD_BENCH=ON, builds, runs bench/run.sh
```

or step by step, from the repo root:

```sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTETHER_BUILD_BENCH=ON && cmake --build build -j
bench/run.sh {run_args} --out docs/bench.md
```

One run by hand (read PORT from the server's first line, `listening ws://127.0.0.1:PORT`):

```sh
{server_cmds}
{client}
```

### Method

- **Closed loop.** Each of the {E['BENCH_CONNECTIONS']} connections keeps {E['BENCH_PIPELINE']}
  binary messages of {E['BENCH_SIZE']} bytes in flight and sends a new one only when an echo
  comes back, so throughput is what the server sustains, and latency is the full round trip
  seen by the client, queueing included (no coordinated-omission correction).
- **CPU placement.** {E['BENCH_PIN_NOTE'][0].upper() + E['BENCH_PIN_NOTE'][1:]}. Both servers run
  one event-loop thread (`--threads 1` for tether; Beast's peer is single-threaded), so the figures
  compare per-core efficiency.
- **Server CPU.** utime + stime of the server process (all threads) from `/proc/PID/stat`, read just
  before the load starts and just after it ends (clock ticks at {E['BENCH_CLK_TCK']} Hz), divided by the
  messages echoed. It includes the handshakes of the {E['BENCH_CONNECTIONS']} connections, which is
  negligible at these message counts.
- **Medians, interleaved.** Every round runs tether then Beast, each on a freshly started server,
  with a {E['BENCH_SETTLE']} s pause between runs; the table shows the median
  over {n} round{'s' if n != 1 else ''} of each figure independently. Interleaving spreads slow
  drift (thermal, noisy neighbours) over both servers instead of one.
- **Build.** Same compiler for both; tether as configured in `build/` (CMAKE_BUILD_TYPE
  {E['BENCH_BUILD_TYPE']}; Release means -O3 -DNDEBUG), the Beast peer at -O3 -DNDEBUG
  (`bench/CMakeLists.txt`).
- **Same wire.** No compression (permessage-deflate off on both), TCP_NODELAY on both, loopback
  TCP on 127.0.0.1, plain `ws://`.
- **What differs.** The Beast peer is the idiomatic echo: one `async_write`, hence one `sendmsg`,
  per message. A server that gathers the replies to several pipelined messages into one send
  spends far fewer syscalls per message; with `--pipeline 1` that advantage mostly disappears
  and the figures compare per-message framing and dispatch cost instead.
"""
sys.path.insert(0, "bench")   # run.sh works from the repo root
from md_section import write_section
write_section(out, "run", doc)   # only this script's section; the rest of the page stays
print(f"\nrewrote the run section of {out}", file=sys.stderr)
EOF
