//! The command-line tools as users run them: `wsclient` in a pipe, with
//! `--reconnect` across a server restart, and its exit codes.

use rfc6455::{CloseCode, Message, RunningServer, Server, ServerConfig};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An echo server on `addr`. A port freed a moment ago may meanwhile be
/// some other test's client's ephemeral port, briefly: binding is retried
/// for a while before the test gives up.
fn echo_server(addr: &str) -> RunningServer {
    let deadline = Instant::now() + Duration::from_secs(10);
    let server = loop {
        match Server::bind(addr, ServerConfig::default()) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            bound => break bound.unwrap(),
        }
    };
    server
        .spawn(|mut ws, _request| loop {
            let message = ws.read()?;
            if message.is_data() {
                ws.write(message)?;
            }
        })
        .unwrap()
}

fn wsclient(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wsclient"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Lines of the child's stdout, delivered through a channel so a test can
/// wait for each with a deadline.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    lines_of(child.stdout.take().unwrap())
}

fn lines_of(stdout: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    panic!("the child process did not exit within 10 s");
}

/// Starts `bin` with no input, its stdout discarded and its stderr piped.
fn spawn_logging(bin: &str, args: &[&str]) -> Child {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs one of the tools with stdin closed until it exits (bounded: a tool
/// that wrongly accepted its flags and kept running fails the test) and
/// returns its exit code and standard error.
fn run(bin: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = spawn_logging(bin, args);
    let log = lines_of(child.stderr.take().unwrap());
    let status = wait_exit(&mut child);
    let err: Vec<String> = log.iter().collect();
    (status.code(), err.join("\n"))
}

/// Sends `signal` (a name for kill(1): INT, TERM) to `child`.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits (bounded) for a line of `log` that starts with `prefix`.
fn wait_for_line(log: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line starting with {prefix:?} within 10 s"),
        }
    }
}

#[test]
fn wsclient_in_a_pipe_echoes_lines_and_exits_zero() {
    let server = echo_server("127.0.0.1:0");
    let url = format!("ws://{}/", server.local_addr());
    let mut child = wsclient(&[&url]);
    child
        .stdin
        .take()
        .unwrap()
        .write_all("a\nb\nünïcödé\n\n".as_bytes())
        .unwrap();
    let lines = stdout_lines(&mut child);
    let status = wait_exit(&mut child);
    let got: Vec<String> = lines.iter().collect();
    assert_eq!(got, ["a", "b", "ünïcödé", ""]);
    assert!(status.success(), "{status}");
    server.shutdown().unwrap();
}

