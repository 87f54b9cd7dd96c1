//! Several `serve --worker-id` processes sharing one archive — its metadata in a
//! real PostgreSQL 15, its packs in a real three-node Garage, the main set dealt
//! out to the accounts of a real Dovecot (60; 30 in the kill test): every
//! message archived exactly once,
//! every account's placements equal to its server's, no account leased to two
//! workers at once (from the database's lease history), the per-server
//! connection limit held across the workers (counted at a proxy), and a worker
//! killed with SIGKILL mid-pull, round after round, its accounts taken over
//! within the lease time and the killed worker rejoining when restarted.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::dovecot::{archive_view, assert_same, deal_main_set, user, Dealt, Dovecot, TEST_PASSWORD};
use common::fault_proxy::CountProxy;
use common::garage::{self, Garage};
use common::postgres::Postgres;
use mailvault::metastore::leases::{overlapping, Holding, Leases};

/// Accounts of the main test; the kill test deals the main set to half as many
/// (every one pulled at once, slowly, on two of the three workers).
const ACCOUNTS: usize = 60;
const KILL_TEST_ACCOUNTS: usize = 30;

/// One archive shared by workers: its store, its job directory, its servers.
struct Shared {
    /// How many accounts the job has (`w00`, `w01`, …).
    accounts: usize,
    tmp: tempfile::TempDir,
    archive: PathBuf,
    jobs: PathBuf,
    pg: &'static Postgres,
    db: String,
    _garage: Garage,
}

