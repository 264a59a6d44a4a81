//! The client side of the opening handshake (RFC 6455 §4.1): write the
//! request ([`build_request`]) and check the server's answer
//! ([`verify_response`]).

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use base64::Engine as _;

use super::extensions::{self, AnswerError, DeflateConfig};
use super::http::{is_token, is_valid_header, Response};
use super::target::is_reg_name;
use super::{accept_key, HandshakeError, Negotiated};

/// Headers the handshake writes itself, which a caller may not add.
/// (`Host` may be given: it replaces the one derived from the host and port.)
const RESERVED: [&str; 7] = [
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-accept",
];

/// An opening handshake request: the head to send, and what
/// [`verify_response`] needs to check the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    bytes: Vec<u8>,
    key: String,
    expected_accept: String,
    subprotocols: Vec<String>,
    /// permessage-deflate as offered (`None`: not offered).
    deflate: Option<DeflateConfig>,
}

impl ClientRequest {
    /// The complete request head, ending in CRLF CRLF.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `Sec-WebSocket-Key` sent: base64 of 16 random bytes.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `Sec-WebSocket-Accept` the server must answer with.
    pub fn expected_accept(&self) -> &str {
        &self.expected_accept
    }

    /// The subprotocols offered, in order.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }
}

/// What an opening handshake request asks for (see [`build_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOptions<'a> {
    /// The host (see [`build_request`]).
    pub host: &'a str,
    /// The port; 80 by default.
    pub port: u16,
    /// Whether the URL named the port (then `Host` carries it even when it
    /// is 80).
    pub explicit_port: bool,
    /// Path and query, starting with `/`.
    pub resource: &'a str,
    /// Subprotocols to offer, most preferred first.
    pub subprotocols: &'a [String],
    /// Extra request headers.
    pub headers: &'a [(String, String)],
    /// permessage-deflate to offer (RFC 7692); `None` offers nothing. Needs
    /// the `deflate` feature; without it nothing is offered.
    pub deflate: Option<DeflateConfig>,
}

impl<'a> RequestOptions<'a> {
    /// A request for `resource` on `host`, port 80, with nothing else.
    pub fn new(host: &'a str, resource: &'a str) -> RequestOptions<'a> {
        RequestOptions {
            host,
            port: 80,
            explicit_port: false,
            resource,
            subprotocols: &[],
            headers: &[],
            deflate: None,
        }
    }

    /// Sets the port, as named in the URL (`Host` carries it).
    pub fn port(mut self, port: u16) -> RequestOptions<'a> {
        self.port = port;
        self.explicit_port = true;
        self
    }

    /// Sets the subprotocols to offer.
    pub fn subprotocols(mut self, subprotocols: &'a [String]) -> RequestOptions<'a> {
        self.subprotocols = subprotocols;
        self
    }

    /// Sets the extra request headers.
    pub fn headers(mut self, headers: &'a [(String, String)]) -> RequestOptions<'a> {
        self.headers = headers;
        self
    }

    /// Sets the permessage-deflate offer.
    pub fn deflate(mut self, config: Option<DeflateConfig>) -> RequestOptions<'a> {
        self.deflate = config;
        self
    }
}

/// Writes an opening handshake request (RFC 6455 §4.1) with a fresh random
/// key.
///
/// - `host`: a DNS name (ASCII; IDNs must already be punycode), an IPv4
///   address, or an IPv6 address with or without brackets (brackets are
///   added in `Host`).
/// - `port`, `explicit_port`: `Host` carries `:port` when the port is not the
///   default 80 ("when not using the default port"), or when `explicit_port`
///   says the URL named the port (a URL `ws://h:80/` keeps the `:80` it was
///   written with; RFC 7230 §5.4 allows either form).
/// - `resource`: path and query, starting with `/`. Bytes outside ASCII are
///   percent-encoded, as browsers do; spaces, control characters and `#`
///   (RFC 6455 §3: no fragments) are refused.
/// - `subprotocols`: offered in `Sec-WebSocket-Protocol`, most preferred
///   first; each must be an HTTP token, all distinct.
/// - `headers`: added after the handshake's own (e.g. `Origin`,
///   `Authorization`). Names must be tokens and values free of control
///   characters (no header injection). A `Host` replaces the derived one;
///   `Upgrade`, `Connection` and `Sec-WebSocket-*` are refused.
///
/// ```
/// use rfc6455::handshake::build_request;
///
/// use rfc6455::handshake::RequestOptions;
///
/// let offered = ["chat".to_owned()];
/// let req = build_request(&RequestOptions::new("::1", "/chat").port(9001).subprotocols(&offered)).unwrap();
/// let text = std::str::from_utf8(req.bytes()).unwrap();
/// assert!(text.starts_with("GET /chat HTTP/1.1\r\nHost: [::1]:9001\r\n"));
/// assert!(text.contains(&format!("\r\nSec-WebSocket-Key: {}\r\n", req.key())));
/// assert!(text.ends_with("\r\nSec-WebSocket-Protocol: chat\r\n\r\n"));
/// assert_eq!(req.expected_accept(), rfc6455::handshake::accept_key(req.key().as_bytes()));
/// ```
pub fn build_request(options: &RequestOptions<'_>) -> Result<ClientRequest, HandshakeError> {
    // RFC 6455 §4.1: "a nonce consisting of a randomly selected 16-byte
    // value that has been base64-encoded".
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(HandshakeError::Random)?;
    build_with_nonce(nonce, options)
}

