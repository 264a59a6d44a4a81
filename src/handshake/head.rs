//! [`HeadReader`]: an HTTP head (the upgrade request, the 101 response, a
//! proxy's answer to `CONNECT`) arriving as bytes, bounded in bytes. The one
//! place that grows a head buffer, parses it as it arrives and refuses a
//! head over [`Limits`]; every engine, the client and the proxy tunnel read
//! through it (time is bounded by whoever drives it: see
//! [`ServerHandshake`](crate::protocol::ServerHandshake) and
//! [`Lifecycle`](crate::protocol::Lifecycle)).

use super::http::{HttpError, Limits};
use super::server::Rejection;

/// The head buffer's first size: a typical upgrade request fits in it.
const FIRST: usize = 1024;

/// Why a head could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// The bytes are not an HTTP head (or break one of the limits on lines
    /// and header counts).
    Parse(HttpError),
    /// The head is longer than [`Limits::max_head`].
    TooLarge,
}

impl HeadError {
    /// The response a server sends for a request head that failed so:
    /// `431 Request Header Fields Too Large` for one too large, and the
    /// status the parse error calls for (400, 431, 505…) otherwise.
    pub fn response(&self) -> Vec<u8> {
        match self {
            HeadError::Parse(e) => Rejection::from_http_error(e).to_bytes(),
            HeadError::TooLarge => Rejection::new(431).to_bytes(),
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Parse(e) => write!(f, "{e}"),
            HeadError::TooLarge => f.write_str("the head is too large"),
        }
    }
}

/// A head being read: the bytes so far, in a buffer that grows only with
/// bytes that arrived (doubling from 1 KiB), never past
/// [`Limits::max_head`] plus one byte, whatever the peer sends.
///
/// ```
/// use rfc6455::handshake::http::{parse_request, Limits};
/// use rfc6455::handshake::HeadReader;
///
/// let mut head = HeadReader::new(Limits::default());
/// let wire = b"GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n\x81\x80";
/// // An event loop reads straight into the reader's buffer...
/// let space = head.space();
/// space[..wire.len()].copy_from_slice(wire);
/// let request = head.filled(wire.len(), parse_request).unwrap().unwrap();
/// assert_eq!(request.target, "/chat");
/// // ... and what came after the head is the peer's first frame.
/// assert_eq!(head.take_leftover(), b"\x81\x80");
/// ```
#[derive(Debug)]
pub struct HeadReader {
    buf: Vec<u8>,
    filled: usize,
    /// Where the line being received starts (just after the last LF).
    line_start: usize,
    /// The head's length, once it is complete.
    used: Option<usize>,
    limits: Limits,
}

/// A head parser: `parse_request` or `parse_response` (or a proxy's).
pub type HeadParser<T> = fn(&[u8], &Limits) -> Result<Option<(T, usize)>, HttpError>;

impl HeadReader {
    /// A reader for a head within `limits`.
    pub fn new(limits: Limits) -> HeadReader {
        HeadReader {
            buf: Vec::new(),
            filled: 0,
            line_start: 0,
            used: None,
            limits,
        }
    }

