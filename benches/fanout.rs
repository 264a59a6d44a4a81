//! Fan-out benchmark: one broadcast to N connected clients, three ways, in
//! the same run and interleaved round by round:
//!
//! - **one instance**: our `Server` and `Hub` in one process, no Redis;
//! - **two instances**: two such processes joined by `RedisRelay` through a
//!   real `redis-server`, the clients split between them, the speaker on the
//!   first (so half the clients hear the broadcast through Redis);
//! - **Python websockets**: `websockets.broadcast()` on its asyncio server,
//!   written as its docs show (`.ci/peers/py_broadcast_server.py`);
//! - the first two again **with history** (every message of the room kept
//!   and given an offset: in memory, or in Redis Streams, where every
//!   message comes back to each instance through the stream before its
//!   members get it).
//!
//! Then the time a client that was away takes to recover 10,000 missed
//! messages, one instance (history in memory) and across Redis (published
//! through one instance, recovered through the other).
//!
//! ```text
//! cargo bench --features redis --bench fanout
//! FANOUT_N=1000 FANOUT_ROUNDS=10 cargo bench --features redis --bench fanout   # shorter
//! ```
//!
//! Each round, a speaker client sends one text message (32 bytes); the
//! server broadcasts it to everyone. The clients are raw sockets read by a
//! few threads (the same client for every server), and a round ends when
//! every client has read the message: that time, from the speaker's write,
//! is the **fan-out time** (p50 and p99 over the rounds). Each round also
//! has a **burst** of 10 broadcasts back to back; clients × 10 / its time
//! is the **deliveries per second**. The servers' CPU time (user + system,
//! from `/proc`, Redis's included for two instances) over all rounds,
//! divided by the messages delivered, is the **server CPU per delivery**,
//! for the single broadcasts and for the bursts: the figure that other
//! load on a shared machine moves least.
//!
//! Servers run as child processes (this binary, re-run with
//! `FANOUT_ROLE=instance`, and Python), so a process's thread limit is not
//! shared with the clients. `redis-server` comes from `.ci/redis.sh`, Python
//! websockets from `.ci/venv.sh` (or `$RFC6455_PYTHON`); without Python
//! that column is left out, saying so.
//!
//! Environment: `FANOUT_N` (default `1000,5000`), `FANOUT_ROUNDS` (default
//! 20), `FANOUT_READERS` (client reader threads, default 4),
//! `FANOUT_RECOVERIES` (default 5), `FANOUT_PYTHON=0` (leave Python out),
//! `FANOUT_BEFORE`
//! (the path of this bench's binary built from another commit: its one
//! instance joins the run, to compare a change with what it replaced).
//! Results: a table printed and written to `target/fanout-bench.md`.

use rfc6455::hub::redis::RedisRelay;
use rfc6455::hub::{Entry, Envelope, HistoryConfig, HubConfig, Joined, Since};
use rfc6455::{Hub, Message, Server, ServerConfig, Stream};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

/// Broadcast payload size (it carries the round number).
const PAYLOAD: usize = 32;
/// Broadcasts in one burst.
const BURST: usize = 10;
/// A read that takes longer than this means a lost message: fail loudly.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// A server instance (this binary with FANOUT_ROLE=instance)

