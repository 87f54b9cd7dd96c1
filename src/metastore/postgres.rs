//! The shared key-value engine: PostgreSQL, for metadata that several workers (or
//! machines) share. The tables are the embedded store's column families, each
//! `(k bytea PRIMARY KEY, v bytea)` with the same bytes (`schemas/postgres/`), so
//! every record decodes the same way on both backends ([`super::kv`]).
//!
//! - **Connections**: a small pool of synchronous clients (the metadata interface
//!   is synchronous; callers are on the writer thread or `spawn_blocking`), each
//!   with its prepared statements cached.
//! - **Commits**: one transaction; a batch's writes are folded per table (a later
//!   write of a key wins) into one `DELETE … = ANY($1)` and one multi-row
//!   `INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE` per table and 5,000
//!   rows, in key order (two writers lock rows in the same order).
//! - **Scans**: pages of 1,000 rows in key order, each page a statement of its own
//!   (no cursor held while the caller's visitor runs).
//! - **Schema**: versioned SQL files applied in order, in one transaction under
//!   an advisory lock, when a store is opened for writing; a store of a newer
//!   version is refused.
//! - **One writer**: a writer holds a session advisory lock for as long as it is
//!   open, as RocksDB's lock file does for the embedded store.
//! - **Credentials**: never from the command line: a URL given there has no
//!   password; it comes from `PGPASSWORD` or the password file (`PGPASSFILE`,
//!   default `~/.pgpass`, used only when private to its owner), as libpq does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, NoTls, Statement};

use super::kv::{KvEngine, KvMeta, KvOps, RawVisit};
use super::pg_tls::MakeRustls;
use super::pgpass;
use super::{MetaError, OpenMode, Result};
use crate::keys::ALL_CFS;

/// The metadata in a PostgreSQL database.
pub type PgMeta = KvMeta<PgKv>;

/// The schema files, in the order they apply; the schema's version is how many ran.
const MIGRATIONS: [&str; 3] = [
    include_str!("../../schemas/postgres/0001-tables.sql"),
    include_str!("../../schemas/postgres/0002-leases.sql"),
    include_str!("../../schemas/postgres/0003-workers.sql"),
];

/// Advisory lock keys: the writer's (the first eight letters of "mailvault" in
/// ASCII), and the one migrations run under (the next).
const WRITER_LOCK: i64 = 0x6d61_696c_7661_756c;
const MIGRATION_LOCK: i64 = WRITER_LOCK + 1;
/// How long opening for writing waits for another writer's lock.
const WRITER_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Rows per page of a scan.
const PAGE: i64 = 1000;
/// Rows per statement of a commit.
const CHUNK: usize = 5000;
/// Connections a store opens at most; a caller waits this long for one.
const MAX_CONNECTIONS: usize = 8;
const CONNECTION_WAIT: Duration = Duration::from_secs(60);

/// Whether `text` names a PostgreSQL store (rather than a path).
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The connection settings of `url`, and the URL as it may be recorded and shown
/// (no password). A URL with a password is refused unless `allow_password`
/// (for a URL read from the environment or a file, never from argv).
pub fn parse_url(url: &str, allow_password: bool) -> Result<(postgres::Config, String)> {
    let bad = |what: String| MetaError::Backend {
        store: "metadata (PostgreSQL)".into(),
        op: "reading its URL",
        source: what.into(),
    };
    if !is_postgres_url(url) {
        return Err(bad("a PostgreSQL URL starts with postgres://".into()));
    }
    let config = postgres::Config::from_str(url).map_err(|e| bad(e.to_string()))?;
    if config.get_password().is_some() && !allow_password {
        return Err(bad(
            "the URL holds a password, which would be seen in the process list: give it in PGPASSWORD or a password file (PGPASSFILE, ~/.pgpass) instead".into(),
        ));
    }
    Ok((config.clone(), shown_url(&config)))
}

/// `postgres://user@host:port/db`, with `?sslmode=` when it is not the default
/// (other settings of the query string are not kept).
fn shown_url(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => format!("[{}]", p.display()),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let mode = match config.get_ssl_mode() {
        SslMode::Disable => "?sslmode=disable",
        SslMode::Require => "?sslmode=require",
        _ => "",
    };
    format!(
        "postgres://{user}{host}:{port}/{}{mode}",
        config.get_dbname().unwrap_or("")
    )
}

