//! The metadata store's behaviour, as the archive relies on it: the shared checks of
//! `mailvault::metastore::contract` on the embedded RocksDB store and on a real
//! PostgreSQL 15 (started by the harness), and each one's read-only open and
//! one-writer lock; PostgreSQL's schema versions and credentials.

mod common;

use std::path::PathBuf;

use common::postgres::Postgres;
use mailvault::metastore::{contract, Change, MetaBatch, MetaError, MetaStore, OpenMode, PgMeta, RocksMeta};

/// Fresh RocksDB stores, each in its own directory under one temp dir.
struct Stores {
    tmp: tempfile::TempDir,
    made: std::cell::Cell<u32>,
}

impl Stores {
    fn new() -> Stores {
        Stores {
            tmp: tempfile::tempdir().unwrap(),
            made: std::cell::Cell::new(0),
        }
    }

    fn path(&self) -> PathBuf {
        self.made.set(self.made.get() + 1);
        self.tmp.path().join(format!("db{}", self.made.get()))
    }

    fn fresh(&self) -> Box<dyn MetaStore> {
        Box::new(RocksMeta::open(&self.path(), OpenMode::Write).unwrap())
    }
}

/// A fresh PostgreSQL store: a new database on the test process's server.
fn fresh_pg() -> Box<dyn MetaStore> {
    let pg = Postgres::shared();
    Box::new(PgMeta::open(&pg.url_with_password(&pg.database()), true, OpenMode::Write).unwrap())
}

/// One test per contract check, each on fresh RocksDB stores and on fresh
/// PostgreSQL stores.
macro_rules! contract_tests {
    ($($check:ident),* $(,)?) => {
        mod rocksdb {
            use super::*;
            $(
                #[test]
                fn $check() {
                    let stores = Stores::new();
                    contract::$check(&|| stores.fresh());
                }
            )*
        }
        mod postgresql {
            use super::*;
            $(
                #[test]
                fn $check() {
                    contract::$check(&fresh_pg);
                }
            )*
        }
    };
}

contract_tests!(
    a_fresh_store_is_empty,
    archive_records_read_back,
    messages_parts_and_locations,
    placements_by_identity_scope_and_message,
    source_state_per_account_and_folder,
    ingest_log_and_ledger,
    an_empty_batch_changes_nothing,
    removals_take_records_and_reverse_entries_away,
    rules_change_log_and_checkpoints,
    tags_by_message_and_by_tag,
);

#[test]
fn one_writer_at_a_time_and_readers_beside_it_see_what_was_committed() {
    let stores = Stores::new();
    let path = stores.path();
    let writer = RocksMeta::open(&path, OpenMode::Write).unwrap();
    let mut b = MetaBatch::default();
    b.push(Change::FormatVersion(3));
    writer.commit(b).unwrap();

    let second = RocksMeta::open(&path, OpenMode::Write)
        .err()
        .expect("a second writer is refused");
    assert!(matches!(second, MetaError::Locked { .. }), "{second}");
    assert!(second.to_string().contains(&path.display().to_string()), "{second}");

    let reader = RocksMeta::open(&path, OpenMode::ReadOnly).unwrap();
    assert_eq!(reader.format_version().unwrap(), Some(3));
    let mut b = MetaBatch::default();
    b.push(Change::FormatVersion(4));
    let refused = reader.commit(b).unwrap_err();
    assert!(matches!(refused, MetaError::ReadOnly { .. }), "{refused}");
    assert_eq!(writer.format_version().unwrap(), Some(3), "nothing was written");
}

#[test]
fn postgres_one_writer_at_a_time_and_readers_beside_it_see_what_was_committed() {
    let pg = Postgres::shared();
    let db = pg.database();
    let url = pg.url_with_password(&db);
    let writer = PgMeta::open(&url, true, OpenMode::Write).unwrap();
    let mut b = MetaBatch::default();
    b.push(Change::FormatVersion(5));
    writer.commit(b).unwrap();

    let second = PgMeta::open(&url, true, OpenMode::Write)
        .err()
        .expect("a second writer is refused");
    assert!(matches!(second, MetaError::Locked { .. }), "{second}");
    assert!(second.to_string().contains(&pg.url(&db)), "{second}");
    assert!(!second.to_string().contains(common::postgres::PASSWORD), "{second}");

    let reader = PgMeta::open(&url, true, OpenMode::ReadOnly).unwrap();
    assert_eq!(reader.format_version().unwrap(), Some(5));
    let mut b = MetaBatch::default();
    b.push(Change::FormatVersion(6));
    let refused = reader.commit(b).unwrap_err();
    assert!(matches!(refused, MetaError::ReadOnly { .. }), "{refused}");
    assert_eq!(writer.format_version().unwrap(), Some(5), "nothing was written");

    // The writer gone, its lock goes with its session.
    drop(writer);
    let again = PgMeta::open(&url, true, OpenMode::Write).unwrap();
    assert_eq!(again.format_version().unwrap(), Some(5));
}

#[test]
fn postgres_schema_is_versioned_and_a_newer_one_is_refused() {
    let pg = Postgres::shared();
    let db = pg.database();
    let url = pg.url_with_password(&db);
    // Read-only before any writer made the schema: told what to do.
    let e = PgMeta::open(&url, true, OpenMode::ReadOnly)
        .err()
        .expect("no schema yet");
    assert!(e.to_string().contains("open it for writing"), "{e}");
    drop(PgMeta::open(&url, true, OpenMode::Write).unwrap());
    assert_eq!(
        pg.query(&db, "SELECT max(version)::text FROM mailvault.schema_version"),
        ["3"]
    );
    let tables = pg.query(
        &db,
        "SELECT count(*)::text FROM information_schema.tables WHERE table_schema = 'mailvault'",
    );
    assert_eq!(
        tables,
        ["20"],
        "15 record tables, 4 of workers, leases and connection slots, and schema_version"
    );
    // Opening again applies nothing twice.
    drop(PgMeta::open(&url, true, OpenMode::Write).unwrap());
    assert_eq!(
        pg.query(&db, "SELECT count(*)::text FROM mailvault.schema_version"),
        ["3"]
    );

    pg.query(&db, "INSERT INTO mailvault.schema_version (version) VALUES (4)");
    for mode in [OpenMode::Write, OpenMode::ReadOnly] {
        let e = PgMeta::open(&url, true, mode).err().expect("a newer schema is refused");
        assert!(matches!(e, MetaError::NewerSchema { found: 4, known: 3, .. }), "{e}");
        assert!(e.to_string().contains("schema version 4"), "{e}");
    }
}

#[test]
fn postgres_password_is_never_taken_from_a_command_line_url() {
    let pg = Postgres::shared();
    let db = pg.database();
    let e = PgMeta::open(&pg.url_with_password(&db), false, OpenMode::Write)
        .err()
        .expect("a password in a command-line URL is refused");
    assert!(e.to_string().contains("PGPASSWORD"), "{e}");
    assert!(!e.to_string().contains(common::postgres::PASSWORD), "{e}");
}
