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
//! - Context takeover (§7.1.1): kept unless negotiated away; without it the
//!   compressor or decompressor is dropped after each message, so an idle
//!   connection holds none. Both are created only when first needed.
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
use std::fmt;

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

/// The receiving half: inflates messages whose first frame has RSV1.
pub struct DeflateDecoder {
    /// zlib cannot inflate with an 8-bit window; 9 reads everything 8 can.
    window_bits: u8,
    /// Drop the state after each message (the peer does not keep context).
    reset: bool,
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
            .field("reset", &self.reset)
            .field("allocated", &self.inflate.is_some())
            .finish()
    }
}

impl DeflateDecoder {
    /// A decoder for the agreed parameters.
    pub fn new(params: &DeflateParams) -> DeflateDecoder {
        DeflateDecoder {
            window_bits: params.decompress_window_bits.clamp(9, 15),
            reset: params.decompress_reset,
            inflate: None,
            ended: false,
            had_input: false,
        }
    }

    /// Inflates `input` into `out`, never past `max` bytes.
    fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        let (bits, reset) = (self.window_bits, self.reset);
        let inflate = self.inflate.get_or_insert_with(|| match reset {
            // Lent for one message: see `pool::take_inflate` for why its
            // window is always 15 bits.
            true => pool::take_inflate(),
            false => Box::new(Decompress::new_with_window_bits(false, bits)),
        });
        loop {
            if self.ended {
                return Ok(());
            }
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
        if fin || result.is_err() {
            if self.reset || self.ended {
                // §7.1.1.2 / a finished stream: nothing carries over. A
                // decompressor in a known state goes back to the pool.
                match self.inflate.take() {
                    Some(inflate) if self.reset && result.is_ok() => pool::give_inflate(inflate),
                    _ => {}
                }
            }
            self.ended = false;
            self.had_input = false;
        }
        result
    }
}

/// The sending half: compresses whole messages and sets RSV1.
pub struct DeflateEncoder {
    /// 8 means "never compress": zlib cannot honour a 256-byte window.
    window_bits: u8,
    reset: bool,
    level: u32,
    min_size: usize,
    deflate: Option<Box<Compress>>,
}

impl fmt::Debug for DeflateEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeflateEncoder")
            .field("window_bits", &self.window_bits)
            .field("reset", &self.reset)
            .field("level", &self.level)
            .field("min_size", &self.min_size)
            .field("allocated", &self.deflate.is_some())
            .finish()
    }
}

impl DeflateEncoder {
    /// An encoder for the agreed parameters, with the level, minimum size and
    /// window cap of `config`.
    pub fn new(params: &DeflateParams, config: &DeflateConfig) -> DeflateEncoder {
        DeflateEncoder {
            window_bits: params.compress_window_bits.min(config.window_bits),
            reset: params.compress_reset || config.no_context_takeover,
            level: config.level.min(9),
            min_size: config.min_size,
            deflate: None,
        }
    }
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
        let deflate = self.deflate.get_or_insert_with(|| match self.reset {
            true => pool::take(bits, level),
            false => new_compress(bits, level),
        });
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
                // Cannot happen with valid parameters; the compressor state
                // is unknown, so start afresh and send this one as it is.
                self.deflate = None;
                out.clear();
                return None;
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
        if self.reset {
            // §7.1.1.1: no context takeover; nothing lives between messages,
            // and the compressor goes back to the pool for the next message
            // of any connection.
            if let Some(deflate) = self.deflate.take() {
                pool::give(bits, level, deflate);
            }
        }
        Some(RSV1)
    }

    fn sharing(&self, _opcode: OpCode, len: usize) -> Sharing {
        if self.window_bits < 9 || len < self.min_size {
            // Sent as it is; the compressor is not touched.
            Sharing::AsIs
        } else if self.reset {
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

/// Compressors lent to connections without context takeover for one
/// message at a time. zlib-rs's compressor is about 200 KiB whatever the
/// window (a fixed 64 Ki-entry hash table and zlib's default memLevel,
/// which flate2 does not expose); allocating and freeing one per message
/// costs time, and with glibc's per-thread arenas the freed memory stays in
/// each connection thread's RSS. A small shared pool keeps the number alive
/// near the number of messages being compressed at once.
/// Decompressors (about 40 KiB with a 15-bit window) are pooled alike for
/// connections whose peer resets its context.
mod pool {
    use super::{new_compress, Compress, Decompress};
    use std::sync::{Mutex, PoisonError};

    /// At most this many idle compressors, and as many decompressors, are
    /// kept (about 6 MiB and 1 MiB).
    const MAX_IDLE: usize = 32;

    static IDLE: Mutex<Vec<(u8, u32, Box<Compress>)>> = Mutex::new(Vec::new());
    // Boxed because decoders hold them boxed: lending one moves a pointer.
    #[allow(clippy::vec_box)]
    static IDLE_INFLATE: Mutex<Vec<Box<Decompress>>> = Mutex::new(Vec::new());

    /// A fresh-state decompressor. Always with a 15-bit window, whatever
    /// was agreed: it inflates every stream a smaller window makes (a
    /// window only bounds how far back the sender may refer), zlib-rs
    /// allocates a 32 KiB window whatever the bits, and only at 15 bits
    /// does flate2 reset it in place; at other sizes its reset builds a new
    /// state, an allocation per message that measured 17 KiB more RSS per
    /// idle connection at 10,000 (`.ci/mem10k.sh --deflate-table`). What is
    /// given up: a peer that refers further back than the window it agreed
    /// is not caught (RFC 7692 asks the sender to keep to it; nothing is
    /// read outside the 32 KiB the stream itself filled).
    pub(super) fn take_inflate() -> Box<Decompress> {
        let taken = IDLE_INFLATE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        taken.unwrap_or_else(|| Box::new(Decompress::new_with_window_bits(false, 15)))
    }

    /// Returns a decompressor after a message that ended well.
    pub(super) fn give_inflate(mut inflate: Box<Decompress>) {
        inflate.reset(false);
        let mut idle = IDLE_INFLATE.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(inflate);
        }
    }

    /// A fresh-state compressor for `bits` and `level`.
    pub(super) fn take(bits: u8, level: u32) -> Box<Compress> {
        let mut idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner);
        match idle.iter().position(|&(b, l, _)| b == bits && l == level) {
            Some(i) => idle.swap_remove(i).2,
            None => {
                drop(idle);
                new_compress(bits, level)
            }
        }
    }

    /// Returns a compressor after a message (its state is reset here).
    pub(super) fn give(bits: u8, level: u32, mut deflate: Box<Compress>) {
        deflate.reset();
        let mut idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push((bits, level, deflate));
        }
    }
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
            // Lazy: an empty message needs no compressor.
            if !m.is_empty() {
                assert_eq!(enc.deflate.is_none(), reset);
            }
            assert_eq!(dec.inflate.is_none(), reset);
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
            assert!(dec.inflate.is_none());
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
        assert!(enc.deflate.is_none());
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
}
