//! Backends' answers to their transactions, and the outbound files they post unasked: which
//! answer a transaction may still take in which state, and the steps that give it one. The
//! same conditional steps as the delivery worker's, so an answer given twice, or racing the
//! worker, has one effect.

use mftgw_blobs::{BlobInfo, BlobStore};
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::status::{StatusCode, StatusFile};
use mftgw_domain::{
    Mailbox, ServiceName, SkatTransactionId, Transaction, TransactionState, Username,
};
use mftgw_store::{Advance, NewOutFile, NewOutbound, OutContent, Store, StoreError};

use super::Transactions;
use crate::delivery::Answer;
use crate::telemetry;

/// Whether an answer changed the transaction now, or it had that answer already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Now,
    Before,
}

/// Why a transaction cannot take an answer.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("{id} was rejected; it cannot be accepted")]
    AcceptAfterReject { id: SkatTransactionId },
    #[error("{id} was answered; it cannot be rejected")]
    RejectAfterResponse { id: SkatTransactionId },
    #[error("accept {id} before answering it")]
    ResponseBeforeAccept { id: SkatTransactionId },
    #[error("{id} was rejected; it cannot be answered")]
    ResponseAfterReject { id: SkatTransactionId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an outbound file cannot be posted.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("no user {username}")]
    UnknownUser { username: Username },
    #[error(
        "{username} does not hold a role for {service}, nor held one within the retention period"
    )]
    NoRole {
        username: Username,
        service: ServiceName,
    },
    /// The name was posted before with other content.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

/// An outbound file whose body is durable as `blob`.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub username: Username,
    pub service: ServiceName,
    /// The backend's name for it, unique per (user, service).
    pub name: String,
    /// Its name in `/out`: `<service>_<name>`.
    pub file_name: String,
    /// The SKATTransactionId it answers, or `None` for a fresh one.
    pub skat_transaction_id: Option<SkatTransactionId>,
    pub blob: BlobInfo,
}

/// An outbound file in `/out`, with its status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub status_file: String,
    pub skat_transaction_id: SkatTransactionId,
    /// `false` if the same file had been posted before (nothing changed now).
    pub created: bool,
}

impl<S: Store, B: BlobStore> Transactions<S, B> {
    /// Accepts `transaction` (status 2), after status 1 if its delivery has not returned yet.
    pub async fn accept(&self, transaction: &Transaction) -> Result<Answered, TransitionError> {
        match transaction.state {
            TransactionState::Accepted | TransactionState::Answered => Ok(Answered::Before),
            TransactionState::Rejected => Err(TransitionError::AcceptAfterReject {
                id: transaction.skat_transaction_id.clone(),
            }),
            TransactionState::Received | TransactionState::Delivered => {
                self.answer(transaction, Answer::Accept).await
            }
        }
    }

    /// Rejects `transaction` with `error` (status 0), after status 1 if need be.
    pub async fn reject(
        &self,
        transaction: &Transaction,
        error: ErrorEntry,
    ) -> Result<Answered, TransitionError> {
        match transaction.state {
            TransactionState::Rejected => Ok(Answered::Before),
            TransactionState::Answered => Err(TransitionError::RejectAfterResponse {
                id: transaction.skat_transaction_id.clone(),
            }),
            TransactionState::Received
            | TransactionState::Delivered
            | TransactionState::Accepted => self.answer(transaction, Answer::Reject(error)).await,
        }
    }

    /// Whether `transaction` can take a response now: `Ok(Before)` if it has one, so that the
    /// caller need not store another body.
    pub fn may_respond(&self, transaction: &Transaction) -> Result<Answered, TransitionError> {
        let id = || transaction.skat_transaction_id.clone();
        match transaction.state {
            TransactionState::Answered => Ok(Answered::Before),
            TransactionState::Accepted => Ok(Answered::Now),
            TransactionState::Received | TransactionState::Delivered => {
                Err(TransitionError::ResponseBeforeAccept { id: id() })
            }
            TransactionState::Rejected => Err(TransitionError::ResponseAfterReject { id: id() }),
        }
    }

    /// Answers `transaction` with the response file `name` whose body is `blob` (status 3).
    /// Unless the answer is applied now, the blob is deleted.
    pub async fn respond(
        &self,
        transaction: &Transaction,
        name: String,
        blob: BlobInfo,
    ) -> Result<Answered, TransitionError> {
        let key = blob.key.clone();
        let answered = match self.may_respond(transaction) {
            Ok(Answered::Now) => {
                let content = OutContent::Blob {
                    key: blob.key,
                    size: blob.size,
                };
                self.answer(transaction, Answer::Respond { name, content })
                    .await
            }
            other => other,
        };
        if !matches!(answered, Ok(Answered::Now)) {
            self.forget_blob(&key).await;
        }
        answered
    }

