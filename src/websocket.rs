//! The blocking driver: a [`protocol`](crate::protocol) connection plus a
//! `Read + Write` stream.
//!
//! System calls are the cost of a blocking WebSocket, so the driver makes few:
//! one `read` takes in as many frames as the buffer holds; replies queue up
//! and go out in one `write` when the input buffer is drained (just before
//! the next blocking read); large payloads go out with one vectored write of
//! header and payload, without copying them into a buffer.

use crate::frame::{apply_mask, CloseCode, FrameHeader, OpCode, Role};
use crate::protocol::{Config, Incoming, Message, Outgoing, Received, State};
use crate::stream::{write_all_vectored, TryClone};
use crate::{Error, Result};
use std::borrow::Cow;
use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// The read buffer starts here: with a small thread stack, this keeps an idle
/// connection's memory to a few KiB (tungstenite's 128 KiB default buffer
/// costs ~143 KiB of RSS per idle connection).
const MIN_READ_BUF: usize = 1024;
/// ... and grows (while reads fill it) up to this. Payloads of 16 KiB and
/// more are read straight into the message (`DIRECT_READ`), so a bigger read
/// buffer only adds a copy: at 64 KiB, one read took in most of a 64 KiB
/// message, which was then copied out (memmove: 12% of server CPU on the
/// 10 × 64 KiB echo, which measured 0.81× tungstenite over 9 rounds; 1.08×
/// over 5 rounds with 16 KiB).
const MAX_READ_BUF: usize = 16 * 1024;
/// Payloads at least this large are written straight from the caller's buffer
/// with a vectored write instead of being copied into the output buffer; below
/// it a copy is cheaper than the extra system call it would cost to batch.
const DIRECT_WRITE: usize = 16 * 1024;
/// Queued output is flushed without waiting for the next read once it
/// reaches this size, so a writer that never reads cannot grow it unbounded.
const MAX_QUEUED: usize = 64 * 1024;
/// When at least this much of a data frame's payload is still to come and
/// the read buffer is drained, it is read straight into the message buffer
/// (see [`Incoming::payload_space`]): one copy (the kernel's) instead of two.
/// Below it, reading into the read buffer can take in following frames too.
const DIRECT_READ: usize = 16 * 1024;

/// Server-side keepalive: ping after `interval` of silence, fail the
/// connection (1011) if no pong arrives within `timeout`.
///
/// The driver notices silence when a read times out, so the stream must have
/// a read timeout (the [`Server`](crate::Server) sets it to the interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before a ping is sent.
    pub interval: Duration,
    /// How long to wait for the pong.
    pub timeout: Duration,
}

/// Options of the blocking driver.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebSocketConfig {
    /// Limits enforced on what the peer sends.
    pub protocol: Config,
    /// Keepalive pings; `None` (the default for a bare `WebSocket`) disables them.
    pub keepalive: Option<Keepalive>,
    /// How long to wait for the peer's close frame (or, for a client, the
    /// server's TCP close) after sending ours. Default 5 s. Enforced when a
    /// read times out, so it needs a read timeout on the stream.
    pub close_timeout: Duration,
    /// With keepalive off: close (1001 "idle timeout") after this much
    /// silence from the peer. `None` (the default) waits forever. Enforced
    /// when a read times out, like keepalive.
    pub idle_timeout: Option<Duration>,
}

impl Default for WebSocketConfig {
    fn default() -> WebSocketConfig {
        WebSocketConfig {
            protocol: Config::default(),
            keepalive: None,
            close_timeout: Duration::from_secs(5),
            idle_timeout: None,
        }
    }
}

impl WebSocketConfig {
    /// Sets the protocol limits.
    pub fn protocol(mut self, protocol: Config) -> WebSocketConfig {
        self.protocol = protocol;
        self
    }

    /// Sets the keepalive.
    pub fn keepalive(mut self, keepalive: Option<Keepalive>) -> WebSocketConfig {
        self.keepalive = keepalive;
        self
    }

