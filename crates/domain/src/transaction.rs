//! Transactions (SPEC §4): what an accepted upload is, the states it moves through and the
//! status file each move produces, how SKATTransactionIds are made, and which upload names
//! can be a FTPTransactionID.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use crate::errors::ErrorEntry;
use crate::ids::{
    AccountId, BlobKey, Cvr, FtpTransactionId, InvalidId, Mailbox, ServiceName, Sha256,
    SkatTransactionId, Username,
};
use crate::path_segment::{MAX_SEGMENT_BYTES, PathSegmentError, check_path_segment};
use crate::status::{StatusCode, StatusFile};

/// The built-in service that answers every upload with 1, 2, a response file and 3.
pub const HEARTBEAT_SERVICE: &str = "FTPSGW.Heartbeat";

/// Where a transaction stands. It only moves forward: `Received → Delivered → Accepted →
/// Answered`, or to `Rejected` from any state that is not final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// Durably stored, not yet taken by the backend.
    Received,
    /// The backend took the file (status 1).
    Delivered,
    /// The backend accepted the file (status 2).
    Accepted,
    /// The backend answered with a response file (status 3). Final.
    Answered,
    /// The gateway or the backend refused the file (status 0). Final.
    Rejected,
}

impl TransactionState {
    pub const ALL: [TransactionState; 5] = [
        Self::Received,
        Self::Delivered,
        Self::Accepted,
        Self::Answered,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Delivered => "delivered",
            Self::Accepted => "accepted",
            Self::Answered => "answered",
            Self::Rejected => "rejected",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Answered | Self::Rejected)
    }

    /// The state a status of `code` moves this transaction to, if it may: statuses come in
    /// the order 1, 2, 3, and a 0 can come at any stage before the end.
    pub fn after(self, code: StatusCode) -> Option<TransactionState> {
        match (self, code) {
            (state, _) if state.is_final() => None,
            (_, StatusCode::Error) => Some(Self::Rejected),
            (Self::Received, StatusCode::Delivered) => Some(Self::Delivered),
            (Self::Delivered, StatusCode::Accepted) => Some(Self::Accepted),
            (Self::Accepted, StatusCode::Exposed) => Some(Self::Answered),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transaction state {0:?}")]
pub struct UnknownTransactionState(pub String);

impl std::str::FromStr for TransactionState {
    type Err = UnknownTransactionState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownTransactionState(text.to_owned()))
    }
}

/// The FTP `TYPE` in force while a file was uploaded: what the gateway stored is what
/// that mode put on the wire (CRLF line ends in ASCII mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferMode {
    /// `TYPE A`.
    Ascii,
    /// `TYPE I`.
    Binary,
}

impl TransferMode {
    /// `A` or `I`, as `TYPE` names it (and the store, the API and the spool show it).
    pub fn as_char(self) -> char {
        match self {
            Self::Ascii => 'A',
            Self::Binary => 'I',
        }
    }

    /// The mode `TYPE` names `letter`.
    pub fn from_char(letter: char) -> Option<Self> {
        match letter {
            'A' => Some(Self::Ascii),
            'I' => Some(Self::Binary),
            _ => None,
        }
    }
}

impl fmt::Display for TransferMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// A transaction as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub id: i64,
    pub skat_transaction_id: SkatTransactionId,
    pub username: Username,
    /// Where its status files go (chosen by the listener it came in on).
    pub mailbox: Mailbox,
    /// The uploader's company (none for a person) and account, as their certificate says.
    pub cvr: Option<Cvr>,
    pub account: AccountId,
    pub service: ServiceName,
    /// The name the user uploaded; unique per user, forever.
    pub ftp_transaction_id: FtpTransactionId,
    /// `/CVR_<cvr>/<account>/<service>/<name>` (a person's `/<account>/<service>/<name>`), as
    /// status files show it.
    pub upload_path: String,
    pub size: u64,
    pub sha256: Sha256,
    pub transfer_type: TransferMode,
    pub blob_key: Option<BlobKey>,
    pub state: TransactionState,
    pub received_at: OffsetDateTime,
}

