//! TLS client set-up with rustls: verified against the system's roots (Mozilla's
//! bundled roots when the system has none), plus an optional CA file; verification is
//! skipped only with `danger_accept_invalid_certs`. Handshake errors are turned into
//! messages that say what to do, with the certificate's fingerprint to pin.
//!
//! Pinning: a server certificate that is exactly one of the certificates in the CA
//! file is trusted even when it could not be a chain's end (a self-signed
//! `openssl req -x509` certificate says CA:TRUE), as mbsync's `CertificateFile`
//! does; with `--tls-pin sha256:…` the server's certificate must have one of the
//! given fingerprints, and nothing else is trusted. The host name is checked either
//! way.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How to verify servers.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Trust only server certificates with one of these fingerprints.
    pub pins: Vec<Pin>,
    /// Accept any certificate. Only for throw-away test set-ups.
    pub danger_accept_invalid_certs: bool,
}

/// A server certificate's SHA-256 fingerprint, written `sha256:` and 64 hex digits
/// (colons between byte pairs allowed, as `openssl x509 -fingerprint -sha256`
/// prints them).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The fingerprint of a DER certificate.
    pub fn of(cert: &[u8]) -> Pin {
        let d = ring::digest::digest(&ring::digest::SHA256, cert);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Pin(out)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Pin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Pin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pin, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a `--tls-pin` value is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a certificate fingerprint: {why} (write sha256: and 64 hex digits)")]
pub struct PinError {
    pub given: String,
    pub why: &'static str,
}

impl FromStr for Pin {
    type Err = PinError;
    fn from_str(given: &str) -> Result<Pin, PinError> {
        let err = |why| PinError {
            given: given.to_string(),
            why,
        };
        let (algo, hex) = given.split_once(':').ok_or_else(|| err("no algorithm before ':'"))?;
        if !algo.eq_ignore_ascii_case("sha256") {
            return Err(err("only sha256 fingerprints are supported"));
        }
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(err("a SHA-256 fingerprint has 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let pair = std::str::from_utf8(pair).map_err(|_| err("not a hex digit"))?;
            out[i] = u8::from_str_radix(pair, 16).map_err(|_| err("not a hex digit"))?;
        }
        Ok(Pin(out))
    }
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
        "TLS: the certificate of {host} is not trusted: {detail}. If you trust this server, \
         give its certificate or its CA's (PEM) with --tls-ca FILE, or pin it with --tls-pin {pin}"
    )]
    Untrusted { host: String, detail: String, pin: Pin },
    #[error("TLS: the certificate of {host} ({pin}) is none of the pinned ones (--tls-pin)")]
    PinMismatch { host: String, pin: Pin },
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
    let trust = if opts.danger_accept_invalid_certs {
        Trust::Anyone
    } else if !opts.pins.is_empty() {
        Trust::Pinned(opts.pins.clone())
    } else {
        chain_trust(opts)?
    };
    let verifier = Verifier {
        trust,
        provider: provider(),
    };
    Ok(Arc::new(
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    ))
}

/// The system's roots (Mozilla's when the system has none) and the CA file's
/// certificates, which are also trusted as the server's own by exact match.
fn chain_trust(opts: &TlsOptions) -> Result<Trust, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let mut given = Vec::new();
    if let Some(path) = &opts.ca_file {
        for c in read_ca_file(path)? {
            given.push(Pin::of(&c));
            // A certificate that cannot be an anchor (a v1 certificate, say) may
            // still be trusted as the server's own, by exact match.
            let _ = roots.add(c);
        }
    }
    let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Trust::Chain { chain, given })
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |detail: String| TlsError::CaFile {
        path: path.to_path_buf(),
        detail,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
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
    let host = host.to_string();
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let refused = match inner {
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(o)))) => o.downcast_ref::<Refused>(),
        _ => None,
    };
    match (refused, inner) {
        (Some(Refused { pin, cause: None }), _) => TlsError::PinMismatch { host, pin: *pin },
        (Some(Refused { pin, cause: Some(c) }), _) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsError::WrongName {
                    host,
                    detail: describe(c),
                }
            }
            other => TlsError::Untrusted {
                host,
                detail: describe(other),
                pin: *pin,
            },
        },
        (None, Some(other)) => TlsError::Handshake {
            host,
            detail: other.to_string(),
        },
        (None, None) => TlsError::Handshake {
            host,
            detail: e.to_string(),
        },
    }
}

