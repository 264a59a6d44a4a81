//! Who is in which room, and how a message reaches each member: the hub's
//! state under its one lock.
//!
//! A member has a [`Target`] (a queue drained by the sender threads, or a
//! [`Sink`]) and a seat in each room it joined. In a room with history a
//! seat goes through phases: **waiting** for the log to say where the
//! history stands (nothing is delivered to it: whatever comes before that
//! position is not its), **recovering** (the history read is on its way;
//! live entries after the position are kept), then **live**. The seat
//! remembers the last offset it queued, so an entry at or below it is never
//! queued twice: that is the seam between history and live messages.
//!
//! A recovery does not go into the member's queue at once: the seat holds
//! it as a backlog and the pacer moves it into the queue as the queue has
//! room, so a member can recover far more than its queue holds without
//! counting as slow. Live entries that arrive meanwhile go behind the
//! backlog, up to the queue's length again; past that the member is closed
//! with 1013 and recovers when it comes back.

use super::config::{Counters, SlowPolicy, SLOW_REASON};
use super::history::{Entry, Envelope, Epoch, Joined, Offset, Recovery, Ticket};
use super::senders::{Bounds, Mailbox, Offer, Outbound};
use super::Refused;
use crate::frame::CloseCode;
use crate::protocol::PreparedMessage;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where a member's messages go.
pub(super) enum Target {
    /// A queue the hub's sender threads drain into a blocking writer.
    Mailbox(Arc<Mailbox>),
    /// A [`Sink`](super::Sink) that takes them itself, without blocking,
    /// and the hub's count of what it missed.
    Sink(Box<dyn super::Sink>, Arc<AtomicU64>),
}

/// What offering one message to a member did.
enum Took {
    Yes,
    /// Its queue is full.
    Full,
    /// Its connection is over.
    Gone,
}

impl Target {
    /// Offers `message`; `count` says whether a refusal counts as a miss.
    fn offer(
        &self,
        message: &Arc<Outbound>,
        bounds: Bounds,
        count: bool,
        idle: &mut Vec<Arc<Mailbox>>,
    ) -> Took {
        match self {
            Target::Mailbox(mailbox) => match mailbox.offer(message, bounds, count) {
                Offer::Schedule => {
                    idle.push(Arc::clone(mailbox));
                    Took::Yes
                }
                Offer::Queued => Took::Yes,
                Offer::Full => Took::Full,
                Offer::Closed => Took::Gone,
            },
            Target::Sink(sink, dropped) => match sink.offer(message.message()) {
                Ok(()) => Took::Yes,
                Err(Refused::Full) => {
                    if count {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Took::Full
                }
                Err(Refused::Closed) => Took::Gone,
            },
        }
    }

    /// Whether a message of `len` bytes would be taken now.
    fn fits(&self, bounds: Bounds, len: usize) -> bool {
        match self {
            Target::Mailbox(mailbox) => mailbox.fits(bounds, len),
            Target::Sink(sink, _) => sink.room().is_none_or(|room| room >= len),
        }
    }

    /// Has the connection closed with 1013 (the write may block: a sender
    /// thread does it for a mailbox).
    fn close_slow(&self, idle: &mut Vec<Arc<Mailbox>>) {
        match self {
            Target::Mailbox(mailbox) => {
                if mailbox.close(CloseCode::TRY_AGAIN_LATER, SLOW_REASON) {
                    idle.push(Arc::clone(mailbox));
                }
            }
            Target::Sink(sink, _) => sink.close(CloseCode::TRY_AGAIN_LATER, SLOW_REASON),
        }
    }

    fn set_paced(&self, paced: bool) {
        if let Target::Mailbox(mailbox) = self {
            mailbox.paced.store(paced, Ordering::Relaxed);
        }
    }

    fn is_sink(&self) -> bool {
        matches!(self, Target::Sink(..))
    }
}

pub(super) struct Slot {
    pub(super) target: Target,
    /// Rooms it is in.
    pub(super) rooms: Vec<Arc<str>>,
}

/// A room's members, with their seats.
#[derive(Default)]
pub(super) struct Room {
    pub(super) seats: HashMap<u64, Seat>,
    /// Whether it has history (its entries come from the log).
    pub(super) history: bool,
}

pub(super) struct Seat {
    /// Which join of this member to this room it is (answers to an older
    /// one are ignored).
    join: u64,
    /// The last entry queued to the member, with its epoch.
    last: Option<(Epoch, Offset)>,
    phase: Phase,
    /// Waiting to go into the member's queue, oldest first.
    backlog: VecDeque<Arc<Outbound>>,
    /// How long the backlog may grow before the member counts as slow.
    backlog_cap: usize,
}

enum Phase {
    /// The log has not said where the history stands.
    Waiting,
    /// Positioned at `top`; the history read is on its way. Live entries
    /// after `top` wait here.
    Recovering {
        epoch: Epoch,
        top: Offset,
        live: Vec<Entry>,
    },
    Live,
}

impl Seat {
    pub(super) fn live() -> Seat {
        Seat {
            join: 0,
            last: None,
            phase: Phase::Live,
            backlog: VecDeque::new(),
            backlog_cap: 0,
        }
    }

