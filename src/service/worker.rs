//! `serve --worker-id W`: one of several workers (processes, or machines) sharing
//! one archive — its metadata in PostgreSQL, its packs in one blob store. Each
//! account's run is leased to one worker at a time
//! ([`crate::metastore::leases`]); the archive is written in turns
//! (`archive::shared`), each account's batches fenced by its lease.
//!
//! The worker's loop, every second or sooner:
//!
//! 1. every third of the lease time: renew this worker's leases and connection
//!    slots (a lease found taken over is dropped here; the fence already stops
//!    its pull at the next commit);
//! 2. take free, due leases, up to the worker's capacity (the jobs'
//!    `accounts_in_parallel`);
//! 3. run each taken account ([`run_leased`]): claim connection slots for its
//!    servers in the database (a job's `connections_per_host` holds across every
//!    worker), pull, record, give the slots back once its connections are closed,
//!    give the lease back with the account's next due time (its schedule, or a
//!    backoff after a failure);
//! 4. apart from the runs: catch the search index up after runs that stored new
//!    messages, at most every few seconds ([`keep_index`]).
//!
//! On a stop, running pulls commit their batch in hand and the leases are given
//! back, due at once (the index is caught up by the next run instead). A run
//! that panics is logged and its lease, no longer renewed, lapses. A worker
//! killed outright loses its leases and slots at their expiry; another takes
//! its accounts over from their last committed batch.
//!
//! Not under workers: watched folders (IDLE) are pulled on the schedule only,
//! and idle compaction does not run (`compact` needs the one writer).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;
use tracing::{error, info, info_span, warn, Instrument};

use super::{account, after_run, ArchiveContext, Scope, Service};
use crate::archive::{layout, ArchiveError, Fence};
use crate::job::{Job, JobAccount};
use crate::metastore::leases::{Lease, Leases, Slots};
use crate::metastore::MetaError;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The worker's name, unique among the workers of the archive.
    pub id: String,
    /// How long a lease (and a connection slot) outlives the last heartbeat.
    pub lease_ttl: Duration,
}

/// How long a run waits for a connection slot before giving its account back.
const SLOT_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting run asks for slots again.
const SLOT_POLL: Duration = Duration::from_millis(200);
/// How long a run's slots wait for its connections to close before they go back.
const SLOT_RETURN_WAIT: Duration = Duration::from_secs(60);
/// At most one search index catch-up per this long (each is a tantivy commit;
/// one covers every run that ended before it).
const INDEX_EVERY: Duration = Duration::from_secs(5);

/// Errors of a worker's set-up.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("{0}")]
    Setup(String),
}

/// The accounts this worker holds: account → the lease's generation.
#[derive(Default)]
struct Held(Mutex<HashMap<String, i64>>);

impl Held {
    fn get(&self, account: &str) -> Option<i64> {
        self.0.lock().expect("held").get(account).copied()
    }
    fn insert(&self, lease: &Lease) {
        self.0
            .lock()
            .expect("held")
            .insert(lease.account.clone(), lease.generation);
    }
    /// Removes `lease` if it is still the account's held one.
    fn remove_lease(&self, lease: &Lease) {
        let mut held = self.0.lock().expect("held");
        if held.get(&lease.account) == Some(&lease.generation) {
            held.remove(&lease.account);
        }
    }
    fn leases(&self) -> Vec<Lease> {
        let held = self.0.lock().expect("held");
        held.iter()
            .map(|(account, generation)| Lease {
                account: account.clone(),
                generation: *generation,
            })
            .collect()
    }
}

/// The archive's check before each account's batch: the lease is still ours.
struct LeaseFence {
    leases: Arc<Leases>,
    held: Arc<Held>,
}

impl Fence for LeaseFence {
    fn check(&self, account: &str) -> Result<(), String> {
        let Some(generation) = self.held.get(account) else {
            return Err(format!(
                "worker {} does not hold the account's lease",
                self.leases.worker()
            ));
        };
        let lease = Lease {
            account: account.to_string(),
            generation,
        };
        match self.leases.holds(&lease) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "worker {} lost the account's lease (generation {generation}) to another worker",
                self.leases.worker()
            )),
            Err(e) => Err(format!("the account's lease could not be checked: {e}")),
        }
    }
}

/// Runs `f` on the lease store off the async threads.
async fn blocking<T: Send + 'static>(
    leases: &Arc<Leases>,
    f: impl FnOnce(&Leases) -> Result<T, MetaError> + Send + 'static,
) -> Result<T, MetaError> {
    let l = leases.clone();
    tokio::task::spawn_blocking(move || f(&l)).await.unwrap_or_else(|e| {
        Err(MetaError::Corrupt {
            table: "leases",
            what: format!("a lease task failed: {e}"),
        })
    })
}

