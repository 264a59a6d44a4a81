// A Chromium tab on the chat page (with --history) through nginx loses its
// instance (the test kills it), reconnects by itself to the other one and
// shows the messages sent while it was away, with no notice that recovery
// failed.
//
//   node browser_recovery.js http://127.0.0.1:PORT/?room=lobby
//
// Talks to the test on stdout: prints `browser_recovery: open` once
// connected, `browser_recovery: heard before` once the test's first message
// shows, then waits for `away 0` … `away 9` and prints `browser_recovery:
// ok`. Environment: RFC6455_CHROMIUM (default /usr/bin/chromium).
"use strict";

const { chromium } = require("playwright-core");

const AWAY = 10;

function log(...args) {
  console.error("browser_recovery:", ...args);
}

async function shows(page, text, timeout) {
  try {
    await page.waitForFunction(
      (t) => [...document.querySelectorAll("#content li")].some((li) => li.textContent === t),
      text,
      { polling: 100, timeout },
    );
  } catch (e) {
    const items = await page.$$eval("#content li", (lis) => lis.map((li) => li.textContent));
    throw new Error(`the tab never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(items)}`);
  }
}

async function main() {
  const [url] = process.argv.slice(2);
  if (!url) throw new Error("usage: browser_recovery.js PAGE_URL");
  const timer = setTimeout(() => {
    log("timed out");
    process.exit(1);
  }, 120_000);
  const browser = await chromium.launch({
    executablePath: process.env.RFC6455_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
    timeout: 60_000,
  });
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(20_000);
    page.on("pageerror", (e) => {
      log(`uncaught error: ${e.message}`);
      process.exitCode = 1;
    });
    await page.goto(url);
    await page.click("#connect");
    await page.waitForSelector("#status.open");
    console.log("browser_recovery: open");
    await shows(page, "before", 20_000);
    console.log("browser_recovery: heard before");
    for (let i = 0; i < AWAY; i++) await shows(page, `away ${i}`, 60_000);
    const state = await page.evaluate(() => ({
      connects: window.chatState.connects,
      recovered: window.chatState.recovered,
      warnings: [...document.querySelectorAll("#content li.warn")].map((li) => li.textContent),
      items: [...document.querySelectorAll("#content li")].map((li) => li.textContent),
    }));
    log(JSON.stringify(state));
    if (state.connects < 2) throw new Error("the tab never reconnected");
    if (state.warnings.length) throw new Error(`recovery notices: ${state.warnings}`);
    if (!state.recovered.includes(true)) throw new Error("no recovery report");
    const away = state.items.filter((t) => t.startsWith("away "));
    const want = [...Array(AWAY).keys()].map((i) => `away ${i}`);
    if (JSON.stringify(away) !== JSON.stringify(want)) throw new Error(`out of order or repeated: ${away}`);
  } finally {
    await browser.close();
  }
  clearTimeout(timer);
  if (process.exitCode) process.exit(process.exitCode);
  console.log("browser_recovery: ok");
}

main().catch((e) => {
  log(e.stack || String(e));
  process.exit(1);
});
