//! permessage-deflate (RFC 7692) throughput: compressing and inflating
//! messages through our extension layer against calling flate2 directly
//! with the same settings (raw DEFLATE, sync flush, tail stripped or
//! appended, context kept), interleaved in one run. The difference is our
//! layer's overhead: the tail, bounded output growth, the RSV1 bookkeeping.
//! A third column sends and receives whole messages through `Connection`
//! (framing, masking, UTF-8) for scale. A last group measures what a
//! broadcast to 100 members costs with and without context takeover.
//!
//! ```text
//! cargo bench --features deflate --bench deflate -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The machine is shared and noisy: compare the columns of one run. The
//! compression ratio of each payload is printed once at the start.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use rfc6455::frame::{OpCode, Role};
use rfc6455::handshake::extensions::parse;
use rfc6455::handshake::{DeflateConfig, Negotiated};
use rfc6455::protocol::extension::{ExtensionDecoder, ExtensionEncoder};
use rfc6455::protocol::{
    deflate, Connection, Message, Outgoing, PreparedMessage, SizeLimits, DIRECT_WRITE,
};

const ANSWER: &str = "permessage-deflate; client_max_window_bits=12; server_max_window_bits=12";
const BITS: u8 = 12;
const LEVEL: u32 = 6;

/// JSON-like text of about `len` bytes: records that repeat in shape with
/// varying numbers, like a feed of events.
fn json(len: usize) -> Vec<u8> {
    let mut out = String::with_capacity(len + 128);
    let mut i = 0u64;
    out.push('[');
    while out.len() < len {
        let x = i.wrapping_mul(2_654_435_761) % 100_000;
        out.push_str(&format!(
            r#"{{"id":{i},"type":"trade","symbol":"SYM{}","price":{}.{:02},"qty":{}}},"#,
            x % 50,
            x / 100,
            x % 100,
            x % 997
        ));
        i += 1;
    }
    out.truncate(len);
    out.into_bytes()
}

fn halves(role: Role) -> (Box<dyn ExtensionDecoder>, Box<dyn ExtensionEncoder>) {
    halves_for(ANSWER, role)
}

fn halves_for(answer: &str, role: Role) -> (Box<dyn ExtensionDecoder>, Box<dyn ExtensionEncoder>) {
    let mut negotiated = Negotiated::default();
    negotiated.extensions = parse([answer]).unwrap();
    let config = DeflateConfig::default().level(LEVEL).min_size(0);
    deflate::from_negotiated(role, &negotiated, Some(&config)).unwrap()
}

