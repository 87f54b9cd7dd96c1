//! Fault injection for tests: damage a stored payload on purpose. Not used by the CLI.

use super::{Archive, Result};
use crate::metastore::{Change, MetaBatch};
use crate::model::Hash32;
use crate::records::PayloadKind;

impl Archive {
    /// Flips one bit in the pack frame holding the skeleton of `message`, at
    /// `offset_from_end` bytes before the frame's end (inside the compressed data).
    /// Only for packs kept locally.
    #[doc(hidden)]
    pub fn testing_flip_skeleton_byte(&self, message: &Hash32, offset_from_end: usize) -> Result<bool> {
        let Some(loc) = self.location(PayloadKind::Skeleton, message)? else {
            return Ok(false);
        };
        let Some(rec) = self
            .pack_records()
            .into_iter()
            .find(|(n, _)| *n == loc.pack)
            .map(|(_, r)| r)
        else {
            return Ok(false);
        };
        let path = self.dir.join(crate::blobstore::PackName(rec.name).object_path());
        let Ok(mut bytes) = std::fs::read(&path) else {
            return Ok(false);
        };
        let end = (loc.frame_offset + loc.frame_len as u64) as usize;
        let at = end.saturating_sub(1 + offset_from_end).max(loc.frame_offset as usize);
        bytes[at] ^= 0x10;
        std::fs::write(&path, bytes).map_err(|source| super::ArchiveError::Io { path, source })?;
        self.frames.clear();
        Ok(true)
    }

    /// Overwrites the format version stored inside the database (tests of refusal).
    #[doc(hidden)]
    pub fn testing_set_db_format_version(&self, version: u32) -> Result<()> {
        let mut batch = MetaBatch::default();
        batch.push(Change::FormatVersion(version));
        self.commit(batch)
    }
}
