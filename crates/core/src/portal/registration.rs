//! Certificate registration from the portal, as a job: the portal queues it (idempotently:
//! a second click finds the queued job), this worker performs it through the same
//! [`Users::register_certificate`] the operators use, and the overview shows where it is.
//! The new user becomes active after the configured activation delay; a renewal replaces
//! the certificate at once and keeps the gateway password. Only a newer certificate (one
//! valid for longer) may replace the registered one, so an old or stolen certificate cannot
//! push out the one in use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mftgw_domain::audit::{AuditEvent, Reason};
use mftgw_domain::password::PasswordKey;
use mftgw_domain::{UserState, Username};
use mftgw_oces::certificate::CertificateInfo;
use mftgw_oces::trust::TrustStore;
use mftgw_store::{
    IdentityStore, PortalStore, QueuedRegistration, RegistrationJobState, RoleStore, StoreError,
    StoreResult,
};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use crate::audit::Auditor;
use crate::users::{Registrant, Registrar, RegistrationError, Users};

/// Jobs are picked up when the portal queues one, and at least this often.
const POLL: Duration = Duration::from_secs(1);
const BATCH: u32 = 16;
/// A job the store keeps failing on is given up after this many attempts.
const MAX_ATTEMPTS: u32 = 5;

/// Where the presented certificate stands, as the overview shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationStatus {
    NotRegistered,
    /// Its user exists with another, older certificate: registering this one renews.
    RenewalPossible,
    /// Its user exists with a certificate this one may not replace: one valid for at least
    /// as long, or (this one being revoked) one that is not revoked.
    CannotReplaceRegistered,
    Queued {
        since: OffsetDateTime,
    },
    Failed {
        reason: String,
    },
    PendingActivation {
        from: OffsetDateTime,
    },
    Active,
    /// A renewal replaced this certificate.
    Replaced,
    Suspended,
    Deleted,
}

impl RegistrationStatus {
    pub fn can_register(&self) -> bool {
        matches!(
            self,
            Self::NotRegistered | Self::RenewalPossible | Self::Failed { .. }
        )
    }

    /// Whether the certificate is its user's current one and may log in (now or after the
    /// activation delay): the gateway username and password are shown then.
    pub fn is_registered(&self) -> bool {
        matches!(self, Self::PendingActivation { .. } | Self::Active)
    }
}

/// The certificate a person presents, and how to tell whether it is revoked.
pub struct Presented<'a> {
    pub info: &'a CertificateInfo,
    pub der: &'a [u8],
    pub trust: &'a TrustStore,
}

/// Where the `presented` certificate of `username` stands at `now`.
pub(super) async fn status<S: PortalStore + IdentityStore>(
    store: &S,
    username: &Username,
    presented: &Presented<'_>,
    now: OffsetDateTime,
) -> StoreResult<RegistrationStatus> {
    let certificate = presented.info;
    let job = store
        .latest_registration(&certificate.fingerprint_sha256)
        .await?;
    if let Some(job) = &job
        && job.state == RegistrationJobState::Queued
    {
        return Ok(RegistrationStatus::Queued {
            since: job.requested_at,
        });
    }
    let owner = store
        .certificate_owner(&certificate.fingerprint_sha256)
        .await?;
    if owner.as_ref().is_some_and(|owner| !owner.current) {
        return Ok(RegistrationStatus::Replaced);
    }
    let Some(known) = store.find_user(username).await? else {
        return Ok(match job {
            Some(job) if job.state == RegistrationJobState::Failed => RegistrationStatus::Failed {
                reason: job.error.unwrap_or_default(),
            },
            _ => RegistrationStatus::NotRegistered,
        });
    };
    match known.user.effective_state(now) {
        UserState::Suspended => return Ok(RegistrationStatus::Suspended),
        UserState::Deleted => return Ok(RegistrationStatus::Deleted),
        UserState::PendingActivation if owner.is_some() => {
            return Ok(RegistrationStatus::PendingActivation {
                from: known.user.activate_at.unwrap_or(now),
            });
        }
        UserState::Active if owner.is_some() => return Ok(RegistrationStatus::Active),
        UserState::PendingActivation | UserState::Active => {}
    }
    if let Some(job) = job
        && job.state == RegistrationJobState::Failed
    {
        return Ok(RegistrationStatus::Failed {
            reason: job.error.unwrap_or_default(),
        });
    }
    Ok(match renewal_refusal(store, username, presented).await? {
        Some(_) => RegistrationStatus::CannotReplaceRegistered,
        None => RegistrationStatus::RenewalPossible,
    })
}

