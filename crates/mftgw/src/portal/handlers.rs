//! The portal's request handlers. Every request is made with a client certificate (the TLS
//! layer demands one); the certificate names the person's username, or gets the refusal page.
//! Pages other than the login page need a session bound to that certificate; every form
//! carries a CSRF token; state changes answer `303 See Other` and are audited.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mftgw_domain::Username;
use mftgw_domain::audit::{AuditEvent, Reason};
use mftgw_domain::login::LoginRefusal;
use mftgw_domain::portal::{
    FieldProblem, Interfaces, PortalSecret, check_new_portal_password, parse_email, parse_se_number,
};
use mftgw_oces::certificate::CertificateInfo;
use mftgw_oces::identity::{IdentityRefusal, OcesIdentity, identity_from_der};
use mftgw_store::{NewRegistrationJob, PortalProfile, PortalSession, Store, StoreError};
use serde::Deserialize;
use time::OffsetDateTime;

use super::pages::{
    LoginPage, OutPage, OutRow, OverviewPage, Page, PasswordPage, RefusedPage, TransactionRow,
    TransactionsPage, error_page, human_size, local_date, local_time, render, see_other,
};
use super::session::{
    LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, clear_cookie, cookie, csrf_matches, set_cookie,
};
use super::texts::Lang;
use super::{FirstPassword, PortalState};
use crate::https::TlsPeer;
use mftgw_core::portal::{Listed, Presented, RegistrationStatus, SessionLookup, random_token};
use mftgw_core::throttle::{AttemptKeys, Verdict};
use mftgw_core::users::{CertifiedAccount, Standing};

/// A page, or the page that answers instead (login, refusal, error): both are responses.
type PortalResult = Result<Response, Response>;

/// What every portal request brings: the portal, the TLS peer (address and certificate) and
/// the headers (cookies).
pub struct Visit<S> {
    state: Arc<PortalState<S>>,
    peer: TlsPeer,
    headers: HeaderMap,
}

impl<S: Store> FromRequestParts<Arc<PortalState<S>>> for Visit<S> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<PortalState<S>>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<TlsPeer>()
            .cloned()
            .expect("the HTTPS accept loop adds the TLS peer to every request");
        Ok(Visit {
            state: Arc::clone(state),
            peer,
            headers: parts.headers.clone(),
        })
    }
}

/// The certificate the request came with, and whom it names.
struct Certified {
    lang: Lang,
    address: std::net::IpAddr,
    fingerprint: String,
    der: Vec<u8>,
    info: CertificateInfo,
    identity: OcesIdentity,
    username: Username,
    /// Revoked by the CRLs in force: it may register, and nothing else (SPEC §1).
    revoked: bool,
}

impl Certified {
    fn audit(&self, event: AuditEvent) -> AuditEvent {
        event
            .with_username(&self.username)
            .with_peer_ip(self.address.to_string())
            .with_cert_fingerprint(&self.fingerprint)
    }

    fn presented<'a, S>(&'a self, state: &'a PortalState<S>) -> Presented<'a> {
        Presented {
            info: &self.info,
            der: &self.der,
            trust: &state.trust,
        }
    }
}

/// The refusal page for what only a certificate in good standing may do (change the
/// password or the profile, see transactions and `/out`): a revoked certificate, a replaced
/// one, and the certificates of a suspended or deleted user see the overview, and may log
/// in and out, and nothing else.
async fn refuse_if_limited<S: Store>(
    state: &PortalState<S>,
    who: &Certified,
) -> Result<(), Response> {
    let refused = |text| error_page(who.lang, StatusCode::FORBIDDEN, text);
    if who.revoked {
        return Err(refused(who.lang.texts().error_revoked));
    }
    let Standing { known, owner } = state
        .users
        .standing(Some(&who.username), &who.fingerprint)
        .await
        .map_err(|error| internal(who.lang, error))?;
    let replaced = owner.is_some_and(|owner| !owner.current);
    let barred = known.is_some_and(|known| {
        matches!(
            known.user.effective_state(now()),
            mftgw_domain::UserState::Suspended | mftgw_domain::UserState::Deleted
        )
    });
    if replaced || barred {
        return Err(refused(who.lang.texts().error_limited));
    }
    Ok(())
}

