//! [`WebSocket`]: one owner reads and writes.

use super::read_buf::ReadBuf;
use super::recv::{RecvSide, SendSide};
use super::split::{Reader, Writer};
use super::stream::{check_data_opcode, send_fragments, MessageReader, Pulling, SOURCE_FAILED};
use super::write::{flush_outgoing, write_direct, MAX_QUEUED};
use crate::error::Result;
use crate::frame::{CloseCode, CloseFrame, OpCode, Role};
use crate::handshake::Negotiated;
use crate::protocol::{
    Connection, Framed, Message, MessageRef, Outgoing, Piece, PreparedMessage, State, Streaming,
    WebSocketConfig, DIRECT_WRITE,
};
use crate::transport::Transport;
use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A WebSocket connection over a blocking stream: read messages, write
/// messages, close. Pings are answered, close frames echoed and protocol
/// errors turned into the right close frame automatically.
///
/// ```
/// use rfc6455::{Message, Role, WebSocket};
/// use std::io::Cursor;
///
/// // A server reading a masked "Hello" (RFC 6455 §5.7) from an in-memory stream.
/// let wire = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let mut ws = WebSocket::from_raw_socket(Cursor::new(wire), Role::Server, Default::default());
/// assert_eq!(ws.read().unwrap(), Message::Text("Hello".into()));
/// ```
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    outgoing: Outgoing,
    recv: RecvSide,
    config: WebSocketConfig,
    subprotocol: Option<String>,
}

/// The sending side of a [`WebSocket`], borrowed next to a message that
/// [`WebSocket::read_ref`] lends from the read buffer: answer it (echo it,
/// say) without copying it first.
#[derive(Debug)]
pub struct Sender<'a, S> {
    stream: &'a mut S,
    outgoing: &'a mut Outgoing,
}

impl<S: Read + Write> SendSide for Sender<'_, S> {
    fn read(&mut self, rbuf: &mut ReadBuf) -> io::Result<usize> {
        rbuf.fill(self.stream)
    }
    fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
    fn state<T>(&mut self, f: impl FnOnce(&mut Outgoing) -> T) -> T {
        f(self.outgoing)
    }
    fn flush(&mut self) -> io::Result<()> {
        flush_outgoing(self.stream, self.outgoing)
    }
    fn flush_all(&mut self) -> io::Result<()> {
        flush_outgoing(self.stream, self.outgoing)
    }
    fn batches_replies(&self) -> bool {
        true
    }
}

