//! Writing as one of several writers of one store: `serve --worker-id` on several
//! processes (or machines) sharing metadata in PostgreSQL and one blob store.
//!
//! A writer alone keeps the archive-wide heads in memory — the counters (and in
//! them the next ingest-log sequence number), the dictionaries, the pack table
//! and the next pack number, the change log's end — and builds every batch on
//! them. When several write, each write is made in a *turn*:
//!
//! 1. wait for the turn: one thread of the process, then one writer of the store
//!    ([`MetaStore::turn`](crate::metastore::MetaStore::turn), the store's writer
//!    lock, held for this write only);
//! 2. read the heads again, since another writer may have moved them;
//! 3. build the batch on them — number its log records, name its pack, chain its
//!    change record — and, when it writes for an account, check that this writer
//!    still holds the account's lease ([`Fence`]: a worker that stalled past its
//!    lease's expiry has lost the account to another and must not write for it);
//! 4. commit, and give the turn back.
//!
//! Pulls (the network, most of the time) run in parallel on every writer; the
//! store step of each batch is serial. Packs are named by their content, so two
//! writers that store the same payloads write the same object, and the message and
//! part records deduplicate at commit. Work that rewrites what other writers read
//! (`compact`, `purge`) is refused here: it runs as the one writer.

use std::sync::{Arc, Mutex, RwLock};
use std::thread::ThreadId;

use super::{Archive, ArchiveError, Result};
use crate::metastore::{Change, MetaBatch};

/// Says whether this writer may still write for an account (the service's leases).
pub trait Fence: Send + Sync {
    /// `Err(why)` when it may not: the account's lease is no longer this writer's.
    fn check(&self, account: &str) -> std::result::Result<(), String>;
}

/// The state of a writer that shares its store.
#[derive(Default)]
pub(super) struct Shared {
    /// One turn per process at a time.
    local: Mutex<()>,
    /// The thread whose turn it is (a write made inside a write uses the same turn).
    owner: Mutex<Option<ThreadId>>,
    fence: RwLock<Option<Arc<dyn Fence>>>,
}

/// Clears the turn's owner when the turn ends, however it ends.
struct Owner<'a>(&'a Mutex<Option<ThreadId>>);

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The accounts a batch writes for: its placements, cursors and source records.
fn accounts_written(batch: &MetaBatch) -> std::collections::BTreeSet<&str> {
    batch
        .changes()
        .iter()
        .filter_map(|c| match c {
            Change::Placement { key, .. } | Change::DropPlacement { key, .. } => Some(key.parts().account.as_str()),
            Change::Cursor { account, .. }
            | Change::DropCursor { account, .. }
            | Change::GmailMessage { account, .. }
            | Change::TooLarge { account, .. } => Some(account.as_str()),
            _ => None,
        })
        .collect()
}

impl Archive {
    /// Whether this archive was opened as one of several writers.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Checks every later batch that writes for an account with `fence` (shared
    /// writers only; a writer alone needs none).
    pub fn set_fence(&self, fence: Arc<dyn Fence>) {
        if let Some(s) = &self.shared {
            *s.fence.write().unwrap_or_else(|p| p.into_inner()) = Some(fence);
        }
    }

    /// Runs `write` in this writer's turn (steps 1–2 of the module doc, then
    /// `write`); a writer alone runs it at once.
    pub(super) fn in_turn<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        let Some(shared) = &self.shared else { return write() };
        let me = std::thread::current().id();
        if *shared.owner.lock().unwrap_or_else(|p| p.into_inner()) == Some(me) {
            return write();
        }
        let _local = shared.local.lock().unwrap_or_else(|p| p.into_inner());
        let _turn = self.meta.turn()?;
        *shared.owner.lock().unwrap_or_else(|p| p.into_inner()) = Some(me);
        let _owner = Owner(&shared.owner);
        self.refresh_heads()?;
        write()
    }

    /// Step 3's check: every account `batch` writes for is still this writer's.
    pub(super) fn check_fence(&self, batch: &MetaBatch) -> Result<()> {
        let Some(shared) = &self.shared else { return Ok(()) };
        let fence = shared.fence.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(fence) = fence else { return Ok(()) };
        for account in accounts_written(batch) {
            fence.check(account).map_err(|why| ArchiveError::NotHeld {
                account: account.to_string(),
                why,
            })?;
        }
        Ok(())
    }

    /// Refuses `what` on a shared writer: it rewrites what the other writers read.
    pub(super) fn refuse_shared(&self, what: &'static str) -> Result<()> {
        if self.shared.is_some() {
            return Err(ArchiveError::NeedsOneWriter {
                path: self.dir.clone(),
                what,
            });
        }
        Ok(())
    }

    /// Step 2: the heads as the store has them now.
    fn refresh_heads(&self) -> Result<()> {
        if let Some(c) = self.meta.counters()? {
            let dictionaries = c.dictionaries;
            *self.counters.write().unwrap_or_else(|p| p.into_inner()) = c;
            let known = self.dicts.read().unwrap_or_else(|p| p.into_inner()).by_id.len() as u64;
            if dictionaries != known {
                self.reload_dictionaries()?;
            }
        }
        self.refresh_packs()?;
        self.refresh_chain()
    }

    /// The packs other writers added since this one last looked (numbers only
    /// grow: a pack `compact` removed stays known here, unused).
    fn refresh_packs(&self) -> Result<()> {
        let next = self.meta.next_pack()?.unwrap_or(1);
        let known = *self.next_pack.lock().unwrap_or_else(|p| p.into_inner());
        if next < known {
            return self.reload_packs();
        }
        let mut added = Vec::new();
        for number in known..next {
            if let Some(r) = self.meta.pack(number)? {
                added.push((number, r));
            }
        }
        self.packs.write().unwrap_or_else(|p| p.into_inner()).extend(added);
        *self.next_pack.lock().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }
}
