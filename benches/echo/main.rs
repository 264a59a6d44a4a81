//! Echo load benchmark: our two engines against tungstenite and
//! fastwebsockets, with the floor of each architecture beside them, driven
//! by the same raw-TCP load generator on 127.0.0.1 and interleaved round by
//! round so that the machine's noise hits them alike. Every server runs in
//! a child process of its own, so the bench reports, beside throughput, the
//! **server's own CPU per message** (`cpu.rs`): on this shared 2-core
//! machine the load generator competes for the cores, so throughput
//! measures scheduling as much as the server, while CPU per message does
//! not depend on it.
//!
//! ```text
//! cargo bench --features mio --bench echo
//! ECHO_ROUNDS=3 ECHO_SECS=1 cargo bench --features mio --bench echo      # shorter
//! ECHO_ONLY=16 cargo bench --features mio --bench echo                   # scenarios whose name contains "16"
//! ```
//!
//! Environment: `ECHO_ROUNDS` (default 5; 10 or more to decide a 5%
//! difference in CPU), `ECHO_SECS` per run (default 2), `ECHO_ONLY`
//! (substring filter on scenario names), `ECHO_SERVERS` (comma-separated:
//! `ours`, `poll`, `tungstenite`, `fastwebsockets`, `floor`, `mio-floor`;
//! default all; `poll` and `mio-floor` need `--features mio`),
//! `ECHO_POLL_WORKERS` (the poll engine's and its floor's workers, default
//! one per core), `ECHO_SVG` (where the chart goes, default
//! `docs/echo-bench.svg`).
//!
//! The servers:
//! - ours: `rfc6455::Server` with `wsecho`'s handler (`read_ref`; if data,
//!   write it back from the read buffer), default configuration (keepalive
//!   on, TCP_NODELAY set by the server);
//! - poll: `rfc6455::poll::PollServer` (feature `mio`) with `wsecho --engine
//!   poll`'s handler (echo each data message from the read buffer), one
//!   worker per core, default configuration;
//! - tungstenite: what its README shows (`TcpListener::incoming`, a thread per
//!   connection, `tungstenite::accept`, loop `read()` → `send()`), default
//!   configuration (its 16 MiB frame / 64 MiB message limits equal ours), plus
//!   TCP_NODELAY so that small echoes are not held back by Nagle's algorithm;
//! - fastwebsockets on tokio: what its README and `examples/echo_server.rs`
//!   show (hyper's HTTP/1 server with upgrades, `fastwebsockets::upgrade`,
//!   a `FragmentCollector`, loop `read_frame` → `write_frame`), on tokio's
//!   default multi-threaded runtime (one worker per core), TCP_NODELAY set;
//! - floor: the least a thread-per-connection echo can do: a fixed 101, then
//!   per `read` every whole frame unmasked into one buffer and one `write`
//!   (a close frame too, then TCP closed); no limits, no UTF-8, no timers.
//!   `ours/floor` is what our protocol work costs on that architecture;
//! - mio-floor: the same for the poll architecture (`floor_mio.rs`): mio
//!   workers as many as the poll engine's, writable interest only while
//!   output is pending. `poll/mio-floor` is the poll engine's cost above it.
//!
//! The load generator holds N connections, each with P messages in flight,
//! and checks every echoed byte (`client.rs`). It uses few threads (two
//! cores are shared by client and server): each client thread drives its
//! connections round-robin, reading one connection's P echoes and at once
//! sending its next P (in one `write`). Frames are pre-encoded and masked
//! once per connection; only an 8-byte sequence number is patched (and
//! masked) per message, so the client's per-message work is the same small
//! constant for every server.
//!
//! Results: a table of medians over the rounds (ratios are medians of each
//! round's ratio), printed and written to `target/echo-bench.md`, and a
//! chart of throughput and CPU per message (`report.rs`).

mod client;
mod cpu;
#[cfg(feature = "mio")]
mod floor_mio;
mod report;
mod servers;

use client::{run_churn, run_echo, Outcome};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

const HANDSHAKE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const HANDSHAKE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// Payload bytes before the 8-digit sequence number is the pattern.
const PATTERN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Server {
    Ours,
    Poll,
    Tungstenite,
    Fastwebsockets,
    Floor,
    MioFloor,
}

impl Server {
    pub(crate) const ALL: [Server; 6] = [
        Server::Ours,
        Server::Poll,
        Server::Tungstenite,
        Server::Fastwebsockets,
        Server::Floor,
        Server::MioFloor,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Server::Ours => "ours",
            Server::Poll => "poll",
            Server::Tungstenite => "tungstenite",
            Server::Fastwebsockets => "fastwebsockets",
            Server::Floor => "floor",
            Server::MioFloor => "mio-floor",
        }
    }

    /// Starts the server in this process (a child the bench spawned).
    fn start(self) -> Option<SocketAddr> {
        Some(match self {
            Server::Ours => servers::start_ours(),
            Server::Poll => servers::start_poll()?,
            Server::Tungstenite => servers::start_tungstenite(),
            Server::Fastwebsockets => servers::start_fastwebsockets(),
            Server::Floor => servers::start_floor(),
            Server::MioFloor => servers::start_mio_floor()?,
        })
    }
}

