//! The load generator: N connections, P messages in flight each, every
//! echoed byte checked; and what the server spent meanwhile (see `cpu.rs`).

use super::cpu::{self, Spent};
use super::{env_or, Scenario, HANDSHAKE_ACCEPT, HANDSHAKE_KEY, PATTERN};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub(super) fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    // Read byte-wise-ish until the end of the head: the server sends nothing
    // after it before we send a frame, so reading in chunks is safe.
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 101"), "handshake: {text}");
    assert!(text.contains(HANDSHAKE_ACCEPT), "handshake: {text}");
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(end, head.len(), "unexpected bytes after the handshake");
    Ok(stream)
}

fn mask_in_place(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

fn seq_digits(seq: u64) -> [u8; 8] {
    let mut d = [0u8; 8];
    let hex = b"0123456789abcdef";
    for (i, byte) in d.iter_mut().enumerate() {
        *byte = hex[((seq >> (28 - 4 * i)) & 0xF) as usize];
    }
    d
}

fn header(size: usize, masked: bool, opcode: u8) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    let m = if masked { 0x80 } else { 0 };
    if size < 126 {
        h.push(m | size as u8);
    } else if size <= 0xFFFF {
        h.push(m | 126);
        h.extend_from_slice(&(size as u16).to_be_bytes());
    } else {
        h.push(m | 127);
        h.extend_from_slice(&(size as u64).to_be_bytes());
    }
    h
}

/// One client connection: a batch of P pre-encoded frames.
struct Conn {
    stream: TcpStream,
    key: [u8; 4],
    /// P frames back to back; each message's sequence number is patched in.
    batch: Vec<u8>,
    frame_len: usize,
    header_len: usize,
    seq: u64,
    sent_at: Instant,
}

impl Conn {
    fn new(stream: TcpStream, id: usize, size: usize, inflight: usize) -> Conn {
        let key = [
            0x5a ^ id as u8,
            0xc3 ^ (id >> 8) as u8,
            0x17,
            0x99 ^ (id as u8).rotate_left(3),
        ];
        let opcode = if size <= 125 { 0x1 } else { 0x2 };
        let mut frame = header(size, true, opcode);
        frame.extend_from_slice(&key);
        let header_len = frame.len();
        let start = frame.len();
        frame.extend(PATTERN.iter().copied().cycle().take(size));
        mask_in_place(&mut frame[start..], key, 0);
        let mut batch = Vec::with_capacity(frame.len() * inflight);
        for _ in 0..inflight {
            batch.extend_from_slice(&frame);
        }
        Conn {
            stream,
            key,
            frame_len: frame.len(),
            header_len,
            batch,
            seq: (id as u64) << 20,
            sent_at: Instant::now(),
        }
    }

    /// Sends the next P messages in one write.
    fn send(&mut self) -> io::Result<()> {
        for i in 0..self.batch.len() / self.frame_len {
            let at = i * self.frame_len + self.header_len;
            let mut digits = seq_digits(self.seq + i as u64);
            mask_in_place(&mut digits, self.key, 0);
            self.batch[at..at + 8].copy_from_slice(&digits);
        }
        self.sent_at = Instant::now();
        self.stream.write_all(&self.batch)
    }

