//! Bad input gets a clear message and loses nothing (issue 2, item 5).

mod common;

use std::fs;

use common::*;
use mailvault::model::Hash32;

fn show_bytes(archive: &std::path::Path, raw: &[u8]) -> Vec<u8> {
    let out = run(archive, &["show", "--raw", &Hash32::of(raw).to_hex()]);
    assert!(
        out.status.success(),
        "show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn malformed_files_are_archived_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let mut garbage = vec![0u8; 0];
    let mut rng = Rng(42);
    garbage.extend((0..50_000).map(|_| rng.next() as u8));
    let long_header = format!("Subject: {}\r\nFrom: a@b\r\n\r\nbody\r\n", "x".repeat(2_000_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage.bin", garbage),
        (
            "headers-only.eml",
            b"From: a@b\r\nSubject: no body, no blank line".to_vec(),
        ),
        (
            "nul.eml",
            b"From: a@b\r\nSubject: nul\0in header\r\n\r\nbody \0\0 with NULs\r\n".to_vec(),
        ),
        ("long-header.eml", long_header.into_bytes()),
        ("no-final-newline.eml", b"Subject: x\n\nlast line".to_vec()),
    ];
    // garbage.bin does not look like mail: named with --force, it is archived as it is.
    let mut args = vec!["import".to_string(), "--force".to_string()];
    for (name, bytes) in &cases {
        fs::write(dir.join(name), bytes).unwrap();
        args.push(dir.join(name).to_string_lossy().into_owned());
    }
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a, &args_ref);
    for (name, bytes) in &cases {
        assert!(show_bytes(&a, bytes) == *bytes, "{name} not byte-exact");
    }
    assert_eq!(stat_u64(&a, "messages"), cases.len() as u64);
    assert!(ok(&a, &["verify"]).contains("clean"));
}

#[test]
fn empty_file_is_reported_not_archived() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let empty = tmp.path().join("empty.eml");
    fs::write(&empty, b"").unwrap();
    let out = run(&a, &["import", empty.to_str().unwrap()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty.eml") && err.contains("empty file"), "stderr: {err}");
    assert_eq!(stat_u64(&a, "messages"), 0);
}

#[test]
fn truncated_mbox_keeps_every_byte_it_has() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let full = "From a Mon Jan  1 00:00:00 2001\nSubject: one\n\nfirst\n\nFrom b Mon Jan  1 00:00:00 2001\nSubject: two\n\nsecond message, cut here";
    let mbox = tmp.path().join("cut.mbox");
    fs::write(&mbox, full).unwrap();
    ok(&a, &["import", mbox.to_str().unwrap()]);
    assert_eq!(stat_u64(&a, "messages"), 2);
    assert_eq!(
        show_bytes(&a, b"Subject: two\n\nsecond message, cut here"),
        b"Subject: two\n\nsecond message, cut here"
    );
    assert_eq!(show_bytes(&a, b"Subject: one\n\nfirst\n"), b"Subject: one\n\nfirst\n");
}

#[test]
fn non_mail_in_a_directory_is_skipped_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("LICENSE"), "The MIT License\n").unwrap();
    fs::write(dir.join("1."), "Subject: real\n\nmail\n").unwrap();
    let out = run(&a, &["import", dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["new_messages"], 1);
    assert_eq!(v["skipped"][0][0], dir.join("LICENSE").to_string_lossy().as_ref());
}

/// A message with a 30 MB attachment: archived and exported exactly, with peak memory
/// well under 10× the message size.
#[test]
fn thirty_megabyte_attachment_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let mut rng = Rng(7);
    let attachment: Vec<u8> = (0..30_000_000).map(|_| rng.next() as u8).collect();
    let b64 = base64_lines(&attachment);
    let mut raw = b"From: a@b\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nbig one\r\n--zz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    raw.extend_from_slice(b64.as_bytes());
    raw.extend_from_slice(b"\r\n--zz--\r\n");
    drop(b64);
    drop(attachment);
    let path = tmp.path().join("big.eml");
    fs::write(&path, &raw).unwrap();
    let (status, peak, _, err) = output_with_peak_rss(cmd(&a, &["import", path.to_str().unwrap()]));
    assert!(status.success(), "{}", String::from_utf8_lossy(&err));
    let limit = raw.len() as u64 * 10;
    eprintln!(
        "30 MB attachment: message {} bytes, import peak RSS {} bytes ({:.1}x)",
        raw.len(),
        peak,
        peak as f64 / raw.len() as f64
    );
    // With packs in S3 (the suite's second pass) the HTTP client's buffers and its
    // runtime's threads' allocator arenas come on top: 5.7x measured, against 4.2x
    // with local packs.
    let bound = if shared_garage().is_some() {
        limit * 6 / 10
    } else {
        limit / 2
    };
    assert!(
        peak < bound,
        "peak RSS {peak} is not well under 10x the message ({limit})"
    );
    let out = tmp.path().join("out");
    let (status, peak_export, _, _) =
        output_with_peak_rss(cmd(&a, &["export", "--format", "eml", "--out", out.to_str().unwrap()]));
    assert!(status.success());
    assert!(peak_export < limit * 7 / 10, "export peak RSS {peak_export}");
    let id = Hash32::of(&raw).to_hex();
    let exported = fs::read(out.join("local/INBOX").join(format!("{id}.eml"))).unwrap();
    assert!(exported == raw, "exported bytes differ");
}
