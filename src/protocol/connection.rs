//! [`Connection`]: the whole protocol state machine without I/O.

use super::extension::{ExtensionDecoder, ExtensionEncoder};
use super::{
    Inbound, Message, MessageRef, Outgoing, Piece, Received, ReceivedRef, SizeLimits, Streaming,
    WebSocketConfig,
};
use crate::error::{Error, Result};
use crate::frame::{CloseCode, CloseFrame, OpCode, Role};
use std::time::Instant;

/// Where a connection is in its life (RFC 6455 §4, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// Both close frames have been exchanged; the TCP connection can close.
    Closed,
    /// A protocol error failed the connection; a close frame with its code
    /// was queued.
    Failed,
}

/// A whole WebSocket connection without I/O: an [`Inbound`] half (the
/// [`Incoming`](super::Incoming) decoder, the connection's timers if it has
/// them, and the one reaction path: pong, close echo, close on error) and an
/// [`Outgoing`] encoder it reacts on.
#[derive(Debug)]
pub struct Connection {
    inbound: Inbound,
    outgoing: Outgoing,
}

impl Connection {
    /// A connection for `role`, open (the handshake is done elsewhere),
    /// without timers.
    pub fn new(role: Role, config: SizeLimits) -> Connection {
        Connection {
            inbound: Inbound::new(role, &config),
            outgoing: Outgoing::new(role),
        }
    }

    /// A connection with `config`'s limits and timers (keepalive, idle and
    /// close timeouts), starting at `now`. Call
    /// [`handle_timeout`](Connection::handle_timeout) at
    /// [`deadline`](Connection::deadline) (or more often): it sends keepalive
    /// pings and closes on timeouts. Bytes count as received when the next
    /// `handle_timeout` runs, so a ping may come up to one interval late, but
    /// never early.
    ///
    /// ```
    /// use rfc6455::protocol::{Connection, WebSocketConfig};
    /// use rfc6455::{Keepalive, Role};
    /// use std::time::{Duration, Instant};
    ///
    /// let second = Duration::from_secs(1);
    /// let config = WebSocketConfig::default().keepalive(Some(Keepalive::new(10 * second, 5 * second)));
    /// let start = Instant::now();
    /// let mut conn = Connection::with_timers(Role::Server, &config, start);
    /// assert_eq!(conn.deadline(), Some(start + 10 * second));
    /// // Ten silent seconds later: a ping goes out.
    /// conn.handle_timeout(start + 10 * second).unwrap();
    /// assert_eq!(conn.data_to_send(), b"\x89\x09keepalive");
    /// // No pong within five more: the connection closes with 1011.
    /// assert!(conn.handle_timeout(start + 15 * second).is_err());
    /// ```
    pub fn with_timers(role: Role, config: &WebSocketConfig, now: Instant) -> Connection {
        Connection {
            inbound: Inbound::with_timers(role, config, now),
            outgoing: Outgoing::new(role),
        }
    }

    /// A connection with timers (see [`with_timers`](Connection::with_timers))
    /// and the extensions the handshake negotiated installed: what a driver
    /// builds after a 101. `negotiated` comes from
    /// [`handshake::server::accept`](crate::handshake::server::accept) or
    /// [`handshake::client::verify_response`](crate::handshake::client::verify_response).
    ///
    /// ```
    /// use rfc6455::handshake::Negotiated;
    /// use rfc6455::protocol::{Connection, WebSocketConfig};
    /// use rfc6455::{Keepalive, Role};
    /// use std::time::{Duration, Instant};
    ///
    /// let every = Duration::from_secs(20);
    /// let config = WebSocketConfig::default().keepalive(Some(Keepalive::new(every, every)));
    /// let now = Instant::now();
    /// let conn = Connection::after_handshake(Role::Server, &config, &Negotiated::default(), now);
    /// assert_eq!(conn.deadline(), Some(now + every)); // the first keepalive ping
    /// ```
    pub fn after_handshake(
        role: Role,
        config: &WebSocketConfig,
        negotiated: &crate::handshake::Negotiated,
        now: Instant,
    ) -> Connection {
        let mut conn = Connection::with_timers(role, config, now);
        if let Some((decoder, encoder)) = negotiated_extension(role, negotiated, config) {
            conn.add_extension(decoder, encoder);
        }
        conn
    }

    /// Adds a negotiated extension, both halves (see [`extension`](super::extension)).
    pub fn add_extension(
        &mut self,
        decoder: Box<dyn ExtensionDecoder>,
        encoder: Box<dyn ExtensionEncoder>,
    ) {
        self.inbound.add_extension(decoder);
        self.outgoing.add_extension(encoder);
    }

    /// When [`handle_timeout`](Connection::handle_timeout) is next due;
    /// `None` without timers or when nothing is timed.
    pub fn deadline(&self) -> Option<Instant> {
        self.inbound.deadline(&self.outgoing)
    }

