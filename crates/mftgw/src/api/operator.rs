//! The operator surface: health (`/healthz`: the process answers), readiness (`/readyz`: the
//! store answers too), Prometheus metrics (`/metrics`: what was recorded, and the store's
//! counts as [`run_gauges`] last read them, so a scrape costs no query; with `[api]
//! metrics_token` set, only for that token), and the admin API under `/v1/admin/`,
//! authenticated by the operators' own token and audited like the admin CLI.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use metrics::gauge;
use mftgw_blobs::BlobStore;
use mftgw_domain::user::UserState;
use mftgw_domain::{ServiceName, SkatTransactionId, TransactionState, Username};
use mftgw_store::Store;
use time::format_description::well_known::Rfc3339;

use super::{ApiError, ApiState};
use mftgw_core::transactions::Operations;
use mftgw_core::users::AdminError;

type Reply = Result<Json<serde_json::Value>, ApiError>;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
) -> Result<&'static str, ApiError> {
    state
        .operations
        .ping()
        .await
        .map_err(ApiError::unavailable)?;
    state
        .transactions
        .blobs_reachable()
        .await
        .map_err(ApiError::unavailable)?;
    Ok("ready\n")
}

pub async fn metrics<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    headers: HeaderMap,
) -> Result<String, ApiError> {
    if let Some(token) = &state.metrics_token {
        bearer_matches(&headers, token)
            .then_some(())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send the metrics token as `Authorization: Bearer <token>`",
                )
            })?;
    }
    Ok(state.metrics.render())
}

/// Sets the gauges of the store's counts every `every`, until `shutdown`.
pub async fn run_gauges<S: Store>(
    operations: Arc<Operations<S>>,
    delivered_services: Vec<ServiceName>,
    every: std::time::Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    mftgw_core::periodic::every(every, shutdown, || {
        set_gauges(&operations, &delivered_services)
    })
    .await;
}

async fn set_gauges<S: Store>(operations: &Operations<S>, delivered_services: &[ServiceName]) {
    let counts = match operations.counts().await {
        Ok(counts) => counts,
        Err(error) => {
            tracing::warn!(%error, "cannot read the store's counts for the metrics");
            return;
        }
    };
    // Every state and delivered service is set, so a count that fell to zero says so.
    for transaction_state in TransactionState::ALL {
        let n = counts
            .transactions_by_state
            .iter()
            .find(|(name, _)| name == transaction_state.as_str())
            .map_or(0, |(_, n)| *n);
        gauge!("mftgw_transactions", "state" => transaction_state.as_str()).set(n as f64);
    }
    for service in delivered_services {
        let n = counts
            .work_by_service
            .iter()
            .find(|(name, _)| name == service)
            .map_or(0, |(_, n)| *n);
        gauge!("mftgw_delivery_backlog", "service" => service.to_string()).set(n as f64);
    }
}

/// Whether the request carries `Authorization: Bearer <expected>` (compared in constant time).
pub(super) fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|presented| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                presented.as_bytes(),
            )
            .is_ok()
        })
}

/// An operator, as an extractor: the request carries the operators' admin token; `401`
/// otherwise (also when no token is configured).
pub struct Operator;

impl<S: Store, B: BlobStore> FromRequestParts<Arc<ApiState<S, B>>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState<S, B>>,
    ) -> Result<Self, Self::Rejection> {
        match &state.admin_token {
            Some(expected) if bearer_matches(&parts.headers, expected) => Ok(Operator),
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the operators' admin token as `Authorization: Bearer <token>`",
            )),
        }
    }
}

/// `text` as a SKATTransactionId: one that cannot be one names no transaction.
fn transaction_id(text: &str) -> Result<SkatTransactionId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::not_found(format!("no transaction {text}")))
}

fn action_error(error: AdminError) -> ApiError {
    match error {
        AdminError::NotFound(text) => ApiError::not_found(text),
        AdminError::Invalid(text) => ApiError::bad_request(text),
        AdminError::Store(error) => ApiError::unavailable(error),
    }
}

pub async fn users<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
) -> Reply {
    let users = state.users.list().await.map_err(ApiError::unavailable)?;
    let users: Vec<serde_json::Value> = users
        .iter()
        .map(|user| {
            serde_json::json!({
                "username": user.username,
                "cvr": user.cvr,
                "account": user.account,
                "kind": user.kind,
                "state": user.state.as_str(),
                "created_at": user.created_at.format(&Rfc3339).unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "users": users })))
}

