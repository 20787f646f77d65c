//! Portal sessions and CSRF tokens. A session cookie holds a random token; the store keeps
//! only its SHA-256, the certificate that logged in, and the session's CSRF token. A session
//! presented with another certificate is refused and ended (the cookie has leaked); one idle
//! longer than the timeout is ended. Before login, a double-submit cookie protects the login
//! form.

use std::time::Duration;

use aws_lc_rs::{digest, rand};
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use mftgw_store::{PortalSession, Store, StoreResult};
use time::OffsetDateTime;

pub const SESSION_COOKIE: &str = "__Host-mftgw_session";
/// Expired sessions are swept this long after they expired: until then a returning person
/// is told that the session expired rather than just shown the login page.
const EXPIRED_SESSIONS_KEPT: Duration = Duration::from_secs(60 * 60);
const SWEEP_EVERY: Duration = Duration::from_secs(60);
pub const LOGIN_COOKIE: &str = "__Host-mftgw_login";
pub const LANG_COOKIE: &str = "mftgw_lang";

/// How long a session lasts.
#[derive(Debug, Clone, Copy)]
pub struct SessionTimeouts {
    /// Without a request for this long, a session ends.
    pub idle: Duration,
    /// However active, a session ends this long after login.
    pub max_age: Duration,
}

/// What the request's session cookie amounts to.
#[derive(Debug)]
pub enum SessionLookup {
    None,
    Valid(PortalSession),
    /// The session was idle too long; it is ended.
    Expired,
    /// The session belongs to another certificate; it is ended.
    OtherCertificate {
        username: String,
    },
}

/// The value of cookie `name` in the request, if it has one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: secure, HTTP-only, same-site strict, whole site.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>) -> String {
    let max_age = max_age
        .map(|age| format!("; Max-Age={}", age.as_secs()))
        .unwrap_or_default();
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{max_age}")
}

pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", Some(Duration::ZERO))
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).expect("the system random generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn token_hash(token: &str) -> String {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares a submitted CSRF token with the expected one in constant time.
pub fn csrf_matches(expected: &str, submitted: Option<&str>) -> bool {
    let Some(submitted) = submitted else {
        return false;
    };
    !expected.is_empty()
        && expected.len() == submitted.len()
        && expected
            .bytes()
            .zip(submitted.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Looks up the request's session for the certificate `fingerprint`, ending it if it is
/// expired or bound to another certificate, and recording activity if it is valid.
pub async fn lookup<S: Store>(
    store: &S,
    headers: &HeaderMap,
    fingerprint: &str,
    timeouts: SessionTimeouts,
) -> StoreResult<SessionLookup> {
    let idle_timeout = timeouts.idle;
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(SessionLookup::None);
    };
    let hash = token_hash(token);
    let Some(session) = store.portal_session(&hash).await? else {
        return Ok(SessionLookup::None);
    };
    let now = OffsetDateTime::now_utc();
    if session.cert_fingerprint != fingerprint {
        store.delete_portal_session(&hash).await?;
        return Ok(SessionLookup::OtherCertificate {
            username: session.username,
        });
    }
    if session.last_seen_at + idle_timeout < now || session.created_at + timeouts.max_age < now {
        store.delete_portal_session(&hash).await?;
        return Ok(SessionLookup::Expired);
    }
    // One write per page view would serialise every request on the store's write lock;
    // recording activity a tenth of the timeout late changes when a session ends by as much.
    if now - session.last_seen_at > idle_timeout / 10 {
        store.touch_portal_session(&hash, now).await?;
    }
    Ok(SessionLookup::Valid(session))
}

/// Starts a session for `username` under the certificate; returns the cookie's token.
pub async fn start<S: Store>(
    store: &S,
    username: &str,
    fingerprint: &str,
    must_change_password: bool,
) -> StoreResult<String> {
    let token = random_token();
    let now = OffsetDateTime::now_utc();
    store
        .create_portal_session(&PortalSession {
            token_hash: token_hash(&token),
            username: username.to_owned(),
            cert_fingerprint: fingerprint.to_owned(),
            csrf_token: random_token(),
            must_change_password,
            created_at: now,
            last_seen_at: now,
        })
        .await?;
    Ok(token)
}

/// Deletes long-expired sessions once a minute until `shutdown`.
pub async fn run_session_sweep<S: Store>(
    store: std::sync::Arc<S>,
    idle_timeout: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let idle_before = OffsetDateTime::now_utc() - idle_timeout - EXPIRED_SESSIONS_KEPT;
        if let Err(error) = store.expire_portal_sessions(idle_before).await {
            tracing::warn!(%error, "cannot sweep expired portal sessions");
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-mftgw_session=tok"),
        );
        headers.append(COOKIE, HeaderValue::from_static("mftgw_lang=en"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, LANG_COOKIE), Some("en"));
        assert_eq!(cookie(&headers, "a"), Some("1"));
        assert_eq!(cookie(&headers, "mftgw_session"), None);
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_matches("abc", Some("abc")));
        assert!(!csrf_matches("abc", Some("abd")));
        assert!(!csrf_matches("abc", Some("ab")));
        assert!(!csrf_matches("abc", None));
        assert!(!csrf_matches("", Some("")));
    }

    #[test]
    fn cookies_are_secure_http_only_and_strict() {
        let value = set_cookie(SESSION_COOKIE, "t", None);
        assert_eq!(
            value,
            "__Host-mftgw_session=t; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        assert!(clear_cookie(LOGIN_COOKIE).ends_with("Max-Age=0"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let token = random_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, random_token());
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token);
    }
}
