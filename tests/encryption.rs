//! Encryption at rest, as far as it goes today (library level; the command line
//! offers it once ids, the index and the access log are covered too): an archive
//! made with a secret seals every pack frame and dictionary, so no file under its
//! packs or metadata holds a phrase of a body, a subject or an attachment's bytes,
//! while every message reads back byte-exact, verifies and compacts; a wrong or
//! missing secret is refused before anything is written; `rekey` changes the
//! secret without touching the data.

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
        assert_eq!(&a.get_raw(&Hash32::of(raw)).unwrap(), raw);
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
