//! The EMCS B2B web services (seed 004) end to end: requests secured by WSS4J 1.6 (the
//! independent WS-Security peer), sent with curl to the demo's HTTPS endpoint, and answers
//! opened and verified by WSS4J; the WSDLs and their schemas; the caller's refusals, the
//! message rules, call spacing and the transaction each call becomes.

use std::path::{Path, PathBuf};
use std::process::Command;

use mftgw::demo::EmcsUser;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{Demo, run};

#[path = "../../../wssec/tests/wssec/wss4j/client.rs"]
mod wss4j;
use wss4j::{KeyStore, Wss4j, trust_store};

const IE815: &str = include_str!("../../../emcs/src/samples/ie815.xml");
const IE815_IE917: &str =
    include_str!("../../../emcs/src/samples/ie815-triggers-ie917-response.xml");
const IE818: &str = include_str!("../../../emcs/src/samples/ie818.xml");

const KONTEKST_NS: &str = "http://rep.oio.dk/skat.dk/basis/kontekst/xml/schemas/2006/09/01/";
const VIRKSOMHED_NS: &str =
    "http://rep.oio.dk/skat.dk/motor/class/virksomhed/xml/schemas/20080401/";
const EMCS_NS: &str = "urn:oio:skat:emcs:1.0.1";

/// A certificate and key to call with: a PKCS#12 file and its password.
struct Caller {
    p12: PathBuf,
    p12_password: String,
    se_number: String,
    excise_number: String,
}

impl From<&EmcsUser> for Caller {
    fn from(user: &EmcsUser) -> Self {
        Self {
            p12: user.p12.clone(),
            p12_password: user.p12_password.clone(),
            se_number: user.se_number.clone(),
            excise_number: user.excise_number.clone(),
        }
    }
}

/// The demo's EMCS endpoint and a compiled WSS4J client.
struct Emcs<'a> {
    demo: &'a Demo,
    wss4j: Wss4j,
    gateway_der: PathBuf,
    trust: PathBuf,
    dir: PathBuf,
}

/// What came back from a call.
#[derive(Debug)]
enum Reply {
    /// HTTP 200: the answer, decrypted and verified by WSS4J, and WSS4J's report.
    Answer { body: String, report: String },
    /// HTTP 500: a SOAP fault's faultstring.
    Fault(String),
}

impl Reply {
    fn answer(self) -> (String, String) {
        match self {
            Reply::Answer { body, report } => (body, report),
            Reply::Fault(fault) => panic!("a fault instead of an answer: {fault}"),
        }
    }

    fn fault(self) -> String {
        match self {
            Reply::Fault(fault) => fault,
            Reply::Answer { body, .. } => panic!("an answer instead of a fault: {body}"),
        }
    }
}

impl<'a> Emcs<'a> {
    fn new(demo: &'a Demo) -> Self {
        let emcs = demo.manifest().emcs.as_ref().expect("the demo serves EMCS");
        let dir = demo.dir.path().join("emcs");
        std::fs::create_dir_all(&dir).unwrap();
        let gateway = CertificateDer::from_pem_file(&emcs.server_wss_cert_pem).unwrap();
        let gateway_der = dir.join("gateway-wss.der");
        std::fs::write(&gateway_der, gateway.as_ref()).unwrap();
        let trust = trust_store(
            &dir.join("trust.p12"),
            &[&emcs.tls_ca_pem, &demo.data_dir().join("pki/ca/oces3.pem")],
        );
        Self {
            demo,
            wss4j: Wss4j::compile(&dir),
            gateway_der,
            trust,
            dir,
        }
    }

    fn url(&self, service: &str) -> String {
        let emcs = self.demo.manifest().emcs.as_ref().unwrap();
        emcs.endpoints
            .iter()
            .find(|endpoint| endpoint.service == service)
            .unwrap_or_else(|| panic!("no endpoint {service}"))
            .url
            .clone()
    }

    fn user(&self, index: usize) -> Caller {
        Caller::from(&self.demo.manifest().emcs.as_ref().unwrap().users[index])
    }

    fn refused(&self, why: &str) -> Caller {
        let certificate = &self.demo.manifest().emcs.as_ref().unwrap().refused[why];
        let user = self.user(0);
        Caller {
            p12: certificate.p12.clone(),
            p12_password: certificate.p12_password.clone(),
            ..user
        }
    }

