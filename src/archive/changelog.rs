//! The change log (format 4): every committed batch that changes what the archive
//! holds — messages, placements, parts removed, retention policies and holds —
//! carries a [`ChangeRecord`] derived from the batch itself, hash-chained to the
//! record before it and covered by a checkpoint signed with the archive's key, in
//! the same atomic commit. Batches that only move bytes (compaction, the format
//! upgrade's moves), advance cursors or count carry none.
//!
//! `verify --chain` ([`Archive::verify_chain`]) walks the log from the start:
//! every record must follow the one before it, every checkpoint must match the
//! chain and verify with the archive's public key, and the messages the log says
//! the archive holds must be exactly the messages it holds.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::error::{ArchiveError, Result};
use super::signing::{self, Signer};
use super::Archive;
use crate::chain::{self, ChainProblem, Checkpoint, Stored};
use crate::evidence::{Cause, ChangeRecord, CheckpointRecord, Expiry, Item, LogRecord, RuleKind};
use crate::metastore::{collect_all, ids_from, Change, MetaBatch};
use crate::model::{Hash32, MessageId};
use crate::records::PayloadKind;

/// Message ids per baseline record (an upgraded archive's existing messages).
const BASELINE_CHUNK: usize = 20_000;
/// Change-log records read per step of a walk.
const WALK_CHUNK: usize = 1_000;

/// The writer's view of the chain: where it ends and the key that signs it.
pub(super) struct ChainState {
    next: u64,
    head: Hash32,
    signer: Signer,
    by: String,
}

impl ChainState {
    /// Adds `record`, chained after the log's end, and a checkpoint signing the
    /// new end to `batch`; returns the end to [`ChainState::advance`] to once the
    /// batch is committed.
    fn stage(&self, batch: &mut MetaBatch, record: &ChangeRecord, at: i64) -> (u64, Hash32) {
        let body = record.encode();
        let seq = self.next;
        let hash = chain::link(&self.head, seq, &body);
        batch.push(Change::ChangeLog {
            seq,
            record: LogRecord { hash, body },
        });
        batch.push(Change::Checkpoint(self.signer.checkpoint(seq + 1, hash, at)));
        (seq + 1, hash)
    }

    fn advance(&mut self, (next, head): (u64, Hash32)) {
        self.next = next;
        self.head = head;
    }
}

/// What one batch changed in what the archive holds, or `None` when it changed
/// nothing there.
fn change_record(batch: &MetaBatch, cause: Option<Cause>, at: i64, by: &str) -> Option<ChangeRecord> {
    let mut items = Vec::new();
    for change in batch.changes() {
        let item = match change {
            Change::Message { id, .. } => Item::MessageAdded(*id),
            Change::Placement { key, record, .. } => Item::Placed {
                key: placement_identity(key),
                message: record.message,
                deleted: record.deleted_at.is_some(),
            },
            Change::DropMessage { id, why: None } => Item::MessageRemoved(*id),
            Change::DropMessage { id, why: Some(why) } => Item::MessageExpired {
                message: *id,
                why: why.clone(),
            },
            Change::DropPart(id) => Item::PartRemoved(*id),
            Change::DropPlacement { key, message } => Item::Unplaced {
                key: placement_identity(key),
                message: *message,
            },
            Change::Rule { kind, name, record } => Item::RuleSet {
                kind: *kind,
                name: name.clone(),
                record: record.clone(),
            },
            Change::DropRule { kind, name } => Item::RuleRemoved {
                kind: *kind,
                name: name.clone(),
            },
            _ => continue,
        };
        items.push(item);
    }
    if items.is_empty() {
        return None;
    }
    let cause = cause.unwrap_or_else(|| infer_cause(&items));
    Some(ChangeRecord {
        cause,
        at,
        by: by.to_string(),
        items,
    })
}

fn infer_cause(items: &[Item]) -> Cause {
    let any = |f: fn(&Item) -> bool| items.iter().any(f);
    if any(|i| matches!(i, Item::RuleSet { .. } | Item::RuleRemoved { .. })) {
        Cause::Rule
    } else if any(|i| {
        matches!(
            i,
            Item::MessageRemoved(_) | Item::MessageExpired { .. } | Item::PartRemoved(_) | Item::Unplaced { .. }
        )
    }) {
        Cause::Purge
    } else if any(|i| matches!(i, Item::MessageAdded(_))) {
        Cause::Ingest
    } else {
        Cause::Sync
    }
}

