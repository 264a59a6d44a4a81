//! The extension seam (RFC 6455 §9, §5.2): where a negotiated extension such
//! as permessage-deflate (RFC 7692) stands between the frame decoder and the
//! message assembler, and between a message and its frames on the way out.
//!
//! An extension is two halves, because a split connection receives on one
//! thread and sends on others: an [`ExtensionDecoder`] owned by the
//! receiving side and an [`ExtensionEncoder`] owned by the sending side.
//!
//! The rules the core applies around them:
//! - RSV bits are allowed only if a negotiated decoder claims them, and only
//!   on the first frame of a data message (RFC 7692 §6.1: "the RSV1 bit is
//!   set only on the first frame"); anywhere else they fail with 1002.
//! - A message whose first frame has a decoder's bits set is decoded piece
//!   by piece as its frames arrive, and the size limit is checked on the
//!   decoded output as it grows, never on the wire bytes alone: a small
//!   compressed frame that inflates past `max_message_size` fails with 1009
//!   before it is all in memory.
//! - UTF-8 is validated on the decoded text.

use crate::frame::OpCode;
use crate::frame::ProtocolError;
use std::fmt;

/// RSV1 as a bit in [`ExtensionDecoder::rsv_bits`] and [`ExtensionEncoder::encode`]'s result.
pub const RSV1: u8 = 0b100;
/// RSV2, likewise.
pub const RSV2: u8 = 0b010;
/// RSV3, likewise.
pub const RSV3: u8 = 0b001;

/// The receiving half of a negotiated extension.
pub trait ExtensionDecoder: fmt::Debug + Send {
    /// The RSV bits ([`RSV1`], [`RSV2`], [`RSV3`]) this extension gives a
    /// meaning to.
    fn rsv_bits(&self) -> u8;

    /// Decodes the next piece of a message whose first frame carried this
    /// extension's bits, appending the result to `out`. `fin` is true for
    /// the last piece of the message (an empty `input` is possible then).
    ///
    /// `out` must never grow past `max` bytes: when the decoded message would,
    /// return [`ProtocolError::MessageTooBig`] instead, having appended no
    /// more than `max - out.len()` bytes (so a decompression bomb costs at
    /// most the limit).
    fn decode(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError>;
}

/// The sending half of a negotiated extension.
pub trait ExtensionEncoder: fmt::Debug + Send {
    /// Encodes a whole data message about to be sent. Returns the RSV bits to
    /// set on its first frame, having put the encoded payload in `out`
    /// (cleared by the caller); or `None` to send the message as it is (too
    /// small to be worth it, say), leaving `out` alone.
    fn encode(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Option<u8>;

    /// Whether the encoding of a whole message of `len` bytes could be made
    /// once and shared with other connections (a broadcast, see
    /// [`PreparedMessage`](super::PreparedMessage)). The default,
    /// [`Sharing::Own`], is always correct.
    fn sharing(&self, opcode: OpCode, len: usize) -> Sharing {
        let _ = (opcode, len);
        Sharing::Own
    }
}

/// What an [`ExtensionEncoder`] says about sharing a message's encoding
/// between connections (gorilla/websocket's `PreparedMessage` idea: a
/// broadcast is compressed once per distinct setting, not once per
/// recipient, where the setting allows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sharing {
    /// The message goes out as it is, and sending it changes nothing in
    /// the encoder (too small to compress, say).
    AsIs,
    /// The encoding depends only on the message and on this key: any
    /// encoder of the same extension that answers the same key produces the
    /// same bytes and the same RSV bits, and encoding changes nothing that
    /// later messages depend on. It may be made once and shared.
    Shared(u64),
    /// The encoding depends on what this encoder sent before (a compressor
    /// that keeps its context): only this connection's encoder can make it.
    Own,
}
