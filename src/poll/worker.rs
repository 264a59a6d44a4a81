//! One worker of the poll engine: a `mio::Poll` over its connections, a
//! heap of their timers, and its [`Inbox`] for what other threads hand it.

use super::count::Load;
use super::inbox::{Command, Inbox, WAKE};
use super::sender::{Sender, Shared as SenderShared};
use super::slot::{Env, Slot, Turn};
use super::Handler;
use crate::engine::config::ServerConfig;
use crate::error::Error;
use crate::protocol::Lifecycle;
use mio::{Events, Interest, Poll, Token};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
/// The read buffer each worker shares among its connections.
const READ_BUF: usize = 256 * 1024;
/// Readiness events taken per poll.
const EVENTS: usize = 1024;

pub(super) struct Worker<H: Handler> {
    pub(super) poll: Poll,
    pub(super) inbox: Arc<Inbox>,
    pub(super) handler: Arc<H>,
    pub(super) config: Arc<ServerConfig>,
    pub(super) load: Arc<Load>,
    pub(super) index: usize,
    pub(super) max_pending: usize,
}

/// The worker's connections, in slots indexed by their token.
struct Slots<St> {
    slots: Vec<Option<Slot<St>>>,
    free: Vec<usize>,
    live: usize,
}

/// Why a worker's loop returned.
enum Exit {
    /// The server stopped and every connection is gone.
    Stopped,
    /// The poll itself failed: the worker cannot go on.
    PollFailed(std::io::Error),
}

/// What a worker's loop keeps across a restart after a panic: the
/// connections (to close them properly) and whether the server is stopping.
struct Kept<St> {
    slots: Slots<St>,
    stop_by: Option<Instant>,
}

impl<H: Handler> Worker<H> {
    /// Runs until the server stops and every connection is gone (or the
    /// shutdown timeout cuts the rest off).
    ///
    /// A panic in the loop (user code runs under its own `catch_unwind`, so
    /// this is a bug of the engine's) costs the worker's connections, not
    /// the server: each is closed and its handler's `on_close` and the
    /// server's `on_error` hear why, the failure is counted
    /// ([`PollHandle::worker_failures`](super::PollHandle::worker_failures)),
    /// and the loop starts again on the same thread, poll and inbox, so new
    /// connections keep being served. A worker whose poll fails stops for
    /// good: its inbox closes, so no connection is handed to it any more.
    pub(super) fn run(mut self) {
        let (handler, config) = (Arc::clone(&self.handler), Arc::clone(&self.config));
        let ws_config = config.websocket_config();
        let mut rbuf = vec![0u8; READ_BUF];
        let mut env = Env {
            handler: &*handler,
            config: &config,
            ws_config: &ws_config,
            rbuf: &mut rbuf,
            max_pending: self.max_pending,
        };
        let mut kept = Kept {
            slots: Slots {
                slots: Vec::new(),
                free: Vec::new(),
                live: 0,
            },
            stop_by: None,
        };
        let exit = loop {
            match catch_unwind(AssertUnwindSafe(|| self.turns(&mut env, &mut kept))) {
                Ok(exit) => break exit,
                Err(panic) => {
                    self.load.worker_failed();
                    let why = format!(
                        "poll worker {} failed ({}): the connection was lost",
                        self.index,
                        panic_message(&*panic)
                    );
                    self.close_all(&mut env, &mut kept.slots, &why);
                }
            }
        };
        if let Exit::PollFailed(e) = exit {
            self.load.worker_failed();
            let why = format!("poll worker {} stopped: its poll failed: {e}", self.index);
            self.close_all(&mut env, &mut kept.slots, &why);
        }
        // Connections handed over meanwhile are counted out.
        self.inbox.close();
    }

