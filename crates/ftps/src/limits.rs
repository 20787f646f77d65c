//! Connection and session limits: at most N sessions in total, per client IP and per user; a
//! smaller budget for connections that have not logged in yet; and a per-address rate of new
//! connections.
//!
//! Each admitted connection holds guards; dropping a guard gives its slot back, so a session
//! that ends in any way (QUIT, error, panic in a task) never leaks a slot.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_sessions: usize,
    pub max_sessions_per_ip: usize,
    pub max_sessions_per_user: usize,
    /// Connections that have not logged in yet, at most (they count towards `max_sessions`
    /// too): unauthenticated clients cannot take the slots of logged-in users.
    pub max_pre_login: usize,
    /// New connections one address may open.
    pub connection_rate_per_ip: ConnectionRate,
    /// Data connections at once, from `PASV`/`EPSV` to the end of the transfer (each holds a
    /// listener or a connection, and an upload a file): with the sessions, what bounds the
    /// open files.
    pub max_data_connections: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_sessions: 20_000,
            max_sessions_per_ip: 500,
            max_sessions_per_user: 64,
            max_pre_login: 5_000,
            connection_rate_per_ip: ConnectionRate::default(),
            max_data_connections: 4_000,
        }
    }
}

/// A token bucket: `burst` connections at once, refilled at `per_second`. `per_second == 0`
/// turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionRate {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for ConnectionRate {
    fn default() -> Self {
        ConnectionRate {
            per_second: 100.0,
            burst: 400.0,
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

    /// How many slots `key` holds.
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

/// What limits per client address count `address` as: an IPv4 address itself, an IPv6
/// address as its /64 (one host may hold a whole /64 and rotate through it).
pub fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// The network `address` belongs to for limits that apply per network: its /24 (IPv4) or
/// /48 (IPv6), as the network address and the prefix length.
pub fn network_prefix(address: IpAddr) -> (IpAddr, u8) {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            (IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, 0)), 24)
        }
        IpAddr::V6(v6) => {
            let [a, b, c, ..] = v6.segments();
            (
                IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0)),
                48,
            )
        }
    }
}

/// Addresses whose buckets are kept at most; past it, buckets that have refilled are
/// forgotten (they are the same as no bucket), and if none has, new addresses go unlimited
/// rather than evicting the ones being limited.
const MAX_RATE_BUCKETS: usize = 100_000;

/// A [`ConnectionRate`] per address.
#[derive(Debug)]
pub struct AddressRate {
    rate: ConnectionRate,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(self, rate: ConnectionRate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(rate.burst)
    }
}

impl AddressRate {
    pub fn new(rate: ConnectionRate) -> AddressRate {
        AddressRate {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `address` may open another connection at `now` (and takes a token if so).
    pub fn allow(&self, address: IpAddr, now: Instant) -> bool {
        let rate = self.rate;
        if rate.per_second <= 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().expect("rate lock poisoned");
        if !buckets.contains_key(&address) && buckets.len() >= MAX_RATE_BUCKETS {
            buckets.retain(|_, bucket| bucket.refilled(rate, now) < rate.burst);
            if buckets.len() >= MAX_RATE_BUCKETS {
                return true;
            }
        }
        let bucket = buckets.entry(address).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let tokens = bucket.refilled(rate, now);
        bucket.at = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            true
        } else {
            bucket.tokens = tokens;
            false
        }
    }
}

/// The limits of one server.
#[derive(Debug)]
pub struct Limiter {
    pub(crate) total: Arc<Semaphore>,
    pub(crate) max_sessions: usize,
    pre_login: Arc<Semaphore>,
    data_connections: Arc<Semaphore>,
    per_ip: Arc<KeyedCounter<IpAddr>>,
    per_user: Arc<KeyedCounter<String>>,
    rate: AddressRate,
}

/// The slots a connection holds; the pre-login one is given back at login.
#[derive(Debug)]
pub struct ConnectionSlots {
    _total: OwnedSemaphorePermit,
    _ip: KeyedSlot<IpAddr>,
    pre_login: Option<OwnedSemaphorePermit>,
}

impl ConnectionSlots {
    /// The connection has logged in: it no longer counts against the pre-login budget.
    pub fn logged_in(&mut self) {
        self.pre_login = None;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// The address opened connections faster than its rate.
    Rate,
    Total,
    PreLogin,
    PerIp,
}

impl LimitExceeded {
    /// The stable reason reported for the refused connection.
    pub fn reason(self) -> &'static str {
        match self {
            LimitExceeded::Rate => "connection_rate_exceeded",
            LimitExceeded::Total => "too_many_sessions",
            LimitExceeded::PreLogin => "too_many_connections_before_login",
            LimitExceeded::PerIp => "too_many_sessions_from_address",
        }
    }
}

impl Limiter {
    pub fn new(limits: SessionLimits) -> Limiter {
        Limiter {
            total: Arc::new(Semaphore::new(limits.max_sessions)),
            max_sessions: limits.max_sessions,
            pre_login: Arc::new(Semaphore::new(limits.max_pre_login.max(1))),
            data_connections: Arc::new(Semaphore::new(limits.max_data_connections.max(1))),
            per_ip: KeyedCounter::new(limits.max_sessions_per_ip),
            per_user: KeyedCounter::new(limits.max_sessions_per_user),
            rate: AddressRate::new(limits.connection_rate_per_ip),
        }
    }

    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionSlots, LimitExceeded> {
        let ip = client_key(ip);
        if !self.rate.allow(ip, Instant::now()) {
            return Err(LimitExceeded::Rate);
        }
        let pre_login = Arc::clone(&self.pre_login)
            .try_acquire_owned()
            .map_err(|_| LimitExceeded::PreLogin)?;
        let total = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| LimitExceeded::Total)?;
        let ip = self.per_ip.try_acquire(ip).ok_or(LimitExceeded::PerIp)?;
        Ok(ConnectionSlots {
            _total: total,
            _ip: ip,
            pre_login: Some(pre_login),
        })
    }

