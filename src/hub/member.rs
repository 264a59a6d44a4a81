//! A client's membership ([`Member`]): its rooms, joined and left while it
//! is connected, and a [`MemberHandle`] to send to it alone.

use super::history::{Since, Ticket};
use super::inner::Core;
use super::rooms::{After, Seat, Target};
use super::senders::Outbound;
use super::{lock, Hub, Refused};
use crate::protocol::PreparedMessage;
use crate::Message;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Membership of one client in a [`Hub`]; the client leaves when this is
/// dropped.
pub struct Member<S = crate::Stream> {
    pub(super) id: u64,
    pub(super) hub: Hub<S>,
    pub(super) dropped: Arc<AtomicU64>,
}

/// Sends to one member through its queue, from anywhere (an answer to its
/// publish, from the thread that learned the outcome). Cloneable; does
/// nothing once the member or the hub is gone.
#[derive(Clone)]
pub struct MemberHandle {
    id: u64,
    core: Weak<Core>,
}

impl<S> Member<S> {
    /// Joins `room` (a member may be in several). In a room with history,
    /// `since` (where the member left off, from a previous connection)
    /// first brings what the history holds after it, announced by the
    /// [`Envelope`](super::Envelope)'s report; without `since` the member starts at the
    /// history's current position, which the report also tells. Returns
    /// `false` if the member is already in the room or has left the hub.
    pub fn join(&self, room: &str, since: Option<Since>) -> bool {
        let core = &self.hub.core;
        let history = core.has_history(room);
        let join = core.next_join.fetch_add(1, Ordering::Relaxed);
        let seat = if history {
            Seat::waiting(join)
        } else {
            Seat::live()
        };
        {
            let mut state = lock(&core.state);
            let Some(first) = state.seat(self.id, room, history, seat) else {
                return false;
            };
            // Under the lock, so that the relay sees opens and closes of a
            // room in the order they happened.
            if let (true, false, Some(relay)) = (first, history, core.relay.get()) {
                relay.room_opened(room);
            }
        }
        if let (true, Some(log)) = (history, core.log()) {
            log.follow(Ticket {
                member: self.id,
                room: room.into(),
                join,
                since,
            });
        }
        true
    }

    /// Leaves `room`; returns whether the member was in it.
    pub fn leave(&self, room: &str) -> bool {
        let core = &self.hub.core;
        let mut after = After::default();
        let mut state = lock(&core.state);
        let left = state.leave_room(self.id, room, &mut after);
        core.settle(state, after);
        left
    }

    /// The rooms this member is in.
    pub fn rooms(&self) -> Vec<String> {
        let state = lock(&self.hub.core.state);
        state.members.get(&self.id).map_or_else(Vec::new, |slot| {
            slot.rooms.iter().map(|r| r.to_string()).collect()
        })
    }

    /// Sends `message` to this member alone, through its queue (the same
    /// bounds as broadcasts).
    pub fn send(&self, message: Message) -> Result<(), Refused> {
        self.handle().send(message)
    }

    /// A handle that sends to this member from anywhere.
    pub fn handle(&self) -> MemberHandle {
        MemberHandle {
            id: self.id,
            core: Arc::downgrade(&self.hub.core),
        }
    }

    /// Broadcasts this client missed because its queue was full.
    pub fn dropped(&self) -> u64 {
        let own = lock(&self.hub.core.state)
            .members
            .get(&self.id)
            .map_or(0, |slot| match &slot.target {
                Target::Sink(sink, _) => sink.dropped(),
                Target::Mailbox(_) => 0,
            });
        self.dropped.load(Ordering::Relaxed) + own
    }

    /// Whether this client is still in the hub (its writes have not failed).
    pub fn is_joined(&self) -> bool {
        lock(&self.hub.core.state).members.contains_key(&self.id)
    }
}

impl MemberHandle {
    /// Sends `message` to the member alone, through its queue; `Closed`
    /// once it has left.
    pub fn send(&self, message: Message) -> Result<(), Refused> {
        let core = self.core.upgrade().ok_or(Refused::Closed)?;
        let outbound = Arc::new(Outbound::new(Arc::new(PreparedMessage::new(message))));
        let rules = core.rules();
        let mut after = After::default();
        let mut state = lock(&core.state);
        if !state.members.contains_key(&self.id) {
            return Err(Refused::Closed);
        }
        let delivery = state.offer_plain(&[self.id], &outbound, &rules, &mut after);
        core.settle(state, after);
        match delivery.queued {
            1 => Ok(()),
            _ if delivery.dropped == 1 => Err(Refused::Full),
            _ => Err(Refused::Closed),
        }
    }
}

impl std::fmt::Debug for MemberHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberHandle")
            .field("id", &self.id)
            .finish()
    }
}

impl<S> Drop for Member<S> {
    fn drop(&mut self) {
        self.hub.core.leave(self.id);
    }
}

impl<S> std::fmt::Debug for Member<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("dropped", &self.dropped())
            .finish()
    }
}
