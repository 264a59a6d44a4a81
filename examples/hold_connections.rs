//! Opens many idle WebSocket connections and holds them: the client side of
//! `.ci/mem10k.sh`, which measures what an idle connection costs `wsecho`.
//!
//! ```text
//! cargo run --release --example hold_connections -- 127.0.0.1:9001 10000
//! ```
//!
//! Prints `ready N` once every connection has completed its handshake (and
//! echoed one message, proving it is served), answers keepalive pings while
//! holding them, and closes them all (close frame, then TCP) when stdin
//! reaches end of file. Runs in its own process so that the server's
//! descriptor count and memory are its own.
//!
//! A third argument, a `Sec-WebSocket-Extensions` offer such as
//! `permessage-deflate`, makes every connection negotiate compression and
//! send its one message compressed (RSV1), so the server holds a
//! compressor and a decompressor per connection (`.ci/mem10k.sh --deflate`).

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const REQUEST: &str = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A masked client frame with a fixed key (this is a load tool, not a
/// browser: the key only has to be there).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const KEY: [u8; 4] = [1, 2, 3, 4];
    assert!(payload.len() < 126);
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

/// Reads one (small, unmasked) server frame: opcode and payload.
fn read_frame(mut s: &TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b)?;
            usize::from(u16::from_be_bytes(b))
        }
        127 => return Err(io::Error::other("unexpectedly large frame")),
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok((h[0] & 0x0F, payload))
}

/// RFC 7692 §7.2.3.1: "Hello" compressed, the tail removed.
const HELLO_DEFLATED: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

fn open(addr: SocketAddr, i: usize, offer: Option<&str>) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    match offer {
        None => s.write_all(REQUEST.as_bytes())?,
        Some(offer) => {
            let head = REQUEST.trim_end_matches("\r\n");
            let request = format!("{head}\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n");
            s.write_all(request.as_bytes())?;
        }
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101 ") {
        let line = String::from_utf8_lossy(&head);
        return Err(io::Error::other(format!(
            "refused: {}",
            line.lines().next().unwrap_or("")
        )));
    }
    if let Some(offer) = offer {
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if !head.contains("sec-websocket-extensions: permessage-deflate") {
            return Err(io::Error::other(format!("{offer:?} not accepted")));
        }
        // Compressed (RSV1) both ways: the server inflates and deflates.
        let mut hello = frame(0x1, &HELLO_DEFLATED);
        hello[0] |= 0x40;
        s.write_all(&hello)?;
        return match read_compressed(&s)? {
            true => Ok(s),
            false => Err(io::Error::other("echo not compressed")),
        };
    }
    // One echo proves the connection is served, not just queued.
    let text = i.to_string();
    s.write_all(&frame(0x1, text.as_bytes()))?;
    loop {
        let (opcode, payload) = read_frame(&s)?;
        if opcode == 0x9 {
            s.write_all(&frame(0xA, &payload))?;
            continue;
        }
        if payload != text.as_bytes() {
            return Err(io::Error::other("wrong echo"));
        }
        return Ok(s);
    }
}

/// Reads the echo of a compressed message: whether it had RSV1.
fn read_compressed(mut s: &TcpStream) -> io::Result<bool> {
    loop {
        let mut first = [0u8; 1];
        s.peek(&mut first)?;
        let (opcode, payload) = read_frame(s)?;
        if opcode == 0x9 {
            s.write_all(&frame(0xA, &payload))?;
            continue;
        }
        return Ok(first[0] & 0x40 != 0);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:9001".into())
        .parse()
        .expect("ADDR");
    let n: usize = args.next().map_or(10_000, |v| v.parse().expect("COUNT"));
    let offer: Option<Arc<str>> = args.next().map(Into::into);
    let workers: usize = 8;

    let start = Instant::now();
    let held = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let held = Arc::clone(&held);
            let offer = offer.clone();
            thread::spawn(move || {
                for i in (w..n).step_by(workers) {
                    match open(addr, i, offer.as_deref()) {
                        Ok(s) => held.lock().unwrap().push(s),
                        Err(e) => {
                            eprintln!("hold_connections: connection {i}: {e}");
                            std::process::exit(1);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let held = Arc::try_unwrap(held).unwrap().into_inner().unwrap();
    println!(
        "ready {} in {:.2}s",
        held.len(),
        start.elapsed().as_secs_f64()
    );
    io::stdout().flush().unwrap();

    // Keepalive pings arrive while we hold the connections: one thread
    // answers them, polling each socket without blocking.
    let held = Arc::new(held);
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let held = Arc::clone(&held);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for s in held.iter() {
                    let _ = s.set_nonblocking(true);
                    let mut peek = [0u8; 2];
                    let ready = matches!(s.peek(&mut peek), Ok(2));
                    let _ = s.set_nonblocking(false);
                    if ready {
                        let mut s = s;
                        if let Ok((0x9, payload)) = read_frame(s) {
                            let _ = s.write_all(&frame(0xA, &payload));
                        }
                    }
                }
                thread::sleep(Duration::from_millis(500));
            }
        })
    };

    // Hold until stdin ends, then close every connection: a close frame,
    // then wait for the server's close and its end of stream.
    for _ in io::stdin().lock().lines() {}
    stop.store(true, Ordering::Relaxed);
    pinger.join().unwrap();
    let start = Instant::now();
    for s in held.iter() {
        let mut s = s;
        let _ = s.write_all(&frame(0x8, &1000u16.to_be_bytes()));
    }
    let mut clean = 0;
    for s in held.iter() {
        let mut s = s;
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut rest = Vec::new();
        if s.read_to_end(&mut rest).is_ok() {
            clean += 1;
        }
    }
    println!(
        "closed {clean}/{} cleanly in {:.2}s",
        held.len(),
        start.elapsed().as_secs_f64()
    );
}
