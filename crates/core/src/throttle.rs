//! The login throttle shared by a listener's connections (FTPS logins, portal logins): the
//! domain's [`LoginThrottle`] behind a lock, consulted for the two keys of an attempt, swept
//! of expired entries now and then.
//!
//! An attempt counts against its client's address and against an identity: the user, when
//! the certificate is that user's current one (its holder may be guessing the password),
//! else the certificate itself. Anyone can type another company's username, and an old
//! certificate a renewal replaced may still be used by a forgotten script, so failures under
//! any other certificate must never lock the user out. The address only slows failures down,
//! it never blocks: behind one address (NAT, a load balancer) are many companies, and one's
//! failures must not refuse another's correct login.
//!
//! Attempts under one identity are evaluated one at a time ([`SharedThrottle::serialize`]):
//! otherwise a burst of parallel guesses would all pass the check before the first failure
//! is recorded. Identities are striped over a fixed set of locks, so memory stays bounded.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mftgw_domain::Username;
use mftgw_domain::throttle::{LoginThrottle, ThrottleConfig, ThrottleVerdict};

/// Attempts between two sweeps of expired entries.
const PRUNE_EVERY: u64 = 1024;
/// Locks that identities are striped over; two identities sharing one merely wait for each
/// other's evaluation.
const IDENTITY_STRIPES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Blocked,
    /// Evaluate the attempt after this delay (zero: at once).
    Delay(Duration),
}

/// The keys one login attempt counts under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptKeys {
    address: String,
    identity: String,
}

impl AttemptKeys {
    /// `client`: the address the client is counted under by the adapter's limits (an IPv6
    /// client's /64); `current_holder`: the user the attempt counts against, when the
    /// presented certificate (`fingerprint`) is theirs; otherwise it counts against the
    /// certificate.
    pub fn new(
        client: IpAddr,
        fingerprint: &str,
        current_holder: Option<&Username>,
    ) -> AttemptKeys {
        AttemptKeys {
            address: format!("ip:{client}"),
            identity: match current_holder {
                Some(username) => format!("user:{username}"),
                None => format!("cert:{fingerprint}"),
            },
        }
    }
}

pub struct SharedThrottle {
    throttle: Mutex<LoginThrottle>,
    attempts: AtomicU64,
    identities: Vec<tokio::sync::Mutex<()>>,
}

impl SharedThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            throttle: Mutex::new(LoginThrottle::new(config)),
            attempts: AtomicU64::new(0),
            identities: (0..IDENTITY_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Waits until no other attempt under the same identity is being evaluated; hold the
    /// guard from [`SharedThrottle::verdict`] until [`SharedThrottle::record`].
    pub async fn serialize(&self, keys: &AttemptKeys) -> tokio::sync::MutexGuard<'_, ()> {
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&keys.identity, &mut hasher);
        let stripe = std::hash::Hasher::finish(&hasher) as usize % IDENTITY_STRIPES;
        self.identities[stripe].lock().await
    }

    /// Blocked if the identity is; else the longer delay of the two keys (a blocked address
    /// costs the longest delay).
    pub fn verdict(&self, keys: &AttemptKeys) -> Verdict {
        let now = Instant::now();
        let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
        if self
            .attempts
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            throttle.prune(now);
        }
        let identity = match throttle.check(&keys.identity, now) {
            ThrottleVerdict::Blocked { .. } => return Verdict::Blocked,
            ThrottleVerdict::Delay(delay) => delay,
            ThrottleVerdict::Allow => Duration::ZERO,
        };
        let address = match throttle.check(&keys.address, now) {
            ThrottleVerdict::Blocked { .. } => throttle.config().max_delay,
            ThrottleVerdict::Delay(delay) => delay,
            ThrottleVerdict::Allow => Duration::ZERO,
        };
        Verdict::Delay(identity.max(address))
    }

    /// The longest delay: what a blocked attempt waits before its refusal.
    pub fn max_delay(&self) -> Duration {
        self.throttle
            .lock()
            .expect("throttle lock poisoned")
            .config()
            .max_delay
    }

    /// A failure counts against both keys; a success clears the identity's failures (the
    /// address's expire with their window: one company's success says nothing of another's
    /// guesses).
    pub fn record(&self, keys: &AttemptKeys, success: bool) {
        let now = Instant::now();
        let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
        if success {
            throttle.record_success(&keys.identity, now);
        } else {
            throttle.record_failure(&keys.identity, now);
            throttle.record_failure(&keys.address, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> SharedThrottle {
        SharedThrottle::new(ThrottleConfig {
            block_after: 3,
            free_failures: 1,
            ..ThrottleConfig::default()
        })
    }

    const ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn failures_of_other_identities_behind_an_address_only_slow_it_down() {
        let throttle = throttle();
        let guesser = AttemptKeys::new(ADDRESS, "aa", Some(&"CVR_1_UID_1".parse().unwrap()));
        for _ in 0..10 {
            throttle.record(&guesser, false);
        }
        assert_eq!(throttle.verdict(&guesser), Verdict::Blocked);
        let neighbour = AttemptKeys::new(ADDRESS, "bb", Some(&"CVR_2_UID_1".parse().unwrap()));
        assert_eq!(
            throttle.verdict(&neighbour),
            Verdict::Delay(ThrottleConfig::default().max_delay),
            "the address is past its block, but only delays"
        );
    }

    #[test]
    fn a_certificate_that_is_not_the_current_one_counts_apart_from_the_user() {
        let throttle = throttle();
        let old_certificate = AttemptKeys::new(ADDRESS, "old", None);
        let current = AttemptKeys::new(ADDRESS, "new", Some(&"CVR_1_UID_1".parse().unwrap()));
        for _ in 0..10 {
            throttle.record(&old_certificate, false);
        }
        assert_eq!(throttle.verdict(&old_certificate), Verdict::Blocked);
        assert_ne!(throttle.verdict(&current), Verdict::Blocked);
        let elsewhere = AttemptKeys::new(
            "192.0.2.2".parse().unwrap(),
            "new",
            Some(&"CVR_1_UID_1".parse().unwrap()),
        );
        assert_eq!(throttle.verdict(&elsewhere), Verdict::Delay(Duration::ZERO));
    }
}
