//! Storing a batch of messages: hash, split, dedup, pack (compressed in parallel,
//! durable in the blob store), then one metadata batch ([`MetaBatch`]) with the pack's
//! index entries, records, placements, ingest-log entries and counters. Either the
//! whole batch is durable or none of it is (a pack without its batch is an orphan
//! that `compact` removes).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;
use tracing::{debug, warn};

use super::blob::{self, Dict};
use super::pack::{self, FrameDict, PackItem};
use super::sync::SourceChanges;
use super::{check_name, layout, Archive, ArchiveError, Result};
use crate::metastore::{Change, MetaBatch, PlacementKey};
use crate::mime::{self, Cut};
use crate::model::{IdHasher, MessageId, PartId, PlacementSpec, RawMessage};
use crate::records::{
    Counters, IngestEntry, IngestKind, MessageRecord, PartRecord, PartRef, PayloadKind, PlacementRecord,
};

/// What one batch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct IngestReport {
    /// Messages offered (including duplicates).
    pub messages: u64,
    pub new_messages: u64,
    /// Offered messages already in the archive (or earlier in the same batch).
    pub duplicates: u64,
    pub new_placements: u64,
    /// Existing placements whose flags or dates changed.
    pub updated_placements: u64,
    pub new_parts: u64,
    /// Parts found already stored (shared attachments, list bodies).
    pub deduplicated_parts: u64,
    pub bytes_in: u64,
    /// Bytes of the pack this batch added to the archive (0 when nothing was new).
    pub stored_bytes: u64,
    /// Placements whose flags a source reported changed.
    pub flag_changes: u64,
    /// Placements newly marked deleted at source.
    pub deleted_at_source: u64,
}

impl IngestReport {
    pub fn add(&mut self, o: &IngestReport) {
        self.messages += o.messages;
        self.new_messages += o.new_messages;
        self.duplicates += o.duplicates;
        self.new_placements += o.new_placements;
        self.updated_placements += o.updated_placements;
        self.new_parts += o.new_parts;
        self.deduplicated_parts += o.deduplicated_parts;
        self.bytes_in += o.bytes_in;
        self.stored_bytes += o.stored_bytes;
        self.flag_changes += o.flag_changes;
        self.deleted_at_source += o.deleted_at_source;
    }
}

/// One placement to record, of a message in the batch or already archived.
struct Sighting<'a> {
    id: MessageId,
    raw_len: u64,
    spec: &'a PlacementSpec,
}

/// A new message split into skeleton and part payloads, verified to rebuild.
struct Prepared {
    id: MessageId,
    raw_len: u64,
    skeleton: Vec<u8>,
    parts: Vec<(PartRef, Vec<u8>)>,
    /// Where similar mail goes in packs (folder, list or sender).
    group: u64,
}

/// Every account and mailbox name of the batch is usable in keys.
fn check_batch_names(batch: &[RawMessage]) -> Result<()> {
    for p in batch.iter().flat_map(|m| &m.placements) {
        check_name("account", &p.account)?;
        check_name("mailbox", &p.mailbox)?;
    }
    Ok(())
}

fn prepare(m: &RawMessage, ids: &IdHasher, min_part: usize) -> Result<Prepared> {
    let mut p = split_message(m.id, &m.raw, ids, min_part)?;
    p.group = match m.placements.first() {
        Some(spec) => pack::group_of(ids, &spec.account, &spec.mailbox, &p.skeleton),
        None => pack::group_of(ids, "", "", &p.skeleton),
    };
    Ok(p)
}

