//! The Certificate Portal's rules, apart from its pages: sessions bound to the certificate
//! that logged in (the store keeps only a token's SHA-256 and the session's CSRF token; a
//! session presented with another certificate, idle too long or too old is ended), portal
//! accounts and profiles, what a user sees of their transactions and `/out`, and certificate
//! registration as a job (`registration.rs`: the queue, the worker and where a certificate
//! stands). Cookies, forms and templates are the portal adapter's.

mod registration;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::{digest, rand};
use mftgw_domain::status::StatusCode;
use mftgw_domain::{Mailbox, Transaction, Username};
use mftgw_store::{
    IdentityStore, MailboxStore, NewRegistrationJob, OutFileEntry, PortalAccount, PortalProfile,
    PortalSession, PortalStore, RegistrationJob, StoreError, StoreResult, TransactionLog,
};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

pub use registration::{Presented, RegistrationStatus, RegistrationWorker};

/// Expired sessions are swept this long after they expired: until then a returning person
/// is told that the session expired rather than just shown the login page.
const EXPIRED_SESSIONS_KEPT: Duration = Duration::from_secs(60 * 60);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How long a session lasts.
#[derive(Debug, Clone, Copy)]
pub struct SessionTimeouts {
    /// Without a request for this long, a session ends.
    pub idle: Duration,
    /// However active, a session ends this long after login.
    pub max_age: Duration,
}

/// What a presented session token amounts to.
#[derive(Debug)]
pub enum SessionLookup {
    None,
    Valid(PortalSession),
    /// The session was idle too long; it is ended.
    Expired,
    /// The session belongs to another certificate; it is ended.
    OtherCertificate {
        username: Username,
    },
}

/// A transaction as the portal lists it, with its status history.
#[derive(Debug, Clone)]
pub struct Listed {
    pub transaction: Transaction,
    pub history: Vec<(StatusCode, OffsetDateTime)>,
}

