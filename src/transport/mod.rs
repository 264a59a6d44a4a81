//! The transport seam: what the blocking driver, the server and the client
//! need from a byte stream, so that plain TCP and a TLS session (feature
//! `tls`, module `tls`) plug in behind one public signature; the client's HTTP
//! proxy tunnel (`CONNECT`) is set up here too.
//!
//! [`Transport`] is the trait (read, write, timeouts, shutdown, and how to
//! split into a reading and a writing handle); [`Stream`] is the crate's own
//! stream type, which the server hands to its handlers
//! ([`ServerWebSocket`](crate::ServerWebSocket)) and the client returns
//! ([`ClientWebSocket`](crate::ClientWebSocket)).
//!
//! The rule every implementation keeps: **no lock is held across a blocking
//! socket call.** A split connection has one thread blocked in `read` while
//! others write; if a TLS session's state is shared between the halves, it
//! is locked only to encrypt or decrypt bytes already in memory.

mod head;
pub(crate) mod proxy;
mod shared;
#[cfg(feature = "tls")]
pub mod tls;

pub use crate::error::{ProxyError, TlsError, TlsErrorKind};

pub(crate) use head::{read_head, ReadError};
pub(crate) use shared::Shared;

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::ops::Deref;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// A byte stream a WebSocket can run over.
///
/// Timeouts and shutdown have no-op defaults, for in-memory streams in
/// tests; a socket implements them for real.
pub trait Transport: Read + Write + Sized {
    /// Two handles to the same connection: the first is read from (by a
    /// [`Reader`](crate::Reader)), the second written to (by its
    /// [`Writer`](crate::Writer)s), from different threads at once.
    fn split(self) -> io::Result<(Self, Self)>;

    /// Sets the read timeout (`None`: block forever).
    fn set_read_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// Sets the write timeout (`None`: block forever).
    fn set_write_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// Shuts down the read side, the write side or both.
    fn shutdown(&self, _how: Shutdown) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for TcpStream {
    /// Duplicates the socket (one more file descriptor).
    fn split(self) -> io::Result<(TcpStream, TcpStream)> {
        let reader = self.try_clone()?;
        Ok((reader, self))
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn split(self) -> io::Result<(Self, Self)> {
        let reader = self.try_clone()?;
        Ok((reader, self))
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }
}

/// The crate's network stream: what a server's handler and a client get.
///
/// A TCP socket, or (feature `tls`) a TLS session over one. The socket is
/// shared (not duplicated) between the halves of a split connection and
/// the server's shutdown handle, so a split connection still costs one file
/// descriptor. It dereferences to the underlying [`TcpStream`] for socket
/// options and addresses (`peer_addr`, `set_read_timeout`…); reading or
/// writing that directly corrupts the connection.
#[derive(Debug)]
pub struct Stream {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Tcp(Shared<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(tls::TlsStream),
}

/// Runs `$body` with `$s` bound to the variant's stream (each implements
/// `Read + Write`).
macro_rules! each {
    ($inner:expr, $s:ident => $body:expr) => {
        match $inner {
            Inner::Tcp($s) => $body,
            #[cfg(feature = "tls")]
            Inner::Tls($s) => $body,
        }
    };
}

impl Stream {
    /// Wraps a connected TCP socket.
    pub fn from_tcp(stream: TcpStream) -> Stream {
        Stream {
            inner: Inner::Tcp(Shared::new(stream)),
        }
    }

    /// A server connection whose reads report end of stream once `stop` is
    /// set (see [`Shared::with_stop`]).
    pub(crate) fn with_stop(stream: TcpStream, stop: Arc<AtomicBool>) -> Stream {
        Stream {
            inner: Inner::Tcp(Shared::with_stop(stream, stop)),
        }
    }

    /// Another handle to the same connection (for the server's shutdown
    /// handle and the halves of a split connection).
    pub(crate) fn handle(&self) -> Stream {
        Stream {
            inner: match &self.inner {
                Inner::Tcp(tcp) => Inner::Tcp(tcp.clone()),
                #[cfg(feature = "tls")]
                Inner::Tls(tls) => Inner::Tls(tls.handle()),
            },
        }
    }

    /// The address of the peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Shuts the socket down; over TLS, shutting down the write side sends
    /// `close_notify` first. (An inherent method, so that it is this one,
    /// not the `TcpStream`'s behind `Deref`, that `stream.shutdown(…)` calls.)
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(tcp) => tcp.shutdown(how),
            #[cfg(feature = "tls")]
            Inner::Tls(tls) => tls.shutdown(how),
        }
    }

    /// Whether this stream is encrypted with TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self.inner, Inner::Tcp(_))
    }

    fn tcp(&self) -> &TcpStream {
        match &self.inner {
            Inner::Tcp(tcp) => tcp,
            #[cfg(feature = "tls")]
            Inner::Tls(tls) => tls.tcp(),
        }
    }
}

impl Deref for Stream {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        self.tcp()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(&mut self.inner, s => s.read(buf))
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(&mut self.inner, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(&mut self.inner, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        each!(&mut self.inner, s => s.flush())
    }
}

impl Transport for Stream {
    /// Another handle to the same connection: no new file descriptor (and
    /// one TLS session, shared).
    fn split(self) -> io::Result<(Stream, Stream)> {
        Ok((self.handle(), self))
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }
    /// See [`Stream::shutdown`].
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        Stream::shutdown(self, how)
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
