//! Counting connections: how many the server has, how many each worker has
//! (the accept thread hands a new one to the least loaded), how often a
//! worker failed, the ids, and [`Handover`], which keeps the count right for
//! a connection on its way to a worker, however that ends.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The server's counts, shared by the accept thread, the workers and the
/// handles.
#[derive(Debug, Default)]
pub(super) struct Load {
    live: AtomicUsize,
    /// Connections per worker, once the workers are started.
    per_worker: OnceLock<Vec<AtomicUsize>>,
    /// Worker loops that panicked (and started again) or stopped.
    failures: AtomicU64,
    next_id: AtomicU64,
}

impl Load {
    /// The workers are `n`: counting per worker starts.
    pub(super) fn set_workers(&self, n: usize) {
        let _ = self
            .per_worker
            .set((0..n).map(|_| AtomicUsize::new(0)).collect());
    }

    /// Connections being served (handshakes and closes included).
    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Connections worker `worker` has.
    pub(super) fn of(&self, worker: usize) -> usize {
        self.per_worker
            .get()
            .and_then(|w| w.get(worker))
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }

    pub(super) fn started(&self, worker: usize) {
        self.live.fetch_add(1, Ordering::AcqRel);
        if let Some(n) = self.per_worker.get().and_then(|w| w.get(worker)) {
            n.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub(super) fn ended(&self, worker: usize) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        if let Some(n) = self.per_worker.get().and_then(|w| w.get(worker)) {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub(super) fn worker_failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// A number no other connection of the server has.
    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A connection on its way to a worker: it counts against the server's
/// connections from accept on, and is counted out again if it is dropped
/// before a worker takes it (its worker failed or stopped first).
#[derive(Debug)]
pub(super) struct Handover {
    stream: Option<TcpStream>,
    peer: SocketAddr,
    load: Arc<Load>,
    worker: usize,
}

impl Handover {
    /// Counts the connection in, for `worker`.
    pub(super) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        load: &Arc<Load>,
        worker: usize,
    ) -> Handover {
        load.started(worker);
        Handover {
            stream: Some(stream),
            peer,
            load: Arc::clone(load),
            worker,
        }
    }

    /// The socket, for the worker that takes it over (and its count).
    pub(super) fn take(mut self) -> Option<(TcpStream, SocketAddr)> {
        Some((self.stream.take()?, self.peer))
    }

    /// The socket back, counted out again (its worker did not take it).
    pub(super) fn release(mut self) -> Option<(TcpStream, SocketAddr)> {
        let socket = (self.stream.take()?, self.peer);
        self.load.ended(self.worker);
        Some(socket)
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        if self.stream.is_some() {
            self.load.ended(self.worker);
        }
    }
}
