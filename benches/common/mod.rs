//! Helpers shared by the end-to-end benchmarks: find the corpus, run the real
//! binary and measure wall time and peak RSS.
#![allow(dead_code)]

pub mod imapsync;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The main benchmark set.
pub const FOLDERS: [&str; 3] = [
    "enron-skilling-j",
    "spamassassin-public-corpus",
    "usrp-users-list-2019-2021",
];

#[path = "../../tests/common/queries.rs"]
pub mod queries;
#[allow(unused_imports)]
pub use queries::QUERIES;

pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

pub fn corpus_root() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("MAILVAULT_CORPUS") {
        return Some(PathBuf::from(d));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/unpack.sh");
    if !script.exists() {
        return None;
    }
    let dest = target_dir().join("bench-corpus");
    let st = Command::new("bash")
        .arg(script)
        .arg(&dest)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    st.success().then_some(dest)
}

#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives the rusage
pub fn run_measured(args: &[&str], archive: &Path) -> (Duration, u64, String) {
    use std::io::Read;
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailvault"))
        .arg("--archive")
        .arg(archive)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mailvault");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: FFI with pointers to locals; the pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as i32);
    assert_eq!(status, 0, "mailvault {args:?} failed");
    (t.elapsed(), usage.ru_maxrss as u64 * 1024, out)
}

/// The last line of a command's output as JSON.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.lines().last().unwrap_or("{}")).expect("JSON output")
}

