//! Search (issue 3): one test per operator of the query language, against known
//! messages of the bundled sample, the edge-case corpus and a few made here; reindex
//! equals the incremental index; bad queries give one-line errors.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use mailvault::index::{MessageIndex, Sort};
use mailvault::model::Hash32;

struct Fixture {
    _tmp: tempfile::TempDir,
    archive: PathBuf,
    index: MessageIndex,
    synthetic: PathBuf,
}

/// Messages made for the operators the sample cannot show.
fn write_synthetic(dir: &Path) {
    let md = dir.join("Maildir");
    for d in ["cur", "new", "tmp"] {
        fs::create_dir_all(md.join(d)).unwrap();
    }
    let msg = |subject: &str, extra: &str, body: &str| {
        format!("From: Zed Writer <zed@example.org>\r\nSubject: {subject}\r\nDate: Mon, 3 Feb 2020 10:00:00 +0000\r\nMessage-ID: <{subject}@synthetic>\r\n{extra}\r\n{body}\r\n")
    };
    fs::write(md.join("cur/1.seen:2,S"), msg("seen-one", "", "plain seen message")).unwrap();
    fs::write(
        md.join("cur/2.flagged:2,FS"),
        msg("flagged-one", "", "important and flagged"),
    )
    .unwrap();
    fs::write(md.join("new/3.unread"), msg("unread-one", "", "nobody read this yet")).unwrap();
    fs::write(
        md.join("cur/4.people:2,S"),
        msg(
            "people",
            "To: Quentin Recipient <quentin@example.net>\r\nCc: Carla Copy <carla@example.com>\r\nBcc: Hidden Watcher <hidden@example.com>\r\n",
            "addressed to several people",
        ),
    )
    .unwrap();
    let pdf = base64_lines(&[b"%PDF-1.4\n".as_slice(), &[7u8; 3000]].concat());
    fs::write(
        md.join("cur/5.attach:2,S"),
        msg(
            "with-attachment",
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n",
            &format!("--zz\r\nContent-Type: text/plain\r\n\r\nsee the report\r\n--zz\r\nContent-Type: application/pdf; name=\"quarterly-report.pdf\"\r\nContent-Disposition: attachment; filename=\"quarterly-report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--zz--"),
        ),
    )
    .unwrap();
    fs::write(
        md.join("cur/6.latin1:2,S"),
        msg(
            "latin1",
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            "Un caf=E9 cr=E8me au d=E9jeuner, s'il vous pla=EEt.",
        ),
    )
    .unwrap();
    fs::write(
        md.join("cur/7.japanese:2,S"),
        msg(
            "japanese",
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
            &base64_lines("明日は東京都庁に行きます。".as_bytes()),
        ),
    )
    .unwrap();
    let big = "lorem ipsum dolor sit amet\r\n".repeat(45_000); // ~1.2 MiB
    fs::write(md.join("cur/8.big:2,S"), msg("big-one", "", &big)).unwrap();
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("archive");
        let synthetic = tmp.path().join("synthetic");
        write_synthetic(&synthetic);
        let sample = demo_sample();
        ok(
            &archive,
            &[
                "import",
                "-q",
                sample.join("spamassassin").to_str().unwrap(),
                "--account",
                "spamassassin",
            ],
        );
        ok(
            &archive,
            &[
                "import",
                "-q",
                sample.join("enron").to_str().unwrap(),
                "--account",
                "enron",
            ],
        );
        ok(
            &archive,
            &["import", "-q", edge_cases().to_str().unwrap(), "--account", "edge"],
        );
        ok(
            &archive,
            &[
                "import",
                "-q",
                synthetic.join("Maildir").to_str().unwrap(),
                "--account",
                "synthetic",
            ],
        );
        let index = MessageIndex::open(&archive, None).unwrap();
        Fixture {
            _tmp: tmp,
            archive,
            index,
            synthetic,
        }
    })
}

fn ids(q: &str) -> HashSet<String> {
    fixture()
        .index
        .search(q, Sort::Relevance, 1_000_000, 0)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .into_iter()
        .map(|h| h.id)
        .collect()
}

/// The id of a message file (without an mbox envelope) under the synthetic maildir.
fn synthetic_id(name: &str) -> String {
    let dir = fixture().synthetic.join("Maildir");
    for sub in ["cur", "new"] {
        let p = dir.join(sub).join(name);
        if p.exists() {
            return Hash32::of(&fs::read(p).unwrap()).to_hex();
        }
    }
    panic!("no synthetic message {name}")
}

/// The id of a sample `.eml` file: the bytes after its envelope `From ` line, if any.
fn envelope_id(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    if !bytes.starts_with(b"From ") {
        return Hash32::of(&bytes).to_hex();
    }
    let nl = bytes.iter().position(|&c| c == b'\n').unwrap();
    Hash32::of(&bytes[nl + 1..]).to_hex()
}

