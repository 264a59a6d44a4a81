//! [`Sender`]: sending to a connection from outside its callbacks, through
//! its worker's inbox.

use super::inbox::{Command, Inbox};
use crate::frame::CloseCode;
use crate::protocol::Message;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What one connection shares with its [`Sender`]s.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Payload bytes handed to the worker and not yet queued on the
    /// connection: bounded by the server's `max_pending`.
    pub(super) in_flight: AtomicUsize,
    /// The connection is over: senders stop at once.
    pub(super) closed: AtomicBool,
    /// Messages this connection missed because its output was full.
    pub(super) dropped: AtomicU64,
    /// Bytes queued on the connection and not yet written, as of the
    /// worker's last flush: with `in_flight`, what a hub paces against.
    pub(super) unsent: AtomicUsize,
    /// A message that does not fit closes the connection with 1013
    /// instead of being dropped (a hub member that must miss nothing).
    pub(super) close_when_full: AtomicBool,
}

/// Sends to one connection of a [`PollServer`](super::PollServer) from any
/// thread: cloneable, cheap, never blocking. The message goes to the
/// connection's worker, which queues it on the connection.
#[derive(Clone)]
pub struct Sender {
    pub(super) inbox: Arc<Inbox>,
    pub(super) slot: usize,
    pub(super) id: u64,
    pub(super) shared: Arc<Shared>,
    pub(super) max_pending: usize,
}

/// Why [`Sender::send`] did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection's output is full (a slow reader): it misses this
    /// message, which is counted in [`Sender::dropped`].
    Full,
    /// The connection is over.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Full => "the connection's output is full",
            SendError::Closed => "the connection is closed",
        })
    }
}

impl std::error::Error for SendError {}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("id", &self.id)
            .field("open", &self.is_open())
            .finish()
    }
}

impl Sender {
    /// Sends `message` to the connection. Returns at once: the worker
    /// writes it when it gets to it. Refused when the connection is over,
    /// or when its unsent output would pass the server's
    /// [`max_pending`](super::PollServer::max_pending) (a slow client: it
    /// misses this message).
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.send_shared(Arc::new(message.into()))
    }

    /// [`send`](Sender::send) for a message shared with other connections
    /// (a broadcast): the payload is not copied per connection on the way
    /// to the workers.
    pub fn send_shared(&self, message: Arc<Message>) -> Result<(), SendError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let len = message.len();
        let before = self.shared.in_flight.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max_pending {
            self.shared.in_flight.fetch_sub(len, Ordering::AcqRel);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(SendError::Full);
        }
        let pushed = self.inbox.push(Command::Send {
            slot: self.slot,
            id: self.id,
            message,
        });
        if pushed.is_err() {
            // The worker has stopped: so has the connection.
            self.shared.in_flight.fetch_sub(len, Ordering::AcqRel);
            return Err(SendError::Closed);
        }
        Ok(())
    }

    /// Starts the close handshake with `code` and `reason`.
    pub fn close(&self, code: CloseCode, reason: &str) {
        if !self.shared.closed.load(Ordering::Acquire) {
            // Nothing to close if the worker has stopped.
            let _ = self.inbox.push(Command::Close {
                slot: self.slot,
                id: self.id,
                code,
                reason: reason.into(),
            });
        }
    }

    /// Whether the connection is still open (it may end at any moment).
    pub fn is_open(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire)
    }

    /// Messages this connection missed because its output was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// A number that identifies the connection within its server.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Bytes handed to the connection and not yet written to its socket
    /// (as of its worker's last turn): a sender that paces itself keeps
    /// this below [`max_pending`](super::PollServer::max_pending).
    pub fn unsent(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire) + self.shared.unsent.load(Ordering::Acquire)
    }

    /// From now on, a message taken by [`send`](Sender::send) that finds
    /// the connection's output full closes the connection with 1013 (try
    /// again later) instead of being dropped: for a client that must miss
    /// nothing and recovers what it missed when it reconnects.
    pub fn close_when_full(&self) {
        self.shared.close_when_full.store(true, Ordering::Release);
    }
}

/// A [`Sender`] joins a [`Hub`](crate::Hub) with
/// [`Hub::join_sink`](crate::Hub::join_sink): broadcasts go straight to the
/// connection's worker, with no hub sender thread in between.
impl crate::hub::Sink for Sender {
    fn offer(&self, message: &Arc<Message>) -> Result<(), crate::hub::Refused> {
        if self.shared.unsent.load(Ordering::Acquire) > self.max_pending {
            // Its worker would only drop it (or close): let the hub apply
            // its policy and count it.
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(crate::hub::Refused::Full);
        }
        self.send_shared(Arc::clone(message)).map_err(|e| match e {
            SendError::Full => crate::hub::Refused::Full,
            SendError::Closed => crate::hub::Refused::Closed,
        })
    }

    fn room(&self) -> Option<usize> {
        // An idle connection takes any one message (as `send` does).
        match self.unsent() {
            0 => Some(usize::MAX),
            unsent => Some(self.max_pending.saturating_sub(unsent)),
        }
    }

    fn close(&self, code: CloseCode, reason: &str) {
        Sender::close(self, code, reason);
    }

    fn close_when_full(&self) {
        Sender::close_when_full(self);
    }

    fn dropped(&self) -> u64 {
        Sender::dropped(self)
    }
}