#[test]
fn wsclient_cannot_connect_exits_one_with_a_message() {
    // Port 1 on loopback: nothing listens there.
    let args = ["--connect-timeout", "2", "ws://127.0.0.1:1/"];
    let (code, err) = run(env!("CARGO_BIN_EXE_wsclient"), &args);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn wsclient_bad_usage_exits_two() {
    let mut child = wsclient(&["--no-such-flag"]);
    assert_eq!(wait_exit(&mut child).code(), Some(2));
    let mut child = wsclient(&[]);
    assert_eq!(wait_exit(&mut child).code(), Some(2));
}

// Built with `tls`, wss:// is supported: tests/tls_cli.rs covers it.
#[cfg(not(feature = "tls"))]
#[test]
fn wsclient_wss_says_tls_is_not_supported() {
    let mut child = wsclient(&["wss://127.0.0.1:1/"]);
    drop(child.stdin.take());
    assert_eq!(wait_exit(&mut child).code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.to_lowercase().contains("tls"), "{err}");
}

#[test]
fn wsclient_reconnect_survives_a_server_restart() {
    let first = echo_server("127.0.0.1:0");
    let addr = first.local_addr();
    let url = format!("ws://{addr}/");
    let mut child = wsclient(&["--reconnect", &url]);
    let mut stdin = child.stdin.take().unwrap();
    let lines = stdout_lines(&mut child);
    let log = lines_of(child.stderr.take().unwrap());
    let next = |what: &str| {
        lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no echo of {what}"))
    };
    let connected = || loop {
        let line = log
            .recv_timeout(Duration::from_secs(10))
            .expect("wsclient did not (re)connect");
        if line.starts_with("wsclient: connected") {
            break;
        }
    };

    connected();
    writeln!(stdin, "before").unwrap();
    assert_eq!(next("before"), "before");
    // The server goes away (close 1001) and comes back on the same port.
    first.shutdown().unwrap();
    let second = echo_server(&addr.to_string());
    // A line sent after the server's close frame but before the client has
    // read it is discarded by the server (RFC 6455 §5.5.1), so wait for the
    // new connection; lines typed while disconnected are kept (see below).
    connected();
    writeln!(stdin, "after").unwrap();
    assert_eq!(next("after"), "after");
    drop(stdin);
    assert!(wait_exit(&mut child).success());
    second.shutdown().unwrap();
}

#[test]
fn wsclient_reconnect_keeps_lines_typed_before_the_server_is_up() {
    // Find a free port, then leave it closed for a while.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = wsclient(&["--reconnect", &format!("ws://{addr}/")]);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"early 1\nearly 2\n")
        .unwrap();
    let lines = stdout_lines(&mut child);
    std::thread::sleep(Duration::from_millis(700));
    let server = echo_server(&addr.to_string());
    let status = wait_exit(&mut child);
    let got: Vec<String> = lines.iter().collect();
    assert_eq!(got, ["early 1", "early 2"]);
    assert!(status.success(), "{status}");
    server.shutdown().unwrap();
}

#[test]
fn wsclient_prints_binary_messages_as_a_size_and_hex() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(|mut ws, _request| {
            ws.send(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef]))?;
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    let mut child = wsclient(&[&format!("ws://{}/", server.local_addr())]);
    let stdin = child.stdin.take().unwrap();
    let lines = stdout_lines(&mut child);
    let line = lines.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(line, "<binary 4 bytes: deadbeef>");
    drop(stdin);
    assert!(wait_exit(&mut child).success());
    server.shutdown().unwrap();
}

/// A server process that is killed when the test ends, so that a failing
/// test leaves no `wsecho` behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts `wsecho` on a free port and returns it with its URL.
fn wsecho(args: &[&str]) -> (Reaped, String) {
    let (child, url, log) = wsecho_with_log(args);
    // Keep draining stderr so wsecho never blocks on it.
    std::thread::spawn(move || for _ in log {});
    (child, url)
}

/// Starts `wsecho` on a free port and returns it with its URL and the lines
/// of its log after the startup line (read them, or wsecho may block).
fn wsecho_with_log(args: &[&str]) -> (Reaped, String, mpsc::Receiver<String>) {
    let args = [&["--listen", "127.0.0.1:0"], args].concat();
    let mut child = Reaped(spawn_logging(env!("CARGO_BIN_EXE_wsecho"), &args));
    let log = lines_of(child.stderr.take().unwrap());
    let first = log.recv_timeout(Duration::from_secs(10)).unwrap();
    let url = first
        .strip_prefix("wsecho: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (child, url, log)
}

/// A client of `url` whose reads give up after 10 s, and its own address
/// (what wsecho's log line names it by).
fn client_of(url: &str) -> (rfc6455::ClientWebSocket, String) {
    let (ws, _) = rfc6455::connect(url).unwrap();
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let me = ws.get_ref().local_addr().unwrap().to_string();
    (ws, me)
}

#[test]
fn wsecho_sigint_closes_connections_with_1001_and_exits_zero() {
    let (mut server, url) = wsecho(&["--quiet"]);
    let (mut ws, _) = client_of(&url);
    ws.send(Message::Text("before".into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("before".into()));

    let status = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, rfc6455::CloseCode::GOING_AWAY),
        other => panic!("expected close 1001, got {other:?}"),
    }
    let exit = wait_exit(&mut server);
    assert!(exit.success(), "wsecho exited with {exit}");
}

