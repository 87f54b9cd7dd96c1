//! The archive: content-addressed, part-deduplicated, dictionary-compressed storage
//! of raw messages. Skeletons and parts are in packs (module [`pack`]) kept by a
//! [`BlobStore`](crate::blobstore::BlobStore) (a local directory or S3); the
//! metadata (messages, parts, placements, where each payload is, the replay ledger)
//! is in RocksDB (layout: `schemas/store-v3.toml`).
//!
//! Synchronous by design: async callers wrap it in `spawn_blocking`. One process owns
//! an archive at a time (RocksDB's lock). Writes happen in batches: the batch's pack
//! is durable in the blob store first, then one RocksDB `WriteBatch` written with sync
//! points to it, so a crash leaves the archive at a batch boundary (and at most an
//! orphan pack, which `compact` removes). Messages are never deleted: placements are
//! marked deleted-at-source, messages stay.

mod blob;
mod compact;
mod error;
mod ingest;
pub mod layout;
mod ledger;
pub mod pack;
mod packs;
mod read;
mod sync;
pub mod testing;
mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, DB};

pub use compact::CompactReport;
pub use error::{ArchiveError, Result};
pub use ingest::IngestReport;
pub use ledger::LedgerEntry;
pub use read::{PlacementEntry, PlacementFilter};
pub use sync::{
    ImapPlacement, KnownPlacement, PlacementChange, PlacementUpdate, Pop3Placement, Pop3Placements, SourceChanges,
    TooLargeSource,
};
pub use verify::{Filed, Problem, ProblemKind, VerifyReport};

use crate::blobstore::{BlobStore, LocalDir, S3Store};
use crate::keys::{self, ALL_CFS};
use crate::records::{Counters, PackRecord};
use blob::{Dict, Dicts};
use layout::BlobsConfig;
use packs::FrameCache;

/// Tunables; the defaults are what the README's figures were measured with.
#[derive(Clone, Debug)]
pub struct ArchiveConfig {
    /// Leaf bodies at least this long are stored as separate, deduplicated parts.
    pub min_part: usize,
    /// Where a new archive keeps its packs (an existing one says in its marker).
    pub blobs: BlobsConfig,
    /// Payload bytes per pack when the format-2 upgrade moves blobs into packs.
    pub upgrade_pack_bytes: usize,
    /// Tests of a killed upgrade: stop (with an error) after this many packs.
    #[doc(hidden)]
    pub upgrade_stop_after_packs: Option<usize>,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            min_part: crate::mime::DEFAULT_MIN_PART,
            blobs: BlobsConfig::Local,
            upgrade_pack_bytes: 32 << 20,
            upgrade_stop_after_packs: None,
        }
    }
}

/// An open archive.
pub struct Archive {
    dir: PathBuf,
    db: DB,
    /// Guarded so that readers on other threads (the indexer following a pull) see
    /// the counters and dictionaries of committed batches while a writer ingests.
    counters: RwLock<Counters>,
    dicts: RwLock<Dicts>,
    /// Held for the whole of an ingest: one writer at a time.
    write_lock: Mutex<()>,
    config: ArchiveConfig,
    read_only: bool,
    /// The format version of the open archive (older only when opened read-only).
    format_version: u32,
    /// Where the packs are.
    blobs: Box<dyn BlobStore>,
    /// Every pack the archive references, by number.
    packs: RwLock<HashMap<u64, PackRecord>>,
    /// The number the next pack gets.
    next_pack: Mutex<u64>,
    frames: FrameCache,
    /// Ranges of packs fetched from a remote store.
    ranges: packs::RangeCache,
}

/// The blob store an archive's marker names.
fn open_blob_store(dir: &Path, config: &BlobsConfig) -> Result<Box<dyn BlobStore>> {
    Ok(match config {
        BlobsConfig::Local => Box::new(LocalDir::new(dir)),
        BlobsConfig::S3(s3) => Box::new(S3Store::new(s3)?),
    })
}

