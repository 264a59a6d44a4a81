//! [`ServerConfig`]: what a server is told.

use super::response::HttpResponse;
use crate::error::Error;
use crate::handshake::http::{Limits, Request};
use crate::handshake::server::AcceptOptions;
use crate::handshake::DeflateConfig;
use crate::protocol::{Budget, Keepalive, SizeLimits, WebSocketConfig};

/// [`ServerConfig::memory_budget`]'s default: 512 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 512 << 20;
use std::sync::Arc;
use std::time::Duration;

type HttpHandler = Arc<dyn Fn(&Request) -> HttpResponse + Send + Sync>;
type UpgradeCheck = Arc<dyn Fn(&Request) -> Option<HttpResponse> + Send + Sync>;
type ErrorHook = Arc<dyn Fn(&Error, &Request) + Send + Sync>;

/// Server settings. `Default` gives the documented defaults; setters take and
/// return the config by value.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Concurrent connections served; beyond it a new connection gets
    /// `503 Service Unavailable` and is closed. Default 10,000.
    pub max_connections: usize,
    /// Time allowed from accept to a complete request head (slowloris guard).
    /// Default 10 s; a late peer gets `408 Request Timeout`.
    pub handshake_timeout: Duration,
    /// With keepalive off: how long a connection may be silent before it is
    /// closed with 1001 "idle timeout". `None` (the default) waits forever.
    pub idle_timeout: Option<Duration>,
    /// How long one blocked write may take before the connection is dropped
    /// (a peer that never reads). Default 30 s.
    pub write_timeout: Option<Duration>,
    /// Ping after this much silence and fail with 1011 if no pong comes in
    /// time. Default 20 s / 20 s, like Python `websockets`; `None` disables.
    pub keepalive: Option<Keepalive>,
    /// How long to wait for the peer's close frame after ours. Default 5 s.
    pub close_timeout: Duration,
    /// How long shutdown waits for connections to finish after telling them
    /// to go away, before cutting them off. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Stack size of each connection thread. Default 128 KiB (what a handler
    /// that does not recurse deeply needs; raise it if yours does).
    pub stack_size: usize,
    /// Limits on messages and frames.
    pub protocol: SizeLimits,
    /// Bytes of messages partly received that all connections together may
    /// hold (see [`Budget`]): past it, the connection whose message would
    /// need more fails with 1013 (try again later), and the others go on.
    /// Default [`DEFAULT_MEMORY_BUDGET`](crate::server::DEFAULT_MEMORY_BUDGET) (512 MiB): eight messages of the
    /// default `max_message_size` at once, what a few-GiB machine survives
    /// whatever 10,000 connections send. `None` leaves only the limits per
    /// connection.
    pub memory_budget: Option<Budget>,
    /// Limits on the request head.
    pub http_limits: Limits,
    /// Subprotocols, origin check, extra response headers. The default adds
    /// `Server: rfc6455/VERSION` to the 101; options set here replace it.
    pub accept: AcceptOptions,
    pub(crate) http: Option<HttpHandler>,
    pub(crate) upgrade_check: Option<UpgradeCheck>,
    pub(crate) on_error: Option<ErrorHook>,
    // --- TLS (issue 12) ---
    /// Serve `wss://` (and `https://` for [`http_handler`](ServerConfig::http_handler))
    /// with these rustls settings. The TLS handshake counts against
    /// `handshake_timeout`. Default none: plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<crate::transport::tls::rustls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            write_timeout: Some(Duration::from_secs(30)),
            keepalive: Some(Keepalive::new(
                Duration::from_secs(20),
                Duration::from_secs(20),
            )),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            stack_size: 128 * 1024,
            protocol: SizeLimits::default(),
            memory_budget: Some(Budget::new(DEFAULT_MEMORY_BUDGET)),
            http_limits: Limits::default(),
            // Names us in the 101 (Autobahn reports use it as the agent).
            accept: AcceptOptions::default()
                .header("Server", concat!("rfc6455/", env!("CARGO_PKG_VERSION"))),
            http: None,
            upgrade_check: None,
            on_error: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("keepalive", &self.keepalive)
            .field("close_timeout", &self.close_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("stack_size", &self.stack_size)
            .field("protocol", &self.protocol)
            .field("memory_budget", &self.memory_budget)
            .field("http_limits", &self.http_limits)
            .field("http", &self.http.is_some())
            .field("upgrade_check", &self.upgrade_check.is_some())
            .field("on_error", &self.on_error.is_some())
            .field("tls", &self.uses_tls())
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> ServerConfig {
            self.$name = value;
            self
        }
    };
}

impl ServerConfig {
    setter!(/// Sets [`ServerConfig::max_connections`].
        max_connections: usize);
    setter!(/// Sets [`ServerConfig::handshake_timeout`].
        handshake_timeout: Duration);
    setter!(/// Sets [`ServerConfig::idle_timeout`].
        idle_timeout: Option<Duration>);
    setter!(/// Sets [`ServerConfig::write_timeout`].
        write_timeout: Option<Duration>);
    setter!(/// Sets [`ServerConfig::keepalive`].
        keepalive: Option<Keepalive>);
    setter!(/// Sets [`ServerConfig::close_timeout`].
        close_timeout: Duration);
    setter!(/// Sets [`ServerConfig::shutdown_timeout`].
        shutdown_timeout: Duration);
    setter!(/// Sets [`ServerConfig::stack_size`].
        stack_size: usize);
    setter!(/// Sets [`ServerConfig::memory_budget`] (a [`Budget`] may be shared
        /// by several servers).
        memory_budget: Option<Budget>);
    setter!(/// Sets [`ServerConfig::protocol`].
        protocol: SizeLimits);
    setter!(/// Sets [`ServerConfig::http_limits`].
        http_limits: Limits);
    setter!(/// Sets [`ServerConfig::accept`].
        accept: AcceptOptions);

