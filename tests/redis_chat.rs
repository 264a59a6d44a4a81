//! The chat across instances, with the real things: Debian's `redis-server`
//! and `nginx` (installed by `.ci/redis.sh`), the `chat` example as separate
//! processes, and `wsclient`.
//!
//! The tests that need Redis are built with the `redis` feature only
//! (`cargo test --features redis --test redis_chat`). When `redis-server`
//! or `nginx` is missing and `.ci/redis.sh` cannot install it (no root, no
//! network), they skip, saying so on stderr.
// Without the feature only the single-instance tests run; the helpers they
// do not use are still compiled.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

mod common;

use common::{client_config, has_header, raw_exchange, status};
use rfc6455::{connect_with, Message};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for anything to happen in these tests.
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Child processes

/// A child process, killed when dropped, whose stderr lines are kept.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(program: &Path, args: &[&str], tag: &str) -> Proc {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Proc::spawn(&mut command, tag)
    }

    /// Starts `command` with stderr captured (stdin and stdout as set).
    fn spawn(command: &mut Command, tag: &str) -> Proc {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let kept = Arc::clone(&lines);
        let tag = tag.to_owned();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("  {tag}| {line}");
                kept.lock().unwrap().push(line);
            }
        });
        Proc { child, lines }
    }

    /// Waits for a stderr line containing `marker` and returns what follows it.
    fn wait_line(&self, marker: &str) -> String {
        let found = wait_for(marker, || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.to_owned()))
        });
        found.unwrap_or_else(|| panic!("no line with {marker:?}"))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `STOP`, `CONT`…) to the process, by its pid.
    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {} failed", self.pid());
    }

    /// Waits up to [`WAIT`] for the process to exit.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process {} did not exit",
                self.pid()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls `check` until it gives `Some`, for up to [`WAIT`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            eprintln!("timed out waiting for {what}");
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chat_example() -> PathBuf {
    common::example_binary("chat")
}

/// A chat instance on an ephemeral port.
struct Chat {
    proc: Proc,
    addr: SocketAddr,
}

fn start_chat(tag: &str, extra: &[&str]) -> Chat {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let proc = Proc::start(&chat_example(), &args, tag);
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = loop {
        let line = proc
            .lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.split_once("open http://").map(|(_, r)| r.to_owned()));
        if let Some(rest) = line {
            let end = rest.find(['/', ' ']).unwrap_or(rest.len());
            break rest[..end].parse().expect("chat address");
        }
        assert!(Instant::now() < deadline, "chat {tag} did not start");
        thread::sleep(Duration::from_millis(20));
    };
    Chat { proc, addr }
}

/// `GET target` on `addr`; the whole response.
fn get(addr: SocketAddr, target: &str) -> String {
    raw_exchange(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

// ---------------------------------------------------------------------------
// Clients

/// A client whose messages are read by a thread into a channel, so that a
/// test can wait for one with a deadline.
struct Client {
    writer: rfc6455::Writer<rfc6455::Stream>,
    inbox: Receiver<Message>,
}

impl Client {
    fn connect(url: &str) -> Client {
        let (ws, _) =
            connect_with(url, &client_config()).unwrap_or_else(|e| panic!("connect {url}: {e}"));
        // The reader thread's reads must not time out while idle.
        ws.get_ref().set_read_timeout(None).unwrap();
        let (mut reader, writer) = ws.split().unwrap();
        let (tx, inbox) = mpsc::channel();
        thread::spawn(move || {
            while let Ok(message) = reader.read() {
                let stop = matches!(message, Message::Close(_));
                if !matches!(message, Message::Ping(_) | Message::Pong(_))
                    && tx.send(message).is_err()
                {
                    break;
                }
                if stop {
                    break;
                }
            }
        });
        Client { writer, inbox }
    }

    fn say(&self, text: &str) {
        self.writer.send(Message::Text(text.into())).unwrap();
    }

    /// The next message that does not start with `probe`, within [`WAIT`].
    fn next(&self) -> Message {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Message::Text(t)) if t.starts_with("probe") => continue,
                Ok(message) => return message,
                Err(e) => panic!("no message within {WAIT:?}: {e}"),
            }
        }
    }

    fn next_text(&self) -> String {
        match self.next() {
            Message::Text(text) => text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// Whether a message arrives within `wait` (probes skipped).
    fn quiet_for(&self, wait: Duration) -> Option<Message> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Message::Text(t)) if t.starts_with("probe") => continue,
                Ok(message) => return Some(message),
                Err(_) => return None,
            }
        }
    }
}

/// Sends probes from `from` until `to` hears one: the instances' relays have
/// then subscribed to the room (subscribing happens in the background).
fn until_linked(from: &Client, to: &Client) {
    for i in 0..200 {
        from.say(&format!("probe {i}"));
        if let Ok(Message::Text(t)) = to.inbox.recv_timeout(Duration::from_millis(100)) {
            assert!(t.starts_with("probe"), "unexpected {t:?} while linking");
            // Later probes may still arrive: `next` skips them.
            return;
        }
    }
    panic!("the two instances never linked up");
}

#[test]
fn plain_get_on_the_ws_endpoint_gets_426_with_upgrade_websocket() {
    let chat = start_chat("chat", &[]);
    let response = get(chat.addr, "/ws");
    assert_eq!(status(&response), 426, "{response}");
    assert!(has_header(&response, "Upgrade", "websocket"), "{response}");
    assert!(
        has_header(&response, "Sec-WebSocket-Version", "13"),
        "{response}"
    );
    // Other paths are still unknown.
    assert_eq!(status(&get(chat.addr, "/nowhere")), 404);
    assert_eq!(status(&get(chat.addr, "/health")), 200);
}

#[test]
fn chat_rooms_isolate_on_one_instance() {
    rooms_isolate_on_one_instance(&[]);
}

/// The same chat on the poll engine: its connections are hub members
/// through their `poll::Sender`s.
#[cfg(feature = "mio")]
#[test]
fn chat_rooms_isolate_on_one_instance_on_the_poll_engine() {
    rooms_isolate_on_one_instance(&["--engine", "poll"]);
}

fn rooms_isolate_on_one_instance(extra: &[&str]) {
    let chat = start_chat("chat", extra);
    let red = Client::connect(&format!("ws://{}/ws?room=red", chat.addr));
    let blue = Client::connect(&format!("ws://{}/ws?room=blue", chat.addr));
    let lobby = Client::connect(&format!("ws://{}/ws", chat.addr));
    red.say("for red");
    blue.say("for blue");
    lobby.say("for the lobby");
    assert_eq!(red.next_text(), "for red");
    assert_eq!(blue.next_text(), "for blue");
    assert_eq!(lobby.next_text(), "for the lobby");
    let response = get(chat.addr, "/receive?msg=all+of+you");
    assert_eq!(status(&response), 200, "{response}");
    for client in [&red, &blue, &lobby] {
        assert_eq!(client.next_text(), "all of you");
    }
    assert_eq!(status(&get(chat.addr, "/receive?msg=reds&room=red")), 200);
    assert_eq!(red.next_text(), "reds");
    assert_eq!(blue.quiet_for(Duration::from_millis(300)), None);
}

/// `request` (a whole HTTP/1.1 head) on `addr`: the status.
fn exchange(addr: SocketAddr, request: &str) -> u16 {
    status(&raw_exchange(
        addr,
        request.replace('\n', "\r\n").as_bytes(),
    ))
}

