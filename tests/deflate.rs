//! permessage-deflate (RFC 7692): negotiation cases, hostile input (each test
//! named after its case) and a loopback echo with compression checked on the
//! wire. Only built with `--features deflate`.
#![cfg(feature = "deflate")]

mod common;

use flate2::{Compress, Compression, FlushCompress};
use rfc6455::frame::{CloseCode, Role};
use rfc6455::handshake::extensions::{negotiate, parse, verify_answer, write, AnswerError};
use rfc6455::handshake::{
    accept, build_request, parse_request, parse_response, verify_response, AcceptOptions,
    DeflateConfig, HandshakeError, Limits, Negotiated, RequestOptions,
};
use rfc6455::protocol::{deflate, Connection, Message, SizeLimits, State};
use rfc6455::ProtocolError;

// ---------------------------------------------------------------------------
// Helpers: server frames built by hand (unmasked), compressed with flate2
// directly so the crate's encoder does not check itself.

/// An unmasked frame with any payload length.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n < 65536 => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Raw DEFLATE of `data` with a sync flush and the tail removed (RFC 7692
/// §7.2.1), from a fresh compressor.
fn compressed(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let mut input = data;
    loop {
        let before = c.total_in();
        c.compress_vec(input, &mut out, FlushCompress::Sync)
            .unwrap();
        input = &input[(c.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn negotiated(answer: &str) -> Negotiated {
    let mut n = Negotiated::default();
    n.extensions = parse([answer]).unwrap();
    n
}

/// A client connection with permessage-deflate installed from `answer`.
fn client(answer: &str, config: SizeLimits) -> Connection {
    let mut conn = Connection::new(Role::Client, config);
    let (d, e) = deflate::from_negotiated(Role::Client, &negotiated(answer), None).unwrap();
    conn.add_extension(d, e);
    conn
}

fn received(conn: &mut Connection, wire: &[u8]) -> Vec<Result<Message, ProtocolError>> {
    conn.feed(wire)
        .map(|m| {
            m.map_err(|e| match e {
                rfc6455::Error::Protocol(p) => p,
                other => panic!("unexpected {other}"),
            })
        })
        .collect()
}

/// The close code of the (masked, client) close frame the connection sent.
fn sent_close_code(conn: &Connection) -> u16 {
    let out = conn.data_to_send();
    assert_eq!(out[0], 0x88, "a close frame: {out:?}");
    let key = &out[2..6];
    u16::from_be_bytes([out[6] ^ key[0], out[7] ^ key[1]])
}

// ---------------------------------------------------------------------------
// Hostile input

#[test]
fn inflate_bomb_fails_with_1009_after_at_most_the_limit() {
    // 16 MiB of zeros compress to about 16 KiB; the limit is 64 KiB.
    let bomb = compressed(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 32 * 1024, "{}", bomb.len());
    let mut conn = client(
        "permessage-deflate",
        SizeLimits::default().max_message_size(64 << 10),
    );
    let got = received(&mut conn, &frame(0x80 | 0x40 | 0x2, &bomb));
    assert_eq!(got, [Err(ProtocolError::MessageTooBig)]);
    assert_eq!(conn.state(), State::Failed);
    assert_eq!(sent_close_code(&conn), 1009);
}

#[test]
fn inflate_bomb_split_over_fragments_fails_with_1009() {
    let bomb = compressed(&vec![b'a'; 8 << 20]);
    let mut conn = client(
        "permessage-deflate",
        SizeLimits::default().max_message_size(100_000),
    );
    let (a, b) = bomb.split_at(bomb.len() / 2);
    let mut wire = frame(0x40 | 0x1, a);
    wire.extend(frame(0x80, b));
    let got = received(&mut conn, &wire);
    assert_eq!(got, [Err(ProtocolError::MessageTooBig)]);
}

#[test]
fn rsv1_on_a_control_frame_with_deflate_is_1002() {
    let mut conn = client("permessage-deflate", SizeLimits::default());
    let got = received(&mut conn, &frame(0x80 | 0x40 | 0x9, b"ping"));
    assert_eq!(got, [Err(ProtocolError::ReservedBitsSet)]);
    assert_eq!(sent_close_code(&conn), 1002);
}

#[test]
fn rsv1_on_a_continuation_frame_with_deflate_is_1002() {
    let mut conn = client("permessage-deflate", SizeLimits::default());
    let data = compressed(b"hello hello hello");
    let mut wire = frame(0x40 | 0x1, &data[..4]);
    wire.extend(frame(0x80 | 0x40, &data[4..]));
    let got = received(&mut conn, &wire);
    assert_eq!(got, [Err(ProtocolError::ReservedBitsSet)]);
    assert_eq!(sent_close_code(&conn), 1002);
}

#[test]
fn rsv1_without_negotiation_is_1002() {
    let mut conn = Connection::new(Role::Client, SizeLimits::default());
    let got = received(&mut conn, &frame(0x80 | 0x40 | 0x1, &compressed(b"hello")));
    assert_eq!(got, [Err(ProtocolError::ReservedBitsSet)]);
    assert_eq!(sent_close_code(&conn), 1002);
}

#[test]
fn invalid_deflate_data_is_1007() {
    let mut conn = client("permessage-deflate", SizeLimits::default());
    // BTYPE 11 is reserved in RFC 1951: never valid DEFLATE.
    let got = received(&mut conn, &frame(0x80 | 0x40 | 0x2, &[0xff, 0xff, 0xff]));
    assert_eq!(got, [Err(ProtocolError::InvalidCompressedData)]);
    assert_eq!(
        ProtocolError::InvalidCompressedData.close_code(),
        CloseCode::INVALID_PAYLOAD
    );
    assert_eq!(sent_close_code(&conn), 1007);
}

#[test]
fn invalid_utf8_inside_compressed_text_is_1007() {
    let mut conn = client("permessage-deflate", SizeLimits::default());
    let got = received(
        &mut conn,
        &frame(0x80 | 0x40 | 0x1, &compressed(b"ok \xff no")),
    );
    assert_eq!(got, [Err(ProtocolError::InvalidUtf8)]);
    assert_eq!(sent_close_code(&conn), 1007);
}

// ---------------------------------------------------------------------------
// Receiving and sending

#[test]
fn fragmented_compressed_message_inflates_across_frames_with_a_ping_between() {
    let text = "fragmented and compressed, fragmented and compressed";
    let data = compressed(text.as_bytes());
    let mut conn = client("permessage-deflate", SizeLimits::default());
    let mut wire = frame(0x40 | 0x1, &data[..3]);
    wire.extend(frame(0x89, b"p"));
    wire.extend(frame(0x00, &data[3..7]));
    wire.extend(frame(0x80, &data[7..]));
    let got = received(&mut conn, &wire);
    assert_eq!(
        got,
        [
            Ok(Message::Ping(b"p".to_vec())),
            Ok(Message::Text(text.into()))
        ]
    );
}

#[test]
fn uncompressed_message_in_a_compressed_session_passes_through() {
    let mut conn = client("permessage-deflate", SizeLimits::default());
    let got = received(&mut conn, &frame(0x81, b"plain"));
    assert_eq!(got, [Ok(Message::Text("plain".into()))]);
}

#[test]
fn context_takeover_lets_the_peer_refer_to_earlier_messages() {
    // One compressor for two messages: the second is mostly a back-reference.
    let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let msg = b"{\"event\":\"tick\",\"symbol\":\"ACME\",\"price\":101.5}";
    let mut wire = Vec::new();
    for _ in 0..2 {
        let mut out = Vec::with_capacity(256);
        c.compress_vec(msg, &mut out, FlushCompress::Sync).unwrap();
        out.truncate(out.len() - 4);
        wire.extend(frame(0x80 | 0x40 | 0x1, &out));
    }
    let mut conn = client("permessage-deflate", SizeLimits::default());
    let text = String::from_utf8(msg.to_vec()).unwrap();
    let got = received(&mut conn, &wire);
    assert_eq!(
        got,
        [Ok(Message::Text(text.clone())), Ok(Message::Text(text))]
    );
}

#[test]
fn sent_messages_have_rsv1_and_round_trip() {
    let answer = "permessage-deflate; server_no_context_takeover; client_max_window_bits=10";
    let mut server = Connection::new(Role::Server, SizeLimits::default());
    let (d, e) = deflate::from_negotiated(Role::Server, &negotiated(answer), None).unwrap();
    server.add_extension(d, e);
    let mut client = client(answer, SizeLimits::default());
    let big: String = (0..50_000)
        .map(|i| ((i % 26) as u8 + b'a') as char)
        .collect();
    for text in ["", "", "x", "", "hello hello hello hello", big.as_str()] {
        server.send(&Message::Text(text.into())).unwrap();
        let wire = server.data_to_send().to_vec();
        server.advance(wire.len());
        assert_eq!(wire[0], 0x80 | 0x40 | 0x1, "RSV1 on {} bytes", text.len());
        let got = received(&mut client, &wire);
        assert_eq!(got, [Ok(Message::Text(text.into()))]);
    }
}

#[test]
fn context_takeover_on_more_connections_than_live_contexts_stays_exact() {
    // More connection pairs than the process keeps live compressors and
    // decompressors for: taking turns, each message finds its engines
    // evicted by the others and makes them again from its windows. Every
    // message must still round-trip, and a repeat must still be a
    // back-reference into the previous message (context takeover kept).
    let pairs = deflate::live_contexts() + 20;
    let answer = "permessage-deflate; client_max_window_bits=12; server_max_window_bits=12";
    let mut connections: Vec<(Connection, Connection)> = (0..pairs)
        .map(|_| {
            let mut server = Connection::new(Role::Server, SizeLimits::default());
            let config = DeflateConfig::default().min_size(0);
            let (d, e) =
                deflate::from_negotiated(Role::Server, &negotiated(answer), Some(&config)).unwrap();
            server.add_extension(d, e);
            (server, client(answer, SizeLimits::default()))
        })
        .collect();
    for round in 0..6 {
        for (i, (server, client)) in connections.iter_mut().enumerate() {
            // The same text twice per round: the second costs a few bytes.
            let text = format!(
                r#"{{"from":"user{i}","text":"round {} of the test"}}"#,
                round / 2
            );
            for server_sends in [true, false] {
                let (from, to) = if server_sends {
                    (&mut *server, &mut *client)
                } else {
                    (&mut *client, &mut *server)
                };
                from.send(&Message::Text(text.clone())).unwrap();
                let wire = from.data_to_send().to_vec();
                from.advance(wire.len());
                // The client's frame is masked (4 key bytes more).
                assert_eq!(wire[0], 0x80 | 0x40 | 0x1);
                if round % 2 == 1 {
                    assert!(wire.len() < 20, "no back-reference: {} bytes", wire.len());
                }
                let got = received(to, &wire);
                assert_eq!(
                    got,
                    [Ok(Message::Text(text.clone()))],
                    "pair {i} round {round}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Negotiation (RFC 7692 §5, §7.1)

fn answer(offer: &str) -> Option<String> {
    negotiate([offer], &DeflateConfig::default()).map(|e| write(&[e]))
}

#[test]
fn bad_offer_with_an_unknown_parameter_is_declined_and_the_next_taken() {
    assert_eq!(answer("permessage-deflate; foo=1"), None);
    assert_eq!(
        answer("permessage-deflate; foo=1, permessage-deflate"),
        Some("permessage-deflate".into())
    );
}

#[test]
fn bad_offer_with_window_7_or_16_is_declined() {
    assert_eq!(answer("permessage-deflate; server_max_window_bits=7"), None);
    assert_eq!(
        answer("permessage-deflate; client_max_window_bits=16"),
        None
    );
    assert_eq!(
        answer("permessage-deflate; server_max_window_bits=016"),
        None
    );
}

#[test]
fn bad_offer_with_a_duplicate_parameter_is_declined() {
    assert_eq!(
        answer("permessage-deflate; client_no_context_takeover; client_no_context_takeover"),
        None
    );
    assert_eq!(
        answer("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"),
        None
    );
}

#[test]
fn offers_in_repeated_headers_and_quoted_values_are_understood() {
    let got = negotiate(
        [
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=\"10\"",
        ],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(
        write(&[got]),
        "permessage-deflate; server_max_window_bits=10"
    );
}

#[test]
fn server_answers_with_the_parameters_it_uses() {
    // Chrome's offer: the server limits the client's window to its own 12.
    assert_eq!(
        answer("permessage-deflate; client_max_window_bits").as_deref(),
        Some("permessage-deflate; client_max_window_bits=12")
    );
    // Asked for less than our 12, we use less; asked for no context takeover, we comply.
    assert_eq!(
        answer("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
            .as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
    );
    let strict = DeflateConfig::default()
        .no_context_takeover(true)
        .peer_no_context_takeover(true);
    let got = negotiate(["permessage-deflate"], &strict).unwrap();
    assert_eq!(
        write(&[got]),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
}

#[test]
fn window_8_is_accepted_and_the_server_then_sends_uncompressed() {
    let got = answer("permessage-deflate; server_max_window_bits=8").unwrap();
    assert_eq!(got, "permessage-deflate; server_max_window_bits=8");
    let mut server = Connection::new(Role::Server, SizeLimits::default());
    let (d, e) = deflate::from_negotiated(Role::Server, &negotiated(&got), None).unwrap();
    server.add_extension(d, e);
    server.send(&Message::Text("a".repeat(1000))).unwrap();
    // RFC 7692 §6.1: RSV1 clear, the message as it is.
    assert_eq!(server.data_to_send()[0], 0x81);
    // And the client may still compress with 8: we inflate with 9.
    let mut client = client(&got, SizeLimits::default());
    let got = received(&mut client, &frame(0xc1, &compressed(b"abcabcabc")));
    assert_eq!(got, [Ok(Message::Text("abcabcabc".into()))]);
}

#[test]
fn client_refuses_an_answer_it_did_not_offer_or_cannot_read() {
    let cfg = DeflateConfig::client();
    let check = |v: &str| verify_answer([v], Some(&cfg));
    assert_eq!(check("x-foo"), Err(AnswerError::NotOffered));
    assert_eq!(
        check("permessage-deflate, permessage-deflate"),
        Err(AnswerError::NotOffered)
    );
    assert_eq!(
        check("permessage-deflate; foo"),
        Err(AnswerError::InvalidParams)
    );
    assert_eq!(
        check("permessage-deflate; client_max_window_bits"),
        Err(AnswerError::InvalidParams)
    );
    assert_eq!(
        check("permessage-deflate; server_max_window_bits=16"),
        Err(AnswerError::InvalidParams)
    );
    assert!(check("permessage-deflate; client_max_window_bits=9").is_ok());
    // Nothing offered: any extension is unexpected.
    assert_eq!(
        verify_answer(["permessage-deflate"], None),
        Err(AnswerError::NotOffered)
    );
    // Asked for server_max_window_bits=10, a larger answer is refused.
    let small = DeflateConfig::client().peer_window_bits(10);
    assert_eq!(
        verify_answer(
            ["permessage-deflate; server_max_window_bits=11"],
            Some(&small)
        ),
        Err(AnswerError::InvalidParams)
    );
}

#[test]
fn handshake_round_trip_negotiates_and_a_bad_answer_is_a_clear_error() {
    let req = build_request(
        &RequestOptions::new("example.com", "/").deflate(Some(DeflateConfig::client())),
    )
    .unwrap();
    let text = String::from_utf8(req.bytes().to_vec()).unwrap();
    assert!(text.contains(
        "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12, \
         permessage-deflate; client_no_context_takeover; client_max_window_bits=12\r\n"
    ));
    let (head, _) = parse_request(req.bytes(), &Limits::default())
        .unwrap()
        .unwrap();
    let accepted = accept(
        &head,
        &AcceptOptions::default().deflate(Some(DeflateConfig::default())),
    )
    .unwrap();
    let (resp, _) = parse_response(&accepted.response, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        resp.headers.get("sec-websocket-extensions"),
        Some("permessage-deflate; client_max_window_bits=12")
    );
    let negotiated = verify_response(&resp, &req).unwrap();
    assert_eq!(negotiated, accepted.negotiated);

    // The same answer with a parameter we never offered.
    let bad = String::from_utf8(accepted.response.clone())
        .unwrap()
        .replace(
            "client_max_window_bits=12",
            "client_max_window_bits=12; mystery",
        );
    let (resp, _) = parse_response(bad.as_bytes(), &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        verify_response(&resp, &req),
        Err(HandshakeError::InvalidExtensionParams)
    );
}

// ---------------------------------------------------------------------------
// Over TCP: our client and server, compression checked on the wire.

#[test]
fn loopback_echo_with_compression_negotiated() {
    let server =
        common::echo_server_with(common::test_config().deflate(Some(DeflateConfig::default())));
    let config = common::client_config().deflate(Some(DeflateConfig::client()));
    let (mut ws, response) =
        rfc6455::connect_with(&common::url(server.local_addr()), &config).unwrap();
    assert_eq!(
        response.headers.get("sec-websocket-extensions"),
        Some("permessage-deflate; client_max_window_bits=12")
    );
    let json = r#"{"id":1,"name":"widget","tags":["a","b"],"price":9.99}"#.repeat(40);
    let random: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for m in [
        Message::Text(String::new()),
        Message::Text(json.clone()),
        Message::Binary(random),
        Message::Text(json),
        Message::Binary(vec![0; 1 << 20]),
    ] {
        common::assert_echo(&mut ws, m);
    }
    common::close_normally(&mut ws);
}

#[test]
fn loopback_server_without_deflate_declines_and_messages_flow_uncompressed() {
    let server = common::echo_server();
    let config = common::client_config().deflate(Some(DeflateConfig::client()));
    let (mut ws, response) =
        rfc6455::connect_with(&common::url(server.local_addr()), &config).unwrap();
    assert_eq!(response.headers.get("sec-websocket-extensions"), None);
    common::assert_echo(&mut ws, Message::Text("hello hello hello".into()));
    common::close_normally(&mut ws);
}

#[test]
fn loopback_prepared_message_is_compressed_once_for_servers_without_context_takeover() {
    // Every connection sends the same prepared message first; the server
    // keeps no context, so the first connection's compression serves all.
    let text = r#"{"event":"welcome","motd":"compress me once"}"#.repeat(50);
    let prepared = std::sync::Arc::new(rfc6455::protocol::PreparedMessage::new(Message::Text(
        text.clone(),
    )));
    let shared = std::sync::Arc::clone(&prepared);
    let config =
        common::test_config().deflate(Some(DeflateConfig::default().no_context_takeover(true)));
    let server = rfc6455::Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(move |mut ws, _| {
            ws.send_prepared(&shared)?;
            common::echo(ws)
        })
        .unwrap();
    let (addr, seen) = common::tap::tap(server.local_addr());
    let config = common::client_config().deflate(Some(DeflateConfig::client()));
    for _ in 0..4 {
        let mut ws = rfc6455::connect_with(&common::url(addr), &config)
            .unwrap()
            .0;
        assert_eq!(
            common::read_skipping_pings(&mut ws),
            Message::Text(text.clone())
        );
        common::assert_echo(&mut ws, Message::Text(text.clone()));
        common::close_normally(&mut ws);
    }
    assert_eq!(prepared.encodings(), 1);
    seen.assert_deflate_negotiated();
    let down = seen.to_client();
    assert_eq!((down.messages, down.compressed), (8, 8), "{down:?}");
}
