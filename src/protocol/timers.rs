//! The connection's timers, in the sans-I/O core: keepalive (ping after
//! silence, fail with 1011 without a pong), the idle timeout (close with 1001
//! after silence) and the close timeout (give up on a peer that does not
//! answer our close frame).
//!
//! No clock: like quinn-proto's `poll_timeout()`/`handle_timeout(now)`, the
//! owner passes the time in. [`Timers::deadline`] says when the connection
//! next needs attention; [`Timers::handle_timeout`] acts on what is due. A
//! blocking driver calls it when a read times out; an event loop arms a
//! timer for the deadline.

use super::{Outgoing, WebSocketConfig};
use crate::error::{Error, Result, Timeout};
use crate::frame::{CloseCode, OpCode};
use std::time::{Duration, Instant};

/// The state of a connection's timers: keepalive, idle and close timeouts,
/// driven by the time its owner passes in ([`deadline`](Timers::deadline),
/// [`handle_timeout`](Timers::handle_timeout)).
#[derive(Debug, Clone)]
pub struct Timers {
    keepalive: Option<super::Keepalive>,
    close_timeout: Duration,
    idle_timeout: Option<Duration>,
    last_rx: Instant,
    ping_sent_at: Option<Instant>,
    close_wait_since: Option<Instant>,
    /// The latest time the owner passed in.
    now: Instant,
}

impl Timers {
    /// Timers as `config` sets them, starting at `now`.
    pub fn new(config: &WebSocketConfig, now: Instant) -> Timers {
        Timers {
            keepalive: config.keepalive,
            close_timeout: config.close_timeout,
            idle_timeout: config.idle_timeout,
            last_rx: now,
            ping_sent_at: None,
            close_wait_since: None,
            now,
        }
    }

    /// Whether keepalive or the idle timeout needs to know when bytes
    /// arrive (so a driver can skip reading the clock when not).
    #[inline]
    pub fn watches_silence(&self) -> bool {
        self.keepalive.is_some() || self.idle_timeout.is_some()
    }

    /// Bytes arrived from the peer at `now`.
    #[inline]
    pub fn on_bytes_received(&mut self, now: Instant) {
        self.last_rx = now;
    }

    /// A pong arrived: the keepalive ping in flight is answered.
    pub fn on_pong(&mut self) {
        self.ping_sent_at = None;
    }

    /// Starts the close timeout when our close frame has been sent (a no-op
    /// otherwise, or when it already runs). Returns the timeout if it is over.
    pub fn check_close_wait(&mut self, out: &Outgoing, now: Instant) -> Result<()> {
        self.now = self.now.max(now);
        if !out.close_sent() {
            return Ok(());
        }
        let since = *self.close_wait_since.get_or_insert(now);
        if now.duration_since(since) >= self.close_timeout {
            return Err(close_wait_over(out.is_closed()));
        }
        Ok(())
    }

    /// When the connection next needs [`handle_timeout`](Timers::handle_timeout),
    /// if ever.
    pub fn deadline(&self, out: &Outgoing) -> Option<Instant> {
        if out.close_sent() {
            // A close sent since the timers last looked starts its wait at
            // the next `handle_timeout`: due at once.
            return Some(match self.close_wait_since {
                Some(since) => since + self.close_timeout,
                None => self.now,
            });
        }
        if let Some(k) = self.keepalive {
            return Some(match self.ping_sent_at {
                Some(sent) => sent + k.timeout,
                None => self.last_rx + k.interval,
            });
        }
        self.idle_timeout.map(|idle| self.last_rx + idle)
    }

    /// Acts on whatever is due at `now`: queues a keepalive ping on `out`, or
    /// queues the close frame a timer calls for and returns
    /// [`Error::Timeout`] (or [`Error::ConnectionClosed`] when a client's
    /// wait for the server's TCP close after a complete close handshake is
    /// over: the normal end, RFC 6455 §7.1.1).
    pub fn handle_timeout(&mut self, out: &mut Outgoing, now: Instant) -> Result<()> {
        self.now = self.now.max(now);
        if let Some(since) = self.close_wait_since {
            if now.duration_since(since) >= self.close_timeout {
                return Err(close_wait_over(out.is_closed()));
            }
            return Ok(());
        }
        if out.close_sent() {
            return self.check_close_wait(out, now);
        }
        let Some(keepalive) = self.keepalive else {
            if let Some(idle) = self.idle_timeout {
                if now.duration_since(self.last_rx) >= idle {
                    out.close_with(CloseCode::GOING_AWAY, "idle timeout");
                    return Err(Error::Timeout(Timeout::Idle));
                }
            }
            return Ok(());
        };
        match self.ping_sent_at {
            Some(sent) if now.duration_since(sent) >= keepalive.timeout => {
                out.close_with(CloseCode::INTERNAL_ERROR, "keepalive ping timeout");
                Err(Error::Timeout(Timeout::Keepalive))
            }
            None if now.duration_since(self.last_rx) >= keepalive.interval => {
                self.ping_sent_at = Some(now);
                out.encode_frame(OpCode::Ping, true, b"keepalive")
            }
            _ => Ok(()),
        }
    }
}

/// The close timeout ran out: with the close handshake done (a client
/// waiting for the server to close TCP, RFC 6455 §7.1.1) that is the normal
/// end; without the peer's close frame it is a timeout.
fn close_wait_over(handshake_done: bool) -> Error {
    if handshake_done {
        Error::ConnectionClosed
    } else {
        Error::Timeout(Timeout::Close)
    }
}
