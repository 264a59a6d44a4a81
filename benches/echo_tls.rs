//! Echo over TLS (feature `tls`): our `Server` with `ServerConfig::tls`
//! against tungstenite over rustls, interleaved round by round in one run,
//! and the memory each idle TLS connection costs the server.
//!
//! ```text
//! cargo bench --features tls --bench echo_tls
//! TLS_ROUNDS=3 TLS_SECS=1 TLS_IDLE=300 cargo bench --features tls --bench echo_tls
//! ```
//!
//! The servers, both with the same `rustls::ServerConfig` (ring, one ECDSA
//! P-256 certificate made by rcgen, TLS 1.3):
//! - ours: `rfc6455::Server` with `wsecho`'s handler (`read_ref`, written back
//!   from the read buffer), keepalive off;
//! - tungstenite: a thread per connection as its README shows, over
//!   `rustls::StreamOwned` (tungstenite has no TLS server of its own),
//!   TCP_NODELAY set, loop `read()` → `send()`.
//!
//! The load is the same for both: tungstenite's client with its rustls
//! connector (`client_tls_with_config`, `Connector::Rustls`), one thread per
//! connection, one message in flight, every echo checked for length.
//! Scenarios: 20 B messages on 100 connections; 64 KiB messages on 4.
//!
//! Memory: each server runs in a child process (this binary, `--serve`);
//! the parent opens `TLS_IDLE` (default 500) TLS WebSocket connections that
//! then sit idle, and reads the child's `VmRSS` before and after.
//!
//! Results: medians over the rounds, printed and written to
//! `target/echo-tls-bench.md`.

use rfc6455::transport::tls::rustls;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::{Connector, Message};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Ours,
    Tungstenite,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Ours => "ours",
            Server::Tungstenite => "tungstenite",
        }
    }
}

