//! The blocking driver: the [`protocol`](crate::protocol) core over a
//! `Read + Write` stream.
//!
//! System calls are the cost of a blocking WebSocket, so the driver makes few:
//! one `read` takes in as many frames as the buffer holds; replies queue up
//! and go out in one `write` when the input buffer is drained (just before
//! the next blocking read); large payloads go out with one vectored write of
//! header and payload, without copying them into a buffer.
//!
//! | file | concern |
//! | --- | --- |
//! | `read_buf.rs` | the read buffer (small, grows while reads fill it) |
//! | `recv.rs` | the receive side: read loop, reactions and timers through the core |
//! | `write.rs` | flushing, and the one write path for a large data frame |
//! | `owned.rs` | [`WebSocket`]: one owner |
//! | `split.rs` | [`Reader`] and [`Writer`]: full duplex across threads |
//! | `stream.rs` | messages larger than memory: [`MessageReader`], `send_stream` |

mod owned;
mod read_buf;
mod recv;
mod split;
mod stream;
mod write;

pub use owned::{Sender, WebSocket};
pub use split::{Reader, Writer};
pub use stream::MessageReader;
pub(crate) use write::SharedFrame;
