//! Stream plumbing for the blocking driver: sharing one socket between a
//! reader, a writer and a server's shutdown handle without duplicating its
//! file descriptor.

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::ops::Deref;
use std::sync::Arc;

/// A stream shared through an `Arc`, readable and writable through shared
/// references (as `TcpStream` is). Cloning it clones the `Arc`, not the
/// socket, so a split connection still costs one file descriptor; a server
/// holding 10,000 connections stays under a 20,000 descriptor limit.
#[derive(Debug)]
pub struct Shared<S>(Arc<S>);

impl<S> Shared<S> {
    /// Wraps a stream.
    pub fn new(stream: S) -> Shared<S> {
        Shared(Arc::new(stream))
    }
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Shared<S> {
        Shared(Arc::clone(&self.0))
    }
}

impl<S> Deref for Shared<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S> Read for Shared<S>
where
    for<'a> &'a S: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl<S> Write for Shared<S>
where
    for<'a> &'a S: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
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

/// Reads from `stream` until `parse` finds a complete head in the bytes read
/// so far, giving up at `deadline`. Returns the parsed head and the bytes read
/// past it (the peer's first frames, which must not be lost).
///
/// Memory is bounded by `max_bytes`: `parse` is expected to fail once the
/// buffer exceeds its head-size cap, and reading stops there regardless.
pub(crate) fn read_head<T, E>(
    stream: &std::net::TcpStream,
    deadline: std::time::Instant,
    max_bytes: usize,
    mut parse: impl FnMut(&[u8]) -> Result<Option<(T, usize)>, E>,
) -> Result<(T, Vec<u8>), HeadError<E>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(HeadError::Timeout);
        }
        stream.set_read_timeout(Some(deadline - now))?;
        let n = match (&*stream).read(&mut chunk) {
            Ok(0) => return Err(HeadError::Eof),
            Ok(n) => n,
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
        };
        // Never hold more than the cap plus one chunk, whatever the peer sends.
        buf.extend_from_slice(&chunk[..n]);
        match parse(&buf).map_err(HeadError::Parse)? {
            Some((head, used)) => return Ok((head, buf.split_off(used))),
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
