//! Fault injection for tests: damage a stored payload on purpose. Not used by the CLI.

use super::{Archive, Result};
use crate::blobstore::PackName;
use crate::metastore::{Change, MetaBatch};
use crate::model::Hash32;
use crate::records::PayloadKind;

impl Archive {
    /// Flips one bit in the pack frame holding the skeleton of `message`, at
    /// `offset_from_end` bytes before the frame's end (inside the compressed data).
    #[doc(hidden)]
    pub fn testing_flip_skeleton_byte(&self, message: &Hash32, offset_from_end: usize) -> Result<bool> {
        let Some(loc) = self.location(PayloadKind::Skeleton, message)? else {
            return Ok(false);
        };
        let end = (loc.frame_offset + loc.frame_len as u64) as usize;
        let at = end.saturating_sub(1 + offset_from_end).max(loc.frame_offset as usize);
        self.testing_damage_pack(loc.pack, at..at + 1, 0x10)
    }

    /// XORs bytes `at` of pack `number` with `xor`, wherever the pack is kept (a
    /// remote store gets the damaged bytes under the same name).
    #[doc(hidden)]
    pub fn testing_damage_pack(&self, number: u64, at: std::ops::Range<usize>, xor: u8) -> Result<bool> {
        let Some((_, rec)) = self.pack_records().into_iter().find(|(n, _)| *n == number) else {
            return Ok(false);
        };
        let name = PackName(rec.name);
        let mut bytes = self.blobs.read_range(&name, 0..rec.size)?;
        let Some(range) = bytes.get_mut(at) else {
            return Ok(false);
        };
        range.iter_mut().for_each(|b| *b ^= xor);
        if self.blobs.is_remote() {
            self.blobs.put(&name, bytes)?;
        } else {
            // The local store keeps a pack it already has; write over it here.
            let path = self.dir.join(name.object_path());
            std::fs::write(&path, bytes).map_err(|source| super::ArchiveError::Io { path, source })?;
        }
        self.frames.clear();
        self.ranges.clear();
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
