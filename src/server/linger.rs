//! Closing a connection without losing its last bytes: the guard that
//! closes and deregisters a connection however its thread ends, and the
//! lingering close (FIN, then drain the peer's input for a bounded time).

use super::listener::{lock, Shared_};
use crate::transport::Stream;
use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Closes and deregisters a connection when its thread ends, however it ends.
pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) shared: Arc<Shared_>,
    /// How long the closing socket may drain the peer's input: zero until
    /// the connection's thread runs, so that a connection whose thread could
    /// not be spawned is closed at once, without stalling the accept loop.
    pub(super) linger: Duration,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let stream = lock(&self.shared.live).get(&self.id).map(Stream::handle);
        if let Some(stream) = stream {
            if self.shared.shutting_down.load(Ordering::Acquire) {
                close_read_shut(&stream, self.linger);
            } else {
                close_gracefully(&stream, self.linger);
            }
        }
        // Deregistered only once the socket is closed: a draining connection
        // still holds a thread and a descriptor, so it still counts against
        // `max_connections`, and shutdown waits for it (and cuts it off at the
        // shutdown timeout) instead of returning while it drains.
        lock(&self.shared.live).remove(&self.id);
        self.shared.drained.notify_all();
    }
}

/// Closes a TCP connection without a reset: send FIN, then drain what the
/// peer still sends until it closes too, it pauses for half a second, or
/// `linger` is over. Closing with unread input makes the kernel send RST,
/// which destroys our last bytes (the close frame or an HTTP error) if they
/// are still queued, as they are behind a backlog of echoes to a peer that
/// streams fast: so the linger is the close timeout (the time a peer has to
/// answer our close frame anyway), not a fixed second.
pub(super) fn close_gracefully(stream: &TcpStream, linger: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let deadline = Instant::now() + linger;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// [`close_gracefully`] for a socket whose read side shutdown already shut:
/// no FIN before the peer goes quiet. Linux answers data arriving on such a
/// socket after our FIN with RST (RFC 1122 §4.2.2.13 lets it), and the reset
/// discards what we have not sent yet: the 1001 close frame behind a backlog
/// of echoes, for a peer that streams until it reads that frame. So keep
/// taking its input (reads return at once now, with data or 0) until it has
/// been quiet for a moment; dropping the socket then sends FIN after our
/// queued bytes.
fn close_read_shut(stream: &TcpStream, linger: Duration) {
    const QUIET: Duration = Duration::from_millis(300);
    let deadline = Instant::now() + linger;
    let mut heard = Instant::now();
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline && heard.elapsed() < QUIET {
        match (&*stream).read(&mut sink) {
            Ok(0) => thread::sleep(Duration::from_millis(20)),
            Ok(_) => heard = Instant::now(),
            Err(_) => break,
        }
    }
}
