//! Reading back: rebuild a message byte-exact (hash-checked), resolve id prefixes,
//! list placements.

use rocksdb::{Direction, IteratorMode};

use super::{blob, Archive, ArchiveError, Result};
use crate::keys::{self, PlacementKeyParts};
use crate::mime;
use crate::model::{hex_to_bytes, Hash32, MessageId};
use crate::records::{IngestEntry, MessageRecord, PlacementRecord};

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

/// One placement with its key parts decoded.
#[derive(Clone, Debug)]
pub struct PlacementEntry {
    pub key: PlacementKeyParts,
    pub record: PlacementRecord,
}

impl Archive {
    /// The stored record of a message, if it is archived.
    pub fn message_record(&self, id: &MessageId) -> Result<Option<MessageRecord>> {
        let v = self
            .db
            .get_cf(self.cf(keys::CF_MESSAGES), keys::by_hash(id))
            .map_err(|e| self.db_error(e))?;
        v.map(|v| MessageRecord::decode(&v))
            .transpose()
            .map_err(|source| ArchiveError::Decode {
                key: format!("messages/{id}"),
                source,
            })
    }

    fn blob_payload(&self, kind: u8, id: &Hash32, owner: &MessageId) -> Result<Vec<u8>> {
        let what = if kind == keys::BLOB_PART { "part" } else { "skeleton" };
        let damaged = |e: String| ArchiveError::Corrupt {
            id: owner.to_hex(),
            what: format!("{what} {id}: {e}"),
        };
        if let Some(loc) = self.location(kind, id)? {
            return self.read_located(&loc).map_err(damaged);
        }
        // Formats 1 and 2 (read as they are, or half-way through the upgrade).
        let legacy = match self.cf_opt(keys::CF_BLOBS) {
            Some(cf) => self.db.get_cf(cf, keys::blob(kind, id)).map_err(|e| self.db_error(e))?,
            None => None,
        };
        let v = legacy.ok_or_else(|| damaged("is missing (not in any pack)".into()))?;
        blob::decode(&v, &self.dicts.read().unwrap_or_else(|p| p.into_inner())).map_err(damaged)
    }

    /// The part payload, checked against its id.
    pub(crate) fn part_payload(&self, part: &Hash32, owner: &MessageId) -> Result<Vec<u8>> {
        let p = self.blob_payload(keys::BLOB_PART, part, owner)?;
        if Hash32::of(&p) != *part {
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

    pub(crate) fn rebuild(&self, id: &MessageId, rec: &MessageRecord) -> Result<Vec<u8>> {
        let skeleton = self.blob_payload(keys::BLOB_SKELETON, id, id)?;
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
        if Hash32::of(&raw) != *id {
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
        let mut found: Option<MessageId> = None;
        let iter = self.db.iterator_cf(
            self.cf(keys::CF_MESSAGES),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (k, _) = item.map_err(|e| self.db_error(e))?;
            if !k.starts_with(&start) {
                break;
            }
            let Ok(arr) = <[u8; 32]>::try_from(&k[..]) else {
                continue;
            };
            let h = Hash32(arr);
            if h.to_hex().starts_with(&p) {
                if found.is_some() {
                    return Err(ArchiveError::Ambiguous {
                        prefix: prefix.to_string(),
                    });
                }
                found = Some(h);
            }
        }
        found.ok_or_else(|| ArchiveError::NotFound(prefix.to_string()))
    }

    /// Every placement matching `filter`, in key order (account, mailbox, source).
    pub fn placements(&self, filter: &PlacementFilter) -> Result<Vec<PlacementEntry>> {
        let mut out = Vec::new();
        let prefix = match filter.accounts.as_slice() {
            [one] => keys::placement_prefix(one, None),
            _ => Vec::new(),
        };
        self.for_each_prefixed(keys::CF_PLACEMENTS, &prefix, |k, v| {
            let key = keys::parse_placement(k).ok_or_else(|| ArchiveError::Corrupt {
                id: "placements".into(),
                what: format!("unparseable placement key {:?}", String::from_utf8_lossy(k)),
            })?;
            let record = PlacementRecord::decode(v).map_err(|source| ArchiveError::Decode {
                key: format!("placement {}/{}", key.account, key.mailbox),
                source,
            })?;
            if filter.matches(&key, &record) {
                out.push(PlacementEntry { key, record });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The placements of one message.
    pub fn placements_of(&self, id: &MessageId) -> Result<Vec<PlacementEntry>> {
        let rcf = self.cf(keys::CF_PLACEMENTS_BY_MESSAGE);
        let pcf = self.cf(keys::CF_PLACEMENTS);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(rcf, IteratorMode::From(&id.0, Direction::Forward)) {
            let (k, _) = item.map_err(|e| self.db_error(e))?;
            if !k.starts_with(&id.0) {
                break;
            }
            let pkey = &k[32..];
            let Some(v) = self.db.get_cf(pcf, pkey).map_err(|e| self.db_error(e))? else {
                continue;
            };
            let (Some(key), Ok(record)) = (keys::parse_placement(pkey), PlacementRecord::decode(&v)) else {
                continue;
            };
            out.push(PlacementEntry { key, record });
        }
        Ok(out)
    }

    /// Up to `limit` ingest-log entries with sequence numbers from `from` on.
    pub fn ingest_log(&self, from: u64, limit: usize) -> Result<Vec<(u64, IngestEntry)>> {
        let start = keys::ingest_seq(from);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(keys::CF_INGEST_LOG),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, v) = item.map_err(|e| self.db_error(e))?;
            let seq = <[u8; 8]>::try_from(&k[..])
                .map(u64::from_be_bytes)
                .map_err(|_| ArchiveError::Corrupt {
                    id: "ingest_log".into(),
                    what: format!("key of {} bytes", k.len()),
                })?;
            let entry = IngestEntry::decode(&v).map_err(|source| ArchiveError::Decode {
                key: format!("ingest_log/{seq}"),
                source,
            })?;
            out.push((seq, entry));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Every message id, in id order.
    pub fn message_ids(&self) -> Result<Vec<MessageId>> {
        let mut out = Vec::with_capacity(self.counters().messages as usize);
        for item in self.db.iterator_cf(self.cf(keys::CF_MESSAGES), IteratorMode::Start) {
            let (k, _) = item.map_err(|e| self.db_error(e))?;
            if let Ok(arr) = <[u8; 32]>::try_from(&k[..]) {
                out.push(Hash32(arr));
            }
        }
        Ok(out)
    }
}
