//! Session limits: at most N sessions in total, per client IP and per user.
//!
//! Each admitted connection holds guards; dropping a guard gives its slot back, so a session
//! that ends in any way (QUIT, error, panic in a task) never leaks a slot.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_sessions: usize,
    pub max_sessions_per_ip: usize,
    pub max_sessions_per_user: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_sessions: 20_000,
            max_sessions_per_ip: 500,
            max_sessions_per_user: 64,
        }
    }
}

/// Counts holders per key, up to a fixed maximum per key.
#[derive(Debug)]
pub struct KeyedCounter<K: Eq + Hash + Clone> {
    max_per_key: usize,
    counts: Mutex<HashMap<K, usize>>,
}

impl<K: Eq + Hash + Clone> KeyedCounter<K> {
    pub fn new(max_per_key: usize) -> Arc<Self> {
        Arc::new(KeyedCounter {
            max_per_key,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `key`, or `None` when `key` already holds the maximum.
    pub fn try_acquire(self: &Arc<Self>, key: K) -> Option<KeyedSlot<K>> {
        let mut counts = self.counts.lock().expect("limit counter lock poisoned");
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= self.max_per_key {
            return None;
        }
        *count += 1;
        Some(KeyedSlot {
            counter: Arc::clone(self),
            key,
        })
    }

    #[cfg(test)]
    fn holders(&self, key: &K) -> usize {
        let counts = self.counts.lock().expect("limit counter lock poisoned");
        counts.get(key).copied().unwrap_or(0)
    }
}

#[derive(Debug)]
pub struct KeyedSlot<K: Eq + Hash + Clone> {
    counter: Arc<KeyedCounter<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Drop for KeyedSlot<K> {
    fn drop(&mut self) {
        let mut counts = self
            .counter
            .counts
            .lock()
            .expect("limit counter lock poisoned");
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The limits of one server.
#[derive(Debug)]
pub struct Limiter {
    pub(crate) total: Arc<Semaphore>,
    pub(crate) max_sessions: usize,
    per_ip: Arc<KeyedCounter<IpAddr>>,
    per_user: Arc<KeyedCounter<String>>,
}

/// The slots a connection holds before login.
#[derive(Debug)]
pub struct ConnectionSlots {
    _total: OwnedSemaphorePermit,
    _ip: KeyedSlot<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    Total,
    PerIp,
}

impl Limiter {
    pub fn new(limits: SessionLimits) -> Limiter {
        Limiter {
            total: Arc::new(Semaphore::new(limits.max_sessions)),
            max_sessions: limits.max_sessions,
            per_ip: KeyedCounter::new(limits.max_sessions_per_ip),
            per_user: KeyedCounter::new(limits.max_sessions_per_user),
        }
    }

    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionSlots, LimitExceeded> {
        let total = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| LimitExceeded::Total)?;
        let ip = self.per_ip.try_acquire(ip).ok_or(LimitExceeded::PerIp)?;
        Ok(ConnectionSlots {
            _total: total,
            _ip: ip,
        })
    }

    pub fn admit_user(&self, username: &str) -> Option<KeyedSlot<String>> {
        self.per_user.try_acquire(username.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_returned_when_dropped() {
        let limiter = Limiter::new(SessionLimits {
            max_sessions: 3,
            max_sessions_per_ip: 2,
            max_sessions_per_user: 1,
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = limiter.admit(a).unwrap();
        let _second = limiter.admit(a).unwrap();
        assert_eq!(limiter.admit(a).unwrap_err(), LimitExceeded::PerIp);
        let _third = limiter.admit(b).unwrap();
        assert_eq!(limiter.admit(b).unwrap_err(), LimitExceeded::Total);
        drop(first);
        assert!(limiter.admit(a).is_ok());

        let user = limiter.admit_user("u").unwrap();
        assert!(limiter.admit_user("u").is_none());
        drop(user);
        assert!(limiter.admit_user("u").is_some());
        assert_eq!(limiter.per_user.holders(&"u".to_string()), 0);
    }
}
