//! `mailvault probe`: what a mail server offers and what suits the user. Four ports
//! are asked at once — IMAP over TLS (993) and with STARTTLS (143), POP3 over TLS
//! (995) and with STLS (110) — for their greeting, TLS version and certificate
//! (checked, and when it fails the check, read anyway to say why), and what they
//! announce before login. With a login, the mailbox's folders, message counts,
//! sizes and quota, and a timed download. [`advice`] turns it into plain advice.
//!
//! - [`report`]: the findings as data (`schemas/output/probe.v1.schema.json`).
//! - [`advice`]: pure, table-tested.
//! - [`wire`]: the lines said to each port.

pub mod advice;
pub mod report;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::BufReader;

use crate::net::cert::CertificateInfo;
use crate::net::tls::{self, TlsError};
use crate::net::{Endpoint, MaybeTls, TlsOptions};
use crate::remote::{Auth, ConnectOptions};
use report::{FolderStat, LoginReport, PortState, ProbeReport, Protocol, Quota, Rate, Service, TlsMode, TlsReport};
use wire::WireError;

/// The ports to ask.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub imaps: u16,
    pub imap: u16,
    pub pop3s: u16,
    pub pop3: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            imaps: 993,
            imap: 143,
            pop3s: 995,
            pop3: 110,
        }
    }
}

/// A login to look inside the mailbox.
pub struct ProbeLogin {
    pub user: String,
    pub auth: Auth,
}

/// What to probe, and how.
pub struct ProbeOptions {
    pub host: String,
    pub ports: Ports,
    pub tls: TlsOptions,
    /// Bound on each port's conversation.
    pub timeout: Duration,
    pub login: Option<ProbeLogin>,
    /// The user the advice's address names when there is no login.
    pub user: Option<String>,
    /// Connections a provider preset for this host gives.
    pub preset_connections: Option<u32>,
    /// Bytes downloaded at most to measure the rate.
    pub sample_bytes: u64,
}

/// What went wrong before anything could be probed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Probes `o.host`.
pub async fn probe(o: &ProbeOptions) -> Result<ProbeReport, ProbeError> {
    let verified = tls::client_config(&o.tls)?;
    let anyone = tls::client_config(&TlsOptions {
        danger_accept_invalid_certs: true,
        ..o.tls.clone()
    })?;
    let configs = Configs { verified, anyone };
    let p = o.ports;
    let asks = [
        (Protocol::Imap, p.imaps, TlsMode::Implicit),
        (Protocol::Imap, p.imap, TlsMode::Starttls),
        (Protocol::Pop3, p.pop3s, TlsMode::Implicit),
        (Protocol::Pop3, p.pop3, TlsMode::Starttls),
    ];
    let services: Vec<Service> = futures::future::join_all(
        asks.iter()
            .map(|&(protocol, port, mode)| probe_service(o, &configs, protocol, port, mode)),
    )
    .await;
    let login = match &o.login {
        Some(l) => Some(log_in(o, l, &services, &configs).await),
        None => None,
    };
    let now = chrono::Utc::now();
    let advice = advice::advise(&advice::Facts {
        host: &o.host,
        services: &services,
        login: login.as_ref(),
        user: o.login.as_ref().map(|l| l.user.as_str()).or(o.user.as_deref()),
        preset_connections: o.preset_connections,
        now,
    });
    Ok(ProbeReport {
        host: o.host.clone(),
        probed_at: now,
        services,
        login,
        advice,
    })
}

struct Configs {
    verified: Arc<rustls::ClientConfig>,
    anyone: Arc<rustls::ClientConfig>,
}

fn endpoint(o: &ProbeOptions, protocol: Protocol, port: u16, mode: TlsMode, user: &str) -> Endpoint {
    Endpoint {
        scheme: report::scheme_of(protocol, mode),
        user: user.to_string(),
        host: o.host.clone(),
        port,
    }
}

