//! A TLS session shared by the handles of one connection (see the rule in
//! the [module docs](super)): [`TlsStream`] reads ciphertext with no lock
//! held and locks the session only to decrypt or encrypt bytes in memory.

use crate::transport::Shared;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Instant;

/// The reading handle's ciphertext buffer starts at this size and returns to
/// it after a small read: an idle connection blocked in `read` holds only
/// this much (a fixed 16 KiB buffer on the stack cost every idle connection
/// 16 KiB of stack pages).
const RX_MIN: usize = 2 * 1024;
/// ... and grows, while reads fill it, up to rustls's received-plaintext
/// limit (16 KiB): the socket is read only once the plaintext is drained,
/// so what one read brings always fits (see [`Session::feed`] otherwise).
const RX_MAX: usize = 16 * 1024;
/// An output buffer grown past this by a burst is given back afterwards.
const KEEP_OUT: usize = 64 * 1024;

/// One handle to a TLS connection (the halves of a split connection and the
/// server's shutdown handle each have one).
#[derive(Debug)]
pub(crate) struct TlsStream {
    /// This handle's view of the socket (its own stop-flag bookkeeping).
    tcp: Shared<TcpStream>,
    session: Arc<Session>,
    /// Ciphertext read but not yet taken by the session (rarely anything:
    /// see [`Session::feed`]); empty, and unallocated, when idle.
    pending: Vec<u8>,
    /// Where ciphertext is read to (allocated by the first read).
    rx: Vec<u8>,
}

#[derive(Debug)]
struct Session {
    conn: Mutex<rustls::Connection>,
    /// The output lock: held by whoever writes records to the socket, in the
    /// order the session produced them. Holds the encrypted bytes.
    out: Mutex<Vec<u8>>,
    /// For writes from `Drop` (close_notify).
    tcp: Shared<TcpStream>,
    /// A socket write failed (or timed out): part of a record may be out, so
    /// nothing more can be sent, and a close_notify must not wait another
    /// write timeout on a peer that does not read.
    broken: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before it can
    // panic, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Session {
    /// Feeds ciphertext to the session; returns how much it took, which is
    /// less than all when its plaintext buffer filled up (records that were
    /// partial in the last read completed in this one). On a TLS error the
    /// alert rustls queued is sent (best effort) and the error returned.
    fn feed(&self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        let mut conn = lock(&self.conn);
        let mut failed = None;
        while !rest.is_empty() {
            let n = match conn.read_tls(&mut rest) {
                Ok(n) => n,
                // "received plaintext buffer full": the rest waits.
                Err(e) if e.kind() == io::ErrorKind::Other => break,
                Err(e) => return Err(e),
            };
            if let Err(e) = conn.process_new_packets() {
                failed = Some(e);
                break;
            }
            if n == 0 {
                // close_notify received: what follows is ignored.
                rest = &[];
                break;
            }
        }
        let used = data.len() - rest.len();
        let pending = conn.wants_write();
        match failed {
            Some(e) => {
                // The alert goes out now, or with a busy writer's bytes.
                let _ = self.try_flush(conn);
                Err(tls_io_error(e))
            }
            None if pending => self.try_flush(conn).map(|()| used),
            None => Ok(used),
        }
    }

    /// Sends what the session has queued unless a writer holds the output
    /// lock (that writer sends it before letting go). Called with the
    /// session locked, so the writer's last check cannot miss these bytes.
    fn try_flush(&self, conn: MutexGuard<'_, rustls::Connection>) -> io::Result<()> {
        match self.out.try_lock() {
            Ok(out) => {
                drop(conn);
                self.drain(out)
            }
            Err(TryLockError::Poisoned(p)) => {
                drop(conn);
                self.drain(p.into_inner())
            }
            Err(TryLockError::WouldBlock) => Ok(()),
        }
    }

    /// Sends what the session has queued, waiting for a busy writer.
    fn flush_blocking(&self) -> io::Result<()> {
        self.drain(lock(&self.out))
    }

