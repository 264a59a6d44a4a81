//! Room history: offsets, epochs, what a publish came to, and the [`Log`]
//! seam a history store plugs into.
//!
//! The model is Centrifugo's: every message of a room with history gets an
//! [`Offset`] that only grows within the room, and the room has an
//! [`Epoch`] that changes when its history is reset (a process restarted
//! without a shared store, a stream deleted, a store that lost its data). A
//! member that comes back says "since offset O in epoch E" ([`Since`]) and
//! gets what the history holds after O, then the live messages, with nothing
//! missed and nothing twice at the seam between the two.
//!
//! Offsets are `MILLISECONDS-SEQUENCE`: the time the log took the message
//! (never going back within a room) and a sequence number that grows by one
//! per message in the room, so that a reader can tell a trimmed gap from
//! an unbroken run (the next message after O has sequence `O.seq() + 1`).
//! Both the in-process [`MemoryLog`](super::MemoryLog) and the Redis Streams log (feature
//! `redis`) use them; to a client they are opaque strings.

use crate::Message;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::senders::Outbound;
use super::Delivery;

/// Where a message sits in its room's history: strictly increasing within
/// the room and epoch. Written and parsed as `MILLISECONDS-SEQUENCE`.
///
/// ```
/// use rfc6455::hub::Offset;
///
/// let offset: Offset = "1718000000000-42".parse().unwrap();
/// assert_eq!((offset.millis(), offset.seq()), (1718000000000, 42));
/// assert_eq!(offset.to_string(), "1718000000000-42");
/// assert!(offset < "1718000000001-43".parse().unwrap());
/// assert!("42".parse::<Offset>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    millis: u64,
    seq: u64,
}

impl Offset {
    /// The position before the first message of an epoch.
    pub const ZERO: Offset = Offset { millis: 0, seq: 0 };

    /// An offset from its two parts.
    pub fn new(millis: u64, seq: u64) -> Offset {
        Offset { millis, seq }
    }

    /// When the log took the message, in milliseconds since the Unix epoch
    /// (never smaller than the previous message's in the same room).
    pub fn millis(&self) -> u64 {
        self.millis
    }

    /// The message's number in its room's epoch: 1, 2, 3, … with no gaps.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The offset a log gives the message after `self`, taken at `now_ms`.
    pub fn next(&self, now_ms: u64) -> Offset {
        Offset {
            millis: now_ms.max(self.millis),
            seq: self.seq + 1,
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

/// An offset that is not `MILLISECONDS-SEQUENCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOffset;

impl fmt::Display for BadOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an offset is MILLISECONDS-SEQUENCE")
    }
}

impl std::error::Error for BadOffset {}

impl FromStr for Offset {
    type Err = BadOffset;

    fn from_str(s: &str) -> Result<Offset, BadOffset> {
        let (millis, seq) = s.split_once('-').ok_or(BadOffset)?;
        let digits = |p: &str| {
            // u64::from_str takes a leading '+': an offset has digits only.
            (!p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u64>().ok())
                .flatten()
                .ok_or(BadOffset)
        };
        Ok(Offset {
            millis: digits(millis)?,
            seq: digits(seq)?,
        })
    }
}

/// A room history's identity: it changes whenever the history is reset, so
/// that an offset from before the reset is never taken for one after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Epoch(Arc<str>);

impl Epoch {
    /// An epoch with this name (as a log stored it).
    pub fn new(name: &str) -> Epoch {
        Epoch(name.into())
    }

    /// A new random epoch (16 hex digits), for a history made afresh.
    pub fn random() -> Epoch {
        let mut bytes = [0u8; 8];
        // Without randomness, the clock still tells two resets apart.
        if getrandom::fill(&mut bytes).is_err() {
            bytes = now_ms().wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes();
        }
        Epoch(format!("{:016x}", u64::from_be_bytes(bytes)).into())
    }

