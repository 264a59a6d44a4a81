//! Interop over TLS (feature `tls`), both directions:
//!
//! | peer                          | as a client of our `Server` | as a server for `connect_with` |
//! |-------------------------------|-----------------------------|--------------------------------|
//! | Python `websockets` + `ssl`   | `connect(ssl=…)`            | `serve(ssl=…)`                 |
//! | Node `ws` + `https`           | `new WebSocket(url, {ca})`  | `https.createServer` + `ws`    |
//!
//! `wsclient --ca` talks to both peer servers as well.
//!
//! The peers are `.ci/peers/py_tls_peer.py` and `.ci/peers/node_ws_tls_peer.js`.
//! Certificates come from rcgen at test time: a CA, and a leaf for
//! `localhost` that each peer is told to trust through the CA file.
//!
//! Python: `$RFC6455_PYTHON`, or a venv under `target/` that has
//! `websockets` (built once when none does). Node: `ws` under
//! `.ci/peers/node_modules` (installed by `.ci/peers.sh` when missing).
//! `RFC6455_SKIP_INTEROP=1` skips these tests, saying so.
#![cfg(feature = "tls")]

mod common;

use common::{install_peers, node_missing, repo, target_dir};
use rfc6455::transport::tls::{client_config_with_ca, server_config_from_pem};
use rfc6455::{connect_with, ClientConfig, Error, Message, RunningServer, Server, ServerConfig};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

const PEER_TIMEOUT: Duration = Duration::from_secs(120);
const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const WEBSOCKETS: &str = "websockets==17.4";

fn skip() -> bool {
    let skip = std::env::var("RFC6455_SKIP_INTEROP").as_deref() == Ok("1");
    if skip {
        eprintln!("RFC6455_SKIP_INTEROP=1: skipping this TLS interop test");
    }
    skip
}

fn has_websockets(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import ssl, websockets.sync.server"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("RFC6455_PYTHON") {
                let p = PathBuf::from(p);
                return if has_websockets(&p) {
                    Ok(p)
                } else {
                    Err(format!("RFC6455_PYTHON={} lacks websockets", p.display()))
                };
            }
            let target = target_dir();
            for venv in ["ci-venv", "interop-venv", "tls-interop-venv"] {
                let p = target.join(venv).join("bin").join("python");
                if has_websockets(&p) {
                    return Ok(p);
                }
            }
            let venv = target.join("tls-interop-venv");
            eprintln!("building {} with {WEBSOCKETS}", venv.display());
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new(venv.join("bin").join("python"))
                    .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                    .arg(WEBSOCKETS)
                    .status()
                    .is_ok_and(|s| s.success());
            let p = venv.join("bin").join("python");
            if ok && has_websockets(&p) {
                Ok(p)
            } else {
                Err(format!(
                    "could not build {} with {WEBSOCKETS}",
                    venv.display()
                ))
            }
        })
        .clone()
        .unwrap_or_else(|why| {
            panic!("{why}; set RFC6455_PYTHON, or RFC6455_SKIP_INTEROP=1 to skip")
        })
}

fn node_dir() -> PathBuf {
    static NODE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    NODE.get_or_init(|| {
        if let Some(why) = node_missing() {
            return Err(why);
        }
        let dir = std::env::var_os("RFC6455_PEERS_NODE_DIR")
            .map_or_else(|| repo().join(".ci").join("peers"), PathBuf::from);
        if !dir.join("node_modules/ws/package.json").is_file() {
            install_peers(&[("RFC6455_PEERS_NO_BROWSER", "1")])?;
        }
        Ok(dir)
    })
    .clone()
    .unwrap_or_else(|why| panic!("Node `ws` missing: {why}; RFC6455_SKIP_INTEROP=1 skips"))
}

/// A CA and a `localhost` leaf it signs, as PEM files.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn new(name: &str) -> Certs {
        let dir =
            std::env::temp_dir().join(format!("rfc6455-interop-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "rfc6455 interop CA");
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem() + &ca_cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        Certs { dir }
    }
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills a peer however the test ends.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut command: Command) -> Peer {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the peer");
    let stdout: ChildStdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Peer { child, lines: rx }
}

impl Peer {
    fn line(&self) -> String {
        self.lines
            .recv_timeout(PEER_TIMEOUT)
            .expect("a line from the peer in time")
    }
    fn port(&self) -> u16 {
        let line = self.line();
        line.strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("expected PORT, got {line:?}"))
    }
    fn wait_ok(mut self) {
        assert_eq!(self.line(), "OK");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "peer exited {status}");
    }
}

/// Our TLS echo server; records the close code each client sent.
fn our_server(certs: &Certs) -> (RunningServer, &'static Mutex<Vec<u16>>) {
    let closes: &'static Mutex<Vec<u16>> = Box::leak(Box::default());
    let config = ServerConfig::default()
        .keepalive(None)
        .tls(server_config_from_pem(certs.cert(), certs.key()).unwrap());
    let server = Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(move |mut ws, _| loop {
            match ws.read()? {
                Message::Close(frame) => closes
                    .lock()
                    .unwrap()
                    .push(frame.map_or(1005, |f| f.code.0)),
                m if m.is_data() => ws.write(m)?,
                _ => {}
            }
        })
        .unwrap();
    (server, closes)
}

