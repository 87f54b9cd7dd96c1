//! Damage is found and named; unknown formats are refused (issue 2, item 6).

mod common;

use std::fs;

use common::*;
use mailvault::archive::layout::FORMAT_VERSION;
use mailvault::archive::Archive;

#[test]
fn flipped_byte_is_named_by_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    ok(&a, &["import", demo_sample().to_str().unwrap()]);
    let victim = {
        let arch = Archive::open(&a).unwrap();
        let ids = arch.message_ids().unwrap();
        let victim = ids[ids.len() / 2];
        assert!(arch.testing_flip_skeleton_byte(&victim, 10).unwrap());
        victim
    };
    let out = run(&a, &["verify"]);
    assert_eq!(out.status.code(), Some(3), "verify exits 3 on damage");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&victim.to_hex()),
        "verify output names the message:\n{text}"
    );
    // A flipped bit breaks the zstd frame it is in: every message of that frame is
    // named, each with the same pack and frame, and nothing else is.
    // (Parts that frame holds are named as damaged parts too.)
    let damaged: Vec<&str> = text.lines().filter(|l| l.starts_with("damaged ")).collect();
    let frame = damaged[0].rsplit_once("pack ").unwrap().1.split(':').next().unwrap();
    assert!(damaged.iter().all(|l| l.contains(frame)), "{text}");
    let summary = if damaged.len() == 1 {
        ": 1 problem".to_string()
    } else {
        format!(": {} problems", damaged.len())
    };
    assert!(text.contains(&summary), "{text}");
    // Reading that message fails with the id; others still read.
    let shown = run(&a, &["show", "--raw", &victim.to_hex()]);
    assert!(!shown.status.success());
    assert!(String::from_utf8_lossy(&shown.stderr).contains(&victim.to_hex()));
}

#[test]
fn future_format_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    ok(&a, &["init"]);
    let marker = a.join("mailvault-archive.toml");
    let text = fs::read_to_string(&marker).unwrap();
    let current = format!("format_version = {FORMAT_VERSION}");
    assert!(text.contains(&current), "{text}");
    let future = FORMAT_VERSION + 1;
    fs::write(&marker, text.replace(&current, &format!("format_version = {future}"))).unwrap();
    let out = run(&a, &["stats"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("format version {future}"))
            && err.contains(&format!("reads format versions 1 to {FORMAT_VERSION}")),
        "{err}"
    );
    fs::write(&marker, text).unwrap();

    // The database's own record of the version is checked too.
    Archive::open(&a).unwrap().testing_set_db_format_version(7).unwrap();
    let err = String::from_utf8_lossy(&run(&a, &["stats"]).stderr).into_owned();
    assert!(err.contains("format version 7"), "{err}");
}

#[test]
fn a_directory_that_is_not_an_archive_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let out = run(tmp.path(), &["import", demo_sample().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a mailvault archive"));
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing written");
}

#[test]
fn a_second_writer_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let first = Archive::open_or_create(&a).unwrap();
    let err = Archive::open(&a).err().expect("second open fails").to_string();
    assert!(err.contains("in use by another mailvault process"), "{err}");
    let mail = tmp.path().join("one.eml");
    fs::write(&mail, b"Subject: one\r\n\r\nbody\r\n").unwrap();
    let out = run(&a, &["import", mail.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another mailvault process"));
    // Reading needs no lock: stats works beside the writer.
    ok(&a, &["stats"]);
    drop(first);
    ok(&a, &["import", mail.to_str().unwrap()]);
}

/// A pack damaged in its store (the zstd checksum of its frames fails): `verify` names each
/// message it breaks, with the accounts and folders the message is in, in text and
/// as structured JSON.
#[test]
fn a_damaged_pack_file_names_the_messages_and_folders_it_breaks() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    ok(
        &a,
        &["-q", "import", "--account", "ann", demo_sample().to_str().unwrap()],
    );
    {
        // The largest pack, wherever the suite keeps packs (a local directory or S3).
        let arch = Archive::open(&a).unwrap();
        let (number, pack) = arch
            .pack_records()
            .into_iter()
            .max_by_key(|(_, r)| r.size)
            .expect("the sample is in a pack");
        let middle = pack.size as usize / 2;
        assert!(arch.testing_damage_pack(number, middle..middle + 64, 0x5a).unwrap());
    }

    let out = run(&a, &["verify", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let damaged: Vec<&serde_json::Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "damaged_message")
        .collect();
    assert!(!damaged.is_empty(), "{report}");
    for p in &damaged {
        let id = p["message"].as_str().unwrap();
        assert_eq!(id.len(), 64, "{p}");
        let filed = p["placements"].as_array().unwrap();
        assert!(
            !filed.is_empty() && filed.iter().all(|f| f["account"] == "ann" && f["folder"].is_string()),
            "{p}"
        );
    }
    let text = String::from_utf8_lossy(&run(&a, &["verify"]).stdout).into_owned();
    let first = damaged[0]["message"].as_str().unwrap();
    let folder = damaged[0]["placements"][0]["folder"].as_str().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("damaged message {first} (in ann: {folder}")) && l.contains("zstd")),
        "{text}"
    );
}
