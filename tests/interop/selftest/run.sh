#!/bin/sh
# Checks the interop harness itself, without build/tether: runs every test program against
# stand-ins for tether built on each peer library (fake_tether.py on python3-websockets,
# fake_tether.js on ws), so each program also meets the *other* library. All must pass.
# Usage: tests/interop/selftest/run.sh   (needs `npm ci` in tests/interop first)
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
export PYTHONDONTWRITEBYTECODE=1
status=0
for fake in selftest/fake_tether.py selftest/fake_tether.js; do
  for prog in client_peer_python.py server_peer_python.py client_peer_node.js server_peer_node.js; do
    case $prog in *.py) run=/usr/bin/python3 ;; *) run=/usr/bin/node ;; esac
    # The fakes log the violations they see as tracebacks on stderr; only the verdicts matter.
    out=$("$run" "$prog" --tether "$fake" --group all 2>/dev/null)
    rc=$?
    echo "$out" | grep -v '^PASS'
    [ $rc -eq 0 ] || { echo "selftest: $prog against $fake FAILED (exit $rc)"; status=1; }
  done
done
[ $status -eq 0 ] && echo "selftest: all programs pass against both stand-ins"
exit $status
