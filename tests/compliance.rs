//! An archive an organisation can answer for: retention policies and `purge`,
//! legal holds, the signed change log (`verify --chain`, `attest`), and the access
//! log (`audit`). Every check runs the real binary on archives made here; the
//! clock is set with `MAILVAULT_NOW`, and what should expire is computed here,
//! independently of the code under test.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Months, TimeZone, Utc};
use common::{cmd, ok, run};
use mailvault::model::Hash32;

/// The moment every purge here is weighed at.
const NOW: &str = "2026-12-01T00:00:00Z";

/// One generated message and what the oracle needs to know of it.
#[derive(Clone, Debug)]
struct Msg {
    id: String,
    date: DateTime<Utc>,
    spam: bool,
    from_x: bool,
    raw_len: u64,
}

/// Deterministic words, so that messages compress like text but differ: a few
/// common words and many made of pseudo-random letters.
fn words(seed: u64, n: usize) -> String {
    const COMMON: [&str; 8] = [
        "the", "meeting", "budget", "review", "please", "regards", "invoice", "contract",
    ];
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        x >> 33
    };
    (0..n)
        .map(|_| {
            let r = next();
            if r % 3 == 0 {
                COMMON[(r / 3 % 8) as usize].to_string()
            } else {
                (0..3 + r % 6).map(|_| char::from(b'a' + (next() % 26) as u8)).collect()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The shared attachment some messages carry (deduplicated into one part).
fn attachment() -> String {
    let bytes: Vec<u8> = (0..12_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    common::base64_lines(&bytes)
}

/// `n` messages with `Date:` headers spread over 20 years before [`NOW`], every
/// fourth in Spam, every seventh from x@example.org, every tenth with the shared
/// attachment. Written as .eml files under `dir/inbox` and `dir/spam`.
fn corpus(dir: &Path, n: usize, salt: &str) -> Vec<Msg> {
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let span = 20 * 365 * 86_400i64;
    let att = attachment();
    let mut out = Vec::new();
    for i in 0..n {
        let date = now - chrono::Duration::seconds(span * i as i64 / n as i64 + 3_600);
        let spam = i % 4 == 1;
        let from_x = i % 7 == 3;
        let from = if from_x {
            "x@example.org"
        } else {
            "colleague@example.com"
        };
        let body = words(i as u64, 120);
        let raw = if i % 10 == 5 {
            format!(
                "From: {from}\r\nTo: me@example.com\r\nSubject: {salt} report {i}\r\nDate: {}\r\nMessage-ID: <{salt}-{i}@t>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n--b\r\nContent-Type: application/octet-stream; name=\"r.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{att}\r\n--b--\r\n",
                date.to_rfc2822()
            )
        } else {
            format!(
                "From: {from}\r\nTo: me@example.com\r\nSubject: {salt} note {i}\r\nDate: {}\r\nMessage-ID: <{salt}-{i}@t>\r\n\r\n{body}\r\n",
                date.to_rfc2822()
            )
        };
        let folder = dir.join(if spam { "spam" } else { "inbox" });
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{i:05}.eml")), &raw).unwrap();
        out.push(Msg {
            id: Hash32::of(raw.as_bytes()).to_hex(),
            date,
            spam,
            from_x,
            raw_len: raw.len() as u64,
        });
    }
    out
}

/// An archive with the corpus imported: `inbox` into INBOX, `spam` into Spam.
fn archive_with(tmp: &Path, n: usize) -> (PathBuf, Vec<Msg>) {
    let archive = tmp.join("archive");
    let msgs = corpus(&tmp.join("mail"), n, "c");
    for (dir, folder) in [("inbox", "INBOX"), ("spam", "Spam")] {
        ok(
            &archive,
            &[
                "import",
                "--account",
                "corp",
                "--folder",
                folder,
                tmp.join("mail").join(dir).to_str().unwrap(),
            ],
        );
    }
    (archive, msgs)
}

fn at_now(archive: &Path, args: &[&str]) -> Command {
    let mut c = cmd(archive, args);
    c.env("MAILVAULT_NOW", NOW);
    c
}

fn json(c: Command, what: &str) -> serde_json::Value {
    common::json_of(c, what)
}

fn ids_in(v: &serde_json::Value) -> BTreeSet<String> {
    v["plan"]["expired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn all_ids(archive: &Path) -> BTreeSet<String> {
    ok(archive, &["search", "--format", "ids", "--limit", "0", "*"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `date + months` on the calendar (the oracle's own arithmetic).
fn plus_months(date: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    date.checked_add_months(Months::new(months)).unwrap()
}

/// What must expire under "90 days on Spam, 10 years on everything" (from the
/// Date header), with `held` messages kept: a message is kept while any
/// matching policy still covers it.
fn oracle(msgs: &[Msg], held: impl Fn(&Msg) -> bool) -> BTreeSet<String> {
    let now: DateTime<Utc> = NOW.parse().unwrap();
    msgs.iter()
        .filter(|m| !held(m))
        .filter(|m| {
            let mut end = plus_months(m.date, 120);
            if m.spam {
                end = end.max(m.date + chrono::Duration::days(90));
            }
            end <= now
        })
        .map(|m| m.id.clone())
        .collect()
}

/// 90 days on Spam, from the Date header.
fn spam_policy(archive: &Path) {
    let args = [
        "retention",
        "set",
        "spam",
        "--query",
        "folder:Spam",
        "--keep",
        "90d",
        "--from",
        "date",
    ];
    ok(archive, &args);
}

fn set_policies(archive: &Path) {
    spam_policy(archive);
    ok(
        archive,
        &[
            "retention",
            "set",
            "all",
            "--query",
            "*",
            "--keep",
            "10y",
            "--from",
            "date",
        ],
    );
}

fn pack_bytes(archive: &Path) -> u64 {
    common::stat_u64(archive, "pack_bytes")
}

fn verify_chain_clean(archive: &Path) {
    let out = run(archive, &["verify", "--chain"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify --chain: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("change log") && text.ends_with("clean\n"), "{text}");
}

#[test]
fn purge_removes_exactly_what_retention_let_expire_and_compact_reclaims_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, msgs) = archive_with(tmp.path(), 240);
    set_policies(&archive);
    let listed = ok(&archive, &["retention", "list"]);
    assert!(
        listed.contains("spam: keep 90d from date") && listed.contains("all: keep 10y"),
        "{listed}"
    );
    let expected = oracle(&msgs, |_| false);
    assert!(
        expected.len() > 90 && expected.len() < 150,
        "the corpus spans 20 years: {}",
        expected.len()
    );

    let dry = json(at_now(&archive, &["purge", "--dry-run", "--json"]), "purge --dry-run");
    assert_eq!(ids_in(&dry), expected, "the dry run lists exactly the expired set");
    assert!(dry.get("removed").is_none());
    assert_eq!(all_ids(&archive).len(), msgs.len(), "a dry run removes nothing");
    let human = stdout(at_now(&archive, &["purge", "--dry-run"]));
    assert!(
        human.contains("under policy all") && human.contains("would be removed"),
        "{human}"
    );

    // A copy that is not purged shows what compaction alone does.
    let control = tmp.path().join("control");
    common::copy_dir(&archive, &control);

    let purged = json(at_now(&archive, &["purge", "--json"]), "purge");
    assert_eq!(ids_in(&purged), expected);
    assert_eq!(purged["removed"]["messages"], expected.len() as u64);
    let left = all_ids(&archive);
    let want: BTreeSet<String> = msgs
        .iter()
        .map(|m| m.id.clone())
        .filter(|i| !expected.contains(i))
        .collect();
    assert_eq!(left, want, "search shows exactly what was kept");
    for id in expected.iter().take(3) {
        let out = run(&archive, &["show", id]);
        assert!(!out.status.success(), "a purged message is gone");
    }
    // A message that shared its attachment with purged ones still reads back whole.
    let kept_with_attachment = msgs
        .iter()
        .enumerate()
        .find(|(i, m)| i % 10 == 5 && want.contains(&m.id))
        .unwrap()
        .1;
    let raw = common::stdout_of(
        cmd(&archive, &["show", "--raw", &kept_with_attachment.id]),
        "show --raw",
    );
    assert_eq!(Hash32::of(raw.as_bytes()).to_hex(), kept_with_attachment.id);

    // The change log says why each went: the policy, when its period ended, and
    // the moment weighed.
    let logged: HashMap<String, (String, i64)> = log_records(&db(&archive))
        .iter()
        .flat_map(|(_, v)| {
            let r = mailvault::evidence::LogRecord::decode(v).unwrap();
            mailvault::evidence::ChangeRecord::decode(&r.body).unwrap().items
        })
        .filter_map(|i| match i {
            mailvault::evidence::Item::MessageExpired { message, why } => {
                Some((message.to_hex(), (why.policy, why.weighed_at)))
            }
            _ => None,
        })
        .collect();
    let weighed = NOW.parse::<DateTime<Utc>>().unwrap().timestamp();
    assert_eq!(logged.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(
        logged.values().all(|(p, at)| p == "all" && *at == weighed),
        "{logged:?}"
    );

    ok(&archive, &["compact"]);
    ok(&control, &["compact"]);
    let (after, without_purge) = (pack_bytes(&archive), pack_bytes(&control));
    let purged_raw: u64 = msgs
        .iter()
        .filter(|m| expected.contains(&m.id))
        .map(|m| m.raw_len)
        .sum();
    let total_raw: u64 = msgs.iter().map(|m| m.raw_len).sum();
    let share = purged_raw as f64 / total_raw as f64;
    let dropped = (without_purge - after) as f64 / without_purge as f64;
    eprintln!("compacted packs: {after} bytes purged, {without_purge} not; dropped {dropped:.3}, share {share:.3}");
    assert!(
        (dropped - share).abs() < 0.05,
        "compacted packs shrank by {dropped:.2} of their bytes; the purged messages were {share:.2} of the mail"
    );
    let v = ok(&archive, &["verify"]);
    assert!(v.contains("clean"), "{v}");
    verify_chain_clean(&archive);
}

fn stdout(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_legal_hold_survives_purges_until_released() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, msgs) = archive_with(tmp.path(), 140);
    set_policies(&archive);
    ok(
        &archive,
        &[
            "hold",
            "add",
            "case-7",
            "--query",
            "from:x@example.org",
            "--reason",
            "litigation 7",
        ],
    );
    let holds = ok(&archive, &["hold", "list"]);
    assert!(holds.contains("case-7") && holds.contains("litigation 7"), "{holds}");
    let x: BTreeSet<String> = msgs.iter().filter(|m| m.from_x).map(|m| m.id.clone()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.from_x && m.spam && oracle(&msgs, |_| false).contains(&m.id)),
        "the corpus has expired Spam from x"
    );
    // Search and show say what is held, and by what.
    let held: BTreeSet<String> = ok(&archive, &["search", "--format", "ids", "--limit", "0", "is:held"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(held, x);
    let by_name = ok(&archive, &["search", "--count", "hold:case-7"]);
    assert_eq!(by_name.trim(), x.len().to_string());
    let shown = ok(&archive, &["show", x.iter().next().unwrap()]);
    assert!(shown.contains("legal hold: case-7"), "{shown}");
    let unknown = run(&archive, &["search", "hold:nope"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no legal hold named \"nope\""));

    let first = json(at_now(&archive, &["purge", "--json"]), "purge");
    let expected = oracle(&msgs, |m| m.from_x);
    assert_eq!(ids_in(&first), expected);
    assert!(first["plan"]["held_past_retention"].as_u64().unwrap() > 0);
    let left = all_ids(&archive);
    assert!(x.is_subset(&left), "no held message was purged, in Spam or not");

    ok(&archive, &["hold", "release", "case-7"]);
    assert!(ok(&archive, &["hold", "list"]).trim().is_empty());
    let second = json(at_now(&archive, &["purge", "--json"]), "purge");
    let now_expired: BTreeSet<String> = oracle(&msgs, |_| false).difference(&expected).cloned().collect();
    assert!(!now_expired.is_empty());
    assert_eq!(ids_in(&second), now_expired, "released, x's expired messages go");
    assert!(all_ids(&archive).is_disjoint(&now_expired));
    verify_chain_clean(&archive);
}

#[test]
fn a_policy_that_leaves_spam_out_lets_spam_go_after_ninety_days() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, msgs) = archive_with(tmp.path(), 80);
    spam_policy(&archive);
    ok(
        &archive,
        &[
            "retention",
            "set",
            "rest",
            "--query",
            "NOT folder:Spam",
            "--keep",
            "10y",
            "--from",
            "date",
        ],
    );
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let expected: BTreeSet<String> = msgs
        .iter()
        .filter(|m| {
            let months = if m.spam { None } else { Some(120) };
            let end = months.map_or(m.date + chrono::Duration::days(90), |n| plus_months(m.date, n));
            end <= now
        })
        .map(|m| m.id.clone())
        .collect();
    let dry = json(at_now(&archive, &["purge", "--dry-run", "--json"]), "purge --dry-run");
    assert_eq!(ids_in(&dry), expected);
    let young_spam = msgs
        .iter()
        .filter(|m| m.spam && m.date + chrono::Duration::days(90) <= now)
        .count();
    assert!(young_spam > 0 && expected.len() > young_spam / 2);
    // Removing a policy: what only it covered is kept forever.
    ok(&archive, &["retention", "remove", "spam"]);
    let dry = json(at_now(&archive, &["purge", "--dry-run", "--json"]), "purge --dry-run");
    assert!(ids_in(&dry)
        .iter()
        .all(|id| msgs.iter().any(|m| m.id == *id && !m.spam)));
    let bad = run(&archive, &["retention", "set", "x", "--query", "*", "--keep", "0d"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("retention period \"0d\""));
}

// ---- tamper evidence --------------------------------------------------------

/// A small archive with several change records (four imports, a policy, a hold).
fn history(tmp: &Path) -> PathBuf {
    let archive = tmp.join("archive");
    let msgs = corpus(&tmp.join("mail"), 60, "t");
    let _ = msgs;
    for (dir, folder) in [
        ("inbox", "INBOX"),
        ("spam", "Spam"),
        ("inbox", "Copies"),
        ("spam", "Junk"),
    ] {
        ok(
            &archive,
            &[
                "import",
                "--account",
                "t",
                "--folder",
                folder,
                tmp.join("mail").join(dir).to_str().unwrap(),
            ],
        );
    }
    ok(&archive, &["retention", "set", "all", "--query", "*", "--keep", "10y"]);
    ok(&archive, &["hold", "add", "h", "--query", "from:x@example.org"]);
    archive
}

fn db(archive: &Path) -> rocksdb::DB {
    let path = archive.join("db");
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).unwrap();
    rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, cfs).unwrap()
}

fn log_records(d: &rocksdb::DB) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cf = d.cf_handle("change_log").unwrap();
    d.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// `verify --chain` fails (exit 3) and says each of `expected`.
fn verify_chain_finds(archive: &Path, expected: &[&str]) {
    let out = run(archive, &["verify", "--chain"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for e in expected {
        assert!(text.contains(e), "{e:?} not in:\n{text}");
    }
}

#[test]
fn every_kind_of_tampering_is_named_by_verify_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = history(tmp.path());
    verify_chain_clean(&archive);
    let copy = |name: &str| {
        let c = tmp.path().join(name);
        common::copy_dir(&archive, &c);
        c
    };
    let records = log_records(&db(&archive));
    assert!(records.len() >= 6, "{} change records", records.len());

    // A byte flipped in a pack: the message whose bytes no longer match is named.
    let flipped = copy("flipped");
    {
        let a = mailvault::archive::Archive::open(&flipped).unwrap();
        let (n, _) = a.pack_records()[0];
        assert!(a.testing_damage_pack(n, 300..301, 0x40).unwrap());
    }
    verify_chain_finds(&flipped, &["message "]);

    // A record removed from the middle.
    let removed = copy("removed");
    {
        let d = db(&removed);
        d.delete_cf(d.cf_handle("change_log").unwrap(), &records[2].0).unwrap();
    }
    verify_chain_finds(&removed, &["change log: records 2 to 2 are missing"]);

    // Two records swapped.
    let swapped = copy("swapped");
    {
        let d = db(&swapped);
        let cf = d.cf_handle("change_log").unwrap();
        d.put_cf(cf, &records[1].0, &records[2].1).unwrap();
        d.put_cf(cf, &records[2].0, &records[1].1).unwrap();
    }
    verify_chain_finds(&swapped, &["change log: record 1 does not follow"]);

    // A record rewritten (who did it) and the chain re-hashed from there, as an
    // attacker with the files but not the key would: the checkpoints say so.
    let rehashed = copy("rehashed");
    {
        let d = db(&rehashed);
        let cf = d.cf_handle("change_log").unwrap();
        let mut prev = mailvault::evidence::LogRecord::decode(&records[2].1).unwrap().hash;
        for (i, (k, v)) in records.iter().enumerate().skip(3) {
            let mut r = mailvault::evidence::LogRecord::decode(v).unwrap();
            if i == 3 {
                let mut c = mailvault::evidence::ChangeRecord::decode(&r.body).unwrap();
                c.by = "nobody".into();
                r.body = c.encode();
            }
            r.hash = mailvault::chain::link(&prev, i as u64, &r.body);
            prev = r.hash;
            d.put_cf(cf, k, r.encode()).unwrap();
        }
    }
    verify_chain_finds(&rehashed, &["change log: record 3 is not what was signed"]);
    let out = String::from_utf8_lossy(&run(&rehashed, &["verify", "--chain"]).stdout).to_string();
    assert!(
        !out.contains("does not follow"),
        "the re-hashed chain itself links up: {out}"
    );

    // A checkpoint from another archive.
    let other = history(&tmp.path().join("other"));
    let foreign = copy("foreign");
    {
        let (o, d) = (db(&other), db(&foreign));
        let (ocf, dcf) = (o.cf_handle("checkpoints").unwrap(), d.cf_handle("checkpoints").unwrap());
        let key = 4u64.to_be_bytes();
        let theirs = o.get_cf(ocf, key).unwrap().unwrap();
        d.put_cf(dcf, key, theirs).unwrap();
    }
    verify_chain_finds(
        &foreign,
        &["the checkpoint at 4 records has a signature that does not verify"],
    );

    // A message record deleted behind the log's back.
    let deleted = copy("deleted");
    let gone = {
        let d = db(&deleted);
        let cf = d.cf_handle("messages").unwrap();
        let (k, _) = d.iterator_cf(cf, rocksdb::IteratorMode::Start).next().unwrap().unwrap();
        d.delete_cf(cf, &k).unwrap();
        Hash32(k.as_ref().try_into().unwrap()).to_hex()
    };
    verify_chain_finds(
        &deleted,
        &[&format!("message {gone}: the change log says the archive holds it")],
    );
}

#[test]
fn an_attested_checkpoint_is_extended_by_later_work_and_an_older_copy_fails_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, _) = archive_with(tmp.path(), 40);
    let older = tmp.path().join("older-db");
    common::copy_dir(&archive.join("db"), &older);
    ok(&archive, &["hold", "add", "h", "--query", "from:x@example.org"]);
    let att = tmp.path().join("attest.json");
    let said = ok(&archive, &["attest", "--out", att.to_str().unwrap()]);
    assert!(said.contains("checkpoint after"), "{said}");
    let attested: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&att).unwrap()).unwrap();
    for k in ["count", "head", "at", "signature", "public_key"] {
        assert!(attested.get(k).is_some(), "{k} in {attested}");
    }
    // 1,000 more messages, in several batches.
    let more = corpus(&tmp.path().join("more"), 1000, "later");
    assert_eq!(more.len(), 1000);
    for dir in ["inbox", "spam"] {
        ok(
            &archive,
            &[
                "import",
                "--account",
                "later",
                tmp.path().join("more").join(dir).to_str().unwrap(),
            ],
        );
    }
    let out = ok(&archive, &["verify", "--chain", "--against", att.to_str().unwrap()]);
    assert!(
        out.contains("attested checkpoint extended") && out.ends_with("clean\n"),
        "{out}"
    );

    // The metadata restored from before the attestation: the attested history is gone.
    std::fs::remove_dir_all(archive.join("db")).unwrap();
    common::copy_dir(&older, &archive.join("db"));
    let out = run(&archive, &["verify", "--chain", "--against", att.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("the attested checkpoint covers"), "{text}");
}

#[test]
fn every_read_is_in_the_access_log_with_who_when_and_what() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, msgs) = archive_with(tmp.path(), 30);
    let user = mailvault::identity::os_user();
    ok(&archive, &["search", "subject:note"]);
    ok(&archive, &["search", "--count", "from:x@example.org"]);
    ok(&archive, &["show", &msgs[0].id]);
    ok(&archive, &["show", "--raw", &msgs[1].id[..12]]);
    let out = tmp.path().join("out");
    ok(
        &archive,
        &[
            "export",
            "--format",
            "eml",
            "--out",
            out.to_str().unwrap(),
            "--query",
            "folder:Spam",
        ],
    );
    ok(
        &archive,
        &[
            "export",
            "--format",
            "mbox",
            "--out",
            tmp.path().join("all").to_str().unwrap(),
        ],
    );
    let audit = json(cmd(&archive, &["audit", "--json"]), "audit");
    assert_eq!(audit["problems"].as_array().unwrap().len(), 0, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    let by_action = |a: &str| entries.iter().filter(|e| e["action"] == a).cloned().collect::<Vec<_>>();
    let searches = by_action("search");
    assert_eq!(searches.len(), 2);
    assert_eq!(searches[0]["query"], "subject:note");
    assert!(
        !searches[0]["ids"].as_array().unwrap().is_empty(),
        "a search logs what it showed"
    );
    assert_eq!(searches[1]["query"], "from:x@example.org");
    let shows = by_action("show");
    assert_eq!(shows.len(), 2);
    assert_eq!(shows[0]["ids"][0], msgs[0].id.as_str());
    assert_eq!(
        shows[1]["ids"][0],
        msgs[1].id.as_str(),
        "a prefix is logged as the full id"
    );
    let exports = by_action("export");
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[0]["query"], "folder:Spam");
    let spam: usize = msgs.iter().filter(|m| m.spam).count();
    assert_eq!(exports[0]["count"], spam as u64);
    assert_eq!(exports[1]["query"], "*");
    for e in entries {
        assert_eq!(e["user"], user.as_str());
        let at = DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
        assert!((Utc::now() - at.with_timezone(&Utc)).num_minutes() < 10);
    }
    // Filters: by user, by time.
    let none = json(cmd(&archive, &["audit", "--json", "--user", "someone-else"]), "audit");
    assert!(none["entries"].as_array().unwrap().is_empty());
    let future = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap().to_rfc3339();
    let later = json(cmd(&archive, &["audit", "--json", "--since", &future]), "audit");
    assert!(later["entries"].as_array().unwrap().is_empty());
    let recent = json(cmd(&archive, &["audit", "--json", "--since", "1h"]), "audit");
    assert_eq!(recent["entries"].as_array().unwrap().len(), entries.len());
    // The log is the owner's alone, and an edited line is found.
    use std::os::unix::fs::PermissionsExt;
    let log = archive.join("access.log");
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&log)
        .unwrap()
        .replace("subject:note", "subject:other");
    std::fs::write(&log, text).unwrap();
    let out = run(&archive, &["audit"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("entry 0 does not follow"));
}

// ---- kill -9 ----------------------------------------------------------------

/// Kills `purge` and `compact` at random moments, round after round: whatever
/// is left opens, verifies (bytes and history), has every held and unexpired
/// message, and no expired message comes back in search once the purge is done.
#[test]
fn killed_purges_and_compactions_lose_nothing_kept_and_resurrect_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (template, msgs) = archive_with(tmp.path(), 600);
    set_policies(&template);
    ok(&template, &["hold", "add", "x", "--query", "from:x@example.org"]);
    let expired = oracle(&msgs, |m| m.from_x);
    let kept: BTreeSet<String> = msgs
        .iter()
        .map(|m| m.id.clone())
        .filter(|i| !expired.contains(i))
        .collect();
    // How long each step takes uncut, so that kills land throughout it.
    let timing = tmp.path().join("timing");
    common::copy_dir(&template, &timing);
    let took: Vec<u64> = [&["purge"][..], &["compact"][..]]
        .iter()
        .map(|step| {
            let t = std::time::Instant::now();
            ok_at_now(&timing, step);
            t.elapsed().as_millis() as u64 + 1
        })
        .collect();
    let rounds = common::crash_rounds();
    let mut landed = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..rounds {
        let archive = tmp.path().join(format!("round-{round}"));
        common::copy_dir(&template, &archive);
        for (step, took) in [&["purge"][..], &["compact"][..]].into_iter().zip(&took) {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let delay = std::time::Duration::from_millis((seed >> 33) % took);
            if common::kill_after(at_now(&archive, step), delay, &archive, round) {
                landed += 1;
            }
            let ids: BTreeSet<String> = {
                let a = mailvault::archive::Archive::open_read_only(&archive).unwrap();
                a.message_ids().unwrap().iter().map(|i| i.to_hex()).collect()
            };
            assert!(
                kept.is_subset(&ids),
                "round {round}: a kept message was lost after killing {step:?}"
            );
            verify_chain_clean(&archive);
            // Finish the purge: exactly the kept set stays, in the archive and in search.
            ok_at_now(&archive, &["purge"]);
        }
        let ids: HashMap<String, ()> = all_ids(&archive).into_iter().map(|i| (i, ())).collect();
        assert_eq!(ids.len(), kept.len(), "round {round}");
        assert!(kept.iter().all(|k| ids.contains_key(k)), "round {round}");
        std::fs::remove_dir_all(&archive).unwrap();
    }
    eprintln!(
        "{landed} of {} kills landed while the command ran (uncut: purge {} ms, compact {} ms)",
        rounds * 2,
        took[0],
        took[1]
    );
    assert!(landed > 0, "no kill landed mid-command");
}

fn ok_at_now(archive: &Path, args: &[&str]) -> String {
    stdout(at_now(archive, args))
}

#[test]
fn a_job_file_declares_retention_and_sets_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    // An account nobody answers for: the run fails, after the archive is opened.
    let [port] = common::dovecot::free_ports::<1>();
    let job = tmp.path().join("keep.toml");
    std::fs::write(
        &job,
        format!(
            "archive = {:?}\n\n[[accounts]]\nurl = \"imaps://u@127.0.0.1:{port}\"\npassword = {{ env = \"NOPE_PW\" }}\n\n[[retention]]\nname = \"everything\"\nquery = \"*\"\nkeep = \"7Y\"\nfrom = \"date\"\n",
            archive.to_str().unwrap()
        ),
    )
    .unwrap();
    let records = |a: &Path| -> String {
        let out = ok(a, &["verify", "--chain"]);
        out.lines().find(|l| l.starts_with("change log:")).unwrap().to_string()
    };
    for _ in 0..2 {
        let out = cmd(&archive, &["run", "--once", job.to_str().unwrap()])
            .env("NOPE_PW", "x")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let listed = ok(&archive, &["retention", "list"]);
    assert!(
        listed.contains("everything: keep 7y from date what matches \"*\""),
        "{listed}"
    );
    assert!(
        records(&archive).starts_with("change log: 1 record,"),
        "{}",
        records(&archive)
    );
}

/// Someone who has the signing key (it is in the archive's directory unless
/// `init --signing-key` put it elsewhere) can re-sign a rewritten history; the
/// log must still justify itself: a purge under a policy the log never set, or
/// weighed at a moment after it ran, is named.
#[test]
fn a_purge_the_log_does_not_justify_is_named_even_when_re_signed() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, _) = archive_with(tmp.path(), 60);
    set_policies(&archive);
    ok_at_now(&archive, &["purge"]);
    verify_chain_clean(&archive);
    let signer = mailvault::archive::signing::Signer::load(&archive.join("keys/signing.key")).unwrap();
    let forge = |dir: &Path, change: &dyn Fn(&mut mailvault::evidence::Expiry)| {
        let d = db(dir);
        let records = log_records(&d);
        let (log, checkpoints) = (d.cf_handle("change_log").unwrap(), d.cf_handle("checkpoints").unwrap());
        let first = records
            .iter()
            .position(|(_, v)| {
                let r = mailvault::evidence::LogRecord::decode(v).unwrap();
                mailvault::evidence::ChangeRecord::decode(&r.body).unwrap().cause == mailvault::evidence::Cause::Purge
            })
            .unwrap();
        let mut prev = if first == 0 {
            mailvault::chain::GENESIS
        } else {
            mailvault::evidence::LogRecord::decode(&records[first - 1].1)
                .unwrap()
                .hash
        };
        for (i, (k, v)) in records.iter().enumerate().skip(first) {
            let mut r = mailvault::evidence::LogRecord::decode(v).unwrap();
            if i == first {
                let mut c = mailvault::evidence::ChangeRecord::decode(&r.body).unwrap();
                for item in &mut c.items {
                    if let mailvault::evidence::Item::MessageExpired { why, .. } = item {
                        change(why);
                    }
                }
                r.body = c.encode();
            }
            r.hash = mailvault::chain::link(&prev, i as u64, &r.body);
            prev = r.hash;
            d.put_cf(log, k, r.encode()).unwrap();
            let cp = signer.checkpoint(i as u64 + 1, r.hash, 1_700_000_000);
            d.put_cf(checkpoints, (i as u64 + 1).to_be_bytes(), cp.encode())
                .unwrap();
        }
        first
    };
    let ghost = tmp.path().join("ghost");
    common::copy_dir(&archive, &ghost);
    let seq = forge(&ghost, &|why| why.policy = "ghost".into());
    verify_chain_finds(
        &ghost,
        &[
            &format!("record {seq} purged message"),
            "under retention policy \"ghost\", which the archive did not have then",
        ],
    );
    let text = String::from_utf8_lossy(&run(&ghost, &["verify", "--chain"]).stdout).to_string();
    assert!(
        !text.contains("signature") && !text.contains("not what was signed"),
        "re-signed: {text}"
    );
    let ahead = tmp.path().join("ahead");
    common::copy_dir(&archive, &ahead);
    forge(&ahead, &|why| why.weighed_at += 400 * 86_400 * 365);
    verify_chain_finds(&ahead, &["before its retention ended"]);
}
