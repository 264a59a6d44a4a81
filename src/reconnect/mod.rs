//! A client that reconnects: callbacks in the shape of Python
//! `websocket-client`'s `WebSocketApp(on_open=…, on_message=…, on_error=…,
//! on_close=…).run_forever(reconnect=…)`, on std threads.
//!
//! ```no_run
//! use rfc6455::protocol::MessageRef;
//! use rfc6455::reconnect::{Handler, ReconnectingClient, Session};
//! use rfc6455::{ClientConfig, Message};
//!
//! struct Ticker;
//!
//! impl Handler for Ticker {
//!     // After every (re)connect, before anything queued goes out.
//!     fn on_open(&mut self, session: &Session<'_>) {
//!         let _ = session.send(Message::text(r#"{"subscribe": "ticker"}"#));
//!     }
//!     fn on_message(&mut self, _session: &Session<'_>, message: MessageRef<'_>) {
//!         println!("{message:?}");
//!     }
//! }
//!
//! let client = ReconnectingClient::new("ws://127.0.0.1:9001/", ClientConfig::default())?;
//! let handle = client.handle(); // send and stop from any thread
//! std::thread::spawn(move || {
//!     let _ = handle.send(Message::text("hello")); // queued while disconnected
//! });
//! let outcome = client.run(&mut Ticker); // callbacks run on this thread
//! println!("{:?}; {} message(s) never sent", outcome.end, outcome.unsent.len());
//! # Ok::<(), rfc6455::Error>(())
//! ```
//!
//! What it does, precisely:
//!
//! - **When it comes back.** After a connect attempt that failed with an
//!   I/O error (refused, reset, timed out, no such host), a TLS handshake
//!   cut or timed out, or a refusal with 5xx or 429; and after a connection
//!   that ended without a close frame (TCP dropped, the keepalive timed
//!   out) or with close code 1001, 1011, 1012, 1013 or 1014. Not after any
//!   other refusal (400, 401, 403, 404…), an untrusted certificate, a close
//!   1000 or a code that blames the client: those end [`run`](ReconnectingClient::run).
//!   [`is_retryable`] and [`is_retryable_close`] are the rule;
//!   [`Handler::retry`] can change any decision.
//! - **How soon.** [`Backoff`]: 0.5 s doubling to 30 s, each wait scaled by
//!   a random factor in [0.5, 1]; the count starts again once a connection
//!   stayed up 10 s. A refusal with `Retry-After` (seconds or an HTTP date)
//!   waits at least that long, up to 5 minutes.
//! - **Resubscribing.** [`Handler::on_open`] runs after every connect,
//!   before any queued message: send subscriptions there with
//!   [`Session::send`], which writes on the new connection at once.
//! - **Sends while disconnected.** [`Handle::send`] writes on the open
//!   connection, or, while there is none, queues text and binary messages
//!   up to a bound (1,000 messages and 1 MiB by default,
//!   [`queue_limit`](ReconnectingClient::queue_limit)) and sends them, in
//!   order, on the next connection after `on_open`. Beyond the bound it
//!   refuses with [`Unsent::Full`], giving the message back; pings and pongs
//!   are never queued ([`Unsent::NotConnected`]). A message is written on at
//!   most one connection; one that a connection took but the server never
//!   read is lost with it (WebSocket has no acknowledgements: resume at the
//!   application level). What was still queued when the client stops comes
//!   back in [`Outcome::unsent`].
//! - **Threads.** Callbacks run one at a time on the thread that called
//!   [`run`](ReconnectingClient::run) (or the one
//!   [`spawn`](ReconnectingClient::spawn) started), which also reads; a
//!   callback that blocks holds up reading. [`Handle`]s work from any
//!   thread, callbacks included.
//! - **Stopping.** [`Handle::close`] sends a close frame on the open
//!   connection and `run` returns once the close handshake is done (bounded
//!   by the close timeout); during a backoff wait it returns at once; during
//!   a connect attempt, once the attempt ends (bounded by the connect
//!   timeout), closing the new connection if it opened.

mod handler;
mod policy;
mod queue;

pub use handler::{Disconnect, End, Ended, Handler, Next, Outcome, Session};
pub use policy::{is_retryable, is_retryable_close, retry_after, Backoff};
pub use queue::{Handle, Sent, Unsent};

use crate::client::{connect_with, ClientConfig, WsUrl};
use crate::error::{Error, Result};
use crate::frame::{CloseCode, CloseFrame};
use crate::protocol::{MessageRef, Piece};
use crate::transport::Stream;
use crate::websocket::Reader;
use queue::Shared;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The client, before it runs. See the [module](self) for what it does.
#[derive(Debug)]
pub struct ReconnectingClient {
    url: String,
    config: ClientConfig,
    backoff: Backoff,
    shared: Arc<Shared>,
}

impl ReconnectingClient {
    /// A client of `url` (`ws://` or `wss://`) with `config` for every
    /// connection (its `connect_timeout` bounds each attempt). A malformed
    /// URL is an error now, not an attempt later.
    pub fn new(url: impl Into<String>, config: ClientConfig) -> Result<ReconnectingClient> {
        let url = url.into();
        WsUrl::parse(&url)?;
        Ok(ReconnectingClient {
            url,
            config,
            backoff: Backoff::default(),
            shared: Arc::new(Shared::default()),
        })
    }

    /// Sets the [`Backoff`].
    pub fn backoff(mut self, backoff: Backoff) -> ReconnectingClient {
        self.backoff = backoff;
        self
    }

