//! Call spacing for the web services whose terms of use limit how often a caller may call
//! (seed 004: submitting services at least 3 s apart, receiving services at least 300 s
//! apart, and no concurrent calls). The rule, chosen to protect the backend without punishing
//! a caller for the gateway's own refusals:
//!
//! - The interval counts per caller **and service**: after a call to a service is admitted,
//!   the same caller's next call to that service is admitted once its kind's interval has
//!   passed. Calls to other services are not held back (the backend's load per service is
//!   what the interval protects).
//! - A refused call does not count: it never reached the backend, so it does not restart the
//!   interval.
//! - A caller has at most one call in flight, whatever the service: a second one while the
//!   first is being answered is refused.
//!
//! State is per node; with several nodes each keeps its own (documented for issue 15).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mftgw_domain::{ServiceName, Username};

/// How a service is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Submit,
    Receive,
}

/// The intervals, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpacingRules {
    pub submit: Duration,
    pub receive: Duration,
}

impl SpacingRules {
    fn interval(&self, kind: CallKind) -> Duration {
        match kind {
            CallKind::Submit => self.submit,
            CallKind::Receive => self.receive,
        }
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpacingRefusal {
    #[error("this service may be called again in {} s (at most once every {} s per caller)", .wait.as_secs().max(1), .interval.as_secs())]
    TooSoon { wait: Duration, interval: Duration },
    #[error("another call of this caller is still being answered; calls may not overlap")]
    Concurrent,
}

/// Admitted calls kept before the first sweep of those whose interval has passed.
const FIRST_SWEEP_AT: usize = 4096;

#[derive(Debug)]
struct State {
    /// Until when each caller's next call of a service is held back.
    held_until: HashMap<(Username, ServiceName), Instant>,
    in_flight: HashSet<Username>,
    /// The size of `held_until` at which it is swept next: twice what a sweep left, so
    /// sweeping costs O(1) per call however many callers stay within their interval.
    sweep_at: usize,
}

impl Default for State {
    fn default() -> Self {
        Self {
            held_until: HashMap::new(),
            in_flight: HashSet::new(),
            sweep_at: FIRST_SWEEP_AT,
        }
    }
}

/// The spacing of every caller's calls on this node.
#[derive(Debug, Clone)]
pub struct CallSpacing {
    rules: SpacingRules,
    state: Arc<Mutex<State>>,
}

/// An admitted call; dropping it ends the call (the next may begin).
#[derive(Debug)]
pub struct AdmittedCall {
    caller: Username,
    state: Arc<Mutex<State>>,
}

impl Drop for AdmittedCall {
    fn drop(&mut self) {
        lock(&self.state).in_flight.remove(&self.caller);
    }
}

impl CallSpacing {
    pub fn new(rules: SpacingRules) -> Self {
        Self {
            rules,
            state: Arc::default(),
        }
    }

    /// Admits `caller`'s call of `service` (of `kind`) at `now`, or says why not.
    pub fn admit(
        &self,
        caller: &Username,
        service: &ServiceName,
        kind: CallKind,
        now: Instant,
    ) -> Result<AdmittedCall, SpacingRefusal> {
        let interval = self.rules.interval(kind);
        let mut state = lock(&self.state);
        if state.in_flight.contains(caller) {
            return Err(SpacingRefusal::Concurrent);
        }
        let key = (caller.clone(), service.clone());
        if let Some(&until) = state.held_until.get(&key)
            && now < until
        {
            return Err(SpacingRefusal::TooSoon {
                wait: until - now,
                interval,
            });
        }
        // Entries whose interval has passed hold nothing back.
        if state.held_until.len() >= state.sweep_at {
            state.held_until.retain(|_, until| now < *until);
            state.sweep_at = FIRST_SWEEP_AT.max(2 * state.held_until.len());
        }
        state.held_until.insert(key, now + interval);
        state.in_flight.insert(caller.clone());
        Ok(AdmittedCall {
            caller: caller.clone(),
            state: Arc::clone(&self.state),
        })
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn spacing() -> CallSpacing {
        CallSpacing::new(SpacingRules {
            submit: 3 * SECOND,
            receive: 300 * SECOND,
        })
    }

    fn user(name: &str) -> Username {
        name.parse().unwrap()
    }

    fn service(name: &str) -> ServiceName {
        name.parse().unwrap()
    }

    #[test]
    fn a_service_is_called_again_only_after_its_interval() {
        let spacing = spacing();
        let (caller, submit) = (user("CVR_1_UI_1"), service("OIOLedsageDokumentOpret"));
        let start = Instant::now();
        drop(
            spacing
                .admit(&caller, &submit, CallKind::Submit, start)
                .unwrap(),
        );
        assert_eq!(
            spacing
                .admit(&caller, &submit, CallKind::Submit, start + SECOND)
                .unwrap_err(),
            SpacingRefusal::TooSoon {
                wait: 2 * SECOND,
                interval: 3 * SECOND
            }
        );
        // The refusal did not restart the interval.
        drop(
            spacing
                .admit(&caller, &submit, CallKind::Submit, start + 3 * SECOND)
                .unwrap(),
        );

        let receive = service("OIOKvitteringSamlingHent");
        drop(
            spacing
                .admit(&caller, &receive, CallKind::Receive, start)
                .unwrap(),
        );
        assert!(matches!(
            spacing.admit(&caller, &receive, CallKind::Receive, start + 299 * SECOND),
            Err(SpacingRefusal::TooSoon { .. })
        ));
        drop(
            spacing
                .admit(&caller, &receive, CallKind::Receive, start + 300 * SECOND)
                .unwrap(),
        );
    }

    #[test]
    fn other_services_and_other_callers_are_not_held_back() {
        let spacing = spacing();
        let start = Instant::now();
        let (one, other) = (user("CVR_1_UI_1"), user("CVR_2_UI_2"));
        let submit = service("OIOLedsageDokumentOpret");
        drop(
            spacing
                .admit(&one, &submit, CallKind::Submit, start)
                .unwrap(),
        );
        drop(
            spacing
                .admit(
                    &one,
                    &service("OIOKvitteringOpret"),
                    CallKind::Submit,
                    start,
                )
                .unwrap(),
        );
        drop(
            spacing
                .admit(&other, &submit, CallKind::Submit, start)
                .unwrap(),
        );
    }

    #[test]
    fn calls_past_their_interval_are_forgotten_and_recent_ones_kept() {
        let spacing = spacing();
        let start = Instant::now();
        let submit = service("OIOLedsageDokumentOpret");
        for n in 0..FIRST_SWEEP_AT {
            drop(
                spacing
                    .admit(
                        &user(&format!("CVR_{n}_UI_1")),
                        &submit,
                        CallKind::Submit,
                        start,
                    )
                    .unwrap(),
            );
        }
        // The next admission sweeps the calls whose interval has passed, and counts itself.
        let (recent, receive) = (user("CVR_recent_UI_1"), service("OIOKvitteringSamlingHent"));
        let later = start + 10 * SECOND;
        drop(
            spacing
                .admit(&recent, &receive, CallKind::Receive, later)
                .unwrap(),
        );
        assert_eq!(lock(&spacing.state).held_until.len(), 1);
        assert!(matches!(
            spacing.admit(&recent, &receive, CallKind::Receive, later + SECOND),
            Err(SpacingRefusal::TooSoon { .. })
        ));
    }

    #[test]
    fn a_caller_has_one_call_in_flight() {
        let spacing = spacing();
        let start = Instant::now();
        let caller = user("CVR_1_UI_1");
        let first = spacing
            .admit(
                &caller,
                &service("OIOLedsageDokumentOpret"),
                CallKind::Submit,
                start,
            )
            .unwrap();
        let second = service("OIOKvitteringSamlingHent");
        assert_eq!(
            spacing
                .admit(&caller, &second, CallKind::Receive, start)
                .unwrap_err(),
            SpacingRefusal::Concurrent
        );
        drop(first);
        drop(
            spacing
                .admit(&caller, &second, CallKind::Receive, start)
                .unwrap(),
        );
    }
}
