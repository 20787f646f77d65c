//! The FTPS login decision (SPEC §2, Login) as a pure function of what the client presented
//! and what the store knows.
//!
//! The client always gets the same `530` whatever the reason; the reason returned here is for
//! the audit log only, so the order of the checks is free to favour a useful audit record.

use time::OffsetDateTime;

use crate::ids::Username;
use crate::password::PasswordKey;
use crate::user::{User, UserState};

/// What the client presented on the control connection.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    /// The argument of `USER`.
    pub presented_username: String,
    /// The gateway username derived from the client certificate, or the code of the reason the
    /// certificate cannot name a gateway user (for example `foces_unsupported`).
    pub cert_username: Result<Username, String>,
    pub cert_fingerprint: String,
    /// The argument of `PASS`.
    pub password: String,
}

/// What the store knows about the user named by the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownUser {
    pub user: User,
    pub current_cert_fingerprint: String,
    pub password_hash: String,
    /// Whether the certificate is set up for FTPS: the portal's interface choice, FTPS unless
    /// the person chose AS4 only.
    pub ftps_chosen: bool,
}

/// Who registered a certificate, and whether it is still their current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateOwner {
    pub username: Username,
    pub current: bool,
}

/// Why a login was refused. [`decide_login`] returns the certificate, password and state
/// reasons; the FTPS endpoint reports `Throttled`, `Blocked` and `TooManySessions` itself, so
/// that every refusal reaches the audit log under one vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("the certificate does not identify a gateway user: {0}")]
    IdentityRefused(String),
    #[error("USER does not match the username derived from the certificate")]
    UsernameMismatch,
    #[error("the certificate was never registered")]
    UnknownCertificate,
    #[error("the certificate was replaced by a newer registration")]
    ReplacedCertificate,
    #[error("wrong gateway password")]
    WrongPassword,
    #[error("the user is registered but not yet active")]
    NotYetActive,
    #[error("the user chose AS4 only in the Certificate Portal, not FTPS")]
    FtpsNotChosen,
    #[error("the user is suspended")]
    Suspended,
    #[error("the user is deleted")]
    Deleted,
    #[error("too many recent failed logins; the attempt was delayed")]
    Throttled,
    #[error("too many failed logins; temporarily blocked")]
    Blocked,
    #[error("too many concurrent sessions")]
    TooManySessions,
}

impl LoginRefusal {
    /// A stable snake_case name for the kind of refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::IdentityRefused(_) => "identity_refused",
            Self::UsernameMismatch => "username_mismatch",
            Self::UnknownCertificate => "unknown_certificate",
            Self::ReplacedCertificate => "replaced_certificate",
            Self::WrongPassword => "wrong_password",
            Self::NotYetActive => "not_yet_active",
            Self::FtpsNotChosen => "ftps_interface_not_chosen",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
            Self::Throttled => "throttled",
            Self::Blocked => "blocked",
            Self::TooManySessions => "too_many_sessions",
        }
    }

    /// The reason to write to the audit log: the identity code itself (such as
    /// `foces_unsupported`) for an identity refusal, otherwise [`LoginRefusal::code`].
    pub fn audit_reason(&self) -> &str {
        match self {
            Self::IdentityRefused(identity_code) => identity_code,
            other => other.code(),
        }
    }
}

/// Decides whether `attempt` may log in.
///
/// `known` is the user named by the certificate, `fingerprint_owner` whoever ever registered
/// the presented certificate. The password is evaluated only for the user's current
/// certificate. Deleted and suspended users are refused before the password is checked
/// (an operator's decision outranks it); a pending user only after, so the audit shows that
/// the real holder came early rather than that someone guessed.
pub fn decide_login(
    attempt: &LoginAttempt,
    known: Option<&KnownUser>,
    fingerprint_owner: Option<&CertificateOwner>,
    key: &PasswordKey,
    now: OffsetDateTime,
) -> Result<(), LoginRefusal> {
    let cert_username = attempt
        .cert_username
        .as_ref()
        .map_err(|identity_code| LoginRefusal::IdentityRefused(identity_code.clone()))?;
    if attempt.presented_username != cert_username.as_str() {
        return Err(LoginRefusal::UsernameMismatch);
    }
    let known = current_holder(known, &attempt.cert_fingerprint, fingerprint_owner)?;
    let state = known.user.effective_state(now);
    refuse_barred(state)?;
    if !key.verify(&known.password_hash, &attempt.password) {
        return Err(LoginRefusal::WrongPassword);
    }
    if state == UserState::PendingActivation {
        return Err(LoginRefusal::NotYetActive);
    }
    if !known.ftps_chosen {
        return Err(LoginRefusal::FtpsNotChosen);
    }
    Ok(())
}

