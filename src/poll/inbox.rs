//! A worker's inbox: what other threads hand it (new connections, messages
//! from [`Sender`](super::Sender)s, closes, shutdown) and the waker that
//! makes its poll return.

use super::count::Handover;
use crate::frame::CloseCode;
use crate::protocol::Message;
use mio::{Poll, Token, Waker};
use std::sync::{Arc, Mutex};

/// The waker's token; connections use their slot index.
pub(super) const WAKE: Token = Token(usize::MAX);

/// What other threads hand a worker.
pub(super) enum Command {
    /// A new TCP connection for this worker.
    Accept(Handover),
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
    /// Panics in the worker's loop, outside any user code: how the tests
    /// prove that a failed worker is noticed and replaced.
    Panic,
}

/// A worker's inbox: commands and the waker that makes its poll return.
/// Closed (`None`) once the worker has stopped: nothing more gets in.
pub(super) struct Inbox {
    commands: Mutex<Option<Vec<Command>>>,
    waker: Waker,
}

impl Inbox {
    pub(super) fn new(poll: &Poll) -> std::io::Result<Inbox> {
        Ok(Inbox {
            commands: Mutex::new(Some(Vec::new())),
            waker: Waker::new(poll.registry(), WAKE)?,
        })
    }

    /// Queues a command; wakes the worker only if the inbox was empty (one
    /// system call per batch, not per message). Gives the command back if
    /// the worker has stopped.
    pub(super) fn push(&self, command: Command) -> Result<(), Command> {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        let Some(commands) = commands.as_mut() else {
            return Err(command);
        };
        let wake = commands.is_empty();
        commands.push(command);
        if wake {
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// Whether the worker still takes commands.
    pub(super) fn is_open(&self) -> bool {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    pub(super) fn take(&self, into: &mut Vec<Command>) {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(commands) = commands.as_mut() {
            std::mem::swap(commands, into);
        }
    }

    /// The worker stops: what is still queued is dropped (a connection
    /// handed over is counted out), and nothing more gets in.
    pub(super) fn close(&self) {
        let left = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(left);
    }
}
