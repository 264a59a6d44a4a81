//! The blocking [`WebSocket`] driven over an in-memory stream and checked
//! against the two sans-I/O receive paths, `Connection::receive` (owned) and
//! `Connection::receive_in_place`: the same messages in, the same frames out
//! (byte for byte for a server; a client's mask keys are random).
//!
//! Shared by the `websocket_driver` fuzz target and by
//! `tests/proptest_driver.rs`, which includes this file with `#[path]`: the
//! fuzz crate is its own workspace and cannot be a dev-dependency of the main
//! crate. So this file uses only `std` and the crate's public API, and
//! everything in it is used by both.

use rfc6455::frame::{apply_mask, CloseCode, FrameHeader, OpCode, Parsed, Role};
use rfc6455::protocol::{Connection, Message, SizeLimits, State};
use rfc6455::{Error, ProtocolError, WebSocket, WebSocketConfig};
use std::io::{self, IoSlice, Read, Write};
use std::time::Duration;

// ---------------------------------------------------------------------------
// The peer's frames.

/// Wire opcodes (RFC 6455 §5.2), as bytes so that reserved ones can be sent.
pub const CONTINUATION: u8 = 0x0;
/// Text frame.
pub const TEXT: u8 = 0x1;
/// Binary frame.
pub const BINARY: u8 = 0x2;
/// Close frame.
pub const CLOSE: u8 = 0x8;
/// Ping frame.
pub const PING: u8 = 0x9;
/// Pong frame.
pub const PONG: u8 = 0xA;

/// What fills a generated frame's payload. Payloads are generated rather
/// than spelled out byte by byte, so that a few input bytes (a fuzz input, a
/// proptest case) describe a 100 KiB frame and shrinking stays cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// The next bytes of one running UTF-8 text. The fragments of a text
    /// message join into valid UTF-8 even where a fragment boundary splits
    /// a character, so the incremental validator is tested across frames
    /// and across reads.
    Text,
    /// Pseudo-random bytes from a seed (almost never valid UTF-8).
    Bytes(u64),
    /// A close body: this code, then a text reason filling the length.
    Close(u16),
}

/// One frame the peer sends: well-formed unless one of the mistake switches
/// (`rsv`, `wrong_mask`, `corrupt`, a reserved opcode, a control frame over
/// 125 bytes, a fragment out of sequence) says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// The 4-bit opcode on the wire; reserved values are allowed.
    pub opcode: u8,
    /// The FIN bit.
    pub fin: bool,
    /// RSV1..RSV3 as bits 2..0. No extension is negotiated, so any set bit
    /// fails the connection.
    pub rsv: u8,
    /// Masked towards a client or unmasked towards a server (RFC 6455 §5.1).
    pub wrong_mask: bool,
    /// The payload length. A final text fragment may come out up to 3 bytes
    /// longer, to end on a character boundary.
    pub len: usize,
    /// What the payload holds.
    pub fill: Fill,
    /// Overwrites the payload byte at this offset (modulo the length) with
    /// 0xFF, which is never valid in UTF-8.
    pub corrupt: Option<usize>,
    /// The masking key, when the frame is masked.
    pub key: [u8; 4],
}

