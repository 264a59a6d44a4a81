//! The split halves: a [`Reader`] that blocks in `read` on one thread while
//! cloneable [`Writer`]s send from others.

use super::read_buf::ReadBuf;
use super::recv::{RecvSide, SendSide};
use super::stream::{check_data_opcode, send_fragments, MessageReader, Pulling, SOURCE_FAILED};
use super::write::{write_direct, write_shared, SharedFrame, MAX_QUEUED};
use crate::error::Result;
use crate::frame::{CloseCode, OpCode};
use crate::protocol::{
    Framed, Message, MessageRef, Outgoing, Piece, PreparedMessage, Streaming, DIRECT_WRITE,
};
use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

/// Builds the halves (see [`WebSocket::split`](super::WebSocket::split)).
pub(super) fn split<S>(
    read_stream: S,
    write_stream: S,
    recv: RecvSide,
    outgoing: Outgoing,
) -> (Reader<S>, Writer<S>) {
    let shared = Arc::new(SplitShared {
        state: Mutex::new(outgoing),
        stream: Mutex::new(WriteStream {
            stream: write_stream,
            scratch: Vec::new(),
        }),
        message: Mutex::new(()),
    });
    (
        Reader {
            stream: read_stream,
            recv,
            shared: Arc::clone(&shared),
        },
        Writer { shared },
    )
}

/// What the halves of a split connection share. Two locks, taken in this
/// order: `stream` (held across blocking writes, by one writer at a time)
/// and `state` (held only to encode or check, never across I/O).
///
/// A [`Reader`] only ever *tries* to take `stream`: if a writer holds it,
/// the reader leaves its pongs and close replies queued in `state`, and the
/// writer writes them before letting go. A writer lets go of `stream` while
/// holding `state`, having seen nothing queued, so a reply is never
/// stranded. Why not one lock: a writer blocked on a peer that is itself
/// blocked writing to us would then stop the reader too, a deadlock only the
/// write timeout would break.
#[derive(Debug)]
struct SplitShared<S> {
    state: Mutex<Outgoing>,
    stream: Mutex<WriteStream<S>>,
    /// Held for the whole of a data message a writer sends, so that a
    /// streamed message's fragments are never interleaved with another data
    /// message from another thread (control frames may go between them).
    /// Taken before the other two.
    message: Mutex<()>,
}

#[derive(Debug)]
struct WriteStream<S> {
    stream: S,
    /// Bytes taken out of `state` to be written without holding its lock;
    /// kept to reuse its allocation.
    scratch: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves the state consistent (every
    // method finishes its bookkeeping before writing), so go on.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: Write> SplitShared<S> {
    /// Writes what is queued, unless a writer is busy: it will. But past
    /// `MAX_QUEUED` bytes (a peer flooding pings while a writer is blocked
    /// on it) the reader waits for the stream instead of queueing more, so
    /// the peer meets TCP backpressure rather than our memory growing.
    fn try_flush(&self) -> io::Result<()> {
        let state = lock(&self.state);
        if state.pending().is_empty() {
            return Ok(());
        }
        let stream = match self.stream.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let too_much = state.pending().len() >= MAX_QUEUED;
                drop(state);
                return if too_much { self.flush_all() } else { Ok(()) };
            }
        };
        self.drain_and_release(stream, state)
    }

    /// Writes what is queued, waiting for a busy writer to finish first.
    fn flush_all(&self) -> io::Result<()> {
        if lock(&self.state).pending().is_empty() {
            return Ok(());
        }
        // Lock order: stream, then state (never the other way round).
        let stream = lock(&self.stream);
        let state = lock(&self.state);
        self.drain_and_release(stream, state)
    }

    /// With the stream held: writes everything queued until nothing is, then
    /// lets go of the stream while still holding the state lock.
    fn drain_and_release<'a>(
        &'a self,
        mut stream: MutexGuard<'a, WriteStream<S>>,
        mut state: MutexGuard<'a, Outgoing>,
    ) -> io::Result<()> {
        loop {
            if state.pending().is_empty() {
                drop(stream);
                return Ok(());
            }
            let ws = &mut *stream;
            state.swap_pending(&mut ws.scratch);
            drop(state);
            let written = ws
                .stream
                .write_all(&ws.scratch)
                .and_then(|()| ws.stream.flush());
            if ws.scratch.capacity() > MAX_QUEUED {
                // A burst left a big buffer: do not keep it for the
                // connection's lifetime.
                ws.scratch = Vec::new();
            }
            state = lock(&self.state);
            if let Err(e) = written {
                state.on_io_error();
                drop(stream);
                return Err(e);
            }
        }
    }

    /// Sends one frame: framed under the state lock by the same rule as
    /// the owned socket's ([`Outgoing::frame_data`]), written with only the
    /// stream held. Large payloads go out with one vectored write, without
    /// a copy when no mask is needed (a server).
    fn send(&self, opcode: OpCode, fin: bool, payload: Cow<'_, [u8]>) -> Result<()> {
        self.send_framed(|state| state.frame_data(opcode, fin, payload, DIRECT_WRITE))
    }

    /// Sends the frame `frame` makes under the state lock (see [`send`](Self::send)).
    fn send_framed<'a>(
        &self,
        frame: impl FnOnce(&mut Outgoing) -> Result<Framed<'a>>,
    ) -> Result<()> {
        let mut stream = lock(&self.stream);
        let mut state = lock(&self.state);
        let framed = match frame(&mut state) {
            Ok(Framed::Queued) => {
                self.drain_and_release(stream, state)?;
                return Ok(());
            }
            Ok(framed) => framed,
            Err(e) => {
                // Even on a refused send, write what the reader queued.
                self.drain_and_release(stream, state)?;
                return Err(e);
            }
        };
        let ws = &mut *stream;
        state.swap_pending(&mut ws.scratch);
        drop(state);
        // Masked outside the state lock: a reader never waits on it.
        let framed = framed.into_masked();
        let written = write_direct(&mut ws.stream, &ws.scratch, &framed);
        let mut state = lock(&self.state);
        if let Err(e) = written {
            state.on_io_error();
            return Err(e.into());
        }
        self.drain_and_release(stream, state)?;
        Ok(())
    }
}

