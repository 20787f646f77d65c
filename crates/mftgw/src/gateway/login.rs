//! FTPS login: store lookups, throttle, certificate identity, the domain decision (by `USER`,
//! `PASS` and certificate in the FTPS Gateway profile, by certificate alone in the Secure FTP
//! profile), the audit record, and the delay the engine waits before answering `530`. Failures count against the
//! keys [`AttemptKeys`] describes.

use mftgw_blobs::BlobStore;
use mftgw_domain::audit::{AuditEvent, Reason};
use mftgw_domain::login::{LoginAttempt, LoginRefusal, decide_certificate_login, decide_login};
use mftgw_domain::{Mailbox, Profile, Username};
use mftgw_ftps::{ClientContext, LoginDenied};
use mftgw_oces::certificate::fingerprint_sha256;
use mftgw_oces::identity::{IdentityRefusal, identity_from_der};
use mftgw_store::Store;
use time::OffsetDateTime;

use super::sessions::LoggedIn;
use super::{Gateway, Layout, TreeOwner, UserTree};
use mftgw_core::audit::Unauthenticated;
use mftgw_core::throttle::{AttemptKeys, Verdict};
use mftgw_core::users::{CertifiedAccount, Standing};

impl<S: Store, B: BlobStore> Gateway<S, B> {
    pub(super) async fn log_in(
        &self,
        client: &ClientContext,
        username: &str,
        password: &str,
    ) -> Result<UserTree<S, B>, LoginDenied> {
        let fingerprint = fingerprint_sha256(&client.certificate);
        let cert_username = identity_from_der(&client.certificate)
            .and_then(|identity| match self.profile {
                Profile::Gateway => identity.of_company(),
                Profile::SecureFtp => Ok(identity),
            })
            .map_err(|refusal| refusal.code().to_string())
            .and_then(|identity| {
                CertifiedAccount::of(&identity)
                    .map(|account| account.username)
                    .map_err(|invalid| {
                        IdentityRefusal::MalformedAccountId(invalid.text)
                            .code()
                            .to_string()
                    })
            });
        // Whom the login is about: the user `USER` names (FTPS Gateway), or the one the
        // certificate names (Secure FTP, where `USER` and `PASS` are not used).
        let named = match self.profile {
            Profile::Gateway => Username::parse(username).ok(),
            Profile::SecureFtp => cert_username.clone().ok(),
        };
        let username = named.as_ref().map_or(username, Username::as_str);
        let audit = |event: AuditEvent| {
            let event = event
                .with_username(username)
                .with_peer_ip(client.peer.ip().to_string())
                .with_cert_fingerprint(fingerprint.clone());
            match self.profile {
                Profile::Gateway => event,
                Profile::SecureFtp => {
                    event.with_detail(serde_json::json!({ "profile": "secure_ftp" }))
                }
            }
        };
        // Registered before the store is read: a change committed after the read is followed
        // by the authorisation watch, which then finds this session. Dropped if refused.
        let registration = self.sessions.register(LoggedIn {
            connection_id: client.connection_id,
            username,
            peer: client.peer,
            fingerprint: &fingerprint,
            certificate: &client.certificate,
            intermediates: &client.intermediates,
        });
        let Standing { known, owner } =
            match self.users.standing(named.as_ref(), &fingerprint).await {
                Ok(standing) => standing,
                Err(error) => {
                    tracing::error!(%error, "store unavailable during login");
                    self.auditor
                        .record(audit(AuditEvent::refused(
                            now(),
                            "ftps.login",
                            Reason::StoreUnavailable.as_str(),
                        )))
                        .await;
                    return Err(LoginDenied::Unavailable);
                }
            };
        let current_holder = known
            .as_ref()
            .filter(|known| {
                known.current_cert_fingerprint == fingerprint
                    && cert_username.as_ref() == Ok(&known.user.username)
            })
            .map(|known| &known.user.username);
        let keys = AttemptKeys::new(
            mftgw_ftps::client_key(client.peer.ip()),
            &fingerprint,
            current_holder,
        );

        let _evaluating = self.throttle.serialize(&keys).await;
        let delay = match self.throttle.verdict(&keys) {
            // Anyone with a trusted certificate can keep trying: after the first, the
            // attempts of a blocked identity are counted, not written one by one.
            Verdict::Blocked => {
                self.auditor.refused_unauthenticated(Unauthenticated {
                    action: "ftps.login",
                    reason: LoginRefusal::Blocked.audit_reason(),
                    address: client.peer.ip(),
                    network: super::network(client.peer.ip()),
                    fingerprint: Some(fingerprint.clone()),
                    username: Some(username),
                });
                return Err(LoginDenied::Refused {
                    delay: self.throttle.max_delay(),
                });
            }
            Verdict::Delay(delay) => delay,
        };

        let decision = match self.profile {
            Profile::Gateway => decide_login(
                &LoginAttempt {
                    presented_username: username.to_string(),
                    cert_username,
                    cert_fingerprint: fingerprint.clone(),
                    password: password.to_string(),
                },
                known.as_ref(),
                owner.as_ref(),
                &self.password_key,
                now(),
            ),
            Profile::SecureFtp => decide_certificate_login(
                &cert_username,
                &fingerprint,
                known.as_ref(),
                owner.as_ref(),
                now(),
            ),
        };
        self.throttle.record(&keys, decision.is_ok());
        match decision {
            Ok(()) => {
                self.auditor
                    .record(audit(AuditEvent::allowed(now(), "ftps.login")))
                    .await;
                let user = known.expect("an allowed login has a known user").user;
                let (mailbox, layout) = match (self.profile, &user.cvr) {
                    (Profile::Gateway, _) => (Mailbox::of_user(&user.username), Layout::Root),
                    (Profile::SecureFtp, Some(cvr)) => {
                        (Mailbox::Company(cvr.clone()), Layout::LoginFolder)
                    }
                    (Profile::SecureFtp, None) => (
                        Mailbox::Person(user.username.clone()),
                        Layout::PersonalFolder,
                    ),
                };
                Ok(UserTree::new(
                    TreeOwner {
                        mailbox,
                        layout,
                        username: user.username,
                        cvr: user.cvr,
                        account: user.account,
                    },
                    std::sync::Arc::clone(&self.transactions),
                    std::sync::Arc::clone(&self.catalogue),
                    registration,
                    self.limits,
                    std::sync::Arc::clone(&self.uploads),
                ))
            }
            Err(refusal) => {
                let mut event = audit(AuditEvent::refused(
                    now(),
                    "ftps.login",
                    refusal.audit_reason(),
                ));
                if !delay.is_zero() {
                    let mut detail = event.detail.take().unwrap_or_else(|| serde_json::json!({}));
                    detail["throttled_ms"] = serde_json::json!(delay.as_millis() as u64);
                    event = event.with_detail(detail);
                }
                self.auditor.record(event).await;
                Err(LoginDenied::Refused { delay })
            }
        }
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