    /// Ends every connection the worker has, with `why` as their error; if
    /// even that panics, their sockets are dropped and counted out.
    fn close_all(&self, env: &mut Env<'_, H>, slots: &mut Slots<H::State>, why: &str) {
        let closed = catch_unwind(AssertUnwindSafe(|| {
            for at in 0..slots.slots.len() {
                if let Some(slot) = slots.get(at) {
                    slot.abort(env, Error::Io(std::io::Error::other(why)));
                    slots.remove(&self.poll, at, &self.load, self.index);
                }
            }
        }));
        if closed.is_err() {
            for at in 0..slots.slots.len() {
                slots.remove(&self.poll, at, &self.load, self.index);
            }
        }
    }

    /// The event loop: until the server has stopped and every connection is
    /// gone, or the poll fails.
    fn turns(&mut self, env: &mut Env<'_, H>, kept: &mut Kept<H::State>) -> Exit {
        let Worker {
            poll,
            inbox,
            config,
            load,
            index,
            max_pending,
            ..
        } = self;
        let (index, max_pending) = (*index, *max_pending);
        let Kept { slots, stop_by } = kept;
        // After a restart the connections are gone (the stop, if any, is
        // not): so are their timers.
        let mut timers: BinaryHeap<Reverse<(Instant, usize, u64)>> = BinaryHeap::new();
        let mut events = Events::with_capacity(EVENTS);
        let mut commands = Vec::new();
        let mut again: Vec<usize> = Vec::new();
        let mut touched: Vec<usize> = Vec::new();
        loop {
            if let Some(stop) = *stop_by {
                if slots.live == 0 {
                    return Exit::Stopped;
                }
                if Instant::now() >= stop {
                    // Shutdown timeout: cut the stragglers off.
                    for at in 0..slots.slots.len() {
                        if let Some(slot) = slots.get(at) {
                            slot.abort(env, Error::ConnectionClosed);
                            slots.remove(poll, at, load, index);
                        }
                    }
                    return Exit::Stopped;
                }
            }
            let now = Instant::now();
            let mut timeout = timers
                .peek()
                .map(|Reverse((at, _, _))| at.saturating_duration_since(now));
            if !again.is_empty() {
                timeout = Some(Duration::ZERO);
            }
            if let Some(stop) = *stop_by {
                // Wake up in time to cut stragglers off.
                let left = stop.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Exit::PollFailed(e);
                }
            }
            // The poll may have slept long: deadlines set from here on (a
            // new connection's handshake timeout) count from now, not from
            // before it (that made an idle worker answer 408 at once).
            let now = Instant::now();
            // Connections whose turn ran out last time go first.
            for at in std::mem::take(&mut again) {
                if let Some(slot) = slots.get(at) {
                    if slot.on_ready(env) == Turn::Again {
                        again.push(at);
                    }
                    touched.push(at);
                }
            }
            for event in events.iter() {
                let token = event.token();
                if token == WAKE {
                    inbox.take(&mut commands);
                    for command in commands.drain(..) {
                        match command {
                            Command::Accept(handover) => {
                                let Some((stream, peer)) = handover.take() else {
                                    continue;
                                };
                                let sender_shared = Arc::new(SenderShared::default());
                                let id = load.next_id();
                                let life = Lifecycle::server(
                                    config.http_limits.clone(),
                                    config.handshake_timeout,
                                    env.ws_config,
                                    config.write_timeout,
                                    now,
                                );
                                if let Some(at) = slots.insert(
                                    poll,
                                    stream,
                                    peer,
                                    |at| Sender {
                                        inbox: Arc::clone(inbox),
                                        slot: at,
                                        id,
                                        shared: sender_shared,
                                        max_pending,
                                    },
                                    life,
                                ) {
                                    touched.push(at);
                                    if stop_by.is_some() {
                                        if let Some(slot) = slots.get(at) {
                                            slot.go_away(env);
                                        }
                                    }
                                } else {
                                    load.ended(index);
                                }
                            }
                            Command::Send { slot, id, message } => {
                                if let Some(s) = slots.get_id(slot, id) {
                                    s.deliver(&message, max_pending);
                                    touched.push(slot);
                                }
                            }
                            Command::Close {
                                slot,
                                id,
                                code,
                                reason,
                            } => {
                                if let Some(s) = slots.get_id(slot, id) {
                                    s.close(code, &reason);
                                    touched.push(slot);
                                }
                            }
                            Command::Answered { slot, id } => {
                                if let Some(s) = slots.get_id(slot, id) {
                                    s.answered(env);
                                    touched.push(slot);
                                }
                            }
                            Command::Stop => {
                                stop_by.get_or_insert(now + config.shutdown_timeout);
                                for at in 0..slots.slots.len() {
                                    if let Some(slot) = slots.get(at) {
                                        slot.go_away(env);
                                        touched.push(at);
                                    }
                                }
                            }
                            Command::Panic => panic!("a poll worker failure, asked for by a test"),
                        }
                    }
                    continue;
                }
                let at = token.0;
                if let Some(slot) = slots.get(at) {
                    slot.read_closed |= event.is_read_closed() || event.is_error();
                    if slot.on_ready(env) == Turn::Again {
                        again.push(at);
                    }
                    touched.push(at);
                }
            }
            // Timers due.
            let now = Instant::now();
            while let Some(Reverse((at, index_, id))) = timers.peek().copied() {
                if at > now {
                    break;
                }
                timers.pop();
                if let Some(slot) = slots.get_id(index_, id) {
                    if slot.scheduled == Some(at) {
                        slot.scheduled = None;
                        slot.on_timer(env, now);
                        touched.push(index_);
                    }
                }
            }
            // Write what the commands queued, then set timers and free the
            // slots of connections that are over.
            touched.sort_unstable();
            touched.dedup();
            for at in touched.drain(..) {
                let Some(slot) = slots.get(at) else { continue };
                slot.flush(env);
                if slot.is_done() {
                    slots.remove(poll, at, load, index);
                    continue;
                }
                let want = slot.deadline();
                if let Some(want) = want {
                    if slot.scheduled.is_none_or(|s| want < s) {
                        slot.scheduled = Some(want);
                        timers.push(Reverse((want, at, slot.sender.id())));
                    }
                }
            }
        }
    }
}