/// The wire bytes of `frames` as a peer sends them to a `receiver`: masked
/// towards a server, unmasked towards a client, unless a frame says otherwise.
pub fn encode(receiver: Role, frames: &[FrameSpec]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut text = TextSource::new(0x9E37_79B9_7F4A_7C15);
    for f in frames {
        let mut payload = match f.fill {
            Fill::Text => {
                if f.opcode == TEXT {
                    // A new message starts on a character boundary.
                    text.drop_partial();
                }
                let mut p = text.take(f.len);
                if f.fin {
                    p.extend(text.drop_partial());
                }
                p
            }
            Fill::Bytes(seed) => noise(seed, f.len),
            Fill::Close(code) if f.len >= 2 => {
                let mut reason = TextSource::new(u64::from(code));
                let mut p = code.to_be_bytes().to_vec();
                p.extend(reason.take(f.len - 2));
                p.extend(reason.drop_partial());
                p
            }
            Fill::Close(code) => noise(u64::from(code), f.len),
        };
        if let Some(at) = f.corrupt {
            if !payload.is_empty() {
                let i = at % payload.len();
                payload[i] = 0xFF;
            }
        }
        let masked = (receiver == Role::Server) != f.wrong_mask;
        let mut header = FrameHeader::new(OpCode::Binary, payload.len() as u64);
        header.fin = f.fin;
        header.rsv1 = f.rsv & 4 != 0;
        header.rsv2 = f.rsv & 2 != 0;
        header.rsv3 = f.rsv & 1 != 0;
        header.mask = masked.then_some(f.key);
        let start = wire.len();
        wire.extend_from_slice(header.encode().as_bytes());
        // `FrameHeader` holds only the defined opcodes: patch in the raw one.
        wire[start] = (wire[start] & 0xF0) | (f.opcode & 0x0F);
        let body = wire.len();
        wire.extend_from_slice(&payload);
        if masked {
            apply_mask(&mut wire[body..], f.key);
        }
    }
    wire
}

/// Characters of every UTF-8 length, including the edges of each length
/// class, so a cut at any byte lands inside characters of every shape.
const PALETTE: [char; 12] = [
    'a',
    '~',
    'é',
    '\u{7FF}',
    '\u{800}',
    '€',
    'κ',
    '\u{FFFF}',
    '😀',
    '\u{10000}',
    '\u{10FFFF}',
    ' ',
];

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&xorshift(&mut state).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An endless valid UTF-8 text, taken in pieces of any byte length.
struct TextSource {
    state: u64,
    /// The rest of a character that the last piece cut.
    partial: Vec<u8>,
}

impl TextSource {
    fn new(seed: u64) -> TextSource {
        TextSource {
            state: seed | 1,
            partial: Vec::new(),
        }
    }

    /// The next `n` bytes; the last character may be cut.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.partial);
        out.reserve(n + 4);
        while out.len() < n {
            let c = PALETTE[(xorshift(&mut self.state) % PALETTE.len() as u64) as usize];
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        self.partial = out.split_off(n);
        out
    }

    /// The rest of the character the last piece cut (empty if none).
    fn drop_partial(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.partial)
    }
}

// ---------------------------------------------------------------------------
// The in-memory stream.

/// What a [`ScriptedStream`] does once its input is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// End of stream: the peer closed TCP.
    Eof,
    /// `ConnectionReset`: the peer vanished.
    Reset,
}

/// A `Read + Write` peer: serves its input in reads of scripted sizes and
/// records everything written to it.
#[derive(Debug)]
pub struct ScriptedStream {
    input: Vec<u8>,
    pos: usize,
    /// Read sizes, cycled; 0 = as much as the caller's buffer takes.
    reads: Vec<usize>,
    turn: usize,
    /// Every other read fails with `Interrupted`, which a driver must retry.
    interrupt: bool,
    interrupted_last: bool,
    /// The most one write takes (0 = no limit): short writes, as a full
    /// socket buffer gives them.
    max_write: usize,
    end: End,
    /// Everything written, in order.
    pub written: Vec<u8>,
    /// Calls to `read`, to show that reads terminate.
    pub read_calls: usize,
}

impl ScriptedStream {
    /// A stream serving `input` in reads of the sizes `reads` (cycled).
    pub fn new(input: Vec<u8>, reads: Vec<usize>, end: End) -> ScriptedStream {
        ScriptedStream {
            input,
            pos: 0,
            reads: if reads.is_empty() { vec![0] } else { reads },
            turn: 0,
            interrupt: false,
            interrupted_last: false,
            max_write: 0,
            end,
            written: Vec::new(),
            read_calls: 0,
        }
    }

