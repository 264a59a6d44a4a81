//! Errors, nested by cause: the peer broke the protocol ([`ProtocolError`]),
//! the opening handshake failed ([`HandshakeError`]), the server refused the
//! upgrade with an HTTP status ([`Refusal`]), the transport failed
//! (`Io`), a timer ran out ([`Timeout`]), or the caller asked for something
//! impossible ([`SendError`]).

use crate::escape;
pub use crate::frame::ProtocolError;
use crate::handshake::{HandshakeError, Response};
use std::{fmt, io};

/// Every error this crate returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (including read and write timeouts).
    Io(io::Error),
    /// The peer broke the protocol; the connection was failed with
    /// [`ProtocolError::close_code`].
    Protocol(ProtocolError),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// The server answered the opening handshake with an HTTP status other
    /// than 101 (RFC 6455 §4.1): a refusal (403, 404, 429, 503…), with its
    /// headers (`Retry-After`) and the start of the body, which often says
    /// why. See [`Refusal`].
    Refused(Box<Refusal>),
    /// The close handshake finished (or the peer closed TCP after one); there
    /// is nothing more to read. Not a failure.
    ConnectionClosed,
    /// The connection was used after it closed or failed: a read after
    /// `ConnectionClosed` or a failure, or a message sent after a close frame
    /// was sent.
    AlreadyClosed,
    /// The caller asked for something RFC 6455 forbids sending, such as a
    /// control payload over 125 bytes or close code 1005; nothing was sent.
    InvalidSend(SendError),
    /// A timer of the connection ran out (see [`Timeout`]); the connection
    /// was closed with the code the timer calls for.
    Timeout(Timeout),
    /// A `ws://` URL could not be used.
    Url(String),
    /// `wss://` URLs need TLS: build the crate with the `tls` feature.
    TlsNotSupported,
    /// The server is at its connection cap (the peer was answered with 503).
    TooManyConnections,
    // --- TLS and proxies (issue 12) ---
    /// The TLS handshake failed: what was wrong (see [`TlsError`]).
    Tls(TlsError),
    /// The HTTP proxy could not be used or refused the tunnel (see
    /// [`ProxyError`]).
    Proxy(ProxyError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e} (close code {})", e.close_code()),
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::Refused(r) => write!(f, "{r}"),
            Error::ConnectionClosed => f.write_str("connection closed"),
            Error::AlreadyClosed => f.write_str("connection already closed"),
            Error::InvalidSend(why) => write!(f, "cannot send: {why}"),
            Error::Timeout(t) => write!(f, "{t}"),
            Error::Url(why) => write!(f, "invalid URL: {why}"),
            Error::TlsNotSupported => f.write_str(
                "wss:// (TLS) needs the crate's `tls` feature; use ws:// or build with --features tls",
            ),
            Error::TooManyConnections => f.write_str("too many connections"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Proxy(e) => write!(f, "proxy: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Tls(e) => e.source.as_deref().map(|e| e as _),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Error {
        Error::Protocol(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Error {
        Error::Handshake(e)
    }
}

/// What the caller asked to send that RFC 6455 forbids. Nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// §5.5: a control frame payload over 125 bytes.
    ControlFrameTooBig,
    /// §5.5: control frames cannot be fragmented (`fin` must be true).
    FragmentedControlFrame,
    /// §5.4: a continuation frame with no fragmented message in progress.
    NoMessageToContinue,
    /// §5.4: a new text or binary frame while a fragmented message is in
    /// progress (send continuation frames until one has `fin`).
    MessageInProgress,
    /// §5.5.1: a close frame body that is not empty or a valid code plus a
    /// UTF-8 reason.
    InvalidClosePayload,
    /// §7.4: a close code that may not be sent (1005, 1006, 1015, or one
    /// outside the ranges allowed on the wire).
    CloseCodeNotAllowed,
    /// §5.5: a close reason longer than 123 bytes.
    CloseReasonTooLong,
    /// A message sent as a stream must be text or binary.
    NotADataOpcode,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::ControlFrameTooBig => "control frame payload over 125 bytes",
            SendError::FragmentedControlFrame => "control frames cannot be fragmented",
            SendError::NoMessageToContinue => "continuation without a fragmented message",
            SendError::MessageInProgress => {
                "a fragmented message is in progress; send continuation frames"
            }
            SendError::InvalidClosePayload => "invalid close frame payload",
            SendError::CloseCodeNotAllowed => "close code not allowed on the wire",
            SendError::CloseReasonTooLong => "close reason longer than 123 bytes",
            SendError::NotADataOpcode => "only text and binary messages can be streamed",
        })
    }
}

