//! Web-service calls (EMCS) as transactions. A call's request is committed like an upload, to
//! the caller's [`Mailbox::Calls`], named by the caller's own transaction id, so that an id
//! used before is refused as a reused name; the delivery worker hands it to the service's
//! backend like any upload; and the caller's adapter waits for the transaction to reach its
//! final state and answers with the backend's response, which the projection
//! ([`crate::projection::CallAnswers`]) keeps under [`call_answer_name`].
//!
//! A call that is not answered in time is rejected with the adapter's error, so that a
//! caller told "not available" can never find its request delivered later.

use std::time::Duration;

use mftgw_blobs::{BlobStore, BlobWriter};
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::{
    AccountId, Cvr, FtpTransactionId, Mailbox, ServiceName, SkatTransactionId, TransactionState,
    TransferMode, Username,
};
use mftgw_store::{Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Answered, Committed, ReadError, Transactions, TransitionError, UploadTarget};

/// How often a waiting caller looks at its transaction even without a wake-up: the step may
/// be applied by another node's worker.
const POLL: Duration = Duration::from_millis(250);

/// Who calls which service with which transaction id.
#[derive(Debug, Clone)]
pub struct Call {
    pub username: Username,
    /// `None` for a person.
    pub cvr: Option<Cvr>,
    pub account: AccountId,
    pub service: ServiceName,
    /// The caller's transaction id, as a name ([`call_name`]).
    pub name: FtpTransactionId,
}

/// What became of a committed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The backend's response.
    Answered(Vec<u8>),
    /// Rejected with this error: by the backend, by an operator, or with `give_up` because
    /// no answer came in time.
    Rejected(Option<ErrorEntry>),
}

/// Why a call could not be committed or answered.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the call's body: {0}")]
    Body(#[source] std::io::Error),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("transaction {0} is not there any more")]
    Gone(SkatTransactionId),
}

/// The name in the caller's calls mailbox of the backend's answer to `transaction`.
pub fn call_answer_name(transaction: &SkatTransactionId) -> String {
    format!("answer_{transaction}")
}

/// The caller's transaction id `id` as a transaction name: itself where it is a plain file
/// name; else with `%`, `/`, `\` and control characters percent-encoded (and a name of only
/// dots encoded whole), which keeps distinct ids distinct; and a SHA-256 where that is too
/// long for a name.
pub fn call_name(id: &str) -> FtpTransactionId {
    let only_dots = !id.is_empty() && id.chars().all(|c| c == '.');
    let mut name = String::with_capacity(id.len());
    for c in id.chars() {
        if matches!(c, '%' | '/' | '\\') || c.is_control() || only_dots {
            let mut utf8 = [0u8; 4];
            for byte in c.encode_utf8(&mut utf8).bytes() {
                name.push_str(&format!("%{byte:02X}"));
            }
        } else {
            name.push(c);
        }
    }
    FtpTransactionId::parse(name).unwrap_or_else(|_| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
        let hex: String = digest
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        FtpTransactionId::parse(format!("sha256-{hex}")).expect("hex is a plain name")
    })
}

impl<S: Store, B: BlobStore> Transactions<S, B> {
    /// Commits `call` with its request `body`: durable before this returns, as an upload is
    /// before its `226`. A reused id is [`Committed::NameReused`], and nothing is recorded.
    pub async fn commit_call(&self, call: &Call, body: &[u8]) -> Result<Committed, CallError> {
        let mut writer = self.create_blob().await.map_err(CallError::Body)?;
        let written = async {
            writer.write_all(body).await?;
            writer.finish().await
        };
        let blob = written.await.map_err(CallError::Body)?;
        let target = UploadTarget {
            username: call.username.clone(),
            mailbox: Mailbox::Calls(call.username.clone()),
            cvr: call.cvr.clone(),
            account: call.account.clone(),
            service: call.service.clone(),
            name: call.name.clone(),
            transfer_type: TransferMode::Binary,
        };
        Ok(self.commit_upload(&target, blob, None).await?)
    }

    /// Waits until the committed call `id` is answered or rejected; after `deadline` it is
    /// rejected with `give_up` (unless it was answered meanwhile).
    pub async fn wait_for_answer(
        &self,
        id: &SkatTransactionId,
        deadline: Duration,
        give_up: ErrorEntry,
    ) -> Result<CallOutcome, CallError> {
        let mut applied = self.step_signal();
        let deadline = tokio::time::Instant::now() + deadline;
        let transaction = loop {
            let transaction = self
                .find(id)
                .await?
                .ok_or_else(|| CallError::Gone(id.clone()))?;
            match transaction.state {
                TransactionState::Answered => break transaction,
                TransactionState::Rejected => return Ok(CallOutcome::Rejected(None)),
                _ if tokio::time::Instant::now() >= deadline => {
                    if self.reject(&transaction, give_up.clone()).await? == Answered::Now {
                        return Ok(CallOutcome::Rejected(Some(give_up)));
                    }
                    // It moved just before the rejection: look again.
                    continue;
                }
                _ => {}
            }
            tokio::select! {
                _ = applied.changed() => {}
                () = tokio::time::sleep(POLL) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        };
        let mailbox = Mailbox::Calls(transaction.username.clone());
        let name = call_answer_name(id);
        let Some(mut reader) = self.read_mailbox_file(&mailbox, &name, 0).await? else {
            return Ok(CallOutcome::Rejected(None));
        };
        let mut answer = Vec::new();
        reader
            .read_to_end(&mut answer)
            .await
            .map_err(|source| ReadError::Body { name, source })?;
        Ok(CallOutcome::Answered(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_id_becomes_a_name_that_keeps_ids_apart() {
        assert_eq!(call_name("3f1c-77aa").as_str(), "3f1c-77aa");
        assert_eq!(call_name("a/b").as_str(), "a%2Fb");
        assert_eq!(call_name("a%2Fb").as_str(), "a%252Fb");
        assert_eq!(call_name("..").as_str(), "%2E%2E");
        assert_eq!(call_name("a\tb").as_str(), "a%09b");
        assert_eq!(call_name(&"ø".repeat(100)).as_str(), "ø".repeat(100));
        // 400 bytes: more than a name may have.
        let hashed = call_name(&"𝄞".repeat(100));
        assert!(hashed.as_str().starts_with("sha256-"), "{hashed}");
        assert_ne!(hashed, call_name(&"𝄞".repeat(99)));
    }
}
