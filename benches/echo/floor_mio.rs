//! The poll architecture's floor: the least an echo over mio with the
//! poll engine's worker count can do. One accept thread hands sockets to
//! the workers round-robin (a list and a waker each); a worker reads every
//! readable socket until it would block, echoes every whole frame of what it
//! read in one write, and asks the kernel for writable events only while
//! output is pending (as uWebSockets does). A fixed 101, no limits, no
//! UTF-8, no timers: what is left of the poll engine's cost above this is
//! what its protocol work and bookkeeping cost.

use super::HANDSHAKE_ACCEPT;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use rfc6455::frame::apply_mask;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;

const WAKE: Token = Token(usize::MAX);

struct Inbox {
    sockets: Mutex<Vec<std::net::TcpStream>>,
    waker: Waker,
}

/// Starts the floor with `workers` worker threads; returns its address.
pub fn start(workers: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind mio floor");
    let addr = listener.local_addr().unwrap();
    let mut inboxes = Vec::new();
    for _ in 0..workers.max(1) {
        let poll = Poll::new().expect("poll");
        let inbox = Arc::new(Inbox {
            sockets: Mutex::new(Vec::new()),
            waker: Waker::new(poll.registry(), WAKE).expect("waker"),
        });
        inboxes.push(Arc::clone(&inbox));
        thread::spawn(move || worker(poll, &inbox));
    }
    thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            let _ = stream.set_nonblocking(true);
            let inbox = &inboxes[n % inboxes.len()];
            let mut sockets = inbox.sockets.lock().unwrap();
            let wake = sockets.is_empty();
            sockets.push(stream);
            drop(sockets);
            if wake {
                let _ = inbox.waker.wake();
            }
        }
    });
    addr
}

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    have: usize,
    out: Vec<u8>,
    sent: usize,
    upgraded: bool,
    /// Writable interest is registered (only while output is pending).
    writable: bool,
    done: bool,
}

fn worker(mut poll: Poll, inbox: &Inbox) {
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    loop {
        if poll.poll(&mut events, None).is_err() {
            continue;
        }
        for event in events.iter() {
            if event.token() == WAKE {
                let new = std::mem::take(&mut *inbox.sockets.lock().unwrap());
                for stream in new {
                    let at = free.pop().unwrap_or(conns.len());
                    let mut stream = TcpStream::from_std(stream);
                    if poll
                        .registry()
                        .register(&mut stream, Token(at), Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    let conn = Conn {
                        stream,
                        input: vec![0; 64 << 10],
                        have: 0,
                        out: Vec::with_capacity(64 << 10),
                        sent: 0,
                        upgraded: false,
                        writable: false,
                        done: false,
                    };
                    if at == conns.len() {
                        conns.push(Some(conn));
                    } else {
                        conns[at] = Some(conn);
                    }
                    // Its request may be waiting already.
                    if let Some(conn) = conns[at].as_mut() {
                        conn.ready(&poll, Token(at));
                    }
                }
                continue;
            }
            let at = event.token().0;
            let Some(conn) = conns.get_mut(at).and_then(Option::as_mut) else {
                continue;
            };
            conn.ready(&poll, event.token());
            if conn.done {
                if let Some(mut conn) = conns[at].take() {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                free.push(at);
            }
        }
    }
}

impl Conn {
    /// Reads until the socket would block, echoes, writes.
    fn ready(&mut self, poll: &Poll, token: Token) {
        if let Err(e) = self.read_and_echo() {
            if e.kind() != io::ErrorKind::WouldBlock {
                self.done = true;
                return;
            }
        }
        if let Err(e) = self.write_out() {
            if e.kind() != io::ErrorKind::WouldBlock {
                self.done = true;
                return;
            }
        }
        let pending = self.sent < self.out.len();
        if pending != self.writable {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if poll
                .registry()
                .reregister(&mut self.stream, token, interest)
                .is_err()
            {
                self.done = true;
            }
            self.writable = pending;
        }
    }

    fn read_and_echo(&mut self) -> io::Result<()> {
        loop {
            if self.have == self.input.len() {
                let grown = self.input.len() * 2;
                self.input.resize(grown, 0);
            }
            let n = self.stream.read(&mut self.input[self.have..])?;
            if n == 0 {
                self.done = true;
                return Ok(());
            }
            self.have += n;
            if !self.upgraded {
                let Some(end) = self.input[..self.have]
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                else {
                    continue;
                };
                self.out.extend_from_slice(
                    format!(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                         Connection: Upgrade\r\nSec-WebSocket-Accept: {HANDSHAKE_ACCEPT}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                self.input.copy_within(end + 4..self.have, 0);
                self.have -= end + 4;
                self.upgraded = true;
            }
            self.echo_frames();
        }
    }

    /// Every whole masked frame at the front of the input, unmasked into
    /// the output.
    fn echo_frames(&mut self) {
        let mut pos = 0;
        while self.have - pos >= 6 {
            let b = &self.input[pos..self.have];
            let (len, at) = match b[1] & 0x7f {
                126 if b.len() >= 8 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 14 => (
                    u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                l => (l as usize, 2),
            };
            if b.len() < at + 4 + len {
                if self.input.len() < pos + at + 4 + len {
                    self.input.resize(pos + at + 4 + len, 0);
                }
                break;
            }
            let key = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            let first = b[0];
            self.out.push(first);
            match len {
                0..=125 => self.out.push(len as u8),
                126..=65535 => {
                    self.out.push(126);
                    self.out.extend_from_slice(&(len as u16).to_be_bytes());
                }
                _ => {
                    self.out.push(127);
                    self.out.extend_from_slice(&(len as u64).to_be_bytes());
                }
            }
            let start = self.out.len();
            self.out
                .extend_from_slice(&self.input[pos + at + 4..pos + at + 4 + len]);
            apply_mask(&mut self.out[start..], key);
            pos += at + 4 + len;
            if first & 0x0f == 0x8 {
                // A close: echoed; the server closes TCP first.
                let _ = self.write_out();
                self.done = true;
                return;
            }
        }
        self.input.copy_within(pos..self.have, 0);
        self.have -= pos;
    }

    fn write_out(&mut self) -> io::Result<()> {
        while self.sent < self.out.len() {
            let n = self.stream.write(&self.out[self.sent..])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Ok(())
    }
}
