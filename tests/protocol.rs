//! Scenario tests for the sans-I/O protocol core: bytes are fed to a
//! [`Connection`] (as a server and as a client) and the messages it yields and
//! the bytes it queues are checked against RFC 6455. No sockets.
//!
//! Frames fed to a connection are built by hand here (`frame_bytes`) and the
//! bytes a connection queues are decoded by hand (`decode_frames`), so the
//! crate's own encoder and parser are not used to check themselves.

use rfc6455::frame::{CloseCode, CloseFrame, OpCode, Role};
use rfc6455::protocol::{Connection, Message, SizeLimits, State};
use rfc6455::{Error, ProtocolError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ---------------------------------------------------------------------------
// An allocator that records, per thread, the largest single allocation, so a
// test can prove that a declared payload length is never reserved up front.

struct Tracking;

thread_local! {
    static LARGEST_ALLOC: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST_ALLOC.try_with(|m| {
        if size > m.get() {
            m.set(size);
        }
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

fn reset_largest_alloc() {
    LARGEST_ALLOC.with(|m| m.set(0));
}

fn largest_alloc() -> usize {
    LARGEST_ALLOC.with(|m| m.get())
}

// ---------------------------------------------------------------------------
// Helpers.

/// The masking key of RFC 6455 §5.7.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const FIN: u8 = 0x80;
const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

fn server() -> Connection {
    Connection::new(Role::Server, SizeLimits::default())
}

fn client() -> Connection {
    Connection::new(Role::Client, SizeLimits::default())
}

/// One frame on the wire: `b0` is the first byte (FIN, RSV, opcode), the
/// length uses the minimal form, and the payload is masked with `mask`.
fn frame_bytes(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(m | n as u8);
    } else if n <= 0xFFFF {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A frame as the peer of `receiver` sends it: masked towards a server,
/// unmasked towards a client (RFC 6455 §5.1).
fn peer_frame(receiver: Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    match receiver {
        Role::Server => frame_bytes(b0, payload, Some(KEY)),
        Role::Client => frame_bytes(b0, payload, None),
    }
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame decoded from a connection's output, payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: Vec<u8>,
}

impl WireFrame {
    fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, CLOSE);
        match self.payload.as_slice() {
            [] => None,
            [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
            [_] => panic!("one-byte close payload sent"),
        }
    }
}

/// Decodes a whole byte stream of frames; panics on a truncated frame.
fn decode_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated header");
        let b0 = bytes[0];
        let b1 = bytes[1];
        let mut at = 2;
        let len = match b1 & 0x7F {
            126 => {
                at += 2;
                u64::from(u16::from_be_bytes([bytes[2], bytes[3]]))
            }
            127 => {
                at += 8;
                u64::from_be_bytes(bytes[2..10].try_into().unwrap())
            }
            n => u64::from(n),
        };
        let mask = if b1 & 0x80 != 0 {
            let k = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            at += 4;
            Some(k)
        } else {
            None
        };
        let len = len as usize;
        let mut payload = bytes[at..at + len].to_vec();
        if let Some(k) = mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        frames.push(WireFrame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0x0F,
            mask,
            payload,
        });
        bytes = &bytes[at + len..];
    }
    frames
}

/// Checks that every frame a connection of `role` sent is masked iff it is a client.
fn assert_masking(role: Role, frames: &[WireFrame]) {
    for f in frames {
        assert_eq!(f.mask.is_some(), role == Role::Client, "masking of {f:?}");
    }
}

/// Feeds `bytes` and collects messages until the input is used up or an error.
fn feed(conn: &mut Connection, bytes: &[u8]) -> (Vec<Message>, Option<Error>) {
    let mut messages = Vec::new();
    for item in conn.feed(bytes) {
        match item {
            Ok(m) => messages.push(m),
            Err(e) => return (messages, Some(e)),
        }
    }
    (messages, None)
}

/// Feeds `bytes` expecting no error.
fn feed_ok(conn: &mut Connection, bytes: &[u8]) -> Vec<Message> {
    let (messages, err) = feed(conn, bytes);
    if let Some(e) = err {
        panic!("unexpected error {e:?} after {messages:?}");
    }
    messages
}

/// Feeds `bytes` in pieces of the given sizes (cycled), through `receive`.
fn feed_in_pieces(conn: &mut Connection, bytes: &[u8], sizes: &[usize]) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let mut piece = &rest[..n];
        rest = &rest[n..];
        loop {
            let r = conn.receive(piece).expect("no error");
            assert!(r.consumed <= piece.len());
            piece = &piece[r.consumed..];
            if let Some(m) = r.message {
                messages.push(m);
            } else {
                assert!(piece.is_empty(), "no message, yet input left over");
            }
            if piece.is_empty() {
                break;
            }
        }
    }
    messages
}

/// Feeds `input` and checks the connection failed with `expected` and queued
/// exactly one close frame carrying `code` (written literally by each test,
/// not taken from `close_code()`). Returns the messages delivered before the error.
fn assert_fails(
    conn: &mut Connection,
    input: &[u8],
    expected: ProtocolError,
    code: u16,
) -> Vec<Message> {
    let role = conn.role();
    let (messages, err) = feed(conn, input);
    match err {
        Some(Error::Protocol(e)) => assert_eq!(e, expected),
        other => panic!("expected Protocol({expected:?}), got {other:?}"),
    }
    assert_eq!(expected.close_code(), CloseCode(code));
    assert_eq!(conn.state(), State::Failed);
    let frames = decode_frames(conn.data_to_send());
    assert_masking(role, &frames);
    assert_eq!(
        frames.iter().filter(|f| f.opcode == CLOSE).count(),
        1,
        "exactly one close frame queued: {frames:?}"
    );
    let close = frames.last().unwrap();
    assert!(close.fin);
    assert_eq!(close.opcode, CLOSE);
    assert_eq!(close.close_code(), Some(code));
    assert!(close.payload.len() <= 125);
    assert!(std::str::from_utf8(&close.payload[2..]).is_ok());
    // The close frame still has to be written before TCP closes.
    assert!(!conn.should_close_transport());
    conn.take_data_to_send();
    assert!(conn.should_close_transport());
    // A failed connection receives and sends nothing more.
    assert!(matches!(
        conn.receive(b"\x81\x80\0\0\0\0"),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        conn.send(&Message::Text("x".into())),
        Err(Error::AlreadyClosed)
    ));
    assert!(conn.data_to_send().is_empty());
    messages
}

/// A deterministic xorshift generator, for reproducible "random" splits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const BOTH: [Role; 2] = [Role::Server, Role::Client];

// ---------------------------------------------------------------------------
// RFC 6455 §5.7 examples, byte for byte.

#[test]
fn rfc_5_7_single_frame_unmasked_text_received_by_client() {
    let mut c = client();
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(feed_ok(&mut c, &wire), [Message::Text("Hello".into())]);
    assert!(c.data_to_send().is_empty());
    assert_eq!(c.state(), State::Open);
}

#[test]
fn rfc_5_7_single_frame_masked_text_received_by_server() {
    let mut s = server();
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(wire.to_vec(), frame_bytes(FIN | TEXT, b"Hello", Some(KEY)));
    assert_eq!(feed_ok(&mut s, &wire), [Message::Text("Hello".into())]);
    assert!(s.data_to_send().is_empty());
}