/// A certificate refusal in words a user knows.
fn describe(c: &CertificateError) -> String {
    use CertificateError as C;
    match c {
        C::UnknownIssuer => "it is issued by an unknown authority, or self-signed".into(),
        C::Other(OtherError(o))
            if matches!(
                o.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            "it is a CA certificate (CA:TRUE, as a self-signed one made by `openssl req -x509` \
             is) used as the server's own"
                .into()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
        C::Revoked => "it is revoked".into(),
        C::BadSignature | C::BadEncoding => "it is malformed or badly signed".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => "it names other hosts".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => "it is not meant for TLS servers".into(),
        other => format!("{other:?}"),
    }
}

/// What a [`Verifier`] refused: the certificate's fingerprint and the chain
/// verifier's reason (`None`: it matched none of the pins).
#[derive(Debug)]
struct Refused {
    pin: Pin,
    cause: Option<CertificateError>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            None => write!(f, "certificate {} is not pinned", self.pin),
            Some(c) => write!(f, "certificate {}: {}", self.pin, describe(c)),
        }
    }
}

impl std::error::Error for Refused {}

/// Whom a [`Verifier`] trusts.
#[derive(Debug)]
enum Trust {
    /// A chain to a root, or exactly one of the CA file's certificates (`given`,
    /// by fingerprint).
    Chain {
        chain: Arc<WebPkiServerVerifier>,
        given: Vec<Pin>,
    },
    /// `--tls-pin`: only certificates with one of these fingerprints.
    Pinned(Vec<Pin>),
    /// `--danger-accept-invalid-certs`: anyone (signatures are still checked to
    /// be well-formed).
    Anyone,
}

/// Checks the server's certificate as its [`Trust`] says; the host name is
/// checked for every trust but `Anyone`.
#[derive(Debug)]
struct Verifier {
    trust: Trust,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Verifier {
    fn refuse(pin: Pin, cause: Option<CertificateError>) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refused { pin, cause }))))
    }

    /// The name check alone, for a certificate trusted by being exactly the one given.
    fn name_matches(end_entity: &CertificateDer<'_>, name: &ServerName<'_>) -> Result<(), CertificateError> {
        let parsed =
            rustls::server::ParsedCertificate::try_from(end_entity).map_err(|_| CertificateError::BadEncoding)?;
        rustls::client::verify_server_name(&parsed, name).map_err(|e| match e {
            rustls::Error::InvalidCertificate(c) => c,
            _ => CertificateError::NotValidForName,
        })
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pin = Pin::of(end_entity);
        let exact_match = || {
            Self::name_matches(end_entity, server_name).map_err(|c| Self::refuse(pin, Some(c)))?;
            Ok(ServerCertVerified::assertion())
        };
        match &self.trust {
            Trust::Anyone => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(pins) if pins.contains(&pin) => exact_match(),
            Trust::Pinned(_) => Err(Self::refuse(pin, None)),
            Trust::Chain { chain, given } => {
                match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                    Ok(v) => Ok(v),
                    Err(_) if given.contains(&pin) => exact_match(),
                    Err(rustls::Error::InvalidCertificate(c)) => Err(Self::refuse(pin, Some(c))),
                    Err(other) => Err(other),
                }
            }
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::Pin;

    #[test]
    fn fingerprints_are_read_with_or_without_colons_in_either_case() {
        let plain = "sha256:".to_string() + &"ab".repeat(32);
        let colons = "SHA256:".to_string() + &vec!["AB"; 32].join(":");
        let a: Pin = plain.parse().unwrap();
        let b: Pin = colons.parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), plain);
    }

    #[test]
    fn malformed_fingerprints_say_why() {
        for (given, why) in [
            ("abcd", "no algorithm"),
            ("sha1:abcd", "only sha256"),
            ("sha256:abcd", "64 hex digits"),
            (&*("sha256:".to_string() + &"zz".repeat(32)), "not a hex digit"),
        ] {
            let e = given.parse::<Pin>().unwrap_err();
            assert!(e.to_string().contains(why), "{given}: {e}");
        }
    }

    #[test]
    fn the_fingerprint_of_a_certificate_is_its_sha256() {
        // SHA-256 of the empty input, a known value.
        assert_eq!(
            Pin::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
