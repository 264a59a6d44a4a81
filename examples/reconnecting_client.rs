//! A client that survives server restarts, on the library's
//! `reconnect::ReconnectingClient` (callbacks in the shape of Python
//! `websocket-client`'s `WebSocketApp` and `run_forever(reconnect=…)`).
//!
//! ```text
//! cargo run --release --bin wsecho &            # something to talk to
//! cargo run --release --example reconnecting_client -- ws://127.0.0.1:9001/ --sessions 3
//! ```
//!
//! Every connection resubscribes in `on_open`; a thread of its own sends a
//! tick every second through the client's `Handle`, which queues ticks while
//! the server is away and sends them, in order, once it is back. Stop the
//! server (Ctrl-C, or `kill -9`) and start it again to watch the backoff.
//!
//! With `--sessions N`, each connection is closed after three ticks with
//! 1001 through the session's writer (which, unlike `Handle::close`, does not
//! stop the client: the server's answer reads as "going away" and the client
//! comes back), and the Nth stops the client, which prints what was never
//! sent.

use rfc6455::protocol::MessageRef;
use rfc6455::reconnect::{Disconnect, Ended, Handler, Next, ReconnectingClient, Session};
use rfc6455::{ClientConfig, CloseCode, Error, Message};
use std::time::Duration;

/// The demo application: subscribes on every connection, prints what
/// arrives, ends after `sessions` connections.
struct Ticker {
    sessions: Option<u64>,
    /// Tick echoes received, on all connections.
    ticks: u64,
}

impl Handler for Ticker {
    fn on_open(&mut self, session: &Session<'_>) {
        let n = session.connection();
        println!("[connection {n}] open");
        // Goes out before the ticks queued while disconnected.
        let _ = session.send(Message::Text(format!(
            r#"{{"subscribe": "ticks", "connection": {n}}}"#
        )));
    }

    fn on_message(&mut self, session: &Session<'_>, message: MessageRef<'_>) {
        let MessageRef::Text(text) = message else {
            return;
        };
        println!("[connection {}] {text}", session.connection());
        if !text.starts_with("tick") {
            return;
        }
        self.ticks += 1;
        match self.sessions {
            Some(last) if self.ticks % 3 == 0 && session.connection() >= last => {
                session.handle().stop()
            }
            Some(_) if self.ticks % 3 == 0 => {
                let _ = session.writer().close(CloseCode::GOING_AWAY, "demo");
            }
            _ => {}
        }
    }

    fn on_error(&mut self, error: &Error) {
        eprintln!("error: {error}");
    }

    fn on_close(&mut self, ended: &Ended) {
        match &ended.close {
            Some(frame) => println!("[connection {}] closed: {frame}", ended.connection),
            None => println!("[connection {}] dropped", ended.connection),
        }
    }

    fn retry(&mut self, _why: Disconnect<'_>, attempt: u32, planned: Next) -> Next {
        if let Next::Retry(wait) = planned {
            println!("retrying in {:.1}s (attempt {attempt})", wait.as_secs_f64());
        }
        planned
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
    let config = ClientConfig::default().connect_timeout(Duration::from_secs(5));
    let client = match ReconnectingClient::new(&url, config) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let handle = client.handle();
    std::thread::spawn(move || {
        for n in 1.. {
            // Refused only once the client stopped, or when the queue is
            // full after a long outage: the tick is dropped and said so.
            if let Err(e) = handle.send(Message::Text(format!("tick {n}"))) {
                if handle.is_stopped() {
                    return;
                }
                eprintln!("tick {n} not sent: {e}");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let outcome = client.run(&mut Ticker { sessions, ticks: 0 });
    println!(
        "ended: {:?}; {} connection(s); {} tick(s) never sent",
        outcome.end,
        outcome.connections,
        outcome.unsent.len()
    );
}