#[test]
fn rfc_5_7_server_encodes_single_frame_unmasked_text() {
    let mut s = server();
    s.send(&Message::Text("Hello".into())).unwrap();
    assert_eq!(s.data_to_send(), [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_5_7_fragmented_unmasked_text_received_by_client() {
    let mut c = client();
    let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
    let second = [0x80, 0x02, 0x6c, 0x6f];
    assert_eq!(feed_ok(&mut c, &first), []);
    assert!(c.incoming().in_progress());
    assert_eq!(feed_ok(&mut c, &second), [Message::Text("Hello".into())]);
    assert!(!c.incoming().in_progress());
}

#[test]
fn rfc_5_7_server_encodes_fragmented_unmasked_text() {
    let mut s = server();
    s.send_frame(OpCode::Text, b"Hel", false).unwrap();
    s.send_frame(OpCode::Continuation, b"lo", true).unwrap();
    assert_eq!(
        s.data_to_send(),
        [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
    );
}

#[test]
fn rfc_5_7_unmasked_ping_received_by_client_is_answered_with_masked_pong() {
    let mut c = client();
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(feed_ok(&mut c, &ping), [Message::Ping(b"Hello".to_vec())]);
    // The reply has the shape of §5.7's "masked Ping response" with a fresh key.
    let out = c.data_to_send().to_vec();
    assert_eq!(out.len(), 11);
    assert_eq!(out[..2], [0x8a, 0x85]);
    let key = [out[2], out[3], out[4], out[5]];
    assert_eq!(out, frame_bytes(FIN | PONG, b"Hello", Some(key)));
}

#[test]
fn rfc_5_7_masked_pong_received_by_server_is_delivered_and_not_answered() {
    let mut s = server();
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(feed_ok(&mut s, &pong), [Message::Pong(b"Hello".to_vec())]);
    assert!(s.data_to_send().is_empty());
}

#[test]
fn rfc_5_7_server_encodes_unmasked_ping() {
    let mut s = server();
    s.send(&Message::Ping(b"Hello".to_vec())).unwrap();
    assert_eq!(s.data_to_send(), [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_5_7_masked_ping_received_by_server_is_answered_with_unmasked_pong() {
    let mut s = server();
    let ping = frame_bytes(FIN | PING, b"Hello", Some(KEY));
    assert_eq!(feed_ok(&mut s, &ping), [Message::Ping(b"Hello".to_vec())]);
    assert_eq!(s.data_to_send(), [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_5_7_256_byte_binary_uses_16_bit_length() {
    let payload: Vec<u8> = (0..256u32).map(|i| (i * 7) as u8).collect();
    let mut wire = vec![0x82, 0x7E, 0x01, 0x00];
    wire.extend_from_slice(&payload);

    let mut c = client();
    assert_eq!(feed_ok(&mut c, &wire), [Message::Binary(payload.clone())]);

    let mut s = server();
    s.send(&Message::Binary(payload.clone())).unwrap();
    assert_eq!(s.data_to_send(), wire.as_slice());

    // And masked, towards a server.
    let mut s = server();
    let masked = frame_bytes(FIN | BINARY, &payload, Some(KEY));
    assert_eq!(
        masked[..8],
        [0x82, 0xFE, 0x01, 0x00, 0x37, 0xfa, 0x21, 0x3d]
    );
    assert_eq!(feed_ok(&mut s, &masked), [Message::Binary(payload)]);
}

#[test]
fn rfc_5_7_64_kib_binary_uses_64_bit_length() {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i ^ (i >> 8)) as u8).collect();
    let mut wire = vec![0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    wire.extend_from_slice(&payload);

    let mut c = client();
    assert_eq!(feed_ok(&mut c, &wire), [Message::Binary(payload.clone())]);

    let mut s = server();
    s.send(&Message::Binary(payload.clone())).unwrap();
    assert_eq!(s.data_to_send(), wire.as_slice());

    let mut s = server();
    let masked = frame_bytes(FIN | BINARY, &payload, Some(KEY));
    assert_eq!(masked[..2], [0x82, 0xFF]);
    assert_eq!(feed_ok(&mut s, &masked), [Message::Binary(payload)]);
}

#[test]
fn server_encodes_lengths_in_the_minimal_form_at_each_boundary() {
    for (len, header) in [
        (0usize, vec![0x82, 0x00]),
        (125, vec![0x82, 125]),
        (126, vec![0x82, 126, 0x00, 126]),
        (65535, vec![0x82, 126, 0xFF, 0xFF]),
        (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let mut s = server();
        s.send(&Message::Binary(vec![0xAB; len])).unwrap();
        let out = s.data_to_send();
        assert_eq!(out.len(), header.len() + len, "len {len}");
        assert_eq!(out[..header.len()], header[..], "len {len}");
        // Round trip through a client.
        let mut c = client();
        assert_eq!(feed_ok(&mut c, out), [Message::Binary(vec![0xAB; len])]);
    }
}

#[test]
fn non_minimal_length_encoding_is_accepted() {
    // A 5-byte payload declared with the 16-bit and the 64-bit forms.
    let mut c = client();
    let mut wire = vec![0x81, 126, 0, 5];
    wire.extend_from_slice(b"Hello");
    wire.extend_from_slice(&[0x81, 127, 0, 0, 0, 0, 0, 0, 0, 5]);
    wire.extend_from_slice(b"World");
    assert_eq!(
        feed_ok(&mut c, &wire),
        [Message::Text("Hello".into()), Message::Text("World".into())]
    );
}

// ---------------------------------------------------------------------------
// Automatic replies and the close handshake (RFC 6455 §5.5, §7).

#[test]
fn ping_is_answered_with_pong_carrying_the_same_payload() {
    for role in BOTH {
        for payload in [&b""[..], b"x", &[0xFF; 125][..]] {
            let mut conn = Connection::new(role, SizeLimits::default());
            let ping = peer_frame(role, FIN | PING, payload);
            assert_eq!(feed_ok(&mut conn, &ping), [Message::Ping(payload.to_vec())]);
            let frames = decode_frames(conn.data_to_send());
            assert_masking(role, &frames);
            assert_eq!(frames.len(), 1);
            assert_eq!((frames[0].fin, frames[0].opcode), (true, PONG));
            assert_eq!(frames[0].payload, payload);
            assert_eq!(conn.state(), State::Open);
        }
    }
}

#[test]
fn several_pings_are_each_answered_in_order() {
    let mut s = server();
    let mut wire = Vec::new();
    for i in 0..5u8 {
        wire.extend(peer_frame(Role::Server, FIN | PING, &[i; 3]));
    }
    assert_eq!(feed_ok(&mut s, &wire).len(), 5);
    let frames = decode_frames(s.data_to_send());
    let payloads: Vec<Vec<u8>> = frames.iter().map(|f| f.payload.clone()).collect();
    assert_eq!(payloads, (0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
}

#[test]
fn close_with_code_is_answered_with_close_echoing_the_code() {
    let mut s = server();
    let close = peer_frame(
        Role::Server,
        FIN | CLOSE,
        &close_payload(1001, b"going away"),
    );
    assert_eq!(
        feed_ok(&mut s, &close),
        [Message::Close(Some(CloseFrame {
            code: CloseCode::GOING_AWAY,
            reason: "going away".into()
        }))]
    );
    assert_eq!(s.data_to_send(), [0x88, 0x02, 0x03, 0xE9]);
    assert_eq!(s.state(), State::Closed);
    assert!(
        !s.should_close_transport(),
        "the reply must be written first"
    );
    let n = s.data_to_send().len();
    s.advance(n);
    assert!(s.should_close_transport());
}

#[test]
fn close_with_application_code_is_echoed() {
    for code in [1000u16, 1003, 1007, 1011, 1014, 3000, 4999] {
        let mut s = server();
        feed_ok(
            &mut s,
            &peer_frame(Role::Server, FIN | CLOSE, &code.to_be_bytes()),
        );
        let frames = decode_frames(s.data_to_send());
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].close_code(), Some(code));
        assert_eq!(frames[0].payload.len(), 2);
    }
}

#[test]
fn close_without_payload_is_answered_with_empty_close() {
    let mut s = server();
    let close = peer_frame(Role::Server, FIN | CLOSE, b"");
    assert_eq!(feed_ok(&mut s, &close), [Message::Close(None)]);
    assert_eq!(s.data_to_send(), [0x88, 0x00]);
    assert_eq!(s.state(), State::Closed);
    s.take_data_to_send();
    assert!(s.should_close_transport());
}

#[test]
fn client_answers_close_with_masked_close() {
    let mut c = client();
    let close = peer_frame(Role::Client, FIN | CLOSE, &close_payload(1000, b"bye"));
    feed_ok(&mut c, &close);
    let frames = decode_frames(c.data_to_send());
    assert_masking(Role::Client, &frames);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1000));
    assert_eq!(c.state(), State::Closed);
    c.take_data_to_send();
    assert!(c.should_close_transport());
}

#[test]
fn sending_after_close_both_ways_is_already_closed() {
    let mut s = server();
    feed_ok(
        &mut s,
        &peer_frame(Role::Server, FIN | CLOSE, &close_payload(1000, b"")),
    );
    s.take_data_to_send();
    assert_eq!(s.state(), State::Closed);
    assert!(matches!(
        s.send(&Message::Text("x".into())),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        s.send(&Message::Binary(vec![1])),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        s.send(&Message::Ping(vec![])),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        s.send(&Message::Pong(vec![])),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        s.close(CloseCode::NORMAL, ""),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        s.send_frame(OpCode::Binary, b"x", false),
        Err(Error::AlreadyClosed)
    ));
    assert!(s.data_to_send().is_empty());
}

#[test]
fn sending_after_own_close_is_already_closed() {
    let mut c = client();
    c.close(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(c.state(), State::CloseSent);
    let queued = c.data_to_send().len();
    assert!(matches!(
        c.send(&Message::Text("late".into())),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        c.close(CloseCode::NORMAL, ""),
        Err(Error::AlreadyClosed)
    ));
    assert_eq!(
        c.data_to_send().len(),
        queued,
        "nothing queued after the close frame"
    );
    assert!(!c.should_close_transport());
}

#[test]
fn client_initiated_close_then_server_reply_is_closed() {
    let mut c = client();
    let mut s = server();
    c.close(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(c.state(), State::CloseSent);
    let to_server = c.take_data_to_send();
    let frames = decode_frames(&to_server);
    assert_masking(Role::Client, &frames);
    assert_eq!(frames[0].payload, close_payload(1000, b"done"));

    assert_eq!(
        feed_ok(&mut s, &to_server),
        [Message::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: "done".into()
        }))]
    );
    assert_eq!(s.state(), State::Closed);
    let to_client = s.take_data_to_send();
    assert_eq!(to_client, [0x88, 0x02, 0x03, 0xE8]);
    assert!(s.should_close_transport());

    assert_eq!(
        feed_ok(&mut c, &to_client),
        [Message::Close(Some(CloseFrame::new(CloseCode::NORMAL)))]
    );
    assert_eq!(c.state(), State::Closed);
    assert!(c.data_to_send().is_empty(), "no second close frame");
    assert!(c.should_close_transport());
}

#[test]
fn messages_still_arrive_while_waiting_for_the_close_reply() {
    let mut s = server();
    s.close(CloseCode::GOING_AWAY, "").unwrap();
    s.take_data_to_send();
    let mut wire = peer_frame(Role::Server, FIN | TEXT, b"in flight");
    wire.extend(peer_frame(Role::Server, FIN | PING, b"p"));
    wire.extend(peer_frame(
        Role::Server,
        FIN | CLOSE,
        &close_payload(1001, b""),
    ));
    assert_eq!(
        feed_ok(&mut s, &wire),
        [
            Message::Text("in flight".into()),
            Message::Ping(b"p".to_vec()),
            Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY))),
        ]
    );
    assert!(
        s.data_to_send().is_empty(),
        "no pong or close after our close frame"
    );
    assert_eq!(s.state(), State::Closed);
    assert!(s.should_close_transport());
}

#[test]
fn data_after_a_close_frame_is_ignored() {
    for role in BOTH {
        let mut conn = Connection::new(role, SizeLimits::default());
        let mut wire = peer_frame(role, FIN | CLOSE, &close_payload(1000, b""));
        wire.extend(peer_frame(role, FIN | TEXT, b"after close"));
        wire.extend(peer_frame(role, FIN | PING, b"ping"));
        wire.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0x00, 0x13]); // garbage, reserved opcode
        let messages = feed_ok(&mut conn, &wire);
        assert_eq!(
            messages,
            [Message::Close(Some(CloseFrame::new(CloseCode::NORMAL)))]
        );
        let frames = decode_frames(conn.data_to_send());
        assert_eq!(frames.len(), 1, "only the close reply: {frames:?}");
        assert_eq!(frames[0].opcode, CLOSE);
        assert_eq!(conn.state(), State::Closed);
        // Later calls too.
        assert_eq!(feed_ok(&mut conn, &[0x83, 0x00]), []);
        assert_eq!(conn.state(), State::Closed);
    }
}

// ---------------------------------------------------------------------------
// Protocol errors: each fails the connection with one close code.

#[test]
fn reserved_opcode_fails_with_1002() {
    for role in BOTH {
        for op in (0x3u8..=0x7).chain(0xB..=0xF) {
            let mut conn = Connection::new(role, SizeLimits::default());
            let wire = peer_frame(role, FIN | op, b"xy");
            assert_fails(&mut conn, &wire, ProtocolError::ReservedOpcode(op), 1002);
        }
    }
}

#[test]
fn reserved_opcode_fails_on_the_first_byte() {
    let mut s = server();
    assert_fails(&mut s, &[0x83], ProtocolError::ReservedOpcode(3), 1002);
    // Also when a carried partial header completes the first byte's frame.
    let mut s = server();
    feed_ok(&mut s, &peer_frame(Role::Server, FIN | TEXT, b"ok"));
    assert_fails(&mut s, &[0x0B], ProtocolError::ReservedOpcode(0xB), 1002);
}

#[test]
fn rsv_bits_fail_with_1002() {
    for role in BOTH {
        for rsv in [0x40u8, 0x20, 0x10, 0x70] {
            for op in [TEXT, BINARY, PING, CLOSE] {
                let mut conn = Connection::new(role, SizeLimits::default());
                let wire = peer_frame(role, FIN | rsv | op, b"ok");
                let delivered =
                    assert_fails(&mut conn, &wire, ProtocolError::ReservedBitsSet, 1002);
                assert!(delivered.is_empty());
            }
        }
    }
}

#[test]
fn rsv_bits_on_continuation_fail_with_1002() {
    let mut s = server();
    feed_ok(&mut s, &peer_frame(Role::Server, TEXT, b"a"));
    let wire = peer_frame(Role::Server, FIN | 0x40 | CONT, b"b");
    assert_fails(&mut s, &wire, ProtocolError::ReservedBitsSet, 1002);
}

#[test]
fn unmasked_frame_to_server_fails_with_1002() {
    for op in [TEXT, BINARY, PING, PONG, CLOSE] {
        let mut s = server();
        let wire = frame_bytes(FIN | op, b"", None);
        assert_fails(&mut s, &wire, ProtocolError::UnmaskedFrameFromClient, 1002);
    }
    // Detected from the two header bytes alone, before any payload.
    let mut s = server();
    assert_fails(
        &mut s,
        &[0x81, 0x05],
        ProtocolError::UnmaskedFrameFromClient,
        1002,
    );
}

#[test]
fn masked_frame_to_client_fails_with_1002() {
    for op in [TEXT, BINARY, PING, PONG, CLOSE] {
        let mut c = client();
        let wire = frame_bytes(FIN | op, b"", Some(KEY));
        assert_fails(&mut c, &wire, ProtocolError::MaskedFrameFromServer, 1002);
    }
    let mut c = client();
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_fails(&mut c, &wire, ProtocolError::MaskedFrameFromServer, 1002);
}

#[test]
fn control_frame_over_125_bytes_fails_with_1002() {
    for role in BOTH {
        for op in [PING, PONG, CLOSE] {
            let mut conn = Connection::new(role, SizeLimits::default());
            let mut payload = vec![b'a'; 126];
            payload[..2].copy_from_slice(&1000u16.to_be_bytes());
            let wire = peer_frame(role, FIN | op, &payload);
            assert_fails(&mut conn, &wire, ProtocolError::ControlFrameTooBig, 1002);
        }
        // From the header alone.
        let mut conn = Connection::new(role, SizeLimits::default());
        let header =
            &peer_frame(role, FIN | PING, &[0; 126])[..if role == Role::Server { 8 } else { 4 }];
        assert_fails(&mut conn, header, ProtocolError::ControlFrameTooBig, 1002);
    }
}

#[test]
fn control_frame_of_125_bytes_is_accepted() {
    let mut s = server();
    let wire = peer_frame(Role::Server, FIN | PING, &[7; 125]);
    assert_eq!(feed_ok(&mut s, &wire), [Message::Ping(vec![7; 125])]);
}

#[test]
fn fragmented_control_frame_fails_with_1002() {
    for role in BOTH {
        for op in [PING, PONG, CLOSE] {
            let mut conn = Connection::new(role, SizeLimits::default());
            let wire = peer_frame(role, op, b""); // FIN clear
            assert_fails(
                &mut conn,
                &wire,
                ProtocolError::FragmentedControlFrame,
                1002,
            );
        }
    }
}

#[test]
fn continuation_without_start_fails_with_1002() {
    for role in BOTH {
        for fin in [0, FIN] {
            let mut conn = Connection::new(role, SizeLimits::default());
            let wire = peer_frame(role, fin | CONT, b"orphan");
            assert_fails(
                &mut conn,
                &wire,
                ProtocolError::UnexpectedContinuation,
                1002,
            );
        }
        // Also right after a complete fragmented message.
        let mut conn = Connection::new(role, SizeLimits::default());
        let mut wire = peer_frame(role, TEXT, b"a");
        wire.extend(peer_frame(role, FIN | CONT, b"b"));
        wire.extend(peer_frame(role, FIN | CONT, b"c"));
        let delivered = assert_fails(
            &mut conn,
            &wire,
            ProtocolError::UnexpectedContinuation,
            1002,
        );
        assert_eq!(delivered, [Message::Text("ab".into())]);
    }
}

#[test]
fn new_data_frame_inside_fragmented_message_fails_with_1002() {
    for role in BOTH {
        for (first, second) in [
            (TEXT, TEXT),
            (TEXT, BINARY),
            (BINARY, TEXT),
            (BINARY, BINARY),
        ] {
            for fin in [0, FIN] {
                let mut conn = Connection::new(role, SizeLimits::default());
                let mut wire = peer_frame(role, first, b"a");
                wire.extend(peer_frame(role, fin | second, b"b"));
                let delivered =
                    assert_fails(&mut conn, &wire, ProtocolError::ExpectedContinuation, 1002);
                assert!(delivered.is_empty());
            }
        }
    }
}

#[test]
fn close_payload_of_one_byte_fails_with_1002() {
    for role in BOTH {
        let mut conn = Connection::new(role, SizeLimits::default());
        let wire = peer_frame(role, FIN | CLOSE, &[0x03]);
        assert_fails(&mut conn, &wire, ProtocolError::ClosePayloadOfOneByte, 1002);
    }
}

#[test]
fn invalid_close_codes_fail_with_1002() {
    for role in BOTH {
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let mut conn = Connection::new(role, SizeLimits::default());
            let wire = peer_frame(role, FIN | CLOSE, &close_payload(code, b"reason"));
            assert_fails(
                &mut conn,
                &wire,
                ProtocolError::InvalidCloseCode(code),
                1002,
            );
        }
    }
}

#[test]
fn invalid_utf8_in_close_reason_fails_with_1007() {
    for role in BOTH {
        for reason in [&b"\xff"[..], b"ok\xce", b"\xed\xa0\x80", b"\xc0\xaf"] {
            let mut conn = Connection::new(role, SizeLimits::default());
            let wire = peer_frame(role, FIN | CLOSE, &close_payload(1000, reason));
            assert_fails(
                &mut conn,
                &wire,
                ProtocolError::InvalidUtf8InCloseReason,
                1007,
            );
        }
    }
}

#[test]
fn invalid_utf8_in_single_text_frame_fails_with_1007() {
    let cases: &[&[u8]] = &[
        b"\xff",
        b"\xc0\xaf",         // overlong
        b"\xed\xa0\x80",     // surrogate
        b"\xf4\x90\x80\x80", // above U+10FFFF
        b"Hello-\x80-world", // stray continuation byte
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    ];
    for role in BOTH {
        for payload in cases {
            let mut conn = Connection::new(role, SizeLimits::default());
            let wire = peer_frame(role, FIN | TEXT, payload);
            assert_fails(&mut conn, &wire, ProtocolError::InvalidUtf8, 1007);
        }
    }
}

#[test]
fn invalid_utf8_in_binary_message_is_fine() {
    let mut s = server();
    let wire = peer_frame(Role::Server, FIN | BINARY, b"\xff\xc0\xaf");
    assert_eq!(
        feed_ok(&mut s, &wire),
        [Message::Binary(b"\xff\xc0\xaf".to_vec())]
    );
}

#[test]
fn invalid_utf8_in_first_fragment_fails_before_the_final_fragment() {
    // Autobahn 6.4.1: the first fragment holds a code point above U+10FFFF;
    // the connection must fail on it, not after the rest of the message.
    for role in BOTH {
        let mut conn = Connection::new(role, SizeLimits::default());
        let first = peer_frame(
            role,
            TEXT,
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64",
        );
        assert_fails(&mut conn, &first, ProtocolError::InvalidUtf8, 1007);
    }
}

#[test]
fn invalid_utf8_fails_before_the_rest_of_a_frame_arrives() {
    // Autobahn 6.4.3/6.4.4: one text frame whose payload arrives in pieces;
    // the bad bytes are in the first piece.
    for role in BOTH {
        let mut payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80".to_vec();
        payload.extend_from_slice(&[b'a'; 200]);
        let wire = peer_frame(role, FIN | TEXT, &payload);
        let header = if role == Role::Server { 8 } else { 4 };
        let mut conn = Connection::new(role, SizeLimits::default());
        // Header and the first 12 payload bytes (ending in 0xF4): still a valid prefix.
        assert_eq!(feed_ok(&mut conn, &wire[..header + 12]), []);
        // The 13th byte (0x90 after 0xF4, above U+10FFFF) makes it invalid.
        assert_fails(
            &mut conn,
            &wire[header + 12..header + 13],
            ProtocolError::InvalidUtf8,
            1007,
        );
    }
}

#[test]
fn invalid_utf8_split_across_fragments_fails_with_1007() {
    // A valid prefix ends the first fragment; the next one breaks it.
    for (a, b) in [
        (&b"\xce"[..], &b"A"[..]),  // 2-byte sequence cut, then ASCII
        (b"\xed", b"\xa0\x80"),     // surrogate split after its lead
        (b"\xf4", b"\x90\x80\x80"), // above U+10FFFF split after its lead
        (b"ok\xe2\x82", b"\x41"),   // 3-byte sequence cut after two bytes
    ] {
        for role in BOTH {
            let mut conn = Connection::new(role, SizeLimits::default());
            assert_eq!(feed_ok(&mut conn, &peer_frame(role, TEXT, a)), []);
            // Not the final fragment: the error must not wait for FIN.
            assert_fails(
                &mut conn,
                &peer_frame(role, CONT, b),
                ProtocolError::InvalidUtf8,
                1007,
            );
        }
    }
}

#[test]
fn utf8_code_point_split_across_fragments_is_accepted() {
    let text = "κόσμε 😀 €";
    let bytes = text.as_bytes();
    for split in 0..=bytes.len() {
        let mut s = server();
        let mut wire = peer_frame(Role::Server, TEXT, &bytes[..split]);
        wire.extend(peer_frame(Role::Server, FIN | CONT, &bytes[split..]));
        assert_eq!(
            feed_ok(&mut s, &wire),
            [Message::Text(text.into())],
            "split {split}"
        );
    }
}

#[test]
fn truncated_utf8_at_message_end_fails_with_1007() {
    for role in BOTH {
        // Single frame.
        let mut conn = Connection::new(role, SizeLimits::default());
        let wire = peer_frame(role, FIN | TEXT, b"abc\xe2\x82");
        assert_fails(&mut conn, &wire, ProtocolError::InvalidUtf8, 1007);
        // Single frame arriving in two pieces (incremental validation path).
        let mut conn = Connection::new(role, SizeLimits::default());
        let wire = peer_frame(role, FIN | TEXT, b"abc\xf0\x9f\x98");
        assert_eq!(feed_ok(&mut conn, &wire[..wire.len() - 1]), []);
        assert_fails(
            &mut conn,
            &wire[wire.len() - 1..],
            ProtocolError::InvalidUtf8,
            1007,
        );
        // Fragmented: the final fragment leaves a code point unfinished.
        let mut conn = Connection::new(role, SizeLimits::default());
        assert_eq!(feed_ok(&mut conn, &peer_frame(role, TEXT, b"abc")), []);
        assert_fails(
            &mut conn,
            &peer_frame(role, FIN | CONT, b"\xe2\x82"),
            ProtocolError::InvalidUtf8,
            1007,
        );
        // Fragmented: empty final fragment after a cut code point.
        let mut conn = Connection::new(role, SizeLimits::default());
        assert_eq!(feed_ok(&mut conn, &peer_frame(role, TEXT, b"\xce")), []);
        assert_fails(
            &mut conn,
            &peer_frame(role, FIN | CONT, b""),
            ProtocolError::InvalidUtf8,
            1007,
        );
    }
}

/// The header of a masked binary frame declaring 1 TiB (2^40 bytes).
fn one_tib_header() -> Vec<u8> {
    let mut h = vec![0x82, 0xFF];
    h.extend_from_slice(&(1u64 << 40).to_be_bytes());
    h.extend_from_slice(&KEY);
    h
}

#[test]
fn frame_over_max_frame_size_fails_with_1009_from_the_header_alone() {
    let header = one_tib_header();
    assert_eq!(header.len(), 14);
    // Whole header at once: the error comes with no payload byte sent.
    let mut s = server();
    reset_largest_alloc();
    assert_fails(&mut s, &header, ProtocolError::FrameTooBig, 1009);
    assert!(
        largest_alloc() < 4096,
        "allocated {} bytes",
        largest_alloc()
    );

    // Byte by byte: nothing until the last header byte, then the error.
    let mut s = server();
    for (i, b) in header.iter().enumerate().take(13) {
        let r = s
            .receive(std::slice::from_ref(b))
            .unwrap_or_else(|e| panic!("byte {i}: {e:?}"));
        assert_eq!((r.consumed, r.message), (1, None));
    }
    assert_fails(&mut s, &header[13..], ProtocolError::FrameTooBig, 1009);
}

#[test]
fn frame_over_configured_max_frame_size_fails_with_1009() {
    for role in BOTH {
        let config = SizeLimits::default().max_frame_size(1000);
        let mut conn = Connection::new(role, config.clone());
        let ok = peer_frame(role, FIN | BINARY, &[1; 1000]);
        assert_eq!(feed_ok(&mut conn, &ok), [Message::Binary(vec![1; 1000])]);
        let too_big = peer_frame(role, FIN | BINARY, &[1; 1001]);
        let header_len = too_big.len() - 1001;
        assert_fails(
            &mut conn,
            &too_big[..header_len],
            ProtocolError::FrameTooBig,
            1009,
        );
        // The limit applies to a continuation frame too.
        let mut conn = Connection::new(role, config);
        assert_eq!(feed_ok(&mut conn, &peer_frame(role, TEXT, b"a")), []);
        let cont = peer_frame(role, FIN | CONT, &[b'a'; 1001]);
        assert_fails(&mut conn, &cont, ProtocolError::FrameTooBig, 1009);
    }
}

#[test]
fn declared_length_is_never_reserved_before_the_bytes_arrive() {
    // With no limit in the way, a frame declaring 1 TiB followed by a few
    // payload bytes must cost memory for those bytes only.
    let config = SizeLimits::default()
        .max_frame_size(usize::MAX)
        .max_message_size(usize::MAX);
    let mut s = Connection::new(Role::Server, config);
    let mut wire = one_tib_header();
    wire.extend_from_slice(&[0x55; 1000]);
    reset_largest_alloc();
    assert_eq!(feed_ok(&mut s, &wire), []);
    assert_eq!(feed_ok(&mut s, &[0x55; 1000]), []);
    let largest = largest_alloc();
    assert!(largest < 64 * 1024, "largest allocation {largest} bytes");
    assert_eq!(s.incoming().buffered(), 2000);
}

#[test]
fn message_over_max_message_size_via_fragments_fails_with_1009() {
    for role in BOTH {
        let config = SizeLimits::default()
            .max_frame_size(600)
            .max_message_size(1000);
        // Exactly at the limit: accepted.
        let mut conn = Connection::new(role, config.clone());
        let mut wire = peer_frame(role, BINARY, &[1; 600]);
        wire.extend(peer_frame(role, FIN | CONT, &[2; 400]));
        let mut expected = vec![1; 600];
        expected.extend_from_slice(&[2; 400]);
        assert_eq!(feed_ok(&mut conn, &wire), [Message::Binary(expected)]);

        // One byte over, detected from the second fragment's header.
        let mut conn = Connection::new(role, config.clone());
        assert_eq!(
            feed_ok(&mut conn, &peer_frame(role, TEXT, &[b'a'; 600])),
            []
        );
        let second = peer_frame(role, FIN | CONT, &[b'a'; 401]);
        let header_len = second.len() - 401;
        assert_fails(
            &mut conn,
            &second[..header_len],
            ProtocolError::MessageTooBig,
            1009,
        );

        // Many small fragments creeping over the limit.
        let mut conn = Connection::new(role, config.clone());
        let mut wire = peer_frame(role, BINARY, &[0; 100]);
        for _ in 0..9 {
            wire.extend(peer_frame(role, CONT, &[0; 100]));
        }
        wire.extend(peer_frame(role, CONT, &[0; 1]));
        assert_fails(&mut conn, &wire, ProtocolError::MessageTooBig, 1009);

        // A single frame under max_frame_size but over max_message_size.
        let config = SizeLimits::default()
            .max_frame_size(2000)
            .max_message_size(1000);
        let mut conn = Connection::new(role, config);
        let wire = peer_frame(role, FIN | BINARY, &[0; 1500]);
        assert_fails(&mut conn, &wire, ProtocolError::MessageTooBig, 1009);
    }
}

#[test]
fn payload_length_with_top_bit_set_fails_with_1002() {
    for role in BOTH {
        let mut conn = Connection::new(role, SizeLimits::default());
        let mut wire = vec![0x82, if role == Role::Server { 0xFF } else { 0x7F }];
        wire.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
        if role == Role::Server {
            wire.extend_from_slice(&KEY);
        }
        wire.extend_from_slice(b"hello");
        assert_fails(
            &mut conn,
            &wire,
            ProtocolError::PayloadLengthTopBitSet,
            1002,
        );
        // Known as soon as the first length byte is here.
        let mut conn = Connection::new(role, SizeLimits::default());
        assert_fails(
            &mut conn,
            &wire[..3],
            ProtocolError::PayloadLengthTopBitSet,
            1002,
        );
    }
}

#[test]
fn client_fails_with_masked_close_frame() {
    let mut c = client();
    let wire = peer_frame(Role::Client, FIN | TEXT, b"\xff");
    assert_fails(&mut c, &wire, ProtocolError::InvalidUtf8, 1007);
    // assert_fails checked that the close frame is masked (assert_masking).
}

#[test]
fn messages_before_an_error_are_delivered() {
    let mut s = server();
    let mut wire = peer_frame(Role::Server, FIN | TEXT, b"one");
    wire.extend(peer_frame(Role::Server, FIN | PING, b"p"));
    wire.extend(peer_frame(Role::Server, FIN | 0x40 | TEXT, b"bad"));
    let delivered = assert_fails(&mut s, &wire, ProtocolError::ReservedBitsSet, 1002);
    assert_eq!(
        delivered,
        [Message::Text("one".into()), Message::Ping(b"p".to_vec())]
    );
}

#[test]
fn error_after_own_close_does_not_queue_a_second_close() {
    let mut s = server();
    s.close(CloseCode::NORMAL, "").unwrap();
    s.take_data_to_send();
    let (_, err) = feed(&mut s, &peer_frame(Role::Server, FIN | TEXT, b"\xff"));
    assert!(matches!(
        err,
        Some(Error::Protocol(ProtocolError::InvalidUtf8))
    ));
    assert_eq!(s.state(), State::Failed);
    assert!(s.data_to_send().is_empty());
    assert!(s.should_close_transport());
}

// ---------------------------------------------------------------------------
// Fragmentation (RFC 6455 §5.4).

#[test]
fn control_frames_interleaved_in_a_fragmented_message_are_delivered() {
    for role in BOTH {
        let mut conn = Connection::new(role, SizeLimits::default());
        let mut wire = peer_frame(role, TEXT, b"Hel");
        wire.extend(peer_frame(role, FIN | PING, b"ping 1"));
        wire.extend(peer_frame(role, CONT, b"l"));
        wire.extend(peer_frame(role, FIN | PONG, b"pong"));
        wire.extend(peer_frame(role, FIN | PING, b""));
        wire.extend(peer_frame(role, FIN | CONT, b"o"));
        wire.extend(peer_frame(role, FIN | BINARY, b"\x00\x01"));
        assert_eq!(
            feed_ok(&mut conn, &wire),
            [
                Message::Ping(b"ping 1".to_vec()),
                Message::Pong(b"pong".to_vec()),
                Message::Ping(b"".to_vec()),
                Message::Text("Hello".into()),
                Message::Binary(vec![0, 1]),
            ]
        );
        let frames = decode_frames(conn.data_to_send());
        assert_masking(role, &frames);
        let pongs: Vec<(u8, Vec<u8>)> = frames
            .iter()
            .map(|f| (f.opcode, f.payload.clone()))
            .collect();
        assert_eq!(pongs, [(PONG, b"ping 1".to_vec()), (PONG, vec![])]);
    }
}

#[test]
fn close_inside_a_fragmented_message_is_delivered_and_ends_it() {
    let mut s = server();
    let mut wire = peer_frame(Role::Server, TEXT, b"unfinished");
    wire.extend(peer_frame(
        Role::Server,
        FIN | CLOSE,
        &close_payload(1000, b""),
    ));
    wire.extend(peer_frame(Role::Server, FIN | CONT, b" never seen"));
    assert_eq!(
        feed_ok(&mut s, &wire),
        [Message::Close(Some(CloseFrame::new(CloseCode::NORMAL)))]
    );
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn empty_fragments_reassemble() {
    let mut s = server();
    let mut wire = peer_frame(Role::Server, TEXT, b"");
    wire.extend(peer_frame(Role::Server, CONT, b""));
    wire.extend(peer_frame(Role::Server, FIN | CONT, b""));
    wire.extend(peer_frame(Role::Server, BINARY, b""));
    wire.extend(peer_frame(Role::Server, FIN | CONT, b"x"));
    wire.extend(peer_frame(Role::Server, FIN | TEXT, b""));
    assert_eq!(
        feed_ok(&mut s, &wire),
        [
            Message::Text(String::new()),
            Message::Binary(b"x".to_vec()),
            Message::Text(String::new())
        ]
    );
}

#[test]
fn many_tiny_fragments_reassemble() {
    // 100_000 one-byte fragments of text made of 1- to 4-byte code points, so
    // almost every code point is split across fragments.
    let text: String = "aé€😀".repeat(10_000);
    let bytes = text.as_bytes();
    assert_eq!(bytes.len(), 100_000);
    for role in BOTH {
        let mut wire = Vec::with_capacity(bytes.len() * 7);
        for (i, b) in bytes.iter().enumerate() {
            let b0 = match (i, i == bytes.len() - 1) {
                (0, _) => TEXT,
                (_, true) => FIN | CONT,
                _ => CONT,
            };
            wire.extend(peer_frame(role, b0, std::slice::from_ref(b)));
        }
        let mut conn = Connection::new(role, SizeLimits::default());
        let messages = feed_ok(&mut conn, &wire);
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0] == Message::Text(text.clone()),
            "reassembled text differs"
        );
        assert!(conn.data_to_send().is_empty());
    }
}

