//! The hub's seams: a [`Sink`] (a member that takes broadcasts without
//! blocking: the poll engine's `Sender`), a [`Relay`] (a bridge to the
//! hub's peers in other processes) and the [`Inbox`] it delivers through.

use super::history::Log;
use super::inner::Core;
use crate::frame::CloseCode;
use crate::protocol::Message;
use std::sync::{Arc, Weak};

/// A member that takes broadcasts without blocking, so the hub hands each
/// one over directly, with no sender thread in between: the poll engine's
/// `poll::Sender` (feature `mio`) is one, and joins with [`Hub::join_sink`](super::Hub::join_sink).
/// Every method is called under the hub's lock: each must return at once.
pub trait Sink: Send + Sync + 'static {
    /// Takes `message` (shared with the other members: keep the `Arc`), or
    /// says why not. Taken means it will be sent, or the connection ends.
    fn offer(&self, message: &Arc<Message>) -> Result<(), Refused>;
    /// Payload bytes it would take now without refusing (`None`: it cannot
    /// say, and a recovery is offered until it refuses).
    fn room(&self) -> Option<usize> {
        None
    }
    /// Starts closing its connection with `code` (a slow member's 1013).
    fn close(&self, code: CloseCode, reason: &str) {
        let _ = (code, reason);
    }
    /// From now on, a message it took and cannot send must close its
    /// connection with 1013 instead of being dropped: it joined a room with
    /// history, or the hub closes slow members.
    fn close_when_full(&self) {}
    /// Messages it took and then dropped itself (its own slow-client rule).
    fn dropped(&self) -> u64 {
        0
    }
}

/// Why a [`Sink`] did not take a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its queue is full (a slow client): it misses this message.
    Full,
    /// Its connection is over: it leaves the hub.
    Closed,
}

/// Carries a hub's plain broadcasts to its peers in other processes and
/// brings theirs back: the seam a pub/sub bridge plugs into (the `redis`
/// feature's `hub::redis::RedisRelay` is one).
///
/// Every method is called on a connection's thread, some while the hub's
/// lock is held, so each must return at once: queue the work, never wait on
/// the network.
pub trait Relay: Send + Sync + 'static {
    /// Called once, when the relay is attached to a hub: messages from
    /// other processes go to the hub's members through `inbox`.
    fn attach(&self, inbox: Inbox);
    /// A text or binary message this hub has just delivered to its own
    /// members, for everyone (`room` is `None`) or for one room without
    /// history. It is shared with the members' queues: keep the `Arc`
    /// rather than copy a large payload.
    fn publish(&self, room: Option<&str>, message: &Arc<Message>);
    /// `room` (without history) got its first member here: start
    /// listening for it.
    fn room_opened(&self, room: &str);
    /// `room` (without history) lost its last member here: stop listening.
    fn room_closed(&self, room: &str);
    /// The log shared by every process for the rooms with history, if
    /// this relay has one (without it, a hub with history keeps its own in
    /// a [`MemoryLog`](super::MemoryLog), which other processes do not see).
    fn log(&self) -> Option<Arc<dyn Log>> {
        None
    }
}

/// Where a [`Relay`] delivers messages that came from other processes: to
/// the local members only, never back to the relay.
pub struct Inbox {
    pub(super) core: Weak<Core>,
}

impl Inbox {
    /// Delivers `message` to this hub's members (all of them, or those in
    /// `room`); `None` once the hub is gone.
    pub fn deliver(&self, room: Option<&str>, message: Message) -> Option<Delivery> {
        let core = self.core.upgrade()?;
        Some(core.deliver(room, Arc::new(message.into())))
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

/// What one [`Hub::broadcast`](super::Hub::broadcast) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Members the message was queued for.
    pub queued: usize,
    /// Members whose queue was full: they miss this message (or were
    /// closed, under [`SlowPolicy::Close`](super::SlowPolicy::Close)).
    pub dropped: usize,
}
