//! What a running service hands its pulls so they behave together: a stop signal
//! checked between batches, connection slots shared per server, and a pace that
//! keeps an account under a message/byte rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Asked once (SIGTERM, SIGINT); every holder sees it. Pulls finish and commit the
/// batch in hand, then return.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Debug, Default)]
struct StopInner {
    asked: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub fn request(&self) {
        self.0.asked.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
    pub fn requested(&self) -> bool {
        self.0.asked.load(Ordering::SeqCst)
    }
    /// Returns once a stop is asked.
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }
}

/// Connection slots per server (`host:port`), shared by every account and job of
/// a process. A connection holds its slot until it is closed.
#[derive(Clone, Debug, Default)]
pub struct HostSlots(Arc<Mutex<HashMap<String, Limited>>>);

/// A host's limit and the semaphore that keeps it.
type Limited = (usize, Arc<Semaphore>);

impl HostSlots {
    /// Sets the number of slots for `host`, keeping the smaller when asked twice.
    /// Called while the service is set up, before any slot is taken: a smaller
    /// limit replaces the semaphore, which slots already taken would not see.
    pub fn limit(&self, host: &str, slots: u32) {
        let mut m = self.0.lock().expect("host slots");
        let slots = slots.max(1) as usize;
        match m.get(host) {
            Some((capacity, _)) if *capacity <= slots => {}
            _ => {
                m.insert(host.to_string(), (slots, Arc::new(Semaphore::new(slots))));
            }
        }
    }
    /// Makes `host`'s slots those a worker claims in the shared store: none until
    /// it adds the permits of the slots it claimed (`service::worker`).
    pub fn limit_shared(&self, host: &str, slots: u32) {
        let mut m = self.0.lock().expect("host slots");
        m.insert(host.to_string(), (slots.max(1) as usize, Arc::new(Semaphore::new(0))));
    }

    /// The slots of `host`, if it is limited.
    pub fn of(&self, host: &str) -> Option<Arc<Semaphore>> {
        self.0.lock().expect("host slots").get(host).map(|(_, s)| s.clone())
    }
}

/// One connection's claim on its server's slots.
pub type Slot = OwnedSemaphorePermit;

/// Keeps fetching under `messages` per second and `bytes` per second (a generic
/// cell rate: work may run one second ahead, then waits).
#[derive(Debug)]
pub struct Pace {
    messages: Option<f64>,
    bytes: Option<f64>,
    /// The time the work done so far "pays off" at the allowed rate.
    theoretical: Mutex<Instant>,
}

impl Pace {
    /// `None` when there is no limit.
    pub fn new(messages_per_second: Option<u32>, bytes_per_second: Option<u64>) -> Option<Arc<Pace>> {
        if messages_per_second.is_none() && bytes_per_second.is_none() {
            return None;
        }
        Some(Arc::new(Pace {
            messages: messages_per_second.map(|n| f64::from(n.max(1))),
            bytes: bytes_per_second.map(|n| n.max(1) as f64),
            theoretical: Mutex::new(Instant::now()),
        }))
    }

    /// Largest batch that keeps within about one second of work.
    pub fn batch_cap(&self) -> (usize, u64) {
        (
            self.messages.map_or(usize::MAX, |m| m.ceil() as usize),
            self.bytes.map_or(u64::MAX, |b| (b as u64).max(64 << 10)),
        )
    }

    /// How long to wait before fetching `messages` messages of `bytes` bytes.
    pub fn delay_for(&self, messages: u64, bytes: u64) -> Duration {
        let cost = self
            .messages
            .map_or(0.0, |m| messages as f64 / m)
            .max(self.bytes.map_or(0.0, |b| bytes as f64 / b));
        let now = Instant::now();
        let mut t = self.theoretical.lock().expect("pace");
        let start = (*t).max(now);
        *t = start + Duration::from_secs_f64(cost);
        // One second of burst allowed.
        t.saturating_duration_since(now).saturating_sub(Duration::from_secs(1))
    }

    /// Waits until fetching `messages` (`bytes`) keeps within the rate.
    pub async fn take(&self, messages: u64, bytes: u64) {
        let d = self.delay_for(messages, bytes);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// What one pull is given by its caller besides its options.
#[derive(Clone, Debug, Default)]
pub struct Control {
    pub stop: Stop,
    pub pace: Option<Arc<Pace>>,
}

impl Control {
    /// Paces a batch (no-op without a pace).
    pub async fn pace(&self, messages: u64, bytes: u64) {
        if let Some(p) = &self.pace {
            p.take(messages, bytes).await;
        }
    }
    /// Batch limits narrowed to the pace's second of work.
    pub fn narrow(&self, l: crate::remote::BatchLimits) -> crate::remote::BatchLimits {
        match &self.pace {
            None => l,
            Some(p) => {
                let (m, b) = p.batch_cap();
                crate::remote::BatchLimits {
                    max_messages: l.max_messages.min(m).max(1),
                    max_bytes: l.max_bytes.min(b),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_allows_a_second_of_burst_then_spaces_work() {
        let p = Pace::new(Some(10), None).unwrap();
        assert_eq!(p.delay_for(10, 0), Duration::ZERO, "the first second is free");
        let d = p.delay_for(10, 0);
        assert!(d > Duration::from_millis(900) && d <= Duration::from_secs(1), "{d:?}");
        let by_bytes = Pace::new(None, Some(1000)).unwrap();
        assert_eq!(by_bytes.delay_for(1, 1000), Duration::ZERO);
        let d = by_bytes.delay_for(1, 3000);
        assert!(d > Duration::from_millis(2900), "{d:?}");
        assert_eq!(p.batch_cap().0, 10);
        assert!(Pace::new(None, None).is_none());
    }

    #[test]
    fn host_slots_keep_the_smallest_limit() {
        let h = HostSlots::default();
        h.limit("a:993", 4);
        h.limit("a:993", 2);
        h.limit("a:993", 9);
        assert_eq!(h.of("a:993").unwrap().available_permits(), 2);
        // A slot taken does not make a larger limit look smaller.
        let taken = h.of("a:993").unwrap().try_acquire_owned().unwrap();
        h.limit("a:993", 3);
        drop(taken);
        assert_eq!(h.of("a:993").unwrap().available_permits(), 2);
        assert!(h.of("b:993").is_none());
    }

    #[tokio::test]
    async fn stop_wakes_waiters_and_stays_asked() {
        let s = Stop::default();
        let w = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        tokio::task::yield_now().await;
        s.request();
        tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap();
        assert!(s.requested());
        s.wait().await;
    }
}
