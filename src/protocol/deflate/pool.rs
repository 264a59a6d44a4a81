//! What permessage-deflate lends: zlib-rs compressors and decompressors,
//! shared by every connection in the process.
//!
//! A zlib-rs compressor is about 257 KiB whatever the window (a fixed 64
//! Ki-entry hash table, and zlib's default memLevel, which flate2 does not
//! expose); a decompressor about 41 KiB (it allocates a 32 KiB window
//! whatever the bits). Owning one of each per connection made a compressed
//! connection cost 239 KiB at rest, 2.3 GiB for 10,000. Instead:
//!
//! - **Idle pools** ([`take`], [`give`], [`take_inflate`], [`give_inflate`]):
//!   engines nobody holds, in a fresh state, at most [`MAX_IDLE`] of each.
//!   A connection without context takeover borrows one for a message.
//! - **The live set** ([`Live`], one [`Clock`] for compressors and one for
//!   decompressors): a connection with context takeover keeps its engine
//!   between messages only while it is among the [`live_contexts`] most
//!   recently active. Admitting one more takes the engine of the least
//!   recently used holder (the CLOCK algorithm: a ring with a "used" bit,
//!   no global lock on a hit). The holder kept its window
//!   ([`History`](super::window::History)), so its next message makes an
//!   engine again, primed with that window: see the module documentation of
//!   [`deflate`](super) for why that is still RFC 7692.
//!
//! So the memory of compression contexts is a process-wide budget, not a
//! per-connection cost: at most `live_contexts` of each kind plus the idle
//! pools, about 9.5 MiB with the defaults, however many connections.

use super::{new_compress, Compress, Decompress};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// At most this many idle compressors, and as many decompressors, are kept
/// (about 8 MiB and 1.3 MiB).
const MAX_IDLE: usize = 32;

/// The default of [`live_contexts`].
pub const DEFAULT_LIVE_CONTEXTS: usize = 32;

static LIVE_CONTEXTS: AtomicUsize = AtomicUsize::new(DEFAULT_LIVE_CONTEXTS);

/// How many connections with context takeover may keep a live compressor
/// between messages, process-wide (and, separately, as many a live
/// decompressor). Default [`DEFAULT_LIVE_CONTEXTS`].
///
/// A connection beyond them keeps only its LZ77 window (2^bits bytes each
/// way, 4 KiB with the default 12-bit windows) and makes a compressor again
/// at its next message, which costs a few microseconds: zeroing the
/// compressor's 128 KiB hash table and hashing the window into it. The
/// compression ratio is the same either way.
pub fn live_contexts() -> usize {
    LIVE_CONTEXTS.load(Ordering::Relaxed)
}

