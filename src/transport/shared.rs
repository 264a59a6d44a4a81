//! [`Shared`]: one socket shared by a reader, a writer and a server's
//! shutdown handle without duplicating its file descriptor.

use std::io::{self, IoSlice, Read, Write};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A stream shared through an `Arc`, readable and writable through shared
/// references (as `TcpStream` is). Cloning it clones the `Arc`, not the
/// socket, so a split connection still costs one file descriptor; a server
/// holding 10,000 connections stays under a 20,000 descriptor limit.
#[derive(Debug)]
pub(crate) struct Shared<S> {
    stream: Arc<S>,
    /// Set by a server that is shutting down: the next read then reports
    /// end of stream (once), which makes the driver send close 1001; reads
    /// after that are real again, so the peer's close reply can arrive.
    stop: Option<Arc<AtomicBool>>,
    stop_reported: bool,
}

impl<S> Shared<S> {
    /// Wraps a stream.
    pub(crate) fn new(stream: S) -> Shared<S> {
        Shared {
            stream: Arc::new(stream),
            stop: None,
            stop_reported: false,
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
            stop_reported: false,
        }
    }
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Shared<S> {
        Shared {
            stream: Arc::clone(&self.stream),
            stop: self.stop.clone(),
            stop_reported: false,
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
        if !self.stop_reported
            && self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Acquire))
        {
            self.stop_reported = true;
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