impl<S: Write> Sender<'_, S> {
    /// Queues a message (see [`WebSocket::write`]), borrowed: a large payload
    /// is written from where it lies (copied once, to be masked, by a client).
    pub fn write(&mut self, message: MessageRef<'_>) -> Result<()> {
        match message {
            MessageRef::Close(frame) => self.close_frame(frame.as_ref()),
            MessageRef::Ping(p) | MessageRef::Pong(p) => {
                self.outgoing.encode_frame(message.opcode(), true, p)?;
                // Control frames are small and usually urgent.
                Ok(flush_outgoing(self.stream, self.outgoing)?)
            }
            MessageRef::Text(t) => self.data(OpCode::Text, true, Cow::Borrowed(t.as_bytes())),
            MessageRef::Binary(d) => self.data(OpCode::Binary, true, Cow::Borrowed(d)),
        }
    }

    /// The one write path for a data frame: small frames are queued (and
    /// flushed once too much is), large ones go out at once with one
    /// vectored write behind what is queued.
    fn data(&mut self, opcode: OpCode, fin: bool, payload: Cow<'_, [u8]>) -> Result<()> {
        let framed = self
            .outgoing
            .frame_data(opcode, fin, payload, DIRECT_WRITE)?;
        self.write_framed(framed)
    }

    /// Queues a message prepared for many connections, sharing its
    /// compressed form where the negotiated compression allows (see
    /// [`PreparedMessage`]); written like [`write`](Sender::write)'s.
    pub fn write_prepared(&mut self, prepared: &PreparedMessage) -> Result<()> {
        let framed = self.outgoing.frame_prepared(prepared, DIRECT_WRITE)?;
        self.write_framed(framed)
    }

    fn write_framed(&mut self, framed: Framed<'_>) -> Result<()> {
        if let Framed::Queued = framed {
            if self.outgoing.pending().len() >= MAX_QUEUED {
                flush_outgoing(self.stream, self.outgoing)?;
            }
            return Ok(());
        }
        // Zero-copy: an owned payload is masked in place (a client's).
        let framed = framed.into_masked();
        let queued = self.outgoing.pending().len();
        if let Err(e) = write_direct(self.stream, self.outgoing.pending(), &framed) {
            // Part of the frame may be out: the stream is no longer in sync.
            self.outgoing.on_io_error();
            return Err(e.into());
        }
        self.outgoing.advance(queued);
        Ok(())
    }

    /// Queues one frame of a fragmented message (see
    /// [`WebSocket::write_frame`]): for relaying a streamed message piece by
    /// piece as it arrives.
    pub fn write_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        if opcode.is_control() {
            self.outgoing.encode_frame(opcode, fin, payload)?;
            return self.flush();
        }
        self.data(opcode, fin, Cow::Borrowed(payload))
    }

    fn close_frame(&mut self, frame: Option<&CloseFrame>) -> Result<()> {
        self.outgoing.close(frame)?;
        Ok(flush_outgoing(self.stream, self.outgoing)?)
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<()> {
        Ok(flush_outgoing(self.stream, self.outgoing)?)
    }
}

impl<S: Read + Write> WebSocket<S> {
    /// Wraps a stream on which the handshake is already done.
    pub fn from_raw_socket(stream: S, role: Role, config: WebSocketConfig) -> WebSocket<S> {
        WebSocket::from_partially_read(stream, Vec::new(), role, config)
    }

    /// Like [`from_raw_socket`](WebSocket::from_raw_socket), with bytes
    /// already read past the handshake (the peer's first frames), which are
    /// processed before anything is read from the stream.
    pub fn from_partially_read(
        stream: S,
        leftover: Vec<u8>,
        role: Role,
        config: WebSocketConfig,
    ) -> WebSocket<S> {
        let connection = Connection::with_timers(role, &config, Instant::now());
        WebSocket::from_connection(stream, connection, leftover, config)
    }

    /// A connection as the opening handshake left it: `leftover` bytes read
    /// past the handshake, and what it `negotiated` (the subprotocol, and
    /// permessage-deflate if it was agreed: with the `deflate` feature, its
    /// halves are installed, with `config.deflate`'s level and minimum
    /// size, by [`Connection::after_handshake`], the one place that does).
    pub fn after_handshake(
        stream: S,
        leftover: Vec<u8>,
        role: Role,
        negotiated: Negotiated,
        config: WebSocketConfig,
    ) -> WebSocket<S> {
        let connection = Connection::after_handshake(role, &config, &negotiated, Instant::now());
        let mut ws = WebSocket::from_connection(stream, connection, leftover, config);
        ws.set_subprotocol(negotiated.subprotocol);
        ws
    }

    /// The blocking driver around a sans-I/O `connection` (its pending
    /// output, a 101 say, goes out with the first flush), with `leftover`
    /// bytes already read from `stream`.
    pub(crate) fn from_connection(
        stream: S,
        connection: Connection,
        leftover: Vec<u8>,
        config: WebSocketConfig,
    ) -> WebSocket<S> {
        let (inbound, outgoing) = connection.into_parts();
        WebSocket {
            stream,
            outgoing,
            recv: RecvSide::new(inbound, config.close_timeout, leftover),
            config,
            subprotocol: None,
        }
    }

    /// Records the subprotocol the handshake selected.
    pub(crate) fn set_subprotocol(&mut self, subprotocol: Option<String>) {
        self.subprotocol = subprotocol;
    }

