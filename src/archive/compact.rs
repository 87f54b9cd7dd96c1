//! `compact`: rewrites cold packs at a high compression level with similar mail
//! together, drops payloads nothing references any more, and removes orphan packs.
//!
//! Crash safety, in order (a kill -9 between any two steps loses nothing):
//! 1. Choose the packs to rewrite: those written at ingest's fast level, small
//!    compacted ones when there are several, and those `purge` left sparse (less
//!    than 80% of their bytes still referenced).
//! 2. Read their live payloads' locations; drop index entries of payloads no message
//!    or part record references (one batch).
//! 3. Sort the live payloads by group (folder, then list or sender).
//! 4. For each new pack of about [`COMPACT_PACK_BYTES`]: store it durably, then one
//!    batch points its payloads' index entries at it. Old packs are still whole, so
//!    every message stays readable throughout.
//! 5. One batch forgets the old packs (nothing points to them now); then they are
//!    deleted from the store.
//! 6. Orphans: packs in the store the archive does not reference (left by a kill
//!    between a pack's upload and its batch) are deleted. The archive's write lock
//!    is held throughout, and only one process can open an archive for writing, so
//!    no batch can be about to reference them.

use std::collections::{HashMap, HashSet};

use super::pack::{self, FrameDict, PackItem};
use super::{Archive, ArchiveError, Result};
use crate::blobstore::PackName;
use crate::metastore::{collect_all, Change, MetaBatch};
use crate::model::Hash32;
use crate::records::{BlobLocation, Codec, PayloadKind};

/// zstd level of compacted packs.
pub const COMPACT_LEVEL: i32 = 19;
/// Payload bytes per compacted pack.
pub const COMPACT_PACK_BYTES: usize = 32 << 20;
/// Idle compaction waits for this many packs to rewrite (or a pack's worth of bytes).
pub const WORTH_PACKS: usize = 16;

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct CompactReport {
    pub packs_before: u64,
    pub bytes_before: u64,
    pub packs_rewritten: u64,
    pub packs_written: u64,
    pub packs_after: u64,
    pub bytes_after: u64,
    /// Payloads dropped because no message or part references them.
    pub payloads_dropped: u64,
    /// Packs in the store that the archive did not reference, deleted.
    pub orphans_removed: u64,
    pub orphan_bytes_removed: u64,
}

/// A live payload to move: its index key and where it is now.
struct Live {
    kind: PayloadKind,
    id: Hash32,
    location: BlobLocation,
}

impl Archive {
    /// Compacts the archive (see the module). `progress` gets payloads moved so far.
    pub fn compact(&self, mut progress: impl FnMut(u64, u64)) -> Result<CompactReport> {
        self.refuse_shared("compact")?;
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let before = self.pack_records();
        let mut report = CompactReport {
            packs_before: before.len() as u64,
            bytes_before: before.iter().map(|(_, r)| r.size).sum(),
            ..Default::default()
        };
        let mut chosen = choose_packs(&before);
        chosen.extend(self.sparse_packs(&before)?);
        if !chosen.is_empty() {
            let live = self.live_payloads(&chosen, &mut report)?;
            self.rewrite(live, &mut progress, &mut report)?;
            self.forget_packs(&chosen)?;
            report.packs_rewritten = chosen.len() as u64;
        }
        self.remove_orphans(&mut report)?;
        let after = self.pack_records();
        report.packs_after = after.len() as u64;
        report.bytes_after = after.iter().map(|(_, r)| r.size).sum();
        Ok(report)
    }

    /// Whether compacting would do much: at least [`WORTH_PACKS`] packs to rewrite,
    /// or as many bytes as one compacted pack holds.
    pub fn worth_compacting(&self) -> bool {
        let packs = self.pack_records();
        let chosen = choose_packs(&packs);
        let bytes: u64 = packs
            .iter()
            .filter(|(n, _)| chosen.contains(n))
            .map(|(_, r)| r.size)
            .sum();
        chosen.len() >= WORTH_PACKS || bytes >= COMPACT_PACK_BYTES as u64
    }

