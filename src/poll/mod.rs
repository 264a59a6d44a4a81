//! The poll engine (feature `mio`): a fixed number of worker threads, each
//! running its own event loop (epoll on Linux) over many connections, for
//! when a thread per connection runs out.
//!
//! Every connection goes through the same sans-I/O core as the threaded
//! [`Server`](crate::Server): the bounded head parser and
//! [`accept`](crate::handshake::server::accept) for the opening handshake, a
//! [`Connection`](crate::protocol::Connection) for frames, limits, replies
//! and its timers (keepalive, idle, close wait). The same [`ServerConfig`](crate::ServerConfig)
//! applies, hooks included (`http_handler`, `check_upgrade`, origin and
//! subprotocol checks, `on_error`), so the rules and limits are the same
//! code on both engines.
//!
//! **When to pick it.** The threaded server is the simple path: a handler is
//! straight-line code with blocking reads. This engine is for many
//! connections: an idle connection costs a few hundred bytes here against
//! 16 KiB (a thread) there, it is not capped by the number of threads a
//! process may have, and a small message costs no thread wake-up. The price
//! is the shape of the code: a [`Handler`] is called back and must never
//! block (a handler that waits holds up every connection of its worker).
//!
//! **Sending.** In a callback, [`Conn::send`] queues a reply on the
//! connection directly (a large payload goes out in one vectored write,
//! without a copy). From anywhere else (another connection, another thread)
//! use a [`Sender`], which hands the message to the connection's worker.
//! Nothing blocks on a socket: each connection's unsent output is bounded by
//! [`PollServer::max_pending`]. A peer that stops reading first stops being
//! read (its own messages wait in TCP), then misses what others send it
//! ([`Sender::send`] says so, and [`Sender::dropped`] counts it, the
//! [`Hub`](crate::Hub)'s policy for slow clients), and is dropped after the
//! write timeout.
//!
//! **Failures.** Every call into user code (the [`Handler`]'s callbacks,
//! the HTTP handler, `check_upgrade`, the origin and subprotocol choices)
//! runs under `catch_unwind`: a panic costs its connection (a panic before
//! the handshake is answered `500`), never the worker and the other
//! connections on it. Should the worker's own loop fail, it closes its
//! connections (their `on_close` and `ServerConfig::on_error` hear why) and
//! starts again; a worker whose poll fails stops and gets no more
//! connections, and when none is left [`PollServer::serve`] returns an
//! error. [`PollHandle::worker_failures`] counts both.
//!
//! **Broadcast.** A [`Sender`] joins a [`Hub`](crate::Hub) with
//! [`Hub::join_sink`](crate::Hub::join_sink): broadcasts, rooms and the
//! Redis relay work across both engines.
//!
//! ```no_run
//! use rfc6455::poll::{Conn, Handler, PollServer};
//! use rfc6455::{handshake::Request, protocol::MessageRef, Hub, Member, Message, ServerConfig};
//!
//! /// Every text message goes to everyone.
//! struct Chat {
//!     hub: Hub,
//! }
//!
//! impl Handler for Chat {
//!     type State = Member; // the connection's place in the hub, left when dropped
//!
//!     fn on_open(&self, conn: &mut Conn<'_>, _request: &Request) -> Member {
//!         self.hub.join_sink(None, conn.sender())
//!     }
//!
//!     fn on_message(&self, _member: &mut Member, conn: &mut Conn<'_>, message: MessageRef<'_>) {
//!         if let MessageRef::Text(text) = message {
//!             self.hub.broadcast(Message::text(text));
//!         } else {
//!             let _ = conn.send(message); // binary: echoed from the read buffer, no copy
//!         }
//!     }
//! }
//!
//! PollServer::bind("127.0.0.1:9001", ServerConfig::default())?
//!     .workers(2)
//!     .serve(Chat { hub: Hub::new() })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! | file | concern |
//! | --- | --- |
//! | `server.rs` | [`PollServer`], the accept thread, the connection cap, shutdown |
//! | `worker.rs` | one worker's event loop: readiness, timers, its inbox |
//! | `slot.rs` | one connection's phases: handshake, open, closing |
//! | `sender.rs` | [`Sender`] and the commands it hands to a worker |

mod count;
mod inbox;
mod sender;
mod server;
mod slot;
mod worker;

pub use sender::{SendError, Sender};
pub use server::{PollHandle, PollServer, RunningPollServer};

use crate::error::Result;
use crate::frame::CloseCode;
use crate::handshake::http::Request;
use crate::protocol::{Framed, MessageRef, Outgoing, DIRECT_WRITE};
use std::borrow::Cow;
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;