    /// Sets the close timeout.
    pub fn close_timeout(mut self, timeout: Duration) -> WebSocketConfig {
        self.close_timeout = timeout;
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> WebSocketConfig {
        self.idle_timeout = timeout;
        self
    }

    /// The stream read timeout that serves as the driver's clock: often
    /// enough for keepalive and the idle timeout, and never longer than the
    /// close timeout, so that waiting for a peer's close (or, for a client,
    /// the server's TCP close) is always bounded.
    pub(crate) fn read_tick(&self) -> Duration {
        let mut tick = self.close_timeout;
        if let Some(idle) = self.idle_timeout {
            tick = tick.min(idle);
        }
        if let Some(k) = self.keepalive {
            tick = tick.min(k.interval.min(k.timeout));
        }
        tick.max(Duration::from_millis(10))
    }
}

/// A read buffer that starts small and grows only while reads fill it.
#[derive(Debug)]
struct ReadBuf {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl ReadBuf {
    fn new(leftover: Vec<u8>) -> ReadBuf {
        let len = leftover.len();
        let mut buf = leftover;
        if buf.len() < MIN_READ_BUF {
            buf.resize(MIN_READ_BUF, 0);
            // The handshake's buffer (4 KiB) becomes this one: give back
            // what an idle connection does not need.
            buf.shrink_to_fit();
        }
        ReadBuf { buf, pos: 0, len }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    fn is_empty(&self) -> bool {
        self.pos == self.len
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    /// Reads once into the drained buffer.
    fn fill<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<usize> {
        self.pos = 0;
        self.len = 0;
        let n = r.read(&mut self.buf)?;
        self.len = n;
        if n == self.buf.len() && self.buf.len() < MAX_READ_BUF {
            // The peer sent more than fit: take bigger bites next time.
            let bigger = (self.buf.len() * 4).min(MAX_READ_BUF);
            self.buf.resize(bigger, 0);
        } else if n <= MIN_READ_BUF && self.buf.len() > MIN_READ_BUF {
            // Back to small messages: give the memory back.
            self.buf.truncate(MIN_READ_BUF);
            self.buf.shrink_to_fit();
        }
        Ok(n)
    }
}

/// The receiving side's state, shared by [`WebSocket`] and [`Reader`].
#[derive(Debug)]
struct RecvSide {
    incoming: Incoming,
    rbuf: ReadBuf,
    role: Role,
    keepalive: Option<Keepalive>,
    close_timeout: Duration,
    idle_timeout: Option<Duration>,
    /// The stream's read timeout when it is only the driver's clock (set
    /// by the server and by clients without a read timeout): a timeout with
    /// nothing due is then not an error. One that comes much sooner than
    /// the tick is the caller's own (a read timeout or non-blocking mode set
    /// on the stream) and is returned to them.
    tick: Option<Duration>,
    last_rx: Instant,
    ping_sent_at: Option<Instant>,
    close_wait_since: Option<Instant>,
    eof: bool,
    going_away: Option<Arc<AtomicBool>>,
}

/// Access to the sending side, which a [`WebSocket`] owns and a [`Reader`]
/// shares with its [`Writer`]s.
trait SendSide {
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

fn flush_outgoing(stream: &mut dyn Write, out: &mut Outgoing) -> io::Result<()> {
    while !out.pending().is_empty() {
        match stream.write(out.pending()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => out.consume(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.flush()
}

fn write_data(
    stream: &mut dyn Write,
    out: &mut Outgoing,
    opcode: OpCode,
    mut payload: Vec<u8>,
) -> Result<()> {
    if payload.len() < DIRECT_WRITE {
        out.encode_frame(opcode, true, &payload)?;
        if out.pending().len() >= MAX_QUEUED {
            flush_outgoing(stream, out)?;
        }
        return Ok(());
    }
    // Zero-copy: the payload is masked in place (a client owns it now) and
    // written behind whatever is queued, in one vectored write.
    let header = out.frame_header(opcode, true, payload.len())?;
    if let Some(key) = header.mask {
        apply_mask(&mut payload, key);
    }
    let queued = out.pending().len();
    if let Err(e) = write_behind(stream, out.pending(), &header, &payload) {
        // Part of the frame may be out: the stream is no longer in sync.
        out.on_io_error();
        return Err(e.into());
    }
    out.consume(queued);
    Ok(())
}

/// Writes `queued` bytes, then a frame's header and (already masked)
/// payload, in one vectored write: the large payload is never copied.
fn write_behind<W: Write + ?Sized>(
    stream: &mut W,
    queued: &[u8],
    header: &FrameHeader,
    payload: &[u8],
) -> io::Result<()> {
    let encoded = header.encode();
    let mut bufs = [
        IoSlice::new(queued),
        IoSlice::new(encoded.as_bytes()),
        IoSlice::new(payload),
    ];
    write_all_vectored(stream, &mut bufs)
}

fn write_message(stream: &mut dyn Write, out: &mut Outgoing, message: Message) -> Result<()> {
    match message {
        Message::Text(text) => write_data(stream, out, OpCode::Text, text.into_bytes()),
        Message::Binary(data) => write_data(stream, out, OpCode::Binary, data),
        other => {
            out.encode_message(&other)?;
            // Control frames are small and usually urgent.
            flush_outgoing(stream, out)?;
            Ok(())
        }
    }
}

/// The close timeout ran out: with the close handshake done (a client
/// waiting for the server to close TCP, RFC 6455 §7.1.1) that is the normal
/// end; without the peer's close frame it is a timeout.
fn close_wait_over(handshake_done: bool) -> Error {
    if handshake_done {
        return Error::ConnectionClosed;
    }
    Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "no close reply from the peer",
    ))
}

/// Fails the connection after a protocol error: the close frame with its
/// code goes out at once.
fn fail<K: SendSide>(side: &mut K, e: crate::ProtocolError) -> Error {
    side.state(|out| out.on_error(&e));
    // Best effort: the peer may already be gone.
    let _ = side.flush_all();
    Error::Protocol(e)
}

impl RecvSide {
    fn new(role: Role, config: &WebSocketConfig, leftover: Vec<u8>) -> RecvSide {
        RecvSide {
            incoming: Incoming::new(role, &config.protocol),
            rbuf: ReadBuf::new(leftover),
            role,
            keepalive: config.keepalive,
            close_timeout: config.close_timeout,
            idle_timeout: config.idle_timeout,
            tick: None,
            last_rx: Instant::now(),
            ping_sent_at: None,
            close_wait_since: None,
            eof: false,
            going_away: None,
        }
    }

    fn read<K: SendSide>(&mut self, side: &mut K) -> Result<Message> {
        if side.state(|out| out.failed()) {
            return Err(Error::AlreadyClosed);
        }
        loop {
            if !self.rbuf.is_empty() {
                match self.incoming.receive(self.rbuf.data()) {
                    Ok(Received { consumed, message }) => {
                        self.rbuf.consume(consumed);
                        if let Some(message) = message {
                            self.on_message(side, &message)?;
                            return Ok(message);
                        }
                    }
                    Err(e) => return Err(fail(side, e)),
                }
                continue;
            }
            // Input drained: everything queued while processing it goes out
            // in one write before we block.
            side.flush()?;
            let (closed, close_sent) = side.state(|out| (out.is_closed(), out.close_sent()));
            if closed && (self.role == Role::Server || self.eof) {
                // RFC 6455 §7.1.1: the server closes TCP first, right after the
                // close handshake; a client waits for that (below) first. Our
                // close reply must be out before the caller closes TCP.
                let _ = side.flush_all();
                return Err(Error::ConnectionClosed);
            }
            if close_sent {
                // Checked here as well as on read timeouts: a peer that keeps
                // sending but never answers our close must not hold us.
                let since = *self.close_wait_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.close_timeout {
                    return Err(close_wait_over(closed));
                }
            }
            let read_started = self.tick.map(|_| Instant::now());
            let (got, direct) = match self.incoming.payload_space(DIRECT_READ) {
                Some(space) => (side.read_into(space), true),
                None => (side.read(&mut self.rbuf), false),
            };
            match got {
                Ok(0) => {
                    self.eof = true;
                    return Err(self.on_eof(side));
                }
                Ok(n) => {
                    if self.keepalive.is_some() || self.idle_timeout.is_some() {
                        self.last_rx = Instant::now();
                    }
                    if direct {
                        match self.incoming.payload_filled(n) {
                            Ok(Received {
                                message: Some(message),
                                ..
                            }) => {
                                self.on_message(side, &message)?;
                                return Ok(message);
                            }
                            Ok(_) => {}
                            Err(e) => return Err(fail(side, e)),
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

    fn on_message<K: SendSide>(&mut self, side: &mut K, message: &Message) -> Result<()> {
        if let Message::Pong(_) = message {
            self.ping_sent_at = None;
        }
        let urgent = !side.batches_replies() || matches!(message, Message::Close(_));
        side.state(|out| out.on_received(message));
        if urgent {
            side.flush()?;
        }
        Ok(())
    }

    fn on_eof<K: SendSide>(&mut self, side: &mut K) -> Error {
        let (closed, close_received) = side.state(|out| (out.is_closed(), out.close_received()));
        if closed || close_received {
            return Error::ConnectionClosed;
        }
        if self
            .going_away
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Acquire))
        {
            // The server is shutting down and stopped our reads: say so.
            side.state(|out| out.close_with(CloseCode::GOING_AWAY, "server shutting down"));
            let _ = side.flush_all();
            return Error::ConnectionClosed;
        }
        Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the connection without a close frame",
        ))
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
        if let Some(since) = self.close_wait_since {
            if now.duration_since(since) >= self.close_timeout {
                return Err(close_wait_over(side.state(|out| out.is_closed())));
            }
            return Ok(());
        }
        let Some(keepalive) = self.keepalive else {
            if let Some(idle) = self.idle_timeout {
                if now.duration_since(self.last_rx) < idle {
                    return Ok(());
                }
                side.state(|out| out.close_with(CloseCode::GOING_AWAY, "idle timeout"));
                let _ = side.flush_all();
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle timeout",
                )));
            }
            return if self.tick.is_some() {
                Ok(())
            } else {
                Err(Error::Io(e))
            };
        };
        match self.ping_sent_at {
            Some(sent) if now.duration_since(sent) >= keepalive.timeout => {
                side.state(|out| {
                    out.close_with(CloseCode::INTERNAL_ERROR, "keepalive ping timeout")
                });
                let _ = side.flush_all();
                Err(Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "keepalive ping timeout",
                )))
            }
            None if now.duration_since(self.last_rx) >= keepalive.interval => {
                self.ping_sent_at = Some(now);
                side.state(|out| out.encode_frame(OpCode::Ping, true, b"keepalive"))?;
                side.flush()?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

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
}

struct Owned<'a, S> {
    stream: &'a mut S,
    outgoing: &'a mut Outgoing,
}

impl<S: Read + Write> SendSide for Owned<'_, S> {
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
        WebSocket {
            stream,
            outgoing: Outgoing::new(role),
            recv: RecvSide::new(role, &config, leftover),
            config,
        }
    }

    fn parts(&mut self) -> (&mut RecvSide, Owned<'_, S>) {
        (
            &mut self.recv,
            Owned {
                stream: &mut self.stream,
                outgoing: &mut self.outgoing,
            },
        )
    }

    /// Reads the next message or control frame.
    ///
    /// Before blocking on the stream it writes everything queued, so replies
    /// to a batch of incoming frames leave in one write. Returns
    /// [`Error::ConnectionClosed`] once the close handshake is complete (after
    /// returning the peer's [`Message::Close`]), and [`Error::Protocol`] after
    /// failing the connection with a close frame.
    ///
    /// The stream is closed when the `WebSocket` is dropped: drop it after
    /// [`Error::ConnectionClosed`] (some peers wait for our side of TCP to
    /// close before they release the connection).
    pub fn read(&mut self) -> Result<Message> {
        let (recv, mut side) = self.parts();
        recv.read(&mut side)
    }

    /// Queues a message; it is written by [`flush`](WebSocket::flush), by the
    /// next [`read`](WebSocket::read) before it blocks, or at once if it is
    /// large or the queue is full. Control frames are written at once.
    pub fn write(&mut self, message: Message) -> Result<()> {
        write_message(&mut self.stream, &mut self.outgoing, message)
    }

    /// Writes a message and flushes.
    pub fn send(&mut self, message: Message) -> Result<()> {
        self.write(message)?;
        self.flush()
    }

    /// Queues one frame of a fragmented message (see
    /// [`Connection::send_frame`](crate::protocol::Connection::send_frame)).
    pub fn send_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        self.outgoing.encode_frame(opcode, fin, payload)?;
        if self.outgoing.pending().len() >= MAX_QUEUED {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends a close frame. Keep calling [`read`](WebSocket::read) until it
    /// returns [`Error::ConnectionClosed`] to complete the close handshake.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.outgoing.close(Some(&crate::CloseFrame {
            code,
            reason: reason.to_owned(),
        }))?;
        self.flush()
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<()> {
        flush_outgoing(&mut self.stream, &mut self.outgoing)?;
        Ok(())
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
        S: TryClone,
    {
        let read_stream = self.stream.try_clone()?;
        let shared = Arc::new(SplitShared {
            state: Mutex::new(self.outgoing),
            stream: Mutex::new(WriteStream {
                stream: self.stream,
                scratch: Vec::new(),
            }),
        });
        Ok((
            Reader {
                stream: read_stream,
                recv: self.recv,
                shared: Arc::clone(&shared),
            },
            Writer { shared },
        ))
    }
}

/// What the halves of a split connection share. Two locks, taken in this
/// order: `stream` (held across blocking writes, by one writer at a time)
/// and `state` (held only to encode or check, never across I/O).
///
/// A [`Reader`] only ever *tries* to take `stream`: if a writer holds it,
/// the reader leaves its pongs and close replies queued in `state`, and the
/// writer writes them before letting go. A writer lets go of `stream` while
/// holding `state`, having seen nothing queued, so a reply is never
/// stranded. (Before, the reader needed the writer's one lock before every
/// read: a writer blocked on a peer that was itself blocked writing to us
/// stopped the reader too, a deadlock only the write timeout broke.)
#[derive(Debug)]
struct SplitShared<S> {
    state: Mutex<Outgoing>,
    stream: Mutex<WriteStream<S>>,
}

#[derive(Debug)]
struct WriteStream<S> {
    stream: S,
    /// Bytes taken out of `state` to be written without holding its lock;
    /// kept to reuse its allocation.
    scratch: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves the state consistent (every
    // method finishes its bookkeeping before writing), so go on.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: Write> SplitShared<S> {
    /// Writes what is queued, unless a writer is busy: it will. But past
    /// `MAX_QUEUED` bytes (a peer flooding pings while a writer is blocked
    /// on it) the reader waits for the stream instead of queueing more, so
    /// the peer meets TCP backpressure rather than our memory growing.
    fn try_flush(&self) -> io::Result<()> {
        let state = lock(&self.state);
        if state.pending().is_empty() {
            return Ok(());
        }
        let stream = match self.stream.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let too_much = state.pending().len() >= MAX_QUEUED;
                drop(state);
                return if too_much { self.flush_all() } else { Ok(()) };
            }
        };
        self.drain_and_release(stream, state)
    }

