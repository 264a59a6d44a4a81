//! When to come back, and how soon: the backoff, which failures are worth
//! another attempt, and `Retry-After`.

use crate::error::{Error, Refusal};
use crate::frame::CloseCode;
use crate::transport::TlsErrorKind;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long to wait before each new attempt: exponential backoff with
/// jitter, capped, reset once a connection has stayed up for a while.
///
/// Attempt `n` (counted from 0 since the last reset) waits
/// `min(initial × factorⁿ, max)`, scaled by a random factor in
/// `[1 − jitter, 1]`, so that many clients dropped at once (a server
/// restart) do not all come back in the same instant. A connection that
/// stays open for [`reset_after`](Backoff::reset_after) resets the count: the
/// next drop is retried quickly again, while a server that accepts and drops
/// at once is not hammered.
///
/// ```
/// use rfc6455::reconnect::Backoff;
/// use std::time::Duration;
///
/// let backoff = Backoff::default();
/// assert_eq!(backoff.initial, Duration::from_millis(500));
/// // With jitter 0.5: the third attempt waits between 1 s and 2 s.
/// let wait = backoff.delay(2);
/// assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2));
/// // Far along, the cap: at most 30 s.
/// assert!(backoff.delay(40) <= Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// The first wait (before jitter). Default 0.5 s.
    pub initial: Duration,
    /// The longest wait (before jitter). Default 30 s.
    pub max: Duration,
    /// What each wait is multiplied by. Default 2.
    pub factor: f64,
    /// How much of each wait is random, from 0 (none) to 1 (anything from
    /// zero to the full wait). Default 0.5.
    pub jitter: f64,
    /// A connection open at least this long resets the backoff. Default 10 s.
    pub reset_after: Duration,
    /// The longest `Retry-After` honoured (a 429 or 503 that asks for a day
    /// is answered after this). Default 5 minutes.
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.5,
            reset_after: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// Sets [`initial`](Backoff::initial).
    pub fn initial(mut self, wait: Duration) -> Backoff {
        self.initial = wait;
        self
    }
    /// Sets [`max`](Backoff::max).
    pub fn max(mut self, wait: Duration) -> Backoff {
        self.max = wait;
        self
    }
    /// Sets [`factor`](Backoff::factor) (at least 1).
    pub fn factor(mut self, factor: f64) -> Backoff {
        self.factor = factor;
        self
    }
    /// Sets [`jitter`](Backoff::jitter) (0 to 1).
    pub fn jitter(mut self, jitter: f64) -> Backoff {
        self.jitter = jitter;
        self
    }
    /// Sets [`reset_after`](Backoff::reset_after).
    pub fn reset_after(mut self, up_for: Duration) -> Backoff {
        self.reset_after = up_for;
        self
    }
    /// Sets [`max_retry_after`](Backoff::max_retry_after).
    pub fn max_retry_after(mut self, wait: Duration) -> Backoff {
        self.max_retry_after = wait;
        self
    }

    /// The wait before attempt `attempt` (0 for the first since a reset),
    /// jitter included.
    pub fn delay(&self, attempt: u32) -> Duration {
        let mut bytes = [0u8; 4];
        // Without randomness, the middle of the range: still capped, only
        // not spread.
        let unit = match getrandom::fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
        self.delay_with(attempt, unit)
    }

    /// [`delay`](Backoff::delay) with the random number in `[0, 1]` given.
    pub(crate) fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let max = self.max.as_secs_f64();
        let factor = if self.factor.is_finite() {
            self.factor.max(1.0)
        } else {
            1.0
        };
        // powi on a capped exponent: 2^64 is already past any cap.
        let base = self.initial.as_secs_f64() * factor.powi(attempt.min(64) as i32);
        let capped = if base.is_finite() { base.min(max) } else { max };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let scale = 1.0 - jitter * unit.clamp(0.0, 1.0);
        Duration::try_from_secs_f64(capped * scale).unwrap_or(self.max)
    }
}

/// Whether a failed connect attempt is worth another one.
///
/// Yes for what a later attempt may not meet: I/O errors (refused, reset,
/// timed out, the name did not resolve), a TLS handshake that timed out or
/// was cut, a server (or a proxy) answering 5xx or 429 Too Many Requests.
/// No for what it would meet again: any other refusal (400, 401, 403, 404,
/// 426…), a certificate that is not trusted, a malformed URL or proxy URL,
/// a response that breaks the handshake rules.
///
/// ```
/// use rfc6455::reconnect::is_retryable;
/// use rfc6455::Error;
/// use std::io;
///
/// assert!(is_retryable(&Error::Io(io::ErrorKind::ConnectionRefused.into())));
/// assert!(!is_retryable(&Error::Url("no host".into())));
/// ```
pub fn is_retryable(error: &Error) -> bool {
    match error {
        Error::Io(_) | Error::Timeout(_) | Error::ConnectionClosed => true,
        Error::Refused(refusal) => retryable_status(refusal.status()),
        Error::Tls(e) => matches!(e.kind, TlsErrorKind::Timeout | TlsErrorKind::Closed),
        Error::Proxy(e) => match e.status {
            Some(status) => retryable_status(status),
            None => !e.message.starts_with("invalid proxy URL"),
        },
        _ => false,
    }
}