    pub(super) fn waiting(join: u64) -> Seat {
        Seat {
            phase: Phase::Waiting,
            join,
            ..Seat::live()
        }
    }

    /// Whether `entry` is new to this seat (and marks it queued if so).
    fn take(&mut self, entry: &Entry) -> bool {
        if let Some((epoch, last)) = &self.last {
            if epoch == entry.epoch() && entry.offset() <= *last {
                return false;
            }
        }
        self.last = Some((entry.epoch().clone(), entry.offset()));
        true
    }
}

/// The hub's state: members, rooms, seats being paced.
#[derive(Default)]
pub(super) struct State {
    pub(super) members: HashMap<u64, Slot>,
    pub(super) rooms: HashMap<Arc<str>, Room>,
    /// Seats with a backlog, which the pacer moves into their queues.
    pub(super) pumping: BTreeSet<(u64, Arc<str>)>,
}

/// What the caller of a [`State`] method must do once the lock is released
/// (or may do under it: nothing here blocks).
#[derive(Default)]
pub(super) struct After {
    /// Mailboxes that became non-empty: hand them to the sender threads.
    pub(super) idle: Vec<Arc<Mailbox>>,
    /// Rooms that lost their last member here.
    pub(super) emptied: Vec<(Arc<str>, bool)>,
}

/// What delivering to a room needs from the hub.
pub(super) struct Rules<'a> {
    pub(super) bounds: Bounds,
    pub(super) slow: SlowPolicy,
    pub(super) counters: &'a Counters,
    pub(super) envelope: &'a dyn Envelope,
}

impl Rules<'_> {
    /// The entry as members get it, made once for all of them.
    fn wire(&self, entry: &Entry) -> Arc<Outbound> {
        let wire = entry.wire.get_or_init(|| {
            let message = self.envelope.entry(entry);
            Arc::new(Outbound::new(Arc::new(PreparedMessage::new(message))))
        });
        Arc::clone(wire)
    }

    fn notice(&self, room: &str, joined: &Joined) -> Option<Arc<Outbound>> {
        let message = self.envelope.joined(room, joined)?;
        Some(Arc::new(Outbound::new(Arc::new(PreparedMessage::new(
            message,
        )))))
    }
}

impl State {
    /// Removes a member from the hub and from each of its rooms.
    pub(super) fn remove(&mut self, id: u64, after: &mut After) -> Option<Slot> {
        let slot = self.members.remove(&id)?;
        for room in &slot.rooms {
            self.unseat(id, room, after);
        }
        Some(slot)
    }

    fn unseat(&mut self, id: u64, room: &Arc<str>, after: &mut After) {
        self.pumping.remove(&(id, Arc::clone(room)));
        let Some(seats) = self.rooms.get_mut(room) else {
            return;
        };
        seats.seats.remove(&id);
        if seats.seats.is_empty() {
            let history = seats.history;
            self.rooms.remove(room);
            after.emptied.push((Arc::clone(room), history));
        }
    }

    /// Takes `id` out of `room` only; returns whether it was in it.
    pub(super) fn leave_room(&mut self, id: u64, room: &str, after: &mut After) -> bool {
        let Some(slot) = self.members.get_mut(&id) else {
            return false;
        };
        let Some(at) = slot.rooms.iter().position(|r| &**r == room) else {
            return false;
        };
        let room = slot.rooms.swap_remove(at);
        self.unseat(id, &room, after);
        true
    }

