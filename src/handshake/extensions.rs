//! Extension negotiation as data (RFC 6455 §9.1) and the permessage-deflate
//! parameters (RFC 7692 §7.1): parse `Sec-WebSocket-Extensions`, pick the
//! first offer a server can honour and write its answer, and check a
//! server's answer on the client side. Pure functions over strings; the
//! compression itself is `protocol::deflate` (feature `deflate`).
//!
//! Without the `deflate` feature a [`DeflateConfig`] may still be set, but
//! nothing is offered or accepted: the connection works exactly as if no
//! compression had been asked for.

use super::http::is_tchar;
use super::ExtensionParams;

/// The extension token of RFC 7692 §7.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// Whether this build can compress: negotiation only ever agrees to what the
/// protocol core can install.
const AVAILABLE: bool = cfg!(feature = "deflate");

/// permessage-deflate settings for one side of a connection (RFC 7692).
/// The same type serves a server (what it accepts) and a client (what it
/// offers); "ours" is the side holding the config, "the peer's" the other.
///
/// The defaults suit thousands of connections, as Python `websockets`
/// chose: 12-bit windows (4 KiB) both ways where the peer allows it,
/// context takeover kept, level 6, every message compressed (as Python
/// `websockets` does; Node `ws` leaves messages under 1 KiB alone: raise
/// [`DeflateConfig::min_size`] for that).
///
/// ```
/// use rfc6455::handshake::DeflateConfig;
/// let config = DeflateConfig::default().window_bits(10).no_context_takeover(true);
/// assert_eq!(config.window_bits, 10);
/// assert!(config.no_context_takeover);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The LZ77 window we compress with, 8–15 (a server's
    /// `server_max_window_bits`, a client's `client_max_window_bits`). The
    /// peer may ask for less; the smaller of the two is used. zlib cannot
    /// compress with 8 bits, so a window of 8 sends messages uncompressed
    /// (RFC 7692 lets any message go uncompressed). Default 12.
    pub window_bits: u8,
    /// The largest window we ask the peer to compress with, 8–15, which is
    /// what our decompressor keeps per connection. A server asks it with
    /// `client_max_window_bits` when the client offered that parameter; a
    /// client asks it with `server_max_window_bits` when below 15.
    /// Default 12 for [`DeflateConfig::default`], 15 for [`DeflateConfig::client`].
    pub peer_window_bits: u8,
    /// Reset our compressor after every message (declared to the peer as
    /// `server_no_context_takeover` / `client_no_context_takeover`): worse
    /// ratio, but nothing is kept between messages. Default false.
    pub no_context_takeover: bool,
    /// Ask the peer to reset its compressor after every message, so that our
    /// decompressor keeps nothing between messages. Default false.
    pub peer_no_context_takeover: bool,
    /// Compression level 0–9. Default 6.
    pub level: u32,
    /// Messages shorter than this go uncompressed. Default 0: everything is
    /// compressed.
    pub min_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            window_bits: 12,
            peer_window_bits: 12,
            no_context_takeover: false,
            peer_no_context_takeover: false,
            level: 6,
            min_size: 0,
        }
    }
}

impl DeflateConfig {
    /// The defaults for a client: as [`DeflateConfig::default`], but it does
    /// not ask the server for a smaller window (a server may decline an
    /// offer with `server_max_window_bits`; a client has few connections).
    ///
    /// ```
    /// assert_eq!(rfc6455::handshake::DeflateConfig::client().peer_window_bits, 15);
    /// ```
    pub fn client() -> DeflateConfig {
        DeflateConfig {
            peer_window_bits: 15,
            ..DeflateConfig::default()
        }
    }

    /// Sets [`DeflateConfig::window_bits`] (clamped to 8–15).
    pub fn window_bits(mut self, bits: u8) -> DeflateConfig {
        self.window_bits = bits.clamp(8, 15);
        self
    }

    /// Sets [`DeflateConfig::peer_window_bits`] (clamped to 8–15).
    pub fn peer_window_bits(mut self, bits: u8) -> DeflateConfig {
        self.peer_window_bits = bits.clamp(8, 15);
        self
    }

