//! `purge`: removes messages whose retention has ended (the caller decides which:
//! see `crate::retention`). The only way a message leaves the archive.
//!
//! Plan, in order (a kill -9 between any two steps leaves every message either
//! whole or gone, and the next `purge` finishes the rest):
//! 1. Read the records of the messages to remove; count, for each part they use,
//!    how many of them use it.
//! 2. Find the parts that messages staying in the archive use (a scan of every
//!    message record): those stay whatever happens.
//! 3. For each chunk of [`PURGE_CHUNK`] messages, one atomic batch: their
//!    placements, their records, their pack index entries, the parts whose last
//!    user among the removed is in this chunk and that no staying message uses, the
//!    counters, ingest-log entries telling the search index to forget them, and
//!    (by [`Archive::commit`]) the change record of it all with a signed checkpoint.
//! 4. The bytes stay in their packs until `compact` rewrites the packs they leave
//!    sparse.

use std::collections::{HashMap, HashSet};

use super::{Archive, Result};
use crate::evidence::{Cause, Expiry};
use crate::metastore::{collect_all, Change, MetaBatch, PlacementKey};
use crate::model::{MessageId, PartId};
use crate::records::{IngestEntry, IngestKind, MessageRecord, PayloadKind};

/// Messages removed per atomic batch.
pub const PURGE_CHUNK: usize = 128;

/// What a purge removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PurgeReport {
    pub messages: u64,
    pub placements: u64,
    pub parts: u64,
    /// Raw bytes of the removed messages.
    pub raw_bytes: u64,
    /// Asked for but already gone (an earlier, interrupted purge removed them).
    pub already_gone: u64,
}

impl Archive {
    /// Removes `ids` and everything only they use (plan in the module doc).
    /// Each message comes with why retention let it go, which its change record
    /// keeps. `progress` gets messages removed so far.
    pub fn purge(&self, expired: &[(MessageId, Expiry)], mut progress: impl FnMut(u64)) -> Result<PurgeReport> {
        self.refuse_shared("purge")?;
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = PurgeReport::default();
        // 1.
        let mut going: Vec<(MessageId, MessageRecord, Expiry)> = Vec::with_capacity(expired.len());
        for (id, why) in expired {
            match self.meta.message(id)? {
                Some(r) => going.push((*id, r, why.clone())),
                None => report.already_gone += 1,
            }
        }
        let mut users: HashMap<PartId, u32> = HashMap::new();
        for (_, r, _) in &going {
            for part in distinct_parts(r) {
                *users.entry(part).or_default() += 1;
            }
        }
        // 2.
        let leaving: HashSet<MessageId> = going.iter().map(|(id, _, _)| *id).collect();
        let staying = self.parts_used_by_others(&leaving, &users)?;
        // 3.
        for chunk in going.chunks(PURGE_CHUNK) {
            self.purge_chunk(chunk, &mut users, &staying, &mut report)?;
            progress(report.messages);
        }
        Ok(report)
    }

    /// Of the parts in `users`, those a message not `leaving` uses.
    fn parts_used_by_others(
        &self,
        leaving: &HashSet<MessageId>,
        users: &HashMap<PartId, u32>,
    ) -> Result<HashSet<PartId>> {
        let mut staying = HashSet::new();
        if users.is_empty() {
            return Ok(staying);
        }
        let mut others = Vec::new();
        collect_all(
            |visit| self.meta.scan_ids(PayloadKind::Skeleton, &[], visit),
            |id| {
                if !leaving.contains(&id) {
                    others.push(id);
                }
            },
        )?;
        for id in others {
            if let Some(r) = self.meta.message(&id)? {
                staying.extend(r.parts.iter().map(|p| p.part).filter(|p| users.contains_key(p)));
            }
        }
        Ok(staying)
    }

    fn purge_chunk(
        &self,
        chunk: &[(MessageId, MessageRecord, Expiry)],
        users: &mut HashMap<PartId, u32>,
        staying: &HashSet<PartId>,
        report: &mut PurgeReport,
    ) -> Result<()> {
        let mut batch = MetaBatch::default();
        let mut counters = self.counters();
        for (id, record, why) in chunk {
            for p in self.meta.placements_of(id)? {
                let key = PlacementKey::new(&p.key.account, &p.key.mailbox, &p.key.source, id);
                batch.push(Change::DropPlacement { key, message: *id });
                counters.placements = counters.placements.saturating_sub(1);
                counters.placement_raw_bytes = counters.placement_raw_bytes.saturating_sub(record.raw_len);
                report.placements += 1;
            }
            if let Some(l) = self.meta.location(PayloadKind::Skeleton, id)? {
                counters.unique_bytes = counters.unique_bytes.saturating_sub(l.len);
            }
            batch.push(Change::DropMessage {
                id: *id,
                why: Some(why.clone()),
            });
            // Its tags go with it.
            if let Some(was) = self
                .meta
                .tags_of(std::slice::from_ref(id))?
                .pop()
                .filter(|t| !t.is_empty())
            {
                batch.push(Change::Tags {
                    message: *id,
                    tags: Default::default(),
                    was,
                });
            }
            batch.push(Change::DropLocation {
                kind: PayloadKind::Skeleton,
                id: *id,
            });
            counters.messages = counters.messages.saturating_sub(1);
            counters.raw_bytes = counters.raw_bytes.saturating_sub(record.raw_len);
            for part in distinct_parts(record) {
                let left = users.get_mut(&part).map(|n| {
                    *n -= 1;
                    *n
                });
                if left == Some(0) && !staying.contains(&part) && self.meta.have(PayloadKind::Part, &[part])?[0] {
                    if let Some(l) = self.meta.location(PayloadKind::Part, &part)? {
                        counters.unique_bytes = counters.unique_bytes.saturating_sub(l.len);
                    }
                    batch.push(Change::DropPart(part));
                    batch.push(Change::DropLocation {
                        kind: PayloadKind::Part,
                        id: part,
                    });
                    counters.parts = counters.parts.saturating_sub(1);
                    report.parts += 1;
                }
            }
            batch.push(Change::LogEntry {
                seq: counters.next_seq,
                entry: IngestEntry {
                    kind: IngestKind::Removed,
                    message: *id,
                },
            });
            counters.next_seq += 1;
            report.messages += 1;
            report.raw_bytes += record.raw_len;
        }
        batch.push(Change::Counters(counters.clone()));
        super::layout::write_seq_hint(&self.dir, counters.next_seq)?;
        self.commit_as(batch, Some(Cause::Purge))?;
        *self.counters.write().unwrap_or_else(|p| p.into_inner()) = counters;
        Ok(())
    }
}

fn distinct_parts(r: &MessageRecord) -> Vec<PartId> {
    let mut parts: Vec<PartId> = r.parts.iter().map(|p| p.part).collect();
    parts.sort();
    parts.dedup();
    parts
}
