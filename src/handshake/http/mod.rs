//! A bounded HTTP/1.x head parser (RFC 7230 §3), just enough for the opening
//! handshake: a request line or status line, header fields, and the empty
//! line that ends the head. Bodies are not read.
//!
//! Like `httparse`, incomplete input is not an error: the parsers return
//! `Ok(None)` until the whole head has arrived, and
//! `Ok(Some((head, n)))` once it has, where `n` counts the head's bytes up to
//! and including the final CRLF CRLF. Bytes after `n` belong to whatever the
//! peer sends next (after a WebSocket handshake: its first frames) and must
//! be kept by the caller.
//!
//! Every call does O(len) work, checks the caps in [`Limits`] on partial
//! input as well as on complete heads (so a caller that buffers until the
//! head is complete holds at most [`Limits::max_head`] bytes plus one read),
//! and allocates only for what has arrived, never for anything the peer
//! declares.
//!
//! Strictness, chosen because a WebSocket peer is a program, not a person at
//! a terminal, and every real client and server sends well-formed heads:
//! - lines end in CRLF; a bare LF or a bare CR is an error (RFC 7230 §3.5
//!   allows, but does not require, accepting a bare LF);
//! - no empty lines before the start line;
//! - single spaces between the parts of the start line;
//! - obsolete line folding (RFC 7230 §3.2.4: a line starting with a space or
//!   tab) is rejected, as is whitespace between a field name and its colon;
//! - field names must be tokens; field values must not hold control
//!   characters other than horizontal tab.

mod syntax;

use std::fmt;
use syntax::{is_ows_char, parse_head, parse_request_line, parse_status_line};
pub(crate) use syntax::{is_tchar, is_token, is_valid_header};

/// Size caps for one HTTP head.
///
/// The defaults are those of widely deployed servers: nginx and Apache
/// refuse request lines and header lines over 8 KiB, and Node.js refuses
/// heads over 16 KiB. A browser's handshake is well under 2 KiB even with
/// cookies, so the defaults leave room for large `Cookie` or
/// `Authorization` headers while bounding what a peer can make a connection
/// buffer before it is refused with `431`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest line (request line, status line or one header line), not
    /// counting its CRLF. Default 8 KiB.
    pub max_line: usize,
    /// Longest head, including every CRLF and the final empty line. Default
    /// 16 KiB.
    pub max_head: usize,
    /// Most header fields (each line counts, repeated names included).
    /// Default 64.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 8 * 1024,
            max_head: 16 * 1024,
            max_headers: 64,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_line`].
    pub fn max_line(mut self, bytes: usize) -> Limits {
        self.max_line = bytes;
        self
    }

    /// Sets [`Limits::max_head`].
    pub fn max_head(mut self, bytes: usize) -> Limits {
        self.max_head = bytes;
        self
    }

    /// Sets [`Limits::max_headers`].
    pub fn max_headers(mut self, count: usize) -> Limits {
        self.max_headers = count;
        self
    }
}

/// Why a head was refused. Each variant is one rule; [`HttpError::status`]
/// gives the status a server answers it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// A line is longer than [`Limits::max_line`] (detected as soon as that
    /// many bytes arrive without a line end).
    LineTooLong,
    /// The head is longer than [`Limits::max_head`] (detected as soon as that
    /// many bytes arrive without the end of the head).
    HeadTooLarge,
    /// More than [`Limits::max_headers`] header lines.
    TooManyHeaders,
    /// A line ended in LF without CR before it (RFC 7230 §3: lines end in
    /// CRLF).
    BareLf,
    /// A CR not followed by LF.
    BareCr,
    /// The request line is not `method SP request-target SP HTTP-version`
    /// with a token method and a visible-ASCII target (RFC 7230 §3.1.1).
    MalformedRequestLine,
    /// The status line is not `HTTP-version SP 3DIGIT [SP reason-phrase]`
    /// (RFC 7230 §3.1.2).
    MalformedStatusLine,
    /// The version is not `HTTP/` DIGIT `.` DIGIT (RFC 7230 §2.6).
    MalformedVersion,
    /// RFC 7230 §3.2.4: obsolete line folding (a header line starting with a
    /// space or tab) is rejected.
    ObsFold,
    /// A header line has no colon.
    MissingColon,
    /// A field name is empty or not a token, or is followed by whitespace
    /// before its colon (RFC 7230 §3.2.4: "A server MUST reject any received
    /// request message that contains whitespace between a header field-name
    /// and colon").
    InvalidHeaderName,
    /// A field value holds a control character other than horizontal tab.
    InvalidHeaderValue,
}

impl HttpError {
    /// The status a server answers with: `431 Request Header Fields Too
    /// Large` for the size caps (RFC 6585 §5), `400 Bad Request` otherwise.
    ///
    /// ```
    /// use rfc6455::handshake::HttpError;
    /// assert_eq!(HttpError::TooManyHeaders.status(), 431);
    /// assert_eq!(HttpError::BareLf.status(), 400);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            HttpError::LineTooLong | HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            _ => 400,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::LineTooLong => "line too long",
            HttpError::HeadTooLarge => "head too large",
            HttpError::TooManyHeaders => "too many header fields",
            HttpError::BareLf => "line ends in LF without CR",
            HttpError::BareCr => "CR not followed by LF",
            HttpError::MalformedRequestLine => "malformed request line",
            HttpError::MalformedStatusLine => "malformed status line",
            HttpError::MalformedVersion => "malformed HTTP version",
            HttpError::ObsFold => "obsolete line folding",
            HttpError::MissingColon => "header line without a colon",
            HttpError::InvalidHeaderName => "invalid header name",
            HttpError::InvalidHeaderValue => "invalid header value",
        })
    }
}

