//! wss:// end to end (feature `tls`): certificates made at test time with
//! rcgen (no private key is checked in), the client's verification cases,
//! split halves in full duplex over one shared TLS session, and the server's
//! answers to hostile peers. Each test is named after its case.
#![cfg(feature = "tls")]

use rfc6455::transport::tls::{client_config_with_ca, rustls};
use rfc6455::transport::TlsErrorKind;
use rfc6455::{
    connect_with, ClientConfig, Error, Message, RunningServer, Server, ServerConfig,
    ServerWebSocket,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A CA and certificates it signs, written as PEM into a fresh directory.
struct Pki {
    dir: PathBuf,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
}

struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("rfc6455-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rfc6455 test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ca_pem = cert.pem();
        std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
        Pki {
            dir,
            ca: rcgen::Issuer::new(params, key),
            ca_pem,
        }
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A leaf for `names`, valid now unless `expired`.
    fn leaf(&self, file: &str, names: &[&str], expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let leaf = Leaf {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
        };
        std::fs::write(&leaf.cert, cert.pem() + &self.ca_pem).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }

    fn server_tls(&self, leaf: &Leaf) -> Arc<rustls::ServerConfig> {
        rfc6455::transport::tls::server_config_from_pem(&leaf.cert, &leaf.key).unwrap()
    }

    fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        client_config_with_ca(self.ca_path()).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn echo(mut ws: ServerWebSocket) -> rfc6455::Result<()> {
    loop {
        let message = ws.read()?;
        if message.is_data() {
            ws.write(message)?;
        }
    }
}

fn test_config() -> ServerConfig {
    ServerConfig::default()
        .keepalive(None)
        .shutdown_timeout(Duration::from_secs(3))
        .close_timeout(Duration::from_secs(3))
}

fn serve<F>(config: ServerConfig, handler: F) -> RunningServer
where
    F: Fn(ServerWebSocket, rfc6455::handshake::http::Request) -> rfc6455::Result<()>
        + Send
        + Sync
        + 'static,
{
    Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(handler)
        .unwrap()
}

fn wss(addr: SocketAddr) -> String {
    format!("wss://localhost:{}/", addr.port())
}

fn client(tls: Arc<rustls::ClientConfig>) -> ClientConfig {
    ClientConfig::default()
        .tls(tls)
        .read_timeout(Some(IO_TIMEOUT))
        .handshake_timeout(IO_TIMEOUT)
}

fn tls_error_kind(result: rfc6455::Result<impl Sized>) -> TlsErrorKind {
    match result {
        Err(Error::Tls(e)) => {
            eprintln!("as expected: {e}");
            e.kind
        }
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("expected a TLS error, the connection succeeded"),
    }
}

fn wait_connections(server: &RunningServer, n: usize) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.handle().connections() != n {
        assert!(Instant::now() < deadline, "connections never reached {n}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn good_chain_echoes_text_and_large_binary() {
    let pki = Pki::new("good");
    let leaf = pki.leaf("server", &["localhost"], false);
    let server = serve(
        test_config().tls_pem(&leaf.cert, &leaf.key).unwrap(),
        |ws, _| echo(ws),
    );
    let (mut ws, response) =
        connect_with(&wss(server.local_addr()), &client(pki.client_tls())).expect("wss connect");
    assert_eq!(response.status, 101);
    assert!(ws.get_ref().is_tls());
    ws.send(Message::Text("hello over TLS".into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("hello over TLS".into()));
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::Binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(big));
    ws.close(1000, "done").unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => {}
            Err(Error::ConnectionClosed) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn wrong_host_name_is_refused_naming_the_host() {
    let pki = Pki::new("name");
    let leaf = pki.leaf("server", &["other.example"], false);
    let server = serve(test_config().tls(pki.server_tls(&leaf)), |ws, _| echo(ws));
    let result = connect_with(&wss(server.local_addr()), &client(pki.client_tls()));
    if let Err(Error::Tls(e)) = &result {
        assert!(e.to_string().contains("localhost"), "{e}");
    }
    assert_eq!(tls_error_kind(result), TlsErrorKind::NameMismatch);
}

#[test]
fn expired_certificate_is_refused() {
    let pki = Pki::new("expired");
    let leaf = pki.leaf("server", &["localhost"], true);
    let server = serve(test_config().tls(pki.server_tls(&leaf)), |ws, _| echo(ws));
    let result = connect_with(&wss(server.local_addr()), &client(pki.client_tls()));
    assert_eq!(tls_error_kind(result), TlsErrorKind::Expired);
}

#[test]
fn unknown_ca_is_refused_by_default_trust() {
    let pki = Pki::new("unknown");
    let leaf = pki.leaf("server", &["localhost"], false);
    let server = serve(test_config().tls(pki.server_tls(&leaf)), |ws, _| echo(ws));
    // The default config: Mozilla roots only, which do not know our CA.
    let config = ClientConfig::default().handshake_timeout(IO_TIMEOUT);
    let result = connect_with(&wss(server.local_addr()), &config);
    assert_eq!(tls_error_kind(result), TlsErrorKind::UnknownIssuer);
}

fn client_auth_server(pki: &Pki, leaf: &Leaf) -> RunningServer {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rfc6455::transport::tls::load_certs(pki.ca_path()).unwrap()[0].clone())
        .unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let certs = rfc6455::transport::tls::load_certs(&leaf.cert).unwrap();
    let key = rfc6455::transport::tls::load_private_key(&leaf.key).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    serve(test_config().tls(Arc::new(tls)), |ws, _| echo(ws))
}

#[test]
fn client_certificate_required_and_missing_is_refused() {
    let pki = Pki::new("mtls-missing");
    let leaf = pki.leaf("server", &["localhost"], false);
    let server = client_auth_server(&pki, &leaf);
    let result = connect_with(&wss(server.local_addr()), &client(pki.client_tls()));
    assert_eq!(tls_error_kind(result), TlsErrorKind::CertificateRequired);
}

#[test]
fn client_certificate_required_and_given_is_accepted() {
    let pki = Pki::new("mtls-given");
    let leaf = pki.leaf("server", &["localhost"], false);
    let me = pki.leaf("client", &["client.test"], false);
    let server = client_auth_server(&pki, &leaf);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rfc6455::transport::tls::load_certs(pki.ca_path()).unwrap()[0].clone())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            rfc6455::transport::tls::load_certs(&me.cert).unwrap(),
            rfc6455::transport::tls::load_private_key(&me.key).unwrap(),
        )
        .unwrap();
    let (mut ws, _) = connect_with(&wss(server.local_addr()), &client(Arc::new(tls))).unwrap();
    ws.send(Message::Text("mutual".into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("mutual".into()));
}

/// Both ways at once over one TLS session: each side's reader is blocked
/// in `read` (started before anything is sent) while its writer sends.
#[test]
fn split_full_duplex_reader_blocked_while_writer_sends_both_ways() {
    const N: usize = 300;
    let pki = Pki::new("duplex");
    let leaf = pki.leaf("server", &["localhost"], false);
    let server = serve(test_config().tls(pki.server_tls(&leaf)), |ws, _| {
        let (mut reader, writer) = ws.split()?;
        let sender = thread::spawn(move || {
            for i in 0..N {
                writer.send(Message::Text(format!("s{i}")))?;
            }
            Ok::<_, Error>(writer)
        });
        for i in 0..N {
            assert_eq!(reader.read()?, Message::Text(format!("c{i}")));
        }
        let writer = sender.join().unwrap()?;
        writer.close(1000, "both done")?;
        loop {
            reader.read()?;
        }
    });
    let (ws, _) = connect_with(&wss(server.local_addr()), &client(pki.client_tls())).unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let (tx, rx) = mpsc::channel();
    let receiver = thread::spawn(move || {
        let mut got = 0;
        loop {
            match reader.read() {
                Ok(Message::Text(t)) => {
                    assert_eq!(t, format!("s{got}"));
                    got += 1;
                }
                Ok(Message::Close(_)) => {}
                Ok(other) => panic!("unexpected {other:?}"),
                Err(Error::ConnectionClosed) => break,
                Err(e) => panic!("read failed: {e}"),
            }
        }
        tx.send(got).unwrap();
    });
    // The reader is blocked in read by now (nothing was sent yet).
    thread::sleep(Duration::from_millis(50));
    for i in 0..N {
        writer.send(Message::Text(format!("c{i}"))).unwrap();
    }
    let got = rx
        .recv_timeout(IO_TIMEOUT)
        .expect("the client reader finished");
    assert_eq!(got, N);
    receiver.join().unwrap();
}

/// A writer blocked on a peer that does not read must not stop the reader:
/// the server's writer fills the socket while the server's reader still
/// gets the client's message (and the reverse, once the client drains).
#[test]
fn split_reader_not_blocked_by_writer_blocked_on_full_socket() {
    let pki = Pki::new("blocked");
    let leaf = pki.leaf("server", &["localhost"], false);
    let (got_tx, got_rx) = mpsc::channel();
    let got_tx = std::sync::Mutex::new(got_tx);
    let server = serve(
        test_config()
            .tls(pki.server_tls(&leaf))
            .write_timeout(Some(Duration::from_secs(20))),
        move |ws, _| {
            let (mut reader, writer) = ws.split()?;
            let flood = thread::spawn(move || {
                let chunk = vec![7u8; 64 * 1024];
                for _ in 0..64 {
                    // 4 MiB: far more than the socket buffers hold.
                    writer.send(Message::Binary(chunk.clone()))?;
                }
                writer.close(1000, "flooded")
            });
            let message = reader.read()?;
            got_tx.lock().unwrap().send(message).unwrap();
            flood.join().unwrap()?;
            loop {
                reader.read()?;
            }
        },
    );
    let (mut ws, _) = connect_with(&wss(server.local_addr()), &client(pki.client_tls())).unwrap();
    // Let the server's writer fill the socket buffers and block.
    thread::sleep(Duration::from_millis(300));
    ws.send(Message::Text("while you write".into())).unwrap();
    let got = got_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the server's reader got the message while its writer was blocked");
    assert_eq!(got, Message::Text("while you write".into()));
    let mut bytes = 0;
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) => bytes += b.len(),
            Ok(Message::Close(_)) => {}
            Err(Error::ConnectionClosed) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(bytes, 64 * 64 * 1024);
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Reads until the server closes; returns what came and how long it took.
fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close from the server: {e}"),
        }
    }
    (all, start.elapsed())
}

