//! The server side of the opening handshake (RFC 6455 §4.2): check a parsed
//! request, then answer `101 Switching Protocols` ([`accept`]) or an HTTP
//! error ([`Rejection`]). Also a plain HTTP response writer
//! ([`http_response`]) for servers that serve pages beside WebSockets.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use super::extensions::{self, DeflateConfig};
use super::http::{is_valid_header, Request};
pub(crate) use super::response::head_only;
use super::response::push_header;
pub use super::response::{http_response, response_for, Rejection};
use super::target::check_host;
use super::{accept_key, HandshakeError, Negotiated};

/// Picks a subprotocol from the ones the client offered (in the client's
/// order); see [`AcceptOptions::select_subprotocol`].
pub type SubprotocolSelector = Arc<dyn Fn(&[&str]) -> Option<String> + Send + Sync>;

/// Decides whether a request's `Origin` (if any) may connect; see
/// [`AcceptOptions::check_origin`].
pub type OriginCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// How [`accept`] answers a valid request. `Default` accepts any origin,
/// selects no subprotocol and adds no headers; setters take and return the
/// options by value.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct AcceptOptions {
    /// Subprotocols this server speaks, in its order of preference: the first
    /// one the client also offered is selected (RFC 6455 §4.2.2: "The value
    /// chosen MUST be derived from the client's handshake"). Ignored when
    /// [`AcceptOptions::select_subprotocol`] is set.
    pub subprotocols: Vec<String>,
    /// Picks the subprotocol instead of [`AcceptOptions::subprotocols`]; it is
    /// called only when the client offered at least one. A value the client
    /// did not offer is ignored (no subprotocol is selected), since the
    /// client would have to fail the connection (RFC 6455 §4.1).
    pub select_subprotocol: Option<SubprotocolSelector>,
    /// Called with the `Origin` header (`None` when absent); `false` answers
    /// `403 Forbidden`. RFC 6455 §10.2: servers reached by browsers should
    /// check it, since any page can ask a browser to open a WebSocket.
    pub check_origin: Option<OriginCheck>,
    /// Headers added to the `101` response (e.g. `Set-Cookie`). They must not
    /// repeat the handshake's own headers.
    pub headers: Vec<(String, String)>,
    /// permessage-deflate (RFC 7692): accept the first offer this config can
    /// honour. `None` (the default) declines compression. Needs the
    /// `deflate` feature; without it nothing is accepted.
    pub deflate: Option<DeflateConfig>,
}

impl fmt::Debug for AcceptOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptOptions")
            .field("subprotocols", &self.subprotocols)
            .field(
                "select_subprotocol",
                &self.select_subprotocol.as_ref().map(|_| "Fn"),
            )
            .field("check_origin", &self.check_origin.as_ref().map(|_| "Fn"))
            .field("headers", &self.headers)
            .field("deflate", &self.deflate)
            .finish()
    }
}

impl AcceptOptions {
    /// The defaults.
    pub fn new() -> AcceptOptions {
        AcceptOptions::default()
    }

    /// Sets [`AcceptOptions::subprotocols`], most preferred first.
    pub fn subprotocols<I, S>(mut self, subprotocols: I) -> AcceptOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = subprotocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`AcceptOptions::select_subprotocol`].
    pub fn select_subprotocol(
        mut self,
        select: impl Fn(&[&str]) -> Option<String> + Send + Sync + 'static,
    ) -> AcceptOptions {
        self.select_subprotocol = Some(Arc::new(select));
        self
    }

    /// Sets [`AcceptOptions::check_origin`].
    pub fn check_origin(
        mut self,
        check: impl Fn(Option<&str>) -> bool + Send + Sync + 'static,
    ) -> AcceptOptions {
        self.check_origin = Some(Arc::new(check));
        self
    }

    /// An origin check that admits the listed origins (compared ignoring
    /// ASCII case, e.g. `"http://localhost:8080"`) and requests without an
    /// `Origin` header. Browsers always send one (RFC 6455 §4.1), so this
    /// stops other sites' pages while letting non-browser clients in.
    ///
    /// ```
    /// use rfc6455::handshake::AcceptOptions;
    /// let opts = AcceptOptions::default().allow_origins(["https://example.com"]);
    /// let check = opts.check_origin.unwrap();
    /// assert!(check(Some("https://EXAMPLE.com")));
    /// assert!(check(None));
    /// assert!(!check(Some("https://evil.example")));
    /// ```
    pub fn allow_origins<I, S>(self, origins: I) -> AcceptOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let allowed: Vec<String> = origins.into_iter().map(Into::into).collect();
        self.check_origin(move |origin| match origin {
            None => true,
            Some(origin) => allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)),
        })
    }

    /// Adds a header to [`AcceptOptions::headers`].
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> AcceptOptions {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`AcceptOptions::deflate`].
    pub fn deflate(mut self, config: Option<DeflateConfig>) -> AcceptOptions {
        self.deflate = config;
        self
    }
}

