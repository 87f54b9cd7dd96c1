//! The job file's tables as serde reads them and schemars describes them, and the
//! checks types cannot express (one credential source, IMAP-only and POP3-only keys,
//! unique account names), which turn a [`JobFile`] into a [`Job`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::units::{ByteSize, CronExpr, Duration};
use super::Timing;
use crate::net::tls::Pin;
use crate::net::{Endpoint, SecretSource};

/// A job: accounts archived into one archive, on one schedule, within limits.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "mailvault job file", extend("$id" = "https://mailvault.invalid/schemas/job.schema.json"))]
pub struct JobFile {
    /// Archive directory (a leading `~/` is the home directory). Default: the
    /// `--archive` option, `$MAILVAULT_ARCHIVE`, or the user data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// When the accounts are pulled. Default: every hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Schedule>")]
    pub schedule: Option<Spanned<Schedule>>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// The accounts, one `[[accounts]]` table each.
    #[schemars(with = "Vec<Account>", length(min = 1))]
    pub accounts: Vec<Spanned<Account>>,
    /// Retention policies of the job's archive, one `[[retention]]` table each: set
    /// when the job starts (replacing a policy of the same name). Policies the file
    /// does not name are left as they are; `mailvault retention remove` removes one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<RetentionRule>")]
    pub retention: Vec<Spanned<RetentionRule>>,
}

/// A retention policy declared in a job file (as `mailvault retention set`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// The policy's name.
    pub name: String,
    /// The search query selecting what it covers, e.g. `"folder:Spam"` or `"*"`.
    pub query: String,
    /// How long to keep it: `"90d"`, `"6m"`, `"10y"` or `"forever"`.
    pub keep: String,
    /// Where the period starts: `"received"` (first archived, the default) or
    /// `"date"` (the Date header).
    #[serde(default)]
    pub from: RetentionFrom,
}

/// Where a declared policy's period starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RetentionFrom {
    #[default]
    Received,
    Date,
}

/// When to pull: every so often, or at the times of a cron pattern.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Pull this long after the previous run started, e.g. `"15m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// Or at the times of this cron pattern (UTC), e.g. `"0 */2 * * *"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronExpr>,
}

/// How hard a job may press on servers.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Connections open at once to one server (host and port), shared by every
    /// account and every job a `serve` runs; when jobs disagree the smallest wins.
    /// Folders watched with IDLE hold one each.
    #[serde(default = "default_connections_per_host")]
    #[schemars(range(min = 1))]
    pub connections_per_host: u32,
    /// Accounts of this job pulled at the same time.
    #[serde(default = "default_accounts_in_parallel")]
    #[schemars(range(min = 1))]
    pub accounts_in_parallel: u32,
    /// At most this many messages fetched per second, per account. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub messages_per_second: Option<u32>,
    /// At most this many bytes fetched per second, per account. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub bytes_per_second: Option<u64>,
    /// The largest message archived: one the server announces or sends larger is
    /// reported (folder and UID, or UIDL), not archived, not deleted, and not
    /// fetched again; `status` lists it. Default `"512MiB"`.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: ByteSize,
}

fn default_max_message_size() -> ByteSize {
    ByteSize(crate::remote::DEFAULT_MAX_MESSAGE_SIZE)
}

fn default_connections_per_host() -> u32 {
    4
}
fn default_accounts_in_parallel() -> u32 {
    4
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_per_host: default_connections_per_host(),
            accounts_in_parallel: default_accounts_in_parallel(),
            messages_per_second: None,
            bytes_per_second: None,
            max_message_size: default_max_message_size(),
        }
    }
}

/// What to do when a run fails.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Reconnects within a run after a lost connection or a timeout (each resumes
    /// from the last committed batch).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the first reconnect, and before the first new run after a run
    /// failed for a temporary reason; doubles each time, ±25 % jitter.
    #[serde(default = "default_backoff")]
    pub backoff: Duration,
    /// The longest wait between runs of a failing account.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Duration,
    /// Wait after a server refused the login (wrong password, disabled account)
    /// before trying that account again; doubles each time. A refused login is
    /// never retried within a run.
    #[serde(default = "default_auth_failure_backoff")]
    pub auth_failure_backoff: Duration,
}

fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> Duration {
    Duration::secs(30)
}
fn default_max_backoff() -> Duration {
    Duration::secs(3600)
}
fn default_auth_failure_backoff() -> Duration {
    Duration::secs(900)
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: default_attempts(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
            auth_failure_backoff: default_auth_failure_backoff(),
        }
    }
}

/// One mailbox to archive.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Its name in the archive (`account:NAME` in searches). Default: USER@HOST.
    /// Unique within the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `imaps://USER@HOST[:PORT]`, `imap://…` (STARTTLS), `pop3s://…` or `pop3://…` (STLS);
    /// with a `preset`, just `USER` (or `pop3:USER`).
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// Where the password comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Credential>,
    /// Where an OAuth2 access token comes from (XOAUTH2/OAUTHBEARER), instead of a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_token: Option<Credential>,
    /// Sign in with a stored OAuth2 sign-in (`mailvault login`), refreshed as the
    /// work goes, instead of a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Login>,
    /// Also trust the CA certificate(s) in this PEM file; a server certificate that
    /// is exactly one of them is trusted as it is (a self-signed one, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Trust only server certificates with one of these SHA-256 fingerprints
    /// (`"sha256:HEX"`; a refusal prints the server's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub tls_pin: Vec<Pin>,
    /// Do not verify the server's certificate (anyone on the path can read your mail).
    #[serde(default, skip_serializing_if = "is_false")]
    pub danger_accept_invalid_certs: bool,
    /// `imap://`/`pop3://` without any TLS: the password crosses the network in clear.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_plaintext: bool,
    /// Bound on each network wait.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// A provider preset (`presets/providers.toml`: `gmail`, `microsoft365`,
    /// `outlook`, `yahoo`, `icloud`, `fastmail`, `gmx`, `webde`, `t-online`,
    /// `mailbox.org`, or a site's own from `MAILVAULT_PRESETS`): `url` may then be
    /// just the user name (`pop3:USER` for its POP3), and `connections` stays
    /// within the provider's limit (Gmail 15, Microsoft 365 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub preset: Option<Spanned<String>>,
    /// Connections this account uses at most (each pulls one folder at a time).
    /// Default: 4, or the preset's limit when smaller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub connections: Option<u32>,
    /// IMAP: only folders matching one of these globs (`*`, `?`). Default: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folders: Vec<String>,
    /// IMAP: skip folders matching one of these globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// IMAP, service mode: folders watched with IDLE; mail arriving there is
    /// archived within seconds instead of at the next scheduled run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
    /// POP3: `keep` messages on the server (the default) or delete each
    /// `after-archive`, once its batch is durably stored.
    #[serde(default)]
    pub delete: DeleteMode,
    /// POP3: delete archived messages first archived at least this many days ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_older_than_days: Option<u32>,
    /// Also replay this account's messages into another IMAP account after each
    /// pull (a migration kept up to date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayTarget>,
}

/// `oauth2 = { provider = "…", client_id = "…", tenant = "…" }`: the account signs
/// in with the sign-in `mailvault login --account NAME --provider …` stored.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Login {
    /// As given to `mailvault login --provider`: `microsoft`, `google`, `generic` or
    /// another preset with OAuth2.
    pub provider: String,
    /// The client id the sign-in must have been made with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The Microsoft tenant, as given to `mailvault login --tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The name the sign-in is stored under (`login --account NAME`). Default: the
    /// account's name; a replay target's USER@HOST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// How to log in and trust a server (an account's or a replay target's keys).
#[derive(Clone, Debug)]
pub struct Login {
    pub password: Option<Credential>,
    pub oauth2_token: Option<Credential>,
    pub oauth2: Option<OAuth2Login>,
    pub tls_ca: Option<PathBuf>,
    pub tls_pin: Vec<Pin>,
    pub danger_accept_invalid_certs: bool,
    pub insecure_plaintext: bool,
    pub timeout: std::time::Duration,
}

