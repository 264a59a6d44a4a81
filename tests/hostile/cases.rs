// The cases of `tests/hostile.rs`, included once per engine: each module
// that includes this file provides `start(config)` (the echo server) and the
// servers with special handlers (`start_closing_on_first_message`,
// `start_flooding`, `start_panicking_on`, `start_measuring`), all returning a
// `TestServer`.

/// The whole exchange for a frame-level violation: handshake, send `bytes`,
/// expect a close frame with `code`, then the server closing TCP.
fn expect_close_after(config: ServerConfig, bytes: &[u8], code: u16) {
    let server = start(config);
    let mut s = handshake(server.local_addr());
    s.write_all(bytes).unwrap();
    assert_eq!(read_close(&mut s), Some(code), "after sending {bytes:02x?}");
    expect_eof(&mut s);
    wait_connections(&server, 0, SOON);
}

/// Same, for several cases against one server.
fn expect_close_each(cases: &[(Vec<u8>, u16)]) {
    let server = start(ServerConfig::default());
    for (bytes, code) in cases {
        let mut s = handshake(server.local_addr());
        s.write_all(bytes).unwrap();
        assert_eq!(
            read_close(&mut s),
            Some(*code),
            "after sending {bytes:02x?}"
        );
        expect_eof(&mut s);
    }
    wait_connections(&server, 0, SOON);
}

// ---------------------------------------------------------------------------
// Handshake abuse: an HTTP status, then the connection closed.

