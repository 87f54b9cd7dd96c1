//! kill -9 of the real binary at random moments during an import, then a rerun: the
//! archive opens, verifies clean, and holds each distinct source message once
//! (issue 2, item 4). Rounds: `$MAILVAULT_CRASH_ROUNDS` (default 20); replay a run
//! with the printed `MAILVAULT_TEST_SEED`.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use mailvault::archive::Archive;
use mailvault::source::{read_paths, Event, LocalOptions};

#[test]
fn kill_during_import_then_rerun_is_exact() {
    let rounds = crash_rounds();
    let sources: Vec<PathBuf> = vec![demo_sample(), edge_cases().to_path_buf()];
    let src_args: Vec<String> = sources.iter().map(|p| p.to_string_lossy().into_owned()).collect();

    // What the archive must hold in the end.
    let (mut ids, mut placements) = (HashSet::new(), 0u64);
    read_paths(&sources, &LocalOptions::default(), &mut |ev| {
        if let Event::Message(m) = ev {
            ids.insert(m.id);
            placements += m.placements.len() as u64;
        }
        Ok(())
    })
    .unwrap();

    // How long a full import takes, to spread the kills over it: the fastest of three
    // fresh imports (a first run on a fresh machine is slower than later ones).
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["import", "-q"];
    args.extend(src_args.iter().map(String::as_str));
    let full = (0..3)
        .map(|i| {
            let probe = tmp.path().join(format!("probe{i}"));
            let t = Instant::now();
            ok(&probe, &args);
            t.elapsed()
        })
        .min()
        .unwrap();
    eprintln!(
        "full import: {full:?}, {} distinct messages, {placements} placements",
        ids.len()
    );

    let mut rng = Rng::from_env("crash");
    let mut killed_mid_way = 0;
    for round in 0..rounds {
        let archive = tmp.path().join(format!("r{round}"));
        // Some rounds start from a partly filled archive (an earlier killed run).
        let kills = 1 + rng.below(3);
        for _ in 0..kills {
            let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 11 / 10 + 1));
            if kill_after(cmd(&archive, &args), delay, &archive, round) {
                killed_mid_way += 1;
            }
        }
        ok(&archive, &args);
        let a = Archive::open(&archive).unwrap();
        let r = a.verify(|_| {}).unwrap();
        assert!(r.is_clean(), "round {round}: {:?}", r.problems);
        let got: HashSet<_> = a.message_ids().unwrap().into_iter().collect();
        assert_eq!(got.len(), ids.len(), "round {round}: message count");
        assert!(got == ids, "round {round}: message ids differ");
        assert_eq!(
            a.counters().placements,
            placements,
            "round {round}: duplicate or missing placements"
        );
        assert_eq!(a.placements(&Default::default()).unwrap().len() as u64, placements);
        drop(a);
        std::fs::remove_dir_all(&archive).unwrap();
    }
    eprintln!("{rounds} rounds, {killed_mid_way} kills landed while the import was running");
    assert!(
        killed_mid_way >= rounds / 2,
        "too few kills hit a running import ({killed_mid_way})"
    );
}

/// kill -9 at random moments of `compact` over an archive of many small packs: after
/// every kill the archive verifies clean with every message; the next compaction
/// finishes the job and removes what the kill left (orphan packs).
#[test]
fn kill_during_compaction_loses_nothing_and_the_next_one_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    // One import per folder of the sample and the edge corpus: many packs.
    let mut folders: Vec<PathBuf> = Vec::new();
    for root in [demo_sample(), edge_cases().to_path_buf()] {
        for e in std::fs::read_dir(&root).unwrap().filter_map(Result::ok) {
            if e.path().is_dir() {
                folders.push(e.path());
            }
        }
    }
    folders.sort();
    // The probe is built the same way, not copied: a copy of an archive whose packs
    // are in S3 shares them, and its compaction would delete them.
    let probe = tmp.path().join("probe");
    for archive in [&a, &probe] {
        for f in &folders {
            ok(archive, &["-q", "import", "--no-index", "--force", f.to_str().unwrap()]);
        }
    }
    let ids: HashSet<_> = Archive::open_read_only(&a)
        .unwrap()
        .message_ids()
        .unwrap()
        .into_iter()
        .collect();
    let t = Instant::now();
    ok(&probe, &["-q", "compact"]);
    let full = t.elapsed();
    let mut rng = Rng::from_env("crash-compact");
    let mut killed_mid_way = 0;
    for round in 0..crash_rounds() / 2 {
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
        // kill_after verifies the archive after each kill.
        killed_mid_way += u64::from(kill_after(cmd(&a, &["-q", "compact"]), delay, &a, round));
    }
    let report = common::json_of(cmd(&a, &["compact", "--json"]), "the last compaction");
    let archive = Archive::open(&a).unwrap();
    let verified = archive.verify(|_| {}).unwrap();
    assert!(verified.is_clean(), "{:?}", verified.problems);
    assert_eq!(verified.unreferenced_packs, 0, "{report}");
    let got: HashSet<_> = archive.message_ids().unwrap().into_iter().collect();
    assert_eq!(got, ids);
    eprintln!(
        "{} folders; compaction {full:?}; {killed_mid_way} kills landed mid-way; last: {report}",
        folders.len()
    );
}