/// A server in its own process, killed with the bench.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `server` in a child process (this binary with `--serve NAME`) and
/// waits for its address; `None` if it cannot run in this build.
fn spawn(server: Server) -> Option<Running> {
    let exe = std::env::current_exe().ok()?;
    let mut child = Command::new(exe)
        .args(["--serve", server.name()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).ok()?;
    let addr = line.trim().strip_prefix("listening ")?.parse().ok();
    match addr {
        Some(addr) => Some(Running { child, addr }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// The child's side: start the server, say where, serve until killed.
fn serve(name: &str) {
    let Some(server) = Server::ALL.into_iter().find(|s| s.name() == name) else {
        eprintln!("echo bench: no server {name:?}");
        return;
    };
    match server.start() {
        Some(addr) => {
            println!("listening {addr}");
            loop {
                thread::park();
            }
        }
        None => println!("unavailable"),
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) conns: usize,
    pub(crate) size: usize,
    pub(crate) inflight: usize,
    /// Client threads driving the connections.
    pub(crate) threads: usize,
    pub(crate) churn: bool,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "100 conns x 20 B",
        conns: 100,
        size: 20,
        inflight: 1,
        threads: 2,
        churn: false,
    },
    Scenario {
        name: "100 conns x 20 B, 16 in flight",
        conns: 100,
        size: 20,
        inflight: 16,
        threads: 2,
        churn: false,
    },
    Scenario {
        name: "1000 conns x 20 B",
        conns: 1000,
        size: 20,
        inflight: 1,
        threads: 4,
        churn: false,
    },
    Scenario {
        name: "10 conns x 64 KiB",
        conns: 10,
        size: 64 << 10,
        inflight: 1,
        threads: 2,
        churn: false,
    },
    Scenario {
        name: "10 conns x 1 MiB",
        conns: 10,
        size: 1 << 20,
        inflight: 1,
        threads: 2,
        churn: false,
    },
    Scenario {
        name: "churn: connect, 1 echo, close",
        conns: 4,
        size: 20,
        inflight: 1,
        threads: 4,
        churn: true,
    },
];

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        return serve(args.get(i + 1).map_or("", String::as_str));
    }
    // `cargo bench` passes `--bench`; ignore other arguments (filter with ECHO_ONLY).
    let rounds: usize = env_or("ECHO_ROUNDS", 5);
    let secs: f64 = env_or("ECHO_SECS", 2.0);
    let only = std::env::var("ECHO_ONLY").unwrap_or_default();
    let which = std::env::var("ECHO_SERVERS").unwrap_or_default();
    let scenarios: Vec<Scenario> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| s.name.contains(only.as_str()))
        .collect();
    let servers: Vec<(Server, Running)> = Server::ALL
        .into_iter()
        .filter(|s| which.is_empty() || which.split(',').any(|w| w == s.name()))
        .filter_map(|s| match spawn(s) {
            Some(running) => Some((s, running)),
            None => {
                eprintln!(
                    "echo bench: {} is not in this build (--features mio?)",
                    s.name()
                );
                None
            }
        })
        .collect();
    eprintln!(
        "echo bench: {rounds} rounds x {} scenarios x {} servers, {secs} s each",
        scenarios.len(),
        servers.len()
    );
    // results[scenario][server] = outcomes over rounds
    let mut results: Vec<Vec<Vec<Outcome>>> = scenarios
        .iter()
        .map(|_| servers.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 0..rounds {
        for (si, s) in scenarios.iter().enumerate() {
            // Alternate which server goes first each round.
            let mut order: Vec<usize> = (0..servers.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for k in order {
                let (server, running) = &servers[k];
                let pid = running.child.id();
                let threads_before = cpu::threads(pid);
                let o = if s.churn {
                    run_churn(running.addr, pid, s, secs)
                } else {
                    run_echo(running.addr, pid, s, secs)
                };
                eprintln!(
                    "round {} | {:<32} | {:<14} | {:>10.0}/s | cpu {:>6.2} us/msg | p50 {:>8.1} us | p99 {:>8.1} us",
                    round + 1,
                    s.name,
                    server.name(),
                    o.rate,
                    o.cpu_us,
                    o.p50_us,
                    o.p99_us
                );
                results[si][k].push(o);
                // Let the threads of closed connections exit (their lingering
                // close included), so none ends inside the next measured
                // window, which then reads exact per-thread CPU clocks.
                let settled = std::time::Instant::now() + Duration::from_secs(3);
                thread::sleep(Duration::from_millis(200));
                while cpu::threads(pid) > threads_before && std::time::Instant::now() < settled {
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    let names: Vec<Server> = servers.iter().map(|(s, _)| *s).collect();
    report::write(&scenarios, &names, &results, rounds, secs);
}
