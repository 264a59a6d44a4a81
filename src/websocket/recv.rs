//! The receiving side of the blocking driver, shared by the owned
//! [`WebSocket`](super::WebSocket) and the split [`Reader`](super::Reader):
//! the read loop (I/O) around the core's [`Inbound`] half, which decodes,
//! reacts, keeps the timers and says what the end of stream means; the
//! stream's read timeout is the clock.

use super::read_buf::ReadBuf;
use crate::error::{Error, Result, Timeout};
use crate::frame::{OpCode, ProtocolError};
use crate::protocol::linger::Linger;
use crate::protocol::{
    Inbound, Located, Message, MessageRef, Outgoing, Piece, PieceAt, Reactions, Received, Streaming,
};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When at least this much of a data frame's payload is still to come and
/// the read buffer is drained, it is read straight into the message buffer
/// (see [`Incoming::payload_space`]): one copy (the kernel's) instead of two.
/// Below it, reading into the read buffer can take in following frames too.
const DIRECT_READ: usize = 16 * 1024;
/// While a shutting-down server waits for close replies on read-shut
/// sockets (whose reads return at once), how long it sleeps between reads
/// (it stops waiting by the core's [`Linger`] rule).
const SHUTDOWN_POLL: Duration = Duration::from_millis(20);

/// Access to the sending side, which a [`WebSocket`](super::WebSocket) owns
/// and a [`Reader`](super::Reader) shares with its [`Writer`](super::Writer)s.
pub(super) trait SendSide {
    fn read(&mut self, rbuf: &mut ReadBuf) -> io::Result<usize>;
    fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Runs `f` on the sending state. For split halves this takes a lock
    /// that is never held across I/O, so a reader never waits on a writer
    /// blocked in a write.
    fn state<T>(&mut self, f: impl FnOnce(&mut Outgoing) -> T) -> T;
    /// Writes what is queued. For split halves, if a writer is busy writing,
    /// that writer writes it before it lets go of the stream (unless too
    /// much is queued: then this waits, which is the peer's backpressure).
    fn flush(&mut self) -> io::Result<()>;
    /// Writes what is queued, waiting for a busy writer if need be: for the
    /// last bytes of a connection (a close frame), which must go out before
    /// the caller is told the connection is over.
    fn flush_all(&mut self) -> io::Result<()>;
    /// Whether replies may wait for the input to drain (one owner) or must
    /// go out at once (split halves, where nobody else flushes for us).
    fn batches_replies(&self) -> bool;
}

/// What the read loop looks for.
#[derive(Clone, Copy)]
enum Mode {
    /// Whole messages, each in its own allocation.
    Owned,
    /// Whole messages, left where they lie when they can be.
    InPlace,
    /// Data messages that `Streaming` selects in pieces.
    Pieces(Streaming),
}

/// What the read loop found.
enum Got {
    /// A message decoded into its own allocation.
    Owned(Message),
    /// A message left where it lies: in the read buffer from `base`, or
    /// held by the decoder.
    Located(Located, usize),
    /// A piece of a streamed message (its bytes held by the decoder).
    Piece(PieceAt),
}

/// What [`RecvSide::next_piece`] found for a message reader.
pub(super) enum Step {
    /// The streamed message starts.
    Start(OpCode),
    /// A whole data message (not streamed: its first frame had arrived
    /// before streaming was asked for), copied out.
    Whole(OpCode, Vec<u8>),
    /// More bytes: [`RecvSide::piece`].
    Data,
    /// The streamed message is over.
    End,
}

/// The receiving side's state.
#[derive(Debug)]
pub(super) struct RecvSide {
    inbound: Inbound,
    pub(super) rbuf: ReadBuf,
    close_timeout: Duration,
    /// The stream's read timeout when it is only the driver's clock (set
    /// by the server and by clients without a read timeout): a timeout with
    /// nothing due is then not an error. One that comes much sooner than
    /// the tick is the caller's own (a read timeout or non-blocking mode set
    /// on the stream) and is returned to them.
    pub(super) tick: Option<Duration>,
    eof: bool,
    pub(super) going_away: Option<Arc<AtomicBool>>,
    /// A shutting-down connection waiting for its peer's answer to 1001.
    linger: Option<Linger>,
    /// `ConnectionClosed` was returned: the connection is over.
    ended: bool,
    /// A message reader was dropped mid-message: skip the rest first.
    discarding: bool,
    /// The last message `read_ref` decoded into an allocation, lent out
    /// until the next read.
    held: Option<Message>,
}

