//! Accounts leased to workers in a real PostgreSQL 15 (started by the harness):
//! one holder at a time, taken over when the holder's claim lapses, the stale
//! holder fenced off, and — with three workers competing, stalling and giving
//! leases back for seconds — no account ever held twice at once, checked from
//! the database's lease history.

mod common;

use std::time::{Duration, Instant};

use common::postgres::Postgres;
use mailvault::metastore::leases::{overlapping, Lease, Leases};

fn store() -> String {
    let pg = Postgres::shared();
    pg.url_with_password(&pg.database())
}

fn accounts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("job/account{i:02}")).collect()
}

#[test]
fn a_lease_is_one_workers_until_given_back_or_lapsed() {
    let url = store();
    let w1 = Leases::open(&url, true, "w1").unwrap();
    let w2 = Leases::open(&url, true, "w2").unwrap();
    w1.offer(&accounts(2)).unwrap();
    w2.offer(&accounts(2)).unwrap(); // offering twice changes nothing
    let long = Duration::from_secs(30);

    let a = w1.take(1, long).unwrap();
    assert_eq!(
        a,
        [Lease {
            account: "job/account00".into(),
            generation: 1
        }]
    );
    let b = w2.take(5, long).unwrap();
    assert_eq!(
        b,
        [Lease {
            account: "job/account01".into(),
            generation: 1
        }]
    );
    assert!(w2.take(5, long).unwrap().is_empty(), "both are held");
    assert!(!w2.release(&a[0], "done").unwrap(), "not w2's to give back");
    assert!(w1.release(&a[0], "done").unwrap());
    let a2 = w2.take(5, long).unwrap();
    assert_eq!(
        a2,
        [Lease {
            account: "job/account00".into(),
            generation: 2
        }]
    );

    // w2 stops renewing: once its claim lapses, w1 takes both over, and w2's
    // tokens are stale — its renewal keeps nothing, its checks fail.
    let held: Vec<Lease> = b.iter().chain(&a2).cloned().collect();
    assert_eq!(w2.renew(&held, &[], Duration::from_millis(200)).unwrap(), held);
    assert!(w1.take(5, long).unwrap().is_empty(), "not lapsed yet");
    std::thread::sleep(Duration::from_millis(400));
    let over = w1.take(5, long).unwrap();
    assert_eq!(
        over,
        [
            Lease {
                account: "job/account00".into(),
                generation: 3
            },
            Lease {
                account: "job/account01".into(),
                generation: 2
            },
        ]
    );
    assert!(w2.renew(&held, &[], long).unwrap().is_empty());
    for l in &held {
        assert!(!w2.holds(l).unwrap());
        assert!(!w2.release(l, "done").unwrap());
    }
    assert!(over.iter().all(|l| w1.holds(l).unwrap()));

    let states = w1.states().unwrap();
    assert!(states.iter().all(|s| s.worker.as_deref() == Some("w1")), "{states:?}");
    assert!(
        states.iter().all(|s| s.expires_in_us.unwrap() > 20_000_000),
        "{states:?}"
    );
    let history = w1.history().unwrap();
    assert_eq!(history.len(), 5, "{history:#?}");
    assert!(overlapping(&history).is_empty(), "{history:#?}");
    // A lapsed holding ended at its expiry, before the takeover began.
    let lapsed = history
        .iter()
        .find(|h| h.account == "job/account00" && h.generation == 2)
        .unwrap();
    let next = history
        .iter()
        .find(|h| h.account == "job/account00" && h.generation == 3)
        .unwrap();
    assert!(lapsed.ended.unwrap() <= next.taken, "{history:#?}");
}

/// A small deterministic generator (xorshift), one per worker thread.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn three_workers_competing_never_hold_an_account_at_once() {
    let url = store();
    let all = accounts(60);
    Leases::open(&url, true, "setup").unwrap().offer(&all).unwrap();
    let ttl = Duration::from_millis(300);
    let deadline = Instant::now() + Duration::from_secs(4);
    let workers: Vec<_> = (0..3u64)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let me = Leases::open(&url, true, &format!("w{w}")).unwrap();
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w + 1));
                let (mut runs, mut lost) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let held = me.take(1 + rng.below(8) as usize, ttl).unwrap();
                    if held.is_empty() {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    // "Work": a few ms, a heartbeat, the fencing check.
                    std::thread::sleep(Duration::from_millis(rng.below(20)));
                    let kept = me.renew(&held, &[], ttl).unwrap();
                    assert_eq!(kept, held, "renewed within the ttl, nothing is lost");
                    for l in &kept {
                        assert!(me.holds(l).unwrap());
                    }
                    if rng.below(5) == 0 {
                        // A stall past the expiry (a worker paused or cut off):
                        // the others take over; this one must find out.
                        std::thread::sleep(ttl + Duration::from_millis(150));
                        let still = me.renew(&kept, &[], ttl).unwrap();
                        lost += (kept.len() - still.len()) as u64;
                        for l in &still {
                            me.release(l, "done").unwrap();
                        }
                    } else {
                        for l in &kept {
                            assert!(me.release(l, "done").unwrap());
                        }
                    }
                    runs += kept.len() as u64;
                }
                (runs, lost)
            })
        })
        .collect();
    let results: Vec<(u64, u64)> = workers.into_iter().map(|t| t.join().unwrap()).collect();
    let me = Leases::open(&url, true, "check").unwrap();
    let history = me.history().unwrap();
    eprintln!(
        "runs and leases lost per worker: {results:?}; {} holdings",
        history.len()
    );
    assert!(overlapping(&history).is_empty(), "{:#?}", overlapping(&history));
    for a in &all {
        assert!(history.iter().any(|h| &h.account == a), "{a} was never leased");
    }
    assert!(results.iter().all(|(runs, _)| *runs > 0), "{results:?}");
    let taken_over = results.iter().map(|(_, lost)| lost).sum::<u64>();
    assert!(taken_over > 0, "no stall was ever taken over: {results:?}");
}

#[test]
fn connection_slots_are_counted_across_workers_and_lapse_with_a_dead_one() {
    let url = store();
    let w1 = Leases::open(&url, true, "w1").unwrap();
    let w2 = Leases::open(&url, true, "w2").unwrap();
    let host = "imap.example:993";
    w1.offer_slots(host, 3).unwrap();
    w2.offer_slots(host, 3).unwrap(); // offering again changes nothing
    let short = Duration::from_millis(400);
    let long = Duration::from_secs(30);
    let mine = w1.take_slots(host, 2, short).unwrap();
    assert_eq!(mine.numbers.len(), 2);
    let theirs = w2.take_slots(host, 5, long).unwrap();
    assert_eq!(theirs.numbers.len(), 1, "only 3 slots in all");
    assert!(w2.take_slots(host, 1, long).unwrap().numbers.is_empty());

    // w1 dies; a new process under the same name heartbeats (holding no slots of
    // its own): its predecessor's slots still lapse.
    drop(w1);
    let again = Leases::open(&url, true, "w1").unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut taken = Vec::new();
    while taken.len() < 2 && Instant::now() < deadline {
        again.renew(&[], &[], long).unwrap();
        taken.extend(w2.take_slots(host, 2, long).unwrap().numbers);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(taken.len(), 2, "the dead worker's slots lapsed");
    // Given back, a slot is free at once.
    w2.release_slots(&theirs).unwrap();
    assert_eq!(again.take_slots(host, 3, long).unwrap().numbers, theirs.numbers);
}