    /// Reads the P echoes of the last batch, checks every byte, and records
    /// round trips.
    fn receive(&mut self, buf: &mut Vec<u8>, rtts: Option<&mut Vec<u32>>) -> io::Result<()> {
        let inflight = self.batch.len() / self.frame_len;
        let size = self.frame_len - self.header_len;
        let mut filled = 0;
        let mut done = 0;
        let mut now;
        let mut rtts = rtts;
        loop {
            if buf.len() < filled + 64 * 1024 {
                buf.resize(filled + 64 * 1024, 0);
            }
            let n = self.stream.read(&mut buf[filled..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            now = Instant::now();
            filled += n;
            // Parse every complete frame at the front.
            let mut pos = 0;
            while done < inflight {
                let Some((payload_at, len)) = parse_header(&buf[pos..filled]) else {
                    break;
                };
                if filled - pos < payload_at + len {
                    // Partial payload: grow the buffer to hold it whole.
                    if buf.len() < pos + payload_at + len {
                        buf.resize(pos + payload_at + len + 64 * 1024, 0);
                    }
                    break;
                }
                assert_eq!(len, size, "echo length");
                let payload = &buf[pos + payload_at..pos + payload_at + len];
                let digits = seq_digits(self.seq + done as u64);
                assert_eq!(&payload[..8], &digits[..], "echo sequence");
                let expected_rest = PATTERN.iter().cycle().skip(8 % PATTERN.len());
                if len <= 4096 {
                    assert!(
                        payload[8..].iter().zip(expected_rest).all(|(a, b)| a == b),
                        "echo bytes differ"
                    );
                } else {
                    // Compare in pattern-sized pieces (a memcmp each).
                    for (i, piece) in payload.chunks(PATTERN.len()).enumerate() {
                        if i == 0 {
                            assert_eq!(&piece[8..], &PATTERN[8..piece.len()]);
                        } else {
                            assert_eq!(piece, &PATTERN[..piece.len()], "echo bytes differ");
                        }
                    }
                }
                if let Some(r) = rtts.as_deref_mut() {
                    r.push(
                        now.duration_since(self.sent_at)
                            .as_nanos()
                            .min(u32::MAX as u128) as u32,
                    );
                }
                done += 1;
                pos += payload_at + len;
            }
            if done == inflight {
                assert_eq!(pos, filled, "bytes after the last echo");
                self.seq += inflight as u64;
                return Ok(());
            }
            buf.copy_within(pos..filled, 0);
            filled -= pos;
        }
    }

    /// Close handshake: send close 1000, wait for the server to close.
    fn close(mut self) {
        let mut frame = vec![0x88, 0x82];
        frame.extend_from_slice(&self.key);
        let mut body = 1000u16.to_be_bytes();
        mask_in_place(&mut body, self.key, 0);
        frame.extend_from_slice(&body);
        if self.stream.write_all(&frame).is_err() {
            return;
        }
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut sink = [0u8; 256];
        while let Ok(n) = self.stream.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    }
}

/// An unmasked server frame header: (header length, payload length), or
/// `None` if incomplete.
fn parse_header(b: &[u8]) -> Option<(usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    assert_eq!(b[0] & 0x80, 0x80, "echo frame without FIN");
    assert!(matches!(b[0] & 0x0F, 1 | 2), "unexpected opcode {}", b[0]);
    assert_eq!(b[1] & 0x80, 0, "masked frame from the server");
    match b[1] & 0x7F {
        126 if b.len() >= 4 => Some((4, u16::from_be_bytes([b[2], b[3]]) as usize)),
        127 if b.len() >= 10 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(&b[2..10]);
            Some((10, u64::from_be_bytes(be) as usize))
        }
        126 | 127 => None,
        n => Some((2, n as usize)),
    }
}

#[derive(Default, Clone, Copy)]
pub(super) struct Outcome {
    /// Messages (or connections, for churn) per second.
    pub(super) rate: f64,
    pub(super) p50_us: f64,
    pub(super) p99_us: f64,
    /// The server's CPU µs per message (per connection, for churn) in the
    /// measured window.
    pub(super) cpu_us: f64,
    /// The share of that in the kernel (approximate).
    pub(super) sys_share: f64,
    /// Whether `cpu_us` is exact (per-thread CPU clocks) or from 10 ms
    /// ticks (threads ended in the window: churn).
    pub(super) cpu_exact: bool,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

pub(super) fn run_echo(addr: SocketAddr, pid: u32, s: &Scenario, secs: f64) -> Outcome {
    let warmup = Duration::from_secs_f64((secs * 0.15).min(0.5));
    let measure = Duration::from_secs_f64(secs);
    let threads = env_or("ECHO_CLIENT_THREADS", s.threads).min(s.conns);
    // Connect everything first (not timed); threads connect their own share.
    let start_gate = Arc::new(std::sync::Barrier::new(threads + 1));
    let finished = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..threads {
        let share: Vec<usize> = (t..s.conns).step_by(threads).collect();
        let gate = Arc::clone(&start_gate);
        let done = Arc::clone(&finished);
        let s = *s;
        handles.push(
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut conns: Vec<Conn> = share
                        .iter()
                        .map(|&id| {
                            Conn::new(connect(addr).expect("connect"), id, s.size, s.inflight)
                        })
                        .collect();
                    gate.wait();
                    let begin = Instant::now();
                    let measure_from = begin + warmup;
                    let until = measure_from + measure;
                    let mut buf = Vec::new();
                    let mut rtts: Vec<u32> = Vec::with_capacity(1 << 16);
                    for c in &mut conns {
                        c.send().expect("send");
                    }
                    // Until the server's CPU has been read at the end of the
                    // window: no connection closes (and no server thread
                    // ends) inside it.
                    while !done.load(Ordering::Acquire) {
                        let now = Instant::now();
                        let measuring = now >= measure_from && now < until;
                        for c in &mut conns {
                            c.receive(&mut buf, measuring.then_some(&mut rtts))
                                .expect("receive");
                            c.send().expect("send");
                        }
                    }
                    // Drain the last batches, then close.
                    for c in &mut conns {
                        c.receive(&mut buf, None).expect("receive");
                    }
                    for c in conns {
                        c.close();
                    }
                    rtts
                })
                .expect("spawn client"),
        );
    }
    start_gate.wait();
    let spent = window(pid, warmup, measure);
    finished.store(true, Ordering::Release);
    // Echoes recorded are those whose batch *started* in the measured window
    // (the loop checks the clock once per pass over its connections).
    outcome(handles, measure, spent)
}

