//! The gateway behind the FTPS engine: logins decided by the domain rules against the store,
//! each user's virtual tree, and the audit trail of every security decision.

mod login;
mod tree;

use std::sync::{Arc, Mutex};

use mftgw_domain::audit::AuditEvent;
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_domain::password::PasswordKey;
use mftgw_domain::throttle::{LoginThrottle, ThrottleConfig};
use mftgw_ftps::{Backend, ClientContext, EngineEvent, LoginDenied};
use mftgw_store::Store;
use time::OffsetDateTime;

pub use tree::UserTree;

pub struct Gateway<S> {
    store: Arc<S>,
    catalogue: Arc<ServiceCatalogue>,
    password_key: PasswordKey,
    throttle: Mutex<LoginThrottle>,
}

impl<S: Store> Gateway<S> {
    pub fn new(
        store: Arc<S>,
        catalogue: Arc<ServiceCatalogue>,
        password_key: PasswordKey,
        throttle: ThrottleConfig,
    ) -> Gateway<S> {
        Gateway {
            store,
            catalogue,
            password_key,
            throttle: Mutex::new(LoginThrottle::new(throttle)),
        }
    }

    /// Writes an audit event and mirrors it to the structured log.
    async fn audit(&self, event: AuditEvent) {
        record(&*self.store, event).await;
    }
}

async fn record<S: Store>(store: &S, event: AuditEvent) {
    tracing::info!(
        target: "audit",
        action = %event.action,
        outcome = event.outcome.as_str(),
        reason = event.reason.as_deref().unwrap_or(""),
        username = event.username.as_deref().unwrap_or(""),
        peer_ip = event.peer_ip.as_deref().unwrap_or(""),
        fingerprint = event.cert_fingerprint.as_deref().unwrap_or(""),
    );
    if let Err(error) = store.append_audit(&event).await {
        tracing::error!(%error, action = %event.action, "audit log write failed");
    }
}

impl<S: Store> Backend for Gateway<S> {
    type Session = UserTree<S>;

    async fn login(
        &self,
        client: &ClientContext,
        username: &str,
        password: &str,
    ) -> Result<UserTree<S>, LoginDenied> {
        self.log_in(client, username, password).await
    }

    fn on_event(&self, event: EngineEvent<'_>) {
        let now = OffsetDateTime::now_utc();
        let event = match event {
            EngineEvent::TlsRefused {
                peer,
                reason,
                certificate,
                ..
            } => {
                let event = AuditEvent::refused(now, "ftps.tls", reason)
                    .with_peer_ip(peer.ip().to_string());
                match certificate {
                    Some(cert) => event
                        .with_cert_fingerprint(mftgw_oces::certificate::fingerprint_sha256(cert)),
                    None => event,
                }
            }
            EngineEvent::ConnectionRefused { peer, reason, .. } => {
                AuditEvent::refused(now, "ftps.connect", reason).with_peer_ip(peer.ip().to_string())
            }
            EngineEvent::DataConnectionRefused {
                peer,
                from,
                username,
                reason,
                ..
            } => AuditEvent::refused(now, "ftps.data", reason)
                .with_peer_ip(peer.ip().to_string())
                .with_username(username)
                .with_detail(serde_json::json!({ "from": from.to_string() })),
            EngineEvent::LoginRefused {
                peer,
                username,
                reason,
                certificate,
                ..
            } => AuditEvent::refused(now, "ftps.login", reason)
                .with_peer_ip(peer.ip().to_string())
                .with_username(username)
                .with_cert_fingerprint(mftgw_oces::certificate::fingerprint_sha256(certificate)),
            EngineEvent::SessionClosed { peer, username, .. } => {
                AuditEvent::info(now, "ftps.logout")
                    .with_peer_ip(peer.ip().to_string())
                    .with_username(username)
            }
        };
        let store = Arc::clone(&self.store);
        tokio::spawn(async move { record(&*store, event).await });
    }
}
