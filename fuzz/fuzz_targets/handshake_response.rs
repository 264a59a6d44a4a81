//! `parse_response` on arbitrary bytes, then `verify_response` against a
//! fixed client request (offering `chat` and `superchat`).
//!
//! The request's key is random (there is no public way to fix it), so the
//! input's occurrences of the RFC 6455 §1.3 sample accept value
//! `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=` are replaced with the value this request
//! expects before parsing: seeds and fuzzed inputs can then reach the
//! success path, and a crash reproduces on any run.
//!
//! Properties:
//! - no panic;
//! - a parsed head is the first `n` bytes, and parsing those alone agrees;
//! - with small limits, "incomplete" is never the answer past `max_head`;
//! - `verify_response` accepts only a `101` whose single
//!   `Sec-WebSocket-Accept` is the expected value, and returns a subprotocol
//!   only if it was offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::client::{build_request, verify_response, ClientRequest, RequestOptions};
use rfc6455::handshake::http::{parse_response, Limits};
use std::sync::OnceLock;

const SAMPLE_ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn request() -> &'static ClientRequest {
    static REQUEST: OnceLock<ClientRequest> = OnceLock::new();
    REQUEST.get_or_init(|| {
        let offered = ["chat".to_owned(), "superchat".to_owned()];
        build_request(&RequestOptions::new("server.example.com", "/chat").subprotocols(&offered))
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let request = request();
    let expected = request.expected_accept().as_bytes();
    assert_eq!(expected.len(), SAMPLE_ACCEPT.len());
    let mut input = data.to_vec();
    let mut i = 0;
    while i + SAMPLE_ACCEPT.len() <= input.len() {
        if &input[i..i + SAMPLE_ACCEPT.len()] == SAMPLE_ACCEPT {
            input[i..i + SAMPLE_ACCEPT.len()].copy_from_slice(expected);
            i += SAMPLE_ACCEPT.len();
        } else {
            i += 1;
        }
    }
    let data = &input[..];

    let small = Limits::default().max_head(512).max_line(256).max_headers(8);
    if let Ok(None) = parse_response(data, &small) {
        assert!(data.len() <= 512, "{} bytes still incomplete", data.len());
    }

    let Ok(Some((response, n))) = parse_response(data, &Limits::default()) else {
        return;
    };
    assert!(n <= data.len());
    assert_eq!(
        parse_response(&data[..n], &Limits::default()),
        Ok(Some((response.clone(), n)))
    );

    if let Ok(negotiated) = verify_response(&response, request) {
        assert_eq!(response.status, 101);
        let accepts: Vec<&str> = response.headers.get_all("sec-websocket-accept").collect();
        assert_eq!(accepts, [request.expected_accept()]);
        assert!(negotiated.extensions.is_empty(), "no extension was offered");
        if let Some(p) = negotiated.subprotocol {
            assert!(request.subprotocols().contains(&p), "{p:?} was not offered");
        }
    }
});
