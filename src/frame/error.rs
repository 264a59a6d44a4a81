//! [`ProtocolError`]: the rules of RFC 6455 a peer can break after the
//! handshake. Defined in the lowest layer that raises it (the frame parser
//! raises the header rules; the protocol core the rest), so that no layer
//! imports from above it.

use super::CloseCode;
use std::fmt;

/// The peer broke a rule of RFC 6455 after the handshake. Each variant is one
/// rule; [`ProtocolError::close_code`] is the status code the connection is
/// failed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// §5.2: opcodes 0x3–0x7 and 0xB–0xF are reserved; "if an unknown opcode
    /// is received, the receiving endpoint MUST _Fail the WebSocket Connection_".
    ReservedOpcode(u8),
    /// §5.2: RSV1–3 "MUST be 0 unless an extension is negotiated that defines
    /// meanings for non-zero values".
    ReservedBitsSet,
    /// §5.2: in a 64-bit payload length "the most significant bit MUST be 0".
    PayloadLengthTopBitSet,
    /// §5.1: "a server MUST close the connection upon receiving a frame that
    /// is not masked".
    UnmaskedFrameFromClient,
    /// §5.1: "a client MUST close a connection if it detects a masked frame".
    MaskedFrameFromServer,
    /// §5.5: "All control frames MUST have a payload length of 125 bytes or less".
    ControlFrameTooBig,
    /// §5.5: "Control frames ... MUST NOT be fragmented".
    FragmentedControlFrame,
    /// §5.4: a continuation frame arrived with no fragmented message in progress.
    UnexpectedContinuation,
    /// §5.4: a new text or binary frame arrived while a fragmented message was
    /// still in progress ("fragments of one message MUST NOT be interleaved").
    ExpectedContinuation,
    /// §5.5.1: a close frame body, if present, starts with a two-byte code.
    ClosePayloadOfOneByte,
    /// §7.4: a close code that is not allowed on the wire.
    InvalidCloseCode(u16),
    /// §8.1: a text message that is not valid UTF-8 (close code 1007).
    InvalidUtf8,
    /// §5.5.1: a close reason that is not valid UTF-8 (close code 1007).
    InvalidUtf8InCloseReason,
    /// §10.4: a frame larger than the configured `max_frame_size` (close code 1009).
    FrameTooBig,
    /// §10.4: a message larger than the configured `max_message_size` (close code 1009).
    MessageTooBig,
    /// RFC 7692 §6.2: a message marked compressed (RSV1) whose payload is not
    /// valid DEFLATE data. Close code 1007, like invalid UTF-8: the frames
    /// are well formed, but the message's data is not consistent with what
    /// the negotiated extension says it is (RFC 6455 §7.4.1), and it is the
    /// code Autobahn and Python `websockets` expect.
    InvalidCompressedData,
    /// Not a rule of the peer's but the server's: the bytes of a message
    /// partly received would pass the memory budget shared by its
    /// connections (`protocol::Budget`). Close code 1013 (try again later,
    /// IANA's registry of RFC 6455 §11.7): the message may be sent again.
    OverBudget,
}

impl ProtocolError {
    /// The close code this error fails the connection with: 1007 for invalid
    /// UTF-8, 1009 for size limits, 1013 for the server's memory budget, 1002
    /// for everything else.
    ///
    /// ```
    /// use rfc6455::{frame::CloseCode, ProtocolError};
    /// assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode::INVALID_PAYLOAD);
    /// assert_eq!(ProtocolError::FrameTooBig.close_code(), CloseCode::MESSAGE_TOO_BIG);
    /// assert_eq!(ProtocolError::ReservedBitsSet.close_code(), CloseCode::PROTOCOL_ERROR);
    /// ```
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidUtf8InCloseReason
            | ProtocolError::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooBig | ProtocolError::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            ProtocolError::OverBudget => CloseCode::TRY_AGAIN_LATER,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason sent in the close frame (always under 123 bytes).
    pub fn reason(&self) -> &'static str {
        match self {
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::ReservedBitsSet => "reserved bits set",
            ProtocolError::PayloadLengthTopBitSet => "payload length top bit set",
            ProtocolError::UnmaskedFrameFromClient => "unmasked frame from client",
            ProtocolError::MaskedFrameFromServer => "masked frame from server",
            ProtocolError::ControlFrameTooBig => "control frame too big",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "unexpected continuation frame",
            ProtocolError::ExpectedContinuation => "expected a continuation frame",
            ProtocolError::ClosePayloadOfOneByte => "close payload of one byte",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::InvalidUtf8 => "invalid UTF-8 in text message",
            ProtocolError::InvalidUtf8InCloseReason => "invalid UTF-8 in close reason",
            ProtocolError::FrameTooBig => "frame too big",
            ProtocolError::MessageTooBig => "message too big",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
            ProtocolError::OverBudget => "server memory budget exhausted, try again later",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}
