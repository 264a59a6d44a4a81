//! [`PollServer`]: the accept thread, the workers it hands connections to,
//! the connection cap and shutdown.
//!
//! One thread accepts and hands each connection to the worker with the
//! fewest, through the worker's inbox. (`SO_REUSEPORT` listeners, one per
//! worker, would save that hand-over, but std cannot set the option, the
//! kernel's hash spreads connections unevenly over few workers, and the
//! hand-over costs one wake-up per connection, not per message.)

use super::count::{Handover, Load};
use super::inbox::{Command, Inbox};
use super::worker::Worker;
use super::Handler;
use crate::engine::accept::{accept_failed, join_accept, reject_busy, spawn_rejecter, wake_accept};
use crate::engine::config::ServerConfig;
use mio::Poll;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;

/// Output a connection may have waiting before it stops being read and
/// starts missing what [`Sender`](super::Sender)s send it.
pub const DEFAULT_MAX_PENDING: usize = 1024 * 1024;

/// State shared by the accept thread and the handles.
struct ServerShared {
    stopping: AtomicBool,
    load: Arc<Load>,
    /// The workers' inboxes, once started.
    inboxes: OnceLock<Vec<Arc<Inbox>>>,
    addr: SocketAddr,
}

/// A bound, not yet running poll server (see the [module docs](super)).
pub struct PollServer {
    listener: TcpListener,
    shared: Arc<ServerShared>,
    config: ServerConfig,
    workers: usize,
    max_pending: usize,
}

impl std::fmt::Debug for PollServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollServer")
            .field("addr", &self.listener.local_addr().ok())
            .field("workers", &self.workers)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

/// Stops a running poll server from any thread.
#[derive(Clone)]
pub struct PollHandle {
    shared: Arc<ServerShared>,
}

impl std::fmt::Debug for PollHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollHandle")
            .field("addr", &self.shared.addr)
            .field("connections", &self.connections())
            .finish()
    }
}

impl PollHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Connections being served now (handshakes and closes included).
    pub fn connections(&self) -> usize {
        self.shared.load.live()
    }

    /// Stops accepting and sends close 1001 (going away) to every
    /// connection, behind what is queued for it; like the threaded server,
    /// it does not wait for the answer, only drains the peer's input until
    /// the peer closes or goes quiet. `serve` returns once every connection
    /// is gone, or after the shutdown timeout.
    pub fn shutdown(&self) {
        if self.shared.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        for inbox in self.shared.inboxes.get().map_or(&[][..], Vec::as_slice) {
            // A worker that has stopped already needs no telling.
            let _ = inbox.push(Command::Stop);
        }
        // The accept thread is blocked in accept().
        wake_accept(self.shared.addr);
    }

    /// How many times a worker's event loop failed: a panic outside user
    /// code (each user callback has its own `catch_unwind`), after which the
    /// worker closes its connections (their `on_close` and
    /// [`ServerConfig::on_error`](crate::ServerConfig::on_error) hear why)
    /// and starts its loop again; or its poll failing, after which it stops
    /// and gets no more connections. Zero unless the engine has a bug or the
    /// operating system fails it.
    pub fn worker_failures(&self) -> u64 {
        self.shared.load.failures()
    }

    /// Makes worker `worker`'s loop panic outside any user code, as a bug of
    /// the engine's would: for tests of what a failed worker costs. Not
    /// part of the API.
    #[doc(hidden)]
    pub fn fail_worker_for_test(&self, worker: usize) {
        if let Some(inbox) = self.shared.inboxes.get().and_then(|w| w.get(worker)) {
            let _ = inbox.push(Command::Panic);
        }
    }
}

impl PollServer {
    /// Binds a listening socket. Defaults: one worker per core, and
    /// 1 MiB of output per connection (see [`max_pending`](PollServer::max_pending)).
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<PollServer> {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let listener = TcpListener::bind(addr)?;
        Ok(PollServer {
            shared: Arc::new(ServerShared {
                stopping: AtomicBool::new(false),
                load: Arc::new(Load::default()),
                inboxes: OnceLock::new(),
                addr: listener.local_addr()?,
            }),
            listener,
            config,
            workers: cores,
            max_pending: DEFAULT_MAX_PENDING,
        })
    }

    /// Sets the number of worker threads (at least 1).
    pub fn workers(mut self, workers: usize) -> PollServer {
        self.workers = workers.max(1);
        self
    }

