//! One connection of the poll engine: its socket, the core's [`Lifecycle`]
//! (which holds every rule of the connection's life: the handshake, the open
//! connection, the close and every deadline), and the handler's state. This
//! file routes readiness, timers and commands to the phase's I/O; each phase
//! has its own file:
//!
//! | file | phase |
//! | --- | --- |
//! | `handshake.rs` | the request read as it arrives, the decision chain, `on_open` |
//! | `open.rs` | frames in, the handler called, output out |
//! | `closing.rs` | our last bytes, FIN, the peer's input drained |

mod closing;
mod handshake;
mod open;

use super::sender::Sender;
use super::Handler;
use crate::engine::call_user;
use crate::engine::config::ServerConfig;
use crate::engine::upgrade::Deferred;
use crate::error::Error;
use crate::frame::CloseCode;
use crate::handshake::http::Request;
use crate::protocol::{Connection, Lifecycle, Message, Phase, WebSocketConfig};
use mio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What a worker lends a connection while it works on it.
pub(super) struct Env<'a, H: Handler> {
    pub(super) handler: &'a H,
    pub(super) config: &'a ServerConfig,
    pub(super) ws_config: &'a WebSocketConfig,
    /// The worker's read buffer, shared by its connections: an idle
    /// connection holds no read buffer of its own.
    pub(super) rbuf: &'a mut [u8],
    pub(super) max_pending: usize,
}

pub(super) struct Slot<St> {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) sender: Sender,
    life: Lifecycle,
    /// The handler's side, from `on_open` on (boxed: an idle connection's
    /// slot is inline in the worker's table, and small).
    user: Option<Box<User<St>>>,
    /// An HTTP handler's answer to come from another thread (see
    /// [`Lifecycle::await_answer`]).
    later: Option<Box<Deferred>>,
    /// The deadline a timer is set for in the worker's heap.
    pub(super) scheduled: Option<Instant>,
    /// The poller said the peer closed its side (or the socket failed):
    /// a short read no longer means the socket is drained, as the end of
    /// stream that came with the data raises no edge of its own.
    pub(super) read_closed: bool,
}

/// What the handler has of a connection.
struct User<St> {
    /// Until `on_close` takes it.
    state: Option<St>,
    /// Why the connection ends, once known (the first error wins).
    end: Option<Error>,
    /// The handler panicked in a callback: the connection ends (what it
    /// queued goes out, then FIN), and only this connection.
    panicked: bool,
    /// The subprotocol the handshake selected, for every callback's [`Conn`].
    subprotocol: Option<String>,
    /// The upgrade request, kept only for a `ServerConfig::on_error` hook.
    request: Option<Request>,
}

impl<St> User<St> {
    fn end_with(&mut self, error: Error) {
        self.end.get_or_insert(error);
    }
}

/// What one turn on a connection left to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Turn {
    /// Waiting for readiness or a timer.
    Idle,
    /// More input may be waiting: come back soon.
    Again,
}