fn tls_server(name: &str, config: ServerConfig) -> (Pki, RunningServer) {
    let pki = Pki::new(name);
    let leaf = pki.leaf("server", &["localhost"], false);
    let server = serve(config.tls(pki.server_tls(&leaf)), |ws, _| echo(ws));
    (pki, server)
}

#[test]
fn hostile_garbage_instead_of_client_hello_is_cut_at_once() {
    let (_pki, server) = tls_server("garbage", test_config());
    let mut s = raw(server.local_addr());
    // Binary junk (not an HTTP request): rustls refuses the record.
    let _ = s.write_all(&[0xffu8; 4096]);
    let (reply, took) = read_to_close(&mut s);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // At most an alert record, never an HTTP answer or an echo.
    assert!(reply.len() < 64, "{} bytes", reply.len());
    wait_connections(&server, 0);
}

#[test]
fn hostile_tls_handshake_stalling_half_way_is_cut_at_handshake_timeout() {
    let (_pki, server) = tls_server(
        "stall",
        test_config().handshake_timeout(Duration::from_millis(700)),
    );
    let mut s = raw(server.local_addr());
    // A real ClientHello, then silence: the server's flight comes back and
    // the client never finishes.
    let tls = client_config_with_ca(_pki.ca_path()).unwrap();
    let mut conn = rustls::ClientConnection::new(tls, "localhost".try_into().unwrap()).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    s.write_all(&hello).unwrap();
    let (reply, took) = read_to_close(&mut s);
    assert!(!reply.is_empty(), "the server answered the hello");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "cut after {took:?}"
    );
    wait_connections(&server, 0);
}

