//! The web interface in a real headless Chromium (Debian's `chromium`, driven over
//! WebDriver by `chromedriver`) against `mailvault web` on a free loopback port: a
//! reader signs in, searches, opens a result and downloads its `.eml` (the same
//! bytes as `show --raw`); and hostile HTML mail, viewed one message after another,
//! runs no script and makes no request to the loopback listener it points at.
//! Screenshots of each page go to `$CARGO_TARGET_TMPDIR/web-screenshots/`.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::web::{mbox_messages, Server};
use common::webdriver::Browser;

const PW: &str = "correct horse battery staple";
/// A 1×1 PNG.
const PNG_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn screenshots() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn plain(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: team@example.com\r\nSubject: {subject}\r\nDate: Tue, 3 Nov 2026 09:00:00 +0000\r\n\
         Message-ID: <{subject}@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

fn with_picture(from: &str, subject: &str) -> String {
    format!(
        "From: {from}\r\nTo: team@example.com\r\nSubject: {subject}\r\nDate: Wed, 4 Nov 2026 09:00:00 +0000\r\n\
         Message-ID: <{subject}@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
         --b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe floor plan is attached.\r\n\
         --b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The <b>floor plan</b> is attached.</p>\r\n--b2--\r\n\
         --b1\r\nContent-Type: image/png; name=\"plan.png\"\r\nContent-Disposition: attachment; filename=\"plan.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{PNG_B64}\r\n--b1--\r\n"
    )
}

/// A reply to the message whose subject (and Message-ID) is `to`, a day after it.
fn reply_to(to: &str, subject: &str) -> String {
    format!(
        "From: Bo <bo@example.com>\r\nTo: ann@example.com\r\nSubject: {subject}\r\nDate: Thu, 5 Nov 2026 09:00:00 +0000\r\n\
         Message-ID: <{subject}@example.com>\r\nIn-Reply-To: <{to}@example.com>\r\nReferences: <{to}@example.com>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nLooks good.\r\n"
    )
}

fn html_message(n: usize, name: &str, html: &str) -> String {
    format!(
        "From: Mallory <mallory@example.net>\r\nTo: team@example.com\r\nSubject: hostile-{n:02} {name}\r\n\
         Date: Thu, 5 Nov 2026 09:{n:02}:00 +0000\r\nMessage-ID: <hostile-{n}@example.net>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
    )
}

/// Imports `messages` (file name, text) into `account`/INBOX.
fn import(archive: &Path, root: &Path, account: &str, messages: &[(String, String)]) {
    let dir = root.join(format!("in-{account}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in messages {
        std::fs::write(dir.join(format!("{name}.eml")), text).unwrap();
    }
    common::ok(
        archive,
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

fn sign_in(b: &Browser, s: &Server, name: &str) {
    b.goto(&s.url("/login"));
    b.type_into(&b.find("#name"), name);
    b.type_into(&b.find("#password"), PW);
    b.click(&b.find("#sign-in"));
    wait_for("the search page after signing in", || b.url().ends_with("/search"));
}

/// Waits (10 s at most) until `cond` holds.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_reader_signs_in_searches_opens_a_result_and_downloads_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("archive");
    import(
        &a,
        tmp.path(),
        "sales",
        &[
            ("plan".into(), with_picture("Ann <ann@example.com>", "floor-plan")),
            (
                "note".into(),
                plain("Ann <ann@example.com>", "lunch", "no attachment here"),
            ),
            (
                "other".into(),
                plain("Bo <bo@example.com>", "numbers", "quarterly numbers"),
            ),
            ("reply".into(), reply_to("floor-plan", "re-floor-plan")),
        ],
    );
    common::web::add_user(&a, "ann", "user", Some("sales"), PW);
    let s = Server::start(&a);
    let shots = screenshots();
    let b = Browser::start(&tmp.path().join("downloads"));

    // Signed out, a page sends the browser to sign in.
    b.goto(&s.url("/search?q=lunch"));
    assert!(b.url().contains("/login"), "{}", b.url());
    b.screenshot(&shots.join("login.png"));
    sign_in(&b, &s, "ann");

    b.type_into(&b.find("#q"), "from:ann has:attachment");
    b.click(&b.find("#search"));
    wait_for("the results", || b.url().contains("/search?q="));
    assert_eq!(b.text(&b.find("#count")), "1 message, 1–1 shown");
    let rows = b.find_all("#results tbody tr");
    assert_eq!(rows.len(), 1);
    b.screenshot(&shots.join("search.png"));

    b.click(&b.find("#results a.open"));
    wait_for("the message page", || b.url().contains("/messages/"));
    assert_eq!(b.text(&b.find("#subject")), "floor-plan");
    let id = b.url().rsplit('/').next().unwrap().to_string();
    assert_eq!(id.len(), 64, "{}", b.url());
    // The HTML body is in its sandboxed frame; the picture attachment is previewed.
    let frame = b.find("#body-frame");
    assert_eq!(
        b.attribute(&frame, "sandbox").as_deref(),
        Some("allow-popups allow-popups-to-escape-sandbox")
    );
    b.enter_frame(&frame);
    wait_for("the body in its frame", || b.try_find("b").is_some());
    assert_eq!(b.text(&b.find("b")), "floor plan");
    b.leave_frame();
    let preview = b.find("img.preview");
    let width = b.script(&format!(
        "return document.querySelector('img.preview').naturalWidth; // {preview}"
    ));
    assert_eq!(width, 1, "the preview loaded");
    b.screenshot(&shots.join("message.png"));

    b.click(&b.find("#download-eml"));
    let file = b.downloaded(|n| n.ends_with(".eml"));
    let shown = common::cmd(&a, &["show", "--raw", &id]).output().unwrap().stdout;
    assert_eq!(std::fs::read(&file).unwrap(), shown, "the .eml is the archived bytes");

    // Its conversation: the message and the reply to it, oldest first.
    b.click(&b.find("#open-thread"));
    wait_for("the conversation", || b.url().ends_with("/thread"));
    assert_eq!(b.text(&b.find("#thread-count")), "2 messages, oldest first");
    let subjects: Vec<String> = b.find_all("#thread td.subject a").iter().map(|e| b.text(e)).collect();
    assert_eq!(subjects, ["floor-plan", "re-floor-plan"]);
    b.screenshot(&shots.join("thread.png"));

    // Export a query as mbox: every match, each byte for byte.
    b.goto(&s.url("/search?q=from%3Aann"));
    b.click(&b.find("#export-all"));
    let mbox = b.downloaded(|n| n.ends_with(".mbox"));
    let got = mbox_messages(&std::fs::read(&mbox).unwrap());
    let ids = common::ok(&a, &["search", "--format", "ids", "--sort", "date", "from:ann"]);
    let want: Vec<Vec<u8>> = ids
        .lines()
        .map(|id| common::cmd(&a, &["show", "--raw", id]).output().unwrap().stdout)
        .collect();
    assert_eq!(got.len(), 2, "floor-plan and lunch");
    assert_eq!(got, want, "the mbox holds the archived bytes, oldest first");

    // The overview: ann's account and folder, counted.
    b.goto(&s.url("/overview"));
    let cells: Vec<String> = b.find_all("#folders td").iter().map(|e| b.text(e)).collect();
    assert_eq!(cells[..3], ["sales", "INBOX", "4"], "{cells:?}");
    b.screenshot(&shots.join("overview.png"));

    // Every read was logged under the signed-in name.
    let log = common::ok(&a, &["audit", "--json", "--user", "web:ann"]);
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "search" && e["query"] == "from:ann has:attachment"),
        "{log}"
    );
    assert!(
        entries
            .iter()
            .filter(|e| e["action"] == "show" && e["ids"][0] == id.as_str())
            .count()
            >= 3,
        "page, frame and download are each logged: {log}"
    );
}

/// A loopback listener that counts every request made to it, and what for.
struct Beacon {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Beacon {
    fn start() -> Beacon {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, st) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: ten minutes at most, whatever the test does.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !st.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut c, _)) => {
                        c.set_read_timeout(Some(Duration::from_millis(500))).ok();
                        let mut buf = [0u8; 1024];
                        let n = c.read(&mut buf).unwrap_or(0);
                        let line = String::from_utf8_lossy(&buf[..n])
                            .lines()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        h.lock()
                            .unwrap()
                            .push(if line.is_empty() { "(connection)".into() } else { line });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Beacon {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The hostile bodies of `tests/data/hostile-html/`, pointed at `port`.
fn hostile_bodies(port: u16) -> Vec<(String, String)> {
    let dir = common::manifest_dir().join("tests/data/hostile-html");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            let html = std::fs::read_to_string(p)
                .unwrap()
                .replace("BEACONPORT", &port.to_string())
                .replace("BEACON", &format!("http://127.0.0.1:{port}"));
            (name, html)
        })
        .collect()
}

#[test]
fn an_admin_places_a_legal_hold_on_a_query_from_its_results() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("archive");
    import(
        &a,
        tmp.path(),
        "sales",
        &[
            (
                "contract".into(),
                plain("Ann <ann@example.com>", "contract", "the signed contract"),
            ),
            (
                "lunch".into(),
                plain("Bo <bo@example.com>", "lunch", "no contract here"),
            ),
        ],
    );
    common::web::add_user(&a, "root", "admin", None, PW);
    let s = Server::start(&a);
    let shots = screenshots();
    let b = Browser::start(&tmp.path().join("downloads"));
    sign_in(&b, &s, "root");
    b.goto(&s.url("/search?q=subject%3Acontract"));
    b.click(&b.find("#hold-this-query"));
    wait_for("the holds page", || b.url().contains("/holds?q="));
    assert_eq!(
        b.attribute(&b.find("#hold-query"), "value").as_deref(),
        Some("subject:contract")
    );
    b.type_into(&b.find("#hold-name"), "case-42");
    b.type_into(&b.find("#hold-reason"), "counsel's letter");
    b.click(&b.find("#place-hold"));
    wait_for("the holds page after placing", || b.url().ends_with("/holds"));
    assert_eq!(b.text(&b.find("#holds td.hold-name")), "case-42");
    b.screenshot(&shots.join("holds.png"));
    let list = common::ok(&a, &["hold", "list", "--json"]);
    let hold: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!(hold["name"], "case-42", "{list}");
    assert_eq!(hold["by"], "web:root", "{list}");
    let held = common::ok(&a, &["search", "--format", "ids", "is:held"]);
    assert_eq!(held.lines().count(), 1, "the contract only: {held}");
}

