//! Rooms with history in Redis Streams: the scripts that append and tell
//! where a history stands, the commands and replies (here), and the two
//! reader threads, live and history (`read.rs`). See the
//! [module docs](super) for the keys and the guarantees.

mod read;

use read::{run_history, run_reader};

use super::link::spawn;
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
/// A new epoch's IDs start after the old epoch's last millisecond: the
/// sequence restarts at 1, so within the same millisecond its first entry
/// would sort before the live readers' cursors, and `XREAD` (only IDs
/// after the cursor) would never hand it to them.
const POSITION: &str = r#"
local function position(log, meta, fresh)
  local epoch = redis.call('HGET', meta, 'epoch')
  local top = redis.call('HMGET', meta, 'ms', 'seq')
  if epoch and redis.call('EXISTS', log) == 1 then
    return epoch, tonumber(top[1]) or 0, tonumber(top[2]) or 0
  end
  local floor = 0
  if top[1] then floor = tonumber(top[1]) + 1 end
  redis.call('DEL', log)
  redis.call('HSET', meta, 'epoch', fresh, 'ms', floor, 'seq', 0)
  redis.call('XADD', log, '0-1', 'g', '1')
  redis.call('XDEL', log, '0-1')
  return fresh, floor, 0
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