    /// The epoch's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a returning member left off: "since offset O in epoch E".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    /// The epoch the member's last message was in.
    pub epoch: String,
    /// The offset of the last message it got (`None`: it sent one that
    /// could not be read, so nothing can be recovered).
    pub offset: Option<Offset>,
}

impl Since {
    /// From the strings a client sent back (`since=O&epoch=E`); an offset
    /// that does not parse makes the recovery fail, not the join.
    ///
    /// ```
    /// use rfc6455::hub::Since;
    ///
    /// let since = Since::new("4f1c2a9e0b7d3e65", "1718000000000-42");
    /// assert_eq!(since.offset.map(|o| o.seq()), Some(42));
    /// assert_eq!(Since::new("e", "garbage").offset, None);
    /// ```
    pub fn new(epoch: &str, offset: &str) -> Since {
        Since {
            epoch: epoch.to_owned(),
            offset: offset.parse().ok(),
        }
    }

    /// What the log can recover for this member, given the history's
    /// epoch, its position `top` (the last offset it holds) and the
    /// entries after `self` up to `top` that it still has.
    pub fn assess(&self, epoch: &Epoch, top: Offset, first_after: Option<Offset>) -> bool {
        let Some(offset) = self.offset else {
            return false;
        };
        if self.epoch != epoch.as_str() || offset > top {
            // Another history, or one that lost what the member had.
            return false;
        }
        match first_after {
            // Unbroken: the next one the history holds is the very next.
            Some(first) => first.seq == offset.seq + 1,
            None => offset == top,
        }
    }
}

/// One message of a room's history.
#[derive(Clone)]
pub struct Entry {
    room: Arc<str>,
    offset: Offset,
    epoch: Epoch,
    message: Arc<Message>,
    /// The message as members get it (made by the hub's [`Envelope`]
    /// once, shared by every member and every recovery).
    pub(super) wire: Arc<OnceLock<Arc<Outbound>>>,
}

impl Entry {
    /// An entry of `room` at `offset` in `epoch`.
    pub fn new(room: &str, offset: Offset, epoch: Epoch, message: Arc<Message>) -> Entry {
        Entry {
            room: room.into(),
            offset,
            epoch,
            message,
            wire: Arc::default(),
        }
    }

    /// The room.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// Its offset in the room.
    pub fn offset(&self) -> Offset {
        self.offset
    }

    /// The epoch of the history it is in.
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// The message as it was published.
    pub fn message(&self) -> &Arc<Message> {
        &self.message
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("room", &self.room)
            .field("offset", &self.offset)
            .field("epoch", &self.epoch)
            .field("len", &self.message.len())
            .finish()
    }
}

/// What a member learns first when it joins a room with history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Joined {
    /// The history's epoch now.
    pub epoch: Epoch,
    /// Where the member stands once it has the `missed` messages that
    /// follow: save it (with the epoch) to come back from here.
    pub offset: Offset,
    /// For a member that came back with [`Since`]: what could be recovered.
    pub recovery: Option<Recovery>,
}

/// The answer to "since offset O in epoch E".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Every message after O is among those that follow (`false`: the
    /// history was reset, or trimmed past O, or O is unknown to it).
    pub recovered: bool,
    /// How many history messages follow, before the live ones. On another
    /// epoch, none; on a trimmed gap, what is left.
    pub missed: usize,
}

/// Turns history entries and join reports into what members get: the
/// application's wire format (the chat example's is JSON with the offset
/// and epoch as strings). Each entry is formatted once, for every member.
pub trait Envelope: Send + Sync + 'static {
    /// The message members get for `entry`.
    fn entry(&self, entry: &Entry) -> Message;
    /// The message a member gets before anything else of `room` when it
    /// joins (`None`: nothing).
    fn joined(&self, room: &str, joined: &Joined) -> Option<Message>;
}

/// The default [`Envelope`]: the message as it was published, and no
/// report (members can then not resume: give the hub one that says where
/// they are).
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Envelope for Plain {
    fn entry(&self, entry: &Entry) -> Message {
        Message::clone(entry.message())
    }

    fn joined(&self, _: &str, _: &Joined) -> Option<Message> {
        None
    }
}

/// How much history a room keeps. Bounds are approximate in the
/// direction that loses nothing: a room keeps **at least** the last
/// `max_len` messages that are younger than `max_age` (a store may keep a
/// few more until it trims).
///
/// ```
/// use rfc6455::hub::HistoryConfig;
/// use std::time::Duration;
///
/// let config = HistoryConfig::new(1000).max_age(Some(Duration::from_secs(300)));
/// assert_eq!(config.max_len, 1000);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct HistoryConfig {
    /// Messages kept per room (at least 1).
    pub max_len: usize,
    /// Messages older than this are trimmed (`None`: kept until `max_len`
    /// pushes them out).
    pub max_age: Option<Duration>,
    /// The in-process log's memory budget, all rooms together (payload
    /// bytes, 64 MiB by default): past it, the oldest messages of any room
    /// go first. Redis bounds its own memory (`maxmemory`, docs/deploy.md).
    pub max_bytes: usize,
    /// How long a publish id is remembered, so that a retry with the same
    /// id is taken once (10 minutes by default).
    pub id_window: Duration,
    /// Which rooms have history (all of them unless set).
    pub rooms: Option<RoomFilter>,
}