/// Joins the client threads and turns the round trips they timed (ns) in
/// the measured window into a rate and percentiles.
fn outcome(
    handles: Vec<thread::JoinHandle<Vec<u32>>>,
    measure: Duration,
    spent: Option<Spent>,
) -> Outcome {
    let mut all: Vec<u32> = Vec::new();
    for h in handles {
        all.extend(h.join().expect("client thread"));
    }
    all.sort_unstable();
    let (cpu_us, sys_share, cpu_exact) = match spent {
        Some(spent) if !all.is_empty() => (
            spent.total * 1e6 / all.len() as f64,
            spent.sys_share,
            spent.exact,
        ),
        _ => (f64::NAN, f64::NAN, false),
    };
    Outcome {
        rate: all.len() as f64 / measure.as_secs_f64(),
        p50_us: percentile(&all, 0.5),
        p99_us: percentile(&all, 0.99),
        cpu_us,
        sys_share,
        cpu_exact,
    }
}

/// The server's CPU over the measured window, which the client threads
/// start `warmup` after the gate opens: read once it starts and once it ends
/// (after every connection is up, so handshakes are not counted).
fn window(pid: u32, warmup: Duration, measure: Duration) -> Option<Spent> {
    thread::sleep(warmup);
    let before = cpu::read(pid)?;
    thread::sleep(measure);
    let after = cpu::read(pid)?;
    Some(cpu::spent(&before, &after))
}

pub(super) fn run_churn(addr: SocketAddr, pid: u32, s: &Scenario, secs: f64) -> Outcome {
    let warmup = Duration::from_secs_f64((secs * 0.15).min(0.5));
    let measure = Duration::from_secs_f64(secs);
    let gate = Arc::new(std::sync::Barrier::new(s.threads + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..s.threads {
        let gate = Arc::clone(&gate);
        let stop = Arc::clone(&stop);
        let size = s.size;
        handles.push(
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut times: Vec<u32> = Vec::new();
                    let mut buf = Vec::new();
                    gate.wait();
                    let measure_from = Instant::now() + warmup;
                    let until = measure_from + measure;
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        if started >= until {
                            break;
                        }
                        let stream = connect(addr).expect("connect");
                        let mut c = Conn::new(stream, t * 1_000_003 + n, size, 1);
                        c.send().expect("send");
                        c.receive(&mut buf, None).expect("receive");
                        c.close();
                        n += 1;
                        if started >= measure_from {
                            let took = started.elapsed().as_nanos().min(u32::MAX as u128);
                            times.push(took as u32);
                        }
                    }
                    times
                })
                .expect("spawn churn client"),
        );
    }
    gate.wait();
    let spent = window(pid, warmup, measure);
    outcome(handles, measure, spent)
}
