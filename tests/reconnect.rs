//! The reconnecting client (`rfc6455::reconnect`) against servers that go
//! away and come back: killed with SIGKILL and restarted on the same port,
//! shut down gracefully (close 1001), answering 503 and 429 with
//! `Retry-After` for a while, and one that refuses with 403 for good.
//! Each test counts the connections, the resubscriptions (`on_open`) and
//! what each connection received.

use rfc6455::protocol::MessageRef;
use rfc6455::reconnect::{
    Backoff, Disconnect, End, Ended, Handler, Next, ReconnectingClient, Sent, Session, Unsent,
};
use rfc6455::{ClientConfig, Error, HttpResponse, Message, RunningServer, Server, ServerConfig};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

/// How long any one expected event may take on a loaded machine.
const WAIT: Duration = Duration::from_secs(20);

/// What the client told its handler, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Open(u64),
    Text(u64, String),
    Error(String),
    Closed(u64, Option<u16>),
    Plan(Next),
}

/// Records everything, and resubscribes on every connection: `on_open`
/// sends `subscribe N`, which an echo server sends back first.
struct Recorder {
    seen: Sender<Seen>,
}

impl Handler for Recorder {
    fn on_open(&mut self, session: &Session<'_>) {
        let n = session.connection();
        let _ = self.seen.send(Seen::Open(n));
        session
            .send(Message::Text(format!("subscribe {n}")))
            .unwrap();
    }
    fn on_message(&mut self, session: &Session<'_>, message: MessageRef<'_>) {
        if let MessageRef::Text(text) = message {
            let _ = self
                .seen
                .send(Seen::Text(session.connection(), text.to_owned()));
        }
    }
    fn on_error(&mut self, error: &Error) {
        let _ = self.seen.send(Seen::Error(error.to_string()));
    }
    fn on_close(&mut self, ended: &Ended) {
        let code = ended.close.as_ref().map(|f| f.code.0);
        let _ = self.seen.send(Seen::Closed(ended.connection, code));
    }
    fn retry(&mut self, _why: Disconnect<'_>, _attempt: u32, planned: Next) -> Next {
        let _ = self.seen.send(Seen::Plan(planned));
        planned
    }
}

/// The events so far, and a way to wait for the next one that matters.
struct Log {
    rx: Receiver<Seen>,
    all: Vec<Seen>,
}

impl Log {
    /// Waits (bounded) for an event `want` accepts; keeps every event.
    fn until(&mut self, what: &str, want: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(seen) => {
                    self.all.push(seen.clone());
                    if want(&seen) {
                        return seen;
                    }
                }
                Err(_) => panic!("no {what} within {WAIT:?}; seen: {:?}", self.all),
            }
        }
    }

    /// Collects what is left once the client has ended.
    fn rest(&mut self) {
        self.all.extend(self.rx.try_iter());
    }

    /// The text each connection received, by connection number.
    fn received(&self) -> BTreeMap<u64, Vec<String>> {
        let mut by = BTreeMap::<u64, Vec<String>>::new();
        for seen in &self.all {
            if let Seen::Text(n, text) = seen {
                by.entry(*n).or_default().push(text.clone());
            }
        }
        by
    }

    fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.all.iter().filter(|s| f(s)).count()
    }
}

/// A quick backoff, so the tests do not wait: 50 ms doubling to 0.5 s.
fn quick() -> Backoff {
    Backoff::default()
        .initial(Duration::from_millis(50))
        .max(Duration::from_millis(500))
}

/// A client of `url` running on its own thread, and its log.
fn client(url: &str, backoff: Backoff) -> (rfc6455::reconnect::Running, Log) {
    let config = ClientConfig::default().connect_timeout(Duration::from_secs(5));
    let (tx, rx) = mpsc::channel();
    let running = ReconnectingClient::new(url, config)
        .unwrap()
        .backoff(backoff)
        .spawn(Recorder { seen: tx })
        .unwrap();
    let log = Log {
        rx,
        all: Vec::new(),
    };
    (running, log)
}

