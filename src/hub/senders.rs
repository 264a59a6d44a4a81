//! The threads that write broadcasts to members: a few shared workers, not
//! one thread per member.
//!
//! Each member has a mailbox (a bounded queue of shared messages). A
//! broadcast puts the message in every mailbox and hands the mailboxes that
//! were idle to the run queue, which a small set of workers drains: one
//! broadcast to N members costs a few thread wake-ups, not N.
//!
//! A member is served by one worker at a time (a mailbox is in the run queue
//! or being written at most once), so its messages stay in order. A worker
//! takes everything a mailbox holds and writes it with one vectored write:
//! a text or binary broadcast's frame header is encoded once
//! ([`Outbound`]), and a server connection without extensions gets those
//! bytes and the shared payload as they are, so a burst of broadcasts costs
//! each member one system call, not one per message, and nothing is encoded
//! or copied per member. Writes
//! block, so a client that stops reading holds the worker that writes to it
//! until the write fails (the server's write timeout): a watchdog notices
//! when there is work, no idle worker and no progress for [`STALL`], and
//! starts one more worker. So no client holds up the others for longer than
//! that, and threads grow only with the number of clients stuck at once.

use super::lock;
use crate::frame::{CloseCode, EncodedHeader, FrameHeader};
use crate::protocol::PreparedMessage;
use crate::websocket::SharedFrame;
use crate::{Message, Writer};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread;
use std::time::Duration;

/// Stack of a worker: it only encodes and writes.
const WORKER_STACK: usize = 64 * 1024;
/// How long work may wait with every worker blocked before one is added.
const STALL: Duration = Duration::from_millis(20);
/// Extra workers (beyond the minimum) end after this long without work.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// Writes messages, in order, to a member's connection.
pub(super) type WriteFn = dyn Fn(&[Arc<Outbound>]) -> crate::Result<()> + Send + Sync;
/// Starts the close handshake on a member's connection (may block).
pub(super) type CloseFn = dyn Fn(CloseCode, &str) + Send + Sync;
/// Told the id of a member: whose write failed, or whose queue drained.
pub(super) type FailedFn = dyn Fn(u64) + Send + Sync;

/// How much a member's queue may hold before it counts as slow.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Messages.
    pub(super) len: usize,
    /// Payload bytes, the batch being written included.
    pub(super) bytes: usize,
}

impl Bounds {
    /// Whether a queue holding `len` messages and `bytes` bytes can take
    /// one more of `add` bytes. A queue with nothing waiting always can,
    /// so that a message larger than the byte bound still goes out alone.
    pub(super) fn fits(&self, len: usize, bytes: usize, add: usize) -> bool {
        len < self.len && (bytes == 0 || bytes.saturating_add(add) <= self.bytes)
    }
}

/// One broadcast as every member's queue shares it: the prepared message
/// (which also shares its compressed forms, see [`PreparedMessage`]) and,
/// for text and binary, its plain frame header, encoded once. A server's
/// frames are not masked, so without an extension these bytes are right
/// for every member (RFC 6455 §5.1).
pub(super) struct Outbound {
    prepared: Arc<PreparedMessage>,
    header: Option<EncodedHeader>,
}

impl Outbound {
    pub(super) fn new(prepared: Arc<PreparedMessage>) -> Outbound {
        let message = prepared.message();
        let header = match **message {
            Message::Text(_) | Message::Binary(_) => {
                let len = message.as_bytes().len() as u64;
                Some(FrameHeader::new(message.opcode(), len).encode())
            }
            _ => None,
        };
        Outbound { prepared, header }
    }

    /// The message it carries.
    pub(super) fn message(&self) -> &Arc<Message> {
        self.prepared.message()
    }

    /// Its payload length: what it costs a queue.
    pub(super) fn len(&self) -> usize {
        self.prepared.message().len()
    }

    /// The frame as it goes on a server connection without extensions.
    fn shared_frame(&self) -> Option<SharedFrame<'_>> {
        let message = self.prepared.message();
        Some(SharedFrame {
            opcode: message.opcode(),
            header: self.header.as_ref()?.as_bytes(),
            payload: message.as_bytes(),
        })
    }
}

