//! What a failed TLS handshake failed on, named for the user.

use crate::error::{Error, TlsError, TlsErrorKind};
use std::io;

/// What the handshake failed on, for [`Error::Tls`](Error::Tls).
pub(crate) fn classify(e: io::Error, peer: &str) -> TlsError {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    let kind = e.kind();
    let Some(tls) = e.get_ref().and_then(|r| r.downcast_ref::<R>()) else {
        let kind = match kind {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TlsErrorKind::Timeout,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => TlsErrorKind::Closed,
            _ => TlsErrorKind::Handshake,
        };
        return TlsError::new(
            kind,
            format!("handshake with {peer} failed: {e}"),
            Some(Box::new(e)),
        );
    };
    let (kind, what) = match tls {
        R::InvalidCertificate(C::UnknownIssuer) => (
            TlsErrorKind::UnknownIssuer,
            format!(
                "the certificate of {peer} is not signed by a trusted authority (unknown issuer)"
            ),
        ),
        R::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => (
            TlsErrorKind::Expired,
            format!("the certificate of {peer} has expired"),
        ),
        R::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => (
            TlsErrorKind::Expired,
            format!("the certificate of {peer} is not valid yet"),
        ),
        R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => (
            TlsErrorKind::NameMismatch,
            format!("the certificate presented is not valid for the host name {peer:?}"),
        ),
        R::InvalidCertificate(C::Other(other)) if other.to_string() == "CaUsedAsEndEntity" => (
            TlsErrorKind::BadCertificate,
            format!(
                "the certificate of {peer} is a CA certificate, which cannot be a server's own \
                 (`openssl req -x509` makes one unless given \
                 `-addext basicConstraints=critical,CA:FALSE`)"
            ),
        ),
        R::InvalidCertificate(c) => (
            TlsErrorKind::BadCertificate,
            format!(
                "the certificate of {peer} was refused: {}",
                words(innermost(&format!("{c:?}")))
            ),
        ),
        R::NoCertificatesPresented => (
            TlsErrorKind::CertificateRequired,
            format!("{peer} presented no certificate, and one is required"),
        ),
        R::AlertReceived(A::CertificateRequired) => (
            TlsErrorKind::CertificateRequired,
            format!("{peer} requires a client certificate"),
        ),
        R::AlertReceived(alert) => (
            TlsErrorKind::AlertReceived,
            format!(
                "{peer} refused the handshake (alert: {})",
                words(&format!("{alert:?}"))
            ),
        ),
        R::InvalidMessage(_) => (
            TlsErrorKind::NotTls,
            format!("{peer} does not speak TLS (or sent a malformed message)"),
        ),
        R::General(why) => (
            TlsErrorKind::Handshake,
            format!("handshake with {peer} failed: {why}"),
        ),
        other => (
            TlsErrorKind::Handshake,
            format!(
                "handshake with {peer} failed: {}",
                words(innermost(&format!("{other:?}")))
            ),
        ),
    };
    TlsError::new(kind, what, Some(Box::new(e)))
}

/// The innermost name of a Debug rendering: rustls and webpki name some
/// failures only by their Rust names (`PeerIncompatible(NoCipherSuitesInCommon)`,
/// `Other(OtherError(CaUsedAsEndEntity))`), and a user message takes the
/// name, not the nesting.
fn innermost(debug: &str) -> &str {
    let mut rest = debug;
    let mut name = "";
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            return if name.is_empty() { debug } else { name };
        }
        name = &rest[..end];
        match rest[end..].strip_prefix('(') {
            Some(inner) => rest = inner,
            None => return name,
        }
    }
}

/// `CaUsedAsEndEntity` as words: `ca used as end entity`.
fn words(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for (i, c) in name.char_indices() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// An I/O error that carries a TLS alert or error becomes [`Error::Tls`](Error::Tls).
pub(crate) fn reclassify(e: Error, peer: &str) -> Error {
    match e {
        Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|r| r.downcast_ref::<rustls::Error>().is_some()) =>
        {
            Error::Tls(classify(io, peer))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{innermost, words};

    #[test]
    fn rust_names_in_tls_errors_become_words() {
        let debug = "Other(OtherError(CaUsedAsEndEntity))";
        assert_eq!(words(innermost(debug)), "ca used as end entity");
        let debug = "PeerIncompatible(NoCipherSuitesInCommon)";
        assert_eq!(words(innermost(debug)), "no cipher suites in common");
        let debug = "ExpiredRevocationListContext { time: UnixTime(1) }";
        assert_eq!(words(innermost(debug)), "expired revocation list context");
        assert_eq!(words("HandshakeFailure"), "handshake failure");
        assert_eq!(innermost("(odd"), "(odd");
    }
}
