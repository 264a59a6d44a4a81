//! A [`Relay`] over Redis (feature `redis`): hubs in several server
//! processes, each with its own clients, behave as one. Rooms without
//! history go over pub/sub, at most once; rooms with history live in Redis
//! Streams, one history and one order for every instance.
//!
//! ```no_run
//! use rfc6455::hub::redis::RedisRelay;
//! use rfc6455::{Hub, Message, Server, ServerConfig};
//!
//! let relay = RedisRelay::open("redis://127.0.0.1:6379/")?; // connects in the background
//! let hub = Hub::new().with_relay(relay.clone());
//! let server = Server::bind("127.0.0.1:9002", ServerConfig::default())?;
//! server.serve(move |ws, _request| {
//!     let (mut reader, writer) = ws.split()?;
//!     let _member = hub.join_room("lobby", writer);
//!     loop {
//!         if let Message::Text(text) = reader.read()? {
//!             // This process's members get it at once; every other
//!             // process's members in "lobby" get it through Redis.
//!             hub.broadcast_to("lobby", Message::Text(text));
//!         }
//!     }
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The files: `pubsub.rs` (the publisher thread, which also appends to
//! streams, and the subscriber), `streams.rs` (the [`Log`] of rooms with
//! history: scripts, the live reader, history reads), `frame.rs` (the
//! pub/sub frame), `link.rs` (threads, reconnection).
//!
//! # Rooms without history: pub/sub, at most once
//!
//! **Channels.** Broadcasts to everyone go on `PREFIX:all`, broadcasts to a
//! room on `PREFIX:room:NAME` (the prefix is `rfc6455` unless
//! [`RedisConfig::prefix`] says otherwise). A process subscribes to a room's
//! channel while it has a member in that room. Each message is one
//! binary-safe frame (`frame.rs`); a process skips its own frames (its
//! members already have them) and counts frames it cannot decode in
//! [`RelayStats::malformed`].
//!
//! **Ordering.** Messages from one process reach every process in the order
//! that process broadcast them. Across processes there is no common order.
//!
//! **Delivery is at most once**, as Redis pub/sub is. Nothing is replayed
//! after an outage; instead the relay counts what was lost ([`RelayStats`]):
//! broadcasts it could not hand to Redis (`not_published`: Redis down, or
//! more queued than [`RedisConfig::queue_len`] because Redis is slow), and
//! messages other processes published that never arrived here (`missed`,
//! found from gaps in their sequence numbers, so a loss is counted when the
//! next message from the same process on the same channel arrives).
//!
//! # Rooms with history: Redis Streams
//!
//! When the hub has history ([`HubConfig::history`](crate::hub::HubConfig)),
//! the relay is also its [`Log`]. A room's history is the stream
//! `PREFIX:log:{NAME}`, its epoch and position the hash `PREFIX:meta:{NAME}`
//! (same hash tag, so both live on one node of a cluster), publish ids
//! `PREFIX:id:{NAME}:ID` with the history's `id_window` as their expiry.
//!
//! - **Append**: one Lua script checks the epoch (a stream or hash that is
//!   gone means the history was reset: a new epoch, from the publishing
//!   process), skips a publish id seen before, and adds the entry with the
//!   explicit ID `MILLISECONDS-SEQUENCE` (Redis's clock, never back; the
//!   sequence one more than the last), trimming with `MAXLEN ~` and
//!   `MINID ~` (so "at least N"). The script's answer is the outcome:
//!   accepted with its offset; an error reply (`OOM` under `maxmemory`) is
//!   refused; no answer within [`RedisConfig::io_timeout`] is unknown.
//!   Appends wait in the same bounded queue as broadcasts and go out in the
//!   same pipelines; while the link is down they are refused at once.
//! - **Live**: one reader thread `XREAD BLOCK`s on every room with a member
//!   here, from each room's cursor, and hands entries to the hub in stream
//!   order; an instance's own publishes come back this way too, so every
//!   instance and every member sees one order. After any disconnect it goes
//!   on from its cursors (so what was published meanwhile is delivered), and
//!   it checks each room's epoch: a room whose history was reset is read
//!   from the start of its new epoch.
//! - **Joins**: the reader tells the hub where the room stands (its cursor,
//!   or for a room new here the stream's last ID, where its cursor then
//!   starts), and a history thread reads what a returning member missed,
//!   up to that position, with `XRANGE`, on its own connection.
//!
//! # Faults
//!
//! Four threads talk to Redis: the publisher (a broadcast or append never
//! waits on Redis: when the queue is full the message only goes to local
//! members, or the append is refused), the subscriber, the stream reader
//! and the history reader (the last two only once history is used). Each
//! reconnects on its own with exponential backoff and jitter; the
//! subscriber re-subscribes every channel it needs. A link that goes quiet
//! is caught by a heartbeat the process publishes to itself
//! ([`RedisConfig::heartbeat`]), and the reader's `BLOCK` is that long.

use super::history::{Done, Feed, HistoryConfig, Log, Outcome, Refusal, Ticket};
use super::{Inbox, Relay};
use crate::Message;
use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

mod frame;
mod link;
mod pubsub;
mod streams;

use link::spawn;

/// Publishes and appends sent to Redis in one pipelined round trip, at most.
const MAX_BATCH: usize = 256;
/// Per channel, how many publishing processes are tracked for `missed`
/// before the table is started afresh (processes that restarted leave
/// entries behind).
const MAX_TRACKED: usize = 1024;
/// Stack of the relay's threads.
const THREAD_STACK: usize = 256 * 1024;

/// Settings of a [`RedisRelay`]: `Default`, then by-value setters.
///
/// ```
/// use rfc6455::hub::redis::RedisConfig;
/// use std::time::Duration;
///
/// let config = RedisConfig::default()
///     .prefix("chat")
///     .heartbeat(Duration::from_millis(500));
/// assert_eq!(config.prefix, "chat");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Channel and key names start with this and a colon (`rfc6455`):
    /// processes with the same prefix on the same Redis form one hub.
    pub prefix: String,
    /// Broadcasts and appends waiting to be sent before new ones are
    /// counted in `not_published` (or refused, for appends) instead (4096).
    pub queue_len: usize,
    /// Time allowed to connect to Redis (2 s).
    pub connect_timeout: Duration,
    /// Time allowed for one exchange with Redis before the link is
    /// dropped and made again (5 s).
    pub io_timeout: Duration,
    /// How often the process publishes a heartbeat to itself (1 s); a
    /// subscription that hears nothing for three of these reconnects.
    pub heartbeat: Duration,
    /// First wait before reconnecting (100 ms); it doubles at each failure.
    pub backoff_min: Duration,
    /// Longest wait between reconnection attempts (5 s).
    pub backoff_max: Duration,
    /// Stream entries read per round trip by the live reader and by each
    /// history read (1,000).
    pub read_batch: usize,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            prefix: "rfc6455".into(),
            queue_len: 4096,
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            read_batch: 1000,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl RedisConfig {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> RedisConfig {
                    self.$name = value.into();
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`prefix`](RedisConfig::prefix).
    prefix: &str,
    /// Sets [`queue_len`](RedisConfig::queue_len) (at least 1).
    queue_len: usize,
    /// Sets [`connect_timeout`](RedisConfig::connect_timeout).
    connect_timeout: Duration,
    /// Sets [`io_timeout`](RedisConfig::io_timeout).
    io_timeout: Duration,
    /// Sets [`heartbeat`](RedisConfig::heartbeat).
    heartbeat: Duration,
    /// Sets [`backoff_min`](RedisConfig::backoff_min).
    backoff_min: Duration,
    /// Sets [`backoff_max`](RedisConfig::backoff_max).
    backoff_max: Duration,
    /// Sets [`read_batch`](RedisConfig::read_batch).
    read_batch: usize,
}

/// What a [`RedisRelay`] has done since it was opened; see the
/// [module docs](self) for what is lost when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RelayStats {
    /// Broadcasts published to Redis pub/sub.
    pub published: u64,
    /// Broadcasts that only local members got: Redis was unreachable, or
    /// the publish queue was full.
    pub not_published: u64,
    /// Pub/sub messages from other processes delivered to local members.
    pub received: u64,
    /// Pub/sub messages other processes published that never arrived here
    /// (lost while the subscription was down).
    pub missed: u64,
    /// Frames on our channels (or stream entries) that were not ours to
    /// decode.
    pub malformed: u64,
    /// Times the subscription or the stream reader came back after it had
    /// been lost.
    pub reconnects: u64,
    /// Entries appended to room streams (publish-id retries included).
    pub appended: u64,
    /// Stream entries read and handed to the hub.
    pub entries: u64,
    /// Room histories found reset (a new epoch) while followed here.
    pub resets: u64,
}

