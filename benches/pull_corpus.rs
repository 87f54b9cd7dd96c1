//! End-to-end IMAP pull benchmark (issue 4, item 8): the main corpus (enron +
//! spamassassin + usrp-users, 16,276 messages, ~262 MB) is loaded into a private
//! Dovecot on loopback; `mailvault pull` over IMAPS (index update included) is timed
//! with its peak RSS, then a no-change re-pull; where `mbsync` (Debian `isync`) is
//! installed it mirrors the same account to a maildir over the same IMAPS port in
//! the same run and the ratio is printed.
//!
//! `cargo bench --bench pull_corpus`. After one untimed warm-up pull,
//! `MAILVAULT_BENCH_RUNS` (default 3) pulls; the median is reported.

mod common;
#[path = "../tests/common/mod.rs"]
mod tc;

use std::path::Path;
use std::time::{Duration, Instant};

use tc::dovecot::{pull_command, Dovecot, TEST_PASSWORD};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn mbsync(d: &Dovecot, dir: &Path) -> Option<Duration> {
    common::mbsync_mirror(d.imaps, TEST_PASSWORD, &d.ca_pem(), dir)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; there is nothing to list
    }
    let runs: usize = std::env::var("MAILVAULT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let Some(root) = tc::corpus_root() else {
        eprintln!("no corpus: set MAILVAULT_CORPUS or provide ../shared/corpus");
        return;
    };
    let d = Dovecot::start();
    d.add_user("mail", TEST_PASSWORD);
    let t = Instant::now();
    let mut loaded = 0;
    for f in common::FOLDERS {
        loaded += d.load_tree("mail", &root.join(f));
    }
    // Let Dovecot index the maildirs before anything is timed.
    d.doveadm(&["mailbox", "status", "-u", "mail", "messages", "*"]);
    let raw: u64 = tc::corpus_root()
        .map(|r| common::FOLDERS.iter().map(|f| common::du(&r.join(f))).sum())
        .unwrap_or(0);
    eprintln!(
        "loaded {loaded} messages ({:.1} MB) into Dovecot in {:.1?}",
        raw as f64 / 1e6,
        t.elapsed()
    );

    let tmp = tempfile::tempdir().unwrap();
    let url = format!("imaps://mail@127.0.0.1:{}", d.imaps);
    // One untimed pull first, so that neither tool is timed against cold server
    // caches (mbsync runs last, against warm ones).
    let warm = pull_command(&tmp.path().join("warm-up"), &url, &d, &["-q", "--no-index"])
        .output()
        .unwrap();
    assert!(
        warm.status.success(),
        "warm-up pull failed: {}",
        String::from_utf8_lossy(&warm.stderr)
    );
    let (mut secs, mut rss, mut fetched, mut bytes) = (Vec::new(), Vec::new(), 0u64, 0u64);
    for i in 0..runs {
        let ar = tmp.path().join(format!("run{i}"));
        let t = Instant::now();
        let (st, peak, out, err) = tc::output_with_peak_rss(pull_command(&ar, &url, &d, &["--json", "-q"]));
        let took = t.elapsed().as_secs_f64();
        assert!(st.success(), "pull failed: {}", String::from_utf8_lossy(&err));
        let s: serde_json::Value = serde_json::from_slice(&out).unwrap();
        fetched = s["total"]["fetched"].as_u64().unwrap();
        bytes = s["total"]["fetched_bytes"].as_u64().unwrap();
        eprintln!("run {i}: {fetched} messages in {took:.2} s, peak RSS {} MB", peak >> 20);
        secs.push(took);
        rss.push(peak as f64);
    }
    let s = median(secs);
    // The same without the index update: what the network and the store take.
    let t = Instant::now();
    let out = pull_command(&tmp.path().join("noindex"), &url, &d, &["--json", "-q", "--no-index"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let no_index = t.elapsed().as_secs_f64();
    let again: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let out = pull_command(&tmp.path().join("run0"), &url, &d, &["--json", "-q"])
                .output()
                .unwrap();
            assert!(out.status.success());
            let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(j["total"]["fetched"], 0);
            t.elapsed().as_secs_f64()
        })
        .collect();
    println!(
        "pull over IMAPS, {fetched} messages, {:.1} MB (with CRLF), median of {runs}:",
        bytes as f64 / 1e6
    );
    println!(
        "  {:.2} s = {:.0} msg/s, {:.1} MB/s, peak RSS {:.0} MB (index update included)",
        s,
        fetched as f64 / s,
        bytes as f64 / 1e6 / s,
        median(rss) / 1048576.0
    );
    println!(
        "  without the index update (--no-index): {:.2} s = {:.0} msg/s",
        no_index,
        fetched as f64 / no_index
    );
    println!("  no-change re-pull: median {:.3} s", median(again));
    // mbsync gets the same treatment: `runs` mirrors into fresh maildirs, median.
    let mb: Option<Vec<f64>> = (0..runs)
        .map(|i| mbsync(&d, &tmp.path().join(format!("mbsync{i}"))).map(|t| t.as_secs_f64()))
        .collect();
    match mb {
        Some(times) => {
            eprintln!("mbsync runs: {times:.2?} s");
            let m = median(times);
            println!("  mbsync (isync) to a maildir, same account and port, median of {runs}: {:.2} s = {:.0} msg/s; mailvault is {:.2}x faster",
                m, fetched as f64 / m, m / s);
        }
        None => println!("  mbsync not installed (apt-get install isync): no comparison"),
    }
}