fn file_id(path: &Path) -> String {
    Hash32::of(&fs::read(path).unwrap()).to_hex()
}

/// Sample files whose header section has a line starting with `prefix`
/// (case-insensitive), found by reading the files directly.
fn files_with_header(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
    {
        let text = String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned();
        let head = text
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap()
            .to_lowercase();
        if head.lines().any(|l| l.starts_with(&prefix.to_lowercase())) {
            out.push(e.path().to_path_buf());
        }
    }
    out
}

#[test]
fn free_words_and_phrases() {
    let seen = synthetic_id("1.seen:2,S");
    assert!(ids("plain seen").contains(&seen));
    assert!(ids("\"plain seen message\"").contains(&seen));
    assert!(
        !ids("\"seen plain message\"").contains(&seen),
        "phrases keep word order"
    );
}

#[test]
fn from_field_matches_every_sender_file() {
    let enron = demo_sample().join("enron");
    let files = files_with_header(&enron, "from: sherri.sera@enron.com");
    assert!(files.len() >= 10);
    let got = ids("account:enron from:sherri.sera@enron.com");
    let want: HashSet<String> = files.iter().map(|p| file_id(p)).collect();
    assert_eq!(got, want);
    assert!(ids("from:zed").contains(&synthetic_id("1.seen:2,S")), "by display name");
}

#[test]
fn to_cc_bcc() {
    let people = synthetic_id("4.people:2,S");
    for q in [
        "to:quentin",
        "to:quentin@example.net",
        "cc:carla",
        "cc:\"Carla Copy\"",
        "bcc:hidden@example.com",
    ] {
        assert_eq!(
            ids(&format!("account:synthetic {q}")),
            HashSet::from([people.clone()]),
            "{q}"
        );
    }
    assert!(
        !ids("to:carla").contains(&people),
        "to: does not include Cc (unlike notmuch)"
    );
}

#[test]
fn subject_and_body() {
    let enron = demo_sample().join("enron");
    let files = files_with_header(&enron, "subject: re: ");
    let got = ids("account:enron subject:re");
    for f in &files {
        assert!(got.contains(&file_id(f)), "{}", f.display());
    }
    assert_eq!(
        ids("body:\"nobody read this yet\""),
        HashSet::from([synthetic_id("3.unread")])
    );
    assert!(ids("subject:nobody").is_empty(), "body words are not subject words");
}

#[test]
fn list_msgid_folder_account() {
    let spam = demo_sample().join("spamassassin");
    let ilug = files_with_header(&spam, "list-id: irish linux users' group <ilug.linux.ie>");
    assert!(ilug.len() > 20);
    assert_eq!(ids("list:ilug.linux.ie").len(), ilug.len());
    assert_eq!(
        ids("msgid:<people@synthetic>"),
        HashSet::from([synthetic_id("4.people:2,S")])
    );
    assert_eq!(ids("msgid:people@synthetic").len(), 1);
    let inbox = fs::read_dir(demo_sample().join("enron/inbox")).unwrap().count();
    let sent = fs::read_dir(demo_sample().join("enron/sent")).unwrap().count();
    assert_eq!(ids("account:enron folder:inbox").len(), inbox);
    assert_eq!(ids("account:enron").len(), inbox + sent);
    assert_eq!(
        ids("folder:INBOX account:synthetic").len(),
        8,
        "maildir root is INBOX, case-insensitive"
    );
}

#[test]
fn dates() {
    // Independent count: Enron Date headers in April 2001 (UTC), parsed by chrono.
    let enron = demo_sample().join("enron");
    let april = files_with_header(&enron, "date:").into_iter().filter(|p| {
        let t = String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned();
        let line = t.lines().find(|l| l.starts_with("Date:")).unwrap();
        let value = line["Date:".len()..]
            .trim()
            .trim_end_matches(" (PDT)")
            .trim_end_matches(" (PST)");
        let d = chrono::DateTime::parse_from_rfc2822(value)
            .unwrap_or_else(|e| panic!("{value}: {e}"))
            .to_utc();
        d.format("%Y-%m").to_string() == "2001-04"
    });
    let want: HashSet<String> = april.map(|p| file_id(&p)).collect();
    assert!(!want.is_empty());
    assert_eq!(ids("account:enron date:2001-04"), want);
    assert_eq!(ids("account:enron date:2001-04-01..2001-04-30"), want);
    let all_enron = ids("account:enron");
    let before = ids("account:enron before:2001-04");
    let after = ids("account:enron after:2001-05");
    assert_eq!(
        before.len() + want.len() + after.len(),
        all_enron.len(),
        "before/within/after partition"
    );
    assert_eq!(ids("account:synthetic date:2020-02-03").len(), 8);
    assert!(ids("account:synthetic date:2019").is_empty());
}

