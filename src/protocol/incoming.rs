//! The receiving half of the protocol: bytes in, messages out. A
//! [`FrameDecoder`](super::decoder) turns bytes into frames, an
//! [`Assembler`](super::assembler) turns frames into messages, and an
//! extension (if one was negotiated) stands between them.

use super::assembler::{Assembler, Sink};
use super::decoder::{FrameDecoder, FrameState};
use super::extension::ExtensionDecoder;
use super::{Message, MessageRef, SizeLimits};
use crate::frame::{apply_mask, FrameHeader, OpCode, Parsed, Role};
use crate::ProtocolError;

/// The outcome of one [`Incoming::receive`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// How many bytes of the input were used. The caller passes the rest
    /// (`&data[consumed..]`) to the next call.
    pub consumed: usize,
    /// A complete message or control frame, if one finished within those bytes.
    pub message: Option<Message>,
}

/// The outcome of one [`Incoming::receive_in_place`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRef<'a> {
    /// How many bytes of the input were used.
    pub consumed: usize,
    /// A complete message or control frame, borrowed from the input or the
    /// decoder.
    pub message: Option<MessageRef<'a>>,
}

/// Where [`Incoming::receive_located`] found a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// In the input, unmasked in place: its opcode and where its payload
    /// starts and ends.
    Input {
        /// The frame's opcode (text, binary, ping or pong).
        opcode: OpCode,
        /// Where the payload starts in the input.
        start: usize,
        /// Where it ends.
        end: usize,
    },
    /// Decoded into the decoder's own buffer (a fragmented message, a frame
    /// split across inputs, a close frame), lent out until the next call.
    Held,
}

/// Decodes a byte stream into messages: frame headers, unmasking, limits,
/// fragment reassembly, extensions and incremental UTF-8 validation
/// (RFC 6455 §5, §8.1).
///
/// It keeps at most a partial header (13 bytes), the control frame in progress
/// (125 bytes) and the data message in progress, which grows only with payload
/// bytes that actually arrived, never from a declared length, and never past
/// [`SizeLimits::max_message_size`].
///
/// It does not answer pings or close frames; the reaction path does (see
/// [`Outgoing::react`](super::Outgoing::react)).
#[derive(Debug)]
pub struct Incoming {
    decoder: FrameDecoder,
    assembler: Assembler,
    sink: Sink,
    close_received: bool,
    failed: Option<ProtocolError>,
    /// Where the slice handed out by `payload_space` starts in the message
    /// buffer, until `payload_filled` takes it in.
    direct: Option<usize>,
    /// The last message `receive_in_place` decoded the slow way, which it
    /// lends out until the next call.
    held: Option<Message>,
    /// Bytes the last `payload_filled` took in: the next `payload_space`
    /// offers about twice that, so a peer that sends in small pieces does
    /// not make every read zero-fill a large slice.
    last_direct: usize,
    /// A streamed message's piece ended, and its end is still to report.
    end_pending: bool,
    /// A message turned streamed: what it held is its first piece, still
    /// to hand out after its start.
    piece_pending: bool,
    /// What the last `payload_filled` completed of a streamed message.
    filled: Option<PieceAt>,
    /// The piece `receive_piece` last found was kept, not handed out: the
    /// next `payload_space` adds to it instead of replacing it.
    kept: bool,
}

impl Incoming {
    /// A decoder for the given role: a server expects masked frames, a client unmasked ones.
    pub fn new(role: Role, config: &SizeLimits) -> Incoming {
        Incoming {
            decoder: FrameDecoder::new(role, config.max_frame_size),
            assembler: Assembler::new(config.max_message_size),
            sink: Sink::Control,
            close_received: false,
            failed: None,
            direct: None,
            held: None,
            last_direct: DIRECT_STEP,
            end_pending: false,
            piece_pending: false,
            filled: None,
            kept: false,
        }
    }

    /// Adds the receiving half of a negotiated extension: frames may then
    /// carry its RSV bits, and messages that do are decoded by it (see
    /// [`extension`](super::extension)).
    pub fn add_extension(&mut self, extension: Box<dyn ExtensionDecoder>) {
        self.decoder.allow_rsv(extension.rsv_bits());
        self.assembler.add_extension(extension);
    }