    /// Space for the next bytes: read into it, then call
    /// [`filled`](HeadReader::filled). Empty once the head is complete.
    pub fn space(&mut self) -> &mut [u8] {
        if self.used.is_some() {
            return &mut [];
        }
        if self.filled == self.buf.len() {
            let cap = self.limits.max_head.saturating_add(1);
            // (Not `clamp`: a cap below the first size is a smaller buffer.)
            let grown = (self.buf.len() * 2).max(FIRST).min(cap);
            // Zero-filled: safe code lends no uninitialised memory.
            self.buf.resize(grown, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Takes in `n` bytes written at the start of [`space`](HeadReader::space):
    /// the head, once they complete it (`parse` says where it ends); `None`
    /// while more is to come. The bytes after the head are kept for
    /// [`take_leftover`](HeadReader::take_leftover).
    ///
    /// A head is parsed again only when a line of it completes (or a line
    /// grows past the line limit), so a peer that sends its head a byte at
    /// a time costs a parse per line, not per byte.
    pub fn filled<T>(&mut self, n: usize, parse: HeadParser<T>) -> Result<Option<T>, HeadError> {
        if self.used.is_some() {
            return Ok(None);
        }
        let before = self.filled;
        self.filled = (before + n).min(self.buf.len());
        let new = &self.buf[before..self.filled];
        if let Some(lf) = new.iter().rposition(|&b| b == b'\n') {
            self.line_start = before + lf + 1;
        } else if self.filled - self.line_start <= self.limits.max_line
            && self.filled <= self.limits.max_head
        {
            // No line completed and none too long: nothing new to parse.
            return Ok(None);
        }
        match parse(&self.buf[..self.filled], &self.limits) {
            Ok(Some((head, used))) => {
                self.used = Some(used);
                Ok(Some(head))
            }
            Ok(None) if self.filled > self.limits.max_head => Err(HeadError::TooLarge),
            Ok(None) => Ok(None),
            // The parser sees the cap too: one name for one failure.
            Err(HttpError::HeadTooLarge) => Err(HeadError::TooLarge),
            Err(e) => Err(HeadError::Parse(e)),
        }
    }

    /// Copies bytes from `data` (for a driver with a buffer of its own) and
    /// parses as [`filled`](HeadReader::filled) does. Returns how many bytes
    /// it took: all of `data` while the head is incomplete, the rest are
    /// the caller's (or, when they fit, kept as leftover).
    pub fn receive_data<T>(
        &mut self,
        data: &[u8],
        parse: HeadParser<T>,
    ) -> Result<(usize, Option<T>), HeadError> {
        let mut taken = 0;
        while taken < data.len() {
            let space = self.space();
            if space.is_empty() {
                break;
            }
            let n = space.len().min(data.len() - taken);
            space[..n].copy_from_slice(&data[taken..taken + n]);
            taken += n;
            if let Some(head) = self.filled(n, parse)? {
                return Ok((taken, Some(head)));
            }
        }
        Ok((taken, None))
    }

    /// Whether the head is complete.
    pub fn is_complete(&self) -> bool {
        self.used.is_some()
    }

    /// Bytes taken in so far.
    pub fn buffered(&self) -> usize {
        self.filled
    }

    /// The bytes that came after the complete head (the peer's first
    /// frames), in the head's own buffer so that a driver can read on into
    /// it: it is not allocated again.
    pub fn take_leftover(&mut self) -> Vec<u8> {
        let Some(used) = self.used else {
            return Vec::new();
        };
        let mut buf = std::mem::take(&mut self.buf);
        buf.truncate(self.filled);
        buf.drain(..used);
        self.filled = 0;
        self.used = Some(0);
        buf
    }
}

/// A head being read, as a blocking or event-driven loop sees it: space to
/// read into, and what the bytes read into it complete. The server's and
/// the client's handshakes are ones, and so is a [`HeadReader`] with its
/// parser.
pub trait ReadsHead {
    /// What a complete head is.
    type Head;
    /// Why the bytes are refused.
    type Error;
    /// Space for the next bytes.
    fn space(&mut self) -> &mut [u8];
    /// Takes in `n` bytes written into [`space`](ReadsHead::space).
    fn filled(&mut self, n: usize) -> Result<Option<Self::Head>, Self::Error>;
}

impl<T> ReadsHead for (HeadReader, HeadParser<T>) {
    type Head = T;
    type Error = HeadError;
    fn space(&mut self) -> &mut [u8] {
        self.0.space()
    }
    fn filled(&mut self, n: usize) -> Result<Option<T>, HeadError> {
        self.0.filled(n, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::http::parse_request;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";

    #[test]
    fn a_head_sent_a_byte_at_a_time_is_read() {
        let mut head = HeadReader::new(Limits::default());
        for (i, byte) in REQUEST.iter().enumerate() {
            head.space()[0] = *byte;
            let got = head.filled(1, parse_request).unwrap();
            assert_eq!(got.is_some(), i == REQUEST.len() - 1);
        }
        assert!(head.take_leftover().is_empty());
    }

    #[test]
    fn a_head_over_the_cap_is_too_large_and_costs_the_cap() {
        let limits = Limits {
            max_head: 4096,
            ..Limits::default()
        };
        let mut head = HeadReader::new(limits);
        // Fewer lines than the header cap, more bytes than the head cap.
        let mut line = b"X-Filler: ".to_vec();
        line.resize(500, b'x');
        line.extend_from_slice(b"\r\n");
        let mut sent = b"GET / HTTP/1.1\r\n".to_vec();
        while sent.len() < 10_000 {
            sent.extend_from_slice(&line);
        }
        let result = head.receive_data(&sent, parse_request);
        assert_eq!(result.unwrap_err(), HeadError::TooLarge);
        assert!(head.buffered() <= 4097);
    }

    #[test]
    fn a_head_cap_below_the_first_buffer_size_bounds_the_buffer() {
        // Found by the lifecycle fuzz target: `clamp(1 KiB, cap)` panicked
        // for a cap under 1 KiB.
        let limits = Limits::default().max_head(100);
        let mut head = HeadReader::new(limits);
        assert_eq!(head.space().len(), 101);
        let result = head.receive_data(&[b'a'; 300], parse_request);
        assert!(result.is_err());
        assert!(head.buffered() <= 101);
    }

    #[test]
    fn a_line_too_long_is_refused_before_it_ends() {
        let mut head = HeadReader::new(Limits::default());
        let mut sent = b"GET /".to_vec();
        sent.resize(9000, b'a');
        let result = head.receive_data(&sent, parse_request);
        assert_eq!(
            result.unwrap_err(),
            HeadError::Parse(HttpError::LineTooLong)
        );
    }

    #[test]
    fn bytes_after_the_head_are_leftover() {
        let mut head = HeadReader::new(Limits::default());
        let mut sent = REQUEST.to_vec();
        sent.extend_from_slice(b"frames");
        let (taken, got) = head.receive_data(&sent, parse_request).unwrap();
        assert_eq!(taken, sent.len());
        assert!(got.is_some());
        assert_eq!(head.take_leftover(), b"frames");
    }
}
