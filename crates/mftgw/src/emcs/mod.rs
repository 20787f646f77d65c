//! The EMCS B2B web-service gateway (seed 004): the adapter between the EMCS protocol crate
//! (`mftgw-emcs`, with WS-Security from `mftgw-wssec`) and the core. A call goes, in order:
//!
//! 1. WS-Security: decrypt the Body, verify the signature over Timestamp, Body and token, check
//!    the Timestamp. A refusal is a SOAP fault saying why, except that every decryption
//!    failure is one and the same fault.
//! 2. The signer: its certificate trusted now (chain through the configured issuing CAs,
//!    validity, CRL), an OCES3 organisation (system) certificate, registered to an active
//!    user holding the `EMCS` role.
//! 3. The request: routed by the endpoint's path and the Body's `_I` element, with its
//!    `HovedOplysninger`. Also faults: without them there is nobody to answer in the
//!    service's terms.
//! 4. From here every answer is signed with the gateway's WS-Security certificate and
//!    encrypted for the caller: the trader, operator and message rules (100 to 102, 301,
//!    302, 400, 103 to 105), call spacing
//!    ([`CallSpacing`]: answered with a fault, since seed 004 has no code for it), then the
//!    call is committed as a transaction (a reused `TransaktionIdentifikator` is 500),
//!    delivered to EMCS by the delivery worker ([`backend`]), and answered with EMCS's answer;
//!    2000 when EMCS did not answer in time, 1000 on a technical failure.
//!
//! Every call is audited as `emcs.call`, allowed or refused with its reason.

pub mod backend;
pub mod endpoint;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mftgw_blobs::BlobStore;
use mftgw_core::audit::Auditor;
use mftgw_core::spacing::{CallKind, CallSpacing};
use mftgw_core::transactions::{Call, CallOutcome, Committed, Transactions, call_name};
use mftgw_core::users::{CertifiedAccount, Standing, Users};
use mftgw_domain::audit::{AuditEvent, Reason};
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::login::decide_web_service_caller;
use mftgw_domain::{ServiceName, Username};
use mftgw_emcs::answer::{GatewayError, error_answer};
use mftgw_emcs::fault::FaultCode;
use mftgw_emcs::operators::Operators;
use mftgw_emcs::request::{HovedOplysninger, Request};
use mftgw_emcs::services::{Kind, Service};
use mftgw_oces::certificate::fingerprint_sha256;
use mftgw_oces::identity::{CertificateKind, identity_from_der};
use mftgw_oces::trust::TrustStore;
use mftgw_store::Store;
use mftgw_wssec::seal::{Credentials, EncryptFor, seal};
use mftgw_wssec::wsse::{self, Policy, WsseError};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

/// The role that admits a caller to the EMCS services (a web-service entry of the catalogue).
pub const EMCS_ROLE: &str = "EMCS";

/// How the gateway answers a call.
#[derive(Debug)]
pub enum Reply {
    /// A secured answer in the service's terms (HTTP 200).
    Answer(String),
    /// A SOAP fault (HTTP 500).
    Fault { code: FaultCode, reason: String },
}

/// The settings of the EMCS gateway.
pub struct EmcsSettings {
    pub credentials: Credentials,
    pub issuing_cas: Vec<CertificateDer<'static>>,
    pub policy: Policy,
    pub spacing: CallSpacing,
    /// How long a call waits for EMCS before it is answered with 2000.
    pub answer_timeout: Duration,
    /// The register 301 and 302 are checked against (unless it is empty).
    pub operators: Operators,
}

pub struct EmcsGateway<S, B> {
    transactions: Arc<Transactions<S, B>>,
    users: Arc<Users<S>>,
    trust: Arc<TrustStore>,
    auditor: Arc<Auditor>,
    settings: EmcsSettings,
}

/// A call refused before it can be answered in the service's terms.
struct Refusal {
    code: FaultCode,
    text: String,
    /// The audit log's reason.
    reason: &'static str,
}

impl Refusal {
    fn client(text: impl Into<String>, reason: &'static str) -> Self {
        Self {
            code: FaultCode::Client,
            text: text.into(),
            reason,
        }
    }
}

/// What the audit record of a call says about it, filled in as the call goes.
#[derive(Default)]
struct Facts {
    username: Option<Username>,
    fingerprint: Option<String>,
    detail: serde_json::Map<String, serde_json::Value>,
}

impl Facts {
    fn note(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.detail.insert(key.to_owned(), value.into());
    }
}

/// The caller, once its certificate passed.
struct Caller {
    account: CertifiedAccount,
    certificate: Vec<u8>,
}

