// ws_echo.js: a Node `ws` echo server, a peer for bench/compare.py.
//
//   NODE_PATH=tests/interop/node_modules node bench/peers/ws_echo.js PORT
//
// Listens on 127.0.0.1:PORT; prints nothing but errors. The README's echo: each message is
// sent back with its own type (binary stays binary), as one frame. Settings: no
// permessage-deflate (ws would otherwise negotiate it when offered), maxPayload 16 MiB (like
// `tether serve --max-message 16m`); ws sets TCP_NODELAY on every socket itself.
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node ws_echo.js PORT');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: false,
});
wss.on('error', (err) => {
  console.error(`ws_echo: ${err.message}`);
  process.exit(1);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a reset at the end of a run is not an error worth printing
});
process.on('SIGTERM', () => process.exit(0));