#[test]
fn many_tiny_binary_fragments_reassemble() {
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    for (i, b) in payload.iter().enumerate() {
        let b0 = match (i, i == payload.len() - 1) {
            (0, _) => BINARY,
            (_, true) => FIN | CONT,
            _ => CONT,
        };
        wire.extend(peer_frame(Role::Server, b0, std::slice::from_ref(b)));
    }
    let mut s = server();
    let messages = feed_ok(&mut s, &wire);
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0] == Message::Binary(payload),
        "reassembled binary differs"
    );
}

// ---------------------------------------------------------------------------
// Chunking: how the bytes are split must not matter.

/// A stream exercising every kind of frame a server receives.
fn mixed_client_stream() -> (Vec<u8>, Vec<Message>) {
    let r = Role::Server;
    let big: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let text = "héllo wörld — κόσμε 😀".repeat(50);
    let mut wire = Vec::new();
    wire.extend(peer_frame(r, FIN | TEXT, b"Hello"));
    wire.extend(peer_frame(r, FIN | BINARY, &[0; 300]));
    wire.extend(peer_frame(r, FIN | PING, b"are you there"));
    wire.extend(peer_frame(r, TEXT, &text.as_bytes()[..7]));
    wire.extend(peer_frame(r, FIN | PING, b"mid"));
    wire.extend(peer_frame(r, CONT, &text.as_bytes()[7..500]));
    wire.extend(peer_frame(r, FIN | PONG, b"unsolicited"));
    wire.extend(peer_frame(r, FIN | CONT, &text.as_bytes()[500..]));
    wire.extend(peer_frame(r, FIN | BINARY, &big));
    wire.extend(peer_frame(r, FIN | TEXT, b""));
    wire.extend(peer_frame(
        r,
        FIN | CLOSE,
        &close_payload(1000, "fin ✓".as_bytes()),
    ));
    let expected = vec![
        Message::Text("Hello".into()),
        Message::Binary(vec![0; 300]),
        Message::Ping(b"are you there".to_vec()),
        Message::Ping(b"mid".to_vec()),
        Message::Pong(b"unsolicited".to_vec()),
        Message::Text(text),
        Message::Binary(big),
        Message::Text(String::new()),
        Message::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: "fin ✓".into(),
        })),
    ];
    (wire, expected)
}

