//! What a server's certificate says, for `probe`: subject, issuer, the names it is
//! valid for, and its dates. Pure: DER in, a summary out (malformed input is an
//! error, never a panic).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A certificate, as a person checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// The DNS names and IP addresses it is valid for (subjectAltName; the
    /// subject's CN when it has none).
    pub names: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// `sha256:HEX`, as `--tls-pin` takes it.
    pub fingerprint: String,
}

impl CertificateInfo {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo, String> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
        let time = |t: x509_parser::time::ASN1Time| {
            DateTime::<Utc>::from_timestamp(t.timestamp(), 0).ok_or_else(|| "a date out of range".to_string())
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => names.push(d.to_string()),
                    GeneralName::IPAddress(ip) => names.push(ip_text(ip)),
                    _ => {}
                }
            }
        }
        if names.is_empty() {
            names.extend(
                cert.subject()
                    .iter_common_name()
                    .filter_map(|cn| cn.as_str().ok())
                    .map(str::to_string),
            );
        }
        Ok(CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            names,
            not_before: time(cert.validity().not_before)?,
            not_after: time(cert.validity().not_after)?,
            fingerprint: super::tls::Pin::of(der).to_string(),
        })
    }

    /// Whole days left until it expires at `now` (negative once expired).
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        (self.not_after - now).num_days()
    }
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => format!("{b:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x82\xff\xff",
            &[0u8; 64],
            b"-----BEGIN CERTIFICATE-----",
        ] {
            assert!(CertificateInfo::from_der(bad).is_err());
        }
    }
}
