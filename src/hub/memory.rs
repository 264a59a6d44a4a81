//! [`MemoryLog`]: room histories in this process's memory, for a hub with
//! history and no relay whose log every instance shares.

use super::history::{
    now_ms, Done, Entry, Epoch, Feed, HistoryConfig, Log, Offset, Outcome, Refusal, Ticket,
};
use crate::Message;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the maps consistent at each step.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// History kept in this process's memory: one instance's rooms, a new
/// epoch for each room when the process starts. The hub uses it when it
/// has history and no relay with a shared log. Appends are taken at once
/// (never refused, never unknown); the oldest entries go first when
/// [`HistoryConfig::max_bytes`] is reached.
#[derive(Default)]
pub struct MemoryLog {
    inner: Mutex<Memory>,
    feed: OnceLock<Feed>,
    config: OnceLock<HistoryConfig>,
}

#[derive(Default)]
struct Memory {
    rooms: HashMap<Arc<str>, RoomLog>,
    /// Every kept entry, oldest first, for the byte budget.
    order: VecDeque<(Arc<str>, u64)>,
    bytes: usize,
}

struct RoomLog {
    epoch: Epoch,
    top: Offset,
    entries: VecDeque<(Entry, Instant)>,
    /// Publish ids seen, oldest first, with their offsets.
    ids: HashMap<Arc<str>, Offset>,
    id_order: VecDeque<(Arc<str>, Instant)>,
}

impl RoomLog {
    fn new() -> RoomLog {
        RoomLog {
            epoch: Epoch::random(),
            top: Offset::ZERO,
            entries: VecDeque::new(),
            ids: HashMap::new(),
            id_order: VecDeque::new(),
        }
    }
}

impl MemoryLog {
    /// An empty log (attach it to a hub with history).
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    /// Rooms with a history kept, and the payload bytes they hold.
    pub fn usage(&self) -> (usize, usize) {
        let inner = lock(&self.inner);
        (inner.rooms.len(), inner.bytes)
    }

    fn config(&self) -> &HistoryConfig {
        self.config.get_or_init(|| HistoryConfig::new(1))
    }
}

impl Memory {
    /// Drops what is past the bounds: age and count in `room`, then the
    /// byte budget across rooms.
    fn trim(&mut self, room: &str, config: &HistoryConfig, now: Instant) {
        if let Some(log) = self.rooms.get_mut(room) {
            while let Some((entry, at)) = log.entries.front() {
                let old = config
                    .max_age
                    .is_some_and(|age| now.duration_since(*at) > age);
                if !old && log.entries.len() <= config.max_len {
                    break;
                }
                self.bytes -= entry.message().len();
                log.entries.pop_front();
            }
            while let Some((_, at)) = log.id_order.front() {
                if now.duration_since(*at) <= config.id_window {
                    break;
                }
                if let Some((id, _)) = log.id_order.pop_front() {
                    log.ids.remove(&id);
                }
            }
        }
        while self.bytes > config.max_bytes {
            let Some((room, seq)) = self.order.pop_front() else {
                break;
            };
            let Some(log) = self.rooms.get_mut(&room) else {
                continue;
            };
            if log
                .entries
                .front()
                .is_some_and(|(e, _)| e.offset().seq() == seq)
            {
                if let Some((entry, _)) = log.entries.pop_front() {
                    self.bytes -= entry.message().len();
                }
            }
            if log.entries.is_empty() {
                // Nothing left to recover: a returning member gets "another
                // epoch", which is the truth (it cannot be vouched for).
                self.rooms.remove(&room);
            }
        }
        // The order queue also holds entries trimmed by age or count: forget
        // those at its front, and compact it when stale ones pile up behind
        // an old entry of a quiet room.
        while let Some((room, seq)) = self.order.front() {
            if self.alive(room, *seq) {
                break;
            }
            self.order.pop_front();
        }
        let kept: usize = self.rooms.values().map(|l| l.entries.len()).sum();
        if self.order.len() > 2 * kept + 1024 {
            let order = std::mem::take(&mut self.order);
            self.order = order
                .into_iter()
                .filter(|(r, s)| self.alive(r, *s))
                .collect();
        }
    }

    /// Whether entry `seq` of `room` is still kept (a room's entries are
    /// trimmed from the front only, so it is if the first kept is older).
    fn alive(&self, room: &str, seq: u64) -> bool {
        let first = self.rooms.get(room).and_then(|l| l.entries.front());
        first.is_some_and(|(e, _)| e.offset().seq() <= seq)
    }
}

impl Log for MemoryLog {
    fn attach(&self, feed: Feed, config: &HistoryConfig) {
        let _ = self.feed.set(feed);
        let _ = self.config.set(config.clone());
    }

    fn append(&self, room: &str, message: Arc<Message>, id: Option<&str>, done: Done) {
        let Some(feed) = self.feed.get() else {
            return done(Outcome::Refused(Refusal::Closed));
        };
        let config = self.config();
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let log = inner.rooms.entry(room.into()).or_insert_with(RoomLog::new);
        if let Some(offset) = id.and_then(|id| log.ids.get(id)) {
            let outcome = Outcome::Accepted {
                offset: *offset,
                epoch: log.epoch.clone(),
                duplicate: true,
            };
            drop(inner);
            return done(outcome);
        }
        let offset = log.top.next(now_ms());
        log.top = offset;
        if let Some(id) = id {
            let id: Arc<str> = id.into();
            log.ids.insert(Arc::clone(&id), offset);
            log.id_order.push_back((id, now));
        }
        let entry = Entry::new(room, offset, log.epoch.clone(), message);
        let epoch = log.epoch.clone();
        let len = entry.message().len();
        log.entries.push_back((entry.clone(), now));
        let room_name: Arc<str> = room.into();
        inner.order.push_back((room_name, offset.seq()));
        inner.bytes += len;
        inner.trim(room, config, now);
        // Delivered under the log's lock: the room's order is the log's.
        feed.entry(entry);
        drop(inner);
        done(Outcome::Accepted {
            offset,
            epoch,
            duplicate: false,
        });
    }

