//! The client: `ws://` or `wss://` URL → TCP (directly or through an HTTP
//! proxy) → TLS for `wss://` (feature `tls`) → opening handshake →
//! [`WebSocket`].
//!
//! ```no_run
//! use rfc6455::{ClientConfig, Message};
//! use std::time::Duration;
//!
//! let config = ClientConfig::default()
//!     .connect_timeout(Duration::from_secs(3))
//!     .header("Origin", "http://127.0.0.1:9001")
//!     .max_message_size(1 << 20);
//! let (mut ws, response) = rfc6455::connect_with("ws://127.0.0.1:9001/chat", &config)?;
//! println!("{} {:?}", response.status, ws.subprotocol());
//! ws.send(Message::text("hello"))?;
//! # Ok::<(), rfc6455::Error>(())
//! ```

use crate::error::{Error, Refusal, Result};
use crate::handshake::client::{build_request, RequestOptions};
use crate::handshake::http::{Limits, Response};
use crate::handshake::DeflateConfig;
use crate::protocol::{ClientHandshake, Keepalive, WebSocketConfig};
use crate::transport::proxy::{self, Proxy};
use crate::transport::{read_head, ReadError, Stream, Transport};
use crate::websocket::WebSocket;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The WebSocket a client gets, over the crate's [`Stream`].
pub type ClientWebSocket = WebSocket<Stream>;

/// A parsed `ws://` or `wss://` URL (RFC 6455 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// The host: a name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    /// The port (80, or 443 for `wss://`, when the URL has none).
    pub port: u16,
    /// Whether the URL named the port.
    pub explicit_port: bool,
    /// Path and query, starting with `/`.
    pub resource: String,
    /// Whether the URL is `wss://` (TLS).
    pub tls: bool,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]` and `wss://…`. Without the
    /// `tls` feature, `wss://` is refused with [`Error::TlsNotSupported`];
    /// RFC 6455 §3 forbids fragments (`#`).
    ///
    /// ```
    /// use rfc6455::client::WsUrl;
    /// let url = WsUrl::parse("ws://[::1]:9001/chat?room=1").unwrap();
    /// assert_eq!((url.host.as_str(), url.port, url.resource.as_str()), ("::1", 9001, "/chat?room=1"));
    /// match WsUrl::parse("wss://example.com/") {
    ///     Ok(url) => assert!(url.tls && url.port == 443), // built with `tls`
    ///     Err(e) => assert!(matches!(e, rfc6455::Error::TlsNotSupported)),
    /// }
    /// ```
    pub fn parse(url: &str) -> Result<WsUrl> {
        let bad = |why: &str| Error::Url(format!("{why}: {url:?}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" if cfg!(feature = "tls") => true,
            "wss" => return Err(Error::TlsNotSupported),
            _ => return Err(bad("scheme must be ws:// or wss://")),
        };
        if rest.contains('#') {
            return Err(bad("fragments are not allowed in WebSocket URLs"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        let resource = match resource {
            "" => "/".to_owned(),
            r if r.starts_with('?') => format!("/{r}"),
            r => r.to_owned(),
        };
        if resource.bytes().any(|b| b <= b' ' || b == 0x7F) {
            return Err(bad(
                "spaces and control characters are not allowed in the path",
            ));
        }
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let (port, explicit_port) = match port {
            Some(p) => (p.parse::<u16>().map_err(|_| bad("invalid port"))?, true),
            None => (if tls { 443 } else { 80 }, false),
        };
        Ok(WsUrl {
            host: host.to_owned(),
            port,
            explicit_port,
            resource,
            tls,
        })
    }
}

/// Client settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Time allowed for the whole connect: TCP (every address the name
    /// resolves to, tried in turn, in total), the proxy's tunnel, TLS and
    /// the opening handshake, until [`connect_with`] returns. Default 10 s.
    /// Name resolution itself is not bounded: the system resolver offers no
    /// timeout.
    pub connect_timeout: Duration,
    /// Time allowed from TCP being up (or the proxy's tunnel) to the
    /// server's handshake response, TLS included, within the
    /// [`connect_timeout`](ClientConfig::connect_timeout). Default 10 s.
    pub handshake_timeout: Duration,
    /// Read timeout on the connection after the handshake: `read` fails
    /// with `TimedOut` after this much silence (unless keepalive is on).
    /// Default none: `read` waits as long as it takes, though the socket
    /// still wakes up internally every close timeout, so that the close
    /// handshake is bounded even against a server that never closes TCP.
    pub read_timeout: Option<Duration>,
    /// Write timeout on the connection. Default 30 s.
    pub write_timeout: Option<Duration>,
    /// Subprotocols to offer, in preference order.
    pub subprotocols: Vec<String>,
    /// Extra request headers (e.g. `Origin`, `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Limits on the response head.
    pub http_limits: Limits,
    /// Options of the resulting [`WebSocket`].
    pub websocket: WebSocketConfig,
    // --- TLS and proxies (issue 12) ---
    /// rustls settings for `wss://` (your own CA, client certificates); the
    /// default trusts the Mozilla roots from `webpki-roots` (see
    /// [`tls::default_client_config`](crate::transport::tls::default_client_config)).
    /// ALPN `http/1.1` is offered when the config offers nothing. The TLS
    /// handshake and the opening handshake share `handshake_timeout`.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<crate::transport::tls::rustls::ClientConfig>>,
    /// An HTTP proxy to tunnel through with `CONNECT`:
    /// `http://[user:password@]host[:port]` (credentials go out as basic
    /// authentication). Default none.
    pub proxy: Option<String>,
    /// When no [`proxy`](ClientConfig::proxy) is set, take one from
    /// `HTTPS_PROXY` (`wss://`) or `HTTP_PROXY` (`ws://`), unless `NO_PROXY`
    /// lists the host. Default off: a library does not follow the
    /// environment unless asked to (`wsclient` does).
    pub proxy_from_env: bool,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            read_timeout: None,
            write_timeout: Some(Duration::from_secs(30)),
            subprotocols: Vec::new(),
            headers: Vec::new(),
            http_limits: Limits::default(),
            websocket: WebSocketConfig::default(),
            #[cfg(feature = "tls")]
            tls: None,
            proxy: None,
            proxy_from_env: false,
        }
    }
}

