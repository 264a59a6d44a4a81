//! The client's way through an HTTP proxy: a `CONNECT` tunnel (RFC 9110
//! §9.3.6), with basic authentication from the proxy URL, and the
//! conventional `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` variables.

use super::{read_head, ReadError};
use crate::error::ProxyError;
use crate::error::{Error, Result};
use crate::handshake::http::{parse_response, Limits, Response};
use crate::handshake::{HeadError, HeadParser, HeadReader};
use base64::Engine;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A proxy's head is small; anything bigger is not a proxy we can talk to.
/// Bounded so that a hostile "proxy" cannot make us buffer without end.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// A parsed `http://[user:password@]host[:port]` proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `Basic` credentials, base64 of `user:password` (percent-decoded).
    auth: Option<String>,
}

fn refused(message: String) -> Error {
    Error::Proxy(ProxyError {
        status: None,
        message,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Proxy {
    /// Parses a proxy URL. The scheme may be left out (`host:port`, as in
    /// many environments); only `http://` proxies are supported. The port
    /// defaults to 80.
    pub(crate) fn parse(url: &str) -> Result<Proxy> {
        let bad = |why: &str| refused(format!("invalid proxy URL {url:?}: {why}"));
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return Err(bad("only http:// proxies are supported")),
            None => url,
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let auth = match userinfo {
            Some(u) => {
                let decoded =
                    percent_decode(u).ok_or_else(|| bad("bad %-escape in credentials"))?;
                let decoded = if decoded.contains(':') {
                    decoded
                } else {
                    format!("{decoded}:")
                };
                Some(base64::engine::general_purpose::STANDARD.encode(decoded))
            }
            None => None,
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
            None => 80,
        };
        Ok(Proxy {
            host: host.to_owned(),
            port,
            auth,
        })
    }

    /// Opens a TCP connection to the proxy and asks it for a tunnel to
    /// `host:port`. The proxy's answer is read under `deadline` and at most
    /// `MAX_PROXY_HEAD` bytes (or the limits' head size, if smaller).
    pub(crate) fn tunnel(
        &self,
        host: &str,
        port: u16,
        connect_timeout: Duration,
        deadline: Instant,
        limits: &Limits,
    ) -> Result<TcpStream> {
        let mut stream = connect(&self.host, self.port, connect_timeout).map_err(|e| {
            refused(format!(
                "cannot connect to proxy {}:{}: {e}",
                self.host, self.port
            ))
        })?;
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(auth) = &self.auth {
            request.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        let limits = Limits {
            max_head: limits.max_head.min(MAX_PROXY_HEAD),
            ..limits.clone()
        };
        let parser: HeadParser<Response> = parse_response;
        let mut head = (HeadReader::new(limits), parser);
        let response = read_head(&mut stream, &mut head, deadline).map_err(|e| {
            refused(match e {
                ReadError::Timeout => "no answer to CONNECT from the proxy in time".into(),
                ReadError::Eof => "the proxy closed the connection after CONNECT".into(),
                ReadError::Head(HeadError::TooLarge) => {
                    "the proxy's answer to CONNECT is too large".into()
                }
                ReadError::Io(e) => format!("reading the proxy's answer to CONNECT: {e}"),
                ReadError::Head(HeadError::Parse(e)) => {
                    format!("the proxy's answer to CONNECT is not HTTP: {e}")
                }
            })
        })?;
        let leftover = head.0.take_leftover();
        if !(200..300).contains(&response.status) {
            let why = match response.status {
                407 => "the proxy requires authentication (put user:password in the proxy URL)",
                403 => "the proxy does not allow this destination",
                502 => "the proxy could not reach the host",
                504 => "the proxy timed out reaching the host",
                _ => "the proxy refused the tunnel",
            };
            return Err(Error::Proxy(ProxyError {
                status: Some(response.status),
                message: format!(
                    "CONNECT {target} via {}:{}: {} {}: {why}",
                    self.host, self.port, response.status, response.reason
                ),
            }));
        }
        if !leftover.is_empty() {
            // Nothing may come before our own first bytes through the tunnel.
            return Err(refused(
                "the proxy sent data after its answer to CONNECT".into(),
            ));
        }
        Ok(stream)
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host resolved to no address")))
}

/// The proxy URL the environment asks for to reach `host`: `HTTPS_PROXY`
/// for `wss://`, `HTTP_PROXY` for `ws://` (lower-case names first, as curl
/// reads them), unless `NO_PROXY` lists the host. `var` reads a variable.
pub(crate) fn from_env(
    host: &str,
    tls: bool,
    var: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let get = |name: &str| {
        var(&name.to_ascii_lowercase())
            .or_else(|| var(name))
            .filter(|v| !v.trim().is_empty())
    };
    let proxy = if tls {
        get("HTTPS_PROXY")
    } else {
        get("HTTP_PROXY")
    }
    .or_else(|| get("ALL_PROXY"))?;
    match get("NO_PROXY") {
        Some(list) if no_proxy_matches(&list, host) => None,
        _ => Some(proxy),
    }
}

/// Whether a `NO_PROXY` list (comma separated; `*` for all; a name matches
/// itself and its subdomains, with or without a leading dot; ports ignored)
/// covers `host`.
pub(crate) fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    list.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry
            .strip_prefix('[')
            .map_or(entry, |e| e.split_once(']').map_or(e, |(h, _)| h));
        // Strip a port, but not from a bare IPv6 address.
        let entry = match entry.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => entry,
        };
        let entry = entry.trim_start_matches('.').to_ascii_lowercase();
        !entry.is_empty()
            && (host == entry
                || host
                    .strip_suffix(&entry)
                    .is_some_and(|prefix| prefix.ends_with('.')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_url_with_credentials_and_default_port() {
        let p = Proxy::parse("http://us%40er:pa%3Ass@proxy.local/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.local", 80));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(p.auth.unwrap())
            .unwrap();
        assert_eq!(decoded, b"us@er:pa:ss");
        let p = Proxy::parse("[::1]:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.auth), ("::1", 3128, None));
        assert!(Proxy::parse("https://proxy:443").is_err());
        assert!(Proxy::parse("http://:8080").is_err());
    }

    #[test]
    fn no_proxy_list() {
        assert!(no_proxy_matches(
            "localhost, .example.com",
            "api.example.com"
        ));
        assert!(no_proxy_matches("example.com:443", "example.com"));
        assert!(no_proxy_matches("*", "anything"));
        assert!(no_proxy_matches("::1,127.0.0.1", "::1"));
        assert!(!no_proxy_matches("example.com", "badexample.com"));
        assert!(!no_proxy_matches("", "example.com"));
    }

    #[test]
    fn environment_picks_by_scheme_and_honours_no_proxy() {
        let env = |name: &str| match name {
            "https_proxy" => Some("http://secure:1".to_owned()),
            "HTTP_PROXY" => Some("http://plain:2".to_owned()),
            "NO_PROXY" => Some("internal.test".to_owned()),
            _ => None,
        };
        assert_eq!(
            from_env("a.test", true, env).as_deref(),
            Some("http://secure:1")
        );
        assert_eq!(
            from_env("a.test", false, env).as_deref(),
            Some("http://plain:2")
        );
        assert_eq!(from_env("x.internal.test", true, env), None);
    }
}
