//! The archive's metadata behind one narrow interface: [`MetaStore`].
//!
//! Everything the archive knows besides the message bytes — which messages and
//! parts it holds, where each payload is in which pack, the placements, the source
//! cursors, the ingest log, the replay ledger, the counters and dictionaries — is
//! read through the typed operations of [`MetaStore`] and written by
//! [`MetaStore::commit`], which applies one [`MetaBatch`] atomically and durably.
//!
//! The operations are shaped by what `archive` needs and nothing else: point reads
//! of typed records, batched existence checks, ordered scans with a visitor, and
//! one commit. No key layout, column family or RocksDB type crosses it, so a SQL
//! implementation (one table per record kind, one transaction per batch) fits the
//! same trait, and pull, replay, import and search code never see which one runs.
//!
//! Implementations: [`KvMeta`] over a [`KvEngine`] — [`RocksMeta`] (RocksDB,
//! embedded; layout in `schemas/store-v5.toml`) and [`PgMeta`] (PostgreSQL,
//! shared; `schemas/postgres/`), the same records in both. What any
//! implementation must do is written down as the checks of [`contract`], which
//! each implementation's tests run. [`leases`]: accounts leased to workers.

#[doc(hidden)]
pub mod contract;
mod kv;
pub mod leases;
mod pg_tls;
mod pgpass;
mod postgres;
mod rocks;

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use thiserror::Error;

use crate::codec::DecodeError;
use crate::evidence::{CheckpointRecord, Expiry, LogRecord, RuleKind, RuleRecord};
use crate::keys::PlacementKeyParts;
use crate::model::{Hash32, MessageId, PartId, SourceKey};
use crate::records::{
    BlobLocation, Counters, CursorRecord, IngestEntry, LedgerRecord, MessageRecord, PackRecord, PartRecord,
    PayloadKind, PlacementRecord, TooLargeRecord,
};
use crate::tags::Tag;

pub use kv::{KvEngine, KvMeta, KvOp, KvOps, RawVisit};
pub use postgres::{is_postgres_url, parse_url as parse_postgres_url, PgKv, PgMeta};
pub use rocks::{OpenMode, RocksKv, RocksMeta};

/// Errors of a metadata store. Each names the store (and the record, where one is
/// at fault).
#[derive(Debug, Error)]
pub enum MetaError {
    #[error("{store}: {op} failed: {source}")]
    Backend {
        store: String,
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{store} is in use by another mailvault process")]
    Locked { store: String },
    #[error(
        "{store} has one writer: several writers (workers) need the metadata in PostgreSQL \
         (`mailvault init --meta postgres://…`)"
    )]
    OneWriter { store: String },
    #[error("{store} was opened read-only")]
    ReadOnly { store: String },
    #[error("{store} has a table this mailvault does not know, {name:?} (written by a newer mailvault?)")]
    UnknownTable { store: String, name: String },
    #[error("{store} has schema version {found}; this mailvault knows up to {known} (written by a newer mailvault?)")]
    NewerSchema { store: String, found: usize, known: usize },
    #[error("stored record {key}: {source}")]
    Decode {
        key: String,
        #[source]
        source: DecodeError,
    },
    #[error("stored record in {table}: {what}")]
    Corrupt { table: &'static str, what: String },
}

pub type Result<T, E = MetaError> = std::result::Result<T, E>;

/// A placement's identity: its folder and the source's name for the message there.
/// A local source has no name for a message but its bytes, so there the message id
/// is part of the identity; for IMAP and POP3 it is not (and is kept as zeros, so
/// that equal identities compare equal).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PlacementKey {
    folder: PlacementKeyParts,
    message: Hash32,
}