/// What a poll server does with its connections. One handler serves every
/// connection, from every worker thread; its methods run on the worker that
/// owns the connection and must return quickly (never block on I/O: hand
/// slow work to another thread and answer through a [`Sender`]).
pub trait Handler: Send + Sync + 'static {
    /// Per-connection state, made by [`on_open`](Handler::on_open) and kept
    /// on the connection's worker thread until [`on_close`](Handler::on_close).
    type State;

    /// A WebSocket connection is open (the 101 is queued); `request` is the
    /// upgrade request. Messages sent here go out right after the 101. A
    /// panic here costs only this connection: it gets no 101, and no
    /// [`on_close`](Handler::on_close) follows.
    fn on_open(&self, conn: &mut Conn<'_>, request: &Request) -> Self::State;

    /// A text or binary message arrived, borrowed from the read buffer (no
    /// copy, no allocation for a message that arrived whole). Pings were
    /// answered and close frames replied to already. A panic here ends only
    /// this connection: what it queued goes out, then FIN, and
    /// [`on_close`](Handler::on_close) hears an I/O error.
    fn on_message(&self, state: &mut Self::State, conn: &mut Conn<'_>, message: MessageRef<'_>);

    /// The connection is over: [`Error::ConnectionClosed`](crate::Error::ConnectionClosed)
    /// after a clean close handshake (and at shutdown, once the 1001 is
    /// queued: the peer's answer is not waited for), another error otherwise
    /// (the peer vanished, broke the protocol, a timer ran out, the handler
    /// panicked). Called once per [`on_open`](Handler::on_open). The default
    /// does nothing; [`ServerConfig::on_error`](crate::ServerConfig::on_error)
    /// also hears the errors, with the upgrade request.
    fn on_close(&self, state: Self::State, end: &crate::error::Error) {
        let _ = (state, end);
    }
}

/// The connection a [`Handler`] callback is about: send on it, close it, or
/// take a [`Sender`] for later and for other threads.
pub struct Conn<'a> {
    out: &'a mut Outgoing,
    stream: &'a mut mio::net::TcpStream,
    sender: &'a Sender,
    peer: SocketAddr,
    subprotocol: Option<&'a str>,
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.peer)
            .field("id", &self.sender.id())
            .finish_non_exhaustive()
    }
}

impl Conn<'_> {
    /// Queues a message on this connection (written when the callback
    /// returns, with whatever else is queued, in one write). A payload of
    /// [`DIRECT_WRITE`] bytes or more is written at once, in one vectored
    /// write behind what is queued, without a copy.
    ///
    /// Fails with [`Error::AlreadyClosed`](crate::Error::AlreadyClosed)
    /// after a close frame was sent, and with
    /// [`Error::InvalidSend`](crate::Error::InvalidSend) for what RFC 6455
    /// forbids (a control frame over 125 bytes).
    ///
    /// This is the handler's own output, not bounded by
    /// [`max_pending`](PollServer::max_pending) (past it the connection is
    /// only not read, so an echo stays bounded): a handler that sends more
    /// than it receives should look at [`pending`](Conn::pending) and drop
    /// or close a peer that falls behind.
    pub fn send<'m>(&mut self, message: impl Into<MessageRef<'m>>) -> Result<()> {
        let message = message.into();
        let (opcode, payload) = match &message {
            MessageRef::Text(t) => (message.opcode(), t.as_bytes()),
            MessageRef::Binary(b) => (message.opcode(), *b),
            _ => return self.out.encode_message_ref(message),
        };
        let framed = self
            .out
            .frame_data(opcode, true, Cow::Borrowed(payload), DIRECT_WRITE)?;
        if let Framed::Direct { header, payload } = framed {
            write_direct(self.stream, self.out, header.encode().as_bytes(), &payload);
        }
        Ok(())
    }

    /// Starts the close handshake with `code` and `reason` (at most 123
    /// bytes; longer is cut). The connection ends when the peer answers, or
    /// after the close timeout.
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        self.out.close_with(code, reason);
    }

    /// A handle that sends to this connection from anywhere (cheap to clone).
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The subprotocol the handshake selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol
    }

    /// Bytes queued on this connection and not yet written.
    pub fn pending(&self) -> usize {
        self.out.pending().len()
    }
}

/// Writes `pending` bytes, then a large frame's `header` and `payload`, in
/// one vectored write on a non-blocking socket; what it does not take is
/// queued in `out` behind nothing (the pending bytes go first).
fn write_direct(
    stream: &mut mio::net::TcpStream,
    out: &mut Outgoing,
    header: &[u8],
    payload: &[u8],
) {
    let queued = out.pending().len();
    let written = loop {
        let bufs = [
            IoSlice::new(out.pending()),
            IoSlice::new(header),
            IoSlice::new(payload),
        ];
        match stream.write_vectored(&bufs) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Would block, or failed: queue it all; the next write reports
            // a real failure.
            Err(_) => break 0,
        }
    };
    out.advance(written.min(queued));
    let mut done = written.saturating_sub(queued);
    for part in [header, payload] {
        let skip = done.min(part.len());
        out.queue_unwritten(&part[skip..]);
        done -= skip;
    }
}
