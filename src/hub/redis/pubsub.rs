//! The two pub/sub threads: the publisher (which also appends to the
//! rooms' streams, in the same pipelines, and wakes the stream reader) and
//! the subscriber.

use super::frame::{decode, encode};
use super::link::{short_session_pause, Backoff};
use super::{lock, streams, Append, Outgoing, Shared, MAX_BATCH, MAX_TRACKED};
use crate::hub::history::Outcome;
use redis::ConnectionLike;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The publisher thread

pub(super) fn run_publisher(shared: &Shared, outgoing: Receiver<Outgoing>) {
    let mut backoff = Backoff::new(&shared.config);
    // Sequence numbers per channel, so that a subscriber of some rooms only
    // can still tell a gap from a message for a room it does not follow.
    let mut seqs: HashMap<String, u64> = HashMap::new();
    // Appends whose link failed before answering: sent again, first, on
    // the next link (their ids make that safe).
    let mut resend: Vec<Append> = Vec::new();
    while !shared.stopped() {
        let connected = shared
            .connect()
            .and_then(|mut con| streams::load_scripts(&mut con).map(|()| con));
        let mut con = match connected {
            Ok(con) => con,
            Err(_) => {
                shared.publisher_up.store(false, Ordering::Relaxed);
                // Sent once, perhaps taken: nobody can say.
                for append in resend.drain(..) {
                    (append.done)(Outcome::Unknown);
                }
                // Whatever waits now would be stale by the time Redis is
                // back: broadcasts stay local (counted), appends are refused.
                for item in outgoing.try_iter() {
                    match item {
                        Outgoing::Publish { .. } => {
                            shared.not_published.fetch_add(1, Ordering::Relaxed);
                        }
                        Outgoing::Append(append) => {
                            (append.done)(Outcome::Refused(crate::hub::Refusal::Unavailable))
                        }
                        Outgoing::Wake => {}
                    }
                }
                backoff.wait(shared);
                continue;
            }
        };
        backoff.reset();
        shared.publisher_up.store(true, Ordering::Relaxed);
        let session = Instant::now();
        if publish_until_error(shared, &mut con, &outgoing, &mut seqs, &mut resend).is_err() {
            shared.publisher_up.store(false, Ordering::Relaxed);
            short_session_pause(shared, session, &mut backoff);
        }
    }
    shared.publisher_up.store(false, Ordering::Relaxed);
}

/// Publishes and appends in batches until the link fails (`Err`) or the
/// relay stops. Each batch is one pipelined round trip.
fn publish_until_error(
    shared: &Shared,
    con: &mut ::redis::Connection,
    outgoing: &Receiver<Outgoing>,
    seqs: &mut HashMap<String, u64>,
    resend: &mut Vec<Append>,
) -> Result<(), ()> {
    let heartbeat = shared.config.heartbeat;
    let mut last_beat: Option<Instant> = None;
    while !shared.stopped() {
        let wait = last_beat.map_or(Duration::ZERO, |t| heartbeat.saturating_sub(t.elapsed()));
        let first = match resend.is_empty() {
            true => match outgoing.recv_timeout(wait) {
                Ok(item) => Some(item),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            },
            false => None,
        };
        let mut pipe = ::redis::pipe();
        let mut published = 0u64;
        // The appends, by their place in the pipeline.
        let mut appends: Vec<(usize, Append)> = Vec::new();
        let mut wake = false;
        let again = resend.drain(..).map(Outgoing::Append);
        let items: Vec<Outgoing> = again
            .chain(first)
            .chain(outgoing.try_iter().take(MAX_BATCH))
            .collect();
        for item in items {
            match item {
                Outgoing::Publish { channel, message } => {
                    let seq = seqs.entry(channel.clone()).or_insert(0);
                    *seq += 1;
                    if let Some(frame) = encode(shared.instance, *seq, &message) {
                        pipe.cmd("PUBLISH").arg(channel).arg(frame);
                        published += 1;
                    }
                }
                Outgoing::Append(append) => match streams::append_command(shared, &append) {
                    Some(cmd) => {
                        appends.push((pipe.len(), append));
                        pipe.add_command(cmd);
                    }
                    None => (append.done)(Outcome::Refused(crate::hub::Refusal::Closed)),
                },
                Outgoing::Wake => wake = true,
            }
        }
        let beat = wake || last_beat.is_none_or(|t| t.elapsed() >= heartbeat);
        if beat {
            pipe.cmd("PUBLISH")
                .arg(&shared.control_channel)
                .arg(&b""[..]);
            streams::wake_commands(shared, &mut pipe);
            last_beat = Some(Instant::now());
        } else if pipe.is_empty() {
            continue;
        }
        // Command by command, so that one refused append (an error reply)
        // does not hide the others' answers.
        match con.req_packed_commands(&pipe.get_packed_pipeline(), 0, pipe.len()) {
            Ok(replies) => {
                shared.published.fetch_add(published, Ordering::Relaxed);
                for (at, append) in appends {
                    let outcome = streams::append_outcome(shared, replies.get(at), &append);
                    (append.done)(outcome);
                }
            }
            Err(_) => {
                shared.not_published.fetch_add(published, Ordering::Relaxed);
                for (_, mut append) in appends {
                    if append.resent {
                        // Sent twice, perhaps taken: nobody can say.
                        (append.done)(Outcome::Unknown);
                    } else {
                        // Perhaps taken: once more on the next link, where
                        // its id makes a second copy impossible.
                        append.resent = true;
                        resend.push(append);
                    }
                }
                return Err(());
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The subscriber thread

pub(super) fn run_subscriber(shared: &Shared) {
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
