//! Archives whose packs are in S3-compatible object storage, on a real Garage
//! started by the test (one node, or three with replication): import, pull, verify,
//! export byte-exact and compact; kill -9 during import and compaction; a proxy that
//! cuts connections and answers 503; a cluster node stopped during a pull.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::dovecot::{pull_command, sample_messages, Dovecot};
use common::fault_proxy::HttpFaultProxy;
use common::garage::{self, Garage};
use common::*;
use mailvault::archive::Archive;
use mailvault::blobstore::{BlobStore, PackName, S3Config, S3Store};
use mailvault::model::MessageId;

/// `mailvault --archive A ARGS` with the test key in its environment.
fn s3_cmd(archive: &Path, args: &[&str]) -> Command {
    let mut c = cmd(archive, args);
    c.env("AWS_ACCESS_KEY_ID", garage::KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", garage::SECRET);
    c
}

fn s3_ok(archive: &Path, args: &[&str]) -> String {
    stdout_of(s3_cmd(archive, args), &args.join(" "))
}

/// A new archive with its packs in `g`'s bucket under `prefix`, through `endpoint`.
fn s3_archive(g: &Garage, archive: &Path, prefix: &str, endpoint: &str) {
    let args = g.init_args(prefix, endpoint);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s3_ok(archive, &args);
    assert!(out.contains(&format!("s3://{}/{prefix}", garage::BUCKET)), "{out}");
}

fn verify_clean(archive: &Path, what: &str) -> serde_json::Value {
    let out = s3_cmd(archive, &["verify", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: verify --json: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        out.status.success() && report["problems"].as_array().unwrap().is_empty(),
        "{what}: {report}"
    );
    report
}

/// BLAKE3 of every file under `dir`.
fn file_hashes(dir: &Path) -> HashSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| MessageId::of(&std::fs::read(e.path()).unwrap()).to_hex())
        .collect()
}

#[test]
fn an_archive_in_garage_imports_verifies_compacts_and_exports_byte_exact() {
    let g = Garage::single();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    s3_archive(&g, &a, "one", &g.endpoint());
    s3_ok(
        &a,
        &["-q", "import", "--account", "demo", demo_sample().to_str().unwrap()],
    );
    s3_ok(
        &a,
        &[
            "-q",
            "import",
            "--account",
            "edge",
            "--force",
            edge_cases().to_str().unwrap(),
        ],
    );
    assert!(!a.join("packs").exists(), "no pack is kept locally");
    let report = verify_clean(&a, "after import");
    let messages = report["messages_checked"].as_u64().unwrap();
    assert!(messages > 1000, "{report}");

    let before: serde_json::Value = serde_json::from_str(&s3_ok(&a, &["stats", "--json"])).unwrap();
    let compacted: serde_json::Value = serde_json::from_str(&s3_ok(&a, &["compact", "--json"])).unwrap();
    assert!(compacted["packs_rewritten"].as_u64().unwrap() >= 2, "{compacted}");
    assert!(
        compacted["bytes_after"].as_u64() < compacted["bytes_before"].as_u64(),
        "{compacted}"
    );
    verify_clean(&a, "after compact");
    let after: serde_json::Value = serde_json::from_str(&s3_ok(&a, &["stats", "--json"])).unwrap();
    assert_eq!(after["messages"], before["messages"]);

    // Every message comes back byte for byte: the exported files are the ids.
    let out = tmp.path().join("out");
    s3_ok(&a, &["-q", "export", "--format", "eml", "--out", out.to_str().unwrap()]);
    let exported = file_hashes(&out);
    garage::use_test_credentials();
    let ids: HashSet<String> = Archive::open_read_only(&a)
        .unwrap()
        .message_ids()
        .unwrap()
        .iter()
        .map(|i| i.to_hex())
        .collect();
    assert_eq!(exported.len() as u64, messages);
    assert_eq!(exported, ids);
}

/// `n` new messages no other round has, as .eml files in `dir`.
fn fresh_messages(dir: &Path, round: u64, n: usize, rng: &mut Rng) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let words: Vec<String> = (0..200).map(|_| format!("w{}", rng.below(5000))).collect();
        let msg = format!(
            "From: sender{i}@example.org\r\nTo: r@example.org\r\nSubject: round {round} message {i}\r\n\
             Message-ID: <r{round}m{i}@example.org>\r\nDate: Mon, 2 Mar 2020 10:00:00 +0000\r\n\r\n{}\r\n",
            words.join(" ")
        );
        std::fs::write(dir.join(format!("{i}.eml")), msg).unwrap();
    }
}