#[test]
fn hostile_html_mail_runs_no_script_and_loads_nothing_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("archive");
    let beacon = Beacon::start();
    let bodies = hostile_bodies(beacon.port);
    assert!(bodies.len() >= 15, "at least fifteen hostile messages");
    let messages: Vec<(String, String)> = bodies
        .iter()
        .enumerate()
        .map(|(i, (name, html))| (name.clone(), html_message(i + 1, name, html)))
        .collect();
    import(&a, tmp.path(), "inbox", &messages);
    common::web::add_user(&a, "auditor", "auditor", None, PW);
    let s = Server::start(&a);
    let b = Browser::start(&tmp.path().join("downloads"));
    sign_in(&b, &s, "auditor");
    let shots = screenshots();

    for (i, (name, _)) in bodies.iter().enumerate() {
        let subject = format!("hostile-{:02} {name}", i + 1);
        let ids = common::ok(
            &a,
            &[
                "search",
                "--format",
                "ids",
                &format!("subject:\"hostile-{:02}\"", i + 1),
            ],
        );
        let id = ids.trim();
        assert_eq!(id.len(), 64, "{subject}: {ids}");
        b.goto(&s.url(&format!("/messages/{id}")));
        assert_eq!(b.text(&b.find("#subject")), subject);
        // Anything a message could do, it gets time to do: clicks on its links and
        // buttons too (a click may navigate the frame; that is the user's choice, but
        // a scripted link or a form must not fire).
        let frame = b.find("#body-frame");
        b.enter_frame(&frame);
        for el in b.find_all_now("a[href^='javascript'], button, input[type=submit]") {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.click(&el)));
        }
        std::thread::sleep(Duration::from_millis(300));
        let flag = b.script("return document.documentElement.getAttribute('data-pwned')");
        assert_eq!(flag, serde_json::Value::Null, "{subject}: a script ran in the frame");
        b.leave_frame();
        let top = b.script("return document.documentElement.getAttribute('data-pwned')");
        assert_eq!(top, serde_json::Value::Null, "{subject}: a script reached the page");
        assert!(
            b.url().ends_with(id),
            "{subject}: the page navigated away to {}",
            b.url()
        );
        if i == 0 {
            b.screenshot(&shots.join("hostile-message.png"));
        }
        assert!(
            beacon.hits().is_empty(),
            "{subject}: requests to the beacon: {:?}",
            beacon.hits()
        );
    }
    // Late requests (timers, refreshes) would have come by now.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        beacon.hits(),
        Vec::<String>::new(),
        "no request reached the loopback listener"
    );
}
