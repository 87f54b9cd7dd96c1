//! End-to-end import benchmark on the main corpus (enron + spamassassin + usrp-users,
//! 16,276 messages, ~262 MB): runs the real binary and reports import msg/s and MB/s,
//! peak RSS, stored and on-disk size, the ratio to `tar | zstd -19` of the same
//! folders, a no-change re-import, export and verify rates.
//!
//! `cargo bench --bench import_corpus`. Corpus from `$MAILVAULT_CORPUS` or
//! `../shared/corpus` (unpacked into the target dir on first use). The solid
//! `zstd -19` size is computed once and cached next to the unpacked corpus.
//! `MAILVAULT_BENCH_RUNS` (default 3) import runs; the median is reported.

mod common;

use std::path::PathBuf;

use common::{corpus_root, json, run_measured, solid_zstd19, FOLDERS};

fn main() {
    // `cargo bench` passes harness flags such as --bench; nothing to parse.
    let Some(root) = corpus_root() else {
        eprintln!("import_corpus: no corpus (set MAILVAULT_CORPUS or provide ../shared/corpus); nothing measured");
        return;
    };
    let paths: Vec<String> = FOLDERS
        .iter()
        .map(|f| root.join(f).to_string_lossy().into_owned())
        .collect();
    let raw_bytes: u64 = FOLDERS.iter().map(|f| common::du(&root.join(f))).sum();
    let runs: usize = std::env::var("MAILVAULT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    // Import alone (the search index is measured by benches/search_corpus.rs).
    let mut args = vec!["import", "-q", "--json", "--no-index"];
    args.extend(paths.iter().map(String::as_str));

    let mut results = Vec::new();
    let mut last_archive = PathBuf::new();
    for i in 0..runs {
        let archive = tmp.path().join(format!("run{i}"));
        let (t, rss, out) = run_measured(&args, &archive);
        let s = json(&out);
        results.push((t, rss, s));
        if i + 1 < runs {
            std::fs::remove_dir_all(&archive).ok();
        }
        last_archive = archive;
    }
    results.sort_by_key(|r| r.0);
    let (t, rss, s) = &results[results.len() / 2];
    let msgs = s["messages"].as_u64().unwrap();
    let stats = json(&run_measured(&["stats", "--json"], &last_archive).2);
    let stored = stats["stored_bytes"].as_u64().unwrap();
    let disk = stats["disk_bytes"].as_u64().unwrap();

    let (t2, _, out2) = run_measured(&args, &last_archive);
    let s2 = json(&out2);
    let stats2 = json(&run_measured(&["stats", "--json"], &last_archive).2);
    let (tv, rss_v, _) = run_measured(&["verify", "-q"], &last_archive);
    let export_dir = tmp.path().join("export");
    let (te, rss_e, _) = run_measured(
        &["export", "-q", "--format", "eml", "--out", export_dir.to_str().unwrap()],
        &last_archive,
    );
    let solid = solid_zstd19(&root);

    let secs = t.as_secs_f64();
    let mb = raw_bytes as f64 / 1e6;
    println!(
        "\nimport_corpus: main set = {} (median of {runs} runs)",
        FOLDERS.join(" + ")
    );
    println!("  messages            {msgs} ({:.1} MB of files)", mb);
    println!(
        "  import              {:.2} s  {:.0} msg/s  {:.1} MB/s  peak RSS {:.0} MB",
        secs,
        msgs as f64 / secs,
        mb / secs,
        *rss as f64 / 1e6
    );
    println!(
        "  all runs (s)        {:?}",
        results
            .iter()
            .map(|r| (r.0.as_secs_f64() * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    println!(
        "  stored (blobs)      {:.1} MB = {:.1}% of raw",
        stored as f64 / 1e6,
        stored as f64 * 100.0 / raw_bytes as f64
    );
    println!(
        "  on disk (archive)   {:.1} MB = {:.1}% of raw",
        disk as f64 / 1e6,
        disk as f64 * 100.0 / raw_bytes as f64
    );
    if let Some(z) = solid {
        println!(
            "  tar | zstd -19      {:.1} MB;  on-disk / solid = {:.2}x  (stored / solid = {:.2}x)",
            z as f64 / 1e6,
            disk as f64 / z as f64,
            stored as f64 / z as f64
        );
    }
    println!(
        "  re-import           {:.2} s, {} new messages, stored bytes +{}, on disk +{:.2}%",
        t2.as_secs_f64(),
        s2["new_messages"],
        stats2["stored_bytes"].as_u64().unwrap() - stored,
        (stats2["disk_bytes"].as_u64().unwrap() as f64 - disk as f64) * 100.0 / disk as f64
    );
    println!(
        "  verify              {:.2} s  {:.0} msg/s  peak RSS {:.0} MB",
        tv.as_secs_f64(),
        msgs as f64 / tv.as_secs_f64(),
        rss_v as f64 / 1e6
    );
    println!(
        "  export eml          {:.2} s  {:.0} msg/s  peak RSS {:.0} MB",
        te.as_secs_f64(),
        msgs as f64 / te.as_secs_f64(),
        rss_e as f64 / 1e6
    );
}
