//! Reading an HTTP head over a blocking transport: the I/O loop around the
//! core's byte-fed head readers (the request for the threaded server, the
//! 101 for the client, a proxy's answer to `CONNECT`), which hold every rule
//! of it (growth, parsing as bytes arrive, the size caps). This loop only
//! reads, and stops at the deadline.

use super::Transport;
use crate::handshake::ReadsHead;
use std::io;
use std::time::Instant;

/// Why [`read_head`] stopped.
#[derive(Debug)]
pub(crate) enum ReadError<E> {
    /// The deadline passed first.
    Timeout,
    /// The peer closed the connection first.
    Eof,
    /// The transport failed.
    Io(io::Error),
    /// The bytes broke a rule of the head (the reader says which).
    Head(E),
}

/// Reads from `stream` into `head` until the head is complete, giving up at
/// `deadline`. The bytes read past the head stay in `head` (its leftover:
/// the peer's first frames, which must not be lost).
pub(crate) fn read_head<S: Transport, H: ReadsHead>(
    stream: &mut S,
    head: &mut H,
    deadline: Instant,
) -> Result<H::Head, ReadError<H::Error>> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(ReadError::Timeout);
        }
        stream
            .set_read_timeout(Some(deadline - now))
            .map_err(ReadError::Io)?;
        match stream.read(head.space()) {
            Ok(0) => return Err(ReadError::Eof),
            Ok(n) => {
                if let Some(parsed) = head.filled(n).map_err(ReadError::Head)? {
                    return Ok(parsed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The loop's check says whether the deadline has passed.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}