/// Writes `batch` to `writer`: each run of text and binary messages in one
/// vectored write of their shared frames when the connection takes them
/// (see [`Writer::send_shared`]), anything else framed for this connection
/// (compressed once per shared setting: [`Writer::send_prepared`]).
pub(super) fn write_batch<S: Write>(
    writer: &Writer<S>,
    batch: &[Arc<Outbound>],
) -> crate::Result<()> {
    let mut rest = batch;
    while !rest.is_empty() {
        let frames: Vec<SharedFrame<'_>> = rest.iter().map_while(|o| o.shared_frame()).collect();
        let taken = frames.len().max(1);
        if frames.is_empty() || !writer.send_shared(&frames)? {
            for outbound in &rest[..taken] {
                writer.send_prepared(&outbound.prepared)?;
            }
        }
        rest = &rest[taken..];
    }
    Ok(())
}

/// One member's queue and the way to write to it.
pub(super) struct Mailbox {
    pub(super) id: u64,
    write: Box<WriteFn>,
    close: Box<CloseFn>,
    state: Mutex<MailState>,
    /// Messages this member missed because its queue was full.
    pub(super) dropped: Arc<AtomicU64>,
    /// Someone waits for this queue to drain (a recovery being paced).
    pub(super) paced: AtomicBool,
}

#[derive(Default)]
struct MailState {
    queue: VecDeque<Arc<Outbound>>,
    /// Payload bytes queued or being written.
    bytes: usize,
    /// In the run queue or being written by a worker.
    scheduled: bool,
    /// A write failed, or the member is being closed: nothing more is taken.
    failed: bool,
    /// Close the connection with this code instead of writing more.
    closing: Option<(CloseCode, &'static str)>,
}

/// What [`Mailbox::offer`] did.
pub(super) enum Offer {
    /// Queued; the mailbox was idle and must go to the run queue.
    Schedule,
    /// Queued behind messages a worker will write.
    Queued,
    /// The queue was full: the member misses this message.
    Full,
    /// The member's connection failed.
    Closed,
}

impl Mailbox {
    pub(super) fn new(id: u64, write: Box<WriteFn>, close: Box<CloseFn>) -> Mailbox {
        Mailbox {
            id,
            write,
            close,
            state: Mutex::default(),
            dropped: Arc::default(),
            paced: AtomicBool::new(false),
        }
    }

    /// Queues `message` unless the queue is at its `bounds` (then the
    /// member misses it, counted in `dropped` when `count` says so).
    pub(super) fn offer(&self, message: &Arc<Outbound>, bounds: Bounds, count: bool) -> Offer {
        let mut state = lock(&self.state);
        if state.failed {
            return Offer::Closed;
        }
        if !bounds.fits(state.queue.len(), state.bytes, message.len()) {
            if count {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return Offer::Full;
        }
        state.queue.push_back(Arc::clone(message));
        state.bytes += message.len();
        if state.scheduled {
            Offer::Queued
        } else {
            state.scheduled = true;
            Offer::Schedule
        }
    }

    /// Whether a message of `len` bytes would be taken now.
    pub(super) fn fits(&self, bounds: Bounds, len: usize) -> bool {
        let state = lock(&self.state);
        !state.failed && bounds.fits(state.queue.len(), state.bytes, len)
    }

    /// Drops what is queued and has the connection closed with `code` by a
    /// sender thread (the write may block). Returns whether the mailbox
    /// must be scheduled for that.
    pub(super) fn close(&self, code: CloseCode, reason: &'static str) -> bool {
        let mut state = lock(&self.state);
        if state.failed {
            return false;
        }
        state.failed = true;
        let dropped: usize = state.queue.drain(..).map(|o| o.len()).sum();
        state.bytes -= dropped;
        state.closing = Some((code, reason));
        !std::mem::replace(&mut state.scheduled, true)
    }
}

/// The run queue and its workers.
pub(super) struct Pool {
    run: Mutex<Run>,
    ready: Condvar,
    /// Messages written so far: the watchdog's sign of life.
    progress: AtomicU64,
    closed: AtomicBool,
    min_workers: usize,
    failed: Box<FailedFn>,
    drained: Box<FailedFn>,
}

#[derive(Default)]
struct Run {
    tasks: VecDeque<Arc<Mailbox>>,
    workers: usize,
    idle: usize,
    watchdog: bool,
}

impl Pool {
    /// A pool with no threads yet; `failed` is called with the id of each
    /// member whose write fails (or that was closed), `drained` with the id
    /// of a [`paced`](Mailbox::paced) member whose queue was written out.
    pub(super) fn new(failed: Box<FailedFn>, drained: Box<FailedFn>) -> Arc<Pool> {
        let cores = thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Pool {
            run: Mutex::default(),
            ready: Condvar::new(),
            progress: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            min_workers: cores.clamp(2, 8),
            failed,
            drained,
        })
    }

