// Real-browser checks with Debian's chromium driven by playwright-core
// (which cannot download a browser here, so executablePath is required).
//
//   node browser_test.js chat http://127.0.0.1:PORT/ SCREENSHOT.png
//     Two tabs on the chat page connect; a message typed in one shows up in
//     the other (and in the sender's, it is a broadcast); GET /receive?msg=
//     shows up in both; one tab is saved as a screenshot.
//
//   node browser_test.js echo http://127.0.0.1:PAGEPORT/ ws://127.0.0.1:ECHOPORT/
//     From a page of that origin (a page must come from 127.0.0.1 to open a
//     WebSocket to 127.0.0.1), echo text and binary messages up to 1 MiB,
//     patterned and random, through the echo server and compare them byte
//     for byte in the page.
//
// Both modes print on stdout the extensions each WebSocket agreed
// (`browser_test: ... extensions "permessage-deflate; ..."`).
//
// Environment: RFC6455_CHROMIUM (default /usr/bin/chromium).
// Prints `browser_test: ok` and exits 0 on success; exits 1 with the reason.
"use strict";

const { chromium } = require("playwright-core");

const STEP_TIMEOUT = 20_000;

function log(...args) {
  console.error("browser_test:", ...args);
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.RFC6455_CHROMIUM || "/usr/bin/chromium",
    // Root in a container: no user namespaces for the sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
    timeout: 60_000,
  });
}

/** A page that fails the run on any uncaught exception in it. */
async function newPage(context, name) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on("pageerror", (e) => {
    console.error(`browser_test: uncaught error in ${name}: ${e.message}`);
    process.exitCode = 1;
  });
  page.on("console", (m) => log(`[${name} console.${m.type()}] ${m.text()}`));
  return page;
}

/** Waits until `#content` of `page` has an item whose text is `text`. */
async function waitForItem(page, name, text) {
  try {
    await page.waitForFunction(
      (t) => [...document.querySelectorAll("#content li")].some((li) => li.textContent === t),
      text,
      // Not the default requestAnimationFrame polling: a tab in the
      // background gets no animation frames.
      { polling: 100 },
    );
  } catch (e) {
    const items = await page.$$eval("#content li", (lis) => lis.map((li) => li.textContent));
    throw new Error(`${name} never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(items)}`);
  }
}

async function chat(pageUrl, screenshot) {
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 760, height: 560 } });
    const alice = await newPage(context, "tab 1");
    const bob = await newPage(context, "tab 2");
    for (const [page, name] of [[alice, "tab 1"], [bob, "tab 2"]]) {
      await page.goto(pageUrl);
      await page.click("#connect");
      await page.waitForSelector("#status.open");
      log(`${name}: ${await page.textContent("#status")}`);
      // What the browser agreed to in the handshake (the page's `socket`).
      const extensions = await page.evaluate(() => socket.extensions);
      console.log(`browser_test: ${name} extensions ${JSON.stringify(extensions)}`);
    }

    const conversation = [
      [alice, "Hello from tab 1!"],
      [bob, "Hi tab 1, tab 2 here: h\u00e9llo w\u00f6rld \u20ac"],
      [alice, "Both tabs see every message (it is a broadcast)."],
    ];
    for (const [from, text] of conversation) {
      // Like a person switching tabs; it also spares the click's
      // actionability checks waiting for frames in a background tab.
      await from.bringToFront();
      await from.fill("#message", text);
      await from.click("#send");
      await waitForItem(alice, "tab 1", text);
      await waitForItem(bob, "tab 2", text);
    }
    log("messages typed in one tab showed up in both");

    const note = "Hello from GET /receive?msg= (no browser needed)";
    const response = await fetch(new URL(`/receive?msg=${encodeURIComponent(note)}`, pageUrl));
    const body = await response.text();
    if (!response.ok) throw new Error(`/receive answered ${response.status}: ${body}`);
    log(`/receive: ${body.trim()}`);
    await waitForItem(alice, "tab 1", note);
    await waitForItem(bob, "tab 2", note);
    log("/receive showed up in both tabs");

    // Something typed but not yet sent, so the screenshot shows the input.
    await alice.bringToFront();
    await alice.fill("#message", "typing\u2026");
    await alice.screenshot({ path: screenshot });
    log(`screenshot: ${screenshot}`);
  } finally {
    await browser.close();
  }
}

