//! One connection of the poll engine, through its phases: the opening
//! handshake (a bounded head read as bytes arrive), open (a
//! [`Connection`] and the handler's state), and closing (our last bytes,
//! FIN, then the peer's remaining input drained for a bounded time).

use super::sender::Sender;
use super::worker::Command;
use super::{Conn, Handler};
use crate::frame::{CloseCode, Role};
use crate::handshake::http::{parse_request, Request};
use crate::protocol::{Connection, State, WebSocketConfig};
use crate::server::upgrade::{answer, head_error_response, Deferred};
use crate::server::ServerConfig;
use crate::transport::HeadError;
use crate::{Error, Message};
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How much a handshake buffer grows by at a time: a typical upgrade
/// request fits in one step.
const HEAD_STEP: usize = 1024;
/// Reads of one connection per readiness event before the others get a
/// turn (a peer that streams fast must not hold up its worker).
const READS_PER_TURN: usize = 16;
/// How long a closing connection waits for more input from a peer that has
/// gone quiet without closing its side, once our last bytes are out: the
/// threaded server's linger rule, so a peer that ignores our FIN costs the
/// same bounded time on both engines, not the whole close timeout.
const QUIET: Duration = Duration::from_millis(500);
/// A data frame with at least this much payload still to come is read
/// straight into its message (one copy, the kernel's, instead of two).
const DIRECT_READ: usize = 16 * 1024;

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
    pub(super) phase: Phase<St>,
    /// The deadline a timer is set for in the worker's heap.
    pub(super) scheduled: Option<Instant>,
    /// Since when output has been waiting for the socket to take it.
    write_blocked: Option<Instant>,
    /// The poller said the peer closed its side (or the socket failed):
    /// a short read no longer means the socket is drained, as the end of
    /// stream that came with the data raises no edge of its own.
    pub(super) read_closed: bool,
}

pub(super) enum Phase<St> {
    Handshake {
        buf: Vec<u8>,
        deadline: Instant,
        /// The HTTP handler answers later: nothing more is read meanwhile.
        later: Option<Deferred>,
    },
    Open(Box<Open<St>>),
    Closing {
        out: Vec<u8>,
        deadline: Instant,
        /// The peer closed its side: nothing to drain, close once written.
        peer_done: bool,
        fin_sent: bool,
        /// Once our FIN is sent: when the drain gives up on a quiet peer
        /// (pushed back by every read that brings bytes).
        quiet_by: Option<Instant>,
    },
    Done,
}

