//! `wsclient`: an interactive WebSocket client. Lines from stdin go out as
//! text messages; received messages are printed to stdout, one per line.
//!
//! ```text
//! wsclient ws://127.0.0.1:9001/
//! printf 'a\nb\n' | wsclient ws://127.0.0.1:9001/
//! ```

use rfc6455::client::WsUrl;
use rfc6455::frame::OpCode;
use rfc6455::handshake::Response;
use rfc6455::protocol::{MessageRef, Piece, Streaming};
use rfc6455::{
    ClientConfig, ClientWebSocket, CloseCode, Error, Keepalive, Message, Stream, WebSocketConfig,
};
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

mod common;
use common::{seconds, DAY};

/// The longest `--linger`: the whole wait at the end of input is capped at
/// 10 s anyway (see `linger`), so a longer quiet period could never pass.
const MAX_LINGER: f64 = 10.0;

const HELP: &str = "\
wsclient: an interactive WebSocket client (RFC 6455).

Sends each line of standard input as a text message and prints each message
received on its own line of standard output, after `< ` when that is a
terminal. Binary messages are printed as `<binary N bytes: HEX…>`.
Connection and close details go to standard error.
At the end of input it sends close 1000, waits for the reply and exits 0.

USAGE:
    wsclient [OPTIONS] ws://HOST[:PORT][/PATH][?QUERY]
    wsclient [OPTIONS] wss://HOST[:PORT][/PATH][?QUERY]    (built with `tls`)

OPTIONS:
    --header 'NAME: VALUE'    add a request header (repeatable)
    --subprotocol NAME        offer a subprotocol (repeatable)
    --ping-interval SECS      ping after this much silence; close if no pong in as
                              long; 0 to 86400 [default: 0, off]
    --connect-timeout SECS    time allowed for the whole connect: TCP and the
                              opening handshake; 0.001 to 86400 [default: 10]
    --linger SECS             at end of input, wait until nothing has arrived for
                              this long before closing; 0 to 10 [default: 0.5]
    --reconnect               when the connection drops or cannot be made, try
                              again with exponential backoff (0.5 s doubling,
                              capped at 30 s, with jitter) until stdin ends
    --send-file PATH          once connected, send the file as one binary message,
                              streamed in 64 KiB fragments (never held in memory)
    --save DIR                write each binary message received to
                              DIR/message-N.bin as it arrives (streamed), instead
                              of printing it
    --ca FILE                 wss://: trust the CA certificates in this PEM file
                              instead of the built-in Mozilla roots
    --insecure                wss://: DO NOT VERIFY the server's certificate.
                              FOR TESTING ONLY: anyone on the path can read and
                              change the connection
    --proxy URL               tunnel through this HTTP proxy with CONNECT:
                              http://[USER:PASSWORD@]HOST[:PORT]
    --no-env-proxy            ignore HTTPS_PROXY / HTTP_PROXY / NO_PROXY (by
                              default wsclient uses them, as curl does)
    --deflate                 offer permessage-deflate compression (RFC 7692);
                              needs a build with `--features deflate`
    -h, --help                print this help

Ctrl-C (SIGINT) or SIGTERM sends close 1001 (going away), waits up to 2 s for
the server's reply and exits 130 (143 for SIGTERM); a second one exits at once.
(Without the default `signals` feature, signals end it at once.)

EXIT STATUS: 0 after a normal close, 1 if the connection failed or closed
abnormally, 2 for bad usage (an unknown option, a bad value, a malformed URL),
128 + N after signal N (130 for Ctrl-C).
";

