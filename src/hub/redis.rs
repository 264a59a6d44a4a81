//! A [`Relay`] over Redis pub/sub (feature `redis`): hubs in several server
//! processes, each with its own clients, behave as one.
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
//! **Channels.** Broadcasts to everyone go on `PREFIX:all`, broadcasts to a
//! room on `PREFIX:room:NAME` (the prefix is `rfc6455` unless
//! [`RedisConfig::prefix`] says otherwise). A process subscribes to a room's
//! channel while it has a member in that room.
//!
//! **On the channel**, each message is one binary-safe frame: a magic byte,
//! a version, the kind (text or binary), the sending process's random
//! instance id and a per-channel sequence number, then the payload byte for
//! byte. A process skips its own frames (its members already have them) and
//! counts frames it cannot decode in [`RelayStats::malformed`].
//!
//! **Ordering.** Messages from one process reach every process in the order
//! that process broadcast them. Across processes there is no common order:
//! each process delivers its own broadcasts at once and the others' when
//! Redis hands them over, so two messages sent at the same moment on two
//! processes may appear in different orders on each.
//!
//! **Delivery is at most once**, as Redis pub/sub is. Nothing is replayed
//! after an outage; instead the relay counts what was lost ([`RelayStats`]):
//! broadcasts it could not hand to Redis (`not_published`: Redis down, or
//! more queued than [`RedisConfig::queue_len`] because Redis is slow), and
//! messages other processes published that never arrived here (`missed`,
//! found from gaps in their sequence numbers, so a loss is counted when the
//! next message from the same process on the same channel arrives).
//!
//! **Faults.** Two threads talk to Redis: a publisher that takes
//! broadcasts from a bounded queue (a broadcast never waits on Redis: when
//! the queue is full the message only goes to local members) and a
//! subscriber. Each reconnects on its own with exponential backoff and
//! jitter; the subscriber re-subscribes every channel it needs. Meanwhile the
//! hub keeps delivering local broadcasts. A link that goes quiet is caught by
//! a heartbeat the process publishes to itself ([`RedisConfig::heartbeat`]).

use super::{Inbox, Relay};
use crate::Message;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// First byte of every frame, so that stray publishes are told apart.
const MAGIC: u8 = 0xb5;
/// Frame layout version.
const VERSION: u8 = 1;
const KIND_TEXT: u8 = 1;
const KIND_BINARY: u8 = 2;
/// magic, version, kind, instance id (8), sequence number (8).
const HEADER_LEN: usize = 19;
/// Publishes sent to Redis in one pipelined round trip, at most.
const MAX_BATCH: usize = 256;
/// Per channel, how many publishing processes are tracked for `missed`
/// before the table is started afresh (processes that restarted leave
/// entries behind).
const MAX_TRACKED: usize = 1024;
/// Stack of the two relay threads.
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
    /// Channel names start with this and a colon (`rfc6455`): processes
    /// with the same prefix on the same Redis form one hub.
    pub prefix: String,
    /// Broadcasts waiting to be published before new ones are counted in
    /// `not_published` instead (4096).
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
}

/// What a [`RedisRelay`] has done since it was opened; see the
/// [module docs](self) for what is lost when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RelayStats {
    /// Broadcasts published to Redis.
    pub published: u64,
    /// Broadcasts that only local members got: Redis was unreachable, or
    /// the publish queue was full.
    pub not_published: u64,
    /// Messages from other processes delivered to local members.
    pub received: u64,
    /// Messages other processes published that never arrived here (lost
    /// while the subscription was down).
    pub missed: u64,
    /// Frames on our channels that were not ours to decode.
    pub malformed: u64,
    /// Times the subscription came back after it had been lost.
    pub reconnects: u64,
}

/// Hands a [`Hub`](crate::Hub)'s broadcasts to Redis pub/sub and delivers
/// other processes' to its members. Cloning gives another handle to the
/// same relay; its threads end when the last handle (the hub holds one) is
/// dropped.
#[derive(Clone)]
pub struct RedisRelay {
    shared: Arc<Shared>,
    _stop: Arc<StopOnDrop>,
}

struct Shared {
    client: ::redis::Client,
    config: RedisConfig,
    instance: u64,
    all_channel: String,
    room_prefix: String,
    control_channel: String,
    queue: SyncSender<Outgoing>,
    inbox: OnceLock<Inbox>,
    /// Rooms with a member here; the subscriber follows it.
    rooms: Mutex<BTreeSet<String>>,
    rooms_changed: AtomicBool,
    publisher_up: AtomicBool,
    subscriber_up: AtomicBool,
    stop: AtomicBool,
    published: AtomicU64,
    not_published: AtomicU64,
    received: AtomicU64,
    missed: AtomicU64,
    malformed: AtomicU64,
    reconnects: AtomicU64,
}

