//! The backend API's handlers. Each one authenticates the backend, finds the transaction
//! among those of the backend's own services (another backend's are "not found"), and hands
//! the answer to the core, whose conditional steps make a call made twice, or racing the
//! delivery worker, have one effect.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use futures_util::StreamExt;
use mftgw_blobs::{BlobInfo, BlobStore, BlobWriter};
use mftgw_core::transactions::{
    Answered, Outbound, OutboundError, TransitionError, transaction_json,
};
use mftgw_domain::Transaction;
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::path_segment::{MAX_SEGMENT_BYTES, check_path_segment};
use mftgw_domain::{ServiceName, SkatTransactionId, Username};
use mftgw_store::Store;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::operator::bearer_matches;
use super::{ApiBackend, ApiError, ApiState, OPENAPI};
use crate::https::TlsPeer;

type Reply = Result<(StatusCode, Json<serde_json::Value>), ApiError>;

pub async fn openapi() -> ([(&'static str, &'static str); 1], &'static str) {
    ([("content-type", "application/json")], OPENAPI)
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /v1/openapi.json")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /v1/openapi.json",
    )
}

/// Path parameters, or a JSON 400 saying what was wrong with them.
fn params<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(params)| params)
        .map_err(|error| ApiError::bad_request(error.body_text()))
}

/// The backend calling, as an extractor: the one whose client certificate the connection
/// presented, else the one whose bearer token the request carries; `401` otherwise.
pub struct Caller(ApiBackend);

impl<S: Store, B: BlobStore> FromRequestParts<Arc<ApiState<S, B>>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState<S, B>>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<TlsPeer>()
            .expect("the HTTPS accept loop adds the TLS peer to every request");
        let by_certificate = peer.fingerprint.as_ref().and_then(|fingerprint| {
            state
                .backends
                .iter()
                .find(|backend| backend.client_fingerprint.as_ref() == Some(fingerprint))
        });
        let by_token = || {
            state.backends.iter().find(|backend| {
                backend
                    .token
                    .as_ref()
                    .is_some_and(|token| bearer_matches(&parts.headers, token))
            })
        };
        by_certificate
            .or_else(by_token)
            .map(|backend| Caller(backend.clone()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "present the backend's client certificate, or send its token as `Authorization: Bearer <token>`",
                )
            })
    }
}

/// The transaction `id` if it belongs to one of the backend's services.
async fn find<S: Store, B: BlobStore>(
    state: &ApiState<S, B>,
    backend: &ApiBackend,
    id: &str,
) -> Result<Transaction, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "no transaction {id} in the services of backend {}",
            backend.name
        ))
    };
    let id: SkatTransactionId = id.parse().map_err(|_| not_found())?;
    match state.transactions.find(&id).await {
        Ok(Some(transaction)) if backend.services.contains(&transaction.service) => Ok(transaction),
        Ok(_) => Err(not_found()),
        Err(error) => Err(ApiError::unavailable(error)),
    }
}

/// The transaction `id` as JSON, with its status history.
async fn current<S: Store, B: BlobStore>(
    state: &ApiState<S, B>,
    backend: &ApiBackend,
    id: &str,
    status: StatusCode,
) -> Reply {
    let transaction = find(state, backend, id).await?;
    let history = state
        .transactions
        .history(&transaction)
        .await
        .map_err(ApiError::unavailable)?;
    Ok((status, Json(transaction_json(&transaction, &history))))
}

pub async fn transaction<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    Caller(backend): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let id = params(path)?;
    current(&state, &backend, &id, StatusCode::OK).await
}

/// A refused transition is the caller's conflict; a store failure is ours.
fn transition_error(error: TransitionError) -> ApiError {
    match error {
        TransitionError::Store(error) => ApiError::unavailable(error),
        refused => ApiError::conflict(refused.to_string()),
    }
}

pub async fn accept<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    Caller(backend): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let id = params(path)?;
    let transaction = find(&state, &backend, &id).await?;
    state
        .transactions
        .accept(&transaction)
        .await
        .map_err(transition_error)?;
    current(&state, &backend, &id, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    code: String,
    message: String,
    #[serde(default)]
    resolution: String,
}

