//! Jobs and service mode against a real Dovecot: `run --once` of several accounts,
//! IDLE-driven archiving within seconds, SIGTERM mid-pull, a refused login that is
//! retried with backoff (LOGINs counted in Dovecot's log), and the per-server
//! connection limit across jobs (connections counted by a proxy in front of the
//! server). The job-file refusals are in tests/job_files.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::dovecot::{Dovecot, TEST_PASSWORD};
use common::fault_proxy::{CountProxy, SlowProxy};
use common::{cmd, ok};

/// The `[[accounts]]` table of `user` at `url`, trusting the test CA.
fn account(d: &Dovecot, name: &str, url: &str, password_env: &str, extra: &str) -> String {
    format!(
        "[[accounts]]\nname = \"{name}\"\nurl = \"{url}\"\npassword = {{ env = \"{password_env}\" }}\ntls_ca = \"{}\"\ntimeout = \"20s\"\n{extra}\n",
        d.ca_pem().display()
    )
}

fn imap_url(d: &Dovecot, user: &str) -> String {
    format!("imaps://{user}@127.0.0.1:{}", d.imaps)
}

fn write_job(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// A small distinct message.
fn message(i: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: Sender {i} <s{i}@example.org>\r\nTo: ann@example.org\r\nSubject: {subject}\r\nMessage-ID: <job-{i}-{subject}@example.org>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nBody of message {i}: {subject}\r\n"
    )
    .into_bytes()
}

fn messages(from: usize, n: usize, subject: &str) -> Vec<(Vec<u8>, &'static str, SystemTime)> {
    (from..from + n)
        .map(|i| {
            (
                message(i, subject),
                "",
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + i as u64),
            )
        })
        .collect()
}

