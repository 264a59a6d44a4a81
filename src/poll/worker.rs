//! One worker of the poll engine: a `mio::Poll` over its connections, a
//! heap of their timers, and an inbox for what other threads hand it (new
//! connections, messages from [`Sender`]s, shutdown).

use super::sender::{Sender, Shared as SenderShared};
use super::server::ServerShared;
use super::slot::{Env, Slot, Turn};
use super::Handler;
use crate::frame::CloseCode;
use crate::server::ServerConfig;
use crate::{Error, Message};
use mio::{Events, Interest, Poll, Token, Waker};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The waker's token; connections use their slot index.
const WAKE: Token = Token(usize::MAX);
/// The read buffer each worker shares among its connections.
const READ_BUF: usize = 256 * 1024;
/// Readiness events taken per poll.
const EVENTS: usize = 1024;

/// What other threads hand a worker.
pub(super) enum Command {
    /// A new TCP connection for this worker.
    Accept(std::net::TcpStream, SocketAddr),
    /// A message for one connection (`id` guards against a reused slot).
    Send {
        slot: usize,
        id: u64,
        message: Arc<Message>,
    },
    /// Close one connection.
    Close {
        slot: usize,
        id: u64,
        code: CloseCode,
        reason: String,
    },
    /// The HTTP handler's later answer for one connection is there.
    Answered { slot: usize, id: u64 },
    /// The server is shutting down: close 1001 to everyone, then stop.
    Stop,
}

/// A worker's inbox: commands and the waker that makes its poll return.
pub(super) struct Inbox {
    commands: Mutex<Vec<Command>>,
    waker: Waker,
}

impl Inbox {
    pub(super) fn new(poll: &Poll) -> std::io::Result<Inbox> {
        Ok(Inbox {
            commands: Mutex::new(Vec::new()),
            waker: Waker::new(poll.registry(), WAKE)?,
        })
    }

    /// Queues a command; wakes the worker only if the inbox was empty (one
    /// system call per batch, not per message).
    pub(super) fn push(&self, command: Command) {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        let wake = commands.is_empty();
        commands.push(command);
        drop(commands);
        if wake {
            let _ = self.waker.wake();
        }
    }

    fn take(&self, into: &mut Vec<Command>) {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *commands, into);
    }
}

pub(super) struct Worker<H: Handler> {
    pub(super) poll: Poll,
    pub(super) inbox: Arc<Inbox>,
    pub(super) handler: Arc<H>,
    pub(super) config: Arc<ServerConfig>,
    pub(super) server: Arc<ServerShared>,
    pub(super) index: usize,
    pub(super) max_pending: usize,
}

/// The worker's connections, in slots indexed by their token.
struct Slots<St> {
    slots: Vec<Option<Slot<St>>>,
    free: Vec<usize>,
    live: usize,
}

impl<H: Handler> Worker<H> {
    /// Runs until the server stops and every connection is gone (or the
    /// shutdown timeout cuts the rest off).
    pub(super) fn run(self) {
        let Worker {
            mut poll,
            inbox,
            handler,
            config,
            server,
            index,
            max_pending,
        } = self;
        let ws_config = config.websocket_config();
        let mut rbuf = vec![0u8; READ_BUF];
        let mut env = Env {
            handler: &*handler,
            config: &config,
            ws_config: &ws_config,
            rbuf: &mut rbuf,
            max_pending,
        };
        let mut slots: Slots<H::State> = Slots {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        };
        let mut timers: BinaryHeap<Reverse<(Instant, usize, u64)>> = BinaryHeap::new();
        let mut events = Events::with_capacity(EVENTS);
        let mut commands = Vec::new();
        let mut again: Vec<usize> = Vec::new();
        let mut touched: Vec<usize> = Vec::new();
        let mut stop_by: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let mut timeout = timers
                .peek()
                .map(|Reverse((at, _, _))| at.saturating_duration_since(now));
            if !again.is_empty() {
                timeout = Some(Duration::ZERO);
            }
            if let Some(stop) = stop_by {
                // Wake up in time to cut stragglers off.
                let left = stop.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    break;
                }
            }
            // The poll may have slept long: deadlines set from here on (a
            // new connection's handshake timeout) count from now, not from
            // before it (that made an idle worker answer 408 at once).
            let now = Instant::now();
            // Connections whose turn ran out last time go first.
            for at in std::mem::take(&mut again) {
                if let Some(slot) = slots.get(at) {
                    if slot.on_ready(&mut env) == Turn::Again {
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
                            Command::Accept(stream, peer) => {
                                let sender_shared = Arc::new(SenderShared::default());
                                let id = server.next_id.fetch_add(1, Ordering::Relaxed);
                                if let Some(at) = slots.insert(
                                    &poll,
                                    stream,
                                    peer,
                                    |at| Sender {
                                        inbox: Arc::clone(&inbox),
                                        slot: at,
                                        id,
                                        shared: sender_shared,
                                        max_pending,
                                    },
                                    now + config.handshake_timeout,
                                ) {
                                    touched.push(at);
                                    if stop_by.is_some() {
                                        if let Some(slot) = slots.get(at) {
                                            slot.go_away(&mut env);
                                        }
                                    }
                                } else {
                                    server.connection_ended(index);
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
                                    s.answered(&mut env);
                                    touched.push(slot);
                                }
                            }
                            Command::Stop => {
                                stop_by.get_or_insert(now + config.shutdown_timeout);
                                for at in 0..slots.slots.len() {
                                    if let Some(slot) = slots.get(at) {
                                        slot.go_away(&mut env);
                                        touched.push(at);
                                    }
                                }
                            }
                        }
                    }
                    continue;
                }
                let at = token.0;
                if let Some(slot) = slots.get(at) {
                    slot.read_closed |= event.is_read_closed() || event.is_error();
                    if slot.on_ready(&mut env) == Turn::Again {
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
                        slot.on_timer(&mut env, now);
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
                slot.flush(&mut env);
                if slot.is_done() {
                    slots.remove(&poll, at);
                    server.connection_ended(index);
                    continue;
                }
                let want = slot.deadline(&config);
                if let Some(want) = want {
                    if slot.scheduled.is_none_or(|s| want < s) {
                        slot.scheduled = Some(want);
                        timers.push(Reverse((want, at, slot.sender.id())));
                    }
                }
            }
            if let Some(stop) = stop_by {
                if slots.live == 0 {
                    break;
                }
                if Instant::now() >= stop {
                    // Shutdown timeout: cut the stragglers off.
                    for at in 0..slots.slots.len() {
                        if let Some(slot) = slots.get(at) {
                            slot.abort(&mut env, Error::ConnectionClosed);
                            slots.remove(&poll, at);
                            server.connection_ended(index);
                        }
                    }
                    break;
                }
            }
        }
    }
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
        deadline: Instant,
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
        let slot = Slot::new(stream, peer, sender(at), deadline);
        if at == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[at] = Some(slot);
        }
        self.live += 1;
        Some(at)
    }

    fn remove(&mut self, poll: &Poll, at: usize) {
        if let Some(mut slot) = self.slots.get_mut(at).and_then(Option::take) {
            let _ = poll.registry().deregister(&mut slot.stream);
            slot.sender.shared.closed.store(true, Ordering::Release);
            self.free.push(at);
            self.live -= 1;
        }
    }
}
