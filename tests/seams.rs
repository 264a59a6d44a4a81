//! The core's seams, tested through the public sans-I/O API: timers driven by
//! an `Instant` the caller passes in, and the extension hook between the
//! frame decoder and the message assembler. No sockets, no clock.
//!
//! Frames are built by hand here (server frames, unmasked), so the crate's
//! encoder does not check itself.

use rfc6455::frame::{CloseCode, OpCode, Role};
use rfc6455::protocol::extension::{ExtensionDecoder, ExtensionEncoder, RSV1, RSV2};
use rfc6455::protocol::{Connection, Message, SizeLimits, State, WebSocketConfig};
use rfc6455::{Error, Keepalive, ProtocolError, Timeout};
use std::time::{Duration, Instant};

const S: Duration = Duration::from_secs(1);

/// An unmasked frame (what a server sends, what a client receives).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![first, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

/// The opcodes and payloads of the unmasked frames in `wire` (a server's
/// output), with their first bytes.
fn frames(mut wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let len = usize::from(wire[1] & 0x7f);
        assert!(len < 126, "short frames only");
        out.push((wire[0], wire[2..2 + len].to_vec()));
        wire = &wire[2 + len..];
    }
    out
}

fn close_code(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

// ---------------------------------------------------------------------------
// Timers in the core

fn keepalive(interval: u32, timeout: u32) -> WebSocketConfig {
    WebSocketConfig::default().keepalive(Some(Keepalive::new(interval * S, timeout * S)))
}

#[test]
fn connection_without_timers_has_no_deadline() {
    let mut conn = Connection::new(Role::Server, SizeLimits::default());
    assert_eq!(conn.deadline(), None);
    assert!(conn.handle_timeout(Instant::now()).is_ok());
    assert!(conn.data_to_send().is_empty());
}

#[test]
fn keepalive_pings_after_silence_and_fails_with_1011_without_a_pong() {
    let t0 = Instant::now();
    let mut conn = Connection::with_timers(Role::Server, &keepalive(10, 5), t0);
    assert_eq!(conn.deadline(), Some(t0 + 10 * S));
    // Not due yet: nothing happens.
    conn.handle_timeout(t0 + 9 * S).unwrap();
    assert!(conn.data_to_send().is_empty());
    conn.handle_timeout(t0 + 10 * S).unwrap();
    assert_eq!(
        frames(&conn.take_data_to_send()),
        [(0x89, b"keepalive".to_vec())]
    );
    assert_eq!(conn.deadline(), Some(t0 + 15 * S));
    match conn.handle_timeout(t0 + 15 * S) {
        Err(Error::Timeout(Timeout::Keepalive)) => {}
        other => panic!("expected a keepalive timeout, got {other:?}"),
    }
    let sent = frames(conn.data_to_send());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 0x88);
    assert_eq!(close_code(&sent[0].1), 1011);
}

#[test]
fn keepalive_pong_answers_the_ping() {
    let t0 = Instant::now();
    let mut conn = Connection::with_timers(Role::Client, &keepalive(10, 5), t0);
    conn.handle_timeout(t0 + 10 * S).unwrap();
    conn.take_data_to_send();
    conn.receive(&frame(0x8A, b"keepalive")).unwrap();
    // The pong arrived: no failure when the ping timeout would have run out,
    // and the next ping is due an interval after the bytes came in.
    conn.handle_timeout(t0 + 15 * S).unwrap();
    assert!(conn.data_to_send().is_empty());
    assert_eq!(conn.deadline(), Some(t0 + 25 * S));
}

#[test]
fn keepalive_counts_bytes_received_as_signs_of_life() {
    let t0 = Instant::now();
    let mut conn = Connection::with_timers(Role::Client, &keepalive(10, 5), t0);
    conn.handle_timeout(t0 + 4 * S).unwrap();
    for message in conn.feed(&frame(0x81, b"still here")) {
        message.unwrap();
    }
    // The bytes count when the timers next look (t0 + 6 s): no ping at 10 s.
    conn.handle_timeout(t0 + 6 * S).unwrap();
    conn.handle_timeout(t0 + 10 * S).unwrap();
    assert!(conn.data_to_send().is_empty());
    conn.handle_timeout(t0 + 16 * S).unwrap();
    // A client's ping (masked, so only its first byte is checked here).
    assert_eq!(conn.data_to_send().first(), Some(&0x89));
}