impl ClientConfig {
    /// Sets [`ClientConfig::connect_timeout`].
    pub fn connect_timeout(mut self, t: Duration) -> ClientConfig {
        self.connect_timeout = t;
        self
    }
    /// Sets [`ClientConfig::handshake_timeout`].
    pub fn handshake_timeout(mut self, t: Duration) -> ClientConfig {
        self.handshake_timeout = t;
        self
    }
    /// Sets [`ClientConfig::read_timeout`].
    pub fn read_timeout(mut self, t: Option<Duration>) -> ClientConfig {
        self.read_timeout = t;
        self
    }
    /// Sets [`ClientConfig::write_timeout`].
    pub fn write_timeout(mut self, t: Option<Duration>) -> ClientConfig {
        self.write_timeout = t;
        self
    }
    /// Adds a subprotocol to offer.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> ClientConfig {
        self.subprotocols.push(protocol.into());
        self
    }
    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ClientConfig {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Sets the [`WebSocket`] options.
    pub fn websocket(mut self, config: WebSocketConfig) -> ClientConfig {
        self.websocket = config;
        self
    }
    /// Sets the largest message accepted (see [`SizeLimits::max_message_size`](crate::SizeLimits::max_message_size)).
    ///
    /// ```
    /// use rfc6455::{ClientConfig, Keepalive};
    /// use std::time::Duration;
    ///
    /// let config = ClientConfig::default()
    ///     .max_message_size(1 << 20)
    ///     .keepalive(Some(Keepalive::new(Duration::from_secs(20), Duration::from_secs(10))));
    /// assert_eq!(config.websocket.protocol.max_message_size, 1 << 20);
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> ClientConfig {
        self.websocket.protocol.max_message_size = bytes;
        self
    }
    /// Sets the largest frame accepted (see [`SizeLimits::max_frame_size`](crate::SizeLimits::max_frame_size)).
    pub fn max_frame_size(mut self, bytes: usize) -> ClientConfig {
        self.websocket.protocol.max_frame_size = bytes;
        self
    }
    /// Sets the keepalive (off by default for clients).
    pub fn keepalive(mut self, keepalive: Option<Keepalive>) -> ClientConfig {
        self.websocket.keepalive = keepalive;
        self
    }
    /// Sets how long to wait for the server's close frame and TCP close
    /// after ours (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.websocket.close_timeout = timeout;
        self
    }
    /// Sets the idle timeout (with keepalive off; default none).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> ClientConfig {
        self.websocket.idle_timeout = timeout;
        self
    }

    // --- permessage-deflate (RFC 7692) ---

    /// Offers permessage-deflate with `config` (`None`: no offer), e.g.
    /// [`DeflateConfig::client`]. Sets [`WebSocketConfig::deflate`] of
    /// [`ClientConfig::websocket`]. Needs the `deflate` feature; without it
    /// nothing is offered.
    ///
    /// ```
    /// use rfc6455::{handshake::DeflateConfig, ClientConfig};
    /// let config = ClientConfig::default().deflate(Some(DeflateConfig::client()));
    /// assert!(config.websocket.deflate.is_some());
    /// ```
    pub fn deflate(mut self, config: Option<DeflateConfig>) -> ClientConfig {
        self.websocket.deflate = config;
        self
    }
}

