//! `wsecho`: a thread-per-connection WebSocket echo server.
//!
//! ```text
//! cargo run --release --bin wsecho -- --listen 127.0.0.1:9001
//! ```

use rfc6455::frame::OpCode;
use rfc6455::protocol::{MessageRef, Piece, SizeLimits, Streaming};

/// By default, messages larger than this are echoed as they arrive, a piece
/// at a time, instead of whole, so memory does not grow with the message.
/// Not less:
/// a peer that does not read while it sends (the Autobahn driver, among
/// others) would block on our echo of the start of its message while we
/// block on it, once the socket buffers are full; up to this size we take
/// in the whole message first, as a plain echo does.
const STREAM_ABOVE: usize = 16 << 20;
use rfc6455::{escape, CloseFrame, Error, Keepalive, Server, ServerConfig};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod common;
use common::{seconds, DAY};
#[cfg(feature = "mio")]
mod wsecho_poll;

const HELP: &str = "\
wsecho: a WebSocket echo server (RFC 6455), one thread per connection.

Every text and binary message is sent back unchanged.

USAGE:
    wsecho [OPTIONS]

OPTIONS:
    --listen HOST:PORT        address to listen on: 127.0.0.1:9001, [::1]:9001,
                              localhost:9001, 0.0.0.0:9001 (every interface);
                              port 0 picks a free one [default: 127.0.0.1:9001]
    --max-connections N       concurrent connections; beyond: HTTP 503 [default: 10000]
    --max-frame BYTES         largest frame accepted, else close 1009 [default: 16777216]
    --max-message BYTES       largest message accepted whole, else close 1009 [default: 67108864]
    --stream-above BYTES      echo messages larger than this as they arrive, a piece
                              at a time (no size limit, memory does not grow with
                              the message); a client must read while it sends
                              [default: 16777216]
    --handshake-timeout SECS  time to send the request head, else 408 [default: 10]
    --write-timeout SECS      a blocked write (peer not reading) fails after [default: 30]
    --ping-interval SECS      ping after this much silence; 0 disables keepalive [default: 20]
    --ping-timeout SECS       close (1011) if no pong within [default: 20]
    --idle-timeout SECS       with keepalive off: close after this much silence; 0 = never [default: 0]
    --stack-size BYTES        stack of each connection thread [default: 131072]
    --tls-cert FILE           serve wss:// with this PEM certificate chain (leaf
                              first); needs --tls-key (built with `tls`)
    --tls-key FILE            the PEM private key of --tls-cert
    --deflate                 accept permessage-deflate compression (RFC 7692) with
                              12-bit windows; needs a build with `--features deflate`
    --engine ENGINE           `threads` (one per connection) or `poll` (a few worker
                              threads, each an epoll loop over many connections;
                              build with `--features mio`) [default: threads]
    --workers N               with --engine poll: worker threads [default: cores]
    --quiet                   no per-connection log lines
    -V, --version             print the version
    -h, --help                print this help

SECS is decimal seconds from 0.001 to 86400 (one day); the flags where 0
means off or never also take 0. Anything else is bad usage.

Logs a startup line and one line per connection to stderr.
Ctrl-C (SIGINT) or SIGTERM: stop accepting, close connections with 1001 (waiting
for each reply until the peer has been quiet for 0.3 s), exit.

EXIT STATUS: 0 after a shutdown by signal, 1 if it cannot listen, 2 for bad
usage, 128 + N on a second signal N, which exits at once (130 for Ctrl-C).
";

struct Options {
    listen: String,
    config: ServerConfig,
    quiet: bool,
    stream_above: usize,
    poll: bool,
    workers: Option<usize>,
}