pub(super) struct Open<St> {
    conn: Connection,
    state: Option<St>,
    /// Why the connection ends, once known (the first error wins).
    end: Option<Error>,
    /// A write failed: part of a frame may be on the wire, nothing more can go.
    broken: bool,
    /// The handler panicked in a callback: the connection ends (what it
    /// queued goes out, then FIN), and only this connection.
    panicked: bool,
    /// The subprotocol the handshake selected, for every callback's [`Conn`].
    subprotocol: Option<String>,
    /// The upgrade request, kept only for a `ServerConfig::on_error` hook.
    request: Option<Request>,
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
        deadline: Instant,
    ) -> Self {
        Slot {
            stream,
            peer,
            sender,
            phase: Phase::Handshake {
                buf: Vec::new(),
                deadline,
                later: None,
            },
            scheduled: None,
            write_blocked: None,
            read_closed: false,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// When the connection next needs a timer.
    pub(super) fn deadline(&self, config: &ServerConfig) -> Option<Instant> {
        match &self.phase {
            Phase::Handshake { deadline, .. } => Some(*deadline),
            Phase::Closing {
                deadline, quiet_by, ..
            } => Some(quiet_by.map_or(*deadline, |quiet| quiet.min(*deadline))),
            Phase::Open(open) => {
                let write = self
                    .write_blocked
                    .zip(config.write_timeout)
                    .map(|(since, limit)| since + limit);
                [open.conn.deadline(), write].into_iter().flatten().min()
            }
            Phase::Done => None,
        }
    }

    /// The socket is ready (or may be): read, answer, write.
    pub(super) fn on_ready<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) -> Turn {
        let turn = match self.phase {
            Phase::Handshake { .. } => self.read_head(env),
            Phase::Open(_) => self.run_open(env),
            Phase::Closing { .. } => {
                self.run_closing(env);
                Turn::Idle
            }
            Phase::Done => Turn::Idle,
        };
        self.settle(env);
        turn
    }

    /// A timer of this connection is due.
    pub(super) fn on_timer<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>, now: Instant) {
        match &mut self.phase {
            Phase::Handshake {
                deadline, later, ..
            } => {
                if now >= *deadline {
                    let response = match later.take() {
                        // The handler's answer did not come in time: 504.
                        Some(later) => Some(later.pending.take().unwrap_or(later.fallback)),
                        None => head_error_response(&HeadError::Timeout),
                    };
                    self.closing(env, response.unwrap_or_default(), false);
                }
            }
            Phase::Closing {
                deadline, quiet_by, ..
            } => {
                if now >= *deadline || quiet_by.is_some_and(|quiet| now >= quiet) {
                    self.phase = Phase::Done;
                }
            }
            Phase::Open(open) => {
                let stalled = self
                    .write_blocked
                    .zip(env.config.write_timeout)
                    .is_some_and(|(since, limit)| now >= since + limit);
                if stalled {
                    // A peer that does not read: give up on it.
                    open.end_with(Error::Io(io::ErrorKind::TimedOut.into()));
                    self.leave_open(env, Leave::Now);
                    return;
                }
                match open.conn.handle_timeout(now) {
                    Ok(()) => {}
                    Err(e @ Error::Timeout(crate::Timeout::Close)) => {
                        // Our close frame went unanswered: nothing to wait for.
                        open.end_with(e);
                        self.leave_open(env, Leave::Now);
                        return;
                    }
                    // The close frame the timer queued goes out first.
                    Err(e) => open.end_with(e),
                }
                self.flush_open();
            }
            Phase::Done => {}
        }
        self.settle(env);
    }

    /// The HTTP handler's later answer may be there.
    pub(super) fn answered<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        let Phase::Handshake { later, .. } = &mut self.phase else {
            return;
        };
        if let Some(response) = later.as_ref().and_then(|l| l.pending.take()) {
            self.closing(env, response, false);
        }
    }

    /// A message from a [`Sender`].
    pub(super) fn deliver(&mut self, message: &Message, max_pending: usize) {
        let shared = &self.sender.shared;
        shared.in_flight.fetch_sub(message.len(), Ordering::AcqRel);
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        if open.conn.data_to_send().len() > max_pending {
            if shared.close_when_full.load(Ordering::Acquire) {
                // It must miss nothing: closed, it catches up when it
                // comes back (RFC 6455 §7.4.1, 1013: try again later).
                let reason = crate::hub::SLOW_REASON;
                open.conn
                    .outgoing_mut()
                    .close_with(CloseCode::TRY_AGAIN_LATER, reason);
                return;
            }
            // A slow reader: it misses this one (the Hub's policy).
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // After our close frame, nothing more can go: dropped silently, as
        // the connection is ending.
        let _ = open.conn.send(message);
    }

    /// Starts the close handshake (from a [`Sender`], or the server going away).
    pub(super) fn close(&mut self, code: CloseCode, reason: &str) {
        match &mut self.phase {
            Phase::Open(open) => open.conn.outgoing_mut().close_with(code, reason),
            // Not a WebSocket yet: nothing to say goodbye to.
            Phase::Handshake { .. } => self.phase = Phase::Done,
            _ => {}
        }
    }

    /// The server is going away: close 1001, without waiting for the peer's
    /// answer (as the threaded server does): our close frame goes out
    /// behind what is queued, then FIN, then the peer's input is drained
    /// until it closes or goes quiet. A peer that never answers costs
    /// [`QUIET`], not the close timeout.
    pub(super) fn go_away<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        self.close(CloseCode::GOING_AWAY, "server shutting down");
        self.leave_open(env, Leave::Linger);
    }

    /// Writes what is queued; called after a batch of [`deliver`](Slot::deliver).
    pub(super) fn flush<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        match self.phase {
            Phase::Open(_) => self.flush_open(),
            Phase::Closing { .. } => self.run_closing(env),
            _ => {}
        }
        let unsent = self.pending();
        self.sender.shared.unsent.store(unsent, Ordering::Release);
        self.settle(env);
    }

    /// The connection is over for the handler: tell it, once.
    pub(super) fn abort<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>, error: Error) {
        if let Phase::Open(open) = &mut self.phase {
            open.end_with(error);
        }
        self.leave_open(env, Leave::Now);
        self.phase = Phase::Done;
    }

    fn read_head<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) -> Turn {
        let limits = &env.config.http_limits;
        let Phase::Handshake {
            buf, later: None, ..
        } = &mut self.phase
        else {
            return Turn::Idle;
        };
        loop {
            let filled = buf.len();
            // Grown a step at a time, and never past the cap plus one step,
            // whatever the peer sends.
            buf.resize(filled + HEAD_STEP, 0);
            let read = self.stream.read(&mut buf[filled..]);
            buf.truncate(filled + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => {
                    self.phase = Phase::Done;
                    return Turn::Idle;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Turn::Idle,
                Err(_) => {
                    self.phase = Phase::Done;
                    return Turn::Idle;
                }
            }
            match parse_request(buf, limits) {
                Ok(Some((request, used))) => {
                    let leftover = buf.split_off(used);
                    return self.upgrade(env, &request, leftover);
                }
                Ok(None) if buf.len() > limits.max_head => {
                    let response = head_error_response(&HeadError::TooLarge);
                    self.closing(env, response.unwrap_or_default(), false);
                    return Turn::Idle;
                }
                Ok(None) => {}
                Err(e) => {
                    let response = head_error_response(&HeadError::Parse(e));
                    self.closing(env, response.unwrap_or_default(), false);
                    return Turn::Idle;
                }
            }
        }
    }

    fn upgrade<H: Handler<State = St>>(
        &mut self,
        env: &mut Env<'_, H>,
        request: &Request,
        mut leftover: Vec<u8>,
    ) -> Turn {
        let accepted = match answer(request, env.config) {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(deferred)) => {
                // The answer comes from another thread: the worker goes on,
                // and is woken when it is there.
                let sender = self.sender.clone();
                let wake = Box::new(move || {
                    let (slot, id) = (sender.slot, sender.id);
                    sender.inbox.push(Command::Answered { slot, id });
                });
                if let Some(response) = deferred.pending.take_or_notify(wake) {
                    self.closing(env, response, false);
                } else {
                    self.phase = Phase::Handshake {
                        buf: Vec::new(),
                        deadline: Instant::now() + crate::server::LATER_TIMEOUT,
                        later: Some(deferred),
                    };
                }
                return Turn::Idle;
            }
            Err(response) => {
                self.closing(env, response, false);
                return Turn::Idle;
            }
        };
        let mut conn = Connection::after_handshake(
            Role::Server,
            env.ws_config,
            &accepted.negotiated,
            Instant::now(),
        );
        // The 101 goes out first, then whatever on_open sends.
        conn.outgoing_mut().queue_unwritten(&accepted.response);
        let opened = catch_unwind(AssertUnwindSafe(|| {
            env.handler.on_open(
                &mut Conn {
                    out: conn.outgoing_mut(),
                    stream: &mut self.stream,
                    sender: &self.sender,
                    peer: self.peer,
                    subprotocol: accepted.negotiated.subprotocol.as_deref(),
                },
                request,
            )
        }));
        let Ok(state) = opened else {
            // The handler panicked: no state, so no on_close; the peer
            // gets no 101, only the end of the connection.
            self.closing(env, Vec::new(), false);
            return Turn::Idle;
        };
        let mut open = Box::new(Open {
            conn,
            state: Some(state),
            end: None,
            broken: false,
            panicked: false,
            subprotocol: accepted.negotiated.subprotocol.clone(),
            request: env.config.on_error.as_ref().map(|_| request.clone()),
        });
        // The client's first frames may have come with its request.
        if !leftover.is_empty() {
            process(
                env.handler,
                &mut open,
                &mut self.stream,
                &self.sender,
                self.peer,
                &mut leftover,
            );
        }
        self.phase = Phase::Open(open);
        self.run_open(env)
    }

    /// Reads and answers until the socket is drained, the output is over
    /// budget, or this connection's turn is up.
    fn run_open<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) -> Turn {
        let cap = env.rbuf.len();
        for _ in 0..READS_PER_TURN {
            let Slot {
                stream,
                phase,
                sender,
                peer,
                ..
            } = self;
            let Phase::Open(open) = phase else {
                return Turn::Idle;
            };
            if open.panicked || !matches!(open.conn.state(), State::Open | State::CloseSent) {
                return self.flush_open_turn();
            }
            if open.conn.data_to_send().len() > env.max_pending {
                self.flush_open();
                if self.pending() > env.max_pending {
                    // Backpressure: the peer reads our output before we read
                    // more of its input; the socket's writable edge resumes us.
                    return Turn::Idle;
                }
                continue;
            }
            if let Some(space) = open.conn.payload_space(DIRECT_READ) {
                // The rest of a large frame: straight into the message.
                let read = stream.read(space);
                let n = *read.as_ref().unwrap_or(&0);
                let handler = env.handler;
                let Open {
                    conn, state, end, ..
                } = &mut **open;
                let filled = conn.payload_filled_with(n, |message, out| {
                    if let Some(state) = state.as_mut() {
                        let mut conn = Conn {
                            out,
                            stream: &mut *stream,
                            sender,
                            peer: *peer,
                            subprotocol: None,
                        };
                        handler.on_message(state, &mut conn, message);
                    }
                });
                if let Err(e) = filled {
                    end.get_or_insert(e);
                }
                match read {
                    Ok(0) => {
                        self.on_eof(env);
                        return Turn::Idle;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return self.flush_open_turn()
                    }
                    Err(e) => {
                        self.abort(env, Error::Io(e));
                        return Turn::Idle;
                    }
                }
            }
            match stream.read(env.rbuf) {
                Ok(0) => {
                    self.on_eof(env);
                    return Turn::Idle;
                }
                Ok(n) => {
                    process(env.handler, open, stream, sender, *peer, &mut env.rbuf[..n]);
                    if n < cap && !self.read_closed {
                        // A short read drained the socket: data arriving
                        // later raises a new readiness edge.
                        return self.flush_open_turn();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.flush_open_turn(),
                Err(e) => {
                    self.abort(env, Error::Io(e));
                    return Turn::Idle;
                }
            }
        }
        // Turn over with input perhaps still waiting: come back.
        self.flush_open();
        Turn::Again
    }

    fn flush_open_turn(&mut self) -> Turn {
        self.flush_open();
        Turn::Idle
    }

    fn pending(&self) -> usize {
        match &self.phase {
            Phase::Open(open) => open.conn.data_to_send().len(),
            _ => 0,
        }
    }

    /// Writes the open connection's queued output until the socket is full.
    fn flush_open(&mut self) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        while !open.conn.data_to_send().is_empty() {
            match self.stream.write(open.conn.data_to_send()) {
                Ok(0) => {
                    open.end_with(Error::Io(io::ErrorKind::WriteZero.into()));
                    open.broken = true;
                    return;
                }
                Ok(n) => {
                    open.conn.advance(n);
                    self.write_blocked = None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked.get_or_insert_with(Instant::now);
                    return;
                }
                Err(e) => {
                    open.end_with(Error::Io(e));
                    open.broken = true;
                    return;
                }
            }
        }
        self.write_blocked = None;
    }

    /// The peer closed its side of TCP.
    fn on_eof<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        if let Phase::Open(open) = &mut self.phase {
            if !open.conn.incoming().close_received() {
                open.end_with(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection without a close frame",
                )));
            }
        }
        self.flush_open();
        self.leave_open(env, Leave::PeerDone);
    }

    /// After any work: an open connection whose close is done moves on.
    fn settle<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        if let Phase::Open(open) = &self.phase {
            if open.broken {
                self.leave_open(env, Leave::Now);
            } else if open.panicked || open.conn.should_close_transport() {
                // RFC 6455 §7.1.1: the server closes the TCP connection first.
                self.leave_open(env, Leave::Linger);
            }
        }
    }

    /// The connection stops being a WebSocket: the handler hears of it
    /// (once), the senders stop, and the socket closes as `how` says.
    fn leave_open<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>, how: Leave) {
        let out = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Open(mut open) => {
                self.sender.shared.closed.store(true, Ordering::Release);
                if let Some(state) = open.state.take() {
                    let end = open.end.take().unwrap_or(Error::ConnectionClosed);
                    // A panic here has nothing left to spoil: the state is
                    // gone either way, and the worker goes on.
                    let _ = catch_unwind(AssertUnwindSafe(|| env.handler.on_close(state, &end)));
                    // What the threaded server reports of a handler's error.
                    if let (Some(hook), Some(request)) = (&env.config.on_error, &open.request) {
                        if !matches!(end, Error::ConnectionClosed) {
                            let _ = catch_unwind(AssertUnwindSafe(|| hook(&end, request)));
                        }
                    }
                }
                open.conn.take_data_to_send()
            }
            other => {
                self.phase = other;
                return;
            }
        };
        if how != Leave::Now {
            self.closing(env, out, how == Leave::PeerDone);
        }
    }

    /// Our last bytes (an HTTP error, a close frame) go out, then FIN, then
    /// the peer's input is drained until it closes, goes quiet for
    /// [`QUIET`], or `close_timeout` passes: closing with unread input would
    /// make the kernel reset the connection and destroy those last bytes.
    fn closing<H: Handler<State = St>>(
        &mut self,
        env: &mut Env<'_, H>,
        out: Vec<u8>,
        peer_done: bool,
    ) {
        self.phase = Phase::Closing {
            out,
            deadline: Instant::now() + env.config.close_timeout,
            peer_done,
            fin_sent: false,
            quiet_by: None,
        };
        self.run_closing(env);
    }

    fn run_closing<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        let Phase::Closing {
            out,
            peer_done,
            fin_sent,
            quiet_by,
            ..
        } = &mut self.phase
        else {
            return;
        };
        while !out.is_empty() {
            match self.stream.write(out) {
                Ok(0) => return self.phase = Phase::Done,
                Ok(n) => drop(out.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.phase = Phase::Done,
            }
        }
        if !*fin_sent {
            *fin_sent = true;
            *out = Vec::new();
            let _ = self.stream.shutdown(Shutdown::Write);
            *quiet_by = Some(Instant::now() + QUIET);
        }
        if *peer_done {
            return self.phase = Phase::Done;
        }
        loop {
            match self.stream.read(env.rbuf) {
                Ok(0) => return self.phase = Phase::Done,
                Ok(_) => *quiet_by = Some(Instant::now() + QUIET),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.phase = Phase::Done,
            }
        }
    }
}

