//! Echo load benchmark: our `Server` against a tungstenite echo server and a
//! raw thread-per-connection floor, all in this process on 127.0.0.1, driven
//! by the same raw-TCP load generator, interleaved round by round so that the
//! machine's noise hits them alike.
//!
//! ```text
//! cargo bench --bench echo
//! ECHO_ROUNDS=3 ECHO_SECS=1 cargo bench --bench echo      # shorter
//! ECHO_ONLY=16 cargo bench --bench echo                   # scenarios whose name contains "16"
//! ```
//!
//! Environment: `ECHO_ROUNDS` (default 5), `ECHO_SECS` per run (default 2),
//! `ECHO_ONLY` (substring filter on scenario names), `ECHO_SERVERS`
//! (comma-separated: `ours`, `poll`, `tungstenite`, `fastwebsockets`,
//! `floor`; default all; `poll` needs `--features mio`).
//!
//! The servers:
//! - ours: `rfc6455::Server` with `wsecho`'s handler (`read_ref`; if data,
//!   write it back from the read buffer), default configuration (keepalive
//!   on, TCP_NODELAY set by the server);
//! - tungstenite: what its README shows (`TcpListener::incoming`, a thread per
//!   connection, `tungstenite::accept`, loop `read()` → `send()`), default
//!   configuration (its 16 MiB frame / 64 MiB message limits equal ours), plus
//!   TCP_NODELAY so that small echoes are not held back by Nagle's algorithm
//!   (without it, pipelined echoes would measure delayed ACKs, not tungstenite).
//! - poll: `rfc6455::poll::PollServer` (feature `mio`) with `wsecho --engine
//!   poll`'s handler (echo each data message from the read buffer), one
//!   worker per core, default configuration;
//! - fastwebsockets on tokio: what its README and `examples/echo_server.rs`
//!   show (hyper's HTTP/1 server with upgrades, `fastwebsockets::upgrade`,
//!   a `FragmentCollector`, loop `read_frame` → `write_frame`), on tokio's
//!   default multi-threaded runtime (one worker per core), TCP_NODELAY set;
//! - floor: the least a thread-per-connection echo can do: a fixed 101, then
//!   per `read` every whole frame unmasked into one buffer and one `write`
//!   (a close frame too, then TCP closed); no limits, no UTF-8, no timers. What the
//!   architecture costs, so `ours/floor` is what our protocol work costs.
//!
//! The load generator holds N connections, each with P messages in flight,
//! and checks every echoed byte. It uses few threads (two cores are shared by
//! client and server): each client thread drives its connections round-robin,
//! reading one connection's P echoes and at once sending its next P (in one
//! `write`), so a read rarely blocks and the client costs about two system
//! calls per batch. Frames are pre-encoded and masked once per connection;
//! only an 8-byte sequence number is patched (and masked) per message, so the
//! client's per-message work is the same small constant for both servers.
//!
//! Results: a table of medians over the rounds, printed and written to
//! `target/echo-bench.md`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const HANDSHAKE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const HANDSHAKE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// Payload bytes before the 8-digit sequence number is the pattern.
const PATTERN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Ours,
    Poll,
    Tungstenite,
    Fastwebsockets,
    Floor,
}

impl Server {
    const ALL: [Server; 5] = [
        Server::Ours,
        Server::Poll,
        Server::Tungstenite,
        Server::Fastwebsockets,
        Server::Floor,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::Ours => "ours",
            Server::Poll => "poll",
            Server::Tungstenite => "tungstenite",
            Server::Fastwebsockets => "fastwebsockets",
            Server::Floor => "floor",
        }
    }

    fn start(self) -> Option<SocketAddr> {
        Some(match self {
            Server::Ours => start_ours(),
            Server::Poll => start_poll()?,
            Server::Tungstenite => start_tungstenite(),
            Server::Fastwebsockets => start_fastwebsockets(),
            Server::Floor => start_floor(),
        })
    }
}

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    conns: usize,
    size: usize,
    inflight: usize,
    /// Client threads driving the connections.
    threads: usize,
    churn: bool,
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

// ---------------------------------------------------------------- servers