/// A request [`accept`] found valid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// What was negotiated: the subprotocol, and the extensions accepted
    /// (permessage-deflate, when [`AcceptOptions::deflate`] is set and the
    /// `deflate` feature is on).
    pub negotiated: Negotiated,
    /// The complete `101 Switching Protocols` head to send.
    pub response: Vec<u8>,
}

/// Checks a request against RFC 6455 §4.2.1 and answers it.
///
/// The checks, in order, each with its [`HandshakeError`] and status: HTTP
/// version 1.1 or a later 1.x (`505`), method `GET` or `HEAD` (`405`,
/// `Allow: GET`), a resource name or absolute URI as target (`400`), exactly
/// one valid `Host` (`400`), no body (`400`: a `Content-Length` other than
/// 0 or any `Transfer-Encoding`), `Upgrade` listing `websocket` (`426`,
/// `Upgrade: websocket`), then `HEAD` is refused (`405`: until here it was
/// treated as GET, so a `HEAD` that is not an upgrade gets GET's `426`),
/// `Connection` listing `upgrade` (`400`), exactly one
/// `Sec-WebSocket-Version: 13` (`426`, `Sec-WebSocket-Version: 13`), exactly
/// one `Sec-WebSocket-Key` that is base64 of 16 bytes (`400`), then the
/// origin check (`403`). Token comparisons ignore ASCII case.
///
/// The `101` response carries `Upgrade: websocket`, `Connection: Upgrade`,
/// `Sec-WebSocket-Accept`, the selected `Sec-WebSocket-Protocol` if any, and
/// [`AcceptOptions::headers`]. It carries `Sec-WebSocket-Extensions` only
/// when [`AcceptOptions::deflate`] is set (and the `deflate` feature is on)
/// and the client offered permessage-deflate in a form it can honour
/// ([`extensions::negotiate`]).
///
/// ```
/// use rfc6455::handshake::{accept, parse_request, AcceptOptions, Limits};
///
/// let head = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n";
/// let (request, _) = parse_request(head, &Limits::default()).unwrap().unwrap();
/// let accepted = accept(&request, &AcceptOptions::default()).unwrap();
/// assert_eq!(
///     accepted.response,
///     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///       Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
/// );
///
/// let mut plain = request.clone();
/// plain.headers = Default::default();
/// let rejection = accept(&plain, &AcceptOptions::default()).unwrap_err();
/// assert_eq!(rejection.status, 400); // no Host
/// ```
pub fn accept(request: &Request, options: &AcceptOptions) -> Result<Accepted, Rejection> {
    let key = check_request(request)?;
    if let Some(check) = &options.check_origin {
        if !check(request.headers.get("origin")) {
            return Err(HandshakeError::OriginRejected.into());
        }
    }
    let subprotocol = select_subprotocol(request, options);

    let mut response = Vec::with_capacity(160);
    response.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    let mut header = |name: &str, value: &str| push_header(&mut response, name, value);
    header("Upgrade", "websocket");
    header("Connection", "Upgrade");
    header("Sec-WebSocket-Accept", &accept_key(key.as_bytes()));
    if let Some(p) = &subprotocol {
        header("Sec-WebSocket-Protocol", p);
    }
    // RFC 7692 §5: the first offer we can honour, answered with the
    // parameters in use.
    let deflate = options.deflate.as_ref().and_then(|config| {
        extensions::negotiate(request.headers.get_all("sec-websocket-extensions"), config)
    });
    let extensions: Vec<_> = deflate.into_iter().collect();
    if !extensions.is_empty() {
        header("Sec-WebSocket-Extensions", &extensions::write(&extensions));
    }
    for (name, value) in &options.headers {
        if !is_valid_header(name, value) {
            return Err(HandshakeError::InvalidHeader.into());
        }
        header(name, value);
    }
    response.extend_from_slice(b"\r\n");
    Ok(Accepted {
        negotiated: Negotiated {
            subprotocol,
            extensions,
        },
        response,
    })
}

