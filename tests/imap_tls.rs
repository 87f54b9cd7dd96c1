//! The TLS and credential rules of IMAP pull (issue 4, item 6): untrusted
//! certificates refused with advice, `--tls-ca` accepted, STARTTLS required and
//! never skipped, plaintext pushed after the STARTTLS OK discarded, PREAUTH refused,
//! the password in no log line and in no argv.

mod common;

use std::path::Path;
use std::process::Output;

use base64::Engine;
use common::dovecot::{make_certs, Dovecot};
use common::fake_imap::{read_line, serve_session, spawn_once, spawn_plain, tls_server_config};

const PW: &str = "Tr1cky-pa55word-xyz";

fn pull(archive: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "pull",
        url,
        "--password-env",
        "MV_TEST_PW",
        "--timeout",
        "20",
        "--retries",
        "0",
    ];
    args.extend_from_slice(extra);
    common::cmd(archive, &args).env("MV_TEST_PW", PW).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn one_message_server() -> Dovecot {
    let d = Dovecot::start();
    d.add_user("dave", PW);
    let msg = b"From: a@example.com\r\nSubject: tls\r\nMessage-ID: <tls@example.com>\r\n\r\nhello\r\n".to_vec();
    d.load("dave", "INBOX", &[(msg, "", std::time::SystemTime::now())]);
    d
}

