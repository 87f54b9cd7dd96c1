//! The records of an archive an organisation can answer for (format 4): retention
//! policies and legal holds ([`RuleRecord`]), the change log's entries
//! ([`ChangeRecord`], chained by [`crate::chain`]) and signed checkpoints
//! ([`CheckpointRecord`]). Pure: encoding, decoding and the bytes a checkpoint
//! signature covers; `schemas/store-v4.toml` lays them out.
//!
//! A change record says what one committed batch changed in what the archive
//! holds: messages added or removed, placements written or removed, parts
//! removed, rules set or removed. It is derived from the batch itself
//! (`Archive::commit`), so no change to the archive's content can be committed
//! without its record.

use crate::codec::{Dec, DecodeError, Enc};
use crate::model::{Hash32, MessageId, PartId};

const RECORD_V1: u8 = 1;

fn check_version(d: &mut Dec<'_>) -> Result<(), DecodeError> {
    match d.u8()? {
        RECORD_V1 => Ok(()),
        v => Err(d.err(format!("unknown record version {v}"))),
    }
}

/// The two kinds of rule the archive keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    Retention,
    Hold,
}

impl RuleKind {
    /// The byte that tags the kind in keys and change records.
    pub fn byte(self) -> u8 {
        match self {
            RuleKind::Retention => b'r',
            RuleKind::Hold => b'h',
        }
    }

    pub fn from_byte(b: u8) -> Option<RuleKind> {
        match b {
            b'r' => Some(RuleKind::Retention),
            b'h' => Some(RuleKind::Hold),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Retention => "retention policy",
            RuleKind::Hold => "legal hold",
        }
    }
}

/// A retention policy or a legal hold, as stored. `keep` and `from` are a
/// policy's (a hold has `keep` empty); `reason` a hold's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRecord {
    /// The search query that selects what the rule covers.
    pub query: String,
    /// A policy's period as written (`10y`, `90d`, `forever`).
    pub keep: String,
    /// A policy's start: 0 = first archived, 1 = the `Date:` header.
    pub from_date: bool,
    pub reason: String,
    /// Who set it (the OS user) and when.
    pub by: String,
    pub at: i64,
}

impl RuleRecord {
    /// `u8 version, str query, str keep, u8 from (0 received, 1 date), str reason,
    /// str by, i64 at`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u8(RECORD_V1)
            .str(&self.query)
            .str(&self.keep)
            .u8(u8::from(self.from_date))
            .str(&self.reason)
            .str(&self.by)
            .i64(self.at);
        e.finish()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "rule record");
        check_version(&mut d)?;
        let r = RuleRecord {
            query: d.string()?,
            keep: d.string()?,
            from_date: match d.u8()? {
                0 => false,
                1 => true,
                other => return Err(d.err(format!("unknown period start {other}"))),
            },
            reason: d.string()?,
            by: d.string()?,
            at: d.i64()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// Why a batch was committed (said in the change record, shown by `verify --chain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Messages or placements from a source (import, pull, the service).
    Ingest = 1,
    /// Source changes: flags, deletions at the source.
    Sync = 2,
    /// `purge`: what retention let go.
    Purge = 3,
    /// A retention policy or hold set or removed.
    Rule = 4,
    /// The archive's content as it was when the change log began (an upgrade from
    /// format 3 records every message it already held).
    Baseline = 5,
    /// Anything else that changed content (a format upgrade's moves change none).
    Other = 6,
}

impl Cause {
    fn from_byte(b: u8) -> Option<Cause> {
        Some(match b {
            1 => Cause::Ingest,
            2 => Cause::Sync,
            3 => Cause::Purge,
            4 => Cause::Rule,
            5 => Cause::Baseline,
            6 => Cause::Other,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Cause::Ingest => "ingest",
            Cause::Sync => "sync",
            Cause::Purge => "purge",
            Cause::Rule => "rule",
            Cause::Baseline => "baseline",
            Cause::Other => "other",
        }
    }
}

/// Why `purge` removed a message: the matching policy that kept it longest, when
/// its period ended, and the moment retention was weighed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub policy: String,
    pub since: i64,
    pub weighed_at: i64,
}

/// One item of a change record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A message stored for the first time.
    MessageAdded(MessageId),
    /// A message removed (by `purge`), with why when retention let it go.
    MessageRemoved(MessageId),
    MessageExpired {
        message: MessageId,
        why: Expiry,
    },
    /// A part removed (by `purge`: nothing referenced it any more).
    PartRemoved(PartId),
    /// A placement written: its key (as the metadata spells it), its message, and
    /// whether the source no longer has it.
    Placed {
        key: Vec<u8>,
        message: MessageId,
        deleted: bool,
    },
    /// A placement removed (by `purge`).
    Unplaced {
        key: Vec<u8>,
        message: MessageId,
    },
    /// A rule set (the whole record) or removed.
    RuleSet {
        kind: RuleKind,
        name: String,
        record: RuleRecord,
    },
    RuleRemoved {
        kind: RuleKind,
        name: String,
    },
}

