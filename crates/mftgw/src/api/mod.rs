//! The backend API (SPEC §5): HTTPS, each backend authenticated by its own bearer token and
//! allowed to act only on its own services. Backends accept, reject and answer the
//! transactions delivered to them, post unrelated outbound files for users, and read a
//! transaction with its status history. Every call is idempotent. `openapi.json` beside this
//! module documents it, and the tests hold the server to it.

mod error;
mod handlers;

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};
use mftgw_blobs::BlobStore;
use mftgw_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::transactions::Transactions;

pub use error::ApiError;

/// The OpenAPI document of this API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// A backend as the API knows it.
#[derive(Debug, Clone)]
pub struct ApiBackend {
    pub name: String,
    pub token: String,
    pub services: HashSet<String>,
}

pub struct ApiState<S, B> {
    pub transactions: Arc<Transactions<S, B>>,
    pub backends: Vec<ApiBackend>,
}

pub fn router<S: Store, B: BlobStore>(state: Arc<ApiState<S, B>>) -> Router {
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
            put(handlers::respond::<S, B>),
        )
        .route(
            "/v1/outbound/{service}/{username}/{name}",
            put(handlers::outbound::<S, B>),
        )
        .fallback(handlers::not_found)
        .layer(axum::extract::DefaultBodyLimit::disable())
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
    loop {
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
            let service = hyper_util::service::TowerToHyperService::new(router);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, %error, "backend API connection ended");
            }
        });
    }
}
