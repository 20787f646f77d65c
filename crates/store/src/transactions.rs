//! What the store takes and gives for transactions, their outstanding work and `/out`.

use mftgw_domain::{TransactionState, status::StatusCode};
use time::OffsetDateTime;

/// An upload that has been received in full and whose body is durable in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransaction {
    pub skat_transaction_id: mftgw_domain::SkatTransactionId,
    pub username: mftgw_domain::Username,
    /// Where the transaction's status files go, now and at every later step.
    pub mailbox: mftgw_domain::Mailbox,
    pub service: mftgw_domain::ServiceName,
    pub ftp_transaction_id: mftgw_domain::FtpTransactionId,
    pub upload_path: String,
    pub size: u64,
    pub sha256: mftgw_domain::Sha256,
    pub transfer_type: mftgw_domain::TransferMode,
    pub blob_key: mftgw_domain::BlobKey,
    pub received_at: OffsetDateTime,
    /// Set when the upload is refused on arrival (a failed format check): the transaction is
    /// recorded as rejected with its status_0 and these files in `/out`, and no work.
    pub rejection: Option<Vec<NewOutFile>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The transaction and its work are committed.
    Created(Box<mftgw_domain::Transaction>),
    /// This user has used the FTPTransactionID before; nothing was stored.
    NameReused,
}

/// The body of a file in `/out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutContent {
    /// Kept in the store itself: status files and short responses.
    Inline(Vec<u8>),
    /// A blob in the blob store.
    Blob {
        key: mftgw_domain::BlobKey,
        size: u64,
    },
}

impl OutContent {
    pub fn size(&self) -> u64 {
        match self {
            OutContent::Inline(bytes) => bytes.len() as u64,
            OutContent::Blob { size, .. } => *size,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutFile {
    pub name: String,
    pub content: OutContent,
}

/// A file in `/out` as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFileEntry {
    pub name: String,
    pub size: u64,
    pub created_at: OffsetDateTime,
}

/// One step of a transaction: from `from` to `to`, reported by `status` (recorded in its
/// history) and the files that appear in the user's `/out` with it. `finishes_work` removes
/// the transaction's outstanding work in the same commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance {
    pub transaction_id: i64,
    pub from: TransactionState,
    pub to: TransactionState,
    pub status: StatusCode,
    pub at: OffsetDateTime,
    pub files: Vec<NewOutFile>,
    pub finishes_work: bool,
    /// The claim the step is taken under, for a worker's step: refused (not applied) unless
    /// it is still the current claim of the transaction's work and its lease has not run out
    /// by the database's clock. `None` for a step nobody claimed (a backend's answer).
    pub lease: Option<LeaseToken>,
}

/// What [`crate::TransactionLog::advance`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advanced {
    /// Per step, whether it was applied now (`false`: it had been applied before).
    pub applied: Vec<bool>,
    /// Blobs of `/out` files that new files of the same name replaced, for the caller to
    /// delete.
    pub replaced_blobs: Vec<mftgw_domain::BlobKey>,
    /// How many steps were refused because the claim they were taken under is no longer
    /// current (see [`Advance::lease`]).
    pub refused_stale: usize,
}

/// What the retention sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    pub out_files: u64,
    /// Blobs no longer referenced: `/out` files and bodies of finished transactions.
    pub blob_keys: Vec<mftgw_domain::BlobKey>,
}

/// A transaction with outstanding work, and how delivering it has gone so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    pub transaction: mftgw_domain::Transaction,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    pub due_at: OffsetDateTime,
    pub last_error: Option<String>,
    /// Delivering again a transaction that was delivered before (no status changes).
    pub replay: bool,
    /// The claim this item was taken with, by [`crate::TransactionLog::claim_work`]; an item read
    /// without claiming it carries the latest claim's token.
    pub lease: LeaseToken,
}

/// Which claim of a work item a worker holds: every claim counts it up, so a worker whose
/// lease ran out (and whose work another worker claimed) is told its claim is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LeaseToken(pub i64);

/// An unrelated outbound file a backend posts for a user: the file itself (named
/// `<service>_<name>` in `/out`) and its status_3 XML, whose name the store numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbound {
    pub username: mftgw_domain::Username,
    /// Where the file and its status file go.
    pub mailbox: mftgw_domain::Mailbox,
    pub service: mftgw_domain::ServiceName,
    /// The backend's name for it; the key that makes posting it twice one post.
    pub name: String,
    /// Of the file's content: posting the name again with other content is a conflict.
    pub sha256: mftgw_domain::Sha256,
    pub skat_transaction_id: mftgw_domain::SkatTransactionId,
    pub file: NewOutFile,
    pub status_xml: Vec<u8>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecorded {
    /// The number in `status_<service>_<seq>_3.xml`.
    pub seq: i64,
    /// `false` if this file had been posted before (nothing changed now).
    pub created: bool,
    /// The SKATTransactionId it was posted with (the first time).
    pub skat_transaction_id: mftgw_domain::SkatTransactionId,
    /// Blobs of `/out` files of the same names that were replaced, for the caller to delete.
    pub replaced_blobs: Vec<mftgw_domain::BlobKey>,
}
