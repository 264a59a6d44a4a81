//! permessage-deflate (RFC 7692) with real peers, compression checked on the
//! wire: every byte passes through a tap (`common::tap`) that parses the
//! frames after the handshake and counts those with RSV1 in each direction,
//! so a test fails if either side silently sent everything uncompressed.
//!
//! | peer                                  | as a client of our `Server` | as a server for `connect` |
//! |---------------------------------------|-----------------------------|---------------------------|
//! | Python `websockets` (compresses by default) | yes                   | yes                       |
//! | Node `ws`, `perMessageDeflate: true`  | yes                         | yes                       |
//!
//! Sizes 0 B to 1 MiB, compressible text and random binary. Python comes
//! from `$RFC6455_PYTHON` or the CI venv (`.ci/venv.sh`, which is built if
//! missing); Node `ws` from `.ci/peers/node_modules` (`.ci/peers.sh`). If a
//! peer cannot be had the test fails, saying so, unless
//! `RFC6455_SKIP_INTEROP=1`. Only built with `--features deflate`.
#![cfg(feature = "deflate")]

mod common;

use common::tap::tap;
use common::{assert_echo, client_config, close_normally, install_peers, repo, test_config};
use rfc6455::handshake::DeflateConfig;
use rfc6455::{connect_with, Message, RunningServer};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const SIZES: [usize; 6] = [0, 1, 125, 126, 65536, 1 << 20];
const PEER_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Peers

fn skip() -> bool {
    let skip = std::env::var("RFC6455_SKIP_INTEROP").as_deref() == Ok("1");
    if skip {
        eprintln!("RFC6455_SKIP_INTEROP=1: skipping this interop test");
    }
    skip
}

fn imports_websockets(python: &PathBuf) -> bool {
    Command::new(python)
        .args(["-c", "import websockets.sync.server"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python with `websockets`: `$RFC6455_PYTHON`, or the CI venv (built by
/// `.ci/venv.sh` if missing).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RFC6455_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = common::target_dir().join("ci-venv");
    let python = venv.join("bin").join("python");
    if !imports_websockets(&python) {
        let status = Command::new("bash")
            .arg(repo().join(".ci").join("venv.sh"))
            .env("CI_VENV", &venv)
            .stdin(Stdio::null())
            .status()
            .expect("run .ci/venv.sh");
        assert!(status.success(), ".ci/venv.sh failed: no Python websockets");
    }
    assert!(
        imports_websockets(&python),
        "{} cannot import websockets (set RFC6455_SKIP_INTEROP=1 to skip)",
        python.display()
    );
    python
}

fn node_dir() -> PathBuf {
    let dir = repo().join(".ci").join("peers");
    if !dir
        .join("node_modules")
        .join("ws")
        .join("package.json")
        .is_file()
    {
        install_peers(&[("RFC6455_PEERS_NO_BROWSER", "1")])
            .unwrap_or_else(|e| panic!("no Node ws: {e} (RFC6455_SKIP_INTEROP=1 skips)"));
    }
    if let Some(why) = common::node_missing() {
        panic!("{why} (set RFC6455_SKIP_INTEROP=1 to skip)");
    }
    dir
}

fn peer_command(peer: &str) -> Command {
    let scripts = repo().join(".ci").join("peers");
    match peer {
        "python" => {
            let mut c = Command::new(python());
            c.arg(scripts.join("py_deflate_peer.py"));
            c
        }
        _ => {
            let dir = node_dir();
            let mut c = Command::new("node");
            c.arg(scripts.join("node_ws_deflate.js"))
                .env("NODE_PATH", dir.join("node_modules"));
            c
        }
    }
}

/// Kills the peer when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn deflate_server() -> RunningServer {
    common::echo_server_with(test_config().deflate(Some(DeflateConfig::default())))
}

/// The peer as a client of our server, through the tap.
fn peer_client_against_our_server(peer: &str) {
    let server = deflate_server();
    let (addr, seen) = tap(server.local_addr());
    let mut child = peer_command(peer)
        .args(["client", &format!("ws://{addr}/")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the peer");
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out, err));
    });
    let mut child = Reaper(child);
    let (out, err) = rx
        .recv_timeout(PEER_TIMEOUT)
        .unwrap_or_else(|_| panic!("{peer} client timed out"));
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{peer} client failed: {out}{err}");
    assert!(out.contains("extensions permessage-deflate"), "{out}");
    seen.assert_deflate_negotiated();
    seen.assert_compressed_both_ways();
}

/// Our client against the peer's echo server, through the tap.
fn our_client_against_peer_server(peer: &str) {
    let mut command = peer_command(peer);
    if peer == "python" {
        command.args(["server", "127.0.0.1:0"]);
    } else {
        command.arg("server");
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the peer");
    let mut child = Reaper(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().expect("peer output").unwrap();
    let port: u16 = first
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected peer output {first:?}"));
    let (addr, seen) = tap(SocketAddr::from(([127, 0, 0, 1], port)));
    let config = client_config().deflate(Some(DeflateConfig::client()));
    let (mut ws, response) = connect_with(&format!("ws://{addr}/"), &config).unwrap();
    let accepted = response
        .headers
        .get("sec-websocket-extensions")
        .unwrap_or("");
    assert!(accepted.starts_with("permessage-deflate"), "{accepted:?}");
    eprintln!("{peer} server accepted: {accepted}");
    let mut seed = 0x9e37_79b9_u32;
    for n in SIZES {
        let text: String = "compressible json-like text {\"k\": 1} "
            .chars()
            .cycle()
            .take(n)
            .collect();
        let random = common::random_bytes(&mut seed, n);
        assert_echo(&mut ws, Message::Text(text));
        assert_echo(&mut ws, Message::Binary(random));
    }
    close_normally(&mut ws);
    let negotiated = lines.next().expect("peer output").unwrap();
    assert!(negotiated.contains("permessage-deflate"), "{negotiated}");
    seen.assert_deflate_negotiated();
    seen.assert_compressed_both_ways();
}

#[test]
fn python_websockets_client_compresses_with_our_server() {
    if !skip() {
        peer_client_against_our_server("python");
    }
}

#[test]
fn our_client_compresses_with_python_websockets_server() {
    if !skip() {
        our_client_against_peer_server("python");
    }
}

#[test]
fn node_ws_client_compresses_with_our_server() {
    if !skip() {
        peer_client_against_our_server("node");
    }
}

#[test]
fn our_client_compresses_with_node_ws_server() {
    if !skip() {
        our_client_against_peer_server("node");
    }
}
