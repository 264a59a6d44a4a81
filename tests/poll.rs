//! Scenarios for the poll engine (feature `mio`): what a [`Handler`] sees,
//! sending from other threads with a [`Sender`], backpressure on a peer that
//! does not read, the timers, shutdown, the HTTP hooks, and many connections
//! on few workers. Every wait has a deadline and every socket a timeout, so
//! a misbehaving server fails a test instead of hanging it; timing bounds
//! are generous (the machine is shared). The hostile-input cases run on this
//! engine from `tests/hostile.rs`.
#![cfg(feature = "mio")]

mod common;
#[path = "hostile/wire.rs"]
mod wire;

use common::{
    ascii, assert_echo, bytes, client, close_normally, raw_exchange, status, test_config,
};
use rfc6455::handshake::server::AcceptOptions;
use rfc6455::handshake::Request;
use rfc6455::poll::{
    Conn, Handler, PollHandle, PollServer, RunningPollServer, SendError, Sender as WsSender,
};
use rfc6455::protocol::MessageRef;
use rfc6455::{
    connect_with, CloseCode, Error, HttpResponse, Keepalive, Message, ServerConfig, Timeout,
};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};
use wire::{expect_eof, frame, handshake, read_close, read_frame, CLOSE, FIN, PING, SOON, TEXT};

/// Tests that assert timing or load the machine take this lock, so the first
/// never run beside the second.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// A handler that echoes and records what it was told.

/// How a connection ended, as `on_close` heard it.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Clean,
    Timeout(Timeout),
    Io(io::ErrorKind),
    /// The close code the protocol error called for.
    Protocol(u16),
    Other(String),
}

impl From<&Error> for End {
    fn from(error: &Error) -> End {
        match error {
            Error::ConnectionClosed => End::Clean,
            Error::Timeout(t) => End::Timeout(*t),
            Error::Io(e) => End::Io(e.kind()),
            Error::Protocol(p) => End::Protocol(p.close_code().0),
            other => End::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Open(u64),
    Close(u64, End),
}

/// The handler's callbacks, in order, for the test thread to wait on.
#[derive(Default)]
struct Log {
    events: Mutex<Vec<Event>>,
    changed: Condvar,
}

impl Log {
    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_all();
    }

    /// Waits until `done` holds for the events so far; panics after `within`.
    fn wait(&self, within: Duration, what: &str, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + within;
        let mut events = self.events.lock().unwrap();
        while !done(&events) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: not after {within:?}; events {events:?}"
            );
            events = self.changed.wait_timeout(events, left).unwrap().0;
        }
        events.clone()
    }

    /// Waits for the connection `id` to end; returns how.
    fn end_of(&self, id: u64, within: Duration) -> End {
        let events = self.wait(within, &format!("on_close of {id}"), |events| {
            events
                .iter()
                .any(|e| matches!(e, Event::Close(c, _) if *c == id))
        });
        events
            .into_iter()
            .find_map(|e| match e {
                Event::Close(c, end) if c == id => Some(end),
                _ => None,
            })
            .unwrap()
    }
}

/// Panics in `on_open` for the target `/panic`. Echoes data messages,
/// except these requests: `close please` (the server
/// closes, 1000), a message that starts with `subprotocol?` (answered with
/// the selected one), one that starts with `panic` (the handler panics) and
/// `block` (holds the worker for 300 ms, as a handler must never do: a test
/// uses it to let events pile up on the worker's other connections).
struct Echo {
    log: Arc<Log>,
    senders: Mutex<mpsc::Sender<WsSender>>,
}

impl Handler for Echo {
    /// The connection's id.
    type State = u64;

    fn on_open(&self, conn: &mut Conn<'_>, request: &Request) -> u64 {
        if request.target == "/panic" {
            panic!("on_open panics on purpose (expected in this test)");
        }
        let sender = conn.sender();
        let id = sender.id();
        self.log.push(Event::Open(id));
        let _ = self.senders.lock().unwrap().send(sender);
        id
    }

