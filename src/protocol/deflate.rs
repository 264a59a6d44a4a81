//! permessage-deflate (RFC 7692 §6–§7): the compression extension through the
//! [`extension`](super::extension) seam. The framing, the tail and the
//! context rules are here; DEFLATE itself is flate2's (zlib-rs backend).
//!
//! - Receiving (§6.2, §7.2.2): a message whose first frame has RSV1 is
//!   inflated piece by piece as its frames arrive, with the `00 00 ff ff`
//!   tail appended at its end. Output is bounded by the size limit as it
//!   grows: a decompression bomb costs at most `max_message_size`.
//! - Sending (§6.1, §7.2.1): a whole message at least
//!   [`min_size`](crate::handshake::DeflateConfig::min_size) long is
//!   compressed with a sync flush, the tail is stripped and RSV1 is set.
//! - Context takeover (§7.1.1): kept unless negotiated away. Without it a
//!   compressor or decompressor is lent from a shared pool for one message.
//!   With it a connection keeps its engines between messages only while it
//!   is among the [`live_contexts`] most recently active (a process-wide
//!   budget, see `pool.rs`); otherwise it keeps just the LZ77 window (2^bits
//!   bytes each way, `window.rs`) and makes an engine again, primed with
//!   it, at its next message: it compresses as well, and RFC 7692's rules stay
//!   kept (see [`DeflateEncoder`]'s `encode` for why). So an idle
//!   connection holds no engine, only its windows.
//! - Broadcast: without context takeover a message's compressed form
//!   depends only on the window and level, so a
//!   [`PreparedMessage`](super::PreparedMessage) is compressed once per
//!   distinct pair and shared by every such recipient
//!   ([`Sharing::Shared`]); with it each recipient compresses for itself.
//!
//! ```
//! use rfc6455::frame::Role;
//! use rfc6455::handshake::extensions::parse;
//! use rfc6455::handshake::{DeflateConfig, Negotiated};
//! use rfc6455::protocol::{deflate, SizeLimits, Connection, Message};
//!
//! let mut negotiated = Negotiated::default();
//! negotiated.extensions = parse(["permessage-deflate"]).unwrap();
//! let cfg = DeflateConfig::default().min_size(0);
//! let mut server = Connection::new(Role::Server, SizeLimits::default());
//! let mut client = Connection::new(Role::Client, SizeLimits::default());
//! for (conn, role) in [(&mut server, Role::Server), (&mut client, Role::Client)] {
//!     let (decoder, encoder) = deflate::from_negotiated(role, &negotiated, Some(&cfg)).unwrap();
//!     conn.add_extension(decoder, encoder);
//! }
//! let text = "hello hello hello hello hello hello";
//! server.send(&Message::Text(text.into())).unwrap();
//! let wire = server.data_to_send().to_vec();
//! assert_eq!(wire[0], 0x80 | 0x40 | 0x1); // FIN, RSV1, text
//! assert!(wire.len() < text.len());
//! let got: Vec<_> = client.feed(&wire).map(Result::unwrap).collect();
//! assert_eq!(got, [Message::Text(text.into())]);
//! ```

use super::extension::{ExtensionDecoder, ExtensionEncoder, Sharing, RSV1};
use crate::frame::ProtocolError;
use crate::frame::{OpCode, Role};
use crate::handshake::extensions::PERMESSAGE_DEFLATE;
use crate::handshake::{DeflateConfig, DeflateParams, Negotiated};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use pool::Live;
use std::fmt;
use window::History;

mod pool;
mod window;

pub use pool::{live_contexts, set_live_contexts, DEFAULT_LIVE_CONTEXTS};

/// RFC 7692 §7.2.1: the bytes a sync flush ends with, removed before sending
/// and appended again before inflating (§7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output is produced in steps of at least this much, doubling with the
/// message, so a large message costs few calls and a small one little memory.
const MIN_STEP: usize = 4096;

