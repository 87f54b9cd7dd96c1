//! POP3 pull against a real Dovecot (first part of issue 5): archives by UIDL with
//! the same ids an IMAP pull of the account gives, fetches nothing the second time,
//! deletes only with --delete-after-archive and only what is archived, and keeps the
//! TLS rules.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

use common::dovecot::{pull_json, Dovecot, TEST_PASSWORD as PW};

fn sample(n: usize) -> Vec<(Vec<u8>, &'static str, SystemTime)> {
    common::dovecot::sample_messages(n)
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            (
                m,
                "",
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_200_000_000 + i as u64),
            )
        })
        .collect()
}

fn pop3(archive: &Path, d: &Dovecot, url: &str, extra: &[&str]) -> Output {
    common::dovecot::pull_command(archive, url, d, extra).output().unwrap()
}

fn pop3_json(archive: &Path, d: &Dovecot, user: &str, extra: &[&str]) -> serde_json::Value {
    let url = format!("pop3s://{user}@127.0.0.1:{}", d.pop3s);
    let mut e = vec!["--json"];
    e.extend_from_slice(extra);
    let out = pop3(archive, d, &url, &e);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn messages_on_server(d: &Dovecot, user: &str) -> u64 {
    let out = d.doveadm(&["mailbox", "status", "-u", user, "messages", "INBOX"]);
    let n = out
        .split("messages=")
        .nth(1)
        .unwrap_or_else(|| panic!("doveadm said {out:?}"));
    n.trim().parse().unwrap()
}

#[test]
fn pop3_pull_matches_imap_and_is_incremental() {
    let d = Dovecot::start();
    d.add_user("gina", PW);
    d.load("gina", "INBOX", &sample(40));
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let s = pop3_json(&ar, &d, "gina", &["--account", "gina"]);
    assert_eq!(s["total"]["fetched"], 40, "{s}");
    let n = common::stat_u64(&ar, "messages");
    // The same mailbox over IMAP: every message already there (Dovecot serves the
    // same bytes both ways).
    let i = pull_json(&ar, &d, "gina", &["--account", "gina-imap"]);
    assert_eq!(i["total"]["fetched"], 40);
    assert_eq!(i["total"]["new_messages"], 0, "{i}");
    assert_eq!(common::stat_u64(&ar, "messages"), n);
    // A second POP3 pull retrieves nothing; the server still has everything.
    let again = pop3_json(&ar, &d, "gina", &["--account", "gina"]);
    assert_eq!(again["total"]["fetched"], 0, "{again}");
    assert_eq!(messages_on_server(&d, "gina"), 40);
    common::ok(&ar, &["verify"]);
}

/// Issue 5, items 1 and 2: the SpamAssassin ham folders (4,150 real messages) in
/// one Dovecot INBOX. A POP3 pull archives every message under the id an IMAP read
/// of the account gives (BODY[] BLAKE3), so an IMAP pull afterwards stores 0 new
/// messages; a second POP3 pull retrieves 0.
#[test]
fn spamassassin_ham_over_pop3_has_the_ids_imap_gives() {
    let d = Dovecot::start();
    d.add_user("sam", PW);
    let n = common::dovecot::load_spamassassin(&d, "sam", &["easy-ham-1", "easy-ham-2", "hard-ham-1"]);
    assert_eq!(n, 4150);
    let over_imap: std::collections::HashSet<_> = d.server_view("sam", PW).values().map(|m| m.hash).collect();
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let s = pop3_json(&ar, &d, "sam", &["--account", "sam-pop3"]);
    assert_eq!(s["total"]["fetched"], n, "{s}");
    let a = mailvault::archive::Archive::open_read_only(&ar).unwrap();
    let got: std::collections::HashSet<_> = a.message_ids().unwrap().into_iter().collect();
    drop(a);
    assert_eq!(got.len(), over_imap.len());
    assert!(
        got == over_imap,
        "{} ids differ",
        got.symmetric_difference(&over_imap).count()
    );
    let again = pop3_json(&ar, &d, "sam", &["--account", "sam-pop3"]);
    assert_eq!(again["total"]["fetched"], 0, "{again}");
    let i = pull_json(&ar, &d, "sam", &["--account", "sam-imap"]);
    assert_eq!(i["total"]["fetched"], n, "{i}");
    assert_eq!(i["total"]["new_messages"], 0, "{i}");
    assert_eq!(common::stat_u64(&ar, "placements"), 2 * n as u64);
    common::ok(&ar, &["verify"]);
}

#[test]
fn delete_after_archive_empties_the_server_and_loses_nothing() {
    let d = Dovecot::start();
    d.add_user("hank", PW);
    d.load("hank", "INBOX", &sample(30));
    let expected: std::collections::HashSet<_> = d.server_view("hank", PW).values().map(|m| m.hash).collect();
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let s = pop3_json(&ar, &d, "hank", &["--delete-after-archive"]);
    assert_eq!(s["total"]["fetched"], 30, "{s}");
    assert_eq!(s["total"]["deleted_on_server"], 30, "{s}");
    assert_eq!(messages_on_server(&d, "hank"), 0);
    let a = mailvault::archive::Archive::open_read_only(&ar).unwrap();
    let got: std::collections::HashSet<_> = a.message_ids().unwrap().into_iter().collect();
    assert_eq!(got, expected);
    drop(a);
    // The next run sees them gone: placements marked deleted at source, kept.
    let s = pop3_json(&ar, &d, "hank", &[]);
    assert_eq!(s["total"]["deleted_at_source"], 30, "{s}");
    common::ok(&ar, &["verify"]);
}

#[test]
fn stls_with_dovecot_and_wrong_password() {
    let d = Dovecot::start();
    d.add_user("ivy", PW);
    d.load("ivy", "INBOX", &sample(3));
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let url = format!("pop3://ivy@127.0.0.1:{}", d.pop3);
    let ok = pop3(&ar, &d, &url, &[]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(common::stat_u64(&ar, "messages"), 3);
    // Untrusted certificate: refused with advice.
    let out = common::cmd(
        &ar,
        &[
            "pull",
            &format!("pop3s://ivy@127.0.0.1:{}", d.pop3s),
            "--password-env",
            "P",
        ],
    )
    .env("P", PW)
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-ca"));
    // Wrong password: a clear error, nothing deleted.
    let ca = d.ca_pem();
    let out = common::cmd(
        &ar,
        &[
            "pull",
            &url,
            "--password-env",
            "P",
            "--tls-ca",
            ca.to_str().unwrap(),
            "--delete-after-archive",
        ],
    )
    .env("P", "wrong")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("login failed for ivy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(messages_on_server(&d, "ivy"), 3);
}

/// Issue 5, item 3: kill -9 at random moments of a `--delete-after-archive` pull;
/// after each rerun every message that was ever on the server is archived, the
/// archive verifies clean, and the server ends empty. Rounds:
/// `$MAILVAULT_CRASH_ROUNDS` (default 20).
#[test]
fn kill_during_delete_after_archive_loses_nothing() {
    let rounds = common::crash_rounds();
    let d = Dovecot::start();
    d.add_user("kim", PW);
    let msgs = sample(300);
    let url = format!("pop3s://kim@127.0.0.1:{}", d.pop3s);
    let args = ["-q", "--delete-after-archive", "--account", "kim"];
    let tmp = tempfile::tempdir().unwrap();
    // How long a whole pull takes, to spread the kills over it.
    d.load("kim", "INBOX", &msgs);
    let t = std::time::Instant::now();
    assert!(pop3(&tmp.path().join("probe"), &d, &url, &args).status.success());
    let full = t.elapsed();
    let mut rng = common::Rng::from_env("pop3-crash");
    let mut killed_mid_way = 0;
    for round in 0..rounds {
        d.load("kim", "INBOX", &msgs);
        let expected: std::collections::HashSet<_> = d.server_view("kim", PW).values().map(|m| m.hash).collect();
        let archive = tmp.path().join(format!("r{round}"));
        for _ in 0..1 + rng.below(2) {
            let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 11 / 10 + 1));
            let cmd = common::dovecot::pull_command(&archive, &url, &d, &args);
            if common::kill_after(cmd, delay, &archive, round) {
                killed_mid_way += 1;
            }
        }
        let out = pop3(&archive, &d, &url, &args);
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(messages_on_server(&d, "kim"), 0, "round {round}");
        let a = mailvault::archive::Archive::open(&archive).unwrap();
        assert!(a.verify(|_| {}).unwrap().is_clean(), "round {round}");
        let got: std::collections::HashSet<_> = a.message_ids().unwrap().into_iter().collect();
        assert!(
            expected.is_subset(&got),
            "round {round}: {} messages lost",
            expected.difference(&got).count()
        );
        drop(a);
        std::fs::remove_dir_all(&archive).unwrap();
    }
    eprintln!("{rounds} rounds, {killed_mid_way} kills landed mid-pull (full pull {full:?})");
    assert!(
        killed_mid_way >= rounds / 2,
        "too few kills hit a running pull ({killed_mid_way})"
    );
}

/// Issue 5, item 4 (first half): STLS required but not offered → abort before USER.
#[test]
fn stls_required_but_not_offered_aborts_before_user() {
    use common::fake_pop3::{lines, ok, pull, spawn_pop3};
    let (port, server) = spawn_pop3(|cmd| match cmd {
        "CAPA" => lines(&["USER", "UIDL", "PIPELINING"]),
        _ => ok(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = pull(&tmp.path().join("a"), port, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("STLS is required"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = server.join().unwrap();
    assert!(
        seen.iter()
            .all(|l| !l.to_ascii_uppercase().starts_with("USER") && !l.contains(PW)),
        "{seen:?}"
    );
}

/// Issue 5, item 5 (part): connections cut at random offsets mid-RETR — the pull
/// reconnects, plans again from what is committed, and ends with everything
/// archived and (with --delete-after-archive) the server empty.
#[test]
fn cut_connections_are_resumed_and_nothing_is_lost() {
    use common::fault_proxy::FaultProxy;
    let d = Dovecot::start();
    d.add_user("lou", PW);
    d.load("lou", "INBOX", &sample(300));
    let expected: std::collections::HashSet<_> = d.server_view("lou", PW).values().map(|m| m.hash).collect();
    let proxy = FaultProxy::start(d.pop3s, 4, 16 << 10, 400 << 10, "pop3-fault-proxy");
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let url = format!("pop3s://lou@127.0.0.1:{}", proxy.port);
    let out = pop3(&ar, &d, &url, &["--json", "--delete-after-archive", "--retries", "10"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["total"]["retries"].as_u64().unwrap() >= 1, "{s}");
    assert!(proxy.cut.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let a = mailvault::archive::Archive::open_read_only(&ar).unwrap();
    let got: std::collections::HashSet<_> = a.message_ids().unwrap().into_iter().collect();
    assert_eq!(got, expected);
    drop(a);
    assert_eq!(messages_on_server(&d, "lou"), 0);
    common::ok(&ar, &["verify"]);
}

/// Issue 5, item 5 (part): a server that ends a RETR without the terminating dot
/// and hangs up: a clear error naming the server and the command, nothing half
/// stored, nothing deleted.
#[test]
fn missing_terminator_is_a_clear_error_and_stores_nothing() {
    use common::fake_pop3::{lines, ok, pull, spawn_pop3, Reply};
    let (port, server) = spawn_pop3(|cmd| match cmd {
        "CAPA" => lines(&["USER", "UIDL"]),
        "UIDL" => lines(&["1 aaa", "2 bbb"]),
        "LIST" => lines(&["1 40", "2 40"]),
        c if c.starts_with("RETR") => Reply::Last(b"+OK 40 octets\r\nSubject: cut\r\n\r\nno end in sight\r\n".to_vec()),
        _ => ok(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let out = pull(
        &ar,
        port,
        &["--insecure-plaintext", "--retries", "0", "--delete-after-archive"],
    );
    let seen = server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&format!("127.0.0.1:{port}")) && e.contains("RETR 1"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    assert!(
        seen.iter().all(|l| !l.to_ascii_uppercase().starts_with("DELE")),
        "{seen:?}"
    );
    assert_eq!(common::stat_u64(&ar, "messages"), 0);
}

/// Issue 5, item 4 (second half): bytes pushed after the STLS `+OK` before the TLS
/// handshake are discarded (scripted server), and CAPA is asked again over TLS.
#[test]
fn bytes_injected_after_stls_ok_are_discarded() {
    use common::dovecot::make_certs;
    use common::fake_imap::{read_line, spawn_once, tls_server_config};
    use std::io::Write;
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let cfg = tls_server_config(certs.path());
    let (port, server) = spawn_once(move |mut s| {
        let mut seen = Vec::new();
        s.write_all(b"+OK POP3 ready\r\n").unwrap();
        // Plaintext: CAPA, then STLS answered together with an injected "session".
        let l = read_line(&mut s).unwrap();
        seen.push(l);
        s.write_all(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n").unwrap();
        let l = read_line(&mut s).unwrap();
        seen.push(l);
        s.write_all(b"+OK begin TLS\r\n+OK injected\r\n+OK\r\n1 evil\r\n.\r\n")
            .unwrap();
        let conn = rustls::ServerConnection::new(cfg).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        seen.push("--- TLS ---".into());
        while let Some(l) = read_line(&mut tls) {
            seen.push(l.clone());
            let up = l.to_ascii_uppercase();
            let reply: &[u8] = if up == "CAPA" {
                b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"
            } else if up == "UIDL" || up == "LIST" {
                b"+OK\r\n.\r\n"
            } else {
                b"+OK\r\n"
            };
            if tls.write_all(reply).is_err() || up == "QUIT" {
                break;
            }
        }
        seen
    });
    let tmp = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.pem");
    let out = common::cmd(
        &tmp.path().join("a"),
        &[
            "pull",
            &format!("pop3://eve@127.0.0.1:{port}"),
            "--password-env",
            "P",
            "--tls-ca",
            ca.to_str().unwrap(),
        ],
    )
    .env("P", PW)
    .output()
    .unwrap();
    let seen = server.join().unwrap();
    assert!(
        out.status.success(),
        "{}\n{seen:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after: Vec<&String> = seen.iter().skip_while(|l| *l != "--- TLS ---").collect();
    assert_eq!(after.get(1).map(|s| s.as_str()), Some("CAPA"), "{seen:?}");
    assert!(after.iter().any(|l| l.starts_with("USER eve")), "{seen:?}");
    // Before TLS, nothing but CAPA and STLS.
    assert_eq!(&seen[..2], &["CAPA".to_string(), "STLS".to_string()]);
}

/// Issue 5, item 5 (part): duplicate UIDLs are not trusted — both messages are
/// archived (by content) and neither is deleted, even with --delete-after-archive.
#[test]
fn duplicate_uidls_are_archived_by_content_and_never_deleted() {
    use common::fake_pop3::{lines, ok, pull, retr, spawn_pop3};
    let bodies = [
        b"Subject: one\r\n\r\nfirst\r\n".to_vec(),
        b"Subject: two\r\n\r\nsecond\r\n".to_vec(),
    ];
    let list = [format!("1 {}", bodies[0].len()), format!("2 {}", bodies[1].len())];
    let (port, server) = spawn_pop3(move |cmd| match cmd {
        "CAPA" => lines(&["USER", "UIDL"]),
        "UIDL" => lines(&["1 same", "2 same"]),
        "LIST" => lines(&[&list[0], &list[1]]),
        c if c.starts_with("RETR ") => retr(&bodies[c[5..].trim().parse::<usize>().unwrap() - 1]),
        _ => ok(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let out = pull(&ar, port, &["--insecure-plaintext", "--delete-after-archive", "--json"]);
    let seen = server.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::stat_u64(&ar, "messages"), 2);
    assert_eq!(common::stat_u64(&ar, "placements"), 2);
    assert!(
        seen.iter().all(|l| !l.to_ascii_uppercase().starts_with("DELE")),
        "{seen:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("UIDL not trusted"));
}

/// Issue 5, item 5 (part): `-ERR` for one RETR mid-session: the others are archived
/// (and deleted with --delete-after-archive), the refused one stays on the server and
/// is reported; the exit code says something failed.
#[test]
fn err_for_one_message_mid_session_is_reported_and_it_stays() {
    use common::fake_pop3::{lines, ok, pull, retr, spawn_pop3, Reply};
    let body = |n: usize| format!("Subject: m{n}\r\n\r\nbody {n}\r\n").into_bytes();
    let list: Vec<String> = (1..=3).map(|n| format!("{n} {}", body(n).len())).collect();
    let (port, server) = spawn_pop3(move |cmd| match cmd {
        "CAPA" => lines(&["USER", "UIDL", "PIPELINING"]),
        "UIDL" => lines(&["1 u1", "2 u2", "3 u3"]),
        "LIST" => lines(&[&list[0], &list[1], &list[2]]),
        "RETR 2" => Reply::Send(b"-ERR message 2 cannot be read\r\n".to_vec()),
        c if c.starts_with("RETR ") => retr(&body(c[5..].trim().parse().unwrap())),
        _ => ok(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let out = pull(&ar, port, &["--insecure-plaintext", "--delete-after-archive", "--json"]);
    let seen = server.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = s["folders"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(err.contains("RETR 2") && err.contains("cannot be read"), "{s}");
    assert_eq!(common::stat_u64(&ar, "messages"), 2);
    let deles: Vec<&String> = seen.iter().filter(|l| l.starts_with("DELE")).collect();
    assert_eq!(deles, vec!["DELE 1", "DELE 3"], "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("QUIT"));
}

/// Three messages served by a scripted server without UIDL; `top` says whether it
/// answers TOP (and lists it in CAPA, which it answers only when `top` is set).
fn no_uidl_server(top: bool) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use common::fake_pop3::{lines, ok, retr, spawn_pop3, Reply};
    let body = |n: usize| format!("Subject: m{n}\r\nMessage-ID: <{n}@x>\r\n\r\nbody {n}\r\n").into_bytes();
    let list: Vec<String> = (1..=3).map(|n| format!("{n} {}", body(n).len())).collect();
    let err = || Reply::Send(b"-ERR unknown command\r\n".to_vec());
    spawn_pop3(move |cmd| match cmd {
        "CAPA" if top => lines(&["USER", "TOP"]),
        "CAPA" | "UIDL" => err(),
        "LIST" => lines(&[&list[0], &list[1], &list[2]]),
        c if c.starts_with("TOP ") && top => {
            let n: usize = c[4..].split(' ').next().unwrap().parse().unwrap();
            let b = body(n);
            let end = b.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            retr(&b[..end])
        }
        c if c.starts_with("TOP ") => err(),
        c if c.starts_with("RETR ") => retr(&body(c[5..].trim().parse().unwrap())),
        _ => ok(),
    })
}

fn commands(seen: &[String], verb: &str) -> usize {
    seen.iter().filter(|l| l.starts_with(verb)).count()
}

/// A server without UIDL but with TOP: messages are told apart by a hash of their
/// header (with a warning); a second run retrieves nothing; deletion fetches the
/// archived messages again first, so only bytes known to be archived are deleted.
#[test]
fn no_uidl_falls_back_to_header_hashes_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let run = |extra: &[&str]| {
        let (port, server) = no_uidl_server(true);
        let mut args = vec!["--insecure-plaintext", "--json"];
        args.extend_from_slice(extra);
        let out = common::fake_pop3::pull(&ar, port, &args);
        let seen = server.join().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (s, seen, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (s, seen, err) = run(&[]);
    assert_eq!(s["total"]["fetched"], 3, "{s}");
    assert!(err.contains("does not support UIDL"), "{err}");
    assert_eq!(commands(&seen, "TOP"), 3);
    assert_eq!(common::stat_u64(&ar, "messages"), 3);
    let (s, seen, _) = run(&[]);
    assert_eq!(s["total"]["fetched"], 0, "{s}");
    assert_eq!(commands(&seen, "RETR"), 0, "{seen:?}");
    let (s, seen, _) = run(&["--delete-after-archive"]);
    assert_eq!(s["total"]["fetched"], 3, "{s}");
    assert_eq!(s["total"]["new_messages"], 0, "{s}");
    assert_eq!(s["total"]["deleted_on_server"], 3, "{s}");
    let first_dele = seen.iter().position(|l| l.starts_with("DELE")).unwrap();
    assert!(seen.iter().rposition(|l| l.starts_with("RETR")).unwrap() < first_dele);
    assert_eq!(common::stat_u64(&ar, "messages"), 3);
    assert_eq!(common::stat_u64(&ar, "placements"), 3);
    common::ok(&ar, &["verify"]);
}

/// Neither UIDL nor TOP (nor CAPA): every run retrieves everything, by content, and
/// the archive stores each message once.
#[test]
fn no_uidl_no_top_identifies_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    for round in 0..2 {
        let (port, server) = no_uidl_server(false);
        let out = common::fake_pop3::pull(&ar, port, &["--insecure-plaintext", "--json"]);
        let seen = server.join().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(s["total"]["fetched"], 3, "round {round}: {s}");
        assert_eq!(s["total"]["new_messages"], if round == 0 { 3 } else { 0 }, "{s}");
        assert_eq!(commands(&seen, "RETR"), 3);
        assert!(String::from_utf8_lossy(&out.stderr).contains("neither UIDL nor TOP"));
    }
    assert_eq!(common::stat_u64(&ar, "messages"), 3);
    assert_eq!(common::stat_u64(&ar, "placements"), 3);
}

/// Issue 5, item 5 (part): over-long lines. A status line beyond the limit is a clear
/// error and nothing is stored or deleted; a message with a 300 kB line is archived
/// byte for byte (message lines are not status lines).
#[test]
fn over_long_lines() {
    use common::fake_pop3::{lines, ok, retr, spawn_pop3, Reply};
    let tmp = tempfile::tempdir().unwrap();
    // An endless "status line".
    let (port, server) = spawn_pop3(|cmd| match cmd {
        "CAPA" => lines(&["USER", "UIDL"]),
        "LIST" => lines(&[]),
        "UIDL" => Reply::Last(vec![b'+'; 1 << 20]),
        _ => ok(),
    });
    let ar = tmp.path().join("a");
    let out = common::fake_pop3::pull(
        &ar,
        port,
        &["--insecure-plaintext", "--retries", "0", "--delete-after-archive"],
    );
    let seen = server.join().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("longer than 4096 bytes") && e.contains("UIDL"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(commands(&seen, "DELE"), 0);
    // A UIDL listing line far too long: the same.
    let long = format!("1 {}", "u".repeat(10_000));
    let (port, server) = spawn_pop3(move |cmd| match cmd {
        "CAPA" => lines(&["USER", "UIDL"]),
        "LIST" => lines(&[]),
        "UIDL" => lines(&[&long]),
        _ => ok(),
    });
    let out = common::fake_pop3::pull(&ar, port, &["--insecure-plaintext", "--retries", "0"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than 4096 bytes"));
    // A long line inside a message is the message's business.
    let mut body = b"Subject: wide\r\n\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'w', 300_000));
    body.extend_from_slice(b"\r\n.dot-started line\r\n");
    let b2 = body.clone();
    let size = format!("1 {}", body.len());
    let (port, server) = spawn_pop3(move |cmd| match cmd {
        "CAPA" => lines(&["USER", "UIDL"]),
        "UIDL" => lines(&["1 wide"]),
        "LIST" => lines(&[&size]),
        "RETR 1" => retr(&b2),
        _ => ok(),
    });
    let out = common::fake_pop3::pull(&ar, port, &["--insecure-plaintext"]);
    server.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = mailvault::archive::Archive::open_read_only(&ar).unwrap();
    let id = mailvault::model::Hash32::of(&body);
    assert_eq!(a.message_ids().unwrap(), vec![id]);
    assert_eq!(a.get_raw(&id).unwrap(), body);
}

/// `--dry-run` lists what would be fetched and deleted and changes nothing: the
/// server keeps every message, the archive is not written (and not created).
#[test]
fn dry_run_lists_the_plan_and_changes_nothing() {
    let d = Dovecot::start();
    d.add_user("dora", PW);
    let msgs = sample(15);
    d.load("dora", "INBOX", &msgs[..10]);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    // No archive yet: everything would be fetched, and no archive is created.
    let v = pop3_json(&ar, &d, "dora", &["--dry-run"]);
    assert_eq!(v["fetch"].as_array().unwrap().len(), 10, "{v}");
    assert_eq!(v["delete"].as_array().unwrap().len(), 0, "{v}");
    assert!(!ar.exists());
    pop3_json(&ar, &d, "dora", &[]);
    d.load("dora", "INBOX", &msgs[10..]);
    let contents = || {
        let mut v: serde_json::Value = serde_json::from_str(&common::ok(&ar, &["stats", "--json"])).unwrap();
        v.as_object_mut().unwrap().remove("disk_bytes");
        v
    };
    let before = contents();
    let v = pop3_json(&ar, &d, "dora", &["--dry-run", "--delete-after-archive"]);
    assert_eq!(v["on_server"], 15, "{v}");
    assert_eq!(v["already_archived"], 10, "{v}");
    assert_eq!(v["fetch"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(v["delete"].as_array().unwrap().len(), 15, "{v}");
    assert_eq!(messages_on_server(&d, "dora"), 15);
    assert_eq!(contents(), before);
    // The table form names the messages.
    let url = format!("pop3s://dora@127.0.0.1:{}", d.pop3s);
    let out = pop3(&ar, &d, &url, &["--dry-run", "--delete-older-than", "0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("would fetch 5 messages") && text.contains("would delete 10 messages"),
        "{text}"
    );
    assert_eq!(messages_on_server(&d, "dora"), 15);
}

/// `--delete-older-than DAYS` deletes archived messages first archived at least DAYS
/// ago (the age Thunderbird's and getmail's "leave on server for N days" use), and
/// never what this run fetched.
#[test]
fn delete_older_than_counts_from_first_archived() {
    let d = Dovecot::start();
    d.add_user("olga", PW);
    d.load("olga", "INBOX", &sample(10));
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let s = pop3_json(&ar, &d, "olga", &["--delete-older-than", "0"]);
    assert_eq!(s["total"]["fetched"], 10, "{s}");
    let deleted = |s: &serde_json::Value| s["total"]["deleted_on_server"].as_u64().unwrap_or(0);
    assert_eq!(deleted(&s), 0, "fetched by this run: {s}");
    let s = pop3_json(&ar, &d, "olga", &["--delete-older-than", "1"]);
    assert_eq!(deleted(&s), 0, "archived less than a day ago: {s}");
    assert_eq!(messages_on_server(&d, "olga"), 10);
    let s = pop3_json(&ar, &d, "olga", &["--delete-older-than", "0"]);
    assert_eq!(s["total"]["deleted_on_server"], 10, "{s}");
    assert_eq!(messages_on_server(&d, "olga"), 0);
    assert_eq!(common::stat_u64(&ar, "messages"), 10);
}

/// APOP against Dovecot (which offers it when `apop` is an auth mechanism): used
/// by default on a plaintext connection, required by `--apop`; `--apop` against a
/// server that does not offer it is refused before any password is sent.
#[test]
fn apop_login() {
    let d = Dovecot::start_with("auth_mechanisms = plain login apop\n");
    d.add_user("abe", PW);
    d.load("abe", "INBOX", &sample(3));
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let plain = format!("pop3://abe@127.0.0.1:{}", d.pop3);
    let out = pop3(&ar, &d, &plain, &["--insecure-plaintext"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secure = format!("pop3s://abe@127.0.0.1:{}", d.pop3s);
    let out = pop3(&ar, &d, &secure, &["--apop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::stat_u64(&ar, "messages"), 3);
    let log = d.log();
    assert_eq!(log.matches("method=APOP").count(), 2, "{log}");
    // A server without APOP.
    let plain_only = Dovecot::start();
    plain_only.add_user("abe", PW);
    let url = format!("pop3s://abe@127.0.0.1:{}", plain_only.pop3s);
    let out = pop3(&ar, &plain_only, &url, &["--apop"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no APOP timestamp"));
    assert!(!plain_only.log().contains("user=<abe>"), "{}", plain_only.log());
}
