//! Throttling of failed logins, per key (callers use `ip:<addr>` and `user:<name>`).
//!
//! Failures are counted in a window that opens at a key's first failure and lasts
//! `window`; after it counting starts afresh. Past `free_failures` each further attempt is
//! delayed a little longer; at `block_after` failures the key is blocked for `block_for`.
//! The clock is passed in, so the policy is testable without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    pub window: Duration,
    /// Failures within the window that cost nothing.
    pub free_failures: u32,
    /// Delay added per failure beyond the free ones, up to `max_delay`.
    pub delay_per_failure: Duration,
    pub max_delay: Duration,
    /// Failures within the window that block the key.
    pub block_after: u32,
    pub block_for: Duration,
    /// Keys tracked at most; beyond it the least recently failed are forgotten, so a flood
    /// of addresses cannot exhaust memory.
    pub max_tracked_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10 * 60),
            free_failures: 3,
            delay_per_failure: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            block_after: 10,
            block_for: Duration::from_secs(15 * 60),
            max_tracked_keys: 100_000,
        }
    }
}

/// What to do with a login attempt for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleVerdict {
    Allow,
    /// Evaluate the attempt only after this delay.
    Delay(Duration),
    /// Refuse without evaluating the attempt.
    Blocked {
        until: Instant,
    },
}

#[derive(Debug, Clone)]
struct FailureRecord {
    window_start: Instant,
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

impl FailureRecord {
    fn window_expired(&self, config: &ThrottleConfig, now: Instant) -> bool {
        now.saturating_duration_since(self.window_start) >= config.window
    }

    fn blocked_at(&self, now: Instant) -> Option<Instant> {
        self.blocked_until.filter(|&until| until > now)
    }

    fn is_stale(&self, config: &ThrottleConfig, now: Instant) -> bool {
        self.blocked_at(now).is_none() && self.window_expired(config, now)
    }
}

/// Failed-login bookkeeping for all keys. Not synchronised: callers share it behind a mutex.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    records: HashMap<String, FailureRecord>,
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            records: HashMap::new(),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// The verdict for an attempt under `key` at `now`.
    pub fn check(&self, key: &str, now: Instant) -> ThrottleVerdict {
        let Some(record) = self.records.get(key) else {
            return ThrottleVerdict::Allow;
        };
        if let Some(until) = record.blocked_at(now) {
            return ThrottleVerdict::Blocked { until };
        }
        if record.window_expired(&self.config, now) || record.failures <= self.config.free_failures
        {
            return ThrottleVerdict::Allow;
        }
        let charged_failures = record.failures - self.config.free_failures;
        let delay = self
            .config
            .delay_per_failure
            .saturating_mul(charged_failures);
        ThrottleVerdict::Delay(delay.min(self.config.max_delay))
    }

