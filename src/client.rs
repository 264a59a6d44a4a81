//! The client: `ws://` URL → TCP → opening handshake → [`WebSocket`].

use crate::frame::Role;
use crate::handshake::client::{build_request, verify_response, RequestOptions};
use crate::handshake::http::{parse_response, Limits, Response};
use crate::handshake::{DeflateConfig, HandshakeError};
use crate::protocol::WebSocketConfig;
use crate::transport::{read_head, HeadError, Stream, Transport};
use crate::websocket::WebSocket;
use crate::{Error, Result};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The WebSocket a client gets, over the crate's [`Stream`].
pub type ClientWebSocket = WebSocket<Stream>;

/// A parsed `ws://` URL (RFC 6455 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// The host: a name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    /// The port (80 when the URL has none).
    pub port: u16,
    /// Whether the URL named the port.
    pub explicit_port: bool,
    /// Path and query, starting with `/`.
    pub resource: String,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]`. `wss://` is refused with
    /// [`Error::TlsNotSupported`]; RFC 6455 §3 forbids fragments (`#`).
    ///
    /// ```
    /// use rfc6455::client::WsUrl;
    /// let url = WsUrl::parse("ws://[::1]:9001/chat?room=1").unwrap();
    /// assert_eq!((url.host.as_str(), url.port, url.resource.as_str()), ("::1", 9001, "/chat?room=1"));
    /// assert!(matches!(WsUrl::parse("wss://example.com/"), Err(rfc6455::Error::TlsNotSupported)));
    /// ```
    pub fn parse(url: &str) -> Result<WsUrl> {
        let bad = |why: &str| Error::Url(format!("{why}: {url:?}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "ws" => {}
            "wss" => return Err(Error::TlsNotSupported),
            _ => return Err(bad("scheme must be ws://")),
        }
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
            None => (80, false),
        };
        Ok(WsUrl {
            host: host.to_owned(),
            port,
            explicit_port,
            resource,
        })
    }
}

/// Client settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Time allowed to establish TCP (per resolved address). Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for the server's handshake response. Default 10 s.
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

/// Connects to a `ws://` URL with the default [`ClientConfig`].
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

/// Connects to a `ws://` URL.
pub fn connect_with(url: &str, config: &ClientConfig) -> Result<(ClientWebSocket, Response)> {
    let url = WsUrl::parse(url)?;
    let stream = open_tcp(&url, config.connect_timeout)?;
    client_handshake(Stream::from_tcp(stream), &url, config)
}

fn open_tcp(url: &WsUrl, timeout: Duration) -> Result<TcpStream> {
    let mut last = None;
    for addr in (url.host.as_str(), url.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
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
    let request = build_request(&RequestOptions {
        host: &url.host,
        port: url.port,
        explicit_port: url.explicit_port,
        resource: &url.resource,
        subprotocols: &config.subprotocols,
        headers: &config.headers,
        deflate: config.websocket.deflate,
    })?;
    stream.write_all(request.bytes())?;
    let deadline = Instant::now() + config.handshake_timeout;
    let limits = &config.http_limits;
    let (response, leftover) = read_head(&mut stream, deadline, limits.max_head, |buf| {
        parse_response(buf, limits)
    })
    .map_err(|e| match e {
        HeadError::Parse(e) => Error::Handshake(HandshakeError::Http(e)),
        HeadError::Timeout => Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "no handshake response in time",
        )),
        HeadError::Eof => Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection during the handshake",
        )),
        HeadError::TooLarge => Error::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "handshake response head too large",
        )),
        HeadError::Io(e) => Error::Io(e),
    })?;
    let negotiated = verify_response(&response, &request)?;
    let ws_config = config.websocket.clone();
    // No read timeout asked for: reads still wake up now and then (the
    // close timeout, or sooner for keepalive) so that a server that never
    // closes TCP after the close handshake cannot hold us forever; such
    // wake-ups are not errors.
    let tick = config.read_timeout.is_none().then(|| ws_config.read_tick());
    stream.set_read_timeout(config.read_timeout.or(tick))?;
    let mut ws = WebSocket::after_handshake(stream, leftover, Role::Client, negotiated, ws_config);
    if let Some(tick) = tick {
        ws.set_timeouts_are_ticks(tick);
    }
    Ok((ws, response))
}
