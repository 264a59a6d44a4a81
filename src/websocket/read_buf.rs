//! The driver's read buffer: starts small, grows only while reads fill it.

use std::io::{self, Read};

/// The read buffer starts here: with a small thread stack, this keeps an idle
/// connection's memory to a few KiB (tungstenite's 128 KiB default buffer
/// costs ~143 KiB of RSS per idle connection).
const MIN_READ_BUF: usize = 1024;
/// ... and grows (while reads fill it) up to this. Payloads of 16 KiB and
/// more are read straight into the message (`DIRECT_READ`), so a bigger read
/// buffer only adds a copy: one read would take in most of a large message,
/// which would then be copied out.
const MAX_READ_BUF: usize = 16 * 1024;

/// A read buffer that starts small and grows only while reads fill it.
#[derive(Debug)]
pub(super) struct ReadBuf {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl ReadBuf {
    pub(super) fn new(leftover: Vec<u8>) -> ReadBuf {
        let len = leftover.len();
        let mut buf = leftover;
        if buf.len() < MIN_READ_BUF {
            buf.resize(MIN_READ_BUF, 0);
            // The handshake's buffer (4 KiB) becomes this one: give back
            // what an idle connection does not need.
            buf.shrink_to_fit();
        }
        ReadBuf { buf, pos: 0, len }
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// The unread bytes, to be unmasked in place, and where they start.
    pub(super) fn data_mut(&mut self) -> (usize, &mut [u8]) {
        (self.pos, &mut self.buf[self.pos..self.len])
    }

    /// The whole buffer, for positions from [`data_mut`](ReadBuf::data_mut).
    pub(super) fn all(&self) -> &[u8] {
        &self.buf
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos == self.len
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    /// Reads once into the drained buffer.
    pub(super) fn fill<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<usize> {
        self.pos = 0;
        self.len = 0;
        let n = r.read(&mut self.buf)?;
        self.len = n;
        if n == self.buf.len() && self.buf.len() < MAX_READ_BUF {
            // The peer sent more than fit: take bigger bites next time.
            let bigger = (self.buf.len() * 4).min(MAX_READ_BUF);
            self.buf.resize(bigger, 0);
        } else if n <= MIN_READ_BUF && self.buf.len() > MIN_READ_BUF {
            // Back to small messages: give the memory back.
            self.buf.truncate(MIN_READ_BUF);
            self.buf.shrink_to_fit();
        }
        Ok(n)
    }
}