/// A placement's identity in a change record: its `placements` key bytes
/// (`schemas/store-v4.toml`), a canonical encoding of account, folder and source.
fn placement_identity(key: &crate::metastore::PlacementKey) -> Vec<u8> {
    let p = key.parts();
    crate::keys::placement(&p.account, &p.mailbox, &p.source, key.message())
}

impl Archive {
    /// Starts the change log's writer: loads (or, for a new log, makes) the
    /// signing key at `key_path`, records its public key, and finds the chain's end.
    pub(super) fn start_chain(&self, key_path: &Path) -> Result<()> {
        let stored = self.meta.signing_key()?;
        let signer = match stored {
            Some(public) => {
                let s = Signer::load(key_path)?;
                if s.public_key() != public {
                    return Err(ArchiveError::SigningKey {
                        path: key_path.to_path_buf(),
                        reason: "is not this archive's key (its public key is not the one the archive's \
                                 checkpoints are signed with)"
                            .into(),
                    });
                }
                s
            }
            None => {
                let s = Signer::load_or_create(key_path)?;
                let mut batch = MetaBatch::default();
                batch.push(Change::SigningKey(s.public_key()));
                self.meta.commit(batch)?;
                tracing::info!(archive = %self.dir.display(), key = %key_path.display(), "the change log's checkpoints are signed with this key");
                s
            }
        };
        let (next, head) = match self.meta.last_change()? {
            Some((seq, r)) => (seq + 1, r.hash),
            None => (0, chain::GENESIS),
        };
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = Some(ChainState {
            next,
            head,
            signer,
            by: crate::identity::os_user(),
        });
        Ok(())
    }

    /// The chain's end as the store has it now (a shared writer's turn: another
    /// writer may have added records).
    pub(super) fn refresh_chain(&self) -> Result<()> {
        let mut guard = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = guard.as_mut() {
            state.advance(match self.meta.last_change()? {
                Some((seq, r)) => (seq + 1, r.hash),
                None => (0, chain::GENESIS),
            });
        }
        Ok(())
    }

    /// Commits one batch durably, with its change record and a signed checkpoint
    /// when it changes what the archive holds.
    pub(crate) fn commit(&self, batch: MetaBatch) -> Result<()> {
        self.commit_as(batch, None)
    }

    /// [`Archive::commit`], saying why (otherwise inferred from the changes). A
    /// shared writer commits in its turn, for accounts it still holds.
    pub(crate) fn commit_as(&self, batch: MetaBatch, cause: Option<Cause>) -> Result<()> {
        if self.read_only {
            return Err(ArchiveError::ReadOnly { path: self.dir.clone() });
        }
        self.in_turn(|| {
            self.check_fence(&batch)?;
            self.commit_chained(batch, cause)
        })
    }

    fn commit_chained(&self, mut batch: MetaBatch, cause: Option<Cause>) -> Result<()> {
        let mut guard = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        let at = chrono::Utc::now().timestamp();
        let record = guard
            .as_ref()
            .and_then(|state| change_record(&batch, cause, at, &state.by));
        let (Some(state), Some(record)) = (guard.as_mut(), record) else {
            return Ok(self.meta.commit(batch)?);
        };
        let end = state.stage(&mut batch, &record, at);
        self.meta.commit(batch)?;
        state.advance(end);
        Ok(())
    }

    /// Begins the log of an archive that held messages before it had one: records
    /// every message it holds, [`BASELINE_CHUNK`] at a time. Resumes after the last
    /// baseline record when a previous upgrade was interrupted.
    pub(super) fn record_baseline(&self) -> Result<()> {
        let mut from: Vec<u8> = Vec::new();
        if let Some((_, last)) = self.meta.last_change()? {
            let record = ChangeRecord::decode(&last.body).map_err(|e| self.chain_error(e.to_string()))?;
            if record.cause != Cause::Baseline {
                return Ok(());
            }
            if let Some(Item::MessageAdded(id)) = record.items.last() {
                from = id.0.to_vec();
                from.push(0);
            }
        }
        loop {
            let ids = ids_from(self.meta.as_ref(), PayloadKind::Skeleton, &from, BASELINE_CHUNK)?;
            let Some(last) = ids.last() else { return Ok(()) };
            from = last.0.to_vec();
            from.push(0);
            let full = ids.len() >= BASELINE_CHUNK;
            // The messages are not new: their records are not rewritten, only logged.
            let mut guard = self.chain.lock().unwrap_or_else(|p| p.into_inner());
            let state = guard
                .as_mut()
                .ok_or_else(|| self.chain_error("the change log was not started".into()))?;
            let at = chrono::Utc::now().timestamp();
            let record = ChangeRecord {
                cause: Cause::Baseline,
                at,
                by: state.by.clone(),
                items: ids.into_iter().map(Item::MessageAdded).collect(),
            };
            let mut batch = MetaBatch::default();
            let end = state.stage(&mut batch, &record, at);
            self.meta.commit(batch)?;
            state.advance(end);
            if !full {
                return Ok(());
            }
        }
    }

