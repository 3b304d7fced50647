#!/usr/bin/node
'use strict';
// A stand-in for build/tether built on `ws`, to test the interop harness itself.
// Implements just the CLI surface the interop programs use (see CONTRACT.md):
//   fake_tether.js serve --host H --port P --mode echo
//   fake_tether.js connect URL --echo --json-events
// It is not tether: where ws answers a violation differently, the harness reports it.

const { WebSocket, WebSocketServer } = require('ws');

const MAX = 16 * 1024 * 1024;
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

function serve(host, port) {
  const wss = new WebSocketServer({ host, port, maxPayload: MAX });
  wss.on('listening', () => process.stdout.write(`listening ws://${host}:${wss.address().port}\n`));
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  process.on('SIGTERM', () => {
    for (const ws of wss.clients) ws.close(1001, 'going away');
    wss.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  });
}

function connect(url) {
  const ws = new WebSocket(url, { maxPayload: MAX, perMessageDeflate: false });
  let protocolError = null;
  ws.on('open', () => emit({ event: 'open', url, attempt: 1 }));
  ws.on('message', (data, isBinary) => {
    emit(isBinary ? { event: 'message', type: 'binary', base64: data.toString('base64') }
      : { event: 'message', type: 'text', data: data.toString('utf8') });
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', (err) => { protocolError = err; });
  ws.on('close', (code, reason) => {
    if (protocolError && protocolError.code && protocolError.code.startsWith('WS_ERR_')) {
      // ws reports the peer's echo (or 1006); the code we failed with is the one to print.
      const sent = { WS_ERR_INVALID_UTF8: 1007, WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009 }[protocolError.code] || 1002;
      emit({ event: 'close', code: sent, reason: protocolError.message, clean: false, cause: 'protocol_error' });
      process.exitCode = 1; // no process.exit(): it would cut off stdout still in the pipe
      return;
    }
    const clean = code !== 1006;
    emit({ event: 'close', code, reason: reason.toString(), clean, cause: clean ? 'remote_close' : 'network_error' });
    process.exitCode = clean ? 0 : 1;
  });
}

const argv = process.argv.slice(2);
if (argv[0] === 'serve') {
  const opts = {};
  for (let i = 1; i + 1 < argv.length; i += 2) opts[argv[i]] = argv[i + 1];
  serve(opts['--host'] || '127.0.0.1', Number(opts['--port'] || 8080));
} else if (argv[0] === 'connect' && argv[1]) {
  connect(argv[1]);
} else {
  console.error('usage: fake_tether.js serve ... | connect URL --echo --json-events');
  process.exit(2);
}
