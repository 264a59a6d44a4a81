//! A thread-per-connection WebSocket server.
//!
//! One accept loop; each connection gets its own thread with a small stack,
//! runs the opening handshake under a deadline, then hands a [`WebSocket`] to
//! your handler. Concurrent connections are capped (beyond the cap: HTTP 503),
//! every phase has a timeout, a panicking handler costs only its own
//! connection, and [`ServerHandle::shutdown`] stops accepting, closes live
//! connections with 1001 (going away) and waits for their threads.

use crate::frame::Role;
use crate::handshake::http::{parse_request, Limits, Request};
use crate::handshake::server::{accept, http_response, AcceptOptions, Rejection};
use crate::protocol::Config;
use crate::stream::{read_head, HeadError, Shared};
use crate::websocket::{Keepalive, WebSocket, WebSocketConfig};
use crate::Result;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The WebSocket a server handler gets: the socket is shared (not duplicated)
/// with the server so that shutdown can reach a connection blocked in `read`.
pub type ServerWebSocket = WebSocket<Shared<TcpStream>>;

/// A plain HTTP response, for requests that are not WebSocket upgrades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers (`Content-Length` and `Connection: close` are added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a status, a content type and a body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// `404 Not Found`.
    pub fn not_found() -> HttpResponse {
        HttpResponse::new(404, "text/plain; charset=utf-8", "not found\n")
    }

    fn to_bytes(&self) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        http_response(self.status, &headers, &self.body)
    }
}

type HttpHandler = Arc<dyn Fn(&Request) -> HttpResponse + Send + Sync>;
type UpgradeCheck = Arc<dyn Fn(&Request) -> Option<HttpResponse> + Send + Sync>;

/// Server settings. `Default` gives the documented defaults; setters take and
/// return the config by value.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Concurrent connections served; beyond it a new connection gets
    /// `503 Service Unavailable` and is closed. Default 10,000.
    pub max_connections: usize,
    /// Time allowed from accept to a complete request head (slowloris guard).
    /// Default 10 s; a late peer gets `408 Request Timeout`.
    pub handshake_timeout: Duration,
    /// With keepalive off: how long a connection may be silent before it is
    /// closed with 1001 "idle timeout". `None` (the default) waits forever.
    pub idle_timeout: Option<Duration>,
    /// How long one blocked write may take before the connection is dropped
    /// (a peer that never reads). Default 30 s.
    pub write_timeout: Option<Duration>,
    /// Ping after this much silence and fail with 1011 if no pong comes in
    /// time. Default 20 s / 20 s, like Python `websockets`; `None` disables.
    pub keepalive: Option<Keepalive>,
    /// How long to wait for the peer's close frame after ours. Default 5 s.
    pub close_timeout: Duration,
    /// How long shutdown waits for connections to finish after telling them
    /// to go away, before cutting them off. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Stack size of each connection thread. Default 128 KiB (what a handler
    /// that does not recurse deeply needs; raise it if yours does).
    pub stack_size: usize,
    /// Limits on messages and frames.
    pub protocol: Config,
    /// Limits on the request head.
    pub http_limits: Limits,
    /// Subprotocols, origin check, extra response headers. The default adds
    /// `Server: rfc6455/VERSION` to the 101; options set here replace it.
    pub accept: AcceptOptions,
    http: Option<HttpHandler>,
    upgrade_check: Option<UpgradeCheck>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            write_timeout: Some(Duration::from_secs(30)),
            keepalive: Some(Keepalive {
                interval: Duration::from_secs(20),
                timeout: Duration::from_secs(20),
            }),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            stack_size: 128 * 1024,
            protocol: Config::default(),
            http_limits: Limits::default(),
            // Names us in the 101 (Autobahn reports use it as the agent).
            accept: AcceptOptions::default()
                .header("Server", concat!("rfc6455/", env!("CARGO_PKG_VERSION"))),
            http: None,
            upgrade_check: None,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("keepalive", &self.keepalive)
            .field("close_timeout", &self.close_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("stack_size", &self.stack_size)
            .field("protocol", &self.protocol)
            .field("http_limits", &self.http_limits)
            .field("http", &self.http.is_some())
            .field("upgrade_check", &self.upgrade_check.is_some())
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> ServerConfig {
            self.$name = value;
            self
        }
    };
}

