//! rustls configurations: the client's default trust (the Mozilla roots
//! compiled in by `webpki-roots`), your own CA, a server's PEM certificate
//! and key, and the verifier that accepts anything (for tests).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// ALPN: the WebSocket handshake is HTTP/1.1 (RFC 6455 §4.1).
pub(super) const ALPN_HTTP11: &[u8] = b"http/1.1";

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
