//! FTPS login: throttle, certificate identity, store lookups, the domain decision, the audit
//! record, and the delay the engine waits before answering `530`.
//!
//! Failures count against the client's IP and against an identity key: the user, when the
//! certificate is that user's own (its holder may be guessing the password), else the
//! certificate itself. Anyone can type another company's username, so failures under a
//! foreign certificate must never lock the real user out.

use std::time::Duration;

use mftgw_blobs::BlobStore;
use mftgw_domain::KnownUser;
use mftgw_domain::audit::AuditEvent;
use mftgw_domain::login::{LoginAttempt, LoginRefusal, decide_login};
use mftgw_ftps::{ClientContext, LoginDenied};
use mftgw_oces::certificate::fingerprint_sha256;
use mftgw_oces::identity::identity_from_der;
use mftgw_store::Store;
use time::OffsetDateTime;

use super::{Gateway, TreeOwner, UserTree};
use crate::throttle::Verdict;

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

        let _evaluating = self.throttle.serialize(&identity_key).await;
        let delay = match self.throttle.verdict(&keys) {
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
        self.throttle.record(&keys, decision.is_ok());
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

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