    fn chain_error(&self, what: String) -> ArchiveError {
        ArchiveError::Chain {
            path: self.dir.clone(),
            what,
        }
    }

    /// The latest signed checkpoint (what `attest` exports) and the public key.
    pub fn latest_checkpoint(&self) -> Result<Option<(CheckpointRecord, [u8; 32])>> {
        let Some(public) = self.meta.signing_key()? else {
            return Ok(None);
        };
        Ok(self
            .meta
            .checkpoints()?
            .into_iter()
            .max_by_key(|c| c.count)
            .map(|c| (c, public)))
    }

    /// Proves the archive's history (see the module doc); `against` is a
    /// checkpoint kept elsewhere (`attest`) that the chain must still extend.
    pub fn verify_chain(&self, against: Option<&Attested>, key_file: Option<&Path>) -> Result<ChainVerification> {
        let Some(public) = self.meta.signing_key()? else {
            return Err(self.chain_error(format!(
                "has no change log (format {}: open it for writing once, e.g. `mailvault stats`, to upgrade)",
                self.format_version
            )));
        };
        let mut out = ChainVerification {
            public_key: public,
            ..ChainVerification::default()
        };
        self.check_keys(&public, against, key_file, &mut out);
        let checkpoints = self.meta.checkpoints()?;
        let by_count: HashMap<u64, &CheckpointRecord> = checkpoints.iter().map(|c| (c.count, c)).collect();
        let plain: Vec<Checkpoint> = checkpoints
            .iter()
            .map(|c| Checkpoint {
                count: c.count,
                head: c.head,
            })
            .collect();
        let mut walk = Walk::new(self, against.map(|a| a.checkpoint.count));
        let report = chain::verify(&mut walk, &plain, |c| {
            by_count.get(&c.count).is_some_and(|r| signing::verifies(&public, r))
        });
        if let Some(e) = walk.failed.take() {
            return Err(e);
        }
        out.records = report.records;
        out.checkpoints = report.checkpoints_checked;
        out.head = report.head;
        out.problems.extend(collapse_rewrites(report.problems));
        out.problems
            .extend(walk.unreadable.iter().map(|(seq, why)| ChainIssue::Unreadable {
                seq: *seq,
                why: why.clone(),
            }));
        out.problems.append(&mut walk.unjustified);
        if let Some(a) = against {
            out.against_checked = true;
            match walk.at_attested {
                None => out.problems.push(ChainIssue::AttestedBeyondChain {
                    count: a.checkpoint.count,
                    records: report.records,
                }),
                Some(h) if h != a.checkpoint.head => out.problems.push(ChainIssue::AttestedMismatch {
                    count: a.checkpoint.count,
                }),
                Some(_) => {}
            }
        }
        self.check_messages_logged(walk.live, &mut out)?;
        Ok(out)
    }

    /// The public key in the metadata against the key file's and an attestation's.
    fn check_keys(
        &self,
        public: &[u8; 32],
        against: Option<&Attested>,
        key_file: Option<&Path>,
        out: &mut ChainVerification,
    ) {
        if let Some(path) = key_file {
            match Signer::load(path) {
                Ok(s) if s.public_key() != *public => out.problems.push(ChainIssue::KeyMismatch {
                    what: format!("the signing key {}", path.display()),
                }),
                Ok(_) => out.key_file_checked = true,
                Err(_) => {}
            }
        }
        if let Some(a) = against {
            if a.public_key != *public {
                out.problems.push(ChainIssue::KeyMismatch {
                    what: "the attested checkpoint's key".into(),
                });
            }
            if !signing::verifies(&a.public_key, &a.checkpoint) {
                out.problems.push(ChainIssue::AttestationSignature);
            }
        }
    }

