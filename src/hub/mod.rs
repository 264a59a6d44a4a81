//! Broadcast to every connected client: a [`Hub`] of members, in rooms,
//! with history for the rooms that need nothing missed.
//!
//! Each member gets a bounded queue, drained into the member's [`Writer`] by
//! a few sender threads shared by all members (or a [`Sink`] that takes
//! messages without blocking: the poll engine's `poll::Sender`).
//! [`Hub::broadcast`] only puts the message on every queue, so it never
//! blocks on a socket, and one slow client never holds up the others: when
//! every sender thread is blocked on clients that do not read, a new one
//! joins them after 20 ms. One broadcast to N clients costs a few thread
//! wake-ups, not N.
//!
//! **Plain broadcasts are at most once**: they reach whoever is a member at
//! that instant. **Slow members**: a member's queue holds at most
//! [`HubConfig::queue_len`] messages and [`HubConfig::queue_bytes`] payload
//! bytes (the batch being written included; a single larger message still
//! goes alone). When a plain broadcast does not fit, the hub's
//! [`SlowPolicy`] decides: `Skip` (the default) and the member misses it,
//! counted in [`Delivery::dropped`], [`Member::dropped`] and
//! [`HubStats::dropped`]; or `Close`, and the member is closed with 1013
//! (try again later). A member of a room with history is always closed
//! rather than skipped: it would otherwise have a hole in its history that
//! nobody could tell. The same holds for `poll::Sender` members, whose own
//! output bound is the poll server's `max_pending`. A client that stops
//! reading altogether fails its next write after the server's write timeout,
//! which takes it out of the hub. A member leaves when its [`Member`] guard
//! is dropped (normally when the connection's handler returns) or when a
//! write to it fails.
//!
//! **Rooms.** A member may be in any number of named rooms, joined and left
//! while it is connected ([`Member::join`], [`Member::leave`]):
//! [`Hub::broadcast_to`] reaches the members of that room only, while
//! [`Hub::broadcast`] still reaches everyone.
//!
//! **History** ([`HubConfig::history`], off by default). Every message of a
//! room with history goes through a [`Log`] that gives it an [`Offset`] in
//! the room's one order, and members get it only from there: the in-process
//! [`MemoryLog`], or Redis Streams shared by every instance (the `redis`
//! feature's `hub::redis::RedisRelay`). A member that joins "since offset O
//! in epoch E" ([`Since`]) gets what the history holds after O, then the
//! live messages, with no gap and no duplicate at the seam; when history
//! cannot cover the gap it is told so ([`Recovery`]). A large recovery is
//! paced through the member's queue as the member reads it. [`Hub::publish`]
//! says what became of each message ([`Outcome`]): accepted (it will reach
//! every member connected or recovering within the history), refused, or
//! unknown, and a retry with the same publish id is taken once. An
//! [`Envelope`] turns entries into what the members get (the application's
//! format, carrying the offset and epoch). The module [`history`] has the
//! types and the [`Log`] seam.
//!
//! **Compression.** A broadcast is queued as one shared
//! [`PreparedMessage`]: members that negotiated permessage-deflate without
//! context takeover share one compressed form per distinct setting, made by
//! the first of them; members with context takeover compress it each for
//! themselves (see [`Hub::broadcast_prepared`]).
//!
//! **Beyond one process.** A [`Relay`] attached with [`Hub::with_relay`]
//! carries every plain broadcast to the hub's peers in other processes and
//! hands theirs back; its [`Relay::log`], if it has one, keeps the rooms
//! with history. The hub tells its relay when a room without history gets
//! its first member and loses its last, so that it listens only for rooms
//! someone here is in.
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

use crate::frame::CloseCode;
use crate::protocol::PreparedMessage;
use crate::{Message, Writer};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

mod config;
pub mod history;
mod inner;
mod member;
mod memory;
#[cfg(feature = "redis")]
pub mod redis;
mod rooms;
mod seams;
mod senders;

// For the poll engine's workers (feature `mio`), which close slow members too.
#[allow(unused_imports)]
pub(crate) use config::SLOW_REASON;
pub use config::{HubConfig, HubStats, SlowPolicy, DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_LEN};
pub use member::{Member, MemberHandle};
pub use memory::MemoryLog;
pub use seams::{Delivery, Inbox, Refused, Relay, Sink};

use history::Done;
pub use history::{
    Entry, Envelope, Epoch, Feed, HistoryConfig, Joined, Log, Offset, Outcome, Plain, Recovery,
    Refusal, Since, Ticket,
};
use inner::{Core, Pacer};
use rooms::Target;
use senders::{Mailbox, Outbound, Pool};

/// A set of connected clients that can all be sent the same message.
/// Cloning gives another handle to the same hub.
pub struct Hub<S = crate::Stream> {
    core: Arc<Core>,
    _writer: std::marker::PhantomData<fn(S)>,
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
        Hub::with_config(HubConfig::default())
    }
}

