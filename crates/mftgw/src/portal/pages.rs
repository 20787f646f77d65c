//! The portal's pages: askama templates under `templates/portal/` (HTML-escaped on output),
//! the frame they share (`base.html`), and how a page becomes a response.

use askama::Template;
use axum::http::StatusCode;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::response::{Html, IntoResponse, Response};
use time::OffsetDateTime;

use super::texts::{Lang, Texts};

/// What every page shows around its content.
pub struct Page {
    pub lang: &'static str,
    pub t: &'static Texts,
    pub title: &'static str,
    /// The signed-in person's navigation and log-out form.
    pub nav: Option<Nav>,
    pub notices: Vec<String>,
    pub errors: Vec<String>,
}

impl Page {
    pub fn new(lang: Lang, title: impl FnOnce(&'static Texts) -> &'static str) -> Page {
        let t = lang.texts();
        Page {
            lang: lang.code(),
            t,
            title: title(t),
            nav: None,
            notices: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn signed_in(mut self, username: &str, csrf: &str, current: &'static str) -> Page {
        self.nav = Some(Nav {
            username: username.to_owned(),
            csrf: csrf.to_owned(),
            current,
        });
        self
    }

    pub fn notice(mut self, notice: impl Into<String>) -> Page {
        self.notices.push(notice.into());
        self
    }

    pub fn error(mut self, error: impl Into<String>) -> Page {
        self.errors.push(error.into());
        self
    }
}

pub struct Nav {
    pub username: String,
    pub csrf: String,
    /// `overview`, `transactions` or `out`.
    pub current: &'static str,
}

#[derive(Template)]
#[template(path = "portal/login.html")]
pub struct LoginPage {
    pub page: Page,
    pub username: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "portal/refused.html")]
pub struct RefusedPage {
    pub page: Page,
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "portal/password.html")]
pub struct PasswordPage {
    pub page: Page,
    pub csrf: String,
    pub forced: bool,
}

#[derive(Template)]
#[template(path = "portal/overview.html")]
pub struct OverviewPage {
    pub page: Page,
    pub csrf: String,
    /// `active`, `pending` or `refused`: how the state line is coloured.
    pub state_class: &'static str,
    pub state_text: String,
    pub can_register: bool,
    pub common_name: String,
    pub expiry: String,
    pub kind: &'static str,
    pub legal_identifier: String,
    pub account: String,
    pub se_number: String,
    pub email: String,
    pub ftps: bool,
    pub as4: bool,
    pub registration: &'static str,
    pub gateway_user: Option<String>,
    pub gateway_password: Option<String>,
    /// The profile can be changed (not with a revoked certificate).
    pub editable: bool,
}

#[derive(Template)]
#[template(path = "portal/transactions.html")]
pub struct TransactionsPage {
    pub page: Page,
    pub rows: Vec<TransactionRow>,
}

pub struct TransactionRow {
    pub received_at: String,
    pub service: String,
    pub file: String,
    pub skat_id: String,
    pub size: String,
    pub state: &'static str,
    pub history: Vec<String>,
}

#[derive(Template)]
#[template(path = "portal/out.html")]
pub struct OutPage {
    pub page: Page,
    pub rows: Vec<OutRow>,
}

pub struct OutRow {
    pub name: String,
    pub size: String,
    pub created_at: String,
}

/// A page with nothing but its title and messages (errors, "logged out").
#[derive(Template)]
#[template(path = "portal/message.html")]
pub struct MessagePage {
    pub page: Page,
}

/// The rendered page with `status` and the given `Set-Cookie` values.
pub fn render(status: StatusCode, template: &impl Template, cookies: &[String]) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            append_cookies(&mut response, cookies);
            response
        }
        Err(error) => {
            tracing::error!(%error, "portal page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// `303 See Other` to `location` (after a form, so that reloading does not post again).
pub fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, location.to_owned())]).into_response();
    append_cookies(&mut response, cookies);
    response
}

fn append_cookies(response: &mut Response, cookies: &[String]) {
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
}

/// A message page: `title` and `error` in the visitor's language, with `status`.
pub fn error_page(lang: Lang, status: StatusCode, error: &'static str) -> Response {
    let page = Page::new(lang, |t| t.error_title).error(error);
    render(status, &MessagePage { page }, &[])
}

/// `dd-mm-yyyy HH:MM` in Copenhagen time, as Danish users read dates.
pub fn local_time(at: OffsetDateTime) -> String {
    let at = mftgw_domain::status::copenhagen(at);
    format!(
        "{:02}-{:02}-{:04} {:02}:{:02}",
        at.day(),
        u8::from(at.month()),
        at.year(),
        at.hour(),
        at.minute()
    )
}

/// `dd-mm-yyyy` in Copenhagen time.
pub fn local_date(at: OffsetDateTime) -> String {
    local_time(at)[..10].to_owned()
}

/// Bytes in B, KiB, MiB or GiB, one decimal above bytes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_are_shown_in_copenhagen() {
        assert_eq!(
            local_time(datetime!(2026-07-01 10:05 UTC)),
            "01-07-2026 12:05"
        );
        assert_eq!(local_date(datetime!(2026-12-31 23:30 UTC)), "01-01-2027");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 + 1), "5.0 MiB");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = Page::new(Lang::En, |t| t.error_title).error("<script>alert(1)</script>");
        let html = MessagePage { page }.render().unwrap();
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
    }
}
