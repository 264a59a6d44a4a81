//! The client through an HTTP proxy (CONNECT tunnels): a small proxy the
//! test starts, with the answers real proxies give (200, 407, 403, 502),
//! and Debian's tinyproxy when it is installed (or can be). ws:// always;
//! wss:// too with the `tls` feature.

use rfc6455::{connect_with, ClientConfig, Error, Message, Server, ServerConfig};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn echo_server() -> rfc6455::RunningServer {
    Server::bind("127.0.0.1:0", ServerConfig::default().keepalive(None))
        .unwrap()
        .spawn(|mut ws, _| loop {
            let message = ws.read()?;
            if message.is_data() {
                ws.write(message)?;
            }
        })
        .unwrap()
}

/// How the test proxy answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Tunnels (requiring `user:secret` when `auth`).
    Tunnel { auth: bool },
    /// Refuses with this status.
    Refuse(u16),
    /// Answers with an endless header.
    Endless,
}

/// A CONNECT proxy on a loopback port; counts the tunnels it opened.
struct TestProxy {
    addr: SocketAddr,
    tunnels: Arc<AtomicUsize>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

fn start_proxy(mode: Mode) -> TestProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&tunnels);
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let count = Arc::clone(&count);
            thread::spawn(move || serve_proxy(client, mode, &count));
        }
    });
    TestProxy { addr, tunnels }
}

fn serve_proxy(mut client: TcpStream, mode: Mode, count: &AtomicUsize) {
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line);
    }
    let target = head[0]
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_default()
        .to_owned();
    let answer = |status: &str| format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
    match mode {
        Mode::Refuse(status) => {
            let _ = client.write_all(answer(&format!("{status} Refused")).as_bytes());
        }
        Mode::Endless => {
            let _ = client.write_all(b"HTTP/1.1 200 OK\r\n");
            let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
            while client.write_all(line).is_ok() {}
        }
        Mode::Tunnel { auth } => {
            // "user:secret", base64.
            let expected = "proxy-authorization: basic dxnlcjpzzwnyzxq=";
            if auth
                && !head
                    .iter()
                    .any(|h| h.trim().to_ascii_lowercase() == expected)
            {
                let _ = client.write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
                );
                return;
            }
            let Ok(upstream) = TcpStream::connect(&target) else {
                let _ = client.write_all(answer("502 Bad Gateway").as_bytes());
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            client
                .write_all(answer("200 Connection established").as_bytes())
                .unwrap();
            client.set_read_timeout(None).unwrap();
            assert!(
                reader.buffer().is_empty(),
                "client sent data before the 200"
            );
            let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            thread::spawn(move || pipe(c2, upstream));
            pipe(u2, client);
        }
    }
}

fn config_via(proxy: &TestProxy, credentials: &str) -> ClientConfig {
    ClientConfig::default()
        .read_timeout(Some(IO_TIMEOUT))
        .handshake_timeout(Duration::from_secs(3))
        .proxy(format!("http://{credentials}{}", proxy.addr))
}

fn round_trip(url: &str, config: &ClientConfig) {
    let (mut ws, _) = connect_with(url, config).expect("connect through the proxy");
    ws.send(Message::Text("through the tunnel".into())).unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Text("through the tunnel".into())
    );
    ws.close(1000, "").unwrap();
}

fn proxy_status(result: rfc6455::Result<impl Sized>) -> Option<u16> {
    match result {
        Err(Error::Proxy(e)) => {
            eprintln!("as expected: {e}");
            e.status
        }
        Err(other) => panic!("expected a proxy error, got {other:?}"),
        Ok(_) => panic!("expected a proxy error, the connection succeeded"),
    }
}

#[test]
fn ws_through_connect_proxy() {
    let server = echo_server();
    let proxy = start_proxy(Mode::Tunnel { auth: false });
    round_trip(
        &format!("ws://{}/", server.local_addr()),
        &config_via(&proxy, ""),
    );
    assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 1);
}

#[test]
fn proxy_basic_auth_from_url_is_sent() {
    let server = echo_server();
    let proxy = start_proxy(Mode::Tunnel { auth: true });
    round_trip(
        &format!("ws://{}/", server.local_addr()),
        &config_via(&proxy, "user:secret@"),
    );
}

#[test]
fn proxy_407_without_credentials_is_a_clear_error() {
    let server = echo_server();
    let proxy = start_proxy(Mode::Tunnel { auth: true });
    let result = connect_with(
        &format!("ws://{}/", server.local_addr()),
        &config_via(&proxy, ""),
    );
    assert_eq!(proxy_status(result), Some(407));
}

#[test]
fn proxy_403_is_a_clear_error() {
    let proxy = start_proxy(Mode::Refuse(403));
    let result = connect_with("ws://example.test/", &config_via(&proxy, ""));
    assert_eq!(proxy_status(result), Some(403));
}

