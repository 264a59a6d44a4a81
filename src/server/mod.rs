//! A thread-per-connection WebSocket server.
//!
//! One accept loop; each connection gets its own thread with a small stack,
//! runs the opening handshake under a deadline, then hands a [`WebSocket`] to
//! your handler. Concurrent connections are capped (beyond the cap: HTTP 503),
//! every phase has a timeout, a panicking handler costs only its own
//! connection, and [`ServerHandle::shutdown`] stops accepting, closes live
//! connections with 1001 (going away) and waits for their threads.
//!
//! ```no_run
//! use rfc6455::{HttpResponse, Message, Server, ServerConfig};
//! use std::time::Duration;
//!
//! let config = ServerConfig::default()
//!     .max_connections(1000)
//!     .idle_timeout(Some(Duration::from_secs(300)))
//!     .http_handler(|_request| HttpResponse::new(200, "text/plain", "ok\n"))
//!     .on_error(|error, request| eprintln!("{}: {error}", request.target));
//! let running = Server::bind("127.0.0.1:9001", config)?.spawn(|mut ws, request| {
//!     ws.send(Message::text(format!("hello, {}", request.target)))?;
//!     loop {
//!         ws.read()?;
//!     }
//! })?;
//! // ... later, from any thread:
//! running.shutdown()?; // close 1001 to everyone, wait for their threads
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! | file | concern |
//! | --- | --- |
//! | `listener.rs` | the accept loop, the connection cap, [`ServerHandle::shutdown`] |
//! | `registry.rs` | the live connections, and the guard that closes each without losing its last bytes |
//! | `upgrade.rs` | one connection's thread: the handshake through the core, the handler |
//!
//! [`ServerConfig`], [`HttpResponse`] and [`Responder`] (an HTTP answer given
//! later from another thread) are shared with the poll engine (they live in
//! the crate's engine-shared module, with the upgrade decision chain and the
//! accept loop's pieces).

mod listener;
mod registry;
mod upgrade;

pub use crate::engine::config::{ServerConfig, DEFAULT_MEMORY_BUDGET};
pub use crate::engine::response::{HttpResponse, Responder, LATER_TIMEOUT};
pub use listener::{RunningServer, Server, ServerHandle};

use crate::transport::Stream;
use crate::websocket::WebSocket;

/// The WebSocket a server handler gets, over the crate's [`Stream`] (shared
/// with the server, so that shutdown can reach a connection blocked in
/// `read`).
pub type ServerWebSocket = WebSocket<Stream>;
