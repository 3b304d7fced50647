#!/usr/bin/env bash
# Installs every system package tether's build and tests need on Debian 12 (run as root).
# Idempotent: skips what is present; runs apt-get update only when it has to install.
set -euo pipefail

pkgs=(
  g++ make cmake git pkg-config ca-certificates   # toolchain
  libssl-dev zlib1g-dev openssl                   # SHA-1/base64 (handshake), TLS, deflate; test CAs
  libgtest-dev libgmock-dev libbenchmark-dev      # tests and micro-benchmarks
  libcli11-dev nlohmann-json3-dev                 # CLI parsing, JSON events
  python3 python3-websockets                      # interop peer (call /usr/bin/python3)
  clang-14 libclang-rt-14-dev                     # libFuzzer + ASan/UBSan for fuzz targets
  libboost1.74-dev                                # Boost.Beast echo peer for the benchmark
  libwebsocketpp-dev libwebsockets-dev            # websocketpp and libwebsockets echo peers (bench/)
  gnuplot-nox                                     # bench/compare.py's charts in docs/bench/
  util-linux procps                               # taskset (pinning), ps
  nginx                                           # reverse proxy for liveness tests (idle cuts)
  libhiredis-dev redis-server                     # Redis engine (multi-node fan-out, resume)
  chromium                                        # browser interop tests (driven by npm playwright-core)
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

# npm peers for interop tests (Node `ws`, playwright-core), pinned by package-lock.json.
# `npm ci` runs only when a package the lock file pins is missing from node_modules or is at
# another version, so a dependency added to package.json later gets installed too.
here=$(cd "$(dirname "$0")/.." && pwd)
interop="$here/tests/interop"
if [ -f "$interop/package.json" ] && ! node - "$interop" <<'JS'
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const read = (file) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
let pkg;
let lock;
try {
  pkg = read('package.json');
  lock = read('package-lock.json');
} catch (err) {
  process.exit(1); // let `npm ci` report it
}
const locked = lock.packages || {};
// A dependency of package.json that the lock file lacks: `npm ci` will say they are out of sync.
for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })) {
  if (!locked[`node_modules/${name}`]) process.exit(1);
}
for (const [key, entry] of Object.entries(locked)) {
  if (!key.startsWith('node_modules/')) continue; // '' is the project itself
  if (entry.link) continue; // a symlinked workspace package has no version of its own here
  let version = null;
  try {
    version = read(path.join(key, 'package.json')).version;
  } catch (err) {
    if (entry.optional) continue; // platform-specific optional packages may be absent
  }
  if (version !== entry.version) process.exit(1);
}
JS
then
  (cd "$interop" && npm ci --no-audit --no-fund --loglevel=error)
fi
exit 0