    fn write_limit(&self, len: usize) -> usize {
        match self.max_write {
            0 => len,
            n => len.min(n),
        }
    }
}

impl Read for ScriptedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_calls += 1;
        if self.interrupt {
            self.interrupted_last = !self.interrupted_last;
            if self.interrupted_last {
                return Err(io::ErrorKind::Interrupted.into());
            }
        }
        let rest = &self.input[self.pos..];
        if rest.is_empty() {
            return match self.end {
                End::Eof => Ok(0),
                End::Reset => Err(io::ErrorKind::ConnectionReset.into()),
            };
        }
        let size = self.reads[self.turn % self.reads.len()];
        self.turn += 1;
        let n = match size {
            0 => buf.len(),
            n => n.min(buf.len()),
        }
        .min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for ScriptedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.write_limit(buf.len());
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Takes from several buffers in one call, as a socket's `writev` does
    /// (the default takes only the first), so large frames go out the way
    /// they do on TCP.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut left = self.write_limit(bufs.iter().map(|b| b.len()).sum());
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(left);
            self.written.extend_from_slice(&b[..take]);
            n += take;
            left -= take;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Scenarios and what each path makes of them.

/// What the application does with each data message it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Nothing.
    Off,
    /// `WebSocket::write` (queued; large payloads written at once).
    Write,
    /// `WebSocket::send` (written and flushed).
    Send,
}

/// One scenario: our side's role and limits, the peer's bytes and how they
/// arrive, and what our side does.
#[derive(Debug, Clone)]
pub struct Script {
    /// Our role (the peer has the other one).
    pub role: Role,
    /// Our limits.
    pub config: SizeLimits,
    /// Everything the peer sends.
    pub wire: Vec<u8>,
    /// Read sizes, cycled (0 = as much as asked): the stream's reads for the
    /// driver, the chunks for `receive_in_place`.
    pub reads: Vec<usize>,
    /// Bytes of `wire` read with the handshake, handed to
    /// `WebSocket::from_partially_read`.
    pub leftover: usize,
    /// Every other stream read fails with `Interrupted`.
    pub interrupt: bool,
    /// The most one write takes (0 = no limit).
    pub max_write: usize,
    /// How the stream ends after `wire`.
    pub end: End,
    /// We start the close handshake before reading anything.
    pub close_first: bool,
    /// What we do with each data message.
    pub echo: Echo,
}

/// How the driver's reads end, or (for a sans-I/O path) how they must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The peer broke the protocol.
    Protocol(ProtocolError),
    /// The close handshake completed.
    Closed,
    /// The stream failed or ended early.
    Io(io::ErrorKind),
    /// Anything else, which no path should return.
    Other(String),
}

impl From<Error> for Ending {
    fn from(e: Error) -> Ending {
        match e {
            Error::Protocol(p) => Ending::Protocol(p),
            Error::ConnectionClosed => Ending::Closed,
            Error::Io(io) => Ending::Io(io.kind()),
            other => Ending::Other(format!("{other:?}")),
        }
    }
}

/// A frame we sent, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFrame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

/// What one path made of a [`Script`].
#[derive(Debug)]
pub struct Outcome {
    /// Messages and control frames delivered, in order.
    pub messages: Vec<Message>,
    /// Echoes refused because a close frame had been sent.
    pub refused_echoes: usize,
    /// How reading ended.
    pub ending: Ending,
    /// The lifecycle state at the end.
    pub state: State,
    /// The frames we sent: echoes, pongs, close replies, failure closes.
    pub sent: Vec<SentFrame>,
    /// The bytes we sent. Equal across paths only for a server: a client's
    /// mask keys are random.
    pub raw: Vec<u8>,
}

/// The code our side closes with when the script says to close first.
const OUR_CLOSE: CloseCode = CloseCode::GOING_AWAY;

impl Script {
    fn connection(&self) -> Connection {
        let mut conn = Connection::new(self.role, self.config.clone());
        if self.close_first {
            conn.close(OUR_CLOSE, "first").unwrap();
        }
        conn
    }