#[test]
fn hostile_tcp_open_and_silent_is_cut_at_handshake_timeout() {
    let (_pki, server) = tls_server(
        "silent",
        test_config().handshake_timeout(Duration::from_millis(500)),
    );
    let mut s = raw(server.local_addr());
    let (reply, took) = read_to_close(&mut s);
    assert!(reply.is_empty());
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "cut after {took:?}"
    );
}

#[test]
fn hostile_plaintext_http_on_tls_port_gets_400_naming_tls() {
    let (_pki, server) = tls_server("plaintext", test_config());
    let mut s = raw(server.local_addr());
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    let (reply, took) = read_to_close(&mut s);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("TLS"), "{reply}");
    assert!(took < Duration::from_secs(2));
}

#[test]
fn hostile_client_that_never_reads_is_freed_by_write_timeout() {
    let pki = Pki::new("noread");
    let leaf = pki.leaf("server", &["localhost"], false);
    let (done_tx, done_rx) = mpsc::channel();
    let done_tx = std::sync::Mutex::new(done_tx);
    let server = serve(
        test_config()
            .tls(pki.server_tls(&leaf))
            .write_timeout(Some(Duration::from_millis(500))),
        move |mut ws, _| {
            let chunk = vec![1u8; 64 * 1024];
            let result = (0..10_000).try_for_each(|_| ws.send(Message::Binary(chunk.clone())));
            done_tx.lock().unwrap().send(format!("{result:?}")).unwrap();
            result
        },
    );
    let (_ws, _) = connect_with(&wss(server.local_addr()), &client(pki.client_tls())).unwrap();
    let ended = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the handler's write timed out");
    assert!(ended.contains("Io"), "{ended}");
    wait_connections(&server, 0);
}

