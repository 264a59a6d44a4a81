//! What every thread of the relay needs to talk to Redis: its own
//! threads, reconnection with backoff.

use super::{RedisConfig, Shared, THREAD_STACK};
use std::io;
use std::thread;
use std::time::{Duration, Instant};

pub(super) fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
        .spawn(work)
        .map(drop)
}

/// Exponential backoff with jitter, waiting in slices so that a stopped
/// relay does not linger.
pub(super) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(super) fn new(config: &RedisConfig) -> Backoff {
        Backoff {
            next: config.backoff_min,
            min: config.backoff_min,
            max: config.backoff_max.max(config.backoff_min),
        }
    }

    pub(super) fn reset(&mut self) {
        self.next = self.min;
    }

    /// Sleeps between half and all of the current delay (so that many
    /// processes do not reconnect in step), then doubles it.
    pub(super) fn wait(&mut self, shared: &Shared) {
        let mut random = [0u8; 2];
        let spread = match getrandom::fill(&mut random) {
            Ok(()) => f64::from(u16::from_be_bytes(random)) / f64::from(u16::MAX),
            Err(_) => 1.0,
        };
        let delay = self.next.mul_f64(0.5 + spread / 2.0);
        self.next = (self.next * 2).min(self.max);
        let deadline = Instant::now() + delay;
        while !shared.stopped() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// A link lost after it worked for a while is made again at once; one lost
/// right after connecting (a Redis that accepts, then closes) waits its
/// backoff first, so that the relay never spins.
pub(super) fn short_session_pause(shared: &Shared, session: Instant, backoff: &mut Backoff) {
    if session.elapsed() < shared.config.heartbeat {
        backoff.wait(shared);
    }
}