    fn on_message(&self, _: &mut u64, conn: &mut Conn<'_>, message: MessageRef<'_>) {
        match message.payload().unwrap_or_default() {
            b"close please" => conn.close(CloseCode::NORMAL, "done"),
            b"block" => thread::sleep(Duration::from_millis(300)),
            p if p.starts_with(b"subprotocol?") => {
                let answer = conn.subprotocol().unwrap_or("none").to_owned();
                conn.send(MessageRef::Text(&answer)).unwrap();
            }
            p if p.starts_with(b"panic") => {
                panic!("on_message panics on purpose (expected in this test)")
            }
            _ => conn.send(message).unwrap(),
        }
    }

    fn on_close(&self, id: u64, end: &Error) {
        self.log.push(Event::Close(id, End::from(end)));
    }
}

/// A running poll server with the [`Echo`] handler.
struct Fixture {
    server: RunningPollServer,
    log: Arc<Log>,
    /// The sender of each connection, in the order they opened.
    senders: Receiver<WsSender>,
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The next connection's sender (and id).
    fn next_sender(&self) -> WsSender {
        self.senders
            .recv_timeout(SOON)
            .expect("a connection opened")
    }

    fn wait_connections(&self, n: usize, within: Duration) {
        wait_connections(&self.server.handle(), n, within);
    }
}

/// Two workers, `tune` for the rest.
fn start(config: ServerConfig, tune: impl FnOnce(PollServer) -> PollServer) -> Fixture {
    let (handler, log, senders) = echo_handler();
    let server = PollServer::bind("127.0.0.1:0", config)
        .expect("bind")
        .workers(2);
    let server = tune(server).spawn(handler).expect("spawn");
    Fixture {
        server,
        log,
        senders,
    }
}

fn echo_handler() -> (Echo, Arc<Log>, Receiver<WsSender>) {
    let log = Arc::new(Log::default());
    let (tx, rx) = mpsc::channel();
    let handler = Echo {
        log: Arc::clone(&log),
        senders: Mutex::new(tx),
    };
    (handler, log, rx)
}

fn wait_connections(handle: &PollHandle, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while handle.connections() != n {
        assert!(
            Instant::now() < deadline,
            "{} connections after {within:?}, expected {n}",
            handle.connections()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// Echo and senders.

#[test]
fn echo_text_and_binary_from_0_bytes_to_1_mib() {
    let f = start(test_config(), |s| s);
    let mut ws = client(f.addr());
    for len in [0, 1, 125, 126, 65_535, 65_536, 100_000, 1 << 20] {
        assert_echo(&mut ws, Message::Text(ascii(len)));
        assert_echo(&mut ws, Message::Binary(bytes(len)));
    }
    close_normally(&mut ws);
}

#[test]
fn echo_of_pipelined_messages_keeps_their_order() {
    let f = start(test_config(), |s| s);
    let mut ws = client(f.addr());
    // Written without reading: the server reads them in batches and its
    // replies wait in the socket meanwhile.
    for i in 0..2000 {
        ws.write(Message::Text(format!("{i} {}", ascii(i % 300))))
            .unwrap();
    }
    ws.flush().unwrap();
    for i in 0..2000 {
        let echo = ws.read().unwrap();
        assert_eq!(echo, Message::Text(format!("{i} {}", ascii(i % 300))));
    }
    close_normally(&mut ws);
}

#[test]
fn sender_messages_from_other_threads_arrive_in_order() {
    const THREADS: usize = 4;
    const EACH: usize = 500;
    let f = start(test_config(), |s| s);
    let mut ws = client(f.addr());
    let sender = f.next_sender();
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let sender = sender.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    sender
                        .send(Message::Text(format!("{t} {i}")))
                        .unwrap_or_else(|e| panic!("thread {t}, message {i}: {e}"));
                }
            })
        })
        .collect();
    // Each thread's messages in the order it sent them, interleaved anyhow.
    let mut next = [0usize; THREADS];
    for _ in 0..THREADS * EACH {
        let Message::Text(text) = ws.read().unwrap() else {
            panic!("not text")
        };
        let (t, i) = text.split_once(' ').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "thread {t}'s messages out of order");
        next[t] += 1;
    }
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(sender.dropped(), 0);
    close_normally(&mut ws);
}

