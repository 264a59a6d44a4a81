//! The sans-I/O protocol core: bytes in, messages out; messages in, bytes out.
//!
//! No sockets and no clock: a [`Connection`] is driven entirely by the bytes
//! and calls its owner gives it, so the same code runs under the blocking
//! [`WebSocket`](crate::WebSocket), under an event loop of your own, in tests
//! and in the fuzzers.
//!
//! ```
//! use rfc6455::protocol::{Config, Connection, Message};
//! use rfc6455::frame::Role;
//!
//! let mut server = Connection::new(Role::Server, Config::default());
//! // RFC 6455 §5.7: a masked "Hello" from a client.
//! let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let mut messages = Vec::new();
//! for message in server.feed(&wire) {
//!     messages.push(message.unwrap());
//! }
//! assert_eq!(messages, [Message::Text("Hello".into())]);
//!
//! // Echo it: the server's frame is unmasked.
//! server.send(&messages[0]).unwrap();
//! assert_eq!(server.data_to_send(), b"\x81\x05Hello");
//! ```

mod incoming;
mod outgoing;

pub use incoming::{Incoming, Received, ReceivedRef};
pub use outgoing::Outgoing;

use crate::frame::{CloseCode, CloseFrame, OpCode, Role};
use crate::{Error, Result};

/// Limits on what a peer may send. Checked against each frame's declared
/// length before any of its payload is buffered (RFC 6455 §10.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted; larger ones fail the connection
    /// with 1009. Default 16 MiB (the largest Autobahn case message).
    pub max_frame_size: usize,
    /// The largest message (all fragments together) accepted; larger ones
    /// fail the connection with 1009. Default 64 MiB.
    pub max_message_size: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
        }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Config {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Config {
        self.max_message_size = bytes;
        self
    }
}

/// A message, or a control frame, received or to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (always valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping (payload of at most 125 bytes). Received pings are answered
    /// automatically.
    Ping(Vec<u8>),
    /// A pong (payload of at most 125 bytes).
    Pong(Vec<u8>),
    /// A close frame, with its code and reason if it had any.
    Close(Option<CloseFrame>),
}

impl Message {
    /// Whether this is a text or binary message (not a control frame).
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(d) | Message::Ping(d) | Message::Pong(d) => d.len(),
            Message::Close(c) => c.as_ref().map_or(0, |c| 2 + c.reason.len()),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(d) | Message::Ping(d) | Message::Pong(d) => d,
            Message::Close(c) => c.as_ref().map_or(&[], |c| c.reason.as_bytes()),
        }
    }
}

/// A message or control frame borrowed from the buffer it was decoded in,
/// returned by [`Connection::receive_in_place`]: no allocation, no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// A text message (always valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping (answered automatically by a [`Connection`]).
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame, with its code and reason if it had any.
    Close(Option<CloseFrame>),
}

impl MessageRef<'_> {
    /// An owned copy.
    pub fn to_message(&self) -> Message {
        match self {
            MessageRef::Text(t) => Message::Text((*t).to_owned()),
            MessageRef::Binary(d) => Message::Binary(d.to_vec()),
            MessageRef::Ping(d) => Message::Ping(d.to_vec()),
            MessageRef::Pong(d) => Message::Pong(d.to_vec()),
            MessageRef::Close(c) => Message::Close(c.clone()),
        }
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    fn from(message: &'a Message) -> MessageRef<'a> {
        match message {
            Message::Text(t) => MessageRef::Text(t),
            Message::Binary(d) => MessageRef::Binary(d),
            Message::Ping(d) => MessageRef::Ping(d),
            Message::Pong(d) => MessageRef::Pong(d),
            Message::Close(c) => MessageRef::Close(c.clone()),
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Message {
        Message::Binary(data)
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Message {
        Message::Binary(data.to_vec())
    }
}

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

/// A whole WebSocket connection without I/O: an [`Incoming`] decoder plus an
/// [`Outgoing`] encoder, with the automatic replies (pong, close echo, close
/// on error) wired between them.
#[derive(Debug)]
pub struct Connection {
    incoming: Incoming,
    outgoing: Outgoing,
}

impl Connection {
    /// A connection for `role`, open (the handshake is done elsewhere).
    pub fn new(role: Role, config: Config) -> Connection {
        Connection {
            incoming: Incoming::new(role, &config),
            outgoing: Outgoing::new(role),
        }
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
    /// [`Incoming::receive`]). A ping queues its pong and a close frame
    /// queues the close reply; a protocol error queues a close frame with
    /// the error's code and is returned as [`Error::Protocol`].
    pub fn receive(&mut self, data: &[u8]) -> Result<Received> {
        if self.outgoing.failed() {
            return Err(Error::AlreadyClosed);
        }
        match self.incoming.receive(data) {
            Ok(received) => {
                if let Some(message) = &received.message {
                    self.outgoing.on_received(message);
                }
                Ok(received)
            }
            Err(e) => {
                self.outgoing.on_error(&e);
                Err(Error::Protocol(e))
            }
        }
    }

    /// Like [`receive`](Connection::receive), without allocating: a whole
    /// unfragmented message or control frame found in `data` is unmasked in
    /// place and returned borrowed from `data`. Anything else (a fragmented
    /// message, a frame split across calls, a close frame) goes through
    /// [`receive`](Connection::receive) and is returned borrowed from the
    /// connection until the next call.
    ///
    /// `data` is modified: payloads are unmasked where they lie. This is the
    /// fast path for a driver that owns its read buffer; decoding 20-byte
    /// masked text frames it takes about half the time of `receive`, which
    /// allocates each message (see `benches/codec.rs`).
    ///
    /// ```
    /// use rfc6455::protocol::{Config, Connection, MessageRef};
    /// use rfc6455::frame::Role;
    ///
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// // RFC 6455 §5.7: a masked "Hello" from a client.
    /// let mut wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// let received = server.receive_in_place(&mut wire).unwrap();
    /// assert_eq!(received.consumed, 11);
    /// assert_eq!(received.message, Some(MessageRef::Text("Hello")));
    /// ```
    pub fn receive_in_place<'a>(&'a mut self, data: &'a mut [u8]) -> Result<ReceivedRef<'a>> {
        if self.outgoing.failed() {
            return Err(Error::AlreadyClosed);
        }
        match self.incoming.receive_in_place(data) {
            Ok(received) => {
                match &received.message {
                    Some(MessageRef::Ping(payload)) => self.outgoing.on_ping(payload),
                    Some(MessageRef::Close(frame)) => {
                        self.outgoing.on_received(&Message::Close(frame.clone()))
                    }
                    _ => {}
                }
                Ok(received)
            }
            Err(e) => {
                self.outgoing.on_error(&e);
                Err(Error::Protocol(e))
            }
        }
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
        self.outgoing.consume(n);
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

    /// The halves, for drivers that split reading and writing.
    pub fn into_parts(self) -> (Incoming, Outgoing) {
        (self.incoming, self.outgoing)
    }

    /// The receiving half.
    pub fn incoming(&self) -> &Incoming {
        &self.incoming
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
