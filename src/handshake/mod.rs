//! The opening handshake (RFC 6455 §4): a bounded HTTP/1.x head parser, the
//! server's validation and answer, the client's request and its check of the
//! answer, and the `Sec-WebSocket-Key` → `Sec-WebSocket-Accept` transform.
//!
//! Everything here works on byte slices and owned values; nothing reads from
//! or writes to a socket. A server feeds the bytes it has read so far to
//! [`parse_request`] until it returns a head (`Ok(None)` means "read more"),
//! answers with [`accept`], and keeps the bytes after the head: they are the
//! client's first frames.
//!
//! ```
//! use rfc6455::handshake::{accept, build_request, parse_request, parse_response, verify_response};
//! use rfc6455::handshake::{AcceptOptions, Limits, RequestOptions};
//!
//! // Client: the request head.
//! let offered = ["chat".to_owned()];
//! let request = build_request(&RequestOptions::new("example.com", "/chat").subprotocols(&offered)).unwrap();
//!
//! // Server: parse it and answer 101.
//! let (head, used) = parse_request(request.bytes(), &Limits::default()).unwrap().unwrap();
//! assert_eq!(used, request.bytes().len());
//! let accepted = accept(&head, &AcceptOptions::default().subprotocols(["chat"])).unwrap();
//!
//! // Client: parse the answer and check it.
//! let (response, _) = parse_response(&accepted.response, &Limits::default()).unwrap().unwrap();
//! let negotiated = verify_response(&response, &request).unwrap();
//! assert_eq!(negotiated, accepted.negotiated);
//! assert_eq!(negotiated.subprotocol.as_deref(), Some("chat"));
//! ```

pub mod client;
pub mod extensions;
mod head;
pub mod http;
mod response;
pub mod server;
mod target;

use std::fmt;

/// What an opening handshake settled, as data: returned by the server's
/// [`accept`] and the client's [`verify_response`], taken by
/// [`WebSocket::after_handshake`](crate::WebSocket::after_handshake).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// The subprotocol selected (RFC 6455 §1.9), if any.
    pub subprotocol: Option<String>,
    /// The extensions in use (RFC 6455 §9.1), in the order they apply, as
    /// the server's answer names them: permessage-deflate (RFC 7692) when
    /// it was configured, offered and accepted, otherwise empty.
    pub extensions: Vec<ExtensionParams>,
}

/// One extension in a `Sec-WebSocket-Extensions` header, with its parameters
/// (RFC 6455 §9.1: `name; param; param=value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionParams {
    /// The extension's name, e.g. `permessage-deflate`.
    pub name: String,
    /// Its parameters, with their values if they have one.
    pub params: Vec<(String, Option<String>)>,
}

use base64::Engine as _;
use sha1::{Digest, Sha1};

pub use client::{build_request, verify_response, ClientRequest, RequestOptions};
pub use extensions::{DeflateConfig, DeflateParams};
pub use head::{HeadError, HeadParser, HeadReader, ReadsHead};
pub use http::{
    parse_request, parse_response, reason_phrase, Headers, HttpError, Limits, Request, Response,
    Version,
};
pub use server::{
    accept, check_http, http_response, response_for, AcceptOptions, Accepted, Rejection,
};

