//! A hostile or broken IMAP server cannot crash a pull, eat the machine's memory,
//! make it miss mail, or get a credential or a megabyte of its garbage into an
//! error or a log line. Against a scripted server (a real one does none of this),
//! running the real binary and measuring its peak RSS.

mod common;

use std::path::Path;

use common::fake_imap::uid_set_contains;
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
    pull_with(archive, server, env, &[])
}

/// [`pull`] with more arguments.
fn pull_with(
    archive: &Path,
    server: &ScriptedImap,
    env: &[(&str, &str)],
    extra: &[&str],
) -> (std::process::ExitStatus, u64, String, String) {
    let url = server.url("me");
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    let mut c = cmd(archive, &args);
    c.env("PW", PASSWORD);
    for (k, v) in env {
        c.env(k, v);
    }
    let (status, rss, out, err) = output_with_peak_rss(c);
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("{test}: pull peak RSS {} MB", rss >> 20);
    (
        status,
        rss,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Starts the scripted server and gives a temp dir with the archive path in it.
fn start(script: Script) -> (ScriptedImap, tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    (ScriptedImap::start(script), tmp, ar)
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
    let (server, _tmp, ar) = start(Script::with_messages(3, "CONDSTORE QRESYNC ENABLE"));
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
    let (server, _tmp, ar) = start(script);
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
    let (server, _tmp, ar) = start(script);
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
    let (server, _tmp, ar) = start(Script::with_messages(2, ""));
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
    let (server, _tmp, ar) = start(script);
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

const MAX_64M: &[&str] = &["--max-message-size", "64M"];

/// A pull with `--max-message-size 64M` that must succeed within 300 MB + 64 MB of
/// peak RSS (said under `label`): its JSON summary and stderr.
fn pull_within_64m(archive: &Path, server: &ScriptedImap, label: &str) -> (serde_json::Value, String) {
    let (st, rss, out, err) = pull_with(archive, server, &[], MAX_64M);
    assert!(st.success(), "{err}");
    eprintln!("{label}: peak RSS {} MB", rss >> 20);
    assert!(rss < RSS_BOUND + (64 << 20), "{label}: peak RSS {} MB", rss >> 20);
    (summary(&out), err)
}

/// Every UID set the server was asked for bodies.
fn body_fetches(server: &ScriptedImap) -> Vec<String> {
    server
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("BODY.PEEK[]"))
        .filter_map(|l| l.split(' ').nth(3).map(str::to_string))
        .collect()
}

#[test]
fn a_literal_far_larger_than_its_announced_size_is_dropped_and_reported() {
    // UID 2 claims RFC822.SIZE 1 and sends a literal of 400 MB.
    let mut script = Script::with_messages(3, "");
    script.claimed.insert(2, 1);
    script.literal_len.insert(2, 400 << 20);
    let (server, _tmp, ar) = start(script);
    let (s, err) = pull_within_64m(&ar, &server, "400 MB literal after RFC822.SIZE 1");
    let t = &s["total"]["too_large"];
    assert_eq!(t.as_array().map(Vec::len), Some(1), "{s}");
    assert_eq!(t[0]["uid"], 2, "{s}");
    assert_eq!(t[0]["seen"], "received", "{s}");
    assert_eq!(t[0]["bytes"], 400u64 << 20, "{s}");
    assert!(err.contains("larger than the maximum message size"), "{err}");
    assert_eq!(stat_u64(&ar, "messages"), 2, "UIDs 1 and 3 archived");
    verify_clean(&ar);
    // Not fetched again: the cursor is past it.
    let before = body_fetches(&server).len();
    let (s, _) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["fetched"], 0, "{s}");
    assert_eq!(body_fetches(&server).len(), before);
}

#[test]
fn a_message_announced_over_the_maximum_is_never_fetched() {
    let mut script = Script::with_messages(3, "");
    script.claimed.insert(2, 100 << 20);
    let (server, _tmp, ar) = start(script);
    let (s, _) = pull_within_64m(&ar, &server, "RFC822.SIZE 100 MB");
    assert_eq!(s["total"]["too_large"][0]["uid"], 2, "{s}");
    assert_eq!(s["total"]["too_large"][0]["seen"], "announced", "{s}");
    let sets = body_fetches(&server);
    assert!(!sets.is_empty());
    assert!(
        sets.iter().all(|set| !uid_set_contains(set, 2, 3)),
        "UID 2's body was asked for: {sets:?}"
    );
    assert_eq!(stat_u64(&ar, "messages"), 2);
    let (s, _) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["fetched"], 0, "{s}");
    assert!(s["total"]["too_large"].is_null(), "reported once: {s}");
}