struct Options {
    url: String,
    config: ClientConfig,
    reconnect: bool,
    linger: Duration,
    send_file: Option<PathBuf>,
    save: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut url = None;
    let mut deflate = false;
    // The proxy environment variables are followed unless --no-env-proxy.
    let mut config = ClientConfig::default().proxy_from_env(true);
    let mut reconnect = false;
    let mut linger = Duration::from_millis(500);
    let mut send_file = None;
    let mut save = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--header" => {
                let v = value("--header")?;
                let (name, val) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--header wants 'NAME: VALUE', got {v:?}"))?;
                config = config.header(name.trim(), val.trim());
            }
            "--subprotocol" => config = config.subprotocol(value("--subprotocol")?),
            "--ping-interval" => {
                let t = seconds("--ping-interval", &value("--ping-interval")?, 0.0..=DAY)?;
                if !t.is_zero() {
                    let ws = WebSocketConfig::default().keepalive(Some(Keepalive {
                        interval: t,
                        timeout: t,
                    }));
                    config = config.websocket(ws).read_timeout(Some(t));
                }
            }
            "--connect-timeout" => {
                // Zero would fail every connect: the socket refuses it.
                let t = seconds(
                    "--connect-timeout",
                    &value("--connect-timeout")?,
                    0.001..=DAY,
                )?;
                config = config.connect_timeout(t);
            }
            "--reconnect" => reconnect = true,
            "--send-file" => send_file = Some(PathBuf::from(value("--send-file")?)),
            "--save" => save = Some(PathBuf::from(value("--save")?)),
            // --- TLS and proxies (issue 12) ---
            "--proxy" => config = config.proxy(value("--proxy")?),
            "--no-env-proxy" => config = config.proxy_from_env(false),
            #[cfg(feature = "tls")]
            "--ca" => {
                let file = value("--ca")?;
                let tls = rfc6455::transport::tls::client_config_with_ca(&file)
                    .map_err(|e| format!("--ca {file}: {e}"))?;
                config = config.tls(tls);
            }
            #[cfg(feature = "tls")]
            "--insecure" => {
                eprintln!("wsclient: --insecure: the server's certificate is NOT verified");
                config = config.tls(rfc6455::transport::tls::insecure_client_config());
            }
            #[cfg(not(feature = "tls"))]
            "--ca" | "--insecure" => {
                return Err(format!(
                    "{arg}: this wsclient was built without the `tls` feature"
                ))
            }
            "--deflate" => deflate = true,
            "--linger" => {
                linger = seconds("--linger", &value("--linger")?, 0.0..=MAX_LINGER)?;
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            positional => {
                if url.replace(positional.to_owned()).is_some() {
                    return Err("more than one URL".into());
                }
            }
        }
    }
    let url = url.ok_or("missing URL (see --help)")?;
    if deflate {
        if !cfg!(feature = "deflate") {
            return Err(
                "--deflate: this build has no compression (build with --features deflate)".into(),
            );
        }
        config = config.deflate(Some(rfc6455::handshake::DeflateConfig::client()));
    }
    // A malformed URL is bad usage, which no retry can fix. `wss://` is well
    // formed but not supported yet: that is a failure to connect (exit 1).
    if let Err(e @ Error::Url(_)) = WsUrl::parse(&url) {
        return Err(e.to_string());
    }
    if let Some(path) = &send_file {
        if !path.is_file() {
            return Err(format!(
                "--send-file: {} is not a readable file",
                path.display()
            ));
        }
    }
    if let Some(dir) = &save {
        if !dir.is_dir() {
            return Err(format!("--save: {} is not a directory", dir.display()));
        }
    }
    Ok(Options {
        url,
        config,
        reconnect,
        linger,
        send_file,
        save,
    })
}

fn describe(message: &MessageRef<'_>) -> Option<String> {
    match message {
        MessageRef::Text(text) => Some((*text).to_owned()),
        MessageRef::Binary(data) => {
            let shown: String = data.iter().take(32).map(|b| format!("{b:02x}")).collect();
            let more = if data.len() > 32 { "…" } else { "" };
            Some(format!("<binary {} bytes: {shown}{more}>", data.len()))
        }
        _ => None,
    }
}

/// What the main loop waits for: a line from stdin, its end, the end of
/// connection number `generation`, or a signal (SIGINT, SIGTERM).
enum Event {
    Line(String),
    StdinEnd,
    Received,
    Closed {
        generation: u64,
        clean: bool,
    },
    // Only signal handlers send it.
    #[cfg_attr(not(feature = "signals"), allow(dead_code))]
    Interrupted(i32),
}

