//! Conversation threads, stored in the index as mail arrives: checked on the
//! usrp-users list (2019–2021) against an oracle written apart from our code
//! (`tests/data/threads/oracle.py`, Python's `email` package), and on small
//! hand-made conversations for what arrives late.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use mailvault::model::Hash32;

/// Every message's thread, from `search --json`.
fn threads_by_id(archive: &Path) -> HashMap<String, String> {
    common::ok(archive, &["search", "--json", "--limit", "0", "*"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["thread"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The oracle's group of every file under `dirs`.
fn oracle(dirs: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    let out = Command::new("python3")
        .arg(common::manifest_dir().join("tests/data/threads/oracle.py"))
        .args(dirs)
        .output()
        .expect("python3 runs (scripts/test.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (path, group) = l.split_once('\t').unwrap();
            (PathBuf::from(path), group.to_string())
        })
        .collect()
}

fn id_of(path: &Path) -> String {
    Hash32::of(&std::fs::read(path).unwrap()).to_hex()
}

#[test]
fn usrp_users_threads_agree_with_an_independent_oracle_and_late_replies_join() {
    let Some(list) = common::shared_corpus("usrp-users-list-2019-2021") else {
        return;
    };
    let years: Vec<PathBuf> = ["2019", "2020", "2021"].iter().map(|y| list.join(y)).collect();
    let groups = oracle(&years);
    let mut members: BTreeMap<&str, Vec<&PathBuf>> = BTreeMap::new();
    for (path, g) in &groups {
        members.entry(g).or_default().push(path);
    }
    // Ten threads to check message by message: the three largest, and seven
    // more spread over the rest (by size, then first file).
    let mut by_size: Vec<(&str, &Vec<&PathBuf>)> = members.iter().map(|(g, m)| (*g, m)).collect();
    by_size.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1[0].cmp(b.1[0])));
    let mut chosen: Vec<usize> = vec![0, 1, 2];
    chosen.extend((1..=7).map(|k| k * (by_size.len() - 1) / 8));
    // Held back, to arrive later: the last message of three threads of 3 or more.
    let held: Vec<&PathBuf> = [3, 40, 150].iter().map(|&k| *by_size[k].1.last().unwrap()).collect();
    assert!(by_size[150].1.len() >= 3);

    // Everything but the held-back messages, through links.
    let tmp = tempfile::tempdir().unwrap();
    let links = tmp.path().join("links");
    std::fs::create_dir(&links).unwrap();
    for (n, path) in groups.keys().enumerate() {
        if !held.contains(&path) {
            std::os::unix::fs::symlink(path, links.join(format!("{n:05}.eml"))).unwrap();
        }
    }
    let archive = tmp.path().join("archive");
    let import = |paths: &[&Path]| {
        let mut args = vec!["import", "--account", "usrp", "--folder", "list", "--follow-symlinks"];
        args.extend(paths.iter().map(|p| p.to_str().unwrap()));
        common::ok(&archive, &args);
    };
    import(&[&links]);
    let before = threads_by_id(&archive);
    assert_eq!(before.len(), groups.len() - held.len());

    // A reply arriving later joins its thread: the thread of the others in its
    // oracle group, which grows by one.
    let siblings = |path: &PathBuf| -> Vec<String> {
        members[groups[path].as_str()]
            .iter()
            .filter(|p| **p != path)
            .map(|p| id_of(p))
            .collect()
    };
    let count = |thread: &str| -> usize {
        common::ok(&archive, &["search", "--count", &format!("thread:{thread}")])
            .trim()
            .parse()
            .unwrap()
    };
    let mut was = Vec::new();
    for path in &held {
        let thread = &before[&siblings(path)[0]];
        was.push((thread.clone(), count(thread)));
    }
    import(&held.iter().map(|p| p.as_path()).collect::<Vec<_>>());
    let after = threads_by_id(&archive);
    for (path, (thread, n)) in held.iter().zip(&was) {
        let mine = &after[&id_of(path)];
        for s in siblings(path) {
            assert_eq!(&after[&s], mine, "{} and its thread", path.display());
        }
        assert_eq!(mine, thread, "{}: the thread keeps its id", path.display());
        assert_eq!(count(mine), n + 1, "{}", path.display());
    }

    // The whole list: as many threads as the oracle, and ten the same message
    // for message.
    let ours: BTreeSet<&String> = after.values().collect();
    assert_eq!(ours.len(), members.len(), "thread count");
    assert_eq!(ours.len(), 1519);
    let listed = common::ok(
        &archive,
        &["search", "--threads", "--format", "ids", "--limit", "0", "*"],
    );
    assert_eq!(listed.lines().count(), 1519);
    for k in chosen {
        let (group, files) = by_size[k];
        let want: BTreeSet<String> = files.iter().map(|p| id_of(p)).collect();
        let thread = &after[want.iter().next().unwrap()];
        let got: BTreeSet<String> = after
            .iter()
            .filter(|(_, t)| *t == thread)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(got, want, "oracle group {group} ({} messages)", files.len());
        let shown = common::ok(
            &archive,
            &["search", "--format", "ids", "--limit", "0", &format!("thread:{thread}")],
        );
        assert_eq!(shown.lines().map(str::to_string).collect::<BTreeSet<_>>(), want);
    }

    // Threading read each header from the message's skeleton alone: the same
    // bytes as the rebuilt message's header section, for every message.
    let a = mailvault::archive::Archive::open_read_only(&archive).unwrap();
    for id in a.message_ids().unwrap() {
        let raw = a.get_raw(&id).unwrap();
        let end = mailvault::mime::body_start(&raw).unwrap_or(raw.len());
        assert_eq!(a.get_header(&id).unwrap(), &raw[..end], "{id}");
    }
}

/// A message file: its Message-ID, what it answers, subject and date.
fn mail(dir: &Path, name: &str, id: &str, refs: &str, subject: &str, day: u32) -> PathBuf {
    let refs = if refs.is_empty() {
        String::new()
    } else {
        format!(
            "In-Reply-To: <{}>\r\nReferences: {refs}\r\n",
            refs.rsplit('<').next().unwrap().trim_end_matches('>')
        )
    };
    let text = format!(
        "From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Date: Mon, {day:02} Mar 2026 10:00:00 +0000\r\nMessage-ID: <{id}>\r\n{refs}\r\n{name} text\r\n"
    );
    let path = dir.join(format!("{name}.eml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn one_thread_of(archive: &Path, word: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(common::ok(archive, &["search", "--json", word]).trim()).unwrap();
    v["thread"].as_str().unwrap().to_string()
}

#[test]
fn a_message_that_links_two_threads_joins_them_and_they_stay_joined_after_reindex() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let d = tmp.path();
    // `three` answers `two` only (no References to `one`); `two` arrives last
    // and names `one`: until then they are two threads.
    let one = mail(d, "alpha", "one@x", "", "Plan", 1);
    let three = mail(d, "gamma", "three@x", "<two@x>", "Re: Plan", 3);
    let other = mail(d, "delta", "other@x", "", "Lunch", 4);
    for f in [&one, &three, &other] {
        common::ok(
            &archive,
            &["import", "--account", "a", "--folder", "in", f.to_str().unwrap()],
        );
    }
    assert_ne!(one_thread_of(&archive, "alpha"), one_thread_of(&archive, "gamma"));
    let two = mail(d, "beta", "two@x", "<one@x>", "Re: Plan", 2);
    common::ok(
        &archive,
        &["import", "--account", "a", "--folder", "in", two.to_str().unwrap()],
    );
    let joined = one_thread_of(&archive, "alpha");
    for w in ["beta", "gamma"] {
        assert_eq!(one_thread_of(&archive, w), joined, "{w}");
    }
    assert_ne!(one_thread_of(&archive, "delta"), joined);

    // search --threads: one line for the conversation, dates and count.
    let lines = common::ok(&archive, &["search", "--threads", "--json", "text"]);
    let threads: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(threads.len(), 2);
    let plan = threads.iter().find(|t| t["thread"] == joined.as_str()).unwrap();
    assert_eq!(plan["messages"], 3);
    assert_eq!(plan["matched"], 3);
    assert_eq!(plan["subject"], "Plan");
    assert_eq!(plan["first"], "2026-03-01T10:00:00Z");
    assert_eq!(plan["last"], "2026-03-03T10:00:00Z");
    assert_eq!(plan["participants"], serde_json::json!(["Ann <ann@example.org>"]));
    let table = common::ok(&archive, &["search", "--threads", "text"]);
    assert!(
        table.contains("2026-03-01..2026-03-03") && table.contains("3/3") && table.contains(&joined),
        "{table}"
    );

    // show --thread: all three, oldest first.
    let shown = common::ok(&archive, &["show", "--thread", &joined]);
    let order: Vec<usize> = ["alpha text", "beta text", "gamma text"]
        .iter()
        .map(|w| shown.find(w).unwrap_or_else(|| panic!("{w} in {shown}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{shown}");
    assert!(shown.contains("message 3 of 3"), "{shown}");

    // export --query thread:…: the three messages, byte-exact.
    let out = d.join("out");
    common::ok(
        &archive,
        &[
            "export",
            "--query",
            &format!("thread:{joined}"),
            "--format",
            "mbox",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let mbox: String = walkdir::WalkDir::new(&out)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(mbox.matches("\nMessage-ID: ").count(), 3, "{mbox}");
    assert!(!mbox.contains("delta text"));

    // A rebuilt index threads the same.
    common::ok(&archive, &["reindex"]);
    for w in ["alpha", "beta", "gamma"] {
        assert_eq!(one_thread_of(&archive, w), joined, "{w} after reindex");
    }

    // Not a thread id: a clear usage error.
    let bad = common::run(&archive, &["show", "--thread", "<one@x>"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a thread id"));
}

#[test]
fn a_root_arriving_after_its_replies_keeps_their_thread_id_and_bare_replies_join_by_subject() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let d = tmp.path();
    let reply = mail(d, "reply", "r@x", "<root@x>", "Re: Budget", 2);
    // No reference headers, a reply's subject: joins the thread its subject started.
    let bare = mail(d, "bare", "b@x", "", "RE: [team] Budget", 3);
    common::ok(
        &archive,
        &[
            "import",
            "--account",
            "a",
            "--folder",
            "in",
            reply.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let early = one_thread_of(&archive, "reply");
    let root = mail(d, "root", "root@x", "", "Budget", 1);
    common::ok(
        &archive,
        &["import", "--account", "a", "--folder", "in", root.to_str().unwrap()],
    );
    assert_eq!(
        one_thread_of(&archive, "reply"),
        early,
        "the placeholder's name is the root's"
    );
    assert_eq!(one_thread_of(&archive, "root"), early);
    assert_eq!(
        one_thread_of(&archive, "bare"),
        early,
        "joined by subject once the root arrived"
    );
}
