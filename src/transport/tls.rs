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

pub use rustls;

use super::{Inner, Shared, Stream};
use crate::error::{TlsError, TlsErrorKind};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::Instant;

/// The reading handle's ciphertext buffer starts at this size and returns to
/// it after a small read: an idle connection blocked in `read` holds only
/// this much (a fixed 16 KiB buffer on the stack cost every idle connection
/// 16 KiB of stack pages).
const RX_MIN: usize = 2 * 1024;
/// ... and grows, while reads fill it, up to rustls's received-plaintext
/// limit (16 KiB): the socket is read only once the plaintext is drained,
/// so what one read brings always fits (see [`Session::feed`] otherwise).
const RX_MAX: usize = 16 * 1024;
/// An output buffer grown past this by a burst is given back afterwards.
const KEEP_OUT: usize = 64 * 1024;
/// ALPN: the WebSocket handshake is HTTP/1.1 (RFC 6455 §4.1).
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// One handle to a TLS connection (the halves of a split connection and the
/// server's shutdown handle each have one).
#[derive(Debug)]
pub(crate) struct TlsStream {
    /// This handle's view of the socket (its own stop-flag bookkeeping).
    tcp: Shared<TcpStream>,
    session: Arc<Session>,
    /// Ciphertext read but not yet taken by the session (rarely anything:
    /// see [`Session::feed`]); empty, and unallocated, when idle.
    pending: Vec<u8>,
    /// Where ciphertext is read to (allocated by the first read).
    rx: Vec<u8>,
}

#[derive(Debug)]
struct Session {
    conn: Mutex<rustls::Connection>,
    /// The output lock: held by whoever writes records to the socket, in the
    /// order the session produced them. Holds the encrypted bytes.
    out: Mutex<Vec<u8>>,
    /// For writes from `Drop` (close_notify).
    tcp: Shared<TcpStream>,
    /// A socket write failed (or timed out): part of a record may be out, so
    /// nothing more can be sent, and a close_notify must not wait another
    /// write timeout on a peer that does not read.
    broken: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before it can
    // panic, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Session {
    /// Feeds ciphertext to the session; returns how much it took, which is
    /// less than all when its plaintext buffer filled up (records that were
    /// partial in the last read completed in this one). On a TLS error the
    /// alert rustls queued is sent (best effort) and the error returned.
    fn feed(&self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        let mut conn = lock(&self.conn);
        let mut failed = None;
        while !rest.is_empty() {
            let n = match conn.read_tls(&mut rest) {
                Ok(n) => n,
                // "received plaintext buffer full": the rest waits.
                Err(e) if e.kind() == io::ErrorKind::Other => break,
                Err(e) => return Err(e),
            };
            if let Err(e) = conn.process_new_packets() {
                failed = Some(e);
                break;
            }
            if n == 0 {
                // close_notify received: what follows is ignored.
                rest = &[];
                break;
            }
        }
        let used = data.len() - rest.len();
        let pending = conn.wants_write();
        match failed {
            Some(e) => {
                // The alert goes out now, or with a busy writer's bytes.
                let _ = self.try_flush(conn);
                Err(tls_io_error(e))
            }
            None if pending => self.try_flush(conn).map(|()| used),
            None => Ok(used),
        }
    }

    /// Sends what the session has queued unless a writer holds the output
    /// lock (that writer sends it before letting go). Called with the
    /// session locked, so the writer's last check cannot miss these bytes.
    fn try_flush(&self, conn: MutexGuard<'_, rustls::Connection>) -> io::Result<()> {
        match self.out.try_lock() {
            Ok(out) => {
                drop(conn);
                self.drain(out)
            }
            Err(TryLockError::Poisoned(p)) => {
                drop(conn);
                self.drain(p.into_inner())
            }
            Err(TryLockError::WouldBlock) => Ok(()),
        }
    }

    /// Sends what the session has queued, waiting for a busy writer.
    fn flush_blocking(&self) -> io::Result<()> {
        self.drain(lock(&self.out))
    }

