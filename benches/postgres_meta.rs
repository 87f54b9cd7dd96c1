//! Metadata in PostgreSQL against the embedded RocksDB: the main set (16,276
//! messages) imported into a local archive and into one whose metadata is in a
//! PostgreSQL 15 started here (durable commits: `fsync` and `synchronous_commit`
//! on, as a production server), packs local in both, no index — msg/s of each and
//! their ratio; then, from the server's own statistics (`pg_stat_statements`),
//! how many batches were committed, the server's time per batch (its statements
//! and the commit) and rows written per batch; and what the archive takes in
//! PostgreSQL: rows and bytes (tables, indexes) per message — the inputs of the
//! README's model of 100 workers and 40,000 mailboxes.
//!
//! `cargo bench --bench postgres_meta`. Needs the corpus and PostgreSQL 15.

mod common;
#[path = "../tests/common/mod.rs"]
mod tc;

use std::path::Path;
use std::time::Instant;

use common::{corpus_root, import_main_set, json, run_measured};
use tc::postgres::Postgres;

fn number(pg: &Postgres, db: &str, sql: &str) -> f64 {
    pg.query(db, sql).first().and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

fn messages(archive: &Path) -> u64 {
    let (_, _, out) = run_measured(&["stats", "--json"], archive);
    json(&out)["messages"].as_u64().unwrap()
}

fn main() {
    let Some(root) = corpus_root() else {
        eprintln!("postgres_meta: no corpus (set MAILVAULT_CORPUS); skipped");
        return;
    };
    std::env::set_var("PGPASSWORD", tc::postgres::PASSWORD);
    let pg = Postgres::start_counting();
    let tmp = tempfile::tempdir().unwrap();

    let embedded = tmp.path().join("embedded");
    let t = Instant::now();
    import_main_set(&root, &embedded);
    let embedded_secs = t.elapsed().as_secs_f64();
    let n = messages(&embedded);

    let db = pg.database();
    pg.count_statements(&db);
    let shared = tmp.path().join("postgres");
    run_measured(&["init", "--meta", &pg.url(&db)], &shared);
    pg.reset_statements(&db);
    let t = Instant::now();
    import_main_set(&root, &shared);
    let pg_secs = t.elapsed().as_secs_f64();
    assert_eq!(messages(&shared), n, "the same messages in both");

    let commits = pg.statements_sum(&db, "calls", "query = 'COMMIT'");
    let writes = "query LIKE 'INSERT INTO mailvault.%' OR query LIKE 'DELETE FROM mailvault.%' OR query = 'COMMIT'";
    let write_ms = pg.statements_sum(&db, "total_exec_time", writes);
    let rows_written = pg.statements_sum(&db, "rows", writes);
    let reads = "query LIKE 'SELECT %mailvault.%'";
    let read_ms = pg.statements_sum(&db, "total_exec_time", reads);
    let read_calls = pg.statements_sum(&db, "calls", reads);
    let tables = "FROM pg_stat_user_tables WHERE schemaname = 'mailvault'";
    pg.query(&db, "ANALYZE");
    let rows = number(&pg, &db, &format!("SELECT sum(n_live_tup)::text {tables}"));
    let table_bytes = number(&pg, &db, &format!("SELECT sum(pg_table_size(relid))::text {tables}"));
    let index_bytes = number(&pg, &db, &format!("SELECT sum(pg_indexes_size(relid))::text {tables}"));

    let n = n as f64;
    println!("postgres_meta: main set, {n} messages, packs local, no index");
    println!(
        "  import, embedded RocksDB: {:.1} s, {:.0} msg/s",
        embedded_secs,
        n / embedded_secs
    );
    println!(
        "  import, PostgreSQL 15:    {:.1} s, {:.0} msg/s ({:.2}x the embedded store's throughput)",
        pg_secs,
        n / pg_secs,
        embedded_secs / pg_secs
    );
    println!(
        "  batches committed: {commits:.0} ({:.1} messages each); server time per batch {:.2} ms (statements + commit), {:.0} rows written per batch",
        n / commits.max(1.0),
        write_ms / commits.max(1.0),
        rows_written / commits.max(1.0)
    );
    println!(
        "  reads: {read_calls:.0} statements, {:.3} ms each; {:.1}% of the import's wall time is the server's writes",
        read_ms / read_calls.max(1.0),
        100.0 * write_ms / 1000.0 / pg_secs
    );
    println!(
        "  stored: {rows:.0} rows ({:.1} per message), tables {:.1} MiB ({:.0} B per message), indexes {:.1} MiB ({:.0} B per message)",
        rows / n,
        table_bytes / 1048576.0,
        table_bytes / n,
        index_bytes / 1048576.0,
        index_bytes / n
    );
}