/// Which of a connection's timers ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// No pong came within the keepalive timeout after a ping; the
    /// connection was closed with 1011.
    Keepalive,
    /// The peer was silent for the idle timeout; the connection was closed
    /// with 1001.
    Idle,
    /// The peer did not answer our close frame within the close timeout.
    Close,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Timeout::Keepalive => "keepalive ping timeout",
            Timeout::Idle => "idle timeout",
            Timeout::Close => "no close reply from the peer",
        })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a TLS connection could not be set up: the kind of failure, and the
/// TLS library's own words.
#[derive(Debug)]
pub struct TlsError {
    /// What failed.
    pub kind: TlsErrorKind,
    /// A description naming what failed.
    pub message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TlsError {
    /// A TLS error of `kind`, with the underlying error as its source.
    pub fn new(
        kind: TlsErrorKind,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> TlsError {
        TlsError {
            kind,
            message: message.into(),
            source,
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// The kinds of [`TlsError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The peer's certificate is not signed by a trusted authority.
    UnknownIssuer,
    /// The peer's certificate has expired (or is not valid yet).
    Expired,
    /// The server's certificate is not valid for the host name we asked for.
    NameMismatch,
    /// The peer's certificate was refused for another reason.
    BadCertificate,
    /// The server requires a client certificate and we sent none (or the
    /// client sent none to a server that requires one).
    CertificateRequired,
    /// The peer aborted the handshake with an alert (it refused us).
    AlertReceived,
    /// The peer does not speak TLS (plaintext HTTP on a TLS port, say).
    NotTls,
    /// The handshake did not complete in time.
    Timeout,
    /// The peer closed the connection during the handshake.
    Closed,
    /// Another handshake failure (incompatible versions or ciphers, a
    /// malformed message).
    Handshake,
    /// Certificates, keys or settings could not be loaded.
    Config,
}

/// Why an HTTP proxy could not open a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// The proxy's status code when it answered with a refusal (407: it
    /// wants credentials; 403: not allowed; 502: it could not reach the
    /// host), `None` for other failures (a malformed proxy URL or reply).
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProxyError {}

/// The server's answer to an opening handshake it did not accept: an HTTP
/// status other than 101 (RFC 6455 §4.1: "If the status code received from
/// the server is not 101, the client handles the response per HTTP
/// procedures").
///
/// Its [`Display`](fmt::Display) names the status and quotes a plain-text
/// body (escaped, at most 200 characters), which is where servers say what
/// to do instead:
///
/// ```
/// use rfc6455::Refusal;
/// use rfc6455::handshake::{parse_response, Limits};
///
/// let head = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n";
/// let (response, _) = parse_response(head, &Limits::default()).unwrap().unwrap();
/// let refusal = Refusal::new(response, b"This port speaks TLS: use https:// or wss://\n".to_vec());
/// assert_eq!(
///     refusal.to_string(),
///     "the server refused the WebSocket upgrade with 400 Bad Request: \
///      This port speaks TLS: use https:// or wss://"
/// );
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Refusal {
    /// The status line and headers.
    pub response: Response,
    /// The start of the body: at most [`Refusal::MAX_BODY`] bytes, and only
    /// what arrived within the handshake timeout.
    pub body: Vec<u8>,
}

impl Refusal {
    /// The most of a refusal's body the client keeps.
    pub const MAX_BODY: usize = 4096;

    /// A refusal with this response and (the start of) its body.
    pub fn new(response: Response, body: Vec<u8>) -> Refusal {
        Refusal { response, body }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// The body as text, when the server sent one meant for people: a
    /// `text/plain` body (or one with no `Content-Type`), or JSON; not HTML
    /// or binary. Invalid UTF-8 is replaced with U+FFFD.
    pub fn body_text(&self) -> Option<String> {
        let kind = self.response.headers.get("content-type").unwrap_or("");
        let kind = kind.split(';').next().unwrap_or("").trim();
        let readable = kind.is_empty()
            || kind.eq_ignore_ascii_case("text/plain")
            || kind.eq_ignore_ascii_case("application/json");
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        (readable && !text.is_empty()).then(|| text.to_owned())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 200;
        let r = &self.response;
        write!(
            f,
            "the server refused the WebSocket upgrade with {}",
            r.status
        )?;
        if !r.reason.is_empty() {
            write!(f, " {}", escape::for_display(&r.reason))?;
        }
        if let Some(text) = self.body_text() {
            // One line, whatever the body's layout.
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let cut = text
                .char_indices()
                .nth(SHOWN)
                .map_or(text.len(), |(i, _)| i);
            let more = if cut < text.len() { "…" } else { "" };
            write!(f, ": {}{more}", escape::for_display(&text[..cut]))?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}
