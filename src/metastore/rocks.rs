//! The embedded key-value engine: RocksDB beside the packs, one column family per
//! record kind (`schemas/store-v5.toml`). A commit is one `WriteBatch` written
//! with sync. The records themselves are [`super::kv`]'s.

use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, DB};

use super::kv::{KvEngine, KvMeta, KvOps, RawVisit};
use super::{MetaError, Result};
use crate::keys::{self, ALL_CFS};

/// How to open the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// No lock, nothing written (not even RocksDB's own LOG file): works beside a
    /// writer and for a user who may only read. Sees the data as it was at open.
    ReadOnly,
    /// The one writer: takes RocksDB's lock; creates the database and the current
    /// format's column families when missing.
    Write,
    /// One of several writers (workers sharing a PostgreSQL store): takes no lock
    /// at open; each write is made in a turn ([`super::MetaStore::turn`]). An
    /// embedded store refuses it.
    Shared,
}

/// The metadata in a RocksDB database.
pub type RocksMeta = KvMeta<RocksKv>;

/// A RocksDB database as a [`KvEngine`].
pub struct RocksKv {
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

impl RocksMeta {
    /// Opens the database at `path` (for writing, creating it when missing).
    pub fn open(path: &Path, mode: OpenMode) -> Result<RocksMeta> {
        let db = match mode {
            OpenMode::ReadOnly => RocksKv::open_read_only(path)?,
            OpenMode::Write => RocksKv::open_writable(path)?,
            OpenMode::Shared => {
                return Err(MetaError::OneWriter {
                    store: store_name(path),
                })
            }
        };
        Ok(KvMeta::new(RocksKv {
            path: path.to_path_buf(),
            db,
            read_only: mode == OpenMode::ReadOnly,
        }))
    }
}

impl RocksKv {
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
    /// read-only, an older archive may lack some: see [`RocksKv::cf_opt`]).
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
}

fn store_name(path: &Path) -> String {
    format!("metadata (RocksDB) at {}", path.display())
}

fn backend(path: &Path, op: &'static str, e: rocksdb::Error) -> MetaError {
    MetaError::Backend {
        store: store_name(path),
        op,
        source: Box::new(e),
    }
}

impl KvEngine for RocksKv {
    fn describe(&self) -> String {
        store_name(&self.path)
    }

    fn has_table(&self, table: &str) -> bool {
        self.cf_opt(table).is_some()
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.cf_opt(table) {
            Some(h) => self.db.get_cf(h, key).map_err(self.err("read")),
            None => Ok(None),
        }
    }

    fn multi_get(&self, table: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let h = self.cf(table)?;
        self.db
            .multi_get_cf(keys.iter().map(|k| (h, k.as_slice())))
            .into_iter()
            .map(|r| r.map_err(self.err("read")))
            .collect()
    }

    fn scan(&self, table: &'static str, prefix: &[u8], from: &[u8], visit: RawVisit<'_>) -> Result<()> {
        let Some(h) = self.cf_opt(table) else {
            return Ok(());
        };
        for item in self.db.iterator_cf(h, IteratorMode::From(from, Direction::Forward)) {
            let (k, v) = item.map_err(self.err("scan"))?;
            if !k.starts_with(prefix) || visit(&k, &v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last(&self, table: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let Some(h) = self.cf_opt(table) else {
            return Ok(None);
        };
        match self.db.iterator_cf(h, IteratorMode::End).next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item.map_err(self.err("scan"))?;
                Ok(Some((k.into_vec(), v.into_vec())))
            }
        }
    }

    fn write(&self, ops: KvOps) -> Result<()> {
        if self.read_only {
            return Err(MetaError::ReadOnly {
                store: store_name(&self.path),
            });
        }
        let mut wb = WriteBatch::default();
        for op in ops.0 {
            let cf = self.cf(op.table)?;
            match op.value {
                Some(v) => wb.put_cf(cf, op.key, v),
                None => wb.delete_cf(cf, op.key),
            }
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

    fn drop_table(&mut self, table: &'static str) -> Result<()> {
        self.db.drop_cf(table).map_err(|e| backend(&self.path, "drop table", e))
    }
}
