//! Reading back: rebuild a message byte-exact (hash-checked), resolve id prefixes,
//! list placements.

use std::ops::ControlFlow;

use super::{blob, Archive, ArchiveError, Result};
use crate::keys::PlacementKeyParts;
use crate::metastore::{collect_all, PlacementScope};
use crate::mime;
use crate::model::{hex_to_bytes, Hash32, MessageId};
use crate::records::{IngestEntry, MessageRecord, PayloadKind, PlacementRecord};

pub use crate::metastore::PlacementEntry;

/// Which placements to list.
#[derive(Clone, Debug, Default)]
pub struct PlacementFilter {
    pub accounts: Vec<String>,
    pub mailboxes: Vec<String>,
    /// Only placements of these messages (e.g. the matches of a search).
    pub messages: Option<std::collections::HashSet<MessageId>>,
}

impl PlacementFilter {
    fn matches(&self, p: &PlacementKeyParts, rec: &PlacementRecord) -> bool {
        (self.accounts.is_empty() || self.accounts.contains(&p.account))
            && (self.mailboxes.is_empty() || self.mailboxes.contains(&p.mailbox))
            && self.messages.as_ref().is_none_or(|m| m.contains(&rec.message))
    }
}

impl Archive {
    /// The stored record of a message, if it is archived.
    pub fn message_record(&self, id: &MessageId) -> Result<Option<MessageRecord>> {
        Ok(self.meta.message(id)?)
    }

    fn blob_payload(&self, kind: PayloadKind, id: &Hash32, owner: &MessageId) -> Result<Vec<u8>> {
        let damaged = |e: String| ArchiveError::Corrupt {
            id: owner.to_hex(),
            what: format!("{} {id}: {e}", kind.name()),
        };
        if let Some(loc) = self.location(kind, id)? {
            return self.read_located(&loc).map_err(damaged);
        }
        // Formats 1 and 2 (read as they are, or half-way through the upgrade).
        let v = self
            .meta
            .legacy_blob(kind, id)?
            .ok_or_else(|| damaged("is missing (not in any pack)".into()))?;
        blob::decode(&v, &self.dicts.read().unwrap_or_else(|p| p.into_inner())).map_err(damaged)
    }

    /// The part payload, checked against its id.
    pub(crate) fn part_payload(&self, part: &Hash32, owner: &MessageId) -> Result<Vec<u8>> {
        let p = self.blob_payload(PayloadKind::Part, part, owner)?;
        if self.ids.id(&p) != *part {
            return Err(ArchiveError::Corrupt {
                id: owner.to_hex(),
                what: format!("part {part} does not hash to its id"),
            });
        }
        Ok(p)
    }

    /// The message's raw bytes, rebuilt from skeleton and parts and checked against
    /// the id. Any damage is an error naming the message.
    pub fn get_raw(&self, id: &MessageId) -> Result<Vec<u8>> {
        let rec = self
            .message_record(id)?
            .ok_or_else(|| ArchiveError::NotFound(id.to_hex()))?;
        self.rebuild(id, &rec)
    }

    /// The message's header section (through the blank line that ends it, or all
    /// of it when there is none), from its skeleton alone: no part is read. Not
    /// checked against the id as [`Archive::get_raw`] is (the skeleton's own frame
    /// checksum still is): for work that reads headers only, such as threading.
    pub fn get_header(&self, id: &MessageId) -> Result<Vec<u8>> {
        let rec = self
            .message_record(id)?
            .ok_or_else(|| ArchiveError::NotFound(id.to_hex()))?;
        let mut skeleton = self.blob_payload(PayloadKind::Skeleton, id, id)?;
        // Before the first part's body, the skeleton holds the message's bytes
        // as they are; every body (the first included) starts after the header.
        if let Some(first) = rec.parts.first() {
            skeleton.truncate(
                usize::try_from(first.splice.offset)
                    .unwrap_or(usize::MAX)
                    .min(skeleton.len()),
            );
        }
        if let Some(end) = mime::body_start(&skeleton) {
            skeleton.truncate(end);
        }
        Ok(skeleton)
    }

    pub(crate) fn rebuild(&self, id: &MessageId, rec: &MessageRecord) -> Result<Vec<u8>> {
        let skeleton = self.blob_payload(PayloadKind::Skeleton, id, id)?;
        let payloads = rec
            .parts
            .iter()
            .map(|p| self.part_payload(&p.part, id))
            .collect::<Result<Vec<_>>>()?;
        let splices: Vec<mime::Splice> = rec.parts.iter().map(|p| p.splice.clone()).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let raw = mime::splice(&skeleton, &splices, &refs, rec.raw_len).map_err(|e| ArchiveError::Corrupt {
            id: id.to_hex(),
            what: format!("cannot rebuild: {e}"),
        })?;
        if self.ids.id(&raw) != *id {
            return Err(ArchiveError::Corrupt {
                id: id.to_hex(),
                what: "rebuilt bytes do not hash to the message id".into(),
            });
        }
        Ok(raw)
    }

    /// Resolves a full id or an unambiguous hex prefix (at least 4 characters).
    pub fn resolve(&self, prefix: &str) -> Result<MessageId> {
        let p = prefix.trim().to_ascii_lowercase();
        if p.len() < 4 || p.len() > 64 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ArchiveError::BadId(prefix.to_string()));
        }
        let even = &p[..p.len() / 2 * 2];
        let start = hex_to_bytes(even).unwrap_or_default();
        let mut found: Vec<MessageId> = Vec::new();
        self.meta
            .scan_ids(PayloadKind::Skeleton, &start, &mut |item| match item {
                Ok(h) if !h.0.starts_with(&start) => ControlFlow::Break(()),
                Ok(h) => {
                    if h.to_hex().starts_with(&p) {
                        found.push(h);
                    }
                    if found.len() > 1 {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                // A damaged key is no message; `verify` reports it.
                Err(_) => ControlFlow::Continue(()),
            })?;
        if found.len() > 1 {
            return Err(ArchiveError::Ambiguous {
                prefix: prefix.to_string(),
            });
        }
        found.pop().ok_or_else(|| ArchiveError::NotFound(prefix.to_string()))
    }

    /// Every placement matching `filter`, in key order (account, mailbox, source).
    pub fn placements(&self, filter: &PlacementFilter) -> Result<Vec<PlacementEntry>> {
        let scope = PlacementScope {
            account: match filter.accounts.as_slice() {
                [one] => Some(one.as_str()),
                _ => None,
            },
            ..PlacementScope::default()
        };
        let mut out = Vec::new();
        collect_all(
            |visit| self.meta.scan_placements(scope, visit),
            |e| {
                if filter.matches(&e.key, &e.record) {
                    out.push(e)
                }
            },
        )?;
        Ok(out)
    }

    /// The placements of one message.
    pub fn placements_of(&self, id: &MessageId) -> Result<Vec<PlacementEntry>> {
        Ok(self.meta.placements_of(id)?)
    }

    /// Up to `limit` ingest-log entries with sequence numbers from `from` on.
    pub fn ingest_log(&self, from: u64, limit: usize) -> Result<Vec<(u64, IngestEntry)>> {
        Ok(self.meta.ingest_log(from, limit)?)
    }

    /// Every message id, in id order (a damaged key is skipped: `verify` counts
    /// the messages against the counters).
    pub fn message_ids(&self) -> Result<Vec<MessageId>> {
        let mut out = Vec::with_capacity(self.counters().messages as usize);
        self.meta.scan_ids(PayloadKind::Skeleton, &[], &mut |item| {
            if let Ok(id) = item {
                out.push(id);
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}
