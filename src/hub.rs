//! Broadcast to every connected client: a [`Hub`] of cloneable sender
//! handles taken from split connections.
//!
//! Each member gets a bounded queue and a small sender thread that drains it
//! into the member's [`Writer`]. [`Hub::broadcast`] only puts the message on
//! every queue, so it never blocks on a socket, and one slow client never
//! holds up the others.
//!
//! **Policy for slow clients.** When a member's queue is full, that member
//! misses the message (counted in [`Delivery::dropped`] and
//! [`Member::dropped`]); the others still get it. A client that stops reading
//! altogether fails its next write after the server's write timeout, which
//! takes it out of the hub. A member leaves the hub when its [`Member`] guard
//! is dropped (normally when the connection's handler returns) or when a
//! write to it fails.
//!
//! ```no_run
//! use rfc6455::{Hub, Message, Server, ServerConfig};
//!
//! let hub = Hub::new();
//! let server = Server::bind("127.0.0.1:9002", ServerConfig::default())?;
//! let room = hub.clone();
//! server.serve(move |ws, _request| {
//!     let (mut reader, writer) = ws.split()?;
//!     let _member = room.join(writer); // leaves the hub when dropped
//!     loop {
//!         if let Message::Text(text) = reader.read()? {
//!             room.broadcast(Message::Text(text));
//!         }
//!     }
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::frame::OpCode;
use crate::{Message, Writer};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

/// Messages a member may have waiting before it starts missing broadcasts.
pub const DEFAULT_QUEUE_LEN: usize = 256;

/// Stack of each member's sender thread: it only encodes and writes.
const SENDER_STACK: usize = 64 * 1024;

/// A set of connected clients that can all be sent the same message.
/// Cloning gives another handle to the same hub.
pub struct Hub<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    members: Mutex<HashMap<u64, Slot>>,
    next_id: AtomicU64,
    queue_len: usize,
    _writer: std::marker::PhantomData<fn(S)>,
}

struct Slot {
    queue: SyncSender<Arc<Message>>,
    dropped: Arc<AtomicU64>,
}

/// What one [`Hub::broadcast`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Members the message was queued for.
    pub queued: usize,
    /// Members whose queue was full: they miss this message.
    pub dropped: usize,
}

/// Membership of one client in a [`Hub`]; the client leaves when this is
/// dropped.
pub struct Member<S> {
    id: u64,
    hub: Hub<S>,
    dropped: Arc<AtomicU64>,
}

impl<S> Clone for Hub<S> {
    fn clone(&self) -> Hub<S> {
        Hub {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> Default for Hub<S> {
    fn default() -> Hub<S> {
        Hub::with_queue_len(DEFAULT_QUEUE_LEN)
    }
}

impl<S> std::fmt::Debug for Hub<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("members", &self.len())
            .field("queue_len", &self.inner.queue_len)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map inconsistent
    // (every critical section is a single insert, remove or iteration).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S> Hub<S> {
    /// An empty hub whose members may each have [`DEFAULT_QUEUE_LEN`]
    /// messages waiting.
    pub fn new() -> Hub<S> {
        Hub::default()
    }

    /// An empty hub whose members may each have `queue_len` (at least 1)
    /// messages waiting before they miss broadcasts.
    pub fn with_queue_len(queue_len: usize) -> Hub<S> {
        Hub {
            inner: Arc::new(Inner {
                members: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                queue_len: queue_len.max(1),
                _writer: std::marker::PhantomData,
            }),
        }
    }

    /// How many clients are in the hub.
    pub fn len(&self) -> usize {
        lock(&self.inner.members).len()
    }

    /// Whether the hub has no clients.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `message` for every member and returns at once; see the
    /// [module docs](self) for what happens to slow clients.
    ///
    /// ```
    /// use rfc6455::{Hub, Message, ServerWebSocket};
    ///
    /// let hub: Hub<rfc6455::Stream> = Hub::new();
    /// let delivery = hub.broadcast(Message::Text("nobody here".into()));
    /// assert_eq!(delivery.queued, 0);
    /// # let _: Option<ServerWebSocket> = None;
    /// ```
    pub fn broadcast(&self, message: Message) -> Delivery {
        // One allocation shared by every queue, not one copy per client.
        let message = Arc::new(message);
        let mut delivery = Delivery::default();
        let mut gone = Vec::new();
        {
            let members = lock(&self.inner.members);
            for (&id, slot) in members.iter() {
                match slot.queue.try_send(Arc::clone(&message)) {
                    Ok(()) => delivery.queued += 1,
                    Err(TrySendError::Full(_)) => {
                        slot.dropped.fetch_add(1, Ordering::Relaxed);
                        delivery.dropped += 1;
                    }
                    // The sender thread has ended: its writes failed.
                    Err(TrySendError::Disconnected(_)) => gone.push(id),
                }
            }
        }
        if !gone.is_empty() {
            let mut members = lock(&self.inner.members);
            for id in gone {
                members.remove(&id);
            }
        }
        delivery
    }

    fn leave(&self, id: u64) {
        lock(&self.inner.members).remove(&id);
    }
}

impl<S: Write + Send + 'static> Hub<S> {
    /// Adds a client, given the [`Writer`] half of its split connection, and
    /// starts the thread that feeds it. The client stays in the hub until the
    /// returned [`Member`] is dropped or a write to it fails.
    ///
    /// Panics only if the operating system cannot start a thread.
    pub fn join(&self, writer: Writer<S>) -> Member<S> {
        let (queue, messages) = mpsc::sync_channel::<Arc<Message>>(self.inner.queue_len);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        let hub = self.clone();
        thread::Builder::new()
            .name("rfc6455-hub".into())
            .stack_size(SENDER_STACK)
            .spawn(move || {
                // Ends when the member leaves (the queue's sender is dropped)
                // or a write fails (the client is gone or too slow).
                for message in messages {
                    if send(&writer, &message).is_err() {
                        hub.leave(id);
                        break;
                    }
                }
            })
            .expect("cannot spawn a hub sender thread");
        lock(&self.inner.members).insert(
            id,
            Slot {
                queue,
                dropped: Arc::clone(&dropped),
            },
        );
        Member {
            id,
            hub: self.clone(),
            dropped,
        }
    }
}

/// Sends a shared message: a server writes payloads of 16 KiB and more
/// straight from it (see [`Writer::send_frame`]), so a broadcast costs one
/// copy of the message, not one per member.
fn send<S: Write>(writer: &Writer<S>, message: &Message) -> crate::Result<()> {
    match message {
        Message::Text(text) => writer.send_frame(OpCode::Text, text.as_bytes(), true),
        Message::Binary(data) => writer.send_frame(OpCode::Binary, data, true),
        Message::Ping(data) => writer.send_frame(OpCode::Ping, data, true),
        Message::Pong(data) => writer.send_frame(OpCode::Pong, data, true),
        Message::Close(frame) => writer.send(Message::Close(frame.clone())),
    }
}

impl<S> Member<S> {
    /// Broadcasts this client missed because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether this client is still in the hub (its writes have not failed).
    pub fn is_joined(&self) -> bool {
        lock(&self.hub.inner.members).contains_key(&self.id)
    }
}

impl<S> Drop for Member<S> {
    fn drop(&mut self) {
        self.hub.leave(self.id);
    }
}

impl<S> std::fmt::Debug for Member<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("dropped", &self.dropped())
            .finish()
    }
}