impl<S: Store, B: BlobStore> EmcsGateway<S, B> {
    pub fn new(
        transactions: Arc<Transactions<S, B>>,
        users: Arc<Users<S>>,
        trust: Arc<TrustStore>,
        auditor: Arc<Auditor>,
        settings: EmcsSettings,
    ) -> Self {
        Self {
            transactions,
            users,
            trust,
            auditor,
            settings,
        }
    }

    /// Answers the request `body` sent from `peer` to the endpoint of `endpoint`.
    pub async fn call(&self, endpoint: &'static Service, body: &[u8], peer: IpAddr) -> Reply {
        let mut facts = Facts::default();
        facts.note("service", endpoint.name);
        let outcome = self.answer(endpoint, body, &mut facts).await;
        let now = OffsetDateTime::now_utc();
        let event = match &outcome {
            Ok(_) => AuditEvent::allowed(now, "emcs.call"),
            Err(refusal) => {
                facts.note("fault", refusal.text.clone());
                AuditEvent::refused(now, "emcs.call", refusal.reason)
            }
        };
        let mut event = event
            .with_peer_ip(peer.to_string())
            .with_detail(serde_json::Value::Object(facts.detail));
        if let Some(username) = facts.username {
            event = event.with_username(username);
        }
        if let Some(fingerprint) = facts.fingerprint {
            event = event.with_cert_fingerprint(fingerprint);
        }
        self.auditor.record(event).await;
        match outcome {
            Ok(answer) => Reply::Answer(answer),
            Err(refusal) => Reply::Fault {
                code: refusal.code,
                reason: refusal.text,
            },
        }
    }

    async fn answer(
        &self,
        endpoint: &'static Service,
        body: &[u8],
        facts: &mut Facts,
    ) -> Result<String, Refusal> {
        let now = OffsetDateTime::now_utc();
        let text = std::str::from_utf8(body)
            .map_err(|_| Refusal::client("the request is not UTF-8", "malformed"))?;
        let opened = wsse::open(
            text,
            now,
            &self.settings.policy,
            &self.settings.credentials.recipient,
        )
        .map_err(|error| match error {
            WsseError::Encryption(_) => {
                Refusal::client("the message cannot be decrypted", "undecryptable")
            }
            error => Refusal::client(
                format!("the WS-Security header is refused: {error}"),
                "ws_security",
            ),
        })?;
        let caller = self
            .caller(opened.signer_certificate.clone(), now, facts)
            .await?;

        let document = mftgw_wssec::xml::parse(&opened.text, &self.settings.policy.limits)
            .map_err(|error| Refusal::client(error.to_string(), "malformed"))?;
        let request = Request::in_envelope(&document, Some(endpoint))
            .map_err(|error| Refusal::client(error.to_string(), "bad_request"))?;
        let header = request
            .hoved_oplysninger()
            .map_err(|error| Refusal::client(error.to_string(), "bad_request"))?;
        facts.note("transaction_id", header.transaction_id.clone());

        let recipient = EncryptFor::from_certificate(&caller.certificate)
            .map_err(|error| Refusal::client(error.to_string(), "certificate_refused"))?;
        let sealed = |content: String| {
            seal(
                &content,
                OffsetDateTime::now_utc(),
                self.settings.policy.max_timestamp_window,
                &self.settings.credentials.signer,
                &recipient,
            )
            .map_err(|error| {
                tracing::error!(%error, "securing an EMCS answer failed");
                Refusal {
                    code: FaultCode::Server,
                    text: "the answer could not be secured".into(),
                    reason: "technical",
                }
            })
        };
        let refused = |facts: &mut Facts, error: GatewayError| {
            facts.note("error", error.code());
            sealed(error_answer(
                request.service,
                &header,
                OffsetDateTime::now_utc(),
                error,
            ))
        };
        let caller_cvr = caller.account.cvr.as_ref().map_or("", |cvr| cvr.as_str());
        let operators = &self.settings.operators;
        let checked = request.trader().and_then(|trader| {
            if !operators.is_empty() {
                operators.check(&trader, caller_cvr)?;
            }
            request.check_message_format()?;
            request.check_message_trader(&trader)
        });
        if let Err(error) = checked {
            return refused(facts, error);
        }

        let service = ServiceName::parse(request.service.name)
            .expect("the name of an EMCS service is a service name");
        let kind = match request.service.kind {
            Kind::Submit => CallKind::Submit,
            Kind::Receive => CallKind::Receive,
        };
        let _admitted = self
            .settings
            .spacing
            .admit(&caller.account.username, &service, kind, Instant::now())
            .map_err(|refusal| {
                Refusal::client(
                    format!("the call is refused: {refusal} (README, \"EMCS call spacing\")"),
                    "call_spacing",
                )
            })?;
        match self
            .forward(&caller, service, &header, opened.text.as_bytes(), facts)
            .await
        {
            Ok(answer) => sealed(answer),
            Err(error) => refused(facts, error),
        }
    }