/// What a panic said, for the error that reports it.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

impl<St> Slots<St> {
    fn get(&mut self, at: usize) -> Option<&mut Slot<St>> {
        self.slots.get_mut(at)?.as_mut()
    }

    fn get_id(&mut self, at: usize, id: u64) -> Option<&mut Slot<St>> {
        self.get(at).filter(|slot| slot.sender.id() == id)
    }

    /// Registers a new connection; `None` if it cannot be (it is closed).
    fn insert(
        &mut self,
        poll: &Poll,
        stream: std::net::TcpStream,
        peer: SocketAddr,
        sender: impl FnOnce(usize) -> Sender,
        life: Lifecycle,
    ) -> Option<usize> {
        let at = self.free.pop().unwrap_or(self.slots.len());
        let mut stream = mio::net::TcpStream::from_std(stream);
        // Edge-triggered, both ways, for the life of the connection: no
        // re-registration per write.
        if poll
            .registry()
            .register(
                &mut stream,
                Token(at),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            if at < self.slots.len() {
                self.free.push(at);
            }
            return None;
        }
        let slot = Slot::new(stream, peer, sender(at), life);
        if at == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[at] = Some(slot);
        }
        self.live += 1;
        Some(at)
    }

    /// Frees a slot: the socket closes, its senders stop, and the server
    /// counts the connection out.
    fn remove(&mut self, poll: &Poll, at: usize, load: &Load, worker: usize) {
        if let Some(mut slot) = self.slots.get_mut(at).and_then(Option::take) {
            let _ = poll.registry().deregister(&mut slot.stream);
            slot.sender.shared.closed.store(true, Ordering::Release);
            self.free.push(at);
            self.live -= 1;
            load.ended(worker);
        }
    }
}
