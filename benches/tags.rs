//! Tags benchmark, on the main set (16,276 messages): `mailvault tag` by query —
//! whole process, the index up to date first — for about 10,000 messages and for
//! all of them, adding and removing; then `tag:` search latency against plain
//! search in the same run. Issue 21 asks 10,000 messages tagged in under 2 s.
//!
//! `cargo bench --bench tags`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{corpus_root, import_main_set, latencies, ms, run_measured};

fn timed(archive: &Path, args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let (_, _, out) = run_measured(args, archive);
    (t.elapsed(), out)
}

fn count(archive: &Path, q: &str) -> u64 {
    run_measured(&["search", "--count", q], archive)
        .2
        .trim()
        .parse()
        .unwrap()
}

/// Whole-process p50 and p99 of `search -q --format ids QUERY`, warm, 20 rounds.
fn latency(archive: &Path, q: &str) -> (Duration, Duration) {
    latencies(archive, &["search", "-q", "--format", "ids"], &[q], 20)
}

fn main() {
    let Some(root) = corpus_root() else {
        eprintln!("tags: no corpus (MAILVAULT_CORPUS or ../shared/corpus); skipped");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("main");
    import_main_set(&root, &a);
    run_measured(&["reindex"], &a);
    println!("\ntags: main set, {} messages", count(&a, "*"));
    // Over 10,000: two SpamAssassin ham folders, one spam folder, and usrp-users.
    let ten_k = "folder:easy-ham-1 OR folder:easy-ham-2 OR folder:spam-2 OR folder:2019 OR folder:2020 OR folder:2021";
    let n = count(&a, ten_k);
    for (what, args, matched) in [
        (
            "add 2 tags, by folder",
            vec!["tag", "+case-42", "+review", "--", ten_k],
            n,
        ),
        (
            "add 1 tag, every message",
            vec!["tag", "+all", "--", "*"],
            count(&a, "*"),
        ),
        ("remove 1 tag by tag:", vec!["tag", "-review", "--", "tag:review"], n),
        ("again, nothing to change", vec!["tag", "+case-42", "--", ten_k], n),
    ] {
        let (t, out) = timed(&a, &args);
        println!(
            "  {what:<28} {matched:>6} messages  {:>7.0} ms  ({:.0} msg/s)  {}",
            ms(t),
            matched as f64 / t.as_secs_f64(),
            out.trim()
        );
    }
    run_measured(&["tag", "+small", "--", "folder:spam-1"], &a);
    let small = count(&a, "tag:small");
    println!("  search p50 / p99 (whole process, warm, 20 runs):");
    for (q, what) in [
        ("from:enron.com", "plain search".to_string()),
        ("tag:small", format!("a tag on {small} messages")),
        ("tag:case-42", format!("a tag on {n} messages")),
        ("tag:case-42 subject:help", "the same with a term".to_string()),
    ] {
        let (p50, p99) = latency(&a, q);
        println!("    {q:<26} {:>6.1} / {:>6.1} ms  ({what})", ms(p50), ms(p99));
    }
}