/// Why the `presented` certificate may not replace the user's registered one, if it may not:
/// only a newer certificate may, so that an old or stolen one cannot push out the one in use,
/// and a revoked one (it may register: SPEC §1) not over one that is not revoked.
async fn renewal_refusal<S: IdentityStore>(
    store: &S,
    username: &Username,
    presented: &Presented<'_>,
) -> StoreResult<Option<String>> {
    let certificate = presented.info;
    let certificates = match store.certificates(username).await {
        Err(StoreError::NotFound { .. }) => return Ok(None),
        certificates => certificates?,
    };
    let current = certificates
        .into_iter()
        .find(|registered| registered.replaced_at.is_none());
    let Some(current) =
        current.filter(|current| current.fingerprint != certificate.fingerprint_sha256)
    else {
        return Ok(None);
    };
    if current.not_after >= certificate.not_after {
        return Ok(Some(format!(
            "the registered certificate is valid until {}, this one only until {}: only a newer certificate can replace it",
            current.not_after, certificate.not_after
        )));
    }
    let trust = presented.trust;
    if trust.is_revoked(presented.der) && !trust.is_revoked(&current.der) {
        return Ok(Some(
            "this certificate is revoked; it cannot replace a registered certificate that is not"
                .into(),
        ));
    }
    Ok(None)
}

/// What the registration worker registers with.
pub struct RegistrationWorker<S> {
    pub users: Arc<Users<S>>,
    pub auditor: Arc<Auditor>,
    pub trust: Arc<TrustStore>,
    pub password_key: PasswordKey,
    pub activation_delay: Duration,
}

/// Performs the jobs queued in `store` until `shutdown`, looking when `wake` rings.
pub(super) async fn run_registrations<S: PortalStore + IdentityStore + RoleStore>(
    store: &S,
    wake: &Notify,
    worker: RegistrationWorker<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    let RegistrationWorker {
        users,
        auditor,
        trust,
        password_key,
        activation_delay,
    } = worker;
    let registrant = Registrant {
        key: &password_key,
        trust: &trust,
        activation_delay,
        registrar: Registrar::Portal,
    };
    // Store failures per job; a job is given up after MAX_ATTEMPTS.
    let mut failures: HashMap<i64, u32> = HashMap::new();
    loop {
        match store.queued_registrations(BATCH).await {
            Ok(queued) => {
                for job in queued {
                    let id = job.job.id;
                    match register(store, &users, &auditor, &registrant, job).await {
                        Ok(()) => {
                            failures.remove(&id);
                        }
                        Err(error) => {
                            let attempts = failures.entry(id).or_default();
                            *attempts += 1;
                            tracing::error!(%error, job = id, attempts, "portal registration failed");
                            if *attempts >= MAX_ATTEMPTS {
                                let reason = format!("the store failed {attempts} times: {error}");
                                if store
                                    .finish_registration(id, Err(reason), OffsetDateTime::now_utc())
                                    .await
                                    .is_ok()
                                {
                                    failures.remove(&id);
                                }
                            }
                        }
                    }
                }
            }
            Err(error) => tracing::error!(%error, "portal registrations: store unavailable"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Performs one job; `Err` only if the store failed (the job stays queued).
async fn register<S: PortalStore + IdentityStore + RoleStore>(
    store: &S,
    users: &Users<S>,
    auditor: &Auditor,
    registrant: &Registrant<'_>,
    queued: QueuedRegistration,
) -> StoreResult<()> {
    let job = &queued.job;
    let refusal = match CertificateInfo::from_der(&queued.cert_der) {
        Err(error) => Some(error.to_string()),
        Ok(certificate) => {
            let presented = Presented {
                info: &certificate,
                der: &queued.cert_der,
                trust: registrant.trust,
            };
            renewal_refusal(store, &job.username, &presented).await?
        }
    };
    let outcome = match refusal {
        Some(reason) => Err(RegistrationError::Refused(reason)),
        None => {
            users
                .register_certificate(registrant, &queued.cert_der)
                .await
        }
    };
    let outcome = match outcome {
        Ok(_) => Ok(()),
        Err(RegistrationError::Refused(reason)) => {
            auditor
                .record(
                    AuditEvent::refused(
                        OffsetDateTime::now_utc(),
                        "portal.register",
                        Reason::RegistrationRefused.as_str(),
                    )
                    .with_username(&job.username)
                    .with_cert_fingerprint(&job.cert_fingerprint)
                    .with_detail(serde_json::json!({ "reason": reason })),
                )
                .await;
            Err(reason)
        }
        Err(RegistrationError::Store(error)) => return Err(error),
    };
    store
        .finish_registration(job.id, outcome, OffsetDateTime::now_utc())
        .await
}
