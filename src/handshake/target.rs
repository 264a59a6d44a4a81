//! What a server routes on in a [`Request`]: the path and query of its
//! target in any of the forms of RFC 9112 §3.2, the `Host` rule, and the
//! method's meaning for plain HTTP beside WebSockets (RFC 9110 §9.3.2:
//! `HEAD`).
//!
//! The target is kept as sent ([`Request::target`]); these accessors read it,
//! so a handler compares `request.path()` with `"/ws"` whether the client
//! sent `GET /ws?room=1` (origin-form) or `GET http://host:8080/ws?room=1`
//! (absolute-form, which RFC 9112 §3.2.2 says a server MUST accept and which
//! proxies send).

use super::http::Request;
use super::HandshakeError;
use std::net::Ipv6Addr;

impl Request {
    /// The path of the request target, percent-encoding kept (so `%2F`
    /// stays distinct from `/`), without query or fragment:
    ///
    /// - origin-form `/chat?room=1` → `/chat`;
    /// - absolute-form `http://example.com:8080/chat?room=1` → `/chat`, and
    ///   `/` when it has no path (RFC 9110 §4.2.3: an empty path is `/`);
    /// - asterisk-form `*` (`OPTIONS *`) and authority-form
    ///   (`CONNECT host:443`) → the target itself.
    ///
    /// ```
    /// let head = b"GET http://example.com:8080/ws?room=a%20b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
    /// let (req, _) = rfc6455::handshake::parse_request(head, &Default::default()).unwrap().unwrap();
    /// assert_eq!(req.path(), "/ws");
    /// assert_eq!(req.raw_query(), Some("room=a%20b"));
    /// assert_eq!(req.query_param("room").as_deref(), Some("a b"));
    /// ```
    pub fn path(&self) -> &str {
        split_target(&self.target).0
    }

    /// The query of the request target as sent (after `?`, before any `#`),
    /// if it has one.
    pub fn raw_query(&self) -> Option<&str> {
        split_target(&self.target).1
    }

    /// The query's `name=value` pairs in order, decoded as HTML forms encode
    /// them (`application/x-www-form-urlencoded`: `+` is a space, `%XX` a
    /// byte; bytes that are not UTF-8 become U+FFFD). Empty pairs are
    /// skipped; a pair without `=` has an empty value.
    ///
    /// ```
    /// let head = b"GET /receive?msg=hi+there&room=caf%C3%A9&flag HTTP/1.1\r\nHost: h\r\n\r\n";
    /// let (req, _) = rfc6455::handshake::parse_request(head, &Default::default()).unwrap().unwrap();
    /// let pairs: Vec<_> = req.query().collect();
    /// assert_eq!(pairs[0], ("msg".to_string(), "hi there".to_string()));
    /// assert_eq!(pairs[1].1, "café");
    /// assert_eq!(pairs[2], ("flag".to_string(), String::new()));
    /// ```
    pub fn query(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.raw_query()
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(name), form_decode(value))
            })
    }

    /// The decoded value of the first query parameter named `name` (see
    /// [`Request::query`]).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The value of the first header field named `name`, compared ignoring
    /// ASCII case (the same as `request.headers.get(name)`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Whether the method is `HEAD`.
    ///
    /// RFC 9110 §9.3.2: HEAD "is identical to GET except that the server
    /// MUST NOT send content in the response". A server's HTTP handler
    /// ([`ServerConfig::http_handler`](crate::ServerConfig::http_handler))
    /// is called for HEAD as for GET, with `method` left as `"HEAD"`; the
    /// server sends only the head of its answer. HEAD is a safe method
    /// (§9.2.1): a handler whose GET changes something (a trigger such as
    /// `GET /send?msg=…`) checks this first and changes nothing.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// `(path, query)` of a request target; see [`Request::path`].
