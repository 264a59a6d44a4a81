//! What a connection is configured with: limits on what the peer may send
//! ([`SizeLimits`]) and the timers ([`WebSocketConfig`]), the same for every
//! engine that drives the core.

use super::Budget;
use crate::handshake::DeflateConfig;
use std::time::Duration;

/// Limits on what a peer may send. A frame is checked against
/// [`max_frame_size`](SizeLimits::max_frame_size) from its declared length, before
/// any of its payload is buffered (RFC 6455 §10.4); a message against
/// [`max_message_size`](SizeLimits::max_message_size) as what the application
/// would receive grows (after any extension has decoded it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SizeLimits {
    /// The largest frame payload accepted; larger ones fail the connection
    /// with 1009. Default 16 MiB (the largest Autobahn case message).
    pub max_frame_size: usize,
    /// The largest message (all fragments together) accepted; larger ones
    /// fail the connection with 1009. Default 64 MiB.
    pub max_message_size: usize,
    /// A memory budget shared with other connections for the bytes of data
    /// messages partly received (see [`Budget`]): a message whose next bytes
    /// it cannot take fails its connection with 1013. Default none here (a
    /// server sets one: [`ServerConfig::memory_budget`](crate::ServerConfig::memory_budget)).
    pub budget: Option<Budget>,
}

impl Default for SizeLimits {
    fn default() -> SizeLimits {
        SizeLimits {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            budget: None,
        }
    }
}

impl SizeLimits {
    /// Sets [`SizeLimits::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> SizeLimits {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`SizeLimits::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> SizeLimits {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`SizeLimits::budget`].
    pub fn budget(mut self, budget: Option<Budget>) -> SizeLimits {
        self.budget = budget;
        self
    }
}

/// Keepalive: ping after `interval` of silence from the peer, fail the
/// connection (1011) if no pong arrives within `timeout`. Servers have it on
/// by default (20 s / 20 s); clients can turn it on too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before a ping is sent.
    pub interval: Duration,
    /// How long to wait for the pong.
    pub timeout: Duration,
}

impl Keepalive {
    /// A keepalive that pings after `interval` of silence and gives up
    /// `timeout` after the ping.
    ///
    /// ```
    /// use rfc6455::Keepalive;
    /// use std::time::Duration;
    /// let k = Keepalive::new(Duration::from_secs(20), Duration::from_secs(20));
    /// assert_eq!(k.interval, k.timeout);
    /// ```
    pub fn new(interval: Duration, timeout: Duration) -> Keepalive {
        Keepalive { interval, timeout }
    }
}

/// Everything a connection needs besides its role: limits and timers. The
/// timers live in the sans-I/O core ([`Timers`](super::Timers)), so the
/// blocking [`WebSocket`](crate::WebSocket) and an embedder's own event loop
/// get keepalive, idle and close timeouts from the same code.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebSocketConfig {
    /// Limits enforced on what the peer sends.
    pub protocol: SizeLimits,
    /// Keepalive pings; `None` (the default for a bare connection) disables them.
    pub keepalive: Option<Keepalive>,
    /// How long to wait for the peer's close frame (or, for a client, the
    /// server's TCP close) after sending ours. Default 5 s.
    pub close_timeout: Duration,
    /// With keepalive off: close (1001 "idle timeout") after this much
    /// silence from the peer. `None` (the default) waits forever.
    pub idle_timeout: Option<Duration>,
    /// permessage-deflate (RFC 7692): offered by a client, accepted by a
    /// server, and the level and minimum size a connection compresses with.
    /// `None` (the default): no compression. Needs the `deflate` feature;
    /// without it nothing is negotiated.
    pub deflate: Option<DeflateConfig>,
}

impl Default for WebSocketConfig {
    fn default() -> WebSocketConfig {
        WebSocketConfig {
            protocol: SizeLimits::default(),
            keepalive: None,
            close_timeout: Duration::from_secs(5),
            idle_timeout: None,
            deflate: None,
        }
    }
}

impl WebSocketConfig {
    /// Sets the protocol limits.
    pub fn protocol(mut self, protocol: SizeLimits) -> WebSocketConfig {
        self.protocol = protocol;
        self
    }

    /// Sets [`SizeLimits::max_message_size`] of the protocol limits.
    pub fn max_message_size(mut self, bytes: usize) -> WebSocketConfig {
        self.protocol.max_message_size = bytes;
        self
    }

    /// Sets [`SizeLimits::max_frame_size`] of the protocol limits.
    pub fn max_frame_size(mut self, bytes: usize) -> WebSocketConfig {
        self.protocol.max_frame_size = bytes;
        self
    }

    /// Sets the keepalive.
    pub fn keepalive(mut self, keepalive: Option<Keepalive>) -> WebSocketConfig {
        self.keepalive = keepalive;
        self
    }

    /// Sets the close timeout.
    pub fn close_timeout(mut self, timeout: Duration) -> WebSocketConfig {
        self.close_timeout = timeout;
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> WebSocketConfig {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`WebSocketConfig::deflate`].
    ///
    /// ```
    /// use rfc6455::protocol::{DeflateConfig, WebSocketConfig};
    /// let config = WebSocketConfig::default().deflate(Some(DeflateConfig::client()));
    /// assert!(config.deflate.is_some());
    /// ```
    pub fn deflate(mut self, config: Option<DeflateConfig>) -> WebSocketConfig {
        self.deflate = config;
        self
    }

    /// The stream read timeout that serves as a blocking driver's clock:
    /// often enough for keepalive and the idle timeout, and never longer
    /// than the close timeout, so that waiting for a peer's close (or, for a
    /// client, the server's TCP close) is always bounded.
    pub(crate) fn read_tick(&self) -> Duration {
        let mut tick = self.close_timeout;
        if let Some(idle) = self.idle_timeout {
            tick = tick.min(idle);
        }
        if let Some(k) = self.keepalive {
            tick = tick.min(k.interval.min(k.timeout));
        }
        tick.max(Duration::from_millis(10))
    }
}
