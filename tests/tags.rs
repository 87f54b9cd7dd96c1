//! User tags: set by query, found by `tag:` exactly, kept in the metadata (so a
//! reindex keeps them), carried through maildir keywords, usable in legal holds,
//! and added by the upgrade to archive format 5.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{ok, run};

fn ids(archive: &Path, q: &str) -> BTreeSet<String> {
    ok(archive, &["search", "--format", "ids", "--limit", "0", q])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn tags_set_by_query_are_found_exactly_and_survive_reindex() {
    let tmp = tempfile::tempdir().unwrap();
    let a = common::demo_archive(tmp.path());
    let enron = ids(&a, "folder:enron/sent");
    assert_eq!(enron.len(), 51);
    let said = ok(&a, &["tag", "+case-42", "+todo", "--", "folder:enron/sent"]);
    assert!(
        said.contains("51 messages match") && said.contains("51 changed"),
        "{said}"
    );
    assert_eq!(ids(&a, "tag:case-42"), enron);
    // Exact: neither a prefix nor a longer tag, and case does not matter.
    ok(&a, &["tag", "+case-420", "--", "folder:spamassassin/hard-ham-1"]);
    assert_eq!(ids(&a, "tag:CASE-42"), enron);
    assert!(ids(&a, "tag:case-4").is_empty());
    assert_eq!(ids(&a, "tag:case-420").len(), 50);
    // Combined with other terms, negated, and removed by another query.
    let the = ids(&a, "folder:enron/sent the");
    assert_eq!(ids(&a, "tag:case-42 the"), the);
    assert_eq!(ids(&a, "tag:todo -the").len(), 51 - the.len());
    let said = ok(&a, &["tag", "-todo", "--", "tag:todo the"]);
    assert!(said.contains(&format!("{} changed", the.len())), "{said}");
    assert_eq!(ids(&a, "tag:todo").len(), 51 - the.len());
    // Tagging again changes nothing.
    assert!(ok(&a, &["tag", "+case-42", "--", "folder:enron/sent"]).contains("0 changed"));
    let listed = ok(&a, &["tag", "--list"]);
    assert!(
        listed.contains("      51  case-42") && listed.contains("      50  case-420"),
        "{listed}"
    );
    // Kept in the metadata: a rebuilt index finds the same.
    ok(&a, &["reindex"]);
    assert_eq!(ids(&a, "tag:case-42"), enron);
    assert_eq!(ids(&a, "tag:todo").len(), 51 - the.len());
    // show names them; the message's bytes are untouched.
    let one = enron.iter().next().unwrap();
    assert!(ok(&a, &["show", one]).contains("tags: case-42"));
    assert!(run(&a, &["verify"]).status.success());
    // Not a tag: clear errors, nothing changed.
    for (args, says) in [
        (&["tag", "+a b", "--", "*"][..], "is not a tag"),
        (&["tag", "case", "--", "*"][..], "neither +TAG"),
        (&["search", "tag:a*"][..], "is not a tag"),
    ] {
        let out = run(&a, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(ids(&a, "tag:case-42"), enron);
}

#[test]
fn a_legal_hold_by_tag_covers_the_tagged_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let a = common::demo_archive(tmp.path());
    ok(&a, &["tag", "+litigation", "--", "folder:enron/inbox"]);
    ok(
        &a,
        &["hold", "add", "lit", "--query", "tag:litigation", "--reason", "case 7"],
    );
    assert_eq!(ids(&a, "is:held"), ids(&a, "folder:enron/inbox"));
    let one = ids(&a, "folder:enron/inbox").into_iter().next().unwrap();
    assert!(ok(&a, &["show", &one]).contains("legal hold: lit"));
    // A policy that would expire everything removes nothing the tag holds.
    ok(
        &a,
        &[
            "retention",
            "set",
            "all",
            "--query",
            "*",
            "--keep",
            "1d",
            "--from",
            "date",
        ],
    );
    let plan = ok(&a, &["purge", "--dry-run", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(plan.lines().last().unwrap()).unwrap();
    let expired: BTreeSet<String> = v["plan"]["expired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!expired.is_empty());
    assert!(expired.is_disjoint(&ids(&a, "tag:litigation")));
}

#[test]
fn tags_travel_as_maildir_keywords_and_come_back_on_import() {
    let tmp = tempfile::tempdir().unwrap();
    let a = common::demo_archive(tmp.path());
    ok(&a, &["tag", "+case-42", "--", "folder:enron/sent"]);
    ok(&a, &["tag", "+review", "--", "folder:enron/sent the"]);
    let out = tmp.path().join("out");
    ok(
        &a,
        &[
            "export",
            "--format",
            "maildir",
            "--out",
            out.to_str().unwrap(),
            "--account",
            "demo",
        ],
    );
    // Dovecot's convention: keyword letters in the name, their names in a file.
    let sent = out.join("demo/.enron.sent");
    let keywords = std::fs::read_to_string(sent.join("dovecot-keywords")).unwrap();
    assert_eq!(keywords, "0 case-42\n1 review\n", "{keywords}");
    let names: Vec<String> = std::fs::read_dir(sent.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 51);
    assert!(names.iter().all(|n| n.ends_with('a') || n.ends_with("ab")), "{names:?}");
    assert!(!out.join("demo/.enron.inbox/dovecot-keywords").exists());
    // Imported elsewhere: the same messages carry the same tags.
    let b = tmp.path().join("b");
    ok(
        &b,
        &[
            "import",
            "--account",
            "demo",
            "--folder",
            "enron/sent",
            sent.to_str().unwrap(),
        ],
    );
    assert_eq!(ids(&b, "tag:case-42"), ids(&a, "tag:case-42"));
    assert_eq!(ids(&b, "tag:review"), ids(&a, "tag:review"));
    assert_eq!(ids(&b, "tag:review").len(), ids(&a, "folder:enron/sent the").len());
}

/// `tests/data/index-v4.tar.zst` holds an archive a format-4 build made: the
/// first writable open upgrades it to format 5, and nothing else changes.
#[test]
fn a_format_4_archive_gets_tags_by_the_upgrade() {
    let tmp = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("tar")
        .args(["-I", "zstd -d", "-xf"])
        .arg(common::manifest_dir().join("tests/data/index-v4.tar.zst"))
        .arg("-C")
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(st.success());
    let a = tmp.path().join("archive");
    let marker = || std::fs::read_to_string(a.join("mailvault-archive.toml")).unwrap();
    assert!(marker().contains("format_version = 4"));
    // Read-only, an archive without the tags table has no tags.
    assert!(ids(&a, "tag:x").is_empty());
    ok(&a, &["tag", "+x", "--", "from:ann"]);
    assert!(marker().contains("format_version = 5"), "{}", marker());
    assert_eq!(ids(&a, "tag:x"), ids(&a, "from:ann"));
    assert!(run(&a, &["verify"]).status.success());
    let stats: serde_json::Value = serde_json::from_str(&ok(&a, &["stats", "--json"])).unwrap();
    assert_eq!(stats["messages"], 14);
    assert_eq!(stats["format_version"], 5);
}

/// `replay --tags-as-keywords` into a real Dovecot: every tagged message arrives
/// with its tags as keywords, the others without; without the flag, no keywords.
#[test]
fn replay_sets_tags_as_imap_keywords_when_asked() {
    use common::dovecot::{Dovecot, TEST_PASSWORD as PW};
    let tmp = tempfile::tempdir().unwrap();
    let a = common::demo_archive(tmp.path());
    ok(&a, &["tag", "+case-42", "--", "folder:enron/sent"]);
    ok(&a, &["tag", "+review", "--", "folder:enron/sent the"]);
    let reviewed = ids(&a, "tag:review").len();
    let d = Dovecot::start();
    for user in ["ann", "bob"] {
        d.add_user(user, PW);
    }
    let replay = |user: &str, extra: &[&str]| {
        let mut args = vec![
            "replay".to_string(),
            "--to".into(),
            format!("imaps://{user}@127.0.0.1:{}", d.imaps),
            "--password-env".into(),
            "MV_TEST_PW".into(),
            "--tls-ca".into(),
            d.ca_pem().to_string_lossy().into_owned(),
            "--folder".into(),
            "enron/sent".into(),
            "-q".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = common::cmd(&a, &refs);
        c.env("MV_TEST_PW", PW);
        common::stdout_of(c, "replay")
    };
    replay("ann", &["--tags-as-keywords"]);
    let view = d.server_view("ann", PW);
    assert_eq!(view.len(), 51);
    let with = |k: &str| view.values().filter(|m| m.flags.iter().any(|f| f == k)).count();
    assert_eq!(with("case-42"), 51);
    assert_eq!(with("review"), reviewed);
    replay("bob", &[]);
    let plain = d.server_view("bob", PW);
    assert_eq!(plain.len(), 51);
    assert!(plain
        .values()
        .all(|m| !m.flags.iter().any(|f| f == "case-42" || f == "review")));
}