    /// Sets how many bytes of output a connection may have waiting: past
    /// it, the connection is not read until its peer catches up, and
    /// [`Sender::send`](super::Sender::send) refuses messages for it.
    pub fn max_pending(mut self, bytes: usize) -> PollServer {
        self.max_pending = bytes.max(1);
        self
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A handle to stop the server from another thread (or a signal handler).
    pub fn handle(&self) -> PollHandle {
        PollHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Starts the workers and runs the accept loop on this thread until
    /// [`PollHandle::shutdown`].
    ///
    /// Fails if the workers cannot be started (no epoll, no threads).
    pub fn serve<H: Handler>(self, handler: H) -> io::Result<()> {
        self.start(handler)?()
    }

    /// Like [`serve`](PollServer::serve), on a new thread: returns at once.
    ///
    /// ```
    /// use rfc6455::poll::{Conn, Handler, PollServer};
    /// use rfc6455::{handshake::Request, protocol::MessageRef, Message, ServerConfig};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     type State = ();
    ///     fn on_open(&self, _: &mut Conn<'_>, _: &Request) {}
    ///     fn on_message(&self, _: &mut (), conn: &mut Conn<'_>, message: MessageRef<'_>) {
    ///         let _ = conn.send(message);
    ///     }
    /// }
    ///
    /// let running = PollServer::bind("127.0.0.1:0", ServerConfig::default())?
    ///     .workers(1)
    ///     .spawn(Echo)?;
    /// let (mut ws, _) = rfc6455::connect(&format!("ws://{}/", running.local_addr()))?;
    /// ws.send(Message::text("hello"))?;
    /// assert_eq!(ws.read()?, Message::text("hello"));
    /// running.shutdown()?; // close 1001 to everyone, then the workers stop
    /// assert!(matches!(ws.read()?, Message::Close(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<H: Handler>(self, handler: H) -> io::Result<RunningPollServer> {
        let handle = self.handle();
        let run = self.start(handler)?;
        let thread = thread::Builder::new()
            .name("rfc6455-poll-accept".into())
            .spawn(run)?;
        Ok(RunningPollServer {
            handle,
            thread: Some(thread),
        })
    }

    /// Starts the workers; returns the accept loop to run.
    fn start<H: Handler>(
        self,
        handler: H,
    ) -> io::Result<Box<dyn FnOnce() -> io::Result<()> + Send>> {
        let shared = Arc::clone(&self.shared);
        let config = Arc::new(self.config);
        let handler = Arc::new(handler);
        let mut inboxes = Vec::new();
        let mut threads = Vec::new();
        for index in 0..self.workers {
            let poll = Poll::new()?;
            let inbox = Arc::new(Inbox::new(&poll)?);
            inboxes.push(Arc::clone(&inbox));
            let worker = Worker {
                poll,
                inbox,
                handler: Arc::clone(&handler),
                config: Arc::clone(&config),
                load: Arc::clone(&shared.load),
                index,
                max_pending: self.max_pending,
            };
            threads.push(
                thread::Builder::new()
                    .name(format!("rfc6455-poll-{index}"))
                    .spawn(move || worker.run())?,
            );
        }
        shared.load.set_workers(inboxes.len());
        if shared.inboxes.set(inboxes).is_err() {
            return Err(io::Error::other("the poll server was started twice"));
        }
        let stop = PollHandle {
            shared: Arc::clone(&shared),
        };
        let listener = self.listener;
        let run = move || {
            let Some(inboxes) = shared.inboxes.get() else {
                return Ok(());
            };
            let rejecter = spawn_rejecter(Arc::clone(&config));
            // shutdown() connects to wake this loop, so it also ends when
            // the server was stopped before it started.
            let incoming = listener
                .incoming()
                .take_while(|_| !shared.stopping.load(Ordering::Acquire));
            for stream in incoming {
                let Ok(stream) = stream else {
                    accept_failed();
                    continue;
                };
                if shared.load.live() >= config.max_connections {
                    reject_busy(&rejecter, stream);
                    continue;
                }
                let (Ok(peer), Ok(())) = (stream.peer_addr(), stream.set_nonblocking(true)) else {
                    continue;
                };
                // Small frames must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                if hand_over(&shared.load, inboxes, stream, peer).is_err() {
                    // Every worker has stopped: nothing can serve anyone.
                    stop.shutdown();
                    for thread in threads {
                        let _ = thread.join();
                    }
                    return Err(io::Error::other(
                        "every poll worker has stopped (see PollHandle::worker_failures)",
                    ));
                }
            }
            // Whatever stopped the loop, the workers stop too.
            stop.shutdown();
            for inbox in inboxes {
                let _ = inbox.push(Command::Stop);
            }
            for thread in threads {
                let _ = thread.join();
            }
            Ok(())
        };
        Ok(Box::new(run))
    }
}

/// Hands a new connection to the least-loaded worker that still runs;
/// `Err` when none does.
fn hand_over(
    load: &Arc<Load>,
    inboxes: &[Arc<Inbox>],
    stream: std::net::TcpStream,
    peer: SocketAddr,
) -> Result<(), ()> {
    let mut open: Vec<usize> = (0..inboxes.len())
        .filter(|&i| inboxes[i].is_open())
        .collect();
    open.sort_by_key(|&i| load.of(i));
    let mut socket = (stream, peer);
    for worker in open {
        let handover = Handover::new(socket.0, socket.1, load, worker);
        match inboxes[worker].push(Command::Accept(handover)) {
            Ok(()) => return Ok(()),
            // It stopped just now: counted out again, on to the next.
            Err(Command::Accept(handover)) => match handover.release() {
                Some(back) => socket = back,
                None => return Err(()),
            },
            Err(_) => return Err(()),
        }
    }
    Err(())
}

/// A poll server running on its own thread (see [`PollServer::spawn`]).
/// Dropping it shuts the server down and waits for it.
#[derive(Debug)]
pub struct RunningPollServer {
    handle: PollHandle,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl RunningPollServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A handle to the server.
    pub fn handle(&self) -> PollHandle {
        self.handle.clone()
    }

    /// Shuts down and waits for the workers.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        self.handle.shutdown();
        join_accept(&mut self.thread)
    }
}

impl Drop for RunningPollServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