    /// `caller` calls `service` with `content` in its `_I` element after the trader, secured
    /// by WSS4J for `recipient` (the gateway's WS-Security certificate unless given).
    fn call(&self, caller: &Caller, service: &str, transaction_id: &str, content: &str) -> Reply {
        self.call_for(caller, service, transaction_id, content, &self.gateway_der)
    }

    fn call_for(
        &self,
        caller: &Caller,
        service: &str,
        transaction_id: &str,
        content: &str,
        recipient: &Path,
    ) -> Reply {
        let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
        let envelope = format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body><s:{service}_I xmlns:s="urn:oio:skat:emcs:ws:1.0.1" xmlns:k="{KONTEKST_NS}" xmlns:v="{VIRKSOMHED_NS}" xmlns:e="{EMCS_NS}"><k:HovedOplysninger><k:TransaktionIdentifikator>{transaction_id}</k:TransaktionIdentifikator><k:TransaktionTid>{now}</k:TransaktionTid></k:HovedOplysninger><s:VirksomhedIdentifikationStruktur><s:Indberetter><v:VirksomhedSENummerIdentifikator>{se}</v:VirksomhedSENummerIdentifikator></s:Indberetter><e:AfgiftOperatoerPunktAfgiftIdentifikator>{excise}</e:AfgiftOperatoerPunktAfgiftIdentifikator></s:VirksomhedIdentifikationStruktur>{content}</s:{service}_I></soapenv:Body></soapenv:Envelope>"#,
            se = caller.se_number,
            excise = caller.excise_number,
        );
        let name = format!("{service}-{}", transaction_id.replace('/', "_"));
        let request = self.dir.join(format!("{name}.xml"));
        std::fs::write(&request, envelope).unwrap();
        let secured = self.dir.join(format!("{name}.secured.xml"));
        let client = KeyStore {
            file: &caller.p12,
            password: &caller.p12_password,
        };
        self.wss4j
            .seal(&request, &client, recipient, &secured, false);
        self.post(&self.url(service), &secured, &client, &name)
    }

    /// POSTs the file `request` to `url` with curl; the answer opened with `client`'s key.
    fn post(&self, url: &str, request: &Path, client: &KeyStore<'_>, name: &str) -> Reply {
        let response = self.dir.join(format!("{name}.response.xml"));
        let (ok, status, err) = run(Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&self.demo.manifest().emcs.as_ref().unwrap().tls_ca_pem)
            .args(["-H", "Content-Type: text/xml; charset=utf-8"])
            .args(["-H", "SOAPAction: \"\""])
            .args(["-w", "%{http_code}", "-o"])
            .arg(&response)
            .arg("--data-binary")
            .arg(format!("@{}", request.display()))
            .arg(url));
        assert!(ok, "curl failed: {err}");
        let text = std::fs::read_to_string(&response).unwrap();
        match status.as_str() {
            "200" => {
                let opened = self.dir.join(format!("{name}.opened.xml"));
                let report = self.wss4j.open(&response, client, &self.trust, &opened);
                let opened = std::fs::read_to_string(opened).unwrap();
                let body = opened
                    .split_once(":Body")
                    .map(|(_, body)| body.to_owned())
                    .unwrap();
                Reply::Answer { body, report }
            }
            "500" => Reply::Fault(
                element_text(&text, "faultstring").unwrap_or_else(|| panic!("not a fault: {text}")),
            ),
            other => panic!("HTTP {other}: {text}"),
        }
    }
}

/// An IE document as `<ie>Struktur` content, its XML declaration dropped.
fn structure(ie: &str, message: &str) -> String {
    let message = message
        .trim_start()
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>"))
        .map_or(message, |(_, rest)| rest);
    format!("<s:{ie}Struktur>{message}</s:{ie}Struktur>")
}