    /// The subprotocol the handshake selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    fn sender(&mut self) -> Sender<'_, S> {
        Sender {
            stream: &mut self.stream,
            outgoing: &mut self.outgoing,
        }
    }

    /// Reads the next message or control frame.
    ///
    /// Before blocking on the stream it writes everything queued, so replies
    /// to a batch of incoming frames leave in one write. Returns
    /// [`Error::ConnectionClosed`](crate::Error::ConnectionClosed) once the
    /// close handshake is complete (after returning the peer's
    /// [`Message::Close`]), and [`Error::Protocol`](crate::Error::Protocol)
    /// after failing the connection with a close frame.
    ///
    /// After `ConnectionClosed` (or a failure), every later call returns
    /// [`Error::AlreadyClosed`](crate::Error::AlreadyClosed). The stream is
    /// closed when the `WebSocket` is dropped: drop it after
    /// `ConnectionClosed` (some peers wait for our side of TCP to close
    /// before they release the connection).
    pub fn read(&mut self) -> Result<Message> {
        let mut sender = Sender {
            stream: &mut self.stream,
            outgoing: &mut self.outgoing,
        };
        self.recv.read(&mut sender)
    }

    /// Like [`read`](WebSocket::read), without allocating: a message that
    /// arrived whole in one read is returned borrowed from the read buffer
    /// (unmasked in place), next to the [`Sender`] to answer it with.
    ///
    /// ```
    /// use rfc6455::{protocol::MessageRef, Role, WebSocket};
    /// use std::io::Cursor;
    ///
    /// let wire = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// let mut ws = WebSocket::from_raw_socket(Cursor::new(wire), Role::Server, Default::default());
    /// let (message, mut sender) = ws.read_ref().unwrap();
    /// assert_eq!(message, MessageRef::Text("Hello"));
    /// sender.write(message).unwrap(); // an echo, not copied
    /// ```
    pub fn read_ref(&mut self) -> Result<(MessageRef<'_>, Sender<'_, S>)> {
        let mut sender = Sender {
            stream: &mut self.stream,
            outgoing: &mut self.outgoing,
        };
        let message = self.recv.read_ref(&mut sender)?;
        Ok((message, sender))
    }

    /// Like [`read_ref`](WebSocket::read_ref), delivering the data messages
    /// `streaming` selects in pieces as they arrive ([`Piece::Start`],
    /// [`Piece::Data`]…, [`Piece::End`]) instead of whole: what a relay or an
    /// echo of large messages needs, in memory that does not grow with the
    /// message. See [`Incoming::receive_piece`](crate::protocol::Incoming::receive_piece).
    ///
    /// ```
    /// use rfc6455::protocol::{Piece, Streaming};
    /// use rfc6455::{Role, WebSocket};
    /// use std::io::Cursor;
    ///
    /// // A server receives a 3-byte binary message, streamed (masked, key 0).
    /// let wire = vec![0x82, 0x83, 0, 0, 0, 0, 1, 2, 3];
    /// let mut ws = WebSocket::from_raw_socket(Cursor::new(wire), Role::Server, Default::default());
    /// let (piece, _sender) = ws.read_piece(Streaming::Always).unwrap();
    /// assert!(matches!(piece, Piece::Start(_)));
    /// let (piece, _sender) = ws.read_piece(Streaming::Always).unwrap();
    /// assert_eq!(piece, Piece::Data(&[1, 2, 3]));
    /// let (piece, _sender) = ws.read_piece(Streaming::Always).unwrap();
    /// assert_eq!(piece, Piece::End);
    /// ```
    pub fn read_piece(&mut self, streaming: Streaming) -> Result<(Piece<'_>, Sender<'_, S>)> {
        let mut sender = Sender {
            stream: &mut self.stream,
            outgoing: &mut self.outgoing,
        };
        let piece = self.recv.read_piece(&mut sender, streaming)?;
        Ok((piece, sender))
    }

    /// The next data message as an [`io::Read`](std::io::Read) over its
    /// payload, yielding bytes as its frames arrive (see [`MessageReader`]):
    /// for messages larger than memory. Control frames before and inside it
    /// are answered; a close frame ends in
    /// [`Error::ConnectionClosed`](crate::Error::ConnectionClosed) as for
    /// `read`.
    ///
    /// ```
    /// use rfc6455::{Role, WebSocket};
    /// use std::io::{Cursor, Read};
    ///
    /// // "Hel" + "lo" in two fragments, masked with key 0.
    /// let wire = vec![0x01, 0x83, 0, 0, 0, 0, b'H', b'e', b'l', 0x80, 0x82, 0, 0, 0, 0, b'l', b'o'];
    /// let mut ws = WebSocket::from_raw_socket(Cursor::new(wire), Role::Server, Default::default());
    /// let mut message = ws.read_stream().unwrap();
    /// assert!(message.is_text());
    /// let mut text = String::new();
    /// message.read_to_string(&mut text).unwrap();
    /// assert_eq!(text, "Hello");
    /// ```
    pub fn read_stream(&mut self) -> Result<MessageReader<'_>> {
        let pulling = Pulling {
            recv: &mut self.recv,
            side: Sender {
                stream: &mut self.stream,
                outgoing: &mut self.outgoing,
            },
        };
        pulling.start()
    }

    /// Sends a message read from `source` as it is read, one fragment of
    /// `fragment_size` bytes at a time (the last one shorter, possibly
    /// empty), without holding the message in memory. Returns its length.
    /// `opcode` is [`OpCode::Text`] (the source must produce UTF-8) or
    /// [`OpCode::Binary`]. Control frames may go between the fragments. If
    /// `source` fails after the first fragment went out, the message cannot
    /// be finished: the connection is closed with 1011 and the source's
    /// error returned.
    ///
    /// ```
    /// use rfc6455::{frame::OpCode, Role, WebSocket};
    /// use std::io::Cursor;
    ///
    /// let mut ws = WebSocket::from_raw_socket(Cursor::new(Vec::new()), Role::Server, Default::default());
    /// let sent = ws.send_stream(OpCode::Binary, &[7u8; 10][..], 4).unwrap();
    /// assert_eq!(sent, 10);
    /// // Fragments of 4, 4 and 2 bytes: 0x02 (binary, not final), 0x00, 0x80 (final).
    /// let wire = ws.get_ref().get_ref();
    /// assert_eq!((wire[0], wire[6], wire[12]), (0x02, 0x00, 0x80));
    /// ```
    pub fn send_stream(
        &mut self,
        opcode: OpCode,
        source: impl Read,
        fragment_size: usize,
    ) -> Result<u64> {
        check_data_opcode(opcode)?;
        send_fragments(
            self,
            opcode,
            source,
            fragment_size,
            |ws, opcode, bytes, fin| {
                ws.write_frame(opcode, bytes, fin)?;
                if fin {
                    ws.flush()?;
                }
                Ok(())
            },
            |ws| {
                ws.outgoing
                    .close_with(CloseCode::INTERNAL_ERROR, SOURCE_FAILED);
                let _ = ws.flush();
            },
        )
    }

    /// Queues a message; it is written by [`flush`](WebSocket::flush), by the
    /// next [`read`](WebSocket::read) before it blocks, or at once if it is
    /// large or the queue is full. Control frames are written at once.
    pub fn write(&mut self, message: Message) -> Result<()> {
        let mut sender = self.sender();
        match message {
            // Owned: a client masks a large payload in place, no copy.
            Message::Text(t) => sender.data(OpCode::Text, true, Cow::Owned(t.into_bytes())),
            Message::Binary(d) => sender.data(OpCode::Binary, true, Cow::Owned(d)),
            other => sender.write(MessageRef::from(&other)),
        }
    }

    /// Writes a message and flushes.
    pub fn send(&mut self, message: Message) -> Result<()> {
        self.write(message)?;
        self.flush()
    }

    /// Writes a message prepared for many connections and flushes: with
    /// permessage-deflate negotiated without context takeover, its
    /// compressed form is made by the first connection that sends it and
    /// reused by the others with the same window and level (see
    /// [`PreparedMessage`]; a [`Hub`](crate::Hub) broadcast does this).
    ///
    /// ```
    /// use rfc6455::protocol::PreparedMessage;
    /// use rfc6455::{Message, Role, WebSocket};
    /// use std::io::Cursor;
    ///
    /// let prepared = PreparedMessage::new(Message::Text("news".into()));
    /// for _ in 0..3 {
    ///     let mut ws = WebSocket::from_raw_socket(Cursor::new(Vec::new()), Role::Server, Default::default());
    ///     ws.send_prepared(&prepared).unwrap();
    ///     assert_eq!(ws.get_ref().get_ref().as_slice(), b"\x81\x04news");
    /// }
    /// ```
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<()> {
        self.sender().write_prepared(prepared)?;
        self.flush()
    }

    /// Queues one frame of a fragmented message: a text or binary frame
    /// with `fin == false`, then continuation frames, the last with
    /// `fin == true`; control frames may go in between (see
    /// [`Connection::send_frame`](crate::protocol::Connection::send_frame)).
    /// Written like [`write`](WebSocket::write)'s frames.
    pub fn write_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        self.sender().write_frame(opcode, payload, fin)
    }

    /// Writes one frame of a fragmented message and flushes (see
    /// [`write_frame`](WebSocket::write_frame)).
    pub fn send_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        self.write_frame(opcode, payload, fin)?;
        self.flush()
    }

    /// Sends a close frame. Keep calling [`read`](WebSocket::read) until it
    /// returns [`Error::ConnectionClosed`](crate::Error::ConnectionClosed)
    /// to complete the close handshake.
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<()> {
        self.sender().close_frame(Some(&CloseFrame {
            code: code.into(),
            reason: reason.to_owned(),
        }))
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<()> {
        self.sender().flush()
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.outgoing.state()
    }

    /// Whether unread input is buffered (a `read` would not block).
    pub fn has_buffered_input(&self) -> bool {
        !self.recv.rbuf.is_empty()
    }

    /// The configuration.
    pub fn config(&self) -> &WebSocketConfig {
        &self.config
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably. Reading or writing it directly
    /// corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Makes a read that hits end of stream while `flag` is set send close
    /// 1001 (going away): how a server shuts down a connection blocked in
    /// `read`, by shutting down the socket's read side.
    pub(crate) fn set_going_away(&mut self, flag: Arc<AtomicBool>) {
        self.recv.going_away = Some(flag);
    }

    /// Read timeouts on the stream are the driver's clock (keepalive, idle
    /// and close timeouts), never errors for the caller by themselves.
    pub(crate) fn set_timeouts_are_ticks(&mut self, tick: Duration) {
        self.recv.tick = Some(tick);
    }

    /// Splits into a [`Reader`] and a [`Writer`] for full duplex from two
    /// threads: one blocks in `read` while others send. The reader still
    /// answers pings and close frames, and never waits for a writer that is
    /// blocked in a write (the writer sends those replies when it is done).
    ///
    /// ```no_run
    /// # fn main() -> rfc6455::Result<()> {
    /// let (ws, _response) = rfc6455::connect("ws://127.0.0.1:9001/")?;
    /// let (mut reader, writer) = ws.split()?;
    /// let sender = writer.clone();
    /// std::thread::spawn(move || sender.send("hello".into()));
    /// println!("{:?}", reader.read()?);
    /// # Ok(()) }
    /// ```
    pub fn split(self) -> Result<(Reader<S>, Writer<S>)>
    where
        S: Transport,
    {
        let (read_stream, write_stream) = self.stream.split()?;
        Ok(super::split::split(
            read_stream,
            write_stream,
            self.recv,
            self.outgoing,
        ))
    }
}