/// Sets [`live_contexts`] for the whole process: higher for many connections
/// that are all busy at once (each live compressor costs about 257 KiB, each
/// live decompressor 41 KiB), lower for less memory. It applies from the next
/// time a connection needs an engine.
///
/// ```
/// use rfc6455::protocol::deflate;
/// deflate::set_live_contexts(256);
/// assert_eq!(deflate::live_contexts(), 256);
/// # deflate::set_live_contexts(deflate::DEFAULT_LIVE_CONTEXTS);
/// ```
pub fn set_live_contexts(limit: usize) {
    LIVE_CONTEXTS.store(limit, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks is valid whatever a panicking holder left.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

static IDLE: Mutex<Vec<(u8, u32, Box<Compress>)>> = Mutex::new(Vec::new());
// Boxed because the encoders and decoders hold them boxed: lending one
// moves a pointer.
#[allow(clippy::vec_box)]
static IDLE_INFLATE: Mutex<Vec<Box<Decompress>>> = Mutex::new(Vec::new());

/// A fresh-state decompressor. Always with a 15-bit window, whatever was
/// agreed: it inflates every stream a smaller window makes (a window only
/// bounds how far back the sender may refer), zlib-rs allocates a 32 KiB
/// window whatever the bits, and only at 15 bits does flate2 reset it in
/// place; at other sizes its reset builds a new state, an allocation per
/// message that measured 17 KiB more RSS per idle connection at 10,000
/// (`.ci/mem10k.sh --deflate-table`). What is given up: a peer that refers
/// further back than the window it agreed, but not further than what the
/// decompressor holds, is not caught (RFC 7692 asks the sender to keep to
/// it; nothing is read outside what the stream and its window filled).
pub(super) fn take_inflate() -> Box<Decompress> {
    let taken = lock(&IDLE_INFLATE).pop();
    taken.unwrap_or_else(|| Box::new(Decompress::new_with_window_bits(false, 15)))
}

/// Returns a decompressor whose state may be anything (it is reset here).
pub(super) fn give_inflate(mut inflate: Box<Decompress>) {
    inflate.reset(false);
    let mut idle = lock(&IDLE_INFLATE);
    if idle.len() < MAX_IDLE {
        idle.push(inflate);
    }
}

/// A fresh-state compressor for `bits` and `level`.
pub(super) fn take(bits: u8, level: u32) -> Box<Compress> {
    let mut idle = lock(&IDLE);
    match idle.iter().position(|&(b, l, _)| b == bits && l == level) {
        Some(i) => idle.swap_remove(i).2,
        None => {
            drop(idle);
            new_compress(bits, level)
        }
    }
}

/// Returns a compressor whose state may be anything (it is reset here).
pub(super) fn give(bits: u8, level: u32, mut deflate: Box<Compress>) {
    deflate.reset();
    let mut idle = lock(&IDLE);
    if idle.len() < MAX_IDLE {
        idle.push((bits, level, deflate));
    }
}

/// An engine held between messages, with what it takes to give it back to
/// an idle pool.
pub(super) trait Engine: Send + Sized + 'static {
    /// The live set this kind of engine is counted in.
    fn clock() -> &'static Mutex<Clock<Self>>;
    /// Back to its idle pool, reset.
    fn retire(self: Box<Self>, key: Key);
}

/// What an engine was made for: `(window bits, level)` for a compressor;
/// nothing for a decompressor (they are all 15-bit).
pub(super) type Key = (u8, u32);

static COMPRESSORS: Mutex<Clock<Compress>> = Mutex::new(Clock::new());
static DECOMPRESSORS: Mutex<Clock<Decompress>> = Mutex::new(Clock::new());

impl Engine for Compress {
    fn clock() -> &'static Mutex<Clock<Compress>> {
        &COMPRESSORS
    }
    fn retire(self: Box<Self>, (bits, level): Key) {
        give(bits, level, self);
    }
}

impl Engine for Decompress {
    fn clock() -> &'static Mutex<Clock<Decompress>> {
        &DECOMPRESSORS
    }
    fn retire(self: Box<Self>, _: Key) {
        give_inflate(self);
    }
}

/// One connection's place in the live set: the engine it holds, if any.
pub(super) struct Slot<T> {
    held: Mutex<Option<(Key, Box<T>)>>,
    /// Set at each use, cleared by the clock hand as it passes: a slot is
    /// evicted only after a whole turn of the hand without a use.
    used: AtomicBool,
    /// Whether the ring has an entry for this slot. Changed only with the
    /// clock's lock held.
    in_ring: AtomicBool,
}

impl<T> Slot<T> {
    fn new(held: Option<(Key, Box<T>)>) -> Arc<Slot<T>> {
        Arc::new(Slot {
            held: Mutex::new(held),
            used: AtomicBool::new(false),
            in_ring: AtomicBool::new(false),
        })
    }
}

/// What [`Clock::admit`] decided.
pub(super) struct Admission<T> {
    /// Whether the slot may keep its engine past this message.
    pub(super) room: bool,
    /// Engines taken from other slots, for the caller to retire once the
    /// clock's lock is released.
    pub(super) evicted: Vec<(Key, Box<T>)>,
}

