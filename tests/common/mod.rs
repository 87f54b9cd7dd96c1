//! Shared helpers for the integration tests: run the real binary, find test data,
//! measure a child's peak memory.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub mod documents;
pub mod dovecot;
pub mod fake_imap;
pub mod fake_pop3;
pub mod fault_proxy;
pub mod garage;
pub mod oidc;
pub mod postgres;
pub mod scripted_imap;
pub mod shaping_proxy;
pub mod web;
pub mod webdriver;

/// The `mailvault` binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mailvault"))
}

/// A command running `mailvault --archive ARCHIVE ARGS…`. With
/// `MAILVAULT_TEST_BLOBS=s3`, archives it creates keep their packs in a Garage this
/// test process starts (one bucket, a prefix per archive): the archive tests run
/// once against local packs and once against S3 (`scripts/test.sh`).
pub fn cmd(archive: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("--archive").arg(archive).args(args);
    c.env_remove("MAILVAULT_ARCHIVE").env_remove("RUST_LOG");
    c.env_remove("MAILVAULT_BLOBS").env_remove("MAILVAULT_META");
    if let Some(pg) = shared_postgres() {
        c.env("MAILVAULT_META", pg.url(&pg.database_for(archive)))
            .envs(pg.env());
    }
    if let Some(g) = shared_garage() {
        let prefix = mailvault::model::Hash32::of(archive.as_os_str().as_encoded_bytes()).to_hex();
        c.env("MAILVAULT_BLOBS", format!("s3://{}/{}", garage::BUCKET, &prefix[..16]))
            .env("MAILVAULT_S3_ENDPOINT", g.endpoint())
            .env("MAILVAULT_S3_REGION", garage::REGION)
            .env("AWS_ACCESS_KEY_ID", garage::KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", garage::SECRET);
    }
    c.stdin(Stdio::null());
    c
}

/// The PostgreSQL of this test process when `MAILVAULT_TEST_META=postgres`: then
/// every archive a test makes keeps its metadata there, in a database of its own.
pub fn shared_postgres() -> Option<&'static postgres::Postgres> {
    static WANTED: OnceLock<bool> = OnceLock::new();
    let wanted = *WANTED.get_or_init(|| {
        let wanted = std::env::var("MAILVAULT_TEST_META").as_deref() == Ok("postgres");
        if wanted {
            // Archives the tests open in-process find the password as a
            // mailvault process does (the test server's, on loopback).
            std::env::set_var("PGPASSWORD", postgres::PASSWORD);
        }
        wanted
    });
    wanted.then(postgres::Postgres::shared)
}

/// The Garage of this test process when `MAILVAULT_TEST_BLOBS=s3` (started on
/// first use, stopped by its watchdog when the process ends).
pub fn shared_garage() -> Option<&'static garage::Garage> {
    static GARAGE: OnceLock<Option<garage::Garage>> = OnceLock::new();
    GARAGE
        .get_or_init(|| {
            (std::env::var("MAILVAULT_TEST_BLOBS").as_deref() == Ok("s3")).then(|| {
                garage::use_test_credentials();
                garage::Garage::single()
            })
        })
        .as_ref()
}

pub fn run(archive: &Path, args: &[&str]) -> Output {
    cmd(archive, args).output().expect("mailvault runs")
}

/// Runs and asserts success; returns stdout.
pub fn ok(archive: &Path, args: &[&str]) -> String {
    stdout_of(cmd(archive, args), &format!("mailvault {args:?}"))
}

/// Runs `cmd` (`what` names it in a failure), which must succeed; returns stdout.
pub fn stdout_of(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().expect("mailvault runs");
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs `cmd`, which must succeed, and parses what it prints as JSON.
pub fn json_of(cmd: Command, what: &str) -> serde_json::Value {
    let out = stdout_of(cmd, what);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{out}"))
}

/// `stats --json` as a JSON value.
pub fn stats(archive: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(archive, &["stats", "--json"])).expect("stats json")
}

pub fn stat_u64(archive: &Path, key: &str) -> u64 {
    stats(archive)[key]
        .as_u64()
        .unwrap_or_else(|| panic!("stats has {key}"))
}

