//! Scenario tests over real loopback sockets: our `Server` and our client
//! talking to each other, and raw TCP peers for the handshake edge cases.
//!
//! Every client socket has a read timeout (see `common::IO_TIMEOUT`), so a
//! bug makes a test fail instead of hanging the suite.

mod common;

use common::*;
use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, CloseFrame, Error, Message, Role, Server, WebSocket, WebSocketConfig};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Echo of every payload length class (RFC 6455 §5.2: 7-bit, 16-bit, 64-bit)

/// Lengths at each boundary of the payload length encoding.
const BOUNDARY_SIZES: [usize; 5] = [0, 125, 126, 65535, 65536];

#[test]
fn text_of_each_length_class_is_echoed_byte_exact() {
    let server = echo_server();
    let mut ws = client(server.local_addr());
    for len in BOUNDARY_SIZES {
        assert_echo(&mut ws, Message::Text(ascii(len)));
    }
    // Multi-byte characters straddling the 125/126 and 64 KiB boundaries.
    for len in [124, 65534] {
        let mut text = ascii(len);
        text.push('€');
        assert_echo(&mut ws, Message::Text(text));
    }
    close_normally(&mut ws);
}

#[test]
fn binary_of_each_length_class_is_echoed_byte_exact() {
    let server = echo_server();
    let mut ws = client(server.local_addr());
    for len in BOUNDARY_SIZES {
        assert_echo(&mut ws, Message::Binary(bytes(len)));
    }
    close_normally(&mut ws);
}

#[test]
fn sixteen_mib_text_and_binary_are_echoed_byte_exact() {
    // 16 MiB is the default max frame size: the largest single frame a
    // default server accepts must get through intact.
    let server = echo_server();
    let mut ws = client(server.local_addr());
    assert_echo(&mut ws, Message::Binary(bytes(16 << 20)));
    assert_echo(&mut ws, Message::Text(ascii(16 << 20)));
    close_normally(&mut ws);
}

#[test]
fn messages_of_different_sizes_queued_back_to_back_are_echoed_in_order() {
    // write() only queues small messages; the echoes must still come back
    // complete and in order once the queue is flushed.
    let server = echo_server();
    let mut ws = client(server.local_addr());
    let sent: Vec<Message> = [0, 1, 125, 126, 20_000, 70_000, 3, 65536]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            if i % 2 == 0 {
                Message::Text(ascii(len))
            } else {
                Message::Binary(bytes(len))
            }
        })
        .collect();
    for message in &sent {
        ws.write(message.clone()).unwrap();
    }
    ws.flush().unwrap();
    for message in &sent {
        assert!(
            read_skipping_pings(&mut ws) == *message,
            "{} bytes",
            message.len()
        );
    }
    close_normally(&mut ws);
}

// ---------------------------------------------------------------------------
// Fragmentation (RFC 6455 §5.4)

#[test]
fn fragmented_text_split_inside_a_multibyte_character_is_reassembled() {
    let server = echo_server();
    let mut ws = client(server.local_addr());
    let text = "héllo wörld — €uro 𝄞 clef";
    let bytes = text.as_bytes();
    // Cut after the first byte of 'é' (2 bytes), inside '€' (3 bytes) and
    // inside '𝄞' (4 bytes).
    let e_acute = text.find('é').unwrap() + 1;
    let euro = text.find('€').unwrap() + 2;
    let clef = text.find('𝄞').unwrap() + 3;
    assert!(!text.is_char_boundary(e_acute) && !text.is_char_boundary(euro));
    assert!(!text.is_char_boundary(clef));
    ws.send_frame(OpCode::Text, &bytes[..e_acute], false)
        .unwrap();
    ws.send_frame(OpCode::Continuation, &bytes[e_acute..euro], false)
        .unwrap();
    ws.send_frame(OpCode::Continuation, &bytes[euro..clef], false)
        .unwrap();
    ws.send_frame(OpCode::Continuation, &bytes[clef..], true)
        .unwrap();
    ws.flush().unwrap();
    assert_eq!(read_skipping_pings(&mut ws), Message::Text(text.into()));
    close_normally(&mut ws);
}

#[test]
fn fragmented_binary_with_empty_and_large_fragments_is_reassembled() {
    let server = echo_server();
    let mut ws = client(server.local_addr());
    let data = bytes(200_000);
    let cuts = [0, 0, 1, 126, 65_536, 65_537, 199_999, 200_000];
    ws.send_frame(OpCode::Binary, &data[..cuts[0]], false)
        .unwrap();
    for pair in cuts.windows(2) {
        let last = pair[1] == data.len();
        ws.send_frame(OpCode::Continuation, &data[pair[0]..pair[1]], last)
            .unwrap();
    }
    ws.flush().unwrap();
    assert_eq!(read_skipping_pings(&mut ws), Message::Binary(data));
    close_normally(&mut ws);
}

