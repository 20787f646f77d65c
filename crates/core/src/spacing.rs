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

#[derive(Debug, Default)]
struct State {
    last_admitted: HashMap<(Username, ServiceName), Instant>,
    in_flight: HashSet<Username>,
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
        if let Some(last) = state.last_admitted.get(&key) {
            let next = *last + interval;
            if now < next {
                return Err(SpacingRefusal::TooSoon {
                    wait: next - now,
                    interval,
                });
            }
        }
        // Entries whose interval has passed hold nothing back: dropped now and then, so the
        // map holds at most the calls of the longest interval.
        if state.last_admitted.len() > 4096 {
            let longest = self.rules.submit.max(self.rules.receive);
            state
                .last_admitted
                .retain(|_, last| now.saturating_duration_since(*last) < longest);
        }
        state.last_admitted.insert(key, now);
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
