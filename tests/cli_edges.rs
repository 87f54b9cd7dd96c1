//! The command line at its edges, as a newcomer meets it: a mistyped `--archive`
//! never becomes an empty archive that checks clean, and output into a pipe that
//! closes early (`| head -1`) ends quietly.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

/// Every command that only reads refuses an archive that does not exist, in one
/// line, with a non-zero exit, and creates nothing.
#[test]
fn commands_that_only_read_never_create_an_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out_dir = tmp.path().join("out");
    let out_arg = out_dir.to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["verify"],
        &["stats"],
        &["stats", "--json"],
        &["search", "anything"],
        &["show", "abcd"],
        &["export", "--format", "eml", "--out", out_arg],
    ];
    for args in commands {
        let out = common::run(&missing, args);
        if args.contains(&"--json") {
            // Asked for JSON: the error comes as JSON on stdout.
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(out.status.code(), Some(1));
            assert!(v["error"].as_str().unwrap().contains("no archive at"), "{v}");
            assert!(out.stderr.is_empty() && !missing.exists());
            continue;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.contains(&format!("no archive at {}", missing.display())) && err.contains("mailvault init"),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!out_dir.exists(), "export wrote nothing");
}

/// `mailvault … | head -1` on output far larger than a pipe holds: the pipeline
/// succeeds, mailvault itself exits 0, and nothing is printed on stderr.
#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    // A message of ~1 MB for `show`.
    let big = tmp.path().join("big.eml");
    let mut m = b"From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n".to_vec();
    while m.len() < 1 << 20 {
        m.extend_from_slice(b"a line of text that goes on and on, to fill a pipe many times over\r\n");
    }
    std::fs::write(&big, &m).unwrap();
    common::ok(&archive, &["-q", "import", "--account", "big", big.to_str().unwrap()]);
    let id = mailvault::model::MessageId::of(&m).to_hex();
    let search: &[&str] = &["search", "--format", "json", "--limit", "1000", "the"];
    // More than a pipe holds (64 KiB) plus all head may read before it exits.
    let full = common::ok(&archive, search);
    assert!(
        full.len() > 128 << 10,
        "the search output must overflow the pipe: {} bytes",
        full.len()
    );
    for args in [search, &["show", &id], &["show", "--raw", &id]] {
        let line = format!(
            "{} --archive {} {} | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}} ${{PIPESTATUS[1]}}\"",
            common::bin().display(),
            archive.display(),
            args.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ")
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&line)
            .env_remove("MAILVAULT_ARCHIVE")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "{args:?}: stderr: {err}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0 0",
            "{args:?}: exit of mailvault and head"
        );
    }
    assert_pipe_free(&archive);
}

