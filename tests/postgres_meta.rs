//! An archive whose metadata is in a real PostgreSQL 15 (started by the harness):
//! `init --meta postgres://…`, the password from the environment or a password
//! file and never from the command line, and what the archive's directory then
//! holds. (Every archive test runs again with its metadata in PostgreSQL:
//! `MAILVAULT_TEST_META=postgres`, in `scripts/test.sh`.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::postgres::{Postgres, PASSWORD, USER};

/// `mailvault --archive A ARGS` with no PostgreSQL settings but `env`.
fn mailvault(archive: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(common::bin());
    c.arg("--archive").arg(archive).args(args);
    for k in [
        "PGPASSWORD",
        "PGPASSFILE",
        "MAILVAULT_META",
        "MAILVAULT_BLOBS",
        "MAILVAULT_ARCHIVE",
        "HOME",
    ] {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    c.output().expect("mailvault runs")
}

#[test]
fn an_archive_keeps_its_metadata_in_postgres_with_the_password_from_a_password_file() {
    let pg = Postgres::shared();
    let db = pg.database();
    let tmp = tempfile::tempdir().unwrap();
    let pgpass = tmp.path().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{}:{db}:{USER}:{PASSWORD}\n", pg.port)).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = [
        ("PGPASSFILE", pgpass.to_str().unwrap()),
        ("HOME", tmp.path().to_str().unwrap()),
    ];
    let a = tmp.path().join("a");
    let url = pg.url(&db);

    let out = mailvault(&a, &["init", "--meta", &url], &env);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains(&format!("metadata (PostgreSQL) at {url}")), "{said}");

    let sample = common::demo_sample();
    let out = mailvault(&a, &["-q", "import", sample.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = mailvault(&a, &["stats", "--json"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages = stats["messages"].as_u64().unwrap();
    assert!(messages > 0, "{stats}");
    assert_eq!(
        pg.query(&db, "SELECT count(*)::text FROM mailvault.messages"),
        [messages.to_string()]
    );
    // The archive's directory names where the metadata is, with no password, and
    // has no RocksDB: `db` is a file an older mailvault fails to open.
    let marker = std::fs::read_to_string(a.join("mailvault-archive.toml")).unwrap();
    assert!(
        marker.contains("kind = \"postgres\"") && marker.contains(&url),
        "{marker}"
    );
    assert!(a.join("db").is_file());
    for entry in walkdir::WalkDir::new(&a).into_iter().filter_map(Result::ok) {
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()),
                "{} holds the password",
                entry.path().display()
            );
        }
    }
    // The messages read back, from the PostgreSQL metadata and the local packs.
    let out = mailvault(&a, &["verify"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A password file others may read is not used (as libpq), and the error
    // says why the server refused, without the password.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = mailvault(&a, &["stats"], &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("chmod 600") || err.contains("password"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[test]
fn a_password_in_the_metadata_url_is_refused_and_not_repeated() {
    let pg = Postgres::shared();
    let db = pg.database();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let out = mailvault(&a, &["init", "--meta", &pg.url_with_password(&db)], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("PGPASSWORD"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    assert!(!a.join("mailvault-archive.toml").exists());
}

#[test]
fn a_second_writer_on_the_same_postgres_metadata_is_refused_while_readers_search() {
    let pg = Postgres::shared();
    let db = pg.database();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let env = [("PGPASSWORD", PASSWORD)];
    let url = pg.url(&db);
    let out = mailvault(&a, &["init", "--meta", &url], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sample = common::demo_sample();
    let out = mailvault(&a, &["-q", "import", sample.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Hold the writer's lock from another session, as a running writer does.
    let mut holder = postgres::Client::connect(&pg.url_with_password(&db), postgres::NoTls).unwrap();
    let held: bool = holder
        .query_one("SELECT pg_try_advisory_lock(7881696737438561644)", &[])
        .unwrap()
        .get(0);
    assert!(held);
    let out = mailvault(&a, &["-q", "import", sample.to_str().unwrap()], &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("in use by another mailvault process"), "{err}");
    // Searching needs no lock.
    let out = mailvault(&a, &["search", "--json", "*"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(holder);
    let out = mailvault(&a, &["-q", "import", sample.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn metadata_over_tls_is_verified_against_the_ca_in_pgsslrootcert() {
    let pg = Postgres::start_with(&["fsync=off", "log_connections=on"], true);
    let db = pg.database();
    let url = format!("{}?sslmode=require", pg.url(&db));
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    // The server's certificate is not trusted by the system: refused.
    let out = mailvault(&a, &["init", "--meta", &url], &[("PGPASSWORD", PASSWORD)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("not trusted") || err.contains("certificate"), "{err}");
    // With its CA in PGSSLROOTCERT, as libpq reads it.
    let ca = pg.dir().join("ca.pem");
    let env = [("PGPASSWORD", PASSWORD), ("PGSSLROOTCERT", ca.to_str().unwrap())];
    let out = mailvault(&a, &["init", "--meta", &url], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sample = common::demo_sample();
    let out = mailvault(&a, &["-q", "import", sample.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let marker = std::fs::read_to_string(a.join("mailvault-archive.toml")).unwrap();
    assert!(marker.contains("sslmode=require"), "{marker}");
    // Every session of ours was encrypted, as the server logged it.
    let log = std::fs::read_to_string(pg.dir().join("server.log")).unwrap();
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("connection authorized")
                && l.contains(&format!("database={db}"))
                && l.contains("application_name=mailvault")
        })
        .collect();
    assert!(!ours.is_empty(), "{log}");
    assert!(ours.iter().all(|l| l.contains("SSL enabled")), "{ours:#?}");
}