    /// The messages the log says the archive holds against those it holds.
    fn check_messages_logged(&self, mut live: HashSet<MessageId>, out: &mut ChainVerification) -> Result<()> {
        collect_all(
            |visit| self.meta.scan_ids(PayloadKind::Skeleton, &[], visit),
            |id| {
                out.messages += 1;
                if !live.remove(&id) {
                    out.problems.push(ChainIssue::MessageNotLogged { id });
                }
            },
        )?;
        let mut gone: Vec<MessageId> = live.into_iter().collect();
        gone.sort();
        out.problems
            .extend(gone.into_iter().map(|id| ChainIssue::MessageRemovedUnlogged { id }));
        Ok(())
    }
}

/// A rewrite of history fails every checkpoint after it: said once, at the first
/// record it reaches (checkpoints follow every record, so that record is where
/// the history that was signed and the history stored part).
fn collapse_rewrites(problems: Vec<ChainProblem>) -> Vec<ChainIssue> {
    let mut out = Vec::new();
    let mut first: Option<(u64, u64)> = None;
    for p in problems {
        match p {
            ChainProblem::CheckpointMismatch { count } => {
                let f = first.get_or_insert((count, 0));
                f.0 = f.0.min(count);
                f.1 += 1;
            }
            other => out.push(ChainIssue::Chain(other)),
        }
    }
    if let Some((count, checkpoints)) = first {
        out.push(ChainIssue::Rewritten {
            record: count.saturating_sub(1),
            checkpoints,
        });
    }
    out
}

/// Reads the change log a chunk at a time for [`chain::verify`], replaying which
/// messages it adds and removes.
struct Walk<'a> {
    archive: &'a Archive,
    next: u64,
    buffer: std::vec::IntoIter<(u64, LogRecord)>,
    done: bool,
    failed: Option<ArchiveError>,
    unreadable: Vec<(u64, String)>,
    live: HashSet<MessageId>,
    /// The retention policies in force at this point of the log, by name.
    policies: HashSet<String>,
    /// Purges the log itself does not justify.
    unjustified: Vec<ChainIssue>,
    /// The recomputed hash after `attested` records, when asked for.
    attested: Option<u64>,
    recomputed: Hash32,
    count: u64,
    at_attested: Option<Hash32>,
}

impl<'a> Walk<'a> {
    fn new(archive: &'a Archive, attested: Option<u64>) -> Self {
        Walk {
            archive,
            next: 0,
            buffer: Vec::new().into_iter(),
            done: false,
            failed: None,
            unreadable: Vec::new(),
            live: HashSet::new(),
            policies: HashSet::new(),
            unjustified: Vec::new(),
            attested,
            recomputed: chain::GENESIS,
            count: 0,
            at_attested: (attested == Some(0)).then_some(chain::GENESIS),
        }
    }

    fn replay(&mut self, seq: u64, body: &[u8]) {
        let r = match ChangeRecord::decode(body) {
            Ok(r) => r,
            Err(e) => return self.unreadable.push((seq, e.to_string())),
        };
        for item in r.items {
            match item {
                Item::MessageAdded(id) => {
                    self.live.insert(id);
                }
                Item::MessageRemoved(id) => {
                    self.live.remove(&id);
                }
                Item::MessageExpired { message, why } => {
                    self.live.remove(&message);
                    self.justify(seq, r.at, message, &why);
                }
                Item::RuleSet {
                    kind: RuleKind::Retention,
                    name,
                    ..
                } => {
                    self.policies.insert(name);
                }
                Item::RuleRemoved {
                    kind: RuleKind::Retention,
                    name,
                } => {
                    self.policies.remove(&name);
                }
                _ => {}
            }
        }
    }

    /// A purge must name a policy the log had set by then, and must not have
    /// weighed retention at a moment after it ran (a clock set ahead).
    fn justify(&mut self, seq: u64, at: i64, message: MessageId, why: &Expiry) {
        if !self.policies.contains(&why.policy) {
            self.unjustified.push(ChainIssue::PurgeWithoutPolicy {
                seq,
                message,
                policy: why.policy.clone(),
            });
        } else if why.weighed_at > at || why.since > why.weighed_at {
            self.unjustified.push(ChainIssue::PurgeAhead { seq, message });
        }
    }
}

