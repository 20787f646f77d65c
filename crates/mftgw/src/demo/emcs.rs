//! The demo's EMCS B2B web services: the gateway's WS-Security certificate, two callers of
//! different companies holding the `EMCS` role, and certificates the endpoint must refuse,
//! each with what `demo.json`'s `emcs` object says about them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use mftgw_domain::ServiceName;
use mftgw_emcs::services::{Kind, SERVICES};
use mftgw_store::Store;
use mftgw_testpki::{ClientCredentials, ClientProfile, ClientSpec, TestPki, Validity};
use serde::{Deserialize, Serialize};

use crate::config::{EmcsConfig, ExciseOperatorConfig};
use crate::emcs::EMCS_ROLE;
use mftgw_core::users::{Registrant, Users};

/// The test PKI's name of the gateway's WS-Security certificate.
const GATEWAY: &str = "emcs-gateway";

/// Callers: the PKI client, the SE number it reports for and the excise number it acts for
/// (that of SKAT's sample IE818's consignee, and of the sample IE815's consignor).
const CALLERS: &[(&str, &str, &str)] = &[
    ("oces3-org", "30808460", "DK30808460300"),
    ("emcs-system", "19552101", "DK82065873300"),
];

/// `demo.json`'s `emcs`: the endpoints, what a caller needs, and certificates to be refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct EmcsEndpoint {
    /// Every service's endpoint URL, by service name.
    pub endpoints: BTreeMap<String, String>,
    /// Every service's kind, `submit` or `receive` (which call spacing applies), by name.
    pub kinds: BTreeMap<String, String>,
    /// The `?wsdl` URL of every service, by name.
    pub wsdl_urls: BTreeMap<String, String>,
    /// What the HTTPS server certificate chains to.
    pub tls_ca_pem: PathBuf,
    /// The gateway's WS-Security certificate: encrypt requests for it, verify answers with
    /// it. Not the TLS certificate.
    pub server_wss_cert_pem: PathBuf,
    pub submit_spacing_secs: u64,
    pub receive_spacing_secs: u64,
    pub users: Vec<EmcsUser>,
    /// Certificates the endpoint refuses, by why: `employee`, `revoked`, `expired`,
    /// `unregistered`, `no_emcs_role`.
    pub refused: BTreeMap<String, EmcsCertificate>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EmcsUser {
    pub username: String,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    pub p12: PathBuf,
    pub p12_password: String,
    pub se_number: String,
    pub excise_number: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EmcsCertificate {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    pub p12: PathBuf,
    pub p12_password: String,
    pub note: String,
}

/// Issues the EMCS certificates a PKI made before lacks (once: they are kept in it).
pub fn issue_certificates(pki: &mut TestPki) -> anyhow::Result<()> {
    let organisation = |cvr: &str, uuid: &str, company: &str, name: &str| {
        ClientSpec::new(ClientProfile::Oces3Organisation {
            cvr: cvr.into(),
            uuid: uuid.into(),
        })
        .company(company)
        .common_name(name)
    };
    let wanted = [
        (
            GATEWAY,
            organisation(
                "29403473",
                "0b5c7f3e-1d2a-4b6c-8e9f-3a5d7c9e1b2f",
                "Skatteforvaltningen",
                "EMCS B2B Gateway",
            )
            .note("the gateway's WS-Security certificate (EMCS): not the TLS certificate"),
        ),
        (
            "emcs-system",
            organisation(
                "19552101",
                "7e2d4f6a-9c1b-4a3d-8f5e-6b7c9d1e2f3a",
                "Testfirma A/S",
                "Testfirma EMCS",
            )
            .note("OCES3 organisation certificate of Testfirma A/S calling EMCS"),
        ),
        (
            "emcs-employee",
            ClientSpec::new(ClientProfile::Oces3Employee {
                cvr: "30808460".into(),
                uuid: "e5f6a7b8-c9d0-4e1f-2a3b-4c5d6e7f8091".into(),
            })
            .company("Digitaliseringsprøve ApS")
            .common_name("Mette Prøvesen")
            .note("OCES3 employee certificate with the EMCS role: refused for B2B"),
        ),
        (
            "emcs-revoked",
            organisation(
                "30808460",
                "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
                "Digitaliseringsprøve ApS",
                "Prøve EMCS (spærret)",
            )
            .note("OCES3 organisation certificate with the EMCS role, listed in the CRL"),
        ),
        (
            "emcs-expired",
            organisation(
                "30808460",
                "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
                "Digitaliseringsprøve ApS",
                "Prøve EMCS (udløbet)",
            )
            .validity(Validity::Expired)
            .note("expired OCES3 organisation certificate"),
        ),
        (
            "emcs-unregistered",
            organisation(
                "30808460",
                "c3d4e5f6-a7b8-4c9d-0e1f-2a3b4c5d6e7f",
                "Digitaliseringsprøve ApS",
                "Prøve EMCS (ukendt)",
            )
            .note("valid OCES3 organisation certificate never registered"),
        ),
        (
            "emcs-no-role",
            organisation(
                "30808460",
                "d4e5f6a7-b8c9-4d0e-1f2a-3b4c5d6e7f80",
                "Digitaliseringsprøve ApS",
                "Prøve EMCS (uden rolle)",
            )
            .note("registered OCES3 organisation certificate without the EMCS role"),
        ),
    ];
    for (name, spec) in wanted {
        if pki.client(name).is_none() {
            pki.issue_client_with(name, spec)?;
            if name == "emcs-revoked" {
                pki.revoke(name)?;
            }
        }
    }
    Ok(())
}

/// The `[emcs]` section of the demo's config.
pub fn config(pki: &TestPki, port: u16) -> anyhow::Result<EmcsConfig> {
    let gateway = client(pki, GATEWAY)?;
    let issuing_cas = ["oces3", "oces2"]
        .into_iter()
        .map(|issuer| {
            pki.issuing_ca_pem(issuer)
                .with_context(|| format!("the test PKI has no {issuer} CA"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(EmcsConfig {
        listen: ([127, 0, 0, 1], port).into(),
        wss_certificate: gateway.cert_pem.clone(),
        wss_private_key: gateway.key_pem.clone(),
        issuing_cas,
        submit_spacing_secs: 3,
        receive_spacing_secs: 300,
        max_timestamp_window_secs: 60,
        clock_skew_secs: 30,
        answer_timeout_secs: 20,
        backend_down: false,
        // The callers are the operators of their own excise numbers.
        operators: CALLERS
            .iter()
            .map(|(_, se_number, excise_number)| ExciseOperatorConfig {
                excise_number: excise_number.to_string(),
                se_number: se_number.to_string(),
                delegated_to: Vec::new(),
            })
            .collect(),
        se_numbers: Vec::new(),
    })
}

/// Registers the callers and the refusal cases, grants the role; what `demo.json` says.
pub async fn enroll<S: Store>(
    emcs: &EmcsConfig,
    pki: &TestPki,
    directory: &Users<S>,
    registrant: &Registrant<'_>,
) -> anyhow::Result<EmcsEndpoint> {
    let role = ServiceName::parse(EMCS_ROLE)?;
    let register = |name: &'static str| async move {
        let credentials = client(pki, name)?;
        let registration = directory
            .register_certificate(registrant, &super::leaf_der(credentials)?)
            .await?;
        Ok::<_, anyhow::Error>((credentials, registration.username))
    };
    let mut users = Vec::new();
    for (name, se_number, excise_number) in CALLERS {
        let (credentials, username) = register(name).await?;
        directory.grant_role(&username, &role).await?;
        users.push(EmcsUser {
            username: username.to_string(),
            cert_pem: credentials.cert_pem.clone(),
            key_pem: credentials.key_pem.clone(),
            p12: credentials.p12.clone(),
            p12_password: credentials.p12_password.clone(),
            se_number: se_number.to_string(),
            excise_number: excise_number.to_string(),
        });
    }
    // Registered with the role, so that what refuses them is their kind or their CRL entry.
    for name in ["emcs-employee", "emcs-revoked"] {
        let (_, username) = register(name).await?;
        directory.grant_role(&username, &role).await?;
    }
    register("emcs-no-role").await?;
    let refused = [
        ("employee", "emcs-employee", "OCES3 employee certificate with the EMCS role: B2B takes organisation certificates only"),
        ("revoked", "emcs-revoked", "OCES3 organisation certificate with the EMCS role, revoked (in the CRL)"),
        ("expired", "emcs-expired", "OCES3 organisation certificate whose validity ended"),
        ("unregistered", "emcs-unregistered", "valid OCES3 organisation certificate never registered"),
        ("no_emcs_role", "emcs-no-role", "registered OCES3 organisation certificate without the EMCS role"),
    ]
    .into_iter()
    .map(|(key, name, note)| {
        let credentials = client(pki, name)?;
        Ok((
            key.to_string(),
            EmcsCertificate {
                cert_pem: credentials.cert_pem.clone(),
                key_pem: credentials.key_pem.clone(),
                p12: credentials.p12.clone(),
                p12_password: credentials.p12_password.clone(),
                note: note.to_string(),
            },
        ))
    })
    .collect::<anyhow::Result<_>>()?;
    let mut endpoint = EmcsEndpoint {
        endpoints: BTreeMap::new(),
        kinds: BTreeMap::new(),
        wsdl_urls: BTreeMap::new(),
        tls_ca_pem: pki.root_ca_pem(),
        server_wss_cert_pem: client(pki, GATEWAY)?.cert_pem.clone(),
        submit_spacing_secs: 0,
        receive_spacing_secs: 0,
        users,
        refused,
    };
    endpoint.refresh(emcs);
    Ok(endpoint)
}

impl EmcsEndpoint {
    /// The addresses and intervals of `emcs` (which a restart may change).
    pub fn refresh(&mut self, emcs: &EmcsConfig) {
        let base = format!("https://127.0.0.1:{}", emcs.listen.port());
        let name = |service: &mftgw_emcs::services::Service| service.name.to_string();
        self.endpoints = SERVICES
            .iter()
            .map(|service| (name(service), format!("{base}{}", service.path)))
            .collect();
        self.kinds = SERVICES
            .iter()
            .map(|service| {
                let kind = match service.kind {
                    Kind::Submit => "submit",
                    Kind::Receive => "receive",
                };
                (name(service), kind.to_string())
            })
            .collect();
        self.wsdl_urls = self
            .endpoints
            .iter()
            .map(|(service, url)| (service.clone(), format!("{url}?wsdl")))
            .collect();
        self.submit_spacing_secs = emcs.submit_spacing_secs;
        self.receive_spacing_secs = emcs.receive_spacing_secs;
    }
}

fn client<'a>(pki: &'a TestPki, name: &str) -> anyhow::Result<&'a ClientCredentials> {
    pki.client(name)
        .with_context(|| format!("test PKI has no client {name}"))
}

/// What the welcome text says about EMCS.
pub fn welcome(endpoint: &EmcsEndpoint) -> String {
    let (service, url) = endpoint
        .endpoints
        .iter()
        .next()
        .expect("the demo serves every EMCS service");
    format!(
        "EMCS B2B web services (WS-Security; {count} services, e.g. {wsdl}).\n\
         Callers: {users} (demo.json's emcs.users, with their certificates and excise numbers);\n\
         the gateway's WS-Security certificate is {wss}. Fetch a WSDL:\n\n  \
         curl --cacert {ca} '{url}?wsdl'\n\n\
         Calls are SOAP 1.1 with a signed and encrypted Body (README, \"EMCS B2B web services\").\n",
        count = endpoint.endpoints.len(),
        wsdl = service,
        users = endpoint
            .users
            .iter()
            .map(|user| user.username.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        wss = endpoint.server_wss_cert_pem.display(),
        ca = endpoint.tls_ca_pem.display(),
        url = url,
    )
}