    /// Whether a close frame has been received. Bytes after it are ignored
    /// (RFC 6455 §5.5.1: nothing may follow a close frame).
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Whether a frame or a fragmented message is partly received.
    pub fn in_progress(&self) -> bool {
        self.decoder.in_progress() || self.assembler.in_message()
    }

    /// Bytes held for the data message being reassembled.
    pub fn buffered(&self) -> usize {
        // Not counting a `payload_space` slice that is not filled yet.
        match self.direct {
            Some(start) if self.assembler.in_message() => start,
            _ => self.assembler.buffered(),
        }
    }

    /// Decodes bytes until one message completes or the input runs out.
    ///
    /// Returns how much of `data` was used and the message, if any; call
    /// again with the rest. An error is final: every later call returns it
    /// again, and the connection must be failed with its close code.
    pub fn receive(&mut self, data: &[u8]) -> Result<Received, ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.receive_inner(data);
        self.sticky(result)
    }

    /// Makes an error final: it is remembered, returned by every later call,
    /// and what was buffered is dropped (a failed connection delivers
    /// nothing more).
    fn sticky<T>(&mut self, result: Result<T, ProtocolError>) -> Result<T, ProtocolError> {
        if let Err(e) = &result {
            self.failed = Some(*e);
            self.assembler.reset();
            self.decoder.reset();
        }
        result
    }

    /// Like [`receive`](Incoming::receive), without allocating when it can:
    /// a whole unfragmented message or control frame at the start of `data`
    /// is unmasked in place and returned borrowed from `data`; anything else
    /// is decoded by `receive` and lent out from the decoder until the next
    /// call. `data` is modified (payloads are unmasked where they lie).
    pub fn receive_in_place<'a>(
        &'a mut self,
        data: &'a mut [u8],
    ) -> Result<ReceivedRef<'a>, ProtocolError> {
        let (consumed, located) = self.receive_located(data)?;
        let message = match located {
            Some(located) => Some(self.view(data, located, 0)?),
            None => None,
        };
        Ok(ReceivedRef { consumed, message })
    }

    /// [`receive_in_place`](Incoming::receive_in_place) without the borrow:
    /// says where the message is, for a driver that must let go of `data`
    /// before it looks (see [`view`](Incoming::view)).
    pub fn receive_located(
        &mut self,
        data: &mut [u8],
    ) -> Result<(usize, Option<Located>), ProtocolError> {
        self.held = None;
        if let Some((opcode, start, end)) = self.whole_frame_at_start(data, Streaming::Never) {
            return Ok((end, Some(Located::Input { opcode, start, end })));
        }
        let Received { consumed, message } = self.receive(data)?;
        let located = message.is_some().then_some(Located::Held);
        self.held = message;
        Ok((consumed, located))
    }

    /// Lets go of the message lent out by the last call, so that a large
    /// one does not stay in memory while the connection waits for the next.
    pub(crate) fn release_held(&mut self) {
        self.held = None;
    }

    /// The message [`receive_located`](Incoming::receive_located) found:
    /// `input` is the buffer whose bytes from `base` were passed to it. A
    /// text payload is checked as UTF-8 here (an error is final, as ever).
    pub fn view<'a>(
        &'a mut self,
        input: &'a [u8],
        located: Located,
        base: usize,
    ) -> Result<MessageRef<'a>, ProtocolError> {
        let (opcode, start, end) = match located {
            Located::Held => {
                return Ok(self
                    .held
                    .as_ref()
                    .map_or(MessageRef::Close(None), MessageRef::from))
            }
            Located::Input { opcode, start, end } => (opcode, base + start, base + end),
        };
        let payload = &input[start..end];
        Ok(match opcode {
            OpCode::Text => match std::str::from_utf8(payload) {
                Ok(text) => MessageRef::Text(text),
                Err(_) => return self.sticky(Err(ProtocolError::InvalidUtf8)),
            },
            OpCode::Binary => MessageRef::Binary(payload),
            OpCode::Ping => MessageRef::Ping(payload),
            _ => MessageRef::Pong(payload),
        })
    }

    /// If `data` starts with a whole frame that needs no state (a final text
    /// or binary frame outside a fragmented message and untouched by any
    /// extension, or a ping or pong) and passes the decoder's header rules
    /// and the message limit, unmasks its payload in place and returns its
    /// opcode and where its payload starts and ends. Anything else (errors
    /// included) is left to the general path, which reports it.
    #[inline]
    fn whole_frame_at_start(
        &self,
        data: &mut [u8],
        streaming: Streaming,
    ) -> Option<(OpCode, usize, usize)> {
        if self.failed.is_some()
            || self.close_received
            || !self.decoder.between_frames()
            || self.direct.is_some()
        {
            return None;
        }
        let Ok(Parsed::Complete(h, used)) = FrameHeader::parse(data) else {
            return None;
        };
        let in_message = self.assembler.in_message();
        let data_frame = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let control = matches!(h.opcode, OpCode::Ping | OpCode::Pong);
        if !h.fin
            || !(data_frame || control)
            || self.decoder.check(&h, in_message) != Ok(0)
            || (data_frame && !self.assembler.fits_whole(h.payload_len))
            || (data_frame && streaming.applies(h.payload_len))
        {
            return None;
        }
        let end = used.checked_add(usize::try_from(h.payload_len).ok()?)?;
        let payload = data.get_mut(used..end)?;
        if let Some(key) = h.mask {
            apply_mask(payload, key);
        }
        Some((h.opcode, used, end))
    }

    /// Space to read the current data frame's payload into directly, when at
    /// least `min` payload bytes of it are still to come; `None` otherwise
    /// (and always for a message an extension decodes).
    ///
    /// For large messages this saves a copy: a driver reads from the socket
    /// straight into the message buffer instead of into its read buffer and
    /// from there into the message. Fill a prefix of the slice, then call
    /// [`payload_filled`](Incoming::payload_filled) with how many bytes were
    /// written. Nothing else may be received in between (a frame's payload
    /// is contiguous on the wire).
    ///
    /// The slice never extends past the frame's declared end, and the buffer
    /// grows at most by `max(64 KiB, bytes of the message already here)` per
    /// call (for a streamed message, by twice what the last read delivered,
    /// up to 256 KiB), so a peer that declares a huge length and sends
    /// nothing costs 64 KiB (128 KiB streamed), not its claim (RFC 6455 §10.4).
    pub fn payload_space(&mut self, min: usize) -> Option<&mut [u8]> {
        self.discard_unfilled();
        if self.end_pending || self.piece_pending {
            return None;
        }
        if !self.kept {
            // A streamed message's last piece was handed out: make room.
            self.assembler.clear_piece();
        }
        self.filled = None;
        if !self.direct_ok(min) {
            // No read to add a kept piece to: it is handed out next.
            self.hand_out_kept();
            return None;
        }
        let step = self.direct_step();
        let (start, space) = self.assembler.grow_for_direct(step)?;
        self.direct = Some(start);
        Some(space)
    }

    /// Whether payload may be read straight into the message now: a data
    /// frame of an untransformed message with at least `min` bytes (and at
    /// least one) still to come.
    fn direct_ok(&self, min: usize) -> bool {
        self.failed.is_none()
            && !self.close_received
            && self.sink == Sink::Message
            && self
                .decoder
                .frame()
                .is_some_and(|f| !f.opcode.is_control() && f.remaining >= min.max(1) as u64)
    }

    /// How much `payload_space` offers.
    fn direct_step(&self) -> usize {
        let remaining = self.decoder.frame().map_or(0, |f| f.remaining);
        let have = self.assembler.buffered();
        // Each call zero-fills the slice it hands out (safe code cannot lend
        // uninitialised memory), so offer what the reads are delivering, not
        // the whole frame: twice the last read, at least 16 KiB, at most
        // max(64 KiB, what is here already). A streamed message holds only
        // its latest piece, so it may grow to STREAM_STEP as reads allow:
        // fewer, larger pieces (and echoed fragments) per megabyte.
        let cap = if self.assembler.streaming() {
            STREAM_STEP
        } else {
            have.max(DIRECT_STEP)
        };
        let step = (2 * self.last_direct).max(DIRECT_READ_MIN).min(cap);
        remaining.min(step as u64) as usize
    }

    /// Keeps the [`PieceAt::Data`] that [`receive_piece`](Incoming::receive_piece)
    /// just returned instead of handing it out, when at least `min` bytes
    /// of its frame are still to come and can be read straight in: the
    /// next [`payload_space`](Incoming::payload_space) read is added to it,
    /// and [`filled_piece`](Incoming::filled_piece) reports both as one
    /// piece. Returns whether it kept it (if not, hand the piece out).
    ///
    /// A driver that has just used up its read buffer in the middle of a
    /// large frame calls this before it reads again: what came with the
    /// frame's header and the rest of the frame then make one piece, not a
    /// small one and a large one (so one echoed or relayed frame, one write,
    /// instead of two). The kept bytes wait for that read, which the
    /// frame's sender has already committed to. Anything other than
    /// `payload_space` next (or an unfilled slice) hands the kept piece out
    /// first, as if it had not been kept.
    pub fn keep_piece(&mut self, min: usize) -> bool {
        let keep = self.assembler.streaming()
            && !self.assembler.piece().is_empty()
            && !self.end_pending
            && !self.piece_pending
            && self.direct.is_none()
            && self.direct_ok(min);
        self.kept = keep;
        keep
    }

    /// Takes in `n` payload bytes written at the start of the slice that
    /// [`payload_space`](Incoming::payload_space) returned: unmasks and
    /// validates them, and returns the message if the frame completed it.
    /// `consumed` is always 0 (no bytes of an input slice were used).
    pub fn payload_filled(&mut self, n: usize) -> Result<Received, ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let Some(start) = self.direct.take() else {
            return Ok(done(0));
        };
        // A kept piece and these bytes are one piece now.
        self.kept = false;
        let result = self.payload_filled_inner(start, n);
        self.sticky(result)
    }

    /// The latest piece of a streamed message ([`PieceAt::Data`]).
    pub(crate) fn current_piece(&self) -> &[u8] {
        self.assembler.piece()
    }

    /// For a streamed message (see [`receive_piece`](Incoming::receive_piece)):
    /// what the last [`payload_filled`](Incoming::payload_filled) completed,
    /// a [`PieceAt::Data`] (then, if the message ended with it, a
    /// [`PieceAt::End`] from the next `receive_piece`) or a [`PieceAt::End`].
    pub fn filled_piece(&mut self) -> Option<PieceAt> {
        self.filled.take()
    }

    fn payload_filled_inner(&mut self, start: usize, n: usize) -> Result<Received, ProtocolError> {
        if self.decoder.frame().is_none() {
            return Ok(done(0));
        }
        self.last_direct = self.assembler.truncate_direct(start, n);
        let finished = self.decoder.payload(self.assembler.direct_slice(start));
        self.assembler.take(Sink::Message, start)?;
        let out = self.after_payload(finished)?;
        self.filled = match out {
            Some(Out::Piece) => Some(PieceAt::Data),
            Some(Out::End) => Some(PieceAt::End),
            _ => None,
        };
        let message = match out {
            Some(Out::Message(message)) => Some(message),
            _ => None,
        };
        Ok(Received {
            consumed: 0,
            message,
        })
    }

    /// Drops the zeroed tail a [`payload_space`](Incoming::payload_space)
    /// left that was never filled.
    fn discard_unfilled(&mut self) {
        if let Some(start) = self.direct.take() {
            self.assembler.truncate_direct(start, 0);
            self.hand_out_kept();
        }
    }

    /// A kept piece whose read did not come (or was not asked for) is
    /// handed out as it is, next.
    fn hand_out_kept(&mut self) {
        if std::mem::take(&mut self.kept) {
            self.piece_pending = true;
        }
    }

    fn receive_inner(&mut self, data: &[u8]) -> Result<Received, ProtocolError> {
        let (consumed, out) = self.step(data, Streaming::Never)?;
        let message = match out {
            Out::Message(message) => Some(message),
            // Only a message a `receive_piece` caller began streams here;
            // its pieces are not for `receive`.
            Out::Nothing | Out::Start(_) | Out::Piece | Out::End => None,
        };
        Ok(Received { consumed, message })
    }

    /// Decodes until something is ready: a message or control frame, the
    /// start of a streamed message, a piece of one, or its end.
    fn step(&mut self, data: &[u8], streaming: Streaming) -> Result<(usize, Out), ProtocolError> {
        self.discard_unfilled();
        self.hand_out_kept();
        if std::mem::take(&mut self.end_pending) {
            return Ok((0, Out::End));
        }
        if std::mem::take(&mut self.piece_pending) {
            return Ok((0, Out::Piece));
        }
        self.assembler.clear_piece();
        let mut pos = 0;
        loop {
            if self.close_received {
                return Ok((data.len(), Out::Nothing));
            }
            if self.decoder.frame().is_none() {
                if pos == data.len() {
                    return Ok((pos, Out::Nothing));
                }
                let in_message = self.assembler.in_message();
                match self.decoder.header(&data[pos..], in_message)? {
                    Some((header, used)) => {
                        pos += used;
                        let rsv = self.decoder.frame().map_or(0, |f| f.rsv);
                        let grown = self.assembler.buffered() as u64 + header.payload_len;
                        if header.opcode == OpCode::Continuation
                            && !self.assembler.streaming()
                            && streaming.applies(grown)
                        {
                            // Past the threshold: what is here becomes the
                            // first piece, and the rest streams.
                            if let Some(opcode) = self.assembler.stream_from_here() {
                                self.sink = self.assembler.start_frame(
                                    &header,
                                    rsv,
                                    data.len() - pos,
                                    true,
                                )?;
                                self.piece_pending = !self.assembler.piece().is_empty();
                                return Ok((pos, Out::Start(opcode)));
                            }
                        }
                        let stream = matches!(header.opcode, OpCode::Text | OpCode::Binary)
                            && streaming.applies(header.payload_len);
                        self.sink =
                            self.assembler
                                .start_frame(&header, rsv, data.len() - pos, stream)?;
                        if stream {
                            return Ok((pos, Out::Start(header.opcode)));
                        }
                    }
                    None => return Ok((data.len(), Out::Nothing)),
                }
            }
            let take = self.decoder.take(data.len() - pos);
            let sink = self.sink;
            let dest = self.assembler.sink(sink);
            let start = dest.len();
            dest.extend_from_slice(&data[pos..pos + take]);
            let finished = self.decoder.payload(&mut dest[start..]);
            self.assembler.take(sink, start)?;
            pos += take;
            if let Some(out) = self.after_payload(finished)? {
                return Ok((pos, out));
            }
            if finished.is_none() {
                return Ok((pos, Out::Nothing));
            }
        }
    }

    /// After payload bytes were taken in: what there is to hand out, if
    /// anything (`None`: go on decoding).
    fn after_payload(
        &mut self,
        finished: Option<FrameState>,
    ) -> Result<Option<Out>, ProtocolError> {
        let streaming = self.assembler.streaming();
        let Some(frame) = finished else {
            let piece = streaming && !self.assembler.piece().is_empty();
            return Ok(piece.then_some(Out::Piece));
        };
        let message = self.assembler.finish_frame(frame)?;
        if frame.opcode == OpCode::Close {
            self.close_received = true;
        }
        if let Some(message) = message {
            return Ok(Some(Out::Message(message)));
        }
        if !streaming || frame.opcode.is_control() {
            return Ok(None);
        }
        let ended = !self.assembler.streaming();
        let piece = !self.assembler.piece().is_empty();
        Ok(match (piece, ended) {
            (true, true) => {
                self.end_pending = true;
                Some(Out::Piece)
            }
            (true, false) => Some(Out::Piece),
            (false, true) => Some(Out::End),
            (false, false) => None,
        })
    }

    /// Like [`receive_located`](Incoming::receive_located), delivering data
    /// messages that `streaming` selects in pieces as their bytes arrive
    /// (a [`PieceAt::Start`], [`PieceAt::Data`] pieces, a [`PieceAt::End`])
    /// instead of whole; everything else as before. Look at what it found
    /// with [`view_piece`](Incoming::view_piece).
    ///
    /// A streamed message costs no more memory than one piece, whatever its
    /// size: [`SizeLimits::max_message_size`] does not apply to it (bound what
    /// you keep yourself), except that what an extension (permessage-deflate)
    /// decodes from one piece of wire bytes may not exceed it (a decompression
    /// bomb fails with 1009); `max_frame_size` still applies, and text is
    /// still validated as UTF-8 as it arrives (a bad byte fails with 1007).
    /// Once a message has started streaming, go on with `receive_piece`
    /// until its end.
    pub fn receive_piece(
        &mut self,
        data: &mut [u8],
        streaming: Streaming,
    ) -> Result<(usize, Option<PieceAt>), ProtocolError> {
        self.held = None;
        if !self.end_pending && !self.piece_pending && !self.assembler.in_message() {
            if let Some((opcode, start, end)) = self.whole_frame_at_start(data, streaming) {
                return Ok((
                    end,
                    Some(PieceAt::Message(Located::Input { opcode, start, end })),
                ));
            }
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.step(data, streaming);
        let (consumed, out) = self.sticky(result)?;
        let at = match out {
            Out::Nothing => None,
            Out::Message(message) => {
                self.held = Some(message);
                Some(PieceAt::Message(Located::Held))
            }
            Out::Start(opcode) => Some(PieceAt::Start(opcode)),
            Out::Piece => Some(PieceAt::Data),
            Out::End => Some(PieceAt::End),
        };
        Ok((consumed, at))
    }

    /// What [`receive_piece`](Incoming::receive_piece) found; `input` and
    /// `base` as for [`view`](Incoming::view).
    pub fn view_piece<'a>(
        &'a mut self,
        input: &'a [u8],
        at: PieceAt,
        base: usize,
    ) -> Result<Piece<'a>, ProtocolError> {
        Ok(match at {
            PieceAt::Message(located) => Piece::Message(self.view(input, located, base)?),
            PieceAt::Start(opcode) => Piece::Start(opcode),
            PieceAt::Data => Piece::Data(self.assembler.piece()),
            PieceAt::End => Piece::End,
        })
    }
}

