//! The gateway's users: who they are (their certificates, state and roles, as the FTPS login,
//! the portal and the operators look them up), and the operator actions on them: register a
//! certificate (creating the user and its gateway password, or renewing), change a user's
//! state, grant and revoke roles, issue a first portal password. Each change is audited under
//! `admin.*` (or `portal.*` for a portal registration). A suspension, a deletion or a renewal
//! also ends the user's portal sessions (a renewal: those of other certificates); live FTPS
//! sessions follow the [security changes](Users::security_changes) on their own.

use std::sync::Arc;
use std::time::Duration;

use mftgw_domain::audit::{AuditEvent, Reason};
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_domain::password::{PasswordKey, generate_gateway_password};
use mftgw_domain::user::UserState;
use mftgw_domain::{
    AccountId, CertificateOwner, Cvr, InvalidId, KnownUser, ServiceName, User, Username,
};
use mftgw_oces::certificate::CertificateInfo;
use mftgw_oces::identity::{CertificateKind, OcesIdentity, identity_from_der};
use mftgw_oces::trust::TrustStore;
use mftgw_store::{
    CertificateRegistration, IdentityStore, PortalStore, RegisteredCertificate, RoleSource,
    RoleStore, SecurityChange, StoreError, StoreResult,
};
use time::OffsetDateTime;

use crate::audit::Auditor;

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
    pub username: Username,
    /// The new gateway password, when this registration created the user, or renewed a
    /// certificate that was revoked (its holder may know the old password); any other renewal
    /// keeps the existing password and returns `None`.
    pub password: Option<String>,
    /// Whether the registration replaced the certificate of an existing user.
    pub renewed: bool,
    /// Whether the certificate already was the user's current one.
    pub unchanged: bool,
    /// The roles this registration granted that the user did not hold.
    pub roles_granted: Vec<ServiceName>,
}

/// A certificate moved from another installation: the gateway username it had there, which
/// must be the one the certificate names, and the services it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCertificate {
    pub cert_der: Vec<u8>,
    pub username: Username,
    pub roles: Vec<ServiceName>,
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
    /// An operator's bulk import (`mftgw user import`).
    Import,
    Portal,
}

impl Registrar {
    /// The audit action: `*.register` for a new user (or a certificate that already was the
    /// current one), `*.renew` for a replaced certificate.
    fn action(self, renewed: bool) -> &'static str {
        match (self, renewed) {
            (Registrar::Operator, false) => "admin.register",
            (Registrar::Operator, true) => "admin.renew",
            (Registrar::Import, _) => "admin.import",
            (Registrar::Portal, false) => "portal.register",
            (Registrar::Portal, true) => "portal.renew",
        }
    }
}

/// The company, account and gateway username a certificate's identity names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedAccount {
    /// `None` for a person.
    pub cvr: Option<Cvr>,
    pub account: AccountId,
    /// `CVR_<cvr>_<account>`, or a person's `PID_<pid>`.
    pub username: Username,
}

impl CertifiedAccount {
    /// The account `identity` names, as typed identifiers.
    pub fn of(identity: &OcesIdentity) -> Result<Self, InvalidId> {
        let cvr = identity.cvr.clone().map(Cvr::parse).transpose()?;
        let account = AccountId::parse(identity.account_label())?;
        Ok(Self {
            username: Username::of_account(cvr.as_ref(), &account),
            cvr,
            account,
        })
    }
}

pub fn kind_name(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Voces => "voces",
        CertificateKind::Moces => "moces",
        CertificateKind::Oces3Organisation => "oces3-organisation",
        CertificateKind::Oces3Employee => "oces3-employee",
        CertificateKind::Personal => "personal",
    }
}

/// How a certificate is registered: with what the password is made and sealed, how a
/// replaced certificate is checked for revocation, and who asked.
pub struct Registrant<'a> {
    pub key: &'a PasswordKey,
    /// Tells whether the certificate a renewal replaces was revoked.
    pub trust: &'a TrustStore,
    pub activation_delay: Duration,
    pub registrar: Registrar,
}

/// Where a login's username and certificate stand: the user of that name, and who registered
/// the certificate.
#[derive(Debug, Clone)]
pub struct Standing {
    pub known: Option<KnownUser>,
    pub owner: Option<CertificateOwner>,
}

/// The gateway's users, and the operator actions on them.
pub struct Users<S> {
    store: Arc<S>,
    auditor: Arc<Auditor>,
    catalogue: Arc<ServiceCatalogue>,
}

impl<S: IdentityStore + RoleStore + PortalStore> Users<S> {
    pub fn new(store: Arc<S>, auditor: Arc<Auditor>, catalogue: Arc<ServiceCatalogue>) -> Self {
        Self {
            store,
            auditor,
            catalogue,
        }
    }

    /// The user of this name, with their current certificate and password hash.
    pub async fn find(&self, username: &Username) -> StoreResult<Option<KnownUser>> {
        self.store.find_user(username).await
    }

