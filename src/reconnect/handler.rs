//! What the application implements, and what it is told: the callbacks,
//! the open connection as they see it, how a connection ended, how the run
//! ended.

use super::{is_retryable_close, Handle};
use crate::error::{Error, Result};
use crate::frame::CloseFrame;
use crate::handshake::Response;
use crate::protocol::{Message, MessageRef, Piece, Streaming};
use crate::transport::Stream;
use crate::websocket::Writer;
use std::time::Duration;

/// What an application implements; every method has a default that does
/// nothing (or, for [`retry`](Handler::retry), follows the plan).
pub trait Handler {
    /// A connection opened (the first or a new one): resubscribe here.
    /// Runs before the messages queued while disconnected go out.
    fn on_open(&mut self, _session: &Session<'_>) {}
    /// A text or binary message arrived (whole, unless
    /// [`streaming`](Handler::streaming) says otherwise), borrowed from the
    /// read buffer: `message.to_message()` keeps it.
    fn on_message(&mut self, _session: &Session<'_>, _message: MessageRef<'_>) {}
    /// Which data messages come in pieces, as they arrive, to
    /// [`on_piece`](Handler::on_piece) instead of whole (a file larger than
    /// memory). Asked once per connection. Default: none.
    fn streaming(&self) -> Streaming {
        Streaming::Never
    }
    /// A piece of a streamed message: `Start`, `Data`… then `End`.
    fn on_piece(&mut self, _session: &Session<'_>, _piece: Piece<'_>) {}
    /// A ping arrived (the pong went out already).
    fn on_ping(&mut self, _session: &Session<'_>, _payload: &[u8]) {}
    /// A pong arrived.
    fn on_pong(&mut self, _session: &Session<'_>, _payload: &[u8]) {}
    /// A connect attempt failed, or an open connection broke (then
    /// [`on_close`](Handler::on_close) follows).
    fn on_error(&mut self, _error: &Error) {}
    /// An open connection ended, cleanly or not.
    fn on_close(&mut self, _ended: &Ended) {}
    /// What to do after `why`: `planned` is the client's rule (see the
    /// module's documentation); `attempt` counts the failures since the
    /// backoff was last reset (1 for the first). Return `planned`, or
    /// another plan: [`Next::Stop`] to give up, [`Next::Retry`] to come back
    /// after a wait of your choosing. Not called once the client is stopping.
    fn retry(&mut self, _why: Disconnect<'_>, _attempt: u32, planned: Next) -> Next {
        planned
    }
}

/// What [`Handler::retry`] is asked about.
#[derive(Debug, Clone, Copy)]
pub enum Disconnect<'a> {
    /// A connect attempt failed.
    ConnectFailed(&'a Error),
    /// An open connection ended.
    Ended(&'a Ended),
}

/// What the client does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Connect again after this wait.
    Retry(Duration),
    /// Give up: [`ReconnectingClient::run`](super::ReconnectingClient::run) returns.
    Stop,
}

/// How an open connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct Ended {
    /// Which connection it was (1 for the first).
    pub connection: u64,
    /// The server's close frame, if it sent one (one without a status code
    /// shows as 1005, `CloseCode::NO_STATUS`).
    pub close: Option<CloseFrame>,
    /// How the connection failed, if it did not end with a close handshake.
    pub error: Option<Error>,
    /// How long it was open.
    pub up_for: Duration,
}

impl Ended {
    /// Whether it ended with a close handshake and no error.
    pub fn clean(&self) -> bool {
        self.error.is_none() && self.close.is_some()
    }

    /// Whether the rule says to come back: the connection broke (an I/O
    /// error, a keepalive timeout, TCP closed with no close frame), or the
    /// server closed with a code [`is_retryable_close`] accepts. Not after
    /// a protocol error (the next connection would meet it again).
    pub fn retryable(&self) -> bool {
        match (&self.error, &self.close) {
            (Some(Error::Protocol(_) | Error::InvalidSend(_)), _) => false,
            (Some(_), _) => true,
            (None, Some(frame)) => is_retryable_close(frame.code),
            (None, None) => true,
        }
    }
}

/// How [`ReconnectingClient::run`](super::ReconnectingClient::run) ended.
#[derive(Debug)]
pub enum End {
    /// [`Handle::close`] stopped it. `clean`: the close handshake of the
    /// open connection completed (false when none was open, or the server
    /// did not answer).
    Stopped {
        /// Whether a close handshake completed.
        clean: bool,
    },
    /// The last connection ended and was not retried (a close 1000, a code
    /// that blames the client, or [`Handler::retry`] said stop).
    Closed(Ended),
    /// The last connect attempt failed and was not retried (a 403, an
    /// untrusted certificate, or [`Handler::retry`] said stop).
    Failed(Error),
}

/// What [`ReconnectingClient::run`](super::ReconnectingClient::run) returns.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// Why it ended.
    pub end: End,
    /// The messages still queued, never written on any connection.
    pub unsent: Vec<Message>,
    /// How many connections opened.
    pub connections: u64,
}

/// The open connection, as callbacks see it.
#[derive(Debug)]
pub struct Session<'a> {
    writer: &'a Writer<Stream>,
    response: &'a Response,
    handle: &'a Handle,
    connection: u64,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        writer: &'a Writer<Stream>,
        response: &'a Response,
        handle: &'a Handle,
        connection: u64,
    ) -> Session<'a> {
        Session {
            writer,
            response,
            handle,
            connection,
        }
    }

    /// Sends on this connection at once, ahead of anything queued (in
    /// [`Handler::on_open`], that is how subscriptions go first).
    pub fn send(&self, message: Message) -> Result<()> {
        self.writer.send(message)
    }

    /// Sends a borrowed message on this connection at once.
    pub fn send_ref(&self, message: MessageRef<'_>) -> Result<()> {
        self.writer.send_ref(message)
    }

    /// The connection's writer: clone it to send from another thread
    /// directly on this connection (it fails once the connection ends, and
    /// is never moved to the next one; [`Handle::send`] is).
    pub fn writer(&self) -> &Writer<Stream> {
        self.writer
    }

    /// The server's handshake response (its subprotocol, extensions,
    /// cookies).
    pub fn response(&self) -> &Response {
        self.response
    }

    /// Which connection this is: 1 for the first, 2 after one reconnect…
    pub fn connection(&self) -> u64 {
        self.connection
    }

    /// The client's handle (to stop it from a callback, say).
    pub fn handle(&self) -> &Handle {
        self.handle
    }
}