fn build_with_nonce(
    nonce: [u8; 16],
    options: &RequestOptions<'_>,
) -> Result<ClientRequest, HandshakeError> {
    let &RequestOptions {
        host,
        port,
        explicit_port,
        resource,
        subprotocols,
        headers,
        deflate,
    } = options;
    let resource = encode_resource(resource)?;
    let mut host = host_header(host, port, explicit_port)?;
    for (i, p) in subprotocols.iter().enumerate() {
        if !is_token(p.as_bytes()) || subprotocols[..i].contains(p) {
            return Err(HandshakeError::InvalidSubprotocol);
        }
    }
    let mut extra = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let reserved = RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r));
        if reserved || !is_valid_header(name, value) {
            return Err(HandshakeError::InvalidHeader);
        }
        if name.eq_ignore_ascii_case("host") {
            value.clone_into(&mut host);
        } else {
            extra.push((name, value));
        }
    }

    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    let mut head = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = write!(
        head,
        "GET {resource} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\n"
    );
    if !subprotocols.is_empty() {
        let _ = write!(
            head,
            "Sec-WebSocket-Protocol: {}\r\n",
            subprotocols.join(", ")
        );
    }
    // RFC 7692 §5: the offer (only when this build can compress).
    let offer = deflate.as_ref().and_then(extensions::offer);
    if let Some(offer) = &offer {
        let _ = write!(head, "Sec-WebSocket-Extensions: {offer}\r\n");
    }
    for (name, value) in extra {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    Ok(ClientRequest {
        bytes: head.into_bytes(),
        expected_accept: accept_key(key.as_bytes()),
        key,
        subprotocols: subprotocols.to_vec(),
        deflate: offer.and(deflate),
    })
}

/// RFC 6455 §4.1: "A |Host| header field containing the server's authority"
/// — host, plus `:port` "when not using the default port".
fn host_header(host: &str, port: u16, explicit_port: bool) -> Result<String, HandshakeError> {
    let host = match host.strip_prefix('[') {
        Some(inner) => match inner.strip_suffix(']') {
            Some(v6) if v6.parse::<Ipv6Addr>().is_ok() => format!("[{v6}]"),
            _ => return Err(HandshakeError::InvalidHost),
        },
        None if host.contains(':') => {
            host.parse::<Ipv6Addr>()
                .map_err(|_| HandshakeError::InvalidHost)?;
            format!("[{host}]")
        }
        None if is_reg_name(host) => host.to_owned(),
        None => return Err(HandshakeError::InvalidHost),
    };
    if explicit_port || port != 80 {
        Ok(format!("{host}:{port}"))
    } else {
        Ok(host)
    }
}

/// A resource name (RFC 6455 §3: path and query), with bytes outside ASCII
/// percent-encoded.
fn encode_resource(resource: &str) -> Result<String, HandshakeError> {
    if !resource.starts_with('/') {
        return Err(HandshakeError::InvalidResource);
    }
    let mut out = String::with_capacity(resource.len());
    for b in resource.bytes() {
        match b {
            b'#' => return Err(HandshakeError::InvalidResource),
            0x21..=0x7E => out.push(char::from(b)),
            0x80..=0xFF => {
                let _ = write!(out, "%{b:02X}");
            }
            _ => return Err(HandshakeError::InvalidResource),
        }
    }
    Ok(out)
}