async function echo(pageUrl, wsUrl) {
  const browser = await launch();
  try {
    const page = await newPage(await browser.newContext(), "echo page");
    await page.goto(pageUrl);
    // Runs in the page: a real browser WebSocket against the echo server.
    const result = await page.evaluate(async (url) => {
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      const inbox = [];
      let wake = null;
      ws.onmessage = (e) => {
        inbox.push(e.data);
        if (wake) wake();
      };
      const closed = new Promise((resolve) => {
        ws.onclose = (e) => {
          if (wake) wake();
          resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
        };
      });
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error(`cannot open ${url}`));
      });
      const next = async () => {
        while (!inbox.length) {
          if (ws.readyState === WebSocket.CLOSED) throw new Error("closed while waiting for an echo");
          await new Promise((resolve) => (wake = resolve));
        }
        return inbox.shift();
      };
      // Compressible (a pattern) and random (what compression cannot
      // shrink), so that both kinds cross a connection that compresses.
      const patterned = (size) => {
        const out = new Uint8Array(size);
        for (let i = 0; i < size; i++) out[i] = (i * 31 + size) & 0xff;
        return out;
      };
      const random = (size) => {
        const out = new Uint8Array(size);
        // getRandomValues fills at most 65536 bytes a call.
        for (let at = 0; at < size; at += 65536) crypto.getRandomValues(out.subarray(at, at + 65536));
        return out;
      };
      const randomText = (chars) => {
        const codes = random(chars * 2);
        let text = "";
        for (let i = 0; i < chars; i++) {
          // Letters, Latin-1 and Cyrillic: 1- and 2-byte UTF-8, no pattern.
          const c = codes[2 * i] | (codes[2 * i + 1] << 8);
          text += String.fromCharCode(c % 3 === 0 ? 0x21 + (c % 94) : c % 3 === 1 ? 0xa1 + (c % 95) : 0x410 + (c % 64));
        }
        return text;
      };
      const checked = [];
      const texts = ["", "hello", "h\u00e9llo w\u00f6rld \u20ac \u{1d11e}", "x".repeat(65536),
        "\u20ac".repeat(300000), randomText(125), randomText(70000), randomText(550000)];
      for (const text of texts) {
        ws.send(text);
        const got = await next();
        if (got !== text) throw new Error(`text of ${text.length} chars came back different`);
        checked.push(`text ${new TextEncoder().encode(text).length} bytes`);
      }
      for (const [kind, bytes] of [["patterned", patterned], ["random", random]]) {
        for (const size of [0, 1, 125, 126, 65535, 65536, 1 << 20]) {
          const sent = bytes(size);
          ws.send(sent.buffer);
          const got = await next();
          if (!(got instanceof ArrayBuffer)) throw new Error(`binary of ${size} bytes came back as ${typeof got}`);
          const view = new Uint8Array(got);
          if (view.length !== size) throw new Error(`binary of ${size} bytes came back with ${view.length}`);
          for (let i = 0; i < size; i++) {
            if (view[i] !== sent[i]) throw new Error(`${kind} binary of ${size} bytes differs at byte ${i}`);
          }
          checked.push(`${kind} binary ${size} bytes`);
        }
      }
      const extensions = ws.extensions;
      ws.close(1000, "done");
      return { checked, extensions, close: await closed };
    }, wsUrl);
    log(`echoed byte-exact: ${result.checked.join(", ")}`);
    console.log(`browser_test: extensions ${JSON.stringify(result.extensions)}`);
    const { code, wasClean } = result.close;
    if (code !== 1000 || !wasClean) throw new Error(`close: code ${code}, clean ${wasClean}`);
    log("closed cleanly with 1000");
  } finally {
    await browser.close();
  }
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  const timer = setTimeout(() => {
    console.error("browser_test: timed out");
    process.exit(1);
  }, 120_000);
  if (mode === "chat" && args.length === 2) await chat(args[0], args[1]);
  else if (mode === "echo" && args.length === 2) await echo(args[0], args[1]);
  else throw new Error("usage: browser_test.js chat PAGE_URL SCREENSHOT | echo PAGE_URL WS_URL");
  clearTimeout(timer);
  if (process.exitCode) process.exit(process.exitCode);
  console.log("browser_test: ok");
}

main().catch((e) => {
  console.error(`browser_test: ${e.stack || e}`);
  process.exit(1);
});
