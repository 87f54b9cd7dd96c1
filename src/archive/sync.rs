//! What remote sources need from the store besides new messages: per-folder cursors,
//! the placements of one IMAP folder, and changes to existing placements (flags,
//! deleted at source) — all committed in the same write batch as the messages they
//! belong with, so a cursor never runs ahead of what is stored.

use std::collections::HashMap;

use super::{check_name, Archive, Result};
use crate::metastore::{collect_all, Change, MetaBatch, PlacementKey, PlacementScope, SourceKind};
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
        Ok(self.meta.cursor(account, mailbox)?)
    }

    /// The placements of one mailbox from one kind of source, in key order.
    fn folder_placements(
        &self,
        account: &str,
        mailbox: &str,
        kind: SourceKind,
    ) -> Result<Vec<(SourceKey, PlacementRecord)>> {
        let scope = PlacementScope {
            account: Some(account),
            mailbox: Some(mailbox),
            source: Some(kind),
        };
        let mut out = Vec::new();
        collect_all(
            |visit| self.meta.scan_placements(scope, visit),
            |e| out.push((e.key.source, e.record)),
        )?;
        Ok(out)
    }

    /// The POP3 placements of one mailbox, by UIDL.
    pub fn pop3_placements(&self, account: &str, mailbox: &str) -> Result<Pop3Placements> {
        let mut out = HashMap::new();
        for (source, r) in self.folder_placements(account, mailbox, SourceKind::Pop3)? {
            if let SourceKey::Pop3 { uidl } = source {
                let p = Pop3Placement {
                    first_seen: r.first_seen,
                    deleted_at: r.deleted_at,
                };
                out.insert(uidl, p);
            }
        }
        Ok(out)
    }

    /// Every folder cursor of `account`: (mailbox, cursor), in mailbox order.
    pub fn cursors(&self, account: &str) -> Result<Vec<(String, CursorRecord)>> {
        Ok(self.meta.cursors(account)?)
    }

    /// The messages of `account`'s `mailbox` recorded as over the maximum size.
    pub fn too_large(&self, account: &str, mailbox: &str) -> Result<Vec<(SourceKey, TooLargeRecord)>> {
        Ok(self.meta.too_large(account, mailbox)?)
    }

    /// The archived message behind each Gmail X-GM-MSGID of `account` (`None` when not
    /// seen yet).
    pub fn gmail_messages(&self, account: &str, gm_ids: &[u64]) -> Result<Vec<Option<MessageId>>> {
        Ok(self.meta.gmail_messages(account, gm_ids)?)
    }

    /// Every IMAP placement of one folder (all UIDVALIDITYs, live and deleted), in
    /// (UIDVALIDITY, UID) order.
    pub fn imap_placements(&self, account: &str, mailbox: &str) -> Result<Vec<ImapPlacement>> {
        let placements = self.folder_placements(account, mailbox, SourceKind::Imap)?;
        Ok(placements
            .into_iter()
            .filter_map(|(source, r)| match source {
                SourceKey::Imap { uidvalidity, uid } => Some(ImapPlacement {
                    uidvalidity,
                    uid,
                    message: r.message,
                    flags: r.flags,
                    deleted_at: r.deleted_at,
                }),
                _ => None,
            })
            .collect())
    }

    /// Adds placement changes and cursor writes to `batch`. Changes to placements
    /// that do not exist are ignored (the message was never archived from there).
    pub(crate) fn stage_changes(
        &self,
        changes: &SourceChanges,
        now: i64,
        batch: &mut MetaBatch,
        next_seq: &mut u64,
    ) -> Result<ChangeCounts> {
        let counts = self.stage_updates(&changes.updates, now, batch, next_seq)?;
        for (account, mailbox, c) in &changes.cursors {
            check_name("account", account)?;
            check_name("mailbox", mailbox)?;
            batch.push(Change::Cursor {
                account: account.clone(),
                mailbox: mailbox.clone(),
                cursor: c.clone(),
            });
        }
        for (account, mailbox) in &changes.drop_cursors {
            batch.push(Change::DropCursor {
                account: account.clone(),
                mailbox: mailbox.clone(),
            });
        }
        for (account, gm, id) in &changes.gmail_ids {
            check_name("account", account)?;
            batch.push(Change::GmailMessage {
                account: account.clone(),
                gm_msgid: *gm,
                message: *id,
            });
        }
        for t in &changes.too_large {
            check_name("account", &t.account)?;
            check_name("mailbox", &t.mailbox)?;
            batch.push(Change::TooLarge {
                account: t.account.clone(),
                mailbox: t.mailbox.clone(),
                source: t.source.clone(),
                record: t.record,
            });
        }
        Ok(counts)
    }

    /// Flag changes and deletions at source, each with an ingest-log entry.
    fn stage_updates(
        &self,
        updates: &[PlacementUpdate],
        now: i64,
        batch: &mut MetaBatch,
        next_seq: &mut u64,
    ) -> Result<ChangeCounts> {
        let mut counts = ChangeCounts::default();
        for u in updates {
            check_name("account", &u.account)?;
            check_name("mailbox", &u.mailbox)?;
        }
        // The message id is not part of IMAP/POP3 placement identities.
        let keys: Vec<PlacementKey> = updates
            .iter()
            .map(|u| PlacementKey::new(&u.account, &u.mailbox, &u.source, &Hash32([0; 32])))
            .collect();
        let current = self.meta.placements_get(&keys)?;
        for ((u, key), rec) in updates.iter().zip(keys).zip(current) {
            let Some(mut rec) = rec else {
                continue;
            };
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
            batch.push(Change::LogEntry {
                seq: *next_seq,
                entry: IngestEntry {
                    kind: IngestKind::Placement,
                    message: rec.message,
                },
            });
            *next_seq += 1;
            batch.push(Change::Placement {
                key,
                record: rec,
                replaces: None,
            });
        }
        Ok(counts)
    }
}
