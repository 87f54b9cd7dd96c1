//! The archive's side of packs: writing a pack and staging its index entries in the
//! batch that references it, reading a payload through the frame cache, and the
//! format-2 upgrade that moves blobs out of the metadata into packs.
//!
//! Order of durability, always: the pack is durable in the blob store, then the
//! metadata batch that points to it commits. A crash in between leaves an orphan
//! pack (nothing references it), which `compact` removes; never a reference to a
//! pack that is not there.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use std::ops::ControlFlow;

use super::blob;
use super::pack::{self, BuiltPack, FrameDict, PackItem};
use super::{Archive, ArchiveError, Result};
use crate::metastore::{Change, MetaBatch};
use crate::model::Hash32;
use crate::records::{BlobHeader, BlobLocation, Codec, PackRecord, PayloadKind};

/// Decoded frames kept for reuse: reading the messages of one frame decodes it once.
pub struct FrameCache {
    inner: Mutex<CacheInner>,
    capacity: usize,
}

#[derive(Default)]
struct CacheInner {
    frames: HashMap<(u64, u64), Arc<Vec<u8>>>,
    order: VecDeque<(u64, u64)>,
    bytes: usize,
}

impl FrameCache {
    pub fn new(capacity: usize) -> FrameCache {
        FrameCache {
            inner: Mutex::new(CacheInner::default()),
            capacity,
        }
    }

    fn get(&self, key: (u64, u64)) -> Option<Arc<Vec<u8>>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .frames
            .get(&key)
            .cloned()
    }

    /// Keeps `frame` unless it is larger than an eighth of the cache; drops the oldest
    /// frames to stay within the capacity.
    fn put(&self, key: (u64, u64), frame: Arc<Vec<u8>>) {
        if frame.len() > self.capacity / 8 {
            return;
        }
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if c.frames.contains_key(&key) {
            return;
        }
        c.bytes += frame.len();
        c.frames.insert(key, frame);
        c.order.push_back(key);
        while c.bytes > self.capacity {
            let Some(old) = c.order.pop_front() else { break };
            if let Some(f) = c.frames.remove(&old) {
                c.bytes -= f.len();
            }
        }
    }

    pub fn clear(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = CacheInner::default();
    }
}

/// Bytes of decoded frames an open archive keeps.
pub const FRAME_CACHE_BYTES: usize = 64 << 20;
/// From a remote store, reads that follow one another through a pack fetch ahead,
/// doubling from this...
pub const READ_AHEAD_MIN: u64 = 256 << 10;
/// ...up to this much of the pack at once (a random read fetches its frame only)...
pub const READ_AHEAD_BYTES: u64 = 4 << 20;
/// ...and this many bytes of such fetched ranges are kept.
pub const RANGE_CACHE_BYTES: usize = 64 << 20;

/// Bytes of a pack fetched from a remote store: pack number, offset, bytes.
type FetchedRange = (u64, u64, Arc<Vec<u8>>);

/// Ranges of packs fetched from a remote store, newest last (bounded in bytes), and
/// the reads that follow one another (a few at once: verify reads on two threads).
#[derive(Default)]
pub struct RangeCache {
    ranges: Mutex<VecDeque<FetchedRange>>,
    /// (pack, where a fetch started and ended, its read-ahead), newest last.
    streams: Mutex<VecDeque<(u64, u64, u64, u64)>>,
}

/// Sequential streams remembered.
const STREAMS: usize = 8;

impl RangeCache {
    /// How far past a frame at `start` of `pack` to fetch: nothing for a random
    /// read; doubling for one that starts within (or right at the end of) an
    /// earlier fetch, which a reader going through the pack does.
    fn read_ahead(&self, pack: u64, start: u64) -> u64 {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        match streams
            .iter()
            .rev()
            .find(|(p, from, to, _)| *p == pack && (*from..=*to).contains(&start))
        {
            Some((_, _, _, ahead)) => (ahead * 2).clamp(READ_AHEAD_MIN, READ_AHEAD_BYTES),
            None => 0,
        }
    }

