#!/usr/bin/env bash
# bench/fanout.sh: fan-out throughput, one publisher to N subscribers, tether vs Node `ws`
# (issue 8: W6 plain, W7 with TLS and with permessage-deflate on text JSON).
#
#   bench/fanout.sh [--rounds 3] [--duration 10] [--subscribers 5000] [--size 64] [--burst 100]
#                   [--variants plain,tls,deflate] [--deflate-size 256] [--burst-timeout 60]
#                   [--build build] [--out docs/bench.md]
#
# Variants (--variants, comma-separated; default all three):
#   plain    W6: ws://, binary messages of --size bytes.
#   tls      W7: the same over wss:// (`tether serve --tls-cert F --tls-key F`; ws on an
#            https.Server), with a throwaway self-signed P-256 certificate for 127.0.0.1 made with
#            openssl in the scratch directory; fanout_bench trusts exactly that certificate (--ca).
#   deflate  W7: ws://, permessage-deflate (`tether serve --deflate`; ws_broadcast.js --deflate,
#            set up like tether's defaults), TEXT messages that are JSON objects of
#            --deflate-size bytes ({"seq":N,"user":...,"text":"words ..."}).
# Each round runs every variant, and for each variant each broadcast server in turn (tether,
# node) pinned to CPU 0: `tether serve --mode broadcast --ping-interval 0 --log-level warn` and
# bench/peers/ws_broadcast.js (Node `ws`). Pinned to CPU 1, build/bench/fanout_bench opens the
# subscribers and one publisher on one tether::Loop and publishes bursts of --burst messages,
# each burst only once every subscriber has received all of the previous one, for --duration
# seconds (a burst not complete within --burst-timeout seconds fails the run). Recorded per run:
# deliveries/s (subscriber receptions), the server's CPU time (utime+stime from /proc/PID/stat,
# read by fanout_bench at the first burst and after the last) per delivery, the subscribers'
# socket bytes per delivery, the server's RSS at the end, and the CPU time of everything else on
# the machine during the run; a run where other processes used more than 10% of the machine is
# repeated (up to twice) and the report says so. Prints markdown tables of the medians and the
# ratio tether / node per variant; --out rewrites its section of FILE (between
# <!-- fanout begin --> and <!-- fanout end -->; bench/md_section.py).
#
# Run from anywhere after building with -DTETHER_BUILD_BENCH=ON and `scripts/deps.sh` (Node
# `ws` in tests/interop/node_modules). Needs: Linux /proc, bash, taskset, timeout, python3,
# /usr/bin/node, openssl (tls variant), 2 CPUs, a descriptor limit above subscribers + 1,100.
# --build DIR: the build directory holding tether and bench/fanout_bench (default build).
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