#[test]
fn handshake_not_http_is_400() {
    let server = start(ServerConfig::default());
    // The start of a TLS ClientHello: someone spoke wss:// to a ws:// port.
    let reply = ask(
        server.local_addr(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    );
    assert_eq!(reply.status, 400, "{}", reply.head);
    let reply = ask(server.local_addr(), b"hello there\r\n\r\n");
    assert_eq!(reply.status, 400, "{}", reply.head);
}

#[test]
fn handshake_plain_get_without_upgrade_is_426() {
    let server = start(ServerConfig::default());
    let reply = ask(
        server.local_addr(),
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    // Without an http_handler, a request that is not an upgrade gets 426
    // naming the protocol to upgrade to (RFC 7231 §6.5.15, RFC 6455 §4.2.2).
    assert_eq!(reply.status, 426, "{}", reply.head);
    assert_eq!(reply.header("upgrade"), Some("websocket"));
    assert_eq!(reply.header("sec-websocket-version"), Some("13"));
}

#[test]
fn handshake_plain_get_goes_to_http_handler() {
    let config = ServerConfig::default()
        .http_handler(|_| rfc6455::HttpResponse::new(200, "text/plain", "ok\n"));
    let server = start(config);
    let reply = ask(
        server.local_addr(),
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert_eq!(reply.status, 200, "{}", reply.head);
    assert_eq!(reply.body, b"ok\n");
}

#[test]
fn handshake_missing_key_is_400() {
    let server = start(ServerConfig::default());
    let request = upgrade_request("").replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), "");
    let reply = ask(server.local_addr(), request.as_bytes());
    assert_eq!(reply.status, 400, "{}", reply.head);
}

#[test]
fn handshake_malformed_key_is_400() {
    let server = start(ServerConfig::default());
    // Not base64; base64 of 15 bytes; base64 of 17 bytes; 16 bytes with junk.
    for key in [
        "not a key!",
        "AAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAA=",
        "dGhlIHNhbXBsZSBub25jZQ==x",
    ] {
        let request = upgrade_request("").replace(KEY, key);
        let reply = ask(server.local_addr(), request.as_bytes());
        assert_eq!(reply.status, 400, "key {key:?}: {}", reply.head);
    }
}

#[test]
fn handshake_version_8_is_426_with_version_13() {
    let server = start(ServerConfig::default());
    let request = upgrade_request("").replace("Version: 13", "Version: 8");
    let reply = ask(server.local_addr(), request.as_bytes());
    assert_eq!(reply.status, 426, "{}", reply.head);
    // RFC 6455 §4.2.2: tell the client which version we speak.
    assert_eq!(reply.header("sec-websocket-version"), Some("13"));
}

#[test]
fn handshake_post_is_405_allow_get() {
    let server = start(ServerConfig::default());
    let request = upgrade_request("").replacen("GET", "POST", 1);
    let reply = ask(server.local_addr(), request.as_bytes());
    assert_eq!(reply.status, 405, "{}", reply.head);
    assert_eq!(reply.header("allow"), Some("GET"));
}

#[test]
fn handshake_http_1_0_is_505() {
    let server = start(ServerConfig::default());
    let request = upgrade_request("").replacen("HTTP/1.1", "HTTP/1.0", 1);
    let reply = ask(server.local_addr(), request.as_bytes());
    assert_eq!(reply.status, 505, "{}", reply.head);
}

/// Writes `bytes` from another thread (the server may stop reading and
/// close at any point), and returns the answer read meanwhile.
fn ask_while_writing(addr: SocketAddr, bytes: Vec<u8>) -> (HttpReply, Duration) {
    let mut s = raw(addr);
    let mut writer = s.try_clone().unwrap();
    let start = Instant::now();
    let feeder = thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    let reply = read_reply(&mut s);
    let took = start.elapsed();
    drop(s);
    feeder.join().unwrap();
    (reply, took)
}

#[test]
fn handshake_thousands_of_headers_is_431() {
    let server = start(ServerConfig::default());
    let mut request = upgrade_request("").into_bytes();
    request.truncate(request.len() - 2);
    for i in 0..5000 {
        request.extend_from_slice(format!("X-Filler-{i}: {i}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let (reply, _) = ask_while_writing(server.local_addr(), request);
    assert_eq!(reply.status, 431, "{}", reply.head);
    wait_connections(&server, 0, SOON);
}

#[test]
fn handshake_1mib_header_line_is_431_before_the_line_ends() {
    let server = start(ServerConfig::default());
    // Send only the first 64 KiB of a 1 MiB header line and no line end: the
    // answer must come while the rest has not even been sent.
    let mut s = raw(server.local_addr());
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    // The server may stop reading after its cap; a failed write is fine.
    let _ = s.write_all(&chunk);
    let start = Instant::now();
    let reply = read_reply(&mut s);
    assert_eq!(reply.status, 431, "{}", reply.head);
    assert!(start.elapsed() < SOON);

    // The full 1 MiB, streamed: still 431, and the server stays bounded.
    let mut big = b"GET / HTTP/1.1\r\nX-Huge: ".to_vec();
    big.resize(1 << 20, b'b');
    big.extend_from_slice(b"\r\n\r\n");
    let (reply, _) = ask_while_writing(server.local_addr(), big);
    assert_eq!(reply.status, 431, "{}", reply.head);
    wait_connections(&server, 0, SOON);
}

#[test]
fn handshake_slowloris_gets_408_in_bounded_time() {
    let _serial = serial();
    let config = ServerConfig::default().handshake_timeout(Duration::from_millis(500));
    let server = start(config);
    let mut s = raw(server.local_addr());
    let mut writer = s.try_clone().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let start = Instant::now();
    let trickler = thread::spawn(move || {
        // A valid request, one byte every 50 ms: it would take ~8 s.
        for b in upgrade_request("").bytes() {
            if stop.load(Ordering::Relaxed) || writer.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let reply = read_reply(&mut s);
    let took = start.elapsed();
    done.store(true, Ordering::Relaxed);
    trickler.join().unwrap();
    assert_eq!(reply.status, 408, "{}", reply.head);
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "408 after {took:?}"
    );
    wait_connections(&server, 0, SOON);
}

// ---------------------------------------------------------------------------
// HTTP beside WebSocket (RFC 9110, RFC 9112): an upgrade with a body, the
// Host rule, HEAD, absolute-form targets. Every ServerConfig HTTP handler
// gets these, because the library decides them before it calls one.

#[test]
fn handshake_upgrade_with_content_length_body_is_400() {
    let server = start(ServerConfig::default());
    let request = upgrade_request("Content-Length: 6\r\n") + "hello!";
    let reply = ask(server.local_addr(), request.as_bytes());
    assert_eq!(reply.status, 400, "{}", reply.head);
    assert!(String::from_utf8_lossy(&reply.body).contains("body"));
    wait_connections(&server, 0, SOON);
}

#[test]
fn handshake_upgrade_with_chunked_body_is_400() {
    let server = start(ServerConfig::default());
    let request = upgrade_request("Transfer-Encoding: chunked\r\n") + "6\r\nhello!\r\n0\r\n\r\n";
    let reply = ask(server.local_addr(), request.as_bytes());
    assert_eq!(reply.status, 400, "{}", reply.head);
    wait_connections(&server, 0, SOON);
}

#[test]
fn handshake_upgrade_with_content_length_0_is_served() {
    let server = start(ServerConfig::default());
    let mut s = raw(server.local_addr());
    s.write_all(upgrade_request("Content-Length: 0\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_reply(&mut s).status, 101);
    s.write_all(&frame(FIN | TEXT, b"still frames")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().payload, b"still frames");
}

#[test]
fn handshake_without_host_or_with_two_is_400() {
    let server = start(ServerConfig::default());
    let without = upgrade_request("").replace("Host: 127.0.0.1\r\n", "");
    let reply = ask(server.local_addr(), without.as_bytes());
    assert_eq!(reply.status, 400, "{}", reply.head);
    let two = upgrade_request("Host: 127.0.0.2\r\n");
    let reply = ask(server.local_addr(), two.as_bytes());
    assert_eq!(reply.status, 400, "{}", reply.head);
}

/// An HTTP handler that answers 200 with "METHOD path" and counts its calls.
fn http_echo_config(calls: &Arc<AtomicUsize>) -> ServerConfig {
    let calls = Arc::clone(calls);
    ServerConfig::default().http_handler(move |request| {
        calls.fetch_add(1, Ordering::SeqCst);
        let body = format!("{} {}", request.method, request.path());
        rfc6455::HttpResponse::new(200, "text/plain", body)
    })
}

#[test]
fn http_get_without_host_is_400_before_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(http_echo_config(&calls));
    let reply = ask(server.local_addr(), b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(reply.status, 400, "{}", reply.head);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // HTTP/1.0 need not name a host (RFC 9112 §3.2 asks it of HTTP/1.1).
    let reply = ask(server.local_addr(), b"GET /health HTTP/1.0\r\n\r\n");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"GET /health"[..]));
}

#[test]
fn http_get_with_two_hosts_is_400_before_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(http_echo_config(&calls));
    for request in [
        &b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n\r\n"[..],
        b"GET /health HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: not a host\r\n\r\n",
    ] {
        let reply = ask(server.local_addr(), request);
        assert_eq!(reply.status, 400, "{}", reply.head);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn http_2_request_line_is_505_before_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(http_echo_config(&calls));
    let reply = ask(server.local_addr(), b"GET / HTTP/2.0\r\nHost: h\r\n\r\n");
    assert_eq!(reply.status, 505, "{}", reply.head);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn http_head_gets_the_headers_of_get_without_the_body() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(http_echo_config(&calls));
    let get = ask(server.local_addr(), b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((get.status, get.body.as_slice()), (200, &b"GET /health"[..]));
    let head = ask(server.local_addr(), b"HEAD /health HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(head.status, 200, "{}", head.head);
    // RFC 9110 §9.3.2: no content. §8.6: the Content-Length GET would get
    // (the handler saw "HEAD /health", 12 bytes).
    assert_eq!(head.body, b"", "HEAD answered with a body");
    assert_eq!(head.header("content-length"), Some("12"));
    assert_eq!(head.header("content-type"), Some("text/plain"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn http_head_reaches_the_handler_as_head_so_it_can_change_nothing() {
    // A handler whose GET triggers something (the chat's /receive) learns
    // that a request is HEAD from `is_head()` and leaves the trigger alone.
    let triggered = Arc::new(AtomicUsize::new(0));
    let fired = Arc::clone(&triggered);
    let config = ServerConfig::default().http_handler(move |request| {
        if request.path() == "/receive" && !request.is_head() {
            fired.fetch_add(1, Ordering::SeqCst);
        }
        rfc6455::HttpResponse::new(200, "text/plain", "sent\n")
    });
    let server = start(config);
    let head = ask(
        server.local_addr(),
        b"HEAD /receive?msg=X HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(triggered.load(Ordering::SeqCst), 0);
    let get = ask(
        server.local_addr(),
        b"GET /receive?msg=X HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!((get.status, get.body.as_slice()), (200, &b"sent\n"[..]));
    assert_eq!(triggered.load(Ordering::SeqCst), 1);
}

#[test]
fn http_head_without_handler_is_426_without_body() {
    let server = start(ServerConfig::default());
    let get = ask(server.local_addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    let head = ask(server.local_addr(), b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((get.status, head.status), (426, 426), "{}", head.head);
    assert_eq!(head.header("upgrade"), Some("websocket"));
    assert_eq!(head.header("content-length").map(str::to_owned), Some(get.body.len().to_string()));
    assert_eq!(head.body, b"");
}

#[test]
fn handshake_head_with_upgrade_is_405_without_body() {
    let server = start(ServerConfig::default());
    let request = upgrade_request("").replacen("GET", "HEAD", 1);
    let reply = ask(server.local_addr(), request.as_bytes());
    assert_eq!(reply.status, 405, "{}", reply.head);
    assert_eq!(reply.header("allow"), Some("GET"));
    assert_eq!(reply.body, b"");
}

#[test]
fn http_absolute_form_target_routes_on_the_path() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(http_echo_config(&calls));
    let request = format!(
        "GET http://{}/health?verbose=1 HTTP/1.1\r\nHost: {0}\r\n\r\n",
        server.local_addr()
    );
    let reply = ask(server.local_addr(), request.as_bytes());
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"GET /health"[..]));
}

#[test]
fn handshake_absolute_form_target_is_upgraded() {
    // check_upgrade compares the path, so an absolute-form target (RFC 9112
    // §3.2.2: a server MUST accept it) reaches the same endpoint.
    let config = ServerConfig::default()
        .check_upgrade(|request| (request.path() != "/chat").then(rfc6455::HttpResponse::not_found));
    let server = start(config);
    let absolute = upgrade_request("").replacen(
        "GET /chat",
        &format!("GET ws://{}/chat?room=1", server.local_addr()),
        1,
    );
    let mut s = raw(server.local_addr());
    s.write_all(absolute.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut s).status, 101);
    s.write_all(&frame(FIN | TEXT, b"hi")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().payload, b"hi");
    let elsewhere = upgrade_request("").replacen("GET /chat", "GET http://h/other", 1);
    assert_eq!(ask(server.local_addr(), elsewhere.as_bytes()).status, 404);
}

// ---------------------------------------------------------------------------
// Frame abuse: a close frame with the right code, then TCP closed.

#[test]
fn frame_unmasked_is_1002() {
    expect_close_after(ServerConfig::default(), b"\x81\x02hi", 1002);
}

#[test]
fn frame_64bit_length_top_bit_is_1002() {
    let mut bytes = vec![FIN | BINARY, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5];
    bytes.extend_from_slice(&MASK);
    expect_close_after(ServerConfig::default(), &bytes, 1002);
}

#[test]
fn frame_declared_1tib_is_1009_before_any_payload() {
    let _serial = serial();
    let server = start(ServerConfig::default());
    let mut s = handshake(server.local_addr());
    let start = Instant::now();
    s.write_all(&header(FIN | BINARY, 1 << 40)).unwrap();
    assert_eq!(read_close(&mut s), Some(1009));
    assert!(start.elapsed() < SOON);
    expect_eof(&mut s);
    wait_connections(&server, 0, SOON);
}

#[test]
fn frame_declared_512mib_then_trickled_is_1009_without_waiting() {
    let _serial = serial();
    let server = start(ServerConfig::default());
    let mut s = handshake(server.local_addr());
    let mut writer = s.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let start = Instant::now();
    let trickler = thread::spawn(move || {
        if writer.write_all(&header(FIN | TEXT, 512 << 20)).is_err() {
            return;
        }
        for i in 0.. {
            if stopped.load(Ordering::Relaxed) || writer.write_all(&masked_at(b"x", i)).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    let code = read_close(&mut s);
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    trickler.join().unwrap();
    assert_eq!(code, Some(1009));
    assert!(took < Duration::from_secs(2), "1009 after {took:?}");
    wait_connections(&server, 0, SOON);
}

#[test]
fn frame_oversized_ping_is_1002() {
    expect_close_after(ServerConfig::default(), &frame(FIN | PING, &[7; 126]), 1002);
}

#[test]
fn frame_fragmented_ping_is_1002() {
    expect_close_after(ServerConfig::default(), &frame(PING, b"a"), 1002);
}

#[test]
fn frame_reserved_opcodes_are_1002() {
    let cases: Vec<_> = (3..=7)
        .chain(0xB..=0xF)
        .map(|op| (frame(FIN | op, b"x"), 1002))
        .collect();
    expect_close_each(&cases);
}

#[test]
fn frame_rsv_bits_are_1002() {
    let cases: Vec<_> = [0x40, 0x20, 0x10, 0x70]
        .into_iter()
        .map(|rsv| (frame(FIN | rsv | TEXT, b"x"), 1002))
        .collect();
    expect_close_each(&cases);
}

#[test]
fn frame_stray_continuation_is_1002() {
    expect_close_after(ServerConfig::default(), &frame(FIN | CONT, b"x"), 1002);
}

#[test]
fn frame_new_message_inside_fragmented_message_is_1002() {
    let mut bytes = frame(TEXT, b"a");
    bytes.extend(frame(FIN | BINARY, b"b"));
    expect_close_after(ServerConfig::default(), &bytes, 1002);
}

#[test]
fn frame_invalid_utf8_single_frame_is_1007() {
    let cases = vec![
        (frame(FIN | TEXT, b"\xff"), 1007),
        // "κόσμε" then an encoded UTF-16 surrogate (U+D800).
        (
            frame(
                FIN | TEXT,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
            ),
            1007,
        ),
        // An overlong encoding of '/'.
        (frame(FIN | TEXT, b"\xc0\xaf"), 1007),
        // Truncated at the end of the message.
        (frame(FIN | TEXT, b"ok\xe2\x82"), 1007),
    ];
    expect_close_each(&cases);
}

#[test]
fn frame_invalid_utf8_split_across_fragments_is_1007_before_the_message_ends() {
    // The first fragment ends inside a character, the second (not final)
    // does not continue it: fail now, not when the message ends.
    let mut bytes = frame(TEXT, b"ok\xce");
    bytes.extend(frame(CONT, b"A"));
    let server = start(ServerConfig::default());
    let mut s = handshake(server.local_addr());
    s.write_all(&bytes).unwrap();
    assert_eq!(read_close(&mut s), Some(1007));
    expect_eof(&mut s);
    wait_connections(&server, 0, SOON);
}

#[test]
fn frame_invalid_utf8_in_first_fragment_is_1007_at_once() {
    // Autobahn 6.4.x: the message never finishes; the error must not wait.
    let server = start(ServerConfig::default());
    let mut s = handshake(server.local_addr());
    s.write_all(&frame(TEXT, b"hello\xf4\x90\x80\x80")).unwrap();
    assert_eq!(read_close(&mut s), Some(1007));
    expect_eof(&mut s);

    // Also when the bad byte arrives in the middle of a frame still arriving.
    let mut s = handshake(server.local_addr());
    let mut bytes = header(FIN | TEXT, 1000);
    bytes.extend(masked_at(b"abc\xff", 0));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_close(&mut s), Some(1007));
    expect_eof(&mut s);
    wait_connections(&server, 0, SOON);
}

#[test]
fn frame_invalid_close_codes_are_1002() {
    let cases: Vec<_> = [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
        .into_iter()
        .map(|code| (frame(FIN | CLOSE, &code.to_be_bytes()), 1002))
        .collect();
    expect_close_each(&cases);
}

#[test]
fn frame_valid_close_codes_are_echoed() {
    let server = start(ServerConfig::default());
    for code in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
        let mut s = handshake(server.local_addr());
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        s.write_all(&frame(FIN | CLOSE, &payload)).unwrap();
        // RFC 6455 §5.5.1: the endpoint replies with a close frame, typically
        // echoing the status code it received.
        assert_eq!(read_close(&mut s), Some(code));
        expect_eof(&mut s);
    }
    wait_connections(&server, 0, SOON);
}

#[test]
fn frame_close_reason_invalid_utf8_is_1007() {
    expect_close_after(
        ServerConfig::default(),
        &frame(FIN | CLOSE, b"\x03\xe8bad \xff reason"),
        1007,
    );
}

#[test]
fn frame_one_byte_close_payload_is_1002() {
    expect_close_after(ServerConfig::default(), &frame(FIN | CLOSE, b"\x03"), 1002);
}

/// Sends one text message of `total` bytes as `total` one-byte fragments.
fn tiny_fragments(total: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(total * 7);
    for i in 0..total {
        let first = match (i, i + 1 == total) {
            (0, _) => TEXT,
            (_, true) => FIN | CONT,
            _ => CONT,
        };
        wire.extend(frame(first, b"z"));
    }
    wire
}

#[test]
fn frame_300k_tiny_fragments_complete_with_bounded_memory() {
    let _serial = serial();
    const TOTAL: usize = 300_000;
    // The handler reports how much heap its thread held at the peak while
    // reassembling the message.
    let peak = Arc::new(AtomicUsize::new(0));
    let server = start_measuring(ServerConfig::default(), Arc::clone(&peak));
    let mut s = handshake(server.local_addr());
    let wire = tiny_fragments(TOTAL);
    let mut writer = s.try_clone().unwrap();
    let feeder = thread::spawn(move || writer.write_all(&wire));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let echo = read_frame(&mut s).unwrap();
    feeder.join().unwrap().unwrap();
    assert_eq!((echo.fin, echo.opcode), (true, TEXT));
    assert_eq!(echo.payload.len(), TOTAL);
    assert!(echo.payload.iter().all(|&b| b == b'z'));
    // The message buffer grows geometrically to hold 300,000 bytes; a
    // per-fragment allocation or header kept around would cost megabytes.
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak < 2 * TOTAL + 256 * 1024,
        "{peak} bytes of heap for a {TOTAL}-byte message"
    );
}

#[test]
fn frame_tiny_fragments_over_max_message_are_1009() {
    let _serial = serial();
    let config = ServerConfig::default().protocol(SizeLimits::default().max_message_size(100_000));
    let server = start(config);
    let mut s = handshake(server.local_addr());
    let wire = tiny_fragments(300_000);
    let mut writer = s.try_clone().unwrap();
    // The server stops reading after 100,000 fragments: the write may fail.
    let feeder = thread::spawn(move || {
        let _ = writer.write_all(&wire);
    });
    assert_eq!(read_close(&mut s), Some(1009));
    drop(s);
    feeder.join().unwrap();
    wait_connections(&server, 0, SOON);
}

#[test]
fn frame_empty_fragments_cost_nothing() {
    let _serial = serial();
    // 100,000 empty continuation frames: legal, and must not accumulate.
    let server = start(ServerConfig::default());
    let mut s = handshake(server.local_addr());
    let mut wire = frame(BINARY, b"");
    for _ in 0..100_000 {
        wire.extend(frame(CONT, b""));
    }
    wire.extend(frame(FIN | CONT, b"end"));
    s.write_all(&wire).unwrap();
    let echo = read_frame(&mut s).unwrap();
    assert_eq!(
        (echo.opcode, echo.payload.as_slice()),
        (BINARY, &b"end"[..])
    );
}

#[test]
fn frame_fragments_over_max_message_are_1009() {
    let config = ServerConfig::default().protocol(SizeLimits::default().max_message_size(1000));
    let server = start(config);
    let mut s = handshake(server.local_addr());
    // 200-byte fragments: the sixth one would make 1200 bytes. Its header
    // alone must fail the connection; the payload is not even sent.
    s.write_all(&frame(BINARY, &[1; 200])).unwrap();
    for _ in 1..5 {
        s.write_all(&frame(CONT, &[1; 200])).unwrap();
    }
    s.write_all(&header(CONT, 200)).unwrap();
    assert_eq!(read_close(&mut s), Some(1009));
    expect_eof(&mut s);
    wait_connections(&server, 0, SOON);
}

#[test]
fn frame_over_max_frame_size_is_1009() {
    let config = ServerConfig::default().protocol(SizeLimits::default().max_frame_size(1024));
    expect_close_after(config, &header(FIN | BINARY, 1025), 1009);
}

// ---------------------------------------------------------------------------
// Faults: the connection's thread is freed in bounded time.

#[test]
fn fault_peer_vanishes_mid_frame() {
    let server = start(ServerConfig::default());
    // A clean end of stream in the middle of a frame.
    let mut s = handshake(server.local_addr());
    let mut bytes = header(FIN | BINARY, 1000);
    bytes.extend(masked_at(&[9; 10], 0));
    s.write_all(&bytes).unwrap();
    wait_connections(&server, 1, SOON);
    s.shutdown(Shutdown::Both).unwrap();
    drop(s);
    wait_connections(&server, 0, SOON);

    // A reset: closing a socket with unread input makes the kernel send RST
    // instead of FIN. Get an echo we never read, then half a frame, then go.
    let mut s = handshake(server.local_addr());
    s.write_all(&frame(FIN | TEXT, b"unread")).unwrap();
    thread::sleep(Duration::from_millis(100));
    s.write_all(&bytes).unwrap();
    wait_connections(&server, 1, SOON);
    drop(s);
    wait_connections(&server, 0, SOON);
}

#[test]
fn fault_half_close_ends_the_connection() {
    let server = start(ServerConfig::default());
    let mut s = handshake(server.local_addr());
    s.write_all(&frame(FIN | TEXT, b"last words")).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // The echo of what came before still arrives, then the server closes.
    let echo = read_frame(&mut s).unwrap();
    assert_eq!(echo.payload, b"last words");
    expect_eof(&mut s);
    wait_connections(&server, 0, SOON);
}

#[test]
fn fault_peer_never_reads_frees_the_thread() {
    let _serial = serial();
    let config = ServerConfig::default().write_timeout(Some(Duration::from_millis(500)));
    let server = start_flooding(config);
    let s = handshake(server.local_addr());
    wait_connections(&server, 1, SOON);
    let start = Instant::now();
    // Never read: the socket buffers fill and a write makes no progress for
    // 0.5 s. (A write that made some progress before blocking returns it, and
    // the next one gets its own second: expect a few seconds, not forever.)
    wait_connections(&server, 0, Duration::from_secs(8));
    assert!(start.elapsed() >= Duration::from_millis(400));
    drop(s);
}

fn check_close_timeout(config: ServerConfig) {
    let server = start_closing_on_first_message(config);
    let mut s = handshake(server.local_addr());
    s.write_all(&frame(FIN | TEXT, b"hi")).unwrap();
    assert_eq!(read_close(&mut s), Some(1000));
    // Never answer the close: the server must drop TCP on its own.
    let start = Instant::now();
    expect_eof(&mut s);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(3),
        "TCP closed {took:?} after the close frame"
    );
    wait_connections(&server, 0, SOON);
}

#[test]
fn fault_peer_never_answers_close() {
    let _serial = serial();
    check_close_timeout(ServerConfig::default().close_timeout(Duration::from_millis(300)));
}

#[test]
fn fault_peer_never_answers_close_without_keepalive() {
    let _serial = serial();
    // No keepalive and no idle timeout: the close timeout alone must still
    // bound the wait.
    check_close_timeout(
        ServerConfig::default()
            .keepalive(None)
            .close_timeout(Duration::from_millis(300)),
    );
}

#[test]
fn fault_peer_that_keeps_pinging_but_never_answers_close() {
    let _serial = serial();
    // Traffic after our close must not keep the connection alive: the close
    // timeout counts from the close, not from the last silence.
    let config = ServerConfig::default()
        .keepalive(None)
        .close_timeout(Duration::from_millis(500));
    let server = start_closing_on_first_message(config);
    let mut s = handshake(server.local_addr());
    s.write_all(&frame(FIN | TEXT, b"hi")).unwrap();
    assert_eq!(read_close(&mut s), Some(1000));
    let start = Instant::now();
    let mut pinger = s.try_clone().unwrap();
    let pinging = thread::spawn(move || {
        // A ping every 100 ms, well inside any read tick, for up to 5 s.
        while start.elapsed() < Duration::from_secs(5) {
            if pinger.write_all(&frame(FIN | PING, b"")).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    wait_connections(&server, 0, Duration::from_secs(4));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "held for {took:?} after the close"
    );
    drop(s);
    pinging.join().unwrap();
}

#[test]
fn fault_ping_flood_from_a_peer_that_never_reads() {
    let _serial = serial();
    // Every ping queues a pong; a peer that never reads them must cost a
    // bounded buffer and, once the socket buffers are full, the write
    // timeout, never an unbounded queue.
    let config = ServerConfig::default()
        .write_timeout(Some(Duration::from_millis(500)))
        .close_timeout(Duration::from_millis(500));
    let server = start(config);
    let s = handshake(server.local_addr());
    let mut writer = s.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ping = frame(FIN | PING, &[0x55; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 512)
        .collect();
    let flooder = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if let Err(e) = writer.write_all(&burst) {
                if e.kind() != io::ErrorKind::WouldBlock {
                    return;
                }
            }
        }
    });
    wait_connections(&server, 1, SOON);
    // Write timeouts, then at most the close timeout draining the flood.
    wait_connections(&server, 0, Duration::from_secs(8));
    drop(s);
    flooder.join().unwrap();
}

#[test]
fn fault_handler_panic_costs_only_its_connection() {
    let server = start_panicking_on(b"panic");
    let mut victim = handshake(server.local_addr());
    victim.write_all(&frame(FIN | TEXT, b"panic")).unwrap();
    expect_eof(&mut victim);
    wait_connections(&server, 0, SOON);
    let mut s = handshake(server.local_addr());
    s.write_all(&frame(FIN | TEXT, b"fine")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().payload, b"fine");
}

#[test]
fn handshake_with_pipelined_frames_is_served() {
    // Frames sent in the same write as the request are not lost, and a bad
    // one is caught just the same.
    let server = start(ServerConfig::default());
    let mut s = raw(server.local_addr());
    let mut bytes = upgrade_request("").into_bytes();
    bytes.extend(frame(FIN | TEXT, b"early"));
    bytes.extend(frame(FIN | 0x3, b"bad"));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_reply(&mut s).status, 101);
    assert_eq!(read_frame(&mut s).unwrap().payload, b"early");
    assert_eq!(read_close(&mut s), Some(1002));
    expect_eof(&mut s);
}

fn keepalive_config() -> ServerConfig {
    ServerConfig::default().keepalive(Some(Keepalive {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(200),
    }))
}

#[test]
fn fault_idle_peer_without_pong_is_closed_1011() {
    let _serial = serial();
    let server = start(keepalive_config());
    let mut s = handshake(server.local_addr());
    let start = Instant::now();
    let ping = read_frame(&mut s).unwrap();
    assert_eq!(ping.opcode, PING);
    // Due after 200-400 ms; the bounds leave room for a loaded machine while
    // staying far below the 20 s defaults.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "ping after {:?}",
        start.elapsed()
    );
    // No pong: documented as close 1011 after the ping timeout.
    assert_eq!(read_close(&mut s), Some(1011));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    // The close frame answered, TCP closes.
    s.write_all(&frame(FIN | CLOSE, &1011u16.to_be_bytes()))
        .unwrap();
    expect_eof(&mut s);
    wait_connections(&server, 0, SOON);
}

#[test]
fn fault_idle_peer_with_idle_timeout_is_closed_1001() {
    let _serial = serial();
    let config = ServerConfig::default()
        .keepalive(None)
        .idle_timeout(Some(Duration::from_millis(300)));
    let server = start(config);
    let mut s = handshake(server.local_addr());
    let start = Instant::now();
    // Traffic resets the idle clock.
    s.write_all(&frame(FIN | TEXT, b"hi")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().payload, b"hi");
    assert_eq!(read_close(&mut s), Some(1001));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );
    s.write_all(&frame(FIN | CLOSE, &1001u16.to_be_bytes()))
        .unwrap();
    expect_eof(&mut s);
    wait_connections(&server, 0, SOON);
}

#[test]
fn fault_silent_peer_without_keepalive_or_idle_timeout_stays_open() {
    let _serial = serial();
    // The server's read timeout is only a clock tick (here every 200 ms, the
    // close timeout): silence longer than that is not an error.
    let config = ServerConfig::default()
        .keepalive(None)
        .close_timeout(Duration::from_millis(200));
    let server = start(config);
    let mut s = handshake(server.local_addr());
    thread::sleep(Duration::from_millis(1000));
    s.write_all(&frame(FIN | TEXT, b"still here")).unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.opcode, f.payload.as_slice()), (TEXT, &b"still here"[..]));
    assert_eq!(server.connections(), 1);
}

#[test]
fn fault_idle_peer_answering_pings_stays_open() {
    let _serial = serial();
    let server = start(keepalive_config());
    let mut s = handshake(server.local_addr());
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        let f = read_frame(&mut s).expect("a ping");
        assert_eq!(f.opcode, PING, "{f:?}");
        pings += 1;
        s.write_all(&frame(FIN | PONG, &f.payload)).unwrap();
    }
    assert!(pings >= 3, "{pings} pings in 1.5 s");
    s.write_all(&frame(FIN | TEXT, b"still here")).unwrap();
    let f = loop {
        let f = read_frame(&mut s).unwrap();
        if f.opcode != PING {
            break f;
        }
    };
    assert_eq!((f.opcode, f.payload.as_slice()), (TEXT, &b"still here"[..]));
    assert_eq!(server.connections(), 1);
}

#[test]
fn fault_2000_idle_connections_all_served() {
    let _serial = serial();
    const N: usize = 2000;
    let server = start(ServerConfig::default());
    let mut clients: Vec<TcpStream> = (0..N).map(|_| handshake(server.local_addr())).collect();
    wait_connections(&server, N, SOON);
    // Every one of them is alive: each gets its own echo.
    for (i, s) in clients.iter_mut().enumerate() {
        s.write_all(&frame(FIN | TEXT, i.to_string().as_bytes()))
            .unwrap();
    }
    for (i, s) in clients.iter_mut().enumerate() {
        let f = read_frame(s).unwrap();
        assert_eq!(f.payload, i.to_string().as_bytes());
    }
    drop(clients);
    wait_connections(&server, 0, Duration::from_secs(10));
}

#[test]
fn fault_over_max_connections_is_503() {
    let server = start(ServerConfig::default().max_connections(3));
    let mut held: Vec<TcpStream> = (0..3).map(|_| handshake(server.local_addr())).collect();
    wait_connections(&server, 3, SOON);
    for _ in 0..3 {
        let reply = ask(server.local_addr(), upgrade_request("").as_bytes());
        assert_eq!(reply.status, 503, "{}", reply.head);
    }
    assert_eq!(server.connections(), 3);
    // A slot frees up: the next client gets in.
    held.pop();
    wait_connections(&server, 2, SOON);
    let mut s = handshake(server.local_addr());
    s.write_all(&frame(FIN | TEXT, b"in")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().payload, b"in");
}

#[test]
fn fault_shutdown_while_busy_sends_1001() {
    let _serial = serial();
    const CLIENTS: usize = 4;
    let config = ServerConfig::default().shutdown_timeout(Duration::from_secs(2));
    let server = start(config);
    let addr = server.local_addr();
    let (tx, rx) = std::sync::mpsc::channel();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    for c in 0..CLIENTS {
        let tx = tx.clone();
        let ready_tx = ready_tx.clone();
        thread::spawn(move || {
            let mut s = handshake(addr);
            let _ = ready_tx.send(());
            let t0 = Instant::now();
            let mut writer = s.try_clone().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = Arc::clone(&stop);
            // Streams messages as fast as the server takes them ...
            let pump = thread::spawn(move || {
                let msg = frame(FIN | BINARY, &[c as u8; 1000]);
                while !stopped.load(Ordering::Relaxed) {
                    if writer.write_all(&msg).is_err() {
                        break;
                    }
                }
            });
            // ... while reading the echoes, until the close frame.
            let code = loop {
                match read_frame(&mut s) {
                    Ok(f) if f.opcode == CLOSE => {
                        break Ok(u16::from_be_bytes([f.payload[0], f.payload[1]]))
                    }
                    Ok(f) => assert_eq!(f.payload, [c as u8; 1000]),
                    Err(e) => break Err(format!("client {c}: {e} after {:?}", t0.elapsed())),
                }
            };
            stop.store(true, Ordering::Relaxed);
            // Unblocks the pump if it is stuck in a write.
            let _ = s.shutdown(Shutdown::Both);
            let _ = pump.join();
            tx.send(code).unwrap();
        });
    }
    drop(tx);
    // Every client past its handshake (a connection still in its handshake
    // at shutdown gets no 1001: it never was a WebSocket), and streaming.
    for _ in 0..CLIENTS {
        ready.recv_timeout(Duration::from_secs(10)).expect("handshake");
    }
    wait_connections(&server, CLIENTS, SOON);
    thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    server.shutdown().unwrap();
    let took = start.elapsed();
    let codes: Vec<_> = rx.iter().collect();
    assert_eq!(codes, vec![Ok(1001); CLIENTS]);
    // Normally at once; at worst the 2 s shutdown timeout, then up to 2 s
    // for the cut-off threads to leave (as `serve` documents).
    assert!(
        took < Duration::from_millis(4500),
        "serve returned after {took:?}"
    );
}

#[test]
fn fault_shutdown_while_idle_sends_1001_and_returns_fast() {
    let _serial = serial();
    let server = start(ServerConfig::default());
    let mut clients: Vec<TcpStream> = (0..10).map(|_| handshake(server.local_addr())).collect();
    wait_connections(&server, 10, SOON);
    let start = Instant::now();
    server.shutdown().unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
    for s in &mut clients {
        assert_eq!(read_close(s), Some(1001));
    }
}

// A server-wide budget for messages partly received (issue 23): the newest
// message that would pass it fails its connection with 1013, the others
// complete, and the budget is given back for the next ones.
#[test]
fn limit_partly_received_messages_past_the_server_budget_fail_the_newest_with_1013() {
    let budget = rfc6455::protocol::Budget::new(1 << 20);
    let server = start(ServerConfig::default().memory_budget(Some(budget.clone())));
    let part = vec![b'a'; 600 << 10];
    // The first connection holds 600 KiB of an unfinished message...
    let mut first = handshake(server.local_addr());
    first.write_all(&frame(TEXT, &part)).unwrap();
    let deadline = Instant::now() + SOON;
    while budget.used() < 600 << 10 {
        assert!(Instant::now() < deadline, "never charged: {budget:?}");
        thread::sleep(Duration::from_millis(10));
    }
    // ... so the second one's 600 KiB would pass the 1 MiB budget: 1013.
    let mut second = handshake(server.local_addr());
    second.write_all(&frame(TEXT, &part)).unwrap();
    assert_eq!(read_close(&mut second), Some(1013));
    expect_eof(&mut second);
    assert_eq!(budget.refused(), 1);
    // The first completes its message; the budget is given back.
    first.write_all(&frame(FIN | CONT, b"!")).unwrap();
    let echo = read_frame(&mut first).unwrap();
    assert_eq!(echo.payload.len(), part.len() + 1);
    assert_eq!(budget.used(), 0, "{budget:?}");
    // A new one fits again.
    let mut third = handshake(server.local_addr());
    third.write_all(&frame(TEXT, &part)).unwrap();
    third.write_all(&frame(FIN | CONT, b"?")).unwrap();
    assert_eq!(read_frame(&mut third).unwrap().payload.len(), part.len() + 1);
}