    /// Writes what is queued, waiting for a busy writer to finish first.
    fn flush_all(&self) -> io::Result<()> {
        if lock(&self.state).pending().is_empty() {
            return Ok(());
        }
        // Lock order: stream, then state (never the other way round).
        let stream = lock(&self.stream);
        let state = lock(&self.state);
        self.drain_and_release(stream, state)
    }

    /// With the stream held: writes everything queued until nothing is, then
    /// lets go of the stream while still holding the state lock.
    fn drain_and_release<'a>(
        &'a self,
        mut stream: MutexGuard<'a, WriteStream<S>>,
        mut state: MutexGuard<'a, Outgoing>,
    ) -> io::Result<()> {
        loop {
            if state.pending().is_empty() {
                drop(stream);
                return Ok(());
            }
            let ws = &mut *stream;
            state.swap_pending(&mut ws.scratch);
            drop(state);
            let written = ws
                .stream
                .write_all(&ws.scratch)
                .and_then(|()| ws.stream.flush());
            if ws.scratch.capacity() > MAX_QUEUED {
                // A burst left a big buffer: do not keep it for the
                // connection's lifetime.
                ws.scratch = Vec::new();
            }
            state = lock(&self.state);
            if let Err(e) = written {
                state.on_io_error();
                drop(stream);
                return Err(e);
            }
        }
    }

