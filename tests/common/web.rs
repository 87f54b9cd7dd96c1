//! A running `mailvault web` on a free loopback port, for the web tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// A running `mailvault web`, stopped when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `mailvault web` over `archive`, once it says where it listens (30 s at most).
    pub fn start(archive: &Path) -> Server {
        Self::start_with(archive, &[])
    }

    /// The same with more arguments (`--tls-cert …`).
    pub fn start_with(archive: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["web", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = super::cmd(archive, &args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
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
            .recv_timeout(Duration::from_secs(30))
            .expect("mailvault web says where it listens");
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The value of hidden input `name` in a page (a form's CSRF token).
pub fn hidden_field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[at..].split('"').next().unwrap().to_string()
}

/// Adds web user `name` with `role` (granted `accounts` when given) and password `pw`.
pub fn add_user(archive: &Path, name: &str, role: &str, accounts: Option<&str>, pw: &str) {
    let mut args = vec!["user", "add", name, "--role", role, "--password-env", "WEB_TEST_PW"];
    if let Some(a) = accounts {
        args.extend(["--accounts", a]);
    }
    let out = super::cmd(archive, &args).env("WEB_TEST_PW", pw).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The messages of an mboxrd file.
pub fn mbox_messages(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut r = mailvault::source::mbox::MboxReader::new(bytes, mailvault::source::mbox::MboxFormat::Mboxrd);
    let mut out = Vec::new();
    while let Some(m) = r.next_message().unwrap() {
        out.push(m.raw);
    }
    out
}