impl Shared {
    /// A PostgreSQL database and a three-node Garage; the archive made once with
    /// `init --meta … --blobs s3://…`.
    fn new(accounts: usize) -> Shared {
        let pg = Postgres::shared();
        // Archives opened in this process (the checks) find the password as a
        // mailvault process does.
        std::env::set_var("PGPASSWORD", common::postgres::PASSWORD);
        let garage = Garage::cluster();
        garage::use_test_credentials();
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("archive");
        let jobs = tmp.path().join("jobs");
        std::fs::create_dir(&jobs).unwrap();
        let db = pg.database();
        let url = pg.url(&db);
        let mut args = garage.init_args("workers", &garage.endpoint());
        args.extend(["--meta".to_string(), url.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::cmd(&archive, &args).output().unwrap();
        assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
        Shared {
            accounts,
            tmp,
            archive,
            jobs,
            pg,
            db,
            _garage: garage,
        }
    }

    /// Writes the job of every account: `limits` and each account's `extra` lines.
    fn job(&self, d: &Dovecot, port: u16, limits: &str, extra: &str) {
        let mut text = format!("[schedule]\nevery = \"1h\"\n\n[limits]\n{limits}\n\n");
        for i in 0..self.accounts {
            let u = user(i);
            text.push_str(&format!(
                "[[accounts]]\nname = \"{u}\"\nurl = \"imaps://{u}@127.0.0.1:{port}\"\npassword = {{ env = \"MV_TEST_PW\" }}\ntls_ca = \"{}\"\ntimeout = \"30s\"\n{extra}\n",
                d.ca_pem().display()
            ));
        }
        std::fs::write(self.jobs.join("mail.toml"), text).unwrap();
    }

    /// Starts worker `id` (its log in the temp dir, appended to across restarts).
    fn worker(&self, id: &str, lease_ttl: u64) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .unwrap();
        let ttl = lease_ttl.to_string();
        let mut c = common::cmd(
            &self.archive,
            &[
                "serve",
                "--jobs",
                self.jobs.to_str().unwrap(),
                "--worker-id",
                id,
                "--lease-ttl",
                &ttl,
            ],
        );
        c.env("MV_TEST_PW", TEST_PASSWORD)
            .env("AWS_ACCESS_KEY_ID", garage::KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", garage::SECRET)
            .envs(self.pg.env())
            .stdout(Stdio::null())
            .stderr(log);
        c.spawn().unwrap()
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.tmp.path().join(format!("{id}.log"))
    }

    /// The status and the end of every worker's log, for a failure's message.
    fn logs(&self) -> String {
        let status = common::run(&self.archive, &["status"]);
        let mut out = format!("--- status\n{}", String::from_utf8_lossy(&status.stdout));
        for i in 1..=3 {
            let id = format!("worker{i}");
            let text = String::from_utf8_lossy(&std::fs::read(self.log_path(&id)).unwrap_or_default()).into_owned();
            let tail: Vec<&str> = text.lines().rev().filter(|l| !l.contains(" INFO ")).take(30).collect();
            out.push_str(&format!(
                "--- {id} (last warnings)\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        out
    }

    /// The lease store, read as `status` reads it.
    fn leases(&self) -> Leases {
        Leases::observe(&self.pg.url_with_password(&self.db), true).unwrap()
    }

    /// The database's clock, in microseconds since the epoch.
    fn db_now(&self) -> i64 {
        self.pg
            .query(&self.db, "SELECT (extract(epoch FROM now()) * 1000000)::int8::text")[0]
            .parse()
            .unwrap()
    }

    /// Accounts whose last run (in any worker's status) ended well.
    fn accounts_done(&self) -> usize {
        common::accounts_ok(&self.archive)
    }

    /// Every account's placements equal its server's; every message once; the
    /// change log, written by every worker, proves it all.
    fn check_archive(&self, d: &Dovecot, dealt: &Dealt) {
        for i in 0..self.accounts {
            let u = user(i);
            assert_same(&d.server_view(&u, TEST_PASSWORD), &archive_view(&self.archive, &u));
        }
        assert_eq!(
            common::stat_u64(&self.archive, "messages"),
            dealt.distinct,
            "each message once"
        );
        assert_eq!(
            common::stat_u64(&self.archive, "placements"),
            dealt.messages,
            "each placement once"
        );
        let out = common::run(&self.archive, &["verify", "--chain"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.ends_with("clean\n"),
            "verify --chain: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// No account held by two workers at once; every account held at some point.
    fn check_history(&self) -> Vec<Holding> {
        let history = self.leases().history().unwrap();
        let both = overlapping(&history);
        assert!(
            both.is_empty(),
            "{} overlapping holdings, e.g. {:?}",
            both.len(),
            both.first()
        );
        let held: BTreeSet<&str> = history.iter().map(|h| h.account.as_str()).collect();
        assert_eq!(held.len(), self.accounts, "every account was leased");
        history
    }
}

/// The two tests with three workers each run one at a time: on a small machine
/// together they would measure each other's load, not the lease times.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits up to `limit` for `f`, polling; panics naming `what` (with the logs).
fn wait_for(limit: Duration, what: &str, s: &Shared, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}\n{}", s.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every worker still runs: one that stopped on its own (a panic, an error)
/// fails the test with its log.
fn assert_alive(workers: &mut [Child], s: &Shared) {
    for c in workers.iter_mut() {
        if let Some(st) = c.try_wait().unwrap() {
            panic!("a worker stopped on its own with {st}\n{}", s.logs());
        }
    }
}

/// Stops workers with SIGTERM; each must stop, and well, within 30 s.
fn terminate(children: &mut [Child], s: &Shared) {
    for c in children.iter() {
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    }
    for c in children.iter_mut() {
        let t = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                assert!(st.success(), "a worker stopped with {st}\n{}", s.logs());
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "a worker did not stop on SIGTERM\n{}",
                s.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn three_workers_archive_sixty_accounts_once_within_the_connection_limit() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let d = Dovecot::start();
    let dealt = deal_main_set(&d, ACCOUNTS);
    let proxy = CountProxy::start(d.imaps);
    let s = Shared::new(ACCOUNTS);
    // 3 workers × 4 accounts × 2 connections would be 24 at once; 6 are allowed.
    s.job(
        &d,
        proxy.port,
        "connections_per_host = 6\naccounts_in_parallel = 4",
        "connections = 2",
    );
    let t = Instant::now();
    let mut workers: Vec<Child> = (1..=3).map(|i| s.worker(&format!("worker{i}"), 10)).collect();
    wait_for(Duration::from_secs(600), "every account pulled", &s, || {
        assert_alive(&mut workers, &s);
        s.accounts_done() == s.accounts
    });
    let took = t.elapsed();
    let status = String::from_utf8_lossy(&common::run(&s.archive, &["status"]).stdout).to_string();
    terminate(&mut workers, &s);
    let peak = proxy.peak.load(std::sync::atomic::Ordering::SeqCst);
    let total = proxy.total.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "{} messages ({} distinct) in {took:.1?} by 3 workers; connections: {total} opened, at most {peak} at once",
        dealt.messages, dealt.distinct
    );
    assert!(
        peak <= 6,
        "{peak} connections at once, over the limit of 6\n{}",
        s.logs()
    );
    assert!(peak >= 2, "the workers did connect in parallel ({peak})");
    s.check_archive(&d, &dealt);
    let history = s.check_history();
    let by: BTreeSet<&str> = history.iter().map(|h| h.worker.as_str()).collect();
    assert_eq!(by.len(), 3, "every worker ran accounts: {by:?}");
    for w in ["worker1", "worker2", "worker3"] {
        assert!(status.contains(w), "status shows worker {w}:\n{status}");
    }
    assert!(status.contains("w59"), "status shows the leases:\n{status}");
}

/// Rounds of the kill test (`MAILVAULT_WORKER_KILL_ROUNDS`, default 20).
fn kill_rounds() -> usize {
    std::env::var("MAILVAULT_WORKER_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[test]
fn a_worker_killed_mid_pull_loses_nothing_and_its_accounts_are_taken_over() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let d = Dovecot::start();
    let dealt = deal_main_set(&d, KILL_TEST_ACCOUNTS);
    let s = Shared::new(KILL_TEST_ACCOUNTS);
    // Slow pulls (4 messages a second per account: 2 minutes each), every
    // account at once: two workers hold 15 each, the third none, so a victim's
    // accounts are free to be taken over, and every kill lands mid-pull.
    s.job(
        &d,
        d.imaps,
        "connections_per_host = 100\naccounts_in_parallel = 15\nmessages_per_second = 4",
        "connections = 1",
    );
    let ttl = 3u64;
    let ids: Vec<String> = (1..=3).map(|i| format!("worker{i}")).collect();
    let mut workers: Vec<Child> = ids.iter().map(|id| s.worker(id, ttl)).collect();
    let leases = s.leases();
    let mut worst = 0i64;
    // (worker, when it was restarted): each must take leases again later.
    let mut restarts: Vec<(usize, i64)> = Vec::new();
    for round in 0..kill_rounds() {
        // The victim: the next worker, in turn, that holds leases (one of the
        // three may hold none while the other two hold every account).
        let mut held = Vec::new();
        let mut v = round % 3;
        wait_for(
            Duration::from_secs(60),
            &format!("round {round}: a worker holds leases"),
            &s,
            || {
                assert_alive(&mut workers, &s);
                let states = leases.states().unwrap();
                for k in 0..3 {
                    let c = (round + k) % 3;
                    held = states
                        .iter()
                        .filter(|l| {
                            l.worker.as_deref() == Some(ids[c].as_str()) && l.expires_in_us.is_some_and(|e| e > 0)
                        })
                        .cloned()
                        .collect();
                    if !held.is_empty() {
                        v = c;
                        return true;
                    }
                }
                false
            },
        );
        let id = &ids[v];
        workers[v].kill().unwrap();
        workers[v].wait().unwrap();
        let killed_at = s.db_now();
        workers[v] = s.worker(id, ttl);
        restarts.push((v, killed_at));
        // Every account it held is taken again (by anyone: the restarted worker
        // is a new holder) within the lease time.
        wait_for(
            Duration::from_secs(ttl + 30),
            &format!("round {round}: {id}'s accounts taken over"),
            &s,
            || {
                assert_alive(&mut workers, &s);
                let now = leases.states().unwrap();
                held.iter().all(|h| {
                    now.iter()
                        .any(|n| n.account == h.account && n.generation > h.generation)
                })
            },
        );
        let history = leases.history().unwrap();
        for h in &held {
            let next = history
                .iter()
                .find(|x| x.account == h.account && x.generation == h.generation + 1)
                .expect("the takeover's holding");
            let delay = next.taken - killed_at;
            worst = worst.max(delay);
            assert!(
                delay <= (ttl as i64 + 3) * 1_000_000,
                "round {round}: {} taken over {:.1} s after the kill (lease time {ttl} s)",
                h.account,
                delay as f64 / 1e6
            );
        }
        eprintln!(
            "round {round}: killed {id} holding {} account(s); taken over within {:.1} s",
            held.len(),
            worst as f64 / 1e6
        );
    }
    // Every restarted worker rejoins: it takes leases after its restart — the
    // next victim's, as a rule. The last one's: a holder stops gracefully (its
    // leases go back at once, due now), and the restarted workers take them.
    // The holder starts again only once they have: started at once, it could
    // take its own leases back before the others' next look (every second).
    let last = restarts.last().map(|r| r.0);
    let states = leases.states().unwrap();
    let stopped = (0..3).find(|&c| {
        Some(c) != last
            && states
                .iter()
                .any(|l| l.worker.as_deref() == Some(ids[c].as_str()) && l.expires_in_us.is_some_and(|e| e > 0))
    });
    let mut running: Vec<&mut Child> = Vec::new();
    for (c, w) in workers.iter_mut().enumerate() {
        if Some(c) == stopped {
            terminate(std::slice::from_mut(w), &s);
        } else {
            running.push(w);
        }
    }
    wait_for(Duration::from_secs(60), "every restarted worker rejoined", &s, || {
        running
            .iter_mut()
            .for_each(|w| assert_alive(std::slice::from_mut(*w), &s));
        let history = leases.history().unwrap();
        restarts
            .iter()
            .all(|(w, at)| history.iter().any(|h| h.worker == ids[*w] && h.taken > *at))
    });
    if let Some(c) = stopped {
        workers[c] = s.worker(&ids[c], ttl);
    }
    wait_for(
        Duration::from_secs(900),
        "every account pulled after the kills",
        &s,
        || {
            assert_alive(&mut workers, &s);
            s.accounts_done() == s.accounts
        },
    );
    terminate(&mut workers, &s);
    s.check_archive(&d, &dealt);
    s.check_history();
    eprintln!(
        "{} kill rounds; the slowest takeover {:.1} s after a kill",
        kill_rounds(),
        worst as f64 / 1e6
    );
}

#[test]
fn a_worker_refuses_an_archive_with_embedded_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    common::ok(&archive, &["init"]);
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::write(
        jobs.join("j.toml"),
        "[[accounts]]\nname = \"a\"\nurl = \"imaps://a@127.0.0.1:1\"\npassword = { env = \"MV_TEST_PW\" }\n",
    )
    .unwrap();
    let out = common::cmd(
        &archive,
        &["serve", "--jobs", jobs.to_str().unwrap(), "--worker-id", "w1"],
    )
    .env("MV_TEST_PW", "x")
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("PostgreSQL") && err.contains("--meta"), "{err}");
    let bad = common::cmd(
        &archive,
        &["serve", "--jobs", jobs.to_str().unwrap(), "--worker-id", "w 1"],
    )
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("worker id"), "{:?}", bad);
}
