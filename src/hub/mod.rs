//! Broadcast to every connected client: a [`Hub`] of cloneable sender
//! handles taken from split connections.
//!
//! Each member gets a bounded queue, drained into the member's [`Writer`] by
//! a few sender threads shared by all members. [`Hub::broadcast`] only puts
//! the message on every queue, so it never blocks on a socket, and one slow
//! client never holds up the others: when every sender thread is blocked on
//! clients that do not read, a new one joins them after 20 ms. One broadcast
//! to N clients costs a few thread wake-ups, not N.
//!
//! **Policy for slow clients.** When a member's queue is full, that member
//! misses the message (counted in [`Delivery::dropped`] and
//! [`Member::dropped`]); the others still get it. A client that stops reading
//! altogether fails its next write after the server's write timeout, which
//! takes it out of the hub. A member leaves the hub when its [`Member`] guard
//! is dropped (normally when the connection's handler returns) or when a
//! write to it fails.
//!
//! **Compression.** A broadcast is queued as one shared
//! [`PreparedMessage`]: members that negotiated permessage-deflate without
//! context takeover share one compressed form per distinct setting, made by
//! the first of them; members with context takeover compress it each for
//! themselves (see [`Hub::broadcast_prepared`]).
//!
//! **Rooms.** A member joined with [`Hub::join_room`] is in one named room:
//! [`Hub::broadcast_to`] reaches the members of that room only, while
//! [`Hub::broadcast`] still reaches everyone.
//!
//! **Beyond one process.** A [`Relay`] attached with [`Hub::with_relay`]
//! carries every text and binary broadcast to the hub's peers in other
//! processes and hands theirs back (the `redis` feature's
//! `hub::redis::RedisRelay` does it over Redis pub/sub). The hub tells its
//! relay when a room gets its first member and loses its last, so that it
//! listens only for rooms someone here is in.
//!
//! ```no_run
//! use rfc6455::{Hub, Message, Server, ServerConfig};
//!
//! let hub = Hub::new();
//! let server = Server::bind("127.0.0.1:9002", ServerConfig::default())?;
//! let room = hub.clone();
//! server.serve(move |ws, _request| {
//!     let (mut reader, writer) = ws.split()?;
//!     let _member = room.join(writer); // leaves the hub when dropped
//!     loop {
//!         if let Message::Text(text) = reader.read()? {
//!             room.broadcast(Message::Text(text));
//!         }
//!     }
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::protocol::PreparedMessage;
use crate::{Message, Writer};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

#[cfg(feature = "redis")]
pub mod redis;
mod senders;

use senders::{Mailbox, Offer, Outbound, Pool};

/// Messages a member may have waiting before it starts missing broadcasts.
pub const DEFAULT_QUEUE_LEN: usize = 256;

/// A set of connected clients that can all be sent the same message.
/// Cloning gives another handle to the same hub.
pub struct Hub<S = crate::Stream> {
    core: Arc<Core>,
    _writer: std::marker::PhantomData<fn(S)>,
}

/// Everything but the writer type, which only [`Hub::join`] needs.
struct Core {
    members: Mutex<Members>,
    senders: Arc<Pool>,
    next_id: AtomicU64,
    queue_len: usize,
    relay: OnceLock<Arc<dyn Relay>>,
    /// Held across local delivery and hand-off to the relay, so that every
    /// instance sees this one's broadcasts in the order its members did.
    order: Mutex<()>,
}

impl Drop for Core {
    fn drop(&mut self) {
        self.senders.close();
    }
}

#[derive(Default)]
struct Members {
    slots: HashMap<u64, Slot>,
    /// Members per room, to tell the relay about a room's first and last.
    rooms: HashMap<Arc<str>, usize>,
}

struct Slot {
    target: Target,
    room: Option<Arc<str>>,
}

/// Where a member's broadcasts go.
enum Target {
    /// A queue the hub's sender threads drain into a blocking [`Writer`].
    Mailbox(Arc<Mailbox>),
    /// A [`Sink`] that takes them itself, without blocking.
    Sink(Box<dyn Sink>, Arc<AtomicU64>),
}

/// A member that takes broadcasts without blocking, so the hub hands each
/// one over directly, with no sender thread in between: the poll engine's
/// `poll::Sender` (feature `mio`) is one, and joins with [`Hub::join_sink`].
pub trait Sink: Send + Sync + 'static {
    /// Takes `message` (shared with the other members: keep the `Arc`), or
    /// says why not. Called under the hub's lock: it must return at once.
    fn offer(&self, message: &Arc<Message>) -> Result<(), Refused>;
}