    /// The sans-I/O paths do no I/O, so how the driver must end follows
    /// from what they saw.
    fn expected_ending(&self, error: Option<ProtocolError>, saw_close: bool) -> Ending {
        match (error, saw_close) {
            (Some(e), _) => Ending::Protocol(e),
            // RFC 6455 §7.1.1: the server closes TCP right after the close
            // handshake; a client waits for the server's TCP close first.
            (None, true) if self.role == Role::Server || self.end == End::Eof => Ending::Closed,
            (None, _) => Ending::Io(match self.end {
                End::Eof => io::ErrorKind::UnexpectedEof,
                End::Reset => io::ErrorKind::ConnectionReset,
            }),
        }
    }

    /// The sizes `wire` is cut into for `receive_in_place`: the read sizes.
    fn chunks(&self) -> Vec<&[u8]> {
        let mut chunks = Vec::new();
        let mut rest = &self.wire[..];
        let mut turn = 0;
        while !rest.is_empty() {
            let n = match self.reads.get(turn % self.reads.len().max(1)) {
                Some(&n) if n > 0 => n.min(rest.len()),
                _ => rest.len(),
            };
            turn += 1;
            let (chunk, after) = rest.split_at(n);
            chunks.push(chunk);
            rest = after;
        }
        chunks
    }
}

/// What a sans-I/O path received, and its echoes.
struct Receiver<'a> {
    script: &'a Script,
    conn: Connection,
    messages: Vec<Message>,
    refused_echoes: usize,
    error: Option<ProtocolError>,
}

impl<'a> Receiver<'a> {
    fn new(script: &'a Script) -> Receiver<'a> {
        Receiver {
            script,
            conn: script.connection(),
            messages: Vec::new(),
            refused_echoes: 0,
            error: None,
        }
    }

    /// After one call to a receive function: checks progress, keeps the
    /// message, echoes it. Returns false once the connection failed.
    fn took(&mut self, result: Result<(usize, Option<Message>), Error>, offered: usize) -> bool {
        let (consumed, message) = match result {
            Ok(r) => r,
            Err(Error::Protocol(e)) => {
                self.error = Some(e);
                return false;
            }
            Err(other) => panic!("receive failed with a non-protocol error: {other:?}"),
        };
        assert!(consumed <= offered, "consumed {consumed} of {offered}");
        assert!(
            consumed > 0 || message.is_some(),
            "no progress on {offered} bytes"
        );
        if let Some(message) = message {
            if self.script.echo != Echo::Off && message.is_data() {
                match self.conn.send(&message) {
                    Ok(()) => {}
                    Err(Error::AlreadyClosed) => self.refused_echoes += 1,
                    Err(e) => panic!("echo failed: {e:?}"),
                }
            }
            self.messages.push(message);
        }
        true
    }

    fn outcome(mut self) -> Outcome {
        let saw_close = matches!(self.messages.last(), Some(Message::Close(_)));
        let raw = self.conn.take_data_to_send();
        Outcome {
            ending: self.script.expected_ending(self.error, saw_close),
            state: self.conn.state(),
            sent: decode_sent(self.script.role, &raw),
            messages: self.messages,
            refused_echoes: self.refused_echoes,
            raw,
        }
    }
}

/// The reference: `Connection::receive` fed the whole wire at once.
pub fn run_owned(script: &Script) -> Outcome {
    let mut rx = Receiver::new(script);
    let mut rest = &script.wire[..];
    while !rest.is_empty() {
        let result = rx.conn.receive(rest).map(|r| (r.consumed, r.message));
        let consumed = result.as_ref().map_or(0, |r| r.0);
        if !rx.took(result, rest.len()) {
            break;
        }
        rest = &rest[consumed..];
    }
    rx.outcome()
}

/// `Connection::receive_in_place` fed the wire in the script's read sizes,
/// each chunk in a buffer of its own (as a driver's read buffer).
pub fn run_in_place(script: &Script) -> Outcome {
    let mut rx = Receiver::new(script);
    'chunks: for chunk in script.chunks() {
        let mut buf = chunk.to_vec();
        let mut start = 0;
        while start < buf.len() {
            let result = rx
                .conn
                .receive_in_place(&mut buf[start..])
                .map(|r| (r.consumed, r.message.map(|m| m.to_message())));
            let consumed = result.as_ref().map_or(0, |r| r.0);
            if !rx.took(result, buf.len() - start) {
                break 'chunks;
            }
            start += consumed;
        }
    }
    rx.outcome()
}

