//! Encryption at rest: an archive made with `init --encrypt` seals every pack
//! frame, dictionary, search-index block and access-log entry and keys its ids,
//! so no file under it — read as it is or with every zstd frame in it decoded —
//! holds a phrase of a body, a subject or an attachment's bytes, while search,
//! show, export (byte-exact), verify, compact and replay into a real Dovecot all
//! work; a wrong or missing secret is refused before anything is written; `rekey`
//! changes the secret without touching the data.

mod common;

use std::path::{Path, PathBuf};

use mailvault::archive::sealing::{self, ArchiveSecret};
use mailvault::archive::{Archive, ArchiveConfig, ArchiveError};
use mailvault::crypt::KdfCost;
use mailvault::import::{import_paths, BatchLimits};
use mailvault::model::Hash32;
use mailvault::source::LocalOptions;

const BODY_PHRASE: &str = "zanzibar quokka marmalade treaty";
const SUBJECT: &str = "Xylophone-Harbour-Ledger";

/// Cheap Argon2 costs: the tests check what is sealed, not the KDF's strength.
const FAST: KdfCost = KdfCost {
    memory_kib: 256,
    passes: 1,
    lanes: 1,
};

/// Text that differs per message, so the messages are large and varied enough
/// for a dictionary to be trained.
fn filler(seed: u32) -> String {
    let mut x = u64::from(seed).wrapping_mul(6364136223846793005) | 1;
    (0..120)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let n = 3 + (x >> 61) as usize;
            (0..n)
                .map(|k| char::from(b'a' + ((x >> (8 * k % 56)) % 26) as u8))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Incompressible bytes (xorshift), which a plain archive stores as they are.
fn attachment() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..30_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// 300 messages (enough for a dictionary), some with the phrase, the subject and
/// the attachment. Returns their raw bytes.
fn write_mail(dir: &Path) -> Vec<Vec<u8>> {
    std::fs::create_dir_all(dir).unwrap();
    let att = common::base64_lines(&attachment());
    (0..300)
        .map(|i| {
            let raw = if i % 50 == 0 {
                format!(
                    "From: a@example.org\r\nSubject: {SUBJECT} {i}\r\nMessage-ID: <e{i}@t>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe {BODY_PHRASE} is signed. {}\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{att}\r\n--b--\r\n",
                    filler(i)
                )
            } else {
                format!("From: b@example.org\r\nSubject: {SUBJECT} note {i}\r\nMessage-ID: <n{i}@t>\r\n\r\nRoutine note {i}: the {BODY_PHRASE} again. {}\r\n", filler(i))
            };
            std::fs::write(dir.join(format!("{i:04}.eml")), &raw).unwrap();
            raw.into_bytes()
        })
        .collect()
}

fn config(secret: Option<&str>) -> ArchiveConfig {
    ArchiveConfig {
        secret: secret.map(|s| ArchiveSecret::Passphrase(s.as_bytes().to_vec())),
        kdf_cost: FAST,
        ..ArchiveConfig::default()
    }
}

fn import(dir: &Path, mail: &Path, secret: Option<&str>) {
    let mut a = Archive::open_with(dir, true, config(secret)).unwrap();
    import_paths(
        &mut a,
        &[mail.to_path_buf()],
        &LocalOptions {
            account: "acct".into(),
            folder: Some("INBOX".into()),
            ..LocalOptions::default()
        },
        BatchLimits::default(),
        &mut |_| {},
    )
    .unwrap();
    assert!(a.counters().dictionaries >= 1, "a dictionary was trained");
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let b = std::fs::read(e.path()).unwrap();
            b.windows(needle.len()).any(|w| w == needle)
        })
        .map(|e| e.into_path())
        .collect()
}

/// (path, size, modified) of every file under `dir`.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let m = e.metadata().unwrap();
            (e.into_path(), m.len(), m.modified().unwrap())
        })
        .collect();
    v.sort();
    v
}

fn read_back(a: &Archive, raws: &[Vec<u8>]) {
    for raw in raws {
        assert_eq!(&a.get_raw(&a.ids().id(raw)).unwrap(), raw);
    }
}

