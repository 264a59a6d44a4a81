//! Rooms with history in Redis Streams: the scripts that append and tell
//! where a history stands, the live reader, and the history reader (see the
//! [module docs](super) for the keys and the guarantees).

use super::link::{spawn, Backoff};
use super::{lock, Append, Shared};
use crate::hub::history::{Entry, Epoch, Feed, HistoryConfig, Offset, Outcome, Refusal, Ticket};
use crate::Message;
use redis::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// Where a room's history stands, creating it (a new epoch) when it does
/// not exist or lost its stream or its epoch: a reset. The empty stream is
/// made with a placeholder entry added and deleted, so that the stream
/// exists (its existence is what tells a kept history from a lost one).
const POSITION: &str = r#"
local function position(log, meta, fresh)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch and redis.call('EXISTS', log) == 1 then
    local top = redis.call('HMGET', meta, 'ms', 'seq')
    return epoch, tonumber(top[1]) or 0, tonumber(top[2]) or 0
  end
  redis.call('DEL', log)
  redis.call('HSET', meta, 'epoch', fresh, 'ms', 0, 'seq', 0)
  redis.call('XADD', log, '0-1', 'g', '1')
  redis.call('XDEL', log, '0-1')
  return fresh, 0, 0
end
"#;

/// KEYS: log, meta. ARGV: a fresh epoch. Answers {epoch, ms, seq}.
const POSITION_MAIN: &str = r#"
local epoch, ms, seq = position(KEYS[1], KEYS[2], ARGV[1])
return {epoch, ms, seq}
"#;

/// KEYS: log, meta, id key. ARGV: fresh epoch, max len, max age (ms, 0 for
/// none), kind, payload, id expiry (ms), whether there is an id. Answers
/// {duplicate (0 or 1), offset, epoch}. The offset is Redis's clock, never
/// back, and the next sequence number: explicit stream IDs, so that a gap
/// in the sequence is a trimmed one.
const APPEND_MAIN: &str = r#"
local epoch, ms, seq = position(KEYS[1], KEYS[2], ARGV[1])
if ARGV[7] == '1' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {1, seen, epoch} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < ms then now = ms end
seq = seq + 1
local id = string.format('%d-%d', now, seq)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], id, 'k', ARGV[4], 'd', ARGV[5], 'e', epoch)
local age = tonumber(ARGV[3])
if age > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d-0', now - age))
end
redis.call('HSET', KEYS[2], 'ms', now, 'seq', seq)
if ARGV[7] == '1' then redis.call('SET', KEYS[3], id, 'PX', ARGV[6]) end
return {0, id, epoch}
"#;

/// A script and its SHA-1, which `EVALSHA` names it by.
struct Script {
    body: String,
    sha: String,
}

impl Script {
    fn new(main: &str) -> Script {
        use sha1::Digest;
        let body = format!("{POSITION}{main}");
        let digest = sha1::Sha1::digest(body.as_bytes());
        let sha = digest.iter().map(|b| format!("{b:02x}")).collect();
        Script { body, sha }
    }
}

fn scripts() -> &'static (Script, Script) {
    static SCRIPTS: OnceLock<(Script, Script)> = OnceLock::new();
    SCRIPTS.get_or_init(|| (Script::new(POSITION_MAIN), Script::new(APPEND_MAIN)))
}

/// Makes sure the connection's Redis knows the scripts (a Redis that
/// restarted has forgotten them).
pub(super) fn load_scripts(con: &mut redis::Connection) -> redis::RedisResult<()> {
    let (position, append) = scripts();
    for script in [position, append] {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(&script.body)
            .query(con)?;
        debug_assert_eq!(sha, script.sha);
    }
    Ok(())
}

/// How long an append id of our own is kept: long enough for a resend
/// after a reconnection.
const INTERNAL_ID_WINDOW: Duration = Duration::from_secs(60);

/// How long the wake stream of a process outlives its last wake.
const WAKE_EXPIRY_MS: u64 = 60_000;

/// Rooms with history: what the hub gave, and the work for the threads.
pub(super) struct Streams {
    feed: Feed,
    config: HistoryConfig,
    /// Joins and leaves, for the reader.
    requests: Mutex<VecDeque<Request>>,
    /// History reads, for the history thread.
    jobs: Mutex<VecDeque<Job>>,
    job_ready: Condvar,
    /// The reader's link is up.
    up: AtomicBool,
}

enum Request {
    Follow(Ticket),
    Unfollow(String),
}

