//! Streaming throughput: one large message echoed by `wsecho` as it arrives
//! (sent with `send_stream`, read back with `read_stream` at the same time),
//! against the whole-message path at 1 MiB (send a 1 MiB message, read its
//! echo, repeat) on the same server, interleaved round by round.
//!
//! ```text
//! cargo bench --bench stream                       # 1 GiB, 3 rounds
//! STREAM_BYTES=268435456 STREAM_ROUNDS=5 cargo bench --bench stream
//! ```
//!
//! Both paths move the same number of bytes each way over one connection to
//! the real `wsecho` binary (`--stream-above 1048576`, so the 1 MiB messages
//! are echoed whole and the large one piece by piece). Beside them, the
//! floor of a streamed message: the same bytes through a plain TCP echo
//! (read, write back, no WebSocket), sent and read back at the same time —
//! full duplex costs about 0.75x of ping-pong by itself on loopback. Reported:
//! MB/s of echoed payload, medians, the ratio streamed / whole and streamed /
//! floor (per round, then the median).

use rfc6455::frame::OpCode;
use rfc6455::{ClientConfig, Message};
use std::io::{self, Read};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const WHOLE: usize = 1 << 20;

/// `len` bytes made up as they are read.
struct Generated {
    len: u64,
    pos: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len - self.pos).min(buf.len() as u64) as usize;
        buf[..n].fill((self.pos >> 20) as u8);
        self.pos += n as u64;
        Ok(n)
    }
}

struct Wsecho(Child, String);

impl Drop for Wsecho {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_wsecho() -> Wsecho {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    // Killed and waited for on drop, whatever happens next.
    let wsecho = Wsecho(
        Command::new(env!("CARGO_BIN_EXE_wsecho"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--quiet"])
            .args(["--stream-above", &WHOLE.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wsecho"),
        url,
    );
    for _ in 0..200 {
        if rfc6455::connect(&wsecho.1).is_ok() {
            return wsecho;
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!("wsecho did not come up");
}

fn config() -> ClientConfig {
    ClientConfig::default().read_timeout(Some(Duration::from_secs(120)))
}

/// 1 MiB messages, one in flight, until `total` bytes came back: MB/s.
fn whole(url: &str, total: u64) -> f64 {
    let (mut ws, _) = rfc6455::connect_with(url, &config()).expect("connect");
    let message = vec![7u8; WHOLE];
    let start = Instant::now();
    let mut echoed = 0u64;
    while echoed < total {
        ws.send(Message::Binary(message.clone())).expect("send");
        match ws.read().expect("read") {
            Message::Binary(back) => {
                assert_eq!(back.len(), WHOLE);
                echoed += back.len() as u64;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    echoed as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// One message of `total` bytes streamed out and its echo streamed back at
/// the same time: MB/s.
fn streamed(url: &str, total: u64) -> f64 {
    let (ws, _) = rfc6455::connect_with(url, &config()).expect("connect");
    let (mut reader, writer) = ws.split().expect("split");
    let start = Instant::now();
    let sender = thread::spawn(move || {
        writer
            .send_stream(OpCode::Binary, Generated { len: total, pos: 0 }, 256 << 10)
            .expect("send_stream")
    });
    let mut echo = reader.read_stream().expect("read_stream");
    let mut buf = vec![0u8; 256 << 10];
    let mut echoed = 0u64;
    loop {
        let n = echo.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        echoed += n as u64;
    }
    assert_eq!(sender.join().expect("sender"), total);
    assert_eq!(echoed, total);
    echoed as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// A plain TCP echo (a thread per connection: read, write back), the floor
/// of a streamed echo; returns its address.
fn start_tcp_echo() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp echo");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                // As large a buffer as the streamed path's pieces.
                let mut buf = vec![0u8; 256 << 10];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || io::Write::write_all(&mut stream, &buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// `total` bytes written to the TCP echo while its echo is read, at the
/// same time (as the streamed path does): MB/s.
fn floor(addr: std::net::SocketAddr, total: u64) -> f64 {
    let stream = std::net::TcpStream::connect(addr).expect("connect tcp echo");
    let mut reader = stream.try_clone().expect("clone");
    let start = Instant::now();
    let sender = thread::spawn(move || {
        let mut stream = stream;
        let mut source = Generated { len: total, pos: 0 };
        let mut buf = vec![0u8; 256 << 10];
        let mut sent = 0u64;
        loop {
            let n = source.read(&mut buf).expect("generate");
            if n == 0 {
                break;
            }
            io::Write::write_all(&mut stream, &buf[..n]).expect("send");
            sent += n as u64;
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
        sent
    });
    let mut buf = vec![0u8; 256 << 10];
    let mut echoed = 0u64;
    while echoed < total {
        let n = reader.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        echoed += n as u64;
    }
    assert_eq!(sender.join().expect("sender"), total);
    assert_eq!(echoed, total);
    echoed as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let total = env_or("STREAM_BYTES", 1 << 30);
    let rounds = env_or("STREAM_ROUNDS", 3).max(1);
    let server = start_wsecho();
    let tcp = start_tcp_echo();
    let (mut w, mut s, mut f) = (Vec::new(), Vec::new(), Vec::new());
    let (mut vs_whole, mut vs_floor) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Each path in turn, the order rotated every round.
        let mut results = [0.0; 3];
        for k in 0..3 {
            let path = (k + round as usize) % 3;
            results[path] = match path {
                0 => whole(&server.1, total),
                1 => streamed(&server.1, total),
                _ => floor(tcp, total),
            };
        }
        let [a, b, c] = results;
        eprintln!(
            "round {}: whole 1 MiB {a:.0} MB/s, streamed {b:.0} MB/s, TCP full-duplex floor {c:.0} MB/s",
            round + 1
        );
        w.push(a);
        s.push(b);
        f.push(c);
        vs_whole.push(b / a);
        vs_floor.push(b / c);
    }
    println!(
        "\nEcho through wsecho, {total} bytes each way per path, medians of {rounds} rounds\n\n\
         | path | MB/s |\n|---|---:|\n| whole messages, 1 MiB | {:.0} |\n\
         | one message, streamed | {:.0} |\n| floor: plain TCP echo, full duplex | {:.0} |\n\
         | streamed / whole | {:.2}x |\n| streamed / floor | {:.2}x |",
        median(w),
        median(s),
        median(f),
        median(vs_whole),
        median(vs_floor)
    );
}
