//! The storage layout in `schemas/store-v5.toml` is what the code writes: column
//! families in order, the pack magics, and the exact bytes of each example key and
//! record; format 2 kept format 1 unchanged but for its addition, format 3 kept
//! every record of format 2 but the blobs it moved into packs, format 4 kept
//! every record of format 3 and added the compliance records, and format 5 kept
//! every record of format 4 and added tags.
//! `MAILVAULT_BLESS=1` prints the examples' current bytes (for a deliberate change,
//! which is a format change: bump the version).

use mailvault::evidence::{Cause, ChangeRecord, CheckpointRecord, Item, LogRecord, RuleKind, RuleRecord};
use mailvault::keys;
use mailvault::mime::{B64Layout, Splice, Transform};
use mailvault::model::{Flags, Hash32, SourceKey};
use mailvault::plan::replay::Ledger;
use mailvault::records::*;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn examples() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let m = Hash32::of(b"m");
    let p = Hash32::of(b"p");
    vec![
        ("key.messages", "id(\"m\")", keys::by_hash(&m)),
        ("key.blobs.part", "part id(\"p\")", keys::blob(PayloadKind::Part, &p)),
        ("key.blobs.skeleton", "message id(\"m\")", keys::blob(PayloadKind::Skeleton, &m)),
        ("key.placements.local", "acct / INBOX / Local occurrence 1 of id(\"m\")", keys::placement("acct", "INBOX", &SourceKey::Local { occurrence: 1 }, &m)),
        ("key.placements.imap", "acct / Sent / uidvalidity 7, uid 42", keys::placement("acct", "Sent", &SourceKey::Imap { uidvalidity: 7, uid: 42 }, &m)),
        ("key.placements.pop3", "acct / INBOX / UIDL abc", keys::placement("acct", "INBOX", &SourceKey::Pop3 { uidl: "abc".into() }, &m)),
        ("key.cursors", "acct / INBOX", keys::cursor("acct", "INBOX")),
        ("key.cursors.gmail", "acct / X-GM-MSGID 1278455344230334865", keys::gmail_message("acct", 1_278_455_344_230_334_865)),
        ("key.cursors.too_large", "acct / INBOX / uidvalidity 7, uid 42", keys::too_large("acct", "INBOX", &SourceKey::Imap { uidvalidity: 7, uid: 42 })),
        ("key.ingest_log", "seq 5", keys::ingest_seq(5).to_vec()),
        ("key.dictionaries", "dict 1", keys::dictionary(1).to_vec()),
        (
            "value.messages",
            "raw_len 9000, seq 3, first_seen 1700000000, parts: identity at 100 len 2500 id(\"p\"); base64 76/CRLF/final at 3000 len 5000 id(\"p\")",
            MessageRecord {
                raw_len: 9000,
                seq: 3,
                first_seen: 1_700_000_000,
                parts: vec![
                    PartRef { splice: Splice { offset: 100, len: 2500, transform: Transform::Identity }, part: p },
                    PartRef {
                        splice: Splice { offset: 3000, len: 5000, transform: Transform::Base64(B64Layout { line_len: 76, crlf: true, final_eol: true }) },
                        part: p,
                    },
                ],
            }
            .encode(),
        ),
        ("value.parts", "payload_len 2500, first_seen 1700000000", PartRecord { payload_len: 2500, first_seen: 1_700_000_000 }.encode()),
        (
            "value.placements",
            "id(\"m\"), Seen+Flagged, keyword $Forwarded, date 1600000000, seen 1700000000..1700000100, not deleted",
            PlacementRecord {
                message: m,
                flags: Flags { system: Flags::SEEN | Flags::FLAGGED, keywords: vec!["$Forwarded".into()] },
                internal_date: Some(1_600_000_000),
                first_seen: 1_700_000_000,
                last_seen: 1_700_000_100,
                deleted_at: None,
            }
            .encode(),
        ),
        ("value.cursors", "uidvalidity 7, highest uid 42, modseq 99, at 1700000000, remote &AOQ-rger, \\Junk", CursorRecord { uidvalidity: 7, highest_uid: 42, highest_modseq: 99, updated_at: 1_700_000_000, remote_name: "&AOQ-rger".into(), special_use: "\\Junk".into() }.encode()),
        ("value.cursors.too_large", "600000000 bytes, received, at 1700000000", TooLargeRecord { bytes: 600_000_000, received: true, at: 1_700_000_000 }.encode()),
        ("value.ingest_log", "message stored, id(\"m\")", IngestEntry { kind: IngestKind::Message, message: m }.encode()),
        (
            "value.counters",
            "messages 1, placements 2, parts 3, raw 4, placement_raw 5, unique 6, part_dedup 10, stored 7, next_seq 8, dictionaries 9",
            Counters { messages: 1, placements: 2, parts: 3, raw_bytes: 4, placement_raw_bytes: 5, unique_bytes: 6, part_dedup_bytes: 10, stored_bytes: 7, next_seq: 8, dictionaries: 9 }.encode(),
        ),
        ("value.blobs", "zstd with dictionary 1, payload_len 3, data \"xyz\"", BlobHeader { codec: Codec::ZstdDict, dict_id: 1, payload_len: 3 }.encode(b"xyz")),
        ("key.packs", "pack 7", keys::pack(7).to_vec()),
        (
            "value.pack_index",
            "pack 7, frame at 8 of 300 bytes, zstd with dictionary 1, offset 120, len 64, group 0x0102030405060708",
            BlobLocation { pack: 7, frame_offset: 8, frame_len: 300, codec: Codec::ZstdDict, dict_id: 1, offset: 120, len: 64, group: 0x0102_0304_0506_0708 }.encode(),
        ),
        (
            "value.packs",
            "name id(\"m\"), 5000 bytes, 12 entries, level 19, created 1700000000",
            PackRecord { name: m, size: 5000, entries: 12, level: 19, created: 1_700_000_000 }.encode(),
        ),
        ("key.replay_ledger", "u@h:993 / Sent / id(\"m\") copy 1", keys::ledger("u@h:993", "Sent", &m, 1)),
        ("value.replay_ledger.intent", "intent, uidvalidity 7, uidnext 40, at 1700000000", LedgerRecord { state: Ledger::Intent { uidvalidity: 7, uidnext: 40 }, at: 1_700_000_000 }.encode()),
        ("value.replay_ledger.appended", "appended, uidvalidity 7, uid 42, at 1700000000", LedgerRecord { state: Ledger::Appended { uidvalidity: 7, uid: Some(42) }, at: 1_700_000_000 }.encode()),
        ("value.replay_ledger.present", "present, uidvalidity 7, no uid, at 1700000000", LedgerRecord { state: Ledger::Present { uidvalidity: 7, uid: None }, at: 1_700_000_000 }.encode()),
        ("key.rules", "retention policy spam", keys::rule(RuleKind::Retention, "spam")),
        (
            "value.rules",
            "query folder:Spam, keep 90d, from date, no reason, by alice, at 1700000000",
            RuleRecord { query: "folder:Spam".into(), keep: "90d".into(), from_date: true, reason: String::new(), by: "alice".into(), at: 1_700_000_000 }.encode(),
        ),
        ("key.change_log", "record 5", keys::log_seq(5).to_vec()),
        (
            "value.change_log",
            "hash id(\"p\"), body: ingest at 1700000000 by alice: added id(\"m\"); placed acct / Sent / uidvalidity 7, uid 42 -> id(\"m\"), not deleted",
            LogRecord {
                hash: p,
                body: ChangeRecord {
                    cause: Cause::Ingest,
                    at: 1_700_000_000,
                    by: "alice".into(),
                    items: vec![
                        Item::MessageAdded(m),
                        Item::Placed { key: keys::placement("acct", "Sent", &SourceKey::Imap { uidvalidity: 7, uid: 42 }, &m), message: m, deleted: false },
                    ],
                }
                .encode(),
            }
            .encode(),
        ),
        ("value.checkpoints", "count 6, head id(\"m\"), at 1700000000, signature 64 x 0xab", CheckpointRecord { count: 6, head: m, at: 1_700_000_000, signature: [0xab; 64] }.encode()),
        ("key.tags.message", "tags of id(\"m\")", keys::tags_of(&m)),
        ("key.tags.tagged", "case-42 on id(\"m\")", keys::tagged("case-42", &m)),
        (
            "value.tags",
            "case-42, todo",
            mailvault::tags::encode(&["case-42", "todo"].iter().map(|t| mailvault::tags::Tag::parse(t).unwrap()).collect()),
        ),
    ]
}

