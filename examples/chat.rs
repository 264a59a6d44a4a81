//! A broadcast chat with rooms and its own browser page, on one port; with
//! `--redis`, several instances on several ports (or machines) form one chat.
//!
//! ```text
//! cargo run --release --example chat -- --listen 127.0.0.1:9002 [--tick SECONDS]
//! cargo run --release --features redis --example chat -- --listen 127.0.0.1:9003 \
//!     --redis redis://127.0.0.1:6379/
//! ```
//!
//! - `GET /` serves a self-contained page (no external scripts, fonts or CDNs)
//!   that connects to `/ws`, sends what you type and lists what arrives.
//! - `/ws?room=NAME` is the WebSocket endpoint: every text message a client
//!   sends goes to every client in its room (`lobby` when none is given),
//!   the sender included. A plain `GET /ws` gets `426 Upgrade Required`.
//! - `GET /receive?msg=TEXT` broadcasts `TEXT` to everyone, `&room=NAME` to
//!   one room (try it with curl).
//! - `GET /health` answers `200 ok`, or `503` while the Redis link is down,
//!   with the relay's counters; anything else is `404 Not Found`.
//! - `--tick SECONDS` broadcasts the server time periodically.
//! - `--redis URL` relays every broadcast through Redis pub/sub to the other
//!   instances on the same Redis (needs `--features redis`).
//! - Only pages from this server's own origin (or `--allow-origin`s) may
//!   open the WebSocket (403 otherwise; RFC 6455 §10.2), `--any-origin` lifts
//!   that. The server pings every 20 s and drops clients that do not answer.
//! - SIGTERM or Ctrl-C closes every client with 1001 (going away), so that
//!   they reconnect to another instance, and exits.
//! - `--engine poll` serves the same chat on the poll engine (a few worker
//!   threads for any number of clients; needs `--features mio`): its
//!   connections join the same kind of hub, rooms and Redis relay included.

use rfc6455::handshake::{AcceptOptions, DeflateConfig, Request};
use rfc6455::{HttpResponse, Hub, Keepalive, Message, Server, ServerConfig, Stream};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The hub of server-side connections (the one place that names the socket
/// type).
type ChatHub = Hub<Stream>;

const PAGE: &str = include_str!("chat.html");

/// The room of clients that do not ask for one.
const DEFAULT_ROOM: &str = "lobby";

const USAGE: &str = "usage: chat [--listen ADDR] [--tick SECONDS] [--redis URL] \
[--allow-origin ORIGIN]... [--any-origin] [--ping-interval SECS] [--ping-timeout SECS] \
[--tls-cert FILE --tls-key FILE] [--engine threads|poll]";

struct Options {
    listen: String,
    tick: Option<Duration>,
    redis: Option<String>,
    origins: Vec<String>,
    any_origin: bool,
    ping_interval: u64,
    ping_timeout: u64,
    /// PEM certificate chain and key: serve https:// and wss:// (feature `tls`).
    tls: Option<(String, String)>,
    /// Serve on the poll engine (feature `mio`) instead of a thread per client.
    poll: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:9002".into(),
        tick: None,
        redis: None,
        origins: Vec::new(),
        any_origin: false,
        ping_interval: 20,
        ping_timeout: 20,
        tls: None,
        poll: false,
    };
    let (mut cert, mut key) = (None, None);
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
            "--redis" => options.redis = Some(value("--redis")?),
            "--allow-origin" => options.origins.push(value("--allow-origin")?),
            "--any-origin" => options.any_origin = true,
            "--tls-cert" => cert = Some(value("--tls-cert")?),
            "--tls-key" => key = Some(value("--tls-key")?),
            "--engine" => match value("--engine")?.as_str() {
                "threads" => options.poll = false,
                "poll" if cfg!(feature = "mio") => options.poll = true,
                "poll" => return Err("--engine poll needs the mio feature".into()),
                other => return Err(format!("--engine: threads or poll, not {other:?}")),
            },
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
    options.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(options)
}

/// The origins a browser reports for pages served from `addr`.
fn own_origins(addr: SocketAddr, scheme: &str) -> Vec<String> {
    let port = addr.port();
    let mut origins = vec![format!("{scheme}://{addr}")];
    if addr.ip().is_loopback() {
        origins.push(format!("{scheme}://localhost:{port}"));
    }
    if addr.ip().is_unspecified() {
        // Listening everywhere: whatever host name the page was loaded from
        // is unknown here, so only loopback names can be listed.
        origins.push(format!("{scheme}://127.0.0.1:{port}"));
        origins.push(format!("{scheme}://localhost:{port}"));
    }
    origins
}

