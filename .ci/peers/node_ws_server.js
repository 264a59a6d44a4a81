// Node `ws` WebSocketServer echo server, for our client to talk to.
//
// usage: node node_ws_server.js
//
// Listens on 127.0.0.1 on a port the OS picks and prints `PORT <n>` once it
// accepts connections. Echoes text as text and binary as binary; `ws`
// answers pings itself. Exits when stdin reaches EOF, so it never outlives
// the test that started it.
"use strict";

const { WebSocketServer } = require("ws");

const server = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: false,
  maxPayload: 16 << 20,
});
server.on("listening", () => console.log(`PORT ${server.address().port}`));
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("error", (e) => console.error(`node_ws_server: ${e.message}`));
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
