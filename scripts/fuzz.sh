#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz/ (clang, ASan+UBSan) into build-fuzz/<target>/ and
# runs each for SECONDS seconds on a scratch copy of its seed corpus.
#
#   scripts/fuzz.sh SECONDS [TARGET...]      (no TARGET: every tests/fuzz/fuzz_*.cpp)
#
# Prints one summary line per target; exits non-zero if any target crashed (or timed out, ran out
# of memory, leaked). Crash inputs go to build-fuzz/artifacts/<target>-*. Rebuilds only when a
# source changed. Runs for different targets may go in parallel (ctest does): each target has its
# own build directory, corpus and log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() {
  echo "fuzz.sh: $*" >&2
  exit 1
}

[ $# -ge 1 ] || die "usage: scripts/fuzz.sh SECONDS [TARGET...]"
secs=$1
shift
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer, got '$secs'"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.cpp; do
    [ -e "$f" ] && targets+=("$(basename "$f" .cpp)")
  done
  [ ${#targets[@]} -gt 0 ] || die "no fuzz targets in tests/fuzz/"
fi
for t in "${targets[@]}"; do
  [[ $t =~ ^[A-Za-z0-9_]+$ ]] && [ -f "tests/fuzz/$t.cpp" ] || die "unknown target '$t'"
done

# ---- toolchain: clang++ with libFuzzer (Debian: clang-14 + libclang-rt-14-dev, scripts/deps.sh)
cxx=${FUZZ_CXX:-}
if [ -z "$cxx" ]; then
  for c in clang++-14 clang++; do
    if command -v "$c" >/dev/null 2>&1; then
      cxx=$c
      break
    fi
  done
fi
[ -n "$cxx" ] || die "no clang++-14 or clang++ found: install clang-14 and libclang-rt-14-dev (scripts/deps.sh)"

probe=$(mktemp -d "${TMPDIR:-/tmp}/tether-fuzz-probe.XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
  'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe/p.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >"$probe/log" 2>&1; then
  cat "$probe/log" >&2
  die "$cxx cannot link -fsanitize=fuzzer (libFuzzer missing?): install libclang-rt-14-dev (scripts/deps.sh)"
fi

common=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Isrc -Iinclude)
lib_flags=("${common[@]}" -fsanitize=fuzzer-no-link,address,undefined)
bin_flags=("${common[@]}" -fsanitize=fuzzer,address,undefined)
# The protocol layer and what it uses; no sockets, loop or server code.
lib_sources=(src/codec/*.cpp src/protocol/*.cpp)

# build TARGET: build-fuzz/TARGET/TARGET, rebuilt when it is missing or older than any input.
build() {
  local t=$1 dir=build-fuzz/$1
  local bin=$dir/$t
  mkdir -p "$dir/obj"
  if [ -x "$bin" ] && [ -z "$(find src include "tests/fuzz/$t.cpp" scripts/fuzz.sh -newer "$bin" \
    \( -name '*.cpp' -o -name '*.hpp' -o -name '*.sh' \) -print -quit)" ]; then
    return 0
  fi
  local log=$dir/build.log pids=() objs=() src obj
  : >"$log"
  for src in "${lib_sources[@]}"; do
    obj=$dir/obj/$(echo "${src#src/}" | tr '/' '_').o
    objs+=("$obj")
    "$cxx" "${lib_flags[@]}" -c "$src" -o "$obj" >>"$log" 2>&1 &
    pids+=($!)
  done
  local failed=0 pid
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  if [ $failed -eq 0 ]; then
    "$cxx" "${bin_flags[@]}" "tests/fuzz/$t.cpp" "${objs[@]}" -lcrypto -o "$bin.tmp" >>"$log" 2>&1 ||
      failed=1
  fi
  if [ $failed -ne 0 ]; then
    cat "$log" >&2
    die "$t: build failed (log: $log)"
  fi
  mv -f "$bin.tmp" "$bin"
}

# fuzz TARGET: runs it, prints the summary line; returns non-zero on a finding.
fuzz() {
  local t=$1 dir=build-fuzz/$1
  local work=$dir/corpus log=$dir/fuzz.log
  mkdir -p "$work" build-fuzz/artifacts
  # Seeds (and saved regressions) join whatever earlier runs discovered; the repo corpus is
  # only read.
  if [ -d "tests/fuzz/corpus/$t" ]; then
    find "tests/fuzz/corpus/$t" -maxdepth 1 -type f -exec cp -f {} "$work/" \;
  fi
  local rc=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$dir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="build-fuzz/artifacts/$t-" -print_final_stats=1 "$work" >"$log" 2>&1 || rc=$?

  local runs eps result
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  if [ -z "$runs" ]; then # crashed before the final stats: use the last status line
    runs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    eps=$(sed -n 's/^#[0-9].* exec\/s: \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
  fi
  if [ $rc -eq 0 ]; then
    result=ok
  else
    local kind artifact
    if grep -q 'ERROR: libFuzzer: timeout' "$log"; then
      kind=timeout
    elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
      kind=out-of-memory
    elif grep -q 'ERROR: LeakSanitizer' "$log"; then
      kind=leak
    elif grep -q 'runtime error:' "$log"; then
      kind=undefined-behaviour
    elif grep -q 'ERROR: AddressSanitizer' "$log"; then
      kind=$(sed -n 's/.*ERROR: AddressSanitizer: \([a-z-]*\).*/\1/p' "$log" | head -n 1)
    elif grep -q 'invariant failed' "$log"; then
      kind=invariant
    else
      kind="exit $rc"
    fi
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    result="CRASH ($kind) input: ${artifact:-none} log: $log"
    {
      echo "---- $t: $log (excerpt)"
      grep -m 1 -A 30 -E 'invariant failed|runtime error:|==ERROR|ERROR: libFuzzer' "$log" || tail -n 30 "$log"
      echo "----"
    } >&2
  fi
  printf '%s: %s runs, %s exec/s, %s\n' "$t" "${runs:-0}" "${eps:-0}" "$result"
  [ $rc -eq 0 ]
}

for t in "${targets[@]}"; do build "$t"; done
status=0
for t in "${targets[@]}"; do fuzz "$t" || status=1; done
exit $status