#[test]
fn chunking_whole_byte_by_byte_and_random_splits_give_the_same_messages() {
    let (wire, expected) = mixed_client_stream();

    let mut whole = server();
    assert_eq!(feed_ok(&mut whole, &wire), expected);
    let reference_output = whole.data_to_send().to_vec();
    assert_eq!(
        decode_frames(&reference_output).len(),
        3,
        "two pongs and a close"
    );

    let mut bytewise = server();
    assert_eq!(feed_in_pieces(&mut bytewise, &wire, &[1]), expected);
    assert_eq!(bytewise.data_to_send(), reference_output.as_slice());

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..20 {
        let sizes: Vec<usize> = (0..16)
            .map(|_| match rng.below(3) {
                0 => 1 + rng.below(3),
                1 => 1 + rng.below(200),
                _ => 1 + rng.below(20_000),
            })
            .collect();
        let mut s = server();
        assert_eq!(
            feed_in_pieces(&mut s, &wire, &sizes),
            expected,
            "round {round}: {sizes:?}"
        );
        assert_eq!(s.data_to_send(), reference_output.as_slice());
        assert_eq!(s.state(), State::Closed);
    }

    // Every two-way split.
    for at in 0..wire.len() {
        if at % 97 != 0 && at > 64 && at < wire.len() - 64 {
            continue; // the whole range is slow in debug; sample the middle
        }
        let mut s = server();
        let mut got = feed_ok(&mut s, &wire[..at]);
        got.extend(feed_ok(&mut s, &wire[at..]));
        assert_eq!(got, expected, "split at {at}");
    }
}

