//! The login throttle shared by a listener's connections (FTPS logins, portal logins): the
//! domain's [`LoginThrottle`] behind a lock, consulted for several keys at once (the client's
//! address and the identity it claims), swept of expired entries now and then.
//!
//! Attempts under one identity are evaluated one at a time ([`SharedThrottle::serialize`]):
//! otherwise a burst of parallel guesses would all pass the check before the first failure
//! is recorded. Identities are striped over a fixed set of locks, so memory stays bounded.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

    /// Waits until no other attempt under `identity_key` is being evaluated; hold the guard
    /// from [`SharedThrottle::verdict`] until [`SharedThrottle::record`].
    pub async fn serialize(&self, identity_key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(identity_key, &mut hasher);
        let stripe = std::hash::Hasher::finish(&hasher) as usize % IDENTITY_STRIPES;
        self.identities[stripe].lock().await
    }

    /// Blocked if any key is; else the longest delay of the keys.
    pub fn verdict(&self, keys: &[&str]) -> Verdict {
        let now = Instant::now();
        let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
        if self
            .attempts
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            throttle.prune(now);
        }
        let mut delay = Duration::ZERO;
        for key in keys {
            match throttle.check(key, now) {
                ThrottleVerdict::Blocked { .. } => return Verdict::Blocked,
                ThrottleVerdict::Delay(d) => delay = delay.max(d),
                ThrottleVerdict::Allow => {}
            }
        }
        Verdict::Delay(delay)
    }

    pub fn record(&self, keys: &[&str], success: bool) {
        let now = Instant::now();
        let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
        for key in keys {
            if success {
                throttle.record_success(key, now);
            } else {
                throttle.record_failure(key, now);
            }
        }
    }
}