/// 32 random bytes as hex: session tokens and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).expect("the system random generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the store keeps of a session token.
pub fn token_hash(token: &str) -> String {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The portal's sessions, accounts and registration requests.
pub struct Portal<S> {
    store: Arc<S>,
    timeouts: SessionTimeouts,
    /// Rings the registration worker when a job is queued.
    registrations: Notify,
}

impl<S: PortalStore + IdentityStore + TransactionLog + MailboxStore> Portal<S> {
    pub fn new(store: Arc<S>, timeouts: SessionTimeouts) -> Self {
        Self {
            store,
            timeouts,
            registrations: Notify::new(),
        }
    }

    /// Looks up the session of `token` for the certificate `fingerprint`, ending it if it is
    /// expired or bound to another certificate, and recording activity if it is valid.
    pub async fn lookup_session(
        &self,
        token: Option<&str>,
        fingerprint: &str,
    ) -> StoreResult<SessionLookup> {
        let Some(token) = token else {
            return Ok(SessionLookup::None);
        };
        let hash = token_hash(token);
        let Some(session) = self.store.portal_session(&hash).await? else {
            return Ok(SessionLookup::None);
        };
        let now = OffsetDateTime::now_utc();
        let SessionTimeouts { idle, max_age } = self.timeouts;
        if session.cert_fingerprint != fingerprint {
            self.store.delete_portal_session(&hash).await?;
            return Ok(SessionLookup::OtherCertificate {
                username: session.username,
            });
        }
        if session.last_seen_at + idle < now || session.created_at + max_age < now {
            self.store.delete_portal_session(&hash).await?;
            return Ok(SessionLookup::Expired);
        }
        // One write per page view would serialise every request on the store's write lock;
        // recording activity a tenth of the timeout late changes when a session ends by as
        // much.
        if now - session.last_seen_at > idle / 10 {
            self.store.touch_portal_session(&hash, now).await?;
        }
        Ok(SessionLookup::Valid(session))
    }

    /// Starts a session for `username` under the certificate; returns the cookie's token.
    pub async fn start_session(
        &self,
        username: &Username,
        fingerprint: &str,
        must_change_password: bool,
    ) -> StoreResult<String> {
        let token = random_token();
        let now = OffsetDateTime::now_utc();
        self.store
            .create_portal_session(&PortalSession {
                token_hash: token_hash(&token),
                username: username.to_owned(),
                cert_fingerprint: fingerprint.to_owned(),
                csrf_token: random_token(),
                must_change_password,
                created_at: now,
                last_seen_at: now,
            })
            .await?;
        Ok(token)
    }

    /// Ends the session (logout).
    pub async fn end_session(&self, session: &PortalSession) -> StoreResult<()> {
        self.store.delete_portal_session(&session.token_hash).await
    }

    /// Sets the user's chosen portal password (`hash`), ends all their sessions and starts a
    /// new one for this certificate; returns its token.
    pub async fn change_password(
        &self,
        username: &Username,
        fingerprint: &str,
        hash: &str,
    ) -> StoreResult<String> {
        self.store
            .set_portal_password(username, hash, OffsetDateTime::now_utc())
            .await?;
        self.store.delete_portal_sessions_of(username, None).await?;
        self.start_session(username, fingerprint, false).await
    }

    /// The user's portal account: chosen password, first-login code, profile.
    pub async fn account(&self, username: &Username) -> StoreResult<Option<PortalAccount>> {
        self.store.portal_account(username).await
    }

    pub async fn set_profile(
        &self,
        username: &Username,
        profile: &PortalProfile,
    ) -> StoreResult<()> {
        self.store
            .set_portal_profile(username, profile, OffsetDateTime::now_utc())
            .await
    }

    /// Where the `presented` certificate of `username` stands at `now`.
    pub async fn registration_status(
        &self,
        username: &Username,
        presented: &Presented<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<RegistrationStatus> {
        registration::status(&*self.store, username, presented, now).await
    }

    /// Queues registering a certificate, unless a job for it is queued already (then that
    /// job, and `false`), and wakes the worker.
    pub async fn request_registration(
        &self,
        job: NewRegistrationJob,
    ) -> StoreResult<(RegistrationJob, bool)> {
        let queued = self.store.request_registration(job).await?;
        self.registrations.notify_one();
        Ok(queued)
    }

    /// The user's latest transactions, newest first, with their status histories.
    pub async fn recent_transactions(
        &self,
        username: &Username,
        limit: u32,
    ) -> StoreResult<Vec<Listed>> {
        let mut listed = Vec::new();
        for transaction in self.store.transactions(Some(username), limit).await? {
            let history = self.store.status_history(transaction.id).await?;
            listed.push(Listed {
                transaction,
                history,
            });
        }
        Ok(listed)
    }

    /// What is in the user's `/out` (nothing, for a user not known yet).
    pub async fn out_files(&self, username: &Username) -> StoreResult<Vec<OutFileEntry>> {
        match self.store.out_files(&Mailbox::of_user(username)).await {
            Err(StoreError::NotFound { .. }) => Ok(Vec::new()),
            files => files,
        }
    }

    /// Performs the queued registrations with `worker` until `shutdown`, at once when one is
    /// requested.
    pub async fn run_registrations(
        self: Arc<Self>,
        worker: RegistrationWorker<S>,
        shutdown: watch::Receiver<bool>,
    ) where
        S: mftgw_store::RoleStore,
    {
        registration::run_registrations(&*self.store, &self.registrations, worker, shutdown).await;
    }

    /// Deletes long-expired sessions once a minute until `shutdown`.
    pub async fn run_session_sweep(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let idle_before =
                OffsetDateTime::now_utc() - self.timeouts.idle - EXPIRED_SESSIONS_KEPT;
            if let Err(error) = self.store.expire_portal_sessions(idle_before).await {
                tracing::warn!(%error, "cannot sweep expired portal sessions");
            }
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let token = random_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, random_token());
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token);
    }
}