#[test]
fn bodies_larger_than_announced_are_held_within_one_batch_bound() {
    // Eight messages claim one byte each and send 40 MB each: one batch by the
    // claims, 320 MB by the bytes.
    let mut script = Script::with_messages(8, "");
    for uid in 1..=8 {
        script.claimed.insert(uid, 1);
        script.literal_len.insert(uid, 40 << 20);
    }
    let (server, _tmp, ar) = start(script);
    let (s, _) = pull_within_64m(&ar, &server, "8 x 40 MB sent after RFC822.SIZE 1");
    assert_eq!(s["total"]["new_messages"], 8, "every message archived: {s}");
    assert!(s["total"]["too_large"].is_null(), "{s}");
    verify_clean(&ar);
}

#[test]
fn a_status_line_that_never_ends_fails_the_folder_with_a_clear_error() {
    let mut script = Script::with_messages(2, "");
    script.endless_line = true;
    let (server, _tmp, ar) = start(script);
    let started = std::time::Instant::now();
    let (st, rss, out, _) = pull(&ar, &server, &[]);
    eprintln!("endless status line: peak RSS {} MB", rss >> 20);
    assert!(rss < RSS_BOUND, "peak RSS {} MB", rss >> 20);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(!st.success());
    let s = summary(&out);
    let e = s["folders"][0]["error"].as_str().unwrap_or_else(|| panic!("{s}"));
    assert!(e.contains("127.0.0.1") && e.contains("status line of more than"), "{e}");
    assert!(e.len() < 1000, "{e}");
}