pub(super) fn lang(headers: &HeaderMap) -> Lang {
    Lang::from_code(cookie(headers, LANG_COOKIE))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl<S: Store> Visit<S> {
    /// The certificate's identity, or the refusal page for FOCES, personal and other
    /// certificates that name no gateway user, and for one outside its validity (a resumed
    /// TLS session does not check that again). Revocation is looked up on every request, so
    /// a CRL reload reaches sessions already open.
    async fn certified(&self) -> Result<Certified, Response> {
        let (state, peer, headers) = (&*self.state, &self.peer, &self.headers);
        let lang = lang(headers);
        let (Some(der), Some(fingerprint)) = (&peer.certificate, &peer.fingerprint) else {
            // The TLS layer requires a certificate; this is a configuration mistake.
            return Err(error_page(
                lang,
                StatusCode::FORBIDDEN,
                lang.texts().refused_other,
            ));
        };
        let address = peer.address.ip();
        let info = CertificateInfo::from_der(der)
            .map_err(|_| error_page(lang, StatusCode::FORBIDDEN, lang.texts().refused_other))?;
        let now = now();
        let identity = if now < info.not_before || info.not_after < now {
            Err((
                Reason::CertificateExpired.as_str(),
                lang.texts().refused_expired,
                format!(
                    "{} – {}",
                    local_date(info.not_before),
                    local_date(info.not_after)
                ),
            ))
        } else {
            identity_from_der(der)
                .and_then(OcesIdentity::of_company)
                .and_then(|identity| {
                    let account = CertifiedAccount::of(&identity)
                        .map_err(|invalid| IdentityRefusal::MalformedAccountId(invalid.text))?;
                    Ok((identity, account.username))
                })
                .map_err(|refusal| (refusal.code(), lang.refusal(&refusal), refusal.to_string()))
        };
        match identity {
            Ok((identity, username)) => Ok(Certified {
                lang,
                address,
                fingerprint: fingerprint.clone(),
                der: der.to_vec(),
                info,
                username,
                identity,
                revoked: state.trust.is_revoked(der),
            }),
            Err((code, reason, detail)) => {
                if state.first_refusal_in_a_while(fingerprint) {
                    audit(
                        state,
                        AuditEvent::refused(now, "portal.certificate", code)
                            .with_peer_ip(address.to_string())
                            .with_cert_fingerprint(fingerprint),
                    )
                    .await;
                }
                let page = Page::new(lang, |t| t.refused_title);
                Err(render(
                    StatusCode::FORBIDDEN,
                    &RefusedPage {
                        page,
                        reason,
                        detail,
                    },
                    &[],
                ))
            }
        }
    }

    /// What every form handler after login starts with: the certificate, its session, the form,
    /// and the form's CSRF token checked against the session's.
    async fn signed_in_form<T: Protected>(
        &self,
        submitted: Result<Form<T>, FormRejection>,
        before_password_change: BeforePasswordChange,
    ) -> Result<(Certified, PortalSession, T), Response> {
        let (state, headers) = (&*self.state, &self.headers);
        let who = self.certified().await?;
        let session = match before_password_change {
            BeforePasswordChange::Allowed => signed_in(state, &who, headers).await?,
            BeforePasswordChange::Refused => signed_in_with_password(state, &who, headers).await?,
        };
        let submitted = form(who.lang, submitted)?;
        check_csrf(state, &who, &session.csrf_token, submitted.csrf()).await?;
        Ok((who, session, submitted))
    }
}

async fn audit<S: Store>(state: &PortalState<S>, event: AuditEvent) {
    state.auditor.record(event).await;
}

fn internal(lang: Lang, error: StoreError) -> Response {
    tracing::error!(%error, "portal: store unavailable");
    error_page(
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        lang.texts().error_internal,
    )
}

/// The login page for the certificate, with a fresh login CSRF cookie.
fn login_page(who: &Certified, status: StatusCode, page: Page) -> Response {
    let csrf = random_token();
    render(
        status,
        &LoginPage {
            page,
            username: who.username.to_string(),
            csrf: csrf.clone(),
        },
        &[set_cookie(LOGIN_COOKIE, &csrf, None)],
    )
}

/// The request's session, or the login page (with why there is none).
async fn signed_in<S: Store>(
    state: &PortalState<S>,
    who: &Certified,
    headers: &HeaderMap,
) -> Result<PortalSession, Response> {
    let lookup = state
        .portal
        .lookup_session(cookie(headers, SESSION_COOKIE), &who.fingerprint)
        .await
        .map_err(|error| internal(who.lang, error))?;
    let page = Page::new(who.lang, |t| t.login_title);
    match lookup {
        SessionLookup::Valid(session) => Ok(session),
        SessionLookup::None => Err(login_page(who, StatusCode::OK, page)),
        SessionLookup::Expired => {
            let page = page.notice(who.lang.texts().session_expired);
            Err(login_page(who, StatusCode::OK, page))
        }
        SessionLookup::OtherCertificate { username } => {
            audit(
                state,
                who.audit(AuditEvent::refused(
                    now(),
                    "portal.session",
                    Reason::OtherCertificate.as_str(),
                ))
                .with_detail(serde_json::json!({ "session_username": username })),
            )
            .await;
            let page = page.error(who.lang.texts().session_other_certificate);
            Err(login_page(who, StatusCode::FORBIDDEN, page))
        }
    }
}

/// A signed-in request that has chosen its own password (others are sent to change it). A
/// revoked certificate is never sent there: it may not change the password.
async fn signed_in_with_password<S: Store>(
    state: &PortalState<S>,
    who: &Certified,
    headers: &HeaderMap,
) -> Result<PortalSession, Response> {
    let session = signed_in(state, who, headers).await?;
    if session.must_change_password && !who.revoked {
        return Err(see_other("/password", &[]));
    }
    Ok(session)
}

async fn check_csrf<S: Store>(
    state: &PortalState<S>,
    who: &Certified,
    expected: &str,
    submitted: Option<&str>,
) -> Result<(), Response> {
    if csrf_matches(expected, submitted) {
        return Ok(());
    }
    audit(
        state,
        who.audit(AuditEvent::refused(
            now(),
            "portal.csrf",
            Reason::CsrfTokenMismatch.as_str(),
        )),
    )
    .await;
    Err(error_page(
        who.lang,
        StatusCode::FORBIDDEN,
        who.lang.texts().error_csrf,
    ))
}

/// A form that carries the session's CSRF token.
trait Protected {
    fn csrf(&self) -> Option<&str>;
}

/// Whether a form may be used before the first-login password change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BeforePasswordChange {
    Allowed,
    Refused,
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the page to answer with, built once per request"
)]
fn form<T>(lang: Lang, form: Result<Form<T>, FormRejection>) -> Result<T, Response> {
    form.map(|Form(form)| form).map_err(|rejection| {
        let status = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        error_page(lang, status, lang.texts().error_bad_form)
    })
}

