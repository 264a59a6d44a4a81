//! The command line: flags and their values into [`Options`].

use crate::common::{seconds, DAY};
use rfc6455::client::WsUrl;
use rfc6455::{ClientConfig, Error, Keepalive, WebSocketConfig};
use std::path::PathBuf;
use std::time::Duration;

/// The longest `--linger`: the whole wait at the end of input is capped at
/// 10 s anyway (see `session::linger`), so a longer quiet period could
/// never pass.
pub const MAX_LINGER: f64 = 10.0;

const HELP: &str = "\
wsclient: an interactive WebSocket client (RFC 6455).

Sends each line of standard input as a text message and prints each message
received on its own line of standard output. Connection and close details go
to standard error. At the end of input it waits for replies to stop arriving
(--linger), sends close 1000, waits for the reply and exits 0.

USAGE:
    wsclient [OPTIONS] ws://HOST[:PORT][/PATH][?QUERY]
    wsclient [OPTIONS] wss://HOST[:PORT][/PATH][?QUERY]    (built with `tls`)

INPUT:
    A line that is not valid UTF-8 is sent as a binary message, with a note on
    standard error naming the line. With --binary every line is.

OUTPUT:
    On a terminal, received lines start with `< `, and control characters and
    bidi overrides in them are shown escaped (\\n, \\u{1b}, \\u{202e}), so a
    server cannot clear the screen, retitle the window or reorder the text.
    In a pipe, each message is one line: a line break inside a text message is
    written as \\n (and a carriage return as \\r), everything else as received;
    with --null, messages end with a NUL byte instead and are written exactly as
    received. Binary messages are shown as `<binary N bytes: HEX…>` (or saved,
    with --save).

OPTIONS:
    --header 'NAME: VALUE'    add a request header (repeatable)
    --subprotocol NAME        offer a subprotocol (repeatable)
    --binary                  send each line of input as a binary message
    --count N                 exit after N text or binary messages have arrived
                              (close 1000, exit 0), whenever input ends; exit 1 if
                              the connection ends before
    --slash                   lines starting with `/` are commands: /ping [TEXT],
                              /pong [TEXT], /close [CODE [REASON]]; `//` sends a
                              line that starts with `/`
    -P, --show-ping-pong      print pings and pongs received on standard error
    -v, --verbose             also print the handshake response and each reconnect
                              decision on standard error (implies -P)
    --null                    in a pipe, end each message with NUL, not newline,
                              and write text exactly as received
    --ping-interval SECS      ping after this much silence; close if no pong in as
                              long; 0 to 86400 [default: 0, off]
    --connect-timeout SECS    time allowed for the whole connect: TCP, proxy, TLS
                              and the opening handshake; 0.001 to 86400 [default: 10]
    --linger SECS             at end of input, wait until nothing has arrived for
                              this long before closing; 0 to 10 [default: 0.5]
    --reconnect               when the connection drops or cannot be made, try
                              again with exponential backoff (0.5 s doubling,
                              capped at 30 s, with jitter) until stdin ends; not
                              after a 4xx refusal (but 429) or a close 1000. Lines
                              typed meanwhile are sent once connected
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
    -V, --version             print the version and the features built in
    -h, --help                print this help

Ctrl-C (SIGINT) or SIGTERM sends close 1001 (going away), waits up to 2 s for
the server's reply and exits 130 (143 for SIGTERM); a second one exits at once.
(Without the default `signals` feature, signals end it at once.)

EXIT STATUS: 0 after a normal close, 1 if the connection failed or closed
abnormally, 2 for bad usage (an unknown option, a bad value, a malformed URL),
128 + N after signal N (130 for Ctrl-C).
";

/// What the flags asked for.
pub struct Options {
    pub url: String,
    pub config: ClientConfig,
    pub reconnect: bool,
    pub linger: Duration,
    pub send_file: Option<PathBuf>,
    pub save: Option<PathBuf>,
    /// Every line goes out as a binary message.
    pub binary: bool,
    /// Exit after this many data messages.
    pub count: Option<u64>,
    /// Lines starting with `/` are commands.
    pub slash: bool,
    pub show_pings: bool,
    pub verbose: bool,
    /// NUL-terminated, unescaped output in a pipe.
    pub null: bool,
}

/// The `--version` line: the crate's version and the features compiled in.
fn version() -> String {
    let features: Vec<&str> = [
        ("signals", cfg!(feature = "signals")),
        ("tls", cfg!(feature = "tls")),
        ("deflate", cfg!(feature = "deflate")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(", ")
    };
    format!(
        "wsclient {} (rfc6455; features: {features})",
        env!("CARGO_PKG_VERSION")
    )
}

pub fn parse_args() -> Result<Options, String> {
    let mut url = None;
    let mut deflate = false;
    // The proxy environment variables are followed unless --no-env-proxy.
    let mut config = ClientConfig::default().proxy_from_env(true);
    let mut o = Options {
        url: String::new(),
        config: ClientConfig::default(),
        reconnect: false,
        linger: Duration::from_millis(500),
        send_file: None,
        save: None,
        binary: false,
        count: None,
        slash: false,
        show_pings: false,
        verbose: false,
        null: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "-V" | "--version" => {
                println!("{}", version());
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
            "--binary" => o.binary = true,
            "--count" => {
                let v = value("--count")?;
                match v.parse::<u64>() {
                    Ok(n) if n > 0 => o.count = Some(n),
                    _ => return Err(format!("--count wants a whole number from 1, got {v:?}")),
                }
            }
            "--slash" => o.slash = true,
            "-P" | "--show-ping-pong" => o.show_pings = true,
            "-v" | "--verbose" => {
                o.verbose = true;
                o.show_pings = true;
            }
            "--null" => o.null = true,
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
            "--reconnect" => o.reconnect = true,
            "--send-file" => o.send_file = Some(PathBuf::from(value("--send-file")?)),
            "--save" => o.save = Some(PathBuf::from(value("--save")?)),
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
                o.linger = seconds("--linger", &value("--linger")?, 0.0..=MAX_LINGER)?;
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            positional => {
                if url.replace(positional.to_owned()).is_some() {
                    return Err("more than one URL".into());
                }
            }
        }
    }
    o.url = url.ok_or("missing URL (see --help)")?;
    if deflate {
        if !cfg!(feature = "deflate") {
            return Err(
                "--deflate: this build has no compression (build with --features deflate)".into(),
            );
        }
        config = config.deflate(Some(rfc6455::handshake::DeflateConfig::client()));
    }
    o.config = config;
    // A malformed URL is bad usage, which no retry can fix. `wss://` without
    // the `tls` feature is well formed but not supported: that is a failure
    // to connect (exit 1).
    if let Err(e @ Error::Url(_)) = WsUrl::parse(&o.url) {
        return Err(e.to_string());
    }
    if let Some(path) = &o.send_file {
        if !path.is_file() {
            return Err(format!(
                "--send-file: {} is not a readable file",
                path.display()
            ));
        }
    }
    if let Some(dir) = &o.save {
        if !dir.is_dir() {
            return Err(format!("--save: {} is not a directory", dir.display()));
        }
    }
    Ok(o)
}
