//! What both engines' accept loops share: the wake-up that lets a loop
//! blocked in `accept()` see its stop flag, joining it, the back-off after a
//! failed `accept()`, the answer to a connection over the cap (503 from one
//! helper thread with a bounded queue), and the lingering close of a
//! blocking socket by the core's [`Linger`] rule.

use super::config::ServerConfig;
use crate::handshake::server::Rejection;
use crate::protocol::linger::Linger;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Wakes an accept loop blocked in `accept()` on `addr` by connecting to it
/// (the loop then sees its stop flag): for both engines' shutdown.
pub(crate) fn wake_accept(addr: SocketAddr) {
    let mut wake = addr;
    if wake.ip().is_unspecified() {
        wake.set_ip(match wake {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
}

/// Waits for a spawned accept loop to end: for both engines' running
/// servers, on shutdown and on drop.
pub(crate) fn join_accept(
    thread: &mut Option<thread::JoinHandle<io::Result<()>>>,
) -> io::Result<()> {
    match thread.take() {
        Some(t) => t
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("accept loop panicked"))),
        None => Ok(()),
    }
}

/// After a failed `accept()` (out of descriptors, a connection reset before
/// it was accepted): back off briefly instead of spinning, keep serving.
pub(crate) fn accept_failed() {
    thread::sleep(Duration::from_millis(5));
}

/// Over the cap: answer 503 from one helper thread with a bounded queue, so
/// a flood of connections cannot make the server spawn more threads.
pub(crate) fn spawn_rejecter(config: Arc<ServerConfig>) -> Option<SyncSender<TcpStream>> {
    let (tx, rx) = sync_channel::<TcpStream>(64);
    // A TLS handshake needs a bigger stack than a plaintext 503.
    let stack = if config.uses_tls() { 256 } else { 64 } * 1024;
    thread::Builder::new()
        .name("rfc6455-reject".into())
        .stack_size(stack)
        .spawn(move || {
            for stream in rx {
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                #[cfg(feature = "tls")]
                if let Some(tls) = &config.tls {
                    // Over TLS the 503 must be encrypted to be read; the
                    // handshake gets one second, like the write.
                    let deadline = Instant::now() + Duration::from_secs(1);
                    let stream = crate::transport::Stream::from_tcp(stream);
                    if let Ok(mut stream) = stream.accept_tls(tls, deadline) {
                        let _ = stream.write_all(&Rejection::new(503).to_bytes());
                        let _ = stream.shutdown(Shutdown::Write);
                        close_gracefully(&stream, Duration::from_secs(1));
                    }
                    continue;
                }
                let _ = (&stream).write_all(&Rejection::new(503).to_bytes());
                close_gracefully(&stream, Duration::from_secs(1));
            }
        })
        .ok()?;
    Some(tx)
}

/// Hands a connection over the cap to the rejecter (dropped, so closed, if
/// its queue is full).
pub(crate) fn reject_busy(rejecter: &Option<SyncSender<TcpStream>>, stream: TcpStream) {
    if let Some(tx) = rejecter {
        match tx.try_send(stream) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Closes a blocking TCP connection without a reset: FIN, then the peer's
/// input drained by the core's [`Linger`] rule (until it closes too, goes
/// quiet, or `timeout` passes). Closing with unread input makes the kernel
/// send RST, which destroys our last bytes (the close frame or an HTTP
/// error) if they are still queued, as they are behind a backlog of echoes
/// to a peer that streams fast.
pub(crate) fn close_gracefully(stream: &TcpStream, timeout: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let mut linger = Linger::new(Instant::now(), timeout);
    let mut sink = [0u8; 4096];
    while let Some(left) = linger.wait(Instant::now()) {
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match (&*stream).read(&mut sink) {
            Ok(0) => return,
            Ok(_) => linger.on_input(Instant::now()),
            // The linger's own check says whether the peer went quiet.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// [`close_gracefully`] for a socket whose read side shutdown already shut
/// (a server shutting down): no FIN before the peer goes quiet. Linux
/// answers data arriving on such a socket after our FIN with RST (RFC 1122
/// §4.2.2.13 lets it), and the reset discards what we have not sent yet:
/// the 1001 close frame behind a backlog of echoes, for a peer that streams
/// until it reads that frame. So its input is taken (reads return at once
/// now, with data or 0) until it has been quiet for the linger's time;
/// dropping the socket then sends FIN after our queued bytes.
pub(crate) fn close_read_shut(stream: &TcpStream, timeout: Duration) {
    let mut linger = Linger::new(Instant::now(), timeout);
    let mut sink = [0u8; 4096];
    while linger.wait(Instant::now()).is_some() {
        match (&*stream).read(&mut sink) {
            // Nothing now (reads do not block any more): look again soon.
            Ok(0) => thread::sleep(Duration::from_millis(20)),
            Ok(_) => linger.on_input(Instant::now()),
            Err(_) => return,
        }
    }
}