/// Fills in the password from `PGPASSWORD` or the password file, when the URL
/// had none.
fn add_password(config: &mut postgres::Config) {
    if config.get_password().is_some() {
        return;
    }
    if let Some(p) = std::env::var_os("PGPASSWORD") {
        config.password(p.as_encoded_bytes());
        return;
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().join(".pgpass")));
    let Some(file) = file else { return };
    let Ok(meta) = std::fs::metadata(&file) else { return };
    if !pgpass::private_enough(std::os::unix::fs::PermissionsExt::mode(&meta.permissions())) {
        tracing::warn!(
            "{} is readable by others; it is not used (chmod 600 it)",
            file.display()
        );
        return;
    }
    let Ok(text) = std::fs::read_to_string(&file) else {
        return;
    };
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let user = config.get_user().unwrap_or_default().to_string();
    let wanted = pgpass::Wanted {
        host: &host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        database: config.get_dbname().unwrap_or(&user),
        user: &user,
    };
    if let Some(p) = pgpass::lookup(&text, &wanted) {
        config.password(p);
    }
}

/// A pooled client and its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    fn prepared(&mut self, sql: &str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// Idle connections, and how many are open in all.
#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

struct Pool {
    config: postgres::Config,
    /// `None` for `sslmode=disable`.
    tls: Option<MakeRustls>,
    state: Mutex<PoolState>,
    freed: Condvar,
}

/// A connection taken from the pool, given back when dropped (or closed, when
/// its session broke).
struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("leased")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("leased")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut state = self.pool.state.lock().expect("pool");
        if conn.client.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        self.pool.freed.notify_one();
    }
}

impl Pool {
    fn get(&self) -> std::result::Result<Pooled<'_>, postgres::Error> {
        let mut state = self.state.lock().expect("pool");
        let deadline = std::time::Instant::now() + CONNECTION_WAIT;
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.state.lock().expect("pool").open -= 1;
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                // Every connection busy for a minute: open one more rather than fail.
                state.open += 1;
                drop(state);
                return self.connect().map(|conn| Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            state = self.freed.wait_timeout(state, left).expect("pool").0;
        }
    }

    fn connect(&self) -> std::result::Result<Conn, postgres::Error> {
        Ok(Conn {
            client: connect(&self.config, self.tls.as_ref())?,
            statements: HashMap::new(),
        })
    }
}

/// A session, over TLS unless `sslmode=disable`.
fn connect(config: &postgres::Config, tls: Option<&MakeRustls>) -> std::result::Result<Client, postgres::Error> {
    match tls {
        Some(tls) => config.connect(tls.clone()),
        None => config.connect(NoTls),
    }
}

/// A PostgreSQL database as a [`KvEngine`].
pub struct PgKv {
    shown: String,
    pool: Pool,
    tables: HashSet<String>,
    read_only: bool,
    /// The writer's session, holding [`WRITER_LOCK`] while it lives.
    _writer: Mutex<Option<Client>>,
    /// A shared writer's session for its turns (opened at the first), which takes
    /// [`WRITER_LOCK`] for each turn. `None` inside unless [`OpenMode::Shared`].
    turns: Option<Mutex<Option<Client>>>,
}

impl PgMeta {
    /// Opens the store `url` names (see [`parse_url`]); for writing, its schema is
    /// created or brought up to date, and the one-writer lock taken.
    pub fn open(url: &str, allow_password: bool, mode: OpenMode) -> Result<PgMeta> {
        let Session {
            config,
            tls,
            store,
            client: mut first,
        } = Session::open(url, allow_password, mode)?;
        let err = |op: &'static str| {
            let store = store.clone();
            move |e: postgres::Error| backend(&store, op, e)
        };
        let (writer, turn_session) = match mode {
            OpenMode::Write => {
                take_writer_lock(&mut first, &store)?;
                migrate_schema(&mut first, &store)?;
                (Some(first), None)
            }
            OpenMode::Shared => {
                migrate_schema(&mut first, &store)?;
                (None, Some(first))
            }
            OpenMode::ReadOnly => {
                check_version(&mut first, &store)?;
                (None, None)
            }
        };
        let pool = Pool {
            config,
            tls,
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
        };
        let tables = {
            let mut c = pool.get().map_err(err("connect"))?;
            c.client
                .query(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'mailvault'",
                    &[],
                )
                .map_err(err("list tables"))?
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect()
        };
        Ok(KvMeta::new(PgKv {
            shown: store,
            pool,
            tables,
            read_only: mode == OpenMode::ReadOnly,
            _writer: Mutex::new(writer),
            turns: (mode == OpenMode::Shared).then(|| Mutex::new(turn_session)),
        }))
    }
}