/// The reading half of a split [`WebSocket`](super::WebSocket).
#[derive(Debug)]
pub struct Reader<S> {
    stream: S,
    recv: RecvSide,
    shared: Arc<SplitShared<S>>,
}

struct SplitSide<'a, S> {
    stream: &'a mut S,
    shared: &'a SplitShared<S>,
}

impl<S: Read + Write> SendSide for SplitSide<'_, S> {
    fn read(&mut self, rbuf: &mut ReadBuf) -> io::Result<usize> {
        rbuf.fill(self.stream)
    }
    fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
    fn state<T>(&mut self, f: impl FnOnce(&mut Outgoing) -> T) -> T {
        f(&mut lock(&self.shared.state))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.shared.try_flush()
    }
    fn flush_all(&mut self) -> io::Result<()> {
        self.shared.flush_all()
    }
    fn batches_replies(&self) -> bool {
        false
    }
}

impl<S: Read + Write> Reader<S> {
    /// Reads the next message, as [`WebSocket::read`](super::WebSocket::read); pongs and close
    /// replies are written at once (or by a writer busy writing).
    pub fn read(&mut self) -> Result<Message> {
        let mut side = SplitSide {
            stream: &mut self.stream,
            shared: &self.shared,
        };
        self.recv.read(&mut side)
    }

