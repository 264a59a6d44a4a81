//! Chromium over TLS (feature `tls`): an `https://` page served by our
//! `http_handler` opens `wss://` to the same origin and echoes text and
//! binary messages up to 1 MiB through our server, checked in the page.
//! Driven by `.ci/peers/browser_tls_test.js` (playwright-core launching
//! Debian's chromium with `--ignore-certificate-errors`: the certificate is
//! made by rcgen at test time). Skipped, saying so, when
//! `RFC6455_SKIP_BROWSER=1`; otherwise a missing browser fails the test.
#![cfg(feature = "tls")]

mod common;

use common::{install_peers, node_missing, repo};
use rfc6455::{HttpResponse, Server, ServerConfig};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The page: echoes every size as text and as binary, then sets
/// `window.result` to "ok" or to what went wrong.
const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>wss echo</title>
<script>
const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const expected = [];
for (const n of sizes) {
  expected.push("é".repeat(Math.floor(n / 2)));
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  expected.push(b);
}
const ws = new WebSocket(`wss://${location.host}/ws`);
ws.binaryType = "arraybuffer";
let next = 0;
const send = () => ws.send(expected[next]);
ws.onopen = send;
ws.onmessage = (e) => {
  const want = expected[next];
  let same;
  if (typeof want === "string") same = e.data === want;
  else {
    const got = new Uint8Array(e.data);
    same = got.length === want.length && got.every((v, i) => v === want[i]);
  }
  if (!same) { window.result = `message ${next} differs`; return; }
  next += 1;
  if (next < expected.length) send(); else ws.close(1000, "done");
};
ws.onclose = (e) => {
  if (!window.result) window.result = next === expected.length && e.code === 1000 ? "ok" : `closed ${e.code} after ${next}`;
};
ws.onerror = () => { window.result = window.result || "websocket error"; };
</script>"#;

#[test]
fn chromium_https_page_echoes_over_wss() {
    if std::env::var("RFC6455_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("RFC6455_SKIP_BROWSER=1: skipping the TLS browser test");
        return;
    }
    let node_dir = std::env::var_os("RFC6455_PEERS_NODE_DIR")
        .map_or_else(|| repo().join(".ci").join("peers"), PathBuf::from);
    let chromium = std::env::var_os("RFC6455_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !node_dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
        || !chromium.is_file()
    {
        install_peers(&[]).expect("install the browser peers");
    }
    if let Some(why) = node_missing() {
        panic!("{why}; RFC6455_SKIP_BROWSER=1 skips this test");
    }

    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let tls = rfc6455::transport::tls::rustls::ServerConfig::builder_with_provider(Arc::new(
        rfc6455::transport::tls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rfc6455::transport::tls::rustls::pki_types::PrivateKeyDer::Pkcs8(
            key.serialize_der().into(),
        ),
    )
    .unwrap();
    let config = ServerConfig::default()
        .keepalive(None)
        .tls(Arc::new(tls))
        .http_handler(|_| HttpResponse::new(200, "text/html; charset=utf-8", PAGE));
    let server = Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(|mut ws, _| loop {
            let message = ws.read()?;
            if message.is_data() {
                ws.write(message)?;
            }
        })
        .unwrap();
    let url = format!("https://localhost:{}/", server.local_addr().port());
    let mut child = Command::new("node")
        .current_dir(&node_dir)
        .arg(repo().join(".ci/peers/browser_tls_test.js"))
        .arg(&url)
        .env("RFC6455_CHROMIUM", &chromium)
        .env("NODE_PATH", node_dir.join("node_modules"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start node");
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser test did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "browser_tls_test.js failed ({status})");
}