/// The blocking driver: `WebSocket::read` over a [`ScriptedStream`] until it
/// returns an error, echoing data messages as the script says.
pub fn run_driver(script: &Script) -> Outcome {
    let split = script.leftover.min(script.wire.len());
    let mut stream = ScriptedStream::new(
        script.wire[split..].to_vec(),
        script.reads.clone(),
        script.end,
    );
    stream.interrupt = script.interrupt;
    stream.max_write = script.max_write;
    // No timer may fire: the sans-I/O paths have no clock, so the outcome
    // must not depend on how fast this machine runs the script.
    let config = WebSocketConfig::default()
        .protocol(script.config.clone())
        .close_timeout(Duration::from_secs(24 * 3600));
    let leftover = script.wire[..split].to_vec();
    let mut ws = WebSocket::from_partially_read(stream, leftover, script.role, config);
    if script.close_first {
        ws.close(OUR_CLOSE, "first").unwrap();
    }

    let mut messages = Vec::new();
    let mut refused_echoes = 0;
    // Every message takes at least a 2-byte header.
    let most = script.wire.len() / 2 + 1;
    let ending = loop {
        let message = match ws.read() {
            Ok(message) => message,
            Err(e) => break Ending::from(e),
        };
        assert!(
            messages.len() < most,
            "read() returned more than {most} messages from {} bytes",
            script.wire.len()
        );
        if message.is_data() {
            let echoed = match script.echo {
                Echo::Off => Ok(()),
                Echo::Write => ws.write(message.clone()),
                Echo::Send => ws.send(message.clone()),
            };
            match echoed {
                Ok(()) => {}
                Err(Error::AlreadyClosed) => refused_echoes += 1,
                Err(e) => panic!("echo failed: {e:?}"),
            }
        }
        messages.push(message);
    };

    // Reading again after the end returns an error at once and writes nothing.
    let written = ws.get_ref().written.len();
    match ws.read() {
        Err(_) => {}
        Ok(m) => panic!("read() after {ending:?} returned {}", summary(&m)),
    }
    let stream = ws.get_ref();
    assert_eq!(stream.written.len(), written, "wrote after {ending:?}");
    // Every read takes a byte, but the two that meet the end (the last
    // message's and the one above) and the interrupted ones (every other).
    let bound = 2 * (script.wire.len() - split + 3);
    assert!(
        stream.read_calls <= bound,
        "{} reads for {} bytes",
        stream.read_calls,
        script.wire.len() - split
    );
    Outcome {
        messages,
        refused_echoes,
        ending,
        state: ws.state(),
        sent: decode_sent(script.role, &stream.written),
        raw: stream.written.clone(),
    }
}

/// Decodes our output, checking that it is whole frames masked by a client
/// only.
fn decode_sent(role: Role, mut bytes: &[u8]) -> Vec<SentFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (header, n) = match FrameHeader::parse(bytes) {
            Ok(Parsed::Complete(header, n)) => (header, n),
            other => panic!("our output does not parse: {other:?}"),
        };
        assert_eq!(header.mask.is_some(), role == Role::Client, "{header:?}");
        let end = n + header.payload_len as usize;
        assert!(end <= bytes.len(), "a truncated frame in our output");
        let mut payload = bytes[n..end].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key);
        }
        frames.push(SentFrame {
            fin: header.fin,
            opcode: header.opcode,
            payload,
        });
        bytes = &bytes[end..];
    }
    frames
}

