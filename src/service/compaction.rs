//! Compaction while the service is idle: when no account of an archive has run
//! for a while and enough packs of new mail have gathered, `serve` compacts the
//! archive on its writer thread (so no commit interleaves with it).
//!
//! `MAILVAULT_COMPACT_WHEN_IDLE_SECS` sets the quiet time (default 300 s; 0 turns
//! idle compaction off).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::ArchiveContext;

/// Quiet time before compacting, unless the environment says otherwise.
pub const DEFAULT_QUIET: Duration = Duration::from_secs(300);

/// How busy an archive's accounts are.
#[derive(Debug)]
pub struct Activity {
    running: AtomicUsize,
    last: Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            running: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }
}

/// Held while an account runs.
pub struct Running<'a>(&'a Activity);

impl Activity {
    pub fn start(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        Running(self)
    }

    /// True when nothing runs and nothing ran for `quiet`.
    fn idle_for(&self, quiet: Duration) -> bool {
        self.running.load(Ordering::SeqCst) == 0
            && self.last.lock().unwrap_or_else(|p| p.into_inner()).elapsed() >= quiet
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The quiet time from the environment (`None`: idle compaction is off).
pub fn quiet_time() -> Option<Duration> {
    match std::env::var("MAILVAULT_COMPACT_WHEN_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None => Some(DEFAULT_QUIET),
    }
}

/// Checks `env`'s archive every so often until a stop; compacts it when idle and
/// worth it.
pub async fn when_idle(env: Arc<ArchiveContext>, quiet: Duration) {
    let every = (quiet / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = env.stop.wait() => return,
        }
        if !env.activity.idle_for(quiet) || !env.archive.worth_compacting() {
            continue;
        }
        info!(archive = %env.archive.dir().display(), "compacting while idle");
        match env.writer.compact().await {
            Ok(r) => info!(
                packs_rewritten = r.packs_rewritten,
                packs_written = r.packs_written,
                bytes_before = r.bytes_before,
                bytes_after = r.bytes_after,
                orphans_removed = r.orphans_removed,
                "compacted"
            ),
            Err(e) => warn!(error = %e, "compaction failed (the archive is as it was; retried when next idle)"),
        }
    }
}