#[test]
fn wsecho_help_and_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_wsecho"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(help.contains("--listen"), "{help}");
    let out = Command::new(env!("CARGO_BIN_EXE_wsecho"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

// Duration flags: every one of both tools takes finite, non-negative
// seconds in a stated range; anything else is bad usage (exit 2) naming the
// flag, never a panic (exit 101), a silent clamp or a silent acceptance.

/// Asserts that `bin FLAG VALUE ARGS…` is bad usage naming the flag, for
/// each `(FLAG, VALUE)` of `cases`.
fn assert_usage_errors(bin: &str, args: &[&str], cases: &[(&str, &str)]) {
    for (flag, value) in cases {
        let all: Vec<&str> = [*flag, *value].iter().chain(args).copied().collect();
        let (code, err) = run(bin, &all);
        assert_eq!(code, Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

#[test]
fn wsclient_rejects_odd_durations_as_usage_errors() {
    let cases = [
        ("--connect-timeout", "inf"),
        ("--connect-timeout", "0"),
        ("--connect-timeout", "-1"),
        ("--ping-interval", "inf"),
        ("--ping-interval", "1e30"),
        ("--ping-interval", "-0.5"),
        ("--ping-interval", "soon"),
        ("--linger", "nan"),
        ("--linger", "100"),
        ("--linger", "-1"),
    ];
    let bin = env!("CARGO_BIN_EXE_wsclient");
    assert_usage_errors(bin, &["ws://127.0.0.1:1/"], &cases);
}

#[test]
fn wsecho_rejects_odd_durations_as_usage_errors() {
    let cases = [
        ("--ping-interval", "nan"),
        ("--ping-interval", "1e30"),
        ("--ping-timeout", "inf"),
        ("--ping-timeout", "0"),
        ("--handshake-timeout", "-1"),
        ("--handshake-timeout", "0"),
        ("--write-timeout", "nan"),
        ("--idle-timeout", "1e30"),
        ("--idle-timeout", "-1"),
    ];
    let bin = env!("CARGO_BIN_EXE_wsecho");
    assert_usage_errors(bin, &["--listen", "127.0.0.1:0"], &cases);
}

#[test]
fn wsclient_malformed_urls_are_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_wsclient");
    for url in [
        "127.0.0.1:9001",
        "http://127.0.0.1:9001/",
        "ws://127.0.0.1:99999/",
        "ws:///no-host",
    ] {
        let (code, err) = run(bin, &[url]);
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(err.contains("invalid URL"), "{url}: {err}");
        // Retrying cannot fix a URL: still bad usage, at once.
        let (code, err) = run(bin, &["--reconnect", url]);
        assert_eq!(code, Some(2), "--reconnect {url}: {err}");
    }
}

/// A listener that never accepts: the kernel still completes the TCP
/// handshake from its backlog, and then nothing ever answers.
fn silent_server() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    (listener, url)
}

#[test]
fn wsclient_connect_timeout_bounds_the_handshake() {
    let (_listener, url) = silent_server();
    let started = Instant::now();
    let args = ["--connect-timeout", "0.5", &url];
    let (code, err) = run(env!("CARGO_BIN_EXE_wsclient"), &args);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    // The handshake timeout alone would be 10 s; 5 s leaves room for a
    // loaded machine while still telling the two apart.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
}

#[test]
fn wsclient_reconnect_attempts_are_bounded_by_the_connect_timeout() {
    let (_listener, url) = silent_server();
    let mut child = wsclient(&["--reconnect", "--connect-timeout", "0.3", &url]);
    let stdin = child.stdin.take();
    let log = lines_of(child.stderr.take().unwrap());
    // Two failed attempts (0.3 s each, 0.25-0.5 s apart) long before the
    // first would have ended by the 10 s handshake timeout.
    let started = Instant::now();
    for _ in 0..2 {
        let line = wait_for_line(&log, "wsclient: cannot connect");
        assert!(line.contains("retrying"), "{line}");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "two attempts took {took:?}");
    drop(stdin);
    assert_eq!(wait_exit(&mut child).code(), Some(1));
}

/// A server that reports the code of each close frame it receives.
fn close_recording_server() -> (RunningServer, mpsc::Receiver<Option<CloseCode>>) {
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(move |mut ws, _request| loop {
            match ws.read()? {
                Message::Close(frame) => {
                    let _ = tx.send(frame.map(|f| f.code));
                }
                message if message.is_data() => ws.write(message)?,
                _ => {}
            }
        })
        .unwrap();
    (server, rx)
}

#[test]
fn wsclient_ctrl_c_sends_close_1001_and_exits_130() {
    let (server, closes) = close_recording_server();
    let mut child = wsclient(&[&format!("ws://{}/", server.local_addr())]);
    let _stdin = child.stdin.take(); // open: the user is still typing
    let log = lines_of(child.stderr.take().unwrap());
    wait_for_line(&log, "wsclient: connected");
    signal(&child, "INT");
    let code = closes
        .recv_timeout(Duration::from_secs(10))
        .expect("the server received no close frame");
    assert_eq!(code, Some(CloseCode::GOING_AWAY));
    assert_eq!(wait_exit(&mut child).code(), Some(130));
    server.shutdown().unwrap();
}

#[test]
fn wsclient_second_ctrl_c_exits_at_once() {
    // A server that never reads, so it never answers the close frame.
    let (release, held) = mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(move |_ws, _request| {
            let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(20));
            Ok(())
        })
        .unwrap();
    let mut child = wsclient(&[&format!("ws://{}/", server.local_addr())]);
    let _stdin = child.stdin.take();
    let log = lines_of(child.stderr.take().unwrap());
    wait_for_line(&log, "wsclient: connected");
    signal(&child, "INT");
    wait_for_line(&log, "wsclient: interrupted");
    signal(&child, "INT");
    assert_eq!(wait_exit(&mut child).code(), Some(130));
    // Had the second Ctrl-C been ignored, the wait for the close reply
    // would have run out and said so.
    let rest: Vec<String> = log.iter().collect();
    assert!(
        !rest.iter().any(|l| l.contains("no close reply")),
        "{rest:?}"
    );
    drop(release);
    server.shutdown().unwrap();
}

#[test]
fn wsecho_logs_the_close_code_after_a_sigterm_shutdown() {
    let (mut server, url, log) = wsecho_with_log(&[]);
    let (mut ws, me) = client_of(&url);
    signal(&server, "TERM");
    // The client answers the 1001 within this read and then sees the
    // server close TCP: the close handshake completes both ways.
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::GOING_AWAY),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(rfc6455::Error::ConnectionClosed)));
    assert!(wait_exit(&mut server).success());
    let line = log
        .iter()
        .find(|l| l.starts_with(&format!("wsecho: {me}:")))
        .expect("no log line for the connection");
    assert!(line.ends_with("close 1001"), "{line}");
}