/// Fails the connection after a protocol error (the core's reaction): the
/// close frame with its code goes out at once.
fn fail<K: SendSide>(reactions: &mut Reactions, side: &mut K, e: ProtocolError) -> Error {
    let error = side.state(|out| reactions.fail(out, e));
    // Best effort: the peer may already be gone.
    let _ = side.flush_all();
    error
}

/// An error that only says the caller's own read timeout or non-blocking
/// mode cut a read short.
fn is_callers_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Replies to what was received (the core's reaction path: pong, close
/// echo) go out at once when nobody batches them, and a close reply always
/// does.
fn react<K: SendSide>(
    reactions: &mut Reactions,
    side: &mut K,
    message: &MessageRef<'_>,
) -> Result<()> {
    side.state(|out| reactions.react(out, Ok(message)));
    if !side.batches_replies() || matches!(message, MessageRef::Close(_)) {
        side.flush()?;
    }
    Ok(())
}

impl RecvSide {
    /// The receiving side over the core's `inbound` half, with the bytes
    /// read past the handshake.
    pub(super) fn new(inbound: Inbound, close_timeout: Duration, leftover: Vec<u8>) -> RecvSide {
        RecvSide {
            inbound,
            rbuf: ReadBuf::new(leftover),
            close_timeout,
            tick: None,
            eof: false,
            going_away: None,
            linger: None,
            ended: false,
            discarding: false,
            held: None,
        }
    }

    /// Reads the next message into its own allocation.
    pub(super) fn read<K: SendSide>(&mut self, side: &mut K) -> Result<Message> {
        match self.next(side, Mode::Owned)? {
            Got::Owned(message) => Ok(message),
            // Not produced in this mode.
            Got::Located(..) | Got::Piece(_) => Err(Error::AlreadyClosed),
        }
    }

    /// Reads the next message, borrowed from the read buffer when it lies
    /// there whole (unmasked in place), with no allocation.
    pub(super) fn read_ref<K: SendSide>(&mut self, side: &mut K) -> Result<MessageRef<'_>> {
        self.held = None;
        match self.next(side, Mode::InPlace)? {
            Got::Owned(message) => {
                // Reacted to already (a payload read straight into the message).
                let held = self.held.insert(message);
                Ok(MessageRef::from(&*held))
            }
            Got::Located(located, base) => {
                let (incoming, reactions) = self.inbound.parts_mut();
                let message = match incoming.view(self.rbuf.all(), located, base) {
                    Ok(m) => m,
                    Err(e) => return Err(fail(reactions, side, e)),
                };
                react(reactions, side, &message)?;
                Ok(message)
            }
            // Not produced in this mode.
            Got::Piece(_) => Err(Error::AlreadyClosed),
        }
    }

    /// Reads the next message, or piece of a streamed one (see
    /// [`Incoming::receive_piece`]), reacting to control frames as `read`
    /// does.
    pub(super) fn read_piece<K: SendSide>(
        &mut self,
        side: &mut K,
        streaming: Streaming,
    ) -> Result<Piece<'_>> {
        self.held = None;
        let (at, base) = match self.next(side, Mode::Pieces(streaming))? {
            Got::Owned(message) => {
                // Reacted to already (a payload read straight into the message).
                let held = self.held.insert(message);
                return Ok(Piece::Message(MessageRef::from(&*held)));
            }
            Got::Located(located, base) => (PieceAt::Message(located), base),
            Got::Piece(at) => (at, 0),
        };
        let (incoming, reactions) = self.inbound.parts_mut();
        let piece = match incoming.view_piece(self.rbuf.all(), at, base) {
            Ok(piece) => piece,
            Err(e) => return Err(fail(reactions, side, e)),
        };
        if let Piece::Message(message) = &piece {
            react(reactions, side, message)?;
        }
        Ok(piece)
    }

    /// For a message reader: the next step of a streamed message; control
    /// frames in between are answered and skipped.
    pub(super) fn next_piece<K: SendSide>(&mut self, side: &mut K) -> Result<Step> {
        loop {
            return Ok(match self.read_piece(side, Streaming::Always)? {
                Piece::Start(opcode) => Step::Start(opcode),
                Piece::Data(_) => Step::Data,
                Piece::End => Step::End,
                Piece::Message(m) if m.is_data() => {
                    Step::Whole(m.opcode(), m.payload().unwrap_or_default().to_vec())
                }
                Piece::Message(_) => continue,
            });
        }
    }

    /// The bytes of the last [`Step::Data`].
    pub(super) fn piece(&self) -> &[u8] {
        self.inbound.incoming().current_piece()
    }

    /// A message reader was dropped before the end of its message: the
    /// rest is skipped before anything else is read.
    pub(super) fn discard_rest_of_message(&mut self) {
        self.discarding = true;
    }

    /// The next message. Once the connection has ended (`ConnectionClosed`
    /// was returned, or it failed), every later call returns
    /// [`Error::AlreadyClosed`]: a loop that keeps reading has a bug, and
    /// this says so.
    fn next<K: SendSide>(&mut self, side: &mut K, mode: Mode) -> Result<Got> {
        if self.ended || side.state(|out| out.failed()) {
            return Err(Error::AlreadyClosed);
        }
        while self.discarding {
            match self.next_unended(side, Mode::Pieces(Streaming::Always)) {
                Ok(Got::Piece(PieceAt::End)) => self.discarding = false,
                Ok(Got::Located(located, base)) => {
                    // A control frame in the middle: still answered.
                    let (incoming, reactions) = self.inbound.parts_mut();
                    match incoming.view(self.rbuf.all(), located, base) {
                        Ok(message) => react(reactions, side, &message)?,
                        Err(e) => return Err(fail(reactions, side, e)),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    match &e {
                        // The caller's own timeout or non-blocking mode: the
                        // rest is still to skip, on the next call.
                        Error::Io(io) if is_callers_wait(io) => {}
                        Error::ConnectionClosed => {
                            self.discarding = false;
                            self.ended = true;
                        }
                        _ => self.discarding = false,
                    }
                    return Err(e);
                }
            }
        }
        let got = self.next_unended(side, mode);
        if let Err(Error::ConnectionClosed) = got {
            self.ended = true;
        }
        got
    }

    fn next_unended<K: SendSide>(&mut self, side: &mut K, mode: Mode) -> Result<Got> {
        loop {
            if let Mode::Pieces(streaming) = mode {
                // Even with nothing to read, the end of a streamed message
                // whose last piece was handed out may be due.
                let (base, data) = self.rbuf.data_mut();
                match self.inbound.incoming_mut().receive_piece(data, streaming) {
                    Ok((consumed, found)) => {
                        self.rbuf.consume(consumed);
                        match found {
                            Some(PieceAt::Message(located)) => {
                                return Ok(Got::Located(located, base));
                            }
                            // The read buffer is used up in the middle of a
                            // large frame: what it held of the frame waits
                            // for the direct read below and goes out with
                            // it as one piece (one echoed frame, one write).
                            Some(PieceAt::Data)
                                if self.rbuf.is_empty()
                                    && self.inbound.incoming_mut().keep_piece(DIRECT_READ) => {}
                            Some(at) => return Ok(Got::Piece(at)),
                            None => {}
                        }
                    }
                    Err(e) => return Err(self.fail(side, e)),
                }
                if !self.rbuf.is_empty() {
                    continue;
                }
            } else if !self.rbuf.is_empty() {
                if let Mode::InPlace = mode {
                    let (base, data) = self.rbuf.data_mut();
                    match self.inbound.incoming_mut().receive_located(data) {
                        Ok((consumed, located)) => {
                            self.rbuf.consume(consumed);
                            if let Some(located) = located {
                                return Ok(Got::Located(located, base));
                            }
                        }
                        Err(e) => return Err(self.fail(side, e)),
                    }
                } else {
                    match self.inbound.incoming_mut().receive(self.rbuf.data()) {
                        Ok(Received { consumed, message }) => {
                            self.rbuf.consume(consumed);
                            if let Some(message) = message {
                                self.on_message(side, &MessageRef::from(&message))?;
                                return Ok(Got::Owned(message));
                            }
                        }
                        Err(e) => return Err(self.fail(side, e)),
                    }
                }
                continue;
            }
            // Input drained: everything queued while processing it goes out
            // in one write before we block.
            side.flush()?;
            let (eof, inbound) = (self.eof, &self.inbound);
            let (over, close_sent) =
                side.state(|out| (inbound.is_over(out, eof), out.close_sent()));
            if over {
                // Our close reply must be out before the caller closes TCP.
                let _ = side.flush_all();
                return Err(Error::ConnectionClosed);
            }
            if close_sent {
                // Checked here as well as on read timeouts: a peer that keeps
                // sending but never answers our close must not hold us.
                let inbound = &mut self.inbound;
                side.state(|out| inbound.check_close_wait(out, Instant::now()))?;
            }
            let read_started = self.tick.map(|_| Instant::now());
            let (got, direct) = match self.inbound.incoming_mut().payload_space(DIRECT_READ) {
                Some(space) => (side.read_into(space), true),
                None => (side.read(&mut self.rbuf), false),
            };
            match got {
                Ok(0) => match self.on_eof(side) {
                    Some(e) => {
                        self.eof = true;
                        return Err(e);
                    }
                    // The server is shutting down and sent 1001: the read
                    // side is shut, so reads return at once, with the
                    // peer's bytes or with nothing yet. Poll for its close
                    // reply, bounded by the close timeout (checked above).
                    None => std::thread::sleep(SHUTDOWN_POLL),
                },
                Ok(n) => {
                    if self.linger.is_some() || self.inbound.watches_silence() {
                        let now = Instant::now();
                        if let Some(linger) = self.linger.as_mut() {
                            linger.on_input(now);
                        }
                        self.inbound.received_at(now);
                    }
                    if direct {
                        match self.inbound.incoming_mut().payload_filled(n) {
                            Ok(Received {
                                message: Some(message),
                                ..
                            }) => {
                                self.on_message(side, &MessageRef::from(&message))?;
                                return Ok(Got::Owned(message));
                            }
                            Ok(_) => {
                                if let Some(at) = self.inbound.incoming_mut().filled_piece() {
                                    return Ok(Got::Piece(at));
                                }
                            }
                            Err(e) => return Err(self.fail(side, e)),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.on_timeout(side, e, read_started)?;
                }
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    fn on_message<K: SendSide>(&mut self, side: &mut K, message: &MessageRef<'_>) -> Result<()> {
        react(self.inbound.parts_mut().1, side, message)
    }

    fn fail<K: SendSide>(&mut self, side: &mut K, e: ProtocolError) -> Error {
        fail(self.inbound.parts_mut().1, side, e)
    }

    /// End of stream: the end of the connection (`Some`, as the core's
    /// [`Inbound::receive_eof`] says), or, when the server is shutting down,
    /// the cue to send 1001 and wait for the peer's reply until it goes
    /// quiet (the core's [`Linger`] rule), `None`.
    fn on_eof<K: SendSide>(&mut self, side: &mut K) -> Option<Error> {
        let inbound = &self.inbound;
        let end = side.state(|out| inbound.receive_eof(out));
        let going_away = self
            .going_away
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Acquire));
        if !going_away || matches!(end, Error::ConnectionClosed) {
            return Some(end);
        }
        // The server is shutting down and stopped our reads: say so, then
        // complete the close handshake like any other.
        side.state(Inbound::go_away);
        let _ = side.flush_all();
        let now = Instant::now();
        let close_timeout = self.close_timeout;
        let linger = self
            .linger
            .get_or_insert_with(|| Linger::new(now, close_timeout));
        // Gone quiet without answering: the close is as done as it will be.
        linger.is_over(now).then_some(Error::ConnectionClosed)
    }

    fn on_timeout<K: SendSide>(
        &mut self,
        side: &mut K,
        e: io::Error,
        read_started: Option<Instant>,
    ) -> Result<()> {
        let now = Instant::now();
        if let (Some(tick), Some(started)) = (self.tick, read_started) {
            if now.duration_since(started) < tick / 2 {
                // Not our clock: the caller's own timeout or non-blocking
                // mode. Theirs to handle, and no busy loop here.
                return Err(Error::Io(e));
            }
        }
        let inbound = &mut self.inbound;
        let (due, close_sent) =
            side.state(|out| (inbound.handle_timeout(out, now), out.close_sent()));
        match due {
            Err(e @ Error::Timeout(Timeout::Idle | Timeout::Keepalive)) => {
                // The close frame the timer queued goes out before we give up.
                let _ = side.flush_all();
                return Err(e);
            }
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        if self.tick.is_none() && !close_sent && !self.inbound.watches_silence() {
            // Nothing of ours is timed: the timeout is the caller's.
            return Err(Error::Io(e));
        }
        // A keepalive ping may have been queued.
        side.flush()?;
        Ok(())
    }
}
