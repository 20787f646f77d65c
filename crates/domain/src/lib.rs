//! The gateway's rules, free of I/O: which services exist, how gateway passwords are made
//! and checked, what a user is, whether a login is allowed, how failed logins are throttled,
//! what an audit event records, what a transaction is and which states it moves through, what
//! status files say (with the error catalogue), and the eKapital Classic record formats.
//! Storage and network crates build on these types.

#![forbid(unsafe_code)]

pub mod audit;
pub mod catalogue;
pub mod delivery;
pub mod errors;
pub mod ids;
pub mod login;
pub mod password;
pub mod path_segment;
pub mod portal;
pub mod record_format;
pub mod status;
pub mod throttle;
pub mod transaction;
pub mod user;
pub mod xml_text;

mod hex;

pub use audit::{AuditEvent, AuditOutcome, UnknownAuditOutcome};
pub use catalogue::{CatalogueError, Service, ServiceCatalogue};
pub use ids::{
    AccountId, BlobKey, Cvr, FtpTransactionId, InvalidId, Mailbox, Profile, ServiceName, Sha256,
    SkatTransactionId, Username,
};
pub use login::{
    CertificateOwner, KnownUser, LoginAttempt, LoginRefusal, decide_certificate_login,
    decide_login, session_authorisation,
};
pub use password::{PasswordKey, PasswordKeyError, generate_gateway_password};
pub use path_segment::{PathSegmentError, check_path_segment};
pub use throttle::{LoginThrottle, ThrottleConfig, ThrottleVerdict};
pub use transaction::{Transaction, TransactionState, TransferMode};
pub use user::{UnknownUserState, User, UserState};
