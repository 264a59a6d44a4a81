//! A sniffing TCP relay for the compression tests: it sits between a peer
//! and a server, passes every byte on unchanged, and parses what it sees.
//! On each WebSocket connection (the request asked to upgrade and the answer
//! was `101`) it records the `Sec-WebSocket-Extensions` the server answered
//! and, per direction, the frames after the handshake: how many, how many
//! data messages began with RSV1 (compressed, RFC 7692 §6), and how many
//! frames had RSV1 where it is never allowed (control and continuation
//! frames). Plain HTTP requests through the same port (a page, a script)
//! are relayed without being parsed.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// What one direction carried, over every WebSocket connection of the tap.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Frames {
    /// Every frame after the handshake.
    pub all: usize,
    /// Data messages (first frames with opcode text or binary).
    pub messages: usize,
    /// Data messages whose first frame had RSV1: compressed.
    pub compressed: usize,
    /// Control or continuation frames with RSV1 (RFC 7692 §6.1 forbids it).
    pub misplaced_rsv1: usize,
}

/// Everything the tap saw; shared with its relay threads.
#[derive(Debug, Default)]
pub struct Seen {
    to_server: Mutex<Frames>,
    to_client: Mutex<Frames>,
    /// The `Sec-WebSocket-Extensions` value of each `101` answer ("" when
    /// the answer had none), in the order the answers passed.
    extensions: Mutex<Vec<String>>,
}

impl Seen {
    /// Frames sent to the server so far.
    pub fn to_server(&self) -> Frames {
        *self.to_server.lock().unwrap()
    }

    /// Frames sent to the client so far.
    pub fn to_client(&self) -> Frames {
        *self.to_client.lock().unwrap()
    }

    /// The extensions of every WebSocket handshake seen so far.
    pub fn extensions(&self) -> Vec<String> {
        self.extensions.lock().unwrap().clone()
    }

    /// Both directions carried compressed messages, and RSV1 never appeared
    /// where it must not.
    pub fn assert_compressed_both_ways(&self) {
        let (up, down) = (self.to_server(), self.to_client());
        eprintln!(
            "tap: to server {}/{} messages compressed ({} frames), \
             to client {}/{} ({} frames); extensions {:?}",
            up.compressed,
            up.messages,
            up.all,
            down.compressed,
            down.messages,
            down.all,
            self.extensions()
        );
        assert!(
            up.compressed > 0,
            "no compressed message reached the server"
        );
        assert!(
            down.compressed > 0,
            "no compressed message reached the client"
        );
        assert_eq!(
            up.misplaced_rsv1, 0,
            "RSV1 on a control or continuation frame"
        );
        assert_eq!(
            down.misplaced_rsv1, 0,
            "RSV1 on a control or continuation frame"
        );
    }

    /// Every WebSocket handshake seen (at least one) agreed permessage-deflate.
    pub fn assert_deflate_negotiated(&self) {
        let extensions = self.extensions();
        assert!(
            !extensions.is_empty(),
            "no WebSocket handshake went through the tap"
        );
        for answer in &extensions {
            assert!(
                answer.starts_with("permessage-deflate"),
                "a 101 answer without permessage-deflate: {answer:?}"
            );
        }
    }
}

/// Listens on an ephemeral loopback port and relays every connection to
/// `upstream`, parsing both directions. The listener lives as long as the
/// test process.
pub fn tap(upstream: SocketAddr) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    thread::spawn(move || {
        for down in listener.incoming().flatten() {
            let Ok(up) = TcpStream::connect(upstream) else {
                continue;
            };
            for (from, to, to_server) in [
                (down.try_clone().unwrap(), up.try_clone().unwrap(), true),
                (up, down, false),
            ] {
                let seen = Arc::clone(&shared);
                thread::spawn(move || pump(from, to, &seen, to_server));
            }
        }
    });
    (addr, seen)
}

/// Where a direction's parser is.
enum State {
    /// Reading the HTTP head.
    Head,
    /// Parsing frames.
    Frames,
    /// Not a WebSocket connection: bytes are only relayed.
    Off,
}

struct Scanner<'a> {
    seen: &'a Seen,
    to_server: bool,
    state: State,
    buf: Vec<u8>,
}

impl Scanner<'_> {
    fn feed(&mut self, data: &[u8]) {
        if matches!(self.state, State::Off) {
            return;
        }
        self.buf.extend_from_slice(data);
        if matches!(self.state, State::Head) {
            let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            self.buf.drain(..end + 4);
            self.state = if self.head_opens_websocket(&head) {
                State::Frames
            } else {
                State::Off
            };
        }
        if matches!(self.state, State::Frames) {
            self.frames();
        }
    }

    /// Whether `head` (a request going up, a response coming down) opens a
    /// WebSocket; records the answer's extensions.
    fn head_opens_websocket(&self, head: &str) -> bool {
        let header = |name: &str| {
            head.lines().skip(1).find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        if self.to_server {
            return header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        }
        if !head.starts_with("HTTP/1.1 101") {
            return false;
        }
        let extensions = header("sec-websocket-extensions").unwrap_or_default();
        self.seen.extensions.lock().unwrap().push(extensions);
        true
    }

    fn frames(&mut self) {
        let counts = match self.to_server {
            true => &self.seen.to_server,
            false => &self.seen.to_client,
        };
        loop {
            let b = &self.buf;
            if b.len() < 2 {
                return;
            }
            let (len, mut at) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()), 10),
                126 | 127 => return,
                n => (u64::from(n), 2),
            };
            if b[1] & 0x80 != 0 {
                at += 4;
            }
            let total = at + len as usize;
            if b.len() < total {
                return;
            }
            let (rsv1, opcode) = (b[0] & 0x40 != 0, b[0] & 0x0f);
            let mut c = counts.lock().unwrap();
            c.all += 1;
            match opcode {
                0x1 | 0x2 => {
                    c.messages += 1;
                    c.compressed += usize::from(rsv1);
                }
                _ => c.misplaced_rsv1 += usize::from(rsv1),
            }
            drop(c);
            self.buf.drain(..total);
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, seen: &Seen, to_server: bool) {
    let mut scanner = Scanner {
        seen,
        to_server,
        state: State::Head,
        buf: Vec::new(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                scanner.feed(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
