//! The frame layer (RFC 6455 §5): header parse/encode, opcodes, masking and
//! close payloads. Pure functions over byte slices: no I/O, no allocation
//! (except building a close payload), no state beyond what a caller passes in.

mod close;
mod error;
mod header;
mod mask;
mod opcode;

pub use close::{encode_close_payload, parse_close_payload, CloseCode, CloseFrame};
pub use error::ProtocolError;
pub use header::{EncodedHeader, FrameHeader, Parsed, MAX_HEADER_LEN};
pub use mask::{apply_mask, apply_mask_offset};
pub use opcode::OpCode;

/// Which end of the connection this code speaks for.
///
/// RFC 6455 §5.1: a client MUST mask every frame it sends; a server MUST NOT
/// mask any frame it sends, and each side MUST close the connection when the
/// other breaks that rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that accepted the connection: receives masked frames, sends unmasked ones.
    Server,
    /// The side that opened the connection: sends masked frames, receives unmasked ones.
    Client,
}