/// Serves https:// and wss:// with the PEM files given.
#[cfg(feature = "tls")]
fn with_tls(config: ServerConfig, (cert, key): &(String, String)) -> Result<ServerConfig, String> {
    config
        .tls_pem(cert, key)
        .map_err(|e| format!("--tls-cert {cert} --tls-key {key}: {e}"))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: ServerConfig, _: &(String, String)) -> Result<ServerConfig, String> {
    Err("--tls-cert: this example was built without the `tls` feature".into())
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

/// The room a `/ws?room=NAME` request asks for.
fn room_of(request: &Request) -> String {
    query_param(&request.target, "room")
        .filter(|room| !room.is_empty())
        .unwrap_or_else(|| DEFAULT_ROOM.into())
}

fn http(hub: &ChatHub, link: &Link, request: &Request) -> HttpResponse {
    if request.method != "GET" && request.method != "HEAD" {
        return HttpResponse::new(405, "text/plain", "only GET\n");
    }
    match path(&request.target) {
        "/" | "/index.html" => HttpResponse::new(200, "text/html; charset=utf-8", PAGE),
        "/health" => {
            let (up, details) = link.health();
            let status = if up { 200 } else { 503 };
            let first = if up { "ok" } else { "redis down" };
            let clients = hub.len();
            HttpResponse::new(
                status,
                "text/plain",
                format!("{first}\nclients: {clients}\n{details}"),
            )
        }
        "/receive" => match query_param(&request.target, "msg") {
            Some(msg) if !msg.is_empty() => {
                let message = Message::Text(msg);
                let delivery = match query_param(&request.target, "room") {
                    Some(room) => hub.broadcast_to(&room, message),
                    None => hub.broadcast(message),
                };
                HttpResponse::new(
                    200,
                    "text/plain",
                    format!("sent to {} clients here\n", delivery.queued),
                )
            }
            _ => HttpResponse::new(400, "text/plain", "usage: /receive?msg=TEXT[&room=NAME]\n"),
        },
        // RFC 7231 §6.5.15: the endpoint exists, but only as a WebSocket.
        "/ws" => {
            let mut response = HttpResponse::new(
                426,
                "text/plain",
                "this is a WebSocket endpoint: connect with Upgrade: websocket\n",
            );
            response
                .headers
                .push(("Upgrade".into(), "websocket".into()));
            response
                .headers
                .push(("Sec-WebSocket-Version".into(), "13".into()));
            response
        }
        _ => HttpResponse::not_found(),
    }
}

/// The Redis link, when there is one.
#[cfg(feature = "redis")]
mod link {
    use super::ChatHub;
    use rfc6455::hub::redis::RedisRelay;

    pub struct Link(Option<RedisRelay>);

    impl Link {
        pub fn open(url: Option<&str>, hub: ChatHub) -> Result<(Link, ChatHub), String> {
            let Some(url) = url else {
                return Ok((Link(None), hub));
            };
            let relay = RedisRelay::open(url).map_err(|e| format!("--redis {url}: {e}"))?;
            let hub = hub.with_relay(relay.clone());
            Ok((Link(Some(relay)), hub))
        }

        /// Whether the link is up, and its counters.
        pub fn health(&self) -> (bool, String) {
            let Some(relay) = &self.0 else {
                return (true, "redis: not used\n".into());
            };
            let s = relay.stats();
            let up = relay.is_connected();
            let details = format!(
                "redis: {}\npublished: {}\nnot_published: {}\nreceived: {}\n\
                 missed: {}\nmalformed: {}\nreconnects: {}\n",
                if up { "up" } else { "down" },
                s.published,
                s.not_published,
                s.received,
                s.missed,
                s.malformed,
                s.reconnects
            );
            (up, details)
        }
    }
}

/// Without the `redis` feature, `--redis` is refused.
#[cfg(not(feature = "redis"))]
mod link {
    use super::ChatHub;

    pub struct Link;

    impl Link {
        pub fn open(url: Option<&str>, hub: ChatHub) -> Result<(Link, ChatHub), String> {
            match url {
                None => Ok((Link, hub)),
                Some(_) => Err("--redis needs the redis feature: \
                                cargo run --features redis --example chat -- ..."
                    .into()),
            }
        }

        pub fn health(&self) -> (bool, String) {
            (true, "redis: not used\n".into())
        }
    }
}

use link::Link;

#[cfg(feature = "signals")]
fn stop_on_signals(shutdown: impl FnOnce() + Send + 'static) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    eprintln!("chat: shutting down: clients get close 1001");
                    shutdown();
                }
            });
        }
        Err(e) => eprintln!("chat: cannot install signal handlers: {e}"),
    }
}