    /// With the output lock held: moves encrypted records out of the session
    /// (under its lock) and writes them (without it) until none are left;
    /// lets go of the output lock while still holding the session lock.
    fn drain(&self, mut out: MutexGuard<'_, Vec<u8>>) -> io::Result<()> {
        loop {
            if self.broken.load(Ordering::Acquire) {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "an earlier write on this TLS connection failed",
                ));
            }
            {
                let mut conn = lock(&self.conn);
                if !conn.wants_write() {
                    drop(out);
                    return Ok(());
                }
                out.clear();
                while conn.wants_write() {
                    conn.write_tls(&mut *out)?;
                }
            }
            let written = (&*self.tcp).write_all(&out);
            if out.capacity() > KEEP_OUT {
                *out = Vec::new();
            }
            if written.is_err() {
                self.broken.store(true, Ordering::Release);
            }
            written?;
        }
    }

    /// Queues `close_notify` and sends it (best effort: the peer may be
    /// gone, or not reading).
    fn close_notify(&self) {
        if self.broken.load(Ordering::Acquire) {
            return;
        }
        lock(&self.conn).send_close_notify();
        let _ = self.flush_blocking();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        if conn.is_handshaking() || *self.broken.get_mut() {
            return;
        }
        conn.send_close_notify();
        let mut bytes = Vec::new();
        while conn.wants_write() {
            if conn.write_tls(&mut bytes).is_err() {
                return;
            }
        }
        // The socket's write timeout bounds this for a peer that never reads.
        let _ = (&*self.tcp).write_all(&bytes);
    }
}

impl TlsStream {
    pub(super) fn new(tcp: Shared<TcpStream>, conn: rustls::Connection) -> TlsStream {
        TlsStream {
            session: Arc::new(Session {
                conn: Mutex::new(conn),
                out: Mutex::new(Vec::new()),
                tcp: tcp.clone(),
                broken: AtomicBool::new(false),
            }),
            tcp,
            pending: Vec::new(),
            rx: Vec::new(),
        }
    }

    pub(crate) fn handle(&self) -> TlsStream {
        TlsStream {
            tcp: self.tcp.clone(),
            session: Arc::clone(&self.session),
            pending: Vec::new(),
            rx: Vec::new(),
        }
    }

    /// Feeds what is pending; `false` when nothing was pending.
    fn feed_pending(&mut self) -> io::Result<bool> {
        if self.pending.is_empty() {
            return Ok(false);
        }
        let used = self.session.feed(&self.pending)?;
        if used == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS: the session takes no more input",
            ));
        }
        self.pending.drain(..used);
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        Ok(true)
    }

    /// Reads ciphertext from the socket, with no lock held, and feeds it to
    /// the session (what it does not take waits in `pending`). `Ok(0)`: end
    /// of stream.
    fn read_and_feed(&mut self) -> io::Result<usize> {
        if self.rx.is_empty() {
            self.rx = vec![0; RX_MIN];
        }
        let n = self.tcp.read(&mut self.rx)?;
        if n == 0 {
            return Ok(0);
        }
        let used = self.session.feed(&self.rx[..n])?;
        self.pending.extend_from_slice(&self.rx[used..n]);
        if n == self.rx.len() && self.rx.len() < RX_MAX {
            // The peer sent more than fit: take bigger bites next time.
            let bigger = (self.rx.len() * 4).min(RX_MAX);
            self.rx.resize(bigger, 0);
        } else if n <= RX_MIN && self.rx.len() > RX_MIN {
            // Back to small records: give the memory back.
            self.rx.truncate(RX_MIN);
            self.rx.shrink_to_fit();
        }
        Ok(n)
    }

    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Sends close_notify before shutting down the write side.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.session.close_notify();
        }
        self.tcp.shutdown(how)
    }

    /// Runs the TLS handshake, bounded by `deadline` (the socket's read
    /// timeout is set for it; the caller sets its own afterwards).
    pub(super) fn handshake(&mut self, deadline: Instant) -> io::Result<()> {
        loop {
            self.session.flush_blocking()?;
            if !lock(&self.session.conn).is_handshaking() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake not complete in time",
                ));
            }
            self.tcp.set_read_timeout(Some(deadline - now))?;
            // Anything the session did not take (only once its plaintext
            // buffer is full, so after the handshake) waits in `pending`.
            match self.read_and_feed() {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS handshake not complete in time",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match lock(&self.session.conn).reader().read(buf) {
                // Ok(0): the peer sent close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.feed_pending()? {
                continue;
            }
            // No lock held across the blocking read.
            if self.read_and_feed()? == 0 {
                // TCP closed (or the server's stop flag). Without
                // close_notify a TLS stream could be truncated, but a
                // WebSocket has its own close frame to tell a clean end.
                return Ok(0);
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Encrypts header and payload together, then writes the records with
    /// one socket write.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let out = lock(&self.session.out);
        let n = lock(&self.session.conn).writer().write_vectored(bufs)?;
        self.session.drain(out)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every write is sent before it returns.
        Ok(())
    }
}