/// The archive still opens and verifies after output was cut short.
fn assert_pipe_free(archive: &Path) {
    let out = common::run(archive, &["verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A server that is not there fails a pull at once, in one line: refusals are not
/// retried with backoff before a first session (that is for drops after one).
#[test]
fn an_unreachable_server_fails_a_pull_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then let go.
    let [port] = common::dovecot::free_ports::<1>();
    for scheme in ["imaps", "pop3s"] {
        let url = format!("{scheme}://alice@127.0.0.1:{port}");
        let mut c = common::cmd(&tmp.path().join("a"), &["pull", &url, "--password-env", "MV_TEST_PW"]);
        c.env("MV_TEST_PW", "x");
        let started = std::time::Instant::now();
        let out = c.output().unwrap();
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {err}");
        assert!(took < std::time::Duration::from_secs(2), "{url}: took {took:?}");
        assert_eq!(err.lines().count(), 1, "{url}: one line: {err}");
        assert!(err.contains("cannot connect"), "{url}: {err}");
    }
}

/// The bash completion script, sourced into a real bash, completes commands and
/// their flags.
#[test]
fn bash_completion_completes_commands_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("mailvault.bash");
    std::fs::write(
        &script,
        common::ok(&tmp.path().join("unused"), &["completions", "bash"]),
    )
    .unwrap();
    // `_mailvault` is what the script registers with `complete -F`.
    let complete = |words: &str| -> Vec<String> {
        let line = format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); \
             COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
             _mailvault mailvault \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash")
            .arg("--norc")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let commands = complete("mailvault se");
    assert!(
        commands.contains(&"search".to_string())
            && commands.contains(&"serve".to_string())
            && !commands.contains(&"pull".to_string()),
        "{commands:?}"
    );
    let flags = complete("mailvault search --li");
    assert_eq!(flags, ["--limit"], "{flags:?}");
    let shells = complete("mailvault completions f");
    assert_eq!(shells, ["fish"], "{shells:?}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let s = common::ok(&tmp.path().join("unused"), &["completions", shell]);
        assert!(s.contains("pull") && s.contains("--archive"), "{shell}");
    }
}

/// `mailvault man` writes a page `man -l` renders, with every command in it;
/// `--dir` writes one page per command.
#[test]
fn the_manual_page_renders_with_man() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("mailvault.1");
    std::fs::write(&page, common::ok(&tmp.path().join("unused"), &["man"])).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man (Debian man-db) is installed by scripts/test.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for heading in ["NAME", "SYNOPSIS", "SUBCOMMANDS"] {
        assert!(text.contains(heading), "{heading} in:\n{text}");
    }
    for command in ["pull", "search", "verify", "completions"] {
        assert!(text.contains(&format!("mailvault-{command}")), "{command} in:\n{text}");
    }
    let dir = tmp.path().join("man1");
    common::ok(&tmp.path().join("unused"), &["man", "--dir", dir.to_str().unwrap()]);
    let search = std::fs::read_to_string(dir.join("mailvault-search.1")).unwrap();
    assert!(search.contains("limit"), "{search}");
}

/// Colour: `--color always` colours the log even into a pipe, `never` never does,
/// and on a terminal `auto` colours unless NO_COLOR is set.
#[test]
fn colour_follows_the_flag_and_no_color() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    // A log line on stderr: a file skipped in a directory as not mail.
    let empty = tmp.path().join("no-mail");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "just some notes\n").unwrap();
    let logged = |color: &str| {
        let out = common::run(&archive, &["--color", color, "-v", "import", empty.to_str().unwrap()]);
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let always = logged("always");
    assert!(has_colour(&always), "{always:?}");
    for when in ["never", "auto"] {
        let text = logged(when);
        assert!(!text.is_empty() && !has_colour(&text), "{when}: {text:?}");
    }
    // A terminal, by `script` (util-linux): auto colours; NO_COLOR turns it off.
    let on_terminal = |no_color: Option<&str>| {
        let line = format!(
            "{} --archive {} -v import {}",
            common::bin().display(),
            archive.display(),
            empty.display()
        );
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]).env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        String::from_utf8_lossy(&c.output().expect("script (util-linux)").stdout).to_string()
    };
    let tty = on_terminal(None);
    assert!(has_colour(&tty), "{tty:?}");
    let plain = on_terminal(Some("1"));
    assert!(!plain.is_empty() && !has_colour(&plain), "{plain:?}");
}

/// Whether `text` holds an ANSI colour or style sequence (`ESC [ 1;33 m`); the
/// progress bar's cursor movements do not count.
fn has_colour(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let params = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b';').count();
        rest.as_bytes().get(params) == Some(&b'm')
    })
}

/// The binary `cargo install --path .` builds (the release profile) carries no
/// debug information: a few tens of MB, not hundreds.
#[test]
fn the_installed_binary_is_small() {
    if cfg!(debug_assertions) {
        eprintln!("a debug build: the size is checked in release builds (as CI runs them)");
        return;
    }
    let size = std::fs::metadata(common::bin()).unwrap().len();
    assert!(size < 64 << 20, "the release binary is {} MB", size >> 20);
}

