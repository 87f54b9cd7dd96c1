//! What answering for an archive costs, on the main set (enron + spamassassin +
//! usrp-users, 16,276 messages): import with the change log (every batch's record
//! and signed checkpoint), `verify --chain` against `verify` (the goal: at most
//! 2×), an access-log append (what every read pays first), and a purge of about
//! half the archive followed by `compact`, with `verify --chain` after.
//!
//! `cargo bench --bench compliance`. Needs the corpus (`$MAILVAULT_CORPUS` or
//! `../shared/corpus`).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{corpus_root, json, run_measured, FOLDERS};

/// The passphrase of the encrypted archives, passed by `--passphrase-env`.
const PW_VAR: &str = "MAILVAULT_BENCH_PASSPHRASE";

/// The main set imported by the command line (with the index) into a plain
/// archive and into an encrypted one made by `init --encrypt` beforehand (the
/// import's own Argon2id unwrap at its default cost is counted), twice each,
/// alternating; the faster of each. Returns the times and an encrypted archive.
fn encrypted_import_times(import: &[&str], tmp: &Path) -> (Duration, Duration, PathBuf) {
    let mut plain = Vec::new();
    let mut sealed = Vec::new();
    for round in 0..2 {
        plain.push(run_measured(import, &tmp.join(format!("plain{round}"))).0);
        let dir = tmp.join(format!("sealed{round}"));
        run_measured(&["init", "-q", "--encrypt", "--passphrase-env", PW_VAR], &dir);
        let mut args = import.to_vec();
        args.extend(["--passphrase-env", PW_VAR]);
        sealed.push(run_measured(&args, &dir).0);
    }
    let best = |v: Vec<Duration>| v.into_iter().min().unwrap();
    (best(plain), best(sealed), tmp.join("sealed1"))
}

/// Search latency on the index of `plain` and of the encrypted `sealed`, in
/// process: each query run on a reader kept open (what the service and the web
/// interface do) and with the index opened for it (what one command pays, less
/// process start and Argon2id). Returns the medians: (warm plain, warm sealed,
/// opened plain, opened sealed).
fn search_latencies(plain: &Path, sealed: &Path) -> [Duration; 4] {
    use mailvault::archive::{sealing::ArchiveSecret, Archive};
    use mailvault::index::{MessageIndex, Sort};
    const QUERIES: [&str; 6] = [
        "ettus",
        "from:enron.com",
        "subject:meeting",
        "has:attachment date:2020",
        "linux OR rpm",
        "\"free software\"",
    ];
    let secret = ArchiveSecret::Passphrase(std::env::var(PW_VAR).unwrap().into_bytes());
    let key = Archive::open_read_only_secret(sealed, Some(secret))
        .unwrap()
        .index_key();
    let mut out = Vec::new();
    for (dir, key) in [(plain, None), (sealed, key)] {
        let idx = MessageIndex::open_read_only(dir, key.clone()).unwrap();
        let (mut warm, mut opened) = (Vec::new(), Vec::new());
        for round in 0..21 {
            for q in QUERIES {
                let t = Instant::now();
                let hits = idx.search(q, Sort::DateDesc, 50, 0).unwrap();
                if round > 0 {
                    warm.push(t.elapsed());
                }
                let t = Instant::now();
                let fresh = MessageIndex::open_read_only(dir, key.clone()).unwrap();
                assert_eq!(fresh.search(q, Sort::DateDesc, 50, 0).unwrap().len(), hits.len());
                opened.push(t.elapsed());
            }
        }
        out.push(median(warm));
        out.push(median(opened));
    }
    [out[0], out[2], out[1], out[3]]
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

    // Encryption at rest: the same import into a plain and an encrypted archive,
    // then search on both indexes.
    std::env::set_var(PW_VAR, "bench passphrase, not a good one");
    let (t_plain, t_sealed, sealed) = encrypted_import_times(&import, tmp.path());
    let [s_plain, s_sealed, o_plain, o_sealed] = search_latencies(&tmp.path().join("plain1"), &sealed);
    let t = Instant::now();
    let secret = mailvault::archive::sealing::ArchiveSecret::Passphrase(std::env::var(PW_VAR).unwrap().into_bytes());
    mailvault::archive::sealing::unlock(&sealed, &secret).unwrap();
    let t_unlock = t.elapsed();

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
            None,
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
        "  import, plain {:.2} s; encrypted {:.2} s = {:.2}x (goal <= 1.15x)",
        t_plain.as_secs_f64(),
        t_sealed.as_secs_f64(),
        t_sealed.as_secs_f64() / t_plain.as_secs_f64()
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  unlocking an encrypted archive (Argon2id, 64 MiB, 3 passes; once per command) {:.0} ms",
        ms(t_unlock)
    );
    println!(
        "  search p50, reader kept open: plain {:.3} ms, encrypted {:.3} ms (+{:.3} ms; goal <= 2 ms)",
        ms(s_plain),
        ms(s_sealed),
        ms(s_sealed) - ms(s_plain)
    );
    println!(
        "  search p50, index opened per query: plain {:.3} ms, encrypted {:.3} ms (+{:.3} ms)",
        ms(o_plain),
        ms(o_sealed),
        ms(o_sealed) - ms(o_plain)
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
