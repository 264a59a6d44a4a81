//! Property tests for the codec: frame headers, masking, incremental UTF-8
//! validation, and whole connections fed in arbitrary chunks.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rfc6455::frame::{
    apply_mask, apply_mask_offset, CloseCode, CloseFrame, FrameHeader, OpCode, Parsed, Role,
};
use rfc6455::protocol::{Connection, Message, SizeLimits, State};
use rfc6455::utf8::Validator;
use rfc6455::{Error, ProtocolError};

/// Modest case counts keep the file at a few seconds in debug mode; no
/// regression files are written into the source tree.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Frame headers.

const OPCODES: [OpCode; 6] = [
    OpCode::Continuation,
    OpCode::Text,
    OpCode::Binary,
    OpCode::Close,
    OpCode::Ping,
    OpCode::Pong,
];

fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..126,
        126u64..=0xFFFF,
        0x1_0000u64..(1 << 63),
        prop::sample::select(vec![
            0,
            125,
            126,
            127,
            0xFFFF,
            0x1_0000,
            u64::from(u32::MAX),
            (1 << 63) - 1
        ]),
    ]
}

fn frame_header() -> impl Strategy<Value = FrameHeader> {
    (
        any::<[bool; 4]>(),
        prop::sample::select(OPCODES.to_vec()),
        proptest::option::of(any::<[u8; 4]>()),
        payload_len(),
    )
        .prop_map(
            |([fin, rsv1, rsv2, rsv3], opcode, mask, payload_len)| FrameHeader {
                fin,
                rsv1,
                rsv2,
                rsv3,
                opcode,
                mask,
                payload_len,
            },
        )
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn header_encodes_then_parses_back_to_itself(
        h in frame_header(),
        trailing in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let encoded = h.encode();
        let bytes = encoded.as_bytes();
        let ext = match h.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        let expected_len = 2 + ext + if h.mask.is_some() { 4 } else { 0 };
        prop_assert_eq!(bytes.len(), expected_len, "minimal length form");
        prop_assert_eq!(FrameHeader::parse(bytes), Ok(Parsed::Complete(h, expected_len)));

        // Bytes after the header (the payload) do not change the result.
        let mut with_payload = bytes.to_vec();
        with_payload.extend_from_slice(&trailing);
        prop_assert_eq!(
            FrameHeader::parse(&with_payload),
            Ok(Parsed::Complete(h, expected_len))
        );

        // Every strict prefix is incomplete, and asks for no more than is missing.
        for cut in 0..bytes.len() {
            match FrameHeader::parse(&bytes[..cut]) {
                Ok(Parsed::Incomplete(need)) => {
                    prop_assert!(need >= 1 && need <= bytes.len() - cut,
                        "prefix {} of {}: need {}", cut, bytes.len(), need);
                }
                other => prop_assert!(false, "prefix {} of {:x?}: {:?}", cut, bytes, other),
            }
        }
    }

    #[test]
    fn header_with_top_length_bit_set_never_parses(
        h in frame_header(),
        high in (1u64 << 63)..=u64::MAX,
    ) {
        // Splice a length with bit 63 set into a 64-bit-length encoding.
        let mut h = h;
        h.payload_len = 0x1_0000;
        let mut bytes = h.encode().as_bytes().to_vec();
        bytes[2..10].copy_from_slice(&high.to_be_bytes());
        prop_assert_eq!(FrameHeader::parse(&bytes), Err(ProtocolError::PayloadLengthTopBitSet));
        for cut in 3..bytes.len() {
            prop_assert_eq!(
                FrameHeader::parse(&bytes[..cut]),
                Err(ProtocolError::PayloadLengthTopBitSet)
            );
        }
    }

    #[test]
    fn header_parse_of_arbitrary_bytes_is_consistent(
        bytes in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        match FrameHeader::parse(&bytes) {
            Ok(Parsed::Complete(h, n)) => {
                prop_assert!((2..=14).contains(&n) && n <= bytes.len());
                prop_assert!(h.payload_len < 1 << 63);
                prop_assert_eq!(h.mask.is_some(), bytes[1] & 0x80 != 0);
            }
            Ok(Parsed::Incomplete(need)) => prop_assert!(need >= 1 && bytes.len() + need <= 14),
            Err(ProtocolError::ReservedOpcode(op)) => {
                prop_assert_eq!(op, bytes[0] & 0x0F);
                prop_assert!(OpCode::from_u4(op).is_none());
            }
            Err(ProtocolError::PayloadLengthTopBitSet) => {
                prop_assert_eq!(bytes[1] & 0x7F, 127);
                prop_assert!(bytes[2] & 0x80 != 0);
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}

// ---------------------------------------------------------------------------
// Masking.

fn naive_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(i + offset) % 4];
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn mask_offset_over_any_split_equals_mask_on_the_whole(
        buf in prop::collection::vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
        mut cuts in prop::collection::vec(0usize..300, 0..8),
    ) {
        let mut whole = buf.clone();
        apply_mask(&mut whole, key);
        let mut reference = buf.clone();
        naive_mask(&mut reference, key, 0);
        prop_assert_eq!(&whole, &reference);

        for c in cuts.iter_mut() {
            *c = (*c).min(buf.len());
        }
        cuts.push(0);
        cuts.push(buf.len());
        cuts.sort_unstable();
        let mut pieces = buf.clone();
        for w in cuts.windows(2) {
            apply_mask_offset(&mut pieces[w[0]..w[1]], key, w[0]);
        }
        prop_assert_eq!(&pieces, &whole);

        // Masking is its own inverse.
        apply_mask(&mut pieces, key);
        prop_assert_eq!(pieces, buf);
    }

    #[test]
    fn mask_offset_matches_the_rfc_definition(
        buf in prop::collection::vec(any::<u8>(), 0..200),
        key in any::<[u8; 4]>(),
        offset in 0usize..1_000_000,
        start in 0usize..8,
    ) {
        // Also on a sub-slice that starts at an unaligned address.
        let start = start.min(buf.len());
        let mut fast = buf.clone();
        let mut slow = buf.clone();
        apply_mask_offset(&mut fast[start..], key, offset);
        naive_mask(&mut slow[start..], key, offset);
        prop_assert_eq!(fast, slow);
    }
}

// ---------------------------------------------------------------------------
// UTF-8 validation.

/// Byte strings that are often valid, often invalid in interesting ways.
fn utf8ish() -> impl Strategy<Value = Vec<u8>> {
    let tricky: Vec<&'static [u8]> = vec![
        b"\xed\xa0\x80",     // surrogate
        b"\xed\x9f\xbf",     // last before surrogates (valid)
        b"\xf4\x90\x80\x80", // above U+10FFFF
        b"\xf4\x8f\xbf\xbf", // U+10FFFF (valid)
        b"\xc0\xaf",         // overlong
        b"\xe0\x80\xaf",     // overlong
        b"\xf0\x80\x80\xaf", // overlong
        b"\xc2",             // lone lead
        b"\xe2\x82",         // cut 3-byte
        b"\xf0\x9f\x98",     // cut 4-byte
        b"\x80",             // stray continuation
        b"\xff",
        b"\xfe",
        b"\xf5",
    ];
    let piece = prop_oneof![
        4 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
        2 => "[a-z ]{0,8}".prop_map(String::into_bytes),
        2 => prop::sample::select(tricky).prop_map(<[u8]>::to_vec),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    prop_oneof![
        3 => prop::collection::vec(piece, 0..24).prop_map(|v| v.concat()),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// The shortest prefix of `bytes` that std already knows to be invalid
/// (as opposed to merely cut short), if any.
fn first_certain_error(bytes: &[u8]) -> Option<usize> {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_some() => (e.valid_up_to() + 1..=bytes.len()).find(
            |&n| matches!(std::str::from_utf8(&bytes[..n]), Err(e) if e.error_len().is_some()),
        ),
        _ => None,
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn utf8_validator_over_any_split_agrees_with_std(
        bytes in utf8ish(),
        mut cuts in prop::collection::vec(0usize..200, 0..8),
    ) {
        for c in cuts.iter_mut() {
            *c = (*c).min(bytes.len());
        }
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();

        let std_result = std::str::from_utf8(&bytes);
        let certain = first_certain_error(&bytes);
        let mut v = Validator::new();
        let mut failed_at = None;
        for w in cuts.windows(2) {
            if let Err(e) = v.feed(&bytes[w[0]..w[1]]) {
                failed_at = Some((w[0], w[1], e));
                break;
            }
        }
        match (failed_at, certain) {
            (Some((start, end, e)), Some(n)) => {
                // Fail fast: in the very piece that made the input certainly invalid.
                prop_assert!(start < n && n <= end,
                    "failed in piece {}..{}, certain after {} bytes", start, end, n);
                prop_assert_eq!(e.valid_up_to, std_result.unwrap_err().valid_up_to() as u64);
            }
            (Some((start, end, _)), None) => {
                prop_assert!(false, "feed failed in {}..{} on input std only finds truncated or valid", start, end);
            }
            (None, Some(n)) => prop_assert!(false, "no feed failed, std certain after {}", n),
            (None, None) => {
                let finished = v.finish();
                prop_assert_eq!(finished.is_ok(), std_result.is_ok());
                prop_assert_eq!(v.is_complete(), std_result.is_ok());
                if let (Err(e), Err(std_e)) = (finished, std_result) {
                    prop_assert_eq!(e.valid_up_to, std_e.valid_up_to() as u64);
                }
            }
        }
    }

    #[test]
    fn utf8_validator_byte_by_byte_agrees_with_std(bytes in utf8ish()) {
        let mut v = Validator::new();
        let ok = bytes.iter().all(|b| v.feed(std::slice::from_ref(b)).is_ok()) && v.finish().is_ok();
        prop_assert_eq!(ok, std::str::from_utf8(&bytes).is_ok());
    }
}

// ---------------------------------------------------------------------------
// Whole connections.

/// A deterministic generator for bulky payloads: generating 70 KB through
/// proptest byte by byte would be slow in debug mode and hard to shrink.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const PALETTE: [char; 14] = [
    'a',
    'Z',
    ' ',
    '~',
    'é',
    'ß',
    '\u{7FF}',
    '\u{800}',
    '€',
    'κ',
    '\u{FFFF}',
    '😀',
    '\u{10000}',
    '\u{10FFFF}',
];

fn make_payload(text: bool, len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    if text {
        let mut s = String::with_capacity(len + 4);
        while s.len() < len {
            s.push(PALETTE[(rng.next() % PALETTE.len() as u64) as usize]);
        }
        s.into_bytes()
    } else {
        (0..len).map(|_| rng.next() as u8).collect()
    }
}

/// What the sender does: a data message, maybe fragmented, or a control frame.
#[derive(Debug, Clone)]
enum Item {
    Data {
        text: bool,
        len: usize,
        seed: u64,
        /// `None`: one frame via `send`. `Some(plan)`: a fragment of (at most)
        /// each size, each maybe followed by a ping, then the rest with FIN.
        fragments: Option<Vec<(usize, Option<Vec<u8>>)>>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn control_payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=125)
}

fn item() -> impl Strategy<Value = Item> {
    let len = prop_oneof![4 => 0usize..20, 3 => 0usize..400, 1 => 0usize..=70_000];
    let fragment = (
        prop_oneof![0usize..8, 0usize..200, 0usize..5_000],
        proptest::option::of(prop::collection::vec(any::<u8>(), 0..10)),
    );
    prop_oneof![
        6 => (
            any::<bool>(),
            len,
            any::<u64>(),
            proptest::option::of(prop::collection::vec(fragment, 0..6)),
        )
            .prop_map(|(text, len, seed, fragments)| Item::Data { text, len, seed, fragments }),
        1 => control_payload().prop_map(Item::Ping),
        1 => control_payload().prop_map(Item::Pong),
    ]
}

fn closing() -> impl Strategy<Value = Option<(u16, String)>> {
    proptest::option::of((
        prop::sample::select(vec![
            1000u16, 1001, 1002, 1003, 1007, 1008, 1011, 3000, 4999,
        ]),
        "[a-zé😀 ]{0,20}",
    ))
}

/// Encodes the items with `sender` and returns the wire bytes and the
/// messages the receiving side must deliver, in order.
fn encode(
    sender: &mut Connection,
    items: &[Item],
    close: &Option<(u16, String)>,
) -> (Vec<u8>, Vec<Message>) {
    let mut expected = Vec::new();
    for item in items {
        match item {
            Item::Ping(p) => {
                sender.send(&Message::Ping(p.clone())).unwrap();
                expected.push(Message::Ping(p.clone()));
            }
            Item::Pong(p) => {
                sender.send(&Message::Pong(p.clone())).unwrap();
                expected.push(Message::Pong(p.clone()));
            }
            Item::Data {
                text,
                len,
                seed,
                fragments,
            } => {
                let payload = make_payload(*text, *len, *seed);
                let message = if *text {
                    Message::Text(String::from_utf8(payload.clone()).unwrap())
                } else {
                    Message::Binary(payload.clone())
                };
                match fragments {
                    None => sender.send(&message).unwrap(),
                    Some(plan) => {
                        let mut rest = payload.as_slice();
                        let mut opcode = if *text { OpCode::Text } else { OpCode::Binary };
                        for (size, ping) in plan {
                            // Fragment boundaries may fall inside a code point.
                            let n = (*size).min(rest.len());
                            sender.send_frame(opcode, &rest[..n], false).unwrap();
                            rest = &rest[n..];
                            opcode = OpCode::Continuation;
                            if let Some(p) = ping {
                                sender.send(&Message::Ping(p.clone())).unwrap();
                                expected.push(Message::Ping(p.clone()));
                            }
                        }
                        sender.send_frame(opcode, rest, true).unwrap();
                    }
                }
                expected.push(message);
            }
        }
    }
    if let Some((code, reason)) = close {
        sender.close(CloseCode(*code), reason).unwrap();
        expected.push(Message::Close(Some(CloseFrame {
            code: CloseCode(*code),
            reason: reason.clone(),
        })));
    }
    (sender.take_data_to_send(), expected)
}

/// Feeds `bytes` in pieces of the given sizes (cycled) and returns the
/// messages and the first error.
fn feed_chunked(
    conn: &mut Connection,
    bytes: &[u8],
    sizes: &[usize],
) -> (Vec<Message>, Option<Error>) {
    let mut messages = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let mut piece = &rest[..n];
        rest = &rest[n..];
        while !piece.is_empty() {
            match conn.receive(piece) {
                Ok(r) => {
                    assert!(r.consumed <= piece.len(), "consumed past the input");
                    piece = &piece[r.consumed..];
                    match r.message {
                        Some(m) => messages.push(m),
                        None => assert!(piece.is_empty(), "stalled with input left"),
                    }
                }
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
}

fn feed_whole(conn: &mut Connection, bytes: &[u8]) -> (Vec<Message>, Option<Error>) {
    let mut messages = Vec::new();
    for item in conn.feed(bytes) {
        match item {
            Ok(m) => messages.push(m),
            Err(e) => return (messages, Some(e)),
        }
    }
    (messages, None)
}

/// Frames in a connection's output as (fin, opcode, masked, unmasked payload).
fn decode_frames(mut bytes: &[u8]) -> Vec<(bool, u8, bool, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (b0, b1) = (bytes[0], bytes[1]);
        let mut at = 2;
        let len = match b1 & 0x7F {
            126 => {
                at += 2;
                usize::from(u16::from_be_bytes([bytes[2], bytes[3]]))
            }
            127 => {
                at += 8;
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize
            }
            n => usize::from(n),
        };
        let key = if b1 & 0x80 != 0 {
            at += 4;
            Some([bytes[at - 4], bytes[at - 3], bytes[at - 2], bytes[at - 1]])
        } else {
            None
        };
        let mut payload = bytes[at..at + len].to_vec();
        if let Some(k) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        frames.push((b0 & 0x80 != 0, b0 & 0x0F, key.is_some(), payload));
        bytes = &bytes[at + len..];
    }
    frames
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..300, 1usize..30_000], 1..12)
}

fn round_trip(
    sender_role: Role,
    items: &[Item],
    close: &Option<(u16, String)>,
    sizes: &[usize],
) -> Result<(), TestCaseError> {
    let receiver_role = match sender_role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut sender = Connection::new(sender_role, SizeLimits::default());
    let (wire, expected) = encode(&mut sender, items, close);
    for (_, _, masked, _) in decode_frames(&wire) {
        prop_assert_eq!(masked, sender_role == Role::Client);
    }

    let mut whole = Connection::new(receiver_role, SizeLimits::default());
    let (whole_messages, err) = feed_whole(&mut whole, &wire);
    prop_assert!(err.is_none(), "error {:?}", err);
    prop_assert_eq!(&whole_messages, &expected);

    let mut chunked = Connection::new(receiver_role, SizeLimits::default());
    let (chunked_messages, err) = feed_chunked(&mut chunked, &wire, sizes);
    prop_assert!(err.is_none(), "error {:?}", err);
    prop_assert_eq!(&chunked_messages, &whole_messages);

    // The automatic replies (pongs, close echo) do not depend on chunking either.
    let replies_whole = decode_frames(whole.data_to_send());
    let replies_chunked = decode_frames(chunked.data_to_send());
    prop_assert_eq!(&replies_whole, &replies_chunked);
    let pings = expected
        .iter()
        .filter(|m| matches!(m, Message::Ping(_)))
        .count();
    let closes = usize::from(close.is_some());
    prop_assert_eq!(replies_whole.len(), pings + closes);
    for (_, _, masked, _) in &replies_whole {
        prop_assert_eq!(*masked, receiver_role == Role::Client);
    }
    let expected_state = if close.is_some() {
        State::Closed
    } else {
        State::Open
    };
    prop_assert_eq!(whole.state(), expected_state);
    prop_assert_eq!(chunked.state(), expected_state);
    Ok(())
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn client_to_server_stream_decodes_the_same_in_any_chunking(
        items in prop::collection::vec(item(), 0..8),
        close in closing(),
        sizes in chunk_sizes(),
    ) {
        round_trip(Role::Client, &items, &close, &sizes)?;
    }

    #[test]
    fn server_to_client_stream_decodes_the_same_in_any_chunking(
        items in prop::collection::vec(item(), 0..8),
        close in closing(),
        sizes in chunk_sizes(),
    ) {
        round_trip(Role::Server, &items, &close, &sizes)?;
    }
}

// ---------------------------------------------------------------------------
// Hostile input: never a panic, always a precise close code.

/// Small limits so that the 1009 paths are reachable by random input.
fn fuzz_config() -> SizeLimits {
    SizeLimits::default()
        .max_frame_size(512)
        .max_message_size(2048)
}

type Outcome = (Vec<Message>, Option<ProtocolError>);

/// Feeds `bytes` in the given chunking and checks every invariant on the way.
fn feed_hostile(role: Role, bytes: &[u8], sizes: &[usize]) -> Result<Outcome, TestCaseError> {
    let mut conn = Connection::new(role, fuzz_config());
    let (messages, err) = feed_chunked(&mut conn, bytes, sizes);
    for m in &messages {
        match m {
            Message::Ping(p) | Message::Pong(p) => prop_assert!(p.len() <= 125),
            Message::Binary(d) => prop_assert!(d.len() <= 2048),
            Message::Text(t) => prop_assert!(t.len() <= 2048),
            Message::Close(Some(c)) => {
                prop_assert!(c.code.is_valid_on_wire());
                prop_assert!(c.reason.len() <= 123);
            }
            Message::Close(None) => {}
        }
    }
    let closed_by_peer = messages.iter().any(|m| matches!(m, Message::Close(_)));
    if closed_by_peer {
        prop_assert!(
            matches!(messages.last(), Some(Message::Close(_))),
            "nothing after close"
        );
    }
    let frames = decode_frames(conn.data_to_send());
    for (_, _, masked, _) in &frames {
        prop_assert_eq!(*masked, role == Role::Client);
    }
    match err {
        None => {
            let state = if closed_by_peer {
                State::Closed
            } else {
                State::Open
            };
            prop_assert_eq!(conn.state(), state);
            Ok((messages, None))
        }
        Some(Error::Protocol(e)) => {
            prop_assert!(!closed_by_peer, "error after a close frame: {:?}", e);
            let code = e.close_code().0;
            prop_assert!(matches!(code, 1002 | 1007 | 1009), "code {}", code);
            let expected_code = match e {
                ProtocolError::InvalidUtf8 | ProtocolError::InvalidUtf8InCloseReason => 1007,
                ProtocolError::FrameTooBig | ProtocolError::MessageTooBig => 1009,
                _ => 1002,
            };
            prop_assert_eq!(code, expected_code);
            prop_assert_eq!(conn.state(), State::Failed);
            let last = frames.last();
            prop_assert!(last.is_some(), "no close frame queued for {:?}", e);
            let (fin, opcode, _, payload) = last.unwrap();
            prop_assert!(*fin);
            prop_assert_eq!(*opcode, 0x8);
            prop_assert!(payload.len() >= 2 && payload.len() <= 125);
            prop_assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
            prop_assert_eq!(frames.iter().filter(|f| f.1 == 0x8).count(), 1);
            prop_assert!(matches!(
                conn.receive(b"\x81\x00"),
                Err(Error::AlreadyClosed)
            ));
            Ok((messages, Some(e)))
        }
        Some(other) => {
            prop_assert!(false, "not a protocol error: {:?}", other);
            unreachable!()
        }
    }
}

/// A valid stream towards `role`, then a few bytes changed: reaches far
/// deeper into the state machine than uniformly random bytes.
fn mutated_stream(role: Role) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(item(), 0..6),
        closing(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        any::<bool>(),
        any::<[u8; 4]>(),
    )
        .prop_map(move |(items, close, flips, cut, truncate, key)| {
            // Keep the data small enough for the fuzz limits to matter both ways.
            let items: Vec<Item> = items
                .into_iter()
                .map(|i| match i {
                    Item::Data {
                        text,
                        len,
                        seed,
                        fragments,
                    } => Item::Data {
                        text,
                        len: len % 3000,
                        seed,
                        fragments,
                    },
                    other => other,
                })
                .collect();
            // Encode unmasked (deterministic), then mask with a chosen key
            // when the receiver is a server: client keys are random.
            let mut sender = Connection::new(Role::Server, SizeLimits::default());
            let (wire, _) = encode(&mut sender, &items, &close);
            let mut wire = match role {
                Role::Client => wire,
                Role::Server => remask(&wire, key),
            };
            if !wire.is_empty() {
                for (at, x) in flips {
                    let i = at.index(wire.len());
                    wire[i] ^= x;
                }
                if truncate {
                    wire.truncate(cut.index(wire.len() + 1));
                }
            }
            wire
        })
}

