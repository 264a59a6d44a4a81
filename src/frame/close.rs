//! Close frame payloads (RFC 6455 §5.5.1, §7.4).

use super::ProtocolError;
use std::fmt;

/// A close status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure; the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigated away).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer violated the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with the message type (e.g. invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message is too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: bad gateway (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: TLS handshake failure. Never sent on the wire.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a close frame on the wire.
    ///
    /// RFC 6455 §7.4.1/§7.4.2 and the IANA registry: 1000–1003 and 1007–1014
    /// are defined; 1004 is reserved; 1005, 1006 and 1015 MUST NOT be sent;
    /// 1016–2999 are reserved for future RFCs; 3000–4999 are for libraries,
    /// frameworks and applications; anything below 1000 is unused.
    ///
    /// ```
    /// use rfc6455::frame::CloseCode;
    /// assert!(CloseCode(1000).is_valid_on_wire());
    /// assert!(CloseCode(4999).is_valid_on_wire());
    /// assert!(!CloseCode(1005).is_valid_on_wire());
    /// assert!(!CloseCode(2999).is_valid_on_wire());
    /// ```
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        CloseCode(code)
    }
}

/// The body of a close frame: a status code and a UTF-8 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason; at most 123 bytes on the wire.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with an empty reason.
    pub fn new(code: CloseCode) -> CloseFrame {
        CloseFrame {
            code,
            reason: String::new(),
        }
    }
}

/// `1000` or `1001 (going away)`. The reason is the peer's text, so its
/// control and bidi characters are escaped (see [`escape`](crate::escape)):
/// a close frame can be logged as it is.
///
/// ```
/// use rfc6455::{CloseCode, CloseFrame};
/// let frame = CloseFrame { code: CloseCode::GOING_AWAY, reason: "bye\n\u{1b}[2J".into() };
/// assert_eq!(frame.to_string(), r"1001 (bye\n\u{1b}[2J)");
/// ```
impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            let reason = crate::escape::for_display(&self.reason);
            write!(f, "{} ({reason})", self.code)
        }
    }
}

/// Parses the payload of a received close frame.
///
/// RFC 6455 §5.5.1: an empty body is allowed (no status code); otherwise the
/// first two bytes are a status code and the rest is a UTF-8 reason. So a
/// one-byte body is a protocol error, an invalid code is a protocol error
/// (1002), and a reason that is not UTF-8 fails the connection with 1007
/// (§8.1).
///
/// ```
/// use rfc6455::frame::{parse_close_payload, CloseCode};
/// use rfc6455::ProtocolError;
/// let frame = parse_close_payload(b"\x03\xe8bye").unwrap().unwrap();
/// assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::NORMAL, "bye"));
/// assert_eq!(parse_close_payload(b""), Ok(None));
/// assert_eq!(parse_close_payload(b"\x03"), Err(ProtocolError::ClosePayloadOfOneByte));
/// ```
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::ClosePayloadOfOneByte),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| ProtocolError::InvalidUtf8InCloseReason)?
                .to_owned();
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Appends a close frame body (code, then reason) to `out`. The caller checks
/// the code and the 123-byte reason limit; see
/// [`Outgoing::close`](crate::protocol::Outgoing::close).
pub fn encode_close_payload(frame: Option<&CloseFrame>, out: &mut Vec<u8>) {
    if let Some(frame) = frame {
        out.extend_from_slice(&frame.code.0.to_be_bytes());
        out.extend_from_slice(frame.reason.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes_follow_rfc_7_4_and_the_iana_registry() {
        for code in 0u16..=5000 {
            let valid = parse_close_payload(&code.to_be_bytes()).is_ok();
            let expected = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(valid, expected, "code {code}");
        }
    }

    #[test]
    fn invalid_close_code_is_a_protocol_error() {
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                parse_close_payload(&code.to_be_bytes()),
                Err(ProtocolError::InvalidCloseCode(code))
            );
        }
    }

    #[test]
    fn close_reason_with_invalid_utf8_is_1007() {
        let err = parse_close_payload(b"\x03\xe8\xff").unwrap_err();
        assert_eq!(err, ProtocolError::InvalidUtf8InCloseReason);
        assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let frame = CloseFrame {
            code: CloseCode(4321),
            reason: "ünïcode".into(),
        };
        let mut out = Vec::new();
        encode_close_payload(Some(&frame), &mut out);
        assert_eq!(parse_close_payload(&out), Ok(Some(frame)));
        out.clear();
        encode_close_payload(None, &mut out);
        assert!(out.is_empty());
    }
}
