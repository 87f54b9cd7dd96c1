//! The JSON API of `mailvault web`, against the real server started by the test on
//! a free loopback port, over a real archive with two accounts: bearer tokens,
//! per-account visibility (a message outside the grant is not found, by id, by
//! raw download and by search), byte-exact downloads, errors as JSON with stable
//! codes, every read in the access log under the token's name, and an OpenAPI
//! document whose every path the server answers.

mod common;

use std::path::Path;
use std::time::Duration;

use common::web::{mbox_messages, Server};

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
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 10, "{:?}", paths.keys());
    // In the document's order (paths and methods sorted), so the hold placed by the
    // POST is there for the DELETE.
    let mut asked = 0;
    for (p, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let query = if p.ends_with("search") || p.ends_with("export") {
                "?q=x"
            } else {
                ""
            };
            let url = s.url(&p.replace("{id}", &id).replace("{name}", "case-1")) + query;
            let send = |token: Option<&str>| {
                let mut r = match method.as_str() {
                    "get" => c.get(&url),
                    "post" if p.ends_with("tags") => c
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(r#"{"query":"subject:salary-review","add":["case-1"]}"#),
                    "post" => c
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(r#"{"name":"case-1","query":"subject:salary-review","reason":"test"}"#),
                    "delete" => c.delete(&url),
                    other => panic!("{other} {p}: a method the test does not know"),
                };
                if let Some(t) = token {
                    r = r.bearer_auth(t);
                }
                r.send().unwrap()
            };
            asked += 1;
            if p.ends_with("openapi.json") {
                assert_eq!(send(None).status(), StatusCode::OK);
                continue;
            }
            let r = send(None);
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {p}");
            assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
            assert_eq!(error_code(r), "unauthenticated", "{method} {p}");
            let r = send(Some("mvt_not-a-real-token"));
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {p}");
            let r = send(Some(&token));
            assert!(r.status().is_success(), "{method} {p}: {}", r.status());
        }
    }
    assert_eq!(asked, 12, "every operation of the document was asked");
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

/// A reply to `refs`, sent at `hour` on 3 November.
fn reply(subject: &str, hour: u32, own: &str, refs: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: {subject}\r\nDate: Tue, 3 Nov 2026 {hour}:00:00 +0000\r\n\
         Message-ID: <{own}>\r\nIn-Reply-To: <{refs}>\r\nReferences: <{refs}>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[test]
fn conversations_exports_and_holds_keep_to_the_grant_and_the_role() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    // A conversation started in sales (quarterly-numbers), answered in sales and in hr.
    for (account, name, text) in [
        (
            "sales",
            "re1",
            reply(
                "re-numbers",
                10,
                "re1@example.com",
                "quarterly-numbers@example.com",
                "From the start, the invoice",
            ),
        ),
        (
            "hr",
            "re2",
            reply(
                "re-numbers-hr",
                13,
                "re2@example.com",
                "quarterly-numbers@example.com",
                "hr's view",
            ),
        ),
    ] {
        let dir = tmp.path().join(format!("more-{account}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.eml")), text).unwrap();
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
    let numbers = id_of(&a, "subject:quarterly-numbers");
    let salary = id_of(&a, "subject:salary-review");
    let sales = common::ok(
        &a,
        &["token", "create", "sales-bot", "--role", "user", "--accounts", "sales"],
    );
    let auditor = common::ok(&a, &["token", "create", "audit", "--role", "auditor"]);
    let admin = common::ok(&a, &["token", "create", "boss", "--role", "admin"]);
    let (sales, auditor, admin) = (sales.trim(), auditor.trim(), admin.trim());
    let s = Server::start(&a);
    let c = client();

    // The conversation: sales' token sees its two messages, the auditor all three.
    let subjects = |token: &str| -> Vec<String> {
        let t: serde_json::Value = get(&c, &s.url(&format!("/api/v1/messages/{numbers}/thread")), Some(token)).value();
        assert_eq!(t["root"], "quarterly-numbers@example.com", "{t}");
        t["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(subjects(sales), ["quarterly-numbers", "re-numbers"]);
    assert_eq!(subjects(auditor), ["quarterly-numbers", "re-numbers", "re-numbers-hr"]);
    let r = get(&c, &s.url(&format!("/api/v1/messages/{salary}/thread")), Some(sales));
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Export by query: sales' messages only, each byte for byte.
    let r = get(&c, &s.url("/api/v1/export?q=invoice&format=mbox"), Some(sales));
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/mbox");
    let got = mbox_messages(&r.bytes().unwrap());
    let want_ids = common::ok(&a, &["search", "--format", "ids", "invoice account:sales"]);
    let mut want: Vec<Vec<u8>> = want_ids
        .lines()
        .map(|id| common::cmd(&a, &["show", "--raw", id]).output().unwrap().stdout)
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    want.sort();
    assert_eq!(got.len(), 3, "quarterly-numbers, all-hands, re-numbers");
    assert_eq!(got_sorted, want);
    // The same as a zip of .eml files named by date and id.
    let r = get(&c, &s.url("/api/v1/export?q=invoice&format=zip"), Some(sales));
    assert_eq!(r.headers()["content-type"], "application/zip");
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(r.bytes().unwrap().to_vec())).unwrap();
    let mut entries = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        assert!(name.ends_with(".eml") && name.starts_with("2026-11-0"), "{name}");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        entries.push(bytes);
    }
    entries.sort();
    assert_eq!(entries, want, "the zip holds the archived bytes");

    // By ids: one outside the grant makes it not found; the auditor may.
    let url = s.url(&format!("/api/v1/export?ids={numbers},{salary}"));
    assert_eq!(get(&c, &url, Some(sales)).status(), StatusCode::NOT_FOUND);
    let both = mbox_messages(&get(&c, &url, Some(auditor)).bytes().unwrap());
    assert_eq!(both.len(), 2);

    // Holds: only an admin places and releases; the change log names the token.
    let place = |token: &str| {
        c.post(s.url("/api/v1/holds"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(r#"{"name":"case-7","query":"subject:salary-review","reason":"counsel's letter"}"#)
            .send()
            .unwrap()
    };
    assert_eq!(place(sales).status(), StatusCode::FORBIDDEN);
    assert_eq!(place(auditor).status(), StatusCode::FORBIDDEN);
    assert_eq!(place(admin).status(), StatusCode::CREATED);
    let holds: serde_json::Value = get(&c, &s.url("/api/v1/holds"), Some(auditor)).value();
    assert_eq!(holds[0]["name"], "case-7", "{holds}");
    assert_eq!(holds[0]["by"], "token:boss", "{holds}");
    assert_eq!(
        get(&c, &s.url("/api/v1/holds"), Some(sales)).status(),
        StatusCode::FORBIDDEN
    );
    let held = common::ok(&a, &["search", "--format", "ids", "is:held"]);
    assert_eq!(held.trim(), salary);
    let bad = c
        .post(s.url("/api/v1/holds"))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(r#"{"name":"x","query":"subject:("}"#)
        .send()
        .unwrap();
    assert_eq!(error_code(bad), "bad_request");
    let release = |name: &str| {
        c.delete(s.url(&format!("/api/v1/holds/{name}")))
            .bearer_auth(admin)
            .send()
            .unwrap()
    };
    assert_eq!(release("case-7").status(), StatusCode::NO_CONTENT);
    assert_eq!(error_code(release("case-7")), "not_found");
    assert_eq!(common::ok(&a, &["search", "--format", "ids", "is:held"]).trim(), "");

    // Facets: counted over every match, the other account's name never shown.
    let page: serde_json::Value = get(&c, &s.url("/api/v1/search?q=invoice&facets=true"), Some(sales)).value();
    let f = &page["facets"];
    assert_eq!(f["accounts"], serde_json::json!([["sales", 3]]), "{page}");
    assert_eq!(f["folders"], serde_json::json!([["sales", "INBOX", 3]]), "{page}");
    assert_eq!(f["years"], serde_json::json!([[2026, 3]]), "{page}");
    assert_eq!(f["domains"], serde_json::json!([["example.com", 3]]), "{page}");
    let page: serde_json::Value = get(&c, &s.url("/api/v1/search?q=invoice&facets=true"), Some(auditor)).value();
    assert_eq!(
        page["facets"]["accounts"],
        serde_json::json!([["sales", 3], ["hr", 2]]),
        "{page}"
    );

    // The overview: sales' token sees sales' folder only, and no totals.
    let o: serde_json::Value = get(&c, &s.url("/api/v1/stats"), Some(sales)).value();
    assert_eq!(o["folders"].as_array().unwrap().len(), 1, "{o}");
    assert_eq!(o["folders"][0]["account"], "sales");
    assert_eq!(o["folders"][0]["messages"], 3, "{o}");
    assert!(o["totals"].is_null(), "{o}");
    let o: serde_json::Value = get(&c, &s.url("/api/v1/stats"), Some(auditor)).value();
    assert_eq!(o["folders"].as_array().unwrap().len(), 2, "{o}");
    assert_eq!(o["totals"]["messages"], 5, "{o}");

    // The exports and conversations are in the access log with what they read.
    let audit: serde_json::Value =
        serde_json::from_str(&common::ok(&a, &["audit", "--json", "--user", "token:sales-bot"])).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "export" && e["query"] == "invoice" && e["count"] == 3),
        "{audit}"
    );
    assert!(
        entries.iter().any(|e| e["action"] == "search"
            && e["count"] == 2
            && e["query"].as_str().unwrap().starts_with("thread of")),
        "{audit}"
    );
}

fn post_json(c: &Client, url: &str, token: &str, body: serde_json::Value) -> reqwest::blocking::Response {
    c.post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap()
}

#[test]
fn tags_from_the_api_keep_to_the_grant_and_the_role() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path());
    let salary = id_of(&a, "subject:salary-review");
    let numbers = id_of(&a, "subject:quarterly-numbers");
    let token = |name: &str, args: &[&str]| {
        let mut all = vec!["token", "create", name];
        all.extend_from_slice(args);
        common::ok(&a, &all).trim().to_string()
    };
    let sales = token("sales-bot", &["--role", "user", "--accounts", "sales"]);
    let auditor = token("audit", &["--role", "auditor"]);
    let admin = token("boss", &["--role", "admin"]);
    let s = Server::start(&a);
    let c = client();
    let url = s.url("/api/v1/tags");

    // A user tags by query: only its accounts' messages (invoice is in all three).
    let r = post_json(
        &c,
        &url,
        &sales,
        serde_json::json!({ "query": "invoice", "add": ["Case-42"] }),
    );
    assert_eq!(r.status(), StatusCode::OK);
    let done = r.value();
    assert_eq!(
        (done["matched"].as_u64(), done["changed"].as_u64()),
        (Some(2), Some(2)),
        "{done}"
    );
    let found: serde_json::Value = get(&c, &s.url("/api/v1/search?q=tag:case-42"), Some(&admin)).value();
    assert_eq!(found["total"], 2, "{found}");
    assert_eq!(
        common::ok(&a, &["search", "--count", "tag:case-42 account:hr -account:sales"]).trim(),
        "0"
    );
    // An hr message by id: not found for sales, nothing changed; the admin may.
    let r = post_json(&c, &url, &sales, serde_json::json!({ "ids": [salary], "add": ["x"] }));
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(common::ok(&a, &["search", "--count", "tag:x"]).trim(), "0");
    let r = post_json(
        &c,
        &url,
        &admin,
        serde_json::json!({ "ids": [salary], "add": ["hr-only"] }),
    );
    assert_eq!(r.status(), StatusCode::OK);
    // The auditor reads only.
    let r = post_json(
        &c,
        &url,
        &auditor,
        serde_json::json!({ "ids": [numbers], "add": ["y"] }),
    );
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r), "forbidden");
    // Listing: counted over what the reader sees; hr's tag not named to sales.
    let listed = |t: &str| -> Vec<(String, u64)> {
        get(&c, &url, Some(t))
            .value()
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["tag"].as_str().unwrap().to_string(), x["messages"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(listed(&sales), [("case-42".to_string(), 2)]);
    assert_eq!(listed(&admin), [("case-42".to_string(), 2), ("hr-only".to_string(), 1)]);
    // Removing by tag; bad requests say why.
    let r = post_json(
        &c,
        &url,
        &sales,
        serde_json::json!({ "query": "tag:case-42", "remove": ["case-42"] }),
    );
    assert_eq!(r.value()["changed"], 2);
    for body in [
        serde_json::json!({ "query": "*", "add": ["two words"] }),
        serde_json::json!({ "query": "*" }),
        serde_json::json!({ "add": ["z"] }),
        serde_json::json!({ "query": "subject:(", "add": ["z"] }),
    ] {
        let r = post_json(&c, &url, &admin, body.clone());
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(listed(&admin), [("hr-only".to_string(), 1)]);
}
