-- mailvault metadata in PostgreSQL: schema version 1.
--
-- One table per record kind, named as the embedded store's column families
-- (schemas/store-v5.toml), each holding the same keys and values, byte for byte:
-- `k` is the key as src/keys.rs lays it out, `v` the record as src/records.rs
-- encodes it. `bytea` compares bytewise, as RocksDB's comparator does, so an
-- ordered scan means the same on both backends.
--
-- Applied by `mailvault init --meta postgres://…` and by the upgrade on open, in
-- one transaction under an advisory lock; `schema_version` says which files ran.

CREATE SCHEMA IF NOT EXISTS mailvault;

CREATE TABLE mailvault.meta (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.messages (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.parts (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.placements (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.placements_by_message (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.cursors (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.ingest_log (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.dictionaries (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.replay_ledger (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.packs (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.pack_index (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.rules (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.change_log (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.checkpoints (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE mailvault.tags (k bytea PRIMARY KEY, v bytea NOT NULL);
