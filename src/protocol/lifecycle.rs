//! [`Lifecycle`]: a server connection's whole life without I/O, for an event
//! loop: the opening handshake read as bytes, the open [`Connection`], and
//! the close (our last bytes, FIN, the lingering drain), with every deadline
//! (handshake, keepalive, idle, close wait, write stall, linger) behind one
//! [`deadline`](Lifecycle::deadline) / [`handle_timeout`](Lifecycle::handle_timeout).
//!
//! The driver does the I/O the lifecycle asks for: it reads into
//! [`handshake_mut`](Lifecycle::handshake_mut)'s space or feeds the open
//! [`connection_mut`](Lifecycle::connection_mut), writes
//! [`data_to_send`](Lifecycle::data_to_send), shuts the socket's write side
//! when [`fin_due`](Lifecycle::fin_due), drains input while closing, and
//! closes the socket once [`Phase::Done`]. Which response a request gets
//! (the server's own checks) is the driver's to decide:
//! [`accept`](Lifecycle::accept) or [`refuse`](Lifecycle::refuse).

use super::linger::Linger;
use super::{Connection, ServerHandshake, WebSocketConfig};
use crate::error::{Error, Result, Timeout};
use crate::handshake::http::Limits;
use crate::handshake::server::Accepted;
use crate::handshake::HeadError;
use std::io;
use std::time::{Duration, Instant};

/// Where a [`Lifecycle`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the upgrade request.
    Handshake,
    /// A WebSocket connection.
    Open,
    /// Our last bytes go out, then FIN, then the peer's input is drained.
    Closing,
    /// Nothing more to do: close the socket.
    Done,
}

/// A server connection's whole life without I/O: the opening handshake read
/// as bytes, the open [`Connection`], and the close, with every deadline
/// behind one [`deadline`](Lifecycle::deadline) / [`handle_timeout`](Lifecycle::handle_timeout).
/// The driver does the I/O it asks for (reads into
/// [`handshake_mut`](Lifecycle::handshake_mut)'s space, writes
/// [`data_to_send`](Lifecycle::data_to_send), shuts the write side when
/// [`fin_due`](Lifecycle::fin_due), closes the socket once [`Phase::Done`]) and decides
/// how a request is answered ([`accept`](Lifecycle::accept) or [`refuse`](Lifecycle::refuse)).
///
/// ```
/// use rfc6455::handshake::{accept, AcceptOptions, Limits};
/// use rfc6455::protocol::{Lifecycle, Phase, WebSocketConfig};
/// use std::time::{Duration, Instant};
///
/// let (config, now) = (WebSocketConfig::default(), Instant::now());
/// let mut life = Lifecycle::server(Limits::default(), Duration::from_secs(10), &config, None, now);
/// let wire = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
/// // Bytes in: the request, once complete.
/// let (_, request) = life.handshake_mut().unwrap().receive_data(wire).unwrap();
/// let accepted = accept(&request.unwrap(), &AcceptOptions::new()).unwrap();
/// life.accept(&accepted, &config, now);
/// assert_eq!(life.phase(), Phase::Open);
/// // Bytes out: the 101.
/// assert!(life.data_to_send().starts_with(b"HTTP/1.1 101"));
/// // The peer hangs up: our last bytes go, then the connection is done.
/// life.receive_eof(now);
/// let n = life.data_to_send().len();
/// life.advance(n);
/// life.fin_sent(now);
/// assert_eq!(life.phase(), Phase::Done);
/// ```
#[derive(Debug)]
pub struct Lifecycle {
    stage: Stage,
    close_timeout: Duration,
    write_timeout: Option<Duration>,
    /// Since when output has been waiting for the transport to take it.
    write_blocked: Option<Instant>,
}

#[derive(Debug)]
/// Each phase's state is boxed: a poll engine keeps a lifecycle inline per
/// connection, so its size is what every idle connection pays.
enum Stage {
    Handshake(Box<ServerHandshake>),
    /// The request is read; its answer comes later (from another thread):
    /// nothing more is read meanwhile.
    Awaiting(Box<Awaiting>),
    Open(Box<Connection>),
    Closing(Box<Closing>),
    Done,
}

#[derive(Debug)]
struct Awaiting {
    deadline: Instant,
    /// What to answer if the answer does not come by the deadline.
    fallback: Vec<u8>,
}

#[derive(Debug)]
struct Closing {
    out: Vec<u8>,
    written: usize,
    /// The close timeout: the most a close takes.
    until: Instant,
    /// The peer closed its side: nothing to drain, done once written.
    peer_done: bool,
    /// Once our FIN is out: the linger (the core's one rule for it).
    linger: Option<Linger>,
}