impl Iterator for &mut Walk<'_> {
    type Item = Stored;

    fn next(&mut self) -> Option<Stored> {
        loop {
            if let Some((seq, r)) = self.buffer.next() {
                self.replay(seq, &r.body);
                self.recomputed = chain::link(&self.recomputed, seq, &r.body);
                self.count += 1;
                if self.attested == Some(self.count) {
                    self.at_attested = Some(self.recomputed);
                }
                return Some(Stored {
                    seq,
                    body: r.body,
                    hash: r.hash,
                });
            }
            if self.done {
                return None;
            }
            match self.archive.meta.change_log(self.next, WALK_CHUNK) {
                Ok(chunk) => {
                    match chunk.last() {
                        Some((last, _)) => self.next = last + 1,
                        None => self.done = true,
                    }
                    if chunk.len() < WALK_CHUNK {
                        self.done = true;
                    }
                    self.buffer = chunk.into_iter();
                }
                Err(e) => {
                    self.failed = Some(e.into());
                    self.done = true;
                    return None;
                }
            }
        }
    }
}

/// A checkpoint kept outside the archive (`attest`), with the key that signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attested {
    pub checkpoint: CheckpointRecord,
    pub public_key: [u8; 32],
}

/// Something `verify --chain` found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainIssue {
    Chain(ChainProblem),
    /// The stored chain is not the one the checkpoints signed, from `record` on
    /// (`checkpoints` of them disagree): history rewritten and re-hashed by someone
    /// without the signing key, or another archive's checkpoints.
    Rewritten {
        record: u64,
        checkpoints: u64,
    },
    Unreadable {
        seq: u64,
        why: String,
    },
    /// A message the archive holds that no change record added.
    MessageNotLogged {
        id: MessageId,
    },
    /// A message the log says the archive holds, but it does not: removed without
    /// a purge.
    MessageRemovedUnlogged {
        id: MessageId,
    },
    KeyMismatch {
        what: String,
    },
    /// A purge under a policy the log had not set at that point.
    PurgeWithoutPolicy {
        seq: u64,
        message: MessageId,
        policy: String,
    },
    /// A purge that weighed retention at a moment after it ran, or whose period
    /// ended after that moment.
    PurgeAhead {
        seq: u64,
        message: MessageId,
    },
    AttestationSignature,
    AttestedMismatch {
        count: u64,
    },
    AttestedBeyondChain {
        count: u64,
        records: u64,
    },
}

impl std::fmt::Display for ChainIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainIssue::Chain(p) => write!(f, "change log: {p}"),
            ChainIssue::Rewritten { record, checkpoints } => write!(
                f,
                "change log: record {record} is not what was signed: the chain from there on is not the one \
                 {checkpoints} signed checkpoint(s) state (rewritten and re-hashed without the key, or another \
                 archive's checkpoints)"
            ),
            ChainIssue::Unreadable { seq, why } => write!(f, "change log: record {seq} cannot be read: {why}"),
            ChainIssue::MessageNotLogged { id } => write!(
                f,
                "message {}: in the archive, but no change record adds it (inserted behind the log)",
                id.to_hex()
            ),
            ChainIssue::MessageRemovedUnlogged { id } => write!(
                f,
                "message {}: the change log says the archive holds it, but it is gone (removed without a purge)",
                id.to_hex()
            ),
            ChainIssue::KeyMismatch { what } => write!(
                f,
                "{what} is not the key the archive's metadata names (the metadata's key was replaced?)"
            ),
            ChainIssue::PurgeWithoutPolicy { seq, message, policy } => write!(
                f,
                "change log: record {seq} purged message {} under retention policy {policy:?}, which the archive did not have then",
                message.to_hex()
            ),
            ChainIssue::PurgeAhead { seq, message } => write!(
                f,
                "change log: record {seq} purged message {} before its retention ended (weighed at a later moment than the purge ran)",
                message.to_hex()
            ),
            ChainIssue::AttestationSignature => write!(f, "the attested checkpoint's signature does not verify"),
            ChainIssue::AttestedMismatch { count } => write!(
                f,
                "the chain after {count} records is not what the attested checkpoint says (history rewritten since)"
            ),
            ChainIssue::AttestedBeyondChain { count, records } => write!(
                f,
                "the attested checkpoint covers {count} records but the chain has {records} (an older copy restored, or records removed)"
            ),
        }
    }
}

