//! Hostile peers and faults against a real server over loopback, on both
//! engines: every case runs against the threaded [`rfc6455::Server`] (module
//! `threads`) and, with the `mio` feature, against the poll engine (module
//! `poll`), under the same name. The cases live in `hostile/cases.rs`; each
//! engine's module says how to start its servers.
//!
//! Every test drives raw `TcpStream`s that write hand-built bytes (requests
//! and masked client frames are assembled here, not with the crate's own
//! encoder) and checks the server's exact answer: the HTTP status before the
//! handshake, the close code after it, and that the connection and its
//! thread go away in bounded time. Every socket has a read timeout and every
//! wait has a deadline, so a misbehaving server fails a test instead of
//! hanging it. RFC 6455 §10 and GUIDE.md §5 are the checklist.

use rfc6455::{Keepalive, Message, ServerConfig, SizeLimits};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// A per-thread allocation meter: how many heap bytes a thread holds at its
// peak. The server's connection thread reads it to prove that a message made
// of many tiny fragments costs about its payload, not a per-fragment overhead.

struct Metered;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call forwards to the system allocator unchanged; the meter
// only adds bookkeeping in const-initialized thread locals (no allocation).
unsafe impl GlobalAlloc for Metered {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static METERED: Metered = Metered;

/// Starts measuring the calling thread's heap: returns the bytes it holds now.
fn meter_reset() -> isize {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    live
}

fn meter_peak() -> isize {
    PEAK.with(Cell::get)
}

// ---------------------------------------------------------------------------
// Servers.

/// Generous bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(3);

/// Tests that assert timing and tests that load the machine (thousands of
/// threads or fragments) take this lock, so the first never run beside the
/// second: on a small shared machine that is what keeps them from flaking.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running server of either engine, as the cases see it: its address, its
/// connection count, and shutdown (also on drop).
struct TestServer {
    addr: SocketAddr,
    connections: Box<dyn Fn() -> usize>,
    stop: Option<Box<dyn FnOnce() -> io::Result<()>>>,
}

impl TestServer {
    fn new(
        addr: SocketAddr,
        connections: impl Fn() -> usize + 'static,
        stop: impl FnOnce() -> io::Result<()> + 'static,
    ) -> TestServer {
        TestServer {
            addr,
            connections: Box::new(connections),
            stop: Some(Box::new(stop)),
        }
    }

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn connections(&self) -> usize {
        (self.connections)()
    }

    /// Graceful shutdown; returns when the server's `serve` has returned.
    fn shutdown(mut self) -> io::Result<()> {
        self.stop.take().map_or(Ok(()), |stop| stop())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop();
        }
    }
}