/// The text of the first element of local name `name` in `xml`, whatever its prefix and
/// attributes, unescaped.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let (_, rest) = xml.match_indices(name).find_map(|(at, _)| {
        let before = xml[..at].chars().next_back()?;
        let after = xml[at + name.len()..].chars().next()?;
        ((before == '<' || before == ':') && (after == '>' || after == ' '))
            .then(|| xml.split_at(at + name.len()))
            .filter(|(head, _)| !head.ends_with(&format!("</{name}")))
    })?;
    let content = &rest[rest.find('>')? + 1..];
    Some(
        content[..content.find('<')?]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The error codes of an answer's `FejlStruktur`s.
fn errors(body: &str) -> Vec<String> {
    body.match_indices("FejlIdentifikator>")
        .filter_map(|(at, _)| {
            let rest = &body[at + "FejlIdentifikator>".len()..];
            let end = rest.find('<')?;
            (end > 0).then(|| rest[..end].to_owned())
        })
        .collect()
}

#[test]
fn a_wss4j_client_submits_an_ie815_and_gets_a_signed_encrypted_arc() {
    // Long enough that two calls in this test always fall within it.
    let demo = Demo::start_with_env(&[("MFTGW__EMCS__SUBMIT_SPACING_SECS", "600")]);
    let emcs = Emcs::new(&demo);
    assert_eq!(
        demo.manifest().emcs.as_ref().unwrap().submit_spacing_secs,
        600
    );
    let consignor = emcs.user(1);
    let (body, report) = emcs
        .call(
            &consignor,
            "OIOLedsageDokumentOpret",
            "lrn-0001/a",
            &structure("IE815", IE815),
        )
        .answer();
    // WSS4J decrypted the answer and verified the gateway's signature over Body, Timestamp
    // and token, made with the WS-Security certificate (not the TLS one).
    for expected in [
        "decrypted",
        "timestamp",
        "signed Body",
        "signed Timestamp",
        "signed BinarySecurityToken",
    ] {
        assert!(
            report.lines().any(|line| line == expected),
            "{expected}: {report}"
        );
    }
    assert!(
        report.contains("signer ") && report.contains("EMCS B2B Gateway"),
        "{report}"
    );
    assert!(body.contains("OIOLedsageDokumentOpret_O"), "{body}");
    assert_eq!(
        element_text(&body, "TransaktionIdentifikator").as_deref(),
        Some("lrn-0001/a"),
        "{body}"
    );
    assert!(errors(&body).is_empty(), "{body}");
    let arc = element_text(&body, "LedsagedokumentARCIdentifikator").expect("an ARC");
    assert_eq!(arc.len(), 21, "{arc}");

    // The call is a transaction of the caller, answered.
    let username = &demo.manifest().emcs.as_ref().unwrap().users[1].username;
    let transactions = demo.transactions(username);
    let call = transactions
        .iter()
        .find(|t| t["service"] == "OIOLedsageDokumentOpret")
        .unwrap_or_else(|| panic!("{transactions:?}"));
    assert_eq!(call["ftp_transaction_id"], "lrn-0001%2Fa");
    assert_eq!(call["state"], "answered");
    let audit = demo.wait_for_audit("emcs.call", "allowed", None);
    assert_eq!(audit["username"], username.as_str(), "{audit}");

    // The same TransaktionIdentifikator again, on another service: 500, signed and encrypted.
    let (body, _) = emcs
        .call(&consignor, "OIOKvitteringSamlingHent", "lrn-0001/a", "")
        .answer();
    assert_eq!(errors(&body), ["500"], "{body}");

    // A second submission to the same service at once: refused by call spacing, which
    // counts per caller and service.
    let fault = emcs
        .call(
            &consignor,
            "OIOLedsageDokumentOpret",
            "lrn-0002",
            &structure("IE815", IE815),
        )
        .fault();
    assert!(fault.contains("may be called again in"), "{fault}");
    demo.wait_for_audit("emcs.call", "refused", Some("call_spacing"));

    // An IE815 that EMCS's validation refuses: IE917 in the answer.
    let (body, _) = emcs
        .call(
            &emcs.user(0),
            "OIOLedsageDokumentOpret",
            "invalid-1",
            &structure(
                "IE815",
                &IE815_IE917.replace("DK82065873300", "DK30808460300"),
            ),
        )
        .answer();
    assert!(body.contains("IE917BeskedTekst"), "{body}");

    // An excise number no operator has (301); another company's SE number (302).
    let unknown = Caller {
        excise_number: "DK99999999999".into(),
        ..emcs.user(0)
    };
    let (body, _) = emcs
        .call(&unknown, "OIOLedsageDokumentSamlingHent", "op-1", "")
        .answer();
    assert_eq!(errors(&body), ["301"], "{body}");
    let other_company = Caller {
        se_number: emcs.user(1).se_number,
        ..emcs.user(0)
    };
    let (body, _) = emcs
        .call(
            &other_company,
            "OIOLedsageDokumentNotifikationSamlingHent",
            "op-2",
            "",
        )
        .answer();
    assert_eq!(errors(&body), ["302"], "{body}");

    // IE818 from its consignee; and 104 when the message names another trader.
    let (body, _) = emcs
        .call(
            &emcs.user(0),
            "OIOKvitteringOpret",
            "rcpt-1",
            &structure("IE818", IE818),
        )
        .answer();
    assert!(errors(&body).is_empty(), "{body}");
    let (body, _) = emcs
        .call(
            &consignor,
            "OIOKvitteringOpret",
            "rcpt-2",
            &structure("IE818", IE818),
        )
        .answer();
    assert_eq!(errors(&body), ["104"], "{body}");
}

#[test]
fn callers_that_may_not_call_are_refused_and_audited() {
    let demo = Demo::start();
    let emcs = Emcs::new(&demo);
    let cases = [
        ("employee", "certificate_kind", "OCES3 organisation"),
        ("revoked", "certificate_refused", "revoked"),
        ("expired", "certificate_refused", "expired"),
        ("unregistered", "unknown_certificate", "never registered"),
        ("no_emcs_role", "no_role", "EMCS role"),
    ];
    for (index, (why, reason, text)) in cases.into_iter().enumerate() {
        let fault = emcs
            .call(
                &emcs.refused(why),
                "OIOKvitteringSamlingHent",
                &format!("refused-{index}"),
                "",
            )
            .fault();
        assert!(fault.contains(text), "{why}: {fault}");
        demo.wait_for_audit("emcs.call", "refused", Some(reason));
    }

    // Encrypted for another key than the gateway's: one generic fault.
    let other = demo.dir.path().join("emcs/other.der");
    let user = &demo.manifest().emcs.as_ref().unwrap().users[1];
    std::fs::write(
        &other,
        CertificateDer::from_pem_file(&user.cert_pem)
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let fault = emcs
        .call_for(
            &emcs.user(0),
            "OIOKvitteringSamlingHent",
            "wrong-key",
            "",
            &other,
        )
        .fault();
    assert_eq!(fault, "the message cannot be decrypted");
    demo.wait_for_audit("emcs.call", "refused", Some("undecryptable"));

    // Not secured at all.
    let plain = demo.dir.path().join("emcs/plain.xml");
    std::fs::write(
        &plain,
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>"#,
    )
    .unwrap();
    let caller = emcs.user(0);
    let fault = emcs
        .post(
            &emcs.url("OIOKvitteringSamlingHent"),
            &plain,
            &KeyStore {
                file: &caller.p12,
                password: &caller.p12_password,
            },
            "plain",
        )
        .fault();
    assert!(fault.contains("WS-Security"), "{fault}");
}

#[test]
fn every_wsdl_is_served_with_its_address_and_schemas() {
    let demo = Demo::start();
    let emcs = demo.manifest().emcs.as_ref().unwrap();
    assert_eq!(emcs.endpoints.len(), 23);
    assert_eq!(emcs.wsdl_urls.len(), 23);
    let get = |url: &str| {
        let (ok, body, err) = run(Command::new("curl")
            .args(["-sSf", "--cacert"])
            .arg(&emcs.tls_ca_pem)
            .arg(url));
        assert!(ok, "GET {url}: {err}");
        body
    };
    for endpoint in &emcs.endpoints {
        let wsdl = get(&emcs.wsdl_urls[&endpoint.service]);
        assert!(
            wsdl.contains(&format!("location=\"{}\"", endpoint.url)),
            "{}: {wsdl}",
            endpoint.service
        );
        let first_schema = wsdl
            .split("schemaLocation=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert!(first_schema.starts_with(&format!("{}?xsd=", endpoint.url)));
        let schema = get(first_schema);
        assert!(schema.contains("schema"), "{schema}");
    }
}
