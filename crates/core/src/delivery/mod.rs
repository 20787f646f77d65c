//! Delivery of transactions to their backends (SPEC §5), from the outbox in the store.
//!
//! The worker claims due work in batches, oldest first, with a lease that it renews while it
//! works on the batch; work whose worker died is claimed again when the lease runs out, by
//! this node or another (the store holds back later uploads of a (user, service) while an
//! earlier one waits for a retry or is claimed: FIFO). Uploads are delivered one
//! after another per (user, service), the groups side by side; a failed or timed-out attempt
//! is retried with exponential backoff and jitter, and never turns into a status_0. Then the
//! answers of backends that answer on their own (heartbeat, simulated) are applied in rounds:
//! status 1 for all that were delivered, then each answer, so a transaction's statuses
//! appear in the order 1, 2, 3. Without an answer delay, all rounds of a batch are one
//! commit (the heartbeat costs one commit per batch, not three per upload); with one, each
//! round is a commit of its own. A step is conditional on the state it starts from, so
//! redoing one after a crash changes nothing, and on the worker's claim (its fencing token)
//! being current by the database's clock, so a worker that stalled past its lease changes
//! nothing either: the work's new claimant delivers it again.

mod connector;
mod heartbeat;
mod simulated;
mod spool;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use mftgw_blobs::BlobStore;
use mftgw_domain::delivery::RetryPolicy;
use mftgw_domain::{ServiceName, Transaction, TransactionState, Username};
use mftgw_store::{Advance, LeaseToken, Store, StoreError, WorkItem};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use connector::{Answer, Connector, DeliveryError, DeliveryFailure, Parcel};
pub use heartbeat::Heartbeat;
pub use simulated::{Behaviour, Simulated};
pub use spool::Spool;

use crate::telemetry;
use crate::transactions::Transactions;

const BATCH: u32 = 256;
/// How often the worker looks for work it was not told about (retries coming due, work
/// whose hint from another node was lost).
const POLL: Duration = Duration::from_millis(500);
/// How long to wait after the store failed before trying again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Which connector serves which service.
#[derive(Clone, Default)]
pub struct Backends {
    by_service: HashMap<ServiceName, Arc<dyn Connector>>,
}

impl Backends {
    /// The built-in heartbeat only.
    pub fn new() -> Self {
        let mut backends = Self::default();
        backends
            .by_service
            .insert(ServiceName::heartbeat(), Arc::new(Heartbeat));
        backends
    }

    /// Routes `service` to `connector`; `false` if the service already has one.
    pub fn add(&mut self, service: &ServiceName, connector: Arc<dyn Connector>) -> bool {
        if self.by_service.contains_key(service) {
            return false;
        }
        self.by_service.insert(service.clone(), connector);
        true
    }

    pub fn services(&self) -> Vec<ServiceName> {
        let mut services: Vec<ServiceName> = self.by_service.keys().cloned().collect();
        services.sort();
        services
    }