    /// Step 2: the live payloads of `chosen`, in index order; dead index entries are
    /// deleted.
    fn live_payloads(&self, chosen: &HashSet<u64>, report: &mut CompactReport) -> Result<Vec<Live>> {
        let mut candidates = Vec::new();
        collect_all(
            |visit| self.meta.scan_locations(visit),
            |(kind, id, location)| {
                if chosen.contains(&location.pack) {
                    candidates.push(Live { kind, id, location });
                }
            },
        )?;
        let mut live = Vec::with_capacity(candidates.len());
        let mut dead = MetaBatch::default();
        for chunk in candidates.chunks(4096) {
            for kind in [PayloadKind::Skeleton, PayloadKind::Part] {
                let of_kind: Vec<&Live> = chunk.iter().filter(|l| l.kind == kind).collect();
                let ids: Vec<Hash32> = of_kind.iter().map(|l| l.id).collect();
                for (l, referenced) in of_kind.into_iter().zip(self.meta.have(kind, &ids)?) {
                    if referenced {
                        live.push(Live {
                            kind,
                            id: l.id,
                            location: l.location.clone(),
                        });
                    } else {
                        dead.push(Change::DropLocation { kind, id: l.id });
                        report.payloads_dropped += 1;
                    }
                }
            }
        }
        if !dead.is_empty() {
            self.commit(dead)?;
        }
        Ok(live)
    }

    /// Steps 3 and 4: the live payloads, grouped, into new packs at a high level.
    fn rewrite(
        &self,
        mut live: Vec<Live>,
        progress: &mut impl FnMut(u64, u64),
        report: &mut CompactReport,
    ) -> Result<()> {
        live.sort_by_key(|l| {
            (
                l.location.group,
                l.location.pack,
                l.location.frame_offset,
                l.location.offset,
            )
        });
        let total = live.len() as u64;
        let current = self.dicts.read().unwrap_or_else(|p| p.into_inner()).current.clone();
        let encoder = current.as_deref().map(|d| (d.id, d.encoder_at(COMPACT_LEVEL)));
        let dict = encoder.as_ref().map(|(id, e)| FrameDict { id: *id, encoder: e });
        let mut done = 0u64;
        let mut start = 0;
        while start < live.len() {
            let mut end = start;
            let mut bytes = 0usize;
            while end < live.len() && (end == start || bytes < COMPACT_PACK_BYTES) {
                bytes += live[end].location.len as usize;
                end += 1;
            }
            self.rewrite_one(&live[start..end], dict)?;
            report.packs_written += 1;
            done += (end - start) as u64;
            progress(done, total);
            start = end;
        }
        Ok(())
    }

    /// One new pack of `chunk`, durable, then the batch that points at it.
    fn rewrite_one(&self, chunk: &[Live], dict: Option<FrameDict<'_>>) -> Result<()> {
        let payloads: Vec<Vec<u8>> = chunk
            .iter()
            .map(|l| {
                self.read_located(&l.location).map_err(|e| ArchiveError::Corrupt {
                    id: l.id.to_hex(),
                    what: format!("compact cannot read {} {}: {e}", l.kind.name(), l.id),
                })
            })
            .collect::<Result<_>>()?;
        let items: Vec<PackItem<'_>> = chunk
            .iter()
            .zip(&payloads)
            .map(|(l, p)| PackItem {
                kind: l.kind,
                id: l.id,
                payload: p,
                try_stored: l.location.codec == Codec::Stored,
                group: l.location.group,
            })
            .collect();
        let mut wb = MetaBatch::default();
        let now = chrono::Utc::now().timestamp();
        let written = self.write_pack(&items, dict, COMPACT_LEVEL, pack::COMPACT_FRAME, now, &mut wb)?;
        let mut counters = self.counters();
        // The old packs' bytes are subtracted when they are forgotten (step 5).
        counters.stored_bytes += written.record.size;
        wb.push(Change::Counters(counters.clone()));
        self.commit(wb)?;
        self.packs_committed([written]);
        *self.counters.write().unwrap_or_else(|p| p.into_inner()) = counters;
        Ok(())
    }

