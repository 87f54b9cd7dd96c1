//! mailvault: a mail archive that keeps every message once, byte-exact.
//!
//! Layers (dependencies point down only; see `README.md` and `schemas/`):
//!
//! | layer | modules | rule |
//! |---|---|---|
//! | L4 interface | `cli` (binary `main.rs`) | clap; `anyhow` only here |
//! | L2 adapters | [`source`] (mbox, maildir, eml), [`export`] | file I/O |
//! | L3 orchestration | [`import`] | reader thread + batched atomic ingest |
//! | L1 storage | [`archive`], [`index`] | synchronous; RocksDB + zstd; tantivy |
//! | L0 pure | [`model`], [`codec`], [`keys`], [`records`], [`mime`], [`query`], [`plan`] | no I/O, property-tested |
//!
//! The archive is append-only: nothing once archived is removed by any command.

pub mod archive;
pub mod codec;
pub mod control;
pub mod export;
pub mod imap;
pub mod import;
pub mod index;
pub mod job;
pub mod keys;
pub mod mime;
pub mod model;
pub mod net;
pub mod plan;
pub mod pop3;
pub mod query;
pub mod records;
pub mod remote;
pub mod replay;
pub mod service;
pub mod source;
pub mod writer;