    /// Applies `answer`: status 1 first if the backend answers before the delivery attempt
    /// that brought it the file has returned.
    async fn answer(
        &self,
        transaction: &Transaction,
        answer: Answer,
    ) -> Result<Answered, TransitionError> {
        let now = self.now();
        let mut steps: Vec<Advance> = Vec::new();
        let mut at = transaction.clone();
        if at.state == TransactionState::Received {
            steps.push(self.delivered_step(&at, now, true));
            at.state = TransactionState::Delivered;
        }
        steps.extend(self.answer_step(&at, &[answer], now));
        let applied = self.advance(&steps).await?;
        Ok(if applied.last().copied().unwrap_or(false) {
            Answered::Now
        } else {
            Answered::Before
        })
    }

    /// Whether a backend may post `service` files to `username` now: the user holds the role,
    /// or held it within `grace` (answers to what they sent before it was withdrawn).
    pub async fn may_post_outbound(
        &self,
        username: &Username,
        service: &ServiceName,
        grace: std::time::Duration,
    ) -> Result<(), OutboundError> {
        let since = self.now() - grace;
        match self.store.held_role_since(username, service, since).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(OutboundError::NoRole {
                username: username.clone(),
                service: service.clone(),
            }),
            Err(StoreError::NotFound { .. }) => Err(OutboundError::UnknownUser {
                username: username.clone(),
            }),
            Err(error) => Err(OutboundError::Store(error)),
        }
    }

    /// Where an unrelated outbound file for `username` and `service` goes: where the user's
    /// latest transaction with that service was reported (so an integration that speaks the
    /// legacy profile finds it in its company's `out`), else the user's own mailbox, which for
    /// a person is the legacy one.
    async fn outbound_mailbox(
        &self,
        username: &Username,
        service: &ServiceName,
    ) -> Result<Mailbox, StoreError> {
        // Web-service answers are fetched by calling, not from a mailbox.
        if let Some(mailbox) = self.store.latest_mailbox(username, service).await?
            && !matches!(mailbox, Mailbox::Calls(_))
        {
            return Ok(mailbox);
        }
        let person = self
            .store
            .find_user(username)
            .await?
            .is_some_and(|known| known.user.cvr.is_none());
        Ok(if person {
            Mailbox::Person(username.clone())
        } else {
            Mailbox::of_user(username)
        })
    }

    /// Puts an outbound file and its status 3 in the user's mailbox (see
    /// [`outbound_mailbox`](Self::outbound_mailbox)), once per name: posting it again changes
    /// nothing (and deletes the blob of the repeat).
    pub async fn post_outbound(&self, outbound: Outbound) -> Result<Posted, OutboundError> {
        let now = self.now();
        let mailbox = match self
            .outbound_mailbox(&outbound.username, &outbound.service)
            .await
        {
            Ok(mailbox) => mailbox,
            Err(error) => {
                self.forget_blob(&outbound.blob.key).await;
                return Err(OutboundError::Store(error));
            }
        };
        let profile = mailbox.profile();
        let skat_transaction_id = outbound
            .skat_transaction_id
            .unwrap_or_else(|| self.next_skat_transaction_id());
        let blob = outbound.blob;
        let status = StatusFile {
            code: StatusCode::Exposed,
            service: outbound.service.clone(),
            ftp_transaction_id: outbound.file_name.clone(),
            upload_path: None,
            skat_transaction_id: Some(skat_transaction_id.clone()),
            at: now,
            response_file: Some(outbound.file_name.clone()),
            error: None,
        };
        let recorded = self
            .store
            .record_outbound(NewOutbound {
                mailbox,
                username: outbound.username,
                service: outbound.service.clone(),
                name: outbound.name,
                sha256: blob.sha256.clone(),
                skat_transaction_id,
                file: NewOutFile {
                    name: outbound.file_name,
                    content: OutContent::Blob {
                        key: blob.key.clone(),
                        size: blob.size,
                    },
                },
                status_xml: status.to_xml().into_bytes(),
                at: now,
            })
            .await;
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(error) => {
                self.forget_blob(&blob.key).await;
                return Err(match error {
                    StoreError::Conflict(text) => OutboundError::Conflict(text),
                    error => OutboundError::Store(error),
                });
            }
        };
        for key in &recorded.replaced_blobs {
            self.forget_blob(key).await;
        }
        if recorded.created {
            telemetry::status_file_written(StatusCode::Exposed);
        } else {
            self.forget_blob(&blob.key).await;
        }
        Ok(Posted {
            status_file: StatusFile::outbound_file_name(profile, &outbound.service, recorded.seq),
            skat_transaction_id: recorded.skat_transaction_id,
            created: recorded.created,
        })
    }
}