impl std::error::Error for HttpError {}

/// An HTTP version from a request or status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
    /// Any other `HTTP/x.y`, such as `HTTP/2.0` (a server answers `505`) or
    /// `HTTP/1.2` (to be treated as HTTP/1.1, RFC 7230 §2.6).
    Other {
        /// The major version digit.
        major: u8,
        /// The minor version digit.
        minor: u8,
    },
}

impl Version {
    fn new(major: u8, minor: u8) -> Version {
        match (major, minor) {
            (1, 0) => Version::Http10,
            (1, 1) => Version::Http11,
            (major, minor) => Version::Other { major, minor },
        }
    }

    /// The major version.
    pub fn major(self) -> u8 {
        match self {
            Version::Http10 | Version::Http11 => 1,
            Version::Other { major, .. } => major,
        }
    }

    /// The minor version.
    pub fn minor(self) -> u8 {
        match self {
            Version::Http10 => 0,
            Version::Http11 => 1,
            Version::Other { minor, .. } => minor,
        }
    }

    /// Whether this is HTTP/1.1 or a later HTTP/1.x, which RFC 7230 §2.6
    /// says to treat as HTTP/1.1: the versions a WebSocket handshake can use.
    pub fn is_http11_or_later_1x(self) -> bool {
        self.major() == 1 && self.minor() >= 1
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/{}.{}", self.major(), self.minor())
    }
}