#[test]
fn wsecho_log_line_says_1_message() {
    let (mut server, url, log) = wsecho_with_log(&[]);
    let (mut ws, me) = client_of(&url);
    ws.send(Message::Text("one".into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("one".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(ws.read(), Ok(Message::Close(_))));
    let line = wait_for_line(&log, &format!("wsecho: {me}:"));
    assert!(line.contains(", 1 message, close 1000"), "{line}");
    signal(&server, "TERM");
    assert!(wait_exit(&mut server).success());
}

#[test]
fn wsclient_on_a_terminal_marks_received_lines() {
    // script(1) gives wsclient a pseudo-terminal for stdin and stdout.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) from util-linux is not installed");
        return;
    }
    let server = echo_server("127.0.0.1:0");
    let command = format!(
        "'{}' ws://{}/",
        env!("CARGO_BIN_EXE_wsclient"),
        server.local_addr()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = stdout_lines(&mut child);
    // The terminal echoes what is typed; the echo comes back marked.
    // Ctrl-D (0x04) at the start of a line is end of input on a terminal.
    stdin.write_all(b"hello\n\x04").unwrap();
    let status = wait_exit(&mut child);
    let got: Vec<String> = lines.iter().map(|l| l.trim_end().to_owned()).collect();
    assert!(got.iter().any(|l| l == "< hello"), "{got:?}");
    assert!(status.success(), "{status}: {got:?}");
    drop(stdin);
    server.shutdown().unwrap();
}

/// A scratch directory under the target directory, fresh for `name`.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect()
}

#[test]
fn wsclient_send_file_sends_the_file_as_one_binary_message() {
    let dir = scratch("send-file");
    let data = pattern(3 << 20);
    let path = dir.join("payload.bin");
    std::fs::write(&path, &data).unwrap();
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(move |mut ws, _| loop {
            if let Message::Binary(got) = ws.read()? {
                tx.send(got).unwrap();
            }
        })
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let args = ["--send-file", path.to_str().unwrap(), url.as_str()];
    let (code, err) = run(env!("CARGO_BIN_EXE_wsclient"), &args);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("sent {}", path.display())), "{err}");
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(got == data, "{} bytes arrived, not the file", got.len());
}

