//! What `mailvault status` shows: per job, per account, the last run, its result,
//! the messages it stored, its errors, the failures in a row and the next run. Kept
//! as one JSON file per job under the archive (`status/JOB.json`), replaced
//! atomically after every account run, so it can be read while a service runs and
//! survives restarts (a refused login's backoff is not forgotten by restarting).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::account::AccountRun;
use crate::job::Outcome;
use crate::remote::TooLarge;

/// The status of one job's accounts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobStatus {
    pub job: String,
    pub accounts: BTreeMap<String, AccountStatus>,
}

/// One account's record.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountStatus {
    pub server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// Failed runs since the last good one.
    pub consecutive_failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<DateTime<Utc>>,
    /// Since the status file was created.
    pub runs: u64,
    pub messages_total: u64,
    /// Messages left unarchived for being over the job's `max_message_size`, as runs
    /// found them (each once; the most recent [`TOO_LARGE_KEPT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub too_large: Vec<TooLarge>,
}

/// How many too-large messages an account's status keeps.
pub const TOO_LARGE_KEPT: usize = 1000;

/// The last run, short.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LastRun {
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    /// `ok`, `temporary` (retried after a backoff), `permanent` (login refused:
    /// retried after a long backoff), `needs-login` (the OAuth2 sign-in was
    /// refused for good: `mailvault login` again), or `stopped`.
    pub result: String,
    pub new_messages: u64,
    pub fetched: u64,
    pub fetched_bytes: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Where job `job`'s status lives in the archive at `archive_dir`.
pub fn path(archive_dir: &Path, job: &str) -> PathBuf {
    path_of(archive_dir, job, None)
}

/// Where `worker`'s status of job `job` lives (workers sharing an archive keep
/// one file each, `status/JOB@WORKER.json`; [`read_all`] merges them).
pub fn path_of(archive_dir: &Path, job: &str, worker: Option<&str>) -> PathBuf {
    let name = match worker {
        Some(w) => format!("{job}@{w}.json"),
        None => format!("{job}.json"),
    };
    archive_dir.join("status").join(name)
}

/// Every job status kept in the archive at `archive_dir` (none when it has none).
pub fn read_all(archive_dir: &Path) -> std::io::Result<Vec<JobStatus>> {
    let dir = archive_dir.join("status");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        merge(&mut out, read(&p)?);
    }
    Ok(out)
}

/// Adds `status` to `all`; a job already there (kept by other workers) gets its
/// accounts, the record of the latest run winning.
fn merge(all: &mut Vec<JobStatus>, status: JobStatus) {
    let Some(have) = all.iter_mut().find(|j| j.job == status.job) else {
        all.push(status);
        return;
    };
    for (name, mut a) in status.accounts {
        let ended = |s: &AccountStatus| s.last_run.as_ref().map(|r| r.ended);
        if let Some(old) = have.accounts.get_mut(&name) {
            // Each worker counted its own runs and messages.
            a.runs += old.runs;
            a.messages_total += old.messages_total;
            if ended(old) >= ended(&a) {
                old.runs = a.runs;
                old.messages_total = a.messages_total;
                continue;
            }
        }
        have.accounts.insert(name, a);
    }
}

/// Reads one status file; a missing file is an empty status.
pub fn read(p: &Path) -> std::io::Result<JobStatus> {
    match std::fs::read(p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(JobStatus::default()),
        Err(e) => Err(e),
    }
}

impl JobStatus {
    /// Records a finished run and when the next one is due.
    pub fn record(&mut self, run: &AccountRun, consecutive_failures: u32, next_run: Option<DateTime<Utc>>) {
        let a = self.accounts.entry(run.account.clone()).or_default();
        a.server = run.server.clone();
        a.consecutive_failures = consecutive_failures;
        a.next_run = next_run;
        a.runs += 1;
        a.messages_total += run.new_messages;
        for t in run.pull.iter().flat_map(|p| &p.total.too_large) {
            if !a.too_large.contains(t) {
                a.too_large.push(t.clone());
            }
        }
        let over = a.too_large.len().saturating_sub(TOO_LARGE_KEPT);
        a.too_large.drain(..over);
        a.last_run = Some(LastRun {
            started: run.started,
            ended: run.ended,
            result: if run.stopped && run.outcome == Outcome::Ok {
                "stopped".into()
            } else {
                run.outcome.as_str().into()
            },
            new_messages: run.new_messages,
            fetched: run.fetched,
            fetched_bytes: run.fetched_bytes,
            errors: run.errors.clone(),
        });
    }

    /// Writes the file atomically (a temporary file renamed over it).
    pub fn save(&self, p: &Path) -> std::io::Result<()> {
        if let Some(dir) = p.parent() {
            crate::private::create_dir_all(dir)?;
        }
        let tmp = p.with_extension("json.tmp");
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, p)
    }
}