fn receive_refuses_what_a_browser_marks_cross_site(extra: &[&str]) {
    let chat = start_chat("chat", extra);
    let addr = chat.addr;
    let client = Client::connect(&format!("ws://{addr}/ws?room=r"));
    let get = |headers: &str| {
        exchange(
            addr,
            &format!("GET /receive?room=r&msg=x HTTP/1.1\nHost: {addr}\n{headers}\n"),
        )
    };
    // An <img src> or a form on another site's page: refused, nothing sent.
    assert_eq!(get("Sec-Fetch-Site: cross-site\n"), 403);
    assert_eq!(get("Origin: http://evil.example\n"), 403);
    let post = |headers: &str| {
        exchange(
            addr,
            &format!("POST /receive?room=r&msg=posted HTTP/1.1\nHost: {addr}\nContent-Length: 0\n{headers}\n"),
        )
    };
    assert_eq!(
        post("Origin: http://evil.example\nSec-Fetch-Site: cross-site\n"),
        403
    );
    assert_eq!(client.quiet_for(Duration::from_millis(200)), None);
    // The chat's own page, and curl (no Origin, no Fetch Metadata): let in.
    assert_eq!(
        post(&format!(
            "Origin: http://{addr}\nSec-Fetch-Site: same-origin\n"
        )),
        200
    );
    assert_eq!(client.next_text(), "posted");
    assert_eq!(get(""), 200);
    assert_eq!(client.next_text(), "x");
    // HEAD changes nothing (RFC 9110 §9.3.2), nor does any other method.
    assert_eq!(
        exchange(
            addr,
            &format!("HEAD /receive?room=r&msg=head HTTP/1.1\nHost: {addr}\n\n")
        ),
        405
    );
    assert_eq!(
        exchange(
            addr,
            &format!("PUT /receive?room=r&msg=put HTTP/1.1\nHost: {addr}\n\n")
        ),
        405
    );
    assert_eq!(client.quiet_for(Duration::from_millis(200)), None);
}

#[test]
fn receive_refuses_what_a_browser_marks_cross_site_and_takes_post() {
    receive_refuses_what_a_browser_marks_cross_site(&[]);
}

#[cfg(feature = "mio")]
#[test]
fn receive_refuses_what_a_browser_marks_cross_site_on_the_poll_engine() {
    receive_refuses_what_a_browser_marks_cross_site(&["--engine", "poll"]);
}

/// With history in the process (no Redis): the protocol, and what a
/// broadcast without a room does (at most once, in no history).
fn history_on_one_instance(extra: &[&str]) {
    let mut args = vec!["--history", "100", "--tick", "0.2"];
    args.extend_from_slice(extra);
    let chat = start_chat("chat", &args);
    let client = Client::connect(&format!("ws://{}/ws?room=r", chat.addr));
    let joined: serde_json::Value = serde_json::from_str(&client.next_text()).unwrap();
    assert_eq!(
        (joined["type"].as_str(), joined["room"].as_str()),
        (Some("joined"), Some("r"))
    );
    let response = raw_exchange(
        chat.addr,
        format!(
            "GET /receive?room=r&msg=kept&id=k1 HTTP/1.1\r\nHost: {}\r\n\r\n",
            chat.addr
        )
        .as_bytes(),
    );
    assert_eq!(status(&response), 200, "{response}");
    assert!(response.contains("accepted "), "{response}");
    assert_eq!(status(&get(chat.addr, "/receive?msg=everyone")), 200);
    let (mut kept, mut everyone, mut ticks) = (false, false, false);
    while !(kept && everyone && ticks) {
        let value: serde_json::Value = serde_json::from_str(&client.next_text()).unwrap();
        match (value["type"].as_str(), value["text"].as_str()) {
            (Some("message"), Some("kept")) => {
                assert!(
                    value["offset"].is_string() && value["epoch"].is_string(),
                    "{value}"
                );
                kept = true;
            }
            (Some("broadcast"), Some("everyone")) => everyone = true,
            (Some("broadcast"), Some(t)) if t.starts_with("tick: ") => ticks = true,
            other => panic!("unexpected {other:?}: {value}"),
        }
    }
    // The same id again: accepted, not delivered again.
    let again = raw_exchange(
        chat.addr,
        format!(
            "GET /receive?room=r&msg=kept&id=k1 HTTP/1.1\r\nHost: {}\r\n\r\n",
            chat.addr
        )
        .as_bytes(),
    );
    assert!(again.contains("accepted (already)"), "{again}");
    let body = get(chat.addr, "/health");
    assert!(body.contains("accepted: 2"), "{body}");
}

#[test]
fn history_without_redis_speaks_the_protocol_and_a_roomless_broadcast_is_at_most_once() {
    history_on_one_instance(&[]);
}

#[cfg(feature = "mio")]
#[test]
fn history_without_redis_speaks_the_protocol_on_the_poll_engine() {
    history_on_one_instance(&["--engine", "poll"]);
}

#[cfg(not(feature = "redis"))]
#[test]
fn redis_flag_without_the_feature_says_how_to_build_it() {
    let output = Command::new(chat_example())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--redis",
            "redis://127.0.0.1:6379/",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run chat");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--features redis"), "{stderr}");
}

// ---------------------------------------------------------------------------
// With Redis

#[cfg(feature = "redis")]
mod with_redis {
    use super::*;
    use rfc6455::hub::redis::{RedisConfig, RedisRelay, RelayStats};
    use rfc6455::{Hub, RunningServer, Server, ServerConfig, Stream};
    use std::io::{Read, Write};

    /// Where the real components are, or why the test must skip.
    pub(super) struct Components {
        redis_server: PathBuf,
        nginx: PathBuf,
    }

    fn find(names: &[&str]) -> Option<PathBuf> {
        names.iter().map(PathBuf::from).find(|p| p.is_file())
    }

    fn locate() -> Option<Components> {
        Some(Components {
            redis_server: find(&["/usr/bin/redis-server", "/usr/local/bin/redis-server"])?,
            nginx: find(&["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"])?,
        })
    }

    /// The installed components; `None` (after saying why) when they are
    /// missing and `.ci/redis.sh` cannot install them.
    pub(super) fn components() -> Option<&'static Components> {
        static FOUND: std::sync::OnceLock<Result<Components, String>> = std::sync::OnceLock::new();
        let found = FOUND.get_or_init(|| {
            if let Some(found) = locate() {
                return Ok(found);
            }
            let output = Command::new("bash")
                .arg(common::repo().join(".ci").join("redis.sh"))
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run .ci/redis.sh: {e}"))?;
            locate().ok_or_else(|| {
                format!(
                    ".ci/redis.sh could not install redis-server and nginx ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                )
            })
        });
        match found {
            Ok(found) => Some(found),
            Err(why) => {
                eprintln!("SKIPPED: this test needs the real redis-server and nginx: {why}");
                None
            }
        }
    }

    /// A `redis-server` of our own, on a loopback port, with nothing saved.
    pub(super) struct Redis {
        proc: Proc,
        pub(super) port: u16,
    }

    impl Redis {
        pub(super) fn start(components: &Components, port: u16) -> Redis {
            Redis::start_with(components, port, &["--appendonly", "no"])
        }

        /// A Redis that keeps its data across a restart in `dir`, as
        /// docs/deploy.md says to run it for history: every write on disk
        /// before it is acknowledged.
        pub(super) fn start_persistent(components: &Components, port: u16, dir: &Path) -> Redis {
            std::fs::create_dir_all(dir).unwrap();
            let dir = dir.to_str().unwrap();
            let settings = [
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                dir,
            ];
            Redis::start_with(components, port, &settings)
        }

        fn start_with(components: &Components, port: u16, settings: &[&str]) -> Redis {
            let port_arg = port.to_string();
            let mut args = vec![
                "--port",
                &port_arg,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                "",
            ];
            args.extend_from_slice(settings);
            let proc = Proc::start(&components.redis_server, &args, "redis");
            let redis = Redis { proc, port };
            let up = wait_for("redis to answer PING", || redis.ask("PING").ok());
            assert_eq!(
                up.as_deref(),
                Some("+PONG\r\n"),
                "redis-server did not start"
            );
            // The Redis that answers must be this one, not another test's
            // that took the same port first (free_port only says a port was
            // free a moment ago).
            let info = redis.ask("INFO server").unwrap_or_default();
            let ours = format!("process_id:{}", redis.proc.pid());
            assert!(
                info.contains(&ours),
                "port {port}: another test's redis answered"
            );
            redis
        }

        pub(super) fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }

        /// Sends one inline command and returns the first reply line.
        pub(super) fn ask(&self, command: &str) -> std::io::Result<String> {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(format!("{command}\r\n").as_bytes())?;
            let mut reply = [0u8; 4096];
            let n = stream.read(&mut reply)?;
            Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
        }