impl Lifecycle {
    /// A connection just accepted at `now`: its request must be complete
    /// within `handshake_timeout` and within `limits`; once open it runs
    /// with `config` (its close timeout also bounds the close of a refused
    /// or finished connection) and gives up on a peer that does not read
    /// for `write_timeout`.
    pub fn server(
        limits: Limits,
        handshake_timeout: Duration,
        config: &WebSocketConfig,
        write_timeout: Option<Duration>,
        now: Instant,
    ) -> Lifecycle {
        Lifecycle {
            stage: Stage::Handshake(Box::new(ServerHandshake::new(
                limits,
                handshake_timeout,
                now,
            ))),
            close_timeout: config.close_timeout,
            write_timeout,
            write_blocked: None,
        }
    }

    /// Where the connection is.
    pub fn phase(&self) -> Phase {
        match self.stage {
            Stage::Handshake(_) | Stage::Awaiting(_) => Phase::Handshake,
            Stage::Open(_) => Phase::Open,
            Stage::Closing(_) => Phase::Closing,
            Stage::Done => Phase::Done,
        }
    }

    /// The handshake, while the request is being read.
    pub fn handshake_mut(&mut self) -> Option<&mut ServerHandshake> {
        match &mut self.stage {
            Stage::Handshake(handshake) => Some(handshake),
            _ => None,
        }
    }

    /// The connection, while open.
    pub fn connection(&self) -> Option<&Connection> {
        match &self.stage {
            Stage::Open(conn) => Some(conn),
            _ => None,
        }
    }

    /// The connection, while open.
    pub fn connection_mut(&mut self) -> Option<&mut Connection> {
        match &mut self.stage {
            Stage::Open(conn) => Some(conn),
            _ => None,
        }
    }

    /// A request head that could not be read: its answer (400, 431…) goes
    /// out, then the connection closes.
    pub fn head_failed(&mut self, error: &HeadError, now: Instant) {
        self.refuse(error.response(), now);
    }

    /// Answers the request with `response` (an error status, or the answer
    /// of an HTTP handler) instead of upgrading; then the connection closes.
    pub fn refuse(&mut self, response: Vec<u8>, now: Instant) {
        if matches!(self.stage, Stage::Handshake(_) | Stage::Awaiting(_)) {
            self.closing(response, false, now);
        }
    }

    /// The request's answer comes later (an HTTP handler that answers from
    /// another thread): nothing more is read meanwhile, and `fallback` (a
    /// 504, say) is sent if the answer is not [`answered`](Lifecycle::answered)
    /// within `timeout`.
    pub fn await_answer(&mut self, timeout: Duration, fallback: Vec<u8>, now: Instant) {
        if matches!(self.stage, Stage::Handshake(_)) {
            self.stage = Stage::Awaiting(Box::new(Awaiting {
                deadline: now + timeout,
                fallback,
            }));
        }
    }

    /// The answer [`await_answer`](Lifecycle::await_answer) waited for:
    /// it goes out, then the connection closes.
    pub fn answered(&mut self, response: Vec<u8>, now: Instant) {
        if matches!(self.stage, Stage::Awaiting(_)) {
            self.closing(response, false, now);
        }
    }

