//! mailvault: a mail archive that keeps every message once, byte-exact.
//!
//! Layers (dependencies point down only; see `README.md` and `schemas/`):
//!
//! | layer | modules | rule |
//! |---|---|---|
//! | L4 interface | `cli` (binary `main.rs`), [`web`] (HTTP: server-rendered pages with sessions, CSRF and sign-in throttling, mail HTML sanitised; the JSON API; axum handlers over blocking reads) | clap; `anyhow` only in `cli` |
//! | L3 orchestration | [`service`] (jobs on schedules, IDLE, metrics; workers sharing an archive by leases), [`import`], [`replay`], [`retention`] (policies and holds over the index: what a purge removes and why); [`output`] (the JSON report shapes and their schemas) | tokio tasks; storage only through [`writer`] or blocking threads |
//! | L2 adapters | [`imap`], [`pop3`] (network sources), [`source`] (mbox, maildir, eml), [`export`], [`net`] (TCP, TLS, secrets, certificates), [`oauth`] (OAuth2 sign-in, the secret store, refreshing tokens; its flows pure in `oauth::flow`), [`probe`] (what a server offers; its advice pure in `probe::advice`) | I/O; protocol parsing in [`pop3::proto`], [`net::guard`] and [`plan`] stays free of tokio |
//! | L2 shared | [`remote`] (pull options and summaries), [`control`] (stop, pace, per-host slots), [`job`] (job files read and checked; schedule and backoff are pure), [`presets`] (mail providers by name: servers, sign-in, limits, folder quirks; data in `presets/providers.toml`) | types the sources and the service share |
//! | L1 storage | [`archive`] (messages byte-exact: packs, compaction, format upgrades, purge, the signed change log; one writer, or one of several writing in turns; knows no key layout), [`access`] (the hash-chained access log; entries sealed in an encrypted archive), [`metastore`] (the metadata behind one typed interface, over a key-value engine: RocksDB embedded or PostgreSQL shared; accounts and connection slots leased to workers), [`blobstore`] (where packs live: a local directory or S3), [`index`] (sealed in fixed-size blocks when the archive is encrypted), [`writer`] (the archive's async front) | synchronous; RocksDB + zstd; tantivy; the S3 store runs its requests on a runtime of its own; `archive` reaches RocksDB and PostgreSQL only through `metastore`; the PostgreSQL client is synchronous (its own runtime per connection), reached like RocksDB from the writer thread or `spawn_blocking` |
//! | L0 pure | [`model`], [`codec`], [`keys`], [`records`], [`evidence`] (rules, change records, checkpoints), [`crypt`] (keys and sealing for encryption at rest), [`mime`], [`query`], [`plan`], [`thread`] (conversation threads from Message-ID, In-Reply-To and References), [`tags`] (user tags: what a tag may be, `+tag -tag` changes, the stored record), [`chain`] (hash chains and checkpoints, verified) | no I/O, table- and property-tested |
//! | cross-cutting | [`private`], [`identity`], [`readers`] (web users and API tokens: roles, grants, Argon2id passwords; the rules pure, the store in the archive's secret store) | files we create are the owner's alone; who is acting and what they may read |
//! | checks | `fuzzing` | the fuzz targets' properties, over raw bytes (also run on kept inputs in CI) |
//!
//! No message once archived is removed by any command but `purge`, which removes
//! only what a retention policy let expire and no legal hold covers, and records
//! it in the signed change log like every other change (`compact` rewrites packs,
//! and deletes only what it has first rewritten or nothing references).

pub mod access;
pub mod archive;
pub mod blobstore;
pub mod chain;
pub mod codec;
pub mod control;
pub mod crypt;
pub mod evidence;
pub mod export;
pub mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod imap;
pub mod import;
pub mod index;
pub mod job;
pub mod keys;
pub mod metastore;
pub mod mime;
pub mod model;
pub mod net;
pub mod oauth;
pub mod output;
pub mod plan;
pub mod pop3;
pub mod presets;
pub mod private;
pub mod probe;
pub mod query;
pub mod readers;
pub mod records;
pub mod remote;
pub mod replay;
pub mod retention;
pub mod service;
pub mod source;
pub mod tags;
pub mod thread;
pub mod web;
pub mod writer;