/// One entry of the change log: why, when, and what changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRecord {
    pub cause: Cause,
    pub at: i64,
    /// Who made the change (the OS user of the process).
    pub by: String,
    pub items: Vec<Item>,
}

const ITEM_ADDED: u8 = 1;
const ITEM_REMOVED: u8 = 2;
const ITEM_PART_REMOVED: u8 = 3;
const ITEM_PLACED: u8 = 4;
const ITEM_UNPLACED: u8 = 5;
const ITEM_RULE_SET: u8 = 6;
const ITEM_RULE_REMOVED: u8 = 7;
const ITEM_EXPIRED: u8 = 8;

impl ChangeRecord {
    /// `u8 version, u8 cause, i64 at, str by, u32 n, n × item`; item = `u8 tag`
    /// then: added / removed / part removed `[32] id`; placed `bytes key, [32]
    /// message, u8 deleted`; unplaced `bytes key, [32] message`; rule set `u8 kind,
    /// str name, bytes rule record`; rule removed `u8 kind, str name`; expired
    /// `[32] message, str policy, i64 since, i64 weighed at`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(32 + self.items.len() * 40));
        e.u8(RECORD_V1)
            .u8(self.cause as u8)
            .i64(self.at)
            .str(&self.by)
            .u32(self.items.len() as u32);
        for item in &self.items {
            match item {
                Item::MessageAdded(id) => e.u8(ITEM_ADDED).raw(&id.0),
                Item::MessageRemoved(id) => e.u8(ITEM_REMOVED).raw(&id.0),
                Item::PartRemoved(id) => e.u8(ITEM_PART_REMOVED).raw(&id.0),
                Item::Placed { key, message, deleted } => {
                    e.u8(ITEM_PLACED).bytes(key).raw(&message.0).u8(u8::from(*deleted))
                }
                Item::Unplaced { key, message } => e.u8(ITEM_UNPLACED).bytes(key).raw(&message.0),
                Item::RuleSet { kind, name, record } => {
                    e.u8(ITEM_RULE_SET).u8(kind.byte()).str(name).bytes(&record.encode())
                }
                Item::RuleRemoved { kind, name } => e.u8(ITEM_RULE_REMOVED).u8(kind.byte()).str(name),
                Item::MessageExpired { message, why } => e
                    .u8(ITEM_EXPIRED)
                    .raw(&message.0)
                    .str(&why.policy)
                    .i64(why.since)
                    .i64(why.weighed_at),
            };
        }
        e.finish()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "change record");
        check_version(&mut d)?;
        let cause = d.u8()?;
        let cause = Cause::from_byte(cause).ok_or_else(|| d.err(format!("unknown cause {cause}")))?;
        let at = d.i64()?;
        let by = d.string()?;
        let n = d.u32()? as usize;
        if n > value.len() {
            return Err(d.err(format!("claims {n} items in {} bytes", value.len())));
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(decode_item(&mut d)?);
        }
        d.end()?;
        Ok(ChangeRecord { cause, at, by, items })
    }
}

fn rule_kind(d: &mut Dec<'_>) -> Result<RuleKind, DecodeError> {
    let b = d.u8()?;
    RuleKind::from_byte(b).ok_or_else(|| d.err(format!("unknown rule kind {b}")))
}

fn decode_item(d: &mut Dec<'_>) -> Result<Item, DecodeError> {
    Ok(match d.u8()? {
        ITEM_ADDED => Item::MessageAdded(Hash32(d.hash()?)),
        ITEM_REMOVED => Item::MessageRemoved(Hash32(d.hash()?)),
        ITEM_PART_REMOVED => Item::PartRemoved(Hash32(d.hash()?)),
        ITEM_PLACED => Item::Placed {
            key: d.bytes()?.to_vec(),
            message: Hash32(d.hash()?),
            deleted: d.u8()? != 0,
        },
        ITEM_UNPLACED => Item::Unplaced {
            key: d.bytes()?.to_vec(),
            message: Hash32(d.hash()?),
        },
        ITEM_RULE_SET => Item::RuleSet {
            kind: rule_kind(d)?,
            name: d.string()?,
            record: RuleRecord::decode(d.bytes()?)?,
        },
        ITEM_RULE_REMOVED => Item::RuleRemoved {
            kind: rule_kind(d)?,
            name: d.string()?,
        },
        ITEM_EXPIRED => Item::MessageExpired {
            message: Hash32(d.hash()?),
            why: Expiry {
                policy: d.string()?,
                since: d.i64()?,
                weighed_at: d.i64()?,
            },
        },
        other => return Err(d.err(format!("unknown item {other}"))),
    })
}

/// A `change_log` value: `u8 version, [32] hash (the chain's after this record),
/// then the change record's bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub hash: Hash32,
    pub body: Vec<u8>,
}

