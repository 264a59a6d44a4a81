//! The accept loop: [`Server`], its [`ServerHandle`] and [`RunningServer`],
//! the connection cap and shutdown.

use super::registry::{lock, Registered, Shared_};
use super::upgrade::serve_connection;
use super::ServerWebSocket;
use crate::engine::accept::{accept_failed, join_accept, reject_busy, spawn_rejecter, wake_accept};
use crate::engine::config::ServerConfig;
use crate::error::Result;
use crate::handshake::http::Request;
use crate::transport::Stream;
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A bound, not yet running server.
///
/// ```no_run
/// use rfc6455::{Server, ServerConfig};
///
/// let server = Server::bind("127.0.0.1:9001", ServerConfig::default())?;
/// server.serve(|mut ws, _request| {
///     loop {
///         let message = ws.read()?;
///         if message.is_data() {
///             ws.write(message)?;
///         }
///     }
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server {
    listener: TcpListener,
    config: Arc<ServerConfig>,
    shared: Arc<Shared_>,
}

/// Stops a running server from any thread.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared_>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.shared.addr)
            .finish()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        lock(&self.shared.live).len()
    }

    /// Stops accepting and tells every live connection to go away: a
    /// connection in `read` (blocked, or busy with a peer that keeps
    /// sending) sends close 1001 and returns
    /// [`Error::ConnectionClosed`](crate::Error::ConnectionClosed). `serve`
    /// returns once every connection thread has finished (or after the
    /// shutdown timeout, when the stragglers are cut off).
    pub fn shutdown(&self) {
        if self.shared.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        wake_accept(self.shared.addr);
        for stream in lock(&self.shared.live).values() {
            // Makes a blocked read return end-of-stream; the driver sees the
            // flag and sends 1001. Writes still work.
            let _ = stream.shutdown(Shutdown::Read);
        }
    }
}

impl Server {
    /// Binds a listening socket.
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            config: Arc::new(config),
            shared: Arc::new(Shared_ {
                shutting_down: Arc::new(AtomicBool::new(false)),
                live: Mutex::new(HashMap::new()),
                drained: Condvar::new(),
                next_id: AtomicU64::new(0),
                addr,
            }),
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A handle to stop the server from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs the accept loop on this thread until [`ServerHandle::shutdown`],
    /// calling `handler` on its own thread for each WebSocket connection,
    /// with the request that opened it. When the handler returns, the TCP
    /// connection is closed; call [`WebSocket::close`](crate::WebSocket::close) first (and read until
    /// [`Error::ConnectionClosed`](crate::Error::ConnectionClosed)) for a
    /// clean close. [`Error::ConnectionClosed`](crate::Error::ConnectionClosed)
    /// from the handler is the normal end of a connection.
    pub fn serve<F>(self, handler: F) -> io::Result<()>
    where
        F: Fn(ServerWebSocket, Request) -> Result<()> + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        let rejecter = spawn_rejecter(Arc::clone(&self.config));
        for stream in self.listener.incoming() {
            if self.shared.shutting_down.load(Ordering::Acquire) {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                // Out of descriptors, a connection reset before accept...:
                // back off briefly instead of spinning, keep serving.
                Err(_) => {
                    accept_failed();
                    continue;
                }
            };
            if lock(&self.shared.live).len() >= self.config.max_connections {
                reject_busy(&rejecter, stream);
                continue;
            }
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            let stream = Stream::with_stop(stream, Arc::clone(&self.shared.shutting_down));
            lock(&self.shared.live).insert(id, stream.handle());
            let mut conn = Registered {
                id,
                shared: Arc::clone(&self.shared),
                linger: Duration::ZERO,
            };
            let linger = self.config.close_timeout;
            let config = Arc::clone(&self.config);
            let handler = Arc::clone(&handler);
            let going_away = Arc::clone(&self.shared.shutting_down);
            let spawned = thread::Builder::new()
                .stack_size(self.config.stack_size)
                .spawn(move || {
                    conn.linger = linger;
                    let _conn = conn; // deregisters on exit, even on panic
                    serve_connection(stream, &config, going_away, &*handler);
                });
            if spawned.is_err() {
                // Out of threads: the closure (and its guard) was dropped, so
                // the connection is deregistered and closed.
                continue;
            }
        }
        self.wait_for_connections();
        Ok(())
    }

    /// Runs [`serve`](Server::serve) on a new thread and returns at once.
    pub fn spawn<F>(self, handler: F) -> io::Result<RunningServer>
    where
        F: Fn(ServerWebSocket, Request) -> Result<()> + Send + Sync + 'static,
    {
        let handle = self.handle();
        let thread = thread::Builder::new()
            .name("rfc6455-accept".into())
            .spawn(move || self.serve(handler))?;
        Ok(RunningServer {
            handle,
            thread: Some(thread),
        })
    }

    fn wait_for_connections(&self) {
        let deadline = Instant::now() + self.config.shutdown_timeout;
        let mut live = lock(&self.shared.live);
        while !live.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                for stream in live.values() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
                // The threads now fail fast; give them a moment to leave.
                let (guard, _) = self
                    .shared
                    .drained
                    .wait_timeout_while(live, Duration::from_secs(2), |l| !l.is_empty())
                    .unwrap_or_else(|p| p.into_inner());
                drop(guard);
                return;
            }
            live = self
                .shared
                .drained
                .wait_timeout(live, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A server running on its own thread (see [`Server::spawn`]). Dropping it
/// shuts the server down and waits for it.
#[derive(Debug)]
pub struct RunningServer {
    handle: ServerHandle,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A handle to the server.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Shuts down and waits for every connection thread.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        self.handle.shutdown();
        join_accept(&mut self.thread)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