/// 5xx: the server (or something in front of it) failed or is overloaded;
/// 429: it asks us to slow down. Every other status is an answer.
fn retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Whether a server's close code says to come back: 1001 going away (a
/// restart, a deploy), 1011 internal error, 1012 service restart, 1013 try
/// again later, 1014 bad gateway (RFC 6455 §7.4.1 and the IANA registry).
/// Not 1000 (the server ended the conversation) nor a code that blames the
/// client (1002, 1003, 1007, 1008, 1009, 1010) or is the application's own
/// (3000–4999): the next connection would end the same way.
///
/// ```
/// use rfc6455::reconnect::is_retryable_close;
/// use rfc6455::CloseCode;
///
/// assert!(is_retryable_close(CloseCode::GOING_AWAY));
/// assert!(!is_retryable_close(CloseCode::NORMAL));
/// ```
pub fn is_retryable_close(code: CloseCode) -> bool {
    matches!(code.0, 1001 | 1011 | 1012 | 1013 | 1014)
}

/// What a refusal's `Retry-After` asks for (RFC 9110 §10.2.3): a number of
/// seconds, or an HTTP date (the IMF-fixdate form, `Sun, 06 Nov 1994
/// 08:49:37 GMT`, which senders must use), as a wait from now. `None` if
/// the header is absent or not understood.
///
/// ```
/// use rfc6455::handshake::{parse_response, Limits};
/// use rfc6455::reconnect::retry_after;
/// use rfc6455::Refusal;
/// use std::time::Duration;
///
/// let head = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n\r\n";
/// let (response, _) = parse_response(head, &Limits::default()).unwrap().unwrap();
/// assert_eq!(retry_after(&Refusal::new(response, Vec::new())), Some(Duration::from_secs(3)));
/// ```
pub fn retry_after(refusal: &Refusal) -> Option<Duration> {
    let value = refusal.response.headers.get("retry-after")?.trim();
    retry_after_value(value, SystemTime::now())
}

fn retry_after_value(value: &str, now: SystemTime) -> Option<Duration> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 is still "a long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = UNIX_EPOCH + Duration::from_secs(imf_fixdate(value)?);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Seconds since the Unix epoch of an IMF-fixdate (RFC 9110 §5.6.7):
/// `Sun, 06 Nov 1994 08:49:37 GMT`. The obsolete forms are not parsed.
fn imf_fixdate(date: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = date.split_once(", ")?.1;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = fields[..] else {
        return None;
    };
    let number = |s: &str, len: usize| -> Option<u64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let day = number(day, 2)?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let year = number(year, 4)?;
    let mut hms = time.split(':');
    let (h, m, s) = (hms.next()?, hms.next()?, hms.next()?);
    let (h, m, s) = (number(h, 2)?, number(m, 2)?, number(s, 2)?);
    if hms.next().is_some() || year < 1970 || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60
    {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), March-based years.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y % 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_initial_to_the_cap() {
        let b = Backoff::default().jitter(0.0);
        let secs: Vec<f64> = (0..9).map(|n| b.delay_with(n, 0.7).as_secs_f64()).collect();
        assert_eq!(secs, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(b.delay_with(u32::MAX, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn jitter_scales_each_wait_within_its_range() {
        let b = Backoff::default();
        assert_eq!(b.delay_with(3, 0.0), Duration::from_secs(4));
        assert_eq!(b.delay_with(3, 1.0), Duration::from_secs(2));
        for _ in 0..100 {
            let d = b.delay(3);
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }

    #[test]
    fn odd_settings_never_panic() {
        let b = Backoff::default().factor(f64::NAN).jitter(f64::INFINITY);
        assert_eq!(b.delay_with(5, 0.5), Duration::from_millis(500));
        let b = Backoff::default().factor(1e300).max(Duration::MAX);
        assert!(b.delay_with(10, 0.5) > Duration::from_secs(1));
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            retry_after_value("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after_value("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            retry_after_value("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        // In the past: no wait.
        assert_eq!(
            retry_after_value("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            imf_fixdate("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
        ] {
            assert_eq!(retry_after_value(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn which_close_codes_bring_the_client_back() {
        for code in [1001, 1011, 1012, 1013, 1014] {
            assert!(is_retryable_close(CloseCode::from(code)), "{code}");
        }
        for code in [1000, 1002, 1003, 1007, 1008, 1009, 1010, 3000, 4000, 4999] {
            assert!(!is_retryable_close(CloseCode::from(code)), "{code}");
        }
    }

    #[test]
    fn which_statuses_bring_the_client_back() {
        for status in [429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(status), "{status}");
        }
        for status in [200, 301, 400, 401, 403, 404, 408, 426, 431] {
            assert!(!retryable_status(status), "{status}");
        }
    }
}