/// The extension halves for what the handshake `negotiated`, if it agreed
/// permessage-deflate: the window sizes and context rules come from the
/// server's answer (RFC 7692 §7.1), the level and minimum size from
/// `config` (the defaults when `None`). Our compression window is the
/// smaller of the answer's and `config`'s.
///
/// See the [module documentation](self) for an example.
pub fn from_negotiated(
    role: Role,
    negotiated: &Negotiated,
    config: Option<&DeflateConfig>,
) -> Option<(Box<dyn ExtensionDecoder>, Box<dyn ExtensionEncoder>)> {
    let answer = negotiated
        .extensions
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))?;
    let params = DeflateParams::from_answer(answer, role == Role::Server)?;
    let config = config.copied().unwrap_or_default();
    Some((
        Box::new(DeflateDecoder::new(&params)),
        Box::new(DeflateEncoder::new(&params, &config)),
    ))
}

/// With context takeover, what a connection keeps between messages: its
/// claim to a live engine (which it may lose to busier connections) and
/// the window, from which a lost engine is made again.
struct Takeover<T: pool::Engine> {
    live: Live<T>,
    window: History,
}

impl<T: pool::Engine> Takeover<T> {
    fn new(bits: u8) -> Takeover<T> {
        Takeover {
            live: Live::new(),
            window: History::new(bits),
        }
    }
}

/// The receiving half: inflates messages whose first frame has RSV1.
pub struct DeflateDecoder {
    /// zlib cannot inflate with an 8-bit window; 9 reads everything 8 can.
    window_bits: u8,
    /// With context takeover (the peer keeps its context): the live
    /// decompressor and the window. `None`: the peer resets after each
    /// message, so a fresh decompressor is lent for each.
    takeover: Option<Takeover<Decompress>>,
    /// The decompressor of the message being received.
    inflate: Option<Box<Decompress>>,
    /// The peer ended the DEFLATE stream (a block with BFINAL) inside this
    /// message: the rest of it is ignored and the next one starts afresh.
    ended: bool,
    /// Whether the message so far had any payload byte.
    had_input: bool,
}

impl fmt::Debug for DeflateDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeflateDecoder")
            .field("window_bits", &self.window_bits)
            .field("reset", &self.takeover.is_none())
            .field("allocated", &self.holds_engine())
            .finish()
    }
}

impl DeflateDecoder {
    /// A decoder for the agreed parameters.
    pub fn new(params: &DeflateParams) -> DeflateDecoder {
        let window_bits = params.decompress_window_bits.clamp(9, 15);
        DeflateDecoder {
            window_bits,
            takeover: (!params.decompress_reset).then(|| Takeover::new(window_bits)),
            inflate: None,
            ended: false,
            had_input: false,
        }
    }

    /// Gives the decompressor back to the shared pool now, unless a message
    /// is being received (its state is needed for the rest). With context
    /// takeover the window is kept, and the next message makes a
    /// decompressor again from it. This happens anyway when other
    /// connections need the place ([`live_contexts`]).
    pub fn release(&mut self) {
        if self.inflate.is_none() {
            if let Some(t) = &mut self.takeover {
                t.live.release();
            }
        }
    }

    fn holds_engine(&self) -> bool {
        self.inflate.is_some() || self.takeover.as_ref().is_some_and(|t| t.live.holds())
    }

    /// The decompressor for the message being received: the one in use,
    /// the live one kept since the last message, or a fresh one lent from
    /// the pool (primed with the window under context takeover).
    fn engine(&mut self) -> &mut Decompress {
        let takeover = &mut self.takeover;
        self.inflate.get_or_insert_with(|| {
            // Lent: see `pool::take_inflate` for why its window is always
            // 15 bits.
            let Some(t) = takeover else {
                return pool::take_inflate();
            };
            t.live.take().unwrap_or_else(|| {
                let mut inflate = pool::take_inflate();
                let window = t.window.as_slice();
                if !window.is_empty() {
                    // RFC 7692 §7.2.2: with context takeover "the server MUST
                    // decompress each new message using the LZ77 sliding
                    // window used to process the last compressed message".
                    // These are its last 2^bits bytes, all the peer may refer
                    // to (§7.1.2). A raw inflater takes a dictionary at any
                    // time, so this cannot fail; if it did, the first
                    // reference into it would fail the message with 1007.
                    let _ = inflate.set_dictionary(window);
                }
                inflate
            })
        })
    }

