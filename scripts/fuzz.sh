#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz/ (clang, ASan+UBSan) into build-fuzz/ and runs them.
#
#   scripts/fuzz.sh SECONDS [TARGET...]      fuzz each target for SECONDS seconds on a scratch
#                                            copy of its seed corpus (tests/fuzz/corpus/TARGET/)
#   scripts/fuzz.sh --replay [TARGET...]     run every file of tests/fuzz/corpus/TARGET/ through
#                                            the target once, no fuzzing (the regression check:
#                                            a crash input saved there must keep passing)
#   scripts/fuzz.sh --build [TARGET...]      only build
# No TARGET: every tests/fuzz/fuzz_*.cpp.
#
# Prints one summary line per target; exits non-zero if any target crashed (or timed out, ran out
# of memory, leaked). Crash inputs go to build-fuzz/artifacts/<target>-*; tests/fuzz/README.md
# says how one becomes a regression test. Rebuilds only when a source changed. Runs for different
# targets may go in parallel (ctest does): the shared library objects are built under a lock, and
# each target has its own binary, corpus and log.
#
# Environment: FUZZ_CXX (clang++ to use), FUZZ_JOBS (parallel compiles, default nproc).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() {
  echo "fuzz.sh: $*" >&2
  exit 1
}

[ $# -ge 1 ] || die "usage: scripts/fuzz.sh SECONDS|--replay|--build [TARGET...]"
mode=fuzz
secs=0
case $1 in
  --replay) mode=replay ;;
  --build) mode=build ;;
  *)
    secs=$1
    [[ $secs =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer, got '$secs'"
    ;;
esac
shift

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
jobs=${FUZZ_JOBS:-$(nproc)}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "FUZZ_JOBS must be a positive integer, got '$jobs'"

common=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Isrc -Iinclude)
lib_flags=("${common[@]}" -fsanitize=fuzzer-no-link,address,undefined)
bin_flags=("${common[@]}" -fsanitize=fuzzer,address,undefined)
# What the targets exercise, all sans-I/O except the static file resolver (which only touches
# the file system): codec and protocol (frame and handshake parsers), extensions
# (permessage-deflate, zlib), resume (frames, endpoint) and the static path resolver. No
# sockets, loop or server glue: the resolver's file needs only protocol/.
shopt -s nullglob
lib_sources=(src/codec/*.cpp src/protocol/*.cpp src/extensions/*.cpp src/resume/*.cpp
  src/server/static_files.cpp)
shopt -u nullglob
link_libs=(-lz -lcrypto)

lib_dir=build-fuzz/lib
stamp=$lib_dir/stamp

# newer_than FILE PATH...: prints the first source or header under PATH newer than FILE.
newer_than() {
  local file=$1
  shift
  find "$@" -newer "$file" \( -name '*.cpp' -o -name '*.hpp' -o -name '*.sh' \) -print -quit
}

# spawn LOG CMD...: runs CMD in the background with its output appended to LOG, at most $jobs
# at once; a failure leaves a mark that wait_all reports.
fail_mark=build-fuzz/.failed.$$
run_logged() {
  local log=$1
  shift
  "$@" >>"$log" 2>&1 || touch "$fail_mark"
}
spawn() {
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_logged "$@" &
}
wait_all() {
  wait
  if [ -e "$fail_mark" ]; then
    rm -f "$fail_mark"
    return 1
  fi
}

# The objects every target links: rebuilt (all of them) when any source, header or this script
# is newer than the stamp. The caller holds the lock.
build_lib() {
  mkdir -p "$lib_dir/obj"
  if [ -f "$stamp" ] && [ -z "$(newer_than "$stamp" src include scripts/fuzz.sh)" ]; then
    return 0
  fi
  rm -f "$stamp" "$lib_dir"/obj/*.o
  local probe
  probe=$(mktemp -d "${TMPDIR:-/tmp}/tether-fuzz-probe.XXXXXX")
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe/p.cpp"
  if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >"$probe/log" 2>&1; then
    cat "$probe/log" >&2
    rm -rf "$probe"
    die "$cxx cannot link -fsanitize=fuzzer (libFuzzer missing?): install libclang-rt-14-dev (scripts/deps.sh)"
  fi
  rm -rf "$probe"
  local log=$lib_dir/build.log src obj
  : >"$log"
  for src in "${lib_sources[@]}"; do
    obj=$lib_dir/obj/$(echo "${src#src/}" | tr '/' '_').o
    spawn "$log" "$cxx" "${lib_flags[@]}" -c "$src" -o "$obj"
  done
  if ! wait_all; then
    cat "$log" >&2
    die "library objects: build failed (log: $log)"
  fi
  touch "$stamp"
}

# The target's binary, build-fuzz/TARGET/TARGET, relinked when it is missing or older than the
# library objects or its own source. The caller holds the lock.
build_target() {
  local t=$1 dir=build-fuzz/$1
  local bin=$dir/$t
  mkdir -p "$dir"
  if [ -x "$bin" ] && [ "$bin" -nt "$stamp" ] && [ -z "$(newer_than "$bin" "tests/fuzz/$t.cpp")" ]; then
    return 0
  fi
  : >"$dir/build.log"
  spawn "$dir/build.log" "$cxx" "${bin_flags[@]}" "tests/fuzz/$t.cpp" "$lib_dir"/obj/*.o \
    "${link_libs[@]}" -o "$bin.tmp"
}

build_all() {
  mkdir -p build-fuzz
  # One builder at a time (parallel ctest entries share the library objects).
  exec 9>build-fuzz/.lock
  flock 9
  build_lib
  local t failed=0
  for t in "${targets[@]}"; do build_target "$t"; done
  wait_all || failed=1
  for t in "${targets[@]}"; do
    local bin=build-fuzz/$t/$t
    [ -x "$bin.tmp" ] && mv -f "$bin.tmp" "$bin"
    rm -f "$bin.tmp"
    if [ ! -x "$bin" ] || ! [ "$bin" -nt "$stamp" ] || [ -n "$(newer_than "$bin" "tests/fuzz/$t.cpp")" ]; then
      cat "build-fuzz/$t/build.log" >&2 || true
      echo "fuzz.sh: $t: build failed (log: build-fuzz/$t/build.log)" >&2
      failed=1
    fi
  done
  flock -u 9
  exec 9>&-
  [ $failed -eq 0 ] || die "build failed"
}

# classify LOG RC: the kind of finding in a libFuzzer log.
classify() {
  local log=$1 rc=$2
  if grep -q 'ERROR: libFuzzer: timeout' "$log"; then
    echo timeout
  elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
    echo out-of-memory
  elif grep -q 'ERROR: LeakSanitizer' "$log"; then
    echo leak
  elif grep -q 'runtime error:' "$log"; then
    echo undefined-behaviour
  elif grep -q 'ERROR: AddressSanitizer' "$log"; then
    sed -n 's/.*ERROR: AddressSanitizer: \([a-z-]*\).*/\1/p' "$log" | head -n 1
  elif grep -q 'invariant failed' "$log"; then
    echo invariant
  elif grep -q 'ERROR: libFuzzer: deadly signal' "$log"; then
    echo deadly-signal
  else
    echo "exit $rc"
  fi
}

excerpt() {
  local t=$1 log=$2
  echo "---- $t: $log (excerpt)"
  grep -m 1 -A 30 -E 'invariant failed|runtime error:|==ERROR|ERROR: libFuzzer' "$log" || tail -n 30 "$log"
  echo "----"
}

run_target() {
  ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} "$@"
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
  run_target "$dir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
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
    local artifact
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    result="CRASH ($(classify "$log" $rc)) input: ${artifact:-none} log: $log"
    excerpt "$t" "$log" >&2
  fi
  printf '%s: %s runs, %s exec/s, %s\n' "$t" "${runs:-0}" "${eps:-0}" "$result"
  [ $rc -eq 0 ]
}