#[test]
fn chunking_for_a_client_gives_the_same_messages() {
    let mut s = server();
    let mut wire_messages = vec![
        Message::Text("first".into()),
        Message::Binary((0..=255).collect()),
        Message::Ping(b"p".to_vec()),
        Message::Text("ünïcödé ".repeat(2000)),
    ];
    for m in &wire_messages {
        s.send(m).unwrap();
    }
    s.close(CloseCode(4000), "app close").unwrap();
    wire_messages.push(Message::Close(Some(CloseFrame {
        code: CloseCode(4000),
        reason: "app close".into(),
    })));
    let wire = s.take_data_to_send();

    let mut c = client();
    assert_eq!(feed_ok(&mut c, &wire), wire_messages);
    let mut rng = Rng(42);
    for _ in 0..10 {
        let sizes: Vec<usize> = (0..8).map(|_| 1 + rng.below(50)).collect();
        let mut c = client();
        assert_eq!(feed_in_pieces(&mut c, &wire, &sizes), wire_messages);
    }
}

// ---------------------------------------------------------------------------
// The client masks what it sends (RFC 6455 §5.1, §5.3).

#[test]
fn client_frames_are_masked_with_fresh_keys_and_decode_on_a_server() {
    let mut c = client();
    let messages = vec![
        Message::Text("Hello".into()),
        Message::Text("Hello".into()),
        Message::Binary(vec![0; 1000]),
        Message::Ping(b"ping".to_vec()),
        Message::Pong(vec![]),
        Message::Binary(vec![0xAA; 70_000]),
        Message::Text(String::new()),
    ];
    for m in &messages {
        c.send(m).unwrap();
    }
    c.send_frame(OpCode::Text, "frag".as_bytes(), false)
        .unwrap();
    c.send_frame(OpCode::Continuation, "mented".as_bytes(), true)
        .unwrap();
    let wire = c.take_data_to_send();

    let frames = decode_frames(&wire);
    assert_eq!(frames.len(), messages.len() + 2);
    let mut keys = Vec::new();
    for f in &frames {
        let key = f.mask.expect("every client frame is masked");
        keys.push(key);
    }
    // Fresh keys: 9 random 32-bit keys are all distinct with overwhelming odds.
    let mut distinct = keys.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), keys.len(), "mask keys repeat: {keys:x?}");
    assert_eq!(frames[2].payload, vec![0; 1000]);

    let mut s = server();
    let mut expected = messages.clone();
    expected.push(Message::Text("fragmented".into()));
    assert_eq!(feed_ok(&mut s, &wire), expected);
}