#[test]
fn max_connections_over_tls_answers_503_encrypted() {
    let (pki, server) = tls_server("busy", test_config().max_connections(1));
    let config = client(pki.client_tls());
    let (_first, _) = connect_with(&wss(server.local_addr()), &config).unwrap();
    wait_connections(&server, 1);
    match connect_with(&wss(server.local_addr()), &config) {
        Err(e) => assert!(e.to_string().contains("503"), "{e}"),
        Ok(_) => panic!("a second connection over the cap was accepted"),
    }
}

#[test]
fn shutdown_over_tls_sends_1001() {
    let (pki, server) = tls_server("shutdown", test_config());
    let (mut ws, _) = connect_with(&wss(server.local_addr()), &client(pki.client_tls())).unwrap();
    ws.send(Message::Text("x".into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("x".into()));
    let stopper = thread::spawn(move || server.shutdown());
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code.0, 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    stopper.join().unwrap().unwrap();
}

#[test]
fn keepalive_ping_over_tls_is_answered() {
    let (pki, server) = tls_server(
        "keepalive",
        test_config().keepalive(Some(rfc6455::Keepalive::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
        ))),
    );
    let (mut ws, _) = connect_with(&wss(server.local_addr()), &client(pki.client_tls())).unwrap();
    match ws.read() {
        Ok(Message::Ping(_)) => {}
        other => panic!("expected the server's keepalive ping, got {other:?}"),
    }
    ws.send(Message::Text("still here".into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("still here".into()));
}

#[test]
fn http_handler_is_served_over_https_and_closed_with_close_notify() {
    let pki = Pki::new("https");
    let leaf = pki.leaf("server", &["localhost"], false);
    let server = serve(
        test_config()
            .tls(pki.server_tls(&leaf))
            .http_handler(|_| rfc6455::HttpResponse::new(200, "text/plain", "hello https\n")),
        |ws, _| echo(ws),
    );
    let conn =
        rustls::ClientConnection::new(pki.client_tls(), "localhost".try_into().unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, raw(server.local_addr()));
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    // rustls reports a TCP close without close_notify as UnexpectedEof:
    // Ok means the server closed TLS properly when it dropped the stream.
    tls.read_to_end(&mut reply)
        .expect("a clean TLS close (close_notify) after the response");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("hello https\n"), "{reply}");
}