/// What `verify --chain` found.
#[derive(Clone, Debug, Default)]
pub struct ChainVerification {
    pub records: u64,
    pub checkpoints: u64,
    pub messages: u64,
    pub head: Option<Hash32>,
    pub public_key: [u8; 32],
    pub key_file_checked: bool,
    pub against_checked: bool,
    pub problems: Vec<ChainIssue>,
}

impl ChainVerification {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as `verify --chain --format json` prints it.
    pub fn summary(&self) -> ChainSummary {
        ChainSummary {
            records: self.records,
            checkpoints: self.checkpoints,
            messages: self.messages,
            head: self.head.map(|h| h.to_hex()),
            public_key: Hash32(self.public_key).to_hex(),
            against_checked: self.against_checked,
            problems: self.problems.iter().map(ToString::to_string).collect(),
        }
    }
}

/// What `verify --chain` found, for programs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ChainSummary {
    /// Change-log records walked.
    pub records: u64,
    /// Signed checkpoints verified.
    pub checkpoints: u64,
    /// Messages in the archive, each accounted for by the log.
    pub messages: u64,
    /// The chain's hash after its last record.
    pub head: Option<String>,
    /// The Ed25519 key the checkpoints verify with (hex).
    pub public_key: String,
    /// Whether an attested checkpoint (`--against`) was checked.
    pub against_checked: bool,
    /// Each problem, naming the record or message.
    pub problems: Vec<String>,
}

/// The default place of an archive's signing key, for `verify --chain`.
pub fn key_path(dir: &Path) -> Result<PathBuf> {
    Ok(super::layout::read_marker(dir)?
        .map(|m| m.signing_key_path(dir))
        .unwrap_or_else(|| super::layout::default_signing_key(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{RuleKind, RuleRecord};
    use crate::metastore::PlacementKey;
    use crate::model::SourceKey;
    use crate::records::{Counters, PlacementRecord};

    fn placement(id: MessageId, deleted: bool) -> Change {
        Change::Placement {
            key: PlacementKey::new("a", "INBOX", &SourceKey::Imap { uidvalidity: 1, uid: 2 }, &id),
            record: PlacementRecord {
                message: id,
                flags: Default::default(),
                internal_date: None,
                first_seen: 0,
                last_seen: 0,
                deleted_at: deleted.then_some(5),
            },
            replaces: None,
        }
    }

    #[test]
    fn batches_that_change_no_content_have_no_record() {
        let mut b = MetaBatch::default();
        b.push(Change::Counters(Counters::default()));
        b.push(Change::NextPack(4));
        assert_eq!(change_record(&b, None, 0, "u"), None);
    }

    #[test]
    fn the_cause_follows_what_changed() {
        let id = Hash32([1; 32]);
        let cases: Vec<(Vec<Change>, Cause)> = vec![
            (vec![placement(id, true)], Cause::Sync),
            (
                vec![placement(id, false), Change::DropMessage { id, why: None }],
                Cause::Purge,
            ),
            (
                vec![Change::Rule {
                    kind: RuleKind::Hold,
                    name: "h".into(),
                    record: RuleRecord {
                        query: "x".into(),
                        keep: String::new(),
                        from_date: false,
                        reason: String::new(),
                        by: "u".into(),
                        at: 0,
                    },
                }],
                Cause::Rule,
            ),
        ];
        for (changes, cause) in cases {
            let mut b = MetaBatch::default();
            for c in changes {
                b.push(c);
            }
            assert_eq!(change_record(&b, None, 0, "u").unwrap().cause, cause);
        }
    }

    #[test]
    fn a_placement_item_names_its_folder_message_and_deletion() {
        let id = Hash32([3; 32]);
        let mut b = MetaBatch::default();
        b.push(placement(id, true));
        let r = change_record(&b, Some(Cause::Ingest), 9, "bob").unwrap();
        assert_eq!(r.by, "bob");
        let Item::Placed { key, message, deleted } = &r.items[0] else {
            panic!("{r:?}")
        };
        assert!(key.starts_with(b"a\0INBOX\0"));
        assert_eq!((*message, *deleted), (id, true));
    }
}