/// A file named on the command line that is not mail (a binary, `Cargo.toml`) is
/// refused with a reason and a non-zero exit, while the mail named beside it is
/// imported; `--force` stores it as it is.
#[test]
fn importing_a_file_that_is_not_mail_needs_force() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    let binary = tmp.path().join("program.bin");
    let mut bytes = Vec::new();
    let mut rng = common::Rng::from_env("MV_IMPORT_SEED");
    while bytes.len() < 1 << 20 {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    std::fs::write(&binary, &bytes).unwrap();
    let cargo_toml = common::manifest_dir().join("Cargo.toml");
    let mail = tmp.path().join("one.eml");
    std::fs::write(&mail, "From: a@example.org\r\nSubject: real\r\n\r\nhello\r\n").unwrap();
    let args = |force: bool| {
        let mut v = vec![
            "import",
            binary.to_str().unwrap(),
            cargo_toml.to_str().unwrap(),
            mail.to_str().unwrap(),
        ];
        if force {
            v.push("--force");
        }
        v
    };
    let out = common::run(&archive, &args(false));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for named in [&binary, &cargo_toml] {
        assert!(
            err.lines()
                .any(|l| l.contains(&*named.to_string_lossy()) && l.contains("--force")),
            "{} refused: {err}",
            named.display()
        );
    }
    assert_eq!(common::stat_u64(&archive, "messages"), 1, "only the mail");
    let out = common::run(&archive, &args(true));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::stat_u64(&archive, "messages"), 3);
    let id = mailvault::model::MessageId::of(&bytes).to_hex();
    let shown = common::cmd(&archive, &["show", "--raw", &id]).output().unwrap();
    assert!(
        shown.stdout == bytes,
        "stored byte-exact: {} bytes out",
        shown.stdout.len()
    );
}

/// `show` prints a message for people (header fields decoded, the text, the
/// attachments, the folders); `--raw` gives the archived bytes.
#[test]
fn show_prints_a_message_for_people_and_raw_bytes_with_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    let raw = b"From: =?UTF-8?B?w4VzYQ==?= <asa@example.org>\r\nTo: bo@example.org\r\n\
Subject: =?ISO-8859-1?Q?caf=E9_menu?=\r\nDate: Tue, 1 Mar 2022 10:00:00 +0100\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe menu is attached.\r\n\
--b\r\nContent-Type: application/pdf; name=menu.pdf\r\nContent-Disposition: attachment; filename=menu.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
    let file = tmp.path().join("m.eml");
    std::fs::write(&file, raw).unwrap();
    common::ok(
        &archive,
        &[
            "-q",
            "import",
            "--account",
            "work",
            "--folder",
            "Lunch",
            file.to_str().unwrap(),
        ],
    );
    let id = mailvault::model::MessageId::of(raw).to_hex();
    let shown = common::ok(&archive, &["show", &id[..8]]);
    for line in [
        "From:    Åsa <asa@example.org>",
        "Subject: café menu",
        "Date:    2022-03-01T10:00:00+01:00",
        "Folders: work: Lunch",
        "The menu is attached.",
        "menu.pdf  (application/pdf, 9 B)",
    ] {
        assert!(shown.lines().any(|l| l.trim() == line), "{line:?} in:\n{shown}");
    }
    assert!(!shown.contains("=?UTF-8?") && !shown.contains("JVBERi0"), "{shown}");
    let out = common::cmd(&archive, &["show", "--raw", &id]).output().unwrap();
    assert!(out.stdout == raw, "--raw is byte-exact");
}