    /// Remembers a fetch of `pack`'s bytes `start..end` that read `ahead` ahead;
    /// it continues the stream it followed.
    fn fetched(&self, pack: u64, start: u64, end: u64, ahead: u64) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.retain(|(p, from, to, _)| !(*p == pack && (*from..=*to).contains(&start)));
        streams.push_back((pack, start, end, ahead));
        while streams.len() > STREAMS {
            streams.pop_front();
        }
    }

    /// Bytes `start..end` of pack `pack`, if a kept range covers them.
    fn get(&self, pack: u64, start: u64, end: u64) -> Option<Vec<u8>> {
        let ranges = self.ranges.lock().unwrap_or_else(|p| p.into_inner());
        ranges.iter().rev().find_map(|(p, at, bytes)| {
            (*p == pack && *at <= start && end <= at + bytes.len() as u64)
                .then(|| bytes[(start - at) as usize..(end - at) as usize].to_vec())
        })
    }

    fn put(&self, pack: u64, start: u64, bytes: Arc<Vec<u8>>) {
        let mut ranges = self.ranges.lock().unwrap_or_else(|p| p.into_inner());
        ranges.push_back((pack, start, bytes));
        let mut total: usize = ranges.iter().map(|r| r.2.len()).sum();
        while total > RANGE_CACHE_BYTES && ranges.len() > 1 {
            if let Some((_, _, old)) = ranges.pop_front() {
                total -= old.len();
            }
        }
    }

    pub fn clear(&self) {
        self.ranges.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A format-2 blob being moved into a pack: kind, id, payload, and whether it was
/// stored uncompressed.
type LegacyPayload = (PayloadKind, Hash32, Vec<u8>, bool);

/// A pack written to the store, its number, and the record its batch will commit.
pub(super) struct WrittenPack {
    pub number: u64,
    pub record: PackRecord,
}

impl Archive {
    /// The pack record of `number` (memory first, then the database).
    fn pack_record(&self, number: u64) -> std::result::Result<PackRecord, String> {
        if let Some(r) = self.packs.read().unwrap_or_else(|p| p.into_inner()).get(&number) {
            return Ok(r.clone());
        }
        self.meta
            .pack(number)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("pack number {number} is not recorded"))
    }

    /// The decoded frame a location points into.
    fn frame(&self, loc: &BlobLocation) -> std::result::Result<Arc<Vec<u8>>, String> {
        if let Some(f) = self.frames.get(loc.frame()) {
            return Ok(f);
        }
        let rec = self.pack_record(loc.pack)?;
        let name = crate::blobstore::PackName(rec.name);
        let stored = self.frame_bytes(loc, &rec).map_err(|e| e.to_string())?;
        let bytes = match &self.keys {
            None => stored,
            Some(k) => crate::crypt::open(
                &k.content,
                &super::sealing::frame_aad(loc.pack, loc.frame_offset),
                &stored,
                &format!("pack {name}, frame at {}", loc.frame_offset),
            )
            .map_err(|e| e.to_string())?,
        };
        let dicts = self.dicts.read().unwrap_or_else(|p| p.into_inner());
        let dict = match loc.codec {
            Codec::ZstdDict => Some(
                dicts
                    .by_id
                    .get(&loc.dict_id)
                    .ok_or_else(|| format!("the frame needs dictionary {} which the archive lacks", loc.dict_id))?
                    .as_ref(),
            ),
            _ => None,
        };
        let frame = Arc::new(
            pack::decode_frame(&bytes, loc.codec, dict)
                .map_err(|e| format!("pack {name}, frame at {}: {e}", loc.frame_offset))?,
        );
        self.frames.put(loc.frame(), frame.clone());
        Ok(frame)
    }

    /// The compressed bytes of `loc`'s frame: from a remote store through the range
    /// cache, fetching up to [`READ_AHEAD_BYTES`] of the pack from the frame on.
    fn frame_bytes(&self, loc: &BlobLocation, rec: &PackRecord) -> crate::blobstore::Result<Vec<u8>> {
        let name = crate::blobstore::PackName(rec.name);
        let (start, end) = (loc.frame_offset, loc.frame_offset + loc.frame_len as u64);
        if !self.blobs.is_remote() {
            return self.blobs.read_range(&name, start..end);
        }
        if let Some(b) = self.ranges.get(loc.pack, start, end) {
            return Ok(b);
        }
        let ahead = self.ranges.read_ahead(loc.pack, start);
        let until = (end + ahead).min(rec.size).max(end);
        let fetched = Arc::new(self.blobs.read_range(&name, start..until)?);
        let frame = fetched[..(end - start) as usize].to_vec();
        self.ranges.fetched(loc.pack, start, until, ahead);
        if until > end {
            self.ranges.put(loc.pack, start, fetched);
        }
        Ok(frame)
    }

    /// The payload at `loc`.
    pub(super) fn read_located(&self, loc: &BlobLocation) -> std::result::Result<Vec<u8>, String> {
        let frame = self.frame(loc)?;
        let end = loc.offset.checked_add(loc.len).filter(|e| *e <= frame.len() as u64);
        match end {
            Some(end) => Ok(frame[loc.offset as usize..end as usize].to_vec()),
            None => Err(format!(
                "the location {}+{} is outside its frame of {} bytes",
                loc.offset,
                loc.len,
                frame.len()
            )),
        }
    }

    /// Where a payload is, if it is in a pack.
    pub(super) fn location(&self, kind: PayloadKind, id: &Hash32) -> Result<Option<BlobLocation>> {
        Ok(self.meta.location(kind, id)?)
    }

    /// Builds a pack of `items`, stores it durably, and stages its record and index
    /// entries (and the next pack number) in `wb`. Call with the write lock held; the
    /// caller commits `wb`, then calls [`Archive::packs_committed`].
    pub(super) fn write_pack(
        &self,
        items: &[PackItem<'_>],
        dict: Option<FrameDict<'_>>,
        level: i32,
        frame_target: usize,
        now: i64,
        wb: &mut MetaBatch,
    ) -> Result<WrittenPack> {
        // The number first: an encrypted frame's seal is bound to it. Writers hold
        // the write lock, so it does not change before the batch commits.
        let number = *self.next_pack.lock().unwrap_or_else(|p| p.into_inner());
        let seal = self.keys.as_deref().map(|k| pack::Seal {
            key: &k.content,
            pack: number,
        });
        let built: BuiltPack =
            pack::build(items, dict, level, frame_target, seal).map_err(|e| ArchiveError::Corrupt {
                id: "a new pack".into(),
                what: format!("compression or sealing failed: {e}"),
            })?;
        let size = built.bytes.len() as u64;
        self.blobs.put(&built.name, built.bytes)?;
        let record = PackRecord {
            name: built.name.0,
            size,
            entries: built.entries.len() as u32,
            level: level as u8,
            created: now,
        };
        for e in built.entries {
            let mut location = e.location;
            location.pack = number;
            wb.push(Change::Location {
                kind: e.kind,
                id: e.id,
                location,
            });
        }
        wb.push(Change::Pack {
            number,
            record: record.clone(),
        });
        wb.push(Change::NextPack(number + 1));
        Ok(WrittenPack { number, record })
    }

    /// After the batch staging `written` committed: the packs are known in memory.
    pub(super) fn packs_committed(&self, written: impl IntoIterator<Item = WrittenPack>) {
        let mut packs = self.packs.write().unwrap_or_else(|p| p.into_inner());
        let mut next = self.next_pack.lock().unwrap_or_else(|p| p.into_inner());
        for w in written {
            *next = (*next).max(w.number + 1);
            packs.insert(w.number, w.record);
        }
    }

    /// Loads the pack records and the next pack number (format 3).
    pub(super) fn reload_packs(&self) -> Result<()> {
        let packs: HashMap<u64, PackRecord> = self.meta.packs()?.into_iter().collect();
        let next = self.meta.next_pack()?.unwrap_or(1);
        let next = next.max(packs.keys().max().map_or(1, |m| m + 1));
        *self.packs.write().unwrap_or_else(|p| p.into_inner()) = packs;
        *self.next_pack.lock().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// `ids` (of skeletons or parts, by `kind`) sorted by where their payloads are:
    /// pack, frame, offset; those not in a pack (an older format's blobs) last.
    pub fn in_storage_order(&self, kind: PayloadKind, ids: Vec<Hash32>) -> Result<Vec<Hash32>> {
        let mut located: Vec<((u64, u64, u64), Hash32)> = Vec::with_capacity(ids.len());
        let mut rest = Vec::new();
        for id in ids {
            match self.location(kind, &id)? {
                Some(l) => located.push(((l.pack, l.frame_offset, l.offset), id)),
                None => rest.push(id),
            }
        }
        located.sort_unstable_by_key(|(at, _)| *at);
        Ok(located.into_iter().map(|(_, id)| id).chain(rest).collect())
    }

    /// Every pack the archive references: number and record.
    pub fn pack_records(&self) -> Vec<(u64, PackRecord)> {
        let mut v: Vec<(u64, PackRecord)> = self
            .packs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, r)| (*n, r.clone()))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v
    }

    /// Where the metadata is (e.g. `metadata (PostgreSQL) at postgres://…`).
    pub fn meta_describe(&self) -> String {
        self.meta.describe()
    }

    /// Where the packs are kept, for messages.
    pub fn blob_store(&self) -> &dyn crate::blobstore::BlobStore {
        self.blobs.as_ref()
    }

    /// Format 2 → 3: moves the `blobs` column family's payloads into packs, about
    /// `pack_bytes` at a time, each pack durable before the batch that points to it
    /// and deletes the blobs commits; then drops the column family. Resumes where a
    /// killed upgrade stopped.
    pub(super) fn move_blobs_into_packs(&mut self, now: i64) -> Result<()> {
        let mut resume = None;
        let mut moved_packs = 0usize;
        loop {
            let (payloads, legacy_bytes) = match self.legacy_chunk(resume)? {
                Some(chunk) => chunk,
                None => return Ok(()),
            };
            let Some((kind, id, ..)) = payloads.last() else { break };
            resume = Some((*kind, *id));
            self.move_one_pack(&payloads, legacy_bytes, now)?;
            moved_packs += 1;
            if self.config.upgrade_stop_after_packs == Some(moved_packs) {
                return Err(ArchiveError::Corrupt {
                    id: "upgrade".into(),
                    what: format!("stopped after {moved_packs} packs, as the test asked"),
                });
            }
        }
        self.meta.drop_legacy_blobs()?;
        Ok(())
    }

    /// The next format-2 blobs after `resume`, decoded, about `upgrade_pack_bytes`
    /// of them, with their stored size; `None` when there is no blob table.
    fn legacy_chunk(&self, resume: Option<(PayloadKind, Hash32)>) -> Result<Option<(Vec<LegacyPayload>, u64)>> {
        let mut payloads: Vec<LegacyPayload> = Vec::new();
        let mut legacy_bytes = 0u64;
        let mut payload_bytes = 0usize;
        let mut failed = None;
        let dicts = self.dicts.read().unwrap_or_else(|p| p.into_inner());
        let limit = self.config.upgrade_pack_bytes;
        let exists = self.meta.scan_legacy_blobs(resume, &mut |item| {
            let moved = item.map_err(ArchiveError::from).and_then(|(kind, id, v)| {
                let payload = blob::decode(&v, &dicts).map_err(|e| ArchiveError::Corrupt {
                    id: id.to_hex(),
                    what: format!("moving {} blob into a pack: {e}", kind.name()),
                })?;
                let stored = BlobHeader::decode(&v).is_ok_and(|(h, _)| h.codec == Codec::Stored);
                legacy_bytes += v.len() as u64;
                Ok((kind, id, payload, stored))
            });
            match moved {
                Ok(p) => {
                    payload_bytes += p.2.len();
                    payloads.push(p);
                    if payload_bytes >= limit {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(exists.then_some((payloads, legacy_bytes)))
    }

    /// One step of the upgrade: a pack of `payloads`, and one batch that indexes it
    /// and deletes the blobs it holds.
    fn move_one_pack(&self, payloads: &[LegacyPayload], legacy_bytes: u64, now: i64) -> Result<()> {
        let items: Vec<PackItem<'_>> = payloads
            .iter()
            .map(|(kind, id, payload, stored)| PackItem {
                kind: *kind,
                id: *id,
                payload,
                try_stored: *stored,
                group: 0,
            })
            .collect();
        let current = self.dicts.read().unwrap_or_else(|p| p.into_inner()).current.clone();
        let dict = current.as_deref().map(|d| FrameDict {
            id: d.id,
            encoder: &d.encoder,
        });
        let mut wb = MetaBatch::default();
        let written = self.write_pack(&items, dict, blob::LEVEL, pack::INGEST_FRAME, now, &mut wb)?;
        for (kind, id, ..) in payloads {
            wb.push(Change::DropLegacyBlob { kind: *kind, id: *id });
        }
        let mut counters = self.counters();
        counters.stored_bytes = counters.stored_bytes.saturating_sub(legacy_bytes) + written.record.size;
        wb.push(Change::Counters(counters.clone()));
        self.commit(wb)?;
        self.packs_committed([written]);
        *self.counters.write().unwrap_or_else(|p| p.into_inner()) = counters;
        Ok(())
    }
}