#[test]
fn self_signed_refused_by_default_then_trusted_with_tls_ca() {
    let d = one_message_server();
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let url = format!("imaps://dave@127.0.0.1:{}", d.imaps);
    let refused = pull(&ar, &url, &[]);
    assert!(!refused.status.success());
    let e = stderr(&refused);
    assert!(e.contains("not trusted") && e.contains("--tls-ca"), "{e}");
    let ca = d.ca_pem();
    let ok = pull(&ar, &url, &["--tls-ca", ca.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(common::stat_u64(&ar, "messages"), 1);
    // The explicit danger switch works too (and is the only way without the CA).
    let ar2 = tmp.path().join("b");
    let ok = pull(&ar2, &url, &["--danger-accept-invalid-certs"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
}

#[test]
fn starttls_with_dovecot_works_and_wrong_password_is_a_clear_error() {
    let d = one_message_server();
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let ca = d.ca_pem();
    let url = format!("imap://dave@127.0.0.1:{}", d.imap);
    let ok = pull(&ar, &url, &["--tls-ca", ca.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(common::stat_u64(&ar, "messages"), 1);
    let bad = common::cmd(
        &ar,
        &[
            "pull",
            &url,
            "--password-env",
            "MV_TEST_PW",
            "--tls-ca",
            ca.to_str().unwrap(),
        ],
    )
    .env("MV_TEST_PW", "wrong")
    .output()
    .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let e = stderr(&bad);
    assert!(e.contains("login failed for dave"), "{e}");
}

#[test]
fn starttls_required_but_not_offered_aborts_before_login() {
    let (port, server) = spawn_plain("* OK fake ready\r\n", "IMAP4rev1 AUTH=PLAIN");
    let tmp = tempfile::tempdir().unwrap();
    let out = pull(&tmp.path().join("a"), &format!("imap://eve@127.0.0.1:{port}"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("STARTTLS is required"), "{}", stderr(&out));
    let seen = server.join().unwrap();
    assert!(
        seen.iter()
            .all(|l| !l.to_ascii_uppercase().contains("LOGIN") && !l.contains(PW)),
        "{seen:?}"
    );
}

#[test]
fn preauth_greeting_is_refused() {
    let (port, server) = spawn_plain("* PREAUTH you are in\r\n", "IMAP4rev1 STARTTLS");
    let tmp = tempfile::tempdir().unwrap();
    let out = pull(&tmp.path().join("a"), &format!("imap://eve@127.0.0.1:{port}"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("PREAUTH"), "{}", stderr(&out));
    assert!(server.join().unwrap().is_empty());
}

#[test]
fn bytes_injected_after_starttls_ok_are_discarded() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let cfg = tls_server_config(certs.path());
    let (port, server) = spawn_once(move |mut s| {
        use std::io::Write;
        let mut seen = Vec::new();
        s.write_all(b"* OK fake ready\r\n").unwrap();
        let l = read_line(&mut s).unwrap();
        let tag = l.split(' ').next().unwrap().to_string();
        seen.push(l);
        s.write_all(format!("* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\n{tag} OK\r\n").as_bytes())
            .unwrap();
        let l = read_line(&mut s).unwrap();
        let tag = l.split(' ').next().unwrap().to_string();
        seen.push(l);
        // The OK and an injected plaintext "session" in one write.
        s.write_all(
            format!("{tag} OK begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN INJECTED\r\nM1 OK injected\r\n")
                .as_bytes(),
        )
        .unwrap();
        let conn = rustls::ServerConnection::new(cfg).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        seen.push("--- TLS ---".into());
        serve_session(&mut tls, "IMAP4rev1 AUTH=PLAIN", &mut seen);
        seen
    });
    let tmp = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.pem");
    let out = pull(
        &tmp.path().join("a"),
        &format!("imap://eve@127.0.0.1:{port}"),
        &["--tls-ca", ca.to_str().unwrap()],
    );
    let seen = server.join().unwrap();
    assert!(out.status.success(), "{}\n{seen:?}", stderr(&out));
    assert!(stderr(&out).contains("discarded plaintext"), "{}", stderr(&out));
    // After TLS the client asked for CAPABILITY again and then logged in.
    let after: Vec<&String> = seen.iter().skip_while(|l| *l != "--- TLS ---").collect();
    assert!(after.get(1).is_some_and(|l| l.ends_with("CAPABILITY")), "{seen:?}");
    assert!(
        after.iter().any(|l| l.to_ascii_uppercase().contains(" LOGIN ")),
        "{seen:?}"
    );
}

#[test]
fn password_in_no_log_line_and_no_argv() {
    let d = one_message_server();
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let ca = d.ca_pem();
    let forms = [
        PW.to_string(),
        base64::engine::general_purpose::STANDARD.encode(format!("\0dave\0{PW}")),
        base64::engine::general_purpose::STANDARD.encode(PW),
    ];
    for url in [
        format!("imap://dave@127.0.0.1:{}", d.imap),
        format!("imaps://dave@127.0.0.1:{}", d.imaps),
    ] {
        let mut child = common::cmd(
            &ar,
            &[
                "-vvv",
                "pull",
                &url,
                "--password-env",
                "MV_TEST_PW",
                "--tls-ca",
                ca.to_str().unwrap(),
            ],
        )
        .env("MV_TEST_PW", PW)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        // Watch the process's argv while it runs.
        let cmdline = format!("/proc/{}/cmdline", child.id());
        for _ in 0..200 {
            if let Ok(c) = std::fs::read(&cmdline) {
                assert!(!String::from_utf8_lossy(&c).contains(PW));
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(all.lines().count() > 20, "expected verbose logs:\n{all}");
        for f in &forms {
            assert!(!all.contains(f.as_str()), "secret form {f:?} appears in the output");
        }
    }
}

#[test]
fn oauth2_token_from_a_command_logs_in_with_xoauth2() {
    let (port, server) = spawn_once(|mut s| {
        use std::io::Write;
        let mut seen = Vec::new();
        s.write_all(b"* OK fake ready\r\n").unwrap();
        // CAPABILITY, then AUTHENTICATE XOAUTH2 with a continuation.
        let l = read_line(&mut s).unwrap();
        let tag = l.split(' ').next().unwrap().to_string();
        s.write_all(format!("* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER\r\n{tag} OK\r\n").as_bytes())
            .unwrap();
        let l = read_line(&mut s).unwrap();
        let tag = l.split(' ').next().unwrap().to_string();
        seen.push(l);
        s.write_all(b"+ \r\n").unwrap();
        let answer = read_line(&mut s).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(answer.trim()).unwrap();
        seen.push(String::from_utf8(decoded).unwrap());
        s.write_all(format!("{tag} OK authenticated\r\n").as_bytes()).unwrap();
        serve_session(&mut s, "IMAP4rev1", &mut seen);
        seen
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = common::cmd(
        &tmp.path().join("a"),
        &[
            "pull",
            &format!("imap://me@example.com@127.0.0.1:{port}"),
            "--insecure-plaintext",
            "--oauth2-token-command",
            "printf 'ya29.token-xyz\\n'",
        ],
    )
    .output()
    .unwrap();
    let seen = server.join().unwrap();
    assert!(out.status.success(), "{}\n{seen:?}", stderr(&out));
    assert!(seen[0].ends_with("AUTHENTICATE XOAUTH2"), "{seen:?}");
    assert_eq!(seen[1], "user=me@example.com\u{1}auth=Bearer ya29.token-xyz\u{1}\u{1}");
}

/// A hostile server that claims a 4 GiB literal for a message body and then hangs
/// up: the pull fails with an error naming the server and what it was doing — no
/// panic, no unbounded allocation — and the archive stays clean.
#[test]
fn hostile_literal_size_is_a_clear_error() {
    use std::io::Write;
    let (port, server) = spawn_once(|mut s| {
        let mut seen = Vec::new();
        s.write_all(b"* OK hostile ready\r\n").unwrap();
        while let Some(line) = read_line(&mut s) {
            seen.push(line.clone());
            let mut w = line.splitn(3, ' ');
            let tag = w.next().unwrap_or("*").to_string();
            let cmd = w.next().unwrap_or("").to_ascii_uppercase();
            let rest = w.next().unwrap_or("").to_ascii_uppercase();
            let reply = match cmd.as_str() {
                "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK\r\n"),
                "LIST" => format!("* LIST () \"/\" \"INBOX\"\r\n{tag} OK\r\n"),
                "EXAMINE" => {
                    format!("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 2] x\r\n{tag} OK [READ-ONLY] x\r\n")
                }
                "UID" if rest.contains("BODY.PEEK[]") => {
                    let _ = s.write_all(b"* 1 FETCH (UID 1 BODY[] {4294967295}\r\nFrom: x\r\n\r\nshort");
                    break;
                }
                "UID" => format!("* 1 FETCH (UID 1 RFC822.SIZE 20)\r\n{tag} OK\r\n"),
                _ => format!("{tag} OK\r\n"),
            };
            if s.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
        seen
    });
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let out = pull(&ar, &format!("imap://eve@127.0.0.1:{port}"), &["--insecure-plaintext"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("INBOX") && e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    common::ok(&ar, &["verify"]);
    assert_eq!(common::stat_u64(&ar, "messages"), 0);
}

/// `openssl req -x509`, the common way to make a server certificate by hand: it is
/// self-signed and says CA:TRUE. Only for 127.0.0.1 (no DNS name).
fn self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// The fingerprint as openssl prints it (`sha256 Fingerprint=AB:CD:…`), written as
/// `--tls-pin` takes it.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text.trim().rsplit('=').next().unwrap().to_string();
    format!("sha256:{hex}")
}

/// A Dovecot serving a self-signed CA:TRUE certificate: refused by default with the
/// fingerprint to pin; trusted when that very certificate is given with --tls-ca or
/// pinned by fingerprint; a different certificate with the same name, a wrong pin,
/// and the right pin under another host name are all refused.
#[test]
fn a_self_signed_certificate_is_trusted_when_given_or_pinned_and_nothing_else_is() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path(), "server");
    let (other, _) = self_signed(certs.path(), "other");
    let d = Dovecot::start_with(&format!(
        "ssl_cert = <{}\nssl_key = <{}\n",
        cert.display(),
        key.display()
    ));
    d.add_user("dave", PW);
    let msg = b"From: a@example.com\r\nSubject: pinned\r\nMessage-ID: <pin@example.com>\r\n\r\nhi\r\n".to_vec();
    d.load("dave", "INBOX", &[(msg, "", std::time::SystemTime::now())]);
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let url = format!("imaps://dave@127.0.0.1:{}", d.imaps);
    let pin = openssl_fingerprint(&cert);
    let refused_with = |extra: &[&str], words: &[&str]| {
        let out = pull(&ar, &url, extra);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{extra:?}: one line: {e}");
        for w in words {
            assert!(e.contains(w), "{extra:?}: {w:?} in {e}");
        }
        assert!(
            !e.contains("Other(") && !e.contains("Error {"),
            "{extra:?}: no debug text: {e}"
        );
    };
    let lower_pin = pin.replace(':', "").to_lowercase().replacen("sha256", "sha256:", 1);
    refused_with(&[], &["not trusted", "self-signed", "--tls-pin", &lower_pin]);
    refused_with(&["--tls-ca", other.to_str().unwrap()], &["not trusted"]);
    refused_with(
        &["--tls-pin", &openssl_fingerprint(&other)],
        &["none of the pinned", &lower_pin],
    );
    assert!(!ar.join("store").exists() || common::stat_u64(&ar, "messages") == 0);

    let given = pull(&ar, &url, &["--tls-ca", cert.to_str().unwrap()]);
    assert!(given.status.success(), "{}", stderr(&given));
    assert_eq!(common::stat_u64(&ar, "messages"), 1);
    let pinned = pull(&ar, &url, &["--tls-pin", &pin]);
    assert!(pinned.status.success(), "{}", stderr(&pinned));
    // The host name is still checked: the certificate names 127.0.0.1 only.
    let by_name = format!("imaps://dave@localhost:{}", d.imaps);
    let out = pull(&ar, &by_name, &["--tls-pin", &pin]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("does not match the host name"), "{e}");

    // The same pin in a job file.
    let job = tmp.path().join("pinned.toml");
    std::fs::write(
        &job,
        format!("[[accounts]]\nname = \"dave\"\nurl = \"{url}\"\npassword = {{ env = \"MV_TEST_PW\" }}\ntls_pin = [\"{pin}\"]\n"),
    )
    .unwrap();
    let jar = tmp.path().join("job-archive");
    let out = common::cmd(&jar, &["run", job.to_str().unwrap(), "--once"])
        .env("MV_TEST_PW", PW)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert_eq!(common::stat_u64(&jar, "messages"), 1);
}
