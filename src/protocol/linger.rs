//! [`Linger`]: the one rule for how long a closing connection keeps taking
//! the peer's input, on every engine.
//!
//! Closing a TCP socket with unread input makes the kernel answer with RST,
//! which destroys whatever we had not yet delivered: our close frame, or an
//! HTTP error, still queued behind a backlog of echoes to a peer that
//! streams fast. So once our last bytes are out (and our FIN with them), a
//! connection drains the peer's input until the peer closes too, goes quiet
//! for [`QUIET`], or the close timeout passes. The same rule, with the same
//! numbers, serves a server waiting for the answer to its 1001 at shutdown.
//! The draining itself (reads that throw bytes away) is the engine's.

use std::time::{Duration, Instant};

/// How long a closing peer may stay silent before we stop waiting for it:
/// a live peer answers within a round trip, and a peer that ignores our
/// FIN must cost a short, bounded time, not the whole close timeout.
pub const QUIET: Duration = Duration::from_millis(500);

/// A lingering close in progress: when it gives up on the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linger {
    /// The close timeout: the most the linger lasts, however chatty the peer.
    until: Instant,
    /// When the peer counts as quiet, pushed back by every read that brings
    /// bytes.
    quiet_by: Instant,
}

impl Linger {
    /// A linger that starts at `now` (our last bytes and FIN are out) and
    /// lasts at most `timeout`.
    ///
    /// ```
    /// use rfc6455::protocol::linger::{Linger, QUIET};
    /// use std::time::{Duration, Instant};
    ///
    /// let start = Instant::now();
    /// let mut linger = Linger::new(start, Duration::from_secs(5));
    /// assert_eq!(linger.deadline(), start + QUIET);
    /// linger.on_input(start + QUIET / 2); // the peer is still talking
    /// assert!(!linger.is_over(start + QUIET));
    /// assert!(linger.is_over(start + QUIET / 2 + QUIET));
    /// ```
    pub fn new(now: Instant, timeout: Duration) -> Linger {
        let until = now + timeout;
        Linger {
            until,
            quiet_by: (now + QUIET).min(until),
        }
    }

    /// The peer sent more bytes at `now`: it is not quiet yet.
    pub fn on_input(&mut self, now: Instant) {
        self.quiet_by = (now + QUIET).min(self.until);
    }

    /// When the linger ends unless the peer sends more first.
    pub fn deadline(&self) -> Instant {
        self.quiet_by
    }

    /// Whether the linger is over at `now` (the peer went quiet, or the
    /// close timeout passed).
    pub fn is_over(&self, now: Instant) -> bool {
        now >= self.quiet_by
    }

    /// How long a blocking read may wait at `now` before the linger is
    /// over; `None` once it is.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        (!self.is_over(now)).then(|| self.quiet_by - now)
    }
}
