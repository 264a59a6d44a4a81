// Chromium over TLS: an https:// page from our server opens wss:// to the
// same origin and echoes text and binary messages up to 1 MiB, comparing
// them byte for byte in the page.
//
//   node browser_tls_test.js https://localhost:PORT/
//
// The certificate is made at test time by a CA the browser does not know:
// chromium runs with --ignore-certificate-errors (and playwright's
// ignoreHTTPSErrors), for this test only.
// Environment: RFC6455_CHROMIUM (default /usr/bin/chromium).
// Prints `browser_tls_test: ok` and exits 0 on success; exits 1 with the reason.
"use strict";

const { chromium } = require("playwright-core");

async function main() {
  const url = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.RFC6455_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors"],
    timeout: 60_000,
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error(`browser_tls_test: page error: ${e.message}`));
    await page.goto(url, { timeout: 30_000 });
    const handle = await page.waitForFunction(() => window.result, null, { timeout: 60_000 });
    const result = await handle.jsonValue();
    if (result !== "ok") throw new Error(`the page says: ${result}`);
    console.log("browser_tls_test: ok");
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`browser_tls_test: ${e.message}`);
    process.exit(1);
  },
);
