//! The two reader threads of the Redis log: the live reader (`XREAD` of
//! every followed room from its cursor, joins positioned at it, entries
//! delivered in stream order, epochs checked after a reconnect) and the
//! history reader (`XRANGE` of what a returning member missed).

use super::super::link::Backoff;
use super::*;

// ---------------------------------------------------------------------------
// The live reader

pub(super) fn run_reader(shared: &Shared) {
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
            super::load_scripts(&mut con)?;
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
        // Nil: nothing within the block time. A history lost with its
        // meta (a flushed Redis) may restart below the cursors: look.
        return check_epochs(shared, con, follows);
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

pub(super) fn run_history(shared: &Shared) {
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
