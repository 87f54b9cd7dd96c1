//! The index schema is exactly `schemas/index-v4.json` (tantivy's own serialised
//! form; `index-v3.json` is the one before, without `attachment`, `index-v2.json`
//! the one before that, without `facet`, and `index-v1.json` without
//! `placement`). `MAILVAULT_BLESS=1` prints the
//! current one. An index of an older version is rebuilt when opened for writing.

use mailvault::index::MessageIndex;

#[test]
fn index_schema_matches_declaration() {
    let built = MessageIndex::schema_json();
    if std::env::var("MAILVAULT_BLESS").is_ok() {
        println!("{}", serde_json::to_string_pretty(&built).unwrap());
    }
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/index-v4.json")).unwrap();
    let declared: serde_json::Value = serde_json::from_str(&text).expect("index-v4.json parses");
    assert_eq!(
        built, declared,
        "schema changed: that is index format v5 (MAILVAULT_BLESS=1 prints it)"
    );
}

mod common;

/// `tests/data/index-v3.tar.zst` (`tests/data/ORIGIN.md`): an archive of
/// `tests/data/documents/messages.mbox` whose index a v3 build made, before
/// attachment text was indexed.
#[test]
fn an_index_of_version_3_is_rebuilt_and_then_finds_attachment_text() {
    let dir = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("tar")
        .args(["-I", "zstd -d", "-xf"])
        .arg(common::manifest_dir().join("tests/data/index-v3.tar.zst"))
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let archive = dir.path().join("archive");
    let out = common::run(&archive, &["search", "--format", "ids", "quillorbit"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rebuilding the index"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1, "{stderr}");
    // Rebuilt whole: every message is there, and the next search finds it as is.
    assert_eq!(
        common::ok(&archive, &["search", "--format", "ids", "from:ann"])
            .lines()
            .count(),
        14
    );
    let again = common::run(&archive, &["search", "--format", "ids", "att:marbletusk"]);
    assert!(!String::from_utf8_lossy(&again.stderr).contains("rebuilding"));
    assert_eq!(String::from_utf8_lossy(&again.stdout).lines().count(), 1);
}
