//! The web pages' guards, over HTTP against the real `mailvault web` on a free
//! loopback port: every page sends a signed-out visitor to sign in; a user granted
//! one account gets "not found" for a message of another by every page that shows
//! it; a state change without the session's CSRF token is refused, and so is a
//! sign-in form that did not come from the server; wrong passwords are throttled; a
//! new password ends the sessions of the old; the pages carry their security
//! headers and the message frame its own, stricter policy.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::web::{hidden_field, Server};
use reqwest::blocking::Client;
use reqwest::StatusCode;

const PW: &str = "correct horse battery staple";

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(20))
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: {subject}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{subject}@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{body}</p>\r\n\
         --b\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
}

/// `sales` holds the quarterly numbers; `hr` the salary review.
fn archive(root: &Path) -> PathBuf {
    let a = root.join("archive");
    for (account, subject) in [("sales", "quarterly-numbers"), ("hr", "salary-review")] {
        let dir = root.join(account);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m.eml"), message(subject, "invoice")).unwrap();
        common::ok(
            &a,
            &[
                "import",
                dir.to_str().unwrap(),
                "--account",
                account,
                "--folder",
                "INBOX",
            ],
        );
    }
    for (name, role, accounts) in [("ann", "user", Some("sales")), ("root", "admin", None)] {
        common::web::add_user(&a, name, role, accounts, PW);
    }
    a
}

fn id_of(a: &Path, query: &str) -> String {
    common::ok(a, &["search", "--format", "ids", query]).trim().to_string()
}

/// Signs `c` in as `name`; the answer to the form.
fn sign_in(c: &Client, s: &Server, name: &str, pw: &str) -> reqwest::blocking::Response {
    let page = c.get(s.url("/login")).send().unwrap().text().unwrap();
    let csrf = hidden_field(&page, "csrf");
    c.post(s.url("/login"))
        .form(&[("name", name), ("password", pw), ("csrf", &csrf), ("next", "/search")])
        .send()
        .unwrap()
}

fn signed_in(s: &Server, name: &str) -> Client {
    let c = client();
    let r = sign_in(&c, s, name, PW);
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{name} signs in");
    assert_eq!(r.headers()["location"], "/search");
    c
}

fn page_paths(id: &str) -> Vec<String> {
    vec![
        "/search?q=invoice".into(),
        format!("/messages/{id}"),
        format!("/messages/{id}/body"),
        format!("/messages/{id}/eml"),
        format!("/messages/{id}/attachments/0"),
    ]
}