#[test]
fn idle_timeout_closes_with_1001() {
    let t0 = Instant::now();
    let config = WebSocketConfig::default().idle_timeout(Some(30 * S));
    let mut conn = Connection::with_timers(Role::Server, &config, t0);
    assert_eq!(conn.deadline(), Some(t0 + 30 * S));
    match conn.handle_timeout(t0 + 30 * S) {
        Err(Error::Timeout(Timeout::Idle)) => {}
        other => panic!("expected an idle timeout, got {other:?}"),
    }
    let sent = frames(conn.data_to_send());
    assert_eq!(close_code(&sent[0].1), 1001);
}

#[test]
fn close_timeout_gives_up_on_a_peer_that_never_answers_our_close() {
    let t0 = Instant::now();
    let config = WebSocketConfig::default().close_timeout(2 * S);
    let mut conn = Connection::with_timers(Role::Server, &config, t0);
    conn.close(CloseCode::NORMAL, "bye").unwrap();
    // The wait starts when the timers first see the close frame sent.
    conn.handle_timeout(t0 + S).unwrap();
    assert_eq!(conn.deadline(), Some(t0 + 3 * S));
    match conn.handle_timeout(t0 + 3 * S) {
        Err(Error::Timeout(Timeout::Close)) => {}
        other => panic!("expected a close timeout, got {other:?}"),
    }
}

#[test]
fn close_wait_after_a_complete_handshake_ends_normally() {
    // RFC 6455 §7.1.1: a client waits for the server to close TCP; when that
    // wait runs out after both close frames, it is the normal end.
    let t0 = Instant::now();
    let config = WebSocketConfig::default().close_timeout(2 * S);
    let mut conn = Connection::with_timers(Role::Client, &config, t0);
    conn.close(CloseCode::NORMAL, "").unwrap();
    conn.handle_timeout(t0).unwrap();
    conn.receive(&frame(0x88, &1000u16.to_be_bytes())).unwrap();
    assert!(matches!(
        conn.handle_timeout(t0 + 2 * S),
        Err(Error::ConnectionClosed)
    ));
}

// ---------------------------------------------------------------------------
// The extension seam

/// A toy extension on RSV1: each decoded byte is the wire byte XOR 0x20,
/// and a wire byte 0xFF expands to 1,000 zero bytes (a miniature
/// decompression bomb). Its encoder applies the XOR to messages of at least
/// four bytes and leaves shorter ones alone.
#[derive(Debug, Default)]
struct Toy {
    pieces: usize,
    fins: usize,
}

impl ExtensionDecoder for Toy {
    fn rsv_bits(&self) -> u8 {
        RSV1
    }

    fn decode(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        self.pieces += 1;
        self.fins += usize::from(fin);
        for &b in input {
            let (byte, count) = if b == 0xFF { (0, 1000) } else { (b ^ 0x20, 1) };
            if out.len() + count > max {
                return Err(ProtocolError::MessageTooBig);
            }
            out.extend(std::iter::repeat_n(byte, count));
        }
        Ok(())
    }
}

