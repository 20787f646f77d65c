//! The gateway's outbound HTTP(S), as adapters of the core's traits:
//! - the push connector: each transaction is one `POST` of the file body to the backend's
//!   URL, with its metadata in headers and the SKATTransactionId as `Idempotency-Key`. Any
//!   2xx means the backend has taken the file; anything else, or no answer, is a failed
//!   attempt to be retried;
//! - the role source of the central security system, a JSON document fetched with `GET`.
//!
//! TLS is verified against the configured CA, and the gateway can present its own client
//! certificate.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use mftgw_core::BoxFuture;
use mftgw_core::delivery::{Answer, Connector, DeliveryError, DeliveryFailure, Parcel};
use mftgw_core::roles::{MAX_DOCUMENT_BYTES, RoleFeed};
use mftgw_domain::Transaction;
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long fetching the role document may take.
const ROLE_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

pub struct HttpPush {
    client: reqwest::Client,
    url: reqwest::Url,
}

/// Where and how to reach the backend.
pub struct HttpTarget<'a> {
    pub url: &'a str,
    /// PEM roots the backend's certificate must chain to; without it, the system's roots.
    pub ca_file: Option<&'a Path>,
    /// PEM certificate chain and key the gateway presents.
    pub client_identity: Option<(&'a Path, &'a Path)>,
}

impl HttpPush {
    pub fn new(target: &HttpTarget<'_>) -> anyhow::Result<Self> {
        let url: reqwest::Url = target
            .url
            .parse()
            .with_context(|| format!("backend URL {:?}", target.url))?;
        Ok(Self {
            client: http_client(target)?,
            url,
        })
    }
}

/// An HTTP client for `target`'s TLS settings.
fn http_client(target: &HttpTarget<'_>) -> anyhow::Result<reqwest::Client> {
    // A redirect would turn the POST into a bodiless GET whose 200 looks like a delivery.
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true);
    if target.client_identity.is_some() && target.ca_file.is_none() {
        anyhow::bail!("a client certificate needs a ca_file for the server's certificate too");
    }
    if target.ca_file.is_some() {
        builder = builder.tls_backend_preconfigured(tls_config(target)?);
    }
    builder.build().context("building the HTTP client")
}

fn tls_config(target: &HttpTarget<'_>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca_file) = target.ca_file {
        for cert in CertificateDer::pem_file_iter(ca_file)
            .with_context(|| format!("reading {}", ca_file.display()))?
        {
            roots.add(cert?)?;
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    Ok(match target.client_identity {
        Some((chain, key)) => builder.with_client_auth_cert(
            CertificateDer::pem_file_iter(chain)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("reading {}", chain.display()))?,
            PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading {}", key.display()))?,
        )?,
        None => builder.with_no_client_auth(),
    })
}

/// Header values are visible ASCII: anything else in a name is percent-encoded (UTF-8).
fn header_value(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl HttpPush {
    async fn post(&self, parcel: Parcel<'_>) -> Result<(), DeliveryError> {
        let transaction = parcel.transaction;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(parcel.body));
        let mut request = self.client.post(self.url.clone());
        // A person (legacy profile, personal certificate) belongs to no company.
        if let Some(cvr) = &transaction.cvr {
            request = request.header("X-Mftgw-Cvr", cvr.as_str());
        }
        let response = request
            .header("Idempotency-Key", transaction.skat_transaction_id.as_str())
            .header(
                "X-Skat-Transaction-Id",
                transaction.skat_transaction_id.as_str(),
            )
            .header(
                "X-Ftp-Transaction-Id",
                header_value(transaction.ftp_transaction_id.as_str()),
            )
            .header("X-Mftgw-User", transaction.username.as_str())
            .header("X-Mftgw-Service", transaction.service.as_str())
            .header("X-Mftgw-Sha256", transaction.sha256.as_str())
            .header(
                "X-Mftgw-Transfer-Type",
                transaction.transfer_type.to_string(),
            )
            .header(reqwest::header::CONTENT_LENGTH, transaction.size)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|error| {
                let failure = if error.is_timeout() {
                    DeliveryFailure::Timeout
                } else {
                    DeliveryFailure::Unreachable
                };
                DeliveryError::new(
                    failure,
                    format!("POST {}: {}", self.url, error_chain(&error)),
                )
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(DeliveryError::new(
            failure_of(status),
            format!("POST {}: HTTP {status}", self.url),
        ))
    }
}

/// What a backend's answer other than 2xx means: it cannot take files now (5xx, 408, 429),
/// or it will not take this one (any other: a redirect is not a delivery either).
fn failure_of(status: reqwest::StatusCode) -> DeliveryFailure {
    let busy = status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    if busy {
        DeliveryFailure::Unavailable
    } else {
        DeliveryFailure::Refused
    }
}

/// The error and its causes: reqwest's own text rarely says what went wrong underneath.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Connector for HttpPush {
    fn deliver<'a>(&'a self, parcel: Parcel<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.post(parcel))
    }

    fn answers_on_its_own(&self) -> bool {
        false
    }

    fn answers(&self, _transaction: &Transaction) -> Vec<Answer> {
        Vec::new()
    }
}

/// The role document at a URL.
pub struct HttpRoleFeed {
    client: reqwest::Client,
    url: String,
}

impl HttpRoleFeed {
    pub fn new(target: &HttpTarget<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            client: http_client(target)?,
            url: target.url.to_string(),
        })
    }

    async fn get(&self) -> anyhow::Result<Vec<u8>> {
        let url = &self.url;
        let mut response = self
            .client
            .get(url)
            .timeout(ROLE_FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|error| anyhow::anyhow!("GET {url}: {}", error_chain(&error)))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "GET {url}: HTTP {status}");
        let mut document = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .context("reading the role document")?
        {
            document.extend_from_slice(&chunk);
            anyhow::ensure!(
                document.len() <= MAX_DOCUMENT_BYTES,
                "GET {url}: the role document is over {MAX_DOCUMENT_BYTES} bytes"
            );
        }
        Ok(document)
    }
}

impl RoleFeed for HttpRoleFeed {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<u8>>> {
        Box::pin(self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_backend_is_retried_and_a_refusing_one_waits_for_an_operator() {
        for busy in [500, 502, 503, 408, 429] {
            let status = reqwest::StatusCode::from_u16(busy).unwrap();
            assert!(failure_of(status).is_retryable(), "{status}");
        }
        for refusing in [302, 400, 401, 403, 404, 413] {
            let status = reqwest::StatusCode::from_u16(refusing).unwrap();
            assert_eq!(failure_of(status), DeliveryFailure::Refused, "{status}");
        }
    }

    #[test]
    fn names_become_visible_ascii_header_values() {
        assert_eq!(header_value("ping-1.xml"), "ping-1.xml");
        assert_eq!(header_value("æ ø.xml"), "%C3%A6%20%C3%B8.xml");
    }
}
