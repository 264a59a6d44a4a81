//! Getting (and staying) connected: the library's reconnecting client set
//! up from the flags, and connect failures told in plain words with the
//! next step.

use crate::args::Options;
use rfc6455::reconnect::{Backoff, ReconnectingClient};
use rfc6455::transport::TlsErrorKind;
use rfc6455::Error;
use std::io;

/// The client for `options`: one connection, or with `--reconnect` as many
/// as it takes (the library's rule and backoff; the printer's `retry`
/// callback says no to every retry without the flag). The connect timeout
/// bounds each attempt as a whole: TCP, proxy, TLS and handshake.
pub fn client(options: &Options) -> rfc6455::Result<ReconnectingClient> {
    Ok(ReconnectingClient::new(&options.url, options.config.clone())?.backoff(Backoff::default()))
}

/// `error` as the user should read it: the library's words (never a Debug
/// dump), plus what to do next where there is something to do.
pub fn explain(error: &Error) -> String {
    let hint = match error {
        Error::Tls(e) if e.kind == TlsErrorKind::UnknownIssuer => {
            "; if you trust this server, pass the certificate of the CA that signed it (or \
             its own, if it signed itself) with --ca FILE, or for a test only skip the \
             check with --insecure"
        }
        Error::Tls(e) if e.kind == TlsErrorKind::NameMismatch => {
            "; connect with a name the certificate is for, or for a test only skip the \
             check with --insecure"
        }
        Error::Tls(e) if matches!(e.kind, TlsErrorKind::Expired | TlsErrorKind::BadCertificate) => {
            "; the server needs another certificate (for a test only, --insecure skips the \
             check)"
        }
        Error::Tls(e) if e.kind == TlsErrorKind::NotTls => {
            "; is it a ws:// (plain) server? Then use ws:// instead of wss://"
        }
        Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            " (nothing listens there: is the server running, and on this port?)"
        }
        Error::Io(e) if e.kind() == io::ErrorKind::TimedOut => {
            " (--connect-timeout gives it longer)"
        }
        _ => "",
    };
    format!("{error}{hint}")
}