/// What every leased run of this worker shares.
struct Shared {
    env: Arc<ArchiveContext>,
    leases: Arc<Leases>,
    held: Arc<Held>,
    accounts: HashMap<String, (Arc<Job>, JobAccount)>,
    /// The connection slots this process holds (renewed by number).
    slots: Mutex<Vec<Slots>>,
    ttl: Duration,
    /// Poked by a run that stored new messages ([`keep_index`]).
    index_due: tokio::sync::Notify,
}

/// Checks a worker's name: it goes into the database and the status file's name.
pub fn check_worker_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("worker id {id:?}: use 1-64 letters, digits, '.', '_' or '-'"))
    }
}

/// The one archive every job of a worker writes to, and its store's URL.
fn worker_archive(jobs: &[Arc<Job>], default_archive: &Path) -> Result<(PathBuf, String), WorkerError> {
    let mut dirs: Vec<PathBuf> = jobs.iter().map(|j| super::archive_of(j, default_archive)).collect();
    dirs.dedup();
    let [dir] = dirs.as_slice() else {
        return Err(WorkerError::Setup(
            "--worker-id: every job must write to the same archive (the one the workers share)".into(),
        ));
    };
    let marker = layout::read_marker(dir)?.ok_or_else(|| {
        WorkerError::Setup(format!(
            "{}: no archive there yet; make it once with `mailvault init --meta postgres://…` before starting workers",
            dir.display()
        ))
    })?;
    match marker.meta {
        layout::MetaConfig::Postgres { url } => Ok((dir.clone(), url)),
        layout::MetaConfig::Embedded => Err(WorkerError::Setup(format!(
            "{}: its metadata is embedded (RocksDB, one writer); workers share metadata in PostgreSQL \
             (`mailvault init --meta postgres://…`)",
            dir.display()
        ))),
    }
}

/// Every account of `jobs` by name (an account name may be in one job only: it
/// is the lease's name).
fn accounts_by_name(jobs: &[Arc<Job>]) -> Result<HashMap<String, (Arc<Job>, JobAccount)>, WorkerError> {
    let mut all = HashMap::new();
    for job in jobs {
        for a in &job.accounts {
            if let Some((other, _)) = all.insert(a.name.clone(), (job.clone(), a.clone())) {
                return Err(WorkerError::Setup(format!(
                    "account {:?} is in jobs {:?} and {:?}: under --worker-id an account is in one job",
                    a.name, other.name, job.name
                )));
            }
        }
    }
    Ok(all)
}

/// The servers an account connects to, with the job's limit for each.
fn servers_of(job: &Job, acct: &JobAccount) -> Vec<(String, u32)> {
    let mut hosts = vec![(acct.host_key(), job.limits.connections_per_host)];
    if let Some(ep) = &acct.replay_to {
        let h = crate::job::host_key(ep);
        if h != hosts[0].0 {
            hosts.push((h, job.limits.connections_per_host));
        }
    }
    hosts
}

impl Service {
    /// Runs `jobs` as worker `o.id` of the archive they share, until a stop is
    /// asked (the module doc's loop).
    pub async fn serve_as_worker(
        &self,
        jobs: &[Arc<Job>],
        default_archive: &Path,
        o: &WorkerOptions,
    ) -> Result<(), WorkerError> {
        let (dir, url) = worker_archive(jobs, default_archive)?;
        let env = self.envs[&dir].clone();
        let accounts = accounts_by_name(jobs)?;
        let id = o.id.clone();
        let leases = Arc::new(
            tokio::task::spawn_blocking(move || Leases::open(&url, false, &id))
                .await
                .map_err(|e| WorkerError::Setup(format!("opening the leases: {e}")))??,
        );
        let names: Vec<String> = accounts.keys().cloned().collect();
        blocking(&leases, move |l| l.offer(&names)).await?;
        let mut limits: HashMap<String, u32> = HashMap::new();
        for (job, acct) in accounts.values() {
            for (host, limit) in servers_of(job, acct) {
                let e = limits.entry(host).or_insert(limit);
                *e = (*e).min(limit);
            }
            if !acct.spec.watch.is_empty() {
                info!(account = %acct.name, "watched folders are pulled on the schedule under --worker-id");
            }
        }
        for (host, limit) in limits {
            self.slots.limit_shared(&host, limit);
            blocking(&leases, move |l| l.offer_slots(&host, limit)).await?;
        }
        let held = Arc::new(Held::default());
        env.archive.set_fence(Arc::new(LeaseFence {
            leases: leases.clone(),
            held: held.clone(),
        }));
        let capacity: usize = jobs.iter().map(|j| j.limits.accounts_in_parallel.max(1) as usize).sum();
        let shared = Arc::new(Shared {
            env,
            leases,
            held,
            accounts,
            slots: Mutex::new(Vec::new()),
            ttl: o.lease_ttl,
            index_due: tokio::sync::Notify::new(),
        });
        info!(worker = %o.id, capacity, lease_ttl_s = o.lease_ttl.as_secs_f64(), "worker started");
        let span = info_span!("worker", id = %o.id);
        let indexer = tokio::spawn(keep_index(shared.clone()).instrument(span.clone()));
        work(&shared, capacity).instrument(span).await;
        let _ = indexer.await;
        Ok(())
    }
}

