//! A search index split into shards answers exactly as one index does: the same
//! ids in the same order for every benchmark query, sort and page; a shard
//! rebuilt alone changes nothing; new mail reaches each shard; a bad shard
//! number is refused.
//!
//! The corpus test needs `../shared/corpus` or `$MAILVAULT_CORPUS`; it says so
//! and does nothing when neither is present.

mod common;
#[path = "common/queries.rs"]
mod queries;

use std::path::Path;

use common::*;
use mailvault::index::MessageIndex;
use mailvault::query::parse;
use queries::QUERIES;

/// The main set, as the benchmarks use it.
const MAIN_SET: [&str; 3] = [
    "enron-skilling-j",
    "spamassassin-public-corpus",
    "usrp-users-list-2019-2021",
];

/// Every sort `search --sort` takes.
const SORTS: [&str; 3] = ["-date", "date", "relevance"];

/// What the index answers: for each query and sort, the first 20 ids and a page
/// further in (7 from the 14th), as `search --format ids` prints them.
fn answers(archive: &Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for q in QUERIES {
        for sort in SORTS {
            for (limit, offset) in [("20", "0"), ("7", "13")] {
                let ids = ok(
                    archive,
                    &[
                        "search", "-q", "--format", "ids", "--sort", sort, "--limit", limit, "--offset", offset, q,
                    ],
                );
                let ids = ids.lines().map(str::to_string).collect();
                out.push((format!("{q:?} --sort {sort} --limit {limit} --offset {offset}"), ids));
            }
        }
    }
    out
}

/// Where two lists of answers first differ, if they do.
fn first_difference(a: &[(String, Vec<String>)], b: &[(String, Vec<String>)]) -> Option<String> {
    a.iter()
        .zip(b)
        .find(|(x, y)| x != y)
        .map(|(x, y)| format!("{}:\n  one index: {:?}\n  shards:    {:?}", x.0, x.1, y.1))
}

