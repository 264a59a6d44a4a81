//! TLS over the crate's [`Stream`] (feature `tls`), with rustls.
//!
//! A TLS session is one state machine (sequence numbers, keys) shared by
//! the halves of a split connection. The rule of the transport seam holds:
//! **the session is locked only to encrypt or decrypt bytes already in
//! memory, never across a blocking socket call.**
//!
//! - Reading: ciphertext is read from the socket with no lock held, into the
//!   reading handle's own buffer, then fed to the session under its lock;
//!   plaintext comes out under the same short lock.
//! - Writing: a writer takes the *output* lock (which orders TLS records on
//!   the wire and owns the buffer of encrypted bytes), encrypts under the
//!   session lock, lets go of the session and writes the records to the
//!   socket. A reader that must send something itself (an alert, a key
//!   update reply) only *tries* the output lock; if a writer holds it, the
//!   writer sends those bytes before it lets go (it checks the session for
//!   pending output while still holding the session lock), so a reader never
//!   waits for a writer blocked on a slow peer.
//!
//! Close: [`Transport::shutdown`](super::Transport::shutdown) of the write
//! side and dropping the last handle send `close_notify`.
//!
//! The helpers here build rustls configurations: the client's default trust
//! is the Mozilla root store compiled in by `webpki-roots` (the same on every
//! machine, no system files read); [`client_config_with_ca`] trusts your own
//! CA instead; [`server_config_from_pem`] loads a certificate chain and key.
//!
//! | file | concern |
//! | --- | --- |
//! | `session.rs` | one rustls session shared by a connection's handles, locked only around bytes in memory |
//! | `config.rs` | rustls configurations: default trust, your own CA, PEM files, the test-only verifier |
//! | `classify.rs` | what a failed handshake failed on, in [`TlsErrorKind`]s |
//! | `mod.rs` | the handshakes that turn a TCP [`Stream`] into a TLS one |

pub use rustls;

mod classify;
mod config;
mod session;

pub(crate) use classify::{classify, reclassify};
pub use config::{
    client_config_with_ca, default_client_config, insecure_client_config, load_certs,
    load_private_key, server_config_from_pem,
};
pub(crate) use session::TlsStream;

use super::{Inner, Stream};
use crate::error::{TlsError, TlsErrorKind};
use config::ALPN_HTTP11;
use rustls::pki_types::ServerName;
use session::tls_io_error;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// What a server answers, in plaintext, to a plaintext HTTP request on its
/// TLS port: a clear failure instead of a TLS alert the client cannot read.
const NOT_TLS_RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 47\r\nConnection: close\r\n\r\n\
This port speaks TLS: use https:// or wss://.\r\n";

impl Stream {
    /// Runs the server side of the TLS handshake on a TCP stream, bounded by
    /// `deadline`. A peer that starts with a plaintext HTTP request is
    /// answered `400` in plaintext and refused.
    pub(crate) fn accept_tls(
        self,
        config: &Arc<rustls::ServerConfig>,
        deadline: Instant,
    ) -> Result<Stream, TlsError> {
        let Inner::Tcp(tcp) = self.inner else {
            return Ok(self);
        };
        let peer = tcp
            .peer_addr()
            .map_or_else(|_| "the client".to_owned(), |a| a.to_string());
        // A TLS connection starts with a handshake record (content type
        // 22); an HTTP request with an ASCII method.
        let now = Instant::now();
        let wait = deadline
            .saturating_duration_since(now)
            .max(std::time::Duration::from_millis(1));
        let _ = tcp.set_read_timeout(Some(wait));
        let mut first = [0u8; 1];
        match tcp.peek(&mut first) {
            Ok(1) if first[0].is_ascii_uppercase() => {
                let _ = (&*tcp).write_all(NOT_TLS_RESPONSE);
                return Err(TlsError::new(
                    TlsErrorKind::NotTls,
                    format!("{peer} sent plaintext HTTP to the TLS port"),
                    None,
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(classify(e, &peer)),
        }
        let conn = rustls::ServerConnection::new(Arc::clone(config))
            .map_err(|e| classify(tls_io_error(e), &peer))?;
        let mut tls = TlsStream::new(tcp, conn.into());
        tls.handshake(deadline).map_err(|e| classify(e, &peer))?;
        Ok(Stream {
            inner: Inner::Tls(tls),
        })
    }

    /// Runs the client side of the TLS handshake on a connected stream:
    /// SNI and certificate name checked against `host`, bounded by
    /// `deadline`. ALPN `http/1.1` is offered when `config` offers nothing.
    pub(crate) fn connect_tls(
        self,
        config: Option<&Arc<rustls::ClientConfig>>,
        host: &str,
        deadline: Instant,
    ) -> Result<Stream, TlsError> {
        let Inner::Tcp(tcp) = self.inner else {
            return Ok(self);
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            TlsError::new(
                TlsErrorKind::Config,
                format!("{host:?} is not a valid TLS server name"),
                Some(Box::new(e)),
            )
        })?;
        let config = match config {
            Some(c) if c.alpn_protocols.is_empty() => {
                let mut c = (**c).clone();
                c.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
                Arc::new(c)
            }
            Some(c) => Arc::clone(c),
            None => default_client_config(),
        };
        let conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| classify(tls_io_error(e), host))?;
        let mut tls = TlsStream::new(tcp, conn.into());
        tls.handshake(deadline).map_err(|e| classify(e, host))?;
        Ok(Stream {
            inner: Inner::Tls(tls),
        })
    }
}
