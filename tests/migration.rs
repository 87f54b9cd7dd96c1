//! Format upgrades: archives written by the last format-1, -2 and -3 builds
//! (`tests/data/archive-v1.tar.zst`, `archive-v2.tar.zst`, `archive-v3.tar.zst`)
//! are read as they are, and upgraded in place to the current format by the first
//! writable open (blobs moved into packs; the change log begun with the messages
//! already held), with every message still byte-exact; an upgrade killed midway
//! is finished by the next open.

mod common;

use std::fs;

use common::*;
use mailvault::archive::layout::{FORMAT_VERSION, MARKER_FILE};
use mailvault::archive::{Archive, ArchiveConfig};
use mailvault::model::MessageId;

fn marker_version(archive: &std::path::Path) -> u32 {
    let text = fs::read_to_string(archive.join(MARKER_FILE)).unwrap();
    let t: toml::Table = text.parse().unwrap();
    t["format_version"].as_integer().unwrap() as u32
}

fn column_families(archive: &std::path::Path) -> Vec<String> {
    rocksdb::DB::list_cf(&rocksdb::Options::default(), archive.join("db")).unwrap()
}

/// Every fixture message reads back with its id (the archive hashes on read).
fn all_messages_read_back(a: &Archive, ids: &[String]) {
    let mut stored: Vec<String> = a.message_ids().unwrap().iter().map(|i| i.to_hex()).collect();
    stored.sort();
    assert_eq!(stored, ids, "the fixture's messages");
    for id in ids {
        let raw = a.get_raw(&MessageId::from_hex(id).unwrap()).unwrap();
        assert_eq!(&MessageId::of(&raw).to_hex(), id);
    }
}

#[test]
fn version_1_reads_without_change_and_upgrades_on_first_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (arch, ids) = v1_fixture(tmp.path());
    assert_eq!(ids.len(), 20);
    assert_eq!(marker_version(&arch), 1);
    assert!(!column_families(&arch).contains(&"replay_ledger".to_string()));

    // Read-only: a v1 archive as it is; nothing upgraded.
    {
        let a = Archive::open_read_only(&arch).unwrap();
        assert_eq!(a.format_version(), 1);
        all_messages_read_back(&a, &ids);
        assert!(a.ledger("u@h:993", "INBOX").unwrap().is_empty(), "v1 has no ledger");
    }
    let hits = ok(&arch, &["search", "--format", "json", "folder:sent"]);
    assert_eq!(hits.lines().count(), 6, "search of a v1 archive:\n{hits}");
    assert_eq!(marker_version(&arch), 1, "reading did not upgrade");

    // `stats` only reads: still version 1.
    let stats: serde_json::Value = serde_json::from_str(&ok(&arch, &["stats", "--json"])).unwrap();
    assert_eq!(stats["format_version"], 1);
    assert_eq!(marker_version(&arch), 1, "stats did not upgrade");
    // The first writable open (here `reindex`) upgrades: column family, meta, marker.
    ok(&arch, &["-q", "reindex"]);
    let stats: serde_json::Value = serde_json::from_str(&ok(&arch, &["stats", "--json"])).unwrap();
    assert_eq!(stats["format_version"], FORMAT_VERSION);
    assert_eq!(stats["messages"], 20);
    assert_eq!(marker_version(&arch), FORMAT_VERSION);
    assert!(column_families(&arch).contains(&"replay_ledger".to_string()));
    assert!(
        !column_families(&arch).contains(&"blobs".to_string()),
        "blobs moved into packs"
    );
    let a = Archive::open(&arch).unwrap();
    assert_eq!(a.format_version(), FORMAT_VERSION);
    all_messages_read_back(&a, &ids);
    drop(a);
    let verify = ok(&arch, &["verify"]);
    assert!(verify.contains("20 messages") && verify.contains("clean"), "{verify}");
    // Placements, flags and folders survived.
    let sent = ok(&arch, &["search", "--format", "json", "folder:sent flag:answered"]);
    assert_eq!(sent.lines().count(), 6, "{sent}");
}

/// A crash after the database was upgraded but before the marker was rewritten:
/// the next open finishes the upgrade.
#[test]
fn an_interrupted_upgrade_is_finished_by_the_next_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (arch, ids) = v1_fixture(tmp.path());
    drop(Archive::open(&arch).unwrap());
    let marker = arch.join(MARKER_FILE);
    let text = fs::read_to_string(&marker).unwrap();
    fs::write(
        &marker,
        text.replace(&format!("format_version = {FORMAT_VERSION}"), "format_version = 1"),
    )
    .unwrap();
    assert_eq!(marker_version(&arch), 1);
    let a = Archive::open_read_only(&arch).unwrap();
    all_messages_read_back(&a, &ids);
    drop(a);
    let a = Archive::open(&arch).unwrap();
    assert_eq!(a.format_version(), FORMAT_VERSION);
    assert_eq!(marker_version(&arch), FORMAT_VERSION);
    all_messages_read_back(&a, &ids);
}

