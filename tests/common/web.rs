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
