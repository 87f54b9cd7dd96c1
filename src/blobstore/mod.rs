//! Where packs live: the [`BlobStore`] seam. A pack is an immutable object named by
//! the BLAKE3 of its bytes; the store can put one (durably, before returning), read a
//! byte range of one, list them and delete one. Two implementations: [`LocalDir`]
//! (a directory beside the metadata, the default) and [`S3Store`] (S3-compatible
//! object storage through the `object_store` crate).
//!
//! The trait is synchronous like the archive above it; the S3 implementation runs
//! its requests on a small runtime of its own, so callers never block an async task.

mod local;
mod s3;

use std::ops::Range;

use thiserror::Error;

use crate::model::Hash32;

pub use local::LocalDir;
pub use s3::{S3Config, S3Store};

/// A pack's name: the BLAKE3 of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackName(pub Hash32);

impl PackName {
    pub fn of(bytes: &[u8]) -> PackName {
        PackName(Hash32::of(bytes))
    }

    /// The object path below the store's root: `packs/ab/ab…(64 hex).pack`.
    pub fn object_path(&self) -> String {
        let hex = self.0.to_hex();
        format!("packs/{}/{hex}.pack", &hex[..2])
    }

    /// The name back from an object path (`None` for anything else).
    pub fn from_object_path(path: &str) -> Option<PackName> {
        let file = path.rsplit('/').next()?;
        let hex = file.strip_suffix(".pack")?;
        Hash32::from_hex(hex).map(PackName)
    }
}

impl std::fmt::Display for PackName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

/// One stored pack, as a listing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPack {
    pub name: PackName,
    pub size: u64,
}

/// What went wrong, with the store and the pack it concerned.
#[derive(Debug, Error)]
pub enum BlobStoreError {
    #[error("{store}: pack {name} is missing")]
    Missing { store: String, name: PackName },
    #[error("{store}: pack {name}: asked for bytes {start}..{end}, but it holds {size}")]
    ShortRead {
        store: String,
        name: PackName,
        start: u64,
        end: u64,
        size: u64,
    },
    #[error("{store}: cannot {op} pack {name}: {source}")]
    Io {
        store: String,
        op: &'static str,
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{store}: cannot {op} {name}: {detail}")]
    Remote {
        store: String,
        op: &'static str,
        name: String,
        detail: String,
    },
    #[error("blob store configuration: {0}")]
    Config(String),
}

pub type Result<T, E = BlobStoreError> = std::result::Result<T, E>;

/// Immutable, content-named packs: put, ranged read, list, delete.
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` as pack `name`; durable when this returns. Putting a pack that
    /// is already there is a no-op (the name is the content). Takes the bytes, so a
    /// network store need not copy them.
    fn put(&self, name: &PackName, bytes: Vec<u8>) -> Result<()>;
    /// Bytes `range` of pack `name`, exactly (a shorter answer is an error).
    fn read_range(&self, name: &PackName, range: Range<u64>) -> Result<Vec<u8>>;
    /// Every pack in the store.
    fn list(&self) -> Result<Vec<StoredPack>>;
    /// Removes pack `name` (removing a missing pack is not an error).
    fn delete(&self, name: &PackName) -> Result<()>;
    /// Where the packs are, for messages: a directory or `s3://bucket/prefix`.
    fn describe(&self) -> String;
    /// True when a request costs far more than its bytes (a network store): readers
    /// then fetch ahead of the frame they need and keep what they fetched.
    fn is_remote(&self) -> bool {
        false
    }
}