#[test]
fn a_server_that_stops_mid_literal_times_out() {
    let mut script = Script::with_messages(2, "");
    script.stall_after = Some(10);
    let (server, _tmp, ar) = start(script);
    let started = std::time::Instant::now();
    let (st, _, out, _) = pull_with(&ar, &server, &[], &["--timeout", "2"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(!st.success());
    let s = summary(&out);
    let e = s["folders"][0]["error"].as_str().unwrap_or_else(|| panic!("{s}"));
    assert!(e.contains("127.0.0.1") && e.contains("within 2 s"), "{e}");
    assert_eq!(stat_u64(&ar, "messages"), 0);
}

#[test]
fn fetch_answers_for_uids_never_asked_are_ignored() {
    let mut script = Script::with_messages(3, "");
    script.unasked = true;
    let (server, _tmp, ar) = start(script);
    let (s, _) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["new_messages"], 3, "{s}");
    assert_eq!(stat_u64(&ar, "messages"), 3);
    let hits = ok(&ar, &["search", "--format", "ids", "subject:9001"]);
    assert!(hits.trim().is_empty(), "{hits}");
    verify_clean(&ar);
}

#[test]
fn a_hundred_thousand_folders_with_hostile_names_are_listed_within_bounds() {
    let mut script = Script::with_messages(2, "");
    let mut list: Vec<Vec<u8>> = (0..100_000)
        .map(|i| format!("* LIST (\\HasNoChildren) \"/\" \"f{i}\"").into_bytes())
        .collect();
    list.push(b"* LIST () \"/\" {3}\r\na\x00b".to_vec());
    list.push(b"* LIST () \"/\" \"..\"".to_vec());
    list.push(b"* LIST () \"/\" \"../../etc\"".to_vec());
    list.push(b"* LIST () \"/\" \"/abs\"".to_vec());
    list.push(b"* LIST () \"/\" \"bad&Jjo\"".to_vec());
    list.push(b"* LIST () \"/\" \"&AGE-&-\"".to_vec());
    script.extra_list = list;
    let (server, _tmp, ar) = start(script);
    let (st, rss, out, err) = pull_with(&ar, &server, &[], &["--folder", "INBOX"]);
    eprintln!("100,000 folders: peak RSS {} MB", rss >> 20);
    assert!(st.success(), "{err}");
    assert!(rss < RSS_BOUND, "peak RSS {} MB", rss >> 20);
    let s = summary(&out);
    assert_eq!(s["total"]["new_messages"], 2, "{s}");
    verify_clean(&ar);
}

#[test]
fn hostile_folder_names_are_pulled_under_names_that_stay_inside_exports() {
    let mut script = Script::with_messages(1, "");
    script.extra_list = vec![
        b"* LIST () \"/\" {3}\r\na\x00b".to_vec(),
        b"* LIST () \"/\" \"../../etc\"".to_vec(),
        b"* LIST () \"/\" \"bad&Jjo\"".to_vec(),
    ];
    let (server, tmp, ar) = start(script);
    let (st, _, out, err) = pull(&ar, &server, &[]);
    assert!(!err.contains("panicked"), "{err}");
    let s = summary(&out);
    assert!(s["total"]["new_messages"].as_u64() >= Some(1), "{s}: {st}");
    verify_clean(&ar);
    let out_dir = tmp.path().join("export");
    ok(
        &ar,
        &["export", "--format", "maildir", "--out", out_dir.to_str().unwrap()],
    );
    for e in walkdir::WalkDir::new(tmp.path()).into_iter().filter_map(Result::ok) {
        let p = e.path();
        assert!(
            p.starts_with(&ar) || p.starts_with(&out_dir) || p == tmp.path(),
            "written outside the archive and the export: {}",
            p.display()
        );
    }
}

#[test]
fn uidvalidity_zero_is_archived_and_said() {
    let mut script = Script::with_messages(2, "");
    script.uidvalidity = 0;
    let (server, _tmp, ar) = start(script);
    let (st, _, out, err) = pull(&ar, &server, &[]);
    assert!(!err.contains("panicked"), "{err}");
    let s = summary(&out);
    assert!(st.success(), "{s} {err}");
    assert!(err.contains("UIDVALIDITY 0"), "said: {err}");
    assert_eq!(stat_u64(&ar, "messages"), 2, "{s}");
    verify_clean(&ar);
    let (s, _) = pull_ok(&ar, &server);
    assert_eq!(s["total"]["fetched"], 0, "incremental: {s}");
}

#[test]
fn a_job_lists_messages_over_its_max_message_size_in_status() {
    let mut script = Script::with_messages(3, "");
    script.literal_len.insert(2, 200_000);
    let (server, tmp, ar) = start(script);
    let job = tmp.path().join("big.toml");
    std::fs::write(
        &job,
        format!(
            "[limits]\nmax_message_size = \"100K\"\n\n[[accounts]]\nname = \"me\"\nurl = \"{}\"\n\
             password = {{ env = \"PW\" }}\ninsecure_plaintext = true\n",
            server.url("me")
        ),
    )
    .unwrap();
    let mut c = cmd(&ar, &["run", job.to_str().unwrap(), "--once"]);
    c.env("PW", PASSWORD);
    let (st, _, _, err) = output_with_peak_rss(c);
    assert!(st.success(), "{}", String::from_utf8_lossy(&err));
    assert_eq!(stat_u64(&ar, "messages"), 2);
    let table = ok(&ar, &["status"]);
    assert!(table.contains("too large: big me: INBOX UID 2 (200.0 kB"), "{table}");
    let s: serde_json::Value = serde_json::from_str(&ok(&ar, &["status", "--json"])).unwrap();
    assert_eq!(s[0]["accounts"]["me"]["too_large"][0]["uid"], 2, "{s}");
    assert_eq!(s[0]["accounts"]["me"]["too_large"][0]["seen"], "announced", "{s}");
}

#[test]
fn an_exists_storm_during_idle_is_absorbed() {
    // Every IDLE is answered by 200,000 EXISTS lines before the server waits for
    // DONE; `serve` watches INBOX for 8 s.
    let mut script = Script::with_messages(2, "");
    script.exists_storm = Some(200_000);
    let (server, tmp, ar) = start(script);
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::write(
        jobs.join("storm.toml"),
        format!(
            "[schedule]\nevery = \"1h\"\n\n[[accounts]]\nname = \"me\"\nurl = \"{}\"\n\
             password = {{ env = \"PW\" }}\ninsecure_plaintext = true\nwatch = [\"INBOX\"]\n",
            server.url("me")
        ),
    )
    .unwrap();
    let mut c = cmd(&ar, &["serve", "--jobs", jobs.to_str().unwrap()]);
    c.env("PW", PASSWORD);
    let (st, rss, _, err) = output_with_peak_rss_stopped(c, Some(std::time::Duration::from_secs(8)));
    let err = String::from_utf8_lossy(&err);
    eprintln!("EXISTS storm during IDLE: peak RSS {} MB", rss >> 20);
    assert_eq!(st.code(), Some(0), "stopped cleanly: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(rss < RSS_BOUND, "peak RSS {} MB", rss >> 20);
    let idles = server.script.lock().unwrap().idles;
    assert!(idles >= 1, "IDLE was used: {err}");
    assert!(idles < 10_000, "{idles} IDLE cycles in 8 s");
    eprintln!("{idles} IDLE cycles, each answered by 200,000 EXISTS");
    assert_eq!(stat_u64(&ar, "messages"), 2);
    verify_clean(&ar);
}

#[test]
fn a_multibyte_character_after_a_response_code_does_not_panic_the_parser() {
    // Found by fuzzing: imap-proto 0.17 panics on `* OK [UIDNEXT 3]€`.
    let mut script = Script::with_messages(2, "");
    script.utf8_after_code = true;
    let (server, _tmp, ar) = start(script);
    let (s, err) = pull_ok(&ar, &server);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(s["total"]["new_messages"], 2, "{s}");
    verify_clean(&ar);
}
