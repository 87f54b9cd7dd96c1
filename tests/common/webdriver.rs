//! A real headless Chromium driven over WebDriver (W3C, by Debian's
//! `chromedriver`), for the browser tests: the driver on a free loopback port, one
//! browser session in a fresh profile with downloads into a directory of the test,
//! and the few commands the tests use. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The WebDriver name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium and its driver are installed (by `scripts/test.sh`); if not, says how.
pub fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "the browser tests need Debian's Chromium and its driver: apt-get install -y chromium chromium-driver \
         (scripts/test.sh installs them)"
    );
}

/// A browser session, ended (and the driver stopped) when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    pub downloads: PathBuf,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    let [port] = super::dovecot::free_ports::<1>();
    port
}

fn body(r: reqwest::blocking::Response, what: &str) -> Value {
    let status = r.status();
    let bytes = r.bytes().unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(
        status.is_success(),
        "WebDriver {what}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    v["value"].clone()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose downloads go to `downloads`.
    pub fn start(downloads: &Path) -> Browser {
        require_chromium();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .map(|r| body(r, "status"))
                .is_some_and(|v| v["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(downloads).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.to_str().unwrap(),
                    "download.prompt_for_download": false,
                    "safebrowsing.enabled": false
                }
            }
        }}});
        let r = http
            .post(format!("{base}/session"))
            .header("content-type", "application/json")
            .body(caps.to_string())
            .send()
            .expect("a WebDriver session");
        let v = body(r, "new session");
        let session = v["sessionId"].as_str().expect("a session id").to_string();
        let b = Browser {
            driver,
            base,
            session,
            http,
            downloads: downloads.to_path_buf(),
            _profile: profile,
        };
        // Finding an element waits up to 5 s for it (a page still loading after a
        // click that navigates); `try_find` of something absent waits as long.
        b.post(
            "/timeouts",
            json!({ "implicit": 5000, "pageLoad": 30000, "script": 10000 }),
        );
        b
    }

    fn post(&self, path: &str, data: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/session/{}{path}", self.base, self.session))
            .header("content-type", "application/json")
            .body(data.to_string())
            .send()
            .unwrap();
        body(r, path)
    }

    fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/session/{}{path}", self.base, self.session))
            .send()
            .unwrap();
        body(r, path)
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.get("/url").as_str().unwrap_or_default().to_string()
    }

    pub fn title(&self) -> String {
        self.get("/title").as_str().unwrap_or_default().to_string()
    }

    /// The page's HTML as the browser holds it now.
    pub fn source(&self) -> String {
        self.get("/source").as_str().unwrap_or_default().to_string()
    }

    /// The first element matching `css`, if any.
    pub fn try_find(&self, css: &str) -> Option<String> {
        let r = self
            .http
            .post(format!("{}/session/{}/element", self.base, self.session))
            .header("content-type", "application/json")
            .body(json!({"using": "css selector", "value": css}).to_string())
            .send()
            .unwrap();
        if !r.status().is_success() {
            return None;
        }
        body(r, "find")[ELEMENT].as_str().map(str::to_string)
    }

    /// The first element matching `css`.
    pub fn find(&self, css: &str) -> String {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}:\n{}", self.url(), self.source()))
    }

    /// Every element matching `css`.
    pub fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.post("/elements", json!({"using": "css selector", "value": css}));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every element matching `css` now, without waiting for one to appear.
    pub fn find_all_now(&self, css: &str) -> Vec<String> {
        self.post("/timeouts", json!({ "implicit": 0 }));
        let found = self.find_all(css);
        self.post("/timeouts", json!({ "implicit": 5000 }));
        found
    }

    pub fn type_into(&self, element: &str, text: &str) {
        self.post(&format!("/element/{element}/clear"), json!({}));
        self.post(&format!("/element/{element}/value"), json!({ "text": text }));
    }

    pub fn click(&self, element: &str) {
        self.post(&format!("/element/{element}/click"), json!({}));
    }

    pub fn text(&self, element: &str) -> String {
        self.get(&format!("/element/{element}/text"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// An attribute of `element` (`None` when absent).
    pub fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.get(&format!("/element/{element}/attribute/{name}"))
            .as_str()
            .map(str::to_string)
    }

    /// Into the frame `element`; [`Browser::leave_frame`] comes back.
    pub fn enter_frame(&self, element: &str) {
        self.post("/frame", json!({ "id": { ELEMENT: element } }));
    }

    pub fn leave_frame(&self) {
        self.post("/frame/parent", json!({}));
    }

    /// Runs `script` in the current browsing context (WebDriver's own channel, not
    /// the page's: a page's policy forbidding script does not stop it).
    pub fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Writes a screenshot of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.get("/screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        std::fs::write(path, png).unwrap();
    }

    /// Waits (30 s at most) for a finished download named by `pick`, and returns it.
    pub fn downloaded(&self, pick: impl Fn(&str) -> bool) -> PathBuf {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = std::fs::read_dir(&self.downloads)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    !name.ends_with(".crdownload") && pick(&name)
                });
            if let Some(p) = found {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "no download in {} after 30 s",
                self.downloads.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
