//! Masking (RFC 6455 §5.3): `transformed[i] = original[i] XOR key[i mod 4]`.
//!
//! Done a 64-bit word at a time in safe Rust: the key is repeated into a `u64`
//! and XORed over 8-byte chunks, which the compiler turns into SIMD code; a
//! byte-at-a-time loop is much slower (`benches/codec.rs` measures both).

/// Masks or unmasks `buf` in place with `key`, starting at key byte 0.
///
/// Masking is its own inverse.
///
/// ```
/// use rfc6455::frame::apply_mask;
/// // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
/// let mut payload = *b"Hello";
/// apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d]);
/// assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d]);
/// assert_eq!(&payload, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    mask_from_key_start(buf, key);
}

/// Masks or unmasks `buf` in place as if it started `offset` bytes into the
/// payload, so a payload that arrives in pieces can be unmasked piece by piece.
///
/// ```
/// use rfc6455::frame::{apply_mask, apply_mask_offset};
/// let key = [1, 2, 3, 4];
/// let mut whole = *b"split across reads";
/// let mut pieces = whole;
/// apply_mask(&mut whole, key);
/// let (a, b) = pieces.split_at_mut(7);
/// apply_mask_offset(a, key, 0);
/// apply_mask_offset(b, key, 7);
/// assert_eq!(whole, pieces);
/// ```
#[inline]
pub fn apply_mask_offset(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut k = key;
    k.rotate_left(offset % 4);
    mask_from_key_start(buf, k);
}

/// Masks `buf`, whose first byte takes key byte `k[0]`.
// Inlined (also across crates): for a 20-byte payload an out-of-line call,
// with a key rotation for an offset the caller did not need, cost more than
// the masking itself.
#[inline(always)]
fn mask_from_key_start(buf: &mut [u8], k: [u8; 4]) {
    // The key twice over, in memory order on either endianness (building it
    // byte by byte cost 23 instructions, a third of masking 20 bytes).
    let word = u64::from(u32::from_ne_bytes(k)) * 0x1_0000_0001;
    // Four words per iteration gives the vectorizer a 32-byte body to work with.
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for chunk in block.chunks_exact_mut(8) {
            xor_word(chunk, word);
        }
    }
    let rest = blocks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for chunk in &mut words {
        xor_word(chunk, word);
    }
    // Every chunk above is a multiple of 4 bytes long, so the tail starts at
    // key byte 0; it is shorter than 8 bytes, so at most one 4-byte step.
    let mut tail = words.into_remainder();
    if tail.len() >= 4 {
        let (four, rest) = tail.split_at_mut(4);
        for (byte, key) in four.iter_mut().zip(k) {
            *byte ^= key;
        }
        tail = rest;
    }
    for (byte, key) in tail.iter_mut().zip(k) {
        *byte ^= key;
    }
}

#[inline(always)]
fn xor_word(chunk: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_the_rfc_definition_for_every_length_and_offset() {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        for len in 0..100 {
            for offset in 0..8 {
                let original: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
                let mut fast = original.clone();
                let mut slow = original.clone();
                apply_mask_offset(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn unaligned_subslices_mask_correctly() {
        let key = [7, 77, 177, 255];
        let mut buf = vec![0x55u8; 1000];
        let mut expected = buf.clone();
        apply_mask_offset(&mut buf[3..997], key, 5);
        naive(&mut expected[3..997], key, 5);
        assert_eq!(buf, expected);
    }
}