fn parse_args() -> Result<Options, String> {
    let mut listen = "127.0.0.1:9001".to_owned();
    let mut config = ServerConfig::default();
    let mut protocol = SizeLimits::default();
    let mut stream_above = STREAM_ABOVE;
    // The flags adjust the library's default keepalive (the help quotes it).
    let mut keepalive = config.keepalive.unwrap_or(Keepalive {
        interval: Duration::from_secs(20),
        timeout: Duration::from_secs(20),
    });
    let mut ping_off = false;
    let mut quiet = false;
    let mut tls_cert = None;
    let mut tls_key = None;
    let mut poll = false;
    let mut workers = None;
    // Flags only the threaded engine honours, as given: refused with
    // --engine poll rather than accepted and ignored.
    let mut threads_only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "-V" | "--version" => {
                println!("wsecho {} (rfc6455)", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "--listen" => listen = listen_address(&value()?)?,
            "--max-connections" => config = config.max_connections(number(&flag, &value()?)?),
            "--max-frame" => protocol = protocol.max_frame_size(number(&flag, &value()?)?),
            "--max-message" => protocol = protocol.max_message_size(number(&flag, &value()?)?),
            "--stream-above" => {
                stream_above = number(&flag, &value()?)?;
                threads_only.push("--stream-above");
            }
            // A zero handshake or write timeout would refuse every peer
            // (or be refused by the socket): these start at 1 ms.
            "--handshake-timeout" => {
                config = config.handshake_timeout(seconds(&flag, &value()?, 0.001..=DAY)?)
            }
            "--write-timeout" => {
                config = config.write_timeout(Some(seconds(&flag, &value()?, 0.001..=DAY)?))
            }
            "--ping-interval" => {
                keepalive.interval = seconds(&flag, &value()?, 0.0..=DAY)?;
                ping_off = keepalive.interval.is_zero();
            }
            "--ping-timeout" => keepalive.timeout = seconds(&flag, &value()?, 0.001..=DAY)?,
            "--idle-timeout" => {
                let t = seconds(&flag, &value()?, 0.0..=DAY)?;
                config = config.idle_timeout((!t.is_zero()).then_some(t));
            }
            "--stack-size" => {
                config = config.stack_size(number(&flag, &value()?)?);
                threads_only.push("--stack-size");
            }
            "--quiet" => quiet = true,
            "--engine" => {
                match value()?.as_str() {
                    "threads" => poll = false,
                    "poll" if cfg!(feature = "mio") => poll = true,
                    "poll" => return Err(
                        "--engine poll: this build has no poll engine (build with --features mio)"
                            .into(),
                    ),
                    other => return Err(format!("--engine: `threads` or `poll`, not {other:?}")),
                }
            }
            "--workers" => match number(&flag, &value()?)? {
                0 => return Err("--workers: at least 1".into()),
                n => workers = Some(n),
            },
            "--tls-cert" => tls_cert = Some(value()?),
            "--tls-key" => tls_key = Some(value()?),
            "--deflate" if !cfg!(feature = "deflate") => {
                return Err(
                    "--deflate: this build has no compression (build with --features deflate)"
                        .into(),
                )
            }
            "--deflate" => {
                config = config.deflate(Some(rfc6455::handshake::DeflateConfig::default()))
            }
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    if poll && (tls_cert.is_some() || tls_key.is_some()) {
        return Err("--engine poll serves ws:// only; TLS needs --engine threads".into());
    }
    if let (true, Some(flag)) = (poll, threads_only.first()) {
        return Err(match *flag {
            // The poll engine holds each message whole (up to --max-message).
            "--stream-above" => "--stream-above: the poll engine does not stream messages yet \
                                 (it holds each one whole, up to --max-message); use --engine threads"
                .into(),
            other => format!("{other} goes with --engine threads (poll workers are few, not one per connection)"),
        });
    }
    if workers.is_some() && !poll {
        return Err("--workers goes with --engine poll".into());
    }
    let config = with_tls(config, tls_cert, tls_key)?;
    Ok(Options {
        poll,
        workers,
        listen,
        config: config
            .protocol(protocol)
            .keepalive((!ping_off).then_some(keepalive)),
        quiet,
        stream_above,
    })
}

/// `--tls-cert` and `--tls-key` (issue 12): both or neither.
fn with_tls(
    config: ServerConfig,
    cert: Option<String>,
    key: Option<String>,
) -> Result<ServerConfig, String> {
    match (cert, key) {
        (None, None) => Ok(config),
        (Some(_), None) | (None, Some(_)) => Err("--tls-cert and --tls-key go together".to_owned()),
        #[cfg(feature = "tls")]
        (Some(cert), Some(key)) => config
            .tls_pem(&cert, &key)
            .map_err(|e| format!("--tls-cert/--tls-key: {e}")),
        #[cfg(not(feature = "tls"))]
        (Some(_), Some(_)) => {
            Err("--tls-cert: this wsecho was built without the `tls` feature".to_owned())
        }
    }
}

/// `--listen`'s value: HOST:PORT, with a name or an address as HOST (an
/// IPv6 one in brackets) and a port number. Checked here, so that a value
/// without a port (`localhost`) is bad usage with the form to use, not
/// "invalid socket address" from the resolver.
fn listen_address(value: &str) -> Result<String, String> {
    let usage = || {
        format!(
            "--listen wants HOST:PORT, such as 127.0.0.1:9001, localhost:9001 or [::1]:9001; \
             got {:?}",
            value
        )
    };
    let (host, port) = value.rsplit_once(':').ok_or_else(usage)?;
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || (host.contains(':') && !bracketed) || port.parse::<u16>().is_err() {
        return Err(usage());
    }
    Ok(value.to_owned())
}

/// Why `bind` failed, and what to do about it.
fn bind_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => " (another program listens there: pick another port)",
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need privileges: pick a port above 1023)"
        }
        std::io::ErrorKind::AddrNotAvailable => " (no interface of this machine has that address)",
        _ => "",
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a valid number: {value:?}"))
}

