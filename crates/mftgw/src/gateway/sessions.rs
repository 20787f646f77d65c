//! Live FTPS sessions, and the withdrawal of their authorisation after login.
//!
//! A login's decision holds only as long as what it was made on: the user's state, the
//! certificate being the current one, FTPS being chosen, the certificate passing the CRLs.
//! Each logged-in session is registered here with a [`Grant`]; the engine ends the session
//! (`421`, a running transfer cut) as soon as the grant is revoked. [`run_authorisation_watch`]
//! revokes them: it follows the store's security changes (suspensions, deletions, renewals,
//! interface choices, made by this process or an operator's CLI), verifies every session's
//! certificate again when the CRLs change, and ends sessions whose certificate expired.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mftgw_blobs::BlobStore;
use mftgw_domain::audit::{AuditEvent, Reason};
use mftgw_domain::{Username, session_authorisation};
use mftgw_oces::certificate::CertificateInfo;
use mftgw_store::{Store, StoreError};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::Gateway;
use mftgw_core::telemetry;

/// How often the store's security changes are read.
const CHANGE_POLL: Duration = Duration::from_secs(1);
/// How often sessions are looked through for certificates that expired.
const EXPIRY_CHECK: Duration = Duration::from_secs(10);
/// Security changes read at once.
const CHANGE_BATCH: u32 = 1_000;

/// One session's authorisation, revoked at most once.
#[derive(Debug)]
pub struct Grant {
    revoked: watch::Sender<bool>,
}

impl Grant {
    fn new() -> Grant {
        Grant {
            revoked: watch::Sender::new(false),
        }
    }

    pub fn is_revoked(&self) -> bool {
        *self.revoked.borrow()
    }

    /// Resolves once the grant is revoked.
    pub async fn revoked(&self) {
        let mut revoked = self.revoked.subscribe();
        let _ = revoked.wait_for(|revoked| *revoked).await;
    }

    /// Whether this call revoked it (it was not before).
    fn revoke(&self) -> bool {
        !self.revoked.send_replace(true)
    }
}

/// What a session logged in with.
#[derive(Debug, Clone)]
struct Live {
    username: String,
    peer: SocketAddr,
    fingerprint: String,
    certificate: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    not_after: OffsetDateTime,
    grant: Arc<Grant>,
}

/// The logged-in sessions of one gateway process, by connection id.
#[derive(Debug, Default)]
pub struct LiveSessions {
    sessions: Mutex<HashMap<u64, Live>>,
}

/// A session's place in [`LiveSessions`], given up when dropped (the session ended).
#[derive(Debug)]
pub struct Registration {
    sessions: Arc<LiveSessions>,
    connection_id: u64,
    pub grant: Arc<Grant>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions
            .sessions
            .lock()
            .expect("live sessions poisoned")
            .remove(&self.connection_id);
    }
}

/// Who logged in on a connection.
pub struct LoggedIn<'a> {
    pub connection_id: u64,
    pub username: &'a str,
    pub peer: SocketAddr,
    pub fingerprint: &'a str,
    pub certificate: &'a CertificateDer<'static>,
    pub intermediates: &'a [CertificateDer<'static>],
}

impl LiveSessions {
    pub fn register(self: &Arc<Self>, session: LoggedIn<'_>) -> Registration {
        let grant = Arc::new(Grant::new());
        let live = Live {
            username: session.username.to_owned(),
            peer: session.peer,
            fingerprint: session.fingerprint.to_owned(),
            certificate: session.certificate.clone(),
            intermediates: session.intermediates.to_vec(),
            // It passed the handshake, so it parses.
            not_after: CertificateInfo::from_der(session.certificate)
                .map_or(OffsetDateTime::UNIX_EPOCH, |info| info.not_after),
            grant: Arc::clone(&grant),
        };
        self.sessions
            .lock()
            .expect("live sessions poisoned")
            .insert(session.connection_id, live);
        Registration {
            sessions: Arc::clone(self),
            connection_id: session.connection_id,
            grant,
        }
    }

