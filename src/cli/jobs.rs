//! `run JOB.toml [--once] [--dry-run]`, `serve --jobs DIR` and `status`: job files
//! read and checked, the service started with signal handling and an optional
//! metrics endpoint, and the per-account summaries printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};

use super::{human_bytes, Cli};
use mailvault::control::Stop;
use mailvault::job::{self, Job, Outcome};
use mailvault::service::{self, AccountRun, Service};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The job file (see jobs/README.md and schemas/job.schema.json)
    #[arg(value_name = "JOB.toml")]
    job: PathBuf,
    /// Run every account once and exit (otherwise: keep running on the job's schedule)
    #[arg(long)]
    once: bool,
    /// Check the job and its credentials and show what would run; connect to nothing
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    output: super::Output,
    #[command(flatten)]
    service: ServiceArgs,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Directory of job files (*.toml); every one is run
    #[arg(long, value_name = "DIR", default_value = "jobs")]
    jobs: PathBuf,
    /// Run as worker W, one of several processes (or machines) sharing the
    /// archive: its metadata in PostgreSQL (`init --meta`), each account's run
    /// leased to one worker at a time, connection limits counted across all
    #[arg(long, value_name = "W")]
    worker_id: Option<String>,
    /// With --worker-id: how long a worker's leases and connection slots outlive
    /// its last heartbeat (a worker that dies loses its accounts after this)
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "worker_id")]
    lease_ttl: u64,
    #[command(flatten)]
    service: ServiceArgs,
}

#[derive(clap::Args, Debug)]
pub struct ServiceArgs {
    /// Serve per-account counters in the Prometheus text format on ADDR
    /// (e.g. 127.0.0.1:9464); a bare port binds 127.0.0.1
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// After SIGTERM/SIGINT, how long pulls may take to commit their batch in hand
    #[arg(long, value_name = "SECS", default_value_t = 8)]
    grace: u64,
    /// Also serve the web interface and JSON API (over the --archive archive) on
    /// ADDR, in this process
    #[arg(long, value_name = "ADDR")]
    web: Option<std::net::SocketAddr>,
    #[command(flatten)]
    web_tls: super::web::TlsArgs,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Read the archives these job files use (default: the archive of --archive)
    #[arg(long, value_name = "DIR")]
    jobs: Option<PathBuf>,
    #[command(flatten)]
    output: super::Output,
}

/// Every `*.toml` of `dir`, read and checked; all errors reported together.
fn load_dir(dir: &Path) -> Result<Vec<Job>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading job directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no job files (*.toml)", dir.display());
    }
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match job::load(&f) {
            Ok(j) => jobs.push(j),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!("{} invalid job file(s):\n  {}", errors.len(), errors.join("\n  "));
    }
    let mut names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("two job files are named {:?}", w[0]);
    }
    Ok(jobs)
}