/// Header fields in the order received. Names keep their case; lookups
/// ignore it (RFC 7230 §3.2: "Each header field consists of a
/// case-insensitive field name"). Values are stored without leading or
/// trailing spaces and tabs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub(super) fields: Vec<(String, String)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Appends a field. Unlike the parsers, this does not validate: it is
    /// meant for building a [`Request`] from another HTTP stack's parse.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push((name.into(), value.into()));
    }

    /// The value of the first field named `name` (any case).
    ///
    /// ```
    /// let (req, _) = rfc6455::handshake::parse_request(
    ///     b"GET / HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n",
    ///     &Default::default(),
    /// ).unwrap().unwrap();
    /// assert_eq!(req.headers.get("Host"), Some("a"));
    /// assert_eq!(req.headers.get_all("host").collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// The values of every field named `name` (any case), in order.
    pub fn get_all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The elements of the comma-separated lists in every field named `name`,
    /// trimmed of spaces and tabs, empty elements skipped (RFC 7230 §7:
    /// repeated list fields are one list).
    pub fn tokens<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .map(|t| t.trim_matches(is_ows_char))
            .filter(|t| !t.is_empty())
    }

    /// Whether `token` (any case) is an element of the lists in the fields
    /// named `name`.
    ///
    /// ```
    /// let (req, _) = rfc6455::handshake::parse_request(
    ///     b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n\r\n",
    ///     &Default::default(),
    /// ).unwrap().unwrap();
    /// assert!(req.headers.has_token("connection", "upgrade"));
    /// assert!(!req.headers.has_token("connection", "close"));
    /// ```
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// Every field as `(name, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, such as `GET` (case-sensitive, RFC 7230 §3.1.1).
    pub method: String,
    /// The request target as sent, such as `/chat?room=1`.
    pub target: String,
    /// The version from the request line.
    pub version: Version,
    /// The header fields.
    pub headers: Headers,
}

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The version from the status line.
    pub version: Version,
    /// The status code.
    pub status: u16,
    /// The reason phrase (possibly empty; bytes that are not UTF-8 are
    /// replaced with U+FFFD).
    pub reason: String,
    /// The header fields.
    pub headers: Headers,
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: the head is incomplete, read more. `Ok(Some((request, n)))`:
/// the head is the first `n` bytes; the rest of `buf` is the peer's next
/// data. `Err`: the head is malformed or over a cap; answer with
/// [`HttpError::status`].
///
/// ```
/// use rfc6455::handshake::{parse_request, Limits};
///
/// let buf = b"GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n\x81\x80";
/// assert_eq!(parse_request(&buf[..20], &Limits::default()), Ok(None));
/// let (req, n) = parse_request(buf, &Limits::default()).unwrap().unwrap();
/// assert_eq!((req.method.as_str(), req.target.as_str()), ("GET", "/chat"));
/// assert_eq!(&buf[n..], b"\x81\x80"); // a frame that came with the head
/// ```
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, HttpError> {
    let parsed = parse_head(buf, limits, parse_request_line)?;
    Ok(parsed.map(|((method, target, version), headers, n)| {
        let request = Request {
            // Both were checked to be ASCII.
            method: String::from_utf8_lossy(method).into_owned(),
            target: String::from_utf8_lossy(target).into_owned(),
            version,
            headers,
        };
        (request, n)
    }))
}

/// Parses a response head from the start of `buf`; the same contract as
/// [`parse_request`].
///
/// ```
/// use rfc6455::handshake::{parse_response, Limits};
///
/// let buf = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
/// let (resp, n) = parse_response(buf, &Limits::default()).unwrap().unwrap();
/// assert_eq!((resp.status, n), (101, buf.len()));
/// assert_eq!(resp.headers.get("upgrade"), Some("websocket"));
/// ```
pub fn parse_response(buf: &[u8], limits: &Limits) -> Result<Option<(Response, usize)>, HttpError> {
    let parsed = parse_head(buf, limits, parse_status_line)?;
    Ok(parsed.map(|((version, status, reason), headers, n)| {
        let response = Response {
            version,
            status,
            reason: String::from_utf8_lossy(reason).into_owned(),
            headers,
        };
        (response, n)
    }))
}