fn mailvault(archive: &Path, args: &[&str]) -> Command {
    let mut c = cmd(archive, args);
    c.env("MV_TEST_PW", TEST_PASSWORD)
        .env("MV_WRONG_PW", "not-the-password");
    c
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `run JOB --once --json`, which must succeed: one record per account.
fn run_once_json(archive: &Path, job: &Path) -> serde_json::Value {
    common::json_of(
        mailvault(archive, &["run", job.to_str().unwrap(), "--once", "--json"]),
        "run --once",
    )
}

fn status(archive: &Path) -> serde_json::Value {
    json(&ok(archive, &["status", "--json"]))
}

/// The status record of `account` of `job`, if it has run.
fn account_status(archive: &Path, job: &str, account: &str) -> Option<serde_json::Value> {
    status(archive)
        .as_array()?
        .iter()
        .find(|j| j["job"] == job)
        .and_then(|j| j["accounts"].get(account).cloned())
}

fn search_ids(archive: &Path, q: &str) -> Vec<String> {
    ok(archive, &["search", q, "--format", "ids", "--limit", "100000"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Polls `f` every 100 ms until it holds, for at most `limit`.
fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// A `serve` process, killed if the test fails before stopping it.
struct Service {
    child: Option<Child>,
    log: PathBuf,
}

impl Service {
    fn start(archive: &Path, jobs: &Path, extra: &[&str]) -> Service {
        Service::start_with_env(archive, jobs, extra, &[])
    }
    fn start_with_env(archive: &Path, jobs: &Path, extra: &[&str], env: &[(&str, &str)]) -> Service {
        let log = archive.with_extension("serve.log");
        let mut args = vec!["serve", "--jobs", jobs.to_str().unwrap()];
        args.extend_from_slice(extra);
        let child = mailvault(archive, &args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Service {
            child: Some(child),
            log,
        }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// SIGTERM; returns the exit code and how long the exit took.
    fn terminate(&mut self) -> (Option<i32>, Duration) {
        let mut child = self.child.take().unwrap();
        signal_and_wait(&mut child, libc::SIGTERM, Duration::from_secs(30))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends `signal` to `child`; returns its exit code and how long the exit took.
/// Fails (killing the child) when it has not exited within `limit`.
fn signal_and_wait(child: &mut Child, signal: i32, limit: Duration) -> (Option<i32>, Duration) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code(), start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("no exit within {limit:?} of signal {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to `child` after `after`; returns its exit code and how long the
/// exit took, failing after 10 s.
fn interrupt(child: &mut Child, after: Duration, signal: i32) -> (Option<i32>, Duration) {
    std::thread::sleep(after);
    signal_and_wait(child, signal, Duration::from_secs(10))
}

/// What it must show, 1: three accounts (two IMAP, one POP3) run once, all
/// archived, one summary per account.
#[test]
fn three_accounts_run_once_with_one_summary_each() {
    let d = Dovecot::start();
    d.add_users(&["ann", "bob", "cat"], TEST_PASSWORD);
    d.load("ann", "INBOX", &messages(0, 5, "ann inbox"));
    d.load("ann", "Work", &messages(100, 3, "ann work"));
    d.load("bob", "INBOX", &messages(200, 4, "bob inbox"));
    d.load("cat", "INBOX", &messages(300, 6, "cat pop"));
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let job = write_job(
        tmp.path(),
        "three",
        &[
            "[schedule]\nevery = \"30m\"\n".to_string(),
            account(&d, "ann", &imap_url(&d, "ann"), "MV_TEST_PW", ""),
            account(&d, "bob", &imap_url(&d, "bob"), "MV_TEST_PW", ""),
            account(
                &d,
                "cat",
                &format!("pop3s://cat@127.0.0.1:{}", d.pop3s),
                "MV_TEST_PW",
                "",
            ),
        ]
        .join("\n"),
    );
    // A dry run shows the job and checks credentials, and connects to nothing.
    let logins = d.log().matches("Login: user=").count();
    let out = mailvault(&archive, &["run", job.to_str().unwrap(), "--dry-run"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        text.matches("credential readable; next run at once").count(),
        3,
        "{text}"
    );
    assert!(
        text.contains("cat <pop3s://cat@127.0.0.1:") && text.contains("POP3, delete Keep"),
        "{text}"
    );
    assert!(!archive.exists(), "a dry run creates no archive");
    assert_eq!(d.log().matches("Login: user=").count(), logins);

    let out = mailvault(&archive, &["run", job.to_str().unwrap(), "--once"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        d.log().matches("Login: user=").count() >= logins + 3,
        "logins are what the dry run is checked by"
    );
    // One summary line per account, in the job's order.
    let heads: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(heads.len(), 3, "{text}");
    for (line, (name, new)) in heads.iter().zip([("ann", 8), ("bob", 4), ("cat", 6)]) {
        assert!(line.starts_with(&format!("{name} (")), "{line}");
        assert!(line.contains(&format!(": ok: {new} new, {new} fetched")), "{line}");
    }
    // All archived and searchable, under their account names.
    assert_eq!(search_ids(&archive, "account:ann").len(), 8);
    assert_eq!(search_ids(&archive, "account:bob").len(), 4);
    assert_eq!(search_ids(&archive, "account:cat").len(), 6);
    assert_eq!(search_ids(&archive, "subject:\"ann work\" folder:Work").len(), 3);
    // The status has a record per account with a next run.
    for name in ["ann", "bob", "cat"] {
        let s = account_status(&archive, "three", name).unwrap();
        assert_eq!(s["last_run"]["result"], "ok", "{s}");
        assert!(s["next_run"].is_string(), "{s}");
    }
    let table = ok(&archive, &["status"]);
    assert_eq!(table.lines().filter(|l| l.starts_with("three ")).count(), 3, "{table}");
    // Run again: nothing new, still one summary each (JSON for programs).
    let runs = run_once_json(&archive, &job);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|r| r["outcome"] == "ok" && r["new_messages"] == 0 && r["fetched"] == 0),
        "{runs:?}"
    );
}

/// What it must show, 2: in service mode a message delivered to a watched folder is
/// archived and found by search within 5 seconds.
#[test]
fn service_archives_new_mail_in_a_watched_folder_within_seconds() {
    let d = Dovecot::start();
    d.add_users(&["ann"], TEST_PASSWORD);
    d.load("ann", "INBOX", &messages(0, 3, "before the service"));
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    write_job(
        &jobs,
        "watched",
        &format!(
            "[schedule]\nevery = \"1h\"\n\n{}",
            account(&d, "ann", &imap_url(&d, "ann"), "MV_TEST_PW", "watch = [\"INBOX\"]")
        ),
    );
    let [metrics_port] = common::dovecot::free_ports::<1>();
    let mut svc = Service::start(
        &archive,
        &jobs,
        &["--log-format", "json", "--metrics", &metrics_port.to_string()],
    );
    wait_until(Duration::from_secs(30), "first run and IDLE", || {
        svc.log().contains("watching with IDLE")
            && account_status(&archive, "watched", "ann").is_some_and(|s| s["last_run"]["result"] == "ok")
    });
    assert_eq!(search_ids(&archive, "subject:\"before the service\"").len(), 3);
    for round in 0..3 {
        let subject = format!("arrives while watched {round}");
        let token = format!("watchtoken{round}");
        d.save("ann", "INBOX", &message(1000 + round, &format!("{subject} {token}")));
        let took = wait_until(Duration::from_secs(5), "archived and searchable", || {
            search_ids(&archive, &format!("subject:{token}")).len() == 1
        });
        eprintln!("round {round}: delivered → found by search in {took:?}");
    }
    // Per-account counters in the Prometheus text format on 127.0.0.1. A run's
    // counters are added when it ends, which can be just after its messages are
    // searchable: wait for the last one.
    let new_total = "mailvault_messages_new_total{job=\"watched\",account=\"ann\"} 6";
    wait_until(Duration::from_secs(5), "the last run's counters", || {
        http_get(metrics_port, "/metrics").contains(new_total)
    });
    let metrics = http_get(metrics_port, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(
        metrics.contains("# TYPE mailvault_messages_new_total counter"),
        "{metrics}"
    );
    assert!(metrics.contains(new_total), "{metrics}");
    assert!(http_get(metrics_port, "/other").starts_with("HTTP/1.1 404"));
    // Logs are JSON objects, one per line, with the account's span.
    let log = svc.log();
    let first = log.lines().find(|l| l.contains("watching with IDLE")).unwrap();
    let v = json(first);
    assert_eq!(v["span"]["folder"], "INBOX", "{first}");
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{log}"
    );
    let (code, took) = svc.terminate();
    assert_eq!(code, Some(0), "{}", svc.log());
    assert!(took < Duration::from_secs(10), "{took:?}");
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// What it must show, 3: SIGTERM during a pull — exit within 10 s, the batch in
/// hand committed; the restart continues; nothing lost or doubled.
#[test]
fn sigterm_during_a_pull_commits_the_batch_and_the_rerun_continues() {
    const N: usize = 1200;
    let d = Dovecot::start();
    d.add_users(&["ann"], TEST_PASSWORD);
    d.load("ann", "INBOX", &messages(0, N, "many"));
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    // Paced at 300 messages per second: the pull takes about 4 s, in batches of
    // one second's work.
    let job = write_job(
        tmp.path(),
        "paced",
        &format!(
            "[limits]\nmessages_per_second = 300\n\n{}",
            account(&d, "ann", &imap_url(&d, "ann"), "MV_TEST_PW", "")
        ),
    );
    let mut child = mailvault(&archive, &["run", job.to_str().unwrap(), "--once", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, took) = interrupt(&mut child, Duration::from_millis(1800), libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    let runs = json(&String::from_utf8_lossy(&out.stdout));
    let first = runs[0]["new_messages"].as_u64().unwrap();
    eprintln!("SIGTERM: exit in {took:?}; {first} of {N} committed");
    assert!(first > 0 && first < N as u64, "the stop came mid-pull: {first}");
    assert_eq!(runs[0]["stopped"], true);
    // Everything reported is in the archive: committed, not merely fetched.
    assert_eq!(common::stat_u64(&archive, "messages"), first);
    assert_eq!(
        account_status(&archive, "paced", "ann").unwrap()["last_run"]["result"],
        "stopped"
    );

    // The restart continues where the committed batches end.
    let runs = run_once_json(&archive, &job);
    assert_eq!(runs[0]["new_messages"].as_u64().unwrap(), N as u64 - first);
    assert_eq!(
        runs[0]["fetched"].as_u64().unwrap(),
        N as u64 - first,
        "nothing fetched twice"
    );
    assert_eq!(common::stat_u64(&archive, "messages"), N as u64);
    assert_eq!(
        common::stat_u64(&archive, "placements"),
        N as u64,
        "no placement doubled"
    );
    assert_eq!(search_ids(&archive, "subject:many").len(), N);
}

/// The POP3 side of a graceful stop: the batch in hand is committed, only committed
/// messages are deleted (delete-after-archive), QUIT; the rerun finishes the job.
#[test]
fn sigterm_during_a_pop3_job_deletes_only_what_is_committed() {
    const N: usize = 400;
    let d = Dovecot::start();
    d.add_users(&["cat"], TEST_PASSWORD);
    d.load("cat", "INBOX", &messages(0, N, "pop many"));
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let job = write_job(
        tmp.path(),
        "pop",
        &format!(
            "[limits]\nmessages_per_second = 100\n\n{}",
            account(
                &d,
                "cat",
                &format!("pop3s://cat@127.0.0.1:{}", d.pop3s),
                "MV_TEST_PW",
                "delete = \"after-archive\""
            )
        ),
    );
    let on_server = || {
        d.doveadm(&["mailbox", "status", "-u", "cat", "messages", "INBOX"])
            .trim()
            .to_string()
    };
    let mut child = mailvault(&archive, &["run", job.to_str().unwrap(), "--once", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, took) = interrupt(&mut child, Duration::from_millis(1500), libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code, Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    let first = json(&String::from_utf8_lossy(&out.stdout))[0]["new_messages"]
        .as_u64()
        .unwrap();
    eprintln!("POP3 SIGTERM: exit in {took:?}; {first} of {N} committed");
    assert!(first > 0 && first < N as u64, "{first}");
    assert_eq!(common::stat_u64(&archive, "messages"), first);
    assert_eq!(
        on_server(),
        format!("INBOX messages={}", N as u64 - first),
        "only committed messages deleted"
    );
    assert_eq!(
        run_once_json(&archive, &job)[0]["fetched"].as_u64().unwrap(),
        N as u64 - first
    );
    assert_eq!(common::stat_u64(&archive, "messages"), N as u64);
    assert_eq!(on_server(), "INBOX messages=0");
}

/// `mailvault pull` stops the same way on Ctrl-C (SIGINT): over a slow link, the
/// batch in hand is committed, exit 130, and the next pull fetches only the rest.
#[test]
fn sigint_during_a_pull_commits_the_batch_in_hand() {
    const N: usize = 1200;
    let d = Dovecot::start();
    d.add_users(&["ann"], TEST_PASSWORD);
    d.load("ann", "INBOX", &messages(0, N, "slow link"));
    let slow = SlowProxy::start(d.imaps, 150_000);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let url = format!("imaps://ann@127.0.0.1:{}", slow.port);
    let mut child = common::dovecot::pull_command(&archive, &url, &d, &["--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, took) = interrupt(&mut child, Duration::from_millis(1200), libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
    let first = common::stat_u64(&archive, "messages");
    eprintln!("pull SIGINT: exit in {took:?}; {first} of {N} committed");
    assert!(first > 0 && first < N as u64, "{first}");
    let summary = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(summary["total"]["fetched"].as_u64().unwrap(), first);
    let again = common::dovecot::pull_json(&archive, &d, "ann", &[]);
    assert_eq!(again["total"]["fetched"].as_u64().unwrap(), N as u64 - first);
    assert_eq!(common::stat_u64(&archive, "messages"), N as u64);
}

/// Dovecot's log lines of refused logins of `user`.
fn refused_logins(d: &Dovecot, user: &str) -> usize {
    d.log()
        .lines()
        .filter(|l| l.contains(&format!("user=<{user}>")) && l.contains("auth failed"))
        .count()
}

/// What it must show, 4: an account with a wrong password does not stop the
/// others; it is reported and retried with backoff, not in a tight loop.
#[test]
fn a_wrong_password_is_reported_and_retried_with_backoff() {
    let d = Dovecot::start();
    d.add_users(&["ann", "bob"], TEST_PASSWORD);
    d.load("ann", "INBOX", &messages(0, 4, "ann first"));
    d.load("bob", "INBOX", &messages(100, 4, "bob never"));
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    // Every second, and a refused login waits 1 s, 2 s, 4 s, 8 s … before the next try.
    let job = write_job(
        &jobs,
        "mixed",
        &[
            "[schedule]\nevery = \"1s\"\n\n[retry]\nauth_failure_backoff = \"1s\"\nmax_backoff = \"1m\"\n".to_string(),
            account(&d, "bob", &imap_url(&d, "bob"), "MV_WRONG_PW", ""),
            account(&d, "ann", &imap_url(&d, "ann"), "MV_TEST_PW", ""),
        ]
        .join("\n"),
    );
    // Once: ann archived, bob reported, exit 1.
    let out = mailvault(&archive, &["run", job.to_str().unwrap(), "--once"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("ann (") && text.contains(": ok: 4 new"), "{text}");
    assert!(
        text.contains("bob (") && text.contains("failed (login refused"),
        "{text}"
    );
    assert!(text.contains("login failed for bob"), "{text}");
    assert_eq!(refused_logins(&d, "bob"), 1, "one LOGIN, not retried within the run");

    // As a service for 12 s: ann keeps being archived; bob is tried at about
    // 0, 1, 3, 7 s (a tight loop would be hundreds of LOGINs; the schedule alone twelve).
    let before = refused_logins(&d, "bob");
    let mut svc = Service::start(&archive, &jobs, &[]);
    std::thread::sleep(Duration::from_secs(3));
    d.save("ann", "INBOX", &message(50, "ann later"));
    wait_until(Duration::from_secs(8), "ann's new mail archived", || {
        search_ids(&archive, "subject:\"ann later\"").len() == 1
    });
    std::thread::sleep(Duration::from_secs(12).saturating_sub(Duration::from_secs(3)));
    let (code, _) = svc.terminate();
    assert_eq!(code, Some(0), "{}", svc.log());
    let attempts = refused_logins(&d, "bob") - before;
    eprintln!("bob's refused LOGINs in 12 s of service: {attempts}");
    assert!(
        (2..=6).contains(&attempts),
        "{attempts} LOGIN attempts in 12 s\n{}",
        d.log()
    );
    let bob = account_status(&archive, "mixed", "bob").unwrap();
    assert_eq!(bob["last_run"]["result"], "permanent", "{bob}");
    assert!(
        bob["last_run"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("login failed for bob"),
        "{bob}"
    );
    assert_eq!(
        bob["consecutive_failures"].as_u64().unwrap(),
        attempts as u64 + 1,
        "{bob}"
    );
    assert_eq!(bob["messages_total"], 0);
    let ann = account_status(&archive, "mixed", "ann").unwrap();
    // ann runs every second, so the SIGTERM may land inside a run: that run
    // is recorded as stopped, which is the truth, not a failure.
    let last = ann["last_run"]["result"].as_str().unwrap_or_default();
    assert!(matches!(last, "ok" | "stopped"), "{ann}");
    assert_eq!(ann["consecutive_failures"], 0, "{ann}");
    assert!(ann["runs"].as_u64().unwrap() >= 5, "{ann}");
    assert_eq!(ann["messages_total"], 5);
    assert!(svc.log().contains("login failed for bob"), "reported in the log");
    // The table says it in words, with times that carry their offset from UTC.
    let table = ok(&archive, &["status"]);
    let bob_line = table
        .lines()
        .find(|l| l.starts_with("mixed ") && l.contains(" bob "))
        .unwrap();
    assert!(bob_line.contains("failed, needs you"), "{table}");
    let has_offset = bob_line
        .split_whitespace()
        .any(|w| w.len() == 6 && (w.starts_with('+') || w.starts_with('-')) && w.as_bytes()[3] == b':');
    assert!(has_offset, "{table}");
}

/// What it must show, 5: the per-server connection limit holds across concurrent
/// jobs (connections counted by a proxy in front of Dovecot).
#[test]
fn the_per_host_connection_limit_holds_across_jobs() {
    let d = Dovecot::start();
    let users = ["u1", "u2", "u3", "u4"];
    d.add_users(&users, TEST_PASSWORD);
    for (i, u) in users.iter().enumerate() {
        for f in ["INBOX", "A", "B", "C", "D", "E"] {
            d.load(
                u,
                f,
                &messages(
                    i * 1000 + f.len() * 100 + f.as_bytes()[0] as usize,
                    40,
                    &format!("{u} {f}"),
                ),
            );
        }
    }
    let proxy = CountProxy::start(d.imaps);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    let url = |u: &str| format!("imaps://{u}@127.0.0.1:{}", proxy.port);
    // Two jobs, each wanting 4 connections for each of its 2 accounts, both at
    // once; one allows 3 connections to the server and the other 2: 2 hold.
    for (job, limit, pair) in [("first", 3, ["u1", "u2"]), ("second", 2, ["u3", "u4"])] {
        let mut text = format!("[schedule]\nevery = \"1h\"\n\n[limits]\nconnections_per_host = {limit}\n\n");
        for u in pair {
            text.push_str(&account(&d, u, &url(u), "MV_TEST_PW", "connections = 4"));
        }
        write_job(&jobs, job, &text);
    }
    let mut svc = Service::start(&archive, &jobs, &[]);
    wait_until(Duration::from_secs(60), "all four accounts pulled", || {
        users.iter().all(|u| {
            let job = if *u == "u1" || *u == "u2" { "first" } else { "second" };
            account_status(&archive, job, u).is_some_and(|s| s["last_run"]["result"] == "ok")
        })
    });
    let (code, _) = svc.terminate();
    assert_eq!(code, Some(0), "{}", svc.log());
    let peak = proxy.peak.load(std::sync::atomic::Ordering::SeqCst);
    let total = proxy.total.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("connections: {total} opened, at most {peak} at once");
    assert!(peak <= 2, "{peak} connections at once; service log:\n{}", svc.log());
    assert!(total >= 4, "{total}");
    assert_eq!(common::stat_u64(&archive, "messages"), 4 * 6 * 40);

    // Control: without the limit the same accounts use more connections at once.
    let proxy2 = CountProxy::start(d.imaps);
    let archive2 = tmp.path().join("archive2");
    let mut text = "[limits]\nconnections_per_host = 16\n\n".to_string();
    for u in users {
        text.push_str(&account(
            &d,
            u,
            &format!("imaps://{u}@127.0.0.1:{}", proxy2.port),
            "MV_TEST_PW",
            "connections = 4",
        ));
    }
    let job = write_job(tmp.path(), "unlimited", &text);
    let out = mailvault(&archive2, &["run", job.to_str().unwrap(), "--once"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let peak2 = proxy2.peak.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("without the limit: at most {peak2} at once");
    assert!(peak2 > 2, "the control run did use more connections: {peak2}");
}

/// A job's replay target (a migration kept up to date): every run pulls the source
/// and appends to the target what it does not have yet, folders mapped.
#[test]
fn a_job_with_a_replay_target_keeps_the_target_up_to_date() {
    let d = Dovecot::start();
    d.add_users(&["ann", "dan"], TEST_PASSWORD);
    d.load("ann", "INBOX", &messages(0, 4, "to move"));
    d.load("ann", "Work", &messages(10, 3, "to move work"));
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let replay = format!(
        "\n  [accounts.replay]\n  url = \"{}\"\n  password = {{ env = \"MV_TEST_PW\" }}\n  tls_ca = \"{}\"\n  map = {{ \"Work\" = \"Archive/Work\" }}\n",
        imap_url(&d, "dan"),
        d.ca_pem().display()
    );
    let job = write_job(
        tmp.path(),
        "move",
        &account(&d, "ann", &imap_url(&d, "ann"), "MV_TEST_PW", &replay),
    );
    let count = |folder: &str| {
        d.doveadm(&["mailbox", "status", "-u", "dan", "messages", folder])
            .trim()
            .to_string()
    };
    let run_once = || run_once_json(&archive, &job)[0].clone();
    let first = run_once();
    assert_eq!(first["replay"]["total"]["appended"], 7, "{first}");
    assert_eq!(count("INBOX"), "INBOX messages=4");
    assert_eq!(count("Archive/Work"), "Archive/Work messages=3");
    // Later: only the new message moves; nothing is appended twice.
    d.save("ann", "INBOX", &message(99, "arrived later"));
    let second = run_once();
    assert_eq!(second["new_messages"], 1, "{second}");
    assert_eq!(second["replay"]["total"]["appended"], 1, "{second}");
    assert_eq!(second["replay"]["total"]["already_present"], 7, "{second}");
    assert_eq!(count("INBOX"), "INBOX messages=5");
    assert_eq!(count("Archive/Work"), "Archive/Work messages=3");
    // The service's replays are reads like any other: in the access log.
    let audit = common::json_of(common::cmd(&archive, &["audit", "--json"]), "audit");
    let replays: Vec<&serde_json::Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "replay")
        .collect();
    assert_eq!(replays.len(), 2, "{audit}");
    assert!(replays[0]["query"].as_str().unwrap().starts_with("job move"), "{audit}");
    assert_eq!(replays[1]["count"], 8, "{audit}");
}

/// `serve` compacts an archive once its accounts have been quiet for the set time
/// and enough packs of new mail have gathered; everything still reads.
#[test]
fn serve_compacts_the_archive_when_its_accounts_are_idle() {
    let d = Dovecot::start();
    d.add_users(&["ann"], TEST_PASSWORD);
    d.load("ann", "INBOX", &messages(0, 3, "before the service"));
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    // Sixteen imports, sixteen packs of new mail.
    for round in 0..16 {
        let dir = tmp.path().join(format!("in{round}"));
        std::fs::create_dir(&dir).unwrap();
        for (i, (raw, _, _)) in messages(round * 10, 10, "imported").into_iter().enumerate() {
            std::fs::write(dir.join(format!("{i}.eml")), raw).unwrap();
        }
        ok(&archive, &["-q", "import", "--no-index", dir.to_str().unwrap()]);
    }
    let packs = |a: &Path| common::stats(a)["packs"].as_u64().unwrap();
    assert_eq!(packs(&archive), 16);
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    write_job(
        &jobs,
        "quiet",
        &format!(
            "[schedule]\nevery = \"1h\"\n\n{}",
            account(&d, "ann", &imap_url(&d, "ann"), "MV_TEST_PW", "")
        ),
    );
    let mut svc = Service::start_with_env(&archive, &jobs, &[], &[("MAILVAULT_COMPACT_WHEN_IDLE_SECS", "1")]);
    wait_until(Duration::from_secs(60), "compacted while idle", || {
        svc.log().contains("compacted")
    });
    // The first run's pack and the sixteen became one.
    assert_eq!(packs(&archive), 1, "{}", svc.log());
    let (code, _) = svc.terminate();
    assert_eq!(code, Some(0), "{}", svc.log());
    let verify = ok(&archive, &["verify"]);
    assert!(verify.contains("163 messages") && verify.contains("clean"), "{verify}");
}

#[test]
fn serve_with_web_shows_what_it_pulls_and_places_holds_through_its_own_archive() {
    let d = Dovecot::start();
    d.add_users(&["ann"], TEST_PASSWORD);
    d.load("ann", "INBOX", &messages(0, 3, "pulled by the service"));
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    ok(&archive, &["init"]);
    let out = mailvault(
        &archive,
        &["user", "add", "root", "--role", "admin", "--password-env", "MV_TEST_PW"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    write_job(
        &jobs,
        "pulled",
        &format!(
            "[schedule]\nevery = \"1h\"\n\n{}",
            account(&d, "ann", &imap_url(&d, "ann"), "MV_TEST_PW", "")
        ),
    );
    let mut svc = Service::start(&archive, &jobs, &["--web", "127.0.0.1:0"]);
    let mut base = String::new();
    wait_until(Duration::from_secs(30), "the web server and the first run", || {
        if let Some(rest) = svc.log().split("listening on ").nth(1) {
            base = rest.split('/').take(3).collect::<Vec<_>>().join("/");
        }
        !base.is_empty() && account_status(&archive, "pulled", "ann").is_some_and(|s| s["last_run"]["result"] == "ok")
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .cookie_store(true)
        .build()
        .unwrap();
    let login = c.get(format!("{base}/login")).send().unwrap().text().unwrap();
    let csrf = common::web::hidden_field(&login, "csrf");
    let r = c
        .post(format!("{base}/login"))
        .form(&[("name", "root"), ("password", TEST_PASSWORD), ("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // The pulled messages are searchable on the page (the index the service built).
    let mut page = String::new();
    wait_until(Duration::from_secs(20), "the pulled mail on the search page", || {
        page = c
            .get(format!("{base}/search?q=subject%3Apulled"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        page.contains("3 messages")
    });
    // A hold placed on the page goes through the service's own archive (never busy).
    let csrf = common::web::hidden_field(&page, "csrf");
    let r = c
        .post(format!("{base}/holds"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "case-1"),
            ("query", "subject:pulled"),
            ("reason", "test"),
        ])
        .send()
        .unwrap();
    assert!(
        r.status().is_success(),
        "{}: {}",
        r.status(),
        r.text().unwrap_or_default()
    );
    let holds = ok(&archive, &["hold", "list", "--json"]);
    assert!(holds.contains("\"case-1\"") && holds.contains("web:root"), "{holds}");
    let (code, _) = svc.terminate();
    assert_eq!(code, Some(0), "{}", svc.log());
}