// --- TLS and proxies (issue 12) ---
impl ClientConfig {
    /// Sets [`ClientConfig::tls`]: the rustls settings for `wss://`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<crate::transport::tls::rustls::ClientConfig>) -> ClientConfig {
        self.tls = Some(config);
        self
    }

    /// Sets [`ClientConfig::proxy`].
    ///
    /// ```
    /// let config = rfc6455::ClientConfig::default().proxy("http://user:secret@proxy.local:3128");
    /// assert!(config.proxy.is_some());
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> ClientConfig {
        self.proxy = Some(url.into());
        self
    }

    /// Sets [`ClientConfig::proxy_from_env`].
    pub fn proxy_from_env(mut self, on: bool) -> ClientConfig {
        self.proxy_from_env = on;
        self
    }

    /// The proxy to use for `url`, if any.
    fn proxy_for(&self, url: &WsUrl) -> Result<Option<Proxy>> {
        let from_env = || {
            self.proxy_from_env
                .then(|| proxy::from_env(&url.host, url.tls, |v| std::env::var(v).ok()))
                .flatten()
        };
        self.proxy
            .clone()
            .or_else(from_env)
            .map(|p| Proxy::parse(&p))
            .transpose()
    }
}

/// Opens the connection to the server: TCP, through the proxy if any, then
/// TLS for `wss://`, all before `until` (the connect timeout's end).
/// Returns the stream and the handshake deadline, which starts once TCP (or
/// the tunnel) is up: TLS and the opening handshake share one
/// `handshake_timeout`, as on the server, and it never ends after `until`.
fn open_stream(url: &WsUrl, config: &ClientConfig, until: Instant) -> Result<(Stream, Instant)> {
    let handshake_deadline = || (Instant::now() + config.handshake_timeout).min(until);
    let tcp = match config.proxy_for(url)? {
        Some(proxy) => proxy.tunnel(
            &url.host,
            url.port,
            time_left(until)?,
            handshake_deadline(),
            &config.http_limits,
        )?,
        None => open_tcp(url, until)?,
    };
    let stream = Stream::from_tcp(tcp);
    let deadline = handshake_deadline();
    if !url.tls {
        return Ok((stream, deadline));
    }
    #[cfg(feature = "tls")]
    {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(config.write_timeout)?;
        let stream = stream
            .connect_tls(config.tls.as_ref(), &url.host, deadline)
            .map_err(Error::Tls)?;
        Ok((stream, deadline))
    }
    #[cfg(not(feature = "tls"))]
    Err(Error::TlsNotSupported)
}

/// Connects to a `ws://` (or, with the `tls` feature, `wss://`) URL with the
/// default [`ClientConfig`]: a `wss://` server's certificate and host name
/// are verified against the Mozilla roots.
///
/// ```no_run
/// let (mut ws, response) = rfc6455::connect("ws://127.0.0.1:9001/")?;
/// println!("status {}", response.status);
/// ws.send("hello".into())?;
/// println!("{:?}", ws.read()?);
/// # Ok::<(), rfc6455::Error>(())
/// ```
pub fn connect(url: &str) -> Result<(ClientWebSocket, Response)> {
    connect_with(url, &ClientConfig::default())
}

/// Connects to a `ws://` or `wss://` URL, through a proxy if the config
/// names one.
///
/// The whole connect is bounded by [`ClientConfig::connect_timeout`]; a
/// status other than 101 is [`Error::Refused`], with the server's headers
/// and the start of its body.
pub fn connect_with(url: &str, config: &ClientConfig) -> Result<(ClientWebSocket, Response)> {
    let url = WsUrl::parse(url)?;
    let until = Instant::now() + config.connect_timeout;
    let (stream, deadline) = open_stream(&url, config, until)?;
    // What TCP and TLS left of the handshake timeout.
    let left = deadline.saturating_duration_since(Instant::now());
    let result = client_handshake(stream, &url, &config.clone().handshake_timeout(left));
    // A server that refuses our client certificate says so (TLS 1.3) only
    // after our side of the TLS handshake is done: name it as a TLS error.
    #[cfg(feature = "tls")]
    let result = result.map_err(|e| crate::transport::tls::reclassify(e, &url.host));
    result
}