/// Hands a [`Hub`](crate::Hub)'s broadcasts to Redis and delivers other
/// processes' to its members; with history, it is also the hub's [`Log`].
/// Cloning gives another handle to the same relay; its threads end when the
/// last handle (the hub holds one) is dropped.
#[derive(Clone)]
pub struct RedisRelay {
    shared: Arc<Shared>,
    _stop: Arc<StopOnDrop>,
}

struct Shared {
    client: ::redis::Client,
    config: RedisConfig,
    instance: u64,
    prefix: String,
    all_channel: String,
    room_prefix: String,
    control_channel: String,
    queue: SyncSender<Outgoing>,
    inbox: OnceLock<Inbox>,
    /// Rooms without history with a member here; the subscriber follows it.
    rooms: Mutex<BTreeSet<String>>,
    rooms_changed: AtomicBool,
    publisher_up: AtomicBool,
    subscriber_up: AtomicBool,
    stop: AtomicBool,
    /// Rooms with history: set when the hub attaches its history.
    streams: OnceLock<streams::Streams>,
    published: AtomicU64,
    not_published: AtomicU64,
    received: AtomicU64,
    missed: AtomicU64,
    malformed: AtomicU64,
    reconnects: AtomicU64,
    appended: AtomicU64,
    entries: AtomicU64,
    resets: AtomicU64,
    /// Numbers this process's own append ids.
    next_append: AtomicU64,
}