    /// The user of this name (none if the name cannot be a user's) and the owner of this
    /// certificate, for a login.
    pub async fn standing(
        &self,
        username: Option<&Username>,
        fingerprint: &str,
    ) -> StoreResult<Standing> {
        let known = match username {
            Some(username) => self.store.find_user(username).await?,
            None => None,
        };
        Ok(Standing {
            known,
            owner: self.store.certificate_owner(fingerprint).await?,
        })
    }

    /// Every user, oldest first.
    pub async fn list(&self) -> StoreResult<Vec<User>> {
        self.store.list_users().await
    }

    /// The services the user holds a role for, from any source.
    pub async fn roles(&self, username: &Username) -> StoreResult<Vec<ServiceName>> {
        self.store.roles(username).await
    }

    /// The user's certificates, the current one and those renewals replaced.
    pub async fn certificates(
        &self,
        username: &Username,
    ) -> StoreResult<Vec<RegisteredCertificate>> {
        self.store.certificates(username).await
    }

    /// The user's gateway password as sealed for showing it again (`PasswordKey::unseal`).
    pub async fn gateway_password_sealed(
        &self,
        username: &Username,
    ) -> StoreResult<Option<String>> {
        self.store.gateway_password_sealed(username).await
    }

    /// The id of the latest security change, where a watcher of them starts.
    pub async fn latest_security_change(&self) -> StoreResult<i64> {
        self.store.latest_security_change().await
    }