/// flate2 by hand: what the extension does, with nothing around it.
fn flate2_compress(c: &mut Compress, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(payload.len() / 2 + 64);
    let mut input = payload;
    loop {
        let before = c.total_in();
        c.compress_vec(input, out, FlushCompress::Sync).unwrap();
        input = &input[(c.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    out.truncate(out.len() - 4);
}

fn flate2_decompress(d: &mut Decompress, wire: &[u8], out: &mut Vec<u8>, expect: usize) {
    out.clear();
    out.reserve(expect + 64);
    d.decompress_vec(wire, out, FlushDecompress::Sync).unwrap();
    d.decompress_vec(&[0, 0, 0xff, 0xff], out, FlushDecompress::Sync)
        .unwrap();
}

fn sizes() -> [(&'static str, Vec<u8>); 3] {
    [
        ("1KiB", json(1 << 10)),
        ("16KiB", json(16 << 10)),
        ("256KiB", json(256 << 10)),
    ]
}

fn compress(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_compress");
    for (label, payload) in sizes() {
        group.throughput(Throughput::Bytes(payload.len() as u64));
        let (_, mut ours) = halves(Role::Server);
        let mut out = Vec::new();
        ours.encode(OpCode::Text, &payload, &mut out);
        eprintln!(
            "deflate: {label} JSON-like text -> {} bytes (ratio {:.1}%, first message)",
            out.len(),
            100.0 * out.len() as f64 / payload.len() as f64
        );
        group.bench_with_input(BenchmarkId::new("rfc6455", label), &payload, |b, p| {
            b.iter(|| {
                out.clear();
                black_box(ours.encode(OpCode::Text, black_box(p), &mut out));
            })
        });
        let mut raw = Compress::new_with_window_bits(Compression::new(LEVEL), false, BITS);
        let mut out2 = Vec::new();
        group.bench_with_input(BenchmarkId::new("flate2", label), &payload, |b, p| {
            b.iter(|| flate2_compress(&mut raw, black_box(p), &mut out2))
        });
        let mut server = Connection::new(Role::Server, SizeLimits::default());
        let (d, e) = halves(Role::Server);
        server.add_extension(d, e);
        let text = Message::Text(String::from_utf8(payload.clone()).unwrap());
        group.bench_with_input(BenchmarkId::new("connection_send", label), &text, |b, m| {
            b.iter(|| {
                server.send(black_box(m)).unwrap();
                let n = server.data_to_send().len();
                server.advance(n);
            })
        });
    }
    group.finish();
}

fn decompress(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_decompress");
    for (label, payload) in sizes() {
        group.throughput(Throughput::Bytes(payload.len() as u64));
        // Each message compressed on its own (no context), so any one can be
        // inflated repeatedly by a decoder that keeps context.
        let mut one = Compress::new_with_window_bits(Compression::new(LEVEL), false, BITS);
        let mut wire = Vec::new();
        flate2_compress(&mut one, &payload, &mut wire);

        let (mut ours, _) = halves(Role::Client);
        let mut out = Vec::new();
        group.bench_with_input(BenchmarkId::new("rfc6455", label), &wire, |b, w| {
            b.iter(|| {
                out.clear();
                ours.decode(black_box(w), true, &mut out, usize::MAX)
                    .unwrap();
                assert_eq!(out.len(), payload.len());
            })
        });
        let mut raw = Decompress::new_with_window_bits(false, BITS);
        let mut out2 = Vec::new();
        group.bench_with_input(BenchmarkId::new("flate2", label), &wire, |b, w| {
            b.iter(|| {
                flate2_decompress(&mut raw, black_box(w), &mut out2, payload.len());
                assert_eq!(out2.len(), payload.len());
            })
        });
        // A whole server frame through a client connection.
        let mut frame = vec![0xc1];
        match wire.len() {
            n if n < 126 => frame.push(n as u8),
            n if n < 65536 => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&wire);
        let mut client = Connection::new(Role::Client, SizeLimits::default());
        let (d, e) = halves(Role::Client);
        client.add_extension(d, e);
        group.bench_with_input(
            BenchmarkId::new("connection_receive", label),
            &frame,
            |b, f| {
                b.iter(|| {
                    for m in client.feed(black_box(f)) {
                        black_box(m.unwrap());
                    }
                })
            },
        );
    }
    group.finish();
}

/// What one broadcast of a 1 KiB JSON-like message to 100 members costs in
/// framing and compression (what a `Hub` sender thread does per member,
/// without the socket): members with context takeover each compress it;
/// members without it share one compression (`PreparedMessage`); members
/// without compression only frame it.
fn broadcast(c: &mut Criterion) {
    const MEMBERS: usize = 100;
    let mut group = c.benchmark_group("deflate_broadcast_100_members");
    let message = Message::Text(String::from_utf8(json(1 << 10)).unwrap());
    group.throughput(Throughput::Elements(MEMBERS as u64));
    let no_takeover = "permessage-deflate; server_no_context_takeover; \
        client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12";
    for (label, answer) in [
        ("context_takeover", Some(ANSWER)),
        ("no_context_takeover", Some(no_takeover)),
        ("uncompressed", None),
    ] {
        let mut members: Vec<Outgoing> = (0..MEMBERS)
            .map(|_| {
                let mut out = Outgoing::new(Role::Server);
                if let Some(answer) = answer {
                    out.add_extension(halves_for(answer, Role::Server).1);
                }
                out
            })
            .collect();
        group.bench_with_input(BenchmarkId::new(label, "1KiB"), &message, |b, m| {
            b.iter(|| {
                let prepared = PreparedMessage::new(m.clone());
                for out in &mut members {
                    out.frame_prepared(black_box(&prepared), DIRECT_WRITE)
                        .unwrap();
                    let n = out.pending().len();
                    out.advance(n);
                }
                black_box(prepared.encodings())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compress, decompress, broadcast);
criterion_main!(benches);
