// Node `ws` as a client of our server.
//
// usage: node node_ws_client.js ws://HOST:PORT/ SIZES
//
// Sends text and binary messages of each size (comma separated) and checks
// the echoes, pings and checks the pong, closes with 1000 and checks the
// server's close reply. Exits 0 on success, 1 with the reason otherwise.
"use strict";

const WebSocket = require("ws");
const { messages, describe } = require("./peer_payloads");

const [url, sizeArg] = process.argv.slice(2);

function fail(why) {
  console.error(`node_ws_client: ${why}`);
  process.exit(1);
}

setTimeout(() => fail("timed out"), 60_000).unref();

const ws = new WebSocket(url, { perMessageDeflate: false });
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
const next = () =>
  new Promise((resolve) => {
    if (queue.length) resolve(queue.shift());
    else waiting = resolve;
  });
ws.on("error", (e) => fail(`error: ${e.message}`));

ws.on("open", async () => {
  for (const [kind, payload] of messages(sizeArg)) {
    ws.send(payload, { binary: kind === "binary" });
    const { data, isBinary } = await next();
    if (isBinary !== (kind === "binary")) {
      fail(`${describe(kind, payload)}: echo came back as ${isBinary ? "binary" : "text"}`);
    }
    const same = kind === "text" ? data.toString("utf8") === payload : data.equals(payload);
    if (!same) fail(`${describe(kind, payload)}: echo differs (${data.length} bytes)`);
  }

  const pong = new Promise((resolve) => ws.once("pong", resolve));
  ws.ping(Buffer.from("are you there?"));
  const data = await pong;
  if (data.toString() !== "are you there?") fail(`ping: pong carried ${JSON.stringify(data.toString())}`);

  ws.on("close", (code) => {
    if (code !== 1000) fail(`close: the server answered with code ${code}`);
    console.log("node_ws_client: ok");
    process.exit(0);
  });
  ws.close(1000, "done");
});
