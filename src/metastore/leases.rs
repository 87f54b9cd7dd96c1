//! Accounts leased to workers, in the shared PostgreSQL store (schema file
//! `schemas/postgres/0002-leases.sql`): the coordination under `serve
//! --worker-id W` on several processes or machines.
//!
//! A worker takes free or expired leases with `SELECT … FOR UPDATE SKIP LOCKED`
//! (two workers never wait on, or both get, the same account), those taken
//! longest ago first, keeps them with
//! heartbeats ([`Leases::renew`]) and gives them back ([`Leases::release`]).
//! Every take bumps the account's generation: the fencing token a holder shows
//! ([`Leases::holds`]); a worker that stalled past its expiry finds its token
//! stale and stops. All times are the database's clock, so workers' clocks may
//! disagree. Every holding is kept in `lease_history`; [`overlapping`] checks
//! from it that no account was leased twice at once. A lease given back carries
//! the account's next due time (`schemas/postgres/0003-workers.sql`).
//!
//! Connection slots work the same way: each server has `connections_per_host`
//! rows, claimed with `FOR UPDATE SKIP LOCKED` before connecting, renewed with
//! the leases, given back when the connections are closed, lapsing with a dead
//! worker.

use std::time::Duration;

use postgres::Client;

use super::postgres::{backend, check_version, connect_for, migrate_schema};
use super::{MetaError, Result};

/// One account held by this worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub account: String,
    /// The fencing token: bumped on every take of the account.
    pub generation: i64,
}

/// An account's lease as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseState {
    pub account: String,
    /// `None` when free.
    pub worker: Option<String>,
    /// Microseconds until the holder's claim lapses (negative: lapsed).
    pub expires_in_us: Option<i64>,
    pub generation: i64,
}

/// One holding of an account, from the lease history (times in microseconds
/// since the Unix epoch, the database's clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub account: String,
    pub generation: i64,
    pub worker: String,
    pub taken: i64,
    /// `None` while held.
    pub ended: Option<i64>,
}

/// Pairs of holdings of one account that overlap in time (none, when every
/// account was held by one worker at a time).
pub fn overlapping(history: &[Holding]) -> Vec<(Holding, Holding)> {
    let mut sorted: Vec<&Holding> = history.iter().collect();
    sorted.sort_by(|a, b| (&a.account, a.taken, a.generation).cmp(&(&b.account, b.taken, b.generation)));
    sorted
        .windows(2)
        .filter(|w| w[0].account == w[1].account && w[0].ended.is_none_or(|end| end > w[1].taken))
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect()
}

/// One worker's view of the leases (or an observer's: `status`).
pub struct Leases {
    client: std::sync::Mutex<Client>,
    worker: String,
    store: String,
}

/// Connection slots of one server held by a worker (numbers of `connection_slots`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slots {
    pub host: String,
    pub numbers: Vec<i32>,
}

const TAKE: &str = "
WITH free AS (
    SELECT account, worker AS old_worker, expires AS old_expires, generation AS old_generation
    FROM mailvault.leases
    WHERE (worker IS NULL OR expires < now()) AND (due IS NULL OR due <= now())
    ORDER BY last_taken NULLS FIRST, account
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE mailvault.leases l
    SET worker = $1, expires = now() + $3::float8 * interval '1 millisecond', generation = l.generation + 1,
        last_taken = now(), due = NULL
    FROM free WHERE l.account = free.account
    RETURNING l.account, l.generation, free.old_worker, free.old_expires, free.old_generation
), lapsed AS (
    UPDATE mailvault.lease_history h SET ended = t.old_expires, how = 'expired'
    FROM taken t
    WHERE t.old_worker IS NOT NULL AND h.account = t.account AND h.generation = t.old_generation AND h.ended IS NULL
), recorded AS (
    INSERT INTO mailvault.lease_history (account, generation, worker, taken)
    SELECT account, generation, $1, now() FROM taken
)
SELECT account, generation FROM taken ORDER BY account";

