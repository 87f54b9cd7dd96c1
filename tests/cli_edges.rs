//! The command line at its edges, as a newcomer meets it: a mistyped `--archive`
//! never becomes an empty archive that checks clean, and output into a pipe that
//! closes early (`| head -1`) ends quietly.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

/// Every command that only reads refuses an archive that does not exist, in one
/// line, with a non-zero exit, and creates nothing.
#[test]
fn commands_that_only_read_never_create_an_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out_dir = tmp.path().join("out");
    let out_arg = out_dir.to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["verify"],
        &["stats"],
        &["stats", "--json"],
        &["search", "anything"],
        &["show", "abcd"],
        &["export", "--format", "eml", "--out", out_arg],
    ];
    for args in commands {
        let out = common::run(&missing, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.contains(&format!("no archive at {}", missing.display())) && err.contains("mailvault init"),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!out_dir.exists(), "export wrote nothing");
}

/// `mailvault … | head -1` on output far larger than a pipe holds: the pipeline
/// succeeds, mailvault itself exits 0, and nothing is printed on stderr.
#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    // A message of ~1 MB for `show`.
    let big = tmp.path().join("big.eml");
    let mut m = b"From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n".to_vec();
    while m.len() < 1 << 20 {
        m.extend_from_slice(b"a line of text that goes on and on, to fill a pipe many times over\r\n");
    }
    std::fs::write(&big, &m).unwrap();
    common::ok(&archive, &["-q", "import", "--account", "big", big.to_str().unwrap()]);
    let id = mailvault::model::MessageId::of(&m).to_hex();
    let search: &[&str] = &["search", "--format", "json", "--limit", "1000", "the"];
    // More than a pipe holds (64 KiB) plus all head may read before it exits.
    let full = common::ok(&archive, search);
    assert!(
        full.len() > 128 << 10,
        "the search output must overflow the pipe: {} bytes",
        full.len()
    );
    for args in [search, &["show", &id]] {
        let line = format!(
            "{} --archive {} {} | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}} ${{PIPESTATUS[1]}}\"",
            common::bin().display(),
            archive.display(),
            args.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ")
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&line)
            .env_remove("MAILVAULT_ARCHIVE")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "{args:?}: stderr: {err}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0 0",
            "{args:?}: exit of mailvault and head"
        );
    }
    assert_pipe_free(&archive);
}

/// The archive still opens and verifies after output was cut short.
fn assert_pipe_free(archive: &Path) {
    let out = common::run(archive, &["verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A server that is not there fails a pull at once, in one line: refusals are not
/// retried with backoff before a first session (that is for drops after one).
#[test]
fn an_unreachable_server_fails_a_pull_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for scheme in ["imaps", "pop3s"] {
        let url = format!("{scheme}://alice@127.0.0.1:{port}");
        let mut c = common::cmd(&tmp.path().join("a"), &["pull", &url, "--password-env", "MV_TEST_PW"]);
        c.env("MV_TEST_PW", "x");
        let started = std::time::Instant::now();
        let out = c.output().unwrap();
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {err}");
        assert!(took < std::time::Duration::from_secs(2), "{url}: took {took:?}");
        assert_eq!(err.lines().count(), 1, "{url}: one line: {err}");
        assert!(err.contains("cannot connect"), "{url}: {err}");
    }
}
