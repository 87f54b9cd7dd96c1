//! A hostile or broken IMAP server cannot crash a pull, eat the machine's memory,
//! make it miss mail, or get a credential or a megabyte of its garbage into an
//! error or a log line. Against a scripted server (a real one does none of this),
//! running the real binary and measuring its peak RSS.

mod common;

use std::path::Path;

use common::scripted_imap::{message, Script, ScriptedImap};
use common::*;

const PASSWORD: &str = "s3cret-Hostile-PW";
/// Peak RSS a pull of a handful of messages must stay under, whatever the server
/// says.
const RSS_BOUND: u64 = 300 << 20;

/// `mailvault pull` of the scripted server, with `env` set: (status, peak RSS,
/// stdout, stderr).
fn pull(
    archive: &Path,
    server: &ScriptedImap,
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, u64, String, String) {
    let url = server.url("me");
    let mut c = cmd(
        archive,
        &[
            "pull",
            &url,
            "--insecure-plaintext",
            "--password-env",
            "PW",
            "--connections",
            "1",
            "--retries",
            "0",
            "--json",
        ],
    );
    c.env("PW", PASSWORD);
    for (k, v) in env {
        c.env(k, v);
    }
    let (status, rss, out, err) = output_with_peak_rss(c);
    (
        status,
        rss,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn summary(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A pull that must succeed: its JSON summary and stderr.
fn pull_ok(archive: &Path, server: &ScriptedImap) -> (serde_json::Value, String) {
    let (st, _, out, err) = pull(archive, server, &[]);
    assert!(st.success(), "{err}");
    (summary(&out), err)
}

fn verify_clean(archive: &Path) {
    assert!(ok(archive, &["verify"]).contains("clean"));
}

#[test]
fn vanished_earlier_over_the_whole_uid_range_marks_only_archived_uids() {
    let server = ScriptedImap::start(Script::with_messages(3, "CONDSTORE QRESYNC ENABLE"));
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let (s, _) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["fetched"], 3, "{s}");
    {
        let mut s = server.script.lock().unwrap();
        s.messages.clear();
        s.uidnext = Some(4);
        s.modseq = 20;
        s.vanished = Some("* VANISHED (EARLIER) 1:4294967295".into());
    }
    let (st, rss, out, err) = pull(&ar, &server, &[]);
    assert!(st.success(), "{err}");
    let s = summary(&out);
    assert_eq!(s["total"]["deleted_at_source"], 3, "{s}");
    assert!(
        server.lines.lock().unwrap().iter().any(|l| l.contains("VANISHED")),
        "the QRESYNC path was taken"
    );
    assert!(rss < RSS_BOUND, "peak RSS {} MB", rss >> 20);
    eprintln!("VANISHED 1:4294967295: peak RSS {} MB", rss >> 20);
    assert_eq!(stat_u64(&ar, "messages"), 3, "nothing archived is removed");
    verify_clean(&ar);
}

#[test]
fn a_message_at_a_uid_below_the_cursor_is_reported_and_archived() {
    // UIDs 1, 3, 5 archived; then the server shows a message at UID 4, without a
    // UIDVALIDITY change and with UIDNEXT unchanged.
    let mut script = Script::with_messages(0, "");
    script.messages = vec![(1, message(1)), (3, message(3)), (5, message(5))];
    let server = ScriptedImap::start(script);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let (s, _) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["fetched"], 3, "{s}");
    {
        let mut s = server.script.lock().unwrap();
        s.messages.insert(2, (4, message(4)));
        s.uidnext = Some(6);
    }
    let (s, err) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["below_cursor"], 1, "{s}");
    assert_eq!(s["total"]["new_messages"], 1, "{s}");
    assert!(err.contains("below ones already archived"), "said on stderr: {err}");
    assert_eq!(stat_u64(&ar, "messages"), 4);
    let hits = ok(&ar, &["search", "--format", "ids", "subject:scripted", "subject:4"]);
    assert_eq!(hits.lines().count(), 1, "{hits}");
    // Once archived, it is not fetched again.
    let (s, _) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["fetched"], 0, "{s}");
    verify_clean(&ar);
}

#[test]
fn a_lowered_highestmodseq_falls_back_to_a_full_diff() {
    let mut script = Script::with_messages(0, "CONDSTORE QRESYNC ENABLE");
    script.messages = vec![(1, message(1)), (3, message(3))];
    script.modseq = 50;
    let server = ScriptedImap::start(script);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    pull_ok(&ar, &server);
    {
        // The server lost its modseq state: 40 < 50, a new message at UID 2, and
        // UID 1 is gone.
        let mut s = server.script.lock().unwrap();
        s.modseq = 40;
        s.messages = vec![(2, message(2)), (3, message(3))];
        s.uidnext = Some(4);
    }
    let (s, _) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["below_cursor"], 1, "{s}");
    assert_eq!(s["total"]["deleted_at_source"], 1, "{s}");
    assert_eq!(stat_u64(&ar, "messages"), 3);
    verify_clean(&ar);
}

#[test]
fn no_log_filter_lets_the_password_or_mail_out() {
    let server = ScriptedImap::start(Script::with_messages(2, ""));
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    for filter in [
        "trace",
        "async_imap::imap_stream=trace",
        "async_imap=trace,imap_proto=trace,mailvault=trace",
    ] {
        let (st, _, _, err) = pull(&ar, &server, &[("RUST_LOG", filter)]);
        assert!(st.success(), "{filter}: {err}");
        assert!(!err.contains(PASSWORD), "RUST_LOG={filter} logged the password");
        assert!(!err.contains("body 1"), "RUST_LOG={filter} logged mail content");
    }
}

#[test]
fn a_megabyte_of_garbage_is_quoted_short_in_the_error() {
    let mut script = Script::with_messages(2, "");
    script.garbage_line = Some(1 << 20);
    let server = ScriptedImap::start(script);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let (st, rss, out, err) = pull(&ar, &server, &[]);
    assert!(rss < RSS_BOUND, "peak RSS {} MB", rss >> 20);
    // The folder failed; the error says where, and quotes a few hundred bytes.
    let s = summary(&out);
    let e = s["folders"][0]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error: {out}"));
    assert!(e.contains("127.0.0.1"), "{e}");
    assert!(e.len() < 1000, "{} bytes of error: {}", e.len(), &e[..200]);
    assert!(err.len() < 4000, "{} bytes on stderr", err.len());
    assert!(!st.success() || e.contains("more bytes"), "{st}");
}
