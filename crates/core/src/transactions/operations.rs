//! What operators see of transactions and do to them: the outstanding deliveries, recent
//! transactions, the audit log, the store's counts and health; making a waiting delivery due now, replaying
//! one its backend lost (each audited under `admin.*`); and, before serving, the sweep of
//! blobs no transaction refers to.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use mftgw_blobs::BlobStore;
use mftgw_domain::status::StatusCode;
use mftgw_domain::{AuditEvent, BlobKey, SkatTransactionId, Transaction, Username};
use mftgw_store::{
    AuditLog, AuditQuery, Counts, Maintenance, Store, StoreResult, TransactionLog, WorkItem,
};
use time::OffsetDateTime;

use super::{Transactions, WorkSignal};
use crate::audit::Auditor;
use crate::clock::Clock;
use crate::users::AdminError;

/// The operators' view of transactions. It needs the store alone, so that the admin CLI can
/// act beside a running gateway (which owns the blob store); actions taken in the gateway's
/// own process wake its delivery workers.
pub struct Operations<S> {
    store: Arc<S>,
    auditor: Arc<Auditor>,
    work_ready: WorkSignal,
    clock: Clock,
}

impl<S: Store, B: BlobStore> Transactions<S, B> {
    /// The operators' view of these transactions, auditing with `auditor`.
    pub fn operations(&self, auditor: Arc<Auditor>) -> Operations<S> {
        Operations {
            store: Arc::clone(&self.store),
            auditor,
            work_ready: self.work_ready.clone(),
            clock: self.clock,
        }
    }

    /// Ends the claims on work that this node's previous run held (it stopped, or was
    /// killed, with deliveries in flight): they are due again at once, not when their leases
    /// run out. To be run before this node's delivery workers start; returns how many.
    pub async fn release_own_claims(&self) -> StoreResult<u64> {
        self.store.release_claims(self.node_id()).await
    }

    /// Deletes blobs finished before `finished_before` that nothing refers to: bodies
    /// finished by an upload whose transaction was never committed (a crash between the
    /// two), or whose deletion failed. `finished_before` must precede every upload still in
    /// flight (before serving: now); returns how many it deleted.
    pub async fn sweep_unreferenced_blobs(
        &self,
        finished_before: SystemTime,
    ) -> anyhow::Result<usize> {
        let keys = self
            .blobs
            .finished_before(finished_before)
            .await
            .context("listing the blob store")?;
        let referenced: HashSet<BlobKey> = self
            .store
            .referenced_blobs(&keys)
            .await?
            .into_iter()
            .collect();
        let mut swept = 0;
        for key in keys.iter().filter(|key| !referenced.contains(*key)) {
            self.blobs
                .delete(key)
                .await
                .with_context(|| format!("deleting blob {key}"))?;
            swept += 1;
        }
        Ok(swept)
    }
}

impl<S: TransactionLog + AuditLog + Maintenance> Operations<S> {
    /// Operations in a process without delivery workers (the admin CLI): the gateway's
    /// workers find what they make due on their next poll.
    pub fn standalone(store: Arc<S>, auditor: Arc<Auditor>) -> Self {
        Self {
            store,
            auditor,
            work_ready: WorkSignal::default(),
            clock: Clock::System,
        }
    }

    /// Outstanding deliveries, the soonest due first, at most `limit`.
    pub async fn pending_deliveries(&self, limit: u32) -> StoreResult<Vec<WorkItem>> {
        self.store.pending_work(limit).await
    }

    /// The latest transactions (of `username`, if given), newest first, at most `limit`.
    pub async fn recent(
        &self,
        username: Option<&Username>,
        limit: u32,
    ) -> StoreResult<Vec<Transaction>> {
        self.store.transactions(username, limit).await
    }

    /// The statuses `transaction` has reached, in order, with when.
    pub async fn history(
        &self,
        transaction: &Transaction,
    ) -> StoreResult<Vec<(StatusCode, OffsetDateTime)>> {
        self.store.status_history(transaction.id).await
    }

    /// Transactions by state and outstanding deliveries by service, for the gauges.
    pub async fn counts(&self) -> StoreResult<Counts> {
        self.store.counts().await
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> StoreResult<()> {
        self.store.ping().await
    }

    /// The audit records `query` selects, with their ids.
    pub async fn audit_events(&self, query: AuditQuery) -> StoreResult<Vec<(i64, AuditEvent)>> {
        self.store.audit_events(query).await
    }

    /// Bounds the store's write-ahead log.
    pub async fn checkpoint(&self) -> StoreResult<()> {
        self.store.checkpoint().await
    }

    /// Makes a waiting delivery due now (an operator saw the backend come back).
    pub async fn retry_delivery(
        &self,
        skat_transaction_id: &SkatTransactionId,
    ) -> Result<(), AdminError> {
        let now = self.clock.now();
        let due = self.store.retry_work(skat_transaction_id, now).await?;
        self.made_due(due, now, "admin.retry_delivery", skat_transaction_id)
            .await
            .map_err(|id| {
                AdminError::NotFound(format!("transaction {id} has no outstanding delivery"))
            })
    }

    /// Schedules delivering a transaction its backend has already taken once more (the
    /// backend lost it); no status changes.
    pub async fn replay_delivery(
        &self,
        skat_transaction_id: &SkatTransactionId,
    ) -> Result<(), AdminError> {
        let now = self.clock.now();
        let due = self.store.replay_work(skat_transaction_id, now).await?;
        self.made_due(due, now, "admin.replay_delivery", skat_transaction_id)
            .await
            .map_err(|id| {
                AdminError::Invalid(format!(
                    "transaction {id} cannot be replayed: only one its backend has taken, whose body is still kept and which has no delivery waiting, can be"
                ))
            })
    }

    /// After an operator's `action` on `id`'s work: if it made work `due`, wakes the
    /// workers and audits it; else hands `id` back for the refusal.
    async fn made_due<'a>(
        &self,
        due: bool,
        now: OffsetDateTime,
        action: &'static str,
        id: &'a SkatTransactionId,
    ) -> Result<(), &'a SkatTransactionId> {
        if !due {
            return Err(id);
        }
        self.work_ready.wake();
        self.store.announce_work();
        self.auditor
            .record(
                AuditEvent::allowed(now, action)
                    .with_detail(serde_json::json!({ "skat_transaction_id": id })),
            )
            .await;
        Ok(())
    }
}
