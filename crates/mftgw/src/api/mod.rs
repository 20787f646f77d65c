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

use mftgw_core::transactions::{Operations, Transactions};
use mftgw_core::users::Users;

pub use error::ApiError;
pub use operator::run_gauges;

/// Request bodies other than streamed files are small JSON documents.
const SMALL_BODY: usize = 64 * 1024;

/// The OpenAPI document of this API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// A backend as the API knows it: by its token, its client certificate, or both.
#[derive(Debug, Clone)]
pub struct ApiBackend {
    pub name: String,
    pub token: Option<String>,
    /// SHA-256 of its client certificate, lowercase hex.
    pub client_fingerprint: Option<String>,
    pub services: HashSet<mftgw_domain::ServiceName>,
}

pub struct ApiState<S, B> {
    pub transactions: Arc<Transactions<S, B>>,
    pub users: Arc<Users<S>>,
    pub operations: Arc<Operations<S>>,
    pub backends: Vec<ApiBackend>,
    pub catalogue: Arc<ServiceCatalogue>,
    /// The operators' token for `/v1/admin/`; none: the admin API refuses every call.
    pub admin_token: Option<String>,
    pub metrics: PrometheusHandle,
    /// The token `/metrics` asks for; none: it is open (on a listener of its own, say).
    pub metrics_token: Option<String>,
    /// How long a backend may still post outbound files for a user who lost the role.
    pub retention: std::time::Duration,
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

/// Health, readiness and metrics alone, for a listener of their own (`[api] metrics_listen`,
/// plain HTTP for a Prometheus that must not reach the API).
pub fn monitoring_router<S: Store, B: BlobStore>(state: Arc<ApiState<S, B>>) -> Router {
    Router::new()
        .route("/healthz", get(operator::healthz))
        .route("/readyz", get(operator::readyz::<S, B>))
        .route("/metrics", get(operator::metrics::<S, B>))
        .fallback(handlers::not_found)
        .with_state(state)
}
