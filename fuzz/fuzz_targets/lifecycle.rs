//! A server connection's whole life in the core (`protocol::Lifecycle`): the
//! upgrade request fed in chunks of a size the input picks, the decision
//! (`accept`), frames, time passing between chunks, then time run forward.
//!
//! Properties:
//! - no panic;
//! - the handshake buffers at most `max_head` + 1 bytes, and the request it
//!   returns is the one `parse_request` finds in the same bytes at once,
//!   whatever the chunking;
//! - what the server sends starts with one complete HTTP response head;
//! - every connection ends: with keepalive on, each phase has a deadline,
//!   and running time forward through them reaches `Phase::Done` in a few
//!   steps (no state waits forever).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::http::{parse_request, parse_response, Limits};
use rfc6455::handshake::server::{accept, AcceptOptions};
use rfc6455::protocol::{Lifecycle, Phase, WebSocketConfig};
use rfc6455::Keepalive;
use std::time::{Duration, Instant};

const MAX_HEAD: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(first % 64) + 1;
    let limits = Limits::default()
        .max_head(MAX_HEAD)
        .max_line(256)
        .max_headers(8);
    let second = Duration::from_secs(1);
    let config = WebSocketConfig::default().keepalive(Some(Keepalive::new(second, second)));
    let mut now = Instant::now();
    let mut life = Lifecycle::server(limits.clone(), 10 * second, &config, Some(5 * second), now);
    let mut sent = Vec::new();
    let mut fed = 0;
    for chunk in input.chunks(step) {
        let mut rest: Vec<u8> = chunk.to_vec();
        if let Some(handshake) = life.handshake_mut() {
            let (used, request) = match handshake.receive_data(&rest) {
                Ok(found) => found,
                Err(e) => {
                    life.head_failed(&e, now);
                    (rest.len(), None)
                }
            };
            fed += used;
            if let Some(handshake) = life.handshake_mut() {
                assert!(handshake.space().len() + fed <= MAX_HEAD + 1 || request.is_some());
            }
            if let Some(request) = request {
                let Ok(Some((whole, _))) = parse_request(&input[..fed], &limits) else {
                    panic!("the chunked head parsed, the whole one did not");
                };
                assert_eq!(whole, request);
                match accept(&request, &AcceptOptions::default()) {
                    Ok(accepted) => {
                        let mut leftover = life.accept(&accepted, &config, now);
                        leftover.extend_from_slice(&rest[used..]);
                        rest = leftover;
                    }
                    Err(rejection) => life.refuse(rejection.to_bytes(), now),
                }
            }
        }
        if let Some(conn) = life.connection_mut() {
            let mut at = 0;
            while at < rest.len() {
                match conn.receive_with(&mut rest[at..], |message, out| {
                    if message.is_data() {
                        let _ = out.encode_message_ref(message);
                    }
                }) {
                    Ok((0, _)) | Err(_) => break,
                    Ok((used, _)) => at += used,
                }
            }
        } else if life.phase() == Phase::Closing {
            life.drained(now);
        }
        write_out(&mut life, &mut sent, now);
        now += Duration::from_millis(u64::from(chunk[0]) * 10);
        if life.deadline().is_some_and(|d| now >= d) {
            let _ = life.handle_timeout(now);
        }
        life.settle(now);
    }
    // Time runs forward: every phase has a deadline, and each ends it.
    for _ in 0..16 {
        let Some(deadline) = life.deadline() else {
            break;
        };
        now = now.max(deadline);
        let _ = life.handle_timeout(now);
        life.settle(now);
        write_out(&mut life, &mut sent, now);
    }
    assert_eq!(life.phase(), Phase::Done, "a connection that never ends");
    if !sent.is_empty() {
        assert!(
            matches!(parse_response(&sent, &Limits::default()), Ok(Some(_))),
            "{:?}",
            String::from_utf8_lossy(&sent[..sent.len().min(200)])
        );
    }
});

/// Everything the lifecycle has to send is "written"; FIN when it says so.
fn write_out(life: &mut Lifecycle, sent: &mut Vec<u8>, now: Instant) {
    let n = life.data_to_send().len();
    sent.extend_from_slice(life.data_to_send());
    life.advance(n);
    if life.fin_due() {
        life.fin_sent(now);
    }
}
