//! The grammar of an HTTP/1.x head (RFC 7230 §3, §3.2, §2.6): lines ended
//! by CRLF within the caps, tokens, field values, start lines. Slices only:
//! nothing is copied until a head is complete.

use super::{Headers, HttpError, Limits, Version};

/// RFC 7230 §3.2.6: `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 7230 §3.2.6: `token = 1*tchar`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// RFC 7230 §3.2: a field value byte (`VCHAR / obs-text`, plus the spaces
/// and tabs between words). Everything else is a control character.
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7F)
}

/// RFC 7230 §3.2.3: `OWS = *( SP / HTAB )`.
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(super) fn is_ows_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Yields the lines of a head, each without its CRLF, enforcing the caps on
/// line length and head size on incomplete input too.
struct Lines<'a> {
    /// The input, cut at `max_head`: a head must end within it.
    view: &'a [u8],
    /// Whether the input goes past `view`.
    truncated: bool,
    pos: usize,
    max_line: usize,
}

impl<'a> Lines<'a> {
    fn new(buf: &'a [u8], limits: &Limits) -> Lines<'a> {
        let cut = buf.len().min(limits.max_head);
        Lines {
            view: &buf[..cut],
            truncated: buf.len() > cut,
            pos: 0,
            max_line: limits.max_line,
        }
    }

    /// `Ok(None)`: the next line has not fully arrived.
    fn next_line(&mut self) -> Result<Option<&'a [u8]>, HttpError> {
        let rest = &self.view[self.pos..];
        // A line end is at most max_line + 1 bytes in (after the CR): looking
        // no further keeps the scan linear and bounds it per line.
        let window = &rest[..rest.len().min(self.max_line.saturating_add(2))];
        match window.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let line = match lf.checked_sub(1).map(|cr| (cr, rest[cr])) {
                    Some((cr, b'\r')) => &rest[..cr],
                    _ => return Err(HttpError::BareLf),
                };
                if line.contains(&b'\r') {
                    return Err(HttpError::BareCr);
                }
                self.pos += lf + 1;
                Ok(Some(line))
            }
            None => {
                // A trailing CR may be the start of the CRLF.
                let pending = window.len() - usize::from(window.last() == Some(&b'\r'));
                if pending > self.max_line {
                    Err(HttpError::LineTooLong)
                } else if self.truncated {
                    Err(HttpError::HeadTooLarge)
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// The shared part of [`parse_request`] and [`parse_response`]: the start
/// line is handed to `start` as soon as it is complete (so a bad one fails
/// before the rest arrives), then header lines are checked one by one.
pub(super) fn parse_head<'a, S>(
    buf: &'a [u8],
    limits: &Limits,
    start: impl FnOnce(&'a [u8]) -> Result<S, HttpError>,
) -> Result<Option<(S, Headers, usize)>, HttpError> {
    let mut lines = Lines::new(buf, limits);
    let start = match lines.next_line()? {
        Some(line) => start(line)?,
        None => return Ok(None),
    };
    // Slices only: nothing is copied until the head is complete.
    let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
    loop {
        let line = match lines.next_line()? {
            Some(line) => line,
            None => return Ok(None),
        };
        if line.is_empty() {
            break;
        }
        if fields.len() >= limits.max_headers {
            return Err(HttpError::TooManyHeaders);
        }
        fields.push(parse_header_line(line)?);
    }
    let headers = Headers {
        fields: fields
            .into_iter()
            .map(|(name, value)| {
                (
                    String::from_utf8_lossy(name).into_owned(),
                    // obs-text (0x80..=0xFF) is allowed but rare; it is not
                    // meaningful to any header the handshake reads.
                    String::from_utf8_lossy(value).into_owned(),
                )
            })
            .collect(),
    };
    Ok(Some((start, headers, lines.pos)))
}

/// `field-name ":" OWS field-value OWS` (RFC 7230 §3.2).
fn parse_header_line(line: &[u8]) -> Result<(&[u8], &[u8]), HttpError> {
    if line.first().is_some_and(|&b| is_ows(b)) {
        return Err(HttpError::ObsFold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HttpError::MissingColon)?;
    let name = &line[..colon];
    if !is_token(name) {
        return Err(HttpError::InvalidHeaderName);
    }
    let value = trim_ows(&line[colon + 1..]);
    if !value.iter().all(|&b| is_field_value_byte(b)) {
        return Err(HttpError::InvalidHeaderValue);
    }
    Ok((name, value))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// `HTTP-version = "HTTP/" DIGIT "." DIGIT` (RFC 7230 §2.6).
fn parse_version(s: &[u8]) -> Result<Version, HttpError> {
    match s {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Ok(Version::new(major - b'0', minor - b'0'))
        }
        _ => Err(HttpError::MalformedVersion),
    }
}

/// `method SP request-target SP HTTP-version` (RFC 7230 §3.1.1).
pub(super) fn parse_request_line(line: &[u8]) -> Result<(&[u8], &[u8], Version), HttpError> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(HttpError::MalformedRequestLine),
    };
    if !is_token(method) {
        return Err(HttpError::MalformedRequestLine);
    }
    // RFC 3986 URIs are visible ASCII.
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(HttpError::MalformedRequestLine);
    }
    Ok((method, target, parse_version(version)?))
}

/// `HTTP-version SP status-code SP reason-phrase` (RFC 7230 §3.1.2). Some
/// servers omit the space before an empty reason; that is accepted.
pub(super) fn parse_status_line(line: &[u8]) -> Result<(Version, u16, &[u8]), HttpError> {
    let (version, rest) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => return Err(HttpError::MalformedStatusLine),
    };
    let version = parse_version(version)?;
    let (code, reason) = match rest {
        [a, b, c] => ([*a, *b, *c], &[][..]),
        [a, b, c, b' ', reason @ ..] => ([*a, *b, *c], reason),
        _ => return Err(HttpError::MalformedStatusLine),
    };
    if !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
        return Err(HttpError::MalformedStatusLine);
    }
    if !reason.iter().all(|&b| is_field_value_byte(b)) {
        return Err(HttpError::MalformedStatusLine);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    Ok((version, status, reason))
}

/// A header name that is a token and a value without CR, LF or other control
/// characters (so it cannot end the header line early: no header injection).
pub(crate) fn is_valid_header(name: &str, value: &str) -> bool {
    is_token(name.as_bytes()) && value.bytes().all(is_field_value_byte)
}
