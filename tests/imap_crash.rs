//! Issue 4, item 4: kill -9 of the real binary at random moments during a pull, then
//! a rerun: every state a kill leaves opens and verifies clean, and the rerun ends
//! with archive = server content, no duplicates.
//!
//! Rounds: `$MAILVAULT_CRASH_ROUNDS` (default 20). Mail: the Enron maildir, or with
//! `MAILVAULT_PULL_CORPUS=main` the whole main set (enron + spamassassin +
//! usrp-users). `scripts/crash-pull.sh N` runs N rounds on the main set.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::dovecot::{archive_view, assert_same, load_enron, pull_command, Dovecot, TEST_PASSWORD};
use common::Rng;
use mailvault::archive::Archive;

#[test]
fn kill_during_pull_then_rerun_is_exact() {
    let rounds = common::crash_rounds();
    let d = Dovecot::start();
    d.add_user("mail", TEST_PASSWORD);
    let mut loaded = load_enron(&d, "mail");
    if std::env::var("MAILVAULT_PULL_CORPUS").as_deref() == Ok("main") {
        for folder in ["spamassassin-public-corpus", "usrp-users-list-2019-2021"] {
            let root = common::shared_corpus(folder).expect("the main corpus");
            loaded += d.load_tree("mail", &root);
        }
    }
    let server = d.server_view("mail", TEST_PASSWORD);
    assert_eq!(server.len(), loaded);
    let distinct: HashSet<_> = server.values().map(|m| m.hash).collect();
    let url = format!("imaps://mail@127.0.0.1:{}", d.imaps);
    let args = ["-q", "--account", "acct"];

    // How long a whole pull takes (fastest of two), to spread the kills over it.
    let tmp = tempfile::tempdir().unwrap();
    let full = (0..2)
        .map(|i| {
            let t = Instant::now();
            let out = pull_command(&tmp.path().join(format!("probe{i}")), &url, &d, &args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            t.elapsed()
        })
        .min()
        .unwrap();
    eprintln!("full pull: {full:?}, {} messages on the server", server.len());

    let mut rng = Rng::from_env("pull-crash");
    let mut killed_mid_way = 0;
    for round in 0..rounds {
        let archive = tmp.path().join(format!("r{round}"));
        let kills = 1 + rng.below(3);
        for _ in 0..kills {
            let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 11 / 10 + 1));
            if common::kill_after(pull_command(&archive, &url, &d, &args), delay, &archive, round) {
                killed_mid_way += 1;
            }
        }
        let out = pull_command(&archive, &url, &d, &args).output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: rerun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_same(&server, &archive_view(&archive, "acct"));
        let a = Archive::open(&archive).unwrap();
        assert!(a.verify(|_| {}).unwrap().is_clean(), "round {round}");
        assert_eq!(a.counters().messages, distinct.len() as u64, "round {round}: messages");
        assert_eq!(
            a.counters().placements,
            server.len() as u64,
            "round {round}: duplicate or missing placements"
        );
        drop(a);
        std::fs::remove_dir_all(&archive).unwrap();
    }
    eprintln!("{rounds} rounds, {killed_mid_way} kills landed while the pull was running");
    assert!(
        killed_mid_way >= rounds / 2,
        "too few kills hit a running pull ({killed_mid_way})"
    );
}