#[test]
fn sender_burst_to_a_reader_that_keeps_up_loses_nothing() {
    // The budget bounds what waits, not what flows: a burst many times
    // `max_pending` reaches a peer that keeps reading, whole and in order;
    // the only misses are the refusals the sender saw (and retried).
    const COUNT: usize = 300;
    const SIZE: usize = 16 * 1024;
    let f = start(test_config(), |s| s.max_pending(64 * 1024));
    let mut ws = client(f.addr());
    let sender = f.next_sender();
    let reader = thread::spawn(move || {
        for i in 0..COUNT {
            let m = ws.read().unwrap();
            assert_eq!(
                (m.len(), m.as_bytes()[0] as usize),
                (SIZE, i % 256),
                "message {i}"
            );
        }
        close_normally(&mut ws);
    });
    let mut refused = 0;
    for i in 0..COUNT {
        let message = Arc::new(Message::Binary(vec![i as u8; SIZE]));
        // Refused while the worker has not taken what was handed to it yet:
        // that is the sender's to retry.
        while let Err(e) = sender.send_shared(Arc::clone(&message)) {
            assert_eq!(e, SendError::Full);
            refused += 1;
            thread::sleep(Duration::from_millis(1));
        }
    }
    reader.join().unwrap();
    assert_eq!(sender.dropped(), refused, "messages dropped by the worker");
}

