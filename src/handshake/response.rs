//! HTTP answers a server writes itself: a [`Rejection`] (an error status with
//! the headers it calls for), a plain response beside WebSockets
//! ([`http_response`]), and the head only for `HEAD` ([`response_for`]).
//! Every header line is checked, so no caller can inject headers or split a
//! response.

use super::http::{is_valid_header, reason_phrase, Request};
use super::{HandshakeError, HttpError};
use std::fmt;

/// An HTTP error answer to a request that cannot be upgraded (or that the
/// server refuses for its own reasons, such as `503` when full).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status code.
    pub status: u16,
    /// What was wrong with the request, if it was the request; the body names
    /// it.
    pub error: Option<HandshakeError>,
    /// Headers the status calls for: `Allow: GET` for `405`, and for `426`
    /// `Upgrade: websocket` (RFC 7231 §6.5.15: "The server MUST send an
    /// Upgrade header field in a 426 response") and `Sec-WebSocket-Version:
    /// 13` (RFC 6455 §4.2.2). [`Rejection::to_bytes`] adds `Content-Type`,
    /// `Content-Length` and `Connection`.
    pub headers: Vec<(String, String)>,
}

impl Rejection {
    /// A rejection with `status`, its status-specific headers and no
    /// [`HandshakeError`]: the body is the status line's text.
    ///
    /// ```
    /// use rfc6455::handshake::Rejection;
    /// let bytes = Rejection::new(503).to_bytes();
    /// assert!(bytes.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"));
    /// assert!(bytes.ends_with(b"\r\n\r\n503 Service Unavailable\n"));
    /// ```
    pub fn new(status: u16) -> Rejection {
        let mut headers = Vec::new();
        match status {
            405 => headers.push(("Allow".to_owned(), "GET".to_owned())),
            426 => {
                headers.push(("Upgrade".to_owned(), "websocket".to_owned()));
                headers.push(("Sec-WebSocket-Version".to_owned(), "13".to_owned()));
            }
            _ => {}
        }
        Rejection {
            status,
            error: None,
            headers,
        }
    }

    /// The answer to `error`: the status its documentation names (`400`
    /// unless stated otherwise) with its headers, the error in the body.
    pub fn from_error(error: HandshakeError) -> Rejection {
        let status = match &error {
            HandshakeError::Http(e) => e.status(),
            HandshakeError::UnsupportedHttpVersion => 505,
            HandshakeError::MethodNotGet => 405,
            HandshakeError::NotUpgrade | HandshakeError::UnsupportedWebSocketVersion => 426,
            HandshakeError::OriginRejected => 403,
            HandshakeError::InvalidHeader | HandshakeError::Random(_) => 500,
            _ => 400,
        };
        Rejection {
            error: Some(error),
            ..Rejection::new(status)
        }
    }

