//! imapsync, the peer of migrations: found at `IMAPSYNC` or
//! `../shared/peers/imapsync/imapsync` and run with Debian's Perl modules (the
//! README lists them), passwords in files, the server's CA checked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The imapsync script, when it and its Perl modules are there; else why not.
pub fn script() -> Result<PathBuf, String> {
    let path = std::env::var("IMAPSYNC")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/imapsync/imapsync"));
    if !path.exists() {
        return Err(format!("{} is missing (set IMAPSYNC)", path.display()));
    }
    let out = Command::new("perl")
        .arg(&path)
        .arg("--version")
        .output()
        .map_err(|e| format!("perl: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "imapsync does not start ({}); install its Perl modules as the README says",
            err.lines().next().unwrap_or("")
        ));
    }
    Ok(path)
}

/// One side of a move: an IMAPS server on 127.0.0.1, its user and the CA its
/// certificate is checked with.
pub struct Side<'a> {
    pub port: u16,
    pub user: &'a str,
    pub ca: &'a Path,
}

/// What an imapsync run gave.
pub struct Ran {
    pub seconds: f64,
    pub exit: Option<i32>,
    /// Its `Err …` lines and its last word.
    pub errors: Vec<String>,
}

/// imapsync from `from` to `to`, both with `password` (written to a file under
/// `work`, which also takes its temporary files).
pub fn run(script: &Path, from: &Side, to: &Side, password: &str, work: &Path) -> Ran {
    let pass = work.join("imapsync-pass");
    std::fs::write(&pass, password).unwrap();
    let pass = pass.to_str().unwrap();
    let ca_file = |s: &Side| format!("SSL_ca_file={}", s.ca.display());
    let t = Instant::now();
    let out = Command::new("perl")
        .arg(script)
        .args(["--host1", "127.0.0.1", "--port1", &from.port.to_string(), "--ssl1"])
        .args(["--user1", from.user, "--passfile1", pass])
        .args(["--sslargs1", "SSL_verify_mode=1", "--sslargs1", &ca_file(from)])
        .args(["--host2", "127.0.0.1", "--port2", &to.port.to_string(), "--ssl2"])
        .args(["--user2", to.user, "--passfile2", pass])
        .args(["--sslargs2", "SSL_verify_mode=1", "--sslargs2", &ca_file(to)])
        .args(["--nolog", "--noreleasecheck", "--tmpdir", work.to_str().unwrap()])
        .output()
        .unwrap();
    let seconds = t.elapsed().as_secs_f64();
    // A non-zero exit is one of the results (its errors are listed), not the end of
    // a benchmark: what it left is compared like the rest.
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = text
        .lines()
        .filter(|l| l.starts_with("Err ") || l.starts_with("Exiting with return value"))
        .map(str::to_string)
        .collect();
    Ran {
        seconds,
        exit: out.status.code(),
        errors,
    }
}
