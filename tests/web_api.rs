//! The JSON API of `mailvault web`, against the real server started by the test on
//! a free loopback port, over a real archive with two accounts: bearer tokens,
//! per-account visibility (a message outside the grant is not found, by id, by
//! raw download and by search), byte-exact downloads, errors as JSON with stable
//! codes, every read in the access log under the token's name, and an OpenAPI
//! document whose every path the server answers.

mod common;

use std::path::Path;
use std::time::Duration;

use common::web::Server;

use reqwest::blocking::Client;
use reqwest::StatusCode;

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: {subject}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.com>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// An archive with `sales` (2 messages) and `hr` (1 message, and one shared with sales).
fn archive(root: &Path) -> std::path::PathBuf {
    let a = root.join("archive");
    let put = |account: &str, files: &[(&str, Vec<u8>)]| {
        let dir = root.join(account);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(format!("{name}.eml")), bytes).unwrap();
        }
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
    };
    put(
        "sales",
        &[
            ("q1", message("quarterly-numbers", "invoice totals for the quarter")),
            ("shared", message("all-hands", "the invoice process changes")),
        ],
    );
    put(
        "hr",
        &[
            ("salary", message("salary-review", "confidential invoice of salaries")),
            ("shared", message("all-hands", "the invoice process changes")),
        ],
    );
    a
}

fn id_of(a: &Path, query: &str) -> String {
    common::ok(a, &["search", "--format", "ids", query]).trim().to_string()
}

fn get(c: &Client, url: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut r = c.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

/// A response's body as JSON.
trait Value {
    fn value(self) -> serde_json::Value;
}

impl Value for reqwest::blocking::Response {
    fn value(self) -> serde_json::Value {
        let bytes = self.bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
    }
}

fn error_code(r: reqwest::blocking::Response) -> String {
    let v = r.value();
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_token_reads_only_its_accounts_byte_exact_and_every_read_is_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let salary = id_of(&a, "subject:salary-review");
    let numbers = id_of(&a, "subject:quarterly-numbers");
    assert_eq!((salary.len(), numbers.len()), (64, 64));
    let sales = common::ok(
        &a,
        &["token", "create", "sales-bot", "--role", "user", "--accounts", "sales"],
    );
    let auditor = common::ok(&a, &["token", "create", "audit", "--role", "auditor"]);
    let (sales, auditor) = (sales.trim(), auditor.trim());
    let s = Server::start(&a);
    let c = client();

    // Search: the user's token sees sales only, and the shared message only as filed in sales.
    let page: serde_json::Value = get(&c, &s.url("/api/v1/search?q=invoice"), Some(sales)).value();
    let subjects: Vec<&str> = page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["subject"].as_str().unwrap())
        .collect();
    assert_eq!(page["total"], 2, "{page}");
    assert!(
        subjects.contains(&"quarterly-numbers") && subjects.contains(&"all-hands"),
        "{page}"
    );
    for h in page["hits"].as_array().unwrap() {
        assert_eq!(h["accounts"], serde_json::json!(["sales"]), "{h}");
    }
    // A query naming the other account finds nothing for this token.
    let page: serde_json::Value = get(&c, &s.url("/api/v1/search?q=account:hr"), Some(sales)).value();
    assert_eq!(page["total"], 0, "{page}");
    let page: serde_json::Value = get(&c, &s.url("/api/v1/search?q=invoice"), Some(auditor)).value();
    assert_eq!(page["total"], 3, "{page}");

    // By id: the sales message in full and byte for byte; the hr one is not found.
    let meta: serde_json::Value = get(&c, &s.url(&format!("/api/v1/messages/{numbers}")), Some(sales)).value();
    assert_eq!(meta["placements"][0]["account"], "sales", "{meta}");
    let raw = get(&c, &s.url(&format!("/api/v1/messages/{numbers}/raw")), Some(sales));
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.headers()["content-type"], "message/rfc822");
    let shown = common::cmd(&a, &["show", "--raw", &numbers]).output().unwrap().stdout;
    assert_eq!(raw.bytes().unwrap().to_vec(), shown);
    for path in [
        format!("/api/v1/messages/{salary}"),
        format!("/api/v1/messages/{salary}/raw"),
    ] {
        let r = get(&c, &s.url(&path), Some(sales));
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(r), "not_found");
        assert_eq!(get(&c, &s.url(&path), Some(auditor)).status(), StatusCode::OK, "{path}");
    }
    // An id that does not exist answers the same as one outside the grant.
    let none = "0".repeat(64);
    let r = get(&c, &s.url(&format!("/api/v1/messages/{none}")), Some(auditor));
    assert_eq!(
        (r.status(), error_code(r)),
        (StatusCode::NOT_FOUND, "not_found".to_string())
    );

    // Every read is in the access log under the token's name.
    let audit = common::ok(&a, &["audit", "--json"]);
    let audit: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let by = |user: &str| entries.iter().filter(|e| e["user"] == user).count();
    assert_eq!(by("token:sales-bot"), 4, "{audit}"); // 2 searches, metadata, raw
    assert!(by("token:audit") >= 3, "{audit}");
    assert!(entries
        .iter()
        .any(|e| e["user"] == "token:sales-bot" && e["query"] == "invoice" && e["count"] == 2));
}

#[test]
fn without_a_valid_token_every_route_answers_401_and_errors_have_stable_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let token = common::ok(&a, &["token", "create", "t", "--role", "admin"]);
    let token = token.trim().to_string();
    let id = id_of(&a, "subject:salary-review");
    let s = Server::start(&a);
    let c = client();

    // The OpenAPI document is public and lists the routes; each answers (401 without a
    // token, not the fallback's "no such route").
    let doc: serde_json::Value = get(&c, &s.url("/api/v1/openapi.json"), None).value();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(paths.len(), 4, "{paths:?}");
    for p in &paths {
        let url = s.url(&p.replace("{id}", &id)) + if p.ends_with("search") { "?q=x" } else { "" };
        let r = get(&c, &url, None);
        if p.ends_with("openapi.json") {
            assert_eq!(r.status(), StatusCode::OK);
            continue;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{p}");
        assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert_eq!(error_code(r), "unauthenticated", "{p}");
        let r = get(&c, &url, Some("mvt_not-a-real-token"));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{p}");
        let r = get(&c, &url, Some(&token));
        assert_eq!(r.status(), StatusCode::OK, "{p}");
    }
    // A revoked token stops at once, without a restart.
    common::ok(&a, &["token", "revoke", "t"]);
    assert_eq!(
        get(&c, &s.url("/api/v1/search?q=x"), Some(&token)).status(),
        StatusCode::UNAUTHORIZED
    );
    let token = common::ok(&a, &["token", "create", "t2", "--role", "admin"]);
    let token = token.trim();

    for (path, status, code) in [
        ("/api/v1/search?q=subject:(", StatusCode::BAD_REQUEST, "bad_request"),
        ("/api/v1/messages/abc", StatusCode::BAD_REQUEST, "bad_request"),
        ("/api/v1/nothing-here", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let r = get(&c, &s.url(path), Some(token));
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(error_code(r), code, "{path}");
    }
}