/// `close 1000`, or with the peer's reason `close 1001 (bye)`, escaped
/// (the reason is the peer's text: see `rfc6455::escape`).
fn describe_close(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(f) => format!("close {f}"),
        None => "close (no code)".to_owned(),
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wsecho: {e}");
            return ExitCode::from(2);
        }
    };
    // Without the poll engine, parse_args refuses `--engine poll`.
    #[cfg(not(feature = "mio"))]
    let _ = (options.poll, options.workers);
    #[cfg(feature = "mio")]
    if options.poll {
        let served = wsecho_poll::serve(
            &options.listen,
            options.config,
            options.workers,
            options.quiet,
            |server, handle| {
                eprintln!(
                    "wsecho: listening on ws://{}/ (poll engine)",
                    server.local_addr()
                );
                install_signal_handler(move || handle.shutdown());
            },
        );
        return match served {
            Ok(()) => {
                eprintln!("wsecho: stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wsecho: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let scheme = if options.config.uses_tls() {
        "wss"
    } else {
        "ws"
    };
    let server = match Server::bind(&options.listen, options.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "wsecho: cannot listen on {}: {e}{}",
                options.listen,
                bind_hint(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    eprintln!("wsecho: listening on {scheme}://{}/", server.local_addr());
    let handle = server.handle();
    install_signal_handler(move || handle.shutdown());
    let quiet = options.quiet;
    let stream_above = options.stream_above;
    let result = server.serve(move |mut ws, _| {
        let peer = ws
            .get_ref()
            .peer_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let start = Instant::now();
        let mut messages = 0u64;
        let mut close = None;
        // The opcode of a streamed echo's first frame, until it is sent.
        let mut first = None;
        let outcome = loop {
            // Small messages come whole, borrowed from the read buffer and
            // written back from there (no allocation per message); large
            // ones come in pieces and go back a piece at a time, so memory
            // does not grow with the message.
            let (piece, mut sender) = match ws.read_piece(Streaming::Above(stream_above)) {
                Ok(read) => read,
                Err(e) => break e,
            };
            let written = match piece {
                Piece::Message(message @ (MessageRef::Text(_) | MessageRef::Binary(_))) => {
                    messages += 1;
                    sender.write(message)
                }
                Piece::Message(MessageRef::Close(frame)) => {
                    close = Some(describe_close(frame));
                    Ok(())
                }
                Piece::Message(_) => Ok(()),
                Piece::Start(opcode) => {
                    messages += 1;
                    first = Some(opcode);
                    Ok(())
                }
                Piece::Data(bytes) => {
                    let opcode = first.take().unwrap_or(OpCode::Continuation);
                    sender.write_frame(opcode, bytes, false)
                }
                Piece::End => {
                    let opcode = first.take().unwrap_or(OpCode::Continuation);
                    sender.write_frame(opcode, &[], true)
                }
            };
            match written {
                // Our close went out (the server is shutting down): keep
                // reading for the peer's reply.
                Ok(()) | Err(Error::AlreadyClosed) => {}
                Err(e) => break e,
            }
        };
        if !quiet {
            let close = close.unwrap_or_else(|| "no close frame".to_owned());
            let end = match &outcome {
                Error::ConnectionClosed => close,
                Error::Protocol(p) => format!("failed: {p} (sent close {})", p.close_code()),
                // Errors may quote what the peer sent.
                other => format!("{close}; {}", escape::for_display(&other.to_string())),
            };
            let s = if messages == 1 { "" } else { "s" };
            eprintln!(
                "wsecho: {peer}: {:.3}s, {messages} message{s}, {end}",
                start.elapsed().as_secs_f64()
            );
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            eprintln!("wsecho: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsecho: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "signals")]
fn install_signal_handler(shutdown: impl Fn() + Send + 'static) {
    common::on_signal("wsecho", move |_| {
        eprintln!("wsecho: shutting down (again to force)");
        shutdown();
    });
}

#[cfg(not(feature = "signals"))]
fn install_signal_handler(_shutdown: impl Fn() + Send + 'static) {}