    /// The answer to a malformed or oversized head: `431` for the size caps,
    /// `400` otherwise.
    ///
    /// ```
    /// use rfc6455::handshake::{HttpError, Rejection};
    /// assert_eq!(Rejection::from_http_error(&HttpError::HeadTooLarge).status, 431);
    /// ```
    pub fn from_http_error(error: &HttpError) -> Rejection {
        Rejection::from_error(HandshakeError::Http(*error))
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Rejection {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The complete HTTP/1.1 response: status line, [`Rejection::headers`],
    /// `Content-Type: text/plain`, `Content-Length`, `Connection: close`
    /// (`Connection: Upgrade, close` with `426`, as RFC 7230 §6.7 asks of a
    /// sender of `Upgrade`), and a one-line body naming the problem. The
    /// caller sends it and closes the connection.
    ///
    /// ```
    /// use rfc6455::handshake::{HandshakeError, Rejection};
    /// let bytes = Rejection::from_error(HandshakeError::MethodNotGet).to_bytes();
    /// let text = String::from_utf8(bytes).unwrap();
    /// assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n"));
    /// assert!(text.contains("\r\nConnection: close\r\n"));
    /// assert!(text.ends_with("\r\n\r\nthe method must be GET\n"));
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = match &self.error {
            Some(e) => format!("{e}\n"),
            None => format!("{} {}\n", self.status, reason_phrase(self.status)),
        };
        let headers = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain([("Content-Type", "text/plain; charset=utf-8")]);
        let connection = if self.status == 426 {
            "Upgrade, close"
        } else {
            "close"
        };
        write_response(self.status, headers, body.as_bytes(), connection)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, reason_phrase(self.status))?;
        match &self.error {
            Some(e) => write!(f, ": {e}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.as_ref().map(|e| e as _)
    }
}

impl From<HandshakeError> for Rejection {
    fn from(error: HandshakeError) -> Rejection {
        Rejection::from_error(error)
    }
}

pub(super) fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A complete HTTP/1.1 response with `status`, `headers`, and `body`, for
/// plain HTTP beside WebSockets.
///
/// `Content-Length` and `Connection: close` are added (the connection is
/// meant to be closed after it); any given `Content-Length`,
/// `Transfer-Encoding` or `Connection` is left out, so the framing cannot be
/// contradicted. A header with a name that is not a token or a value holding
/// CR, LF or another control character is left out too, so a caller cannot
/// inject headers or split the response. `1xx`, `204` and `304` responses
/// get neither `Content-Length` nor a body (RFC 7230 §3.3). A status outside
/// `100..=999` is sent as `500`.
///
/// ```
/// let bytes = rfc6455::handshake::http_response(
///     200,
///     &[("Content-Type", "text/html"), ("X-Bad", "a\r\nSet-Cookie: x")],
///     b"<p>hi</p>",
/// );
/// assert_eq!(
///     bytes,
///     b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\
///       Connection: close\r\n\r\n<p>hi</p>"
/// );
/// ```
pub fn http_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    write_response(status, headers.iter().copied(), body, "close")
}

/// The bytes to send for `response` (a whole response as [`http_response`],
/// [`Rejection::to_bytes`] or [`accept`](super::accept) wrote it) as the answer to
/// `request`: for `HEAD`, only its head. RFC 9110 §9.3.2: "the server MUST
/// NOT send content in the response"; the head keeps the `Content-Length`
/// the content would have had, as §8.6 allows ("the decimal number of
/// octets that would have been sent in the content of a response if the
/// same request had used the GET method").
///
/// ```
/// use rfc6455::handshake::{http_response, parse_request, response_for, Limits};
/// let head = b"HEAD /health HTTP/1.1\r\nHost: h\r\n\r\n";
/// let (request, _) = parse_request(head, &Limits::default()).unwrap().unwrap();
/// let bytes = response_for(&request, http_response(200, &[], b"ok\n"));
/// assert_eq!(bytes, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n");
/// ```
pub fn response_for(request: &Request, response: Vec<u8>) -> Vec<u8> {
    if request.is_head() {
        head_only(response)
    } else {
        response
    }
}

/// The head of a whole response: what a `HEAD` request gets of it.
pub(crate) fn head_only(mut response: Vec<u8>) -> Vec<u8> {
    // The writers here never put CR or LF inside a header line, so the
    // first empty line ends the head.
    if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
        response.truncate(end + 4);
    }
    response
}

pub(super) fn write_response<'a>(
    status: u16,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: &[u8],
    connection: &str,
) -> Vec<u8> {
    let status = if (100..=999).contains(&status) {
        status
    } else {
        500
    };
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    for (name, value) in headers {
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        if is_valid_header(name, value) && !framing {
            push_header(&mut out, name, value);
        }
    }
    if !bodiless {
        push_header(&mut out, "Content-Length", &body.len().to_string());
    }
    push_header(&mut out, "Connection", connection);
    out.extend_from_slice(b"\r\n");
    if !bodiless {
        out.extend_from_slice(body);
    }
    out
}
