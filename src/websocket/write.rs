//! The write path: flushing queued bytes, and the one way a data frame goes
//! out, shared by the owned [`WebSocket`](super::WebSocket) and the split
//! [`Writer`](super::Writer).

use crate::frame::{FrameHeader, OpCode};
use crate::protocol::{Framed, Outgoing};
use crate::transport::write_all_vectored;
use std::io::{self, IoSlice, Write};

/// Queued output is flushed without waiting for the next read once it
/// reaches this size, so a writer that never reads cannot grow it unbounded.
pub(super) const MAX_QUEUED: usize = 64 * 1024;

/// Writes everything `out` has queued.
pub(super) fn flush_outgoing<W: Write + ?Sized>(
    stream: &mut W,
    out: &mut Outgoing,
) -> io::Result<()> {
    while !out.pending().is_empty() {
        match stream.write(out.pending()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => out.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.flush()
}

/// Writes `queued` bytes, then a frame's header and (already masked)
/// payload, in one vectored write: the large payload is never copied.
fn write_behind<W: Write + ?Sized>(
    stream: &mut W,
    queued: &[u8],
    header: &FrameHeader,
    payload: &[u8],
) -> io::Result<()> {
    let encoded = header.encode();
    let mut bufs = [
        IoSlice::new(queued),
        IoSlice::new(encoded.as_bytes()),
        IoSlice::new(payload),
    ];
    write_all_vectored(stream, &mut bufs)
}

/// Writes a frame that [`Outgoing::frame_data`] handed back as direct
/// (masked already), behind the `queued` bytes. A failure leaves part of a
/// frame on the wire, so the caller marks the connection broken.
pub(super) fn write_direct<W: Write + ?Sized>(
    stream: &mut W,
    queued: &[u8],
    framed: &Framed<'_>,
) -> io::Result<()> {
    match framed {
        Framed::Direct { header, payload } => write_behind(stream, queued, header, payload),
        Framed::Queued => Ok(()),
    }
}

/// A whole, unmasked text or binary frame encoded once and written as is on
/// many server connections (a hub's broadcast: without masking or an
/// extension, the bytes are the same for every member).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedFrame<'a> {
    /// Text or binary.
    pub(crate) opcode: OpCode,
    /// The encoded header: FIN set, RSV bits clear, no mask.
    pub(crate) header: &'a [u8],
    /// The payload, as it goes on the wire.
    pub(crate) payload: &'a [u8],
}

/// Writes `queued` bytes and then every frame of `frames` with as few
/// vectored writes as the stream takes: no payload is copied.
pub(super) fn write_shared<W: Write + ?Sized>(
    stream: &mut W,
    queued: &[u8],
    frames: &[SharedFrame<'_>],
) -> io::Result<()> {
    let mut bufs = Vec::with_capacity(1 + 2 * frames.len());
    bufs.push(IoSlice::new(queued));
    for frame in frames {
        bufs.push(IoSlice::new(frame.header));
        bufs.push(IoSlice::new(frame.payload));
    }
    write_all_vectored(stream, &mut bufs)
}