/// One port: first with the certificate checked; when the check fails, again
/// without it, to read what the server offers and why its certificate failed.
async fn probe_service(o: &ProbeOptions, c: &Configs, protocol: Protocol, port: u16, mode: TlsMode) -> Service {
    let mut s = Service {
        protocol,
        port,
        tls_mode: mode,
        state: PortState::Open,
        error: None,
        greeting: None,
        starttls_offered: None,
        tls: None,
        capabilities: Vec::new(),
        auth_mechanisms: Vec::new(),
    };
    let ep = endpoint(o, protocol, port, mode, "probe");
    let first = tokio::time::timeout(o.timeout, converse(&ep, c.verified.clone(), &mut s)).await;
    let failure = match first {
        Err(_) => Some(Failure::Timeout),
        Ok(r) => r.err(),
    };
    match failure {
        None => {}
        Some(Failure::Certificate(problem)) => {
            let mut again = Service { ..s.clone() };
            let second = tokio::time::timeout(o.timeout, converse(&ep, c.anyone.clone(), &mut again)).await;
            s = again;
            if let Some(t) = s.tls.as_mut() {
                t.verified = false;
                t.problem = Some(problem);
            }
            if let Ok(Err(f)) | Err(f) = second.map_err(|_| Failure::Timeout) {
                f.record(&mut s);
            }
        }
        Some(f) => f.record(&mut s),
    }
    s
}

/// Why a conversation stopped.
enum Failure {
    Connect(std::io::Error),
    Timeout,
    Certificate(String),
    Other(String),
}

impl Failure {
    fn record(self, s: &mut Service) {
        let (state, error) = match self {
            Failure::Connect(e) => (advice::state_of(&e), e.to_string()),
            Failure::Timeout => (PortState::Timeout, "no answer in time".to_string()),
            Failure::Certificate(p) | Failure::Other(p) => (PortState::Error, p),
        };
        if s.greeting.is_none() {
            s.state = state;
        }
        s.error = Some(error);
    }
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Failure {
        Failure::Other(e.0)
    }
}

async fn tcp(ep: &Endpoint, limit: Duration) -> Result<crate::net::Tcp, Failure> {
    match crate::net::tcp_connect(ep, limit, None).await {
        Ok(t) => Ok(t),
        Err(crate::net::ConnectError::Failed { source, .. }) => Err(Failure::Connect(source)),
        Err(crate::net::ConnectError::Timeout { .. }) => Err(Failure::Timeout),
    }
}

/// The TLS handshake; a certificate the check refuses is a [`Failure::Certificate`].
async fn secure(
    tcp: crate::net::Tcp,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    s: &mut Service,
) -> Result<MaybeTls, Failure> {
    match tls::handshake(tcp, host, config).await {
        Ok(t) => {
            s.tls = Some(tls_report(&t));
            Ok(MaybeTls::Tls(Box::new(t)))
        }
        Err(e @ (TlsError::Untrusted { .. } | TlsError::WrongName { .. } | TlsError::PinMismatch { .. })) => {
            s.tls = Some(TlsReport {
                version: String::new(),
                cipher: String::new(),
                verified: false,
                problem: None,
                certificate: None,
                days_left: None,
            });
            Err(Failure::Certificate(certificate_problem(&e)))
        }
        Err(e) => Err(Failure::Other(e.to_string())),
    }
}

