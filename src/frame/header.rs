use super::ProtocolError;
use super::{OpCode, Role};

/// The longest possible header: 2 fixed bytes, an 8-byte extended length and a
/// 4-byte masking key (RFC 6455 §5.2).
pub const MAX_HEADER_LEN: usize = 14;

/// A parsed frame header (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1; MUST be 0 unless a negotiated extension defines it.
    pub rsv1: bool,
    /// RSV2; as RSV1.
    pub rsv2: bool,
    /// RSV3; as RSV1.
    pub rsv3: bool,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, present when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length as declared by the sender. Never allocate from it:
    /// it is a claim, not bytes that arrived.
    pub payload_len: u64,
}

/// The result of [`FrameHeader::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The buffer holds the start of a valid header; at least this many more
    /// bytes are needed before it can be parsed. Not an error.
    Incomplete(usize),
    /// A whole header, and how many bytes of the buffer it took (2 to 14).
    Complete(FrameHeader, usize),
}

impl FrameHeader {
    /// A header for an unfragmented frame with the given opcode and length,
    /// FIN set, RSV bits clear and no mask.
    ///
    /// ```
    /// use rfc6455::frame::{FrameHeader, OpCode};
    /// let h = FrameHeader::new(OpCode::Text, 5);
    /// assert_eq!(h.encode().as_bytes(), &[0x81, 0x05]);
    /// ```
    pub const fn new(opcode: OpCode, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Parses a header from the start of `buf`.
    ///
    /// Returns [`Parsed::Incomplete`] when `buf` is a valid but short prefix,
    /// and an error only for bytes no valid header can start with:
    /// a reserved opcode, or a 64-bit length with its most significant bit set
    /// (RFC 6455 §5.2: "the most significant bit MUST be 0").
    ///
    /// Non-minimal length encodings (e.g. a 5-byte payload declared with the
    /// 16-bit form) are accepted: §5.2 requires senders to use the minimal
    /// form, but the length is unambiguous either way, and rejecting it would
    /// protect nothing. The rules that depend on context (masking by role,
    /// control frame size, RSV bits) are checked by [`FrameHeader::check`].
    ///
    /// ```
    /// use rfc6455::frame::{FrameHeader, OpCode, Parsed};
    /// // RFC 6455 §5.7: a single-frame masked text message "Hello".
    /// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// match FrameHeader::parse(&wire).unwrap() {
    ///     Parsed::Complete(h, len) => {
    ///         assert_eq!((h.opcode, h.payload_len, len), (OpCode::Text, 5, 6));
    ///         assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    ///     }
    ///     Parsed::Incomplete(_) => unreachable!(),
    /// }
    /// assert_eq!(FrameHeader::parse(&wire[..3]).unwrap(), Parsed::Incomplete(3));
    /// ```
    // Inlined: decoding small frames, the call and the returned enum cost
    // more than the parse (callgrind: 81 instructions a header out of line).
    #[inline(always)]
    pub fn parse(buf: &[u8]) -> Result<Parsed, ProtocolError> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            [b0] => {
                // Reject a reserved opcode as soon as its byte is here.
                OpCode::from_u4(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
                return Ok(Parsed::Incomplete(1));
            }
            [] => return Ok(Parsed::Incomplete(2)),
        };
        let opcode = OpCode::from_u4(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        let ext_len = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let total = 2 + ext_len + if masked { 4 } else { 0 };
        if buf.len() < total {
            // A 64-bit length's top bit is in the first extended byte: fail early.
            if ext_len == 8 && buf.len() > 2 && buf[2] & 0x80 != 0 {
                return Err(ProtocolError::PayloadLengthTopBitSet);
            }
            return Ok(Parsed::Incomplete(total - buf.len()));
        }
        let payload_len = match ext_len {
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            8 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(be);
                if len & (1 << 63) != 0 {
                    return Err(ProtocolError::PayloadLengthTopBitSet);
                }
                len
            }
            _ => u64::from(len7),
        };
        let mask = if masked {
            let at = 2 + ext_len;
            // One bounds check, not four (23 instructions down to a handful).
            let mut key = [0u8; 4];
            key.copy_from_slice(&buf[at..at + 4]);
            Some(key)
        } else {
            None
        };
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode,
            mask,
            payload_len,
        };
        Ok(Parsed::Complete(header, total))
    }

    /// Checks the rules that hold for every frame a `role` receives:
    ///
    /// - RFC 6455 §5.2: RSV1–3 MUST be 0 unless an extension was negotiated
    ///   (this crate negotiates none);
    /// - §5.5: control frames MUST have a payload of 125 bytes or less and
    ///   MUST NOT be fragmented;
    /// - §5.1: a server MUST close the connection on an unmasked frame; a
    ///   client MUST close it on a masked frame.
    ///
    /// ```
    /// use rfc6455::frame::{FrameHeader, OpCode, Role};
    /// use rfc6455::ProtocolError;
    /// let unmasked = FrameHeader::new(OpCode::Binary, 3);
    /// assert_eq!(unmasked.check(Role::Server), Err(ProtocolError::UnmaskedFrameFromClient));
    /// assert_eq!(unmasked.check(Role::Client), Ok(()));
    /// ```
    #[inline]
    pub fn check(&self, role: Role) -> Result<(), ProtocolError> {
        if self.rsv1 || self.rsv2 || self.rsv3 {
            return Err(ProtocolError::ReservedBitsSet);
        }
        if self.opcode.is_control() {
            if self.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooBig);
            }
            if !self.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        match (role, self.mask.is_some()) {
            (Role::Server, false) => Err(ProtocolError::UnmaskedFrameFromClient),
            (Role::Client, true) => Err(ProtocolError::MaskedFrameFromServer),
            _ => Ok(()),
        }
    }

    /// Encodes the header in the minimal form (RFC 6455 §5.2).
    ///
    /// ```
    /// use rfc6455::frame::{FrameHeader, OpCode};
    /// // RFC 6455 §5.7: a 256-byte unmasked binary message uses the 16-bit length.
    /// let h = FrameHeader::new(OpCode::Binary, 256);
    /// assert_eq!(h.encode().as_bytes(), &[0x82, 0x7E, 0x01, 0x00]);
    /// ```
    pub fn encode(&self) -> EncodedHeader {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        bytes[0] = (u8::from(self.fin) << 7)
            | (u8::from(self.rsv1) << 6)
            | (u8::from(self.rsv2) << 5)
            | (u8::from(self.rsv3) << 4)
            | self.opcode.as_u4();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = 2;
        if self.payload_len < 126 {
            bytes[1] = mask_bit | self.payload_len as u8;
        } else if let Ok(short) = u16::try_from(self.payload_len) {
            bytes[1] = mask_bit | 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            len = 4;
        } else {
            bytes[1] = mask_bit | 127;
            bytes[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            len = 10;
        }
        if let Some(key) = self.mask {
            bytes[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        EncodedHeader {
            bytes,
            len: len as u8,
        }
    }
}

/// An encoded header: up to [`MAX_HEADER_LEN`] bytes on the stack, ready to be
/// written before its payload (e.g. with `write_vectored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedHeader {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl EncodedHeader {
    /// The header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::parse(buf).unwrap() {
            Parsed::Complete(h, n) => (h, n),
            other => panic!("expected a complete header, got {other:?}"),
        }
    }

    #[test]
    fn rfc_5_7_single_frame_unmasked_text() {
        let (h, n) = complete(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(n, 2);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.payload_len, 5);
        assert_eq!(h.mask, None);
    }

    #[test]
    fn rfc_5_7_fragmented_unmasked_text() {
        let (h, _) = complete(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert!(!h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        let (h, _) = complete(&[0x80, 0x02, 0x6c, 0x6f]);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Continuation);
    }

    #[test]
    fn rfc_5_7_ping_and_masked_pong() {
        let (h, _) = complete(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!((h.opcode, h.payload_len), (OpCode::Ping, 5));
        let (h, n) = complete(&[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Pong, 5, 6));
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    }

    #[test]
    fn rfc_5_7_256_bytes_and_64_kib_binary() {
        let (h, n) = complete(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!((h.payload_len, n), (256, 4));
        let (h, n) = complete(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!((h.payload_len, n), (65536, 10));
        let enc = FrameHeader::new(OpCode::Binary, 65536).encode();
        assert_eq!(
            enc.as_bytes(),
            &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]
        );
    }

    #[test]
    fn length_boundaries_use_the_minimal_encoding() {
        for (len, hdr_len) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (u64::MAX >> 1, 10),
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut h = FrameHeader::new(OpCode::Binary, len);
                h.mask = mask;
                let enc = h.encode();
                let extra = if mask.is_some() { 4 } else { 0 };
                assert_eq!(enc.as_bytes().len(), hdr_len + extra);
                assert_eq!(complete(enc.as_bytes()), (h, hdr_len + extra));
            }
        }
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete_not_an_error() {
        let mut h = FrameHeader::new(OpCode::Binary, 70_000);
        h.mask = Some([9, 8, 7, 6]);
        let enc = h.encode();
        let bytes = enc.as_bytes();
        for cut in 0..bytes.len() {
            match FrameHeader::parse(&bytes[..cut]).unwrap() {
                Parsed::Incomplete(more) => assert!(cut + more <= bytes.len()),
                other => panic!("prefix {cut} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn non_minimal_length_encoding_is_accepted() {
        let (h, n) = complete(&[0x82, 0x7E, 0x00, 0x05]);
        assert_eq!((h.payload_len, n), (5, 4));
        let (h, n) = complete(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x05]);
        assert_eq!((h.payload_len, n), (5, 10));
    }

    #[test]
    fn payload_length_with_top_bit_set_is_an_error() {
        let buf = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::parse(&buf),
            Err(ProtocolError::PayloadLengthTopBitSet)
        );
        // ... detected as soon as the first length byte is there.
        assert_eq!(
            FrameHeader::parse(&buf[..3]),
            Err(ProtocolError::PayloadLengthTopBitSet)
        );
    }

    #[test]
    fn reserved_opcodes_are_errors_from_the_first_byte() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn check_reserved_bits() {
        for bit in [0x40u8, 0x20, 0x10] {
            let (h, _) = complete(&[0x81 | bit, 0x80, 0, 0, 0, 0]);
            assert_eq!(h.check(Role::Server), Err(ProtocolError::ReservedBitsSet));
        }
    }

    #[test]
    fn check_control_frame_too_big_and_fragmented() {
        let mut h = FrameHeader::new(OpCode::Ping, 126);
        h.mask = Some([0; 4]);
        assert_eq!(
            h.check(Role::Server),
            Err(ProtocolError::ControlFrameTooBig)
        );
        h.payload_len = 125;
        assert_eq!(h.check(Role::Server), Ok(()));
        h.fin = false;
        assert_eq!(
            h.check(Role::Server),
            Err(ProtocolError::FragmentedControlFrame)
        );
    }

    #[test]
    fn check_masking_by_role() {
        let mut h = FrameHeader::new(OpCode::Text, 1);
        assert_eq!(
            h.check(Role::Server),
            Err(ProtocolError::UnmaskedFrameFromClient)
        );
        h.mask = Some([1, 1, 1, 1]);
        assert_eq!(
            h.check(Role::Client),
            Err(ProtocolError::MaskedFrameFromServer)
        );
        assert_eq!(h.check(Role::Server), Ok(()));
    }
}
