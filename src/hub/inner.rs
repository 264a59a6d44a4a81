//! The hub's shared state and what works on it: delivery under the lock,
//! what a change leaves to do, the pacer thread that moves recoveries into
//! members' queues, and the [`Feed`] side the hub gives its log.

use super::config::{Counters, HubConfig, SlowPolicy};
use super::history::{Entry, Envelope, Epoch, Feed, FeedSink, Log, Offset, Plain, Ticket};
use super::memory::MemoryLog;
use super::rooms::{After, Rules, Slot, State, Target};
use super::senders::{Outbound, Pool};
use super::{lock, Delivery, Relay};
use crate::protocol::PreparedMessage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

/// Everything but the writer type, which only [`Hub::join`] needs.
pub(super) struct Core {
    pub(super) me: Weak<Core>,
    pub(super) state: Mutex<State>,
    pub(super) senders: Arc<Pool>,
    pub(super) next_id: AtomicU64,
    pub(super) next_join: AtomicU64,
    pub(super) config: HubConfig,
    pub(super) relay: OnceLock<Arc<dyn Relay>>,
    pub(super) log: OnceLock<Arc<dyn Log>>,
    pub(super) envelope: OnceLock<Arc<dyn Envelope>>,
    /// Held across local delivery and hand-off to the relay, so that every
    /// instance sees this one's plain broadcasts in the order its members did.
    pub(super) order: Mutex<()>,
    pub(super) counters: Arc<Counters>,
    pub(super) pacer: Pacer,
}

impl Drop for Core {
    fn drop(&mut self) {
        self.senders.close();
    }
}

impl Core {
    pub(super) fn has_history(&self, room: &str) -> bool {
        self.config.history.as_ref().is_some_and(|h| h.covers(room))
    }

    pub(super) fn feed(&self) -> Feed {
        Feed {
            sink: Arc::new(CoreFeed(Weak::clone(&self.me))),
        }
    }

    /// The log of rooms with history: the relay's, or one in memory.
    pub(super) fn log(&self) -> Option<&Arc<dyn Log>> {
        let history = self.config.history.as_ref()?;
        Some(self.log.get_or_init(|| {
            let log = Arc::new(MemoryLog::new());
            log.attach(self.feed(), history);
            log
        }))
    }

    pub(super) fn envelope(&self) -> &dyn Envelope {
        &**self.envelope.get_or_init(|| Arc::new(Plain))
    }

    pub(super) fn rules(&self) -> Rules<'_> {
        Rules {
            bounds: self.config.bounds(),
            slow: self.config.slow,
            counters: &self.counters,
            envelope: self.envelope(),
        }
    }

    pub(super) fn add(&self, target: Target) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.insert(id, target);
        id
    }

    pub(super) fn insert(&self, id: u64, target: Target) {
        let slot = Slot {
            target,
            rooms: Vec::new(),
        };
        lock(&self.state).members.insert(id, slot);
    }

    pub(super) fn leave(&self, id: u64) {
        let mut after = After::default();
        let mut state = lock(&self.state);
        state.remove(id, &mut after);
        self.settle(state, after);
    }

    /// Finishes what a change of the state left to do: rooms that emptied
    /// are left (under the lock, so that the relay and the log see opens
    /// and closes in the order they happened; neither blocks), then the
    /// lock is released and the sender threads and the pacer are woken.
    pub(super) fn settle(&self, state: MutexGuard<'_, State>, after: After) {
        for (room, history) in &after.emptied {
            match (history, self.relay.get()) {
                (true, _) => {
                    if let Some(log) = self.log.get() {
                        log.unfollow(room);
                    }
                }
                (false, Some(relay)) => relay.room_closed(room),
                (false, None) => {}
            }
        }
        let pumping = !state.pumping.is_empty();
        drop(state);
        self.senders.schedule(after.idle);
        if pumping {
            self.kick_pacer();
        }
    }

    /// Queues `message` for every member in `room` (every member for
    /// `None`) and wakes the sender threads.
    pub(super) fn deliver(&self, room: Option<&str>, message: Arc<PreparedMessage>) -> Delivery {
        // Framed once here for every member that can take it as is.
        let outbound = Arc::new(Outbound::new(message));
        let rules = self.rules();
        let mut after = After::default();
        let mut state = lock(&self.state);
        let ids: Vec<u64> = match room {
            None => state.members.keys().copied().collect(),
            Some(room) => match state.rooms.get(room) {
                Some(room) => room.seats.keys().copied().collect(),
                None => Vec::new(),
            },
        };
        let delivery = state.offer_plain(&ids, &outbound, &rules, &mut after);
        if rules.slow == SlowPolicy::Skip {
            self.counters
                .dropped
                .fetch_add(delivery.dropped as u64, Ordering::Relaxed);
        }
        self.settle(state, after);
        delivery
    }

    /// Starts the pacer, or tells it to look again.
    pub(super) fn kick_pacer(&self) {
        let mut pacer = lock(&self.pacer.state);
        pacer.kicked = true;
        if pacer.running {
            drop(pacer);
            self.pacer.wake.notify_one();
            return;
        }
        pacer.running = true;
        drop(pacer);
        let core = Weak::clone(&self.me);
        let spawned = std::thread::Builder::new()
            .name("rfc6455-hub-pace".into())
            .stack_size(64 * 1024)
            .spawn(move || pace(&core));
        if spawned.is_err() {
            lock(&self.pacer.state).running = false;
        }
    }
}