/// Runs `script` through the driver and both sans-I/O paths and checks:
///
/// - the driver and `receive_in_place` deliver exactly the messages that
///   `receive` does, in the same order, refuse the same echoes, end in the
///   same state, and send the same frames (the same bytes, for a server): pongs, close replies,
///   echoes, failure close frames;
/// - the driver ends as the sans-I/O paths say it must (see
///   `Script::expected_ending`), never panics, and a read after the end
///   writes nothing and returns an error;
/// - messages respect the limits;
/// - after a protocol error, or a completed close handshake, the last frame
///   we sent is a close frame, carrying the error's code unless our own
///   close frame went first.
pub fn check(script: &Script) {
    let owned = run_owned(script);
    let in_place = run_in_place(script);
    let driver = run_driver(script);
    same(script.role, "receive_in_place", &in_place, &owned);
    same(script.role, "WebSocket::read", &driver, &owned);

    for m in &owned.messages {
        let limit = if m.is_data() {
            script.config.max_message_size
        } else {
            125
        };
        assert!(m.len() <= limit, "{} over {limit}", summary(m));
    }
    let last = owned.sent.last();
    let closing =
        script.close_first || matches!(owned.ending, Ending::Protocol(_) | Ending::Closed);
    if closing {
        let last = last.expect("closing without a close frame");
        assert_eq!(last.opcode, OpCode::Close, "the last frame is not a close");
    }
    if let (Ending::Protocol(e), false) = (owned.ending.clone(), script.close_first) {
        let payload = &last.unwrap().payload;
        assert!(payload.len() >= 2, "failure close without a code");
        assert_eq!(
            u16::from_be_bytes([payload[0], payload[1]]),
            e.close_code().0,
            "close code for {e:?}"
        );
    }
}

/// Asserts that `got` equals `want`, describing the first difference
/// without printing 100 KiB payloads.
fn same(role: Role, path: &str, got: &Outcome, want: &Outcome) {
    for (i, (g, w)) in got.messages.iter().zip(&want.messages).enumerate() {
        assert!(
            g == w,
            "{path}: message {i} is {}, `receive` gave {}",
            summary(g),
            summary(w)
        );
    }
    assert_eq!(
        got.messages.len(),
        want.messages.len(),
        "{path}: message count (`receive` ended with {:?}, {path} with {:?})",
        want.ending,
        got.ending
    );
    assert_eq!(got.ending, want.ending, "{path}: how reading ended");
    assert_eq!(got.state, want.state, "{path}: the state at the end");
    assert_eq!(
        got.refused_echoes, want.refused_echoes,
        "{path}: refused echoes"
    );
    for (i, (g, w)) in got.sent.iter().zip(&want.sent).enumerate() {
        assert!(
            g == w,
            "{path}: sent frame {i} is {:?} fin={} {} B, `receive` path sent {:?} fin={} {} B",
            g.opcode,
            g.fin,
            g.payload.len(),
            w.opcode,
            w.fin,
            w.payload.len()
        );
    }
    assert_eq!(got.sent.len(), want.sent.len(), "{path}: frames sent");
    if role == Role::Server {
        assert!(got.raw == want.raw, "{path}: bytes sent differ");
    }
}

/// A message in a line: its kind, length and first bytes.
fn summary(m: &Message) -> String {
    let bytes = m.as_bytes();
    let head = &bytes[..bytes.len().min(16)];
    match m {
        Message::Close(frame) => format!("Close({frame:?})"),
        _ => format!(
            "{} of {} B starting {head:02x?}",
            match m {
                Message::Text(_) => "Text",
                Message::Binary(_) => "Binary",
                Message::Ping(_) => "Ping",
                _ => "Pong",
            },
            bytes.len()
        ),
    }
}
