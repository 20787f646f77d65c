//! What a backend connector does: hand one transaction's file to its backend. Some backends
//! (the heartbeat, the simulated backend) also answer on their own; others answer later
//! through the backend API.

use crate::BoxFuture;
use mftgw_domain::Transaction;
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::status::StatusCode;
use mftgw_store::OutContent;
use tokio::io::AsyncRead;

/// Why a delivery attempt did not hand the file over. Every failed attempt is tried again
/// (an upload never fails because of its backend: no status_0), a retryable one on the
/// backoff schedule, a permanent one at the schedule's longest interval until an operator
/// looks (`mftgw deliveries retry`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct DeliveryError {
    pub failure: DeliveryFailure,
    /// What happened, for the operators' listing and the log.
    pub detail: String,
}

impl DeliveryError {
    pub fn new(failure: DeliveryFailure, detail: impl Into<String>) -> Self {
        Self {
            failure,
            detail: detail.into(),
        }
    }
}

/// The kinds of delivery failure, named as metrics and logs name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryFailure {
    /// The backend could not be reached (connection refused, no route, TLS failed).
    Unreachable,
    /// No answer within the attempt timeout.
    Timeout,
    /// The backend says it cannot take files now (HTTP 5xx, 408, 429), or is down.
    Unavailable,
    /// The backend says it will not take this file (another HTTP 4xx, a redirect): trying
    /// again soon will not help.
    Refused,
    /// The gateway itself could not hand the file over: its body could not be read, the
    /// spool directory could not be written, no backend serves the service.
    Gateway,
}

impl DeliveryFailure {
    /// The stable name (metric label `reason` of `mftgw_delivery_failures_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Refused => "refused",
            Self::Gateway => "gateway",
        }
    }

    /// Whether trying again on the backoff schedule may help.
    pub fn is_retryable(self) -> bool {
        self != Self::Refused
    }
}

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
    fn deliver<'a>(&'a self, parcel: Parcel<'a>) -> BoxFuture<'a, Result<(), DeliveryError>>;

    /// Whether [`Connector::deliver`] reads the parcel's body; a backend that does not
    /// (the built-in ones) gets an empty one, and the blob store is not asked for it (on a
    /// bucket, a request per delivery).
    fn reads_the_body(&self) -> bool {
        true
    }

    /// Whether the backend answers on its own (then its work goes on after status 1).
    fn answers_on_its_own(&self) -> bool;

    /// What the backend answers on its own once it has taken `transaction`, in order; the
    /// same every time it is asked, so answers interrupted by a crash can be completed.
    /// Empty for backends that answer through the backend API.
    fn answers(&self, transaction: &Transaction) -> Vec<Answer>;
}
