//! Running jobs: every account of a job once ([`Service::run_once`]), or all jobs
//! as a service ([`Service::serve`]) — a scheduler per account, IDLE watchers for
//! watched folders, server connection slots shared across jobs, backoff after
//! failures, and a graceful stop that lets each pull commit its batch in hand.
//!
//! One archive may serve several jobs: it is opened once, with one writer.

pub mod account;
pub mod compaction;
pub mod metrics;
pub mod status;
pub mod watch;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Semaphore};
use tracing::{info, warn};

use crate::archive::{Archive, ArchiveError};
use crate::control::{HostSlots, Stop};
use crate::job::{next_attempt, Job, Outcome};
use crate::writer::Writer;
pub use account::{AccountRun, Scope};
pub use metrics::Metrics;

/// What the runs of one archive share.
pub struct ArchiveContext {
    pub archive: Arc<Archive>,
    pub writer: Writer,
    pub slots: HostSlots,
    pub stop: Stop,
    pub metrics: Arc<Metrics>,
    /// One index catch-up at a time.
    index: tokio::sync::Mutex<()>,
    /// Each job's status as in its file, read once, written after every run.
    status: std::sync::Mutex<HashMap<String, status::JobStatus>>,
    /// Accounts running now, and when one last ran (for idle compaction).
    pub activity: compaction::Activity,
    /// This process's worker name, when it is one of several (`--worker-id`).
    worker: Option<String>,
}

impl ArchiveContext {
    /// Brings the search index up to date (searches see new mail at once). Another
    /// process holding the index (a `search` catching up) is not an error.
    pub async fn catch_up_index(&self) {
        let _one = self.index.lock().await;
        let archive = self.archive.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut idx = crate::index::MessageIndex::open(archive.dir(), archive.index_key())?;
            idx.catch_up(&archive, &mut |_| {})
        })
        .await;
        match r {
            Ok(Ok(c)) => info!(indexed = c.indexed, "search index caught up"),
            Ok(Err(e)) => warn!(error = %e, "search index not updated now (the next catch-up covers it)"),
            Err(e) => warn!(error = %e, "index task failed"),
        }
    }

    /// Records a run in the job's status file.
    fn record(&self, run: &AccountRun, failures: u32, next: Option<DateTime<Utc>>) {
        self.metrics.record(run, failures);
        let mut all = self.status.lock().expect("status");
        let s = self.job_status(&mut all, &run.job);
        s.record(run, failures, next);
        let p = status::path_of(self.archive.dir(), &run.job, self.worker.as_deref());
        if let Err(e) = s.save(&p) {
            warn!(error = %e, path = %p.display(), "cannot write the status file");
        }
    }

    /// `job`'s status, read from its file the first time.
    fn job_status<'a>(&self, all: &'a mut HashMap<String, status::JobStatus>, job: &str) -> &'a mut status::JobStatus {
        all.entry(job.to_string()).or_insert_with(|| {
            let p = status::path_of(self.archive.dir(), job, self.worker.as_deref());
            let mut s = status::read(&p).unwrap_or_default();
            s.job = job.to_string();
            s
        })
    }

    /// The stored failures in a row and next run of an account (from an earlier
    /// process), so a restart does not forget a backoff.
    fn remembered(&self, job: &str, account: &str) -> (u32, Option<DateTime<Utc>>, bool) {
        let mut all = self.status.lock().expect("status");
        match self.job_status(&mut all, job).accounts.get(account) {
            Some(a) => (
                a.consecutive_failures,
                a.next_run,
                a.last_run.as_ref().is_some_and(|r| {
                    r.result == Outcome::Permanent.as_str() || r.result == Outcome::NeedsLogin.as_str()
                }),
            ),
            None => (0, None, false),
        }
    }
}

/// Sets the retention policies the jobs of archive `dir` declare, where the
/// archive's differ (a policy the same as declared is not set again, so the
/// change log only records changes).
fn declare_policies(
    archive: &Archive,
    jobs: &[Arc<Job>],
    dir: &Path,
    default_archive: &Path,
) -> Result<(), ArchiveError> {
    use crate::evidence::RuleKind;
    use crate::job::RetentionFrom;
    let current = archive.rules(RuleKind::Retention)?;
    for job in jobs.iter().filter(|j| archive_of(j, default_archive) == dir) {
        for rule in &job.retention {
            let from_date = rule.from == RetentionFrom::Date;
            // Compared as stored (`10Y` is kept as `10y`), so that an unchanged
            // declaration is not set, and logged, again at every start.
            let keep = rule
                .keep
                .parse::<crate::plan::retention::Keep>()
                .map_or_else(|_| rule.keep.clone(), |k| k.to_string());
            let same = current
                .iter()
                .any(|(n, r)| *n == rule.name && r.query == rule.query && r.keep == keep && r.from_date == from_date);
            if same {
                continue;
            }
            let from = if from_date {
                crate::plan::retention::KeepFrom::Date
            } else {
                crate::plan::retention::KeepFrom::Received
            };
            crate::retention::set_policy(archive, &rule.name, &rule.query, &rule.keep, from).map_err(|e| match e {
                crate::retention::RetentionError::Archive(a) => a,
                other => ArchiveError::BadRule {
                    name: rule.name.clone(),
                    what: format!("declared by job {}: {other}", job.name),
                },
            })?;
            tracing::info!(job = %job.name, policy = %rule.name, keep = %rule.keep, "retention policy set from the job file");
        }
    }
    Ok(())
}