    /// Step 5: forgets the rewritten packs, then deletes them from the store.
    fn forget_packs(&self, chosen: &HashSet<u64>) -> Result<()> {
        let records: HashMap<u64, crate::records::PackRecord> = self
            .pack_records()
            .into_iter()
            .filter(|(n, _)| chosen.contains(n))
            .collect();
        let mut wb = MetaBatch::default();
        let mut counters = self.counters();
        for (n, r) in &records {
            wb.push(Change::DropPack(*n));
            counters.stored_bytes = counters.stored_bytes.saturating_sub(r.size);
        }
        wb.push(Change::Counters(counters.clone()));
        self.commit(wb)?;
        {
            let mut packs = self.packs.write().unwrap_or_else(|p| p.into_inner());
            for n in records.keys() {
                packs.remove(n);
            }
        }
        *self.counters.write().unwrap_or_else(|p| p.into_inner()) = counters;
        self.frames.clear();
        self.ranges.clear();
        for r in records.values() {
            self.blobs.delete(&PackName(r.name))?;
        }
        Ok(())
    }

    /// Step 6: packs in the store that no record names.
    fn remove_orphans(&self, report: &mut CompactReport) -> Result<()> {
        let known: HashSet<Hash32> = self.pack_records().into_iter().map(|(_, r)| r.name).collect();
        for p in self.blobs.list()? {
            if !known.contains(&p.name.0) {
                tracing::info!(pack = %p.name, bytes = p.size, "removing an orphan pack");
                self.blobs.delete(&p.name)?;
                report.orphans_removed += 1;
                report.orphan_bytes_removed += p.size;
            }
        }
        Ok(())
    }
}

/// Step 1: packs written at a lower level than compaction's; and compacted packs
/// under half the target size, when there are at least two to merge.
impl Archive {
    /// Packs of which less than [`SPARSE_LIVE`] of the bytes are still referenced
    /// (`purge` left them so): rewritten whatever their level, to reclaim the rest.
    fn sparse_packs(&self, packs: &[(u64, crate::records::PackRecord)]) -> Result<HashSet<u64>> {
        let mut frames: HashSet<(u64, u64, u32)> = HashSet::new();
        collect_all(
            |visit| self.meta.scan_locations(visit),
            |(_, _, l)| {
                frames.insert((l.pack, l.frame_offset, l.frame_len));
            },
        )?;
        let mut live: HashMap<u64, u64> = HashMap::new();
        for (pack, _, len) in frames {
            *live.entry(pack).or_default() += u64::from(len);
        }
        Ok(packs
            .iter()
            .filter(|(n, r)| {
                // The magics and trailer count as live: only frames nothing
                // references are dead.
                let overhead = 28 + pack::ENTRY_LEN as u64 * u64::from(r.entries);
                let l = live.get(n).copied().unwrap_or(0) + overhead;
                (l as f64) < SPARSE_LIVE * r.size as f64
            })
            .map(|(n, _)| *n)
            .collect())
    }
}

/// A pack with less than this share of its bytes live is rewritten.
const SPARSE_LIVE: f64 = 0.8;

fn choose_packs(packs: &[(u64, crate::records::PackRecord)]) -> HashSet<u64> {
    let mut chosen: HashSet<u64> = packs
        .iter()
        .filter(|(_, r)| (r.level as i32) < COMPACT_LEVEL)
        .map(|(n, _)| *n)
        .collect();
    let small: Vec<u64> = packs
        .iter()
        .filter(|(_, r)| (r.level as i32) >= COMPACT_LEVEL && (r.size as usize) < COMPACT_PACK_BYTES / 4)
        .map(|(n, _)| *n)
        .collect();
    if small.len() >= 2 {
        chosen.extend(small);
    }
    chosen
}
