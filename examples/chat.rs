//! A broadcast chat with rooms and its own browser page, on one port; with
//! `--redis`, several instances on several ports (or machines) form one chat;
//! with `--history`, a client that was away gets what it missed.
//!
//! ```text
//! cargo run --release --example chat -- --listen 127.0.0.1:9002 [--tick SECONDS]
//! cargo run --release --features redis --example chat -- --listen 127.0.0.1:9003 \
//!     --redis redis://127.0.0.1:6379/ --history 1000,600
//! ```
//!
//! - `GET /` serves a self-contained page (no external scripts, fonts or CDNs)
//!   that connects to `/ws`, sends what you type and lists what arrives; with
//!   history it reconnects by itself and resumes where it was.
//! - `/ws?room=NAME` is the WebSocket endpoint: every text message a client
//!   sends goes to every client in its room (`lobby` when none is given),
//!   the sender included. A plain `GET /ws` gets `426 Upgrade Required`.
//! - `--history N[,SECONDS]` keeps at least the last N messages of every room
//!   (younger than SECONDS, if given) and speaks the JSON protocol of
//!   `chat/protocol.rs`: each message carries its room's `offset` and
//!   `epoch`, `/ws?room=R&since=O&epoch=E` first sends what was missed after
//!   O (announced by a `recovery` report), and a client may join and leave
//!   several rooms on one connection. With `--redis` the history lives in
//!   Redis Streams, shared by every instance; without, in this process.
//! - `/receive?msg=TEXT[&room=NAME][&id=ID]` (GET for curl, or POST)
//!   broadcasts TEXT to everyone, or to one room. In a room with history it
//!   answers `200` only once the message is accepted (it will reach every
//!   member connected or recovering), `503` if it was refused, `504` if the
//!   outcome is unknown (retry with the same `id`: a repeated id is taken
//!   once). Without a room (and `--tick`) a broadcast is at most once and in
//!   no history. A request a browser marks cross-site (`Sec-Fetch-Site:
//!   cross-site`, or an `Origin` that is not allowed) gets `403`: no other
//!   web page can make a visitor's browser post to the chat.
//! - `GET /health` answers `200 ok`, or `503` while the Redis link is down,
//!   with the hub's and the relay's counters; anything else is `404`.
//! - `--tick SECONDS` broadcasts the server time periodically.
//! - `--redis URL` relays through Redis to the other instances on the same
//!   Redis (needs `--features redis`).
//! - Only pages from this server's own origin (or `--allow-origin`s) may
//!   open the WebSocket (403 otherwise; RFC 6455 §10.2), `--any-origin` lifts
//!   that. The server pings every 20 s and drops clients that do not answer.
//! - SIGTERM or Ctrl-C closes every client with 1001 (going away), so that
//!   they reconnect to another instance, and exits.
//! - `--engine poll` serves the same chat on the poll engine (a few worker
//!   threads for any number of clients; needs `--features mio`): its
//!   connections join the same kind of hub, rooms, history and Redis relay
//!   included, and `/receive` waits for Redis without holding up a worker.

#[path = "chat/protocol.rs"]
mod protocol;

use protocol::Command;
use rfc6455::handshake::{AcceptOptions, DeflateConfig, Request};
use rfc6455::hub::{HistoryConfig, HubConfig, Outcome, Since};
use rfc6455::{HttpResponse, Hub, Keepalive, Member, Message, Server, ServerConfig, Stream};
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
[--history N[,SECONDS]] [--allow-origin ORIGIN]... [--any-origin] [--ping-interval SECS] \
[--ping-timeout SECS] [--tls-cert FILE --tls-key FILE] [--engine threads|poll]";

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
    /// Room history (`--history N[,SECONDS]`).
    history: Option<HistoryConfig>,
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
        history: None,
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
            "--history" => options.history = Some(history_arg(&value("--history")?)?),
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