/// Backoff before reconnect attempt `attempt` (0-based): 0.5 s doubling up
/// to 30 s, each scaled by a random factor in [0.5, 1) so that many clients
/// dropped at once do not come back in lockstep.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << attempt.min(6));
    let capped = base.min(Duration::from_secs(30));
    let mut r = [0u8; 2];
    let random = getrandom::fill(&mut r).map_or(0, |()| u16::from_le_bytes(r));
    capped.mul_f64(0.5 + f64::from(random) / f64::from(u16::MAX) / 2.0)
}

/// Opens TCP and runs the opening handshake within `config.connect_timeout`
/// in all. The library bounds the two phases separately (the TCP connect by
/// the connect timeout, the handshake by its own 10 s), so against a server
/// that accepts TCP and never answers, `--connect-timeout 0.5` still waited
/// 10 s, on every `--reconnect` attempt. Name resolution is not bounded: the
/// system resolver offers no timeout.
fn connect(url: &str, config: &ClientConfig) -> rfc6455::Result<(ClientWebSocket, Response)> {
    let deadline = Instant::now() + config.connect_timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let parsed = WsUrl::parse(url)?;
    if parsed.tls || uses_proxy(config) {
        // TLS and CONNECT tunnels are the library's: each phase gets what
        // is left of the connect timeout.
        let config = config
            .clone()
            .connect_timeout(left())
            .handshake_timeout(left());
        return rfc6455::connect_with(url, &config);
    }
    let url = parsed;
    let mut last = None;
    for addr in (url.host.as_str(), url.port).to_socket_addrs()? {
        if left().is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left()) {
            Ok(stream) => {
                let config = config.clone().handshake_timeout(left());
                return rfc6455::client::client_handshake(Stream::from_tcp(stream), &url, &config);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Io(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::TimedOut, "no address answered in time")
    })))
}

/// Whether retrying cannot help (the scheme is not supported, the server's
/// certificate is refused, the proxy URL is malformed; a malformed URL never
/// gets this far).
fn is_permanent(error: &Error) -> bool {
    use rfc6455::transport::TlsErrorKind;
    match error {
        Error::Url(_) | Error::TlsNotSupported => true,
        Error::Tls(e) => !matches!(e.kind, TlsErrorKind::Timeout | TlsErrorKind::Closed),
        Error::Proxy(e) => e.status.is_none() && e.message.starts_with("invalid proxy URL"),
        _ => false,
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wsclient: {e}");
            return ExitCode::from(2);
        }
    };
    let (events, inbox) = mpsc::channel::<Event>();
    // Before the first connect, so that a signal never finds us unprepared.
    let open = Arc::new(AtomicBool::new(false));
    install_signal_handler(events.clone(), Arc::clone(&open));
    let stdin_events = events.clone();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if stdin_events.send(Event::Line(line)).is_err() {
                return;
            }
        }
        let _ = stdin_events.send(Event::StdinEnd);
    });

    // Lines read while disconnected (with --reconnect) wait here, bounded.
    let mut pending = Pending::default();
    // Sent once, on the first connection.
    let mut send_file = options.send_file.clone();
    let mut attempt = 0u32;
    let mut generation = 0u64;
    loop {
        let (ws, response) = match connect(&options.url, &options.config) {
            Ok(ok) => ok,
            Err(e) if options.reconnect && !is_permanent(&e) => {
                let wait = backoff(attempt);
                attempt += 1;
                eprintln!(
                    "wsclient: cannot connect to {}: {e}; retrying in {:.1}s",
                    options.url,
                    wait.as_secs_f64()
                );
                match pending.wait(&inbox, wait) {
                    Waited::TimeUp => continue,
                    Waited::NothingLeft => return ExitCode::FAILURE,
                    Waited::Interrupted(signal) => return signal_exit(signal),
                }
            }
            Err(e) => {
                eprintln!("wsclient: cannot connect to {}: {e}", options.url);
                return ExitCode::FAILURE;
            }
        };
        // From here a signal closes the connection instead of exiting at
        // once; set before "connected" is printed, which a user (or a test)
        // may take as the cue to press Ctrl-C.
        open.store(true, Ordering::Release);
        attempt = 0;
        generation += 1;
        let mut protocol = response
            .headers
            .get("sec-websocket-protocol")
            .map(|p| format!(" (subprotocol {p})"))
            .unwrap_or_default();
        if let Some(e) = response.headers.get("sec-websocket-extensions") {
            protocol.push_str(&format!(" (extensions {e})"));
        }
        eprintln!("wsclient: connected to {}{protocol}", options.url);
        let (reader, writer) = match ws.split() {
            Ok(halves) => halves,
            Err(e) => {
                eprintln!("wsclient: {e}");
                return ExitCode::FAILURE;
            }
        };
        spawn_printer(reader, generation, events.clone(), options.save.clone());
        if let Some(path) = send_file.take() {
            send_file_over(&writer, &path);
        }

        let mut input_ended = pending.stdin_ended;
        while let Some(line) = pending.lines.pop_front() {
            if let Err(e) = writer.send(Message::Text(line)) {
                eprintln!("wsclient: not sent: {e}");
            }
        }
        let connection = Connection {
            writer: &writer,
            inbox: &inbox,
            generation,
        };
        let clean = loop {
            if input_ended {
                // End of input: let replies to the last lines arrive (a peer
                // that gets our close may drop what it has not sent yet),
                // then close and wait (bounded) for the reply.
                let end = match linger(&inbox, generation, options.linger) {
                    Some(end) => end,
                    None => connection.close(CloseCode::NORMAL, Duration::from_secs(10)),
                };
                return match end {
                    End::Closed(clean) => exit(clean),
                    End::Interrupted(signal) => connection.interrupted(signal),
                };
            }
            match inbox.recv() {
                Ok(Event::Line(line)) => {
                    if let Err(e) = writer.send(Message::Text(line.clone())) {
                        if options.reconnect {
                            pending.push(line);
                        } else {
                            eprintln!("wsclient: not sent: {e}");
                        }
                    }
                }
                Ok(Event::Closed {
                    generation: g,
                    clean,
                }) if g == generation => break clean,
                Ok(Event::Interrupted(signal)) => return connection.interrupted(signal),
                Ok(Event::Closed { .. } | Event::Received) => {}
                Ok(Event::StdinEnd) | Err(_) => {
                    pending.stdin_ended = true;
                    input_ended = true;
                }
            }
        };
        open.store(false, Ordering::Release);
        if !options.reconnect || (pending.stdin_ended && pending.lines.is_empty()) {
            return exit(clean);
        }
        let wait = backoff(attempt);
        attempt += 1;
        eprintln!("wsclient: reconnecting in {:.1}s", wait.as_secs_f64());
        match pending.wait(&inbox, wait) {
            Waited::TimeUp => {}
            Waited::NothingLeft => return exit(clean),
            Waited::Interrupted(signal) => return signal_exit(signal),
        }
    }
}