/// The thread that moves recoveries into members' queues as they drain.
#[derive(Default)]
pub(super) struct Pacer {
    state: Mutex<PacerState>,
    wake: Condvar,
}

#[derive(Default)]
struct PacerState {
    running: bool,
    kicked: bool,
}

/// How often the pacer looks at [`Sink`]s with a recovery waiting (a sink
/// says nothing when it drains; a mailbox wakes the pacer itself).
const SINK_PACE: Duration = Duration::from_millis(2);

fn pace(core: &Weak<Core>) {
    let mut sinks = false;
    loop {
        {
            let Some(core) = core.upgrade() else { return };
            let mut pacer = lock(&core.pacer.state);
            if !pacer.kicked {
                let wait = if sinks {
                    SINK_PACE
                } else {
                    Duration::from_millis(50)
                };
                pacer = core
                    .pacer
                    .wake
                    .wait_timeout(pacer, wait)
                    .map_or_else(|p| p.into_inner().0, |(g, _)| g);
            }
            pacer.kicked = false;
        }
        let Some(core) = core.upgrade() else { return };
        let rules = core.rules();
        let mut after = After::default();
        let mut state = lock(&core.state);
        sinks = state.pump_all(&rules, &mut after);
        let idle = state.pumping.is_empty();
        drop(state);
        core.senders.schedule(after.idle);
        if idle {
            let mut pacer = lock(&core.pacer.state);
            if !pacer.kicked {
                pacer.running = false;
                return;
            }
        }
    }
}

/// The hub's side of the [`Feed`] it gives its log.
pub(super) struct CoreFeed(Weak<Core>);

impl FeedSink for CoreFeed {
    fn entry(&self, entry: Entry) {
        let Some(core) = self.0.upgrade() else { return };
        let rules = core.rules();
        let mut after = After::default();
        let mut state = lock(&core.state);
        state.deliver_entry(&entry, &rules, &mut after);
        core.settle(state, after);
    }

    fn positioned(&self, ticket: &Ticket, epoch: &Epoch, top: Offset) {
        let Some(core) = self.0.upgrade() else { return };
        let rules = core.rules();
        let mut after = After::default();
        let mut state = lock(&core.state);
        state.positioned(ticket, epoch, top, &rules, &mut after);
        core.settle(state, after);
    }

    fn history(&self, ticket: &Ticket, entries: Vec<Entry>, recovered: bool) {
        let Some(core) = self.0.upgrade() else { return };
        let rules = core.rules();
        let mut after = After::default();
        let mut state = lock(&core.state);
        state.history(ticket, entries, recovered, &rules, &mut after);
        core.settle(state, after);
    }

    fn is_current(&self, ticket: &Ticket) -> bool {
        self.0
            .upgrade()
            .is_some_and(|core| lock(&core.state).is_current(ticket))
    }
}
