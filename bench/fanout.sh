#!/usr/bin/env bash
# bench/fanout.sh: fan-out throughput, one publisher to N subscribers, tether vs Node `ws`.
#
#   bench/fanout.sh [--rounds 3] [--duration 10] [--subscribers 5000] [--size 64] [--burst 100]
#                   [--out docs/bench.md]
#
# Each round starts each broadcast server in turn (tether, node, tether, node, ...) pinned to
# CPU 0: `tether serve --mode broadcast --ping-interval 0` and bench/peers/ws_broadcast.js (Node
# `ws`). Pinned to CPU 1, build/bench/fanout_bench opens the subscribers and one publisher on one
# tether::Loop and publishes bursts of --burst messages, each burst only once every subscriber
# has received all of the previous one, for --duration seconds. Recorded per run: deliveries/s
# (subscriber receptions), the server's CPU time (utime+stime from /proc/PID/stat, read by
# fanout_bench at the first burst and after the last) per delivery, and the CPU time of
# everything else on the machine during the run; a run where other processes used more than 10%
# of the machine is repeated (up to twice) and the report says so. Prints a markdown table of
# the medians and the ratio tether / node; --out rewrites its section of FILE (between
# <!-- fanout begin --> and <!-- fanout end -->; bench/md_section.py).
#
# Run from anywhere after building with -DTETHER_BUILD_BENCH=ON and `scripts/deps.sh` (Node
# `ws` in tests/interop/node_modules). Needs: Linux /proc, bash, taskset, timeout, python3,
# /usr/bin/node, 2 CPUs, a descriptor limit above subscribers + 1,100.
# Overrides (environment): TETHER_BIN (build/tether), FANOUT_BIN (build/bench/fanout_bench),
# NODE (/usr/bin/node), WS_NODE_PATH (tests/interop/node_modules), SERVER_CPU (0),
# CLIENT_CPU (1), TETHER_COMMIT (the commit named in the report). The binaries are copied to a
# scratch directory first, so a rebuild during the runs does not change what is measured.
set -euo pipefail

LISTEN_WAIT_S=10   # the server's `listening` line must appear within this
STOP_WAIT_S=5      # SIGTERM grace period before SIGKILL
SETTLE_S=2         # pause between runs (sockets in TIME_WAIT)
MAX_RETRIES=2      # re-runs of a disturbed run
OTHER_MAX=10       # % of the machine used by other processes above which a run is disturbed
PY=/usr/bin/python3

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "fanout.sh: $*" >&2; exit 1; }
log() { echo "fanout.sh: $*" >&2; }

