//! Issue 6: replay and migrate into another (real) Dovecot — bytes, flags,
//! INTERNALDATE and folders arrive exactly once, across reruns, kills and servers
//! without UIDPLUS; a dry run changes nothing.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::dovecot::{
    compare_views, load_enron, report_folder_map as folder_map, Dovecot, ServerMessage, Storage, TEST_PASSWORD as PW,
};
use common::Rng;
use mailvault::archive::Archive;

type View = BTreeMap<(String, u32, u32), ServerMessage>;

/// A target Dovecot without UIDPLUS, LITERAL+ or MULTIAPPEND: one synchronizing
/// APPEND at a time, no APPENDUID — the plainest IMAP4rev1 server.
const PLAIN_IMAP4REV1: &str = "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
     NAMESPACE CHILDREN UNSELECT CONDSTORE QRESYNC ESEARCH SPECIAL-USE MOVE\n";

fn target_args(d: &Dovecot, prefix: &str) -> Vec<String> {
    vec![
        format!("--{prefix}password-env"),
        "MV_TEST_PW".into(),
        format!("--{prefix}tls-ca"),
        d.ca_pem().to_string_lossy().into_owned(),
    ]
}

fn url(d: &Dovecot, user: &str) -> String {
    format!("imaps://{user}@127.0.0.1:{}", d.imaps)
}

/// `mailvault replay --to` the target's `user`.
fn replay_cmd(archive: &Path, d: &Dovecot, user: &str, extra: &[&str]) -> Command {
    let to = url(d, user);
    let mut args: Vec<String> = vec!["replay".into(), "--to".into(), to];
    args.extend(target_args(d, ""));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = common::cmd(archive, &refs);
    c.env("MV_TEST_PW", PW);
    c
}

/// `mailvault migrate --from src/user --to dst/user`.
fn migrate_cmd(archive: &Path, src: &Dovecot, dst: &Dovecot, user: &str, extra: &[&str]) -> Command {
    let mut args: Vec<String> = vec![
        "migrate".into(),
        "--from".into(),
        url(src, user),
        "--to".into(),
        url(dst, user),
        "--account".into(),
        "src".into(),
    ];
    args.extend(target_args(src, "from-"));
    args.extend(target_args(dst, "to-"));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = common::cmd(archive, &refs);
    c.env("MV_TEST_PW", PW);
    c
}

/// The source view with folder names as the archive spells them (`/`-separated):
/// what the report's sources name.
fn diffs(source: &View, target: &View, map: &HashMap<String, String>) -> Vec<String> {
    compare_views(source, target, |f| {
        map.get(f)
            .cloned()
            .unwrap_or_else(|| panic!("source folder {f} is in no report folder: {map:?}"))
    })
}

