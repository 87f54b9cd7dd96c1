//! One run of one account: read its credential, pull it (IMAP or POP3) within the
//! service's limits, replay it when the job says so, and say how it went and
//! whether to retry soon or late. (The caller brings the search index up to date.)

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, info_span, warn, Instrument};

use super::ArchiveContext;
use crate::control::{Control, Pace};
use crate::imap::{ImapError, PullOptions};
use crate::job::{DeleteMode, Job, JobAccount, Login, Outcome};
use crate::net::{tls, Endpoint, TlsOptions};
use crate::oauth::{OAuthError, TokenSource, TokenStore};
use crate::plan::folder_map::{Mapping, Rule};
use crate::plan::pop3_sync::DeletePolicy;
use crate::pop3::{Pop3Error, Pop3PullOptions, Pop3Session};
use crate::remote::{Auth, BatchLimits, ConnectOptions, NoProgress, PullSummary, Sessions};
use crate::replay::run::{ReplayOptions, ReplayReport};

/// What one run of an account did.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct AccountRun {
    pub job: String,
    pub account: String,
    pub server: String,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub outcome: Outcome,
    /// The run was cut short by a stop (SIGTERM/SIGINT); what it committed stays.
    pub stopped: bool,
    /// New messages stored (not in the archive before).
    pub new_messages: u64,
    pub fetched: u64,
    pub fetched_bytes: u64,
    /// Folders that failed, with why; or the error that stopped the whole run.
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayReport>,
}

/// Why a run failed as a whole.
pub struct RunFailure {
    pub outcome: Outcome,
    pub message: String,
}

impl RunFailure {
    /// A refused login or an unreadable credential is permanent; the rest may pass.
    fn of(permanent: bool, e: impl std::fmt::Display) -> RunFailure {
        RunFailure {
            outcome: if permanent {
                Outcome::Permanent
            } else {
                Outcome::Temporary
            },
            message: e.to_string(),
        }
    }

    fn needs_login(e: impl std::fmt::Display) -> RunFailure {
        RunFailure {
            outcome: Outcome::NeedsLogin,
            message: e.to_string(),
        }
    }
}

impl From<ImapError> for RunFailure {
    fn from(e: ImapError) -> RunFailure {
        if e.needs_login() {
            return RunFailure::needs_login(e);
        }
        RunFailure::of(matches!(e, ImapError::Auth { .. } | ImapError::Secret(_)), e)
    }
}

impl From<Pop3Error> for RunFailure {
    fn from(e: Pop3Error) -> RunFailure {
        if e.needs_login() {
            return RunFailure::needs_login(e);
        }
        RunFailure::of(matches!(e, Pop3Error::Auth { .. } | Pop3Error::Secret(_)), e)
    }
}

/// Which folders this run pulls: all the job's (a scheduled run), or only those
/// IDLE saw change.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub only: Vec<String>,
}

/// Runs `acct` of `job` once.
pub async fn run(env: &ArchiveContext, job: &Job, acct: &JobAccount, scope: &Scope) -> AccountRun {
    let started = Utc::now();
    let span = info_span!("account", job = %job.name, account = %acct.name);
    let mut run = AccountRun {
        job: job.name.clone(),
        account: acct.name.clone(),
        server: acct.endpoint.to_string(),
        started,
        ended: started,
        outcome: Outcome::Ok,
        stopped: false,
        new_messages: 0,
        fetched: 0,
        fetched_bytes: 0,
        errors: Vec::new(),
        pull: None,
        replay: None,
    };
    let result = pull_and_replay(env, job, acct, scope, &mut run)
        .instrument(span.clone())
        .await;
    if let Err(f) = result {
        run.outcome = f.outcome;
        run.errors.push(f.message);
    }
    run.stopped = env.stop.requested();
    run.ended = Utc::now();
    let _e = span.enter();
    if run.errors.is_empty() {
        info!(new = run.new_messages, fetched = run.fetched, "account done");
    } else {
        warn!(outcome = ?run.outcome, errors = %run.errors.join("; "), "account failed");
    }
    run
}