    /// The signer of a request, if it may call.
    async fn caller(
        &self,
        certificate: Vec<u8>,
        now: OffsetDateTime,
        facts: &mut Facts,
    ) -> Result<Caller, Refusal> {
        let fingerprint = fingerprint_sha256(&certificate);
        facts.fingerprint = Some(fingerprint.clone());
        self.trust
            .verify_certificate(
                &CertificateDer::from(certificate.as_slice()),
                &self.settings.issuing_cas,
                now,
            )
            .map_err(|refusal| {
                Refusal::client(
                    format!("the signing certificate is refused: {refusal}"),
                    "certificate_refused",
                )
            })?;
        let identity = identity_from_der(&certificate)
            .map_err(|refusal| Refusal::client(refusal.to_string(), refusal.code()))?;
        if identity.kind != CertificateKind::Oces3Organisation {
            return Err(Refusal::client(
                "B2B calls take OCES3 organisation (system) certificates only, not employee, personal or OCES2 certificates",
                "certificate_kind",
            ));
        }
        let account = CertifiedAccount::of(&identity)
            .map_err(|invalid| Refusal::client(invalid.to_string(), "malformed_account_id"))?;
        facts.username = Some(account.username.clone());
        let unavailable = |error: mftgw_store::StoreError| {
            tracing::error!(%error, "store unavailable during an EMCS call");
            Refusal {
                code: FaultCode::Server,
                text: "the gateway is temporarily unavailable; call again later".into(),
                reason: Reason::StoreUnavailable.as_str(),
            }
        };
        let Standing { known, owner } = self
            .users
            .standing(Some(&account.username), &fingerprint)
            .await
            .map_err(unavailable)?;
        decide_web_service_caller(
            &Ok(account.username.clone()),
            &fingerprint,
            known.as_ref(),
            owner.as_ref(),
            now,
        )
        .map_err(|refusal| Refusal::client(refusal.to_string(), refusal.code()))?;
        let roles = self
            .users
            .roles(&account.username)
            .await
            .map_err(unavailable)?;
        if !roles.iter().any(|role| role == EMCS_ROLE) {
            return Err(Refusal::client(
                format!("{} does not hold the {EMCS_ROLE} role", account.username),
                "no_role",
            ));
        }
        Ok(Caller {
            account,
            certificate,
        })
    }

    /// Commits the call and waits for EMCS's answer (the `_O` element).
    async fn forward(
        &self,
        caller: &Caller,
        service: ServiceName,
        header: &HovedOplysninger,
        envelope: &[u8],
        facts: &mut Facts,
    ) -> Result<String, GatewayError> {
        let technical = |error: &dyn std::fmt::Display| {
            tracing::error!(%error, "an EMCS call failed");
            GatewayError::Technical
        };
        let call = Call {
            username: caller.account.username.clone(),
            cvr: caller.account.cvr.clone(),
            account: caller.account.account.clone(),
            service,
            name: call_name(&header.transaction_id),
        };
        let skat_transaction_id = match self.transactions.commit_call(&call, envelope).await {
            Ok(Committed::Transaction {
                skat_transaction_id,
            }) => skat_transaction_id,
            Ok(Committed::NameReused { .. }) => return Err(GatewayError::TransactionIdReused),
            Err(error) => return Err(technical(&error)),
        };
        facts.note("skat_transaction_id", skat_transaction_id.to_string());
        let out_of_service = GatewayError::OutOfService;
        let give_up = ErrorEntry {
            code: out_of_service.code().to_string(),
            message: out_of_service.text().to_owned(),
            resolution: String::new(),
        };
        let outcome = self
            .transactions
            .wait_for_answer(&skat_transaction_id, self.settings.answer_timeout, give_up)
            .await
            .map_err(|error| technical(&error))?;
        match outcome {
            CallOutcome::Answered(answer) => {
                String::from_utf8(answer).map_err(|error| technical(&error))
            }
            CallOutcome::Rejected(Some(_)) => Err(out_of_service),
            CallOutcome::Rejected(None) => Err(GatewayError::Technical),
        }
    }
}