#[test]
fn sizes() {
    assert_eq!(
        ids("account:synthetic size:>1M"),
        HashSet::from([synthetic_id("8.big:2,S")])
    );
    // All but the big one (the attachment message is ~4.5 kB).
    assert_eq!(ids("account:synthetic size:<10k").len(), 7);
    assert_eq!(
        ids("account:synthetic size:1k..2M"),
        HashSet::from([synthetic_id("5.attach:2,S"), synthetic_id("8.big:2,S")])
    );
}

#[test]
fn attachments() {
    let att = synthetic_id("5.attach:2,S");
    assert!(ids("has:attachment").contains(&att));
    assert_eq!(ids("account:synthetic has:attachment"), HashSet::from([att.clone()]));
    assert_eq!(ids("filename:quarterly-report.pdf"), HashSet::from([att.clone()]));
    assert!(ids("filename:quarterly").contains(&att));
    assert!(ids("mime:application/pdf").contains(&att));
    let hit = fixture()
        .index
        .search("filename:quarterly", Sort::Relevance, 5, 0)
        .unwrap();
    assert_eq!(hit[0].attachments, vec!["quarterly-report.pdf".to_string()]);
}

#[test]
fn flags() {
    let unread = synthetic_id("3.unread");
    let flagged = synthetic_id("2.flagged:2,FS");
    assert_eq!(ids("account:synthetic is:unread"), HashSet::from([unread.clone()]));
    assert_eq!(ids("account:synthetic flag:seen").len(), 7);
    assert_eq!(ids("account:synthetic is:flagged"), HashSet::from([flagged.clone()]));
    assert_eq!(ids("account:synthetic flag:\\Flagged"), HashSet::from([flagged]));
}

#[test]
fn boolean_operators() {
    let s = |q: &str| ids(&format!("account:synthetic ({q})"));
    let all = ids("account:synthetic");
    assert_eq!(all.len(), 8);
    let seen = s("flag:seen");
    assert_eq!(s("NOT flag:seen").len(), all.len() - seen.len());
    assert_eq!(s("-flag:seen"), s("NOT flag:seen"));
    assert_eq!(s("is:flagged OR is:unread").len(), 2);
    assert_eq!(s("is:flagged AND is:unread").len(), 0);
    assert_eq!(s("(is:flagged OR is:unread) -is:unread"), s("is:flagged"));
    assert_eq!(ids("account:synthetic -flag:seen -is:flagged").len(), 1);
}

#[test]
fn accents_and_charsets() {
    let latin1 = synthetic_id("6.latin1:2,S");
    for q in ["café", "cafe", "crème", "CREME", "déjeuner"] {
        assert!(ids(q).contains(&latin1), "{q}");
    }
    // ISO-8859-1 messages of the edge corpus and of the sample, by accented words.
    let m0013 = file_id(&edge_cases().join("edge-php-mime-mail-parser/m0013"));
    assert!(ids("problème").contains(&m0013));
    assert!(ids("body:nécessité").contains(&m0013));
    let german = demo_sample().join("spamassassin/hard-ham-1/00007.d24e99a602ee7fb442714c0d448cd08e.eml");
    let german_id = envelope_id(&german);
    assert!(ids("Stöbern").contains(&german_id));
    assert!(ids("ermöglichen").contains(&german_id));
}

#[test]
fn chinese_and_japanese_without_spaces() {
    assert_eq!(
        ids("account:synthetic 東京都"),
        HashSet::from([synthetic_id("7.japanese:2,S")])
    );
    assert!(ids("東京都庁").contains(&synthetic_id("7.japanese:2,S")));
    assert!(
        !ids("account:synthetic 京東").contains(&synthetic_id("7.japanese:2,S")),
        "order matters"
    );
    assert!(ids("東京").contains(&synthetic_id("7.japanese:2,S")));
    // From the edge corpus: GB2312 spam and an ISO-2022-JP message.
    let gb = edge_cases().join("edge-spamassassin-t-data/nice/cjk/gb2312.1");
    assert!(ids("商贸集团").contains(&file_id(&gb)), "GB2312 body word");
    let jp = edge_cases().join("edge-ruby-mail-fixtures/emails/multi_charset/japanese_iso_2022.eml");
    assert!(ids("すみません").contains(&file_id(&jp)), "ISO-2022-JP body word");
}

#[test]
fn sort_and_paging() {
    let by_date = fixture().index.search("account:enron", Sort::DateDesc, 10, 0).unwrap();
    assert!(by_date.windows(2).all(|w| w[0].date >= w[1].date));
    let next = fixture().index.search("account:enron", Sort::DateDesc, 10, 10).unwrap();
    assert!(by_date.last().unwrap().date >= next[0].date);
    let asc = fixture().index.search("account:enron", Sort::DateAsc, 5, 0).unwrap();
    assert!(asc.windows(2).all(|w| w[0].date <= w[1].date));
}