/// The ring of slots allowed to hold an engine of one kind between messages.
pub(super) struct Clock<T> {
    ring: Vec<Weak<Slot<T>>>,
    hand: usize,
}

impl<T> Clock<T> {
    const fn new() -> Clock<T> {
        Clock {
            ring: Vec::new(),
            hand: 0,
        }
    }

    /// Takes the engine of the slot at `at` (if it is not busy: never wait
    /// for a holder, which may be compressing with its lock held, or waiting
    /// for this clock) and frees its place. `None` if it is busy.
    fn evict(&mut self, at: usize) -> Option<Option<(Key, Box<T>)>> {
        let engine = match self.ring[at].upgrade() {
            Some(victim) => {
                let mut held = victim.held.try_lock().ok()?;
                victim.in_ring.store(false, Ordering::Relaxed);
                held.take()
            }
            // Its connection is gone.
            None => None,
        };
        Some(engine)
    }

    /// Gives `slot` (not in the ring) a place in a ring of at most `limit`,
    /// taking one from the least recently used holder when the ring is full.
    fn admit(&mut self, slot: &Arc<Slot<T>>, limit: usize) -> Admission<T> {
        let mut evicted = Vec::new();
        // Over the limit (it was lowered): shrink from the end.
        while self.ring.len() > limit {
            let last = self.ring.len() - 1;
            match self.evict(last) {
                Some(engine) => {
                    evicted.extend(engine);
                    self.ring.pop();
                }
                None => break,
            }
        }
        let mut place = None;
        if self.ring.len() < limit {
            self.ring.push(Weak::new());
            place = Some(self.ring.len() - 1);
        } else if !self.ring.is_empty() && self.ring.len() == limit {
            // Two turns: the first clears every "used" bit it passes, so
            // the second finds a victim unless every holder is busy now.
            for _ in 0..2 * self.ring.len() {
                let at = self.hand % self.ring.len();
                self.hand = at + 1;
                let recently_used = self.ring[at]
                    .upgrade()
                    .is_some_and(|victim| victim.used.swap(false, Ordering::Relaxed));
                if recently_used {
                    continue;
                }
                if let Some(engine) = self.evict(at) {
                    evicted.extend(engine);
                    place = Some(at);
                    break;
                }
            }
        }
        if let Some(at) = place {
            self.ring[at] = Arc::downgrade(slot);
            slot.in_ring.store(true, Ordering::Relaxed);
        }
        Admission {
            room: place.is_some(),
            evicted,
        }
    }
}

/// A connection's claim to keep an engine of kind `T` between messages.
pub(super) struct Live<T: Engine> {
    slot: Arc<Slot<T>>,
}

impl<T: Engine> Live<T> {
    pub(super) fn new() -> Live<T> {
        Live {
            slot: Slot::new(None),
        }
    }

    /// Whether an engine is held now (between messages: whether this
    /// connection is among the live ones).
    pub(super) fn holds(&self) -> bool {
        lock(&self.slot.held).is_some()
    }

    /// Takes this connection's engine if it kept one (still live, its state
    /// continuing the stream); `None` if it has none (never had one, or it
    /// was evicted): the caller makes one and primes it with its window.
    /// Counts as a use.
    pub(super) fn take(&mut self) -> Option<Box<T>> {
        self.slot.used.store(true, Ordering::Relaxed);
        lock(&self.slot.held).take().map(|(_, engine)| engine)
    }

    /// Puts the engine back after a message: it stays for the next one if
    /// this connection has a place in the live set (asking for one if it
    /// has none, which may evict the least recently used holder), and goes
    /// back to its idle pool otherwise.
    pub(super) fn put(&mut self, key: Key, engine: Box<T>) {
        // The slot's lock first, so no eviction can come between the check
        // and the store. A hit touches nothing shared. Asking the clock with
        // it held cannot deadlock: the clock only ever try-locks slots.
        let mut held = lock(&self.slot.held);
        let keep = self.slot.in_ring.load(Ordering::Relaxed) || {
            let admission = lock(T::clock()).admit(&self.slot, live_contexts());
            for (key, engine) in admission.evicted {
                engine.retire(key);
            }
            admission.room
        };
        if keep {
            *held = Some((key, engine));
        } else {
            drop(held);
            engine.retire(key);
        }
    }

