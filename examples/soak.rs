//! Soak load for an echo server: the client side of `.ci/soak.sh`.
//!
//! ```text
//! cargo run --release --example soak -- ws://127.0.0.1:9001/ CLIENTS MESSAGES [MAX_BYTES]
//! ```
//!
//! CLIENTS threads each open a connection with this crate's client and send
//! MESSAGES messages, text or binary at random, each of a random size from 0
//! to MAX_BYTES (default 1 MiB; log-uniform, so every order of magnitude is
//! exercised without the run being dominated by megabyte messages), and
//! check that every echo is byte-for-byte what was sent. Prints totals and
//! exits non-zero on any mismatch or error.

use rfc6455::{CloseCode, Message};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

/// xorshift64*: deterministic per client, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A size in 0..=max, log-uniform.
    fn size(&mut self, max: usize) -> usize {
        let bits = (usize::BITS - max.leading_zeros()) as u64;
        let b = self.next() % (bits + 1);
        ((self.next() & ((1u64 << b) - 1)) as usize).min(max)
    }
}

/// Random valid UTF-8 of about `len` bytes, with 1- to 4-byte characters.
fn text(rng: &mut Rng, len: usize) -> String {
    const CHARS: [char; 8] = ['a', 'Z', '0', ' ', 'é', 'κ', '€', '𝄞'];
    let mut s = String::with_capacity(len + 4);
    while s.len() < len {
        s.push(CHARS[(rng.next() % 8) as usize]);
    }
    s
}

fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

#[derive(Default)]
struct Totals {
    messages: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
}

fn client(url: &str, id: u64, messages: u64, max: usize, totals: &Totals) -> rfc6455::Result<()> {
    let (mut ws, _) = rfc6455::connect(url)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id + 1).wrapping_mul(0x1234_5678_9abc_def1));
    for _ in 0..messages {
        let len = rng.size(max);
        let sent = if rng.next() & 1 == 0 {
            Message::Text(text(&mut rng, len))
        } else {
            Message::Binary(binary(&mut rng, len))
        };
        ws.send(sent.clone())?;
        let echo = loop {
            match ws.read()? {
                m if m.is_data() => break m,
                _ => {}
            }
        };
        if echo != sent {
            totals.failures.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "soak: client {id}: echo of a {} byte message differs",
                sent.len()
            );
        }
        totals.messages.fetch_add(1, Ordering::Relaxed);
        totals.bytes.fetch_add(sent.len() as u64, Ordering::Relaxed);
    }
    ws.close(CloseCode::NORMAL, "done")?;
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(rfc6455::Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: soak URL CLIENTS MESSAGES [MAX_BYTES]");
        std::process::exit(2);
    }
    let url = args[0].clone();
    let clients: u64 = args[1].parse().expect("CLIENTS");
    let messages: u64 = args[2].parse().expect("MESSAGES");
    let max: usize = args
        .get(3)
        .map_or(1 << 20, |m| m.parse().expect("MAX_BYTES"));

    let totals = Arc::new(Totals::default());
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|id| {
            let (url, totals) = (url.clone(), Arc::clone(&totals));
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    if let Err(e) = client(&url, id, messages, max, &totals) {
                        totals.failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("soak: client {id}: {e}");
                    }
                })
                .expect("spawn")
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let secs = start.elapsed().as_secs_f64();
    let n = totals.messages.load(Ordering::Relaxed);
    let bytes = totals.bytes.load(Ordering::Relaxed);
    let failures = totals.failures.load(Ordering::Relaxed);
    println!(
        "soak: {clients} clients, {n} messages echoed and checked, {:.1} MiB each way, \
         {secs:.1} s ({:.0} msg/s, {:.0} MiB/s each way), {failures} failures",
        bytes as f64 / (1 << 20) as f64,
        n as f64 / secs,
        bytes as f64 / (1 << 20) as f64 / secs,
    );
    if failures > 0 || n != clients * messages {
        std::process::exit(1);
    }
}
