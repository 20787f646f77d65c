//! The Certificate Portal (SPEC §7): self-service in the browser with the same OCES
//! certificate as for FTPS. HTTPS on its own port with a client certificate required and
//! verified against the FTPS trust roots, but not the CRLs (a revoked certificate may
//! register; FTPS refuses it). Server-rendered pages in Danish and English, sessions bound to
//! the certificate, CSRF tokens on every form, registration as a job.
//!
//! - `handlers.rs`: the pages and forms; `pages.rs`: templates and responses;
//! - `session.rs`: cookies and CSRF; `texts.rs`: the words in both languages.
//!
//! Sessions, accounts and the registration job are [`mftgw_core::portal`]'s.

mod handlers;
mod pages;
mod session;
mod texts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use mftgw_domain::password::PasswordKey;
use mftgw_domain::portal::{PortalSecret, hash_portal_password, verify_portal_password};
use mftgw_oces::trust::TrustStore;
use mftgw_store::Store;
use tokio::sync::Semaphore;

use mftgw_core::audit::Auditor;
use mftgw_core::portal::Portal;
use mftgw_core::throttle::SharedThrottle;
use mftgw_core::users::Users;

/// Portal forms are a few short fields.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// An oversized form is still read up to this before the `413`, so that the browser sees
/// the answer; past it the connection is closed.
const MAX_DRAINED_BYTES: u64 = 1024 * 1024;
/// A request (its body included) must be answered within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A refused certificate is audited once in this long, however often it asks.
const REFUSAL_AUDIT_EVERY: Duration = Duration::from_secs(10 * 60);

/// What a first portal login (no password chosen yet) must type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstPassword {
    /// The username (seed 000: the certificate's private key is the proof).
    #[default]
    Username,
    /// A one-time code an operator handed out (`mftgw portal code`, `mftgw user register`).
    OperatorCode,
}

pub struct PortalState<S> {
    pub portal: Arc<Portal<S>>,
    pub users: Arc<Users<S>>,
    pub auditor: Arc<Auditor>,
    /// Per request: is the certificate revoked (the TLS layer lets revoked ones register)?
    pub trust: Arc<TrustStore>,
    pub password_key: PasswordKey,
    pub throttle: SharedThrottle,
    pub first_password: FirstPassword,
    pub guards: PortalGuards,
}

/// What keeps the portal's costs bounded; one set per portal.
pub struct PortalGuards {
    /// argon2id runs at once (each takes ~19 MiB and a core for tens of milliseconds).
    hashing: Semaphore,
    /// When each refused certificate was last audited.
    refusals_audited: Mutex<HashMap<String, Instant>>,
}

impl Default for PortalGuards {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        PortalGuards {
            hashing: Semaphore::new(cores),
            refusals_audited: Mutex::default(),
        }
    }
}

impl<S> PortalState<S> {
    /// Checks a portal password on the blocking pool, at most one argon2id per core at once.
    async fn verify_password(
        &self,
        username: &str,
        secret: PortalSecret,
        password: String,
    ) -> bool {
        let _permit = self.guards.hashing.acquire().await.expect("never closed");
        let username = username.to_owned();
        tokio::task::spawn_blocking(move || verify_portal_password(&username, &secret, &password))
            .await
            .unwrap_or(false)
    }

    /// Hashes a new portal password like [`PortalState::verify_password`]; `None` if the
    /// hashing task failed.
    async fn hash_password(&self, password: String) -> Option<String> {
        let _permit = self.guards.hashing.acquire().await.expect("never closed");
        tokio::task::spawn_blocking(move || hash_portal_password(&password))
            .await
            .ok()
    }

    /// Whether the refusal of this certificate should be audited now: once per
    /// [`REFUSAL_AUDIT_EVERY`], so that a refused certificate cannot flood the audit log.
    fn first_refusal_in_a_while(&self, fingerprint: &str) -> bool {
        let now = Instant::now();
        let mut audited = self.guards.refusals_audited.lock().expect("lock poisoned");
        if audited.len() > 10_000 {
            audited.retain(|_, at| now.duration_since(*at) < REFUSAL_AUDIT_EVERY);
        }
        match audited.get(fingerprint) {
            Some(at) if now.duration_since(*at) < REFUSAL_AUDIT_EVERY => false,
            _ => {
                audited.insert(fingerprint.to_owned(), now);
                true
            }
        }
    }
}

pub fn router<S: Store>(state: Arc<PortalState<S>>) -> Router {
    Router::new()
        .route("/", get(handlers::home::<S>))
        .route("/login", post(handlers::login::<S>))
        .route(
            "/password",
            get(handlers::password_page::<S>).post(handlers::change_password::<S>),
        )
        .route("/register", post(handlers::register::<S>))
        .route("/profile", post(handlers::profile::<S>))
        .route("/transactions", get(handlers::transactions::<S>))
        .route("/out", get(handlers::out::<S>))
        .route("/logout", post(handlers::logout::<S>))
        .route("/lang/{code}", get(handlers::set_lang))
        .route("/static/portal.css", get(handlers::stylesheet))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(refuse_oversized_forms))
        .layer(axum::middleware::from_fn(within_timeout))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// A client that sends its form slower than [`REQUEST_TIMEOUT`] gets `408`.
async fn within_timeout(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// A form declared larger than [`MAX_FORM_BYTES`] gets `413` after its body has been read
/// and dropped: answering and closing while the browser still sends makes the kernel reset
/// the connection, and the browser shows a network error instead of the page. Bodies
/// without a length are cut at the limit by [`DefaultBodyLimit`] (browsers always send one).
async fn refuse_oversized_forms(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    let Some(declared) = declared.filter(|&length| length > MAX_FORM_BYTES as u64) else {
        return next.run(request).await;
    };
    let lang = handlers::lang(request.headers());
    let mut response = pages::error_page(
        lang,
        StatusCode::PAYLOAD_TOO_LARGE,
        lang.texts().error_bad_form,
    );
    if declared <= MAX_DRAINED_BYTES {
        let mut body = request.into_body().into_data_stream();
        while let Some(Ok(_)) = body.next().await {}
    } else {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Pages hold passwords and personal data: never cached, never framed, no script, no
/// resource from elsewhere.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