    /// Hands mailboxes that just became non-empty to the workers, starting
    /// the workers on first use.
    ///
    /// Panics only if the operating system cannot start a thread.
    pub(super) fn schedule(self: &Arc<Pool>, mailboxes: Vec<Arc<Mailbox>>) {
        if mailboxes.is_empty() {
            return;
        }
        let mut run = lock(&self.run);
        let wake = mailboxes.len().min(run.idle);
        run.tasks.extend(mailboxes);
        let start = self.min_workers.saturating_sub(run.workers);
        run.workers += start;
        let watchdog = !std::mem::replace(&mut run.watchdog, true);
        drop(run);
        for _ in 0..wake {
            self.ready.notify_one();
        }
        for _ in 0..start {
            self.spawn_worker();
        }
        if watchdog {
            let pool = Arc::downgrade(self);
            spawn("rfc6455-hub-watch", move || watch(&pool));
        }
    }

    /// No more work will come: idle workers and the watchdog end (after
    /// what is queued has been written).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.ready.notify_all();
    }

    fn spawn_worker(self: &Arc<Pool>) {
        let pool = Arc::clone(self);
        spawn("rfc6455-hub", move || work(&pool));
    }

    /// The next mailbox to serve, or `None` when this worker should end.
    fn next_task(&self) -> Option<Arc<Mailbox>> {
        let mut run = lock(&self.run);
        loop {
            if let Some(task) = run.tasks.pop_front() {
                return Some(task);
            }
            if self.closed.load(Ordering::Relaxed) {
                run.workers -= 1;
                return None;
            }
            run.idle += 1;
            let (guard, waited) = self
                .ready
                .wait_timeout(run, IDLE_EXIT)
                .unwrap_or_else(|p| p.into_inner());
            run = guard;
            run.idle -= 1;
            // Counted under the lock: two idle workers cannot both leave
            // the pool below its minimum.
            if waited.timed_out() && run.workers > self.min_workers && run.tasks.is_empty() {
                run.workers -= 1;
                return None;
            }
        }
    }

