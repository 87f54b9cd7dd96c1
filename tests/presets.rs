//! Provider presets (`presets/providers.toml`): the shipped file parses, every
//! provider has a source URL for its facts in a comment above it and gives usable
//! addresses; `--provider NAME USER` (and `pop3:USER`) pulls from the preset's server (a site preset
//! from `MAILVAULT_PRESETS` pointing at a real Dovecot here: the test network is
//! loopback only), by IMAP and by POP3; bad names and addresses are usage errors.

mod common;

use std::path::Path;

use common::dovecot::{pull_command, Dovecot, TEST_PASSWORD};
use mailvault::presets::{AuthKind, Presets, Protocol, Tls, BUILTIN};

#[test]
fn every_shipped_preset_parses_and_names_its_source() {
    let presets = Presets::builtin();
    let names: Vec<&str> = presets.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "gmail",
            "microsoft365",
            "outlook",
            "yahoo",
            "icloud",
            "fastmail",
            "gmx",
            "webde",
            "t-online",
            "mailbox.org"
        ]
    );
    // The comment lines between one [[provider]] and the next belong to the next.
    let blocks: Vec<&str> = BUILTIN.split("[[provider]]").collect();
    assert_eq!(blocks.len(), presets.providers.len() + 1);
    for (i, p) in presets.providers.iter().enumerate() {
        let before = blocks[i];
        let sources: Vec<&str> = before
            .lines()
            .rev()
            .take_while(|l| l.starts_with('#') || l.trim().is_empty())
            .filter(|l| l.starts_with('#') && l.contains("https://"))
            .collect();
        assert!(!sources.is_empty(), "{}: no source URL in a comment above it", p.name);
    }
    for p in &presets.providers {
        let imap = p.endpoint(Protocol::Imap, "ann@example.org").unwrap();
        assert!(
            imap.scheme.is_imap() && imap.port > 0 && imap.host.contains('.'),
            "{}",
            p.name
        );
        assert_eq!(imap.user, "ann@example.org");
        if let Some(pop3) = &p.pop3 {
            let ep = p.endpoint(Protocol::Pop3, "ann").unwrap();
            assert!(!ep.scheme.is_imap() && ep.port == pop3.port, "{}", p.name);
        }
        assert_eq!(
            p.imap.tls,
            Tls::Implicit,
            "{}: every shipped provider uses implicit TLS",
            p.name
        );
        if let Some(o) = &p.oauth2 {
            assert!(p.auth.contains(&AuthKind::Oauth2));
            for url in [&o.authorization, &o.token].into_iter().chain(o.device.as_ref()) {
                assert!(url.starts_with("https://"), "{}: {url}", p.name);
            }
            assert!(!o.scopes.is_empty(), "{}", p.name);
        }
    }
    let gmail = presets.find("Google").unwrap();
    assert_eq!(gmail.quota.download_per_day, Some(2_500_000_000));
    assert_eq!(gmail.folders.all_mail.as_deref(), Some("[Gmail]/All Mail"));
    assert!(presets.find("icloud").unwrap().pop3.is_none());
}

/// A site presets file whose provider `lab` is the test's Dovecot.
fn lab_presets(dir: &Path, d: &Dovecot) -> std::path::PathBuf {
    let path = dir.join("presets.toml");
    let text = format!(
        "# https://example.org/lab (the test's own server)\n[[provider]]\nname = \"lab\"\ntitle = \"Lab\"\n\
         imap = {{ host = \"127.0.0.1\", port = {}, tls = \"implicit\" }}\n\
         pop3 = {{ host = \"127.0.0.1\", port = {}, tls = \"implicit\" }}\n\
         auth = [\"password\"]\nconnections = 1\n",
        d.imaps, d.pop3s
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_provider_name_and_a_user_name_are_enough_to_pull_by_imap_and_pop3() {
    let d = Dovecot::start();
    d.add_user("ann", TEST_PASSWORD);
    d.save(
        "ann",
        "INBOX",
        b"From: a@example.org\r\nSubject: one\r\nMessage-ID: <p1@t>\r\n\r\nfirst\r\n",
    );
    d.save(
        "ann",
        "Work",
        b"From: b@example.org\r\nSubject: two\r\nMessage-ID: <p2@t>\r\n\r\nsecond\r\n",
    );
    let tmp = tempfile::tempdir().unwrap();
    let presets = lab_presets(tmp.path(), &d);
    let archive = tmp.path().join("a");

    let mut c = pull_command(&archive, "ann", &d, &["--provider", "lab", "--json", "-q"]);
    c.env("MAILVAULT_PRESETS", &presets);
    let r = common::json_of(c, "pull --provider lab ann");
    assert_eq!(r["total"]["new_messages"], 2, "{r:#}");
    assert_eq!(r["server"], format!("imaps://ann@127.0.0.1:{}", d.imaps), "{r:#}");
    assert_eq!(r["account"], "ann@127.0.0.1", "{r:#}");

    let mut c = pull_command(
        &archive,
        "pop3:ann",
        &d,
        &["--provider", "lab", "--account", "ann-pop", "--json", "-q"],
    );
    c.env("MAILVAULT_PRESETS", &presets);
    let r = common::json_of(c, "pull --provider lab pop3:ann");
    assert_eq!(r["total"]["fetched"], 1, "the INBOX over POP3: {r:#}");
    assert_eq!(r["server"], format!("pop3s://ann@127.0.0.1:{}", d.pop3s), "{r:#}");
    assert_eq!(
        common::stat_u64(&archive, "messages"),
        2,
        "the POP3 copy is the same message"
    );
}

#[test]
fn unknown_providers_missing_protocols_and_full_addresses_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    for (args, want) in [
        (
            &["pull", "--provider", "nope", "ann"][..],
            "no provider preset \"nope\"; known: gmail, microsoft365",
        ),
        (&["pull", "--provider", "icloud", "pop3:ann"], "offers no POP3"),
        (&["pull", "--provider", "gmail", "ann:pw"], "never a password"),
        (&["pull", "--provider", "gmail", "ftp://ann@x"], "unknown scheme"),
        (&["replay", "--provider", "nope", "--to", "ann"], "no provider preset"),
        (
            &[
                "migrate",
                "--from-provider",
                "gmail",
                "--from",
                "pop3:ann",
                "--to-provider",
                "icloud",
                "--to",
                "pop3:ann",
            ],
            "offers no POP3",
        ),
    ] {
        let o = common::run(&archive, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!archive.exists(), "nothing was created");
}
