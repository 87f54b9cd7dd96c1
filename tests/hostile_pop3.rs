//! A hostile POP3 server cannot make a pull hold more than a message's worth of
//! memory, archive a message over the maximum size, or get one deleted that is not
//! archived. Against a scripted server (a real one does none of this), running the
//! real binary and measuring its peak RSS.

mod common;

use std::path::Path;

use common::fake_pop3::{lines, ok, retr, spawn_pop3, Reply};
use common::*;

const RSS_BOUND: u64 = 300 << 20;

/// One test at a time: a child's peak RSS counts what the test process held when
/// it forked, and another test's server may hold 200 MB.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn body(n: usize) -> Vec<u8> {
    format!("Subject: m{n}\r\nMessage-ID: <{n}@hostile>\r\n\r\nbody {n}\r\n").into_bytes()
}

/// `pull` of the scripted server on `port` with `extra`: (status, peak RSS, JSON
/// summary, stderr).
fn pull(archive: &Path, port: u16, extra: &[&str]) -> (std::process::ExitStatus, u64, serde_json::Value, String) {
    let url = format!("pop3://eve@127.0.0.1:{port}");
    let mut args = vec![url.as_str(), "--password-env", "P", "--insecure-plaintext", "--json"];
    args.extend_from_slice(extra);
    args.insert(0, "pull");
    let mut c = cmd(archive, &args);
    c.env("P", "pw");
    let (st, rss, out, err) = output_with_peak_rss(c);
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("{test}: pull peak RSS {} MB", rss >> 20);
    let err = String::from_utf8_lossy(&err).into_owned();
    let s = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {err}"));
    (st, rss, s, err)
}

#[test]
fn a_size_past_i64_in_list_is_reported_and_never_retrieved_or_deleted() {
    let _one = serial();
    let list = ["1 9223372036854775808".to_string(), format!("2 {}", body(2).len())];
    let (port, server) = spawn_pop3(move |c| match c {
        "CAPA" => lines(&["USER", "UIDL", "PIPELINING"]),
        "UIDL" => lines(&["1 huge", "2 small"]),
        "LIST" => lines(&[&list[0], &list[1]]),
        c if c.starts_with("RETR ") => retr(&body(c[5..].trim().parse().unwrap())),
        _ => ok(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let (st, _, s, err) = pull(&ar, port, &["--delete-after-archive"]);
    let seen = server.join().unwrap();
    assert!(st.success(), "{err}");
    let t = &s["total"]["too_large"];
    assert_eq!(t[0]["uidl"], "huge", "{s}");
    assert_eq!(t[0]["bytes"], 9_223_372_036_854_775_808u64, "{s}");
    assert_eq!(t[0]["seen"], "announced", "{s}");
    assert!(!seen.iter().any(|l| l == "RETR 1"), "{seen:?}");
    assert!(!seen.iter().any(|l| l == "DELE 1"), "{seen:?}");
    assert!(seen.iter().any(|l| l == "DELE 2"), "{seen:?}");
    assert_eq!(stat_u64(&ar, "messages"), 1);
}

#[test]
fn a_retr_body_far_past_its_list_size_is_dropped_and_not_fetched_again() {
    let _one = serial();
    // LIST says 100 bytes; RETR sends 200 MB. Built when asked, after the binary
    // started: a child's peak RSS counts what the test process held when it forked.
    let big = || {
        let mut b = b"Subject: big\r\n\r\n".to_vec();
        let line = [&[b'y'; 78][..], b"\r\n"].concat();
        while b.len() < 200 << 20 {
            b.extend_from_slice(&line);
        }
        b
    };
    let answer = move |c: &str| match c {
        "CAPA" => lines(&["USER", "UIDL", "PIPELINING"]),
        "UIDL" => lines(&["1 big", "2 small"]),
        "LIST" => lines(&["1 100", &format!("2 {}", body(2).len())]),
        "RETR 1" => retr(&big()),
        c if c.starts_with("RETR ") => retr(&body(c[5..].trim().parse().unwrap())),
        _ => ok(),
    };
    let (port, server) = spawn_pop3(answer);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let (st, rss, s, err) = pull(&ar, port, &["--delete-after-archive", "--max-message-size", "64M"]);
    let seen = server.join().unwrap();
    eprintln!("200 MB RETR after LIST 100: peak RSS {} MB", rss >> 20);
    assert!(st.success(), "{err}");
    assert!(rss < RSS_BOUND + (64 << 20), "peak RSS {} MB: {s}", rss >> 20);
    let t = &s["total"]["too_large"];
    assert_eq!(t[0]["uidl"], "big", "{s}");
    assert_eq!(t[0]["seen"], "received", "{s}");
    assert!(
        !seen.iter().any(|l| l == "DELE 1"),
        "not archived, not deleted: {seen:?}"
    );
    assert!(seen.iter().any(|l| l == "DELE 2"), "{seen:?}");
    assert_eq!(stat_u64(&ar, "messages"), 1);
    assert!(ok_archive_verifies(&ar));
    // The next run does not retrieve it again (nor report it again).
    let (port, server) = spawn_pop3(answer);
    let (st, _, s, err) = pull(&ar, port, &["--max-message-size", "64M"]);
    let seen = server.join().unwrap();
    assert!(st.success(), "{err}");
    assert!(!seen.iter().any(|l| l == "RETR 1"), "{seen:?}");
    assert!(s["total"]["too_large"].is_null(), "{s}");
}

fn ok_archive_verifies(ar: &Path) -> bool {
    common::ok(ar, &["verify"]).contains("clean")
}

#[test]
fn an_endless_uidl_listing_is_cut_with_a_clear_error() {
    let _one = serial();
    // Two messages listed; UIDL goes on for a million lines (built when asked).
    let (port, server) = spawn_pop3(move |c| match c {
        "CAPA" => lines(&["USER", "UIDL", "PIPELINING"]),
        "UIDL" => {
            let uidl: Vec<String> = (1..=1_000_000).map(|n| format!("{n} u{n}")).collect();
            let refs: Vec<&str> = uidl.iter().map(String::as_str).collect();
            match lines(&refs) {
                Reply::Send(b) => Reply::Last(b),
                r => r,
            }
        }
        "LIST" => lines(&["1 10", "2 10"]),
        _ => ok(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let url = format!("pop3://eve@127.0.0.1:{port}");
    let mut c = cmd(
        &ar,
        &[
            "pull",
            &url,
            "--password-env",
            "P",
            "--insecure-plaintext",
            "--delete-after-archive",
            "--retries",
            "0",
        ],
    );
    c.env("P", "pw");
    let (st, rss, _, err) = output_with_peak_rss(c);
    let err = String::from_utf8_lossy(&err);
    let seen = server.join().unwrap();
    eprintln!("endless UIDL: peak RSS {} MB", rss >> 20);
    assert!(!st.success(), "{err}");
    assert!(rss < RSS_BOUND, "peak RSS {} MB", rss >> 20);
    assert!(
        err.contains("127.0.0.1") && err.contains("UIDL") && err.contains("more than 1002 lines"),
        "{err}"
    );
    assert!(err.lines().count() < 5, "{err}");
    assert!(!seen.iter().any(|l| l.starts_with("DELE")), "{seen:?}");
}
