//! Codec benchmarks: masking, frame header parsing, decoding a stream of
//! frames through a whole server connection, and incremental UTF-8
//! validation, with `tungstenite` beside ours in the same group wherever it
//! exposes an equivalent.
//!
//! The machine this runs on is shared and noisy: compare the two columns of
//! one run (medians and ratios), not figures across runs.
//!
//! ```text
//! cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3
//! cargo bench --bench codec -- mask/          # one group
//! ```

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rfc6455::frame::{apply_mask, FrameHeader, OpCode, Parsed, Role};
use rfc6455::protocol::{Connection, Message, MessageRef, SizeLimits};
use rfc6455::utf8::Validator;
use std::io::{self, Cursor, Read, Write};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The RFC 6455 §5.3 definition, one byte at a time: the baseline the
/// word-at-a-time `apply_mask` is measured against.
#[inline(never)]
fn mask_bytewise(buf: &mut [u8], key: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for (label, size) in [
        ("16B", 16usize),
        ("1KiB", 1 << 10),
        ("16KiB", 16 << 10),
        ("1MiB", 1 << 20),
        ("64MiB", 64 << 20),
    ] {
        let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        // 64 MiB takes milliseconds per iteration: fewer samples keep the run short.
        group.sample_size(if size >= 1 << 20 { 20 } else { 100 });
        group.bench_function(BenchmarkId::new("ours", label), |b| {
            b.iter(|| apply_mask(black_box(&mut buf[..]), black_box(KEY)))
        });
        group.bench_function(BenchmarkId::new("bytewise", label), |b| {
            b.iter(|| mask_bytewise(black_box(&mut buf[..]), black_box(KEY)))
        });
    }
    group.finish();
}

/// Headers of every encoded length: 2 (7-bit length), 4 (16-bit), 10 (64-bit)
/// and 14 bytes (64-bit length and a masking key).
fn headers() -> Vec<(&'static str, Vec<u8>)> {
    let mut masked = FrameHeader::new(OpCode::Binary, 1 << 20);
    masked.mask = Some(KEY);
    let cases = [
        ("2B", FrameHeader::new(OpCode::Text, 100)),
        ("4B", FrameHeader::new(OpCode::Binary, 1000)),
        ("10B", FrameHeader::new(OpCode::Binary, 1 << 20)),
        ("14B", masked),
    ];
    cases
        .iter()
        .map(|(label, h)| {
            let bytes = h.encode().as_bytes().to_vec();
            assert_eq!(
                label.trim_end_matches('B').parse::<usize>(),
                Ok(bytes.len())
            );
            (*label, bytes)
        })
        .collect()
}

fn header_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_parse");
    group.throughput(Throughput::Elements(1));
    for (label, bytes) in headers() {
        // Both parsers must agree on what they are given before timing them.
        let ours = match FrameHeader::parse(&bytes) {
            Ok(Parsed::Complete(h, n)) => (h.payload_len, n),
            other => panic!("{label}: {other:?}"),
        };
        let mut cursor = Cursor::new(&bytes[..]);
        let (theirs, len) = tungstenite::protocol::frame::FrameHeader::parse(&mut cursor)
            .unwrap()
            .unwrap();
        assert_eq!(ours, (len, theirs.len(len)));

        group.bench_function(BenchmarkId::new("ours", label), |b| {
            b.iter(|| FrameHeader::parse(black_box(&bytes[..])))
        });
        group.bench_function(BenchmarkId::new("tungstenite", label), |b| {
            b.iter(|| {
                let mut cursor = Cursor::new(black_box(&bytes[..]));
                tungstenite::protocol::frame::FrameHeader::parse(&mut cursor)
            })
        });
    }
    group.finish();
}

const FRAMES: usize = 10_000;
const PAYLOAD: &str = "twenty bytes of text";

/// `FRAMES` masked single-frame text messages of 20 bytes each, as a client sends them.
fn masked_text_stream() -> Vec<u8> {
    assert_eq!(PAYLOAD.len(), 20);
    let mut wire = Vec::with_capacity(FRAMES * 26);
    for i in 0..FRAMES {
        let key = [i as u8, (i >> 8) as u8, 0x5a, 0xa5];
        let mut header = FrameHeader::new(OpCode::Text, PAYLOAD.len() as u64);
        header.mask = Some(key);
        wire.extend_from_slice(header.encode().as_bytes());
        let start = wire.len();
        wire.extend_from_slice(PAYLOAD.as_bytes());
        apply_mask(&mut wire[start..], key);
    }
    wire
}

