//! Workers sharing one archive (metadata in PostgreSQL): the main set (16,276
//! messages) dealt out to 60 accounts of a private Dovecot on the same machine,
//! pulled by 1, 2 and 3 `serve --worker-id` processes (packs local, in the
//! shared archive directory; 4 accounts at a time per worker, 16 connections to
//! the server in all); for each, msg/s and, from `pg_stat_statements`, the
//! batches committed and the server's time per batch (its writes and the
//! commit) and per turn (the writers' lock and the reads of the heads). The
//! reference: the same job run once by one process with embedded metadata
//! (`run --once`), measured in the same run. A warm-up pull first, so that every
//! measured pull finds Dovecot's indexes built.
//!
//! `cargo bench --bench workers`. Needs the corpus, Dovecot and PostgreSQL 15.

#[path = "../tests/common/mod.rs"]
mod tc;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tc::dovecot::{deal_main_set, user, Dovecot, TEST_PASSWORD};
use tc::postgres::Postgres;

const ACCOUNTS: usize = 60;

fn job(d: &Dovecot) -> String {
    let mut t =
        "[schedule]\nevery = \"1h\"\n\n[limits]\nconnections_per_host = 16\naccounts_in_parallel = 4\n\n".to_string();
    for i in 0..ACCOUNTS {
        let u = user(i);
        t.push_str(&format!(
            "[[accounts]]\nname = \"{u}\"\nurl = \"imaps://{u}@127.0.0.1:{}\"\npassword = {{ env = \"MV_TEST_PW\" }}\ntls_ca = \"{}\"\nconnections = 2\n\n",
            d.imaps,
            d.ca_pem().display()
        ));
    }
    t
}

fn mailvault(archive: &Path, args: &[&str]) -> Command {
    let mut c = tc::cmd(archive, args);
    c.env("MV_TEST_PW", TEST_PASSWORD)
        .env("PGPASSWORD", tc::postgres::PASSWORD);
    c
}

fn ok(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One measured pull by `n` workers into a new archive; prints its line.
fn workers(pg: &Postgres, jobs: &Path, tmp: &Path, n: usize, messages: u64, reference: f64) {
    let db = pg.database();
    pg.count_statements(&db);
    let archive = tmp.join(format!("workers{n}"));
    ok(mailvault(&archive, &["init", "--meta", &pg.url(&db)]), "init");
    pg.reset_statements(&db);
    let t = Instant::now();
    let mut children: Vec<Child> = (1..=n)
        .map(|i| {
            let id = format!("w{i}");
            mailvault(
                &archive,
                &["serve", "--jobs", jobs.to_str().unwrap(), "--worker-id", &id],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    while tc::accounts_ok(&archive) < ACCOUNTS {
        assert!(t.elapsed() < Duration::from_secs(1800), "{n} workers did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    let secs = t.elapsed().as_secs_f64();
    for c in &children {
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    }
    for c in &mut children {
        c.wait().unwrap();
    }
    let stats = ok(mailvault(&archive, &["stats", "--json"]), "stats");
    let stored = serde_json::from_str::<serde_json::Value>(&stats).unwrap()["messages"]
        .as_u64()
        .unwrap();
    assert_eq!(stored, messages, "{n} workers stored every message once");
    let commits = pg.statements_sum(&db, "calls", "query = 'COMMIT'");
    let write_ms = pg.statements_sum(
        &db,
        "total_exec_time",
        "query LIKE 'INSERT INTO mailvault.%' OR query LIKE 'DELETE FROM mailvault.%' OR query = 'COMMIT'",
    );
    let turns = pg.statements_sum(&db, "calls", "query LIKE '%pg_advisory_lock(%'");
    let all_ms = pg.statements_sum(&db, "total_exec_time", "true");
    let top = pg.query(
        &db,
        "SELECT format('%s calls, %s ms: %s', s.calls, round(s.total_exec_time::numeric), \
         left(regexp_replace(s.query, '\\s+', ' ', 'g'), 70)) FROM pg_stat_statements s \
         JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() \
         ORDER BY s.total_exec_time DESC LIMIT 4",
    );
    println!(
        "  {n} worker(s): {secs:.1} s, {:.0} msg/s ({:.2}x one process); {commits:.0} commits, server time {:.2} ms per batch \
         (writes + commit), {turns:.0} turns, all statements {:.1} s",
        messages as f64 / secs,
        messages as f64 / secs / reference,
        write_ms / commits.max(1.0),
        all_ms / 1000.0
    );
    for t in top {
        println!("      {t}");
    }
}

fn main() {
    if tc::corpus_root().is_none() {
        eprintln!("workers: no corpus (set MAILVAULT_CORPUS); skipped");
        return;
    }
    std::env::set_var("PGPASSWORD", tc::postgres::PASSWORD);
    let pg = Postgres::start_counting();
    let d = Dovecot::start();
    let dealt = deal_main_set(&d, ACCOUNTS);
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::write(jobs.join("mail.toml"), job(&d)).unwrap();
    let job_file = jobs.join("mail.toml");

    // Warm-up (Dovecot builds its indexes), then the reference: one process.
    ok(
        mailvault(&tmp.path().join("warm"), &["run", job_file.to_str().unwrap(), "--once"]),
        "warm-up",
    );
    let t = Instant::now();
    ok(
        mailvault(&tmp.path().join("one"), &["run", job_file.to_str().unwrap(), "--once"]),
        "one process",
    );
    let one = t.elapsed().as_secs_f64();
    let reference = dealt.messages as f64 / one;
    println!(
        "workers: the main set ({} messages, {} distinct) dealt to {ACCOUNTS} accounts, Dovecot, PostgreSQL 15 and the workers on this machine",
        dealt.messages, dealt.distinct
    );
    println!("  one process, embedded metadata (run --once): {one:.1} s, {reference:.0} msg/s");
    for n in 1..=3 {
        workers(&pg, &jobs, tmp.path(), n, dealt.distinct, reference);
    }
}