fn wait_close(closes: &Mutex<Vec<u16>>) -> u16 {
    for _ in 0..200 {
        if let Some(code) = closes.lock().unwrap().first() {
            return *code;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("no close frame recorded");
}

/// Our client against a peer's TLS echo server.
fn our_client_round_trip(port: u16, certs: &Certs) {
    let config = ClientConfig::default()
        .tls(client_config_with_ca(certs.ca()).unwrap())
        .read_timeout(Some(PEER_TIMEOUT));
    let (mut ws, _) =
        connect_with(&format!("wss://localhost:{port}/"), &config).expect("wss to the peer");
    for size in SIZES {
        let text = "a".repeat(size);
        ws.send(Message::Text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text(text));
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        ws.send(Message::Binary(data.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Binary(data));
    }
    ws.send(Message::Ping(b"tls".to_vec())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"tls".to_vec()));
    ws.close(1000, "done").unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => {}
            Err(Error::ConnectionClosed) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn script(name: &str) -> PathBuf {
    repo().join(".ci").join("peers").join(name)
}

#[test]
fn python_websockets_ssl_client_against_our_tls_server() {
    if skip() {
        return;
    }
    let certs = Certs::new("py-client");
    let (server, closes) = our_server(&certs);
    let url = format!("wss://localhost:{}/", server.local_addr().port());
    let mut command = Command::new(python());
    command
        .arg(script("py_tls_peer.py"))
        .args(["client", &url])
        .arg(certs.ca());
    spawn(command).wait_ok();
    assert_eq!(wait_close(closes), 1000);
}

#[test]
fn our_client_against_python_websockets_ssl_server() {
    if skip() {
        return;
    }
    let certs = Certs::new("py-server");
    let mut command = Command::new(python());
    command
        .arg(script("py_tls_peer.py"))
        .arg("server")
        .arg(certs.cert())
        .arg(certs.key());
    let mut peer = spawn(command);
    our_client_round_trip(peer.port(), &certs);
    assert_eq!(peer.line(), "CLOSED 1000");
    drop(peer.child.stdin.take());
}

#[test]
fn node_ws_client_against_our_tls_server() {
    if skip() {
        return;
    }
    let certs = Certs::new("node-client");
    let (server, closes) = our_server(&certs);
    let url = format!("wss://localhost:{}/", server.local_addr().port());
    let mut command = Command::new("node");
    command
        .current_dir(node_dir())
        .arg(script("node_ws_tls_peer.js"))
        .args(["client", &url])
        .arg(certs.ca())
        .env("NODE_PATH", node_dir().join("node_modules"));
    spawn(command).wait_ok();
    assert_eq!(wait_close(closes), 1000);
}

#[test]
fn our_client_against_node_ws_https_server() {
    if skip() {
        return;
    }
    let certs = Certs::new("node-server");
    let mut command = Command::new("node");
    command
        .current_dir(node_dir())
        .arg(script("node_ws_tls_peer.js"))
        .arg("server")
        .arg(certs.cert())
        .arg(certs.key())
        .env("NODE_PATH", node_dir().join("node_modules"));
    let mut peer = spawn(command);
    our_client_round_trip(peer.port(), &certs);
    assert_eq!(peer.line(), "CLOSED 1000");
    if let Some(mut stdin) = peer.child.stdin.take() {
        let _ = stdin.flush();
    }
}

/// `wsclient --ca CA wss://localhost:PORT/` with two lines in: both echoed.
fn wsclient_round_trip(port: u16, certs: &Certs) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsclient"))
        .arg("--no-env-proxy")
        .arg("--ca")
        .arg(certs.ca())
        .arg(format!("wss://localhost:{port}/"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsclient");
    child
        .stdin
        .take()
        .unwrap()
        .write_all("first line\nsecond ✓\n".as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "wsclient failed: {err}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "first line\nsecond ✓\n"
    );
}

#[test]
fn wsclient_against_python_and_node_tls_servers() {
    if skip() {
        return;
    }
    let certs = Certs::new("wsclient");
    let mut python_server = Command::new(python());
    python_server
        .arg(script("py_tls_peer.py"))
        .arg("server")
        .arg(certs.cert())
        .arg(certs.key());
    let peer = spawn(python_server);
    wsclient_round_trip(peer.port(), &certs);
    assert_eq!(peer.line(), "CLOSED 1000");
    drop(peer);
    let mut node_server = Command::new("node");
    node_server
        .current_dir(node_dir())
        .arg(script("node_ws_tls_peer.js"))
        .arg("server")
        .arg(certs.cert())
        .arg(certs.key())
        .env("NODE_PATH", node_dir().join("node_modules"));
    let peer = spawn(node_server);
    wsclient_round_trip(peer.port(), &certs);
    assert_eq!(peer.line(), "CLOSED 1000");
}