/// Lines read from stdin while there is no connection to send them on.
#[derive(Default)]
struct Pending {
    lines: std::collections::VecDeque<String>,
    stdin_ended: bool,
}

/// How [`Pending::wait`] ended.
enum Waited {
    /// The wait is over: time to try again.
    TimeUp,
    /// Stdin ended and no line is waiting: nothing left to send.
    NothingLeft,
    /// A signal asked us to stop.
    Interrupted(i32),
}

impl Pending {
    /// Lines kept while disconnected; older ones are dropped beyond it.
    const MAX_LINES: usize = 1000;

    fn push(&mut self, line: String) {
        if self.lines.len() == Self::MAX_LINES {
            self.lines.pop_front();
            eprintln!("wsclient: not connected; dropped the oldest unsent line");
        }
        self.lines.push_back(line);
    }

    /// Sleeps for `wait`, keeping the lines that arrive.
    fn wait(&mut self, inbox: &mpsc::Receiver<Event>, wait: Duration) -> Waited {
        let deadline = Instant::now() + wait;
        while !(self.stdin_ended && self.lines.is_empty()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match inbox.recv_timeout(left) {
                Ok(Event::Line(line)) => self.push(line),
                Ok(Event::StdinEnd) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.stdin_ended = true
                }
                Ok(Event::Interrupted(signal)) => return Waited::Interrupted(signal),
                Ok(Event::Closed { .. } | Event::Received) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Waited::TimeUp,
            }
        }
        Waited::NothingLeft
    }
}