async fn pull_and_replay(
    env: &ArchiveContext,
    job: &Job,
    acct: &JobAccount,
    scope: &Scope,
    run: &mut AccountRun,
) -> Result<(), RunFailure> {
    let mut connect = connect_options(env, &acct.endpoint, &acct.spec.login(), &acct.name).await?;
    connect.max_message_size = job.limits.max_message_size.0;
    let control = Control {
        stop: env.stop.clone(),
        pace: Pace::new(job.limits.messages_per_second, job.limits.bytes_per_second),
    };
    let backoff = job.retry.backoff.0.min(Duration::from_secs(30));
    let summary = if acct.is_imap() {
        let o = PullOptions {
            connect,
            account: acct.name.clone(),
            include: if scope.only.is_empty() {
                acct.spec.folders.clone()
            } else {
                scope.only.clone()
            },
            exclude: acct.spec.exclude.clone(),
            namespaces: Vec::new(),
            // The job's number (its hosts' limits are shared by its accounts).
            connections: Sessions::exactly(acct.connections() as usize),
            limits: BatchLimits::default(),
            max_retries: job.retry.attempts,
            backoff,
            control,
        };
        crate::imap::pull(&o, &env.writer, Arc::new(NoProgress)).await?
    } else {
        let o = Pop3PullOptions {
            connect,
            account: acct.name.clone(),
            delete: match (acct.spec.delete, acct.spec.delete_older_than_days) {
                (DeleteMode::AfterArchive, _) => DeletePolicy::AfterArchive,
                (DeleteMode::Keep, Some(days)) => DeletePolicy::OlderThan { days },
                (DeleteMode::Keep, None) => DeletePolicy::Keep,
            },
            session: Pop3Session::default(),
            limits: BatchLimits::default(),
            max_retries: job.retry.attempts,
            backoff,
            control,
        };
        crate::pop3::pull(&o, &env.writer, &NoProgress).await?
    };
    run.new_messages = summary.total.new_messages;
    run.fetched = summary.total.fetched;
    run.fetched_bytes = summary.total.fetched_bytes;
    let failed: Vec<String> = summary
        .folders
        .iter()
        .filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.folder)))
        .collect();
    let complete = failed.is_empty();
    if !complete && !env.stop.requested() {
        run.outcome = Outcome::Temporary;
        run.errors.extend(failed);
    }
    run.pull = Some(summary);
    if let (Some(target), Some(ep)) = (&acct.spec.replay, &acct.replay_to) {
        if !complete {
            return Ok(()); // an incomplete account is not replayed
        }
        let connect = connect_options(env, ep, &target.login(), &format!("{}@{}", ep.user, ep.host)).await?;
        let o = ReplayOptions {
            connect,
            mapping: Mapping {
                rules: target
                    .map
                    .iter()
                    .map(|(from, to)| Rule {
                        from: from.trim_matches('/').into(),
                        to: to.trim_matches('/').into(),
                    })
                    .collect(),
                roles: true,
            },
            pipeline: Default::default(),
            chunk_messages: 1000,
            chunk_bytes: 64 << 20,
            pace: Pace::new(job.limits.messages_per_second, job.limits.bytes_per_second),
            max_retries: job.retry.attempts,
            backoff,
            connections: target.connections.max(1) as usize,
            dry_run: false,
        };
        let filter = crate::archive::PlacementFilter {
            accounts: vec![acct.name.clone()],
            ..Default::default()
        };
        let archive = env.archive.clone();
        let include_deleted = target.include_deleted;
        let items = tokio::task::spawn_blocking(move || crate::replay::run::select(&archive, &filter, include_deleted))
            .await
            .map_err(|e| RunFailure::of(false, format!("selecting placements to replay: {e}")))?
            .map_err(|e| RunFailure::of(false, e))?;
        // The service reads these messages for the target: in the access log
        // first, like every other read.
        let archive = env.archive.clone();
        let what = format!("job {} account:{:?} replay to {ep}", job.name, acct.name);
        let count = items.len() as u64;
        tokio::task::spawn_blocking(move || {
            let user = crate::identity::os_user();
            crate::access::record(
                archive.dir(),
                archive.access_log_key(),
                &crate::access::Access {
                    user: &user,
                    action: crate::access::Action::Replay,
                    query: Some(&what),
                    ids: &[],
                    count,
                },
            )
        })
        .await
        .map_err(|e| RunFailure::of(false, format!("recording the replay in the access log: {e}")))?
        .map_err(|e| RunFailure::of(false, e))?;
        let report = crate::replay::run::replay(&env.archive, &o, &items, &NoProgress)
            .await
            .map_err(|e| match e {
                crate::replay::run::ReplayError::Imap(i) if i.needs_login() => {
                    RunFailure::needs_login(format!("replay to {ep}: {i}"))
                }
                e => {
                    let refused = matches!(e, crate::replay::run::ReplayError::Imap(ImapError::Auth { .. }));
                    RunFailure::of(refused, format!("replay to {ep}: {e}"))
                }
            })?;
        if report.problems() > 0 {
            run.outcome = Outcome::Temporary;
            run.errors.push(format!(
                "replay to {ep}: {} problem(s), see the report",
                report.problems()
            ));
        }
        run.replay = Some(report);
    }
    Ok(())
}

