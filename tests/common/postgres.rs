//! A real PostgreSQL 15 (Debian's) for the tests: `initdb` into a temp dir, the
//! server on a free loopback port (and a Unix socket in the same dir), password
//! authentication (SCRAM), as an unprivileged user when the tests run as root.
//! One server per test process, started on first use and stopped by a watchdog
//! when the process ends; each test takes a database of its own.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The test role and its password (a test server's, on loopback only).
pub const USER: &str = "mailvault";
pub const PASSWORD: &str = "test-only-password";

pub struct Postgres {
    _tmp: tempfile::TempDir,
    pub port: u16,
    log: PathBuf,
    made: AtomicU32,
    /// The database of each archive path ([`Postgres::database_for`]).
    archives: Mutex<HashMap<PathBuf, String>>,
    /// The watchdog shell, leader of the server's process group.
    child: std::process::Child,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this server was started in.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Where Debian puts PostgreSQL 15's server programs (`MAILVAULT_PG_BIN` to
/// use others).
fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("MAILVAULT_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    assert!(
        dir.join("postgres").exists(),
        "PostgreSQL 15 is not installed at {}, and these tests need a real one. Install it with \
         `apt-get install postgresql-15` (bash scripts/test.sh does it when run as root)",
        dir.display()
    );
    dir
}

/// A command run as the unprivileged test user when this process is root.
fn as_test_user(program: &Path) -> Command {
    let mut c = Command::new(program);
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = super::dovecot::test_user_ids();
        c.uid(uid).gid(gid);
    }
    c.stdin(Stdio::null());
    c
}

/// Makes `path` the test user's when this process is root (the server runs as it).
fn give_to_test_user(path: &Path) {
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = super::dovecot::test_user_ids();
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

impl Postgres {
    /// The server of this test process.
    pub fn shared() -> &'static Postgres {
        static PG: OnceLock<Postgres> = OnceLock::new();
        PG.get_or_init(Postgres::start)
    }

    fn start() -> Postgres {
        Postgres::start_with(&["fsync=off"], false)
    }

    /// A server of a test's own with TLS (a certificate for 127.0.0.1 from a CA
    /// made here: `ca.pem` in [`Postgres::dir`]) and `settings` (`name=value`).
    pub fn start_tls() -> Postgres {
        Postgres::start_with(&["fsync=off"], true)
    }

    /// A server of its own with `settings` (`name=value`: e.g. the benchmark's
    /// durable commits and statement statistics).
    pub fn start_with(settings: &[&str], tls: bool) -> Postgres {
        let bin = bin_dir();
        let tmp = tempfile::Builder::new().prefix("mv-pg").tempdir().unwrap();
        give_to_test_user(tmp.path());
        let data = tmp.path().join("data");
        let pwfile = tmp.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        give_to_test_user(&pwfile);
        let out = as_test_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("initdb runs");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let mut settings: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
        if tls {
            super::dovecot::make_certs(tmp.path());
            for f in ["cert.pem", "key.pem"] {
                let (from, to) = (tmp.path().join(f), data.join(f));
                std::fs::copy(&from, &to).unwrap();
                std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
                give_to_test_user(&to);
            }
            settings.extend([
                "ssl=on".into(),
                "ssl_cert_file=cert.pem".into(),
                "ssl_key_file=key.pem".into(),
            ]);
        }
        let settings: String = settings.iter().map(|s| format!(" -c {s}")).collect();
        let [port] = super::dovecot::free_ports::<1>();
        let log = tmp.path().join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        give_to_test_user(&log);
        // In its own process group, with a watchdog that stops it when this test
        // process is gone (a server shared by a whole test binary is never dropped).
        let child = as_test_user(Path::new("sh"))
            .arg("-c")
            .arg(
                "\"$0\" -D \"$1\" -p \"$2\" -k \"$3\" -c listen_addresses=127.0.0.1 \
                 -c max_connections=200 -c shared_buffers=64MB $5 & g=$!; \
                 while [ -d /proc/\"$4\" ] && kill -0 $g 2>/dev/null; do sleep 1; done; kill -9 $g 2>/dev/null",
            )
            .arg(bin.join("postgres"))
            .arg(&data)
            .arg(port.to_string())
            .arg(tmp.path())
            .arg(std::process::id().to_string())
            .arg(settings)
            .process_group(0)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("postgres starts");
        let pg = Postgres {
            _tmp: tmp,
            port,
            log,
            made: AtomicU32::new(0),
            archives: Mutex::new(HashMap::new()),
            child,
        };
        pg.wait_ready();
        pg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match ::postgres::Client::connect(&self.url_with_password("postgres"), ::postgres::NoTls) {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "PostgreSQL did not start: {e}\nserver log: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's directory (with `ca.pem` when it was started with TLS).
    pub fn dir(&self) -> &Path {
        self._tmp.path()
    }

    /// `postgres://mailvault@127.0.0.1:PORT/DB` (no password: it goes in
    /// `PGPASSWORD`, see [`Postgres::env`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn url_with_password(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// The environment a mailvault process needs to reach the server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("PGPASSWORD", PASSWORD.to_string())]
    }

    /// A new, empty database; its name.
    pub fn database(&self) -> String {
        let name = format!("t{}", self.made.fetch_add(1, Ordering::SeqCst));
        let mut c = ::postgres::Client::connect(&self.url_with_password("postgres"), ::postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        name
    }

    /// The database the archive at `archive` keeps its metadata in (made on
    /// first use).
    pub fn database_for(&self, archive: &Path) -> String {
        let mut m = self.archives.lock().unwrap();
        if let Some(db) = m.get(archive) {
            return db.clone();
        }
        let db = self.database();
        m.insert(archive.to_path_buf(), db.clone());
        db
    }

    /// A server of its own, durable (`fsync` on, as in production), that counts
    /// every statement (`pg_stat_statements`): the benchmarks' figures from the
    /// server's side.
    pub fn start_counting() -> Postgres {
        Postgres::start_with(
            &[
                "shared_preload_libraries=pg_stat_statements",
                "pg_stat_statements.track_utility=on",
            ],
            false,
        )
    }

    /// Makes the statement statistics readable in `db` (a server of
    /// [`Postgres::start_counting`]).
    pub fn count_statements(&self, db: &str) {
        self.query(db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    }

    /// Zeroes the statement counts: what follows is measured alone.
    pub fn reset_statements(&self, db: &str) {
        self.query(db, "SELECT pg_stat_statements_reset()::text");
    }

    /// The sum of `column` (`calls`, `total_exec_time` in ms, `rows`) over the
    /// statements run in `db` whose text matches the SQL condition `matching` on
    /// `query` (e.g. `query = 'COMMIT'`).
    pub fn statements_sum(&self, db: &str, column: &str, matching: &str) -> f64 {
        let sql = format!(
            "SELECT coalesce(sum(s.{column}), 0)::text FROM pg_stat_statements s \
             JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() AND ({matching})"
        );
        self.query(db, &sql).first().and_then(|v| v.parse().ok()).unwrap_or(0.0)
    }

    /// Runs `sql` in database `db`, as the test role; the rows' first columns as text.
    pub fn query(&self, db: &str, sql: &str) -> Vec<String> {
        let mut c = ::postgres::Client::connect(&self.url_with_password(db), ::postgres::NoTls).unwrap();
        c.simple_query(sql)
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                ::postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
                _ => None,
            })
            .collect()
    }
}
