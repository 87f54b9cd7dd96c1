//! The archive's records over a sorted key-value engine: [`KvMeta`] implements
//! [`MetaStore`] once — keys as [`crate::keys`] lays them out, values as
//! [`crate::records`] encodes them (`schemas/store-v5.toml`) — and each engine
//! ([`KvEngine`]) only stores ordered bytes in named tables: RocksDB's column
//! families embedded (`rocks.rs`), or PostgreSQL tables of `(k bytea, v bytea)`
//! (`postgres.rs`), the shape Stalwart's SQL stores use for the same reason — one
//! encoding of every record, byte-identical across backends, and ordered scans
//! that mean the same on both (`bytea` compares as RocksDB's bytewise comparator).

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use super::{
    Change, MetaBatch, MetaError, MetaStore, PlacementEntry, PlacementKey, PlacementScope, Result, SourceKind, Visit,
};
use crate::codec::DecodeError;
use crate::evidence::{CheckpointRecord, LogRecord, RuleKind, RuleRecord};
use crate::keys;
use crate::model::{Hash32, MessageId, SourceKey};
use crate::records::{
    BlobLocation, Counters, CursorRecord, IngestEntry, LedgerRecord, MessageRecord, PackRecord, PayloadKind,
    PlacementRecord, TooLargeRecord,
};
use crate::tags::Tag;

/// One write of a commit: `value` `None` deletes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOp {
    pub table: &'static str,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// The writes of one commit, in the order the changes gave them (a later write
/// of the same key wins).
#[derive(Clone, Debug, Default)]
pub struct KvOps(pub Vec<KvOp>);

impl KvOps {
    fn put(&mut self, table: &'static str, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.0.push(KvOp {
            table,
            key: key.as_ref().to_vec(),
            value: Some(value.as_ref().to_vec()),
        });
    }

    fn delete(&mut self, table: &'static str, key: impl AsRef<[u8]>) {
        self.0.push(KvOp {
            table,
            key: key.as_ref().to_vec(),
            value: None,
        });
    }
}

/// A scan's visitor of raw entries: says whether to go on.
pub type RawVisit<'v> = &'v mut dyn FnMut(&[u8], &[u8]) -> ControlFlow<()>;