impl ServerConfig {
    setter!(/// Sets [`ServerConfig::max_connections`].
        max_connections: usize);
    setter!(/// Sets [`ServerConfig::handshake_timeout`].
        handshake_timeout: Duration);
    setter!(/// Sets [`ServerConfig::idle_timeout`].
        idle_timeout: Option<Duration>);
    setter!(/// Sets [`ServerConfig::write_timeout`].
        write_timeout: Option<Duration>);
    setter!(/// Sets [`ServerConfig::keepalive`].
        keepalive: Option<Keepalive>);
    setter!(/// Sets [`ServerConfig::close_timeout`].
        close_timeout: Duration);
    setter!(/// Sets [`ServerConfig::shutdown_timeout`].
        shutdown_timeout: Duration);
    setter!(/// Sets [`ServerConfig::stack_size`].
        stack_size: usize);
    setter!(/// Sets [`ServerConfig::protocol`].
        protocol: Config);
    setter!(/// Sets [`ServerConfig::http_limits`].
        http_limits: Limits);
    setter!(/// Sets [`ServerConfig::accept`].
        accept: AcceptOptions);

    /// Answers requests that are not WebSocket upgrades (no `Upgrade:
    /// websocket` header) with `handler`: a page, a health check, a trigger.
    /// Without one they get `426 Upgrade Required`.
    pub fn http_handler(
        mut self,
        handler: impl Fn(&Request) -> HttpResponse + Send + Sync + 'static,
    ) -> ServerConfig {
        self.http = Some(Arc::new(handler));
        self
    }

    /// Looks at each WebSocket upgrade request before the handshake:
    /// returning a response refuses the upgrade with it (a `404` for a path
    /// that has no WebSocket endpoint, a `401` without credentials), `None`
    /// lets the handshake go on. Origins and subprotocols have their own
    /// hooks in [`ServerConfig::accept`].
    ///
    /// ```
    /// use rfc6455::{HttpResponse, ServerConfig};
    ///
    /// let config = ServerConfig::default().check_upgrade(|request| {
    ///     (request.target != "/ws").then(HttpResponse::not_found)
    /// });
    /// ```
    pub fn check_upgrade(
        mut self,
        check: impl Fn(&Request) -> Option<HttpResponse> + Send + Sync + 'static,
    ) -> ServerConfig {
        self.upgrade_check = Some(Arc::new(check));
        self
    }

    fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .protocol(self.protocol.clone())
            .keepalive(self.keepalive)
            .close_timeout(self.close_timeout)
            .idle_timeout(self.idle_timeout)
    }
}