fn text(s: &str) -> Message {
    Message::Text(s.to_owned())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// `wsecho` as a child process (so that it can be SIGKILLed), killed when
/// dropped.
struct Wsecho(Child);

impl Drop for Wsecho {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wsecho --listen ADDR` and returns it with its address (trying
/// again for a while if the port is briefly taken, as `echo_server`).
fn wsecho(addr: &str) -> (Wsecho, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsecho"))
            .args(["--listen", addr, "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let child = Wsecho(child);
        if let Some(url) = first.trim().strip_prefix("wsecho: listening on ws://") {
            return (child, url.trim_end_matches('/').to_owned());
        }
        if !first.contains("Address already in use") || Instant::now() > deadline {
            panic!("unexpected first line {first:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reconnects_after_the_server_is_killed_and_restarted_on_the_same_port() {
    let (server, addr) = wsecho("127.0.0.1:0");
    let (running, mut log) = client(&format!("ws://{addr}/"), quick());
    let handle = running.handle().clone();
    log.until("the first subscription's echo", |s| {
        *s == Seen::Text(1, "subscribe 1".into())
    });
    assert_eq!(handle.send(text("one")), Ok(Sent::Written));
    log.until("the echo of one", |s| *s == Seen::Text(1, "one".into()));

    // SIGKILL: no close frame, the TCP connection just ends.
    drop(server);
    log.until("the end of connection 1", |s| {
        matches!(s, Seen::Closed(1, _))
    });
    // Once the client knows, what is sent waits for the next connection.
    assert_eq!(handle.send(text("while down")), Ok(Sent::Queued));
    assert_eq!(handle.queued(), 1);
    log.until("a refused attempt", |s| matches!(s, Seen::Error(_)));

    let (_server, again) = wsecho(&addr);
    assert_eq!(again, addr);
    log.until("the second subscription's echo", |s| {
        *s == Seen::Text(2, "subscribe 2".into())
    });
    log.until("the queued message's echo", |s| {
        *s == Seen::Text(2, "while down".into())
    });
    assert!(handle.wait_flushed(WAIT));
    handle.stop();
    let outcome = running.join().unwrap();
    log.rest();

    assert!(
        matches!(outcome.end, End::Stopped { clean: true }),
        "{outcome:?}"
    );
    assert_eq!(outcome.connections, 2);
    assert!(outcome.unsent.is_empty());
    // Connection 1 ended without a close frame, and was retried.
    assert_eq!(log.count(|s| *s == Seen::Closed(1, None)), 1);
    assert_eq!(
        log.count(|s| matches!(s, Seen::Open(_))),
        2,
        "{:?}",
        log.all
    );
    let received = log.received();
    assert_eq!(received[&1], strings(&["subscribe 1", "one"]));
    // The resubscription went out before what was queued.
    assert_eq!(received[&2], strings(&["subscribe 2", "while down"]));
}

/// An echo server on `addr`. A port freed a moment ago may meanwhile be
/// some other test's client's ephemeral port, briefly: binding is retried
/// for a while before the test gives up.
fn echo_server(addr: &str) -> RunningServer {
    let deadline = Instant::now() + WAIT;
    let server = loop {
        match Server::bind(addr, common::test_config()) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            bound => break bound.unwrap(),
        }
    };
    server.spawn(|ws, _request| common::echo(ws)).unwrap()
}

#[test]
fn reconnects_after_a_graceful_1001_shutdown() {
    let first = echo_server("127.0.0.1:0");
    let addr = first.local_addr().to_string();
    let (running, mut log) = client(&format!("ws://{addr}/"), quick());
    let handle = running.handle().clone();
    log.until("the first subscription's echo", |s| {
        *s == Seen::Text(1, "subscribe 1".into())
    });
    first.shutdown().unwrap();
    log.until("close 1001", |s| *s == Seen::Closed(1, Some(1001)));
    let plan = log.until("the plan", |s| matches!(s, Seen::Plan(_)));
    assert!(matches!(plan, Seen::Plan(Next::Retry(_))), "{plan:?}");

    let second = echo_server(&addr);
    log.until("the second subscription's echo", |s| {
        *s == Seen::Text(2, "subscribe 2".into())
    });
    assert_eq!(handle.send(text("two")), Ok(Sent::Written));
    log.until("the echo of two", |s| *s == Seen::Text(2, "two".into()));
    handle.stop();
    let outcome = running.join().unwrap();
    log.rest();
    second.shutdown().unwrap();

    assert!(
        matches!(outcome.end, End::Stopped { clean: true }),
        "{outcome:?}"
    );
    assert_eq!(outcome.connections, 2);
    assert_eq!(log.count(|s| matches!(s, Seen::Open(_))), 2);
    let received = log.received();
    assert_eq!(received[&1], strings(&["subscribe 1"]));
    assert_eq!(received[&2], strings(&["subscribe 2", "two"]));
}

/// An echo server whose upgrade check answers the first requests with the
/// given responses, then accepts; it records when each request came.
fn refusing_server(refusals: Vec<HttpResponse>) -> (RunningServer, Arc<Mutex<Vec<Instant>>>) {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let n = AtomicUsize::new(0);
    let config = common::test_config().check_upgrade(move |_request| {
        seen.lock().unwrap().push(Instant::now());
        refusals.get(n.fetch_add(1, Ordering::SeqCst)).cloned()
    });
    (common::echo_server_with(config), requests)
}

fn with_header(mut response: HttpResponse, name: &str, value: &str) -> HttpResponse {
    response.headers.push((name.into(), value.into()));
    response
}

#[test]
fn retries_through_503_until_the_server_accepts() {
    let busy = HttpResponse::new(503, "text/plain", "starting up\n");
    let (server, requests) = refusing_server(vec![busy.clone(), busy]);
    let url = format!("ws://{}/", server.local_addr());
    let (running, mut log) = client(&url, quick());
    log.until("the subscription's echo", |s| {
        *s == Seen::Text(1, "subscribe 1".into())
    });
    running.handle().stop();
    let outcome = running.join().unwrap();
    log.rest();
    server.shutdown().unwrap();

    assert_eq!(requests.lock().unwrap().len(), 3);
    assert_eq!(outcome.connections, 1);
    let refused: Vec<&Seen> = log
        .all
        .iter()
        .filter(|s| matches!(s, Seen::Error(_)))
        .collect();
    assert_eq!(refused.len(), 2, "{:?}", log.all);
    for error in refused {
        let Seen::Error(text) = error else {
            unreachable!()
        };
        // Plain words, with the server's own explanation.
        assert!(
            text.contains("503") && text.contains("starting up"),
            "{text}"
        );
    }
    assert_eq!(
        log.count(|s| matches!(s, Seen::Plan(Next::Retry(_)))),
        2,
        "{:?}",
        log.all
    );
    assert_eq!(log.received()[&1], strings(&["subscribe 1"]));
}

#[test]
fn a_429_with_retry_after_is_honoured() {
    let slow_down = with_header(
        HttpResponse::new(429, "text/plain", "slow down\n"),
        "Retry-After",
        "2",
    );
    let (server, requests) = refusing_server(vec![slow_down]);
    let url = format!("ws://{}/", server.local_addr());
    // Without Retry-After the next attempt would come after 50 ms at most.
    let (running, mut log) = client(&url, quick());
    let plan = log.until("the plan after the 429", |s| matches!(s, Seen::Plan(_)));
    match plan {
        Seen::Plan(Next::Retry(wait)) => assert!(wait >= Duration::from_secs(2), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    log.until("the subscription's echo", |s| {
        *s == Seen::Text(1, "subscribe 1".into())
    });
    running.handle().stop();
    let outcome = running.join().unwrap();
    server.shutdown().unwrap();

    let times = requests.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_secs(2), "came back after {gap:?}");
    assert_eq!(outcome.connections, 1);
}

#[test]
fn a_403_is_final() {
    let no = HttpResponse::new(403, "text/plain", "no entry for you\n");
    let (server, requests) = refusing_server(vec![no; 5]);
    let url = format!("ws://{}/", server.local_addr());
    let (running, mut log) = client(&url, quick());
    let outcome = running.join().unwrap();
    log.rest();
    server.shutdown().unwrap();

    assert_eq!(requests.lock().unwrap().len(), 1, "retried a 403");
    assert_eq!(outcome.connections, 0);
    match &outcome.end {
        End::Failed(Error::Refused(refusal)) => {
            assert_eq!(refusal.status(), 403);
            assert_eq!(refusal.body_text().as_deref(), Some("no entry for you"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log.count(|s| *s == Seen::Plan(Next::Stop)), 1);
    assert_eq!(log.count(|s| matches!(s, Seen::Open(_))), 0);
}

#[test]
fn a_close_1000_from_the_server_is_final() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(|mut ws, _| {
            ws.read()?; // the subscription
            ws.close(1000, "done")?;
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    let (running, mut log) = client(&format!("ws://{}/", server.local_addr()), quick());
    let outcome = running.join().unwrap();
    log.rest();
    server.shutdown().unwrap();
    match &outcome.end {
        End::Closed(ended) => {
            assert!(ended.clean());
            assert_eq!(ended.close.as_ref().map(|f| f.code.0), Some(1000));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(outcome.connections, 1);
}

/// A port with nothing listening on it.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("ws://{}/", listener.local_addr().unwrap())
}

#[test]
fn stop_ends_a_backoff_wait_at_once() {
    let long = Backoff::default()
        .initial(Duration::from_secs(60))
        .max(Duration::from_secs(60))
        .jitter(0.0);
    let (running, mut log) = client(&closed_port(), long);
    let plan = log.until("the plan", |s| matches!(s, Seen::Plan(_)));
    assert_eq!(plan, Seen::Plan(Next::Retry(Duration::from_secs(60))));
    let asked = Instant::now();
    running.handle().stop();
    let outcome = running.join().unwrap();
    let took = asked.elapsed();
    // 60 s had it slept on; generous for a loaded machine.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        matches!(outcome.end, End::Stopped { clean: false }),
        "{outcome:?}"
    );
    assert_eq!(outcome.connections, 0);
}

#[test]
fn sends_while_disconnected_are_queued_within_bounds_then_given_back() {
    let config = ClientConfig::default().connect_timeout(Duration::from_secs(5));
    let client = ReconnectingClient::new(closed_port(), config)
        .unwrap()
        .backoff(Backoff::default().initial(Duration::from_secs(60)))
        .queue_limit(2, 8);
    let handle = client.handle();
    assert_eq!(handle.send(text("a")), Ok(Sent::Queued));
    // 8 bytes in all: "a" and "bcdefgh" fit, then the count is full.
    assert_eq!(
        handle.send(text("bcdefghi")),
        Err(Unsent::Full(text("bcdefghi")))
    );
    assert_eq!(handle.send(text("bcdefgh")), Ok(Sent::Queued));
    assert_eq!(handle.send(text("c")), Err(Unsent::Full(text("c"))));
    // Pings are about a live connection; close frames go through close().
    let ping = Message::Ping(b"?".to_vec());
    assert_eq!(handle.send(ping.clone()), Err(Unsent::NotConnected(ping)));
    let close = Message::Close(None);
    assert_eq!(handle.send(close.clone()), Err(Unsent::Invalid(close)));
    assert!(handle.close(1005, "").is_err(), "1005 is not for the wire");
    assert!(!handle.is_stopped());

    let (tx, _rx) = mpsc::channel();
    let running = client.spawn(Recorder { seen: tx }).unwrap();
    handle.stop();
    assert_eq!(
        handle.send(text("late")),
        Err(Unsent::Stopped(text("late")))
    );
    let outcome = running.join().unwrap();
    assert_eq!(outcome.unsent, [text("a"), text("bcdefgh")]);
    assert_eq!(outcome.connections, 0);
}

#[test]
fn a_malformed_url_fails_at_once() {
    let err = ReconnectingClient::new("http://example.com/", ClientConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Url(_)), "{err}");
}
