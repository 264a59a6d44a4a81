//! A message prepared for many connections (a broadcast): its encoding by a
//! negotiated extension is made once per distinct setting and shared, where
//! the setting allows it (gorilla/websocket's `PreparedMessage`).
//!
//! An extension encoder says through [`ExtensionEncoder::sharing`] whether
//! its output for a message depends only on the message and a key (say,
//! permessage-deflate without context takeover: a fresh compressor with a
//! given window and level) or also on what it sent before (with context
//! takeover each connection's compressor has its own history, so each
//! connection must compress for itself). The first connection that needs
//! the encoding for a key makes it with its own encoder; the others with the
//! same key reuse the bytes. [`Outgoing::frame_prepared`] applies this.
//!
//! [`ExtensionEncoder::sharing`]: super::extension::ExtensionEncoder::sharing
//! [`Outgoing::frame_prepared`]: super::Outgoing::frame_prepared

use super::Message;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Distinct shared settings one message keeps an encoding for. A server
/// usually has one (its configuration); a connection whose key finds every
/// slot taken encodes the message on its own, which is only slower.
const SLOTS: usize = 4;

/// A message to be sent to many connections, with the encodings made for it
/// so far. Cheap to create: nothing is encoded until a connection whose
/// extension can share its encoding sends it.
///
/// ```
/// use rfc6455::protocol::{Message, Outgoing, PreparedMessage};
/// use rfc6455::Role;
///
/// let prepared = PreparedMessage::new(Message::Text("to everyone".into()));
/// let mut a = Outgoing::new(Role::Server);
/// let mut b = Outgoing::new(Role::Server);
/// a.frame_prepared(&prepared, usize::MAX).unwrap();
/// b.frame_prepared(&prepared, usize::MAX).unwrap();
/// assert_eq!(a.pending(), b.pending());
/// // No extension negotiated: nothing to encode.
/// assert_eq!(prepared.encodings(), 0);
/// ```
pub struct PreparedMessage {
    message: Arc<Message>,
    slots: [OnceLock<Slot>; SLOTS],
    /// Encodings made for sharing (at most one per key that got a slot).
    encodings: AtomicUsize,
}

/// One key's encoding, made once by the first connection that asks.
struct Slot {
    key: u64,
    encoded: OnceLock<Encoded>,
}

/// A shared encoding: the RSV bits for the first frame and the payload, or
/// `rsv` 0 when the extension sends this message as it is.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) rsv: u8,
    pub(crate) payload: Vec<u8>,
}

impl PreparedMessage {
    /// Prepares `message` (a [`Message`] or an `Arc` of one) for sending to
    /// many connections.
    pub fn new(message: impl Into<Arc<Message>>) -> PreparedMessage {
        PreparedMessage {
            message: message.into(),
            slots: Default::default(),
            encodings: AtomicUsize::new(0),
        }
    }

    /// The message as it was given.
    pub fn message(&self) -> &Arc<Message> {
        &self.message
    }

    /// How many times the message was encoded to be shared: once per
    /// distinct shareable setting among the connections it was sent to so
    /// far. Connections whose extension keeps context (and settings beyond
    /// the few a message keeps) encode it on their own and are not counted.
    pub fn encodings(&self) -> usize {
        self.encodings.load(Ordering::Relaxed)
    }

    /// The shared encoding for `key`, made now with `encode` (which fills
    /// its buffer and returns the RSV bits, or `None` for "as it is") if no
    /// connection made it before; concurrent callers with the same key wait
    /// for the first. `None` when every slot holds another key.
    pub(crate) fn encoded(
        &self,
        key: u64,
        encode: impl FnOnce(&mut Vec<u8>) -> Option<u8>,
    ) -> Option<&Encoded> {
        // Slots are claimed in order and never released: the first slot
        // that is empty or holds `key` is this key's.
        let slot = self.slots.iter().find_map(|slot| {
            let slot = slot.get_or_init(|| Slot {
                key,
                encoded: OnceLock::new(),
            });
            (slot.key == key).then_some(slot)
        })?;
        Some(slot.encoded.get_or_init(|| {
            self.encodings.fetch_add(1, Ordering::Relaxed);
            let mut payload = Vec::new();
            match encode(&mut payload) {
                Some(rsv) => Encoded { rsv, payload },
                None => Encoded {
                    rsv: 0,
                    payload: Vec::new(),
                },
            }
        }))
    }
}

impl From<Message> for PreparedMessage {
    fn from(message: Message) -> PreparedMessage {
        PreparedMessage::new(message)
    }
}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("opcode", &self.message.opcode())
            .field("len", &self.message.len())
            .field("encodings", &self.encodings())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_encoding_per_key_until_the_slots_run_out() {
        let prepared = PreparedMessage::new(Message::Binary(vec![1, 2, 3]));
        let mut calls = 0;
        for round in 0..3 {
            for key in 0..SLOTS as u64 {
                let encoded = prepared.encoded(key, |out| {
                    calls += 1;
                    out.push(key as u8);
                    Some(0b100)
                });
                let encoded = encoded.unwrap();
                assert_eq!(
                    (encoded.rsv, &encoded.payload[..]),
                    (0b100, &[key as u8][..])
                );
            }
            assert_eq!(
                (calls, prepared.encodings()),
                (SLOTS, SLOTS),
                "round {round}"
            );
        }
        assert!(prepared.encoded(99, |_| unreachable!()).is_none());
    }

    #[test]
    fn as_it_is_is_shared_too() {
        let prepared = PreparedMessage::new(Message::Text("tiny".into()));
        let first = prepared.encoded(7, |_| None).unwrap();
        assert_eq!(first.rsv, 0);
        assert!(prepared.encoded(7, |_| unreachable!()).is_some());
        assert_eq!(prepared.encodings(), 1);
    }

    #[test]
    fn concurrent_senders_with_one_key_encode_once() {
        let prepared = Arc::new(PreparedMessage::new(Message::Text("x".repeat(1000))));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let prepared = Arc::clone(&prepared);
                std::thread::spawn(move || {
                    let encoded = prepared.encoded(1, |out| {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        out.extend_from_slice(b"made once");
                        Some(0b100)
                    });
                    encoded.unwrap().payload.clone()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), b"made once");
        }
        assert_eq!(prepared.encodings(), 1);
    }
}
