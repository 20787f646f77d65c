//! Certificate registration from the portal, as a job: the portal queues it (idempotently:
//! a second click finds the queued job), this worker performs it through the same
//! [`admin::register_certificate`] the operators use, and the overview shows where it is.
//! The new user becomes active after the configured activation delay; a renewal replaces
//! the certificate at once and keeps the gateway password.

use std::sync::Arc;
use std::time::Duration;

use mftgw_domain::UserState;
use mftgw_domain::audit::AuditEvent;
use mftgw_domain::password::PasswordKey;
use mftgw_store::{RegistrationJob, RegistrationJobState, Store, StoreResult};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use crate::admin::{self, Registrar, RegistrationError};

/// Jobs are picked up when the portal queues one, and at least this often.
const POLL: Duration = Duration::from_secs(1);
const BATCH: u32 = 16;
/// Idle sessions are swept this long after they expired: until then a returning person is
/// told that the session expired rather than just shown the login page.
const EXPIRED_SESSIONS_KEPT: Duration = Duration::from_secs(60 * 60);
const SESSION_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Where the presented certificate stands, as the overview shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationStatus {
    NotRegistered,
    /// Its user exists with another certificate: registering this one renews.
    RenewalPossible {
        username: String,
    },
    Queued,
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
            Self::NotRegistered | Self::RenewalPossible { .. } | Self::Failed { .. }
        )
    }

    /// Whether the certificate is its user's current one and may log in (now or after the
    /// activation delay): the gateway username and password are shown then.
    pub fn is_registered(&self) -> bool {
        matches!(self, Self::PendingActivation { .. } | Self::Active)
    }
}

/// Where the certificate `fingerprint` of `username` stands at `now`.
pub async fn status<S: Store>(
    store: &S,
    username: &str,
    fingerprint: &str,
    now: OffsetDateTime,
) -> StoreResult<RegistrationStatus> {
    let job = store.latest_registration(fingerprint).await?;
    if job
        .as_ref()
        .is_some_and(|job| job.state == RegistrationJobState::Queued)
    {
        return Ok(RegistrationStatus::Queued);
    }
    if let Some(owner) = store.certificate_owner(fingerprint).await? {
        if !owner.current {
            return Ok(RegistrationStatus::Replaced);
        }
        if let Some(known) = store.find_user(&owner.username).await? {
            return Ok(match known.user.effective_state(now) {
                UserState::PendingActivation => RegistrationStatus::PendingActivation {
                    from: known.user.activate_at.unwrap_or(now),
                },
                UserState::Active => RegistrationStatus::Active,
                UserState::Suspended => RegistrationStatus::Suspended,
                UserState::Deleted => RegistrationStatus::Deleted,
            });
        }
    }
    if let Some(RegistrationJob {
        state: RegistrationJobState::Failed,
        error,
        ..
    }) = job
    {
        return Ok(RegistrationStatus::Failed {
            reason: error.unwrap_or_default(),
        });
    }
    if store.find_user(username).await?.is_some() {
        return Ok(RegistrationStatus::RenewalPossible {
            username: username.to_owned(),
        });
    }
    Ok(RegistrationStatus::NotRegistered)
}

/// Performs queued registrations until `shutdown`; also sweeps long-expired portal sessions.
pub async fn run_registrations<S: Store>(
    store: Arc<S>,
    password_key: PasswordKey,
    activation_delay: Duration,
    session_idle_timeout: Duration,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        if let Err(error) = register_queued(&*store, &password_key, activation_delay).await {
            tracing::error!(%error, "portal registrations: store unavailable; retrying");
        }
        if last_sweep.is_none_or(|at| at.elapsed() >= SESSION_SWEEP_EVERY) {
            last_sweep = Some(std::time::Instant::now());
            let idle_before =
                OffsetDateTime::now_utc() - session_idle_timeout - EXPIRED_SESSIONS_KEPT;
            if let Err(error) = store.expire_portal_sessions(idle_before).await {
                tracing::warn!(%error, "cannot sweep expired portal sessions");
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn register_queued<S: Store>(
    store: &S,
    password_key: &PasswordKey,
    activation_delay: Duration,
) -> StoreResult<()> {
    for queued in store.queued_registrations(BATCH).await? {
        let job = &queued.job;
        let outcome = admin::register_certificate(
            store,
            password_key,
            &queued.cert_der,
            activation_delay,
            Registrar::Portal,
        )
        .await;
        let outcome = match outcome {
            Ok(_) => Ok(()),
            Err(RegistrationError::Refused(reason)) => {
                store
                    .append_audit(
                        &AuditEvent::refused(
                            OffsetDateTime::now_utc(),
                            "portal.register",
                            "registration_refused",
                        )
                        .with_username(&job.username)
                        .with_cert_fingerprint(&job.cert_fingerprint)
                        .with_detail(serde_json::json!({ "reason": reason })),
                    )
                    .await?;
                Err(reason)
            }
            // The job stays queued and is tried again.
            Err(RegistrationError::Store(error)) => return Err(error),
        };
        store
            .finish_registration(job.id, outcome, OffsetDateTime::now_utc())
            .await?;
    }
    Ok(())
}