impl Transaction {
    /// The status file that records this transaction reaching `code`.
    pub fn status_file(
        &self,
        code: StatusCode,
        at: OffsetDateTime,
        response_file: Option<String>,
        error: Option<ErrorEntry>,
    ) -> StatusFile {
        StatusFile {
            code,
            service: self.service.clone(),
            ftp_transaction_id: self.ftp_transaction_id.to_string(),
            upload_path: Some(self.upload_path.clone()),
            skat_transaction_id: Some(self.skat_transaction_id.clone()),
            at,
            response_file,
            error,
        }
    }
}

/// The internal path of an upload, `/CVR_<cvr>/<account>/<service>/<name>`, or a person's
/// `/<account>/<service>/<name>`.
pub fn upload_path(
    cvr: Option<&Cvr>,
    account: &AccountId,
    service: &ServiceName,
    name: &str,
) -> String {
    match cvr {
        Some(cvr) => format!("/CVR_{cvr}/{account}/{service}/{name}"),
        None => format!("/{account}/{service}/{name}"),
    }
}

/// Makes SKATTransactionIds of the form `ci<epoch-ms>_<node>_<seq>`, as in the client guide's
/// examples. The sequence restarts with the process; the millisecond clock has moved on by
/// then, and the store's unique index catches the impossible rest.
#[derive(Debug)]
pub struct SkatTransactionIds {
    node: String,
    sequence: AtomicU64,
}

impl SkatTransactionIds {
    /// Ids for the node `node`: it must leave room for a time and a sequence number in a
    /// valid [`SkatTransactionId`] (visible ASCII, 40 characters at most).
    pub fn new(node: &str) -> Result<Self, InvalidId> {
        if node.len() > 40 {
            return Err(InvalidId {
                kind: "node id",
                text: node.to_owned(),
                expected: "at most 40 characters",
            });
        }
        SkatTransactionId::parse(format!("ci{}_{node}_{}", i64::MAX, u64::MAX))?;
        Ok(Self {
            node: node.to_owned(),
            sequence: AtomicU64::new(0),
        })
    }

    /// The node whose ids these are.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn next(&self, now: OffsetDateTime) -> SkatTransactionId {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let millis = now.unix_timestamp_nanos() / 1_000_000;
        SkatTransactionId::parse(format!("ci{millis}_{}_{sequence}", self.node))
            .expect("the node was checked to fit when the generator was made")
    }
}

/// Why an upload name cannot be a FTPTransactionID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransactionIdError {
    #[error("{0}")]
    Segment(#[from] PathSegmentError),
    #[error(
        "the name is too long: the files it produces in /out (status_<service>_<name>_<code>.xml) must fit in {MAX_SEGMENT_BYTES} bytes, so at most {max} bytes here"
    )]
    TooLongForStatusFiles { max: usize },
    #[error("names starting with `outbound-` are reserved for the gateway's outbound files")]
    Reserved,
}

/// Accepts `name` as the FTPTransactionID of an upload to `service`: a plain file name short
/// enough that every file named after it in `/out` is itself a valid name.
pub fn check_transaction_id(
    service: &str,
    name: &str,
) -> Result<FtpTransactionId, TransactionIdError> {
    check_path_segment(name)?;
    if name.starts_with(crate::status::OUTBOUND_PREFIX) {
        return Err(TransactionIdError::Reserved);
    }
    let max = max_transaction_id_bytes(service);
    if name.len() > max {
        return Err(TransactionIdError::TooLongForStatusFiles { max });
    }
    Ok(FtpTransactionId::parse(name).expect("a path segment is a FTPTransactionID"))
}

fn max_transaction_id_bytes(service: &str) -> usize {
    let status_file = "status__".len() + service.len() + "_0.xml".len();
    let longest_derived = if service == HEARTBEAT_SERVICE {
        status_file.max(heartbeat_response_name("").len())
    } else {
        status_file
    };
    MAX_SEGMENT_BYTES.saturating_sub(longest_derived)
}

