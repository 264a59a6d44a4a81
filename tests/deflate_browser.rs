//! Chromium with permessage-deflate (RFC 7692), which it offers on every
//! connection, checked on both sides that compression was negotiated and
//! used: the page reports what its WebSocket agreed (`ws.extensions`), and a
//! sniffing relay (`common::tap`) between the browser and our server sees
//! the `101` answer carry `Sec-WebSocket-Extensions: permessage-deflate`
//! and RSV1 on data messages in both directions.
//!
//! - `chromium_echoes_through_wsecho_deflate`: `wsecho --deflate` echoes
//!   text and binary, 0 B to 1 MiB, compressible and random, compared byte
//!   for byte in the page; every message our server sends is compressed.
//! - `chat_page_in_two_tabs_with_compression`: the `chat` example (built
//!   with `deflate`) with two tabs chatting through the relay.
//!
//! Skipped, saying so, with `RFC6455_SKIP_BROWSER=1`; otherwise a missing
//! browser fails the test (see `common::browser`). Only built with
//! `--features deflate`.
#![cfg(feature = "deflate")]

mod common;

use common::browser::{browser, chat_example, page_and_wsecho, run_browser_test, start_server};
use common::tap::{tap, Seen};
use std::path::Path;

/// The page saw permessage-deflate agreed on each of its `expected` sockets.
fn assert_page_agreed(stdout: &str, expected: usize) {
    let agreed = stdout
        .lines()
        .filter(|l| l.contains("extensions \"permessage-deflate"))
        .count();
    assert_eq!(
        agreed, expected,
        "the page's WebSockets did not all agree permessage-deflate:\n{stdout}"
    );
}

/// What the relay saw: a compressing handshake per page socket, compressed
/// messages both ways, and every message from our server compressed (it
/// compresses everything; Chromium may send a message it cannot shrink as
/// it is, RFC 7692 §6.1 allows either).
fn assert_wire(seen: &Seen, sockets: usize) {
    seen.assert_deflate_negotiated();
    assert_eq!(seen.extensions().len(), sockets, "{:?}", seen.extensions());
    seen.assert_compressed_both_ways();
    let down = seen.to_client();
    assert_eq!(
        down.compressed, down.messages,
        "our server sent some messages uncompressed: {down:?}"
    );
}

#[test]
fn chromium_echoes_through_wsecho_deflate() {
    let Some(browser) = browser() else { return };
    let (chat, echo) = page_and_wsecho(&["--deflate"]);
    let (relay, seen) = tap(echo.addr);
    let page = format!("http://{}/", chat.addr);
    let ws = format!("ws://{relay}/");
    let stdout = run_browser_test(browser, &["echo", &page, &ws]);
    assert_page_agreed(&stdout, 1);
    assert_wire(&seen, 1);
    // Each of the 22 messages went out and came back.
    let (up, down) = (seen.to_server(), seen.to_client());
    assert_eq!((up.messages, down.messages), (22, 22), "{up:?} {down:?}");
}

#[test]
fn chat_page_in_two_tabs_with_compression() {
    let Some(browser) = browser() else { return };
    // The page is loaded through the relay too, so its origin is the
    // relay's: let any origin in.
    let chat = start_server(
        &chat_example(),
        &["--listen", "127.0.0.1:0", "--any-origin"],
        "open http://",
    );
    let (relay, seen) = tap(chat.addr);
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-deflate.png");
    let page = format!("http://{relay}/");
    let stdout = run_browser_test(browser, &["chat", &page, screenshot.to_str().unwrap()]);
    assert_page_agreed(&stdout, 2);
    assert_wire(&seen, 2);
    // Three typed messages, each broadcast to both tabs, and one from
    // GET /receive, to both.
    let (up, down) = (seen.to_server(), seen.to_client());
    assert_eq!((up.messages, down.messages), (3, 8), "{up:?} {down:?}");
}
