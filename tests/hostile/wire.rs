//! Raw client plumbing for the socket-level tests of hostile peers: requests
//! and masked client frames assembled by hand (not with the crate's own
//! encoder), and readers for the server's answers that check what the RFC
//! requires of it. Every socket has timeouts, so a misbehaving server fails
//! a test instead of hanging it.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Generous bound for anything that should happen "at once".
pub const SOON: Duration = Duration::from_secs(3);

pub fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(SOON)).unwrap();
    s.set_write_timeout(Some(SOON)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads a response head (and, for non-101 answers, the body up to end of
/// stream). A read error before a whole head panics.
pub fn read_reply(s: &mut TcpStream) -> HttpReply {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte so nothing past the head (the first frames) is consumed.
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => panic!(
                "end of stream before a response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(_) => buf.push(byte[0]),
            Err(e) => panic!(
                "no response head ({e}); got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
        assert!(buf.len() < 64 * 1024, "response head too long");
    }
    let head = String::from_utf8(buf).expect("ASCII head");
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    let mut body = Vec::new();
    if status != 101 {
        // The server closes after an error answer: read to the end.
        let _ = s.read_to_end(&mut body);
    }
    HttpReply { status, head, body }
}

/// Sends `request` and reads the answer.
pub fn ask(addr: SocketAddr, request: &[u8]) -> HttpReply {
    let mut s = raw(addr);
    s.write_all(request).unwrap();
    read_reply(&mut s)
}

/// A connection past a valid opening handshake.
pub fn handshake(addr: SocketAddr) -> TcpStream {
    let mut s = raw(addr);
    s.write_all(upgrade_request("").as_bytes()).unwrap();
    let reply = read_reply(&mut s);
    assert_eq!(reply.status, 101, "{}", reply.head);
    assert_eq!(
        reply.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    s
}

pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame. `first` is the whole first byte (FIN, RSV, opcode).
pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(first, payload.len() as u64);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// A masked client frame header declaring `len` bytes, in the minimal form.
pub fn header(first: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out
}

/// Masks `payload` as bytes `offset..` of a frame's payload.
pub fn masked_at(payload: &[u8], offset: usize) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ MASK[(offset + i) % 4])
        .collect()
}

pub const FIN: u8 = 0x80;
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A frame from the server (which must not mask).
#[derive(Debug)]
pub struct ServerFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

pub fn read_frame(s: &mut TcpStream) -> io::Result<ServerFrame> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    assert_eq!(h[0] & 0x70, 0, "server set RSV bits");
    assert_eq!(h[1] & 0x80, 0, "server masked a frame");
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b)?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    assert!(len <= 64 << 20, "server frame of {len} bytes");
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload)?;
    Ok(ServerFrame {
        fin: h[0] & 0x80 != 0,
        opcode: h[0] & 0x0F,
        payload,
    })
}

/// Reads frames until the server's close frame; returns its code (`None` for
/// an empty close payload). Panics on end of stream or timeout first.
pub fn read_close(s: &mut TcpStream) -> Option<u16> {
    loop {
        let f = read_frame(s).unwrap_or_else(|e| panic!("no close frame from the server: {e}"));
        if f.opcode == CLOSE {
            assert!(f.fin);
            return match f.payload.as_slice() {
                [] => None,
                [a, b, reason @ ..] => {
                    assert!(std::str::from_utf8(reason).is_ok());
                    Some(u16::from_be_bytes([*a, *b]))
                }
                [_] => panic!("one-byte close payload from the server"),
            };
        }
    }
}

/// Asserts the server closes TCP (end of stream) soon, sending nothing more.
pub fn expect_eof(s: &mut TcpStream) {
    s.set_read_timeout(Some(SOON)).unwrap();
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "bytes after the close frame: {rest:?}"),
        // A reset also ends the connection; a timeout does not.
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
    }
}