macro_rules! login_of {
    ($t:ty) => {
        impl $t {
            pub fn login(&self) -> Login {
                Login {
                    password: self.password.clone(),
                    oauth2_token: self.oauth2_token.clone(),
                    oauth2: self.oauth2.clone(),
                    tls_ca: self.tls_ca.as_deref().map(|p| expand_home(&p.to_string_lossy())),
                    tls_pin: self.tls_pin.clone(),
                    danger_accept_invalid_certs: self.danger_accept_invalid_certs,
                    insecure_plaintext: self.insecure_plaintext,
                    timeout: self.timeout.0,
                }
            }
        }
    };
}
login_of!(Account);
login_of!(ReplayTarget);

fn default_timeout() -> Duration {
    Duration::secs(120)
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A replay target: an IMAP account that receives the pulled messages, with flags,
/// dates and folders, never twice.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayTarget {
    /// `imaps://USER@HOST[:PORT]` or `imap://…` (STARTTLS).
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// Where the password comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Credential>,
    /// Where an OAuth2 access token comes from (XOAUTH2/OAUTHBEARER), instead of a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_token: Option<Credential>,
    /// Sign in with a stored OAuth2 sign-in (`mailvault login`), refreshed as the
    /// work goes, instead of a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Login>,
    /// Also trust the CA certificate(s) in this PEM file; a server certificate that
    /// is exactly one of them is trusted as it is (a self-signed one, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Trust only server certificates with one of these SHA-256 fingerprints
    /// (`"sha256:HEX"`; a refusal prints the server's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub tls_pin: Vec<Pin>,
    /// Do not verify the server's certificate (anyone on the path can read your mail).
    #[serde(default, skip_serializing_if = "is_false")]
    pub danger_accept_invalid_certs: bool,
    /// `imap://`/`pop3://` without any TLS: the password crosses the network in clear.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_plaintext: bool,
    /// Bound on each network wait.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Archive folder (and its subfolders) → target folder, e.g. `"Sent Items" = "Sent"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, String>,
    /// Connections to the target.
    #[serde(default = "default_replay_connections")]
    #[schemars(range(min = 1))]
    pub connections: u32,
    /// Also replay messages deleted at the source after they were archived.
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_deleted: bool,
}

fn default_replay_connections() -> u32 {
    2
}

/// POP3 deletion after archiving.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteMode {
    #[default]
    Keep,
    AfterArchive,
}