/// Takes the one-writer lock on `client`'s session, waiting up to
/// [`WRITER_LOCK_WAIT`]: a writer killed a moment ago holds it until the server
/// sees its connection closed.
fn take_writer_lock(client: &mut Client, store: &str) -> Result<()> {
    let wait = format!("SET lock_timeout = '{}ms'", WRITER_LOCK_WAIT.as_millis());
    client.batch_execute(&wait).map_err(|e| backend(store, "lock", e))?;
    let taken = client.execute("SELECT pg_advisory_lock($1)", &[&WRITER_LOCK]);
    match taken {
        Ok(_) => {}
        Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            return Err(MetaError::Locked {
                store: store.to_string(),
            })
        }
        Err(e) => return Err(backend(store, "lock", e)),
    }
    client
        .batch_execute("SET lock_timeout = 0")
        .map_err(|e| backend(store, "lock", e))
}

/// How long a shared writer waits for its turn before giving up (another writer's
/// batch takes well under a second; a one-writer process such as `import` holds
/// the lock for as long as it runs).
const TURN_WAIT: Duration = Duration::from_secs(60);

/// A shared writer's turn: [`WRITER_LOCK`] held by its turn session until dropped.
struct TurnGuard<'a> {
    session: std::sync::MutexGuard<'a, Option<Client>>,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        let Some(client) = self.session.as_mut() else { return };
        if let Err(e) = client.execute("SELECT pg_advisory_unlock($1)", &[&WRITER_LOCK]) {
            // The session goes, and the lock with it.
            tracing::warn!("giving back the writers' turn failed ({e}); closing its session");
            *self.session = None;
        }
    }
}

impl PgKv {
    /// Waits up to [`TURN_WAIT`] for [`WRITER_LOCK`] on the turn session (opened
    /// again when it broke).
    fn take_turn<'a>(&'a self, turns: &'a Mutex<Option<Client>>) -> Result<super::Turn<'a>> {
        let mut session = turns.lock().unwrap_or_else(|p| p.into_inner());
        if session.as_ref().is_none_or(Client::is_closed) {
            let conn = self.pool.connect().map_err(|e| backend(&self.shown, "connect", e))?;
            *session = Some(conn.client);
        }
        let client = session.as_mut().expect("a turn session");
        // One round trip: the wait's limit and the lock.
        let take = format!(
            "SET lock_timeout = '{}ms'; SELECT pg_advisory_lock({WRITER_LOCK})",
            TURN_WAIT.as_millis()
        );
        let taken = client.batch_execute(&take);
        match taken {
            Ok(_) => Ok(super::Turn::new(TurnGuard { session })),
            Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => Err(MetaError::Locked {
                store: self.shown.clone(),
            }),
            Err(e) => {
                *session = None;
                Err(backend(&self.shown, "wait for the writers' turn", e))
            }
        }
    }
}

/// A first session to the store `url` names, and how to open more.
struct Session {
    config: postgres::Config,
    tls: Option<MakeRustls>,
    /// Names the store in messages.
    store: String,
    client: Client,
}

impl Session {
    fn open(url: &str, allow_password: bool, mode: OpenMode) -> Result<Session> {
        let (mut config, shown) = parse_url(url, allow_password)?;
        add_password(&mut config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("mailvault");
        if mode == OpenMode::ReadOnly {
            config.options("-c default_transaction_read_only=on");
        }
        let store = format!("metadata (PostgreSQL) at {shown}");
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => None,
            _ => Some(MakeRustls::from_env().map_err(|e| MetaError::Backend {
                store: store.clone(),
                op: "set up TLS",
                source: Box::new(e),
            })?),
        };
        let client = connect(&config, tls.as_ref()).map_err(|e| backend(&store, "connect", e))?;
        Ok(Session {
            config,
            tls,
            store,
            client,
        })
    }
}

/// A session for coordination ([`super::leases`]) to the store `url` names, and
/// the store's name for messages.
pub(super) fn connect_for(url: &str, allow_password: bool) -> Result<(Client, String)> {
    let s = Session::open(url, allow_password, OpenMode::Write)?;
    Ok((s.client, s.store))
}

/// The schema version recorded in the database (0: none yet).
fn schema_version(client: &mut impl postgres::GenericClient) -> std::result::Result<usize, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('mailvault.schema_version') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM mailvault.schema_version", &[])?
        .get(0);
    Ok(v.unwrap_or(0).max(0) as usize)
}

fn newer(store: &str, found: usize) -> MetaError {
    MetaError::NewerSchema {
        store: store.to_string(),
        found,
        known: MIGRATIONS.len(),
    }
}