    /// Sets [`DeflateConfig::no_context_takeover`].
    pub fn no_context_takeover(mut self, on: bool) -> DeflateConfig {
        self.no_context_takeover = on;
        self
    }

    /// Sets [`DeflateConfig::peer_no_context_takeover`].
    pub fn peer_no_context_takeover(mut self, on: bool) -> DeflateConfig {
        self.peer_no_context_takeover = on;
        self
    }

    /// Sets [`DeflateConfig::level`] (clamped to 0–9).
    pub fn level(mut self, level: u32) -> DeflateConfig {
        self.level = level.min(9);
        self
    }

    /// Sets [`DeflateConfig::min_size`].
    pub fn min_size(mut self, bytes: usize) -> DeflateConfig {
        self.min_size = bytes;
        self
    }
}

/// What permessage-deflate was agreed for a connection, role-neutral: the
/// protocol core builds its compressor and decompressor from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// Window our compressor may use (8–15; 8 means "send uncompressed").
    pub compress_window_bits: u8,
    /// Window the peer compresses with, which our decompressor needs.
    pub decompress_window_bits: u8,
    /// Reset our compressor after each message.
    pub compress_reset: bool,
    /// The peer resets after each message: our decompressor may too.
    pub decompress_reset: bool,
}

impl DeflateParams {
    /// Reads the agreed parameters from a permessage-deflate element of the
    /// server's answer (as [`negotiate`] wrote it or [`verify_answer`] checked
    /// it), for the side `is_server`.
    ///
    /// ```
    /// use rfc6455::handshake::extensions::{parse, DeflateParams};
    /// let answer = parse(["permessage-deflate; server_max_window_bits=10"]).unwrap();
    /// let server = DeflateParams::from_answer(&answer[0], true).unwrap();
    /// assert_eq!(server.compress_window_bits, 10);
    /// let client = DeflateParams::from_answer(&answer[0], false).unwrap();
    /// assert_eq!(client.decompress_window_bits, 10);
    /// ```
    pub fn from_answer(answer: &ExtensionParams, is_server: bool) -> Option<DeflateParams> {
        if !answer.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
            return None;
        }
        let p = Params::read(answer, true)?;
        let server_bits = p.server_max_window_bits.unwrap_or(15);
        let client_bits = p.client_max_window_bits.flatten().unwrap_or(15);
        let (ours, theirs, our_reset, their_reset) = if is_server {
            (
                server_bits,
                client_bits,
                p.server_no_context_takeover,
                p.client_no_context_takeover,
            )
        } else {
            (
                client_bits,
                server_bits,
                p.client_no_context_takeover,
                p.server_no_context_takeover,
            )
        };
        Some(DeflateParams {
            compress_window_bits: ours,
            decompress_window_bits: theirs,
            compress_reset: our_reset,
            decompress_reset: their_reset,
        })
    }
}

/// Parses the values of every `Sec-WebSocket-Extensions` header (repeated
/// headers are one list, RFC 7230 §3.2.2) per RFC 6455 §9.1:
///
/// ```text
/// extension-list = 1#extension
/// extension = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
/// ```
///
/// A quoted value must be a token once unescaped (§9.1). `None` if any
/// element is malformed.
///
/// ```
/// use rfc6455::handshake::extensions::parse;
/// let list = parse(["permessage-deflate; client_max_window_bits, x-foo",
///                   "permessage-deflate; server_max_window_bits=\"10\""]).unwrap();
/// assert_eq!(list.len(), 3);
/// assert_eq!(list[0].params, [("client_max_window_bits".to_string(), None)]);
/// assert_eq!(list[2].params[0].1.as_deref(), Some("10"));
/// ```
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Vec<ExtensionParams>> {
    let mut list = Vec::new();
    for value in values {
        let mut p = Cursor {
            s: value.as_bytes(),
            i: 0,
        };
        loop {
            p.skip_ws();
            if p.eat(b',') {
                // RFC 7230 §7: empty list elements are allowed and ignored.
                continue;
            }
            if p.done() {
                break;
            }
            let name = p.token()?;
            let mut params = Vec::new();
            loop {
                p.skip_ws();
                if !p.eat(b';') {
                    break;
                }
                p.skip_ws();
                let key = p.token()?;
                p.skip_ws();
                let value = if p.eat(b'=') {
                    p.skip_ws();
                    Some(if p.peek() == Some(b'"') {
                        p.quoted()?
                    } else {
                        p.token()?
                    })
                } else {
                    None
                };
                params.push((key, value));
            }
            list.push(ExtensionParams { name, params });
            p.skip_ws();
            if !p.done() && !p.eat(b',') {
                return None;
            }
        }
    }
    Some(list)
}

