//! OAuth2 end to end against real servers: `oidc-provider` (a certified OpenID
//! Connect server, run by Node.js) and a Dovecot whose oauth2 passdb checks every
//! token at the provider's introspection endpoint. `mailvault login --device` and
//! `--browser` (the test plays the user's browser over HTTP) store a refresh token;
//! pulls log in with XOAUTH2 and OAUTHBEARER; with 20-second access tokens, paced
//! two-minute pulls and replays refresh as they go; a revoked sign-in stops at
//! `needs-login` after one refused attempt.

mod common;

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::dovecot::{sample_messages, Dovecot};
use common::oidc::{play_user, read_until, Oidc};

/// `mailvault` with the archive's passphrase, when it has one, in an env var.
fn mv(archive: &Path, pass: Option<&str>, args: &[&str]) -> Command {
    let mut c = common::cmd(archive, args);
    if let Some(p) = pass {
        c.env("MV_TEST_PASSPHRASE", p)
            .args(["--passphrase-env", "MV_TEST_PASSPHRASE"]);
    }
    c
}

/// Waits for a child (bounded), returning its output with the stderr lines already read.
fn finish(
    mut child: Child,
    mut err: BufReader<std::process::ChildStderr>,
    read: Vec<String>,
    limit: Duration,
) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "mailvault did not finish within {} s; stderr so far: {read:?}",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let mut out = child.wait_with_output().unwrap();
    out.stderr = format!("{}\n{rest}", read.join("\n")).into_bytes();
    out
}

fn login_args<'a>(oidc: &'a Oidc, account: &'a str, how: &'a str) -> Vec<&'a str> {
    vec![
        "login",
        "--account",
        account,
        "--provider",
        "generic",
        "--issuer",
        &oidc.issuer,
        "--client-id",
        "mailvault",
        how,
        "--timeout",
        "60",
    ]
}