    /// Sends one frame: encoded under the state lock, written with only the
    /// stream held. Large payloads go out with one vectored write, without
    /// a copy when no mask is needed (a server).
    fn send(&self, opcode: OpCode, fin: bool, payload: Cow<'_, [u8]>) -> Result<()> {
        let mut stream = lock(&self.stream);
        let mut state = lock(&self.state);
        if payload.len() < DIRECT_WRITE {
            let encoded = state.encode_frame(opcode, fin, &payload);
            // Even on a refused send, write what the reader queued.
            self.drain_and_release(stream, state)?;
            return encoded;
        }
        let header = match state.frame_header(opcode, fin, payload.len()) {
            Ok(header) => header,
            Err(e) => {
                self.drain_and_release(stream, state)?;
                return Err(e);
            }
        };
        let ws = &mut *stream;
        state.swap_pending(&mut ws.scratch);
        drop(state);
        // Masked outside the state lock: a reader never waits on it.
        let payload = match header.mask {
            Some(key) => {
                let mut masked = payload.into_owned();
                apply_mask(&mut masked, key);
                Cow::Owned(masked)
            }
            None => payload,
        };
        let written = write_behind(&mut ws.stream, &ws.scratch, &header, &payload);
        let mut state = lock(&self.state);
        if let Err(e) = written {
            state.on_io_error();
            return Err(e.into());
        }
        self.drain_and_release(stream, state)?;
        Ok(())
    }
}