    /// Answers requests that are not WebSocket upgrades (no `Upgrade:
    /// websocket` header) with `handler`: a page, a health check, a trigger.
    /// Without one they get `426 Upgrade Required`. A panic in `handler`
    /// (likewise in [`check_upgrade`](ServerConfig::check_upgrade) and the
    /// origin and subprotocol callbacks) answers `500` and costs only that
    /// request, on either engine.
    ///
    /// The server applies RFC 9110/9112 before calling it
    /// ([`check_http`](crate::handshake::check_http)): an HTTP/1.1 request
    /// without `Host`, with two, or with an invalid one gets `400`, a
    /// version other than HTTP/1.x `505`, and the handler is not called.
    /// Route on [`Request::path`] (and [`Request::query`]), not on the raw
    /// target: it is the same for `GET /health` and for the absolute form
    /// `GET http://host:port/health` that proxies send.
    ///
    /// `HEAD` comes here too, with `request.method == "HEAD"`
    /// ([`Request::is_head`]): answer it as GET, and the server sends only
    /// the head of the answer (with the `Content-Length` its body has, RFC
    /// 9110 §9.3.2). HEAD must change nothing: a route whose GET triggers
    /// something checks `request.is_head()` and skips the trigger.
    ///
    /// ```
    /// use rfc6455::{HttpResponse, ServerConfig};
    ///
    /// let config = ServerConfig::default().http_handler(|request| match request.path() {
    ///     "/health" => HttpResponse::new(200, "text/plain", "ok\n"),
    ///     "/send" if request.is_head() => HttpResponse::new(200, "text/plain", ""),
    ///     "/send" => {
    ///         let text = request.query_param("msg").unwrap_or_default();
    ///         // ... broadcast `text`: a GET, never a HEAD ...
    ///         HttpResponse::new(200, "text/plain", format!("sent {} bytes\n", text.len()))
    ///     }
    ///     _ => HttpResponse::not_found(),
    /// });
    /// ```
    pub fn http_handler(
        mut self,
        handler: impl Fn(&Request) -> HttpResponse + Send + Sync + 'static,
    ) -> ServerConfig {
        self.http = Some(Arc::new(handler));
        self
    }

    /// Looks at each WebSocket upgrade request before the handshake:
    /// returning a response refuses the upgrade with it (a `404` for a path
    /// that has no WebSocket endpoint, a `401` without credentials), `None`
    /// lets the handshake go on. Origins and subprotocols have their own
    /// hooks in [`ServerConfig::accept`].
    ///
    /// ```
    /// use rfc6455::{HttpResponse, ServerConfig};
    ///
    /// let config = ServerConfig::default().check_upgrade(|request| {
    ///     (request.path() != "/ws").then(HttpResponse::not_found)
    /// });
    /// ```
    pub fn check_upgrade(
        mut self,
        check: impl Fn(&Request) -> Option<HttpResponse> + Send + Sync + 'static,
    ) -> ServerConfig {
        self.upgrade_check = Some(Arc::new(check));
        self
    }

    /// Called with the error a [`serve`](crate::Server::serve) handler
    /// returns (anything but
    /// [`Error::ConnectionClosed`](crate::Error::ConnectionClosed), the
    /// normal end) and the request that opened the connection. Without a
    /// hook (the default) such errors are dropped: the library never writes
    /// to stderr on its own.
    ///
    /// ```
    /// use rfc6455::ServerConfig;
    ///
    /// let config = ServerConfig::default().on_error(|error, request| {
    ///     eprintln!("{}: {error}", request.target);
    /// });
    /// ```
    pub fn on_error(
        mut self,
        hook: impl Fn(&Error, &Request) + Send + Sync + 'static,
    ) -> ServerConfig {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// Whether connections are served over TLS.
    pub fn uses_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .protocol(SizeLimits {
                // The server's budget, unless the limits carry their own.
                budget: self.protocol.budget.clone().or(self.memory_budget.clone()),
                ..self.protocol.clone()
            })
            .keepalive(self.keepalive)
            .close_timeout(self.close_timeout)
            .idle_timeout(self.idle_timeout)
            .deflate(self.accept.deflate)
    }

    // --- permessage-deflate (RFC 7692) ---

    /// Accepts permessage-deflate with `config` (`None` declines it): sets
    /// [`AcceptOptions::deflate`], which also gives each connection its
    /// level and minimum size. Needs the `deflate` feature; without it the
    /// offer is declined as before.
    ///
    /// ```
    /// use rfc6455::{handshake::DeflateConfig, ServerConfig};
    /// let config = ServerConfig::default().deflate(Some(DeflateConfig::default()));
    /// assert!(config.accept.deflate.is_some());
    /// ```
    pub fn deflate(mut self, config: Option<DeflateConfig>) -> ServerConfig {
        self.accept.deflate = config;
        self
    }
}

// --- TLS (issue 12) ---
#[cfg(feature = "tls")]
impl ServerConfig {
    /// Serves `wss://` with these rustls settings (see [`ServerConfig::tls`]).
    pub fn tls(
        mut self,
        config: std::sync::Arc<crate::transport::tls::rustls::ServerConfig>,
    ) -> ServerConfig {
        self.tls = Some(config);
        self
    }

    /// Serves `wss://` with a PEM certificate chain (leaf first) and a PEM
    /// private key (see
    /// [`server_config_from_pem`](crate::transport::tls::server_config_from_pem)).
    pub fn tls_pem(
        self,
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> std::io::Result<ServerConfig> {
        let tls = crate::transport::tls::server_config_from_pem(cert_chain, key)?;
        Ok(self.tls(tls))
    }
}
