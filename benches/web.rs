//! Web interface benchmark on the ~114k-message archive of the search benchmark
//! (the main set plus six altered copies): `mailvault web` on a loopback port, a
//! signed-in session, then
//! - the search page for each of the search benchmark's 44 queries, 5 rounds,
//!   warm: the server's own time (its `Server-Timing` header) p50/p95/p99, and the
//!   client's round trip;
//! - the message page of 300 messages from those results: the same figures;
//! - the first load of the search page (HTML + CSS + JS, with headers): bytes.
//!
//! `cargo bench --bench web`; `MAILVAULT_BENCH_COPIES` (default 6) sets the copies.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bench_copies, corpus_root, import_copies, import_main_set, run_measured, QUERIES};

const PW: &str = "a benchmark password";

struct Web(Child);

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(archive: &Path) -> (Web, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailvault"))
        .args(["--archive", archive.to_str().unwrap(), "web", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split('/').take(3).collect::<Vec<_>>().join("/"));
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the web server starts");
    (Web(child), base)
}

fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The value of hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).expect("the form field") + marker.len();
    page[at..].split('"').next().unwrap().to_string()
}

/// A GET's server time (from `Server-Timing`), round trip, and body.
fn timed(c: &reqwest::blocking::Client, url: &str) -> (Duration, Duration, String) {
    let t = Instant::now();
    let r = c.get(url).send().unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let server: f64 = r.headers()["server-timing"]
        .to_str()
        .unwrap()
        .trim_start_matches("app;dur=")
        .parse()
        .unwrap();
    let body = r.text().unwrap();
    (Duration::from_secs_f64(server / 1e3), t.elapsed(), body)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

fn print(name: &str, mut server: Vec<Duration>, mut trip: Vec<Duration>) {
    server.sort();
    trip.sort();
    println!(
        "  {name:<14} server p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms   round trip p50 {:.1} ms  p95 {:.1} ms  ({} requests)",
        pct(&server, 0.5),
        pct(&server, 0.95),
        pct(&server, 0.99),
        pct(&trip, 0.5),
        pct(&trip, 0.95),
        server.len()
    );
}

/// The ids of the result rows of a search page.
fn result_ids(page: &str) -> Vec<String> {
    page.split("href=\"/messages/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|id| id.len() == 64)
        .map(str::to_string)
        .collect()
}

fn build_archive(root: &Path, work: &Path) -> std::path::PathBuf {
    let archive = work.join("archive");
    import_main_set(root, &archive);
    let copies = bench_copies();
    if copies > 0 {
        import_copies(root, work, &archive, copies);
    }
    // Builds the index (every search first indexes what it does not cover yet).
    run_measured(&["search", "--count", "enron"], &archive);
    archive
}

fn main() {
    let Some(root) = corpus_root() else {
        eprintln!("web: no corpus (set MAILVAULT_CORPUS or provide ../shared/corpus); nothing measured");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let archive = build_archive(&root, tmp.path());
    let messages = common::json(&run_measured(&["stats", "--json"], &archive).2)["messages"]
        .as_u64()
        .unwrap();
    eprintln!(
        "archive of {messages} messages built and indexed in {:.0?}",
        t.elapsed()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mailvault"))
        .args([
            "--archive",
            archive.to_str().unwrap(),
            "user",
            "add",
            "bench",
            "--role",
            "auditor",
            "--password-env",
            "BENCH_PW",
        ])
        .env("BENCH_PW", PW)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_web, base) = start(&archive);
    let c = client();

    // First load: the sign-in page and what it pulls in, then the search page.
    let login = c.get(format!("{base}/login")).send().unwrap();
    let login_page = login.text().unwrap();
    let css = c.get(format!("{base}/static/app.css")).send().unwrap().bytes().unwrap();
    let csrf = hidden(&login_page, "csrf");
    let r = c
        .post(format!("{base}/login"))
        .form(&[
            ("name", "bench"),
            ("password", PW),
            ("csrf", csrf.as_str()),
            ("next", "/search"),
        ])
        .send()
        .unwrap();
    assert!(r.status().is_success(), "signed in: {}", r.status());
    let (_, _, first) = timed(&c, &format!("{base}/search?q=enron"));
    let scripts = first.matches("<script").count();
    println!("web interface, {messages} messages (2-core VM; loopback)");
    println!(
        "  first load      search page {:.1} KB + CSS {:.1} KB + JS 0 KB ({scripts} scripts) = {:.1} KB",
        first.len() as f64 / 1e3,
        css.len() as f64 / 1e3,
        (first.len() + css.len()) as f64 / 1e3
    );

    // Warm-up, then 5 rounds of every query.
    let url = |q: &str| format!("{base}/search?{}", serde_urlencoded::to_string([("q", q)]).unwrap());
    let mut ids: Vec<String> = Vec::new();
    for q in QUERIES {
        let (_, _, page) = timed(&c, &url(q));
        ids.extend(result_ids(&page).into_iter().take(10));
    }
    let (mut server, mut trip) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        for q in QUERIES {
            let (s, t, _) = timed(&c, &url(q));
            server.push(s);
            trip.push(t);
        }
    }
    print("search page", server, trip);

    ids.sort();
    ids.dedup();
    let step = (ids.len() / 300).max(1);
    let picked: Vec<&String> = ids.iter().step_by(step).take(300).collect();
    let (mut server, mut trip) = (Vec::new(), Vec::new());
    for id in &picked {
        let (s, t, _) = timed(&c, &format!("{base}/messages/{id}"));
        server.push(s);
        trip.push(t);
    }
    print("message page", server, trip);
}
