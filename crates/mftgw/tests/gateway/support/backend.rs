//! A backend system for tests: an HTTPS server (axum behind a tokio-rustls accept loop) that
//! requires a client certificate from the test PKI, records every delivery it receives, and
//! can be told to fail (503) or to hang, or not be listening at all. It also serves a role
//! document at `/roles`, as the central security system would.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mftgw_testpki::TestPki;
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// Answers 503 Service Unavailable.
    Unavailable,
    /// Takes the file, then answers only after this long.
    Hang(Duration),
    /// Reads the file slowly: a pause after every chunk.
    Drip(Duration),
    /// Answers `302 Found` pointing at itself.
    Redirect,
}

/// One `POST` the backend received in full.
#[derive(Debug, Clone)]
pub struct Received {
    pub idempotency_key: String,
    pub ftp_transaction_id: String,
    pub user: String,
    pub service: String,
    pub sha256_header: String,
    pub body: Vec<u8>,
    pub at: OffsetDateTime,
    pub answered: StatusCode,
}

struct Shared {
    mode: Mutex<Mode>,
    received: Mutex<Vec<Received>>,
    roles: Mutex<serde_json::Value>,
}

/// Stops serving when dropped.
pub struct TestBackend {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl TestBackend {
    /// Serves on `addr` (port 0 for any) with the PKI's server certificate, requiring client
    /// certificates that chain to its root.
    pub async fn start(pki: &Path, addr: SocketAddr, mode: Mode) -> TestBackend {
        let pki = TestPki::load(pki).unwrap();
        let roots = {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(pki.root_ca_pem()).unwrap() {
                roots.add(cert.unwrap()).unwrap();
            }
            Arc::new(roots)
        };
        let verifier = rustls::server::WebPkiClientVerifier::builder(roots)
            .build()
            .unwrap();
        let tls = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                CertificateDer::pem_file_iter(&pki.server().cert_chain_pem)
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_file(&pki.server().key_pem).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            received: Mutex::new(Vec::new()),
            roles: Mutex::new(serde_json::json!({ "roles": [] })),
        });
        let router = Router::new()
            .route("/deliver", post(deliver))
            .route("/roles", axum::routing::get(roles))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind(addr).await.unwrap();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, router) = (acceptor.clone(), router.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TestBackend { shared, server }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// The role document `/roles` serves from now on.
    pub fn set_roles(&self, roles: serde_json::Value) {
        *self.shared.roles.lock().unwrap() = roles;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn deliver(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mode = *shared.mode.lock().unwrap();
    let mut stream = body.into_data_stream();
    let mut content = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let Ok(chunk) = chunk else {
            return StatusCode::BAD_REQUEST;
        };
        content.extend_from_slice(&chunk);
        if let Mode::Drip(pause) = mode {
            tokio::time::sleep(pause).await;
        }
    }
    let body = Bytes::from(content);
    let answered = match mode {
        Mode::Accept | Mode::Hang(_) | Mode::Drip(_) => StatusCode::OK,
        Mode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Mode::Redirect => StatusCode::FOUND,
    };
    shared.received.lock().unwrap().push(Received {
        idempotency_key: header("idempotency-key"),
        ftp_transaction_id: header("x-ftp-transaction-id"),
        user: header("x-mftgw-user"),
        service: header("x-mftgw-service"),
        sha256_header: header("x-mftgw-sha256"),
        body: body.to_vec(),
        at: OffsetDateTime::now_utc(),
        answered,
    });
    if let Mode::Hang(pause) = mode {
        tokio::time::sleep(pause).await;
    }
    answered
}

async fn roles(
    State(shared): State<Arc<Shared>>,
) -> Result<axum::Json<serde_json::Value>, StatusCode> {
    if *shared.mode.lock().unwrap() == Mode::Unavailable {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(axum::Json(shared.roles.lock().unwrap().clone()))
}