    /// Seats `id` in `room`; returns whether the room is new here, or
    /// `None` if the member is gone or already in it.
    pub(super) fn seat(&mut self, id: u64, room: &str, history: bool, seat: Seat) -> Option<bool> {
        let slot = self.members.get_mut(&id)?;
        if slot.rooms.iter().any(|r| &**r == room) {
            return None;
        }
        let name: Arc<str> = match self.rooms.get_key_value(room) {
            Some((name, _)) => Arc::clone(name),
            None => room.into(),
        };
        slot.rooms.push(Arc::clone(&name));
        if history {
            // The policy for rooms with history: never drop, close.
            if let Target::Sink(sink, _) = &slot.target {
                sink.close_when_full();
            }
        }
        let seats = self.rooms.entry(name).or_default();
        seats.history = history;
        let first = seats.seats.is_empty();
        seats.seats.insert(id, seat);
        Some(first)
    }

    /// Whether `ticket` is the member's current join of its room.
    pub(super) fn is_current(&self, ticket: &Ticket) -> bool {
        self.seat_of(ticket).is_some()
    }

    fn seat_of(&self, ticket: &Ticket) -> Option<&Seat> {
        let seat = self.rooms.get(ticket.room())?.seats.get(&ticket.member)?;
        (seat.join == ticket.join).then_some(seat)
    }

    /// Offers a message that has no offset (a plain broadcast) to `ids`,
    /// applying the slow-member policy.
    pub(super) fn offer_plain(
        &mut self,
        ids: &[u64],
        message: &Arc<Outbound>,
        rules: &Rules<'_>,
        after: &mut After,
    ) -> super::Delivery {
        let mut delivery = super::Delivery::default();
        let mut gone = Vec::new();
        let mut slow = Vec::new();
        for id in ids {
            let Some(slot) = self.members.get(id) else {
                continue;
            };
            match slot.target.offer(
                message,
                rules.bounds,
                rules.slow == SlowPolicy::Skip,
                &mut after.idle,
            ) {
                Took::Yes => delivery.queued += 1,
                Took::Full => {
                    delivery.dropped += 1;
                    if rules.slow == SlowPolicy::Close {
                        slow.push(*id);
                    }
                }
                Took::Gone => gone.push(*id),
            }
        }
        for id in gone {
            self.remove(id, after);
        }
        for id in slow {
            self.close_slow(id, rules, after);
        }
        delivery
    }