    /// Inflates `input` into `out`, never past `max` bytes.
    fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        loop {
            if self.ended {
                return Ok(());
            }
            let inflate = self.engine();
            let len = out.len();
            let room = max.saturating_sub(len);
            if room == 0 {
                // At the limit: any further byte of output is one too many.
                let mut probe = [0u8; 1];
                let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
                let status = inflate
                    .decompress(input, &mut probe, FlushDecompress::Sync)
                    .map_err(|_| ProtocolError::InvalidCompressedData)?;
                if inflate.total_out() > out_before {
                    return Err(ProtocolError::MessageTooBig);
                }
                let used = (inflate.total_in() - in_before) as usize;
                input = &input[used..];
                if matches!(status, Status::StreamEnd) {
                    self.ended = true;
                }
                if input.is_empty() || used == 0 {
                    return Ok(());
                }
                continue;
            }
            // RFC 6455 §10.4 / the decompression-bomb rule: grow by steps,
            // never past the limit, never from a length the peer declared.
            let step = room.min(len.max(MIN_STEP).max(input.len() * 2));
            // Exact: the step already doubles with the message, and amortized
            // growth could reserve up to twice the limit.
            out.reserve_exact(step);
            out.resize(len + step, 0);
            let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
            let result = inflate.decompress(input, &mut out[len..], FlushDecompress::Sync);
            let used = (inflate.total_in() - in_before) as usize;
            let made = (inflate.total_out() - out_before) as usize;
            out.truncate(len + made);
            let status = result.map_err(|_| ProtocolError::InvalidCompressedData)?;
            input = &input[used..];
            if matches!(status, Status::StreamEnd) {
                self.ended = true;
                return Ok(());
            }
            if made < step && (input.is_empty() || used == 0) {
                // Everything that can come out of this input is out. Input
                // left with no progress is data zlib cannot use.
                return if input.is_empty() {
                    Ok(())
                } else {
                    Err(ProtocolError::InvalidCompressedData)
                };
            }
        }
    }

    /// The message ended (`ok`: well): the decompressor goes back to the
    /// live set (context takeover, the stream going on) or to the pool.
    fn finish_message(&mut self, ok: bool) {
        if let Some(inflate) = self.inflate.take() {
            match &mut self.takeover {
                Some(t) if ok && !self.ended => t.live.put((0, 0), inflate),
                // Reset on the way in: nothing of it reaches another
                // connection.
                _ => pool::give_inflate(inflate),
            }
        }
        if self.ended {
            // §7.2.2 reads the next message with the window of this one,
            // but a stream that ended has none: start afresh, as zlib would.
            if let Some(t) = &mut self.takeover {
                t.window.clear();
            }
        }
        self.ended = false;
        self.had_input = false;
    }
}

impl ExtensionDecoder for DeflateDecoder {
    fn rsv_bits(&self) -> u8 {
        // RFC 7692 §6: "the "Per-Message Compressed" bit", RSV1.
        RSV1
    }

    fn decode(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        self.had_input |= !input.is_empty();
        let start = out.len();
        let result = self.inflate(input, out, max).and_then(|()| {
            // An empty payload is an empty message: appending the tail to
            // nothing would read `00 00 ff ff` as a stored block header with
            // bad lengths (some senders skip the 0x00 of RFC 7692 §7.2.3.6).
            if fin && self.had_input {
                // RFC 7692 §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to
                // the tail end of the payload of the message."
                self.inflate(&TAIL, out, max)
            } else {
                Ok(())
            }
        });
        if let (Some(t), Ok(())) = (&mut self.takeover, &result) {
            // What the next message may refer to, should the decompressor
            // not be live by then.
            t.window.push(&out[start..]);
        }
        if fin || result.is_err() {
            self.finish_message(result.is_ok());
        }
        result
    }
}

/// The sending half: compresses whole messages and sets RSV1.
pub struct DeflateEncoder {
    /// 8 means "never compress": zlib cannot honour a 256-byte window.
    window_bits: u8,
    level: u32,
    min_size: usize,
    /// With context takeover: the live compressor and the window the
    /// peer's decompressor holds. `None`: every message is compressed by a
    /// fresh compressor lent from the pool for that message.
    takeover: Option<Takeover<Compress>>,
}

impl fmt::Debug for DeflateEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeflateEncoder")
            .field("window_bits", &self.window_bits)
            .field("reset", &self.takeover.is_none())
            .field("level", &self.level)
            .field("min_size", &self.min_size)
            .field("allocated", &self.holds_engine())
            .finish()
    }
}