/// The reason phrase for the status codes this crate and its users commonly
/// send; `""` for others (RFC 7230 §3.1.2 allows an empty reason phrase).
///
/// ```
/// assert_eq!(rfc6455::handshake::reason_phrase(426), "Upgrade Required");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    fn req(buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        parse_request(buf, &Limits::default())
    }

    fn resp(buf: &[u8]) -> Result<Option<(Response, usize)>, HttpError> {
        parse_response(buf, &Limits::default())
    }

    fn full_req(buf: &[u8]) -> Request {
        req(buf).unwrap().unwrap().0
    }

    #[test]
    fn parses_the_rfc_6455_sample_request() {
        let (r, n) = req(REQUEST).unwrap().unwrap();
        assert_eq!(n, REQUEST.len());
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/chat?room=1");
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.headers.len(), 7);
        assert_eq!(r.headers.get("host"), Some("server.example.com"));
        assert_eq!(
            r.headers
                .tokens("sec-websocket-protocol")
                .collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
    }

    #[test]
    fn parses_a_response() {
        let (r, n) = resp(RESPONSE).unwrap().unwrap();
        assert_eq!(n, RESPONSE.len());
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.status, 101);
        assert_eq!(r.reason, "Switching Protocols");
        assert_eq!(
            r.headers.get("SEC-WEBSOCKET-ACCEPT"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn bytes_after_the_head_are_left_for_the_caller() {
        // A masked text frame "Hi" sent right behind the request.
        let frame = [0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
        let mut buf = REQUEST.to_vec();
        buf.extend_from_slice(&frame);
        let (_, n) = req(&buf).unwrap().unwrap();
        assert_eq!(&buf[n..], frame);

        let mut buf = RESPONSE.to_vec();
        buf.extend_from_slice(b"\x81\x02Hi");
        let (_, n) = resp(&buf).unwrap().unwrap();
        assert_eq!(&buf[n..], b"\x81\x02Hi");
    }

    #[test]
    fn bytes_after_the_head_do_not_count_toward_max_head() {
        let limits = Limits::default().max_head(REQUEST.len());
        let mut buf = REQUEST.to_vec();
        buf.extend_from_slice(&[0u8; 100]);
        let (_, n) = parse_request(&buf, &limits).unwrap().unwrap();
        assert_eq!(n, REQUEST.len());
    }

    #[test]
    fn incomplete_input_at_every_split_point_is_not_an_error() {
        for end in 0..REQUEST.len() {
            assert_eq!(req(&REQUEST[..end]), Ok(None), "request prefix of {end}");
        }
        for end in 0..RESPONSE.len() {
            assert_eq!(resp(&RESPONSE[..end]), Ok(None), "response prefix of {end}");
        }
    }

    #[test]
    fn line_over_max_line_fails_before_its_crlf_arrives() {
        let limits = Limits::default().max_line(32);
        let mut line = b"GET /".to_vec();
        line.resize(32, b'a');
        // Exactly max_line bytes, then a CR: still possibly fine.
        assert_eq!(parse_request(&line, &limits), Ok(None));
        line.push(b'\r');
        assert_eq!(parse_request(&line, &limits), Ok(None));
        // One byte more than max_line, no line end yet.
        line.pop();
        line.push(b'a');
        assert_eq!(parse_request(&line, &limits), Err(HttpError::LineTooLong));
    }

    #[test]
    fn line_of_exactly_max_line_is_accepted() {
        let line = b"GET /abc HTTP/1.1";
        let limits = Limits::default().max_line(line.len());
        let mut buf = line.to_vec();
        buf.extend_from_slice(b"\r\nHost: a\r\n\r\n");
        assert!(parse_request(&buf, &limits).unwrap().is_some());
        let limits = Limits::default().max_line(line.len() - 1);
        assert_eq!(parse_request(&buf, &limits), Err(HttpError::LineTooLong));
    }

    #[test]
    fn header_line_over_max_line_fails_on_partial_input() {
        let limits = Limits::default().max_line(64);
        let mut buf = b"GET / HTTP/1.1\r\nCookie: ".to_vec();
        buf.resize(16 + 65, b'x');
        assert_eq!(parse_request(&buf, &limits), Err(HttpError::LineTooLong));
    }

    #[test]
    fn head_over_max_head_fails_on_partial_input() {
        let limits = Limits::default().max_head(64);
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        while buf.len() <= 64 {
            buf.extend_from_slice(b"A: b\r\n");
        }
        assert_eq!(parse_request(&buf, &limits), Err(HttpError::HeadTooLarge));
        assert_eq!(parse_request(&buf[..64], &limits), Ok(None));
        // A complete head one byte too large.
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let limits = Limits::default().max_head(head.len() - 1);
        assert_eq!(parse_request(head, &limits), Err(HttpError::HeadTooLarge));
        let limits = Limits::default().max_head(head.len());
        assert!(parse_request(head, &limits).unwrap().is_some());
    }

    #[test]
    fn header_count_over_max_headers_fails_on_partial_input() {
        let limits = Limits::default().max_headers(3);
        let three = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
        assert_eq!(parse_request(three, &limits), Ok(None));
        let mut full = three.to_vec();
        full.extend_from_slice(b"\r\n");
        assert!(parse_request(&full, &limits).unwrap().is_some());
        let mut four = three.to_vec();
        four.extend_from_slice(b"D: 4\r\n");
        assert_eq!(
            parse_request(&four, &limits),
            Err(HttpError::TooManyHeaders)
        );
    }

    #[test]
    fn size_caps_answer_431_and_others_400() {
        assert_eq!(HttpError::LineTooLong.status(), 431);
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
        assert_eq!(HttpError::ObsFold.status(), 400);
        assert_eq!(HttpError::MalformedRequestLine.status(), 400);
    }

    #[test]
    fn bare_lf_is_rejected() {
        assert_eq!(req(b"GET / HTTP/1.1\n"), Err(HttpError::BareLf));
        assert_eq!(req(b"GET / HTTP/1.1\r\nHost: a\n"), Err(HttpError::BareLf));
        assert_eq!(req(b"\n"), Err(HttpError::BareLf));
    }

    #[test]
    fn bare_cr_is_rejected() {
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nA: b\rc\r\n"),
            Err(HttpError::BareCr)
        );
        assert_eq!(req(b"GET / HTTP/1.1\r\r\n"), Err(HttpError::BareCr));
    }

    #[test]
    fn obs_fold_is_rejected() {
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nA: b\r\n  c\r\n\r\n"),
            Err(HttpError::ObsFold)
        );
        assert_eq!(
            req(b"GET / HTTP/1.1\r\n\tA: b\r\n\r\n"),
            Err(HttpError::ObsFold)
        );
    }

    #[test]
    fn whitespace_before_colon_is_rejected() {
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
            Err(HttpError::InvalidHeaderName)
        );
    }

    #[test]
    fn invalid_header_names_are_rejected() {
        for line in [
            &b": a"[..],
            b"Ho(st: a",
            b"H\x00: a",
            b"H\xc3\xa9: a",
            b"A\"b: c",
        ] {
            let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
            buf.extend_from_slice(line);
            buf.extend_from_slice(b"\r\n\r\n");
            assert_eq!(req(&buf), Err(HttpError::InvalidHeaderName), "{line:?}");
        }
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nNoColon\r\n\r\n"),
            Err(HttpError::MissingColon)
        );
    }

    #[test]
    fn control_characters_in_values_are_rejected() {
        for value in [&b"a\x00b"[..], b"a\x7fb", b"a\x1bb", b"\x0b"] {
            let mut buf = b"GET / HTTP/1.1\r\nA: ".to_vec();
            buf.extend_from_slice(value);
            buf.extend_from_slice(b"\r\n\r\n");
            assert_eq!(req(&buf), Err(HttpError::InvalidHeaderValue), "{value:?}");
        }
    }

    #[test]
    fn values_are_trimmed_of_ows_and_keep_inner_spaces() {
        let r = full_req(b"GET / HTTP/1.1\r\nA:\t x  y \t\r\nB:\r\nC:z\r\n\r\n");
        assert_eq!(r.headers.get("a"), Some("x  y"));
        assert_eq!(r.headers.get("b"), Some(""));
        assert_eq!(r.headers.get("c"), Some("z"));
    }

    #[test]
    fn obs_text_in_values_is_accepted() {
        let r = full_req(b"GET / HTTP/1.1\r\nA: caf\xc3\xa9 \xff\r\n\r\n");
        assert_eq!(r.headers.get("a"), Some("café \u{fffd}"));
    }

    #[test]
    fn repeated_headers_keep_their_order() {
        let r = full_req(b"GET / HTTP/1.1\r\nX: 1\r\nY: 2\r\nx: 3\r\n\r\n");
        assert_eq!(r.headers.get("X"), Some("1"));
        assert_eq!(r.headers.get_all("x").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(
            r.headers.iter().collect::<Vec<_>>(),
            [("X", "1"), ("Y", "2"), ("x", "3")]
        );
        assert_eq!(r.headers.get("z"), None);
    }

    #[test]
    fn token_lists_span_repeated_headers_and_ignore_case() {
        let r = full_req(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\
connection: ,  close ,\r\nUpgrade: WebSocket\r\n\r\n",
        );
        assert!(r.headers.has_token("Connection", "upgrade"));
        assert!(r.headers.has_token("CONNECTION", "Keep-Alive"));
        assert!(r.headers.has_token("connection", "close"));
        assert!(!r.headers.has_token("connection", ""));
        assert!(!r.headers.has_token("connection", "keep"));
        assert!(r.headers.has_token("upgrade", "websocket"));
        assert_eq!(
            r.headers.tokens("connection").collect::<Vec<_>>(),
            ["keep-alive", "Upgrade", "close"]
        );
    }

    #[test]
    fn request_line_must_have_three_single_space_separated_parts() {
        for line in [
            &b"GET  / HTTP/1.1"[..],
            b"GET / HTTP/1.1 ",
            b"GET /",
            b"GET",
            b"",
            b" GET / HTTP/1.1",
            b"GET /a b HTTP/1.1",
            b"GE(T / HTTP/1.1",
            b"GET /\x7f HTTP/1.1",
            b"GET /\xc3\xa9 HTTP/1.1",
            b"GET\t/ HTTP/1.1",
        ] {
            let mut buf = line.to_vec();
            buf.extend_from_slice(b"\r\n\r\n");
            assert_eq!(req(&buf), Err(HttpError::MalformedRequestLine), "{line:?}");
        }
    }

    #[test]
    fn a_bad_start_line_fails_before_the_head_completes() {
        assert_eq!(
            req(b"GET  / HTTP/1.1\r\n"),
            Err(HttpError::MalformedRequestLine)
        );
        assert_eq!(
            resp(b"HTTP/1.1 1O1 x\r\n"),
            Err(HttpError::MalformedStatusLine)
        );
    }

    #[test]
    fn versions() {
        let v = |line: &[u8]| {
            let mut buf = line.to_vec();
            buf.extend_from_slice(b"\r\n\r\n");
            req(&buf).map(|r| r.unwrap().0.version)
        };
        assert_eq!(v(b"GET / HTTP/1.0"), Ok(Version::Http10));
        assert_eq!(v(b"GET / HTTP/1.1"), Ok(Version::Http11));
        assert_eq!(
            v(b"GET / HTTP/2.0"),
            Ok(Version::Other { major: 2, minor: 0 })
        );
        assert_eq!(
            v(b"PRI * HTTP/2.0"),
            Ok(Version::Other { major: 2, minor: 0 })
        );
        for bad in [
            &b"GET / HTTP/1"[..],
            b"GET / http/1.1",
            b"GET / HTTP/1.10",
            b"GET / HTTP/x.1",
        ] {
            assert_eq!(v(bad), Err(HttpError::MalformedVersion), "{bad:?}");
        }
        assert!(Version::Http11.is_http11_or_later_1x());
        assert!(Version::Other { major: 1, minor: 2 }.is_http11_or_later_1x());
        assert!(!Version::Http10.is_http11_or_later_1x());
        assert!(!Version::Other { major: 2, minor: 0 }.is_http11_or_later_1x());
        assert_eq!(
            Version::Other { major: 2, minor: 0 }.to_string(),
            "HTTP/2.0"
        );
    }

    #[test]
    fn status_lines() {
        let s = |line: &[u8]| {
            let mut buf = line.to_vec();
            buf.extend_from_slice(b"\r\n\r\n");
            resp(&buf).map(|r| {
                let r = r.unwrap().0;
                (r.status, r.reason)
            })
        };
        assert_eq!(s(b"HTTP/1.1 404 Not Found"), Ok((404, "Not Found".into())));
        assert_eq!(s(b"HTTP/1.1 101 "), Ok((101, "".into())));
        assert_eq!(s(b"HTTP/1.1 101"), Ok((101, "".into())));
        assert_eq!(s(b"HTTP/1.1 599 a\tb  c"), Ok((599, "a\tb  c".into())));
        for bad in [
            &b"HTTP/1.1  101 x"[..],
            b"HTTP/1.1 10 x",
            b"HTTP/1.1 1010 x",
            b"HTTP/1.1 099 x",
            b"HTTP/1.1 abc x",
            b"HTTP/1.1",
            b"HTTP/1.1 101 a\x00b",
        ] {
            assert_eq!(s(bad), Err(HttpError::MalformedStatusLine), "{bad:?}");
        }
        assert_eq!(s(b"HTTP/1 101 x"), Err(HttpError::MalformedVersion));
    }

    #[test]
    fn large_valid_heads_parse_in_linear_time() {
        // 64 headers of almost max_line each: the whole 16 KiB budget is
        // scanned once, not once per header.
        let limits = Limits::default().max_head(1 << 20);
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..64 {
            buf.extend_from_slice(format!("X-{i:02}: ").as_bytes());
            buf.resize(buf.len() + 8000, b'v');
            buf.extend_from_slice(b"\r\n");
        }
        buf.extend_from_slice(b"\r\n");
        let (r, n) = parse_request(&buf, &limits).unwrap().unwrap();
        assert_eq!((r.headers.len(), n), (64, buf.len()));
    }

    #[test]
    fn mutated_heads_never_panic_and_never_stay_incomplete_past_max_head() {
        let small = Limits::default().max_head(96).max_line(48).max_headers(4);
        let interesting = [0u8, b'\r', b'\n', b' ', b'\t', b':', b',', 0x7F, 0xFF];
        for at in 0..REQUEST.len() {
            for &b in &interesting {
                let mut buf = REQUEST.to_vec();
                buf[at] = b;
                for limits in [&Limits::default(), &small] {
                    match parse_request(&buf, limits) {
                        Ok(Some((_, n))) => assert!(n <= buf.len() && n <= limits.max_head),
                        Ok(None) => assert!(buf.len() <= limits.max_head),
                        Err(_) => {}
                    }
                    if let Ok(Some((_, n))) = parse_response(&buf, limits) {
                        assert!(n <= buf.len());
                    }
                }
            }
        }
    }

    #[test]
    fn empty_and_tiny_limits_do_not_panic() {
        let zero = Limits::default().max_line(0).max_head(0).max_headers(0);
        assert_eq!(parse_request(b"", &zero), Ok(None));
        assert_eq!(parse_request(b"G", &zero).map_err(|e| e.status()), Err(431));
        let big = Limits::default().max_line(usize::MAX).max_head(usize::MAX);
        assert!(parse_request(REQUEST, &big).unwrap().is_some());
    }
}