/// Ordered bytes in named tables (the names of [`keys::ALL_CFS`], and the legacy
/// blob table). Keys compare bytewise.
pub trait KvEngine: Send + Sync {
    /// Names the store in messages (e.g. `metadata (RocksDB) at /srv/a/db`).
    fn describe(&self) -> String;
    /// Whether `table` exists (a store of an older format opened read-only may lack
    /// a later format's tables).
    fn has_table(&self, table: &str) -> bool;
    /// A missing table has nothing.
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn multi_get(&self, table: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Calls `visit` with each entry of `table` from `from` on while its key starts
    /// with `prefix`, until `visit` breaks. A missing table has nothing.
    fn scan(&self, table: &'static str, prefix: &[u8], from: &[u8], visit: RawVisit<'_>) -> Result<()>;
    /// The entry with the greatest key.
    fn last(&self, table: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>>;
    /// Applies `ops` atomically and durably.
    fn write(&self, ops: KvOps) -> Result<()>;
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn drop_table(&mut self, table: &'static str) -> Result<()>;
    /// See [`MetaStore::turn`].
    fn turn(&self) -> Result<Option<super::Turn<'_>>> {
        Ok(None)
    }
}

/// The archive's metadata over `E`.
pub struct KvMeta<E> {
    engine: E,
}

impl<E: KvEngine> KvMeta<E> {
    pub fn new(engine: E) -> Self {
        KvMeta { engine }
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// Decodes each entry of a scan with `decode` (`None`: not an entry of that
    /// kind, skipped), stopping after `limit` entries or at the first error.
    fn collect<T>(
        &self,
        table: &'static str,
        (prefix, from): (&[u8], &[u8]),
        limit: usize,
        mut decode: impl FnMut(&[u8], &[u8]) -> Option<Result<T>>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut failed = None;
        self.engine.scan(table, prefix, from, &mut |k, v| {
            match decode(k, v) {
                None => {}
                Some(Ok(t)) => out.push(t),
                Some(Err(e)) => failed = Some(e),
            }
            if failed.is_some() || out.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        failed.map_or(Ok(out), Err)
    }
}

fn decode_err(key: impl Into<String>) -> impl FnOnce(DecodeError) -> MetaError {
    let key = key.into();
    move |source| MetaError::Decode { key, source }
}

fn hash_key(table: &'static str, k: &[u8]) -> Result<Hash32> {
    <[u8; 32]>::try_from(k).map(Hash32).map_err(|_| MetaError::Corrupt {
        table,
        what: format!("a key of {} bytes", k.len()),
    })
}

/// A `blobs` or `pack_index` key: kind byte and hash.
fn kind_and_hash(table: &'static str, k: &[u8]) -> Result<(PayloadKind, Hash32)> {
    let parsed = k
        .split_first()
        .and_then(|(b, rest)| Some((PayloadKind::from_byte(*b)?, <[u8; 32]>::try_from(rest).ok()?)));
    parsed
        .map(|(kind, h)| (kind, Hash32(h)))
        .ok_or_else(|| MetaError::Corrupt {
            table,
            what: format!("a key of {} bytes", k.len()),
        })
}

fn be_u64(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

fn decode_log_record(k: &[u8], v: &[u8]) -> Result<(u64, LogRecord)> {
    let seq = be_u64(k).ok_or_else(|| MetaError::Corrupt {
        table: keys::CF_CHANGE_LOG,
        what: format!("a key of {} bytes", k.len()),
    })?;
    let record = LogRecord::decode(v).map_err(decode_err(format!("change_log/{seq}")))?;
    Ok((seq, record))
}

fn placement_key(k: &PlacementKey) -> Vec<u8> {
    let p = k.parts();
    keys::placement(&p.account, &p.mailbox, &p.source, k.message())
}

fn source_tag(kind: SourceKind) -> u8 {
    match kind {
        SourceKind::Local => keys::SRC_LOCAL,
        SourceKind::Imap => keys::SRC_IMAP,
        SourceKind::Pop3 => keys::SRC_POP3,
    }
}

fn decode_placement(k: &[u8], v: &[u8]) -> Result<PlacementEntry> {
    let key = keys::parse_placement(k).ok_or_else(|| MetaError::Corrupt {
        table: keys::CF_PLACEMENTS,
        what: format!("unparseable placement key {:?}", String::from_utf8_lossy(k)),
    })?;
    let record = PlacementRecord::decode(v).map_err(decode_err(format!(
        "placement {}/{} {:?}",
        key.account, key.mailbox, key.source
    )))?;
    Ok(PlacementEntry { key, record })
}

/// Adds the key-value writes of one change to `o`, in order.
fn stage(o: &mut KvOps, change: Change) {
    match change {
        Change::FormatVersion(v) => o.put(keys::CF_META, keys::META_FORMAT_VERSION, v.to_be_bytes()),
        Change::Counters(c) => o.put(keys::CF_META, keys::META_COUNTERS, c.encode()),
        Change::Dictionary { id, bytes } => o.put(keys::CF_DICTIONARIES, keys::dictionary(id), bytes),
        Change::NextPack(n) => o.put(keys::CF_META, keys::META_NEXT_PACK, n.to_be_bytes()),
        Change::Pack { number, record } => o.put(keys::CF_PACKS, keys::pack(number), record.encode()),
        Change::DropPack(number) => o.delete(keys::CF_PACKS, keys::pack(number)),
        Change::Location { kind, id, location } => o.put(keys::CF_PACK_INDEX, keys::blob(kind, &id), location.encode()),
        Change::DropLocation { kind, id } => o.delete(keys::CF_PACK_INDEX, keys::blob(kind, &id)),
        Change::Message { id, record } => o.put(keys::CF_MESSAGES, keys::by_hash(&id), record.encode()),
        Change::Part { id, record } => o.put(keys::CF_PARTS, keys::by_hash(&id), record.encode()),
        Change::Placement { key, record, replaces } => {
            let k = placement_key(&key);
            if let Some(old) = replaces {
                o.delete(keys::CF_PLACEMENTS_BY_MESSAGE, keys::placement_by_message(&old, &k));
            }
            o.put(
                keys::CF_PLACEMENTS_BY_MESSAGE,
                keys::placement_by_message(&record.message, &k),
                b"",
            );
            o.put(keys::CF_PLACEMENTS, k, record.encode());
        }
        Change::LogEntry { seq, entry } => o.put(keys::CF_INGEST_LOG, keys::ingest_seq(seq), entry.encode()),
        Change::Cursor {
            account,
            mailbox,
            cursor,
        } => o.put(keys::CF_CURSORS, keys::cursor(&account, &mailbox), cursor.encode()),
        Change::DropCursor { account, mailbox } => o.delete(keys::CF_CURSORS, keys::cursor(&account, &mailbox)),
        Change::GmailMessage {
            account,
            gm_msgid,
            message,
        } => o.put(keys::CF_CURSORS, keys::gmail_message(&account, gm_msgid), message.0),
        Change::TooLarge {
            account,
            mailbox,
            source,
            record,
        } => o.put(
            keys::CF_CURSORS,
            keys::too_large(&account, &mailbox, &source),
            record.encode(),
        ),
        Change::Ledger {
            target,
            mailbox,
            message,
            copy,
            record,
        } => o.put(
            keys::CF_REPLAY_LEDGER,
            keys::ledger(&target, &mailbox, &message, copy),
            record.encode(),
        ),
        Change::DropLegacyBlob { kind, id } => o.delete(keys::CF_BLOBS, keys::blob(kind, &id)),
        Change::DropMessage { id, .. } => o.delete(keys::CF_MESSAGES, keys::by_hash(&id)),
        Change::DropPart(id) => o.delete(keys::CF_PARTS, keys::by_hash(&id)),
        Change::DropPlacement { key, message } => {
            let k = placement_key(&key);
            o.delete(keys::CF_PLACEMENTS_BY_MESSAGE, keys::placement_by_message(&message, &k));
            o.delete(keys::CF_PLACEMENTS, k);
        }
        Change::Rule { kind, name, record } => o.put(keys::CF_RULES, keys::rule(kind, &name), record.encode()),
        Change::DropRule { kind, name } => o.delete(keys::CF_RULES, keys::rule(kind, &name)),
        Change::ChangeLog { seq, record } => o.put(keys::CF_CHANGE_LOG, keys::log_seq(seq), record.encode()),
        Change::Checkpoint(c) => o.put(keys::CF_CHECKPOINTS, keys::log_seq(c.count), c.encode()),
        Change::SigningKey(k) => o.put(keys::CF_META, keys::META_SIGNING_KEY, k),
        Change::Tags { message, tags, was } => {
            for gone in was.difference(&tags) {
                o.delete(keys::CF_TAGS, keys::tagged(gone.as_str(), &message));
            }
            for new in tags.difference(&was) {
                o.put(keys::CF_TAGS, keys::tagged(new.as_str(), &message), b"");
            }
            if tags.is_empty() {
                o.delete(keys::CF_TAGS, keys::tags_of(&message));
            } else {
                o.put(keys::CF_TAGS, keys::tags_of(&message), crate::tags::encode(&tags));
            }
        }
    }
}

impl<E: KvEngine> MetaStore for KvMeta<E> {
    fn describe(&self) -> String {
        self.engine.describe()
    }

    fn format_version(&self) -> Result<Option<u32>> {
        let Some(v) = self.engine.get(keys::CF_META, keys::META_FORMAT_VERSION)? else {
            return Ok(None);
        };
        <[u8; 4]>::try_from(v.as_slice())
            .map(|b| Some(u32::from_be_bytes(b)))
            .map_err(|_| MetaError::Corrupt {
                table: keys::CF_META,
                what: "format_version is not a 4-byte integer".into(),
            })
    }

    fn counters(&self) -> Result<Option<Counters>> {
        self.engine
            .get(keys::CF_META, keys::META_COUNTERS)?
            .map(|v| Counters::decode(&v).map_err(decode_err("meta/counters")))
            .transpose()
    }

    fn dictionaries(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        self.collect(keys::CF_DICTIONARIES, (&[], &[]), usize::MAX, |k, v| {
            let id = <[u8; 4]>::try_from(k).map_err(|_| MetaError::Corrupt {
                table: keys::CF_DICTIONARIES,
                what: format!("a dictionary key of {} bytes", k.len()),
            });
            Some(id.map(|id| (u32::from_be_bytes(id), v.to_vec())))
        })
    }

    fn next_pack(&self) -> Result<Option<u64>> {
        Ok(self
            .engine
            .get(keys::CF_META, keys::META_NEXT_PACK)?
            .and_then(|v| be_u64(&v)))
    }

    fn packs(&self) -> Result<Vec<(u64, PackRecord)>> {
        self.collect(keys::CF_PACKS, (&[], &[]), usize::MAX, |k, v| {
            let number = be_u64(k).ok_or_else(|| MetaError::Corrupt {
                table: keys::CF_PACKS,
                what: format!("a pack key of {} bytes", k.len()),
            });
            Some(number.and_then(|n| Ok((n, PackRecord::decode(v).map_err(decode_err(format!("packs/{n}")))?))))
        })
    }

    fn pack(&self, number: u64) -> Result<Option<PackRecord>> {
        self.engine
            .get(keys::CF_PACKS, &keys::pack(number))?
            .map(|v| PackRecord::decode(&v).map_err(decode_err(format!("packs/{number}"))))
            .transpose()
    }

    fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>> {
        self.engine
            .get(keys::CF_MESSAGES, &id.0)?
            .map(|v| MessageRecord::decode(&v).map_err(decode_err(format!("messages/{id}"))))
            .transpose()
    }

    fn have(&self, kind: PayloadKind, ids: &[Hash32]) -> Result<Vec<bool>> {
        let ks: Vec<Vec<u8>> = ids.iter().map(|h| h.0.to_vec()).collect();
        Ok(self
            .engine
            .multi_get(record_table(kind), &ks)?
            .into_iter()
            .map(|v| v.is_some())
            .collect())
    }

    fn scan_ids(&self, kind: PayloadKind, from: &[u8], visit: Visit<'_, Hash32>) -> Result<()> {
        let table = record_table(kind);
        self.engine
            .scan(table, &[], from, &mut |k, _| visit(hash_key(table, k)))
    }

    fn location(&self, kind: PayloadKind, id: &Hash32) -> Result<Option<BlobLocation>> {
        let Some(v) = self.engine.get(keys::CF_PACK_INDEX, &keys::blob(kind, id))? else {
            return Ok(None);
        };
        BlobLocation::decode(&v)
            .map(Some)
            .map_err(decode_err(format!("pack_index/{} {id}", kind.name())))
    }

    fn scan_locations(&self, visit: Visit<'_, (PayloadKind, Hash32, BlobLocation)>) -> Result<()> {
        self.engine.scan(keys::CF_PACK_INDEX, &[], &[], &mut |k, v| {
            let item = kind_and_hash(keys::CF_PACK_INDEX, k).and_then(|(kind, id)| {
                let loc = BlobLocation::decode(v).map_err(decode_err(format!("pack_index/{} {id}", kind.name())))?;
                Ok((kind, id, loc))
            });
            visit(item)
        })
    }

    fn placements_get(&self, keys: &[PlacementKey]) -> Result<Vec<Option<PlacementRecord>>> {
        let ks: Vec<Vec<u8>> = keys.iter().map(placement_key).collect();
        self.engine
            .multi_get(keys::CF_PLACEMENTS, &ks)?
            .into_iter()
            .zip(keys)
            .map(|(v, k)| {
                v.map(|v| {
                    let p = k.parts();
                    PlacementRecord::decode(&v).map_err(decode_err(format!(
                        "placement {}/{} {:?}",
                        p.account, p.mailbox, p.source
                    )))
                })
                .transpose()
            })
            .collect()
    }

    fn scan_placements(&self, scope: PlacementScope<'_>, visit: Visit<'_, PlacementEntry>) -> Result<()> {
        let mut prefix = match scope.account {
            Some(a) => keys::placement_prefix(a, scope.mailbox),
            None => Vec::new(),
        };
        if let (Some(_), Some(kind)) = (scope.mailbox, scope.source) {
            prefix.push(source_tag(kind));
        }
        self.engine.scan(keys::CF_PLACEMENTS, &prefix, &prefix, &mut |k, v| {
            visit(decode_placement(k, v))
        })
    }

    fn placements_of(&self, id: &MessageId) -> Result<Vec<PlacementEntry>> {
        let mut placement_keys = Vec::new();
        self.engine
            .scan(keys::CF_PLACEMENTS_BY_MESSAGE, &id.0, &id.0, &mut |k, _| {
                placement_keys.push(k[32..].to_vec());
                ControlFlow::Continue(())
            })?;
        let values = self.engine.multi_get(keys::CF_PLACEMENTS, &placement_keys)?;
        // A reverse entry whose placement is gone or unreadable is skipped: the
        // placement itself is what counts (and `verify` checks those).
        Ok(placement_keys
            .iter()
            .zip(values)
            .filter_map(|(k, v)| decode_placement(k, &v?).ok())
            .collect())
    }

    fn cursor(&self, account: &str, mailbox: &str) -> Result<Option<CursorRecord>> {
        self.engine
            .get(keys::CF_CURSORS, &keys::cursor(account, mailbox))?
            .map(|v| CursorRecord::decode(&v).map_err(decode_err(format!("cursor of {account}/{mailbox}"))))
            .transpose()
    }

    fn cursors(&self, account: &str) -> Result<Vec<(String, CursorRecord)>> {
        let prefix = keys::placement_prefix(account, None);
        self.collect(keys::CF_CURSORS, (&prefix, &prefix), usize::MAX, |k, v| {
            // Folder cursors are `mailbox NUL`; other entries (Gmail ids) start with NUL.
            let mailbox = k[prefix.len()..]
                .strip_suffix(&[0u8])
                .filter(|m| !m.is_empty() && !m.contains(&0))?;
            let mailbox = String::from_utf8_lossy(mailbox).into_owned();
            let what = format!("cursor of {account}/{mailbox}");
            Some(CursorRecord::decode(v).map(|c| (mailbox, c)).map_err(decode_err(what)))
        })
    }

    fn too_large(&self, account: &str, mailbox: &str) -> Result<Vec<(SourceKey, TooLargeRecord)>> {
        let prefix = keys::too_large_prefix(account, mailbox);
        self.collect(keys::CF_CURSORS, (&prefix, &prefix), usize::MAX, |k, v| {
            let source = keys::parse_too_large_source(&k[prefix.len()..])?;
            let what = format!("too-large record of {account}/{mailbox}");
            Some(TooLargeRecord::decode(v).map(|r| (source, r)).map_err(decode_err(what)))
        })
    }

    fn gmail_messages(&self, account: &str, gm_msgids: &[u64]) -> Result<Vec<Option<MessageId>>> {
        let ks: Vec<Vec<u8>> = gm_msgids.iter().map(|g| keys::gmail_message(account, *g)).collect();
        Ok(self
            .engine
            .multi_get(keys::CF_CURSORS, &ks)?
            .into_iter()
            .map(|v| v.and_then(|v| <[u8; 32]>::try_from(&v[..]).ok()).map(Hash32))
            .collect())
    }

    fn ingest_log(&self, from: u64, limit: usize) -> Result<Vec<(u64, IngestEntry)>> {
        self.collect(keys::CF_INGEST_LOG, (&[], &keys::ingest_seq(from)), limit, |k, v| {
            let seq = be_u64(k).ok_or_else(|| MetaError::Corrupt {
                table: keys::CF_INGEST_LOG,
                what: format!("a key of {} bytes", k.len()),
            });
            Some(seq.and_then(|seq| {
                Ok((
                    seq,
                    IngestEntry::decode(v).map_err(decode_err(format!("ingest_log/{seq}")))?,
                ))
            }))
        })
    }

    fn rules(&self, kind: RuleKind) -> Result<Vec<(String, RuleRecord)>> {
        let prefix = [kind.byte()];
        self.collect(keys::CF_RULES, (&prefix, &prefix), usize::MAX, |k, v| {
            let name = String::from_utf8_lossy(&k[1..]).into_owned();
            Some(
                RuleRecord::decode(v)
                    .map(|r| (name.clone(), r))
                    .map_err(decode_err(format!("{} {name:?}", kind.name()))),
            )
        })
    }

    fn change_log(&self, from: u64, limit: usize) -> Result<Vec<(u64, LogRecord)>> {
        self.collect(keys::CF_CHANGE_LOG, (&[], &keys::log_seq(from)), limit, |k, v| {
            Some(decode_log_record(k, v))
        })
    }

    fn last_change(&self) -> Result<Option<(u64, LogRecord)>> {
        match self.engine.last(keys::CF_CHANGE_LOG)? {
            None => Ok(None),
            Some((k, v)) => decode_log_record(&k, &v).map(Some),
        }
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        self.collect(keys::CF_CHECKPOINTS, (&[], &[]), usize::MAX, |k, v| {
            let count = be_u64(k).unwrap_or(u64::MAX);
            Some(CheckpointRecord::decode(v).map_err(decode_err(format!("checkpoints/{count}"))))
        })
    }

    fn signing_key(&self) -> Result<Option<[u8; 32]>> {
        let Some(v) = self.engine.get(keys::CF_META, keys::META_SIGNING_KEY)? else {
            return Ok(None);
        };
        <[u8; 32]>::try_from(v.as_slice())
            .map(Some)
            .map_err(|_| MetaError::Corrupt {
                table: keys::CF_META,
                what: format!("signing_public_key has {} bytes, not 32", v.len()),
            })
    }

    fn tags_of(&self, ids: &[MessageId]) -> Result<Vec<BTreeSet<Tag>>> {
        if !self.engine.has_table(keys::CF_TAGS) {
            return Ok(vec![BTreeSet::new(); ids.len()]);
        }
        let ks: Vec<Vec<u8>> = ids.iter().map(keys::tags_of).collect();
        self.engine
            .multi_get(keys::CF_TAGS, &ks)?
            .into_iter()
            .zip(ids)
            .map(|(v, id)| match v {
                Some(v) => crate::tags::decode(&v).map_err(decode_err(format!("tags of {id}"))),
                None => Ok(BTreeSet::new()),
            })
            .collect()
    }

    fn tagged(&self, tag: &Tag) -> Result<Vec<MessageId>> {
        let prefix = keys::tagged_prefix(tag.as_str());
        self.collect(keys::CF_TAGS, (&prefix, &prefix), usize::MAX, |k, _| {
            Some(hash_key(keys::CF_TAGS, &k[prefix.len()..]))
        })
    }

    fn tag_counts(&self) -> Result<Vec<(Tag, u64)>> {
        let mut counts: Vec<(Tag, u64)> = Vec::new();
        let mut failed = None;
        self.engine.scan(keys::CF_TAGS, b"t", b"t", &mut |k, _| {
            let name = k.get(1..k.len().saturating_sub(33)).unwrap_or_default();
            match std::str::from_utf8(name).ok().and_then(|n| Tag::parse(n).ok()) {
                Some(t) => match counts.last_mut() {
                    Some((last, n)) if *last == t => *n += 1,
                    _ => counts.push((t, 1)),
                },
                None => {
                    failed = Some(MetaError::Corrupt {
                        table: keys::CF_TAGS,
                        what: format!("a by-tag key of {} bytes names no tag", k.len()),
                    });
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })?;
        failed.map_or(Ok(counts), Err)
    }

    fn ledger(&self, target: &str, mailbox: &str) -> Result<HashMap<(MessageId, u32), LedgerRecord>> {
        let prefix = keys::ledger_prefix(target, mailbox);
        let what = || format!("replay_ledger/{target}/{mailbox}");
        let entries = self.collect(keys::CF_REPLAY_LEDGER, (&prefix, &prefix), usize::MAX, |k, v| {
            let key = keys::parse_ledger(&prefix, k).ok_or_else(|| MetaError::Corrupt {
                table: keys::CF_REPLAY_LEDGER,
                what: format!("{}: a key of {} bytes", what(), k.len()),
            });
            Some(key.and_then(|key| Ok((key, LedgerRecord::decode(v).map_err(decode_err(what()))?))))
        })?;
        Ok(entries.into_iter().collect())
    }

    fn legacy_blob(&self, kind: PayloadKind, id: &Hash32) -> Result<Option<Vec<u8>>> {
        self.engine.get(keys::CF_BLOBS, &keys::blob(kind, id))
    }

    fn scan_legacy_blobs(
        &self,
        after: Option<(PayloadKind, Hash32)>,
        visit: Visit<'_, (PayloadKind, Hash32, Vec<u8>)>,
    ) -> Result<bool> {
        if !self.engine.has_table(keys::CF_BLOBS) {
            return Ok(false);
        }
        let from = match after {
            Some((kind, id)) => {
                let mut k = keys::blob(kind, &id);
                k.push(0);
                k
            }
            None => Vec::new(),
        };
        self.engine.scan(keys::CF_BLOBS, &[], &from, &mut |k, v| {
            visit(kind_and_hash(keys::CF_BLOBS, k).map(|(kind, id)| (kind, id, v.to_vec())))
        })?;
        Ok(true)
    }

    fn drop_legacy_blobs(&mut self) -> Result<()> {
        if !self.engine.has_table(keys::CF_BLOBS) {
            return Ok(());
        }
        self.engine.drop_table(keys::CF_BLOBS)
    }

    fn commit(&self, batch: MetaBatch) -> Result<()> {
        let mut ops = KvOps::default();
        for change in batch.changes {
            stage(&mut ops, change);
        }
        self.engine.write(ops)
    }

    fn turn(&self) -> Result<Option<super::Turn<'_>>> {
        self.engine.turn()
    }

    fn flush(&self) -> Result<()> {
        self.engine.flush()
    }
}

/// The table of records of `kind`'s payload owners.
fn record_table(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::Skeleton => keys::CF_MESSAGES,
        PayloadKind::Part => keys::CF_PARTS,
    }
}