/// Writes a list of extensions as a header value.
///
/// ```
/// use rfc6455::handshake::extensions::{parse, write};
/// let list = parse(["permessage-deflate; server_max_window_bits=10; client_no_context_takeover"]).unwrap();
/// assert_eq!(write(&list), "permessage-deflate; server_max_window_bits=10; client_no_context_takeover");
/// ```
pub fn write(list: &[ExtensionParams]) -> String {
    let mut out = String::new();
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&e.name);
        for (k, v) in &e.params {
            out.push_str("; ");
            out.push_str(k);
            if let Some(v) = v {
                out.push('=');
                out.push_str(v);
            }
        }
    }
    out
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// RFC 7230 §3.2.6 quoted-string; RFC 6455 §9.1: the unescaped value
    /// MUST be a token.
    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut value = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    self.i += 1;
                    value.push(self.peek()?);
                    self.i += 1;
                }
                b => {
                    value.push(b);
                    self.i += 1;
                }
            }
        }
        (!value.is_empty() && value.iter().copied().all(is_tchar))
            .then(|| String::from_utf8_lossy(&value).into_owned())
    }
}

/// The four parameters of RFC 7692 §7.1, read from one element.
#[derive(Debug, Default, Clone, Copy)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in an offer only).
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    /// `None` if a parameter is unknown, repeated or has an invalid value
    /// (RFC 7692 §7.1: such an offer is declined; such an answer fails).
    fn read(e: &ExtensionParams, answer: bool) -> Option<Params> {
        let mut p = Params::default();
        let mut seen = [false; 4];
        for (key, value) in &e.params {
            let index = match key.as_str() {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return None,
            };
            if std::mem::replace(&mut seen[index], true) {
                return None;
            }
            match (index, value) {
                (0, None) => p.server_no_context_takeover = true,
                (1, None) => p.client_no_context_takeover = true,
                (2, Some(v)) => p.server_max_window_bits = Some(window_bits(v)?),
                // §7.1.2.2: in an offer the value may be absent; in an answer
                // it must be there.
                (3, None) if !answer => p.client_max_window_bits = Some(None),
                (3, Some(v)) => p.client_max_window_bits = Some(Some(window_bits(v)?)),
                _ => return None,
            }
        }
        Some(p)
    }
}