/// RFC 6455 §4.2.1, items 1–6; returns the key.
fn check_request(request: &Request) -> Result<&str, HandshakeError> {
    let headers = &request.headers;
    // 1. "An HTTP/1.1 or higher GET request, including a "Request-URI"".
    if !request.version.is_http11_or_later_1x() {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    // RFC 9110 §9.3.2: HEAD is GET without content, so it is answered as
    // GET would be (426 without Upgrade) up to the point where it would be
    // upgraded, which only a GET can be.
    if request.method != "GET" && !request.is_head() {
        return Err(HandshakeError::MethodNotGet);
    }
    if !is_valid_target(&request.target) {
        return Err(HandshakeError::InvalidRequestTarget);
    }
    // 2. "A |Host| header field containing the server's authority." RFC 9112
    //    §3.2: a request without one, with two, or with an invalid one is
    //    answered 400.
    check_host(request)?;
    // RFC 9112 §6.3: Transfer-Encoding or Content-Length frame a body. An
    // upgrade has none; accepting one would read it as frames, and a proxy
    // that forwards bodies could smuggle bytes past its own checks.
    if declares_body(request) {
        return Err(HandshakeError::UpgradeWithBody);
    }
    // 3. "An |Upgrade| header field containing the value "websocket"".
    if !headers.has_token("upgrade", "websocket") {
        return Err(HandshakeError::NotUpgrade);
    }
    if request.is_head() {
        return Err(HandshakeError::MethodNotGet);
    }
    // 4. "A |Connection| header field that includes the token "Upgrade"".
    if !headers.has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // 6. "A |Sec-WebSocket-Version| header field, with a value of 13."
    let mut versions = headers.get_all("sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some("13"), None) => {}
        _ => return Err(HandshakeError::UnsupportedWebSocketVersion),
    }
    // 5. "A |Sec-WebSocket-Key| header field with a base64-encoded [...]
    //    value that, when decoded, is 16 bytes in length."
    let key = one(headers.get_all("sec-websocket-key"), "Sec-WebSocket-Key")?
        .ok_or(HandshakeError::MissingKey)?;
    // 16 bytes are 24 base64 characters; checking that first bounds the work.
    // The standard engine refuses non-canonical encodings (stray padding or
    // trailing bits).
    let decoded_ok = key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16);
    if !decoded_ok {
        return Err(HandshakeError::InvalidKey);
    }
    Ok(key)
}

/// The only value of a header that must not repeat.
fn one<'a>(
    mut values: impl Iterator<Item = &'a str>,
    name: &'static str,
) -> Result<Option<&'a str>, HandshakeError> {
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => Err(HandshakeError::DuplicateHeader(name)),
        (first, _) => Ok(first),
    }
}

/// Whether `request` declares a body: any `Transfer-Encoding`, or a
/// `Content-Length` that is not 0 (a list of zeros, which RFC 9110 §8.6
/// lets a recipient read as one value, is still no body; anything else, a
/// number or not, is refused).
fn declares_body(request: &Request) -> bool {
    request
        .headers
        .get_all("transfer-encoding")
        .next()
        .is_some()
        || request.headers.get_all("content-length").any(|value| {
            !value.split(',').all(|n| {
                let n = n.trim_matches([' ', '\t']);
                !n.is_empty() && n.bytes().all(|b| b == b'0')
            })
        })
}

/// RFC 6455 §3 and §4.2.1: a resource name (origin-form, `/path?query`) or an
/// absolute http/https/ws/wss URI; never a fragment. The parser already
/// limited it to visible ASCII.
fn is_valid_target(target: &str) -> bool {
    if target.contains('#') {
        return false;
    }
    if target.starts_with('/') {
        return true;
    }
    match target.split_once("://") {
        Some((scheme, rest)) => {
            ["http", "https", "ws", "wss"]
                .iter()
                .any(|s| scheme.eq_ignore_ascii_case(s))
                && !rest.is_empty()
        }
        None => false,
    }
}