/// State shared by the accept loop, the connection threads and the handles.
struct Shared_ {
    shutting_down: Arc<AtomicBool>,
    live: Mutex<HashMap<u64, Shared<TcpStream>>>,
    drained: Condvar,
    next_id: AtomicU64,
    addr: SocketAddr,
}

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
        // Wake the accept loop, which is blocked in accept().
        let mut wake = self.shared.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        for stream in lock(&self.shared.live).values() {
            // Makes a blocked read return end-of-stream; the driver sees the
            // flag and sends 1001. Writes still work.
            let _ = stream.shutdown(Shutdown::Read);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    /// connection is closed; call [`WebSocket::close`] first (and read until
    /// [`Error::ConnectionClosed`](crate::Error::ConnectionClosed)) for a
    /// clean close. [`Error::ConnectionClosed`](crate::Error::ConnectionClosed)
    /// from the handler is the normal end of a connection.
    pub fn serve<F>(self, handler: F) -> io::Result<()>
    where
        F: Fn(ServerWebSocket, Request) -> Result<()> + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        let rejecter = spawn_rejecter();
        for stream in self.listener.incoming() {
            if self.shared.shutting_down.load(Ordering::Acquire) {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                // Out of descriptors, a connection reset before accept...:
                // back off briefly instead of spinning, keep serving.
                Err(_) => {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            if lock(&self.shared.live).len() >= self.config.max_connections {
                reject_busy(&rejecter, stream);
                continue;
            }
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            let stream = Shared::with_stop(stream, Arc::clone(&self.shared.shutting_down));
            lock(&self.shared.live).insert(id, stream.clone());
            let mut conn = Conn {
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
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("accept loop panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Closes and deregisters a connection when its thread ends, however it ends.
struct Conn {
    id: u64,
    shared: Arc<Shared_>,
    /// How long the closing socket may drain the peer's input: zero until
    /// the connection's thread runs, so that a connection whose thread could
    /// not be spawned is closed at once, without stalling the accept loop.
    linger: Duration,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let stream = lock(&self.shared.live).get(&self.id).cloned();
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

/// Closes a TCP connection without a reset: send FIN, then drain what the
/// peer still sends until it closes too, it pauses for half a second, or
/// `linger` is over. Closing with unread input makes the kernel send RST,
/// which destroys our last bytes (the close frame or an HTTP error) if they
/// are still queued, as they are behind a backlog of echoes to a peer that
/// streams fast: so the linger is the close timeout (the time a peer has to
/// answer our close frame anyway), not a fixed second.
fn close_gracefully(stream: &TcpStream, linger: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let deadline = Instant::now() + linger;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// [`close_gracefully`] for a socket whose read side shutdown already shut:
/// no FIN before the peer goes quiet. Linux answers data arriving on such a
/// socket after our FIN with RST (RFC 1122 §4.2.2.13 lets it), and the reset
/// discards what we have not sent yet: the 1001 close frame behind a backlog
/// of echoes, for a peer that streams until it reads that frame. So keep
/// taking its input (reads return at once now, with data or 0) until it has
/// been quiet for a moment; dropping the socket then sends FIN after our
/// queued bytes.
fn close_read_shut(stream: &TcpStream, linger: Duration) {
    const QUIET: Duration = Duration::from_millis(300);
    let deadline = Instant::now() + linger;
    let mut heard = Instant::now();
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline && heard.elapsed() < QUIET {
        match (&*stream).read(&mut sink) {
            Ok(0) => thread::sleep(Duration::from_millis(20)),
            Ok(_) => heard = Instant::now(),
            Err(_) => break,
        }
    }
}

fn serve_connection<F>(
    stream: Shared<TcpStream>,
    config: &ServerConfig,
    going_away: Arc<AtomicBool>,
    handler: &F,
) where
    F: Fn(ServerWebSocket, Request) -> Result<()>,
{
    // Small frames must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(config.write_timeout);
    let deadline = Instant::now() + config.handshake_timeout;
    let limits = config.http_limits.clone();
    let head = read_head(&stream, deadline, limits.max_head, |buf| {
        parse_request(buf, &limits)
    });
    let (request, leftover) = match head {
        Ok(ok) => ok,
        Err(HeadError::Parse(e)) => {
            let _ = (&*stream).write_all(&Rejection::from_http_error(&e).to_bytes());
            return;
        }
        Err(HeadError::TooLarge) => {
            let _ = (&*stream).write_all(&Rejection::new(431).to_bytes());
            return;
        }
        Err(HeadError::Timeout) => {
            let _ = (&*stream).write_all(&Rejection::new(408).to_bytes());
            return;
        }
        Err(HeadError::Eof | HeadError::Io(_)) => return,
    };
    if let Some(http) = &config.http {
        if !request.headers.has_token("upgrade", "websocket") {
            let _ = (&*stream).write_all(&http(&request).to_bytes());
            return;
        }
    }
    if let Some(check) = &config.upgrade_check {
        if let Some(response) = check(&request) {
            let _ = (&*stream).write_all(&response.to_bytes());
            return;
        }
    }
    let accepted = match accept(&request, &config.accept) {
        Ok(a) => a,
        Err(rejection) => {
            let _ = (&*stream).write_all(&rejection.to_bytes());
            return;
        }
    };
    if (&*stream).write_all(&accepted.response).is_err() {
        return;
    }
    let ws_config = config.websocket_config();
    // Always a read timeout: it is the driver's clock (keepalive, idle and
    // close timeouts), so a handler that closes and then reads never waits
    // forever for a peer that does not answer.
    let tick = ws_config.read_tick();
    let _ = stream.set_read_timeout(Some(tick));
    let mut ws = WebSocket::from_partially_read(stream, leftover, Role::Server, ws_config);
    ws.set_going_away(going_away);
    ws.set_timeouts_are_ticks(tick);
    let _ = handler(ws, request);
}

/// Over the cap: answer 503 from one helper thread with a bounded queue, so
/// a flood of connections cannot make the server spawn more threads.
fn spawn_rejecter() -> Option<SyncSender<TcpStream>> {
    let (tx, rx) = sync_channel::<TcpStream>(64);
    thread::Builder::new()
        .name("rfc6455-reject".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            for stream in rx {
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = (&stream).write_all(&Rejection::new(503).to_bytes());
                close_gracefully(&stream, Duration::from_secs(1));
            }
        })
        .ok()?;
    Some(tx)
}

fn reject_busy(rejecter: &Option<SyncSender<TcpStream>>, stream: TcpStream) {
    if let Some(tx) = rejecter {
        match tx.try_send(stream) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}