/// Says which rooms have history ([`HistoryConfig::rooms`]).
pub type RoomFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl HistoryConfig {
    /// History of `max_len` messages per room, no age bound.
    pub fn new(max_len: usize) -> HistoryConfig {
        HistoryConfig {
            max_len: max_len.max(1),
            max_age: None,
            max_bytes: 64 << 20,
            id_window: Duration::from_secs(600),
            rooms: None,
        }
    }

    /// Sets [`max_age`](HistoryConfig::max_age).
    pub fn max_age(mut self, max_age: Option<Duration>) -> HistoryConfig {
        self.max_age = max_age;
        self
    }

    /// Sets [`max_bytes`](HistoryConfig::max_bytes).
    pub fn max_bytes(mut self, max_bytes: usize) -> HistoryConfig {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets [`id_window`](HistoryConfig::id_window).
    pub fn id_window(mut self, id_window: Duration) -> HistoryConfig {
        self.id_window = id_window;
        self
    }

    /// Only rooms for which `rooms` says `true` have history; the others
    /// are broadcast at most once, as without history.
    pub fn rooms(mut self, rooms: impl Fn(&str) -> bool + Send + Sync + 'static) -> HistoryConfig {
        self.rooms = Some(Arc::new(rooms));
        self
    }

    /// Whether `room` has history under this config.
    pub fn covers(&self, room: &str) -> bool {
        self.rooms.as_ref().is_none_or(|rooms| rooms(room))
    }
}

impl fmt::Debug for HistoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryConfig")
            .field("max_len", &self.max_len)
            .field("max_age", &self.max_age)
            .field("max_bytes", &self.max_bytes)
            .field("id_window", &self.id_window)
            .field("rooms", &self.rooms.as_ref().map(|_| "filter"))
            .finish()
    }
}

/// What became of a publish ([`Hub::publish`](super::Hub::publish)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// In the history: it will reach every member connected now or
    /// recovering within the history. `duplicate`: a publish with the same
    /// id had been taken already (this one added nothing).
    Accepted {
        /// Its offset.
        offset: Offset,
        /// The history's epoch.
        epoch: Epoch,
        /// It was a retry of one already taken.
        duplicate: bool,
    },
    /// Not published, and it never will be: tell the publisher.
    Refused(Refusal),
    /// The store did not answer in time: it may or may not have been
    /// taken. A retry with the same publish id is safe.
    Unknown,
    /// A room without history: broadcast at most once, to whoever was
    /// there (counted as for [`Hub::broadcast_to`](super::Hub::broadcast_to)).
    Sent(Delivery),
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The store is unreachable.
    Unavailable,
    /// Too many publishes are waiting for the store.
    Busy,
    /// The store said no (out of memory, …): its words.
    Rejected(String),
    /// The hub is gone.
    Closed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unavailable => f.write_str("the history store is unreachable"),
            Refusal::Busy => f.write_str("too many publishes are waiting"),
            Refusal::Rejected(why) => write!(f, "the history store refused: {why}"),
            Refusal::Closed => f.write_str("the hub is gone"),
        }
    }
}

/// Told what became of a publish, once.
pub type Done = Box<dyn FnOnce(Outcome) + Send>;

/// A join waiting for its position and history: the log hands it back to
/// the [`Feed`] with each answer.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub(super) member: u64,
    pub(super) room: Arc<str>,
    pub(super) join: u64,
    pub(super) since: Option<Since>,
}

impl Ticket {
    /// The room joined.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// Where the member left off, if it is coming back.
    pub fn since(&self) -> Option<&Since> {
        self.since.as_ref()
    }
}