/// How an open connection's socket closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// At once: it is broken, or a timer gave up on the peer.
    Now,
    /// Our last bytes, FIN, then drain the peer's input (bounded).
    Linger,
    /// The peer closed its side already: our last bytes, then close.
    PeerDone,
}

impl<St> Open<St> {
    fn end_with(&mut self, error: Error) {
        self.end.get_or_insert(error);
    }
}

/// Feeds bytes read from the socket to the connection, calling the
/// handler for each data message completed, borrowed from `data`.
fn process<H: Handler>(
    handler: &H,
    open: &mut Open<H::State>,
    stream: &mut TcpStream,
    sender: &Sender,
    peer: SocketAddr,
    data: &mut [u8],
) {
    let Open {
        conn,
        state,
        end,
        panicked,
        subprotocol,
        ..
    } = open;
    let Some(state) = state.as_mut() else {
        return;
    };
    let mut at = 0;
    while !*panicked && at < data.len() && matches!(conn.state(), State::Open | State::CloseSent) {
        let received = conn.receive_with(&mut data[at..], |message, out| {
            if message.is_data() {
                let mut conn = Conn {
                    out,
                    stream: &mut *stream,
                    sender,
                    peer,
                    subprotocol: subprotocol.as_deref(),
                };
                // A panicking handler costs its connection, not the
                // worker and every other connection on it.
                let called = catch_unwind(AssertUnwindSafe(|| {
                    handler.on_message(state, &mut conn, message)
                }));
                if called.is_err() {
                    *panicked = true;
                    end.get_or_insert_with(|| Error::Io(io::Error::other("the handler panicked")));
                }
            }
        });
        match received {
            Ok((0, None)) => break,
            Ok((used, _)) => at += used,
            Err(e) => {
                // The close frame with the error's code is queued.
                end.get_or_insert(e);
                break;
            }
        }
    }
}