#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    done: Option<String>,
}

/// `/`: the login page, or the overview.
pub async fn home<S: Store>(visit: Visit<S>, Query(query): Query<HomeQuery>) -> PortalResult {
    let Visit { state, headers, .. } = &visit;
    let who = visit.certified().await?;
    let session = signed_in_with_password(state, &who, headers).await?;
    let t = who.lang.texts();
    let notice = match query.done.as_deref() {
        Some("saved") => Some(t.changes_saved),
        Some("registration") => Some(t.registration_requested),
        Some("password") => Some(t.password_changed),
        _ => None,
    };
    let mut page = Page::new(who.lang, |t| t.overview_title);
    if let Some(notice) = notice {
        page = page.notice(notice);
    }
    overview(state, &who, &session, page, None, StatusCode::OK).await
}

/// The profile fields as submitted, shown again when they were refused.
struct SubmittedProfile {
    se_number: String,
    email: String,
    ftps: bool,
    as4: bool,
}

async fn overview<S: Store>(
    state: &PortalState<S>,
    who: &Certified,
    session: &PortalSession,
    page: Page,
    submitted: Option<SubmittedProfile>,
    status: StatusCode,
) -> PortalResult {
    let lang = who.lang;
    let t = lang.texts();
    let registration = state
        .portal
        .registration_status(&who.username, &who.presented(state), now())
        .await
        .map_err(|error| internal(lang, error))?;
    let account = state
        .portal
        .account(&who.username)
        .await
        .map_err(|error| internal(lang, error))?;
    let profile = account.map(|account| account.profile);
    let ftps_chosen = profile
        .as_ref()
        .is_none_or(|profile| Interfaces::from_stored(&profile.interfaces).ftps);
    let shows_gateway_user = registration.is_registered() && !who.revoked;
    let gateway_password = if shows_gateway_user {
        state
            .users
            .gateway_password_sealed(&who.username)
            .await
            .map_err(|error| internal(lang, error))?
            .and_then(|sealed| state.password_key.unseal(&who.username, &sealed))
    } else {
        None
    };
    let (state_class, state_text) = match &registration {
        _ if who.revoked => ("refused", t.state_revoked.to_owned()),
        RegistrationStatus::NotRegistered => ("pending", t.state_not_registered.to_owned()),
        RegistrationStatus::RenewalPossible => ("pending", lang.renewal(who.username.as_str())),
        RegistrationStatus::CannotReplaceRegistered => ("refused", t.state_older.to_owned()),
        RegistrationStatus::Queued { since } => ("pending", lang.queued(&local_time(*since))),
        RegistrationStatus::Failed { reason } => ("refused", lang.registration_failed(reason)),
        RegistrationStatus::PendingActivation { from } => {
            ("pending", lang.pending_activation(&local_time(*from)))
        }
        RegistrationStatus::Active if !ftps_chosen => {
            ("pending", t.state_active_as4_only.to_owned())
        }
        RegistrationStatus::Active => ("active", t.state_active.to_owned()),
        RegistrationStatus::Replaced => ("refused", t.state_replaced.to_owned()),
        RegistrationStatus::Suspended => ("refused", t.state_suspended.to_owned()),
        RegistrationStatus::Deleted => ("refused", t.state_deleted.to_owned()),
    };
    let submitted = submitted.unwrap_or_else(|| {
        let interfaces = profile
            .as_ref()
            .map(|profile| Interfaces::from_stored(&profile.interfaces))
            .unwrap_or_default();
        SubmittedProfile {
            se_number: profile
                .as_ref()
                .and_then(|profile| profile.se_number.clone())
                .unwrap_or_default(),
            email: profile
                .as_ref()
                .and_then(|profile| profile.email.clone())
                .or_else(|| who.info.email.clone())
                .unwrap_or_default(),
            ftps: interfaces.ftps,
            as4: interfaces.as4,
        }
    });
    let page = page.signed_in(who.username.as_str(), &session.csrf_token, "overview");
    Ok(render(
        status,
        &OverviewPage {
            page,
            csrf: session.csrf_token.clone(),
            state_class,
            state_text,
            can_register: registration.can_register(),
            common_name: who.info.common_name.clone().unwrap_or_default(),
            expiry: local_date(who.info.not_after),
            kind: lang.certificate_kind(who.identity.kind),
            legal_identifier: who
                .identity
                .cvr
                .as_ref()
                .map(|cvr| format!("CVR_{cvr}"))
                .unwrap_or_default(),
            account: who.identity.account_label(),
            se_number: submitted.se_number,
            email: submitted.email,
            ftps: submitted.ftps,
            as4: submitted.as4,
            registration: lang.registration_word(&registration),
            gateway_user: shows_gateway_user.then(|| who.username.to_string()),
            gateway_password,
            editable: !who.revoked,
        },
        &[],
    ))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: Option<String>,
    password: Option<String>,
}

