//! Steps and what they show. A transaction step is a domain event ([`Step`]: what happened
//! to an upload); what it puts in the user's mailbox is a [`Projection`]'s choice, one per
//! interface and profile. The core commits a step's state change together with the files its
//! projection made, so they appear exactly once.
//!
//! The FTPS Gateway's ([`FtpsStatusFiles`]) writes a `status_<service>_<name>_<code>.xml`
//! per step, and a response file as itself; the legacy "Secure FTP" profile's
//! ([`SecureFtpStatusFiles`]) one status file per transaction, rewritten in place. Which one
//! applies follows the transaction's mailbox ([`for_mailbox`]). A web-service call's
//! ([`CallAnswers`]) keeps only the backend's answer, which the caller gets in its SOAP
//! response rather than from a mailbox; AS4's signals will be another projection of the same
//! steps.

use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::status::{StatusCode, StatusFile};
use mftgw_domain::{Mailbox, Profile, SkatTransactionId, Transaction};
use mftgw_store::{NewOutFile, OutContent};
use time::OffsetDateTime;

use crate::delivery::Answer;
use crate::transactions::{UploadTarget, call_answer_name};

/// What happened to an upload.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// The upload reused a name: no transaction was recorded.
    NameReused {
        upload: &'a UploadTarget,
        error: &'a ErrorEntry,
    },
    /// The upload failed its format check: its transaction is rejected as it arrives.
    RejectedOnArrival {
        upload: &'a UploadTarget,
        skat_transaction_id: &'a SkatTransactionId,
        error: &'a ErrorEntry,
    },
    /// The backend took the file.
    Delivered { transaction: &'a Transaction },
    /// The backend answered.
    Answered {
        transaction: &'a Transaction,
        answer: &'a Answer,
    },
}

/// What a step puts in the mailbox of the user it concerns, for one interface and profile.
pub trait Projection: Send + Sync + 'static {
    /// The files of `step`, dated `at`, in the order they appear.
    fn files(&self, step: Step<'_>, at: OffsetDateTime) -> Vec<NewOutFile>;
}

/// The projection of the interface and profile `mailbox` is shown through.
pub fn for_mailbox(mailbox: &Mailbox) -> &'static dyn Projection {
    match mailbox {
        Mailbox::Calls(_) => &CallAnswers,
        _ => match mailbox.profile() {
            Profile::Gateway => &FtpsStatusFiles,
            Profile::SecureFtp => &SecureFtpStatusFiles,
        },
    }
}

/// A web-service call's: the backend's response, named [`call_answer_name`], and nothing
/// for the other steps. The caller learns of a reused id or a refusal from the SOAP answer,
/// which its adapter builds from the transaction's state.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallAnswers;

impl Projection for CallAnswers {
    fn files(&self, step: Step<'_>, _at: OffsetDateTime) -> Vec<NewOutFile> {
        match step {
            Step::Answered {
                transaction,
                answer: Answer::Respond { content, .. },
            } => vec![NewOutFile {
                name: call_answer_name(&transaction.skat_transaction_id),
                content: content.clone(),
            }],
            _ => Vec::new(),
        }
    }
}

/// The FTPS Gateway's status files (SPEC §4): one per step, named after its code.
#[derive(Debug, Clone, Copy, Default)]
pub struct FtpsStatusFiles;

impl Projection for FtpsStatusFiles {
    fn files(&self, step: Step<'_>, at: OffsetDateTime) -> Vec<NewOutFile> {
        let Report { response, status } = report(step, at);
        let name = status.file_name();
        response
            .into_iter()
            .chain([inline(name, &status)])
            .collect()
    }
}

/// The legacy "Secure FTP" profile's status files (seed 003): one per transaction,
/// `status_<service>_<FTPTransactionID>.xml`, rewritten by every step (the store replaces a
/// file of the same name in the step's commit, so a reader sees the old or the new one).
/// A reused name has no transaction: its refusal is a file of its own, named like the
/// FTPS Gateway's (`…_0.xml`), so that it never overwrites the first upload's status.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecureFtpStatusFiles;

impl Projection for SecureFtpStatusFiles {
    fn files(&self, step: Step<'_>, at: OffsetDateTime) -> Vec<NewOutFile> {
        let reused = matches!(step, Step::NameReused { .. });
        let Report { response, status } = report(step, at);
        let name = if reused {
            status.file_name()
        } else {
            status.legacy_file_name()
        };
        response
            .into_iter()
            .chain([inline(name, &status)])
            .collect()
    }
}

/// What a step reports, before a profile names its files: a response file, if any, and
/// the status.
struct Report {
    response: Option<NewOutFile>,
    status: StatusFile,
}

fn report(step: Step<'_>, at: OffsetDateTime) -> Report {
    let status_only = |status| Report {
        response: None,
        status,
    };
    match step {
        Step::NameReused { upload, error } => status_only(status_0(upload, None, error, at)),
        Step::RejectedOnArrival {
            upload,
            skat_transaction_id,
            error,
        } => status_only(status_0(upload, Some(skat_transaction_id), error, at)),
        Step::Delivered { transaction } => {
            status_only(transaction.status_file(StatusCode::Delivered, at, None, None))
        }
        Step::Answered {
            transaction,
            answer,
        } => {
            let (response, response_file, error) = match answer {
                Answer::Accept => (None, None, None),
                Answer::Respond { name, content } => (
                    Some(NewOutFile {
                        name: name.clone(),
                        content: content.clone(),
                    }),
                    Some(name.clone()),
                    None,
                ),
                Answer::Reject(error) => (None, None, Some(error.clone())),
            };
            Report {
                response,
                status: transaction.status_file(answer.status(), at, response_file, error),
            }
        }
    }
}

/// A status_0 for an upload. Its `filename` is the full upload path like every other status
/// file (the client guide's example of a reused name shows a shortened one; SPEC §3 defines
/// the path).
fn status_0(
    upload: &UploadTarget,
    skat_transaction_id: Option<&SkatTransactionId>,
    error: &ErrorEntry,
    at: OffsetDateTime,
) -> StatusFile {
    StatusFile {
        code: StatusCode::Error,
        service: upload.service.clone(),
        ftp_transaction_id: upload.name.to_string(),
        upload_path: Some(upload.upload_path()),
        skat_transaction_id: skat_transaction_id.cloned(),
        at,
        response_file: None,
        error: Some(error.clone()),
    }
}

fn inline(name: String, status: &StatusFile) -> NewOutFile {
    NewOutFile {
        name,
        content: OutContent::Inline(status.to_xml().into_bytes()),
    }
}
