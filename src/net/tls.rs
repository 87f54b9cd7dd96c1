//! TLS client set-up with rustls: verified against the system's roots (Mozilla's
//! bundled roots when the system has none), plus an optional CA file; verification is
//! skipped only with `danger_accept_invalid_certs`. Handshake errors are turned into
//! messages that say what to do.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How to verify servers.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Only for throw-away test set-ups.
    pub danger_accept_invalid_certs: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading CA file {path}: {detail}")]
    CaFile { path: PathBuf, detail: String },
    #[error("{host} is not a valid TLS server name")]
    ServerName { host: String },
    #[error("TLS set-up: {0}")]
    Config(String),
    #[error(
        "TLS: the certificate of {host} is not trusted ({detail}). If you trust this server, \
         pass its CA certificate (PEM) with --tls-ca FILE"
    )]
    Untrusted { host: String, detail: String },
    #[error("TLS: the certificate of {host} does not match the host name ({detail})")]
    WrongName { host: String, detail: String },
    #[error("TLS handshake with {host} failed: {detail}")]
    Handshake { host: String, detail: String },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client configuration once per run.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    if opts.danger_accept_invalid_certs {
        let cfg = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider())))
            .with_no_client_auth();
        return Ok(Arc::new(cfg));
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = &opts.ca_file {
        let err = |detail: String| TlsError::CaFile {
            path: path.clone(),
            detail,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no PEM certificate in the file".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
}

/// Runs the TLS handshake over an established TCP connection.
pub async fn handshake(
    tcp: super::Tcp,
    host: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<super::Tcp>, TlsError> {
    let name = ServerName::try_from(host.to_string()).map_err(|_| TlsError::ServerName { host: host.into() })?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| explain(host, e))
}

fn explain(host: &str, e: std::io::Error) -> TlsError {
    use rustls::CertificateError as C;
    let host = host.to_string();
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsError::WrongName {
                host,
                detail: format!("{c:?}"),
            },
            C::UnknownIssuer | C::BadSignature | C::Expired | C::NotValidYet | C::ExpiredContext { .. } => {
                TlsError::Untrusted {
                    host,
                    detail: describe(c),
                }
            }
            other => TlsError::Untrusted {
                host,
                detail: format!("{other:?}"),
            },
        },
        Some(other) => TlsError::Handshake {
            host,
            detail: other.to_string(),
        },
        None => TlsError::Handshake {
            host,
            detail: e.to_string(),
        },
    }
}

fn describe(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match c {
        C::UnknownIssuer => "issued by an unknown authority, e.g. self-signed".into(),
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidYet => "not valid yet".into(),
        other => format!("{other:?}"),
    }
}

/// `--danger-accept-invalid-certs`: checks signatures are well-formed, trusts anyone.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
