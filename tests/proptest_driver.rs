//! The three receive paths agree: for any frame sequence and any read
//! chunking, `Connection::receive` (owned), `Connection::receive_in_place`
//! and the blocking `WebSocket::read` over an in-memory stream deliver the
//! same messages and send the same bytes (pongs, close replies, echoes,
//! failure close frames). Some frames are 16-100 KiB, so the driver's
//! direct payload reads (`Incoming::payload_space`) run too.
//!
//! The stream, the frame encoder and the checks are the fuzz target
//! `websocket_driver`'s, shared with it (see `fuzz/src/driver.rs`).

#[path = "../fuzz/src/driver.rs"]
mod driver;

use driver::{
    check, Echo, End, Fill, FrameSpec, Script, BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rfc6455::frame::Role;
use rfc6455::protocol::SizeLimits;

/// A data message: (is text, fragments), each fragment a length and maybe a
/// control frame sent right after it (RFC 6455 §5.4: control frames may be
/// injected in the middle of a fragmented message).
type DataMessage = (bool, Vec<(usize, Option<Control>)>);
/// A ping (true) or pong with a payload length and seed.
type Control = (bool, usize, u64);

/// Mostly small payloads, one in ten at 16-100 KiB: large enough for the
/// driver to read the payload straight into the message, rare enough that a
/// case stays fast in debug builds.
fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..126, 3 => 126usize..3000, 1 => 16_384usize..100_000]
}

fn control() -> impl Strategy<Value = Control> {
    (any::<bool>(), 0usize..=125, any::<u64>())
}

fn data_message() -> impl Strategy<Value = DataMessage> {
    (
        any::<bool>(),
        prop::collection::vec(
            (payload_len(), proptest::option::weighted(0.2, control())),
            1..4,
        ),
    )
}

/// One thing to get wrong in one frame, so that every failure path (and the
/// close frame each sends) is compared too.
#[derive(Debug, Clone)]
enum Mistake {
    Rsv,
    WrongMask,
    /// A 0xFF byte at this offset: invalid UTF-8 in text or a close reason.
    Corrupt(usize),
    /// Random bytes instead of the text.
    Noise(u64),
    /// Any opcode: reserved, or out of sequence.
    Opcode(u8),
    FlipFin,
    /// A length over 125 makes a control frame too big.
    Len(usize),
}

fn mistake() -> impl Strategy<Value = Mistake> {
    prop_oneof![
        Just(Mistake::Rsv),
        Just(Mistake::WrongMask),
        any::<usize>().prop_map(Mistake::Corrupt),
        any::<u64>().prop_map(Mistake::Noise),
        (0u8..16).prop_map(Mistake::Opcode),
        Just(Mistake::FlipFin),
        (0usize..300).prop_map(Mistake::Len),
    ]
}

fn frame(opcode: u8, fin: bool, len: usize, fill: Fill, key: u64) -> FrameSpec {
    FrameSpec {
        opcode,
        fin,
        rsv: 0,
        wrong_mask: false,
        len,
        fill,
        corrupt: None,
        key: (key as u32).to_le_bytes(),
    }
}

