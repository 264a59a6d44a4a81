//! The handle and the state it shares with the run: the open connection,
//! the bounded queue of messages sent while disconnected, the stop request.

use crate::error::Error;
use crate::frame::{CloseCode, CloseFrame};
use crate::protocol::{Message, MessageRef};
use crate::transport::Stream;
use crate::websocket::Writer;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A message [`Handle::send`] did not take, given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsent {
    /// No connection is open and the queue is at its bound (messages or
    /// bytes); nothing was queued.
    Full(Message),
    /// No connection is open, and this is a ping or pong (never queued: they
    /// are about a live connection) or queueing is off.
    NotConnected(Message),
    /// The client was stopped or has finished.
    Stopped(Message),
    /// Not sendable: a close frame (use [`Handle::close`]) or a control
    /// payload over 125 bytes (RFC 6455 §5.5).
    Invalid(Message),
}

impl std::fmt::Display for Unsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unsent::Full(_) => "not connected, and the send queue is full",
            Unsent::NotConnected(_) => "not connected",
            Unsent::Stopped(_) => "the client has stopped",
            Unsent::Invalid(_) => "not a message that can be sent",
        })
    }
}

impl std::error::Error for Unsent {}

/// Where [`Handle::send`] put a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written on the open connection.
    Written,
    /// Queued for the next connection.
    Queued,
}

/// Sends and stops, from any thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    pub(super) fn new(shared: Arc<Shared>) -> Handle {
        Handle { shared }
    }

    /// Sends `message` on the open connection, or queues it for the next
    /// one while there is none (text and binary only, within the queue's
    /// bound). A message that the open connection refuses because it just
    /// ended is queued too. See [`Unsent`] for what is refused.
    pub fn send(&self, message: Message) -> std::result::Result<Sent, Unsent> {
        if matches!(message, Message::Close(_)) {
            return Err(Unsent::Invalid(message));
        }
        loop {
            let state = self.shared.lock();
            if state.stop.is_some() || state.finished {
                return Err(Unsent::Stopped(message));
            }
            let (true, Some(writer)) = (state.direct, state.current.clone()) else {
                return self.shared.enqueue(state, message);
            };
            let generation = state.generation;
            drop(state);
            match writer.send_ref(MessageRef::from(&message)) {
                Ok(()) => return Ok(Sent::Written),
                Err(Error::InvalidSend(_)) => return Err(Unsent::Invalid(message)),
                // The connection is ending: the message was not written (an
                // error means the frame did not go out whole). Sends stop
                // going to it, and the message goes where the next one does:
                // a newer connection if one is up already, else the queue.
                Err(_) => {
                    let mut state = self.shared.lock();
                    if state.generation == generation {
                        state.direct = false;
                    }
                }
            }
        }
    }

    /// Stops the client: sends close `code` with `reason` on the open
    /// connection (the run ends when the close handshake does, bounded by
    /// the close timeout), or ends a backoff wait at once. No reconnect
    /// follows. Refused, with nothing done, for a code or reason RFC 6455
    /// does not allow on the wire (§7.4, §5.5: at most 123 bytes).
    pub fn close(
        &self,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> std::result::Result<(), crate::error::SendError> {
        let code = code.into();
        if !code.is_valid_on_wire() {
            return Err(crate::error::SendError::CloseCodeNotAllowed);
        }
        if reason.len() > 123 {
            return Err(crate::error::SendError::CloseReasonTooLong);
        }
        let mut state = self.shared.lock();
        if state.stop.is_none() {
            state.stop = Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            });
        }
        let writer = state.current.clone();
        self.shared.changed.notify_all();
        drop(state);
        if let Some(writer) = writer {
            if !writer.send_closed() {
                let _ = writer.close(code, reason);
            }
        }
        Ok(())
    }

    /// [`close`](Handle::close) with 1000 (normal closure) and no reason.
    pub fn stop(&self) {
        let _ = self.close(CloseCode::NORMAL, "");
    }

    /// Whether a connection is open and sends go straight to it.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().direct
    }

    /// How many messages are queued for the next connection.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Waits until a connection is open and sends go straight to it (what
    /// was queued has gone out), at most `timeout`. `false` on timeout, or
    /// once the client is stopped or finished.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| {
                !s.direct && s.stop.is_none() && !s.finished
            })
            .unwrap_or_else(PoisonError::into_inner);
        state.direct && state.stop.is_none()
    }

    /// Whether the client was stopped ([`close`](Handle::close)) or has
    /// finished: sends are refused from now on.
    pub fn is_stopped(&self) -> bool {
        let state = self.shared.lock();
        state.stop.is_some() || state.finished
    }

    /// Waits until nothing is queued and every queued message has been
    /// written on a connection, at most `timeout`. `false` on timeout, or
    /// if the client finished with messages still queued.
    pub fn wait_flushed(&self, timeout: Duration) -> bool {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| {
                (!s.queue.is_empty() || s.flushing) && !s.finished
            })
            .unwrap_or_else(PoisonError::into_inner);
        state.queue.is_empty() && !state.flushing
    }
}

