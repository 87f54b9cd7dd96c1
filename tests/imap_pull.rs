//! IMAP pull against a real Dovecot started by the test (see common/dovecot.rs):
//! a full pull equals the server, incremental pulls fetch only what changed, a
//! UIDVALIDITY change rebuilds placements without duplicates, two account names
//! share messages, and the TLS rules hold.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::dovecot::{archive_view, assert_same, load_enron, pull_json, sample_messages, Dovecot};
use mailvault::archive::{Archive, PlacementFilter};
use mailvault::model::Hash32;

const PW: &str = common::dovecot::TEST_PASSWORD;

fn messages_in_archive(archive: &Path) -> u64 {
    common::stat_u64(archive, "messages")
}

fn at(i: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_100_000_000 + i * 60)
}

/// Issue 4, item 1: the Enron maildir on the server; after one pull the archive holds
/// exactly the server's messages (BODY[] hash per UID), folders, flags, INTERNALDATE.
#[test]
fn full_pull_equals_the_server() {
    let d = Dovecot::start();
    d.add_user("skilling", PW);
    let loaded = load_enron(&d, "skilling");
    assert_eq!(loaded, 4139);
    let server = d.server_view("skilling", PW);
    assert_eq!(server.len(), 4139);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let s = pull_json(&ar, &d, "skilling", &["--account", "enron"]);
    assert_eq!(s["total"]["fetched"], 4139, "{s}");
    assert_eq!(s["total"]["error"], serde_json::Value::Null);
    assert_same(&server, &archive_view(&ar, "enron"));
    let distinct: std::collections::HashSet<Hash32> = server.values().map(|m| m.hash).collect();
    assert_eq!(messages_in_archive(&ar), distinct.len() as u64);
    // SPECIAL-USE roles are recorded (the test server's config gives them).
    let role = |name: &str| {
        s["folders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["folder"] == name)
            .map(|f| f["special_use"].clone())
    };
    assert_eq!(role("Sent"), Some(serde_json::json!("\\Sent")), "{s}");
    assert_eq!(role("Trash"), Some(serde_json::json!("\\Trash")), "{s}");
    // Per-folder counts equal the server's EXISTS.
    for f in s["folders"].as_array().unwrap() {
        let name = f["folder"].as_str().unwrap();
        let on_server = server.keys().filter(|k| k.0 == name).count() as u64;
        assert_eq!(f["exists"].as_u64().unwrap(), on_server, "{name}");
    }
    // A second pull with nothing changed fetches nothing.
    let again = pull_json(&ar, &d, "skilling", &["--account", "enron"]);
    assert_eq!(again["total"]["fetched"], 0, "{again}");
    assert_eq!(again["total"]["flag_changes"], 0);
    assert_eq!(again["total"]["deleted_at_source"], 0);
    common::ok(&ar, &["verify"]);
    // The index was updated by the pull.
    let hits = common::ok(
        &ar,
        &["search", "account:enron", "--format", "ids", "--limit", "100000"],
    );
    assert_eq!(hits.lines().count() as u64, messages_in_archive(&ar));
}

/// Issue 4, item 2: append 10, change flags on 5, expunge 3 → exactly 10 bodies
/// fetched, 5 flag changes, 3 deleted at source and still exportable. With QRESYNC
/// (Dovecot's default): CHANGEDSINCE and VANISHED.
#[test]
fn incremental_pull_fetches_only_changes() {
    incremental_pull(Dovecot::start());
}

/// The same against a server without CONDSTORE/QRESYNC: all flags compared, expunges
/// by a UID SEARCH diff.
#[test]
fn incremental_pull_without_condstore() {
    incremental_pull(Dovecot::start_with(
        "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ SPECIAL-USE UIDPLUS\n",
    ));
}

fn incremental_pull(d: Dovecot) {
    d.add_user("alice", PW);
    let msgs = sample_messages(60);
    let first: Vec<_> = msgs[..40]
        .iter()
        .enumerate()
        .map(|(i, m)| (m.clone(), "", at(i as u64)))
        .collect();
    d.load("alice", "INBOX", &first[..30]);
    // A non-ASCII folder name travels as modified UTF-7 and is archived decoded.
    d.load("alice", "Entwürfe/Größe", &first[30..]);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let s = pull_json(&ar, &d, "alice", &[]);
    assert_eq!(s["total"]["fetched"], 40, "{s}");
    // Changes on the server.
    let more: Vec<_> = msgs[40..50]
        .iter()
        .enumerate()
        .map(|(i, m)| (m.clone(), "S", at(100 + i as u64)))
        .collect();
    d.load("alice", "INBOX", &more[..6]);
    d.load("alice", "Entwürfe/Größe", &more[6..]);
    d.doveadm(&[
        "flags",
        "add",
        "-u",
        "alice",
        "\\Flagged $Important",
        "mailbox",
        "INBOX",
        "uid",
        "1:3",
    ]);
    d.doveadm(&[
        "flags",
        "add",
        "-u",
        "alice",
        "\\Seen",
        "mailbox",
        "Entwürfe/Größe",
        "uid",
        "1:2",
    ]);
    d.doveadm(&["expunge", "-u", "alice", "mailbox", "INBOX", "uid", "10:12"]);
    let server = d.server_view("alice", PW);
    let s = pull_json(&ar, &d, "alice", &[]);
    assert_eq!(s["total"]["fetched"], 10, "{s}");
    assert_eq!(s["total"]["flag_changes"], 5, "{s}");
    assert_eq!(s["total"]["deleted_at_source"], 3, "{s}");
    let account = "alice@127.0.0.1";
    let view = archive_view(&ar, account);
    assert_same(&server, &view);
    assert_eq!(view.keys().filter(|k| k.0 == "Entwürfe/Größe").count(), 14);
    // The expunged three are still archived and exportable.
    let a = Archive::open_read_only(&ar).unwrap();
    let gone: Vec<_> = a
        .placements(&PlacementFilter {
            accounts: vec![account.into()],
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|p| p.record.deleted_at.is_some())
        .collect();
    drop(a);
    assert_eq!(gone.len(), 3);
    for p in gone {
        let shown = common::cmd(&ar, &["show", "--raw", &p.record.message.to_hex()])
            .output()
            .unwrap();
        assert!(shown.status.success());
        assert_eq!(Hash32::of(&shown.stdout), p.record.message);
    }
}

/// Issue 4, item 3: delete and recreate a folder with the same messages (new
/// UIDVALIDITY): 0 new messages stored, placements rebuilt, no duplicates.
#[test]
fn uidvalidity_change_rebuilds_placements() {
    let d = Dovecot::start();
    d.add_user("bob", PW);
    let msgs: Vec<_> = sample_messages(25)
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m, "S", at(i as u64)))
        .collect();
    d.load("bob", "Lists", &msgs);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    pull_json(&ar, &d, "bob", &[]);
    let before = messages_in_archive(&ar);
    d.doveadm(&["mailbox", "delete", "-u", "bob", "Lists"]);
    std::thread::sleep(Duration::from_millis(1100)); // UIDVALIDITY is a timestamp
    d.load("bob", "Lists", &msgs);
    let server = d.server_view("bob", PW);
    let s = pull_json(&ar, &d, "bob", &[]);
    assert_eq!(s["total"]["new_messages"], 0, "{s}");
    assert_eq!(s["total"]["deleted_at_source"], 25, "{s}");
    assert_eq!(messages_in_archive(&ar), before);
    assert_same(&server, &archive_view(&ar, "bob@127.0.0.1"));
    common::ok(&ar, &["verify"]);
}

