//! The worker that carries outstanding work forward. For now it serves the built-in heartbeat
//! backend, which answers every upload with status 1, status 2, a response file and status 3.
//!
//! Work is taken from the store in batches, oldest first, and each step is committed for the
//! whole batch at once: one commit per step keeps the order 1, 2, 3 visible in `/out` and
//! costs three fsyncs per batch rather than per transaction. A step is conditional on the
//! state it starts from, so redoing it after a crash changes nothing.

use std::sync::Arc;
use std::time::Duration;

use mftgw_blobs::BlobStore;
use mftgw_domain::status::StatusCode;
use mftgw_domain::transaction::{
    HEARTBEAT_SERVICE, heartbeat_response_body, heartbeat_response_name,
};
use mftgw_domain::{Transaction, TransactionState};
use mftgw_store::{Advance, NewOutFile, OutContent, Store};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::Transactions;

const BATCH: u32 = 256;
/// How often the worker looks for work it was not told about (another process's, or work
/// due later).
const POLL: Duration = Duration::from_secs(1);
/// How long to wait after the store failed before trying again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Runs until `shutdown`; the heartbeat waits `step_delay` before each of its answers.
pub async fn run_worker<S: Store, B: BlobStore>(
    transactions: Arc<Transactions<S, B>>,
    step_delay: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let services = [HEARTBEAT_SERVICE.to_string()];
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pause = match transactions
            .store
            .due_work(&services, OffsetDateTime::now_utc(), BATCH)
            .await
        {
            Ok(batch) if batch.is_empty() => POLL,
            Ok(batch) => match answer_heartbeats(&*transactions.store, batch, step_delay).await {
                Ok(()) => continue,
                Err(error) => {
                    tracing::error!(%error, "heartbeat step failed; retrying");
                    STORE_RETRY
                }
            },
            Err(error) => {
                tracing::error!(%error, "reading outstanding work failed; retrying");
                STORE_RETRY
            }
        };
        tokio::select! {
            () = transactions.work_ready.notified() => {}
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Takes every transaction of the batch through the heartbeat's remaining steps.
async fn answer_heartbeats<S: Store>(
    store: &S,
    mut batch: Vec<Transaction>,
    step_delay: Duration,
) -> Result<(), mftgw_store::StoreError> {
    for code in [
        StatusCode::Delivered,
        StatusCode::Accepted,
        StatusCode::Exposed,
    ] {
        if batch
            .iter()
            .all(|transaction| transaction.state.after(code).is_none())
        {
            continue;
        }
        if !step_delay.is_zero() {
            tokio::time::sleep(step_delay).await;
        }
        let now = OffsetDateTime::now_utc();
        let steps: Vec<Advance> = batch
            .iter()
            .filter_map(|transaction| heartbeat_step(transaction, code, now))
            .collect();
        store.advance(&steps).await?;
        for transaction in &mut batch {
            if let Some(next) = transaction.state.after(code) {
                transaction.state = next;
            }
        }
    }
    Ok(())
}

/// The heartbeat's step to status `code` for a transaction that is ready for it.
fn heartbeat_step(
    transaction: &Transaction,
    code: StatusCode,
    at: OffsetDateTime,
) -> Option<Advance> {
    let to = transaction.state.after(code)?;
    let mut files = Vec::new();
    let mut response_name = None;
    if code == StatusCode::Exposed {
        let name = heartbeat_response_name(&transaction.ftp_transaction_id);
        files.push(inline(&name, heartbeat_response_body(transaction, at)));
        response_name = Some(name);
    }
    let status = transaction.status_file(code, at, response_name, None);
    files.push(inline(&status.file_name(), status.to_xml()));
    Some(Advance {
        transaction_id: transaction.id,
        from: transaction.state,
        to,
        status: code,
        at,
        files,
        finishes_work: to == TransactionState::Answered,
    })
}

fn inline(name: &str, body: String) -> NewOutFile {
    NewOutFile {
        name: name.to_owned(),
        content: OutContent::Inline(body.into_bytes()),
    }
}