fn select_subprotocol(request: &Request, options: &AcceptOptions) -> Option<String> {
    // RFC 6455 §4.1: the client's list, "ordered by preference".
    let offered: Vec<&str> = request.headers.tokens("sec-websocket-protocol").collect();
    if offered.is_empty() {
        // §4.2.2: with no offer, the response must not name one.
        return None;
    }
    match &options.select_subprotocol {
        Some(select) => select(&offered).filter(|p| offered.contains(&p.as_str())),
        None => options
            .subprotocols
            .iter()
            .find(|p| offered.contains(&p.as_str()))
            .cloned(),
    }
}

/// The rules RFC 9110 and RFC 9112 set for any request a server answers,
/// upgrade or not, checked before a plain request reaches an HTTP handler
/// ([`accept`] checks them, and more, for upgrades): HTTP/1.x (`505`
/// otherwise, RFC 9110 §15.6.6; HTTP/1.0 is served) and the `Host` rule of
/// RFC 9112 §3.2 (`400`: none in an HTTP/1.1 request, more than one, or one
/// that is not `host[:port]`).
///
/// ```
/// use rfc6455::handshake::{check_http, parse_request, Limits};
/// let parse = |head: &[u8]| parse_request(head, &Limits::default()).unwrap().unwrap().0;
/// assert!(check_http(&parse(b"GET /health HTTP/1.1\r\nHost: example.com\r\n\r\n")).is_ok());
/// assert_eq!(check_http(&parse(b"GET /health HTTP/1.1\r\n\r\n")).unwrap_err().status, 400);
/// let two = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
/// assert_eq!(check_http(&parse(two)).unwrap_err().status, 400);
/// ```
pub fn check_http(request: &Request) -> Result<(), Rejection> {
    if request.version.major() != 1 {
        return Err(HandshakeError::UnsupportedHttpVersion.into());
    }
    check_host(request).map_err(Rejection::from)
}

