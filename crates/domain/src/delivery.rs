//! Delivery retries (SPEC §5): how long the outbox waits before trying a backend again.
//! Exponential backoff from `first`, capped at `max`, with jitter so that many transactions
//! waiting on one backend do not all retry in the same instant.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt (1 for the first failure). `unit` is
    /// a random number in `[0, 1)`: the wait is drawn from the upper half of the backoff,
    /// so it never drops below half of it (equal jitter).
    pub fn delay(&self, attempts: u32, unit: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        let backoff = self
            .first
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max);
        let unit = unit.clamp(0.0, 1.0);
        backoff.mul_f64(0.5 + unit / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let policy = RetryPolicy {
            first: Duration::from_millis(500),
            max: Duration::from_secs(60),
        };
        assert_eq!(
            policy.delay(1, 0.999_999),
            Duration::from_millis(500).mul_f64(0.999_999_5)
        );
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(250));
        assert_eq!(policy.delay(2, 0.0), Duration::from_millis(500));
        assert_eq!(policy.delay(3, 0.0), Duration::from_secs(1));
        assert_eq!(policy.delay(8, 0.0), Duration::from_secs(30));
        assert_eq!(
            policy.delay(9, 0.0),
            Duration::from_secs(30),
            "capped at 60 s before jitter"
        );
        assert_eq!(policy.delay(u32::MAX, 0.0), Duration::from_secs(30));
        assert!(policy.delay(u32::MAX, 1.0) <= Duration::from_secs(60));
    }
}
