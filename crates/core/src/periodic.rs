//! The gateway's background loops (retention, role replication, audit sweeps, session
//! checks) share one shape: run a job every so often until shutdown. This module owns it,
//! and [`Leadership`]: which of several nodes on one store runs a round of a job that one
//! node at a time should run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mftgw_store::Maintenance;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::BoxFuture;

/// Whether this node runs a round of a job that one node at a time should run.
pub trait Leadership: Send + Sync + 'static {
    /// Whether this node leads `job` for the next `term` (renewing its lead if it had it).
    fn leads<'a>(&'a self, job: &'static str, term: Duration) -> BoxFuture<'a, bool>;
}

/// Leadership recorded in the store the nodes share, by node id.
pub struct StoreLeadership<S> {
    pub store: Arc<S>,
    pub node: String,
}

impl<S: Maintenance> Leadership for StoreLeadership<S> {
    fn leads<'a>(&'a self, job: &'static str, term: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let now = OffsetDateTime::now_utc();
            let until = now + term;
            match self.store.lead_job(job, &self.node, now, until).await {
                Ok(leads) => leads,
                Err(error) => {
                    tracing::warn!(%error, job, "cannot tell who leads the job; skipping a round");
                    false
                }
            }
        })
    }
}

/// [`every`], running a round only while this node leads `job`: a lead lasts three periods
/// and is renewed every round, so another node takes over within three periods of the
/// leader's end.
pub async fn every_led<F, Fut>(
    job_name: &'static str,
    leadership: &dyn Leadership,
    period: Duration,
    shutdown: watch::Receiver<bool>,
    mut job: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    every(period, shutdown, || {
        let round = leadership.leads(job_name, period * 3);
        let run = job();
        async move {
            if round.await {
                run.await;
            }
        }
    })
    .await;
}

/// Runs `job` every `every`, the first time at once, until `shutdown` turns true (or its
/// sender is gone). A run in progress is finished, not cancelled: the jobs commit in steps
/// that must not be cut short.
pub async fn every<F, Fut>(every: Duration, mut shutdown: watch::Receiver<bool>, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        tokio::select! {
            _ = ticker.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
                continue;
            }
        }
        job().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;

    /// Leads every other round.
    struct Alternating(AtomicBool);

    impl Leadership for Alternating {
        fn leads<'a>(&'a self, _: &'static str, _: Duration) -> BoxFuture<'a, bool> {
            let leads = !self.0.fetch_xor(true, Ordering::SeqCst);
            Box::pin(async move { leads })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_led_job_runs_only_the_rounds_this_node_leads() {
        let runs = Arc::new(AtomicU32::new(0));
        let (stop, shutdown) = watch::channel(false);
        let counted = Arc::clone(&runs);
        let task = tokio::spawn(async move {
            let leadership = Alternating(AtomicBool::new(false));
            every_led(
                "sweep",
                &leadership,
                Duration::from_secs(10),
                shutdown,
                || {
                    let counted = Arc::clone(&counted);
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                },
            )
            .await;
        });
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "at 0 and 20 s, not 10 and 30"
        );
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_once_then_every_period_until_shutdown() {
        let runs = Arc::new(AtomicU32::new(0));
        let (stop, shutdown) = watch::channel(false);
        let counted = Arc::clone(&runs);
        let task = tokio::spawn(every(Duration::from_secs(10), shutdown, move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }));
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "at 0, 10 and 20 s");
        stop.send(true).unwrap();
        task.await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "none after shutdown");
    }
}
