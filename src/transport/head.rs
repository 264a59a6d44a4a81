//! Reading an HTTP head (the opening handshake) from a transport, bounded
//! in bytes and time.

use super::Transport;
use std::io;

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
pub(crate) fn read_head<S: Transport, T, E>(
    stream: &mut S,
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
        let read = stream.read(&mut buf[filled..]);
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