pub(super) fn check_version(client: &mut Client, store: &str) -> Result<()> {
    let v = schema_version(client).map_err(|e| backend(store, "read the schema version", e))?;
    if v > MIGRATIONS.len() {
        return Err(newer(store, v));
    }
    if v < MIGRATIONS.len() {
        return Err(MetaError::Corrupt {
            table: "schema_version",
            what: format!(
                "{store} has schema version {v}; open it for writing once to bring it to {}",
                MIGRATIONS.len()
            ),
        });
    }
    Ok(())
}

/// Applies the schema files the database has not had, in one transaction.
pub(super) fn migrate_schema(client: &mut Client, store: &str) -> Result<()> {
    let err = |op| move |e| backend(store, op, e);
    let mut tx = client.transaction().map_err(err("begin the schema upgrade"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(err("lock the schema"))?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS mailvault;
         CREATE TABLE IF NOT EXISTS mailvault.schema_version
           (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(err("create the schema table"))?;
    let have = schema_version(&mut tx).map_err(err("read the schema version"))?;
    if have > MIGRATIONS.len() {
        return Err(newer(store, have));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(have) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).map_err(err("apply a schema file"))?;
        tx.execute(
            "INSERT INTO mailvault.schema_version (version) VALUES ($1)",
            &[&version],
        )
        .map_err(err("record the schema version"))?;
        tracing::info!("{store}: schema version {version} applied");
    }
    tx.commit().map_err(err("commit the schema upgrade"))
}

pub(super) fn backend(store: &str, op: &'static str, e: postgres::Error) -> MetaError {
    MetaError::Backend {
        store: store.to_string(),
        op,
        source: Box::new(e),
    }
}

/// The least key greater than every key starting with `prefix` (`None`: no
/// bound, for an empty prefix or one of all 0xff).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xff {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// A table name checked against the ones the schema has (names reach SQL text).
fn table_name(table: &'static str) -> Result<&'static str> {
    if ALL_CFS.contains(&table) {
        Ok(table)
    } else {
        Err(MetaError::Corrupt {
            table,
            what: "not a table of the PostgreSQL schema".into(),
        })
    }
}

impl PgKv {
    fn err(&self, op: &'static str) -> impl Fn(postgres::Error) -> MetaError + '_ {
        move |e| backend(&self.shown, op, e)
    }

    /// One page of a scan: keys from `lower` (inclusive or not) below `upper`.
    fn page(
        &self,
        table: &'static str,
        (lower, inclusive): (&[u8], bool),
        upper: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let op = if inclusive { ">=" } else { ">" };
        let mut c = self.pool.get().map_err(self.err("connect"))?;
        let rows = match upper {
            Some(upper) => {
                let sql = format!("SELECT k, v FROM mailvault.{table} WHERE k {op} $1 AND k < $2 ORDER BY k LIMIT $3");
                let s = c.prepared(&sql).map_err(self.err("scan"))?;
                c.client.query(&s, &[&lower, &upper, &PAGE])
            }
            None => {
                let sql = format!("SELECT k, v FROM mailvault.{table} WHERE k {op} $1 ORDER BY k LIMIT $2");
                let s = c.prepared(&sql).map_err(self.err("scan"))?;
                c.client.query(&s, &[&lower, &PAGE])
            }
        }
        .map_err(self.err("scan"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

impl KvEngine for PgKv {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn has_table(&self, table: &str) -> bool {
        self.tables.contains(table)
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let table = table_name(table)?;
        if !self.has_table(table) {
            return Ok(None);
        }
        let mut c = self.pool.get().map_err(self.err("connect"))?;
        let s = c
            .prepared(&format!("SELECT v FROM mailvault.{table} WHERE k = $1"))
            .map_err(self.err("read"))?;
        let row = c.client.query_opt(&s, &[&key]).map_err(self.err("read"))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn multi_get(&self, table: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let table = table_name(table)?;
        let mut found: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(keys.len());
        if !keys.is_empty() {
            let mut c = self.pool.get().map_err(self.err("connect"))?;
            let s = c
                .prepared(&format!("SELECT k, v FROM mailvault.{table} WHERE k = ANY($1)"))
                .map_err(self.err("read"))?;
            for chunk in keys.chunks(CHUNK) {
                let chunk: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                for r in c.client.query(&s, &[&chunk]).map_err(self.err("read"))? {
                    found.insert(r.get(0), r.get(1));
                }
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn scan(&self, table: &'static str, prefix: &[u8], from: &[u8], visit: RawVisit<'_>) -> Result<()> {
        let table = table_name(table)?;
        if !self.has_table(table) {
            return Ok(());
        }
        let upper = successor(prefix);
        let mut lower = (from.to_vec(), true);
        loop {
            let rows = self.page(table, (&lower.0, lower.1), upper.as_deref())?;
            let full = rows.len() as i64 == PAGE;
            for (k, v) in &rows {
                if !k.starts_with(prefix) || visit(k, v).is_break() {
                    return Ok(());
                }
            }
            match rows.into_iter().last() {
                Some((k, _)) if full => lower = (k, false),
                _ => return Ok(()),
            }
        }
    }

    fn last(&self, table: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let table = table_name(table)?;
        let mut c = self.pool.get().map_err(self.err("connect"))?;
        let s = c
            .prepared(&format!("SELECT k, v FROM mailvault.{table} ORDER BY k DESC LIMIT 1"))
            .map_err(self.err("read"))?;
        let row = c.client.query_opt(&s, &[]).map_err(self.err("read"))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    fn turn(&self) -> Result<Option<super::Turn<'_>>> {
        self.turns.as_ref().map(|t| self.take_turn(t)).transpose()
    }

    fn write(&self, ops: KvOps) -> Result<()> {
        if self.read_only {
            return Err(MetaError::ReadOnly {
                store: self.shown.clone(),
            });
        }
        let mut per_table: BTreeMap<&'static str, BTreeMap<Vec<u8>, Option<Vec<u8>>>> = BTreeMap::new();
        for op in ops.0 {
            per_table
                .entry(table_name(op.table)?)
                .or_default()
                .insert(op.key, op.value);
        }
        let mut c = self.pool.get().map_err(self.err("connect"))?;
        let mut statements = Vec::with_capacity(per_table.len());
        for table in per_table.keys() {
            let delete = c
                .prepared(&format!("DELETE FROM mailvault.{table} WHERE k = ANY($1)"))
                .map_err(self.err("commit"))?;
            let upsert = c
                .prepared(&format!(
                    "INSERT INTO mailvault.{table} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                ))
                .map_err(self.err("commit"))?;
            statements.push((delete, upsert));
        }
        let mut tx = c.client.transaction().map_err(self.err("commit"))?;
        for (entries, (delete, upsert)) in per_table.values().zip(&statements) {
            let (puts, deletes): (Vec<_>, Vec<_>) = entries.iter().partition(|(_, v)| v.is_some());
            for chunk in deletes.chunks(CHUNK) {
                let ks: Vec<&[u8]> = chunk.iter().map(|(k, _)| k.as_slice()).collect();
                tx.execute(delete, &[&ks]).map_err(self.err("commit"))?;
            }
            for chunk in puts.chunks(CHUNK) {
                let ks: Vec<&[u8]> = chunk.iter().map(|(k, _)| k.as_slice()).collect();
                let vs: Vec<&[u8]> = chunk.iter().filter_map(|(_, v)| v.as_deref()).collect();
                tx.execute(upsert, &[&ks, &vs]).map_err(self.err("commit"))?;
            }
        }
        tx.commit().map_err(self.err("commit"))
    }

    fn drop_table(&mut self, table: &'static str) -> Result<()> {
        // Only a store that was once of format 1 or 2 has a legacy table to drop,
        // and a PostgreSQL store never was.
        Err(MetaError::Corrupt {
            table,
            what: "a PostgreSQL store has no such table".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_successor_bounds_every_key_with_the_prefix() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff, 0xff]), None);
        assert_eq!(successor(b""), None);
    }

    #[test]
    fn a_url_with_a_password_is_refused_unless_allowed_and_never_shown() {
        let e = parse_url("postgres://vault:secret@db.example:5433/mail", false).unwrap_err();
        assert!(e.to_string().contains("PGPASSWORD"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        let (config, shown) = parse_url("postgres://vault:secret@db.example:5433/mail", true).unwrap();
        assert_eq!(shown, "postgres://vault@db.example:5433/mail");
        assert_eq!(config.get_password(), Some(&b"secret"[..]));
        let (_, shown) = parse_url(
            "postgresql://vault@127.0.0.1/mail?sslmode=require&connect_timeout=3",
            false,
        )
        .unwrap();
        assert_eq!(shown, "postgres://vault@127.0.0.1:5432/mail?sslmode=require");
        let (_, shown) = parse_url("postgresql://vault@127.0.0.1/mail", false).unwrap();
        assert_eq!(shown, "postgres://vault@127.0.0.1:5432/mail");
        assert!(parse_url("/srv/archive", false).is_err());
    }

    #[test]
    fn only_the_schema_tables_reach_sql() {
        assert!(table_name("messages").is_ok());
        assert!(table_name("blobs").is_err());
    }
}
