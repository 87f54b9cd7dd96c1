//! `mailvault user …` and `mailvault token …` on a real archive: users with roles
//! and grants, passwords only as Argon2id hashes in a private file (sealed in an
//! encrypted archive), tokens shown once, mistakes refused with what was wrong.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

const PW: &str = "a long enough secret";

fn run(archive: &Path, args: &[&str]) -> Output {
    common::cmd(archive, args).env("WEB_PW", PW).output().unwrap()
}

fn ok(archive: &Path, args: &[&str]) -> String {
    let out = run(archive, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn refused(archive: &Path, args: &[&str], says: &str) {
    let out = run(archive, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(err.contains(says), "{args:?}: {err}");
}

#[test]
fn users_and_tokens_are_kept_as_hashes_in_a_private_file_and_listed_without_them() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("archive");
    ok(&a, &["init"]);
    ok(
        &a,
        &[
            "user",
            "add",
            "ann",
            "--role",
            "user",
            "--accounts",
            "sales,hr",
            "--password-env",
            "WEB_PW",
        ],
    );
    ok(
        &a,
        &["user", "add", "root", "--role", "admin", "--password-env", "WEB_PW"],
    );
    let token = ok(&a, &["token", "create", "ci", "--role", "auditor"]);
    let token = token.trim();
    assert!(token.starts_with("mvt_") && token.len() > 40, "{token}");

    let file = a.join("secrets/readers.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(a.join("secrets")).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(PW) && !text.contains(&token[4..]));
    assert!(text.contains("$argon2id$"));

    let listed: Vec<serde_json::Value> = ok(&a, &["user", "list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let brief: Vec<(String, String, String, serde_json::Value)> = listed
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().into(),
                l["name"].as_str().unwrap().into(),
                l["role"].as_str().unwrap().into(),
                l["accounts"].clone(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        vec![
            (
                "user".into(),
                "ann".into(),
                "user".into(),
                serde_json::json!(["hr", "sales"])
            ),
            ("user".into(), "root".into(), "admin".into(), serde_json::Value::Null),
            ("token".into(), "ci".into(), "auditor".into(), serde_json::Value::Null),
        ]
    );
    let all = ok(&a, &["token", "list"]);
    assert!(!all.contains("argon2") && !all.contains(&token[4..]), "{all}");

    ok(&a, &["user", "passwd", "ann", "--password-env", "WEB_PW"]);
    ok(&a, &["user", "remove", "ann"]);
    ok(&a, &["token", "revoke", "ci"]);
    let left = ok(&a, &["user", "list", "--json"]);
    assert_eq!(left.lines().count(), 1, "{left}");
}

#[test]
fn wrong_grants_names_and_passwords_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("archive");
    ok(&a, &["init"]);
    refused(
        &a,
        &["user", "add", "ann", "--role", "user", "--password-env", "WEB_PW"],
        "needs --accounts",
    );
    refused(
        &a,
        &[
            "user",
            "add",
            "root",
            "--role",
            "admin",
            "--accounts",
            "x",
            "--password-env",
            "WEB_PW",
        ],
        "reads every account",
    );
    refused(
        &a,
        &["user", "add", "../x", "--role", "admin", "--password-env", "WEB_PW"],
        "must start with",
    );
    let out = common::cmd(
        &a,
        &["user", "add", "bob", "--role", "admin", "--password-env", "SHORT"],
    )
    .env("SHORT", "short")
    .output()
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shorter than 12"),
        "{out:?}"
    );
    ok(
        &a,
        &["user", "add", "bob", "--role", "admin", "--password-env", "WEB_PW"],
    );
    refused(
        &a,
        &["user", "add", "bob", "--role", "admin", "--password-env", "WEB_PW"],
        "exists already",
    );
    refused(&a, &["user", "remove", "nobody"], "no user");
    refused(&a, &["user", "passwd", "nobody", "--password-env", "WEB_PW"], "no user");
    refused(&a, &["token", "revoke", "nobody"], "no token");
    // Without a terminal and without a source, it says how to give one.
    refused(&a, &["user", "add", "carl", "--role", "admin"], "--password-env");
    let none = tmp.path().join("none");
    refused(&none, &["user", "list"], "no archive");
}

#[test]
fn in_an_encrypted_archive_the_readers_file_is_sealed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("archive");
    let with_key = |args: &[&str]| {
        let mut full = vec!["--passphrase-env", "ARCHIVE_PW"];
        full.extend_from_slice(args);
        let out = common::cmd(&a, &full)
            .env("ARCHIVE_PW", "archive passphrase")
            .env("WEB_PW", PW)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    with_key(&["init", "--encrypt"]);
    with_key(&["user", "add", "ann", "--role", "auditor", "--password-env", "WEB_PW"]);
    let raw = std::fs::read(a.join("secrets/readers.json")).unwrap();
    assert!(raw.starts_with(b"mailvault-sealed-readers-v1\n"));
    assert!(!raw.windows(3).any(|w| w == b"ann") && !raw.windows(7).any(|w| w == b"argon2i"));
    assert!(with_key(&["user", "list"]).contains("ann"));
}