enum Outgoing {
    Publish {
        channel: String,
        message: Arc<Message>,
    },
    /// Append to a room's stream, and say how it went.
    Append(Append),
    /// Publish to our own control channel (so that the subscriber wakes up
    /// and follows a change of rooms, or notices that it must stop), and
    /// add to our wake stream (so that the stream reader does).
    Wake,
}

/// One append on its way to Redis.
struct Append {
    room: String,
    message: Arc<Message>,
    /// The publisher's id, or one of ours (`internal`), so that an append
    /// whose answer was lost with the link can be sent again safely.
    id: String,
    internal: bool,
    /// Sent once already, on a link that failed before answering.
    resent: bool,
    done: Done,
}

struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        let _ = self.0.queue.try_send(Outgoing::Wake);
        if let Some(streams) = self.0.streams.get() {
            streams.stop();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is one collection operation: a panic cannot
    // leave it half-changed.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RedisRelay {
    /// A relay to the Redis at `url` (`redis://HOST:PORT/`) with the
    /// default [`RedisConfig`]. See [`open_with`](RedisRelay::open_with).
    pub fn open(url: &str) -> io::Result<RedisRelay> {
        RedisRelay::open_with(url, RedisConfig::default())
    }

    /// A relay to the Redis at `url`. It connects in the background and
    /// keeps trying while Redis is unreachable, so this fails only on a URL
    /// that cannot be used or when its threads cannot be started.
    ///
    /// ```
    /// use rfc6455::hub::redis::{RedisConfig, RedisRelay};
    ///
    /// // Nothing listens on port 1: the relay still opens, and waits.
    /// let relay = RedisRelay::open_with("redis://127.0.0.1:1/", RedisConfig::default())?;
    /// assert!(!relay.is_connected());
    /// assert!(RedisRelay::open("http://example.com/").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open_with(url: &str, config: RedisConfig) -> io::Result<RedisRelay> {
        let client = ::redis::Client::open(url)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let instance = u64::from_be_bytes(random);
        let (queue, outgoing) = mpsc::sync_channel(config.queue_len.max(1));
        let prefix = config.prefix.clone();
        let shared = Arc::new(Shared {
            client,
            all_channel: format!("{prefix}:all"),
            room_prefix: format!("{prefix}:room:"),
            control_channel: format!("{prefix}:control:{instance:016x}"),
            prefix,
            config,
            instance,
            queue,
            inbox: OnceLock::new(),
            rooms: Mutex::default(),
            rooms_changed: AtomicBool::new(false),
            publisher_up: AtomicBool::new(false),
            subscriber_up: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            streams: OnceLock::new(),
            published: AtomicU64::new(0),
            not_published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            appended: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            next_append: AtomicU64::new(0),
        });
        let publisher = Arc::clone(&shared);
        spawn("rfc6455-redis-pub", move || {
            pubsub::run_publisher(&publisher, outgoing)
        })?;
        let subscriber = Arc::clone(&shared);
        spawn("rfc6455-redis-sub", move || {
            pubsub::run_subscriber(&subscriber)
        })?;
        Ok(RedisRelay {
            _stop: Arc::new(StopOnDrop(Arc::clone(&shared))),
            shared,
        })
    }

    /// Whether the links to Redis are up: broadcasts are being published
    /// and other processes' are being heard (and, once history is used,
    /// streams are being read).
    pub fn is_connected(&self) -> bool {
        let s = &self.shared;
        s.publisher_up.load(Ordering::Relaxed)
            && s.subscriber_up.load(Ordering::Relaxed)
            && s.streams.get().is_none_or(|streams| streams.is_up())
    }

    /// Waits up to `timeout` for [`is_connected`](RedisRelay::is_connected).
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_connected() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// This process's random id, carried in every frame it publishes.
    pub fn instance_id(&self) -> u64 {
        self.shared.instance
    }

    /// The counters so far.
    pub fn stats(&self) -> RelayStats {
        let s = &self.shared;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RelayStats {
            published: get(&s.published),
            not_published: get(&s.not_published),
            received: get(&s.received),
            missed: get(&s.missed),
            malformed: get(&s.malformed),
            reconnects: get(&s.reconnects),
            appended: get(&s.appended),
            entries: get(&s.entries),
            resets: get(&s.resets),
        }
    }
}