#[test]
fn proxy_502_for_unreachable_host_is_a_clear_error() {
    // A port nobody listens on: bind, note the port, close.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = start_proxy(Mode::Tunnel { auth: false });
    let result = connect_with(&format!("ws://{closed}/"), &config_via(&proxy, ""));
    assert_eq!(proxy_status(result), Some(502));
}

#[test]
fn proxy_endless_answer_is_bounded() {
    let proxy = start_proxy(Mode::Endless);
    let result = connect_with("ws://example.test/", &config_via(&proxy, ""));
    assert_eq!(proxy_status(result), None);
}

#[test]
fn proxy_unreachable_is_a_clear_error() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = ClientConfig::default().proxy(format!("http://{closed}"));
    assert_eq!(
        proxy_status(connect_with("ws://example.test/", &config)),
        None
    );
}

#[test]
fn proxy_url_must_be_http() {
    let config = ClientConfig::default().proxy("socks5://127.0.0.1:1080");
    assert_eq!(
        proxy_status(connect_with("ws://example.test/", &config)),
        None
    );
}

#[cfg(feature = "tls")]
#[test]
fn wss_through_connect_proxy_verifies_the_server_not_the_proxy() {
    use rfc6455::transport::tls::rustls;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let server = Server::bind("127.0.0.1:0", ServerConfig::default().tls(Arc::new(tls)))
        .unwrap()
        .spawn(|mut ws, _| loop {
            let message = ws.read()?;
            if message.is_data() {
                ws.write(message)?;
            }
        })
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client_tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let proxy = start_proxy(Mode::Tunnel { auth: false });
    let config = config_via(&proxy, "").tls(Arc::new(client_tls));
    round_trip(
        &format!("wss://localhost:{}/", server.local_addr().port()),
        &config,
    );
    assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 1);
}

/// Debian's tinyproxy, when it is there or apt-get can install it.
fn tinyproxy() -> Option<(std::process::Child, SocketAddr, std::path::PathBuf)> {
    let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("rfc6455-tinyproxy-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\n\
             Allow 127.0.0.1\nLogLevel Error\n"
        ),
    )
    .unwrap();
    let child = std::process::Command::new(bin)
        .args(["-d", "-c"])
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if TcpStream::connect(addr).is_ok() {
            return Some((child, addr, dir));
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Kills tinyproxy and removes its directory however the test ends.
struct Reap(std::process::Child, std::path::PathBuf);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

#[test]
fn ws_through_tinyproxy() {
    let Some((child, addr, dir)) = tinyproxy() else {
        eprintln!(
            "SKIPPED ws_through_tinyproxy: tinyproxy is not installed \
             (.ci/run installs it with apt-get)"
        );
        return;
    };
    let _reap = Reap(child, dir);
    let server = echo_server();
    let config = ClientConfig::default()
        .read_timeout(Some(IO_TIMEOUT))
        .proxy(format!("http://{addr}"));
    round_trip(&format!("ws://{}/", server.local_addr()), &config);
}

#[cfg(feature = "tls")]
#[test]
fn wss_through_tinyproxy() {
    use rfc6455::transport::tls::rustls;
    let Some((child, addr, dir)) = tinyproxy() else {
        eprintln!(
            "SKIPPED wss_through_tinyproxy: tinyproxy is not installed \
             (.ci/run installs it with apt-get)"
        );
        return;
    };
    let _reap = Reap(child, dir);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let server = Server::bind("127.0.0.1:0", ServerConfig::default().tls(Arc::new(tls)))
        .unwrap()
        .spawn(|mut ws, _| loop {
            let message = ws.read()?;
            if message.is_data() {
                ws.write(message)?;
            }
        })
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client_tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = ClientConfig::default()
        .read_timeout(Some(IO_TIMEOUT))
        .tls(Arc::new(client_tls))
        .proxy(format!("http://{addr}"));
    round_trip(
        &format!("wss://localhost:{}/", server.local_addr().port()),
        &config,
    );
}

/// Runs wsclient with `env` set (and the proxy variables of this process
/// cleared), one line in; returns its stdout.
fn wsclient_with_env(url: &str, env: &[(&str, String)]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsclient"));
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(var);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .arg(url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"via env\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn wsclient_follows_http_proxy_and_no_proxy_from_the_environment() {
    let server = echo_server();
    let proxy = start_proxy(Mode::Tunnel { auth: false });
    let url = format!("ws://{}/", server.local_addr());
    let via = [("HTTP_PROXY", format!("http://{}", proxy.addr))];
    assert_eq!(wsclient_with_env(&url, &via), "via env\n");
    assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 1);
    let bypass = [
        via[0].clone(),
        ("NO_PROXY", "127.0.0.1,localhost".to_owned()),
    ];
    assert_eq!(wsclient_with_env(&url, &bypass), "via env\n");
    assert_eq!(
        proxy.tunnels.load(Ordering::SeqCst),
        1,
        "NO_PROXY was not honoured"
    );
}
