//! What a backend connector does: hand one transaction's file to its backend. Some backends
//! (the heartbeat, the simulated backend) also answer on their own; others answer later
//! through the backend API.

use crate::BoxFuture;
use mftgw_domain::Transaction;
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::status::StatusCode;
use mftgw_store::OutContent;
use tokio::io::AsyncRead;

/// One transaction's file on its way to the backend.
pub struct Parcel<'a> {
    pub transaction: &'a Transaction,
    pub body: Box<dyn AsyncRead + Send + Unpin>,
}

/// What a backend says about a transaction it took, in the order it says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Status 2.
    Accept,
    /// A response file in `/out` (its full name) and status 3.
    Respond { name: String, content: OutContent },
    /// Status 0 with the backend's error.
    Reject(ErrorEntry),
}

impl Answer {
    pub fn status(&self) -> StatusCode {
        match self {
            Answer::Accept => StatusCode::Accepted,
            Answer::Respond { .. } => StatusCode::Exposed,
            Answer::Reject(_) => StatusCode::Error,
        }
    }
}

pub trait Connector: Send + Sync + 'static {
    /// Hands the file to the backend; `Ok` means the backend has taken it (status 1). The
    /// SKATTransactionId goes with it as the idempotency key: delivery is at least once.
    fn deliver<'a>(&'a self, parcel: Parcel<'a>) -> BoxFuture<'a, Result<(), String>>;

    /// Whether the backend answers on its own (then its work goes on after status 1).
    fn answers_on_its_own(&self) -> bool;

    /// What the backend answers on its own once it has taken `transaction`, in order; the
    /// same every time it is asked, so answers interrupted by a crash can be completed.
    /// Empty for backends that answer through the backend API.
    fn answers(&self, transaction: &Transaction) -> Vec<Answer>;
}
