//! The job file format: `schemas/job.schema.json` is exactly what the Rust types
//! generate (`MAILVAULT_BLESS=1` rewrites it), every example in `jobs/` is read and
//! checked, and the command line refuses a bad file with file, line, column, field.

mod common;

use std::path::Path;

use common::cmd;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn job_schema_matches_the_types() {
    let built = mailvault::job::schema_json();
    let path = Path::new(ROOT).join("schemas/job.schema.json");
    if std::env::var("MAILVAULT_BLESS").is_ok() {
        std::fs::write(&path, &built).unwrap();
    }
    let declared = std::fs::read_to_string(&path).expect("schemas/job.schema.json exists");
    assert_eq!(
        built, declared,
        "the job file types changed: regenerate with MAILVAULT_BLESS=1 cargo test --test job_files"
    );
    let v: serde_json::Value = serde_json::from_str(&declared).unwrap();
    assert_eq!(v["required"], serde_json::json!(["accounts"]));
}

#[test]
fn every_example_job_is_valid() {
    let mut seen = Vec::new();
    for e in std::fs::read_dir(Path::new(ROOT).join("jobs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let job = mailvault::job::load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(!job.accounts.is_empty(), "{}", p.display());
            seen.push(job);
        }
    }
    let by = |n: &str| {
        seen.iter()
            .find(|j| j.name == n)
            .unwrap_or_else(|| panic!("jobs/{n}.toml"))
    };
    let imap = by("imap-archive");
    assert!(imap.accounts.len() >= 2 && imap.accounts.iter().all(|a| a.is_imap()));
    assert!(imap.accounts.iter().any(|a| !a.spec.watch.is_empty()));
    assert!(imap.accounts.iter().any(|a| a.spec.preset.is_some()));
    let pop3 = by("pop3-archive");
    assert!(pop3
        .accounts
        .iter()
        .any(|a| !a.is_imap() && a.spec.delete == mailvault::job::DeleteMode::AfterArchive));
    let migrate = by("migrate");
    assert!(migrate.accounts.iter().all(|a| a.replay_to.is_some()));
    assert!(matches!(migrate.timing, mailvault::job::Timing::Cron(_)));
}

#[test]
fn run_refuses_a_bad_job_naming_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("bad.toml");
    std::fs::write(
        &job,
        "[schedule]\nevery = \"15m\"\n\n[[accounts]]\nurl = \"imaps://a@127.0.0.1:1\"\npassword = { env = \"X\" }\nfolder = [\"INBOX\"]\n",
    )
    .unwrap();
    let out = cmd(dir.path(), &["run"]).arg(&job).arg("--once").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("{}:7:1: field `accounts[0]", job.display());
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("unknown field `folder`"), "{err}");

    std::fs::write(
        &job,
        "[[accounts]]\nurl = \"imaps://a@127.0.0.1:1\"\npassword = \"hunter2\"\n",
    )
    .unwrap();
    let out = cmd(dir.path(), &["run"]).arg(&job).arg("--dry-run").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(":3:12: field `accounts[0].password`: secrets are never written"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the refused secret is not echoed: {err}");

    std::fs::write(
        &job,
        "[[accounts]]\nurl = \"imaps://a@127.0.0.1:1\"\npassword = { env = \"X\" }\ntls_pin = [\"sha256:abc\"]\n",
    )
    .unwrap();
    let out = cmd(dir.path(), &["run"]).arg(&job).arg("--dry-run").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(":4:1") && err.contains("accounts[0].tls_pin") && err.contains("64 hex digits"),
        "{err}"
    );

    // serve reports every bad file of the directory.
    std::fs::write(
        dir.path().join("also-bad.toml"),
        "[limits]\nconnections_per_host = 0\n[[accounts]]\nurl = \"pop3s://b@h\"\npassword = { env = \"X\" }\n",
    )
    .unwrap();
    let out = cmd(dir.path(), &["serve", "--jobs"]).arg(dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("2 invalid job file(s)"), "{err}");
    assert!(
        err.contains("also-bad.toml:") && err.contains("limits.connections_per_host"),
        "{err}"
    );
}
