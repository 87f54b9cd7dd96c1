//! `mailvault probe` against real Dovecots configured seven ways — IMAP only, POP3
//! only, STARTTLS only, implicit TLS only, an expired certificate, no CONDSTORE,
//! COMPRESS on — each reported as it is (ports, TLS, certificate, capabilities,
//! sign-in methods; with a login, folders, counts, sizes and a timed download),
//! and advice that names the right protocol and warns against POP3 deletion where
//! IMAP is offered too.

mod common;

use std::time::SystemTime;

use common::dovecot::{sample_messages, Dovecot, TEST_PASSWORD};

/// What one case expects.
struct Case {
    name: &'static str,
    extra: &'static str,
    cert_days: i32,
    /// [imap 143, imaps 993, pop3 110, pop3s 995] listening.
    listening: [bool; 4],
    login: bool,
    protocol: Option<&'static str>,
    /// The scheme of the advised address.
    scheme: &'static str,
    /// A warning that must be there (and, for `None`, no POP3-deletion warning).
    warning: Option<&'static str>,
    /// Checks of the report beyond the table's.
    check: fn(&serde_json::Value),
}

fn service<'a>(r: &'a serde_json::Value, protocol: &str, mode: &str) -> &'a serde_json::Value {
    r["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["protocol"] == protocol && s["tls_mode"] == mode)
        .unwrap()
}

