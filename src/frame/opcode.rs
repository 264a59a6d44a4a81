/// A frame opcode (RFC 6455 §5.2). The reserved values 0x3–0x7 and 0xB–0xF are
/// not representable: [`OpCode::from_u4`] returns `None` for them and the
/// header parser reports [`ProtocolError::ReservedOpcode`](super::ProtocolError::ReservedOpcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a continuation of a fragmented message.
    Continuation,
    /// 0x1: the first (or only) frame of a text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: connection close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Decodes the low four bits of the first header byte; `None` for reserved values.
    ///
    /// ```
    /// use rfc6455::frame::OpCode;
    /// assert_eq!(OpCode::from_u4(0x9), Some(OpCode::Ping));
    /// assert_eq!(OpCode::from_u4(0x3), None);
    /// ```
    #[inline]
    pub const fn from_u4(bits: u8) -> Option<OpCode> {
        match bits {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    #[inline]
    pub const fn as_u4(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// RFC 6455 §5.5: opcodes with the high bit set (close, ping, pong) are control frames.
    #[inline]
    pub const fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_and_reserved_values_are_rejected() {
        for bits in 0u8..16 {
            match OpCode::from_u4(bits) {
                Some(op) => {
                    assert_eq!(op.as_u4(), bits);
                    assert_eq!(op.is_control(), bits >= 8);
                }
                None => assert!((3..=7).contains(&bits) || bits >= 0xB),
            }
        }
    }
}
