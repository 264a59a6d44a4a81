//! Messages larger than memory: a message read as an [`io::Read`] while its
//! frames arrive ([`MessageReader`]), and a message sent from an
//! [`io::Read`], a fragment per buffer-full (`send_stream`).

use super::recv::{RecvSide, SendSide, Step};
use crate::error::{Error, Result};
use crate::frame::OpCode;
use std::io::{self, Read};

/// What a [`MessageReader`] pulls from: the receiving side with the sending
/// side it answers control frames on.
pub(super) trait Pull {
    fn step(&mut self) -> Result<Step>;
    fn piece(&self) -> &[u8];
    fn abandon(&mut self);
}

pub(super) struct Pulling<'a, K> {
    pub(super) recv: &'a mut RecvSide,
    pub(super) side: K,
}

impl<K: SendSide> Pull for Pulling<'_, K> {
    fn step(&mut self) -> Result<Step> {
        self.recv.next_piece(&mut self.side)
    }
    fn piece(&self) -> &[u8] {
        self.recv.piece()
    }
    fn abandon(&mut self) {
        self.recv.discard_rest_of_message();
    }
}

impl<'a, K: SendSide> Pulling<'a, K> {
    /// Skips control frames (answering them) up to the start of the next
    /// data message.
    /// The next data message as a reader: streamed, or (when its first
    /// frame had arrived before streaming was asked for) whole.
    pub(super) fn start(mut self) -> Result<MessageReader<'a>>
    where
        K: 'a,
    {
        loop {
            match self.step()? {
                Step::Start(opcode) => return Ok(MessageReader::new(Box::new(self), opcode)),
                Step::Whole(opcode, data) => {
                    let mut reader = MessageReader::new(Box::new(self), opcode);
                    reader.whole = data;
                    reader.done = true;
                    return Ok(reader);
                }
                // The rest of a message skipped by a dropped reader.
                Step::Data | Step::End => {}
            }
        }
    }
}

/// The next data message, read as it arrives: an [`io::Read`] over its
/// payload, from [`WebSocket::read_stream`](super::WebSocket::read_stream)
/// or [`Reader::read_stream`](super::Reader::read_stream).
///
/// It holds no more than one piece of the message (what one socket read
/// brought) however large the message is. Pings that arrive between its
/// fragments are answered. Text is validated as UTF-8 as it arrives: the
/// first invalid byte fails the connection with 1007 and `read` returns an
/// error of kind `InvalidData`. `max_message_size` does not apply (bound
/// what you keep); `max_frame_size` does. Dropping the reader before the
/// end skips the rest of the message, so the connection stays usable for
/// the next one.
pub struct MessageReader<'a> {
    pull: Box<dyn Pull + 'a>,
    opcode: OpCode,
    /// A message that had to be delivered whole, copied out.
    whole: Vec<u8>,
    /// Bytes of the current piece already copied out.
    offset: usize,
    have_piece: bool,
    done: bool,
}

impl std::fmt::Debug for MessageReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageReader")
            .field("opcode", &self.opcode)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'a> MessageReader<'a> {
    pub(super) fn new(pull: Box<dyn Pull + 'a>, opcode: OpCode) -> MessageReader<'a> {
        MessageReader {
            pull,
            opcode,
            whole: Vec::new(),
            offset: 0,
            have_piece: false,
            done: false,
        }
    }

    /// [`OpCode::Text`] or [`OpCode::Binary`].
    pub fn opcode(&self) -> OpCode {
        self.opcode
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        self.opcode == OpCode::Text
    }

    /// Whether the whole message has been read.
    pub fn is_done(&self) -> bool {
        self.done && !self.have_piece && self.whole.is_empty()
    }
}

impl Read for MessageReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.whole.is_empty() {
            let n = (self.whole.len() - self.offset).min(buf.len());
            buf[..n].copy_from_slice(&self.whole[self.offset..self.offset + n]);
            self.offset += n;
            if self.offset == self.whole.len() {
                self.whole = Vec::new();
                self.offset = 0;
            }
            return Ok(n);
        }
        loop {
            if self.have_piece {
                let piece = self.pull.piece();
                let n = (piece.len() - self.offset).min(buf.len());
                buf[..n].copy_from_slice(&piece[self.offset..self.offset + n]);
                self.offset += n;
                if self.offset >= piece.len() {
                    self.have_piece = false;
                }
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
            }
            if self.done {
                return Ok(0);
            }
            match self.pull.step().map_err(into_io)? {
                Step::Data => {
                    self.have_piece = true;
                    self.offset = 0;
                }
                Step::End => self.done = true,
                Step::Start(_) | Step::Whole(..) => {
                    return Err(io::Error::other("a new message started inside this one"))
                }
            }
        }
    }
}

impl Drop for MessageReader<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.pull.abandon();
        }
    }
}

/// The error a reader returns for one of ours.
fn into_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::Io(_) => return into_inner_io(e),
        Error::Protocol(_) => io::ErrorKind::InvalidData,
        Error::ConnectionClosed | Error::AlreadyClosed => io::ErrorKind::UnexpectedEof,
        Error::Timeout(_) => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

fn into_inner_io(e: Error) -> io::Error {
    match e {
        Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

/// The loop of `send_stream`, for both the owned socket and the split
/// writer: reads `source` into fragments of `fragment_size` bytes and hands
/// each to `frame` (the first with `opcode`, the rest as continuations, the
/// last with `fin`). If the source fails after the first fragment,
/// `source_failed` closes the connection (see [`SOURCE_FAILED`]). Returns
/// the bytes sent.
pub(super) fn send_fragments<C>(
    ctx: &mut C,
    opcode: OpCode,
    mut source: impl Read,
    fragment_size: usize,
    mut frame: impl FnMut(&mut C, OpCode, &[u8], bool) -> Result<()>,
    source_failed: impl FnOnce(&mut C),
) -> Result<u64> {
    let mut buf = fragment_buffer(fragment_size);
    let mut frame_opcode = opcode;
    let mut total = 0u64;
    loop {
        let n = match fill(&mut source, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                if frame_opcode == OpCode::Continuation {
                    source_failed(ctx);
                }
                return Err(e);
            }
        };
        let fin = n < buf.len();
        frame(ctx, frame_opcode, &buf[..n], fin)?;
        total += n as u64;
        frame_opcode = OpCode::Continuation;
        if fin {
            return Ok(total);
        }
    }
}

/// Fills `buf` from `source` until it is full or the source ends; returns
/// how much it holds.
fn fill(source: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(n)
}

/// Why a streamed send broke off: after its first fragment, a failing
/// source leaves a message that can never be finished honestly (an empty
/// final frame would hand the peer a truncated message as if complete), so
/// the connection is closed with 1011 instead of being left open but
/// unable to send any data message again.
pub(super) const SOURCE_FAILED: &str = "message source failed";

/// The fragment buffer for `send_stream`: at least a byte, at most 16 MiB
/// (the default largest frame a peer accepts).
fn fragment_buffer(fragment_size: usize) -> Vec<u8> {
    vec![0; fragment_size.clamp(1, 16 << 20)]
}

/// `send_stream` sends data messages only.
pub(super) fn check_data_opcode(opcode: OpCode) -> Result<()> {
    match opcode {
        OpCode::Text | OpCode::Binary => Ok(()),
        _ => Err(Error::InvalidSend(crate::SendError::NotADataOpcode)),
    }
}
