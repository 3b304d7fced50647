# TLS (wss://) and permessage-deflate (RFC 7692) interop, included at the end of
# tests/interop/CMakeLists.txt (uses its tether_interop_test(); every program gets
# --tether BIN --group G, prints PASS/FAIL per case and exits non-zero on any failure).
#
#   interop.tls.serve              tether serve --tls-cert/--tls-key <- python ssl/websockets clients:
#                                  echo 0..1 MiB, close codes, https GET, TLS 1.2, ALPN, bad clients
#                                  (other CA, plain ws://, garbage) fail cleanly, SIGTERM (tls_test.py)
#   interop.tls.connect            python websockets TLS servers -> tether connect wss://: echo by
#                                  name and IP, verification failures as handshake_failed, --insecure
#   interop.tls.browser            headless Chromium (server key pinned by SPKI) over https/wss:
#                                  WebSocket echo + close, tether.js TetherSocket (tls_browser_test.js)
#   interop.deflate.python.serve   python websockets permessage-deflate offers x tether serve
#                                  --deflate-options: RFC 7692 response, echo, RSV1 per threshold,
#                                  window bits, declined offers, bad compressed frames, 1 GiB
#                                  deflate bomb -> 1009 with bounded RSS (deflate_test.py)
#   interop.deflate.python.connect python websockets deflate servers -> tether connect --deflate:
#                                  the offer, echo, window/takeover honoured on tether's frames
#   interop.deflate.node.serve     Node ws perMessageDeflate client variants -> tether serve --deflate
#   interop.deflate.node.connect   Node ws WebSocketServer perMessageDeflate variants -> tether
#                                  connect --deflate (deflate_node.js)
#   interop.deflate.browser        Chromium's own permessage-deflate offer -> tether serve --deflate
#                                  over ws:// and wss:// (tls_browser_test.js --group deflate)
# The TLS tests need the openssl command (a temporary PKI is made at test time).

tether_interop_test(interop.tls.serve     ${TETHER_INTEROP_PYTHON} tls_test.py         serve)
tether_interop_test(interop.tls.connect   ${TETHER_INTEROP_PYTHON} tls_test.py         connect)
tether_interop_test(interop.tls.browser   ${TETHER_INTEROP_NODE}   tls_browser_test.js all)

tether_interop_test(interop.deflate.python.serve   ${TETHER_INTEROP_PYTHON} deflate_test.py serve)
tether_interop_test(interop.deflate.python.connect ${TETHER_INTEROP_PYTHON} deflate_test.py connect)
tether_interop_test(interop.deflate.node.serve     ${TETHER_INTEROP_NODE}   deflate_node.js serve)
tether_interop_test(interop.deflate.node.connect   ${TETHER_INTEROP_NODE}   deflate_node.js connect)
tether_interop_test(interop.deflate.browser        ${TETHER_INTEROP_NODE}   tls_browser_test.js deflate)

# Each stays well under a minute; the TIMEOUT of 120 s from tether_interop_test() is only the
# backstop behind each program's own cap (100 s / 90 s).