fn caps(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

const CASES: &[Case] = &[
    Case {
        name: "IMAP only",
        extra: "protocols = imap\n",
        cert_days: 3,
        listening: [true, true, false, false],
        login: false,
        protocol: Some("imap"),
        scheme: "imaps",
        warning: None,
        check: |r| {
            assert_eq!(service(r, "pop3", "implicit")["state"], "closed");
            assert_eq!(service(r, "pop3", "starttls")["state"], "closed");
            let plain = service(r, "imap", "starttls");
            assert_eq!(plain["starttls_offered"], true);
            assert_eq!(plain["tls"]["verified"], true, "{plain}");
            let tls = &service(r, "imap", "implicit")["tls"];
            assert!(tls["version"].as_str().unwrap().starts_with("TLSv1."), "{tls}");
            let names = caps(&tls["certificate"]["names"]);
            assert!(names.contains(&"127.0.0.1".to_string()) && names.contains(&"localhost".to_string()));
            assert!(tls["days_left"].as_i64().unwrap() >= 2);
            assert!(caps(&service(r, "imap", "implicit")["auth_mechanisms"]).contains(&"PLAIN".to_string()));
        },
    },
    Case {
        name: "POP3 only",
        extra: "protocols = pop3\n",
        cert_days: 3,
        listening: [false, false, true, true],
        login: false,
        protocol: Some("pop3"),
        scheme: "pop3s",
        warning: Some("Never use POP3 with deletion"),
        check: |r| {
            assert_eq!(service(r, "imap", "implicit")["state"], "closed");
            let p = service(r, "pop3", "implicit");
            let c = caps(&p["capabilities"]);
            for want in ["UIDL", "TOP", "PIPELINING", "SASL"] {
                assert!(c.contains(&want.to_string()), "{want}: {c:?}");
            }
            assert_eq!(service(r, "pop3", "starttls")["starttls_offered"], true);
            assert!(r["advice"]["notes"][0].as_str().unwrap().contains("all this server offers"));
        },
    },
    Case {
        name: "STARTTLS only",
        extra: "service imap-login {\n  inet_listener imaps {\n    port = 0\n  }\n}\nservice pop3-login {\n  inet_listener pop3s {\n    port = 0\n  }\n}\n",
        cert_days: 3,
        listening: [true, false, true, false],
        login: false,
        protocol: Some("imap"),
        scheme: "imap",
        warning: Some("Never use POP3 with deletion"),
        check: |r| {
            assert_eq!(service(r, "imap", "implicit")["state"], "closed");
            let plain = service(r, "imap", "starttls");
            assert_eq!(plain["tls"]["verified"], true);
            assert!(caps(&plain["capabilities"]).contains(&"IMAP4REV1".to_string()));
            assert_eq!(service(r, "pop3", "starttls")["tls"]["verified"], true);
        },
    },
    Case {
        name: "implicit TLS only",
        extra: "service imap-login {\n  inet_listener imap {\n    port = 0\n  }\n}\nservice pop3-login {\n  inet_listener pop3 {\n    port = 0\n  }\n}\n",
        cert_days: 3,
        listening: [false, true, false, true],
        login: false,
        protocol: Some("imap"),
        scheme: "imaps",
        warning: Some("Never use POP3 with deletion"),
        check: |r| {
            assert_eq!(service(r, "imap", "starttls")["state"], "closed");
            assert_eq!(service(r, "pop3", "starttls")["state"], "closed");
            assert_eq!(service(r, "imap", "implicit")["tls"]["verified"], true);
        },
    },
    Case {
        name: "expired certificate",
        extra: "protocols = imap\n",
        cert_days: -1,
        listening: [true, true, false, false],
        login: false,
        protocol: Some("imap"),
        scheme: "imaps",
        warning: Some("not trusted (it has expired)"),
        check: |r| {
            let s = service(r, "imap", "implicit");
            assert_eq!(s["state"], "open", "{s}");
            assert_eq!(s["tls"]["verified"], false);
            assert_eq!(s["tls"]["problem"], "it has expired");
            assert!(s["tls"]["days_left"].as_i64().unwrap() < 0, "{s}");
            // What the server offers is still read, to say what is there.
            assert!(caps(&s["capabilities"]).contains(&"IMAP4REV1".to_string()));
            let options = r["advice"]["options"].to_string();
            assert!(options.contains("--tls-pin sha256:"), "{options}");
        },
    },
    Case {
        name: "no CONDSTORE",
        extra: "protocols = imap\nimap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ NAMESPACE UIDPLUS MOVE SPECIAL-USE\n",
        cert_days: 3,
        listening: [true, true, false, false],
        login: true,
        protocol: Some("imap"),
        scheme: "imaps",
        warning: None,
        check: |r| {
            let l = &r["login"];
            let c = caps(&l["capabilities"]);
            assert!(!c.contains(&"CONDSTORE".to_string()) && c.contains(&"MOVE".to_string()), "{c:?}");
            assert!(r["advice"]["notes"].to_string().contains("no CONDSTORE/QRESYNC"), "{}", r["advice"]);
        },
    },
    Case {
        name: "COMPRESS on",
        extra: "protocols = imap\nprotocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n",
        cert_days: 3,
        listening: [true, true, false, false],
        login: true,
        protocol: Some("imap"),
        scheme: "imaps",
        warning: None,
        check: |r| {
            let c = caps(&r["login"]["capabilities"]);
            assert!(c.contains(&"COMPRESS=DEFLATE".to_string()), "{c:?}");
            assert!(c.contains(&"CONDSTORE".to_string()), "{c:?}");
            assert!(r["advice"]["notes"].to_string().contains("COMPRESS=DEFLATE"));
            assert!(!r["advice"]["notes"].to_string().contains("no CONDSTORE"));
        },
    },
];

/// `probe TARGET` with the four ports `ports` (imaps, imap, pop3s, pop3) and `extra`.
fn probe_args(target: &str, ports: [u16; 4], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["probe".to_string(), target.to_string()];
    for (flag, port) in ["--imaps-port", "--imap-port", "--pop3s-port", "--pop3-port"]
        .iter()
        .zip(ports)
    {
        args.extend([flag.to_string(), port.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_probe(archive: &std::path::Path, args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::cmd(archive, &args)
        .env("MV_TEST_PW", TEST_PASSWORD)
        .output()
        .unwrap()
}

#[test]
fn probe_reports_seven_kinds_of_dovecot_as_they_are_and_advises_the_right_protocol() {
    let cases: Vec<_> = CASES.iter().collect();
    // Two at a time: each starts its own Dovecot.
    std::thread::scope(|scope| {
        for pair in cases.chunks(2) {
            let handles: Vec<_> = pair.iter().map(|c| scope.spawn(move || run_case(c))).collect();
            for h in handles {
                h.join().unwrap();
            }
        }
    });
}

fn run_case(c: &Case) {
    let d = Dovecot::start_probe_target(c.extra, c.cert_days, c.listening);
    let mut messages = 0;
    if c.login {
        d.add_user("ann", TEST_PASSWORD);
        let now = SystemTime::now();
        let inbox: Vec<_> = sample_messages(12).into_iter().map(|m| (m, "S", now)).collect();
        d.load("ann", "INBOX", &inbox);
        d.load("ann", "Work", &inbox[..5]);
        messages = 17;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ca = d.ca_pem();
    let mut extra = vec!["--tls-ca", ca.to_str().unwrap(), "--json"];
    if c.login {
        extra.extend(["--login", "ann", "--password-env", "MV_TEST_PW"]);
    }
    let args = probe_args("127.0.0.1", [d.imaps, d.imap, d.pop3s, d.pop3], &extra);
    let out = run_probe(&tmp.path().join("a"), &args);
    let text = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}: {text} {}", c.name, String::from_utf8_lossy(&out.stderr)));
    let a = &r["advice"];
    assert_eq!(a["protocol"].as_str(), c.protocol, "{}: {a}", c.name);
    let address = a["address"].as_str().unwrap_or_default();
    assert!(
        address.starts_with(&format!("{}://", c.scheme)),
        "{}: {address}",
        c.name
    );
    let warnings = a["warnings"].to_string();
    match c.warning {
        Some(w) => assert!(warnings.contains(w), "{}: {warnings}", c.name),
        None => assert!(!warnings.contains("POP3 with deletion"), "{}: {warnings}", c.name),
    }
    for (i, mode) in [(1, "implicit"), (0, "starttls")] {
        let s = service(&r, "imap", mode);
        let want = if c.listening[i] { "open" } else { "closed" };
        if c.protocol != Some("pop3") || !c.listening[i] {
            assert_eq!(s["state"], want, "{}: {s}", c.name);
        }
    }
    if c.login {
        let l = &r["login"];
        assert_eq!(l["ok"], true, "{}: {l}", c.name);
        assert_eq!(l["messages"], messages, "{}: {l}", c.name);
        let folders = l["folders"].to_string();
        assert!(
            folders.contains("\"INBOX\"") && folders.contains("\"Work\""),
            "{folders}"
        );
        assert!(l["bytes"].as_u64().unwrap() > 0);
        assert!(l["rate"]["bytes_per_second"].as_f64().unwrap() > 0.0, "{l}");
        assert!(a["full_pull_seconds"].as_f64().unwrap() > 0.0, "{a}");
    }
    (c.check)(&r);
    assert!(out.status.success(), "{}: exit {}", c.name, out.status);
}

#[test]
fn probe_speaks_plainly_to_people() {
    let d = Dovecot::start();
    let tmp = tempfile::tempdir().unwrap();
    let ca = d.ca_pem();
    let args = probe_args(
        "ann@127.0.0.1",
        [d.imaps, d.imap, d.pop3s, d.pop3],
        &["--tls-ca", ca.to_str().unwrap()],
    );
    let out = run_probe(&tmp.path().join("a"), &args);
    assert!(out.status.success());
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.contains(&format!("Use IMAP: imaps://ann@127.0.0.1@127.0.0.1:{}", d.imaps)),
        "{out}"
    );
    assert!(out.contains("certificate trusted"), "{out}");
    assert!(out.contains("! Never use POP3 with deletion"), "{out}");
    // Nothing listening at all: exit 1, said plainly.
    let [free] = common::dovecot::free_ports::<1>();
    let out = run_probe(&tmp.path().join("a"), &probe_args("127.0.0.1", [free; 4], &[]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing usable answered"));
}