/// How many accounts' last runs ended well, by `status --json` (every job, every
/// worker's status merged); 0 while there is no status yet.
pub fn accounts_ok(archive: &Path) -> usize {
    let out = run(archive, &["status", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    all.as_array()
        .into_iter()
        .flatten()
        .flat_map(|j| j["accounts"].as_object().into_iter().flatten())
        .filter(|(_, a)| a["last_run"]["result"] == "ok")
        .count()
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled demo sample (500 real messages).
pub fn demo_sample() -> PathBuf {
    manifest_dir().join("demo/sample")
}

/// A new archive at `dir/a` holding the demo sample as account `demo`.
pub fn demo_archive(dir: &Path) -> PathBuf {
    let archive = dir.join("a");
    ok(
        &archive,
        &["-q", "import", "--account", "demo", demo_sample().to_str().unwrap()],
    );
    archive
}

/// A fresh copy of the format-1 archive fixture (`tests/data/archive-v1.tar.zst`)
/// under `dir`: the archive directory and the message ids it holds.
pub fn v1_fixture(dir: &Path) -> (PathBuf, Vec<String>) {
    format_fixture(dir, "archive-v1")
}

/// The format-2 fixture (`tests/data/ORIGIN.md`): its directory and message ids.
pub fn v2_fixture(dir: &Path) -> (PathBuf, Vec<String>) {
    format_fixture(dir, "archive-v2")
}

fn format_fixture(dir: &Path, name: &str) -> (PathBuf, Vec<String>) {
    let st = Command::new("tar")
        .arg("-I")
        .arg("zstd -d")
        .arg("-xf")
        .arg(manifest_dir().join(format!("tests/data/{name}.tar.zst")))
        .arg("-C")
        .arg(dir)
        .status()
        .expect("tar runs");
    assert!(st.success(), "unpacking the {name} fixture");
    let ids = std::fs::read_to_string(dir.join(format!("{name}.ids"))).unwrap();
    (dir.join(name), ids.lines().map(str::to_string).collect())
}

/// Unpacks a `.tar.zst` into `dest` once (under a file lock shared by all test
/// binaries), using the system `tar` and `zstd`.
fn unpack_once(archive: &Path, dest: &Path) {
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let lock = File::create(dest.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    let done = dest.join(".unpacked");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(dest);
        std::fs::create_dir_all(dest).unwrap();
        let st = Command::new("tar")
            .arg("-I")
            .arg("zstd -d --long=27")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(dest)
            .status()
            .expect("tar runs (install tar and zstd: scripts/test.sh does)");
        assert!(st.success(), "unpacking {}", archive.display());
        File::create(&done).unwrap();
    }
}

/// The bundled edge cases (permissively licensed subset), unpacked.
pub fn edge_cases() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dest = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("edge-cases");
        unpack_once(&manifest_dir().join("tests/data/edge-cases.tar.zst"), &dest);
        dest
    })
}

/// The unpacked shared corpus (a directory holding `enron-skilling-j`,
/// `spamassassin-public-corpus`, `usrp-users-list-2019-2021` and the `edge-*`/`pkg-*`
/// folders): `$MAILVAULT_CORPUS`, else `../shared/corpus` unpacked on first use with
/// its `unpack.sh`. `None`, after saying so on stderr, when neither exists.
pub fn corpus_root() -> Option<PathBuf> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| {
        if let Ok(dir) = std::env::var("MAILVAULT_CORPUS") {
            return Some(PathBuf::from(dir));
        }
        let script = manifest_dir().join("../shared/corpus/unpack.sh");
        if !script.exists() {
            eprintln!("NOTE: no shared corpus: set MAILVAULT_CORPUS to an unpacked corpus or provide ../shared/corpus");
            return None;
        }
        let dest = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corpus");
        std::fs::create_dir_all(&dest).unwrap();
        let lock = File::create(dest.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        let done = dest.join(".unpacked");
        if !done.exists() {
            let st = Command::new("bash")
                .arg(&script)
                .arg(&dest)
                .stdout(Stdio::null())
                .status()
                .expect("bash runs");
            assert!(st.success(), "{} failed (needs tar and zstd)", script.display());
            File::create(&done).unwrap();
        }
        Some(dest)
    })
    .clone()
}

