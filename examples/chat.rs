//! A broadcast chat room with its own browser page, on one port.
//!
//! ```text
//! cargo run --release --example chat -- --listen 127.0.0.1:9002 [--tick SECONDS]
//! ```
//!
//! - `GET /` serves a self-contained page (no external scripts, fonts or CDNs)
//!   that connects to `/ws`, sends what you type and lists what arrives.
//! - `/ws` is the WebSocket endpoint: every text message a client sends is
//!   broadcast to every connected client, the sender included.
//! - `GET /receive?msg=TEXT` broadcasts `TEXT` to everyone (try it with curl).
//! - `GET /health` answers `ok`; anything else is `404 Not Found`.
//! - `--tick SECONDS` broadcasts the server time periodically.
//! - Only pages from this server's own origin (or `--allow-origin`s) may
//!   open the WebSocket (403 otherwise; RFC 6455 §10.2), `--any-origin` lifts
//!   that. The server pings every 20 s and drops clients that do not answer.

use rfc6455::handshake::{AcceptOptions, Request};
use rfc6455::{HttpResponse, Hub, Keepalive, Message, Server, ServerConfig, Stream};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PAGE: &str = include_str!("chat.html");

const USAGE: &str = "usage: chat [--listen ADDR] [--tick SECONDS] [--allow-origin ORIGIN]... \
[--any-origin] [--ping-interval SECS] [--ping-timeout SECS]";

struct Options {
    listen: String,
    tick: Option<Duration>,
    origins: Vec<String>,
    any_origin: bool,
    ping_interval: u64,
    ping_timeout: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:9002".into(),
        tick: None,
        origins: Vec::new(),
        any_origin: false,
        ping_interval: 20,
        ping_timeout: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => options.listen = value("--listen")?,
            "--tick" => {
                let secs: f64 = value("--tick")?
                    .parse()
                    .map_err(|_| "--tick takes seconds")?;
                if !(secs > 0.0 && secs < 1e6) {
                    return Err("--tick takes a positive number of seconds".into());
                }
                options.tick = Some(Duration::from_secs_f64(secs));
            }
            "--allow-origin" => options.origins.push(value("--allow-origin")?),
            "--any-origin" => options.any_origin = true,
            "--ping-interval" => {
                options.ping_interval = value("--ping-interval")?
                    .parse()
                    .map_err(|_| "--ping-interval takes whole seconds (0 disables)")?
            }
            "--ping-timeout" => {
                options.ping_timeout = value("--ping-timeout")?
                    .parse()
                    .map_err(|_| "--ping-timeout takes whole seconds")?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

/// The origins a browser reports for pages served from `addr`.
fn own_origins(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut origins = vec![format!("http://{addr}")];
    if addr.ip().is_loopback() {
        origins.push(format!("http://localhost:{port}"));
    }
    if addr.ip().is_unspecified() {
        // Listening everywhere: whatever host name the page was loaded from
        // is unknown here, so only loopback names can be listed.
        origins.push(format!("http://127.0.0.1:{port}"));
        origins.push(format!("http://localhost:{port}"));
    }
    origins
}

/// Splits a request target into its path and the value of query parameter
/// `name`, percent-decoded (`+` is a space, as HTML forms send it).
fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn path(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or(target)
}

/// `HH:MM:SS UTC` without a date library.
fn utc_time() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

fn http(hub: &Hub<Stream>, request: &Request) -> HttpResponse {
    if request.method != "GET" && request.method != "HEAD" {
        return HttpResponse::new(405, "text/plain", "only GET\n");
    }
    match path(&request.target) {
        "/" | "/index.html" => HttpResponse::new(200, "text/html; charset=utf-8", PAGE),
        "/health" => HttpResponse::new(200, "text/plain", "ok\n"),
        "/receive" => match query_param(&request.target, "msg") {
            Some(msg) if !msg.is_empty() => {
                let delivery = hub.broadcast(Message::Text(msg));
                HttpResponse::new(
                    200,
                    "text/plain",
                    format!("sent to {} clients\n", delivery.queued),
                )
            }
            _ => HttpResponse::new(400, "text/plain", "usage: /receive?msg=TEXT\n"),
        },
        _ => HttpResponse::not_found(),
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chat: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let hub: Hub<Stream> = Hub::new();

    let keepalive = (options.ping_interval > 0).then(|| Keepalive {
        interval: Duration::from_secs(options.ping_interval),
        timeout: Duration::from_secs(options.ping_timeout.max(1)),
    });
    // The allowed origins depend on the bound port (`--listen 127.0.0.1:0`),
    // known only after binding; the check reads them from here.
    let allowed: Arc<OnceLock<Vec<String>>> = Arc::default();
    let accept = if options.any_origin {
        AcceptOptions::default()
    } else {
        let allowed = Arc::clone(&allowed);
        AcceptOptions::default().check_origin(move |origin| match origin {
            // Browsers always send Origin; other clients are let in.
            None => true,
            Some(o) => allowed
                .get()
                .is_some_and(|list| list.iter().any(|a| a.eq_ignore_ascii_case(o))),
        })
    };
    let page_hub = hub.clone();
    let config = ServerConfig::default()
        .keepalive(keepalive)
        .accept(accept)
        .http_handler(move |request| http(&page_hub, request))
        // Upgrades anywhere but /ws are refused before the handshake.
        .check_upgrade(|request| (path(&request.target) != "/ws").then(HttpResponse::not_found));
    let server = match Server::bind(&options.listen, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chat: cannot listen on {}: {e}", options.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = server.local_addr();
    let mut origins = own_origins(addr);
    origins.extend(options.origins.iter().cloned());
    eprintln!("chat: open http://{addr}/ in a browser (WebSocket at ws://{addr}/ws)");
    if !options.any_origin {
        eprintln!("chat: origins allowed: {}", origins.join(", "));
    }
    let _ = allowed.set(origins);

    if let Some(every) = options.tick {
        let ticker = hub.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            ticker.broadcast(Message::Text(format!("tick: {}", utc_time())));
        });
    }

    let room = hub.clone();
    let result = server.serve(move |ws, _request| {
        let (mut reader, writer) = ws.split()?;
        let _member = room.join(writer);
        loop {
            if let Message::Text(text) = reader.read()? {
                room.broadcast(Message::Text(text));
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_percent_decoded() {
        assert_eq!(
            query_param("/receive?msg=hello+world%21", "msg").as_deref(),
            Some("hello world!")
        );
        assert_eq!(
            query_param("/receive?a=1&msg=%E2%82%AC", "msg").as_deref(),
            Some("€")
        );
        assert_eq!(
            query_param("/receive?msg=100%", "msg").as_deref(),
            Some("100%")
        );
        assert_eq!(
            query_param("/receive?msg=%zz", "msg").as_deref(),
            Some("%zz")
        );
        assert_eq!(query_param("/receive", "msg"), None);
    }
}
