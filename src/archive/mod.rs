//! The archive: content-addressed, part-deduplicated, dictionary-compressed storage
//! of raw messages. Skeletons and parts are in packs (module [`pack`]) kept by a
//! [`BlobStore`](crate::blobstore::BlobStore) (a local directory or S3); the
//! metadata (messages, parts, placements, where each payload is, the replay ledger)
//! is behind a [`MetaStore`](crate::metastore::MetaStore) — RocksDB today (layout:
//! `schemas/store-v3.toml`). This module knows no key layout: it speaks in typed
//! records and batches of typed changes.
//!
//! Synchronous by design: async callers wrap it in `spawn_blocking`. One process owns
//! an archive at a time (the metadata store's lock). Writes happen in batches: the
//! batch's pack is durable in the blob store first, then one metadata batch committed with sync
//! points to it, so a crash leaves the archive at a batch boundary (and at most an
//! orphan pack, which `compact` removes). Messages leave only by `purge`
//! (retention, never under a hold): a source's deletions mark placements
//! deleted-at-source, and the messages stay. Every batch that changes what the
//! archive holds carries its record in the signed change log ([`changelog`]).

mod blob;
pub mod changelog;
mod compact;
mod error;
mod ingest;
pub mod layout;
mod ledger;
pub mod pack;
mod packs;
mod purge;
mod read;
mod rules;
pub mod sealing;
mod shared;
pub mod signing;
mod sync;
mod tags;
pub mod testing;
mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub use changelog::{Attested, ChainIssue, ChainSummary, ChainVerification};
pub use compact::CompactReport;
pub use error::{ArchiveError, Result};
pub use ingest::IngestReport;
pub use ledger::LedgerEntry;
pub use purge::PurgeReport;
pub use read::{PlacementEntry, PlacementFilter};
pub use shared::Fence;
pub use sync::{
    ImapPlacement, KnownPlacement, PlacementChange, PlacementUpdate, Pop3Placement, Pop3Placements, SourceChanges,
    TooLargeSource,
};
pub use verify::{Filed, Problem, ProblemKind, VerifyReport};

use crate::blobstore::{BlobStore, LocalDir, S3Store};
use crate::metastore::{Change, MetaBatch, MetaError, MetaStore, OpenMode, RocksMeta};
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
    /// Where a new archive keeps its metadata (an existing one says in its marker).
    pub meta: layout::MetaConfig,
    /// Payload bytes per pack when the format-2 upgrade moves blobs into packs.
    pub upgrade_pack_bytes: usize,
    /// Where a new archive's signing key is (`init --signing-key`; default
    /// `ARCHIVE/keys/signing.key`). An existing archive's marker says.
    pub signing_key: Option<PathBuf>,
    /// A new archive is encrypted with this secret; an encrypted one needs it to
    /// open (module [`sealing`]).
    pub secret: Option<sealing::ArchiveSecret>,
    /// Argon2id costs when a new archive's key is wrapped with a passphrase.
    pub kdf_cost: crate::crypt::KdfCost,
    /// Open as one of several writers of the archive's store (workers; module
    /// [`shared`]): the archive must exist, with its metadata in PostgreSQL.
    pub shared: bool,
    /// Tests of a killed upgrade: stop (with an error) after this many packs.
    #[doc(hidden)]
    pub upgrade_stop_after_packs: Option<usize>,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            min_part: crate::mime::DEFAULT_MIN_PART,
            blobs: BlobsConfig::Local,
            meta: layout::MetaConfig::Embedded,
            upgrade_pack_bytes: 32 << 20,
            signing_key: None,
            secret: None,
            kdf_cost: crate::crypt::KdfCost::default(),
            shared: false,
            upgrade_stop_after_packs: None,
        }
    }
}

/// An open archive.
pub struct Archive {
    dir: PathBuf,
    /// Everything but the message bytes.
    meta: Box<dyn MetaStore>,
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
    /// The change log's end and signing key (writable opens of format 4).
    chain: Mutex<Option<changelog::ChainState>>,
    /// The keys of an encrypted archive.
    keys: Option<Arc<crate::crypt::ArchiveKeys>>,
    /// Set when the archive is one of several writers of its store.
    shared: Option<shared::Shared>,
    /// Makes message and part ids: keyed when the archive is encrypted.
    ids: crate::model::IdHasher,
}

