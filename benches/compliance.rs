//! What answering for an archive costs, on the main set (enron + spamassassin +
//! usrp-users, 16,276 messages): import with the change log (every batch's record
//! and signed checkpoint), `verify --chain` against `verify` (the goal: at most
//! 2×), an access-log append (what every read pays first), and a purge of about
//! half the archive followed by `compact`, with `verify --chain` after.
//!
//! `cargo bench --bench compliance`. Needs the corpus (`$MAILVAULT_CORPUS` or
//! `../shared/corpus`).

mod common;

use std::time::{Duration, Instant};

use common::{corpus_root, json, run_measured, FOLDERS};

/// The main set imported in-process into a plain archive and into one with
/// sealed packs and dictionaries (Argon2id at its default cost included), twice
/// each, alternating; the faster of each.
fn sealed_import_times(paths: &[String], tmp: &std::path::Path) -> (Duration, Duration) {
    use mailvault::archive::{sealing::ArchiveSecret, Archive, ArchiveConfig};
    let paths: Vec<std::path::PathBuf> = paths.iter().map(std::path::PathBuf::from).collect();
    let run = |dir: &std::path::Path, secret: Option<ArchiveSecret>| {
        let t = Instant::now();
        let config = ArchiveConfig {
            secret,
            ..ArchiveConfig::default()
        };
        let mut a = Archive::open_with(dir, true, config).unwrap();
        mailvault::import::import_paths(
            &mut a,
            &paths,
            &mailvault::source::LocalOptions::default(),
            mailvault::import::BatchLimits::default(),
            &mut |_| {},
        )
        .unwrap();
        drop(a);
        t.elapsed()
    };
    let mut plain = Vec::new();
    let mut sealed = Vec::new();
    for round in 0..2 {
        plain.push(run(&tmp.join(format!("plain{round}")), None));
        let secret = ArchiveSecret::Passphrase(b"bench passphrase".to_vec());
        sealed.push(run(&tmp.join(format!("sealed{round}")), Some(secret)));
    }
    (plain.into_iter().min().unwrap(), sealed.into_iter().min().unwrap())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let Some(root) = corpus_root() else {
        eprintln!("compliance: no corpus; nothing measured");
        return;
    };
    let paths: Vec<String> = FOLDERS
        .iter()
        .map(|f| root.join(f).to_string_lossy().into_owned())
        .collect();
    let mut import = vec!["import", "-q", "--json"];
    import.extend(paths.iter().map(String::as_str));
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("archive");
    let (t_import, _, out) = run_measured(&import, &a);
    let msgs = json(&out)["messages"].as_u64().unwrap();
    // The same without the index: the storage path alone (records, packs, the
    // change log and its checkpoints).
    let mut bare = import.clone();
    bare.push("--no-index");
    let (t_bare, _, _) = run_measured(&bare, &tmp.path().join("bare"));
    let raw_total = json(&run_measured(&["stats", "--json"], &a).2)["raw_bytes"]
        .as_u64()
        .unwrap();

    // Sealed packs and dictionaries (library level: the command line does not
    // offer encryption yet): the same import, plain and sealed, in-process.
    let (t_plain, t_sealed) = sealed_import_times(&paths, tmp.path());

    // verify and verify --chain, three times each, alternating.
    let mut plain = Vec::new();
    let mut chained = Vec::new();
    for _ in 0..3 {
        plain.push(run_measured(&["verify", "-q"], &a).0);
        chained.push(run_measured(&["verify", "-q", "--chain"], &a).0);
    }
    let (t_verify, t_chain) = (median(plain), median(chained));

    // An access-log append, in-process: what each read pays before it reads.
    let mut appends = Vec::new();
    for i in 0..500u32 {
        let t = Instant::now();
        mailvault::access::record(
            &a,
            &mailvault::access::Access {
                user: "bench",
                action: mailvault::access::Action::Search,
                query: Some(&format!("from:someone{i}")),
                ids: &[mailvault::model::Hash32::of(&i.to_be_bytes())],
                count: 1,
            },
        )
        .unwrap();
        appends.push(t.elapsed());
    }
    appends.sort();
    let (a50, a99) = (appends[appends.len() / 2], appends[appends.len() * 99 / 100]);

    // Retention: keep 20 years from the Date header, weighed in 2022, expires
    // what was sent before 2002 (most of the Enron mailbox).
    run_measured(
        &[
            "retention",
            "set",
            "old",
            "--query",
            "*",
            "--keep",
            "20y",
            "--from",
            "date",
        ],
        &a,
    );
    std::env::set_var("MAILVAULT_NOW", "2022-01-01T00:00:00Z");
    let (t_dry, _, out) = run_measured(&["purge", "--dry-run", "--json"], &a);
    let expiring = json(&out)["plan"]["expired"].as_array().unwrap().len();
    let (t_purge, _, out) = run_measured(&["purge", "--json"], &a);
    let removed = json(&out)["removed"]["messages"].as_u64().unwrap();
    let removed_raw = json(&out)["removed"]["raw_bytes"].as_u64().unwrap();
    std::env::remove_var("MAILVAULT_NOW");
    let packs_before = json(&run_measured(&["stats", "--json"], &a).2)["pack_bytes"]
        .as_u64()
        .unwrap();
    let (t_compact, _, _) = run_measured(&["compact", "-q"], &a);
    let packs_after = json(&run_measured(&["stats", "--json"], &a).2)["pack_bytes"]
        .as_u64()
        .unwrap();
    let (t_chain_after, _, out) = run_measured(&["verify", "--chain"], &a);
    assert!(out.trim_end().ends_with("clean"), "{out}");

    let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64();
    println!("\ncompliance: main set = {} ({msgs} messages)", FOLDERS.join(" + "));
    println!(
        "  import (with index, change log and signed checkpoints)  {:.2} s  {:.0} msg/s",
        t_import.as_secs_f64(),
        rate(msgs, t_import)
    );
    println!(
        "  import --no-index  {:.2} s  {:.0} msg/s",
        t_bare.as_secs_f64(),
        rate(msgs, t_bare)
    );
    println!(
        "  library import, plain {:.2} s, sealed packs and dictionaries {:.2} s = {:.2}x (goal <= 1.15x)",
        t_plain.as_secs_f64(),
        t_sealed.as_secs_f64(),
        t_sealed.as_secs_f64() / t_plain.as_secs_f64()
    );
    println!(
        "  verify {:.2} s;  verify --chain {:.2} s = {:.2}x verify (goal <= 2x)",
        t_verify.as_secs_f64(),
        t_chain.as_secs_f64(),
        t_chain.as_secs_f64() / t_verify.as_secs_f64()
    );
    println!(
        "  access-log append  p50 {:.3} ms  p99 {:.3} ms (fsync'd; 500 appends)",
        a50.as_secs_f64() * 1e3,
        a99.as_secs_f64() * 1e3
    );
    println!(
        "  purge --dry-run {:.2} s ({expiring} expiring);  purge {:.2} s ({removed} removed, {:.0} msg/s, {:.1} % of the raw bytes)",
        t_dry.as_secs_f64(),
        t_purge.as_secs_f64(),
        rate(removed, t_purge),
        100.0 * removed_raw as f64 / raw_total as f64
    );
    println!(
        "  compact after purge {:.2} s: packs {:.1} MB -> {:.1} MB;  verify --chain after {:.2} s",
        t_compact.as_secs_f64(),
        packs_before as f64 / 1e6,
        packs_after as f64 / 1e6,
        t_chain_after.as_secs_f64()
    );
}