    /// Reads the next message borrowed from the read buffer, without
    /// allocating, as [`WebSocket::read_ref`](super::WebSocket::read_ref).
    pub fn read_ref(&mut self) -> Result<MessageRef<'_>> {
        let mut side = SplitSide {
            stream: &mut self.stream,
            shared: &self.shared,
        };
        self.recv.read_ref(&mut side)
    }

    /// Reads the next message or piece of a streamed one, as
    /// [`WebSocket::read_piece`](super::WebSocket::read_piece).
    pub fn read_piece(&mut self, streaming: Streaming) -> Result<Piece<'_>> {
        let mut side = SplitSide {
            stream: &mut self.stream,
            shared: &self.shared,
        };
        self.recv.read_piece(&mut side, streaming)
    }

    /// The next data message as an [`io::Read`] over its payload, as
    /// [`WebSocket::read_stream`](super::WebSocket::read_stream); replies to
    /// control frames go out at once (or by a writer busy writing).
    pub fn read_stream(&mut self) -> Result<MessageReader<'_>> {
        let pulling = Pulling {
            recv: &mut self.recv,
            side: SplitSide {
                stream: &mut self.stream,
                shared: &self.shared,
            },
        };
        pulling.start()
    }

    /// A new handle for sending on this connection.
    pub fn writer(&self) -> Writer<S> {
        Writer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The stream this half reads from.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

/// The sending half of a split [`WebSocket`](super::WebSocket): cloneable and usable from any
/// thread. Sends are serialized, so frames from several threads never
/// interleave on the wire, and a sender blocked on a slow peer never stops
/// the [`Reader`].
#[derive(Debug)]
pub struct Writer<S> {
    shared: Arc<SplitShared<S>>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Writer<S> {
        Writer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: Write> Writer<S> {
    /// Sends a message and flushes. Payloads of 16 KiB and more are written
    /// from the message itself (masked in place by a client), not copied.
    pub fn send(&self, message: Message) -> Result<()> {
        let opcode = message.opcode();
        // Owned: a client masks a large payload in place, without a copy.
        let payload = match message {
            Message::Close(_) => return self.send_ref(MessageRef::from(&message)),
            Message::Text(text) => text.into_bytes(),
            Message::Binary(data) | Message::Ping(data) | Message::Pong(data) => data,
        };
        // A data message waits for a streamed one to end.
        let _message = (!opcode.is_control()).then(|| lock(&self.shared.message));
        self.shared.send(opcode, true, Cow::Owned(payload))
    }

    /// Sends one frame of a message (`fin` false for all but the last of a
    /// fragmented one) and flushes. A server writes payloads of 16 KiB and
    /// more straight from `payload`, so sending one message to many clients
    /// (a broadcast) does not copy it per client.
    pub fn send_frame(&self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        self.shared.send(opcode, fin, Cow::Borrowed(payload))
    }

    /// Sends a borrowed message, as [`send`](Writer::send): a server writes
    /// payloads of 16 KiB and more straight from `message`, so sending one
    /// message to many clients (a broadcast) does not copy it per client.
    pub fn send_ref(&self, message: MessageRef<'_>) -> Result<()> {
        let _message = message.is_data().then(|| lock(&self.shared.message));
        match message {
            MessageRef::Close(frame) => {
                let stream = lock(&self.shared.stream);
                let mut state = lock(&self.shared.state);
                let queued = state.close(frame.as_ref());
                self.shared.drain_and_release(stream, state)?;
                queued
            }
            MessageRef::Text(t) => {
                self.shared
                    .send(OpCode::Text, true, Cow::Borrowed(t.as_bytes()))
            }
            MessageRef::Binary(d) | MessageRef::Ping(d) | MessageRef::Pong(d) => {
                self.shared.send(message.opcode(), true, Cow::Borrowed(d))
            }
        }
    }

    /// Sends whole text and binary frames encoded once for many connections
    /// (see [`SharedFrame`]), with every queued reply before them, in one
    /// vectored write. `Ok(false)`, with nothing sent, when this connection
    /// must frame them itself (a client masks, an extension rewrites the
    /// payload): send them with [`send_ref`](Writer::send_ref) then.
    pub(crate) fn send_shared(&self, frames: &[SharedFrame<'_>]) -> Result<bool> {
        let _message = lock(&self.shared.message);
        let mut stream = lock(&self.shared.stream);
        let mut state = lock(&self.shared.state);
        for frame in frames {
            match state.takes_shared_frame(frame.opcode, frame.payload.len()) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    // As on a refused send: still write what the reader queued.
                    self.shared.drain_and_release(stream, state)?;
                    return Err(e);
                }
            }
        }
        let ws = &mut *stream;
        state.swap_pending(&mut ws.scratch);
        drop(state);
        let written = write_shared(&mut ws.stream, &ws.scratch, frames);
        let mut state = lock(&self.shared.state);
        if let Err(e) = written.and_then(|()| ws.stream.flush()) {
            // Part of a frame may be on the wire: nothing more can follow.
            state.on_io_error();
            return Err(e.into());
        }
        self.shared.drain_and_release(stream, state)?;
        Ok(true)
    }

    /// Sends a message prepared for many connections (a broadcast), as
    /// [`send_ref`](Writer::send_ref), sharing its compressed form with the
    /// other connections that send it where the negotiated compression
    /// allows (no context takeover): see [`PreparedMessage`].
    ///
    /// ```no_run
    /// use rfc6455::protocol::PreparedMessage;
    /// use rfc6455::{Message, Writer};
    ///
    /// fn send_to_all(writers: &[Writer<rfc6455::Stream>], text: &str) {
    ///     let prepared = PreparedMessage::new(Message::Text(text.into()));
    ///     for writer in writers {
    ///         let _ = writer.send_prepared(&prepared);
    ///     }
    /// }
    /// ```
    pub fn send_prepared(&self, prepared: &PreparedMessage) -> Result<()> {
        let _message = prepared
            .message()
            .is_data()
            .then(|| lock(&self.shared.message));
        self.shared
            .send_framed(|state| state.frame_prepared(prepared, DIRECT_WRITE))
    }

    /// Sends a message read from `source`, one fragment of `fragment_size`
    /// bytes at a time, as [`WebSocket::send_stream`](super::WebSocket::send_stream).
    /// Other threads may send pings, pongs and a close meanwhile (they go
    /// between fragments); a data message another thread sends waits until
    /// this one has ended.
    pub fn send_stream(
        &self,
        opcode: OpCode,
        source: impl Read,
        fragment_size: usize,
    ) -> Result<u64> {
        check_data_opcode(opcode)?;
        let _message = lock(&self.shared.message);
        send_fragments(
            &mut (),
            opcode,
            source,
            fragment_size,
            |_, opcode, bytes, fin| self.shared.send(opcode, fin, Cow::Borrowed(bytes)),
            |_| {
                let stream = lock(&self.shared.stream);
                let mut state = lock(&self.shared.state);
                state.close_with(CloseCode::INTERNAL_ERROR, SOURCE_FAILED);
                let _ = self.shared.drain_and_release(stream, state);
            },
        )
    }

    /// Sends a close frame; the [`Reader`] completes the handshake.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<()> {
        self.send(Message::Close(Some(crate::CloseFrame {
            code: code.into(),
            reason: reason.to_owned(),
        })))
    }

    /// Whether nothing more can be sent: a close frame was sent or the
    /// connection failed (see [`Outgoing::send_closed`]).
    pub fn send_closed(&self) -> bool {
        lock(&self.shared.state).send_closed()
    }
}