/// `N[,SECONDS]`: at least the last N messages, younger than SECONDS.
fn history_arg(arg: &str) -> Result<HistoryConfig, String> {
    let usage = || format!("--history takes N[,SECONDS], not {arg:?}");
    let (len, age) = match arg.split_once(',') {
        Some((len, age)) => (len, Some(age)),
        None => (arg, None),
    };
    let len: usize = len.parse().map_err(|_| usage())?;
    let age = match age {
        Some(age) => {
            let secs: f64 = age.parse().map_err(|_| usage())?;
            if !(secs > 0.0 && secs < 1e9) {
                return Err(usage());
            }
            Some(Duration::from_secs_f64(secs))
        }
        None => None,
    };
    if len == 0 {
        return Err(usage());
    }
    Ok(HistoryConfig::new(len).max_age(age))
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

/// What the HTTP side needs to know: the hub, the Redis link, and which
/// origins a browser may post from.
struct Site {
    hub: ChatHub,
    link: Link,
    origins: Origins,
}

/// The allowed origins (known once the port is bound), or `None` for
/// `--any-origin`.
type Origins = Option<Arc<OnceLock<Vec<String>>>>;

fn origin_allowed(origins: &Origins, origin: &str) -> bool {
    origins.as_ref().is_none_or(|allowed| {
        allowed
            .get()
            .is_some_and(|list| list.iter().any(|a| a.eq_ignore_ascii_case(origin)))
    })
}

fn http(site: &Site, request: &Request) -> HttpResponse {
    let target = path(&request.target);
    let method = request.method.as_str();
    let allowed = match target {
        // Changes state: GET for curl, POST for forms and scripts; HEAD
        // must change nothing (RFC 9110 §9.3.2), so it is not offered.
        "/receive" => matches!(method, "GET" | "POST"),
        _ => matches!(method, "GET" | "HEAD"),
    };
    if !allowed {
        let allow = if target == "/receive" {
            "GET, POST"
        } else {
            "GET, HEAD"
        };
        let mut response = HttpResponse::new(405, "text/plain", format!("only {allow}\n"));
        response.headers.push(("Allow".into(), allow.into()));
        return response;
    }
    match target {
        "/" | "/index.html" => HttpResponse::new(200, "text/html; charset=utf-8", PAGE),
        "/health" => {
            let (up, details) = site.link.health();
            let status = if up { 200 } else { 503 };
            let first = if up { "ok" } else { "redis down" };
            let clients = site.hub.len();
            let s = site.hub.stats();
            HttpResponse::new(
                status,
                "text/plain",
                format!(
                    "{first}\nclients: {clients}\naccepted: {}\nrefused: {}\nunknown: {}\n\
                     recovered: {}\nunrecoverable: {}\ndropped: {}\nslow_closed: {}\n{details}",
                    s.accepted,
                    s.refused,
                    s.unknown,
                    s.recovered,
                    s.unrecoverable,
                    s.dropped,
                    s.slow_closed
                ),
            )
        }
        "/receive" => receive(site, request),
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

/// `/receive`: a broadcast from outside, answered only once its outcome
/// is known (see the module docs).
fn receive(site: &Site, request: &Request) -> HttpResponse {
    // A browser says where a request comes from (Fetch Metadata, and the
    // Origin of a POST or a script's request): another site's page must
    // not be able to post through its visitors.
    let cross_site = request
        .headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.eq_ignore_ascii_case("cross-site"));
    let foreign = request
        .headers
        .get("origin")
        .is_some_and(|origin| !origin_allowed(&site.origins, origin));
    if cross_site || foreign {
        return HttpResponse::new(403, "text/plain", "cross-site requests may not post here\n");
    }
    let Some(msg) = query_param(&request.target, "msg").filter(|m| !m.is_empty()) else {
        return HttpResponse::new(
            400,
            "text/plain",
            "usage: /receive?msg=TEXT[&room=NAME][&id=ID]\n",
        );
    };
    let hub = &site.hub;
    let Some(room) = query_param(&request.target, "room") else {
        // Everyone: at most once, in no history.
        let delivery = hub.broadcast(everyone(hub, &msg));
        let body = format!("sent to {} clients here (at most once)\n", delivery.queued);
        return HttpResponse::new(200, "text/plain", body);
    };
    if !hub.has_history(&room) {
        let delivery = hub.broadcast_to(&room, Message::Text(msg));
        let body = format!("sent to {} clients here (at most once)\n", delivery.queued);
        return HttpResponse::new(200, "text/plain", body);
    }
    // Answered when the log says: this thread (or poll worker) goes on.
    let (response, responder) = HttpResponse::later();
    let id = query_param(&request.target, "id").filter(|id| !id.is_empty());
    hub.publish(&room, Message::Text(msg), id.as_deref(), move |outcome| {
        let (status, body) = match &outcome {
            Outcome::Accepted {
                offset,
                epoch,
                duplicate,
            } => {
                let again = if *duplicate { " (already)" } else { "" };
                (200, format!("accepted{again} {offset} {epoch}\n"))
            }
            Outcome::Refused(why) => (503, format!("refused: {why}\n")),
            Outcome::Unknown => (504, "unknown: retry with the same id\n".to_owned()),
            Outcome::Sent(d) => (200, format!("sent to {} clients here\n", d.queued)),
            _ => (500, "?\n".to_owned()),
        };
        responder.send(HttpResponse::new(status, "text/plain", body));
    });
    response
}

/// A broadcast to everyone: plain text, or with history the protocol's
/// `broadcast` message (so that clients tell it from a room's).
fn everyone(hub: &ChatHub, text: &str) -> Message {
    match hub.has_history(DEFAULT_ROOM) {
        true => Message::Text(protocol::broadcast(text)),
        false => Message::Text(text.to_owned()),
    }
}

/// Where a `/ws` request joins: its room, and where it left off.
fn join_of(request: &Request) -> (String, Option<Since>) {
    let since = query_param(&request.target, "since").map(|offset| {
        let epoch = query_param(&request.target, "epoch").unwrap_or_default();
        Since::new(&epoch, &offset)
    });
    (room_of(request), since)
}

/// A text message from a client: with history, the protocol's commands;
/// without, a broadcast to its room.
fn on_text(hub: &ChatHub, member: &Member, room: &str, text: &str) {
    if !hub.has_history(room) {
        hub.broadcast_to(room, Message::text(text));
        return;
    }
    match protocol::command(text) {
        Command::Text(text) => {
            hub.publish(room, Message::Text(text), None, drop);
        }
        Command::Send { room, text, id } => {
            let handle = member.handle();
            if !member.rooms().contains(&room) {
                if let Some(id) = id {
                    let refused = Outcome::Refused(rfc6455::hub::Refusal::Rejected(
                        "join the room first".into(),
                    ));
                    let _ = handle.send(Message::Text(protocol::ack(&id, &room, &refused)));
                }
                return;
            }
            let name = room.clone();
            let publish_id = id.clone();
            hub.publish(
                &room,
                Message::Text(text),
                publish_id.as_deref(),
                move |outcome| {
                    // From whichever thread learned it; the ack goes through
                    // the member's queue, never a blocking write here.
                    if let Some(id) = id {
                        let _ = handle.send(Message::Text(protocol::ack(&id, &name, &outcome)));
                    }
                },
            );
        }
        Command::Join { room, since } => {
            member.join(&room, since);
        }
        Command::Leave { room } => {
            member.leave(&room);
        }
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
                 missed: {}\nmalformed: {}\nreconnects: {}\nappended: {}\nentries: {}\n\
                 resets: {}\n",
                if up { "up" } else { "down" },
                s.published,
                s.not_published,
                s.received,
                s.missed,
                s.malformed,
                s.reconnects,
                s.appended,
                s.entries,
                s.resets
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
    let hub = match &options.history {
        Some(history) => ChatHub::with_config(HubConfig::default().history(Some(history.clone())))
            .with_envelope(protocol::Json),
        None => ChatHub::new(),
    };
    let (link, hub) = match Link::open(options.redis.as_deref(), hub) {
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
    let origins: Origins = (!options.any_origin).then(|| Arc::clone(&allowed));
    let accept = if options.any_origin {
        AcceptOptions::default()
    } else {
        let origins = origins.clone();
        AcceptOptions::default().check_origin(move |origin| match origin {
            // Browsers always send Origin; other clients are let in.
            None => true,
            Some(o) => origin_allowed(&origins, o),
        })
    };
    let site = Site {
        hub: hub.clone(),
        link,
        origins,
    };
    let config = ServerConfig::default()
        .keepalive(keepalive)
        .accept(accept)
        // Browsers offer permessage-deflate on every connection: accept it
        // (12-bit windows) when built with the `deflate` feature; without
        // it the setting is ignored and nothing is negotiated.
        .deflate(Some(DeflateConfig::default()))
        .http_handler(move |request| http(&site, request))
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
                ticker.broadcast(everyone(&ticker, &format!("tick: {}", utc_time())));
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
        let (room, since) = join_of(&request);
        eprintln!("chat: {} joined room {room:?}", client_of(&request));
        let (mut reader, writer) = ws.split()?;
        let member = hub.join(writer);
        member.join(&room, since);
        loop {
            if let Message::Text(text) = reader.read()? {
                on_text(&hub, &member, &room, &text);
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
    use super::{client_of, join_of, on_text, ChatHub};
    use rfc6455::handshake::Request;
    use rfc6455::poll::{Conn, Handler, PollServer};
    use rfc6455::protocol::MessageRef;
    use rfc6455::{Member, ServerConfig};
    use std::net::SocketAddr;
    use std::process::ExitCode;

    struct Chat {
        hub: ChatHub,
    }

    /// A client's room and its place in the hub (left when dropped).
    struct Client {
        room: String,
        member: Member,
    }

    impl Handler for Chat {
        type State = Client;

        fn on_open(&self, conn: &mut Conn<'_>, request: &Request) -> Client {
            let (room, since) = join_of(request);
            eprintln!("chat: {} joined room {room:?}", client_of(request));
            let member = self.hub.join_sink(None, conn.sender());
            member.join(&room, since);
            Client { room, member }
        }

        fn on_message(&self, client: &mut Client, _: &mut Conn<'_>, message: MessageRef<'_>) {
            if let MessageRef::Text(text) = message {
                on_text(&self.hub, &client.member, &client.room, text);
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