fn split_message(id: MessageId, raw: &[u8], ids: &IdHasher, min_part: usize) -> Result<Prepared> {
    let cuts: Vec<Cut> = mime::split(raw, min_part);
    let skeleton = mime::skeleton(raw, &cuts);
    let splices = mime::splices(&cuts);
    let payloads: Vec<Vec<u8>> = cuts.into_iter().map(|c| c.into_payload(raw)).collect();
    // The split must rebuild to the very bytes we were given; if it does not (a bug,
    // never expected), the message is stored whole.
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let rebuilt_ok =
        mime::splice_hash(ids.hasher(), &skeleton, &splices, &refs, raw.len() as u64).is_ok_and(|h| h == id.0);
    if !rebuilt_ok {
        // Either the split is wrong (never expected) or the id was not made by this
        // archive's hasher (a source's bug): the second must not be stored.
        if ids.id(raw) != id {
            return Err(ArchiveError::Corrupt {
                id: id.to_hex(),
                what: "the id handed in is not this archive's id of the message's bytes".into(),
            });
        }
        warn!(message = %id, "MIME split did not rebuild exactly; storing the message whole");
        return Ok(Prepared {
            id,
            raw_len: raw.len() as u64,
            skeleton: raw.to_vec(),
            parts: Vec::new(),
            group: 0,
        });
    }
    let parts = splices
        .into_iter()
        .zip(payloads)
        .map(|(splice, payload)| {
            (
                PartRef {
                    splice,
                    part: ids.id(&payload),
                },
                payload,
            )
        })
        .collect();
    Ok(Prepared {
        id,
        raw_len: raw.len() as u64,
        skeleton,
        parts,
        group: 0,
    })
}

/// The parts of a batch's new messages that the archive does not hold yet.
struct NewParts<'a> {
    /// Each new part once, with its payload.
    fresh: HashMap<PartId, &'a [u8]>,
    /// References to parts already stored (or repeated within the batch).
    deduplicated: u64,
    /// Their encoded bytes (what part-level dedup saved).
    dedup_bytes: u64,
}

/// Packs new skeletons and parts in group order: each message's skeleton followed
/// by the new parts it introduces, so reading one message usually decodes one frame.
fn pack_items<'a>(prepared: &'a [Prepared], fresh: &HashMap<PartId, &'a [u8]>) -> Vec<PackItem<'a>> {
    let mut order: Vec<&Prepared> = prepared.iter().collect();
    order.sort_by_key(|p| p.group);
    let mut placed: HashSet<PartId> = HashSet::new();
    let mut items = Vec::with_capacity(prepared.len() + fresh.len());
    for p in order {
        items.push(PackItem {
            kind: PayloadKind::Skeleton,
            id: p.id,
            payload: &p.skeleton,
            try_stored: false,
            group: p.group,
        });
        for (r, _) in &p.parts {
            if let Some(payload) = fresh.get(&r.part) {
                if placed.insert(r.part) {
                    items.push(PackItem {
                        kind: PayloadKind::Part,
                        id: r.part,
                        payload,
                        try_stored: true,
                        group: p.group,
                    });
                }
            }
        }
    }
    items
}

impl Archive {
    /// Stores a batch durably. `now` is the time recorded as first/last seen.
    pub fn ingest(&self, batch: &[RawMessage], now: i64) -> Result<IngestReport> {
        self.ingest_with(batch, &SourceChanges::default(), now)
    }

