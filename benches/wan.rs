//! Pull and replay over a WAN: the main corpus in a private Dovecot with
//! `imap_zlib` (COMPRESS=DEFLATE offered), reached through a shaping proxy of 50 ms
//! round trip at 100 Mbit/s and then at 20 Mbit/s (`tests/common/shaping_proxy.rs`:
//! one link per direction, shared by every connection). Timed in the same run:
//! `mailvault pull` with and without COMPRESS, `mbsync` (Debian `isync`) mirroring
//! the same account through the same proxy, and `mailvault replay` into a fresh
//! account with and without COMPRESS. Each run's bytes on the link are counted,
//! so each time stands beside the least time those bytes need at that rate (the
//! link's share of the run: 100 % is the line full from first byte to last). At the
//! first rate, the Enron account (4,139 messages, 12 folders) is also migrated
//! through the proxy by `mailvault migrate` and by imapsync (when its Perl modules
//! are installed; `MAILVAULT_WAN_IMAPSYNC=0` skips it).
//!
//! `cargo bench --bench wan`. `MAILVAULT_WAN_FOLDERS` (comma-separated corpus
//! folders; default all three of the main set) and `MAILVAULT_WAN_RATES` (Mbit/s,
//! default `100,20`) narrow it.

mod common;
#[path = "../tests/common/mod.rs"]
mod tc;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::imapsync::Side;
use tc::dovecot::{load_enron, Dovecot, TEST_PASSWORD};
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

/// One timed run through the proxy.
struct Run {
    rate: u64,
    what: String,
    secs: f64,
    /// Bytes the run put on the link, both ways.
    bytes: (u64, u64),
}

impl Run {
    /// The time the busier direction's bytes need at the link's rate.
    fn floor(&self) -> f64 {
        self.bytes.0.max(self.bytes.1) as f64 * 8.0 / (self.rate as f64 * 1e6)
    }
}

/// Runs `f` through `proxy`, counting what it put on the link.
fn through(proxy: &ShapingProxy, rate: u64, what: &str, f: impl FnOnce() -> Option<f64>) -> Option<Run> {
    let before = proxy.carried();
    let secs = f()?;
    let after = proxy.carried();
    let run = Run {
        rate,
        what: what.to_string(),
        secs,
        bytes: (after.0 - before.0, after.1 - before.1),
    };
    eprintln!(
        "{rate} Mbit/s: {what} {secs:.1} s, {:.1} MB on the link",
        run.bytes.0.max(run.bytes.1) as f64 / 1e6
    );
    Some(run)
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
    let peer = match std::env::var("MAILVAULT_WAN_IMAPSYNC").as_deref() {
        Ok("0") => Err("MAILVAULT_WAN_IMAPSYNC=0".to_string()),
        _ => common::imapsync::script(),
    };
    let d = Dovecot::start_with(ZLIB);
    let targets: Vec<String> = rates.iter().flat_map(|r| [format!("c{r}"), format!("p{r}")]).collect();
    let mut users: Vec<&str> = targets.iter().map(String::as_str).collect();
    users.extend(["mail", "ken", "mv", "is"]);
    d.add_users(&users, TEST_PASSWORD);
    let loaded: usize = folders.iter().map(|f| d.load_tree("mail", &root.join(f))).sum();
    let enron = load_enron(&d, "ken");
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

    let mut runs: Vec<Run> = Vec::new();
    let mut migration: Vec<Run> = Vec::new();
    for (i, &rate) in rates.iter().enumerate() {
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
            through(&proxy, rate, name, || {
                let (secs, j) = timed(mailvault(&tmp.path().join(format!("{name}{rate}")), &args), name);
                assert_eq!(j["total"]["fetched"], loaded, "{name}");
                Some(secs)
            })
        };
        runs.extend(pull("pull", &[]));
        runs.extend(pull("pull, no COMPRESS", &["--no-compress"]));
        runs.extend(through(&proxy, rate, "mbsync", || {
            common::mbsync_mirror(
                proxy.port,
                TEST_PASSWORD,
                &ca,
                &tmp.path().join(format!("mbsync{rate}")),
            )
            .map(|t| t.as_secs_f64())
        }));
        let replay = |name: &str, user: &str, extra: &[&str]| {
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
            through(&proxy, rate, name, || {
                let (secs, j) = timed(mailvault(&source, &args), "replay");
                assert_eq!(j["total"]["failed"], 0, "{j}");
                Some(secs)
            })
        };
        runs.extend(replay("replay", &format!("c{rate}"), &[]));
        runs.extend(replay("replay, no COMPRESS", &format!("p{rate}"), &["--no-compress"]));
        if i == 0 {
            migration = migrate_enron(&proxy, rate, &ca, tmp.path(), &peer);
        }
    }
    report(loaded, bytes, &runs);
    report_migration(enron, &migration, &peer);
}