fn start_ours() -> SocketAddr {
    let server =
        rfc6455::Server::bind("127.0.0.1:0", rfc6455::ServerConfig::default()).expect("bind ours");
    let addr = server.local_addr();
    // The same handler as `src/bin/wsecho.rs`.
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

#[cfg(feature = "mio")]
fn start_poll() -> Option<SocketAddr> {
    use rfc6455::poll::{Conn, Handler, PollServer};
    use rfc6455::protocol::MessageRef;

    // The same handler as `wsecho --engine poll`.
    struct Echo;
    impl Handler for Echo {
        type State = ();
        fn on_open(&self, _: &mut Conn<'_>, _: &rfc6455::handshake::Request) {}
        fn on_message(&self, _: &mut (), conn: &mut Conn<'_>, message: MessageRef<'_>) {
            let _ = conn.send(message);
        }
    }
    let server =
        PollServer::bind("127.0.0.1:0", rfc6455::ServerConfig::default()).expect("bind poll");
    // One worker per core unless ECHO_POLL_WORKERS says otherwise.
    let server = match std::env::var("ECHO_POLL_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
    {
        Some(workers) => server.workers(workers),
        None => server,
    };
    let addr = server.local_addr();
    // Runs until the process exits.
    std::mem::forget(server.spawn(Echo).expect("spawn poll"));
    Some(addr)
}

#[cfg(not(feature = "mio"))]
fn start_poll() -> Option<SocketAddr> {
    eprintln!("echo bench: no poll engine in this build (cargo bench --features mio)");
    None
}

/// fastwebsockets as its echo example serves: hyper's HTTP/1 server with
/// upgrades on tokio's multi-threaded runtime, a task per connection.
fn start_fastwebsockets() -> SocketAddr {
    use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};

    async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn server_upgrade(
        mut req: Request<Incoming>,
    ) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            let _ = handle_client(fut).await;
        });
        Ok(response)
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind fastwebsockets");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        runtime.block_on(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, hyper::service::service_fn(server_upgrade))
                        .with_upgrades()
                        .await;
                });
            }
        })
    });
    addr
}

fn start_tungstenite() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tungstenite");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                loop {
                    match ws.read() {
                        Ok(msg) if msg.is_binary() || msg.is_text() => {
                            if ws.send(msg).is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
        }
    });
    addr
}

fn start_floor() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind floor");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || {
                let _ = floor_echo(stream);
            });
        }
    });
    addr
}

/// The floor's connection: every whole frame of each read echoed in one write.
fn floor_echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut have = 0;
    // The load generator sends its head and waits for ours.
    while !buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
    }
    have = 0;
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {HANDSHAKE_ACCEPT}\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    let mut out = Vec::with_capacity(64 << 10);
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut pos = 0;
        // Masked client frames: 2-byte head, 16/64-bit length, 4-byte key.
        while have - pos >= 6 {
            let b = &buf[pos..have];
            let (len, at) = match b[1] & 0x7f {
                126 if b.len() >= 8 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 14 => (
                    u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                l => (l as usize, 2),
            };
            if b.len() < at + 4 + len {
                if buf.len() < at + 4 + len {
                    buf.resize(at + 4 + len, 0);
                }
                break;
            }
            let key = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            out.push(b[0]);
            match len {
                0..=125 => out.push(len as u8),
                126..=65535 => {
                    out.push(126);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                }
                _ => {
                    out.push(127);
                    out.extend_from_slice(&(len as u64).to_be_bytes());
                }
            }
            let start = out.len();
            out.extend_from_slice(&b[at + 4..at + 4 + len]);
            for (i, byte) in out[start..].iter_mut().enumerate() {
                *byte ^= key[i & 3];
            }
            pos += at + 4 + len;
            if b[0] & 0x0f == 0x8 {
                // A close frame: echoed above; the server closes TCP first.
                stream.write_all(&out)?;
                return Ok(());
            }
        }
        buf.copy_within(pos..have, 0);
        have -= pos;
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
    }
}

// ---------------------------------------------------------------- client

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    // Read byte-wise-ish until the end of the head: the server sends nothing
    // after it before we send a frame, so reading in chunks is safe.
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 101"), "handshake: {text}");
    assert!(text.contains(HANDSHAKE_ACCEPT), "handshake: {text}");
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(end, head.len(), "unexpected bytes after the handshake");
    Ok(stream)
}