#[test]
fn client_payload_bytes_on_the_wire_are_xored_with_the_key() {
    let mut c = client();
    c.send(&Message::Binary(vec![0; 9])).unwrap();
    let wire = c.take_data_to_send();
    assert_eq!(wire[..2], [0x82, 0x89]);
    let key = &wire[2..6];
    for (i, b) in wire[6..].iter().enumerate() {
        assert_eq!(*b, key[i % 4], "byte {i}");
    }
}

// ---------------------------------------------------------------------------
// Send-side rules.

#[test]
fn send_control_payload_over_125_bytes_is_invalid_send() {
    for role in BOTH {
        let mut conn = Connection::new(role, SizeLimits::default());
        assert!(matches!(
            conn.send(&Message::Ping(vec![0; 126])),
            Err(Error::InvalidSend(_))
        ));
        assert!(matches!(
            conn.send(&Message::Pong(vec![0; 126])),
            Err(Error::InvalidSend(_))
        ));
        assert!(matches!(
            conn.send_frame(OpCode::Ping, &[0; 126], true),
            Err(Error::InvalidSend(_))
        ));
        assert!(conn.data_to_send().is_empty());
        conn.send(&Message::Ping(vec![0; 125])).unwrap();
        conn.send(&Message::Pong(vec![0; 125])).unwrap();
        assert_eq!(decode_frames(conn.data_to_send()).len(), 2);
        assert_eq!(conn.state(), State::Open);
    }
}

