//! Storage benchmark of format 3 (packs): the main set (enron + spamassassin +
//! usrp-users, 16,276 messages) imported into local packs and compacted — import
//! msg/s, compaction time, everything under the archive (packs + metadata, index
//! excluded) against a solid `tar | zstd -19` of the same folders, one-message read
//! latency in-process, verify and export; then the same import into S3 (a Garage
//! node on loopback, started here) and a pull of the Enron account from a private
//! Dovecot into a local archive and into S3: msg/s of each against local, and how
//! many objects and bytes each stored (objects per 10,000 messages).
//!
//! `cargo bench --bench storage_corpus`. Needs the corpus (`$MAILVAULT_CORPUS` or
//! `../shared/corpus`), Garage and Dovecot (as `scripts/test.sh` installs them).

mod common;
#[path = "../tests/common/mod.rs"]
mod tc;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{corpus_root, json, percentile, run_measured, solid_zstd19, FOLDERS};
use mailvault::archive::Archive;
use tc::dovecot::{pull_command, Dovecot, TEST_PASSWORD};
use tc::garage::{self, Garage};

/// Bytes of every file under `dir` except the search index.
fn archive_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.file_name() != "index")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// p50 and p99 of reading `n` messages picked evenly over the id space, each
/// through a freshly opened archive's `get_raw` (page cache warm from a first pass).
fn read_latency(dir: &Path, n: usize) -> (Duration, Duration, Duration) {
    let a = Archive::open_read_only(dir).unwrap();
    let ids = a.message_ids().unwrap();
    let step = (ids.len() / n).max(1);
    let picked: Vec<_> = ids.iter().step_by(step).take(n).copied().collect();
    for id in &picked {
        a.get_raw(id).unwrap();
    }
    drop(a);
    let a = Archive::open_read_only(dir).unwrap();
    let mut times: Vec<Duration> = picked
        .iter()
        .map(|id| {
            let t = Instant::now();
            std::hint::black_box(a.get_raw(id).unwrap());
            t.elapsed()
        })
        .collect();
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        *times.last().unwrap(),
    )
}

struct Stored {
    packs: u64,
    pack_bytes: u64,
    messages: u64,
}

fn stored(dir: &Path) -> Stored {
    let s = json(&run_measured(&["stats", "--json"], dir).2);
    Stored {
        packs: s["packs"].as_u64().unwrap(),
        pack_bytes: s["pack_bytes"].as_u64().unwrap(),
        messages: s["messages"].as_u64().unwrap(),
    }
}

fn per_10k(s: &Stored) -> f64 {
    s.packs as f64 * 10_000.0 / s.messages as f64
}