        /// Stops the server by its pid (SIGTERM) and waits for it to exit.
        pub(super) fn stop(mut self) -> u16 {
            self.proc.signal("TERM");
            self.proc.wait_exit();
            self.port
        }
    }

    /// `/health` of a chat instance: (status, body).
    pub(super) fn health(chat: &Chat) -> (u16, String) {
        let response = get(chat.addr, "/health");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status(&response), body)
    }

    /// One counter from a `/health` body.
    pub(super) fn counter(body: &str, name: &str) -> u64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {body:?}"))
    }

    /// Waits until `n` clients have joined `chat`'s hub (a client's
    /// handshake completes just before the server's handler joins it).
    pub(super) fn wait_clients(chat: &Chat, n: u64) {
        let joined = wait_for("clients to join", || {
            (counter(&health(chat).1, "clients") == n).then_some(())
        });
        assert!(joined.is_some(), "{:?}", health(chat));
    }

    pub(super) fn wait_health(chat: &Chat, want: u16) -> String {
        wait_for(&format!("/health {want}"), || {
            let (code, body) = health(chat);
            (code == want).then_some(body)
        })
        .unwrap_or_else(|| panic!("/health never answered {want}: {:?}", health(chat)))
    }

    /// A chat instance relaying through `redis`, its link up.
    pub(super) fn linked_chat(tag: &str, redis: &Redis, extra: &[&str]) -> Chat {
        let url = redis.url();
        let mut args = vec!["--redis", url.as_str()];
        args.extend_from_slice(extra);
        let chat = start_chat(tag, &args);
        wait_health(&chat, 200);
        chat
    }

    /// Redis and two chat instances linked through it (`b` with `extra`
    /// arguments), or `None` when the components are missing.
    fn two_chats(extra: &[&str]) -> Option<(Redis, Chat, Chat)> {
        let redis = Redis::start(components()?, free_port());
        let a = linked_chat("a", &redis, &[]);
        let b = linked_chat("b", &redis, extra);
        Some((redis, a, b))
    }

    fn ws(chat: &Chat, room: &str) -> Client {
        Client::connect(&format!("ws://{}/ws?room={room}", chat.addr))
    }

    #[test]
    fn ten_thousand_messages_typed_on_a_reach_b_in_order_without_loss() {
        let Some((_redis, a, b)) = two_chats(&[]) else {
            return;
        };
        let on_a = ws(&a, "lobby");
        let on_b = ws(&b, "lobby");
        until_linked(&on_a, &on_b);

        const COUNT: usize = 10_000;
        // Windowed, so that no queue along the way (the member queues hold
        // 256) overflows because a test client fell behind: a loss here
        // would be the relay's. A's own client hears each message locally,
        // B's through Redis; both in the order A's client typed them.
        let (mut heard_a, mut heard_b) = (0, 0);
        let expect = |client: &Client, heard: &mut usize, who: &str| {
            let got = client.next_text();
            assert_eq!(got, format!("m{heard}"), "{who} heard out of order");
            *heard += 1;
        };
        for i in 0..COUNT {
            on_a.say(&format!("m{i}"));
            while i >= heard_b + 100 {
                expect(&on_b, &mut heard_b, "B");
            }
            while i >= heard_a + 100 {
                expect(&on_a, &mut heard_a, "A");
            }
        }
        while heard_b < COUNT {
            expect(&on_b, &mut heard_b, "B");
        }
        while heard_a < COUNT {
            expect(&on_a, &mut heard_a, "A");
        }
        let (_, body) = health(&a);
        eprintln!("a /health after 10,000 messages:\n{body}");
        assert_eq!(counter(&body, "not_published"), 0);
        assert_eq!(counter(&health(&b).1, "missed"), 0);
    }

    /// One instance on each engine: the hub, its rooms and the relay are
    /// the same whichever engine serves the connections.
    #[cfg(feature = "mio")]
    #[test]
    fn a_threaded_instance_and_a_poll_engine_instance_form_one_chat() {
        let Some((_redis, a, b)) = two_chats(&["--engine", "poll"]) else {
            return;
        };
        let on_a = ws(&a, "lobby");
        let on_b = ws(&b, "lobby");
        let red_b = ws(&b, "red");
        until_linked(&on_a, &on_b);
        until_linked(&on_b, &on_a);
        // In windows of 100: the member queues hold 256, and a loss here
        // must be the engine's, not a test client falling behind.
        for window in 0..10 {
            for i in window * 100..(window + 1) * 100 {
                on_b.say(&format!("b{i}"));
            }
            for i in window * 100..(window + 1) * 100 {
                assert_eq!(on_a.next_text(), format!("b{i}"), "A heard out of order");
                assert_eq!(on_b.next_text(), format!("b{i}"), "B heard out of order");
            }
        }
        on_a.say("from a");
        assert_eq!(on_b.next_text(), "from a");
        assert_eq!(red_b.quiet_for(Duration::from_millis(300)), None);
    }

    #[test]
    fn receive_and_tick_on_b_reach_the_clients_of_a() {
        let Some((_redis, a, b)) = two_chats(&["--tick", "0.3"]) else {
            return;
        };
        let on_a = ws(&a, "lobby");
        // The all-rooms channel is subscribed from the start: no probe needed.
        let tick = on_a.next_text();
        assert!(tick.starts_with("tick: "), "{tick:?}");
        let response = get(b.addr, "/receive?msg=hello+from+b");
        assert_eq!(status(&response), 200, "{response}");
        let heard = (0..10)
            .map(|_| on_a.next_text())
            .find(|t| !t.starts_with("tick: "));
        assert_eq!(heard.as_deref(), Some("hello from b"));
    }

    #[test]
    fn rooms_isolate_across_instances() {
        let Some((_redis, a, b)) = two_chats(&[]) else {
            return;
        };
        let red_a = ws(&a, "red");
        let red_b = ws(&b, "red");
        let blue_b = ws(&b, "blue");
        let blue_a = ws(&a, "blue");
        until_linked(&red_a, &red_b);
        until_linked(&blue_a, &blue_b);

        red_a.say("red only");
        assert_eq!(red_b.next_text(), "red only");
        blue_a.say("blue only");
        assert_eq!(blue_b.next_text(), "blue only");
        // Each room's clients on B heard only their own room.
        assert_eq!(red_b.quiet_for(Duration::from_millis(300)), None);
        assert_eq!(blue_b.quiet_for(Duration::from_millis(50)), None);
        // `/receive` for one room on A reaches that room on B only.
        assert_eq!(status(&get(a.addr, "/receive?msg=reds&room=red")), 200);
        assert_eq!(red_b.next_text(), "reds");
        assert_eq!(blue_b.quiet_for(Duration::from_millis(300)), None);
    }

    #[test]
    fn redis_stopped_and_restarted_instances_stay_up_and_recover() {
        let Some((redis, a, b)) = two_chats(&[]) else {
            return;
        };
        let on_a = ws(&a, "lobby");
        let also_on_a = ws(&a, "lobby");
        let on_b = ws(&b, "lobby");
        until_linked(&on_a, &on_b);
        wait_clients(&a, 2);

        // Redis goes away: stopped by its pid.
        let port = redis.stop();
        let down_a = wait_health(&a, 503);
        wait_health(&b, 503);
        eprintln!("a /health with Redis down:\n{down_a}");

        // Both instances are up, and A's local chat still works.
        for i in 0..5 {
            on_a.say(&format!("while down {i}"));
            assert_eq!(also_on_a.next_text(), format!("while down {i}"));
        }
        let counted = wait_for("not_published to count the 5", || {
            let n = counter(&health(&a).1, "not_published");
            (n >= 5).then_some(n)
        });
        assert!(counted.is_some(), "not_published: {}", health(&a).1);

        // Redis is back on the same port: both links come back.
        let _redis = Redis::start(components().expect("found above"), port);
        let up_a = wait_health(&a, 200);
        let up_b = wait_health(&b, 200);
        eprintln!("a /health after the restart:\n{up_a}");
        assert!(counter(&up_a, "reconnects") >= 1, "{up_a}");
        assert!(counter(&up_b, "reconnects") >= 1, "{up_b}");

        // Messages flow across again, and what was said while Redis was
        // down is not replayed (pub/sub is at most once).
        until_linked(&on_a, &on_b);
        on_a.say("after the restart");
        assert_eq!(on_b.next_text(), "after the restart");
        assert_eq!(on_b.quiet_for(Duration::from_millis(300)), None);
        let (_, body) = health(&a);
        eprintln!("a /health at the end:\n{body}");
        assert!(counter(&body, "not_published") >= 5, "{body}");
    }

    #[test]
    fn redis_unreachable_at_start_the_instance_serves_locally_and_links_later() {
        let Some(components) = components() else {
            return;
        };
        let port = free_port();
        let url = format!("redis://127.0.0.1:{port}/");
        let a = start_chat("a", &["--redis", &url]);
        let (code, body) = health(&a);
        assert_eq!(code, 503, "{body}");
        let one = ws(&a, "lobby");
        let two = ws(&a, "lobby");
        wait_clients(&a, 2);
        one.say("local while redis is away");
        assert_eq!(two.next_text(), "local while redis is away");

        let redis = Redis::start(components, port);
        wait_health(&a, 200);
        let b = linked_chat("b", &redis, &[]);
        let on_b = ws(&b, "lobby");
        until_linked(&one, &on_b);
    }

    // -- In-process relays: binary payloads, counters, a stalled Redis --

    type TestHub = Hub<Stream>;

    /// A server whose clients are all in one room; binary and text they send
    /// go to the room.
    fn relayed_server(hub: &TestHub) -> RunningServer {
        let hub = hub.clone();
        Server::bind("127.0.0.1:0", ServerConfig::default().keepalive(None))
            .unwrap()
            .spawn(move |ws, _request| {
                let (mut reader, writer) = ws.split()?;
                let _member = hub.join_room("room", writer);
                loop {
                    let message = reader.read()?;
                    if message.is_data() {
                        hub.broadcast_to("room", message);
                    }
                }
            })
            .unwrap()
    }

    fn relay(redis: &Redis, config: RedisConfig) -> RedisRelay {
        let relay = RedisRelay::open_with(&redis.url(), config).unwrap();
        assert!(relay.wait_connected(WAIT), "relay did not connect");
        relay
    }

    #[test]
    fn binary_and_text_round_trip_byte_for_byte_between_two_processes_hubs() {
        let Some(components) = components() else {
            return;
        };
        let redis = Redis::start(components, free_port());
        let hub_a = TestHub::new().with_relay(relay(&redis, RedisConfig::default()));
        let hub_b = TestHub::new().with_relay(relay(&redis, RedisConfig::default()));
        let (server_a, server_b) = (relayed_server(&hub_a), relayed_server(&hub_b));
        let on_a = Client::connect(&format!("ws://{}/", server_a.local_addr()));
        let on_b = Client::connect(&format!("ws://{}/", server_b.local_addr()));
        until_linked(&on_a, &on_b);

        let all_bytes: Vec<u8> = (0..=255u8).collect();
        let mut messages = vec![
            Message::Binary(Vec::new()),
            Message::Binary(all_bytes.repeat(3)),
            Message::Binary(common::bytes(1 << 20)),
            Message::Text(String::new()),
            Message::Text("\u{0}é\u{1f600}\r\n".into()),
        ];
        messages.push(Message::Text(common::ascii(70_000)));
        for message in &messages {
            on_a.writer.send(message.clone()).unwrap();
        }
        for message in &messages {
            let got = on_b.next();
            assert!(
                &got == message,
                "a {}-byte message changed on the way ({} bytes arrived)",
                message.len(),
                got.len()
            );
        }
        server_a.shutdown().unwrap();
        server_b.shutdown().unwrap();
    }

    /// Kills every pub/sub connection from Redis's side.
    fn kill_subscribers(redis: &Redis) {
        let reply = redis.ask("CLIENT KILL TYPE pubsub").unwrap();
        assert!(reply.starts_with(':'), "CLIENT KILL answered {reply:?}");
    }

    #[test]
    fn subscription_killed_by_redis_counts_the_messages_missed_meanwhile() {
        let Some(components) = components() else {
            return;
        };
        let redis = Redis::start(components, free_port());
        // A slow backoff, so that some messages surely go by unheard.
        let slow = RedisConfig::default().backoff_min(Duration::from_millis(300));
        let relay_a = relay(&redis, RedisConfig::default());
        let relay_b = relay(&redis, slow);
        let hub_a = TestHub::new().with_relay(relay_a.clone());
        let _hub_b = TestHub::new().with_relay(relay_b.clone());

        // A publishes without pause until told to stop (5 s at most),
        // while Redis drops B's subscription until B has missed something.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let sender = thread::spawn(move || {
            let start = Instant::now();
            let mut i = 0u32;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed)
                && start.elapsed() < Duration::from_secs(5)
            {
                hub_a.broadcast(Message::Binary(i.to_be_bytes().to_vec()));
                i += 1;
                if i % 16 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            (hub_a, u64::from(i))
        });
        for _ in 0..20 {
            thread::sleep(Duration::from_millis(100));
            if relay_b.stats().missed > 0 {
                break;
            }
            kill_subscribers(&redis);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (hub_a, broadcasts) = sender.join().unwrap();
        // A gap shows when the next message from the same sender arrives:
        // one more, once B listens again, reveals a loss at the very end.
        assert!(relay_b.wait_connected(WAIT));
        hub_a.broadcast(Message::Text("last".into()));
        let total = broadcasts + 1;
        let sent = wait_for("A's queue to drain", || {
            let s = relay_a.stats();
            (s.published + s.not_published == total).then_some(())
        });
        assert!(sent.is_some(), "{total} broadcast, {:?}", relay_a.stats());
        let published = relay_a.stats().published;
        let settled = wait_for("B to account for every message", || {
            let s = relay_b.stats();
            (s.received + s.missed == published).then_some(s)
        });
        let b: RelayStats =
            settled.unwrap_or_else(|| panic!("A published {published}, B: {:?}", relay_b.stats()));
        eprintln!("A: {:?}\nB: {b:?}", relay_a.stats());
        // (A may have had to leave some unpublished, its queue full on a
        // busy machine: those are in A's not_published, not B's counts.)
        assert!(b.missed > 0, "nothing was missed: {b:?}");
        assert!(b.reconnects >= 1, "{b:?}");
        drop(hub_a);
    }

    #[test]
    fn redis_that_stops_answering_never_blocks_a_broadcast() {
        let Some(components) = components() else {
            return;
        };
        let redis = Redis::start(components, free_port());
        let config = RedisConfig::default()
            .queue_len(16)
            .io_timeout(Duration::from_secs(2));
        let relay = relay(&redis, config);
        let hub = TestHub::new().with_relay(relay.clone());
        let server = relayed_server(&hub);
        let one = Client::connect(&format!("ws://{}/", server.local_addr()));
        let two = Client::connect(&format!("ws://{}/", server.local_addr()));
        assert!(wait_for("2 members", || (hub.len() == 2).then_some(())).is_some());

        // SIGSTOP: the process is there, its socket accepts bytes, and it
        // answers nothing.
        redis.proc.signal("STOP");
        // Each of these sends goes through a connection's reader thread,
        // which broadcasts: a broadcast that waited on Redis would stall
        // them, and the local echo would never come.
        for i in 0..200 {
            one.say(&format!("stalled {i}"));
            assert_eq!(two.next_text(), format!("stalled {i}"));
        }
        let stalled = relay.stats();
        eprintln!("with Redis stopped: {stalled:?}");
        assert!(stalled.not_published > 0, "{stalled:?}");

        redis.proc.signal("CONT");
        assert!(relay.wait_connected(WAIT), "the relay never came back");
        server.shutdown().unwrap();
    }

    #[test]
    fn garbage_published_on_the_channel_is_counted_as_malformed_and_not_delivered() {
        let Some(components) = components() else {
            return;
        };
        let redis = Redis::start(components, free_port());
        let relay = relay(&redis, RedisConfig::default());
        let hub = TestHub::new().with_relay(relay.clone());
        let server = relayed_server(&hub);
        let one = Client::connect(&format!("ws://{}/", server.local_addr()));
        assert!(wait_for("1 member", || (hub.len() == 1).then_some(())).is_some());
        // Someone else's publishes on our channel: not frames of ours.
        for garbage in ["hello", "\"\"", "\"\\xb5\\x01\\x09truncated\""] {
            let reply = redis
                .ask(&format!("PUBLISH rfc6455:all {garbage}"))
                .unwrap();
            assert!(reply.starts_with(':'), "PUBLISH answered {reply:?}");
        }
        let counted = wait_for("3 malformed", || {
            (relay.stats().malformed == 3).then_some(())
        });
        assert!(counted.is_some(), "{:?}", relay.stats());
        assert_eq!(one.quiet_for(Duration::from_millis(200)), None);
        assert!(relay.is_connected());
        server.shutdown().unwrap();
    }

    #[test]
    fn redis_that_accepts_and_closes_at_once_is_retried_with_backoff_not_in_a_spin() {
        // Not Redis: a listener that accepts and hangs up, counting.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        thread::spawn(move || {
            for stream in listener.incoming() {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                drop(stream);
            }
        });
        let url = format!("redis://127.0.0.1:{port}/");
        let relay = RedisRelay::open(&url).unwrap();
        thread::sleep(Duration::from_millis(1500));
        let attempts = accepted.load(std::sync::atomic::Ordering::Relaxed);
        assert!(!relay.is_connected());
        // Two links, each backing off from 100 ms: about 5 tries each in
        // 1.5 s. A relay that spun would make thousands.
        assert!(
            (1..50).contains(&attempts),
            "{attempts} connections in 1.5 s"
        );
    }

    // -- Behind nginx --

    /// The nginx configuration from docs/deploy.md, with our ports.
    fn deploy_config(listen: u16, a: SocketAddr, b: SocketAddr) -> String {
        let doc = std::fs::read_to_string(common::repo().join("docs").join("deploy.md")).unwrap();
        let block = doc
            .split("```nginx\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("an nginx block in docs/deploy.md");
        assert!(block.contains("listen 8080;") && block.contains("127.0.0.1:9003"));
        block
            .replace("listen 8080;", &format!("listen 127.0.0.1:{listen};"))
            .replace("127.0.0.1:9002", &a.to_string())
            .replace("127.0.0.1:9003", &b.to_string())
    }

    /// The `location / { … }` block of the documented config, sending
    /// everything to `to` instead of the upstream group.
    fn pinned_server(config: &str, listen: u16, to: SocketAddr) -> String {
        let start = config.find("    location / {").expect("location block");
        let end = start + config[start..].find("\n    }\n").expect("its end") + 7;
        let location = config[start..end].replace("http://chat;", &format!("http://{to};"));
        format!("server {{\n    listen 127.0.0.1:{listen};\n\n{location}}}\n")
    }

    /// nginx in the foreground, with its files in a directory of its own.
    struct Nginx {
        _proc: Proc,
        dir: PathBuf,
    }

    impl Drop for Nginx {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn start_nginx(components: &Components, site: &str, ports: &[u16]) -> Nginx {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nginx-{}", ports[0]));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("chat.conf"), site).unwrap();
        let d = dir.display();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log stderr warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             include {d}/chat.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let conf = dir.join("nginx.conf");
        let mut command = Command::new(&components.nginx);
        command
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg("stderr")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let proc = Proc::spawn(&mut command, "nginx");
        for &port in ports {
            let up = wait_for("nginx to listen", || {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .ok()
                    .map(drop)
            });
            assert!(up.is_some(), "nginx is not listening on {port}");
        }
        Nginx { _proc: proc, dir }
    }

    #[test]
    fn client_behind_nginx_gets_1001_and_reconnects_to_the_other_instance() {
        let Some((_redis, a, b)) = two_chats(&[]) else {
            return;
        };
        let port = free_port();
        let _nginx = start_nginx(
            components().expect("found above"),
            &deploy_config(port, a.addr, b.addr),
            &[port],
        );

        // wsclient --reconnect through nginx; what it prints comes to us.
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsclient"));
        command
            .args([
                "--reconnect",
                &format!("ws://127.0.0.1:{port}/ws?room=lobby"),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut client = Proc::spawn(&mut command, "wsclient");
        let _stdin = client.child.stdin.take(); // open until the end
        let stdout = client.child.stdout.take().unwrap();
        let (tx, heard) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let hear = |text: &str| {
            let deadline = Instant::now() + WAIT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match heard.recv_timeout(left) {
                    Ok(line) if line == text => return,
                    Ok(_) => continue,
                    Err(_) => panic!("wsclient never printed {text:?}"),
                }
            }
        };
        client.wait_line("wsclient: connected to");

        // Which instance did nginx pick? Its /health counts one client.
        let on = wait_for("the client to join an instance", || {
            let (in_a, in_b) = (
                counter(&health(&a).1, "clients"),
                counter(&health(&b).1, "clients"),
            );
            match (in_a, in_b) {
                (1, 0) => Some(true),
                (0, 1) => Some(false),
                _ => None,
            }
        })
        .expect("the client is on no instance");
        let (mut victim, survivor) = if on { (a, b) } else { (b, a) };
        // A broadcast on the other instance reaches it through Redis.
        assert_eq!(status(&get(survivor.addr, "/receive?msg=before")), 200);
        hear("before");
        // nginx passed the client's address on.
        victim
            .proc
            .wait_line("chat: 127.0.0.1 joined room \"lobby\"");

        victim.proc.signal("TERM");
        let closed = client.wait_line("wsclient: connection closed: ");
        assert!(closed.contains("1001"), "closed with {closed:?}");
        assert!(
            victim.proc.wait_exit().success(),
            "the instance did not exit cleanly"
        );

        // Reconnected through nginx, necessarily to the survivor.
        let again = wait_for("wsclient to reconnect", || {
            let lines = client.lines.lock().unwrap();
            (lines
                .iter()
                .filter(|l| l.contains("wsclient: connected to"))
                .count()
                == 2)
                .then_some(())
        });
        assert!(again.is_some(), "wsclient did not reconnect");
        wait_clients(&survivor, 1);
        assert_eq!(status(&get(survivor.addr, "/receive?msg=after")), 200);
        hear("after");
    }

    /// Node with playwright-core and chromium (from `.ci/peers.sh`), or why
    /// not.
    fn browser() -> Result<(PathBuf, PathBuf), String> {
        if std::env::var("RFC6455_SKIP_BROWSER").as_deref() == Ok("1") {
            return Err("RFC6455_SKIP_BROWSER=1".into());
        }
        let node_dir = std::env::var_os("RFC6455_PEERS_NODE_DIR")
            .map_or_else(|| common::repo().join(".ci").join("peers"), PathBuf::from);
        let chromium = std::env::var_os("RFC6455_CHROMIUM")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        let missing = || {
            let playwright = node_dir.join("node_modules/playwright-core/package.json");
            if !playwright.is_file() {
                return Some(format!("no {}", playwright.display()));
            }
            if !chromium.is_file() {
                return Some(format!("no browser at {}", chromium.display()));
            }
            common::node_missing()
        };
        if missing().is_some() {
            common::install_peers(&[])?;
        }
        match missing() {
            None => Ok((node_dir, chromium)),
            Some(why) => Err(format!("{why}, even after .ci/peers.sh")),
        }
    }

    #[test]
    fn chromium_tabs_on_two_instances_through_nginx_see_each_other() {
        let Some(components) = components() else {
            return;
        };
        let (node_dir, chromium) = match browser() {
            Ok(found) => found,
            Err(why) => {
                eprintln!("SKIPPED: this test needs chromium and playwright-core: {why}");
                return;
            }
        };
        let redis = Redis::start(components, free_port());
        let (port, pin_a, pin_b) = (free_port(), free_port(), free_port());
        // The pages come from nginx's ports: those are the origins to allow.
        let origins: Vec<String> = [port, pin_a, pin_b]
            .iter()
            .flat_map(|p| ["--allow-origin".into(), format!("http://127.0.0.1:{p}")])
            .collect();
        let origins: Vec<&str> = origins.iter().map(String::as_str).collect();
        let a = linked_chat("a", &redis, &origins);
        let b = linked_chat("b", &redis, &origins);
        let mut site = deploy_config(port, a.addr, b.addr);
        site.push_str(&pinned_server(&site.clone(), pin_a, a.addr));
        site.push_str(&pinned_server(&site.clone(), pin_b, b.addr));
        let _nginx = start_nginx(components, &site, &[port, pin_a, pin_b]);

        let mut command = Command::new("node");
        command
            .arg(
                common::repo()
                    .join(".ci")
                    .join("peers")
                    .join("browser_redis.js"),
            )
            .arg(format!("http://127.0.0.1:{pin_a}/?room=lobby"))
            .arg(format!("http://127.0.0.1:{pin_b}/?room=lobby"))
            .env("NODE_PATH", node_dir.join("node_modules"))
            .env("RFC6455_CHROMIUM", &chromium)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut node = Proc::spawn(&mut command, "browser");
        let mut stdout = String::new();
        let mut out = node.child.stdout.take().unwrap();
        let reading = thread::spawn(move || {
            let _ = out.read_to_string(&mut stdout);
            stdout
        });
        let deadline = Instant::now() + Duration::from_secs(150);
        let status = loop {
            if let Some(status) = node.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the browser test timed out");
            thread::sleep(Duration::from_millis(50));
        };
        let stdout = reading.join().unwrap();
        assert!(
            status.success() && stdout.contains("browser_redis: ok"),
            "browser_redis.js failed ({status}): {stdout}"
        );
        // Each tab was on its own instance.
        let joined = |chat: &Chat| {
            chat.proc
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("joined room"))
                .count()
        };
        assert_eq!((joined(&a), joined(&b)), (1, 1));
    }

    // -- History: recovery across instances, over Redis Streams --

    use serde_json::Value;

    /// A client of the chat's JSON protocol (`--history`), whose reader
    /// thread parses what arrives.
    struct Json {
        writer: rfc6455::Writer<rfc6455::Stream>,
        inbox: Receiver<Option<Value>>,
    }

    impl Json {
        fn connect(url: &str) -> Json {
            let (ws, _) =
                connect_with(url, &client_config()).unwrap_or_else(|e| panic!("{url}: {e}"));
            ws.get_ref().set_read_timeout(None).unwrap();
            let (mut reader, writer) = ws.split().unwrap();
            let (tx, inbox) = mpsc::channel();
            thread::spawn(move || loop {
                match reader.read() {
                    Ok(Message::Text(t)) => {
                        let value =
                            serde_json::from_str(&t).unwrap_or_else(|_| panic!("not JSON: {t}"));
                        if tx.send(Some(value)).is_err() {
                            return;
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => {
                        let _ = tx.send(None);
                        return;
                    }
                    Ok(_) => {}
                }
            });
            Json { writer, inbox }
        }

        /// Joins `room` on `chat`, since `from` (offset, epoch) if given.
        fn join(addr: SocketAddr, room: &str, from: Option<&(String, String)>) -> Json {
            let mut url = format!("ws://{addr}/ws?room={room}");
            if let Some((offset, epoch)) = from {
                url.push_str(&format!("&since={offset}&epoch={epoch}"));
            }
            Json::connect(&url)
        }

        fn next(&self) -> Value {
            match self.inbox.recv_timeout(WAIT) {
                Ok(Some(value)) => value,
                other => panic!("no message within {WAIT:?}: {other:?}"),
            }
        }

        /// The next message of type `kind`, skipping broadcasts.
        fn expect(&self, kind: &str) -> Value {
            loop {
                let value = self.next();
                if value["type"] == "broadcast" {
                    continue;
                }
                assert_eq!(value["type"], kind, "{value}");
                return value;
            }
        }

        fn quiet_for(&self, wait: Duration) -> bool {
            self.inbox.recv_timeout(wait).is_err()
        }

        /// Closes and waits until the connection is gone.
        fn leave(self) {
            let _ = self.writer.close(rfc6455::CloseCode::NORMAL, "bye");
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline {
                if let Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) =
                    self.inbox.recv_timeout(Duration::from_millis(50))
                {
                    return;
                }
            }
        }
    }

    fn field(value: &Value, name: &str) -> String {
        value[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {value}"))
            .to_owned()
    }

    /// An offset's sequence number.
    fn seq(offset: &str) -> u64 {
        offset.parse::<rfc6455::hub::Offset>().unwrap().seq()
    }

    /// `/receive` into `room` on `addr`: the status and the body.
    fn post(addr: SocketAddr, room: &str, msg: &str, id: &str) -> (u16, String) {
        let response = raw_exchange(
            addr,
            format!("POST /receive?room={room}&msg={msg}&id={id} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status(&response), body)
    }

    /// Redis and two chat instances with history linked through it (`b`
    /// with `extra` arguments); Redis keeps its data in a directory of its
    /// own, across a restart.
    fn history_chats(history: &str, b_extra: &[&str]) -> Option<(Redis, PathBuf, Chat, Chat)> {
        history_chats_with(history, &[], b_extra)
    }

    fn history_chats_with(
        history: &str,
        a_extra: &[&str],
        b_extra: &[&str],
    ) -> Option<(Redis, PathBuf, Chat, Chat)> {
        let components = components()?;
        let port = free_port();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("redis-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        let redis = Redis::start_persistent(components, port, &dir);
        let mut extra = vec!["--history", history];
        extra.extend_from_slice(a_extra);
        let a = linked_chat("a", &redis, &extra);
        let mut extra = vec!["--history", history];
        extra.extend_from_slice(a_extra);
        extra.extend_from_slice(b_extra);
        let b = linked_chat("b", &redis, &extra);
        Some((redis, dir, a, b))
    }

    /// Reads `count` messages in a row, each the next in the room's order
    /// after `from` (in `epoch`), with the texts `texts` gives; returns the
    /// last offset.
    fn read_run(
        client: &Json,
        from: &str,
        epoch: &str,
        texts: impl IntoIterator<Item = String>,
    ) -> String {
        let mut last = from.to_owned();
        for text in texts {
            let message = client.expect("message");
            let offset = field(&message, "offset");
            assert_eq!(
                seq(&offset),
                seq(&last) + 1,
                "a gap or a repeat after {last}: {message}"
            );
            assert_eq!(field(&message, "epoch"), epoch);
            assert_eq!(field(&message, "text"), text, "{message}");
            last = offset;
        }
        last
    }

    fn away_while_500_are_published_then_back_on_the_other_instance(b_extra: &[&str]) {
        let Some((_redis, _dir, a, b)) = history_chats("1000", b_extra) else {
            return;
        };
        let client = Json::join(a.addr, "lobby", None);
        let joined = client.expect("joined");
        let (epoch, start) = (field(&joined, "epoch"), field(&joined, "offset"));
        assert_eq!(post(b.addr, "lobby", "first", "f").0, 200);
        let last = read_run(&client, &start, &epoch, ["first".to_owned()]);
        client.leave();
        // 500 while it is away, alternately through both instances.
        for i in 0..500 {
            let via = if i % 2 == 0 { a.addr } else { b.addr };
            let (code, body) = post(via, "lobby", &format!("m{i}"), &format!("id{i}"));
            assert_eq!(code, 200, "{body}");
        }
        // Back, on the other instance, from where it was.
        let back = Json::join(b.addr, "lobby", Some(&(last.clone(), epoch.clone())));
        let recovery = back.expect("recovery");
        assert_eq!(recovery["recovered"], true, "{recovery}");
        assert_eq!(recovery["missed"], 500, "{recovery}");
        let end = read_run(&back, &last, &epoch, (0..500).map(|i| format!("m{i}")));
        assert_eq!(
            field(&recovery, "offset"),
            end,
            "the report says where it ends"
        );
        // Then the live ones.
        assert_eq!(post(a.addr, "lobby", "live", "l").0, 200);
        read_run(&back, &end, &epoch, ["live".to_owned()]);
        assert!(counter(&health(&b).1, "recovered") >= 1);
    }

    #[test]
    fn away_while_500_are_published_through_both_instances_then_back_on_the_other_gets_exactly_those(
    ) {
        away_while_500_are_published_then_back_on_the_other_instance(&[]);
    }

    #[cfg(feature = "mio")]
    #[test]
    fn away_while_500_are_published_then_back_on_a_poll_engine_instance() {
        away_while_500_are_published_then_back_on_the_other_instance(&["--engine", "poll"]);
    }

    fn reconnecting_again_and_again_while_messages_flow(b_extra: &[&str]) {
        let Some((_redis, _dir, a, b)) = history_chats("10000", b_extra) else {
            return;
        };
        let (addrs, total) = ([a.addr, b.addr], 600);
        let mut client = Json::join(a.addr, "feed", None);
        let joined = client.expect("joined");
        let (epoch, mut last) = (field(&joined, "epoch"), field(&joined, "offset"));
        let publisher = thread::spawn(move || {
            for i in 0..total {
                let (code, body) = post(addrs[i % 2], "feed", &format!("n{i}"), &format!("p{i}"));
                assert_eq!(code, 200, "{body}");
            }
        });
        let mut heard = 0;
        let mut hops = 0;
        while heard < total {
            last = read_run(&client, &last, &epoch, [format!("n{heard}")]);
            heard += 1;
            if heard % 75 == 0 {
                // Away, and back through the other instance, while the
                // publisher goes on.
                client.leave();
                hops += 1;
                client = Json::join(
                    addrs[hops % 2],
                    "feed",
                    Some(&(last.clone(), epoch.clone())),
                );
                let recovery = client.expect("recovery");
                assert_eq!(recovery["recovered"], true, "{recovery}");
            }
        }
        publisher.join().unwrap();
        assert!(
            client.quiet_for(Duration::from_millis(200)),
            "more than was published"
        );
    }

    #[test]
    fn reconnecting_again_and_again_while_messages_flow_through_both_instances_misses_none_repeats_none(
    ) {
        reconnecting_again_and_again_while_messages_flow(&[]);
    }

    #[cfg(feature = "mio")]
    #[test]
    fn reconnecting_again_and_again_while_messages_flow_with_a_poll_engine_instance() {
        reconnecting_again_and_again_while_messages_flow(&["--engine", "poll"]);
    }

    #[test]
    fn more_missed_than_the_history_holds_is_not_recovered_and_missed_counts_what_follows() {
        let Some((_redis, _dir, a, b)) = history_chats("50", &[]) else {
            return;
        };
        let client = Json::join(a.addr, "r", None);
        let joined = client.expect("joined");
        let (epoch, last) = (field(&joined, "epoch"), field(&joined, "offset"));
        client.leave();
        for i in 0..400 {
            assert_eq!(post(a.addr, "r", &format!("x{i}"), &format!("x{i}")).0, 200);
        }
        let back = Json::join(b.addr, "r", Some(&(last, epoch.clone())));
        let recovery = back.expect("recovery");
        assert_eq!(recovery["recovered"], false, "{recovery}");
        // At least 50 kept (Redis trims whole nodes: perhaps a few more).
        let missed = recovery["missed"].as_u64().unwrap() as usize;
        assert!((50..400).contains(&missed), "{recovery}");
        let mut previous = None;
        for _ in 0..missed {
            let message = back.expect("message");
            let n = seq(&field(&message, "offset"));
            assert!(previous.is_none_or(|p| n == p + 1), "{message}");
            previous = Some(n);
        }
        assert_eq!(previous, Some(400), "what is left ends with the last");
        // Nothing but live ones after the `missed`.
        assert_eq!(post(a.addr, "r", "after", "after").0, 200);
        assert_eq!(field(&back.expect("message"), "text"), "after");
        // Another epoch: no history, only live messages.
        let other = Json::join(b.addr, "r", Some(&("1-1".into(), "elsewhere".into())));
        let recovery = other.expect("recovery");
        assert_eq!(
            (recovery["recovered"].clone(), recovery["missed"].clone()),
            (false.into(), 0.into())
        );
        assert_eq!(field(&recovery, "epoch"), epoch);
        assert_eq!(post(b.addr, "r", "only", "only").0, 200);
        assert_eq!(field(&other.expect("message"), "text"), "only");
        assert!(counter(&health(&b).1, "unrecoverable") >= 2);
    }

    #[test]
    fn redis_stopped_and_restarted_mid_traffic_loses_no_accepted_message_and_delivers_no_refused_one(
    ) {
        let Some((redis, dir, a, b)) = history_chats("10000", &[]) else {
            return;
        };
        let listener = Json::join(b.addr, "log", None);
        let joined = listener.expect("joined");
        let (epoch, start) = (field(&joined, "epoch"), field(&joined, "offset"));
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        let mut unknown = Vec::new();
        let mut tally = |i: usize, code: u16, body: &str| match code {
            200 => accepted.push(i),
            503 => refused.push(i),
            504 => unknown.push(i),
            other => panic!("/receive answered {other}: {body}"),
        };
        for i in 0..100 {
            let (code, body) = post(a.addr, "log", &format!("t{i}"), &format!("t{i}"));
            tally(i, code, &body);
        }
        // Stopped by its pid, mid traffic, and started again on its data.
        let port = redis.stop();
        for i in 100..150 {
            let (code, body) = post(a.addr, "log", &format!("t{i}"), &format!("t{i}"));
            tally(i, code, &body);
        }
        let redis = Redis::start_persistent(components().expect("found above"), port, &dir);
        wait_health(&a, 200);
        wait_health(&b, 200);
        for i in 150..250 {
            let (code, body) = post(a.addr, "log", &format!("t{i}"), &format!("t{i}"));
            tally(i, code, &body);
        }
        // A publisher that heard nothing for sure retries with the same id;
        // one retried after its acceptance is taken once.
        for &i in unknown.clone().iter().chain(accepted.first()) {
            let (code, body) = post(b.addr, "log", &format!("t{i}"), &format!("t{i}"));
            assert_eq!(code, 200, "retry of t{i}: {body}");
        }
        assert!(
            refused.len() >= 40,
            "Redis was down for 50 of them: {refused:?}"
        );
        assert!(accepted.len() >= 200, "{accepted:?}");
        // The client through the other instance gets every accepted one, in
        // the order they were accepted, and each retried unknown one (where
        // it landed: at its first try, or at its retry), each once; no
        // refused one.
        let total = accepted.len() + unknown.len();
        let mut heard = Vec::new();
        let mut last = start;
        while heard.len() < total {
            let message = listener.expect("message");
            let offset = field(&message, "offset");
            assert_eq!(seq(&offset), seq(&last) + 1, "{message}");
            assert_eq!(
                field(&message, "epoch"),
                epoch,
                "the history survived the restart"
            );
            last = offset;
            let text = field(&message, "text");
            heard.push(text[1..].parse::<usize>().unwrap());
        }
        let in_order: Vec<usize> = heard
            .iter()
            .copied()
            .filter(|i| accepted.contains(i))
            .collect();
        assert_eq!(
            in_order, accepted,
            "an accepted message lost, repeated or out of order"
        );
        let mut all = heard.clone();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), total, "a repeat: {heard:?}");
        assert!(
            heard.iter().all(|i| !refused.contains(i)),
            "a refused message was delivered"
        );
        assert!(
            listener.quiet_for(Duration::from_millis(300)),
            "a refused or repeated message arrived"
        );
        let (_, body) = health(&a);
        eprintln!("a /health at the end:\n{body}");
        assert!(counter(&body, "refused") >= 40, "{body}");
        drop(redis);
    }

    #[test]
    fn an_instance_killed_with_sigkill_its_client_resumes_through_nginx_on_the_other_with_no_gap() {
        let Some((_redis, _dir, a, b)) = history_chats("1000", &[]) else {
            return;
        };
        let port = free_port();
        let _nginx = start_nginx(
            components().expect("found above"),
            &deploy_config(port, a.addr, b.addr),
            &[port],
        );
        let front: SocketAddr = ([127, 0, 0, 1], port).into();
        let client = Json::join(front, "lobby", None);
        let joined = client.expect("joined");
        let (epoch, start) = (field(&joined, "epoch"), field(&joined, "offset"));
        let on = wait_for("the client to join an instance", || {
            match (
                counter(&health(&a).1, "clients"),
                counter(&health(&b).1, "clients"),
            ) {
                (1, 0) => Some(true),
                (0, 1) => Some(false),
                _ => None,
            }
        })
        .expect("the client is on no instance");
        let (mut victim, survivor) = if on { (a, b) } else { (b, a) };
        assert_eq!(post(survivor.addr, "lobby", "before", "before").0, 200);
        let last = read_run(&client, &start, &epoch, ["before".to_owned()]);
        // No goodbye: the process is gone at once.
        victim.proc.signal("KILL");
        victim.proc.wait_exit();
        for i in 0..20 {
            assert_eq!(
                post(
                    survivor.addr,
                    "lobby",
                    &format!("away{i}"),
                    &format!("away{i}")
                )
                .0,
                200
            );
        }
        // The client notices its connection is gone, and comes back
        // through nginx, which can only pick the survivor.
        let deadline = Instant::now() + WAIT;
        while client.inbox.recv_timeout(Duration::from_millis(100)) != Ok(None) {
            assert!(
                Instant::now() < deadline,
                "the dead instance's connection never ended"
            );
        }
        let back = Json::join(front, "lobby", Some(&(last.clone(), epoch.clone())));
        let recovery = back.expect("recovery");
        assert_eq!(
            (recovery["recovered"].clone(), recovery["missed"].clone()),
            (true.into(), 20.into())
        );
        read_run(&back, &last, &epoch, (0..20).map(|i| format!("away{i}")));
    }

    /// Two hubs in this process over one Redis, with history: whichever
    /// hub publishes, both deliver the same messages in the same order.
    #[test]
    fn hubs_over_redis_streams_deliver_one_order_to_every_instance() {
        let Some(components) = components() else {
            return;
        };
        let redis = Redis::start(components, free_port());
        let history = rfc6455::hub::HubConfig::default()
            .history(Some(rfc6455::hub::HistoryConfig::new(10_000)));
        let hubs: Vec<TestHub> = (0..2)
            .map(|_| {
                TestHub::with_config(history.clone())
                    .with_relay(relay(&redis, RedisConfig::default()))
            })
            .collect();
        // A member on each, as a channel.
        struct Tap(Mutex<mpsc::Sender<String>>);
        impl rfc6455::hub::Sink for Tap {
            fn offer(&self, m: &Arc<Message>) -> Result<(), rfc6455::hub::Refused> {
                let Message::Text(t) = &**m else {
                    return Ok(());
                };
                let _ = self.0.lock().unwrap().send(t.clone());
                Ok(())
            }
        }
        let taps: Vec<_> = hubs
            .iter()
            .map(|hub| {
                let (tx, rx) = mpsc::channel();
                (hub.join_sink(Some("one"), Tap(Mutex::new(tx))), rx)
            })
            .collect();
        // Both positioned (the reader does it in the background): a sync
        // message reaches both taps.
        let synced = wait_for("both hubs to follow the room", || {
            let outcome = hubs[0].publish_wait("one", Message::text("sync"), None, WAIT);
            assert!(
                matches!(outcome, rfc6455::hub::Outcome::Accepted { .. }),
                "{outcome:?}"
            );
            let heard = |rx: &Receiver<String>| rx.recv_timeout(Duration::from_millis(200)).is_ok();
            (heard(&taps[0].1) & heard(&taps[1].1)).then_some(())
        });
        assert!(synced.is_some());
        let senders: Vec<_> = hubs
            .iter()
            .enumerate()
            .map(|(n, hub)| {
                let hub = hub.clone();
                thread::spawn(move || {
                    for i in 0..300 {
                        hub.publish("one", Message::text(format!("{n}:{i}")), None, drop);
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        let heard: Vec<Vec<String>> = taps
            .iter()
            .map(|(_, rx)| {
                let mut all = Vec::new();
                while all.len() < 600 {
                    let text = rx.recv_timeout(WAIT).expect("all 600");
                    if text != "sync" {
                        all.push(text);
                    }
                }
                all
            })
            .collect();
        assert_eq!(heard[0].len(), 600);
        assert_eq!(heard[0], heard[1], "the two instances saw different orders");
        // Each sender's messages in the order it sent them.
        for n in 0..2 {
            let mine: Vec<&String> = heard[0]
                .iter()
                .filter(|t| t.starts_with(&format!("{n}:")))
                .collect();
            let want: Vec<String> = (0..300).map(|i| format!("{n}:{i}")).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>());
        }
        drop(taps);
    }

    /// The stream deleted under a running hub: a new epoch, which a
    /// returning member learns as "not recovered", and the members still
    /// connected get the new epoch's messages.
    #[test]
    fn a_history_deleted_from_redis_is_a_new_epoch() {
        let Some(components) = components() else {
            return;
        };
        let redis = Redis::start(components, free_port());
        let history =
            rfc6455::hub::HubConfig::default().history(Some(rfc6455::hub::HistoryConfig::new(100)));
        let linked = relay(&redis, RedisConfig::default());
        let hub = TestHub::with_config(history).with_relay(linked.clone());
        // A member that stays connected across the reset, as a channel of
        // (text, epoch).
        struct Tap(Mutex<mpsc::Sender<String>>);
        impl rfc6455::hub::Sink for Tap {
            fn offer(&self, m: &Arc<Message>) -> Result<(), rfc6455::hub::Refused> {
                if let Message::Text(t) = &**m {
                    let _ = self.0.lock().unwrap().send(t.clone());
                }
                Ok(())
            }
        }
        struct Tagged;
        impl rfc6455::hub::Envelope for Tagged {
            fn entry(&self, entry: &rfc6455::hub::Entry) -> Message {
                let Message::Text(t) = &**entry.message() else {
                    unreachable!()
                };
                Message::Text(format!("{t} {}", entry.epoch()))
            }
            fn joined(&self, _: &str, _: &rfc6455::hub::Joined) -> Option<Message> {
                None
            }
        }
        let hub = hub.with_envelope(Tagged);
        let (tx, heard) = mpsc::channel();
        let _member = hub.join_sink(Some("gone"), Tap(Mutex::new(tx)));
        let accepted = |text: &str| match hub.publish_wait("gone", Message::text(text), None, WAIT)
        {
            rfc6455::hub::Outcome::Accepted { offset, epoch, .. } => (offset, epoch),
            other => panic!("{other:?}"),
        };
        // Until the member is positioned (in the background), "before"
        // may not reach it: say it until it does.
        let old = wait_for("the member to hear", || {
            let (_, epoch) = accepted("before");
            let heard = heard.recv_timeout(Duration::from_millis(200)).ok()?;
            (heard == format!("before {epoch}")).then_some(epoch)
        })
        .expect("never heard");
        let reply = redis.ask("DEL rfc6455:log:{gone}").unwrap();
        assert_eq!(reply, ":1\r\n");
        let (again, new) = accepted("after");
        assert_ne!(old, new, "the same epoch after the stream was deleted");
        assert_eq!(again.seq(), 1);
        // The connected member gets the new epoch's messages: the reader
        // saw the reset and read the new stream from its start.
        let next = loop {
            let text = heard
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("the new epoch's message: {e:?}; {:?}", linked.stats()));
            if !text.starts_with("before ") {
                break text;
            }
        };
        assert_eq!(next, format!("after {new}"));
        assert_eq!(linked.stats().resets, 1, "{:?}", linked.stats());
    }

    #[test]
    fn chromium_tab_that_loses_its_instance_reconnects_and_shows_what_was_sent_while_away() {
        if components().is_none() {
            return;
        }
        let (node_dir, chromium) = match browser() {
            Ok(found) => found,
            Err(why) => {
                eprintln!("SKIPPED: this test needs chromium and playwright-core: {why}");
                return;
            }
        };
        let port = free_port();
        let origin = format!("http://127.0.0.1:{port}");
        let Some((_redis, _dir, a, b)) =
            history_chats_with("1000", &["--allow-origin", &origin], &[])
        else {
            return;
        };
        let _nginx = start_nginx(
            components().expect("found above"),
            &deploy_config(port, a.addr, b.addr),
            &[port],
        );
        let mut command = Command::new("node");
        command
            .arg(
                common::repo()
                    .join(".ci")
                    .join("peers")
                    .join("browser_recovery.js"),
            )
            .arg(format!("{origin}/?room=lobby"))
            .env("NODE_PATH", node_dir.join("node_modules"))
            .env("RFC6455_CHROMIUM", &chromium)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut node = Proc::spawn(&mut command, "browser");
        let stdout = node.child.stdout.take().unwrap();
        let (tx, said) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let hear = |what: &str| {
            let line = said.recv_timeout(Duration::from_secs(90));
            assert_eq!(
                line.as_deref(),
                Ok(what),
                "the browser script said something else"
            );
        };
        hear("browser_recovery: open");
        assert_eq!(post(a.addr, "lobby", "before", "before").0, 200);
        hear("browser_recovery: heard before");
        let on_a = match (
            counter(&health(&a).1, "clients"),
            counter(&health(&b).1, "clients"),
        ) {
            (1, 0) => true,
            (0, 1) => false,
            other => panic!("the tab is on no single instance: {other:?}"),
        };
        let (mut victim, survivor) = if on_a { (a, b) } else { (b, a) };
        victim.proc.signal("KILL");
        victim.proc.wait_exit();
        for i in 0..10 {
            let (code, body) = post(
                survivor.addr,
                "lobby",
                &format!("away+{i}"),
                &format!("away{i}"),
            );
            assert_eq!(code, 200, "{body}");
        }
        hear("browser_recovery: ok");
        assert!(node.wait_exit().success());
        assert!(counter(&health(&survivor).1, "recovered") >= 1);
    }
}
