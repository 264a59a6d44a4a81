//! # rfc6455
//!
//! The WebSocket protocol (RFC 6455) over std threads and blocking I/O.
//!
//! Three ways to use it:
//!
//! 1. **Run the echo server**: `cargo run --release --bin wsecho -- --listen 127.0.0.1:9001`
//!    (thread per connection, bounded, conformant).
//! 2. **Embed the codec**: [`frame`] (headers, masking, close codes), [`utf8`]
//!    (incremental validation), [`handshake`] (HTTP head parser, accept/verify)
//!    and [`protocol`] (a sans-I/O connection) all work on byte slices, with
//!    no sockets.
//! 3. **Fuzz the parsers**: `cargo +nightly fuzz run frame_header` in `fuzz/`.
//!
//! ```
//! use rfc6455::frame::{apply_mask, FrameHeader, OpCode, Parsed};
//!
//! let mut header = FrameHeader::new(OpCode::Text, 5);
//! header.mask = Some([0x37, 0xfa, 0x21, 0x3d]);
//! let mut wire = header.encode().as_bytes().to_vec();
//! let mut payload = *b"Hello";
//! apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d]);
//! wire.extend_from_slice(&payload);
//! // RFC 6455 §5.7: a single-frame masked text message.
//! assert_eq!(wire, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! assert!(matches!(FrameHeader::parse(&wire), Ok(Parsed::Complete(_, 6))));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
mod error;
pub mod frame;
pub mod handshake;
pub mod hub;
pub mod protocol;
pub mod server;
mod stream;
pub mod utf8;
mod websocket;

pub use client::{connect, connect_with, ClientConfig};
pub use error::{Error, ProtocolError, Result};
pub use frame::{CloseCode, CloseFrame, Role};
pub use hub::{Delivery, Hub, Inbox, Member, Relay};
pub use protocol::{Config, Message};
pub use server::{
    HttpResponse, RunningServer, Server, ServerConfig, ServerHandle, ServerWebSocket,
};
pub use stream::{Shared, TryClone};
pub use websocket::{Keepalive, Reader, WebSocket, WebSocketConfig, Writer};

// Runs the README's Rust snippets as doc tests, so the README cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
