//! Audit events: one record per security decision and transaction step (SPEC §8). The
//! audit log is append-only; this module only says what a record holds.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// Why the gateway refused or noted something, where no more specific vocabulary says it
/// (a login decision is a `LoginRefusal`, a certificate's an `IdentityRefusal`, the TLS
/// layer's its own). The names are a contract: operators alert on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The store could not answer, so the decision could not be made.
    StoreUnavailable,
    /// The certificate is outside its validity.
    CertificateExpired,
    /// A renewal replaced the certificate a session was opened with.
    CertificateReplaced,
    /// A portal session cookie came with another certificate than the one that opened it.
    OtherCertificate,
    /// A form's CSRF token did not match the session's.
    CsrfTokenMismatch,
    /// A portal password change named the wrong current password.
    WrongCurrentPassword,
    /// Registration was asked for a certificate that has nothing to register.
    NothingToRegister,
    /// The certificate registered already was its user's current one.
    AlreadyCurrent,
    /// A queued portal registration was refused.
    RegistrationRefused,
}

impl Reason {
    /// The stable name, as the audit log records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StoreUnavailable => "store_unavailable",
            Self::CertificateExpired => "certificate_expired",
            Self::CertificateReplaced => "certificate_replaced",
            Self::OtherCertificate => "other_certificate",
            Self::CsrfTokenMismatch => "csrf_token_mismatch",
            Self::WrongCurrentPassword => "wrong_current_password",
            Self::NothingToRegister => "nothing_to_register",
            Self::AlreadyCurrent => "already_current",
            Self::RegistrationRefused => "registration_refused",
        }
    }
}

/// How a decision went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    Allowed,
    Refused,
    /// A step that is neither allowed nor refused, such as a transfer finishing.
    Info,
}

impl AuditOutcome {
    /// The stable name used in storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Refused => "refused",
            Self::Info => "info",
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit outcome {0:?} (expected allowed, refused or info)")]
pub struct UnknownAuditOutcome(pub String);

impl FromStr for AuditOutcome {
    type Err = UnknownAuditOutcome;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "allowed" => Ok(Self::Allowed),
            "refused" => Ok(Self::Refused),
            "info" => Ok(Self::Info),
            other => Err(UnknownAuditOutcome(other.to_owned())),
        }
    }
}

/// One audit record. Build it with [`AuditEvent::allowed`], [`AuditEvent::refused`] or
/// [`AuditEvent::info`] and the `with_*` methods:
///
/// ```
/// # use mftgw_domain::AuditEvent;
/// let event = AuditEvent::refused(time::OffsetDateTime::now_utc(), "ftps.login", "wrong_password")
///     .with_username("CVR_12345678_UID_1")
///     .with_peer_ip("192.0.2.7");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    /// What was decided, dotted by area: `ftps.tls`, `ftps.login`, `admin.register`, …
    pub action: String,
    pub outcome: AuditOutcome,
    /// A stable snake_case code, such as a [`crate::LoginRefusal`] audit reason.
    pub reason: Option<String>,
    pub username: Option<String>,
    pub peer_ip: Option<String>,
    pub cert_fingerprint: Option<String>,
    /// Anything else worth keeping, as a JSON value.
    pub detail: Option<serde_json::Value>,
    /// The node that wrote the event (its `[transactions] node_id`).
    pub node: Option<String>,
}

impl AuditEvent {
    pub fn new(at: OffsetDateTime, action: impl Into<String>, outcome: AuditOutcome) -> Self {
        Self {
            at,
            action: action.into(),
            outcome,
            reason: None,
            username: None,
            peer_ip: None,
            cert_fingerprint: None,
            detail: None,
            node: None,
        }
    }

    pub fn allowed(at: OffsetDateTime, action: impl Into<String>) -> Self {
        Self::new(at, action, AuditOutcome::Allowed)
    }

    pub fn refused(
        at: OffsetDateTime,
        action: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(at, action, AuditOutcome::Refused).with_reason(reason)
    }

    pub fn info(at: OffsetDateTime, action: impl Into<String>) -> Self {
        Self::new(at, action, AuditOutcome::Info)
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn with_username(mut self, username: impl AsRef<str>) -> Self {
        self.username = Some(username.as_ref().to_owned());
        self
    }

    pub fn with_peer_ip(mut self, peer_ip: impl Into<String>) -> Self {
        self.peer_ip = Some(peer_ip.into());
        self
    }

    pub fn with_cert_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.cert_fingerprint = Some(fingerprint.into());
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_reasons_keep_their_names() {
        let names: Vec<&str> = [
            Reason::StoreUnavailable,
            Reason::CertificateExpired,
            Reason::CertificateReplaced,
            Reason::OtherCertificate,
            Reason::CsrfTokenMismatch,
            Reason::WrongCurrentPassword,
            Reason::NothingToRegister,
            Reason::AlreadyCurrent,
            Reason::RegistrationRefused,
        ]
        .map(Reason::as_str)
        .into();
        assert_eq!(
            names,
            [
                "store_unavailable",
                "certificate_expired",
                "certificate_replaced",
                "other_certificate",
                "csrf_token_mismatch",
                "wrong_current_password",
                "nothing_to_register",
                "already_current",
                "registration_refused",
            ]
        );
    }

    #[test]
    fn outcome_names_round_trip() {
        for outcome in [
            AuditOutcome::Allowed,
            AuditOutcome::Refused,
            AuditOutcome::Info,
        ] {
            assert_eq!(outcome.as_str().parse::<AuditOutcome>(), Ok(outcome));
        }
        assert!("denied".parse::<AuditOutcome>().is_err());
    }

    #[test]
    fn builders_fill_the_fields() {
        let at = datetime!(2025-03-01 10:00 UTC);
        let event = AuditEvent::refused(at, "ftps.login", "wrong_password")
            .with_username("CVR_12345678_UID_1")
            .with_peer_ip("192.0.2.7")
            .with_cert_fingerprint("aa11")
            .with_detail(serde_json::json!({ "attempt": 4 }));
        assert_eq!(event.outcome, AuditOutcome::Refused);
        assert_eq!(event.reason.as_deref(), Some("wrong_password"));
        assert_eq!(event.username.as_deref(), Some("CVR_12345678_UID_1"));
        assert_eq!(event.peer_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(event.cert_fingerprint.as_deref(), Some("aa11"));
        assert_eq!(event.detail, Some(serde_json::json!({ "attempt": 4 })));

        let info = AuditEvent::info(at, "ftps.tls");
        assert_eq!((info.outcome, info.reason), (AuditOutcome::Info, None));
        assert_eq!(
            AuditEvent::allowed(at, "ftps.login").outcome,
            AuditOutcome::Allowed
        );
    }
}