#[test]
fn wsclient_save_writes_each_binary_message_to_a_file_as_it_arrives() {
    let dir = scratch("save");
    let first = pattern(2 << 20);
    let sent = first.clone();
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(move |mut ws, _| {
            ws.send(Message::Binary(sent.clone()))?;
            ws.send(Message::Text("and a line".into()))?;
            ws.send(Message::Binary(vec![1, 2, 3]))?;
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let mut child = wsclient(&["--save", dir.to_str().unwrap(), "--linger", "2", &url]);
    let lines = stdout_lines(&mut child);
    drop(child.stdin.take());
    let line = lines.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(line, "and a line");
    assert!(wait_exit(&mut child).success());
    assert!(std::fs::read(dir.join("message-1.bin")).unwrap() == first);
    assert_eq!(std::fs::read(dir.join("message-2.bin")).unwrap(), [1, 2, 3]);
}

// Flags one engine does not honour are refused with it, never accepted and
// ignored (a 1 GiB echo with `--engine poll --stream-above` peaked at 2 GiB).

#[test]
fn wsecho_poll_engine_refuses_flags_it_would_ignore() {
    let bin = env!("CARGO_BIN_EXE_wsecho");
    for flag in [["--stream-above", "1048576"], ["--stack-size", "65536"]] {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--engine",
            "poll",
            flag[0],
            flag[1],
        ];
        let (code, err) = run(bin, &args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        // Without the poll engine the refusal is of `--engine poll` itself.
        let named = if cfg!(feature = "mio") {
            flag[0]
        } else {
            "--features mio"
        };
        assert!(err.contains(named), "{args:?}: {err}");
    }
}
// --- The first day (issue 24) and safe output (issue 23 item 6) ---

/// A server that sends `greeting` on every connection, then reports each
/// data message it receives and answers pings (the library does).
fn scripted_server(greeting: Vec<Message>) -> (RunningServer, mpsc::Receiver<Message>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(move |mut ws, _request| {
            for message in &greeting {
                ws.send(message.clone())?;
            }
            loop {
                let message = ws.read()?;
                if message.is_data() {
                    let _ = tx.lock().unwrap().send(message);
                }
            }
        })
        .unwrap();
    (server, rx)
}

/// Runs wsclient with `input` on stdin until it exits: its exit code,
/// stdout and stderr.
fn wsclient_with_input(args: &[&str], input: &[u8]) -> (Option<i32>, String, String) {
    let mut child = wsclient(args);
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = stdout_lines(&mut child);
    let err = lines_of(child.stderr.take().unwrap());
    let status = wait_exit(&mut child);
    let out: Vec<String> = out.iter().collect();
    let err: Vec<String> = err.iter().collect();
    (status.code(), out.join("\n"), err.join("\n"))
}

#[test]
fn wsclient_sends_a_line_that_is_not_utf8_as_binary_and_says_so() {
    let (server, received) = scripted_server(Vec::new());
    let url = format!("ws://{}/", server.local_addr());
    let (code, _out, err) = wsclient_with_input(&[&url], b"ok\n\xff\xfe\nafter\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("line 2 is not UTF-8: sent as a binary message (2 bytes)"),
        "{err}"
    );
    let got: Vec<Message> = received.try_iter().collect();
    assert_eq!(
        got,
        [
            Message::text("ok"),
            Message::Binary(vec![0xff, 0xfe]),
            Message::text("after")
        ]
    );
    server.shutdown().unwrap();
}

#[test]
fn wsclient_binary_sends_every_line_as_a_binary_message() {
    let (server, received) = scripted_server(Vec::new());
    let url = format!("ws://{}/", server.local_addr());
    let (code, _out, err) = wsclient_with_input(&["--binary", &url], b"ab\nc\n");
    assert_eq!(code, Some(0), "{err}");
    let got: Vec<Message> = received.try_iter().collect();
    assert_eq!(
        got,
        [
            Message::Binary(b"ab".to_vec()),
            Message::Binary(b"c".to_vec())
        ]
    );
    server.shutdown().unwrap();
}

#[test]
fn wsclient_version_names_the_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_wsclient"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("wsclient {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wsecho"))
        .arg("-V")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn wsclient_count_exits_after_that_many_messages_with_input_still_open() {
    let greeting = ["one", "two", "three"].map(Message::text).to_vec();
    let (server, _received) = scripted_server(greeting);
    let url = format!("ws://{}/", server.local_addr());
    let mut child = wsclient(&["--count", "2", &url]);
    let _stdin = child.stdin.take(); // never closed: --count alone ends it
    let lines = stdout_lines(&mut child);
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status}");
    let got: Vec<String> = lines.iter().collect();
    assert_eq!(got, ["one", "two"]);
    server.shutdown().unwrap();
}

#[test]
fn wsclient_count_fails_when_the_connection_ends_first() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .unwrap()
        .spawn(|mut ws, _| {
            ws.send(Message::text("only one"))?;
            ws.close(1000, "")?;
            loop {
                ws.read()?;
            }
        })
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let mut child = wsclient(&["--count", "2", &url]);
    let _stdin = child.stdin.take();
    let log = lines_of(child.stderr.take().unwrap());
    assert_eq!(wait_exit(&mut child).code(), Some(1));
    let log: Vec<String> = log.iter().collect();
    assert!(
        log.iter()
            .any(|l| l.contains("1 of the 2 messages arrived")),
        "{log:?}"
    );
    server.shutdown().unwrap();
}

#[test]
fn wsclient_sends_pings_and_shows_pings_and_pongs() {
    let greeting = vec![Message::Ping(b"are you there".to_vec())];
    let (server, _received) = scripted_server(greeting);
    let url = format!("ws://{}/", server.local_addr());
    let input = b"/ping hello\n/pong unasked\n//not a command\n/nope\n";
    let (code, out, err) = wsclient_with_input(&["--slash", "-P", &url], input);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("wsclient: ping received: are you there"),
        "{err}"
    );
    assert!(err.contains("wsclient: ping sent"), "{err}");
    // The server's library answered our ping with its payload.
    assert!(err.contains("wsclient: pong received: hello"), "{err}");
    assert!(err.contains("unknown command /nope"), "{err}");
    assert_eq!(out, "", "pings are not messages");
    server.shutdown().unwrap();
}

