//! Shared drivers for the fuzz targets in `fuzz_targets/`.

pub mod driver;

use driver::{Echo, End, Fill, FrameSpec, Script};
use rfc6455::frame::{CloseCode, FrameHeader, OpCode, Parsed, Role};
use rfc6455::protocol::{Connection, Message, SizeLimits, State};
use rfc6455::Error;

/// How a `protocol_*` input is laid out: the first [`PREFIX`] bytes choose
/// how the rest (the wire bytes from the peer) is chunked, the limits, and a
/// few behaviours; the rest is fed to a [`Connection`].
///
/// | byte | meaning |
/// | ---- | ------- |
/// | 0..4 | a cycle of chunk sizes; 0 = everything left at once, else that many bytes |
/// | 4    | limits: `max_frame = 64 << (b & 7)` (64 B..8 KiB), `max_message = max_frame << ((b >> 3) & 3)` |
/// | 5    | flags: bit 0 = start our own close handshake before feeding |
pub const PREFIX: usize = 6;

/// An input split by its [`PREFIX`].
struct Layout<'a> {
    chunks: [u8; 4],
    max_message: usize,
    config: SizeLimits,
    close_first: bool,
    wire: &'a [u8],
}

fn layout(input: &[u8]) -> Option<Layout<'_>> {
    if input.len() < PREFIX {
        return None;
    }
    let (head, wire) = input.split_at(PREFIX);
    let max_frame = 64usize << (head[4] & 7);
    let max_message = max_frame << ((head[4] >> 3) & 3);
    Some(Layout {
        chunks: [head[0], head[1], head[2], head[3]],
        max_message,
        config: SizeLimits::default()
            .max_frame_size(max_frame)
            .max_message_size(max_message),
        close_first: head[5] & 1 != 0,
        wire,
    })
}

/// Feeds the wire bytes of `input` (see [`PREFIX`]) to a connection of `role`
/// and checks:
///
/// - no panic, and the connection always makes progress;
/// - every error is `Error::Protocol` with close code 1002, 1007 or 1009,
///   the state is then `Failed`, and the bytes queued for the peer end with
///   a close frame carrying that code; nothing is fed after an error;
/// - received messages respect the limits and the control frame size;
/// - echoing each message with `send` works while the connection is open and
///   fails only with `AlreadyClosed` after a close frame was sent;
/// - everything queued for the peer is a well-formed frame sequence that a
///   peer of the other role decodes without error, with the data messages
///   echoed in order and a close frame last once the connection closed.
pub fn run_connection(role: Role, input: &[u8]) {
    let Some(Layout {
        chunks,
        max_message,
        config,
        close_first,
        wire,
    }) = layout(input)
    else {
        return;
    };
    let mut conn = Connection::new(role, config);
    let mut sent = Vec::new();
    let mut echoed = Vec::new();
    if close_first {
        conn.close(CloseCode::GOING_AWAY, "fuzz").unwrap();
        assert_eq!(conn.state(), State::CloseSent);
    }

    let mut failure = None;
    let mut rest = wire;
    let mut turn = 0;
    'feed: while !rest.is_empty() {
        let size = match chunks[turn % chunks.len()] {
            0 => rest.len(),
            n => usize::from(n).min(rest.len()),
        };
        turn += 1;
        let (mut chunk, after) = rest.split_at(size);
        rest = after;
        while !chunk.is_empty() {
            match conn.receive(chunk) {
                Ok(received) => {
                    assert!(received.consumed <= chunk.len());
                    assert!(
                        received.consumed > 0 || received.message.is_some(),
                        "no progress on {} bytes",
                        chunk.len()
                    );
                    chunk = &chunk[received.consumed..];
                    assert!(conn.incoming().buffered() <= max_message);
                    if let Some(message) = received.message {
                        check_message(&message, max_message);
                        echo(&mut conn, &message, &mut echoed);
                    }
                }
                Err(Error::Protocol(e)) => {
                    let code = e.close_code();
                    assert!(
                        matches!(code.0, 1002 | 1007 | 1009),
                        "{e:?} fails with {code}"
                    );
                    assert_eq!(conn.state(), State::Failed);
                    assert!(matches!(conn.receive(b"\x81"), Err(Error::AlreadyClosed)));
                    failure = Some(code);
                    break 'feed;
                }
                Err(other) => panic!("receive failed with a non-protocol error: {other:?}"),
            }
        }
        // A driver writes as it goes: drain what is queued now and then.
        if turn % 3 == 0 {
            sent.extend_from_slice(&conn.take_data_to_send());
        }
    }
    sent.extend_from_slice(conn.data_to_send());
    let n = conn.data_to_send().len();
    conn.advance(n);
    assert!(conn.data_to_send().is_empty());

    check_output(role, &sent, &echoed, failure, conn.state(), close_first);
}