rounds=3 duration=10 subscribers=5000 size=64 burst=100 out="" variants=plain,tls,deflate
deflate_size=256 burst_timeout=60 build_dir=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --variants) variants=${2:?--variants needs a value}; shift 2 ;;
    --deflate-size) deflate_size=${2:?--deflate-size needs a value}; shift 2 ;;
    --burst-timeout) burst_timeout=${2:?--burst-timeout needs a value}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --subscribers) subscribers=${2:?--subscribers needs a value}; shift 2 ;;
    --size) size=${2:?--size needs a value}; shift 2 ;;
    --burst) burst=${2:?--burst needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --build) build_dir=${2:?--build needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
duration=${duration%s} burst_timeout=${burst_timeout%s}
for v in rounds duration subscribers size burst deflate_size burst_timeout; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} must be a positive integer (got '${!v}')"
done
(( size >= 8 )) || die "--size must be at least 8 (the sequence number)"
(( deflate_size >= 80 )) || die "--deflate-size must be at least 80 (the JSON fields around the text)"
IFS=, read -r -a variant_list <<<"$variants"
(( ${#variant_list[@]} )) || die "--variants is empty"
declare -A seen_variant=()
for v in "${variant_list[@]}"; do
  [[ $v =~ ^(plain|tls|deflate)$ ]] || die "unknown variant '$v' (plain, tls, deflate)"
  [[ -z ${seen_variant[$v]:-} ]] || die "variant '$v' given twice"
  seen_variant[$v]=1
done
if [[ -n $out && $out != /* ]]; then out="$PWD/$out"; fi
# --build relative to where the script was started (the default, build, to the repo root).
if [[ $build_dir != build && $build_dir != /* ]]; then build_dir="$PWD/$build_dir"; fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
TETHER_BIN=${TETHER_BIN:-$build_dir/tether}
FANOUT_BIN=${FANOUT_BIN:-$build_dir/bench/fanout_bench}
NODE=${NODE:-/usr/bin/node}
WS_NODE_PATH=${WS_NODE_PATH:-$repo/tests/interop/node_modules}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
hint="build: cmake -S . -B $build_dir -DTETHER_BUILD_BENCH=ON && cmake --build $build_dir -j"
[[ -x $TETHER_BIN ]] || die "$TETHER_BIN not found ($hint)"
[[ -x $FANOUT_BIN ]] || die "$FANOUT_BIN not found ($hint)"
[[ -x $NODE ]] || die "node not found at $NODE"
[[ -f $WS_NODE_PATH/ws/package.json ]] || die "Node ws not found in $WS_NODE_PATH (run scripts/deps.sh)"
for tool in taskset timeout awk; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed"
done
if [[ -n ${seen_variant[tls]:-} ]]; then
  command -v openssl >/dev/null 2>&1 || die "'openssl' is needed for the tls variant (a throwaway certificate)"
fi
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
# tls: a throwaway self-signed certificate for 127.0.0.1 / localhost (P-256, 2 days).
if [[ -n ${seen_variant[tls]:-} ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" >"$work/openssl.log" 2>&1 ||
    { rm -rf "$work"; die "openssl could not make a certificate: $(tail -1 "$work/openssl.log" 2>/dev/null)"; }
fi
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
# Per variant: the servers' extra arguments, fanout_bench's, and the message size.
declare -A variant_server_args=(
  [plain]="" [tls]="--tls-cert $work/cert.pem --tls-key $work/key.pem" [deflate]="--deflate"
)
declare -A variant_server_doc=(   # as printed in the report
  [plain]="" [tls]=" --tls-cert cert.pem --tls-key key.pem" [deflate]=" --deflate"
)
declare -A variant_bench_args=(
  [plain]="" [tls]="--ca $work/cert.pem" [deflate]="--json --deflate"
)
declare -A variant_bench_doc=(
  [plain]="" [tls]=" --ca cert.pem" [deflate]=" --json --deflate"
)
declare -A variant_size=([plain]=$size [tls]=$size [deflate]=$deflate_size)
declare -A server_cmd=(
  [tether]="$work/tether serve --host 127.0.0.1 --port 0 --mode broadcast --ping-interval 0 --log-level warn"
  [node]="$NODE $work/ws_broadcast.js 0"
)
declare -A server_doc=(   # as printed in the report
  [tether]="build/tether serve --host 127.0.0.1 --port 0 --mode broadcast --ping-interval 0 --log-level warn"
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
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

results="$work/results.tsv"
: >"$results"
disturbed_notes=()

# One run: appends a line to $results; returns 3 when disturbed (and the figures are not kept).
run_one() {
  local variant=$1 name=$2 round=$3 attempt=$4 tag="$1-$2-r$3-a$4"
  local sout="$work/server-$tag.out" serr="$work/server-$tag.err"
  local bout="$work/bench-$tag.out" berr="$work/bench-$tag.err"
  rm -f "$sout" "$serr" "$bout" "$berr"
  log "---- round $round: $variant, $name$( (( attempt > 1 )) && echo " (attempt $attempt)")"
  local -a cmd bench_extra
  read -r -a cmd <<<"${server_cmd[$name]} ${variant_server_args[$variant]}"
  read -r -a bench_extra <<<"${variant_bench_args[$variant]}"
  NODE_PATH=$WS_NODE_PATH taskset -c "$SERVER_CPU" "${cmd[@]}" >"$sout" 2>"$serr" &
  server_pid=$!
  wait_for_line "$sout" '^listening wss*://' "$LISTEN_WAIT_S" "$server_pid" ||
    die "$name did not print 'listening' within $LISTEN_WAIT_S s (stderr: $(head -3 "$serr"))"
  local port scheme
  port=$(sed -n 's|^listening wss*://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$sout" | head -1)
  scheme=$(sed -n 's|^listening \(wss*\)://.*|\1|p' "$sout" | head -1)
  [[ -n $port ]] || die "could not read the port from: $(head -1 "$sout")"
  local want_scheme=ws
  [[ $variant == tls ]] && want_scheme=wss
  [[ $scheme == "$want_scheme" ]] || die "$name listens on $scheme://, expected $want_scheme:// for the $variant variant"
  sleep 0.5

  local m0 m1 c0 c1 s0 s1 q0 q1 rc=0
  m0=$(machine_ticks); c0=$(child_ticks); s0=$(proc_ticks "$server_pid"); q0=$(softirq_ticks "$SERVER_CPU")
  # Bounded: connecting (~1 s per 1,000; TLS more), the run, --burst-timeout for the last
  # burst, 10 s for closing and slack.
  timeout -k 5 $(( duration + subscribers / 100 + burst_timeout + 60 )) \
    taskset -c "$CLIENT_CPU" "$work/fanout_bench" "$scheme://127.0.0.1:$port/" \
      --subscribers "$subscribers" --size "${variant_size[$variant]}" --burst "$burst" \
      --duration "$duration" --burst-timeout "$burst_timeout" "${bench_extra[@]}" \
      --server-pid "$server_pid" >"$bout" 2>"$berr" &
  bench_pid=$!
  wait "$bench_pid" || rc=$?
  bench_pid=""
  m1=$(machine_ticks); c1=$(child_ticks); s1=$(proc_ticks "$server_pid"); q1=$(softirq_ticks "$SERVER_CPU")
  local rss
  rss=$(rss_kib "$server_pid")
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
      disturbed_notes+=("round $round, $variant, $name, attempt $attempt: failed ($(grep -m1 -o 'FAILED: .*' "$berr" | sed 's/^FAILED: //')) while other processes used $other% of the machine; discarded and run again")
      return 3
    fi
    keep_work=1
    log "fanout_bench exited $rc: $(grep -m1 'FAILED' "$berr" || tail -1 "$berr") (other load $other%)"
    log "  $json"
    [[ -s $serr ]] && log "server stderr: $(head -3 "$serr" | tr '\n' ' ')"
    echo -e "$round\t$variant\t$name\tFAILED\t$json" >>"$results"
    return 0
  fi
  log "$json"
  log "other processes used $other% of the machine during the run"
  [[ -s $serr ]] && log "server stderr: $(head -3 "$serr" | tr '\n' ' ')"
  if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN { exit !(o > m) }'; then
    if (( attempt <= MAX_RETRIES )); then
      disturbed_notes+=("round $round, $variant, $name, attempt $attempt: other processes used $other% of the machine; discarded and run again")
      log "disturbed (other load $other% > $OTHER_MAX%): running it again"
      return 3
    fi
    disturbed_notes+=("round $round, $variant, $name, attempt $attempt: other processes used $other% of the machine; still disturbed after $MAX_RETRIES re-runs, kept")
    log "still disturbed after $MAX_RETRIES re-runs: keeping it (marked)"
  fi
  echo -e "$round\t$variant\t$name\tOK\t$json\t$other\t$attempt\t$(( q1 - q0 ))\t$rss" >>"$results"
}

read -r b0 _ < <(machine_ticks); read -r _ t0 < <(machine_ticks)
sleep 1
read -r b1 t1 < <(machine_ticks)
busy_before=$(awk -v a="$b0" -v b="$b1" -v s="$t0" -v t="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / (t - s + 1e-9) }')
log "machine $busy_before% busy in the second before the runs; server on CPU $SERVER_CPU, fanout_bench on CPU $CLIENT_CPU; logs in $work"
for (( round = 1; round <= rounds; ++round )); do
  for variant in "${variant_list[@]}"; do
    for name in "${servers[@]}"; do
      attempt=1
      while :; do
        r=0; run_one "$variant" "$name" "$round" "$attempt" || r=$?
        sleep "$SETTLE_S"
        (( r == 3 )) || break
        attempt=$(( attempt + 1 ))
      done
    done
  done
done

kernel=$(uname -r)
today=$(date -u '+%Y-%m-%d %H:%M UTC')
disturbed_text=$(printf '%s\n' "${disturbed_notes[@]+"${disturbed_notes[@]}"}")
# The machine, as the report states it.
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
grep -qw hypervisor /proc/cpuinfo 2>/dev/null && cpu_model+=" (virtual machine: hypervisor flag set)"
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
compiler="" build_type=""
cache="$(dirname "$TETHER_BIN")/CMakeCache.txt"
if [[ -r $cache ]]; then
  cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache" | head -1)
  [[ -n $cxx && -x $cxx ]] && compiler=$("$cxx" --version 2>/dev/null | head -1)
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache" | head -1)
fi
openssl_version=$(openssl version 2>/dev/null | awk '{ print $1, $2 }' || true)
node_openssl=$("$NODE" -p 'process.versions.openssl' 2>/dev/null || true)
export FO_ROUNDS=$rounds FO_DURATION=$duration FO_SUBS=$subscribers FO_SIZE=$size FO_BURST=$burst \
  FO_CLK_TCK=$clk_tck FO_SERVER_CPU=$SERVER_CPU FO_CLIENT_CPU=$CLIENT_CPU FO_BUSY=$busy_before FO_COMMIT="$commit$dirty" \
  FO_LABEL_tether="${server_label[tether]}" FO_LABEL_node="${server_label[node]}" \
  FO_CMD_tether="${server_doc[tether]}" FO_CMD_node="${server_doc[node]}" \
  FO_NODE_VERSION=$node_version FO_KERNEL="$kernel" FO_DATE="$today" \
  FO_OTHER_MAX=$OTHER_MAX FO_DISTURBED="$disturbed_text" \
  FO_VARIANTS="$variants" FO_DEFLATE_SIZE=$deflate_size FO_BURST_TIMEOUT=$burst_timeout \
  FO_SRV_plain="${variant_server_doc[plain]}" FO_SRV_tls="${variant_server_doc[tls]}" FO_SRV_deflate="${variant_server_doc[deflate]}" \
  FO_BEN_plain="${variant_bench_doc[plain]}" FO_BEN_tls="${variant_bench_doc[tls]}" FO_BEN_deflate="${variant_bench_doc[deflate]}" \
  FO_CPU_MODEL="$cpu_model" FO_NPROC="$(nproc)" FO_MEM_GIB="$mem_gib" FO_COMPILER="$compiler" \
  FO_BUILD_TYPE="$build_type" FO_OPENSSL="$openssl_version" FO_NODE_OPENSSL="$node_openssl"
# No bench/__pycache__ from importing md_section.
PYTHONDONTWRITEBYTECODE=1 "$PY" - "$results" "$out" <<'EOF'
import json, os, statistics, sys
results, out = sys.argv[1], sys.argv[2]
E = os.environ
SERVERS = ["tether", "node"]
VARIANTS = E["FO_VARIANTS"].split(",")
LABEL = {s: E[f"FO_LABEL_{s}"] for s in SERVERS}
NODE_SHORT = " ".join(LABEL["node"].split()[:2])   # "Node ws"
SIZE = {"plain": int(E["FO_SIZE"]), "tls": int(E["FO_SIZE"]), "deflate": int(E["FO_DEFLATE_SIZE"])}
NAME = {"plain": "plain (W6)", "tls": "TLS (W7)", "deflate": "deflate (W7)"}
MESSAGE = {"plain": f"{SIZE['plain']} B binary, ws://", "tls": f"{SIZE['tls']} B binary, wss://",
           "deflate": f"{SIZE['deflate']} B JSON text, ws:// + permessage-deflate"}
clk = int(E["FO_CLK_TCK"])
runs, failed = [], []
for line in open(results):
    f = line.rstrip("\n").split("\t")
    rnd, variant, server, status = int(f[0]), f[1], f[2], f[3]
    if status != "OK":
        failed.append((rnd, variant, server, f[4] if len(f) > 4 else ""))
        continue
    j = json.loads(f[4])
    cpu, d = j.get("server_cpu_s"), j["deliveries"]
    runs.append(dict(round=rnd, variant=variant, server=server, rate=j["deliveries_per_sec"],
                     deliveries=d, seconds=j["seconds"], bursts=j["bursts"], missing=j["missing"],
                     cpu=cpu, us=(cpu * 1e6 / d) if cpu is not None and d else None,
                     use=(cpu / j["seconds"]) if cpu is not None and j["seconds"] else None,
                     wire=j.get("wire_bytes_per_delivery") if d else None,
                     other=float(f[5]), attempt=int(f[6]),
                     sirq=int(f[7]) * 1e6 / clk / d if d else None,
                     rss=int(f[8]) / 1024 if len(f) > 8 and f[8].isdigit() and int(f[8]) else None))

def med(v, s, k):
    x = [r[k] for r in runs if r["variant"] == v and r["server"] == s and r[k] is not None]
    return statistics.median(x) if x else None

def fmt(f, v):
    return "n/a" if v is None else f.format(v)

n = int(E["FO_ROUNDS"])
lines = ["| variant | server | deliveries/s | server CPU µs/delivery | server CPU use | wire bytes/delivery | server RSS | bursts per run | missing |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
M = {}
for v in VARIANTS:
    M[v] = {s: {k: med(v, s, k) for k in ("rate", "us", "use", "bursts", "wire", "rss")} for s in SERVERS}
    for s in SERVERS:
        m = M[v][s]
        miss = sum(r["missing"] for r in runs if r["variant"] == v and r["server"] == s)
        nr = sum(1 for r in runs if r["variant"] == v and r["server"] == s)
        who = LABEL[s] if nr == n else f"{LABEL[s]} ({nr} run{'s' if nr != 1 else ''})"
        lines.append(f"| {NAME[v]} | {who} | {fmt('{:,.0f}', m['rate'])} | {fmt('{:.3f}', m['us'])} | "
                     f"{fmt('{:.0%}', m['use'])} | {fmt('{:.1f}', m['wire'])} | {fmt('{:,.0f} MiB', m['rss'])} | "
                     f"{fmt('{:.0f}', m['bursts'])} | {miss} |")
    a, b = M[v]["tether"], M[v]["node"]
    ratio = lambda k: (f"**{a[k] / b[k]:.{2 if a[k] / b[k] >= 0.1 else 3}f}×**"
                       if a[k] and b[k] else "n/a")
    lines.append(f"| {NAME[v]} | **tether / {NODE_SHORT}** | {ratio('rate')} | {ratio('us')} |  | {ratio('wire')} | {ratio('rss')} |  |  |")
summary = "\n".join(lines)

# What the wire figures say about compression and TLS, in words (deflate: was the fan-out
# compressed at all? tether may send broadcast frames uncompressed even when deflate is agreed).
wire_notes = []
if "deflate" in VARIANTS:
    sz = SIZE["deflate"]
    hdr = 2 if sz < 126 else 4
    for s in SERVERS:
        w = M["deflate"][s]["wire"]
        if w is None:
            continue
        if w >= sz:
            wire_notes.append(f"- deflate, {LABEL[s]}: {w:.1f} bytes on the wire per delivery for {sz}-byte "
                              f"messages (frame header {hdr} bytes): the fan-out went out **uncompressed**.")
        else:
            wire_notes.append(f"- deflate, {LABEL[s]}: {w:.1f} bytes on the wire per delivery for {sz}-byte "
                              f"messages: compressed to {(w - hdr) / sz:.0%} of the payload (frame header "
                              f"included in the bytes, not in the percentage).")
if "tls" in VARIANTS and "plain" in VARIANTS:
    for s in SERVERS:
        wt, wp = M["tls"][s]["wire"], M["plain"][s]["wire"]
        if wt is not None and wp is not None:
            wire_notes.append(f"- TLS, {LABEL[s]}: {wt:.1f} bytes on the wire per delivery against {wp:.1f} "
                              f"plain: {wt - wp:+.1f} bytes of TLS record overhead per message "
                              "(fewer when many messages share a record).")
wire_text = ("\nOn the wire (the subscribers' socket bytes over the measured span, per delivery):\n\n"
             + "\n".join(wire_notes) + "\n") if wire_notes else ""

raw = ["| round | variant | server | deliveries/s | deliveries | seconds | bursts | missing | server CPU s | µs/delivery | server CPU use | wire B/delivery | softirq µs/delivery | server RSS | other load |",
       "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for r in sorted(runs, key=lambda r: (r["round"], VARIANTS.index(r["variant"]), SERVERS.index(r["server"]))):
    raw.append(f"| {r['round']} | {NAME[r['variant']]} | {LABEL[r['server']]} | {r['rate']:,.0f} | {r['deliveries']:,} | "
               f"{r['seconds']:.2f} | {r['bursts']} | {r['missing']} | {fmt('{:.2f}', r['cpu'])} | "
               f"{fmt('{:.3f}', r['us'])} | {fmt('{:.0%}', r['use'])} | {fmt('{:.1f}', r['wire'])} | "
               f"{fmt('{:.3f}', r['sirq'])} | {fmt('{:,.0f} MiB', r['rss'])} | {r['other']:.1f}% |")
raw_table = "\n".join(raw)
vdesc = "; ".join(f"{NAME[v]}: {MESSAGE[v]}" for v in VARIANTS)
params = (f"{int(E['FO_SUBS']):,} subscribers + 1 publisher, bursts of {E['FO_BURST']} messages "
          f"({vdesc}), {E['FO_DURATION']} s per run, median of {n} round{'s' if n != 1 else ''}; "
          f"server on CPU {E['FO_SERVER_CPU']}, fanout_bench on CPU {E['FO_CLIENT_CPU']}; "
          f"machine {E['FO_BUSY']}% busy in the second before the runs")
disturbed = [d for d in E.get("FO_DISTURBED", "").split("\n") if d]
notes = ""
if disturbed:
    notes += (f"\nDisturbed runs (other processes used more than {E['FO_OTHER_MAX']}% of the machine; "
              "discarded attempts are not in the tables):\n\n" + "\n".join(f"- {d}" for d in disturbed) + "\n")
if failed:
    notes += ("\nFailed runs (not in the tables):\n\n"
              + "\n".join(f"- round {r}, {v}, {s}: `{j}`" for r, v, s, j in failed) + "\n")
print(f"\n{params}.\n\n{summary}\n{wire_text}\nPer run:\n\n{raw_table}\n{notes}")
if not out:
    sys.exit(0)
size, subs, burst, dur = E["FO_SIZE"], E["FO_SUBS"], E["FO_BURST"], E["FO_DURATION"]
dsize, btimeout = E["FO_DEFLATE_SIZE"], E["FO_BURST_TIMEOUT"]
args = f"--rounds {n} --duration {dur}"
for flag, v, d in (("--subscribers", subs, "5000"), ("--size", size, "64"), ("--burst", burst, "100"),
                   ("--variants", E["FO_VARIANTS"], "plain,tls,deflate"), ("--deflate-size", dsize, "256"),
                   ("--burst-timeout", btimeout, "60")):
    if v != d:
        args += f" {flag} {v}"
sc, cc = E["FO_SERVER_CPU"], E["FO_CLIENT_CPU"]
by_hand = []
for v in VARIANTS:
    scheme = "wss" if v == "tls" else "ws"
    by_hand.append(f"# {NAME[v]}")
    by_hand.append(f"taskset -c {sc} {E['FO_CMD_tether']}{E['FO_SRV_' + v]}")
    by_hand.append(f"NODE_PATH=tests/interop/node_modules taskset -c {sc} node bench/peers/ws_broadcast.js 0{E['FO_SRV_' + v]}")
    by_hand.append(f"taskset -c {cc} build/bench/fanout_bench {scheme}://127.0.0.1:PORT/ --subscribers {subs} "
                   f"--size {SIZE[v]} --burst {burst} --duration {dur} --burst-timeout {btimeout}"
                   f"{E['FO_BEN_' + v]} --server-pid PID")
by_hand = "\n".join(by_hand)
machine = (f"{E['FO_CPU_MODEL'] or 'CPU model unknown'}, {E['FO_NPROC']} CPUs, {E['FO_MEM_GIB']} GiB; "
           f"Linux {E['FO_KERNEL']}")
build = f"tether {E['FO_COMMIT']}"
if E.get("FO_BUILD_TYPE"):
    build += f", {E['FO_BUILD_TYPE']}"
if E.get("FO_COMPILER"):
    build += f", {E['FO_COMPILER']}"
tls_libs = f"OpenSSL {E['FO_OPENSSL'].split()[-1]} (tether)" if E.get("FO_OPENSSL") else "the system's OpenSSL (tether)"
if E.get("FO_NODE_OPENSSL"):
    tls_libs += f", OpenSSL {E['FO_NODE_OPENSSL']} (Node's own)"
section = f"""
## Fan-out: one publisher, 5,000 subscribers

Issue 8's W6 (fan-out) and W7 (the same with TLS, and with permessage-deflate on text JSON).
Delivered messages per second when one connection publishes and the server forwards every
message to every open connection (`tether serve --mode broadcast`), against Node `ws` doing the
same (`bench/peers/ws_broadcast.js`: iterate `wss.clients`, `ws.send(data, {{ binary }})` to each
open one). A delivery is one message received by one subscriber. Measured with:

```sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTETHER_BUILD_BENCH=ON && cmake --build build -j2
bench/fanout.sh {args} --out docs/bench.md    # or all of docs/bench.md: make bench
# one run by hand (read PORT from the server's first line; PID is the server's; cert.pem and
# key.pem from the openssl command under Method):
{by_hand}
```

{params}.

{summary}
{wire_text}
Per run:

{raw_table}
{notes}
**Method.**

- `fanout_bench` (`bench/fanout_bench.cpp`) opens the {int(subs):,} subscribers, 200 at a time,
  then the publisher, all `tether::Client`s on one `tether::Loop` (heartbeats and reconnects
  off). The publisher sends a burst of {burst} numbered messages; the next burst starts as
  soon as every subscriber has received every message of this one, so at most
  {int(burst) * int(subs):,} deliveries are in flight. After {dur} s no new burst starts and the
  one in flight completes. A burst that takes over {btimeout} s fails the run.
- Every subscriber checks that it receives every sequence number once and in order, and with
  the message type sent; `missing` counts the messages some subscriber never received. The
  publisher's own copies (the server sends it every message too) are not counted as deliveries.
- **plain (W6)**: binary messages of {size} bytes, the first 8 the sequence number; `ws://`.
- **TLS (W7)**: the same messages over `wss://`. Both servers load one throwaway self-signed
  certificate, made per run of the script with
  `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout key.pem -out cert.pem`;
  tether with `--tls-cert cert.pem --tls-key key.pem`, Node `ws` on an `https.Server` with the
  same files and Node's TLS defaults. `fanout_bench --ca cert.pem` verifies the certificate and
  the name (127.0.0.1) on every connection. Libraries: {tls_libs}.
- **deflate (W7)**: TEXT messages that are JSON objects of exactly {dsize} bytes,
  `{{"seq":N,"user":"user-NNNN","room":"general","text":"..."}}`, the text cut from English-like
  filler words at a different offset per message; subscribers read `seq` back from the JSON.
  Every client offers tether's default `permessage-deflate; client_max_window_bits;
  server_no_context_takeover; client_no_context_takeover`. tether runs with `--deflate` and its
  defaults: both sides reset their context after each message, threshold 64 bytes, zlib level 6,
  15-bit windows, memLevel 8, one compressor per event loop. `ws_broadcast.js --deflate` sets
  `perMessageDeflate` to match: threshold 64 (ws's default 1024 would leave these messages
  uncompressed), serverNoContextTakeover and clientNoContextTakeover true (ws's defaults are
  false, and with false it declines an offer containing server_no_context_takeover), level 6,
  memLevel 8; ws keeps its concurrencyLimit of 10 zlib jobs and a zlib stream per connection.
  "wire bytes/delivery" shows what each server actually put on the wire: a server may send a
  message uncompressed even when deflate was agreed.
- Server CPU: utime+stime (all threads: Node's zlib work runs on libuv's pool, pinned with the
  rest) from `/proc/PID/stat`, read by `fanout_bench` when the first burst starts and after the
  last one completes (handshakes excluded; clock ticks at 100 Hz), divided by the deliveries.
  "Server CPU use" is that CPU time over the measured wall time: near 100% means the server's
  one core was the limit; well under means the load generator (one thread receiving every
  delivery) was.
- Wire bytes/delivery: the subscribers' socket bytes received (`Client::metrics()`: frame
  headers, TLS records, compressed payloads) over the same span, per delivery. Server RSS:
  VmRSS when the run ends, connections still open.
- Both servers are single-threaded (tether's default `--threads 1`; Node's one event loop),
  pinned to CPU {sc}; the load generator to CPU {cc}. Each round runs the variants in turn
  and, per variant, the servers on freshly started processes, 2 s apart.
- Softirq: the kernel accounts the receive processing of loopback traffic as softirq time
  of the CPU that sent it, not to any process, so the server's CPU figure leaves it out. The
  per-run column "softirq µs/delivery" is CPU {sc}'s softirq time over the whole run
  (handshakes included) per delivery: mostly the TCP receive work for what the server sent.
- Other load: the machine's user+system time during each run (whole run, handshakes
  included) minus the server's and the bench's own, as a share of both CPUs; above
  {E['FO_OTHER_MAX']}% the run is repeated (up to twice).

Machine: {machine}. Build: {build}. Node {E['FO_NODE_VERSION']}, ws {LABEL['node'].split()[-1]}. Date: {E['FO_DATE']}.
"""
sys.path.insert(0, "bench")   # fanout.sh works from the repo root
from md_section import write_section
write_section(out, "fanout", section)   # only this script's section; the rest of the page stays
print(f"rewrote the fanout section of {out}", file=sys.stderr)
EOF
if grep -q $'\tFAILED\t' "$results"; then die "some runs failed (see above)"; fi
