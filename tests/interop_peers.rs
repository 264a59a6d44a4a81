//! Interop with independent implementations other than Python `websockets`
//! (that one is in `interop_python.rs`):
//!
//! | peer                         | as a client of our `Server` | as a server for `connect` and `wsclient` |
//! |------------------------------|-----------------------------|------------------------------------------|
//! | Python `websocket-client`    | yes                         | (it has no server)                       |
//! | Python `tornado`             | `websocket_connect`         | `WebSocketHandler`                       |
//! | Node `ws`                    | `WebSocket`                 | `WebSocketServer`                        |
//!
//! The peer clients are scripts in `.ci/peers/`: they send text and binary
//! messages of every size in [`SIZES`] plus a multi-byte UTF-8 text, check
//! each echo, ping and check the pong, close with 1000 and check the reply,
//! and exit 0. Our server side records what it saw, so the test also checks
//! the peer's ping and close code arrived as sent.
//!
//! The peers are installed by `.ci/peers.sh` (a venv under
//! `target/peers-venv`, `node_modules` under `.ci/peers/`). If they are
//! missing, the first test runs that script once (it needs the network);
//! if they still cannot be had the tests fail, saying so, unless
//! `RFC6455_SKIP_INTEROP=1`. `RFC6455_PEERS_PYTHON` and
//! `RFC6455_PEERS_NODE_DIR` point at peers installed elsewhere (then
//! nothing is installed).

mod common;

use common::{
    ascii, assert_echo, bytes, client_config, close_normally, install_peers, node_missing, repo,
    target_dir, test_config,
};
use rfc6455::{connect_with, CloseCode, Error, Message, RunningServer, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Message sizes every peer exchanges, in both directions, text and binary:
/// the edges of the 7-bit, 16-bit and 64-bit length encodings, and 1 MiB.
const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];
/// Generous: a cold interpreter start plus megabytes of echoes against a
/// debug build, on a shared 2-core machine.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);
/// The ping payload the peer clients send.
const PING: &[u8] = b"are you there?";

// ---------------------------------------------------------------------------
// Finding (or installing) the peers

struct Peers {
    python: PathBuf,
    node_dir: PathBuf,
}

fn scripts() -> PathBuf {
    repo().join(".ci").join("peers")
}

/// The installed peers, or `None` when interop is explicitly skipped.
/// Panics, saying why, when they cannot be found or installed.
fn peers() -> Option<&'static Peers> {
    if std::env::var("RFC6455_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("RFC6455_SKIP_INTEROP=1: skipping this interop test");
        return None;
    }
    // Installed at most once per test process; the tests of this file run
    // on parallel threads and all wait for the first one's result.
    // `.ci/peers.sh` itself holds a file lock against other processes.
    static PEERS: OnceLock<Result<Peers, String>> = OnceLock::new();
    match PEERS.get_or_init(find_peers) {
        Ok(peers) => Some(peers),
        Err(why) => panic!(
            "interop peers missing: {why}\n\
             Run `.ci/peers.sh` (needs PyPI and npm), or set \
             RFC6455_SKIP_INTEROP=1 to skip these tests."
        ),
    }
}

fn find_peers() -> Result<Peers, String> {
    let venv = target_dir().join("peers-venv");
    let explicit = std::env::var_os("RFC6455_PEERS_PYTHON").is_some()
        || std::env::var_os("RFC6455_PEERS_NODE_DIR").is_some();
    let peers = Peers {
        python: std::env::var_os("RFC6455_PEERS_PYTHON")
            .map_or_else(|| venv.join("bin").join("python"), PathBuf::from),
        node_dir: std::env::var_os("RFC6455_PEERS_NODE_DIR").map_or_else(scripts, PathBuf::from),
    };
    match missing(&peers) {
        None => return Ok(peers),
        Some(why) if explicit => return Err(why),
        Some(why) => eprintln!("{why}: running .ci/peers.sh once"),
    }
    // The browser is tests/browser.rs's business.
    install_peers(&[("RFC6455_PEERS_NO_BROWSER", "1")])?;
    match missing(&peers) {
        None => Ok(peers),
        Some(why) => Err(format!("{why}, even after .ci/peers.sh")),
    }
}