    /// Gives the engine back now (the window is kept by the caller).
    pub(super) fn release(&mut self) {
        let taken = lock(&self.slot.held).take();
        if let Some((key, engine)) = taken {
            engine.retire(key);
        }
    }
}

impl<T: Engine> Drop for Live<T> {
    fn drop(&mut self) {
        // The ring's entry dies with the slot; the engine is lent on.
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy;
    static DUMMIES: Mutex<Clock<Dummy>> = Mutex::new(Clock::new());
    impl Engine for Dummy {
        fn clock() -> &'static Mutex<Clock<Dummy>> {
            &DUMMIES
        }
        fn retire(self: Box<Self>, _: Key) {}
    }

    /// A slot holding an engine.
    fn holder() -> Arc<Slot<Dummy>> {
        Slot::new(Some(((0, 0), Box::new(Dummy))))
    }

    fn holds(slot: &Arc<Slot<Dummy>>) -> bool {
        slot.held.lock().unwrap().is_some()
    }

    #[test]
    fn the_least_recently_used_holder_is_evicted() {
        let mut clock = Clock::new();
        let (a, b, c) = (holder(), holder(), holder());
        assert!(clock.admit(&a, 2).room);
        assert!(clock.admit(&b, 2).room);
        // Both used since the hand last passed: one turn clears them, and
        // the next takes the first it meets unused: `a`.
        a.used.store(true, Ordering::Relaxed);
        b.used.store(true, Ordering::Relaxed);
        let admission = clock.admit(&c, 2);
        assert!(admission.room);
        assert_eq!(admission.evicted.len(), 1);
        assert!(!holds(&a) && !a.in_ring.load(Ordering::Relaxed));
        assert!(holds(&b) && c.in_ring.load(Ordering::Relaxed));
        // A use saves `b` from the hand once: `c`, unused, goes first.
        b.used.store(true, Ordering::Relaxed);
        let d = holder();
        assert_eq!(clock.admit(&d, 2).evicted.len(), 1);
        assert!(!holds(&c) && holds(&b));
    }

    #[test]
    fn a_busy_holder_is_never_waited_for() {
        let mut clock = Clock::new();
        let (a, b) = (holder(), holder());
        assert!(clock.admit(&a, 1).room);
        let busy = a.held.lock().unwrap();
        let admission = clock.admit(&b, 1);
        assert!(!admission.room && admission.evicted.is_empty());
        drop(busy);
        let admission = clock.admit(&b, 1);
        assert!(admission.room && admission.evicted.len() == 1);
    }

    #[test]
    fn a_dropped_connection_frees_its_place() {
        let mut clock = Clock::new();
        let a = holder();
        assert!(clock.admit(&a, 1).room);
        drop(a);
        let admission = clock.admit(&holder(), 1);
        assert!(admission.room && admission.evicted.is_empty());
    }

    #[test]
    fn lowering_the_limit_evicts_down_to_it() {
        let mut clock = Clock::new();
        let slots: Vec<_> = (0..4).map(|_| holder()).collect();
        for s in &slots {
            assert!(clock.admit(s, 4).room);
        }
        // Down to 2: two leave, and one more makes room for the newcomer.
        let admission = clock.admit(&holder(), 2);
        assert!(admission.room);
        assert_eq!(admission.evicted.len(), 3);
        assert_eq!(clock.ring.len(), 2);
        assert_eq!(slots.iter().filter(|s| holds(s)).count(), 1);
        // A limit of 0 keeps nothing.
        let admission = clock.admit(&holder(), 0);
        assert!(!admission.room);
        assert!(clock.ring.is_empty());
    }
}
