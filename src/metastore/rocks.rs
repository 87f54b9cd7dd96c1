//! [`MetaStore`] on RocksDB, embedded beside the packs: one column family per
//! record kind, keys as [`crate::keys`] lays them out, values as
//! [`crate::records`] encodes them (`schemas/store-v3.toml`). A commit is one
//! `WriteBatch` written with sync.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, DB};

use super::{
    Change, MetaBatch, MetaError, MetaStore, PlacementEntry, PlacementKey, PlacementScope, Result, SourceKind, Visit,
};
use crate::codec::DecodeError;
use crate::evidence::{CheckpointRecord, LogRecord, RuleKind, RuleRecord};
use crate::keys::{self, ALL_CFS};
use crate::model::{Hash32, MessageId, SourceKey};
use crate::records::{
    BlobLocation, Counters, CursorRecord, IngestEntry, LedgerRecord, MessageRecord, PackRecord, PayloadKind,
    PlacementRecord, TooLargeRecord,
};
use crate::tags::Tag;

/// How to open the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// No lock, nothing written (not even RocksDB's own LOG file): works beside a
    /// writer and for a user who may only read. Sees the data as it was at open.
    ReadOnly,
    /// The one writer: takes RocksDB's lock; creates the database and the current
    /// format's column families when missing.
    Write,
}

/// The metadata in a RocksDB database.
pub struct RocksMeta {
    path: PathBuf,
    db: DB,
    read_only: bool,
}

/// The column families to open: those that exist (refusing unknown ones, which a
/// newer format may have added), and for writing every one of the current format.
fn column_families(path: &Path, writable: bool) -> Result<Vec<String>> {
    let existing = DB::list_cf(&Options::default(), path).unwrap_or_default();
    if let Some(unknown) = existing.iter().find(|n| !keys::is_known_cf(n)) {
        return Err(MetaError::UnknownTable {
            store: store_name(path),
            name: unknown.clone(),
        });
    }
    let mut cfs: Vec<String> = existing.into_iter().filter(|n| n != "default").collect();
    if writable {
        for n in ALL_CFS {
            if !cfs.iter().any(|c| c == n) {
                cfs.push(n.to_string());
            }
        }
    }
    Ok(cfs)
}

fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    if name == keys::CF_BLOBS {
        // Blob values are zstd frames already: no second compression, and large
        // values go to RocksDB's blob files instead of being rewritten by compaction.
        o.set_compression_type(rocksdb::DBCompressionType::None);
        o.set_enable_blob_files(true);
        o.set_min_blob_size(2048);
        o.set_blob_file_size(256 << 20);
        o.set_blob_compression_type(rocksdb::DBCompressionType::None);
        o.set_write_buffer_size(64 << 20);
    } else {
        o.set_compression_type(rocksdb::DBCompressionType::Zstd);
    }
    o
}

