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
//! are echoed whole and the large one piece by piece). Reported: MB/s of
//! echoed payload, medians, and the ratio streamed / whole.

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
    let (mut w, mut s, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = whole(&server.1, total);
            (a, streamed(&server.1, total))
        } else {
            let b = streamed(&server.1, total);
            (whole(&server.1, total), b)
        };
        eprintln!(
            "round {}: whole 1 MiB {a:.0} MB/s, streamed {b:.0} MB/s",
            round + 1
        );
        w.push(a);
        s.push(b);
        ratios.push(b / a);
    }
    println!(
        "\nEcho through wsecho, {total} bytes each way per path, medians of {rounds} rounds\n\n\
         | path | MB/s |\n|---|---:|\n| whole messages, 1 MiB | {:.0} |\n\
         | one message, streamed | {:.0} |\n| streamed / whole | {:.2}x |",
        median(w),
        median(s),
        median(ratios)
    );
}