pub async fn reject<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    Caller(backend): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Rejection>, JsonRejection>,
) -> Reply {
    let id = params(path)?;
    let Json(rejection) = body.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let error = ErrorEntry {
        code: rejection.code,
        message: rejection.message,
        resolution: rejection.resolution,
    };
    error
        .check()
        .map_err(|problem| ApiError::bad_request(problem.to_string()))?;
    let transaction = find(&state, &backend, &id).await?;
    state
        .transactions
        .reject(&transaction, error)
        .await
        .map_err(transition_error)?;
    current(&state, &backend, &id, StatusCode::OK).await
}

/// `<service>_<name>`, the name of a backend's file in `/out`, if `name` is usable.
fn out_name(service: &ServiceName, name: &str) -> Result<String, ApiError> {
    check_path_segment(name)
        .map_err(|error| ApiError::bad_request(format!("file name: {error}")))?;
    let full = format!("{service}_{name}");
    if full.len() > MAX_SEGMENT_BYTES {
        return Err(ApiError::bad_request(format!(
            "file name: {full:?} is longer than {MAX_SEGMENT_BYTES} bytes"
        )));
    }
    Ok(full)
}

/// Streams a request body into a new blob.
async fn store_body<S: Store, B: BlobStore>(
    state: &ApiState<S, B>,
    body: Body,
) -> Result<BlobInfo, ApiError> {
    let mut writer = state
        .transactions
        .create_blob()
        .await
        .map_err(ApiError::unavailable)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|error| ApiError::bad_request(format!("reading the body: {error}")))?;
        writer
            .write_all(&chunk)
            .await
            .map_err(ApiError::unavailable)?;
    }
    writer.finish().await.map_err(ApiError::unavailable)
}

pub async fn respond<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    Caller(backend): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> Reply {
    let (id, name) = params(path)?;
    let transaction = find(&state, &backend, &id).await?;
    let name = out_name(&transaction.service, &name)?;
    if state
        .transactions
        .may_respond(&transaction)
        .map_err(transition_error)?
        == Answered::Before
    {
        return current(&state, &backend, &id, StatusCode::OK).await;
    }
    let blob = store_body(&state, body).await?;
    let status = match state.transactions.respond(&transaction, name, blob).await {
        Ok(Answered::Now) => StatusCode::CREATED,
        // Answered meanwhile by the same call made twice.
        Ok(Answered::Before) => StatusCode::OK,
        Err(error) => return Err(transition_error(error)),
    };
    current(&state, &backend, &id, status).await
}

#[derive(Debug, Deserialize)]
pub struct OutboundQuery {
    skat_transaction_id: Option<String>,
}

pub async fn outbound<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    Caller(backend): Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
    query: Result<Query<OutboundQuery>, QueryRejection>,
    body: Body,
) -> Reply {
    let (service, username, name) = params(path)?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let Some(service) = ServiceName::parse(service.as_str())
        .ok()
        .filter(|service| backend.services.contains(service))
    else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("backend {} does not serve {service}", backend.name),
        ));
    };
    let username = Username::parse(username.as_str())
        .map_err(|_| ApiError::not_found(format!("no user {username}")))?;
    state
        .transactions
        .may_post_outbound(&username, &service, state.retention)
        .await
        .map_err(outbound_error)?;
    let file_name = out_name(&service, &name)?;
    let skat_transaction_id = query
        .skat_transaction_id
        .map(|id| id.parse::<SkatTransactionId>())
        .transpose()
        .map_err(|_| {
            ApiError::bad_request("skat_transaction_id must be 1 to 100 visible ASCII characters")
        })?;
    let blob = store_body(&state, body).await?;
    let posted = state
        .transactions
        .post_outbound(Outbound {
            username: username.clone(),
            service: service.clone(),
            name,
            file_name: file_name.clone(),
            skat_transaction_id,
            blob,
        })
        .await
        .map_err(outbound_error)?;
    let code = if posted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(serde_json::json!({
            "username": username,
            "service": service,
            "file": file_name,
            "status_file": posted.status_file,
            "skat_transaction_id": posted.skat_transaction_id,
            "created": posted.created,
        })),
    ))
}

fn outbound_error(error: OutboundError) -> ApiError {
    match error {
        OutboundError::NoRole { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "no_role", error.to_string())
        }
        OutboundError::UnknownUser { .. } => ApiError::not_found(error.to_string()),
        OutboundError::Conflict(text) => ApiError::conflict(text),
        OutboundError::Store(error) => ApiError::unavailable(error),
    }
}
