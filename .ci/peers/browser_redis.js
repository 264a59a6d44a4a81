// Two Chromium tabs on the chat page, each through nginx to a different chat
// instance (nginx listens on one port per instance), the instances joined by
// Redis: what one tab types shows up in the other.
//
//   node browser_redis.js http://127.0.0.1:PORT_A/ http://127.0.0.1:PORT_B/
//
// Environment: RFC6455_CHROMIUM (default /usr/bin/chromium).
// Prints `browser_redis: ok` and exits 0 on success; exits 1 with the reason.
"use strict";

const { chromium } = require("playwright-core");

const STEP_TIMEOUT = 20_000;

function log(...args) {
  console.error("browser_redis:", ...args);
}

async function tab(context, name, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on("pageerror", (e) => {
    log(`uncaught error in ${name}: ${e.message}`);
    process.exitCode = 1;
  });
  await page.goto(url);
  await page.click("#connect");
  await page.waitForSelector("#status.open");
  log(`${name}: ${await page.textContent("#status")}`);
  return page;
}

/** The texts of the items shown in the page's message list. */
function items(page) {
  return page.$$eval("#content li", (lis) => lis.map((li) => li.textContent));
}

async function waitForItem(page, name, text, timeout = STEP_TIMEOUT) {
  try {
    await page.waitForFunction(
      (t) => [...document.querySelectorAll("#content li")].some((li) => li.textContent === t),
      text,
      { polling: 100, timeout }, // polling: a background tab gets no animation frames
    );
  } catch (e) {
    throw new Error(`${name} never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(await items(page))}`);
  }
}

async function main() {
  const [urlA, urlB] = process.argv.slice(2);
  if (!urlB) throw new Error("usage: browser_redis.js PAGE_URL_A PAGE_URL_B");
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
    const context = await browser.newContext();
    const alice = await tab(context, "tab A", urlA);
    const bob = await tab(context, "tab B", urlB);
    // The instances subscribe to the room in the background: say hello
    // until the other tab hears it.
    let linked = false;
    for (let i = 0; i < 50 && !linked; i++) {
      await alice.evaluate((n) => {
        document.getElementById("message").value = `hello ${n}`;
        document.getElementById("send").click();
      }, i);
      try {
        await waitForItem(bob, "tab B", `hello ${i}`, 300);
        linked = true;
      } catch (e) {
        // not yet
      }
    }
    if (!linked) throw new Error("tab B never heard tab A");
    const conversation = [
      [alice, "From tab A, on instance A"],
      [bob, "From tab B, on instance B: h\u00e9llo \u20ac"],
      [alice, "Redis carried both"],
    ];
    for (const [from, text] of conversation) {
      await from.bringToFront();
      await from.fill("#message", text);
      await from.click("#send");
      await waitForItem(alice, "tab A", text);
      await waitForItem(bob, "tab B", text);
    }
    log("each tab showed what the other typed");
  } finally {
    await browser.close();
  }
  clearTimeout(timer);
  if (process.exitCode) process.exit(process.exitCode);
  console.log("browser_redis: ok");
}

main().catch((e) => {
  log(e.stack || String(e));
  process.exit(1);
});