    /// The sessions `select` picks, copied out so that no lock is held while checking them.
    fn matching(&self, select: impl Fn(&Live) -> bool) -> Vec<Live> {
        let sessions = self.sessions.lock().expect("live sessions poisoned");
        sessions
            .values()
            .filter(|live| !live.grant.is_revoked() && select(live))
            .cloned()
            .collect()
    }
}

impl<S: Store, B: BlobStore> Gateway<S, B> {
    /// Checks the sessions of `usernames` against what the store says now; `Err` if the store
    /// could not say, so that the changes are read again.
    async fn recheck_users(&self, usernames: &HashSet<Username>) -> Result<(), StoreError> {
        for username in usernames {
            let sessions = self
                .sessions
                .matching(|live| live.username == username.as_str());
            if sessions.is_empty() {
                continue;
            }
            let known = self.users.find(username).await?;
            let now = OffsetDateTime::now_utc();
            for live in sessions {
                if let Err(refusal) = session_authorisation(known.as_ref(), &live.fingerprint, now)
                {
                    self.revoke(&live, refusal.code()).await;
                }
            }
        }
        Ok(())
    }

    /// Ends the sessions whose certificate has expired.
    async fn recheck_expiry(&self) {
        let now = OffsetDateTime::now_utc();
        for live in self.sessions.matching(|live| live.not_after < now) {
            self.revoke(&live, Reason::CertificateExpired.as_str())
                .await;
        }
    }

    /// Verifies every session's certificate again (the CRLs changed).
    async fn recheck_certificates(&self) {
        for live in self.sessions.matching(|_| true) {
            if let Err(failure) = self
                .tls
                .verify_certificate(&live.certificate, &live.intermediates)
            {
                self.revoke(&live, failure.reason.as_str()).await;
            }
        }
    }

    async fn revoke(&self, live: &Live, reason: &str) {
        if !live.grant.revoke() {
            return;
        }
        telemetry::session_revoked();
        self.auditor
            .record(
                AuditEvent::refused(OffsetDateTime::now_utc(), "ftps.session", reason)
                    .with_username(&live.username)
                    .with_peer_ip(live.peer.ip().to_string())
                    .with_cert_fingerprint(&live.fingerprint),
            )
            .await;
    }
}

/// Ends the live sessions whose authorisation the store's security changes or a CRL reload
/// (`crls_reloaded` changes) withdraw, until `shutdown`.
pub async fn run_authorisation_watch<S: Store, B: BlobStore>(
    gateway: Arc<Gateway<S, B>>,
    mut crls_reloaded: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut cursor = loop {
        match gateway.users.latest_security_change().await {
            Ok(latest) => break latest,
            Err(error) => {
                tracing::error!(%error, "cannot follow security changes yet: store unavailable");
                tokio::select! {
                    _ = tokio::time::sleep(CHANGE_POLL) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    };
    let mut poll = tokio::time::interval(CHANGE_POLL);
    let mut expiry = tokio::time::interval(EXPIRY_CHECK);
    let mut crl_refresher_running = true;
    loop {
        tokio::select! {
            _ = poll.tick() => {
                match gateway.users.security_changes(cursor, CHANGE_BATCH).await {
                    Ok(changes) => {
                        let Some(last) = changes.last().map(|change| change.id) else { continue };
                        let usernames = changes.into_iter().map(|change| change.username).collect();
                        match gateway.recheck_users(&usernames).await {
                            Ok(()) => cursor = last,
                            Err(error) => tracing::error!(%error, "cannot check live sessions; reading the changes again"),
                        }
                    }
                    Err(error) => tracing::error!(%error, "cannot read security changes"),
                }
            }
            changed = crls_reloaded.changed(), if crl_refresher_running => match changed {
                Ok(()) => gateway.recheck_certificates().await,
                // The CRL refresher is gone; the expiry check stays.
                Err(_) => crl_refresher_running = false,
            },
            _ = expiry.tick() => gateway.recheck_expiry().await,
            _ = shutdown.changed() => return,
        }
    }
}
