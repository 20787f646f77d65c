//! The portal's cookies and CSRF checks. A session cookie holds a random token, which
//! [`mftgw_core::portal::Portal::lookup_session`] turns into a session (or ends it); before
//! login, a double-submit cookie protects the login form.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

pub const SESSION_COOKIE: &str = "__Host-mftgw_session";
pub const LOGIN_COOKIE: &str = "__Host-mftgw_login";
pub const LANG_COOKIE: &str = "mftgw_lang";

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
}
