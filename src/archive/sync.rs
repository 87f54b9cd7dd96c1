//! What remote sources need from the store besides new messages: per-folder cursors,
//! the placements of one IMAP folder, and changes to existing placements (flags,
//! deleted at source) — all committed in the same write batch as the messages they
//! belong with, so a cursor never runs ahead of what is stored.

use std::collections::HashMap;

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::{check_name, Archive, ArchiveError, Result};
use crate::keys;
use crate::model::{Flags, Hash32, MessageId, PlacementSpec, SourceKey};
use crate::records::{CursorRecord, IngestEntry, IngestKind, PlacementRecord, TooLargeRecord};

/// A change to a placement that already exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlacementChange {
    /// The server reports these flags now.
    Flags(Flags),
    /// The message is gone from the source (expunged, or its UIDVALIDITY retired).
    /// The message itself stays archived.
    DeletedAtSource,
}

/// One placement change, by the placement's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementUpdate {
    pub account: String,
    pub mailbox: String,
    pub source: SourceKey,
    pub change: PlacementChange,
}

/// A placement of a message the archive already holds, found without fetching its
/// bytes (Gmail's X-GM-MSGID named it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPlacement {
    pub message: MessageId,
    pub spec: PlacementSpec,
}

/// Everything besides messages that one commit carries.
#[derive(Clone, Debug, Default)]
pub struct SourceChanges {
    pub updates: Vec<PlacementUpdate>,
    /// (account, mailbox, new cursor).
    pub cursors: Vec<(String, String, CursorRecord)>,
    pub known: Vec<KnownPlacement>,
    /// (account, mailbox) whose cursor is dropped: the folder is gone from the
    /// server; should it come back, it is read again from the start.
    pub drop_cursors: Vec<(String, String)>,
    /// (account, Gmail X-GM-MSGID, message id) to remember.
    pub gmail_ids: Vec<(String, u64, MessageId)>,
    /// Messages left unarchived for being over the maximum message size.
    pub too_large: Vec<TooLargeSource>,
}

/// A message a source holds that is over the maximum message size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLargeSource {
    pub account: String,
    pub mailbox: String,
    pub source: SourceKey,
    pub record: TooLargeRecord,
}

/// One IMAP placement of a folder, as the sync executor needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapPlacement {
    pub uidvalidity: u32,
    pub uid: u32,
    pub message: MessageId,
    pub flags: Flags,
    pub deleted_at: Option<i64>,
}

/// What the archive knows of one POP3 placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pop3Placement {
    pub first_seen: i64,
    pub deleted_at: Option<i64>,
}

/// A mailbox's POP3 placements by UIDL.
pub type Pop3Placements = HashMap<String, Pop3Placement>;

/// Counts of what [`Archive::stage_changes`] did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ChangeCounts {
    pub flag_changes: u64,
    pub deleted_at_source: u64,
}

impl Archive {
    /// The stored cursor of one source folder.
    pub fn cursor(&self, account: &str, mailbox: &str) -> Result<Option<CursorRecord>> {
        let key = keys::cursor(account, mailbox);
        let Some(v) = self
            .db
            .get_cf(self.cf(keys::CF_CURSORS), &key)
            .map_err(|e| self.db_error(e))?
        else {
            return Ok(None);
        };
        CursorRecord::decode(&v)
            .map(Some)
            .map_err(|source| ArchiveError::Decode {
                key: format!("cursor of {account}/{mailbox}"),
                source,
            })
    }

    /// Calls `f` with every (key, value) of column family `cf` whose key starts with
    /// `prefix`, in key order.
    pub(crate) fn for_each_prefixed(
        &self,
        cf: &str,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let iter = self
            .db
            .iterator_cf(self.cf(cf), IteratorMode::From(prefix, Direction::Forward));
        for item in iter {
            let (k, v) = item.map_err(|e| self.db_error(e))?;
            if !k.starts_with(prefix) {
                break;
            }
            f(&k, &v)?;
        }
        Ok(())
    }

    /// The POP3 placements of one mailbox, by UIDL.
    pub fn pop3_placements(&self, account: &str, mailbox: &str) -> Result<Pop3Placements> {
        let mut prefix = keys::placement_prefix(account, Some(mailbox));
        prefix.push(keys::SRC_POP3);
        let mut out = HashMap::new();
        self.for_each_prefixed(keys::CF_PLACEMENTS, &prefix, |k, v| {
            let uidl = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let r = PlacementRecord::decode(v).map_err(|source| ArchiveError::Decode {
                key: format!("placement {account}/{mailbox} UIDL {uidl}"),
                source,
            })?;
            out.insert(
                uidl,
                Pop3Placement {
                    first_seen: r.first_seen,
                    deleted_at: r.deleted_at,
                },
            );
            Ok(())
        })?;
        Ok(out)
    }

    /// Every folder cursor of `account`: (mailbox, cursor), in mailbox order.
    pub fn cursors(&self, account: &str) -> Result<Vec<(String, CursorRecord)>> {
        let prefix = keys::placement_prefix(account, None);
        let mut out = Vec::new();
        self.for_each_prefixed(keys::CF_CURSORS, &prefix, |k, v| {
            let rest = &k[prefix.len()..];
            // Folder cursors are `mailbox NUL`; other entries (Gmail ids) start with NUL.
            let Some(mailbox) = rest.strip_suffix(&[0u8]).filter(|m| !m.is_empty() && !m.contains(&0)) else {
                return Ok(());
            };
            let mailbox = String::from_utf8_lossy(mailbox).into_owned();
            let c = CursorRecord::decode(v).map_err(|source| ArchiveError::Decode {
                key: format!("cursor of {account}/{mailbox}"),
                source,
            })?;
            out.push((mailbox, c));
            Ok(())
        })?;
        Ok(out)
    }

