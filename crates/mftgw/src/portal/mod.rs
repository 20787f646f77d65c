//! The Certificate Portal (SPEC §7): self-service in the browser with the same OCES
//! certificate as for FTPS. HTTPS on its own port with a client certificate required and
//! verified against the FTPS trust roots, but not the CRLs (a revoked certificate may
//! register; FTPS refuses it). Server-rendered pages in Danish and English, sessions bound to
//! the certificate, CSRF tokens on every form, registration as a job.
//!
//! - `handlers.rs`: the pages and forms; `pages.rs`: templates and responses;
//! - `session.rs`: cookies, sessions, CSRF; `registration.rs`: the registration job and the
//!   worker; `texts.rs`: the words in both languages.

mod handlers;
mod pages;
mod registration;
mod session;
mod texts;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use mftgw_domain::password::PasswordKey;
use mftgw_store::Store;
use tokio::sync::Notify;

pub use registration::run_registrations;

use crate::throttle::SharedThrottle;

/// Portal forms are a few short fields.
const MAX_FORM_BYTES: usize = 16 * 1024;

pub struct PortalState<S> {
    pub store: Arc<S>,
    pub password_key: PasswordKey,
    pub throttle: SharedThrottle,
    pub idle_timeout: Duration,
    /// Wakes the registration worker when a job is queued.
    pub registrations: Arc<Notify>,
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
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
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
