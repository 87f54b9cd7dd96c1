-- mailvault metadata in PostgreSQL: schema version 2 — workers and leases.
--
-- Several `mailvault serve --worker-id W` processes share one store; each
-- account's run is leased to one worker at a time. A lease is taken with
-- `SELECT … FOR UPDATE SKIP LOCKED` when it is free or its holder's claim has
-- expired, kept by heartbeats, and given back when the run ends. Every take bumps
-- the account's `generation`, the fencing token a holder shows when it commits, so
-- a worker that lost its lease (paused past the expiry, cut off) cannot write for
-- the account any more. `lease_history` keeps every holding with its start and
-- end, from which "no account leased twice at once" is checked.

CREATE TABLE mailvault.workers (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started timestamptz NOT NULL,
    heartbeat timestamptz NOT NULL
);

CREATE TABLE mailvault.leases (
    account text PRIMARY KEY,
    worker text,
    expires timestamptz,
    generation bigint NOT NULL DEFAULT 0,
    -- Accounts taken longest ago (or never) go first.
    last_taken timestamptz
);

CREATE TABLE mailvault.lease_history (
    account text NOT NULL,
    generation bigint NOT NULL,
    worker text NOT NULL,
    taken timestamptz NOT NULL,
    -- When the holding ended: given back, or the expiry it lapsed at (set when
    -- another worker took the account over). NULL while held.
    ended timestamptz,
    how text,
    PRIMARY KEY (account, generation)
);