/// Issue 4, item 7: one mailbox under two account names: every message stored once,
/// two placements each.
#[test]
fn two_accounts_store_each_message_once() {
    let d = Dovecot::start();
    d.add_user("carol", PW);
    let msgs: Vec<_> = sample_messages(30)
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m, "", at(i as u64)))
        .collect();
    d.load("carol", "INBOX", &msgs);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    pull_json(&ar, &d, "carol", &["--account", "one"]);
    let n = messages_in_archive(&ar);
    let s = pull_json(&ar, &d, "carol", &["--account", "two"]);
    assert_eq!(s["total"]["fetched"], 30);
    assert_eq!(s["total"]["new_messages"], 0, "{s}");
    assert_eq!(messages_in_archive(&ar), n);
    assert_eq!(common::stat_u64(&ar, "placements"), 60);
    assert_eq!(archive_view(&ar, "one").len(), 30);
    assert_eq!(archive_view(&ar, "two").len(), 30);
}

/// Gmail (X-GM-EXT-1): a message already archived from one label's folder is placed
/// in another without being downloaded again — X-GM-MSGID names it. Against a
/// scripted server answering as Gmail does.
#[test]
fn gmail_messages_are_downloaded_once_across_labels() {
    use common::fake_imap::{FakeGmail, GmailMessage};
    let body = |n: u32| {
        format!("From: a@example.com\r\nSubject: gmail {n}\r\nMessage-ID: <g{n}@example.com>\r\n\r\nbody {n}\r\n")
            .into_bytes()
    };
    let m = |uid: u32, gm: u64, flags: &'static str, n: u32| GmailMessage {
        uid,
        gm_msgid: gm,
        flags,
        body: body(n),
    };
    let server = FakeGmail::start(vec![
        (
            "INBOX",
            "\\HasNoChildren",
            vec![
                m(1, 1_278_455_344_230_334_865, "\\Seen", 1),
                m(2, 1_278_455_344_230_334_866, "", 2),
            ],
        ),
        (
            "[Gmail]/All Mail",
            "\\All \\HasNoChildren",
            vec![
                m(10, 1_278_455_344_230_334_865, "\\Seen", 1),
                m(11, 1_278_455_344_230_334_866, "\\Flagged", 2),
                m(12, 1_278_455_344_230_334_867, "", 3),
            ],
        ),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let url = format!("imap://me@127.0.0.1:{}", server.port);
    let run = || {
        let out = common::cmd(
            &ar,
            &[
                "pull",
                &url,
                "--insecure-plaintext",
                "--password-env",
                "PW",
                "--connections",
                "1",
                "--json",
            ],
        )
        .env("PW", "x")
        .output()
        .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let s = run();
    assert_eq!(server.bodies_sent.load(std::sync::atomic::Ordering::SeqCst), 3, "{s}");
    assert_eq!(s["total"]["fetched"], 3, "{s}");
    assert_eq!(s["total"]["new_placements"], 5, "{s}");
    assert_eq!(common::stat_u64(&ar, "messages"), 3);
    assert_eq!(common::stat_u64(&ar, "placements"), 5);
    let view = archive_view(&ar, "me@127.0.0.1");
    let all_mail_11 = &view[&("[Gmail]/All Mail".to_string(), 601, 11)];
    assert_eq!(all_mail_11.flags, vec!["\\Flagged".to_string()]);
    assert_eq!(all_mail_11.hash, view[&("INBOX".to_string(), 600, 2)].hash);
    // Nothing new: nothing downloaded.
    let again = run();
    assert_eq!(again["total"]["fetched"], 0, "{again}");
    assert_eq!(server.bodies_sent.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// A folder deleted on the server: its messages stay archived, their placements are
/// marked deleted at source; if it comes back it is read again and they come back.
#[test]
fn folder_deleted_on_the_server_is_retired_and_can_come_back() {
    let d = Dovecot::start();
    d.add_user("erin", PW);
    let msgs: Vec<_> = sample_messages(8)
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m, "", at(i as u64)))
        .collect();
    d.load("erin", "INBOX", &msgs[..3]);
    d.load("erin", "Projects/Old", &msgs[3..]);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    pull_json(&ar, &d, "erin", &[]);
    let n = messages_in_archive(&ar);
    d.doveadm(&["mailbox", "delete", "-u", "erin", "Projects/Old"]);
    let s = pull_json(&ar, &d, "erin", &[]);
    assert_eq!(s["total"]["deleted_at_source"], 5, "{s}");
    assert_eq!(messages_in_archive(&ar), n);
    assert_same(&d.server_view("erin", PW), &archive_view(&ar, "erin@127.0.0.1"));
    // A pull restricted to other folders leaves nothing more to retire.
    let s = pull_json(&ar, &d, "erin", &["--folder", "INBOX"]);
    assert_eq!(s["total"]["deleted_at_source"], 0, "{s}");
    // Back on the server: read again, no new message stored.
    d.load("erin", "Projects/Old", &msgs[3..]);
    let s = pull_json(&ar, &d, "erin", &[]);
    assert_eq!(s["total"]["new_messages"], 0, "{s}");
    assert_same(&d.server_view("erin", PW), &archive_view(&ar, "erin@127.0.0.1"));
}

/// More connections asked for than the server allows at once: the extra ones are
/// turned away at the greeting (as Gmail does), their folders go to the connections
/// that exist, and the pull completes.
#[test]
fn server_connection_limit_leaves_the_pull_complete() {
    use common::fault_proxy::LimitProxy;
    let d = Dovecot::start();
    d.add_user("frank", PW);
    let msgs: Vec<_> = sample_messages(24)
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m, "", at(i as u64)))
        .collect();
    for (i, chunk) in msgs.chunks(4).enumerate() {
        d.load("frank", &format!("F{i}"), chunk);
    }
    let proxy = LimitProxy::start(d.imap, 2);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let url = format!("imap://frank@127.0.0.1:{}", proxy.port);
    let out = common::dovecot::pull_command(&ar, &url, &d, &["--insecure-plaintext", "--connections", "6", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["total"]["fetched"], 24, "{s}");
    assert!(
        s["folders"].as_array().unwrap().iter().all(|f| f["error"].is_null()),
        "{s}"
    );
    assert_same(&d.server_view("frank", PW), &archive_view(&ar, "frank@127.0.0.1"));
    // The limit was really hit.
    assert!(proxy.refused.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

/// A server with a public (shared) namespace beside the personal one: `pull`
/// takes only personal folders, `--list-folders` shows both with their namespace,
/// and `--namespace shared` pulls the shared ones too, under their whole names.
#[test]
fn shared_folders_are_listed_and_pulled_only_when_asked() {
    let public = "namespace public {\n  type = public\n  separator = /\n  prefix = Public/\n  \
        location = maildir:@DIR@/mail/public\n  subscriptions = no\n  list = children\n}\n";
    let d = Dovecot::start_with(public);
    d.add_user("ken", PW);
    let msgs = sample_messages(5);
    let mine: Vec<_> = msgs[..3]
        .iter()
        .enumerate()
        .map(|(i, m)| (m.clone(), "", at(i as u64)))
        .collect();
    d.load("ken", "INBOX", &mine);
    d.save("ken", "Public/news", &msgs[3]);
    d.save("ken", "Public/news", &msgs[4]);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let folders_of = |s: &serde_json::Value| -> Vec<String> {
        s["folders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["folder"].as_str().unwrap().to_string())
            .collect()
    };

    let s = pull_json(&ar, &d, "ken", &[]);
    let pulled = folders_of(&s);
    assert!(pulled.contains(&"INBOX".to_string()), "{s:#}");
    assert!(!pulled.iter().any(|f| f.starts_with("Public")), "{s:#}");
    let listed = common::stdout_of(
        common::dovecot::pull_command(
            &ar,
            &format!("imaps://ken@127.0.0.1:{}", d.imaps),
            &d,
            &["--list-folders", "--json"],
        ),
        "--list-folders",
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["namespaces"]["shared"][0]["prefix"], "Public/", "{listed:#}");
    let news = listed["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["server_name"] == "Public/news")
        .unwrap_or_else(|| panic!("{listed:#}"));
    assert_eq!((&news["namespace"], &news["pulled"]), (&"shared".into(), &false.into()));

    let s = pull_json(&ar, &d, "ken", &["--namespace", "shared"]);
    assert!(folders_of(&s).contains(&"Public/news".to_string()), "{s:#}");
    let view = archive_view(&ar, "ken@127.0.0.1");
    assert_eq!(view.keys().filter(|(f, _, _)| f == "Public/news").count(), 2);
    assert_eq!(view.len(), 5);
}