    pub fn record_failure(&mut self, key: &str, now: Instant) {
        if !self.records.contains_key(key) && self.records.len() >= self.config.max_tracked_keys {
            self.make_room(now);
        }
        let config = &self.config;
        let record = self
            .records
            .entry(key.to_owned())
            .or_insert_with(|| FailureRecord {
                window_start: now,
                failures: 0,
                last_failure: now,
                blocked_until: None,
            });
        if record.is_stale(config, now) {
            // The block or the window is over: this failure opens a new window.
            record.window_start = now;
            record.failures = 0;
            record.blocked_until = None;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        if record.failures >= config.block_after && record.blocked_until.is_none() {
            record.blocked_until = Some(now + config.block_for);
        }
    }

    /// A successful login forgets the key's failures. `now` is not needed for that; it is
    /// taken so that all three calls read alike at the call site.
    pub fn record_success(&mut self, key: &str, _now: Instant) {
        self.records.remove(key);
    }

    /// Forgets keys whose window and block are both over.
    pub fn prune(&mut self, now: Instant) {
        let config = &self.config;
        self.records
            .retain(|_, record| !record.is_stale(config, now));
    }

    pub fn tracked_keys(&self) -> usize {
        self.records.len()
    }

    /// Prunes, and if the table is still full forgets the least recently failed eighth of it
    /// at once, so that a flood of new keys costs one scan per many insertions, not per key.
    fn make_room(&mut self, now: Instant) {
        self.prune(now);
        if self.records.len() < self.config.max_tracked_keys {
            return;
        }
        let evict_count = (self.records.len() / 8).max(1);
        let mut last_failures: Vec<Instant> = self
            .records
            .values()
            .map(|record| record.last_failure)
            .collect();
        let (_, &mut cutoff, _) = last_failures.select_nth_unstable(evict_count - 1);
        self.records
            .retain(|_, record| record.last_failure > cutoff);
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(ThrottleConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ip:192.0.2.7";

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn fail_times(throttle: &mut LoginThrottle, key: &str, times: u32, now: Instant) {
        for _ in 0..times {
            throttle.record_failure(key, now);
        }
    }

    #[test]
    fn delay_grows_linearly_after_the_free_failures_and_is_capped() {
        let start = Instant::now();
        let mut throttle = LoginThrottle::default();
        let expected = [
            ThrottleVerdict::Allow,          // 0 failures
            ThrottleVerdict::Allow,          // 1
            ThrottleVerdict::Allow,          // 2
            ThrottleVerdict::Allow,          // 3: the last free one
            ThrottleVerdict::Delay(secs(1)), // 4
            ThrottleVerdict::Delay(secs(2)),
            ThrottleVerdict::Delay(secs(3)),
            ThrottleVerdict::Delay(secs(4)),
            ThrottleVerdict::Delay(secs(5)), // 8
            ThrottleVerdict::Delay(secs(5)), // 9: capped at max_delay
        ];
        for (failures, verdict) in expected.into_iter().enumerate() {
            assert_eq!(
                throttle.check(KEY, start),
                verdict,
                "after {failures} failures"
            );
            throttle.record_failure(KEY, start);
        }
        assert_eq!(
            throttle.check(KEY, start),
            ThrottleVerdict::Blocked {
                until: start + secs(15 * 60)
            },
            "after 10 failures"
        );
    }

    #[test]
    fn block_lasts_block_for_then_starts_afresh() {
        let start = Instant::now();
        let mut throttle = LoginThrottle::default();
        fail_times(&mut throttle, KEY, 10, start);
        let until = start + secs(15 * 60);
        assert_eq!(
            throttle.check(KEY, until - secs(1)),
            ThrottleVerdict::Blocked { until }
        );
        // Failures during a block do not extend it.
        throttle.record_failure(KEY, until - secs(1));
        assert_eq!(
            throttle.check(KEY, until - secs(1)),
            ThrottleVerdict::Blocked { until }
        );
        assert_eq!(throttle.check(KEY, until), ThrottleVerdict::Allow);
        throttle.record_failure(KEY, until);
        assert_eq!(
            throttle.check(KEY, until),
            ThrottleVerdict::Allow,
            "one failure in a new window"
        );
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let start = Instant::now();
        let mut throttle = LoginThrottle::default();
        fail_times(&mut throttle, KEY, 5, start);
        assert_eq!(
            throttle.check(KEY, start + secs(599)),
            ThrottleVerdict::Delay(secs(2))
        );
        assert_eq!(
            throttle.check(KEY, start + secs(600)),
            ThrottleVerdict::Allow
        );
        fail_times(&mut throttle, KEY, 4, start + secs(600));
        assert_eq!(
            throttle.check(KEY, start + secs(600)),
            ThrottleVerdict::Delay(secs(1))
        );
    }

    #[test]
    fn success_clears_the_key_only() {
        let now = Instant::now();
        let mut throttle = LoginThrottle::default();
        fail_times(&mut throttle, KEY, 6, now);
        fail_times(&mut throttle, "user:CVR_1_UID_1", 6, now);
        throttle.record_success(KEY, now);
        assert_eq!(throttle.check(KEY, now), ThrottleVerdict::Allow);
        assert_eq!(
            throttle.check("user:CVR_1_UID_1", now),
            ThrottleVerdict::Delay(secs(3))
        );
    }

    #[test]
    fn prune_drops_only_stale_keys() {
        let start = Instant::now();
        let mut throttle = LoginThrottle::default();
        throttle.record_failure("ip:a", start);
        fail_times(&mut throttle, "ip:blocked", 10, start);
        throttle.record_failure("ip:recent", start + secs(500));
        throttle.prune(start + secs(600));
        assert_eq!(throttle.tracked_keys(), 2);
        assert_eq!(
            throttle.check("ip:a", start + secs(600)),
            ThrottleVerdict::Allow
        );
        assert!(matches!(
            throttle.check("ip:blocked", start + secs(600)),
            ThrottleVerdict::Blocked { .. }
        ));
        throttle.prune(start + secs(15 * 60));
        assert_eq!(
            throttle.tracked_keys(),
            1,
            "ip:recent's window lasts until 1100 s"
        );
        throttle.prune(start + secs(1100));
        assert_eq!(throttle.tracked_keys(), 0);
    }

    #[test]
    fn memory_is_bounded_by_evicting_the_least_recently_failed() {
        let start = Instant::now();
        let mut throttle = LoginThrottle::new(ThrottleConfig {
            max_tracked_keys: 16,
            ..ThrottleConfig::default()
        });
        fail_times(&mut throttle, "ip:oldest", 10, start);
        for n in 0..100u64 {
            throttle.record_failure(&format!("ip:flood-{n}"), start + secs(n + 1));
            assert!(throttle.tracked_keys() <= 16);
        }
        assert_eq!(
            throttle.check("ip:oldest", start + secs(200)),
            ThrottleVerdict::Allow
        );
        throttle.record_failure("ip:flood-99", start + secs(200));
        assert_eq!(
            throttle.check("ip:flood-99", start + secs(200)),
            ThrottleVerdict::Allow,
            "two failures"
        );
    }
}