/// Serves until stdin closes: every text message a client sends is
/// broadcast to every client (and, with `FANOUT_REDIS`, to the other
/// instances).
fn instance() {
    // With FANOUT_HISTORY, every room keeps history (in memory, or in Redis
    // Streams with FANOUT_REDIS); members get messages as published, so
    // the clients read the same frames either way.
    let history = std::env::var_os("FANOUT_HISTORY").map(|_| HistoryConfig::new(1_000_000));
    let mut hub: Hub<Stream> =
        Hub::with_config(HubConfig::default().history(history)).with_envelope(Report);
    if let Ok(url) = std::env::var("FANOUT_REDIS") {
        let relay = RedisRelay::open(&url).expect("redis url");
        assert!(
            relay.wait_connected(Duration::from_secs(20)),
            "no Redis link"
        );
        hub = hub.with_relay(relay);
    }
    let room = hub.clone();
    let server = Server::bind("127.0.0.1:0", ServerConfig::default().keepalive(None))
        .expect("bind")
        .spawn(move |ws, request| {
            // `/?room=R&since=O&epoch=E`; the fan-out's clients are all in
            // room `all`.
            let param = |name: &str| {
                let query = request.target.split_once('?')?.1;
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
            };
            let name = param("room").unwrap_or_else(|| "all".into());
            let since = param("since").map(|o| Since::new(&param("epoch").unwrap_or_default(), &o));
            let (mut reader, writer) = ws.split()?;
            let member = room.join(writer);
            member.join(&name, since);
            loop {
                if let Message::Text(text) = reader.read()? {
                    room.broadcast_to(&name, Message::Text(text));
                }
            }
        })
        .expect("serve");
    println!("listening on {}", server.local_addr());
    io::stdout().flush().unwrap();
    let _ = io::stdin().read_to_end(&mut Vec::new());
    let _ = server.shutdown();
    drop(hub);
}

/// Messages as published; a member coming back with `since` first gets
/// `recovery EPOCH MISSED` (a fresh join gets nothing, so that the fan-out's
/// clients read the same frames with history and without).
struct Report;

impl Envelope for Report {
    fn entry(&self, entry: &Entry) -> Message {
        Message::clone(entry.message())
    }

    fn joined(&self, _: &str, joined: &Joined) -> Option<Message> {
        let recovery = joined.recovery?;
        Some(Message::Text(format!(
            "recovery {} {}",
            joined.epoch, recovery.missed
        )))
    }
}

