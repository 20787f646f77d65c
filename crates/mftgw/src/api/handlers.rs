//! The backend API's handlers. Each one authenticates the backend, finds the transaction
//! among those of the backend's own services (another backend's are "not found"), and moves
//! it with the same conditional store steps the delivery worker uses, so that a call made
//! twice, or racing the worker, has one effect.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use futures_util::StreamExt;
use mftgw_blobs::{BlobInfo, BlobStore, BlobWriter};
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::path_segment::{MAX_SEGMENT_BYTES, check_path_segment};
use mftgw_domain::status::{StatusCode as Status, StatusFile};
use mftgw_domain::{Transaction, TransactionState};
use mftgw_store::{Advance, NewOutFile, NewOutbound, OutContent, Store, StoreError};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use super::{ApiBackend, ApiError, ApiState, OPENAPI};
use crate::delivery::{Answer, answer_step, delivered_step};
use crate::https::TlsPeer;
use crate::telemetry;
use crate::transactions::transaction_json;

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

/// The backend calling: the one whose client certificate the connection presented, else
/// the one whose bearer token the request carries.
fn authenticate<'a, S, B>(
    state: &'a ApiState<S, B>,
    peer: &TlsPeer,
    headers: &HeaderMap,
) -> Result<&'a ApiBackend, ApiError> {
    if let Some(fingerprint) = &peer.fingerprint
        && let Some(backend) = state
            .backends
            .iter()
            .find(|backend| backend.client_fingerprint.as_ref() == Some(fingerprint))
    {
        return Ok(backend);
    }
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "present the backend's client certificate, or send its token as `Authorization: Bearer <token>`",
        )
    };
    let token = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    state
        .backends
        .iter()
        .find(|backend| {
            backend.token.as_ref().is_some_and(|expected| {
                aws_lc_rs::constant_time::verify_slices_are_equal(
                    expected.as_bytes(),
                    token.as_bytes(),
                )
                .is_ok()
            })
        })
        .ok_or_else(unauthorized)
}

/// The transaction `id` if it belongs to one of the backend's services.
async fn find<S: Store, B: BlobStore>(
    state: &ApiState<S, B>,
    backend: &ApiBackend,
    id: &str,
) -> Result<Transaction, ApiError> {
    match state.transactions.store.transaction(id).await {
        Ok(Some(transaction)) if backend.services.contains(&transaction.service) => Ok(transaction),
        Ok(_) => Err(ApiError::not_found(format!(
            "no transaction {id} in the services of backend {}",
            backend.name
        ))),
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
        .store
        .status_history(transaction.id)
        .await
        .map_err(ApiError::unavailable)?;
    Ok((status, Json(transaction_json(&transaction, &history))))
}

pub async fn transaction<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Extension(peer): Extension<TlsPeer>,
) -> Reply {
    let backend = authenticate(&state, &peer, &headers)?;
    let id = params(path)?;
    current(&state, backend, &id, StatusCode::OK).await
}

/// The steps that give `transaction` the backend's `answer`: status 1 first if the backend
/// answers before the delivery attempt that brought it the file has returned.
fn steps_for(transaction: &Transaction, answer: Answer, now: OffsetDateTime) -> Vec<Advance> {
    let mut steps = Vec::new();
    let mut at = transaction.clone();
    if at.state == TransactionState::Received {
        steps.push(delivered_step(&at, now, true));
        at.state = TransactionState::Delivered;
    }
    steps.extend(answer_step(&at, &[answer], now));
    steps
}

async fn apply<S: Store, B: BlobStore>(
    state: &ApiState<S, B>,
    steps: &[Advance],
) -> Result<bool, ApiError> {
    let applied = state
        .transactions
        .advance(steps)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(applied.last().copied().unwrap_or(false))
}

pub async fn accept<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Extension(peer): Extension<TlsPeer>,
) -> Reply {
    let backend = authenticate(&state, &peer, &headers)?;
    let id = params(path)?;
    let transaction = find(&state, backend, &id).await?;
    match transaction.state {
        TransactionState::Accepted | TransactionState::Answered => {}
        TransactionState::Rejected => {
            return Err(ApiError::conflict(format!(
                "{id} was rejected; it cannot be accepted"
            )));
        }
        TransactionState::Received | TransactionState::Delivered => {
            let steps = steps_for(&transaction, Answer::Accept, OffsetDateTime::now_utc());
            apply(&state, &steps).await?;
        }
    }
    current(&state, backend, &id, StatusCode::OK).await
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
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Extension(peer): Extension<TlsPeer>,
    body: Result<Json<Rejection>, JsonRejection>,
) -> Reply {
    let backend = authenticate(&state, &peer, &headers)?;
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
    let transaction = find(&state, backend, &id).await?;
    match transaction.state {
        TransactionState::Rejected => {}
        TransactionState::Answered => {
            return Err(ApiError::conflict(format!(
                "{id} was answered; it cannot be rejected"
            )));
        }
        TransactionState::Received | TransactionState::Delivered | TransactionState::Accepted => {
            let steps = steps_for(
                &transaction,
                Answer::Reject(error),
                OffsetDateTime::now_utc(),
            );
            apply(&state, &steps).await?;
        }
    }
    current(&state, backend, &id, StatusCode::OK).await
}

