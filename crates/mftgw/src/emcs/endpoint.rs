//! The HTTPS endpoint of the EMCS services: `POST <service path>` is a call, `GET <service
//! path>?wsdl` the service's WSDL with this endpoint's address, `GET <service path>?xsd=<path>`
//! a schema it includes. The address is built from the request's `Host`, so the WSDL names
//! the address the client reached (a balancer's, say).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mftgw_blobs::BlobStore;
use mftgw_emcs::documents;
use mftgw_emcs::fault::{FaultCode, fault};
use mftgw_emcs::services::Service;
use mftgw_store::Store;

use super::{EmcsGateway, Reply};
use crate::https::TlsPeer;

const XML: &str = "text/xml; charset=utf-8";

pub fn router<S: Store, B: BlobStore>(gateway: Arc<EmcsGateway<S, B>>) -> Router {
    let limit = gateway.settings.policy.limits.max_bytes;
    Router::new()
        .fallback(handle::<S, B>)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(gateway)
}

async fn handle<S: Store, B: BlobStore>(
    State(gateway): State<Arc<EmcsGateway<S, B>>>,
    axum::Extension(peer): axum::Extension<TlsPeer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(service) = Service::by_path(uri.path()) else {
        return soap_fault(
            StatusCode::NOT_FOUND,
            FaultCode::Client,
            &format!("no EMCS service has the endpoint {}", uri.path()),
        );
    };
    match method {
        Method::POST => match gateway.call(service, &body, peer.address.ip()).await {
            Reply::Answer(answer) => xml(StatusCode::OK, answer),
            Reply::Fault { code, reason } => {
                soap_fault(StatusCode::INTERNAL_SERVER_ERROR, code, &reason)
            }
        },
        Method::GET => {
            let Some(host) = headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
            else {
                return (StatusCode::BAD_REQUEST, "a Host header is needed").into_response();
            };
            let endpoint = format!("https://{host}{}", service.path);
            let document = match uri.query() {
                Some("wsdl" | "WSDL") => documents::wsdl(service, &endpoint),
                Some(query) => query
                    .strip_prefix("xsd=")
                    .and_then(|path| documents::schema(service, &endpoint, path)),
                None => None,
            };
            match document {
                Some(document) => xml(StatusCode::OK, document),
                None => (
                    StatusCode::NOT_FOUND,
                    format!("{endpoint} serves ?wsdl, the schemas it names, and POST calls\n"),
                )
                    .into_response(),
            }
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, POST")],
            "",
        )
            .into_response(),
    }
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, XML)], body).into_response()
}

fn soap_fault(status: StatusCode, code: FaultCode, reason: &str) -> Response {
    xml(status, fault(code, reason))
}
