//! The gateway behind the FTPS engine: logins decided by the domain rules against the store,
//! each user's virtual tree (where uploads become transactions), and the audit trail of
//! every security decision.

mod login;
mod tree;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mftgw_blobs::BlobStore;
use mftgw_domain::audit::AuditEvent;
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_domain::password::PasswordKey;
use mftgw_domain::throttle::ThrottleConfig;
use mftgw_ftps::{Backend, ClientContext, EngineEvent, LoginDenied};
use mftgw_store::Store;
use time::OffsetDateTime;
use tokio::sync::mpsc;

pub use tree::{TreeOwner, UserTree};

use crate::telemetry;
use crate::throttle::SharedThrottle;
use crate::transactions::Transactions;

/// Engine events waiting for the audit writer. Unauthenticated clients can cause them (port
/// scans, failed handshakes), so the queue is bounded and overflow is counted, not stored.
const ENGINE_EVENT_QUEUE: usize = 4096;

pub struct Gateway<S, B> {
    store: Arc<S>,
    transactions: Arc<Transactions<S, B>>,
    catalogue: Arc<ServiceCatalogue>,
    password_key: PasswordKey,
    throttle: SharedThrottle,
    engine_events: mpsc::Sender<AuditEvent>,
    /// Engine events dropped because the audit writer fell behind.
    dropped_engine_events: AtomicU64,
}

impl<S: Store, B: BlobStore> Gateway<S, B> {
    /// Also starts the task that writes engine events to the audit log; call it in a runtime.
    pub fn new(
        transactions: Arc<Transactions<S, B>>,
        catalogue: Arc<ServiceCatalogue>,
        password_key: PasswordKey,
        throttle: ThrottleConfig,
    ) -> Gateway<S, B> {
        let store = Arc::clone(&transactions.store);
        let (engine_events, mut queued) = mpsc::channel(ENGINE_EVENT_QUEUE);
        let writer_store = Arc::clone(&store);
        tokio::spawn(async move {
            while let Some(event) = queued.recv().await {
                record(&*writer_store, event).await;
            }
        });
        Gateway {
            store,
            transactions,
            catalogue,
            password_key,
            throttle: SharedThrottle::new(throttle),
            engine_events,
            dropped_engine_events: AtomicU64::new(0),
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

impl<S: Store, B: BlobStore> Backend for Gateway<S, B> {
    type Session = UserTree<S, B>;

    async fn login(
        &self,
        client: &ClientContext,
        username: &str,
        password: &str,
    ) -> Result<UserTree<S, B>, LoginDenied> {
        let session = self.log_in(client, username, password).await;
        // A session limit in the engine can still turn it away: see `LoginRefused` below.
        telemetry::login(session.is_ok());
        if session.is_ok() {
            telemetry::session_opened();
        }
        session
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
            } => {
                telemetry::session_closed();
                telemetry::login_over_limit();
                AuditEvent::refused(now, "ftps.login", reason)
                    .with_peer_ip(peer.ip().to_string())
                    .with_username(username)
                    .with_cert_fingerprint(mftgw_oces::certificate::fingerprint_sha256(certificate))
            }
            EngineEvent::SessionClosed { peer, username, .. } => {
                telemetry::session_closed();
                AuditEvent::info(now, "ftps.logout")
                    .with_peer_ip(peer.ip().to_string())
                    .with_username(username)
            }
        };
        if self.engine_events.try_send(event).is_err() {
            let dropped = self.dropped_engine_events.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "audit writer behind: engine events dropped");
            }
        }
    }
}
