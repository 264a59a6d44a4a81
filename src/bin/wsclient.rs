//! `wsclient`: an interactive WebSocket client. Lines from stdin go out as
//! text messages; received messages are printed to stdout, one per line.
//!
//! ```text
//! wsclient ws://127.0.0.1:9001/
//! printf 'a\nb\n' | wsclient ws://127.0.0.1:9001/
//! ```

use rfc6455::{ClientConfig, CloseCode, Error, Keepalive, Message, WebSocketConfig};
use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

const HELP: &str = "\
wsclient: an interactive WebSocket client (RFC 6455).

Sends each line of standard input as a text message and prints each message
received on its own line of standard output. Binary messages are printed as
`<binary N bytes: HEX…>`. Connection and close details go to standard error.
At the end of input it sends close 1000, waits for the reply and exits 0.

USAGE:
    wsclient [OPTIONS] ws://HOST[:PORT][/PATH][?QUERY]

OPTIONS:
    --header 'NAME: VALUE'    add a request header (repeatable)
    --subprotocol NAME        offer a subprotocol (repeatable)
    --ping-interval SECS      ping after this much silence; close if no pong in as long
    --connect-timeout SECS    [default: 10]
    -h, --help                print this help

EXIT STATUS: 0 after a normal close, 1 if the connection failed or closed
abnormally, 2 for bad usage.
";

struct Options {
    url: String,
    config: ClientConfig,
}

fn parse_args() -> Result<Options, String> {
    let mut url = None;
    let mut config = ClientConfig::default();
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
                let s: f64 = value("--ping-interval")?
                    .parse()
                    .map_err(|_| "--ping-interval wants seconds".to_owned())?;
                if s > 0.0 {
                    let t = Duration::from_secs_f64(s);
                    let ws = WebSocketConfig::default().keepalive(Some(Keepalive {
                        interval: t,
                        timeout: t,
                    }));
                    config = config.websocket(ws).read_timeout(Some(t));
                }
            }
            "--connect-timeout" => {
                let s: f64 = value("--connect-timeout")?
                    .parse()
                    .map_err(|_| "--connect-timeout wants seconds".to_owned())?;
                config = config.connect_timeout(Duration::from_secs_f64(s.max(0.001)));
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            positional => {
                if url.replace(positional.to_owned()).is_some() {
                    return Err("more than one URL".into());
                }
            }
        }
    }
    Ok(Options {
        url: url.ok_or("missing URL (see --help)")?,
        config,
    })
}

fn describe(message: &Message) -> Option<String> {
    match message {
        Message::Text(text) => Some(text.clone()),
        Message::Binary(data) => {
            let shown: String = data.iter().take(32).map(|b| format!("{b:02x}")).collect();
            let more = if data.len() > 32 { "…" } else { "" };
            Some(format!("<binary {} bytes: {shown}{more}>", data.len()))
        }
        _ => None,
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
    let (ws, response) = match rfc6455::connect_with(&options.url, &options.config) {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("wsclient: cannot connect to {}: {e}", options.url);
            return ExitCode::FAILURE;
        }
    };
    let protocol = response
        .headers
        .get("sec-websocket-protocol")
        .map(|p| format!(" (subprotocol {p})"))
        .unwrap_or_default();
    eprintln!("wsclient: connected to {}{protocol}", options.url);
    let (mut reader, writer) = match ws.split() {
        Ok(halves) => halves,
        Err(e) => {
            eprintln!("wsclient: {e}");
            return ExitCode::FAILURE;
        }
    };

    // The reader thread prints messages and reports how the connection ended.
    let (done_tx, done_rx) = mpsc::channel::<bool>();
    std::thread::spawn(move || {
        let stdout = io::stdout();
        let mut clean = false;
        loop {
            match reader.read() {
                Ok(Message::Close(frame)) => {
                    let code = frame.as_ref().map(|f| f.code);
                    clean = matches!(
                        code,
                        None | Some(CloseCode::NORMAL) | Some(CloseCode::GOING_AWAY)
                    );
                    match frame {
                        Some(f) => eprintln!("wsclient: connection closed: {f}"),
                        None => eprintln!("wsclient: connection closed (no status code)"),
                    }
                }
                Ok(message) => {
                    if let Some(line) = describe(&message) {
                        let mut out = stdout.lock();
                        let _ = writeln!(out, "{line}");
                        let _ = out.flush();
                    }
                }
                Err(Error::ConnectionClosed) => break,
                Err(e) => {
                    eprintln!("wsclient: {e}");
                    clean = false;
                    break;
                }
            }
        }
        let _ = done_tx.send(clean);
    });

    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if writer.send(Message::Text(line)).is_err() {
            break;
        }
        if let Ok(clean) = done_rx.try_recv() {
            return exit(clean);
        }
    }
    // End of input: close and wait (bounded) for the server's reply.
    if !writer.is_closed() {
        let _ = writer.close(CloseCode::NORMAL, "");
    }
    match done_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(clean) => exit(clean),
        Err(_) => {
            eprintln!("wsclient: no close reply from the server");
            ExitCode::FAILURE
        }
    }
}

fn exit(clean: bool) -> ExitCode {
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