impl LogRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(33 + self.body.len()));
        e.u8(RECORD_V1).raw(&self.hash.0).raw(&self.body);
        e.finish()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "change log record");
        check_version(&mut d)?;
        let hash = Hash32(d.hash()?);
        Ok(LogRecord {
            hash,
            body: d.rest().to_vec(),
        })
    }
}

/// A signed checkpoint: after `count` change records the chain's hash was `head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub count: u64,
    pub head: Hash32,
    pub at: i64,
    /// Ed25519 over [`CheckpointRecord::signed_bytes`].
    pub signature: [u8; 64],
}

/// Separates checkpoint signatures from any other use of the key.
const CHECKPOINT_DOMAIN: &[u8] = b"mailvault checkpoint v1\0";

impl CheckpointRecord {
    /// What the signature covers: a domain string, then `u64 count, [32] head,
    /// i64 at`.
    pub fn signed_bytes(count: u64, head: &Hash32, at: i64) -> Vec<u8> {
        let mut e = Enc::default();
        e.raw(CHECKPOINT_DOMAIN).u64(count).raw(&head.0).i64(at);
        e.finish()
    }

    /// `u8 version, u64 count, [32] head, i64 at, [64] signature` (the key is
    /// the count, big-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u8(RECORD_V1)
            .u64(self.count)
            .raw(&self.head.0)
            .i64(self.at)
            .raw(&self.signature);
        e.finish()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "checkpoint");
        check_version(&mut d)?;
        let count = d.u64()?;
        let head = Hash32(d.hash()?);
        let at = d.i64()?;
        let sig = d.take(64)?;
        d.end()?;
        let mut signature = [0; 64];
        signature.copy_from_slice(sig);
        Ok(CheckpointRecord {
            count,
            head,
            at,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule() -> RuleRecord {
        RuleRecord {
            query: "folder:Spam".into(),
            keep: "90d".into(),
            from_date: true,
            reason: String::new(),
            by: "alice".into(),
            at: 1_700_000_000,
        }
    }

    #[test]
    fn every_item_kind_reads_back() {
        let r = ChangeRecord {
            cause: Cause::Purge,
            at: -5,
            by: "root".into(),
            items: vec![
                Item::MessageAdded(Hash32([1; 32])),
                Item::MessageRemoved(Hash32([2; 32])),
                Item::PartRemoved(Hash32([3; 32])),
                Item::Placed {
                    key: b"acct\0INBOX\0I\0\0\0\x01\0\0\0\x02".to_vec(),
                    message: Hash32([4; 32]),
                    deleted: true,
                },
                Item::Unplaced {
                    key: b"k".to_vec(),
                    message: Hash32([5; 32]),
                },
                Item::RuleSet {
                    kind: RuleKind::Retention,
                    name: "spam".into(),
                    record: rule(),
                },
                Item::RuleRemoved {
                    kind: RuleKind::Hold,
                    name: "case-7".into(),
                },
                Item::MessageExpired {
                    message: Hash32([6; 32]),
                    why: Expiry {
                        policy: "all".into(),
                        since: 10,
                        weighed_at: 20,
                    },
                },
            ],
        };
        assert_eq!(ChangeRecord::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn unknown_versions_causes_and_items_are_refused_by_name() {
        let mut bytes = ChangeRecord {
            cause: Cause::Ingest,
            at: 0,
            by: String::new(),
            items: vec![Item::MessageAdded(Hash32([1; 32]))],
        }
        .encode();
        let mut v = bytes.clone();
        v[0] = 9;
        assert!(ChangeRecord::decode(&v)
            .unwrap_err()
            .detail
            .contains("record version 9"));
        let mut c = bytes.clone();
        c[1] = 77;
        assert!(ChangeRecord::decode(&c).unwrap_err().detail.contains("cause 77"));
        let tag = bytes.len() - 33;
        bytes[tag] = 99;
        assert!(ChangeRecord::decode(&bytes).unwrap_err().detail.contains("item 99"));
    }

    #[test]
    fn checkpoints_and_log_records_read_back() {
        let c = CheckpointRecord {
            count: 7,
            head: Hash32([9; 32]),
            at: 12,
            signature: [3; 64],
        };
        assert_eq!(CheckpointRecord::decode(&c.encode()).unwrap(), c);
        let l = LogRecord {
            hash: Hash32([8; 32]),
            body: b"body".to_vec(),
        };
        assert_eq!(LogRecord::decode(&l.encode()).unwrap(), l);
        assert_eq!(RuleRecord::decode(&rule().encode()).unwrap(), rule());
    }

    proptest! {
        #[test]
        fn no_bytes_make_decoding_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ChangeRecord::decode(&bytes);
            let _ = RuleRecord::decode(&bytes);
            let _ = CheckpointRecord::decode(&bytes);
            let _ = LogRecord::decode(&bytes);
        }
    }
}