    /// Bounds what [`Handle::send`] queues while disconnected: at most
    /// `messages` messages holding at most `bytes` payload bytes in all
    /// (default 1,000 and 1 MiB). `0` messages turns queueing off: sends
    /// while disconnected are refused with [`Unsent::NotConnected`].
    pub fn queue_limit(self, messages: usize, bytes: usize) -> ReconnectingClient {
        self.shared.set_limit(messages, bytes);
        self
    }

    /// A handle to send and stop with, from any thread.
    pub fn handle(&self) -> Handle {
        Handle::new(Arc::clone(&self.shared))
    }

    /// Connects, calls `handler` for everything that happens, reconnects as
    /// the rule (and the handler) says, and returns when it stops. Blocks
    /// the calling thread, which runs every callback.
    pub fn run(self, handler: &mut impl Handler) -> Outcome {
        let handle = self.handle();
        let mut connections = 0;
        let mut attempt = 0u32;
        let end = loop {
            if self.shared.stopping() {
                break End::Stopped { clean: false };
            }
            // A socket that cannot be split (no second handle) is a failed
            // attempt like any other I/O error.
            let connected = connect_with(&self.url, &self.config)
                .and_then(|(ws, response)| Ok((ws.split()?, response)));
            let ((reader, writer), response) = match connected {
                Ok(connected) => connected,
                Err(error) => {
                    handler.on_error(&error);
                    attempt = attempt.saturating_add(1);
                    let planned = self.plan_after_failure(&error, attempt);
                    if self.shared.stopping() {
                        break End::Stopped { clean: false };
                    }
                    match handler.retry(Disconnect::ConnectFailed(&error), attempt, planned) {
                        Next::Retry(wait) if self.shared.sleep(wait) => continue,
                        Next::Retry(_) => break End::Stopped { clean: false },
                        Next::Stop => break End::Failed(error),
                    }
                }
            };
            connections += 1;
            let session = Session::new(&writer, &response, &handle, connections);
            let ended = self.converse(handler, reader, &session);
            if let Some(error) = &ended.error {
                handler.on_error(error);
            }
            handler.on_close(&ended);
            if self.shared.stopping() {
                break End::Stopped {
                    clean: ended.clean(),
                };
            }
            if ended.up_for >= self.backoff.reset_after {
                attempt = 0;
            }
            attempt = attempt.saturating_add(1);
            let planned = if ended.retryable() {
                Next::Retry(self.backoff.delay(attempt - 1))
            } else {
                Next::Stop
            };
            match handler.retry(Disconnect::Ended(&ended), attempt, planned) {
                Next::Retry(wait) if self.shared.sleep(wait) => {}
                Next::Retry(_) => {
                    break End::Stopped {
                        clean: ended.clean(),
                    }
                }
                Next::Stop => break End::Closed(ended),
            }
        };
        let unsent = self.shared.finish();
        Outcome {
            end,
            unsent,
            connections,
        }
    }

    /// [`run`](ReconnectingClient::run) on a thread of its own, which runs
    /// the callbacks.
    pub fn spawn<H: Handler + Send + 'static>(self, mut handler: H) -> std::io::Result<Running> {
        let handle = self.handle();
        let thread = std::thread::Builder::new()
            .name("rfc6455-reconnect".into())
            .spawn(move || self.run(&mut handler))?;
        Ok(Running { handle, thread })
    }

    /// The plan after failed attempt number `attempt`: the backoff, or
    /// what `Retry-After` asks if longer; stop if retrying cannot help.
    fn plan_after_failure(&self, error: &Error, attempt: u32) -> Next {
        if !is_retryable(error) {
            return Next::Stop;
        }
        let wait = self.backoff.delay(attempt - 1);
        let asked = match error {
            Error::Refused(refusal) => retry_after(refusal),
            _ => None,
        };
        let asked = asked.map_or(Duration::ZERO, |t| t.min(self.backoff.max_retry_after));
        Next::Retry(wait.max(asked))
    }

    /// One open connection, from `on_open` to its end.
    fn converse(
        &self,
        handler: &mut impl Handler,
        mut reader: Reader<Stream>,
        session: &Session<'_>,
    ) -> Ended {
        let opened = Instant::now();
        // Published first, so that a close() from now on reaches it.
        match self.shared.publish(session.writer()) {
            Some(stop) => {
                let _ = session.writer().close(stop.code, &stop.reason);
            }
            None => {
                handler.on_open(session);
                self.shared.flush(session.writer());
            }
        }
        let streaming = handler.streaming();
        let mut close = None;
        let error = loop {
            match reader.read_piece(streaming) {
                Ok(Piece::Message(MessageRef::Close(frame))) => {
                    close = Some(frame.unwrap_or(CloseFrame::new(CloseCode::NO_STATUS)));
                }
                Ok(Piece::Message(MessageRef::Ping(payload))) => handler.on_ping(session, payload),
                Ok(Piece::Message(MessageRef::Pong(payload))) => handler.on_pong(session, payload),
                Ok(Piece::Message(message)) => handler.on_message(session, message),
                Ok(piece) => handler.on_piece(session, piece),
                Err(Error::ConnectionClosed) => break None,
                Err(e) => break Some(e),
            }
        };
        self.shared.unpublish();
        Ended {
            connection: session.connection(),
            close,
            error,
            up_for: opened.elapsed(),
        }
    }
}

/// A client [`spawn`](ReconnectingClient::spawn)ed on its own thread.
#[derive(Debug)]
pub struct Running {
    handle: Handle,
    thread: std::thread::JoinHandle<Outcome>,
}

impl Running {
    /// The client's handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Waits for the client to end. `Err` if a callback panicked.
    pub fn join(self) -> std::thread::Result<Outcome> {
        self.thread.join()
    }
}