/// A store of room histories: the seam between the hub and what keeps
/// history (the in-process [`MemoryLog`](super::MemoryLog); Redis Streams with the `redis`
/// feature, shared by every instance).
///
/// The log gives **one order** per room: it hands every entry it takes to
/// [`Feed::entry`] in offset order, and the hub delivers only what comes
/// through there, its own publishes included. Every method is called on a
/// connection's thread or a poll worker: queue the work, never wait on the
/// network.
pub trait Log: Send + Sync + 'static {
    /// Called once, before anything else: entries and answers go to `feed`.
    fn attach(&self, feed: Feed, config: &HistoryConfig);
    /// Appends `message` to `room`'s history (once per `id`, within the
    /// config's `id_window`) and tells `done` what came of it; the entry
    /// itself comes back through [`Feed::entry`].
    fn append(&self, room: &str, message: Arc<Message>, id: Option<&str>, done: Done);
    /// A member joins `room`: tell [`Feed::positioned`] where the history
    /// stands (every entry after that position goes to [`Feed::entry`]
    /// afterwards, none at or before it), then, for a member coming back
    /// with [`Ticket::since`], [`Feed::history`] what is after its offset
    /// up to that position.
    fn follow(&self, ticket: Ticket);
    /// `room` lost its last member here. Called with the hub's lock held,
    /// sometimes from inside a [`Feed`] call: it must not call the feed or
    /// wait for anything the feed's caller holds.
    fn unfollow(&self, room: &str);
}

/// Where a [`Log`] delivers entries and answers joins (to the hub it is
/// attached to; a no-op once the hub is gone).
#[derive(Clone)]
pub struct Feed {
    pub(super) sink: Arc<dyn FeedSink>,
}

/// The hub's side of a [`Feed`].
pub(super) trait FeedSink: Send + Sync {
    fn entry(&self, entry: Entry);
    fn positioned(&self, ticket: &Ticket, epoch: &Epoch, top: Offset);
    fn history(&self, ticket: &Ticket, entries: Vec<Entry>, recovered: bool);
    fn is_current(&self, ticket: &Ticket) -> bool;
}

impl Feed {
    /// An entry, in its room's order: deliver it to the room's members.
    pub fn entry(&self, entry: Entry) {
        self.sink.entry(entry);
    }

    /// Where `ticket`'s room history stands: `top` is its last offset.
    pub fn positioned(&self, ticket: &Ticket, epoch: &Epoch, top: Offset) {
        self.sink.positioned(ticket, epoch, top);
    }

    /// The history after `ticket`'s offset, up to its position, and
    /// whether it is all there ([`Since::assess`]).
    pub fn history(&self, ticket: &Ticket, entries: Vec<Entry>, recovered: bool) {
        self.sink.history(ticket, entries, recovered);
    }

    /// Whether `ticket` still waits (its member has not left the room or
    /// the hub since): a log may skip work for a join nobody waits for.
    pub fn is_current(&self, ticket: &Ticket) -> bool {
        self.sink.is_current(ticket)
    }
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Feed")
    }
}

/// Milliseconds since the Unix epoch, as offsets count them.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_only_their_own_form() {
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "+1-2",
            "a-1",
            "1 -2",
            "99999999999999999999999-1",
        ] {
            assert!(bad.parse::<Offset>().is_err(), "{bad:?}");
        }
        assert_eq!("0-0".parse(), Ok(Offset::ZERO));
    }

    #[test]
    fn next_offsets_never_go_back_in_time() {
        let o = Offset::new(1000, 7);
        assert_eq!(o.next(900), Offset::new(1000, 8));
        assert_eq!(o.next(2000), Offset::new(2000, 8));
    }

    #[test]
    fn a_gap_is_told_from_an_unbroken_run() {
        let epoch = Epoch::new("e");
        let since = Since::new("e", "5-10");
        let top = Offset::new(9, 20);
        assert!(since.assess(&epoch, top, Some(Offset::new(6, 11))));
        assert!(
            !since.assess(&epoch, top, Some(Offset::new(6, 12))),
            "trimmed"
        );
        assert!(!since.assess(&Epoch::new("f"), top, Some(Offset::new(6, 11))));
        assert!(
            Since::new("e", "9-20").assess(&epoch, top, None),
            "up to date"
        );
        assert!(!Since::new("e", "9-21").assess(&epoch, top, None), "ahead");
        assert!(!Since::new("e", "x").assess(&epoch, top, None));
    }
}
