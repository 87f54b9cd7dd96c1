//! On disk, what mailvault makes is its owner's alone, and it neither follows nor
//! writes through links it was not asked to: archives, exports and status files are
//! 0700/0600 under any umask; an archive others can reach is reported; import skips
//! (and says so) symbolic links unless told to follow them, and detects loops when
//! it does; export refuses links and foreign files planted under `--out`; a query
//! that nests too deep is a usage error, not a stack overflow.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// `cmd` run with umask 022, as most shells have it.
fn with_umask_022(mut c: Command) -> Command {
    // SAFETY: umask is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    c
}

/// Every path under `root` (itself included) that group or others can reach.
fn reachable_by_others(root: &Path) -> Vec<(PathBuf, u32)> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| !e.path_is_symlink())
        .filter_map(|e| {
            let mode = e.metadata().ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then(|| (e.path().to_path_buf(), mode))
        })
        .collect()
}

fn succeed(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn archive_exports_and_status_files_are_private_under_umask_022() {
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("archive");
    let sample = demo_sample().join("enron");
    succeed(
        with_umask_022(cmd(&ar, &["import", sample.to_str().unwrap()])),
        "import",
    );
    succeed(with_umask_022(cmd(&ar, &["search", "from:enron"])), "search");
    let out = tmp.path().join("export");
    for format in ["eml", "maildir", "mbox"] {
        let dest = out.join(format);
        succeed(
            with_umask_022(cmd(
                &ar,
                &["export", "--format", format, "--out", dest.to_str().unwrap()],
            )),
            "export",
        );
    }
    // A job run writes its status file into the archive (the account's server is
    // not there: the run fails, and says so in the status file).
    let job = tmp.path().join("job.toml");
    fs::write(
        &job,
        "[retry]\nattempts = 0\n\n[[accounts]]\nname = \"nobody\"\nurl = \"imaps://me@127.0.0.1:1\"\npassword = { env = \"PW\" }\n",
    )
    .unwrap();
    let mut run = with_umask_022(cmd(&ar, &["run", job.to_str().unwrap(), "--once"]));
    run.env("PW", "x");
    let _ = run.output().unwrap();
    assert!(ar.join("status").read_dir().unwrap().next().is_some(), "a status file");
    let open = reachable_by_others(&ar);
    assert!(open.is_empty(), "reachable by others in the archive: {open:?}");
    let open = reachable_by_others(&out);
    assert!(open.is_empty(), "reachable by others in the export: {open:?}");
}

#[test]
fn an_archive_others_can_reach_is_reported_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("archive");
    ok(&ar, &["init"]);
    fs::set_permissions(&ar, fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(&ar, &["stats"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(ar.to_str().unwrap()), "{err}");
    assert!(err.contains("mode 755") && err.contains("chmod -R go-rwx"), "{err}");
    fs::set_permissions(&ar, fs::Permissions::from_mode(0o700)).unwrap();
    let out = run(&ar, &["stats"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("chmod"));
}

#[test]
fn a_query_nested_100000_deep_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("archive");
    ok(&ar, &["init"]);
    for q in [format!("{}x", "(".repeat(100_000)), format!("{}x", "-".repeat(100_000))] {
        // `--`: a query starting with `-` is not an option.
        let out = run(&ar, &["search", "--", &q]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains("column 65") && err.contains("more than 64 deep"), "{err}");
    }
}

/// A maildir and a directory of .eml files with links in them: to a message file
/// outside, to a directory of messages outside, and a loop.
fn tree_with_links(root: &Path) -> (PathBuf, PathBuf) {
    let outside = root.join("outside");
    fs::create_dir_all(outside.join("more")).unwrap();
    let msg = |n: &str| format!("From: a@example.com\nSubject: {n}\nMessage-ID: <{n}@x>\n\nbody {n}\n");
    fs::write(outside.join("secret.eml"), msg("linked-file")).unwrap();
    fs::write(outside.join("more/m.eml"), msg("linked-dir")).unwrap();

    let maildir = root.join("maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    fs::write(maildir.join("cur/1.host:2,S"), msg("maildir-own")).unwrap();
    symlink(outside.join("secret.eml"), maildir.join("cur/2.host:2,S")).unwrap();

    let dir = root.join("dir");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("own.eml"), msg("dir-own")).unwrap();
    symlink(outside.join("secret.eml"), dir.join("link.eml")).unwrap();
    symlink(outside.join("more"), dir.join("linked")).unwrap();
    symlink(&dir, dir.join("loop")).unwrap();
    (maildir, dir)
}

fn subjects(ar: &Path) -> Vec<String> {
    let out = ok(
        ar,
        &["search", "--format", "json", "--limit", "100", "from:example.com"],
    );
    let mut v: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["subject"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn import_skips_symbolic_links_and_says_so_unless_asked_to_follow() {
    let tmp = tempfile::tempdir().unwrap();
    let (maildir, dir) = tree_with_links(tmp.path());
    let ar = tmp.path().join("a");
    let out = run(&ar, &["import", maildir.to_str().unwrap(), dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for skipped in ["cur/2.host:2,S", "dir/link.eml", "dir/linked", "dir/loop"] {
        assert!(
            err.lines()
                .any(|l| l.contains(skipped) && l.contains("symbolic link not followed")),
            "{skipped} reported: {err}"
        );
    }
    assert_eq!(subjects(&ar), ["dir-own", "maildir-own"]);

    let ar = tmp.path().join("b");
    let out = run(
        &ar,
        &[
            "import",
            "--follow-symlinks",
            maildir.to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.contains("dir/loop") && l.to_lowercase().contains("loop")),
        "the loop is reported: {err}"
    );
    assert_eq!(
        subjects(&ar),
        ["dir-own", "linked-dir", "linked-file", "maildir-own"],
        "links followed, each message once"
    );
}

#[test]
fn export_never_writes_through_a_planted_link_or_over_a_foreign_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let sample = demo_sample().join("enron");
    ok(&ar, &["import", sample.to_str().unwrap(), "--account", "acc"]);
    let victim_dir = tmp.path().join("victim-dir");
    fs::create_dir_all(&victim_dir).unwrap();
    let victim = tmp.path().join("victim.txt");
    fs::write(&victim, "do not touch").unwrap();

    // A directory link where the account's directory goes (eml).
    let out = tmp.path().join("out-eml");
    fs::create_dir_all(&out).unwrap();
    symlink(&victim_dir, out.join("acc")).unwrap();
    let r = run(&ar, &["export", "--format", "eml", "--out", out.to_str().unwrap()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("refusing to write") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(
        fs::read_dir(&victim_dir).unwrap().next().is_none(),
        "nothing written through the link"
    );

    // A file link and a hard link where an mbox goes.
    let folders = ok(&ar, &["stats", "--json"]);
    assert!(folders.contains("messages"));
    let first = tmp.path().join("first");
    ok(&ar, &["export", "--format", "mbox", "--out", first.to_str().unwrap()]);
    let mbox_name = fs::read_dir(first.join("acc"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .find(|n| n.to_string_lossy().ends_with(".mbox"))
        .expect("an mbox file");
    for (how, plant) in [
        (
            "symbolic link",
            Box::new(|to: &Path, at: &Path| symlink(to, at).unwrap()) as Box<dyn Fn(&Path, &Path)>,
        ),
        (
            "hard links",
            Box::new(|to: &Path, at: &Path| fs::hard_link(to, at).unwrap()),
        ),
    ] {
        let out = tmp.path().join(format!("out-{}", how.replace(' ', "-")));
        fs::create_dir_all(out.join("acc")).unwrap();
        plant(&victim, &out.join("acc").join(&mbox_name));
        let r = run(&ar, &["export", "--format", "mbox", "--out", out.to_str().unwrap()]);
        assert!(!r.status.success(), "{how}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains("refusing to write") && err.contains(how), "{how}: {err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "do not touch", "{how}");
    }

    // Exporting again over our own earlier export is fine.
    ok(&ar, &["export", "--format", "mbox", "--out", first.to_str().unwrap()]);
}