/// The peer's frames: data messages (maybe fragmented, with control frames
/// in between), maybe a close frame (valid code or not), maybe one mistake.
fn frames() -> impl Strategy<Value = Vec<FrameSpec>> {
    (
        prop::collection::vec(data_message(), 0..5),
        proptest::option::weighted(
            0.4,
            (
                prop::sample::select(vec![1000u16, 1001, 1003, 1011, 3000, 4999, 1005, 999]),
                0usize..40,
            ),
        ),
        proptest::option::weighted(0.4, (any::<prop::sample::Index>(), mistake())),
        any::<u64>(),
    )
        .prop_map(|(messages, close, mistake, key)| {
            let mut frames = Vec::new();
            for (text, fragments) in messages {
                let last = fragments.len() - 1;
                for (i, (len, control)) in fragments.into_iter().enumerate() {
                    let opcode = match (i, text) {
                        (0, true) => TEXT,
                        (0, false) => BINARY,
                        _ => CONTINUATION,
                    };
                    let fill = if text {
                        Fill::Text
                    } else {
                        Fill::Bytes(key ^ len as u64)
                    };
                    frames.push(frame(opcode, i == last, len, fill, key));
                    if let Some((ping, len, seed)) = control {
                        let opcode = if ping { PING } else { PONG };
                        frames.push(frame(opcode, true, len, Fill::Bytes(seed), key));
                    }
                }
            }
            if let Some((code, len)) = close {
                // Lengths 0 and 1: no code, and a 1-byte body (an error).
                frames.push(frame(CLOSE, true, len, Fill::Close(code), key));
            }
            if let (Some((at, mistake)), false) = (mistake, frames.is_empty()) {
                let i = at.index(frames.len());
                let f = &mut frames[i];
                match mistake {
                    Mistake::Rsv => f.rsv = 4,
                    Mistake::WrongMask => f.wrong_mask = true,
                    Mistake::Corrupt(at) => f.corrupt = Some(at),
                    Mistake::Noise(seed) => f.fill = Fill::Bytes(seed),
                    Mistake::Opcode(op) => f.opcode = op,
                    Mistake::FlipFin => f.fin = !f.fin,
                    Mistake::Len(len) => f.len = len,
                }
            }
            frames
        })
}

/// Mostly the default limits; sometimes limits that large frames or
/// messages cross (1009 from every path).
fn limits() -> impl Strategy<Value = SizeLimits> {
    prop_oneof![
        3 => Just(SizeLimits::default()),
        1 => (
            prop::sample::select(vec![100usize, 1000, 20_000, 70_000]),
            1usize..3,
        )
            .prop_map(|(frame, k)| SizeLimits::default()
                .max_frame_size(frame)
                .max_message_size(frame * k)),
    ]
}

/// Read sizes, cycled: 0 (as much as the driver asks), up to a few hundred
/// bytes (headers and UTF-8 split at every offset), or tens of KiB.
///
/// The cycle always ends with a large read: the driver zero-fills its
/// direct-read space (64 KiB or more) on every read, so a 100 KiB frame
/// read only a few bytes at a time costs seconds in a debug build. The fuzz
/// target, built optimized, covers cycles of small reads only.
fn reads() -> impl Strategy<Value = Vec<usize>> {
    (
        prop::collection::vec(prop_oneof![Just(0usize), 1usize..300, 1usize..40_000], 0..5),
        prop_oneof![Just(0usize), 4096usize..40_000],
    )
        .prop_map(|(mut reads, large)| {
            reads.push(large);
            reads
        })
}

fn script(role: Role) -> impl Strategy<Value = Script> {
    (
        frames(),
        limits(),
        reads(),
        prop_oneof![3 => Just(0usize), 1 => 0usize..200],
        any::<bool>(),
        prop_oneof![Just(0usize), 1usize..50, 1usize..5000],
        any::<bool>(),
        proptest::bool::weighted(0.15),
        prop::sample::select(vec![Echo::Off, Echo::Write, Echo::Send]),
    )
        .prop_map(
            move |(
                frames,
                config,
                reads,
                leftover,
                interrupt,
                max_write,
                reset,
                close_first,
                echo,
            )| {
                Script {
                    role,
                    config,
                    wire: driver::encode(role, &frames),
                    reads,
                    leftover,
                    interrupt,
                    max_write,
                    end: if reset { End::Reset } else { End::Eof },
                    close_first,
                    echo,
                }
            },
        )
}

/// Enough cases to mix every switch many times; few enough that the file
/// runs in about a second in a debug build, large payloads included. No
/// regression files are written into the source tree.
fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn server_driver_in_place_and_owned_paths_agree(script in script(Role::Server)) {
        check(&script);
    }

    #[test]
    fn client_driver_in_place_and_owned_paths_agree(script in script(Role::Client)) {
        check(&script);
    }
}
