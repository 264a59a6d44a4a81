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
        R::InvalidCertificate(_) => (
            TlsErrorKind::BadCertificate,
            format!("the certificate of {peer} was refused ({tls})"),
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
            format!("{peer} refused the handshake (alert {alert:?})"),
        ),
        R::InvalidMessage(_) => (
            TlsErrorKind::NotTls,
            format!("{peer} does not speak TLS (or sent a malformed message): {tls}"),
        ),
        other => (
            TlsErrorKind::Handshake,
            format!("handshake with {peer} failed: {other}"),
        ),
    };
    TlsError::new(kind, what, Some(Box::new(e)))
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