/// One folder of the shared corpus, if present.
pub fn shared_corpus(folder: &str) -> Option<PathBuf> {
    let p = corpus_root()?.join(folder);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("NOTE: corpus folder {} is missing", p.display());
        None
    }
}

/// The edge-case folders of the shared corpus (with the Hunny samples).
pub fn shared_edge_cases() -> Option<Vec<PathBuf>> {
    let root = corpus_root()?;
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("edge-") || n.starts_with("pkg-")
        })
        .map(|e| e.path())
        .collect();
    v.sort();
    (!v.is_empty()).then_some(v)
}

/// Runs `cmd` to completion and returns its output and peak RSS in bytes: the
/// child's `VmHWM`, read from `/proc` every few milliseconds while it runs. (Not
/// `wait4`'s `ru_maxrss`: Linux counts in it the high-water mark of the test process
/// the child was forked from, so a test that once held 200 MB would taint every
/// later measurement.)
pub fn output_with_peak_rss(cmd: Command) -> (std::process::ExitStatus, u64, Vec<u8>, Vec<u8>) {
    output_with_peak_rss_stopped(cmd, None)
}

/// [`output_with_peak_rss`], sending the child SIGTERM after `stop_after` (for a
/// service that runs until stopped).
pub fn output_with_peak_rss_stopped(
    mut cmd: Command,
    stop_after: Option<std::time::Duration>,
) -> (std::process::ExitStatus, u64, Vec<u8>, Vec<u8>) {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (peak, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let status_file = format!("/proc/{}/status", child.id());
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            // Bounded: the child's run (tests bound theirs) at 5 ms a read.
            while !done.load(Ordering::Relaxed) {
                let Ok(text) = std::fs::read_to_string(&status_file) else {
                    break;
                };
                let hwm = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                if let Some(kb) = hwm {
                    peak.fetch_max(kb * 1024, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    if let Some(after) = stop_after {
        let (pid, done) = (child.id() as i32, done.clone());
        std::thread::spawn(move || {
            std::thread::sleep(after);
            if !done.load(Ordering::Relaxed) {
                // SAFETY: plain FFI call; the pid is our child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        });
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut e = Vec::new();
        stderr.read_to_end(&mut e).ok();
        e
    });
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).ok();
    let err = t.join().unwrap();
    let status = child.wait().expect("wait");
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    (status, peak.load(Ordering::Relaxed), out, err)
}

/// A small deterministic PRNG (xorshift64*) for randomised test rounds.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `$MAILVAULT_TEST_SEED` or the clock; the seed is printed so a
    /// failing round can be replayed.
    pub fn from_env(name: &str) -> Rng {
        let seed = std::env::var("MAILVAULT_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{name}: MAILVAULT_TEST_SEED={seed}");
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `data` in base64, wrapped at 76 characters with CRLF (no final line break).
pub fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let s = base64::engine::general_purpose::STANDARD.encode(data);
    s.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Copies a directory tree (an archive that no process has open).
pub fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from).into_iter().filter_map(|e| e.ok()) {
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Starts `cmd`, sends it SIGKILL after `delay`, and checks that whatever state the
/// kill left in `archive` opens and verifies clean. True when the kill landed while
/// the command was still running.
pub fn kill_after(mut cmd: Command, delay: std::time::Duration, archive: &Path, round: u64) -> bool {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    child.kill().ok(); // SIGKILL
    child.wait().unwrap();
    if archive.join("mailvault-archive.toml").exists() {
        let a = mailvault::archive::Archive::open(archive)
            .unwrap_or_else(|e| panic!("round {round}: archive does not open after kill: {e}"));
        let r = a.verify(|_| {}).unwrap();
        assert!(r.is_clean(), "round {round}: damaged after kill: {:?}", r.problems);
    }
    !finished
}

/// Rounds of the kill -9 tests: `$MAILVAULT_CRASH_ROUNDS`, default 20.
pub fn crash_rounds() -> u64 {
    std::env::var("MAILVAULT_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}