impl<St> Slot<St> {
    pub(super) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        sender: Sender,
        life: Lifecycle,
    ) -> Self {
        Slot {
            stream,
            peer,
            sender,
            life,
            user: None,
            later: None,
            scheduled: None,
            read_closed: false,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.life.phase() == Phase::Done
    }

    /// When the connection next needs a timer (the core's one deadline).
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.life.deadline()
    }

    /// The socket is ready (or may be): read, answer, write.
    pub(super) fn on_ready<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) -> Turn {
        let before = self.life.phase();
        let turn = match before {
            Phase::Handshake => self.read_request(env),
            Phase::Open => self.run_open(env),
            Phase::Closing => {
                self.run_closing(env);
                Turn::Idle
            }
            Phase::Done => Turn::Idle,
        };
        self.settle(env, before);
        turn
    }

    /// A timer of this connection is due.
    pub(super) fn on_timer<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>, now: Instant) {
        let before = self.life.phase();
        if let Err(e) = self.life.handle_timeout(now) {
            self.end_with(e);
        }
        if self.life.phase() == Phase::Open {
            self.write_out();
        }
        self.settle(env, before);
    }

    /// A message from a [`Sender`].
    pub(super) fn deliver(&mut self, message: &Message, max_pending: usize) {
        let shared = &self.sender.shared;
        shared.in_flight.fetch_sub(message.len(), Ordering::AcqRel);
        let Some(conn) = self.life.connection_mut() else {
            return;
        };
        if conn.data_to_send().len() > max_pending {
            if shared.close_when_full.load(Ordering::Acquire) {
                // It must miss nothing: closed, it catches up when it
                // comes back (RFC 6455 §7.4.1, 1013: try again later).
                conn.outgoing_mut()
                    .close_with(CloseCode::TRY_AGAIN_LATER, crate::hub::SLOW_REASON);
                return;
            }
            // A slow reader: it misses this one (the Hub's policy).
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // After our close frame, nothing more can go: dropped silently, as
        // the connection is ending.
        let _ = conn.send(message);
    }

    /// Starts the close handshake (from a [`Sender`]).
    pub(super) fn close(&mut self, code: CloseCode, reason: &str) {
        match self.life.phase() {
            Phase::Open => {
                if let Some(conn) = self.life.connection_mut() {
                    conn.outgoing_mut().close_with(code, reason);
                }
            }
            // Not a WebSocket yet: nothing to say goodbye to.
            Phase::Handshake => self.life.abort(),
            _ => {}
        }
    }

    /// The HTTP handler's later answer may be there.
    pub(super) fn answered<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        let before = self.life.phase();
        let Some(later) = self.later.as_ref() else {
            return;
        };
        if let Some(response) = later.pending.take() {
            let response = later.finish(response);
            self.later = None;
            self.life.answered(response, Instant::now());
        }
        self.settle(env, before);
    }

    /// The server is going away: close 1001 behind what is queued, without
    /// waiting for the peer's answer (the core's rule, as on the threaded
    /// server), then FIN and the lingering drain.
    pub(super) fn go_away<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        let before = self.life.phase();
        self.life.go_away(Instant::now());
        self.settle(env, before);
    }

    /// Writes what is queued; called after a batch of [`deliver`](Slot::deliver).
    pub(super) fn flush<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        let before = self.life.phase();
        match before {
            Phase::Open => self.write_out(),
            Phase::Closing => self.run_closing(env),
            _ => {}
        }
        // What the hub looks at before it offers more (its slow-member policy).
        let unsent = self.life.data_to_send().len();
        self.sender.shared.unsent.store(unsent, Ordering::Release);
        self.settle(env, before);
    }

    /// The connection is over at once (a failed worker, the shutdown
    /// timeout): the handler hears of it, once.
    pub(super) fn abort<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>, error: Error) {
        self.end_with(error);
        self.life.abort();
        self.settle(env, Phase::Done);
    }

    fn end_with(&mut self, error: Error) {
        if let Some(user) = self.user.as_mut() {
            user.end_with(error);
        }
    }

    /// After any work that began in phase `before`: a connection whose
    /// handler panicked closes; one whose close handshake is done closes
    /// TCP (the core's rule); one that stopped being a WebSocket tells its
    /// handler (once) and its senders; one that has just begun closing gets
    /// its last bytes out.
    fn settle<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>, before: Phase) {
        let panicked = self.user.as_ref().is_some_and(|u| u.panicked);
        let done = self
            .life
            .connection()
            .is_some_and(Connection::should_close_transport);
        // The clock only when something moves on (not per event).
        if panicked || done {
            let now = Instant::now();
            if panicked {
                self.life.close_transport(now);
            }
            self.life.settle(now);
        }
        let phase = self.life.phase();
        if phase != Phase::Open {
            self.leave(env);
        }
        if phase == Phase::Closing && before != Phase::Closing {
            self.run_closing(env);
        }
    }

    /// The handler's connection is over: `on_close` (and the `on_error`
    /// hook, for an error) hear how, once; the senders stop.
    fn leave<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        let Some(user) = self.user.as_mut() else {
            return;
        };
        let Some(state) = user.state.take() else {
            return;
        };
        self.sender.shared.closed.store(true, Ordering::Release);
        let end = user.end.take().unwrap_or(Error::ConnectionClosed);
        // A panic here has nothing left to spoil: the state is gone either
        // way, and the worker goes on.
        let _ = call_user(|| env.handler.on_close(state, &end));
        // What the threaded server reports of a handler's error.
        if let (Some(hook), Some(request)) = (&env.config.on_error, &user.request) {
            if !matches!(end, Error::ConnectionClosed) {
                let _ = call_user(|| hook(&end, request));
            }
        }
    }

    /// Writes what the lifecycle has to send until the socket is full.
    fn write_out(&mut self) {
        while !self.life.data_to_send().is_empty() {
            match io::Write::write(&mut self.stream, self.life.data_to_send()) {
                Ok(0) => return self.write_failed(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.life.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.life.write_blocked(Instant::now());
                }
                Err(e) => return self.write_failed(e),
            }
        }
    }

    /// A write failed: part of a frame may be on the wire, nothing more can go.
    fn write_failed(&mut self, e: io::Error) {
        self.end_with(Error::Io(e));
        self.life.write_failed();
    }
}