#[test]
fn sender_send_after_close_is_closed() {
    let f = start(test_config(), |s| s);
    let mut ws = client(f.addr());
    let sender = f.next_sender();
    assert!(sender.is_open());
    sender.send(Message::Text("before".into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("before".into()));
    close_normally(&mut ws);
    assert_eq!(f.log.end_of(sender.id(), SOON), End::Clean);
    assert!(!sender.is_open());
    assert_eq!(
        sender.send(Message::Text("after".into())),
        Err(SendError::Closed)
    );
    assert_eq!(
        sender.send_shared(Arc::new(Message::Binary(vec![1; 10]))),
        Err(SendError::Closed)
    );
    // Closing a closed connection does nothing.
    sender.close(CloseCode::NORMAL, "again");
    f.wait_connections(0, SOON);
}

#[test]
fn sender_close_starts_the_close_handshake() {
    let f = start(test_config(), |s| s);
    let mut ws = client(f.addr());
    let sender = f.next_sender();
    sender.close(CloseCode::GOING_AWAY, "bye");
    match ws.read().unwrap() {
        Message::Close(Some(close)) => {
            assert_eq!(
                (close.code, close.reason.as_str()),
                (CloseCode::GOING_AWAY, "bye")
            )
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // The client's read answered the close; the server then closes TCP.
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    assert_eq!(f.log.end_of(sender.id(), SOON), End::Clean);
}

// ---------------------------------------------------------------------------
// A peer that does not read.

/// What the kernel may hold of a connection's output at most: the sender's
/// send buffer and the peer's receive buffer, at their largest.
fn kernel_buffers() -> usize {
    let max = |name: &str| -> usize {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .ok()
            .and_then(|s| s.split_whitespace().last()?.parse().ok())
            .unwrap_or(8 << 20)
    };
    max("tcp_wmem") + max("tcp_rmem")
}

#[test]
fn peer_that_does_not_read_misses_messages_with_output_bounded() {
    let _serial = serial();
    // A budget of one message: a second handed over before the worker has
    // taken the first is refused, so a burst meets `Full` at once.
    const MAX_PENDING: usize = 16 * 1024;
    const SIZE: usize = 16 * 1024;
    let config = test_config().write_timeout(Some(Duration::from_secs(30)));
    let f = start(config, |s| s.max_pending(MAX_PENDING));
    let mut stuck = client(f.addr());
    let sender = f.next_sender();
    let mut other = client(f.addr());
    let _ = f.next_sender();

    // Send to the peer that does not read until its output is full: the
    // kernel's buffers and the server's budget hold no more (nothing gets
    // through for a while), and `send` has refused some (`Full`).
    let message = Arc::new(Message::Binary(bytes(SIZE)));
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut attempts, mut refused) = (0u64, 0u64);
    let mut through = (0u64, Instant::now());
    loop {
        let delivered = attempts - sender.dropped();
        if delivered != through.0 {
            through = (delivered, Instant::now());
        } else if refused > 0 && through.1.elapsed() > Duration::from_millis(300) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {attempts} sends: {refused} refused, {} dropped",
            sender.dropped()
        );
        attempts += 1;
        match sender.send_shared(Arc::clone(&message)) {
            // Paced while messages get through. Once they stop (the worker
            // drops what it is handed) and `send` has refused none yet, no
            // pause: a burst outruns the worker's inbox, whose bytes count
            // against the budget too, and `send` refuses (`Full`). Paced,
            // a quick worker may take every message in time, and the loop
            // would wait for a refusal that never comes.
            Ok(()) if refused > 0 || through.1.elapsed() < Duration::from_millis(300) => {
                thread::sleep(Duration::from_micros(200))
            }
            Ok(()) => {}
            Err(SendError::Full) => {
                refused += 1;
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sender.dropped() > refused, "the worker dropped none");
    // The server goes on serving others meanwhile.
    assert_echo(&mut other, Message::Text("still served".into()));
    assert_echo(&mut other, Message::Binary(bytes(100_000)));

    // Every message was either delivered or counted as dropped; what was
    // delivered all sat in buffers at once (the peer had read nothing), so
    // it is bounded by the kernel's buffers plus the server's budget.
    let mut received = 0u64;
    let mut received_bytes = 0usize;
    while received + sender.dropped() < attempts {
        let m = stuck.read().expect("a message queued for the slow peer");
        assert_eq!(m.len(), SIZE);
        received += 1;
        received_bytes += m.len();
    }
    let bound = kernel_buffers() + MAX_PENDING + 2 * SIZE;
    assert!(
        received_bytes > MAX_PENDING && received_bytes <= bound,
        "{received_bytes} bytes buffered for a peer that did not read (bound {bound})"
    );
    assert_eq!(received + sender.dropped(), attempts);
    // Caught up, it is served again.
    sender.send(Message::Text("caught up".into())).unwrap();
    assert_eq!(stuck.read().unwrap(), Message::Text("caught up".into()));
    close_normally(&mut stuck);
    close_normally(&mut other);
}

#[test]
fn stuck_connection_is_dropped_after_the_write_timeout() {
    let _serial = serial();
    let config = test_config().write_timeout(Some(Duration::from_millis(500)));
    let f = start(config, |s| s.max_pending(64 * 1024));
    let stuck = client(f.addr());
    let sender = f.next_sender();
    let mut other = client(f.addr());
    let _ = f.next_sender();
    let start = Instant::now();
    let flooder = thread::spawn(move || {
        let message = Arc::new(Message::Binary(bytes(16 * 1024)));
        loop {
            match sender.send_shared(Arc::clone(&message)) {
                Ok(()) => {}
                Err(SendError::Full) => thread::sleep(Duration::from_millis(1)),
                Err(_) => return sender,
            }
        }
    });
    assert_echo(&mut other, Message::Text("not held up".into()));
    let sender = flooder.join().unwrap();
    let took = start.elapsed();
    // The socket fills, then no write makes progress for 0.5 s.
    assert_eq!(
        f.log.end_of(sender.id(), SOON),
        End::Io(io::ErrorKind::TimedOut)
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(10),
        "dropped after {took:?}"
    );
    assert!(sender.dropped() > 0);
    f.wait_connections(1, SOON);
    assert_echo(&mut other, Message::Text("still served".into()));
    drop(stuck);
    close_normally(&mut other);
}

// ---------------------------------------------------------------------------
// on_close.

#[test]
fn on_close_is_called_once_per_on_open_with_how_it_ended() {
    let f = start(test_config(), |s| s);
    let mut ends = Vec::new();

    // The client closes.
    let mut ws = client(f.addr());
    close_normally(&mut ws);
    ends.push((f.next_sender().id(), End::Clean));

    // The server closes (from the handler), the client answers.
    let mut ws = client(f.addr());
    ws.send(Message::Text("close please".into())).unwrap();
    assert!(matches!(ws.read(), Ok(Message::Close(Some(c))) if c.code == CloseCode::NORMAL));
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    ends.push((f.next_sender().id(), End::Clean));

    // The peer vanishes without a close frame.
    drop(handshake(f.addr()));
    ends.push((f.next_sender().id(), End::Io(io::ErrorKind::UnexpectedEof)));

    // The peer breaks the protocol (an unmasked frame).
    let mut s = handshake(f.addr());
    s.write_all(b"\x81\x02hi").unwrap();
    assert_eq!(read_close(&mut s), Some(1002));
    ends.push((f.next_sender().id(), End::Protocol(1002)));

    // A refused handshake never opens.
    let response = raw_exchange(f.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&response), 426);

    f.wait_connections(0, SOON);
    let events = f.log.wait(SOON, "four closes", |events| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Close(..)))
            .count()
            >= 4
    });
    // Settle: nothing more comes.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(*f.log.events.lock().unwrap(), events);
    let mut opens = HashMap::new();
    let mut closes = HashMap::new();
    for event in &events {
        match event {
            Event::Open(id) => *opens.entry(*id).or_insert(0) += 1,
            Event::Close(id, end) => {
                assert_eq!(opens.get(id), Some(&1), "close of {id} before its open");
                assert!(
                    closes.insert(*id, end.clone()).is_none(),
                    "{id} closed twice"
                );
            }
        }
    }
    assert_eq!(opens.len(), 4);
    for (id, end) in ends {
        assert_eq!(closes.get(&id), Some(&end), "connection {id}");
    }
}