    /// Writes what `mailbox` holds until it is empty.
    fn serve(&self, mailbox: &Mailbox) {
        loop {
            let batch: Vec<Arc<Outbound>> = {
                let mut state = lock(&mailbox.state);
                if let Some((code, reason)) = state.closing.take() {
                    state.scheduled = false;
                    drop(state);
                    (mailbox.close)(code, reason);
                    (self.failed)(mailbox.id);
                    return;
                }
                if state.failed || state.queue.is_empty() {
                    state.scheduled = false;
                    drop(state);
                    if mailbox.paced.load(Ordering::Relaxed) {
                        (self.drained)(mailbox.id);
                    }
                    return;
                }
                state.queue.drain(..).collect()
            };
            let bytes: usize = batch.iter().map(|o| o.len()).sum();
            if (mailbox.write)(&batch).is_err() {
                let mut state = lock(&mailbox.state);
                state.failed = true;
                state.scheduled = false;
                state.queue.clear();
                state.bytes = 0;
                drop(state);
                (self.failed)(mailbox.id);
                return;
            }
            lock(&mailbox.state).bytes -= bytes;
            self.progress
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .name(name.into())
        .stack_size(WORKER_STACK)
        .spawn(work)
        .expect("cannot spawn a hub thread");
}

fn work(pool: &Pool) {
    while let Some(mailbox) = pool.next_task() {
        pool.serve(&mailbox);
    }
}

/// Adds a worker whenever work waits, no worker is idle and none has written
/// anything for [`STALL`]: every worker is blocked on a client that does not
/// read. Ends with the pool.
fn watch(pool: &Weak<Pool>) {
    let mut last = u64::MAX;
    loop {
        thread::sleep(STALL);
        let Some(pool) = pool.upgrade() else { return };
        if pool.closed.load(Ordering::Relaxed) {
            return;
        }
        let progress = pool.progress.load(Ordering::Relaxed);
        let mut run = lock(&pool.run);
        let stalled = !run.tasks.is_empty() && run.idle == 0 && progress == last;
        if stalled {
            run.workers += 1;
        }
        drop(run);
        if stalled {
            pool.spawn_worker();
        }
        last = progress;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use std::sync::mpsc;

    fn text(n: usize) -> Arc<Outbound> {
        let message = PreparedMessage::new(Message::Text(n.to_string()));
        Arc::new(Outbound::new(Arc::new(message)))
    }

    /// A mailbox whose writes go to a channel.
    fn recording(id: u64) -> (Arc<Mailbox>, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let write = move |batch: &[Arc<Outbound>]| {
            for outbound in batch {
                if let Message::Text(t) = &**outbound.prepared.message() {
                    let _ = lock(&tx).send(t.clone());
                }
            }
            Ok(())
        };
        (mailbox(id, write), rx)
    }

    const ROOMY: Bounds = Bounds {
        len: 10_000,
        bytes: usize::MAX,
    };

    fn bounds(len: usize) -> Bounds {
        Bounds {
            len,
            bytes: usize::MAX,
        }
    }

    fn mailbox(
        id: u64,
        write: impl Fn(&[Arc<Outbound>]) -> crate::Result<()> + Send + Sync + 'static,
    ) -> Arc<Mailbox> {
        Arc::new(Mailbox::new(id, Box::new(write), Box::new(|_, _| {})))
    }

    fn pool() -> Arc<Pool> {
        Pool::new(Box::new(|_| {}), Box::new(|_| {}))
    }

    fn offer_all(pool: &Arc<Pool>, mailboxes: &[&Arc<Mailbox>], message: &Arc<Outbound>) {
        let idle = mailboxes
            .iter()
            .filter(|m| matches!(m.offer(message, ROOMY, true), Offer::Schedule))
            .map(|m| Arc::clone(m))
            .collect();
        pool.schedule(idle);
    }

    #[test]
    fn messages_to_one_member_are_written_in_order() {
        let pool = pool();
        let (mailbox, written) = recording(1);
        for n in 0..2000 {
            offer_all(&pool, &[&mailbox], &text(n));
        }
        for n in 0..2000 {
            let got = written.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(got, n.to_string());
        }
        pool.close();
    }

    #[test]
    fn what_a_mailbox_holds_is_written_in_one_call() {
        let pool = pool();
        let (tx, sizes) = mpsc::channel();
        let tx = Mutex::new(tx);
        let write = move |batch: &[Arc<Outbound>]| {
            let _ = lock(&tx).send(batch.len());
            Ok(())
        };
        let mailbox = mailbox(1, write);
        // Queued before any worker runs: one write for the five.
        let first = matches!(mailbox.offer(&text(0), bounds(10), true), Offer::Schedule);
        for n in 1..5 {
            assert!(matches!(
                mailbox.offer(&text(n), bounds(10), true),
                Offer::Queued
            ));
        }
        assert!(first);
        pool.schedule(vec![Arc::clone(&mailbox)]);
        assert_eq!(sizes.recv_timeout(Duration::from_secs(10)), Ok(5));
        pool.close();
    }

    #[test]
    fn members_stuck_in_writes_do_not_hold_up_the_others() {
        let pool = pool();
        // More stuck members than the pool has workers at first.
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let stuck: Vec<Arc<Mailbox>> = (0..pool.min_workers as u64 + 4)
            .map(|id| {
                let gate = Arc::clone(&gate);
                let write = move |_: &[Arc<Outbound>]| {
                    let _ = lock(&gate).recv();
                    Ok(())
                };
                mailbox(id, write)
            })
            .collect();
        let (free, written) = recording(99);
        let mut all: Vec<&Arc<Mailbox>> = stuck.iter().collect();
        all.push(&free);
        offer_all(&pool, &all, &text(7));
        // Bounded by the watchdog adding workers, not by the stuck writes.
        assert_eq!(written.recv_timeout(Duration::from_secs(10)).unwrap(), "7");
        drop(release);
        pool.close();
    }

    #[test]
    fn a_failed_write_reports_the_member_and_closes_its_mailbox() {
        let (tx, failed) = mpsc::channel();
        let tx = Mutex::new(tx);
        let pool = Pool::new(
            Box::new(move |id| {
                let _ = lock(&tx).send(id);
            }),
            Box::new(|_| {}),
        );
        let write = |_: &[Arc<Outbound>]| Err(crate::Error::ConnectionClosed);
        let mailbox = mailbox(5, write);
        offer_all(&pool, &[&mailbox], &text(1));
        assert_eq!(failed.recv_timeout(Duration::from_secs(10)), Ok(5));
        assert!(matches!(
            mailbox.offer(&text(2), bounds(10), true),
            Offer::Closed
        ));
        pool.close();
    }

    #[test]
    fn a_full_mailbox_counts_what_its_member_misses() {
        let (mailbox, _written) = recording(1);
        // Never scheduled: nothing drains it.
        assert!(matches!(
            mailbox.offer(&text(1), bounds(2), true),
            Offer::Schedule
        ));
        assert!(matches!(
            mailbox.offer(&text(2), bounds(2), true),
            Offer::Queued
        ));
        assert!(matches!(
            mailbox.offer(&text(3), bounds(2), true),
            Offer::Full
        ));
        assert_eq!(mailbox.dropped.load(Ordering::Relaxed), 1);
    }

    fn binary(len: usize) -> Arc<Outbound> {
        let message = PreparedMessage::new(Message::Binary(vec![0; len]));
        Arc::new(Outbound::new(Arc::new(message)))
    }

    #[test]
    fn a_queue_is_bounded_in_bytes_as_well_as_in_messages() {
        let (mailbox, _written) = recording(1);
        let bounds = Bounds {
            len: 100,
            bytes: 1000,
        };
        // One larger than the bound still goes, alone.
        assert!(matches!(
            mailbox.offer(&binary(5000), bounds, true),
            Offer::Schedule
        ));
        assert!(matches!(
            mailbox.offer(&binary(1), bounds, true),
            Offer::Full
        ));
        let (mailbox, _written) = recording(2);
        for _ in 0..4 {
            assert!(!matches!(
                mailbox.offer(&binary(250), bounds, true),
                Offer::Full
            ));
        }
        assert!(!mailbox.fits(bounds, 1));
        assert!(matches!(
            mailbox.offer(&binary(1), bounds, false),
            Offer::Full
        ));
        assert_eq!(mailbox.dropped.load(Ordering::Relaxed), 0, "not counted");
    }

    #[test]
    fn a_closed_mailbox_drops_its_queue_and_closes_once() {
        let (tx, closed) = mpsc::channel();
        let tx = Mutex::new(tx);
        let (failed_tx, failed) = mpsc::channel();
        let failed_tx = Mutex::new(failed_tx);
        let pool = Pool::new(
            Box::new(move |id| {
                let _ = lock(&failed_tx).send(id);
            }),
            Box::new(|_| {}),
        );
        let close = move |code: CloseCode, _: &str| {
            let _ = lock(&tx).send(code);
        };
        let mailbox = Arc::new(Mailbox::new(3, Box::new(|_| Ok(())), Box::new(close)));
        assert!(matches!(
            mailbox.offer(&text(1), ROOMY, true),
            Offer::Schedule
        ));
        // Scheduled already (never handed to the pool): no second schedule.
        assert!(!mailbox.close(CloseCode::TRY_AGAIN_LATER, "slow"));
        assert!(!mailbox.close(CloseCode::TRY_AGAIN_LATER, "slow"));
        assert!(matches!(
            mailbox.offer(&text(2), ROOMY, true),
            Offer::Closed
        ));
        pool.schedule(vec![Arc::clone(&mailbox)]);
        let code = closed.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(code, CloseCode::TRY_AGAIN_LATER);
        assert_eq!(failed.recv_timeout(Duration::from_secs(10)), Ok(3));
        assert!(closed.recv_timeout(Duration::from_millis(50)).is_err());
        pool.close();
    }
}
