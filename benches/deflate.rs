//! permessage-deflate (RFC 7692) throughput: compressing and inflating
//! messages through our extension layer against calling flate2 directly
//! with the same settings (raw DEFLATE, sync flush, tail stripped or
//! appended, context kept), interleaved in one run. The difference is our
//! layer's overhead: the tail, bounded output growth, the RSV1 bookkeeping.
//! A third column sends and receives whole messages through `Connection`
//! (framing, masking, UTF-8) for scale. A last group measures what a
//! broadcast to 100 members costs with and without context takeover, and a
//! chat-like load (`deflate_chat_message`) prints its compression ratio and
//! measures a message with the compressor kept live against one made again
//! from the window (a connection beyond `deflate::live_contexts()`).
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
use rfc6455::handshake::{DeflateConfig, DeflateParams, Negotiated};
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

/// Chat-like traffic: short JSON messages whose keys, names and words
/// recur from message to message (what context takeover is for), now and
/// then a longer one. Deterministic.
fn chat(count: usize) -> Vec<Vec<u8>> {
    const WORDS: &str = "the be to of and a in that have it for not on with he as you do at \
        this but his by from they we say her she or an will my one all would there their what so \
        up out if about who get which go me when make can like time no just him know take people \
        into year your good some could them see other than then now look only come its over think \
        also back after use two how our work first well way even new want because any these give \
        day most us meeting build deploy review lunch coffee tomorrow today thanks ok sure yes \
        merged broken green red test release branch ticket bug fix done later cool nice great";
    const USERS: [&str; 8] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|i| {
            let n = if next() % 25 == 0 { 40 + next() % 120 } else { 2 + next() % 14 };
            let text: Vec<&str> = (0..n)
                .map(|_| {
                    // Zipf-like: low indices far more often.
                    let r = (next() % 1000) as f64 / 1000.0;
                    words[((r * r * r) * words.len() as f64) as usize]
                })
                .collect();
            let secs = 36_000 + i * 7;
            format!(
                r#"{{"type":"message","room":"lobby","from":"{}","text":"{}","time":"{:02}:{:02}:{:02}"}}"#,
                USERS[(next() % 8) as usize],
                text.join(" "),
                secs / 3600 % 24,
                secs / 60 % 60,
                secs % 60
            )
            .into_bytes()
        })
        .collect()
}

/// Our encoder half as a concrete type (for `release`), with the default
/// negotiation of `ANSWER`.
fn encoder() -> deflate::DeflateEncoder {
    let answer = &parse([ANSWER]).unwrap()[0];
    let params = DeflateParams::from_answer(answer, true).unwrap();
    let config = DeflateConfig::default().level(LEVEL).min_size(0);
    deflate::DeflateEncoder::new(&params, &config)
}

/// The compression ratio of a chat-like load (printed), and what a message
/// costs with the compressor kept live against one made again from the
/// window (what a connection beyond `deflate::live_contexts()` pays): one
/// connection with 12-bit windows and context takeover, against flate2
/// with one compressor kept for the whole connection (what this crate did
/// before compressors were lent).
fn chat_load(c: &mut Criterion) {
    let messages = chat(4000);
    let raw: usize = messages.iter().map(Vec::len).sum();
    let ratio = |wire: usize| 100.0 * wire as f64 / raw as f64;
    let mut out = Vec::new();
    let mut kept = Compress::new_with_window_bits(Compression::new(LEVEL), false, BITS);
    let mut before = 0;
    for m in &messages {
        flate2_compress(&mut kept, m, &mut out);
        before += out.len();
    }
    let mut ours = |release: bool| {
        let mut encoder = encoder();
        let mut total = 0;
        for m in &messages {
            out.clear();
            encoder.encode(OpCode::Text, m, &mut out);
            total += out.len();
            if release {
                encoder.release();
            }
        }
        total
    };
    let (live, every) = (ours(false), ours(true));
    eprintln!(
        "deflate chat load: {} messages, {raw} bytes, mean {} B: flate2 one compressor per \
         connection {:.2}%, rfc6455 live {:.2}%, rfc6455 made again from the window for every \
         message {:.2}% ({:+.2}% bytes against flate2)",
        messages.len(),
        raw / messages.len(),
        ratio(before),
        ratio(live),
        ratio(every),
        100.0 * (every as f64 - before as f64) / before as f64
    );

    let mut group = c.benchmark_group("deflate_chat_message");
    group.throughput(Throughput::Elements(1));
    // Each iteration compresses the next message of the load.
    let cycle = |i: &mut usize| {
        *i = (*i + 1) % messages.len();
        &messages[*i]
    };
    let (mut i, mut live) = (0, encoder());
    group.bench_function("compress_live", |b| {
        b.iter(|| {
            out.clear();
            black_box(live.encode(OpCode::Text, black_box(cycle(&mut i)), &mut out));
        })
    });
    let (mut i, mut released) = (0, encoder());
    group.bench_function("compress_made_again", |b| {
        b.iter(|| {
            out.clear();
            black_box(released.encode(OpCode::Text, black_box(cycle(&mut i)), &mut out));
            released.release();
        })
    });
    let mut i = 0;
    group.bench_function("flate2_one_compressor", |b| {
        b.iter(|| flate2_compress(&mut kept, black_box(cycle(&mut i)), &mut out))
    });
    group.finish();
}

criterion_group!(benches, compress, decompress, broadcast, chat_load);
criterion_main!(benches);
