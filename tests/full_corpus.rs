//! Every message of the four shared corpora imports without a panic, exports as
//! `.eml` byte-identical, and `verify` is clean (issue 2, item 1, full size).
//!
//! Needs `../shared/corpus` or `$MAILVAULT_CORPUS`; says so and does nothing when
//! neither is present.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use common::*;
use mailvault::model::MessageId;
use mailvault::source::{read_paths, Event, LocalOptions};

const CORPORA: [&str; 3] = [
    "enron-skilling-j",
    "spamassassin-public-corpus",
    "usrp-users-list-2019-2021",
];

#[test]
fn all_shared_corpora_roundtrip_byte_exact() {
    let mut paths: Vec<PathBuf> = Vec::new();
    for c in CORPORA {
        let Some(p) = shared_corpus(c) else { return };
        paths.push(p);
    }
    let Some(edge) = shared_edge_cases() else { return };
    paths.extend(edge);
    paths.sort();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let mut args: Vec<String> = vec!["import".into(), "-q".into(), "--json".into()];
    args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let summary: serde_json::Value = serde_json::from_str(&ok(&a, &args_ref)).unwrap();
    eprintln!("full corpus import: {summary}");

    // Expected: each placement's bytes, as the source reader defines messages.
    let mut expected: HashMap<(String, MessageId), Vec<u8>> = HashMap::new();
    let mut placements = 0u64;
    read_paths(&paths, &LocalOptions::default(), &mut |ev| {
        if let Event::Message(m) = ev {
            for p in &m.placements {
                placements += 1;
                expected
                    .entry((p.mailbox.clone(), m.id))
                    .or_insert_with(|| m.raw.clone());
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(placements > 16_000, "read {placements} placements");
    assert_eq!(stat_u64(&a, "placements"), placements);

    let out = tmp.path().join("out");
    ok(&a, &["export", "-q", "--format", "eml", "--out", out.to_str().unwrap()]);
    let mut files = 0u64;
    for ((mailbox, id), raw) in &expected {
        let dir = out.join("local").join(mailbox);
        let f = dir.join(format!("{}.eml", id.to_hex()));
        let got = fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(got == *raw, "{} differs from the source message", f.display());
        files += 1;
    }
    eprintln!("{files} exported files compared byte for byte");
    let v = ok(&a, &["verify", "-q"]);
    assert!(v.contains("clean"), "{v}");
}
