//! The archive: content-addressed, part-deduplicated, dictionary-compressed storage
//! of raw messages, with their placements and the replay ledger, in RocksDB (layout:
//! `schemas/store-v2.toml`).
//!
//! Synchronous by design: async callers wrap it in `spawn_blocking`. One process owns
//! an archive at a time (RocksDB's lock). Writes happen in batches, each one RocksDB
//! `WriteBatch` written with sync, so a crash leaves the archive at a batch boundary.
//! Nothing is ever deleted: placements are marked deleted-at-source, messages stay.

mod blob;
mod error;
mod ingest;
pub mod layout;
mod ledger;
mod read;
mod sync;
pub mod testing;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, DB};

pub use error::{ArchiveError, Result};
pub use ingest::IngestReport;
pub use ledger::LedgerEntry;
pub use read::{PlacementEntry, PlacementFilter};
pub use sync::{
    ImapPlacement, KnownPlacement, PlacementChange, PlacementUpdate, Pop3Placement, Pop3Placements, SourceChanges,
    TooLargeSource,
};
pub use verify::{Filed, Problem, ProblemKind, VerifyReport};

use crate::keys::{self, ALL_CFS, V1_CFS};
use crate::records::Counters;
use blob::{Dict, Dicts};

/// Tunables; the defaults are what the README's figures were measured with.
#[derive(Clone, Debug)]
pub struct ArchiveConfig {
    /// Leaf bodies at least this long are stored as separate, deduplicated parts.
    pub min_part: usize,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            min_part: crate::mime::DEFAULT_MIN_PART,
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
        let Some(version) = layout::check(dir)? else {
            return Err(ArchiveError::NotAnArchive {
                path: dir.to_path_buf(),
                reason: "no archive there yet (run `mailvault init` or an import)".into(),
            });
        };
        let cfs: &[&str] = if version == 1 { V1_CFS } else { &ALL_CFS };
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
            DB::open_cf_for_read_only(&opts, layout::db_dir(dir), cfs, false).map_err(|source| ArchiveError::Db {
                path: dir.to_path_buf(),
                source,
            })?;
        Archive::from_db(dir, db, ArchiveConfig::default(), true)
    }

    /// Opens for writing; a version-1 archive is upgraded in place (module
    /// [`layout`] says how).
    pub fn open_with(dir: &Path, create: bool, config: ArchiveConfig) -> Result<Archive> {
        warn_if_exposed(dir);
        let marker = layout::check(dir)?;
        if marker.is_none() {
            if !create {
                return Err(ArchiveError::NotAnArchive {
                    path: dir.to_path_buf(),
                    reason: "no archive there yet (run `mailvault init` or an import)".into(),
                });
            }
            layout::write_marker(dir)?;
        }
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
        // A newer format may have added column families: refuse rather than ignore.
        if let Ok(existing) = DB::list_cf(&Options::default(), &db_path) {
            if let Some(unknown) = existing
                .iter()
                .find(|n| *n != "default" && !ALL_CFS.contains(&n.as_str()))
            {
                return Err(ArchiveError::NotAnArchive {
                    path: dir.to_path_buf(),
                    reason: format!("unknown column family {unknown:?} (written by a newer mailvault?)"),
                });
            }
        }
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(3);
        let cfs = ALL_CFS.iter().map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n)));
        let db = DB::open_cf_descriptors(&opts, &db_path, cfs).map_err(db_err)?;
        let archive = Archive::from_db(dir, db, config, false)?;
        if marker.is_some_and(|v| v < layout::FORMAT_VERSION) {
            tracing::info!(archive = %dir.display(), "upgraded the archive to format version {}", layout::FORMAT_VERSION);
            layout::upgrade_marker(dir)?;
        }
        Ok(archive)
    }

    /// The archive over an opened database, with counters and dictionaries loaded.
    fn from_db(dir: &Path, db: DB, config: ArchiveConfig, read_only: bool) -> Result<Archive> {
        let mut archive = Archive {
            dir: dir.to_path_buf(),
            db,
            counters: RwLock::new(Counters::default()),
            dicts: RwLock::new(Dicts::default()),
            write_lock: Mutex::new(()),
            config,
            read_only,
            format_version: layout::FORMAT_VERSION,
        };
        archive.load_meta()?;
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
                version = found;
                if found < layout::FORMAT_VERSION && !self.read_only {
                    // v1 → v2: the only change is the ledger column family, which
                    // opening created; record the new version.
                    let mut wb = rocksdb::WriteBatch::default();
                    wb.put_cf(meta, keys::META_FORMAT_VERSION, layout::FORMAT_VERSION.to_be_bytes());
                    self.write(wb)?;
                    version = layout::FORMAT_VERSION;
                }
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

    /// A column family every readable version has (all but the replay ledger).
    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every version-1 column family is opened")
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
