//! Sign-in throttling (governor's GCRA limiter, keyed): each user name may try 5
//! passwords at once and then one every 12 seconds; each client address 20 and
//! then one every 3 seconds. A refused try is answered 429 with how long to wait,
//! before any password is hashed (so guessing costs the guesser time, not the
//! server CPU). Both tables forget keys that have recovered, so they stay small.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Tries one user name may make in a burst, and how often another comes back.
pub const PER_NAME: (u32, Duration) = (5, Duration::from_secs(12));
/// Tries one client address may make in a burst, and how often another comes back.
pub const PER_ADDRESS: (u32, Duration) = (20, Duration::from_secs(3));

fn quota((burst, every): (u32, Duration)) -> Quota {
    Quota::with_period(every)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"))
}

pub struct SignInThrottle {
    names: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        SignInThrottle {
            names: RateLimiter::keyed(quota(PER_NAME)),
            addresses: RateLimiter::keyed(quota(PER_ADDRESS)),
            clock: DefaultClock::default(),
        }
    }
}

impl SignInThrottle {
    /// Whether `name` may try a password from `from` now; if not, how long to wait.
    pub fn check(&self, name: &str, from: IpAddr) -> Result<(), Duration> {
        let now = self.clock.now();
        if self.addresses.len() > 10_000 || self.names.len() > 10_000 {
            self.addresses.retain_recent();
            self.names.retain_recent();
        }
        self.addresses.check_key(&from).map_err(|n| n.wait_time_from(now))?;
        self.names
            .check_key(&name.to_lowercase())
            .map_err(|n| n.wait_time_from(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_refused_after_its_burst_and_others_are_not() {
        let t = SignInThrottle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..PER_NAME.0 {
            assert!(t.check("ann", ip).is_ok());
        }
        let wait = t.check("ANN", ip).expect_err("the sixth try in a row");
        assert!(wait > Duration::ZERO && wait <= PER_NAME.1, "{wait:?}");
        assert!(t.check("bo", ip).is_ok(), "another name is not held back");
    }

    #[test]
    fn an_address_is_refused_after_its_burst_whatever_the_names() {
        let t = SignInThrottle::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        for i in 0..PER_ADDRESS.0 {
            assert!(t.check(&format!("user{i}"), ip).is_ok());
        }
        assert!(t.check("someone-else", ip).is_err());
        assert!(t.check("someone-else", "10.0.0.10".parse().unwrap()).is_ok());
    }
}