/// Decides a login by the certificate alone (the legacy "Secure FTP" profile, where `USER`
/// and `PASS` are not used): the same rules as [`decide_login`] without the username and
/// password. `cert_username` is what the certificate names, or the code of why it names no
/// one.
pub fn decide_certificate_login(
    cert_username: &Result<Username, String>,
    cert_fingerprint: &str,
    known: Option<&KnownUser>,
    fingerprint_owner: Option<&CertificateOwner>,
    now: OffsetDateTime,
) -> Result<(), LoginRefusal> {
    decide_web_service_caller(
        cert_username,
        cert_fingerprint,
        known,
        fingerprint_owner,
        now,
    )?;
    session_authorisation(known, cert_fingerprint, now)
}

/// The user named by the certificate, if `fingerprint` is their current certificate.
fn current_holder<'a>(
    known: Option<&'a KnownUser>,
    fingerprint: &str,
    fingerprint_owner: Option<&CertificateOwner>,
) -> Result<&'a KnownUser, LoginRefusal> {
    let known = known.ok_or(LoginRefusal::UnknownCertificate)?;
    if known.current_cert_fingerprint != fingerprint {
        return Err(match fingerprint_owner {
            Some(owner) if owner.username == known.user.username && !owner.current => {
                LoginRefusal::ReplacedCertificate
            }
            _ => LoginRefusal::UnknownCertificate,
        });
    }
    Ok(known)
}

/// An operator's decision outranks everything else.
fn refuse_barred(state: UserState) -> Result<(), LoginRefusal> {
    match state {
        UserState::Deleted => Err(LoginRefusal::Deleted),
        UserState::Suspended => Err(LoginRefusal::Suspended),
        UserState::PendingActivation | UserState::Active => Ok(()),
    }
}

/// Whether a session that logged in with the certificate `fingerprint` may go on, now that
/// the store says `known` (`None`: the user is gone). The same rules as [`decide_login`]
/// past the password: the certificate is still the current one, the user still active, FTPS
/// still chosen.
pub fn session_authorisation(
    known: Option<&KnownUser>,
    fingerprint: &str,
    now: OffsetDateTime,
) -> Result<(), LoginRefusal> {
    let known = active_holder(known, fingerprint, now)?;
    if !known.ftps_chosen {
        return Err(LoginRefusal::FtpsNotChosen);
    }
    Ok(())
}

/// Decides whether the holder of a certificate may call a web service (EMCS), whose
/// messages carry the certificate: as [`decide_certificate_login`], except that the choice
/// between FTPS and AS4 a user makes in the Certificate Portal is not asked, since it
/// chooses neither.
pub fn decide_web_service_caller(
    cert_username: &Result<Username, String>,
    cert_fingerprint: &str,
    known: Option<&KnownUser>,
    fingerprint_owner: Option<&CertificateOwner>,
    now: OffsetDateTime,
) -> Result<(), LoginRefusal> {
    cert_username
        .as_ref()
        .map_err(|identity_code| LoginRefusal::IdentityRefused(identity_code.clone()))?;
    let known = current_holder(known, cert_fingerprint, fingerprint_owner)?;
    active_holder(Some(known), cert_fingerprint, now).map(|_| ())
}

