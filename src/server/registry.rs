//! The registry of live connections: what the accept loop, the connection
//! threads and the handles share, and the guard that closes and deregisters
//! a connection however its thread ends (with a lingering close, so that its
//! last bytes are not lost to a reset).

use crate::engine::accept::{close_gracefully, close_read_shut};
use crate::transport::Stream;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// State shared by the accept loop, the connection threads and the handles.
pub(super) struct Shared_ {
    pub(super) shutting_down: Arc<AtomicBool>,
    pub(super) live: Mutex<HashMap<u64, Stream>>,
    pub(super) drained: Condvar,
    pub(super) next_id: AtomicU64,
    pub(super) addr: SocketAddr,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes and deregisters a connection when its thread ends, however it ends.
pub(super) struct Registered {
    pub(super) id: u64,
    pub(super) shared: Arc<Shared_>,
    /// How long the closing socket may drain the peer's input: zero until
    /// the connection's thread runs, so that a connection whose thread could
    /// not be spawned is closed at once, without stalling the accept loop.
    pub(super) linger: Duration,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let stream = lock(&self.shared.live).get(&self.id).map(Stream::handle);
        if let Some(stream) = stream {
            if self.shared.shutting_down.load(Ordering::Acquire) {
                close_read_shut(&stream, self.linger);
            } else {
                close_gracefully(&stream, self.linger);
            }
        }
        // Deregistered only once the socket is closed: a draining connection
        // still holds a thread and a descriptor, so it still counts against
        // `max_connections`, and shutdown waits for it (and cuts it off at the
        // shutdown timeout) instead of returning while it drains.
        lock(&self.shared.live).remove(&self.id);
        self.shared.drained.notify_all();
    }
}