/// A child server process, stopped (stdin closed, then killed) on drop.
struct Proc {
    child: Child,
    _stdin: ChildStdin,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` and reads `listening on ADDR` from its stdout.
fn start(mut command: Command) -> Proc {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{command:?} said {line:?}"));
    let stdin = child.stdin.take().unwrap();
    Proc {
        child,
        _stdin: stdin,
        addr,
    }
}

fn our_instance(redis: Option<&str>) -> Proc {
    instance_from(&std::env::current_exe().unwrap(), redis)
}

/// Our instance with history (in memory, or in Redis Streams).
fn history_instance(redis: Option<&str>) -> Proc {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env("FANOUT_ROLE", "instance")
        .env("FANOUT_HISTORY", "1");
    if let Some(url) = redis {
        command.env("FANOUT_REDIS", url);
    }
    start(command)
}

/// An instance run by `exe`: this bench's binary, or one built from an
/// earlier commit (`FANOUT_BEFORE`).
fn instance_from(exe: &Path, redis: Option<&str>) -> Proc {
    let mut command = Command::new(exe);
    command.env("FANOUT_ROLE", "instance");
    if let Some(url) = redis {
        command.env("FANOUT_REDIS", url);
    }
    start(command)
}

// ---------------------------------------------------------------------------
// Redis and Python

/// `redis-server` on a free loopback port, killed on drop.
struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Redis {
    if !Path::new("/usr/bin/redis-server").is_file() {
        let ok = Command::new("bash")
            .arg(repo().join(".ci/redis.sh"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "fanout: no redis-server and .ci/redis.sh could not install it"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--logfile", ""])
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    Redis(child, port)
}

fn has_websockets(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import websockets.asyncio.server"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python with websockets: `$RFC6455_PYTHON`, or the CI venv (made by
/// `.ci/venv.sh` if missing).
fn python() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("RFC6455_PYTHON") {
        let python = PathBuf::from(python);
        return match has_websockets(&python) {
            true => Ok(python),
            false => Err(format!("{} cannot import websockets", python.display())),
        };
    }
    let venv = repo().join("target/ci-venv/bin/python");
    if !has_websockets(&venv) {
        let _ = Command::new("bash")
            .arg(repo().join(".ci/venv.sh"))
            .status();
    }
    match has_websockets(&venv) {
        true => Ok(venv),
        false => Err(".ci/venv.sh did not give a Python with websockets".into()),
    }
}

fn python_server(python: &Path) -> Proc {
    let mut command = Command::new(python);
    // Quiet: it logs a traceback for every client that leaves without a
    // close frame, as the bench's clients do at the end.
    command
        .arg(repo().join(".ci/peers/py_broadcast_server.py"))
        .stderr(Stdio::null());
    start(command)
}

// ---------------------------------------------------------------------------
// Clients

/// A WebSocket client connection after the opening handshake (raw socket:
/// the same minimal client for every server).
fn connect(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    // One byte at a time: nothing may be read past the end of the head.
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("handshake response");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "handshake refused");
    stream
}

// ---------------------------------------------------------------------------
// Recovery

/// Missed messages a returning client recovers in one measurement.
const MISSED: usize = 10_000;

/// How long a client that missed [`MISSED`] messages takes to get them all
/// back, from its connect to its last message: median of `FANOUT_RECOVERIES`
/// (default 5) runs each, one instance with history in memory, and two
/// instances with history in Redis (published through one, recovered
/// through the other).
fn recovery_times(url: &str) -> String {
    let runs: usize = env_or("FANOUT_RECOVERIES", 5);
    let memory = history_instance(None);
    let (one, two) = (history_instance(Some(url)), history_instance(Some(url)));
    let mut out =
        format!("Recovering {MISSED} missed messages of {PAYLOAD} bytes (median of {runs}):\n\n");
    for (name, speaker, back) in [
        ("one instance, history in memory", memory.addr, memory.addr),
        (
            "two instances, history in Redis Streams",
            one.addr,
            two.addr,
        ),
    ] {
        let mut times: Vec<f64> = (0..runs)
            .map(|run| recover_once(speaker, back, &format!("recover{run}")).as_secs_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        out.push_str(&format!(
            "- {name}: {:.1} ms ({:.0} messages/s; runs {:.1}–{:.1} ms)\n",
            median * 1e3,
            MISSED as f64 / median,
            times[0] * 1e3,
            times[times.len() - 1] * 1e3
        ));
    }
    out
}

fn recover_once(speaker: SocketAddr, back: SocketAddr, room: &str) -> Duration {
    let client = |addr: SocketAddr, query: &str| {
        let (ws, _) =
            rfc6455::connect(&format!("ws://{addr}/?room={room}{query}")).expect("connect");
        ws.get_ref().set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        ws
    };
    let text = |ws: &mut rfc6455::ClientWebSocket| loop {
        match ws.read().expect("read") {
            Message::Text(t) => return t,
            _ => continue,
        }
    };
    // The epoch, from a join with none: `recovery EPOCH 0`.
    let mut probe = client(back, "&since=0-0&epoch=none");
    let report = text(&mut probe);
    let epoch = report
        .split(' ')
        .nth(1)
        .expect("a recovery report")
        .to_owned();
    drop(probe);
    // Published while it is away, through the speaker (who hears its own,
    // in windows, so that it never counts as slow).
    // Positioned first (its report says so): what it sends after that is
    // after its place in the room, and comes back to it.
    let mut speaker = client(speaker, "&since=0-0&epoch=none");
    text(&mut speaker);
    for window in 0..MISSED / 100 {
        for i in 0..100 {
            let payload = String::from_utf8(payload(window, i)).unwrap();
            speaker.send(Message::Text(payload)).unwrap();
        }
        for _ in 0..100 {
            text(&mut speaker);
        }
    }
    let start = Instant::now();
    let mut back = client(back, &format!("&since=0-0&epoch={epoch}"));
    let report = text(&mut back);
    assert_eq!(
        report,
        format!("recovery {epoch} {MISSED}"),
        "not all of them in history"
    );
    for _ in 0..MISSED {
        text(&mut back);
    }
    start.elapsed()
}

/// A masked text frame carrying `payload` (clients must mask, RFC 6455 §5.3).
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let key = [0x5a, 0x17, 0xc3, 0x08];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

fn payload(round: usize, index: usize) -> Vec<u8> {
    let mut text = format!("round {round} message {index}").into_bytes();
    text.resize(PAYLOAD, b'.');
    text
}

/// Work for a reader thread: read these payloads, in order, from each of
/// its connections.
type Job = Vec<Vec<u8>>;

/// Reader threads, each owning a share of the connections; a job returns
/// when each thread has read every payload from all of its connections.
struct Readers {
    jobs: Vec<Sender<Job>>,
    done: Receiver<io::Result<Instant>>,
}

impl Readers {
    fn new(streams: Vec<TcpStream>, threads: usize) -> Readers {
        let (done_tx, done) = mpsc::channel();
        let per = streams.len().div_ceil(threads);
        let mut streams = streams.into_iter();
        let jobs = (0..threads)
            .map(|_| {
                let mut mine: Vec<TcpStream> = streams.by_ref().take(per).collect();
                let (tx, rx) = mpsc::channel::<Job>();
                let done = done_tx.clone();
                thread::spawn(move || {
                    for job in rx {
                        let result = mine
                            .iter_mut()
                            .try_for_each(|s| read_payloads(s, &job))
                            .map(|()| Instant::now());
                        if done.send(result).is_err() {
                            break;
                        }
                    }
                });
                tx
            })
            .collect();
        Readers { jobs, done }
    }

    /// Hands out `job` and waits for every thread: when the last finished.
    fn run(&self, job: &Job) -> Instant {
        for tx in &self.jobs {
            tx.send(job.clone()).expect("reader thread");
        }
        (0..self.jobs.len())
            .map(|_| {
                self.done
                    .recv()
                    .expect("reader thread")
                    .expect("a client did not get a broadcast")
            })
            .max()
            .unwrap()
    }
}

/// Reads one unmasked text frame per payload and checks it. Each `read`
/// takes whatever has arrived (up to the last expected byte, never past it),
/// so a server that sends several frames at once is read with one system
/// call, as any client with a read buffer would: the load generator must
/// not cost more per message than the servers under test.
fn read_payloads(stream: &mut TcpStream, payloads: &[Vec<u8>]) -> io::Result<()> {
    const FRAME: usize = 2 + PAYLOAD;
    let mut wire = vec![0u8; FRAME * payloads.len()];
    let mut filled = 0;
    while filled < wire.len() {
        match stream.read(&mut wire[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    for (frame, expected) in wire.chunks(FRAME).zip(payloads) {
        if frame[..2] != [0x81, PAYLOAD as u8] || frame[2..] != expected[..] {
            return Err(io::Error::other(format!("unexpected frame {frame:?}")));
        }
    }
    Ok(())
}

/// One server setup under test, with its clients connected.
struct Setup {
    name: &'static str,
    speaker: TcpStream,
    readers: Readers,
    _servers: Vec<Proc>,
    fanout_us: Vec<f64>,
    deliveries: Vec<f64>,
    clients: usize,
    /// The processes that serve this setup (the servers, and Redis for
    /// two instances), whose CPU time the rounds are charged.
    cpu_pids: Vec<u32>,
    /// Their CPU time (user + system) during the rounds' single broadcasts
    /// and during their bursts, in clock ticks.
    cpu_ticks: [u64; 2],
}

/// User + system CPU time of process `pid` (every thread), in clock ticks;
/// 0 where `/proc` cannot say (not Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // After the command name (in parentheses, which may hold spaces):
    // state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// Clock ticks per second, for [`cpu_ticks`].
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

impl Setup {
    fn new(name: &'static str, servers: Vec<Proc>, clients: usize, threads: usize) -> Setup {
        let addrs: Vec<SocketAddr> = servers.iter().map(|p| p.addr).collect();
        let streams = (0..clients)
            .map(|i| connect(addrs[i * addrs.len() / clients]))
            .collect();
        let speaker = connect(addrs[0]);
        let cpu_pids = servers.iter().map(|p| p.child.id()).collect();
        // The speaker hears its broadcasts too; drain them.
        let mut drain = speaker.try_clone().unwrap();
        drain.set_read_timeout(None).unwrap();
        thread::spawn(move || io::copy(&mut drain, &mut io::sink()));
        Setup {
            name,
            speaker,
            readers: Readers::new(streams, threads),
            _servers: servers,
            fanout_us: Vec::new(),
            deliveries: Vec::new(),
            clients,
            cpu_pids,
            cpu_ticks: [0; 2],
        }
    }

    /// Closes its clients and stops its servers, keeping the figures.
    fn finish(&mut self) {
        self.readers.jobs.clear();
        self._servers.clear();
        let _ = self.speaker.shutdown(std::net::Shutdown::Both);
    }

    fn cpu_now(&self) -> u64 {
        self.cpu_pids.iter().map(|&pid| cpu_ticks(pid)).sum()
    }

    /// Sends `count` broadcasts at once; returns the time until every
    /// client had them all.
    fn broadcast(&mut self, round: usize, count: usize) -> Duration {
        let payloads: Job = (0..count).map(|i| payload(round, i)).collect();
        let wire: Vec<u8> = payloads.iter().flat_map(|p| client_frame(p)).collect();
        let start = Instant::now();
        self.speaker.write_all(&wire).unwrap();
        self.readers.run(&payloads) - start
    }

    fn round(&mut self, round: usize) {
        let cpu_start = self.cpu_now();
        let one = self.broadcast(round * 2, 1);
        self.fanout_us.push(one.as_secs_f64() * 1e6);
        let cpu_one = self.cpu_now();
        let burst = self.broadcast(round * 2 + 1, BURST);
        self.deliveries
            .push((self.clients * BURST) as f64 / burst.as_secs_f64());
        self.cpu_ticks[0] += cpu_one.saturating_sub(cpu_start);
        self.cpu_ticks[1] += self.cpu_now().saturating_sub(cpu_one);
    }

    /// Server CPU time per message delivered, in microseconds, for the
    /// single broadcasts and for the bursts.
    fn cpu_us_per_delivery(&self, ticks_per_second: f64) -> [f64; 2] {
        let rounds = self.fanout_us.len().max(1) as f64;
        let per = |ticks: u64, messages: usize| {
            ticks as f64 * 1e6 / ticks_per_second / (rounds * (self.clients * messages) as f64)
        };
        [per(self.cpu_ticks[0], 1), per(self.cpu_ticks[1], BURST)]
    }
}

// ---------------------------------------------------------------------------
// Figures

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    if std::env::var("FANOUT_ROLE").as_deref() == Ok("instance") {
        return instance();
    }
    // Ignore `cargo bench`'s own arguments (--bench, filters).
    let sizes: Vec<usize> = std::env::var("FANOUT_N")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let rounds: usize = env_or("FANOUT_ROUNDS", 20);
    let threads: usize = env_or("FANOUT_READERS", 4);
    let redis = start_redis();
    let url = format!("redis://127.0.0.1:{}/", redis.1);
    let python = match std::env::var("FANOUT_PYTHON").as_deref() {
        Ok("0") => None,
        _ => python()
            .map_err(|why| eprintln!("fanout: Python websockets left out: {why}"))
            .ok(),
    };

    let ticks_per_second = clock_ticks_per_second();
    let mut table = String::from(
        "| clients | server | fan-out p50 | fan-out p99 | deliveries/s (median) | \
         server CPU per delivery: one, burst | p50 vs one instance | \
         vs Python: fan-out p50 | vs Python: deliveries/s | vs Python: CPU, one, burst |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut ratios = String::new();
    for &clients in &sizes {
        // What to run, in pairs to compare (with and without history).
        let mut kinds = vec![
            "one instance",
            "one instance, history",
            "two instances + Redis",
            "two instances + Redis, history",
        ];
        if std::env::var_os("FANOUT_BEFORE").is_some() {
            kinds.push("one instance, FANOUT_BEFORE");
        }
        if python.is_some() {
            kinds.push("Python websockets");
        }
        let make = |kind: &'static str| -> Setup {
            let servers = match kind {
                "one instance" => vec![our_instance(None)],
                "one instance, history" => vec![history_instance(None)],
                "two instances + Redis" => vec![our_instance(Some(&url)), our_instance(Some(&url))],
                "two instances + Redis, history" => {
                    vec![history_instance(Some(&url)), history_instance(Some(&url))]
                }
                "one instance, FANOUT_BEFORE" => {
                    let before = std::env::var_os("FANOUT_BEFORE").unwrap_or_default();
                    vec![instance_from(Path::new(&before), None)]
                }
                _ => vec![python_server(python.as_ref().expect("python"))],
            };
            let mut setup = Setup::new(kind, servers, clients, threads);
            if kind.starts_with("two instances") {
                setup.cpu_pids.push(redis.0.id());
            }
            setup
        };
        // The client sockets of one group must fit in this process's file
        // limit (20,000 here): with many clients, the pairs run one after
        // the other, each pair interleaved round by round.
        let per_group = match clients * kinds.len() <= 18_000 {
            true => kinds.len(),
            false => 2,
        };
        let mut setups: Vec<Setup> = Vec::new();
        for group in kinds.chunks(per_group) {
            eprintln!("fanout: {clients} clients: connecting {group:?}");
            let mut running: Vec<Setup> = group.iter().map(|&kind| make(kind)).collect();
            // Every client must be in its hub before the first round
            // counts: a warm-up broadcast reaches all of them only then
            // (with history in Redis, once the reader has positioned each).
            thread::sleep(Duration::from_millis(1500));
            for setup in &mut running {
                setup.broadcast(usize::MAX / 2, 1);
            }
            for round in 0..rounds {
                for setup in &mut running {
                    setup.round(round);
                }
            }
            for setup in &mut running {
                setup.finish();
            }
            setups.extend(running);
        }
        let base = percentile(&setups[0].fanout_us, 0.5);
        let python = setups.iter().find(|s| s.name == "Python websockets");
        // (fan-out p50, deliveries/s, CPU per delivery)
        let figures = |setup: &Setup| {
            (
                percentile(&setup.fanout_us, 0.5),
                percentile(&setup.deliveries, 0.5),
                setup.cpu_us_per_delivery(ticks_per_second),
            )
        };
        let python = python.map(figures);
        for setup in &setups {
            let (p50, rate, cpu) = figures(setup);
            let vs_python = match python {
                Some((py_p50, py_rate, py_cpu)) if setup.name != "Python websockets" => {
                    format!(
                        "{:.1}× | **{:.1}×** | {:.1}×, {:.1}×",
                        py_p50 / p50,
                        rate / py_rate,
                        py_cpu[0] / cpu[0],
                        py_cpu[1] / cpu[1],
                    )
                }
                _ => "— | — | —".to_owned(),
            };
            let line = format!(
                "| {clients} | {} | {} | {} | {} | {:.2} µs, {:.2} µs | {:.2}× | {vs_python} |\n",
                setup.name,
                ms(p50),
                ms(percentile(&setup.fanout_us, 0.99)),
                thousands(rate),
                cpu[0],
                cpu[1],
                p50 / base,
            );
            eprint!("{line}");
            table.push_str(&line);
        }
        let rate = |name: &str| {
            let setup = setups.iter().find(|s| s.name == name).expect(name);
            percentile(&setup.deliveries, 0.5)
        };
        let line = format!(
            "\n{clients} clients, deliveries/s with history ÷ without: one instance {:.2}×, \
             two instances + Redis {:.2}×\n\n",
            rate("one instance, history") / rate("one instance"),
            rate("two instances + Redis, history") / rate("two instances + Redis"),
        );
        eprint!("{line}");
        ratios.push_str(&line);
    }
    table.push_str(&ratios);
    let recover = recovery_times(&url);
    eprintln!("{recover}");
    table.push_str(&recover);
    println!("\n{table}");
    let out = repo().join("target").join("fanout-bench.md");
    if std::fs::write(&out, &table).is_ok() {
        println!("(also in {})", out.display());
    }
}
