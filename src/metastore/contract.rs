//! What every [`MetaStore`] must do, as checks any implementation's tests call with
//! a way to make a fresh, empty, writable store (`tests/metastore.rs` runs them on
//! RocksDB; a PostgreSQL store runs the same ones). Each check panics on the first
//! behaviour that differs.

use std::ops::ControlFlow;

use super::{collect_all, Change, MetaBatch, MetaStore, PlacementKey, PlacementScope, SourceKind};
use crate::model::{Flags, Hash32, SourceKey};
use crate::plan::replay::Ledger;
use crate::records::{
    BlobLocation, Codec, Counters, CursorRecord, IngestEntry, IngestKind, LedgerRecord, MessageRecord, PackRecord,
    PartRecord, PayloadKind, PlacementRecord, TooLargeRecord,
};

/// Makes a fresh, empty store opened for writing.
pub type Fresh<'a> = &'a dyn Fn() -> Box<dyn MetaStore>;

fn one(change: Change) -> MetaBatch {
    let mut b = MetaBatch::default();
    b.push(change);
    b
}

fn placement(message: Hash32, seen: i64) -> PlacementRecord {
    PlacementRecord {
        message,
        flags: Flags {
            system: Flags::SEEN,
            keywords: vec!["$Label1".into()],
        },
        internal_date: Some(1_700_000_000),
        first_seen: seen,
        last_seen: seen,
        deleted_at: None,
    }
}

fn location(pack: u64, offset: u64) -> BlobLocation {
    BlobLocation {
        pack,
        frame_offset: 8,
        frame_len: 100,
        codec: Codec::ZstdDict,
        dict_id: 1,
        offset,
        len: 10,
        group: 7,
    }
}

fn imap(uid: u32) -> SourceKey {
    SourceKey::Imap { uidvalidity: 5, uid }
}

/// A fresh store has nothing: no version, counters, dictionaries, packs or records.
pub fn a_fresh_store_is_empty(fresh: Fresh<'_>) {
    let s = fresh();
    let id = Hash32::of(b"m");
    assert_eq!(s.format_version().unwrap(), None);
    assert_eq!(s.counters().unwrap(), None);
    assert!(s.dictionaries().unwrap().is_empty());
    assert!(s.packs().unwrap().is_empty());
    assert_eq!(s.next_pack().unwrap(), None);
    assert_eq!(s.message(&id).unwrap(), None);
    assert_eq!(s.have(PayloadKind::Part, &[id]).unwrap(), vec![false]);
    assert!(s.ingest_log(0, 10).unwrap().is_empty());
    assert!(s.cursors("a").unwrap().is_empty());
    assert!(s.ledger("t", "INBOX").unwrap().is_empty());
}

/// Archive-wide records read back as committed; later changes in a batch win.
pub fn archive_records_read_back(fresh: Fresh<'_>) {
    let s = fresh();
    let counters = Counters {
        messages: 3,
        next_seq: 9,
        ..Counters::default()
    };
    let pack = PackRecord {
        name: Hash32::of(b"pack"),
        size: 1234,
        entries: 2,
        level: 3,
        created: 5,
    };
    let mut b = MetaBatch::default();
    b.push(Change::FormatVersion(2));
    b.push(Change::FormatVersion(3));
    b.push(Change::Counters(counters.clone()));
    b.push(Change::Dictionary {
        id: 2,
        bytes: b"second".to_vec(),
    });
    b.push(Change::Dictionary {
        id: 1,
        bytes: b"first".to_vec(),
    });
    b.push(Change::Pack {
        number: 4,
        record: pack.clone(),
    });
    b.push(Change::Pack {
        number: 1,
        record: pack.clone(),
    });
    b.push(Change::NextPack(5));
    s.commit(b).unwrap();
    assert_eq!(s.format_version().unwrap(), Some(3));
    assert_eq!(s.counters().unwrap(), Some(counters));
    assert_eq!(
        s.dictionaries().unwrap(),
        vec![(1, b"first".to_vec()), (2, b"second".to_vec())],
        "in id order"
    );
    let numbers: Vec<u64> = s.packs().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(numbers, [1, 4], "in number order");
    assert_eq!(s.pack(4).unwrap(), Some(pack));
    assert_eq!(s.next_pack().unwrap(), Some(5));
    s.commit(one(Change::DropPack(1))).unwrap();
    assert_eq!(s.pack(1).unwrap(), None);
    assert_eq!(s.packs().unwrap().len(), 1);
}