/// The Enron account moved from `ken` to `mv` (mailvault) and `is` (imapsync),
/// both sides through `proxy`.
fn migrate_enron(proxy: &ShapingProxy, rate: u64, ca: &Path, work: &Path, peer: &Result<PathBuf, String>) -> Vec<Run> {
    let side = |user: &'static str| format!("imaps://{user}@127.0.0.1:{}", proxy.port);
    let ca_s = ca.to_str().unwrap();
    let (from, to) = (side("ken"), side("mv"));
    let args = common::migrate_args(&from, &to, ca_s, ca_s);
    let mut out: Vec<Run> = through(proxy, rate, "migrate", || {
        let (secs, j) = timed(mailvault(&work.join("migrate"), &args), "migrate");
        assert_eq!(j["replay"]["total"]["failed"], 0, "{j}");
        Some(secs)
    })
    .into_iter()
    .collect();
    if let Ok(script) = peer {
        let dir = work.join("imapsync");
        std::fs::create_dir_all(&dir).unwrap();
        out.extend(through(proxy, rate, "imapsync", || {
            let (from, to) = (
                Side {
                    port: proxy.port,
                    user: "ken",
                    ca,
                },
                Side {
                    port: proxy.port,
                    user: "is",
                    ca,
                },
            );
            let ran = common::imapsync::run(script, &from, &to, TEST_PASSWORD, &dir);
            for e in &ran.errors {
                eprintln!("imapsync: {e}");
            }
            Some(ran.seconds)
        }));
    }
    out
}

fn report(loaded: usize, bytes: u64, runs: &[Run]) {
    println!(
        "WAN: {loaded} messages, {:.1} MB, 50 ms round trip, Dovecot with COMPRESS=DEFLATE",
        bytes as f64 / 1e6
    );
    println!("| link | run | seconds | MB on the link | least time at that rate | link busy | mbsync ÷ this |");
    println!("|---|---|---|---|---|---|---|");
    for r in runs {
        let mbsync = runs.iter().find(|m| m.rate == r.rate && m.what == "mbsync");
        let vs = match mbsync {
            Some(m) if r.what.starts_with("pull") => format!("{:.2}×", m.secs / r.secs),
            _ => "—".to_string(),
        };
        println!(
            "| {} Mbit/s | {} | {:.1} | {:.1} | {:.1} s | {:.0} % | {vs} |",
            r.rate,
            r.what,
            r.secs,
            r.bytes.0.max(r.bytes.1) as f64 / 1e6,
            r.floor(),
            100.0 * r.floor() / r.secs
        );
    }
    let secs = |rate: u64, what: &str| runs.iter().find(|r| r.rate == rate && r.what == what).map(|r| r.secs);
    for rate in runs.iter().map(|r| r.rate).collect::<std::collections::BTreeSet<_>>() {
        for what in ["pull", "replay"] {
            if let (Some(c), Some(p)) = (secs(rate, what), secs(rate, &format!("{what}, no COMPRESS"))) {
                println!(
                    "{rate} Mbit/s: {what} with COMPRESS is {:.2}× the uncompressed rate",
                    p / c
                );
            }
        }
    }
}

fn report_migration(enron: usize, runs: &[Run], peer: &Result<PathBuf, String>) {
    if let Err(why) = peer {
        println!("imapsync skipped: {why}");
    }
    for r in runs {
        println!(
            "migrate {enron} messages (Enron) at {} Mbit/s, 50 ms: {} {:.1} s ({:.0} messages/s, {:.1} MB up / {:.1} MB down)",
            r.rate,
            r.what,
            r.secs,
            enron as f64 / r.secs,
            r.bytes.0 as f64 / 1e6,
            r.bytes.1 as f64 / 1e6
        );
    }
    if let [mv, is] = runs {
        println!(
            "mailvault migrate moves {:.1}× imapsync's messages per second",
            is.secs / mv.secs
        );
    }
}