/// Why the peers cannot be used, if they cannot.
fn missing(peers: &Peers) -> Option<String> {
    let python_ok = Command::new(&peers.python)
        .args(["-c", "import websocket, tornado.websocket"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        return Some(format!(
            "{} cannot import websocket-client and tornado",
            peers.python.display()
        ));
    }
    let ws = peers.node_dir.join("node_modules").join("ws");
    if !ws.join("package.json").is_file() {
        return Some(format!("no Node `ws` at {}", ws.display()));
    }
    node_missing()
}

impl Peers {
    fn python(&self, script: &str) -> Command {
        let mut command = Command::new(&self.python);
        command.arg(scripts().join(script));
        command
    }

    fn node(&self, script: &str) -> Command {
        let mut command = Command::new("node");
        command
            .arg(scripts().join(script))
            .env("NODE_PATH", self.node_dir.join("node_modules"));
        command
    }
}

fn sizes_arg() -> String {
    SIZES.map(|s| s.to_string()).join(",")
}

// ---------------------------------------------------------------------------
// Child processes that cannot outlive or hang a test

/// A child process, killed when dropped.
struct Peer {
    name: String,
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a pipe on a thread, so a chatty child never blocks on it.
fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// Runs `command` to completion (killed after [`PEER_TIMEOUT`]) and panics
/// with its output unless it exits 0.
fn run_peer(name: &str, command: &mut Command) {
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut peer = Peer {
        name: name.into(),
        child,
    };
    let stdout = collect(peer.child.stdout.take().unwrap());
    let stderr = collect(peer.child.stderr.take().unwrap());
    let status = loop {
        if let Some(status) = peer.child.try_wait().expect("wait for peer") {
            break Some(status);
        }
        if started.elapsed() > PEER_TIMEOUT {
            let _ = peer.child.kill();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(s) if s.success() => {
            eprintln!("{name}: {} in {:?}", stdout.trim(), started.elapsed());
        }
        Some(s) => panic!("{name} failed ({s}):\n{stdout}{stderr}"),
        None => panic!("{name} timed out after {PEER_TIMEOUT:?}:\n{stdout}{stderr}"),
    }
}

/// Starts a peer server that prints `PORT <n>` once it listens, and returns
/// it with its address. Its stdin stays open: the scripts exit on EOF, so
/// they also go away if this test process dies before killing them.
fn start_peer_server(name: &str, command: &mut Command) -> (Peer, SocketAddr) {
    let child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut peer = Peer {
        name: name.into(),
        child,
    };
    let stdout: ChildStdout = peer.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let port = lines.next().and_then(Result::ok);
        let _ = tx.send(port);
        // Keep draining so the child never blocks on a full pipe.
        for _ in lines {}
    });
    let line = match rx.recv_timeout(PEER_TIMEOUT) {
        Ok(Some(line)) => line,
        Ok(None) => panic!("{name} exited before listening"),
        Err(_) => panic!("{name} did not listen within {PEER_TIMEOUT:?}"),
    };
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} printed {line:?}, not `PORT <n>`"));
    eprintln!("{}: listening on 127.0.0.1:{port}", peer.name);
    (peer, SocketAddr::from(([127, 0, 0, 1], port)))
}

// ---------------------------------------------------------------------------
// Peers as clients of our server

/// What our server saw on one connection.
#[derive(Debug, Default)]
struct Seen {
    data_messages: usize,
    pings: Vec<Vec<u8>>,
    close: Option<Option<rfc6455::CloseFrame>>,
    /// How the handler's read loop ended.
    end: String,
}

/// An echo server that reports what it saw on each connection.
fn recording_echo_server() -> (RunningServer, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", test_config())
        .expect("bind 127.0.0.1:0")
        .spawn(move |mut ws, _request| {
            let mut seen = Seen::default();
            let result = loop {
                match ws.read() {
                    Ok(message) => match message {
                        Message::Text(_) | Message::Binary(_) => {
                            seen.data_messages += 1;
                            if let Err(e) = ws.write(message) {
                                break Err(e);
                            }
                        }
                        Message::Ping(payload) => seen.pings.push(payload),
                        Message::Pong(_) => {}
                        Message::Close(frame) => seen.close = Some(frame),
                    },
                    Err(e) => break Err(e),
                }
            };
            seen.end = match &result {
                Err(Error::ConnectionClosed) => "closed".into(),
                Err(e) => format!("{e:?}"),
                Ok(()) => unreachable!(),
            };
            let _ = tx.send(seen);
            result
        })
        .expect("spawn server");
    (server, rx)
}

/// Runs a peer client script against our recording echo server and checks
/// both sides: the script's own assertions (exit 0) and what we saw.
fn peer_client(name: &str, command: impl FnOnce(&Peers, &str) -> Command) {
    let Some(peers) = peers() else { return };
    let (server, seen) = recording_echo_server();
    let url = format!("ws://{}/", server.local_addr());
    run_peer(name, &mut command(peers, &url));
    let seen = seen
        .recv_timeout(Duration::from_secs(10))
        .expect("the server reports the connection");
    // Text and binary at every size, plus the multi-byte UTF-8 text.
    assert_eq!(seen.data_messages, 2 * SIZES.len() + 1, "{seen:?}");
    assert_eq!(seen.pings, vec![PING.to_vec()], "{seen:?}");
    match &seen.close {
        Some(Some(frame)) => assert_eq!(frame.code, CloseCode::NORMAL, "{seen:?}"),
        other => panic!("{name} did not close with 1000: {other:?}"),
    }
    assert_eq!(
        seen.end, "closed",
        "{name}: the connection did not end cleanly"
    );
    server.shutdown().expect("server shutdown");
}