/// RFC 7692 §7.1.2: "a decimal integer value between 8 to 15, inclusive",
/// written `%x38-39 / "1" %x30-35` (no leading zero, no sign).
fn window_bits(v: &str) -> Option<u8> {
    match v.as_bytes() {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// The server's side (RFC 7692 §5, §7.1): among the offers in the request's
/// `Sec-WebSocket-Extensions` values, accepts the first permessage-deflate
/// offer whose parameters are all known, unrepeated and valid, and returns
/// the answer element to send (with the parameters it will use). An invalid
/// offer is declined and the next one considered. `None`: nothing accepted
/// (also when the `deflate` feature is off).
///
/// ```
/// use rfc6455::handshake::extensions::{negotiate, write};
/// use rfc6455::handshake::DeflateConfig;
/// let offers = ["permessage-deflate; server_max_window_bits=7, permessage-deflate; client_max_window_bits"];
/// if let Some(answer) = negotiate(offers, &DeflateConfig::default()) {
///     // The first offer is invalid (7 is not a window size) and declined.
///     assert_eq!(write(&[answer]), "permessage-deflate; client_max_window_bits=12");
/// }
/// ```
pub fn negotiate<'a>(
    values: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<ExtensionParams> {
    if !AVAILABLE {
        return None;
    }
    // A malformed header is treated as no offer: the connection goes on
    // without compression (RFC 6455 §9.1 lets a server accept none).
    let offers = parse(values)?;
    offers
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .find_map(|offer| answer_offer(offer, config))
}

fn answer_offer(offer: &ExtensionParams, config: &DeflateConfig) -> Option<ExtensionParams> {
    let p = Params::read(offer, false)?;
    let mut params: Vec<(String, Option<String>)> = Vec::new();
    // §7.1.1.1: a client asking for server_no_context_takeover is honoured
    // (we can always reset), and we may declare it on our own.
    if p.server_no_context_takeover || config.no_context_takeover {
        params.push(("server_no_context_takeover".into(), None));
    }
    // §7.1.1.2: the server may always ask the client not to keep context;
    // when the client offered it already, answering with it costs the client
    // nothing and lets our decompressor drop its state between messages.
    if config.peer_no_context_takeover || p.client_no_context_takeover {
        params.push(("client_no_context_takeover".into(), None));
    }
    // §7.1.2.1: answer with the same or a smaller value. We compress with
    // min(ours, theirs); a window of 8 makes our encoder send messages
    // uncompressed, which the RFC allows, so the offer need not be declined.
    if let Some(theirs) = p.server_max_window_bits {
        let bits = theirs.min(config.window_bits);
        params.push(("server_max_window_bits".into(), Some(bits.to_string())));
    }
    // §7.1.2.2: only if the client offered it may we limit its window; then
    // our decompressor needs no more than we answer.
    if let Some(theirs) = p.client_max_window_bits {
        let bits = theirs.unwrap_or(15).min(config.peer_window_bits);
        params.push(("client_max_window_bits".into(), Some(bits.to_string())));
    }
    Some(ExtensionParams {
        name: PERMESSAGE_DEFLATE.into(),
        params,
    })
}

/// The client's offer (RFC 7692 §7.1) for `config`, as a header value;
/// `None` when the `deflate` feature is off.
///
/// Unless `config` gives up context takeover anyway, a second offer follows
/// the first, the same plus `client_no_context_takeover`: a server that
/// only accepts clients that reset their compressor (to save its own
/// decompressor's memory; Autobahn's cases 13.2, 13.5 and 13.6 model one)
/// can take that one, while any other server takes the first (RFC 7692 §5:
/// offers in order of preference). The answer's parameters say which rules
/// apply, whichever offer was taken.
///
/// ```
/// use rfc6455::handshake::extensions::offer;
/// use rfc6455::handshake::DeflateConfig;
/// if let Some(value) = offer(&DeflateConfig::client()) {
///     assert_eq!(
///         value,
///         "permessage-deflate; client_max_window_bits=12, \
///          permessage-deflate; client_no_context_takeover; client_max_window_bits=12"
///     );
/// }
/// let strict = DeflateConfig::client().no_context_takeover(true);
/// if let Some(value) = offer(&strict) {
///     assert_eq!(value, "permessage-deflate; client_no_context_takeover; client_max_window_bits=12");
/// }
/// ```
pub fn offer(config: &DeflateConfig) -> Option<String> {
    if !AVAILABLE {
        return None;
    }
    let one = |no_context_takeover: bool| {
        let mut params: Vec<(String, Option<String>)> = Vec::new();
        if config.peer_no_context_takeover {
            params.push(("server_no_context_takeover".into(), None));
        }
        // §7.1.1.2: a hint that we will not use context takeover.
        if no_context_takeover {
            params.push(("client_no_context_takeover".into(), None));
        }
        if config.peer_window_bits < 15 {
            let bits = config.peer_window_bits.to_string();
            params.push(("server_max_window_bits".into(), Some(bits)));
        }
        // §7.1.2.2: always say we can take a limit on our own window; with a
        // value, it is a hint of the window we will use anyway.
        let ours = (config.window_bits < 15).then(|| config.window_bits.to_string());
        params.push(("client_max_window_bits".into(), ours));
        ExtensionParams {
            name: PERMESSAGE_DEFLATE.into(),
            params,
        }
    };
    let mut offers = vec![one(config.no_context_takeover)];
    if !config.no_context_takeover {
        offers.push(one(true));
    }
    Some(write(&offers))
}

/// Why a server's `Sec-WebSocket-Extensions` answer is refused by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// An extension that was not offered (or more than one).
    NotOffered,
    /// permessage-deflate with an unknown, repeated or invalid parameter, or
    /// one that contradicts the offer (RFC 7692 §7.1: "the client MUST
    /// _Fail the WebSocket Connection_").
    InvalidParams,
}

/// The client's check of the server's answer (RFC 6455 §9.1, RFC 7692
/// §7.1): `Ok(None)` if no extension is in use, `Ok(Some(element))` if
/// permessage-deflate was accepted with valid parameters consistent with
/// what `offered` (`None`: nothing was offered) asked for.
///
/// ```
/// use rfc6455::handshake::extensions::{verify_answer, AnswerError};
/// use rfc6455::handshake::DeflateConfig;
/// let cfg = DeflateConfig::client();
/// assert_eq!(verify_answer(["x-unknown"], Some(&cfg)), Err(AnswerError::NotOffered));
/// assert_eq!(verify_answer([], None), Ok(None));
/// ```
pub fn verify_answer<'a>(
    values: impl IntoIterator<Item = &'a str>,
    offered: Option<&DeflateConfig>,
) -> Result<Option<ExtensionParams>, AnswerError> {
    let list = parse(values).ok_or(AnswerError::InvalidParams)?;
    let Some(first) = list.first() else {
        return Ok(None);
    };
    let offered = match offered {
        Some(c) if AVAILABLE => c,
        _ => return Err(AnswerError::NotOffered),
    };
    if list.len() > 1 || !first.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return Err(AnswerError::NotOffered);
    }
    let p = Params::read(first, true).ok_or(AnswerError::InvalidParams)?;
    // §7.1.1.1: asked for server_no_context_takeover, the server must answer
    // with it (or decline the whole offer).
    if offered.peer_no_context_takeover && !p.server_no_context_takeover {
        return Err(AnswerError::InvalidParams);
    }
    // §7.1.2.1: the same or a smaller value than offered.
    if let Some(bits) = p.server_max_window_bits {
        if offered.peer_window_bits < 15 && bits > offered.peer_window_bits {
            return Err(AnswerError::InvalidParams);
        }
    } else if offered.peer_window_bits < 15 {
        // §7.1.2.1: an accepted offer with this parameter is answered with it.
        return Err(AnswerError::InvalidParams);
    }
    // We always offer client_max_window_bits, so any valid value may come
    // back (a value is a limit on our window; no value is not allowed).
    Ok(Some(first.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<ExtensionParams> {
        parse([s]).unwrap()
    }

    #[test]
    fn parses_offers_params_and_quoted_values() {
        let l = p("a; x=1; y, b ;z=\"q\" ,, c");
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].params.len(), 2);
        assert_eq!(l[1].params, [("z".into(), Some("q".into()))]);
        assert!(l[2].params.is_empty());
    }

    #[test]
    fn malformed_headers_do_not_parse() {
        for bad in [
            "a;",
            "a; =1",
            "a; x=",
            "a; x=\"\"",
            "a; x=\"a b\"",
            "a b",
            "a; x=\"1",
        ] {
            assert!(parse([bad]).is_none(), "{bad}");
        }
    }

    #[test]
    fn window_bits_values() {
        assert_eq!(window_bits("8"), Some(8));
        assert_eq!(window_bits("15"), Some(15));
        for bad in ["7", "16", "08", "+9", "", "9 "] {
            assert_eq!(window_bits(bad), None, "{bad}");
        }
    }

    #[test]
    fn params_reject_unknown_repeated_and_valueless_answers() {
        let read = |s: &str, answer| Params::read(&p(s)[0], answer);
        assert!(read("permessage-deflate; foo", false).is_none());
        assert!(read(
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            false
        )
        .is_none());
        assert!(read("permessage-deflate; server_no_context_takeover=1", false).is_none());
        assert!(read("permessage-deflate; server_max_window_bits", false).is_none());
        assert!(read("permessage-deflate; client_max_window_bits", false).is_some());
        assert!(read("permessage-deflate; client_max_window_bits", true).is_none());
    }
}