/// `FTPSGW.Heartbeat_in_<FTPTransactionID>_response.txt`.
pub fn heartbeat_response_name(ftp_transaction_id: &str) -> String {
    format!("{HEARTBEAT_SERVICE}_in_{ftp_transaction_id}_response.txt")
}

/// The heartbeat's answer: enough for an integrator to match it to their upload.
pub fn heartbeat_response_body(transaction: &Transaction, at: OffsetDateTime) -> String {
    format!(
        "FTPS Gateway heartbeat\r\nFTPTransaktionsId: {}\r\nSKATTransactionId: {}\r\nReceived bytes: {}\r\nSHA-256: {}\r\nAnswered: {}\r\n",
        transaction.ftp_transaction_id,
        transaction.skat_transaction_id,
        transaction.size,
        transaction.sha256,
        crate::status::copenhagen_timestamp(at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn states_move_forward_only() {
        use StatusCode as Code;
        use TransactionState as State;
        assert_eq!(
            State::Received.after(Code::Delivered),
            Some(State::Delivered)
        );
        assert_eq!(
            State::Delivered.after(Code::Accepted),
            Some(State::Accepted)
        );
        assert_eq!(State::Accepted.after(Code::Exposed), Some(State::Answered));
        for state in [State::Received, State::Delivered, State::Accepted] {
            assert_eq!(state.after(Code::Error), Some(State::Rejected), "{state:?}");
        }
        assert_eq!(State::Received.after(Code::Accepted), None);
        assert_eq!(State::Received.after(Code::Exposed), None);
        assert_eq!(State::Accepted.after(Code::Delivered), None);
        for code in [Code::Error, Code::Delivered, Code::Accepted, Code::Exposed] {
            assert_eq!(State::Answered.after(code), None);
            assert_eq!(State::Rejected.after(code), None);
        }
    }

    #[test]
    fn state_names_round_trip() {
        for state in TransactionState::ALL {
            assert_eq!(state.as_str().parse(), Ok(state));
        }
        assert!("sent".parse::<TransactionState>().is_err());
    }

    #[test]
    fn skat_transaction_ids_are_unique_and_shaped_like_the_guide() {
        let ids = SkatTransactionIds::new("31616756").unwrap();
        let at = datetime!(2020-12-10 13:30:02.916 UTC);
        assert_eq!(ids.next(at), "ci1607607002916_31616756_1");
        assert_eq!(ids.next(at), "ci1607607002916_31616756_2");
    }

    #[test]
    fn transaction_ids_must_leave_room_for_their_status_files() {
        let service = "Manifest.MidlertidigOpbevaringOpret";
        let max = 255 - "status__".len() - service.len() - "_0.xml".len();
        let longest = check_transaction_id(service, &"a".repeat(max));
        assert_eq!(longest.map(|id| id.to_string()), Ok("a".repeat(max)));
        assert_eq!(
            check_transaction_id(service, &"a".repeat(max + 1)),
            Err(TransactionIdError::TooLongForStatusFiles { max })
        );
        let heartbeat_max = 255 - heartbeat_response_name("").len();
        assert!(check_transaction_id(HEARTBEAT_SERVICE, &"a".repeat(heartbeat_max)).is_ok());
        assert!(check_transaction_id(HEARTBEAT_SERVICE, &"a".repeat(heartbeat_max + 1)).is_err());
        assert_eq!(
            check_transaction_id(service, ".."),
            Err(TransactionIdError::Segment(PathSegmentError::DotName))
        );
        assert!(check_transaction_id(service, "æøå fil.xml").is_ok());
        assert_eq!(
            check_transaction_id(service, "outbound-1"),
            Err(TransactionIdError::Reserved)
        );
    }

    #[test]
    fn heartbeat_response_is_named_as_in_the_guide() {
        assert_eq!(
            heartbeat_response_name("ping20201210143002441-hb01.xml"),
            "FTPSGW.Heartbeat_in_ping20201210143002441-hb01.xml_response.txt"
        );
    }
}
