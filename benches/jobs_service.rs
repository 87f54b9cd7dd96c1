//! Jobs benchmark (issue 7): a private Dovecot on loopback.
//!
//! 1. Many accounts: the SpamAssassin corpus (6,046 real messages; the bundled
//!    500-message demo sample when the shared corpus is absent) dealt out to 24
//!    accounts, three folders each. Timed: `mailvault run JOB --once` (8 accounts at
//!    a time, 8 connections to the server), against the same accounts pulled one
//!    after another by `mailvault pull` (what a cron script would do) — each into a
//!    fresh archive; medians of `MAILVAULT_BENCH_RUNS` (default 3).
//! 2. Latency of service mode: `mailvault serve` with INBOX watched; 20 messages
//!    delivered one by one (`doveadm save`); each timed from delivery until
//!    `mailvault search` finds it. Median and worst.
//!
//! `cargo bench --bench jobs_service`.

#[path = "../tests/common/mod.rs"]
mod tc;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tc::dovecot::{Dovecot, TEST_PASSWORD};

const ACCOUNTS: usize = 24;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn corpus() -> Vec<Vec<u8>> {
    if let Some(root) = tc::shared_corpus("spamassassin-public-corpus") {
        let mut files: Vec<PathBuf> = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            if dir.is_dir() {
                files.extend(std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()));
            }
        }
        files.sort();
        return files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    }
    eprintln!("shared corpus absent: using the 500-message demo sample");
    tc::dovecot::sample_messages(usize::MAX)
}

fn mailvault(archive: &Path, args: &[&str]) -> Command {
    let mut c = tc::cmd(archive, args);
    c.env("MV_TEST_PW", TEST_PASSWORD);
    c
}

fn job_text(d: &Dovecot, users: &[String], extra: &str) -> String {
    let mut t = format!("{extra}\n");
    for u in users {
        t.push_str(&format!(
            "[[accounts]]\nname = \"{u}\"\nurl = \"imaps://{u}@127.0.0.1:{}\"\npassword = {{ env = \"MV_TEST_PW\" }}\ntls_ca = \"{}\"\nconnections = 2\n\n",
            d.imaps,
            d.ca_pem().display()
        ));
    }
    t
}

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let runs: usize = std::env::var("MAILVAULT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let d = Dovecot::start();
    let users: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct{i:02}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    d.add_users(&refs, TEST_PASSWORD);
    let msgs = corpus();
    let total = msgs.len();
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    let folders = ["INBOX", "Lists", "Old"];
    for (i, u) in users.iter().enumerate() {
        for (k, f) in folders.iter().enumerate() {
            let mine: Vec<(Vec<u8>, &str, SystemTime)> = msgs
                .iter()
                .enumerate()
                .filter(|(j, _)| j % ACCOUNTS == i && (j / ACCOUNTS) % folders.len() == k)
                .map(|(j, m)| {
                    (
                        m.clone(),
                        "",
                        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + j as u64),
                    )
                })
                .collect();
            d.load(u, f, &mine);
        }
    }
    println!(
        "{total} messages ({:.1} MB) in {ACCOUNTS} accounts × {} folders",
        bytes as f64 / 1e6,
        folders.len()
    );
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("many.toml");
    std::fs::write(
        &job,
        job_text(
            &d,
            &users,
            "[limits]\nconnections_per_host = 8\naccounts_in_parallel = 8\n",
        ),
    )
    .unwrap();
    let (mut as_job, mut one_by_one) = (Vec::new(), Vec::new());
    for r in 0..runs {
        let a = tmp.path().join(format!("job-{r}"));
        as_job.push(secs(|| {
            let out = mailvault(&a, &["run", job.to_str().unwrap(), "--once", "--json"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }));
        let b = tmp.path().join(format!("seq-{r}"));
        one_by_one.push(secs(|| {
            for u in &users {
                let out = tc::dovecot::pull(&b, &d, u, &["--account", u, "--connections", "2"]);
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            }
        }));
        assert_eq!(tc::stat_u64(&a, "placements"), total as u64);
        assert_eq!(tc::stat_u64(&b, "placements"), total as u64);
    }
    let (j, s) = (median(as_job), median(one_by_one));
    println!(
        "run --once, 8 accounts at a time: {j:.2} s = {:.0} msg/s, {:.1} MB/s",
        total as f64 / j,
        bytes as f64 / 1e6 / j
    );
    println!(
        "pull, one account after another: {s:.2} s = {:.0} msg/s → the job is {:.2}× as fast",
        total as f64 / s,
        s / j
    );

    // 2. Delivery → searchable, in service mode.
    let svc_archive = tmp.path().join("svc");
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    let watched = vec![users[0].clone()];
    std::fs::write(
        jobs.join("watched.toml"),
        job_text(&d, &watched, "[schedule]\nevery = \"1h\"\n")
            .replace("connections = 2\n", "connections = 2\nwatch = [\"INBOX\"]\n"),
    )
    .unwrap();
    let log = tmp.path().join("serve.log");
    let mut child = mailvault(&svc_archive, &["serve", "--jobs", jobs.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let ready = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("watching with IDLE")
        || !std::fs::read_to_string(svc_archive.join("status/watched.json"))
            .unwrap_or_default()
            .contains("\"ok\"")
    {
        assert!(ready.elapsed() < Duration::from_secs(120), "service not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut lat = Vec::new();
    for i in 0..20 {
        let token = format!("latencytoken{i}");
        let raw = format!("From: a@example.org\r\nTo: b@example.org\r\nSubject: {token}\r\nMessage-ID: <{token}@bench>\r\n\r\nbody\r\n");
        let t = Instant::now();
        d.save(&users[0], "INBOX", raw.as_bytes());
        loop {
            let out = mailvault(
                &svc_archive,
                &["search", &format!("subject:{token}"), "--format", "ids"],
            )
            .output()
            .unwrap();
            if !out.stdout.is_empty() {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "message {i} not archived");
            std::thread::sleep(Duration::from_millis(20));
        }
        lat.push(t.elapsed().as_secs_f64());
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let worst = lat.iter().cloned().fold(0.0, f64::max);
    println!(
        "serve, INBOX watched: delivery → found by search in {:.0} ms median, {:.0} ms worst (20 messages)",
        median(lat) * 1000.0,
        worst * 1000.0
    );
}