/// `POST /login`: the portal password for the certificate's username.
pub async fn login<S: Store>(
    visit: Visit<S>,
    submitted: Result<Form<LoginForm>, FormRejection>,
) -> PortalResult {
    let Visit { state, headers, .. } = &visit;
    let who = visit.certified().await?;
    let submitted = form(who.lang, submitted)?;
    let expected = cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    check_csrf(state, &who, expected, submitted.csrf.as_deref()).await?;
    let t = who.lang.texts();
    let current = state
        .users
        .find(&who.username)
        .await
        .map_err(|error| internal(who.lang, error))?;
    let keys = attempt_keys(&who, current.as_ref());
    let _evaluating = state.throttle.serialize(&keys).await;
    let delay = match state.throttle.verdict(&keys) {
        Verdict::Blocked => {
            audit(
                state,
                who.audit(AuditEvent::refused(
                    now(),
                    "portal.login",
                    LoginRefusal::Blocked.code(),
                )),
            )
            .await;
            let page = Page::new(who.lang, |t| t.login_title).error(t.login_blocked);
            return Err(login_page(&who, StatusCode::TOO_MANY_REQUESTS, page));
        }
        Verdict::Delay(delay) => delay,
    };
    // Before the check: a client that gives up waiting learns nothing.
    tokio::time::sleep(delay).await;
    let account = state
        .portal
        .account(&who.username)
        .await
        .map_err(|error| internal(who.lang, error))?;
    let secret = portal_secret(state.first_password, account, now());
    let must_change = !matches!(secret, PortalSecret::Chosen(_));
    let password = submitted.password.unwrap_or_default();
    let correct = state
        .verify_password(who.username.as_str(), secret, password)
        .await;
    state.throttle.record(&keys, correct);
    if !correct {
        audit(
            state,
            who.audit(AuditEvent::refused(
                now(),
                "portal.login",
                LoginRefusal::WrongPassword.code(),
            )),
        )
        .await;
        let page = Page::new(who.lang, |t| t.login_title).error(t.login_wrong_password);
        return Err(login_page(&who, StatusCode::UNAUTHORIZED, page));
    }
    let token = state
        .portal
        .start_session(&who.username, &who.fingerprint, must_change)
        .await
        .map_err(|error| internal(who.lang, error))?;
    audit(
        state,
        who.audit(AuditEvent::allowed(now(), "portal.login"))
            .with_detail(serde_json::json!({ "first_login": must_change, "revoked": who.revoked })),
    )
    .await;
    let next = if must_change && !who.revoked {
        "/password"
    } else {
        "/"
    };
    Ok(see_other(
        next,
        &[
            set_cookie(SESSION_COOKIE, &token, None),
            clear_cookie(LOGIN_COOKIE),
        ],
    ))
}