/// Checks the server's answer to `request` (RFC 6455 §4.1, "the client MUST
/// validate the server's response as follows") and returns the selected
/// subprotocol, if any.
///
/// The checks, in order: status 101 ([`HandshakeError::NotSwitchingProtocols`]),
/// HTTP/1.1 or a later 1.x, `Upgrade` listing `websocket`, `Connection`
/// listing `upgrade` (both ignoring case), exactly one
/// `Sec-WebSocket-Accept` equal to [`ClientRequest::expected_accept`], no
/// extension (none is offered), and at most one subprotocol, which must be
/// one offered. A server selecting no subprotocol is accepted (RFC 6455
/// §4.2.2 lets it); callers that require one check the returned value.
///
/// ```
/// use rfc6455::handshake::{build_request, parse_response, verify_response, Limits, RequestOptions};
///
/// let req = build_request(&RequestOptions::new("example.com", "/")).unwrap();
/// let answer = format!(
///     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
///      Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
///     req.expected_accept()
/// );
/// let (resp, _) = parse_response(answer.as_bytes(), &Limits::default()).unwrap().unwrap();
/// assert_eq!(verify_response(&resp, &req).unwrap().subprotocol, None);
/// ```
pub fn verify_response(
    response: &Response,
    request: &ClientRequest,
) -> Result<Negotiated, HandshakeError> {
    let headers = &response.headers;
    // 1. "If the status code received from the server is not 101 [...]"
    if response.status != 101 {
        return Err(HandshakeError::NotSwitchingProtocols {
            status: response.status,
        });
    }
    if !response.version.is_http11_or_later_1x() {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    // 2. "If the response lacks an |Upgrade| header field or the |Upgrade|
    //    header field contains a value that is not an ASCII case-insensitive
    //    match for the value "websocket" [...]"
    //    The value itself must match, not merely contain the token.
    let mut upgrades = headers.get_all("upgrade");
    match (upgrades.next(), upgrades.next()) {
        (Some(value), None) if value.trim().eq_ignore_ascii_case("websocket") => {}
        _ => return Err(HandshakeError::NotUpgrade),
    }
    // 3. "If the response lacks a |Connection| header field or the
    //    |Connection| header field doesn't contain a token that is an ASCII
    //    case-insensitive match for the value "Upgrade" [...]"
    if !headers.has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // 4. "If the response lacks a |Sec-WebSocket-Accept| header field or the
    //    |Sec-WebSocket-Accept| contains a value other than the
    //    base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-
    //    Key| (as a string, not base64-decoded) with the string
    //    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and
    //    trailing whitespace [...]" (the parser trimmed it).
    let mut accepts = headers.get_all("sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(a), None) if a == request.expected_accept => {}
        _ => return Err(HandshakeError::BadAccept),
    }
    // 5. "If the response includes a |Sec-WebSocket-Extensions| header
    //    field and this header field indicates the use of an extension that
    //    was not present in the client's handshake [...]"; RFC 7692 §7.1:
    //    invalid permessage-deflate parameters fail the connection too.
    let extensions = match extensions::verify_answer(
        headers.get_all("sec-websocket-extensions"),
        request.deflate.as_ref(),
    ) {
        Ok(accepted) => accepted.into_iter().collect(),
        Err(AnswerError::NotOffered) => return Err(HandshakeError::UnexpectedExtension),
        Err(AnswerError::InvalidParams) => return Err(HandshakeError::InvalidExtensionParams),
    };
    // 6. A subprotocol "that was not present in the client's handshake".
    let mut selected = headers.tokens("sec-websocket-protocol");
    let subprotocol = match (selected.next(), selected.next()) {
        (None, _) => None,
        (Some(p), None) if request.subprotocols.iter().any(|o| o == p) => Some(p.to_owned()),
        _ => return Err(HandshakeError::UnexpectedSubprotocol),
    };
    Ok(Negotiated {
        subprotocol,
        extensions,
    })
}

#[cfg(test)]
mod tests {
    use super::super::http::{parse_request, parse_response, Limits};
    use super::super::server::{accept, AcceptOptions};
    use super::*;

    /// "dGhlIHNhbXBsZSBub25jZQ==", the key of RFC 6455 §1.2.
    const NONCE: [u8; 16] = *b"the sample nonce";

    fn build(
        host: &str,
        port: u16,
        explicit_port: bool,
        resource: &str,
        subprotocols: &[String],
        headers: &[(String, String)],
    ) -> Result<ClientRequest, HandshakeError> {
        let mut options = RequestOptions::new(host, resource)
            .subprotocols(subprotocols)
            .headers(headers);
        (options.port, options.explicit_port) = (port, explicit_port);
        build_request(&options)
    }

    /// What `verify_response` says of the subprotocol.
    fn verify(
        response: &Response,
        request: &ClientRequest,
    ) -> Result<Option<String>, HandshakeError> {
        verify_response(response, request).map(|n| n.subprotocol)
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn sample(subprotocols: &[&str]) -> ClientRequest {
        let offered = strings(subprotocols);
        let headers = [("Origin".into(), "http://example.com".into())];
        let options = RequestOptions::new("server.example.com", "/chat")
            .subprotocols(&offered)
            .headers(&headers);
        build_with_nonce(NONCE, &options).unwrap()
    }

    fn host_of(host: &str, port: u16, explicit: bool) -> Result<String, HandshakeError> {
        let req = build(host, port, explicit, "/", &[], &[])?;
        let (head, _) = parse_request(req.bytes(), &Limits::default())
            .unwrap()
            .unwrap();
        Ok(head.headers.get("host").unwrap().to_owned())
    }

    fn response(headers: &[(&str, &str)]) -> Response {
        response_with("HTTP/1.1 101 Switching Protocols", headers)
    }

    fn response_with(status_line: &str, headers: &[(&str, &str)]) -> Response {
        let mut head = format!("{status_line}\r\n");
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        parse_response(head.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap()
            .0
    }

    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    const GOOD: [(&str, &str); 3] = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT),
    ];

    fn good_with(extra: &[(&str, &str)]) -> Response {
        let mut headers = GOOD.to_vec();
        headers.extend_from_slice(extra);
        response(&headers)
    }

    #[test]
    fn request_matches_rfc_6455_section_1_2_byte_for_byte() {
        let req = sample(&["chat", "superchat"]);
        assert_eq!(req.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(req.expected_accept(), ACCEPT);
        assert_eq!(
            std::str::from_utf8(req.bytes()).unwrap(),
            "GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Origin: http://example.com\r\n\r\n"
        );
    }

    #[test]
    fn no_subprotocols_means_no_protocol_header() {
        let req = sample(&[]);
        assert!(!std::str::from_utf8(req.bytes())
            .unwrap()
            .contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn key_is_random_base64_of_16_bytes() {
        let a = build("h", 80, false, "/", &[], &[]).unwrap();
        let b = build("h", 80, false, "/", &[], &[]).unwrap();
        assert_ne!(a.key(), b.key());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.key())
            .unwrap();
        assert_eq!(decoded.len(), 16);
        assert_eq!(a.expected_accept(), accept_key(a.key().as_bytes()));
    }

    #[test]
    fn host_omits_the_default_port() {
        assert_eq!(host_of("example.com", 80, false).unwrap(), "example.com");
        assert_eq!(host_of("127.0.0.1", 80, false).unwrap(), "127.0.0.1");
    }

    #[test]
    fn host_carries_other_and_explicit_ports() {
        assert_eq!(
            host_of("example.com", 9001, true).unwrap(),
            "example.com:9001"
        );
        assert_eq!(
            host_of("example.com", 9001, false).unwrap(),
            "example.com:9001"
        );
        assert_eq!(host_of("example.com", 80, true).unwrap(), "example.com:80");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(host_of("::1", 80, false).unwrap(), "[::1]");
        assert_eq!(host_of("::1", 9001, true).unwrap(), "[::1]:9001");
        assert_eq!(host_of("[fe80::1]", 8080, true).unwrap(), "[fe80::1]:8080");
    }

    #[test]
    fn invalid_hosts_are_refused() {
        for host in [
            "",
            "a b",
            "a/b",
            "a@b",
            "[::1",
            "[abc]",
            "::zz",
            "h\r\nX: y",
            "é.com",
            "[]",
        ] {
            assert_eq!(
                build(host, 80, false, "/", &[], &[]),
                Err(HandshakeError::InvalidHost),
                "{host:?}"
            );
        }
    }

    #[test]
    fn resource_must_start_with_slash_and_have_no_fragment_or_spaces() {
        for resource in ["", "chat", "/a b", "/a#b", "/a\r\nX: y", "/\x7f"] {
            assert_eq!(
                build("h", 80, false, resource, &[], &[]),
                Err(HandshakeError::InvalidResource),
                "{resource:?}"
            );
        }
    }

    #[test]
    fn non_ascii_resource_is_percent_encoded() {
        let req = build("h", 80, false, "/caf\u{e9}?q=%20", &[], &[]).unwrap();
        assert!(req
            .bytes()
            .starts_with(b"GET /caf%C3%A9?q=%20 HTTP/1.1\r\n"));
    }

    #[test]
    fn subprotocols_must_be_distinct_tokens() {
        for list in [&["a b"][..], &[""], &["a,b"], &["chat", "chat"], &["x\r\n"]] {
            assert_eq!(
                build("h", 80, false, "/", &strings(list), &[]),
                Err(HandshakeError::InvalidSubprotocol),
                "{list:?}"
            );
        }
    }

    #[test]
    fn header_injection_is_refused() {
        for (n, v) in [
            ("X-A", "a\r\nEvil: 1"),
            ("X-A", "a\nb"),
            ("X-A", "a\rb"),
            ("X-A", "a\0b"),
            ("Bad Name", "x"),
            ("Bad:Name", "x"),
            ("", "x"),
        ] {
            assert_eq!(
                build("h", 80, false, "/", &[], &[(n.into(), v.into())]),
                Err(HandshakeError::InvalidHeader),
                "{n:?}: {v:?}"
            );
        }
    }

    #[test]
    fn handshake_headers_cannot_be_overridden_but_host_can() {
        for name in [
            "upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "sec-websocket-extensions",
        ] {
            assert_eq!(
                build("h", 80, false, "/", &[], &[(name.into(), "x".into())]),
                Err(HandshakeError::InvalidHeader),
                "{name}"
            );
        }
        let headers = [("Host".to_owned(), "virtual.example".to_owned())];
        let req = build("127.0.0.1", 8080, true, "/", &[], &headers).unwrap();
        let (head, _) = parse_request(req.bytes(), &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            head.headers.get_all("host").collect::<Vec<_>>(),
            ["virtual.example"]
        );
    }

    #[test]
    fn verify_accepts_a_good_response() {
        assert_eq!(verify(&good_with(&[]), &sample(&[])), Ok(None));
    }

    #[test]
    fn verify_ignores_case() {
        let resp = response(&[
            ("UPGRADE", "WebSocket"),
            ("connection", "keep-alive, upgrade"),
            ("sec-websocket-accept", ACCEPT),
            ("Sec-WebSocket-Protocol", "chat"),
        ]);
        assert_eq!(verify(&resp, &sample(&["chat"])), Ok(Some("chat".into())));
    }

    #[test]
    fn verify_non_101_fails() {
        let resp = response_with("HTTP/1.1 400 Bad Request", &GOOD);
        assert_eq!(
            verify(&resp, &sample(&[])),
            Err(HandshakeError::NotSwitchingProtocols { status: 400 })
        );
        let resp = response_with("HTTP/1.1 200 OK", &GOOD);
        assert_eq!(
            verify(&resp, &sample(&[])),
            Err(HandshakeError::NotSwitchingProtocols { status: 200 })
        );
    }

    #[test]
    fn verify_http_1_0_fails() {
        let resp = response_with("HTTP/1.0 101 Switching Protocols", &GOOD);
        assert_eq!(
            verify(&resp, &sample(&[])),
            Err(HandshakeError::UnsupportedHttpVersion)
        );
    }

    #[test]
    fn verify_missing_upgrade_fails() {
        let resp = response(&GOOD[1..]);
        assert_eq!(verify(&resp, &sample(&[])), Err(HandshakeError::NotUpgrade));
        let resp = response(&[GOOD[1], GOOD[2], ("Upgrade", "h2c")]);
        assert_eq!(verify(&resp, &sample(&[])), Err(HandshakeError::NotUpgrade));
    }

    #[test]
    fn verify_missing_connection_upgrade_fails() {
        let resp = response(&[GOOD[0], GOOD[2], ("Connection", "close")]);
        assert_eq!(
            verify(&resp, &sample(&[])),
            Err(HandshakeError::MissingConnectionUpgrade)
        );
    }

    #[test]
    fn verify_wrong_accept_fails() {
        let wrong = accept_key(b"AAAAAAAAAAAAAAAAAAAAAA==");
        for headers in [
            vec![GOOD[0], GOOD[1], ("Sec-WebSocket-Accept", wrong.as_str())],
            vec![GOOD[0], GOOD[1]],
            vec![GOOD[0], GOOD[1], ("Sec-WebSocket-Accept", "")],
            // Base64 is case-sensitive.
            vec![
                GOOD[0],
                GOOD[1],
                ("Sec-WebSocket-Accept", "S3PPLMBITXAQ9KYGZZHZRBK+XOO="),
            ],
            GOOD.iter().chain(&[GOOD[2]]).copied().collect(),
        ] {
            assert_eq!(
                verify(&response(&headers), &sample(&[])),
                Err(HandshakeError::BadAccept),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn verify_extension_present_fails() {
        let resp = good_with(&[("Sec-WebSocket-Extensions", "permessage-deflate")]);
        assert_eq!(
            verify(&resp, &sample(&[])),
            Err(HandshakeError::UnexpectedExtension)
        );
    }

    #[test]
    fn verify_unoffered_subprotocol_fails() {
        let resp = good_with(&[("Sec-WebSocket-Protocol", "superchat")]);
        assert_eq!(
            verify(&resp, &sample(&["chat"])),
            Err(HandshakeError::UnexpectedSubprotocol)
        );
        // None offered, one selected.
        assert_eq!(
            verify(&resp, &sample(&[])),
            Err(HandshakeError::UnexpectedSubprotocol)
        );
        // Subprotocol names are compared exactly.
        let resp = good_with(&[("Sec-WebSocket-Protocol", "CHAT")]);
        assert_eq!(
            verify(&resp, &sample(&["chat"])),
            Err(HandshakeError::UnexpectedSubprotocol)
        );
    }

    #[test]
    fn verify_more_than_one_subprotocol_fails() {
        let resp = good_with(&[("Sec-WebSocket-Protocol", "chat, superchat")]);
        assert_eq!(
            verify(&resp, &sample(&["chat", "superchat"])),
            Err(HandshakeError::UnexpectedSubprotocol)
        );
    }

    #[test]
    fn verify_no_subprotocol_selected_is_allowed() {
        assert_eq!(verify(&good_with(&[]), &sample(&["chat"])), Ok(None));
    }

    #[test]
    fn round_trip_client_build_server_accept_client_verify() {
        let offered = strings(&["v2.chat", "v1.chat"]);
        let headers = [("Origin".to_owned(), "http://localhost".to_owned())];
        let req = build("localhost", 9001, true, "/ws?x=1", &offered, &headers).unwrap();

        let (head, n) = parse_request(req.bytes(), &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(n, req.bytes().len());
        assert_eq!(head.target, "/ws?x=1");
        let opts = AcceptOptions::default()
            .subprotocols(["v1.chat", "v2.chat"])
            .allow_origins(["http://localhost"]);
        let accepted = accept(&head, &opts).unwrap();
        assert_eq!(accepted.negotiated.subprotocol.as_deref(), Some("v1.chat"));

        // The server's first frame arrives with its head.
        let mut wire = accepted.response.clone();
        wire.extend_from_slice(b"\x81\x02hi");
        let (resp, n) = parse_response(&wire, &Limits::default()).unwrap().unwrap();
        assert_eq!(&wire[n..], b"\x81\x02hi");
        assert_eq!(verify(&resp, &req), Ok(Some("v1.chat".into())));

        // A different request's key does not verify.
        let other = build("localhost", 9001, true, "/ws?x=1", &offered, &headers).unwrap();
        assert_eq!(verify(&resp, &other), Err(HandshakeError::BadAccept));
    }

    #[test]
    fn upgrade_listing_more_than_websocket_is_refused() {
        // RFC 6455 §4.1: the |Upgrade| value must be an ASCII
        // case-insensitive match for "websocket", not a list holding it.
        let request = build("example.com", 80, false, "/", &[], &[]).unwrap();
        for upgrade in ["websocket, h2c", "h2c, websocket", "websockets"] {
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: {upgrade}\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                request.expected_accept
            );
            let (response, _) = crate::handshake::http::parse_response(
                head.as_bytes(),
                &crate::handshake::http::Limits::default(),
            )
            .unwrap()
            .unwrap();
            assert!(
                matches!(verify(&response, &request), Err(HandshakeError::NotUpgrade)),
                "{upgrade}"
            );
        }
    }
}
