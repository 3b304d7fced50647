#!/usr/bin/env bash
# `cmake --install` then find_package(tether) from a separate project, as a user would.
set -euo pipefail
build_dir=$1 src_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$src_dir/tests/install/consumer" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DEXAMPLE_SOURCE="$src_dir/examples/echo_server.cpp" >/dev/null
cmake --build "$work/b" >/dev/null
test -x "$work/b/consumer_echo_server"
test -f "$work/prefix/include/tether/tether.hpp"
test -x "$work/prefix/bin/tether"
echo "PASS: installed tether found with find_package(tether) and linked"
