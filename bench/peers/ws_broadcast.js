// ws_broadcast.js: Node `ws` broadcast server, the peer of `tether serve --mode broadcast`
// for bench/fanout.sh: every message received is sent to every open connection, the sender
// included, with the same opcode.
//
//   NODE_PATH=tests/interop/node_modules node bench/peers/ws_broadcast.js [PORT]
//
// Listens on 127.0.0.1:PORT (0 or absent: a free port) and prints `listening ws://127.0.0.1:PORT`
// as its first stdout line. Written the way the `ws` README writes a broadcast: iterate
// wss.clients and ws.send(data, { binary }) to each OPEN client. Deliberate settings, all
// matching tether's server: perMessageDeflate off (also ws's default for servers), maxPayload
// 16 MiB (tether's max_message), no heartbeat (the bench runs tether with --ping-interval 0).
// `ws` sets TCP_NODELAY on its sockets by default. Exits on SIGTERM/SIGINT.
'use strict';

const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`ws_broadcast.js: bad port '${process.argv[2]}'`);
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
});

wss.on('connection', (ws) => {
  ws.on('error', (err) => console.error(`ws_broadcast.js: connection error: ${err.message}`));
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});

wss.on('listening', () => {
  process.stdout.write(`listening ws://127.0.0.1:${wss.address().port}\n`);
});
wss.on('error', (err) => {
  console.error(`ws_broadcast.js: ${err.message}`);
  process.exit(1);
});

const stop = () => {
  for (const client of wss.clients) client.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