/// Where a secret comes from: exactly one of `env`, `file`, `command`. A string in
/// its place (an inline secret) is refused.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// An environment variable of the mailvault process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The first line of this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The first line this shell command prints (e.g. `pass show mail/work`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            env: Option<String>,
            file: Option<PathBuf>,
            command: Option<String>,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Credential;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table: { env = \"VAR\" }, { file = \"PATH\" } or { command = \"CMD\" }")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Credential, E> {
                Err(E::custom(
                    "secrets are never written in a job file: give { env = \"VAR\" }, { file = \"PATH\" } or { command = \"CMD\" }",
                ))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Credential, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                let given = [t.env.is_some(), t.file.is_some(), t.command.is_some()];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err(serde::de::Error::custom("give exactly one of env, file and command"));
                }
                Ok(Credential {
                    env: t.env,
                    file: t.file,
                    command: t.command,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Credential {
    pub fn source(&self) -> SecretSource {
        match (&self.env, &self.file, &self.command) {
            (Some(v), _, _) => SecretSource::Env(v.clone()),
            (_, Some(f), _) => SecretSource::File(expand_home(&f.to_string_lossy())),
            (_, _, Some(c)) => SecretSource::Command(c.clone()),
            (None, None, None) => unreachable!("checked when read"),
        }
    }
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// A checked job.
#[derive(Clone, Debug)]
pub struct Job {
    /// The file's stem: `jobs/work.toml` is job `work`.
    pub name: String,
    pub archive: Option<PathBuf>,
    pub timing: Timing,
    pub limits: Limits,
    pub retry: RetryPolicy,
    pub accounts: Vec<JobAccount>,
    /// Retention policies to set in the job's archive when the job starts.
    pub retention: Vec<RetentionRule>,
}

/// A checked account: the file's table, its name and its parsed address.
#[derive(Clone, Debug)]
pub struct JobAccount {
    pub name: String,
    pub endpoint: Endpoint,
    pub spec: Account,
    /// The replay target's address, when there is one.
    pub replay_to: Option<Endpoint>,
    /// The provider preset's limit on simultaneous connections, when it has one.
    pub max_connections: Option<u32>,
}

impl JobAccount {
    pub fn is_imap(&self) -> bool {
        self.endpoint.scheme.is_imap()
    }
    /// Connections this account uses.
    pub fn connections(&self) -> u32 {
        let limit = self.max_connections.unwrap_or(u32::MAX);
        self.spec.connections.unwrap_or(4).min(limit).max(1)
    }
    /// `host:port`, the key of the per-host connection limit.
    pub fn host_key(&self) -> String {
        host_key(&self.endpoint)
    }
}

/// The key the per-host connection limit is kept under.
pub fn host_key(ep: &Endpoint) -> String {
    format!("{}:{}", ep.host.to_ascii_lowercase(), ep.port)
}

/// A check that failed, with where.
pub struct CheckError {
    pub span: Option<Range<usize>>,
    pub field: String,
    pub message: String,
}

fn fail<T>(span: Range<usize>, field: String, message: impl Into<String>) -> Result<T, CheckError> {
    Err(CheckError {
        span: Some(span),
        field,
        message: message.into(),
    })
}

impl Job {
    /// The checks beyond types.
    pub fn check(name: String, file: JobFile) -> Result<Job, CheckError> {
        let timing = match &file.schedule {
            None => Timing::Every(std::time::Duration::from_secs(3600)),
            Some(s) => match (&s.get_ref().every, &s.get_ref().cron) {
                (Some(_), Some(_)) => return fail(s.span(), "schedule".into(), "give `every` or `cron`, not both"),
                (Some(d), None) if d.0 < std::time::Duration::from_secs(1) => {
                    return fail(s.span(), "schedule.every".into(), "must be at least 1s")
                }
                (Some(d), None) => Timing::Every(d.0),
                (None, Some(c)) => Timing::Cron(Box::new(c.cron.clone())),
                (None, None) => return fail(s.span(), "schedule".into(), "give `every = \"15m\"` or `cron = \"…\"`"),
            },
        };
        if file.accounts.is_empty() {
            return fail(0..0, "accounts".into(), "a job needs at least one [[accounts]] table");
        }
        let mut accounts: Vec<JobAccount> = Vec::new();
        for (i, a) in file.accounts.iter().enumerate() {
            let span = a.span();
            let at = |f: &str| format!("accounts[{i}].{f}");
            let spec = a.get_ref().clone();
            let preset = match &spec.preset {
                None => None,
                Some(name) => Some(crate::presets::lookup(name.get_ref()).map_err(|e| CheckError {
                    span: Some(name.span()),
                    field: at("preset"),
                    message: e.to_string(),
                })?),
            };
            let url_error = |e: &dyn std::fmt::Display| CheckError {
                span: Some(spec.url.span()),
                field: at("url"),
                message: e.to_string(),
            };
            let endpoint = match preset {
                None => Endpoint::parse(spec.url.get_ref()).map_err(|e| url_error(&e))?,
                Some(p) => p.endpoint_for(spec.url.get_ref()).map_err(|e| url_error(&e))?,
            };
            let max_connections = preset.and_then(|p| p.max_connections);
            check_login(&spec.login(), &endpoint, span.clone(), &at)?;
            let imap = endpoint.scheme.is_imap();
            if !imap {
                for (key, set) in [
                    ("folders", !spec.folders.is_empty()),
                    ("exclude", !spec.exclude.is_empty()),
                    ("watch", !spec.watch.is_empty()),
                ] {
                    if set {
                        return fail(
                            span,
                            at(key),
                            format!("`{key}` applies to IMAP; POP3 serves one mailbox"),
                        );
                    }
                }
            } else if spec.delete != DeleteMode::Keep || spec.delete_older_than_days.is_some() {
                return fail(
                    span,
                    at("delete"),
                    "deleting applies to POP3; an IMAP pull never changes the server",
                );
            }
            if spec.delete == DeleteMode::AfterArchive && spec.delete_older_than_days.is_some() {
                return fail(
                    span,
                    at("delete_older_than_days"),
                    "give `delete = \"after-archive\"` or `delete_older_than_days`, not both",
                );
            }
            if let (Some(p), Some(max), Some(n)) = (preset, max_connections, spec.connections) {
                if n > max {
                    return fail(
                        span,
                        at("connections"),
                        format!("{n} is more than the {} preset allows ({max})", p.name),
                    );
                }
            }
            if spec.connections == Some(0) {
                return fail(span, at("connections"), "must be at least 1");
            }
            let replay_to = match &spec.replay {
                None => None,
                Some(r) => {
                    let ep = Endpoint::parse(r.url.get_ref()).map_err(|e| CheckError {
                        span: Some(r.url.span()),
                        field: at("replay.url"),
                        message: e.to_string(),
                    })?;
                    if !ep.scheme.is_imap() {
                        return fail(
                            r.url.span(),
                            at("replay.url"),
                            "a replay target is an IMAP account (imaps:// or imap://)",
                        );
                    }
                    check_login(&r.login(), &ep, span.clone(), &|f| at(&format!("replay.{f}")))?;
                    Some(ep)
                }
            };
            let name = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("{}@{}", endpoint.user, endpoint.host));
            if accounts.iter().any(|o| o.name == name) {
                return fail(
                    span,
                    at("name"),
                    format!("account name {name:?} is used twice in this job; give each a `name`"),
                );
            }
            accounts.push(JobAccount {
                name,
                endpoint,
                spec,
                replay_to,
                max_connections,
            });
        }
        for (key, v) in [
            ("connections_per_host", file.limits.connections_per_host),
            ("accounts_in_parallel", file.limits.accounts_in_parallel),
        ] {
            if v == 0 {
                return fail(0..0, format!("limits.{key}"), "must be at least 1");
            }
        }
        let retention = check_retention(&file.retention)?;
        Ok(Job {
            name,
            archive: file.archive.as_deref().map(expand_home),
            timing,
            limits: file.limits,
            retry: file.retry,
            accounts,
            retention,
        })
    }
}

/// Each declared policy's period and query read, names given once.
fn check_retention(rules: &[Spanned<RetentionRule>]) -> Result<Vec<RetentionRule>, CheckError> {
    let mut out: Vec<RetentionRule> = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let (span, rule) = (r.span(), r.get_ref());
        let at = |f: &str| format!("retention[{i}].{f}");
        if rule.name.is_empty() || rule.name.contains('\0') {
            return fail(span, at("name"), "a policy needs a name (no NUL byte)");
        }
        if out.iter().any(|o| o.name == rule.name) {
            return fail(span, at("name"), format!("policy {:?} is declared twice", rule.name));
        }
        if let Err(e) = rule.keep.parse::<crate::plan::retention::Keep>() {
            return fail(span, at("keep"), e.to_string());
        }
        match crate::query::parse(&rule.query) {
            Err(e) => return fail(span, at("query"), e.to_string()),
            Ok(q) if q.mentions_holds() => {
                return fail(span, at("query"), "a policy's query cannot refer to legal holds")
            }
            Ok(_) => {}
        }
        out.push(rule.clone());
    }
    Ok(out)
}

fn check_login(
    login: &Login,
    ep: &Endpoint,
    span: Range<usize>,
    at: &dyn Fn(&str) -> String,
) -> Result<(), CheckError> {
    let given = [
        login.password.is_some(),
        login.oauth2_token.is_some(),
        login.oauth2.is_some(),
    ];
    match given.iter().filter(|&&g| g).count() {
        2.. => fail(
            span,
            at("oauth2"),
            "give one of `password`, `oauth2_token` and `oauth2`",
        ),
        0 => fail(
            span,
            at("password"),
            "no credential: give password = { env = \"VAR\" } (or file = / command =), oauth2 = { provider = \"…\" } \
             (a sign-in made by `mailvault login`), or oauth2_token = { command = \"…\" }",
        ),
        _ if login.insecure_plaintext && ep.scheme.implicit_tls() => fail(
            span,
            at("insecure_plaintext"),
            format!("{}:// is TLS from the start", ep.scheme.as_str()),
        ),
        _ => Ok(()),
    }
}