#[test]
fn ping_between_fragments_is_answered_and_the_message_still_reassembled() {
    // RFC 6455 §5.4: control frames MAY be injected in the middle of a
    // fragmented message.
    let server = echo_server();
    let mut ws = client(server.local_addr());
    ws.send_frame(OpCode::Text, b"first half, ", false).unwrap();
    ws.send(Message::Ping(b"in the middle".to_vec())).unwrap();
    ws.send_frame(OpCode::Continuation, b"second half", true)
        .unwrap();
    ws.flush().unwrap();
    let mut got_pong = false;
    loop {
        match read_skipping_pings(&mut ws) {
            Message::Pong(payload) => {
                assert_eq!(payload, b"in the middle");
                got_pong = true;
            }
            Message::Text(text) => {
                assert_eq!(text, "first half, second half");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(got_pong, "no pong for the ping sent between fragments");
    close_normally(&mut ws);
}

// ---------------------------------------------------------------------------
// Ping / pong (RFC 6455 §5.5.2, §5.5.3)

#[test]
fn ping_gets_a_pong_with_the_same_payload() {
    let server = echo_server();
    let mut ws = client(server.local_addr());
    for payload in [Vec::new(), b"hello".to_vec(), bytes(125)] {
        ws.send(Message::Ping(payload.clone())).unwrap();
        assert_eq!(read_skipping_pings(&mut ws), Message::Pong(payload));
    }
    // Data still flows after the control frames.
    assert_echo(&mut ws, Message::Text("after pings".into()));
    close_normally(&mut ws);
}

// ---------------------------------------------------------------------------
// Closing (RFC 6455 §5.5.1, §7)

/// A server whose handler reports the close frame it received.
fn recording_server() -> (rfc6455::RunningServer, mpsc::Receiver<Option<CloseFrame>>) {
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(move |mut ws, _| loop {
            match ws.read()? {
                Message::Close(frame) => {
                    let _ = tx.send(frame);
                }
                message if message.is_data() => ws.write(message)?,
                _ => {}
            }
        })
        .unwrap();
    (server, rx)
}

#[test]
fn client_close_1000_gets_the_echoed_close_then_connection_closed() {
    let (server, closes) = recording_server();
    let mut ws = client(server.local_addr());
    assert_echo(&mut ws, Message::Text("before closing".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(
        read_skipping_pings(&mut ws),
        Message::Close(Some(CloseFrame::new(CloseCode::NORMAL)))
    );
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    // Reading again stays closed instead of blocking.
    assert!(ws.read().is_err());
    let seen = closes.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(seen, Some(CloseFrame::new(CloseCode::NORMAL)));
}

#[test]
fn client_close_with_reason_reaches_the_server_and_is_echoed() {
    let (server, closes) = recording_server();
    let mut ws = client(server.local_addr());
    let reason = "done for today — ünïcödé";
    ws.close(CloseCode::NORMAL, reason).unwrap();
    match read_skipping_pings(&mut ws) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected the close echo, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    let seen = closes.recv_timeout(IO_TIMEOUT).unwrap().unwrap();
    assert_eq!(
        (seen.code, seen.reason.as_str()),
        (CloseCode::NORMAL, reason)
    );
}

#[test]
fn sending_after_close_is_refused() {
    let server = echo_server();
    let mut ws = client(server.local_addr());
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(ws.send(Message::Text("too late".into())).is_err());
    match read_skipping_pings(&mut ws) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected the close echo, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn server_initiated_close_codes_and_reasons_reach_the_client() {
    // The handler closes with whatever "CODE REASON" the client asks for.
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(|mut ws, _| {
            let Message::Text(ask) = ws.read()? else {
                return Ok(());
            };
            let (code, reason) = ask.split_once(' ').unwrap_or((&ask, ""));
            ws.close(CloseCode(code.parse().unwrap()), reason)?;
            // Complete the close handshake: wait for the client's reply.
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    for (code, reason) in [
        (4000, "bye"),
        (1001, "going away"),
        (1008, ""),
        (1011, "internal"),
    ] {
        let mut ws = client(server.local_addr());
        ws.send(Message::Text(format!("{code} {reason}"))).unwrap();
        assert_eq!(
            read_skipping_pings(&mut ws),
            Message::Close(Some(CloseFrame {
                code: CloseCode(code),
                reason: reason.into()
            })),
            "close {code}"
        );
        // The client echoes the close; the server then closes TCP.
        match ws.read() {
            Err(Error::ConnectionClosed) => {}
            other => panic!("close {code}: expected ConnectionClosed, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Concurrency

#[test]
fn fifty_concurrent_clients_each_get_their_own_hundred_echoes() {
    const CLIENTS: usize = 50;
    const MESSAGES: usize = 100;
    let server = echo_server();
    let addr = server.local_addr();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            thread::spawn(move || {
                let mut ws = client(addr);
                for i in 0..MESSAGES {
                    let message = if i % 3 == 0 {
                        let mut data = bytes(i * 10);
                        data.extend_from_slice(&(c as u32).to_be_bytes());
                        Message::Binary(data)
                    } else {
                        Message::Text(format!("client {c} message {i} {}", ascii(i)))
                    };
                    assert_echo(&mut ws, message);
                }
                close_normally(&mut ws);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client thread failed");
    }
}

#[test]
fn split_writer_blocked_on_a_busy_echo_does_not_stop_the_reader() {
    // The writer pushes far more than the socket buffers hold to an echo
    // server that writes every message back. The server blocks writing until
    // we read; we read only if the reader is never stuck behind the blocked
    // writer (it used to need the writer's lock before every read: deadlock,
    // broken only by the 10 s write timeout, which failed the connection).
    const N: usize = 8;
    const SIZE: usize = 4 << 20;
    let server = echo_server();
    let ws = client(server.local_addr());
    let (mut reader, writer) = ws.split().unwrap();
    let sending = thread::spawn(move || {
        for i in 0..N {
            writer
                .send(Message::Binary(vec![i as u8; SIZE]))
                .unwrap_or_else(|e| panic!("send {i}: {e}"));
        }
        writer
    });
    let start = Instant::now();
    for i in 0..N {
        match reader.read() {
            Ok(Message::Binary(data)) => {
                assert_eq!(data.len(), SIZE, "echo {i}");
                assert!(data.iter().all(|&b| b == i as u8), "echo {i} corrupted");
            }
            other => panic!("echo {i}: {other:?} after {:?}", start.elapsed()),
        }
    }
    let writer = sending.join().expect("the writer failed");
    writer.close(CloseCode::NORMAL, "").unwrap();
    loop {
        match reader.read() {
            Ok(_) => {}
            Err(Error::ConnectionClosed) => break,
            Err(e) => panic!("closing: {e}"),
        }
    }
}

#[test]
fn split_halves_run_full_duplex_from_two_threads_on_both_ends() {
    // The server splits too: its writer pushes 1000 messages while its reader
    // takes the client's 1000, neither side echoing.
    const N: usize = 1000;
    let (report_tx, report_rx) = mpsc::channel::<Result<usize, String>>();
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(move |ws, _| {
            let (mut reader, writer) = ws.split()?;
            let pusher = thread::spawn(move || -> rfc6455::Result<()> {
                for i in 0..N {
                    writer.send(Message::Text(format!("s2c {i}")))?;
                }
                Ok(())
            });
            let mut received = 0;
            let outcome = loop {
                match reader.read() {
                    Ok(Message::Text(text)) => {
                        if text != format!("c2s {received}") {
                            break Err(format!("message {received} was {text:?}"));
                        }
                        received += 1;
                    }
                    Ok(Message::Close(_)) | Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => {}
                    Ok(other) => break Err(format!("unexpected {other:?}")),
                    Err(Error::ConnectionClosed) => break Ok(received),
                    Err(e) => break Err(format!("server read: {e}")),
                }
            };
            let pushed = pusher.join().map_err(|_| "pusher panicked".to_owned());
            let outcome = match pushed {
                Ok(Ok(())) => outcome,
                Ok(Err(e)) => Err(format!("server write: {e}")),
                Err(e) => Err(e),
            };
            let _ = report_tx.send(outcome);
            Ok(())
        })
        .unwrap();

    let ws = client(server.local_addr());
    let (mut reader, writer) = ws.split().unwrap();
    let sender = writer.clone();
    let sending = thread::spawn(move || {
        for i in 0..N {
            sender.send(Message::Text(format!("c2s {i}"))).unwrap();
        }
    });
    for i in 0..N {
        match reader.read() {
            Ok(Message::Text(text)) => assert_eq!(text, format!("s2c {i}")),
            other => panic!("client read {i}: {other:?}"),
        }
    }
    sending.join().unwrap();
    writer.close(CloseCode::NORMAL, "").unwrap();
    assert!(writer.send_closed());
    loop {
        match reader.read() {
            Ok(Message::Close(_)) | Ok(Message::Ping(_)) => {}
            Err(Error::ConnectionClosed) => break,
            other => panic!("expected the close handshake, got {other:?}"),
        }
    }
    assert_eq!(report_rx.recv_timeout(IO_TIMEOUT).unwrap(), Ok(N));
}

#[test]
fn cloned_writers_from_several_threads_never_interleave_frames() {
    // Four writer clones send 250 messages each at once (some large enough
    // for the vectored path); every echo must come back whole, and each
    // writer's messages in its own order.
    const WRITERS: usize = 4;
    const EACH: usize = 250;
    let server = echo_server();
    let ws = client(server.local_addr());
    let (mut reader, writer) = ws.split().unwrap();
    let senders: Vec<_> = (0..WRITERS)
        .map(|w| {
            let writer = writer.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    let padding = if i % 50 == 0 { 20_000 } else { i };
                    writer
                        .send(Message::Text(format!("{w} {i} {}", ascii(padding))))
                        .unwrap();
                }
            })
        })
        .collect();
    let mut next = [0usize; WRITERS];
    for _ in 0..WRITERS * EACH {
        let text = match reader.read() {
            Ok(Message::Text(text)) => text,
            other => panic!("expected an echo, got {other:?}"),
        };
        let mut fields = text.splitn(3, ' ');
        let w: usize = fields.next().unwrap().parse().unwrap();
        let i: usize = fields.next().unwrap().parse().unwrap();
        let padding = if i % 50 == 0 { 20_000 } else { i };
        assert_eq!(i, next[w], "writer {w} out of order");
        assert_eq!(
            fields.next().unwrap(),
            ascii(padding),
            "writer {w} message {i}"
        );
        next[w] += 1;
    }
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(next, [EACH; WRITERS]);
    writer.close(CloseCode::NORMAL, "").unwrap();
    loop {
        match reader.read() {
            Ok(Message::Close(_)) => {}
            Err(Error::ConnectionClosed) => break,
            other => panic!("expected the close handshake, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Server lifecycle

#[test]
fn graceful_shutdown_sends_1001_to_a_connected_client() {
    let server = echo_server_with(test_config().shutdown_timeout(Duration::from_secs(8)));
    let addr = server.local_addr();
    let handle = server.handle();
    let mut ws = client(addr);
    assert_echo(&mut ws, Message::Text("still here".into()));
    assert_eq!(handle.connections(), 1);
    let started = Instant::now();
    let stopping = thread::spawn(move || server.shutdown());
    match read_skipping_pings(&mut ws) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::GOING_AWAY),
        other => panic!("expected close 1001, got {other:?}"),
    }
    // After the close frame nothing more is readable: the server closed TCP.
    match ws.read() {
        Err(Error::ConnectionClosed) => {}
        other => panic!("expected ConnectionClosed after 1001, got {other:?}"),
    }
    stopping.join().unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "shutdown waited {:?} for a connection that had closed",
        started.elapsed()
    );
    assert_eq!(handle.connections(), 0);
    // The listener is gone: new connections are refused or get no handshake.
    assert!(rfc6455::connect_with(&url(addr), &client_config()).is_err());
}

#[test]
fn connections_beyond_max_connections_get_http_503() {
    let server = echo_server_with(test_config().max_connections(2));
    let addr = server.local_addr();
    let mut first = client(addr);
    let mut second = client(addr);
    assert_echo(&mut first, Message::Text("one".into()));
    assert_echo(&mut second, Message::Text("two".into()));
    let response = raw_exchange(addr, upgrade_request(addr).as_bytes());
    assert_eq!(status(&response), 503, "{response}");
    // Our client reports the refusal as an error, not a hang.
    assert!(rfc6455::connect_with(&url(addr), &client_config()).is_err());
    // Once a slot frees up, new connections are served again.
    close_normally(&mut first);
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.handle().connections() > 1 {
        assert!(Instant::now() < deadline, "closed connection still counted");
        thread::sleep(Duration::from_millis(10));
    }
    let mut third = client(addr);
    assert_echo(&mut third, Message::Text("three".into()));
    close_normally(&mut third);
    close_normally(&mut second);
}

#[test]
fn a_panicking_handler_does_not_stop_the_server() {
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(|mut ws, _| {
            let first = ws.read()?;
            if first == Message::Text("panic".into()) {
                panic!("handler panics on purpose (this message is expected)");
            }
            ws.write(first)?;
            echo(ws)
        })
        .unwrap();
    let addr = server.local_addr();
    let mut doomed = client(addr);
    doomed.send(Message::Text("panic".into())).unwrap();
    // The panicking connection is dropped, not left hanging.
    assert!(doomed.read().is_err());
    for _ in 0..3 {
        let mut ws = client(addr);
        assert_echo(&mut ws, Message::Text("still serving".into()));
        close_normally(&mut ws);
    }
    server.shutdown().unwrap();
}

// ---------------------------------------------------------------------------
// Opening handshake over raw TCP (RFC 6455 §4.2)

#[test]
fn upgrade_check_refuses_other_paths_before_the_handshake() {
    let config = test_config()
        .check_upgrade(|request| (request.target != "/ws").then(rfc6455::HttpResponse::not_found));
    let server = echo_server_with(config);
    let addr = server.local_addr();
    let request = upgrade_request(addr);
    let elsewhere = request.replacen("GET / ", "GET /elsewhere ", 1);
    assert_ne!(elsewhere, request, "the request line changed");
    let response = raw_exchange(addr, elsewhere.as_bytes());
    assert_eq!(status(&response), 404, "{response}");
    let at_ws = request.replacen("GET / ", "GET /ws ", 1);
    let mut stream = raw(addr);
    stream.write_all(at_ws.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the 101 response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert_eq!(status(&head), 101, "{head}");
}

#[test]
fn handshake_with_post_is_rejected_with_405() {
    let server = echo_server();
    let addr = server.local_addr();
    let request = upgrade_request(addr).replacen("GET", "POST", 1);
    let response = raw_exchange(addr, request.as_bytes());
    assert_eq!(status(&response), 405, "{response}");
    assert!(has_header(&response, "Allow", "GET"), "{response}");
}

#[test]
fn handshake_with_wrong_version_is_rejected_with_426_and_version_13() {
    let server = echo_server();
    let addr = server.local_addr();
    let request =
        upgrade_request(addr).replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let response = raw_exchange(addr, request.as_bytes());
    assert_eq!(status(&response), 426, "{response}");
    assert!(
        has_header(&response, "Sec-WebSocket-Version", "13"),
        "{response}"
    );
}

#[test]
fn handshake_without_key_is_rejected_with_400() {
    let server = echo_server();
    let addr = server.local_addr();
    let request =
        upgrade_request(addr).replace(&format!("Sec-WebSocket-Key: {SAMPLE_KEY}\r\n"), "");
    assert!(!request.contains("Key"));
    let response = raw_exchange(addr, request.as_bytes());
    assert_eq!(status(&response), 400, "{response}");
}

#[test]
fn valid_raw_handshake_gets_101_with_the_rfc_accept_value() {
    let server = echo_server();
    let addr = server.local_addr();
    let mut stream = raw(addr);
    stream.write_all(upgrade_request(addr).as_bytes()).unwrap();
    let (head, _) = read_response_head(&mut stream);
    assert_eq!(status(&head), 101, "{head}");
    assert!(
        has_header(&head, "Sec-WebSocket-Accept", SAMPLE_ACCEPT),
        "{head}"
    );
    assert!(has_header(&head, "Upgrade", "websocket"), "{head}");
}

/// Reads up to the end of an HTTP response head; returns the head and the
/// bytes read past it.
fn read_response_head(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8(buf).unwrap(), rest);
        }
        let n = stream.read(&mut chunk).expect("read response head");
        assert!(n > 0, "connection closed before the response head ended");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A masked client frame, built by hand (RFC 6455 §5.2, §5.3).
fn masked_frame(opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

#[test]
fn frames_sent_in_the_same_packet_as_the_handshake_are_not_lost() {
    let server = echo_server();
    let addr = server.local_addr();
    let mut stream = raw(addr);
    stream.set_nodelay(true).unwrap();
    let mut packet = upgrade_request(addr).into_bytes();
    packet.extend(masked_frame(0x1, b"early bird", [1, 2, 3, 4]));
    packet.extend(masked_frame(0x2, &[0, 1, 2, 255], [9, 8, 7, 6]));
    packet.extend(masked_frame(0x9, b"early ping", [5, 5, 5, 5]));
    stream.write_all(&packet).unwrap();
    let (head, leftover) = read_response_head(&mut stream);
    assert_eq!(status(&head), 101, "{head}");
    // Whatever followed the head is the start of the server's frames.
    let mut ws = WebSocket::from_partially_read(
        rfc6455::Stream::from_tcp(stream),
        leftover,
        Role::Client,
        WebSocketConfig::default(),
    );
    assert_eq!(ws.read().unwrap(), Message::Text("early bird".into()));
    assert_eq!(ws.read().unwrap(), Message::Binary(vec![0, 1, 2, 255]));
    assert_eq!(ws.read().unwrap(), Message::Pong(b"early ping".to_vec()));
    close_normally(&mut ws);
}

#[test]
fn oversized_message_is_refused_with_1009_and_the_server_keeps_serving() {
    let config = test_config().protocol(
        rfc6455::SizeLimits::default()
            .max_message_size(1000)
            .max_frame_size(1000),
    );
    let server = echo_server_with(config);
    let addr = server.local_addr();
    let mut ws = client(addr);
    assert_echo(&mut ws, Message::Binary(bytes(1000)));
    ws.send(Message::Binary(bytes(1001))).unwrap();
    match read_skipping_pings(&mut ws) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::MESSAGE_TOO_BIG),
        other => panic!("expected close 1009, got {other:?}"),
    }
    let mut next = client(addr);
    assert_echo(&mut next, Message::Text("fine".into()));
    close_normally(&mut next);
}

// ---------------------------------------------------------------------------
// The wsclient binary

#[test]
fn wsclient_piped_lines_come_back_from_our_echo_server() {
    // `printf … | wsclient URL`: our echo handler answers each message before
    // it reads the close frame that follows, so every line comes back even
    // though input ends (and wsclient closes) right after the last one.
    let server = echo_server();
    let long = ascii(200_000);
    let lines = ["one", "", "ünïcödé € 𝄞", long.as_str(), "last"];
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wsclient"))
        .arg(url(server.local_addr()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wsclient");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    // Read the output while waiting, so a full pipe cannot stall wsclient.
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    // stdin is closed now; wsclient must finish on its own.
    let deadline = Instant::now() + IO_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsclient did not exit after end of input");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}; stderr:\n{stderr}",
        output.status
    );
    assert!(
        output.stdout == input.as_bytes(),
        "stdout differs from stdin; stderr:\n{stderr}"
    );
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

// ---------------------------------------------------------------------------
// Keepalive

fn keepalive_config() -> rfc6455::ServerConfig {
    test_config().keepalive(Some(rfc6455::Keepalive {
        interval: Duration::from_millis(150),
        timeout: Duration::from_millis(300),
    }))
}

#[test]
fn keepalive_pings_are_answered_by_a_reading_client_and_the_connection_stays_open() {
    let server = echo_server_with(keepalive_config());
    let mut ws = client(server.local_addr());
    // Stay silent for several keepalive rounds; our client answers each ping
    // (the pong goes out before its next blocking read).
    let mut pings = 0;
    while pings < 4 {
        match ws.read() {
            Ok(Message::Ping(payload)) => {
                assert!(payload.len() <= 125);
                pings += 1;
            }
            other => panic!("expected keepalive pings, got {other:?}"),
        }
    }
    assert_echo(&mut ws, Message::Text("still open".into()));
    close_normally(&mut ws);
}

/// Reads one unmasked server frame from `buffered` + `stream`: (opcode, payload).
fn read_server_frame(stream: &mut std::net::TcpStream, buffered: &mut Vec<u8>) -> (u8, Vec<u8>) {
    let mut need = |n: usize, buffered: &mut Vec<u8>| {
        let mut chunk = [0u8; 1024];
        while buffered.len() < n {
            let got = stream.read(&mut chunk).expect("read a server frame");
            assert!(got > 0, "connection closed mid-frame");
            buffered.extend_from_slice(&chunk[..got]);
        }
    };
    need(2, buffered);
    assert_eq!(buffered[1] & 0x80, 0, "server frames are never masked");
    let len = usize::from(buffered[1] & 0x7f);
    assert!(len < 126, "only small control frames expected here");
    need(2 + len, buffered);
    let opcode = buffered[0] & 0x0f;
    let payload = buffered[2..2 + len].to_vec();
    buffered.drain(..2 + len);
    (opcode, payload)
}

#[test]
fn a_peer_that_never_answers_keepalive_pings_is_closed_with_1011() {
    let server = echo_server_with(keepalive_config());
    let addr = server.local_addr();
    let mut stream = raw(addr);
    stream.write_all(upgrade_request(addr).as_bytes()).unwrap();
    let (head, mut buffered) = read_response_head(&mut stream);
    assert_eq!(status(&head), 101, "{head}");
    let started = Instant::now();
    // We stay deaf: a ping, then (after the pong timeout) close 1011.
    let (opcode, _) = read_server_frame(&mut stream, &mut buffered);
    assert_eq!(opcode, 0x9, "expected a keepalive ping first");
    let (opcode, payload) = read_server_frame(&mut stream, &mut buffered);
    assert_eq!(opcode, 0x8, "expected a close frame after the pong timeout");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1011);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// Accepts one connection on `listener`, reads its upgrade request and
/// returns the stream with the 101 response, not yet sent.
fn fake_server_handshake(listener: &std::net::TcpListener) -> (std::net::TcpStream, Vec<u8>) {
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "request cut short");
        request.push(byte[0]);
    }
    let request = String::from_utf8(request).unwrap();
    let key = request
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key"))
        })
        .map(|(_, v)| v.trim().to_owned())
        .expect("request has a key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        rfc6455::handshake::accept_key(key.as_bytes())
    );
    (stream, response.into_bytes())
}

#[test]
fn client_close_ends_even_if_the_server_never_closes_tcp() {
    // RFC 6455 §7.1.1: the server should close TCP after the close
    // handshake; one that does not must not hold a default client forever.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (release, hold) = mpsc::channel::<()>();
    let fake = thread::spawn(move || {
        let (mut stream, response) = fake_server_handshake(&listener);
        stream.write_all(&response).unwrap();
        // The client's close (masked, code 1000, no reason): echo it.
        let mut close = [0u8; 8];
        stream.read_exact(&mut close).unwrap();
        assert_eq!(close[0], 0x88, "expected a close frame");
        stream.write_all(b"\x88\x02\x03\xe8").unwrap();
        // ...and keep TCP open until the test is done.
        let _ = hold.recv_timeout(Duration::from_secs(20));
    });
    let config = rfc6455::ClientConfig::default()
        .websocket(WebSocketConfig::default().close_timeout(Duration::from_millis(300)));
    let (mut ws, _) = rfc6455::connect_with(&url(addr), &config).unwrap();
    ws.close(CloseCode::NORMAL, "").unwrap();
    let start = Instant::now();
    let end = loop {
        match ws.read() {
            Ok(Message::Close(_)) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(end, Error::ConnectionClosed), "{end}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    release.send(()).unwrap();
    fake.join().unwrap();
}

#[test]
fn client_keeps_frames_that_arrive_in_the_same_packet_as_the_101_response() {
    // A hand-written server answers the handshake and sends two frames in
    // one write; our client must deliver them, not drop them with the head.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = thread::spawn(move || {
        let (mut stream, mut packet) = fake_server_handshake(&listener);
        packet.extend_from_slice(b"\x81\x05hello");
        packet.extend_from_slice(b"\x89\x04ping");
        stream.write_all(&packet).unwrap();
        // Then expect the client's pong (masked, 4-byte payload).
        let mut pong = [0u8; 10];
        stream.read_exact(&mut pong).unwrap();
        assert_eq!(pong[0], 0x8a, "expected a pong");
        let key = [pong[2], pong[3], pong[4], pong[5]];
        let payload: Vec<u8> = (0..4).map(|i| pong[6 + i] ^ key[i]).collect();
        assert_eq!(payload, b"ping");
    });
    let mut ws = client(addr);
    assert_eq!(ws.read().unwrap(), Message::Text("hello".into()));
    assert_eq!(ws.read().unwrap(), Message::Ping(b"ping".to_vec()));
    ws.flush().unwrap();
    fake.join().expect("the fake server saw no pong");
}

#[test]
fn graceful_shutdown_reaches_a_handler_blocked_in_a_split_reader() {
    // A chat-style handler: its reader half blocks in read while the writer
    // half lives elsewhere. Shutdown must still say 1001 and end it.
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(|ws, _| {
            let (mut reader, writer) = ws.split()?;
            loop {
                let message = reader.read()?;
                if message.is_data() {
                    writer.send(message)?;
                }
            }
        })
        .unwrap();
    let mut ws = client(server.local_addr());
    assert_echo(&mut ws, Message::Text("split echo".into()));
    let stopping = thread::spawn(move || server.shutdown());
    match read_skipping_pings(&mut ws) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::GOING_AWAY),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    stopping.join().unwrap().unwrap();
}

#[test]
fn the_handler_sees_the_request_path_query_and_client_headers() {
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(move |ws, request| {
            let _ = tx.send((
                request.target.clone(),
                request.headers.get("x-test-token").map(str::to_owned),
            ));
            echo(ws)
        })
        .unwrap();
    let url = format!("ws://{}/chat/room?id=42&name=x%20y", server.local_addr());
    let config = client_config().header("X-Test-Token", "secret value");
    let (mut ws, response) = rfc6455::connect_with(&url, &config).unwrap();
    assert_eq!(response.status, 101);
    let (target, token) = rx.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(target, "/chat/room?id=42&name=x%20y");
    assert_eq!(token.as_deref(), Some("secret value"));
    assert_echo(&mut ws, Message::Text("routed".into()));
    close_normally(&mut ws);
}

#[test]
fn a_default_client_still_reports_its_callers_own_read_timeout() {
    // Default clients tick every close timeout for the close handshake; a
    // read timeout the caller sets on the socket is still theirs.
    let server = echo_server();
    let (mut ws, _) = rfc6455::connect(&url(server.local_addr())).unwrap();
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    match ws.read() {
        Err(Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Non-blocking mode: WouldBlock at once, not a busy loop inside read.
    ws.get_ref().set_nonblocking(true).unwrap();
    let start = Instant::now();
    assert!(matches!(ws.read(), Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock));
    assert!(start.elapsed() < Duration::from_secs(1));
}

// ---------------------------------------------------------------------------
// Shutdown completes the close handshake

#[test]
fn shutdown_hands_the_peers_close_reply_to_the_handler() {
    // The server shuts down while its handler is blocked in `read`: the
    // handler must see the peer's answer to 1001 as a close frame, then the
    // end of the connection (wsecho used to log "no close frame" here).
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(move |mut ws, _| {
            let mut seen = Vec::new();
            let end = loop {
                match ws.read() {
                    Ok(message) => seen.push(message),
                    Err(e) => break e,
                }
            };
            tx.send((seen, end.to_string())).unwrap();
            Ok(())
        })
        .unwrap();
    let mut ws = client(server.local_addr());
    // Make sure the handler is running.
    ws.send(Message::Text("hello".into())).unwrap();
    let peer = thread::spawn(move || {
        // Our client echoes the 1001 on its own and then waits for TCP to close.
        let got = read_skipping_pings(&mut ws);
        let end = ws.read();
        (got, end.map_err(|e| e.to_string()))
    });
    thread::sleep(Duration::from_millis(100));
    server.shutdown().unwrap();
    let (seen, end) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        seen,
        [
            Message::Text("hello".into()),
            Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY)))
        ]
    );
    assert_eq!(end, Error::ConnectionClosed.to_string());
    let (got, client_end) = peer.join().unwrap();
    assert!(
        matches!(got, Message::Close(Some(ref f)) if f.code == CloseCode::GOING_AWAY),
        "{got:?}"
    );
    assert_eq!(client_end, Err(Error::ConnectionClosed.to_string()));
}

// ---------------------------------------------------------------------------
// After the end

#[test]
fn read_after_connection_closed_is_already_closed() {
    // One rule, as tungstenite's: `ConnectionClosed` once, then
    // `AlreadyClosed`, which tells a loop that keeps reading it has a bug.
    let server = echo_server();
    let mut ws = client(server.local_addr());
    close_normally(&mut ws);
    assert!(matches!(ws.read(), Err(Error::AlreadyClosed)));
    assert!(matches!(ws.read(), Err(Error::AlreadyClosed)));
}

#[test]
fn a_handler_error_reaches_the_on_error_hook() {
    let (tx, rx) = mpsc::channel();
    let config = test_config().on_error(move |error, request| {
        let _ = tx.send((error.to_string(), request.target.clone()));
    });
    let server = Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(|_ws, _request| Err(Error::Url("the handler's own failure".into())))
        .unwrap();
    let _ws = rfc6455::connect(&format!("ws://{}/path", server.local_addr())).unwrap();
    let (error, target) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(error.contains("the handler's own failure"), "{error}");
    assert_eq!(target, "/path");
}

#[test]
fn the_normal_end_of_a_handler_is_not_reported() {
    let (tx, rx) = mpsc::channel();
    let config = test_config().on_error(move |error, _| {
        let _ = tx.send(error.to_string());
    });
    let server = Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(|ws, _| common::echo(ws))
        .unwrap();
    let mut ws = client(server.local_addr());
    close_normally(&mut ws);
    drop(ws);
    drop(server);
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
}

// ---------------------------------------------------------------------------
// A panic in a user's HTTP-side callback costs its request: a 500, and the
// server serves on (the same decision chain as the poll engine's).

#[test]
fn a_panicking_http_handler_is_answered_500_and_the_server_serves_on() {
    let config = test_config().http_handler(|request| {
        if request.target == "/boom" {
            panic!("the HTTP handler panics on purpose (expected in this test)");
        }
        rfc6455::HttpResponse::new(200, "text/plain", "ok")
    });
    let server = Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(|mut ws, _| loop {
            let message = ws.read()?;
            if message.is_data() {
                ws.send(message)?;
            }
        })
        .unwrap();
    let addr = server.local_addr();
    let response = raw_exchange(addr, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&response), 500, "{response:?}");
    let response = raw_exchange(addr, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&response), 200, "{response:?}");
    let mut ws = client(addr);
    ws.send(Message::text("after")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("after"));
}