fn split_target(target: &str) -> (&str, Option<&str>) {
    // A fragment is never sent (RFC 9112 §3.2); if one is, it is not part
    // of the path or the query.
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let rest = if target.starts_with('/') {
        target
    } else if let Some(after_authority) = after_scheme_and_authority(target) {
        after_authority
    } else {
        return (target, None);
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    (if path.is_empty() { "/" } else { path }, query)
}

/// For an absolute URI (`scheme "://" authority path-abempty [ "?" query ]`,
/// RFC 3986 §3), what follows the authority; `None` for anything else.
fn after_scheme_and_authority(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    let mut chars = scheme.bytes();
    let first_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic());
    if !first_ok || !chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(&rest[end..])
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is
/// a space, `%XX` is a byte, and a `%` not followed by two hex digits stays.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|&b| (b as char).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
/// code to any HTTP/1.1 request message that lacks a Host header field and
/// to any request message that contains more than one Host header field
/// line or a Host header field with an invalid field value." For an
/// absolute-form target the `Host` is still required, though the target's
/// authority wins (§3.2.2). HTTP/1.0 requests may go without one.
pub(crate) fn check_host(request: &Request) -> Result<(), HandshakeError> {
    let mut hosts = request.headers.get_all("host");
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(HandshakeError::DuplicateHeader("Host")),
        (Some(host), None) if !is_host_value(host) => Err(HandshakeError::InvalidHostHeader),
        (Some(_), None) => Ok(()),
        (None, _) if request.version.is_http11_or_later_1x() => Err(HandshakeError::MissingHost),
        (None, _) => Ok(()),
    }
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), with a non-empty host
/// (§4.2.1: an "http" URI with an empty host is invalid).
fn is_host_value(value: &str) -> bool {
    let (host, port) = match value.strip_prefix('[') {
        Some(inner) => match inner.split_once(']') {
            Some((v6, rest)) if v6.parse::<Ipv6Addr>().is_ok() => {
                return rest.is_empty()
                    || rest
                        .strip_prefix(':')
                        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
            }
            _ => return false,
        },
        None => value.rsplit_once(':').unwrap_or((value, "")),
    };
    is_reg_name(host) && port.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 3986 §3.2.2 `reg-name` (which includes IPv4 addresses), non-empty.
pub(crate) fn is_reg_name(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::super::http::{parse_request, Limits};
    use super::*;

    fn req(line: &str, headers: &str) -> Request {
        let head = format!("{line}\r\n{headers}\r\n");
        parse_request(head.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap()
            .0
    }

    fn target(t: &str) -> Request {
        req(&format!("GET {t} HTTP/1.1"), "Host: h\r\n")
    }

    #[test]
    fn origin_form_path_and_query() {
        let r = target("/chat?room=1&x=2");
        assert_eq!((r.path(), r.raw_query()), ("/chat", Some("room=1&x=2")));
        let r = target("/");
        assert_eq!((r.path(), r.raw_query()), ("/", None));
        let r = target("/a%2Fb?");
        assert_eq!((r.path(), r.raw_query()), ("/a%2Fb", Some("")));
        let r = target("/p#frag?no");
        assert_eq!((r.path(), r.raw_query()), ("/p", None));
    }

    #[test]
    fn absolute_form_routes_on_its_path() {
        for (t, path, query) in [
            ("http://127.0.0.1:9001/ws?room=a", "/ws", Some("room=a")),
            ("ws://example.com/chat", "/chat", None),
            ("HTTPS://example.com", "/", None),
            ("http://example.com?q=1", "/", Some("q=1")),
            ("http://user@[::1]:80/x/y", "/x/y", None),
        ] {
            let r = target(t);
            assert_eq!((r.path(), r.raw_query()), (path, query), "{t}");
        }
    }

    #[test]
    fn asterisk_and_authority_forms_are_their_own_path() {
        let r = req("OPTIONS * HTTP/1.1", "Host: h\r\n");
        assert_eq!((r.path(), r.raw_query()), ("*", None));
        let r = req("CONNECT example.com:443 HTTP/1.1", "Host: h\r\n");
        assert_eq!(r.path(), "example.com:443");
        // Not a scheme: a digit first.
        assert_eq!(target("1a://x/y").path(), "1a://x/y");
    }

    #[test]
    fn query_pairs_are_form_decoded() {
        let r = target("/r?msg=a+b%21&&empty=&bare&bad=%zz%4&utf8=%C3%A9&raw=%ff");
        let pairs: Vec<(String, String)> = r.query().collect();
        let expect = [
            ("msg", "a b!"),
            ("empty", ""),
            ("bare", ""),
            ("bad", "%zz%4"),
            ("utf8", "é"),
            ("raw", "\u{fffd}"),
        ];
        assert_eq!(pairs.len(), expect.len());
        for ((n, v), (en, ev)) in pairs.iter().zip(expect) {
            assert_eq!((n.as_str(), v.as_str()), (en, ev));
        }
        assert_eq!(r.query_param("msg").as_deref(), Some("a b!"));
        assert_eq!(r.query_param("nope"), None);
        assert_eq!(target("/r").query().count(), 0);
        // A key is decoded too.
        assert_eq!(
            target("/r?a%20b=1").query_param("a b").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn header_lookup_ignores_case_and_head_is_head() {
        let r = req("HEAD / HTTP/1.1", "Host: h\r\nX-Thing: v\r\n");
        assert_eq!(r.header("x-thing"), Some("v"));
        assert_eq!(r.header("X-THING"), Some("v"));
        assert!(r.is_head());
        assert!(!target("/").is_head());
    }

    #[test]
    fn host_exactly_once_and_valid() {
        let ok = |h: &str| check_host(&req("GET / HTTP/1.1", &format!("Host: {h}\r\n")));
        for good in [
            "example.com",
            "example.com:8080",
            "127.0.0.1:9001",
            "[::1]",
            "[::1]:80",
            "h:",
        ] {
            assert_eq!(ok(good), Ok(()), "{good}");
        }
        for bad in ["", "a b", "a/b", "[::1", "[zz]:1", "h:x", "[::1]x", "a@b"] {
            assert_eq!(ok(bad), Err(HandshakeError::InvalidHostHeader), "{bad:?}");
        }
        let none = req("GET / HTTP/1.1", "");
        assert_eq!(check_host(&none), Err(HandshakeError::MissingHost));
        let two = req("GET / HTTP/1.1", "Host: a\r\nhost: a\r\n");
        assert_eq!(
            check_host(&two),
            Err(HandshakeError::DuplicateHeader("Host"))
        );
        // HTTP/1.0 need not send one, but may not send two.
        assert_eq!(check_host(&req("GET / HTTP/1.0", "")), Ok(()));
        let two = req("GET / HTTP/1.0", "Host: a\r\nHost: b\r\n");
        assert!(check_host(&two).is_err());
    }
}