enum Outgoing {
    Publish {
        channel: String,
        message: Arc<Message>,
    },
    /// Publish to our own control channel, so that the subscriber wakes up
    /// and follows a change of rooms (or notices that it must stop).
    Wake,
}

struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        let _ = self.0.queue.try_send(Outgoing::Wake);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is one set operation: a panic cannot leave the
    // set half-changed.
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
        let prefix = &config.prefix;
        let shared = Arc::new(Shared {
            client,
            all_channel: format!("{prefix}:all"),
            room_prefix: format!("{prefix}:room:"),
            control_channel: format!("{prefix}:control:{instance:016x}"),
            config,
            instance,
            queue,
            inbox: OnceLock::new(),
            rooms: Mutex::default(),
            rooms_changed: AtomicBool::new(false),
            publisher_up: AtomicBool::new(false),
            subscriber_up: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            published: AtomicU64::new(0),
            not_published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        });
        let publisher = Arc::clone(&shared);
        spawn("rfc6455-redis-pub", move || {
            run_publisher(&publisher, outgoing)
        })?;
        let subscriber = Arc::clone(&shared);
        spawn("rfc6455-redis-sub", move || run_subscriber(&subscriber))?;
        Ok(RedisRelay {
            _stop: Arc::new(StopOnDrop(Arc::clone(&shared))),
            shared,
        })
    }

    /// Whether both links to Redis are up: broadcasts are being published
    /// and other processes' are being heard.
    pub fn is_connected(&self) -> bool {
        self.shared.publisher_up.load(Ordering::Relaxed)
            && self.shared.subscriber_up.load(Ordering::Relaxed)
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
        self.shared.rooms_changed_wake();
    }

    fn room_closed(&self, room: &str) {
        lock(&self.shared.rooms).remove(room);
        self.shared.rooms_changed_wake();
    }
}