/// Total size of the files under `p`.
pub fn du(p: &Path) -> u64 {
    walkdir::WalkDir::new(p)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// The value at fraction `p` (0..=1) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Whole-process `mailvault search` p50 and p99 over `queries`, warm (each run
/// once first), each query 5 times, 20 results.
pub fn search_latencies(archive: &Path, queries: &[&str]) -> (Duration, Duration) {
    latencies(
        archive,
        &["search", "-q", "--format", "ids", "--limit", "20"],
        queries,
        5,
    )
}

/// Whole-process p50 and p99 of `mailvault ARGS LAST` for each of `lasts`, warm
/// (each run once first), `rounds` rounds.
pub fn latencies(archive: &Path, args: &[&str], lasts: &[&str], rounds: usize) -> (Duration, Duration) {
    let run = |last: &str| time_run(archive, &[args, &[last]].concat());
    for last in lasts {
        run(last);
    }
    let mut times: Vec<Duration> = (0..rounds).flat_map(|_| lasts.iter().map(|l| run(l))).collect();
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the binary and returns wall time only (for latency samples).
pub fn time_run(archive: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    let st = Command::new(env!("CARGO_BIN_EXE_mailvault"))
        .arg("--archive")
        .arg(archive)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run mailvault");
    assert!(st.success(), "mailvault {args:?} failed");
    t.elapsed()
}

/// mbsync mirroring user `mail` (password `password`) of the IMAPS server at
/// 127.0.0.1:`port` into a maildir under `dir`; its time, or `None` when mbsync is
/// not installed.
pub fn mbsync_mirror(port: u16, password: &str, ca: &Path, dir: &Path) -> Option<Duration> {
    std::fs::create_dir_all(dir.join("mail")).unwrap();
    let conf = format!(
        "IMAPAccount bench\nHost localhost\nPort {port}\nUser mail\nPass {password}\nSSLType IMAPS\nCertificateFile {ca}\nTimeout 120\n\n\
         IMAPStore remote\nAccount bench\n\n\
         MaildirStore local\nPath {dir}/mail/\nInbox {dir}/mail/INBOX\nSubFolders Verbatim\n\n\
         Channel bench\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nSync Pull\nSyncState *\n",
        ca = ca.display(),
        dir = dir.display()
    );
    mbsync(&conf, dir)
}

/// Runs `mbsync -q` with the configuration `conf` (written to `dir/mbsyncrc`) on its
/// channel `bench`; wall time, or `None` when mbsync (Debian `isync`) is not
/// installed. Panics when it fails.
pub fn mbsync(conf: &str, dir: &Path) -> Option<Duration> {
    let bin = ["/usr/bin/mbsync", "/usr/local/bin/mbsync"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("mbsyncrc");
    std::fs::write(&path, conf).unwrap();
    let t = Instant::now();
    let out = Command::new(bin)
        .arg("-q")
        .arg("-c")
        .arg(&path)
        .arg("bench")
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "mbsync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(took)
}

/// Runs `cmd` (a mailvault command printing JSON), asserts it succeeded; its wall
/// seconds and the JSON.
pub fn timed_json(mut cmd: Command, what: &str) -> (f64, serde_json::Value) {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let took = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, serde_json::from_slice(&out.stdout).unwrap())
}

/// Bytes of `tar | zstd -19` of the main set (computed once, cached beside the corpus).
pub fn solid_zstd19(root: &Path) -> Option<u64> {
    let cache = root.join(".solid-zstd19-bytes");
    if let Ok(s) = std::fs::read_to_string(&cache) {
        return s.trim().parse().ok();
    }
    if std::env::var("MAILVAULT_BENCH_SKIP_SOLID").is_ok() {
        return None;
    }
    eprintln!("computing tar | zstd -19 of the main set once (a few minutes)…");
    let out = Command::new("sh")
        .current_dir(root)
        .arg("-c")
        .arg(format!("tar -cf - {} | zstd -19 -T0 -c | wc -c", FOLDERS.join(" ")))
        .output()
        .ok()?;
    let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    std::fs::write(&cache, n.to_string()).ok();
    Some(n)
}

/// `migrate --from FROM --to TO --json -q`, both passwords from `MV_TEST_PW`, each
/// side's certificate checked with its CA.
pub fn migrate_args<'a>(from: &'a str, to: &'a str, ca_from: &'a str, ca_to: &'a str) -> Vec<&'a str> {
    vec![
        "migrate",
        "--from",
        from,
        "--to",
        to,
        "--from-password-env",
        "MV_TEST_PW",
        "--from-tls-ca",
        ca_from,
        "--to-password-env",
        "MV_TEST_PW",
        "--to-tls-ca",
        ca_to,
        "--json",
        "-q",
    ]
}

/// Writes `copies` mbox files holding every main-set message with one added header
/// (`X-Bench-Copy: k`), so that each copy is new to the archive (the ~114k-message
/// archive of the search and web benchmarks). Returns messages and bytes written.
pub fn write_copies(root: &Path, dir: &Path, copies: usize) -> (u64, u64) {
    use mailvault::source::{read_paths, Event, LocalOptions};
    use std::io::Write;
    let paths: Vec<PathBuf> = FOLDERS.iter().map(|f| root.join(f)).collect();
    let mut msgs = Vec::new();
    read_paths(&paths, &LocalOptions::default(), &mut |ev| {
        if let Event::Message(m) = ev {
            msgs.push(m.raw);
        }
        Ok(())
    })
    .unwrap();
    let (mut n, mut bytes) = (0, 0);
    for k in 1..=copies {
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("copy{k}.mbox"))).unwrap());
        for raw in &msgs {
            let mut m = format!("X-Bench-Copy: {k}\r\n").into_bytes();
            m.extend_from_slice(raw);
            mailvault::source::mbox::write_message(&mut f, &m, Some(1_600_000_000)).unwrap();
            n += 1;
            bytes += m.len() as u64;
        }
        f.flush().unwrap();
    }
    (n, bytes)
}

/// Imports the main set into `archive` (not indexed).
pub fn import_main_set(root: &Path, archive: &Path) {
    let mut args = vec!["import", "-q", "--no-index"];
    let folders: Vec<String> = FOLDERS
        .iter()
        .map(|f| root.join(f).to_string_lossy().into_owned())
        .collect();
    args.extend(folders.iter().map(String::as_str));
    run_measured(&args, archive);
}

/// How many altered copies of the main set the large archive holds
/// (`MAILVAULT_BENCH_COPIES`, default 6; 0 skips it).
pub fn bench_copies() -> usize {
    std::env::var("MAILVAULT_BENCH_COPIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

/// Imports `copies` altered copies of the main set into `archive` as account
/// `copies` (not indexed), written under `work` and removed after. Returns the
/// messages and bytes added.
pub fn import_copies(root: &Path, work: &Path, archive: &Path, copies: usize) -> (u64, u64) {
    let dir = work.join("copies");
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    let (n, bytes) = write_copies(root, &dir, copies);
    eprintln!("wrote {n} copied messages in {:?}", t.elapsed());
    let d = dir.to_str().unwrap();
    run_measured(&["import", "-q", "--no-index", "--account", "copies", d], archive);
    std::fs::remove_dir_all(&dir).ok();
    (n, bytes)
}