    /// With the output lock held: moves encrypted records out of the session
    /// (under its lock) and writes them (without it) until none are left;
    /// lets go of the output lock while still holding the session lock.
    fn drain(&self, mut out: MutexGuard<'_, Vec<u8>>) -> io::Result<()> {
        loop {
            if self.broken.load(Ordering::Acquire) {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "an earlier write on this TLS connection failed",
                ));
            }
            {
                let mut conn = lock(&self.conn);
                if !conn.wants_write() {
                    drop(out);
                    return Ok(());
                }
                out.clear();
                while conn.wants_write() {
                    conn.write_tls(&mut *out)?;
                }
            }
            let written = (&*self.tcp).write_all(&out);
            if out.capacity() > KEEP_OUT {
                *out = Vec::new();
            }
            if written.is_err() {
                self.broken.store(true, Ordering::Release);
            }
            written?;
        }
    }

    /// Queues `close_notify` and sends it (best effort: the peer may be
    /// gone, or not reading).
    fn close_notify(&self) {
        if self.broken.load(Ordering::Acquire) {
            return;
        }
        lock(&self.conn).send_close_notify();
        let _ = self.flush_blocking();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        if conn.is_handshaking() || *self.broken.get_mut() {
            return;
        }
        conn.send_close_notify();
        let mut bytes = Vec::new();
        while conn.wants_write() {
            if conn.write_tls(&mut bytes).is_err() {
                return;
            }
        }
        // The socket's write timeout bounds this for a peer that never reads.
        let _ = (&*self.tcp).write_all(&bytes);
    }
}

impl TlsStream {
    fn new(tcp: Shared<TcpStream>, conn: rustls::Connection) -> TlsStream {
        TlsStream {
            session: Arc::new(Session {
                conn: Mutex::new(conn),
                out: Mutex::new(Vec::new()),
                tcp: tcp.clone(),
                broken: AtomicBool::new(false),
            }),
            tcp,
            pending: Vec::new(),
            rx: Vec::new(),
        }
    }

    pub(crate) fn handle(&self) -> TlsStream {
        TlsStream {
            tcp: self.tcp.clone(),
            session: Arc::clone(&self.session),
            pending: Vec::new(),
            rx: Vec::new(),
        }
    }

    /// Feeds what is pending; `false` when nothing was pending.
    fn feed_pending(&mut self) -> io::Result<bool> {
        if self.pending.is_empty() {
            return Ok(false);
        }
        let used = self.session.feed(&self.pending)?;
        if used == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS: the session takes no more input",
            ));
        }
        self.pending.drain(..used);
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        Ok(true)
    }

    /// Reads ciphertext from the socket, with no lock held, and feeds it to
    /// the session (what it does not take waits in `pending`). `Ok(0)`: end
    /// of stream.
    fn read_and_feed(&mut self) -> io::Result<usize> {
        if self.rx.is_empty() {
            self.rx = vec![0; RX_MIN];
        }
        let n = self.tcp.read(&mut self.rx)?;
        if n == 0 {
            return Ok(0);
        }
        let used = self.session.feed(&self.rx[..n])?;
        self.pending.extend_from_slice(&self.rx[used..n]);
        if n == self.rx.len() && self.rx.len() < RX_MAX {
            // The peer sent more than fit: take bigger bites next time.
            let bigger = (self.rx.len() * 4).min(RX_MAX);
            self.rx.resize(bigger, 0);
        } else if n <= RX_MIN && self.rx.len() > RX_MIN {
            // Back to small records: give the memory back.
            self.rx.truncate(RX_MIN);
            self.rx.shrink_to_fit();
        }
        Ok(n)
    }

    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Sends close_notify before shutting down the write side.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.session.close_notify();
        }
        self.tcp.shutdown(how)
    }

    /// Runs the TLS handshake, bounded by `deadline` (the socket's read
    /// timeout is set for it; the caller sets its own afterwards).
    fn handshake(&mut self, deadline: Instant) -> io::Result<()> {
        loop {
            self.session.flush_blocking()?;
            if !lock(&self.session.conn).is_handshaking() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake not complete in time",
                ));
            }
            self.tcp.set_read_timeout(Some(deadline - now))?;
            // Anything the session did not take (only once its plaintext
            // buffer is full, so after the handshake) waits in `pending`.
            match self.read_and_feed() {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS handshake not complete in time",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match lock(&self.session.conn).reader().read(buf) {
                // Ok(0): the peer sent close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.feed_pending()? {
                continue;
            }
            // No lock held across the blocking read.
            if self.read_and_feed()? == 0 {
                // TCP closed (or the server's stop flag). Without
                // close_notify a TLS stream could be truncated, but a
                // WebSocket has its own close frame to tell a clean end.
                return Ok(0);
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Encrypts header and payload together, then writes the records with
    /// one socket write.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let out = lock(&self.session.out);
        let n = lock(&self.session.conn).writer().write_vectored(bufs)?;
        self.session.drain(out)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every write is sent before it returns.
        Ok(())
    }
}

