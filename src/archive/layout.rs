//! The archive directory: a marker file naming the format version and where the
//! packs are, RocksDB under `db/`, local packs under `packs/`. The marker is read
//! before RocksDB is touched, so a newer format is refused without any chance of
//! modifying it.
//!
//! ```text
//! ARCHIVE/
//!   mailvault-archive.toml   format = "mailvault-archive", format_version = 5,
//!                            signing_key = "/path" (when not keys/signing.key),
//!                            [blobs] kind = "local" | "s3" (bucket, prefix, endpoint, region)
//!   db/                      RocksDB (column families: schemas/store-v5.toml)
//!   packs/ab/ab….pack        packs, when they are kept locally
//!   keys/signing.key         the Ed25519 key that signs the change log (0600)
//!   access.log               who read what (hash-chained lines, 0600)
//! ```
//!
//! Format 2 added the `replay_ledger` column family; format 3 moved every skeleton
//! and part from the `blobs` column family into packs; format 4 added retention
//! rules, the change log and its signed checkpoints; format 5 added user tags (the
//! `tags` column family). Older archives are read as
//! they are, and upgraded in place by the first writable open: missing column
//! families are created, blobs are moved into packs (a pack at a time, each durable
//! before the batch that points to it and drops the blobs commits), the `blobs`
//! column family is dropped, the change log begins with every message already
//! held, then `meta/format_version` is set, then the marker. A crash between any
//! two steps is finished by the next writable open.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{ArchiveError, Result};

/// The format version this build writes.
pub const FORMAT_VERSION: u32 = 5;
/// The oldest format version this build reads (and upgrades when writing).
pub const OLDEST_READABLE: u32 = 1;
pub const MARKER_FILE: &str = "mailvault-archive.toml";
pub const FORMAT_NAME: &str = "mailvault-archive";

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    format: String,
    format_version: u32,
    created_by: String,
    /// Absent before format 3, and in archives that keep packs locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blobs: Option<BlobsConfig>,
    /// Format 4: where the key that signs checkpoints is, when `init
    /// --signing-key` put it outside the archive (absent: `keys/signing.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_key: Option<PathBuf>,
    /// Whether message content is encrypted (the wrapped key is `keys/archive.key`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    encrypted: bool,
    /// Where the metadata is, when not in `db/` (absent: embedded RocksDB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta: Option<MetaConfig>,
}

/// Where an archive keeps its metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetaConfig {
    /// RocksDB in `ARCHIVE/db/`.
    #[default]
    Embedded,
    /// A PostgreSQL database: its URL without a password (which comes from
    /// `PGPASSWORD` or the password file when the archive is opened).
    Postgres { url: String },
}

impl MetaConfig {
    /// `embedded`, or a `postgres://` URL (which must hold no password: the
    /// marker records it, and the command line shows it to every user).
    pub fn parse(text: &str) -> std::result::Result<MetaConfig, crate::metastore::MetaError> {
        if text == "embedded" || text.is_empty() {
            return Ok(MetaConfig::Embedded);
        }
        let (_, url) = crate::metastore::parse_postgres_url(text, false)?;
        Ok(MetaConfig::Postgres { url })
    }

    /// Where new archives keep their metadata when `init --meta` is not given:
    /// the environment's `MAILVAULT_META`, else embedded.
    pub fn from_env() -> std::result::Result<MetaConfig, crate::metastore::MetaError> {
        match std::env::var("MAILVAULT_META").ok().filter(|v| !v.is_empty()) {
            None => Ok(MetaConfig::Embedded),
            Some(v) => MetaConfig::parse(&v),
        }
    }
}

/// Where an archive keeps its packs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BlobsConfig {
    /// `ARCHIVE/packs/`.
    #[default]
    Local,
    S3(crate::blobstore::S3Config),
}

impl BlobsConfig {
    /// Where new archives keep their packs when `init --blobs` is not given: the
    /// environment's `MAILVAULT_BLOBS` (`local` or `s3://BUCKET/PREFIX`, with
    /// `MAILVAULT_S3_ENDPOINT` and `MAILVAULT_S3_REGION`), else local.
    pub fn from_env() -> std::result::Result<BlobsConfig, crate::blobstore::BlobStoreError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match var("MAILVAULT_BLOBS") {
            None => Ok(BlobsConfig::Local),
            Some(v) => BlobsConfig::parse(&v, var("MAILVAULT_S3_ENDPOINT"), var("MAILVAULT_S3_REGION")),
        }
    }

    /// `local` or `s3://BUCKET/PREFIX` (S3 with `endpoint` and `region`).
    pub fn parse(
        blobs: &str,
        endpoint: Option<String>,
        region: Option<String>,
    ) -> std::result::Result<BlobsConfig, crate::blobstore::BlobStoreError> {
        if blobs == "local" {
            if endpoint.is_some() || region.is_some() {
                return Err(crate::blobstore::BlobStoreError::Config(
                    "an S3 endpoint or region goes with s3://BUCKET/PREFIX, not with local packs".into(),
                ));
            }
            return Ok(BlobsConfig::Local);
        }
        crate::blobstore::S3Config::from_url(blobs, endpoint, region).map(BlobsConfig::S3)
    }
}

/// What the marker of an existing archive says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkerInfo {
    pub format_version: u32,
    pub blobs: BlobsConfig,
    /// The signing key's file, when it is not the archive's own.
    pub signing_key: Option<PathBuf>,
    /// Message content is encrypted under the key in [`archive_key_path`].
    pub encrypted: bool,
    pub meta: MetaConfig,
}

/// The wrapped master key of an encrypted archive.
pub fn archive_key_path(dir: &Path) -> PathBuf {
    dir.join("keys").join("archive.key")
}