/// `GET /password`.
pub async fn password_page<S: Store>(visit: Visit<S>) -> PortalResult {
    let Visit { state, headers, .. } = &visit;
    let who = visit.certified().await?;
    let session = signed_in(state, &who, headers).await?;
    refuse_if_limited(state, &who).await?;
    Ok(password_form(&who, &session, None, StatusCode::OK))
}

fn password_form(
    who: &Certified,
    session: &PortalSession,
    error: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let mut page = Page::new(who.lang, |t| t.change_password_title).signed_in(
        who.username.as_str(),
        &session.csrf_token,
        "overview",
    );
    if let Some(error) = error {
        page = page.error(error);
    }
    render(
        status,
        &PasswordPage {
            page,
            csrf: session.csrf_token.clone(),
            forced: session.must_change_password,
        },
        &[],
    )
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    current: Option<String>,
    new: Option<String>,
    confirm: Option<String>,
}

impl Protected for PasswordForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /password`: the current password and the new one twice. Other sessions of the user
/// end; this one is replaced by a fresh one.
pub async fn change_password<S: Store>(
    visit: Visit<S>,
    submitted: Result<Form<PasswordForm>, FormRejection>,
) -> PortalResult {
    let state = &visit.state;
    let (who, session, submitted) = visit
        .signed_in_form(submitted, BeforePasswordChange::Allowed)
        .await?;
    refuse_if_limited(state, &who).await?;
    let lang = who.lang;
    let current = state
        .users
        .find(&who.username)
        .await
        .map_err(|error| internal(lang, error))?;
    let keys = attempt_keys(&who, current.as_ref());
    let _evaluating = state.throttle.serialize(&keys).await;
    match state.throttle.verdict(&keys) {
        Verdict::Blocked => {
            audit(
                state,
                who.audit(AuditEvent::refused(
                    now(),
                    "portal.password",
                    LoginRefusal::Blocked.code(),
                )),
            )
            .await;
            return Err(password_form(
                &who,
                &session,
                Some(lang.texts().login_blocked),
                StatusCode::TOO_MANY_REQUESTS,
            ));
        }
        Verdict::Delay(delay) => tokio::time::sleep(delay).await,
    }
    let account = state
        .portal
        .account(&who.username)
        .await
        .map_err(|error| internal(lang, error))?;
    let secret = portal_secret(state.first_password, account, now());
    let current = submitted.current.unwrap_or_default();
    let new = submitted.new.unwrap_or_default();
    let confirm = submitted.confirm.unwrap_or_default();
    let correct = state
        .verify_password(who.username.as_str(), secret, current.clone())
        .await;
    state.throttle.record(&keys, correct);
    let refusal = if !correct {
        Some((
            Reason::WrongCurrentPassword.as_str(),
            lang.texts().current_password_wrong,
        ))
    } else {
        check_new_portal_password(who.username.as_str(), &current, &new, &confirm)
            .err()
            .map(|problem| (problem_code(problem), lang.field_problem(problem)))
    };
    if let Some((code, text)) = refusal {
        audit(
            state,
            who.audit(AuditEvent::refused(now(), "portal.password", code)),
        )
        .await;
        return Err(password_form(
            &who,
            &session,
            Some(text),
            StatusCode::BAD_REQUEST,
        ));
    }
    let hash = state.hash_password(new).await.ok_or_else(|| {
        error_page(
            lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            lang.texts().error_internal,
        )
    })?;
    let token = state
        .portal
        .change_password(&who.username, &who.fingerprint, &hash)
        .await
        .map_err(|error| internal(lang, error))?;
    audit(
        state,
        who.audit(AuditEvent::allowed(now(), "portal.password")),
    )
    .await;
    Ok(see_other(
        "/?done=password",
        &[set_cookie(SESSION_COOKIE, &token, None)],
    ))
}

fn problem_code(problem: FieldProblem) -> &'static str {
    match problem {
        FieldProblem::PasswordTooShort => "password_too_short",
        FieldProblem::PasswordTooLong => "password_too_long",
        FieldProblem::PasswordIsUsername => "password_is_username",
        FieldProblem::PasswordUnchanged => "password_unchanged",
        FieldProblem::PasswordMismatch => "password_mismatch",
        FieldProblem::PasswordControlCharacters => "password_control_characters",
        FieldProblem::MalformedSeNumber => "malformed_se_number",
        FieldProblem::MalformedEmail => "malformed_email",
        FieldProblem::NoInterface => "no_interface",
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

impl Protected for CsrfOnly {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /register`: queues the registration of the presented certificate (once).
pub async fn register<S: Store>(
    visit: Visit<S>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> PortalResult {
    let state = &visit.state;
    let (who, _, _) = visit
        .signed_in_form(submitted, BeforePasswordChange::Refused)
        .await?;
    let status = state
        .portal
        .registration_status(&who.username, &who.presented(state), now())
        .await
        .map_err(|error| internal(who.lang, error))?;
    if !status.can_register() {
        audit(
            state,
            who.audit(AuditEvent::info(now(), "portal.register_requested"))
                .with_reason(Reason::NothingToRegister.as_str())
                .with_detail(serde_json::json!({ "status": format!("{status:?}") })),
        )
        .await;
        return Ok(see_other("/", &[]));
    }
    let (job, created) = state
        .portal
        .request_registration(NewRegistrationJob {
            username: who.username.clone(),
            cert_fingerprint: who.fingerprint.clone(),
            cert_der: who.der.clone(),
            requested_at: now(),
        })
        .await
        .map_err(|error| internal(who.lang, error))?;
    audit(
        state,
        who.audit(AuditEvent::info(now(), "portal.register_requested"))
            .with_detail(serde_json::json!({ "job": job.id, "queued": created })),
    )
    .await;
    Ok(see_other("/?done=registration", &[]))
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    csrf: Option<String>,
    se_number: Option<String>,
    email: Option<String>,
    ftps: Option<String>,
    as4: Option<String>,
}

impl Protected for ProfileForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /profile`: SE-number, e-mail and interfaces, all or nothing.
pub async fn profile<S: Store>(
    visit: Visit<S>,
    submitted: Result<Form<ProfileForm>, FormRejection>,
) -> PortalResult {
    let state = &visit.state;
    let (who, session, submitted) = visit
        .signed_in_form(submitted, BeforePasswordChange::Refused)
        .await?;
    refuse_if_limited(state, &who).await?;
    let se_number = submitted.se_number.unwrap_or_default();
    let email = submitted.email.unwrap_or_default();
    let ftps = submitted.ftps.is_some();
    let as4 = submitted.as4.is_some();
    let parsed = (|| {
        Ok::<_, FieldProblem>(PortalProfile {
            se_number: parse_se_number(&se_number)?,
            email: parse_email(&email)?,
            interfaces: Interfaces::new(ftps, as4)?.to_stored(),
        })
    })();
    let profile = match parsed {
        Ok(profile) => profile,
        Err(problem) => {
            audit(
                state,
                who.audit(AuditEvent::refused(
                    now(),
                    "portal.profile",
                    problem_code(problem),
                )),
            )
            .await;
            let page =
                Page::new(who.lang, |t| t.overview_title).error(who.lang.field_problem(problem));
            let shown = SubmittedProfile {
                se_number,
                email,
                ftps,
                as4,
            };
            return overview(
                state,
                &who,
                &session,
                page,
                Some(shown),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    state
        .portal
        .set_profile(&who.username, &profile)
        .await
        .map_err(|error| internal(who.lang, error))?;
    audit(
        state,
        who.audit(AuditEvent::allowed(now(), "portal.profile"))
            .with_detail(serde_json::json!({
                "se_number": profile.se_number,
                "email": profile.email,
                "interfaces": profile.interfaces,
            })),
    )
    .await;
    Ok(see_other("/?done=saved", &[]))
}

/// How many transactions the portal lists.
const RECENT_TRANSACTIONS: u32 = 50;

/// `GET /transactions`: the user's recent transactions with their status history.
pub async fn transactions<S: Store>(visit: Visit<S>) -> PortalResult {
    let Visit { state, headers, .. } = &visit;
    let who = visit.certified().await?;
    let session = signed_in_with_password(state, &who, headers).await?;
    refuse_if_limited(state, &who).await?;
    let lang = who.lang;
    let rows = state
        .portal
        .recent_transactions(&who.username, RECENT_TRANSACTIONS)
        .await
        .map_err(|error| internal(lang, error))?
        .into_iter()
        .map(
            |Listed {
                 transaction,
                 history,
             }| TransactionRow {
                received_at: local_time(transaction.received_at),
                service: transaction.service.to_string(),
                file: transaction.ftp_transaction_id.to_string(),
                skat_id: transaction.skat_transaction_id.to_string(),
                size: human_size(transaction.size),
                state: lang.transaction_state(transaction.state),
                history: history
                    .into_iter()
                    .map(|(code, at)| format!("{} · {}", lang.status_code(code), local_time(at)))
                    .collect(),
            },
        )
        .collect();
    audit(
        state,
        who.audit(AuditEvent::info(now(), "portal.view"))
            .with_reason("transactions"),
    )
    .await;
    let page = Page::new(lang, |t| t.transactions_title).signed_in(
        who.username.as_str(),
        &session.csrf_token,
        "transactions",
    );
    Ok(render(
        StatusCode::OK,
        &TransactionsPage { page, rows },
        &[],
    ))
}

/// `GET /out`: what is in the user's `/out`.
pub async fn out<S: Store>(visit: Visit<S>) -> PortalResult {
    let Visit { state, headers, .. } = &visit;
    let who = visit.certified().await?;
    let session = signed_in_with_password(state, &who, headers).await?;
    refuse_if_limited(state, &who).await?;
    let files = state
        .portal
        .out_files(&who.username)
        .await
        .map_err(|error| internal(who.lang, error))?;
    let rows = files
        .into_iter()
        .map(|file| OutRow {
            name: file.name,
            size: human_size(file.size),
            created_at: local_time(file.created_at),
        })
        .collect();
    let page = Page::new(who.lang, |t| t.out_title).signed_in(
        who.username.as_str(),
        &session.csrf_token,
        "out",
    );
    Ok(render(StatusCode::OK, &OutPage { page, rows }, &[]))
}

/// `POST /logout`.
pub async fn logout<S: Store>(
    visit: Visit<S>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> PortalResult {
    let state = &visit.state;
    let (who, session, _) = visit
        .signed_in_form(submitted, BeforePasswordChange::Allowed)
        .await?;
    state
        .portal
        .end_session(&session)
        .await
        .map_err(|error| internal(who.lang, error))?;
    audit(
        state,
        who.audit(AuditEvent::allowed(now(), "portal.logout")),
    )
    .await;
    let page = Page::new(who.lang, |t| t.login_title).notice(who.lang.texts().logged_out);
    let mut response = login_page(&who, StatusCode::OK, page);
    if let Ok(value) = clear_cookie(SESSION_COOKIE).parse() {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /lang/{da|en}`: remembers the language and goes back to the overview.
pub async fn set_lang(Path(code): Path<String>) -> Response {
    let lang = Lang::from_code(Some(&code));
    see_other(
        "/",
        &[set_cookie(
            LANG_COOKIE,
            lang.code(),
            Some(std::time::Duration::from_secs(365 * 24 * 60 * 60)),
        )],
    )
}

pub async fn not_found(headers: HeaderMap) -> Response {
    let lang = lang(&headers);
    error_page(lang, StatusCode::NOT_FOUND, lang.texts().error_not_found)
}

pub async fn stylesheet() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/portal.css"),
    )
        .into_response()
}

/// The throttle keys of a portal password attempt: the user's, when the certificate is the
/// registered one or the user is not registered yet, else the certificate's own.
fn attempt_keys(who: &Certified, current: Option<&mftgw_domain::KnownUser>) -> AttemptKeys {
    let holds_current =
        current.is_none_or(|known| known.current_cert_fingerprint == who.fingerprint);
    AttemptKeys::new(
        mftgw_ftps::client_key(who.address),
        &who.fingerprint,
        holds_current.then_some(&who.username),
    )
}

/// What the password typed must match: the chosen one, or the first-login secret.
fn portal_secret(
    first_password: FirstPassword,
    account: Option<mftgw_store::PortalAccount>,
    now: OffsetDateTime,
) -> PortalSecret {
    let (chosen, initial_code) = match account {
        Some(account) => (account.password_hash, account.initial_code),
        None => (None, None),
    };
    match (chosen, first_password) {
        (Some(hash), _) => PortalSecret::Chosen(hash),
        (None, FirstPassword::Username) => PortalSecret::Username,
        (None, FirstPassword::OperatorCode) => PortalSecret::InitialCode(
            initial_code
                .filter(|code| code.expires_at > now)
                .map(|code| code.hash),
        ),
    }
}