#[test]
fn half_close_with_the_last_data_ends_the_connection() {
    // The last data and the peer's FIN reach the socket while the worker is
    // busy, so one readiness edge says both: the end of stream must not be
    // missed behind the short read that returns the data.
    let f = start(test_config(), |s| s.workers(1));
    let mut blocker = handshake(f.addr());
    let _ = f.next_sender();
    let mut s = handshake(f.addr());
    let id = f.next_sender().id();
    blocker.write_all(&frame(FIN | TEXT, b"block")).unwrap();
    thread::sleep(Duration::from_millis(100));
    s.write_all(&frame(FIN | TEXT, b"last words")).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let echo = read_frame(&mut s).unwrap();
    assert_eq!(
        (echo.opcode, echo.payload.as_slice()),
        (TEXT, &b"last words"[..])
    );
    expect_eof(&mut s);
    assert_eq!(
        f.log.end_of(id, SOON),
        End::Io(io::ErrorKind::UnexpectedEof)
    );
}

#[test]
fn a_panic_in_on_open_costs_only_that_connection() {
    let f = start(test_config(), |s| s.workers(1));
    let mut ws = client(f.addr());
    let id = f.next_sender().id();
    let request = common::upgrade_request(f.addr()).replacen("GET /", "GET /panic", 1);
    // No 101: the connection just ends.
    assert_eq!(raw_exchange(f.addr(), request.as_bytes()), "");
    // The worker goes on, with its other connections.
    assert_echo(&mut ws, Message::Text("still here".into()));
    let mut other = client(f.addr());
    assert_echo(&mut other, Message::Text("and new ones".into()));
    close_normally(&mut other);
    close_normally(&mut ws);
    f.wait_connections(0, SOON);
    // on_close only for what opened.
    let events = f.log.events.lock().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(f.log.end_of(id, SOON), End::Clean);
}

/// A message of 1 MiB whose payload starts with `prefix`: large enough to
/// be read straight into its buffer (the direct-read path), not whole from
/// the worker's read buffer.
fn large(prefix: &str) -> String {
    let mut text = prefix.to_owned();
    text.push_str(&ascii(1 << 20));
    text
}

/// `n` new connections each echo one message.
fn each_echoes(addr: SocketAddr, n: usize) {
    let mut clients: Vec<_> = (0..n).map(|_| client(addr)).collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        assert_echo(ws, Message::Text(format!("still served {i}")));
    }
    for ws in &mut clients {
        close_normally(ws);
    }
}

#[test]
fn a_panic_on_a_large_message_costs_only_that_connection() {
    let f = start(test_config(), |s| s);
    let mut bystander = client(f.addr());
    let mut victim = client(f.addr());
    f.next_sender();
    let victim_id = f.next_sender().id();
    victim.send(Message::Text(large("panic"))).unwrap();
    // The victim's connection ends, without a close frame (the handler
    // never finished); the others on its worker, and on every worker, go on.
    assert!(victim.read().is_err());
    assert_eq!(f.log.end_of(victim_id, SOON), End::Io(io::ErrorKind::Other));
    assert_echo(&mut bystander, Message::Text("still here".into()));
    each_echoes(f.addr(), 100);
    assert_eq!(f.server.handle().worker_failures(), 0);
    close_normally(&mut bystander);
}

