//! Fault injection for tests: damage a stored blob on purpose. Not used by the CLI.

use super::{Archive, Result};
use crate::keys;
use crate::model::Hash32;

impl Archive {
    /// Flips one bit of the stored skeleton blob of `message`, at `offset` bytes from
    /// the end of the value (inside the compressed data, past the header).
    #[doc(hidden)]
    pub fn testing_flip_skeleton_byte(&self, message: &Hash32, offset_from_end: usize) -> Result<bool> {
        let cf = self.cf(keys::CF_BLOBS);
        let key = keys::blob(keys::BLOB_SKELETON, message);
        let Some(mut v) = self.db.get_cf(cf, &key).map_err(|e| self.db_error(e))? else {
            return Ok(false);
        };
        let at = v
            .len()
            .saturating_sub(1 + offset_from_end)
            .max(crate::records::BLOB_HEADER_LEN);
        if at >= v.len() {
            return Ok(false);
        }
        v[at] ^= 0x10;
        self.db.put_cf(cf, &key, &v).map_err(|e| self.db_error(e))?;
        Ok(true)
    }

    /// Overwrites the format version stored inside the database (tests of refusal).
    #[doc(hidden)]
    pub fn testing_set_db_format_version(&self, version: u32) -> Result<()> {
        self.db
            .put_cf(self.cf(keys::CF_META), keys::META_FORMAT_VERSION, version.to_be_bytes())
            .map_err(|e| self.db_error(e))
    }
}
