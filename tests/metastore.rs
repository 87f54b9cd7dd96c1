//! The metadata store's behaviour, as the archive relies on it: the shared checks of
//! `mailvault::metastore::contract` on the embedded RocksDB store (a PostgreSQL
//! store runs the same checks), and what only an embedded store has: a read-only
//! open and the one-writer lock.

use std::path::PathBuf;

use mailvault::metastore::{contract, Change, MetaBatch, MetaError, MetaStore, OpenMode, RocksMeta};

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

/// One test per contract check, each on fresh RocksDB stores.
macro_rules! contract_tests {
    ($($check:ident),* $(,)?) => {$(
        #[test]
        fn $check() {
            let stores = Stores::new();
            contract::$check(&|| stores.fresh());
        }
    )*};
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