#[test]
fn the_subprotocol_is_seen_on_a_large_message() {
    let config = test_config().accept(AcceptOptions::new().subprotocols(["chat"]));
    let f = start(config, |s| s);
    let (mut ws, _) = connect_with(
        &common::url(f.addr()),
        &common::client_config().subprotocol("chat"),
    )
    .unwrap();
    ws.send(Message::Text(large("subprotocol?"))).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("chat".into()));
    close_normally(&mut ws);
}

/// One worker, so that a panic that killed it would show on the next request.
fn expect_500_then_served(config: ServerConfig, boom: &[u8]) {
    let f = start(config, |s| s.workers(1));
    let response = raw_exchange(f.addr(), boom);
    assert_eq!(status(&response), 500, "{response:?}");
    let response = raw_exchange(f.addr(), b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&response), 200, "{response:?}");
    each_echoes(f.addr(), 2);
}

fn http_ok(config: ServerConfig) -> ServerConfig {
    config.http_handler(|request| {
        if request.target == "/boom" {
            panic!("the HTTP handler panics on purpose (expected in this test)");
        }
        HttpResponse::new(200, "text/plain", "ok")
    })
}

#[test]
fn a_panicking_http_handler_costs_only_its_request() {
    expect_500_then_served(
        http_ok(test_config()),
        b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n",
    );
}

#[test]
fn a_panicking_check_upgrade_costs_only_its_request() {
    let config = http_ok(test_config()).check_upgrade(|request| {
        if request.target == "/boom" {
            panic!("check_upgrade panics on purpose (expected in this test)");
        }
        None
    });
    let addr = "127.0.0.1:1".parse().unwrap();
    let boom = common::upgrade_request(addr).replacen("GET /", "GET /boom", 1);
    expect_500_then_served(config, boom.as_bytes());
}

#[test]
fn a_panicking_origin_check_costs_only_its_request() {
    let accept = AcceptOptions::new().check_origin(|origin| {
        if origin == Some("https://boom.example") {
            panic!("the origin check panics on purpose (expected in this test)");
        }
        true
    });
    let config = http_ok(test_config()).accept(accept);
    let addr = "127.0.0.1:1".parse().unwrap();
    let boom = common::upgrade_request(addr).replacen(
        "\r\n\r\n",
        "\r\nOrigin: https://boom.example\r\n\r\n",
        1,
    );
    expect_500_then_served(config, boom.as_bytes());
}

#[test]
fn a_failed_worker_closes_its_connections_reports_them_and_serves_on() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let config = test_config().on_error(move |error, _request| {
        let _ = tx.lock().unwrap().send(error.to_string());
    });
    let f = start(config, |s| s.workers(1));
    let mut lost = client(f.addr());
    let id = f.next_sender().id();
    f.server.handle().fail_worker_for_test(0);
    // Its connection is closed, and everyone who should hear of it does.
    assert!(lost.read().is_err());
    assert_eq!(f.log.end_of(id, SOON), End::Io(io::ErrorKind::Other));
    let reported = rx.recv_timeout(SOON).expect("on_error heard of it");
    assert!(reported.contains("poll worker 0 failed"), "{reported}");
    assert_eq!(f.server.handle().worker_failures(), 1);
    f.wait_connections(0, SOON);
    // The worker serves on: new connections are answered.
    each_echoes(f.addr(), 10);
}

// ---------------------------------------------------------------------------
// Timers.

/// A ping after 200 ms of silence, given 300 ms to be answered.
fn keepalive_config() -> ServerConfig {
    test_config().keepalive(Some(Keepalive {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(300),
    }))
}