/// Waits until the server serves exactly `n` connections.
fn wait_connections(server: &TestServer, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = server.connections();
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server still has {now} connections after {within:?}, expected {n}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// Raw client plumbing.

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(SOON)).unwrap();
    s.set_write_timeout(Some(SOON)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
struct HttpReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl HttpReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads a response head (and, for non-101 answers, the body up to end of
/// stream). A read error before a whole head panics.
fn read_reply(s: &mut TcpStream) -> HttpReply {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte so nothing past the head (the first frames) is consumed.
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => panic!(
                "end of stream before a response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(_) => buf.push(byte[0]),
            Err(e) => panic!(
                "no response head ({e}); got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
        assert!(buf.len() < 64 * 1024, "response head too long");
    }
    let head = String::from_utf8(buf).expect("ASCII head");
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    let mut body = Vec::new();
    if status != 101 {
        // The server closes after an error answer: read to the end.
        let _ = s.read_to_end(&mut body);
    }
    HttpReply { status, head, body }
}

/// Sends `request` and reads the answer.
fn ask(addr: SocketAddr, request: &[u8]) -> HttpReply {
    let mut s = raw(addr);
    s.write_all(request).unwrap();
    read_reply(&mut s)
}

/// A connection past a valid opening handshake.
fn handshake(addr: SocketAddr) -> TcpStream {
    let mut s = raw(addr);
    s.write_all(upgrade_request("").as_bytes()).unwrap();
    let reply = read_reply(&mut s);
    assert_eq!(reply.status, 101, "{}", reply.head);
    assert_eq!(
        reply.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    s
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame. `first` is the whole first byte (FIN, RSV, opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(first, payload.len() as u64);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// A masked client frame header declaring `len` bytes, in the minimal form.
fn header(first: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out
}

/// Masks `payload` as bytes `offset..` of a frame's payload.
fn masked_at(payload: &[u8], offset: usize) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ MASK[(offset + i) % 4])
        .collect()
}

const FIN: u8 = 0x80;
const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A frame from the server (which must not mask).
#[derive(Debug)]
struct ServerFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

fn read_frame(s: &mut TcpStream) -> io::Result<ServerFrame> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    assert_eq!(h[0] & 0x70, 0, "server set RSV bits");
    assert_eq!(h[1] & 0x80, 0, "server masked a frame");
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b)?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    assert!(len <= 64 << 20, "server frame of {len} bytes");
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload)?;
    Ok(ServerFrame {
        fin: h[0] & 0x80 != 0,
        opcode: h[0] & 0x0F,
        payload,
    })
}

/// Reads frames until the server's close frame; returns its code (`None` for
/// an empty close payload). Panics on end of stream or timeout first.
fn read_close(s: &mut TcpStream) -> Option<u16> {
    loop {
        let f = read_frame(s).unwrap_or_else(|e| panic!("no close frame from the server: {e}"));
        if f.opcode == CLOSE {
            assert!(f.fin);
            return match f.payload.as_slice() {
                [] => None,
                [a, b, reason @ ..] => {
                    assert!(std::str::from_utf8(reason).is_ok());
                    Some(u16::from_be_bytes([*a, *b]))
                }
                [_] => panic!("one-byte close payload from the server"),
            };
        }
    }
}

/// Asserts the server closes TCP (end of stream) soon, sending nothing more.
fn expect_eof(s: &mut TcpStream) {
    s.set_read_timeout(Some(SOON)).unwrap();
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "bytes after the close frame: {rest:?}"),
        // A reset also ends the connection; a timeout does not.
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
    }
}

// ---------------------------------------------------------------------------
// The engines.

/// The thread-per-connection [`rfc6455::Server`]: handlers are closures over
/// a blocking [`ServerWebSocket`].
mod threads {
    use super::*;
    use rfc6455::handshake::Request;
    use rfc6455::{Server, ServerWebSocket};

    fn start_with<F>(config: ServerConfig, handler: F) -> TestServer
    where
        F: Fn(ServerWebSocket, Request) -> rfc6455::Result<()> + Send + Sync + 'static,
    {
        let running = Server::bind("127.0.0.1:0", config)
            .expect("bind")
            .spawn(handler)
            .expect("spawn");
        let handle = running.handle();
        TestServer::new(
            running.local_addr(),
            move || handle.connections(),
            move || running.shutdown(),
        )
    }

    /// The echo server.
    fn start(config: ServerConfig) -> TestServer {
        start_with(config, |mut ws, _| loop {
            let message = ws.read()?;
            if message.is_data() {
                ws.write(message)?;
            }
        })
    }

    /// Closes each connection (1000) on its first message.
    fn start_closing_on_first_message(config: ServerConfig) -> TestServer {
        start_with(config, |mut ws, _| {
            ws.read()?;
            ws.close(rfc6455::CloseCode::NORMAL, "done")?;
            loop {
                ws.read()?;
            }
        })
    }

    /// Sends 1 MiB messages to each connection for as long as it lasts.
    fn start_flooding(config: ServerConfig) -> TestServer {
        start_with(config, |mut ws, _| {
            let big = vec![0x5a; 1 << 20];
            loop {
                ws.send(Message::Binary(big.clone()))?;
            }
        })
    }

    /// Echoes, but panics on a message that is `trigger`.
    fn start_panicking_on(trigger: &'static [u8]) -> TestServer {
        start_with(ServerConfig::default(), move |mut ws, _| {
            let message = ws.read()?;
            if message.as_bytes() == trigger {
                panic!("handler panics on purpose (expected in this test)");
            }
            ws.send(message)?;
            loop {
                ws.read()?;
            }
        })
    }

    /// Echoes the first message, after storing in `peak` how much heap the
    /// connection's thread held at most while receiving it.
    fn start_measuring(config: ServerConfig, peak: Arc<AtomicUsize>) -> TestServer {
        start_with(config, move |mut ws, _| {
            let base = meter_reset();
            let message = ws.read()?;
            peak.store((meter_peak() - base).max(0) as usize, Ordering::SeqCst);
            ws.send(message)?;
            loop {
                ws.read()?;
            }
        })
    }

