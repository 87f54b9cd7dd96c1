//! User tags (format 5) as the archive keeps them: in the metadata, by message
//! and by tag, never in a message's bytes. Tags annotate; they change nothing the
//! archive holds, so their batches add no change-log record. What a tag may be is
//! [`crate::tags`]'s.

use std::collections::BTreeSet;

use super::error::{ArchiveError, Result};
use super::Archive;
use crate::metastore::{Change, MetaBatch};
use crate::model::MessageId;
use crate::tags::{self, Tag};

/// Messages whose tags one batch changes, at most.
const BATCH: usize = 10_000;

impl Archive {
    /// A message's tags.
    pub fn tags_of(&self, id: &MessageId) -> Result<BTreeSet<Tag>> {
        Ok(self.meta.tags_of(std::slice::from_ref(id))?.pop().unwrap_or_default())
    }

    /// Each message's tags.
    pub fn tags_of_many(&self, ids: &[MessageId]) -> Result<Vec<BTreeSet<Tag>>> {
        Ok(self.meta.tags_of(ids)?)
    }

    /// The messages with `tag`, in id order.
    pub fn tagged(&self, tag: &Tag) -> Result<Vec<MessageId>> {
        Ok(self.meta.tagged(tag)?)
    }

    /// Every tag in use, with how many messages carry it.
    pub fn tag_counts(&self) -> Result<Vec<(Tag, u64)>> {
        Ok(self.meta.tag_counts()?)
    }

    /// Applies `changes` to each of `ids` (archived messages; others are an
    /// error naming them), a batch of up to 10,000 messages at a time, each
    /// atomic; returns how many messages' tags changed.
    pub fn change_tags(&self, ids: &[MessageId], changes: &[tags::Change]) -> Result<u64> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = 0;
        for chunk in ids.chunks(BATCH) {
            let mut batch = MetaBatch::default();
            for (id, was) in chunk.iter().zip(self.meta.tags_of(chunk)?) {
                let tags = tags::apply(&was, changes).map_err(|source| ArchiveError::Tags {
                    message: id.to_hex(),
                    source,
                })?;
                if tags != was {
                    if self.meta.message(id)?.is_none() {
                        return Err(ArchiveError::NotFound(id.to_hex()));
                    }
                    batch.push(Change::Tags {
                        message: *id,
                        tags,
                        was,
                    });
                }
            }
            changed += batch.len() as u64;
            if !batch.is_empty() {
                self.commit(batch)?;
            }
        }
        Ok(changed)
    }
}
