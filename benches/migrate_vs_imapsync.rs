//! Migration side by side with imapsync: the Enron account (4,139 messages, 12
//! folders) on a private Dovecot (maildir, `/`, no prefix) is moved over IMAPS into
//! fresh accounts of a second Dovecot whose personal folders sit under `INBOX.`
//! with `.` as separator — once by `mailvault migrate`, once by imapsync (the
//! script from its public repository, run with Debian's Perl modules) — in the
//! same run. For each tool: seconds, messages/s, messages moved, and the
//! differences it leaves (bytes, flags, INTERNALDATE, folders), found by the
//! tests' independent comparison (`server_view` + `compare_views`), each tool's
//! folders mapped as that tool maps them.
//!
//! `cargo bench --bench migrate_vs_imapsync`. `MAILVAULT_BENCH_RUNS` (default 1)
//! runs of each tool, medians reported. imapsync is found at `IMAPSYNC` or
//! `../shared/peers/imapsync/imapsync`; without it (or its Perl modules) only
//! mailvault is measured and a line says why.

mod common;
#[path = "../tests/common/mod.rs"]
mod tc;

use std::collections::BTreeMap;
use std::path::Path;

use common::imapsync::Side;
use tc::dovecot::{compare_views, load_enron, report_folder_map, Dovecot, ServerMessage, Storage, TEST_PASSWORD};

type View = BTreeMap<(String, u32, u32), ServerMessage>;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// `mailvault migrate` of `ken` on `src` into `user` on `dst`, into a fresh
/// archive; seconds and the replay report.
fn mailvault(src: &Dovecot, dst: &Dovecot, user: &str, work: &Path) -> (f64, serde_json::Value) {
    let archive = work.join(format!("archive-{user}"));
    let (from, to) = (
        format!("imaps://ken@127.0.0.1:{}", src.imaps),
        format!("imaps://{user}@127.0.0.1:{}", dst.imaps),
    );
    let (ca1, ca2) = (src.ca_pem(), dst.ca_pem());
    let mut c = tc::cmd(
        &archive,
        &common::migrate_args(&from, &to, ca1.to_str().unwrap(), ca2.to_str().unwrap()),
    );
    c.env("MV_TEST_PW", TEST_PASSWORD);
    let (took, v) = common::timed_json(c, "migrate");
    (took, v["replay"].clone())
}

/// Differences by kind, as `compare_views` words them.
fn kinds(diffs: &[String]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for d in diffs {
        let k = if d.contains(" missing ") {
            "missing"
        } else if d.contains(" extra ") {
            "extra"
        } else {
            "flags/date"
        };
        *out.entry(k).or_default() += 1;
    }
    out
}

struct Row {
    tool: &'static str,
    seconds: f64,
    moved: usize,
    diffs: Vec<String>,
    /// The tool's exit status and the errors it printed.
    exit: Option<i32>,
    errors: Vec<String>,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("MAILVAULT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let work = tempfile::tempdir().unwrap();
    let src = Dovecot::start();
    src.add_user("ken", TEST_PASSWORD);
    let loaded = load_enron(&src, "ken");
    let source: View = src.server_view("ken", TEST_PASSWORD);
    assert_eq!(source.len(), loaded);
    let dst = Dovecot::start_flavour(Storage::MaildirInboxDot, "");
    let peer = common::imapsync::script();
    println!(
        "migrating {loaded} messages (Enron, 12 folders): Dovecot maildir '/' → Dovecot maildir 'INBOX.' '.', IMAPS on loopback; {runs} run(s) each"
    );
    let mut rows = Vec::new();
    let mut times = Vec::new();
    let mut last = None;
    for run in 0..runs {
        let user = format!("mv{run}");
        dst.add_user(&user, TEST_PASSWORD);
        let (t, report) = mailvault(&src, &dst, &user, work.path());
        times.push(t);
        last = Some((user, report));
    }
    let (user, report) = last.unwrap();
    let map = report_folder_map(&report);
    let target = dst.server_view(&user, TEST_PASSWORD);
    rows.push(Row {
        tool: "mailvault",
        seconds: median(times),
        moved: target.len(),
        diffs: compare_views(&source, &target, |f| map[f].clone()),
        exit: Some(0),
        errors: Vec::new(),
    });
    match &peer {
        Ok(script) => {
            let mut times = Vec::new();
            let (mut exit, mut errors) = (None, Vec::new());
            for run in 0..runs {
                let user = format!("is{run}");
                dst.add_user(&user, TEST_PASSWORD);
                let (ca1, ca2) = (src.ca_pem(), dst.ca_pem());
                let ran = common::imapsync::run(
                    script,
                    &Side {
                        port: src.imaps,
                        user: "ken",
                        ca: &ca1,
                    },
                    &Side {
                        port: dst.imaps,
                        user: &user,
                        ca: &ca2,
                    },
                    TEST_PASSWORD,
                    work.path(),
                );
                times.push(ran.seconds);
                (exit, errors) = (ran.exit, ran.errors);
            }
            let target = dst.server_view(&format!("is{}", runs - 1), TEST_PASSWORD);
            rows.push(Row {
                tool: "imapsync 2.229",
                seconds: median(times),
                moved: target.len(),
                // imapsync's own mapping (host1's prefix off, separators inverted,
                // host2's prefix on, INBOX excepted) is how the prefixed flavour
                // names a folder.
                diffs: compare_views(&source, &target, |f| Storage::MaildirInboxDot.server_name(f)),
                exit,
                errors,
            });
        }
        Err(why) => println!("imapsync skipped: {why}"),
    }
    println!(
        "{:<16} {:>9} {:>10} {:>7} {:>5}  differences from the source",
        "tool", "seconds", "msg/s", "moved", "exit"
    );
    for r in &rows {
        println!(
            "{:<16} {:>9.2} {:>10.0} {:>7} {:>5}  {} {:?}",
            r.tool,
            r.seconds,
            r.moved as f64 / r.seconds,
            r.moved,
            r.exit.map_or("?".into(), |c| c.to_string()),
            r.diffs.len(),
            kinds(&r.diffs)
        );
        for e in &r.errors {
            println!("    {e}");
        }
        for d in r.diffs.iter().take(5) {
            println!("    {d}");
        }
    }
    if let [mv, is] = &rows[..] {
        println!(
            "mailvault / imapsync: {:.1}x the messages per second",
            is.seconds / mv.seconds
        );
    }
}