    /// The messages of `account`'s `mailbox` recorded as over the maximum size.
    pub fn too_large(&self, account: &str, mailbox: &str) -> Result<Vec<(SourceKey, TooLargeRecord)>> {
        let prefix = keys::too_large_prefix(account, mailbox);
        let mut out = Vec::new();
        self.for_each_prefixed(keys::CF_CURSORS, &prefix, |k, v| {
            let Some(source) = keys::parse_too_large_source(&k[prefix.len()..]) else {
                return Ok(());
            };
            let r = TooLargeRecord::decode(v).map_err(|source| ArchiveError::Decode {
                key: format!("too-large record of {account}/{mailbox}"),
                source,
            })?;
            out.push((source, r));
            Ok(())
        })?;
        Ok(out)
    }

    /// The archived message behind each Gmail X-GM-MSGID of `account` (`None` when not
    /// seen yet).
    pub fn gmail_messages(&self, account: &str, gm_ids: &[u64]) -> Result<Vec<Option<MessageId>>> {
        let cf = self.cf(keys::CF_CURSORS);
        let ks: Vec<Vec<u8>> = gm_ids.iter().map(|g| keys::gmail_message(account, *g)).collect();
        self.db
            .multi_get_cf(ks.iter().map(|k| (cf, k.as_slice())))
            .into_iter()
            .map(|r| {
                let v = r.map_err(|e| self.db_error(e))?;
                Ok(v.and_then(|v| <[u8; 32]>::try_from(&v[..]).ok()).map(Hash32))
            })
            .collect()
    }

    /// Every IMAP placement of one folder (all UIDVALIDITYs, live and deleted), in
    /// (UIDVALIDITY, UID) order.
    pub fn imap_placements(&self, account: &str, mailbox: &str) -> Result<Vec<ImapPlacement>> {
        let mut prefix = keys::placement_prefix(account, Some(mailbox));
        prefix.push(keys::SRC_IMAP);
        let mut out = Vec::new();
        self.for_each_prefixed(keys::CF_PLACEMENTS, &prefix, |k, v| {
            let Some(keys::PlacementKeyParts {
                source: SourceKey::Imap { uidvalidity, uid },
                ..
            }) = keys::parse_placement(k)
            else {
                return Err(ArchiveError::Corrupt {
                    id: "placements".into(),
                    what: format!("unparseable IMAP placement key in {account}/{mailbox}"),
                });
            };
            let r = PlacementRecord::decode(v).map_err(|source| ArchiveError::Decode {
                key: format!("placement {account}/{mailbox} uid {uid}"),
                source,
            })?;
            out.push(ImapPlacement {
                uidvalidity,
                uid,
                message: r.message,
                flags: r.flags,
                deleted_at: r.deleted_at,
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Adds placement changes and cursor writes to `wb`. Changes to placements that do
    /// not exist are ignored (the message was never archived from there).
    pub(crate) fn stage_changes(
        &self,
        changes: &SourceChanges,
        now: i64,
        wb: &mut WriteBatch,
        next_seq: &mut u64,
    ) -> Result<ChangeCounts> {
        let pcf = self.cf(keys::CF_PLACEMENTS);
        let log = self.cf(keys::CF_INGEST_LOG);
        let mut counts = ChangeCounts::default();
        for u in &changes.updates {
            check_name("account", &u.account)?;
            check_name("mailbox", &u.mailbox)?;
            // The message id is not part of IMAP/POP3 placement keys.
            let key = keys::placement(&u.account, &u.mailbox, &u.source, &crate::model::Hash32([0; 32]));
            let Some(v) = self.db.get_cf(pcf, &key).map_err(|e| self.db_error(e))? else {
                continue;
            };
            let mut rec = PlacementRecord::decode(&v).map_err(|source| ArchiveError::Decode {
                key: format!("placement {}/{} {:?}", u.account, u.mailbox, u.source),
                source,
            })?;
            match &u.change {
                PlacementChange::Flags(f) => {
                    if &rec.flags == f {
                        continue;
                    }
                    rec.flags = f.clone();
                    rec.last_seen = now;
                    counts.flag_changes += 1;
                }
                PlacementChange::DeletedAtSource => {
                    if rec.deleted_at.is_some() {
                        continue;
                    }
                    rec.deleted_at = Some(now);
                    counts.deleted_at_source += 1;
                }
            }
            wb.put_cf(pcf, &key, rec.encode());
            let entry = IngestEntry {
                kind: IngestKind::Placement,
                message: rec.message,
            };
            wb.put_cf(log, keys::ingest_seq(*next_seq), entry.encode());
            *next_seq += 1;
        }
        let ccf = self.cf(keys::CF_CURSORS);
        for (account, mailbox, c) in &changes.cursors {
            check_name("account", account)?;
            check_name("mailbox", mailbox)?;
            wb.put_cf(ccf, keys::cursor(account, mailbox), c.encode());
        }
        for (account, mailbox) in &changes.drop_cursors {
            wb.delete_cf(ccf, keys::cursor(account, mailbox));
        }
        for (account, gm, id) in &changes.gmail_ids {
            check_name("account", account)?;
            wb.put_cf(ccf, keys::gmail_message(account, *gm), id.0);
        }
        for t in &changes.too_large {
            check_name("account", &t.account)?;
            check_name("mailbox", &t.mailbox)?;
            wb.put_cf(
                ccf,
                keys::too_large(&t.account, &t.mailbox, &t.source),
                t.record.encode(),
            );
        }
        Ok(counts)
    }
}
