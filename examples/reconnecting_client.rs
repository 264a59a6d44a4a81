//! A callback-style client that reconnects, the way `websocket-client`'s
//! `WebSocketApp(on_open=…, on_message=…, on_close=…, on_error=…)` and
//! `run_forever(reconnect=…)` work in Python, on std threads.
//!
//! ```text
//! cargo run --release --bin wsecho &            # something to talk to
//! cargo run --release --example reconnecting_client -- ws://127.0.0.1:9001/ --sessions 3
//! ```
//!
//! Each session sends a few messages from `on_open` and `on_message`, then
//! closes; the runner reconnects with exponential backoff and jitter until
//! `--sessions` sessions have run (or forever without it). Stop the server
//! and start it again to watch the backoff.

use rfc6455::{connect, CloseCode, CloseFrame, Error, Message, Stream, Writer};
use std::time::Duration;

/// What an application implements; every method has a default.
trait Callbacks {
    /// The handshake succeeded; `out` sends on this connection.
    fn on_open(&mut self, _out: &Writer<Stream>) {}
    /// A text or binary message arrived.
    fn on_message(&mut self, _out: &Writer<Stream>, _message: Message) {}
    /// The connection ended; `frame` is the peer's close frame, if any.
    fn on_close(&mut self, _frame: Option<CloseFrame>) {}
    /// Connecting failed or the connection broke.
    fn on_error(&mut self, _error: &Error) {}
}

/// How to retry: `initial` doubling up to `max`, each wait scaled by a
/// random factor in [0.5, 1).
struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    fn next_wait(&mut self) -> Duration {
        let wait = self
            .initial
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.max);
        self.attempt += 1;
        let mut r = [0u8; 2];
        let random = getrandom::fill(&mut r).map_or(0, |()| u16::from_le_bytes(r));
        wait.mul_f64(0.5 + f64::from(random) / f64::from(u16::MAX) / 2.0)
    }
}

/// Runs sessions against `url` until `sessions` of them have opened (or
/// forever), calling `app` for everything that happens.
fn run_forever(url: &str, app: &mut impl Callbacks, mut backoff: Backoff, sessions: Option<u32>) {
    let mut opened = 0;
    while sessions.is_none_or(|n| opened < n) {
        let ws = match connect(url) {
            Ok((ws, _response)) => ws,
            Err(e) => {
                app.on_error(&e);
                std::thread::sleep(backoff.next_wait());
                continue;
            }
        };
        backoff.attempt = 0;
        opened += 1;
        let (mut reader, writer) = match ws.split() {
            Ok(halves) => halves,
            Err(e) => {
                app.on_error(&e);
                continue;
            }
        };
        app.on_open(&writer);
        let mut close = None;
        loop {
            match reader.read() {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                    app.on_message(&writer, message)
                }
                Ok(Message::Close(frame)) => close = frame,
                Ok(_) => {} // pings are answered by the library
                Err(Error::ConnectionClosed) => break,
                Err(e) => {
                    app.on_error(&e);
                    break;
                }
            }
        }
        app.on_close(close);
        if sessions.is_none_or(|n| opened < n) {
            std::thread::sleep(backoff.next_wait());
        }
    }
}

/// The demo application: says hello, counts echoes, closes after three.
struct Greeter {
    session: u32,
    received: u32,
}

impl Callbacks for Greeter {
    fn on_open(&mut self, out: &Writer<Stream>) {
        self.session += 1;
        self.received = 0;
        println!("[session {}] open", self.session);
        let _ = out.send(Message::Text(format!(
            "hello from session {}",
            self.session
        )));
    }

    fn on_message(&mut self, out: &Writer<Stream>, message: Message) {
        self.received += 1;
        if let Message::Text(text) = &message {
            println!("[session {}] message: {text}", self.session);
        }
        if self.received < 3 {
            let _ = out.send(Message::Text(format!("message {}", self.received)));
        } else {
            let _ = out.close(CloseCode::NORMAL, "done");
        }
    }

    fn on_close(&mut self, frame: Option<CloseFrame>) {
        match frame {
            Some(f) => println!("[session {}] closed: {f}", self.session),
            None => println!("[session {}] closed without a close frame", self.session),
        }
    }

    fn on_error(&mut self, error: &Error) {
        eprintln!("[session {}] error: {error}", self.session);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut url = "ws://127.0.0.1:9001/".to_owned();
    let mut sessions = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sessions" => {
                sessions = args.next().and_then(|n| n.parse().ok());
                if sessions.is_none() {
                    eprintln!("--sessions takes a number");
                    std::process::exit(2);
                }
            }
            other => url = other.to_owned(),
        }
    }
    let backoff = Backoff {
        initial: Duration::from_millis(250),
        max: Duration::from_secs(30),
        attempt: 0,
    };
    let mut app = Greeter {
        session: 0,
        received: 0,
    };
    run_forever(&url, &mut app, backoff, sessions);
}
