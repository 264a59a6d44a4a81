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
use std::io::{self, Write};
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
// Raw client plumbing: hand-built requests and frames (shared with tests/poll.rs).

#[path = "hostile/wire.rs"]
mod wire;
use wire::*;

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
