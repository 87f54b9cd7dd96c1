//! Errors of the storage layer. Each names the archive path or the message/part id.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Meta(#[from] crate::metastore::MetaError),
    #[error(transparent)]
    Blobs(#[from] crate::blobstore::BlobStoreError),
    #[error("archive {path} was opened read-only")]
    ReadOnly { path: PathBuf },
    #[error("archive {path} is in use by another mailvault process (its metadata is locked)")]
    Locked { path: PathBuf },
    #[error("{path} is not a mailvault archive: {reason}")]
    NotAnArchive { path: PathBuf, reason: String },
    #[error(
        "archive {path} has format version {found}, but this mailvault {ours} reads format versions \
         {oldest} to {supported} only; use a mailvault release that supports format {found}"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        oldest: u32,
        supported: u32,
        ours: &'static str,
    },
    #[error("message {id}: {what}")]
    Corrupt { id: String, what: String },
    #[error("no message with id {0}")]
    NotFound(String),
    #[error("id prefix {prefix:?} matches more than one message; give more characters")]
    Ambiguous { prefix: String },
    #[error("id {0:?} is not a hex id prefix of at least 4 characters")]
    BadId(String),
    #[error("archive {path} is encrypted: give its passphrase or key file")]
    SecretNeeded { path: PathBuf },
    #[error("archive {path}: the passphrase or key file is not this archive's (nothing was opened or changed)")]
    WrongSecret { path: PathBuf },
    #[error("archive {path}: {what}")]
    Encryption { path: PathBuf, what: String },
    #[error("signing key {path}: {reason}")]
    SigningKey { path: PathBuf, reason: String },
    #[error("archive {path}: {what}")]
    Chain { path: PathBuf, what: String },
    #[error("retention policy {name:?}: {what}")]
    BadRule { name: String, what: String },
    #[error("no {kind} named {name:?}")]
    NoSuchRule { kind: &'static str, name: String },
    #[error("account {account}: batch not written: {why}")]
    NotHeld { account: String, why: String },
    #[error("archive {path}: {what} needs the archive's one writer, not a worker sharing it (stop the workers, then run it)")]
    NeedsOneWriter { path: PathBuf, what: &'static str },
    #[error("invalid {what} name {name:?}: names must be non-empty and contain no NUL byte")]
    InvalidName { what: &'static str, name: String },
    #[error("tags of message {message}: {source}")]
    Tags {
        message: String,
        #[source]
        source: crate::tags::TagError,
    },
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;