#[test]
fn websocket_client_against_our_server() {
    peer_client("Python websocket-client", |peers, url| {
        let mut command = peers.python("py_websocket_client.py");
        command.args([url, &sizes_arg()]);
        command
    });
}

#[test]
fn tornado_client_against_our_server() {
    peer_client("Python tornado client", |peers, url| {
        let mut command = peers.python("py_tornado_client.py");
        command.args([url, &sizes_arg()]);
        command
    });
}

#[test]
fn node_ws_client_against_our_server() {
    peer_client("Node ws client", |peers, url| {
        let mut command = peers.node("node_ws_client.js");
        command.args([url, &sizes_arg()]);
        command
    });
}

// ---------------------------------------------------------------------------
// Peers as servers for our client

/// Our `connect` against a peer echo server: every size both ways, a
/// multi-byte text, a ping answered by a pong, a clean close with 1000.
fn our_client_against(name: &str, addr: SocketAddr) {
    let url = format!("ws://{addr}/echo");
    let (mut ws, response) =
        connect_with(&url, &client_config()).unwrap_or_else(|e| panic!("connect to {name}: {e}"));
    assert_eq!(response.status, 101, "{name}");
    for size in SIZES {
        assert_echo(&mut ws, Message::Text(ascii(size)));
        assert_echo(&mut ws, Message::Binary(bytes(size)));
    }
    assert_echo(
        &mut ws,
        Message::Text("h\u{e9}llo w\u{f6}rld \u{20ac} \u{1d11e} ".repeat(20_000)),
    );
    ws.send(Message::Ping(PING.to_vec())).expect("send ping");
    match ws.read() {
        Ok(Message::Pong(payload)) => assert_eq!(payload, PING, "{name}: pong payload"),
        other => panic!("{name}: expected the pong, got {other:?}"),
    }
    close_normally(&mut ws);
}

#[test]
fn our_client_against_tornado_server() {
    let Some(peers) = peers() else { return };
    let (_server, addr) = start_peer_server(
        "tornado server",
        &mut peers.python("py_tornado_echo_server.py"),
    );
    our_client_against("tornado", addr);
}

#[test]
fn our_client_against_node_ws_server() {
    let Some(peers) = peers() else { return };
    let (_server, addr) = start_peer_server("Node ws server", &mut peers.node("node_ws_server.js"));
    our_client_against("Node ws", addr);
}

/// The `wsclient` binary against a peer echo server: each stdin line comes
/// back on stdout, then close 1000 and exit status 0.
fn wsclient_against(name: &str, addr: SocketAddr) {
    let lines: Vec<String> = vec![
        "hello".into(),
        String::new(),
        "h\u{e9}llo w\u{f6}rld \u{20ac} \u{1d11e}".into(),
        ascii(125),
        ascii(126),
        ascii(65535),
        ascii(65536),
        ascii(1 << 20),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsclient"))
        .arg(format!("ws://{addr}/"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsclient");
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let mut input = child.stdin.take().unwrap();
    let to_send = lines.join("\n") + "\n";
    let writer = thread::spawn(move || {
        input
            .write_all(to_send.as_bytes())
            .expect("write wsclient stdin");
        // Dropping stdin is EOF: wsclient closes with 1000.
    });
    let mut client = Peer {
        name: "wsclient".into(),
        child,
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = client.child.try_wait().expect("wait for wsclient") {
            break status;
        }
        assert!(
            started.elapsed() < PEER_TIMEOUT,
            "{} against {name} timed out",
            client.name
        );
        thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "wsclient against {name} exited with {status}:\n{stderr}"
    );
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got.len(), lines.len(), "wsclient against {name}:\n{stderr}");
    for (i, (got, sent)) in got.iter().zip(&lines).enumerate() {
        assert!(
            got == sent,
            "wsclient against {name}: line {i} ({} bytes) came back as {} bytes",
            sent.len(),
            got.len()
        );
    }
    assert!(
        stderr.contains("connection closed: 1000"),
        "wsclient against {name} did not report close 1000:\n{stderr}"
    );
}

#[test]
fn wsclient_binary_against_tornado_server() {
    let Some(peers) = peers() else { return };
    let (_server, addr) = start_peer_server(
        "tornado server",
        &mut peers.python("py_tornado_echo_server.py"),
    );
    wsclient_against("tornado", addr);
}

#[test]
fn wsclient_binary_against_node_ws_server() {
    let Some(peers) = peers() else { return };
    let (_server, addr) = start_peer_server("Node ws server", &mut peers.node("node_ws_server.js"));
    wsclient_against("Node ws", addr);
}