#[test]
fn signed_out_visitors_are_sent_to_sign_in_and_users_see_only_their_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let (sales, hr) = (
        id_of(&a, "subject:quarterly-numbers"),
        id_of(&a, "subject:salary-review"),
    );
    let s = Server::start(&a);

    let c = client();
    for path in page_paths(&hr) {
        let r = c.get(s.url(&path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        let to = r.headers()["location"].to_str().unwrap().to_string();
        assert!(to.starts_with("/login?next="), "{path} → {to}");
    }
    // Every other page, and every form, signed out.
    for path in [
        format!("/messages/{hr}/thread"),
        "/export?q=invoice".to_string(),
        "/holds".to_string(),
        "/overview".to_string(),
        "/".to_string(),
    ] {
        let r = c.get(s.url(&path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(
            to.starts_with("/login") || (path == "/" && to == "/search"),
            "{path} → {to}"
        );
    }
    for path in [
        "/logout",
        "/holds",
        "/holds/release",
        &format!("/messages/{sales}/tags"),
    ] {
        let r = c
            .post(s.url(path))
            .form(&[("csrf", "x"), ("name", "h"), ("query", "x")])
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "POST {path}");
        assert!(
            r.headers()["location"].to_str().unwrap().starts_with("/login"),
            "POST {path}"
        );
    }
    // A cookie the server never made is no session.
    let r = c
        .get(s.url("/search?q=x"))
        .header("cookie", "mailvault_session=forged")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let ann = signed_in(&s, "ann");
    for path in page_paths(&sales).into_iter().skip(1) {
        assert_eq!(ann.get(s.url(&path)).send().unwrap().status(), StatusCode::OK, "{path}");
    }
    for path in page_paths(&hr).into_iter().skip(1) {
        let r = ann.get(s.url(&path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path} of another account");
        assert!(!r.text().unwrap().contains("salary"), "{path}");
    }
    let results = ann.get(s.url("/search?q=invoice")).send().unwrap().text().unwrap();
    assert!(results.contains("quarterly-numbers") && !results.contains("salary-review"));
    let results = ann.get(s.url("/search?q=account:hr")).send().unwrap().text().unwrap();
    assert!(results.contains("0 messages"), "{results}");
    // The simple filter fields become terms of the query shown in the box.
    let results = ann
        .get(s.url("/search?q=&from=ann%40example.com&attachment=on&after=2026-01-01"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        results.contains("value=\"from:ann@example.com after:2026-01-01 has:attachment\"")
            && results.contains("quarterly-numbers")
            && results.contains("1 message,"),
        "{results}"
    );
    let root = signed_in(&s, "root");
    for path in page_paths(&hr).into_iter().skip(1) {
        assert_eq!(
            root.get(s.url(&path)).send().unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // The overview: a user sees their accounts' folders and no archive-wide totals.
    let mine = ann.get(s.url("/overview")).send().unwrap().text().unwrap();
    assert!(
        mine.contains(">sales<") && !mine.contains(">hr<") && !mine.contains("id=\"totals\""),
        "{mine}"
    );
    let all = root.get(s.url("/overview")).send().unwrap().text().unwrap();
    assert!(
        all.contains(">sales<") && all.contains(">hr<") && all.contains("id=\"totals\""),
        "{all}"
    );
    // Their conversation and export pages keep to the grant too.
    let thread = ann.get(s.url(&format!("/messages/{hr}/thread"))).send().unwrap();
    assert_eq!(thread.status(), StatusCode::NOT_FOUND);
    let export = ann.get(s.url(&format!("/export?id={hr}"))).send().unwrap();
    assert_eq!(export.status(), StatusCode::NOT_FOUND);
    let mbox = ann.get(s.url("/export?q=account%3Ahr&format=mbox")).send().unwrap();
    assert_eq!(mbox.status(), StatusCode::OK);
    assert!(
        mbox.bytes().unwrap().is_empty(),
        "a query naming another account exports nothing"
    );

    // The .eml is the archived bytes; every read is logged under the user's name.
    let eml = ann.get(s.url(&format!("/messages/{sales}/eml"))).send().unwrap();
    assert_eq!(eml.headers()["content-type"], "message/rfc822");
    let shown = common::cmd(&a, &["show", "--raw", &sales]).output().unwrap().stdout;
    assert_eq!(eml.bytes().unwrap().to_vec(), shown);
    let audit: serde_json::Value =
        serde_json::from_str(&common::ok(&a, &["audit", "--json", "--user", "web:ann"])).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let shows = entries
        .iter()
        .filter(|e| e["action"] == "show" && e["ids"][0] == sales.as_str())
        .count();
    assert_eq!(shows, 5, "page, frame, .eml, attachment and .eml again: {audit}");
    assert!(
        entries.iter().any(|e| e["action"] == "export" && e["count"] == 0),
        "{audit}"
    );
    assert_eq!(entries.iter().filter(|e| e["action"] == "search").count(), 3, "{audit}");
    assert!(
        !entries.iter().any(|e| e["ids"][0] == hr.as_str()),
        "a refused read is not a read: {audit}"
    );
}

#[test]
fn state_changes_need_the_csrf_token_and_sign_ins_are_throttled() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let s = Server::start(&a);

    // Signing out without the session's token is refused; with it, the session ends.
    let ann = signed_in(&s, "ann");
    let page = ann.get(s.url("/search")).send().unwrap().text().unwrap();
    let csrf = hidden_field(&page, "csrf");
    for token in ["", "not-the-token"] {
        let r = ann.post(s.url("/logout")).form(&[("csrf", token)]).send().unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    assert_eq!(ann.get(s.url("/search")).send().unwrap().status(), StatusCode::OK);
    let r = ann
        .post(s.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        ann.get(s.url("/search")).send().unwrap().status(),
        StatusCode::SEE_OTHER
    );

    // A sign-in form posted from elsewhere (without the token its page set) is refused.
    let c = client();
    let r = c
        .post(s.url("/login"))
        .form(&[("name", "ann"), ("password", PW), ("csrf", "made-up")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Five wrong passwords, then even the right one waits.
    for _ in 0..5 {
        assert_eq!(
            sign_in(&c, &s, "root", "wrong password!!").status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = sign_in(&c, &s, "root", PW);
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    // Another name is not held back by root's.
    assert_eq!(sign_in(&c, &s, "ann", PW).status(), StatusCode::SEE_OTHER);

    // A new password ends the sessions signed in with the old one.
    let ann = signed_in(&s, "ann");
    let out = common::cmd(&a, &["user", "passwd", "ann", "--password-env", "WEB_TEST_PW"])
        .env("WEB_TEST_PW", "another long password")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        ann.get(s.url("/search")).send().unwrap().status(),
        StatusCode::SEE_OTHER
    );
}

#[test]
fn a_hold_is_placed_only_by_an_admin_with_the_form_token() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let s = Server::start(&a);
    // An admin's hold form without the session's token places nothing; a user's
    // with it is refused for the role.
    let root = signed_in(&s, "root");
    let page = root.get(s.url("/holds")).send().unwrap().text().unwrap();
    let root_csrf = hidden_field(&page, "csrf");
    for token in ["", "forged"] {
        let r = root
            .post(s.url("/holds"))
            .form(&[("csrf", token), ("name", "h1"), ("query", "invoice")])
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    let ann = signed_in(&s, "ann");
    let page = ann.get(s.url("/search")).send().unwrap().text().unwrap();
    let r = ann
        .post(s.url("/holds"))
        .form(&[
            ("csrf", hidden_field(&page, "csrf").as_str()),
            ("name", "h1"),
            ("query", "invoice"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a user places no hold");
    assert!(common::ok(&a, &["hold", "list", "--json"]).trim().is_empty());
    let r = root
        .post(s.url("/holds"))
        .form(&[("csrf", root_csrf.as_str()), ("name", "h1"), ("query", "invoice")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(common::ok(&a, &["hold", "list", "--json"]).contains("\"h1\""));
}

#[test]
fn pages_carry_security_headers_and_the_message_frame_a_stricter_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let id = id_of(&a, "subject:quarterly-numbers");
    let s = Server::start(&a);
    let c = client();
    let login = c.get(s.url("/login")).send().unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let r = sign_in(&c, &s, "ann", PW);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("mailvault_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );

    let page = c.get(s.url(&format!("/messages/{id}"))).send().unwrap();
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    let html = page.text().unwrap();
    assert!(
        html.contains("sandbox=\"allow-popups allow-popups-to-escape-sandbox\""),
        "{html}"
    );

    let frame = c.get(s.url(&format!("/messages/{id}/body"))).send().unwrap();
    let csp = frame.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("sandbox") && csp.contains("img-src data:"), "{csp}");
    assert_eq!(frame.headers()["x-frame-options"], "SAMEORIGIN");
    let attachment = c.get(s.url(&format!("/messages/{id}/attachments/0"))).send().unwrap();
    assert_eq!(attachment.headers()["content-type"], "application/octet-stream");
    assert!(attachment.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
}

#[test]
fn over_tls_the_pages_are_served_with_secure_cookies_and_other_addresses_need_it() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let tls = tmp.path().join("tls");
    common::dovecot::make_certs(&tls);
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let s = Server::start_with(
        &a,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(tls.join("ca.pem")).unwrap()).unwrap();
    let c = Client::builder()
        .timeout(Duration::from_secs(20))
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let r = sign_in(&c, &s, "ann", PW);
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(cookies.iter().all(|c| c.contains("; Secure")), "{cookies:?}");
    assert_eq!(
        c.get(s.url("/search?q=invoice")).send().unwrap().status(),
        StatusCode::OK
    );
    // Plain HTTP to the TLS port gets no page.
    let plain = client();
    assert!(plain
        .get(s.url("/login").replace("https://", "http://"))
        .send()
        .is_err());

    // Another address than loopback, without TLS, is refused before anything starts.
    let out = common::run(&a, &["web", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert") && err.contains("--insecure-http"), "{err}");
    let out = common::run(&a, &["web", "--tls-cert", cert.to_str().unwrap()]);
    assert!(!out.status.success(), "a certificate without its key");
}

/// The message page shows its tags and, to those who may tag, a form that needs
/// the session's token; a user tags only within the grant.
#[test]
fn a_message_is_tagged_from_its_page_with_the_form_token() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let (numbers, salary) = (
        id_of(&a, "subject:quarterly-numbers"),
        id_of(&a, "subject:salary-review"),
    );
    let s = Server::start(&a);
    let ann = signed_in(&s, "ann");
    let page = ann
        .get(s.url(&format!("/messages/{numbers}")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("id=\"tag-form\""), "{page}");
    let csrf = hidden_field(&page, "csrf");
    let tag = |c: &Client, id: &str, token: &str, add: &str| {
        c.post(s.url(&format!("/messages/{id}/tags")))
            .form(&[("csrf", token), ("add", add), ("remove", "")])
            .send()
            .unwrap()
    };
    for token in ["", "forged"] {
        assert_eq!(
            tag(&ann, &numbers, token, "case-42").status(),
            StatusCode::FORBIDDEN,
            "{token:?}"
        );
    }
    assert_eq!(common::ok(&a, &["search", "--count", "tag:case-42"]).trim(), "0");
    let r = tag(&ann, &numbers, &csrf, "case-42, review");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("/messages/{numbers}").as_str());
    assert_eq!(
        common::ok(&a, &["search", "--format", "ids", "tag:review"]).trim(),
        numbers
    );
    let page = ann
        .get(s.url(&format!("/messages/{numbers}")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains(">case-42</a>") && page.contains(">review</a>"), "{page}");
    // hr's message is not ann's to see, nor to tag.
    assert_eq!(tag(&ann, &salary, &csrf, "x").status(), StatusCode::NOT_FOUND);
    assert_eq!(common::ok(&a, &["search", "--count", "tag:x"]).trim(), "0");
}