    /// Closes a slow member with 1013 and takes it out of the hub.
    fn close_slow(&mut self, id: u64, rules: &Rules<'_>, after: &mut After) {
        if let Some(slot) = self.remove(id, after) {
            slot.target.close_slow(&mut after.idle);
            rules.counters.slow_closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Delivers an entry of a room with history to the room's seats.
    pub(super) fn deliver_entry(
        &mut self,
        entry: &Entry,
        rules: &Rules<'_>,
        after: &mut After,
    ) -> usize {
        let Some(room) = self.rooms.get_mut(entry.room()) else {
            return 0;
        };
        let mut queued = 0;
        let mut gone = Vec::new();
        let mut slow = Vec::new();
        for (id, seat) in room.seats.iter_mut() {
            match &mut seat.phase {
                Phase::Waiting => continue,
                Phase::Recovering { epoch, top, live } => {
                    if entry.epoch() == epoch && entry.offset() <= *top {
                        // Before the seam: the history read has it.
                        continue;
                    }
                    if live.len() >= rules.bounds.len {
                        slow.push(*id);
                    } else {
                        live.push(entry.clone());
                    }
                    continue;
                }
                Phase::Live => {}
            }
            if !seat.take(entry) {
                continue;
            }
            let wire = rules.wire(entry);
            if !seat.backlog.is_empty() {
                if seat.backlog.len() >= seat.backlog_cap {
                    slow.push(*id);
                } else {
                    seat.backlog.push_back(wire);
                }
                continue;
            }
            let Some(slot) = self.members.get(id) else {
                continue;
            };
            match slot
                .target
                .offer(&wire, rules.bounds, false, &mut after.idle)
            {
                Took::Yes => queued += 1,
                // A member of a room with history never misses a message:
                // it is closed, and recovers when it comes back.
                Took::Full => slow.push(*id),
                Took::Gone => gone.push(*id),
            }
        }
        for id in gone {
            self.remove(id, after);
        }
        for id in slow {
            self.close_slow(id, rules, after);
        }
        queued
    }

    /// The log says where `ticket`'s room history stands.
    pub(super) fn positioned(
        &mut self,
        ticket: &Ticket,
        epoch: &Epoch,
        top: Offset,
        rules: &Rules<'_>,
        after: &mut After,
    ) {
        let Some(seat) = self.seat_mut(ticket) else {
            return;
        };
        if !matches!(seat.phase, Phase::Waiting) {
            return;
        }
        if ticket.since().is_some() {
            seat.phase = Phase::Recovering {
                epoch: epoch.clone(),
                top,
                live: Vec::new(),
            };
            return;
        }
        seat.last = Some((epoch.clone(), top));
        seat.phase = Phase::Live;
        let joined = Joined {
            epoch: epoch.clone(),
            offset: top,
            recovery: None,
        };
        if let Some(notice) = rules.notice(ticket.room(), &joined) {
            seat.backlog.push_back(notice);
            seat.backlog_cap = 1 + rules.bounds.len;
            self.pump_one(ticket.member, &ticket.room, rules, after);
        }
    }

    /// The history a returning member missed: it goes to the member first,
    /// then the live entries kept meanwhile, then the member is live.
    pub(super) fn history(
        &mut self,
        ticket: &Ticket,
        entries: Vec<Entry>,
        recovered: bool,
        rules: &Rules<'_>,
        after: &mut After,
    ) {
        let Some(seat) = self.seat_mut(ticket) else {
            return;
        };
        let Phase::Recovering { epoch, top, live } =
            std::mem::replace(&mut seat.phase, Phase::Live)
        else {
            return;
        };
        let counter = if recovered {
            &rules.counters.recovered
        } else {
            &rules.counters.unrecoverable
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| e.epoch() == &epoch && e.offset() <= top)
            .collect();
        let joined = Joined {
            epoch: epoch.clone(),
            offset: top,
            recovery: Some(Recovery {
                recovered,
                missed: entries.len(),
            }),
        };
        seat.last = Some((epoch, top));
        seat.backlog.extend(rules.notice(ticket.room(), &joined));
        seat.backlog.extend(entries.iter().map(|e| rules.wire(e)));
        for entry in &live {
            if seat.take(entry) {
                seat.backlog.push_back(rules.wire(entry));
            }
        }
        seat.backlog_cap = seat.backlog.len() + rules.bounds.len;
        self.pump_one(ticket.member, &ticket.room, rules, after);
    }

    fn seat_mut(&mut self, ticket: &Ticket) -> Option<&mut Seat> {
        let seat = self
            .rooms
            .get_mut(ticket.room())?
            .seats
            .get_mut(&ticket.member)?;
        (seat.join == ticket.join).then_some(seat)
    }

    /// Moves what `id`'s seat in `room` holds into its queue while the
    /// queue has room; keeps the seat with the pacer until it is empty.
    /// Returns whether it is still waiting on a [`Sink`](super::Sink).
    pub(super) fn pump_one(
        &mut self,
        id: u64,
        room: &Arc<str>,
        rules: &Rules<'_>,
        after: &mut After,
    ) -> bool {
        let (Some(slot), Some(seat)) = (
            self.members.get(&id),
            self.rooms.get_mut(room).and_then(|r| r.seats.get_mut(&id)),
        ) else {
            self.pumping.remove(&(id, Arc::clone(room)));
            return false;
        };
        let mut gone = false;
        while let Some(next) = seat.backlog.front() {
            if !slot.target.fits(rules.bounds, next.len()) {
                break;
            }
            match slot
                .target
                .offer(next, rules.bounds, false, &mut after.idle)
            {
                Took::Yes => drop(seat.backlog.pop_front()),
                Took::Full => break,
                Took::Gone => {
                    gone = true;
                    break;
                }
            }
        }
        let key = (id, Arc::clone(room));
        if gone {
            self.remove(id, after);
            return false;
        }
        let waiting = !seat.backlog.is_empty();
        slot.target.set_paced(waiting);
        if waiting {
            self.pumping.insert(key);
            slot.target.is_sink()
        } else {
            self.pumping.remove(&key);
            false
        }
    }

    /// One round of the pacer over every seat with a backlog; returns
    /// whether some wait on a [`Sink`](super::Sink) (which says nothing
    /// when it drains: the pacer looks again soon).
    pub(super) fn pump_all(&mut self, rules: &Rules<'_>, after: &mut After) -> bool {
        let seats: Vec<(u64, Arc<str>)> = self.pumping.iter().cloned().collect();
        let mut sinks = false;
        for (id, room) in seats {
            sinks |= self.pump_one(id, &room, rules, after);
        }
        sinks
    }
}
