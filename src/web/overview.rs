//! The overview (`/overview`, `GET /api/v1/stats`): messages and bytes per account
//! and folder, what deduplication and compression save, and each job account's
//! last run, result and next run (from the service's status files). A `user` sees
//! the folders and job accounts of their accounts only, and not the archive-wide
//! totals. The folder table is counted once per archive snapshot.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::WebError;
use super::library::{Library, Snapshot};
use crate::archive::PlacementFilter;
use crate::readers::Principal;

/// One folder of one account.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FolderLine {
    pub account: String,
    pub folder: String,
    /// Placements (a message filed twice in the folder counts twice).
    pub messages: u64,
    /// Their bytes as received, before deduplication and compression.
    pub bytes: u64,
}

/// Archive-wide figures (admins and auditors).
#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    /// Distinct messages.
    pub messages: u64,
    pub placements: u64,
    /// The distinct messages' bytes as received.
    pub raw_bytes: u64,
    /// What deduplication of identical messages and MIME parts saved.
    pub dedup_saved_bytes: u64,
    /// Bytes stored after deduplication and compression.
    pub stored_bytes: u64,
    /// Stored ÷ raw.
    pub ratio: f64,
    pub disk_bytes: u64,
}

/// One account of one job.
#[derive(Clone, Debug, Serialize)]
pub struct JobLine {
    pub job: String,
    pub account: String,
    pub server: String,
    /// RFC 3339, UTC; absent when it never ran.
    pub last_run: Option<String>,
    /// `ok`, `temporary`, `permanent`, `stopped`, `needs-login`; absent when it
    /// never ran.
    pub result: Option<String>,
    pub new_messages: u64,
    pub consecutive_failures: u32,
    pub next_run: Option<String>,
    /// The last run's first error.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    pub folders: Vec<FolderLine>,
    /// Only for admins and auditors.
    pub totals: Option<Totals>,
    pub jobs: Vec<JobLine>,
}

/// Every folder of the archive, counted (once per snapshot, see [`Snapshot::folders`]).
pub fn count_folders(snap: &Snapshot) -> Result<Vec<FolderLine>, WebError> {
    let mut by: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let mut sizes: std::collections::HashMap<crate::model::MessageId, u64> = Default::default();
    for p in snap.archive.placements(&PlacementFilter::default())? {
        let id = p.record.message;
        let size = match sizes.get(&id) {
            Some(&s) => s,
            None => {
                let s = snap.archive.message_record(&id)?.map_or(0, |r| r.raw_len);
                sizes.insert(id, s);
                s
            }
        };
        let e = by.entry((p.key.account.clone(), p.key.mailbox.clone())).or_default();
        e.0 += 1;
        e.1 += size;
    }
    Ok(by
        .into_iter()
        .map(|((account, folder), (messages, bytes))| FolderLine {
            account,
            folder,
            messages,
            bytes,
        })
        .collect())
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn totals(snap: &Snapshot) -> Totals {
    let c = snap.archive.counters();
    Totals {
        messages: c.messages,
        placements: c.placements,
        raw_bytes: c.raw_bytes,
        dedup_saved_bytes: c.dedup_saved_bytes(),
        stored_bytes: c.stored_bytes,
        ratio: if c.raw_bytes == 0 {
            0.0
        } else {
            c.stored_bytes as f64 / c.raw_bytes as f64
        },
        disk_bytes: snap.archive.disk_bytes(),
    }
}

fn jobs(lib: &Library, who: &Principal) -> Result<Vec<JobLine>, WebError> {
    let all = crate::service::status::read_all(lib.dir()).map_err(|e| WebError::Status(e.to_string()))?;
    let mut out = Vec::new();
    for j in all {
        for (account, s) in j.accounts {
            if !who.may_see(&account) {
                continue;
            }
            let last = s.last_run.as_ref();
            out.push(JobLine {
                job: j.job.clone(),
                account,
                server: s.server.clone(),
                last_run: last.map(|r| rfc3339(r.ended)),
                result: last.map(|r| r.result.clone()),
                new_messages: last.map_or(0, |r| r.new_messages),
                consecutive_failures: s.consecutive_failures,
                next_run: s.next_run.map(rfc3339),
                error: last.and_then(|r| r.errors.first().cloned()),
            });
        }
    }
    Ok(out)
}

/// The overview as `who` may see it.
pub fn overview(lib: &Library, who: &Principal) -> Result<Overview, WebError> {
    let snap = lib.snapshot()?;
    let folders = snap
        .folders()?
        .iter()
        .filter(|f| who.may_see(&f.account))
        .cloned()
        .collect();
    Ok(Overview {
        folders,
        totals: who.may_audit().then(|| totals(&snap)),
        jobs: jobs(lib, who)?,
    })
}
