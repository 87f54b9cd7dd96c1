//! Threads benchmark, on the main set (16,276 messages) and the usrp-users list
//! (2019–2021, 6,091 messages, long threads): what threading costs the index
//! build (its share of the time, from the index's own per-chunk timings), how
//! many threads, and `search --threads` and `show --thread` latency against
//! plain `search` in the same run.
//!
//! `cargo bench --bench threads`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{corpus_root, import_main_set, latencies, ms, run_measured, QUERIES};

/// Reindexes with the index's debug log on: wall time, and the summed
/// milliseconds of threading, document building and commits.
fn timed_reindex(archive: &Path) -> (Duration, u64, u64, u64) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mailvault"))
        .arg("--archive")
        .arg(archive)
        .arg("reindex")
        .env("RUST_LOG", "mailvault::index=debug")
        .stdout(Stdio::null())
        .output()
        .expect("reindex runs");
    let wall = t.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr);
    let sum = |key: &str| -> u64 {
        log.lines()
            .filter(|l| l.contains("index chunk"))
            .filter_map(|l| {
                l.split(&format!("{key}="))
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    (wall, sum("thread_ms"), sum("docs_ms"), sum("commit_ms"))
}

fn measure(name: &str, archive: &Path) {
    let (_, _, out) = run_measured(&["stats", "--format", "json"], archive);
    let messages = common::json(&out)["messages"].as_u64().unwrap();
    let (wall, thread_ms, docs_ms, commit_ms) = timed_reindex(archive);
    let (_, _, ids) = run_measured(
        &["search", "--threads", "--format", "ids", "--limit", "0", "*"],
        archive,
    );
    let threads: Vec<&str> = ids.lines().collect();
    println!("\nthreads: {name}: {messages} messages, {} threads", threads.len());
    println!(
        "  reindex {:.2} s, {:.0} msg/s; of the chunks' time: threading {thread_ms} ms ({:.1}%), documents {docs_ms} ms, commits {commit_ms} ms",
        wall.as_secs_f64(),
        messages as f64 / wall.as_secs_f64(),
        100.0 * thread_ms as f64 / (thread_ms + docs_ms + commit_ms).max(1) as f64
    );
    let queries = &QUERIES[..];
    let plain = latencies(
        archive,
        &["search", "-q", "--format", "ids", "--limit", "20"],
        queries,
        5,
    );
    let grouped = latencies(
        archive,
        &["search", "-q", "--threads", "--format", "ids", "--limit", "20"],
        queries,
        5,
    );
    println!(
        "  search p50 / p99 {:.1} / {:.1} ms; search --threads {:.1} / {:.1} ms ({:.2}x / {:.2}x) ({} queries x 5, whole process)",
        ms(plain.0),
        ms(plain.1),
        ms(grouped.0),
        ms(grouped.1),
        ms(grouped.0) / ms(plain.0),
        ms(grouped.1) / ms(plain.1),
        queries.len()
    );
    // show --thread on 20 threads spread over the list (most recent first).
    let step = (threads.len() / 20).max(1);
    let picked: Vec<&str> = threads.iter().step_by(step).take(20).copied().collect();
    let show = latencies(archive, &["show", "--thread"], &picked, 5);
    println!(
        "  show --thread p50 / p99 {:.1} / {:.1} ms ({} threads x 5)",
        ms(show.0),
        ms(show.1),
        picked.len()
    );
}

fn main() {
    let Some(root) = corpus_root() else {
        eprintln!("threads: no corpus (MAILVAULT_CORPUS or ../shared/corpus); skipped");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let main_set = work.path().join("main");
    import_main_set(&root, &main_set);
    measure("main set", &main_set);
    let list = work.path().join("usrp");
    let years: Vec<String> = ["2019", "2020", "2021"]
        .iter()
        .map(|y| {
            root.join("usrp-users-list-2019-2021")
                .join(y)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec!["import", "-q", "--no-index"];
    args.extend(years.iter().map(String::as_str));
    run_measured(&args, &list);
    measure("usrp-users 2019-2021", &list);
}
