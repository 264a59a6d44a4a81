//! Stream plumbing for the blocking driver: sharing one socket between a
//! reader, a writer and a server's shutdown handle without duplicating its
//! file descriptor.

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A stream shared through an `Arc`, readable and writable through shared
/// references (as `TcpStream` is). Cloning it clones the `Arc`, not the
/// socket, so a split connection still costs one file descriptor; a server
/// holding 10,000 connections stays under a 20,000 descriptor limit.
#[derive(Debug)]
pub struct Shared<S> {
    stream: Arc<S>,
    /// Set by a server that is shutting down: reads then report end of
    /// stream, which makes the driver send close 1001.
    stop: Option<Arc<AtomicBool>>,
}

impl<S> Shared<S> {
    /// Wraps a stream.
    pub fn new(stream: S) -> Shared<S> {
        Shared {
            stream: Arc::new(stream),
            stop: None,
        }
    }

    /// Wraps a stream whose reads report end of stream once `stop` is set.
    ///
    /// Why: a server shuts a connection down by shutting down the socket's
    /// read side, which wakes a blocked `read` with end of stream. But on
    /// Linux a read-side shutdown does not stop data that keeps arriving, so
    /// a peer that streams without pause would never be seen to end and
    /// would be cut off without its 1001 when the shutdown timeout expires.
    pub(crate) fn with_stop(stream: S, stop: Arc<AtomicBool>) -> Shared<S> {
        Shared {
            stream: Arc::new(stream),
            stop: Some(stop),
        }
    }
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Shared<S> {
        Shared {
            stream: Arc::clone(&self.stream),
            stop: self.stop.clone(),
        }
    }
}

impl<S> Deref for Shared<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.stream
    }
}

impl<S> Read for Shared<S>
where
    for<'a> &'a S: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Acquire))
        {
            return Ok(0);
        }
        (&*self.stream).read(buf)
    }
}

impl<S> Write for Shared<S>
where
    for<'a> &'a S: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.stream).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self.stream).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.stream).flush()
    }
}

/// A stream that can be duplicated into a reading and a writing handle, for
/// [`WebSocket::split`](crate::WebSocket::split).
pub trait TryClone: Sized {
    /// Another handle to the same underlying stream.
    fn try_clone(&self) -> io::Result<Self>;
}

impl TryClone for TcpStream {
    /// Duplicates the socket (one more file descriptor).
    fn try_clone(&self) -> io::Result<TcpStream> {
        TcpStream::try_clone(self)
    }
}

#[cfg(unix)]
impl TryClone for std::os::unix::net::UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }
}

impl<S> TryClone for Shared<S> {
    /// Clones the `Arc`: no new file descriptor.
    fn try_clone(&self) -> io::Result<Shared<S>> {
        Ok(self.clone())
    }
}

/// Writes every byte of `bufs` with as few `write_vectored` calls as the
/// stream allows (`Write::write_all_vectored` is not stable).
pub(crate) fn write_all_vectored<W: Write + ?Sized>(
    w: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The head buffer's first size: a typical upgrade request fits, and so does
/// the driver's initial read buffer, which this buffer becomes (see below).
const HEAD_BUF: usize = 4 * 1024;
/// How much more the head buffer grows by when a head does not fit.
const HEAD_GROW: usize = 2 * 1024;

/// Reads from `stream` until `parse` finds a complete head in the bytes read
/// so far, giving up at `deadline`. Returns the parsed head and the bytes read
/// past it (the peer's first frames, which must not be lost).
///
/// Memory is bounded by `max_bytes`: `parse` is expected to fail once the
/// buffer exceeds its head-size cap, and reading stops there regardless.
///
/// Reads go straight into the heap buffer, and the bytes past the head are
/// returned in that same buffer (moved to its front, capacity kept), so the
/// driver's read buffer reuses it. Why: with a thread per connection, idle
/// memory is what the handshake leaves behind; a stack chunk plus a second
/// buffer cost a stack page and a heap fragment per connection.
pub(crate) fn read_head<T, E>(
    stream: &std::net::TcpStream,
    deadline: std::time::Instant,
    max_bytes: usize,
    mut parse: impl FnMut(&[u8]) -> Result<Option<(T, usize)>, E>,
) -> Result<(T, Vec<u8>), HeadError<E>> {
    let mut buf: Vec<u8> = Vec::with_capacity(HEAD_BUF);
    loop {
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(HeadError::Timeout);
        }
        stream.set_read_timeout(Some(deadline - now))?;
        let filled = buf.len();
        if buf.capacity() == filled {
            buf.reserve(HEAD_GROW);
        }
        // Read into the spare capacity (zeroed: no unsafe code here).
        buf.resize(buf.capacity(), 0);
        let read = (&*stream).read(&mut buf[filled..]);
        buf.truncate(filled + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return Err(HeadError::Eof),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::Timeout)
            }
            Err(e) => return Err(HeadError::Io(e)),
        }
        // Never hold more than the cap plus one read, whatever the peer sends.
        match parse(&buf).map_err(HeadError::Parse)? {
            Some((head, used)) => {
                buf.drain(..used);
                return Ok((head, buf));
            }
            None if buf.len() > max_bytes => return Err(HeadError::TooLarge),
            None => {}
        }
    }
}

/// Why [`read_head`] stopped.
#[derive(Debug)]
pub(crate) enum HeadError<E> {
    Timeout,
    Eof,
    TooLarge,
    Io(io::Error),
    Parse(E),
}

impl<E> From<io::Error> for HeadError<E> {
    fn from(e: io::Error) -> HeadError<E> {
        HeadError::Io(e)
    }
}
