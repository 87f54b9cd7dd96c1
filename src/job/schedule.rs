//! When an account runs next: its schedule after a success; after a failure, a
//! backoff that doubles with each consecutive failure — short for temporary trouble
//! (the network, a timeout), long for a refused login, which is never hammered.
//! Pure: the caller passes the clock and the jitter.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The schedule of a job.
#[derive(Clone, Debug)]
pub enum Timing {
    /// This long after the previous run started.
    Every(Duration),
    /// At the times of a cron pattern (UTC).
    Cron(Box<croner::Cron>),
}

impl Timing {
    /// The first scheduled time after a run that started at `started`.
    pub fn next_after(&self, started: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Timing::Every(d) => later(started, *d),
            Timing::Cron(c) => c
                .find_next_occurrence(&started, false)
                // A pattern with no future time (30 February): in a year, then.
                .unwrap_or_else(|_| later(started, Duration::from_secs(365 * 86_400))),
        }
    }

    /// For people: `every 15m` or `cron 0 */2 * * *`.
    pub fn describe(&self) -> String {
        match self {
            Timing::Every(d) => format!("every {}", humantime::format_duration(*d)),
            Timing::Cron(c) => format!("cron {}", c.pattern),
        }
    }
}

/// How a run ended, as far as retrying goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    /// Worth trying again soon: connection lost, timeout, server busy, some
    /// folders failed.
    Temporary,
    /// Will fail the same way until someone acts: login refused, bad credential
    /// source, certificate not trusted.
    Permanent,
    /// The account's OAuth2 sign-in was refused for good (a revoked refresh
    /// token): nothing is tried until `mailvault login` signs in anew.
    NeedsLogin,
}

impl Outcome {
    /// As the status file and JSON output spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Temporary => "temporary",
            Outcome::Permanent => "permanent",
            Outcome::NeedsLogin => "needs-login",
        }
    }
}

/// When to run next.
///
/// 1. Success: the schedule's next time after the run's start.
/// 2. Temporary failure number k (1, 2, …): `backoff · 2^(k-1)`, capped at
///    `max_backoff` — sooner than the schedule for a blip, later for an outage
///    (never more often than the backoff allows, however short the interval).
/// 3. Permanent failure number k: `auth_failure_backoff · 2^(k-1)`, capped at
///    `max_backoff`, and never before the schedule's next time.
///
/// `jitter` (0.75 ..= 1.25) spreads retries of many accounts apart.
pub fn next_attempt(
    timing: &Timing,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
    outcome: Outcome,
    consecutive_failures: u32,
    retry: &super::RetryPolicy,
    jitter: f64,
) -> DateTime<Utc> {
    let scheduled = timing.next_after(started).max(ended);
    let grown = |base: Duration| {
        later(
            ended,
            backoff_after(base, consecutive_failures, retry.max_backoff.0, jitter),
        )
    };
    match outcome {
        Outcome::Ok => scheduled,
        Outcome::Temporary => grown(retry.backoff.0),
        // A needs-login run asks nobody (the sign-in is marked); it is retried as
        // rarely as a refused password, to notice a new `mailvault login`.
        Outcome::Permanent | Outcome::NeedsLogin => grown(retry.auth_failure_backoff.0).max(scheduled),
    }
}

/// The wait after failure number `failures` (1, 2, …): `base · 2^(failures-1)`,
/// capped at `max`, times `jitter` (clamped to 0.75 ..= 1.25).
pub fn backoff_after(base: Duration, failures: u32, max: Duration, jitter: f64) -> Duration {
    let k = failures.clamp(1, 32) - 1;
    base.saturating_mul(1u32 << k.min(20))
        .min(max)
        .mul_f64(jitter.clamp(0.75, 1.25))
}

/// `t + d`, saturating at the end of time.
pub fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
