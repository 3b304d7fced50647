# Observability of `tether serve`, included at the end of tests/interop/CMakeLists.txt (uses its
# tether_interop_test(); the program gets --tether BIN --group G, prints PASS/FAIL per case and
# exits non-zero on any failure).
#
#   interop.metrics.format  python websockets traffic -> GET /metrics: a strict parser of the
#                           Prometheus text format 0.0.4 (names, labels, HELP/TYPE before samples,
#                           _total counters, cumulative buckets, +Inf == _count, no duplicate
#                           series), counters equal to the traffic, `promtool check metrics` when
#                           promtool is installed; --metrics-port (metrics_format_test.py)
#   interop.metrics.logs    --log-format json|text, --log-level: open/close lines and their
#                           fields, refused handshakes at warn, a bad TLS file at error (exit 1),
#                           --json-events on stdout unchanged

tether_interop_test(interop.metrics.format ${TETHER_INTEROP_PYTHON} metrics_format_test.py format)
tether_interop_test(interop.metrics.logs   ${TETHER_INTEROP_PYTHON} metrics_format_test.py logs)
