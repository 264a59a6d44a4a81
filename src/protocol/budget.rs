//! [`Budget`]: a memory budget shared by many connections, for what the
//! peers make a server hold that no single connection's limit bounds: the
//! bytes of messages partly received (a message of `max_message_size` on
//! each of 10,000 connections is far more memory than a machine has).
//!
//! Every receive path charges it through the core's decoder
//! ([`Incoming`](super::Incoming)): the bytes held for a data message in
//! progress are taken from the budget as they arrive and given back when the
//! message is handed out (or the connection ends). A message whose next
//! bytes the budget cannot take fails its connection with 1013 (try again
//! later): the newest large message pays, the others go on, and nothing ever
//! waits for memory (waiting could deadlock when every connection holds a
//! part and waits for the rest). A whole small frame read in place is never
//! charged: it is not held.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A memory budget in bytes, shared by the connections it is given to
/// (cloning gives another handle to the same budget).
///
/// ```
/// use rfc6455::protocol::Budget;
///
/// let budget = Budget::new(1000);
/// assert!(budget.try_take(600));
/// assert!(!budget.try_take(600)); // would pass the limit: refused, counted
/// budget.give(600);
/// assert!(budget.try_take(600));
/// assert_eq!((budget.used(), budget.refused()), (600, 1));
/// ```
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    limit: usize,
    used: AtomicUsize,
    refused: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes taken now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// How many times bytes were refused (a connection failed with 1013).
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes if the budget has them; counts a refusal if not.
    pub fn try_take(&self, n: usize) -> bool {
        let taken = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n)
                    .filter(|&total| total <= self.inner.limit)
            });
        if taken.is_err() {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
        }
        taken.is_ok()
    }

    /// Gives back `n` bytes taken before.
    pub fn give(&self, n: usize) {
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

impl PartialEq for Budget {
    fn eq(&self, other: &Budget) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Budget {}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.limit())
            .field("used", &self.used())
            .field("refused", &self.refused())
            .finish()
    }
}
