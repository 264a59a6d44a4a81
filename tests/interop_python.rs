//! Interop with a real, independent implementation: Python `websockets`
//! (sync API) as a client of our `Server`, as a server for our `connect`
//! client, and as a server for the `wsclient` binary.
//!
//! The interpreter is `$RFC6455_PYTHON` if set (CI points it at a venv with
//! `websockets==17.4`); otherwise a venv is built once under
//! `target/interop-venv` and reused. If no Python with `websockets` can be
//! had, these tests fail, saying why, unless `RFC6455_SKIP_INTEROP=1`.

mod common;

use common::*;
use rfc6455::frame::OpCode;
use rfc6455::{CloseCode, CloseFrame, Error, Message, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The `websockets` release the venv is built with (the one CI pins).
const WEBSOCKETS: &str = "websockets==17.4";
/// Generous: a cold Python start plus a MiB of echoes in a debug build.
const PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// Sizes exchanged in both directions, text and binary.
const SIZES: [usize; 6] = [0, 1, 125, 126, 65536, 1 << 20];

// ---------------------------------------------------------------------------
// Finding (or building) a Python with `websockets`

/// The interpreter to use, or `None` when interop is explicitly skipped.
/// Panics, saying why, when no usable interpreter can be found or built.
fn python() -> Option<PathBuf> {
    if std::env::var("RFC6455_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("RFC6455_SKIP_INTEROP=1: skipping the Python interop test");
        return None;
    }
    // Built at most once per test process; tests in this file run in
    // parallel threads and all wait for the first one's result.
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_python) {
        Ok(python) => Some(python.clone()),
        Err(why) => panic!(
            "no Python with `websockets` for the interop tests: {why}\n\
             Set RFC6455_PYTHON to an interpreter that has {WEBSOCKETS}, or \
             RFC6455_SKIP_INTEROP=1 to skip these tests."
        ),
    }
}

fn find_python() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("RFC6455_PYTHON") {
        let python = PathBuf::from(python);
        return if has_websockets(&python) {
            Ok(python)
        } else {
            Err(format!(
                "RFC6455_PYTHON={} cannot import websockets.sync",
                python.display()
            ))
        };
    }
    // CARGO_TARGET_TMPDIR is <target>/tmp, so this honours CARGO_TARGET_DIR.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    let venv = target.join("interop-venv");
    let python = venv.join("bin").join("python");
    if has_websockets(&python) {
        return Ok(python);
    }
    build_venv(&target, &venv)?;
    if has_websockets(&python) {
        Ok(python)
    } else {
        Err(format!(
            "{} was built but cannot import websockets",
            venv.display()
        ))
    }
}