#[test]
fn send_fragmented_control_frame_is_invalid_send() {
    let mut s = server();
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        assert!(matches!(
            s.send_frame(op, b"", false),
            Err(Error::InvalidSend(_))
        ));
    }
    assert!(s.data_to_send().is_empty());
    assert_eq!(s.state(), State::Open);
}

#[test]
fn send_close_with_forbidden_code_is_invalid_send() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let mut s = server();
        assert!(
            matches!(s.close(CloseCode(code), ""), Err(Error::InvalidSend(_))),
            "code {code}"
        );
        let msg = Message::Close(Some(CloseFrame::new(CloseCode(code))));
        assert!(
            matches!(s.send(&msg), Err(Error::InvalidSend(_))),
            "code {code}"
        );
        assert!(s.data_to_send().is_empty());
        assert_eq!(s.state(), State::Open, "nothing was sent, still open");
        s.send(&Message::Text("still usable".into())).unwrap();
    }
}

#[test]
fn send_close_reason_over_123_bytes_is_invalid_send() {
    let mut s = server();
    let long = "a".repeat(124);
    assert!(matches!(
        s.close(CloseCode::NORMAL, &long),
        Err(Error::InvalidSend(_))
    ));
    // 62 two-byte chars = 124 bytes although only 62 chars.
    let long_utf8 = "é".repeat(62);
    assert!(matches!(
        s.close(CloseCode::NORMAL, &long_utf8),
        Err(Error::InvalidSend(_))
    ));
    assert!(s.data_to_send().is_empty());
    assert_eq!(s.state(), State::Open);

    let max = "b".repeat(123);
    s.close(CloseCode::NORMAL, &max).unwrap();
    let frames = decode_frames(s.data_to_send());
    assert_eq!(frames[0].payload.len(), 125);
    assert_eq!(frames[0].payload, close_payload(1000, max.as_bytes()));
    assert_eq!(s.state(), State::CloseSent);
}