/// The archives of a set of jobs, each opened once, and the limits they share.
pub struct Service {
    envs: HashMap<PathBuf, Arc<ArchiveContext>>,
    writers: Vec<std::thread::JoinHandle<()>>,
    pub slots: HostSlots,
    pub stop: Stop,
    pub metrics: Arc<Metrics>,
}

impl Service {
    /// Opens (creating when missing) the archive of every job; `default_archive`
    /// serves jobs that name none. Sets the per-host connection limits. `secret`
    /// opens the archives that are encrypted.
    pub fn open(
        jobs: &[Arc<Job>],
        default_archive: &Path,
        secret: Option<&crate::archive::sealing::ArchiveSecret>,
    ) -> Result<Service, ArchiveError> {
        Self::open_as(jobs, default_archive, secret, None)
    }

    /// [`Service::open`]; with `worker`, as that worker of archives shared with
    /// others ([`worker`]): each archive opened as one of its writers, the
    /// status kept per worker.
    pub fn open_as(
        jobs: &[Arc<Job>],
        default_archive: &Path,
        secret: Option<&crate::archive::sealing::ArchiveSecret>,
        worker: Option<&str>,
    ) -> Result<Service, ArchiveError> {
        let mut s = Service {
            envs: HashMap::new(),
            writers: Vec::new(),
            slots: HostSlots::default(),
            stop: Stop::default(),
            metrics: Arc::new(Metrics::default()),
        };
        for job in jobs {
            let dir = archive_of(job, default_archive);
            if !s.envs.contains_key(&dir) {
                let encrypted = crate::archive::layout::read_marker(&dir)?.is_some_and(|m| m.encrypted);
                let config = crate::archive::ArchiveConfig {
                    blobs: crate::archive::layout::BlobsConfig::from_env()?,
                    meta: crate::archive::layout::MetaConfig::from_env()?,
                    secret: secret.filter(|_| encrypted).cloned(),
                    shared: worker.is_some(),
                    ..Default::default()
                };
                // Workers share an archive made once (`init --meta`), never make one.
                let archive = Arc::new(Archive::open_with(&dir, worker.is_none(), config)?);
                declare_policies(&archive, jobs, &dir, default_archive)?;
                let (writer, handle) = Writer::spawn(archive.clone());
                s.writers.push(handle);
                s.envs.insert(
                    dir.clone(),
                    Arc::new(ArchiveContext {
                        archive,
                        writer,
                        slots: s.slots.clone(),
                        stop: s.stop.clone(),
                        metrics: s.metrics.clone(),
                        index: tokio::sync::Mutex::new(()),
                        status: std::sync::Mutex::new(HashMap::new()),
                        activity: compaction::Activity::default(),
                        worker: worker.map(str::to_string),
                    }),
                );
            }
            // A worker's limits are the slots it claims in the shared store
            // (`worker::serve_as_worker` sets them).
            for a in job.accounts.iter().filter(|_| worker.is_none()) {
                s.slots.limit(&a.host_key(), job.limits.connections_per_host);
                if let Some(ep) = &a.replay_to {
                    s.slots
                        .limit(&crate::job::host_key(ep), job.limits.connections_per_host);
                }
            }
        }
        Ok(s)
    }

    fn env(&self, job: &Job, default_archive: &Path) -> Arc<ArchiveContext> {
        let dir = archive_of(job, default_archive);
        self.envs[&dir].clone()
    }

    /// Runs every account of `job` once (at most `accounts_in_parallel` at a time)
    /// and returns the runs in the job's order.
    /// The archive at `dir`, as the service holds it open for writing (the web
    /// interface in the same process writes its holds through it).
    pub fn archive(&self, dir: &Path) -> Option<Arc<Archive>> {
        self.envs.get(dir).map(|e| e.archive.clone())
    }