#[test]
fn sealed_packs_and_dictionaries_hold_no_content_and_read_back_exactly() {
    if common::shared_garage().is_some() {
        return; // library-level archives here keep their packs locally
    }
    let tmp = tempfile::tempdir().unwrap();
    let raws = write_mail(&tmp.path().join("mail"));
    let (plain, sealed) = (tmp.path().join("plain"), tmp.path().join("sealed"));
    import(&plain, &tmp.path().join("mail"), None);
    import(&sealed, &tmp.path().join("mail"), Some("correct horse"));
    let chunk = &attachment()[1000..1064];
    assert!(
        !files_containing(&plain, chunk).is_empty(),
        "the attachment's bytes are findable in a plain archive (the test's grep works)"
    );
    for needle in [BODY_PHRASE.as_bytes(), SUBJECT.as_bytes(), chunk] {
        let found = files_containing(&sealed, needle);
        assert!(
            found.is_empty(),
            "{:?} found in {found:?}",
            String::from_utf8_lossy(needle)
        );
    }
    let marker = std::fs::read_to_string(sealed.join("mailvault-archive.toml")).unwrap();
    assert!(marker.contains("encrypted = true"), "{marker}");
    let a = Archive::open_with(&sealed, false, config(Some("correct horse"))).unwrap();
    assert!(a.is_encrypted());
    read_back(&a, &raws);
    assert!(a.verify(|_| {}).unwrap().is_clean());
    a.compact(|_, _| {}).unwrap();
    read_back(&a, &raws);
    assert!(a.verify(|_| {}).unwrap().is_clean());
    drop(a);
    assert!(
        files_containing(&sealed, chunk).is_empty(),
        "compacted packs are sealed too"
    );
    let r =
        Archive::open_read_only_secret(&sealed, Some(ArchiveSecret::Passphrase(b"correct horse".to_vec()))).unwrap();
    read_back(&r, &raws[..5]);
}

#[test]
fn a_wrong_or_missing_secret_is_refused_before_anything_changes_and_rekey_retires_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let raws = write_mail(&tmp.path().join("mail"));
    let dir = tmp.path().join("sealed");
    import(&dir, &tmp.path().join("mail"), Some("old secret"));
    let before = listing(&dir);
    let wrong = Archive::open_with(&dir, false, config(Some("0ld secret")))
        .err()
        .unwrap();
    assert!(matches!(wrong, ArchiveError::WrongSecret { .. }), "{wrong}");
    assert!(wrong.to_string().contains("nothing was opened or changed"), "{wrong}");
    let missing = Archive::open_with(&dir, false, config(None)).err().unwrap();
    assert!(matches!(missing, ArchiveError::SecretNeeded { .. }), "{missing}");
    assert!(Archive::open_read_only(&dir).is_err());
    assert_eq!(listing(&dir), before, "refused opens changed no file");

    let old = ArchiveSecret::Passphrase(b"old secret".to_vec());
    let new = ArchiveSecret::KeyFile(vec![0x5a; 32]);
    assert!(matches!(
        sealing::rekey(&dir, &ArchiveSecret::Passphrase(b"nope".to_vec()), &new, FAST),
        Err(ArchiveError::WrongSecret { .. })
    ));
    sealing::rekey(&dir, &old, &new, FAST).unwrap();
    let after_rekey = listing(&dir);
    let changed: Vec<&PathBuf> = after_rekey
        .iter()
        .filter(|f| !before.contains(f))
        .map(|(p, _, _)| p)
        .collect();
    assert_eq!(
        changed,
        vec![&dir.join("keys/archive.key")],
        "rekey rewrote the key file only"
    );
    let with_new = ArchiveConfig {
        secret: Some(new),
        ..config(None)
    };
    let a = Archive::open_with(&dir, false, with_new).unwrap();
    read_back(&a, &raws);
    drop(a);
    let old_refused = Archive::open_with(&dir, false, config(Some("old secret")))
        .err()
        .unwrap();
    assert!(matches!(old_refused, ArchiveError::WrongSecret { .. }), "{old_refused}");
}

#[test]
fn a_sealed_frame_that_was_altered_is_named_by_verify() {
    let tmp = tempfile::tempdir().unwrap();
    write_mail(&tmp.path().join("mail"));
    let dir = tmp.path().join("sealed");
    import(&dir, &tmp.path().join("mail"), Some("pw"));
    let a = Archive::open_with(&dir, false, config(Some("pw"))).unwrap();
    let (n, _) = a.pack_records()[0];
    assert!(a.testing_damage_pack(n, 200..201, 0x01).unwrap());
    let r = a.verify(|_| {}).unwrap();
    assert!(!r.is_clean());
    assert!(
        r.problems.iter().any(|p| p.to_string().contains("do not authenticate")),
        "{:?}",
        r.problems
    );
}

/// The bytes of `path` as they are, and every zstd frame in them decoded (RocksDB
/// compresses its tables with zstd: a plain grep would not see into them).
fn readable_forms(path: &Path) -> Vec<Vec<u8>> {
    use std::io::Read;
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let bytes = std::fs::read(path).unwrap();
    let mut forms = Vec::new();
    for (at, _) in bytes.windows(4).enumerate().filter(|(_, w)| *w == MAGIC).take(100_000) {
        let Ok(d) = zstd::stream::read::Decoder::with_buffer(&bytes[at..]) else {
            continue;
        };
        let mut out = Vec::new();
        // A frame that does not decode (a false match) still yields what it gave.
        let _ = d.single_frame().take(64 << 20).read_to_end(&mut out);
        if !out.is_empty() {
            forms.push(out);
        }
    }
    forms.push(bytes);
    forms
}