    /// Tells the connection that time has passed: sends a keepalive ping when
    /// the peer was silent for the interval; fails with
    /// [`Error::Timeout`] (after queueing the close frame the timer calls
    /// for) when a pong, the peer's close or any sign of life is overdue.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        self.inbound.handle_timeout(&mut self.outgoing, now)
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.outgoing.role()
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.outgoing.state()
    }

    /// Decodes bytes until one message completes or the input runs out (see
    /// [`Incoming::receive`](super::Incoming::receive)). A ping queues its pong and a close frame
    /// queues the close reply; a protocol error queues a close frame with
    /// the error's code and is returned as [`Error::Protocol`].
    pub fn receive(&mut self, data: &[u8]) -> Result<Received> {
        self.inbound.receive(&mut self.outgoing, data)
    }

    /// Like [`receive`](Connection::receive), without allocating: a whole
    /// unfragmented message or control frame found in `data` is unmasked in
    /// place and returned borrowed from `data`. Anything else (a fragmented
    /// message, a frame split across calls, a close frame) goes through
    /// [`receive`](Connection::receive) and is returned borrowed from the
    /// connection until the next call.
    ///
    /// `data` is modified: payloads are unmasked where they lie. This is the
    /// fast path for a driver that owns its read buffer: no allocation and
    /// no copy per message, where `receive` allocates each one.
    ///
    /// ```
    /// use rfc6455::protocol::{SizeLimits, Connection, MessageRef};
    /// use rfc6455::frame::Role;
    ///
    /// let mut server = Connection::new(Role::Server, SizeLimits::default());
    /// // RFC 6455 §5.7: a masked "Hello" from a client.
    /// let mut wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// let received = server.receive_in_place(&mut wire).unwrap();
    /// assert_eq!(received.consumed, 11);
    /// assert_eq!(received.message, Some(MessageRef::Text("Hello")));
    /// ```
    pub fn receive_in_place<'a>(&'a mut self, data: &'a mut [u8]) -> Result<ReceivedRef<'a>> {
        self.inbound.receive_in_place(&mut self.outgoing, data)
    }

    /// Like [`receive_in_place`](Connection::receive_in_place), handing the
    /// message to `reply` together with the sending half, so an answer can be
    /// queued while the message is still borrowed from `data` (an echo
    /// without a copy of the message). Pings are answered and close frames
    /// replied to before `reply` runs. Returns the bytes used and what
    /// `reply` returned, if a message completed.
    ///
    /// ```
    /// use rfc6455::protocol::{Connection, SizeLimits};
    /// use rfc6455::frame::Role;
    ///
    /// let mut server = Connection::new(Role::Server, SizeLimits::default());
    /// let mut wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// let (used, echoed) = server
    ///     .receive_with(&mut wire, |message, out| out.encode_message_ref(message))
    ///     .unwrap();
    /// assert_eq!(used, 11);
    /// assert!(echoed.unwrap().is_ok());
    /// assert_eq!(server.data_to_send(), b"\x81\x05Hello");
    /// ```
    pub fn receive_with<R>(
        &mut self,
        data: &mut [u8],
        reply: impl FnOnce(MessageRef<'_>, &mut Outgoing) -> R,
    ) -> Result<(usize, Option<R>)> {
        self.inbound.receive_with(&mut self.outgoing, data, reply)
    }

    /// Space to read the rest of a large data frame's payload into straight
    /// from the transport, skipping a copy (see [`Incoming::payload_space`](super::Incoming::payload_space)
    /// for when there is some and how it is bounded). Fill a prefix, then
    /// call [`payload_filled_with`](Connection::payload_filled_with), also
    /// when nothing could be read.
    pub fn payload_space(&mut self, min: usize) -> Option<&mut [u8]> {
        self.inbound.payload_space(&self.outgoing, min)
    }

    /// Takes in `n` bytes written into the slice
    /// [`payload_space`](Connection::payload_space) returned; a message they
    /// complete goes to `reply` with the sending half, as in
    /// [`receive_with`](Connection::receive_with).
    pub fn payload_filled_with<R>(
        &mut self,
        n: usize,
        reply: impl FnOnce(MessageRef<'_>, &mut Outgoing) -> R,
    ) -> Result<Option<R>> {
        self.inbound
            .payload_filled_with(&mut self.outgoing, n, reply)
    }

    /// Like [`receive_in_place`](Connection::receive_in_place), delivering
    /// the data messages `streaming` selects in pieces as they arrive: a
    /// [`Piece::Start`], [`Piece::Data`] pieces, a [`Piece::End`], with pings
    /// answered and control frames returned in between. A streamed message
    /// costs one piece of memory, whatever its size (see
    /// [`Incoming::receive_piece`](super::Incoming::receive_piece) for the limits that still apply).
    ///
    /// ```
    /// use rfc6455::protocol::{SizeLimits, Connection, MessageRef, Piece, Streaming};
    /// use rfc6455::{frame::OpCode, Role};
    ///
    /// let mut client = Connection::new(Role::Client, SizeLimits::default());
    /// // A binary message in two fragments with a ping between them.
    /// let mut wire = vec![0x02, 0x03, 1, 2, 3, 0x89, 0x00, 0x80, 0x02, 4, 5];
    /// let mut input = &mut wire[..];
    /// let mut got = Vec::new();
    /// while !input.is_empty() {
    ///     let (used, piece) = client.receive_piece(input, Streaming::Always).unwrap();
    ///     match piece {
    ///         Some(Piece::Start(opcode)) => got.push(format!("start {opcode:?}")),
    ///         Some(Piece::Data(bytes)) => got.push(format!("{bytes:?}")),
    ///         Some(Piece::Message(MessageRef::Ping(_))) => got.push("ping".into()),
    ///         Some(Piece::End) => got.push("end".into()),
    ///         _ => {}
    ///     }
    ///     input = &mut input[used..];
    /// }
    /// // The last piece's end is reported by the next call.
    /// if let (_, Some(Piece::End)) = client.receive_piece(&mut [], Streaming::Always).unwrap() {
    ///     got.push("end".into());
    /// }
    /// assert_eq!(got, ["start Binary", "[1, 2, 3]", "ping", "[4, 5]", "end"]);
    /// assert!(!client.data_to_send().is_empty()); // the pong
    /// ```
    pub fn receive_piece<'a>(
        &'a mut self,
        data: &'a mut [u8],
        streaming: Streaming,
    ) -> Result<(usize, Option<Piece<'a>>)> {
        self.inbound
            .receive_piece(&mut self.outgoing, data, streaming)
    }

    /// Feeds `data` and iterates over every message it completes. After an
    /// error the iterator ends.
    pub fn feed<'a>(&'a mut self, data: &'a [u8]) -> Feed<'a> {
        Feed {
            connection: self,
            data,
            done: false,
        }
    }

    /// Queues a message (see [`Outgoing::encode_message`]).
    pub fn send(&mut self, message: &Message) -> Result<()> {
        self.outgoing.encode_message(message)
    }

    /// Queues one frame, for sending a message in fragments: a text or binary
    /// frame with `fin == false`, then continuation frames, the last with
    /// `fin == true`. Control frames may go in between.
    pub fn send_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        self.outgoing.encode_frame(opcode, fin, payload)
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.outgoing.close(Some(&CloseFrame {
            code,
            reason: reason.to_owned(),
        }))
    }

    /// Bytes to write to the peer.
    pub fn data_to_send(&self) -> &[u8] {
        self.outgoing.pending()
    }

    /// Marks `n` bytes of [`data_to_send`](Connection::data_to_send) as written.
    pub fn advance(&mut self, n: usize) {
        self.outgoing.advance(n);
    }

    /// Takes every byte to write.
    pub fn take_data_to_send(&mut self) -> Vec<u8> {
        self.outgoing.take_pending()
    }

    /// RFC 6455 §7.1.1: once the close handshake is done (or the connection
    /// failed) and the pending bytes are written, the server closes the TCP
    /// connection first; a client waits for the server to do so.
    pub fn should_close_transport(&self) -> bool {
        self.outgoing.is_closed() && self.outgoing.pending().is_empty()
    }

    /// The end of the peer's stream (TCP FIN): what it means (see
    /// [`Inbound::receive_eof`]): [`Error::ConnectionClosed`] after a close
    /// frame, an [`Error::Io`] of kind `UnexpectedEof` before one.
    pub fn receive_eof(&self) -> Error {
        self.inbound.receive_eof(&self.outgoing)
    }

    /// A server going away: queues close 1001 (see [`Inbound::go_away`]).
    pub fn go_away(&mut self) {
        Inbound::go_away(&mut self.outgoing);
    }

    /// The halves, for drivers that split reading and writing.
    pub fn into_parts(self) -> (Inbound, Outgoing) {
        (self.inbound, self.outgoing)
    }

    /// The receiving half's decoder.
    pub fn incoming(&self) -> &super::Incoming {
        self.inbound.incoming()
    }

    /// The receiving half.
    pub fn inbound(&self) -> &Inbound {
        &self.inbound
    }

    /// The sending half.
    pub fn outgoing_mut(&mut self) -> &mut Outgoing {
        &mut self.outgoing
    }
}

/// Iterator returned by [`Connection::feed`].
#[derive(Debug)]
pub struct Feed<'a> {
    connection: &'a mut Connection,
    data: &'a [u8],
    done: bool,
}

impl Iterator for Feed<'_> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Result<Message>> {
        while !self.done {
            match self.connection.receive(self.data) {
                Ok(Received { consumed, message }) => {
                    self.data = &self.data[consumed..];
                    if self.data.is_empty() {
                        self.done = true;
                    }
                    if let Some(message) = message {
                        return Some(Ok(message));
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Both halves of the extension a handshake negotiated, if the crate
/// implements it: installed by [`Connection::after_handshake`] only, the one
/// install point every driver goes through. Today that is permessage-deflate
/// (RFC 7692), with the `deflate` feature.
fn negotiated_extension(
    role: Role,
    negotiated: &crate::handshake::Negotiated,
    config: &WebSocketConfig,
) -> Option<(Box<dyn ExtensionDecoder>, Box<dyn ExtensionEncoder>)> {
    #[cfg(feature = "deflate")]
    return super::deflate::from_negotiated(role, negotiated, config.deflate.as_ref());
    #[cfg(not(feature = "deflate"))]
    {
        let _ = (role, negotiated, config);
        None
    }
}