/// What [`Incoming::step`] has to hand out.
enum Out {
    Nothing,
    Message(Message),
    Start(OpCode),
    Piece,
    End,
}

/// Which data messages are delivered in pieces as they arrive (see
/// [`Incoming::receive_piece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    /// None: every message is delivered whole.
    Never,
    /// Every data message.
    Always,
    /// Messages larger than this many bytes: those whose first frame
    /// declares more, and fragmented ones once they grow past it (what
    /// arrived so far is then their first piece). Smaller ones whole, so
    /// memory is bounded by about this much plus one piece.
    Above(usize),
}

impl Streaming {
    fn applies(self, len: u64) -> bool {
        match self {
            Streaming::Never => false,
            Streaming::Always => true,
            Streaming::Above(n) => len > n as u64,
        }
    }
}

/// Where [`Incoming::receive_piece`] found what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceAt {
    /// A whole message or control frame, where [`Located`] says.
    Message(Located),
    /// A streamed data message starts (text or binary).
    Start(OpCode),
    /// The next bytes of the streamed message, held by the decoder.
    Data,
    /// The streamed message is complete.
    End,
}

/// What [`Incoming::receive_piece`] found, borrowed (see
/// [`Incoming::view_piece`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole message or control frame.
    Message(MessageRef<'a>),
    /// A streamed data message starts: [`OpCode::Text`] or [`OpCode::Binary`].
    Start(OpCode),
    /// The next bytes of the streamed message (for text, valid UTF-8 so far;
    /// a code point may be split between pieces).
    Data(&'a [u8]),
    /// The streamed message is complete (and, for text, valid UTF-8).
    End,
}

/// The most [`Incoming::payload_space`] grows a message by when little of it
/// is here yet: a declared length alone costs at most this.
const DIRECT_STEP: usize = 64 * 1024;
/// The least it offers.
const DIRECT_READ_MIN: usize = 16 * 1024;
/// The most it offers for a piece of a streamed message (reached only by
/// doubling from what reads delivered).
const STREAM_STEP: usize = 256 * 1024;

fn done(consumed: usize) -> Received {
    Received {
        consumed,
        message: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::apply_mask;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut header =
            FrameHeader::new(OpCode::from_u4(first & 0x0F).unwrap(), payload.len() as u64);
        header.fin = first & 0x80 != 0;
        header.mask = Some(KEY);
        let mut wire = header.encode().as_bytes().to_vec();
        let start = wire.len();
        wire.extend_from_slice(payload);
        apply_mask(&mut wire[start..], KEY);
        wire
    }

    fn server() -> Incoming {
        Incoming::new(Role::Server, &SizeLimits::default())
    }

    #[test]
    fn in_place_borrows_whole_frames_from_the_input() {
        let mut wire = masked(0x81, b"Hello");
        wire.extend(masked(0x89, b"ping"));
        wire.extend(masked(0x82, &[1, 2, 3]));
        let mut rx = server();
        let r = rx.receive_in_place(&mut wire).unwrap();
        assert_eq!(
            (r.consumed, r.message),
            (11, Some(MessageRef::Text("Hello")))
        );
        let r = rx.receive_in_place(&mut wire[11..]).unwrap();
        assert_eq!(r.message, Some(MessageRef::Ping(b"ping")));
        let r = rx.receive_in_place(&mut wire[21..]).unwrap();
        assert_eq!(r.message, Some(MessageRef::Binary(&[1, 2, 3])));
    }

    #[test]
    fn in_place_falls_back_for_fragments_split_frames_and_close() {
        let mut wire = masked(0x01, b"Hel");
        wire.extend(masked(0x80, b"lo"));
        wire.extend(masked(0x88, &[0x03, 0xe8]));
        let mut rx = server();
        let mut pos = 0;
        let mut got = Vec::new();
        // Byte by byte: every frame is split across calls.
        let mut pending = Vec::new();
        while pos < wire.len() {
            pending.push(wire[pos]);
            pos += 1;
            let len = pending.len();
            let r = rx.receive_in_place(&mut pending).unwrap();
            assert_eq!(r.consumed, len);
            if let Some(m) = r.message {
                got.push(m.to_message());
            }
            pending.clear();
        }
        assert_eq!(
            got,
            [
                Message::Text("Hello".into()),
                Message::Close(Some(crate::CloseFrame::new(crate::CloseCode::NORMAL)))
            ]
        );
    }

    #[test]
    fn in_place_rejects_invalid_utf8_and_stays_failed() {
        let mut wire = masked(0x81, b"ok \xC0");
        let mut rx = server();
        assert_eq!(
            rx.receive_in_place(&mut wire),
            Err(ProtocolError::InvalidUtf8)
        );
        let mut more = masked(0x81, b"fine");
        assert_eq!(
            rx.receive_in_place(&mut more),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn in_place_applies_the_header_rules() {
        let mut rx = server();
        let mut unmasked = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(
            rx.receive_in_place(&mut unmasked),
            Err(ProtocolError::UnmaskedFrameFromClient)
        );
        let mut rx = Incoming::new(Role::Server, &SizeLimits::default().max_frame_size(3));
        let mut big = masked(0x82, &[0; 4]);
        assert_eq!(
            rx.receive_in_place(&mut big),
            Err(ProtocolError::FrameTooBig)
        );
    }

    #[test]
    fn direct_payload_reads_match_the_buffered_path() {
        let text: String = "κόσμε-".repeat(30_000);
        let wire = masked(0x81, text.as_bytes());
        let mut rx = server();
        // The header and the first bytes arrive through `receive`...
        let r = rx.receive(&wire[..100]).unwrap();
        assert_eq!((r.consumed, r.message), (100, None));
        let mut pos = 100;
        let mut message = None;
        // ... the rest straight into the message, in odd-sized pieces.
        while message.is_none() {
            let buffered = rx.buffered();
            let space = rx.payload_space(1).expect("payload space");
            assert!(space.len() <= 64 * 1024 + buffered);
            let n = space.len().min(7777).min(wire.len() - pos);
            space[..n].copy_from_slice(&wire[pos..pos + n]);
            pos += n;
            message = rx.payload_filled(n).unwrap().message;
        }
        assert_eq!(pos, wire.len());
        assert_eq!(message, Some(Message::Text(text)));
        assert!(rx.payload_space(1).is_none());
    }

    #[test]
    fn unfilled_payload_space_is_discarded() {
        let payload = vec![7u8; 100_000];
        let wire = masked(0x82, &payload);
        let mut rx = server();
        rx.receive(&wire[..50]).unwrap();
        let before = rx.buffered();
        assert!(rx.payload_space(1).is_some());
        assert_eq!(rx.buffered(), before);
        // Not filled: the bytes come through `receive` after all.
        let r = rx.receive(&wire[50..]).unwrap();
        assert_eq!(r.message, Some(Message::Binary(payload)));
    }

    #[test]
    fn a_declared_length_alone_reserves_at_most_64_kib() {
        let mut header = FrameHeader::new(OpCode::Binary, 10 << 20);
        header.mask = Some(KEY);
        let mut rx = server();
        rx.receive(header.encode().as_bytes()).unwrap();
        assert_eq!(rx.payload_space(1).map(|s| s.len()), Some(64 * 1024));
    }

    #[test]
    fn small_direct_reads_are_offered_small_slices() {
        // A peer sending a large frame in small pieces must not make every
        // read zero-fill a large slice (that was quadratic in the frame size).
        let payload = vec![7u8; 4 << 20];
        let wire = masked(0x82, &payload);
        let mut rx = server();
        rx.receive(&wire[..14]).unwrap();
        let mut pos = 14;
        for _ in 0..100 {
            let space = rx.payload_space(1).expect("payload space");
            assert!(space.len() <= 64 * 1024);
            space[..100].copy_from_slice(&wire[pos..pos + 100]);
            pos += 100;
            assert_eq!(rx.payload_filled(100).unwrap().message, None);
        }
        assert_eq!(rx.payload_space(1).map(|s| s.len()), Some(16 * 1024));
    }

    /// Feeds `wire[..head]` through `receive_piece`, keeps the piece, then
    /// reads the rest of the frame straight in: what the driver does when
    /// its read buffer ends in the middle of a large streamed frame.
    fn kept_then_filled(rx: &mut Incoming, wire: &mut [u8], head: usize) -> Vec<u8> {
        let (used, at) = rx
            .receive_piece(&mut wire[..head], Streaming::Always)
            .unwrap();
        assert_eq!((used, at), (14, Some(PieceAt::Start(OpCode::Binary))));
        let (used, at) = rx
            .receive_piece(&mut wire[14..head], Streaming::Always)
            .unwrap();
        assert_eq!((used, at), (head - 14, Some(PieceAt::Data)));
        assert!(rx.keep_piece(16 * 1024));
        let space = rx
            .payload_space(16 * 1024)
            .expect("space after the kept piece");
        let n = space.len().min(wire.len() - head);
        space[..n].copy_from_slice(&wire[head..head + n]);
        rx.payload_filled(n).unwrap();
        assert_eq!(rx.filled_piece(), Some(PieceAt::Data));
        rx.current_piece().to_vec()
    }

    #[test]
    fn a_kept_piece_and_the_next_direct_read_make_one_piece() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = masked(0x82, &payload);
        let mut rx = server();
        let piece = kept_then_filled(&mut rx, &mut wire, 14 + 1000);
        assert!(piece.len() > 1000);
        assert_eq!(piece, payload[..piece.len()]);
    }

    #[test]
    fn a_kept_piece_is_handed_out_when_its_read_does_not_come() {
        let payload = vec![9u8; 100_000];
        let mut wire = masked(0x82, &payload);
        let mut rx = server();
        rx.receive_piece(&mut wire[..14], Streaming::Always)
            .unwrap();
        rx.receive_piece(&mut wire[14..1014], Streaming::Always)
            .unwrap();
        assert!(rx.keep_piece(16 * 1024));
        // The read is offered but nothing is filled (a timeout, say): the
        // next call hands the kept bytes out, whole.
        assert!(rx.payload_space(16 * 1024).is_some());
        let (used, at) = rx.receive_piece(&mut [], Streaming::Always).unwrap();
        assert_eq!((used, at), (0, Some(PieceAt::Data)));
        assert_eq!(rx.current_piece(), &payload[..1000]);
        // Too little of the frame left to read straight in: not kept.
        let (_, at) = rx
            .receive_piece(&mut wire[1014..90_000], Streaming::Always)
            .unwrap();
        assert_eq!(at, Some(PieceAt::Data));
        assert!(!rx.keep_piece(16 * 1024));
    }
}