/// Why a [`Sink`] did not take a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its queue is full (a slow client): it misses this message.
    Full,
    /// Its connection is over: it leaves the hub.
    Closed,
}

/// Carries a hub's broadcasts to its peers in other processes and brings
/// theirs back: the seam a pub/sub bridge plugs into (the `redis` feature's
/// `hub::redis::RedisRelay` is one).
///
/// Every method is called on a connection's thread, some while the hub's
/// lock is held, so each must return at once: queue the work, never wait on
/// the network.
pub trait Relay: Send + Sync + 'static {
    /// Called once, when the relay is attached to a hub: messages from
    /// other processes go to the hub's members through `inbox`.
    fn attach(&self, inbox: Inbox);
    /// A text or binary message this hub has just delivered to its own
    /// members, for everyone (`room` is `None`) or for one room.
    /// It is shared with the members' queues: keep the `Arc` rather than
    /// copy a large payload.
    fn publish(&self, room: Option<&str>, message: &Arc<Message>);
    /// `room` got its first member here: start listening for it.
    fn room_opened(&self, room: &str);
    /// `room` lost its last member here: stop listening for it.
    fn room_closed(&self, room: &str);
}

/// Where a [`Relay`] delivers messages that came from other processes: to
/// the local members only, never back to the relay.
pub struct Inbox {
    deliver: Box<DeliverFn>,
}

/// Delivers to a room (or everyone), if the hub still exists.
type DeliverFn = dyn Fn(Option<&str>, Message) -> Option<Delivery> + Send + Sync;

impl Inbox {
    /// Delivers `message` to this hub's members (all of them, or those in
    /// `room`); `None` once the hub is gone.
    pub fn deliver(&self, room: Option<&str>, message: Message) -> Option<Delivery> {
        (self.deliver)(room, message)
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

/// What one [`Hub::broadcast`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Members the message was queued for.
    pub queued: usize,
    /// Members whose queue was full: they miss this message.
    pub dropped: usize,
}

/// Membership of one client in a [`Hub`]; the client leaves when this is
/// dropped.
pub struct Member<S = crate::Stream> {
    id: u64,
    hub: Hub<S>,
    dropped: Arc<AtomicU64>,
}

impl<S> Clone for Hub<S> {
    fn clone(&self) -> Hub<S> {
        Hub {
            core: Arc::clone(&self.core),
            _writer: std::marker::PhantomData,
        }
    }
}

impl<S> Default for Hub<S> {
    fn default() -> Hub<S> {
        Hub::with_queue_len(DEFAULT_QUEUE_LEN)
    }
}

impl<S> std::fmt::Debug for Hub<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("members", &self.len())
            .field("queue_len", &self.core.queue_len)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map inconsistent
    // (every critical section is a single insert, remove or iteration).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Members {
    /// Removes a member; returns the room it leaves empty, if any.
    fn remove(&mut self, id: u64) -> Option<Arc<str>> {
        let room = self.slots.remove(&id)?.room?;
        let count = self.rooms.get_mut(&room)?;
        *count -= 1;
        if *count > 0 {
            return None;
        }
        self.rooms.remove(&room);
        Some(room)
    }
}

impl<S> Hub<S> {
    /// An empty hub whose members may each have [`DEFAULT_QUEUE_LEN`]
    /// messages waiting.
    pub fn new() -> Hub<S> {
        Hub::default()
    }

    /// An empty hub whose members may each have `queue_len` (at least 1)
    /// messages waiting before they miss broadcasts.
    pub fn with_queue_len(queue_len: usize) -> Hub<S> {
        let core = Arc::new_cyclic(|core: &Weak<Core>| {
            let core = Weak::clone(core);
            Core {
                members: Mutex::default(),
                // A member whose write failed leaves the hub.
                senders: Pool::new(Box::new(move |id| {
                    if let Some(core) = core.upgrade() {
                        core.leave(id);
                    }
                })),
                next_id: AtomicU64::new(0),
                queue_len: queue_len.max(1),
                relay: OnceLock::new(),
                order: Mutex::new(()),
            }
        });
        Hub {
            core,
            _writer: std::marker::PhantomData,
        }
    }

    /// How many clients are in the hub.
    pub fn len(&self) -> usize {
        lock(&self.core.members).slots.len()
    }

    /// How many clients are in `room`.
    pub fn room_len(&self, room: &str) -> usize {
        lock(&self.core.members)
            .rooms
            .get(room)
            .copied()
            .unwrap_or(0)
    }