# replay TARGET: every file of the repo corpus once (libFuzzer's "run these inputs" mode, no
# mutation); returns non-zero if any of them fails.
replay() {
  local t=$1 dir=build-fuzz/$1
  local log=$dir/replay.log files=()
  if [ -d "tests/fuzz/corpus/$t" ]; then
    while IFS= read -r -d '' f; do files+=("$f"); done < <(find "tests/fuzz/corpus/$t" \
      -maxdepth 1 -type f ! -name '.*' -print0 | sort -z)
  fi
  if [ ${#files[@]} -eq 0 ]; then
    echo "$t: no inputs in tests/fuzz/corpus/$t/: FAIL (every target keeps seeds there)"
    return 1
  fi
  local rc=0
  # One process per input: the log then names the input that failed.
  local f
  : >"$log"
  for f in "${files[@]}"; do
    run_target "$dir/$t" -timeout=10 -rss_limit_mb=2048 "$f" >>"$log" 2>&1 || {
      rc=$?
      echo "$t: $f: CRASH ($(classify "$log" $rc)) log: $log"
      excerpt "$t" "$log" >&2
      break
    }
  done
  [ $rc -eq 0 ] && echo "$t: replayed ${#files[@]} inputs from tests/fuzz/corpus/$t/, ok"
  [ $rc -eq 0 ]
}

build_all
[ "$mode" = build ] && exit 0
status=0
for t in "${targets[@]}"; do
  if [ "$mode" = replay ]; then
    replay "$t" || status=1
  else
    fuzz "$t" || status=1
  fi
done
exit $status