#[test]
fn invalid_queries_are_one_line_errors() {
    let a = &fixture().archive;
    for (q, text) in [
        ("from:", "from: needs a value"),
        ("date:2020-13-45..x", "not a date"),
        ("(a OR b", "never closed"),
        ("nosuch:word", "unknown field nosuch"),
    ] {
        let out = run(a, &["search", q]);
        assert!(!out.status.success(), "{q}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(text) && err.contains("column"), "{q}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{q}: one line: {err}");
    }
}

#[test]
fn cli_formats_and_query_filters() {
    let a = &fixture().archive;
    let json = ok(a, &["search", "--format", "json", "account:synthetic", "is:flagged"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    for key in [
        "id",
        "date",
        "from",
        "to",
        "subject",
        "folders",
        "accounts",
        "flags",
        "size",
        "attachments",
    ] {
        assert!(v.get(key).is_some(), "json has {key}");
    }
    assert_eq!(v["subject"], "flagged-one");
    // Options after the query are options, not query words.
    let out = run(a, &["search", "account:synthetic", "--format", "ids", "--limit", "2"]);
    let two = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        two.lines().count(),
        2,
        "{two} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let neg = ok(
        a,
        &["search", "--format", "ids", "--", "-flag:seen", "account:synthetic"],
    );
    assert_eq!(neg.lines().count(), 1, "{neg}");
    let table = ok(a, &["search", "subject:flagged-one"]);
    assert!(table.contains("flagged-one") && table.contains("DATE"));
    let shown = run(a, &["show", "--raw", "--query", "subject:people account:synthetic"]);
    assert!(shown.status.success());
    assert!(String::from_utf8_lossy(&shown.stdout).contains("Quentin Recipient"));
    let out = fixture()._tmp.path().join("export-q");
    ok(
        a,
        &[
            "export",
            "--format",
            "eml",
            "--out",
            out.to_str().unwrap(),
            "--query",
            "account:synthetic is:unread",
        ],
    );
    let n = walkdir::WalkDir::new(&out)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(n, 1);
}

/// `reindex` from the archive alone gives the same results as the index built
/// incrementally by the imports above.
#[test]
fn reindex_gives_the_same_results() {
    let queries = [
        "account:enron",
        "from:sherri.sera@enron.com",
        "list:ilug.linux.ie",
        "has:attachment",
        "date:2002-08",
        "size:>100k",
        "linux OR rpm",
        "東京",
        "is:unread",
        "-flag:seen account:edge",
    ];
    let before: Vec<HashSet<String>> = queries.iter().map(|q| ids(q)).collect();
    let copy = fixture()._tmp.path().join("reindexed");
    copy_dir(&fixture().archive, &copy);
    ok(&copy, &["reindex"]);
    let idx = MessageIndex::open(&copy, None).unwrap();
    for (q, want) in queries.iter().zip(before) {
        let got: HashSet<String> = idx
            .search(q, Sort::Relevance, 1_000_000, 0)
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(got, want, "{q}");
    }
}

/// Messages that sort equal (the same date; the same score) come in the order of
/// their ids, whatever the order they arrived in: one order for one index, and
/// for any split of it into shards.
#[test]
fn equal_dates_and_scores_are_ordered_by_id_whatever_the_order_of_arrival() {
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..8)
        .map(|i| {
            let p = tmp.path().join(format!("m{i}.eml"));
            let text = format!(
                "From: ann@example.org\r\nTo: bob@example.org\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
                 Subject: lantern report {i}\r\nMessage-ID: <tie{i}@example.org>\r\n\r\nthe lantern is lit\r\n"
            );
            fs::write(&p, text).unwrap();
            p
        })
        .collect();
    let mut expected: Vec<String> = files.iter().map(|f| file_id(f)).collect();
    expected.sort();
    for (name, order) in [
        ("forward", files.clone()),
        ("backward", files.iter().rev().cloned().collect()),
    ] {
        let archive = tmp.path().join(name);
        for f in &order {
            ok(&archive, &["import", "-q", f.to_str().unwrap(), "--account", "a"]);
        }
        let index = MessageIndex::open(&archive, None).unwrap();
        for sort in [Sort::DateDesc, Sort::DateAsc, Sort::Relevance] {
            let got: Vec<String> = index
                .search("lantern", sort, 20, 0)
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect();
            assert_eq!(got, expected, "{name} arrival, {sort:?}");
            let paged: Vec<String> = [0, 3, 6]
                .iter()
                .flat_map(|&o| index.search("lantern", sort, 3, o).unwrap())
                .map(|h| h.id)
                .collect();
            assert_eq!(paged, expected, "{name} arrival, {sort:?}, pages of 3");
        }
    }
}