    /// Whether the hub has no clients.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `message` for every member and returns at once; see the
    /// [module docs](self) for what happens to slow clients. With a
    /// [`Relay`], text and binary messages also go to the hub's peers.
    ///
    /// ```
    /// use rfc6455::{Hub, Message, ServerWebSocket};
    ///
    /// let hub: Hub<rfc6455::Stream> = Hub::new();
    /// let delivery = hub.broadcast(Message::Text("nobody here".into()));
    /// assert_eq!(delivery.queued, 0);
    /// # let _: Option<ServerWebSocket> = None;
    /// ```
    pub fn broadcast(&self, message: Message) -> Delivery {
        self.send_out(None, Arc::new(message.into()))
    }

    /// Queues `message` for the members of `room` only (and, with a
    /// [`Relay`], for the members of `room` in the hub's peers).
    ///
    /// ```
    /// use rfc6455::{Hub, Message};
    ///
    /// let hub: Hub<rfc6455::Stream> = Hub::new();
    /// let delivery = hub.broadcast_to("lobby", Message::Text("anyone?".into()));
    /// assert_eq!((delivery.queued, hub.room_len("lobby")), (0, 0));
    /// ```
    pub fn broadcast_to(&self, room: &str, message: Message) -> Delivery {
        self.send_out(Some(room), Arc::new(message.into()))
    }

    /// Attaches `relay` (see [`Relay`]); a hub has at most one, so call this
    /// right after creating it.
    ///
    /// Panics if the hub already has a relay.
    pub fn with_relay(self, relay: impl Relay) -> Hub<S> {
        let relay: Arc<dyn Relay> = Arc::new(relay);
        let core: Weak<Core> = Arc::downgrade(&self.core);
        let inbox = Inbox {
            deliver: Box::new(move |room, message| {
                Some(core.upgrade()?.deliver(room, Arc::new(message.into())))
            }),
        };
        if self.core.relay.set(Arc::clone(&relay)).is_err() {
            panic!("this hub already has a relay");
        }
        relay.attach(inbox);
        // Rooms that already have members here.
        let rooms: Vec<Arc<str>> = lock(&self.core.members).rooms.keys().cloned().collect();
        for room in rooms {
            relay.room_opened(&room);
        }
        self
    }

    /// Like [`broadcast`](Hub::broadcast), with a message prepared by the
    /// caller, who can then see what it cost: members that negotiated
    /// compression without context takeover share one compressed form per
    /// distinct setting ([`PreparedMessage::encodings`]); the others
    /// compress it each for themselves.
    pub fn broadcast_prepared(&self, message: Arc<PreparedMessage>) -> Delivery {
        self.send_out(None, message)
    }

    fn send_out(&self, room: Option<&str>, message: Arc<PreparedMessage>) -> Delivery {
        // One allocation shared by every queue, not one copy per client; it
        // also carries the compressed forms members can share.
        let core = &self.core;
        let Some(relay) = core.relay.get() else {
            return core.deliver(room, message);
        };
        let _order = lock(&core.order);
        let delivery = core.deliver(room, Arc::clone(&message));
        if message.message().is_data() {
            relay.publish(room, message.message());
        }
        delivery
    }
}

impl Core {
    fn leave(&self, id: u64) {
        let mut members = lock(&self.members);
        // Under the lock, like `room_opened` in `add`.
        if let (Some(room), Some(relay)) = (members.remove(id), self.relay.get()) {
            relay.room_closed(&room);
        }
    }

    /// Queues `message` for every member in `room` (every member for
    /// `None`) and wakes the sender threads.
    fn deliver(&self, room: Option<&str>, message: Arc<PreparedMessage>) -> Delivery {
        let mut delivery = Delivery::default();
        let mut idle = Vec::new();
        let mut gone = Vec::new();
        // Framed once here for every member that can take it as is.
        let outbound = Arc::new(Outbound::new(Arc::clone(&message)));
        for (id, slot) in lock(&self.members).slots.iter() {
            if room.is_some() && slot.room.as_deref() != room {
                continue;
            }
            let offer = match &slot.target {
                Target::Mailbox(mailbox) => mailbox.offer(&outbound, self.queue_len),
                Target::Sink(sink, dropped) => match sink.offer(message.message()) {
                    Ok(()) => Offer::Queued,
                    Err(Refused::Full) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        Offer::Full
                    }
                    Err(Refused::Closed) => {
                        gone.push(*id);
                        Offer::Closed
                    }
                },
            };
            match offer {
                Offer::Schedule => {
                    delivery.queued += 1;
                    if let Target::Mailbox(mailbox) = &slot.target {
                        idle.push(Arc::clone(mailbox));
                    }
                }
                Offer::Queued => delivery.queued += 1,
                Offer::Full => delivery.dropped += 1,
                // Its write failed; the pool takes it out of the hub.
                Offer::Closed => {}
            }
        }
        self.senders.schedule(idle);
        for id in gone {
            self.leave(id);
        }
        delivery
    }

    /// Adds a member (see [`Hub::join`] and [`Hub::join_sink`]).
    fn add(&self, room: Option<Arc<str>>, target: impl FnOnce(u64) -> Target) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let target = target(id);
        let mut members = lock(&self.members);
        let first = room.as_ref().is_some_and(|room| {
            let count = members.rooms.entry(Arc::clone(room)).or_insert(0);
            *count += 1;
            *count == 1
        });
        members.slots.insert(
            id,
            Slot {
                target,
                room: room.clone(),
            },
        );
        // Under the lock, so that the relay sees opens and closes of a room
        // in the order they happened.
        if let (true, Some(room), Some(relay)) = (first, &room, self.relay.get()) {
            relay.room_opened(room);
        }
        id
    }
}