    fn follow(&self, ticket: Ticket) {
        let Some(feed) = self.feed.get() else {
            return;
        };
        let config = self.config();
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let room = ticket.room();
        inner.trim(room, config, now);
        let log = inner.rooms.entry(room.into()).or_insert_with(RoomLog::new);
        let (epoch, top) = (log.epoch.clone(), log.top);
        // Position and history under the lock: no entry can come between.
        feed.positioned(&ticket, &epoch, top);
        let Some(since) = ticket.since() else {
            return;
        };
        let entries: Vec<Entry> = match since.offset {
            Some(offset) if since.epoch == epoch.as_str() => log
                .entries
                .iter()
                .filter(|(e, _)| e.offset() > offset)
                .map(|(e, _)| e.clone())
                .collect(),
            _ => Vec::new(),
        };
        let recovered = since.assess(&epoch, top, entries.first().map(Entry::offset));
        feed.history(&ticket, entries, recovered);
    }

    fn unfollow(&self, _room: &str) {
        // Nothing to stop: the history stays for the members who come back
        // (and `unfollow` may be called while `append` holds the lock).
    }
}

impl fmt::Debug for MemoryLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rooms, bytes) = self.usage();
        f.debug_struct("MemoryLog")
            .field("rooms", &rooms)
            .field("bytes", &bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::history::FeedSink;

    /// A feed that records what the log hands over.
    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl FeedSink for Record {
        fn entry(&self, entry: Entry) {
            lock(&self.0).push(format!("entry {} {}", entry.room(), entry.offset().seq()));
        }
        fn positioned(&self, ticket: &Ticket, _: &Epoch, top: Offset) {
            lock(&self.0).push(format!("positioned {} {}", ticket.room(), top.seq()));
        }
        fn history(&self, ticket: &Ticket, entries: Vec<Entry>, recovered: bool) {
            let seqs: Vec<u64> = entries.iter().map(|e| e.offset().seq()).collect();
            lock(&self.0).push(format!("history {} {seqs:?} {recovered}", ticket.room()));
        }
        fn is_current(&self, _: &Ticket) -> bool {
            true
        }
    }

    fn log(config: HistoryConfig) -> (MemoryLog, Arc<Record>) {
        let record = Arc::new(Record::default());
        let log = MemoryLog::new();
        log.attach(
            Feed {
                sink: Arc::clone(&record) as Arc<dyn FeedSink>,
            },
            &config,
        );
        (log, record)
    }

    fn append(log: &MemoryLog, room: &str, len: usize) -> Outcome {
        let (tx, rx) = std::sync::mpsc::channel();
        let message = Arc::new(Message::Binary(vec![0; len]));
        log.append(room, message, None, Box::new(move |o| tx.send(o).unwrap()));
        rx.recv().unwrap()
    }

    fn ticket(room: &str, since: Option<Since>) -> Ticket {
        Ticket {
            member: 1,
            room: room.into(),
            join: 1,
            since,
        }
    }

    use crate::hub::history::Since;

    #[test]
    fn the_byte_budget_drops_the_oldest_entries_of_any_room_first() {
        let (log, record) = log(HistoryConfig::new(100).max_bytes(300));
        let Outcome::Accepted { epoch, .. } = append(&log, "a", 100) else {
            panic!()
        };
        append(&log, "b", 100);
        append(&log, "a", 100);
        // Over 300 bytes: a's first entry goes, the others stay.
        append(&log, "b", 100);
        assert_eq!(log.usage(), (2, 300));
        log.follow(ticket("a", Some(Since::new(epoch.as_str(), "0-0"))));
        let last = lock(&record.0).last().cloned().unwrap();
        assert_eq!(last, "history a [2] false", "a trimmed gap is told");
        log.follow(ticket("b", Some(Since::new("another", "0-0"))));
        assert_eq!(lock(&record.0).last().unwrap(), "history b [] false");
    }

    #[test]
    fn entries_are_fed_in_order_under_the_position() {
        let (log, record) = log(HistoryConfig::new(2));
        append(&log, "r", 1);
        log.follow(ticket("r", None));
        append(&log, "r", 1);
        append(&log, "r", 1);
        let seen = lock(&record.0).clone();
        assert_eq!(
            seen,
            ["entry r 1", "positioned r 1", "entry r 2", "entry r 3"]
        );
        // Two kept: from 1, the history has 2 and 3, unbroken.
        let Outcome::Accepted { epoch, .. } = append(&log, "r", 1) else {
            panic!()
        };
        log.follow(ticket(
            "r",
            Some(Since::new(epoch.as_str(), &Offset::new(0, 2).to_string())),
        ));
        assert!(lock(&record.0)
            .last()
            .unwrap()
            .starts_with("history r [3, 4] true"));
    }
}