/// Every file under `dir` holding `needle` as it is or inside a zstd frame.
fn files_revealing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            readable_forms(e.path())
                .iter()
                .any(|b| b.windows(needle.len()).any(|w| w == needle))
        })
        .map(|e| e.into_path())
        .collect()
}

/// `mailvault` on `archive` with the passphrase in `pw`.
fn with_pw(archive: &Path, pw: &Path, args: &[&str]) -> std::process::Command {
    let mut c = common::cmd(archive, args);
    c.arg("--passphrase-file").arg(pw);
    c
}

fn ok_pw(archive: &Path, pw: &Path, args: &[&str]) -> String {
    common::stdout_of(with_pw(archive, pw, args), &args.join(" "))
}

#[test]
fn an_encrypted_archive_reveals_no_body_subject_or_attachment_in_any_file_yet_serves_every_read() {
    if common::shared_garage().is_some() {
        return; // the grep walks local files; S3 packs are covered by the library test
    }
    let tmp = tempfile::tempdir().unwrap();
    let mail = tmp.path().join("mail");
    let raws = write_mail(&mail);
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "staple battery horse\n").unwrap();
    let (plain, sealed) = (tmp.path().join("plain"), tmp.path().join("sealed"));
    let import = [
        "import",
        "-q",
        mail.to_str().unwrap(),
        "--account",
        "acct",
        "--folder",
        "INBOX",
    ];
    common::ok(&plain, &import);
    common::ok(&plain, &["search", "-q", "quokka"]);
    // A passphrase given to a command on no archive does not make an encrypted
    // one by the way: only `init --encrypt` does.
    let o = with_pw(&sealed, &pw, &import).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("init --encrypt"));
    assert!(!sealed.exists());
    let init = ok_pw(&sealed, &pw, &["init", "--encrypt"]);
    assert!(init.contains("encrypted"), "{init}");
    ok_pw(&sealed, &pw, &import);

    // Every read works: search (body word, subject), show, export byte-exact.
    let count = |q: &str| ok_pw(&sealed, &pw, &["search", "--count", q]).trim().to_string();
    let plain_count = |q: &str| common::ok(&plain, &["search", "--count", q]).trim().to_string();
    assert_eq!(count("quokka"), "300");
    assert_eq!(count(&format!("subject:{SUBJECT}")), "300");
    for q in [
        "\"is signed\"",
        "subject:note",
        "from:a@example.org",
        "size:>20k",
        "has:attachment",
    ] {
        assert_eq!(count(q), plain_count(q), "{q}");
    }
    assert_eq!(count("\"is signed\""), "6");
    let hits = ok_pw(&sealed, &pw, &["search", "--json", "--limit", "1", "zanzibar"]);
    let hit: serde_json::Value = serde_json::from_str(hits.lines().next().unwrap()).unwrap();
    let id = hit["id"].as_str().unwrap().to_string();
    let shown = ok_pw(&sealed, &pw, &["show", "--raw", &id]);
    assert!(raws.iter().any(|r| r == shown.as_bytes()));
    let out = tmp.path().join("out");
    ok_pw(
        &sealed,
        &pw,
        &["export", "--format", "eml", "--out", out.to_str().unwrap(), "-q"],
    );
    let mut exported: Vec<Vec<u8>> = walkdir::WalkDir::new(&out)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    let mut want = raws.clone();
    exported.sort();
    want.sort();
    assert!(exported == want, "export is byte-exact");
    let audit: serde_json::Value = serde_json::from_str(&ok_pw(&sealed, &pw, &["audit", "--json"])).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["query"] == "quokka"), "{audit:#}");
    assert!(entries.iter().any(|e| e["action"] == "show"), "{audit:#}");
    assert!(audit["problems"].as_array().unwrap().is_empty(), "{audit:#}");
    ok_pw(&sealed, &pw, &["compact", "-q"]);
    let v: serde_json::Value = serde_json::from_str(&ok_pw(&sealed, &pw, &["verify", "--chain", "--json"])).unwrap();
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v:#}");
    assert!(v["chain"]["problems"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(v["messages_checked"], 300, "{v:#}");

    // Nothing of the content is in any file: packs, metadata (with its zstd
    // tables opened), index, access log, keys, marker. The same grep finds each
    // needle in the plain archive, so it can see.
    let chunk = &attachment()[1000..1064];
    let word = b"quokka";
    for (needle, what) in [
        (BODY_PHRASE.as_bytes(), "body phrase"),
        (SUBJECT.as_bytes(), "subject"),
        (chunk, "attachment bytes"),
        (&word[..], "indexed word"),
    ] {
        assert!(
            !files_revealing(&plain, needle).is_empty(),
            "{what}: the grep finds it in a plain archive"
        );
        let found = files_revealing(&sealed, needle);
        assert!(found.is_empty(), "{what} found in {found:?}");
    }
    // The index itself: a plain one shows its folder and account names (tantivy
    // compresses the rest), a sealed one nothing.
    for name in [&b"INBOX"[..], b"acct"] {
        assert!(!files_revealing(&plain.join("index"), name).is_empty());
        assert!(files_revealing(&sealed.join("index"), name).is_empty());
    }
    assert!(
        std::fs::read_dir(sealed.join("index")).unwrap().count() > 5,
        "the sealed index has its files"
    );
    let plain_id = Hash32::of(&raws[0]).to_hex();
    assert!(files_revealing(&sealed, plain_id.as_bytes()).is_empty());
    assert!(
        files_revealing(&sealed, &Hash32::of(&raws[0]).0).is_empty(),
        "ids are keyed"
    );
}

#[test]
fn an_encrypted_archive_replays_into_dovecot_and_refuses_a_wrong_passphrase_without_changing_a_file() {
    use common::dovecot::{Dovecot, TEST_PASSWORD};
    let tmp = tempfile::tempdir().unwrap();
    let mail = tmp.path().join("mail");
    let raws = write_mail(&mail);
    let (pw, wrong, new) = (tmp.path().join("pw"), tmp.path().join("wrong"), tmp.path().join("new"));
    std::fs::write(&pw, "staple battery horse").unwrap();
    std::fs::write(&wrong, "staple battery h0rse").unwrap();
    std::fs::write(&new, "a new passphrase for 2027").unwrap();
    let archive = tmp.path().join("sealed");
    ok_pw(&archive, &pw, &["init", "--encrypt"]);
    ok_pw(
        &archive,
        &pw,
        &["import", "-q", mail.to_str().unwrap(), "--account", "acct"],
    );
    ok_pw(&archive, &pw, &["search", "-q", "quokka"]);

    // A wrong or missing passphrase: refused, naming the archive; no file changes.
    let before = listing(&archive);
    for args in [
        &["search", "quokka"][..],
        &["show", "--query", "quokka"],
        &["import", "-q", mail.to_str().unwrap()],
        &["verify"],
        &["audit"],
        &["purge", "--dry-run"],
    ] {
        let o = with_pw(&archive, &wrong, args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} with a wrong passphrase");
        assert!(err.contains("is not this archive's"), "{args:?}: {err}");
        let o = common::run(&archive, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("--passphrase-file"),
            "{args:?} without one: {err}"
        );
    }
    assert_eq!(listing(&archive), before, "refused commands changed no file");

    // Replay into a real Dovecot: every message arrives, byte for byte.
    let d = Dovecot::start();
    d.add_user("ann", TEST_PASSWORD);
    let to = format!("imaps://ann@127.0.0.1:{}", d.imaps);
    let mut c = with_pw(
        &archive,
        &pw,
        &[
            "replay",
            "--to",
            &to,
            "--account",
            "acct",
            "--password-env",
            "MV_TEST_PW",
            "--json",
            "-q",
        ],
    );
    c.arg("--tls-ca").arg(d.ca_pem()).env("MV_TEST_PW", TEST_PASSWORD);
    let r = common::json_of(c, "replay");
    assert_eq!(r["total"]["appended"], 300, "{r:#}");
    let mut on_server: Vec<Hash32> = d.server_view("ann", TEST_PASSWORD).values().map(|m| m.hash).collect();
    let mut want: Vec<Hash32> = raws.iter().map(|r| Hash32::of(r)).collect();
    on_server.sort();
    want.sort();
    assert_eq!(on_server, want);

    // rekey: the new passphrase opens the archive, the old one no longer does.
    let mut c = with_pw(&archive, &pw, &["rekey"]);
    c.arg("--new-passphrase-file").arg(&new);
    common::stdout_of(c, "rekey");
    assert_eq!(ok_pw(&archive, &new, &["search", "--count", "quokka"]).trim(), "300");
    let o = with_pw(&archive, &pw, &["search", "--count", "quokka"])
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("is not this archive's"));

    // Then to a key file that does not exist yet: made (0600), and it opens.
    let key_file = tmp.path().join("archive.keyfile");
    let mut c = with_pw(&archive, &new, &["rekey"]);
    c.arg("--new-key-file").arg(&key_file);
    common::stdout_of(c, "rekey to a key file");
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
    let mut c = common::cmd(&archive, &["search", "--count", "quokka"]);
    c.arg("--key-file").arg(&key_file);
    assert_eq!(common::stdout_of(c, "search with the key file").trim(), "300");
}
