//! `FrameHeader::parse` on arbitrary bytes.
//!
//! Properties:
//! - a complete header takes 2..=14 bytes of the input, re-encodes to bytes
//!   that parse back to the same header, and re-encodes to exactly the input
//!   bytes when the input used the minimal length form;
//! - every prefix of the input is `Incomplete` (never asking for more bytes
//!   than the full header turned out to need) or fails with the same error as
//!   the whole input: an error is never reported later than it is decidable
//!   and never differs by how much of the header has arrived;
//! - trailing bytes after a header do not change the result;
//! - `check` never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::frame::{FrameHeader, Parsed, Role, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(2 * MAX_HEADER_LEN)];
    let whole = FrameHeader::parse(data);
    // The outcome over the first `end` bytes, and what each prefix must give.
    let end = match whole {
        Ok(Parsed::Complete(header, n)) => {
            assert!((2..=MAX_HEADER_LEN).contains(&n) && n <= data.len(), "{n}");
            // Bytes after the header are not looked at.
            assert_eq!(FrameHeader::parse(&data[..n]), whole);
            let _ = header.check(Role::Server);
            let _ = header.check(Role::Client);

            let encoded = header.encode();
            let bytes = encoded.as_bytes();
            match FrameHeader::parse(bytes) {
                Ok(Parsed::Complete(again, m)) => {
                    assert_eq!(again, header);
                    assert_eq!(m, bytes.len());
                    // The encoder is minimal, so never longer than the input form.
                    assert!(m <= n, "re-encoded {m} bytes from {n}");
                    if m == n {
                        assert_eq!(bytes, &data[..n], "minimal form must round-trip exactly");
                    }
                }
                other => panic!("re-encoded {header:?} as {bytes:x?}, parsed {other:?}"),
            }
            n
        }
        Ok(Parsed::Incomplete(more)) => {
            assert!(more >= 1);
            assert!(
                data.len() + more <= MAX_HEADER_LEN,
                "{} + {more}",
                data.len()
            );
            data.len()
        }
        Err(_) => data.len(),
    };
    for cut in 0..end {
        match FrameHeader::parse(&data[..cut]) {
            Ok(Parsed::Incomplete(more)) => {
                assert!(more >= 1);
                if let Ok(Parsed::Complete(_, n)) = whole {
                    assert!(
                        cut + more <= n,
                        "prefix {cut} asks for {more}, header is {n}"
                    );
                }
            }
            Ok(Parsed::Complete(h, n)) => {
                panic!("prefix {cut} of {data:x?} parsed as {h:?} ({n} bytes); whole: {whole:?}")
            }
            Err(e) => assert_eq!(
                Err(e),
                whole,
                "prefix {cut} of {data:x?} failed differently from the whole input"
            ),
        }
    }
});