/// What is left until `until`, or the connect timeout's error.
fn time_left(until: Instant) -> Result<Duration> {
    match until.saturating_duration_since(Instant::now()) {
        Duration::ZERO => Err(Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "no connection within the connect timeout",
        ))),
        left => Ok(left),
    }
}

/// Tries each address of the host in turn, all within `until`.
fn open_tcp(url: &WsUrl, until: Instant) -> Result<TcpStream> {
    let mut last = None;
    for addr in (url.host.as_str(), url.port).to_socket_addrs()? {
        let left = match time_left(until) {
            Ok(left) => left,
            Err(e) => return Err(last.map_or(e, Error::Io)),
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Io(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "host resolved to no address")
    })))
}

/// Runs the client side of the opening handshake on a connected stream.
pub fn client_handshake(
    mut stream: Stream,
    url: &WsUrl,
    config: &ClientConfig,
) -> Result<(ClientWebSocket, Response)> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(config.write_timeout)?;
    // RFC 6455 §4.1: `Host` names the port only when it is not the
    // scheme's default, which for wss:// is 443.
    let mut headers = std::borrow::Cow::Borrowed(&config.headers);
    let has_host = config
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"));
    if url.tls && url.port == 443 && !url.explicit_port && !has_host {
        let host = if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        };
        headers.to_mut().push(("Host".into(), host));
    }
    let request = build_request(&RequestOptions {
        host: &url.host,
        port: url.port,
        explicit_port: url.explicit_port,
        resource: &url.resource,
        subprotocols: &config.subprotocols,
        headers: &headers[..],
        deflate: config.websocket.deflate,
    })?;
    let now = Instant::now();
    let mut handshake = ClientHandshake::new(
        request,
        config.http_limits.clone(),
        config.handshake_timeout,
        now,
    );
    stream.write_all(handshake.data_to_send())?;
    let sent = handshake.data_to_send().len();
    handshake.advance(sent);
    let deadline = handshake.deadline();
    let response = read_head(&mut stream, &mut handshake, deadline).map_err(|e| match e {
        ReadError::Head(e) => e,
        ReadError::Timeout => Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "no handshake response in time",
        )),
        ReadError::Eof => Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection during the handshake",
        )),
        ReadError::Io(e) => Error::Io(e),
    })?;
    if response.status != 101 {
        // A refusal: its body says why (a server's "use wss://", say).
        let body = refusal_body(&mut stream, &response, handshake.take_leftover(), deadline);
        return Err(Error::Refused(Box::new(Refusal::new(response, body))));
    }
    let ws_config = config.websocket.clone();
    let opened = handshake.finish(&response, &ws_config, Instant::now())?;
    // No read timeout asked for: reads still wake up now and then (the
    // close timeout, or sooner for keepalive) so that a server that never
    // closes TCP after the close handshake cannot hold us forever; such
    // wake-ups are not errors.
    let tick = config.read_timeout.is_none().then(|| ws_config.read_tick());
    stream.set_read_timeout(config.read_timeout.or(tick))?;
    let mut ws = WebSocket::from_connection(stream, opened.connection, opened.leftover, ws_config);
    ws.set_subprotocol(opened.negotiated.subprotocol);
    if let Some(tick) = tick {
        ws.set_timeouts_are_ticks(tick);
    }
    Ok((ws, response))
}

/// The start of the body of a response that refused the upgrade (RFC 6455
/// §4.1: it is an ordinary HTTP response), which usually says why: at most
/// [`Refusal::MAX_BODY`] bytes, read for at most a second more and never
/// past the handshake deadline (the body normally comes with the head).
/// Framing per RFC 9112 §6.3: `Content-Length`, or until the server closes;
/// 1xx, 204 and 304 have none, and a chunked body is not decoded (none kept).
fn refusal_body(
    stream: &mut Stream,
    response: &Response,
    mut body: Vec<u8>,
    deadline: Instant,
) -> Vec<u8> {
    let headers = &response.headers;
    let chunked = headers
        .get_all("transfer-encoding")
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked || matches!(response.status, 100..=199 | 204 | 304) {
        return Vec::new();
    }
    let declared = headers
        .get("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok());
    let want = declared.unwrap_or(Refusal::MAX_BODY).min(Refusal::MAX_BODY);
    let deadline = deadline.min(Instant::now() + Duration::from_secs(1));
    let mut chunk = [0u8; 1024];
    while body.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    body.truncate(want);
    body
}