    pub async fn run_once(&self, job: &Arc<Job>, default_archive: &Path) -> Vec<AccountRun> {
        let env = self.env(job, default_archive);
        let gate = Arc::new(Semaphore::new(job.limits.accounts_in_parallel.max(1) as usize));
        let mut tasks = Vec::new();
        for acct in job.accounts.clone() {
            let (env, job, gate) = (env.clone(), job.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = gate.acquire_owned().await.expect("gate open");
                if env.stop.requested() {
                    return None;
                }
                let run = account::run(&env, &job, &acct, &Scope::default()).await;
                let (failures, next) = after_run(&job, &run, env.remembered(&job.name, &acct.name).0);
                env.record(&run, failures, Some(next));
                Some(run)
            }));
        }
        let mut runs = Vec::new();
        for t in tasks {
            match t.await {
                Ok(Some(r)) => runs.push(r),
                Ok(None) => {}
                Err(e) => warn!(error = %e, "an account task failed"),
            }
        }
        // One index catch-up for the whole job: each is a tantivy commit.
        if runs.iter().any(|r| r.new_messages > 0) {
            env.catch_up_index().await;
        }
        runs
    }

    /// Runs `jobs` until a stop is asked: each account on its schedule (and at
    /// once on start, unless a refused login's backoff is still running), watched
    /// folders pulled when IDLE reports a change.
    pub async fn serve(&self, jobs: &[Arc<Job>], default_archive: &Path) {
        let mut tasks = Vec::new();
        if let Some(quiet) = compaction::quiet_time() {
            for env in self.envs.values() {
                tasks.push(tokio::spawn(compaction::when_idle(env.clone(), quiet)));
            }
        }
        for job in jobs {
            let env = self.env(job, default_archive);
            let gate = Arc::new(Semaphore::new(job.limits.accounts_in_parallel.max(1) as usize));
            for acct in &job.accounts {
                let (tx, rx) = mpsc::channel::<String>(64);
                for folder in &acct.spec.watch {
                    tasks.push(tokio::spawn(watch::watch(
                        env.clone(),
                        job.clone(),
                        acct.clone(),
                        folder.clone(),
                        tx.clone(),
                    )));
                }
                drop(tx);
                tasks.push(tokio::spawn(account_loop(
                    env.clone(),
                    job.clone(),
                    acct.name.clone(),
                    gate.clone(),
                    rx,
                )));
            }
        }
        for t in tasks {
            if let Err(e) = t.await {
                warn!(error = %e, "a service task failed");
            }
        }
    }

    /// Waits for the archive writers to finish their last commits.
    pub fn close(self) {
        drop(self.envs);
        for w in self.writers {
            let _ = w.join();
        }
    }
}

/// The archive `job` writes to.
fn archive_of(job: &Job, default_archive: &Path) -> PathBuf {
    job.archive.clone().unwrap_or_else(|| default_archive.to_path_buf())
}

/// Failures in a row after `run` (`before` until now), and when to run next.
fn after_run(job: &Job, run: &AccountRun, before: u32) -> (u32, DateTime<Utc>) {
    let failures = if run.outcome == Outcome::Ok { 0 } else { before + 1 };
    let next = next_attempt(
        &job.timing,
        run.started,
        run.ended,
        run.outcome,
        failures,
        &job.retry,
        jitter(),
    );
    (failures, next)
}

/// ±25 % jitter (a fresh `RandomState` is randomly keyed: no RNG crate needed).
pub(crate) fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    0.75 + (r % 1001) as f64 / 2000.0
}

/// One account in service mode: sleep until due or until a watched folder
/// changes, run, record, compute the next time; until a stop.
async fn account_loop(
    env: Arc<ArchiveContext>,
    job: Arc<Job>,
    account: String,
    gate: Arc<Semaphore>,
    mut changed: mpsc::Receiver<String>,
) {
    let acct = job
        .accounts
        .iter()
        .find(|a| a.name == account)
        .expect("account of its job")
        .clone();
    let (mut failures, remembered_next, refused) = env.remembered(&job.name, &account);
    // A refused login's backoff survives restarts; everything else runs at once.
    let mut next = match remembered_next {
        Some(t) if refused && t > Utc::now() => t,
        _ => Utc::now(),
    };
    let mut watching = true;
    loop {
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let scope = tokio::select! {
            _ = tokio::time::sleep(wait) => Scope::default(),
            f = changed.recv(), if watching => match f {
                Some(f) => {
                    let mut only = vec![f];
                    while let Ok(more) = changed.try_recv() {
                        if !only.contains(&more) {
                            only.push(more);
                        }
                    }
                    Scope { only }
                }
                None => {
                    watching = false;
                    continue;
                }
            },
            _ = env.stop.wait() => return,
        };
        // A watched folder's change while a refused login waits out its backoff
        // does not bring the retry forward.
        if !scope.only.is_empty() && failures > 0 && next > Utc::now() {
            continue;
        }
        let _turn = tokio::select! {
            t = gate.clone().acquire_owned() => t.expect("gate open"),
            _ = env.stop.wait() => return,
        };
        let running = env.activity.start();
        let run = account::run(&env, &job, &acct, &scope).await;
        drop(running);
        drop(_turn);
        // Searchable at once: watched folders are for mail people are waiting for.
        if run.new_messages > 0 {
            env.catch_up_index().await;
        }
        let (f, after) = after_run(&job, &run, failures);
        failures = f;
        // A watched folder's pull that went well leaves the full run's time as it was.
        next = if scope.only.is_empty() || run.outcome != Outcome::Ok {
            after
        } else {
            next
        };
        env.record(&run, failures, Some(next));
        if env.stop.requested() {
            return;
        }
    }
}