#[cfg(not(feature = "signals"))]
fn stop_on_signals(_shutdown: impl FnOnce() + Send + 'static) {}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chat: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (link, hub) = match Link::open(options.redis.as_deref(), ChatHub::new()) {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("chat: {e}");
            return ExitCode::from(2);
        }
    };

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
        // Browsers offer permessage-deflate on every connection: accept it
        // (12-bit windows) when built with the `deflate` feature; without
        // it the setting is ignored and nothing is negotiated.
        .deflate(Some(DeflateConfig::default()))
        .http_handler(move |request| http(&page_hub, &link, request))
        // Upgrades anywhere but /ws are refused before the handshake.
        .check_upgrade(|request| (path(&request.target) != "/ws").then(HttpResponse::not_found));
    let config = match &options.tls {
        Some(files) => match with_tls(config, files) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("chat: {e}");
                return ExitCode::from(2);
            }
        },
        None => config,
    };
    let (http, ws) = if options.tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    if options.tls.is_some() && options.poll {
        eprintln!("chat: --engine poll serves plain http:// and ws:// only");
        return ExitCode::from(2);
    }
    let ticker = hub.clone();
    let announce = move |addr: SocketAddr| {
        let mut origins = own_origins(addr, http);
        origins.extend(options.origins.iter().cloned());
        eprintln!("chat: open {http}://{addr}/ in a browser (WebSocket at {ws}://{addr}/ws)");
        if !options.any_origin {
            eprintln!("chat: origins allowed: {}", origins.join(", "));
        }
        let _ = allowed.set(origins);
        if let Some(url) = &options.redis {
            eprintln!("chat: relaying through {url}");
        }
        if let Some(every) = options.tick {
            std::thread::spawn(move || loop {
                std::thread::sleep(every);
                ticker.broadcast(Message::Text(format!("tick: {}", utc_time())));
            });
        }
    };
    #[cfg(feature = "mio")]
    if options.poll {
        return poll_engine::serve(&options.listen, config, hub, announce);
    }

    let server = match Server::bind(&options.listen, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chat: cannot listen on {}: {e}", options.listen);
            return ExitCode::FAILURE;
        }
    };
    announce(server.local_addr());
    let handle = server.handle();
    stop_on_signals(move || handle.shutdown());

    let result = server.serve(move |ws, request| {
        let room = room_of(&request);
        eprintln!("chat: {} joined room {room:?}", client_of(&request));
        let (mut reader, writer) = ws.split()?;
        let _member = hub.join_room(&room, writer);
        loop {
            if let Message::Text(text) = reader.read()? {
                hub.broadcast_to(&room, Message::Text(text));
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

/// Behind a proxy, the client's own address is in X-Forwarded-For: text the
/// peer chose, so escaped for the log (a bidi override or a newline could
/// otherwise forge what the log says).
fn client_of(request: &Request) -> rfc6455::escape::Escaped<'_> {
    rfc6455::escape::for_display(request.headers.get("x-forwarded-for").unwrap_or("direct"))
}

/// The same chat on the poll engine: each connection joins the hub through
/// its `poll::Sender`, so broadcasts reach it without a hub thread.
#[cfg(feature = "mio")]
mod poll_engine {
    use super::{client_of, room_of, ChatHub};
    use rfc6455::handshake::Request;
    use rfc6455::poll::{Conn, Handler, PollServer};
    use rfc6455::protocol::MessageRef;
    use rfc6455::{Member, Message, ServerConfig};
    use std::net::SocketAddr;
    use std::process::ExitCode;

    struct Chat {
        hub: ChatHub,
    }

    /// A client's room and its place in the hub (left when dropped).
    struct Client {
        room: String,
        _member: Member,
    }

    impl Handler for Chat {
        type State = Client;

        fn on_open(&self, conn: &mut Conn<'_>, request: &Request) -> Client {
            let room = room_of(request);
            eprintln!("chat: {} joined room {room:?}", client_of(request));
            let member = self.hub.join_sink(Some(&room), conn.sender());
            Client {
                room,
                _member: member,
            }
        }

        fn on_message(&self, client: &mut Client, _: &mut Conn<'_>, message: MessageRef<'_>) {
            if let MessageRef::Text(text) = message {
                self.hub.broadcast_to(&client.room, Message::text(text));
            }
        }
    }

    pub fn serve(
        listen: &str,
        config: ServerConfig,
        hub: ChatHub,
        announce: impl FnOnce(SocketAddr),
    ) -> ExitCode {
        let server = match PollServer::bind(listen, config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("chat: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        announce(server.local_addr());
        let handle = server.handle();
        super::stop_on_signals(move || handle.shutdown());
        match server.serve(Chat { hub }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chat: {e}");
                ExitCode::FAILURE
            }
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