    /// One `Backends` per connector, each with that connector's services: every backend gets
    /// its own worker, so a slow or unreachable one holds up nobody else.
    pub fn per_connector(&self) -> Vec<Backends> {
        let mut split: Vec<Backends> = Vec::new();
        for (service, connector) in &self.by_service {
            let same = |backends: &&mut Backends| {
                backends
                    .by_service
                    .values()
                    .next()
                    .is_some_and(|other| Arc::ptr_eq(other, connector))
            };
            match split.iter_mut().find(same) {
                Some(backends) => {
                    backends
                        .by_service
                        .insert(service.clone(), Arc::clone(connector));
                }
                None => {
                    let mut backends = Backends::default();
                    backends
                        .by_service
                        .insert(service.clone(), Arc::clone(connector));
                    split.push(backends);
                }
            }
        }
        split
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    pub retry: RetryPolicy,
    /// A delivery attempt that takes longer has failed.
    pub attempt_timeout: Duration,
    /// Backends that answer on their own wait this long before each round of answers (0 in
    /// production; more shows the order of appearance, or lets tests stop the gateway
    /// between answers).
    pub answer_delay: Duration,
    /// How long a claim on work lasts; the worker renews it every third of that while it
    /// works on the batch, so only a worker that stopped loses its claims.
    pub lease: Duration,
}

pub async fn run_delivery<S: Store, B: BlobStore>(
    transactions: Arc<Transactions<S, B>>,
    backends: Backends,
    policy: DeliveryPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    let worker = Worker {
        transactions,
        backends: Arc::new(backends),
        policy,
    };
    let services = worker.backends.services();
    let mut work_ready = worker.transactions.work_signal();
    let mut announced = worker.transactions.store.work_announcements();
    // The claims of a batch the store failed under: ended once the store answers again, so
    // that their work is due at once, not when the leases run out.
    let mut failed_claims: Vec<(i64, LeaseToken)> = Vec::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = worker.transactions.now();
        if !failed_claims.is_empty() {
            match worker
                .transactions
                .store
                .renew_leases(&failed_claims, Duration::ZERO)
                .await
            {
                Ok(_) => failed_claims.clear(),
                Err(error) => {
                    tracing::warn!(%error, "ending the claims of a failed batch failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(STORE_RETRY) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
            }
        }
        let pause = match worker
            .transactions
            .store
            .claim_work(
                worker.transactions.node_id(),
                &services,
                now,
                worker.policy.lease,
                BATCH,
            )
            .await
        {
            Ok(batch) if batch.is_empty() => POLL,
            Ok(batch) => {
                let claims: Vec<(i64, LeaseToken)> = batch
                    .iter()
                    .map(|item| (item.transaction.id, item.lease))
                    .collect();
                match worker.run_claimed(batch, &claims, &mut shutdown).await {
                    Ok(true) => continue,
                    Ok(false) => POLL,
                    Err(error) => {
                        tracing::error!(%error, "recording delivery progress failed; retrying");
                        failed_claims = claims;
                        STORE_RETRY
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "reading outstanding work failed; retrying");
                STORE_RETRY
            }
        };
        tokio::select! {
            _ = work_ready.changed() => {}
            () = next_announcement(&mut announced) => {}
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Resolves when a node on the store announced work; never, where none can (or the hints
/// ended).
async fn next_announcement(announced: &mut Option<watch::Receiver<u64>>) {
    if let Some(receiver) = announced {
        if receiver.changed().await.is_ok() {
            return;
        }
        *announced = None;
    }
    std::future::pending().await
}

/// What became of a batch's deliveries.
#[derive(Default)]
struct Attempted {
    delivered: Vec<WorkItem>,
    failed: Vec<(WorkItem, DeliveryError)>,
    /// The claims of the uploads after a failure in their group, left for later.
    unattempted: Vec<(i64, LeaseToken)>,
}

struct Worker<S, B> {
    transactions: Arc<Transactions<S, B>>,
    backends: Arc<Backends>,
    policy: DeliveryPolicy,
}

impl<S: Store, B: BlobStore> Worker<S, B> {
    /// Runs a claimed batch, renewing its leases (`claims`) until it is done.
    async fn run_claimed(
        &self,
        batch: Vec<WorkItem>,
        claims: &[(i64, LeaseToken)],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, StoreError> {
        tokio::select! {
            ran = self.run_batch(batch, shutdown) => ran,
            never = self.keep_leases(claims) => match never {},
        }
    }

    /// Renews the leases of `claims` every third of the lease, for ever.
    async fn keep_leases(&self, claims: &[(i64, LeaseToken)]) -> std::convert::Infallible {
        let lease = self.policy.lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            if let Err(error) = self.transactions.store.renew_leases(claims, lease).await {
                tracing::warn!(%error, "renewing the leases of claimed work failed");
            }
        }
    }

    fn connector(&self, transaction: &Transaction) -> Option<Arc<dyn Connector>> {
        self.backends.by_service.get(&transaction.service).cloned()
    }

    /// Delivers and answers one batch; `Ok(true)` if anything moved.
    async fn run_batch(
        &self,
        batch: Vec<WorkItem>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, StoreError> {
        let (to_deliver, mut delivered): (Vec<WorkItem>, Vec<WorkItem>) = batch
            .into_iter()
            .partition(|item| item.replay || item.transaction.state == TransactionState::Received);
        let Attempted {
            delivered: newly_delivered,
            failed,
            unattempted,
        } = self.deliver_all(to_deliver).await;
        let mut moved = !newly_delivered.is_empty();
        let (replayed, newly_delivered): (Vec<WorkItem>, Vec<WorkItem>) =
            newly_delivered.into_iter().partition(|item| item.replay);
        for item in &replayed {
            self.transactions
                .store
                .complete_replay(item.transaction.id)
                .await?;
        }

        let now = self.transactions.now();
        let steps: Vec<Advance> = newly_delivered
            .iter()
            .map(|item| {
                let transaction = &item.transaction;
                let answers_itself = self
                    .connector(transaction)
                    .is_some_and(|connector| connector.answers_on_its_own());
                Advance {
                    lease: Some(item.lease),
                    ..self
                        .transactions
                        .delivered_step(transaction, now, !answers_itself)
                }
            })
            .collect();
        let answering = steps
            .iter()
            .zip(newly_delivered)
            .filter(|(step, _)| !step.finishes_work);
        delivered.extend(answering.map(|(_, mut item)| {
            item.transaction.state = TransactionState::Delivered;
            item
        }));
        // Without an answer delay, status 1 commits together with the answers that follow it.
        let status_1 = if self.policy.answer_delay.is_zero() {
            steps
        } else {
            self.transactions.advance(&steps).await?;
            Vec::new()
        };
        for (item, error) in failed {
            self.postpone(&item, &error).await?;
        }
        if !unattempted.is_empty() {
            // Free them now rather than when the lease runs out: the failure before them
            // comes due again sooner than that.
            self.transactions
                .store
                .renew_leases(&unattempted, Duration::ZERO)
                .await?;
        }
        moved |= self.answer_all(status_1, delivered, shutdown).await?;
        Ok(moved)
    }

    /// Delivers the uploads, one after another per (user, service) and the groups side by
    /// side; a group stops at its first failure.
    async fn deliver_all(&self, items: Vec<WorkItem>) -> Attempted {
        let mut groups: BTreeMap<(Username, ServiceName), Vec<WorkItem>> = BTreeMap::new();
        for item in items {
            let key = (
                item.transaction.username.clone(),
                item.transaction.service.clone(),
            );
            groups.entry(key).or_default().push(item);
        }
        let mut tasks = JoinSet::new();
        for (_, group) in groups {
            let transactions = Arc::clone(&self.transactions);
            let backends = Arc::clone(&self.backends);
            let timeout = self.policy.attempt_timeout;
            tasks.spawn(async move {
                let mut delivered = Vec::new();
                let mut group = group.into_iter();
                while let Some(item) = group.next() {
                    let connector = backends.by_service.get(&item.transaction.service);
                    let started = std::time::Instant::now();
                    let outcome = match connector {
                        Some(connector) => {
                            deliver(
                                &*transactions,
                                connector.as_ref(),
                                &item.transaction,
                                timeout,
                            )
                            .await
                        }
                        None => Err(DeliveryError::new(
                            DeliveryFailure::Gateway,
                            "no backend is configured for this service",
                        )),
                    };
                    telemetry::delivery_attempt(
                        &item.transaction.service,
                        outcome.is_ok(),
                        started.elapsed().as_secs_f64(),
                    );
                    match outcome {
                        Ok(()) => delivered.push(item),
                        Err(error) => {
                            telemetry::delivery_failed(
                                &item.transaction.service,
                                error.failure.as_str(),
                            );
                            let unattempted = group.map(|item| (item.transaction.id, item.lease));
                            return (delivered, Some((item, error)), unattempted.collect());
                        }
                    }
                }
                (delivered, None, Vec::new())
            });
        }
        let mut attempted = Attempted::default();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((delivered, failed, unattempted)) => {
                    attempted.delivered.extend(delivered);
                    attempted.failed.extend(failed);
                    attempted.unattempted.extend(unattempted);
                }
                Err(error) => tracing::error!(%error, "a delivery task failed"),
            }
        }
        attempted
    }

    /// Applies the answers of backends that answer on their own, a round at a time: with an
    /// answer delay, a commit per round; without, every round in one commit after
    /// `not_yet_applied` (this batch's status 1 steps), so a heartbeat costs one commit.
    async fn answer_all(
        &self,
        not_yet_applied: Vec<Advance>,
        mut items: Vec<WorkItem>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, StoreError> {
        let mut moved = false;
        let mut together = not_yet_applied;
        let answers: Vec<Vec<Answer>> = items
            .iter()
            .map(|item| {
                self.connector(&item.transaction)
                    .map(|connector| connector.answers(&item.transaction))
                    .unwrap_or_default()
            })
            .collect();
        // Items with nothing left to answer: work left from a backend that answered on its own
        // before the config changed (the answers now come through the backend API), or one
        // that can no longer be answered from its state. They wait, and do not come back at
        // once.
        let now = self.transactions.now();
        for (item, answers) in items.iter().zip(&answers) {
            if self
                .transactions
                .answer_step(&item.transaction, answers, now)
                .is_none()
            {
                let waiting = DeliveryError::new(
                    DeliveryFailure::Unavailable,
                    "waiting for the backend's answer",
                );
                self.postpone(item, &waiting).await?;
            }
        }
        let mut live = vec![true; items.len()];
        let next_round = |items: &[WorkItem], live: &[bool], now| -> Vec<(usize, Advance)> {
            items
                .iter()
                .zip(&answers)
                .enumerate()
                .filter(|(index, _)| live[*index])
                .filter_map(|(index, (item, answers))| {
                    self.transactions
                        .answer_step(&item.transaction, answers, now)
                        .map(|step| {
                            let lease = Some(item.lease);
                            (index, Advance { lease, ..step })
                        })
                })
                .collect()
        };
        loop {
            let mut steps = next_round(&items, &live, self.transactions.now());
            if steps.is_empty() {
                break;
            }
            if self.policy.answer_delay.is_zero() {
                // Applied below, each step conditional on the one before: if one does not
                // apply (the backend API moved the transaction meanwhile), neither do the
                // later ones.
                for (index, step) in steps {
                    items[index].transaction.state = step.to;
                    together.push(step);
                }
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(self.policy.answer_delay) => {}
                _ = shutdown.changed() => return Ok(moved),
            }
            // Dated when they appear, after the delay.
            steps = next_round(&items, &live, self.transactions.now());
            let advances: Vec<Advance> = steps.iter().map(|(_, step)| step.clone()).collect();
            let applied = self.transactions.advance(&advances).await?;
            moved = true;
            for ((index, step), applied) in steps.into_iter().zip(applied) {
                if applied {
                    items[index].transaction.state = step.to;
                } else {
                    // Someone else (the backend API) moved it meanwhile: leave it to them.
                    live[index] = false;
                }
            }
        }
        if !together.is_empty() {
            self.transactions.advance(&together).await?;
            moved = true;
        }
        Ok(moved)
    }

    async fn postpone(&self, item: &WorkItem, error: &DeliveryError) -> Result<(), StoreError> {
        let attempts = item.attempts.saturating_add(1);
        let wait = if error.failure.is_retryable() {
            let unit = f64::from(random_u32()) / (f64::from(u32::MAX) + 1.0);
            self.policy.retry.delay(attempts, unit)
        } else {
            self.policy.retry.max
        };
        tracing::warn!(
            skat_transaction_id = %item.transaction.skat_transaction_id,
            service = %item.transaction.service,
            attempts,
            retry_in_ms = wait.as_millis() as u64,
            reason = error.failure.as_str(),
            error = %error.detail,
            "delivery not done; will retry"
        );
        let now = self.transactions.now();
        let due_at = now
            .checked_add(time::Duration::try_from(wait).unwrap_or(time::Duration::DAY))
            .unwrap_or(now + time::Duration::DAY);
        let current = self
            .transactions
            .store
            .postpone_work(
                item.transaction.id,
                item.lease,
                attempts,
                due_at,
                &error.detail,
            )
            .await?;
        if !current {
            tracing::warn!(
                skat_transaction_id = %item.transaction.skat_transaction_id,
                "the claim on this delivery ran out before it failed; its new claimant decides"
            );
        }
        Ok(())
    }
}

/// One delivery attempt: the body from the blob store to the connector, within `timeout`.
async fn deliver<S: Store, B: BlobStore>(
    transactions: &Transactions<S, B>,
    connector: &dyn Connector,
    transaction: &Transaction,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let gateway = |detail: String| DeliveryError::new(DeliveryFailure::Gateway, detail);
    let body: Box<dyn tokio::io::AsyncRead + Send + Unpin> = if connector.reads_the_body() {
        let key = transaction
            .blob_key
            .as_ref()
            .ok_or_else(|| gateway("the upload's body is no longer kept".into()))?;
        transactions
            .blobs
            .open(key, 0)
            .await
            .map_err(|error| gateway(format!("reading the upload: {error}")))?
    } else {
        Box::new(tokio::io::empty())
    };
    let parcel = Parcel { transaction, body };
    tokio::time::timeout(timeout, connector.deliver(parcel))
        .await
        .unwrap_or_else(|_| {
            Err(DeliveryError::new(
                DeliveryFailure::Timeout,
                format!("no answer within {} s", timeout.as_secs()),
            ))
        })
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // Jitter only spreads retries out; a failure to get randomness just removes the spread.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}
