//! Pull and replay over a WAN: the main corpus in a private Dovecot with
//! `imap_zlib` (COMPRESS=DEFLATE offered), reached through a shaping proxy of 50 ms
//! round trip at 100 Mbit/s and then at 20 Mbit/s (`tests/common/shaping_proxy.rs`:
//! one link per direction, shared by every connection). Timed in the same run:
//! `mailvault pull` with and without COMPRESS, `mbsync` (Debian `isync`) mirroring
//! the same account through the same proxy, and `mailvault replay` into a fresh
//! account with and without COMPRESS.
//!
//! `cargo bench --bench wan`. `MAILVAULT_WAN_FOLDERS` (comma-separated corpus
//! folders; default all three of the main set) and `MAILVAULT_WAN_RATES` (Mbit/s,
//! default `100,20`) narrow it.

mod common;
#[path = "../tests/common/mod.rs"]
mod tc;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tc::dovecot::{Dovecot, TEST_PASSWORD};
use tc::shaping_proxy::ShapingProxy;

const RTT: Duration = Duration::from_millis(50);
const ZLIB: &str = "protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n";

fn mailvault(archive: &Path, args: &[&str]) -> Command {
    let mut c = tc::cmd(archive, args);
    c.env("MV_TEST_PW", TEST_PASSWORD);
    c
}

/// Runs a mailvault command printing JSON: seconds and the JSON.
fn timed(mut c: Command, what: &str) -> (f64, serde_json::Value) {
    let t = Instant::now();
    let out = c.output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    (secs, serde_json::from_slice(&out.stdout).unwrap())
}

struct Row {
    rate: u64,
    pull: f64,
    pull_plain: f64,
    mbsync: Option<f64>,
    replay: f64,
    replay_plain: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(root) = tc::corpus_root() else {
        eprintln!("no corpus: set MAILVAULT_CORPUS or provide ../shared/corpus");
        return;
    };
    let folders: Vec<String> = std::env::var("MAILVAULT_WAN_FOLDERS")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_else(|_| common::FOLDERS.iter().map(|s| s.to_string()).collect());
    let rates: Vec<u64> = std::env::var("MAILVAULT_WAN_RATES")
        .map(|s| s.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_else(|_| vec![100, 20]);
    let d = Dovecot::start_with(ZLIB);
    let targets: Vec<String> = rates.iter().flat_map(|r| [format!("c{r}"), format!("p{r}")]).collect();
    let mut users: Vec<&str> = targets.iter().map(String::as_str).collect();
    users.push("mail");
    d.add_users(&users, TEST_PASSWORD);
    let loaded: usize = folders.iter().map(|f| d.load_tree("mail", &root.join(f))).sum();
    d.doveadm(&["mailbox", "status", "-u", "mail", "messages", "*"]);
    let tmp = tempfile::tempdir().unwrap();
    let ca = d.ca_pem();
    let ca_s = ca.to_str().unwrap().to_string();
    // The replays' source, pulled on loopback (also warms the server's caches).
    let source = tmp.path().join("source");
    let direct = format!("imaps://mail@127.0.0.1:{}", d.imaps);
    let (_, s) = timed(
        mailvault(
            &source,
            &[
                "pull",
                &direct,
                "--tls-ca",
                &ca_s,
                "--password-env",
                "MV_TEST_PW",
                "--json",
                "-q",
            ],
        ),
        "source pull",
    );
    let bytes = s["total"]["fetched_bytes"].as_u64().unwrap();
    eprintln!("{loaded} messages, {:.1} MB, folders {folders:?}", bytes as f64 / 1e6);

    let mut rows = Vec::new();
    for &rate in &rates {
        let proxy = ShapingProxy::start(d.imaps, RTT, rate * 1_000_000);
        let url = format!("imaps://mail@127.0.0.1:{}", proxy.port);
        let pull = |name: &str, extra: &[&str]| {
            let mut args = vec![
                "pull",
                &url,
                "--tls-ca",
                &ca_s,
                "--password-env",
                "MV_TEST_PW",
                "--json",
                "-q",
                "--no-index",
            ];
            args.extend_from_slice(extra);
            let (secs, j) = timed(mailvault(&tmp.path().join(format!("{name}{rate}")), &args), name);
            assert_eq!(j["total"]["fetched"], loaded, "{name}");
            eprintln!("{rate} Mbit/s: {name} {secs:.1} s");
            secs
        };
        let pull_c = pull("pull", &[]);
        let pull_p = pull("pull-no-compress", &["--no-compress"]);
        let mb = common::mbsync_mirror(
            proxy.port,
            TEST_PASSWORD,
            &ca,
            &tmp.path().join(format!("mbsync{rate}")),
        )
        .map(|t| t.as_secs_f64());
        eprintln!("{rate} Mbit/s: mbsync {mb:?} s");
        let replay = |user: &str, extra: &[&str]| {
            let to = format!("imaps://{user}@127.0.0.1:{}", proxy.port);
            let mut args = vec![
                "replay",
                "--to",
                &to,
                "--tls-ca",
                &ca_s,
                "--password-env",
                "MV_TEST_PW",
                "--json",
                "-q",
            ];
            args.extend_from_slice(extra);
            let (secs, j) = timed(mailvault(&source, &args), "replay");
            assert_eq!(j["total"]["failed"], 0, "{j}");
            eprintln!("{rate} Mbit/s: replay to {user} {secs:.1} s");
            secs
        };
        let replay_c = replay(&format!("c{rate}"), &[]);
        let replay_p = replay(&format!("p{rate}"), &["--no-compress"]);
        rows.push(Row {
            rate,
            pull: pull_c,
            pull_plain: pull_p,
            mbsync: mb,
            replay: replay_c,
            replay_plain: replay_p,
        });
    }
    println!(
        "WAN: {loaded} messages, {:.1} MB, 50 ms round trip, Dovecot with COMPRESS=DEFLATE",
        bytes as f64 / 1e6
    );
    println!("| link | pull | pull, no COMPRESS | mbsync | pull vs mbsync | replay | replay, no COMPRESS |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let vs = r.mbsync.map_or("—".to_string(), |m| format!("{:.2}×", m / r.pull));
        println!(
            "| {} Mbit/s | {:.1} s | {:.1} s ({:.2}× slower) | {} | {vs} | {:.1} s | {:.1} s ({:.2}× slower) |",
            r.rate,
            r.pull,
            r.pull_plain,
            r.pull_plain / r.pull,
            r.mbsync.map_or("not installed".to_string(), |m| format!("{m:.1} s")),
            r.replay,
            r.replay_plain,
            r.replay_plain / r.replay
        );
    }
}