#[cfg(test)]
mod tests {
    use super::super::http::{parse_request, parse_response, Limits, Response};
    use super::*;
    use crate::handshake::HttpError;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// The RFC 6455 §1.2 sample request, with `headers` replacing the ones
    /// of the same name (an empty value removes it) and `line` as the
    /// request line.
    fn request_with(line: &str, changes: &[(&str, &str)]) -> Request {
        let mut fields = vec![
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Version", "13"),
        ];
        for (name, value) in changes {
            let at = fields.iter().position(|(n, _)| n == name);
            match (at, value.is_empty()) {
                (Some(i), true) => {
                    fields.remove(i);
                }
                (Some(i), false) => fields[i].1 = value,
                (None, _) => fields.push((name, value)),
            }
        }
        let mut head = format!("{line}\r\n");
        for (n, v) in fields {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        parse_request(head.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap()
            .0
    }

    fn request(changes: &[(&str, &str)]) -> Request {
        request_with("GET /chat HTTP/1.1", changes)
    }

    fn rejected(req: &Request) -> Rejection {
        accept(req, &AcceptOptions::default()).unwrap_err()
    }

    /// Parses a rejection's bytes back, checking the framing.
    fn parsed(rejection: &Rejection) -> Response {
        let bytes = rejection.to_bytes();
        let (resp, n) = parse_response(&bytes, &Limits::default()).unwrap().unwrap();
        let length: usize = resp.headers.get("content-length").unwrap().parse().unwrap();
        assert_eq!(bytes.len() - n, length);
        assert!(resp.headers.has_token("connection", "close"));
        assert_eq!(
            resp.headers.get("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(resp.status, rejection.status);
        resp
    }

    #[test]
    fn valid_request_gets_101_byte_for_byte() {
        let opts = AcceptOptions::default().subprotocols(["chat"]);
        let accepted = accept(&request(&[]), &opts).unwrap();
        assert_eq!(accepted.negotiated.subprotocol.as_deref(), Some("chat"));
        let expected = format!(
            "HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: {ACCEPT}\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n"
        );
        assert_eq!(String::from_utf8(accepted.response).unwrap(), expected);
    }

    #[test]
    fn response_never_offers_extensions() {
        let req = request(&[("Sec-WebSocket-Extensions", "permessage-deflate")]);
        let accepted = accept(&req, &AcceptOptions::default()).unwrap();
        let (resp, _) = parse_response(&accepted.response, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(resp.headers.get("sec-websocket-extensions"), None);
        assert_eq!(resp.headers.get("sec-websocket-protocol"), None);
    }

    #[test]
    fn extra_headers_are_appended() {
        let opts = AcceptOptions::default().header("Set-Cookie", "a=b");
        let accepted = accept(&request(&[]), &opts).unwrap();
        assert!(accepted.response.ends_with(b"\r\nSet-Cookie: a=b\r\n\r\n"));
    }

    #[test]
    fn invalid_extra_header_is_500_not_injected() {
        let opts = AcceptOptions::default().header("X", "a\r\nSet-Cookie: evil");
        let r = accept(&request(&[]), &opts).unwrap_err();
        assert_eq!(r.status, 500);
        assert_eq!(r.error, Some(HandshakeError::InvalidHeader));
        let opts = AcceptOptions::default().header("Bad Name", "a");
        assert_eq!(accept(&request(&[]), &opts).unwrap_err().status, 500);
    }

    #[test]
    fn http_1_0_is_505() {
        let r = rejected(&request_with("GET /chat HTTP/1.0", &[]));
        assert_eq!(r.status, 505);
        assert_eq!(r.error, Some(HandshakeError::UnsupportedHttpVersion));
        parsed(&r);
    }

    #[test]
    fn http_2_in_the_request_line_is_505() {
        let r = rejected(&request_with("GET /chat HTTP/2.0", &[]));
        assert_eq!(r.status, 505);
        let r = rejected(&request_with("GET /chat HTTP/0.9", &[]));
        assert_eq!(r.status, 505);
    }

    #[test]
    fn later_http_1_x_is_treated_as_1_1() {
        assert!(accept(
            &request_with("GET /chat HTTP/1.2", &[]),
            &AcceptOptions::default()
        )
        .is_ok());
    }

    #[test]
    fn method_not_get_is_405_with_allow_get() {
        for method in ["POST", "get", "HEAD"] {
            let r = rejected(&request_with(&format!("{method} /chat HTTP/1.1"), &[]));
            assert_eq!(r.status, 405, "{method}");
            assert_eq!(r.error, Some(HandshakeError::MethodNotGet));
            assert_eq!(parsed(&r).headers.get("allow"), Some("GET"));
        }
    }

    #[test]
    fn request_target_must_be_a_resource_name_or_absolute_uri() {
        for target in ["*", "example.com:80", "chat", "/chat#frag", "ftp://x/"] {
            let r = rejected(&request_with(&format!("GET {target} HTTP/1.1"), &[]));
            assert_eq!(r.status, 400, "{target}");
            assert_eq!(r.error, Some(HandshakeError::InvalidRequestTarget));
        }
        for target in [
            "/",
            "/chat?a=b",
            "ws://server.example.com/chat",
            "HTTP://h/",
        ] {
            let req = request_with(&format!("GET {target} HTTP/1.1"), &[]);
            assert!(accept(&req, &AcceptOptions::default()).is_ok(), "{target}");
        }
    }

    #[test]
    fn missing_host_is_400() {
        let r = rejected(&request(&[("Host", "")]));
        assert_eq!(
            (r.status, r.error.clone()),
            (400, Some(HandshakeError::MissingHost))
        );
        parsed(&r);
    }

    #[test]
    fn repeated_host_is_400() {
        let mut req = request(&[]);
        req.headers.push("host", "other.example.com");
        let r = rejected(&req);
        assert_eq!(
            (r.status, r.error),
            (400, Some(HandshakeError::DuplicateHeader("Host")))
        );
    }

    #[test]
    fn invalid_host_is_400() {
        for host in ["a b", "[::1", "h:port"] {
            let r = rejected(&request(&[("Host", host)]));
            assert_eq!(
                (r.status, r.error.clone()),
                (400, Some(HandshakeError::InvalidHostHeader)),
                "{host}"
            );
        }
    }

    #[test]
    fn upgrade_with_a_body_is_400() {
        for (name, value) in [
            ("Content-Length", "6"),
            ("Content-Length", "0, 1"),
            ("Content-Length", "-0"),
            ("Content-Length", "x"),
            ("Content-Length", ""),
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "identity"),
        ] {
            let r = rejected(&request(&[(name, value)]));
            assert_eq!(
                (r.status, r.error.clone()),
                (400, Some(HandshakeError::UpgradeWithBody)),
                "{name}: {value}"
            );
            parsed(&r);
        }
        let mut both = request(&[("Content-Length", "0")]);
        both.headers.push("Transfer-Encoding", "chunked");
        assert_eq!(rejected(&both).error, Some(HandshakeError::UpgradeWithBody));
    }

    #[test]
    fn upgrade_with_content_length_0_is_accepted() {
        for value in ["0", "00", "0, 0"] {
            let req = request(&[("Content-Length", value)]);
            assert!(accept(&req, &AcceptOptions::default()).is_ok(), "{value}");
        }
    }

    #[test]
    fn head_is_answered_as_get_until_the_upgrade() {
        // Not an upgrade: GET's 426.
        let r = rejected(&request_with("HEAD /chat HTTP/1.1", &[("Upgrade", "")]));
        assert_eq!(r.status, 426);
        // The same checks as GET before that.
        let r = rejected(&request_with("HEAD /chat HTTP/1.1", &[("Host", "")]));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn check_http_wants_http_1_and_one_host() {
        let plain = |line: &str, headers: &[(&str, &str)]| {
            let mut head = format!("{line}\r\n");
            for (n, v) in headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let (req, _) = parse_request(head.as_bytes(), &Limits::default())
                .unwrap()
                .unwrap();
            check_http(&req).map_err(|r| (r.status, r.error.unwrap()))
        };
        assert_eq!(plain("GET / HTTP/1.1", &[("Host", "h")]), Ok(()));
        assert_eq!(plain("HEAD /x HTTP/1.1", &[("Host", "h:1")]), Ok(()));
        assert_eq!(plain("GET / HTTP/1.0", &[]), Ok(()));
        assert_eq!(
            plain("GET / HTTP/1.1", &[]),
            Err((400, HandshakeError::MissingHost))
        );
        assert_eq!(
            plain("GET / HTTP/1.1", &[("Host", "a"), ("Host", "a")]),
            Err((400, HandshakeError::DuplicateHeader("Host")))
        );
        assert_eq!(
            plain("GET / HTTP/1.1", &[("Host", "a/b")]),
            Err((400, HandshakeError::InvalidHostHeader))
        );
        assert_eq!(
            plain("GET / HTTP/2.0", &[("Host", "h")]),
            Err((505, HandshakeError::UnsupportedHttpVersion))
        );
    }

    #[test]
    fn response_for_head_is_the_head_only() {
        let head = request_with("HEAD / HTTP/1.1", &[]);
        let get = request(&[]);
        let full = http_response(200, &[("Content-Type", "text/plain")], b"hello");
        let cut = response_for(&head, full.clone());
        assert_eq!(
            cut,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\
Connection: close\r\n\r\n"
        );
        assert_eq!(response_for(&get, full.clone()), full);
        let rejection = Rejection::new(426).to_bytes();
        let cut = response_for(&head, rejection.clone());
        assert!(rejection.starts_with(&cut) && cut.ends_with(b"\r\n\r\n"));
        assert!(cut.len() < rejection.len());
    }

    #[test]
    fn missing_upgrade_is_426_with_upgrade_websocket() {
        let r = rejected(&request(&[("Upgrade", "")]));
        assert_eq!(
            (r.status, r.error.clone()),
            (426, Some(HandshakeError::NotUpgrade))
        );
        let resp = parsed(&r);
        assert_eq!(resp.headers.get("upgrade"), Some("websocket"));
        assert_eq!(resp.headers.get("sec-websocket-version"), Some("13"));
        // RFC 7230 §6.7: a sender of Upgrade also lists "upgrade" in Connection.
        assert!(resp.headers.has_token("connection", "upgrade"));
    }

    #[test]
    fn upgrade_without_websocket_is_426() {
        let r = rejected(&request(&[("Upgrade", "h2c")]));
        assert_eq!(r.status, 426);
        let r = rejected(&request(&[("Upgrade", "websocket/13")]));
        assert_eq!(r.status, 426);
    }

    #[test]
    fn missing_connection_upgrade_is_400() {
        for value in ["", "keep-alive", "upgraded"] {
            let r = rejected(&request(&[("Connection", value)]));
            assert_eq!(
                (r.status, r.error.clone()),
                (400, Some(HandshakeError::MissingConnectionUpgrade)),
                "{value:?}"
            );
            parsed(&r);
        }
    }

    #[test]
    fn wrong_websocket_version_is_426_with_version_13() {
        for value in ["8", "", "13, 8", " 12"] {
            let r = rejected(&request(&[("Sec-WebSocket-Version", value)]));
            assert_eq!(
                (r.status, r.error.clone()),
                (426, Some(HandshakeError::UnsupportedWebSocketVersion)),
                "{value:?}"
            );
            assert_eq!(parsed(&r).headers.get("sec-websocket-version"), Some("13"));
        }
        let mut req = request(&[]);
        req.headers.push("Sec-WebSocket-Version", "13");
        assert_eq!(rejected(&req).status, 426);
    }

    #[test]
    fn missing_key_is_400() {
        let r = rejected(&request(&[("Sec-WebSocket-Key", "")]));
        assert_eq!((r.status, r.error), (400, Some(HandshakeError::MissingKey)));
    }

    #[test]
    fn key_that_is_not_base64_of_16_bytes_is_400() {
        for key in [
            "dGhlIHNhbXBsZSBub25jZQ",     // unpadded
            "dGhlIHNhbXBsZSBub25jZR==",   // trailing bits set
            "dGhlIHNhbXBsZSBub25j",       // 15 bytes
            "dGhlIHNhbXBsZSBub25jZWU=",   // 17 bytes
            "dGhlIHNhbXBsZSBub25jZQ==AA", // junk after padding
            "dGhlIHNhbXBsZSBub25jZ!==",   // not base64
            "x",
        ] {
            let r = rejected(&request(&[("Sec-WebSocket-Key", key)]));
            assert_eq!(
                (r.status, r.error.clone()),
                (400, Some(HandshakeError::InvalidKey)),
                "{key}"
            );
            parsed(&r);
        }
    }

    #[test]
    fn repeated_key_is_400() {
        let mut req = request(&[]);
        req.headers
            .push("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==");
        let r = rejected(&req);
        assert_eq!(
            (r.status, r.error),
            (
                400,
                Some(HandshakeError::DuplicateHeader("Sec-WebSocket-Key"))
            )
        );
    }

    #[test]
    fn header_names_and_tokens_ignore_case() {
        let head = format!(
            "GET / HTTP/1.1\r\nhOST: h\r\nUPGRADE: WebSocket\r\n\
connection: keep-alive, UPGRADE\r\nsec-websocket-key: {KEY}\r\n\
SEC-WEBSOCKET-VERSION: 13\r\n\r\n"
        );
        let (req, _) = parse_request(head.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap();
        let accepted = accept(&req, &AcceptOptions::default()).unwrap();
        assert!(String::from_utf8(accepted.response)
            .unwrap()
            .contains(ACCEPT));
    }

    #[test]
    fn connection_token_may_be_in_a_repeated_header() {
        let mut req = request(&[("Connection", "keep-alive")]);
        req.headers.push("Connection", "Upgrade");
        assert!(accept(&req, &AcceptOptions::default()).is_ok());
    }

    #[test]
    fn origin_rejected_is_403() {
        let opts = AcceptOptions::default().check_origin(|o| o == Some("https://good.example"));
        let r = accept(&request(&[]), &opts).unwrap_err();
        assert_eq!(
            (r.status, r.error.clone()),
            (403, Some(HandshakeError::OriginRejected))
        );
        parsed(&r);
        let req = request(&[("Origin", "https://good.example")]);
        assert!(accept(&req, &opts).is_ok());
        // Without Origin, the check sees None.
        assert_eq!(
            accept(&request(&[("Origin", "")]), &opts)
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn allow_origins_admits_listed_and_absent_origins() {
        let opts = AcceptOptions::default().allow_origins(["http://EXAMPLE.com"]);
        assert!(accept(&request(&[]), &opts).is_ok());
        assert!(accept(&request(&[("Origin", "")]), &opts).is_ok());
        let evil = request(&[("Origin", "http://evil.example")]);
        assert_eq!(accept(&evil, &opts).unwrap_err().status, 403);
    }

    #[test]
    fn server_preference_order_selects_the_subprotocol() {
        let opts = AcceptOptions::default().subprotocols(["superchat", "chat"]);
        let accepted = accept(&request(&[]), &opts).unwrap();
        assert_eq!(
            accepted.negotiated.subprotocol.as_deref(),
            Some("superchat")
        );
    }

    #[test]
    fn no_common_subprotocol_selects_none() {
        let opts = AcceptOptions::default().subprotocols(["mqtt"]);
        let accepted = accept(&request(&[]), &opts).unwrap();
        assert_eq!(accepted.negotiated.subprotocol, None);
        assert!(!String::from_utf8(accepted.response)
            .unwrap()
            .contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn subprotocols_in_repeated_headers_are_one_list() {
        let mut req = request(&[("Sec-WebSocket-Protocol", "a")]);
        req.headers.push("Sec-WebSocket-Protocol", "b, c");
        let opts = AcceptOptions::default().subprotocols(["c"]);
        assert_eq!(
            accept(&req, &opts)
                .unwrap()
                .negotiated
                .subprotocol
                .as_deref(),
            Some("c")
        );
    }

    #[test]
    fn selector_picks_from_the_offer_and_cannot_invent_one() {
        let opts = AcceptOptions::default().select_subprotocol(|offered| {
            assert_eq!(offered, ["chat", "superchat"]);
            Some(offered[1].to_owned())
        });
        let accepted = accept(&request(&[]), &opts).unwrap();
        assert_eq!(
            accepted.negotiated.subprotocol.as_deref(),
            Some("superchat")
        );

        let opts = AcceptOptions::default().select_subprotocol(|_| Some("invented".into()));
        assert_eq!(
            accept(&request(&[]), &opts).unwrap().negotiated.subprotocol,
            None
        );

        let opts = AcceptOptions::default().select_subprotocol(|_| panic!("no offer, no call"));
        let req = request(&[("Sec-WebSocket-Protocol", "")]);
        assert_eq!(accept(&req, &opts).unwrap().negotiated.subprotocol, None);
    }

    #[test]
    fn http_errors_map_to_431_and_400() {
        let r = Rejection::from_http_error(&HttpError::LineTooLong);
        assert_eq!(r.status, 431);
        assert_eq!(parsed(&r).reason, "Request Header Fields Too Large");
        assert_eq!(Rejection::from_http_error(&HttpError::ObsFold).status, 400);
    }

    #[test]
    fn arbitrary_status_rejections() {
        for (status, reason) in [
            (503, "Service Unavailable"),
            (404, "Not Found"),
            (408, "Request Timeout"),
        ] {
            let r = Rejection::new(status);
            let resp = parsed(&r);
            assert_eq!(resp.reason, reason);
            assert!(r.to_string().starts_with(&status.to_string()));
        }
        let r = Rejection::new(503).with_header("Retry-After", "5");
        assert_eq!(parsed(&r).headers.get("retry-after"), Some("5"));
        assert_eq!(
            Rejection::new(405).headers,
            [("Allow".into(), "GET".into())]
        );
    }

    #[test]
    fn http_response_adds_framing_and_drops_unsafe_headers() {
        let bytes = http_response(
            404,
            &[
                ("Content-Type", "text/plain"),
                ("Content-Length", "999"),
                ("Connection", "keep-alive"),
                ("Transfer-Encoding", "chunked"),
                ("X-Injected", "a\r\nEvil: 1"),
                ("Bad Name", "x"),
            ],
            b"nope",
        );
        assert_eq!(
            bytes,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\
Content-Length: 4\r\nConnection: close\r\n\r\nnope"
        );
    }

    #[test]
    fn http_response_204_has_no_body_or_length() {
        assert_eq!(
            http_response(204, &[], b"ignored"),
            b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn http_response_unknown_and_invalid_statuses() {
        assert!(http_response(599, &[], b"").starts_with(b"HTTP/1.1 599 \r\n"));
        assert!(http_response(42, &[], b"").starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
    }

    #[test]
    fn request_followed_by_a_frame_keeps_the_frame() {
        let mut buf = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .into_bytes();
        let frame = [0x89, 0x80, 0, 0, 0, 0]; // a masked empty ping
        buf.extend_from_slice(&frame);
        let (req, n) = parse_request(&buf, &Limits::default()).unwrap().unwrap();
        accept(&req, &AcceptOptions::default()).unwrap();
        assert_eq!(&buf[n..], frame);
    }
}
