//! The gateway behind the FTPS engine: logins decided by the domain rules against the users,
//! each user's virtual tree (where uploads become transactions), the live sessions whose
//! authorisation can be withdrawn, and the audit trail of every security decision.
//!
//! One `Gateway` serves one listener in one [`Profile`]: the FTPS Gateway (`USER`, `PASS`
//! and certificate; the user's own `/out`) or the legacy Secure FTP (certificate alone; a
//! login folder, and the company's shared `out` beside it). Both run on the same core.

mod login;
mod quota;
mod sessions;
mod tree;

use std::sync::Arc;

use mftgw_blobs::BlobStore;
use mftgw_domain::Profile;
use mftgw_domain::audit::AuditEvent;
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_domain::password::PasswordKey;
use mftgw_domain::throttle::ThrottleConfig;
use mftgw_ftps::{Backend, ClientContext, DataRefusalStage, EngineEvent, LoginDenied, TlsContext};
use mftgw_oces::certificate::fingerprint_sha256;
use mftgw_store::Store;
use time::OffsetDateTime;

pub use sessions::run_authorisation_watch;
pub use tree::{Layout, TreeOwner, UploadLimits, UserTree};

use mftgw_core::audit::{Auditor, Network, Unauthenticated};
use mftgw_core::telemetry;
use mftgw_core::throttle::SharedThrottle;
use mftgw_core::transactions::Transactions;
use mftgw_core::users::Users;
use quota::UploadsInFlight;
use sessions::LiveSessions;

pub struct Gateway<S, B> {
    profile: Profile,
    users: Arc<Users<S>>,
    transactions: Arc<Transactions<S, B>>,
    catalogue: Arc<ServiceCatalogue>,
    password_key: PasswordKey,
    throttle: SharedThrottle,
    auditor: Arc<Auditor>,
    /// Verifies the certificates of live sessions again after a CRL reload.
    tls: TlsContext,
    sessions: Arc<LiveSessions>,
    limits: UploadLimits,
    uploads: Arc<UploadsInFlight>,
}

/// What a gateway is made of besides its transactions.
pub struct GatewayParts<S> {
    pub profile: Profile,
    pub users: Arc<Users<S>>,
    pub catalogue: Arc<ServiceCatalogue>,
    pub password_key: PasswordKey,
    pub throttle: ThrottleConfig,
    pub auditor: Arc<Auditor>,
    pub tls: TlsContext,
    pub limits: UploadLimits,
}

impl<S: Store, B: BlobStore> Gateway<S, B> {
    pub fn new(transactions: Arc<Transactions<S, B>>, parts: GatewayParts<S>) -> Gateway<S, B> {
        Gateway {
            profile: parts.profile,
            users: parts.users,
            transactions,
            catalogue: parts.catalogue,
            password_key: parts.password_key,
            throttle: SharedThrottle::new(parts.throttle),
            auditor: parts.auditor,
            tls: parts.tls,
            sessions: Arc::default(),
            limits: parts.limits,
            uploads: Arc::default(),
        }
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

    /// Refusals before anyone proved who they are go to the auditor's aggregated lane; the
    /// rest are decisions about, or by, someone holding a trusted certificate.
    fn on_event(&self, event: EngineEvent<'_>) {
        let now = OffsetDateTime::now_utc();
        let event = match event {
            EngineEvent::TlsRefused {
                peer,
                reason,
                certificate,
                ..
            } => {
                self.auditor.refused_unauthenticated(Unauthenticated {
                    action: "ftps.tls",
                    reason,
                    address: peer.ip(),
                    network: network(peer.ip()),
                    fingerprint: certificate.map(|cert| fingerprint_sha256(cert)),
                    username: None,
                });
                return;
            }
            EngineEvent::ConnectionRefused { peer, reason, .. } => {
                self.auditor.refused_unauthenticated(Unauthenticated {
                    action: "ftps.connect",
                    reason,
                    address: peer.ip(),
                    network: network(peer.ip()),
                    fingerprint: None,
                    username: None,
                });
                return;
            }
            EngineEvent::DataConnectionRefused {
                from,
                stage: DataRefusalStage::OtherAddress | DataRefusalStage::Handshake,
                reason,
                ..
            } => {
                self.auditor.refused_unauthenticated(Unauthenticated {
                    action: "ftps.data",
                    reason,
                    address: from.ip(),
                    network: network(from.ip()),
                    fingerprint: None,
                    username: None,
                });
                return;
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
                    .with_cert_fingerprint(fingerprint_sha256(certificate))
            }
            EngineEvent::SessionClosed {
                peer,
                username,
                reason,
                ..
            } => {
                telemetry::session_closed();
                AuditEvent::info(now, "ftps.logout")
                    .with_peer_ip(peer.ip().to_string())
                    .with_username(username)
                    .with_reason(reason)
            }
        };
        self.auditor.record_detached(event);
    }
}

/// The network the engine's per-network limits count `address` under, for the auditor.
fn network(address: std::net::IpAddr) -> Network {
    let (address, prefix_len) = mftgw_ftps::network_prefix(address);
    Network {
        address,
        prefix_len,
    }
}