impl PlacementKey {
    /// The identity of `message`'s placement at `source` in `account`/`mailbox`.
    pub fn new(account: &str, mailbox: &str, source: &SourceKey, message: &MessageId) -> Self {
        let message = match source {
            SourceKey::Local { .. } => *message,
            SourceKey::Imap { .. } | SourceKey::Pop3 { .. } => Hash32([0; 32]),
        };
        PlacementKey {
            folder: PlacementKeyParts {
                account: account.to_string(),
                mailbox: mailbox.to_string(),
                source: source.clone(),
            },
            message,
        }
    }

    pub fn parts(&self) -> &PlacementKeyParts {
        &self.folder
    }

    /// The message id the identity includes (zeros unless the source is local).
    pub fn message(&self) -> &Hash32 {
        &self.message
    }
}

/// One placement read back.
#[derive(Clone, Debug)]
pub struct PlacementEntry {
    pub key: PlacementKeyParts,
    pub record: PlacementRecord,
}

/// The kinds of source a placement can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Local,
    Imap,
    Pop3,
}

impl SourceKind {
    pub fn of(source: &SourceKey) -> SourceKind {
        match source {
            SourceKey::Local { .. } => SourceKind::Local,
            SourceKey::Imap { .. } => SourceKind::Imap,
            SourceKey::Pop3 { .. } => SourceKind::Pop3,
        }
    }
}

/// Which placements a scan visits. Narrower scopes are cheaper; entries come in
/// (account, mailbox, source) order.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlacementScope<'a> {
    pub account: Option<&'a str>,
    /// Only with `account`.
    pub mailbox: Option<&'a str>,
    /// Only with `mailbox`.
    pub source: Option<SourceKind>,
}

/// A visitor of a scan: gets each item (or the error reading it, so that `verify`
/// can report a damaged record and go on) and says whether to continue.
pub type Visit<'v, T> = &'v mut dyn FnMut(Result<T>) -> ControlFlow<()>;

/// One change in a [`MetaBatch`].
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    FormatVersion(u32),
    Counters(Counters),
    Dictionary {
        id: u32,
        bytes: Vec<u8>,
    },
    NextPack(u64),
    Pack {
        number: u64,
        record: PackRecord,
    },
    DropPack(u64),
    Location {
        kind: PayloadKind,
        id: Hash32,
        location: BlobLocation,
    },
    DropLocation {
        kind: PayloadKind,
        id: Hash32,
    },
    Message {
        id: MessageId,
        record: MessageRecord,
    },
    Part {
        id: PartId,
        record: PartRecord,
    },
    /// Writes a placement. `replaces` is the message the placement pointed to
    /// before, when a source reused its identity for other bytes.
    Placement {
        key: PlacementKey,
        record: PlacementRecord,
        replaces: Option<MessageId>,
    },
    LogEntry {
        seq: u64,
        entry: IngestEntry,
    },
    Cursor {
        account: String,
        mailbox: String,
        cursor: CursorRecord,
    },
    DropCursor {
        account: String,
        mailbox: String,
    },
    GmailMessage {
        account: String,
        gm_msgid: u64,
        message: MessageId,
    },
    TooLarge {
        account: String,
        mailbox: String,
        source: SourceKey,
        record: TooLargeRecord,
    },
    Ledger {
        target: String,
        mailbox: String,
        message: MessageId,
        copy: u32,
        record: LedgerRecord,
    },
    /// Format 2's payload blob, moved into a pack by the upgrade.
    DropLegacyBlob {
        kind: PayloadKind,
        id: Hash32,
    },
    /// `purge`: a message record, a part record, a placement (with its message,
    /// for the reverse index).
    DropMessage {
        id: MessageId,
        /// Why retention let it go (for the change log; stores ignore it).
        why: Option<Expiry>,
    },
    DropPart(PartId),
    DropPlacement {
        key: PlacementKey,
        message: MessageId,
    },
    /// A retention policy or legal hold set (replacing one of the same name) or
    /// removed.
    Rule {
        kind: RuleKind,
        name: String,
        record: RuleRecord,
    },
    DropRule {
        kind: RuleKind,
        name: String,
    },
    /// The change log's record `seq`.
    ChangeLog {
        seq: u64,
        record: LogRecord,
    },
    Checkpoint(CheckpointRecord),
    /// The public key that verifies checkpoints (set once, when the log begins).
    SigningKey([u8; 32]),
    /// A message's tags become `tags` (none: the record goes); `was` is what it
    /// had, for the by-tag entries to drop.
    Tags {
        message: MessageId,
        tags: BTreeSet<Tag>,
        was: BTreeSet<Tag>,
    },
}

