// Interop peer over TLS: Node `ws` over `https` / `tls`.
//
//   node node_ws_tls_peer.js server CERT KEY
//       Echo server on an https.createServer (127.0.0.1, a port the OS
//       picks); prints `PORT <n>`, then `CLOSED <code>` per connection.
//       Exits when stdin reaches EOF.
//   node node_ws_tls_peer.js client URL CAFILE
//       Connects to a wss:// URL trusting CAFILE, checks echoes of text and
//       binary messages of several sizes and a ping, closes with 1000,
//       prints `OK`; exits 1 on any mismatch.
"use strict";

const fs = require("fs");
const https = require("https");
const { WebSocket, WebSocketServer } = require("ws");

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20];

function server(cert, key) {
  const web = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
  const wss = new WebSocketServer({ server: web, perMessageDeflate: false, maxPayload: 16 << 20 });
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on("close", (code) => console.log(`CLOSED ${code}`));
    ws.on("error", (e) => console.error(`node_ws_tls_peer: ${e.message}`));
  });
  web.listen(0, "127.0.0.1", () => console.log(`PORT ${web.address().port}`));
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

function fail(why) {
  console.error(`node_ws_tls_peer: ${why}`);
  process.exit(1);
}

function client(url, cafile) {
  const ws = new WebSocket(url, { ca: fs.readFileSync(cafile), perMessageDeflate: false });
  const expected = [];
  for (const size of SIZES) {
    expected.push({ data: "a".repeat(size), binary: false });
    expected.push({ data: Buffer.from(Array.from({ length: size }, (_, i) => i % 251)), binary: true });
  }
  expected.push({ data: "héllo wörld ✓", binary: false });
  let next = 0;
  const send = () => ws.send(expected[next].data, { binary: expected[next].binary });
  ws.on("open", send);
  ws.on("message", (data, isBinary) => {
    const want = expected[next];
    const same = want.binary
      ? isBinary && Buffer.compare(data, want.data) === 0
      : !isBinary && data.toString() === want.data;
    if (!same) fail(`message ${next} did not come back as sent`);
    next += 1;
    if (next < expected.length) return send();
    ws.ping(Buffer.from("tls ping"));
  });
  ws.on("pong", (data) => {
    if (data.toString() !== "tls ping") fail("wrong pong payload");
    ws.close(1000, "done");
  });
  ws.on("close", (code) => {
    if (next !== expected.length) fail(`closed early (${code})`);
    console.log("OK");
    process.exit(0);
  });
  ws.on("error", (e) => fail(e.message));
}

const [mode, a, b] = process.argv.slice(2);
if (mode === "server") server(a, b);
else client(a, b);
