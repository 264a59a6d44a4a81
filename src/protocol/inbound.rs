//! [`Inbound`]: the receiving half of a connection with everything receiving
//! sets off: the one reaction path (a pong for a ping, the close reply, the
//! close frame that fails the connection), the timers' view of the peer
//! (bytes and pongs arriving), and what the end of the peer's stream means.
//!
//! Every driver receives through it: [`Connection`](super::Connection) (which
//! pairs it with the [`Outgoing`] half), the blocking
//! [`WebSocket`](crate::WebSocket) and the split [`Reader`](crate::Reader),
//! which reaches its `Outgoing` through a lock and so decodes first (no lock
//! held) and reacts after.

use super::{
    Incoming, MessageRef, Outgoing, Piece, Received, ReceivedRef, SizeLimits, Streaming, Timers,
    WebSocketConfig,
};
use crate::error::{Error, Result};
use crate::frame::{CloseCode, ProtocolError, Role};
use std::io;
use std::time::Instant;

/// The reason a server's close frame gives when it shuts down (1001).
pub const GOING_AWAY: &str = "server shutting down";

/// What receiving does besides decoding, kept apart from the [`Incoming`]
/// decoder so that a message borrowed from the decoder can be reacted to.
#[derive(Debug)]
pub(crate) struct Reactions {
    timers: Option<Timers>,
    /// Bytes arrived since the timers last heard of it (for a driver that
    /// passes no time with its bytes).
    received_since_tick: bool,
}

impl Reactions {
    /// The one reaction path: what receiving `received` makes the connection
    /// send ([`Outgoing::react`]: a pong, the close reply, the close frame
    /// of a failure) and what the keepalive learns from it (a pong answers
    /// its ping).
    pub(crate) fn react(
        &mut self,
        out: &mut Outgoing,
        received: std::result::Result<&MessageRef<'_>, &ProtocolError>,
    ) {
        if let (Ok(MessageRef::Pong(_)), Some(timers)) = (received, self.timers.as_mut()) {
            timers.on_pong();
        }
        out.react(received);
    }

    /// Fails the connection for `e` (the close frame with its code is
    /// queued) and returns it as the caller's error.
    pub(crate) fn fail(&mut self, out: &mut Outgoing, e: ProtocolError) -> Error {
        self.react(out, Err(&e));
        Error::Protocol(e)
    }
}

/// The receiving half of a connection: an [`Incoming`] decoder, the
/// connection's [`Timers`] (if it has them) and the one reaction path,
/// applied to the sending half each call is given.
#[derive(Debug)]
pub struct Inbound {
    incoming: Incoming,
    reactions: Reactions,
    role: Role,
}

impl Inbound {
    /// A receiving half for `role` with `limits`, without timers.
    pub fn new(role: Role, limits: &SizeLimits) -> Inbound {
        Inbound {
            incoming: Incoming::new(role, limits),
            reactions: Reactions {
                timers: None,
                received_since_tick: false,
            },
            role,
        }
    }

    /// A receiving half with `config`'s limits and timers, starting at `now`.
    pub fn with_timers(role: Role, config: &WebSocketConfig, now: Instant) -> Inbound {
        let mut inbound = Inbound::new(role, &config.protocol);
        inbound.reactions.timers = Some(Timers::new(config, now));
        inbound
    }

    /// The decoder.
    pub fn incoming(&self) -> &Incoming {
        &self.incoming
    }

    /// The decoder, for a driver that decodes and reacts in two steps (see
    /// [`parts_mut`](Inbound::parts_mut)).
    pub(crate) fn incoming_mut(&mut self) -> &mut Incoming {
        &mut self.incoming
    }

    /// The decoder and the reaction path, apart: for a driver that decodes
    /// with no lock held and reacts under the lock of its sending half.
    pub(crate) fn parts_mut(&mut self) -> (&mut Incoming, &mut Reactions) {
        (&mut self.incoming, &mut self.reactions)
    }

