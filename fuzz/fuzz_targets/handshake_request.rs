//! `parse_request` on arbitrary bytes, then `server::accept` on what parses.
//!
//! Properties:
//! - no panic;
//! - a parsed head is the first `n` bytes, and parsing just those bytes gives
//!   the same head (the bytes after it are the client's first frames);
//! - with small limits, "incomplete" is never the answer once more than
//!   `max_head` bytes are buffered (a peer cannot make a server buffer
//!   without bound);
//! - `accept` never panics, and whatever the server answers (the `101`, the
//!   rejection of the request, or the rejection of a malformed head) parses
//!   with `parse_response` as one complete head with the status it claims;
//!   a `101` carries the accept value for the request's key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::accept_key;
use rfc6455::handshake::http::{parse_request, parse_response, Limits};
use rfc6455::handshake::server::{accept, AcceptOptions, Rejection};

fuzz_target!(|data: &[u8]| {
    // Small caps, so the fuzzer reaches them with short inputs.
    let small = Limits::default().max_head(512).max_line(256).max_headers(8);
    if let Ok(None) = parse_request(data, &small) {
        assert!(data.len() <= 512, "{} bytes still incomplete", data.len());
    }

    let parsed = match parse_request(data, &Limits::default()) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return,
        Err(e) => {
            let status = e.status();
            answer_parses(&Rejection::from_http_error(&e).to_bytes(), status);
            return;
        }
    };
    let (request, n) = parsed;
    assert!(n <= data.len());
    assert_eq!(
        parse_request(&data[..n], &Limits::default()),
        Ok(Some((request.clone(), n)))
    );

    let options = [
        AcceptOptions::default(),
        AcceptOptions::default().subprotocols(["chat", "superchat"]),
    ];
    for options in &options {
        match accept(&request, options) {
            Ok(accepted) => {
                let response = answer_parses(&accepted.response, 101);
                let key = request
                    .headers
                    .get("sec-websocket-key")
                    .expect("accepted without a key");
                assert_eq!(
                    response.headers.get("sec-websocket-accept"),
                    Some(accept_key(key.as_bytes()).as_str())
                );
            }
            Err(rejection) => {
                assert!((400..600).contains(&rejection.status), "{rejection:?}");
                answer_parses(&rejection.to_bytes(), rejection.status);
            }
        }
    }
});

/// The server's answer is one complete response head with `status`.
fn answer_parses(bytes: &[u8], status: u16) -> rfc6455::handshake::http::Response {
    match parse_response(bytes, &Limits::default()) {
        Ok(Some((response, n))) => {
            assert_eq!(response.status, status);
            assert!(n <= bytes.len());
            response
        }
        other => panic!(
            "our answer does not parse: {other:?}\n{}",
            String::from_utf8_lossy(bytes)
        ),
    }
}