fn main() {
    let Some(root) = corpus_root() else {
        eprintln!("storage_corpus: no corpus; nothing measured");
        return;
    };
    let solid = solid_zstd19(&root);
    let paths: Vec<String> = FOLDERS
        .iter()
        .map(|f| root.join(f).to_string_lossy().into_owned())
        .collect();
    let mut import = vec!["import", "-q", "--json", "--no-index"];
    import.extend(paths.iter().map(String::as_str));
    let tmp = tempfile::tempdir().unwrap();

    // Local packs.
    let local = tmp.path().join("local");
    let (t_import, rss_import, out) = run_measured(&import, &local);
    let msgs = json(&out)["messages"].as_u64().unwrap();
    let before = archive_bytes(&local);
    let (t_compact, rss_compact, _) = run_measured(&["compact", "-q"], &local);
    let after = archive_bytes(&local);
    let local_stored = stored(&local);
    let (p50, p99, max) = read_latency(&local, 2000);
    let (t_verify, _, _) = run_measured(&["verify", "-q"], &local);
    let out_dir = tmp.path().join("export");
    let (t_export, _, _) = run_measured(
        &["export", "-q", "--format", "eml", "--out", out_dir.to_str().unwrap()],
        &local,
    );
    std::fs::remove_dir_all(&out_dir).ok();

    // S3: one Garage node on loopback.
    let g = Garage::single();
    garage::use_test_credentials();
    let s3 = tmp.path().join("s3");
    let init = g.init_args("bench-import", &g.endpoint());
    let init: Vec<&str> = init.iter().map(String::as_str).collect();
    run_measured(&init, &s3);
    let (t_s3_import, _, _) = run_measured(&import, &s3);
    let s3_before = stored(&s3);
    let (t_s3_compact, _, _) = run_measured(&["compact", "-q"], &s3);
    let s3_after = stored(&s3);
    let (s3_p50, s3_p99, _) = read_latency(&s3, 500);
    let (t_s3_verify, _, _) = run_measured(&["verify", "-q"], &s3);

    // Pull of the Enron account: into local packs, then into S3.
    let d = Dovecot::start();
    d.add_user("bench", TEST_PASSWORD);
    let loaded = d.load_tree("bench", &root.join("enron-skilling-j/skilling-j"));
    let url = format!("imaps://bench@127.0.0.1:{}", d.imaps);
    let pull_into = |archive: &Path| {
        let t = Instant::now();
        let out = pull_command(archive, &url, &d, &["--no-index", "-q"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        t.elapsed()
    };
    let pulled_local = tmp.path().join("pull-local");
    let t_pull_local = pull_into(&pulled_local);
    let pulled_s3 = tmp.path().join("pull-s3");
    let init = g.init_args("bench-pull", &g.endpoint());
    let init: Vec<&str> = init.iter().map(String::as_str).collect();
    run_measured(&init, &pulled_s3);
    let t_pull_s3 = pull_into(&pulled_s3);
    let pull_local_stored = stored(&pulled_local);
    let pull_s3_stored = stored(&pulled_s3);

    let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64();
    println!("\nstorage_corpus: main set = {} ({msgs} messages)", FOLDERS.join(" + "));
    println!(
        "  local import        {:.2} s  {:.0} msg/s  peak RSS {:.0} MB; archive {:.1} MB",
        t_import.as_secs_f64(),
        rate(msgs, t_import),
        rss_import as f64 / 1e6,
        before as f64 / 1e6
    );
    println!(
        "  compact             {:.2} s  peak RSS {:.0} MB; archive {:.1} MB (packs {:.1} MB in {} packs, metadata {:.1} MB)",
        t_compact.as_secs_f64(),
        rss_compact as f64 / 1e6,
        after as f64 / 1e6,
        local_stored.pack_bytes as f64 / 1e6,
        local_stored.packs,
        (after - local_stored.pack_bytes) as f64 / 1e6
    );
    if let Some(z) = solid {
        println!(
            "  tar | zstd -19      {:.1} MB;  archive / solid = {:.3}x before compaction {:.3}x",
            z as f64 / 1e6,
            after as f64 / z as f64,
            before as f64 / z as f64
        );
    }
    println!(
        "  read one message    p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms (2,000 spread over the ids, in-process)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    println!(
        "  verify              {:.2} s  {:.0} msg/s;  export eml {:.2} s  {:.0} msg/s",
        t_verify.as_secs_f64(),
        rate(msgs, t_verify),
        t_export.as_secs_f64(),
        rate(msgs, t_export)
    );
    println!(
        "  S3 import           {:.2} s  {:.0} msg/s = {:.2}x local; {} objects, {:.1} MB = {:.1} objects per 10,000 messages",
        t_s3_import.as_secs_f64(),
        rate(msgs, t_s3_import),
        t_import.as_secs_f64() / t_s3_import.as_secs_f64(),
        s3_before.packs,
        s3_before.pack_bytes as f64 / 1e6,
        per_10k(&s3_before)
    );
    println!(
        "  S3 compact          {:.2} s; {} objects, {:.1} MB = {:.1} objects per 10,000 messages",
        t_s3_compact.as_secs_f64(),
        s3_after.packs,
        s3_after.pack_bytes as f64 / 1e6,
        per_10k(&s3_after)
    );
    println!(
        "  S3 read one message p50 {:.3} ms  p99 {:.3} ms;  S3 verify {:.2} s  {:.0} msg/s",
        s3_p50.as_secs_f64() * 1e3,
        s3_p99.as_secs_f64() * 1e3,
        t_s3_verify.as_secs_f64(),
        rate(msgs, t_s3_verify)
    );
    println!(
        "  pull ({loaded} Enron messages over IMAPS): local {:.2} s {:.0} msg/s, {} packs ({:.1} per 10,000); S3 {:.2} s {:.0} msg/s = {:.2}x local, {} objects ({:.1} per 10,000), {:.1} MB",
        t_pull_local.as_secs_f64(),
        rate(pull_local_stored.messages, t_pull_local),
        pull_local_stored.packs,
        per_10k(&pull_local_stored),
        t_pull_s3.as_secs_f64(),
        rate(pull_s3_stored.messages, t_pull_s3),
        t_pull_local.as_secs_f64() / t_pull_s3.as_secs_f64(),
        pull_s3_stored.packs,
        per_10k(&pull_s3_stored),
        pull_s3_stored.pack_bytes as f64 / 1e6
    );
}