/// How `login` signs in: a stored OAuth2 sign-in (checked against the job's
/// provider, client id and tenant), else the credential read off the async threads.
async fn auth(env: &ArchiveContext, ep: &Endpoint, login: &Login, sign_in: &str) -> Result<Auth, RunFailure> {
    if let Some(o) = &login.oauth2 {
        let name = o.account.clone().unwrap_or_else(|| sign_in.to_string());
        let (store, want) = (TokenStore::of(&env.archive), o.clone());
        let opened = tokio::task::spawn_blocking(move || {
            let source = TokenSource::shared(store.clone(), &name)?;
            let stored = store.load(&name)?;
            stored
                .made_for(&want.provider, want.client_id.as_deref(), want.tenant.as_deref())
                .map_err(|detail| OAuthError::NeedsLogin { account: name, detail })?;
            Ok::<_, OAuthError>(source)
        })
        .await
        .map_err(|e| RunFailure::of(false, format!("{ep}: reading the sign-in: {e}")))?;
        return match opened {
            Ok(s) => Ok(Auth::OAuth2SignIn(s)),
            Err(e) if e.needs_login() => Err(RunFailure::needs_login(format!("{ep}: {e}"))),
            Err(e) => Err(RunFailure::of(false, format!("{ep}: {e}"))),
        };
    }
    let (cred, oauth) = match (&login.password, &login.oauth2_token) {
        (Some(p), _) => (p.source(), false),
        (None, Some(t)) => (t.source(), true),
        (None, None) => unreachable!("checked when the job was read"),
    };
    let secret = tokio::task::spawn_blocking(move || cred.read())
        .await
        .map_err(|e| RunFailure::of(false, format!("{ep}: reading the credential: {e}")))?
        .map_err(|e| RunFailure::of(true, format!("{ep}: {e}")))?;
    Ok(if oauth {
        Auth::OAuth2(secret)
    } else {
        Auth::Password(secret)
    })
}

/// Reads the credential (a command may run: off the async threads) and builds the
/// TLS configuration; the connection takes a slot of the server's limit. A stored
/// OAuth2 sign-in is looked up under `sign_in` unless the job names another.
pub async fn connect_options(
    env: &ArchiveContext,
    ep: &Endpoint,
    login: &Login,
    sign_in: &str,
) -> Result<ConnectOptions, RunFailure> {
    let auth = auth(env, ep, login, sign_in).await?;
    let tls = tls::client_config(&TlsOptions {
        ca_file: login.tls_ca.clone(),
        pins: login.tls_pin.clone(),
        danger_accept_invalid_certs: login.danger_accept_invalid_certs,
    })
    .map_err(|e| RunFailure::of(true, format!("{ep}: {e}")))?;
    Ok(ConnectOptions {
        endpoint: ep.clone(),
        tls,
        insecure_plaintext: login.insecure_plaintext,
        auth,
        oauth2_mechanism: Default::default(),
        compress: true,
        io_timeout: login.timeout,
        slots: env.slots.of(&crate::job::host_key(ep)),
        max_message_size: crate::remote::DEFAULT_MAX_MESSAGE_SIZE,
    })
}