#[test]
fn wsclient_verbose_shows_the_handshake_response() {
    let (server, _received) = scripted_server(Vec::new());
    let url = format!("ws://{}/", server.local_addr());
    let (code, _out, err) = wsclient_with_input(&["-v", &url], b"");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("wsclient: < HTTP/1.1 101 Switching Protocols"),
        "{err}"
    );
    assert!(
        err.to_lowercase()
            .contains("wsclient: < sec-websocket-accept: "),
        "{err}"
    );
}

#[test]
fn wsclient_slash_close_ends_with_that_code() {
    let (server, closes) = close_recording_server();
    let url = format!("ws://{}/", server.local_addr());
    let mut child = wsclient(&["--slash", &url]);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "/close 4001 that is all").unwrap();
    let code = closes.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(code, Some(CloseCode::from(4001)));
    assert!(wait_exit(&mut child).success());
    server.shutdown().unwrap();
}

#[test]
fn wsclient_in_a_pipe_writes_a_multi_line_message_on_one_line() {
    let greeting = vec![
        Message::text("line one\nline two\r\n"),
        Message::text("next"),
    ];
    let (server, _received) = scripted_server(greeting);
    let url = format!("ws://{}/", server.local_addr());
    let mut child = wsclient(&["--count", "2", &url]);
    let _stdin = child.stdin.take();
    let lines = stdout_lines(&mut child);
    assert!(wait_exit(&mut child).success());
    let got: Vec<String> = lines.iter().collect();
    assert_eq!(got, [r"line one\nline two\r\n", "next"]);
    server.shutdown().unwrap();
}