/// Items 1 and 2: the Enron account from a maildir Dovecot (`/`) to an mdbox one
/// (`.`): every message once, bytes, flags and INTERNALDATE equal, in the mapped
/// folder; three more runs append nothing; mail arriving later is carried over
/// alone (cut-over day).
#[test]
fn migrate_enron_to_another_storage_and_separator_then_rerun() {
    let src = Dovecot::start();
    src.add_user("ken", PW);
    let loaded = load_enron(&src, "ken");
    let dst = Dovecot::start_flavour(Storage::MdboxDot, "");
    dst.add_user("ken", PW);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");

    let t = Instant::now();
    let first = common::json_of(migrate_cmd(&archive, &src, &dst, "ken", &["--json", "-q"]), "migrate");
    eprintln!("migrate of {loaded} messages: {:?}", t.elapsed());
    let report = &first["replay"];
    assert_eq!(report["total"]["in_source"], loaded as u64);
    assert_eq!(report["total"]["appended"], loaded as u64, "{report:#}");
    assert_eq!(report["total"]["failed"], 0);
    let map = folder_map(report);
    // Separator translation and SPECIAL-USE matching, spelled out.
    assert_eq!(map["discussion_threads"], "discussion_threads");
    assert_eq!(map["sent_items"], "Sent", "{map:?}");
    assert_eq!(map["deleted_items"], "Trash", "{map:?}");

    let source = src.server_view("ken", PW);
    assert_eq!(source.len(), loaded);
    let target = dst.server_view("ken", PW);
    assert_eq!(target.len(), loaded, "one target message per source message");
    let d = diffs(&source, &target, &map);
    assert!(
        d.is_empty(),
        "{} differences, first: {:#?}",
        d.len(),
        &d[..d.len().min(10)]
    );

    for run in 0..3 {
        let again = common::json_of(migrate_cmd(&archive, &src, &dst, "ken", &["--json", "-q"]), "rerun");
        assert_eq!(
            again["replay"]["total"]["appended"], 0,
            "rerun {run}: {:#}",
            again["replay"]["total"]
        );
        assert_eq!(again["replay"]["total"]["already_present"], loaded as u64);
    }
    assert_eq!(dst.server_view("ken", PW).len(), loaded);

    // Cut-over day: one new message at the source, and only it is carried over.
    let new = common::dovecot::sample_messages(1).remove(0);
    src.save("ken", "INBOX", &new);
    let last = common::json_of(migrate_cmd(&archive, &src, &dst, "ken", &["--json", "-q"]), "cut-over");
    assert_eq!(last["replay"]["total"]["appended"], 1, "{:#}", last["replay"]["total"]);
    let (source, target) = (src.server_view("ken", PW), dst.server_view("ken", PW));
    assert_eq!(target.len(), loaded + 1);
    let d = diffs(&source, &target, &folder_map(&last["replay"]));
    assert!(d.is_empty(), "{d:#?}");

    // `mailvault compare` agrees, then names each kind of difference made by hand.
    let out = compare_cmd(&src, &dst, "ken", &[]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("no differences"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dst.doveadm(&["flags", "add", "-u", "ken", "\\Flagged", "mailbox", "INBOX", "uid", "1"]);
    dst.doveadm(&["expunge", "-u", "ken", "mailbox", "INBOX", "uid", "2"]);
    dst.doveadm(&["move", "-u", "ken", "Archive", "mailbox", "INBOX", "uid", "3"]);
    dst.save("ken", "Trash", &common::dovecot::sample_messages(2).remove(1));
    let out = compare_cmd(&src, &dst, "ken", &["--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "differences exit 1");
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        c["counts"],
        serde_json::json!({"missing": 1, "extra": 1, "folder": 1, "flags": 1}),
        "{:#}",
        c["differences"]
    );
    let moved = c["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "folder")
        .unwrap();
    assert_eq!(
        (moved["a"].as_str(), moved["b"].as_str()),
        (Some("INBOX"), Some("Archive"))
    );
}

/// `mailvault compare A B` with A's credentials as `--from-…` and B's as `--to-…`.
fn compare_cmd(a: &Dovecot, b: &Dovecot, user: &str, extra: &[&str]) -> Command {
    let mut args: Vec<String> = vec!["compare".into(), url(a, user), url(b, user)];
    args.extend(target_args(a, "from-"));
    args.extend(target_args(b, "to-"));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = common::cmd(Path::new("/nonexistent-archive"), &refs);
    c.env("MV_TEST_PW", PW);
    c
}

/// A message for item 4: `size` bytes or so of base64 lines.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: big@example.org\r\nTo: ken@example.org\r\nSubject: thirty megabytes\r\n\
Message-ID: <big-1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nattached\r\n--b\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=blob.bin\r\n\r\n"
        .to_vec();
    let mut rng = Rng::from_env("replay-big");
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while m.len() < size {
        for _ in 0..76 {
            m.push(B64[rng.below(64) as usize]);
        }
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--b--\r\n");
    m
}

/// Item 4: a message without Message-ID, two byte-identical messages in one folder
/// (both kept), a 30 MB message, and non-ASCII folder names arrive exactly.
#[test]
fn awkward_messages_and_folder_names_arrive() {
    let src = Dovecot::start();
    src.add_user("ann", PW);
    let no_id = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: no id\r\nDate: Mon, 1 Jan 2001 10:00:00 +0000\r\n\r\nno Message-ID here\r\n".to_vec();
    let twin =
        b"From: a@example.org\r\nSubject: twin\r\nMessage-ID: <twin@example.org>\r\n\r\nsame bytes twice\r\n".to_vec();
    src.save("ann", "INBOX", &no_id);
    src.save("ann", "Réunions/Été 2001", &twin);
    src.save("ann", "Réunions/Été 2001", &twin);
    src.save("ann", "Пример", &common::dovecot::sample_messages(1).remove(0));
    src.save("ann", "Big", &big_message(30 << 20));
    let dst = Dovecot::start_flavour(Storage::MdboxDot, "");
    dst.add_user("ann", PW);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    let out = common::json_of(migrate_cmd(&archive, &src, &dst, "ann", &["--json", "-q"]), "migrate");
    let report = &out["replay"];
    assert_eq!(report["total"]["appended"], 5, "{report:#}");
    let map = folder_map(report);
    assert_eq!(map["Réunions/Été 2001"], "Réunions.Été 2001");
    let (source, target) = (src.server_view("ann", PW), dst.server_view("ann", PW));
    let d = diffs(&source, &target, &map);
    assert!(d.is_empty(), "{d:#?}");
    let twins = target.keys().filter(|(f, _, _)| f == "Réunions.Été 2001").count();
    assert_eq!(twins, 2, "both identical messages are kept");
    assert!(target.contains_key(&(
        "Пример".to_string(),
        target.keys().find(|k| k.0 == "Пример").unwrap().1,
        1
    )));
    // And nothing twice on a rerun, identical twins included.
    let again = common::json_of(migrate_cmd(&archive, &src, &dst, "ann", &["--json", "-q"]), "rerun");
    assert_eq!(again["replay"]["total"]["appended"], 0);
    assert_eq!(dst.server_view("ann", PW).len(), 5);
}

/// Item 5: `--dry-run` prints the plan and changes nothing on the target — no
/// folder, no message — nor in the archive's ledger; the real run then does what
/// the plan said.
#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    common::ok(
        &archive,
        &["import", "--account", "demo", common::demo_sample().to_str().unwrap()],
    );
    let dst = Dovecot::start_flavour(Storage::MdboxDot, "");
    dst.add_user("ann", PW);
    let folders = || {
        let mut l: Vec<String> = dst
            .doveadm(&["mailbox", "list", "-u", "ann"])
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let folders_before = folders();
    let status_before = dst.doveadm(&["mailbox", "status", "-u", "ann", "-t", "messages", "*"]);

    let out = replay_cmd(&archive, &dst, "ann", &["--dry-run"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(to create)") && text.contains("dry run: nothing was created or appended"),
        "{text}"
    );
    let plan = common::json_of(replay_cmd(&archive, &dst, "ann", &["--dry-run", "--json"]), "dry run");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["total"]["appended"], 500, "the plan: all 500 to append");
    let planned: BTreeMap<String, u64> = plan["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["folder"].as_str().unwrap().to_string(),
                f["appended"].as_u64().unwrap(),
            )
        })
        .collect();

    assert_eq!(folders(), folders_before, "no folder created");
    assert_eq!(
        dst.doveadm(&["mailbox", "status", "-u", "ann", "-t", "messages", "*"]),
        status_before,
        "nothing appended"
    );
    assert!(dst.server_view("ann", PW).is_empty());
    let a = Archive::open_read_only(&archive).unwrap();
    for folder in planned.keys() {
        assert!(a
            .ledger(&format!("ann@127.0.0.1:{}", dst.imaps), folder)
            .unwrap()
            .is_empty());
    }
    drop(a);

    let done = common::json_of(replay_cmd(&archive, &dst, "ann", &["--json", "-q"]), "replay");
    let appended: BTreeMap<String, u64> = done["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["folder"].as_str().unwrap().to_string(),
                f["appended"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(appended, planned, "the run did what the plan said");
    let after = common::json_of(replay_cmd(&archive, &dst, "ann", &["--dry-run", "--json"]), "dry run");
    assert_eq!(after["total"]["appended"], 0);
    assert_eq!(after["total"]["already_present"], 500);
}

/// Item 3: kill -9 of the binary at random moments during a replay, then a rerun:
/// the target ends with every message exactly once — against a full Dovecot and
/// against one without UIDPLUS (pending intents then resolved by searching alone).
#[test]
fn kill_during_replay_then_rerun_is_exact() {
    let rounds = common::crash_rounds().max(2);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    let corpus = common::shared_corpus("spamassassin-public-corpus").expect("the shared corpus");
    common::ok(
        &archive,
        &[
            "-q",
            "import",
            "--account",
            "sa",
            corpus.join("easy-ham-1").to_str().unwrap(),
        ],
    );
    common::ok(
        &archive,
        &[
            "-q",
            "import",
            "--account",
            "sa",
            corpus.join("spam-1").to_str().unwrap(),
        ],
    );
    let mut rng = Rng::from_env("replay-crash");
    let mut killed_mid_way = 0;
    // The plain server appends one message per round trip and fsync: it gets the
    // 500 spam-1 messages so that its rounds take as long as the others.
    for (variant, conf, only) in [("uidplus", "", None), ("plain", PLAIN_IMAP4REV1, Some("spam-1"))] {
        let dst = Dovecot::start_flavour(Storage::MdboxDot, conf);
        let select: Vec<&str> = only.map(|f| vec!["--folder", f]).unwrap_or_default();
        let with = |extra: &[&str]| -> Vec<String> { extra.iter().chain(&select).map(|s| s.to_string()).collect() };
        let run = |user: &str, extra: &[&str]| {
            let args = with(extra);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            replay_cmd(&archive, &dst, user, &refs)
        };
        // The uninterrupted replay: what every round must end with; and how long it
        // takes, to spread the kills over it. A fresh target account per round: each
        // starts from nothing. When the planned rounds' kills all missed the moments
        // an intent is pending (short windows when reading from the archive is most
        // of a run, as with packs in S3), up to EXTRA_ROUNDS more rounds follow.
        const EXTRA_ROUNDS: u64 = 8;
        let users: Vec<String> = (0..rounds / 2 + EXTRA_ROUNDS).map(|r| format!("r{r}")).collect();
        let mut all: Vec<&str> = users.iter().map(String::as_str).collect();
        all.push("probe");
        dst.add_users(&all, PW);
        let t = Instant::now();
        common::json_of(run("probe", &["--json", "-q"]), "probe");
        let full = t.elapsed();
        let probe = dst.server_view("probe", PW);
        eprintln!("{variant}: a full replay of {} messages takes {full:?}", probe.len());
        let (mut pending_seen, mut resolved, mut found) = (0, 0, 0);
        let mut round = 0;
        while round < rounds / 2 || (pending_seen == 0 && round < rounds / 2 + EXTRA_ROUNDS) {
            let user = &users[round as usize];
            for _ in 0..1 + rng.below(2) {
                let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 11 / 10 + 1));
                if common::kill_after(run(user, &["-q"]), delay, &archive, round) {
                    killed_mid_way += 1;
                }
            }
            // What the kills left: intents without an outcome are what the rerun
            // must resolve on the target.
            let plan = common::json_of(run(user, &["--dry-run", "--json", "-q"]), "dry run");
            pending_seen += plan["total"]["checked"].as_u64().unwrap();
            let last = common::json_of(run(user, &["--json", "-q"]), "rerun");
            assert_eq!(last["total"]["failed"], 0);
            resolved += last["total"]["checked"].as_u64().unwrap();
            found += last["total"]["resolved_present"].as_u64().unwrap();
            // Same content as the uninterrupted replay: no duplicates, none missing.
            let target = dst.server_view(user, PW);
            let d = compare_views(&probe, &target, |f| f.to_string());
            assert!(
                d.is_empty(),
                "{variant} round {round}: {} differences: {:#?}",
                d.len(),
                &d[..d.len().min(10)]
            );
            assert_eq!(target.len(), probe.len(), "{variant} round {round}");
            round += 1;
        }
        eprintln!(
            "{variant}: {round} rounds ({} planned); kills left {pending_seen} intents pending; the reruns \
             resolved {resolved}, of which {found} had reached the target",
            rounds / 2
        );
        assert!(pending_seen > 0, "{variant}: no kill left an intent pending");
        assert_eq!(resolved, pending_seen);
    }
    assert!(
        killed_mid_way >= rounds / 2,
        "too few kills hit a running replay ({killed_mid_way} of {rounds})"
    );
}

/// What the target refuses is reported message by message, and the rest still
/// arrives: a target that takes at most 1 MB per message (quota plugin), not
/// announcing APPENDLIMIT, gets a 2 MB message inside a MULTIAPPEND — the whole
/// command is refused, retried one by one, and only the big one fails.
#[test]
fn refused_messages_are_reported_one_by_one_and_the_run_goes_on() {
    let conf = "mail_plugins = $mail_plugins quota\n\
        plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n  quota_max_mail_size = 1M\n}\n\
        imap_capability = IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS SPECIAL-USE NAMESPACE UNSELECT\n";
    let dst = Dovecot::start_flavour(Storage::MdboxDot, conf);
    dst.add_user("ann", PW);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let small = common::dovecot::sample_messages(20);
    for (i, m) in small.iter().enumerate() {
        std::fs::write(src.join(format!("{i:02}.eml")), m).unwrap();
    }
    let big = big_message(2 << 20);
    std::fs::write(src.join("10-big.eml"), &big).unwrap();
    common::ok(&archive, &["-q", "import", "--account", "a", src.to_str().unwrap()]);

    let out = replay_cmd(&archive, &dst, "ann", &["--json", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a refused message makes the run fail");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["total"]["appended"], 20, "{r:#}");
    assert_eq!(r["total"]["failed"], 1);
    let failure = &r["folders"][0]["failures"][0];
    assert_eq!(failure["message"], mailvault::model::MessageId::of(&big).to_hex());
    assert!(
        failure["reason"].as_str().unwrap().starts_with("NO ")
            && failure["reason"]
                .as_str()
                .unwrap()
                .contains("larger than the maximum size"),
        "the server's words: {failure}"
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("1 message(s) or folder(s) failed"), "{text}");
    assert_eq!(dst.server_view("ann", PW).len(), 20);
    // The rerun tries only the refused one again.
    let again = replay_cmd(&archive, &dst, "ann", &["--json", "-q"]).output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (r["total"]["appended"].as_u64(), r["total"]["failed"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(dst.server_view("ann", PW).len(), 20);
}

/// Selection and mapping options together: `--query` picks messages, `--folder`
/// picks source folders, `--map` sends them under a new name (created, nested, in
/// the target's separator); nothing else is touched.
#[test]
fn query_folder_and_map_select_and_place() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    let hits = common::ok(
        &archive,
        &["-q", "search", "--format", "json", "--limit", "1000", "from:enron.com"],
    );
    let expected = hits
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["folders"].as_array().unwrap().iter().any(|f| f == "enron/inbox")
        })
        .count();
    assert!(expected > 10 && expected < 149, "{expected}");
    let dst = Dovecot::start_flavour(Storage::MdboxDot, "");
    dst.add_user("ann", PW);
    let r = common::json_of(
        replay_cmd(
            &archive,
            &dst,
            "ann",
            &[
                "--json",
                "-q",
                "--query",
                "from:enron.com",
                "--folder",
                "enron/inbox",
                "--map",
                "enron/inbox=Archive/Skilling",
            ],
        ),
        "replay",
    );
    assert_eq!(r["total"]["appended"], expected as u64, "{r:#}");
    assert_eq!(r["folders"].as_array().unwrap().len(), 1);
    assert_eq!(r["folders"][0]["folder"], "Archive.Skilling");
    assert_eq!(r["folders"][0]["created"], true);
    let view = dst.server_view("ann", PW);
    assert_eq!(view.len(), expected);
    assert!(
        view.keys().all(|(f, _, _)| f == "Archive.Skilling"),
        "{:?}",
        view.keys().next()
    );
}

/// Resolution on a server without UIDPLUS looks at every candidate: the message is
/// found at UID 650 among 700 of the same size without a Message-ID (only the 500
/// lowest were looked at before, so a rerun would append it again).
#[test]
fn resolution_considers_every_same_size_candidate() {
    use mailvault::net::{tls, Endpoint, Secret, TlsOptions};
    use mailvault::remote::{Auth, ConnectOptions};
    use mailvault::replay::resolve;
    let d = Dovecot::start();
    d.add_user("many", PW);
    let msg = |n: u32| format!("Subject: same size\r\n\r\nbody {n:04}\r\n").into_bytes();
    let now = std::time::SystemTime::now();
    let all: Vec<(Vec<u8>, &str, std::time::SystemTime)> = (1..=700).map(|n| (msg(n), "", now)).collect();
    d.load("many", "INBOX", &all);
    let o = ConnectOptions {
        endpoint: Endpoint::parse(&url(&d, "many")).unwrap(),
        tls: tls::client_config(&TlsOptions {
            ca_file: Some(d.ca_pem()),
            ..Default::default()
        })
        .unwrap(),
        insecure_plaintext: false,
        auth: Auth::Password(Secret::new(PW)),
        oauth2_mechanism: Default::default(),
        compress: true,
        io_timeout: Duration::from_secs(30),
        slots: None,
        max_message_size: mailvault::remote::DEFAULT_MAX_MESSAGE_SIZE,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let found = rt.block_on(async {
        let mut c = mailvault::imap::connect::connect(&o).await.unwrap();
        let server = o.endpoint.to_string();
        resolve::examine(&mut c, &server, o.io_timeout, "INBOX").await.unwrap();
        resolve::find(&mut c, &server, o.io_timeout, "INBOX", &msg(650))
            .await
            .unwrap()
    });
    assert_eq!(found, vec![650]);
}

/// The archive's name (relative to the personal namespace, `/`-separated) of a
/// folder as an `INBOX.`-prefixed server names it.
fn relative_to_inbox_prefix(server: &str) -> String {
    match server.strip_prefix("INBOX.") {
        Some(rest) if !rest.eq_ignore_ascii_case("INBOX") => rest.replace('.', "/"),
        _ => server.replace('.', "/"),
    }
}

/// Migrates `src` to `dst` (`user` on both), checks every message against the
/// source by the independent comparison, `compare`, and a rerun; returns the
/// first report.
fn migrate_checked(
    archive: &Path,
    src: &Dovecot,
    dst: &Dovecot,
    user: &str,
    extra: &[&str],
    source_name: &dyn Fn(&str) -> String,
) -> serde_json::Value {
    let mut args = vec!["--json", "-q"];
    args.extend_from_slice(extra);
    let first = common::json_of(migrate_cmd(archive, src, dst, user, &args), "migrate");
    let report = first["replay"].clone();
    assert_eq!(report["total"]["failed"], 0, "{report:#}");
    let map = folder_map(&report);
    let (source, target) = (src.server_view(user, PW), dst.server_view(user, PW));
    assert_eq!(source.len(), target.len(), "one target message per source message");
    let d = compare_views(&source, &target, |f| {
        let name = source_name(f);
        map.get(&name)
            .cloned()
            .unwrap_or_else(|| panic!("source folder {f} ({name}) is in no report folder: {map:?}"))
    });
    assert!(d.is_empty(), "{} differences: {:#?}", d.len(), &d[..d.len().min(10)]);
    let again = common::json_of(migrate_cmd(archive, src, dst, user, &args), "rerun");
    assert_eq!(
        again["replay"]["total"]["appended"], 0,
        "{:#}",
        again["replay"]["total"]
    );
    assert_eq!(dst.server_view(user, PW).len(), source.len());
    let compare_extra: Vec<&str> = extra.iter().copied().filter(|a| *a == "--no-role-map").collect();
    let out = compare_cmd(src, dst, user, &compare_extra).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("no differences"),
        "compare: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// Into and out of a server whose personal folders sit under `INBOX.` with `.` as
/// separator (NAMESPACE): the Enron account from a plain Dovecot into it, then from
/// it into another plain one; every message in its mapped folder with its bytes,
/// flags and INTERNALDATE; `compare` clean and reruns append nothing both ways.
#[test]
fn migrate_into_and_out_of_an_inbox_prefixed_server() {
    let src = Dovecot::start();
    src.add_user("ken", PW);
    let loaded = load_enron(&src, "ken");
    let mid = Dovecot::start_flavour(Storage::MaildirInboxDot, "");
    mid.add_user("ken", PW);
    let tmp = tempfile::tempdir().unwrap();

    let into = migrate_checked(&tmp.path().join("in"), &src, &mid, "ken", &[], &|f| f.to_string());
    assert_eq!(into["total"]["appended"], loaded as u64);
    let map = folder_map(&into);
    assert_eq!(map["_sent_mail"], "INBOX._sent_mail", "{map:?}");
    assert_eq!(map["discussion_threads"], "INBOX.discussion_threads");
    assert_eq!(map["INBOX"], "INBOX");
    assert_eq!(map["INBOX/genie"], "INBOX.INBOX.genie");
    assert_eq!(map["sent_items"], "INBOX.Sent", "roles: {map:?}");
    assert_eq!(map["sent"], "INBOX.Sent");
    let merged = into["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["folder"] == "INBOX.Sent")
        .unwrap();
    assert_eq!(merged["sources"].as_array().unwrap().len(), 2, "{merged:#}");
    // The text report says so.
    let text = common::stdout_of(
        migrate_cmd(&tmp.path().join("in"), &src, &mid, "ken", &["-q"]),
        "migrate",
    );
    assert!(text.contains("note: 2 source folders went into INBOX.Sent"), "{text}");

    // Pulled from the prefixed server, folders are named relative to its prefix.
    let listed = common::stdout_of(
        common::dovecot::pull_command(
            &tmp.path().join("list"),
            &url(&mid, "ken"),
            &mid,
            &["--list-folders", "--json"],
        ),
        "pull --list-folders",
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["namespaces"]["personal"][0]["prefix"], "INBOX.");
    let names: Vec<(&str, &str)> = listed["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["server_name"].as_str().unwrap(), f["name"].as_str().unwrap()))
        .collect();
    assert!(names.contains(&("INBOX._sent_mail", "_sent_mail")), "{names:?}");
    assert!(names.contains(&("INBOX.INBOX.genie", "INBOX/genie")), "{names:?}");

    let dst = Dovecot::start_flavour(Storage::MdboxDot, "");
    dst.add_user("ken", PW);
    let out = migrate_checked(
        &tmp.path().join("out"),
        &mid,
        &dst,
        "ken",
        &[],
        &relative_to_inbox_prefix,
    );
    let map = folder_map(&out);
    assert_eq!(map["_sent_mail"], "_sent_mail", "{map:?}");
    assert_eq!(map["INBOX/genie"], "INBOX.genie");
    // And the round trip ends where it began.
    let (first, last) = (src.server_view("ken", PW), dst.server_view("ken", PW));
    assert_eq!(first.len(), last.len());
    let out = compare_cmd(&src, &dst, "ken", &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// With `--no-role-map`, every source folder arrives under its own name, under the
/// target's prefix; nothing is merged.
#[test]
fn without_role_mapping_every_folder_arrives_under_its_own_name() {
    let src = Dovecot::start();
    src.add_user("ken", PW);
    let loaded = load_enron(&src, "ken");
    let dst = Dovecot::start_flavour(Storage::MaildirInboxDot, "");
    dst.add_user("ken", PW);
    let tmp = tempfile::tempdir().unwrap();
    let report = migrate_checked(&tmp.path().join("a"), &src, &dst, "ken", &["--no-role-map"], &|f| {
        f.to_string()
    });
    assert_eq!(report["total"]["appended"], loaded as u64);
    let map = folder_map(&report);
    assert_eq!(map.len(), 12, "{map:?}");
    for (source, target) in &map {
        let want = if source == "INBOX" {
            "INBOX".to_string()
        } else {
            format!("INBOX.{}", source.replace('/', "."))
        };
        assert_eq!(target, &want);
    }
    assert!(report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["sources"].as_array().unwrap().len() == 1));
}

/// A target that refuses CREATE for one folder (Dovecot's ACL: no right to make
/// folders under `Locked`): that folder's messages are counted failed, in the
/// table and the JSON, the run exits 1, and every other folder arrives.
#[test]
fn a_folder_the_target_refuses_to_create_counts_its_messages_as_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let acl = tmp.path().join("acl");
    std::fs::write(&acl, "INBOX.Locked owner lrwstipe\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&acl, std::fs::Permissions::from_mode(0o644)).unwrap();
    let conf = format!(
        "mail_plugins = $mail_plugins acl\nplugin {{\n  acl = vfile:{}\n}}\n",
        acl.display()
    );
    let dst = Dovecot::start_flavour(Storage::MaildirInboxDot, &conf);
    dst.add_user("ann", PW);
    dst.doveadm(&["mailbox", "create", "-u", "ann", "INBOX.Locked"]);
    let src = Dovecot::start();
    src.add_user("ann", PW);
    let msgs = common::dovecot::sample_messages(9);
    let at = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_100_000_000);
    let load = |folder: &str, range: std::ops::Range<usize>| {
        let m: Vec<_> = msgs[range].iter().map(|m| (m.clone(), "S", at)).collect();
        src.load("ann", folder, &m);
    };
    load("INBOX", 0..3);
    load("Locked/Inner", 3..7);
    load("Open", 7..9);

    let archive = tmp.path().join("a");
    let out = migrate_cmd(&archive, &src, &dst, "ann", &["--json", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &r["replay"];
    let row = |name: &str| {
        r["folders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["folder"] == name)
            .unwrap_or_else(|| panic!("{name} in {r:#}"))
            .clone()
    };
    let locked = row("INBOX.Locked.Inner");
    assert_eq!(
        (locked["in_source"].as_u64(), locked["failed"].as_u64()),
        (Some(4), Some(4))
    );
    assert!(
        locked["error"].as_str().unwrap().contains("Permission denied"),
        "{locked:#}"
    );
    assert_eq!(row("INBOX")["appended"], 3);
    assert_eq!(row("INBOX.Open")["appended"], 2);
    assert_eq!(r["total"]["failed"], 4);
    assert_eq!(dst.server_view("ann", PW).len(), 5);
    // The table says so too.
    let out = migrate_cmd(&archive, &src, &dst, "ann", &["-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("INBOX.Locked.Inner"))
        .unwrap_or_else(|| panic!("{text}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[1..5], ["4", "0", "0", "4"], "{line}");
}