impl Shared {
    fn rooms_changed_wake(&self) {
        self.rooms_changed.store(true, Ordering::Relaxed);
        // A full queue means a publish round trip is coming anyway, and the
        // heartbeat wakes the subscriber at the latest.
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

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
        .spawn(work)
        .map(drop)
}

/// Exponential backoff with jitter, waiting in slices so that a stopped
/// relay does not linger.
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(config: &RedisConfig) -> Backoff {
        Backoff {
            next: config.backoff_min,
            min: config.backoff_min,
            max: config.backoff_max.max(config.backoff_min),
        }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    /// Sleeps between half and all of the current delay (so that many
    /// processes do not reconnect in step), then doubles it.
    fn wait(&mut self, shared: &Shared) {
        let mut random = [0u8; 2];
        let spread = match getrandom::fill(&mut random) {
            Ok(()) => f64::from(u16::from_be_bytes(random)) / f64::from(u16::MAX),
            Err(_) => 1.0,
        };
        let delay = self.next.mul_f64(0.5 + spread / 2.0);
        self.next = (self.next * 2).min(self.max);
        let deadline = Instant::now() + delay;
        while !shared.stopped() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

// ---------------------------------------------------------------------------
// Frames on the channel

fn encode(instance: u64, seq: u64, message: &Message) -> Option<Vec<u8>> {
    let (kind, payload) = match message {
        Message::Text(text) => (KIND_TEXT, text.as_bytes()),
        Message::Binary(data) => (KIND_BINARY, &data[..]),
        _ => return None,
    };
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&[MAGIC, VERSION, kind]);
    frame.extend_from_slice(&instance.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(payload);
    Some(frame)
}

/// A decoded frame: sender, sequence number, message.
#[derive(Debug, PartialEq)]
struct Frame {
    instance: u64,
    seq: u64,
    message: Message,
}

fn decode(frame: &[u8]) -> Option<Frame> {
    let header = frame.get(..HEADER_LEN)?;
    if header[0] != MAGIC || header[1] != VERSION {
        return None;
    }
    let instance = u64::from_be_bytes(header[3..11].try_into().ok()?);
    let seq = u64::from_be_bytes(header[11..19].try_into().ok()?);
    let payload = &frame[HEADER_LEN..];
    let message = match header[2] {
        KIND_TEXT => Message::Text(String::from_utf8(payload.to_vec()).ok()?),
        KIND_BINARY => Message::Binary(payload.to_vec()),
        _ => return None,
    };
    Some(Frame {
        instance,
        seq,
        message,
    })
}

// ---------------------------------------------------------------------------
// The publisher thread

fn run_publisher(shared: &Shared, outgoing: Receiver<Outgoing>) {
    let mut backoff = Backoff::new(&shared.config);
    // Sequence numbers per channel, so that a subscriber of some rooms only
    // can still tell a gap from a message for a room it does not follow.
    let mut seqs: HashMap<String, u64> = HashMap::new();
    while !shared.stopped() {
        let mut con = match shared.connect() {
            Ok(con) => con,
            Err(_) => {
                shared.publisher_up.store(false, Ordering::Relaxed);
                // Whatever waits now would be stale by the time Redis is
                // back: it stays local, and is counted.
                let dropped = outgoing
                    .try_iter()
                    .filter(|o| matches!(o, Outgoing::Publish { .. }))
                    .count();
                shared
                    .not_published
                    .fetch_add(dropped as u64, Ordering::Relaxed);
                backoff.wait(shared);
                continue;
            }
        };
        backoff.reset();
        shared.publisher_up.store(true, Ordering::Relaxed);
        let session = Instant::now();
        if publish_until_error(shared, &mut con, &outgoing, &mut seqs).is_err() {
            shared.publisher_up.store(false, Ordering::Relaxed);
            short_session_pause(shared, session, &mut backoff);
        }
    }
    shared.publisher_up.store(false, Ordering::Relaxed);
}

/// Publishes batches until the link fails (`Err`) or the relay stops.
fn publish_until_error(
    shared: &Shared,
    con: &mut ::redis::Connection,
    outgoing: &Receiver<Outgoing>,
    seqs: &mut HashMap<String, u64>,
) -> Result<(), ()> {
    let heartbeat = shared.config.heartbeat;
    let mut last_beat: Option<Instant> = None;
    while !shared.stopped() {
        let wait = last_beat.map_or(Duration::ZERO, |t| heartbeat.saturating_sub(t.elapsed()));
        let first = match outgoing.recv_timeout(wait) {
            Ok(item) => Some(item),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let mut pipe = ::redis::pipe();
        let mut batch = 0u64;
        let mut wake = false;
        for item in first.into_iter().chain(outgoing.try_iter().take(MAX_BATCH)) {
            match item {
                Outgoing::Publish { channel, message } => {
                    let seq = seqs.entry(channel.clone()).or_insert(0);
                    *seq += 1;
                    if let Some(frame) = encode(shared.instance, *seq, &message) {
                        pipe.cmd("PUBLISH").arg(channel).arg(frame).ignore();
                        batch += 1;
                    }
                }
                Outgoing::Wake => wake = true,
            }
        }
        let beat = wake || last_beat.is_none_or(|t| t.elapsed() >= heartbeat);
        if beat {
            pipe.cmd("PUBLISH")
                .arg(&shared.control_channel)
                .arg(&b""[..])
                .ignore();
            last_beat = Some(Instant::now());
        } else if batch == 0 {
            continue;
        }
        if pipe.query::<()>(con).is_err() {
            shared.not_published.fetch_add(batch, Ordering::Relaxed);
            return Err(());
        }
        shared.published.fetch_add(batch, Ordering::Relaxed);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The subscriber thread

fn run_subscriber(shared: &Shared) {
    let mut backoff = Backoff::new(&shared.config);
    let mut ever_up = false;
    // Last sequence number seen per channel and publishing process.
    let mut last_seen: HashMap<String, HashMap<u64, u64>> = HashMap::new();
    while !shared.stopped() {
        let mut con = match shared.connect() {
            Ok(con) => con,
            Err(_) => {
                backoff.wait(shared);
                continue;
            }
        };
        let mut pubsub = con.as_pubsub();
        // Our heartbeat arrives every `heartbeat`; three missed means the
        // link is gone even if TCP has not noticed.
        let quiet = shared.config.heartbeat * 3;
        let mut subscribed = BTreeSet::new();
        let ready = pubsub.set_read_timeout(Some(quiet)).is_ok()
            && pubsub
                .subscribe(&[&shared.control_channel, &shared.all_channel])
                .is_ok()
            && follow_rooms(shared, &mut pubsub, &mut subscribed, &mut last_seen).is_ok();
        if !ready {
            backoff.wait(shared);
            continue;
        }
        backoff.reset();
        if ever_up {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        ever_up = true;
        shared.subscriber_up.store(true, Ordering::Relaxed);
        let session = Instant::now();
        while !shared.stopped() {
            // Any error, a timeout included, drops this connection: a read
            // cut short may have left a reply half-parsed.
            let Ok(msg) = pubsub.get_message() else { break };
            let channel = msg.get_channel_name();
            if channel != shared.control_channel {
                receive(shared, channel, msg.get_payload_bytes(), &mut last_seen);
            }
            if shared.rooms_changed.load(Ordering::Relaxed)
                && follow_rooms(shared, &mut pubsub, &mut subscribed, &mut last_seen).is_err()
            {
                break;
            }
        }
        shared.subscriber_up.store(false, Ordering::Relaxed);
        short_session_pause(shared, session, &mut backoff);
    }
}

/// A link lost after it worked for a while is made again at once; one lost
/// right after connecting (a Redis that accepts, then closes) waits its
/// backoff first, so that the relay never spins.
fn short_session_pause(shared: &Shared, session: Instant, backoff: &mut Backoff) {
    if session.elapsed() < shared.config.heartbeat {
        backoff.wait(shared);
    }
}

/// Subscribes to the channels of rooms that gained a member here and
/// unsubscribes from those of rooms that lost their last.
fn follow_rooms(
    shared: &Shared,
    pubsub: &mut ::redis::PubSub<'_>,
    subscribed: &mut BTreeSet<String>,
    last_seen: &mut HashMap<String, HashMap<u64, u64>>,
) -> ::redis::RedisResult<()> {
    shared.rooms_changed.store(false, Ordering::Relaxed);
    let wanted = lock(&shared.rooms).clone();
    let join: Vec<String> = wanted.difference(subscribed).cloned().collect();
    let leave: Vec<String> = subscribed.difference(&wanted).cloned().collect();
    if !leave.is_empty() {
        let channels: Vec<String> = leave.iter().map(|r| shared.room_channel(r)).collect();
        pubsub.unsubscribe(&channels)?;
        for channel in &channels {
            // Messages while we were not listening are not "missed".
            last_seen.remove(channel);
        }
    }
    if !join.is_empty() {
        let channels: Vec<String> = join.iter().map(|r| shared.room_channel(r)).collect();
        pubsub.subscribe(&channels)?;
    }
    *subscribed = wanted;
    Ok(())
}

/// Decodes one frame from `channel` and delivers it to local members.
fn receive(
    shared: &Shared,
    channel: &str,
    payload: &[u8],
    last_seen: &mut HashMap<String, HashMap<u64, u64>>,
) {
    let room = if channel == shared.all_channel {
        None
    } else if let Some(room) = channel.strip_prefix(&shared.room_prefix) {
        Some(room)
    } else {
        shared.malformed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Some(frame) = decode(payload) else {
        shared.malformed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if frame.instance == shared.instance {
        return; // our members had it when it was broadcast
    }
    let senders = last_seen.entry(channel.to_owned()).or_default();
    if senders.len() >= MAX_TRACKED && !senders.contains_key(&frame.instance) {
        senders.clear();
    }
    if let Some(previous) = senders.insert(frame.instance, frame.seq) {
        let gap = frame.seq.saturating_sub(previous).saturating_sub(1);
        shared.missed.fetch_add(gap, Ordering::Relaxed);
    }
    if let Some(inbox) = shared.inbox.get() {
        inbox.deliver(room, frame.message);
        shared.received.fetch_add(1, Ordering::Relaxed);
    }
}

// Compiles the Rust snippet of the deployment guide, so that it cannot drift.
#[doc = include_str!("../../docs/deploy.md")]
#[cfg(doctest)]
pub struct DeployDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_text_and_binary_byte_for_byte() {
        let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, b'\r', b'\n']).collect();
        for message in [
            Message::Text(String::new()),
            Message::Text("héllo \u{1f600}\0".into()),
            Message::Binary(Vec::new()),
            Message::Binary(binary),
        ] {
            let frame = encode(0x0123_4567_89ab_cdef, 42, &message).unwrap();
            let expected = Frame {
                instance: 0x0123_4567_89ab_cdef,
                seq: 42,
                message,
            };
            assert_eq!(decode(&frame), Some(expected));
        }
    }

    #[test]
    fn control_messages_are_not_framed() {
        assert_eq!(encode(1, 1, &Message::Ping(vec![1])), None);
    }

    #[test]
    fn malformed_frames_are_refused() {
        let good = encode(7, 1, &Message::Text("ok".into())).unwrap();
        assert!(decode(&good).is_some());
        assert_eq!(decode(&good[..HEADER_LEN - 1]), None, "short header");
        let mut bad = good.clone();
        bad[0] = b'x';
        assert_eq!(decode(&bad), None, "wrong magic");
        let mut bad = good.clone();
        bad[1] = 9;
        assert_eq!(decode(&bad), None, "unknown version");
        let mut bad = good.clone();
        bad[2] = 3;
        assert_eq!(decode(&bad), None, "unknown kind");
        let mut bad = good;
        bad.push(0xff);
        assert_eq!(decode(&bad), None, "text that is not UTF-8");
    }
}
