//! The tools over TLS as users run them: `wsecho --tls-cert/--tls-key`
//! answering `wsclient --ca` (and refusing a client that does not trust
//! it), with a certificate made by rcgen at test time.
#![cfg(feature = "tls")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills a child however the test ends.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_output(mut child: Child) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wsclient did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wsclient(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsclient"))
        .args(args)
        .arg("--no-env-proxy")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_output(child)
}

/// A server process started with a self-signed certificate for `localhost`
/// (made by rcgen in `dir`), on a free loopback port, and its first log line.
struct TlsServer {
    server: Kill,
    cert: std::path::PathBuf,
    listen: String,
    port: u16,
    banner: String,
}

impl TlsServer {
    fn start(dir: &std::path::Path, command: &mut Command) -> TlsServer {
        TlsServer::start_with(dir, command, false)
    }

    /// `is_ca`: the certificate says it is a CA's (as `openssl req -x509`
    /// makes by default), which rustls refuses as a server's own.
    fn start_with(dir: &std::path::Path, command: &mut Command, is_ca: bool) -> TlsServer {
        std::fs::create_dir_all(dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        if is_ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut server = Kill(
            command
                .args(["--listen", &listen, "--tls-cert"])
                .arg(&cert_path)
                .arg("--tls-key")
                .arg(&key_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut banner = String::new();
        BufReader::new(server.0.stderr.as_mut().unwrap())
            .read_line(&mut banner)
            .unwrap();
        TlsServer {
            server,
            cert: cert_path,
            listen,
            port,
            banner,
        }
    }
}

#[test]
fn wsecho_tls_cert_answers_wsclient_ca_and_refuses_untrusting_client() {
    let dir = std::env::temp_dir().join(format!("rfc6455-tls-cli-{}", std::process::id()));
    let tls = TlsServer::start(
        &dir,
        Command::new(env!("CARGO_BIN_EXE_wsecho")).arg("--quiet"),
    );
    let (server, cert_path, listen, port, banner) =
        (tls.server, tls.cert, tls.listen, tls.port, tls.banner);
    assert!(banner.contains(&format!("wss://{listen}/")), "{banner}");
    let url = format!("wss://localhost:{port}/");

    let ca = cert_path.to_str().unwrap();
    let (code, out, err) = wsclient(&["--ca", ca, &url], "over tls\n");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "over tls\n");

    let (code, _, err) = wsclient(&[&url], "x\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown issuer"), "{err}");

    let (code, out, err) = wsclient(&["--insecure", &url], "unchecked\n");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "unchecked\n");
    assert!(err.contains("NOT verified"), "{err}");

    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn certificate_errors_are_plain_words_with_the_next_step() {
    let dir = std::env::temp_dir().join(format!("rfc6455-tls-cli-ca-{}", std::process::id()));
    let command = &mut Command::new(env!("CARGO_BIN_EXE_wsecho"));
    let tls = TlsServer::start_with(&dir, command.arg("--quiet"), true);
    let ca = tls.cert.to_str().unwrap();
    let url = format!("wss://localhost:{}/", tls.port);
    let (code, _, err) = wsclient(
        &["--ca", ca, &url],
        "x
",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is a CA certificate, which cannot be a server's own"),
        "{err}"
    );
    assert!(err.contains("basicConstraints=critical,CA:FALSE") && err.contains("--insecure"));
    // Never a Debug rendering of the TLS library's error.
    assert!(
        !err.contains("OtherError") && !err.contains("CaUsedAsEndEntity"),
        "{err}"
    );

    let (code, _, err) = wsclient(
        &[&url],
        "x
",
    );
    assert_eq!(code, Some(1), "{err}");
    // A plaintext client on the TLS port reads the server's own answer.
    let (code, _, err) = wsclient(
        &[&format!("ws://localhost:{}/", tls.port)],
        "x
",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("400 Bad Request") && err.contains("wss://"),
        "{err}"
    );
    drop(tls.server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_chat_example_serves_its_page_and_websocket_over_tls() {
    let dir = std::env::temp_dir().join(format!("rfc6455-tls-chat-{}", std::process::id()));
    let tls = TlsServer::start(&dir, &mut Command::new(common::example_binary("chat")));
    let (chat, cert_path, listen, port, banner) =
        (tls.server, tls.cert, tls.listen, tls.port, tls.banner);
    assert!(banner.contains(&format!("https://{listen}/")), "{banner}");
    assert!(banner.contains(&format!("wss://{listen}/ws")), "{banner}");
    // Two clients over wss://: what one says, the other hears.
    let ca = cert_path.to_str().unwrap();
    let url = format!("wss://localhost:{port}/ws");
    let (code, out, err) = wsclient(&["--ca", ca, "--linger", "1", &url], "hello over tls\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("hello over tls"), "{out}");
    drop(chat);
    let _ = std::fs::remove_dir_all(dir);
}