#[test]
fn wss_url_without_port_uses_443_and_plain_host_header() {
    let url = rfc6455::client::WsUrl::parse("wss://example.com/chat").unwrap();
    assert!(url.tls);
    assert_eq!((url.port, url.explicit_port), (443, false));
}

#[test]
fn wss_to_a_plaintext_server_is_not_tls_error() {
    let server = serve(test_config(), |ws, _| echo(ws));
    let pki = Pki::new("plainserver");
    let result = connect_with(&wss(server.local_addr()), &client(pki.client_tls()));
    assert_eq!(tls_error_kind(result), TlsErrorKind::NotTls);
}

#[test]
fn client_tls_handshake_against_silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = thread::spawn(move || listener.accept().map(|(s, _)| s));
    let pki = Pki::new("silentserver");
    let config = client(pki.client_tls()).handshake_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let result = connect_with(&wss(addr), &config);
    assert_eq!(tls_error_kind(result), TlsErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(holder.join());
}

#[test]
fn stream_shutdown_write_sends_close_notify() {
    let pki = Pki::new("shutdownwrite");
    let leaf = pki.leaf("server", &["localhost"], false);
    let server = serve(test_config().tls(pki.server_tls(&leaf)), |ws, _| {
        // Without the Transport trait in scope: the inherent method, not
        // the TcpStream's behind Deref.
        ws.get_ref().shutdown(std::net::Shutdown::Write)?;
        thread::sleep(Duration::from_millis(300));
        Ok(())
    });
    let conn =
        rustls::ClientConnection::new(pki.client_tls(), "localhost".try_into().unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, raw(server.local_addr()));
    tls.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut reply = Vec::new();
    // rustls reports a FIN without close_notify as UnexpectedEof.
    tls.read_to_end(&mut reply)
        .expect("close_notify before the FIN");
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 101"));
}

/// The client's side of the same guarantee: its writer is blocked on a
/// server that does not read, and its reader still gets the server's
/// message over the shared TLS session.
#[test]
fn split_client_reader_not_blocked_by_its_writer_blocked_on_full_socket() {
    const CHUNKS: usize = 256;
    let pki = Pki::new("clientblocked");
    let leaf = pki.leaf("server", &["localhost"], false);
    let server = serve(test_config().tls(pki.server_tls(&leaf)), |mut ws, _| {
        // Not reading yet: the client's writer fills the socket and blocks.
        thread::sleep(Duration::from_millis(400));
        ws.send(Message::Text("while you are blocked".into()))?;
        for _ in 0..CHUNKS {
            match ws.read()? {
                Message::Binary(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        ws.close(1000, "drained")?;
        loop {
            ws.read()?;
        }
    });
    let config = client(pki.client_tls()).write_timeout(Some(Duration::from_secs(20)));
    let (ws, _) = connect_with(&wss(server.local_addr()), &config).unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let flood = thread::spawn(move || {
        let chunk = vec![9u8; 64 * 1024];
        for _ in 0..CHUNKS {
            writer.send(Message::Binary(chunk.clone())).unwrap();
        }
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let first = reader.read().unwrap();
    assert_eq!(first, Message::Text("while you are blocked".into()));
    assert!(
        !done.load(std::sync::atomic::Ordering::SeqCst),
        "the writer was expected to be still blocked (16 MiB to a server not reading)"
    );
    flood.join().unwrap();
    loop {
        match reader.read() {
            Ok(Message::Close(_)) => {}
            Err(Error::ConnectionClosed) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
}