/// The reading half of a split [`WebSocket`].
#[derive(Debug)]
pub struct Reader<S> {
    stream: S,
    recv: RecvSide,
    shared: Arc<SplitShared<S>>,
}

struct SplitSide<'a, S> {
    stream: &'a mut S,
    shared: &'a SplitShared<S>,
}

impl<S: Read + Write> SendSide for SplitSide<'_, S> {
    fn read(&mut self, rbuf: &mut ReadBuf) -> io::Result<usize> {
        rbuf.fill(self.stream)
    }
    fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
    fn state<T>(&mut self, f: impl FnOnce(&mut Outgoing) -> T) -> T {
        f(&mut lock(&self.shared.state))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.shared.try_flush()
    }
    fn flush_all(&mut self) -> io::Result<()> {
        self.shared.flush_all()
    }
    fn batches_replies(&self) -> bool {
        false
    }
}

impl<S: Read + Write> Reader<S> {
    /// Reads the next message, as [`WebSocket::read`]; pongs and close
    /// replies are written at once (or by a writer busy writing).
    pub fn read(&mut self) -> Result<Message> {
        let mut side = SplitSide {
            stream: &mut self.stream,
            shared: &self.shared,
        };
        self.recv.read(&mut side)
    }

    /// A new handle for sending on this connection.
    pub fn writer(&self) -> Writer<S> {
        Writer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The stream this half reads from.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

/// The sending half of a split [`WebSocket`]: cloneable and usable from any
/// thread. Sends are serialized, so frames from several threads never
/// interleave on the wire, and a sender blocked on a slow peer never stops
/// the [`Reader`].
#[derive(Debug)]
pub struct Writer<S> {
    shared: Arc<SplitShared<S>>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Writer<S> {
        Writer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: Write> Writer<S> {
    /// Sends a message and flushes. Payloads of 16 KiB and more are written
    /// from the message itself (masked in place by a client), not copied.
    pub fn send(&self, message: Message) -> Result<()> {
        match message {
            Message::Text(text) => {
                self.shared
                    .send(OpCode::Text, true, Cow::Owned(text.into_bytes()))
            }
            Message::Binary(data) => self.shared.send(OpCode::Binary, true, Cow::Owned(data)),
            Message::Ping(data) => self.shared.send(OpCode::Ping, true, Cow::Owned(data)),
            Message::Pong(data) => self.shared.send(OpCode::Pong, true, Cow::Owned(data)),
            Message::Close(frame) => {
                let stream = lock(&self.shared.stream);
                let mut state = lock(&self.shared.state);
                let queued = state.close(frame.as_ref());
                self.shared.drain_and_release(stream, state)?;
                queued
            }
        }
    }

    /// Sends one frame of a message (`fin` false for all but the last of a
    /// fragmented one) and flushes. A server writes payloads of 16 KiB and
    /// more straight from `payload`, so sending one message to many clients
    /// (a broadcast) does not copy it per client.
    pub fn send_frame(&self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        self.shared.send(opcode, fin, Cow::Borrowed(payload))
    }

    /// Sends a close frame; the [`Reader`] completes the handshake.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        self.send(Message::Close(Some(crate::CloseFrame {
            code,
            reason: reason.to_owned(),
        })))
    }

    /// Whether a close frame was sent or the connection failed: nothing more
    /// can be sent.
    pub fn is_closed(&self) -> bool {
        let state = lock(&self.shared.state);
        state.close_sent() || state.failed()
    }
}
