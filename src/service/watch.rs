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

use super::ArchiveContext;
use crate::imap::connect::{connect, timed};
use crate::imap::ImapError;
use crate::job::schedule::backoff_after;
use crate::job::{Job, JobAccount};

/// How long one IDLE command lasts before it is renewed (RFC 2177: under 29 min).
const IDLE_RENEW: Duration = Duration::from_secs(9 * 60);

/// Watches `folder` of `acct` until the service stops, sending `folder` on
/// `changed` for every change seen.
pub async fn watch(
    env: std::sync::Arc<ArchiveContext>,
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

/// One connection: EXAMINE, then IDLE until the connection fails (an error) or the
/// receiver of changes is gone (`Ok`). Once EXAMINE succeeds, `failures` is reset.
async fn idle_session(
    env: &ArchiveContext,
    acct: &JobAccount,
    folder: &str,
    changed: &mpsc::Sender<String>,
    failures: &mut u32,
) -> Result<(), WatchError> {
    let login = acct.spec.login();
    let o = super::account::connect_options(env, &acct.endpoint, &login, &acct.name)
        .await
        .map_err(|f| WatchError::Credential(f.message))?;
    let server = o.endpoint.to_string();
    let server = server.as_str();
    let t = o.io_timeout;
    let client = |what: &'static str| move |e| ImapError::from_client(server, what, e);
    let mut session = connect(&o).await?.session;
    let remote = crate::plan::mutf7::encode(folder);
    timed(t, server, "EXAMINE", async {
        session.examine(&remote).await.map_err(client("EXAMINE"))
    })
    .await?;
    info!("watching with IDLE");
    *failures = 0;
    loop {
        let mut idle = session.idle();
        timed(t, server, "IDLE", async { idle.init().await.map_err(client("IDLE")) }).await?;
        let (wait, _interrupt) = idle.wait_with_timeout(IDLE_RENEW);
        let seen = wait.await.map_err(client("IDLE"))?;
        let mut change = matches!(seen, IdleResponse::NewData(_));
        session = timed(
            t,
            server,
            "DONE",
            async move { idle.done().await.map_err(client("DONE")) },
        )
        .await?;
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