/// Issue: kill -9 at random moments of imports and compactions into S3. After every
/// kill the archive verifies clean (every message readable, no referenced pack
/// missing); the killed import is then run to the end; the next compaction removes
/// the orphan packs kills left.
#[test]
fn kill_9_during_import_and_compaction_into_s3_loses_nothing() {
    let g = Garage::single();
    garage::use_test_credentials();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    s3_archive(&g, &a, "crash", &g.endpoint());
    let mut rng = Rng::from_env("MAILVAULT_S3_CRASH_SEED");
    let rounds = crash_rounds();
    let (mut killed, mut imported) = (0, 0u64);
    for round in 0..rounds {
        let delay = Duration::from_millis(5 + rng.below(200));
        if round % 3 == 2 {
            killed += u64::from(kill_after(s3_cmd(&a, &["-q", "compact"]), delay, &a, round));
        } else {
            let dir = tmp.path().join(format!("in{round}"));
            fresh_messages(&dir, round, 300, &mut rng);
            let import = [
                "-q",
                "import",
                "--no-index",
                "--account",
                "crash",
                dir.to_str().unwrap(),
            ];
            killed += u64::from(kill_after(s3_cmd(&a, &import), delay, &a, round));
            s3_ok(&a, &import);
            imported += 300;
        }
    }
    assert!(
        killed >= rounds / 4,
        "only {killed} of {rounds} rounds were killed mid-way"
    );
    let report = verify_clean(&a, "after the rounds");
    assert_eq!(report["messages_checked"].as_u64(), Some(imported));
    // What a kill between a pack's upload and its batch leaves (the window is too
    // narrow to hit reliably by timing): a pack in the bucket nothing references.
    let config = S3Config::from_url(
        &format!("s3://{}/crash", garage::BUCKET),
        Some(g.endpoint()),
        Some(garage::REGION.into()),
    )
    .unwrap();
    let orphan = b"MVPACK01 a pack whose batch never committed".to_vec();
    S3Store::new(&config)
        .unwrap()
        .put(&PackName::of(&orphan), orphan.clone())
        .unwrap();
    let report = verify_clean(&a, "with an orphan");
    assert!(report["unreferenced_packs"].as_u64().unwrap() >= 1, "{report}");
    let compacted: serde_json::Value = serde_json::from_str(&s3_ok(&a, &["compact", "--json"])).unwrap();
    assert!(compacted["orphans_removed"].as_u64().unwrap() >= 1, "{compacted}");
    let report = verify_clean(&a, "after the last compaction");
    assert_eq!(report["unreferenced_packs"], 0, "{compacted}");
    assert_eq!(report["messages_checked"].as_u64(), Some(imported));
    eprintln!("{rounds} rounds, {killed} killed mid-way; last compaction: {compacted}");
}

/// Import and pull through a proxy that answers 503 and cuts connections: both
/// retry and complete, and nothing is lost.
#[test]
fn import_and_pull_complete_through_503s_and_cut_connections() {
    let g = Garage::single();
    // Four faults during the import (the retry budget is ten per request), four
    // more during the pull.
    let proxy = HttpFaultProxy::start(g.s3_port(), 4, "MAILVAULT_S3_FAULT_SEED");
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    s3_archive(&g, &a, "faults", &format!("http://127.0.0.1:{}", proxy.port));
    // (Once, a cut connection's SIGPIPE ended the import with status 0 and
    // nothing stored: the count below is the check.)
    s3_ok(
        &a,
        &["-q", "import", "--account", "demo", demo_sample().to_str().unwrap()],
    );
    assert_eq!(
        verify_clean(&a, "after the import")["messages_checked"].as_u64(),
        Some(500)
    );
    proxy.add_faults(4);

    let d = Dovecot::start();
    user_with_mail(&d, "dora", &fresh_pull_messages(120));
    let mut pull = pull_command(
        &a,
        &format!("imaps://dora@127.0.0.1:{}", d.imaps),
        &d,
        &["--account", "dora"],
    );
    pull.env("AWS_ACCESS_KEY_ID", garage::KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", garage::SECRET);
    stdout_of(pull, "pull through the faulty proxy");

    let answered = proxy.answered_503.load(std::sync::atomic::Ordering::SeqCst);
    let cut = proxy.cut.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        answered >= 2 && cut >= 1,
        "the proxy answered 503 {answered} times and cut {cut} connections"
    );
    let report = verify_clean(&a, "after the faults");
    assert_eq!(report["messages_checked"].as_u64(), Some(500 + 120));
}

/// A Dovecot user with `msgs` in INBOX.
fn user_with_mail(d: &Dovecot, user: &str, msgs: &[Vec<u8>]) {
    d.add_user(user, common::dovecot::TEST_PASSWORD);
    let loaded: Vec<(Vec<u8>, &str, std::time::SystemTime)> = msgs
        .iter()
        .map(|m| (m.clone(), "", std::time::SystemTime::now()))
        .collect();
    d.load(user, "INBOX", &loaded);
}

/// Messages no demo-sample message equals (for the pull).
fn fresh_pull_messages(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(
                "From: p{i}@example.org\r\nTo: dora@example.org\r\nSubject: pulled {i}\r\n\
                 Message-ID: <pulled{i}@example.org>\r\n\r\n{}\r\n",
                format!("line {i} of a body that compresses\r\n").repeat(50 + i)
            )
            .into_bytes()
        })
        .collect()
}

/// A three-node cluster (replication 3): a node stopped while a pull runs does not
/// stop it; the archive verifies with the node down and after it returns.
#[test]
fn a_pull_into_a_three_node_cluster_completes_with_a_node_stopped() {
    let mut g = Garage::cluster();
    garage::use_test_credentials();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    s3_archive(&g, &a, "cluster", &g.endpoint());
    let d = Dovecot::start();
    let msgs = sample_messages(400);
    user_with_mail(&d, "cleo", &msgs);
    let mut pull = pull_command(
        &a,
        &format!("imaps://cleo@127.0.0.1:{}", d.imaps),
        &d,
        &["--account", "cleo", "--json"],
    );
    pull.env("AWS_ACCESS_KEY_ID", garage::KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", garage::SECRET);
    let child = pull
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    g.stop_node(2);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pull with a node down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let distinct: HashSet<MessageId> = msgs.iter().map(|m| MessageId::of(m)).collect();
    let report = verify_clean(&a, "with node 2 down");
    assert_eq!(report["messages_checked"].as_u64(), Some(distinct.len() as u64));
    g.start_node(2);
    verify_clean(&a, "after node 2 returned");
}