    pub fn admit_user(&self, username: &str) -> Option<KeyedSlot<String>> {
        self.per_user.try_acquire(username.to_string())
    }

    /// A slot for one data connection, held until its transfer ends; `None` if all are taken.
    pub fn admit_data_connection(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.data_connections).try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(max_sessions: usize, per_ip: usize, pre_login: usize) -> SessionLimits {
        SessionLimits {
            max_sessions,
            max_sessions_per_ip: per_ip,
            max_sessions_per_user: 1,
            max_pre_login: pre_login,
            connection_rate_per_ip: ConnectionRate {
                per_second: 0.0,
                burst: 0.0,
            },
            max_data_connections: 1,
        }
    }

    #[test]
    fn slots_are_returned_when_dropped() {
        let limiter = Limiter::new(limits(3, 2, 3));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = limiter.admit(a).unwrap();
        let _second = limiter.admit(a).unwrap();
        assert_eq!(limiter.admit(a).unwrap_err(), LimitExceeded::PerIp);
        let _third = limiter.admit(b).unwrap();
        assert_eq!(limiter.admit(b).unwrap_err(), LimitExceeded::PreLogin);
        drop(first);
        assert!(limiter.admit(a).is_ok());

        let user = limiter.admit_user("u").unwrap();
        assert!(limiter.admit_user("u").is_none());
        drop(user);
        assert!(limiter.admit_user("u").is_some());
        assert_eq!(limiter.per_user.holders(&"u".to_string()), 0);

        let transfer = limiter.admit_data_connection().unwrap();
        assert!(limiter.admit_data_connection().is_none());
        drop(transfer);
        assert!(limiter.admit_data_connection().is_some());
    }

    #[test]
    fn logged_in_connections_leave_the_pre_login_budget() {
        let limiter = Limiter::new(limits(4, 4, 2));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut first = limiter.admit(ip).unwrap();
        let mut second = limiter.admit(ip).unwrap();
        assert_eq!(limiter.admit(ip).unwrap_err(), LimitExceeded::PreLogin);
        first.logged_in();
        second.logged_in();
        let _third = limiter.admit(ip).unwrap();
        let _fourth = limiter.admit(ip).unwrap();
        assert_eq!(limiter.admit(ip).unwrap_err(), LimitExceeded::PreLogin);
    }

    #[test]
    fn the_connection_rate_allows_a_burst_then_refills() {
        let rate = AddressRate::new(ConnectionRate {
            per_second: 10.0,
            burst: 3.0,
        });
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let start = Instant::now();
        assert!((0..3).all(|_| rate.allow(a, start)));
        assert!(!rate.allow(a, start), "the burst is spent");
        assert!(rate.allow(b, start), "another address has its own bucket");
        assert!(!rate.allow(a, start + Duration::from_millis(50)));
        assert!(
            rate.allow(a, start + Duration::from_millis(160)),
            "one token back after 100 ms"
        );
        assert!(!rate.allow(a, start + Duration::from_millis(160)));
    }

    #[test]
    fn an_ipv6_host_counts_as_its_slash_64() {
        let key = |text: &str| client_key(text.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn networks_are_slash_24_and_slash_48() {
        let network = |text: &str| network_prefix(text.parse().unwrap());
        assert_eq!(network("192.0.2.77"), ("192.0.2.0".parse().unwrap(), 24));
        assert_eq!(
            network("2001:db8:aa:bb::1"),
            ("2001:db8:aa::".parse().unwrap(), 48)
        );
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let rate = AddressRate::new(ConnectionRate {
            per_second: 0.0,
            burst: 0.0,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..10_000).all(|_| rate.allow(ip, Instant::now())));
    }
}