fn store_name(path: &Path) -> String {
    format!("metadata (RocksDB) at {}", path.display())
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

impl RocksMeta {
    /// Opens the database at `path` (for writing, creating it when missing).
    pub fn open(path: &Path, mode: OpenMode) -> Result<RocksMeta> {
        let db = match mode {
            OpenMode::ReadOnly => Self::open_read_only(path)?,
            OpenMode::Write => Self::open_writable(path)?,
        };
        Ok(RocksMeta {
            path: path.to_path_buf(),
            db,
            read_only: mode == OpenMode::ReadOnly,
        })
    }

    fn open_read_only(path: &Path) -> Result<DB> {
        let cfs = column_families(path, false)?;
        // RocksDB's messages go to our log instead of its LOG file.
        let mut opts = Options::default();
        opts.set_info_logger(rocksdb::InfoLogger::new_callback_logger(
            rocksdb::LogLevel::Error,
            |level, text| {
                // The "header" lines (version, options) come whatever the level.
                if matches!(level, rocksdb::LogLevel::Error | rocksdb::LogLevel::Fatal) {
                    tracing::warn!(target: "mailvault::archive", "RocksDB: {}", text.trim_end())
                }
            },
        ));
        DB::open_cf_for_read_only(&opts, path, &cfs, false).map_err(|e| backend(path, "open", e))
    }

    fn open_writable(path: &Path) -> Result<DB> {
        let cf_names = column_families(path, true)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(3);
        let cfs = cf_names.iter().map(|n| ColumnFamilyDescriptor::new(n, cf_options(n)));
        DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            let text = e.to_string();
            if text.contains("While lock file") || text.contains("lock hold by current process") {
                MetaError::Locked {
                    store: store_name(path),
                }
            } else {
                backend(path, "open", e)
            }
        })
    }

    /// A column family of the current format (all exist once opened for writing;
    /// read-only, an older archive may lack some: see [`RocksMeta::cf_opt`]).
    fn cf(&self, name: &str) -> Result<&ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| MetaError::Corrupt {
            table: "column families",
            what: format!("{name} is missing (an older format opened read-only?)"),
        })
    }

    fn cf_opt(&self, name: &str) -> Option<&ColumnFamily> {
        self.db.cf_handle(name)
    }

    fn err(&self, op: &'static str) -> impl Fn(rocksdb::Error) -> MetaError + '_ {
        move |e| backend(&self.path, op, e)
    }

    fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.cf_opt(cf) {
            Some(h) => self.db.get_cf(h, key).map_err(self.err("read")),
            None => Ok(None),
        }
    }

    /// Calls `f` with each (key, value) of `cf` from `from` while the key starts
    /// with `prefix`, until `f` breaks. A missing column family has nothing.
    fn scan(
        &self,
        cf: &str,
        prefix: &[u8],
        from: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        let Some(h) = self.cf_opt(cf) else {
            return Ok(());
        };
        for item in self.db.iterator_cf(h, IteratorMode::From(from, Direction::Forward)) {
            let (k, v) = item.map_err(self.err("scan"))?;
            if !k.starts_with(prefix) || f(&k, &v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn multi_get(&self, cf: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let h = self.cf(cf)?;
        self.db
            .multi_get_cf(keys.iter().map(|k| (h, k.as_slice())))
            .into_iter()
            .map(|r| r.map_err(self.err("read")))
            .collect()
    }

    /// Decodes each entry of a scan with `decode` (`None`: not an entry of that
    /// kind, skipped), stopping after `limit` entries or at the first error.
    fn collect<T>(
        &self,
        cf: &str,
        (prefix, from): (&[u8], &[u8]),
        limit: usize,
        mut decode: impl FnMut(&[u8], &[u8]) -> Option<Result<T>>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut failed = None;
        self.scan(cf, prefix, from, |k, v| {
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

    /// Adds one change to `wb`.
    fn stage(&self, wb: &mut WriteBatch, change: Change) -> Result<()> {
        match change {
            Change::FormatVersion(v) => wb.put_cf(self.cf(keys::CF_META)?, keys::META_FORMAT_VERSION, v.to_be_bytes()),
            Change::Counters(c) => wb.put_cf(self.cf(keys::CF_META)?, keys::META_COUNTERS, c.encode()),
            Change::Dictionary { id, bytes } => wb.put_cf(self.cf(keys::CF_DICTIONARIES)?, keys::dictionary(id), bytes),
            Change::NextPack(n) => wb.put_cf(self.cf(keys::CF_META)?, keys::META_NEXT_PACK, n.to_be_bytes()),
            Change::Pack { number, record } => wb.put_cf(self.cf(keys::CF_PACKS)?, keys::pack(number), record.encode()),
            Change::DropPack(number) => wb.delete_cf(self.cf(keys::CF_PACKS)?, keys::pack(number)),
            Change::Location { kind, id, location } => {
                wb.put_cf(self.cf(keys::CF_PACK_INDEX)?, keys::blob(kind, &id), location.encode())
            }
            Change::DropLocation { kind, id } => wb.delete_cf(self.cf(keys::CF_PACK_INDEX)?, keys::blob(kind, &id)),
            Change::Message { id, record } => {
                wb.put_cf(self.cf(keys::CF_MESSAGES)?, keys::by_hash(&id), record.encode())
            }
            Change::Part { id, record } => wb.put_cf(self.cf(keys::CF_PARTS)?, keys::by_hash(&id), record.encode()),
            Change::Placement { key, record, replaces } => {
                let k = placement_key(&key);
                let by_message = self.cf(keys::CF_PLACEMENTS_BY_MESSAGE)?;
                if let Some(old) = replaces {
                    wb.delete_cf(by_message, keys::placement_by_message(&old, &k));
                }
                wb.put_cf(by_message, keys::placement_by_message(&record.message, &k), b"");
                wb.put_cf(self.cf(keys::CF_PLACEMENTS)?, k, record.encode());
            }
            Change::LogEntry { seq, entry } => {
                wb.put_cf(self.cf(keys::CF_INGEST_LOG)?, keys::ingest_seq(seq), entry.encode())
            }
            Change::Cursor {
                account,
                mailbox,
                cursor,
            } => wb.put_cf(
                self.cf(keys::CF_CURSORS)?,
                keys::cursor(&account, &mailbox),
                cursor.encode(),
            ),
            Change::DropCursor { account, mailbox } => {
                wb.delete_cf(self.cf(keys::CF_CURSORS)?, keys::cursor(&account, &mailbox))
            }
            Change::GmailMessage {
                account,
                gm_msgid,
                message,
            } => wb.put_cf(
                self.cf(keys::CF_CURSORS)?,
                keys::gmail_message(&account, gm_msgid),
                message.0,
            ),
            Change::TooLarge {
                account,
                mailbox,
                source,
                record,
            } => wb.put_cf(
                self.cf(keys::CF_CURSORS)?,
                keys::too_large(&account, &mailbox, &source),
                record.encode(),
            ),
            Change::Ledger {
                target,
                mailbox,
                message,
                copy,
                record,
            } => wb.put_cf(
                self.cf(keys::CF_REPLAY_LEDGER)?,
                keys::ledger(&target, &mailbox, &message, copy),
                record.encode(),
            ),
            Change::DropLegacyBlob { kind, id } => wb.delete_cf(self.cf(keys::CF_BLOBS)?, keys::blob(kind, &id)),
            Change::DropMessage { id, .. } => wb.delete_cf(self.cf(keys::CF_MESSAGES)?, keys::by_hash(&id)),
            Change::DropPart(id) => wb.delete_cf(self.cf(keys::CF_PARTS)?, keys::by_hash(&id)),
            Change::DropPlacement { key, message } => {
                let k = placement_key(&key);
                wb.delete_cf(
                    self.cf(keys::CF_PLACEMENTS_BY_MESSAGE)?,
                    keys::placement_by_message(&message, &k),
                );
                wb.delete_cf(self.cf(keys::CF_PLACEMENTS)?, k);
            }
            Change::Rule { kind, name, record } => {
                wb.put_cf(self.cf(keys::CF_RULES)?, keys::rule(kind, &name), record.encode())
            }
            Change::DropRule { kind, name } => wb.delete_cf(self.cf(keys::CF_RULES)?, keys::rule(kind, &name)),
            Change::ChangeLog { seq, record } => {
                wb.put_cf(self.cf(keys::CF_CHANGE_LOG)?, keys::log_seq(seq), record.encode())
            }
            Change::Checkpoint(c) => wb.put_cf(self.cf(keys::CF_CHECKPOINTS)?, keys::log_seq(c.count), c.encode()),
            Change::SigningKey(k) => wb.put_cf(self.cf(keys::CF_META)?, keys::META_SIGNING_KEY, k),
            Change::Tags { message, tags, was } => {
                let cf = self.cf(keys::CF_TAGS)?;
                for gone in was.difference(&tags) {
                    wb.delete_cf(cf, keys::tagged(gone.as_str(), &message));
                }
                for new in tags.difference(&was) {
                    wb.put_cf(cf, keys::tagged(new.as_str(), &message), b"");
                }
                if tags.is_empty() {
                    wb.delete_cf(cf, keys::tags_of(&message));
                } else {
                    wb.put_cf(cf, keys::tags_of(&message), crate::tags::encode(&tags));
                }
            }
        }
        Ok(())
    }
}

fn backend(path: &Path, op: &'static str, e: rocksdb::Error) -> MetaError {
    MetaError::Backend {
        store: store_name(path),
        op,
        source: Box::new(e),
    }
}

impl MetaStore for RocksMeta {
    fn describe(&self) -> String {
        store_name(&self.path)
    }

    fn format_version(&self) -> Result<Option<u32>> {
        let Some(v) = self.get(keys::CF_META, keys::META_FORMAT_VERSION)? else {
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
        self.get(keys::CF_META, keys::META_COUNTERS)?
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
        Ok(self.get(keys::CF_META, keys::META_NEXT_PACK)?.and_then(|v| be_u64(&v)))
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
        self.get(keys::CF_PACKS, &keys::pack(number))?
            .map(|v| PackRecord::decode(&v).map_err(decode_err(format!("packs/{number}"))))
            .transpose()
    }

    fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>> {
        self.get(keys::CF_MESSAGES, &id.0)?
            .map(|v| MessageRecord::decode(&v).map_err(decode_err(format!("messages/{id}"))))
            .transpose()
    }

    fn have(&self, kind: PayloadKind, ids: &[Hash32]) -> Result<Vec<bool>> {
        let cf = self.cf(record_table(kind))?;
        self.db
            .multi_get_cf(ids.iter().map(|h| (cf, &h.0[..])))
            .into_iter()
            .map(|r| r.map(|v| v.is_some()).map_err(self.err("read")))
            .collect()
    }

    fn scan_ids(&self, kind: PayloadKind, from: &[u8], visit: Visit<'_, Hash32>) -> Result<()> {
        let table = record_table(kind);
        self.scan(table, &[], from, |k, _| visit(hash_key(table, k)))
    }

    fn location(&self, kind: PayloadKind, id: &Hash32) -> Result<Option<BlobLocation>> {
        let Some(cf) = self.cf_opt(keys::CF_PACK_INDEX) else {
            return Ok(None);
        };
        let Some(v) = self
            .db
            .get_pinned_cf(cf, keys::blob(kind, id))
            .map_err(self.err("read"))?
        else {
            return Ok(None);
        };
        BlobLocation::decode(&v)
            .map(Some)
            .map_err(decode_err(format!("pack_index/{} {id}", kind.name())))
    }

    fn scan_locations(&self, visit: Visit<'_, (PayloadKind, Hash32, BlobLocation)>) -> Result<()> {
        self.scan(keys::CF_PACK_INDEX, &[], &[], |k, v| {
            let item = kind_and_hash(keys::CF_PACK_INDEX, k).and_then(|(kind, id)| {
                let loc = BlobLocation::decode(v).map_err(decode_err(format!("pack_index/{} {id}", kind.name())))?;
                Ok((kind, id, loc))
            });
            visit(item)
        })
    }

    fn placements_get(&self, keys: &[PlacementKey]) -> Result<Vec<Option<PlacementRecord>>> {
        let ks: Vec<Vec<u8>> = keys.iter().map(placement_key).collect();
        self.multi_get(keys::CF_PLACEMENTS, &ks)?
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
        self.scan(keys::CF_PLACEMENTS, &prefix, &prefix, |k, v| {
            visit(decode_placement(k, v))
        })
    }

    fn placements_of(&self, id: &MessageId) -> Result<Vec<PlacementEntry>> {
        let mut placement_keys = Vec::new();
        self.scan(keys::CF_PLACEMENTS_BY_MESSAGE, &id.0, &id.0, |k, _| {
            placement_keys.push(k[32..].to_vec());
            ControlFlow::Continue(())
        })?;
        let values = self.multi_get(keys::CF_PLACEMENTS, &placement_keys)?;
        // A reverse entry whose placement is gone or unreadable is skipped: the
        // placement itself is what counts (and `verify` checks those).
        Ok(placement_keys
            .iter()
            .zip(values)
            .filter_map(|(k, v)| decode_placement(k, &v?).ok())
            .collect())
    }

    fn cursor(&self, account: &str, mailbox: &str) -> Result<Option<CursorRecord>> {
        self.get(keys::CF_CURSORS, &keys::cursor(account, mailbox))?
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
        let Some(h) = self.cf_opt(keys::CF_CHANGE_LOG) else {
            return Ok(None);
        };
        match self.db.iterator_cf(h, IteratorMode::End).next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item.map_err(self.err("scan"))?;
                decode_log_record(&k, &v).map(Some)
            }
        }
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        self.collect(keys::CF_CHECKPOINTS, (&[], &[]), usize::MAX, |k, v| {
            let count = be_u64(k).unwrap_or(u64::MAX);
            Some(CheckpointRecord::decode(v).map_err(decode_err(format!("checkpoints/{count}"))))
        })
    }

    fn signing_key(&self) -> Result<Option<[u8; 32]>> {
        let Some(v) = self.get(keys::CF_META, keys::META_SIGNING_KEY)? else {
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
        if self.cf_opt(keys::CF_TAGS).is_none() {
            return Ok(vec![BTreeSet::new(); ids.len()]);
        }
        let ks: Vec<Vec<u8>> = ids.iter().map(keys::tags_of).collect();
        self.multi_get(keys::CF_TAGS, &ks)?
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
        self.scan(keys::CF_TAGS, b"t", b"t", |k, _| {
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
        self.get(keys::CF_BLOBS, &keys::blob(kind, id))
    }

    fn scan_legacy_blobs(
        &self,
        after: Option<(PayloadKind, Hash32)>,
        visit: Visit<'_, (PayloadKind, Hash32, Vec<u8>)>,
    ) -> Result<bool> {
        if self.cf_opt(keys::CF_BLOBS).is_none() {
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
        self.scan(keys::CF_BLOBS, &[], &from, |k, v| {
            visit(kind_and_hash(keys::CF_BLOBS, k).map(|(kind, id)| (kind, id, v.to_vec())))
        })?;
        Ok(true)
    }

    fn drop_legacy_blobs(&mut self) -> Result<()> {
        if self.cf_opt(keys::CF_BLOBS).is_none() {
            return Ok(());
        }
        self.db
            .drop_cf(keys::CF_BLOBS)
            .map_err(|e| backend(&self.path, "drop blobs", e))
    }

    fn commit(&self, batch: MetaBatch) -> Result<()> {
        if self.read_only {
            return Err(MetaError::ReadOnly {
                store: store_name(&self.path),
            });
        }
        let mut wb = WriteBatch::default();
        for change in batch.changes {
            self.stage(&mut wb, change)?;
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(wb, &wo).map_err(self.err("commit"))
    }

    fn flush(&self) -> Result<()> {
        for name in ALL_CFS {
            if let Some(cf) = self.db.cf_handle(name) {
                self.db.flush_cf(cf).map_err(self.err("flush"))?;
            }
        }
        Ok(())
    }
}

/// The table of records of `kind`'s payload owners.
fn record_table(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::Skeleton => keys::CF_MESSAGES,
        PayloadKind::Part => keys::CF_PARTS,
    }
}