/// A returning member's history read: after its offset, up to `top`.
struct Job {
    ticket: Ticket,
    epoch: Epoch,
    top: Offset,
}

/// A room the reader follows.
struct Follow {
    key: String,
    epoch: Epoch,
    /// The last entry handed to the hub (or where the history stood when
    /// the room was first followed).
    cursor: Offset,
}

impl Streams {
    pub(super) fn new(feed: Feed, config: HistoryConfig) -> Streams {
        Streams {
            feed,
            config,
            requests: Mutex::default(),
            jobs: Mutex::default(),
            job_ready: Condvar::new(),
            up: AtomicBool::new(false),
        }
    }

    pub(super) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub(super) fn follow(&self, ticket: Ticket) {
        lock(&self.requests).push_back(Request::Follow(ticket));
    }

    pub(super) fn unfollow(&self, room: &str) {
        lock(&self.requests).push_back(Request::Unfollow(room.to_owned()));
    }

    pub(super) fn stop(&self) {
        self.job_ready.notify_all();
    }
}

/// Starts the stream reader and the history reader.
pub(super) fn start(shared: &Arc<Shared>) {
    let reader = Arc::clone(shared);
    let history = Arc::clone(shared);
    // Without threads the joins wait forever: say so where it shows.
    if spawn("rfc6455-redis-log", move || run_reader(&reader)).is_err()
        || spawn("rfc6455-redis-hist", move || run_history(&history)).is_err()
    {
        shared.stop.store(true, Ordering::Relaxed);
    }
}

fn log_key(shared: &Shared, room: &str) -> String {
    format!("{}:log:{{{room}}}", shared.prefix)
}

fn meta_key(shared: &Shared, room: &str) -> String {
    format!("{}:meta:{{{room}}}", shared.prefix)
}

fn wake_key(shared: &Shared) -> String {
    format!("{}:wake:{:016x}", shared.prefix, shared.instance)
}

/// The `EVALSHA` that appends `message` to `room`, or `None` without history.
pub(super) fn append_command(shared: &Shared, append: &Append) -> Option<redis::Cmd> {
    let streams = shared.streams.get()?;
    let (kind, payload): (&str, &[u8]) = match &*append.message {
        Message::Text(text) => ("t", text.as_bytes()),
        Message::Binary(data) => ("b", data),
        _ => return None,
    };
    let config = &streams.config;
    let room = &append.room;
    let id_key = format!("{}:id:{{{room}}}:{}", shared.prefix, append.id);
    // Our own ids only need to outlive a resend on the next link.
    let window = match append.internal {
        true => config.id_window.min(INTERNAL_ID_WINDOW),
        false => config.id_window,
    };
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&scripts().1.sha)
        .arg(3)
        .arg(log_key(shared, room))
        .arg(meta_key(shared, room))
        .arg(id_key)
        .arg(Epoch::random().as_str())
        .arg(config.max_len)
        .arg(config.max_age.map_or(0, |age| age.as_millis() as u64))
        .arg(kind)
        .arg(payload)
        .arg(window.as_millis().max(1) as u64)
        .arg("1");
    Some(cmd)
}

/// What the reply to an append says.
pub(super) fn append_outcome(shared: &Shared, reply: Option<&Value>, append: &Append) -> Outcome {
    let outcome = match reply {
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::Int(duplicate), offset, epoch] => {
                match (text(offset).and_then(|o| o.parse().ok()), text(epoch)) {
                    (Some(offset), Some(epoch)) => Some(Outcome::Accepted {
                        offset,
                        epoch: Epoch::new(&epoch),
                        // Our own id seen: our first attempt landed, and
                        // to the publisher this is one publish.
                        duplicate: *duplicate == 1 && !append.internal,
                    }),
                    _ => None,
                }
            }
            _ => None,
        },
        Some(Value::ServerError(error)) => {
            // Not run (NOSCRIPT, OOM under `maxmemory`, a script error):
            // nothing was added.
            let words = format!("{} {}", error.code(), error.details().unwrap_or(""));
            return Outcome::Refused(Refusal::Rejected(words.trim().to_owned()));
        }
        _ => None,
    };
    match outcome {
        Some(outcome) => {
            shared.appended.fetch_add(1, Ordering::Relaxed);
            outcome
        }
        // A reply we do not understand: it ran, but who knows how.
        None => Outcome::Unknown,
    }
}