rounds=3 duration=10 subscribers=5000 size=64 burst=100 out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --subscribers) subscribers=${2:?--subscribers needs a value}; shift 2 ;;
    --size) size=${2:?--size needs a value}; shift 2 ;;
    --burst) burst=${2:?--burst needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
duration=${duration%s}
for v in rounds duration subscribers size burst; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v must be a positive integer (got '${!v}')"
done
(( size >= 8 )) || die "--size must be at least 8 (the sequence number)"
if [[ -n $out && $out != /* ]]; then out="$PWD/$out"; fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
TETHER_BIN=${TETHER_BIN:-build/tether}
FANOUT_BIN=${FANOUT_BIN:-build/bench/fanout_bench}
NODE=${NODE:-/usr/bin/node}
WS_NODE_PATH=${WS_NODE_PATH:-$repo/tests/interop/node_modules}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
hint="build: cmake -S . -B build -DTETHER_BUILD_BENCH=ON && cmake --build build -j"
[[ -x $TETHER_BIN ]] || die "$TETHER_BIN not found ($hint)"
[[ -x $FANOUT_BIN ]] || die "$FANOUT_BIN not found ($hint)"
[[ -x $NODE ]] || die "node not found at $NODE"
[[ -f $WS_NODE_PATH/ws/package.json ]] || die "Node ws not found in $WS_NODE_PATH (run scripts/deps.sh)"
for tool in taskset timeout awk; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed"
done
[[ -x $PY ]] || die "$PY is needed"
[[ -r /proc/self/stat ]] || die "/proc is needed"
(( $(nproc) >= 2 )) || die "needs 2 CPUs (server and load generator pinned apart)"
clk_tck=$(getconf CLK_TCK)
ws_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$WS_NODE_PATH/ws/package.json" | head -1)
node_version=$("$NODE" --version)
commit=${TETHER_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
dirty=""
if [[ -z ${TETHER_COMMIT:-} ]] && ! git diff --quiet HEAD -- src include tools 2>/dev/null; then
  dirty=" (working tree has uncommitted changes in src/, include/ or tools/)"
fi

# ---- descriptors: each process holds one per connection (server and bench are separate).
need_fds=$(( subscribers + 1100 ))
cur_fds=$(ulimit -Sn)
if [[ $cur_fds != unlimited ]] && (( cur_fds < need_fds )); then
  ulimit -Sn "$need_fds" 2>/dev/null ||
    die "need $need_fds file descriptors; the hard limit is $(ulimit -Hn)"
  log "ulimit -n: $cur_fds -> $(ulimit -Sn)"
fi
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
(( subscribers + 1 < port_hi - port_lo - 100 )) ||
  die "$((subscribers + 1)) connections need as many ephemeral ports (ip_local_port_range $port_lo-$port_hi)"

# ---- scratch space (binaries copied: a concurrent rebuild must not change them) and cleanup
work=$(mktemp -d "${TMPDIR:-/tmp}/tether-fanout.XXXXXX")
cp "$TETHER_BIN" "$work/tether"
cp "$FANOUT_BIN" "$work/fanout_bench"
cp "$repo/bench/peers/ws_broadcast.js" "$work/ws_broadcast.js"
server_pid="" bench_pid="" keep_work=0
stop_pid() {  # SIGTERM, bounded wait, then SIGKILL
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for (( i = 0; i < STOP_WAIT_S * 10; ++i )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  [[ -n $bench_pid ]] && stop_pid "$bench_pid"
  [[ -n $server_pid ]] && stop_pid "$server_pid"
  if [[ $rc -ne 0 || $keep_work -eq 1 ]]; then log "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

servers=(tether node)
declare -A server_cmd=(
  [tether]="$work/tether serve --host 127.0.0.1 --port 0 --mode broadcast --ping-interval 0"
  [node]="$NODE $work/ws_broadcast.js 0"
)
declare -A server_doc=(   # as printed in the report
  [tether]="build/tether serve --host 127.0.0.1 --port 0 --mode broadcast --ping-interval 0"
  [node]="NODE_PATH=tests/interop/node_modules node bench/peers/ws_broadcast.js 0"
)
declare -A server_label=([tether]="tether" [node]="Node ws $ws_version")

wait_for_line() {  # FILE REGEX SECONDS PID: until FILE has a line matching REGEX
  local i
  for (( i = 0; i < $3 * 10; ++i )); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Busy (user+nice+system: processes) and total ticks of the whole machine. Interrupt and softirq
# time is left out of "busy": the kernel accounts the loopback traffic's receive processing
# there, not to the processes, so it belongs to the benchmark itself.
machine_ticks() { awk '/^cpu / { print $2+$3+$4, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }
softirq_ticks() { awk -v c="cpu$1" '$1 == c { print $8 }' /proc/stat; }
child_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' /proc/$$/stat; }  # waited children
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

results="$work/results.tsv"
: >"$results"
disturbed_notes=()

# One run: appends a line to $results; returns 3 when disturbed (and the figures are not kept).
run_one() {
  local name=$1 round=$2 attempt=$3 tag="$1-r$2-a$3"
  local sout="$work/server-$tag.out" serr="$work/server-$tag.err"
  local bout="$work/bench-$tag.out" berr="$work/bench-$tag.err"
  rm -f "$sout" "$serr" "$bout" "$berr"
  log "---- round $round: $name$( (( attempt > 1 )) && echo " (attempt $attempt)")"
  local -a cmd
  read -r -a cmd <<<"${server_cmd[$name]}"
  NODE_PATH=$WS_NODE_PATH taskset -c "$SERVER_CPU" "${cmd[@]}" >"$sout" 2>"$serr" &
  server_pid=$!
  wait_for_line "$sout" '^listening ws://' "$LISTEN_WAIT_S" "$server_pid" ||
    die "$name did not print 'listening' within $LISTEN_WAIT_S s (stderr: $(head -3 "$serr"))"
  local port
  port=$(sed -n 's|^listening ws://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$sout" | head -1)
  [[ -n $port ]] || die "could not read the port from: $(head -1 "$sout")"
  sleep 0.5

  local m0 m1 c0 c1 s0 s1 q0 q1 rc=0
  m0=$(machine_ticks); c0=$(child_ticks); s0=$(proc_ticks "$server_pid"); q0=$(softirq_ticks "$SERVER_CPU")
  # Bounded: connecting (~1 s per 1,000), the run, and up to 10 s for the last burst and 10 s
  # for closing.
  timeout -k 5 $(( duration + subscribers / 200 + 60 )) \
    taskset -c "$CLIENT_CPU" "$work/fanout_bench" "ws://127.0.0.1:$port/" \
      --subscribers "$subscribers" --size "$size" --burst "$burst" --duration "$duration" \
      --server-pid "$server_pid" >"$bout" 2>"$berr" &
  bench_pid=$!
  wait "$bench_pid" || rc=$?
  bench_pid=""
  m1=$(machine_ticks); c1=$(child_ticks); s1=$(proc_ticks "$server_pid"); q1=$(softirq_ticks "$SERVER_CPU")
  stop_pid "$server_pid"; server_pid=""

  # Other load: all CPUs' busy ticks minus the server's and the bench's own.
  local other
  other=$(awk -v a="$m0" -v b="$m1" -v c0="$c0" -v c1="$c1" -v s0="$s0" -v s1="$s1" 'BEGIN {
    split(a, x); split(b, y); busy = y[1] - x[1]; total = y[2] - x[2]
    o = busy - (s1 - s0) - (c1 - c0); if (o < 0) o = 0
    printf "%.1f", 100 * o / (total + 1e-9) }')
  local json
  json=$(grep -m1 '^{' "$bout" || true)
  if (( rc != 0 )) || [[ -z $json ]]; then
    if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN { exit !(o > m) }' && (( attempt <= MAX_RETRIES )); then
      log "fanout_bench failed ($(grep -m1 'FAILED' "$berr" || tail -1 "$berr")) while other processes used $other% of the machine: running it again"
      disturbed_notes+=("round $round, $name, attempt $attempt: failed ($(grep -m1 -o 'FAILED: .*' "$berr" | sed 's/^FAILED: //')) while other processes used $other% of the machine; discarded and run again")
      return 3
    fi
    keep_work=1
    log "fanout_bench exited $rc: $(grep -m1 'FAILED' "$berr" || tail -1 "$berr") (other load $other%)"
    log "  $json"
    [[ -s $serr ]] && log "server stderr: $(head -3 "$serr" | tr '\n' ' ')"
    echo -e "$round\t$name\tFAILED\t$json" >>"$results"
    return 0
  fi
  log "$json"
  log "other processes used $other% of the machine during the run"
  [[ -s $serr ]] && log "server stderr: $(head -3 "$serr" | tr '\n' ' ')"
  if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN { exit !(o > m) }'; then
    if (( attempt <= MAX_RETRIES )); then
      disturbed_notes+=("round $round, $name, attempt $attempt: other processes used $other% of the machine; discarded and run again")
      log "disturbed (other load $other% > $OTHER_MAX%): running it again"
      return 3
    fi
    disturbed_notes+=("round $round, $name, attempt $attempt: other processes used $other% of the machine; still disturbed after $MAX_RETRIES re-runs, kept")
    log "still disturbed after $MAX_RETRIES re-runs: keeping it (marked)"
  fi
  echo -e "$round\t$name\tOK\t$json\t$other\t$attempt\t$(( q1 - q0 ))" >>"$results"
}

read -r b0 _ < <(machine_ticks); read -r _ t0 < <(machine_ticks)
sleep 1
read -r b1 t1 < <(machine_ticks)
busy_before=$(awk -v a="$b0" -v b="$b1" -v s="$t0" -v t="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / (t - s + 1e-9) }')
log "machine $busy_before% busy in the second before the runs; server on CPU $SERVER_CPU, fanout_bench on CPU $CLIENT_CPU; logs in $work"
for (( round = 1; round <= rounds; ++round )); do
  for name in "${servers[@]}"; do
    attempt=1
    while :; do
      r=0; run_one "$name" "$round" "$attempt" || r=$?
      sleep "$SETTLE_S"
      (( r == 3 )) || break
      attempt=$(( attempt + 1 ))
    done
  done
done

kernel=$(uname -r)
today=$(date -u '+%Y-%m-%d %H:%M UTC')
disturbed_text=$(printf '%s\n' "${disturbed_notes[@]+"${disturbed_notes[@]}"}")
export FO_ROUNDS=$rounds FO_DURATION=$duration FO_SUBS=$subscribers FO_SIZE=$size FO_BURST=$burst \
  FO_CLK_TCK=$clk_tck FO_SERVER_CPU=$SERVER_CPU FO_CLIENT_CPU=$CLIENT_CPU FO_BUSY=$busy_before FO_COMMIT="$commit$dirty" \
  FO_LABEL_tether="${server_label[tether]}" FO_LABEL_node="${server_label[node]}" \
  FO_CMD_tether="${server_doc[tether]}" FO_CMD_node="${server_doc[node]}" \
  FO_NODE_VERSION=$node_version FO_KERNEL="$kernel" FO_DATE="$today" \
  FO_OTHER_MAX=$OTHER_MAX FO_DISTURBED="$disturbed_text"
"$PY" - "$results" "$out" <<'EOF'
import json, os, statistics, sys
results, out = sys.argv[1], sys.argv[2]
E = os.environ
SERVERS = ["tether", "node"]
LABEL = {s: E[f"FO_LABEL_{s}"] for s in SERVERS}
runs, failed = [], []
for line in open(results):
    f = line.rstrip("\n").split("\t")
    if f[2] != "OK":
        failed.append((int(f[0]), f[1], f[3] if len(f) > 3 else ""))
        continue
    j = json.loads(f[3])
    cpu = j.get("server_cpu_s")
    runs.append(dict(round=int(f[0]), server=f[1], rate=j["deliveries_per_sec"],
                     deliveries=j["deliveries"], seconds=j["seconds"], bursts=j["bursts"],
                     missing=j["missing"], cpu=cpu,
                     us=(cpu * 1e6 / j["deliveries"]) if cpu is not None and j["deliveries"] else None,
                     use=(cpu / j["seconds"]) if cpu is not None and j["seconds"] else None,
                     other=float(f[4]), attempt=int(f[5]),
                     sirq=int(f[6]) * 1e6 / int(E["FO_CLK_TCK"]) / j["deliveries"] if j["deliveries"] else None))

def med(s, k):
    v = [r[k] for r in runs if r["server"] == s and r[k] is not None]
    return statistics.median(v) if v else None

def fmt(f, v):
    return "n/a" if v is None else f.format(v)

n = int(E["FO_ROUNDS"])
lines = ["| server | deliveries/s | server CPU µs/delivery | server CPU use | bursts per run | missing |",
         "| --- | ---: | ---: | ---: | ---: | ---: |"]
m = {s: {k: med(s, k) for k in ("rate", "us", "use", "bursts")} for s in SERVERS}
for s in SERVERS:
    miss = sum(r["missing"] for r in runs if r["server"] == s)
    lines.append(f"| {LABEL[s]} | {fmt('{:,.0f}', m[s]['rate'])} | {fmt('{:.3f}', m[s]['us'])} | "
                 f"{fmt('{:.0%}', m[s]['use'])} | {fmt('{:.0f}', m[s]['bursts'])} | {miss} |")
a, b = m["tether"], m["node"]
ratio = lambda k: f"**{a[k] / b[k]:.2f}×**" if a[k] and b[k] else "n/a"
lines.append(f"| **tether / {LABEL['node'].split()[0]} {LABEL['node'].split()[1]}** | {ratio('rate')} | {ratio('us')} |  |  |  |")
summary = "\n".join(lines)
raw = ["| round | server | deliveries/s | deliveries | seconds | bursts | missing | server CPU s | µs/delivery | server CPU use | softirq µs/delivery | other load |",
       "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for r in sorted(runs, key=lambda r: (r["round"], SERVERS.index(r["server"]))):
    raw.append(f"| {r['round']} | {LABEL[r['server']]} | {r['rate']:,.0f} | {r['deliveries']:,} | "
               f"{r['seconds']:.2f} | {r['bursts']} | {r['missing']} | {fmt('{:.2f}', r['cpu'])} | "
               f"{fmt('{:.3f}', r['us'])} | {fmt('{:.0%}', r['use'])} | {fmt('{:.3f}', r['sirq'])} | {r['other']:.1f}% |")
raw_table = "\n".join(raw)
params = (f"{int(E['FO_SUBS']):,} subscribers + 1 publisher, bursts of {E['FO_BURST']} binary messages "
          f"of {E['FO_SIZE']} bytes, {E['FO_DURATION']} s per run, median of {n} round{'s' if n != 1 else ''}; "
          f"server on CPU {E['FO_SERVER_CPU']}, fanout_bench on CPU {E['FO_CLIENT_CPU']}; "
          f"machine {E['FO_BUSY']}% busy in the second before the runs")
disturbed = [d for d in E.get("FO_DISTURBED", "").split("\n") if d]
notes = ""
if disturbed:
    notes += (f"\nDisturbed runs (other processes used more than {E['FO_OTHER_MAX']}% of the machine; "
              "discarded attempts are not in the tables):\n\n" + "\n".join(f"- {d}" for d in disturbed) + "\n")
if failed:
    notes += "\nFailed runs (not in the tables):\n\n" + "\n".join(f"- round {r}, {s}: `{j}`" for r, s, j in failed) + "\n"
print(f"\n{params}.\n\n{summary}\n\nPer run:\n\n{raw_table}\n{notes}")
if not out:
    sys.exit(0)
size, subs, burst, dur = E["FO_SIZE"], E["FO_SUBS"], E["FO_BURST"], E["FO_DURATION"]
args = f"--rounds {n} --duration {dur}"
for flag, v, d in (("--subscribers", subs, "5000"), ("--size", size, "64"), ("--burst", burst, "100")):
    if v != d:
        args += f" {flag} {v}"
sc, cc = E["FO_SERVER_CPU"], E["FO_CLIENT_CPU"]
section = f"""
## Fan-out: one publisher, 5,000 subscribers

Delivered messages per second when one connection publishes and the server forwards every
message to every open connection (`tether serve --mode broadcast`), against Node `ws` doing the
same (`bench/peers/ws_broadcast.js`: iterate `wss.clients`, `ws.send(data, {{ binary }})` to each
open one). A delivery is one message received by one subscriber. Measured with:

```sh
cmake -S . -B build -DTETHER_BUILD_BENCH=ON && cmake --build build -j2
bench/fanout.sh {args} --out docs/bench.md
# one run by hand (read PORT from the server's first line; PID is the server's):
taskset -c {sc} {E['FO_CMD_tether']}
NODE_PATH=tests/interop/node_modules taskset -c {sc} node bench/peers/ws_broadcast.js 0
taskset -c {cc} build/bench/fanout_bench ws://127.0.0.1:PORT/ --subscribers {subs} --size {size} --burst {burst} --duration {dur} --server-pid PID
```

{params}.

{summary}

Per run:

{raw_table}
{notes}
**Method.**

- `fanout_bench` (`bench/fanout_bench.cpp`) opens the {int(subs):,} subscribers, 200 at a time,
  then the publisher, all `tether::Client`s on one `tether::Loop` (heartbeats and reconnects
  off). The publisher sends a burst of {burst} binary messages of {size} bytes, numbered; the
  next burst starts as soon as every subscriber has received every message of this one, so
  at most {int(burst) * int(subs):,} deliveries are in flight. After {dur} s no new burst starts
  and the one in flight completes. A burst that takes over 10 s fails the run.
- Every subscriber checks that it receives every sequence number once and in order; `missing`
  counts the messages some subscriber never received (0 in every run above). The publisher's
  own copies (the server sends it every message too) are not counted as deliveries.
- Server CPU: utime+stime from `/proc/PID/stat`, read by `fanout_bench` when the first burst
  starts and after the last one completes (handshakes excluded; clock ticks at 100 Hz), divided
  by the deliveries. "Server CPU use" is that CPU time over the measured wall time: near 100%
  means the server's one core was the limit; well under means the load generator (one thread
  receiving every delivery) was.
- Both servers are single-threaded (tether's default `--threads 1`; Node's one event loop),
  pinned to CPU {sc}; the load generator to CPU {cc}. Rounds interleave the servers on freshly
  started processes, 2 s apart. No compression, plain `ws://` over loopback TCP.
- Softirq: the kernel accounts the receive processing of loopback traffic as softirq time
  of the CPU that sent it, not to any process, so the server's CPU figure leaves it out. The
  per-run column "softirq µs/delivery" is CPU {sc}'s softirq time over the whole run
  (handshakes included) per delivery: mostly the TCP receive work for what the server sent.
- Other load: the machine's user+system time during each run (whole run, handshakes
  included) minus the server's and the bench's own, as a share of both CPUs; above
  {E['FO_OTHER_MAX']}% the run is repeated (up to twice).

tether {E['FO_COMMIT']}; Node {E['FO_NODE_VERSION']}, ws {LABEL['node'].split()[-1]}; Linux {E['FO_KERNEL']}; {E['FO_DATE']}.
"""
sys.path.insert(0, "bench")   # fanout.sh works from the repo root
from md_section import write_section
write_section(out, "fanout", section)   # only this script's section; the rest of the page stays
print(f"rewrote the fanout section of {out}", file=sys.stderr)
EOF
if grep -q $'\tFAILED\t' "$results"; then die "some runs failed (see above)"; fi