/// Re-encodes unmasked frames as masked ones, as a client would send them.
fn remask(wire: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    for (fin, opcode, _, payload) in decode_frames(wire) {
        let mut h = FrameHeader::new(OpCode::from_u4(opcode).unwrap(), payload.len() as u64);
        h.fin = fin;
        h.mask = Some(key);
        out.extend_from_slice(h.encode().as_bytes());
        let start = out.len();
        out.extend_from_slice(&payload);
        apply_mask(&mut out[start..], key);
    }
    out
}

fn hostile_bytes(role: Role) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2000),
        mutated_stream(role),
    ]
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn arbitrary_bytes_to_a_server_never_panic_and_fail_with_a_precise_code(
        bytes in hostile_bytes(Role::Server),
        sizes in chunk_sizes(),
    ) {
        let chunked = feed_hostile(Role::Server, &bytes, &sizes)?;
        let whole = feed_hostile(Role::Server, &bytes, &[usize::MAX])?;
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn arbitrary_bytes_to_a_client_never_panic_and_fail_with_a_precise_code(
        bytes in hostile_bytes(Role::Client),
        sizes in chunk_sizes(),
    ) {
        let chunked = feed_hostile(Role::Client, &bytes, &sizes)?;
        let whole = feed_hostile(Role::Client, &bytes, &[usize::MAX])?;
        prop_assert_eq!(chunked, whole);
    }
}