impl<S> Hub<S> {
    /// Adds a member that takes broadcasts itself, without blocking (see
    /// [`Sink`]), in `room` if given. It stays until the returned [`Member`]
    /// is dropped or the sink says it is closed.
    ///
    /// ```
    /// use rfc6455::hub::{Hub, Refused, Sink};
    /// use rfc6455::Message;
    /// use std::sync::{mpsc, Arc, Mutex};
    ///
    /// struct Channel(Mutex<mpsc::Sender<Arc<Message>>>);
    /// impl Sink for Channel {
    ///     fn offer(&self, message: &Arc<Message>) -> Result<(), Refused> {
    ///         let sent = self.0.lock().unwrap().send(Arc::clone(message));
    ///         sent.map_err(|_| Refused::Closed)
    ///     }
    /// }
    ///
    /// let hub: Hub = Hub::new();
    /// let (tx, rx) = mpsc::channel();
    /// let _member = hub.join_sink(Some("lobby"), Channel(Mutex::new(tx)));
    /// hub.broadcast_to("lobby", Message::text("hi"));
    /// assert_eq!(*rx.recv().unwrap(), Message::text("hi"));
    /// ```
    pub fn join_sink(&self, room: Option<&str>, sink: impl Sink) -> Member<S> {
        let dropped = Arc::new(AtomicU64::new(0));
        let target = Target::Sink(Box::new(sink), Arc::clone(&dropped));
        let id = self.core.add(room.map(Into::into), |_| target);
        Member {
            id,
            hub: self.clone(),
            dropped,
        }
    }
}

impl<S: Write + Send + 'static> Hub<S> {
    /// Adds a client, given the [`Writer`] half of its split connection,
    /// with its own queue that the hub's sender threads drain. The client
    /// stays in the hub until the returned [`Member`] is dropped or a write
    /// to it fails.
    pub fn join(&self, writer: Writer<S>) -> Member<S> {
        self.add(None, writer)
    }

    /// Like [`join`](Hub::join), with the client in `room`: it gets
    /// [`broadcast_to`](Hub::broadcast_to) that room as well as every
    /// [`broadcast`](Hub::broadcast).
    ///
    /// ```no_run
    /// use rfc6455::{Hub, Message, Server, ServerConfig};
    ///
    /// let hub = Hub::new();
    /// let server = Server::bind("127.0.0.1:9002", ServerConfig::default())?;
    /// server.serve(move |ws, request| {
    ///     let room = request.target.trim_start_matches('/').to_owned();
    ///     let (mut reader, writer) = ws.split()?;
    ///     let _member = hub.join_room(&room, writer);
    ///     loop {
    ///         if let Message::Text(text) = reader.read()? {
    ///             hub.broadcast_to(&room, Message::Text(text));
    ///         }
    ///     }
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_room(&self, room: &str, writer: Writer<S>) -> Member<S> {
        self.add(Some(room.into()), writer)
    }

    fn add(&self, room: Option<Arc<str>>, writer: Writer<S>) -> Member<S> {
        let mut dropped = None;
        let id = self.core.add(room, |id| {
            let write = move |batch: &[Arc<Outbound>]| senders::write_batch(&writer, batch);
            let mailbox = Arc::new(Mailbox::new(id, Box::new(write)));
            dropped = Some(Arc::clone(&mailbox.dropped));
            Target::Mailbox(mailbox)
        });
        let dropped = dropped.unwrap_or_default();
        Member {
            id,
            hub: self.clone(),
            dropped,
        }
    }
}

impl<S> Member<S> {
    /// Broadcasts this client missed because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether this client is still in the hub (its writes have not failed).
    pub fn is_joined(&self) -> bool {
        lock(&self.hub.core.members).slots.contains_key(&self.id)
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