/// Packs the archive references, and the bytes they hold (all in `ARCHIVE/packs`).
fn pack_files(archive: &std::path::Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(archive.join("packs"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn version_2_moves_its_blobs_into_packs_on_first_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (arch, ids) = v2_fixture(tmp.path());
    assert_eq!(ids.len(), 502);
    assert_eq!(marker_version(&arch), 2);
    {
        let a = Archive::open_read_only(&arch).unwrap();
        assert_eq!(a.format_version(), 2);
        all_messages_read_back(&a, &ids);
    }
    assert!(pack_files(&arch).is_empty(), "reading wrote no pack");
    let a = Archive::open(&arch).unwrap();
    assert_eq!(a.format_version(), FORMAT_VERSION);
    assert_eq!(marker_version(&arch), FORMAT_VERSION);
    all_messages_read_back(&a, &ids);
    let packs = a.pack_records();
    assert!(!packs.is_empty());
    let stored: u64 = packs.iter().map(|(_, r)| r.size).sum();
    assert_eq!(a.counters().stored_bytes, stored, "stored bytes are the packs' bytes");
    drop(a);
    assert!(!column_families(&arch).contains(&"blobs".to_string()));
    assert_eq!(pack_files(&arch).len(), packs.len());
    let verify = ok(&arch, &["verify"]);
    assert!(verify.contains("502 messages") && verify.contains("clean"), "{verify}");
    // The shared photo is still stored once and reads back in both messages.
    let photos = ok(&arch, &["search", "--format", "ids", "folder:photos"]);
    assert_eq!(photos.lines().count(), 2, "{photos}");
    let stats: serde_json::Value = serde_json::from_str(&ok(&arch, &["stats", "--json"])).unwrap();
    assert_eq!(stats["messages"], 502);
    assert!(stats["dedup_saved_bytes"].as_u64().unwrap() > 20_000, "{stats}");
}

#[test]
fn a_killed_upgrade_reads_throughout_and_finishes_on_the_next_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (arch, ids) = v2_fixture(tmp.path());
    let stopping = ArchiveConfig {
        upgrade_pack_bytes: 256 << 10,
        upgrade_stop_after_packs: Some(2),
        ..ArchiveConfig::default()
    };
    let err = Archive::open_with(&arch, false, stopping)
        .err()
        .expect("the upgrade stops");
    assert!(err.to_string().contains("stopped after 2 packs"), "{err}");
    assert_eq!(marker_version(&arch), 2, "the marker changes last");
    assert_eq!(pack_files(&arch).len(), 2);
    // Half-way: some payloads in packs, the rest still in `blobs`; every message reads.
    {
        let a = Archive::open_read_only(&arch).unwrap();
        all_messages_read_back(&a, &ids);
    }
    let a = Archive::open_with(
        &arch,
        false,
        ArchiveConfig {
            upgrade_pack_bytes: 256 << 10,
            ..ArchiveConfig::default()
        },
    )
    .unwrap();
    assert_eq!(a.format_version(), FORMAT_VERSION);
    assert!(a.pack_records().len() > 2, "the rest moved in more packs");
    all_messages_read_back(&a, &ids);
    drop(a);
    assert_eq!(marker_version(&arch), FORMAT_VERSION);
    assert!(!column_families(&arch).contains(&"blobs".to_string()));
    let verify = ok(&arch, &["verify"]);
    assert!(verify.contains("502 messages") && verify.contains("clean"), "{verify}");
}

/// The format-3 fixture (`tests/data/ORIGIN.md`): its directory and message ids.
fn v3_fixture(dir: &std::path::Path) -> (std::path::PathBuf, Vec<String>) {
    let st = std::process::Command::new("tar")
        .args(["-I", "zstd -d", "-xf"])
        .arg(manifest_dir().join("tests/data/archive-v3.tar.zst"))
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    let ids = fs::read_to_string(dir.join("archive-v3.ids")).unwrap();
    let mut ids: Vec<String> = ids.lines().map(str::to_string).collect();
    ids.sort();
    (dir.join("archive-v3"), ids)
}

#[test]
fn version_3_begins_its_change_log_with_every_message_it_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let (arch, ids) = v3_fixture(tmp.path());
    assert_eq!(ids.len(), 502);
    assert_eq!(marker_version(&arch), 3);
    {
        let a = Archive::open_read_only(&arch).unwrap();
        assert_eq!(a.format_version(), 3);
        all_messages_read_back(&a, &ids);
        assert!(
            a.verify_chain(None, None).is_err(),
            "a format-3 archive has no change log"
        );
    }
    assert!(
        !column_families(&arch).contains(&"change_log".to_string()),
        "reading changed nothing"
    );
    assert!(!arch.join("keys").exists());
    let a = Archive::open(&arch).unwrap();
    assert_eq!(a.format_version(), FORMAT_VERSION);
    all_messages_read_back(&a, &ids);
    let r = a.verify_chain(None, None).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    assert_eq!(r.messages, 502);
    assert_eq!(r.records, 1, "502 ids fit one baseline record");
    drop(a);
    assert_eq!(marker_version(&arch), FORMAT_VERSION);
    use std::os::unix::fs::PermissionsExt;
    let key = arch.join("keys/signing.key");
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let out = ok(&arch, &["verify", "--chain"]);
    assert!(
        out.contains("502 messages accounted for") && out.ends_with("clean\n"),
        "{out}"
    );
    // Later work extends the log.
    ok(&arch, &["retention", "set", "all", "--query", "*", "--keep", "forever"]);
    let out = ok(&arch, &["verify", "--chain"]);
    assert!(out.contains("change log: 2 records"), "{out}");
}