/// Changes committed together: all or none, durable when [`MetaStore::commit`]
/// returns. Later changes to the same record win.
#[derive(Clone, Debug, Default)]
pub struct MetaBatch {
    changes: Vec<Change>,
}

impl MetaBatch {
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }
}

/// The archive's metadata. Synchronous: async callers reach it only through the
/// writer thread or `spawn_blocking`. Readers may run on many threads at once;
/// [`MetaStore::commit`] calls come from one writer at a time (the archive's write
/// lock).
pub trait MetaStore: Send + Sync {
    /// Names the store in messages (e.g. `metadata (RocksDB) at /srv/a/db`).
    fn describe(&self) -> String;

    // Archive-wide records.
    fn format_version(&self) -> Result<Option<u32>>;
    fn counters(&self) -> Result<Option<Counters>>;
    /// Every trained dictionary: (id, bytes), in id order.
    fn dictionaries(&self) -> Result<Vec<(u32, Vec<u8>)>>;
    fn next_pack(&self) -> Result<Option<u64>>;
    /// Every pack the archive references: (number, record), in number order.
    fn packs(&self) -> Result<Vec<(u64, PackRecord)>>;
    fn pack(&self, number: u64) -> Result<Option<PackRecord>>;

    // Messages, parts and where their payloads are.
    fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>>;
    /// For each id, whether a message (`Skeleton`) or part (`Part`) record exists.
    fn have(&self, kind: PayloadKind, ids: &[Hash32]) -> Result<Vec<bool>>;
    /// Message or part ids in byte order, from the first at or after `from`.
    fn scan_ids(&self, kind: PayloadKind, from: &[u8], visit: Visit<'_, Hash32>) -> Result<()>;
    fn location(&self, kind: PayloadKind, id: &Hash32) -> Result<Option<BlobLocation>>;
    /// Every pack index entry.
    fn scan_locations(&self, visit: Visit<'_, (PayloadKind, Hash32, BlobLocation)>) -> Result<()>;

    // Placements.
    fn placements_get(&self, keys: &[PlacementKey]) -> Result<Vec<Option<PlacementRecord>>>;
    fn scan_placements(&self, scope: PlacementScope<'_>, visit: Visit<'_, PlacementEntry>) -> Result<()>;
    fn placements_of(&self, id: &MessageId) -> Result<Vec<PlacementEntry>>;

    // What sources need.
    fn cursor(&self, account: &str, mailbox: &str) -> Result<Option<CursorRecord>>;
    /// Every folder cursor of `account`: (mailbox, cursor), in mailbox order.
    fn cursors(&self, account: &str) -> Result<Vec<(String, CursorRecord)>>;
    fn too_large(&self, account: &str, mailbox: &str) -> Result<Vec<(SourceKey, TooLargeRecord)>>;
    fn gmail_messages(&self, account: &str, gm_msgids: &[u64]) -> Result<Vec<Option<MessageId>>>;

    /// Up to `limit` ingest-log entries with sequence numbers from `from` on.
    fn ingest_log(&self, from: u64, limit: usize) -> Result<Vec<(u64, IngestEntry)>>;
    /// The replay ledger of one target mailbox.
    fn ledger(&self, target: &str, mailbox: &str) -> Result<HashMap<(MessageId, u32), LedgerRecord>>;

    // Compliance (format 4).
    /// The rules of `kind`: (name, record), in name order.
    fn rules(&self, kind: RuleKind) -> Result<Vec<(String, RuleRecord)>>;
    /// Up to `limit` change-log records with sequence numbers from `from` on.
    fn change_log(&self, from: u64, limit: usize) -> Result<Vec<(u64, LogRecord)>>;
    /// The last change-log record.
    fn last_change(&self) -> Result<Option<(u64, LogRecord)>>;
    /// Every checkpoint, by count.
    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>>;
    fn signing_key(&self) -> Result<Option<[u8; 32]>>;

    // Tags (format 5).
    /// Each message's tags (none when it has none, or the store predates tags).
    fn tags_of(&self, ids: &[MessageId]) -> Result<Vec<BTreeSet<Tag>>>;
    /// The messages with `tag`, in id order.
    fn tagged(&self, tag: &Tag) -> Result<Vec<MessageId>>;
    /// Every tag in use and how many messages carry it, in tag order.
    fn tag_counts(&self) -> Result<Vec<(Tag, u64)>>;

    // Formats 1 and 2 kept payloads as blob records in the metadata; only a store
    // that was once of those formats has any.
    /// A format-2 payload blob (its stored value: header and body).
    fn legacy_blob(&self, _kind: PayloadKind, _id: &Hash32) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    /// Format-2 blobs after `after` (all when `None`), in key order. `false` when
    /// there is no blob table at all.
    fn scan_legacy_blobs(
        &self,
        _after: Option<(PayloadKind, Hash32)>,
        _visit: Visit<'_, (PayloadKind, Hash32, Vec<u8>)>,
    ) -> Result<bool> {
        Ok(false)
    }
    /// Removes the (emptied) format-2 blob table.
    fn drop_legacy_blobs(&mut self) -> Result<()> {
        Ok(())
    }

    /// Applies `batch` atomically and durably.
    fn commit(&self, batch: MetaBatch) -> Result<()>;
    /// A store opened [`OpenMode::Shared`]: waits for this writer's turn among all
    /// writers of the store and holds it until the [`Turn`] is dropped (no other
    /// writer commits meanwhile, so what the writer reads in its turn stays the
    /// newest). `None` for a store with one writer, which needs no turns.
    fn turn(&self) -> Result<Option<Turn<'_>>> {
        Ok(None)
    }
    /// Writes buffered data out, so that the size on disk is the data's.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// One writer's turn among the writers of a shared store ([`MetaStore::turn`]),
/// given back when dropped.
pub struct Turn<'a>(#[allow(dead_code)] Box<dyn Held + 'a>);

/// Anything a [`Turn`] keeps until it is dropped.
pub trait Held {}
impl<T> Held for T {}

impl<'a> Turn<'a> {
    pub fn new(held: impl Held + 'a) -> Self {
        Turn(Box::new(held))
    }
}

/// Up to `limit` message or part ids in byte order from `from` (see
/// [`MetaStore::scan_ids`]), stopping at the first error.
pub fn ids_from(store: &dyn MetaStore, kind: PayloadKind, from: &[u8], limit: usize) -> Result<Vec<Hash32>> {
    let mut ids = Vec::new();
    let mut failed = None;
    store.scan_ids(kind, from, &mut |item| {
        match item {
            Ok(id) => ids.push(id),
            Err(e) => failed = Some(e),
        }
        if failed.is_some() || ids.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    failed.map_or(Ok(ids), Err)
}

/// Stops a scan at the first error and returns it: for callers that do not go on
/// past damage.
pub fn collect_all<T>(scan: impl FnOnce(Visit<'_, T>) -> Result<()>, mut each: impl FnMut(T)) -> Result<()> {
    let mut failed = None;
    scan(&mut |item| match item {
        Ok(v) => {
            each(v);
            ControlFlow::Continue(())
        }
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    })?;
    failed.map_or(Ok(()), Err)
}