    /// Adds the receiving half of a negotiated extension.
    pub fn add_extension(&mut self, decoder: Box<dyn super::extension::ExtensionDecoder>) {
        self.incoming.add_extension(decoder);
    }

    /// Bytes arrived; the timers hear of it at the next
    /// [`handle_timeout`](Inbound::handle_timeout) (a driver without a clock).
    pub fn mark_received(&mut self) {
        self.reactions.received_since_tick = true;
    }

    /// Bytes arrived at `now` (a driver that reads the clock anyway): the
    /// keepalive and idle timers start over from here.
    pub fn received_at(&mut self, now: Instant) {
        if let Some(timers) = self.reactions.timers.as_mut() {
            timers.on_bytes_received(now);
        }
    }

    /// Whether a timer cares when bytes arrive (keepalive or idle), so a
    /// driver can skip reading the clock when none does.
    pub fn watches_silence(&self) -> bool {
        self.reactions
            .timers
            .as_ref()
            .is_some_and(Timers::watches_silence)
    }

    /// When [`handle_timeout`](Inbound::handle_timeout) is next due.
    pub fn deadline(&self, out: &Outgoing) -> Option<Instant> {
        self.reactions.timers.as_ref()?.deadline(out)
    }

    /// Time has passed: keepalive pings, and the timeouts that close the
    /// connection (see [`Timers::handle_timeout`]).
    pub fn handle_timeout(&mut self, out: &mut Outgoing, now: Instant) -> Result<()> {
        let reactions = &mut self.reactions;
        let Some(timers) = reactions.timers.as_mut() else {
            return Ok(());
        };
        if std::mem::take(&mut reactions.received_since_tick) {
            timers.on_bytes_received(now);
        }
        timers.check_close_wait(out, now)?;
        timers.handle_timeout(out, now)
    }

    /// Starts, or checks, the wait for the peer's close after ours: also
    /// for a peer that keeps sending but never answers our close.
    pub fn check_close_wait(&mut self, out: &Outgoing, now: Instant) -> Result<()> {
        match self.reactions.timers.as_mut() {
            Some(timers) => timers.check_close_wait(out, now),
            None => Ok(()),
        }
    }