/// `<service>_<name>`, the name of a backend's file in `/out`, if `name` is usable.
fn out_name(service: &str, name: &str) -> Result<String, ApiError> {
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
async fn store_body<B: BlobStore>(blobs: &B, body: Body) -> Result<BlobInfo, ApiError> {
    let mut writer = blobs.create().await.map_err(ApiError::unavailable)?;
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
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    Extension(peer): Extension<TlsPeer>,
    body: Body,
) -> Reply {
    let backend = authenticate(&state, &peer, &headers)?;
    let (id, name) = params(path)?;
    let transaction = find(&state, backend, &id).await?;
    let name = out_name(&transaction.service, &name)?;
    match transaction.state {
        TransactionState::Answered => return current(&state, backend, &id, StatusCode::OK).await,
        TransactionState::Accepted => {}
        TransactionState::Received | TransactionState::Delivered => {
            return Err(ApiError::conflict(format!(
                "accept {id} before answering it"
            )));
        }
        TransactionState::Rejected => {
            return Err(ApiError::conflict(format!(
                "{id} was rejected; it cannot be answered"
            )));
        }
    }
    let blob = store_body(&*state.transactions.blobs, body).await?;
    let answer = Answer::Respond {
        name,
        content: OutContent::Blob {
            key: blob.key.clone(),
            size: blob.size,
        },
    };
    let steps = steps_for(&transaction, answer, OffsetDateTime::now_utc());
    match apply(&state, &steps).await {
        Ok(true) => {}
        // Answered meanwhile by the same call made twice: this copy is not needed.
        Ok(false) => {
            state.transactions.forget_blob(&blob.key).await;
            return current(&state, backend, &id, StatusCode::OK).await;
        }
        Err(error) => {
            state.transactions.forget_blob(&blob.key).await;
            return Err(error);
        }
    }
    current(&state, backend, &id, StatusCode::CREATED).await
}

#[derive(Debug, Deserialize)]
pub struct OutboundQuery {
    skat_transaction_id: Option<String>,
}

pub async fn outbound<S: Store, B: BlobStore>(
    State(state): State<Arc<ApiState<S, B>>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    query: Result<Query<OutboundQuery>, QueryRejection>,
    headers: HeaderMap,
    Extension(peer): Extension<TlsPeer>,
    body: Body,
) -> Reply {
    let backend = authenticate(&state, &peer, &headers)?;
    let (service, username, name) = params(path)?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    if !backend.services.contains(&service) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("backend {} does not serve {service}", backend.name),
        ));
    }
    let store = &state.transactions.store;
    let now = OffsetDateTime::now_utc();
    match store
        .held_role_since(&username, &service, now - state.retention)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "no_role",
                format!(
                    "{username} does not hold a role for {service}, nor held one within the retention period"
                ),
            ));
        }
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::not_found(format!("no user {username}")));
        }
        Err(error) => return Err(ApiError::unavailable(error)),
    }
    let file_name = out_name(&service, &name)?;
    let skat_transaction_id = match query.skat_transaction_id {
        Some(id)
            if !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            id
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "skat_transaction_id must be 1 to 100 visible ASCII characters",
            ));
        }
        None => state.transactions.next_skat_transaction_id(),
    };
    let blob = store_body(&*state.transactions.blobs, body).await?;
    let status = StatusFile {
        code: Status::Exposed,
        service: service.clone(),
        ftp_transaction_id: file_name.clone(),
        upload_path: None,
        skat_transaction_id: Some(skat_transaction_id.clone()),
        at: now,
        response_file: Some(file_name.clone()),
        error: None,
    };
    let recorded = store
        .record_outbound(NewOutbound {
            username: username.clone(),
            service: service.clone(),
            name,
            sha256: blob.sha256.clone(),
            skat_transaction_id,
            file: NewOutFile {
                name: file_name.clone(),
                content: OutContent::Blob {
                    key: blob.key.clone(),
                    size: blob.size,
                },
            },
            status_xml: status.to_xml().into_bytes(),
            at: now,
        })
        .await;
    let recorded = match recorded {
        Ok(recorded) => recorded,
        Err(error) => {
            state.transactions.forget_blob(&blob.key).await;
            return Err(match error {
                StoreError::Conflict(text) => ApiError::conflict(text),
                error => ApiError::unavailable(error),
            });
        }
    };
    for key in &recorded.replaced_blobs {
        state.transactions.forget_blob(key).await;
    }
    if recorded.created {
        telemetry::status_file_written(Status::Exposed);
    } else {
        state.transactions.forget_blob(&blob.key).await;
    }
    let code = if recorded.created {
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
            "status_file": StatusFile::outbound_file_name(&service, recorded.seq),
            "skat_transaction_id": recorded.skat_transaction_id,
            "created": recorded.created,
        })),
    ))
}