fn schema_file(name: &str) -> toml::Table {
    let path = format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.parse().unwrap_or_else(|e| panic!("{path} parses: {e}"))
}

fn schema() -> toml::Table {
    schema_file("store-v5.toml")
}

fn declared_examples(s: &toml::Table) -> Vec<(String, String)> {
    s.get("example")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().to_string(),
                        e["hex"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn cf_names(s: &toml::Table) -> Vec<String> {
    s["column_family"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// Format 2 is format 1 plus the replay ledger: every v1 column family and example
/// is still there, byte for byte (which is why the upgrade need not rewrite data).
#[test]
fn version_2_only_adds_to_version_1() {
    let (v1, v2) = (schema_file("store-v1.toml"), schema_file("store-v2.toml"));
    assert_eq!(v1["format_version"].as_integer(), Some(1));
    assert_eq!(cf_names(&v1), keys::V1_CFS.to_vec());
    assert_eq!(cf_names(&v2)[..keys::V1_CFS.len()], cf_names(&v1)[..]);
    assert_eq!(v2["upgrades_from"].as_array().unwrap()[0].as_integer(), Some(1));
    let v2_examples = declared_examples(&v2);
    for (name, hex) in declared_examples(&v1) {
        assert!(
            v2_examples.contains(&(name.clone(), hex)),
            "{name}: version 2 changed a version-1 layout"
        );
    }
    assert_eq!(mailvault::archive::layout::OLDEST_READABLE, 1);
}

/// Format 3 keeps every format-2 column family but `blobs`, in order, and every
/// format-2 record byte for byte: the upgrade moves blobs and rewrites nothing else.
#[test]
fn version_3_keeps_every_version_2_record_but_the_blobs() {
    let (v2, v3) = (schema_file("store-v2.toml"), schema_file("store-v3.toml"));
    let kept: Vec<String> = cf_names(&v2).into_iter().filter(|n| n != "blobs").collect();
    assert_eq!(cf_names(&v3)[..kept.len()], kept[..]);
    assert_eq!(keys::V2_CFS.to_vec(), cf_names(&v2));
    let upgrades: Vec<i64> = v3["upgrades_from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_integer().unwrap())
        .collect();
    assert_eq!(upgrades, vec![1, 2]);
    let v3_examples = declared_examples(&v3);
    for (name, hex) in declared_examples(&v2) {
        assert!(
            v3_examples.contains(&(name.clone(), hex)),
            "{name}: version 3 changed a version-2 layout"
        );
    }
}

/// Format 5 keeps every format-4 column family and record byte for byte and adds
/// the tags: the upgrade rewrites nothing.
#[test]
fn version_5_only_adds_to_version_4() {
    let (v4, v5) = (schema_file("store-v4.toml"), schema());
    assert_eq!(cf_names(&v4), keys::V4_CFS.to_vec());
    assert_eq!(cf_names(&v5)[..keys::V4_CFS.len()], cf_names(&v4)[..]);
    let upgrades: Vec<i64> = v5["upgrades_from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_integer().unwrap())
        .collect();
    assert_eq!(upgrades, vec![1, 2, 3, 4]);
    let v5_examples = declared_examples(&v5);
    for (name, hex) in declared_examples(&v4) {
        assert!(
            v5_examples.contains(&(name.clone(), hex)),
            "{name}: version 5 changed a version-4 layout"
        );
    }
}

/// Format 4 keeps every format-3 column family and record byte for byte and adds
/// the rules, the change log and its checkpoints: the upgrade rewrites nothing.
#[test]
fn version_4_only_adds_to_version_3() {
    let (v3, v4) = (schema_file("store-v3.toml"), schema_file("store-v4.toml"));
    assert_eq!(cf_names(&v3), keys::V3_CFS.to_vec());
    assert_eq!(cf_names(&v4)[..keys::V3_CFS.len()], cf_names(&v3)[..]);
    let upgrades: Vec<i64> = v4["upgrades_from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_integer().unwrap())
        .collect();
    assert_eq!(upgrades, vec![1, 2, 3]);
    let v4_examples = declared_examples(&v4);
    for (name, hex) in declared_examples(&v3) {
        assert!(
            v4_examples.contains(&(name.clone(), hex)),
            "{name}: version 4 changed a version-3 layout"
        );
    }
}

#[test]
fn pack_magics_match() {
    let s = schema();
    let pack = s["pack"].as_table().unwrap();
    assert_eq!(
        pack["magic"].as_str().unwrap().as_bytes(),
        mailvault::archive::pack::MAGIC
    );
    assert_eq!(
        pack["end_magic"].as_str().unwrap().as_bytes(),
        mailvault::archive::pack::END_MAGIC
    );
    assert_eq!(
        pack["entry_bytes"].as_integer(),
        Some(mailvault::archive::pack::ENTRY_LEN as i64)
    );
}

#[test]
fn column_families_match() {
    let s = schema();
    assert_eq!(
        s["format_version"].as_integer(),
        Some(mailvault::archive::layout::FORMAT_VERSION as i64)
    );
    assert_eq!(s["marker_file"].as_str(), Some(mailvault::archive::layout::MARKER_FILE));
    assert_eq!(cf_names(&s), keys::ALL_CFS.to_vec());
}

#[test]
fn example_bytes_match() {
    let ex = examples();
    if std::env::var("MAILVAULT_BLESS").is_ok() {
        for (name, input, bytes) in &ex {
            println!(
                "\n[[example]]\nname = \"{name}\"\ninput = {:?}\nhex = \"{}\"",
                input,
                hex(bytes)
            );
        }
    }
    let s = schema();
    let declared = declared_examples(&s);
    assert_eq!(
        declared.len(),
        ex.len(),
        "every example is declared once (MAILVAULT_BLESS=1 prints them)"
    );
    for ((name, _, bytes), (dname, dhex)) in ex.iter().zip(&declared) {
        assert_eq!(name, dname, "example order");
        assert_eq!(&hex(bytes), dhex, "{name}: code and schemas/store-v5.toml disagree");
    }
}