/// The blob store an archive's marker names.
fn open_blob_store(dir: &Path, config: &BlobsConfig) -> Result<Box<dyn BlobStore>> {
    Ok(match config {
        BlobsConfig::Local => Box::new(LocalDir::new(dir)),
        BlobsConfig::S3(s3) => Box::new(S3Store::new(s3)?),
    })
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
        Self::open_read_only_secret(dir, None)
    }

    /// [`Archive::open_read_only`] with `config`'s secret (for an encrypted archive).
    pub fn open_read_only_secret(dir: &Path, secret: Option<sealing::ArchiveSecret>) -> Result<Archive> {
        warn_if_exposed(dir);
        let Some(marker) = layout::read_marker(dir)? else {
            return Err(ArchiveError::NotAnArchive {
                path: dir.to_path_buf(),
                reason: "no archive there yet (run `mailvault init` or an import)".into(),
            });
        };
        Self::open_read_only_with(
            dir,
            marker,
            ArchiveConfig {
                secret,
                ..ArchiveConfig::default()
            },
        )
    }

    fn open_read_only_with(dir: &Path, marker: layout::MarkerInfo, config: ArchiveConfig) -> Result<Archive> {
        let keys = sealing::open_keys(dir, marker.encrypted, config.secret.as_ref())?;
        let meta = open_meta(dir, &marker.meta, OpenMode::ReadOnly)?;
        let blobs = open_blob_store(dir, &marker.blobs)?;
        Archive::from_meta(dir, meta, blobs, config, keys, true)
    }

    /// Opens for writing; a version-1 archive is upgraded in place (module
    /// [`layout`] says how).
    pub fn open_with(dir: &Path, create: bool, config: ArchiveConfig) -> Result<Archive> {
        warn_if_exposed(dir);
        let marker = match layout::read_marker(dir)? {
            Some(m) => m,
            None if create => {
                let key = config
                    .signing_key
                    .as_deref()
                    .map(std::path::absolute)
                    .transpose()
                    .map_err(|source| ArchiveError::Io {
                        path: config.signing_key.clone().unwrap_or_default(),
                        source,
                    })?;
                let encrypted = config.secret.is_some();
                if let Some(secret) = &config.secret {
                    // The key first: an archive marked encrypted always has one.
                    sealing::create_keys(dir, secret, config.kdf_cost)?;
                }
                layout::write_marker(dir, &config.blobs, &config.meta, key.as_deref(), encrypted)?;
                layout::MarkerInfo {
                    format_version: layout::FORMAT_VERSION,
                    blobs: config.blobs.clone(),
                    signing_key: key,
                    encrypted,
                    meta: config.meta.clone(),
                }
            }
            None => {
                return Err(ArchiveError::NotAnArchive {
                    path: dir.to_path_buf(),
                    reason: "no archive there yet (run `mailvault init` or an import)".into(),
                })
            }
        };
        // The secret is checked before the metadata is opened: a wrong one changes
        // nothing.
        let keys = sealing::open_keys(dir, marker.encrypted, config.secret.as_ref())?;
        let mode = if config.shared {
            OpenMode::Shared
        } else {
            OpenMode::Write
        };
        let meta = open_meta(dir, &marker.meta, mode)?;
        let blobs = open_blob_store(dir, &marker.blobs)?;
        let mut archive = Archive::from_meta(dir, meta, blobs, config, keys, false)?;
        archive.start_chain(&marker.signing_key_path(dir))?;
        if archive.format_version < layout::FORMAT_VERSION {
            archive.refuse_shared("the upgrade of its format")?;
            archive.upgrade()?;
        }
        if marker.format_version < layout::FORMAT_VERSION {
            layout::upgrade_marker(dir)?;
            tracing::info!(archive = %dir.display(), "upgraded the archive to format version {}", layout::FORMAT_VERSION);
        }
        Ok(archive)
    }

    /// Upgrades an older format in place (see [`layout`]): column families were
    /// created by opening; blobs move into packs; the change log begins with the
    /// messages already held; then the database's version.
    fn upgrade(&mut self) -> Result<()> {
        tracing::info!(archive = %self.dir.display(), from = self.format_version, "upgrading the archive to format version {}", layout::FORMAT_VERSION);
        self.move_blobs_into_packs(chrono::Utc::now().timestamp())?;
        self.record_baseline()?;
        let mut batch = MetaBatch::default();
        batch.push(Change::FormatVersion(layout::FORMAT_VERSION));
        self.commit(batch)?;
        self.format_version = layout::FORMAT_VERSION;
        Ok(())
    }

    /// The archive over opened metadata, with counters and dictionaries loaded.
    fn from_meta(
        dir: &Path,
        meta: Box<dyn MetaStore>,
        blobs: Box<dyn BlobStore>,
        config: ArchiveConfig,
        keys: Option<Arc<crate::crypt::ArchiveKeys>>,
        read_only: bool,
    ) -> Result<Archive> {
        let shared = config.shared.then(shared::Shared::default);
        let mut archive = Archive {
            dir: dir.to_path_buf(),
            meta,
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
            chain: Mutex::new(None),
            shared,
            ids: keys
                .as_ref()
                .map_or_else(crate::model::IdHasher::plain, |k| k.id_hasher()),
            keys,
        };
        archive.load_meta()?;
        archive.reload_packs()?;
        Ok(archive)
    }

    fn load_meta(&mut self) -> Result<()> {
        let mut version = layout::FORMAT_VERSION;
        match self.meta.format_version()? {
            Some(found) => {
                if !(layout::OLDEST_READABLE..=layout::FORMAT_VERSION).contains(&found) {
                    return Err(layout::unsupported(&self.dir, found));
                }
                // An older version is upgraded by `open_with`, after loading.
                version = found;
            }
            None if self.read_only || self.shared.is_some() => {
                return Err(ArchiveError::NotAnArchive {
                    path: self.dir.clone(),
                    reason: "the database has no format version (an interrupted `init`?)".into(),
                })
            }
            None => {
                let mut batch = MetaBatch::default();
                batch.push(Change::FormatVersion(layout::FORMAT_VERSION));
                batch.push(Change::Counters(Counters::default()));
                self.commit(batch)?;
            }
        }
        if let Some(c) = self.meta.counters()? {
            *self.counters.get_mut().unwrap_or_else(|p| p.into_inner()) = c;
        }
        self.reload_dictionaries()?;
        self.format_version = version;
        Ok(())
    }

    /// Every dictionary, as stored.
    fn reload_dictionaries(&self) -> Result<()> {
        let mut dicts = Dicts::default();
        for (id, stored) in self.meta.dictionaries()? {
            let bytes = self.unseal_dictionary(id, stored)?;
            let d = Arc::new(Dict::new(id, &bytes));
            dicts.current = Some(d.clone());
            dicts.by_id.insert(id, d);
        }
        *self.dicts.write().unwrap_or_else(|p| p.into_inner()) = dicts;
        Ok(())
    }

    /// Whether message content is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.keys.is_some()
    }

    /// The key that seals the access log's entries of an encrypted archive.
    pub fn access_log_key(&self) -> Option<&crate::crypt::Key> {
        self.keys.as_ref().map(|k| &k.log)
    }

    /// The key that seals the search index of an encrypted archive.
    pub fn index_key(&self) -> Option<Arc<crate::crypt::Key>> {
        self.keys.as_ref().map(|k| k.index_key())
    }

    /// The key that seals the secret store (OAuth2 sign-ins) of an encrypted archive.
    pub fn secrets_key(&self) -> Option<Arc<crate::crypt::Key>> {
        self.keys.as_ref().map(|k| k.secrets_key())
    }

    /// How this archive makes message and part ids. Every source that hands
    /// messages to the archive, and every check of bytes against an id, uses it.
    pub fn ids(&self) -> &crate::model::IdHasher {
        &self.ids
    }

    /// A dictionary as stored: sealed in an encrypted archive.
    pub(crate) fn seal_dictionary(&self, id: u32, bytes: Vec<u8>) -> Result<Vec<u8>> {
        match &self.keys {
            None => Ok(bytes),
            Some(k) => crate::crypt::seal(&k.content, &sealing::dictionary_aad(id), &bytes).map_err(|e| {
                ArchiveError::Encryption {
                    path: self.dir.clone(),
                    what: e.to_string(),
                }
            }),
        }
    }

    fn unseal_dictionary(&self, id: u32, stored: Vec<u8>) -> Result<Vec<u8>> {
        match &self.keys {
            None => Ok(stored),
            Some(k) => crate::crypt::open(
                &k.content,
                &sealing::dictionary_aad(id),
                &stored,
                &format!("dictionary {id}"),
            )
            .map_err(|e| ArchiveError::Encryption {
                path: self.dir.clone(),
                what: e.to_string(),
            }),
        }
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

    /// Flushes buffered metadata so that `disk_bytes` reflects everything written.
    pub fn flush(&self) -> Result<()> {
        Ok(self.meta.flush()?)
    }
}

/// Opens the archive's metadata, naming the archive in the errors people act on.
fn open_meta(dir: &Path, config: &layout::MetaConfig, mode: OpenMode) -> Result<Box<dyn MetaStore>> {
    let opened = match config {
        layout::MetaConfig::Embedded => {
            RocksMeta::open(&layout::db_dir(dir), mode).map(|m| Box::new(m) as Box<dyn MetaStore>)
        }
        layout::MetaConfig::Postgres { url } => {
            crate::metastore::PgMeta::open(url, false, mode).map(|m| Box::new(m) as Box<dyn MetaStore>)
        }
    };
    match opened {
        Ok(m) => Ok(m),
        Err(MetaError::Locked { .. }) => Err(ArchiveError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(MetaError::UnknownTable { name, .. }) => Err(ArchiveError::NotAnArchive {
            path: dir.to_path_buf(),
            reason: format!("unknown column family {name:?} (written by a newer mailvault?)"),
        }),
        Err(MetaError::NewerSchema { found, known, .. }) => Err(ArchiveError::NotAnArchive {
            path: dir.to_path_buf(),
            reason: format!("its metadata has schema version {found}, this mailvault knows up to {known} (written by a newer mailvault?)"),
        }),
        Err(e) => Err(e.into()),
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
