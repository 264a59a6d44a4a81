//! The sans-I/O protocol core: bytes in, messages out; messages in, bytes out.
//!
//! No sockets and no clock: a [`Connection`] is driven entirely by the bytes
//! and calls its owner gives it, so the same code runs under the blocking
//! [`WebSocket`](crate::WebSocket), under an event loop of your own, in tests
//! and in the fuzzers.
//!
//! ```
//! use rfc6455::protocol::{SizeLimits, Connection, Message};
//! use rfc6455::frame::Role;
//!
//! let mut server = Connection::new(Role::Server, SizeLimits::default());
//! // RFC 6455 §5.7: a masked "Hello" from a client.
//! let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let mut messages = Vec::new();
//! for message in server.feed(&wire) {
//!     messages.push(message.unwrap());
//! }
//! assert_eq!(messages, [Message::Text("Hello".into())]);
//!
//! // Echo it: the server's frame is unmasked.
//! server.send(&messages[0]).unwrap();
//! assert_eq!(server.data_to_send(), b"\x81\x05Hello");
//! ```

mod assembler;
mod budget;
mod config;
mod connection;
mod decoder;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod extension;
mod inbound;
mod incoming;
mod lifecycle;
pub mod linger;
mod message;
mod opening;
mod outgoing;
mod prepared;
mod timers;

pub use budget::Budget;
pub use config::{Keepalive, SizeLimits, WebSocketConfig};
pub use connection::{Connection, Feed, State};
pub(crate) use inbound::Reactions;
pub use inbound::{Inbound, GOING_AWAY};
pub use incoming::{Incoming, Located, Piece, PieceAt, Received, ReceivedRef, Streaming};
pub use lifecycle::{Lifecycle, Phase};
pub use message::{Message, MessageRef};
pub use opening::{ClientHandshake, Opened, ServerHandshake};
pub use outgoing::{Framed, Outgoing, DIRECT_WRITE};
pub use prepared::PreparedMessage;
pub use timers::Timers;

pub use crate::handshake::DeflateConfig;

pub use crate::frame::ProtocolError;
