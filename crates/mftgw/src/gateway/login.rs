//! FTPS login: throttle, certificate identity, store lookups, the domain decision, the audit
//! record, and the delay the engine waits before answering `530`.
//!
//! Failures count against the client's IP and against an identity key: the user, when the
//! certificate is that user's own (its holder may be guessing the password), else the
//! certificate itself. Anyone can type another company's username, so failures under a
//! foreign certificate must never lock the real user out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mftgw_blobs::BlobStore;
use mftgw_domain::KnownUser;
use mftgw_domain::audit::AuditEvent;
use mftgw_domain::login::{LoginAttempt, LoginRefusal, decide_login};
use mftgw_domain::throttle::ThrottleVerdict;
use mftgw_ftps::{ClientContext, LoginDenied};
use mftgw_oces::certificate::fingerprint_sha256;
use mftgw_oces::identity::identity_from_der;
use mftgw_store::Store;
use time::OffsetDateTime;

use super::{Gateway, TreeOwner, UserTree};

/// Logins between two sweeps of expired throttle entries.
const PRUNE_EVERY: u64 = 1024;

impl<S: Store, B: BlobStore> Gateway<S, B> {
    pub(super) async fn log_in(
        &self,
        client: &ClientContext,
        username: &str,
        password: &str,
    ) -> Result<UserTree<S, B>, LoginDenied> {
        let fingerprint = fingerprint_sha256(&client.certificate);
        let cert_username = identity_from_der(&client.certificate)
            .map(|identity| identity.username())
            .map_err(|refusal| refusal.code().to_string());
        let ip_key = format!("ip:{}", client.peer.ip());
        let identity_key = match &cert_username {
            Ok(name) if name == username => format!("user:{username}"),
            _ => format!("cert:{fingerprint}"),
        };
        let keys = [ip_key.as_str(), identity_key.as_str()];
        let audit = |event: AuditEvent| {
            event
                .with_username(username)
                .with_peer_ip(client.peer.ip().to_string())
                .with_cert_fingerprint(fingerprint.clone())
        };

        let delay = match self.throttle_verdict(&keys) {
            Verdict::Blocked => {
                let reason = LoginRefusal::Blocked.audit_reason().to_string();
                self.audit(audit(AuditEvent::refused(now(), "ftps.login", reason)))
                    .await;
                return Err(LoginDenied {
                    delay: Duration::ZERO,
                });
            }
            Verdict::Delay(delay) => delay,
        };

        let attempt = LoginAttempt {
            presented_username: username.to_string(),
            cert_username,
            cert_fingerprint: fingerprint.clone(),
            password: password.to_string(),
        };
        let (decision, known) = match self.decide(&attempt).await {
            Ok(decided) => decided,
            Err(error) => {
                tracing::error!(%error, "store unavailable during login");
                self.audit(audit(AuditEvent::refused(
                    now(),
                    "ftps.login",
                    "store_unavailable",
                )))
                .await;
                return Err(LoginDenied {
                    delay: Duration::ZERO,
                });
            }
        };
        self.record_outcome(&keys, decision.is_ok());
        match decision {
            Ok(()) => {
                self.audit(audit(AuditEvent::allowed(now(), "ftps.login")))
                    .await;
                let user = known.expect("an allowed login has a known user").user;
                Ok(UserTree::new(
                    TreeOwner {
                        username: user.username,
                        cvr: user.cvr,
                        account: user.account,
                    },
                    std::sync::Arc::clone(&self.transactions),
                    std::sync::Arc::clone(&self.catalogue),
                ))
            }
            Err(refusal) => {
                let mut event = audit(AuditEvent::refused(
                    now(),
                    "ftps.login",
                    refusal.audit_reason(),
                ));
                if !delay.is_zero() {
                    event = event.with_detail(serde_json::json!({
                        "throttled_ms": delay.as_millis() as u64,
                    }));
                }
                self.audit(event).await;
                Err(LoginDenied { delay })
            }
        }
    }

    fn throttle_verdict(&self, keys: &[&str]) -> Verdict {
        let now = Instant::now();
        let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
        if self
            .logins
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            throttle.prune(now);
        }
        let mut delay = Duration::ZERO;
        for key in keys {
            match throttle.check(key, now) {
                ThrottleVerdict::Blocked { .. } => return Verdict::Blocked,
                ThrottleVerdict::Delay(d) => delay = delay.max(d),
                ThrottleVerdict::Allow => {}
            }
        }
        Verdict::Delay(delay)
    }

    fn record_outcome(&self, keys: &[&str], success: bool) {
        let now = Instant::now();
        let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
        for key in keys {
            if success {
                throttle.record_success(key, now);
            } else {
                throttle.record_failure(key, now);
            }
        }
    }

    /// The domain decision on what the store knows, and the user it found; `Err` only if the
    /// store cannot answer.
    async fn decide(
        &self,
        attempt: &LoginAttempt,
    ) -> Result<(Result<(), LoginRefusal>, Option<KnownUser>), mftgw_store::StoreError> {
        let known = self.store.find_user(&attempt.presented_username).await?;
        let owner = self
            .store
            .certificate_owner(&attempt.cert_fingerprint)
            .await?;
        let decision = decide_login(
            attempt,
            known.as_ref(),
            owner.as_ref(),
            &self.password_key,
            OffsetDateTime::now_utc(),
        );
        Ok((decision, known))
    }
}

enum Verdict {
    Blocked,
    Delay(Duration),
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