    include!("hostile/cases.rs");
}

/// The poll engine: handlers are [`Handler`](rfc6455::poll::Handler)s on
/// two worker threads.
#[cfg(feature = "mio")]
mod poll {
    use super::*;
    use rfc6455::handshake::Request;
    use rfc6455::poll::{Conn, Handler, PollServer, SendError};
    use rfc6455::protocol::MessageRef;

    fn start_with(config: ServerConfig, handler: impl Handler) -> TestServer {
        let running = PollServer::bind("127.0.0.1:0", config)
            .expect("bind")
            .workers(2)
            .spawn(handler)
            .expect("spawn");
        let handle = running.handle();
        TestServer::new(
            running.local_addr(),
            move || handle.connections(),
            move || running.shutdown(),
        )
    }

    struct Echo;

    impl Handler for Echo {
        type State = ();
        fn on_open(&self, _: &mut Conn<'_>, _: &Request) {}
        fn on_message(&self, _: &mut (), conn: &mut Conn<'_>, message: MessageRef<'_>) {
            let _ = conn.send(message);
        }
    }

    /// The echo server.
    fn start(config: ServerConfig) -> TestServer {
        start_with(config, Echo)
    }

    struct CloseOnFirstMessage;

    impl Handler for CloseOnFirstMessage {
        type State = ();
        fn on_open(&self, _: &mut Conn<'_>, _: &Request) {}
        fn on_message(&self, _: &mut (), conn: &mut Conn<'_>, _: MessageRef<'_>) {
            conn.close(rfc6455::CloseCode::NORMAL, "done");
        }
    }

    /// Closes each connection (1000) on its first message.
    fn start_closing_on_first_message(config: ServerConfig) -> TestServer {
        start_with(config, CloseOnFirstMessage)
    }

    struct Flood;

    impl Handler for Flood {
        type State = ();
        fn on_open(&self, conn: &mut Conn<'_>, _: &Request) {
            // A thread that sends through a Sender for as long as the
            // connection lasts, waiting whenever its output is full.
            let sender = conn.sender();
            thread::spawn(move || {
                let big = Arc::new(Message::Binary(vec![0x5a; 1 << 20]));
                loop {
                    match sender.send_shared(Arc::clone(&big)) {
                        Ok(()) => {}
                        Err(SendError::Full) => thread::sleep(Duration::from_millis(1)),
                        Err(_) => return,
                    }
                }
            });
        }
        fn on_message(&self, _: &mut (), _: &mut Conn<'_>, _: MessageRef<'_>) {}
    }

    /// Sends 1 MiB messages to each connection for as long as it lasts.
    fn start_flooding(config: ServerConfig) -> TestServer {
        start_with(config, Flood)
    }

    struct PanicOn(&'static [u8]);

    impl Handler for PanicOn {
        type State = ();
        fn on_open(&self, _: &mut Conn<'_>, _: &Request) {}
        fn on_message(&self, _: &mut (), conn: &mut Conn<'_>, message: MessageRef<'_>) {
            if message.payload() == Some(self.0) {
                panic!("handler panics on purpose (expected in this test)");
            }
            let _ = conn.send(message);
        }
    }

    /// Echoes, but panics on a message that is `trigger`.
    fn start_panicking_on(trigger: &'static [u8]) -> TestServer {
        start_with(ServerConfig::default(), PanicOn(trigger))
    }

    struct Measure(Arc<AtomicUsize>);

    impl Handler for Measure {
        /// The worker's heap when the connection opened.
        type State = isize;
        fn on_open(&self, _: &mut Conn<'_>, _: &Request) -> isize {
            meter_reset()
        }
        fn on_message(&self, base: &mut isize, conn: &mut Conn<'_>, message: MessageRef<'_>) {
            let peak = (meter_peak() - *base).max(0) as usize;
            self.0.store(peak, Ordering::SeqCst);
            let _ = conn.send(message);
        }
    }

    /// Echoes, after storing in `peak` how much heap the worker thread held
    /// at most since the connection opened.
    fn start_measuring(config: ServerConfig, peak: Arc<AtomicUsize>) -> TestServer {
        start_with(config, Measure(peak))
    }

    include!("hostile/cases.rs");
}