/// The GUID RFC 6455 §1.3 appends to the client's key before hashing it.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` value.
///
/// RFC 6455 §4.2.2: "concatenate this with the Globally Unique Identifier
/// [...] A SHA-1 hash (160 bits) \[FIPS.180-3\], base64-encoded (see Section 4
/// of \[RFC4648\]), of this concatenation is then returned in the server's
/// handshake." The key is used as sent (the base64 text, not its decoding).
///
/// ```
/// // The sample of RFC 6455 §1.3.
/// assert_eq!(
///     rfc6455::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// Why an opening handshake failed.
///
/// The variants nest by cause: [`HandshakeError::Http`] for a head that is
/// not acceptable HTTP at all, then one variant per RFC 6455 rule a
/// request (server side) or a response (client side) broke, then problems
/// with what the local caller supplied. A server turns any of them into an
/// HTTP answer with [`Rejection::from_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head is malformed or over a size cap.
    Http(HttpError),

    // --- The client's request (checked by a server). ---
    /// RFC 6455 §4.2.1: "An HTTP/1.1 or higher GET request". HTTP/1.0,
    /// HTTP/0.9 and HTTP/2+ in a request line are answered `505`; on the
    /// client side, a response that is not HTTP/1.1 or a later 1.x.
    UnsupportedHttpVersion,
    /// RFC 6455 §4.2.1: the method must be `GET`. Answered `405` with
    /// `Allow: GET`.
    MethodNotGet,
    /// RFC 6455 §4.2.1 and §3: the request target must be a resource name
    /// (`/path?query`) or an absolute `http`/`https`/`ws`/`wss` URI, without a
    /// fragment ("Fragment identifiers [...] MUST NOT be used"). Answered
    /// `400`.
    InvalidRequestTarget,
    /// RFC 6455 §4.2.1: "A |Host| header field containing the server's
    /// authority." Answered `400`.
    MissingHost,
    /// A header that must appear at most once (`Host`, RFC 9112 §3.2;
    /// `Sec-WebSocket-Key`) appeared more than once. Answered `400`.
    DuplicateHeader(&'static str),
    /// RFC 9112 §3.2: the `Host` is not `host[:port]` ("a Host header field
    /// with an invalid field value"). Answered `400`.
    InvalidHostHeader,
    /// The upgrade request declares a body: a `Content-Length` other than 0,
    /// or any `Transfer-Encoding`. An opening handshake has none (RFC 6455
    /// §4.1), and RFC 9110 §9.3.1 warns that content in a GET may be
    /// refused "because of its potential as a request smuggling attack":
    /// behind a proxy that forwards bodies, the bytes would be read as the
    /// client's first frames. Answered `400`.
    UpgradeWithBody,
    /// RFC 6455 §4.2.1: "An |Upgrade| header field containing the value
    /// "websocket", treated as an ASCII case-insensitive value." Missing or
    /// without that token. A server answers `426` with `Upgrade: websocket`;
    /// on the client side (§4.1), the response lacked it.
    NotUpgrade,
    /// RFC 6455 §4.2.1: "A |Connection| header field that includes the token
    /// "Upgrade", treated as an ASCII case-insensitive value." Answered
    /// `400`; on the client side (§4.1), the response lacked it.
    MissingConnectionUpgrade,
    /// RFC 6455 §4.2.1: "A |Sec-WebSocket-Version| header field, with a value
    /// of 13." Missing, repeated or another value; answered `426` with
    /// `Sec-WebSocket-Version: 13` (§4.2.2).
    UnsupportedWebSocketVersion,
    /// RFC 6455 §4.2.1: "A |Sec-WebSocket-Key| header field" is missing.
    /// Answered `400`.
    MissingKey,
    /// RFC 6455 §4.2.1: the `Sec-WebSocket-Key` "when decoded, is 16 bytes
    /// in length". It is not canonical base64 of 16 bytes. Answered `400`.
    InvalidKey,
    /// The server's origin check refused the request's `Origin` (RFC 6455
    /// §4.2.2 and §10.2). Answered `403`.
    OriginRejected,

    // --- The server's response (checked by a client). ---
    /// RFC 6455 §4.1: "If the status code received from the server is not
    /// 101, the client handles the response per HTTP \[RFC2616\] procedures."
    /// Here that means the handshake failed.
    NotSwitchingProtocols {
        /// The status the server sent.
        status: u16,
    },
    /// RFC 6455 §4.1: `Sec-WebSocket-Accept` is missing, repeated, or not
    /// the base64-encoded SHA-1 of the key and the GUID.
    BadAccept,
    /// RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Protocol|
    /// header field and this header field indicates the use of a subprotocol
    /// that was not present in the client's handshake [...] the client MUST
    /// _Fail the WebSocket Connection_." Also for more than one subprotocol.
    UnexpectedSubprotocol,
    /// RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Extensions|
    /// header field and this header field indicates the use of an extension
    /// that was not present in the client's handshake [...] the client MUST
    /// _Fail the WebSocket Connection_." Also for more than one extension
    /// (this crate offers only permessage-deflate).
    UnexpectedExtension,
    /// RFC 7692 §7.1: the server accepted permessage-deflate with an
    /// unknown, repeated or invalid parameter, or one that contradicts the
    /// offer; "the client MUST _Fail the WebSocket Connection_".
    InvalidExtensionParams,

    // --- What the local caller supplied. ---
    /// The host given to [`build_request`] is empty or not a valid host
    /// name or IP address.
    InvalidHost,
    /// The resource given to [`build_request`] does not start with `/`, or
    /// holds a space, a control character or a `#`.
    InvalidResource,
    /// RFC 6455 §4.1: subprotocols "MUST be non-empty strings with characters
    /// in the range U+0021 to U+007E not including separator characters [...]
    /// and MUST all be unique strings."
    InvalidSubprotocol,
    /// A caller-supplied header has a name that is not an HTTP token or a
    /// value with CR, LF or another control character (which would inject
    /// headers), or it is one the handshake writes itself. A server answers
    /// `500`.
    InvalidHeader,
    /// The operating system's random number generator failed (needed for the
    /// `Sec-WebSocket-Key`, RFC 6455 §4.1: "randomly selected").
    Random(getrandom::Error),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Http(e) => write!(f, "bad HTTP head: {e}"),
            HandshakeError::UnsupportedHttpVersion => {
                f.write_str("HTTP version not supported (HTTP/1.1 required)")
            }
            HandshakeError::MethodNotGet => f.write_str("the method must be GET"),
            HandshakeError::InvalidRequestTarget => f.write_str("invalid request target"),
            HandshakeError::MissingHost => f.write_str("missing Host header"),
            HandshakeError::DuplicateHeader(name) => write!(f, "more than one {name} header"),
            HandshakeError::InvalidHostHeader => f.write_str("invalid Host header"),
            HandshakeError::UpgradeWithBody => f.write_str(
                "an upgrade request must not have a body (Content-Length or Transfer-Encoding)",
            ),
            HandshakeError::NotUpgrade => f.write_str("missing \"Upgrade: websocket\""),
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("missing \"Connection: Upgrade\"")
            }
            HandshakeError::UnsupportedWebSocketVersion => {
                f.write_str("unsupported WebSocket version (Sec-WebSocket-Version must be 13)")
            }
            HandshakeError::MissingKey => f.write_str("missing Sec-WebSocket-Key header"),
            HandshakeError::InvalidKey => {
                f.write_str("Sec-WebSocket-Key is not base64 of 16 bytes")
            }
            HandshakeError::OriginRejected => f.write_str("origin not allowed"),
            HandshakeError::NotSwitchingProtocols { status } => {
                write!(f, "expected status 101, got {status}")
            }
            HandshakeError::BadAccept => f.write_str("missing or wrong Sec-WebSocket-Accept"),
            HandshakeError::UnexpectedSubprotocol => {
                f.write_str("the server selected a subprotocol that was not offered")
            }
            HandshakeError::UnexpectedExtension => {
                f.write_str("the server selected an extension that was not offered")
            }
            HandshakeError::InvalidExtensionParams => {
                f.write_str("the server answered permessage-deflate with invalid parameters")
            }
            HandshakeError::InvalidHost => f.write_str("invalid host"),
            HandshakeError::InvalidResource => f.write_str("invalid resource name"),
            HandshakeError::InvalidSubprotocol => {
                f.write_str("invalid or repeated subprotocol name")
            }
            HandshakeError::InvalidHeader => f.write_str("invalid or reserved header"),
            HandshakeError::Random(e) => write!(f, "no random numbers: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Http(e) => Some(e),
            HandshakeError::Random(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HttpError> for HandshakeError {
    fn from(e: HttpError) -> HandshakeError {
        HandshakeError::Http(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_section_1_3_sample_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn error_source_nests_http_errors() {
        use std::error::Error as _;
        let e = HandshakeError::from(HttpError::HeadTooLarge);
        assert!(e.source().is_some());
        assert!(e.to_string().contains("bad HTTP head"));
        assert!(HandshakeError::MissingKey.source().is_none());
    }
}
