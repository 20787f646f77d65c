//! The Certificate Portal's records: each person's portal account, browser sessions bound to
//! the certificate that opened them, and the registration jobs the portal queues.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// A person's portal account, keyed by the username their certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalAccount {
    /// argon2id PHC string; `None` until the first change (the password is then the username,
    /// or the operator's initial code).
    pub password_hash: Option<String>,
    pub profile: PortalProfile,
    pub initial_code: Option<InitialCode>,
}

/// A one-time first portal password handed out by an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialCode {
    /// argon2id PHC string.
    pub hash: String,
    pub expires_at: OffsetDateTime,
}

/// What the person can edit on the overview page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalProfile {
    pub se_number: Option<String>,
    pub email: Option<String>,
    /// Comma-separated interface names, `ftps` and/or `as4`.
    pub interfaces: String,
}

impl Default for PortalProfile {
    fn default() -> Self {
        Self {
            se_number: None,
            email: None,
            interfaces: "ftps".into(),
        }
    }
}

/// A browser session. Only the hash of the cookie's token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub token_hash: String,
    pub username: mftgw_domain::Username,
    /// The certificate that logged in; no other certificate may use the session.
    pub cert_fingerprint: String,
    pub csrf_token: String,
    pub must_change_password: bool,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationJobState {
    Queued,
    Done,
    Failed,
}

impl RegistrationJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for RegistrationJobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegistrationJobState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "queued" => Ok(Self::Queued),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown registration job state {other:?}")),
        }
    }
}

/// A request to register a certificate, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationJob {
    pub id: i64,
    pub username: mftgw_domain::Username,
    pub cert_fingerprint: String,
    pub state: RegistrationJobState,
    pub requested_at: OffsetDateTime,
    /// Why a failed job failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistrationJob {
    pub username: mftgw_domain::Username,
    pub cert_fingerprint: String,
    pub cert_der: Vec<u8>,
    pub requested_at: OffsetDateTime,
}

/// A queued job with the certificate it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRegistration {
    pub job: RegistrationJob,
    pub cert_der: Vec<u8>,
}