/// Ours: a server `Connection` fed the whole buffer, one `receive` per message.
fn decode_ours(wire: &[u8]) -> usize {
    let mut connection = Connection::new(Role::Server, SizeLimits::default());
    let mut rest = wire;
    let mut count = 0;
    while !rest.is_empty() {
        let received = connection.receive(rest).unwrap();
        rest = &rest[received.consumed..];
        if let Some(Message::Text(text)) = received.message {
            black_box(text);
            count += 1;
        }
    }
    count
}

/// Ours, zero-copy: the bytes are copied into a reusable buffer (as a socket
/// read would put them there; tungstenite's read copies them likewise), then
/// each frame is unmasked in place and lent out by `receive_in_place`.
fn decode_ours_in_place(wire: &[u8], buf: &mut Vec<u8>) -> usize {
    buf.clear();
    buf.extend_from_slice(wire);
    let mut connection = Connection::new(Role::Server, SizeLimits::default());
    let mut rest = &mut buf[..];
    let mut count = 0;
    while !rest.is_empty() {
        let received = connection.receive_in_place(rest).unwrap();
        let consumed = received.consumed;
        if let Some(MessageRef::Text(text)) = received.message {
            black_box(text);
            count += 1;
        }
        rest = &mut rest[consumed..];
    }
    count
}

/// An in-memory stream for tungstenite: reads come from the buffer, writes
/// (there are none: no pings or closes in the input) are discarded.
struct MemoryStream<'a> {
    input: Cursor<&'a [u8]>,
}

impl Read for MemoryStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for MemoryStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// tungstenite: a server `WebSocket` reading the same bytes from memory.
fn decode_tungstenite(wire: &[u8]) -> usize {
    let stream = MemoryStream {
        input: Cursor::new(wire),
    };
    let mut socket =
        tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Server, None);
    for _ in 0..FRAMES {
        match socket.read().unwrap() {
            tungstenite::Message::Text(text) => {
                black_box(text);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    FRAMES
}

fn decode_stream(c: &mut Criterion) {
    let wire = masked_text_stream();
    assert_eq!(decode_ours(&wire), FRAMES);
    assert_eq!(decode_tungstenite(&wire), FRAMES);
    let mut buf = Vec::new();
    assert_eq!(decode_ours_in_place(&wire, &mut buf), FRAMES);

    let mut group = c.benchmark_group("decode_stream");
    group.throughput(Throughput::Elements(FRAMES as u64));
    let label = format!("{FRAMES}x20B_masked_text");
    // `ours`: the owned `receive` (a `String` per message, like tungstenite's
    // `read`); `ours_in_place`: the borrowing `receive_in_place`.
    group.bench_function(BenchmarkId::new("ours", &label), |b| {
        b.iter(|| decode_ours(black_box(&wire)))
    });
    group.bench_function(BenchmarkId::new("ours_in_place", &label), |b| {
        b.iter(|| decode_ours_in_place(black_box(&wire), &mut buf))
    });
    group.bench_function(BenchmarkId::new("tungstenite", &label), |b| {
        b.iter(|| decode_tungstenite(black_box(&wire)))
    });
    group.finish();
}

/// 1 MiB of text: all ASCII, or a mix of 1- to 4-byte sequences.
fn texts() -> [(&'static str, Vec<u8>); 2] {
    const SIZE: usize = 1 << 20;
    let ascii: Vec<u8> = b"The quick brown fox jumps over the lazy dog. "
        .iter()
        .copied()
        .cycle()
        .take(SIZE)
        .collect();
    let sample = "Hello-µ@ßöäüàá-UTF-8!! κόσμε Привет 日本語のテキスト 🦀🎉 ";
    let mut mixed = String::with_capacity(SIZE + sample.len());
    while mixed.len() < SIZE {
        mixed.push_str(sample);
    }
    let mut cut = SIZE;
    while !mixed.is_char_boundary(cut) {
        cut -= 1;
    }
    mixed.truncate(cut);
    [("ascii_1MiB", ascii), ("mixed_1MiB", mixed.into_bytes())]
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for (label, text) in texts() {
        assert!(std::str::from_utf8(&text).is_ok());
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::new("ours_whole", label), |b| {
            b.iter(|| {
                let mut v = Validator::new();
                v.feed(black_box(&text)).unwrap();
                v.finish().unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("ours_1KiB_pieces", label), |b| {
            b.iter(|| {
                let mut v = Validator::new();
                // 1 KiB pieces split multibyte sequences in the mixed text.
                for piece in black_box(&text).chunks(1024) {
                    v.feed(piece).unwrap();
                }
                v.finish().unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("std_whole", label), |b| {
            b.iter(|| std::str::from_utf8(black_box(&text)).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, masking, header_parse, decode_stream, utf8);
criterion_main!(benches);