/// `text` as a username; one that cannot be a user's is one this gateway does not know.
fn known_user(text: &str) -> Result<Username, ApiError> {
    Username::parse(text).map_err(|_| ApiError::not_found(format!("no user {text}")))
}

/// `text` as a service name; one that cannot be a service's is not in the catalogue.
fn catalogued(text: &str) -> Result<ServiceName, ApiError> {
    ServiceName::parse(text)
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not a service in the catalogue")))
}

pub async fn set_state<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
    Path((username, action)): Path<(String, String)>,
) -> Reply {
    let new_state = match action.as_str() {
        "suspend" => UserState::Suspended,
        "activate" => UserState::Active,
        "delete" => UserState::Deleted,
        _ => return Err(ApiError::not_found("use suspend, activate or delete")),
    };
    state
        .users
        .set_state(&known_user(&username)?, new_state)
        .await
        .map_err(action_error)?;
    Ok(Json(
        serde_json::json!({ "username": username, "state": new_state.as_str() }),
    ))
}

pub async fn roles<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
    Path(username): Path<String>,
) -> Reply {
    let roles = state
        .users
        .roles(&known_user(&username)?)
        .await
        .map_err(|error| action_error(error.into()))?;
    Ok(Json(
        serde_json::json!({ "username": username, "services": roles }),
    ))
}

pub async fn grant<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
    Path((username, service)): Path<(String, String)>,
) -> Reply {
    let granted = state
        .users
        .grant_role(&known_user(&username)?, &catalogued(&service)?)
        .await
        .map_err(action_error)?;
    Ok(Json(
        serde_json::json!({ "username": username, "service": service, "changed": granted }),
    ))
}

pub async fn revoke<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
    Path((username, service)): Path<(String, String)>,
) -> Reply {
    let revoked = state
        .users
        .revoke_role(&known_user(&username)?, &catalogued(&service)?)
        .await
        .map_err(action_error)?;
    Ok(Json(
        serde_json::json!({ "username": username, "service": service, "changed": revoked }),
    ))
}

pub async fn services<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
) -> Reply {
    let services: Vec<serde_json::Value> = state
        .catalogue
        .services()
        .map(|service| serde_json::json!({ "name": service.name, "system": service.system }))
        .collect();
    Ok(Json(serde_json::json!({ "services": services })))
}

pub async fn deliveries<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
) -> Reply {
    let work = state
        .operations
        .pending_deliveries(10_000)
        .await
        .map_err(ApiError::unavailable)?;
    let deliveries: Vec<serde_json::Value> = work
        .iter()
        .map(|item| {
            serde_json::json!({
                "skat_transaction_id": item.transaction.skat_transaction_id,
                "username": item.transaction.username,
                "service": item.transaction.service,
                "state": item.transaction.state.as_str(),
                "attempts": item.attempts,
                "due_at": item.due_at.format(&Rfc3339).unwrap_or_default(),
                "last_error": item.last_error,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "deliveries": deliveries })))
}

pub async fn retry<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Reply {
    state
        .operations
        .retry_delivery(&transaction_id(&id)?)
        .await
        .map_err(action_error)?;
    Ok(Json(
        serde_json::json!({ "skat_transaction_id": id, "due": "now" }),
    ))
}

pub async fn replay<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Reply {
    state
        .operations
        .replay_delivery(&transaction_id(&id)?)
        .await
        .map_err(action_error)?;
    Ok(Json(
        serde_json::json!({ "skat_transaction_id": id, "replay": "scheduled" }),
    ))
}

pub async fn certificates<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    _operator: Operator,
    Path(username): Path<String>,
) -> Reply {
    let certificates = state
        .users
        .certificates(&known_user(&username)?)
        .await
        .map_err(|error| action_error(error.into()))?;
    let rfc3339 = |at: time::OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
    let certificates: Vec<serde_json::Value> = certificates
        .iter()
        .map(|certificate| {
            serde_json::json!({
                "fingerprint_sha256": certificate.fingerprint,
                "subject": certificate.subject,
                "serial": certificate.serial_hex,
                "not_after": rfc3339(certificate.not_after),
                "registered_at": rfc3339(certificate.registered_at),
                "replaced_at": certificate.replaced_at.map(rfc3339),
            })
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "username": username, "certificates": certificates }),
    ))
}
