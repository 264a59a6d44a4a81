//! A real browser against our servers: Debian's chromium, driven by npm
//! `playwright-core` from `.ci/peers/browser_test.js` (playwright cannot
//! download a browser here, so it launches `/usr/bin/chromium`).
//!
//! - `chat_page_in_two_tabs`: the `chat` example's page in two tabs; what
//!   one tab sends shows up in the other, and so does `GET /receive?msg=`.
//!   One tab is saved as a screenshot: `docs/chat.png` when
//!   `RFC6455_SCREENSHOT=1`, else under `target/tmp/` (tests do not dirty
//!   the tree).
//! - `browser_echoes_through_wsecho`: a page (from the chat server's origin:
//!   a page must come from 127.0.0.1 to open a WebSocket to 127.0.0.1)
//!   echoes text and binary messages up to 1 MiB through `wsecho` and
//!   compares them byte for byte in the page.
//!
//! The browser and the Node packages come from `.ci/peers.sh`
//! (`common::browser`); the tests fail, saying so, when they cannot be had,
//! unless `RFC6455_SKIP_BROWSER=1`. With compression: `tests/deflate_browser.rs`.

mod common;

use common::browser::{browser, chat_example, page_and_wsecho, run_browser_test, start_server};
use common::repo;
use std::path::Path;

// ---------------------------------------------------------------------------

#[test]
fn chat_page_in_two_tabs() {
    let Some(browser) = browser() else { return };
    let chat = start_server(
        &chat_example(),
        &["--listen", "127.0.0.1:0"],
        "open http://",
    );
    let screenshot = if std::env::var("RFC6455_SCREENSHOT").as_deref() == Ok("1") {
        let docs = repo().join("docs");
        std::fs::create_dir_all(&docs).expect("create docs/");
        docs.join("chat.png")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat.png")
    };
    let _ = std::fs::remove_file(&screenshot);
    let page = format!("http://{}/", chat.addr);
    run_browser_test(browser, &["chat", &page, screenshot.to_str().unwrap()]);
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        screenshot.display()
    );
}

#[test]
fn browser_echoes_through_wsecho() {
    let Some(browser) = browser() else { return };
    let (chat, echo) = page_and_wsecho(&[]);
    let page = format!("http://{}/", chat.addr);
    let ws = format!("ws://{}/", echo.addr);
    run_browser_test(browser, &["echo", &page, &ws]);
}