impl std::fmt::Debug for RedisRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRelay")
            .field("instance", &format_args!("{:016x}", self.shared.instance))
            .field("connected", &self.is_connected())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Relay for RedisRelay {
    fn attach(&self, inbox: Inbox) {
        let _ = self.shared.inbox.set(inbox);
    }

    fn publish(&self, room: Option<&str>, message: &Arc<Message>) {
        let s = &self.shared;
        if !s.publisher_up.load(Ordering::Relaxed) {
            // The link is down: rather than publish it late, after the
            // reconnection, the message stays local.
            s.not_published.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let channel = match room {
            None => s.all_channel.clone(),
            Some(room) => s.room_channel(room),
        };
        let message = Arc::clone(message);
        match s.queue.try_send(Outgoing::Publish { channel, message }) {
            Ok(()) => {}
            // Redis is slow or away: the message stays local.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                s.not_published.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn room_opened(&self, room: &str) {
        lock(&self.shared.rooms).insert(room.to_owned());
        self.shared.wake();
    }

    fn room_closed(&self, room: &str) {
        lock(&self.shared.rooms).remove(room);
        self.shared.wake();
    }

    fn log(&self) -> Option<Arc<dyn Log>> {
        Some(Arc::new(self.clone()))
    }
}

/// The rooms with history (see the [module docs](self)).
impl Log for RedisRelay {
    fn attach(&self, feed: Feed, config: &HistoryConfig) {
        let streams = streams::Streams::new(feed, config.clone());
        if self.shared.streams.set(streams).is_ok() {
            streams::start(&self.shared);
        }
    }

    fn append(&self, room: &str, message: Arc<Message>, id: Option<&str>, done: Done) {
        let s = &self.shared;
        if !s.publisher_up.load(Ordering::Relaxed) {
            return done(Outcome::Refused(Refusal::Unavailable));
        }
        let (id, internal) = match id {
            Some(id) => (id.to_owned(), false),
            None => {
                let n = s.next_append.fetch_add(1, Ordering::Relaxed);
                (format!("~{:016x}-{n}", s.instance), true)
            }
        };
        let append = Outgoing::Append(Append {
            room: room.to_owned(),
            message,
            id,
            internal,
            resent: false,
            done,
        });
        match s.queue.try_send(append) {
            Ok(()) => {}
            Err(TrySendError::Full(Outgoing::Append(a))) => {
                (a.done)(Outcome::Refused(Refusal::Busy))
            }
            Err(TrySendError::Disconnected(Outgoing::Append(a))) => {
                (a.done)(Outcome::Refused(Refusal::Closed))
            }
            Err(_) => {}
        }
    }

    fn follow(&self, ticket: Ticket) {
        if let Some(streams) = self.shared.streams.get() {
            streams.follow(ticket);
            self.shared.wake();
        }
    }

    fn unfollow(&self, room: &str) {
        if let Some(streams) = self.shared.streams.get() {
            streams.unfollow(room);
            self.shared.wake();
        }
    }
}

impl Shared {
    /// Wakes the subscriber and the stream reader (through Redis, by the
    /// publisher thread). A full queue means a round trip is coming anyway,
    /// and each wakes by itself every heartbeat at the latest.
    fn wake(&self) {
        self.rooms_changed.store(true, Ordering::Relaxed);
        let _ = self.queue.try_send(Outgoing::Wake);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// A new connection with this relay's timeouts.
    fn connect(&self) -> ::redis::RedisResult<::redis::Connection> {
        let con = self
            .client
            .get_connection_with_timeout(self.config.connect_timeout)?;
        con.set_write_timeout(Some(self.config.io_timeout))?;
        con.set_read_timeout(Some(self.config.io_timeout))?;
        Ok(con)
    }

    fn room_channel(&self, room: &str) -> String {
        format!("{}{room}", self.room_prefix)
    }
}

// Compiles the Rust snippet of the deployment guide, so that it cannot drift.
#[doc = include_str!("../../../docs/deploy.md")]
#[cfg(doctest)]
pub struct DeployDoctests;
