//! The receiving half of the protocol: bytes in, messages out. A
//! [`FrameDecoder`](super::decoder) turns bytes into frames, an
//! [`Assembler`](super::assembler) turns frames into messages, and an
//! extension (if one was negotiated) stands between them.
//!
//! One decoder, four ways to receive from it, one file each:
//!
//! | file | receive family |
//! | --- | --- |
//! | `mod.rs` | [`Incoming::receive`]: each message in its own allocation; the shared decoding step |
//! | `in_place.rs` | [`Incoming::receive_in_place`] / [`receive_located`](Incoming::receive_located): a whole frame unmasked where it lies, lent out |
//! | `direct.rs` | [`Incoming::payload_space`] / [`payload_filled`](Incoming::payload_filled): a large payload read straight into its message |
//! | `pieces.rs` | [`Incoming::receive_piece`]: a message in pieces as they arrive ([`Streaming`]) |

mod direct;
mod in_place;
mod pieces;

pub use in_place::{Located, ReceivedRef};
pub use pieces::{Piece, PieceAt, Streaming};

use super::assembler::{Assembler, Sink};
use super::decoder::{FrameDecoder, FrameState};
use super::extension::ExtensionDecoder;
use super::{Budget, Message, SizeLimits};
use crate::frame::{OpCode, ProtocolError, Role};
use direct::DIRECT_STEP;

/// The outcome of one [`Incoming::receive`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// How many bytes of the input were used. The caller passes the rest
    /// (`&data[consumed..]`) to the next call.
    pub consumed: usize,
    /// A complete message or control frame, if one finished within those bytes.
    pub message: Option<Message>,
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
    /// The memory budget shared with other connections, and what this one
    /// has taken from it: the bytes held for the message in progress.
    budget: Option<Budget>,
    charged: usize,
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
            budget: config.budget.clone(),
            charged: 0,
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
        let result = result.and_then(|value| self.charge().map(|()| value));
        if let Err(e) = &result {
            self.failed = Some(*e);
            self.assembler.reset();
            self.decoder.reset();
            self.charge_nothing();
        }
        result
    }

    /// Takes from the shared budget what the message in progress holds now,
    /// or gives back what it no longer does (see [`Budget`]): refused, the
    /// connection fails with 1013. Every receive path ends here; a whole
    /// frame read in place holds nothing and costs nothing.
    fn charge(&mut self) -> Result<(), ProtocolError> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        let held = self.assembler.buffered();
        if held > self.charged {
            if !budget.try_take(held - self.charged) {
                return Err(ProtocolError::OverBudget);
            }
        } else if held < self.charged {
            budget.give(self.charged - held);
        }
        self.charged = held;
        Ok(())
    }

    /// Gives back everything taken (the connection failed, or ended).
    fn charge_nothing(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give(std::mem::take(&mut self.charged));
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
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.charge_nothing();
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

fn done(consumed: usize) -> Received {
    Received {
        consumed,
        message: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{apply_mask, FrameHeader};
    use crate::protocol::MessageRef;

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
