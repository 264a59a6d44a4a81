//! Helpers shared by the socket-level integration tests: an echo server on
//! an ephemeral loopback port, clients with timeouts (so a bug fails a test
//! instead of hanging the suite), and raw HTTP for handshake rejections.
#![allow(dead_code)] // each test binary uses a different subset

pub mod browser;
pub mod tap;

use rfc6455::{
    connect_with, ClientConfig, Error, Message, RunningServer, Server, ServerConfig,
    ServerWebSocket,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Every blocking read in these tests gives up after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The key from RFC 6455 §1.3 and the accept value it must produce.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The echo handler: data messages go back as they came; control frames are
/// answered by the library. Returns `ConnectionClosed` at the normal end.
pub fn echo(mut ws: ServerWebSocket) -> rfc6455::Result<()> {
    loop {
        let message = ws.read()?;
        if message.is_data() {
            ws.write(message)?;
        }
    }
}

/// A server config for tests: short shutdown so a stuck connection cannot
/// stall a test for long; keepalive off so no unsolicited ping arrives.
pub fn test_config() -> ServerConfig {
    ServerConfig::default()
        .keepalive(None)
        .shutdown_timeout(Duration::from_secs(3))
        .close_timeout(Duration::from_secs(3))
}

/// An echo server on 127.0.0.1, on a port the OS picks.
pub fn echo_server() -> RunningServer {
    echo_server_with(test_config())
}

/// An echo server with the given config.
pub fn echo_server_with(config: ServerConfig) -> RunningServer {
    Server::bind("127.0.0.1:0", config)
        .expect("bind 127.0.0.1:0")
        .spawn(|ws, _request| echo(ws))
        .expect("spawn server")
}

pub fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// A client config whose reads time out, so no test can hang on a read.
pub fn client_config() -> ClientConfig {
    ClientConfig::default()
        .read_timeout(Some(IO_TIMEOUT))
        .write_timeout(Some(IO_TIMEOUT))
        .handshake_timeout(IO_TIMEOUT)
        .connect_timeout(IO_TIMEOUT)
}

/// Connects a client to `addr` with [`client_config`].
pub fn client(addr: SocketAddr) -> rfc6455::ClientWebSocket {
    connect_with(&url(addr), &client_config())
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
        .0
}

/// Reads the next message that is not a ping (servers may ping at will).
pub fn read_skipping_pings(ws: &mut rfc6455::ClientWebSocket) -> Message {
    loop {
        match ws.read() {
            Ok(Message::Ping(_)) => continue,
            Ok(message) => return message,
            Err(e) => panic!("read failed: {e:?}"),
        }
    }
}

/// Sends `message` and checks that the echo is byte for byte the same.
pub fn assert_echo(ws: &mut rfc6455::ClientWebSocket, message: Message) {
    let len = message.len();
    ws.send(message.clone())
        .unwrap_or_else(|e| panic!("send {len} bytes: {e}"));
    let echoed = read_skipping_pings(ws);
    // Avoid printing megabytes on failure: compare, then describe.
    if echoed != message {
        panic!(
            "echo of a {len}-byte {} differs: got a {}-byte {:?}",
            kind(&message),
            echoed.len(),
            kind(&echoed)
        );
    }
}

fn kind(message: &Message) -> &'static str {
    match message {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        Message::Ping(_) => "ping",
        Message::Pong(_) => "pong",
        Message::Close(_) => "close",
    }
}

/// Closes with 1000 and completes the close handshake: the server's echoed
/// close, then `ConnectionClosed` once the server has closed TCP.
pub fn close_normally(ws: &mut rfc6455::ClientWebSocket) {
    ws.close(rfc6455::CloseCode::NORMAL, "")
        .expect("send close");
    match read_skipping_pings(ws) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, rfc6455::CloseCode::NORMAL),
        other => panic!("expected the close echo, got {other:?}"),
    }
    match ws.read() {
        Err(Error::ConnectionClosed) => {}
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
}

/// `len` bytes of printable ASCII (so a text message is exactly `len` bytes).
pub fn ascii(len: usize) -> String {
    (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

/// `len` bytes covering all byte values, in an order unlikely to echo by chance.
pub fn bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// `len` random-looking bytes (xorshift32 from `seed`, which moves on):
/// what compression cannot shrink, the same in every run.
pub fn random_bytes(seed: &mut u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            *seed as u8
        })
        .collect()
}

/// A well-formed opening handshake request for `addr`.
pub fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A raw TCP connection with read and write timeouts.
pub fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("tcp connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Sends `request` on a fresh connection and returns everything the server
/// answers until it closes the connection.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = raw(addr);
    stream.write_all(request).expect("write request");
    let mut response = Vec::new();
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut chunk = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "server did not close in time");
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            // A reset after the response is still a complete response.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the response: {e}"),
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

/// The status code of an HTTP response.
pub fn status(response: &str) -> u16 {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {response:?}"))
}

/// Whether the response head has the header `name: value` (name case-insensitive).
pub fn has_header(response: &str, name: &str, value: &str) -> bool {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case(name) && v.trim().eq_ignore_ascii_case(value)
        })
    })
}

// ---------------------------------------------------------------------------
// Real peers installed by `.ci/peers.sh`

/// The repository root.
pub fn repo() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory (where `.ci/peers.sh` puts its venv).
pub fn target_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// Runs `.ci/peers.sh` (idempotent, locked against concurrent runs) with the
/// venv in the target directory and the extra environment `envs`.
pub fn install_peers(envs: &[(&str, &str)]) -> Result<(), String> {
    let mut command = std::process::Command::new("bash");
    command
        .arg(repo().join(".ci").join("peers.sh"))
        .env("RFC6455_PEERS_VENV", target_dir().join("peers-venv"))
        .stdin(std::process::Stdio::null());
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run .ci/peers.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            ".ci/peers.sh failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Why Node.js cannot be used, if it cannot.
pub fn node_missing() -> Option<String> {
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!node_ok).then(|| "no `node` on PATH".to_owned())
}

/// Builds example `name` in the profile this test was built with (with the
/// crate features it was built with, among `deflate`, `redis`, `tls` and `mio`) and returns its path;
/// built once per test binary.
#[allow(dead_code)]
pub fn example_binary(name: &str) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::process::{Command, Stdio};
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashMap<String, std::path::PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.as_ref().and_then(|b| b.get(name)) {
        return path.clone();
    }
    // This test runs from <target>/<profile>/deps/; examples are in
    // <target>/<profile>/examples/.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("<target>/<profile>");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--example", name, "--profile", profile]);
    let features: Vec<&str> = [
        ("deflate", cfg!(feature = "deflate")),
        ("redis", cfg!(feature = "redis")),
        ("tls", cfg!(feature = "tls")),
        ("mio", cfg!(feature = "mio")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let output = command
        .arg("--manifest-path")
        .arg(repo().join("Cargo.toml"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
    assert!(
        output.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "no {name} example at {}", path.display());
    built
        .get_or_insert_with(HashMap::new)
        .insert(name.to_owned(), path.clone());
    path
}