fn mask_in_place(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

fn seq_digits(seq: u64) -> [u8; 8] {
    let mut d = [0u8; 8];
    let hex = b"0123456789abcdef";
    for (i, byte) in d.iter_mut().enumerate() {
        *byte = hex[((seq >> (28 - 4 * i)) & 0xF) as usize];
    }
    d
}

fn header(size: usize, masked: bool, opcode: u8) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    let m = if masked { 0x80 } else { 0 };
    if size < 126 {
        h.push(m | size as u8);
    } else if size <= 0xFFFF {
        h.push(m | 126);
        h.extend_from_slice(&(size as u16).to_be_bytes());
    } else {
        h.push(m | 127);
        h.extend_from_slice(&(size as u64).to_be_bytes());
    }
    h
}

/// One client connection: a batch of P pre-encoded frames.
struct Conn {
    stream: TcpStream,
    key: [u8; 4],
    /// P frames back to back; each message's sequence number is patched in.
    batch: Vec<u8>,
    frame_len: usize,
    header_len: usize,
    seq: u64,
    sent_at: Instant,
}

impl Conn {
    fn new(stream: TcpStream, id: usize, size: usize, inflight: usize) -> Conn {
        let key = [
            0x5a ^ id as u8,
            0xc3 ^ (id >> 8) as u8,
            0x17,
            0x99 ^ (id as u8).rotate_left(3),
        ];
        let opcode = if size <= 125 { 0x1 } else { 0x2 };
        let mut frame = header(size, true, opcode);
        frame.extend_from_slice(&key);
        let header_len = frame.len();
        let start = frame.len();
        frame.extend(PATTERN.iter().copied().cycle().take(size));
        mask_in_place(&mut frame[start..], key, 0);
        let mut batch = Vec::with_capacity(frame.len() * inflight);
        for _ in 0..inflight {
            batch.extend_from_slice(&frame);
        }
        Conn {
            stream,
            key,
            frame_len: frame.len(),
            header_len,
            batch,
            seq: (id as u64) << 20,
            sent_at: Instant::now(),
        }
    }

    /// Sends the next P messages in one write.
    fn send(&mut self) -> io::Result<()> {
        for i in 0..self.batch.len() / self.frame_len {
            let at = i * self.frame_len + self.header_len;
            let mut digits = seq_digits(self.seq + i as u64);
            mask_in_place(&mut digits, self.key, 0);
            self.batch[at..at + 8].copy_from_slice(&digits);
        }
        self.sent_at = Instant::now();
        self.stream.write_all(&self.batch)
    }

