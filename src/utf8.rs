//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but
//! finds that the byte stream is not, in fact, a valid UTF-8 stream, that
//! endpoint MUST _Fail the WebSocket Connection_." Validating each piece as it
//! arrives lets the connection fail at the first impossible byte, even in the
//! first fragment of a long message, instead of after buffering all of it.
//!
//! Long valid runs go through `std::str::from_utf8`, whose ASCII fast path
//! handles a word at a time; only a code point split across pieces (at most
//! three carried bytes) is handled here.

use std::str;

/// Why a byte sequence is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error {
    /// Bytes of the whole stream (across all pieces fed so far) that were
    /// valid before the error.
    pub valid_up_to: u64,
}

/// A UTF-8 validator whose state carries across pieces.
///
/// ```
/// use rfc6455::utf8::Validator;
/// let text = "κόσμε".as_bytes();
/// let mut v = Validator::new();
/// // Split inside a two-byte sequence: still fine so far.
/// v.feed(&text[..3]).unwrap();
/// v.feed(&text[3..]).unwrap();
/// v.finish().unwrap();
///
/// // 0xC0 can never start a valid sequence: rejected at once, before the end.
/// let mut v = Validator::new();
/// assert!(v.feed(b"ok \xC0").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Validator {
    /// The start of a code point split across pieces.
    partial: [u8; 4],
    partial_len: u8,
    /// Bytes consumed so far, for error positions.
    consumed: u64,
}

impl Validator {
    /// A validator at the start of a stream.
    pub const fn new() -> Validator {
        Validator {
            partial: [0; 4],
            partial_len: 0,
            consumed: 0,
        }
    }

    /// Whether the stream so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// Validates the next piece. Fails as soon as a byte arrives that no valid
    /// continuation could follow; an incomplete sequence at the end of `bytes`
    /// is kept for the next call.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len > 0 {
            // Complete the carried code point with as many bytes as it needs.
            let have = usize::from(self.partial_len);
            let need = sequence_len(self.partial[0]) - have;
            let take = need.min(bytes.len());
            let mut buf = self.partial;
            buf[have..have + take].copy_from_slice(&bytes[..take]);
            match str::from_utf8(&buf[..have + take]) {
                Ok(_) => {
                    self.partial_len = 0;
                    self.consumed += (have + take) as u64;
                    bytes = &bytes[take..];
                }
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix; everything in `bytes` was used.
                    self.partial = buf;
                    self.partial_len = (have + take) as u8;
                    return Ok(());
                }
                Err(_) => {
                    return Err(Utf8Error {
                        valid_up_to: self.consumed,
                    })
                }
            }
        }
        match str::from_utf8(bytes) {
            Ok(_) => {
                self.consumed += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let valid = e.valid_up_to();
                if e.error_len().is_some() {
                    return Err(Utf8Error {
                        valid_up_to: self.consumed + valid as u64,
                    });
                }
                // An incomplete but so far valid sequence ends the piece.
                let tail = &bytes[valid..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                self.consumed += valid as u64;
                Ok(())
            }
        }
    }

    /// Ends the stream: an error if it stops inside a code point.
    pub fn finish(&self) -> Result<(), Utf8Error> {
        if self.is_complete() {
            Ok(())
        } else {
            Err(Utf8Error {
                valid_up_to: self.consumed,
            })
        }
    }

    /// Resets to the start of a new stream.
    pub fn reset(&mut self) {
        *self = Validator::new();
    }
}

/// The length of the sequence a lead byte starts (1 for invalid lead bytes,
/// which `from_utf8` then rejects).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_in_pieces(bytes: &[u8], piece: usize) -> Result<(), Utf8Error> {
        let mut v = Validator::new();
        for chunk in bytes.chunks(piece.max(1)) {
            v.feed(chunk)?;
        }
        v.finish()
    }

    #[test]
    fn agrees_with_std_for_every_split_of_tricky_inputs() {
        let cases: &[&[u8]] = &[
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "κόσμε".as_bytes(),
            "\u{10FFFF}\u{FFFF}\u{0800}\u{80}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xf0\x8f\xbf\xbf",
            b"\xed\xbf\xbf",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xfe\xff",
            b"\xce",
            b"abc\xf0\x9f\x98",
            b"\x80",
        ];
        for input in cases {
            let expected = str::from_utf8(input).is_ok();
            for piece in 1..=input.len().max(1) {
                assert_eq!(
                    validate_in_pieces(input, piece).is_ok(),
                    expected,
                    "{input:x?} in pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn fails_fast_at_the_first_impossible_byte() {
        // Autobahn 6.4.x: the first fragment already holds an invalid sequence.
        let mut v = Validator::new();
        assert!(v
            .feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
            .is_ok());
        assert_eq!(
            v.feed(b"\xf4\x90\x80\x80").unwrap_err().valid_up_to,
            11,
            "0xF4 0x90 exceeds U+10FFFF and is rejected at the second byte"
        );
        let mut v = Validator::new();
        v.feed(b"\xf4").unwrap();
        assert!(v.feed(b"\x90").is_err());
    }

    #[test]
    fn surrogates_are_rejected_when_split() {
        let mut v = Validator::new();
        v.feed(b"\xed").unwrap();
        assert!(v.feed(b"\xa0").is_err());
    }

    #[test]
    fn truncated_sequence_at_the_end_fails_finish() {
        let mut v = Validator::new();
        v.feed(b"abc\xe2\x82").unwrap();
        assert!(!v.is_complete());
        assert_eq!(v.finish(), Err(Utf8Error { valid_up_to: 3 }));
    }
}
