//! Operator actions on the store: register a certificate (creating the user and its gateway
//! password, or renewing), change a user's state, grant and revoke roles, read the audit log.
//! Each change is audited under `admin.*`.

use std::time::Duration;

use mftgw_domain::audit::AuditEvent;
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_domain::password::{PasswordKey, generate_gateway_password};
use mftgw_domain::user::UserState;
use mftgw_oces::certificate::CertificateInfo;
use mftgw_oces::identity::{CertificateKind, identity_from_der};
use mftgw_store::{CertificateRegistration, RoleSource, Store, StoreError};
use time::OffsetDateTime;

/// Why an operator action on users, roles or deliveries did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The user, or the delivery, does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (an unknown service).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => AdminError::NotFound(error.to_string()),
            error => AdminError::Store(error),
        }
    }
}

/// The result of registering a certificate.
#[derive(Debug)]
pub struct Registration {
    pub username: String,
    /// The new gateway password, when this registration created the user; a renewal keeps the
    /// existing password and returns `None`.
    pub password: Option<String>,
}

/// Why a certificate was not registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The certificate cannot be registered (its kind, its validity, or it belongs to
    /// someone else or was replaced); asking again will not help.
    #[error("{0}")]
    Refused(String),
    /// The store could not answer; asking again later may.
    #[error(transparent)]
    Store(StoreError),
}

/// Who registered a certificate, for the audit log (`admin.register`, `portal.renew`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrar {
    Operator,
    Portal,
}

impl Registrar {
    /// The audit action: `*.register` for a new user (or a certificate that already was the
    /// current one), `*.renew` for a replaced certificate.
    fn action(self, renewed: bool) -> &'static str {
        match (self, renewed) {
            (Registrar::Operator, false) => "admin.register",
            (Registrar::Operator, true) => "admin.renew",
            (Registrar::Portal, false) => "portal.register",
            (Registrar::Portal, true) => "portal.renew",
        }
    }
}

pub fn kind_name(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Voces => "voces",
        CertificateKind::Moces => "moces",
        CertificateKind::Oces3Organisation => "oces3-organisation",
        CertificateKind::Oces3Employee => "oces3-employee",
    }
}

/// Registers the certificate: creates its user (pending for `activation_delay`) with a new
/// gateway password, or makes it the current certificate of its existing user, who keeps
/// the password. Registering the current certificate again changes nothing.
pub async fn register_certificate<S: Store>(
    store: &S,
    key: &PasswordKey,
    cert_der: &[u8],
    activation_delay: Duration,
    registrar: Registrar,
) -> Result<Registration, RegistrationError> {
    let identity = identity_from_der(cert_der).map_err(|refusal| {
        RegistrationError::Refused(format!(
            "certificate refused: {refusal} ({})",
            refusal.code()
        ))
    })?;
    let info = CertificateInfo::from_der(cert_der)
        .map_err(|error| RegistrationError::Refused(error.to_string()))?;
    let now = OffsetDateTime::now_utc();
    if info.not_after < now {
        return Err(RegistrationError::Refused(format!(
            "certificate expired on {}",
            info.not_after
        )));
    }
    let password = generate_gateway_password();
    let username = identity.username();
    let outcome = store
        .register_certificate(CertificateRegistration {
            username: username.clone(),
            cvr: identity.cvr.clone(),
            account: identity.account_label(),
            kind: kind_name(identity.kind).to_string(),
            fingerprint: info.fingerprint_sha256.clone(),
            subject: info.subject.clone(),
            serial_hex: info.serial_hex.clone(),
            not_after: info.not_after,
            cert_der: cert_der.to_vec(),
            new_password_hash: key.hash(&password),
            new_password_sealed: key.seal(&username, &password),
            activate_at: now + activation_delay,
        })
        .await
        .map_err(|error| match error {
            StoreError::Conflict(reason) => RegistrationError::Refused(reason),
            error => RegistrationError::Store(error),
        })?;
    let renewed = !outcome.created && !outcome.unchanged;
    let event = if outcome.unchanged {
        AuditEvent::info(now, registrar.action(renewed)).with_reason("already_current")
    } else {
        AuditEvent::allowed(now, registrar.action(renewed))
    };
    store
        .append_audit(
            &event
                .with_username(&username)
                .with_cert_fingerprint(&info.fingerprint_sha256),
        )
        .await
        .map_err(RegistrationError::Store)?;
    Ok(Registration {
        username,
        password: outcome.created.then_some(password),
    })
}

pub async fn set_state<S: Store>(
    store: &S,
    username: &str,
    state: UserState,
) -> Result<(), AdminError> {
    store.set_user_state(username, state).await?;
    store
        .append_audit(
            &AuditEvent::allowed(OffsetDateTime::now_utc(), "admin.set_state")
                .with_username(username)
                .with_reason(state.as_str()),
        )
        .await?;
    Ok(())
}

pub async fn grant_role<S: Store>(
    store: &S,
    catalogue: &ServiceCatalogue,
    username: &str,
    service: &str,
) -> Result<bool, AdminError> {
    if !catalogue.contains(service) {
        return Err(AdminError::Invalid(format!(
            "{service:?} is not a service in the catalogue"
        )));
    }
    if store.find_user(username).await?.is_none() {
        return Err(AdminError::NotFound(format!("no user {username}")));
    }
    let granted = store
        .grant_role(username, service, RoleSource::Local)
        .await?;
    store
        .append_audit(
            &AuditEvent::allowed(OffsetDateTime::now_utc(), "admin.grant_role")
                .with_username(username)
                .with_detail(serde_json::json!({ "service": service })),
        )
        .await?;
    Ok(granted)
}

pub async fn revoke_role<S: Store>(
    store: &S,
    username: &str,
    service: &str,
) -> Result<bool, AdminError> {
    let revoked = store
        .revoke_role(username, service, RoleSource::Local)
        .await?;
    store
        .append_audit(
            &AuditEvent::allowed(OffsetDateTime::now_utc(), "admin.revoke_role")
                .with_username(username)
                .with_detail(serde_json::json!({ "service": service })),
        )
        .await?;
    Ok(revoked)
}

/// Makes a waiting delivery due now (an operator saw the backend come back).
pub async fn retry_delivery<S: Store>(
    store: &S,
    skat_transaction_id: &str,
) -> Result<(), AdminError> {
    let now = OffsetDateTime::now_utc();
    if !store.retry_work(skat_transaction_id, now).await? {
        return Err(AdminError::NotFound(format!(
            "transaction {skat_transaction_id} has no outstanding delivery"
        )));
    }
    store
        .append_audit(
            &AuditEvent::allowed(now, "admin.retry_delivery")
                .with_detail(serde_json::json!({ "skat_transaction_id": skat_transaction_id })),
        )
        .await?;
    Ok(())
}

/// Schedules delivering a transaction its backend has already taken once more (the backend
/// lost it); no status changes.
pub async fn replay_delivery<S: Store>(
    store: &S,
    skat_transaction_id: &str,
) -> Result<(), AdminError> {
    let now = OffsetDateTime::now_utc();
    if !store.replay_work(skat_transaction_id, now).await? {
        return Err(AdminError::Invalid(format!(
            "transaction {skat_transaction_id} cannot be replayed: only one its backend has taken, whose body is still kept and which has no delivery waiting, can be"
        )));
    }
    store
        .append_audit(
            &AuditEvent::allowed(now, "admin.replay_delivery")
                .with_detail(serde_json::json!({ "skat_transaction_id": skat_transaction_id })),
        )
        .await?;
    Ok(())
}
