//! End-to-end replay benchmark (issue 6, item 6): the main corpus (enron +
//! spamassassin + usrp-users) is imported into an archive, then `mailvault replay
//! --to imaps://…` appends all of it into a fresh account of a private Dovecot on
//! loopback (maildir, the default Debian storage); msg/s and MB/s are reported, and
//! every run is checked complete on the server. Where `mbsync` (Debian `isync`) is
//! installed it pushes the same messages — `mailvault export --format maildir` of
//! the same archive — into another fresh account over the same IMAPS port in the
//! same run, and the ratio is printed.
//!
//! `cargo bench --bench replay_corpus`. After one untimed warm-up replay,
//! `MAILVAULT_BENCH_RUNS` (default 3) runs of each tool; medians are reported.

mod common;
#[path = "../tests/common/mod.rs"]
mod tc;

use std::path::Path;
use std::time::Instant;

use tc::dovecot::{Dovecot, TEST_PASSWORD};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Messages `user` has on the server, all folders.
fn count(d: &Dovecot, user: &str) -> u64 {
    d.doveadm(&["-f", "flow", "mailbox", "status", "-u", user, "messages", "*"])
        .lines()
        .filter_map(|l| l.split("messages=").nth(1))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

fn replay(archive: &Path, d: &Dovecot, user: &str) -> (f64, serde_json::Value) {
    let ca = d.ca_pem();
    let to = format!("imaps://{user}@127.0.0.1:{}", d.imaps);
    let mut c = tc::cmd(
        archive,
        &[
            "replay",
            "--to",
            &to,
            "--password-env",
            "MV_TEST_PW",
            "--tls-ca",
            ca.to_str().unwrap(),
            "--json",
            "-q",
        ],
    );
    c.env("MV_TEST_PW", TEST_PASSWORD);
    common::timed_json(c, "replay")
}

/// mbsync pushing the maildir at `maildir` (Maildir++, INBOX at its root) into
/// `user`; seconds, or `None` when mbsync is not installed.
fn mbsync(d: &Dovecot, user: &str, maildir: &Path, dir: &Path) -> Option<f64> {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let conf = format!(
        "IMAPAccount bench\nHost localhost\nPort {port}\nUser {user}\nPass {pw}\nSSLType IMAPS\nCertificateFile {ca}\n\n\
         IMAPStore remote\nAccount bench\n\n\
         MaildirStore local\nInbox {md}\nSubFolders Maildir++\n\n\
         Channel bench\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nSync Push\nSyncState {state}/\n",
        port = d.imaps,
        pw = TEST_PASSWORD,
        ca = d.ca_pem().display(),
        md = maildir.display(),
        state = dir.join("state").display()
    );
    common::mbsync(&conf, dir).map(|t| t.as_secs_f64())
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
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let t = Instant::now();
    for f in common::FOLDERS {
        tc::ok(
            &archive,
            &["-q", "import", "--account", "main", root.join(f).to_str().unwrap()],
        );
    }
    let placements = mailvault::archive::Archive::open_read_only(&archive)
        .unwrap()
        .counters()
        .placements;
    let maildir = tmp.path().join("export");
    tc::ok(
        &archive,
        &[
            "-q",
            "export",
            "--format",
            "maildir",
            "--out",
            maildir.to_str().unwrap(),
        ],
    );
    eprintln!("imported and exported {placements} messages in {:.1?}", t.elapsed());

    let storage = match std::env::var("MAILVAULT_BENCH_STORAGE").as_deref() {
        Ok("mdbox") => tc::dovecot::Storage::MdboxDot,
        _ => tc::dovecot::Storage::Maildir,
    };
    let extra = std::env::var("MAILVAULT_BENCH_DOVECOT_CONF").unwrap_or_default();
    let d = Dovecot::start_flavour(storage, &extra);
    let mut users: Vec<String> = vec!["warm".into()];
    users.extend((0..runs).flat_map(|i| [format!("mv{i}"), format!("mb{i}")]));
    d.add_users(&users.iter().map(String::as_str).collect::<Vec<_>>(), TEST_PASSWORD);
    // One untimed replay first, so that neither tool is timed against a cold server.
    replay(&archive, &d, "warm");

    let (mut secs, mut appended, mut bytes) = (Vec::new(), 0, 0);
    for i in 0..runs {
        let user = format!("mv{i}");
        let (took, r) = replay(&archive, &d, &user);
        appended = r["total"]["appended"].as_u64().unwrap();
        bytes = r["total"]["appended_bytes"].as_u64().unwrap();
        assert_eq!(appended, placements, "every placement appended");
        assert_eq!(count(&d, &user), placements, "and on the server");
        eprintln!("run {i}: {appended} messages in {took:.2} s");
        secs.push(took);
    }
    let s = median(secs);
    println!(
        "replay over IMAPS into Dovecot ({storage:?}), {appended} messages, {:.1} MB (CRLF), median of {runs}:",
        bytes as f64 / 1e6
    );
    println!(
        "  {s:.2} s = {:.0} msg/s, {:.1} MB/s (process start, archive reads, ledger fsyncs included)",
        appended as f64 / s,
        bytes as f64 / 1e6 / s
    );
    let mut mb = Vec::new();
    for i in 0..runs {
        let user = format!("mb{i}");
        match mbsync(&d, &user, &maildir.join("main"), &tmp.path().join(format!("mbsync{i}"))) {
            Some(took) => {
                let n = count(&d, &user);
                assert_eq!(n, placements, "mbsync pushed {n} of {placements} messages");
                eprintln!("mbsync run {i}: {took:.2} s");
                mb.push(took);
            }
            None => break,
        }
    }
    if mb.is_empty() {
        println!("  mbsync not installed (apt-get install isync): no comparison");
    } else {
        let m = median(mb);
        println!(
            "  mbsync (isync) pushing the same messages from a maildir, same server and port, median of {runs}: \
             {m:.2} s = {:.0} msg/s; mailvault is {:.2}x faster",
            placements as f64 / m,
            m / s
        );
    }
}