    /// Stores a batch together with placement changes and cursor advances, all in one
    /// durable write: the new payloads in one pack (durable first), then one
    /// metadata batch with their index entries, records, placements, log entries and
    /// counters.
    pub fn ingest_with(&self, batch: &[RawMessage], changes: &SourceChanges, now: i64) -> Result<IngestReport> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.in_turn(|| self.ingest_locked(batch, changes, now))
    }

    /// [`Archive::ingest_with`], with the write lock (and a shared writer's turn) held.
    fn ingest_locked(&self, batch: &[RawMessage], changes: &SourceChanges, now: i64) -> Result<IngestReport> {
        let mut report = IngestReport {
            messages: batch.len() as u64,
            bytes_in: batch.iter().map(|m| m.raw.len() as u64).sum(),
            ..Default::default()
        };
        let before_seq = self.counters().next_seq;
        check_batch_names(batch)?;
        let t0 = std::time::Instant::now();

        // 1. Which messages are new; split and verify them, in parallel.
        let new = self.new_messages(batch)?;
        report.new_messages = new.len() as u64;
        report.duplicates = report.messages - report.new_messages;
        let min_part = self.config.min_part;
        let prepared: Vec<Prepared> = new
            .par_iter()
            .map(|m| prepare(m, &self.ids, min_part))
            .collect::<Result<_>>()?;
        let t_split = t0.elapsed();

        // 2. Train the dictionary on the first batch large enough.
        let mut wb = MetaBatch::default();
        let mut counters = self.counters();
        let new_dict = self.train_dictionary(&prepared, &mut wb, &mut counters);
        let dict = new_dict
            .clone()
            .or_else(|| self.dicts.read().unwrap_or_else(|p| p.into_inner()).current.clone());

        // 3. Which parts are new?
        let parts = self.new_parts(&prepared)?;
        report.new_parts = parts.fresh.len() as u64;
        report.deduplicated_parts = parts.deduplicated;
        counters.part_dedup_bytes += parts.dedup_bytes;
        let t_dict = t0.elapsed();

        // 4. The pack: durable in the blob store before anything points to it.
        let items = pack_items(&prepared, &parts.fresh);
        let written = if items.is_empty() {
            None
        } else {
            let frame_dict = dict.as_deref().map(|d| FrameDict {
                id: d.id,
                encoder: &d.encoder,
            });
            let w = self.write_pack(&items, frame_dict, blob::LEVEL, pack::INGEST_FRAME, now, &mut wb)?;
            counters.stored_bytes += w.record.size;
            report.stored_bytes += w.record.size;
            Some(w)
        };
        let t_compress = t0.elapsed();

        // 5. Records, placements, source changes and counters in the same batch.
        let new_ids = self.stage_records(&prepared, &parts.fresh, now, &mut wb, &mut counters);
        counters.messages += report.new_messages;
        let sightings = self.sightings(batch, changes)?;
        self.stage_placements(&sightings, &new_ids, now, &mut wb, &mut counters, &mut report)?;
        let cc = self.stage_changes(changes, now, &mut wb, &mut counters.next_seq)?;
        report.flag_changes = cc.flag_changes;
        report.deleted_at_source = cc.deleted_at_source;
        wb.push(Change::Counters(counters.clone()));
        let t_stage = t0.elapsed();

        // 6. Commit.
        if counters.next_seq != before_seq {
            layout::write_seq_hint(&self.dir, counters.next_seq)?;
        }
        self.commit(wb)?;
        debug!(
            messages = batch.len(),
            new = report.new_messages,
            split_ms = t_split.as_millis() as u64,
            dict_ms = (t_dict - t_split).as_millis() as u64,
            pack_ms = (t_compress - t_dict).as_millis() as u64,
            stage_ms = (t_stage - t_compress).as_millis() as u64,
            write_ms = (t0.elapsed() - t_stage).as_millis() as u64,
            "batch stored"
        );
        // The dictionary first: a reader that sees the new counters (and so the new
        // ingest-log entries) must be able to decode what they point to.
        if let Some(d) = new_dict {
            let mut dicts = self.dicts.write().unwrap_or_else(|p| p.into_inner());
            dicts.by_id.insert(d.id, d.clone());
            dicts.current = Some(d);
        }
        self.packs_committed(written);
        *self.counters.write().unwrap_or_else(|p| p.into_inner()) = counters;
        Ok(report)
    }

    /// The batch's messages the archive does not hold, each once.
    fn new_messages<'b>(&self, batch: &'b [RawMessage]) -> Result<Vec<&'b RawMessage>> {
        let mut seen: HashSet<MessageId> = HashSet::new();
        let unique: Vec<&RawMessage> = batch.iter().filter(|m| seen.insert(m.id)).collect();
        let ids: Vec<MessageId> = unique.iter().map(|m| m.id).collect();
        let present = self.meta.have(PayloadKind::Skeleton, &ids)?;
        Ok(unique
            .into_iter()
            .zip(present)
            .filter(|(_, p)| !*p)
            .map(|(m, _)| m)
            .collect())
    }

    /// Trains the archive's first dictionary when this batch has enough new messages;
    /// stages it in `wb`.
    fn train_dictionary(
        &self,
        prepared: &[Prepared],
        wb: &mut MetaBatch,
        counters: &mut Counters,
    ) -> Option<Arc<Dict>> {
        let has_one = self.dicts.read().unwrap_or_else(|p| p.into_inner()).current.is_some();
        if has_one || prepared.len() < blob::DICT_MIN_SAMPLES {
            return None;
        }
        let samples: Vec<&[u8]> = prepared.iter().map(|p| p.skeleton.as_slice()).collect();
        let bytes = blob::train(&samples)?;
        let id = counters.dictionaries as u32 + 1;
        debug!(
            dict = id,
            bytes = bytes.len(),
            samples = samples.len(),
            "trained zstd dictionary"
        );
        let dict = Arc::new(Dict::new(id, &bytes));
        // Trained on message content: sealed in an encrypted archive. Should that
        // fail (the random source), the batch goes on without a dictionary.
        let stored = match self.seal_dictionary(id, bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("not keeping a dictionary: {e}");
                return None;
            }
        };
        wb.push(Change::Dictionary { id, bytes: stored });
        counters.dictionaries += 1;
        Some(dict)
    }

    /// The parts of `prepared` not stored yet, and what dedup saved on the others.
    fn new_parts<'a>(&self, prepared: &'a [Prepared]) -> Result<NewParts<'a>> {
        let mut seen: HashSet<PartId> = HashSet::new();
        let mut candidates: Vec<(PartId, &[u8])> = Vec::new();
        for p in prepared {
            for (r, payload) in &p.parts {
                if seen.insert(r.part) {
                    candidates.push((r.part, payload));
                }
            }
        }
        let ids: Vec<PartId> = candidates.iter().map(|(id, _)| *id).collect();
        let present = self.meta.have(PayloadKind::Part, &ids)?;
        let fresh: HashMap<PartId, &[u8]> = candidates
            .into_iter()
            .zip(present)
            .filter(|(_, present)| !present)
            .map(|(c, _)| c)
            .collect();
        let (mut deduplicated, mut dedup_bytes) = (0, 0);
        let mut first_use: HashSet<PartId> = HashSet::new();
        for r in prepared.iter().flat_map(|p| p.parts.iter().map(|(r, _)| r)) {
            if !(fresh.contains_key(&r.part) && first_use.insert(r.part)) {
                deduplicated += 1;
                dedup_bytes += r.splice.len;
            }
        }
        Ok(NewParts {
            fresh,
            deduplicated,
            dedup_bytes,
        })
    }

    /// Stages the records of new parts and messages and their ingest-log entries;
    /// returns the new message ids.
    fn stage_records(
        &self,
        prepared: &[Prepared],
        fresh: &HashMap<PartId, &[u8]>,
        now: i64,
        wb: &mut MetaBatch,
        counters: &mut Counters,
    ) -> HashSet<MessageId> {
        for (id, payload) in fresh {
            counters.unique_bytes += payload.len() as u64;
            let rec = PartRecord {
                payload_len: payload.len() as u64,
                first_seen: now,
            };
            wb.push(Change::Part { id: *id, record: rec });
        }
        counters.parts += fresh.len() as u64;
        let mut new_ids: HashSet<MessageId> = HashSet::new();
        for p in prepared {
            counters.unique_bytes += p.skeleton.len() as u64;
            counters.raw_bytes += p.raw_len;
            let seq = counters.next_seq;
            counters.next_seq += 1;
            let rec = MessageRecord {
                raw_len: p.raw_len,
                seq,
                first_seen: now,
                parts: p.parts.iter().map(|(r, _)| r.clone()).collect(),
            };
            wb.push(Change::Message { id: p.id, record: rec });
            let entry = IngestEntry {
                kind: IngestKind::Message,
                message: p.id,
            };
            wb.push(Change::LogEntry { seq, entry });
            new_ids.insert(p.id);
        }
        new_ids
    }

    /// Every placement the batch and the source's changes record.
    fn sightings<'b>(&self, batch: &'b [RawMessage], changes: &'b SourceChanges) -> Result<Vec<Sighting<'b>>> {
        let mut sightings: Vec<Sighting<'b>> = batch
            .iter()
            .flat_map(|m| {
                m.placements.iter().map(|spec| Sighting {
                    id: m.id,
                    raw_len: m.raw.len() as u64,
                    spec,
                })
            })
            .collect();
        for k in &changes.known {
            let rec = self.message_record(&k.message)?.ok_or_else(|| ArchiveError::Corrupt {
                id: k.message.to_hex(),
                what: "a source mapped a message id the archive does not hold".into(),
            })?;
            check_name("account", &k.spec.account)?;
            check_name("mailbox", &k.spec.mailbox)?;
            sightings.push(Sighting {
                id: k.message,
                raw_len: rec.raw_len,
                spec: &k.spec,
            });
        }
        Ok(sightings)
    }

    /// Adds new placements and updates changed ones (flags, internal date) in `wb`.
    fn stage_placements(
        &self,
        sightings: &[Sighting<'_>],
        new_ids: &HashSet<MessageId>,
        now: i64,
        wb: &mut MetaBatch,
        counters: &mut Counters,
        report: &mut IngestReport,
    ) -> Result<()> {
        // Later entries for the same key in one batch win.
        let mut staged: HashMap<PlacementKey, usize> = HashMap::new();
        let mut order: Vec<PlacementKey> = Vec::new();
        for (i, s) in sightings.iter().enumerate() {
            let p = s.spec;
            let key = PlacementKey::new(&p.account, &p.mailbox, &p.source, &s.id);
            if staged.insert(key.clone(), i).is_none() {
                order.push(key);
            }
        }
        let existing = self.meta.placements_get(&order)?;
        let mut logged: HashSet<MessageId> = HashSet::new();
        for (key, old) in order.into_iter().zip(existing) {
            let m = &sightings[staged[&key]];
            let spec = m.spec;
            let rec = match &old {
                None => PlacementRecord {
                    message: m.id,
                    flags: spec.flags.clone(),
                    internal_date: spec.internal_date,
                    first_seen: now,
                    last_seen: now,
                    deleted_at: None,
                },
                Some(o) => PlacementRecord {
                    message: m.id,
                    flags: spec.flags.clone(),
                    internal_date: spec.internal_date.or(o.internal_date),
                    first_seen: o.first_seen,
                    last_seen: now,
                    deleted_at: None,
                },
            };
            let mut replaces = None;
            let changed = match &old {
                None => {
                    report.new_placements += 1;
                    counters.placements += 1;
                    counters.placement_raw_bytes += m.raw_len;
                    true
                }
                Some(o) if o.message != m.id => {
                    // A source reused an identity for other bytes (should not happen
                    // within one UIDVALIDITY): the newer bytes win; the old message
                    // stays archived, reachable from its other placements.
                    warn!(old = %o.message, new = %m.id, "placement identity reused for different bytes");
                    replaces = Some(o.message);
                    report.updated_placements += 1;
                    true
                }
                Some(o) => {
                    let changed =
                        o.flags != rec.flags || o.internal_date != rec.internal_date || o.deleted_at.is_some();
                    if changed {
                        report.updated_placements += 1;
                    }
                    changed
                }
            };
            // last_seen moves on every sighting; unchanged placements are rewritten
            // only when something users see changed, to keep re-imports cheap.
            if changed {
                wb.push(Change::Placement {
                    key,
                    record: rec,
                    replaces,
                });
                if !new_ids.contains(&m.id) && logged.insert(m.id) {
                    let seq = counters.next_seq;
                    counters.next_seq += 1;
                    let entry = IngestEntry {
                        kind: IngestKind::Placement,
                        message: m.id,
                    };
                    wb.push(Change::LogEntry { seq, entry });
                }
            }
        }
        Ok(())
    }
}