/// Every command that reads works on an archive its user may not write (the bits
/// say so, tested as an unprivileged user when run as root, since root ignores
/// them), and writes nothing into it.
#[test]
fn an_archive_its_user_may_only_read_serves_every_reading_command() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let archive = common::demo_archive(tmp.path());
    let root = unsafe { libc::geteuid() } == 0;
    // As root, the reader is `nobody`, who needs a binary it may run and the
    // archive as its own (an owner without write permission, not a stranger).
    const NOBODY: u32 = 65534;
    let bin = if root {
        let copy = tmp.path().join("mailvault");
        std::fs::copy(common::bin(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    } else {
        common::bin()
    };
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let set_tree = |writable: bool| {
        for e in walkdir::WalkDir::new(&archive) {
            let e = e.unwrap();
            if root && !writable {
                std::os::unix::fs::chown(e.path(), Some(NOBODY), Some(NOBODY)).unwrap();
            }
            let mode = match (e.file_type().is_dir(), writable) {
                (true, true) => 0o700,
                (true, false) => 0o500,
                (false, true) => 0o600,
                (false, false) => 0o400,
            };
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    if root {
        std::os::unix::fs::chown(&out_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    set_tree(false);
    let before = tree_listing(&archive);
    let as_reader = |args: &[&str]| {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        c.arg("--archive")
            .arg(&archive)
            .args(args)
            .env("HOME", tmp.path())
            .env_remove("MAILVAULT_ARCHIVE");
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            !err.contains("Os {") && !err.contains("IoError("),
            "{args:?}: no debug text: {err}"
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let ids = as_reader(&["search", "--format", "ids", "--limit", "3", "the"]);
    let id = ids.lines().next().expect("the sample has messages with \"the\"");
    assert!(as_reader(&["stats"]).contains("messages"));
    assert!(as_reader(&["show", id]).contains("Id:"));
    as_reader(&["show", "--raw", id]);
    as_reader(&[
        "show",
        "--query",
        &format!("msgid:{}", message_id_of(&as_reader(&["show", "--raw", id]))),
    ]);
    assert!(as_reader(&["verify"]).contains("clean"));
    let exported = as_reader(&[
        "export",
        "--format",
        "eml",
        "--out",
        out_dir.join("eml").to_str().unwrap(),
    ]);
    assert!(exported.starts_with("exported "), "{exported}");
    assert_eq!(tree_listing(&archive), before, "nothing in the archive changed");
    set_tree(true);
}

/// Every path under `dir` with its size and modification time.
fn tree_listing(dir: &Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.path().to_path_buf(), m.len(), m.modified().unwrap())
        })
        .collect()
}

/// The Message-ID of a raw message, without its angle brackets.
fn message_id_of(raw: &str) -> String {
    raw.lines()
        .find_map(|l| l.strip_prefix("Message-ID:").or_else(|| l.strip_prefix("Message-Id:")))
        .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>').to_string())
        .expect("the sample's messages have a Message-ID")
}

/// Search for people: `*` matches every message, `--limit 0` shows them all,
/// `--count` only counts, and a table cut by the limit says how many it shows.
#[test]
fn search_counts_shows_all_and_says_how_many_were_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    let total = common::stat_u64(&archive, "messages");
    let count = |args: &[&str]| -> u64 { common::ok(&archive, args).trim().parse().unwrap() };
    assert_eq!(count(&["search", "--count", "*"]), total);
    let the = count(&["search", "--count", "the"]);
    assert!(the > 20 && the < total, "{the}");
    let all = common::ok(&archive, &["search", "--format", "ids", "--limit", "0", "*"]);
    assert_eq!(all.lines().count() as u64, total);
    let out = common::run(&archive, &["search", "the"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        21,
        "a header and 20 rows"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), format!("20 of {the} shown"));
    let json = common::ok(&archive, &["search", "--count", "--json", "the"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap()["count"], the);
}

/// Small things a newcomer trips on: singular nouns for one, a folder or account
/// named to `export` that the archive lacks is an error, a malformed URL is a
/// usage error (exit 2), and `run DIR` points at `serve --jobs`.
#[test]
fn polish_plurals_unknown_names_bad_urls_and_run_of_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not mail\n").unwrap();
    std::fs::write(dir.join("m.eml"), "From: a@example.org\r\nSubject: one\r\n\r\nx\r\n").unwrap();
    let line = common::ok(&archive, &["-q", "import", dir.to_str().unwrap()]);
    assert!(line.contains("; 1 file skipped") && !line.contains("files"), "{line}");

    let out_dir = tmp.path().join("out");
    for args in [["--folder", "nosuch"], ["--account", "nobody"]] {
        let out = common::run(
            &archive,
            &[
                &["export", "--format", "eml", "--out", out_dir.to_str().unwrap()][..],
                &args,
            ]
            .concat(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("no {} named \"{}\"", &args[0][2..], args[1])),
            "{err}"
        );
    }

    let out = common::run(&archive, &["pull", "imaps://no user here", "--password-env", "X"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));

    let out = common::run(&archive, &["run", dir.to_str().unwrap(), "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("serve --jobs"), "{err}");
}

/// Every command's `--help` ends with real examples, and the top-level help does
/// not point at text only found elsewhere.
#[test]
fn every_command_help_ends_with_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let top = common::ok(&tmp.path().join("unused"), &["--help"]);
    assert!(!top.contains("below"), "{top}");
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A command's line; wrapped descriptions are indented further.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    for c in &commands {
        let help = common::ok(&tmp.path().join("unused"), &[c, "--help"]);
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Examples:")
            .skip(1)
            .take_while(|l| l.starts_with("  mailvault "))
            .collect();
        assert!(!examples.is_empty(), "{c}: no examples in\n{help}");
        assert!(
            examples.iter().all(|e| e.split_whitespace().any(|w| w == c)),
            "{c}: {examples:?}"
        );
    }
}

/// A query word that starts with `-` works after `--`, and without it the error
/// says where it goes.
#[test]
fn a_query_word_starting_with_a_dash_goes_after_double_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    let out = common::run(&archive, &["search", "-press"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("goes after '--'"), "{err}");
    let all = common::ok(&archive, &["search", "--count", "*"]);
    let without: u64 = common::ok(&archive, &["search", "--count", "--", "-press"])
        .trim()
        .parse()
        .unwrap();
    assert!(without < all.trim().parse::<u64>().unwrap(), "some messages say press");
}

/// The search table fits the width it is given (`$COLUMNS` when not on a
/// terminal), measuring CJK characters as two cells, cuts long folder names in
/// the middle and counts a message's other folders as `+N`.
#[test]
fn the_search_table_fits_the_width_and_counts_more_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    let file = tmp.path().join("m.eml");
    std::fs::write(
        &file,
        "From: =?UTF-8?B?5bGx55Sw5aSq6YOO?= <taro@example.jp>\r\nSubject: =?UTF-8?B?5Lya6K2w44Gu6K2w5LqL6Yyy44Gn44GZ44CC5p2l6YCx44Gu5LqI5a6a44KC5YWl44KM44Gm44GK44GN44G+44GX44Gf?=\r\nDate: Tue, 1 Mar 2022 10:00:00 +0000\r\n\r\nbody\r\n",
    )
    .unwrap();
    for folder in ["Projects/2022/a-very-long-folder-name/minutes", "Archive", "Japan"] {
        common::ok(&archive, &["-q", "import", "--folder", folder, file.to_str().unwrap()]);
    }
    for columns in [80usize, 120, 160] {
        let out = common::cmd(&archive, &["search", "*"])
            .env("COLUMNS", columns.to_string())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let row = text.lines().nth(1).expect("one row");
        assert_eq!(unicode_width::UnicodeWidthStr::width(row), columns, "{row:?}");
        let header = text.lines().next().unwrap();
        assert!(unicode_width::UnicodeWidthStr::width(header) <= columns, "{header:?}");
        assert!(row.contains(" +2"), "{row}");
        if columns == 80 {
            assert!(row.contains('…'), "a cut subject: {row}");
        }
        assert!(row.contains("会議"), "{row}");
    }
}