#[test]
fn keepalive_pings_an_idle_peer_and_closes_1011_without_a_pong() {
    let _serial = serial();
    let f = start(keepalive_config(), |s| s);
    let mut s = handshake(f.addr());
    let id = f.next_sender().id();
    let start = Instant::now();
    let ping = read_frame(&mut s).unwrap();
    assert_eq!(ping.opcode, PING);
    let pinged = start.elapsed();
    assert!(
        pinged >= Duration::from_millis(150) && pinged < Duration::from_secs(2),
        "ping after {pinged:?}"
    );
    // No pong.
    assert_eq!(read_close(&mut s), Some(1011));
    let closed = start.elapsed();
    assert!(
        closed >= pinged + Duration::from_millis(250) && closed < Duration::from_secs(4),
        "pinged after {pinged:?}, closed after {closed:?}"
    );
    s.write_all(&frame(FIN | CLOSE, &1011u16.to_be_bytes()))
        .unwrap();
    expect_eof(&mut s);
    assert_eq!(f.log.end_of(id, SOON), End::Timeout(Timeout::Keepalive));
}

#[test]
fn keepalive_pong_keeps_an_idle_peer_open() {
    let _serial = serial();
    let f = start(keepalive_config(), |s| s);
    // The crate's client answers pings as it reads.
    let mut ws = client(f.addr());
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        match ws.read() {
            Ok(Message::Ping(_)) => pings += 1,
            other => panic!("expected pings only, got {other:?}"),
        }
    }
    assert!(pings >= 3, "{pings} pings in 1.5 s");
    assert_eq!(f.server.handle().connections(), 1);
    close_normally(&mut ws);
}

#[test]
fn idle_timeout_closes_a_silent_peer_1001() {
    let _serial = serial();
    let config = test_config().idle_timeout(Some(Duration::from_millis(300)));
    let f = start(config, |s| s);
    let mut ws = client(f.addr());
    let id = f.next_sender().id();
    let start = Instant::now();
    match ws.read().unwrap() {
        Message::Close(Some(close)) => assert_eq!(close.code, CloseCode::GOING_AWAY),
        other => panic!("expected close 1001, got {other:?}"),
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    assert_eq!(f.log.end_of(id, SOON), End::Timeout(Timeout::Idle));
}

#[test]
fn close_timeout_drops_a_peer_that_never_answers_the_close() {
    let _serial = serial();
    let config = test_config().close_timeout(Duration::from_millis(400));
    let f = start(config, |s| s);
    let mut s = handshake(f.addr());
    let id = f.next_sender().id();
    s.write_all(&frame(FIN | TEXT, b"close please")).unwrap();
    assert_eq!(read_close(&mut s), Some(1000));
    let start = Instant::now();
    expect_eof(&mut s);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "TCP closed {took:?} after the close frame"
    );
    assert_eq!(f.log.end_of(id, SOON), End::Timeout(Timeout::Close));
    f.wait_connections(0, SOON);
}

// ---------------------------------------------------------------------------
// Shutdown.

#[test]
fn shutdown_sends_1001_to_every_client_and_serve_returns() {
    let _serial = serial();
    const CLIENTS: usize = 6;
    let (handler, log, _senders) = echo_handler();
    let server = PollServer::bind("127.0.0.1:0", test_config())
        .unwrap()
        .workers(2);
    let (addr, handle) = (server.local_addr(), server.handle());
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || done_tx.send(server.serve(handler)));
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| client(addr)).collect();
    for ws in &mut clients {
        assert_echo(ws, Message::Text("hi".into()));
    }
    let start = Instant::now();
    handle.shutdown();
    for ws in &mut clients {
        match ws.read().unwrap() {
            Message::Close(Some(close)) => assert_eq!(close.code, CloseCode::GOING_AWAY),
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
    let served = done
        .recv_timeout(Duration::from_secs(5))
        .expect("serve returned");
    assert!(served.is_ok(), "{served:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "serve returned after {:?}",
        start.elapsed()
    );
    log.wait(SOON, "every on_close", |events| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Close(..)))
            .count()
            == CLIENTS
    });
    assert_eq!(handle.connections(), 0);
    // Nobody listens any more.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

// ---------------------------------------------------------------------------
// The HTTP hooks.