/// The user, if `fingerprint` is their current certificate and they are active at `now`.
fn active_holder<'a>(
    known: Option<&'a KnownUser>,
    fingerprint: &str,
    now: OffsetDateTime,
) -> Result<&'a KnownUser, LoginRefusal> {
    let known = known.ok_or(LoginRefusal::UnknownCertificate)?;
    if known.current_cert_fingerprint != fingerprint {
        return Err(LoginRefusal::ReplacedCertificate);
    }
    let state = known.user.effective_state(now);
    refuse_barred(state)?;
    if state == UserState::PendingActivation {
        return Err(LoginRefusal::NotYetActive);
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const USERNAME: &str = "CVR_12345678_UID_1";
    const CURRENT_FINGERPRINT: &str = "aa11";
    const OLD_FINGERPRINT: &str = "bb22";
    const PASSWORD: &str = "K7mPq2xYz9RtW4vN8bHc3dFg";
    const NOW: OffsetDateTime = datetime!(2025-03-01 10:00 UTC);

    fn key() -> PasswordKey {
        PasswordKey::from_bytes([7; 32])
    }

    fn attempt() -> LoginAttempt {
        LoginAttempt {
            presented_username: USERNAME.into(),
            cert_username: Ok(USERNAME.parse().unwrap()),
            cert_fingerprint: CURRENT_FINGERPRINT.into(),
            password: PASSWORD.into(),
        }
    }

    fn known(state: UserState, activate_at: Option<OffsetDateTime>) -> KnownUser {
        KnownUser {
            user: User {
                id: 1,
                username: USERNAME.parse().unwrap(),
                cvr: Some("12345678".parse().unwrap()),
                account: "UID_1".parse().unwrap(),
                kind: "voces".into(),
                state,
                activate_at,
                created_at: datetime!(2025-01-01 00:00 UTC),
            },
            current_cert_fingerprint: CURRENT_FINGERPRINT.into(),
            password_hash: key().hash(PASSWORD),
            ftps_chosen: true,
        }
    }

    fn owner(username: &str, current: bool) -> CertificateOwner {
        CertificateOwner {
            username: username.parse().unwrap(),
            current,
        }
    }

    struct Case {
        name: &'static str,
        attempt: LoginAttempt,
        known: Option<KnownUser>,
        fingerprint_owner: Option<CertificateOwner>,
        expected: Result<(), LoginRefusal>,
    }

    fn case(
        name: &'static str,
        attempt: LoginAttempt,
        known: Option<KnownUser>,
        fingerprint_owner: Option<CertificateOwner>,
        expected: Result<(), LoginRefusal>,
    ) -> Case {
        Case {
            name,
            attempt,
            known,
            fingerprint_owner,
            expected,
        }
    }

    fn attempt_with(change: impl FnOnce(&mut LoginAttempt)) -> LoginAttempt {
        let mut attempt = attempt();
        change(&mut attempt);
        attempt
    }

    #[test]
    fn decisions() {
        use LoginRefusal::*;
        let active = || Some(known(UserState::Active, None));
        let pending_until = |at| Some(known(UserState::PendingActivation, Some(at)));
        let current = || Some(owner(USERNAME, true));
        let replaced = || Some(owner(USERNAME, false));
        let old_cert = || attempt_with(|a| a.cert_fingerprint = OLD_FINGERPRINT.into());
        let wrong_password = || attempt_with(|a| a.password = "guess".into());
        let later = NOW + time::Duration::minutes(15);
        let as4_only = || {
            let mut known = known(UserState::Active, None);
            known.ftps_chosen = false;
            Some(known)
        };

        let cases = [
            case(
                "active user, all right",
                attempt(),
                active(),
                current(),
                Ok(()),
            ),
            case(
                "activation time has come",
                attempt(),
                pending_until(NOW),
                current(),
                Ok(()),
            ),
            case(
                "FOCES certificate",
                attempt_with(|a| a.cert_username = Err("foces_unsupported".into())),
                None,
                None,
                Err(IdentityRefused("foces_unsupported".into())),
            ),
            case(
                "USER differs from the certificate",
                attempt_with(|a| a.presented_username = "CVR_12345678_UID_2".into()),
                active(),
                current(),
                Err(UsernameMismatch),
            ),
            case(
                "unknown user",
                attempt(),
                None,
                None,
                Err(UnknownCertificate),
            ),
            case(
                "known user, certificate never registered",
                old_cert(),
                active(),
                None,
                Err(UnknownCertificate),
            ),
            case(
                "replaced by a renewal",
                old_cert(),
                active(),
                replaced(),
                Err(ReplacedCertificate),
            ),
            case(
                "registered to someone else",
                old_cert(),
                active(),
                Some(owner("CVR_87654321_UID_9", false)),
                Err(UnknownCertificate),
            ),
            case(
                "wrong password",
                wrong_password(),
                active(),
                current(),
                Err(WrongPassword),
            ),
            case(
                "not yet active",
                attempt(),
                pending_until(later),
                current(),
                Err(NotYetActive),
            ),
            case(
                "pending without activation time",
                attempt(),
                Some(known(UserState::PendingActivation, None)),
                current(),
                Err(NotYetActive),
            ),
            case(
                "pending, wrong password",
                wrong_password(),
                pending_until(later),
                current(),
                Err(WrongPassword),
            ),
            case(
                "suspended",
                attempt(),
                Some(known(UserState::Suspended, None)),
                current(),
                Err(Suspended),
            ),
            case(
                "suspended, wrong password",
                wrong_password(),
                Some(known(UserState::Suspended, None)),
                current(),
                Err(Suspended),
            ),
            case(
                "deleted",
                attempt(),
                Some(known(UserState::Deleted, None)),
                current(),
                Err(Deleted),
            ),
            case(
                "AS4 only in the portal",
                attempt(),
                as4_only(),
                current(),
                Err(FtpsNotChosen),
            ),
            case(
                "AS4 only, wrong password",
                wrong_password(),
                as4_only(),
                current(),
                Err(WrongPassword),
            ),
            case(
                "deleted, replaced certificate",
                old_cert(),
                Some(known(UserState::Deleted, None)),
                replaced(),
                Err(ReplacedCertificate),
            ),
        ];
        for case in cases {
            let decision = decide_login(
                &case.attempt,
                case.known.as_ref(),
                case.fingerprint_owner.as_ref(),
                &key(),
                NOW,
            );
            assert_eq!(decision, case.expected, "{}", case.name);
            // By the certificate alone: what the right USER and PASS would have got.
            let by_certificate = decide_certificate_login(
                &case.attempt.cert_username,
                &case.attempt.cert_fingerprint,
                case.known.as_ref(),
                case.fingerprint_owner.as_ref(),
                NOW,
            );
            let mut right_credentials = case.attempt.clone();
            right_credentials.password = PASSWORD.into();
            if let Ok(username) = &right_credentials.cert_username {
                right_credentials.presented_username = username.to_string();
            }
            let expected = decide_login(
                &right_credentials,
                case.known.as_ref(),
                case.fingerprint_owner.as_ref(),
                &key(),
                NOW,
            );
            assert_eq!(by_certificate, expected, "by certificate: {}", case.name);
            // As a web-service caller: the same, but the portal's choice of interface is
            // not asked.
            let as_caller = decide_web_service_caller(
                &case.attempt.cert_username,
                &case.attempt.cert_fingerprint,
                case.known.as_ref(),
                case.fingerprint_owner.as_ref(),
                NOW,
            );
            let expected = match expected {
                Err(LoginRefusal::FtpsNotChosen) => Ok(()),
                other => other,
            };
            assert_eq!(
                as_caller, expected,
                "as a web-service caller: {}",
                case.name
            );
        }
    }

    #[test]
    fn password_is_not_evaluated_for_a_certificate_that_is_not_current() {
        // The stored hash is garbage: if it were evaluated the answer would be WrongPassword.
        let mut user = known(UserState::Active, None);
        user.password_hash = "not a hash".into();
        let mut attempt = attempt();
        attempt.cert_fingerprint = OLD_FINGERPRINT.into();
        assert_eq!(
            decide_login(
                &attempt,
                Some(&user),
                Some(&owner(USERNAME, false)),
                &key(),
                NOW
            ),
            Err(LoginRefusal::ReplacedCertificate)
        );
    }

    #[test]
    fn a_live_session_is_checked_against_the_current_state() {
        let active = known(UserState::Active, None);
        assert_eq!(
            session_authorisation(Some(&active), CURRENT_FINGERPRINT, NOW),
            Ok(())
        );
        assert_eq!(
            session_authorisation(Some(&active), OLD_FINGERPRINT, NOW),
            Err(LoginRefusal::ReplacedCertificate)
        );
        assert_eq!(
            session_authorisation(None, CURRENT_FINGERPRINT, NOW),
            Err(LoginRefusal::UnknownCertificate)
        );
        for (state, refusal) in [
            (UserState::Suspended, LoginRefusal::Suspended),
            (UserState::Deleted, LoginRefusal::Deleted),
        ] {
            assert_eq!(
                session_authorisation(Some(&known(state, None)), CURRENT_FINGERPRINT, NOW),
                Err(refusal)
            );
        }
        let as4_only = KnownUser {
            ftps_chosen: false,
            ..active
        };
        assert_eq!(
            session_authorisation(Some(&as4_only), CURRENT_FINGERPRINT, NOW),
            Err(LoginRefusal::FtpsNotChosen)
        );
    }

    #[test]
    fn codes_are_distinct_snake_case() {
        let refusals = [
            LoginRefusal::IdentityRefused("x".into()),
            LoginRefusal::UsernameMismatch,
            LoginRefusal::UnknownCertificate,
            LoginRefusal::ReplacedCertificate,
            LoginRefusal::WrongPassword,
            LoginRefusal::NotYetActive,
            LoginRefusal::Suspended,
            LoginRefusal::Deleted,
            LoginRefusal::Throttled,
            LoginRefusal::Blocked,
            LoginRefusal::TooManySessions,
        ];
        let mut codes: Vec<&str> = refusals.iter().map(LoginRefusal::code).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), refusals.len());
    }

    #[test]
    fn audit_reason_names_the_identity_code() {
        assert_eq!(
            LoginRefusal::IdentityRefused("foces_unsupported".into()).audit_reason(),
            "foces_unsupported"
        );
        assert_eq!(LoginRefusal::WrongPassword.audit_reason(), "wrong_password");
    }
}