impl<S> std::fmt::Debug for Hub<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("members", &self.len())
            .field("config", &self.core.config)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the maps inconsistent
    // (each step of a critical section leaves them whole).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S> Hub<S> {
    /// An empty hub with the default [`HubConfig`].
    pub fn new() -> Hub<S> {
        Hub::default()
    }

    /// An empty hub whose members may each have `queue_len` (at least 1)
    /// messages waiting before they count as slow.
    pub fn with_queue_len(queue_len: usize) -> Hub<S> {
        Hub::with_config(HubConfig::default().queue_len(queue_len))
    }

    /// An empty hub with these settings.
    ///
    /// ```
    /// use rfc6455::hub::{HistoryConfig, HubConfig};
    /// use rfc6455::{Hub, Message};
    ///
    /// let hub: Hub = Hub::with_config(HubConfig::default().history(Some(HistoryConfig::new(100))));
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// hub.publish("news", Message::text("first"), Some("id-1"), move |o| tx.send(o).unwrap());
    /// assert!(matches!(rx.recv().unwrap(), rfc6455::hub::Outcome::Accepted { duplicate: false, .. }));
    /// ```
    pub fn with_config(config: HubConfig) -> Hub<S> {
        let core = Arc::new_cyclic(|me: &Weak<Core>| {
            let failed = Weak::clone(me);
            let drained = Weak::clone(me);
            Core {
                me: Weak::clone(me),
                state: Mutex::default(),
                // A member whose write failed leaves the hub.
                senders: Pool::new(
                    Box::new(move |id| {
                        if let Some(core) = failed.upgrade() {
                            core.leave(id);
                        }
                    }),
                    Box::new(move |_| {
                        if let Some(core) = drained.upgrade() {
                            core.kick_pacer();
                        }
                    }),
                ),
                next_id: AtomicU64::new(0),
                next_join: AtomicU64::new(1),
                config: HubConfig {
                    queue_len: config.queue_len.max(1),
                    ..config
                },
                relay: OnceLock::new(),
                log: OnceLock::new(),
                envelope: OnceLock::new(),
                order: Mutex::new(()),
                counters: Arc::default(),
                pacer: Pacer::default(),
            }
        });
        Hub {
            core,
            _writer: std::marker::PhantomData,
        }
    }

    /// How many clients are in the hub.
    pub fn len(&self) -> usize {
        lock(&self.core.state).members.len()
    }

    /// How many clients are in `room`.
    pub fn room_len(&self, room: &str) -> usize {
        lock(&self.core.state)
            .rooms
            .get(room)
            .map_or(0, |r| r.seats.len())
    }

    /// Whether the hub has no clients.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters so far.
    pub fn stats(&self) -> HubStats {
        let c = &self.core.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        HubStats {
            accepted: get(&c.accepted),
            refused: get(&c.refused),
            unknown: get(&c.unknown),
            recovered: get(&c.recovered),
            unrecoverable: get(&c.unrecoverable),
            dropped: get(&c.dropped),
            slow_closed: get(&c.slow_closed),
        }
    }

    /// Whether `room` has history in this hub.
    pub fn has_history(&self, room: &str) -> bool {
        self.core.has_history(room)
    }

    /// Queues `message` for every member and returns at once, at most
    /// once (see the [module docs](self) for what happens to slow
    /// clients). With a [`Relay`], text and binary messages also go to the
    /// hub's peers. Never part of a room's history.
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
    /// [`Relay`], for the members of `room` in the hub's peers). In a room
    /// with history this is [`publish`](Hub::publish) without an id, whose
    /// outcome nobody hears: the `Delivery` is then empty, and the members
    /// get the message when the log hands it back.
    ///
    /// ```
    /// use rfc6455::{Hub, Message};
    ///
    /// let hub: Hub<rfc6455::Stream> = Hub::new();
    /// let delivery = hub.broadcast_to("lobby", Message::Text("anyone?".into()));
    /// assert_eq!((delivery.queued, hub.room_len("lobby")), (0, 0));
    /// ```
    pub fn broadcast_to(&self, room: &str, message: Message) -> Delivery {
        if self.core.has_history(room) {
            self.publish(room, message, None, drop);
            return Delivery::default();
        }
        self.send_out(Some(room), Arc::new(message.into()))
    }

    /// Publishes `message` to `room` and tells `done` what became of it,
    /// once (see [`Outcome`]), from whichever thread learns it: the caller's
    /// for the in-process log, the log's own thread for Redis. Never waits.
    ///
    /// In a room with history the message is appended to the room's log,
    /// and its members (here and in every instance sharing the log) get it
    /// from there, in the log's order. A publish with the same `id` as one
    /// taken within the history's `id_window` is accepted again without
    /// adding anything (`duplicate: true`), so a publisher whose outcome was
    /// [`Outcome::Unknown`] may retry safely. In a room without history it
    /// is [`broadcast_to`](Hub::broadcast_to), and `done` gets
    /// [`Outcome::Sent`].
    pub fn publish(
        &self,
        room: &str,
        message: Message,
        id: Option<&str>,
        done: impl FnOnce(Outcome) + Send + 'static,
    ) {
        if !self.core.has_history(room) {
            let delivery = self.send_out(Some(room), Arc::new(message.into()));
            return done(Outcome::Sent(delivery));
        }
        let counters = Arc::clone(&self.core.counters);
        let done: Done = Box::new(move |outcome| {
            let counter = match &outcome {
                Outcome::Accepted { .. } => &counters.accepted,
                Outcome::Refused(_) => &counters.refused,
                Outcome::Unknown => &counters.unknown,
                Outcome::Sent(_) => return done(outcome),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            done(outcome)
        });
        match self.core.log() {
            Some(log) => log.append(room, Arc::new(message), id, done),
            None => done(Outcome::Refused(Refusal::Closed)),
        }
    }

    /// [`publish`](Hub::publish), waiting at most `timeout` for the outcome
    /// ([`Outcome::Unknown`] past it: the publish may still land). For a
    /// thread that has nothing else to do meanwhile (a threaded server's
    /// HTTP handler); a poll worker uses `publish` and answers later.
    pub fn publish_wait(
        &self,
        room: &str,
        message: Message,
        id: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        let (tx, rx) = mpsc::sync_channel(1);
        self.publish(room, message, id, move |outcome| {
            let _ = tx.send(outcome);
        });
        rx.recv_timeout(timeout).unwrap_or(Outcome::Unknown)
    }

    /// Attaches `relay` (see [`Relay`]); a hub has at most one, so call this
    /// right after creating it. If the hub has history and the relay a
    /// [`log`](Relay::log), that log keeps the rooms with history.
    ///
    /// Panics if the hub already has a relay, or has used its own log.
    pub fn with_relay(self, relay: impl Relay) -> Hub<S> {
        let relay: Arc<dyn Relay> = Arc::new(relay);
        if self.core.relay.set(Arc::clone(&relay)).is_err() {
            panic!("this hub already has a relay");
        }
        if let (Some(history), Some(log)) = (&self.core.config.history, relay.log()) {
            log.attach(self.core.feed(), history);
            if self.core.log.set(log).is_err() {
                panic!("with_relay must come before the hub uses its history");
            }
        }
        relay.attach(Inbox {
            core: Arc::downgrade(&self.core),
        });
        // Rooms that already have members here.
        let rooms: Vec<Arc<str>> = lock(&self.core.state)
            .rooms
            .iter()
            .filter(|(_, r)| !r.history)
            .map(|(name, _)| Arc::clone(name))
            .collect();
        for room in rooms {
            relay.room_opened(&room);
        }
        self
    }

    /// Makes members' messages of rooms with history with `envelope`
    /// (the default, [`Plain`], sends them as published and tells a joining
    /// member nothing). Call it right after creating the hub.
    ///
    /// Panics if the hub has one already.
    pub fn with_envelope(self, envelope: impl Envelope) -> Hub<S> {
        if self.core.envelope.set(Arc::new(envelope)).is_err() {
            panic!("this hub already has an envelope");
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
        if self.core.config.slow == SlowPolicy::Close {
            sink.close_when_full();
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let target = Target::Sink(Box::new(sink), Arc::clone(&dropped));
        let id = self.core.add(target);
        let member = Member {
            id,
            hub: self.clone(),
            dropped,
        };
        if let Some(room) = room {
            member.join(room, None);
        }
        member
    }
}

impl<S: Write + Send + 'static> Hub<S> {
    /// Adds a client, given the [`Writer`] half of its split connection,
    /// with its own queue that the hub's sender threads drain. It is in no
    /// room (it gets every [`broadcast`](Hub::broadcast); [`Member::join`]
    /// puts it in rooms). The client stays in the hub until the returned
    /// [`Member`] is dropped or a write to it fails.
    pub fn join(&self, writer: Writer<S>) -> Member<S> {
        let id = self.core.next_id.fetch_add(1, Ordering::Relaxed);
        let closer = writer.clone();
        let write = move |batch: &[Arc<Outbound>]| senders::write_batch(&writer, batch);
        let close = move |code: CloseCode, reason: &str| drop(closer.close(code, reason));
        let mailbox = Arc::new(Mailbox::new(id, Box::new(write), Box::new(close)));
        let dropped = Arc::clone(&mailbox.dropped);
        self.core.insert(id, Target::Mailbox(mailbox));
        Member {
            id,
            hub: self.clone(),
            dropped,
        }
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
        let member = self.join(writer);
        member.join(room, None);
        member
    }
}