    /// Reads the P echoes of the last batch, checks every byte, and records
    /// round trips.
    fn receive(&mut self, buf: &mut Vec<u8>, rtts: Option<&mut Vec<u32>>) -> io::Result<()> {
        let inflight = self.batch.len() / self.frame_len;
        let size = self.frame_len - self.header_len;
        let mut filled = 0;
        let mut done = 0;
        let mut now;
        let mut rtts = rtts;
        loop {
            if buf.len() < filled + 64 * 1024 {
                buf.resize(filled + 64 * 1024, 0);
            }
            let n = self.stream.read(&mut buf[filled..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            now = Instant::now();
            filled += n;
            // Parse every complete frame at the front.
            let mut pos = 0;
            while done < inflight {
                let Some((payload_at, len)) = parse_header(&buf[pos..filled]) else {
                    break;
                };
                if filled - pos < payload_at + len {
                    // Partial payload: grow the buffer to hold it whole.
                    if buf.len() < pos + payload_at + len {
                        buf.resize(pos + payload_at + len + 64 * 1024, 0);
                    }
                    break;
                }
                assert_eq!(len, size, "echo length");
                let payload = &buf[pos + payload_at..pos + payload_at + len];
                let digits = seq_digits(self.seq + done as u64);
                assert_eq!(&payload[..8], &digits[..], "echo sequence");
                let expected_rest = PATTERN.iter().cycle().skip(8 % PATTERN.len());
                if len <= 4096 {
                    assert!(
                        payload[8..].iter().zip(expected_rest).all(|(a, b)| a == b),
                        "echo bytes differ"
                    );
                } else {
                    // Compare in pattern-sized pieces (a memcmp each).
                    for (i, piece) in payload.chunks(PATTERN.len()).enumerate() {
                        if i == 0 {
                            assert_eq!(&piece[8..], &PATTERN[8..piece.len()]);
                        } else {
                            assert_eq!(piece, &PATTERN[..piece.len()], "echo bytes differ");
                        }
                    }
                }
                if let Some(r) = rtts.as_deref_mut() {
                    r.push(
                        now.duration_since(self.sent_at)
                            .as_nanos()
                            .min(u32::MAX as u128) as u32,
                    );
                }
                done += 1;
                pos += payload_at + len;
            }
            if done == inflight {
                assert_eq!(pos, filled, "bytes after the last echo");
                self.seq += inflight as u64;
                return Ok(());
            }
            buf.copy_within(pos..filled, 0);
            filled -= pos;
        }
    }

    /// Close handshake: send close 1000, wait for the server to close.
    fn close(mut self) {
        let mut frame = vec![0x88, 0x82];
        frame.extend_from_slice(&self.key);
        let mut body = 1000u16.to_be_bytes();
        mask_in_place(&mut body, self.key, 0);
        frame.extend_from_slice(&body);
        if self.stream.write_all(&frame).is_err() {
            return;
        }
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut sink = [0u8; 256];
        while let Ok(n) = self.stream.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    }
}

/// An unmasked server frame header: (header length, payload length), or
/// `None` if incomplete.
fn parse_header(b: &[u8]) -> Option<(usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    assert_eq!(b[0] & 0x80, 0x80, "echo frame without FIN");
    assert!(matches!(b[0] & 0x0F, 1 | 2), "unexpected opcode {}", b[0]);
    assert_eq!(b[1] & 0x80, 0, "masked frame from the server");
    match b[1] & 0x7F {
        126 if b.len() >= 4 => Some((4, u16::from_be_bytes([b[2], b[3]]) as usize)),
        127 if b.len() >= 10 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(&b[2..10]);
            Some((10, u64::from_be_bytes(be) as usize))
        }
        126 | 127 => None,
        n => Some((2, n as usize)),
    }
}

#[derive(Default)]
struct Outcome {
    /// Messages (or connections, for churn) per second.
    rate: f64,
    p50_us: f64,
    p99_us: f64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn run_echo(addr: SocketAddr, s: &Scenario, secs: f64) -> Outcome {
    let warmup = Duration::from_secs_f64((secs * 0.15).min(0.5));
    let measure = Duration::from_secs_f64(secs);
    let threads = env_or("ECHO_CLIENT_THREADS", s.threads).min(s.conns);
    // Connect everything first (not timed); threads connect their own share.
    let start_gate = Arc::new(std::sync::Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let share: Vec<usize> = (t..s.conns).step_by(threads).collect();
        let gate = Arc::clone(&start_gate);
        let s = *s;
        handles.push(
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut conns: Vec<Conn> = share
                        .iter()
                        .map(|&id| {
                            Conn::new(connect(addr).expect("connect"), id, s.size, s.inflight)
                        })
                        .collect();
                    gate.wait();
                    let begin = Instant::now();
                    let measure_from = begin + warmup;
                    let until = measure_from + measure;
                    let mut buf = Vec::new();
                    let mut rtts: Vec<u32> = Vec::with_capacity(1 << 16);
                    for c in &mut conns {
                        c.send().expect("send");
                    }
                    loop {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        let measuring = now >= measure_from;
                        for c in &mut conns {
                            c.receive(&mut buf, measuring.then_some(&mut rtts))
                                .expect("receive");
                            c.send().expect("send");
                        }
                    }
                    // Drain the last batches, then close.
                    for c in &mut conns {
                        c.receive(&mut buf, None).expect("receive");
                    }
                    for c in conns {
                        c.close();
                    }
                    rtts
                })
                .expect("spawn client"),
        );
    }
    start_gate.wait();
    // Echoes recorded are those whose batch *started* in the measured window
    // (the loop checks the clock once per pass over its connections).
    outcome(handles, measure)
}

/// Joins the client threads and turns the round trips they timed (ns) in
/// the measured window into a rate and percentiles.
fn outcome(handles: Vec<thread::JoinHandle<Vec<u32>>>, measure: Duration) -> Outcome {
    let mut all: Vec<u32> = Vec::new();
    for h in handles {
        all.extend(h.join().expect("client thread"));
    }
    all.sort_unstable();
    Outcome {
        rate: all.len() as f64 / measure.as_secs_f64(),
        p50_us: percentile(&all, 0.5),
        p99_us: percentile(&all, 0.99),
    }
}