const RENEW: &str = "
UPDATE mailvault.leases l SET expires = now() + $4::float8 * interval '1 millisecond'
FROM unnest($2::text[], $3::int8[]) AS h(account, generation)
WHERE l.account = h.account AND l.generation = h.generation AND l.worker = $1
RETURNING l.account, l.generation";

const TAKE_SLOTS: &str = "
WITH free AS (
    SELECT host, slot FROM mailvault.connection_slots
    WHERE host = $2 AND (worker IS NULL OR expires < now())
    ORDER BY slot
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE mailvault.connection_slots s SET worker = $1, expires = now() + $4::float8 * interval '1 millisecond'
FROM free WHERE s.host = free.host AND s.slot = free.slot
RETURNING s.slot";

/// A worker as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerState {
    pub id: String,
    pub host: String,
    pub pid: i32,
    /// Microseconds since its last heartbeat.
    pub silent_us: i64,
    /// Accounts it holds now.
    pub leases: i64,
    /// Connection slots it holds now.
    pub slots: i64,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Leases {
    /// Registers `worker` (a name of its own per process: `--worker-id`) in the
    /// store `url` names, bringing the schema up to date.
    pub fn open(url: &str, allow_password: bool, worker: &str) -> Result<Leases> {
        let (mut client, store) = connect_for(url, allow_password)?;
        migrate_schema(&mut client, &store)?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        client
            .execute(
                "INSERT INTO mailvault.workers (id, host, pid, started, heartbeat) VALUES ($1, $2, $3, now(), now())
                 ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, started = now(), heartbeat = now()",
                &[&worker, &host, &(std::process::id() as i32)],
            )
            .map_err(err(&store, "register the worker"))?;
        Ok(Leases {
            client: std::sync::Mutex::new(client),
            worker: worker.to_string(),
            store,
        })
    }

    /// Reads the leases and workers of the store `url` names without being a
    /// worker (`status`).
    pub fn observe(url: &str, allow_password: bool) -> Result<Leases> {
        let (mut client, store) = connect_for(url, allow_password)?;
        check_version(&mut client, &store)?;
        Ok(Leases {
            client: std::sync::Mutex::new(client),
            worker: String::new(),
            store,
        })
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().expect("lease client")
    }

    /// Makes `accounts` leasable (those already known are left as they are).
    pub fn offer(&self, accounts: &[String]) -> Result<()> {
        self.client()
            .execute(
                "INSERT INTO mailvault.leases (account) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                &[&accounts],
            )
            .map_err(err(&self.store, "offer accounts"))?;
        Ok(())
    }

    /// Takes up to `max` free or lapsed leases for `ttl`.
    pub fn take(&self, max: usize, ttl: Duration) -> Result<Vec<Lease>> {
        let rows = self
            .client()
            .query(TAKE, &[&self.worker, &(max as i64), &millis(ttl)])
            .map_err(err(&self.store, "take leases"))?;
        Ok(rows
            .iter()
            .map(|r| Lease {
                account: r.get(0),
                generation: r.get(1),
            })
            .collect())
    }

    /// Extends `held` and the connection `slots` this worker holds by `ttl`;
    /// returns the leases still this worker's (the others were taken over after
    /// they lapsed: their work must stop).
    pub fn renew(&self, held: &[Lease], slots: &[Slots], ttl: Duration) -> Result<Vec<Lease>> {
        let accounts: Vec<&str> = held.iter().map(|l| l.account.as_str()).collect();
        let generations: Vec<i64> = held.iter().map(|l| l.generation).collect();
        let mut c = self.client();
        c.execute(
            "UPDATE mailvault.workers SET heartbeat = now() WHERE id = $1",
            &[&self.worker],
        )
        .map_err(err(&self.store, "heartbeat"))?;
        // The slots by number, not by worker: a worker restarted under the same
        // name must not keep alive the slots its killed predecessor held.
        let (hosts, numbers): (Vec<&str>, Vec<i32>) = slots
            .iter()
            .flat_map(|s| s.numbers.iter().map(move |n| (s.host.as_str(), *n)))
            .unzip();
        c.execute(
            "UPDATE mailvault.connection_slots s SET expires = now() + $4::float8 * interval '1 millisecond'
             FROM unnest($2::text[], $3::int4[]) AS h(host, slot)
             WHERE s.host = h.host AND s.slot = h.slot AND s.worker = $1",
            &[&self.worker, &hosts, &numbers, &millis(ttl)],
        )
        .map_err(err(&self.store, "renew connection slots"))?;
        let rows = c
            .query(RENEW, &[&self.worker, &accounts, &generations, &millis(ttl)])
            .map_err(err(&self.store, "renew leases"))?;
        let kept: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(held
            .iter()
            .filter(|l| kept.iter().any(|(a, g)| *a == l.account && *g == l.generation))
            .cloned()
            .collect())
    }

    /// Gives `lease` back (`how`: why, for the history); false when it was no
    /// longer this worker's.
    pub fn release(&self, lease: &Lease, how: &str) -> Result<bool> {
        self.release_until(lease, how, Duration::ZERO)
    }

    /// Gives `lease` back, not to be taken again for `due_in` (the account's next
    /// run: its schedule, or a backoff).
    pub fn release_until(&self, lease: &Lease, how: &str, due_in: Duration) -> Result<bool> {
        let mut c = self.client();
        let mut tx = c.transaction().map_err(err(&self.store, "release a lease"))?;
        let n = tx
            .execute(
                "UPDATE mailvault.leases SET worker = NULL, expires = NULL,
                        due = now() + $4::float8 * interval '1 millisecond'
                 WHERE account = $1 AND worker = $2 AND generation = $3",
                &[&lease.account, &self.worker, &lease.generation, &millis(due_in)],
            )
            .map_err(err(&self.store, "release a lease"))?;
        if n == 1 {
            tx.execute(
                "UPDATE mailvault.lease_history SET ended = now(), how = $3
                 WHERE account = $1 AND generation = $2 AND ended IS NULL",
                &[&lease.account, &lease.generation, &how],
            )
            .map_err(err(&self.store, "release a lease"))?;
        }
        tx.commit().map_err(err(&self.store, "release a lease"))?;
        Ok(n == 1)
    }

    /// Whether `lease` is still this worker's (its fencing token current).
    pub fn holds(&self, lease: &Lease) -> Result<bool> {
        let row = self
            .client()
            .query_opt(
                "SELECT 1 FROM mailvault.leases WHERE account = $1 AND worker = $2 AND generation = $3",
                &[&lease.account, &self.worker, &lease.generation],
            )
            .map_err(err(&self.store, "check a lease"))?;
        Ok(row.is_some())
    }

    /// Makes `limit` connection slots for `host` (a job's
    /// `limits.connections_per_host`); a smaller limit than before drops the
    /// slots above it once they are free.
    pub fn offer_slots(&self, host: &str, limit: u32) -> Result<()> {
        let limit = limit.max(1) as i32;
        let mut c = self.client();
        c.execute(
            "INSERT INTO mailvault.connection_slots (host, slot) SELECT $1, generate_series(1, $2)
             ON CONFLICT DO NOTHING",
            &[&host, &limit],
        )
        .map_err(err(&self.store, "offer connection slots"))?;
        c.execute(
            "DELETE FROM mailvault.connection_slots
             WHERE host = $1 AND slot > $2 AND (worker IS NULL OR expires < now())",
            &[&host, &limit],
        )
        .map_err(err(&self.store, "offer connection slots"))?;
        Ok(())
    }

    /// Claims up to `max` free (or lapsed) connection slots of `host` for `ttl`.
    pub fn take_slots(&self, host: &str, max: u32, ttl: Duration) -> Result<Slots> {
        let rows = self
            .client()
            .query(TAKE_SLOTS, &[&self.worker, &host, &i64::from(max), &millis(ttl)])
            .map_err(err(&self.store, "take connection slots"))?;
        Ok(Slots {
            host: host.to_string(),
            numbers: rows.iter().map(|r| r.get(0)).collect(),
        })
    }

    /// Gives `slots` back (their connections are closed).
    pub fn release_slots(&self, slots: &Slots) -> Result<()> {
        self.client()
            .execute(
                "UPDATE mailvault.connection_slots SET worker = NULL, expires = NULL
                 WHERE host = $1 AND slot = ANY($2) AND worker = $3",
                &[&slots.host, &slots.numbers, &self.worker],
            )
            .map_err(err(&self.store, "release connection slots"))?;
        Ok(())
    }

    /// Every worker that has registered, with what it holds now.
    pub fn workers(&self) -> Result<Vec<WorkerState>> {
        let rows = self
            .client()
            .query(
                "SELECT w.id, w.host, w.pid, (extract(epoch FROM now() - w.heartbeat) * 1000000)::int8,
                        (SELECT count(*) FROM mailvault.leases l WHERE l.worker = w.id AND l.expires > now()),
                        (SELECT count(*) FROM mailvault.connection_slots s WHERE s.worker = w.id AND s.expires > now())
                 FROM mailvault.workers w ORDER BY w.id",
                &[],
            )
            .map_err(err(&self.store, "read the workers"))?;
        Ok(rows
            .iter()
            .map(|r| WorkerState {
                id: r.get(0),
                host: r.get(1),
                pid: r.get(2),
                silent_us: r.get(3),
                leases: r.get(4),
                slots: r.get(5),
            })
            .collect())
    }

    /// Every account's lease, in account order.
    pub fn states(&self) -> Result<Vec<LeaseState>> {
        let rows = self
            .client()
            .query(
                "SELECT account, worker, (extract(epoch FROM expires - now()) * 1000000)::int8, generation
                 FROM mailvault.leases ORDER BY account",
                &[],
            )
            .map_err(err(&self.store, "read the leases"))?;
        Ok(rows
            .iter()
            .map(|r| LeaseState {
                account: r.get(0),
                worker: r.get(1),
                expires_in_us: r.get(2),
                generation: r.get(3),
            })
            .collect())
    }

    /// Every holding there has been.
    pub fn history(&self) -> Result<Vec<Holding>> {
        let rows = self
            .client()
            .query(
                "SELECT account, generation, worker, (extract(epoch FROM taken) * 1000000)::int8,
                        (extract(epoch FROM ended) * 1000000)::int8
                 FROM mailvault.lease_history ORDER BY account, generation",
                &[],
            )
            .map_err(err(&self.store, "read the lease history"))?;
        Ok(rows
            .iter()
            .map(|r| Holding {
                account: r.get(0),
                generation: r.get(1),
                worker: r.get(2),
                taken: r.get(3),
                ended: r.get(4),
            })
            .collect())
    }
}

fn err<'s>(store: &'s str, op: &'static str) -> impl Fn(postgres::Error) -> MetaError + 's {
    move |e| backend(store, op, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(account: &str, generation: i64, taken: i64, ended: Option<i64>) -> Holding {
        Holding {
            account: account.into(),
            generation,
            worker: format!("w{generation}"),
            taken,
            ended,
        }
    }

    #[test]
    fn holdings_one_after_another_do_not_overlap() {
        let history = [
            h("a", 1, 0, Some(10)),
            h("a", 2, 10, Some(20)),
            h("b", 1, 5, Some(30)),
            h("a", 3, 25, None),
        ];
        assert!(overlapping(&history).is_empty());
    }

    #[test]
    fn a_take_before_the_last_holding_ended_overlaps() {
        let history = [h("a", 1, 0, Some(10)), h("a", 2, 9, Some(20))];
        assert_eq!(overlapping(&history).len(), 1);
        let history = [h("a", 1, 0, None), h("a", 2, 9, None)];
        assert_eq!(overlapping(&history).len(), 1);
    }
}
