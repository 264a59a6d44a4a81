//! A whole connection with permessage-deflate negotiated, fed arbitrary
//! bytes in arbitrary chunks, with small limits, echoing what it receives
//! (so the encoder runs too).
//!
//! Input: byte 0 picks the role and the negotiated answer (context takeover
//! or not, window bits 9 to 15), byte 1 the chunk size; the rest is the wire.
//!
//! Checks:
//! - never a panic, never memory past the limits (libFuzzer's RSS limit);
//! - every error is a protocol error whose close code is 1002, 1007 (bad
//!   UTF-8 or bad compressed data) or 1009 (a frame or an inflated message
//!   past its limit, an inflate bomb);
//! - every message received is within `max_message_size`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::frame::Role;
use rfc6455::handshake::extensions::parse;
use rfc6455::handshake::Negotiated;
use rfc6455::protocol::{deflate, Connection, SizeLimits};
use rfc6455::Error;

const ANSWERS: [&str; 6] = [
    "permessage-deflate",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
    "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
    "permessage-deflate; client_max_window_bits=15",
    "permessage-deflate; server_max_window_bits=8",
];

const MAX_MESSAGE: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let [setup, chunk, wire @ ..] = data else {
        return;
    };
    let role = if setup & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let answer = ANSWERS[usize::from(setup >> 1) % ANSWERS.len()];
    let mut negotiated = Negotiated::default();
    negotiated.extensions = parse([answer]).expect("a valid answer");
    let Some((decoder, encoder)) = deflate::from_negotiated(role, &negotiated, None) else {
        return;
    };
    let limits = SizeLimits::default()
        .max_frame_size(4096)
        .max_message_size(MAX_MESSAGE);
    let mut conn = Connection::new(role, limits);
    conn.add_extension(decoder, encoder);
    let chunk = usize::from(*chunk % 64) + 1;
    for part in wire.chunks(chunk) {
        let got: Vec<_> = conn.feed(part).collect();
        for message in got {
            match message {
                Ok(message) => {
                    assert!(message.len() <= MAX_MESSAGE, "{} bytes", message.len());
                    if message.is_data() {
                        // The echo goes through the encoder; after a close it
                        // is refused, which is fine.
                        let _ = conn.send(&message);
                    }
                }
                Err(Error::Protocol(e)) => {
                    let code = e.close_code().0;
                    assert!(
                        matches!(code, 1002 | 1007 | 1009),
                        "{e:?} closes with {code}"
                    );
                    return;
                }
                Err(other) => panic!("not a protocol error: {other:?}"),
            }
        }
        conn.take_data_to_send();
    }
});