struct Certs {
    cert: rustls::pki_types::CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Certs {
    fn new() -> Certs {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        Certs {
            cert: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    fn from_der(cert: Vec<u8>, key_der: Vec<u8>) -> Certs {
        Certs {
            cert: cert.into(),
            key_der,
        }
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn server(&self) -> Arc<rustls::ServerConfig> {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.key_der.clone().into());
        let config = rustls::ServerConfig::builder_with_provider(Certs::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .expect("server config");
        Arc::new(config)
    }

    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Certs::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

fn start_ours(tls: Arc<rustls::ServerConfig>) -> SocketAddr {
    let config = rfc6455::ServerConfig::default().keepalive(None).tls(tls);
    let server = rfc6455::Server::bind("127.0.0.1:0", config).expect("bind ours");
    let addr = server.local_addr();
    let running = server
        .spawn(|mut ws, _request| loop {
            let (message, mut sender) = ws.read_ref()?;
            if message.is_data() {
                sender.write(message)?;
            }
        })
        .expect("spawn ours");
    // Runs until the process exits.
    std::mem::forget(running);
    addr
}

fn start_tungstenite(tls: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tungstenite");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tls = Arc::clone(&tls);
            thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let conn = rustls::ServerConnection::new(tls).expect("server connection");
                let stream = rustls::StreamOwned::new(conn, stream);
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                while let Ok(message) = ws.read() {
                    if message.is_binary() || message.is_text() {
                        if ws.send(message).is_err() {
                            break;
                        }
                    } else if message.is_close() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn start(server: Server, tls: Arc<rustls::ServerConfig>) -> SocketAddr {
    match server {
        Server::Ours => start_ours(tls),
        Server::Tungstenite => start_tungstenite(tls),
    }
}

type ClientSocket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn connect(addr: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> ClientSocket {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let url = format!("wss://localhost:{}/", addr.port());
    let (ws, _) = tungstenite::client_tls_with_config(
        url,
        tcp,
        None,
        Some(Connector::Rustls(Arc::clone(tls))),
    )
    .expect("wss handshake");
    ws
}

/// Messages per second echoed on `conns` connections with `size`-byte
/// binary messages, one in flight per connection, for `secs`.
fn run(
    addr: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
    conns: usize,
    size: usize,
    secs: f64,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(conns + 1));
    let handles: Vec<_> = (0..conns)
        .map(|_| {
            let (stop, start, tls) = (Arc::clone(&stop), Arc::clone(&start), Arc::clone(tls));
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut ws = connect(addr, &tls);
                    let payload = vec![0x5au8; size];
                    start.wait();
                    let mut count = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        ws.send(Message::Binary(payload.clone().into()))
                            .expect("send");
                        loop {
                            match ws.read().expect("read") {
                                Message::Binary(b) => {
                                    assert_eq!(b.len(), size);
                                    break;
                                }
                                Message::Ping(_) | Message::Pong(_) => {}
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                        count += 1;
                    }
                    let _ = ws.close(None);
                    let _ = ws.flush();
                    count
                })
                .expect("spawn client")
        })
        .collect();
    start.wait();
    let began = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let total: u64 = handles.into_iter().map(|h| h.join().expect("client")).sum();
    total as f64 / began.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Child mode: serve, print the port, run until stdin closes.
fn serve_child(server: &str, cert: &str, key: &str) {
    let certs = Certs::from_der(unhex(cert), unhex(key));
    let which = if server == "ours" {
        Server::Ours
    } else {
        Server::Tungstenite
    };
    let addr = start(which, certs.server());
    println!("PORT {}", addr.port());
    let _ = std::io::stdout().flush();
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// KiB of server RSS per idle TLS WebSocket connection.
fn idle_rss(server: Server, certs: &Certs, idle: usize) -> f64 {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--serve",
            server.name(),
            &hex(&certs.cert),
            &hex(&certs.key_der),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server child");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port line");
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .expect("PORT")
        .parse()
        .expect("port");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let tls = certs.client();
    let echo = |ws: &mut ClientSocket| {
        ws.send(Message::Binary(vec![1u8; 20].into()))
            .expect("send");
        ws.read().expect("echo");
    };
    // Warm up: thread stacks, allocator arenas, session caches.
    let mut warm: Vec<_> = (0..20).map(|_| connect(addr, &tls)).collect();
    warm.iter_mut().for_each(echo);
    thread::sleep(Duration::from_millis(300));
    let before = rss_kib(child.id());
    let mut conns: Vec<_> = (0..idle).map(|_| connect(addr, &tls)).collect();
    conns.iter_mut().for_each(echo);
    thread::sleep(Duration::from_millis(500));
    let after = rss_kib(child.id());
    drop(conns);
    drop(warm);
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    (after.saturating_sub(before)) as f64 / idle as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve_child(&args[i + 1], &args[i + 2], &args[i + 3]);
        return;
    }
    let rounds: usize = env_or("TLS_ROUNDS", 5);
    let secs: f64 = env_or("TLS_SECS", 2.0);
    let idle: usize = env_or("TLS_IDLE", 500);
    let certs = Certs::new();
    let client = certs.client();
    let servers = [Server::Ours, Server::Tungstenite];
    let addrs: Vec<SocketAddr> = servers.iter().map(|&s| start(s, certs.server())).collect();
    let scenarios = [
        ("20 B x 100 connections", 100, 20),
        ("64 KiB x 4 connections", 4, 64 * 1024),
    ];
    let mut report = String::from(
        "| scenario | ours msg/s | tungstenite msg/s | ours/tungstenite |\n|---|---|---|---|\n",
    );
    for (name, conns, size) in scenarios {
        let mut rates = [Vec::new(), Vec::new()];
        let mut ratios = Vec::new();
        for round in 0..rounds {
            // Alternate who goes first, so neither always runs warm.
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut this = [0.0; 2];
            for i in order {
                this[i] = run(addrs[i], &client, conns, size, secs);
                rates[i].push(this[i]);
            }
            ratios.push(this[0] / this[1]);
            eprintln!(
                "{name}, round {round}: ours {:.0}/s, tungstenite {:.0}/s",
                this[0], this[1]
            );
        }
        let line = format!(
            "| {name} | {:.0} | {:.0} | {:.2}x |\n",
            median(rates[0].clone()),
            median(rates[1].clone()),
            median(ratios)
        );
        print!("{line}");
        report.push_str(&line);
    }
    report.push_str(&format!(
        "\n| RSS per idle TLS connection ({idle} connections) | KiB |\n|---|---|\n"
    ));
    for server in servers {
        let kib = idle_rss(server, &certs, idle);
        let line = format!("| {} | {kib:.1} |\n", server.name());
        print!("{line}");
        report.push_str(&line);
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/echo-tls-bench.md");
    let _ = std::fs::write(&out, &report);
    println!("\n{report}");
}