/// `mailvault login --device`, with the test as the user entering the code.
fn login_device(archive: &Path, pass: Option<&str>, oidc: &Oidc, account: &str, user: &str) -> Output {
    let mut child = mv(archive, pass, &login_args(oidc, account, "--device"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let lines = read_until(&mut err, "enter the code");
    let prompt = lines.last().cloned().unwrap_or_default();
    let (url, code) = prompt
        .strip_prefix("To sign in, open ")
        .and_then(|r| r.split_once(" and enter the code "))
        .unwrap_or_else(|| panic!("no device prompt in {lines:?}"));
    let page = play_user(url, user, Some(code), None);
    assert!(page.contains("Sign-in Success"), "{page}");
    finish(child, err, lines, Duration::from_secs(60))
}

/// `mailvault login --browser`, with the test as the browser.
fn login_browser(archive: &Path, pass: Option<&str>, oidc: &Oidc, account: &str, user: &str) -> Output {
    let mut child = mv(archive, pass, &login_args(oidc, account, "--browser"))
        .env_remove("BROWSER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let lines = read_until(&mut err, "come back to");
    let url = lines
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{}/auth?", oidc.issuer))
                .map(|_| l.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no sign-in address in {lines:?}"));
    let back = lines.last().unwrap();
    let redirect = back[back.find("http://").unwrap()..].trim_end_matches('…');
    let page = play_user(&url, user, None, Some(redirect));
    assert!(page.contains("Signed in"), "{page}");
    finish(child, err, lines, Duration::from_secs(60))
}

fn stored(archive: &Path, account: &str) -> serde_json::Value {
    let text = std::fs::read(archive.join(format!("secrets/oauth2/{account}.json"))).unwrap();
    serde_json::from_slice(&text).unwrap()
}

fn pull(archive: &Path, pass: Option<&str>, d: &Dovecot, user: &str, extra: &[&str]) -> serde_json::Value {
    let url = format!("imaps://{user}@127.0.0.1:{}", d.imaps);
    let ca = d.ca_pem();
    let mut args = vec!["pull", &url, "--tls-ca", ca.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&common::stdout_of(mv(archive, pass, &args), "pull")).unwrap()
}

fn messages(n: usize) -> Vec<(Vec<u8>, &'static str, SystemTime)> {
    sample_messages(n)
        .into_iter()
        .map(|m| (m, "S", SystemTime::now()))
        .collect()
}

#[test]
fn device_and_browser_sign_ins_keep_a_refresh_token_and_pulls_log_in_with_xoauth2_and_oauthbearer() {
    let oidc = Oidc::start(600);
    let d = Dovecot::start_with(&oidc.dovecot_conf());
    // Known to Dovecot's user lookups (doveadm); its password is never used here.
    d.add_user("alice", "not-used-by-oauth2");
    d.load("alice", "INBOX", &messages(20));
    d.load("alice", "Work", &messages(25)[20..]);
    let tmp = tempfile::tempdir().unwrap();

    // The device grant, into a plain archive: the sign-in file is private and
    // holds the refresh token, which nothing printed.
    let plain = tmp.path().join("plain");
    let out = login_device(&plain, None, &oidc, "alice", "alice");
    assert!(
        out.status.success(),
        "login --device: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("signed in: account alice"), "{said}");
    let s = stored(&plain, "alice");
    let refresh = s["tokens"]["refresh_token"].as_str().expect("a refresh token is kept");
    let access = s["tokens"]["access_token"].as_str().unwrap();
    assert!(
        !said.contains(refresh) && !said.contains(access),
        "a token was printed: {said}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(plain.join("secrets/oauth2/alice.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let r = pull(
        &plain,
        None,
        &d,
        "alice",
        &["--oauth2-account", "alice", "--oauth2-mechanism", "xoauth2"],
    );
    assert_eq!(r["total"]["new_messages"], 25, "{r}");

    // The browser grant with PKCE and a loopback redirect, into an encrypted
    // archive: the sign-in is sealed.
    let sealed = tmp.path().join("sealed");
    let pass = Some("correct horse battery staple");
    common::stdout_of(mv(&sealed, pass, &["init", "--encrypt"]), "init --encrypt");
    let out = login_browser(&sealed, pass, &oidc, "alice-browser", "alice");
    assert!(
        out.status.success(),
        "login --browser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = std::fs::read(sealed.join("secrets/oauth2/alice-browser.json")).unwrap();
    assert!(
        !raw.windows(13).any(|w| w == b"refresh_token"),
        "the sign-in is not sealed"
    );
    let r = pull(
        &sealed,
        pass,
        &d,
        "alice",
        &["--oauth2-account", "alice-browser", "--oauth2-mechanism", "oauthbearer"],
    );
    assert_eq!(r["total"]["new_messages"], 25, "{r}");

    let log = d.log();
    assert!(log.contains("method=XOAUTH2"), "{log}");
    assert!(log.contains("method=OAUTHBEARER"), "{log}");
    // Without the passphrase the sealed sign-in cannot be used.
    let out = common::cmd(
        &sealed,
        &[
            "pull",
            &format!("imaps://alice@127.0.0.1:{}", d.imaps),
            "--oauth2-account",
            "alice-browser",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
}

/// Messages the paced runs move: at 4 a second, two minutes' worth.
const PACED: usize = 480;

#[test]
fn twenty_second_tokens_are_refreshed_through_two_minute_paced_pulls_and_replays_and_a_revoked_sign_in_needs_login() {
    let oidc = Oidc::start(20);
    let d = Dovecot::start_with(&oidc.dovecot_conf());
    d.add_user("alice", "alice-password");
    d.add_user("bob", "not-used-by-oauth2");
    d.load("alice", "INBOX", &messages(PACED));
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (archive, account) in [(&a, "alice"), (&b, "bob")] {
        let out = login_device(archive, None, &oidc, account, account);
        assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Archive b holds alice's mail (pulled with her password) to replay into bob.
    let url = format!("imaps://alice@127.0.0.1:{}", d.imaps);
    let ca = d.ca_pem();
    let mut c = common::cmd(
        &b,
        &[
            "pull",
            &url,
            "--tls-ca",
            ca.to_str().unwrap(),
            "--password-env",
            "MV_ALICE",
        ],
    );
    c.env("MV_ALICE", "alice-password");
    common::stdout_of(c, "pull with a password");

    // The service's path: a job whose account signs in with the stored sign-in,
    // paced to 4 messages a second; and a paced replay from the command line.
    let job = tmp.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[limits]\nmessages_per_second = 4\n\n[[accounts]]\nname = \"alice\"\nurl = \"{url}\"\n\
             oauth2 = {{ provider = \"generic\", client_id = \"mailvault\" }}\ntls_ca = \"{}\"\n",
            ca.display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let run = common::cmd(&a, &["-v", "run", job.to_str().unwrap(), "--once", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bob = format!("imaps://bob@127.0.0.1:{}", d.imaps);
    let replay = common::cmd(
        &b,
        &[
            "-v",
            "replay",
            "--to",
            &bob,
            "--tls-ca",
            ca.to_str().unwrap(),
            "--oauth2-account",
            "bob",
            "--messages-per-second",
            "4",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (run, replay) = (run.wait_with_output().unwrap(), replay.wait_with_output().unwrap());
    let took = started.elapsed();
    let run_log = String::from_utf8_lossy(&run.stderr).into_owned();
    let replay_log = String::from_utf8_lossy(&replay.stderr).into_owned();
    assert!(run.status.success(), "run: {run_log}");
    assert!(replay.status.success(), "replay: {replay_log}");
    assert!(took >= Duration::from_secs(110), "the runs were not paced: {took:?}");
    let runs: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "ok", "{runs}");
    assert_eq!(runs[0]["new_messages"], PACED, "{runs}");
    let report: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(report["total"]["appended"], PACED, "{report}");
    assert_eq!(report["total"]["failed"], 0, "{report}");
    // Several refreshes each (a token lasts 20 s and is renewed 5 s early), no
    // failed run, no refused token, no failed attempt at the provider.
    for (what, log) in [("pull", &run_log), ("replay", &replay_log)] {
        let refreshes = log.matches("access token refreshed").count();
        assert!(refreshes >= 4, "{what}: {refreshes} refreshes in two minutes:\n{log}");
        assert!(
            !log.contains("refused the access token"),
            "{what}:\n{log}\ndovecot:\n{}\nprovider:\n{}",
            d.log(),
            oidc.log()
        );
    }
    assert_eq!(oidc.count(" error "), 0, "{}", oidc.log());
    assert!(oidc.count("token refresh_token ok") >= 8, "{}", oidc.log());
    let bob_has = d.doveadm(&["mailbox", "status", "-u", "bob", "messages", "INBOX"]);
    assert!(bob_has.trim().ends_with(&format!("messages={PACED}")), "{bob_has}");

    // Revoked: the next run refreshes once, is refused, and the account stops at
    // needs-login; the run after asks the provider nothing.
    let s = stored(&a, "alice");
    oidc.revoke(s["tokens"]["refresh_token"].as_str().unwrap());
    let due = s["tokens"]["expires_at"].as_i64().unwrap() - 5 - chrono::Utc::now().timestamp();
    std::thread::sleep(Duration::from_secs(due.clamp(0, 30) as u64 + 1));
    for attempt in 0..2 {
        let out = common::cmd(&a, &["run", job.to_str().unwrap(), "--once", "--json"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "attempt {attempt}");
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(runs[0]["outcome"], "needs-login", "{runs}");
        let errors = runs[0]["errors"].to_string();
        assert!(errors.contains("mailvault login --account alice"), "{errors}");
        assert_eq!(
            oidc.count("token refresh_token error invalid_grant"),
            1,
            "attempt {attempt}: {}",
            oidc.log()
        );
    }
    let status = common::ok(&a, &["status", "--json"]);
    assert!(status.contains("\"needs-login\""), "{status}");
}
