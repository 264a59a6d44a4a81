//! # rfc6455
//!
//! The WebSocket protocol (RFC 6455, and RFC 7692 permessage-deflate) over
//! std threads and blocking I/O, no async runtime: a thread-per-connection
//! [`Server`], a poll engine for many connections (feature `mio`), a client
//! ([`connect`]) and one that reconnects ([`reconnect`]), a blocking
//! [`WebSocket`] that splits into a [`Reader`] and [`Writer`]s for full
//! duplex, broadcast rooms ([`Hub`]), and underneath a sans-I/O codec you can
//! drive from any event loop. Autobahn TestSuite: every case strict OK or
//! INFORMATIONAL, on both engines, both roles, with and without compression.
//!
//! ## A server
//!
//! ```no_run
//! use rfc6455::{Server, ServerConfig};
//!
//! let server = Server::bind("127.0.0.1:9001", ServerConfig::default())?;
//! server.serve(|mut ws, _request| loop {
//!     let message = ws.read()?; // pings, close frames and errors are answered inside
//!     if message.is_data() {
//!         ws.write(message)?;
//!     }
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## A client
//!
//! ```no_run
//! use rfc6455::{CloseCode, Error, Message};
//!
//! let (mut ws, _response) = rfc6455::connect("ws://127.0.0.1:9001/")?;
//! ws.send(Message::text("hello"))?;
//! println!("{:?}", ws.read()?);
//! ws.close(CloseCode::NORMAL, "done")?;
//! while !matches!(ws.read(), Err(Error::ConnectionClosed)) {} // the close handshake
//! # Ok::<(), rfc6455::Error>(())
//! ```
//!
//! A client that survives server restarts (backoff, resubscribing, sends
//! queued while disconnected) is [`reconnect::ReconnectingClient`].
//!
//! ## Full duplex: read on one thread, send from others
//!
//! ```no_run
//! let (ws, _response) = rfc6455::connect("ws://127.0.0.1:9001/")?;
//! let (mut reader, writer) = ws.split()?;
//! std::thread::spawn(move || writer.send("hello".into()));
//! while let Ok(message) = reader.read() {
//!     println!("{message:?}");
//! }
//! # Ok::<(), rfc6455::Error>(())
//! ```
//!
//! ## The codec, without sockets
//!
//! ```
//! use rfc6455::protocol::{SizeLimits, Connection, Message};
//! use rfc6455::Role;
//!
//! let mut conn = Connection::new(Role::Server, SizeLimits::default());
//! // RFC 6455 §5.7: a masked "Hello" from a client.
//! let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let received: Vec<Message> = conn.feed(&wire).collect::<Result<_, _>>().unwrap();
//! assert_eq!(received, [Message::text("Hello")]);
//! conn.send(&received[0]).unwrap(); // echo it
//! assert_eq!(conn.data_to_send(), b"\x81\x05Hello"); // the bytes to write
//! ```
//!
//! ## Features
//!
//! The core depends on `sha1`, `base64`, `byteorder` and `getrandom` only;
//! each capability beyond it is one feature (off by default, but `signals`),
//! one module and one seam. On docs.rs every feature is built, and items
//! that need one say so.
//!
//! | feature | adds | on |
//! | --- | --- | --- |
//! | `tls` | `wss://` for the client and the server, HTTP proxies' `CONNECT` over it: `transport::tls`, `ClientConfig::tls`, `ServerConfig::tls_pem` | rustls (ring), webpki-roots |
//! | `deflate` | permessage-deflate (RFC 7692), negotiated in the handshake: [`handshake::DeflateConfig`], `protocol::deflate` | flate2 on zlib-rs |
//! | `mio` | the poll engine: N worker threads, each an event loop over many connections: `poll` | mio |
//! | `redis` | broadcast across server instances over Redis pub/sub: `hub::redis` | redis (sync) |
//! | `signals` (default) | graceful shutdown on SIGINT/SIGTERM in the `wsecho` and `wsclient` binaries (the library installs no handler) | signal-hook |
//!
//! ## Modules
//!
//! | module | for |
//! | --- | --- |
//! | [`server`] | the thread-per-connection [`Server`]: connection cap, timeouts, graceful shutdown, plain HTTP beside WebSocket |
//! | `poll` | the poll engine (`mio`): the same core and [`ServerConfig`], callbacks instead of blocking reads |
//! | [`client`] | [`connect`] / [`connect_with`]: URL → TCP (or a proxy tunnel) → TLS → handshake |
//! | [`reconnect`] | a client that reconnects with backoff, resubscribes and queues what is sent meanwhile |
//! | [`hub`] | broadcast to many connections and rooms, on either engine, across instances with `redis` |
//! | [`WebSocket`], [`Reader`], [`Writer`] | the blocking connection (at the crate root): messages whole, borrowed, streamed or as pieces |
//! | [`protocol`] | the sans-I/O core: a [`protocol::Connection`] fed bytes and time; limits, timers, extensions |
//! | [`handshake`] | the opening handshake on byte slices: a bounded HTTP head parser, accept/reject, request/verify |
//! | [`frame`] | frame headers, masking, opcodes, close codes: pure functions |
//! | [`utf8`] | incremental UTF-8 validation across fragments |
//! | [`transport`] | the byte streams under a connection: TCP, TLS, proxies ([`Stream`], [`Transport`]) |
//! | [`escape`] | peer text made safe for a log line or a terminal |
//!
//! ## Which configuration is for what
//!
//! - [`ServerConfig`]: everything a server is told (connection cap, timeouts,
//!   keepalive, limits, plain-HTTP and upgrade hooks); flat setters.
//! - [`ClientConfig`]: everything a client is told (the connect timeout,
//!   headers, subprotocols, limits, keepalive, TLS, proxy); flat setters.
//! - [`WebSocketConfig`]: one connection's limits and timers, whichever engine
//!   drives it (the two above build it; pass it yourself to
//!   [`WebSocket::from_raw_socket`] or [`protocol::Connection::with_timers`]).
//! - [`SizeLimits`]: the protocol limits alone (`max_frame_size`,
//!   `max_message_size`), part of the above.
//! - [`handshake::AcceptOptions`] (subprotocols, origins, extra headers of the
//!   101) and [`handshake::Limits`] (caps on the request or response head):
//!   the opening handshake's.
//! - [`reconnect::Backoff`]: how soon a [`reconnect::ReconnectingClient`]
//!   comes back.
//!
//! The binaries: `wsecho` (an echo server, either engine) and `wsclient` (an
//! interactive client: `wsclient ws://127.0.0.1:9001/`). The repository's
//! README is a guide; `docs/design.md` shows how the crate is built and
//! `docs/conformance.md` the Autobahn results per engine, role and feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
mod engine;
mod error;
pub mod escape;
pub mod frame;
pub mod handshake;
pub mod hub;
#[cfg(feature = "mio")]
pub mod poll;
pub mod protocol;
pub mod reconnect;
pub mod server;
pub mod transport;
pub mod utf8;
mod websocket;

// What most programs use: a server, a client, the connection, its messages.
pub use client::{connect, connect_with, ClientConfig, ClientWebSocket};
pub use protocol::Message;
pub use server::{
    HttpResponse, RunningServer, Server, ServerConfig, ServerHandle, ServerWebSocket,
};
pub use websocket::{MessageReader, Reader, Sender, WebSocket, Writer};

// Configuration and errors.
pub use error::{Error, ProtocolError, Refusal, Result, SendError, Timeout};
pub use protocol::{Keepalive, SizeLimits, WebSocketConfig};

// Building blocks.
pub use frame::{CloseCode, CloseFrame, Role};
pub use hub::{Delivery, Hub, Inbox, Member, Relay};
pub use transport::{Stream, Transport};

// Runs the README's Rust snippets as doc tests, so the README cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
