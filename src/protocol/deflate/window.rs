//! The LZ77 window of a context-takeover stream, kept apart from the engine
//! that made it, so the engine can be lent between messages (see
//! [`pool`](super::pool)).

use std::collections::VecDeque;

/// The last `2^bits` bytes of a stream's uncompressed data: for a sender,
/// the payloads it sent compressed; for a receiver, what it inflated. With
/// context takeover that is all the next message may refer to (RFC 7692
/// §7.1.2: "the LZ77 sliding window size", at most `2^bits`), so an engine
/// made afresh and given these bytes as its dictionary (zlib's
/// `SetDictionary`) continues the stream as the old one would have.
///
/// Memory grows with what arrives, never past `2^bits` (4 KiB with the
/// default 12-bit windows); nothing is reserved before the first byte.
#[derive(Debug)]
pub(super) struct History {
    bytes: VecDeque<u8>,
    max: usize,
}

impl History {
    /// An empty window of `2^bits` bytes.
    pub(super) fn new(bits: u8) -> History {
        History {
            bytes: VecDeque::new(),
            max: 1 << bits.clamp(8, 15),
        }
    }

    /// `data` followed the window: keep the last `2^bits` bytes of both.
    pub(super) fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.max)..];
        let over = (self.bytes.len() + data.len()).saturating_sub(self.max);
        self.bytes.drain(..over);
        let wanted = self.bytes.len() + data.len();
        if wanted > self.bytes.capacity() {
            // Doubling, capped at the window: never more than it holds.
            let target = wanted.max(self.bytes.capacity() * 2).min(self.max);
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend(data);
    }

    /// Forgets everything (the stream ended, or starts over).
    pub(super) fn clear(&mut self) {
        self.bytes = VecDeque::new();
    }

    /// The window, oldest byte first, in one slice.
    pub(super) fn as_slice(&mut self) -> &[u8] {
        self.bytes.make_contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_window_of_bytes() {
        let mut h = History::new(8);
        h.push(b"abc");
        h.push(b"");
        assert_eq!(h.as_slice(), b"abc");
        let long: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        h.push(&long);
        assert_eq!(h.as_slice(), &long[44..]);
        h.push(b"xyz");
        let mut expect = long[47..].to_vec();
        expect.extend_from_slice(b"xyz");
        assert_eq!(h.as_slice(), &expect[..]);
        assert!(h.bytes.capacity() <= 256 * 2, "{}", h.bytes.capacity());
        h.clear();
        assert_eq!(h.as_slice(), b"");
    }

    #[test]
    fn grows_only_with_what_arrives() {
        let mut h = History::new(15);
        h.push(b"hi");
        assert!(h.bytes.capacity() < 1024, "{}", h.bytes.capacity());
        for _ in 0..100_000 {
            h.push(b"0123456789");
        }
        assert_eq!(h.as_slice().len(), 1 << 15);
        assert!(h.bytes.capacity() <= 1 << 16, "{}", h.bytes.capacity());
    }
}
