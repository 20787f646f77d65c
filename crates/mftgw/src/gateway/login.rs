//! FTPS login: throttle, certificate identity, store lookups, the domain decision, the audit
//! record, and the delay the engine waits before answering `530`.

use std::time::{Duration, Instant};

use mftgw_domain::audit::AuditEvent;
use mftgw_domain::login::{LoginAttempt, LoginRefusal, decide_login};
use mftgw_domain::throttle::ThrottleVerdict;
use mftgw_ftps::{ClientContext, LoginDenied};
use mftgw_oces::certificate::fingerprint_sha256;
use mftgw_oces::identity::identity_from_der;
use mftgw_store::Store;
use time::OffsetDateTime;

use super::{Gateway, UserTree};

impl<S: Store> Gateway<S> {
    pub(super) async fn log_in(
        &self,
        client: &ClientContext,
        username: &str,
        password: &str,
    ) -> Result<UserTree<S>, LoginDenied> {
        let fingerprint = fingerprint_sha256(&client.certificate);
        let ip_key = format!("ip:{}", client.peer.ip());
        let user_key = format!("user:{username}");
        let audit = |event: AuditEvent| {
            event
                .with_username(username)
                .with_peer_ip(client.peer.ip().to_string())
                .with_cert_fingerprint(fingerprint.clone())
        };

        let delay = match self.throttle_verdict(&ip_key, &user_key) {
            Verdict::Blocked => {
                let refusal = LoginRefusal::Blocked;
                self.audit(audit(AuditEvent::refused(
                    now(),
                    "ftps.login",
                    refusal.audit_reason(),
                )))
                .await;
                return Err(LoginDenied {
                    delay: Duration::ZERO,
                });
            }
            Verdict::Delay(delay) => delay,
        };

        match self.decide(client, username, password, &fingerprint).await {
            Ok(()) => {
                {
                    let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
                    throttle.record_success(&ip_key, Instant::now());
                    throttle.record_success(&user_key, Instant::now());
                }
                self.audit(audit(AuditEvent::allowed(now(), "ftps.login")))
                    .await;
                Ok(UserTree::new(
                    username.to_string(),
                    std::sync::Arc::clone(&self.store),
                    std::sync::Arc::clone(&self.catalogue),
                ))
            }
            Err(refusal) => {
                {
                    let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
                    throttle.record_failure(&ip_key, Instant::now());
                    throttle.record_failure(&user_key, Instant::now());
                }
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

    fn throttle_verdict(&self, ip_key: &str, user_key: &str) -> Verdict {
        let now = Instant::now();
        let mut throttle = self.throttle.lock().expect("throttle lock poisoned");
        throttle.prune(now);
        let mut delay = Duration::ZERO;
        for key in [ip_key, user_key] {
            match throttle.check(key, now) {
                ThrottleVerdict::Blocked { .. } => return Verdict::Blocked,
                ThrottleVerdict::Delay(d) => delay = delay.max(d),
                ThrottleVerdict::Allow => {}
            }
        }
        Verdict::Delay(delay)
    }

    async fn decide(
        &self,
        client: &ClientContext,
        username: &str,
        password: &str,
        fingerprint: &str,
    ) -> Result<(), LoginRefusal> {
        let cert_username = identity_from_der(&client.certificate)
            .map(|identity| identity.username())
            .map_err(|refusal| refusal.code().to_string());
        let lookup = async {
            let known = self.store.find_user(username).await?;
            let owner = self.store.certificate_owner(fingerprint).await?;
            Ok::<_, mftgw_store::StoreError>((known, owner))
        };
        let (known, owner) = match lookup.await {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(%error, "store unavailable during login");
                return Err(LoginRefusal::IdentityRefused("store_unavailable".into()));
            }
        };
        let attempt = LoginAttempt {
            presented_username: username.to_string(),
            cert_username,
            cert_fingerprint: fingerprint.to_string(),
            password: password.to_string(),
        };
        decide_login(
            &attempt,
            known.as_ref(),
            owner.as_ref(),
            &self.password_key,
            OffsetDateTime::now_utc(),
        )
    }
}

enum Verdict {
    Blocked,
    Delay(Duration),
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