    /// Security changes after `after_id`, oldest first, at most `limit`.
    pub async fn security_changes(
        &self,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<SecurityChange>> {
        self.store.security_changes(after_id, limit).await
    }

    /// Registers the certificate: creates its user (pending for `activation_delay`) with a new
    /// gateway password, or makes it the current certificate of its existing user, who keeps
    /// the password unless the replaced certificate was revoked. Registering the current
    /// certificate again changes nothing.
    pub async fn register_certificate(
        &self,
        registrant: &Registrant<'_>,
        cert_der: &[u8],
    ) -> Result<Registration, RegistrationError> {
        self.register(registrant, cert_der, None, &[]).await
    }

    /// Registers an imported certificate like [`register_certificate`](Self::register_certificate)
    /// and grants its roles in the same commit; refused, with nothing stored, if its username
    /// is not the one the certificate names or a role is not in the catalogue. Importing the
    /// same certificate again grants only roles that were added.
    pub async fn import_certificate(
        &self,
        registrant: &Registrant<'_>,
        imported: &ImportedCertificate,
    ) -> Result<Registration, RegistrationError> {
        if let Some(unknown) = imported
            .roles
            .iter()
            .find(|service| !self.catalogue.contains(service.as_str()))
        {
            return Err(RegistrationError::Refused(format!(
                "role {unknown} is not a service in the catalogue"
            )));
        }
        self.register(
            registrant,
            &imported.cert_der,
            Some(&imported.username),
            &imported.roles,
        )
        .await
    }

    async fn register(
        &self,
        registrant: &Registrant<'_>,
        cert_der: &[u8],
        expected_username: Option<&Username>,
        roles: &[ServiceName],
    ) -> Result<Registration, RegistrationError> {
        let Registrant {
            key,
            trust,
            activation_delay,
            registrar,
        } = *registrant;
        let (store, auditor) = (&*self.store, &*self.auditor);
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
        let CertifiedAccount {
            cvr,
            account,
            username,
        } = CertifiedAccount::of(&identity).map_err(|invalid| {
            RegistrationError::Refused(format!("certificate refused: {invalid}"))
        })?;
        if let Some(expected) = expected_username.filter(|expected| **expected != username) {
            return Err(RegistrationError::Refused(format!(
                "the certificate belongs to {username}, not {expected}"
            )));
        }
        let password = generate_gateway_password();
        let replaced_was_revoked = match store.certificates(&username).await {
            Ok(certificates) => certificates
                .iter()
                .find(|registered| registered.replaced_at.is_none())
                .is_some_and(|current| {
                    current.fingerprint != info.fingerprint_sha256 && trust.is_revoked(&current.der)
                }),
            Err(StoreError::NotFound { .. }) => false,
            Err(error) => return Err(RegistrationError::Store(error)),
        };
        let outcome = store
            .register_certificate(CertificateRegistration {
                username: username.clone(),
                cvr,
                account,
                kind: kind_name(identity.kind).to_string(),
                fingerprint: info.fingerprint_sha256.clone(),
                subject: info.subject.clone(),
                serial_hex: info.serial_hex.clone(),
                not_after: info.not_after,
                cert_der: cert_der.to_vec(),
                new_password_hash: key.hash(&password),
                new_password_sealed: key.seal(&username, &password),
                activate_at: now + activation_delay,
                rotate_password: replaced_was_revoked,
                roles: roles.to_vec(),
            })
            .await
            .map_err(|error| match error {
                StoreError::Conflict(reason) => RegistrationError::Refused(reason),
                error => RegistrationError::Store(error),
            })?;
        let renewed = !outcome.created && !outcome.unchanged;
        let mut event = if outcome.unchanged {
            AuditEvent::info(now, registrar.action(renewed))
                .with_reason(Reason::AlreadyCurrent.as_str())
        } else {
            AuditEvent::allowed(now, registrar.action(renewed))
        };
        let mut detail = serde_json::Map::new();
        if outcome.password_rotated {
            detail.insert(
                "password_rotated".into(),
                "the replaced certificate was revoked".into(),
            );
        }
        if registrar == Registrar::Import {
            detail.insert("renewed".into(), renewed.into());
        }
        if !outcome.roles_granted.is_empty() {
            detail.insert(
                "roles_granted".into(),
                serde_json::json!(outcome.roles_granted),
            );
        }
        if !detail.is_empty() {
            event = event.with_detail(serde_json::Value::Object(detail));
        }
        auditor
            .record(
                event
                    .with_username(&username)
                    .with_cert_fingerprint(&info.fingerprint_sha256),
            )
            .await;
        if renewed {
            self.end_portal_sessions(
                &username,
                Some(&info.fingerprint_sha256),
                Reason::CertificateReplaced.as_str(),
            )
            .await
            .map_err(RegistrationError::Store)?;
        }
        Ok(Registration {
            username,
            password: (outcome.created || outcome.password_rotated).then_some(password),
            renewed,
            unchanged: outcome.unchanged,
            roles_granted: outcome.roles_granted,
        })
    }

    /// Ends the user's portal sessions (but those of `except_certificate`), audited with `reason`.
    async fn end_portal_sessions(
        &self,
        username: &Username,
        except_certificate: Option<&str>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let ended = self
            .store
            .delete_portal_sessions_of(username, except_certificate)
            .await?;
        if ended > 0 {
            self.auditor
                .record(
                    AuditEvent::info(OffsetDateTime::now_utc(), "portal.session_ended")
                        .with_username(username)
                        .with_reason(reason)
                        .with_detail(serde_json::json!({ "sessions": ended })),
                )
                .await;
        }
        Ok(())
    }

    /// Sets the user's state. Suspending or deleting also ends their portal sessions; their live
    /// FTPS sessions end as the gateway sees the change.
    pub async fn set_state(&self, username: &Username, state: UserState) -> Result<(), AdminError> {
        self.store.set_user_state(username, state).await?;
        self.auditor
            .record(
                AuditEvent::allowed(OffsetDateTime::now_utc(), "admin.set_state")
                    .with_username(username)
                    .with_reason(state.as_str()),
            )
            .await;
        if matches!(state, UserState::Suspended | UserState::Deleted) {
            self.end_portal_sessions(username, None, state.as_str())
                .await?;
        }
        Ok(())
    }

    /// Grants `username` the local role for `service`; whether it was new.
    pub async fn grant_role(
        &self,
        username: &Username,
        service: &ServiceName,
    ) -> Result<bool, AdminError> {
        if !self.catalogue.contains(service.as_str()) {
            return Err(AdminError::Invalid(format!(
                "{service:?} is not a service in the catalogue"
            )));
        }
        if self.store.find_user(username).await?.is_none() {
            return Err(AdminError::NotFound(format!("no user {username}")));
        }
        let granted = self
            .store
            .grant_role(username, service, RoleSource::Local)
            .await?;
        self.audit_role("admin.grant_role", username, service).await;
        Ok(granted)
    }

    /// Revokes the local role of `username` for `service`; whether there was one.
    pub async fn revoke_role(
        &self,
        username: &Username,
        service: &ServiceName,
    ) -> Result<bool, AdminError> {
        let revoked = self
            .store
            .revoke_role(username, service, RoleSource::Local)
            .await?;
        self.audit_role("admin.revoke_role", username, service)
            .await;
        Ok(revoked)
    }

    async fn audit_role(&self, action: &'static str, username: &Username, service: &ServiceName) {
        self.auditor
            .record(
                AuditEvent::allowed(OffsetDateTime::now_utc(), action)
                    .with_username(username)
                    .with_detail(serde_json::json!({ "service": service })),
            )
            .await;
    }

    /// Issues a one-time first portal password for `username` (the stricter first-login mode):
    /// stored as an argon2id hash, valid for `valid_for` and only until a password is chosen.
    pub async fn issue_portal_code(
        &self,
        username: &Username,
        valid_for: Duration,
    ) -> Result<String, AdminError> {
        let code = generate_gateway_password();
        let hash = tokio::task::spawn_blocking({
            let code = code.clone();
            move || mftgw_domain::portal::hash_portal_password(&code)
        })
        .await
        .map_err(|error| AdminError::Invalid(format!("hashing the code failed: {error}")))?;
        let now = OffsetDateTime::now_utc();
        self.store
            .set_portal_initial_code(username, &hash, now + valid_for)
            .await?;
        self.auditor
            .record(
                AuditEvent::allowed(now, "admin.portal_code")
                    .with_username(username)
                    .with_detail(serde_json::json!({ "valid_secs": valid_for.as_secs() })),
            )
            .await;
        Ok(code)
    }
}