    /// The peer ended its stream (TCP FIN): after the close handshake (or
    /// the peer's close frame) that is the normal end,
    /// [`Error::ConnectionClosed`]; before it, the connection was cut off.
    pub fn receive_eof(&self, out: &Outgoing) -> Error {
        if out.is_closed() || out.close_received() || self.incoming.close_received() {
            Error::ConnectionClosed
        } else {
            Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection without a close frame",
            ))
        }
    }

    /// Whether the connection is over for its owner (RFC 6455 §7.1.1): the
    /// close handshake is complete (or the connection failed) and, for a
    /// client, the server has closed TCP too (`peer_ended`): the server
    /// closes TCP first, right after the close handshake, and a client
    /// waits for that.
    pub fn is_over(&self, out: &Outgoing, peer_ended: bool) -> bool {
        out.is_closed() && (self.role == Role::Server || peer_ended)
    }

    /// A server going away: queues close 1001 (if no close was sent), the
    /// same on every engine.
    pub fn go_away(out: &mut Outgoing) {
        out.close_with(CloseCode::GOING_AWAY, GOING_AWAY);
    }

    fn refuse_after_failure(out: &Outgoing) -> Result<()> {
        if out.failed() {
            return Err(Error::AlreadyClosed);
        }
        Ok(())
    }

    /// See [`Connection::receive`](super::Connection::receive).
    pub fn receive(&mut self, out: &mut Outgoing, data: &[u8]) -> Result<Received> {
        Inbound::refuse_after_failure(out)?;
        self.reactions.received_since_tick |= !data.is_empty();
        match self.incoming.receive(data) {
            Ok(received) => {
                if let Some(message) = &received.message {
                    self.reactions.react(out, Ok(&MessageRef::from(message)));
                }
                Ok(received)
            }
            Err(e) => Err(self.reactions.fail(out, e)),
        }
    }

    /// See [`Connection::receive_in_place`](super::Connection::receive_in_place).
    pub fn receive_in_place<'a>(
        &'a mut self,
        out: &mut Outgoing,
        data: &'a mut [u8],
    ) -> Result<ReceivedRef<'a>> {
        Inbound::refuse_after_failure(out)?;
        let Inbound {
            incoming,
            reactions,
            ..
        } = self;
        reactions.received_since_tick |= !data.is_empty();
        let received = match incoming.receive_in_place(data) {
            Ok(received) => received,
            Err(e) => return Err(reactions.fail(out, e)),
        };
        if let Some(message) = &received.message {
            reactions.react(out, Ok(message));
        }
        Ok(received)
    }

    /// See [`Connection::receive_with`](super::Connection::receive_with).
    pub fn receive_with<R>(
        &mut self,
        out: &mut Outgoing,
        data: &mut [u8],
        reply: impl FnOnce(MessageRef<'_>, &mut Outgoing) -> R,
    ) -> Result<(usize, Option<R>)> {
        Inbound::refuse_after_failure(out)?;
        let Inbound {
            incoming,
            reactions,
            ..
        } = self;
        reactions.received_since_tick |= !data.is_empty();
        let found = incoming
            .receive_located(data)
            .and_then(|(consumed, located)| match located {
                Some(at) => Ok((consumed, Some(incoming.view(data, at, 0)?))),
                None => Ok((consumed, None)),
            });
        let (consumed, message) = match found {
            Ok(found) => found,
            Err(e) => return Err(reactions.fail(out, e)),
        };
        let Some(message) = message else {
            return Ok((consumed, None));
        };
        reactions.react(out, Ok(&message));
        let replied = reply(message, out);
        // The message was lent to `reply` only: an idle connection keeps
        // no copy of its last (fragmented) message.
        self.incoming.release_held();
        Ok((consumed, Some(replied)))
    }

    /// See [`Connection::payload_space`](super::Connection::payload_space).
    pub fn payload_space(&mut self, out: &Outgoing, min: usize) -> Option<&mut [u8]> {
        if out.failed() {
            return None;
        }
        self.incoming.payload_space(min)
    }

    /// See [`Connection::payload_filled_with`](super::Connection::payload_filled_with).
    pub fn payload_filled_with<R>(
        &mut self,
        out: &mut Outgoing,
        n: usize,
        reply: impl FnOnce(MessageRef<'_>, &mut Outgoing) -> R,
    ) -> Result<Option<R>> {
        self.reactions.received_since_tick |= n > 0;
        match self.incoming.payload_filled(n) {
            Ok(Received {
                message: Some(message),
                ..
            }) => {
                let message = MessageRef::from(&message);
                self.reactions.react(out, Ok(&message));
                Ok(Some(reply(message, out)))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(self.reactions.fail(out, e)),
        }
    }

    /// See [`Connection::receive_piece`](super::Connection::receive_piece).
    pub fn receive_piece<'a>(
        &'a mut self,
        out: &mut Outgoing,
        data: &'a mut [u8],
        streaming: Streaming,
    ) -> Result<(usize, Option<Piece<'a>>)> {
        Inbound::refuse_after_failure(out)?;
        let Inbound {
            incoming,
            reactions,
            ..
        } = self;
        reactions.received_since_tick |= !data.is_empty();
        let (consumed, at) = match incoming.receive_piece(data, streaming) {
            Ok(found) => found,
            Err(e) => return Err(reactions.fail(out, e)),
        };
        let Some(at) = at else {
            return Ok((consumed, None));
        };
        let piece = match incoming.view_piece(data, at, 0) {
            Ok(piece) => piece,
            Err(e) => return Err(reactions.fail(out, e)),
        };
        if let Piece::Message(message) = &piece {
            reactions.react(out, Ok(message));
        }
        Ok((consumed, Some(piece)))
    }
}