#[test]
fn send_close_without_code_is_an_empty_close_frame() {
    let mut s = server();
    s.send(&Message::Close(None)).unwrap();
    assert_eq!(s.data_to_send(), [0x88, 0x00]);
    assert_eq!(s.state(), State::CloseSent);
}

#[test]
fn send_continuation_without_start_is_invalid_send() {
    let mut s = server();
    for fin in [false, true] {
        assert!(matches!(
            s.send_frame(OpCode::Continuation, b"x", fin),
            Err(Error::InvalidSend(_))
        ));
    }
    // And after a fragmented message has finished.
    s.send_frame(OpCode::Binary, b"a", false).unwrap();
    s.send_frame(OpCode::Continuation, b"b", true).unwrap();
    assert!(matches!(
        s.send_frame(OpCode::Continuation, b"c", true),
        Err(Error::InvalidSend(_))
    ));
    assert_eq!(s.data_to_send(), [0x02, 0x01, b'a', 0x80, 0x01, b'b']);
}

#[test]
fn send_data_frame_during_fragmented_send_is_invalid_send() {
    let mut s = server();
    s.send_frame(OpCode::Text, b"start", false).unwrap();
    let queued = s.data_to_send().len();
    assert!(matches!(
        s.send(&Message::Text("x".into())),
        Err(Error::InvalidSend(_))
    ));
    assert!(matches!(
        s.send(&Message::Binary(vec![1])),
        Err(Error::InvalidSend(_))
    ));
    assert!(matches!(
        s.send_frame(OpCode::Binary, b"x", false),
        Err(Error::InvalidSend(_))
    ));
    assert!(matches!(
        s.send_frame(OpCode::Text, b"x", true),
        Err(Error::InvalidSend(_))
    ));
    assert_eq!(
        s.data_to_send().len(),
        queued,
        "rejected frames queue nothing"
    );
    // Control frames may go in between.
    s.send(&Message::Ping(b"k".to_vec())).unwrap();
    s.send_frame(OpCode::Continuation, b" end", true).unwrap();
    // And a new message may start afterwards.
    s.send(&Message::Text("next".into())).unwrap();
}

#[test]
fn fragmented_send_sequence_encodes_correctly() {
    let mut s = server();
    s.send_frame(OpCode::Binary, &[1, 2], false).unwrap();
    s.send_frame(OpCode::Continuation, &[], false).unwrap();
    s.send(&Message::Ping(b"p".to_vec())).unwrap();
    s.send_frame(OpCode::Continuation, &[3], false).unwrap();
    s.send_frame(OpCode::Continuation, &[4, 5], true).unwrap();
    let wire = s.take_data_to_send();
    assert_eq!(
        wire,
        [
            0x02, 0x02, 1, 2, // binary, FIN clear
            0x00, 0x00, // empty continuation
            0x89, 0x01, b'p', // ping in between
            0x00, 0x01, 3, // continuation
            0x80, 0x02, 4, 5, // final continuation
        ]
    );
    let mut c = client();
    assert_eq!(
        feed_ok(&mut c, &wire),
        [
            Message::Ping(b"p".to_vec()),
            Message::Binary(vec![1, 2, 3, 4, 5])
        ]
    );

    // A client's fragmented send decodes on a server the same way.
    let mut c = client();
    c.send_frame(OpCode::Text, "κό".as_bytes(), false).unwrap();
    c.send_frame(OpCode::Continuation, &"σμε".as_bytes()[..3], false)
        .unwrap();
    c.send_frame(OpCode::Continuation, &"σμε".as_bytes()[3..], true)
        .unwrap();
    let wire = c.take_data_to_send();
    let frames = decode_frames(&wire);
    let shape: Vec<(bool, u8)> = frames.iter().map(|f| (f.fin, f.opcode)).collect();
    assert_eq!(shape, [(false, TEXT), (false, CONT), (true, CONT)]);
    let mut s = server();
    assert_eq!(feed_ok(&mut s, &wire), [Message::Text("κόσμε".into())]);
}

#[test]
fn advance_consumes_written_bytes_in_parts() {
    let mut s = server();
    s.send(&Message::Text("Hello".into())).unwrap();
    s.advance(4);
    assert_eq!(s.data_to_send(), b"llo");
    s.send(&Message::Text("!".into())).unwrap();
    assert_eq!(s.data_to_send(), b"llo\x81\x01!");
    s.advance(100);
    assert!(s.data_to_send().is_empty());
}

#[test]
fn close_with_truncates_long_reason_and_queues_close() {
    let mut s = server();
    s.outgoing_mut()
        .close_with(CloseCode::GOING_AWAY, &"a".repeat(500));
    let frames = decode_frames(s.data_to_send());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1001));
    assert!(frames[0].payload.len() <= 125);
    assert_eq!(s.state(), State::CloseSent);
}

#[test]
fn close_with_long_multibyte_reason_still_queues_close() {
    // 40 four-byte chars are 160 bytes: the reason must be cut to fit the
    // 123 bytes a close frame allows (RFC 6455 §5.5), not dropped with the frame.
    let mut s = server();
    s.outgoing_mut()
        .close_with(CloseCode::GOING_AWAY, &"😀".repeat(40));
    let frames = decode_frames(s.data_to_send());
    assert_eq!(frames.len(), 1, "a close frame is queued: {frames:?}");
    assert_eq!(frames[0].close_code(), Some(1001));
    assert!(frames[0].payload.len() <= 125);
    assert!(std::str::from_utf8(&frames[0].payload[2..]).is_ok());
    assert_eq!(s.state(), State::CloseSent);
}

#[test]
fn send_frame_close_with_forbidden_payload_is_invalid_send() {
    // RFC 6455 §5.5.1 / §7.4.1: a close body is empty or a valid code plus
    // UTF-8; 1005, 1006 and 1015 MUST NOT be sent. The frame-level API must
    // enforce what `close()` enforces.
    for payload in [
        &b"\x03"[..],           // one byte
        &1005u16.to_be_bytes(), // no status
        &1006u16.to_be_bytes(), // abnormal
        &1015u16.to_be_bytes(), // TLS
        &999u16.to_be_bytes(),
        b"\x03\xe8\xff", // 1000 with an invalid UTF-8 reason
    ] {
        let mut s = server();
        let r = s.send_frame(OpCode::Close, payload, true);
        assert!(
            matches!(r, Err(Error::InvalidSend(_))),
            "{payload:x?}: {r:?}"
        );
        assert!(s.data_to_send().is_empty(), "{payload:x?} was queued");
        assert_eq!(s.state(), State::Open);
    }
}