/// Adds to this process's wake stream, which the reader blocks on too.
pub(super) fn wake_commands(shared: &Shared, pipe: &mut redis::Pipeline) {
    if shared.streams.get().is_none() {
        return;
    }
    let key = wake_key(shared);
    pipe.cmd("XADD")
        .arg(&key)
        .arg("MAXLEN")
        .arg(1)
        .arg("*")
        .arg("w")
        .arg(1);
    pipe.cmd("PEXPIRE").arg(&key).arg(WAKE_EXPIRY_MS);
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// Where `room`'s history stands, creating it if it has none.
fn position(
    shared: &Shared,
    con: &mut redis::Connection,
    room: &str,
) -> redis::RedisResult<(Epoch, Offset)> {
    let reply: Value = position_command(shared, room).query(con)?;
    parse_position(&reply).ok_or_else(|| (redis::ErrorKind::TypeError, "position").into())
}

fn position_command(shared: &Shared, room: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&scripts().0.sha)
        .arg(2)
        .arg(log_key(shared, room))
        .arg(meta_key(shared, room))
        .arg(Epoch::random().as_str());
    cmd
}

fn parse_position(reply: &Value) -> Option<(Epoch, Offset)> {
    let Value::Array(items) = reply else {
        return None;
    };
    let [epoch, ms, seq] = items.as_slice() else {
        return None;
    };
    Some((Epoch::new(&text(epoch)?), Offset::new(int(ms)?, int(seq)?)))
}

/// One stream entry: its offset, and its message and epoch (`None` when it
/// is not one of ours).
fn parse_entry(value: &Value) -> Option<(Offset, Option<(Message, Epoch)>)> {
    let Value::Array(parts) = value else {
        return None;
    };
    let [id, fields] = parts.as_slice() else {
        return None;
    };
    let offset: Offset = text(id)?.parse().ok()?;
    let Value::Array(fields) = fields else {
        return Some((offset, None));
    };
    let mut kind = None;
    let mut payload = None;
    let mut epoch = None;
    for pair in fields.chunks(2) {
        let [Value::BulkString(name), Value::BulkString(value)] = pair else {
            continue;
        };
        match name.as_slice() {
            b"k" => kind = Some(value.clone()),
            b"d" => payload = Some(value.clone()),
            b"e" => epoch = String::from_utf8(value.clone()).ok(),
            _ => {}
        }
    }
    let message = match (kind.as_deref(), payload) {
        (Some(b"t"), Some(bytes)) => String::from_utf8(bytes).ok().map(Message::Text),
        (Some(b"b"), Some(bytes)) => Some(Message::Binary(bytes)),
        _ => None,
    };
    Some((offset, message.zip(epoch.map(|e| Epoch::new(&e)))))
}

// ---------------------------------------------------------------------------
// The live reader

