//! [`HubConfig`] and what it bounds: the queues and the slow-member policy,
//! and the hub's counters ([`HubStats`]).

use super::history::HistoryConfig;
use super::senders::Bounds;
use std::sync::atomic::AtomicU64;

/// Messages a member may have waiting before it counts as slow.
pub const DEFAULT_QUEUE_LEN: usize = 256;
/// Payload bytes a member may have waiting before it counts as slow: a few
/// large messages, not 256 of them (`DEFAULT_QUEUE_LEN` × 64 MiB).
pub const DEFAULT_QUEUE_BYTES: usize = 4 << 20;

/// Why a slow member's connection is closed (RFC 6455 §7.4.1: 1013, try
/// again later; it recovers what it missed when it comes back).
pub(crate) const SLOW_REASON: &str = "too slow: reconnect to catch up";

/// What happens to a member whose queue cannot take a plain broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowPolicy {
    /// It misses that broadcast (counted); later ones reach it if they fit.
    #[default]
    Skip,
    /// It is closed with 1013 (try again later): it misses nothing it gets
    /// told about, and comes back when it can keep up.
    Close,
}

/// Settings of a [`Hub`](super::Hub): `Default`, then by-value setters.
///
/// ```
/// use rfc6455::hub::{HistoryConfig, HubConfig, SlowPolicy};
///
/// let config = HubConfig::default()
///     .queue_bytes(1 << 20)
///     .slow(SlowPolicy::Close)
///     .history(Some(HistoryConfig::new(1000)));
/// assert_eq!(config.queue_len, 256);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Messages a member's queue holds (at least 1; [`DEFAULT_QUEUE_LEN`]).
    pub queue_len: usize,
    /// Payload bytes a member's queue holds ([`DEFAULT_QUEUE_BYTES`]).
    pub queue_bytes: usize,
    /// What a plain broadcast that does not fit does ([`SlowPolicy::Skip`]).
    pub slow: SlowPolicy,
    /// History for rooms (`None`, the default: none, and the hub costs
    /// nothing more than without it).
    pub history: Option<HistoryConfig>,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            queue_len: DEFAULT_QUEUE_LEN,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            slow: SlowPolicy::Skip,
            history: None,
        }
    }
}

impl HubConfig {
    /// Sets [`queue_len`](HubConfig::queue_len).
    pub fn queue_len(mut self, queue_len: usize) -> HubConfig {
        self.queue_len = queue_len.max(1);
        self
    }

    /// Sets [`queue_bytes`](HubConfig::queue_bytes).
    pub fn queue_bytes(mut self, queue_bytes: usize) -> HubConfig {
        self.queue_bytes = queue_bytes;
        self
    }

    /// Sets [`slow`](HubConfig::slow).
    pub fn slow(mut self, slow: SlowPolicy) -> HubConfig {
        self.slow = slow;
        self
    }

    /// Sets [`history`](HubConfig::history).
    pub fn history(mut self, history: Option<HistoryConfig>) -> HubConfig {
        self.history = history;
        self
    }

    pub(super) fn bounds(&self) -> Bounds {
        Bounds {
            len: self.queue_len.max(1),
            bytes: self.queue_bytes,
        }
    }
}

/// The hub's counters ([`HubStats`]).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) accepted: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) unknown: AtomicU64,
    pub(super) recovered: AtomicU64,
    pub(super) unrecoverable: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) slow_closed: AtomicU64,
}

/// What a [`Hub`](super::Hub) has done since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HubStats {
    /// Publishes accepted into a history (retries of one already taken
    /// included).
    pub accepted: u64,
    /// Publishes refused (the publisher was told).
    pub refused: u64,
    /// Publishes whose outcome is unknown (the store did not answer in time).
    pub unknown: u64,
    /// Joins "since O" that got every message after O.
    pub recovered: u64,
    /// Joins "since O" that could not (another epoch, a trimmed gap).
    pub unrecoverable: u64,
    /// Plain broadcasts members missed because their queue was full.
    pub dropped: u64,
    /// Members closed with 1013 because they could not keep up.
    pub slow_closed: u64,
}