/// The loop of the module doc, until a stop; then waits for the running pulls and
/// gives every lease back.
async fn work(shared: &Arc<Shared>, capacity: usize) {
    let stop = shared.env.stop.clone();
    let beat = shared.ttl / 3;
    let mut next_beat = Instant::now();
    let mut running: JoinSet<()> = JoinSet::new();
    while !stop.requested() {
        if Instant::now() >= next_beat {
            renew(shared).await;
            next_beat = Instant::now() + beat;
        }
        let free = capacity.saturating_sub(running.len());
        if free > 0 {
            match blocking(&shared.leases, {
                let ttl = shared.ttl;
                move |l| l.take(free, ttl)
            })
            .await
            {
                Ok(taken) => {
                    for lease in taken {
                        shared.held.insert(&lease);
                        running.spawn(run_leased(shared.clone(), lease));
                    }
                }
                Err(e) => warn!(error = %e, "taking leases failed; trying again"),
            }
        }
        let tick = next_beat
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            Some(r) = running.join_next(), if !running.is_empty() => report_failed(r),
            _ = stop.wait() => {}
        }
    }
    // A stop: the pulls commit their batch in hand (the service's grace bounds
    // this), and their leases go back as each ends.
    while let Some(r) = running.join_next().await {
        report_failed(r);
    }
    for lease in shared.held.leases() {
        let _ = blocking(&shared.leases, move |l| l.release(&lease, "stopped")).await;
    }
}

/// Step 4: the search index caught up after runs that stored new messages, at
/// most every [`INDEX_EVERY`], until a stop.
async fn keep_index(shared: Arc<Shared>) {
    let stop = shared.env.stop.clone();
    loop {
        tokio::select! {
            _ = shared.index_due.notified() => {}
            _ = stop.wait() => return,
        }
        shared.env.catch_up_index().await;
        tokio::select! {
            _ = tokio::time::sleep(INDEX_EVERY) => {}
            _ = stop.wait() => return,
        }
    }
}

/// A leased run that failed (a panic): its lease is no longer renewed
/// ([`Holding`]), so it lapses and the account runs again.
fn report_failed(r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r {
        error!(error = %e, "a leased run failed; its lease lapses");
    }
}

/// A lease in [`Held`] for as long as its run lasts, however the run ends.
struct Holding {
    shared: Arc<Shared>,
    lease: Lease,
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.shared.held.remove_lease(&self.lease);
    }
}

/// Step 1: heartbeats; leases taken over are dropped.
async fn renew(shared: &Arc<Shared>) {
    let held = shared.held.leases();
    let ttl = shared.ttl;
    let asked = held.clone();
    let slots = shared.slots.lock().expect("slots").clone();
    match blocking(&shared.leases, move |l| l.renew(&asked, &slots, ttl)).await {
        Ok(kept) => {
            // A lease given back meanwhile (its run ended) is not one lost.
            let still_held = |l: &&Lease| shared.held.get(&l.account) == Some(l.generation);
            for lost in held.iter().filter(|l| !kept.contains(l)).filter(still_held) {
                warn!(account = %lost.account, generation = lost.generation, "lease taken over by another worker; its pull stops at the next commit");
                shared.held.remove_lease(lost);
            }
        }
        Err(e) => warn!(error = %e, "renewing the leases failed; trying again"),
    }
}