fn run_reader(shared: &Shared) {
    let Some(streams) = shared.streams.get() else {
        return;
    };
    let mut backoff = Backoff::new(&shared.config);
    let mut follows: HashMap<String, Follow> = HashMap::new();
    let mut wake_cursor = "0-0".to_owned();
    let mut ever_up = false;
    while !shared.stopped() {
        let connected = shared.connect().and_then(|mut con| {
            // XREAD blocks for a heartbeat: the reply may take that long.
            con.set_read_timeout(Some(shared.config.heartbeat + shared.config.io_timeout))?;
            super::streams::load_scripts(&mut con)?;
            Ok(con)
        });
        let Ok(mut con) = connected else {
            streams.up.store(false, Ordering::Relaxed);
            backoff.wait(shared);
            continue;
        };
        // After a disconnect: were histories reset meanwhile?
        if check_epochs(shared, &mut con, &mut follows).is_err() {
            backoff.wait(shared);
            continue;
        }
        backoff.reset();
        if ever_up {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        ever_up = true;
        streams.up.store(true, Ordering::Relaxed);
        while !shared.stopped() {
            if take_requests(shared, streams, &mut con, &mut follows).is_err() {
                break;
            }
            if read_live(shared, streams, &mut con, &mut follows, &mut wake_cursor).is_err() {
                break;
            }
        }
        streams.up.store(false, Ordering::Relaxed);
    }
}

/// Checks each followed room's epoch: a reset history is read from the
/// start of its new epoch (nothing of it was handed over yet).
fn check_epochs(
    shared: &Shared,
    con: &mut redis::Connection,
    follows: &mut HashMap<String, Follow>,
) -> redis::RedisResult<()> {
    if follows.is_empty() {
        return Ok(());
    }
    let rooms: Vec<String> = follows.keys().cloned().collect();
    let mut pipe = redis::pipe();
    for room in &rooms {
        pipe.add_command(position_command(shared, room));
    }
    let replies: Vec<Value> = pipe.query(con)?;
    for (room, reply) in rooms.iter().zip(&replies) {
        let (Some((epoch, _)), Some(follow)) = (parse_position(reply), follows.get_mut(room))
        else {
            continue;
        };
        if epoch != follow.epoch {
            reset(shared, follow, epoch);
        }
    }
    Ok(())
}

fn reset(shared: &Shared, follow: &mut Follow, epoch: Epoch) {
    follow.epoch = epoch;
    follow.cursor = Offset::ZERO;
    shared.resets.fetch_add(1, Ordering::Relaxed);
}

/// Answers joins and leaves, in the order they came.
fn take_requests(
    shared: &Shared,
    streams: &Streams,
    con: &mut redis::Connection,
    follows: &mut HashMap<String, Follow>,
) -> redis::RedisResult<()> {
    loop {
        let Some(request) = lock(&streams.requests).pop_front() else {
            return Ok(());
        };
        let ticket = match request {
            Request::Unfollow(room) => {
                follows.remove(&room);
                continue;
            }
            Request::Follow(ticket) => ticket,
        };
        let room = ticket.room().to_owned();
        if !follows.contains_key(&room) {
            if !streams.feed.is_current(&ticket) {
                continue; // it left before we got to it
            }
            match position(shared, con, &room) {
                Ok((epoch, top)) => {
                    // A room new here: live from where the history stands.
                    let key = log_key(shared, &room);
                    follows.insert(
                        room.clone(),
                        Follow {
                            key,
                            epoch,
                            cursor: top,
                        },
                    );
                }
                Err(e) => {
                    // Asked again after the reconnection.
                    lock(&streams.requests).push_front(Request::Follow(ticket));
                    return Err(e);
                }
            }
        }
        let Some(follow) = follows.get(&room) else {
            continue;
        };
        // Every entry after the cursor goes to the hub from here on, none
        // before it: the seam.
        streams
            .feed
            .positioned(&ticket, &follow.epoch, follow.cursor);
        if ticket.since().is_some() {
            let job = Job {
                ticket,
                epoch: follow.epoch.clone(),
                top: follow.cursor,
            };
            lock(&streams.jobs).push_back(job);
            streams.job_ready.notify_one();
        }
    }
}

/// One `XREAD` over the wake stream and every followed room.
fn read_live(
    shared: &Shared,
    streams: &Streams,
    con: &mut redis::Connection,
    follows: &mut HashMap<String, Follow>,
    wake_cursor: &mut String,
) -> redis::RedisResult<()> {
    let block = shared.config.heartbeat.as_millis().max(1) as u64;
    let rooms: Vec<String> = follows.keys().cloned().collect();
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT")
        .arg(shared.config.read_batch.max(1))
        .arg("BLOCK")
        .arg(block)
        .arg("STREAMS")
        .arg(wake_key(shared));
    for room in &rooms {
        cmd.arg(&follows[room].key);
    }
    cmd.arg(&*wake_cursor);
    for room in &rooms {
        cmd.arg(follows[room].cursor.to_string());
    }
    let reply: Value = cmd.query(con)?;
    let Value::Array(per_stream) = reply else {
        return Ok(()); // Nil: nothing within the block time
    };
    let by_key: HashMap<&str, &String> =
        rooms.iter().map(|r| (follows[r].key.as_str(), r)).collect();
    let mut batches: Vec<(String, Vec<Value>)> = Vec::new();
    for stream in per_stream {
        let Value::Array(parts) = stream else {
            continue;
        };
        let [key, entries] = <[Value; 2]>::try_from(parts).unwrap_or([Value::Nil, Value::Nil]);
        let (Some(key), Value::Array(entries)) = (text(&key), entries) else {
            continue;
        };
        if key == wake_key(shared) {
            if let Some(Value::Array(last)) = entries.last() {
                if let Some(id) = last.first().and_then(text) {
                    *wake_cursor = id;
                }
            }
            continue;
        }
        if let Some(room) = by_key.get(key.as_str()) {
            batches.push(((*room).clone(), entries));
        }
    }
    for (room, entries) in batches {
        let Some(follow) = follows.get_mut(&room) else {
            continue;
        };
        for value in &entries {
            let Some((offset, decoded)) = parse_entry(value) else {
                shared.malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let Some((message, epoch)) = decoded else {
                // Not ours: step over it.
                shared.malformed.fetch_add(1, Ordering::Relaxed);
                follow.cursor = offset;
                continue;
            };
            if epoch != follow.epoch {
                // The history was made anew since we looked: read the new
                // one from its start, next time round.
                reset(shared, follow, epoch);
                break;
            }
            follow.cursor = offset;
            shared.entries.fetch_add(1, Ordering::Relaxed);
            streams
                .feed
                .entry(Entry::new(&room, offset, epoch, Arc::new(message)));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The history reader

fn run_history(shared: &Shared) {
    let Some(streams) = shared.streams.get() else {
        return;
    };
    let mut backoff = Backoff::new(&shared.config);
    let mut con: Option<redis::Connection> = None;
    while !shared.stopped() {
        let job = {
            let mut jobs = lock(&streams.jobs);
            loop {
                if shared.stopped() {
                    return;
                }
                if let Some(job) = jobs.pop_front() {
                    break job;
                }
                jobs = streams
                    .job_ready
                    .wait_timeout(jobs, Duration::from_millis(500))
                    .map_or_else(|p| p.into_inner().0, |(g, _)| g);
            }
        };
        if !streams.feed.is_current(&job.ticket) {
            continue;
        }
        let Some(since) = job.ticket.since().cloned() else {
            continue;
        };
        let from = match since.offset {
            Some(offset) if since.epoch == job.epoch.as_str() && offset <= job.top => offset,
            // Another history, or one that lost what the member had: only
            // the live messages.
            _ => {
                streams.feed.history(&job.ticket, Vec::new(), false);
                continue;
            }
        };
        let entries = loop {
            if shared.stopped() {
                return;
            }
            let link = match con.take() {
                Some(link) => Ok(link),
                None => shared.connect(),
            };
            let mut link = match link {
                Ok(link) => link,
                Err(_) => {
                    backoff.wait(shared);
                    continue;
                }
            };
            match read_range(shared, &mut link, &job, from) {
                Ok(entries) => {
                    backoff.reset();
                    con = Some(link);
                    break entries;
                }
                Err(_) => backoff.wait(shared),
            }
        };
        let recovered = since.assess(&job.epoch, job.top, entries.first().map(Entry::offset));
        streams.feed.history(&job.ticket, entries, recovered);
    }
}

/// The entries of `job`'s room after `from`, up to its top, in pages.
fn read_range(
    shared: &Shared,
    con: &mut redis::Connection,
    job: &Job,
    from: Offset,
) -> redis::RedisResult<Vec<Entry>> {
    let room = job.ticket.room();
    let key = log_key(shared, room);
    let page = shared.config.read_batch.max(1);
    let mut entries = Vec::new();
    let mut after = from;
    while after < job.top {
        let reply: Value = redis::cmd("XRANGE")
            .arg(&key)
            .arg(format!("({after}"))
            .arg(job.top.to_string())
            .arg("COUNT")
            .arg(page)
            .query(con)?;
        let Value::Array(values) = reply else { break };
        let count = values.len();
        for value in &values {
            let Some((offset, decoded)) = parse_entry(value) else {
                continue;
            };
            after = offset;
            if let Some((message, epoch)) = decoded {
                if epoch == job.epoch {
                    entries.push(Entry::new(room, offset, epoch, Arc::new(message)));
                }
            }
        }
        if count < page {
            break;
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn entries_parse_and_strangers_are_told_apart() {
        let ours = Value::Array(vec![
            bulk("1718000000000-7"),
            Value::Array(vec![
                bulk("k"),
                bulk("t"),
                bulk("d"),
                bulk("hé"),
                bulk("e"),
                bulk("ab"),
            ]),
        ]);
        let (offset, decoded) = parse_entry(&ours).unwrap();
        assert_eq!(offset, Offset::new(1718000000000, 7));
        assert_eq!(decoded, Some((Message::text("hé"), Epoch::new("ab"))));
        let stranger = Value::Array(vec![bulk("5-1"), Value::Array(vec![bulk("x"), bulk("y")])]);
        assert_eq!(parse_entry(&stranger), Some((Offset::new(5, 1), None)));
        let bad_text = Value::Array(vec![
            bulk("5-2"),
            Value::Array(vec![
                bulk("k"),
                bulk("t"),
                Value::BulkString(vec![0xff]),
                bulk("e"),
            ]),
        ]);
        assert_eq!(parse_entry(&bad_text).map(|(_, d)| d), Some(None));
        assert_eq!(parse_entry(&bulk("garbage")), None);
    }

    #[test]
    fn scripts_are_named_by_their_sha1() {
        let (position, append) = scripts();
        assert_eq!(position.sha.len(), 40);
        assert_ne!(position.sha, append.sha);
        assert!(append.body.starts_with(POSITION));
    }
}