/// The signing key of an archive whose marker names none.
pub fn default_signing_key(dir: &Path) -> PathBuf {
    dir.join("keys").join("signing.key")
}

impl MarkerInfo {
    /// Where the key that signs this archive's checkpoints is.
    pub fn signing_key_path(&self, dir: &Path) -> PathBuf {
        self.signing_key.clone().unwrap_or_else(|| default_signing_key(dir))
    }
}

/// A hint for readers: an upper bound of the ingest log's next sequence number,
/// written (durably) before each batch commits. A search whose index covers it
/// need not open RocksDB at all; RocksDB stays the truth.
pub const SEQ_HINT_FILE: &str = "ingest-seq";

pub fn read_seq_hint(dir: &Path) -> Option<u64> {
    fs::read_to_string(dir.join(SEQ_HINT_FILE)).ok()?.trim().parse().ok()
}

pub fn write_seq_hint(dir: &Path, seq: u64) -> Result<()> {
    let tmp = dir.join(format!("{SEQ_HINT_FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(format!("{seq}\n").as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, dir.join(SEQ_HINT_FILE)).map_err(io(dir))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

pub fn db_dir(dir: &Path) -> PathBuf {
    dir.join("db")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks the marker of an existing archive and returns its format version. `Ok(None)`
/// when `dir` does not exist or is empty (a new archive may be created there).
pub fn check(dir: &Path) -> Result<Option<u32>> {
    Ok(read_marker(dir)?.map(|m| m.format_version))
}

/// [`check`], with where the packs are.
pub fn read_marker(dir: &Path) -> Result<Option<MarkerInfo>> {
    let marker = dir.join(MARKER_FILE);
    match fs::read_to_string(&marker) {
        Ok(text) => {
            let m: Marker = toml::from_str(&text).map_err(|e| ArchiveError::NotAnArchive {
                path: dir.to_path_buf(),
                reason: format!("{} is unreadable: {}", marker.display(), e.message()),
            })?;
            if m.format != FORMAT_NAME {
                return Err(ArchiveError::NotAnArchive {
                    path: dir.to_path_buf(),
                    reason: format!("{} names format {:?}", marker.display(), m.format),
                });
            }
            if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&m.format_version) {
                return Err(unsupported(dir, m.format_version));
            }
            Ok(Some(MarkerInfo {
                format_version: m.format_version,
                blobs: m.blobs.unwrap_or_default(),
                signing_key: m.signing_key,
                encrypted: m.encrypted,
                meta: m.meta.unwrap_or_default(),
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A marker temp file alone is an interrupted `init`: still empty.
            let tmp_name = format!("{MARKER_FILE}.tmp");
            let empty = match fs::read_dir(dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .all(|e| e.file_name().to_string_lossy() == tmp_name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(io(dir)(e)),
            };
            if empty {
                Ok(None)
            } else {
                Err(ArchiveError::NotAnArchive {
                    path: dir.to_path_buf(),
                    reason: format!("the directory is not empty and has no {MARKER_FILE}"),
                })
            }
        }
        Err(e) => Err(io(&marker)(e)),
    }
}

pub fn unsupported(dir: &Path, found: u32) -> ArchiveError {
    ArchiveError::UnsupportedVersion {
        path: dir.to_path_buf(),
        found,
        oldest: OLDEST_READABLE,
        supported: FORMAT_VERSION,
        ours: env!("CARGO_PKG_VERSION"),
    }
}

/// What stands at `db` in an archive whose metadata is elsewhere: a file, so that
/// a mailvault older than the marker's `meta` (which would open an empty RocksDB
/// there and see no messages) fails to open it instead.
const DB_ELSEWHERE: &str = "This archive's metadata is not here: mailvault-archive.toml says where.\n";

/// Writes the marker of a new archive durably (temp file, fsync, rename, fsync dir).
pub fn write_marker(
    dir: &Path,
    blobs: &BlobsConfig,
    meta: &MetaConfig,
    signing_key: Option<&Path>,
    encrypted: bool,
) -> Result<()> {
    crate::private::create_dir_all(dir).map_err(io(dir))?;
    if *meta != MetaConfig::Embedded {
        let db = db_dir(dir);
        fs::write(&db, DB_ELSEWHERE).map_err(io(&db))?;
    }
    put_marker(
        dir,
        &Marker {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            created_by: format!("mailvault {}", env!("CARGO_PKG_VERSION")),
            blobs: (*blobs != BlobsConfig::Local).then(|| blobs.clone()),
            signing_key: signing_key.map(Path::to_path_buf),
            encrypted,
            meta: (*meta != MetaConfig::Embedded).then(|| meta.clone()),
        },
    )
}

/// Sets the marker of an upgraded archive to [`FORMAT_VERSION`], keeping who
/// created it.
pub fn upgrade_marker(dir: &Path) -> Result<()> {
    let path = dir.join(MARKER_FILE);
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let mut m: Marker = toml::from_str(&text).map_err(|e| ArchiveError::NotAnArchive {
        path: dir.to_path_buf(),
        reason: format!("{} is unreadable: {}", path.display(), e.message()),
    })?;
    m.format_version = FORMAT_VERSION;
    put_marker(dir, &m)
}

fn put_marker(dir: &Path, m: &Marker) -> Result<()> {
    let text = format!(
        "# This directory is a mailvault archive. Do not edit.\n{}",
        toml::to_string(m).expect("marker serialises")
    );
    let tmp = dir.join(format!("{MARKER_FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(text.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, dir.join(MARKER_FILE)).map_err(io(dir))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    Ok(())
}