impl DeflateEncoder {
    /// An encoder for the agreed parameters, with the level, minimum size and
    /// window cap of `config`.
    pub fn new(params: &DeflateParams, config: &DeflateConfig) -> DeflateEncoder {
        let window_bits = params.compress_window_bits.min(config.window_bits);
        let reset = params.compress_reset || config.no_context_takeover;
        DeflateEncoder {
            window_bits,
            level: config.level.min(9),
            min_size: config.min_size,
            takeover: (!reset).then(|| Takeover::new(window_bits)),
        }
    }

    /// Gives the compressor back to the shared pool now. With context
    /// takeover the window is kept, and the next message makes a
    /// compressor again from it (the same ratio, a few microseconds more
    /// for that message). This happens anyway when other connections need
    /// the place ([`live_contexts`]).
    pub fn release(&mut self) {
        if let Some(t) = &mut self.takeover {
            t.live.release();
        }
    }

    fn holds_engine(&self) -> bool {
        self.takeover.as_ref().is_some_and(|t| t.live.holds())
    }
}

/// Compresses a whole message into `out` (RFC 7692 §7.2.1), its tail
/// removed. `false` if zlib failed (it cannot with valid parameters): the
/// compressor's state is then unknown and `out` is cleared.
fn compress_message(deflate: &mut Compress, payload: &[u8], out: &mut Vec<u8>) -> bool {
    out.reserve(payload.len() / 2 + 64);
    let mut input = payload;
    loop {
        let before = deflate.total_in();
        // §7.2.1: compress with a sync flush ("Compress all the octets of
        // the payload of the message using DEFLATE" and end on a block
        // boundary).
        let status = deflate.compress_vec(input, out, FlushCompress::Sync);
        let used = (deflate.total_in() - before) as usize;
        input = &input[used..];
        if status.is_err() {
            out.clear();
            return false;
        }
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    // §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the
    // tail end."
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    true
}

impl ExtensionEncoder for DeflateEncoder {
    fn encode(&mut self, _opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Option<u8> {
        // RFC 7692 §6.1: any message may be sent uncompressed (RSV1 clear).
        // zlib's smallest raw window is 9 bits; with 8 agreed we never
        // compress rather than risk back-references the peer cannot follow.
        if self.window_bits < 9 || payload.len() < self.min_size {
            return None;
        }
        if payload.is_empty() {
            // RFC 7692 §7.2.3.6: an empty message is the single byte 0x00 (an
            // empty stored block, its tail removed). Not through zlib: a
            // second sync flush with no input in between produces nothing
            // at all, and an empty payload plus the tail is not DEFLATE.
            out.push(0x00);
            return Some(RSV1);
        }
        let (bits, level) = (self.window_bits, self.level);
        let Some(t) = &mut self.takeover else {
            // §7.1.1.1: no context takeover; nothing lives between
            // messages, and the compressor goes back to the pool for the
            // next message of any connection.
            let mut deflate = pool::take(bits, level);
            let ok = compress_message(&mut deflate, payload, out);
            pool::give(bits, level, deflate);
            return ok.then_some(RSV1);
        };
        // Context takeover (RFC 7692 §7: "the same LZ77 sliding window used
        // by the endpoint to build frames of the previous sent message is
        // reused to build frames of the next message") is the compressor's
        // option, never its duty: the rules bind the decompressor (§7.2.2:
        // the peer "MUST decompress each new message using the LZ77 sliding
        // window used to process the last compressed message"), and a
        // client's `server_no_context_takeover` only forbids the server to
        // use it (§7.1.1.1). A compressor that starts a message with an
        // empty window, or with the last 2^bits bytes it sent compressed
        // (exactly what that window holds, §7.1.2), makes back-references
        // the peer resolves as it would have. So a compressor released
        // after a message and made again from the window for the next one
        // is conformant, and compresses as well as the one it replaces.
        let mut deflate = t.live.take().unwrap_or_else(|| {
            let mut deflate = pool::take(bits, level);
            let window = t.window.as_slice();
            if !window.is_empty() {
                // A fresh raw compressor accepts a dictionary; should it not,
                // the message is compressed with an empty window, which the
                // peer reads just as well (only the ratio suffers).
                let _ = deflate.set_dictionary(window);
            }
            deflate
        });
        if !compress_message(&mut deflate, payload, out) {
            // Sent as it is; the peer's window does not change, and the
            // next message starts from ours.
            pool::give(bits, level, deflate);
            return None;
        }
        // Only compressed messages enter the peer's window (an uncompressed
        // one is not inflated, §6.1).
        t.window.push(payload);
        t.live.put((bits, level), deflate);
        Some(RSV1)
    }

    fn sharing(&self, _opcode: OpCode, len: usize) -> Sharing {
        if self.window_bits < 9 || len < self.min_size {
            // Sent as it is; the compressor is not touched.
            Sharing::AsIs
        } else if self.takeover.is_none() {
            // §7.1.1.1 without context takeover every message starts from
            // a fresh compressor, so the output depends only on the message,
            // the window and the level: a broadcast is compressed once per
            // distinct pair and shared.
            Sharing::Shared(SHARED_KEY | u64::from(self.window_bits) << 8 | u64::from(self.level))
        } else {
            // With context takeover the output depends on this connection's
            // history: each member compresses for itself.
            Sharing::Own
        }
    }
}

/// The high bytes of a [`Sharing::Shared`] key from this extension ("pmd").
const SHARED_KEY: u64 = 0x706d_6400 << 32;

fn new_compress(bits: u8, level: u32) -> Box<Compress> {
    Box::new(Compress::new_with_window_bits(
        Compression::new(level),
        false,
        bits,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(reset: bool) -> DeflateParams {
        let answer = if reset {
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        } else {
            "permessage-deflate"
        };
        let list = crate::handshake::extensions::parse([answer]).unwrap();
        DeflateParams::from_answer(&list[0], true).unwrap()
    }

    fn roundtrip(reset: bool, messages: &[&[u8]]) {
        let cfg = DeflateConfig::default().min_size(0);
        let mut enc = DeflateEncoder::new(&params(reset), &cfg);
        let mut dec = DeflateDecoder::new(&params(reset));
        for m in messages {
            let mut wire = Vec::new();
            assert_eq!(enc.encode(OpCode::Binary, m, &mut wire), Some(RSV1));
            let mut out = Vec::new();
            // Split the wire bytes to exercise piece-by-piece inflation.
            let (a, b) = wire.split_at(wire.len() / 2);
            dec.decode(a, false, &mut out, usize::MAX).unwrap();
            dec.decode(b, true, &mut out, usize::MAX).unwrap();
            assert_eq!(&out, m);
            // Without context takeover nothing is held between messages.
            // (With it, whether the engines stay live depends on what else
            // in the process uses the live set: not asserted here.)
            if reset {
                assert!(!enc.holds_engine() && !dec.holds_engine());
            }
        }
    }

    #[test]
    fn roundtrip_with_and_without_context_takeover() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let msgs: [&[u8]; 6] = [
            b"",
            b"",
            b"hello hello hello",
            &big,
            b"",
            b"hello hello hello",
        ];
        roundtrip(false, &msgs);
        roundtrip(true, &msgs);
    }

    #[test]
    fn pooled_compressors_carry_nothing_between_connections() {
        let cfg = DeflateConfig::default().min_size(0);
        let mut encoders = [0, 1].map(|_| DeflateEncoder::new(&params(true), &cfg));
        let mut decoders = [0, 1].map(|_| DeflateDecoder::new(&params(true)));
        for round in 0..4 {
            for (i, (enc, dec)) in encoders.iter_mut().zip(&mut decoders).enumerate() {
                let msg = format!("connection {i} round {round} connection {i} round {round}");
                let mut wire = Vec::new();
                enc.encode(OpCode::Text, msg.as_bytes(), &mut wire);
                let mut out = Vec::new();
                dec.decode(&wire, true, &mut out, usize::MAX).unwrap();
                assert_eq!(out, msg.as_bytes());
            }
        }
    }

    /// The payload of a single unmasked frame with RSV1 set.
    fn compressed_payload(wire: &[u8]) -> &[u8] {
        assert_eq!(wire[0] & 0x40, 0x40, "RSV1 not set");
        match wire[1] & 0x7f {
            126 => &wire[4..],
            127 => &wire[10..],
            _ => &wire[2..],
        }
    }

    #[test]
    fn a_prepared_message_is_compressed_once_per_setting_without_context_takeover() {
        use crate::protocol::{Message, Outgoing, PreparedMessage};
        let cfg = DeflateConfig::default().min_size(0);
        let connection = |reset: bool, cfg: &DeflateConfig| {
            let mut out = Outgoing::new(Role::Server);
            out.add_extension(Box::new(DeflateEncoder::new(&params(reset), cfg)));
            out
        };
        let text = "{\"event\":\"tick\",\"value\":42} ".repeat(40);
        let prepared = PreparedMessage::new(Message::Text(text.clone()));
        let mut shared = [0, 1, 2].map(|_| connection(true, &cfg));
        for out in &mut shared {
            out.frame_prepared(&prepared, usize::MAX).unwrap();
        }
        assert_eq!(prepared.encodings(), 1);
        assert!(shared.iter().all(|o| o.pending() == shared[0].pending()));
        let mut level_1 = connection(true, &cfg.level(1));
        level_1.frame_prepared(&prepared, usize::MAX).unwrap();
        let mut takeover = connection(false, &cfg);
        takeover.frame_prepared(&prepared, usize::MAX).unwrap();
        // Another level is another encoding; context takeover shares none.
        assert_eq!(prepared.encodings(), 2);
        for (out, reset) in [(&shared[0], true), (&level_1, true), (&takeover, false)] {
            let mut dec = DeflateDecoder::new(&params(reset));
            let mut got = Vec::new();
            dec.decode(compressed_payload(out.pending()), true, &mut got, 1 << 20)
                .unwrap();
            assert_eq!(got, text.as_bytes());
        }
        // Below the minimum size it goes as it is, encoded by nobody.
        let small = PreparedMessage::new(Message::Text("hi".into()));
        let mut out = connection(true, &cfg.min_size(10));
        out.frame_prepared(&small, usize::MAX).unwrap();
        assert_eq!(out.pending(), b"\x81\x02hi");
        assert_eq!(small.encodings(), 0);
    }

    #[test]
    fn pooled_decompressors_read_every_agreed_window() {
        // Lent decompressors are 15-bit whatever was agreed (flate2 resets
        // only those in place); they must read 9-bit streams all the same.
        let answer = "permessage-deflate; server_no_context_takeover; \
            client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9";
        let list = crate::handshake::extensions::parse([answer]).unwrap();
        let params = DeflateParams::from_answer(&list[0], true).unwrap();
        let cfg = DeflateConfig::default().min_size(0);
        let mut enc = DeflateEncoder::new(&params, &cfg);
        let mut dec = DeflateDecoder::new(&params);
        let text: Vec<u8> = (0..5000u32).flat_map(|i| (i % 700).to_le_bytes()).collect();
        for _ in 0..3 {
            let mut wire = Vec::new();
            enc.encode(OpCode::Binary, &text, &mut wire);
            let mut out = Vec::new();
            dec.decode(&wire, true, &mut out, usize::MAX).unwrap();
            assert_eq!(out, text);
            assert!(!dec.holds_engine());
        }
    }

    #[test]
    fn context_takeover_makes_a_repeat_smaller() {
        let cfg = DeflateConfig::default().min_size(0);
        let mut enc = DeflateEncoder::new(&params(false), &cfg);
        let msg = b"{\"type\":\"update\",\"value\":12345,\"name\":\"sensor-7\"}";
        let (mut first, mut second) = (Vec::new(), Vec::new());
        enc.encode(OpCode::Text, msg, &mut first);
        enc.encode(OpCode::Text, msg, &mut second);
        assert!(second.len() < first.len() / 2, "{first:?} {second:?}");
    }

    #[test]
    fn small_messages_and_window_8_go_uncompressed() {
        let cfg = DeflateConfig::default().min_size(32);
        let mut enc = DeflateEncoder::new(&params(false), &cfg);
        assert_eq!(enc.encode(OpCode::Text, b"tiny", &mut Vec::new()), None);
        let cfg = DeflateConfig::default().window_bits(8).min_size(0);
        let mut enc = DeflateEncoder::new(&params(false), &cfg);
        assert_eq!(
            enc.encode(OpCode::Text, &[b'a'; 1000], &mut Vec::new()),
            None
        );
        assert!(!enc.holds_engine());
    }

    #[test]
    fn inflate_output_stops_at_the_limit() {
        let cfg = DeflateConfig::default().min_size(0);
        let mut enc = DeflateEncoder::new(&params(false), &cfg);
        let mut wire = Vec::new();
        enc.encode(OpCode::Binary, &vec![0u8; 1 << 20], &mut wire);
        assert!(wire.len() < 2048);
        let mut dec = DeflateDecoder::new(&params(false));
        let mut out = Vec::new();
        let err = dec.decode(&wire, true, &mut out, 10_000).unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooBig);
        assert!(out.len() <= 10_000);
        assert!(out.capacity() <= 64 * 1024, "{}", out.capacity());
        // Exactly at the limit is fine.
        let mut dec = DeflateDecoder::new(&params(false));
        let mut enc = DeflateEncoder::new(&params(false), &cfg);
        let mut wire = Vec::new();
        enc.encode(OpCode::Binary, &[7u8; 10_000], &mut wire);
        let mut out = Vec::new();
        dec.decode(&wire, true, &mut out, 10_000).unwrap();
        assert_eq!(out.len(), 10_000);
    }

    #[test]
    fn an_empty_payload_is_an_empty_message() {
        let mut dec = DeflateDecoder::new(&params(false));
        let mut out = Vec::new();
        dec.decode(&[], true, &mut out, 100).unwrap();
        dec.decode(&[0x00], true, &mut out, 100).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn garbage_is_invalid_compressed_data() {
        let mut dec = DeflateDecoder::new(&params(false));
        let err = dec
            .decode(&[0xff, 0xff, 0xff, 0xff], true, &mut Vec::new(), 1 << 20)
            .unwrap_err();
        assert_eq!(err, ProtocolError::InvalidCompressedData);
    }

    /// A peer as zlib users write one: one raw stream per direction, kept
    /// for the whole connection (context takeover), sync flush per message.
    struct PlainPeer {
        compress: Compress,
        decompress: Decompress,
    }

    impl PlainPeer {
        fn new(bits: u8) -> PlainPeer {
            PlainPeer {
                compress: Compress::new_with_window_bits(Compression::new(6), false, bits),
                decompress: Decompress::new_with_window_bits(false, bits),
            }
        }

        fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            assert!(compress_message(&mut self.compress, payload, &mut out));
            out
        }

        fn inflate(&mut self, wire: &[u8]) -> Vec<u8> {
            let mut input = wire.to_vec();
            input.extend_from_slice(&TAIL);
            let mut out = Vec::with_capacity(1 << 20);
            self.decompress
                .decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .unwrap();
            out
        }
    }

    fn takeover_params(bits: u8) -> DeflateParams {
        let answer = format!(
            "permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
        );
        let list = crate::handshake::extensions::parse([answer.as_str()]).unwrap();
        DeflateParams::from_answer(&list[0], true).unwrap()
    }

    /// A small deterministic generator (no dev-dependency needed).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    /// Chat-like messages: the same few words and keys again and again, so
    /// each refers back into earlier ones.
    fn chat_message(rng: &mut Lcg) -> Vec<u8> {
        let words = [
            "hello",
            "room",
            "anyone",
            "see you",
            "the build",
            "ok",
            "thanks",
        ];
        let mut text = String::new();
        for _ in 0..1 + rng.next() % 6 {
            text.push_str(words[(rng.next() % words.len() as u64) as usize]);
            text.push(' ');
        }
        let big = rng.next() % 20 == 0;
        if big {
            // Now and then a long one, longer than the window.
            for i in 0..(rng.next() % 3000) {
                text.push_str(&format!("{} ", i * 7 % 1000));
            }
        }
        format!(
            r#"{{"type":"message","from":"user{}","text":"{text}"}}"#,
            rng.next() % 9
        )
        .into_bytes()
    }

    #[test]
    fn a_released_compressor_is_made_again_from_the_window_and_a_plain_peer_reads_it() {
        // RFC 7692 §7.2.2: the peer keeps its window; ours is primed with
        // the same bytes, so references into earlier messages resolve.
        for bits in [9, 12, 15] {
            let cfg = DeflateConfig::default().window_bits(bits).min_size(0);
            let mut enc = DeflateEncoder::new(&takeover_params(bits), &cfg);
            let mut peer = PlainPeer::new(bits);
            let mut rng = Lcg(u64::from(bits));
            let (mut released, mut kept) = (0usize, 0usize);
            for i in 0..400 {
                let msg = chat_message(&mut rng);
                let mut wire = Vec::new();
                assert_eq!(enc.encode(OpCode::Text, &msg, &mut wire), Some(RSV1));
                assert_eq!(peer.inflate(&wire), msg, "bits {bits} message {i}");
                if rng.next() % 2 == 0 {
                    enc.release();
                    released += wire.len();
                } else {
                    kept += wire.len();
                }
            }
            assert!(released > 0 && kept > 0);
        }
    }

    #[test]
    fn a_released_decompressor_reads_references_into_earlier_messages() {
        for bits in [9, 12, 15] {
            let mut dec = DeflateDecoder::new(&takeover_params(bits));
            let mut peer = PlainPeer::new(bits);
            let mut rng = Lcg(100 + u64::from(bits));
            for i in 0..400 {
                let msg = chat_message(&mut rng);
                let wire = peer.compress(&msg);
                let mut out = Vec::new();
                // In up to three fragments, releasing between messages only.
                let cut1 = (rng.next() as usize) % (wire.len() + 1);
                let cut2 = cut1 + (rng.next() as usize) % (wire.len() - cut1 + 1);
                dec.decode(&wire[..cut1], false, &mut out, usize::MAX)
                    .unwrap();
                dec.release(); // mid-message: does nothing
                dec.decode(&wire[cut1..cut2], false, &mut out, usize::MAX)
                    .unwrap();
                dec.decode(&wire[cut2..], true, &mut out, usize::MAX)
                    .unwrap();
                assert_eq!(out, msg, "bits {bits} message {i}");
                if rng.next() % 2 == 0 {
                    dec.release();
                    assert!(!dec.holds_engine());
                }
            }
        }
    }

    #[test]
    fn a_released_pair_compresses_as_well_as_a_live_one() {
        // The ratio with an engine made again from the window for every
        // message is within 1% of a live engine's.
        let cfg = DeflateConfig::default().min_size(0);
        let (mut live, mut released) = (0usize, 0usize);
        let mut a = DeflateEncoder::new(&takeover_params(12), &cfg);
        let mut b = DeflateEncoder::new(&takeover_params(12), &cfg);
        let mut rng = Lcg(7);
        let mut raw = 0;
        for _ in 0..500 {
            let msg = chat_message(&mut rng);
            raw += msg.len();
            let (mut wa, mut wb) = (Vec::new(), Vec::new());
            a.encode(OpCode::Text, &msg, &mut wa);
            b.encode(OpCode::Text, &msg, &mut wb);
            b.release();
            live += wa.len();
            released += wb.len();
        }
        assert!(live < raw / 3, "{live} of {raw}");
        assert!(
            released * 100 <= live * 101,
            "released {released}, live {live}"
        );
    }

    #[test]
    fn messages_sent_uncompressed_stay_out_of_the_window() {
        // A message under min_size goes as it is and is not inflated by the
        // peer, so it must not be in the window a released compressor is
        // primed with.
        let cfg = DeflateConfig::default().min_size(8);
        let mut enc = DeflateEncoder::new(&takeover_params(12), &cfg);
        let mut peer = PlainPeer::new(12);
        for msg in [
            &b"first message here"[..],
            b"tiny",
            b"first message tiny here",
        ] {
            let mut wire = Vec::new();
            match enc.encode(OpCode::Text, msg, &mut wire) {
                Some(_) => assert_eq!(peer.inflate(&wire), msg),
                None => assert!(msg.len() < 8),
            }
            enc.release();
        }
    }

    #[test]
    fn a_stream_ended_by_the_peer_starts_the_next_message_afresh() {
        let mut dec = DeflateDecoder::new(&takeover_params(12));
        // A whole stream (BFINAL) for "hello", then a fresh one.
        let mut finished = Compress::new_with_window_bits(Compression::new(6), false, 12);
        let mut wire = Vec::with_capacity(64);
        finished
            .compress_vec(b"hello", &mut wire, FlushCompress::Finish)
            .unwrap();
        let mut out = Vec::new();
        dec.decode(&wire, true, &mut out, 1 << 20).unwrap();
        assert_eq!(out, b"hello");
        let mut peer = PlainPeer::new(12);
        let wire = peer.compress(b"world world");
        let mut out = Vec::new();
        dec.decode(&wire, true, &mut out, 1 << 20).unwrap();
        assert_eq!(out, b"world world");
    }
}