/// Step 3: one account's run under its lease.
async fn run_leased(shared: Arc<Shared>, lease: Lease) {
    let _holding = Holding {
        shared: shared.clone(),
        lease: lease.clone(),
    };
    let Some((job, acct)) = shared.accounts.get(&lease.account).cloned() else {
        // Offered by a worker with other job files: not ours to run.
        shared.held.remove_lease(&lease);
        let _ = blocking(&shared.leases, move |l| {
            l.release_until(&lease, "unknown here", Duration::from_secs(5))
        })
        .await;
        return;
    };
    let span = info_span!("lease", account = %lease.account, generation = lease.generation);
    async {
        let env = &shared.env;
        let Some(slots) = claim_slots(&shared, &job, &acct).await else {
            info!("no connection slot free; the account goes back for a moment");
            shared.held.remove_lease(&lease);
            let _ = blocking(&shared.leases, move |l| {
                l.release_until(&lease, "no slot", Duration::from_secs(1))
            })
            .await;
            return;
        };
        let running = env.activity.start();
        let run = account::run(env, &job, &acct, &Scope::default()).await;
        drop(running);
        let (failures, next) = after_run(&job, &run, env.remembered(&job.name, &acct.name).0);
        // A run cut short by a stop goes on elsewhere at once; any other is next
        // due on its schedule (or after its backoff). The status says the same.
        let next = if run.stopped { Utc::now() } else { next };
        env.record(&run, failures, Some(next));
        for s in slots {
            tokio::spawn(give_back_slots(shared.clone(), s));
        }
        shared.held.remove_lease(&lease);
        let due_in = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let how = if run.stopped { "stopped" } else { run.outcome.as_str() };
        let how = how.to_string();
        if let Err(e) = blocking(&shared.leases, move |l| l.release_until(&lease, &how, due_in)).await {
            warn!(error = %e, "giving the lease back failed; it lapses at its expiry");
        }
        // The index is the archive's, not the account's: caught up apart from
        // the runs; on a stop, by the next run (of any worker) instead.
        if run.new_messages > 0 && !run.stopped {
            shared.index_due.notify_one();
        }
    }
    .instrument(span)
    .await
}

/// Claims the connection slots a run needs on each of its servers, waiting up to
/// [`SLOT_WAIT`] for at least one on each; the claimed slots become permits of
/// this process's limit for the server. `None` when a server had none free.
async fn claim_slots(shared: &Arc<Shared>, job: &Job, acct: &JobAccount) -> Option<Vec<Slots>> {
    let mut claimed: Vec<Slots> = Vec::new();
    for (host, _) in servers_of(job, acct) {
        let want = acct.connections();
        let deadline = Instant::now() + SLOT_WAIT;
        let got = loop {
            let (h, ttl) = (host.clone(), shared.ttl);
            match blocking(&shared.leases, move |l| l.take_slots(&h, want, ttl)).await {
                Ok(s) if !s.numbers.is_empty() => break Some(s),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "claiming connection slots failed"),
            }
            if Instant::now() >= deadline || shared.env.stop.requested() {
                break None;
            }
            tokio::time::sleep(SLOT_POLL).await;
        };
        let Some(s) = got else {
            for c in claimed {
                tokio::spawn(give_back_slots(shared.clone(), c));
            }
            return None;
        };
        if let Some(sem) = shared.env.slots.of(&host) {
            sem.add_permits(s.numbers.len());
        }
        shared.slots.lock().expect("slots").push(s.clone());
        claimed.push(s);
    }
    Some(claimed)
}

/// Gives `slots` back once as many of this process's permits for the server are
/// free again (its connections closed, and the server's side too), or after
/// [`SLOT_RETURN_WAIT`] with a warning, keeping the database's count an upper
/// bound of the connections open.
async fn give_back_slots(shared: Arc<Shared>, slots: Slots) {
    if let Some(sem) = shared.env.slots.of(&slots.host) {
        let n = slots.numbers.len() as u32;
        match tokio::time::timeout(SLOT_RETURN_WAIT, sem.clone().acquire_many_owned(n)).await {
            Ok(Ok(permits)) => permits.forget(),
            _ => {
                warn!(host = %slots.host, "connections still open {SLOT_RETURN_WAIT:?} after a run; keeping its slots until they close");
                // Keep the claim (renewed with the leases) until they do.
                let _ = sem.acquire_many_owned(n).await.map(|p| p.forget());
            }
        }
    }
    shared
        .slots
        .lock()
        .expect("slots")
        .retain(|s| !(s.host == slots.host && s.numbers == slots.numbers));
    if let Err(e) = blocking(&shared.leases, move |l| l.release_slots(&slots)).await {
        warn!(error = %e, "giving connection slots back failed; they lapse at their expiry");
    }
}
