//! What `probe` found, as data (`schemas/output/probe.v1.schema.json`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::net::cert::CertificateInfo;

/// A mail protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Imap,
    Pop3,
}

/// How a port reaches TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (993, 995).
    Implicit,
    /// Plaintext first, then STARTTLS (IMAP, 143) or STLS (POP3, 110).
    Starttls,
}

/// Whether a port answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PortState {
    /// It answered as a mail server.
    Open,
    /// Nothing listens (connection refused).
    Closed,
    /// No answer in time (a firewall that drops, or a slow server).
    Timeout,
    /// Something answered, but the conversation failed (see `error`).
    Error,
}

/// The TLS of one port.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct TlsReport {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    pub cipher: String,
    /// Whether the certificate is trusted for this host (system roots and `--tls-ca`).
    pub verified: bool,
    /// Why it is not trusted, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInfo>,
    /// Days until the certificate expires (negative once it has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
}

/// The address scheme of `protocol` reached by `mode`.
pub fn scheme_of(protocol: Protocol, mode: TlsMode) -> crate::net::Scheme {
    use crate::net::Scheme;
    match (protocol, mode) {
        (Protocol::Imap, TlsMode::Implicit) => Scheme::Imaps,
        (Protocol::Imap, TlsMode::Starttls) => Scheme::Imap,
        (Protocol::Pop3, TlsMode::Implicit) => Scheme::Pop3s,
        (Protocol::Pop3, TlsMode::Starttls) => Scheme::Pop3,
    }
}

/// One port of one protocol.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Service {
    pub protocol: Protocol,
    pub port: u16,
    pub tls_mode: TlsMode,
    pub state: PortState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// A plaintext port: whether it offers STARTTLS/STLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls_offered: Option<bool>,
    /// `None` when the conversation never reached TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// What the server announces before login (over TLS when there is TLS):
    /// IMAP CAPABILITY, POP3 CAPA (upper case), `APOP` when the greeting offers it.
    pub capabilities: Vec<String>,
    /// The SASL mechanisms offered (`AUTH=` for IMAP, `SASL` for POP3), and
    /// `LOGIN`/`USER` for a plain login where it is allowed.
    pub auth_mechanisms: Vec<String>,
}

impl Service {
    /// The address scheme of this port (`imaps`, `imap`, `pop3s`, `pop3`).
    pub fn scheme(&self) -> crate::net::Scheme {
        scheme_of(self.protocol, self.tls_mode)
    }

    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Reached over TLS that the certificate check passed.
    pub fn secure(&self) -> bool {
        self.state == PortState::Open && self.tls.as_ref().is_some_and(|t| t.verified)
    }

    /// Answering at all.
    pub fn open(&self) -> bool {
        self.state == PortState::Open
    }
}

/// One folder, with a login.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct FolderStat {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub special_use: String,
    pub messages: u64,
    pub bytes: u64,
}

/// Storage quota (RFC 2087), in bytes.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Quota {
    pub used_bytes: u64,
    pub limit_bytes: u64,
}

/// A timed download of real messages.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Rate {
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub bytes_per_second: f64,
}

/// What a login showed.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct LoginReport {
    pub protocol: Protocol,
    /// The address logged in to (`imaps://USER@HOST:PORT`).
    pub address: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the server announces after login (IMAP).
    pub capabilities: Vec<String>,
    pub folders: Vec<FolderStat>,
    pub messages: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

impl LoginReport {
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }
}

/// What to use, in plain words.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct Advice {
    /// The protocol to use (`None`: nothing usable answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// The address to give `pull` (`USER` where no login was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Connections for a pull or a migration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Options to add to `pull`/`migrate`.
    pub options: Vec<String>,
    /// A full pull at the measured rate (one connection), in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_pull_seconds: Option<f64>,
    /// The reasoning, one sentence each.
    pub notes: Vec<String>,
    /// What could lose mail or expose it.
    pub warnings: Vec<String>,
}

/// The whole probe.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ProbeReport {
    pub host: String,
    pub probed_at: DateTime<Utc>,
    pub services: Vec<Service>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginReport>,
    pub advice: Advice,
}
