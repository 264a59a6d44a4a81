//! # rfc6455
//!
//! The WebSocket protocol (RFC 6455) over std threads and blocking I/O: a
//! thread-per-connection [`Server`], a client ([`connect`]), a blocking
//! [`WebSocket`] that splits into a [`Reader`] and [`Writer`]s for full duplex,
//! and underneath, a sans-I/O codec you can drive from any event loop.
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
//! Lower down: [`frame`] (headers, masking, close codes), [`utf8`]
//! (incremental validation), [`handshake`] (bounded HTTP head parser,
//! accept/verify) and [`protocol`] (the whole state machine, with timers).
//!
//! ## Which configuration is for what
//!
//! - [`ServerConfig`]: everything a server is told (connection cap, timeouts,
//!   keepalive, limits, plain-HTTP and upgrade hooks); flat setters.
//! - [`ClientConfig`]: everything a client is told (connect and handshake
//!   timeouts, headers, subprotocols, limits, keepalive); flat setters.
//! - [`WebSocketConfig`]: one connection's limits and timers, whichever engine
//!   drives it (the two above build it; pass it yourself to
//!   [`WebSocket::from_raw_socket`] or [`protocol::Connection::with_timers`]).
//! - [`SizeLimits`]: the protocol limits alone (`max_frame_size`,
//!   `max_message_size`), part of the above.
//! - [`handshake::AcceptOptions`] (subprotocols, origins, extra headers of the
//!   101) and [`handshake::Limits`] (caps on the request or response head):
//!   the opening handshake's.
//!
//! Three ways to use the crate: run the echo server
//! (`cargo run --release --bin wsecho -- --listen 127.0.0.1:9001`), embed the
//! codec, or fuzz the parsers (`fuzz/`). How it is built:
//! `docs/design.md` in the repository.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
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