    /// Upgrades: the connection is open, with the 101 queued and extensions
    /// and timers installed. Returns the bytes that came after the request
    /// (the client's first frames), to be fed to the connection.
    pub fn accept(
        &mut self,
        accepted: &Accepted,
        config: &WebSocketConfig,
        now: Instant,
    ) -> Vec<u8> {
        if !matches!(self.stage, Stage::Handshake(_)) {
            return Vec::new();
        }
        let Stage::Handshake(handshake) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return Vec::new();
        };
        let (conn, leftover) = (*handshake).accept(accepted, config, now);
        self.stage = Stage::Open(Box::new(conn));
        leftover
    }

    /// Bytes to write now.
    pub fn data_to_send(&self) -> &[u8] {
        match &self.stage {
            Stage::Open(conn) => conn.data_to_send(),
            Stage::Closing(closing) => &closing.out[closing.written..],
            _ => &[],
        }
    }

    /// `n` bytes of [`data_to_send`](Lifecycle::data_to_send) were written.
    pub fn advance(&mut self, n: usize) {
        if n > 0 {
            self.write_blocked = None;
        }
        match &mut self.stage {
            Stage::Open(conn) => conn.advance(n),
            Stage::Closing(closing) => {
                closing.written = (closing.written + n).min(closing.out.len());
            }
            _ => {}
        }
    }

    /// The transport took all it could and some output still waits: the
    /// write timeout runs from the first time this is said.
    pub fn write_blocked(&mut self, now: Instant) {
        self.write_blocked.get_or_insert(now);
    }

    /// A write failed: part of a frame may be on the wire, so nothing more
    /// can go; the connection is over.
    pub fn write_failed(&mut self) {
        if let Stage::Open(conn) = &mut self.stage {
            conn.outgoing_mut().on_io_error();
        }
        self.abort();
    }

    /// The transport failed, or the driver gives up on the connection at
    /// once: nothing more is sent, nothing drained.
    pub fn abort(&mut self) {
        self.stage = Stage::Done;
    }

    /// The peer ended its stream (TCP FIN). Returns what that means for an
    /// open connection ([`Connection::receive_eof`]); our last bytes still
    /// go out, with nothing left to drain.
    pub fn receive_eof(&mut self, now: Instant) -> Option<Error> {
        match &mut self.stage {
            Stage::Handshake(_) | Stage::Awaiting(_) => {
                self.stage = Stage::Done;
                None
            }
            Stage::Open(conn) => {
                let end = conn.receive_eof();
                let out = conn.take_data_to_send();
                self.closing(out, true, now);
                Some(end)
            }
            Stage::Closing(closing) => {
                closing.peer_done = true;
                if closing.written == closing.out.len() {
                    self.stage = Stage::Done;
                }
                None
            }
            Stage::Done => None,
        }
    }

    /// Whether the driver should shut the socket's write side now (our last
    /// bytes are out), then call [`fin_sent`](Lifecycle::fin_sent).
    pub fn fin_due(&self) -> bool {
        matches!(&self.stage, Stage::Closing(c) if c.linger.is_none() && c.written == c.out.len())
    }

    /// Our FIN went out at `now`: the lingering drain starts (or, if the
    /// peer closed its side already, the connection is done).
    pub fn fin_sent(&mut self, now: Instant) {
        let close_timeout = self.close_timeout;
        if let Stage::Closing(closing) = &mut self.stage {
            if closing.peer_done {
                self.stage = Stage::Done;
                return;
            }
            closing.out = Vec::new();
            closing.written = 0;
            let left = closing.until.saturating_duration_since(now);
            closing.linger = Some(Linger::new(now, left.min(close_timeout)));
        }
    }

    /// The driver read (and dropped) input while closing: the peer is not
    /// quiet yet.
    pub fn drained(&mut self, now: Instant) {
        if let Stage::Closing(closing) = &mut self.stage {
            if let Some(linger) = closing.linger.as_mut() {
                linger.on_input(now);
            }
        }
    }

    /// The connection should stop being a WebSocket now (its handler failed,
    /// say): what it queued goes out, then FIN and the lingering drain.
    pub fn close_transport(&mut self, now: Instant) {
        if let Stage::Open(conn) = &mut self.stage {
            let out = conn.take_data_to_send();
            self.closing(out, false, now);
        }
    }

    /// The server is going away: a handshake in progress ends; an open
    /// connection sends close 1001 behind what it queued and closes without
    /// waiting for the answer (the linger takes what the peer still sends).
    pub fn go_away(&mut self, now: Instant) {
        match &mut self.stage {
            Stage::Handshake(_) | Stage::Awaiting(_) => self.stage = Stage::Done,
            Stage::Open(conn) => {
                conn.go_away();
                self.close_transport(now);
            }
            _ => {}
        }
    }

    /// After any work on an open connection: once the close handshake is
    /// done (or the connection failed) and its output is written, the server
    /// closes the TCP connection first (RFC 6455 §7.1.1). Returns whether it
    /// moved on.
    pub fn settle(&mut self, now: Instant) -> bool {
        match &self.stage {
            Stage::Open(conn) if conn.should_close_transport() => {
                self.close_transport(now);
                true
            }
            _ => false,
        }
    }

    /// When [`handle_timeout`](Lifecycle::handle_timeout) is next due.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Handshake(handshake) => Some(handshake.deadline()),
            Stage::Awaiting(awaiting) => Some(awaiting.deadline),
            Stage::Open(conn) => {
                let stall = self.write_blocked.zip(self.write_timeout);
                let stall = stall.map(|(since, limit)| since + limit);
                [conn.deadline(), stall].into_iter().flatten().min()
            }
            Stage::Closing(closing) => Some(
                closing
                    .linger
                    .map_or(closing.until, |l| l.deadline().min(closing.until)),
            ),
            Stage::Done => None,
        }
    }

    /// Time has passed: a late request is answered 408; an open
    /// connection's timers act ([`Connection::handle_timeout`]: a keepalive
    /// ping, or a timeout whose close frame is queued), a peer that has not
    /// read for the write timeout is dropped, one that never answered our
    /// close is too; a close whose linger or timeout is over is done.
    /// Returns the error that ends an open connection, if one does.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        match &mut self.stage {
            Stage::Handshake(handshake) => {
                if handshake.is_timed_out(now) {
                    self.closing(ServerHandshake::timeout_response(), false, now);
                }
                Ok(())
            }
            Stage::Awaiting(awaiting) => {
                if now >= awaiting.deadline {
                    let fallback = std::mem::take(&mut awaiting.fallback);
                    self.closing(fallback, false, now);
                }
                Ok(())
            }
            Stage::Open(conn) => {
                let stalled = self
                    .write_blocked
                    .zip(self.write_timeout)
                    .is_some_and(|(since, limit)| now >= since + limit);
                if stalled {
                    // A peer that does not read: give up on it at once.
                    self.stage = Stage::Done;
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the peer did not read for the write timeout",
                    )));
                }
                match conn.handle_timeout(now) {
                    Err(e @ Error::Timeout(Timeout::Close)) => {
                        // Our close frame went unanswered: nothing to wait for.
                        self.stage = Stage::Done;
                        Err(e)
                    }
                    // The close frame the timer queued goes out first.
                    other => other,
                }
            }
            Stage::Closing(closing) => {
                let lingered = closing.linger.is_some_and(|l| l.is_over(now));
                if lingered || now >= closing.until {
                    self.stage = Stage::Done;
                }
                Ok(())
            }
            Stage::Done => Ok(()),
        }
    }

    fn closing(&mut self, out: Vec<u8>, peer_done: bool, now: Instant) {
        self.write_blocked = None;
        self.stage = Stage::Closing(Box::new(Closing {
            out,
            written: 0,
            until: now + self.close_timeout,
            peer_done,
            linger: None,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::server::{accept, AcceptOptions};

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn life(now: Instant) -> Lifecycle {
        let config = WebSocketConfig::default();
        Lifecycle::server(
            Limits::default(),
            Duration::from_secs(1),
            &config,
            Some(Duration::from_secs(2)),
            now,
        )
    }

    #[test]
    fn a_late_request_is_answered_408_then_lingers_then_is_done() {
        let start = Instant::now();
        let mut life = life(start);
        assert_eq!(life.deadline(), Some(start + Duration::from_secs(1)));
        let late = start + Duration::from_secs(1);
        life.handle_timeout(late).unwrap();
        assert_eq!(life.phase(), Phase::Closing);
        assert!(life.data_to_send().starts_with(b"HTTP/1.1 408"));
        let n = life.data_to_send().len();
        life.advance(n);
        assert!(life.fin_due());
        life.fin_sent(late);
        assert_eq!(life.deadline(), Some(late + super::super::linger::QUIET));
        life.handle_timeout(late + super::super::linger::QUIET)
            .unwrap();
        assert_eq!(life.phase(), Phase::Done);
    }

    #[test]
    fn an_accepted_request_opens_with_the_101_queued() {
        let now = Instant::now();
        let mut life = life(now);
        let handshake = life.handshake_mut().unwrap();
        let (_, request) = handshake.receive_data(REQUEST).unwrap();
        let accepted = accept(&request.unwrap(), &AcceptOptions::new()).unwrap();
        let leftover = life.accept(&accepted, &WebSocketConfig::default(), now);
        assert!(leftover.is_empty());
        assert_eq!(life.phase(), Phase::Open);
        assert!(life.data_to_send().starts_with(b"HTTP/1.1 101"));
    }

    #[test]
    fn a_peer_that_does_not_read_is_dropped_after_the_write_timeout() {
        let now = Instant::now();
        let mut life = life(now);
        let (_, request) = life.handshake_mut().unwrap().receive_data(REQUEST).unwrap();
        let accepted = accept(&request.unwrap(), &AcceptOptions::new()).unwrap();
        life.accept(&accepted, &WebSocketConfig::default(), now);
        life.write_blocked(now);
        assert_eq!(life.deadline(), Some(now + Duration::from_secs(2)));
        let e = life
            .handle_timeout(now + Duration::from_secs(2))
            .unwrap_err();
        assert!(matches!(e, Error::Io(io) if io.kind() == io::ErrorKind::TimedOut));
        assert_eq!(life.phase(), Phase::Done);
    }

    #[test]
    fn a_peer_that_closed_its_side_gets_our_last_bytes_and_no_linger() {
        let now = Instant::now();
        let mut life = life(now);
        let (_, request) = life.handshake_mut().unwrap().receive_data(REQUEST).unwrap();
        let accepted = accept(&request.unwrap(), &AcceptOptions::new()).unwrap();
        life.accept(&accepted, &WebSocketConfig::default(), now);
        let end = life.receive_eof(now).unwrap();
        assert!(matches!(end, Error::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof));
        assert_eq!(life.phase(), Phase::Closing);
        let n = life.data_to_send().len();
        life.advance(n);
        life.fin_sent(now);
        assert_eq!(life.phase(), Phase::Done);
    }
}