#[derive(Debug, Clone, Copy)]
struct QueueLimit {
    messages: usize,
    bytes: usize,
}

impl Default for QueueLimit {
    fn default() -> QueueLimit {
        QueueLimit {
            messages: 1000,
            bytes: 1 << 20,
        }
    }
}

/// What the run and every handle share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    state: Mutex<State>,
    /// Signalled when a stop is asked for, the queue empties, or the client
    /// finishes.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The open connection, from its connect to its end.
    current: Option<Writer<Stream>>,
    /// Counts connections, so a send that failed on an old one does not
    /// touch the state of a newer one.
    generation: u64,
    /// Whether sends go straight to `current` (its queue was flushed).
    direct: bool,
    queue: VecDeque<Message>,
    queued_bytes: usize,
    limit: QueueLimit,
    /// A message taken from the queue is being written.
    flushing: bool,
    /// The close frame [`Handle::close`] asked for.
    stop: Option<CloseFrame>,
    /// `run` returned.
    finished: bool,
}

/// The payload bytes a queued message holds.
fn size(message: &Message) -> usize {
    match message {
        Message::Text(t) => t.len(),
        Message::Binary(d) | Message::Ping(d) | Message::Pong(d) => d.len(),
        Message::Close(_) => 0,
    }
}

impl Shared {
    pub(super) fn set_limit(&self, messages: usize, bytes: usize) {
        self.lock().limit = QueueLimit { messages, bytes };
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking callback never holds this lock; the state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn stopping(&self) -> bool {
        self.lock().stop.is_some()
    }

    /// Sleeps for `wait` unless a stop comes first; `false` if it did.
    pub(super) fn sleep(&self, wait: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, wait, |s| s.stop.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        state.stop.is_none()
    }

    fn enqueue(
        &self,
        mut state: MutexGuard<'_, State>,
        message: Message,
    ) -> std::result::Result<Sent, Unsent> {
        let limit = state.limit;
        if !message.is_data() || limit.messages == 0 {
            return Err(Unsent::NotConnected(message));
        }
        let len = size(&message);
        if state.queue.len() >= limit.messages
            || state.queued_bytes.saturating_add(len) > limit.bytes
        {
            return Err(Unsent::Full(message));
        }
        state.queued_bytes += len;
        state.queue.push_back(message);
        Ok(Sent::Queued)
    }

    /// Makes `writer` the open connection; the stop asked for, if any.
    pub(super) fn publish(&self, writer: &Writer<Stream>) -> Option<CloseFrame> {
        let mut state = self.lock();
        state.current = Some(writer.clone());
        state.generation += 1;
        state.stop.clone()
    }

    pub(super) fn unpublish(&self) {
        let mut state = self.lock();
        state.current = None;
        state.direct = false;
    }

    /// Sends the queue on `writer`, in order, then lets sends go straight
    /// to it. The lock is never held across a write: sends that come
    /// meanwhile join the end of the queue, so order holds.
    pub(super) fn flush(&self, writer: &Writer<Stream>) {
        loop {
            let mut state = self.lock();
            if state.stop.is_some() {
                return;
            }
            let Some(message) = state.queue.pop_front() else {
                state.direct = true;
                self.changed.notify_all();
                return;
            };
            state.queued_bytes -= size(&message);
            state.flushing = true;
            drop(state);
            let written = writer.send_ref(MessageRef::from(&message));
            let mut state = self.lock();
            state.flushing = false;
            if written.is_err() {
                // Not written: first in line for the next connection.
                state.queued_bytes += size(&message);
                state.queue.push_front(message);
                self.changed.notify_all();
                return;
            }
        }
    }

    /// `run` is over: nothing more is sent; what was queued is returned.
    pub(super) fn finish(&self) -> Vec<Message> {
        let mut state = self.lock();
        state.finished = true;
        state.current = None;
        state.direct = false;
        state.queued_bytes = 0;
        self.changed.notify_all();
        state.queue.drain(..).collect()
    }
}