#[test]
fn four_shards_answer_the_benchmark_queries_as_one_index_does() {
    let mut folders = Vec::new();
    for c in MAIN_SET {
        let Some(p) = shared_corpus(c) else { return };
        folders.push(p.to_string_lossy().into_owned());
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let mut args = vec!["import", "-q", "--no-index"];
    args.extend(folders.iter().map(String::as_str));
    ok(&a, &args);

    ok(&a, &["reindex", "-q"]);
    assert!(!a.join("index/shards").exists(), "one index by default");
    let one = answers(&a);
    let found = one.iter().filter(|(_, ids)| !ids.is_empty()).count();
    assert!(
        found * 10 >= one.len() * 9,
        "most queries find something: {found} of {}",
        one.len()
    );
    let full = one.iter().filter(|(_, ids)| ids.len() == 20).count();
    assert!(full >= 60, "many first pages are full: {full}");

    let out = ok(&a, &["reindex", "--shards", "4"]);
    assert!(out.contains("4 shards"), "{out}");
    assert_eq!(std::fs::read_to_string(a.join("index/shards")).unwrap().trim(), "4");
    for k in 0..4 {
        assert!(a.join(format!("index/shard-{k}/meta.json")).exists(), "shard {k}");
    }
    let four = answers(&a);
    if let Some(d) = first_difference(&one, &four) {
        panic!("4 shards differ from one index at {d}");
    }

    // One shard rebuilt alone: the same answers.
    ok(&a, &["reindex", "-q", "--shard", "2"]);
    let rebuilt = answers(&a);
    if let Some(d) = first_difference(&one, &rebuilt) {
        panic!("after shard 2 was rebuilt alone, 4 shards differ from one index at {d}");
    }
    // A later reindex keeps the shards.
    ok(&a, &["reindex", "-q"]);
    assert_eq!(std::fs::read_to_string(a.join("index/shards")).unwrap().trim(), "4");
}

/// An mbox of `n` messages in threads of four, all with the word `common`.
fn threads_mbox(path: &Path, n: usize) {
    let mut text = String::new();
    for i in 0..n {
        let parent = if i % 4 == 0 {
            String::new()
        } else {
            format!("In-Reply-To: <m{}@shard.test>\n", i - i % 4)
        };
        text.push_str(&format!(
            "From a@b Sat Jan  1 00:00:00 2000\nFrom: s{}@d{}.test\nTo: r@x.test\nSubject: topic {}\nMessage-ID: <m{i}@shard.test>\n{parent}Date: Sat, {} Jan 2000 10:00:00 +0000\n\nword{} common\n\n",
            i % 3,
            i % 5,
            i / 4,
            1 + i % 28,
            i % 7
        ));
    }
    std::fs::write(path, &text).unwrap();
}

/// An empty archive in `dir` whose index has `shards` shards, and beside it an
/// mbox of 40 messages ([`threads_mbox`]) not imported yet.
fn sharded_archive(dir: &Path, shards: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let a = dir.join("a");
    let mbox = dir.join("m.mbox");
    threads_mbox(&mbox, 40);
    ok(&a, &["init"]);
    ok(&a, &["reindex", "-q", "--shards", &shards.to_string()]);
    (a, mbox)
}

#[test]
fn new_mail_reaches_every_shard_and_counts_facets_and_threads_add_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, mbox) = sharded_archive(tmp.path(), 4);
    ok(&a, &["import", "-q", mbox.to_str().unwrap()]);
    assert_eq!(ok(&a, &["search", "--count", "common"]).trim(), "40");
    assert_eq!(ok(&a, &["search", "--count", "word3"]).trim(), "6");
    let ids = ok(&a, &["search", "--format", "ids", "--limit", "100", "common"]);
    assert_eq!(ids.lines().count(), 40);
    let huge = u64::MAX.to_string();
    let none = ok(
        &a,
        &[
            "search", "--format", "ids", "--offset", &huge, "--limit", &huge, "common",
        ],
    );
    assert_eq!(
        none, "",
        "an offset past the end finds nothing, and sizes nothing by it"
    );
    let last = ok(
        &a,
        &[
            "search", "--format", "ids", "--offset", "39", "--limit", &huge, "common",
        ],
    );
    assert_eq!(last.lines().count(), 1);
    // Every shard holds some of them (40 hashed ids over 4 shards).
    let per: Vec<usize> = (0..4)
        .map(|k| {
            let dir = a.join(format!("index/shard-{k}"));
            std::fs::read_dir(dir).unwrap().count()
        })
        .collect();
    assert!(per.iter().all(|&n| n > 2), "{per:?}");

    let threads = ok(&a, &["search", "--threads", "--format", "json", "common"]);
    let threads: Vec<serde_json::Value> = threads.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(threads.len(), 10, "ten threads of four: {threads:?}");
    assert!(
        threads.iter().all(|t| t["messages"] == 4 && t["matched"] == 4),
        "{threads:?}"
    );
    let facets_of = |a: &Path| {
        let idx = MessageIndex::open_read_only(a, None).unwrap();
        idx.facets(&parse("common").unwrap(), &|_| true).unwrap()
    };
    let facets = facets_of(&a);
    assert_eq!(facets.domains.iter().map(|(_, n)| n).sum::<u64>(), 40, "{facets:?}");
    assert_eq!(facets.years, vec![(2000, 40)]);
    // The same after the four are merged into one index.
    let ranked = || {
        let args = ["search", "--format", "ids", "--limit", "100", "--sort", "relevance"];
        ok(&a, &[&args[..], &["word1 OR common"]].concat())
    };
    let before = ranked();
    ok(&a, &["reindex", "-q", "--shards", "1"]);
    assert!(!a.join("index/shards").exists());
    let after = ranked();
    assert_eq!(before, after);
    assert_eq!(facets_of(&a), facets, "the facets of one index");
}

#[test]
fn a_shard_that_does_not_exist_is_refused_by_number() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    ok(&a, &["init"]);
    ok(&a, &["reindex", "-q", "--shards", "3"]);
    let out = run(&a, &["reindex", "--shard", "3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no shard 3") && err.contains("0 to 2"), "{err}");
    let out = run(&a, &["reindex", "--shards", "0"]);
    assert!(!out.status.success());
    std::fs::write(a.join("index/shards"), "many\n").unwrap();
    let out = run(&a, &["search", "anything"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("index/shards") && err.contains("\"many\""), "{err}");
}

#[test]
fn a_shard_another_process_is_writing_is_left_to_it_and_caught_up_after() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, mbox) = sharded_archive(tmp.path(), 2);
    // This process writes shard 1 (holds its writer lock) while mail arrives.
    let other = tantivy::Index::open_in_dir(a.join("index/shard-1")).unwrap();
    let writer = other.writer::<tantivy::TantivyDocument>(15_000_000).unwrap();
    ok(&a, &["import", "-q", mbox.to_str().unwrap()]);
    let count = || {
        ok(&a, &["search", "--count", "common"])
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    let in_shard_0 = count();
    assert!(
        in_shard_0 > 5 && in_shard_0 < 35,
        "only shard 0's messages are found while shard 1 is being written: {in_shard_0}"
    );
    drop(writer);
    assert_eq!(count(), 40, "shard 1 caught up once free");
    let threads = ok(&a, &["search", "--threads", "--format", "json", "common"]);
    assert_eq!(threads.lines().count(), 10, "{threads}");
}
