//! Transactions inside the gateway: committing a received upload (or answering a reused name
//! or a failed format check with status_0), backends' answers and outbound files
//! (`answers.rs`), what users read of their `/out` (`mailbox.rs`), what operators see and do
//! (`operations.rs`), and the retention sweep of `/out`. Delivery is in [`crate::delivery`].
//!
//! Durability order for an upload: the body is fsynced in the blob store, then the
//! transaction and its work commit in one store transaction, then the client gets `226`.
//! Every later step commits its state change and its `/out` files together.

mod answers;
mod calls;
mod mailbox;
mod operations;
mod retention;

use std::sync::Arc;

use crate::clock::Clock;
use crate::delivery::Answer;
use crate::projection::{self, Step};
use crate::telemetry;
use mftgw_blobs::{BlobInfo, BlobStore};
use mftgw_domain::errors::{ErrorCatalogue, ErrorEntry, FILENAME_CANNOT_BE_REUSED};
use mftgw_domain::record_format::{RecordCheck, RecordFormats};
use mftgw_domain::status::StatusCode;
use mftgw_domain::transaction::{SkatTransactionIds, upload_path};
use mftgw_domain::{
    AccountId, Cvr, FtpTransactionId, InvalidId, Mailbox, SkatTransactionId, Transaction,
    TransactionState, TransferMode,
};
use mftgw_domain::{BlobKey, ServiceName, Username};
use mftgw_store::{Advance, NewTransaction, Recorded, Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::watch;

pub use answers::{Answered, Outbound, OutboundError, Posted, TransitionError};
pub use calls::{Call, CallError, CallOutcome, call_answer_name, call_name};
pub use mailbox::{MailboxReader, ReadError};
pub use operations::Operations;
pub use retention::{OrphanSweep, RetentionPolicy, run_orphan_sweep, run_retention};

/// The transaction machinery one gateway process shares between its sessions and workers.
pub struct Transactions<S, B> {
    pub(crate) store: Arc<S>,
    pub(crate) blobs: Arc<B>,
    ids: SkatTransactionIds,
    errors: ErrorCatalogue,
    formats: RecordFormats,
    work_ready: WorkSignal,
    /// Counts up whenever a step was applied (a caller waiting for its answer looks).
    step_applied: WorkSignal,
    clock: Clock,
}

/// Counts up at an event, waking every task of the process that waits for it.
#[derive(Clone, Default)]
pub(crate) struct WorkSignal(Arc<watch::Sender<u64>>);

impl WorkSignal {
    fn wake(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }
}

/// Who uploaded what where: the facts a transaction needs besides the body.
#[derive(Debug, Clone)]
pub struct UploadTarget {
    pub username: Username,
    /// Where the transaction is reported: its status files now and at every later step.
    pub mailbox: Mailbox,
    /// `None` for a person.
    pub cvr: Option<Cvr>,
    pub account: AccountId,
    pub service: ServiceName,
    /// The upload's name: its FTPTransactionID.
    pub name: FtpTransactionId,
    pub transfer_type: TransferMode,
}

impl UploadTarget {
    /// The internal path of the upload (see [`upload_path`]).
    pub fn upload_path(&self) -> String {
        upload_path(
            self.cvr.as_ref(),
            &self.account,
            &self.service,
            self.name.as_str(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Transaction {
        skat_transaction_id: SkatTransactionId,
    },
    /// The name was used before: a status_0 saying so is now in `/out`, unless a status_0
    /// of that name was there already (the original transaction's, which stays as it is).
    NameReused { status_file: Option<String> },
}

impl<S: Store, B: BlobStore> Transactions<S, B> {
    /// The transactions of node `node_id` (its part of every SKATTransactionId it makes;
    /// refused if it does not fit in one).
    pub fn new(store: Arc<S>, blobs: Arc<B>, node_id: &str) -> Result<Self, InvalidId> {
        Ok(Self {
            store,
            blobs,
            ids: SkatTransactionIds::new(node_id)?,
            errors: ErrorCatalogue::builtin(),
            formats: RecordFormats::builtin(),
            work_ready: WorkSignal::default(),
            step_applied: WorkSignal::default(),
            clock: Clock::System,
        })
    }

    /// The same, with `clock` in place of the system clock (tests under a paused clock).
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// This node's id.
    /// Answers if the blob store can be reached.
    pub async fn blobs_reachable(&self) -> std::io::Result<()> {
        self.blobs.ping().await
    }

    pub fn node_id(&self) -> &str {
        self.ids.node()
    }

    /// Now, by the core's clock: what every step, due time and status file is dated with.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Tells the delivery workers that there is new work: this node's at once, the other
    /// nodes' on the store by a hint.
    pub fn wake_workers(&self) {
        self.work_ready.wake();
        self.store.announce_work();
    }

    /// Status 1 for a transaction the backend has taken.
    pub(crate) fn delivered_step(
        &self,
        transaction: &Transaction,
        at: OffsetDateTime,
        finishes_work: bool,
    ) -> Advance {
        Advance {
            transaction_id: transaction.id,
            from: TransactionState::Received,
            to: TransactionState::Delivered,
            status: StatusCode::Delivered,
            at,
            files: projection::for_mailbox(&transaction.mailbox)
                .files(Step::Delivered { transaction }, at),
            finishes_work,
            lease: None,
        }
    }

    /// The step of the first of `answers` not yet applied to `transaction`, if any.
    pub(crate) fn answer_step(
        &self,
        transaction: &Transaction,
        answers: &[Answer],
        at: OffsetDateTime,
    ) -> Option<Advance> {
        let (position, answer) = answers
            .iter()
            .enumerate()
            .find(|(_, answer)| transaction.state.after(answer.status()).is_some())?;
        let to = transaction.state.after(answer.status())?;
        let step = Step::Answered {
            transaction,
            answer,
        };
        Some(Advance {
            transaction_id: transaction.id,
            from: transaction.state,
            to,
            status: answer.status(),
            at,
            files: projection::for_mailbox(&transaction.mailbox).files(step, at),
            finishes_work: to.is_final() || position + 1 == answers.len(),
            lease: None,
        })
    }

    /// What a delivery worker waits on for new work.
    pub fn work_signal(&self) -> watch::Receiver<u64> {
        self.work_ready.0.subscribe()
    }

    /// What a caller waiting for a transaction's next step waits on.
    pub(crate) fn step_signal(&self) -> watch::Receiver<u64> {
        self.step_applied.0.subscribe()
    }

    /// A fresh SKATTransactionId (for an unrelated outbound file that brings none).
    pub fn next_skat_transaction_id(&self) -> SkatTransactionId {
        self.ids.next(self.now())
    }

    /// The check an upload to `service` must pass before delivery, if its service has a
    /// record format (eKapital Classic).
    pub fn record_check(&self, service: &ServiceName) -> Option<RecordCheck> {
        self.formats.get(service.as_str()).map(RecordCheck::new)
    }

    /// Commits an upload whose body is durable as `blob`; `refusal` is the error code of a
    /// failed format check, which makes the transaction rejected on arrival with its status_0.
    /// On `Err` nothing was recorded and the blob is gone: the client must not be told the
    /// upload succeeded.
    pub async fn commit_upload(
        &self,
        target: &UploadTarget,
        blob: BlobInfo,
        refusal: Option<&str>,
    ) -> Result<Committed, StoreError> {
        let now = self.now();
        let skat_transaction_id = self.ids.next(now);
        let rejection = refusal.map(|code| {
            let step = Step::RejectedOnArrival {
                upload: target,
                skat_transaction_id: &skat_transaction_id,
                error: &self.error_entry(code),
            };
            projection::for_mailbox(&target.mailbox).files(step, now)
        });
        let recorded = self
            .store
            .record_transaction(NewTransaction {
                skat_transaction_id: skat_transaction_id.clone(),
                username: target.username.clone(),
                mailbox: target.mailbox.clone(),
                service: target.service.clone(),
                ftp_transaction_id: target.name.clone(),
                upload_path: target.upload_path(),
                size: blob.size,
                sha256: blob.sha256,
                transfer_type: target.transfer_type,
                blob_key: blob.key.clone(),
                received_at: now,
                rejection,
            })
            .await;
        match recorded {
            Ok(Recorded::Created(transaction)) => {
                if transaction.state.is_final() {
                    telemetry::upload("rejected_on_arrival", blob.size);
                    telemetry::status_file_written(StatusCode::Error);
                } else {
                    telemetry::upload("transaction", blob.size);
                    self.wake_workers();
                }
                Ok(Committed::Transaction {
                    skat_transaction_id,
                })
            }
            Ok(Recorded::NameReused) => {
                self.forget_blob(&blob.key).await;
                let step = Step::NameReused {
                    upload: target,
                    error: &self.error_entry(FILENAME_CANNOT_BE_REUSED),
                };
                let mut written = None;
                for notice in projection::for_mailbox(&target.mailbox).files(step, now) {
                    let name = notice.name.clone();
                    if self
                        .store
                        .add_out_file(&target.mailbox, notice, now)
                        .await?
                    {
                        telemetry::status_file_written(StatusCode::Error);
                        written.get_or_insert(name);
                    }
                }
                telemetry::upload("name_reused", blob.size);
                Ok(Committed::NameReused {
                    status_file: written,
                })
            }
            Err(error) => {
                self.forget_blob(&blob.key).await;
                Err(error)
            }
        }
    }

    /// The catalogue's entry for `code`; a code missing from the catalogue is a bug in the
    /// shipped data, reported as itself rather than hidden.
    fn error_entry(&self, code: &str) -> ErrorEntry {
        self.errors.get(code).cloned().unwrap_or_else(|| {
            tracing::error!(code, "error code missing from the error catalogue");
            ErrorEntry {
                code: code.to_owned(),
                message: code.to_owned(),
                resolution: String::new(),
            }
        })
    }

    /// Applies transaction steps in one commit (see [`mftgw_store::TransactionLog::advance`]), counts the status
    /// files they wrote and deletes the blobs of `/out` files they replaced; per step, whether
    /// it was applied now. The delivery worker and the backend API both move transactions
    /// through here.
    pub async fn advance(&self, steps: &[Advance]) -> Result<Vec<bool>, StoreError> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let advanced = self.store.advance(steps).await?;
        if advanced.refused_stale > 0 {
            tracing::warn!(
                steps = advanced.refused_stale,
                "steps taken under a claim that ran out were refused; the work's current \
                 claimant delivers it again"
            );
        }
        for (step, applied) in steps.iter().zip(&advanced.applied) {
            if *applied {
                telemetry::status_file_written(step.status);
            }
        }
        if advanced.applied.contains(&true) {
            self.step_applied.wake();
        }
        for key in &advanced.replaced_blobs {
            self.forget_blob(key).await;
        }
        Ok(advanced.applied)
    }

    /// The transaction `skat_transaction_id`, if there is one.
    pub async fn find(
        &self,
        skat_transaction_id: &SkatTransactionId,
    ) -> Result<Option<Transaction>, StoreError> {
        self.store.transaction(skat_transaction_id).await
    }

    /// The statuses `transaction` has reached, in order, with when.
    pub async fn history(
        &self,
        transaction: &Transaction,
    ) -> Result<Vec<(StatusCode, OffsetDateTime)>, StoreError> {
        self.store.status_history(transaction.id).await
    }

    /// A new blob for a body on its way in (a response, an outbound file); it is deleted
    /// again unless a commit comes to refer to it.
    pub async fn create_blob(&self) -> std::io::Result<B::Writer> {
        self.blobs.create().await
    }

    /// Deletes a blob nothing refers to any more. A failure leaves an unreferenced file,
    /// which is logged: it costs disk space, never correctness.
    pub async fn forget_blob(&self, key: &BlobKey) {
        if let Err(error) = self.blobs.delete(key).await {
            tracing::warn!(%error, %key, "could not delete an unreferenced blob");
        }
    }
}

/// A transaction and its status history as JSON, for operators and backends.
pub fn transaction_json(
    transaction: &Transaction,
    history: &[(StatusCode, OffsetDateTime)],
) -> serde_json::Value {
    let rfc3339 = |at: OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let history: Vec<serde_json::Value> = history
        .iter()
        .map(|(code, at)| serde_json::json!({ "status": code.digit().to_string(), "at": rfc3339(*at) }))
        .collect();
    serde_json::json!({
        "skat_transaction_id": transaction.skat_transaction_id,
        "ftp_transaction_id": transaction.ftp_transaction_id,
        "username": transaction.username,
        "cvr": transaction.cvr,
        "service": transaction.service,
        "upload_path": transaction.upload_path,
        "size": transaction.size,
        "sha256": transaction.sha256,
        "transfer_type": transaction.transfer_type.to_string(),
        "state": transaction.state.as_str(),
        "history": history,
        "received_at": rfc3339(transaction.received_at),
    })
}