fn check_message(message: &Message, max_message: usize) {
    match message {
        Message::Text(_) | Message::Binary(_) => assert!(message.len() <= max_message),
        Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
        Message::Close(Some(frame)) => {
            assert!(frame.code.is_valid_on_wire(), "{frame:?}");
            assert!(frame.reason.len() <= 123);
        }
        Message::Close(None) => {}
    }
}

/// Sends a received message back, as an echo server would.
fn echo(conn: &mut Connection, message: &Message, echoed: &mut Vec<Message>) {
    let open = conn.state() == State::Open;
    let result = conn.send(message);
    match (message, open) {
        (Message::Close(_), _) => {
            // Receiving a close frame already queued the reply.
            assert!(matches!(result, Err(Error::AlreadyClosed)), "{result:?}");
        }
        (_, true) => {
            result.unwrap_or_else(|e| panic!("echo of {message:?} failed while open: {e:?}"));
            if message.is_data() {
                echoed.push(message.clone());
            }
        }
        (_, false) => assert!(matches!(result, Err(Error::AlreadyClosed)), "{result:?}"),
    }
}

/// Walks the frames in `sent`, then decodes them with a peer of the other role.
fn check_output(
    role: Role,
    sent: &[u8],
    echoed: &[Message],
    failure: Option<CloseCode>,
    state: State,
    close_first: bool,
) {
    // 1. Structure: whole frames, masked by a client only, a close frame last
    // (and only last) if one was sent.
    let mut pos = 0;
    let mut last = None;
    while pos < sent.len() {
        assert!(last != Some(OpCode::Close), "a frame after our close frame");
        match FrameHeader::parse(&sent[pos..]) {
            Ok(Parsed::Complete(h, n)) => {
                assert_eq!(h.mask.is_some(), role == Role::Client);
                assert!(!h.rsv1 && !h.rsv2 && !h.rsv3);
                pos += n + h.payload_len as usize;
                assert!(pos <= sent.len(), "truncated frame in output");
                last = Some(h.opcode);
            }
            other => panic!("our output at {pos} does not parse: {other:?}"),
        }
    }
    let closing = failure.is_some() || close_first || state != State::Open;
    if closing {
        assert_eq!(
            last,
            Some(OpCode::Close),
            "connection closing without a close frame"
        );
    }

    // 2. Content: a peer decodes every frame without error.
    let peer_role = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut peer = Connection::new(peer_role, SizeLimits::default());
    let mut data = Vec::new();
    let mut close = None;
    for message in peer.feed(sent) {
        match message.unwrap_or_else(|e| panic!("peer failed on our output: {e:?}")) {
            m @ (Message::Text(_) | Message::Binary(_)) => data.push(m),
            Message::Close(frame) => close = Some(frame),
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    assert_eq!(data, echoed, "echoed data messages differ");
    if let Some(code) = failure {
        let frame = close.expect("a failed connection sent no close frame");
        // Unless our own close went first, the close frame carries the error's code.
        if !close_first {
            assert_eq!(frame.map(|f| f.code), Some(code));
        }
    }
}

/// Differential check of the two receive paths: the wire bytes of `input`
/// (same layout as [`run_connection`]) go, in the same chunks, to one
/// connection through `receive` (owned messages) and to another through
/// `receive_in_place` (borrowed, unmasked in place). Both must yield the
/// same messages in the same order, fail with the same error at the same
/// point, and queue the same bytes for the peer (pongs, close replies).
pub fn run_in_place_differential(role: Role, input: &[u8]) {
    let Some(Layout {
        chunks,
        config,
        wire,
        ..
    }) = layout(input)
    else {
        return;
    };
    let mut owned = Connection::new(role, config.clone());
    let mut in_place = Connection::new(role, config);

    let mut rest = wire;
    let mut turn = 0;
    while !rest.is_empty() {
        let size = match chunks[turn % chunks.len()] {
            0 => rest.len(),
            n => usize::from(n).min(rest.len()),
        };
        turn += 1;
        let (chunk, after) = rest.split_at(size);
        rest = after;

        let (owned_events, owned_error) = drain_owned(&mut owned, chunk);
        let mut copy = chunk.to_vec();
        let (in_place_events, in_place_error) = drain_in_place(&mut in_place, &mut copy);
        assert_eq!(owned_events, in_place_events, "messages differ");
        assert_eq!(owned_error, in_place_error, "errors differ");
        assert_eq!(owned.state(), in_place.state());
        if role == Role::Server {
            // Server frames are not masked, so the queued bytes are equal.
            assert_eq!(owned.data_to_send(), in_place.data_to_send());
        }
        if owned_error.is_some() {
            return;
        }
    }
}

fn drain_owned(conn: &mut Connection, mut chunk: &[u8]) -> (Vec<Message>, Option<String>) {
    let mut events = Vec::new();
    while !chunk.is_empty() {
        match conn.receive(chunk) {
            Ok(received) => {
                assert!(received.consumed > 0 || received.message.is_some());
                chunk = &chunk[received.consumed..];
                events.extend(received.message);
            }
            Err(e) => return (events, Some(format!("{e:?}"))),
        }
    }
    (events, None)
}

fn drain_in_place(conn: &mut Connection, chunk: &mut [u8]) -> (Vec<Message>, Option<String>) {
    let mut events = Vec::new();
    let mut start = 0;
    let len = chunk.len();
    while start < len {
        match conn.receive_in_place(&mut chunk[start..]) {
            Ok(received) => {
                assert!(received.consumed <= len - start);
                assert!(received.consumed > 0 || received.message.is_some());
                events.extend(received.message.map(|m| m.to_message()));
                start += received.consumed;
            }
            Err(e) => return (events, Some(format!("{e:?}"))),
        }
    }
    (events, None)
}

/// How a `websocket_driver` input is laid out: [`DRIVER_PREFIX`] bytes of
/// settings, then the peer's bytes, either raw or (the default) described
/// frame by frame, 4 bytes a frame (see [`frame_spec`]), so that a short
/// input stands for long, mostly well-formed streams with 100 KiB frames.
///
/// | byte | meaning |
/// | ---- | ------- |
/// | 0    | bit 0: we are the client (else the server); bit 1: raw bytes (else frames); bit 2: we close first; bits 3-4: echo data messages (0 off, 1 `write`, 2 `send`, 3 `write`); bit 5: the stream ends with `ConnectionReset` (else end of stream); bit 6: every other read is `Interrupted`; bit 7: the first read's bytes come with the handshake (`from_partially_read`) |
/// | 1    | limits: bit 7 clear = the defaults (16 MiB frames); set: `max_frame = 32 << (b & 15)` (32 B..1 MiB), `max_message = max_frame << ((b >> 4) & 3)` |
/// | 2    | the most one write takes: 0 = no limit, else `b * 97` bytes |
/// | 3    | this many bytes are cut off the end of the wire (a peer gone mid-frame) |
/// | 4..8 | read sizes, cycled: 0 = as much as asked, 1..=127 bytes, else `(b - 127)` KiB |
pub const DRIVER_PREFIX: usize = 8;

/// Frames stop being added past this much payload: five 100 KiB frames are
/// plenty, and more only slows the search (and grows the memory that
/// AddressSanitizer keeps in quarantine towards the RSS limit).
const MAX_WIRE: usize = 512 * 1024;

/// Decodes a `websocket_driver` input (see [`DRIVER_PREFIX`]) and runs
/// [`driver::check`] on it.
pub fn run_websocket_driver(input: &[u8]) {
    if input.len() < DRIVER_PREFIX {
        return;
    }
    let (head, body) = input.split_at(DRIVER_PREFIX);
    let flags = head[0];
    let role = if flags & 1 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let mut wire = if flags & 2 != 0 {
        body.to_vec()
    } else {
        let mut frames = Vec::new();
        let mut total = 0;
        for spec in body.chunks_exact(4).map(frame_spec) {
            total += spec.len;
            if total > MAX_WIRE {
                break;
            }
            frames.push(spec);
        }
        driver::encode(role, &frames)
    };
    wire.truncate(wire.len().saturating_sub(usize::from(head[3])));

    let config = if head[1] & 0x80 == 0 {
        SizeLimits::default()
    } else {
        let max_frame = 32usize << (head[1] & 15);
        SizeLimits::default()
            .max_frame_size(max_frame)
            .max_message_size(max_frame << ((head[1] >> 4) & 3))
    };
    let reads: Vec<usize> = head[4..8]
        .iter()
        .map(|&b| match b {
            0..=127 => usize::from(b),
            _ => usize::from(b - 127) << 10,
        })
        .collect();
    let leftover = match (flags & 0x80 != 0, reads[0]) {
        (false, _) => 0,
        (true, 0) => wire.len(),
        (true, n) => n,
    };
    driver::check(&Script {
        role,
        config,
        wire,
        leftover,
        reads,
        interrupt: flags & 0x40 != 0,
        max_write: usize::from(head[2]) * 97,
        end: if flags & 0x20 != 0 {
            End::Reset
        } else {
            End::Eof
        },
        close_first: flags & 4 != 0,
        echo: match (flags >> 3) & 3 {
            0 => Echo::Off,
            2 => Echo::Send,
            _ => Echo::Write,
        },
    });
}

/// Payload lengths worth hitting exactly: the edges of the 7-, 16- and
/// 64-bit length forms, of control frames (125), and of the driver's
/// direct-read path (16 KiB).
const EDGE_LENGTHS: [usize; 15] = [
    0, 1, 2, 123, 124, 125, 126, 127, 16383, 16384, 16385, 65535, 65536, 65537, 100_000,
];

/// Reserved opcodes (RFC 6455 §5.2).
const RESERVED: [u8; 10] = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF];

/// One frame from 4 input bytes `[s0, s1, s2, s3]`:
///
/// - `s0` bits 0-2, the opcode: text, binary, continuation (twice as
///   likely: fragmented messages), ping, pong, close, reserved;
///   bit 3 set = FIN clear; bits 4-6, one mistake: 0-3 none, 4 an RSV bit,
///   5 the wrong masking, 6 a 0xFF byte in the payload, 7 random bytes
///   instead of text;
/// - `s1 >> 6`, the length class: 0 tiny (`s2 % 126`), 1 up to 16 KiB
///   (14 bits of `s1`, `s2`), 2 from 16 KiB to ~96 KiB (the driver reads
///   these straight into the message), 3 one of [`EDGE_LENGTHS`];
/// - `s3` seeds the payload, the masking key, the close code and which
///   reserved opcode or RSV bit.
pub fn frame_spec(s: &[u8]) -> FrameSpec {
    let (s0, s1, s2, s3) = (s[0], s[1], s[2], s[3]);
    let low14 = usize::from(s1 & 0x3F) << 8 | usize::from(s2);
    let len = match s1 >> 6 {
        0 => usize::from(s2) % 126,
        1 => low14,
        2 => 16 * 1024 + low14 * 5,
        _ => EDGE_LENGTHS[usize::from(s2) % EDGE_LENGTHS.len()],
    };
    let seed = u64::from(s3) * 0x0100_0000_01B3 + u64::from(s1);
    let mistake = (s0 >> 4) & 7;
    let (opcode, fill) = match s0 & 7 {
        0 => (driver::TEXT, Fill::Text),
        1 => (driver::BINARY, Fill::Bytes(seed)),
        2 | 3 => (driver::CONTINUATION, Fill::Text),
        4 => (driver::PING, Fill::Bytes(seed)),
        5 => (driver::PONG, Fill::Bytes(seed)),
        6 => (
            driver::CLOSE,
            Fill::Close(CLOSE_CODES[usize::from(s3) % CLOSE_CODES.len()]),
        ),
        _ => (
            RESERVED[usize::from(s3) % RESERVED.len()],
            Fill::Bytes(seed),
        ),
    };
    FrameSpec {
        opcode,
        fin: s0 & 8 == 0,
        rsv: if mistake == 4 { 1 << (s3 % 3) } else { 0 },
        wrong_mask: mistake == 5,
        len,
        fill: match (mistake, fill) {
            (7, Fill::Text) => Fill::Bytes(seed),
            _ => fill,
        },
        corrupt: (mistake == 6).then_some(usize::from(s3) * 257),
        key: [s3, s3 ^ 0x5A, s3.wrapping_mul(3), !s3],
    }
}

/// Close codes a peer might send: valid ones (1000-1003, 1007-1011,
/// registered and private ranges) and ones that must fail the connection
/// (RFC 6455 §7.4: 1005, 1006 and 1015 never go on the wire; 0-999 and
/// 5000+ are not defined).
const CLOSE_CODES: [u16; 16] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999, 1005, 1006, 1015, 999, 5000,
];