/// What the handshake failed on, for [`Error::Tls`](crate::Error::Tls).
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

/// An I/O error that carries a TLS alert or error becomes [`Error::Tls`](crate::Error::Tls).
pub(crate) fn reclassify(e: crate::Error, peer: &str) -> crate::Error {
    match e {
        crate::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|r| r.downcast_ref::<rustls::Error>().is_some()) =>
        {
            crate::Error::Tls(classify(io, peer))
        }
        other => other,
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Named explicitly, so a process where another crate also enables a
    // provider never panics on an ambiguous default.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(what: String, e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
}

/// The client configuration `connect("wss://…")` uses by default: the
/// Mozilla root certificates (from `webpki-roots`), no client certificate,
/// ALPN `http/1.1`.
pub fn default_client_config() -> Arc<rustls::ClientConfig> {
    static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(DEFAULT.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        client_config(roots)
    }))
}

fn client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(config)
}

/// Reads every certificate in a PEM file (a chain: leaf first).
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| config_error(format!("reading certificates from {}", path.display()), e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no certificate in {}", path.display()),
        ));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS #8, PKCS #1 or SEC1) in a PEM file.
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| config_error(format!("reading a private key from {}", path.display()), e))
}

/// A client configuration that trusts only the CA certificates in a PEM
/// file (your own CA), instead of the public roots.
///
/// ```no_run
/// use rfc6455::transport::tls::client_config_with_ca;
/// use rfc6455::ClientConfig;
///
/// let config = ClientConfig::default().tls(client_config_with_ca("ca.pem")?);
/// let (ws, _) = rfc6455::connect_with("wss://localhost:9001/", &config)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client_config_with_ca(ca_pem: impl AsRef<Path>) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca_pem.as_ref())? {
        roots.add(cert).map_err(|e| {
            config_error(
                format!("CA certificate in {}", ca_pem.as_ref().display()),
                e,
            )
        })?;
    }
    Ok(client_config(roots))
}

/// A server configuration from a PEM certificate chain (leaf first) and a
/// PEM private key, with ALPN `http/1.1` and no client authentication.
///
/// ```no_run
/// use rfc6455::transport::tls::server_config_from_pem;
/// use rfc6455::{Server, ServerConfig};
///
/// let config = ServerConfig::default().tls(server_config_from_pem("cert.pem", "key.pem")?);
/// let server = Server::bind("127.0.0.1:9443", config)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn server_config_from_pem(
    cert_chain: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> io::Result<Arc<rustls::ServerConfig>> {
    let certs = load_certs(cert_chain)?;
    let key = load_private_key(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| config_error("certificate and key".into(), e))?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// **For testing only: accepts any server certificate, so anyone on the
/// path can read and change the connection.** What `wsclient --insecure`
/// uses against a server with a self-signed certificate.
pub fn insecure_client_config() -> Arc<rustls::ClientConfig> {
    let provider = provider();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(config)
}

/// The verifier behind [`insecure_client_config`]: checks the handshake
/// signatures (so the session is at least with the key holder of whatever
/// certificate was sent) but not the certificate.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

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
