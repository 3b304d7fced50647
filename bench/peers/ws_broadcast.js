// ws_broadcast.js: Node `ws` broadcast server, the peer of `tether serve --mode broadcast`
// for bench/fanout.sh: every message received is sent to every open connection, the sender
// included, with the same opcode.
//
//   NODE_PATH=tests/interop/node_modules node bench/peers/ws_broadcast.js [PORT]
//       [--tls-cert FILE --tls-key FILE] [--deflate]
//
// Listens on 127.0.0.1:PORT (0 or absent: a free port) and prints `listening ws://127.0.0.1:PORT`
// (`wss://` with TLS) as its first stdout line. Written the way the `ws` README writes a
// broadcast: iterate wss.clients and ws.send(data, { binary }) to each OPEN client. Deliberate
// settings, all matching tether's server: perMessageDeflate off (also ws's default for servers)
// unless --deflate, maxPayload 16 MiB (tether's max_message), no heartbeat (the bench runs tether
// with --ping-interval 0). `ws` sets TCP_NODELAY on its sockets by default. Exits on
// SIGTERM/SIGINT.
//
// --tls-cert/--tls-key (PEM): the `ws` README's way, a WebSocketServer on an https.Server
// (Node's defaults otherwise: TLS 1.2 or later, its default ciphers), like `tether serve
// --tls-cert F --tls-key F`.
//
// --deflate: permessage-deflate set up like `tether serve --deflate` (docs/cli.md), not like
// ws's own defaults, which differ in three places:
//   threshold 64 (tether's default; ws's is 1024, which would leave messages of a few hundred
//     bytes uncompressed);
//   serverNoContextTakeover and clientNoContextTakeover true (tether's answer asks for both;
//     ws's defaults are false, and with serverNoContextTakeover false ws even declines an offer
//     that asks for server_no_context_takeover, as tether's client offer does);
//   zlib level 6, memLevel 8, 15-bit windows: zlib's defaults, which ws and tether both use.
// ws keeps its concurrencyLimit of 10 zlib jobs in flight (libuv's thread pool); the threads
// inherit the process's CPU affinity, so with taskset they share the server's one CPU, and
// /proc/PID/stat counts them.
'use strict';

const fs = require('fs');
const https = require('https');
const { WebSocketServer, WebSocket } = require('ws');

const args = process.argv.slice(2);
let port = 0;
let tlsCert = null;
let tlsKey = null;
let deflate = false;
for (let i = 0; i < args.length; ++i) {
  const a = args[i];
  if (a === '--tls-cert' && i + 1 < args.length) tlsCert = args[++i];
  else if (a === '--tls-key' && i + 1 < args.length) tlsKey = args[++i];
  else if (a === '--deflate') deflate = true;
  else if (i === 0 && /^[0-9]+$/.test(a)) port = Number(a);
  else {
    console.error(`ws_broadcast.js: bad argument '${a}'`);
    process.exit(2);
  }
}
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`ws_broadcast.js: bad port '${port}'`);
  process.exit(2);
}
if ((tlsCert === null) !== (tlsKey === null)) {
  console.error('ws_broadcast.js: --tls-cert and --tls-key go together');
  process.exit(2);
}

const perMessageDeflate = deflate
  ? {
      threshold: 64,
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      zlibDeflateOptions: { level: 6, memLevel: 8 },
    }
  : false;

let httpsServer = null;
const serverOptions = { perMessageDeflate, maxPayload: 16 * 1024 * 1024 };
if (tlsCert !== null) {
  httpsServer = https.createServer({ cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) });
  serverOptions.server = httpsServer;
} else {
  serverOptions.host = '127.0.0.1';
  serverOptions.port = port;
}
const wss = new WebSocketServer(serverOptions);
const scheme = httpsServer ? 'wss' : 'ws';

wss.on('connection', (ws) => {
  ws.on('error', (err) => console.error(`ws_broadcast.js: connection error: ${err.message}`));
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});

const announce = (address) => process.stdout.write(`listening ${scheme}://127.0.0.1:${address.port}\n`);
if (httpsServer) {
  httpsServer.on('error', (err) => {
    console.error(`ws_broadcast.js: ${err.message}`);
    process.exit(1);
  });
  // A failed TLS handshake ends that connection only: log it (fanout.sh shows stderr), keep serving.
  httpsServer.on('tlsClientError', (err) => console.error(`ws_broadcast.js: TLS: ${err.message}`));
  httpsServer.listen(port, '127.0.0.1', () => announce(httpsServer.address()));
} else {
  wss.on('listening', () => announce(wss.address()));
}
wss.on('error', (err) => {
  console.error(`ws_broadcast.js: ${err.message}`);
  process.exit(1);
});

const stop = () => {
  for (const client of wss.clients) client.terminate();
  if (httpsServer) httpsServer.close();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