/// Sends the file at `path` as one binary message, streamed.
fn send_file_over(writer: &rfc6455::Writer<Stream>, path: &Path) {
    let sent = std::fs::File::open(path)
        .map_err(Error::Io)
        .and_then(|file| writer.send_stream(OpCode::Binary, io::BufReader::new(file), 64 << 10));
    match sent {
        Ok(n) => eprintln!("wsclient: sent {} ({n} bytes)", path.display()),
        Err(e) => eprintln!("wsclient: not sent: {}: {e}", path.display()),
    }
}

/// Where `--save` writes a binary message as it arrives.
struct Saving {
    dir: PathBuf,
    count: u64,
    file: Option<(PathBuf, io::BufWriter<std::fs::File>, u64)>,
    /// A text message arriving in pieces (printed whole at its end).
    text: Vec<u8>,
}

impl Saving {
    fn start(&mut self, opcode: OpCode) -> io::Result<()> {
        self.text.clear();
        if opcode == OpCode::Binary {
            self.count += 1;
            let path = self.dir.join(format!("message-{}.bin", self.count));
            let file = io::BufWriter::new(std::fs::File::create(&path)?);
            self.file = Some((path, file, 0));
        }
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some((_, file, len)) => {
                *len += bytes.len() as u64;
                file.write_all(bytes)
            }
            None => {
                self.text.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Ends the message: the text it was, if it was text.
    fn end(&mut self) -> io::Result<Option<String>> {
        match self.file.take() {
            Some((path, mut file, len)) => {
                file.flush()?;
                eprintln!("wsclient: saved {} ({len} bytes)", path.display());
                Ok(None)
            }
            None => Ok(Some(
                String::from_utf8_lossy(&std::mem::take(&mut self.text)).into_owned(),
            )),
        }
    }
}

/// Prints what arrives on `reader` (or, with `--save`, writes binary
/// messages to files as they arrive) and reports how the connection ended.
fn spawn_printer(
    mut reader: rfc6455::Reader<Stream>,
    generation: u64,
    events: mpsc::Sender<Event>,
    save: Option<PathBuf>,
) {
    std::thread::spawn(move || {
        let stdout = io::stdout();
        // On a terminal, received lines are marked so that they can be told
        // from the typed ones the terminal echoes (as `python -m websockets`
        // does); in a pipe the output stays exactly the messages.
        let mark = if stdout.is_terminal() { "< " } else { "" };
        let print = |line: &str| {
            let mut out = stdout.lock();
            let _ = writeln!(out, "{mark}{line}");
            let _ = out.flush();
        };
        // Saving streams every data message; otherwise they come whole.
        let streaming = if save.is_some() {
            Streaming::Always
        } else {
            Streaming::Never
        };
        let mut saving = save.map(|dir| Saving {
            dir,
            count: 0,
            file: None,
            text: Vec::new(),
        });
        let mut clean = false;
        loop {
            let piece = match reader.read_piece(streaming) {
                Ok(piece) => piece,
                Err(Error::ConnectionClosed) => break,
                Err(e) => {
                    eprintln!("wsclient: {e}");
                    clean = false;
                    break;
                }
            };
            let saved = match (piece, saving.as_mut()) {
                (Piece::Message(MessageRef::Close(frame)), _) => {
                    let code = frame.as_ref().map(|f| f.code);
                    clean = matches!(
                        code,
                        None | Some(CloseCode::NORMAL) | Some(CloseCode::GOING_AWAY)
                    );
                    match frame {
                        Some(f) => eprintln!("wsclient: connection closed: {f}"),
                        None => eprintln!("wsclient: connection closed (no status code)"),
                    }
                    Ok(())
                }
                (Piece::Message(message), _) => {
                    if let Some(line) = describe(&message) {
                        print(&line);
                    }
                    let _ = events.send(Event::Received);
                    Ok(())
                }
                (Piece::Start(opcode), Some(saving)) => saving.start(opcode),
                (Piece::Data(bytes), Some(saving)) => saving.data(bytes),
                (Piece::End, Some(saving)) => saving.end().map(|text| {
                    if let Some(text) = text {
                        print(&text);
                    }
                    let _ = events.send(Event::Received);
                }),
                // Pieces come only when saving.
                (Piece::Start(_) | Piece::Data(_) | Piece::End, None) => Ok(()),
            };
            if let Err(e) = saved {
                eprintln!("wsclient: --save: {e}");
                clean = false;
                break;
            }
        }
        let _ = events.send(Event::Closed { generation, clean });
    });
}

/// How the last phase of a connection ended.
enum End {
    /// The connection ended, cleanly or not.
    Closed(bool),
    /// A signal asked us to stop first.
    Interrupted(i32),
}

/// Waits until nothing has arrived for `quiet` (at most `MAX_LINGER` in all).
/// Returns how the connection ended if it ended meanwhile.
fn linger(inbox: &mpsc::Receiver<Event>, generation: u64, quiet: Duration) -> Option<End> {
    let deadline = Instant::now() + Duration::from_secs_f64(MAX_LINGER);
    while !quiet.is_zero() && Instant::now() < deadline {
        match inbox.recv_timeout(quiet) {
            Ok(Event::Closed {
                generation: g,
                clean,
            }) if g == generation => return Some(End::Closed(clean)),
            Ok(Event::Interrupted(signal)) => return Some(End::Interrupted(signal)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    None
}

/// The open connection, as the main loop closes it.
struct Connection<'a> {
    writer: &'a rfc6455::Writer<Stream>,
    inbox: &'a mpsc::Receiver<Event>,
    generation: u64,
}

impl Connection<'_> {
    /// Sends close `code` (unless a close frame went out already) and waits
    /// up to `timeout` for the connection to end.
    fn close(&self, code: CloseCode, timeout: Duration) -> End {
        if !self.writer.send_closed() {
            let _ = self.writer.close(code, "");
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Event::Closed { generation, clean }) if generation == self.generation => {
                    return End::Closed(clean)
                }
                Ok(Event::Interrupted(signal)) => return End::Interrupted(signal),
                Ok(_) => {}
                Err(_) => {
                    eprintln!("wsclient: no close reply from the server");
                    return End::Closed(false);
                }
            }
        }
    }

    /// After Ctrl-C (or SIGTERM): close with 1001 going away, as a browser
    /// does for a page the user leaves (1000 is for the end of input, the
    /// conversation's normal end), wait briefly for the server's reply, and
    /// exit with 128 + the signal number. A second signal exits at once
    /// (see `install_signal_handler`).
    fn interrupted(&self, signal: i32) -> ExitCode {
        let _ = self.close(CloseCode::GOING_AWAY, INTERRUPT_WAIT);
        signal_exit(signal)
    }
}

/// How long Ctrl-C waits for the server to answer our close frame: long
/// enough for any live server, short enough for a user who wants out.
const INTERRUPT_WAIT: Duration = Duration::from_secs(2);

/// The shell's convention for "killed by signal N": 128 + N (130 for
/// Ctrl-C), so that `wsclient … && next` does not go on as if the whole
/// input had been delivered.
fn signal_exit(signal: i32) -> ExitCode {
    ExitCode::from(u8::try_from(128 + signal).unwrap_or(u8::MAX))
}

fn exit(clean: bool) -> ExitCode {
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// SIGINT and SIGTERM: with a connection open, the main loop closes it
/// (`Event::Interrupted`); with none (connecting, or waiting to reconnect)
/// there is nothing to close, so exit at once. A second signal always exits
/// at once: the user is done waiting.
#[cfg(feature = "signals")]
fn install_signal_handler(events: mpsc::Sender<Event>, open: Arc<AtomicBool>) {
    common::on_signal("wsclient", move |signal| {
        if !open.load(Ordering::Acquire) {
            std::process::exit(128 + signal);
        }
        eprintln!("wsclient: interrupted; closing (again to quit now)");
        let _ = events.send(Event::Interrupted(signal));
    });
}

#[cfg(not(feature = "signals"))]
fn install_signal_handler(_events: mpsc::Sender<Event>, _open: Arc<AtomicBool>) {}

/// Whether a proxy may be used: named with `--proxy`, or set in the
/// environment (the library applies `NO_PROXY`).
fn uses_proxy(config: &ClientConfig) -> bool {
    const VARS: [&str; 6] = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    config.proxy.is_some()
        || (config.proxy_from_env && VARS.iter().any(|v| std::env::var_os(v).is_some()))
}