fn run_churn(addr: SocketAddr, s: &Scenario, secs: f64) -> Outcome {
    let warmup = Duration::from_secs_f64((secs * 0.15).min(0.5));
    let measure = Duration::from_secs_f64(secs);
    let gate = Arc::new(std::sync::Barrier::new(s.threads + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..s.threads {
        let gate = Arc::clone(&gate);
        let stop = Arc::clone(&stop);
        let size = s.size;
        handles.push(
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut times: Vec<u32> = Vec::new();
                    let mut buf = Vec::new();
                    gate.wait();
                    let measure_from = Instant::now() + warmup;
                    let until = measure_from + measure;
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        if started >= until {
                            break;
                        }
                        let stream = connect(addr).expect("connect");
                        let mut c = Conn::new(stream, t * 1_000_003 + n, size, 1);
                        c.send().expect("send");
                        c.receive(&mut buf, None).expect("receive");
                        c.close();
                        n += 1;
                        if started >= measure_from {
                            let took = started.elapsed().as_nanos().min(u32::MAX as u128);
                            times.push(took as u32);
                        }
                    }
                    times
                })
                .expect("spawn churn client"),
        );
    }
    gate.wait();
    outcome(handles, measure)
}

fn median(mut v: Vec<f64>) -> f64 {
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments (filter with ECHO_ONLY).
    let rounds: usize = env_or("ECHO_ROUNDS", 5);
    let secs: f64 = env_or("ECHO_SECS", 2.0);
    let only = std::env::var("ECHO_ONLY").unwrap_or_default();
    let which = std::env::var("ECHO_SERVERS").unwrap_or_default();
    let scenarios: Vec<Scenario> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| s.name.contains(only.as_str()))
        .collect();
    let servers: Vec<(Server, SocketAddr)> = Server::ALL
        .into_iter()
        .filter(|s| which.is_empty() || which.split(',').any(|w| w == s.name()))
        .filter_map(|s| Some((s, s.start()?)))
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
                let (server, addr) = servers[k];
                let o = if s.churn {
                    run_churn(addr, s, secs)
                } else {
                    run_echo(addr, s, secs)
                };
                eprintln!(
                    "round {} | {:<32} | {:<11} | {:>10.0}/s | p50 {:>8.1} us | p99 {:>8.1} us",
                    round + 1,
                    s.name,
                    server.name(),
                    o.rate,
                    o.p50_us,
                    o.p99_us
                );
                results[si][k].push(o);
                // Let server threads of closed connections exit.
                thread::sleep(Duration::from_millis(200));
            }
        }
    }

    let mut table = String::new();
    table.push_str(&format!(
        "Echo load, medians of {rounds} interleaved rounds of {secs} s \
         (rate: messages/s, churn: connections/s; round trip p50/p99 in µs)\n\n"
    ));
    table.push_str(
        "| scenario | ours | poll | tungstenite | fastwebsockets | floor | ours/tungstenite | poll/fastwebsockets | ours/floor | poll/ours | p50/p99: ours, poll, fastwebsockets |\n",
    );
    table.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let index = |server: Server| servers.iter().position(|(s, _)| *s == server);
    for (si, s) in scenarios.iter().enumerate() {
        let cell = |k: Option<usize>| -> (f64, String) {
            match k {
                Some(k) => {
                    let r = &results[si][k];
                    let rate = median(r.iter().map(|o| o.rate).collect());
                    let p50 = median(r.iter().map(|o| o.p50_us).collect());
                    let p99 = median(r.iter().map(|o| o.p99_us).collect());
                    (rate, format!("{p50:.0}/{p99:.0}"))
                }
                None => (f64::NAN, "-".into()),
            }
        };
        // The ratio of each round's pair, then the median: robust to a slow round.
        let ratio = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => median(
                results[si][a]
                    .iter()
                    .zip(&results[si][b])
                    .map(|(x, y)| x.rate / y.rate)
                    .collect(),
            ),
            _ => f64::NAN,
        };
        let [ours, poll, tung, fast, floor] = Server::ALL.map(index);
        let (ro, lo) = cell(ours);
        let (rp, lp) = cell(poll);
        let (rt, _) = cell(tung);
        let (rw, lw) = cell(fast);
        let (rf, _) = cell(floor);
        table.push_str(&format!(
            "| {} | {ro:.0} | {rp:.0} | {rt:.0} | {rw:.0} | {rf:.0} | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {lo}, {lp}, {lw} |\n",
            s.name,
            ratio(ours, tung),
            ratio(poll, fast),
            ratio(ours, floor),
            ratio(poll, ours),
        ));
    }
    println!("\n{table}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/echo-bench.md");
    if std::fs::write(&path, &table).is_ok() {
        eprintln!("written to {}", path.display());
    }
}
