#!/usr/bin/env bash
# Installs every system package tether's build and tests need on Debian 12 (run as root).
# Idempotent: skips what is present; runs apt-get update only when it has to install.
set -euo pipefail

pkgs=(
  g++ make cmake git pkg-config ca-certificates   # toolchain
  libssl-dev zlib1g-dev                           # SHA-1/base64 (handshake), TLS, deflate
  libgtest-dev libgmock-dev libbenchmark-dev      # tests and micro-benchmarks
  libcli11-dev nlohmann-json3-dev                 # CLI parsing, JSON events
  python3 python3-websockets                      # interop peer (call /usr/bin/python3)
  clang-14 libclang-rt-14-dev                     # libFuzzer + ASan/UBSan for fuzz targets
  libboost1.74-dev                                # Boost.Beast echo peer for the benchmark
  util-linux procps                               # taskset (pinning), ps
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node may come from elsewhere (nvm, nodesource): only install Debian's when there is none.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]} (run as root to install)" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm peers for interop tests (Node `ws`), pinned by package-lock.json.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$here/tests/interop/package.json" ] && [ ! -d "$here/tests/interop/node_modules/ws" ]; then
  (cd "$here/tests/interop" && npm ci --no-audit --no-fund --silent)
fi
exit 0
