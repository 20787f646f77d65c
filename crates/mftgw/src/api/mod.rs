//! The gateway's HTTPS API. The backend API (SPEC §5): each backend authenticated by its own
//! client certificate or bearer token and allowed to act only on its own services; backends accept, reject and
//! answer the transactions delivered to them, post unrelated outbound files for users, and
//! read a transaction with its status history; every call is idempotent; `openapi.json`
//! beside this module documents it, and the tests hold the server to it. The operator
//! surface (`operator.rs`) shares the server with its own token.

mod error;
mod handlers;
mod operator;

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use metrics_exporter_prometheus::PrometheusHandle;
use mftgw_blobs::BlobStore;
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::transactions::Transactions;

pub use error::ApiError;

/// Request bodies other than streamed files are small JSON documents.
const SMALL_BODY: usize = 64 * 1024;
/// Connections the API serves at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;
/// A request's headers must arrive within this.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The OpenAPI document of this API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// A backend as the API knows it: by its token, its client certificate, or both.
#[derive(Debug, Clone)]
pub struct ApiBackend {
    pub name: String,
    pub token: Option<String>,
    /// SHA-256 of its client certificate, lowercase hex.
    pub client_fingerprint: Option<String>,
    pub services: HashSet<String>,
}

/// The SHA-256 fingerprint of the client certificate the connection presented, if any.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<String>);

pub struct ApiState<S, B> {
    pub transactions: Arc<Transactions<S, B>>,
    pub backends: Vec<ApiBackend>,
    pub catalogue: Arc<ServiceCatalogue>,
    /// The operators' token for `/v1/admin/`; none: the admin API refuses every call.
    pub admin_token: Option<String>,
    pub metrics: PrometheusHandle,
    /// The services with a backend, for the backlog gauges.
    pub delivered_services: Vec<String>,
}

pub fn router<S: Store, B: BlobStore>(state: Arc<ApiState<S, B>>) -> Router {
    // Files are streamed into blobs whatever their size; every other body is small.
    let streamed = DefaultBodyLimit::disable;
    Router::new()
        .route("/v1/openapi.json", get(handlers::openapi))
        .route("/v1/transactions/{id}", get(handlers::transaction::<S, B>))
        .route(
            "/v1/transactions/{id}/accept",
            post(handlers::accept::<S, B>),
        )
        .route(
            "/v1/transactions/{id}/reject",
            post(handlers::reject::<S, B>),
        )
        .route(
            "/v1/transactions/{id}/response/{name}",
            put(handlers::respond::<S, B>).layer(streamed()),
        )
        .route(
            "/v1/outbound/{service}/{username}/{name}",
            put(handlers::outbound::<S, B>).layer(streamed()),
        )
        .route("/healthz", get(operator::healthz))
        .route("/readyz", get(operator::readyz::<S, B>))
        .route("/metrics", get(operator::metrics::<S, B>))
        .route("/v1/admin/users", get(operator::users::<S, B>))
        .route(
            "/v1/admin/users/{username}/{action}",
            post(operator::set_state::<S, B>),
        )
        .route(
            "/v1/admin/users/{username}/roles",
            get(operator::roles::<S, B>),
        )
        .route(
            "/v1/admin/users/{username}/roles/{service}",
            put(operator::grant::<S, B>).delete(operator::revoke::<S, B>),
        )
        .route(
            "/v1/admin/users/{username}/certificates",
            get(operator::certificates::<S, B>),
        )
        .route("/v1/admin/services", get(operator::services::<S, B>))
        .route("/v1/admin/deliveries", get(operator::deliveries::<S, B>))
        .route(
            "/v1/admin/deliveries/{id}/retry",
            post(operator::retry::<S, B>),
        )
        .route(
            "/v1/admin/transactions/{id}/replay",
            post(operator::replay::<S, B>),
        )
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .with_state(state)
}

/// Serves `router` over TLS on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("never closed"),
            _ = shutdown.changed() => return,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "backend API accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "backend API TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let peer_certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|certificate| mftgw_oces::certificate::fingerprint_sha256(certificate));
            let router = router.layer(axum::Extension(PeerCertificate(peer_certificate)));
            let service = hyper_util::service::TowerToHyperService::new(router);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, %error, "backend API connection ended");
            }
        });
    }
}
