-- mailvault metadata in PostgreSQL: schema version 3 — what workers share besides
-- the leases.
--
-- An account's next run: a worker that finishes a run gives the lease back with
-- the time the account is next due (its schedule, or a backoff after a failure),
-- and no worker takes it before then.
--
-- Connection slots: a job's `limits.connections_per_host` holds across every
-- worker. Each server (`host:port`) has that many rows; a worker claims slots
-- before it connects, with `FOR UPDATE SKIP LOCKED`, keeps them with the same
-- heartbeat as its leases and gives them back once its connections are closed.
-- A worker that dies loses its slots at their expiry (its connections died with
-- it).

ALTER TABLE mailvault.leases ADD COLUMN due timestamptz;

CREATE TABLE mailvault.connection_slots (
    host text NOT NULL,
    slot integer NOT NULL,
    worker text,
    expires timestamptz,
    PRIMARY KEY (host, slot)
);