pub fn run(cli: &Cli, a: &RunArgs) -> Result<ExitCode> {
    if a.job.is_dir() {
        return Err(super::UsageError(format!(
            "{} is a directory; `run` takes one job file (to run every job in a directory: \
             mailvault serve --jobs {})",
            a.job.display(),
            a.job.display()
        ))
        .into());
    }
    let job = job::load(&a.job)?;
    if a.dry_run {
        return dry_run(cli, &job);
    }
    let jobs = vec![Arc::new(job)];
    if !a.once {
        return serve_jobs(cli, &jobs, &a.service, None);
    }
    let default_archive = super::archive_dir(cli)?;
    let service =
        Service::open(&jobs, &default_archive, cli.secret.given()?.as_ref()).context("opening the archive")?;
    let rt = runtime()?;
    let signal = rt.block_on(async { on_signal(service.stop.clone()) })?;
    let runs = rt.block_on(async {
        let once = service.run_once(&jobs[0], &default_archive);
        with_grace(once, &service.stop, a.service.grace).await
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    service.close();
    let runs = runs.unwrap_or_default();
    if a.output.json() {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        for r in &runs {
            print_run(r);
        }
    }
    if let Some(sig) = signal.get() {
        eprintln!("mailvault: stopped by {sig}; what was fetched is committed, the next run resumes");
        return Ok(ExitCode::from(if *sig == "SIGINT" { 130 } else { 143 }));
    }
    let failed = runs.iter().filter(|r| r.outcome != Outcome::Ok).count();
    if failed > 0 {
        eprintln!(
            "mailvault: error: {failed} of {} account(s) failed",
            job_accounts(&jobs)
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn job_accounts(jobs: &[Arc<Job>]) -> usize {
    jobs.iter().map(|j| j.accounts.len()).sum()
}

pub fn serve(cli: &Cli, a: &ServeArgs) -> Result<ExitCode> {
    let jobs: Vec<Arc<Job>> = load_dir(&a.jobs)?.into_iter().map(Arc::new).collect();
    let worker = match &a.worker_id {
        Some(id) => {
            service::worker::check_worker_id(id).map_err(|e| anyhow::anyhow!(e))?;
            if a.lease_ttl < 3 {
                bail!(
                    "--lease-ttl {}: at least 3 seconds (heartbeats go every third of it)",
                    a.lease_ttl
                );
            }
            Some(service::worker::WorkerOptions {
                id: id.clone(),
                lease_ttl: Duration::from_secs(a.lease_ttl),
            })
        }
        None => None,
    };
    serve_jobs(cli, &jobs, &a.service, worker.as_ref())
}

fn serve_jobs(
    cli: &Cli,
    jobs: &[Arc<Job>],
    o: &ServiceArgs,
    worker: Option<&service::worker::WorkerOptions>,
) -> Result<ExitCode> {
    check_watch_slots(jobs)?;
    let default_archive = super::archive_dir(cli)?;
    let secret = cli.secret.given()?;
    let service = Service::open_as(jobs, &default_archive, secret.as_ref(), worker.map(|w| w.id.as_str()))
        .context("opening the archive")?;
    let rt = runtime()?;
    let signal = rt.block_on(async { on_signal(service.stop.clone()) })?;
    if let Some(addr) = &o.metrics {
        let addr = if addr.contains(':') {
            addr.clone()
        } else {
            format!("127.0.0.1:{addr}")
        };
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(&addr))
            .with_context(|| format!("binding the metrics endpoint {addr}"))?;
        tracing::info!(addr = %addr, "metrics on http://{addr}/metrics");
        rt.spawn(service::metrics::serve(
            listener,
            service.metrics.clone(),
            service.stop.clone(),
        ));
    }
    if let Some(addr) = &o.web {
        start_web(cli, &rt, &service, &default_archive, addr, &o.web_tls)?;
    }
    tracing::info!(jobs = jobs.len(), accounts = job_accounts(jobs), "service started");
    let failed = rt.block_on(async {
        match worker {
            None => {
                with_grace(service.serve(jobs, &default_archive), &service.stop, o.grace).await;
                None
            }
            Some(w) => with_grace(
                service.serve_as_worker(jobs, &default_archive, w),
                &service.stop,
                o.grace,
            )
            .await
            .and_then(Result::err),
        }
    });
    if let Some(e) = failed {
        rt.shutdown_timeout(Duration::from_secs(1));
        service.close();
        return Err(anyhow::Error::new(e).context("running as a worker"));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    service.close();
    if let Some(sig) = signal.get() {
        tracing::info!(signal = sig, "service stopped");
    }
    Ok(ExitCode::SUCCESS)
}

/// The web interface over `dir` on `addr`, on the service's runtime, writing its
/// holds through the service's archive and stopping when the service stops.
fn start_web(
    cli: &Cli,
    rt: &tokio::runtime::Runtime,
    service: &Service,
    dir: &Path,
    addr: &std::net::SocketAddr,
    tls: &super::web::TlsArgs,
) -> Result<()> {
    let (mut library, transport) = super::web::prepare(cli, dir, addr, tls, true)?;
    if let Some(archive) = service.archive(dir) {
        library.write_through(archive);
    }
    let state = mailvault::web::AppState::new(library, matches!(transport, mailvault::web::Transport::Tls(_)));
    let listener = rt.block_on(super::web::bind(addr, &transport))?;
    let stop = service.stop.clone();
    rt.spawn(async move {
        if let Err(e) = mailvault::web::serve(listener, state, transport, async move { stop.wait().await }).await {
            tracing::error!(error = %e, "the web server stopped");
        }
    });
    Ok(())
}

/// A watched folder holds one of its server's connections for good: at least one
/// must be left for the pulls.
fn check_watch_slots(jobs: &[Arc<Job>]) -> Result<()> {
    let mut per_host: std::collections::HashMap<String, (usize, u32)> = Default::default();
    for j in jobs {
        for a in &j.accounts {
            let e = per_host.entry(a.host_key()).or_insert((0, u32::MAX));
            e.0 += a.spec.watch.len();
            e.1 = e.1.min(j.limits.connections_per_host);
        }
    }
    for (host, (watched, limit)) in per_host {
        if watched > 0 && watched as u64 >= u64::from(limit) {
            bail!(
                "{host}: {watched} watched folder(s) would hold all {limit} connections allowed to that server \
                 (limits.connections_per_host); raise the limit or watch fewer folders"
            );
        }
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs `work`; once a stop is asked, waits at most `grace` seconds more for it.
async fn with_grace<T>(work: impl std::future::Future<Output = T>, stop: &Stop, grace: u64) -> Option<T> {
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => Some(r),
        _ = async { stop.wait().await; tokio::time::sleep(Duration::from_secs(grace)).await } => {
            tracing::warn!(grace_s = grace, "pulls did not finish within the grace period; stopping them (nothing committed is lost)");
            None
        }
    }
}

/// SIGTERM or SIGINT asks `stop`; a second one exits at once. Returns which
/// signal came (set once one has). Call within the runtime.
pub fn on_signal(stop: Stop) -> Result<Arc<std::sync::OnceLock<&'static str>>> {
    use tokio::signal::unix::{signal, SignalKind};
    let got = Arc::new(std::sync::OnceLock::new());
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let seen = got.clone();
    tokio::spawn(async move {
        for _ in 0..2 {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if stop.requested() {
                eprintln!("mailvault: second {name}: exiting now");
                std::process::exit(if name == "SIGINT" { 130 } else { 143 });
            }
            let _ = seen.set(name);
            tracing::warn!(signal = name, "stopping: finishing the batches in hand");
            stop.request();
        }
    });
    Ok(got)
}

fn print_run(r: &AccountRun) {
    let result = match (r.outcome, r.stopped) {
        (Outcome::Ok, true) => "stopped",
        (Outcome::Ok, false) => "ok",
        (Outcome::Temporary, _) => "failed (temporary; retried)",
        (Outcome::Permanent, _) => "failed (login refused or credential unreadable)",
        (Outcome::NeedsLogin, _) => "needs login (run `mailvault login` for this account)",
    };
    let secs = (r.ended - r.started).num_milliseconds() as f64 / 1000.0;
    println!(
        "{} ({}): {result}: {} new, {} fetched ({}) in {secs:.1} s",
        r.account,
        r.server,
        r.new_messages,
        r.fetched,
        human_bytes(r.fetched_bytes)
    );
    if let Some(p) = &r.pull {
        for f in p.folders.iter().filter(|f| f.fetched > 0 || f.error.is_some()) {
            println!(
                "    {:<28} {:>7} on server {:>6} new {:>6} fetched{}",
                f.folder,
                f.exists,
                f.new_messages,
                f.fetched,
                f.error.as_deref().map(|e| format!("  error: {e}")).unwrap_or_default()
            );
        }
    }
    if let Some(rep) = &r.replay {
        println!(
            "    replay to {}: {} appended, {} already present, {} failed",
            rep.target, rep.total.appended, rep.total.already_present, rep.total.failed
        );
    }
    // Folder errors are on their folder's line above.
    let of_a_folder = |e: &str| {
        r.pull
            .as_ref()
            .is_some_and(|p| p.folders.iter().any(|f| e.starts_with(&format!("{}: ", f.folder))))
    };
    for e in r.errors.iter().filter(|e| !of_a_folder(e)) {
        println!("    error: {e}");
    }
}

/// `run --dry-run`: the job as understood, each credential checked (not shown),
/// the next run; nothing connected to.
fn dry_run(cli: &Cli, job: &Job) -> Result<ExitCode> {
    let archive = match &job.archive {
        Some(a) => a.clone(),
        None => super::archive_dir(cli)?,
    };
    let statuses = service::status::read(&service::status::path(&archive, &job.name)).unwrap_or_default();
    println!("job {}: archive {}", job.name, archive.display());
    println!(
        "  schedule {}; at most {} connection(s) per server, {} account(s) at a time{}{}",
        job.timing.describe(),
        job.limits.connections_per_host,
        job.limits.accounts_in_parallel,
        job.limits
            .messages_per_second
            .map(|m| format!(", {m} msg/s"))
            .unwrap_or_default(),
        job.limits
            .bytes_per_second
            .map(|b| format!(", {}/s", human_bytes(b)))
            .unwrap_or_default(),
    );
    let mut bad = 0;
    for a in &job.accounts {
        let mut readable = |login: &job::Login| match credential_readable(login) {
            Ok(()) => "readable".to_string(),
            Err(e) => {
                bad += 1;
                format!("NOT READABLE: {e}")
            }
        };
        let source_credential = readable(&a.spec.login());
        let target_credential = a.spec.replay.as_ref().map(|r| readable(&r.login()));
        let what = if a.is_imap() {
            let mut w = format!(
                "IMAP, {} connection(s), folders {}",
                a.connections(),
                if a.spec.folders.is_empty() {
                    "all".into()
                } else {
                    a.spec.folders.join(", ")
                }
            );
            if !a.spec.exclude.is_empty() {
                w.push_str(&format!(" except {}", a.spec.exclude.join(", ")));
            }
            if !a.spec.watch.is_empty() {
                w.push_str(&format!("; watching {}", a.spec.watch.join(", ")));
            }
            w
        } else {
            format!("POP3, delete {:?}", a.spec.delete)
        };
        let next = statuses
            .accounts
            .get(&a.name)
            .and_then(|s| s.next_run)
            .map_or("at once".to_string(), when);
        println!(
            "  {} <{}>: {what}; credential {source_credential}; next run {next}",
            a.name, a.endpoint
        );
        if let (Some(ep), Some(c)) = (&a.replay_to, target_credential) {
            println!("    then replay into {ep}; credential {c}");
        }
    }
    println!("dry run: nothing was connected to, fetched or stored");
    Ok(if bad > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Reads the credential (it is not shown anywhere).
fn credential_readable(login: &job::Login) -> Result<(), mailvault::net::SecretError> {
    // A stored sign-in is read, and refreshed if need be, when the account runs.
    let Some(cred) = login.password.as_ref().or(login.oauth2_token.as_ref()) else {
        return Ok(());
    };
    cred.source().read().map(drop)
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A time for the status table: local time with its offset from UTC.
fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M %:z").to_string()
}

/// A run's result, as the status file spells it, in words for the table.
fn result_words(code: &str) -> &str {
    match code {
        "ok" => "ok",
        "temporary" => "failed, will retry",
        "permanent" => "failed, needs you",
        "stopped" => "stopped",
        other => other,
    }
}

pub fn status(cli: &Cli, a: &StatusArgs) -> Result<ExitCode> {
    let mut archives: Vec<PathBuf> = Vec::new();
    match &a.jobs {
        Some(dir) => {
            for j in load_dir(dir)? {
                let dir = match j.archive {
                    Some(d) => d,
                    None => super::archive_dir(cli)?,
                };
                if !archives.contains(&dir) {
                    archives.push(dir);
                }
            }
        }
        None => archives.push(super::archive_dir(cli)?),
    }
    let mut all = Vec::new();
    for dir in &archives {
        all.extend(service::status::read_all(dir).with_context(|| format!("reading the status in {}", dir.display()))?);
    }
    if a.output.json() {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no job has run with this archive yet");
        for dir in &archives {
            print_workers(dir)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<28} {:<23} {:<18} {:>6} {:>8}  {:<23}  error",
        "job", "account", "last run", "result", "new", "failures", "next run"
    );
    for j in &all {
        for (name, s) in &j.accounts {
            let (last, result, new, err) = match &s.last_run {
                Some(r) => (
                    local_time(r.ended),
                    result_words(&r.result),
                    r.new_messages,
                    r.errors.first().cloned().unwrap_or_default(),
                ),
                None => ("never".into(), "", 0, String::new()),
            };
            println!(
                "{:<12} {:<28} {:<23} {:<18} {:>6} {:>8}  {:<23}  {err}",
                j.job,
                name,
                last,
                result,
                new,
                s.consecutive_failures,
                s.next_run.map_or("-".into(), local_time),
            );
        }
    }
    for j in &all {
        for (name, s) in &j.accounts {
            for t in &s.too_large {
                println!(
                    "too large: {} {name}: {} ({}, over max_message_size): not archived, not deleted",
                    j.job,
                    t.which(),
                    super::human_bytes(t.bytes)
                );
            }
        }
    }
    for dir in &archives {
        print_workers(dir)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The workers sharing the archive at `dir` and the leases of its accounts, when
/// its metadata is in PostgreSQL and workers have run.
fn print_workers(dir: &Path) -> Result<()> {
    let Some(marker) = mailvault::archive::layout::read_marker(dir)? else {
        return Ok(());
    };
    let mailvault::archive::layout::MetaConfig::Postgres { url } = marker.meta else {
        return Ok(());
    };
    let leases = mailvault::metastore::leases::Leases::observe(&url, false).context("reading the workers")?;
    let workers = leases.workers()?;
    if workers.is_empty() {
        return Ok(());
    }
    println!(
        "\n{:<20} {:<20} {:>8} {:>16} {:>7} {:>6}",
        "worker", "host", "pid", "last heartbeat", "leases", "slots"
    );
    for w in &workers {
        println!(
            "{:<20} {:<20} {:>8} {:>14.1}s {:>7} {:>6}",
            w.id,
            w.host,
            w.pid,
            w.silent_us as f64 / 1e6,
            w.leases,
            w.slots
        );
    }
    println!(
        "\n{:<28} {:<20} {:>12} {:>10}",
        "account", "leased to", "expires in", "generation"
    );
    for l in leases.states()? {
        let expires = l
            .expires_in_us
            .map_or("-".into(), |us| format!("{:.1}s", us as f64 / 1e6));
        let worker = l.worker.as_deref().unwrap_or("-");
        println!("{:<28} {:<20} {:>12} {:>10}", l.account, worker, expires, l.generation);
    }
    Ok(())
}