/// Builds the venv in a private directory and renames it into place, so a
/// concurrent test process (another `cargo test`) never sees a half-built
/// venv; if two race, the loser's copy is thrown away.
fn build_venv(target: &Path, venv: &Path) -> Result<(), String> {
    let scratch = target.join(format!("interop-venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(target).map_err(|e| format!("{}: {e}", target.display()))?;
    eprintln!(
        "building {} with {WEBSOCKETS} (once; reused by later runs)",
        venv.display()
    );
    run_setup(
        Command::new("python3").arg("-m").arg("venv").arg(&scratch),
        "python3 -m venv (is python3-venv installed?)",
    )?;
    run_setup(
        Command::new(scratch.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            WEBSOCKETS,
        ]),
        "pip install (is PyPI reachable?)",
    )?;
    if std::fs::rename(&scratch, venv).is_err() {
        // Someone else finished first, or a broken venv is in the way.
        if !has_websockets(&venv.join("bin").join("python")) {
            let _ = std::fs::remove_dir_all(venv);
            std::fs::rename(&scratch, venv).map_err(|e| format!("{}: {e}", venv.display()))?;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn run_setup(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn has_websockets(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import websockets.sync.client, websockets.sync.server",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A script in `.ci/peers/`.
fn peer(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".ci")
        .join("peers")
        .join(script)
}

// ---------------------------------------------------------------------------
// Child processes that cannot hang the suite

/// Runs a child to completion, feeding it `stdin`; kills it after `timeout`.
fn run_with_timeout(command: &mut Command, stdin: &[u8], timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&stdin);
        // Dropping `input` closes the pipe: end of input for the child.
    });
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} still running after {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    feeder.join().unwrap();
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// The Python echo server (`.ci/peers/py_interop_echo_server.py`), killed
/// when dropped.
struct PythonEchoServer {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl PythonEchoServer {
    fn start(python: &Path, args: &[&str]) -> PythonEchoServer {
        let mut child = Command::new(python)
            .arg(peer("py_interop_echo_server.py"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python echo server");
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = PythonEchoServer {
            child,
            port: 0,
            lines,
        };
        let first = server.next_line();
        server.port = first
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("Python echo server said {first:?}, not PORT n"));
        server
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// The next line the server printed (it prints one per closed connection).
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(PEER_TIMEOUT)
            .expect("the Python echo server printed nothing in time (did it crash?)")
    }
}

impl Drop for PythonEchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn python_websockets_client_against_our_server() {
    let Some(python) = python() else { return };
    let (closes_tx, closes) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", test_config())
        .unwrap()
        .spawn(move |mut ws, _| loop {
            match ws.read()? {
                Message::Close(frame) => {
                    let _ = closes_tx.send(frame);
                }
                message if message.is_data() => ws.write(message)?,
                _ => {}
            }
        })
        .unwrap();
    let output = run_with_timeout(
        Command::new(&python)
            .arg(peer("py_interop_client.py"))
            .arg(url(server.local_addr())),
        b"",
        PEER_TIMEOUT,
    );
    assert!(
        output.status.success(),
        "the Python client failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The close frame the Python client sent arrived intact.
    let frame = closes.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(
        frame,
        Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: "done".into()
        })
    );
    server.shutdown().unwrap();
}

#[test]
fn our_client_against_python_websockets_server() {
    let Some(python) = python() else { return };
    let peer = PythonEchoServer::start(&python, &[]);
    let (mut ws, response) = rfc6455::connect_with(&peer.url(), &client_config())
        .unwrap_or_else(|e| panic!("connect to the Python server: {e}"));
    assert_eq!(response.status, 101);
    for len in SIZES {
        assert_echo(&mut ws, Message::Text(ascii(len)));
        assert_echo(&mut ws, Message::Binary(bytes(len)));
    }
    assert_echo(&mut ws, Message::Text("héllo € 𝄞".into()));
    // A fragmented message cut inside a multi-byte character.
    let text = "fragmented: ünïcödé €";
    let cut = text.find('€').unwrap() + 1;
    ws.send_frame(OpCode::Text, &text.as_bytes()[..cut], false)
        .unwrap();
    ws.send_frame(OpCode::Continuation, &text.as_bytes()[cut..], true)
        .unwrap();
    ws.flush().unwrap();
    assert_eq!(read_skipping_pings(&mut ws), Message::Text(text.into()));
    ws.send(Message::Ping(b"ours".to_vec())).unwrap();
    assert_eq!(
        read_skipping_pings(&mut ws),
        Message::Pong(b"ours".to_vec())
    );
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    match read_skipping_pings(&mut ws) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected the close reply, got {other:?}"),
    }
    match ws.read() {
        Err(Error::ConnectionClosed) => {}
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    // websockets waits for our side of TCP to close before it reports the
    // connection closed: dropping the socket does that.
    drop(ws);
    assert_eq!(peer.next_line(), "CLOSED 1000 bye");
}

#[test]
fn wsclient_binary_pipes_lines_through_python_echo_server() {
    // Used as a person would: type lines, see the echoes, then end input.
    // (Ending input at once is covered by the next test.)
    let Some(python) = python() else { return };
    let peer = PythonEchoServer::start(&python, &[]);
    let long = ascii(100_000);
    let lines = [
        "hello",
        "",
        "ünïcödé € 𝄞",
        "  spaces  ",
        long.as_str(),
        "last",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsclient"))
        .arg(peer.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsclient");
    let kill_on_drop = KillOnDrop(&mut child);
    let mut stdin = kill_on_drop.0.stdin.take().unwrap();
    let stderr = drain(kill_on_drop.0.stderr.take().unwrap());
    let (line_tx, echoed) = mpsc::channel();
    let mut stdout = BufReader::new(kill_on_drop.0.stdout.take().unwrap());
    let stdout_reader = thread::spawn(move || loop {
        let mut line = Vec::new();
        match stdout.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        }
    });
    for line in lines {
        writeln!(stdin, "{line}").expect("write to wsclient");
    }
    stdin.flush().unwrap();
    for (i, line) in lines.iter().enumerate() {
        let got = echoed
            .recv_timeout(PEER_TIMEOUT)
            .unwrap_or_else(|_| panic!("no echo of line {i} from wsclient"));
        assert!(
            got == format!("{line}\n").as_bytes(),
            "line {i}: sent {} bytes, wsclient printed {} bytes",
            line.len() + 1,
            got.len()
        );
    }
    // End of input: wsclient closes with 1000 and exits 0.
    drop(stdin);
    let deadline = Instant::now() + PEER_TIMEOUT;
    let status = loop {
        if let Some(status) = kill_on_drop.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "wsclient did not exit after end of input"
        );
        thread::sleep(Duration::from_millis(20));
    };
    drop(kill_on_drop);
    stdout_reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
    assert!(
        status.success(),
        "wsclient exited with {status}; stderr:\n{stderr}"
    );
    assert!(
        echoed.try_recv().is_err(),
        "wsclient printed more than the echoes"
    );
    assert_eq!(peer.next_line(), "CLOSED 1000 ");
}

#[test]
fn wsclient_piped_all_at_once_gets_every_echo_from_python_websockets() {
    // `printf 'a\nb\n' | wsclient URL`: input ends before any echo is back.
    // wsclient lingers until the replies stop before it closes, because
    // `websockets` drops unsent echoes once it gets a close frame.
    let Some(python) = python() else { return };
    let peer = PythonEchoServer::start(&python, &[]);
    let input: String = (0..50).map(|i| format!("line {i}\n")).collect();
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_wsclient")).arg(peer.url()),
        input.as_bytes(),
        PEER_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "wsclient exited with {}; stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), input);
    assert_eq!(peer.next_line(), "CLOSED 1000 ");
}

/// Kills a child still running when a test panics.
struct KillOnDrop<'a>(&'a mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn our_client_answers_python_websockets_keepalive_pings() {
    // websockets pings every 50 ms; our client, blocked in read, must answer
    // each ping (the pong leaves before its next blocking read).
    let Some(python) = python() else { return };
    let peer = PythonEchoServer::start(&python, &["--ping-interval", "0.05"]);
    let (mut ws, _) = rfc6455::connect_with(&peer.url(), &client_config())
        .unwrap_or_else(|e| panic!("connect to the Python server: {e}"));
    let mut pings = 0;
    while pings < 5 {
        match ws.read() {
            Ok(Message::Ping(_)) => pings += 1,
            other => panic!("expected keepalive pings, got {other:?}"),
        }
    }
    assert_echo(&mut ws, Message::Text("alive after pings".into()));
    close_normally(&mut ws);
    drop(ws);
    assert_eq!(peer.next_line(), "PONG_RECEIVED yes");
    assert_eq!(peer.next_line(), "CLOSED 1000 ");
}
