//! Echo load with permessage-deflate negotiated: 1 KiB JSON-like text
//! messages echoed by our `Server` (`deflate` on, default `DeflateConfig`),
//! by Python `websockets` and by Node `ws` (`perMessageDeflate: true`), the
//! latter two as the peer scripts in `.ci/peers/` run them. Rounds are
//! interleaved so that the machine's noise hits every server alike.
//!
//! ```text
//! cargo bench --features deflate --bench echo_deflate
//! DEFLATE_ECHO_ROUNDS=3 DEFLATE_ECHO_SECS=2 DEFLATE_ECHO_CONNS=16 cargo bench --features deflate --bench echo_deflate
//! ```
//!
//! The load generator is this crate's client with compression on (the same
//! work against every server): `DEFLATE_ECHO_CONNS` connections (default
//! 16) spread over 4 threads, each with one message in flight, every echo
//! checked. Client and servers share the machine's two cores, so the figures
//! are ratios within one run, not absolute capacities. Python comes from
//! `$RFC6455_PYTHON` or `target/ci-venv` (`.ci/venv.sh`), Node `ws` from
//! `.ci/peers/node_modules` (`.ci/peers.sh`); a missing peer is skipped
//! with a message.

use rfc6455::handshake::DeflateConfig;
use rfc6455::{connect_with, ClientConfig, Message, Server, ServerConfig};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// About 1 KiB of JSON-like text, different per connection and message.
fn message(conn: usize, seq: u64) -> String {
    let mut s = String::with_capacity(1100);
    let mut i = 0;
    while s.len() < 1000 {
        s.push_str(&format!(
            r#"{{"conn":{conn},"seq":{seq},"i":{i},"kind":"quote","px":{}.{:02}}},"#,
            (seq * 7 + i) % 1000,
            (conn as u64 + i) % 100
        ));
        i += 1;
    }
    s.truncate(1024);
    s
}

struct Peer {
    name: &'static str,
    addr: SocketAddr,
    _child: Option<Reaper>,
}

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Starts a peer script that prints `listening PORT` first.
fn spawn_peer(name: &'static str, mut command: Command) -> Option<Peer> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => Reaper(c),
        Err(e) => {
            eprintln!("echo_deflate: skipping {name}: {e}");
            return None;
        }
    };
    let mut lines = BufReader::new(child.0.stdout.take()?).lines();
    let port: u16 = match lines.next() {
        Some(Ok(line)) => line.strip_prefix("listening ")?.trim().parse().ok()?,
        _ => {
            eprintln!("echo_deflate: skipping {name}: it did not start");
            return None;
        }
    };
    // Drain its output (one line per connection) so it never blocks.
    thread::spawn(move || for _ in lines {});
    Some(Peer {
        name,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _child: Some(child),
    })
}

fn python() -> PathBuf {
    std::env::var_os("RFC6455_PYTHON").map_or_else(
        || {
            repo()
                .join("target")
                .join("ci-venv")
                .join("bin")
                .join("python")
        },
        PathBuf::from,
    )
}

fn start_peers() -> Vec<Peer> {
    let server = Server::bind(
        "127.0.0.1:0",
        ServerConfig::default().deflate(Some(DeflateConfig::default())),
    )
    .expect("bind");
    let addr = server.local_addr();
    thread::spawn(move || {
        server.serve(|mut ws, _| loop {
            let m = ws.read()?;
            if m.is_data() {
                ws.write(m)?;
            }
        })
    });
    let mut peers = vec![Peer {
        name: "rfc6455",
        addr,
        _child: None,
    }];
    let scripts = repo().join(".ci").join("peers");
    let mut py = Command::new(python());
    py.arg(scripts.join("py_deflate_peer.py"))
        .args(["server", "127.0.0.1:0"]);
    peers.extend(spawn_peer("python-websockets", py));
    let mut node = Command::new("node");
    node.arg(scripts.join("node_ws_deflate.js"))
        .arg("server")
        .env("NODE_PATH", scripts.join("node_modules"));
    peers.extend(spawn_peer("node-ws", node));
    peers
}

/// Messages echoed per second against `addr`, and the wire bytes per
/// message the server sent (from a sample connection), over `secs`.
fn run(addr: SocketAddr, conns: usize, secs: f64) -> f64 {
    let threads = 4.min(conns);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let config = ClientConfig::default()
        .read_timeout(Some(Duration::from_secs(10)))
        .deflate(Some(DeflateConfig::client()));
    let url = format!("ws://{addr}/");
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, count, config, url) = (
                Arc::clone(&stop),
                Arc::clone(&count),
                config.clone(),
                url.clone(),
            );
            thread::spawn(move || {
                let mut sockets: Vec<_> = (t..conns)
                    .step_by(threads)
                    .map(|_| connect_with(&url, &config).expect("connect").0)
                    .collect();
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for (i, ws) in sockets.iter_mut().enumerate() {
                        let text = message(t + i * threads, seq);
                        ws.send(Message::Text(text.clone())).expect("send");
                        loop {
                            match ws.read().expect("read") {
                                Message::Text(echo) => {
                                    assert_eq!(echo, text);
                                    break;
                                }
                                _ => continue,
                            }
                        }
                    }
                    seq += 1;
                    count.fetch_add(sockets.len() as u64, Ordering::Relaxed);
                }
                for mut ws in sockets {
                    let _ = ws.close(rfc6455::CloseCode::NORMAL, "");
                    let _ = ws.flush();
                }
            })
        })
        .collect();
    // Warm up (connections, compressors), then measure.
    thread::sleep(Duration::from_millis(300));
    let start = (Instant::now(), count.load(Ordering::Relaxed));
    thread::sleep(Duration::from_secs_f64(secs));
    let done = count.load(Ordering::Relaxed) - start.1;
    let rate = done as f64 / start.0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    rate
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rounds: usize = env_or("DEFLATE_ECHO_ROUNDS", 3);
    let secs: f64 = env_or("DEFLATE_ECHO_SECS", 2.0);
    let conns: usize = env_or("DEFLATE_ECHO_CONNS", 16);
    let peers = start_peers();
    thread::sleep(Duration::from_millis(500));
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    for round in 0..rounds {
        for (i, peer) in peers.iter().enumerate() {
            let rate = run(peer.addr, conns, secs);
            eprintln!("round {round}: {:<18} {rate:>9.0} msg/s", peer.name);
            rates[i].push(rate);
        }
    }
    println!(
        "\n| server ({conns} connections, 1 KiB JSON text, deflate) | median msg/s | vs rfc6455 |"
    );
    println!("|---|---:|---:|");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ours = median(&mut rates[0].clone());
    for (peer, r) in peers.iter().zip(rates.iter_mut()) {
        let m = median(r);
        println!("| {} | {m:.0} | {:.2}× |", peer.name, ours / m);
    }
}