/// The reason in a certificate refusal, without the advice around it.
fn certificate_problem(e: &TlsError) -> String {
    match e {
        TlsError::Untrusted { detail, .. } | TlsError::WrongName { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

fn tls_report(t: &tokio_rustls::client::TlsStream<crate::net::Tcp>) -> TlsReport {
    let (_, conn) = t.get_ref();
    let certificate = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|der| CertificateInfo::from_der(der).ok());
    let days_left = certificate.as_ref().map(|c| c.days_left(chrono::Utc::now()));
    TlsReport {
        version: conn
            .protocol_version()
            .map(|v| v.as_str().unwrap_or("unknown").replace("TLSv1_", "TLSv1."))
            .unwrap_or_default(),
        cipher: conn
            .negotiated_cipher_suite()
            .map(|c| c.suite().as_str().unwrap_or("unknown").to_string())
            .unwrap_or_default(),
        verified: true,
        problem: None,
        certificate,
        days_left,
    }
}

/// Greeting, capabilities, and STARTTLS/STLS where the port starts in plaintext.
async fn converse(ep: &Endpoint, config: Arc<rustls::ClientConfig>, s: &mut Service) -> Result<(), Failure> {
    let t = tcp(ep, Duration::from_secs(10)).await?;
    let stream = match s.tls_mode {
        TlsMode::Implicit => secure(t, &ep.host, config.clone(), s).await?,
        TlsMode::Starttls => MaybeTls::Plain(t),
    };
    let r = BufReader::new(stream);
    match s.protocol {
        Protocol::Imap => converse_imap(r, ep, config, s).await,
        Protocol::Pop3 => converse_pop3(r, ep, config, s).await,
    }
}

async fn converse_imap(
    mut r: BufReader<MaybeTls>,
    ep: &Endpoint,
    config: Arc<rustls::ClientConfig>,
    s: &mut Service,
) -> Result<(), Failure> {
    s.greeting = Some(wire::imap_greeting(&mut r).await?);
    let mut caps = wire::imap_capabilities(&mut r, "p1").await?;
    if s.tls_mode == TlsMode::Starttls {
        let offered = caps.iter().any(|c| c == "STARTTLS");
        s.starttls_offered = Some(offered);
        if offered && wire::imap_starttls(&mut r, "p2").await? {
            let plain = upgrade(r)?;
            let mut tls = BufReader::new(secure(plain, &ep.host, config, s).await?);
            caps = wire::imap_capabilities(&mut tls, "p3").await?;
            s.auth_mechanisms = imap_mechanisms(&caps);
            s.capabilities = caps;
            wire::imap_logout(&mut tls).await;
            return Ok(());
        }
    }
    s.auth_mechanisms = imap_mechanisms(&caps);
    s.capabilities = caps;
    wire::imap_logout(&mut r).await;
    Ok(())
}

fn imap_mechanisms(caps: &[String]) -> Vec<String> {
    let mut m: Vec<String> = caps
        .iter()
        .filter_map(|c| c.strip_prefix("AUTH="))
        .map(str::to_string)
        .collect();
    if !caps.iter().any(|c| c == "LOGINDISABLED") && !m.iter().any(|x| x == "LOGIN") {
        m.push("LOGIN".into());
    }
    m
}

/// The TCP connection under a plaintext conversation, for its TLS handshake. Bytes
/// the server sent after agreeing are refused: they would be read as if secured.
fn upgrade(r: BufReader<MaybeTls>) -> Result<crate::net::Tcp, Failure> {
    if !r.buffer().is_empty() {
        return Err(Failure::Other(
            "the server sent data after agreeing to start TLS".into(),
        ));
    }
    match r.into_inner() {
        MaybeTls::Plain(t) => Ok(t),
        _ => Err(Failure::Other("already TLS".into())),
    }
}

async fn converse_pop3(
    mut r: BufReader<MaybeTls>,
    ep: &Endpoint,
    config: Arc<rustls::ClientConfig>,
    s: &mut Service,
) -> Result<(), Failure> {
    let (greeting, apop) = wire::pop3_greeting(&mut r).await?;
    s.greeting = Some(greeting);
    let mut caps = wire::pop3_capa(&mut r).await?;
    if s.tls_mode == TlsMode::Starttls {
        let offered = caps.iter().any(|c| c == "STLS");
        s.starttls_offered = Some(offered);
        if offered && wire::pop3_stls(&mut r).await? {
            let plain = upgrade(r)?;
            let mut tls = BufReader::new(secure(plain, &ep.host, config, s).await?);
            caps = wire::pop3_capa(&mut tls).await?;
            finish_pop3(s, caps, apop);
            wire::pop3_quit(&mut tls).await;
            return Ok(());
        }
    }
    finish_pop3(s, caps, apop);
    wire::pop3_quit(&mut r).await;
    Ok(())
}

fn finish_pop3(s: &mut Service, caps: Vec<String>, apop: bool) {
    let mut m: Vec<String> = caps
        .iter()
        .filter_map(|c| c.strip_prefix("SASL "))
        .flat_map(|rest| rest.split_whitespace().map(str::to_ascii_uppercase))
        .collect();
    if caps.iter().any(|c| c == "USER") {
        m.push("USER".into());
    }
    if apop {
        m.push("APOP".into());
    }
    s.auth_mechanisms = m;
    s.capabilities = caps
        .iter()
        .map(|c| c.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    if apop {
        s.capabilities.push("APOP".into());
    }
}

/// Logs in to the best secure service: IMAP when there is one, else POP3.
async fn log_in(o: &ProbeOptions, l: &ProbeLogin, services: &[Service], c: &Configs) -> LoginReport {
    let pick = |p: Protocol| {
        services
            .iter()
            .filter(|s| s.protocol == p && s.secure())
            .min_by_key(|s| s.tls_mode == TlsMode::Starttls)
    };
    let Some(s) = pick(Protocol::Imap).or_else(|| pick(Protocol::Pop3)) else {
        return LoginReport::failed(
            Protocol::Imap,
            String::new(),
            "no port offers TLS with a trusted certificate: not sending a password".into(),
        );
    };
    let ep = endpoint(o, s.protocol, s.port, s.tls_mode, &l.user);
    let address = ep.to_string();
    let co = ConnectOptions {
        endpoint: ep,
        tls: c.verified.clone(),
        insecure_plaintext: false,
        auth: l.auth.clone(),
        oauth2_mechanism: Default::default(),
        compress: true,
        io_timeout: o.timeout,
        slots: None,
        max_message_size: crate::remote::DEFAULT_MAX_MESSAGE_SIZE,
    };
    let r = match s.protocol {
        Protocol::Imap => look_inside_imap(&co, o.sample_bytes).await,
        Protocol::Pop3 => look_inside_pop3(&co).await,
    };
    r.unwrap_or_else(|e| LoginReport::failed(s.protocol, address, e))
}

impl LoginReport {
    fn failed(protocol: Protocol, address: String, error: String) -> LoginReport {
        LoginReport {
            protocol,
            address,
            ok: false,
            error: Some(error),
            capabilities: Vec::new(),
            folders: Vec::new(),
            messages: 0,
            bytes: 0,
            quota: None,
            rate: None,
        }
    }
}

async fn look_inside_imap(co: &ConnectOptions, sample_bytes: u64) -> Result<LoginReport, String> {
    let server = co.endpoint.to_string();
    let t = co.io_timeout;
    let mut c = crate::imap::connect::connect(co).await.map_err(|e| e.to_string())?;
    let caps = c.session.capabilities().await.map_err(|e| e.to_string())?;
    let capabilities: Vec<String> = caps
        .iter()
        .map(|c| match c {
            async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".to_string(),
            async_imap::types::Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
            async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
        })
        .collect();
    let listed = crate::imap::pull::list_all(&mut c, &server, t)
        .await
        .map_err(|e| e.to_string())?;
    let mut folders = Vec::new();
    let mut sizes_of_largest: (u64, Vec<(u32, u64)>, String) = (0, Vec::new(), String::new());
    for f in listed {
        let sizes = folder_sizes(&mut c.session, &f.remote, t)
            .await
            .map_err(|e| format!("{}: {e}", f.name))?;
        let bytes = sizes.iter().map(|s| s.1).sum();
        if sizes.len() as u64 > sizes_of_largest.0 {
            sizes_of_largest = (sizes.len() as u64, sizes.clone(), f.remote.clone());
        }
        folders.push(FolderStat {
            name: f.name,
            special_use: f.special_use,
            messages: sizes.len() as u64,
            bytes,
        });
    }
    let quota = if capabilities.iter().any(|c| c == "QUOTA") {
        quota_of(&mut c.session).await
    } else {
        None
    };
    let rate = measure(
        &mut c.session,
        &sizes_of_largest.2,
        &sizes_of_largest.1,
        sample_bytes,
        t,
    )
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), c.session.logout()).await;
    Ok(LoginReport {
        protocol: Protocol::Imap,
        address: server,
        ok: true,
        error: None,
        capabilities,
        messages: folders.iter().map(|f| f.messages).sum(),
        bytes: folders.iter().map(|f| f.bytes).sum(),
        folders,
        quota,
        rate,
    })
}

/// `(uid, RFC822.SIZE)` of every message of a folder.
async fn folder_sizes(
    s: &mut crate::imap::connect::ImapSession,
    remote: &str,
    t: Duration,
) -> Result<Vec<(u32, u64)>, String> {
    let run = async {
        let mb = s.examine(remote).await.map_err(|e| e.to_string())?;
        if mb.exists == 0 {
            return Ok(Vec::new());
        }
        let mut st = s
            .uid_fetch("1:*", "(UID RFC822.SIZE)")
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(item) = st.next().await {
            let item = item.map_err(|e| e.to_string())?;
            if let Some(uid) = item.uid {
                out.push((uid, item.size.unwrap_or(0) as u64));
            }
        }
        Ok(out)
    };
    tokio::time::timeout(t.max(Duration::from_secs(30)), run)
        .await
        .map_err(|_| "listing sizes took too long".to_string())?
}

async fn quota_of(s: &mut crate::imap::connect::ImapSession) -> Option<Quota> {
    let (_, quotas) = s.get_quota_root("INBOX").await.ok()?;
    quotas
        .iter()
        .flat_map(|q| q.resources.iter())
        .find_map(|r| match r.name {
            async_imap::types::QuotaResourceName::Storage => Some(Quota {
                used_bytes: r.usage.saturating_mul(1024),
                limit_bytes: r.limit.saturating_mul(1024),
            }),
            _ => None,
        })
}

/// Downloads whole messages (up to `budget` bytes, at least one) and times it.
async fn measure(
    s: &mut crate::imap::connect::ImapSession,
    remote: &str,
    sizes: &[(u32, u64)],
    budget: u64,
    t: Duration,
) -> Option<Rate> {
    let mut take = Vec::new();
    let mut planned = 0u64;
    for &(uid, size) in sizes {
        if !take.is_empty() && planned + size > budget {
            break;
        }
        take.push(uid.to_string());
        planned += size;
    }
    if take.is_empty() {
        return None;
    }
    let started = Instant::now();
    let run = async {
        s.examine(remote).await.ok()?;
        let mut st = s.uid_fetch(take.join(","), "BODY.PEEK[]").await.ok()?;
        let (mut n, mut bytes) = (0u64, 0u64);
        while let Some(item) = st.next().await {
            let item = item.ok()?;
            bytes += item.body().map_or(0, |b| b.len() as u64);
            n += 1;
        }
        Some((n, bytes))
    };
    let (messages, bytes) = tokio::time::timeout(t.max(Duration::from_secs(60)), run).await.ok()??;
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    Some(Rate {
        messages,
        bytes,
        seconds,
        bytes_per_second: bytes as f64 / seconds,
    })
}

async fn look_inside_pop3(co: &ConnectOptions) -> Result<LoginReport, String> {
    let mut c = crate::pop3::client::Pop3Client::connect(co, Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let list = c.list().await.map_err(|e| e.to_string())?;
    let _ = c.quit().await;
    let bytes = list.iter().map(|m| m.1).sum();
    Ok(LoginReport {
        protocol: Protocol::Pop3,
        address: co.endpoint.to_string(),
        ok: true,
        error: None,
        capabilities: Vec::new(),
        folders: vec![FolderStat {
            name: "INBOX".into(),
            special_use: String::new(),
            messages: list.len() as u64,
            bytes,
        }],
        messages: list.len() as u64,
        bytes,
        quota: None,
        rate: None,
    })
}