/// The column families to open: those that exist (refusing unknown ones, which a
/// newer format may have added), and for writing every one of the current format.
fn column_families(dir: &Path, writable: bool) -> Result<Vec<String>> {
    let existing = DB::list_cf(&Options::default(), layout::db_dir(dir)).unwrap_or_default();
    if let Some(unknown) = existing.iter().find(|n| !keys::is_known_cf(n)) {
        return Err(ArchiveError::NotAnArchive {
            path: dir.to_path_buf(),
            reason: format!("unknown column family {unknown:?} (written by a newer mailvault?)"),
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

/// Warns when other users of the machine can reach an existing archive directory.
fn warn_if_exposed(dir: &Path) {
    if let Some(mode) = crate::private::exposure(dir) {
        tracing::warn!("{}", crate::private::exposure_warning("archive", dir, mode));
    }
}

impl Archive {
    /// Opens the archive at `dir`, creating it when `dir` is missing or empty.
    pub fn open_or_create(dir: &Path) -> Result<Archive> {
        Self::open_with(dir, true, ArchiveConfig::default())
    }

    /// Opens an existing archive; refuses a directory that is not one.
    pub fn open(dir: &Path) -> Result<Archive> {
        Self::open_with(dir, false, ArchiveConfig::default())
    }

    /// Opens an existing archive for reading only: takes no lock, so it works while
    /// another process writes (it sees the archive as it was when opened).
    /// A version-1 archive is read as it is (its replay ledger is empty).
    pub fn open_read_only(dir: &Path) -> Result<Archive> {
        warn_if_exposed(dir);
        let Some(marker) = layout::read_marker(dir)? else {
            return Err(ArchiveError::NotAnArchive {
                path: dir.to_path_buf(),
                reason: "no archive there yet (run `mailvault init` or an import)".into(),
            });
        };
        let cfs = column_families(dir, false)?;
        // Nothing is written, not even RocksDB's own LOG file (a reader may have no
        // write permission on the archive): its messages go to our log instead.
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
        let db =
            DB::open_cf_for_read_only(&opts, layout::db_dir(dir), &cfs, false).map_err(|source| ArchiveError::Db {
                path: dir.to_path_buf(),
                source,
            })?;
        let blobs = open_blob_store(dir, &marker.blobs)?;
        Archive::from_db(dir, db, blobs, ArchiveConfig::default(), true)
    }

    /// Opens for writing; a version-1 archive is upgraded in place (module
    /// [`layout`] says how).
    pub fn open_with(dir: &Path, create: bool, config: ArchiveConfig) -> Result<Archive> {
        warn_if_exposed(dir);
        let marker = match layout::read_marker(dir)? {
            Some(m) => m,
            None if create => {
                layout::write_marker(dir, &config.blobs)?;
                layout::MarkerInfo {
                    format_version: layout::FORMAT_VERSION,
                    blobs: config.blobs.clone(),
                }
            }
            None => {
                return Err(ArchiveError::NotAnArchive {
                    path: dir.to_path_buf(),
                    reason: "no archive there yet (run `mailvault init` or an import)".into(),
                })
            }
        };
        let db_path = layout::db_dir(dir);
        let db_err = |source: rocksdb::Error| {
            let text = source.to_string();
            if text.contains("While lock file") || text.contains("lock hold by current process") {
                ArchiveError::Locked {
                    path: dir.to_path_buf(),
                }
            } else {
                ArchiveError::Db {
                    path: dir.to_path_buf(),
                    source,
                }
            }
        };
        let cf_names = column_families(dir, true)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(3);
        let cfs = cf_names.iter().map(|n| ColumnFamilyDescriptor::new(n, cf_options(n)));
        let db = DB::open_cf_descriptors(&opts, &db_path, cfs).map_err(db_err)?;
        let blobs = open_blob_store(dir, &marker.blobs)?;
        let mut archive = Archive::from_db(dir, db, blobs, config, false)?;
        if archive.format_version < layout::FORMAT_VERSION {
            archive.upgrade()?;
        }
        if marker.format_version < layout::FORMAT_VERSION {
            layout::upgrade_marker(dir)?;
            tracing::info!(archive = %dir.display(), "upgraded the archive to format version {}", layout::FORMAT_VERSION);
        }
        Ok(archive)
    }

    /// Upgrades an older format in place (see [`layout`]): column families were
    /// created by opening; blobs move into packs; then the database's version.
    fn upgrade(&mut self) -> Result<()> {
        tracing::info!(archive = %self.dir.display(), from = self.format_version, "upgrading the archive to format version {}", layout::FORMAT_VERSION);
        self.move_blobs_into_packs(chrono::Utc::now().timestamp())?;
        let mut wb = rocksdb::WriteBatch::default();
        wb.put_cf(
            self.cf(keys::CF_META),
            keys::META_FORMAT_VERSION,
            layout::FORMAT_VERSION.to_be_bytes(),
        );
        self.write(wb)?;
        self.format_version = layout::FORMAT_VERSION;
        Ok(())
    }

    /// The archive over an opened database, with counters and dictionaries loaded.
    fn from_db(
        dir: &Path,
        db: DB,
        blobs: Box<dyn BlobStore>,
        config: ArchiveConfig,
        read_only: bool,
    ) -> Result<Archive> {
        let mut archive = Archive {
            dir: dir.to_path_buf(),
            db,
            counters: RwLock::new(Counters::default()),
            dicts: RwLock::new(Dicts::default()),
            write_lock: Mutex::new(()),
            config,
            read_only,
            format_version: layout::FORMAT_VERSION,
            blobs,
            packs: RwLock::new(HashMap::new()),
            next_pack: Mutex::new(1),
            frames: FrameCache::new(packs::FRAME_CACHE_BYTES),
            ranges: packs::RangeCache::default(),
        };
        archive.load_meta()?;
        archive.load_packs()?;
        Ok(archive)
    }

    fn load_meta(&mut self) -> Result<()> {
        let mut version = layout::FORMAT_VERSION;
        let meta = self.cf(keys::CF_META);
        match self
            .db
            .get_cf(meta, keys::META_FORMAT_VERSION)
            .map_err(|e| self.db_error(e))?
        {
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_slice()).map(u32::from_be_bytes).map_err(|_| {
                    ArchiveError::NotAnArchive {
                        path: self.dir.clone(),
                        reason: "meta/format_version is not a 4-byte integer".into(),
                    }
                })?;
                if !(layout::OLDEST_READABLE..=layout::FORMAT_VERSION).contains(&found) {
                    return Err(layout::unsupported(&self.dir, found));
                }
                // An older version is upgraded by `open_with`, after loading.
                version = found;
            }
            None if self.read_only => {
                return Err(ArchiveError::NotAnArchive {
                    path: self.dir.clone(),
                    reason: "the database has no format version (an interrupted `init`?)".into(),
                })
            }
            None => {
                let mut wb = rocksdb::WriteBatch::default();
                wb.put_cf(meta, keys::META_FORMAT_VERSION, layout::FORMAT_VERSION.to_be_bytes());
                wb.put_cf(meta, keys::META_COUNTERS, Counters::default().encode());
                self.write(wb)?;
            }
        }
        if let Some(v) = self
            .db
            .get_cf(meta, keys::META_COUNTERS)
            .map_err(|e| self.db_error(e))?
        {
            *self.counters.get_mut().unwrap_or_else(|p| p.into_inner()) =
                Counters::decode(&v).map_err(|source| ArchiveError::Decode {
                    key: "meta/counters".into(),
                    source,
                })?;
        }
        let dcf = self.cf(keys::CF_DICTIONARIES);
        let mut dicts = Dicts::default();
        for item in self.db.iterator_cf(dcf, rocksdb::IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.db_error(e))?;
            let id = <[u8; 4]>::try_from(&k[..])
                .map(u32::from_be_bytes)
                .map_err(|_| ArchiveError::Corrupt {
                    id: "dictionaries".into(),
                    what: "a dictionary key is not 4 bytes".into(),
                })?;
            let d = Arc::new(Dict::new(id, &v));
            dicts.current = Some(d.clone());
            dicts.by_id.insert(id, d);
        }
        *self.dicts.get_mut().unwrap_or_else(|p| p.into_inner()) = dicts;
        self.format_version = version;
        Ok(())
    }

    /// A column family the open archive has: every one of format 3 when writable;
    /// for an older archive opened read-only, those of its version (callers of the
    /// others use [`Archive::cf_opt`]).
    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("the column family is one of the open archive's")
    }

    /// A column family some versions lack (`blobs`, `packs`, `pack_index`, the ledger).
    pub(crate) fn cf_opt(&self, name: &str) -> Option<&ColumnFamily> {
        self.db.cf_handle(name)
    }

    pub(crate) fn db_error(&self, source: rocksdb::Error) -> ArchiveError {
        ArchiveError::Db {
            path: self.dir.clone(),
            source,
        }
    }

    /// Writes one batch durably (WAL fsync before returning).
    pub(crate) fn write(&self, wb: rocksdb::WriteBatch) -> Result<()> {
        if self.read_only {
            return Err(ArchiveError::ReadOnly { path: self.dir.clone() });
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(wb, &wo).map_err(|e| self.db_error(e))
    }

    /// The archive's format version ([`layout::FORMAT_VERSION`] once opened for
    /// writing, which upgrades older ones).
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Running totals (exact: updated in the same batch as the data).
    pub fn counters(&self) -> Counters {
        self.counters.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Bytes the archive occupies on disk (all files under its directory).
    pub fn disk_bytes(&self) -> u64 {
        walkdir::WalkDir::new(&self.dir)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }

    /// Flushes memtables so that `disk_bytes` reflects everything written.
    pub fn flush(&self) -> Result<()> {
        for name in ALL_CFS {
            if let Some(cf) = self.db.cf_handle(name) {
                self.db.flush_cf(cf).map_err(|e| self.db_error(e))?;
            }
        }
        Ok(())
    }
}

/// Checks an account or mailbox name for use in keys.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('\0') {
        return Err(ArchiveError::InvalidName {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}
