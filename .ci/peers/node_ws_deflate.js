// Interop peer for permessage-deflate (RFC 7692): Node `ws` with
// `perMessageDeflate: true`, as a client or as an echo server.
//
// usage: node node_ws_deflate.js client ws://HOST:PORT/
//        node node_ws_deflate.js server
//
// client: fails unless the server accepted permessage-deflate; sends
// compressible text and random binary messages of every size, checks the
// echoes, closes with 1000; prints "extensions ..." and exits 0.
// server: echoes with compression on; prints "listening PORT", then
// "negotiated ..." for each connection.
"use strict";

const WebSocket = require("ws");
const crypto = require("crypto");

const SIZES = [0, 1, 125, 126, 65536, 1 << 20];
const [mode, url] = process.argv.slice(2);

function fail(why) {
  console.error(`node_ws_deflate: ${why}`);
  process.exit(1);
}

function textOf(n) {
  return 'compressible json-like text {"k": 1} '.repeat(Math.floor(n / 38) + 1).slice(0, n);
}

if (mode === "server") {
  const wss = new WebSocket.WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: true });
  wss.on("listening", () => console.log(`listening ${wss.address().port}`));
  wss.on("connection", (ws) => {
    console.log(`negotiated ${ws.extensions}`);
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
} else {
  setTimeout(() => fail("timed out"), 120_000).unref();
  const ws = new WebSocket(url, { perMessageDeflate: true, maxPayload: 0 });
  const queue = [];
  let waiting = null;
  ws.on("message", (data, isBinary) => {
    const item = { data, isBinary };
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(item);
    } else queue.push(item);
  });
  const next = () => new Promise((resolve) => (queue.length ? resolve(queue.shift()) : (waiting = resolve)));
  ws.on("error", (e) => fail(`error: ${e.message}`));
  ws.on("open", async () => {
    if (!ws.extensions.startsWith("permessage-deflate")) fail(`not accepted: ${ws.extensions}`);
    for (const n of SIZES) {
      for (const [data, binary] of [[textOf(n), false], [crypto.randomBytes(n), true]]) {
        ws.send(data, { binary });
        const echo = await next();
        const expected = Buffer.from(data);
        if (echo.isBinary !== binary) fail(`${n} bytes came back with binary=${echo.isBinary}`);
        if (!Buffer.from(echo.data).equals(expected)) fail(`echo of ${n} bytes differs`);
      }
    }
    ws.on("close", (code) => {
      if (code !== 1000) fail(`close code ${code}`);
      console.log(`extensions ${ws.extensions}`);
      process.exit(0);
    });
    ws.close(1000, "done");
  });
}