#[test]
fn wsclient_null_writes_messages_exactly_each_ended_by_nul() {
    let greeting = vec![Message::text("a\nb"), Message::text("c")];
    let (server, _received) = scripted_server(greeting);
    let url = format!("ws://{}/", server.local_addr());
    let out = Command::new(env!("CARGO_BIN_EXE_wsclient"))
        .args(["--null", "--count", "2", &url])
        .stdin(Stdio::piped()) // held open until it exits
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"a\nb\0c\0");
    server.shutdown().unwrap();
}

#[test]
fn wsclient_on_a_terminal_escapes_control_and_bidi_characters() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) from util-linux is not installed");
        return;
    }
    // Clear the screen, set the window title, reverse what follows.
    let hostile = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}txt.exe";
    let (server, _received) = scripted_server(vec![Message::text(hostile)]);
    let command = format!(
        "'{}' --count 1 ws://{}/",
        env!("CARGO_BIN_EXE_wsclient"),
        server.local_addr()
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains(r"< \u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}txt.exe"),
        "{screen:?}"
    );
    assert!(
        !screen.contains('\u{1b}') && !screen.contains('\u{202e}'),
        "{screen:?}"
    );
    server.shutdown().unwrap();
}

#[test]
fn wsclient_shows_the_body_of_a_refusal() {
    let config = ServerConfig::default().check_upgrade(|_| {
        Some(rfc6455::HttpResponse::new(
            403,
            "text/plain",
            "tokens expire after an hour: log in again\n",
        ))
    });
    let server = Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(|_ws, _| Ok(()))
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    // Not retried: a 403 is an answer.
    let (code, err) = run(env!("CARGO_BIN_EXE_wsclient"), &["--reconnect", &url]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "refused the WebSocket upgrade with 403 Forbidden: tokens expire after an hour"
        ),
        "{err}"
    );
    assert!(!err.contains("retrying"), "{err}");
    server.shutdown().unwrap();
}

#[test]
fn wsecho_listen_without_a_port_is_bad_usage_naming_the_form() {
    for value in ["localhost", "9001", "::1", ":9001", "localhost:http"] {
        let (code, err) = run(env!("CARGO_BIN_EXE_wsecho"), &["--listen", value]);
        assert_eq!(code, Some(2), "{value}: {err}");
        assert!(
            err.contains("HOST:PORT") && err.contains("localhost:9001"),
            "{err}"
        );
    }
}

#[test]
fn wsecho_log_line_escapes_the_peer_close_reason() {
    let (mut server, url, log) = wsecho_with_log(&[]);
    let (mut ws, me) = client_of(&url);
    ws.close(CloseCode::NORMAL, "bye\nwsecho: forged \u{202e}")
        .unwrap();
    assert!(matches!(ws.read(), Ok(Message::Close(_))));
    let line = wait_for_line(&log, &format!("wsecho: {me}:"));
    assert!(
        line.ends_with(r"close 1000 (bye\nwsecho: forged \u{202e})"),
        "{line}"
    );
    signal(&server, "TERM");
    assert!(wait_exit(&mut server).success());
}

#[test]
fn wsclient_with_no_input_still_connects_and_closes_cleanly() {
    let (server, closes) = close_recording_server();
    let url = format!("ws://{}/", server.local_addr());
    // Input ends before the connection is up: it is awaited, then closed.
    let (code, err) = run(env!("CARGO_BIN_EXE_wsclient"), &["--linger", "0", &url]);
    assert_eq!(code, Some(0), "{err}");
    let code = closes.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(code, Some(CloseCode::NORMAL));
    server.shutdown().unwrap();
}