/// Message and part records, existence checks, id scans from a start, and the pack
/// index.
pub fn messages_parts_and_locations(fresh: Fresh<'_>) {
    let s = fresh();
    let ids: Vec<Hash32> = (0..20u8).map(|i| Hash32::of(&[i])).collect();
    let mut b = MetaBatch::default();
    for (i, id) in ids.iter().enumerate().take(10) {
        b.push(Change::Message {
            id: *id,
            record: MessageRecord {
                raw_len: i as u64,
                seq: i as u64,
                first_seen: 1,
                parts: Vec::new(),
            },
        });
        b.push(Change::Location {
            kind: PayloadKind::Skeleton,
            id: *id,
            location: location(1, i as u64),
        });
    }
    b.push(Change::Part {
        id: ids[10],
        record: PartRecord {
            payload_len: 99,
            first_seen: 1,
        },
    });
    b.push(Change::Location {
        kind: PayloadKind::Part,
        id: ids[10],
        location: location(2, 0),
    });
    s.commit(b).unwrap();

    assert_eq!(s.message(&ids[3]).unwrap().unwrap().raw_len, 3);
    assert_eq!(
        s.have(PayloadKind::Skeleton, &[ids[0], ids[10], ids[9]]).unwrap(),
        [true, false, true]
    );
    assert_eq!(s.have(PayloadKind::Part, &[ids[0], ids[10]]).unwrap(), [false, true]);
    assert_eq!(s.location(PayloadKind::Part, &ids[10]).unwrap(), Some(location(2, 0)));
    assert_eq!(
        s.location(PayloadKind::Skeleton, &ids[10]).unwrap(),
        None,
        "kinds are apart"
    );

    let mut sorted: Vec<Hash32> = ids[..10].to_vec();
    sorted.sort();
    let mut all = Vec::new();
    collect_all(|v| s.scan_ids(PayloadKind::Skeleton, &[], v), |id| all.push(id)).unwrap();
    assert_eq!(all, sorted, "every message id, in byte order");
    let mut from = Vec::new();
    collect_all(
        |v| s.scan_ids(PayloadKind::Skeleton, &sorted[4].0, v),
        |id| from.push(id),
    )
    .unwrap();
    assert_eq!(from, sorted[4..], "from the first id at or after the start");
    let mut first_two = Vec::new();
    s.scan_ids(PayloadKind::Skeleton, &[], &mut |id| {
        first_two.push(id.unwrap());
        if first_two.len() == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(first_two, sorted[..2], "a visitor that breaks stops the scan");

    let mut located = Vec::new();
    collect_all(|v| s.scan_locations(v), |l| located.push(l)).unwrap();
    assert_eq!(located.len(), 11);
    s.commit(one(Change::DropLocation {
        kind: PayloadKind::Part,
        id: ids[10],
    }))
    .unwrap();
    assert_eq!(s.location(PayloadKind::Part, &ids[10]).unwrap(), None);
}

/// Placements by identity, by scope (account, mailbox, source kind) in key order,
/// and by message — also after a source reuses an identity for other bytes.
pub fn placements_by_identity_scope_and_message(fresh: Fresh<'_>) {
    let s = fresh();
    let (m1, m2) = (Hash32::of(b"1"), Hash32::of(b"2"));
    let local = SourceKey::Local { occurrence: 0 };
    let pop = SourceKey::Pop3 { uidl: "u-1".into() };
    let keys = [
        PlacementKey::new("a", "INBOX", &imap(10), &m1),
        PlacementKey::new("a", "INBOX", &imap(9), &m2),
        PlacementKey::new("a", "INBOX", &pop, &m1),
        PlacementKey::new("a", "INBOX.Sub", &imap(1), &m1),
        PlacementKey::new("a", "local", &local, &m1),
        PlacementKey::new("a", "local", &local, &m2),
        PlacementKey::new("ab", "INBOX", &imap(1), &m2),
    ];
    let mut b = MetaBatch::default();
    for (i, k) in keys.iter().enumerate() {
        let message = if matches!(i, 1 | 5 | 6) { m2 } else { m1 };
        b.push(Change::Placement {
            key: k.clone(),
            record: placement(message, i as i64),
            replaces: None,
        });
    }
    s.commit(b).unwrap();

    let got = s.placements_get(&keys).unwrap();
    assert!(got.iter().all(Option::is_some), "every placement reads back");
    assert_eq!(got[2].as_ref().unwrap().first_seen, 2);
    let unknown = PlacementKey::new("a", "INBOX", &imap(11), &m1);
    assert_eq!(s.placements_get(&[unknown]).unwrap(), [None]);
    assert_eq!(
        s.placements_get(&[PlacementKey::new("a", "INBOX", &imap(10), &m2)])
            .unwrap()[0]
            .as_ref()
            .unwrap()
            .message,
        m1,
        "an IMAP identity does not include the message"
    );

    let scan = |scope: PlacementScope<'_>| {
        let mut out = Vec::new();
        collect_all(|v| s.scan_placements(scope, v), |e| out.push(e.key)).unwrap();
        out
    };
    assert_eq!(scan(PlacementScope::default()).len(), 7);
    let a = scan(PlacementScope {
        account: Some("a"),
        ..Default::default()
    });
    assert_eq!(a.len(), 6, "account `ab` is not part of `a`");
    let inbox = scan(PlacementScope {
        account: Some("a"),
        mailbox: Some("INBOX"),
        source: None,
    });
    assert_eq!(inbox.len(), 3, "INBOX.Sub is not part of INBOX");
    let inbox_imap = scan(PlacementScope {
        account: Some("a"),
        mailbox: Some("INBOX"),
        source: Some(SourceKind::Imap),
    });
    let uids: Vec<SourceKey> = inbox_imap.into_iter().map(|k| k.source).collect();
    assert_eq!(uids, [imap(9), imap(10)], "in UID order");

    let of = |m: &Hash32| {
        let mut v: Vec<String> = s
            .placements_of(m)
            .unwrap()
            .into_iter()
            .map(|e| format!("{}/{}", e.key.account, e.key.mailbox))
            .collect();
        v.sort();
        v
    };
    assert_eq!(of(&m2), ["a/INBOX", "a/local", "ab/INBOX"]);
    // The source now says uid 10 holds m2's bytes.
    s.commit(one(Change::Placement {
        key: keys[0].clone(),
        record: placement(m2, 20),
        replaces: Some(m1),
    }))
    .unwrap();
    assert_eq!(of(&m2), ["a/INBOX", "a/INBOX", "a/local", "ab/INBOX"]);
    assert_eq!(of(&m1), ["a/INBOX", "a/INBOX.Sub", "a/local"]);
}

/// Cursors, dropped cursors, Gmail ids and too-large records, per account and
/// folder, apart from each other.
pub fn source_state_per_account_and_folder(fresh: Fresh<'_>) {
    let s = fresh();
    let cursor = |uid| CursorRecord {
        uidvalidity: 5,
        highest_uid: uid,
        remote_name: "INBOX".into(),
        ..CursorRecord::default()
    };
    let big = TooLargeRecord {
        bytes: 1 << 30,
        received: false,
        at: 3,
    };
    let m = Hash32::of(b"gm");
    let mut b = MetaBatch::default();
    for (account, mailbox, uid) in [
        ("a", "INBOX", 7),
        ("a", "Archive", 8),
        ("ab", "INBOX", 9),
        ("a", "Old", 1),
    ] {
        b.push(Change::Cursor {
            account: account.into(),
            mailbox: mailbox.into(),
            cursor: cursor(uid),
        });
    }
    b.push(Change::GmailMessage {
        account: "a".into(),
        gm_msgid: 42,
        message: m,
    });
    b.push(Change::TooLarge {
        account: "a".into(),
        mailbox: "INBOX".into(),
        source: imap(3),
        record: big,
    });
    b.push(Change::DropCursor {
        account: "a".into(),
        mailbox: "Old".into(),
    });
    s.commit(b).unwrap();

    assert_eq!(s.cursor("a", "INBOX").unwrap(), Some(cursor(7)));
    assert_eq!(s.cursor("a", "Old").unwrap(), None, "a dropped cursor is gone");
    let listed: Vec<(String, u32)> = s
        .cursors("a")
        .unwrap()
        .into_iter()
        .map(|(m, c)| (m, c.highest_uid))
        .collect();
    assert_eq!(
        listed,
        [("Archive".to_string(), 8), ("INBOX".to_string(), 7)],
        "folder cursors only, in mailbox order, of this account only"
    );
    assert_eq!(s.gmail_messages("a", &[41, 42]).unwrap(), [None, Some(m)]);
    assert_eq!(s.gmail_messages("ab", &[42]).unwrap(), [None]);
    assert_eq!(s.too_large("a", "INBOX").unwrap(), [(imap(3), big)]);
    assert!(s.too_large("a", "Archive").unwrap().is_empty());
}

/// The ingest log from a sequence number, bounded; the replay ledger per target
/// mailbox, later states winning.
pub fn ingest_log_and_ledger(fresh: Fresh<'_>) {
    let s = fresh();
    let mut b = MetaBatch::default();
    for seq in 0..10u64 {
        b.push(Change::LogEntry {
            seq,
            entry: IngestEntry {
                kind: if seq % 2 == 0 {
                    IngestKind::Message
                } else {
                    IngestKind::Placement
                },
                message: Hash32::of(&seq.to_be_bytes()),
            },
        });
    }
    let m = Hash32::of(b"r");
    let intent = Ledger::Intent {
        uidvalidity: 9,
        uidnext: 3,
    };
    let appended = Ledger::Appended {
        uidvalidity: 9,
        uid: Some(3),
    };
    for (mailbox, copy, state, at) in [
        ("INBOX", 0, intent, 1),
        ("INBOX", 1, intent, 1),
        ("INBOX", 1, appended, 2),
        ("INBOX.Sub", 0, intent, 3),
    ] {
        b.push(Change::Ledger {
            target: "u@h:993".into(),
            mailbox: mailbox.into(),
            message: m,
            copy,
            record: LedgerRecord { state, at },
        });
    }
    s.commit(b).unwrap();

    let seqs: Vec<u64> = s.ingest_log(4, 3).unwrap().into_iter().map(|(q, _)| q).collect();
    assert_eq!(seqs, [4, 5, 6]);
    assert_eq!(s.ingest_log(9, 10).unwrap()[0].1.kind, IngestKind::Placement);
    assert!(s.ingest_log(10, 10).unwrap().is_empty());
    let inbox = s.ledger("u@h:993", "INBOX").unwrap();
    assert_eq!(inbox.len(), 2, "INBOX.Sub is not part of INBOX");
    assert_eq!(inbox[&(m, 1)], LedgerRecord { state: appended, at: 2 });
    assert!(s.ledger("u@h:143", "INBOX").unwrap().is_empty());
}

/// An empty batch commits and changes nothing.
pub fn an_empty_batch_changes_nothing(fresh: Fresh<'_>) {
    let s = fresh();
    s.commit(MetaBatch::default()).unwrap();
    assert_eq!(s.format_version().unwrap(), None);
}

/// Purge's removals: a message, a part and a placement are gone, and the
/// placement no longer comes back by its message.
pub fn removals_take_records_and_reverse_entries_away(fresh: Fresh<'_>) {
    let s = fresh();
    let (m, p) = (Hash32::of(b"m"), Hash32::of(b"p"));
    let key = PlacementKey::new("a", "INBOX", &imap(1), &m);
    let mut b = MetaBatch::default();
    b.push(Change::Message {
        id: m,
        record: MessageRecord {
            raw_len: 10,
            seq: 0,
            first_seen: 1,
            parts: Vec::new(),
        },
    });
    b.push(Change::Part {
        id: p,
        record: PartRecord {
            payload_len: 3,
            first_seen: 1,
        },
    });
    b.push(Change::Placement {
        key: key.clone(),
        record: placement(m, 1),
        replaces: None,
    });
    s.commit(b).unwrap();
    assert_eq!(s.placements_of(&m).unwrap().len(), 1);
    let mut b = MetaBatch::default();
    b.push(Change::DropPlacement {
        key: key.clone(),
        message: m,
    });
    b.push(Change::DropMessage { id: m, why: None });
    b.push(Change::DropPart(p));
    s.commit(b).unwrap();
    assert_eq!(s.message(&m).unwrap(), None);
    assert_eq!(s.have(PayloadKind::Part, &[p]).unwrap(), vec![false]);
    assert_eq!(s.placements_get(&[key]).unwrap(), vec![None]);
    assert!(s.placements_of(&m).unwrap().is_empty());
}

/// Rules by kind and name; the change log in order from any record, its last
/// record, the checkpoints and the signing key.
pub fn rules_change_log_and_checkpoints(fresh: Fresh<'_>) {
    use crate::evidence::{CheckpointRecord, LogRecord, RuleKind, RuleRecord};
    let s = fresh();
    assert!(s.rules(RuleKind::Hold).unwrap().is_empty());
    assert_eq!(s.last_change().unwrap(), None);
    assert_eq!(s.signing_key().unwrap(), None);
    let rule = |q: &str| RuleRecord {
        query: q.into(),
        keep: "10y".into(),
        from_date: true,
        reason: String::new(),
        by: "u".into(),
        at: 1,
    };
    let mut b = MetaBatch::default();
    b.push(Change::Rule {
        kind: RuleKind::Retention,
        name: "b".into(),
        record: rule("*"),
    });
    b.push(Change::Rule {
        kind: RuleKind::Retention,
        name: "a".into(),
        record: rule("folder:Spam"),
    });
    b.push(Change::Rule {
        kind: RuleKind::Hold,
        name: "a".into(),
        record: rule("from:x"),
    });
    b.push(Change::SigningKey([7; 32]));
    for seq in 0..5u64 {
        b.push(Change::ChangeLog {
            seq,
            record: LogRecord {
                hash: Hash32([seq as u8; 32]),
                body: vec![seq as u8; 3],
            },
        });
        b.push(Change::Checkpoint(CheckpointRecord {
            count: seq + 1,
            head: Hash32([seq as u8; 32]),
            at: 5,
            signature: [1; 64],
        }));
    }
    s.commit(b).unwrap();
    let names: Vec<String> = s
        .rules(RuleKind::Retention)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(s.rules(RuleKind::Hold).unwrap()[0].1.query, "from:x");
    s.commit(one(Change::DropRule {
        kind: RuleKind::Retention,
        name: "a".into(),
    }))
    .unwrap();
    assert_eq!(s.rules(RuleKind::Retention).unwrap().len(), 1);
    assert_eq!(s.rules(RuleKind::Hold).unwrap().len(), 1, "kinds are apart");
    let from2: Vec<u64> = s.change_log(2, 2).unwrap().into_iter().map(|(q, _)| q).collect();
    assert_eq!(from2, [2, 3]);
    let (last, r) = s.last_change().unwrap().unwrap();
    assert_eq!((last, r.body), (4, vec![4; 3]));
    let counts: Vec<u64> = s.checkpoints().unwrap().iter().map(|c| c.count).collect();
    assert_eq!(counts, [1, 2, 3, 4, 5]);
    assert_eq!(s.signing_key().unwrap(), Some([7; 32]));
}

/// Tags by message and by tag: set, changed (the by-tag entries follow), counted
/// in tag order, and gone with an empty set.
pub fn tags_by_message_and_by_tag(fresh: Fresh<'_>) {
    use crate::tags::Tag;
    use std::collections::BTreeSet;
    let s = fresh();
    let (m, n) = (Hash32::of(b"m"), Hash32::of(b"n"));
    let set = |names: &[&str]| -> BTreeSet<Tag> { names.iter().map(|t| Tag::parse(t).unwrap()).collect() };
    let tag = |t: &str| Tag::parse(t).unwrap();
    assert_eq!(s.tags_of(&[m]).unwrap(), vec![BTreeSet::new()]);
    assert!(s.tag_counts().unwrap().is_empty());
    let mut b = MetaBatch::default();
    b.push(Change::Tags {
        message: m,
        tags: set(&["case-42", "todo"]),
        was: BTreeSet::new(),
    });
    b.push(Change::Tags {
        message: n,
        tags: set(&["case-42"]),
        was: BTreeSet::new(),
    });
    s.commit(b).unwrap();
    assert_eq!(
        s.tags_of(&[m, n]).unwrap(),
        vec![set(&["case-42", "todo"]), set(&["case-42"])]
    );
    let mut both = vec![m, n];
    both.sort();
    assert_eq!(s.tagged(&tag("case-42")).unwrap(), both);
    assert_eq!(s.tagged(&tag("case-4")).unwrap(), Vec::<Hash32>::new());
    assert_eq!(s.tag_counts().unwrap(), vec![(tag("case-42"), 2), (tag("todo"), 1)]);
    s.commit(one(Change::Tags {
        message: m,
        tags: set(&["done"]),
        was: set(&["case-42", "todo"]),
    }))
    .unwrap();
    assert_eq!(s.tagged(&tag("case-42")).unwrap(), vec![n]);
    assert!(s.tagged(&tag("todo")).unwrap().is_empty());
    assert_eq!(s.tagged(&tag("done")).unwrap(), vec![m]);
    s.commit(one(Change::Tags {
        message: m,
        tags: BTreeSet::new(),
        was: set(&["done"]),
    }))
    .unwrap();
    assert_eq!(s.tags_of(&[m]).unwrap(), vec![BTreeSet::new()]);
    assert_eq!(s.tag_counts().unwrap(), vec![(tag("case-42"), 1)]);
}
