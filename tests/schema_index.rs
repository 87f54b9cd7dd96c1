//! The index schema is exactly `schemas/index-v6.json` (tantivy's own serialised
//! form; `index-v5.json` is the one before, without the fast `order` field that
//! breaks every sort's ties; `index-v4.json` the one before that, without `thread`, `ancestry` and
//! `base_subject`; `index-v3.json` without `attachment`, `index-v2.json`
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
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/index-v6.json")).unwrap();
    let declared: serde_json::Value = serde_json::from_str(&text).expect("index-v6.json parses");
    assert_eq!(
        built, declared,
        "schema changed: that is index format v7 (MAILVAULT_BLESS=1 prints it)"
    );
}

mod common;

/// Unpacks a fixture archive (`tests/data/ORIGIN.md`) into `dir`; its path.
fn unpack(fixture: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let st = std::process::Command::new("tar")
        .args(["-I", "zstd -d", "-xf"])
        .arg(common::manifest_dir().join("tests/data").join(fixture))
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    dir.join("archive")
}

/// `tests/data/index-v3.tar.zst` (`tests/data/ORIGIN.md`): an archive of
/// `tests/data/documents/messages.mbox` whose index a v3 build made, before
/// attachment text was indexed.
#[test]
fn an_index_of_version_3_is_rebuilt_and_then_finds_attachment_text() {
    let dir = tempfile::tempdir().unwrap();
    let archive = unpack("index-v3.tar.zst", dir.path());
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

/// `tests/data/index-v4.tar.zst`: the same messages, indexed by a v4 build
/// (before threads): rebuilt, and then every message has its thread.
#[test]
fn an_index_of_version_4_is_rebuilt_and_then_has_threads() {
    let dir = tempfile::tempdir().unwrap();
    let archive = unpack("index-v4.tar.zst", dir.path());
    let out = common::run(
        &archive,
        &["search", "--threads", "--format", "ids", "--limit", "0", "*"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rebuilding the index"), "{stderr}");
    // Fourteen messages, none a reply: fourteen threads of one.
    let threads: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(threads.len(), 14);
    for t in &threads {
        let n = common::ok(&archive, &["search", "--count", &format!("thread:{t}")]);
        assert_eq!(n.trim(), "1", "thread:{t}");
    }
}

/// `tests/data/index-v5.tar.zst`: the same messages, indexed by a v5 build
/// (before the `order` field): rebuilt, and then every message is found, in one
/// order however the search is paged.
#[test]
fn an_index_of_version_5_is_rebuilt_and_then_pages_in_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let archive = unpack("index-v5.tar.zst", dir.path());
    let out = common::run(&archive, &["search", "--format", "ids", "--limit", "0", "*"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rebuilding the index"), "{stderr}");
    let all: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(all.len(), 14);
    let mut paged = Vec::new();
    for offset in [0, 5, 10] {
        let page = common::ok(
            &archive,
            &[
                "search",
                "--format",
                "ids",
                "--limit",
                "5",
                "--offset",
                &offset.to_string(),
                "*",
            ],
        );
        paged.extend(page.lines().map(str::to_string));
    }
    assert_eq!(paged, all);
}