impl ExtensionEncoder for Toy {
    fn encode(&mut self, _opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Option<u8> {
        if payload.len() < 4 {
            return None;
        }
        out.extend(payload.iter().map(|b| b ^ 0x20));
        Some(RSV1)
    }
}

fn client_with_toy(config: SizeLimits) -> Connection {
    let mut conn = Connection::new(Role::Client, config);
    conn.add_extension(Box::new(Toy::default()), Box::new(Toy::default()));
    conn
}

fn received(conn: &mut Connection, wire: &[u8]) -> Vec<Result<Message, String>> {
    conn.feed(wire)
        .map(|m| m.map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn extension_decodes_a_message_whose_first_frame_has_its_bit() {
    let mut conn = client_with_toy(SizeLimits::default());
    let wire = frame(0x80 | 0x40 | 0x1, b"HELLO");
    assert_eq!(
        received(&mut conn, &wire),
        [Ok(Message::Text("hello".into()))]
    );
    // Without the bit, the same bytes are taken as they are.
    assert_eq!(
        received(&mut conn, &frame(0x81, b"HELLO")),
        [Ok(Message::Text("HELLO".into()))]
    );
}

#[test]
fn extension_decodes_a_fragmented_message_piece_by_piece() {
    let mut conn = client_with_toy(SizeLimits::default());
    let mut wire = frame(0x40 | 0x2, b"AB"); // RSV1 on the first frame only
    wire.extend(frame(0x09 | 0x80, b"ping")); // a control frame in between
    wire.extend(frame(0x00, b"CD"));
    wire.extend(frame(0x80, b"EF"));
    assert_eq!(
        received(&mut conn, &wire),
        [
            Ok(Message::Ping(b"ping".to_vec())),
            Ok(Message::Binary(b"abcdef".to_vec()))
        ]
    );
}

#[test]
fn rsv1_on_a_continuation_frame_is_a_protocol_error_even_with_the_extension() {
    // RFC 7692 §6.1: the bit is set only on the first frame of a message.
    let mut conn = client_with_toy(SizeLimits::default());
    let mut wire = frame(0x40 | 0x1, b"AB");
    wire.extend(frame(0x80 | 0x40, b"CD"));
    let got = received(&mut conn, &wire);
    assert_eq!(got.len(), 1);
    assert!(got[0].as_ref().unwrap_err().contains("reserved bits"));
    assert_eq!(conn.state(), State::Failed);
}

#[test]
fn rsv1_on_a_control_frame_is_a_protocol_error_even_with_the_extension() {
    let mut conn = Connection::new(Role::Server, SizeLimits::default());
    conn.add_extension(Box::new(Toy::default()), Box::new(Toy::default()));
    let key = [1, 2, 3, 4];
    let wire = [0x80 | 0x40 | 0x9, 0x80, key[0], key[1], key[2], key[3]];
    assert!(matches!(
        conn.receive(&wire),
        Err(Error::Protocol(ProtocolError::ReservedBitsSet))
    ));
}

#[test]
fn a_bit_no_extension_claims_is_still_a_protocol_error() {
    let mut conn = client_with_toy(SizeLimits::default());
    let got = received(&mut conn, &frame(0x80 | RSV2 << 4 | 0x1, b"x"));
    assert!(got[0].as_ref().unwrap_err().contains("reserved bits"));
}

#[test]
fn the_message_limit_applies_to_what_the_extension_decodes() {
    // Three wire bytes that decode to 3,000: a decompression bomb in
    // miniature. The limit is 2,500 decoded bytes, so the connection fails
    // with 1009 although the frame is tiny.
    let mut conn = client_with_toy(SizeLimits::default().max_message_size(2500));
    let got = received(&mut conn, &frame(0x80 | 0x40 | 0x2, &[0xFF; 3]));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].as_ref().unwrap_err().contains("message too big"),
        "{got:?}"
    );
    assert!(conn.incoming().buffered() <= 2500);
}

#[test]
fn text_is_validated_after_decoding() {
    let mut conn = client_with_toy(SizeLimits::default());
    // 0xE0 ^ 0x20 = 0xC0: never valid UTF-8, though the wire byte could start
    // a three-byte sequence.
    let got = received(&mut conn, &frame(0x80 | 0x40 | 0x1, &[0xE0]));
    assert!(got[0].as_ref().unwrap_err().contains("UTF-8"), "{got:?}");
}

#[test]
fn encoder_sets_its_bit_and_the_peer_decodes_it() {
    let mut server = Connection::new(Role::Server, SizeLimits::default());
    server.add_extension(Box::new(Toy::default()), Box::new(Toy::default()));
    server.send(&Message::Text("hello".into())).unwrap();
    server.send(&Message::Text("hi".into())).unwrap(); // too short: untouched
    let wire = server.take_data_to_send();
    let sent = frames(&wire);
    assert_eq!(sent[0], (0x80 | 0x40 | 0x1, b"HELLO".to_vec()));
    assert_eq!(sent[1], (0x81, b"hi".to_vec()));
    let mut client = client_with_toy(SizeLimits::default());
    assert_eq!(
        received(&mut client, &wire),
        [
            Ok(Message::Text("hello".into())),
            Ok(Message::Text("hi".into()))
        ]
    );
}

#[test]
fn fragments_sent_frame_by_frame_are_not_transformed() {
    let mut server = Connection::new(Role::Server, SizeLimits::default());
    server.add_extension(Box::new(Toy::default()), Box::new(Toy::default()));
    server.send_frame(OpCode::Text, b"abcd", false).unwrap();
    server
        .send_frame(OpCode::Continuation, b"efgh", true)
        .unwrap();
    let sent = frames(&server.take_data_to_send());
    assert_eq!(sent[0], (0x01, b"abcd".to_vec()));
    assert_eq!(sent[1], (0x80, b"efgh".to_vec()));
}

#[test]
fn close_timeout_counts_from_when_the_timers_first_see_the_close() {
    // A close sent between timer calls makes the connection due at once, so
    // its wait starts then, not an old deadline later.
    let t0 = Instant::now();
    let config = WebSocketConfig::default().close_timeout(5 * S);
    let mut conn = Connection::with_timers(Role::Server, &config, t0);
    conn.handle_timeout(t0 + 4 * S).unwrap();
    conn.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(conn.deadline(), Some(t0 + 4 * S));
    conn.handle_timeout(t0 + 4 * S).unwrap();
    assert_eq!(conn.deadline(), Some(t0 + 9 * S));
    assert!(matches!(
        conn.handle_timeout(t0 + 9 * S),
        Err(Error::Timeout(Timeout::Close))
    ));
}
