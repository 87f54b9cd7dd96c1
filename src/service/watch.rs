//! Watching an IMAP folder with IDLE: one connection per watched folder, EXAMINEd
//! (read-only) and left idling; whenever the server reports a change (EXISTS,
//! EXPUNGE, FETCH) the account is asked to pull that folder. IDLE is renewed every
//! few minutes; a lost connection is reopened after a backoff; a refused login
//! waits long. The connection holds one of the server's slots while it lives.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn, Instrument};

use super::Env;
use crate::imap::connect::connect;
use crate::imap::ImapError;
use crate::job::schedule::backoff_after;
use crate::job::{Job, JobAccount};

/// How long one IDLE command lasts before it is renewed (RFC 2177: under 29 min).
const IDLE_RENEW: Duration = Duration::from_secs(9 * 60);

/// Watches `folder` of `acct` until the service stops, sending `folder` on
/// `changed` for every change seen.
pub async fn watch(
    env: std::sync::Arc<Env>,
    job: std::sync::Arc<Job>,
    acct: JobAccount,
    folder: String,
    changed: mpsc::Sender<String>,
) {
    let span = info_span!("watch", job = %job.name, account = %acct.name, folder = %folder);
    async {
        let mut failures = 0u32;
        while !env.stop.requested() {
            let result = tokio::select! {
                r = idle_session(&env, &acct, &folder, &changed, &mut failures) => r,
                _ = env.stop.wait() => return,
            };
            let wait = match result {
                Ok(()) => return, // the account task is gone
                Err(e) => {
                    failures += 1;
                    let auth = matches!(e, WatchError::Imap(ImapError::Auth { .. }) | WatchError::Credential(_));
                    let base = if auth {
                        job.retry.auth_failure_backoff.0
                    } else {
                        job.retry.backoff.0
                    };
                    let d = backoff_after(base, failures, job.retry.max_backoff.0, super::jitter());
                    warn!(error = %e, retry_in_s = d.as_secs(), "watching failed");
                    d
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = env.stop.wait() => return,
            }
        }
    }
    .instrument(span)
    .await
}

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error("{0}")]
    Credential(String),
}

fn client(server: &str, what: &str) -> impl Fn(async_imap::error::Error) -> WatchError {
    let (server, what) = (server.to_string(), what.to_string());
    move |e| WatchError::Imap(ImapError::from_client(&server, &what, e))
}

/// One connection: EXAMINE, then IDLE until the connection fails (an error) or the
/// receiver of changes is gone (`Ok`). Once EXAMINE succeeds, `failures` is reset.
async fn idle_session(
    env: &Env,
    acct: &JobAccount,
    folder: &str,
    changed: &mpsc::Sender<String>,
    failures: &mut u32,
) -> Result<(), WatchError> {
    let login = acct.spec.login();
    let o = super::account::connect_options(env, &acct.endpoint, &login)
        .await
        .map_err(|f| WatchError::Credential(f.message))?;
    let server = o.endpoint.to_string();
    let c = connect(&o).await?;
    let mut session = c.session;
    let remote = crate::plan::mutf7::encode(folder);
    let t = o.io_timeout;
    let server = &server;
    let timed = |what: &'static str| {
        move |_| {
            WatchError::Imap(ImapError::Timeout {
                server: server.clone(),
                what: what.into(),
                seconds: t.as_secs(),
            })
        }
    };
    tokio::time::timeout(t, session.examine(&remote))
        .await
        .map_err(timed("EXAMINE"))?
        .map_err(client(&o.endpoint.to_string(), "EXAMINE"))?;
    info!("watching with IDLE");
    *failures = 0;
    loop {
        let mut idle = session.idle();
        tokio::time::timeout(t, idle.init())
            .await
            .map_err(timed("IDLE"))?
            .map_err(client(&o.endpoint.to_string(), "IDLE"))?;
        let (wait, _interrupt) = idle.wait_with_timeout(IDLE_RENEW);
        let seen = wait.await.map_err(client(&o.endpoint.to_string(), "IDLE"))?;
        let mut change = matches!(seen, IdleResponse::NewData(_));
        session = tokio::time::timeout(t, idle.done())
            .await
            .map_err(timed("DONE"))?
            .map_err(client(&o.endpoint.to_string(), "DONE"))?;
        // Changes reported while IDLE was being ended.
        while let Ok(u) = session.unsolicited_responses.try_recv() {
            change |= matches!(
                u,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Expunge(_) | UnsolicitedResponse::Recent(_)
            );
        }
        if change {
            debug!("change seen");
            if changed.send(folder.to_string()).await.is_err() {
                let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
                return Ok(());
            }
        }
    }
}