#[test]
fn http_handler_and_check_upgrade_answer_before_the_handshake() {
    let config = test_config()
        .http_handler(|request| {
            HttpResponse::new(200, "text/plain", format!("{}\n", request.target))
        })
        .check_upgrade(|request| (request.target != "/ws").then(HttpResponse::not_found));
    let f = start(config, |s| s);
    let response = raw_exchange(f.addr(), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&response), 200);
    assert!(response.ends_with("\r\n\r\n/health\n"), "{response:?}");

    let upgrade = common::upgrade_request(f.addr());
    let response = raw_exchange(f.addr(), upgrade.as_bytes());
    assert_eq!(status(&response), 404);

    let mut ws = connect_with(&format!("ws://{}/ws", f.addr()), &common::client_config())
        .unwrap()
        .0;
    assert_echo(&mut ws, Message::Text("upgraded".into()));
    close_normally(&mut ws);
}

#[test]
fn conn_knows_the_subprotocol_in_every_callback() {
    let config = test_config().accept(AcceptOptions::new().subprotocols(["chat"]));
    let f = start(config, |s| s);
    let (mut ws, response) = connect_with(
        &common::url(f.addr()),
        &common::client_config().subprotocol("chat"),
    )
    .unwrap();
    assert_eq!(response.headers.get("sec-websocket-protocol"), Some("chat"));
    ws.send(Message::Text("subprotocol?".into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("chat".into()));
    close_normally(&mut ws);
}

#[test]
fn on_error_hook_hears_how_a_connection_failed() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let config = test_config().on_error(move |error, request| {
        let _ = tx
            .lock()
            .unwrap()
            .send((End::from(error), request.target.clone()));
    });
    let f = start(config, |s| s);
    // A clean close is not an error.
    let mut ws = client(f.addr());
    close_normally(&mut ws);
    // A protocol error is.
    let mut s = handshake(f.addr());
    s.write_all(&frame(FIN | 0x3, b"reserved opcode")).unwrap();
    assert_eq!(read_close(&mut s), Some(1002));
    let (end, target) = rx.recv_timeout(SOON).expect("on_error called");
    assert_eq!((end, target.as_str()), (End::Protocol(1002), "/chat"));
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

// ---------------------------------------------------------------------------
// Many connections.

#[test]
fn two_thousand_connections_on_two_workers_each_echo_once() {
    let _serial = serial();
    const N: usize = 2000;
    let f = start(test_config(), |s| s);
    let mut clients: Vec<_> = (0..N).map(|_| handshake(f.addr())).collect();
    f.wait_connections(N, Duration::from_secs(10));
    for (i, s) in clients.iter_mut().enumerate() {
        s.write_all(&frame(FIN | TEXT, i.to_string().as_bytes()))
            .unwrap();
    }
    for (i, s) in clients.iter_mut().enumerate() {
        let echo = read_frame(s).unwrap();
        assert_eq!(
            (echo.opcode, echo.payload),
            (TEXT, i.to_string().into_bytes())
        );
    }
    drop(clients);
    f.wait_connections(0, Duration::from_secs(10));
    let events = f
        .log
        .wait(SOON, "every on_close", |events| events.len() == 2 * N);
    assert!(events
        .iter()
        .all(|e| !matches!(e, Event::Close(_, End::Clean | End::Other(_)))));
}

/// Regression: a worker that slept in its poll longer than the handshake
/// timeout (no timer due) dated a new connection's handshake deadline from
/// before it slept, and answered 408 before reading the request.
#[test]
fn a_worker_idle_longer_than_the_handshake_timeout_still_reads_the_request() {
    let config = test_config()
        .keepalive(None)
        .handshake_timeout(Duration::from_millis(300));
    let f = start(config, |s| s.workers(1));
    // No connection, no timer: the worker waits in its poll meanwhile.
    thread::sleep(Duration::from_millis(900));
    // A peer that takes a moment to send its request, well within the timeout.
    let mut stream = common::raw(f.addr());
    thread::sleep(Duration::from_millis(100));
    stream
        .write_all(common::upgrade_request(f.addr()).as_bytes())
        .unwrap();
    let mut head = [0u8; 12];
    io::Read::read_exact(&mut stream, &mut head).unwrap();
    assert_eq!(
        &head,
        b"HTTP/1.1 101",
        "{:?}",
        String::from_utf8_lossy(&head)
    );
}
